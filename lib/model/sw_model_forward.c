/* sw_model_forward — the forward pass: batch upload, embedding, the decoder layers (pre-norm
 * attention block and SwiGLU MLP block, each with a residual), the final RMSNorm and the
 * fused chunked LM-head cross-entropy; and the full-logits path for eval/parity.
 *
 * Per layer l (N tokens, C hidden, Hq/Hk heads of D, F intermediate), all in scratch:
 *   ln1 = rmsnorm(x)                       q = ln1·Wqᵀ [N,Hq·D], k, v = ln1·W{k,v}ᵀ [N,Hk·D]
 *   (qwen3) q = rmsnorm_D(q), k = rmsnorm_D(k) per head     rope(q), rope(k) at pos
 *   att = attention(q, k, v) [N,Hq·D]      h1 = x + att·Woᵀ
 *   ln2 = rmsnorm(h1)                      act = silu(ln2·Wgᵀ) · (ln2·Wuᵀ) [N,F]
 *   out = h1 + act·Wdᵀ
 * Every tensor backward needs is kept in struct sw_layer_act. */
#include "sw_model_impl.h"

#include "sw_err.h"
#include "sw_rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ALLOC_F(ptr, n)                                                                            \
    do {                                                                                           \
        if (!((ptr) = sw_model_scratch_f(m, (n)))) return SW_ENOMEM;                               \
    } while (0)

/* Allocate ptr only when it has no buffer yet: a checkpointing forward reuses one activation set
 * for every layer and for the recomputation in backward. */
#define ALLOC_ONCE(ptr, n)                                                                         \
    do {                                                                                           \
        if (!(ptr)) ALLOC_F(ptr, n);                                                               \
    } while (0)

const float *sw_model_norm_w(struct sw_model *m, const struct sw_param *p) {
    if (!m->gemma) return p->value.data;
    int64_t n = p->value.shape[0];
    float *w = sw_model_scratch_f(m, n);
    if (!w || m->be->add(m->be, w, p->value.data, m->ones, n) < 0) return NULL;
    return w;
}

int sw_model_mlp_act(struct sw_model *m, float *out, const float *gate, const float *up,
                     int64_t n) {
    if (m->gemma) return m->be->geglu_fwd(m->be, out, gate, up, n);
    return m->be->swiglu_fwd(m->be, out, gate, up, n);
}

#define NORM_W(var, p)                                                                             \
    const float *var = sw_model_norm_w(m, (p));                                                    \
    if (!var) return SW_ENOMEM

int sw_model_attention_mode(const struct sw_model *m, int l, int64_t max_len, int64_t *window,
                            float *softcap, float *scale) {
    const struct sw_model_config *c = &m->cfg;
    int64_t w = m->layers[l].window;
    *window = w > 0 && max_len > w ? w : 0; /* a window no segment exceeds changes nothing */
    *softcap = c->attn_softcap > 0 ? (float)c->attn_softcap : 0.0f;
    *scale = c->query_pre_attn_scalar > 0 ? (float)(1.0 / sqrt(c->query_pre_attn_scalar))
                                          : 1.0f / sqrtf((float)m->D);
    if ((*window || *softcap > 0) && !m->be->attention_ext_fwd)
        return sw_err_set(
            SW_EUNSUPPORTED, "model: the %s backend has no %s attention yet (%s; layer %d)",
            m->be->name, *softcap > 0 ? "soft-capped" : "sliding-window", c->model_type, l);
    return 0;
}

int sw_model_layer_forward(struct sw_model *m, int l, struct sw_layer_act *a, float *out) {
    struct sw_backend *be = m->be;
    const struct sw_layer *ly = &m->layers[l];
    const struct sw_step *st = &m->step;
    int64_t N = st->N, C = m->C, F = m->F, Hq = m->Hq, Hk = m->Hk, D = m->D;
    float eps = (float)m->cfg.rms_norm_eps;

    ALLOC_ONCE(a->ln1, N * C);
    ALLOC_ONCE(a->ln1_rstd, N);
    NORM_W(w_ln1, ly->ln1);
    SW_TRY(be->rmsnorm_fwd(be, a->ln1, a->ln1_rstd, a->x, w_ln1, N, C, eps));

    ALLOC_ONCE(a->q, N * Hq * D);
    ALLOC_ONCE(a->k, N * Hk * D);
    ALLOC_ONCE(a->v, N * Hk * D);
    if (ly->q_norm) { /* qwen3: project into q_pre/k_pre, normalise per head into q/k */
        ALLOC_ONCE(a->q_pre, N * Hq * D);
        ALLOC_ONCE(a->k_pre, N * Hk * D);
        ALLOC_ONCE(a->q_rstd, N * Hq);
        ALLOC_ONCE(a->k_rstd, N * Hk);
    }
    float *qp = ly->q_norm ? a->q_pre : a->q, *kp = ly->q_norm ? a->k_pre : a->k;
    SW_TRY(sw_linear_forward(m, &ly->lin[SW_LIN_Q], qp, a->ln1, N, &a->lora[SW_LIN_Q]));
    SW_TRY(sw_linear_forward(m, &ly->lin[SW_LIN_K], kp, a->ln1, N, &a->lora[SW_LIN_K]));
    SW_TRY(sw_linear_forward(m, &ly->lin[SW_LIN_V], a->v, a->ln1, N, &a->lora[SW_LIN_V]));
    if (ly->q_norm) {
        SW_TRY(
            be->rmsnorm_fwd(be, a->q, a->q_rstd, a->q_pre, ly->q_norm->value.data, N * Hq, D, eps));
        SW_TRY(
            be->rmsnorm_fwd(be, a->k, a->k_rstd, a->k_pre, ly->k_norm->value.data, N * Hk, D, eps));
    }
    SW_TRY(be->rope_fwd(be, a->q, st->pos, m->rope_cos, m->rope_sin, N, Hq, D, m->rope_P));
    SW_TRY(be->rope_fwd(be, a->k, st->pos, m->rope_cos, m->rope_sin, N, Hk, D, m->rope_P));

    ALLOC_ONCE(a->att, N * Hq * D);
    ALLOC_ONCE(a->lse, N * Hq);
    int64_t win;
    float cap, scale;
    SW_TRY(sw_model_attention_mode(m, l, st->max_len, &win, &cap, &scale));
    if (win || cap > 0)
        SW_TRY(be->attention_ext_fwd(be, a->att, a->lse, a->q, a->k, a->v, st->cu, st->kv_len,
                                     st->nseq, st->max_len, N, Hq, Hk, D, scale, win, cap));
    else
        SW_TRY(be->attention_fwd(be, a->att, a->lse, a->q, a->k, a->v, st->cu, st->kv_len, st->nseq,
                                 st->max_len, N, Hq, Hk, D, scale));

    float *tmp = st->f_tmp; /* o_proj / down_proj output before the residual add */
    ALLOC_ONCE(a->h1, N * C);
    if (ly->post_attn) { /* gemma2: h1 = x + post_norm(o_proj(att)) */
        ALLOC_ONCE(a->o_out, N * C);
        ALLOC_ONCE(a->o_rstd, N);
        NORM_W(w_pa, ly->post_attn);
        SW_TRY(sw_linear_forward(m, &ly->lin[SW_LIN_O], a->o_out, a->att, N, &a->lora[SW_LIN_O]));
        SW_TRY(be->rmsnorm_fwd(be, tmp, a->o_rstd, a->o_out, w_pa, N, C, eps));
    } else {
        SW_TRY(sw_linear_forward(m, &ly->lin[SW_LIN_O], tmp, a->att, N, &a->lora[SW_LIN_O]));
    }
    SW_TRY(be->add(be, a->h1, a->x, tmp, N * C));

    ALLOC_ONCE(a->ln2, N * C);
    ALLOC_ONCE(a->ln2_rstd, N);
    NORM_W(w_ln2, ly->ln2);
    SW_TRY(be->rmsnorm_fwd(be, a->ln2, a->ln2_rstd, a->h1, w_ln2, N, C, eps));
    ALLOC_ONCE(a->gate, N * F);
    ALLOC_ONCE(a->up, N * F);
    ALLOC_ONCE(a->act, N * F);
    SW_TRY(sw_linear_forward(m, &ly->lin[SW_LIN_GATE], a->gate, a->ln2, N, &a->lora[SW_LIN_GATE]));
    SW_TRY(sw_linear_forward(m, &ly->lin[SW_LIN_UP], a->up, a->ln2, N, &a->lora[SW_LIN_UP]));
    SW_TRY(sw_model_mlp_act(m, a->act, a->gate, a->up, N * F));
    if (ly->post_ff) { /* gemma2: out = h1 + post_norm(down(act)) */
        ALLOC_ONCE(a->d_out, N * C);
        ALLOC_ONCE(a->d_rstd, N);
        NORM_W(w_pf, ly->post_ff);
        SW_TRY(sw_linear_forward(m, &ly->lin[SW_LIN_DOWN], a->d_out, a->act, N,
                                 &a->lora[SW_LIN_DOWN]));
        SW_TRY(be->rmsnorm_fwd(be, tmp, a->d_rstd, a->d_out, w_pf, N, C, eps));
    } else {
        SW_TRY(sw_linear_forward(m, &ly->lin[SW_LIN_DOWN], tmp, a->act, N, &a->lora[SW_LIN_DOWN]));
    }
    return be->add(be, out, a->h1, tmp, N * C);
}

/* Validate and upload the batch into m->step. */
static int step_begin(struct sw_model *m, const struct sw_batch *b) {
    struct sw_backend *be = m->be;
    struct sw_step *st = &m->step;
    struct sw_host_batch hb;
    be->scratch_reset(be);
    memset(st, 0, sizeof(*st));
    SW_TRY(sw_host_batch_build(b, m->V, &hb));
    int rc = sw_model_rope_reserve(m, hb.max_pos + 1);
    st->N = hb.N;
    st->nseq = hb.nseq;
    st->max_len = hb.max_len;
    st->count = hb.count;
    size_t ni = (size_t)hb.N * sizeof(int32_t);
    if (rc < 0 || !(st->ids = sw_model_scratch_i(m, hb.N)) ||
        !(st->pos = sw_model_scratch_i(m, hb.N)) || !(st->targets = sw_model_scratch_i(m, hb.N)) ||
        !(st->cu = sw_model_scratch_i(m, hb.nseq + 1)) ||
        (hb.padded && !(st->kv_len = sw_model_scratch_i(m, hb.nseq)))) {
        sw_host_batch_release(&hb);
        return rc < 0 ? rc : SW_ENOMEM;
    }
    SW_TRY_GOTO(rc, be->upload(be, st->ids, b->input_ids, ni), done);
    SW_TRY_GOTO(rc, be->upload(be, st->pos, hb.pos, ni), done);
    SW_TRY_GOTO(rc, be->upload(be, st->targets, hb.targets, ni), done);
    SW_TRY_GOTO(rc, be->upload(be, st->cu, hb.cu, (size_t)(hb.nseq + 1) * sizeof(int32_t)), done);
    if (hb.padded)
        SW_TRY_GOTO(rc, be->upload(be, st->kv_len, hb.kv_len, (size_t)hb.nseq * sizeof(int32_t)),
                    done);
    st->dropout_seed = sw_rng_derive(m->seed, SW_RNG_STREAM_DROPOUT, m->forward_count++);
    st->lora_off = m->lora_off;
done:
    sw_host_batch_release(&hb);
    return rc;
}

/* Σ of the per-row losses in row order, in double (deterministic on every backend). */
static int loss_sum(struct sw_model *m, double *sum) {
    int64_t N = m->step.N;
    float *h = malloc((size_t)N * sizeof(float));
    if (!h) return sw_err_set(SW_ENOMEM, "model: out of memory");
    int rc = m->be->download(m->be, h, m->step.loss_rows, (size_t)N * sizeof(float));
    double s = 0;
    for (int64_t n = 0; n < N; n++)
        s += h[n];
    free(h);
    *sum = s;
    return rc;
}

int sw_model_forward(struct sw_model *m, const struct sw_batch *b, struct sw_loss *loss) {
    struct sw_backend *be = m->be;
    struct sw_step *st = &m->step;
    if (loss) *loss = (struct sw_loss){0, 0};
    SW_TRY(step_begin(m, b));
    int64_t N = st->N, C = m->C;
    st->acts = m->acts; /* host records of device pointers */
    memset(st->acts, 0, (size_t)m->L * sizeof(*st->acts));
    float *x;
    ALLOC_F(st->f_tmp, N * C);
    ALLOC_F(x, N * C);
    SW_TRY(be->embedding_fwd(be, x, st->ids, m->embed->value.data, N, m->V, C));
    if (m->embed_scale != 1.0f) SW_TRY(be->scale(be, x, N * C, m->embed_scale));
    /* With checkpointing every layer writes the same activation set (ckpt_work) and only the
     * layer inputs acts[l].x stay; backward recomputes the rest layer by layer. */
    st->ckpt = m->grad_ckpt;
    st->ckpt_layer = -1;
    for (int l = 0; l < m->L; l++) {
        struct sw_layer_act *a = &st->acts[l];
        a->x = x;
        ALLOC_F(x, N * C);
        if (st->ckpt) {
            st->ckpt_work.x = a->x;
            SW_TRY(sw_model_layer_forward(m, l, &st->ckpt_work, x));
            st->ckpt_layer = l;
        } else {
            SW_TRY(sw_model_layer_forward(m, l, a, x));
        }
    }
    st->final_in = x;
    ALLOC_F(st->final_out, N * C);
    ALLOC_F(st->final_rstd, N);
    NORM_W(w_norm, m->norm);
    SW_TRY(be->rmsnorm_fwd(be, st->final_out, st->final_rstd, x, w_norm, N, C,
                           (float)m->cfg.rms_norm_eps));
    st->have_forward = 1;
    if (!b->labels) return 0;
    ALLOC_F(st->loss_rows, N);
    ALLOC_F(st->lse_rows, N);
    if (m->cfg.final_softcap > 0)
        SW_TRY(be->ce_fused_cap_fwd(be, st->loss_rows, st->lse_rows, st->final_out,
                                    m->lm_head->value.data, st->targets, N, m->V, C,
                                    m->ce_chunk_rows, (float)m->cfg.final_softcap));
    else
        SW_TRY(be->ce_fused_fwd(be, st->loss_rows, st->lse_rows, st->final_out,
                                m->lm_head->value.data, st->targets, N, m->V, C, m->ce_chunk_rows));
    double s = 0;
    SW_TRY(loss_sum(m, &s));
    st->have_loss = 1;
    if (loss) *loss = (struct sw_loss){s, st->count};
    return 0;
}

int sw_model_logits(struct sw_model *m, float *logits) {
    struct sw_backend *be = m->be;
    struct sw_step *st = &m->step;
    if (!st->have_forward) return sw_err_set(SW_ESTATE, "model: logits requested before a forward");
    float *d;
    ALLOC_F(d, st->N * m->V);
    SW_TRY(be->matmul_fwd(be, d, st->final_out, m->lm_head->value.data, NULL, st->N, m->V, m->C,
                          1.0f, 0.0f));
    if (m->cfg.final_softcap > 0)
        SW_TRY(be->softcap_fwd(be, d, st->N * m->V, (float)m->cfg.final_softcap));
    return be->download(be, logits, d, (size_t)(st->N * m->V) * sizeof(float));
}

int sw_model_logits_rows(struct sw_model *m, int64_t row0, int64_t nrows, float *logits) {
    struct sw_backend *be = m->be;
    struct sw_step *st = &m->step;
    if (!st->have_forward) return sw_err_set(SW_ESTATE, "model: logits requested before a forward");
    if (row0 < 0 || nrows < 0 || row0 + nrows > st->N)
        return sw_err_set(SW_EINVAL, "model: logits rows [%lld, %lld) outside [0, %lld)",
                          (long long)row0, (long long)(row0 + nrows), (long long)st->N);
    if (nrows == 0) return 0;
    float *d;
    ALLOC_F(d, nrows * m->V);
    SW_TRY(be->matmul_fwd(be, d, st->final_out + row0 * m->C, m->lm_head->value.data, NULL, nrows,
                          m->V, m->C, 1.0f, 0.0f));
    if (m->cfg.final_softcap > 0)
        SW_TRY(be->softcap_fwd(be, d, nrows * m->V, (float)m->cfg.final_softcap));
    return be->download(be, logits, d, (size_t)(nrows * m->V) * sizeof(float));
}

int sw_model_token_losses(struct sw_model *m, float *loss) {
    struct sw_step *st = &m->step;
    if (!st->have_forward || !st->loss_rows)
        return sw_err_set(SW_ESTATE, "model: token losses requested before a forward with labels");
    return m->be->download(m->be, loss, st->loss_rows, (size_t)st->N * sizeof(float));
}
