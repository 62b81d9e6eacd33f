/* sw-quant imatrix — llama.cpp's importance matrix (llama-imatrix's GGUF format) of an HF model
 * from calibration data: the mean squared input of every decoder linear per column, under
 * llama.cpp's tensor names, for sw-quant gguf --imatrix and llama-quantize --imatrix. The work
 * is in lib/quant/sw_imatrix.c; this file parses the options and reports. */
#include "quant.h"

#include "sw_config.h"
#include "sw_err.h"
#include "sw_hub.h"
#include "sw_imatrix.h"
#include "sw_log.h"

#include <stddef.h>
#include <stdlib.h>

struct imatrix_opts {
    char *model, *output, *dataset;
    char *use_hf, *model_revision, *hub_token;
    int64_t calib_rows, max_length;
    int force;
};

static const struct sw_opt imatrix_table[] = {
    {"model", SW_OPT_STRING, offsetof(struct imatrix_opts, model), NULL,
     "HF model folder or hub id (org/name); required", 0, 0, NULL, NULL},
    {"output", SW_OPT_STRING, offsetof(struct imatrix_opts, output), NULL,
     "importance matrix file to write (GGUF, e.g. imatrix.gguf); required", 0, 0, NULL, NULL},
    {"dataset", SW_OPT_STRING, offsetof(struct imatrix_opts, dataset), NULL,
     "calibration sws stream from sw-pack (default: built-in Tiny Shakespeare text)", 0, 0, NULL,
     NULL},
    {"calib_rows", SW_OPT_INT, offsetof(struct imatrix_opts, calib_rows), "256",
     "calibration rows (sequences) to use; fewer in the stream is an error", 1, 1e9, NULL,
     "quant_n_samples"},
    {"max_length", SW_OPT_INT, offsetof(struct imatrix_opts, max_length), "2048",
     "tokens per calibration row at most", 1, 1e9, NULL, NULL},
    {"force", SW_OPT_BOOL, offsetof(struct imatrix_opts, force), "false",
     "replace an existing output file", 0, 0, NULL, NULL},
    SW_HUB_OPT_ROWS(struct imatrix_opts),
    SW_OPT_END,
};

static const struct sw_cli imatrix_cli = {
    .tool = "sw-quant",
    .command = "imatrix",
    .usage = "sw-quant imatrix --model DIR [--dataset CALIB.sws] --output imatrix.gguf",
    .summary = "Compute llama.cpp's importance matrix (the mean squared input of every decoder\n"
               "linear, per column) from calibration data and write it in llama-imatrix's GGUF\n"
               "format (blk.N.attn_q.weight.in_sum2 / .counts ...), for sw-quant gguf --imatrix\n"
               "and llama-quantize --imatrix. Written atomically.",
    .opts = imatrix_table,
    .min_pos = 0,
    .max_pos = 0,
};

int sw_quant_imatrix_main(int argc, char **argv) {
    struct imatrix_opts o;
    char **pos = NULL;
    int npos = 0;
    int rc = sw_cli_parse(&imatrix_cli, &o, argc, argv, &pos, &npos);
    if (rc != 0) return rc > 0 ? 0 : rc;
    free(pos);
    if (!o.model || !o.output) {
        rc = sw_err_set(SW_EUSAGE,
                        "--model and --output are required (see sw-quant imatrix --help)");
    } else if ((rc = sw_hub_resolve_arg(&o.model, SW_HUB_NEED_MODEL, o.use_hf, o.model_revision,
                                        o.hub_token)) == 0) {
        struct sw_imatrix_opts q = {o.model,      o.output,     o.dataset,
                                    o.calib_rows, o.max_length, o.force};
        struct sw_imatrix_stats st;
        rc = sw_imatrix_compute(&q, &st);
        if (rc == 0)
            sw_info("wrote %s: %d entries from %lld rows, %lld tokens", o.output, st.n_entries,
                    (long long)st.rows, (long long)st.tokens);
    }
    sw_config_release(imatrix_table, &o);
    return rc;
}
