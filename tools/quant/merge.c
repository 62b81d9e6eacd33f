/* sw-quant merge-lora — fold a PEFT LoRA adapter into its base model (W' = W + scale · B · A,
 * PEFT's merge_and_unload) and write a plain HF model folder, atomically. The work is in
 * lib/sw_merge.c; this file parses the options. */
#include "sw_config.h"
#include "sw_err.h"
#include "sw_hub.h"
#include "sw_io.h"
#include "sw_merge.h"

#include <stddef.h>
#include <stdlib.h>

int sw_quant_merge_lora_main(int argc, char **argv);

struct merge_opts {
    char *model, *adapter, *output, *dtype;
    char *use_hf, *model_revision, *hub_token;
    int64_t max_shard_size;
    int force;
};

static const struct sw_opt merge_table[] = {
    {"model", SW_OPT_STRING, offsetof(struct merge_opts, model), NULL,
     "base HF model folder or hub id (org/name); required", 0, 0, NULL, NULL},
    {"adapter", SW_OPT_STRING, offsetof(struct merge_opts, adapter), NULL,
     "PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors) or hub id; "
     "required",
     0, 0, NULL, NULL},
    {"output_dir", SW_OPT_STRING, offsetof(struct merge_opts, output), NULL,
     "folder to create with the merged model (ms-swift export's name); required", 0, 0, NULL,
     "output"},
    {"dtype", SW_OPT_CHOICE, offsetof(struct merge_opts, dtype), NULL,
     "dtype of the written float tensors (default: each base tensor's own)", 0, 0,
     "float32|bfloat16|float16", NULL},
    {"max_shard_size", SW_OPT_INT, offsetof(struct merge_opts, max_shard_size), "5000000000",
     "bytes per model.safetensors shard (transformers' 5GB default)", 1, 9.2e18, NULL, NULL},
    {"force", SW_OPT_BOOL, offsetof(struct merge_opts, force), "false",
     "replace an existing output folder", 0, 0, NULL, NULL},
    SW_HUB_OPT_ROWS(struct merge_opts),
    SW_OPT_END,
};

static const struct sw_cli merge_cli = {
    .tool = "sw-quant",
    .command = "merge-lora",
    .usage = "sw-quant merge-lora --model DIR --adapter DIR --output_dir DIR [--dtype T] "
             "[--force]",
    .summary =
        "Merge a LoRA adapter into its base model: every adapted linear weight becomes\n"
        "W + scale * B * A (scale = lora_alpha / r, or / sqrt(r) with use_rslora), computed in\n"
        "float32 and rounded once to the output dtype. Writes config.json, model.safetensors\n"
        "(sharded above --max_shard_size), the tokenizer files (the base's, else the adapter\n"
        "folder's) and generation_config.json (the base's, else the adapter folder's, else the\n"
        "default transformers derives from the base's config.json: its bos/eos/pad token ids)\n"
        "into a temporary folder and renames it to --output_dir (alias --output) when complete.",
    .opts = merge_table,
    .min_pos = 0,
    .max_pos = 0,
};

int sw_quant_merge_lora_main(int argc, char **argv) {
    struct merge_opts o;
    char **pos = NULL;
    int npos = 0;
    int rc = sw_cli_parse(&merge_cli, &o, argc, argv, &pos, &npos);
    if (rc != 0) return rc > 0 ? 0 : rc;
    free(pos);
    if (!o.model || !o.adapter || !o.output) {
        rc = sw_err_set(SW_EUSAGE, "--model, --adapter and --output_dir are required "
                                   "(see sw-quant merge-lora --help)");
    } else if ((rc = sw_hub_resolve_arg(&o.model, SW_HUB_NEED_MODEL, o.use_hf, o.model_revision,
                                        o.hub_token)) == 0 &&
               (rc = sw_hub_resolve_arg(&o.adapter, SW_HUB_NEED_MODEL, o.use_hf, NULL,
                                        o.hub_token)) == 0 &&
               (rc = sw_model_dir_check("--model", o.model)) == 0) {
        struct sw_merge_opts m = {o.model, o.adapter, o.output, o.dtype, (uint64_t)o.max_shard_size,
                                  o.force};
        rc = sw_merge_lora(&m);
    }
    sw_config_release(merge_table, &o);
    return rc;
}
