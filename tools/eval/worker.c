/* sw-eval worker — fetch shards from an eval farm over ZeroMQ and answer them with the model in
 * process (--model DIR [--adapters DIR]) or an endpoint (--api_url), until the farm says it is
 * done. A farm that is not up yet is waited for (--wait seconds). */
#include "bench.h"

#include "sw_config.h"
#include "sw_err.h"

#include <stdlib.h>

const struct sw_opt *bench_opt_table(void);

int sw_eval_worker_main(int argc, char **argv) {
    const struct sw_cli cli = {
        .tool = "sw-eval",
        .command = "worker",
        .usage = "sw-eval worker --connect tcp://HOST:5555 (--model DIR [--adapters DIR] | "
                 "--api_url URL)",
        .summary = "Answer an eval farm's shards until it is done (see sw-eval farm).",
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
    if (!o.connect) rc = sw_err_set(SW_EUSAGE, "--connect ENDPOINT is required");
    if (rc == 0) rc = bench_hub_resolve(&o);
    if (rc == 0) rc = bench_backend_open(&o, &be);
    if (rc == 0) {
        struct sw_bench_worker_opts wo = {o.connect, o.wait, o.die_after};
        rc = sw_bench_worker_run(&wo, be);
    }
    sw_bench_backend_free(be);
    sw_config_release(bench_opt_table(), &o);
    return rc;
}
