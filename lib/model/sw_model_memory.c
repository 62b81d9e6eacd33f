/* sw_model_memory — how much of the backend's scratch arena a training forward + backward of a
 * batch shape takes, computed allocation by allocation in the order sw_model_forward.c and
 * sw_model_backward.c make them (batch indices, embedding output and layer outputs, the layer
 * activation sets — one per layer, or one shared set with gradient checkpointing — the final
 * norm and loss rows, then the backward workspace). sw-train prints it as the activation line of
 * its memory plan before the first step; test/unit/test_model.c checks it against the measured
 * scratch peak, so a change to what the passes allocate must change this file too. */
#include "sw_model_impl.h"

#include "sw_err.h"

/* The CUDA arena's granule (kernels/cuda/backend.cu rounds every scratch allocation to it). */
#define GRANULE 256

struct tally {
    size_t bytes;
};

static void take(struct tally *t, int64_t n, size_t elem) {
    size_t b = (size_t)(n > 0 ? n : 1) * elem;
    t->bytes += (b + GRANULE - 1) / GRANULE * GRANULE;
}

/* One layer activation set (sw_model_layer_forward + sw_linear_forward). */
static void layer_set(const struct sw_model *m, int l, int64_t N, struct tally *t) {
    const struct sw_layer *ly = &m->layers[l];
    int64_t C = m->C, F = m->F, QD = m->Hq * m->D, KD = m->Hk * m->D;
    take(t, N * C, 4);  /* ln1 */
    take(t, N, 4);      /* ln1_rstd */
    take(t, N * QD, 4); /* q */
    take(t, N * KD, 4); /* k */
    take(t, N * KD, 4); /* v */
    if (ly->q_norm) {
        take(t, N * QD, 4);
        take(t, N * KD, 4);
        take(t, N * m->Hq, 4);
        take(t, N * m->Hk, 4);
    }
    take(t, N * QD, 4);    /* att */
    take(t, N * m->Hq, 4); /* lse */
    take(t, N * C, 4);     /* h1 */
    take(t, N * C, 4);     /* ln2 */
    take(t, N, 4);         /* ln2_rstd */
    take(t, N * F, 4);     /* gate */
    take(t, N * F, 4);     /* up */
    take(t, N * F, 4);     /* act */
    if (ly->post_attn) {   /* gemma2: o_out, o_rstd, d_out, d_rstd */
        take(t, N * C, 4);
        take(t, N, 4);
        take(t, N * C, 4);
        take(t, N, 4);
    }
    for (int i = 0; i < SW_LIN_COUNT; i++) {
        const struct sw_linear *lin = &ly->lin[i];
        if (!lin->lora_a) continue;
        if (m->training && lin->lora_dropout > 0.0f) take(t, N * lin->in, 4); /* dropout(x) */
        take(t, N * lin->r, 4);                                               /* t = x·Aᵀ */
    }
}

size_t sw_model_scratch_estimate(const struct sw_model *m, int64_t N, int64_t nseq, int padded) {
    struct tally t = {0};
    int64_t C = m->C, F = m->F, QD = m->Hq * m->D, KD = m->Hk * m->D;
    /* step_begin: ids, pos, targets, cu_seqlens (+ kv_len). */
    take(&t, N, 4);
    take(&t, N, 4);
    take(&t, N, 4);
    take(&t, nseq + 1, 4);
    if (padded) take(&t, nseq, 4);
    /* forward: f_tmp, the embedding output, then per layer its output (the next input). */
    take(&t, N * C, 4);
    take(&t, N * C, 4);
    for (int l = 0; l < m->L; l++) {
        take(&t, N * C, 4);
        if (!m->grad_ckpt) layer_set(m, l, N, &t);
    }
    /* The shared set is allocated during layer 0's forward (after its output buffer). */
    if (m->grad_ckpt && m->L > 0) layer_set(m, 0, N, &t);
    take(&t, N * C, 4); /* final_out */
    take(&t, N, 4);     /* final_rstd */
    take(&t, N, 4);     /* loss_rows */
    take(&t, N, 4);     /* lse_rows */
    /* backward workspace (alloc_workspace in sw_model_backward.c). */
    int64_t r = 1, wide = C > F ? C : F;
    if (QD > wide) wide = QD;
    for (int l = 0; l < m->L; l++)
        for (int i = 0; i < SW_LIN_COUNT; i++)
            if (m->layers[l].lin[i].r > r) r = m->layers[l].lin[i].r;
    const int64_t ws[] = {N * C,  N * C,  N * C, N * C, N * QD, N * QD, N * QD,  N * KD,
                          N * KD, N * KD, N * F, N * F, N * F,  N * r,  N * wide};
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
        take(&t, ws[i], 4);
    /* gemma2: the (1 + w) norm weights, four per layer and the final one, made by the forward,
     * the backward and (checkpointing) each recomputation. */
    if (m->gemma) /* small: counted in bytes (the arena counts what is asked, not granules) */
        t.bytes += (size_t)(2 * (4 * m->L + 1) + (m->grad_ckpt ? 4 * (m->L - 1) : 0)) * (size_t)C *
                   sizeof(float);
    return t.bytes;
}

/* Scratch (per-step) buffers of the backend, for forward, backward and the linear layers. */
float *sw_model_scratch_f(struct sw_model *m, int64_t n) {
    float *p = m->be->scratch_alloc(m->be, (size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!p) sw_err_wrap(SW_ENOMEM, "model: activations (%lld floats)", (long long)n);
    return p;
}

int32_t *sw_model_scratch_i(struct sw_model *m, int64_t n) {
    int32_t *p = m->be->scratch_alloc(m->be, (size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    if (!p) sw_err_wrap(SW_ENOMEM, "model: batch indices (%lld ints)", (long long)n);
    return p;
}
