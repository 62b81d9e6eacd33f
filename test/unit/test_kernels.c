/* test_kernels — the CPU ops of kernels/sw_kernels.h against independent double-precision
 * references: each forward against a naive double implementation, each backward against
 * central finite differences of that double reference (L = Σ dout·f(x), step 1e-6), on odd sizes
 * (3×5×7 and the like). Also: packed attention equals running each sample alone (bit for bit),
 * padded attention keeps pad keys out, chunked fused cross-entropy equals the full-logits path,
 * dropout forward/backward agree, RoPE tables follow the formulas, and every op is
 * deterministic (two runs, and 1 vs 2 threads for the ops that promise it, bit-identical).
 * The backend's other members on the CPU: the optimizer ops equal lib/train/sw_optim's host
 * path bit for bit (adamw = sw_adamw_step over 3 steps with and without weight decay, sumsq's
 * total = sw_grad_norm², scale = sw_grad_clip's product), sumsq finds non-finite tensors and
 * does not depend on the thread count; memory and device figures, the scratch reservation, the
 * precision (fp32 only: other modes SW_EUNSUPPORTED, unknown ones SW_EINVAL), profiling
 * (SW_EUNSUPPORTED) and the options read from the SW_CUDA_* environment.
 *
 * Tolerance: rel(a, b) = max|a − b| / max(max|b|, 1e-6) over a tensor; float kernels vs double
 * references must be within 1e-4 (forward and gradient alike). */
#include "sw_kernels.h"

#include "sw_err.h"
#include "sw_optim.h"
#include "tap.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-4
#define FD_H 1e-6

static struct sw_backend *be;
static uint64_t rng_state = 0x1234567;

static double urand(void) { /* uniform [-1, 1) */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / (double)(1ull << 53) * 2.0 - 1.0;
}

static float *frand(int64_t n, double scale) {
    float *x = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(urand() * scale);
    return x;
}

static double *to_d(const float *x, int64_t n) {
    double *d = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

static float *fzero(int64_t n) {
    return calloc((size_t)n, sizeof(float));
}

static double rel_err_fd(const float *a, const double *b, int64_t n) {
    double md = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) {
        if (fabs(a[i] - b[i]) > md) md = fabs(a[i] - b[i]);
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return md / (mb > 1e-6 ? mb : 1e-6);
}

static double rel_err_ff(const float *a, const float *b, int64_t n) {
    double md = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) {
        if (fabs((double)a[i] - b[i]) > md) md = fabs((double)a[i] - b[i]);
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return md / (mb > 1e-6 ? mb : 1e-6);
}

#define CHECK_REL(err, ...)                                                                        \
    do {                                                                                           \
        double e_ = (err);                                                                         \
        if (!OK(e_ <= TOL, __VA_ARGS__)) DIAG("relative error %.3g > %.1g", e_, TOL);              \
    } while (0)

/* Finite differences: grad[i] = (L(x+h) − L(x−h)) / 2h for the double array x[n]. */
typedef double (*loss_fn)(void *ctx);
static double *fd_grad(double *x, int64_t n, loss_fn f, void *ctx) {
    double *g = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        double x0 = x[i];
        x[i] = x0 + FD_H;
        double lp = f(ctx);
        x[i] = x0 - FD_H;
        double lm = f(ctx);
        x[i] = x0;
        g[i] = (lp - lm) / (2 * FD_H);
    }
    return g;
}

/* ---------------------------------------------------------------- matmul */
struct mm_ctx {
    double *x, *w, *b, *dy;
    int64_t M, N, K;
};

static void mm_ref(const struct mm_ctx *c, double *y) {
    for (int64_t m = 0; m < c->M; m++)
        for (int64_t n = 0; n < c->N; n++) {
            double s = c->b[n];
            for (int64_t k = 0; k < c->K; k++)
                s += c->x[m * c->K + k] * c->w[n * c->K + k];
            y[m * c->N + n] = s;
        }
}

static double mm_loss(void *p) {
    struct mm_ctx *c = p;
    double y[64], L = 0;
    mm_ref(c, y);
    for (int64_t i = 0; i < c->M * c->N; i++)
        L += y[i] * c->dy[i];
    return L;
}

static void test_matmul(void) {
    int64_t M = 3, N = 5, K = 7;
    float *x = frand(M * K, 1), *w = frand(N * K, 1), *b = frand(N, 1), *dy = frand(M * N, 1);
    float *y = fzero(M * N), *dx = fzero(M * K), *dw = fzero(N * K), *db = fzero(N);
    struct mm_ctx c = {to_d(x, M * K), to_d(w, N * K), to_d(b, N), to_d(dy, M * N), M, N, K};
    double yr[64];
    mm_ref(&c, yr);
    OK(be->matmul_fwd(be, y, x, w, b, M, N, K, 1.0f, 0.0f) == 0, "matmul_fwd runs");
    CHECK_REL(rel_err_fd(y, yr, M * N), "matmul_fwd 3x5x7 with bias matches double reference");
    /* beta = 1 accumulates onto y, alpha scales the product only. */
    float *y2 = malloc((size_t)(M * N) * sizeof(float));
    memcpy(y2, y, (size_t)(M * N) * sizeof(float));
    be->matmul_fwd(be, y2, x, w, NULL, M, N, K, 0.5f, 1.0f);
    double *want = malloc((size_t)(M * N) * sizeof(double));
    /* y2 = y + 0.5·x·wᵀ = yr + 0.5·(yr − b) */
    for (int64_t i = 0; i < M * N; i++)
        want[i] = yr[i] + 0.5 * (yr[i] - c.b[i % N]);
    CHECK_REL(rel_err_fd(y2, want, M * N), "matmul_fwd alpha/beta accumulate");

    be->matmul_bwd_dx(be, dx, dy, w, M, N, K, 1.0f, 0.0f);
    be->matmul_bwd_dw(be, dw, dy, x, M, N, K, 1.0f, 0.0f);
    be->bias_bwd(be, db, dy, M, N, 0.0f);
    double *gx = fd_grad(c.x, M * K, mm_loss, &c), *gw = fd_grad(c.w, N * K, mm_loss, &c);
    double *gb = fd_grad(c.b, N, mm_loss, &c);
    CHECK_REL(rel_err_fd(dx, gx, M * K), "matmul dX matches finite differences");
    CHECK_REL(rel_err_fd(dw, gw, N * K), "matmul dW matches finite differences");
    CHECK_REL(rel_err_fd(db, gb, N), "matmul db matches finite differences");
    /* Accumulation (beta = 1): a second dw call doubles it. */
    be->matmul_bwd_dw(be, dw, dy, x, M, N, K, 1.0f, 1.0f);
    be->bias_bwd(be, db, dy, M, N, 1.0f);
    for (int64_t i = 0; i < N * K; i++)
        gw[i] *= 2;
    for (int64_t i = 0; i < N; i++)
        gb[i] *= 2;
    CHECK_REL(rel_err_fd(dw, gw, N * K), "matmul dW accumulates with beta = 1");
    CHECK_REL(rel_err_fd(db, gb, N), "bias grad accumulates with beta = 1");
    free(x), free(w), free(b), free(dy), free(y), free(y2), free(dx), free(dw), free(db);
    free(c.x), free(c.w), free(c.b), free(c.dy), free(gx), free(gw), free(gb), free(want);
}

/* ---------------------------------------------------------------- embedding */
struct emb_ctx {
    double *table, *dout;
    const int32_t *ids;
    int64_t N, C;
};

static double emb_loss(void *p) {
    struct emb_ctx *c = p;
    double L = 0;
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t k = 0; k < c->C; k++)
            L += c->table[c->ids[n] * c->C + k] * c->dout[n * c->C + k];
    return L;
}

static void test_embedding(void) {
    int64_t N = 7, V = 5, C = 3;
    int32_t ids[7] = {4, 0, 2, 4, 4, 1, 0};
    float *table = frand(V * C, 1), *dout = frand(N * C, 1), *out = fzero(N * C);
    float *dt = fzero(V * C);
    OK(be->embedding_fwd(be, out, ids, table, N, V, C) == 0, "embedding_fwd runs");
    int same = 1;
    for (int64_t n = 0; n < N; n++)
        same &= memcmp(out + n * C, table + ids[n] * C, (size_t)C * sizeof(float)) == 0;
    OK(same, "embedding_fwd copies the rows of the ids");
    be->embedding_bwd(be, dt, dout, ids, N, V, C);
    struct emb_ctx c = {to_d(table, V * C), to_d(dout, N * C), ids, N, C};
    double *g = fd_grad(c.table, V * C, emb_loss, &c);
    CHECK_REL(rel_err_fd(dt, g, V * C), "embedding backward (repeated ids) matches FD");
    int32_t bad[2] = {1, 5};
    OK(be->embedding_fwd(be, out, bad, table, 2, V, C) == SW_ERANGE &&
           strstr(sw_err_msg(), "row 1"),
       "an id outside the vocabulary is SW_ERANGE naming the row");
    free(table), free(dout), free(out), free(dt), free(c.table), free(c.dout), free(g);
}

/* ---------------------------------------------------------------- rmsnorm */
struct rn_ctx {
    double *x, *w, *dout;
    int64_t N, C;
    double eps;
};

static void rn_ref(const struct rn_ctx *c, double *y) {
    for (int64_t n = 0; n < c->N; n++) {
        double ss = 0;
        for (int64_t k = 0; k < c->C; k++)
            ss += c->x[n * c->C + k] * c->x[n * c->C + k];
        double r = 1 / sqrt(ss / c->C + c->eps);
        for (int64_t k = 0; k < c->C; k++)
            y[n * c->C + k] = c->w[k] * c->x[n * c->C + k] * r;
    }
}

static double rn_loss(void *p) {
    struct rn_ctx *c = p;
    double y[256], L = 0;
    rn_ref(c, y);
    for (int64_t i = 0; i < c->N * c->C; i++)
        L += y[i] * c->dout[i];
    return L;
}

static void test_rmsnorm(void) {
    int64_t N = 3, C = 7;
    float *x = frand(N * C, 2), *w = frand(C, 1), *dout = frand(N * C, 1);
    float *y = fzero(N * C), *rstd = fzero(N), *dx = fzero(N * C), *dw = fzero(C);
    struct rn_ctx c = {to_d(x, N * C), to_d(w, C), to_d(dout, N * C), N, C, 1e-5};
    double yr[64];
    rn_ref(&c, yr);
    be->rmsnorm_fwd(be, y, rstd, x, w, N, C, 1e-5f);
    CHECK_REL(rel_err_fd(y, yr, N * C), "rmsnorm_fwd 3x7 matches double reference");
    be->rmsnorm_bwd(be, dx, dw, dout, x, w, rstd, N, C, 0.0f);
    double *gx = fd_grad(c.x, N * C, rn_loss, &c), *gw = fd_grad(c.w, C, rn_loss, &c);
    CHECK_REL(rel_err_fd(dx, gx, N * C), "rmsnorm dX matches FD");
    CHECK_REL(rel_err_fd(dw, gw, C), "rmsnorm dW matches FD");
    /* beta = 1 adds onto an existing gradient; dw NULL leaves weights alone. */
    float *dx2 = malloc((size_t)(N * C) * sizeof(float));
    for (int64_t i = 0; i < N * C; i++)
        dx2[i] = 1.0f;
    be->rmsnorm_bwd(be, dx2, NULL, dout, x, w, rstd, N, C, 1.0f);
    for (int64_t i = 0; i < N * C; i++)
        gx[i] += 1.0;
    CHECK_REL(rel_err_fd(dx2, gx, N * C), "rmsnorm dX with beta = 1 accumulates");
    free(x), free(w), free(dout), free(y), free(rstd), free(dx), free(dw), free(dx2);
    free(c.x), free(c.w), free(c.dout), free(gx), free(gw);
}

/* ---------------------------------------------------------------- rope */
struct rope_ctx {
    double *x, *dout;
    const float *cs, *sn;
    const int32_t *pos;
    int64_t N, H, D;
};

static void rope_ref(const struct rope_ctx *c, double *y) {
    int64_t half = c->D / 2;
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t h = 0; h < c->H; h++)
            for (int64_t i = 0; i < half; i++) {
                const double *v = c->x + (n * c->H + h) * c->D;
                double co = c->cs[c->pos[n] * half + i], si = c->sn[c->pos[n] * half + i];
                y[(n * c->H + h) * c->D + i] = v[i] * co - v[i + half] * si;
                y[(n * c->H + h) * c->D + i + half] = v[i + half] * co + v[i] * si;
            }
}

static double rope_loss(void *p) {
    struct rope_ctx *c = p;
    double y[512], L = 0;
    rope_ref(c, y);
    for (int64_t i = 0; i < c->N * c->H * c->D; i++)
        L += y[i] * c->dout[i];
    return L;
}

static void test_rope(void) {
    int64_t N = 5, H = 3, D = 6, P = 9;
    int32_t pos[5] = {0, 3, 8, 1, 0};
    float cs[9 * 3], sn[9 * 3];
    struct sw_rope_params rp = {.theta = 10000.0};
    OK(sw_rope_tables(&rp, P, D, cs, sn) == 0, "rope tables (default)");
    double worst = 0;
    for (int64_t p = 0; p < P; p++)
        for (int64_t i = 0; i < D / 2; i++) {
            double a = p * pow(10000.0, -2.0 * i / D);
            worst = fmax(worst, fabs(cs[p * 3 + i] - cos(a)) + fabs(sn[p * 3 + i] - sin(a)));
        }
    OK(worst < 1e-5, "default tables equal cos/sin(pos·theta^(-2i/D)) (err %.2g)", worst);
    /* llama3: with D = 8, theta 1e4, original 64, lo 1, hi 4, factor 8, the four frequencies
     * fall in the three bands: kept, smoothed, divided, divided. */
    float c8[2 * 4], s8[2 * 4];
    struct sw_rope_params l3 = {.theta = 10000.0,
                                .type = 1,
                                .factor = 8,
                                .low_freq_factor = 1,
                                .high_freq_factor = 4,
                                .original_max_position = 64};
    sw_rope_tables(&l3, 2, 8, c8, s8);
    double inv[4] = {1.0, 0.1, 0.01, 0.001}, want[4];
    double wl1 = 2 * M_PI / inv[1], smooth = (64.0 / wl1 - 1) / (4 - 1);
    want[0] = inv[0];
    want[1] = (1 - smooth) * inv[1] / 8 + smooth * inv[1];
    want[2] = inv[2] / 8;
    want[3] = inv[3] / 8;
    worst = 0;
    for (int i = 0; i < 4; i++)
        worst = fmax(worst, fabs(asin(s8[4 + i]) - want[i]) / want[i]);
    OK(worst < 1e-5, "llama3 scaled frequencies (bands kept/smoothed/divided), err %.2g", worst);
    struct sw_rope_params lin = {.theta = 10000.0, .type = 2, .factor = 4};
    sw_rope_tables(&lin, 2, 8, c8, s8);
    OK(fabs(asin(s8[4 + 1]) - 0.1 / 4) < 1e-7, "linear scaling divides frequencies by factor");

    float *x = frand(N * H * D, 1), *dout = frand(N * H * D, 1);
    float *y = malloc((size_t)(N * H * D) * sizeof(float)),
          *dx = malloc((size_t)(N * H * D) * sizeof(float));
    memcpy(y, x, (size_t)(N * H * D) * sizeof(float));
    memcpy(dx, dout, (size_t)(N * H * D) * sizeof(float));
    struct rope_ctx c = {to_d(x, N * H * D), to_d(dout, N * H * D), cs, sn, pos, N, H, D};
    double yr[512];
    rope_ref(&c, yr);
    be->rope_fwd(be, y, pos, cs, sn, N, H, D, P);
    CHECK_REL(rel_err_fd(y, yr, N * H * D), "rope_fwd 5x3x6 matches double reference");
    be->rope_bwd(be, dx, pos, cs, sn, N, H, D, P);
    double *g = fd_grad(c.x, N * H * D, rope_loss, &c);
    CHECK_REL(rel_err_fd(dx, g, N * H * D), "rope backward matches FD");
    int32_t badpos[1] = {9};
    OK(be->rope_fwd(be, y, badpos, cs, sn, 1, H, D, P) == SW_ERANGE,
       "position past the table is SW_ERANGE");
    free(x), free(dout), free(y), free(dx), free(c.x), free(c.dout), free(g);
}

/* ---------------------------------------------------------------- attention */
struct att_ctx {
    double *q, *k, *v, *dout;
    const int32_t *cu, *kvl;
    int nseq;
    int64_t N, Hq, Hk, D;
    int64_t win; /* sliding window (0 = none) */
    double cap;  /* logit soft-cap (0 = none) */
};

static void att_ref(const struct att_ctx *c, double *out) {
    int64_t G = c->Hq / c->Hk;
    double sc = 1 / sqrt((double)c->D);
    for (int s = 0; s < c->nseq; s++) {
        int64_t a = c->cu[s], L = c->cu[s + 1] - a, kv = c->kvl ? c->kvl[s] : L;
        for (int64_t i = 0; i < L; i++)
            for (int64_t h = 0; h < c->Hq; h++) {
                int64_t nk = (i < kv - 1 ? i : kv - 1) + 1, kh = h / G;
                int64_t j0 = c->win > 0 && i - c->win + 1 > 0 ? i - c->win + 1 : 0;
                double sco[128], mx = -1e300, sum = 0;
                for (int64_t j = j0; j < nk; j++) {
                    double d = 0;
                    for (int64_t e = 0; e < c->D; e++)
                        d += c->q[((a + i) * c->Hq + h) * c->D + e] *
                             c->k[((a + j) * c->Hk + kh) * c->D + e];
                    sco[j] = d * sc;
                    if (c->cap > 0) sco[j] = c->cap * tanh(sco[j] / c->cap);
                    mx = fmax(mx, sco[j]);
                }
                for (int64_t j = j0; j < nk; j++)
                    sum += exp(sco[j] - mx);
                for (int64_t e = 0; e < c->D; e++) {
                    double o = 0;
                    for (int64_t j = j0; j < nk; j++)
                        o += exp(sco[j] - mx) / sum * c->v[((a + j) * c->Hk + kh) * c->D + e];
                    out[((a + i) * c->Hq + h) * c->D + e] = o;
                }
            }
    }
}

static double att_loss(void *p) {
    struct att_ctx *c = p;
    double out[2048], L = 0;
    att_ref(c, out);
    for (int64_t i = 0; i < c->N * c->Hq * c->D; i++)
        L += out[i] * c->dout[i];
    return L;
}

static void att_case_ext(const char *what, const int32_t *cu, const int32_t *kvl, int nseq,
                         int64_t N, int64_t Hq, int64_t Hk, int64_t D, int64_t win, float cap) {
    int64_t nq = N * Hq * D, nk = N * Hk * D;
    float *q = frand(nq, 1.5), *k = frand(nk, 1.5), *v = frand(nk, 1), *dout = frand(nq, 1);
    float *out = fzero(nq), *lse = fzero(N * Hq), *dq = fzero(nq), *dk = fzero(nk), *dv = fzero(nk);
    float sc = 1.0f / sqrtf((float)D);
    struct att_ctx c = {
        to_d(q, nq), to_d(k, nk), to_d(v, nk), to_d(dout, nq), cu, kvl, nseq, N, Hq, Hk,
        D,           win,         cap};
    double *ref = malloc((size_t)nq * sizeof(double));
    att_ref(&c, ref);
    int ext = win > 0 || cap > 0;
    OK((ext ? be->attention_ext_fwd(be, out, lse, q, k, v, cu, kvl, nseq, 0, N, Hq, Hk, D, sc, win,
                                    cap)
            : be->attention_fwd(be, out, lse, q, k, v, cu, kvl, nseq, 0, N, Hq, Hk, D, sc)) == 0,
       "%s: fwd runs", what);
    CHECK_REL(rel_err_fd(out, ref, nq), "%s: attention_fwd matches double reference", what);
    if (ext)
        be->attention_ext_bwd(be, dq, dk, dv, dout, q, k, v, out, lse, cu, kvl, nseq, 0, N, Hq, Hk,
                              D, sc, win, cap);
    else
        be->attention_bwd(be, dq, dk, dv, dout, q, k, v, out, lse, cu, kvl, nseq, 0, N, Hq, Hk, D,
                          sc);
    double *gq = fd_grad(c.q, nq, att_loss, &c), *gk = fd_grad(c.k, nk, att_loss, &c);
    double *gv = fd_grad(c.v, nk, att_loss, &c);
    CHECK_REL(rel_err_fd(dq, gq, nq), "%s: dQ matches FD", what);
    CHECK_REL(rel_err_fd(dk, gk, nk), "%s: dK matches FD", what);
    CHECK_REL(rel_err_fd(dv, gv, nk), "%s: dV matches FD", what);
    free(q), free(k), free(v), free(dout), free(out), free(lse), free(dq), free(dk), free(dv);
    free(c.q), free(c.k), free(c.v), free(c.dout), free(ref), free(gq), free(gk), free(gv);
}

static void att_case(const char *what, const int32_t *cu, const int32_t *kvl, int nseq, int64_t N,
                     int64_t Hq, int64_t Hk, int64_t D) {
    att_case_ext(what, cu, kvl, nseq, N, Hq, Hk, D, 0, 0.0f);
}

/* Packed attention over 3 samples = each sample run alone, forward and backward, bit for bit. */
static void test_attention_packed_equals_separate(void) {
    int64_t Hq = 4, Hk = 2, D = 5, N = 11;
    int32_t cu[4] = {0, 3, 9, 11};
    int64_t nq = N * Hq * D, nk = N * Hk * D;
    float *q = frand(nq, 1.5), *k = frand(nk, 1.5), *v = frand(nk, 1), *dout = frand(nq, 1);
    float *out = fzero(nq), *lse = fzero(N * Hq), *dq = fzero(nq), *dk = fzero(nk), *dv = fzero(nk);
    float *o2 = fzero(nq), *l2 = fzero(N * Hq), *dq2 = fzero(nq), *dk2 = fzero(nk),
          *dv2 = fzero(nk);
    float sc = 1.0f / sqrtf((float)D);
    be->attention_fwd(be, out, lse, q, k, v, cu, NULL, 3, 0, N, Hq, Hk, D, sc);
    be->attention_bwd(be, dq, dk, dv, dout, q, k, v, out, lse, cu, NULL, 3, 0, N, Hq, Hk, D, sc);
    for (int s = 0; s < 3; s++) {
        int64_t a = cu[s], L = cu[s + 1] - a;
        int32_t one[2] = {0, (int32_t)L};
        be->attention_fwd(be, o2 + a * Hq * D, l2 + a * Hq, q + a * Hq * D, k + a * Hk * D,
                          v + a * Hk * D, one, NULL, 1, L, L, Hq, Hk, D, sc);
        be->attention_bwd(be, dq2 + a * Hq * D, dk2 + a * Hk * D, dv2 + a * Hk * D,
                          dout + a * Hq * D, q + a * Hq * D, k + a * Hk * D, v + a * Hk * D,
                          o2 + a * Hq * D, l2 + a * Hq, one, NULL, 1, L, L, Hq, Hk, D, sc);
    }
    OK(memcmp(out, o2, (size_t)nq * 4) == 0 && memcmp(lse, l2, (size_t)(N * Hq) * 4) == 0,
       "packed attention forward equals per-sample runs bit for bit");
    OK(memcmp(dq, dq2, (size_t)nq * 4) == 0 && memcmp(dk, dk2, (size_t)nk * 4) == 0 &&
           memcmp(dv, dv2, (size_t)nk * 4) == 0,
       "packed attention backward equals per-sample runs bit for bit");
    /* A sample's output does not depend on another sample's tokens. */
    for (int64_t i = 0; i < 3 * Hk * D; i++)
        k[i] += 1.0f, v[i] -= 2.0f;
    be->attention_fwd(be, o2, l2, q, k, v, cu, NULL, 3, 0, N, Hq, Hk, D, sc);
    OK(memcmp(out + 3 * Hq * D, o2 + 3 * Hq * D, (size_t)(nq - 3 * Hq * D) * 4) == 0,
       "changing sample 0's keys leaves samples 1 and 2 untouched");
    free(q), free(k), free(v), free(dout), free(out), free(lse), free(dq), free(dk), free(dv);
    free(o2), free(l2), free(dq2), free(dk2), free(dv2);
}

static void test_attention(void) {
    int32_t cu[4] = {0, 3, 8, 9};
    att_case("packed 3 samples (3,5,1) Hq 4 Hk 2 D 5", cu, NULL, 3, 9, 4, 2, 5);
    int32_t cu2[3] = {0, 5, 10}, kvl[2] = {5, 3};
    att_case("padded B=2 T=5 lengths (5,3) Hq 3 Hk 1 D 3", cu2, kvl, 2, 10, 3, 1, 3);
    int32_t cu3[3] = {0, 37, 70}; /* rows span several 32-row query/key blocks */
    att_case("packed (37,33) across blocks Hq 2 Hk 1 D 4", cu3, NULL, 2, 70, 2, 1, 4);
    /* Sliding window (Mistral) and soft-capping (Gemma 2): windows shorter than the segments,
     * padded rows whose window holds no valid key, windows across 64-row query blocks. */
    att_case_ext("window 3: packed (3,5,1)", cu, NULL, 3, 9, 4, 2, 5, 3, 0.0f);
    att_case_ext("window 2: padded (5,3)", cu2, kvl, 2, 10, 3, 1, 3, 2, 0.0f);
    att_case_ext("window 20 + softcap 1.5: packed (37,33)", cu3, NULL, 2, 70, 2, 1, 4, 20, 1.5f);
    att_case_ext("softcap 0.8: padded (5,3)", cu2, kvl, 2, 10, 3, 1, 3, 0, 0.8f);
    int32_t cu5[2] = {0, 100}; /* one segment over two query blocks: window straddles blocks */
    att_case_ext("window 70: one segment of 100", cu5, NULL, 1, 100, 2, 1, 2, 70, 0.0f);
    test_attention_packed_equals_separate();
    int32_t bad[3] = {0, 5, 9};
    float t[16];
    OK(be->attention_fwd(be, t, t, t, t, t, bad, NULL, 2, 0, 10, 1, 1, 1, 1.0f) == SW_EINVAL,
       "cu_seqlens not ending at N is SW_EINVAL");
    /* A fully padded row (kv_len 0): zeros, no NaN, forward and backward. */
    {
        int32_t cuz[3] = {0, 3, 6}, kvz[2] = {3, 0};
        float *q = frand(6 * 2 * 4, 1), *k = frand(6 * 4, 1), *v = frand(6 * 4, 1);
        float *o = fzero(48), *l = fzero(12), *dq = fzero(48), *dk = fzero(24), *dv = fzero(24);
        be->attention_fwd(be, o, l, q, k, v, cuz, kvz, 2, 3, 6, 2, 1, 4, 0.5f);
        be->attention_bwd(be, dq, dk, dv, q, q, k, v, o, l, cuz, kvz, 2, 3, 6, 2, 1, 4, 0.5f);
        int ok = 1;
        for (int i = 24; i < 48; i++)
            ok &= o[i] == 0.0f && dq[i] == 0.0f;
        for (int i = 12; i < 24; i++)
            ok &= dk[i] == 0.0f && dv[i] == 0.0f;
        for (int i = 0; i < 24; i++)
            ok &= !isnan(o[i]) && !isnan(dq[i]);
        OK(ok, "a fully padded row gives zero outputs and gradients, no NaN");
        free(q), free(k), free(v), free(o), free(l), free(dq), free(dk), free(dv);
    }
    int32_t cu4[3] = {0, 2, 5};
    OK(be->attention_fwd(be, t, t, t, t, t, cu4, NULL, 2, 2, 5, 1, 1, 1, 1.0f) == SW_EINVAL &&
           strstr(sw_err_msg(), "max_len 2"),
       "a segment longer than max_len is SW_EINVAL");
}

/* ---------------------------------------------------------------- swiglu, dropout, add */
struct sg_ctx {
    double *g, *u, *dout;
    int64_t n;
};

static double sg_loss(void *p) {
    struct sg_ctx *c = p;
    double L = 0;
    for (int64_t i = 0; i < c->n; i++)
        L += c->g[i] / (1 + exp(-c->g[i])) * c->u[i] * c->dout[i];
    return L;
}

static void test_swiglu(void) {
    int64_t n = 11;
    float *g = frand(n, 3), *u = frand(n, 1), *dout = frand(n, 1);
    float *y = fzero(n), *dg = fzero(n), *du = fzero(n);
    struct sg_ctx c = {to_d(g, n), to_d(u, n), to_d(dout, n), n};
    double yr[16];
    for (int64_t i = 0; i < n; i++)
        yr[i] = c.g[i] / (1 + exp(-c.g[i])) * c.u[i];
    be->swiglu_fwd(be, y, g, u, n);
    CHECK_REL(rel_err_fd(y, yr, n), "swiglu_fwd matches double reference");
    be->swiglu_bwd(be, dg, du, dout, g, u, n);
    double *gg = fd_grad(c.g, n, sg_loss, &c), *gu = fd_grad(c.u, n, sg_loss, &c);
    CHECK_REL(rel_err_fd(dg, gg, n), "swiglu dgate matches FD");
    CHECK_REL(rel_err_fd(du, gu, n), "swiglu dup matches FD");
    free(g), free(u), free(dout), free(y), free(dg), free(du), free(c.g), free(c.u), free(c.dout);
    free(gg), free(gu);
}

/* GeGLU (Gemma 2): out = gelu_tanh(g)·u against a double reference and FD gradients. */
static double gelu_tanh_d(double g) {
    return 0.5 * g * (1 + tanh(0.7978845608028654 * (g + 0.044715 * g * g * g)));
}

static double gg_loss(void *p) {
    struct sg_ctx *c = p;
    double L = 0;
    for (int64_t i = 0; i < c->n; i++)
        L += gelu_tanh_d(c->g[i]) * c->u[i] * c->dout[i];
    return L;
}

static void test_geglu(void) {
    int64_t n = 11;
    float *g = frand(n, 3), *u = frand(n, 1), *dout = frand(n, 1);
    float *y = fzero(n), *dg = fzero(n), *du = fzero(n);
    struct sg_ctx c = {to_d(g, n), to_d(u, n), to_d(dout, n), n};
    double yr[16];
    for (int64_t i = 0; i < n; i++)
        yr[i] = gelu_tanh_d(c.g[i]) * c.u[i];
    be->geglu_fwd(be, y, g, u, n);
    CHECK_REL(rel_err_fd(y, yr, n), "geglu_fwd matches double reference");
    be->geglu_bwd(be, dg, du, dout, g, u, n);
    double *gg = fd_grad(c.g, n, gg_loss, &c), *gu = fd_grad(c.u, n, gg_loss, &c);
    CHECK_REL(rel_err_fd(dg, gg, n), "geglu dgate matches FD");
    CHECK_REL(rel_err_fd(du, gu, n), "geglu dup matches FD");
    float x[3] = {-40.0f, 0.5f, 3.0f};
    be->softcap_fwd(be, x, 3, 2.0f);
    OK(fabsf(x[0] + 2.0f) < 1e-6f && fabsf(x[1] - 2.0f * tanhf(0.25f)) < 1e-6f,
       "softcap_fwd: cap·tanh(x / cap)");
    free(g), free(u), free(dout), free(y), free(dg), free(du), free(c.g), free(c.u), free(c.dout);
    free(gg), free(gu);
}

/* Fused cross-entropy over soft-capped logits (Gemma 2's final_logit_softcapping). */
struct cec_ctx {
    double *h, *w;
    const int32_t *t;
    int64_t N, V, C;
    double cap;
};

static double cec_loss(void *p) {
    struct cec_ctx *c = p;
    double L = 0;
    for (int64_t n = 0; n < c->N; n++) {
        if (c->t[n] == SW_IGNORE_INDEX) continue;
        double z[16], mx = -1e300, s = 0;
        for (int64_t v = 0; v < c->V; v++) {
            double d = 0;
            for (int64_t k = 0; k < c->C; k++)
                d += c->h[n * c->C + k] * c->w[v * c->C + k];
            z[v] = c->cap * tanh(d / c->cap);
            mx = fmax(mx, z[v]);
        }
        for (int64_t v = 0; v < c->V; v++)
            s += exp(z[v] - mx);
        L += mx + log(s) - z[c->t[n]];
    }
    return L;
}

static void test_ce_cap(void) {
    int64_t N = 6, V = 9, C = 4;
    int32_t t[6] = {1, SW_IGNORE_INDEX, 8, 0, 3, 3};
    float *h = frand(N * C, 2), *w = frand(V * C, 2), *loss = fzero(N), *lse = fzero(N);
    float *dh = fzero(N * C), *dw = fzero(V * C);
    struct cec_ctx c = {to_d(h, N * C), to_d(w, V * C), t, N, V, C, 1.5};
    OK(be->ce_fused_cap_fwd(be, loss, lse, h, w, t, N, V, C, 4, 1.5f) == 0, "ce_fused_cap_fwd");
    double sum = 0;
    for (int64_t n = 0; n < N; n++)
        sum += loss[n];
    double ref = cec_loss(&c);
    OK(fabs(sum - ref) < 1e-5 * fabs(ref), "soft-capped loss %.7f = reference %.7f", sum, ref);
    be->ce_fused_cap_bwd(be, dh, dw, h, w, t, lse, NULL, N, V, C, 4, 1.0f, 0.0f, 1.5f);
    double *gh = fd_grad(c.h, N * C, cec_loss, &c), *gw = fd_grad(c.w, V * C, cec_loss, &c);
    CHECK_REL(rel_err_fd(dh, gh, N * C), "ce_fused_cap_bwd dh matches FD");
    CHECK_REL(rel_err_fd(dw, gw, V * C), "ce_fused_cap_bwd dw matches FD");
    free(h), free(w), free(loss), free(lse), free(dh), free(dw), free(c.h), free(c.w), free(gh);
    free(gw);
}

static void test_elementwise(void) {
    int64_t n = 10007;
    float *x = frand(n, 1), *y = fzero(n), *dx = fzero(n), *ones = fzero(n);
    for (int64_t i = 0; i < n; i++)
        ones[i] = 1.0f;
    be->dropout_fwd(be, y, x, n, 0.25f, 99);
    be->dropout_bwd(be, dx, ones, n, 0.25f, 99);
    int64_t kept = 0;
    int consistent = 1;
    for (int64_t i = 0; i < n; i++) {
        int k = y[i] != 0.0f;
        kept += dx[i] != 0.0f;
        if (k && fabsf(y[i] - x[i] / 0.75f) > 1e-6f) consistent = 0;
        if (k != (dx[i] != 0.0f) && x[i] != 0.0f) consistent = 0;
        if (dx[i] != 0.0f && fabsf(dx[i] - 1 / 0.75f) > 1e-6f) consistent = 0;
    }
    OK(consistent, "dropout backward uses the forward's mask and 1/(1-p) scale");
    OK(fabs((double)kept / n - 0.75) < 0.02, "dropout keeps ~75%% at p = 0.25 (%.3f)",
       (double)kept / n);
    be->dropout_fwd(be, dx, x, n, 0.25f, 100);
    OK(memcmp(dx, y, (size_t)n * 4) != 0, "another seed draws another mask");
    be->add(be, y, x, ones, n);
    be->axpy(be, y, x, -1.0f, n);
    int add_ok = 1;
    for (int64_t i = 0; i < n; i++)
        add_ok &= fabsf(y[i] - 1.0f) < 1e-6f;
    OK(add_ok, "add then axpy(-1) gives back the other operand");
    free(x), free(y), free(dx), free(ones);
}

/* ---------------------------------------------------------------- cross-entropy */
struct ce_ctx {
    double *h, *w;
    const int32_t *t;
    int64_t N, V, C;
};

static double ce_loss(void *p) {
    struct ce_ctx *c = p;
    double L = 0;
    for (int64_t n = 0; n < c->N; n++) {
        if (c->t[n] == SW_IGNORE_INDEX) continue;
        double lg[64], mx = -1e300, s = 0;
        for (int64_t v = 0; v < c->V; v++) {
            lg[v] = 0;
            for (int64_t k = 0; k < c->C; k++)
                lg[v] += c->h[n * c->C + k] * c->w[v * c->C + k];
            mx = fmax(mx, lg[v]);
        }
        for (int64_t v = 0; v < c->V; v++)
            s += exp(lg[v] - mx);
        L += mx + log(s) - lg[c->t[n]];
    }
    return L;
}

static void test_cross_entropy(void) {
    int64_t N = 13, V = 17, C = 7;
    int32_t t[13] = {3,  SW_IGNORE_INDEX, 16, 0, 5, 5, SW_IGNORE_INDEX, 1, 2, 9,
                     11, SW_IGNORE_INDEX, 7};
    float *h = frand(N * C, 1), *w = frand(V * C, 1);
    float *loss = fzero(N), *lse = fzero(N), *loss2 = fzero(N), *lse2 = fzero(N),
          *logits = fzero(N * V);
    float *dh = fzero(N * C), *dw = fzero(V * C);
    OK(be->ce_fused_fwd(be, loss, lse, h, w, t, N, V, C, 4) == 0,
       "ce_fused_fwd (chunks of 4 rows) runs");
    be->matmul_fwd(be, logits, h, w, NULL, N, V, C, 1.0f, 0.0f);
    be->ce_logits_fwd(be, loss2, lse2, logits, t, N, V);
    double s1 = 0, s2 = 0;
    int ign = 1;
    for (int64_t n = 0; n < N; n++) {
        s1 += loss[n], s2 += loss2[n];
        if (t[n] == SW_IGNORE_INDEX) ign &= loss[n] == 0.0f && loss2[n] == 0.0f;
    }
    OK(ign, "ignored rows (-100) contribute zero loss");
    CHECK_REL(rel_err_ff(loss, loss2, N), "chunked fused CE equals full-logits CE per row");
    struct ce_ctx c = {to_d(h, N * C), to_d(w, V * C), t, N, V, C};
    double ref = ce_loss(&c);
    OK(fabs(s1 - ref) / fabs(ref) < TOL, "CE loss sum matches double reference (%.6f vs %.6f)", s1,
       ref);
    float scale = 1.0f / 10;
    be->ce_fused_bwd(be, dh, dw, h, w, t, lse, NULL, N, V, C, 4, scale, 0.0f);
    double *gh = fd_grad(c.h, N * C, ce_loss, &c), *gw = fd_grad(c.w, V * C, ce_loss, &c);
    for (int64_t i = 0; i < N * C; i++)
        gh[i] *= scale;
    for (int64_t i = 0; i < V * C; i++)
        gw[i] *= scale;
    CHECK_REL(rel_err_fd(dh, gh, N * C), "fused CE d(hidden) matches FD");
    CHECK_REL(rel_err_fd(dw, gw, V * C), "fused CE d(lm_head) matches FD");
    /* Chunk size does not change the result beyond rounding, and 1-row chunks work. */
    float *dh1 = fzero(N * C), *dw1 = fzero(V * C);
    be->ce_fused_bwd(be, dh1, dw1, h, w, t, lse, NULL, N, V, C, 1, scale, 0.0f);
    CHECK_REL(rel_err_ff(dh1, dh, N * C), "fused CE backward, chunk 1 vs chunk 4: dh");
    CHECK_REL(rel_err_ff(dw1, dw, V * C), "fused CE backward, chunk 1 vs chunk 4: dw");
    /* The CPU backend keeps the forward's softmax gradient for the backward; a forward on other
     * inputs in between makes the backward recompute it: both paths agree. */
    float *h2 = frand(N * C, 1), *l2 = fzero(N), *s2l = fzero(N);
    be->ce_fused_fwd(be, s2l, l2, h2, w, t, N, V, C, 4);
    memset(dh1, 0, (size_t)(N * C) * 4), memset(dw1, 0, (size_t)(V * C) * 4);
    be->ce_fused_bwd(be, dh1, dw1, h, w, t, lse, NULL, N, V, C, 4, scale, 0.0f);
    CHECK_REL(rel_err_ff(dh1, dh, N * C),
              "fused CE backward recomputed vs kept from the forward: dh");
    CHECK_REL(rel_err_ff(dw1, dw, V * C),
              "fused CE backward recomputed vs kept from the forward: dw");
    free(h2), free(l2), free(s2l);
    /* Per-row weights (row_scale): row n's g is weighted by rs[n]. Reference: one unweighted
     * backward per row (every other target ignored), scaled and summed. Both the path that keeps
     * the forward's gradient and the recomputing one are checked. */
    float *rs = frand(N, 2), *dhr = fzero(N * C), *dwr = fzero(V * C), *dhn = fzero(N * C),
          *dwn = fzero(V * C);
    int32_t tn[13];
    for (int64_t n = 0; n < N; n++) {
        if (t[n] == SW_IGNORE_INDEX) continue;
        for (int64_t j = 0; j < N; j++)
            tn[j] = j == n ? t[n] : SW_IGNORE_INDEX;
        memset(dwn, 0, (size_t)(V * C) * 4);
        be->ce_fused_bwd(be, dhn, dwn, h, w, tn, lse, NULL, N, V, C, 4, scale, 0.0f);
        for (int64_t i = 0; i < V * C; i++)
            dwr[i] += rs[n] * dwn[i];
        for (int64_t c2 = 0; c2 < C; c2++)
            dhr[n * C + c2] = rs[n] * dhn[n * C + c2];
    }
    be->ce_fused_fwd(be, s2l = fzero(N), l2 = fzero(N), h, w, t, N, V, C, 4); /* keep G */
    memset(dw1, 0, (size_t)(V * C) * 4);
    memset(dh1, 0x7f, (size_t)(N * C) * 4); /* beta 0 must overwrite, never read */
    be->ce_fused_bwd(be, dh1, dw1, h, w, t, l2, rs, N, V, C, 4, scale, 0.0f);
    CHECK_REL(rel_err_ff(dh1, dhr, N * C), "fused CE backward with row weights (kept G): dh");
    CHECK_REL(rel_err_ff(dw1, dwr, V * C), "fused CE backward with row weights (kept G): dw");
    free(s2l), free(l2);
    float *h3 = frand(N * C, 1), *l3 = fzero(N), *s3 = fzero(N);
    be->ce_fused_fwd(be, s3, l3, h3, w, t, N, V, C, 4); /* another forward: recompute */
    memset(dw1, 0, (size_t)(V * C) * 4);
    memset(dh1, 0x7f, (size_t)(N * C) * 4);
    be->ce_fused_bwd(be, dh1, dw1, h, w, t, lse, rs, N, V, C, 3, scale, 0.0f);
    CHECK_REL(rel_err_ff(dh1, dhr, N * C), "fused CE backward with row weights (recomputed): dh");
    CHECK_REL(rel_err_ff(dw1, dwr, V * C), "fused CE backward with row weights (recomputed): dw");
    free(h3), free(l3), free(s3), free(rs), free(dhr), free(dwr), free(dhn), free(dwn);
    int32_t bad[1] = {17};
    OK(be->ce_fused_fwd(be, loss, lse, h, w, bad, 1, V, C, 4) == SW_ERANGE,
       "target past the vocabulary is SW_ERANGE");
    free(h), free(w), free(loss), free(lse), free(loss2), free(lse2), free(logits), free(dh),
        free(dw);
    free(c.h), free(c.w), free(gh), free(gw), free(dh1), free(dw1);
}

/* ---------------------------------------------------------------- determinism */
struct det_out {
    float *out, *lse, *dq, *dk, *dv, *dx, *dw, *dh, *dwl;
};

static void det_run(struct det_out *o, const float *q, const float *k, const float *v,
                    const float *dout, const int32_t *cu, int64_t N, int64_t Hq, int64_t Hk,
                    int64_t D, const float *x, const float *w, int64_t C, const int32_t *t,
                    const float *wl, int64_t V) {
    int64_t nq = N * Hq * D, nk = N * Hk * D;
    *o = (struct det_out){fzero(nq),    fzero(N * Hq), fzero(nq),    fzero(nk),   fzero(nk),
                          fzero(N * C), fzero(C),      fzero(N * C), fzero(V * C)};
    float *rstd = fzero(N), *y = fzero(N * C), *loss = fzero(N), *lse = fzero(N);
    float sc = 1.0f / sqrtf((float)D);
    be->attention_fwd(be, o->out, o->lse, q, k, v, cu, NULL, 3, 0, N, Hq, Hk, D, sc);
    be->attention_bwd(be, o->dq, o->dk, o->dv, dout, q, k, v, o->out, o->lse, cu, NULL, 3, 0, N, Hq,
                      Hk, D, sc);
    be->rmsnorm_fwd(be, y, rstd, x, w, N, C, 1e-6f);
    be->rmsnorm_bwd(be, o->dx, o->dw, x, x, w, rstd, N, C, 0.0f);
    be->ce_fused_fwd(be, loss, lse, y, wl, t, N, V, C, 7);
    be->ce_fused_bwd(be, o->dh, o->dwl, y, wl, t, lse, NULL, N, V, C, 7, 0.01f, 0.0f);
    free(rstd), free(y), free(loss), free(lse);
}

static int det_same(const struct det_out *a, const struct det_out *b, int64_t N, int64_t Hq,
                    int64_t Hk, int64_t D, int64_t C, int64_t V, int with_ce) {
    int64_t nq = N * Hq * D, nk = N * Hk * D;
    int ok =
        memcmp(a->out, b->out, (size_t)nq * 4) == 0 &&
        memcmp(a->lse, b->lse, (size_t)(N * Hq) * 4) == 0 &&
        memcmp(a->dq, b->dq, (size_t)nq * 4) == 0 && memcmp(a->dk, b->dk, (size_t)nk * 4) == 0 &&
        memcmp(a->dv, b->dv, (size_t)nk * 4) == 0 &&
        memcmp(a->dx, b->dx, (size_t)(N * C) * 4) == 0 && memcmp(a->dw, b->dw, (size_t)C * 4) == 0;
    if (with_ce)
        ok = ok && memcmp(a->dh, b->dh, (size_t)(N * C) * 4) == 0 &&
             memcmp(a->dwl, b->dwl, (size_t)(V * C) * 4) == 0;
    return ok;
}

static void det_free(struct det_out *o) {
    free(o->out), free(o->lse), free(o->dq), free(o->dk), free(o->dv), free(o->dx), free(o->dw);
    free(o->dh), free(o->dwl);
}

static void test_determinism(void) {
    int64_t N = 200, Hq = 4, Hk = 2, D = 16, C = 48, V = 61;
    int32_t cu[4] = {0, 70, 170, 200};
    float *q = frand(N * Hq * D, 1), *k = frand(N * Hk * D, 1), *v = frand(N * Hk * D, 1);
    float *dout = frand(N * Hq * D, 1), *x = frand(N * C, 1), *w = frand(C, 1),
          *wl = frand(V * C, 0.3);
    int32_t *t = malloc((size_t)N * sizeof(int32_t));
    for (int64_t n = 0; n < N; n++)
        t[n] = n % 5 == 0 ? SW_IGNORE_INDEX : (int32_t)((n * 7) % V);
    int nth = omp_get_max_threads();
    struct det_out a, b, c1;
    det_run(&a, q, k, v, dout, cu, N, Hq, Hk, D, x, w, C, t, wl, V);
    det_run(&b, q, k, v, dout, cu, N, Hq, Hk, D, x, w, C, t, wl, V);
    OK(det_same(&a, &b, N, Hq, Hk, D, C, V, 1), "two runs (%d threads) are bit-identical", nth);
    omp_set_num_threads(nth > 1 ? 1 : 2);
    det_run(&c1, q, k, v, dout, cu, N, Hq, Hk, D, x, w, C, t, wl, V);
    omp_set_num_threads(nth);
    OK(det_same(&a, &c1, N, Hq, Hk, D, C, V, 0),
       "attention and rmsnorm are bit-identical with %d vs %d threads", nth, nth > 1 ? 1 : 2);
    det_free(&a), det_free(&b), det_free(&c1);
    free(q), free(k), free(v), free(dout), free(x), free(w), free(wl), free(t);
}

/* ---- the optimizer ops against sw_optim --------------------------------------------------- */

/* 3 AdamW steps of sw_adamw_step and of be->adamw from the same start, wd on and off, over two
 * parameters (one decaying, one not) whose sizes cross the 2^15-element chunks. */
static void test_adamw_vs_optim(double wd) {
    enum { NP = 2 };
    const int64_t n[NP] = {3 * 32768 + 17, 1001};
    float *ph[NP], *pb[NP], *g[NP], *m[NP], *v[NP];
    struct sw_optim_param op[NP];
    for (int i = 0; i < NP; i++) {
        ph[i] = frand(n[i], 1);
        pb[i] = malloc((size_t)n[i] * sizeof(float));
        memcpy(pb[i], ph[i], (size_t)n[i] * sizeof(float));
        g[i] = frand(n[i], 0.01);
        m[i] = fzero(n[i]);
        v[i] = fzero(n[i]);
        op[i] = (struct sw_optim_param){i ? "b.bias" : "w.weight", ph[i], g[i], n[i], i == 0};
    }
    struct sw_adamw_config cfg = {0.9, 0.999, 1e-8, wd};
    struct sw_adamw *o = NULL;
    int rc = sw_adamw_new(&cfg, op, NP, &o);
    for (int64_t s = 1; s <= 3 && rc == 0; s++) {
        for (int i = 0; i < NP; i++)
            for (int64_t j = 0; j < n[i]; j += 97)
                g[i][j] = (float)(urand() * 0.02);
        double lr = 1e-3 * (double)s;
        rc = sw_adamw_step(o, op, NP, lr);
        for (int i = 0; i < NP && rc == 0; i++)
            rc = be->adamw(be, pb[i], g[i], m[i], v[i], n[i], lr, cfg.beta1, cfg.beta2, cfg.eps,
                           cfg.weight_decay, op[i].decay, s);
    }
    int same = rc == 0;
    for (int i = 0; i < NP && same; i++) {
        float *hm, *hv;
        sw_adamw_slot(o, i, NULL, &hm, &hv);
        size_t b = (size_t)n[i] * sizeof(float);
        same = !memcmp(pb[i], ph[i], b) && !memcmp(m[i], hm, b) && !memcmp(v[i], hv, b);
    }
    OK(same, "adamw (wd %g): 3 steps equal sw_adamw_step bit for bit (weights and both moments)",
       wd);
    sw_adamw_free(o);
    for (int i = 0; i < NP; i++)
        free(ph[i]), free(pb[i]), free(g[i]), free(m[i]), free(v[i]);
}

static void test_optimizer_ops(void) {
    test_adamw_vs_optim(0.1);
    test_adamw_vs_optim(0.0);
    float one = 1;
    OK(be->adamw(be, &one, &one, &one, &one, 1, 1e-3, 0.9, 0.999, 1e-8, 0, 1, 0) == SW_EINVAL,
       "adamw: step 0 is SW_EINVAL");

    /* sumsq: sizes around the chunk (2^15) and the chunk group (256 chunks). */
    enum { K = 6 };
    const int64_t n[K] = {0, 1, 1000, 32768 + 5, 3 * 32768, 256 * 32768 + 100};
    float *x[K];
    struct sw_optim_param op[K];
    for (int i = 0; i < K; i++) {
        x[i] = frand(n[i] ? n[i] : 1, (double)(i + 1));
        op[i] = (struct sw_optim_param){"p", x[i], x[i], n[i], 1};
    }
    const float *cx[K];
    for (int i = 0; i < K; i++)
        cx[i] = x[i];
    double out[K], out1[K], total = -1, total1 = -2, sum = 0;
    int rc = be->sumsq(be, cx, n, K, out, &total);
    int nth = omp_get_max_threads();
    omp_set_num_threads(nth > 1 ? 1 : 2);
    int rc1 = be->sumsq(be, cx, n, K, out1, &total1);
    omp_set_num_threads(nth);
    for (int i = 0; i < K; i++)
        sum += out[i];
    double norm = sw_grad_norm(op, K);
    OK(rc == 0 && sqrt(total) == norm,
       "sumsq: sqrt(total) %.17g is sw_grad_norm %.17g bit for "
       "bit",
       sqrt(total), norm);
    OK(rc1 == 0 && total1 == total && !memcmp(out, out1, sizeof out),
       "sumsq: the same bits with %d and %d threads", nth, nth > 1 ? 1 : 2);
    OK(fabs(sum - total) <= 1e-12 * total && out[0] == 0.0 &&
           out[1] == (double)x[1][0] * (double)x[1][0],
       "sumsq: per-tensor sums add up to the total; empty tensor 0, one element its square");
    x[2][17] = NAN;
    x[4][3 * 32768 - 1] = INFINITY;
    rc = be->sumsq(be, cx, n, K, out, NULL);
    OK(rc == 0 && isfinite(out[1]) && isnan(out[2]) && isfinite(out[3]) && isinf(out[4]) &&
           isfinite(out[5]) && sw_grad_find_nonfinite(op, K) == 2,
       "sumsq: NaN / Inf give non-finite sums of their own tensors only");
    int64_t bad_n = -1;
    OK(be->sumsq(be, cx, &bad_n, 1, out, NULL) == SW_EINVAL, "sumsq: a negative size is SW_EINVAL");

    /* scale: sw_grad_clip's product. */
    float *a = frand(n[5], 1), *b = malloc((size_t)n[5] * sizeof(float));
    memcpy(b, a, (size_t)n[5] * sizeof(float));
    struct sw_optim_param pa = {"a", a, a, n[5], 1};
    double an = sw_grad_norm(&pa, 1);
    double coef = sw_grad_clip(&pa, 1, 0.5 * an, an);
    rc = be->scale(be, b, n[5], (float)coef);
    OK(coef < 1 && rc == 0 && !memcmp(a, b, (size_t)n[5] * sizeof(float)),
       "scale: equals sw_grad_clip's scaling (coefficient %.6g) bit for bit", coef);
    free(a), free(b);
    for (int i = 0; i < K; i++)
        free(x[i]);
}

/* ---- the backend's other members ----------------------------------------------------------- */

static void test_services(void) {
    struct sw_mem_info mi = {0};
    int rc = be->mem_info(be, &mi);
    OK(rc == 0 && mi.in_use > 0 && mi.peak >= mi.in_use && mi.total > 0 && mi.free <= mi.total,
       "mem_info: %zu resident, peak %zu, %zu available of %zu", mi.in_use, mi.peak, mi.free,
       mi.total);
    struct sw_device_info di;
    rc = be->device_info(be, &di);
    OK(rc == 0 && di.name[0] && di.total_bytes == mi.total &&
           di.compute_units == omp_get_max_threads() && di.cc_major == 0,
       "device_info: '%s', %d threads", di.name, di.compute_units);

    OK(be->get_precision(be) == SW_MATMUL_FP32 && be->set_precision(be, SW_MATMUL_FP32) == 0,
       "precision: fp32, and setting fp32 works");
    OK(be->set_precision(be, SW_MATMUL_BF16) == SW_EUNSUPPORTED && strstr(sw_err_msg(), "bf16") &&
           be->set_precision(be, SW_MATMUL_FP16) == SW_EUNSUPPORTED &&
           be->set_precision(be, (enum sw_matmul_precision)7) == SW_EINVAL &&
           be->get_precision(be) == SW_MATMUL_FP32,
       "precision: bf16/fp16 are SW_EUNSUPPORTED on the CPU, mode 7 SW_EINVAL; still fp32");
    enum sw_matmul_precision p = SW_MATMUL_FP32;
    int names = 1;
    const char *nm[SW_MATMUL_COUNT] = {"fp32", "tf32", "bf16", "bf16i", "fp16"};
    for (int i = 0; i < SW_MATMUL_COUNT; i++)
        names &= sw_matmul_precision_parse(nm[i], &p) == 0 && (int)p == i &&
                 !strcmp(sw_matmul_precision_name(p), nm[i]);
    OK(names && sw_matmul_precision_parse("fp8", &p) == SW_EINVAL &&
           !strcmp(sw_matmul_precision_name(9), "?"),
       "precision names parse and name back; fp8 refused");
    OK(be->profile_enable(be, 1) == SW_EUNSUPPORTED &&
           be->profile_report(be, stdout) == SW_EUNSUPPORTED,
       "profiling is SW_EUNSUPPORTED on the CPU");
    OK(be->supports_op(be, SW_OP_OPTIMIZER), "supports_op: the optimizer ops");

    /* The scratch reservation: one block, so two allocations that together fill it are
     * contiguous (without it the first would open a 64 MiB block and the second a new one);
     * not counted as use. */
    const size_t MiB = (size_t)1 << 20;
    be->scratch_reset(be);
    size_t peak0 = be->scratch_peak(be);
    rc = be->scratch_reserve(be, 80 * MiB);
    OK(rc == 0 && be->scratch_peak(be) == peak0, "scratch_reserve: 80 MiB, peak unchanged (%zu)",
       peak0);
    char *s1 = be->scratch_alloc(be, 50 * MiB), *s2 = be->scratch_alloc(be, 30 * MiB);
    OK(s1 && s2 == s1 + 50 * MiB, "scratch_reserve: 50 + 30 MiB are contiguous in the reserved "
                                  "block");
    size_t peak1 = be->scratch_peak(be);
    OK(peak1 >= 80 * MiB, "scratch_peak counts the allocations (%zu)", peak1);
    be->scratch_reset(be);
    OK(be->scratch_alloc(be, MiB) != NULL, "the arena works after the reservation");
    be->scratch_reset(be);
}

/* ---- options ------------------------------------------------------------------------------- */

static void test_options(void) {
    static const char *vars[] = {"SW_CUDA_DEVICE", "SW_CUDA_MATMUL", "SW_CUDA_CE_CHUNK_BYTES",
                                 "SW_CUDA_CE_KEEP_BYTES"};
    for (int i = 0; i < 4; i++)
        unsetenv(vars[i]);
    struct sw_backend_opts o;
    OK(sw_backend_opts_from_env(&o) == 0 && o.device_index == 0 && o.matmul == -1 &&
           !o.matmul_src[0] && o.ce_chunk_bytes == (size_t)1 << 30 &&
           o.ce_keep_bytes == (size_t)4 << 30,
       "options: defaults without the environment");
    setenv("SW_CUDA_DEVICE", "1", 1);
    setenv("SW_CUDA_MATMUL", "bf16i", 1);
    setenv("SW_CUDA_CE_CHUNK_BYTES", "1048576", 1);
    setenv("SW_CUDA_CE_KEEP_BYTES", "0", 1);
    OK(sw_backend_opts_from_env(&o) == 0 && o.device_index == 1 &&
           o.matmul == SW_MATMUL_BF16_INLINE && !strcmp(o.matmul_src, "SW_CUDA_MATMUL=bf16i") &&
           o.ce_chunk_bytes == (size_t)1 << 20 && o.ce_keep_bytes == 0,
       "options: SW_CUDA_DEVICE, SW_CUDA_MATMUL, SW_CUDA_CE_CHUNK_BYTES, SW_CUDA_CE_KEEP_BYTES");
    setenv("SW_CUDA_CE_CHUNK_BYTES", "0", 1);
    OK(sw_backend_opts_from_env(&o) == 0 && o.ce_chunk_bytes == (size_t)1 << 30,
       "options: a chunk budget of 0 is the default");
    setenv("SW_CUDA_CE_KEEP_BYTES", "4G", 1);
    int rc = sw_backend_opts_from_env(&o);
    OK(rc == SW_EINVAL && strstr(sw_err_msg(), "SW_CUDA_CE_KEEP_BYTES=4G"),
       "options: a malformed size is SW_EINVAL naming the variable (%s)", sw_err_msg());
    unsetenv("SW_CUDA_CE_KEEP_BYTES");
    setenv("SW_CUDA_DEVICE", "-1", 1);
    OK(sw_backend_opts_from_env(&o) == SW_EINVAL, "options: SW_CUDA_DEVICE=-1 is SW_EINVAL");
    setenv("SW_CUDA_MATMUL", "fp8", 1);
    unsetenv("SW_CUDA_DEVICE");
    rc = sw_backend_opts_from_env(&o);
    OK(rc == SW_EINVAL && strstr(sw_err_msg(), "SW_CUDA_MATMUL"),
       "options: SW_CUDA_MATMUL=fp8 is SW_EINVAL (%s)", sw_err_msg());
    struct sw_backend *cpu2 = NULL;
    OK(sw_backend_open(SW_DEVICE_CPU, &cpu2) == 0 && cpu2 && !strcmp(cpu2->name, "cpu"),
       "the CPU backend reads no options: it opens with a malformed SW_CUDA_MATMUL");
    sw_backend_close(cpu2);
    for (int i = 0; i < 4; i++)
        unsetenv(vars[i]);
}

int main(void) {
    if (omp_get_max_threads() < 2) omp_set_num_threads(2);
    if (!OK(sw_backend_open(SW_DEVICE_CPU, &be) == 0, "open the CPU backend")) return tap_done();
    struct sw_backend *none = NULL;
    if (!sw_backend_available(SW_DEVICE_CUDA))
        OK(sw_backend_open(SW_DEVICE_CUDA, &none) == SW_EUNSUPPORTED && !none,
           "no CUDA backend in a CPU build (SW_EUNSUPPORTED)");
    OK(sw_backend_available(SW_DEVICE_CPU), "the CPU backend is always available");
    OK(be->supports_op(be, SW_OP_ATTENTION) && !be->supports_op(be, SW_OP_COUNT), "supports_op");
    test_matmul();
    test_embedding();
    test_rmsnorm();
    test_rope();
    test_attention();
    test_swiglu();
    test_geglu();
    test_ce_cap();
    test_elementwise();
    test_cross_entropy();
    test_determinism();
    test_optimizer_ops();
    test_services();
    test_options();
    sw_backend_close(be);
    return tap_done();
}
