/* sw_awq — the pieces of AWQ (Lin et al., 2023) as AutoAWQ implements them
 * (awq/quantize/quantizer.py, awq/modules/linear/gemm.py), and AutoAWQ's "gemm" packed layout.
 *
 * - Pseudo-quantization (AwqQuantizer.pseudo_quantize_tensor, zero_point = True): per row and
 *   group of g inputs, scale = max(max − min, 1e-5) / (2^bits − 1) over the group's own min/max
 *   (0 is not forced in, unlike GPTQ), zero = clamp(−round(min / scale), 0, 2^bits − 1),
 *   q = clamp(round(w / scale) + zero, 0, 2^bits − 1), ŵ = (q − zero) · scale.
 * - Scale search (_search_best_scale / _compute_best_scale, duo_scaling): for a group of linears
 *   sharing an input x, x_mean[c] = mean |x[:, c]| and w_mean[c] = mean over the group's rows of
 *   |w[r, c]| / (max |w| of that row's quantization group + 1e-6); for ratio α = k/20,
 *   k = 0..19: s = clamp(x_mean^α / (w_mean^(1−α) + 1e-4), 1e-4), s /= sqrt(max s · min s);
 *   the candidate weights are Q(W·diag(s))·diag(s)⁻¹ and the α whose block output has the least
 *   mean squared error against the float block wins (the caller computes the block output).
 * - Clipping search (_compute_best_clip, n_grid 20, max_shrink 0.5, 512 sampled tokens): per
 *   output row and group, the bound m = max|w| · (1 − k/20), k = 0..9, that minimises the mean
 *   over tokens of (Σ_group x·Q(clamp(w, −m, m)) − Σ_group x·w)²; then w = clamp(w, −m, m).
 * - Packing (WQLinear_GEMM.from_linear, 4 bits): qweight int32 [in, out/8] — the codes
 *   transposed to [in, out], eight consecutive output columns per word in the order
 *   [0, 2, 4, 6, 1, 3, 5, 7] (nibble i holds column 8c + order[i]); qzeros int32 [in/g, out/8]
 *   the zero points (not minus 1) packed the same way; scales f16 [in/g, out].
 *   W[r, i] = scales[i/g, r] · (q[i, r] − zero[i/g, r]). */
#ifndef SW_AWQ_H
#define SW_AWQ_H

#include <stdint.h>

/* Pseudo-quantize W [out, in] in groups of g (in % g == 0): ŵ into wq (may equal w), and when
 * not NULL the codes q [out, in], scales [in/g, out] and zeros [in/g, out]. */
void sw_awq_pseudo_quant(const float *w, int64_t out, int64_t in, int bits, int64_t g, float *wq,
                         uint8_t *q, float *scales, int32_t *zeros);

/* w_mean [in] of the linears ws[0..nw) (each [outs[k], in]) in groups of g. */
void sw_awq_w_mean(const float *const *ws, const int64_t *outs, int nw, int64_t in, int64_t g,
                   float *w_mean);
/* The candidate scales s [in] for ratio from x_mean and w_mean (duo scaling). */
void sw_awq_ratio_scales(const float *x_mean, const float *w_mean, int64_t in, double ratio,
                         float *s);
/* Q(W·diag(s))·diag(s)⁻¹ of W [out, in] into wq. */
void sw_awq_scaled_quant(const float *w, int64_t out, int64_t in, const float *s, int bits,
                         int64_t g, float *wq);

/* The clipping search on W [out, in] with inputs x [n, in] (every step-th token is used, step =
 * max(1, n / 512)); clamps W in place to the chosen bounds. */
void sw_awq_clip(float *w, int64_t out, int64_t in, const float *x, int64_t n, int bits, int64_t g);

/* AutoAWQ's GEMM packing (4 bits): codes q [out, in], zeros and scales [in/g, out] into qweight
 * [in, out/8], qzeros [in/g, out/8], scales16 [in/g, out]. Returns 0 or SW_EINVAL (out not a
 * multiple of 8, in not a multiple of g). */
int sw_awq_pack(const uint8_t *q, const int32_t *zeros, const float *scales, int64_t out,
                int64_t in, int64_t g, int32_t *qweight, int32_t *qzeros, uint16_t *scales16);
/* The inverse: W [out, in] float32 from the packed tensors (AutoAWQ's dequantize_gemm). */
void sw_awq_unpack(const int32_t *qweight, const int32_t *qzeros, const uint16_t *scales16,
                   int64_t out, int64_t in, int64_t g, float *w);

#endif
