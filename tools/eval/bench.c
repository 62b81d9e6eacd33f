/* sw-eval bench — score a model on standard benchmarks (MMLU, C-Eval, CMMLU, GSM8K, ARC- and
 * HellaSwag-style sets, custom CSV/JSONL/YAML tasks, perplexity) as lm-evaluation-harness scores
 * them, in process (--model) or through an OpenAI-compatible endpoint (--api_url). Writes
 * report.json, samples_<task>.jsonl and a run cache into --eval_output_dir and prints a Markdown
 * table. Option names are ms-swift's where it has them (eval_dataset, eval_limit,
 * eval_output_dir, dataset_dir, adapters). */
#include "bench.h"

#include "sw_config.h"
#include "sw_err.h"
#include "sw_hub.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F(x) offsetof(struct bench_opts, x)
static const struct sw_opt bench_table[] = {
    {"model", SW_OPT_STRING, F(model), NULL,
     "HF model folder to evaluate in process (config.json, weights, tokenizer.json) or hub id "
     "(org/name)",
     0, 0, NULL, NULL},
    {"adapters", SW_OPT_STRING, F(adapters), NULL, "PEFT LoRA adapter folder or hub id to apply", 0,
     0, NULL, "adapter"},
    {"device", SW_OPT_CHOICE, F(device), "cpu", "where --model runs (cuda needs a CUDA=1 build)", 0,
     0, "cpu|cuda", NULL},
    {"engine", SW_OPT_BOOL, F(engine), "true",
     "--model through the inference engine (KV cache, prefix cache, continuous batching); "
     "false: log-likelihoods by packed forwards without a cache (generation stays on the "
     "engine)",
     0, 0, NULL, NULL},
    {"template", SW_OPT_STRING, F(template_name), NULL,
     "chat template for --apply_chat_template (default: from tokenizer_config.json)", 0, 0, NULL,
     NULL},
    {"api_url", SW_OPT_STRING, F(api_url), NULL,
     "OpenAI-compatible endpoint instead of --model, e.g. http://127.0.0.1:8000/v1", 0, 0, NULL,
     NULL},
    {"api_key", SW_OPT_STRING, F(api_key), NULL, "bearer token for --api_url", 0, 0, NULL, NULL},
    {"eval_model", SW_OPT_STRING, F(eval_model), NULL,
     "the request's model name for --api_url (default: the server's first model)", 0, 0, NULL,
     NULL},
    {"tokenizer", SW_OPT_STRING, F(tokenizer), NULL,
     "--api_url: a local tokenizer (folder or tokenizer.json): log-likelihood prompts go as "
     "token ids, tokenized and truncated as lm-eval does (needed for byte-level BPE on CJK text)",
     0, 0, NULL, NULL},
    {"api_parallel", SW_OPT_INT, F(api_parallel), "8", "concurrent requests to --api_url", 1, 1024,
     NULL, NULL},
    {"api_timeout", SW_OPT_INT, F(api_timeout), "600", "seconds per request to --api_url", 1, 86400,
     NULL, NULL},
    {"eval_dataset", SW_OPT_LIST, F(eval_dataset), NULL,
     "tasks: mmlu, ceval, cmmlu, gsm8k, gsm8k_cot, arc, hellaswag, custom_mcq, general_qa, ppl, "
     "or a task spec FILE.yaml (comma list)",
     0, 0, NULL, NULL},
    {"dataset_dir", SW_OPT_STRING, F(dataset_dir), NULL,
     "folder with the data: DIR/<task>/ when it exists, else DIR itself", 0, 0, NULL, NULL},
    {"subjects", SW_OPT_LIST, F(subjects), NULL, "only these subjects (comma list)", 0, 0, NULL,
     NULL},
    {"num_fewshot", SW_OPT_INT, F(num_fewshot), "-1",
     "few-shot examples (-1: the task's default: 5 for MMLU/C-Eval/CMMLU/GSM8K, 8 for gsm8k_cot)",
     -1, 64, NULL, NULL},
    {"eval_limit", SW_OPT_INT, F(eval_limit), "0", "items per subject (0: all)", 0, 1e12, NULL,
     "limit"},
    {"apply_chat_template", SW_OPT_BOOL, F(apply_chat_template), "false",
     "render prompts with the chat template (description as system, shots + question as user)", 0,
     0, NULL, NULL},
    {"max_gen_toks", SW_OPT_INT, F(max_gen_toks), "0",
     "generated tokens at most (0: the task's, 256 for GSM8K)", 0, 1e7, NULL, NULL},
    {"max_length", SW_OPT_INT, F(max_length), "0",
     "context length in tokens (0: config.json's max_position_embeddings, as lm-eval)", 0, 1e9,
     NULL, NULL},
    {"batch_tokens", SW_OPT_INT, F(batch_tokens), "4096", "tokens per forward (--model)", 1, 1e9,
     NULL, NULL},
    {"shard_size", SW_OPT_INT, F(shard_size), "64",
     "requests per shard (the farm's unit of work; results are identical for equal sizes)", 1, 1e9,
     NULL, NULL},
    {"ppl_max_length", SW_OPT_INT, F(ppl_max_length), "0",
     "perplexity window in tokens (0: max_length)", 0, 1e9, NULL, NULL},
    {"ppl_stride", SW_OPT_INT, F(ppl_stride), "0",
     "perplexity: tokens predicted per window (0: the whole window, lm-eval's disjoint windows)", 0,
     1e9, NULL, NULL},
    {"eval_output_dir", SW_OPT_STRING, F(eval_output_dir), NULL,
     "output folder: report.json, samples_<task>.jsonl, cache.jsonl", 0, 0, NULL, NULL},
    {"no_cache", SW_OPT_BOOL, F(no_cache), "false",
     "neither read nor write the run cache (OUT/cache.jsonl)", 0, 0, NULL, NULL},
    {"bind", SW_OPT_STRING, F(bind), NULL, "farm: ZeroMQ endpoint to serve shards on", 0, 0, NULL,
     NULL},
    {"shard_timeout", SW_OPT_FLOAT, F(shard_timeout), "600",
     "farm: seconds before a shard whose worker went silent is handed out again", 0.01, 1e7, NULL,
     NULL},
    {"connect", SW_OPT_STRING, F(connect), NULL, "worker: the farm's endpoint", 0, 0, NULL, NULL},
    {"wait", SW_OPT_FLOAT, F(wait), "60",
     "farm: seconds to wait for the first worker; worker: seconds without the farm before "
     "giving up",
     0.01, 1e7, NULL, NULL},
    {"die_after", SW_OPT_INT, F(die_after), "0",
     "worker (tests): exit without answering the N-th shard", 0, 1e9, NULL, NULL},
    SW_HUB_OPT_ROWS(struct bench_opts),
    SW_OPT_END,
};
#undef F

const struct sw_opt *bench_opt_table(void);
const struct sw_opt *bench_opt_table(void) {
    return bench_table;
}

int bench_hub_resolve(struct bench_opts *o) {
    SW_TRY(sw_hub_resolve_arg(&o->model, SW_HUB_NEED_MODEL, o->use_hf, o->model_revision,
                              o->hub_token));
    SW_TRY(sw_hub_resolve_arg(&o->adapters, SW_HUB_NEED_MODEL, o->use_hf, NULL, o->hub_token));
    return sw_hub_resolve_arg(&o->tokenizer, SW_HUB_NEED_TOKENIZER, o->use_hf, NULL, o->hub_token);
}

int bench_backend_open(const struct bench_opts *o, struct sw_bench_backend **out) {
    if (o->model && o->api_url)
        return sw_err_set(SW_EUSAGE, "give either --model or --api_url, not both");
    if (o->model) {
        struct sw_bench_local_opts lo = {o->model,      o->adapters,     o->template_name,
                                         o->max_length, o->batch_tokens, o->shard_size,
                                         o->device,     !o->engine};
        return sw_bench_local_new(&lo, out);
    }
    if (o->api_url) {
        struct sw_bench_http_opts ho = {o->api_url,     o->eval_model,   o->api_key,
                                        o->api_timeout, o->api_parallel, o->apply_chat_template,
                                        o->tokenizer,   o->max_length};
        int rc = sw_bench_http_new(&ho, out);
        if (rc == 0) (*out)->shard = o->shard_size;
        return rc;
    }
    return sw_err_set(SW_EUSAGE, "--model DIR or --api_url URL is required");
}

void bench_run_opts(const struct bench_opts *o, struct sw_bench_run_opts *r) {
    memset(r, 0, sizeof *r);
    r->tasks = o->eval_dataset;
    r->dataset_dir = o->dataset_dir;
    r->subjects = o->subjects;
    r->num_fewshot = o->num_fewshot;
    r->limit = o->eval_limit;
    r->apply_chat_template = o->apply_chat_template;
    r->out_dir = o->eval_output_dir;
    r->no_cache = o->no_cache;
    r->max_gen_toks = o->max_gen_toks;
    r->ppl_max_length = o->ppl_max_length;
    r->ppl_stride = o->ppl_stride;
}

static const struct sw_cli bench_cli = {
    .tool = "sw-eval",
    .command = "bench",
    .usage = "sw-eval bench (--model DIR [--adapters DIR] | --api_url URL) --eval_dataset "
             "mmlu[,ceval,...] --dataset_dir DIR --eval_output_dir OUT [options]",
    .summary =
        "Score a model on benchmarks exactly as lm-evaluation-harness scores them: multiple\n"
        "choice by log-likelihood of ' A'..' D' (acc, acc_norm), GSM8K by greedy generation\n"
        "(strict-match, flexible-extract), perplexity over rolling windows. Writes\n"
        "OUT/report.json, OUT/samples_<task>.jsonl and the run cache OUT/cache.jsonl (a rerun\n"
        "resumes), and prints a Markdown table. See docs/eval.md.",
    .opts = bench_table,
    .min_pos = 0,
    .max_pos = 0,
};

int sw_eval_bench_main(int argc, char **argv) {
    struct bench_opts o;
    char **pos = NULL;
    int npos = 0;
    int rc = sw_cli_parse(&bench_cli, &o, argc, argv, &pos, &npos);
    if (rc != 0) return rc > 0 ? 0 : rc;
    free(pos);
    struct sw_bench_backend *be = NULL;
    if (!o.eval_dataset)
        rc = sw_err_set(SW_EUSAGE, "--eval_dataset is required");
    else if (!o.eval_output_dir)
        rc = sw_err_set(SW_EUSAGE, "--eval_output_dir is required");
    if (rc == 0) rc = bench_hub_resolve(&o);
    if (rc == 0) rc = bench_backend_open(&o, &be);
    if (rc == 0) {
        struct sw_bench_run_opts r;
        bench_run_opts(&o, &r);
        rc = sw_bench_run(&r, be, stdout);
    }
    sw_bench_backend_free(be);
    sw_config_release(bench_table, &o);
    return rc;
}
