/* libFuzzer target: the safetensors reader (sw_st_open_mem) over arbitrary bytes.
 *
 * A file the reader accepts must be safe to use: every entry's bytes are read end to end
 * (ASan catches a span outside the buffer), every name must be found again by sw_st_find, the
 * spans must tile the data section, and metadata pairs must be readable. Seeds live in
 * test/fuzz/corpus/safetensors/. */
#include "sw_err.h"
#include "sw_safetensors.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct sw_st_file *f = NULL;
    if (sw_st_open_mem(data, size, "fuzz.safetensors", &f) != 0) {
        if (f) abort(); /* no file may be handed out on error */
        return 0;
    }
    volatile uint8_t sink = 0;
    uint64_t covered = 0;
    for (int i = 0; i < sw_st_count(f); i++) {
        const struct sw_st_entry *e = sw_st_get(f, i);
        const uint8_t *p = e->data;
        for (size_t k = 0; k < e->nbytes; k++)
            sink ^= p[k];
        if (sw_st_find(f, e->name) != e) abort();
        if (e->end - e->begin != e->nbytes || e->ndim < 0 || e->ndim > SW_TENSOR_MAX_DIMS) abort();
        if ((const uint8_t *)e->data < data || (const uint8_t *)e->data + e->nbytes > data + size)
            abort();
        covered += e->nbytes;
        struct sw_tensor t;
        sw_st_entry_view(e, &t);
        if (t.data != e->data || t.ndim != e->ndim) abort();
    }
    if (sw_st_count(f) > 0 && sw_st_get(f, sw_st_count(f) - 1)->end != covered) abort();
    for (int i = 0; i < sw_st_metadata_count(f); i++) {
        const char *k, *v;
        if (sw_st_metadata_get(f, i, &k, &v) != 0 || sw_st_metadata(f, k) == NULL) abort();
        sink ^= (uint8_t)(strlen(k) + strlen(v));
    }
    (void)sink;
    sw_st_close(f);
    return 0;
}
