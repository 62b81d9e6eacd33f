/* test_imatrix — what an importance matrix buys in the GGUF quantizers sw-quant gguf --imatrix
 * uses (sw_ggml_quantize with llama.cpp's weighted quantize_row_*_impl paths): on rows whose
 * input columns differ in importance by two orders of magnitude (the mean squared activation
 * sw-quant imatrix measures), the importance-weighted error Σ imp_j (w_j − ŵ_j)² is lower with the
 * matrix than without for Q4_0, Q4_1, Q5_0, Q4_K, Q5_K and Q6_K, and Q8_0 ignores it (identical
 * bytes), as in llama.cpp. Also llama.cpp's tensor names for the decoder linears. */
#include "sw_ggml_quant.h"
#include "sw_gguf.h"
#include "sw_imatrix.h"
#include "tap.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rs = 0x853C49E6748FEA9Bull;
static double nrand(void) {
    double u = 0;
    for (int k = 0; k < 12; k++) {
        rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
        u += (double)(rs >> 11) * (1.0 / 9007199254740992.0);
    }
    return u - 6;
}

int main(void) {
    enum { ROWS = 64, N = 512 };
    float *w = malloc(sizeof(float) * ROWS * N), *imp = malloc(sizeof(float) * N);
    float *back = malloc(sizeof(float) * ROWS * N);
    for (int i = 0; i < ROWS * N; i++)
        w[i] = (float)(0.02 * nrand());
    for (int j = 0; j < N; j++) /* a few hot channels, most cold */
        imp[j] = (float)(j % 16 == 3 ? 100.0 : exp(nrand()));
    size_t cap = (size_t)ROWS * N * 4;
    uint8_t *q0 = malloc(cap), *q1 = malloc(cap);
    static const int types[] = {SW_GGML_Q4_0, SW_GGML_Q4_1, SW_GGML_Q5_0,
                                SW_GGML_Q4_K, SW_GGML_Q5_K, SW_GGML_Q6_K};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        double e[2] = {0, 0};
        for (int with = 0; with < 2; with++) {
            uint8_t *q = with ? q1 : q0;
            OK(sw_ggml_quantize(types[t], w, q, ROWS, N, with ? imp : NULL) == 0, "%s quantize",
               sw_ggml_type_name(types[t]));
            sw_ggml_dequantize(types[t], q, back, (int64_t)ROWS * N);
            for (int r = 0; r < ROWS; r++)
                for (int j = 0; j < N; j++) {
                    double d = (double)w[r * N + j] - back[r * N + j];
                    e[with] += imp[j] * d * d;
                }
        }
        OK(e[1] < 0.95 * e[0],
           "%s: importance-weighted error %.4g with the matrix < 0.95 x %.4g without",
           sw_ggml_type_name(types[t]), e[1], e[0]);
    }
    OK(sw_ggml_quantize(SW_GGML_Q8_0, w, q0, ROWS, N, NULL) == 0 &&
           sw_ggml_quantize(SW_GGML_Q8_0, w, q1, ROWS, N, imp) == 0 &&
           !memcmp(q0, q1, (size_t)ROWS * N / 32 * 34),
       "Q8_0 ignores the importance matrix (llama.cpp does too)");
    char nm[64];
    sw_imatrix_tensor_name(3, 0, nm, sizeof nm);
    OK(!strcmp(nm, "blk.3.attn_q.weight"), "q_proj of layer 3 is %s", nm);
    sw_imatrix_tensor_name(0, 3, nm, sizeof nm);
    OK(!strcmp(nm, "blk.0.attn_output.weight"), "o_proj is %s", nm);
    sw_imatrix_tensor_name(11, 6, nm, sizeof nm);
    OK(!strcmp(nm, "blk.11.ffn_down.weight"), "down_proj is %s", nm);
    free(w), free(imp), free(back), free(q0), free(q1);
    return tap_done();
}
