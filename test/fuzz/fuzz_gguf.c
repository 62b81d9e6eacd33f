/* libFuzzer target: the GGUF reader (sw_gguf_open_mem) over arbitrary bytes.
 *
 * A file the reader accepts must be safe to use: every tensor's bytes are read end to end and
 * dequantized when sw can (ASan catches a span outside the buffer), each row size agrees with
 * nbytes, names are found again, and every key's value is readable (strings of string arrays
 * byte by byte, numeric arrays through the typed accessors). Seeds live in
 * test/fuzz/corpus/gguf/. */
#include "sw_ggml_quant.h"
#include "sw_gguf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct sw_gguf *g = NULL;
    if (sw_gguf_open_mem(data, size, "fuzz.gguf", &g) != 0) {
        if (g) abort(); /* nothing may be handed out on error */
        return 0;
    }
    volatile uint8_t sink = 0;
    for (int i = 0; i < sw_gguf_kv_count(g); i++) {
        const struct sw_gguf_kv *kv = sw_gguf_kv_get(g, i);
        if (sw_gguf_find_kv(g, kv->key) != kv) abort();
        if (kv->type == SW_GGUF_STRING)
            for (uint64_t k = 0; k < kv->str.n; k++)
                sink ^= (uint8_t)kv->str.p[k];
        else if (kv->type == SW_GGUF_ARRAY && kv->arr_type == SW_GGUF_STRING)
            for (uint64_t j = 0; j < kv->n; j++)
                for (uint64_t k = 0; k < kv->strs[j].n; k++)
                    sink ^= (uint8_t)kv->strs[j].p[k];
        else if (kv->type == SW_GGUF_ARRAY)
            for (uint64_t j = 0; j < kv->n; j++)
                sink ^= (uint8_t)sw_gguf_arr_int(kv, j);
        else {
            int64_t v;
            double d;
            if (sw_gguf_kv_int(kv, &v) == 0) sink ^= (uint8_t)v;
            if (sw_gguf_kv_float(kv, &d) == 0) sink ^= (uint8_t)(d != d);
        }
    }
    for (int i = 0; i < sw_gguf_tensor_count(g); i++) {
        const struct sw_gguf_tensor *t = sw_gguf_tensor_get(g, i);
        if (sw_gguf_find_tensor(g, t->name) != t) abort();
        const uint8_t *p = t->data;
        if (p < data || p + t->nbytes > data + size) abort();
        for (size_t k = 0; k < t->nbytes; k++)
            sink ^= p[k];
        int64_t n = sw_gguf_tensor_numel(t);
        if (t->ne[0] && sw_ggml_row_size(t->type, t->ne[0]) * (size_t)(n / t->ne[0]) != t->nbytes)
            abort();
        if (sw_ggml_can_dequantize(t->type) && n > 0 && n <= (1 << 16)) {
            float *y = malloc((size_t)n * sizeof *y);
            if (y && sw_ggml_dequantize(t->type, t->data, y, n) != 0) abort();
            free(y);
        }
    }
    sw_gguf_close(g);
    return 0;
}
