/* sw_calib_quant — sw-quant quantize --quant_method gptq|awq over a whole HF folder (the
 * procedures are described in sw_calib.h): options checked against every linear before any
 * calibration, the per-layer GPTQ / AWQ passes over the model, and the output folder in GPTQ's
 * v1 or AutoAWQ's GEMM layout, written into a temporary folder and renamed when complete. */
#include "sw_awq.h"
#include "sw_calib.h"
#include "sw_dtype.h"
#include "sw_err.h"
#include "sw_gptq.h"
#include "sw_hfmodel.h"
#include "sw_io.h"
#include "sw_log.h"
#include "sw_qfolder.h"
#include "sw_quant_hf.h"
#include "sw_safetensors.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { NLIN = 7 };
static const char *const lin_name[NLIN] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                           "gate_proj", "up_proj", "down_proj"};
static const char *const lin_parent[NLIN] = {"self_attn", "self_attn", "self_attn", "self_attn",
                                             "mlp",       "mlp",       "mlp"};

/* One quantized linear: codes, per-group scales and zero points (and GPTQ's g_idx). */
struct qlin {
    int64_t out, in, ng;
    uint8_t *q;
    float *scales;
    int32_t *zeros;
    int32_t *g_idx;
};

/* A kept tensor whose values AWQ changed (norm weights, biases): float32 values by name. */
struct override {
    char *name;
    float *v;
};

struct job {
    const struct sw_calib_quant_opts *o;
    struct sw_calib_model cm;
    struct sw_calib_rows rows;
    int L;
    struct qlin *lin; /* [L · NLIN] */
    struct override *ov;
    int nov;
    struct sw_calib_quant_stats *st;
};

static void lin_pname(char *buf, size_t n, int l, int k, const char *what) {
    snprintf(buf, n, "model.layers.%d.%s.%s.%s", l, lin_parent[k], lin_name[k], what);
}

static struct sw_param *lin_param(struct job *j, int l, int k, const char *what) {
    char nm[160];
    lin_pname(nm, sizeof nm, l, k, what);
    return sw_model_param_find(j->cm.m, nm);
}

static int add_override(struct job *j, const char *name, const float *v, int64_t n) {
    struct override *no = realloc(j->ov, (size_t)(j->nov + 1) * sizeof *no);
    if (!no) return sw_err_set(SW_ENOMEM, "out of memory");
    j->ov = no;
    float *c = malloc((size_t)n * sizeof *c);
    char *nm = strdup(name);
    if (!c || !nm) {
        free(c), free(nm);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    memcpy(c, v, (size_t)n * sizeof *c);
    j->ov[j->nov].name = nm;
    j->ov[j->nov].v = c;
    j->nov++;
    return 0;
}

/* ---- GPTQ ------------------------------------------------------------------------------ */

struct hctx {
    struct sw_backend *be;
    float *H;
    int64_t in, n;
    int layer, kind;
};

static int h_observe(void *p, const struct sw_linear_site *s, const float *x, int64_t N) {
    struct hctx *h = p;
    if (s->layer != h->layer || s->kind != h->kind) return 0;
    h->n += N;
    return h->be->matmul_bwd_dw(h->be, h->H, x, x, N, h->in, h->in, 1.0f, 1.0f);
}

/* RTN at the same bits / group (sw_gptq_pack) for the error report. */
static double rtn_error(const float *w, int64_t out, int64_t in,
                        const struct sw_calib_quant_opts *o, const double *H) {
    int64_t g = o->group_size > 0 ? o->group_size : in, pf = 32 / o->bits;
    int32_t *qw = malloc((size_t)(in / pf * out) * 4), *qz = malloc((size_t)(in / g * out) * 4),
            *gi = malloc((size_t)in * 4);
    uint16_t *sc = malloc((size_t)(in / g * out) * 2);
    float *back = malloc((size_t)(out * in) * sizeof *back);
    double e = NAN;
    if (qw && qz && gi && sc && back &&
        sw_gptq_pack(w, out, in, o->bits, g, o->sym, qw, qz, sc, gi) == 0) {
        sw_gptq_unpack(qw, qz, sc, gi, out, in, o->bits, in / g, back);
        e = sw_gptq_output_error(w, back, out, in, H);
    }
    free(qw), free(qz), free(gi), free(sc), free(back);
    return e;
}

static int gptq_layer(struct job *j, int l) {
    static const int groups[4][3] = {{0, 1, 2}, {3, -1, -1}, {4, 5, -1}, {6, -1, -1}};
    const struct sw_calib_quant_opts *o = j->o;
    for (int gi = 0; gi < 4; gi++) {
        int k0 = groups[gi][0];
        struct sw_param *p0 = lin_param(j, l, k0, "weight");
        int64_t in = p0->value.shape[1];
        float *H = calloc((size_t)(in * in), sizeof *H);
        double *Hd = malloc((size_t)(in * in) * sizeof *Hd);
        if (!H || !Hd) {
            free(H), free(Hd);
            return sw_err_set(SW_ENOMEM, "out of memory for a [%lld, %lld] Hessian", (long long)in,
                              (long long)in);
        }
        struct hctx h = {j->cm.be, H, in, 0, l, k0};
        int rc = sw_calib_run(&j->cm, &j->rows, h_observe, &h, l, k0);
        for (int64_t i = 0; rc == 0 && i < in * in; i++)
            Hd[i] = 2.0 * (double)H[i] / (double)h.n;
        free(H);
        for (int m = 0; rc == 0 && m < 3 && groups[gi][m] >= 0; m++) {
            int k = groups[gi][m];
            struct sw_param *p = lin_param(j, l, k, "weight");
            float *w = p->value.data;
            int64_t out = p->value.shape[0];
            struct sw_gptq_opts go = {o->bits,     o->group_size,   o->sym,
                                      o->desc_act, o->damp_percent, 128};
            struct sw_gptq_result r;
            rc = sw_gptq_quantize(w, out, in, Hd, &go, &r);
            if (rc < 0) {
                char nm[160];
                lin_pname(nm, sizeof nm, l, k, "weight");
                rc = sw_err_wrap(rc, "tensor '%s'", nm);
                break;
            }
            double e = sw_gptq_output_error(w, r.deq, out, in, Hd),
                   er = rtn_error(w, out, in, o, Hd);
            j->st->err_method += e, j->st->err_rtn += er;
            sw_debug("layer %d %s: output error %.4g (round-to-nearest %.4g)", l, lin_name[k], e,
                     er);
            /* later layers and groups see this linear quantized (GPTQ's sequential order) */
            memcpy(w, r.deq, (size_t)(out * in) * sizeof *w);
            struct qlin *q = &j->lin[l * NLIN + k];
            *q = (struct qlin){out, in, r.ngroups, r.q, r.scales, r.zeros, r.g_idx};
            free(r.deq);
        }
        free(Hd);
        if (rc < 0) return rc;
    }
    return 0;
}

/* ---- AWQ ------------------------------------------------------------------------------- */

struct cap {
    int layer;
    int want[NLIN];
    float *buf[NLIN];
    int64_t dim[NLIN], at[NLIN];
};

static int cap_observe(void *p, const struct sw_linear_site *s, const float *x, int64_t N) {
    struct cap *c = p;
    if (s->layer != c->layer || !c->want[s->kind]) return 0;
    memcpy(c->buf[s->kind] + c->at[s->kind] * c->dim[s->kind], x,
           (size_t)(N * c->dim[s->kind]) * sizeof *x);
    c->at[s->kind] += N;
    return 0;
}

struct awq_layer {
    struct job *j;
    int l;
    int64_t N, C, A, I; /* tokens, hidden, attention width (heads · head_dim), intermediate */
    float *W[NLIN];     /* working copies of the weights */
    int64_t out[NLIN], in[NLIN];
    float *x[NLIN]; /* captured inputs of q (= k, v), o, gate (= up), down */
    const float *bg, *bu;
    float *y, *t1, *t2; /* scratch */
};

static double sq_mean_diff(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        s += d * d;
    }
    return s / (double)n;
}

/* Block outputs for the candidate weights wq[] of a group; loss = mean squared error against
 * the float block output. */
static int block_loss(struct awq_layer *a, int group, float *const *wq, const float *yfp,
                      double *loss) {
    struct sw_backend *be = a->j->cm.be;
    int64_t N = a->N;
    if (group == 0) {
        /* q/k/v: rerun the model up to layer l's o_proj input with the candidate weights */
        float *save[3];
        int rc = 0;
        for (int k = 0; k < 3; k++) {
            float *pv = lin_param(a->j, a->l, k, "weight")->value.data;
            save[k] = malloc((size_t)(a->out[k] * a->in[k]) * sizeof(float));
            if (!save[k]) rc = sw_err_set(SW_ENOMEM, "out of memory");
            if (rc == 0) {
                memcpy(save[k], pv, (size_t)(a->out[k] * a->in[k]) * sizeof(float));
                memcpy(pv, wq[k], (size_t)(a->out[k] * a->in[k]) * sizeof(float));
            }
        }
        struct cap c = {.layer = a->l};
        c.want[3] = 1, c.buf[3] = a->t1, c.dim[3] = a->A;
        if (rc == 0) rc = sw_calib_run(&a->j->cm, &a->j->rows, cap_observe, &c, a->l, 3);
        for (int k = 0; k < 3; k++)
            if (save[k]) {
                memcpy(lin_param(a->j, a->l, k, "weight")->value.data, save[k],
                       (size_t)(a->out[k] * a->in[k]) * sizeof(float));
                free(save[k]);
            }
        SW_TRY(rc);
        SW_TRY(be->matmul_fwd(be, a->y, a->t1, a->W[3], NULL, N, a->C, a->A, 1.0f, 0.0f));
        *loss = sq_mean_diff(a->y, yfp, N * a->C);
        return 0;
    }
    if (group == 2) {
        SW_TRY(be->matmul_fwd(be, a->t1, a->x[4], wq[0], a->bg, N, a->I, a->C, 1.0f, 0.0f));
        SW_TRY(be->matmul_fwd(be, a->t2, a->x[4], wq[1], a->bu, N, a->I, a->C, 1.0f, 0.0f));
        for (int64_t i = 0; i < N * a->I; i++) {
            float g = a->t1[i];
            a->t1[i] = g / (1.0f + expf(-g)) * a->t2[i];
        }
        SW_TRY(be->matmul_fwd(be, a->y, a->t1, a->W[6], NULL, N, a->C, a->I, 1.0f, 0.0f));
        *loss = sq_mean_diff(a->y, yfp, N * a->C);
        return 0;
    }
    int k = group == 1 ? 3 : 6;
    SW_TRY(be->matmul_fwd(be, a->y, a->x[k], wq[0], NULL, N, a->out[k], a->in[k], 1.0f, 0.0f));
    *loss = sq_mean_diff(a->y, yfp, N * a->out[k]);
    return 0;
}

/* AutoAWQ's _search_best_scale for group (0 qkv, 1 o, 2 gate/up, 3 down) into s [in]. */
static int awq_search(struct awq_layer *a, int group, float *s) {
    static const int members[4][3] = {{0, 1, 2}, {3, -1, -1}, {4, 5, -1}, {6, -1, -1}};
    int nw = 0, k0 = members[group][0];
    int64_t in = a->in[k0], N = a->N;
    const float *ws[3] = {0};
    int64_t outs[3] = {0};
    float *wq[3] = {0};
    for (int m = 0; m < 3 && members[group][m] >= 0; m++, nw++) {
        int k = members[group][m];
        ws[m] = a->W[k], outs[m] = a->out[k];
    }
    float *xm = malloc((size_t)in * sizeof *xm), *wm = malloc((size_t)in * sizeof *wm);
    float *cand = malloc((size_t)in * sizeof *cand);
    int64_t yn = N * (group == 1 ? a->out[3] : a->C);
    float *yfp = malloc((size_t)yn * sizeof *yfp);
    int rc = xm && wm && cand && yfp ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
    for (int m = 0; rc == 0 && m < nw; m++)
        if (!(wq[m] = malloc((size_t)(outs[m] * in) * sizeof(float))))
            rc = sw_err_set(SW_ENOMEM, "out of memory");
    if (rc == 0) {
        const float *x = a->x[group == 0 ? 0 : k0];
        for (int64_t c = 0; c < in; c++) {
            double acc = 0;
            for (int64_t t = 0; t < N; t++)
                acc += fabsf(x[t * in + c]);
            xm[c] = (float)(acc / (double)N);
        }
        sw_awq_w_mean(ws, outs, nw, in, a->j->o->group_size, wm);
        /* the float block output: the candidate "weights" are the originals */
        float *orig[3] = {a->W[members[group][0]], nw > 1 ? a->W[members[group][1]] : NULL,
                          nw > 2 ? a->W[members[group][2]] : NULL};
        if (group == 0) {
            rc = sw_calib_run(&a->j->cm, &a->j->rows, cap_observe,
                              &(struct cap){.layer = a->l,
                                            .want = {0, 0, 0, 1},
                                            .buf = {NULL, NULL, NULL, a->t1},
                                            .dim = {0, 0, 0, a->A}},
                              a->l, 3);
            if (rc == 0)
                rc = a->j->cm.be->matmul_fwd(a->j->cm.be, yfp, a->t1, a->W[3], NULL, N, a->C, a->A,
                                             1.0f, 0.0f);
        } else {
            double dummy;
            rc = block_loss(a, group, orig, yfp, &dummy);
            if (rc == 0) memcpy(yfp, a->y, (size_t)yn * sizeof *yfp);
        }
    }
    double best = INFINITY;
    int best_k = -1;
    for (int k = 0; rc == 0 && k < 20; k++) {
        sw_awq_ratio_scales(xm, wm, in, k / 20.0, cand);
        for (int m = 0; m < nw; m++)
            sw_awq_scaled_quant(ws[m], outs[m], in, cand, a->j->o->bits, a->j->o->group_size,
                                wq[m]);
        double loss;
        rc = block_loss(a, group, wq, yfp, &loss);
        if (rc == 0 && loss < best) {
            best = loss, best_k = k;
            memcpy(s, cand, (size_t)in * sizeof *s);
        }
    }
    if (rc == 0 && best_k < 0)
        rc =
            sw_err_set(SW_ERANGE, "layer %d: AWQ found no finite scale for %s", a->l, lin_name[k0]);
    if (rc == 0)
        sw_debug("layer %d %s: AWQ ratio %.2f, block error %.4g", a->l, lin_name[k0], best_k / 20.0,
                 best);
    for (int m = 0; m < 3; m++)
        free(wq[m]);
    free(xm), free(wm), free(cand), free(yfp);
    return rc;
}

static void scale_cols(float *w, int64_t out, int64_t in, const float *s) {
    for (int64_t r = 0; r < out; r++)
        for (int64_t c = 0; c < in; c++)
            w[r * in + c] *= s[c];
}

static void div_rows(float *w, int64_t out, int64_t in, const float *s) {
    for (int64_t r = 0; r < out; r++)
        for (int64_t c = 0; c < in; c++)
            w[r * in + c] /= s[r];
}

static void div_x(float *x, int64_t N, int64_t in, const float *s) {
    for (int64_t t = 0; t < N; t++)
        for (int64_t c = 0; c < in; c++)
            x[t * in + c] /= s[c];
}

static int awq_layer(struct job *j, int l) {
    const struct sw_model_config *cfg = sw_model_config_get(j->cm.m);
    struct awq_layer a = {.j = j, .l = l, .N = j->rows.tokens};
    int rc = 0;
    for (int k = 0; k < NLIN; k++) {
        struct sw_param *p = lin_param(j, l, k, "weight");
        a.out[k] = p->value.shape[0], a.in[k] = p->value.shape[1];
        a.W[k] = malloc((size_t)(a.out[k] * a.in[k]) * sizeof(float));
        if (!a.W[k])
            rc = sw_err_set(SW_ENOMEM, "out of memory");
        else
            memcpy(a.W[k], p->value.data, (size_t)(a.out[k] * a.in[k]) * sizeof(float));
    }
    a.C = a.in[0], a.A = a.in[3], a.I = a.in[6];
    struct sw_param *pbg = lin_param(j, l, 4, "bias"), *pbu = lin_param(j, l, 5, "bias");
    a.bg = pbg ? pbg->value.data : NULL, a.bu = pbu ? pbu->value.data : NULL;
    int64_t big = a.I > a.A ? a.I : a.A;
    big = big > a.C ? big : a.C;
    static const int capk[4] = {0, 3, 4, 6};
    struct cap c = {.layer = l};
    for (int i = 0; rc == 0 && i < 4; i++) {
        int k = capk[i];
        a.x[k] = malloc((size_t)(a.N * a.in[k]) * sizeof(float));
        if (!a.x[k]) rc = sw_err_set(SW_ENOMEM, "out of memory for the calibration inputs");
        c.want[k] = 1, c.buf[k] = a.x[k], c.dim[k] = a.in[k];
    }
    a.y = malloc((size_t)(a.N * big) * sizeof(float));
    a.t1 = malloc((size_t)(a.N * big) * sizeof(float));
    a.t2 = malloc((size_t)(a.N * big) * sizeof(float));
    if (rc == 0 && (!a.y || !a.t1 || !a.t2)) rc = sw_err_set(SW_ENOMEM, "out of memory");
    if (rc == 0) rc = sw_calib_run(&j->cm, &j->rows, cap_observe, &c, l, 6);
    float *s[4] = {0};
    int has_o = a.out[2] == a.out[3] && a.in[2] == a.in[3]; /* v_proj and o_proj shapes agree */
    for (int gi = 0; rc == 0 && gi < 4; gi++) {
        if (gi == 1 && !has_o) continue;
        int64_t in = a.in[capk[gi]];
        if (!(s[gi] = malloc((size_t)in * sizeof(float))))
            rc = sw_err_set(SW_ENOMEM, "out of memory");
        else
            rc = awq_search(&a, gi, s[gi]);
    }
    char nm[160];
    if (rc == 0) {
        /* apply the scales (AutoAWQ's apply_scale) to weights, kept tensors and inputs */
        struct sw_param *ln1, *ln2, *bv = lin_param(j, l, 2, "bias");
        snprintf(nm, sizeof nm, "model.layers.%d.input_layernorm.weight", l);
        ln1 = sw_model_param_find(j->cm.m, nm);
        float *v = malloc((size_t)(a.C > a.I ? a.C : a.I) * sizeof *v);
        if (!v || !ln1) rc = sw_err_set(SW_ENOMEM, "out of memory");
        for (int64_t c2 = 0; rc == 0 && c2 < a.C; c2++)
            v[c2] = ((float *)ln1->value.data)[c2] / s[0][c2];
        if (rc == 0) rc = add_override(j, nm, v, a.C);
        for (int k = 0; rc == 0 && k < 3; k++)
            scale_cols(a.W[k], a.out[k], a.in[k], s[0]);
        if (rc == 0) div_x(a.x[0], a.N, a.C, s[0]);
        if (rc == 0 && has_o) {
            div_rows(a.W[2], a.out[2], a.in[2], s[1]);
            scale_cols(a.W[3], a.out[3], a.in[3], s[1]);
            div_x(a.x[3], a.N, a.A, s[1]);
            if (bv) {
                for (int64_t r = 0; r < a.out[2]; r++)
                    v[r] = ((float *)bv->value.data)[r] / s[1][r];
                lin_pname(nm, sizeof nm, l, 2, "bias");
                rc = add_override(j, nm, v, a.out[2]);
            }
        }
        snprintf(nm, sizeof nm, "model.layers.%d.post_attention_layernorm.weight", l);
        ln2 = sw_model_param_find(j->cm.m, nm);
        for (int64_t c2 = 0; rc == 0 && ln2 && c2 < a.C; c2++)
            v[c2] = ((float *)ln2->value.data)[c2] / s[2][c2];
        if (rc == 0) rc = add_override(j, nm, v, a.C);
        if (rc == 0) {
            scale_cols(a.W[4], a.out[4], a.in[4], s[2]);
            scale_cols(a.W[5], a.out[5], a.in[5], s[2]);
            div_x(a.x[4], a.N, a.C, s[2]);
            div_rows(a.W[5], a.out[5], a.in[5], s[3]);
            scale_cols(a.W[6], a.out[6], a.in[6], s[3]);
            div_x(a.x[6], a.N, a.I, s[3]);
            if (pbu) {
                for (int64_t r = 0; r < a.out[5]; r++)
                    v[r] = ((float *)pbu->value.data)[r] / s[3][r];
                lin_pname(nm, sizeof nm, l, 5, "bias");
                rc = add_override(j, nm, v, a.out[5]);
            }
        }
        free(v);
    }
    /* clipping search (not q/k), then the final pseudo-quantization of all seven */
    static const int xk[NLIN] = {0, 0, 0, 3, 4, 4, 6};
    for (int k = 2; rc == 0 && k < NLIN; k++)
        sw_awq_clip(a.W[k], a.out[k], a.in[k], a.x[xk[k]], a.N, j->o->bits, j->o->group_size);
    for (int k = 0; rc == 0 && k < NLIN; k++) {
        int64_t out = a.out[k], in = a.in[k], ng = in / j->o->group_size;
        struct qlin *q = &j->lin[l * NLIN + k];
        *q = (struct qlin){out,
                           in,
                           ng,
                           malloc((size_t)(out * in)),
                           malloc((size_t)(ng * out) * sizeof(float)),
                           malloc((size_t)(ng * out) * sizeof(int32_t)),
                           NULL};
        if (!q->q || !q->scales || !q->zeros) {
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            break;
        }
        sw_awq_pseudo_quant(a.W[k], out, in, j->o->bits, j->o->group_size, a.W[k], q->q, q->scales,
                            q->zeros);
    }
    (void)cfg;
    for (int k = 0; k < NLIN; k++)
        free(a.W[k]), free(a.x[k]);
    for (int i = 0; i < 4; i++)
        free(s[i]);
    free(a.y), free(a.t1), free(a.t2);
    return rc;
}

/* ---- the folder ------------------------------------------------------------------------ */

/* layer and kind of a decoder linear weight name, or -1. */
static int parse_linear(const char *name, int *layer) {
    int l, n = 0;
    if (sscanf(name, "model.layers.%d.%n", &l, &n) != 1 || n == 0) return -1;
    for (int k = 0; k < NLIN; k++) {
        char want[64];
        snprintf(want, sizeof want, "%s.%s.weight", lin_parent[k], lin_name[k]);
        if (!strcmp(name + n, want)) {
            *layer = l;
            return k;
        }
    }
    return -1;
}

struct bufs {
    void **p;
    int n, cap;
};

static void *keep(struct bufs *b, void *x) {
    if (!x) return NULL;
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 64;
        void **np = realloc(b->p, (size_t)cap * sizeof *np);
        if (!np) {
            free(x);
            return NULL;
        }
        b->p = np, b->cap = cap;
    }
    return b->p[b->n++] = x;
}

static int add_t(struct sw_st_writer *w, const char *name, enum sw_dtype dt, int nd,
                 const int64_t *shape, void *data) {
    struct sw_tensor t;
    SW_TRY(sw_tensor_init(&t, dt, nd, shape, data));
    return sw_st_writer_add(w, name, &t);
}

static int add_packed(struct job *j, const char *wname, const struct qlin *q,
                      struct sw_st_writer *w, struct bufs *b) {
    char base[200], nm[240];
    snprintf(base, sizeof base, "%.*s", (int)(strlen(wname) - strlen(".weight")), wname);
    int64_t out = q->out, in = q->in, ng = q->ng;
    int rc = 0;
    if (!strcmp(j->o->method, "gptq")) {
        int pf = 32 / j->o->bits;
        int32_t *qw = keep(b, malloc((size_t)(in / pf * out) * 4));
        int32_t *qz = keep(b, malloc((size_t)(ng * out / pf) * 4));
        uint16_t *sc = keep(b, malloc((size_t)(ng * out) * 2));
        if (!qw || !qz || !sc) return sw_err_set(SW_ENOMEM, "out of memory");
        struct sw_gptq_result r = {out, in, ng, q->q, q->scales, q->zeros, q->g_idx, NULL, 0};
        SW_TRY(sw_gptq_pack_codes(&r, j->o->bits, qw, qz, sc));
        int64_t s_qw[2] = {in / pf, out}, s_qz[2] = {ng, out / pf}, s_sc[2] = {ng, out},
                s_gi[1] = {in};
        snprintf(nm, sizeof nm, "%s.qweight", base);
        if (rc == 0) rc = add_t(w, nm, SW_DTYPE_I32, 2, s_qw, qw);
        snprintf(nm, sizeof nm, "%s.qzeros", base);
        if (rc == 0) rc = add_t(w, nm, SW_DTYPE_I32, 2, s_qz, qz);
        snprintf(nm, sizeof nm, "%s.scales", base);
        if (rc == 0) rc = add_t(w, nm, SW_DTYPE_F16, 2, s_sc, sc);
        snprintf(nm, sizeof nm, "%s.g_idx", base);
        if (rc == 0) rc = add_t(w, nm, SW_DTYPE_I32, 1, s_gi, q->g_idx);
        j->st->bytes_out += (uint64_t)(in / pf * out + ng * out / pf + in) * 4 + ng * out * 2;
        return rc;
    }
    int32_t *qw = keep(b, malloc((size_t)(in * out / 8) * 4));
    int32_t *qz = keep(b, malloc((size_t)(ng * out / 8) * 4));
    uint16_t *sc = keep(b, malloc((size_t)(ng * out) * 2));
    if (!qw || !qz || !sc) return sw_err_set(SW_ENOMEM, "out of memory");
    SW_TRY(sw_awq_pack(q->q, q->zeros, q->scales, out, in, in / ng, qw, qz, sc));
    int64_t s_qw[2] = {in, out / 8}, s_qz[2] = {ng, out / 8}, s_sc[2] = {ng, out};
    snprintf(nm, sizeof nm, "%s.qweight", base);
    rc = add_t(w, nm, SW_DTYPE_I32, 2, s_qw, qw);
    snprintf(nm, sizeof nm, "%s.qzeros", base);
    if (rc == 0) rc = add_t(w, nm, SW_DTYPE_I32, 2, s_qz, qz);
    snprintf(nm, sizeof nm, "%s.scales", base);
    if (rc == 0) rc = add_t(w, nm, SW_DTYPE_F16, 2, s_sc, sc);
    j->st->bytes_out += (uint64_t)(in * out / 8 + ng * out / 8) * 4 + ng * out * 2;
    return rc;
}

static json_t *quant_config(const struct sw_calib_quant_opts *o) {
    if (!strcmp(o->method, "awq"))
        return json_pack("{s:s, s:i, s:I, s:b, s:s, s:n}", "quant_method", "awq", "bits", o->bits,
                         "group_size", (json_int_t)o->group_size, "zero_point", 1, "version",
                         "gemm", "modules_to_not_convert");
    return json_pack("{s:s, s:i, s:I, s:b, s:b, s:s, s:f, s:b, s:b, s:b, s:{s:[s], s:s}}",
                     "quant_method", "gptq", "bits", o->bits, "group_size",
                     (json_int_t)o->group_size, "desc_act", o->desc_act, "sym", o->sym,
                     "checkpoint_format", "gptq", "damp_percent", o->damp_percent,
                     "true_sequential", 1, "static_groups", 0, "lm_head", 0, "meta", "quantizer",
                     "sw-quant gptq", "method", "gptq");
}

static int write_folder(struct job *j) {
    const struct sw_calib_quant_opts *o = j->o;
    struct sw_st_set *ws = j->cm.hf->weights;
    struct sw_st_writer *w = NULL;
    struct bufs b = {0};
    int rc = sw_st_writer_new(&w);
    for (int i = 0; rc == 0 && i < sw_st_set_count(ws); i++) {
        const struct sw_st_entry *e = sw_st_set_get(ws, i);
        int l, k = parse_linear(e->name, &l);
        j->st->bytes_in += e->nbytes;
        if (k >= 0 && l < j->L) {
            rc = add_packed(j, e->name, &j->lin[l * NLIN + k], w, &b);
            j->st->n_quantized++;
            continue;
        }
        const float *ov = NULL;
        for (int v = 0; v < j->nov; v++)
            if (!strcmp(j->ov[v].name, e->name)) ov = j->ov[v].v;
        struct sw_tensor t;
        if (ov) {
            void *conv = keep(&b, malloc(e->nbytes ? e->nbytes : 1));
            if (!conv) rc = sw_err_set(SW_ENOMEM, "out of memory");
            if (rc == 0)
                rc = sw_dtype_convert(e->dtype, conv, SW_DTYPE_F32, ov,
                                      e->nbytes / sw_dtype_nbytes(e->dtype, 1));
            if (rc == 0) rc = add_t(w, e->name, e->dtype, e->ndim, e->shape, conv);
        } else {
            sw_st_entry_view(e, &t);
            rc = sw_st_writer_add(w, e->name, &t);
        }
        j->st->n_kept++;
        j->st->bytes_out += e->nbytes;
    }
    if (rc == 0) rc = sw_qfolder_write(o->model, o->output_dir, o->force, w, quant_config(o), NULL);
    sw_st_writer_free(w);
    for (int i = 0; i < b.n; i++)
        free(b.p[i]);
    free(b.p);
    return rc;
}

/* ---- the command ----------------------------------------------------------------------- */

/* Every linear must fit the layout: checked before the (slow) calibration. */
static int check_shapes(const struct sw_calib_quant_opts *o, const struct sw_st_set *ws) {
    int awq = !strcmp(o->method, "awq");
    int pf = 32 / o->bits;
    for (int i = 0; i < sw_st_set_count(ws); i++) {
        const struct sw_st_entry *e = sw_st_set_get(ws, i);
        int l;
        if (parse_linear(e->name, &l) < 0 || e->ndim != 2) continue;
        int64_t out = e->shape[0], in = e->shape[1], g = o->group_size > 0 ? o->group_size : in;
        if (in % g != 0)
            return sw_err_set(SW_EINVAL,
                              "tensor '%s': rows of %lld are not divisible by the group size %lld",
                              e->name, (long long)in, (long long)g);
        if (awq && out % 8 != 0)
            return sw_err_set(SW_EINVAL,
                              "tensor '%s': AWQ's GEMM layout needs out_features divisible by 8, "
                              "not %lld",
                              e->name, (long long)out);
        if (!awq && (in % pf || out % pf))
            return sw_err_set(SW_EINVAL,
                              "tensor '%s': shape [%lld, %lld]: both dimensions must be "
                              "multiples of %d to pack %d-bit values into int32",
                              e->name, (long long)out, (long long)in, pf, o->bits);
    }
    return 0;
}

int sw_quantize_calibrated(const struct sw_calib_quant_opts *o, struct sw_calib_quant_stats *st) {
    memset(st, 0, sizeof *st);
    int awq = !strcmp(o->method, "awq");
    if (!awq && strcmp(o->method, "gptq"))
        return sw_err_set(SW_EUSAGE, "--quant_method %s is not gptq or awq", o->method);
    if (awq && o->bits != 4)
        return sw_err_set(SW_EUSAGE,
                          "--quant_method awq supports --quant_bits 4 only (AutoAWQ's GEMM "
                          "layout), not %d",
                          o->bits);
    if (!awq && o->bits != 4 && o->bits != 8)
        return sw_err_set(SW_EUSAGE, "--quant_method gptq needs --quant_bits 4 or 8, not %d",
                          o->bits);
    if (o->group_size == 0 || o->group_size < -1 || (awq && o->group_size < 0))
        return sw_err_set(SW_EUSAGE, "--group_size must be positive%s",
                          awq ? " for awq" : " or -1 (per channel)");
    if (!(o->damp_percent >= 0 && o->damp_percent < 1))
        return sw_err_set(SW_EUSAGE, "--damp_percent must be in [0, 1), not %g", o->damp_percent);
    if (!o->force && access(o->output_dir, F_OK) == 0)
        return sw_err_set(SW_EINVAL, "'%s' exists (use --force to replace it)", o->output_dir);
    struct job j = {.o = o, .st = st};
    int rc = sw_calib_model_open(o->model, &j.cm);
    if (rc == 0) rc = sw_hfmodel_verify(j.cm.hf);
    if (rc == 0) rc = check_shapes(o, j.cm.hf->weights);
    if (rc == 0) {
        struct sw_calib_data_opts d = {o->dataset, o->model, o->calib_rows, o->max_length,
                                       j.cm.hf->config.vocab_size};
        rc = sw_calib_load(&d, &j.rows);
    }
    if (rc == 0) {
        j.L = (int)j.cm.hf->config.num_hidden_layers;
        st->rows = j.rows.n, st->tokens = j.rows.tokens;
        sw_info("calibrating on %lld rows, %lld tokens (%s)", (long long)j.rows.n,
                (long long)j.rows.tokens, o->dataset ? o->dataset : "built-in text");
        if (!(j.lin = calloc((size_t)j.L * NLIN, sizeof *j.lin)))
            rc = sw_err_set(SW_ENOMEM, "out of memory");
    }
    for (int l = 0; rc == 0 && l < j.L; l++) {
        rc = awq ? awq_layer(&j, l) : gptq_layer(&j, l);
        if (rc == 0) sw_info("%s: layer %d/%d done", o->method, l + 1, j.L);
    }
    if (rc == 0) rc = write_folder(&j);
    for (int i = 0; j.lin && i < j.L * NLIN; i++) {
        free(j.lin[i].q), free(j.lin[i].scales), free(j.lin[i].zeros), free(j.lin[i].g_idx);
    }
    free(j.lin);
    for (int i = 0; i < j.nov; i++)
        free(j.ov[i].name), free(j.ov[i].v);
    free(j.ov);
    sw_calib_rows_release(&j.rows);
    sw_calib_model_close(&j.cm);
    return rc;
}
