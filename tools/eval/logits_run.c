/* logits_run — the file-to-file command behind `sw-eval logits`: token ids from a safetensors
 * file in, full logits and transformers' causal-LM loss out (safetensors, written atomically). */
#include "eval.h"

#include "sw_dtype.h"
#include "sw_err.h"
#include "sw_log.h"
#include "sw_safetensors.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Read integer tensor `name` of in into a new int32 array; it must be [B, T] (B, T taken from it
 * when *B is 0). Absent: *out = NULL and 0 unless required. */
static int read_ids(const struct sw_st_file *in, const char *path, const char *name, int required,
                    int64_t *B, int64_t *T, int32_t **out) {
    *out = NULL;
    const struct sw_st_entry *e = sw_st_find(in, name);
    if (!e) {
        if (!required) return 0;
        return sw_err_set(SW_ENOTFOUND, "%s: missing tensor '%s' (int32 or int64 [B, T])", path,
                          name);
    }
    int is_int = e->dtype == SW_DTYPE_I32 || e->dtype == SW_DTYPE_I64 || e->dtype == SW_DTYPE_I16 ||
                 e->dtype == SW_DTYPE_I8 || e->dtype == SW_DTYPE_U8 || e->dtype == SW_DTYPE_U16 ||
                 e->dtype == SW_DTYPE_U32 || e->dtype == SW_DTYPE_U64 || e->dtype == SW_DTYPE_BOOL;
    if (!is_int || e->ndim != 2)
        return sw_err_set(SW_EFORMAT,
                          "%s: tensor '%s' must be an integer [B, T] tensor (got %s "
                          "with %d dimensions)",
                          path, name, sw_dtype_name(e->dtype), e->ndim);
    if (*B == 0) {
        *B = e->shape[0];
        *T = e->shape[1];
        if (*B < 1 || *T < 1 || *B > INT32_MAX / *T)
            return sw_err_set(SW_EFORMAT,
                              "%s: tensor '%s' has shape [%lld, %lld]: need B, T >= 1 "
                              "and B*T < 2^31",
                              path, name, (long long)*B, (long long)*T);
    } else if (e->shape[0] != *B || e->shape[1] != *T) {
        return sw_err_set(SW_EFORMAT,
                          "%s: tensor '%s' has shape [%lld, %lld] but input_ids is "
                          "[%lld, %lld]",
                          path, name, (long long)e->shape[0], (long long)e->shape[1], (long long)*B,
                          (long long)*T);
    }
    size_t n = (size_t)(*B * *T);
    int32_t *v = malloc(n * sizeof(int32_t));
    if (!v) return sw_err_set(SW_ENOMEM, "%s: out of memory for '%s'", path, name);
    /* 64-bit values outside int32 saturate, so they still fail the vocabulary check. */
    int rc = sw_dtype_convert(SW_DTYPE_I32, v, e->dtype, e->data, n);
    if (rc < 0) {
        free(v);
        return sw_err_set(rc, "%s: cannot convert '%s' to int32", path, name);
    }
    *out = v;
    return 0;
}

static int write_output(const struct sw_eval_logits_opts *o, const float *logits, int64_t B,
                        int64_t T, int64_t V, double loss, int64_t count) {
    struct sw_st_writer *w = NULL;
    struct sw_tensor tl, tloss, tcount;
    float lossf = (float)loss;
    int64_t shape[3] = {B, T, V}, one = 1;
    int rc;
    SW_TRY(sw_st_writer_new(&w));
    SW_TRY_GOTO(rc, sw_tensor_init(&tl, SW_DTYPE_F32, 3, shape, (void *)logits), out);
    SW_TRY_GOTO(rc, sw_tensor_init(&tloss, SW_DTYPE_F32, 1, &one, &lossf), out);
    SW_TRY_GOTO(rc, sw_tensor_init(&tcount, SW_DTYPE_I64, 1, &one, &count), out);
    SW_TRY_GOTO(rc, sw_st_writer_add(w, "logits", &tl), out);
    SW_TRY_GOTO(rc, sw_st_writer_add(w, "loss", &tloss), out);
    SW_TRY_GOTO(rc, sw_st_writer_add(w, "count", &tcount), out);
    char buf[32];
    snprintf(buf, sizeof buf, "%.17g", loss);
    SW_TRY_GOTO(rc, sw_st_writer_set_metadata(w, "producer", "sw-eval logits"), out);
    SW_TRY_GOTO(rc, sw_st_writer_set_metadata(w, "model", o->model), out);
    if (o->adapter) SW_TRY_GOTO(rc, sw_st_writer_set_metadata(w, "adapter", o->adapter), out);
    SW_TRY_GOTO(rc, sw_st_writer_set_metadata(w, "loss_f64", buf), out);
    SW_TRY_GOTO(rc,
                sw_st_writer_set_metadata(w, "loss_definition",
                                          "mean over rows b and t < T-1 with labels[b,t+1] != "
                                          "-100 of -log_softmax(logits[b,t])[labels[b,t+1]]; "
                                          "labels = input_ids unless given; padding counted "
                                          "(transformers' causal-LM loss)"),
                out);
    rc = sw_st_writer_write(w, o->output);
out:
    sw_st_writer_free(w);
    return rc;
}

int sw_eval_logits_run(const struct sw_eval_logits_opts *o) {
    struct sw_st_file *in = NULL;
    struct sw_eval_model *em = NULL;
    int32_t *ids = NULL, *mask = NULL, *labels = NULL, *pos = NULL;
    float *logits = NULL;
    int64_t B = 0, T = 0;
    int rc;
    SW_TRY_GOTO(rc, sw_st_open(o->input, &in), out);
    SW_TRY_GOTO(rc, read_ids(in, o->input, "input_ids", 1, &B, &T, &ids), out);
    SW_TRY_GOTO(rc, read_ids(in, o->input, "attention_mask", 0, &B, &T, &mask), out);
    SW_TRY_GOTO(rc, read_ids(in, o->input, "labels", 0, &B, &T, &labels), out);
    SW_TRY_GOTO(rc, read_ids(in, o->input, "position_ids", 0, &B, &T, &pos), out);
    SW_TRY_GOTO(rc, sw_eval_model_open(o->model, o->adapter, &em), out);
    int64_t V = em->hf->config.vocab_size;
    if ((uint64_t)B * (uint64_t)T * (uint64_t)V > ((uint64_t)1 << 40) / sizeof(float)) {
        rc = sw_err_set(SW_ERANGE, "%s: logits [%lld, %lld, %lld] would exceed 1 TiB", o->input,
                        (long long)B, (long long)T, (long long)V);
        goto out;
    }
    logits = malloc((size_t)(B * T * V) * sizeof(float));
    if (!logits) {
        rc = sw_err_set(SW_ENOMEM, "out of memory for logits [%lld, %lld, %lld]", (long long)B,
                        (long long)T, (long long)V);
        goto out;
    }
    struct sw_eval_batch b = {B, T, ids, mask, labels, pos};
    double loss;
    int64_t count;
    rc = sw_eval_logits(em, &b, o->max_tokens, logits, &loss, &count);
    if (rc < 0) {
        sw_err_wrap(rc, "%s", o->input);
        goto out;
    }
    sw_info("%lld x %lld tokens: loss %.6f over %lld targets", (long long)B, (long long)T, loss,
            (long long)count);
    rc = write_output(o, logits, B, T, V, loss, count);
out:
    free(logits), free(ids), free(mask), free(labels), free(pos);
    sw_eval_model_close(em);
    sw_st_close(in);
    return rc;
}
