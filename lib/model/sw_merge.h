/* sw_merge — fold a PEFT LoRA adapter into its base model: W' = W + scale · B · A for every
 * adapted linear layer (scale = lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora), what
 * PEFT's merge_and_unload() computes, written as a plain HF model folder that transformers,
 * sw-eval, sw-train and sw-serve load like any other.
 *
 * The output folder holds config.json (the base's, with torch_dtype/dtype updated when the dtype
 * changes), model.safetensors (or shards + index above max_shard_bytes) with every base tensor in
 * the base's order and dtype (or the requested one), and copies of generation_config.json and the
 * tokenizer files of the base folder (of the adapter folder for those the base lacks). It is
 * written into a temporary folder next to the output and renamed into place at the end, so the
 * output either does not exist or is complete. When neither folder has a generation_config.json,
 * the one transformers derives from config.json is written (sw_generation_config_default_json). */
#ifndef SW_MERGE_H
#define SW_MERGE_H

#include "sw_hfconfig.h"

#include <stdint.h>

struct sw_merge_opts {
    const char *model;        /* base HF model folder */
    const char *adapter;      /* PEFT adapter folder */
    const char *output;       /* folder to create */
    const char *dtype;        /* NULL: keep each tensor's dtype; else float32|bfloat16|float16 */
    uint64_t max_shard_bytes; /* 0: 5 GB (transformers' default) */
    int force;                /* replace an existing output folder */
};

/* Merge as described above. The adapter must fit the base (sw_adapter_check; every adapted
 * module's base weight present with the adapter's shape). The delta is computed in float32 and
 * added to the float32 value of the base weight, then rounded once to the output dtype. Returns 0
 * or a negative error naming the file / tensor; on error the output is untouched. */
int sw_merge_lora(const struct sw_merge_opts *o);

/* The generation_config.json transformers' GenerationConfig.from_model_config derives from a
 * model's config.json: {"_from_model_config": true} plus its bos/eos/pad token ids (those set),
 * sorted, indented by 2, newline-terminated. malloc'ed; NULL when out of memory. */
char *sw_generation_config_default_json(const struct sw_model_config *c);

#endif
