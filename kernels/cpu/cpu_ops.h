/* cpu_ops — declarations of the CPU reference kernels (kernels/cpu/<op>.c) that
 * kernels/cpu/backend.c puts into the CPU struct sw_backend. Each function has the signature and
 * the tensor shapes of the matching member of struct sw_backend in kernels/sw_kernels.h; they are
 * documented there once. Internal to kernels/: model code calls through the backend table. */
#ifndef SW_CPU_OPS_H
#define SW_CPU_OPS_H

#include "sw_kernels.h"

int sw_cpu_matmul_fwd(struct sw_backend *be, float *y, const float *x, const float *w,
                      const float *b, int64_t M, int64_t N, int64_t K, float alpha, float beta);
int sw_cpu_matmul_bwd_dx(struct sw_backend *be, float *dx, const float *dy, const float *w,
                         int64_t M, int64_t N, int64_t K, float alpha, float beta);
int sw_cpu_matmul_bwd_dw(struct sw_backend *be, float *dw, const float *dy, const float *x,
                         int64_t M, int64_t N, int64_t K, float alpha, float beta);
int sw_cpu_bias_bwd(struct sw_backend *be, float *db, const float *dy, int64_t M, int64_t N,
                    float beta);

int sw_cpu_embedding_fwd(struct sw_backend *be, float *out, const int32_t *ids, const float *table,
                         int64_t N, int64_t V, int64_t C);
int sw_cpu_embedding_bwd(struct sw_backend *be, float *dtable, const float *dout,
                         const int32_t *ids, int64_t N, int64_t V, int64_t C);

int sw_cpu_rmsnorm_fwd(struct sw_backend *be, float *out, float *rstd, const float *x,
                       const float *w, int64_t N, int64_t C, float eps);
int sw_cpu_rmsnorm_bwd(struct sw_backend *be, float *dx, float *dw, const float *dout,
                       const float *x, const float *w, const float *rstd, int64_t N, int64_t C,
                       float beta);

int sw_cpu_rope_fwd(struct sw_backend *be, float *x, const int32_t *pos, const float *cos,
                    const float *sin, int64_t N, int64_t H, int64_t D, int64_t P);
int sw_cpu_rope_bwd(struct sw_backend *be, float *dx, const int32_t *pos, const float *cos,
                    const float *sin, int64_t N, int64_t H, int64_t D, int64_t P);

int sw_cpu_attention_fwd(struct sw_backend *be, float *out, float *lse, const float *q,
                         const float *k, const float *v, const int32_t *cu_seqlens,
                         const int32_t *kv_len, int nseq, int64_t max_len, int64_t N,
                         int64_t Hq, int64_t Hk, int64_t D, float scale);
int sw_cpu_attention_bwd(struct sw_backend *be, float *dq, float *dk, float *dv,
                         const float *dout, const float *q, const float *k, const float *v,
                         const float *out, const float *lse, const int32_t *cu_seqlens,
                         const int32_t *kv_len, int nseq, int64_t max_len, int64_t N,
                         int64_t Hq, int64_t Hk, int64_t D, float scale);

int sw_cpu_swiglu_fwd(struct sw_backend *be, float *out, const float *gate, const float *up,
                      int64_t n);
int sw_cpu_swiglu_bwd(struct sw_backend *be, float *dgate, float *dup, const float *dout,
                      const float *gate, const float *up, int64_t n);

int sw_cpu_add(struct sw_backend *be, float *out, const float *a, const float *b, int64_t n);
int sw_cpu_axpy(struct sw_backend *be, float *y, const float *x, float alpha, int64_t n);
int sw_cpu_dropout_fwd(struct sw_backend *be, float *out, const float *x, int64_t n, float p,
                       uint64_t seed);
int sw_cpu_dropout_bwd(struct sw_backend *be, float *dx, const float *dout, int64_t n, float p,
                       uint64_t seed);

int sw_cpu_ce_fused_fwd(struct sw_backend *be, float *loss, float *lse, const float *h,
                        const float *w, const int32_t *targets, int64_t N, int64_t V, int64_t C,
                        int64_t chunk_rows);
int sw_cpu_ce_fused_bwd(struct sw_backend *be, float *dh, float *dw, const float *h,
                        const float *w, const int32_t *targets, const float *lse, int64_t N,
                        int64_t V, int64_t C, int64_t chunk_rows, float grad_scale, float beta);
int sw_cpu_ce_logits_fwd(struct sw_backend *be, float *loss, float *lse, const float *logits,
                         const int32_t *targets, int64_t N, int64_t V);

int sw_cpu_adamw(struct sw_backend *be, float *p, const float *g, float *m, float *v, int64_t n,
                 double lr, double beta1, double beta2, double eps, double wd, int decay,
                 int64_t step);
int sw_cpu_sumsq(struct sw_backend *be, const float *const *x, const int64_t *n, int count,
                 double *out, double *total);
int sw_cpu_scale(struct sw_backend *be, float *x, int64_t n, float f);

/* C[M,N] = alpha·op(A)·op(B) + beta·C (row-major; op = transpose when ta / tb), split over the
 * OpenMP threads by rows (M >= N) or columns of C, each slab one single-threaded OpenBLAS call
 * (kernels/cpu/sgemm.c says why). Called outside OpenMP regions; inside one it runs serially. */
void sw_cpu_sgemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                  int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
/* The same product in the calling thread only (for use inside OpenMP regions). */
void sw_cpu_sgemm_1t(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
                     const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                     float *C, int64_t ldc);

/* What ce_fused_fwd leaves for ce_fused_bwd (kernels/cpu/cross_entropy.c): G = softmax −
 * onehot of every row with a target, [nvalid, V], when that fits SW_CPU_CE_CACHE_MAX bytes, so the
 * backward skips recomputing the LM-head logits (one [rows, V, C] sgemm of the three). The
 * backward uses it only when its inputs are the forward's: same h, w, N, V, C, and the same
 * targets and lse values (copies kept here); otherwise it recomputes. One per CPU backend. */
#define SW_CPU_CE_CACHE_MAX ((size_t)256 << 20)
struct sw_cpu_ce_cache {
    float *g;            /* [nvalid, V] */
    size_t g_cap;        /* floats allocated */
    int32_t *targets;    /* [N] copy */
    float *lse;          /* [N] copy */
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
