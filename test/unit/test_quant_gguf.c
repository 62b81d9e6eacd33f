/* test_quant_gguf — the GGUF reader and writer.
 *
 * A file written by sw's writer (every value type, string arrays, F32/F16/Q8_0/Q4_K tensors,
 * a custom alignment) reads back with the same keys, values, shapes, offsets and bytes; every
 * prefix of it (every possible truncation) is refused with SW_ETRUNC or SW_EFORMAT and never
 * crashes; a battery of lying headers (bad magic, big-endian, unknown version, counts larger
 * than the file, unknown value or tensor type, nested arrays, names too long or duplicated,
 * rows not whole blocks, misaligned or overlapping offsets, a bad general.alignment) is refused
 * with a message naming the key or tensor; the writer refuses duplicate keys and tensors and
 * short tensor data, and leaves nothing behind when it is freed before commit. */
#include "sw_err.h"
#include "sw_gguf.h"
#include "sw_io.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static int count_dir(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *f = popen(cmd, "r");
    int n = -1;
    if (f && fscanf(f, "%d", &n) != 1) n = -1;
    if (f) pclose(f);
    return n;
}

static float t0[2 * 32], t2[3 * 256];
static uint16_t t1[5];

static int write_sample(const char *path, uint32_t align) {
    struct sw_gguf_writer *w = NULL;
    int rc = sw_gguf_writer_new(&w);
    const char *toks[] = {"<s>", "hello", "", "w\xc3\xb6rld"};
    int32_t ids[3] = {-1, 0, 7};
    float fs[2] = {0.5f, -2.0f};
    if (rc == 0) rc = sw_gguf_set_str(w, "general.architecture", "llama");
    if (rc == 0 && align) rc = sw_gguf_set_u32(w, "general.alignment", align);
    if (rc == 0) rc = sw_gguf_set_u32(w, "llama.block_count", 2);
    if (rc == 0) rc = sw_gguf_set_i32(w, "x.i32", -5);
    if (rc == 0) rc = sw_gguf_set_u64(w, "x.u64", 1ull << 40);
    if (rc == 0) rc = sw_gguf_set_f32(w, "x.f32", 1e-6f);
    if (rc == 0) rc = sw_gguf_set_bool(w, "x.bool", 1);
    if (rc == 0) rc = sw_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 4);
    if (rc == 0) rc = sw_gguf_set_arr(w, "x.arr_i32", SW_GGUF_INT32, ids, 3);
    if (rc == 0) rc = sw_gguf_set_arr(w, "x.arr_f32", SW_GGUF_FLOAT32, fs, 2);
    int64_t ne0[2] = {32, 2}, ne1[1] = {5}, ne2[2] = {256, 3}, ne3[2] = {256, 3};
    if (rc == 0) rc = sw_gguf_add_tensor(w, "a.weight", SW_GGML_F32, 2, ne0) == 0 ? 0 : -1;
    if (rc == 0) rc = sw_gguf_add_tensor(w, "b.bias", SW_GGML_F16, 1, ne1) == 1 ? 0 : -1;
    if (rc == 0) rc = sw_gguf_add_tensor(w, "c.q", SW_GGML_Q4_K, 2, ne2) == 2 ? 0 : -1;
    if (rc == 0) rc = sw_gguf_add_tensor(w, "d.f", SW_GGML_F32, 2, ne3) == 3 ? 0 : -1;
    if (rc == 0) rc = sw_gguf_writer_begin(w, path);
    uint8_t q4k[3 * 144];
    for (size_t i = 0; i < sizeof q4k; i++)
        q4k[i] = (uint8_t)(i * 13);
    if (rc == 0) rc = sw_gguf_writer_write_tensor(w, t0, sizeof t0);
    if (rc == 0) rc = sw_gguf_writer_write_tensor(w, t1, sizeof t1);
    if (rc == 0) rc = sw_gguf_writer_write_tensor(w, q4k, sizeof q4k);
    if (rc == 0) rc = sw_gguf_writer_write_tensor(w, t2, sizeof t2);
    if (rc == 0) rc = sw_gguf_writer_commit(w);
    sw_gguf_writer_free(w);
    return rc;
}

static void test_roundtrip(void) {
    for (int i = 0; i < 64; i++)
        t0[i] = (float)i * 0.25f - 3;
    for (int i = 0; i < 5; i++)
        t1[i] = (uint16_t)(0x3c00 + i);
    for (int i = 0; i < 768; i++)
        t2[i] = (float)(i % 17) - 8;
    const char *p = tmp_path("a.gguf");
    int rc = write_sample(p, 0);
    OK(rc == 0, "writer writes a file (%s)", sw_err_msg());
    struct sw_gguf *g = NULL;
    rc = sw_gguf_open(p, &g);
    if (!OK(rc == 0, "reader opens it (%s)", sw_err_msg())) return;
    IS_INT(sw_gguf_version(g), 3, "version 3");
    IS_INT(sw_gguf_kv_count(g), 9, "9 keys");
    IS_INT(sw_gguf_tensor_count(g), 4, "4 tensors");
    IS_INT(sw_gguf_alignment(g), 32, "default alignment 32");
    IS_INT(sw_gguf_data_offset(g) % 32, 0, "data section aligned");
    IS_INT(sw_gguf_file_size(g) % 32, 0, "file padded to the alignment");
    const struct sw_gguf_kv *kv = sw_gguf_find_kv(g, "general.architecture");
    OK(kv && kv->type == SW_GGUF_STRING && kv->str.n == 5 && memcmp(kv->str.p, "llama", 5) == 0,
       "string value");
    int64_t v = 0;
    double d = 0;
    kv = sw_gguf_find_kv(g, "llama.block_count");
    OK(kv && kv->type == SW_GGUF_UINT32 && sw_gguf_kv_int(kv, &v) == 0 && v == 2, "u32 value");
    kv = sw_gguf_find_kv(g, "x.i32");
    OK(kv && sw_gguf_kv_int(kv, &v) == 0 && v == -5, "i32 value");
    kv = sw_gguf_find_kv(g, "x.u64");
    OK(kv && sw_gguf_kv_int(kv, &v) == 0 && v == (1ll << 40), "u64 value");
    kv = sw_gguf_find_kv(g, "x.f32");
    OK(kv && sw_gguf_kv_float(kv, &d) == 0 && (float)d == 1e-6f, "f32 value");
    OK(kv && sw_gguf_kv_int(kv, &v) == SW_EFORMAT, "a float is not an integer: %s", sw_err_msg());
    kv = sw_gguf_find_kv(g, "x.bool");
    OK(kv && kv->type == SW_GGUF_BOOL && sw_gguf_kv_int(kv, &v) == 0 && v == 1, "bool value");
    kv = sw_gguf_find_kv(g, "tokenizer.ggml.tokens");
    OK(kv && kv->type == SW_GGUF_ARRAY && kv->arr_type == SW_GGUF_STRING && kv->n == 4 &&
           kv->strs[2].n == 0 && kv->strs[3].n == 6 &&
           memcmp(kv->strs[3].p, "w\xc3\xb6rld", 6) == 0,
       "string array (empty and UTF-8 entries)");
    kv = sw_gguf_find_kv(g, "x.arr_i32");
    OK(kv && kv->n == 3 && sw_gguf_arr_int(kv, 0) == -1 && sw_gguf_arr_int(kv, 2) == 7,
       "i32 array");
    kv = sw_gguf_find_kv(g, "x.arr_f32");
    OK(kv && kv->n == 2 && sw_gguf_arr_float(kv, 1) == -2.0, "f32 array");
    const struct sw_gguf_tensor *t = sw_gguf_find_tensor(g, "a.weight");
    OK(t && t->type == SW_GGML_F32 && t->n_dims == 2 && t->ne[0] == 32 && t->ne[1] == 2 &&
           t->nbytes == sizeof t0 && memcmp(t->data, t0, sizeof t0) == 0,
       "F32 tensor: shape (ggml order) and bytes");
    t = sw_gguf_find_tensor(g, "b.bias");
    OK(t && t->type == SW_GGML_F16 && t->n_dims == 1 && t->ne[0] == 5 && t->nbytes == 10 &&
           memcmp(t->data, t1, 10) == 0 && t->offset % 32 == 0,
       "F16 1-D tensor, aligned offset");
    t = sw_gguf_find_tensor(g, "c.q");
    OK(t && t->type == SW_GGML_Q4_K && t->nbytes == 3 * 144 && ((const uint8_t *)t->data)[1] == 13,
       "Q4_K tensor: 3 rows of one block");
    OK(sw_gguf_find_tensor(g, "nope") == NULL && sw_gguf_find_kv(g, "nope") == NULL,
       "absent names");
    sw_gguf_close(g);

    /* a custom alignment is honoured by both sides */
    p = tmp_path("b.gguf");
    rc = write_sample(p, 64);
    g = NULL;
    if (rc == 0) rc = sw_gguf_open(p, &g);
    OK(rc == 0 && sw_gguf_alignment(g) == 64 && sw_gguf_data_offset(g) % 64 == 0 &&
           sw_gguf_find_tensor(g, "b.bias")->offset % 64 == 0,
       "general.alignment 64 honoured (%s)", sw_err_msg());
    sw_gguf_close(g);
}

/* Every truncation of a valid file must be refused (never read past the end: the buffer is an
 * exact-size heap copy, so ASan builds catch a stray read). */
static void test_truncation(void) {
    char *buf = NULL;
    size_t len = 0;
    if (!OK(sw_read_file(tmp_path("a.gguf"), &buf, &len, 0) == 0, "read sample")) return;
    int bad = 0, trunc = 0;
    for (size_t n = 0; n < len; n++) {
        /* The data section's last padding is not needed by any tensor: those prefixes are
         * complete files. */
        char *copy = malloc(n ? n : 1);
        memcpy(copy, buf, n);
        struct sw_gguf *g = NULL;
        int rc = sw_gguf_open_mem(copy, n, "t.gguf", &g);
        if (rc == 0) {
            const struct sw_gguf_tensor *last = sw_gguf_tensor_get(g, 3);
            if (sw_gguf_data_offset(g) + last->offset + last->nbytes > n) bad++;
            sw_gguf_close(g);
        } else {
            trunc += rc == SW_ETRUNC;
            if (g) bad++;
        }
        free(copy);
    }
    OK(bad == 0, "no truncated prefix of %zu is accepted with a tensor past its end", len);
    OK(trunc > 0, "truncations are reported as SW_ETRUNC (%d of %zu)", trunc, len);
    struct sw_gguf *g = NULL;
    int rc = sw_gguf_open_mem(buf, len - 100, "short.gguf", &g);
    OK(rc == SW_ETRUNC && strstr(sw_err_msg(), "short.gguf") && strstr(sw_err_msg(), "d.f"),
       "a file cut inside a tensor names the file and the tensor: %s", sw_err_msg());
    free(buf);
}

/* A small header in memory, then edits. */
struct hb {
    uint8_t b[4096];
    size_t n;
};
static void hb_raw(struct hb *h, const void *p, size_t n) {
    memcpy(h->b + h->n, p, n), h->n += n;
}
static void hb_u32(struct hb *h, uint32_t v) {
    hb_raw(h, &v, 4);
}
static void hb_u64(struct hb *h, uint64_t v) {
    hb_raw(h, &v, 8);
}
static void hb_str(struct hb *h, const char *s) {
    hb_u64(h, strlen(s)), hb_raw(h, s, strlen(s));
}

/* A file of kv pairs (already serialised by the caller into kvs/nkv) and tensors. */
static void hb_header(struct hb *h, uint32_t version, uint64_t nt, uint64_t nkv) {
    h->n = 0;
    hb_raw(h, "GGUF", 4);
    hb_u32(h, version);
    hb_u64(h, nt);
    hb_u64(h, nkv);
}
static void hb_tensor(struct hb *h, const char *name, uint32_t nd, const uint64_t *ne,
                      uint32_t type, uint64_t off) {
    hb_str(h, name);
    hb_u32(h, nd);
    for (uint32_t i = 0; i < nd; i++)
        hb_u64(h, ne[i]);
    hb_u32(h, type);
    hb_u64(h, off);
}
static void hb_pad_data(struct hb *h, size_t data) {
    while (h->n % 32)
        h->b[h->n++] = 0;
    memset(h->b + h->n, 0, data);
    h->n += data;
}

static void expect(struct hb *h, int code, const char *needle, const char *what) {
    struct sw_gguf *g = NULL;
    int rc = sw_gguf_open_mem(h->b, h->n, "bad.gguf", &g);
    OK(rc == code && g == NULL && strstr(sw_err_msg(), needle), "%s: %s", what, sw_err_msg());
    sw_gguf_close(g);
}

static void test_lies(void) {
    struct hb h;
    uint64_t ne[2] = {32, 2};
    hb_header(&h, 3, 1, 0);
    hb_tensor(&h, "w", 2, ne, SW_GGML_F32, 0);
    hb_pad_data(&h, 256);
    struct sw_gguf *g = NULL;
    OK(sw_gguf_open_mem(h.b, h.n, "ok.gguf", &g) == 0, "hand-built file is valid (%s)",
       sw_err_msg());
    sw_gguf_close(g);

    h.b[0] = 'X';
    expect(&h, SW_EFORMAT, "not a GGUF file", "bad magic");
    hb_header(&h, 0x03000000, 0, 0);
    expect(&h, SW_EUNSUPPORTED, "big-endian", "big-endian file");
    hb_header(&h, 1, 0, 0);
    expect(&h, SW_EUNSUPPORTED, "version 1", "version 1");
    hb_header(&h, 3, 1ull << 40, 0);
    expect(&h, SW_ETRUNC, "tensors", "tensor count past the file");
    hb_header(&h, 3, 0, 1ull << 62);
    expect(&h, SW_ETRUNC, "keys", "key count past the file");

    hb_header(&h, 3, 0, 1);
    hb_str(&h, "k");
    hb_u32(&h, 99);
    expect(&h, SW_EFORMAT, "key 'k': unknown value type 99", "unknown value type");
    hb_header(&h, 3, 0, 1);
    hb_str(&h, "arr");
    hb_u32(&h, SW_GGUF_ARRAY);
    hb_u32(&h, SW_GGUF_ARRAY);
    hb_u64(&h, 1);
    expect(&h, SW_EFORMAT, "array of array", "nested array");
    hb_header(&h, 3, 0, 1);
    hb_str(&h, "strs");
    hb_u32(&h, SW_GGUF_ARRAY);
    hb_u32(&h, SW_GGUF_STRING);
    hb_u64(&h, 1ull << 59);
    expect(&h, SW_ETRUNC, "key 'strs'", "string array count past the file");
    hb_header(&h, 3, 0, 1);
    hb_str(&h, "s");
    hb_u32(&h, SW_GGUF_STRING);
    hb_u64(&h, 1000);
    expect(&h, SW_ETRUNC, "claims 1000 bytes", "string length past the file");
    hb_header(&h, 3, 0, 2);
    hb_str(&h, "k"), hb_u32(&h, SW_GGUF_UINT8), hb_raw(&h, "\1", 1);
    hb_str(&h, "k"), hb_u32(&h, SW_GGUF_UINT8), hb_raw(&h, "\2", 1);
    expect(&h, SW_EFORMAT, "duplicate key 'k'", "duplicate key");
    hb_header(&h, 3, 0, 1);
    hb_str(&h, "general.alignment"), hb_u32(&h, SW_GGUF_UINT32), hb_u32(&h, 48);
    expect(&h, SW_EFORMAT, "not a power of two", "alignment 48");
    hb_header(&h, 3, 0, 1);
    hb_str(&h, "general.alignment"), hb_u32(&h, SW_GGUF_UINT64), hb_u64(&h, 32);
    expect(&h, SW_EFORMAT, "not u32", "alignment of the wrong type");

    hb_header(&h, 3, 1, 0);
    hb_tensor(&h, "w", 2, ne, 200, 0);
    hb_pad_data(&h, 256);
    expect(&h, SW_EUNSUPPORTED, "tensor 'w': unknown ggml type 200", "unknown tensor type");
    hb_header(&h, 3, 1, 0);
    hb_tensor(&h, "w", 5, ne, SW_GGML_F32, 0);
    expect(&h, SW_EFORMAT, "5 dimensions", "too many dimensions");
    uint64_t ne_odd[2] = {48, 2};
    hb_header(&h, 3, 1, 0);
    hb_tensor(&h, "w", 2, ne_odd, SW_GGML_Q4_K, 0);
    hb_pad_data(&h, 1024);
    expect(&h, SW_EFORMAT, "tensor 'w': row of 48 elements is not a multiple of the Q4_K block",
           "row not whole blocks");
    uint64_t ne_big[2] = {1ull << 20, 1ull << 20};
    hb_header(&h, 3, 1, 0);
    hb_tensor(&h, "w", 2, ne_big, SW_GGML_F32, 0);
    expect(&h, SW_ETRUNC, "tensor 'w' needs", "tensor larger than the file");
    uint64_t ne_ovf[3] = {1ull << 32, 1ull << 32, 1ull << 32};
    hb_header(&h, 3, 1, 0);
    hb_tensor(&h, "w", 3, ne_ovf, SW_GGML_F32, 0);
    expect(&h, SW_EFORMAT, "overflows", "element count overflow");
    hb_header(&h, 3, 1, 0);
    hb_tensor(&h, "w", 2, ne, SW_GGML_F32, 8);
    hb_pad_data(&h, 256);
    expect(&h, SW_EFORMAT, "tensor 'w': offset 8 is not a multiple", "misaligned offset");
    hb_header(&h, 3, 2, 0);
    hb_tensor(&h, "w", 2, ne, SW_GGML_F32, 0);
    hb_tensor(&h, "v", 2, ne, SW_GGML_F32, 224);
    hb_pad_data(&h, 512);
    expect(&h, SW_EFORMAT, "overlap", "overlapping tensors");
    hb_header(&h, 3, 2, 0);
    hb_tensor(&h, "w", 2, ne, SW_GGML_F32, 0);
    hb_tensor(&h, "w", 2, ne, SW_GGML_F32, 256);
    hb_pad_data(&h, 512);
    expect(&h, SW_EFORMAT, "duplicate tensor 'w'", "duplicate tensor name");
    hb_header(&h, 3, 1, 0);
    hb_tensor(&h, "a_name_that_is_much_longer_than_sixty_three_bytes_which_ggml_cannot_hold", 2, ne,
              SW_GGML_F32, 0);
    expect(&h, SW_EFORMAT, "longer than 63 bytes", "name too long");
    hb_header(&h, 3, 1, 0);
    hb_tensor(&h, "w", 2, ne, SW_GGML_F32, 32);
    hb_pad_data(&h, 256);
    expect(&h, SW_ETRUNC, "tensor 'w' ends at byte 288", "tensor past the end of the data");
}

static void test_writer_errors(void) {
    struct sw_gguf_writer *w = NULL;
    sw_gguf_writer_new(&w);
    OK(sw_gguf_set_u32(w, "k", 1) == 0 && sw_gguf_set_str(w, "k", "x") == SW_EINVAL,
       "duplicate key refused: %s", sw_err_msg());
    OK(sw_gguf_set_u32(w, "general.alignment", 12) == SW_EINVAL, "alignment 12 refused");
    int64_t ne[2] = {100, 2};
    OK(sw_gguf_add_tensor(w, "q", SW_GGML_Q8_0, 2, ne) == SW_EINVAL &&
           strstr(sw_err_msg(), "tensor 'q'"),
       "a Q8_0 row of 100 refused naming the tensor: %s", sw_err_msg());
    ne[0] = 64;
    OK(sw_gguf_add_tensor(w, "q", SW_GGML_Q8_0, 2, ne) == 0 &&
           sw_gguf_add_tensor(w, "q", SW_GGML_F32, 2, ne) == SW_EINVAL,
       "duplicate tensor refused");
    OK(sw_gguf_writer_tensor_nbytes(w, 0) == 2 * 68, "Q8_0 2x64 is 136 bytes");
    const char *p = tmp_path("never.gguf");
    OK(sw_gguf_writer_begin(w, p) == 0, "begin");
    uint8_t buf[136] = {0};
    OK(sw_gguf_writer_write_tensor(w, buf, 100) == SW_EINVAL, "short tensor data refused: %s",
       sw_err_msg());
    OK(sw_gguf_writer_commit(w) == SW_ESTATE, "commit before every tensor is refused: %s",
       sw_err_msg());
    sw_gguf_writer_free(w);
    OK(!exists(p) && count_dir(tmpdir) == 2, "nothing left behind by an unfinished writer");
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_quant_gguf.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    test_roundtrip();
    test_truncation();
    test_lies();
    test_writer_errors();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) DIAG("could not remove %s", tmpdir);
    return tap_done();
}
