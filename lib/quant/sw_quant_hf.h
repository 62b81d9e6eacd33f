/* sw_quant_hf — round-to-nearest quantized Hugging Face folders in the layouts other tools load:
 *
 * - rtn, 4 or 8 bits: GPTQ's packed-int32 layout (AutoGPTQ / GPTQModel "gptq" v1 checkpoint
 *   format, what transformers + a GPTQ kernel package load). For a linear weight W [out, in]:
 *     qweight int32 [in·bits/32, out]  element (i, j) = row i of W's column j; the 32/bits values
 *                                      of rows k·p .. k·p+p−1 (p = 32/bits) in word (k, j),
 *                                      row k·p+s at bit s·bits
 *     qzeros  int32 [in/g, out·bits/32] zero point − 1 (the v1 encoding), packed along out
 *     scales  f16   [in/g, out]
 *     g_idx   int32 [in]                i / g
 *   W[j, i] = scales[g_idx[i], j] · (q[i, j] − (qzeros[g_idx[i], j] + 1)). Symmetric: zero =
 *   2^(bits−1), scale = 2·absmax/(2^bits − 1) (GPTQ's Quantizer with sym=True); asymmetric: scale
 *   = (max − min)/(2^bits − 1) over [min(x, 0), max(x, 0)], zero = round(−min/scale) kept in
 *   [1, 2^bits − 1] so that the v1 "− 1" stays representable. g is --group_size (128), or the
 *   whole row for --group_size −1 (per-channel, the int8 W8A16 default). config.json gains
 *   quantization_config {quant_method "gptq", bits, group_size, desc_act false, sym,
 *   checkpoint_format "gptq", ...}.
 * - fp8 (8 bits): compressed-tensors "float-quantized" (llm-compressor's FP8_DYNAMIC, what vLLM
 *   and transformers load): weight F8_E4M3 [out, in] and weight_scale [out, 1] (per channel) or
 *   [1] (per tensor) in the model's float dtype, W = weight · weight_scale, scale = absmax/448;
 *   input activations dynamic per token (W8A8 on Hopper).
 * - nf4 (4 bits): bitsandbytes' serialisation of a Linear4bit with double quantization, what
 *   transformers + bitsandbytes load (quantization_config quant_method "bitsandbytes",
 *   load_in_4bit, bnb_4bit_quant_type nf4, bnb_4bit_use_double_quant):
 *     weight                                  uint8 [(n+1)/2, 1]  two NF4 codes per byte, the
 *                                             first element in the high nibble
 *     weight.absmax                           uint8 [blocks of 64] the blocks' absmax minus
 *                                             their mean, 8-bit blockwise (256) on the dynamic map
 *     weight.nested_absmax                    f32 [ceil(blocks/256)]
 *     weight.quant_map                        f32 [16] the NF4 code values
 *     weight.nested_quant_map                 f32 [256] bitsandbytes' signed dynamic map
 *     weight.quant_state.bitsandbytes__nf4    uint8 JSON {quant_type, blocksize 64, dtype,
 *                                             shape, nested_blocksize 256, nested_dtype
 *                                             float32, nested_offset}
 *   W = quant_map[q] · (nested_quant_map[absmax_q] · nested_absmax + nested_offset), block by
 *   block; codes are the nearest NF4 value of x / absmax (bitsandbytes' argmin).
 * The linear layers of the decoder blocks are quantized; embeddings, norms, lm_head and biases
 * are kept as they are. The folder (config.json, model.safetensors, generation_config.json and
 * the tokenizer files) is written into a temporary folder next to the output and renamed into
 * place when complete. */
#ifndef SW_QUANT_HF_H
#define SW_QUANT_HF_H

#include "sw_qformat.h"

#include <stdint.h>

struct sw_hfq_opts {
    const char *model;      /* HF model folder */
    const char *output_dir; /* folder to create */
    const char *method;     /* "rtn" | "fp8" | "nf4" */
    int bits;               /* 4 or 8 */
    int64_t group_size;     /* > 0, or -1 for per-channel */
    int sym;                /* rtn: symmetric */
    int per_tensor;         /* fp8: one scale per tensor instead of per channel */
    int force;              /* replace an existing output */
};

struct sw_hfq_stats {
    int n_quantized, n_kept;
    uint64_t bytes_in, bytes_out; /* tensor data */
};

int sw_quantize_hf(const struct sw_hfq_opts *o, struct sw_hfq_stats *st);

/* The GPTQ packing of W [out, in] (row-major float32) with bits 4 or 8 and group g (in % g == 0;
 * g = in for per-channel). qweight [in·bits/32 · out], qzeros [in/g · out·bits/32], scales
 * (f16 bits) [in/g · out], g_idx [in]. Returns 0 or SW_EINVAL naming what does not divide. */
int sw_gptq_pack(const float *w, int64_t out, int64_t in, int bits, int64_t g, int sym,
                 int32_t *qweight, int32_t *qzeros, uint16_t *scales, int32_t *g_idx);
/* The inverse: W [out, in] from the packed tensors (AutoGPTQ's dequantization). */
void sw_gptq_unpack(const int32_t *qweight, const int32_t *qzeros, const uint16_t *scales,
                    const int32_t *g_idx, int64_t out, int64_t in, int bits, int64_t ngroups,
                    float *w);

/* NF4 (sw_nf4_code, sw_bnb_dynamic_map, sw_nf4_quantize, sw_nf4_dequantize): sw_qformat.h. */

/* FP8 E4M3 of W [out, in] with per-channel (scale [out]) or per-tensor (scale [1]) scales. */
void sw_fp8_quantize(const float *w, int64_t out, int64_t in, int per_tensor, uint8_t *q,
                     float *scale);

#endif
