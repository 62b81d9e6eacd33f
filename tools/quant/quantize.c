/* sw-quant quantize — a quantized HF folder in a layout other tools load: GPTQ's packed int32
 * (rtn: round-to-nearest, gptq: GPTQ with calibration; 4 or 8 bits), AutoAWQ's GEMM layout
 * (awq, 4 bits), compressed-tensors FP8 (fp8) or bitsandbytes NF4 (nf4). ms-swift's option
 * names (--quant_method, --quant_bits, --group_size, --output_dir, --dataset,
 * --quant_n_samples, --max_length). The work is in lib/quant/sw_quant_hf.c (rtn, fp8, nf4) and
 * lib/quant/sw_calib_quant.c (gptq, awq); this file parses the options and reports. */
#include "quant.h"

#include "sw_config.h"
#include "sw_calib.h"
#include "sw_err.h"
#include "sw_hub.h"
#include "sw_log.h"
#include "sw_quant_hf.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct quantize_opts {
    char *model, *output_dir, *quant_method, *fp8_scale, *dataset;
    char *use_hf, *model_revision, *hub_token;
    int64_t quant_bits, group_size, calib_rows, max_length;
    double damp_percent;
    int sym, desc_act, force;
};

static const struct sw_opt quantize_table[] = {
    {"model", SW_OPT_STRING, offsetof(struct quantize_opts, model), NULL,
     "HF model folder or hub id (org/name); required", 0, 0, NULL, NULL},
    {"output_dir", SW_OPT_STRING, offsetof(struct quantize_opts, output_dir), NULL,
     "folder to create; required", 0, 0, NULL, NULL},
    {"quant_method", SW_OPT_CHOICE, offsetof(struct quantize_opts, quant_method), "rtn",
     "rtn: round-to-nearest, GPTQ packed-int32 layout; gptq: GPTQ with calibration (same layout); "
     "awq: AWQ, AutoAWQ GEMM layout; fp8: compressed-tensors FP8 E4M3; nf4: bitsandbytes",
     0, 0, "rtn|gptq|awq|fp8|nf4", NULL},
    {"quant_bits", SW_OPT_INT, offsetof(struct quantize_opts, quant_bits), "4",
     "bits per weight: 4 or 8 (fp8: 8, nf4: 4)", 4, 8, NULL, NULL},
    {"group_size", SW_OPT_INT, offsetof(struct quantize_opts, group_size), "128",
     "rtn/gptq/awq: weights per scale along a row; -1 = one scale per output channel (rtn, gptq)",
     -1, 1e9, NULL, NULL},
    {"sym", SW_OPT_BOOL, offsetof(struct quantize_opts, sym), "true",
     "rtn/gptq: symmetric (zero point 2^(bits-1)); false: asymmetric min/max", 0, 0, NULL, NULL},
    {"dataset", SW_OPT_STRING, offsetof(struct quantize_opts, dataset), NULL,
     "gptq/awq: calibration sws stream from sw-pack (default: built-in Tiny Shakespeare text)", 0,
     0, NULL, NULL},
    {"calib_rows", SW_OPT_INT, offsetof(struct quantize_opts, calib_rows), "256",
     "gptq/awq: calibration rows (sequences) to use; fewer in the stream is an error", 1, 1e9, NULL,
     "quant_n_samples"},
    {"max_length", SW_OPT_INT, offsetof(struct quantize_opts, max_length), "2048",
     "gptq/awq: tokens per calibration row at most", 1, 1e9, NULL, NULL},
    {"desc_act", SW_OPT_BOOL, offsetof(struct quantize_opts, desc_act), "false",
     "gptq: act-order (columns by decreasing Hessian diagonal; g_idx records the groups)", 0, 0,
     NULL, NULL},
    {"damp_percent", SW_OPT_FLOAT, offsetof(struct quantize_opts, damp_percent), "0.01",
     "gptq: dampening, a fraction of the Hessian's mean diagonal", 0, 0.999, NULL, NULL},
    {"fp8_scale", SW_OPT_CHOICE, offsetof(struct quantize_opts, fp8_scale), "channel",
     "fp8: one scale per output channel or per tensor", 0, 0, "channel|tensor", NULL},
    {"force", SW_OPT_BOOL, offsetof(struct quantize_opts, force), "false",
     "replace an existing output folder", 0, 0, NULL, NULL},
    SW_HUB_OPT_ROWS(struct quantize_opts),
    SW_OPT_END,
};

static const struct sw_cli quantize_cli = {
    .tool = "sw-quant",
    .command = "quantize",
    .usage = "sw-quant quantize --model DIR --quant_method rtn|gptq|awq|fp8|nf4 --quant_bits 4|8 "
             "[--group_size 128] [--dataset CALIB.sws] --output_dir DIR",
    .summary =
        "Quantization of the decoder's linear layers into an HF folder: rtn writes GPTQ's packed\n"
        "int32 layout (qweight/qzeros/scales/g_idx + quantization_config, loadable by\n"
        "transformers with a GPTQ kernel package) by round-to-nearest; gptq the same layout by\n"
        "GPTQ (Hessians from calibration data, --desc_act, --damp_percent); awq AutoAWQ's GEMM\n"
        "layout by AWQ (activation-aware scale and clipping search). Calibration rows come from\n"
        "--dataset (an sws stream from sw-pack) or the built-in text. fp8 writes "
        "compressed-tensors FP8\n"
        "E4M3 weights with per-channel (or per-tensor) scales; nf4 writes bitsandbytes' NF4 with\n"
        "double quantization (blocks of 64). Embeddings, norms and lm_head are kept. Written into\n"
        "a temporary folder and renamed when complete.",
    .opts = quantize_table,
    .min_pos = 0,
    .max_pos = 0,
};

int sw_quant_quantize_main(int argc, char **argv) {
    struct quantize_opts o;
    char **pos = NULL;
    int npos = 0;
    int rc = sw_cli_parse(&quantize_cli, &o, argc, argv, &pos, &npos);
    if (rc != 0) return rc > 0 ? 0 : rc;
    free(pos);
    if (!o.model || !o.output_dir) {
        rc = sw_err_set(SW_EUSAGE,
                        "--model and --output_dir are required (see sw-quant quantize --help)");
    } else if ((rc = sw_hub_resolve_arg(&o.model, SW_HUB_NEED_MODEL, o.use_hf, o.model_revision,
                                        o.hub_token)) == 0) {
        if (!strcmp(o.quant_method, "gptq") || !strcmp(o.quant_method, "awq")) {
            struct sw_calib_quant_opts q = {o.model,           o.output_dir,   o.quant_method,
                                            (int)o.quant_bits, o.group_size,   o.sym,
                                            o.desc_act,        o.damp_percent, o.dataset,
                                            o.calib_rows,      o.max_length,   o.force};
            struct sw_calib_quant_stats st;
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            rc = sw_quantize_calibrated(&q, &st);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            if (rc == 0 && st.err_rtn > 0)
                sw_info("calibration output error: %s %.4g, round-to-nearest %.4g (%.3f x)",
                        o.quant_method, st.err_method, st.err_rtn, st.err_method / st.err_rtn);
            if (rc == 0)
                sw_info("wrote %s: %d linear weights quantized (%s, %d bits, %lld calibration "
                        "rows, %lld tokens), %d tensors kept; tensor data %.2f MiB -> %.2f MiB in "
                        "%.1f s",
                        o.output_dir, st.n_quantized, o.quant_method, (int)o.quant_bits,
                        (long long)st.rows, (long long)st.tokens, st.n_kept,
                        (double)st.bytes_in / (1 << 20), (double)st.bytes_out / (1 << 20),
                        (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
        } else {
            struct sw_hfq_opts q = {o.model,
                                    o.output_dir,
                                    o.quant_method,
                                    (int)o.quant_bits,
                                    o.group_size,
                                    o.sym,
                                    !strcmp(o.fp8_scale, "tensor"),
                                    o.force};
            struct sw_hfq_stats st;
            rc = sw_quantize_hf(&q, &st);
            if (rc == 0)
                sw_info("wrote %s: %d linear weights quantized (%s, %d bits), %d tensors kept; "
                        "tensor data %.2f MiB -> %.2f MiB",
                        o.output_dir, st.n_quantized, o.quant_method, (int)o.quant_bits, st.n_kept,
                        (double)st.bytes_in / (1 << 20), (double)st.bytes_out / (1 << 20));
        }
    }
    sw_config_release(quantize_table, &o);
    return rc;
}
