/* sw_model_infer — inference forward over a paged KV cache, with per-sequence LoRA adapters
 * (see sw_model_infer.h). Per layer, for the step's N new tokens (C hidden, Hq/Hk heads of D,
 * F intermediate), in one reused set of scratch buffers:
 *   ln = rmsnorm(x)   q, k, v = ln·W{q,k,v}ᵀ (+ bias) (+ s·(ln·Aᵀ)·Bᵀ for each adapter's rows)
 *   (qwen3) per-head q/k RMSNorm          rope(q), rope(k) at pos
 *   K/V cache[slot_mapping] = k, v        att = paged_attention(q, cache, block tables)
 *   x += att·Woᵀ                          x += down(silu(gate(rmsnorm(x))) · up(rmsnorm(x)))
 * then the rows whose logits are wanted are gathered (embedding_fwd over the hidden states as a
 * table), normalised and multiplied by the LM head: the [N, vocab] product is never formed.
 *
 * LoRA: the batch arrives ordered by adapter, so the rows of one adapter are one contiguous slab
 * and its branch is two matmuls over the slab ("grouped by adapter"). Without adapters in the
 * batch the linear layers are the base matmuls alone. */
#include "sw_model_infer.h"

#include "sw_model_impl.h"

#include "sw_dtype.h"
#include "sw_err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- KV cache storage ---------------------------------------------------------------------- */

size_t sw_kv_cache_block_bytes(const struct sw_model_config *c, int64_t block_size) {
    return (size_t)c->num_hidden_layers * 2 * (size_t)block_size * (size_t)c->num_key_value_heads *
           (size_t)c->head_dim * sizeof(float);
}

int sw_kv_cache_init(struct sw_kv_cache *kv, struct sw_backend *be, const struct sw_model_config *c,
                     int64_t num_blocks, int64_t block_size) {
    memset(kv, 0, sizeof(*kv));
    if (num_blocks < 1 || block_size < 1 || num_blocks * block_size > INT32_MAX)
        return sw_err_set(SW_EINVAL,
                          "kv cache: need 1 <= blocks · block_size < 2^31 (%lld blocks "
                          "of %lld)",
                          (long long)num_blocks, (long long)block_size);
    kv->num_blocks = num_blocks;
    kv->block_size = block_size;
    kv->L = c->num_hidden_layers;
    kv->Hk = c->num_key_value_heads;
    kv->D = c->head_dim;
    size_t bytes = sw_kv_cache_block_bytes(c, block_size) * (size_t)num_blocks;
    kv->data = be->alloc(be, bytes);
    if (!kv->data)
        return sw_err_wrap(SW_ENOMEM, "kv cache: %lld blocks of %lld tokens (%.1f MiB)",
                           (long long)num_blocks, (long long)block_size, bytes / 1048576.0);
    return 0;
}

void sw_kv_cache_release(struct sw_kv_cache *kv, struct sw_backend *be) {
    if (!kv) return;
    if (kv->data) be->free(be, kv->data);
    memset(kv, 0, sizeof(*kv));
}

static size_t kv_layer_floats(const struct sw_kv_cache *kv) {
    return (size_t)kv->num_blocks * (size_t)kv->block_size * (size_t)kv->Hk * (size_t)kv->D;
}

float *sw_kv_cache_k(const struct sw_kv_cache *kv, int64_t l) {
    return kv->data + (size_t)(2 * l) * kv_layer_floats(kv);
}

float *sw_kv_cache_v(const struct sw_kv_cache *kv, int64_t l) {
    return kv->data + (size_t)(2 * l + 1) * kv_layer_floats(kv);
}

int sw_kv_cache_copy_block(struct sw_kv_cache *kv, struct sw_backend *be, int32_t dst,
                           int32_t src) {
    if (dst < 0 || src < 0 || dst >= kv->num_blocks || src >= kv->num_blocks)
        return sw_err_set(SW_ERANGE, "kv cache: copy of block %d to %d outside [0, %lld)", (int)src,
                          (int)dst, (long long)kv->num_blocks);
    size_t blk = (size_t)kv->block_size * (size_t)kv->Hk * (size_t)kv->D;
    for (int64_t i = 0; i < 2 * kv->L; i++) {
        float *base = kv->data + (size_t)i * kv_layer_floats(kv);
        SW_TRY(
            be->copy(be, base + (size_t)dst * blk, base + (size_t)src * blk, blk * sizeof(float)));
    }
    return 0;
}

/* ---- LoRA adapters ------------------------------------------------------------------------- */

struct sw_lora_lin {
    float *a, *b; /* [r, in], [out, r] in backend memory; NULL: module not adapted */
    int64_t r;
    float scale;
};

struct sw_lora_weights {
    struct sw_backend *be;
    int64_t L;
    struct sw_lora_lin *lin; /* [L · SW_LIN_COUNT] */
    size_t bytes;
};

void sw_lora_weights_free(struct sw_lora_weights *w) {
    if (!w) return;
    for (int64_t i = 0; w->lin && i < w->L * SW_LIN_COUNT; i++) {
        if (w->lin[i].a) w->be->free(w->be, w->lin[i].a);
        if (w->lin[i].b) w->be->free(w->be, w->lin[i].b);
    }
    free(w->lin);
    free(w);
}

size_t sw_lora_weights_bytes(const struct sw_lora_weights *w) {
    return w ? w->bytes : 0;
}

/* A float tensor of the adapter file into new backend memory. */
static float *upload_entry(struct sw_backend *be, const struct sw_st_entry *e, const char *dir,
                           int *rc) {
    size_t n = (size_t)(e->shape[0] * e->shape[1]);
    float *h = malloc(n * sizeof(float));
    float *d = be->alloc(be, n * sizeof(float));
    *rc = 0;
    if (!h || !d)
        *rc = sw_err_set(SW_ENOMEM, "%s: out of memory for '%s'", dir, e->name);
    else if ((*rc = sw_dtype_convert(SW_DTYPE_F32, h, e->dtype, e->data, n)) < 0)
        sw_err_set(*rc, "%s: cannot convert '%s' from %s", dir, e->name, sw_dtype_name(e->dtype));
    else
        *rc = be->upload(be, d, h, n * sizeof(float));
    free(h);
    if (*rc < 0 && d) be->free(be, d), d = NULL;
    return d;
}

int sw_lora_weights_load(struct sw_model *m, const struct sw_adapter *a,
                         struct sw_lora_weights **out) {
    *out = NULL;
    SW_TRY(sw_adapter_check(a, &m->cfg));
    struct sw_lora_weights *w = calloc(1, sizeof(*w));
    if (w) w->lin = calloc((size_t)(m->L * SW_LIN_COUNT), sizeof(*w->lin));
    if (!w || !w->lin) {
        free(w);
        return sw_err_set(SW_ENOMEM, "%s: out of memory", a->dir);
    }
    w->be = m->be;
    w->L = m->L;
    int rc = 0;
    for (int j = 0; j < a->n_modules && rc == 0; j++) {
        const struct sw_adapter_module *mod = &a->modules[j];
        /* enum sw_adapter_kind and enum sw_lin are both HF's module order */
        struct sw_lora_lin *ll = &w->lin[mod->layer * SW_LIN_COUNT + (int)mod->kind];
        ll->r = mod->a->shape[0];
        ll->scale = (float)a->scale;
        ll->a = upload_entry(m->be, mod->a, a->dir, &rc);
        if (rc == 0) ll->b = upload_entry(m->be, mod->b, a->dir, &rc);
        w->bytes +=
            (size_t)(mod->a->shape[0] * mod->a->shape[1] + mod->b->shape[0] * mod->b->shape[1]) *
            sizeof(float);
    }
    if (rc < 0) {
        sw_lora_weights_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

/* The widest LoRA rank a step needs: the requests' adapters and the model's own (a training
 * model with LoRA built in, generating its rollouts: its adapter applies to every row unless
 * sw_model_set_lora_enabled switched it off). */
static int64_t lora_max_r(const struct sw_model *m, const struct sw_infer_batch *b, int64_t L) {
    int64_t r = 0;
    for (int64_t l = 0; m->has_lora && !m->lora_off && l < L; l++)
        for (int i = 0; i < SW_LIN_COUNT; i++)
            if (m->layers[l].lin[i].lora_a && m->layers[l].lin[i].r > r) r = m->layers[l].lin[i].r;
    for (int s = 0; b->lora && s < b->nseq; s++) {
        if (!b->lora[s]) continue;
        for (int64_t i = 0; i < L * SW_LIN_COUNT; i++)
            if (b->lora[s]->lin[i].r > r) r = b->lora[s]->lin[i].r;
    }
    return r;
}

/* ---- the forward --------------------------------------------------------------------------- */

/* The step's device buffers (scratch). */
struct infer_bufs {
    int32_t *ids, *pos, *cu, *lens, *bt, *slots, *rows; /* device copies of the batch */
    float *x, *ln, *rstd, *q, *k, *v, *qp, *kp, *att, *tmp, *gate, *up, *act, *lora_t;
    int64_t max_q, max_ctx;
};

/* y [N, out] = x [N, in]·Wᵀ (+ b), plus each adapter's branch over its sequences' rows. */
static int linear(struct sw_model *m, const struct sw_infer_batch *b, struct infer_bufs *bf,
                  int64_t l, int site, float *y, const float *x) {
    struct sw_backend *be = m->be;
    const struct sw_linear *lin = &m->layers[l].lin[site];
    SW_TRY(sw_linear_base_forward(m, lin, y, x, b->N));
    if (lin->lora_a && !m->lora_off) { /* the model's own adapter (no dropout: inference) */
        SW_TRY(be->matmul_fwd(be, bf->lora_t, x, lin->lora_a->value.data, NULL, b->N, lin->r,
                              lin->in, 1.0f, 0.0f));
        SW_TRY(be->matmul_fwd(be, y, bf->lora_t, lin->lora_b->value.data, NULL, b->N, lin->out,
                              lin->r, lin->lora_scale, 1.0f));
    }
    if (!b->lora) return 0;
    for (int s0 = 0, s1; s0 < b->nseq; s0 = s1) {
        const struct sw_lora_weights *w = b->lora[s0];
        for (s1 = s0 + 1; s1 < b->nseq && b->lora[s1] == w; s1++) {
        }
        if (!w) continue;
        const struct sw_lora_lin *ll = &w->lin[l * SW_LIN_COUNT + site];
        int64_t r0 = b->cu_q[s0], rows = (int64_t)b->cu_q[s1] - r0;
        if (!ll->a || rows == 0) continue;
        SW_TRY(be->matmul_fwd(be, bf->lora_t, x + r0 * lin->in, ll->a, NULL, rows, ll->r, lin->in,
                              1.0f, 0.0f));
        SW_TRY(be->matmul_fwd(be, y + r0 * lin->out, bf->lora_t, ll->b, NULL, rows, lin->out, ll->r,
                              ll->scale, 1.0f));
    }
    return 0;
}

static int layer(struct sw_model *m, struct sw_kv_cache *kv, const struct sw_infer_batch *b,
                 struct infer_bufs *bf, int64_t l) {
    struct sw_backend *be = m->be;
    const struct sw_layer *ly = &m->layers[l];
    int64_t N = b->N, C = m->C, F = m->F, Hq = m->Hq, Hk = m->Hk, D = m->D;
    float eps = (float)m->cfg.rms_norm_eps;
    const float *w1 = sw_model_norm_w(m, ly->ln1), *w2 = sw_model_norm_w(m, ly->ln2);
    const float *wpa = ly->post_attn ? sw_model_norm_w(m, ly->post_attn) : NULL;
    const float *wpf = ly->post_ff ? sw_model_norm_w(m, ly->post_ff) : NULL;
    if (!w1 || !w2 || (ly->post_attn && !wpa) || (ly->post_ff && !wpf)) return SW_ENOMEM;
    SW_TRY(be->rmsnorm_fwd(be, bf->ln, bf->rstd, bf->x, w1, N, C, eps));
    float *qo = ly->q_norm ? bf->qp : bf->q, *ko = ly->q_norm ? bf->kp : bf->k;
    SW_TRY(linear(m, b, bf, l, SW_LIN_Q, qo, bf->ln));
    SW_TRY(linear(m, b, bf, l, SW_LIN_K, ko, bf->ln));
    SW_TRY(linear(m, b, bf, l, SW_LIN_V, bf->v, bf->ln));
    if (ly->q_norm) {
        SW_TRY(
            be->rmsnorm_fwd(be, bf->q, bf->rstd, bf->qp, ly->q_norm->value.data, N * Hq, D, eps));
        SW_TRY(
            be->rmsnorm_fwd(be, bf->k, bf->rstd, bf->kp, ly->k_norm->value.data, N * Hk, D, eps));
    }
    SW_TRY(be->rope_fwd(be, bf->q, bf->pos, m->rope_cos, m->rope_sin, N, Hq, D, m->rope_P));
    SW_TRY(be->rope_fwd(be, bf->k, bf->pos, m->rope_cos, m->rope_sin, N, Hk, D, m->rope_P));
    float *kc = sw_kv_cache_k(kv, l), *vc = sw_kv_cache_v(kv, l);
    SW_TRY(be->kv_cache_write(be, kc, vc, bf->k, bf->v, bf->slots, N, Hk, D,
                              kv->num_blocks * kv->block_size));
    int64_t win;
    float cap, scale;
    SW_TRY(sw_model_attention_mode(m, (int)l, bf->max_ctx, &win, &cap, &scale));
    if (win || cap > 0) { /* sliding window / soft-cap: the whole cache is kept, windows read */
        if (!be->paged_attention_ext_fwd)
            return sw_err_set(SW_EUNSUPPORTED,
                              "infer: the %s backend has no sliding-window / soft-capped paged "
                              "attention yet (%s)",
                              be->name, m->cfg.model_type);
        SW_TRY(be->paged_attention_ext_fwd(be, bf->att, bf->q, kc, vc, bf->bt, b->max_blocks,
                                           bf->cu, bf->lens, b->nseq, bf->max_q, bf->max_ctx, N, Hq,
                                           Hk, D, kv->block_size, kv->num_blocks, scale, win, cap));
    } else {
        SW_TRY(be->paged_attention_fwd(be, bf->att, bf->q, kc, vc, bf->bt, b->max_blocks, bf->cu,
                                       bf->lens, b->nseq, bf->max_q, bf->max_ctx, N, Hq, Hk, D,
                                       kv->block_size, kv->num_blocks, scale));
    }
    SW_TRY(linear(m, b, bf, l, SW_LIN_O, bf->tmp, bf->att));
    if (wpa) { /* gemma2: the attention output's own norm (into ln, free until the MLP norm) */
        SW_TRY(be->rmsnorm_fwd(be, bf->ln, bf->rstd, bf->tmp, wpa, N, C, eps));
        SW_TRY(be->copy(be, bf->tmp, bf->ln, (size_t)(N * C) * sizeof(float)));
    }
    SW_TRY(be->add(be, bf->x, bf->x, bf->tmp, N * C));
    SW_TRY(be->rmsnorm_fwd(be, bf->ln, bf->rstd, bf->x, w2, N, C, eps));
    SW_TRY(linear(m, b, bf, l, SW_LIN_GATE, bf->gate, bf->ln));
    SW_TRY(linear(m, b, bf, l, SW_LIN_UP, bf->up, bf->ln));
    SW_TRY(sw_model_mlp_act(m, bf->act, bf->gate, bf->up, N * F));
    SW_TRY(linear(m, b, bf, l, SW_LIN_DOWN, bf->tmp, bf->act));
    if (wpf) { /* gemma2: the MLP output's own norm */
        SW_TRY(be->rmsnorm_fwd(be, bf->ln, bf->rstd, bf->tmp, wpf, N, C, eps));
        return be->add(be, bf->x, bf->x, bf->ln, N * C);
    }
    return be->add(be, bf->x, bf->x, bf->tmp, N * C);
}

/* Host-side checks: shapes, ids, positions, rows; the kernels check slots and blocks. */
static int check_batch(const struct sw_model *m, const struct sw_kv_cache *kv,
                       const struct sw_infer_batch *b, int64_t *max_pos, int64_t *max_q,
                       int64_t *max_ctx) {
    if (b->nseq < 1 || b->N < 1 || b->N > INT32_MAX || b->max_blocks < 1 || !b->cu_q ||
        b->cu_q[0] != 0 || b->cu_q[b->nseq] != b->N)
        return sw_err_set(SW_EINVAL,
                          "infer: malformed batch (%d sequences, %lld tokens, "
                          "%lld blocks per table)",
                          b->nseq, (long long)b->N, (long long)b->max_blocks);
    if (kv->L != m->L || kv->Hk != m->Hk || kv->D != m->D)
        return sw_err_set(SW_EINVAL, "infer: the KV cache was made for another model");
    *max_pos = *max_q = *max_ctx = 0;
    for (int s = 0; s < b->nseq; s++) {
        int64_t ql = (int64_t)b->cu_q[s + 1] - b->cu_q[s];
        if (ql < 0 || b->seq_lens[s] < ql || b->seq_lens[s] > b->max_blocks * kv->block_size)
            return sw_err_set(SW_EINVAL,
                              "infer: sequence %d has %lld new tokens and a length of "
                              "%d (table of %lld blocks)",
                              s, (long long)ql, (int)b->seq_lens[s], (long long)b->max_blocks);
        if (ql > *max_q) *max_q = ql;
        if (b->seq_lens[s] > *max_ctx) *max_ctx = b->seq_lens[s];
    }
    for (int64_t n = 0; n < b->N; n++) {
        if (b->ids[n] < 0 || b->ids[n] >= m->V)
            return sw_err_set(SW_ERANGE,
                              "infer: token id %d (row %lld) outside the vocabulary "
                              "[0, %lld)",
                              (int)b->ids[n], (long long)n, (long long)m->V);
        if (b->pos[n] < 0)
            return sw_err_set(SW_ERANGE, "infer: negative position %d (row %lld)", (int)b->pos[n],
                              (long long)n);
        if (b->pos[n] > *max_pos) *max_pos = b->pos[n];
    }
    for (int64_t i = 0; i < b->n_logits; i++)
        if (b->logit_rows[i] < 0 || b->logit_rows[i] >= b->N)
            return sw_err_set(SW_ERANGE, "infer: logit row %d outside [0, %lld)",
                              (int)b->logit_rows[i], (long long)b->N);
    return 0;
}

#define ALLOC(ptr, n)                                                                              \
    do {                                                                                           \
        if (!((ptr) = sw_model_scratch_f(m, (n)))) return SW_ENOMEM;                               \
    } while (0)

/* Upload the batch's integer arrays with one copy (one host→device transfer per step). */
static int upload_ints(struct sw_model *m, const struct sw_infer_batch *b, struct infer_bufs *bf) {
    int64_t N = b->N, ns = b->nseq, nbt = ns * b->max_blocks, nl = b->n_logits;
    int64_t total = 3 * N + (ns + 1) + ns + nbt + nl;
    int32_t *h = malloc((size_t)total * sizeof(int32_t));
    int32_t *d = sw_model_scratch_i(m, total);
    if (!h || !d) {
        free(h);
        return h ? SW_ENOMEM : sw_err_set(SW_ENOMEM, "infer: out of memory");
    }
    int32_t *p = h;
    int32_t **dst[] = {&bf->ids, &bf->pos, &bf->slots, &bf->cu, &bf->lens, &bf->bt, &bf->rows};
    const int32_t *src[] = {b->ids,      b->pos,          b->slot_mapping, b->cu_q,
                            b->seq_lens, b->block_tables, b->logit_rows};
    int64_t len[] = {N, N, N, ns + 1, ns, nbt, nl};
    for (int i = 0; i < 7; i++) {
        *dst[i] = d + (p - h);
        if (len[i]) memcpy(p, src[i], (size_t)len[i] * sizeof(int32_t));
        p += len[i];
    }
    int rc = m->be->upload(m->be, d, h, (size_t)total * sizeof(int32_t));
    free(h);
    return rc;
}

int sw_model_infer(struct sw_model *m, struct sw_kv_cache *kv, const struct sw_infer_batch *b,
                   float *logits) {
    struct sw_backend *be = m->be;
    if (!be->kv_cache_write || !be->paged_attention_fwd)
        return sw_err_set(SW_EUNSUPPORTED, "infer: the %s backend has no paged attention",
                          be->name);
    int64_t max_pos = 0;
    struct infer_bufs bf;
    memset(&bf, 0, sizeof bf);
    SW_TRY(check_batch(m, kv, b, &max_pos, &bf.max_q, &bf.max_ctx));
    SW_TRY(sw_model_rope_reserve(m, max_pos + 1));
    /* The arena is shared with training steps: whatever a forward kept there is gone now. */
    be->scratch_reset(be);
    m->step.have_forward = m->step.have_loss = 0;
    SW_TRY(upload_ints(m, b, &bf));
    int64_t N = b->N, C = m->C, F = m->F, Hq = m->Hq, Hk = m->Hk, D = m->D;
    int64_t r = lora_max_r(m, b, m->L);
    ALLOC(bf.x, N * C);
    ALLOC(bf.ln, N * C);
    ALLOC(bf.rstd, N * (Hq > 1 ? Hq : 1));
    ALLOC(bf.q, N * Hq * D);
    ALLOC(bf.k, N * Hk * D);
    ALLOC(bf.v, N * Hk * D);
    if (m->layers[0].q_norm) {
        ALLOC(bf.qp, N * Hq * D);
        ALLOC(bf.kp, N * Hk * D);
    }
    ALLOC(bf.att, N * Hq * D);
    ALLOC(bf.tmp, N * C);
    ALLOC(bf.gate, N * F);
    ALLOC(bf.up, N * F);
    ALLOC(bf.act, N * F);
    if (r > 0) ALLOC(bf.lora_t, N * r);
    SW_TRY(be->embedding_fwd(be, bf.x, bf.ids, m->embed->value.data, N, m->V, C));
    if (m->embed_scale != 1.0f) SW_TRY(be->scale(be, bf.x, N * C, m->embed_scale));
    for (int64_t l = 0; l < m->L; l++)
        SW_TRY(layer(m, kv, b, &bf, l));
    int64_t nl = b->n_logits;
    if (nl == 0) return be->sync(be);
    float *sel, *seln, *lg;
    ALLOC(sel, nl * C);
    ALLOC(seln, nl * C);
    ALLOC(lg, nl * m->V);
    /* gather the wanted rows: the hidden states as an embedding table of N rows */
    SW_TRY(be->embedding_fwd(be, sel, bf.rows, bf.x, nl, N, C));
    const float *wn = sw_model_norm_w(m, m->norm);
    if (!wn) return SW_ENOMEM;
    SW_TRY(be->rmsnorm_fwd(be, seln, bf.rstd, sel, wn, nl, C, (float)m->cfg.rms_norm_eps));
    SW_TRY(be->matmul_fwd(be, lg, seln, m->lm_head->value.data, NULL, nl, m->V, C, 1.0f, 0.0f));
    if (m->cfg.final_softcap > 0)
        SW_TRY(be->softcap_fwd(be, lg, nl * m->V, (float)m->cfg.final_softcap));
    return be->download(be, logits, lg, (size_t)(nl * m->V) * sizeof(float));
}

size_t sw_model_infer_scratch_bytes(const struct sw_model *m, int64_t N, int64_t n_logits,
                                    int64_t max_r) {
    int64_t C = m->C, F = m->F, Hq = m->Hq, Hk = m->Hk, D = m->D;
    int64_t floats = 3 * N * C + N * (Hq > 1 ? Hq : 1) + 2 * (N * Hq * D + 2 * N * Hk * D) +
                     3 * N * F + N * max_r + n_logits * (2 * C + m->V);
    int64_t nbuf = 32;
    if (m->gemma) { /* the (1 + w) norm weights: four per layer and the final one */
        floats += (4 * m->L + 1) * C;
        nbuf += 4 * m->L + 1;
    }
    /* + the integer arrays (bounded by a few per token) and 256-byte rounding per buffer */
    return (size_t)floats * sizeof(float) + (size_t)(8 * N + 4096) * sizeof(int32_t) +
           (size_t)nbuf * 256;
}
