/* sw_gptq — GPTQ (Frantar et al., 2022) on one linear weight, as AutoGPTQ / GPTQModel's
 * `GPTQ.fasterquant` does it, and the GPTQ v1 packing of its integer codes.
 *
 * Given W [out, in] and the Hessian H = 2·XᵀX / n [in, in] of the layer's calibration inputs X:
 *   1. dead inputs (H[i, i] = 0) get H[i, i] = 1 and W[:, i] = 0;
 *   2. act-order (desc_act): columns are processed in the order of decreasing H[i, i];
 *   3. dampening: H += damp_percent · mean(diag H) · I;
 *   4. U = upper Cholesky factor of H⁻¹ (cholesky → cholesky_inverse → cholesky(upper));
 *   5. columns left to right in blocks of block_size (128): each column is quantized with the
 *      current scale/zero of its group, its error e = (w − q) / U[i, i] is spread over the rest of
 *      the block (w[k] −= e · U[i, k]), and after the block over the later columns ("lazy batch"
 *      update); a group's scale/zero (GPTQ's Quantizer.find_params: min/max over the group,
 *      including 0; sym: ±max|x|, zero 2^(bits−1)) is found when its first column is reached,
 *      from the weights as they stood at the start of the current block — the reference reads
 *      W, not the block's working copy, so groups that begin inside a block see the block's
 *      updates only through that copy. sw reproduces this exactly.
 * The result is the integer codes q [out, in] (original column order), the per-group scales and
 * zero points in the order groups were formed, and g_idx [in] (the group of each input column;
 * with act-order g_idx[j] = position of column j in the processing order / group_size, as
 * AutoGPTQ writes it for static_groups = false). W ≈ scale[g_idx[j]] · (q − zero[g_idx[j]]).
 *
 * sw computes in double precision (AutoGPTQ uses float32 on the GPU); rows are independent given
 * U, so they run in parallel. Asymmetric zero points are kept ≥ 1 so that the GPTQ v1 layout
 * (which stores zero − 1) can hold them; AutoGPTQ lets 0 through and its packer then corrupts
 * the neighbouring zero (a group whose minimum is above −scale/2; symmetric groups are never
 * affected). */
#ifndef SW_GPTQ_H
#define SW_GPTQ_H

#include <stdint.h>

struct sw_gptq_opts {
    int bits;            /* 2..8 (sw writes 4 and 8) */
    int64_t group_size;  /* > 0, or -1: one group per row */
    int sym;             /* symmetric (GPTQ's default) */
    int desc_act;        /* act-order */
    double damp_percent; /* 0.01 */
    int64_t block_size;  /* 128 */
};

/* The quantized layer. ngroups = in / group_size (1 for group_size −1). */
struct sw_gptq_result {
    int64_t out, in, ngroups;
    uint8_t *q;     /* [out, in] codes in 0 .. 2^bits − 1 */
    float *scales;  /* [ngroups, out] */
    int32_t *zeros; /* [ngroups, out] */
    int32_t *g_idx; /* [in] */
    float *deq;     /* [out, in] scale · (q − zero), float32 scales (GPTQ's Q) */
    double damp;    /* the damping percentage that made H positive definite */
};

/* Quantize W [out, in] (row-major float32) with Hessian H [in, in] (row-major, symmetric,
 * double). H is not modified. Fills *r (free with sw_gptq_result_release). Errors: SW_EINVAL for
 * a group size that does not divide in or bad bits (the message names what), SW_ERANGE when H +
 * damping is not positive definite even at damp_percent 1 (GPTQModel's retry: +0.0025 per try),
 * SW_ENOMEM. */
int sw_gptq_quantize(const float *w, int64_t out, int64_t in, const double *H,
                     const struct sw_gptq_opts *o, struct sw_gptq_result *r);
void sw_gptq_result_release(struct sw_gptq_result *r);

/* Pack codes into the GPTQ v1 layout (sw_quant_hf.h): qweight [in·bits/32, out], qzeros
 * [ngroups, out·bits/32] (zero − 1), scales f16 [ngroups, out]; g_idx is copied by the caller.
 * bits 4 or 8; in and out multiples of 32/bits. */
int sw_gptq_pack_codes(const struct sw_gptq_result *r, int bits, int32_t *qweight, int32_t *qzeros,
                       uint16_t *scales16);

/* Σ over rows of X·(W − Ŵ)ᵀ squared, with H = XᵀX given: tr((W − Ŵ) H (W − Ŵ)ᵀ). The layer
 * output error GPTQ minimises (for tests and reports). */
double sw_gptq_output_error(const float *w, const float *wq, int64_t out, int64_t in,
                            const double *H);

#endif
