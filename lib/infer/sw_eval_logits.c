/* sw_eval_logits — full logits and transformers' causal-LM loss of a batch of token ids, and the
 * file-to-file command behind `sw-eval logits` (safetensors in, safetensors out, atomically).
 *
 * The loss is computed from the logits themselves on the host (double accumulation), not with
 * the model's fused training loss, because HF's definition with labels = input_ids also counts
 * the positions that the attention mask marks as padding (see sw_eval.h), which the model's batch
 * rules never target. */
#include "sw_eval.h"

#include "sw_err.h"
#include "sw_log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sw_eval_loss_from_logits(const float *logits, int64_t B, int64_t T, int64_t V,
                             const int32_t *labels, double *sum, int64_t *count) {
    double s = 0;
    int64_t n = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t + 1 < T; t++) {
            int32_t y = labels[b * T + t + 1];
            if (y == SW_IGNORE_INDEX) continue;
            if (y < 0 || y >= V)
                return sw_err_set(SW_ERANGE, "label %d at row %lld, column %lld is outside the "
                                  "vocabulary [0, %lld) (use -100 to ignore a position)", (int)y,
                                  (long long)b, (long long)(t + 1), (long long)V);
            const float *row = logits + (b * T + t) * V;
            double mx = row[0];
            for (int64_t v = 1; v < V; v++)
                if (row[v] > mx) mx = row[v];
            double z = exp((double)row[0] - mx); /* the sum holds exp(0) for the max: ≥ 1 */
            for (int64_t v = 1; v < V; v++) z += exp((double)row[v] - mx);
            s += mx + log(z) - (double)row[y];
            n++;
        }
    *sum = s;
    *count = n;
    return 0;
}

int sw_eval_logits(struct sw_eval_model *em, const struct sw_eval_batch *b, int64_t max_tokens,
                   float *logits, double *loss, int64_t *count) {
    int64_t V = em->hf->config.vocab_size, B = b->B, T = b->T;
    if (B < 1 || T < 1 || !b->input_ids)
        return sw_err_set(SW_EINVAL, "eval: need input_ids with B >= 1 and T >= 1 (B %lld, T %lld)",
                          (long long)B, (long long)T);
    if (max_tokens <= 0) max_tokens = 2048;
    int64_t rows = max_tokens / T > 0 ? max_tokens / T : 1;
    for (int64_t r0 = 0; r0 < B; r0 += rows) {
        int64_t nr = B - r0 < rows ? B - r0 : rows;
        int64_t off = r0 * T;
        struct sw_batch mb = {
            .B = nr,
            .T = T,
            .input_ids = b->input_ids + off,
            .attention_mask = b->attention_mask ? b->attention_mask + off : NULL,
            .position_ids = b->position_ids ? b->position_ids + off : NULL,
        };
        int rc = sw_model_forward(em->model, &mb, NULL);
        if (rc == 0) rc = sw_model_logits(em->model, logits + off * V);
        if (rc < 0) {
            if (r0 > 0 || nr < B) sw_err_wrap(rc, "rows %lld..%lld", (long long)r0,
                                              (long long)(r0 + nr - 1));
            return rc;
        }
    }
    if (!loss) return 0;
    double sum;
    int64_t n;
    SW_TRY(sw_eval_loss_from_logits(logits, B, T, V, b->labels ? b->labels : b->input_ids, &sum,
                                    &n));
    *loss = n > 0 ? sum / (double)n : NAN;
    if (count) *count = n;
    return 0;
}

/* ---- the file command ------------------------------------------------------------------------ */

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
        return sw_err_set(SW_EFORMAT, "%s: tensor '%s' must be an integer [B, T] tensor (got %s "
                          "with %d dimensions)", path, name, sw_dtype_name(e->dtype), e->ndim);
    if (*B == 0) {
        *B = e->shape[0];
        *T = e->shape[1];
        if (*B < 1 || *T < 1 || *B > INT32_MAX / *T)
            return sw_err_set(SW_EFORMAT, "%s: tensor '%s' has shape [%lld, %lld]: need B, T >= 1 "
                              "and B*T < 2^31", path, name, (long long)*B, (long long)*T);
    } else if (e->shape[0] != *B || e->shape[1] != *T) {
        return sw_err_set(SW_EFORMAT, "%s: tensor '%s' has shape [%lld, %lld] but input_ids is "
                          "[%lld, %lld]", path, name, (long long)e->shape[0],
                          (long long)e->shape[1], (long long)*B, (long long)*T);
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
    SW_TRY_GOTO(rc, sw_st_writer_set_metadata(w, "loss_definition",
                                              "mean over rows b and t < T-1 with labels[b,t+1] != "
                                              "-100 of -log_softmax(logits[b,t])[labels[b,t+1]]; "
                                              "labels = input_ids unless given; padding counted "
                                              "(transformers' causal-LM loss)"), out);
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
