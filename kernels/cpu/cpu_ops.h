/* cpu_ops — declarations of the CPU reference kernels (kernels/cpu/<op>.c) that
 * kernels/cpu/backend.c puts into the CPU struct sw_backend, generated from the op list
 * kernels/sw_ops.def (signatures, tensor shapes and semantics are written there once), and the
 * helpers those kernels share. Internal to kernels/: model code calls through the backend
 * table. */
#ifndef SW_CPU_OPS_H
#define SW_CPU_OPS_H

#include "sw_kernels.h"

/* The ops: sw_cpu_<name> for every line of kernels/sw_ops.def (the CPU implements them all). */
#define SW_OP(FAM, name, where, params) int sw_cpu_##name params;
#include "sw_ops.def"

/* C[M,N] = alpha·op(A)·op(B) + beta·C (row-major; op = transpose when ta / tb), split over the
 * OpenMP threads by rows (M >= N) or columns of C, each slab one single-threaded OpenBLAS call
 * (kernels/cpu/sgemm.c says why). Called outside OpenMP regions; inside one it runs serially. */
void sw_cpu_sgemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                  int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
/* The same product in the calling thread only (for use inside OpenMP regions). */
void sw_cpu_sgemm_1t(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                     int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* What ce_fused_fwd leaves for ce_fused_bwd (kernels/cpu/cross_entropy.c): G = softmax −
 * onehot of every row with a target, [nvalid, V], when that fits SW_CPU_CE_CACHE_MAX bytes, so the
 * backward skips recomputing the LM-head logits (one [rows, V, C] sgemm of the three). The
 * backward uses it only when its inputs are the forward's: same h, w, N, V, C, and the same
 * targets and lse values (copies kept here); otherwise it recomputes. One per CPU backend. */
#define SW_CPU_CE_CACHE_MAX ((size_t)256 << 20)
struct sw_cpu_ce_cache {
    float *g;         /* [nvalid, V] */
    size_t g_cap;     /* floats allocated */
    int32_t *targets; /* [N] copy */
    float *lse;       /* [N] copy */
    size_t n_cap;
    const float *h, *w;
    int64_t N, V, C;
    int valid;
};
/* The backend's cache (kernels/cpu/backend.c), or NULL when be is not a CPU backend. */
struct sw_cpu_ce_cache *sw_cpu_ce_cache_get(struct sw_backend *be);

/* Column blocks for reductions over rows: each block is summed by one thread, rows in order, so
 * the result does not depend on how many threads run. */
#define SW_CPU_COL_BLOCK 16

#endif
