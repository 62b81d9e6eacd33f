/* sw_ggml_quant — ggml's block quantization formats: quantize float32 rows into Q8_0, Q4_0,
 * Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K blocks (and F32/F16/BF16), and dequantize them back.
 *
 * Block layouts (little-endian, f16 = IEEE half; ggml-common.h):
 *   Q8_0  32 el, 34 B: f16 d; i8 qs[32]                       x = d·q
 *   Q4_0  32 el, 18 B: f16 d; u8 qs[16] (el j low nibble, j+16 high)   x = d·(q − 8)
 *   Q4_1  32 el, 20 B: f16 d, m; u8 qs[16]                    x = d·q + m
 *   Q5_0  32 el, 22 B: f16 d; u32 qh (bit j = 5th bit of el j); qs[16]  x = d·(q − 16)
 *   Q5_1  32 el, 24 B: f16 d, m; u32 qh; qs[16]               x = d·q + m
 *   Q4_K 256 el, 144 B: f16 d, dmin; u8 scales[12] (8 six-bit scales + 8 six-bit mins);
 *        qs[128] (64-element chunks: el l low nibble, l+32 high)   x = d·sc·q − dmin·m
 *   Q5_K 256 el, 176 B: f16 d, dmin; scales[12]; qh[32] (bit 2c/2c+1 = 5th bit of chunk c's
 *        low/high half); qs[128]
 *   Q6_K 256 el, 210 B: ql[128] (low 4 bits), qh[64] (high 2 bits), i8 scales[16], f16 d
 *        x = d·scale[16-el group]·(q − 32)
 * The Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 quantizers are ggml's reference ones (round-to-nearest from the
 * block's absolute max, or min/max), so their bytes equal gguf-py's `gguf.quants.quantize` and
 * llama.cpp's `quantize_row_*_ref`. The K-quant quantizers follow the same search as ggml's
 * (weighted least squares over a grid of candidate scales per 16- or 32-element sub-block,
 * then six- or eight-bit quantized sub-block scales), with an optional importance vector
 * (llama.cpp's imatrix: one weight per column) that changes the weights of the fit.
 * Inputs must be finite (callers check; sw_ggml_check_finite). */
#ifndef SW_GGML_QUANT_H
#define SW_GGML_QUANT_H

#include <stddef.h>
#include <stdint.h>

/* 1 if sw can quantize into type (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K,
 * Q6_K), else 0. */
int sw_ggml_can_quantize(int type);
/* 1 if sw can dequantize type (the above plus Q2_K, Q3_K). */
int sw_ggml_can_dequantize(int type);

/* Quantize nrows rows of n_per_row floats (src, row-major) into dst (nrows ×
 * sw_ggml_row_size(type, n_per_row) bytes). imatrix: NULL or n_per_row importance weights,
 * used as llama.cpp uses them (K-quants and Q4_0..Q5_1 switch to weighted fits; Q8_0 ignores
 * them). Rows run in parallel
 * (OpenMP). Returns 0, or SW_EINVAL when n_per_row is not a multiple of the block size or the
 * type is not supported. */
int sw_ggml_quantize(int type, const float *src, void *dst, int64_t nrows, int64_t n_per_row,
                     const float *imatrix);

/* Dequantize n elements (a multiple of the block size) of type from src into dst. Returns 0 or
 * SW_EINVAL / SW_EUNSUPPORTED. */
int sw_ggml_dequantize(int type, const void *src, float *dst, int64_t n);

/* Index of the first non-finite value of x[0..n), or -1 when all are finite. */
int64_t sw_ggml_check_finite(const float *x, int64_t n);

#endif
