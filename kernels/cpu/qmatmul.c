/* CPU quantized matmul — a linear over a frozen quantized weight (lib/core/sw_qformat.h) without
 * ever holding W in float: each OpenMP thread dequantizes a tile of W into its own small buffer
 * (sw_qweight_dequant_span, the reference dequantizer) and multiplies it at once.
 *  - forward, decode-sized M (≤ QM_GEMV rows): one output row of W at a time, dequantized into a
 *    [K] buffer that stays in L1, dotted with the M inputs — W's packed bytes are read once, so
 *    the product is as memory-bound as the weight is small (int4 reads an eighth of f32's bytes);
 *  - forward, larger M: tiles of QM_TILE rows of W, each one single-threaded OpenBLAS product
 *    into its columns of y;
 *  - backward dx = dy · W: blocks of QM_KBLK columns of W (all rows), each thread owning its
 *    columns of dx, so nothing is summed across threads.
 * The tiles do not depend on the thread count, so results are bit-identical from run to run and
 * across thread counts for the GEMV path (the sgemm tiles are single-threaded calls). */
#include "cpu_ops.h"

#include "sw_err.h"

#include <cblas.h>
#include <limits.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define QM_GEMV 8
#define QM_TILE 64
#define QM_KBLK 256

static int check(const char *op, const struct sw_qweight *q, int64_t M) {
    if (!q || q->fmt <= SW_QFMT_NONE || q->fmt >= SW_QFMT_COUNT || !q->q)
        return sw_err_set(SW_EINVAL, "%s: not a quantized weight", op);
    if (M < 0 || M > INT_MAX || q->rows > INT_MAX || q->cols > INT_MAX)
        return sw_err_set(SW_ERANGE, "%s: dimensions %lld×%lld×%lld outside OpenBLAS's int range",
                          op, (long long)M, (long long)q->rows, (long long)q->cols);
    return 0;
}

static void blas_one_thread(void) {
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

int sw_cpu_dequant(struct sw_backend *be, float *w, const struct sw_qweight *q, int64_t row0,
                   int64_t nrows) {
    (void)be;
    SW_TRY(check("dequant", q, 0));
    if (row0 < 0 || nrows < 0 || row0 + nrows > q->rows)
        return sw_err_set(SW_ERANGE, "dequant: rows [%lld, %lld) outside the weight's %lld",
                          (long long)row0, (long long)(row0 + nrows), (long long)q->rows);
#pragma omp parallel for schedule(static) if (nrows * q->cols > 65536)
    for (int64_t r = 0; r < nrows; r++)
        sw_qweight_dequant_span(q, row0 + r, 0, q->cols, w + r * q->cols);
    return 0;
}

/* Σ a[k]·b[k] with 8 partial sums (vectorisable, a fixed order). */
static float dot(const float *a, const float *b, int64_t n) {
    float s[8] = {0};
    int64_t k = 0;
    for (; k + 8 <= n; k += 8)
        for (int j = 0; j < 8; j++)
            s[j] += a[k + j] * b[k + j];
    float t = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; k < n; k++)
        t += a[k] * b[k];
    return t;
}

int sw_cpu_qmatmul_fwd(struct sw_backend *be, float *y, const float *x, const struct sw_qweight *q,
                       const float *b, int64_t M, float alpha, float beta) {
    (void)be;
    SW_TRY(check("qmatmul_fwd", q, M));
    int64_t N = q->rows, K = q->cols;
    if (M == 0 || N == 0) return 0;
    if (b) { /* y = beta·y + b first, then the product accumulates onto it */
#pragma omp parallel for schedule(static) if (M * N > 65536)
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++)
                y[m * N + n] = (beta == 0.0f ? 0.0f : beta * y[m * N + n]) + b[n];
        beta = 1.0f;
    }
    int rc = 0;
    if (M <= QM_GEMV) {
#pragma omp parallel if (N * K > 65536)
        {
            float *wr = malloc((size_t)(K ? K : 1) * sizeof(float));
            if (!wr) {
#pragma omp atomic write
                rc = SW_ENOMEM;
            }
#pragma omp for schedule(static)
            for (int64_t n = 0; n < N; n++) {
                if (!wr) continue;
                sw_qweight_dequant_span(q, n, 0, K, wr);
                for (int64_t m = 0; m < M; m++) {
                    float v = alpha * dot(x + m * K, wr, K);
                    y[m * N + n] = beta == 0.0f ? v : v + beta * y[m * N + n];
                }
            }
            free(wr);
        }
    } else {
        blas_one_thread();
        int64_t ntiles = (N + QM_TILE - 1) / QM_TILE;
#pragma omp parallel
        {
            float *wt = malloc((size_t)(QM_TILE * (K ? K : 1)) * sizeof(float));
            if (!wt) {
#pragma omp atomic write
                rc = SW_ENOMEM;
            }
#pragma omp for schedule(static)
            for (int64_t t = 0; t < ntiles; t++) {
                if (!wt) continue;
                int64_t r0 = t * QM_TILE, nr = N - r0 < QM_TILE ? N - r0 : QM_TILE;
                sw_qweight_dequant_rows(q, r0, nr, wt);
                sw_cpu_sgemm_1t(0, 1, M, nr, K, alpha, x, K, wt, K, beta, y + r0, N);
            }
            free(wt);
        }
    }
    if (rc) return sw_err_set(SW_ENOMEM, "qmatmul_fwd: out of memory for a dequantized tile");
    return 0;
}

int sw_cpu_qmatmul_bwd_dx(struct sw_backend *be, float *dx, const float *dy,
                          const struct sw_qweight *q, int64_t M, float alpha, float beta) {
    (void)be;
    SW_TRY(check("qmatmul_bwd_dx", q, M));
    int64_t N = q->rows, K = q->cols;
    if (M == 0 || K == 0) return 0;
    blas_one_thread();
    int64_t nblk = (K + QM_KBLK - 1) / QM_KBLK;
    int rc = 0;
#pragma omp parallel if (M * N * K > (1 << 18))
    {
        float *wb = malloc((size_t)((N ? N : 1) * QM_KBLK) * sizeof(float));
        if (!wb) {
#pragma omp atomic write
            rc = SW_ENOMEM;
        }
#pragma omp for schedule(static)
        for (int64_t blk = 0; blk < nblk; blk++) {
            if (!wb) continue;
            int64_t k0 = blk * QM_KBLK, kb = K - k0 < QM_KBLK ? K - k0 : QM_KBLK;
            for (int64_t n = 0; n < N; n++)
                sw_qweight_dequant_span(q, n, k0, k0 + kb, wb + n * kb);
            if (N == 0) {
                for (int64_t m = 0; m < M; m++)
                    for (int64_t k = 0; k < kb; k++)
                        dx[m * K + k0 + k] = beta == 0.0f ? 0.0f : beta * dx[m * K + k0 + k];
            } else {
                sw_cpu_sgemm_1t(0, 0, M, kb, N, alpha, dy, N, wb, kb, beta, dx + k0, K);
            }
        }
        free(wb);
    }
    if (rc) return sw_err_set(SW_ENOMEM, "qmatmul_bwd_dx: out of memory for a dequantized block");
    return 0;
}
