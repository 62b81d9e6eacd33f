/* CPU sgemm — every matrix product of the CPU backend goes through sw_cpu_sgemm, which splits
 * C into one slab per OpenMP thread and runs each slab as a single-threaded OpenBLAS call.
 *
 * Why not OpenBLAS's own threads: the other kernels run on OpenMP's pool, whose idle workers
 * spin for a while after every parallel region; OpenBLAS's pthreads pool (Debian's default
 * build) then competes with them for the same cores right after each elementwise op, and on a
 * 2-core machine a training step spent about 30% of its time in that spinning. With one pool for
 * everything the cores do work instead. Determinism: the slabs depend only on the thread count,
 * and each is one single-threaded OpenBLAS call, so results are bit-identical from run to run
 * for a fixed thread count (as before: OpenBLAS's blocking depends on the slab shape, so 1 and 2
 * threads can differ in the last bits). */
#include "cpu_ops.h"

#include <cblas.h>
#include <omp.h>

/* Below this many multiply-adds one call is cheaper than waking the team. */
#define SW_SGEMM_SPLIT_MIN (1 << 18)

void sw_cpu_sgemm_1t(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                     int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)M, (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

void sw_cpu_sgemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                  int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    /* OpenBLAS's pool stays idle: some callers (sw_parallel_set_threads) size it to the machine. */
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
    int nth = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (nth <= 1 || M * N * (K > 0 ? K : 1) < SW_SGEMM_SPLIT_MIN) {
        sw_cpu_sgemm_1t(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    int by_rows = M >= N;
    int64_t len = by_rows ? M : N;
    if (len < nth) nth = (int)len;
#pragma omp parallel num_threads(nth)
    {
        /* Slabs in multiples of 16 rows/columns (the kernels' register tiles), split by the team
         * actually running. */
        int64_t team = omp_get_num_threads(), id = omp_get_thread_num();
        int64_t units = (len + 15) / 16, per = units / team, rem = units % team;
        int64_t u0 = id * per + (id < rem ? id : rem), u1 = u0 + per + (id < rem ? 1 : 0);
        int64_t a = u0 * 16, b = u1 * 16 < len ? u1 * 16 : len;
        if (a < b) {
            if (by_rows)
                sw_cpu_sgemm_1t(ta, tb, b - a, N, K, alpha, ta ? A + a : A + a * lda, lda, B, ldb,
                                beta, C + a * ldc, ldc);
            else
                sw_cpu_sgemm_1t(ta, tb, M, b - a, K, alpha, A, lda, tb ? B + a * ldb : B + a, ldb,
                                beta, C + a, ldc);
        }
    }
}
