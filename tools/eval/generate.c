/* sw-eval generate — text generation on the inference engine (lib/infer/sw_engine.h: paged KV
 * cache, continuous batching): greedy (transformers' greedy search, id for id) or sampled
 * (temperature, top-k, top-p, repetition penalty; seeded), from raw text (--prompt), one user
 * message (--query) or a file of conversations (--messages) rendered with the chat template.
 * Prints the generated text, one line per prompt (newlines escaped), or JSON lines with --json
 * (see docs/eval.md). */
#include "eval.h"

#include "sw_config.h"
#include "sw_err.h"
#include "sw_eval.h"
#include "sw_hub.h"
#include "sw_template.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct generate_opts {
    char *model, *adapter, *tokenizer, *prompt, *query, *messages, *system, *template_name;
    char *device;
    char *use_hf, *model_revision, *hub_token;
    int64_t max_new_tokens, top_k, seed;
    double temperature, top_p, repetition_penalty;
    int json, skip_special_tokens;
};

#define F(x) offsetof(struct generate_opts, x)
static const struct sw_opt generate_table[] = {
    {"model", SW_OPT_STRING, F(model), NULL,
     "HF model folder (config.json, weights, tokenizer.json[.gz]) or hub id (org/name); required",
     0, 0, NULL, NULL},
    {"adapter", SW_OPT_STRING, F(adapter), NULL, "PEFT LoRA adapter folder or hub id", 0, 0, NULL,
     NULL},
    {"tokenizer", SW_OPT_STRING, F(tokenizer), NULL,
     "tokenizer folder, tokenizer.json or hub id (default: the model folder)", 0, 0, NULL, NULL},
    {"prompt", SW_OPT_STRING, F(prompt), NULL,
     "raw text to continue (encoded with special tokens, e.g. BOS; no chat template)", 0, 0, NULL,
     NULL},
    {"query", SW_OPT_STRING, F(query), NULL,
     "one user message, rendered with the chat template and the generation prompt", 0, 0, NULL,
     NULL},
    {"messages", SW_OPT_STRING, F(messages), NULL,
     "file of conversations, one per row (messages/sharegpt/query/alpaca JSON or JSON lines, "
     "gzip ok, - = stdin); a final assistant turn is dropped and reported as reference",
     0, 0, NULL, NULL},
    {"system", SW_OPT_STRING, F(system), NULL,
     "system prompt for --query/--messages rows without one (\"\" = none; default: the "
     "template's)",
     0, 0, NULL, NULL},
    {"template", SW_OPT_STRING, F(template_name), NULL,
     "chat template (default: recognised from tokenizer_config.json's chat_template)", 0, 0, NULL,
     NULL},
    {"max_new_tokens", SW_OPT_INT, F(max_new_tokens), "-1",
     "tokens to generate at most (-1: generation_config.json's max_new_tokens, else 128)", -1, 1e7,
     NULL, NULL},
    {"temperature", SW_OPT_FLOAT, F(temperature), "-1",
     "0 = greedy; > 0 = sample at this temperature; -1 = generation_config.json (sampling only "
     "when its do_sample is true)",
     -1, 1e6, NULL, NULL},
    {"top_k", SW_OPT_INT, F(top_k), "-1",
     "sampling: keep the k most likely tokens (0 = off; -1 = generation_config.json, else 50)", -1,
     1e9, NULL, NULL},
    {"top_p", SW_OPT_FLOAT, F(top_p), "-1",
     "sampling: nucleus probability (1 = off; -1 = generation_config.json, else 1)", -1, 1, NULL,
     NULL},
    {"repetition_penalty", SW_OPT_FLOAT, F(repetition_penalty), "-1",
     "penalty > 0 on ids already in the sequence (1 = off; -1 = generation_config.json, else 1)",
     -1, 1e6, NULL, NULL},
    {"seed", SW_OPT_INT, F(seed), "42", "sampling seed", 0, 9.2e18, NULL, NULL},
    {"device", SW_OPT_CHOICE, F(device), "cpu", "where the engine runs (cuda: a CUDA=1 build)", 0,
     0, "cpu|cuda", NULL},
    {"json", SW_OPT_BOOL, F(json), "false",
     "one JSON object per prompt: index, prompt_tokens, ids, text, finish_reason, [reference]", 0,
     0, NULL, NULL},
    {"skip_special_tokens", SW_OPT_BOOL, F(skip_special_tokens), "true",
     "drop special tokens (the EOS) from the printed text", 0, 0, NULL, NULL},
    SW_HUB_OPT_ROWS(struct generate_opts),
    SW_OPT_END,
};
#undef F

static const struct sw_cli generate_cli = {
    .tool = "sw-eval",
    .command = "generate",
    .usage = "sw-eval generate --model DIR [--adapter DIR] (--prompt TEXT | --query TEXT | "
             "--messages FILE) [options]",
    .summary =
        "Generate text and print it: one line per prompt, in input order (newlines, tabs and\n"
        "backslashes in the text print as \\n, \\t and \\\\, so a line is a prompt's whole "
        "answer),\n"
        "or JSON lines with --json (the exact text). Runs on sw's inference engine (KV cache,\n"
        "continuous batching: the rows of --messages are generated together). Greedy decoding\n"
        "gives transformers' generate() ids exactly; sampling applies the repetition penalty,\n"
        "temperature, top-k and top-p as transformers does, with sw's own seeded generator (the\n"
        "same draws whatever else is in the batch). Stops after an EOS id\n"
        "(generation_config.json, config.json, or the tokenizer's eos_token) or max_new_tokens.",
    .opts = generate_table,
    .min_pos = 0,
    .max_pos = 0,
};

int sw_eval_generate_main(int argc, char **argv) {
    struct generate_opts o;
    char **pos = NULL;
    int npos = 0;
    int rc = sw_cli_parse(&generate_cli, &o, argc, argv, &pos, &npos);
    if (rc != 0) return rc > 0 ? 0 : rc;
    free(pos);
    if (!o.model) {
        rc = sw_err_set(SW_EUSAGE, "--model is required (see sw-eval generate --help)");
    } else if ((rc = sw_hub_resolve_arg(&o.model, SW_HUB_NEED_MODEL, o.use_hf, o.model_revision,
                                        o.hub_token)) == 0 &&
               (rc = sw_hub_resolve_arg(&o.adapter, SW_HUB_NEED_MODEL, o.use_hf, NULL,
                                        o.hub_token)) == 0 &&
               (rc = sw_hub_resolve_arg(&o.tokenizer, SW_HUB_NEED_TOKENIZER, o.use_hf, NULL,
                                        o.hub_token)) == 0) {
        struct sw_generate_opts g = {
            .model = o.model,
            .adapter = o.adapter,
            .prompt = o.prompt,
            .query = o.query,
            .messages = o.messages,
            .template_name = o.template_name,
            .system = o.system,
            .tokenizer = o.tokenizer,
            .device = strcmp(o.device, "cuda") == 0 ? SW_DEVICE_CUDA : SW_DEVICE_CPU,
            .req = {o.max_new_tokens, o.temperature, o.top_k, o.top_p, o.repetition_penalty,
                    (uint64_t)o.seed},
            .json = o.json,
            .skip_special = o.skip_special_tokens,
        };
        rc = sw_generate_run(&g, stdout);
    }
    sw_config_release(generate_table, &o);
    return rc;
}
