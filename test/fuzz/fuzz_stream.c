/* fuzz_stream — libFuzzer target for the sws reader: arbitrary bytes as a whole stream from
 * memory. Every record handed out is then taken apart the way consumers do (typed getters,
 * tensor views of every tensor-looking field, the "tensors" iterator) and turned into JSON
 * summaries and full dumps (sw-pack cat's path). Any crash, leak or sanitizer report is a bug;
 * errors are the expected outcome for almost every input. Seeds: test/fuzz/corpus/stream/. */
#include "sw_err.h"
#include "sw_stream.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Touch every byte of a tensor view so ASan checks its bounds. */
static unsigned touch(const struct sw_tensor *t) {
    const uint8_t *p = t->data;
    unsigned acc = 0;
    size_t n = sw_tensor_nbytes(t);
    for (size_t i = 0; i < n; i++)
        acc += p[i];
    return acc;
}

static void take_apart(const struct sw_record *rec) {
    static const char *const keys[] = {"input_ids",        "labels",         "position_ids",
                                       "loss_mask",        "attention_mask", "cu_seqlens",
                                       "chosen_input_ids", "rejected_labels"};
    struct sw_tensor t;
    volatile unsigned sink = 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (sw_record_get_tensor(rec, keys[i], &t) == 0) sink += touch(&t);
    for (size_t i = 0; i < sw_record_tensors_len(rec); i++) {
        const char *name;
        size_t len;
        if (sw_record_tensors_at(rec, i, &name, &len, &t) == 0) sink += touch(&t) + (unsigned)len;
    }
    int64_t v;
    uint64_t u;
    double d;
    int b;
    const char *s;
    size_t n;
    const msgpack_object *m;
    sw_record_get_int(rec, "num_tokens", &v);
    sw_record_get_uint(rec, "num_samples", &u);
    sw_record_get_double(rec, "max_seqlen", &d);
    sw_record_get_bool(rec, "label", &b);
    if (sw_record_get_str(rec, "name", &s, &n) == 0 && n) sink += (unsigned char)s[n - 1];
    sw_record_get_map(rec, "meta", &m);
    for (int flags = 0; flags <= SW_RECORD_JSON_FULL; flags++) {
        json_t *j = sw_record_to_json(rec, flags);
        char *text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
        free(text);
        json_decref(j);
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* keep_unknown so x- records are taken apart too; a small record limit keeps runs fast. */
    struct sw_stream_opts o = {.keep_unknown = 1, .max_record = 1 << 20};
    struct sw_stream_reader *r;
    if (sw_stream_open_mem(&r, data, size, "fuzz", &o) != 0) return 0;
    take_apart(sw_stream_reader_header_record(r));
    const struct sw_record *rec;
    int rc;
    while ((rc = sw_stream_read(r, &rec)) == 1)
        take_apart(rec);
    if (rc == 0) take_apart(sw_stream_reader_end_record(r));
    sw_stream_reader_free(r);
    return 0;
}
