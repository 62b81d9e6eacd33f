/* sw_quant_hfdeq — an HF quantized folder back to float (sw_quant_hfdeq.h). The decoder's
 * linears are found from config.json (names and shapes as the model builds them), read through
 * sw_qtensors_read and dequantized with the model's own dequantizer, so the float folder
 * computes what the quantized model computes. */
#include "sw_quant_hfdeq.h"

#include "sw_qfolder.h"

#include "sw_err.h"
#include "sw_hfmodel.h"
#include "sw_io.h"
#include "sw_qtensors.h"
#include "sw_safetensors.h"
#include "sw_strmap.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const lin_names[7] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                         "gate_proj", "up_proj", "down_proj"};

/* The settings that quantize the output again as the source was (merge-lora's requantize),
 * from the source's quantization_config. */
static int read_requant(const struct sw_hfdq_opts *o, struct sw_hfq_opts *rq) {
    char *src = sw_path_join(o->model, "config.json");
    json_error_t jerr;
    json_t *j = src ? json_load_file(src, 0, &jerr) : NULL;
    int rc = 0;
    if (!src)
        rc = sw_err_set(SW_ENOMEM, "out of memory");
    else if (!json_is_object(j))
        rc = sw_err_set(SW_EFORMAT, "%s:%d: %s", src, jerr.line, j ? "not an object" : jerr.text);
    if (rc == 0) {
        const json_t *qc = json_object_get(j, "quantization_config");
        const char *m = json_string_value(json_object_get(qc, "quant_method"));
        memset(rq, 0, sizeof *rq);
        if (m && !strcmp(m, "gptq")) {
            rq->method = "rtn";
            rq->bits = (int)json_integer_value(json_object_get(qc, "bits"));
            rq->group_size = json_integer_value(json_object_get(qc, "group_size"));
            rq->sym = !json_is_false(json_object_get(qc, "sym"));
        } else if (m && !strcmp(m, "bitsandbytes") &&
                   json_is_true(json_object_get(qc, "load_in_4bit"))) {
            rq->method = "nf4";
            rq->bits = 4;
            rq->group_size = 64;
        } else if (m && !strcmp(m, "compressed-tensors")) {
            const json_t *g = json_object_get(json_object_get(qc, "config_groups"), "group_0");
            const char *strat =
                json_string_value(json_object_get(json_object_get(g, "weights"), "strategy"));
            rq->method = "fp8";
            rq->bits = 8;
            rq->group_size = -1;
            rq->per_tensor = strat && !strcmp(strat, "tensor");
        }
    }
    free(src);
    json_decref(j);
    return rc;
}

int sw_dequantize_hf(const struct sw_hfdq_opts *o, struct sw_hfq_stats *st,
                     struct sw_hfq_opts *requant) {
    struct sw_hfq_stats dummy;
    if (!st) st = &dummy;
    memset(st, 0, sizeof *st);
    if (o->dtype != SW_DTYPE_F32 && o->dtype != SW_DTYPE_BF16 && o->dtype != SW_DTYPE_F16)
        return sw_err_set(SW_EUSAGE, "dequantize: the output dtype must be F32, BF16 or F16");
    if (!o->force && access(o->output_dir, F_OK) == 0)
        return sw_err_set(SW_EINVAL, "'%s' exists (use --force to replace it)", o->output_dir);
    struct sw_hfmodel *m = NULL;
    struct sw_st_writer *w = NULL;
    struct sw_strmap *done = NULL;
    void **bufs = NULL;
    int nbufs = 0;
    int rc = 0;
    SW_TRY_GOTO(rc, sw_hfmodel_open(o->model, &m), out);
    const struct sw_model_config *c = &m->config;
    if (!c->quant.keep) {
        rc = sw_err_set(SW_EINVAL,
                        "%s: not a quantized folder (config.json has no "
                        "quantization_config)",
                        o->model);
        goto out;
    }
    if (c->quant.unsupported[0]) {
        rc = sw_err_set(SW_EUNSUPPORTED, "%s: quantization_config %s cannot be read", o->model,
                        c->quant.unsupported);
        goto out;
    }
    SW_TRY_GOTO(rc, sw_hfmodel_verify(m), out);
    SW_TRY_GOTO(rc, sw_st_writer_new(&w), out);
    if (!(done = sw_strmap_new(64))) {
        rc = SW_ENOMEM;
        goto out;
    }
    int64_t L = c->num_hidden_layers, C = c->hidden_size, F = c->intermediate_size;
    int64_t QD = c->num_attention_heads * c->head_dim, KD = c->num_key_value_heads * c->head_dim;
    const int64_t outs[7] = {QD, KD, KD, C, F, F, C}, ins[7] = {C, C, C, QD, C, C, F};
    bufs = calloc((size_t)(L * 7), sizeof *bufs);
    if (!bufs) rc = sw_err_set(SW_ENOMEM, "out of memory");
    /* The quantized linears first (in layer order), then every other tensor as it is. */
    for (int64_t l = 0; l < L && rc == 0; l++)
        for (int i = 0; i < 7 && rc == 0; i++) {
            char prefix[192], name[224];
            snprintf(prefix, sizeof prefix, "model.layers.%lld.%s.%s", (long long)l,
                     i < 4 ? "self_attn" : "mlp", lin_names[i]);
            struct sw_qweight h;
            int found = sw_qtensors_read(m->weights, prefix, outs[i], ins[i], c->quant.gptq_v2, &h);
            if (found <= 0) {
                rc = found;
                continue;
            }
            size_t n = (size_t)(outs[i] * ins[i]);
            float *f = malloc(n * sizeof(float) + 1);
            void *out = f && o->dtype != SW_DTYPE_F32 ? malloc(n * 2 + 1) : f;
            if (!f || !out) {
                free(f);
                sw_qweight_free_host(&h);
                rc = sw_err_set(SW_ENOMEM, "out of memory dequantizing '%s'", prefix);
                break;
            }
            sw_qweight_dequant_rows(&h, 0, outs[i], f);
            sw_qweight_free_host(&h);
            if (out != f) {
                rc = sw_dtype_convert(o->dtype, out, SW_DTYPE_F32, f, n);
                free(f);
            }
            bufs[nbufs++] = out;
            snprintf(name, sizeof name, "%s.weight", prefix);
            struct sw_tensor t;
            int64_t shape[2] = {outs[i], ins[i]};
            if (rc == 0) rc = sw_tensor_init(&t, o->dtype, 2, shape, out);
            if (rc == 0) rc = sw_st_writer_add(w, name, &t);
            if (rc == 0) rc = sw_strmap_put(done, name, strlen(name), 1);
            st->n_quantized++;
            st->bytes_out += sw_dtype_nbytes(o->dtype, n);
        }
    for (int i = 0; rc == 0 && i < sw_st_set_count(m->weights); i++) {
        const struct sw_st_entry *e = sw_st_set_get(m->weights, i);
        if (sw_qtensors_is_aux(e->name) || sw_strmap_get(done, e->name, strlen(e->name), NULL)) {
            st->bytes_in += e->nbytes;
            continue;
        }
        struct sw_tensor t;
        sw_st_entry_view(e, &t);
        rc = sw_st_writer_add(w, e->name, &t);
        st->n_kept++;
        st->bytes_in += e->nbytes, st->bytes_out += e->nbytes;
    }
    if (rc < 0) goto out;
    if (requant) SW_TRY_GOTO(rc, read_requant(o, requant), out);
    rc = sw_qfolder_write(o->model, o->output_dir, o->force, w, NULL,
                          o->dtype == SW_DTYPE_BF16  ? "bfloat16"
                          : o->dtype == SW_DTYPE_F16 ? "float16"
                                                     : "float32");
out:
    sw_st_writer_free(w);
    for (int i = 0; i < nbufs; i++)
        free(bufs[i]);
    free(bufs);
    sw_strmap_free(done);
    sw_hfmodel_close(m);
    return rc;
}
