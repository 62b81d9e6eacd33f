/* sw-train's command: parse the options (options.c holds the table), run the trainer,
 * and turn the outcome into an exit status: 0 done, 1 error, 2 usage, 128 + signal (130 SIGINT,
 * 143 SIGTERM) when a signal stopped training after its checkpoint was saved. */
#include "train.h"

#include "sw_config.h"
#include "sw_err.h"
#include "sw_hub.h"
#include "sw_log.h"
#include "sw_parallel.h"
#include "sw_signal.h"
#include "sw_train.h"

#include <stdlib.h>
#include <string.h>

int sw_train_main(int argc, char **argv) {
    struct sw_train_opts o;
    char **pos = NULL;
    int npos = 0;
    int rc = sw_cli_parse(&sw_train_cli, &o, argc, argv, &pos, &npos);
    if (rc == 1) return 0; /* --help / --version */
    if (rc < 0) return sw_log_report(rc);
    free(pos);
    o.option_table = sw_train_options;
    /* a hub id becomes its snapshot folder (what args.json then records); the token is dropped
     * once used so that args.json, written from the option table, never holds it */
    rc = sw_hub_resolve_arg(&o.model, SW_HUB_NEED_MODEL, o.use_hf, o.model_revision, o.hub_token);
    free(o.hub_token);
    o.hub_token = NULL;
    if (rc < 0) {
        sw_config_release(sw_train_options, &o);
        return sw_log_report(rc);
    }
    sw_parallel_init();
    rc = sw_train_run(&o);
    sw_config_release(sw_train_options, &o);
    if (rc == SW_EINTR) {
        sw_log(SW_LOG_WARN, "%s", sw_err_msg());
        return sw_signal_exit_code(sw_signal_pending());
    }
    return rc < 0 ? sw_log_report(rc) : 0;
}
