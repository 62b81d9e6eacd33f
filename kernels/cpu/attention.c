/* CPU attention — causal, grouped-query, variable-length (packed) scaled dot-product attention
 * with a flash-style backward.
 *
 * Shapes: q[N,Hq,D], k/v[N,Hk,D], out[N,Hq,D], lse[N,Hq]; segments from cu_seqlens[nseq+1],
 * optional kv_len[nseq] (right padding); see struct sw_backend in sw_kernels.h for the masking
 * rule (query i sees keys j ≤ i, j < kv_len, inside its own segment).
 *
 * Work is split into (segment, head, block of SW_ATT_BLOCK rows) items run in parallel. Each
 * query row is handled alone: its scores (≤ one segment long) live in a per-thread buffer, so
 * memory is O(threads · T) and no T×T matrix is ever formed. The softmax is two-pass over that
 * buffer (max, then Σexp, the sum in double); lse = max + log Σexp is saved. Dot products use
 * 8 partial sums in a fixed order (vectorisable, deterministic).
 * Backward (deterministic, no atomics): pass 0 computes Δ = Σ_d dout·out per (row, head);
 * pass 1 gives dq row by row (scores recomputed from lse); pass 2 gives dk/dv key by key,
 * walking every query head of the group and every query row that sees the key, in order. */
#include "cpu_ops.h"

#include "sw_err.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define SW_ATT_BLOCK 32

struct att_item {
    int s, h;         /* segment; query head (fwd, dq) or kv head (dk/dv) */
    int64_t i0, i1;   /* rows inside the segment */
};

struct att_geom {
    const int32_t *cu, *kv_len;
    int nseq;
    int64_t maxlen;
};

static int att_check(const char *op, const int32_t *cu, const int32_t *kv_len, int nseq,
                     int64_t max_len, int64_t N, int64_t Hq, int64_t Hk, int64_t D,
                     struct att_geom *g) {
    if (nseq < 0 || !cu || cu[0] != 0 || cu[nseq] != N)
        return sw_err_set(SW_EINVAL, "%s: cu_seqlens must start at 0 and end at N = %lld",
                          op, (long long)N);
    if (Hq <= 0 || Hk <= 0 || Hq % Hk || D <= 0)
        return sw_err_set(SW_EINVAL, "%s: %lld query heads not a multiple of %lld kv heads "
                          "(head_dim %lld)", op, (long long)Hq, (long long)Hk, (long long)D);
    g->maxlen = 0;
    for (int s = 0; s < nseq; s++) {
        int64_t L = (int64_t)cu[s + 1] - cu[s];
        if (L < 0)
            return sw_err_set(SW_EINVAL, "%s: cu_seqlens decreases at segment %d", op, s);
        if (kv_len && (kv_len[s] < 0 || kv_len[s] > L))
            return sw_err_set(SW_EINVAL, "%s: kv_len %d of segment %d outside [0, %lld]", op,
                              (int)kv_len[s], s, (long long)L);
        if (L > g->maxlen) g->maxlen = L;
    }
    if (max_len > 0 && g->maxlen > max_len)
        return sw_err_set(SW_EINVAL, "%s: a segment of %lld tokens exceeds max_len %lld", op,
                          (long long)g->maxlen, (long long)max_len);
    g->cu = cu;
    g->kv_len = kv_len;
    g->nseq = nseq;
    return 0;
}

/* Items over (segment, head in [0,H), row blocks); *n receives the count. NULL on ENOMEM. */
static struct att_item *att_items(const struct att_geom *g, int64_t H, int64_t *n) {
    int64_t cnt = 0;
    for (int s = 0; s < g->nseq; s++) {
        int64_t L = (int64_t)g->cu[s + 1] - g->cu[s];
        cnt += H * ((L + SW_ATT_BLOCK - 1) / SW_ATT_BLOCK);
    }
    struct att_item *it = malloc((size_t)(cnt ? cnt : 1) * sizeof(*it));
    if (!it) return NULL;
    int64_t k = 0;
    for (int s = 0; s < g->nseq; s++) {
        int64_t L = (int64_t)g->cu[s + 1] - g->cu[s];
        for (int64_t h = 0; h < H; h++)
            for (int64_t i0 = 0; i0 < L; i0 += SW_ATT_BLOCK)
                it[k++] = (struct att_item){s, (int)h, i0,
                                            i0 + SW_ATT_BLOCK < L ? i0 + SW_ATT_BLOCK : L};
    }
    *n = cnt;
    return it;
}

/* Dot product with 8 interleaved partial sums combined in a fixed tree: vectorisable without
 * -ffast-math and still one fixed summation order (deterministic). */
static inline float dotf(const float *a, const float *b, int64_t D) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t d = 0;
    for (; d + 8 <= D; d += 8)
        for (int u = 0; u < 8; u++) s[u] += a[d + u] * b[d + u];
    float acc = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; d < D; d++) acc += a[d] * b[d];
    return acc;
}

/* y[D] += alpha · x[D] (float, vectorisable). */
static inline void axpyf(float *y, float alpha, const float *x, int64_t D) {
    for (int64_t d = 0; d < D; d++) y[d] += alpha * x[d];
}

static inline int64_t seg_kvlen(const struct att_geom *g, int s) {
    int64_t L = (int64_t)g->cu[s + 1] - g->cu[s];
    return g->kv_len ? g->kv_len[s] : L;
}

int sw_cpu_attention_fwd(struct sw_backend *be, float *out, float *lse, const float *q,
                         const float *k, const float *v, const int32_t *cu_seqlens,
                         const int32_t *kv_len, int nseq, int64_t max_len, int64_t N,
                         int64_t Hq, int64_t Hk, int64_t D, float scale) {
    (void)be;
    struct att_geom g;
    SW_TRY(att_check("attention_fwd", cu_seqlens, kv_len, nseq, max_len, N, Hq, Hk, D, &g));
    int64_t nitems;
    struct att_item *items = att_items(&g, Hq, &nitems);
    int nth = omp_get_max_threads();
    float *sc = malloc((size_t)nth * (size_t)(g.maxlen ? g.maxlen : 1) * sizeof(float));
    float *acc = malloc((size_t)nth * (size_t)D * sizeof(float));
    if (!items || !sc || !acc) {
        free(items), free(sc), free(acc);
        return sw_err_set(SW_ENOMEM, "attention_fwd: out of memory");
    }
    int64_t group = Hq / Hk;
    #pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
    for (int64_t t = 0; t < nitems; t++) {
        const struct att_item *it = &items[t];
        float *s_buf = sc + (size_t)omp_get_thread_num() * (size_t)(g.maxlen ? g.maxlen : 1);
        float *a = acc + (size_t)omp_get_thread_num() * (size_t)D;
        int64_t base = g.cu[it->s], kvl = seg_kvlen(&g, it->s), kh = it->h / group;
        for (int64_t i = it->i0; i < it->i1; i++) {
            int64_t r = base + i;
            const float *qv = q + (r * Hq + it->h) * D;
            float *o = out + (r * Hq + it->h) * D;
            if (kvl <= 0) { /* a fully padded row: nothing to attend to */
                memset(o, 0, (size_t)D * sizeof(float));
                lse[r * Hq + it->h] = 0.0f;
                continue;
            }
            int64_t nk = (i < kvl - 1 ? i : kvl - 1) + 1;
            float m = -INFINITY;
            for (int64_t j = 0; j < nk; j++) {
                s_buf[j] = dotf(qv, k + ((base + j) * Hk + kh) * D, D) * scale;
                if (s_buf[j] > m) m = s_buf[j];
            }
            double l = 0;
            for (int64_t d = 0; d < D; d++) a[d] = 0;
            for (int64_t j = 0; j < nk; j++) {
                float p = expf(s_buf[j] - m);
                l += p;
                axpyf(a, p, v + ((base + j) * Hk + kh) * D, D);
            }
            for (int64_t d = 0; d < D; d++) o[d] = (float)(a[d] / l);
            lse[r * Hq + it->h] = (float)(m + log(l));
        }
    }
    free(items), free(sc), free(acc);
    return 0;
}

int sw_cpu_attention_bwd(struct sw_backend *be, float *dq, float *dk, float *dv,
                         const float *dout, const float *q, const float *k, const float *v,
                         const float *out, const float *lse, const int32_t *cu_seqlens,
                         const int32_t *kv_len, int nseq, int64_t max_len, int64_t N,
                         int64_t Hq, int64_t Hk, int64_t D, float scale) {
    (void)be;
    struct att_geom g;
    SW_TRY(att_check("attention_bwd", cu_seqlens, kv_len, nseq, max_len, N, Hq, Hk, D, &g));
    int64_t nq, nk_items;
    struct att_item *qitems = att_items(&g, Hq, &nq);
    struct att_item *kitems = att_items(&g, Hk, &nk_items);
    int nth = omp_get_max_threads();
    float *delta = malloc((size_t)(N * Hq > 0 ? N * Hq : 1) * sizeof(float));
    float *acc = malloc((size_t)nth * 2 * (size_t)D * sizeof(float));
    if (!qitems || !kitems || !delta || !acc) {
        free(qitems), free(kitems), free(delta), free(acc);
        return sw_err_set(SW_ENOMEM, "attention_bwd: out of memory");
    }
    int64_t group = Hq / Hk;

    /* Pass 0: Δ[r,h] = dout·out, the softmax-Jacobian correction of every row. */
    #pragma omp parallel for schedule(static) num_threads(nth)
    for (int64_t rh = 0; rh < N * Hq; rh++) {
        double s = 0;
        for (int64_t d = 0; d < D; d++) s += (double)dout[rh * D + d] * out[rh * D + d];
        delta[rh] = (float)s;
    }

    /* Pass 1: dq_i = scale · Σ_j p_ij (dout_i·v_j − Δ_i) k_j. */
    #pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
    for (int64_t t = 0; t < nq; t++) {
        const struct att_item *it = &qitems[t];
        float *a = acc + (size_t)omp_get_thread_num() * 2 * (size_t)D;
        int64_t base = g.cu[it->s], kvl = seg_kvlen(&g, it->s), kh = it->h / group;
        for (int64_t i = it->i0; i < it->i1; i++) {
            int64_t r = base + i, rh = r * Hq + it->h;
            float *dqv = dq + rh * D;
            if (kvl <= 0) {
                memset(dqv, 0, (size_t)D * sizeof(float));
                continue;
            }
            const float *qv = q + rh * D, *go = dout + rh * D;
            int64_t nk = (i < kvl - 1 ? i : kvl - 1) + 1;
            for (int64_t d = 0; d < D; d++) a[d] = 0;
            for (int64_t j = 0; j < nk; j++) {
                const float *kv = k + ((base + j) * Hk + kh) * D;
                const float *vv = v + ((base + j) * Hk + kh) * D;
                float p = expf(dotf(qv, kv, D) * scale - lse[rh]);
                axpyf(a, p * (dotf(go, vv, D) - delta[rh]), kv, D);
            }
            for (int64_t d = 0; d < D; d++) dqv[d] = scale * a[d];
        }
    }

    /* Pass 2: for each key j, dv_j = Σ p_ij dout_i and dk_j = scale · Σ ds_ij q_i over the
     * query heads of its group and the rows i ≥ j of its segment. */
    #pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
    for (int64_t t = 0; t < nk_items; t++) {
        const struct att_item *it = &kitems[t];
        float *ak = acc + (size_t)omp_get_thread_num() * 2 * (size_t)D, *av = ak + D;
        int64_t base = g.cu[it->s], L = (int64_t)g.cu[it->s + 1] - base;
        int64_t kvl = seg_kvlen(&g, it->s), kh = it->h;
        for (int64_t j = it->i0; j < it->i1; j++) {
            int64_t rk = (base + j) * Hk + kh;
            float *dkv = dk + rk * D, *dvv = dv + rk * D;
            if (j >= kvl) { /* padding keys are never attended to */
                memset(dkv, 0, (size_t)D * sizeof(float));
                memset(dvv, 0, (size_t)D * sizeof(float));
                continue;
            }
            const float *kv = k + rk * D, *vv = v + rk * D;
            for (int64_t d = 0; d < D; d++) ak[d] = av[d] = 0;
            for (int64_t h = kh * group; h < (kh + 1) * group; h++) {
                for (int64_t i = j; i < L; i++) {
                    int64_t rh = (base + i) * Hq + h;
                    const float *qv = q + rh * D, *go = dout + rh * D;
                    float p = expf(dotf(qv, kv, D) * scale - lse[rh]);
                    axpyf(av, p, go, D);
                    axpyf(ak, p * (dotf(go, vv, D) - delta[rh]), qv, D);
                }
            }
            for (int64_t d = 0; d < D; d++) {
                dkv[d] = scale * ak[d];
                dvv[d] = av[d];
            }
        }
    }
    free(qitems), free(kitems), free(delta), free(acc);
    return 0;
}
