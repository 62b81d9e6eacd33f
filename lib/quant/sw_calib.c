/* sw_calib — calibration rows and model runs for sw-quant's calibrated methods (see sw_calib.h).
 * The rows come from an sws stream ("sample" and "batch" records, as sw-pack writes them) or
 * from the built-in text; a run packs rows into padding-free forwards and lets an observer see
 * every decoder linear's input, optionally cutting each forward short after one linear. */
#include "sw_calib.h"

#include "sw_err.h"
#include "sw_hfmodel.h"
#include "sw_log.h"
#include "sw_stream.h"
#include "sw_tokenizer.h"

#include <stdlib.h>
#include <string.h>

void sw_calib_rows_release(struct sw_calib_rows *r) {
    if (!r) return;
    for (int64_t i = 0; i < r->n; i++)
        free(r->ids[i]);
    free(r->ids);
    free(r->len);
    memset(r, 0, sizeof *r);
}

/* Append one row of n ids (cut to max_length), checking them against the vocabulary. */
static int add_row(struct sw_calib_rows *r, const struct sw_calib_data_opts *o, const void *ids,
                   int64_t n, const char *src, uint64_t rec) {
    if (n <= 0 || r->n >= o->rows) return 0;
    if (n > o->max_length) n = o->max_length;
    int32_t *v = malloc((size_t)n * sizeof *v);
    if (!v) return sw_err_set(SW_ENOMEM, "out of memory");
    memcpy(v, ids, (size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        if (v[i] < 0 || v[i] >= o->vocab_size) {
            long long bad = v[i];
            free(v);
            return sw_err_set(SW_ERANGE,
                              "%s: record %llu: input_ids[%lld] = %lld is not below the model's "
                              "vocab_size %lld",
                              src, (unsigned long long)rec, (long long)i, bad,
                              (long long)o->vocab_size);
        }
    r->ids[r->n] = v;
    r->len[r->n++] = n;
    r->tokens += n;
    return 0;
}

static int i32_tensor(const struct sw_record *rec, const char *key, struct sw_tensor *t,
                      const char *src) {
    SW_TRY(sw_record_get_tensor(rec, key, t));
    if (t->dtype != SW_DTYPE_I32)
        return sw_err_set(SW_EFORMAT, "%s: record %llu: '%s' is %s, not I32", src,
                          (unsigned long long)sw_record_index(rec), key, sw_dtype_name(t->dtype));
    return 0;
}

static int load_stream(const struct sw_calib_data_opts *o, struct sw_calib_rows *r) {
    struct sw_stream_reader *rd = NULL;
    SW_TRY(sw_stream_open_read(&rd, o->dataset, NULL));
    const char *src = sw_stream_reader_name(rd);
    const struct sw_record *rec;
    int rc = 0;
    while (r->n < o->rows && (rc = sw_stream_read(rd, &rec)) == 1) {
        uint64_t ix = sw_record_index(rec);
        const char *kind = sw_record_kind(rec);
        if (!sw_record_field(rec, "input_ids")) {
            rc = sw_err_set(SW_EFORMAT,
                            "%s: record %llu (%s) has no 'input_ids' (calibration needs token "
                            "samples or batches from sw-pack)",
                            src, (unsigned long long)ix, kind);
            break;
        }
        struct sw_tensor ids;
        if ((rc = i32_tensor(rec, "input_ids", &ids, src)) < 0) break;
        if (!strcmp(kind, "sample")) {
            rc = add_row(r, o, ids.data, ids.shape[0], src, ix);
        } else if (ids.ndim == 2) {
            int64_t B = ids.shape[0], T = ids.shape[1];
            const int32_t *v = ids.data;
            struct sw_tensor cu, am;
            if (sw_record_field(rec, "cu_seqlens")) {
                if ((rc = i32_tensor(rec, "cu_seqlens", &cu, src)) < 0) break;
                const int32_t *c = cu.data;
                for (int64_t s = 0; rc == 0 && s + 1 < cu.shape[0]; s++)
                    if (c[s] >= 0 && c[s] <= c[s + 1] && c[s + 1] <= B * T)
                        rc = add_row(r, o, v + c[s], c[s + 1] - c[s], src, ix);
            } else if (sw_record_field(rec, "attention_mask")) {
                if ((rc = sw_record_get_tensor(rec, "attention_mask", &am)) < 0) break;
                for (int64_t b = 0; rc == 0 && b < B; b++) {
                    int64_t n = 0;
                    for (int64_t t = 0; t < T; t++) {
                        int on = am.dtype == SW_DTYPE_I32 ? ((const int32_t *)am.data)[b * T + t]
                                                          : ((const uint8_t *)am.data)[b * T + t];
                        if (on) n = t + 1;
                    }
                    rc = add_row(r, o, v + b * T, n, src, ix);
                }
            } else {
                for (int64_t b = 0; rc == 0 && b < B; b++)
                    rc = add_row(r, o, v + b * T, T, src, ix);
            }
        } else {
            rc = sw_err_set(SW_EFORMAT, "%s: record %llu: input_ids of %d dimensions", src,
                            (unsigned long long)ix, ids.ndim);
        }
        if (rc < 0) break;
    }
    if (rc > 0) rc = 0;
    if (rc == 0 && r->n < o->rows)
        rc = sw_err_set(SW_EINVAL,
                        "%s: only %lld calibration rows, --calib_rows asks for %lld (use a "
                        "longer stream or a smaller --calib_rows)",
                        src, (long long)r->n, (long long)o->rows);
    sw_stream_reader_free(rd);
    return rc;
}

static int load_text(const struct sw_calib_data_opts *o, struct sw_calib_rows *r) {
    struct sw_tokenizer *tok = NULL;
    int rc = sw_tokenizer_load(o->tokenizer, &tok);
    if (rc < 0)
        return sw_err_wrap(rc, "the built-in calibration text needs the model's tokenizer "
                               "(or pass --dataset CALIB.sws)");
    int nt;
    const char *const *text = sw_calib_default_text(&nt);
    for (int i = 0; rc == 0 && i < nt && r->n < o->rows; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        rc = sw_tokenizer_encode(tok, text[i], strlen(text[i]), 1, &ids, &n);
        if (rc == 0) rc = add_row(r, o, ids, (int64_t)n, "built-in calibration text", i + 1);
        free(ids);
    }
    sw_tokenizer_free(tok);
    if (rc == 0 && r->n < o->rows)
        rc = sw_err_set(SW_EINVAL,
                        "the built-in calibration text has %lld rows, --calib_rows asks for "
                        "%lld (pass --dataset CALIB.sws for more)",
                        (long long)r->n, (long long)o->rows);
    return rc;
}

int sw_calib_load(const struct sw_calib_data_opts *o, struct sw_calib_rows *r) {
    memset(r, 0, sizeof *r);
    if (o->rows <= 0 || o->max_length <= 0)
        return sw_err_set(SW_EUSAGE, "--calib_rows and --max_length must be positive");
    r->ids = calloc((size_t)o->rows, sizeof *r->ids);
    r->len = calloc((size_t)o->rows, sizeof *r->len);
    if (!r->ids || !r->len) {
        sw_calib_rows_release(r);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    int rc = o->dataset ? load_stream(o, r) : load_text(o, r);
    if (rc < 0) sw_calib_rows_release(r);
    return rc;
}

int sw_calib_model_open(const char *dir, struct sw_calib_model *cm) {
    memset(cm, 0, sizeof *cm);
    int rc;
    SW_TRY_GOTO(rc, sw_hfmodel_open(dir, &cm->hf), fail);
    SW_TRY_GOTO(rc, sw_backend_open(SW_DEVICE_CPU, &cm->be), fail);
    rc = sw_model_new(&cm->hf->config, cm->be, &cm->m);
    if (rc < 0) {
        sw_err_wrap(rc, "%s/config.json", dir);
        goto fail;
    }
    SW_TRY_GOTO(rc, sw_model_load(cm->m, cm->hf->weights), fail);
    sw_model_set_training(cm->m, 0);
    sw_model_set_gradient_checkpointing(cm->m, 1);
    return 0;
fail:
    sw_calib_model_close(cm);
    return rc;
}

void sw_calib_model_close(struct sw_calib_model *cm) {
    if (!cm) return;
    sw_model_free(cm->m);
    sw_backend_close(cm->be);
    sw_hfmodel_close(cm->hf);
    memset(cm, 0, sizeof *cm);
}

struct run_ctx {
    sw_linear_observer_fn fn;
    void *ctx;
    int stop_layer, stop_kind, stopped;
};

static int run_observer(void *p, const struct sw_linear_site *site, const float *x, int64_t N) {
    struct run_ctx *rc = p;
    SW_TRY(rc->fn(rc->ctx, site, x, N));
    if (site->layer == rc->stop_layer && site->kind == rc->stop_kind) {
        rc->stopped = 1;
        return SW_ESTATE; /* cut the forward here; sw_calib_run knows it is not an error */
    }
    return 0;
}

#define RUN_TOKENS 4096

int sw_calib_run(struct sw_calib_model *cm, const struct sw_calib_rows *rows,
                 sw_linear_observer_fn fn, void *ctx, int stop_layer, int stop_kind) {
    int64_t cap = 0;
    for (int64_t i = 0; i < rows->n; i++)
        cap = rows->len[i] > cap ? rows->len[i] : cap;
    cap = cap > RUN_TOKENS ? cap : RUN_TOKENS;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    int32_t *cu = malloc((size_t)(rows->n + 1) * sizeof *cu);
    if (!ids || !cu) {
        free(ids), free(cu);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    struct run_ctx rc = {fn, ctx, stop_layer, stop_kind, 0};
    sw_model_set_linear_observer(cm->m, run_observer, &rc);
    int err = 0;
    for (int64_t i = 0; i < rows->n && err == 0;) {
        int64_t T = 0;
        int ns = 0;
        cu[0] = 0;
        while (i < rows->n && (ns == 0 || T + rows->len[i] <= RUN_TOKENS)) {
            memcpy(ids + T, rows->ids[i], (size_t)rows->len[i] * sizeof *ids);
            T += rows->len[i++];
            cu[++ns] = (int32_t)T;
        }
        struct sw_batch b = {.B = 1, .T = T, .input_ids = ids, .cu_seqlens = cu, .n_seqs = ns};
        rc.stopped = 0;
        err = sw_model_forward(cm->m, &b, NULL);
        if (err == SW_ESTATE && rc.stopped) err = 0;
    }
    sw_model_set_linear_observer(cm->m, NULL, NULL);
    free(ids), free(cu);
    return err;
}
