/* sw-eval farm — serve a benchmark run's requests as shards to `sw-eval worker` processes over
 * ZeroMQ (docs/eval.md "Eval farm"), then score and write the same outputs as sw-eval bench. The
 * farm waits for its workers' answers; a shard whose worker goes silent for --shard_timeout
 * seconds is handed out again. */
#include "bench.h"

#include "sw_config.h"
#include "sw_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct sw_opt *bench_opt_table(void);

int sw_eval_farm_main(int argc, char **argv) {
    const struct sw_cli cli = {
        .tool = "sw-eval",
        .command = "farm",
        .usage = "sw-eval farm --bind tcp://*:5555 --eval_dataset mmlu[,...] --dataset_dir DIR "
                 "--eval_output_dir OUT [--shard_size N] [--shard_timeout S]",
        .summary =
            "Split a benchmark run into shards of --shard_size requests and hand them to\n"
            "`sw-eval worker --connect ...` processes on any number of machines; merge their\n"
            "results (the same numbers whatever the worker count), then write report.json,\n"
            "samples_<task>.jsonl and the Markdown table like sw-eval bench. --model here only\n"
            "names the run cache's key (what the workers run); the workers load the model.",
        .opts = bench_opt_table(),
        .min_pos = 0,
        .max_pos = 0,
    };
    struct bench_opts o;
    char **pos = NULL;
    int npos = 0;
    int rc = sw_cli_parse(&cli, &o, argc, argv, &pos, &npos);
    if (rc != 0) return rc > 0 ? 0 : rc;
    free(pos);
    struct sw_bench_backend *be = NULL;
    if (!o.bind)
        rc = sw_err_set(SW_EUSAGE, "--bind ENDPOINT is required (e.g. tcp://*:5555)");
    else if (!o.eval_dataset)
        rc = sw_err_set(SW_EUSAGE, "--eval_dataset is required");
    else if (!o.eval_output_dir)
        rc = sw_err_set(SW_EUSAGE, "--eval_output_dir is required");
    if (rc == 0) {
        char id[4096];
        snprintf(id, sizeof id, "local:%s%s%s", o.model ? o.model : "farm", o.adapters ? "+" : "",
                 o.adapters ? o.adapters : "");
        struct sw_bench_farm_opts fo = {o.bind, id, o.shard_size, o.shard_timeout, o.max_length};
        rc = sw_bench_farm_new(&fo, &be);
    }
    if (rc == 0) {
        struct sw_bench_run_opts r;
        bench_run_opts(&o, &r);
        rc = sw_bench_run(&r, be, stdout);
        sw_bench_farm_finish(be, 1.5);
    }
    sw_bench_backend_free(be);
    sw_config_release(bench_opt_table(), &o);
    return rc;
}
