// elementwise.cu — residual add, axpy (gradient accumulation), inverted dropout whose mask is
// recomputed from (seed, index) and never stored, and the fused AdamW update (the adamw member,
// sw_cuda_adamw) a driver runs on device-resident parameters. All over n contiguous floats,
// grid-stride.
//
// dropout_keep below is sw_dropout_keep of kernels/sw_kernels.h, written again for the device
// (that header's inline function is host-only C): both must draw the same mask, which
// test/cuda/test_cuda_kernels.c checks bit for bit.
#include "cuda_ops.h"

#include <cmath>

__device__ __forceinline__ bool dropout_keep(uint64_t seed, uint64_t i, float p) {
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (i + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f) >= p;
}

__global__ void k_add(float *out, const float *a, const float *b, int64_t n) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        out[i] = a[i] + b[i];
}

__global__ void k_axpy(float *y, const float *x, float alpha, int64_t n) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = __fadd_rn(y[i], __fmul_rn(alpha, x[i])); // no FMA: rounds as the CPU does
}

__global__ void k_dropout(float *out, const float *x, int64_t n, float p, float keep_scale,
                          uint64_t seed) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        out[i] = dropout_keep(seed, (uint64_t)i, p) ? x[i] * keep_scale : 0.0f;
}

int sw_cuda_add(struct sw_backend *be, float *out, const float *a, const float *b, int64_t n) {
    SW_CUDA_OP(be, "add", n);
    if (n <= 0) return 0;
    k_add<<<sw_cuda_blocks(n, 256), 256, 0, c->stream>>>(out, a, b, n);
    SW_CUDA_LAUNCHED("add");
    return 0;
}

int sw_cuda_axpy(struct sw_backend *be, float *y, const float *x, float alpha, int64_t n) {
    SW_CUDA_OP(be, "axpy", n);
    if (n <= 0) return 0;
    k_axpy<<<sw_cuda_blocks(n, 256), 256, 0, c->stream>>>(y, x, alpha, n);
    SW_CUDA_LAUNCHED("axpy");
    return 0;
}

int sw_cuda_dropout_fwd(struct sw_backend *be, float *out, const float *x, int64_t n, float p,
                        uint64_t seed) {
    SW_CUDA_OP(be, "dropout", n);
    if (n <= 0) return 0;
    float keep_scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    k_dropout<<<sw_cuda_blocks(n, 256), 256, 0, c->stream>>>(out, x, n, p, keep_scale, seed);
    SW_CUDA_LAUNCHED("dropout");
    return 0;
}

int sw_cuda_dropout_bwd(struct sw_backend *be, float *dx, const float *dout, int64_t n, float p,
                        uint64_t seed) {
    return sw_cuda_dropout_fwd(be, dx, dout, n, p, seed);
}

// AdamW as sw_optim (torch's order): decay, m lerp (one fused rounding, as torch's lerp), v
// update, p += step · m / denom. The explicit __f*_rn intrinsics keep nvcc from contracting
// the other products into FMAs, so each element rounds exactly as lib/sw_optim.c does.
__global__ void k_adamw(float *p, const float *g, float *m, float *v, int64_t n, float decay_mul,
                        float one_minus_b1, float b2, float one_minus_b2, float neg_step,
                        float bc2_sqrt, float eps) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float gi = g[i], pi = __fmul_rn(p[i], decay_mul);
        float mi = fmaf(one_minus_b1, __fsub_rn(gi, m[i]), m[i]);
        float vi = __fadd_rn(__fmul_rn(v[i], b2), __fmul_rn(__fmul_rn(one_minus_b2, gi), gi));
        float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bc2_sqrt), eps);
        p[i] = __fadd_rn(pi, __fdiv_rn(__fmul_rn(neg_step, mi), denom));
        m[i] = mi;
        v[i] = vi;
    }
}

int sw_cuda_adamw(struct sw_backend *be, float *p, const float *g, float *m, float *v, int64_t n,
                  double lr, double beta1, double beta2, double eps, double wd, int decay,
                  int64_t step) {
    if (!be || be->device != SW_DEVICE_CUDA)
        return sw_err_set(SW_EINVAL, "adamw: not a CUDA backend");
    if (step < 1) return sw_err_set(SW_EINVAL, "adamw: step %lld < 1", (long long)step);
    SW_CUDA_OP(be, "adamw", n);
    if (n <= 0) return 0;
    double bc1 = 1.0 - pow(beta1, (double)step), bc2 = 1.0 - pow(beta2, (double)step);
    float decay_mul = decay && wd != 0.0 ? (float)(1.0 - lr * wd) : 1.0f;
    k_adamw<<<sw_cuda_blocks(n, 256), 256, 0, c->stream>>>(
        p, g, m, v, n, decay_mul, (float)(1.0 - beta1), (float)beta2, (float)(1.0 - beta2),
        (float)-(lr / bc1), (float)sqrt(bc2), (float)eps);
    SW_CUDA_LAUNCHED("adamw");
    return 0;
}
