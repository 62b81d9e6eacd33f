/* sw_qformat — quantized linear weights as the model holds them (a frozen base W [rows, cols] =
 * [out, in] that is never float in memory), the reference dequantizer and the quantizers used
 * at load. It lives in lib/core because three layers need the same definition: kernels/ (the
 * backends' dequantize-in-GEMM ops take a struct sw_qweight), lib/format (reading the tensors
 * of the HF quantized layouts into one), lib/model (uploading, quantizing at load) and lib/quant
 * (folder dequantization, NF4 packing) — and kernels/ sees only lib/core.
 *
 * The formats (W[r, c] is element c of output row r; arrays row-major):
 *  - SW_QFMT_INT8 / SW_QFMT_INT4 (GPTQ/RTN int8 and int4, bitsandbytes LLM.int8 weights):
 *      q      uint8 codes: INT8 [rows, cols], one per byte; INT4 [rows, cols/2], column 2i in the
 *             low nibble, 2i+1 in the high nibble (cols even)
 *      scale  float [rows, ngroups]; group of column c = g_idx ? g_idx[c] : c / group
 *      zero   float [rows, ngroups], or NULL: every zero is zero_const
 *      W[r, c] = scale[r, g] · (q[r, c] − zero[r, g])
 *  - SW_QFMT_NF4 (bitsandbytes Linear4bit, blocks of `group` = 64 over the flattened W):
 *      q      uint8 [(rows·cols + 1)/2], element 2i in the HIGH nibble (bitsandbytes' order)
 *      code   float [16] the NF4 values
 *      with double quantization (qabsmax != NULL): absmax of block b =
 *        nested_map[qabsmax[b]] · nested_absmax[b / 256] + nested_offset
 *      else absmax[b] = scale[b]
 *      W[i] = code[q_i] · absmax[i / group]   (i = r·cols + c)
 *  - SW_QFMT_FP8 (compressed-tensors float-quantized): q E4M3 [rows, cols], scale float [rows]
 *      (a per-tensor scale repeated), W[r, c] = fp8(q[r, c]) · scale[r].
 * The pointers are backend memory when the struct describes a model's weight (device pointers on
 * CUDA), host memory for the host functions below. */
#ifndef SW_QFORMAT_H
#define SW_QFORMAT_H

#include <stddef.h>
#include <stdint.h>

enum sw_qfmt {
    SW_QFMT_NONE = 0,
    SW_QFMT_INT8,
    SW_QFMT_INT4,
    SW_QFMT_NF4,
    SW_QFMT_FP8,
    SW_QFMT_COUNT
};

struct sw_qweight {
    int fmt; /* enum sw_qfmt */
    int64_t rows, cols;
    int64_t group;   /* INT: columns per group (cols: per channel); NF4: block size (64) */
    int64_t ngroups; /* INT: scale/zero columns; NF4: blocks; FP8: 1 */
    uint8_t *q;
    float *scale;
    float *zero;
    float zero_const;
    int32_t *g_idx; /* INT: [cols] or NULL */
    /* NF4 */
    float *code;          /* [16] */
    uint8_t *qabsmax;     /* [ngroups] or NULL (no double quantization: scale holds absmax) */
    float *nested_absmax; /* [(ngroups + 255) / 256] */
    float *nested_map;    /* [256] */
    float nested_offset;
};

/* "int8", "int4", "nf4", "fp8" ("none" for SW_QFMT_NONE). */
const char *sw_qfmt_name(int fmt);

/* What the model is asked to do with quantized weights (struct sw_model_config's quant):
 * load_fmt != NONE quantizes every float decoder linear weight while loading (QLoRA's
 * quantize-at-load: sw-train --quant_method), with bits/group/sym/double_quant; keep = 1 keeps
 * weights that arrive quantized (an HF quantized folder) quantized, 0 dequantizes them into float
 * parameters. method names the folder's quantization_config for messages ("gptq",
 * "bitsandbytes", "compressed-tensors"), "" when none. */
struct sw_quant_spec {
    int load_fmt;       /* enum sw_qfmt */
    int64_t group_size; /* INT4/INT8 at load: > 0, or -1 per channel */
    int sym;            /* INT at load: symmetric (GPTQ's sym=True) */
    int double_quant;   /* NF4 at load: quantize the block absmax too (bnb_4bit_use_double_quant) */
    int keep;           /* pre-quantized tensors stay quantized */
    char method[32];
    /* From a folder's quantization_config (lib/format/sw_hfconfig.c): */
    int gptq_v2;          /* GPTQ qzeros hold the zero point itself (checkpoint_format
                             "gptq_v2"), not zero − 1 (v1, AutoGPTQ's) */
    char unsupported[96]; /* non-empty: the folder's quantization is one sw cannot load
                             (what it is); sw_model_new refuses it */
};

/* Bytes the arrays of q take (what one quantized weight costs in memory). */
size_t sw_qweight_nbytes(const struct sw_qweight *q);

/* Reference dequantization (host memory): out[(c1 − c0)] = W[r, c0 .. c1). INT4 needs nothing
 * special about c0. */
void sw_qweight_dequant_span(const struct sw_qweight *q, int64_t r, int64_t c0, int64_t c1,
                             float *out);
/* Rows [r0, r0 + n) of W into out [n, cols]. */
void sw_qweight_dequant_rows(const struct sw_qweight *q, int64_t r0, int64_t n, float *out);

/* Host quantizers into a host struct whose arrays they malloc (sw_qweight_free_host frees them).
 * w [rows, cols] float32, finite.
 *  - INT8/INT4 round-to-nearest, GPTQ's Quantizer as sw-quant's rtn (lib/quant/sw_quant_hf.h):
 *    scales rounded to float16, sym zero 2^(bits−1), asym zero in [1, 2^bits − 1]; group −1 (or
 *    one wider than the row) = per channel; cols % group == 0 and (INT4) cols even, else
 *    SW_EINVAL.
 *  - NF4: bitsandbytes' quantize_4bit (blocks of 64, nearest code) with double_quant as
 *    bitsandbytes (8-bit blockwise of absmax − mean over 256 blocks on the dynamic map).
 *  - FP8: per-channel absmax / 448.
 * Returns 0, SW_EINVAL (shape), SW_ENOMEM. */
int sw_qweight_quantize(const float *w, int64_t rows, int64_t cols, int fmt, int64_t group, int sym,
                        int double_quant, struct sw_qweight *out);
void sw_qweight_free_host(struct sw_qweight *q);

/* bitsandbytes' NF4 code values and its signed 8-bit dynamic map (create_dynamic_map), and the
 * NF4 with double quantization of n values (lib/quant writes these into bitsandbytes folders):
 * packed [(n+1)/2], qabsmax [ceil(n/64)], nested_absmax [ceil(ceil(n/64)/256)], *offset. */
const float *sw_nf4_code(void);
const float *sw_bnb_dynamic_map(void);
int sw_nf4_quantize(const float *x, int64_t n, uint8_t *packed, uint8_t *qabsmax,
                    float *nested_absmax, float *offset);
/* The inverse (bitsandbytes' dequantize_4bit with the default maps), into y [n]. */
void sw_nf4_dequantize(const uint8_t *packed, const uint8_t *qabsmax, const float *nested_absmax,
                       float offset, int64_t n, float *y);

#endif
