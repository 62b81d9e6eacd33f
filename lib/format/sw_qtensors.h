/* sw_qtensors — the tensors of one quantized linear in a Hugging Face quantized folder, read into
 * the model's quantized-weight form (struct sw_qweight, lib/core/sw_qformat.h). The layouts are
 * those sw-quant writes (lib/quant/sw_quant_hf.h) and their producers' own:
 *  - GPTQ (AutoGPTQ / GPTQModel, checkpoint_format gptq v1 or gptq_v2): <p>.qweight int32
 *    [in·bits/32, out], <p>.qzeros int32 [groups, out·bits/32], <p>.scales F16/BF16/F32
 *    [groups, out], <p>.g_idx int32 [in] (optional; act-order permutes it); bits = 4 or 8 from
 *    the shapes;
 *  - AWQ (AutoAWQ GEMM, 4 bits): <p>.qweight int32 [in, out/8], <p>.qzeros int32
 *    [groups, out/8] (both packed along the output in AutoAWQ's nibble order 0 2 4 6 1 3 5 7),
 *    <p>.scales [groups, out]; told from GPTQ by qweight's shape;
 *  - bitsandbytes 4-bit NF4 (Linear4bit.state_dict, with or without double quantization):
 *    <p>.weight uint8, <p>.weight.absmax (uint8 with nested_absmax / nested_quant_map, or F32),
 *    <p>.weight.quant_map, <p>.weight.quant_state.bitsandbytes__nf4 (JSON bytes: blocksize,
 *    shape, nested_blocksize 256, nested_offset);
 *  - bitsandbytes LLM.int8 (Linear8bitLt): <p>.weight I8 [out, in], <p>.SCB F32 [out]
 *    (W = weight · SCB / 127);
 *  - compressed-tensors float-quantized: <p>.weight F8_E4M3 [out, in], <p>.weight_scale
 *    [out, 1] or [1] (any float dtype).
 * Every shape, dtype and index is checked against W's [rows, cols] before use (the bytes are
 * untrusted); errors name the file's tensor. */
#ifndef SW_QTENSORS_H
#define SW_QTENSORS_H

#include "sw_qformat.h"
#include "sw_safetensors.h"

#include <stdint.h>

/* Linear prefix p (e.g. "model.layers.0.mlp.down_proj") of W [rows, cols]: 1 and *out filled
 * (host arrays, sw_qweight_free_host) when s holds it in one of the layouts above; 0 when it
 * does not (a plain float <p>.weight, or nothing); a negative sw_err for a malformed layout.
 * gptq_v2: GPTQ zero points stored as they are (else v1: stored + 1). */
int sw_qtensors_read(const struct sw_st_set *s, const char *prefix, int64_t rows, int64_t cols,
                     int gptq_v2, struct sw_qweight *out);

/* Whether tensor name belongs to a quantized layout above (a suffix such as ".qweight",
 * ".weight.absmax", ".SCB", ".weight_scale"): loaders do not report those as unused. */
int sw_qtensors_is_aux(const char *name);

#endif
