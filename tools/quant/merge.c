/* sw-quant merge-lora — fold a PEFT LoRA adapter into its base model (W' = W + scale · B · A,
 * PEFT's merge_and_unload) and write a plain HF model folder, atomically. The work is in
 * lib/sw_merge.c; this file parses the options. A quantized base (a QLoRA adapter's: GPTQ,
 * bitsandbytes NF4, compressed-tensors FP8) is dequantized into a temporary float folder first
 * (lib/quant/sw_quant_hfdeq.h: the weights the adapter was trained over), merged in float32,
 * then quantized again with the base's method and settings (sw_quantize_hf) or, with
 * --requantize false, written as float (--dtype). */
#include "sw_config.h"
#include "sw_err.h"
#include "sw_hub.h"
#include "sw_io.h"
#include "sw_merge.h"
#include "sw_quant_hf.h"
#include "sw_quant_hfdeq.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int sw_quant_merge_lora_main(int argc, char **argv);

struct merge_opts {
    char *model, *adapter, *output, *dtype;
    char *use_hf, *model_revision, *hub_token;
    int64_t max_shard_size;
    int force, requantize;
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
    {"requantize", SW_OPT_BOOL, offsetof(struct merge_opts, requantize), "true",
     "quantized base (QLoRA): quantize the merged weights again with the base's method and "
     "settings (round-to-nearest for GPTQ); false writes them as float (--dtype, default float32)",
     0, 0, NULL, NULL},
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

/* Dequantize the base into <output>.deq-PID, merge (into <output>.mrg-PID when requantizing),
 * quantize again; the temporary folders are removed whatever happens. */
static int merge_quantized(const struct merge_opts *o) {
    size_t n = strlen(o->output) + 32;
    char *deq = malloc(n), *mrg = malloc(n);
    if (!deq || !mrg) {
        free(deq), free(mrg);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    snprintf(deq, n, "%s.deq-%ld", o->output, (long)getpid());
    snprintf(mrg, n, "%s.mrg-%ld", o->output, (long)getpid());
    struct sw_hfdq_opts d = {
        .model = o->model, .output_dir = deq, .dtype = SW_DTYPE_F32, .force = 1};
    struct sw_hfq_opts rq;
    struct sw_hfq_stats st;
    int rc = 0;
    if (!o->force && access(o->output, F_OK) == 0)
        rc = sw_err_set(SW_EINVAL, "'%s' exists (use --force to replace it)", o->output);
    if (rc == 0) rc = sw_dequantize_hf(&d, NULL, &rq);
    if (rc == 0 && o->requantize && !rq.method)
        rc = sw_err_set(SW_EUNSUPPORTED,
                        "%s: sw-quant cannot write this base's quantization again; use "
                        "--requantize false for a float folder",
                        o->model);
    if (rc == 0) {
        struct sw_merge_opts m = {deq,
                                  o->adapter,
                                  o->requantize ? mrg : o->output,
                                  o->requantize ? "float32" : (o->dtype ? o->dtype : "float32"),
                                  (uint64_t)o->max_shard_size,
                                  o->requantize ? 1 : o->force};
        rc = sw_merge_lora(&m);
    }
    if (rc == 0 && o->requantize) {
        rq.model = mrg;
        rq.output_dir = o->output;
        rq.force = o->force;
        rc = sw_quantize_hf(&rq, &st);
        if (rc == 0)
            fprintf(stderr, "sw-quant: merged over the quantized base and wrote %s (%s, %d bits)\n",
                    o->output, rq.method, rq.bits);
    }
    sw_rm_tree_quiet(deq);
    sw_rm_tree_quiet(mrg);
    free(deq), free(mrg);
    return rc;
}

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
        struct sw_model_config c;
        char *cfg = sw_path_join(o.model, "config.json");
        rc = cfg ? sw_model_config_load(cfg, &c) : sw_err_set(SW_ENOMEM, "out of memory");
        free(cfg);
        if (rc == 0 && c.quant.keep) {
            rc = merge_quantized(&o);
        } else if (rc == 0) {
            struct sw_merge_opts m = {
                o.model, o.adapter, o.output, o.dtype, (uint64_t)o.max_shard_size, o.force};
            rc = sw_merge_lora(&m);
        }
    }
    sw_config_release(merge_table, &o);
    return rc;
}
