/* eval.h — the subcommands of sw-eval, each a function taking the arguments after the
 * subcommand word (argv[0] is the word itself) and returning 0 or a negative sw_err with the
 * message set; main.c maps that to the exit status. The machinery is in lib/infer/ (the
 * evaluation model, logits, generation); the command code (file formats, prompts, output) is here.
 */
#ifndef SW_EVAL_TOOL_H
#define SW_EVAL_TOOL_H

#include "sw_eval.h"

#include <stdio.h>

/* sw-eval logits --model DIR [--adapter DIR] --input IN --output OUT */
int sw_eval_logits_main(int argc, char **argv);
/* sw-eval generate --model DIR [--adapter DIR] (--prompt T | --query T | --messages F) ... */
int sw_eval_generate_main(int argc, char **argv);

/* What `sw-eval logits` does (logits_run.c): read `input_ids` [B, T] (I32 or I64; optional
 * `attention_mask`, `labels`, `position_ids` of the same shape, any integer dtype) from in_path,
 * run the model and write out_path atomically with `logits` F32 [B, T, V], `loss` F32 [1] and
 * `count` I64 [1] (metadata: model, adapter, loss definition). Returns 0 or a negative error naming
 * the file and tensor. */
struct sw_eval_logits_opts {
    const char *model;
    const char *adapter; /* NULL: none */
    const char *input;
    const char *output;
    int64_t max_tokens; /* tokens per forward (0 = 2048) */
};
int sw_eval_logits_run(const struct sw_eval_logits_opts *o);

/* ---- the command behind `sw-eval generate` (generate_run.c) -------------------------- */

/* Command-line values: negative means "not given, take generation_config.json" (and for
 * temperature, 0 means greedy whatever the config says). */
struct sw_generate_request {
    int64_t max_new_tokens;    /* < 0: generation_config max_new_tokens, else 128 */
    double temperature;        /* < 0: config (sampling only when its do_sample is true); 0: greedy;
                                  > 0: sample with this temperature */
    int64_t top_k;             /* < 0: config (50 when sampling without one) */
    double top_p;              /* < 0: config (1.0) */
    double repetition_penalty; /* < 0: config (1.0) */
    uint64_t seed;
};

struct sw_generate_opts {
    const char *model;
    const char *adapter;       /* NULL: none */
    const char *prompt;        /* raw text, encoded with the tokenizer's special tokens (BOS) */
    const char *query;         /* one user message, rendered with the chat template */
    const char *messages;      /* a JSON lines / JSON file of conversations (any dataset format
                                  sw-pack reads); a final assistant turn is dropped and reported
                                  as "reference" */
    const char *template_name; /* NULL: recognised from tokenizer_config.json's chat_template */
    const char *system;        /* NULL: the conversation's / template's default */
    const char *tokenizer;     /* NULL: the model folder */
    enum sw_device device;     /* SW_DEVICE_CPU or SW_DEVICE_CUDA (the engine's backend) */
    struct sw_generate_request req;
    int json;         /* one JSON object per prompt instead of the text */
    int skip_special; /* decode without special tokens (the EOS) */
};

/* Open everything, then for each prompt (--prompt, --query, or every row of --messages, in
 * that order of preference; exactly one must be given) generate and write to out: the text and a
 * newline, or with json {"index", "prompt_tokens", "ids", "text", "finish_reason", ["reference"]}
 * per line. Returns 0, SW_EPIPE when out was closed, or a negative error. */
int sw_generate_run(const struct sw_generate_opts *o, FILE *out);

/* Encode conversation c for generation: rendered by t with add_generation_prompt (the system
 * prompt from c, else system, else the template's default), tokenized as apply_chat_template
 * does. A final assistant turn is removed first and its content returned in *reference
 * (malloc'ed; NULL when there was none). *ids is malloc'ed. */
struct sw_conv;
struct sw_template;
struct sw_tokenizer;
int sw_generate_encode_chat(const struct sw_tokenizer *tok, const struct sw_template *t,
                            struct sw_conv *c, const char *system, const char *where, int32_t **ids,
                            int64_t *n, char **reference);

#endif
