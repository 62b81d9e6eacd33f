/* CPU attention — causal, grouped-query, variable-length (packed) scaled dot-product attention
 * with a flash-style backward, blocked so that the arithmetic runs in sgemm.
 *
 * Shapes: q[N,Hq,D], k/v[N,Hk,D], out[N,Hq,D], lse[N,Hq]; segments from cu_seqlens[nseq+1],
 * optional kv_len[nseq] (right padding); see struct sw_backend in sw_kernels.h for the masking
 * rule (query i sees keys j ≤ i, j < kv_len, inside its own segment).
 *
 * Forward: work items are (segment, query head, block of SW_ATT_BQ query rows), in parallel.
 * An item forms the scores of its rows against the keys the block can see, S = scale·Q·Kᵀ
 * [rows, keys], with one single-threaded sgemm over the strided [N, H, D] layout; masks each
 * row (j > i or j ≥ kv_len), takes the softmax in place (max, sw_expf, Σ; vectorised) and
 * saves lse = max + log Σ; then out = P·V is a second sgemm. Memory: one [SW_ATT_BQ, segment] score
 * buffer per thread, never a T×T matrix.
 * Backward: Δ = Σ_d dout·out per (row, head) first; then items are (segment, kv head), each
 * walking its query blocks in order and, for each, the query heads of its group:
 *   P = exp(scale·Q·Kᵀ − lse) (masked), dP = dout·Vᵀ, dS = P ∘ (dP − Δ),
 *   dQ = scale·dS·K,  dK += scale·dSᵀ·Q,  dV += Pᵀ·dout   (five sgemms).
 * dK/dV of a kv head are written by one item only, summed in a fixed order (blocks, then
 * heads): deterministic and independent of the thread count, without atomics. */
#include "cpu_ops.h"
#include "fastmath.h"

#include "sw_err.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define SW_ATT_BQ 64

struct att_item {
    int s, h;       /* segment; query head (fwd) or kv head (bwd) */
    int64_t i0, i1; /* rows inside the segment */
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
        return sw_err_set(SW_EINVAL, "%s: cu_seqlens must start at 0 and end at N = %lld", op,
                          (long long)N);
    if (Hq <= 0 || Hk <= 0 || Hq % Hk || D <= 0)
        return sw_err_set(SW_EINVAL,
                          "%s: %lld query heads not a multiple of %lld kv heads "
                          "(head_dim %lld)",
                          op, (long long)Hq, (long long)Hk, (long long)D);
    g->maxlen = 0;
    for (int s = 0; s < nseq; s++) {
        int64_t L = (int64_t)cu[s + 1] - cu[s];
        if (L < 0) return sw_err_set(SW_EINVAL, "%s: cu_seqlens decreases at segment %d", op, s);
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

/* Items over (segment, head in [0,H), blocks of bq rows; bq 0 = the whole segment); *n receives
 * the count. NULL on ENOMEM. */
static struct att_item *att_items(const struct att_geom *g, int64_t H, int64_t bq, int64_t *n) {
    int64_t cnt = 0;
    for (int s = 0; s < g->nseq; s++) {
        int64_t L = (int64_t)g->cu[s + 1] - g->cu[s];
        cnt += H * (bq ? (L + bq - 1) / bq : 1);
    }
    struct att_item *it = malloc((size_t)(cnt ? cnt : 1) * sizeof(*it));
    if (!it) return NULL;
    int64_t k = 0;
    for (int s = 0; s < g->nseq; s++) {
        int64_t L = (int64_t)g->cu[s + 1] - g->cu[s];
        int64_t step = bq ? bq : (L > 0 ? L : 1);
        for (int64_t h = 0; h < H; h++)
            for (int64_t i0 = 0; i0 < L || (i0 == 0 && !bq); i0 += step)
                it[k++] = (struct att_item){s, (int)h, i0, i0 + step < L ? i0 + step : L};
    }
    *n = k;
    return it;
}

static inline int64_t seg_kvlen(const struct att_geom *g, int s) {
    int64_t L = (int64_t)g->cu[s + 1] - g->cu[s];
    return g->kv_len ? g->kv_len[s] : L;
}

/* Keys row i (inside its segment) sees: j < min(i + 1, kv_len). */
static inline int64_t visible(int64_t i, int64_t kvl) {
    return i + 1 < kvl ? i + 1 : kvl;
}

/* First key row i sees with a sliding window of w keys (0 = no window): j > i − w. */
static inline int64_t first_key(int64_t i, int64_t w) {
    return w > 0 && i - w + 1 > 0 ? i - w + 1 : 0;
}

/* x[j] ← cap·tanh(x[j] / cap), Gemma 2's attention logit soft-capping. */
static void softcap_row(float *x, int64_t n, float cap) {
    for (int64_t j = 0; j < n; j++)
        x[j] = cap * tanhf(x[j] / cap);
}

static int att_fwd(const char *op, float *out, float *lse, const float *q, const float *k,
                   const float *v, const int32_t *cu_seqlens, const int32_t *kv_len, int nseq,
                   int64_t max_len, int64_t N, int64_t Hq, int64_t Hk, int64_t D, float scale,
                   int64_t window, float softcap) {
    struct att_geom g;
    SW_TRY(att_check(op, cu_seqlens, kv_len, nseq, max_len, N, Hq, Hk, D, &g));
    if (window < 0 || softcap < 0)
        return sw_err_set(SW_EINVAL, "%s: negative window %lld or soft-cap %g", op,
                          (long long)window, (double)softcap);
    int64_t nitems;
    struct att_item *items = att_items(&g, Hq, SW_ATT_BQ, &nitems);
    int nth = omp_get_max_threads();
    size_t per = (size_t)SW_ATT_BQ * (size_t)(g.maxlen ? g.maxlen : 1);
    float *sc = malloc((size_t)nth * per * sizeof(float));
    if (!items || !sc) {
        free(items), free(sc);
        return sw_err_set(SW_ENOMEM, "attention_fwd: out of memory");
    }
    int64_t group = Hq / Hk, ldq = Hq * D, ldk = Hk * D;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
    for (int64_t t = 0; t < nitems; t++) {
        const struct att_item *it = &items[t];
        float *S = sc + (size_t)omp_get_thread_num() * per;
        int64_t base = g.cu[it->s], kvl = seg_kvlen(&g, it->s), kh = it->h / group;
        int64_t rows = it->i1 - it->i0, nk = it->i1 < kvl ? it->i1 : kvl;
        int64_t k0 = first_key(it->i0, window); /* keys before k0 are outside every row's window */
        float *o = out + ((base + it->i0) * Hq + it->h) * D;
        float *ls = lse + (base + it->i0) * Hq + it->h;
        if (nk <= k0) { /* a fully padded segment (or window): nothing to attend to */
            for (int64_t r = 0; r < rows; r++) {
                memset(o + r * ldq, 0, (size_t)D * sizeof(float));
                ls[r * Hq] = 0.0f;
            }
            continue;
        }
        /* S covers keys [k0, nk): column c is key k0 + c. */
        const float *kb = k + ((base + k0) * Hk + kh) * D, *vb = v + ((base + k0) * Hk + kh) * D;
        int64_t nc = nk - k0;
        sw_cpu_sgemm_1t(0, 1, rows, nc, D, scale, q + ((base + it->i0) * Hq + it->h) * D, ldq, kb,
                        ldk, 0.0f, S, nc);
        for (int64_t r = 0; r < rows; r++) {
            float *x = S + r * nc;
            int64_t vis = visible(it->i0 + r, kvl) - k0, lo = first_key(it->i0 + r, window) - k0;
            if (lo >= vis) { /* a padded row whose window holds no valid key */
                memset(x, 0, (size_t)nc * sizeof(float));
                ls[r * Hq] = 0.0f;
                continue;
            }
            if (softcap > 0) softcap_row(x + lo, vis - lo, softcap);
            float m = x[lo];
            for (int64_t j = lo + 1; j < vis; j++)
                m = x[j] > m ? x[j] : m;
            float l = sw_vexpf(x + lo, x + lo, m, 1.0f, vis - lo);
            float inv = 1.0f / l;
#pragma omp simd
            for (int64_t j = lo; j < vis; j++)
                x[j] *= inv;
            for (int64_t j = 0; j < lo; j++)
                x[j] = 0.0f;
            for (int64_t j = vis; j < nc; j++)
                x[j] = 0.0f;
            ls[r * Hq] = (float)(m + log((double)l));
        }
        sw_cpu_sgemm_1t(0, 0, rows, D, nc, 1.0f, S, nc, vb, ldk, 0.0f, o, ldq);
    }
    free(items), free(sc);
    return 0;
}

int sw_cpu_attention_fwd(struct sw_backend *be, float *out, float *lse, const float *q,
                         const float *k, const float *v, const int32_t *cu_seqlens,
                         const int32_t *kv_len, int nseq, int64_t max_len, int64_t N, int64_t Hq,
                         int64_t Hk, int64_t D, float scale) {
    (void)be;
    return att_fwd("attention_fwd", out, lse, q, k, v, cu_seqlens, kv_len, nseq, max_len, N, Hq, Hk,
                   D, scale, 0, 0.0f);
}

int sw_cpu_attention_ext_fwd(struct sw_backend *be, float *out, float *lse, const float *q,
                             const float *k, const float *v, const int32_t *cu_seqlens,
                             const int32_t *kv_len, int nseq, int64_t max_len, int64_t N,
                             int64_t Hq, int64_t Hk, int64_t D, float scale, int64_t window,
                             float softcap) {
    (void)be;
    return att_fwd("attention_ext_fwd", out, lse, q, k, v, cu_seqlens, kv_len, nseq, max_len, N, Hq,
                   Hk, D, scale, window, softcap);
}

static int att_bwd(const char *op, float *dq, float *dk, float *dv, const float *dout,
                   const float *q, const float *k, const float *v, const float *out,
                   const float *lse, const int32_t *cu_seqlens, const int32_t *kv_len, int nseq,
                   int64_t max_len, int64_t N, int64_t Hq, int64_t Hk, int64_t D, float scale,
                   int64_t window, float softcap) {
    struct att_geom g;
    SW_TRY(att_check(op, cu_seqlens, kv_len, nseq, max_len, N, Hq, Hk, D, &g));
    if (window < 0 || softcap < 0)
        return sw_err_set(SW_EINVAL, "%s: negative window %lld or soft-cap %g", op,
                          (long long)window, (double)softcap);
    int64_t nitems;
    struct att_item *items = att_items(&g, Hk, 0, &nitems);
    int nth = omp_get_max_threads();
    size_t per = (size_t)SW_ATT_BQ * (size_t)(g.maxlen ? g.maxlen : 1);
    float *delta = malloc((size_t)(N * Hq > 0 ? N * Hq : 1) * sizeof(float));
    float *buf = malloc((size_t)nth * 2 * per * sizeof(float));
    if (!items || !delta || !buf) {
        free(items), free(delta), free(buf);
        return sw_err_set(SW_ENOMEM, "attention_bwd: out of memory");
    }
    int64_t group = Hq / Hk, ldq = Hq * D, ldk = Hk * D;

/* Δ[r,h] = dout·out, the softmax-Jacobian correction of every row. */
#pragma omp parallel for schedule(static) num_threads(nth)
    for (int64_t rh = 0; rh < N * Hq; rh++) {
        double s = 0;
        for (int64_t d = 0; d < D; d++)
            s += (double)dout[rh * D + d] * out[rh * D + d];
        delta[rh] = (float)s;
    }

#pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
    for (int64_t t = 0; t < nitems; t++) {
        const struct att_item *it = &items[t];
        float *P = buf + (size_t)omp_get_thread_num() * 2 * per, *dS = P + per;
        int64_t base = g.cu[it->s], L = (int64_t)g.cu[it->s + 1] - base;
        int64_t kvl = seg_kvlen(&g, it->s), kh = it->h;
        float *dkb = dk + (base * Hk + kh) * D, *dvb = dv + (base * Hk + kh) * D;
        for (int64_t j = 0; j < L; j++) { /* keys past kv_len (padding) keep zero gradients */
            memset(dkb + j * ldk, 0, (size_t)D * sizeof(float));
            memset(dvb + j * ldk, 0, (size_t)D * sizeof(float));
        }
        for (int64_t i0 = 0; i0 < L; i0 += SW_ATT_BQ) {
            int64_t rows = L - i0 < SW_ATT_BQ ? L - i0 : SW_ATT_BQ;
            int64_t nk = i0 + rows < kvl ? i0 + rows : kvl, k0 = first_key(i0, window);
            int64_t nc = nk - k0; /* P and dS cover keys [k0, nk) */
            const float *kb = k + ((base + k0) * Hk + kh) * D,
                        *vb = v + ((base + k0) * Hk + kh) * D;
            float *dkk = dkb + k0 * ldk, *dvk = dvb + k0 * ldk;
            for (int64_t h = kh * group; h < (kh + 1) * group; h++) {
                int64_t r0 = (base + i0) * Hq + h;
                float *dqb = dq + r0 * D;
                if (nc <= 0) {
                    for (int64_t r = 0; r < rows; r++)
                        memset(dqb + r * ldq, 0, (size_t)D * sizeof(float));
                    continue;
                }
                const float *qb = q + r0 * D, *gob = dout + r0 * D;
                sw_cpu_sgemm_1t(0, 1, rows, nc, D, scale, qb, ldq, kb, ldk, 0.0f, P, nc);
                sw_cpu_sgemm_1t(0, 1, rows, nc, D, 1.0f, gob, ldq, vb, ldk, 0.0f, dS, nc);
                for (int64_t r = 0; r < rows; r++) {
                    float *p = P + r * nc, *ds = dS + r * nc;
                    float l = lse[r0 + r * Hq], dl = delta[r0 + r * Hq];
                    int64_t vis = visible(i0 + r, kvl) - k0, lo = first_key(i0 + r, window) - k0;
                    if (lo > vis) lo = vis;
                    for (int64_t j = 0; j < lo; j++)
                        p[j] = ds[j] = 0.0f;
                    if (softcap > 0) { /* s' = cap·tanh(s/cap): ds = ds' · (1 − tanh²) */
                        for (int64_t j = lo; j < vis; j++) {
                            float t = tanhf(p[j] / softcap);
                            p[j] = expf(softcap * t - l);
                            ds[j] = p[j] * (ds[j] - dl) * (1.0f - t * t);
                        }
                    } else {
                        sw_vexpf(p + lo, p + lo, l, 1.0f, vis - lo);
#pragma omp simd
                        for (int64_t j = lo; j < vis; j++)
                            ds[j] = p[j] * (ds[j] - dl);
                    }
                    for (int64_t j = vis; j < nc; j++)
                        p[j] = ds[j] = 0.0f;
                }
                sw_cpu_sgemm_1t(0, 0, rows, D, nc, scale, dS, nc, kb, ldk, 0.0f, dqb, ldq);
                sw_cpu_sgemm_1t(1, 0, nc, D, rows, scale, dS, nc, qb, ldq, 1.0f, dkk, ldk);
                sw_cpu_sgemm_1t(1, 0, nc, D, rows, 1.0f, P, nc, gob, ldq, 1.0f, dvk, ldk);
            }
        }
    }
    free(items), free(delta), free(buf);
    return 0;
}

int sw_cpu_attention_bwd(struct sw_backend *be, float *dq, float *dk, float *dv, const float *dout,
                         const float *q, const float *k, const float *v, const float *out,
                         const float *lse, const int32_t *cu_seqlens, const int32_t *kv_len,
                         int nseq, int64_t max_len, int64_t N, int64_t Hq, int64_t Hk, int64_t D,
                         float scale) {
    (void)be;
    return att_bwd("attention_bwd", dq, dk, dv, dout, q, k, v, out, lse, cu_seqlens, kv_len, nseq,
                   max_len, N, Hq, Hk, D, scale, 0, 0.0f);
}

int sw_cpu_attention_ext_bwd(struct sw_backend *be, float *dq, float *dk, float *dv,
                             const float *dout, const float *q, const float *k, const float *v,
                             const float *out, const float *lse, const int32_t *cu_seqlens,
                             const int32_t *kv_len, int nseq, int64_t max_len, int64_t N,
                             int64_t Hq, int64_t Hk, int64_t D, float scale, int64_t window,
                             float softcap) {
    (void)be;
    return att_bwd("attention_ext_bwd", dq, dk, dv, dout, q, k, v, out, lse, cu_seqlens, kv_len,
                   nseq, max_len, N, Hq, Hk, D, scale, window, softcap);
}
