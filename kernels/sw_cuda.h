/* sw_cuda — what the C side knows of the CUDA backend. Declared always; defined only in
 * CUDA builds (make CUDA=1), where SW_CUDA is 1. Callers test sw_cuda_available() first.
 *
 * The backend itself is reached through sw_backend_open(SW_DEVICE_CUDA, &be) (kernels/sw_kernels.h);
 * the functions below are the CUDA-only extras a driver may want: GEMM precision, per-op
 * profiling, device memory statistics, a fused AdamW over device buffers, and the gradient
 * norm / clipping pieces of a device-resident optimizer (sw_cuda_sumsq, sw_cuda_scale). */
#ifndef SW_CUDA_H
#define SW_CUDA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct sw_backend;

struct sw_cuda_info {
    char name[256];
    size_t total_bytes;
    int sm_count, cc_major, cc_minor;
};

/* GEMM precision of the CUDA backend's matmuls (also the LM-head products of cross-entropy).
 * FP32: exact float32 (parity tests; the default). TF32: tensor cores on float32 operands
 * (10-bit mantissa products, fp32 accumulation). BF16: operands rounded to bfloat16, fp32
 * accumulation and fp32 outputs — the arithmetic of PyTorch's bf16 autocast with fp32 master
 * weights; parameters, gradients and activations stay float32. The environment variable
 * SW_CUDA_MATMUL=fp32|tf32|bf16|bf16i|fp16 sets the initial mode when the backend opens.
 * BF16_INLINE ("bf16i") is BF16 with the float32 → bfloat16 rounding left to cuBLASLt
 * (CUBLAS_COMPUTE_32F_FAST_16BF on float32 operands) instead of a conversion pass per operand;
 * everything else (attention, cross-entropy) behaves as in BF16. FP16: BF16 with IEEE half
 * operands (10 mantissa bits, range ±65504: a larger operand becomes ±inf) — fp16 autocast's
 * arithmetic; training in it needs loss scaling (sw-train's --loss_scale). */
enum sw_cuda_matmul_precision {
    SW_CUDA_MATMUL_FP32 = 0,
    SW_CUDA_MATMUL_TF32 = 1,
    SW_CUDA_MATMUL_BF16 = 2,
    SW_CUDA_MATMUL_BF16_INLINE = 3,
    SW_CUDA_MATMUL_FP16 = 4,
};

#ifdef SW_CUDA
int sw_cuda_check(int status, const char *what, const char *file, int line);
int sw_cuda_device_info(int device, struct sw_cuda_info *info);
#define SW_CUDA_TRY(call) SW_TRY(sw_cuda_check((int)(call), #call, __FILE__, __LINE__))
static inline int sw_cuda_available(void) { return 1; }

/* The CUDA backend's constructor and destructor (kernels/cuda/backend.cu); sw_backend_open and
 * sw_backend_close call them. open: device 0 (or $SW_CUDA_DEVICE), one stream, cuBLASLt.
 * Returns 0, SW_EDEVICE (no GPU, driver error) or SW_ENOMEM. free accepts NULL. */
int sw_cuda_backend_open(struct sw_backend **out);
void sw_cuda_backend_free(struct sw_backend *be);

/* Set the GEMM precision of a CUDA backend (enum sw_cuda_matmul_precision). Returns 0 or
 * SW_EINVAL (not a CUDA backend, unknown mode). */
int sw_cuda_set_matmul_precision(struct sw_backend *be, int precision);
/* Parse "fp32" | "tf32" | "bf16" | "bf16i" | "fp16" into *precision; SW_EINVAL otherwise. */
int sw_cuda_parse_matmul_precision(const char *s, int *precision);
/* The name sw_cuda_parse_matmul_precision reads for a mode ("?" for an unknown value). */
const char *sw_cuda_matmul_precision_name(int precision);

/* Per-op timing: on = 1 starts recording a pair of CUDA events around every op (it costs a
 * little per launch), on = 0 stops. sw_cuda_profile_report synchronises, prints to out a table
 * of total milliseconds, calls and share per op and shape (sorted by time), then clears the
 * records. Both return 0 or a negative sw_err. */
int sw_cuda_profile_enable(struct sw_backend *be, int on);
int sw_cuda_profile_report(struct sw_backend *be, FILE *out);

/* Device memory of this backend: bytes in use now and the high-water mark, counted from its
 * stream-ordered pool (parameters, gradients, scratch arena and op workspaces) plus cuBLASLt's
 * workspace. Either pointer may be NULL. Returns 0 or SW_EDEVICE. */
int sw_cuda_memory(struct sw_backend *be, size_t *in_use, size_t *peak);

/* One torch.optim.AdamW update (see lib/sw_optim.h for the formula and its order) of n
 * float32 elements in device memory: p, exp_avg m and exp_avg_sq v are updated in place from
 * grad g. step is the step count after increment (≥ 1); wd is applied only when decay is 1.
 * The bias corrections are computed in double on the host, as sw_optim does. Returns 0 or
 * SW_EINVAL / SW_EDEVICE. */
int sw_cuda_adamw(struct sw_backend *be, float *p, const float *g, float *m, float *v, int64_t n,
                  double lr, double beta1, double beta2, double eps, double wd, int decay,
                  int64_t step);

/* Sums of squares of count float32 device arrays x[i] of n[i] elements (host arrays of device
 * pointers and sizes), each accumulated in double in a fixed order that depends only on n[i]
 * (SW_CUDA_SUMSQ_BLOCKS partial sums per array, each a fixed grid-stride walk plus a fixed tree,
 * then a fixed tree over the partials), so the result is the same bits on every run and every
 * GPU. out[count] receives them on the host (one synchronising download for all). NaN/Inf
 * elements give a non-finite sum. The gradient norm of sw-train's device optimizer is
 * sqrt(Σ out[i]) added in parameter order on the host; it agrees with sw_grad_norm (a different
 * double summation order) to ~1e-15 relative. Returns 0, SW_EINVAL or SW_EDEVICE/SW_ENOMEM. */
#define SW_CUDA_SUMSQ_BLOCKS 256
int sw_cuda_sumsq(struct sw_backend *be, const float *const *x, const int64_t *n, int count,
                  double *out);
/* x[i] ← x[i] · f over n device floats (float32 product, one rounding: what sw_grad_clip does on
 * the host, bit for bit). Asynchronous. Returns 0 or SW_EINVAL / SW_EDEVICE. */
int sw_cuda_scale(struct sw_backend *be, float *x, int64_t n, float f);
/* cudaMemGetInfo for the backend's device: free and total bytes (either pointer may be NULL).
 * Free excludes memory the backend's pool caches for reuse. Returns 0 or SW_EINVAL/SW_EDEVICE. */
int sw_cuda_mem_info(struct sw_backend *be, size_t *free_bytes, size_t *total_bytes);
/* Make the scratch arena one chunk of at least bytes, so a step that needs up to that much
 * allocates nothing (without it the first step grows the arena chunk by chunk). Like
 * scratch_reset it discards the arena's contents: call it between steps. Not counted in
 * scratch_peak. Returns 0, SW_EINVAL (not a CUDA backend) or SW_ENOMEM (the arena is then
 * empty and grows again on demand). */
int sw_cuda_scratch_reserve(struct sw_backend *be, size_t bytes);
#else
static inline int sw_cuda_available(void) { return 0; }
#endif

#endif
