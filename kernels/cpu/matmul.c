/* CPU matmul — nn.Linear forward and its three backward products through sw_cpu_sgemm
 * (OpenBLAS kernels, one slab of the output per OpenMP thread; see sgemm.c), and
 * the bias gradient as a column-blocked row sum (summation order fixed: rows 0..M-1).
 * Shapes: x[M,K], w[N,K] (PyTorch's weight layout, out × in), b[N], y[M,N]. */
#include "cpu_ops.h"

#include "sw_err.h"

#include <limits.h>
#include <string.h>

/* OpenBLAS takes int dimensions. */
static int dims_ok(const char *op, int64_t M, int64_t N, int64_t K) {
    if (M < 0 || N < 0 || K < 0 || M > INT_MAX || N > INT_MAX || K > INT_MAX)
        return sw_err_set(SW_ERANGE, "%s: dimensions %lld×%lld×%lld outside OpenBLAS's int range",
                          op, (long long)M, (long long)N, (long long)K);
    return 0;
}

/* out[R,Cn] = beta·out (beta 0 writes zeros, never reading out: it may be uninitialised). */
static void scale_rows(float *out, int64_t n, float beta) {
    if (beta == 0.0f)
        memset(out, 0, (size_t)n * sizeof(float));
    else if (beta != 1.0f)
        for (int64_t i = 0; i < n; i++)
            out[i] *= beta;
}

int sw_cpu_matmul_fwd(struct sw_backend *be, float *y, const float *x, const float *w,
                      const float *b, int64_t M, int64_t N, int64_t K, float alpha, float beta) {
    (void)be;
    SW_TRY(dims_ok("matmul_fwd", M, N, K));
    if (M == 0 || N == 0) return 0;
    if (b) {
        /* y = beta·y + b first, then the product accumulates onto it. */
        scale_rows(y, M * N, beta);
#pragma omp parallel for schedule(static) if (M * N > 65536)
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++)
                y[m * N + n] += b[n];
        beta = 1.0f;
    }
    if (K == 0) {
        if (!b) scale_rows(y, M * N, beta);
        return 0;
    }
    sw_cpu_sgemm(0, 1, M, N, K, alpha, x, K, w, K, beta, y, N);
    return 0;
}

int sw_cpu_matmul_bwd_dx(struct sw_backend *be, float *dx, const float *dy, const float *w,
                         int64_t M, int64_t N, int64_t K, float alpha, float beta) {
    (void)be;
    SW_TRY(dims_ok("matmul_bwd_dx", M, N, K));
    if (M == 0 || K == 0) return 0;
    if (N == 0) {
        scale_rows(dx, M * K, beta);
        return 0;
    }
    sw_cpu_sgemm(0, 0, M, K, N, alpha, dy, N, w, K, beta, dx, K);
    return 0;
}

int sw_cpu_matmul_bwd_dw(struct sw_backend *be, float *dw, const float *dy, const float *x,
                         int64_t M, int64_t N, int64_t K, float alpha, float beta) {
    (void)be;
    SW_TRY(dims_ok("matmul_bwd_dw", M, N, K));
    if (N == 0 || K == 0) return 0;
    if (M == 0) {
        scale_rows(dw, N * K, beta);
        return 0;
    }
    sw_cpu_sgemm(1, 0, N, K, M, alpha, dy, N, x, K, beta, dw, K);
    return 0;
}

int sw_cpu_bias_bwd(struct sw_backend *be, float *db, const float *dy, int64_t M, int64_t N,
                    float beta) {
    (void)be;
    int64_t nblk = (N + SW_CPU_COL_BLOCK - 1) / SW_CPU_COL_BLOCK;
#pragma omp parallel for schedule(static) if (M * N > 65536)
    for (int64_t blk = 0; blk < nblk; blk++) {
        int64_t c0 = blk * SW_CPU_COL_BLOCK;
        int64_t c1 = c0 + SW_CPU_COL_BLOCK < N ? c0 + SW_CPU_COL_BLOCK : N;
        double acc[SW_CPU_COL_BLOCK] = {0};
        for (int64_t m = 0; m < M; m++)
            for (int64_t c = c0; c < c1; c++)
                acc[c - c0] += dy[m * N + c];
        for (int64_t c = c0; c < c1; c++)
            db[c] = (float)(acc[c - c0] + (beta == 0.0f ? 0.0 : (double)beta * db[c]));
    }
    return 0;
}
