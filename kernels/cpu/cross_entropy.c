/* CPU cross-entropy — next-token loss over a vocabulary, fused with the LM head and chunked so
 * the [N, V] logits of a training batch never exist at once, plus the plain full-logits path.
 *
 * Shapes: h[N,C] final hidden states, w[V,C] LM head (the embedding when tied), targets[N]
 * int32 (SW_IGNORE_INDEX skips a row), loss[N] and lse[N] per row, dh[N,C], dw[V,C].
 * Only rows with a target are computed: they are gathered chunk_rows at a time into
 * hc[R,C], logits[R,V] = hc·wᵀ come from one sgemm, and each row's logsumexp is max + log Σ
 * exp (sw_expf, sums gathered in double). Ignored rows get loss 0 and lse 0. The backward
 * recomputes the chunk's logits, turns them into g = grad_scale·(softmax − onehot) in place, then
 * dh rows = g·w and dw += gᵀ·hc, chunk after chunk in order (deterministic). Optional per-row
 * weights row_scale[N] multiply each row's g (per-token loss weights). When G = softmax −
 * onehot of all rows fits SW_CPU_CE_CACHE_MAX, the forward stores it in the backend (struct
 * sw_cpu_ce_cache) and the matching backward uses it with alpha = grad_scale instead of recomputing
 * the logits: a quarter of the LM head's work saved; the last bits can differ from the recomputing
 * path (where the scale is multiplied in), but each path is deterministic. */
#include "cpu_ops.h"
#include "fastmath.h"

#include "sw_err.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int check_targets(const char *op, const int32_t *targets, int64_t N, int64_t V,
                         int64_t *nvalid) {
    int64_t n_ok = 0;
    for (int64_t n = 0; n < N; n++) {
        if (targets[n] == SW_IGNORE_INDEX) continue;
        if (targets[n] < 0 || targets[n] >= V)
            return sw_err_set(SW_ERANGE, "%s: target %d at row %lld outside vocabulary [0, %lld)",
                              op, (int)targets[n], (long long)n, (long long)V);
        n_ok++;
    }
    if (V <= 0 || V > INT_MAX || N > INT_MAX)
        return sw_err_set(SW_ERANGE,
                          "%s: %lld rows × %lld classes: need at least one class "
                          "and both within OpenBLAS's int range",
                          op, (long long)N, (long long)V);
    *nvalid = n_ok;
    return 0;
}

/* logsumexp of one row of V logits: max, then Σ exp(x − max) with sw_vexpf (fastmath.h), summed
 * in float over 256 columns at a time and in double across those blocks (a fixed order). */
static double row_lse(const float *x, int64_t V) {
    if (V <= 0) return -INFINITY;
    float m = x[0];
    for (int64_t v = 1; v < V; v++)
        m = x[v] > m ? x[v] : m;
    float tmp[256];
    double s = sw_vexpf(tmp, x, m, 1.0f, V < 256 ? V : 256); /* ≥ 1: holds exp(max − max) */
    for (int64_t v0 = 256; v0 < V; v0 += 256)
        s += sw_vexpf(tmp, x + v0, m, 1.0f, V - v0 < 256 ? V - v0 : 256);
    return m + log(s);
}

/* Chunk workspace: indices of valid rows, gathered hidden rows, logits. */
struct ce_ws {
    int64_t *idx, nvalid, R;
    float *hc, *logits, *dhc;
};

static int ce_ws_open(struct ce_ws *ws, const char *op, const int32_t *targets, int64_t N,
                      int64_t V, int64_t C, int64_t chunk_rows, int want_dh) {
    memset(ws, 0, sizeof(*ws));
    SW_TRY(check_targets(op, targets, N, V, &ws->nvalid));
    if (chunk_rows <= 0) chunk_rows = 256;
    ws->R = ws->nvalid < chunk_rows ? ws->nvalid : chunk_rows;
    size_t R = (size_t)(ws->R ? ws->R : 1);
    ws->idx = malloc((size_t)(ws->nvalid ? ws->nvalid : 1) * sizeof(int64_t));
    ws->hc = malloc(R * (size_t)C * sizeof(float));
    ws->logits = malloc(R * (size_t)V * sizeof(float));
    ws->dhc = want_dh ? malloc(R * (size_t)C * sizeof(float)) : NULL;
    if (!ws->idx || !ws->hc || !ws->logits || (want_dh && !ws->dhc)) {
        free(ws->idx), free(ws->hc), free(ws->logits), free(ws->dhc);
        return sw_err_set(SW_ENOMEM, "%s: out of memory for a %lld-row chunk of %lld logits", op,
                          (long long)R, (long long)V);
    }
    int64_t k = 0;
    for (int64_t n = 0; n < N; n++)
        if (targets[n] != SW_IGNORE_INDEX) ws->idx[k++] = n;
    return 0;
}

static void ce_ws_close(struct ce_ws *ws) {
    free(ws->idx), free(ws->hc), free(ws->logits), free(ws->dhc);
}

/* Gather rows idx[r0..r0+R) of h into hc and form their logits. */
static void ce_chunk_logits(struct ce_ws *ws, const float *h, const float *w, int64_t r0, int64_t R,
                            int64_t V, int64_t C) {
#pragma omp parallel for schedule(static) if (R * C > 65536)
    for (int64_t r = 0; r < R; r++)
        memcpy(ws->hc + r * C, h + ws->idx[r0 + r] * C, (size_t)C * sizeof(float));
    sw_cpu_sgemm(0, 1, R, V, C, 1.0f, ws->hc, C, w, C, 0.0f, ws->logits, V);
}

/* Make room in the cache for this forward's G (nvalid × V) and key copies; 1 when it caches. */
static int ce_cache_begin(struct sw_cpu_ce_cache *cc, int64_t nvalid, int64_t N, int64_t V) {
    if (!cc) return 0;
    cc->valid = 0;
    size_t need = (size_t)nvalid * (size_t)V;
    if (nvalid <= 0 || need > SW_CPU_CE_CACHE_MAX / sizeof(float)) return 0;
    if (need > cc->g_cap) {
        free(cc->g);
        cc->g = malloc(need * sizeof(float));
        cc->g_cap = cc->g ? need : 0;
    }
    if ((size_t)N > cc->n_cap) {
        free(cc->targets), free(cc->lse);
        cc->targets = malloc((size_t)N * sizeof(int32_t));
        cc->lse = malloc((size_t)N * sizeof(float));
        cc->n_cap = cc->targets && cc->lse ? (size_t)N : 0;
    }
    return cc->g && cc->n_cap >= (size_t)N && cc->g_cap >= need; /* no memory: just recompute */
}

/* Whether the cache holds G for exactly these backward inputs. */
static int ce_cache_hit(const struct sw_cpu_ce_cache *cc, const float *h, const float *w,
                        const int32_t *targets, const float *lse, int64_t N, int64_t V, int64_t C) {
    return cc && cc->valid && cc->h == h && cc->w == w && cc->N == N && cc->V == V && cc->C == C &&
           memcmp(cc->targets, targets, (size_t)N * sizeof(int32_t)) == 0 &&
           memcmp(cc->lse, lse, (size_t)N * sizeof(float)) == 0;
}

/* Soft-cap (cap > 0) n logits in place: Gemma 2's final_logit_softcapping. */
static void ce_softcap(float *x, int64_t n, float cap) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++)
        x[i] = cap * tanhf(x[i] / cap);
}

static int ce_fwd(struct sw_backend *be, const char *op, float *loss, float *lse, const float *h,
                  const float *w, const int32_t *targets, int64_t N, int64_t V, int64_t C,
                  int64_t chunk_rows, float cap) {
    struct ce_ws ws;
    SW_TRY(ce_ws_open(&ws, op, targets, N, V, C, chunk_rows, 0));
    struct sw_cpu_ce_cache *cc = cap > 0 ? NULL : sw_cpu_ce_cache_get(be); /* capped: recompute */
    int cache = ce_cache_begin(cc, ws.nvalid, N, V);
    memset(loss, 0, (size_t)N * sizeof(float));
    memset(lse, 0, (size_t)N * sizeof(float));
    for (int64_t r0 = 0; r0 < ws.nvalid; r0 += ws.R) {
        int64_t R = ws.nvalid - r0 < ws.R ? ws.nvalid - r0 : ws.R;
        ce_chunk_logits(&ws, h, w, r0, R, V, C);
        if (cap > 0) ce_softcap(ws.logits, R * V, cap);
#pragma omp parallel for schedule(static) if (R * V > 65536)
        for (int64_t r = 0; r < R; r++) {
            int64_t n = ws.idx[r0 + r];
            const float *x = ws.logits + r * V;
            double l = row_lse(x, V);
            lse[n] = (float)l;
            loss[n] = (float)(l - x[targets[n]]);
            if (cache) { /* G = softmax − onehot, as the backward would recompute it */
                float *g = cc->g + (r0 + r) * V;
                sw_vexpf(g, x, lse[n], 1.0f, V);
                g[targets[n]] -= 1.0f;
            }
        }
    }
    if (cache) {
        memcpy(cc->targets, targets, (size_t)N * sizeof(int32_t));
        memcpy(cc->lse, lse, (size_t)N * sizeof(float));
        cc->h = h, cc->w = w, cc->N = N, cc->V = V, cc->C = C;
        cc->valid = 1;
    }
    ce_ws_close(&ws);
    return 0;
}

int sw_cpu_ce_fused_fwd(struct sw_backend *be, float *loss, float *lse, const float *h,
                        const float *w, const int32_t *targets, int64_t N, int64_t V, int64_t C,
                        int64_t chunk_rows) {
    return ce_fwd(be, "ce_fused_fwd", loss, lse, h, w, targets, N, V, C, chunk_rows, 0.0f);
}

int sw_cpu_ce_fused_cap_fwd(struct sw_backend *be, float *loss, float *lse, const float *h,
                            const float *w, const int32_t *targets, int64_t N, int64_t V, int64_t C,
                            int64_t chunk_rows, float cap) {
    if (!(cap > 0)) return sw_err_set(SW_EINVAL, "ce_fused_cap_fwd: soft-cap %g", (double)cap);
    return ce_fwd(be, "ce_fused_cap_fwd", loss, lse, h, w, targets, N, V, C, chunk_rows, cap);
}

static int ce_bwd(struct sw_backend *be, const char *op, float *dh, float *dw, const float *h,
                  const float *w, const int32_t *targets, const float *lse, const float *row_scale,
                  int64_t N, int64_t V, int64_t C, int64_t chunk_rows, float grad_scale, float beta,
                  float cap) {
    struct ce_ws ws;
    SW_TRY(ce_ws_open(&ws, op, targets, N, V, C, chunk_rows, dh != NULL));
    const float *rs = row_scale; /* per-row weights (NULL: 1) */
    struct sw_cpu_ce_cache *cc = cap > 0 ? NULL : sw_cpu_ce_cache_get(be);
    int cached = ce_cache_hit(cc, h, w, targets, lse, N, V, C);
    if (dh) { /* rows without a target get no gradient: zero (or keep beta·dh) */
        for (int64_t n = 0; n < N; n++) {
            if (targets[n] != SW_IGNORE_INDEX) continue;
            float *d = dh + n * C;
            if (beta == 0.0f)
                memset(d, 0, (size_t)C * sizeof(float));
            else
                for (int64_t c = 0; c < C; c++)
                    d[c] *= beta;
        }
    }
    for (int64_t r0 = 0; r0 < ws.nvalid; r0 += ws.R) {
        int64_t R = ws.nvalid - r0 < ws.R ? ws.nvalid - r0 : ws.R;
        const float *g = ws.logits; /* g = alpha · G for this chunk's rows */
        float alpha = 1.0f;
        if (cached) { /* G from the forward: only the hidden rows need gathering. Row weights
                       * go onto the gathered hidden rows (dw = Gᵀ·diag(rs)·hc) and onto the dh
                       * rows below, so the cached G is never modified. */
            for (int64_t r = 0; r < R; r++) {
                const float *src = h + ws.idx[r0 + r] * C;
                float *dst = ws.hc + r * C;
                if (!rs) {
                    memcpy(dst, src, (size_t)C * sizeof(float));
                    continue;
                }
                float k = rs[ws.idx[r0 + r]];
                for (int64_t c = 0; c < C; c++)
                    dst[c] = k * src[c];
            }
            g = cc->g + r0 * V;
            alpha = grad_scale;
        } else {
            ce_chunk_logits(&ws, h, w, r0, R, V, C);
#pragma omp parallel for schedule(static) if (R * V > 65536)
            for (int64_t r = 0; r < R; r++) {
                int64_t n = ws.idx[r0 + r];
                float *x = ws.logits + r * V;
                float l = lse[n], sc = rs ? grad_scale * rs[n] : grad_scale;
                if (cap > 0) { /* through x' = cap·tanh(x/cap): g · (1 − tanh²) */
                    for (int64_t v = 0; v < V; v++) {
                        float t = tanhf(x[v] / cap);
                        float g = sc * expf(cap * t - l) - (v == targets[n] ? sc : 0.0f);
                        x[v] = g * (1.0f - t * t);
                    }
                    continue;
                }
                sw_vexpf(x, x, l, sc, V);
                x[targets[n]] -= sc;
            }
        }
        if (dh) {
            sw_cpu_sgemm(0, 0, R, C, V, alpha, g, V, w, C, 0.0f, ws.dhc, C);
#pragma omp parallel for schedule(static) if (R * C > 65536)
            for (int64_t r = 0; r < R; r++) {
                float *d = dh + ws.idx[r0 + r] * C;
                const float *s = ws.dhc + r * C;
                float k = cached && rs ? rs[ws.idx[r0 + r]] : 1.0f;
                if (beta == 0.0f && k == 1.0f)
                    memcpy(d, s, (size_t)C * sizeof(float));
                else if (beta == 0.0f) /* never read dh: it may hold garbage */
                    for (int64_t c = 0; c < C; c++)
                        d[c] = k * s[c];
                else
                    for (int64_t c = 0; c < C; c++)
                        d[c] = beta * d[c] + k * s[c];
            }
        }
        if (dw) sw_cpu_sgemm(1, 0, V, C, R, alpha, g, V, ws.hc, C, 1.0f, dw, C);
    }
    ce_ws_close(&ws);
    return 0;
}

int sw_cpu_ce_fused_bwd(struct sw_backend *be, float *dh, float *dw, const float *h, const float *w,
                        const int32_t *targets, const float *lse, const float *row_scale, int64_t N,
                        int64_t V, int64_t C, int64_t chunk_rows, float grad_scale, float beta) {
    return ce_bwd(be, "ce_fused_bwd", dh, dw, h, w, targets, lse, row_scale, N, V, C, chunk_rows,
                  grad_scale, beta, 0.0f);
}

int sw_cpu_ce_fused_cap_bwd(struct sw_backend *be, float *dh, float *dw, const float *h,
                            const float *w, const int32_t *targets, const float *lse,
                            const float *row_scale, int64_t N, int64_t V, int64_t C,
                            int64_t chunk_rows, float grad_scale, float beta, float cap) {
    if (!(cap > 0)) return sw_err_set(SW_EINVAL, "ce_fused_cap_bwd: soft-cap %g", (double)cap);
    return ce_bwd(be, "ce_fused_cap_bwd", dh, dw, h, w, targets, lse, row_scale, N, V, C,
                  chunk_rows, grad_scale, beta, cap);
}

int sw_cpu_ce_logits_fwd(struct sw_backend *be, float *loss, float *lse, const float *logits,
                         const int32_t *targets, int64_t N, int64_t V) {
    (void)be;
    int64_t nvalid;
    SW_TRY(check_targets("ce_logits_fwd", targets, N, V, &nvalid));
#pragma omp parallel for schedule(static) if (N * V > 65536)
    for (int64_t n = 0; n < N; n++) {
        const float *x = logits + n * V;
        double l = row_lse(x, V);
        lse[n] = (float)l;
        loss[n] = targets[n] == SW_IGNORE_INDEX ? 0.0f : (float)(l - x[targets[n]]);
    }
    return 0;
}
