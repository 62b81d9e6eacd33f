/* sw_model_backward — the backward pass over the activations the last forward kept: fused
 * cross-entropy → final norm → the layers in reverse → embedding. Parameter gradients are
 * accumulated (+=); frozen parameters (LoRA training) get none and their weight products are
 * skipped. Temporaries come from a workspace allocated once per backward (struct sw_step g_*),
 * so scratch use does not grow with depth. With gradient checkpointing each layer's activations
 * are first recomputed from its saved input (recompute_layer).
 *
 * Per layer, with dout the gradient of the layer output [N, C]:
 *   d_act = dout·Wd → (d_gate, d_up) = swiglu'(…) → d_ln2 = d_gate·Wg + d_up·Wu
 *   d_h1 = dout + rmsnorm'(d_ln2)               d_att = d_h1·Wo
 *   (dq, dk, dv) = attention'(d_att) → rope⁻¹ → (qwen3) q/k-norm' → d_ln1 = dq·Wq + dk·Wk + dv·Wv
 *   dx = d_h1 + rmsnorm'(d_ln1) */
#include "sw_model_impl.h"

#include "sw_err.h"

#include <math.h>
#include <string.h>

#define NORM_W(var, p)                                                                             \
    const float *var = sw_model_norm_w(m, (p));                                                    \
    if (!var) return SW_ENOMEM

static float *grad_of(const struct sw_param *p) {
    return p && p->trainable ? p->grad.data : NULL;
}

int sw_model_layer_backward(struct sw_model *m, int l, const struct sw_layer_act *a,
                            const float *dout, float *dx) {
    struct sw_backend *be = m->be;
    const struct sw_layer *ly = &m->layers[l];
    struct sw_step *st = &m->step;
    int64_t N = st->N, C = m->C, F = m->F, Hq = m->Hq, Hk = m->Hk, D = m->D;
    const struct sw_linear *lin = ly->lin;
    const struct sw_lora_act *la = a->lora;

    /* MLP block (gemma2: through the post-feed-forward norm first). */
    const float *d_down = dout;
    if (ly->post_ff) {
        NORM_W(w_pf, ly->post_ff);
        SW_TRY(be->rmsnorm_bwd(be, st->g_ln, grad_of(ly->post_ff), dout, a->d_out, w_pf, a->d_rstd,
                               N, C, 0.0f));
        d_down = st->g_ln;
    }
    SW_TRY(sw_linear_backward(m, &lin[SW_LIN_DOWN], st->g_act, 0.0f, d_down, a->act, N,
                              &la[SW_LIN_DOWN]));
    if (m->gemma)
        SW_TRY(be->geglu_bwd(be, st->g_gate, st->g_up, st->g_act, a->gate, a->up, N * F));
    else
        SW_TRY(be->swiglu_bwd(be, st->g_gate, st->g_up, st->g_act, a->gate, a->up, N * F));
    SW_TRY(sw_linear_backward(m, &lin[SW_LIN_GATE], st->g_ln, 0.0f, st->g_gate, a->ln2, N,
                              &la[SW_LIN_GATE]));
    SW_TRY(sw_linear_backward(m, &lin[SW_LIN_UP], st->g_ln, 1.0f, st->g_up, a->ln2, N,
                              &la[SW_LIN_UP]));
    SW_TRY(be->copy(be, st->g_h1, dout, (size_t)(N * C) * sizeof(float)));
    NORM_W(w_ln2, ly->ln2);
    SW_TRY(be->rmsnorm_bwd(be, st->g_h1, grad_of(ly->ln2), st->g_ln, a->h1, w_ln2, a->ln2_rstd, N,
                           C, 1.0f));

    /* Attention block (gemma2: through the post-attention norm first). */
    const float *d_o = st->g_h1;
    if (ly->post_attn) {
        NORM_W(w_pa, ly->post_attn);
        SW_TRY(be->rmsnorm_bwd(be, st->g_ln, grad_of(ly->post_attn), st->g_h1, a->o_out, w_pa,
                               a->o_rstd, N, C, 0.0f));
        d_o = st->g_ln;
    }
    SW_TRY(sw_linear_backward(m, &lin[SW_LIN_O], st->g_att, 0.0f, d_o, a->att, N, &la[SW_LIN_O]));
    int64_t win;
    float cap, scale;
    SW_TRY(sw_model_attention_mode(m, l, st->max_len, &win, &cap, &scale));
    if (win || cap > 0)
        SW_TRY(be->attention_ext_bwd(be, st->g_q, st->g_k, st->g_v, st->g_att, a->q, a->k, a->v,
                                     a->att, a->lse, st->cu, st->kv_len, st->nseq, st->max_len, N,
                                     Hq, Hk, D, scale, win, cap));
    else
        SW_TRY(be->attention_bwd(be, st->g_q, st->g_k, st->g_v, st->g_att, a->q, a->k, a->v, a->att,
                                 a->lse, st->cu, st->kv_len, st->nseq, st->max_len, N, Hq, Hk, D,
                                 scale));
    SW_TRY(be->rope_bwd(be, st->g_q, st->pos, m->rope_cos, m->rope_sin, N, Hq, D, m->rope_P));
    SW_TRY(be->rope_bwd(be, st->g_k, st->pos, m->rope_cos, m->rope_sin, N, Hk, D, m->rope_P));
    float *dq = st->g_q, *dk = st->g_k;
    if (ly->q_norm) {
        SW_TRY(be->rmsnorm_bwd(be, st->g_qn, grad_of(ly->q_norm), st->g_q, a->q_pre,
                               ly->q_norm->value.data, a->q_rstd, N * Hq, D, 0.0f));
        SW_TRY(be->rmsnorm_bwd(be, st->g_kn, grad_of(ly->k_norm), st->g_k, a->k_pre,
                               ly->k_norm->value.data, a->k_rstd, N * Hk, D, 0.0f));
        dq = st->g_qn;
        dk = st->g_kn;
    }
    SW_TRY(sw_linear_backward(m, &lin[SW_LIN_Q], st->g_ln, 0.0f, dq, a->ln1, N, &la[SW_LIN_Q]));
    SW_TRY(sw_linear_backward(m, &lin[SW_LIN_K], st->g_ln, 1.0f, dk, a->ln1, N, &la[SW_LIN_K]));
    SW_TRY(
        sw_linear_backward(m, &lin[SW_LIN_V], st->g_ln, 1.0f, st->g_v, a->ln1, N, &la[SW_LIN_V]));
    SW_TRY(be->copy(be, dx, st->g_h1, (size_t)(N * C) * sizeof(float)));
    NORM_W(w_ln1, ly->ln1);
    return be->rmsnorm_bwd(be, dx, grad_of(ly->ln1), st->g_ln, a->x, w_ln1, a->ln1_rstd, N, C,
                           1.0f);
}

static int alloc_workspace(struct sw_model *m) {
    struct sw_step *st = &m->step;
    int64_t N = st->N, C = m->C, F = m->F, QD = m->Hq * m->D, KD = m->Hk * m->D;
    int64_t r = 1, wide = C > F ? C : F;
    if (QD > wide) wide = QD;
    for (int l = 0; l < m->L; l++)
        for (int i = 0; i < SW_LIN_COUNT; i++)
            if (m->layers[l].lin[i].r > r) r = m->layers[l].lin[i].r;
    float **bufs[] = {&st->g_res[0], &st->g_res[1], &st->g_ln, &st->g_h1,     &st->g_att,
                      &st->g_q,      &st->g_qn,     &st->g_k,  &st->g_kn,     &st->g_v,
                      &st->g_act,    &st->g_gate,   &st->g_up, &st->g_lora_t, &st->g_lora_x};
    const int64_t sizes[] = {N * C,  N * C,  N * C, N * C, N * QD, N * QD, N * QD,  N * KD,
                             N * KD, N * KD, N * F, N * F, N * F,  N * r,  N * wide};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        if (!(*bufs[i] = sw_model_scratch_f(m, sizes[i]))) return SW_ENOMEM;
    return 0;
}

/* Gradient checkpointing: rerun layer l's forward from its saved input into the shared
 * activation set. The output goes to f_tmp (the forward's own temporary, free during backward;
 * the add that writes it may alias its operand): it equals the saved input of layer l + 1, which
 * is not needed again. Skipped when the set still holds layer l (the last layer after forward). */
static int recompute_layer(struct sw_model *m, int l) {
    struct sw_step *st = &m->step;
    if (st->ckpt_layer == l) return 0;
    st->ckpt_layer = -1;
    st->ckpt_work.x = st->acts[l].x;
    SW_TRY(sw_model_layer_forward(m, l, &st->ckpt_work, st->f_tmp));
    st->ckpt_layer = l;
    return 0;
}

/* The backward of grad_scale · Σ_t w_t · loss_t, w_t = weights[t] (host [N]) or 1 (NULL). */
static int backward(struct sw_model *m, const float *weights, float grad_scale) {
    struct sw_backend *be = m->be;
    struct sw_step *st = &m->step;
    if (!st->have_loss)
        return sw_err_set(SW_ESTATE, "model: backward needs a forward with labels since the last "
                                     "backward");
    if (st->lora_off)
        return sw_err_set(SW_ESTATE, "model: backward after a forward with the adapters off (a "
                                     "reference pass has no gradients)");
    SW_TRY(sw_model_ensure_grads(m));
    SW_TRY(alloc_workspace(m));
    int64_t N = st->N, C = m->C;
    float *cur = st->g_res[0], *other = st->g_res[1];
    float *rs = NULL;
    if (weights) {
        if (!(rs = sw_model_scratch_f(m, N))) return SW_ENOMEM;
        SW_TRY(be->upload(be, rs, weights, (size_t)N * sizeof(float)));
    }

    if (m->cfg.final_softcap > 0)
        SW_TRY(be->ce_fused_cap_bwd(be, st->g_ln, grad_of(m->lm_head), st->final_out,
                                    m->lm_head->value.data, st->targets, st->lse_rows, rs, N, m->V,
                                    C, m->ce_chunk_rows, grad_scale, 0.0f,
                                    (float)m->cfg.final_softcap));
    else
        SW_TRY(be->ce_fused_bwd(be, st->g_ln, grad_of(m->lm_head), st->final_out,
                                m->lm_head->value.data, st->targets, st->lse_rows, rs, N, m->V, C,
                                m->ce_chunk_rows, grad_scale, 0.0f));
    NORM_W(w_norm, m->norm);
    SW_TRY(be->rmsnorm_bwd(be, cur, grad_of(m->norm), st->g_ln, st->final_in, w_norm,
                           st->final_rstd, N, C, 0.0f));
    for (int l = (int)m->L - 1; l >= 0; l--) {
        const struct sw_layer_act *a = &st->acts[l];
        if (st->ckpt) {
            SW_TRY(recompute_layer(m, l));
            a = &st->ckpt_work;
        }
        SW_TRY(sw_model_layer_backward(m, l, a, cur, other));
        float *t = cur;
        cur = other;
        other = t;
    }
    if (grad_of(m->embed)) {
        if (m->embed_scale != 1.0f) SW_TRY(be->scale(be, cur, N * C, m->embed_scale));
        SW_TRY(be->embedding_bwd(be, m->embed->grad.data, cur, st->ids, N, m->V, C));
    }
    st->have_loss = 0;
    return 0;
}

int sw_model_backward(struct sw_model *m, float grad_scale) {
    return backward(m, NULL, grad_scale);
}

int sw_model_backward_weighted(struct sw_model *m, const float *weights, float grad_scale) {
    if (!weights) return sw_err_set(SW_EINVAL, "model: weighted backward without weights");
    return backward(m, weights, grad_scale);
}
