/* bench.h — what sw-eval's bench, farm and worker subcommands share: the option struct, the
 * option table entries for the benchmark selection, and opening the backend the options name
 * (--model in process, or --api_url). The work is in lib/eval/ (sw_bench.h). */
#ifndef SW_EVAL_BENCH_TOOL_H
#define SW_EVAL_BENCH_TOOL_H

#include "sw_bench.h"

#include <stdint.h>

struct bench_opts {
    /* backend */
    char *model, *adapters, *template_name, *api_url, *api_key, *eval_model, *device, *tokenizer;
    int64_t max_length, batch_tokens, shard_size, api_parallel, api_timeout;
    /* benchmarks */
    char *eval_dataset, *dataset_dir, *subjects, *eval_output_dir;
    int64_t num_fewshot, eval_limit, max_gen_toks, ppl_max_length, ppl_stride;
    int apply_chat_template, no_cache, engine;
    /* farm / worker */
    char *bind, *connect;
    /* hub ids */
    char *use_hf, *model_revision, *hub_token;
    double shard_timeout, wait;
    int64_t die_after;
};

/* sw-eval bench / farm / worker */
int sw_eval_bench_main(int argc, char **argv);
int sw_eval_farm_main(int argc, char **argv);
int sw_eval_worker_main(int argc, char **argv);

/* Replace hub ids (org/name) in --model, --adapters and --tokenizer by their snapshot folders in
 * the hub cache, fetching when needed and allowed (sw_hub_resolve_arg); paths stay. */
int bench_hub_resolve(struct bench_opts *o);
/* Open the backend of --model (+ --adapters) or --api_url. */
int bench_backend_open(const struct bench_opts *o, struct sw_bench_backend **out);
/* The run options from o. */
void bench_run_opts(const struct bench_opts *o, struct sw_bench_run_opts *r);

#endif
