/* sw-quant quantize — a round-to-nearest quantized HF folder in a layout other tools load:
 * GPTQ's packed int32 (rtn, 4 or 8 bits), compressed-tensors FP8 (fp8) or bitsandbytes NF4
 * (nf4). ms-swift's option
 * names (--quant_method, --quant_bits, --group_size, --output_dir). The work is in
 * lib/quant/sw_quant_hf.c; this file parses the options and reports. */
#include "quant.h"

#include "sw_config.h"
#include "sw_err.h"
#include "sw_hub.h"
#include "sw_log.h"
#include "sw_quant_hf.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct quantize_opts {
    char *model, *output_dir, *quant_method, *fp8_scale;
    char *use_hf, *model_revision, *hub_token;
    int64_t quant_bits, group_size;
    int sym, force;
};

static const struct sw_opt quantize_table[] = {
    {"model", SW_OPT_STRING, offsetof(struct quantize_opts, model), NULL,
     "HF model folder or hub id (org/name); required", 0, 0, NULL, NULL},
    {"output_dir", SW_OPT_STRING, offsetof(struct quantize_opts, output_dir), NULL,
     "folder to create; required", 0, 0, NULL, NULL},
    {"quant_method", SW_OPT_CHOICE, offsetof(struct quantize_opts, quant_method), "rtn",
     "rtn: GPTQ packed-int32 layout; fp8: compressed-tensors FP8 E4M3; nf4: bitsandbytes", 0, 0,
     "rtn|fp8|nf4", NULL},
    {"quant_bits", SW_OPT_INT, offsetof(struct quantize_opts, quant_bits), "4",
     "bits per weight: 4 or 8 (fp8: 8, nf4: 4)", 4, 8, NULL, NULL},
    {"group_size", SW_OPT_INT, offsetof(struct quantize_opts, group_size), "128",
     "rtn: weights per scale along a row; -1 = one scale per output channel", -1, 1e9, NULL, NULL},
    {"sym", SW_OPT_BOOL, offsetof(struct quantize_opts, sym), "true",
     "rtn: symmetric (zero point 2^(bits-1)); false: asymmetric min/max", 0, 0, NULL, NULL},
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
    .usage = "sw-quant quantize --model DIR --quant_method rtn|fp8|nf4 --quant_bits 4|8 "
             "[--group_size 128] --output_dir DIR",
    .summary =
        "Round-to-nearest quantization of the decoder's linear layers into an HF folder:\n"
        "rtn writes GPTQ's packed int32 layout (qweight/qzeros/scales/g_idx + "
        "quantization_config,\n"
        "loadable by transformers with a GPTQ kernel package); fp8 writes compressed-tensors FP8\n"
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
            sw_info("wrote %s: %d linear weights quantized (%s, %d bits), %d tensors kept; tensor "
                    "data %.2f MiB -> %.2f MiB",
                    o.output_dir, st.n_quantized, o.quant_method, (int)o.quant_bits, st.n_kept,
                    (double)st.bytes_in / (1 << 20), (double)st.bytes_out / (1 << 20));
    }
    sw_config_release(quantize_table, &o);
    return rc;
}
