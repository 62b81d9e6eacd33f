/* test_cuda_kernels — every op of the CUDA backend against the CPU backend (the reference), on
 * fresh random inputs (seed from the clock unless SW_TEST_SEED is set; printed), several shapes
 * each including odd ones (1, 3×5×7, 37×29×61, head_dim 8/16/24/64/128, empty and length-1
 * segments, fully padded rows). Runs only on a machine with a GPU (make test-cuda).
 *
 * Error bound, per tensor: rel(a, b) = max|a − b| / max(max|b|, 1e-6).
 *   fp32 GEMM mode (the default): ≤ 2e-5 for every op (float32 with another summation order);
 *   tf32 mode: ≤ 5e-3 (10-bit mantissa products); bf16 mode: ≤ 3e-2 (8-bit mantissa operands);
 *   fp16 mode (GEMM, CE): ≤ 1e-2 (10-bit mantissa operands; beyond ±65504 they become ±inf,
 *   checked too);
 *   attention in the bf16 and fp16 modes (tensor-core kernels): ≤ 5e-2;
 *   dropout, embedding, add and axpy: bit-identical; AdamW: ≤ 1e-6 (written to round as sw_optim).
 * Also: outputs written with beta 0 over NaN-poisoned buffers (never read), persistent memory
 * zeroed, the scratch arena's chunk growth and consolidation, device-side data errors (bad token
 * id, position, target, cu_seqlens) reported as SW_ERANGE / SW_EINVAL naming the row, the
 * backend usable afterwards, run-to-run determinism (bit-identical) of the reductions, and the
 * backend's other members through the public interface (precision set/get, memory figures,
 * device information; cross-entropy budgets as options of extra backends). */
#include "sw_err.h"
#include "sw_kernels.h"
#include "sw_optim.h"
#include "fixtures.h"
#include "tap.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOL_F32 2e-5

static struct sw_backend *cpu, *gpu;
static uint64_t rng_state;

static double urand(void) { /* uniform [-1, 1) */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / (double)(1ull << 53) * 2.0 - 1.0;
}

static float *frand(int64_t n, double scale) {
    float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(urand() * scale);
    return x;
}

static float *fnan(int64_t n) {
    float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        x[i] = NAN;
    return x;
}

static float *fcopy(const float *x, int64_t n) {
    float *y = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    memcpy(y, x, (size_t)n * sizeof(float));
    return y;
}

/* Device copy of a host array (bytes). */
static void *dev(const void *h, size_t bytes) {
    void *d = gpu->alloc(gpu, bytes);
    if (d && bytes && gpu->upload(gpu, d, h, bytes) < 0) DIAG("upload: %s", sw_err_msg());
    return d;
}
#define DEVF(h, n) ((float *)dev((h), (size_t)(n) * sizeof(float)))
#define DEVI(h, n) ((int32_t *)dev((h), (size_t)(n) * sizeof(int32_t)))

/* Host copy of a device float array (caller frees). */
static float *host(const float *d, int64_t n) {
    float *h = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (gpu->download(gpu, h, d, (size_t)n * sizeof(float)) < 0) {
        DIAG("download: %s", sw_err_msg());
        for (int64_t i = 0; i < n; i++)
            h[i] = NAN;
    }
    return h;
}

/* Compare device array d with the reference ref; free the host copy. */
static void cmp(const float *d, const float *ref, int64_t n, double tol, const char *what) {
    float *h = host(d, n);
    double e = sw_test_rel_err(h, ref, n);
    if (!OK(e <= tol, "%s (rel %.2g)", what, e)) DIAG("relative error %.3g > %.1g", e, tol);
    free(h);
}

static int bits_equal(const float *d1, const float *d2, int64_t n) {
    float *a = host(d1, n), *b = host(d2, n);
    int eq = memcmp(a, b, (size_t)n * sizeof(float)) == 0;
    free(a), free(b);
    return eq;
}

/* ---- memory ---------------------------------------------------------------------------------- */

static void test_memory(void) {
    size_t n = 1000003;
    float *d = gpu->alloc(gpu, n * sizeof(float));
    float *h = host(d, (int64_t)n);
    int zero = 1;
    for (size_t i = 0; i < n; i++)
        zero &= h[i] == 0.0f;
    OK(d && zero, "alloc: %zu floats zero-filled", n);
    free(h);
    float *x = frand(1000, 1);
    OK(gpu->upload(gpu, d, x, 4000) == 0 && gpu->copy(gpu, d + 5000, d, 4000) == 0,
       "upload + device copy");
    h = host(d + 5000, 1000);
    OK(memcmp(h, x, 4000) == 0, "copy round trip is exact");
    free(h);
    OK(gpu->memset0(gpu, d + 5000, 4000) == 0, "memset0");
    h = host(d + 5000, 1000);
    OK(h[0] == 0.0f && h[999] == 0.0f, "memset0 zeroes");
    free(h), free(x);
    gpu->free(gpu, d);
    gpu->free(gpu, NULL);

    /* Scratch: spill over the first 64 MiB chunk, use every block, reset, again. */
    gpu->scratch_reset(gpu);
    size_t sizes[] = {1000, 40u << 20, 50u << 20, 3, 100u << 20};
    float *blk[5];
    int ok = 1;
    for (int i = 0; i < 5; i++) {
        blk[i] = gpu->scratch_alloc(gpu, sizes[i]);
        ok &= blk[i] != NULL && ((uintptr_t)blk[i] % 64) == 0;
        if (blk[i]) ok &= gpu->memset0(gpu, blk[i], sizes[i]) == 0;
    }
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++) /* disjoint */
            ok &= (char *)blk[i] + sizes[i] <= (char *)blk[j] ||
                  (char *)blk[j] + sizes[j] <= (char *)blk[i];
    size_t want = 0;
    for (int i = 0; i < 5; i++)
        want += sizes[i];
    OK(ok && gpu->sync(gpu) == 0, "scratch: 5 blocks over several chunks, aligned and disjoint");
    OK(gpu->scratch_peak(gpu) >= want, "scratch_peak %zu >= %zu", gpu->scratch_peak(gpu), want);
    gpu->scratch_reset(gpu);
    float *a = gpu->scratch_alloc(gpu, 150u << 20), *b = gpu->scratch_alloc(gpu, 40u << 20);
    OK(a && b && (char *)b == (char *)a + (150u << 20) && gpu->memset0(gpu, b, 40u << 20) == 0 &&
           gpu->sync(gpu) == 0,
       "after reset the chunks are consolidated into one (contiguous bump allocation)");
    gpu->scratch_reset(gpu);
}

/* ---- matmul ---------------------------------------------------------------------------------- */

static void test_matmul_shape(int64_t M, int64_t N, int64_t K, int bias, float alpha, float beta,
                              double tol, const char *mode) {
    float *x = frand(M * K, 1), *w = frand(N * K, 1), *b = frand(N, 1);
    float *y0 = beta == 0.0f ? fnan(M * N) : frand(M * N, 1);
    float *dy = frand(M * N, 1), *dx0 = beta == 0.0f ? fnan(M * K) : frand(M * K, 1);
    float *dw0 = frand(N * K, 1), *db0 = frand(N, 1);
    float *dx_ = DEVF(x, M * K), *dw_ = DEVF(w, N * K), *db_ = DEVF(b, N), *dy_ = DEVF(y0, M * N);
    float *ddy = DEVF(dy, M * N), *ddx = DEVF(dx0, M * K), *ddw = DEVF(dw0, N * K);
    float *ddb = DEVF(db0, N);
    float *y = fcopy(y0, M * N), *dxr = fcopy(dx0, M * K), *dwr = fcopy(dw0, N * K);
    float *dbr = fcopy(db0, N);
    char what[160];
    snprintf(what, sizeof what, "%s matmul_fwd %lldx%lldx%lld%s a=%g b=%g", mode, (long long)M,
             (long long)N, (long long)K, bias ? " +bias" : "", alpha, beta);
    int rc = cpu->matmul_fwd(cpu, y, x, w, bias ? b : NULL, M, N, K, alpha, beta);
    rc |= gpu->matmul_fwd(gpu, dy_, dx_, dw_, bias ? db_ : NULL, M, N, K, alpha, beta);
    if (OK(rc == 0, "%s runs (%s)", what, rc ? sw_err_msg() : "ok")) cmp(dy_, y, M * N, tol, what);

    snprintf(what, sizeof what, "%s matmul_bwd_dx %lldx%lldx%lld b=%g", mode, (long long)M,
             (long long)N, (long long)K, beta);
    rc = cpu->matmul_bwd_dx(cpu, dxr, dy, w, M, N, K, alpha, beta);
    rc |= gpu->matmul_bwd_dx(gpu, ddx, ddy, dw_, M, N, K, alpha, beta);
    if (OK(rc == 0, "%s runs", what)) cmp(ddx, dxr, M * K, tol, what);

    snprintf(what, sizeof what, "%s matmul_bwd_dw %lldx%lldx%lld (accumulate)", mode, (long long)M,
             (long long)N, (long long)K);
    rc = cpu->matmul_bwd_dw(cpu, dwr, dy, x, M, N, K, alpha, 1.0f);
    rc |= gpu->matmul_bwd_dw(gpu, ddw, ddy, dx_, M, N, K, alpha, 1.0f);
    if (OK(rc == 0, "%s runs", what)) cmp(ddw, dwr, N * K, tol, what);

    if (strcmp(mode, "fp32") == 0) {
        snprintf(what, sizeof what, "bias_bwd %lldx%lld b=%g", (long long)M, (long long)N, beta);
        rc = cpu->bias_bwd(cpu, dbr, dy, M, N, beta);
        rc |= gpu->bias_bwd(gpu, ddb, ddy, M, N, beta);
        if (OK(rc == 0, "%s runs", what)) cmp(ddb, dbr, N, TOL_F32, what);
    }
    float *ptrs[] = {dx_, dw_, db_, dy_, ddy, ddx, ddw, ddb};
    for (int i = 0; i < 8; i++)
        gpu->free(gpu, ptrs[i]);
    free(x), free(w), free(b), free(y0), free(dy), free(dx0), free(dw0), free(db0);
    free(y), free(dxr), free(dwr), free(dbr);
}

/* fp16's range: an operand beyond ±65504 becomes ±inf (what sw-train's loss scaling detects),
 * and only the outputs it feeds are non-finite; bf16 (range ~3e38) stays finite. */
static void test_matmul_fp16_range(void) {
    enum { M = 3, N = 4, K = 8 };
    float *x = frand(M * K, 1), *w = frand(N * K, 1), y[M * N];
    x[K + 2] = 7e4f; /* row 1 */
    float *d_x = DEVF(x, M * K), *d_w = DEVF(w, N * K), *d_y = DEVF(y, M * N);
    for (int m = 0; m < 2; m++) {
        gpu->set_precision(gpu, m ? SW_MATMUL_BF16 : SW_MATMUL_FP16);
        int rc = gpu->matmul_fwd(gpu, d_y, d_x, d_w, NULL, M, N, K, 1.0f, 0.0f);
        float *h = host(d_y, M * N);
        int row1_bad = 1, others_ok = 1;
        for (int i = 0; i < M * N; i++) {
            if (i / N == 1)
                row1_bad &= !isfinite(h[i]);
            else
                others_ok &= isfinite(h[i]);
        }
        if (m == 0)
            OK(rc == 0 && row1_bad && others_ok,
               "fp16: an operand of 7e4 makes its output row ±inf/NaN, the other rows finite");
        else
            OK(rc == 0 && !row1_bad && others_ok, "bf16: the same operand stays finite");
        free(h);
    }
    gpu->free(gpu, d_x), gpu->free(gpu, d_w), gpu->free(gpu, d_y);
    free(x), free(w);
}

static void test_matmul(void) {
    const int64_t shapes[][3] = {{1, 1, 1},      {3, 5, 7},       {37, 29, 61},
                                 {128, 256, 64}, {257, 300, 129}, {64, 1, 896}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        test_matmul_shape(shapes[s][0], shapes[s][1], shapes[s][2], 0, 1.0f, 0.0f, TOL_F32, "fp32");
        test_matmul_shape(shapes[s][0], shapes[s][1], shapes[s][2], 1, 0.5f, 1.0f, TOL_F32, "fp32");
    }
    test_matmul_shape(33, 17, 9, 1, 1.0f, 0.0f, TOL_F32, "fp32");
    test_matmul_shape(5, 4, 0, 1, 1.0f, 0.5f, TOL_F32, "fp32"); /* K = 0: bias + beta·y only */
    /* fp16: 10-bit mantissa operands like tf32, rounded once per operand: 1e-2. */
    const struct {
        enum sw_matmul_precision prec;
        const char *name;
        double tol;
    } modes[] = {{SW_MATMUL_TF32, "tf32", 5e-3},
                 {SW_MATMUL_BF16, "bf16", 3e-2},
                 {SW_MATMUL_BF16_INLINE, "bf16i", 3e-2},
                 {SW_MATMUL_FP16, "fp16", 1e-2}};
    for (int m = 0; m < (int)(sizeof modes / sizeof modes[0]); m++) {
        gpu->set_precision(gpu, modes[m].prec);
        test_matmul_shape(37, 29, 61, 1, 1.0f, 0.0f, modes[m].tol, modes[m].name);
        test_matmul_shape(257, 300, 129, 0, 1.0f, 1.0f, modes[m].tol, modes[m].name);
        test_matmul_shape(512, 896, 896, 1, 1.0f, 0.0f, modes[m].tol, modes[m].name);
    }
    test_matmul_fp16_range();
    enum sw_matmul_precision p = SW_MATMUL_FP32;
    int names = 1;
    const char *nm[] = {"fp32", "tf32", "bf16", "bf16i", "fp16"};
    for (int i = 0; i < 5; i++) {
        names &= sw_matmul_precision_parse(nm[i], &p) == 0 && (int)p == i &&
                 strcmp(sw_matmul_precision_name(p), nm[i]) == 0 &&
                 gpu->set_precision(gpu, p) == 0 && gpu->get_precision(gpu) == p;
    }
    gpu->set_precision(gpu, SW_MATMUL_FP32);
    OK(names && sw_matmul_precision_parse("fp8", &p) == SW_EINVAL &&
           gpu->set_precision(gpu, (enum sw_matmul_precision)5) == SW_EINVAL &&
           gpu->get_precision(gpu) == SW_MATMUL_FP32 &&
           cpu->set_precision(cpu, SW_MATMUL_FP16) == SW_EUNSUPPORTED,
       "matmul precision names parse and name back, set and get on the GPU (fp16 included); "
       "bad modes refused, the CPU has fp32 only");
}

/* ---- embedding ------------------------------------------------------------------------------- */

static void test_embedding_shape(int64_t N, int64_t V, int64_t C) {
    int32_t *ids = malloc((size_t)N * sizeof(int32_t));
    for (int64_t n = 0; n < N; n++)
        ids[n] = (int32_t)((urand() + 1) * 0.5 * V) % (int32_t)V;
    float *table = frand(V * C, 1), *dout = frand(N * C, 1), *dt0 = frand(V * C, 1);
    float *out = malloc((size_t)(N * C) * sizeof(float)), *dt = fcopy(dt0, V * C);
    int32_t *d_ids = DEVI(ids, N);
    float *d_table = DEVF(table, V * C), *d_out = DEVF(out, N * C), *d_dout = DEVF(dout, N * C);
    float *d_dt = DEVF(dt0, V * C), *d_dt2 = DEVF(dt0, V * C);
    int rc = cpu->embedding_fwd(cpu, out, ids, table, N, V, C);
    rc |= gpu->embedding_fwd(gpu, d_out, d_ids, d_table, N, V, C);
    float *h = host(d_out, N * C);
    OK(rc == 0 && memcmp(h, out, (size_t)(N * C) * sizeof(float)) == 0,
       "embedding_fwd N=%lld V=%lld C=%lld bit-identical", (long long)N, (long long)V,
       (long long)C);
    free(h);
    rc = cpu->embedding_bwd(cpu, dt, dout, ids, N, V, C);
    rc |= gpu->embedding_bwd(gpu, d_dt, d_dout, d_ids, N, V, C);
    rc |= gpu->embedding_bwd(gpu, d_dt2, d_dout, d_ids, N, V, C);
    char what[96];
    snprintf(what, sizeof what, "embedding_bwd N=%lld V=%lld C=%lld (repeated ids)", (long long)N,
             (long long)V, (long long)C);
    if (OK(rc == 0, "%s runs", what)) {
        /* Same order of additions as the CPU: exact. */
        cmp(d_dt, dt, V * C, 0.0, what);
        OK(bits_equal(d_dt, d_dt2, V * C), "embedding_bwd deterministic");
    }
    gpu->free(gpu, d_ids), gpu->free(gpu, d_table), gpu->free(gpu, d_out);
    gpu->free(gpu, d_dout), gpu->free(gpu, d_dt), gpu->free(gpu, d_dt2);
    free(ids), free(table), free(dout), free(dt0), free(out), free(dt);
}

/* ---- rmsnorm --------------------------------------------------------------------------------- */

static void test_rmsnorm_shape(int64_t N, int64_t C, float beta, int with_dw) {
    float *x = frand(N * C, 2), *w = frand(C, 1), *dout = frand(N * C, 1);
    float *dx0 = beta == 0.0f ? fnan(N * C) : frand(N * C, 1), *dw0 = frand(C, 1);
    float *out = malloc((size_t)(N * C) * sizeof(float)), *rstd = malloc((size_t)N * sizeof(float));
    float *dx = fcopy(dx0, N * C), *dw = fcopy(dw0, C);
    float *d_x = DEVF(x, N * C), *d_w = DEVF(w, C), *d_dout = DEVF(dout, N * C);
    float *d_out = DEVF(dx0, N * C), *d_rstd = DEVF(x, N), *d_dx = DEVF(dx0, N * C);
    float *d_dw = DEVF(dw0, C), *d_dw2 = DEVF(dw0, C);
    char what[96];
    snprintf(what, sizeof what, "rmsnorm N=%lld C=%lld beta=%g%s", (long long)N, (long long)C, beta,
             with_dw ? "" : " (no dw)");
    int rc = cpu->rmsnorm_fwd(cpu, out, rstd, x, w, N, C, 1e-6f);
    rc |= gpu->rmsnorm_fwd(gpu, d_out, d_rstd, d_x, d_w, N, C, 1e-6f);
    if (OK(rc == 0, "%s fwd runs", what)) {
        cmp(d_out, out, N * C, TOL_F32, "rmsnorm_fwd out");
        cmp(d_rstd, rstd, N, TOL_F32, "rmsnorm_fwd rstd");
    }
    rc = cpu->rmsnorm_bwd(cpu, dx, with_dw ? dw : NULL, dout, x, w, rstd, N, C, beta);
    rc |= gpu->rmsnorm_bwd(gpu, d_dx, with_dw ? d_dw : NULL, d_dout, d_x, d_w, d_rstd, N, C, beta);
    if (OK(rc == 0, "%s bwd runs", what)) {
        cmp(d_dx, dx, N * C, TOL_F32, "rmsnorm_bwd dx");
        cmp(d_dw, dw, C, TOL_F32, with_dw ? "rmsnorm_bwd dw" : "rmsnorm_bwd leaves dw alone");
        if (with_dw) {
            gpu->rmsnorm_bwd(gpu, d_dx, d_dw2, d_dout, d_x, d_w, d_rstd, N, C, 0.0f);
            OK(bits_equal(d_dw, d_dw2, C), "rmsnorm dw deterministic (two-stage column sum)");
        }
    }
    float *ptrs[] = {d_x, d_w, d_dout, d_out, d_rstd, d_dx, d_dw, d_dw2};
    for (int i = 0; i < 8; i++)
        gpu->free(gpu, ptrs[i]);
    free(x), free(w), free(dout), free(dx0), free(dw0), free(out), free(rstd), free(dx), free(dw);
}

/* ---- rope ------------------------------------------------------------------------------------ */

static void test_rope_shape(int64_t N, int64_t H, int64_t D, int64_t P) {
    struct sw_rope_params rp = {.theta = 10000.0};
    float *cs = malloc((size_t)(P * D / 2) * sizeof(float)), *sn = malloc((size_t)(P * D / 2) * 4);
    sw_rope_tables(&rp, P, D, cs, sn);
    int32_t *pos = malloc((size_t)N * sizeof(int32_t));
    for (int64_t n = 0; n < N; n++)
        pos[n] = (int32_t)((urand() + 1) * 0.5 * P) % (int32_t)P;
    float *x = frand(N * H * D, 1), *g = frand(N * H * D, 1);
    float *d_x = DEVF(x, N * H * D), *d_g = DEVF(g, N * H * D);
    float *d_c = DEVF(cs, P * D / 2), *d_s = DEVF(sn, P * D / 2);
    int32_t *d_pos = DEVI(pos, N);
    int rc = cpu->rope_fwd(cpu, x, pos, cs, sn, N, H, D, P);
    rc |= gpu->rope_fwd(gpu, d_x, d_pos, d_c, d_s, N, H, D, P);
    rc |= cpu->rope_bwd(cpu, g, pos, cs, sn, N, H, D, P);
    rc |= gpu->rope_bwd(gpu, d_g, d_pos, d_c, d_s, N, H, D, P);
    char what[80];
    snprintf(what, sizeof what, "rope N=%lld H=%lld D=%lld", (long long)N, (long long)H,
             (long long)D);
    if (OK(rc == 0, "%s runs", what)) {
        cmp(d_x, x, N * H * D, TOL_F32, "rope_fwd");
        cmp(d_g, g, N * H * D, TOL_F32, "rope_bwd");
    }
    gpu->free(gpu, d_x), gpu->free(gpu, d_g), gpu->free(gpu, d_c), gpu->free(gpu, d_s);
    gpu->free(gpu, d_pos);
    free(cs), free(sn), free(pos), free(x), free(g);
}

/* ---- attention ------------------------------------------------------------------------------- */

static double att_tol = TOL_F32; /* fp32 mode; bf16 mode (tensor-core kernels) is looser */

static void test_attention_case(const char *name, const int *lens, const int *kvl, int nseq,
                                int64_t Hq, int64_t Hk, int64_t D, int give_max_len) {
    int32_t *cu = malloc((size_t)(nseq + 1) * sizeof(int32_t)), *kv = NULL;
    cu[0] = 0;
    int64_t max_len = 0;
    for (int s = 0; s < nseq; s++) {
        cu[s + 1] = cu[s] + lens[s];
        if (lens[s] > max_len) max_len = lens[s];
    }
    if (kvl) {
        kv = malloc((size_t)nseq * sizeof(int32_t));
        for (int s = 0; s < nseq; s++)
            kv[s] = kvl[s];
    }
    int64_t N = cu[nseq], nq = N * Hq * D, nk = N * Hk * D;
    float scale = 1.0f / sqrtf((float)D);
    float *q = frand(nq, 1.5), *k = frand(nk, 1.5), *v = frand(nk, 1), *dout = frand(nq, 1);
    float *out = malloc((size_t)(nq ? nq : 1) * 4), *lse = malloc((size_t)(N * Hq + 1) * 4);
    float *dq = malloc((size_t)(nq ? nq : 1) * 4), *dk = malloc((size_t)(nk ? nk : 1) * 4);
    float *dv = malloc((size_t)(nk ? nk : 1) * 4);
    float *pn = fnan(nq), *pk = fnan(nk);
    float *d_q = DEVF(q, nq), *d_k = DEVF(k, nk), *d_v = DEVF(v, nk), *d_do = DEVF(dout, nq);
    float *d_out = DEVF(pn, nq), *d_lse = DEVF(pn, N * Hq), *d_dq = DEVF(pn, nq);
    float *d_dk = DEVF(pk, nk), *d_dv = DEVF(pk, nk), *d_dq2 = DEVF(pn, nq), *d_dk2 = DEVF(pk, nk);
    int32_t *d_cu = DEVI(cu, nseq + 1), *d_kv = kv ? DEVI(kv, nseq) : NULL;
    int64_t ml = give_max_len ? max_len : 0;
    char what[160];
    snprintf(what, sizeof what, "attention %s (N=%lld Hq=%lld Hk=%lld D=%lld%s)", name,
             (long long)N, (long long)Hq, (long long)Hk, (long long)D,
             give_max_len ? "" : ", max_len 0");
    int rc = cpu->attention_fwd(cpu, out, lse, q, k, v, cu, kv, nseq, max_len, N, Hq, Hk, D, scale);
    int rg = gpu->attention_fwd(gpu, d_out, d_lse, d_q, d_k, d_v, d_cu, d_kv, nseq, ml, N, Hq, Hk,
                                D, scale);
    if (OK(rc == 0 && rg == 0, "%s fwd runs (%s)", what, rg ? sw_err_msg() : "ok")) {
        cmp(d_out, out, nq, att_tol, "attention_fwd out");
        cmp(d_lse, lse, N * Hq, att_tol, "attention_fwd lse");
    }
    rc = cpu->attention_bwd(cpu, dq, dk, dv, dout, q, k, v, out, lse, cu, kv, nseq, max_len, N, Hq,
                            Hk, D, scale);
    rg = gpu->attention_bwd(gpu, d_dq, d_dk, d_dv, d_do, d_q, d_k, d_v, d_out, d_lse, d_cu, d_kv,
                            nseq, ml, N, Hq, Hk, D, scale);
    if (OK(rc == 0 && rg == 0, "%s bwd runs (%s)", what, rg ? sw_err_msg() : "ok")) {
        cmp(d_dq, dq, nq, att_tol, "attention_bwd dq");
        cmp(d_dk, dk, nk, att_tol, "attention_bwd dk");
        cmp(d_dv, dv, nk, att_tol, "attention_bwd dv");
        gpu->attention_bwd(gpu, d_dq2, d_dk2, d_dv, d_do, d_q, d_k, d_v, d_out, d_lse, d_cu, d_kv,
                           nseq, ml, N, Hq, Hk, D, scale);
        OK(bits_equal(d_dq, d_dq2, nq) && bits_equal(d_dk, d_dk2, nk),
           "attention_bwd deterministic");
    }
    float *ptrs[] = {d_q, d_k, d_v, d_do, d_out, d_lse, d_dq, d_dk, d_dv, d_dq2, d_dk2};
    for (int i = 0; i < 11; i++)
        gpu->free(gpu, ptrs[i]);
    gpu->free(gpu, d_cu), gpu->free(gpu, d_kv);
    free(cu), free(kv), free(q), free(k), free(v), free(dout), free(out), free(lse), free(dq);
    free(dk), free(dv), free(pn), free(pk);
}

static void test_attention(void) {
    int l1[] = {5};
    test_attention_case("one short segment", l1, NULL, 1, 4, 2, 8, 1);
    int l2[] = {70, 1, 130, 0, 64};
    test_attention_case("packed, empty and 1-token segments", l2, NULL, 5, 4, 1, 16, 1);
    test_attention_case("packed, max_len read back", l2, NULL, 5, 4, 1, 16, 0);
    int l3[] = {100, 100, 100}, k3[] = {73, 0, 100};
    test_attention_case("padded (kv_len 73, 0, 100)", l3, k3, 3, 4, 2, 32, 1);
    int l4[] = {200, 56};
    test_attention_case("Qwen2.5-0.5B heads", l4, NULL, 2, 14, 2, 64, 1);
    int l5[] = {150};
    test_attention_case("head_dim 128", l5, NULL, 1, 2, 2, 128, 1);
    int l6[] = {67, 3}, k6[] = {40, 1};
    test_attention_case("head_dim 24, padded", l6, k6, 2, 3, 3, 24, 1);
    int l7[] = {1024};
    test_attention_case("one 1024-token sequence", l7, NULL, 1, 2, 1, 64, 1);
    /* 16-bit modes: the tensor-core kernels (bf16 / fp16 operands, float32 softmax and
     * accumulators; attention_mma.cu). */
    static const struct {
        enum sw_matmul_precision prec;
        const char *name;
    } modes[] = {{SW_MATMUL_BF16, "bf16"}, {SW_MATMUL_FP16, "fp16"}};
    int l8[] = {333, 64, 129}, l9[] = {300, 17};
    for (int m = 0; m < 2; m++) {
        char nm[9][96];
        const char *cases[] = {"one short segment",
                               "packed, empty and 1-token segments",
                               "padded (kv_len 73, 0, 100)",
                               "Qwen2.5-0.5B heads",
                               "head_dim 128",
                               "head_dim 24, padded",
                               "one 1024-token sequence",
                               "GQA 7, tiles 6+1+3",
                               "head_dim 128, GQA 4, 5 tiles"};
        for (int i = 0; i < 9; i++)
            snprintf(nm[i], sizeof nm[0], "%s: %s", modes[m].name, cases[i]);
        gpu->set_precision(gpu, modes[m].prec);
        att_tol = 5e-2;
        test_attention_case(nm[0], l1, NULL, 1, 4, 2, 8, 1);
        test_attention_case(nm[1], l2, NULL, 5, 4, 1, 16, 1);
        test_attention_case(nm[2], l3, k3, 3, 4, 2, 32, 1);
        test_attention_case(nm[3], l4, NULL, 2, 14, 2, 64, 1);
        test_attention_case(nm[4], l5, NULL, 1, 2, 2, 128, 1);
        test_attention_case(nm[5], l6, k6, 2, 3, 3, 24, 1);
        test_attention_case(nm[6], l7, NULL, 1, 2, 1, 64, 1);
        test_attention_case(nm[7], l8, NULL, 3, 14, 2, 64, 1);
        test_attention_case(nm[8], l9, NULL, 2, 8, 2, 128, 1);
    }
    att_tol = TOL_F32;
    gpu->set_precision(gpu, SW_MATMUL_FP32);
}

/* ---- elementwise ------------------------------------------------------------------------------
 */

static void test_elementwise(int64_t n) {
    float *a = frand(n, 4), *b = frand(n, 4), *g = frand(n, 1);
    float *o = malloc((size_t)n * 4), *dg = malloc((size_t)n * 4), *du = malloc((size_t)n * 4);
    float *d_a = DEVF(a, n), *d_b = DEVF(b, n), *d_g = DEVF(g, n);
    float *pn = fnan(n), *d_o = DEVF(pn, n), *d_dg = DEVF(pn, n), *d_du = DEVF(pn, n);
    char what[64];
    snprintf(what, sizeof what, "n=%lld", (long long)n);
    int rc = cpu->swiglu_fwd(cpu, o, a, b, n) | gpu->swiglu_fwd(gpu, d_o, d_a, d_b, n);
    if (OK(rc == 0, "swiglu_fwd %s runs", what)) cmp(d_o, o, n, TOL_F32, "swiglu_fwd");
    rc = cpu->swiglu_bwd(cpu, dg, du, g, a, b, n) |
         gpu->swiglu_bwd(gpu, d_dg, d_du, d_g, d_a, d_b, n);
    if (OK(rc == 0, "swiglu_bwd %s runs", what)) {
        cmp(d_dg, dg, n, TOL_F32, "swiglu_bwd dgate");
        cmp(d_du, du, n, TOL_F32, "swiglu_bwd dup");
    }
    rc = cpu->add(cpu, o, a, b, n) | gpu->add(gpu, d_o, d_a, d_b, n);
    if (OK(rc == 0, "add %s runs", what)) cmp(d_o, o, n, 0.0, "add exact");
    rc = cpu->add(cpu, a, a, b, n) | gpu->add(gpu, d_a, d_a, d_b, n); /* out aliases a */
    if (OK(rc == 0, "add in place %s", what)) cmp(d_a, a, n, 0.0, "add in place exact");
    rc = cpu->axpy(cpu, b, g, -0.75f, n) | gpu->axpy(gpu, d_b, d_g, -0.75f, n);
    if (OK(rc == 0, "axpy %s runs", what)) cmp(d_b, b, n, 0.0, "axpy exact");
    for (int s = 0; s < 2; s++) {
        float p = s ? 0.9f : 0.1f;
        uint64_t seed = 12345u + (uint64_t)s * 777u;
        rc = cpu->dropout_fwd(cpu, o, a, n, p, seed) | gpu->dropout_fwd(gpu, d_o, d_a, n, p, seed);
        rc |=
            cpu->dropout_bwd(cpu, dg, g, n, p, seed) | gpu->dropout_bwd(gpu, d_dg, d_g, n, p, seed);
        if (OK(rc == 0, "dropout p=%.1f %s runs", p, what)) {
            cmp(d_o, o, n, 0.0, "dropout_fwd: same mask, bit-identical");
            cmp(d_dg, dg, n, 0.0, "dropout_bwd: same mask, bit-identical");
        }
    }
    float *ptrs[] = {d_a, d_b, d_g, d_o, d_dg, d_du};
    for (int i = 0; i < 6; i++)
        gpu->free(gpu, ptrs[i]);
    free(a), free(b), free(g), free(o), free(dg), free(du), free(pn);
}

/* ---- cross-entropy ----------------------------------------------------------------------------
 */

static void test_ce_shape(int64_t N, int64_t V, int64_t C, int64_t chunk, float beta, int with_dw,
                          double tol, const char *mode) {
    float *h = frand(N * C, 1), *w = frand(V * C, 0.5);
    int32_t *t = malloc((size_t)N * sizeof(int32_t));
    for (int64_t n = 0; n < N; n++)
        t[n] = (n % 5 == 2) ? SW_IGNORE_INDEX : (int32_t)((urand() + 1) * 0.5 * V) % (int32_t)V;
    float *loss = malloc((size_t)N * 4), *lse = malloc((size_t)N * 4);
    float *dh0 = beta == 0.0f ? fnan(N * C) : frand(N * C, 1), *dw0 = frand(V * C, 1);
    float *dh = fcopy(dh0, N * C), *dw = fcopy(dw0, V * C);
    float *pn = fnan(N);
    float *d_h = DEVF(h, N * C), *d_w = DEVF(w, V * C), *d_loss = DEVF(pn, N), *d_lse = DEVF(pn, N);
    float *d_dh = DEVF(dh0, N * C), *d_dw = DEVF(dw0, V * C);
    int32_t *d_t = DEVI(t, N);
    char what[128];
    snprintf(what, sizeof what, "%s ce_fused N=%lld V=%lld C=%lld beta=%g%s", mode, (long long)N,
             (long long)V, (long long)C, beta, with_dw ? "" : " (no dw)");
    int rc = cpu->ce_fused_fwd(cpu, loss, lse, h, w, t, N, V, C, chunk);
    int rg = gpu->ce_fused_fwd(gpu, d_loss, d_lse, d_h, d_w, d_t, N, V, C, chunk);
    if (OK(rc == 0 && rg == 0, "%s fwd runs (%s)", what, rg ? sw_err_msg() : "ok")) {
        cmp(d_loss, loss, N, tol, "ce_fused_fwd loss");
        cmp(d_lse, lse, N, tol, "ce_fused_fwd lse");
    }
    rc = cpu->ce_fused_bwd(cpu, dh, with_dw ? dw : NULL, h, w, t, lse, NULL, N, V, C, chunk, 0.37f,
                           beta);
    rg = gpu->ce_fused_bwd(gpu, d_dh, with_dw ? d_dw : NULL, d_h, d_w, d_t, d_lse, NULL, N, V, C,
                           chunk, 0.37f, beta);
    if (OK(rc == 0 && rg == 0, "%s bwd runs (%s)", what, rg ? sw_err_msg() : "ok")) {
        cmp(d_dh, dh, N * C, tol, "ce_fused_bwd dh");
        cmp(d_dw, dw, V * C, tol, with_dw ? "ce_fused_bwd dw" : "ce_fused_bwd leaves dw alone");
    }
    /* Per-row weights (preference losses, sw_model_backward_weighted): a fresh forward (in the
     * 16-bit modes it keeps its gradient, which a weighted backward must not use) and the same
     * comparison with row_scale. */
    float *rs = frand(N, 2), *d_rs = DEVF(rs, N);
    float *dh2 = fcopy(dh0, N * C), *dw2 = fcopy(dw0, V * C);
    float *d_dh2 = DEVF(dh0, N * C), *d_dw2 = DEVF(dw0, V * C);
    rc = cpu->ce_fused_fwd(cpu, loss, lse, h, w, t, N, V, C, chunk);
    rg = gpu->ce_fused_fwd(gpu, d_loss, d_lse, d_h, d_w, d_t, N, V, C, chunk);
    if (rc == 0 && rg == 0) {
        rc = cpu->ce_fused_bwd(cpu, dh2, with_dw ? dw2 : NULL, h, w, t, lse, rs, N, V, C, chunk,
                               0.37f, beta);
        rg = gpu->ce_fused_bwd(gpu, d_dh2, with_dw ? d_dw2 : NULL, d_h, d_w, d_t, d_lse, d_rs, N, V,
                               C, chunk, 0.37f, beta);
    }
    if (OK(rc == 0 && rg == 0, "%s bwd with row weights runs (%s)", what,
           rg ? sw_err_msg() : "ok")) {
        cmp(d_dh2, dh2, N * C, tol, "ce_fused_bwd dh, row weights");
        cmp(d_dw2, dw2, V * C, tol, "ce_fused_bwd dw, row weights");
    }
    gpu->free(gpu, d_rs), gpu->free(gpu, d_dh2), gpu->free(gpu, d_dw2);
    free(rs), free(dh2), free(dw2);
    if (strcmp(mode, "fp32") == 0) { /* the full-logits path on the same rows */
        float *lg = malloc((size_t)(N * V) * 4);
        cpu->matmul_fwd(cpu, lg, h, w, NULL, N, V, C, 1.0f, 0.0f);
        float *d_lg = DEVF(lg, N * V);
        rc = cpu->ce_logits_fwd(cpu, loss, lse, lg, t, N, V);
        rg = gpu->ce_logits_fwd(gpu, d_loss, d_lse, d_lg, d_t, N, V);
        if (OK(rc == 0 && rg == 0, "ce_logits_fwd N=%lld V=%lld runs", (long long)N,
               (long long)V)) {
            cmp(d_loss, loss, N, TOL_F32, "ce_logits_fwd loss");
            cmp(d_lse, lse, N, TOL_F32, "ce_logits_fwd lse (every row)");
        }
        gpu->free(gpu, d_lg);
        free(lg);
    }
    float *ptrs[] = {d_h, d_w, d_loss, d_lse, d_dh, d_dw};
    for (int i = 0; i < 6; i++)
        gpu->free(gpu, ptrs[i]);
    gpu->free(gpu, d_t);
    free(h), free(w), free(t), free(loss), free(lse), free(dh0), free(dw0), free(dh), free(dw);
    free(pn);
}

/* fp16: a loss gradient scaled past 65504 (a loss scale too large) overflows in the 16-bit
 * gradient the backward GEMMs read, so dh and dw turn non-finite — how sw-train's scaler sees
 * an overflow; with a scale of 1 they are finite. */
static void test_ce_fp16_overflow(void) {
    enum { N = 8, V = 50, C = 16 };
    float *h = frand(N * C, 1), *w = frand(V * C, 0.5), *z = calloc(V * C, 4);
    int32_t t[N];
    for (int n = 0; n < N; n++)
        t[n] = (n * 7) % V;
    float *d_h = DEVF(h, N * C), *d_w = DEVF(w, V * C), *d_dh = DEVF(z, N * C);
    float *d_dw = DEVF(z, V * C), *d_loss = DEVF(z, N), *d_lse = DEVF(z, N);
    int32_t *d_t = DEVI(t, N);
    int rc = gpu->ce_fused_fwd(gpu, d_loss, d_lse, d_h, d_w, d_t, N, V, C, 16);
    int finite[2] = {1, 1};
    const float scales[2] = {1.0f, 1e6f};
    for (int s = 0; s < 2 && rc == 0; s++) {
        rc = gpu->ce_fused_bwd(gpu, d_dh, d_dw, d_h, d_w, d_t, d_lse, NULL, N, V, C, 16, scales[s],
                               0.0f);
        float *a = host(d_dh, N * C), *b = host(d_dw, V * C);
        double sum = 0;
        for (int i = 0; i < N * C; i++)
            sum += a[i];
        for (int i = 0; i < V * C; i++)
            sum += b[i];
        finite[s] = isfinite(sum);
        free(a), free(b);
        gpu->memset0(gpu, d_dw, (size_t)V * C * 4);
    }
    OK(rc == 0 && finite[0] && !finite[1],
       "fp16 ce_fused_bwd: grad_scale 1 finite, 1e6 overflows to non-finite dh/dw (%s)",
       rc ? sw_err_msg() : "ok");
    float *ptrs[] = {d_h, d_w, d_dh, d_dw, d_loss, d_lse};
    for (int i = 0; i < 6; i++)
        gpu->free(gpu, ptrs[i]);
    gpu->free(gpu, d_t);
    free(h), free(w), free(z);
}

static void test_ce(void) {
    test_ce_shape(1, 1, 1, 16, 0.0f, 1, TOL_F32, "fp32");
    test_ce_shape(37, 101, 13, 16, 0.0f, 1, TOL_F32, "fp32");
    test_ce_shape(300, 1003, 64, 16, 1.0f, 0, TOL_F32, "fp32");
    /* Several chunks: a 1 MiB logits budget with V = 5000 gives 52-row chunks. The budgets are
     * backend options (SW_CUDA_CE_CHUNK_BYTES / SW_CUDA_CE_KEEP_BYTES), fixed at open: two more
     * backends stand in for gpu, one that keeps the 16-bit gradient from forward to backward
     * and one that recomputes it. */
    struct sw_backend *main_gpu = gpu, *chunked = NULL, *recompute = NULL;
    struct sw_backend_opts o;
    sw_backend_opts_init(&o);
    o.ce_chunk_bytes = (size_t)1 << 20;
    int rc = sw_backend_open_opts(SW_DEVICE_CUDA, &o, &chunked);
    o.ce_keep_bytes = 0;
    if (rc == 0) rc = sw_backend_open_opts(SW_DEVICE_CUDA, &o, &recompute);
    if (OK(rc == 0,
           "open CUDA backends with a 1 MiB cross-entropy chunk budget, keeping and "
           "recomputing the gradient (%s)",
           rc ? sw_err_msg() : "ok")) {
        gpu = chunked;
        test_ce_shape(301, 5000, 96, 16, 0.0f, 1, TOL_F32, "fp32");
        gpu->set_precision(gpu, SW_MATMUL_BF16);
        test_ce_shape(301, 5000, 96, 16, 1.0f, 1, 3e-2,
                      "bf16"); /* gradient kept from the forward */
        gpu = recompute;       /* ... and recomputed */
        gpu->set_precision(gpu, SW_MATMUL_BF16);
        test_ce_shape(301, 5000, 96, 16, 1.0f, 1, 3e-2, "bf16 recompute");
        gpu = chunked;
        gpu->set_precision(gpu, SW_MATMUL_FP16);
        test_ce_shape(301, 5000, 96, 16, 1.0f, 1, 1e-2, "fp16");
        test_ce_shape(37, 101, 13, 16, 0.0f, 0, 1e-2, "fp16");
        gpu = recompute; /* the overflow lands in the recomputed 16-bit g */
        gpu->set_precision(gpu, SW_MATMUL_FP16);
        test_ce_fp16_overflow();
    }
    gpu = main_gpu;
    sw_backend_close(chunked);
    sw_backend_close(recompute);
}

/* ---- AdamW ------------------------------------------------------------------------------------
 */

static void test_adamw(void) {
    int64_t n = 100003;
    float *p = frand(n, 1), *g = frand(n, 0.01);
    float *d_p = DEVF(p, n), *d_g = DEVF(g, n);
    float *d_m = gpu->alloc(gpu, (size_t)n * 4), *d_v = gpu->alloc(gpu, (size_t)n * 4);
    struct sw_optim_param op = {"w", p, g, n, 1};
    struct sw_adamw_config cfg = {0.9, 0.999, 1e-8, 0.1};
    struct sw_adamw *o = NULL;
    int rc = sw_adamw_new(&cfg, &op, 1, &o);
    for (int s = 1; s <= 3 && rc == 0; s++) {
        rc = sw_adamw_step(o, &op, 1, 1e-3);
        if (rc == 0) rc = gpu->adamw(gpu, d_p, d_g, d_m, d_v, n, 1e-3, 0.9, 0.999, 1e-8, 0.1, 1, s);
    }
    if (OK(rc == 0, "adamw: 3 steps on both (%s)", rc ? sw_err_msg() : "ok")) {
        float *h = host(d_p, n);
        double e = sw_test_rel_err(h, p, n);
        int exact = memcmp(h, p, (size_t)n * 4) == 0;
        OK(e <= 1e-6, "adamw matches sw_optim (rel %.2g, %s)", e,
           exact ? "bit-identical" : "not bit-identical");
        free(h);
    }
    sw_adamw_free(o);
    gpu->free(gpu, d_p), gpu->free(gpu, d_g), gpu->free(gpu, d_m), gpu->free(gpu, d_v);
    free(p), free(g);
}

/* ---- device-side data errors ---------------------------------------------------------------- */

static void test_faults(void) {
    int32_t ids[4] = {1, 2, 7, 0}, pos[4] = {0, 1, 2, 9};
    float *tab = frand(5 * 8, 1);
    float *d_tab = DEVF(tab, 40), *d_out = gpu->alloc(gpu, 32 * 4);
    int32_t *d_ids = DEVI(ids, 4), *d_pos = DEVI(pos, 4);
    int rc = gpu->embedding_fwd(gpu, d_out, d_ids, d_tab, 4, 5, 8);
    if (rc == 0) rc = gpu->sync(gpu);
    OK(rc == SW_ERANGE && strstr(sw_err_msg(), "row 2") && strstr(sw_err_msg(), "7"),
       "embedding: a bad id is SW_ERANGE at sync, naming row and id (%s)", sw_err_msg());
    OK(gpu->sync(gpu) == 0, "the fault is reported once; the backend stays usable");
    rc = gpu->embedding_bwd(gpu, d_tab, d_out, d_ids, 4, 5, 8);
    if (rc == 0) rc = gpu->sync(gpu);
    OK(rc == SW_ERANGE && strstr(sw_err_msg(), "embedding_bwd"), "embedding_bwd bad id (%s)",
       sw_err_msg());
    float cs[20], sn[20];
    struct sw_rope_params rp = {.theta = 10000.0};
    sw_rope_tables(&rp, 5, 8, cs, sn);
    float *d_c = DEVF(cs, 20), *d_s = DEVF(sn, 20);
    rc = gpu->rope_fwd(gpu, d_out, d_pos, d_c, d_s, 4, 1, 8, 5);
    if (rc == 0) rc = gpu->sync(gpu);
    OK(rc == SW_ERANGE && strstr(sw_err_msg(), "position 9 at row 3"), "rope: bad position (%s)",
       sw_err_msg());
    int32_t tg[4] = {1, SW_IGNORE_INDEX, 5, 0};
    int32_t *d_tg = DEVI(tg, 4);
    float *d_l = gpu->alloc(gpu, 16), *d_e = gpu->alloc(gpu, 16);
    rc = gpu->ce_fused_fwd(gpu, d_l, d_e, d_out, d_tab, d_tg, 4, 5, 8, 16);
    if (rc == 0) rc = gpu->sync(gpu);
    OK(rc == SW_ERANGE && strstr(sw_err_msg(), "target 5 at row 2"),
       "cross-entropy: bad target (%s)", sw_err_msg());
    int32_t cu[3] = {0, 3, 2};
    int32_t *d_cu = DEVI(cu, 3);
    float *d_q = gpu->alloc(gpu, 64 * 4), *d_lse = gpu->alloc(gpu, 16 * 4);
    rc = gpu->attention_fwd(gpu, d_q, d_lse, d_q, d_q, d_q, d_cu, NULL, 2, 3, 2, 1, 1, 8, 0.3f);
    if (rc == 0) rc = gpu->sync(gpu);
    OK(rc == SW_EINVAL && strstr(sw_err_msg(), "cu_seqlens"), "attention: bad cu_seqlens (%s)",
       sw_err_msg());
    int32_t cu2[2] = {0, 4};
    int32_t *d_cu2 = DEVI(cu2, 2);
    rc = gpu->attention_fwd(gpu, d_q, d_lse, d_q, d_q, d_q, d_cu2, NULL, 1, 3, 4, 1, 1, 8, 0.3f);
    if (rc == 0) rc = gpu->sync(gpu);
    OK(rc == SW_EINVAL && strstr(sw_err_msg(), "max_len"), "attention: segment > max_len (%s)",
       sw_err_msg());
    OK(gpu->attention_fwd(gpu, d_q, d_lse, d_q, d_q, d_q, d_cu2, NULL, 1, 4, 4, 3, 2, 8, 0.3f) ==
           SW_EINVAL,
       "attention: Hq not a multiple of Hk is SW_EINVAL at once");
    OK(gpu->attention_fwd(gpu, d_q, d_lse, d_q, d_q, d_q, d_cu2, NULL, 1, 4, 4, 1, 1, 256, 0.3f) ==
           SW_EUNSUPPORTED,
       "attention: head_dim 256 is SW_EUNSUPPORTED");
    OK(gpu->sync(gpu) == 0, "backend usable after the faults");
    void *ptrs[] = {d_tab, d_out, d_ids, d_pos, d_c, d_s, d_tg, d_l, d_e, d_cu, d_q, d_lse, d_cu2};
    for (int i = 0; i < 13; i++)
        gpu->free(gpu, ptrs[i]);
    free(tab);
}

int main(void) {
    const char *s = getenv("SW_TEST_SEED");
    uint64_t seed = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL);
    rng_state = seed * 2654435761u + 1;
    DIAG("seed %llu (SW_TEST_SEED to repeat)", (unsigned long long)seed);
    if (!OK(sw_backend_open(SW_DEVICE_CPU, &cpu) == 0, "open cpu backend")) return tap_done();
    int rc = sw_backend_open(SW_DEVICE_CUDA, &gpu);
    if (!OK(rc == 0, "open cuda backend (%s)", rc ? sw_err_msg() : "ok")) {
        sw_backend_close(cpu);
        return tap_done();
    }
    struct sw_device_info info;
    if (gpu->device_info(gpu, &info) == 0)
        DIAG("device: %s, %d SMs, compute capability %d.%d", info.name, info.compute_units,
             info.cc_major, info.cc_minor);
    OK(strcmp(gpu->name, "cuda") == 0 && gpu->device == SW_DEVICE_CUDA, "backend is cuda");
    /* Every op the list (kernels/sw_ops.def) marks ALL is set; one marked CPU is NULL, and
     * supports_op is 1 exactly for the families without such an op. */
    int cpu_only[SW_OP_COUNT] = {0}, all = 1, n_all = 0, n_cpu = 0;
#define SW_OP(FAM, name, where, params)                                                            \
    {                                                                                              \
        int want_ = strcmp(#where, "ALL") == 0;                                                    \
        n_all += want_, n_cpu += !want_;                                                           \
        cpu_only[SW_OP_##FAM] |= !want_;                                                           \
        all &= (gpu->name != NULL) == want_;                                                       \
    }
#include "sw_ops.def"
    for (int f = 0; f < SW_OP_COUNT; f++)
        all &= gpu->supports_op(gpu, (enum sw_op)f) == !cpu_only[f];
    OK(all && !gpu->supports_op(gpu, SW_OP_COUNT),
       "the %d ops of the list marked ALL are set, the %d marked CPU NULL; supports_op agrees",
       n_all, n_cpu);

    test_memory();
    test_matmul();
    test_embedding_shape(37, 11, 13);
    test_embedding_shape(1000, 50, 64);
    test_embedding_shape(1, 1, 1);
    test_rmsnorm_shape(1, 1, 0.0f, 1);
    test_rmsnorm_shape(7, 33, 1.0f, 1);
    test_rmsnorm_shape(64, 896, 0.0f, 1);
    test_rmsnorm_shape(300, 64, 1.0f, 0);
    test_rmsnorm_shape(5000, 16, 0.0f, 1);
    test_rope_shape(9, 3, 8, 20);
    test_rope_shape(50, 14, 64, 60);
    test_attention();
    test_elementwise(1);
    test_elementwise(1000003);
    test_ce();
    test_adamw();
    test_faults();

    struct sw_mem_info mi = {0};
    rc = gpu->mem_info(gpu, &mi);
    OK(rc == 0 && mi.peak >= mi.in_use && mi.free > 0 && mi.free <= mi.total,
       "mem_info: %zu in use, peak %zu, %zu free of %zu", mi.in_use, mi.peak, mi.free, mi.total);
    sw_backend_close(gpu);
    sw_backend_close(cpu);
    return tap_done();
}
