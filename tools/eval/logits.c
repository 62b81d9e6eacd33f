/* sw-eval logits — full logits and transformers' causal-LM loss of a batch of token ids:
 * safetensors in (input_ids [B, T], optional attention_mask / labels / position_ids), safetensors
 * out (logits [B, T, V], loss [1], count [1]), written atomically. Loss definition: sw_eval.h and
 * docs/eval.md. */
#include "eval.h"

#include "sw_config.h"
#include "sw_err.h"
#include "sw_eval.h"
#include "sw_hub.h"

#include <stddef.h>
#include <stdlib.h>

struct logits_opts {
    char *model, *adapter, *input, *output;
    char *use_hf, *model_revision, *hub_token;
    int64_t max_tokens;
};

static const struct sw_opt logits_table[] = {
    {"model", SW_OPT_STRING, offsetof(struct logits_opts, model), NULL,
     "HF model folder (config.json + model.safetensors or shards) or hub id (org/name); required",
     0, 0, NULL, NULL},
    {"adapter", SW_OPT_STRING, offsetof(struct logits_opts, adapter), NULL,
     "PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors) or hub id", 0, 0,
     NULL, NULL},
    {"input", SW_OPT_STRING, offsetof(struct logits_opts, input), NULL,
     "safetensors file with input_ids [B, T] (int32/int64) and optional attention_mask, labels, "
     "position_ids; required",
     0, 0, NULL, NULL},
    {"output", SW_OPT_STRING, offsetof(struct logits_opts, output), NULL,
     "safetensors file to write: logits F32 [B, T, V], loss F32 [1], count I64 [1]; required", 0, 0,
     NULL, NULL},
    {"max_tokens", SW_OPT_INT, offsetof(struct logits_opts, max_tokens), "2048",
     "tokens per forward pass (rows are grouped to bound memory)", 1, 1e9, NULL, NULL},
    SW_HUB_OPT_ROWS(struct logits_opts),
    SW_OPT_END,
};

static const struct sw_cli logits_cli = {
    .tool = "sw-eval",
    .command = "logits",
    .usage = "sw-eval logits --model DIR [--adapter DIR] --input IN.safetensors "
             "--output OUT.safetensors",
    .summary =
        "Run the model over input_ids and write the full logits and transformers' loss with\n"
        "labels = input_ids (or the given labels): the mean over rows and positions t < T-1\n"
        "whose label[t+1] is not -100 of -log softmax(logits[t])[label[t+1]]. As in\n"
        "transformers, an attention_mask does not exclude padding from the loss: give labels\n"
        "with -100 there to exclude it. Right padding only. NaN when nothing is a target.",
    .opts = logits_table,
    .min_pos = 0,
    .max_pos = 0,
};

int sw_eval_logits_main(int argc, char **argv) {
    struct logits_opts o;
    char **pos = NULL;
    int npos = 0;
    int rc = sw_cli_parse(&logits_cli, &o, argc, argv, &pos, &npos);
    if (rc != 0) return rc > 0 ? 0 : rc;
    free(pos);
    if (!o.model || !o.input || !o.output) {
        rc = sw_err_set(SW_EUSAGE, "--model, --input and --output are required "
                                   "(see sw-eval logits --help)");
    } else if ((rc = sw_hub_resolve_arg(&o.model, SW_HUB_NEED_MODEL, o.use_hf, o.model_revision,
                                        o.hub_token)) == 0 &&
               (rc = sw_hub_resolve_arg(&o.adapter, SW_HUB_NEED_MODEL, o.use_hf, NULL,
                                        o.hub_token)) == 0) {
        struct sw_eval_logits_opts lo = {o.model, o.adapter, o.input, o.output, o.max_tokens};
        rc = sw_eval_logits_run(&lo);
    }
    sw_config_release(logits_table, &o);
    return rc;
}
