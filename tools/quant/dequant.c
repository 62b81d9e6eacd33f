/* sw-quant dequant — an HF quantized folder (GPTQ, bitsandbytes, compressed-tensors FP8) as a
 * float folder (--model DIR --output_dir DIR: lib/quant/sw_quant_hfdeq.h, the weights the
 * quantized model multiplies by), or every tensor of a GGUF file as float32 in one safetensors
 * file, under its GGUF name with the shape outermost first (ggml's ne[] reversed). It shows what a
 * quantized export holds in numbers any tool reads, and it is how the tests compare sw's
 * dequantizer with gguf-py's on the files sw writes. Types sw cannot dequantize (the IQ family, TQ,
 * MXFP4, Q8_1, Q8_K, integers) are an error naming the tensor. Written atomically. */
#include "quant.h"

#include "sw_config.h"
#include "sw_err.h"
#include "sw_ggml_quant.h"
#include "sw_gguf.h"
#include "sw_quant_hfdeq.h"
#include "sw_safetensors.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

struct dequant_opts {
    char *output;
    char *model, *output_dir, *dtype;
    int force;
};

static const struct sw_opt dequant_table[] = {
    {"output", SW_OPT_STRING, offsetof(struct dequant_opts, output), NULL,
     "GGUF: safetensors file to write", 0, 0, NULL, NULL},
    {"model", SW_OPT_STRING, offsetof(struct dequant_opts, model), NULL,
     "HF quantized folder to dequantize (GPTQ, bitsandbytes nf4/int8, compressed-tensors fp8)", 0,
     0, NULL, NULL},
    {"output_dir", SW_OPT_STRING, offsetof(struct dequant_opts, output_dir), NULL,
     "--model: the float folder to create", 0, 0, NULL, NULL},
    {"dtype", SW_OPT_CHOICE, offsetof(struct dequant_opts, dtype), "float32",
     "--model: dtype of the dequantized weights (other tensors are kept as they are)", 0, 0,
     "float32|bfloat16|float16", NULL},
    {"force", SW_OPT_BOOL, offsetof(struct dequant_opts, force), "false",
     "--model: replace an existing output folder", 0, 0, NULL, NULL},
    SW_OPT_END,
};

static const struct sw_cli dequant_cli = {
    .tool = "sw-quant",
    .command = "dequant",
    .usage = "sw-quant dequant FILE.gguf --output FILE.safetensors | --model DIR --output_dir DIR",
    .summary = "Dequantize every tensor of a GGUF file to float32 and write them to one\n"
               "safetensors file (GGUF tensor names; shapes outermost first); or an HF quantized\n"
               "folder into a float folder whose linear weights are exactly what sw's model\n"
               "multiplies by (config.json without quantization_config; other tensors and the\n"
               "tokenizer files as they are), written atomically.",
    .opts = dequant_table,
    .min_pos = 0,
    .max_pos = 1,
};

static int dequant(const char *in, const char *out) {
    struct sw_gguf *g = NULL;
    struct sw_st_writer *w = NULL;
    float **bufs = NULL;
    int n = 0, rc = sw_gguf_open(in, &g);
    if (rc == 0) rc = sw_st_writer_new(&w);
    if (rc == 0) {
        n = sw_gguf_tensor_count(g);
        bufs = calloc((size_t)(n ? n : 1), sizeof *bufs);
        if (!bufs) rc = sw_err_set(SW_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n && rc == 0; i++) {
        const struct sw_gguf_tensor *t = sw_gguf_tensor_get(g, i);
        int64_t numel = sw_gguf_tensor_numel(t), shape[SW_GGUF_MAX_DIMS];
        if (!sw_ggml_can_dequantize(t->type)) {
            rc = sw_err_set(SW_EUNSUPPORTED, "%s: tensor '%s': cannot dequantize %s", in, t->name,
                            sw_ggml_type_name(t->type));
            break;
        }
        if (!(bufs[i] = malloc((size_t)(numel ? numel : 1) * sizeof(float)))) {
            rc = sw_err_set(SW_ENOMEM, "out of memory for '%s'", t->name);
            break;
        }
        if ((rc = sw_ggml_dequantize(t->type, t->data, bufs[i], numel)) < 0) break;
        for (int d = 0; d < t->n_dims; d++)
            shape[d] = t->ne[t->n_dims - 1 - d];
        struct sw_tensor v;
        if ((rc = sw_tensor_init(&v, SW_DTYPE_F32, t->n_dims, shape, bufs[i])) == 0)
            rc = sw_st_writer_add(w, t->name, &v);
    }
    if (rc == 0) rc = sw_st_writer_write(w, out);
    for (int i = 0; i < n && bufs; i++)
        free(bufs[i]);
    free(bufs);
    sw_st_writer_free(w);
    sw_gguf_close(g);
    return rc;
}

int sw_quant_dequant_main(int argc, char **argv) {
    struct dequant_opts o;
    char **pos = NULL;
    int npos = 0;
    int rc = sw_cli_parse(&dequant_cli, &o, argc, argv, &pos, &npos);
    if (rc != 0) return rc > 0 ? 0 : rc;
    if (o.model) {
        struct sw_hfdq_opts d = {.model = o.model, .output_dir = o.output_dir, .force = o.force};
        struct sw_hfq_stats st;
        if (npos || !o.output_dir)
            rc = sw_err_set(SW_EUSAGE, "--model DIR needs --output_dir DIR and no file argument");
        else if ((rc = sw_dtype_parse(o.dtype, &d.dtype)) < 0)
            rc = sw_err_set(SW_EUSAGE, "--dtype %s", o.dtype);
        else if ((rc = sw_dequantize_hf(&d, &st, NULL)) == 0)
            fprintf(stderr,
                    "sw-quant: wrote %s: %d linear weights dequantized to %s, %d tensors kept\n",
                    o.output_dir, st.n_quantized, o.dtype, st.n_kept);
    } else if (npos != 1 || !o.output) {
        rc = sw_err_set(SW_EUSAGE, "give FILE.gguf --output FILE.safetensors, or --model DIR "
                                   "--output_dir DIR (see sw-quant dequant --help)");
    } else {
        rc = dequant(pos[0], o.output);
    }
    free(pos);
    sw_config_release(dequant_table, &o);
    return rc;
}
