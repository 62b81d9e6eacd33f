/* sw_imatrix — importance matrices from calibration runs (format and meaning: sw_imatrix.h).
 * One run over every calibration row; an observer adds x² of every decoder linear's input per
 * column (in double) and counts the tokens. */
#include "sw_imatrix.h"

#include "sw_calib.h"
#include "sw_err.h"
#include "sw_gguf.h"
#include "sw_hfmodel.h"
#include "sw_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const gguf_kind[7] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                         "ffn_gate", "ffn_up", "ffn_down"};

void sw_imatrix_tensor_name(int layer, int kind, char *buf, int n) {
    snprintf(buf, (size_t)n, "blk.%d.%s.weight", layer, gguf_kind[kind]);
}

struct acc {
    int L;
    double **sum; /* [L·7][in] */
    int64_t *in, *count;
};

static int observe(void *p, const struct sw_linear_site *s, const float *x, int64_t N) {
    struct acc *a = p;
    int i = s->layer * 7 + s->kind;
    if (s->layer < 0 || s->layer >= a->L || s->kind < 0 || s->kind >= 7) return 0;
    if (!a->sum[i]) {
        if (!(a->sum[i] = calloc((size_t)s->in, sizeof(double))))
            return sw_err_set(SW_ENOMEM, "out of memory");
        a->in[i] = s->in;
    }
    double *sum = a->sum[i];
    int64_t in = s->in;
#pragma omp parallel for schedule(static) if (in * N > 65536)
    for (int64_t c = 0; c < in; c++) {
        double v = 0;
        for (int64_t t = 0; t < N; t++)
            v += (double)x[t * in + c] * x[t * in + c];
        sum[c] += v;
    }
    a->count[i] += N;
    return 0;
}

struct named {
    char name[64];
    int ix;
};

static int cmp_named(const void *a, const void *b) {
    return strcmp(((const struct named *)a)->name, ((const struct named *)b)->name);
}

int sw_imatrix_compute(const struct sw_imatrix_opts *o, struct sw_imatrix_stats *st) {
    memset(st, 0, sizeof *st);
    if (!o->force && access(o->output, F_OK) == 0)
        return sw_err_set(SW_EINVAL, "'%s' exists (use --force to replace it)", o->output);
    struct sw_calib_model cm;
    struct sw_calib_rows rows = {0};
    struct acc a = {0};
    struct named *nm = NULL;
    struct sw_gguf_writer *w = NULL;
    float *buf = NULL;
    int rc = sw_calib_model_open(o->model, &cm);
    if (rc < 0) return rc;
    struct sw_calib_data_opts d = {o->dataset, o->model, o->calib_rows, o->max_length,
                                   cm.hf->config.vocab_size};
    SW_TRY_GOTO(rc, sw_calib_load(&d, &rows), out);
    a.L = (int)cm.hf->config.num_hidden_layers;
    a.sum = calloc((size_t)a.L * 7, sizeof *a.sum);
    a.in = calloc((size_t)a.L * 7, sizeof *a.in);
    a.count = calloc((size_t)a.L * 7, sizeof *a.count);
    nm = calloc((size_t)a.L * 7, sizeof *nm);
    if (!a.sum || !a.in || !a.count || !nm) {
        rc = sw_err_set(SW_ENOMEM, "out of memory");
        goto out;
    }
    sw_info("imatrix: %lld rows, %lld tokens (%s)", (long long)rows.n, (long long)rows.tokens,
            o->dataset ? o->dataset : "built-in text");
    SW_TRY_GOTO(rc, sw_calib_run(&cm, &rows, observe, &a, -1, -1), out);
    st->rows = rows.n, st->tokens = rows.tokens;
    int n = 0;
    int64_t maxin = 1;
    for (int i = 0; i < a.L * 7; i++)
        if (a.sum[i]) {
            sw_imatrix_tensor_name(i / 7, i % 7, nm[n].name, (int)sizeof nm[n].name);
            nm[n++].ix = i;
            maxin = a.in[i] > maxin ? a.in[i] : maxin;
        }
    qsort(nm, (size_t)n, sizeof *nm, cmp_named);
    const char *src = o->dataset ? o->dataset : "sw built-in calibration text (Tiny Shakespeare)";
    SW_TRY_GOTO(rc, sw_gguf_writer_new(&w), out);
    rc = sw_gguf_set_str(w, "general.type", "imatrix");
    if (rc == 0) rc = sw_gguf_set_arr_str(w, "imatrix.datasets", &src, NULL, 1);
    if (rc == 0) rc = sw_gguf_set_u32(w, "imatrix.chunk_count", (uint32_t)rows.n);
    if (rc == 0) rc = sw_gguf_set_u32(w, "imatrix.chunk_size", (uint32_t)o->max_length);
    for (int k = 0; rc == 0 && k < n; k++) {
        char tn[80];
        int64_t ne_s[2] = {a.in[nm[k].ix], 1}, ne_c[2] = {1, 1};
        snprintf(tn, sizeof tn, "%s.in_sum2", nm[k].name);
        rc = sw_gguf_add_tensor(w, tn, SW_GGML_F32, 2, ne_s);
        snprintf(tn, sizeof tn, "%s.counts", nm[k].name);
        if (rc >= 0) rc = sw_gguf_add_tensor(w, tn, SW_GGML_F32, 2, ne_c);
        if (rc > 0) rc = 0;
    }
    if (rc == 0) rc = sw_gguf_writer_begin(w, o->output);
    if (rc == 0 && !(buf = malloc((size_t)maxin * sizeof *buf)))
        rc = sw_err_set(SW_ENOMEM, "out of memory");
    for (int k = 0; rc == 0 && k < n; k++) {
        int i = nm[k].ix;
        for (int64_t c = 0; c < a.in[i]; c++)
            buf[c] = (float)a.sum[i][c];
        float cnt = (float)a.count[i];
        rc = sw_gguf_writer_write_tensor(w, buf, (size_t)a.in[i] * sizeof *buf);
        if (rc == 0) rc = sw_gguf_writer_write_tensor(w, &cnt, sizeof cnt);
    }
    if (rc == 0) rc = sw_gguf_writer_commit(w);
    if (rc == 0) st->n_entries = n;
out:
    sw_gguf_writer_free(w);
    free(buf);
    for (int i = 0; a.sum && i < a.L * 7; i++)
        free(a.sum[i]);
    free(a.sum), free(a.in), free(a.count), free(nm);
    sw_calib_rows_release(&rows);
    sw_calib_model_close(&cm);
    return rc;
}
