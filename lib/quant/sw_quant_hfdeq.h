/* sw_quant_hfdeq — the inverse of sw_quantize_hf: an HF quantized folder (GPTQ, bitsandbytes
 * NF4 / LLM.int8, compressed-tensors FP8: the layouts lib/format/sw_qtensors.h reads) written
 * back as a plain float folder whose decoder linears hold exactly the dequantized weights the
 * model multiplies by (sw_qweight_dequant_rows), every other tensor byte for byte, config.json
 * without quantization_config, and the tokenizer / generation files copied. Written into a
 * temporary folder next to the output and renamed when complete. sw-quant dequant on a folder
 * and merge-lora over a quantized base use it. */
#ifndef SW_QUANT_HFDEQ_H
#define SW_QUANT_HFDEQ_H

#include "sw_dtype.h"
#include "sw_quant_hf.h"

struct sw_hfdq_opts {
    const char *model;      /* quantized HF folder */
    const char *output_dir; /* folder to create */
    enum sw_dtype dtype;    /* of the dequantized weights: F32, BF16 or F16 */
    int force;              /* replace an existing output */
};

/* Dequantize as above. st (may be NULL) counts the dequantized and kept tensors. requant (may be
 * NULL) receives the sw_quantize_hf options that write the folder's layout again (method, bits,
 * group_size, sym, per_tensor; model/output_dir left NULL), or method NULL when sw-quant cannot
 * write it (bitsandbytes LLM.int8). SW_EINVAL when the folder is not quantized. */
int sw_dequantize_hf(const struct sw_hfdq_opts *o, struct sw_hfq_stats *st,
                     struct sw_hfq_opts *requant);

#endif
