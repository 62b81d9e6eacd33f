// optim.cu — what a device-resident optimizer step needs besides the AdamW update itself
// (sw_cuda_adamw, elementwise.cu): per-tensor sums of squares for the global gradient norm,
// deterministic in their order of summation, the clipping scale (the sumsq and scale members of
// struct sw_backend, kernels/sw_kernels.h), and the device's free memory for mem_info.
//
// sw_cuda_sumsq, per tensor x[n] (grid-stride, double accumulation):
//   stage 1: SW_CUDA_SUMSQ_BLOCKS blocks × 256 threads; thread t of block b sums x[i]² for
//            i = b·256 + t + k·(BLOCKS·256), four independent accumulators (k mod 4) added in
//            order at the end, then a fixed shared-memory tree → partial[b];
//   stage 2: one block per tensor reduces its BLOCKS partials by a fixed tree → out.
// The grid never depends on the GPU or on timing, and there are no atomics: the same bits on
// every run and device.
#include "cuda_ops.h"

#define SUMSQ_THREADS 256

static __device__ __forceinline__ void block_tree(double *sh) {
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
        if ((int)threadIdx.x < w) sh[threadIdx.x] += sh[threadIdx.x + w];
        __syncthreads();
    }
}

static __global__ void k_sumsq_partial(const float *x, int64_t n, double *partial) {
    __shared__ double sh[SUMSQ_THREADS];
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    for (; i + 3 * stride < n; i += 4 * stride) {
        double a = x[i], b = x[i + stride], c = x[i + 2 * stride], d = x[i + 3 * stride];
        s0 += a * a;
        s1 += b * b;
        s2 += c * c;
        s3 += d * d;
    }
    for (; i < n; i += stride) {
        double a = x[i];
        s0 += a * a;
    }
    sh[threadIdx.x] = ((s0 + s1) + s2) + s3;
    __syncthreads();
    block_tree(sh);
    if (threadIdx.x == 0) partial[blockIdx.x] = sh[0];
}

static __global__ void k_sumsq_final(const double *partial, double *out) {
    __shared__ double sh[SW_CUDA_SUMSQ_BLOCKS];
    sh[threadIdx.x] = partial[(int64_t)blockIdx.x * SW_CUDA_SUMSQ_BLOCKS + threadIdx.x];
    __syncthreads();
    block_tree(sh);
    if (threadIdx.x == 0) out[blockIdx.x] = sh[0];
}

static __global__ void k_scale(float *x, int64_t n, float f) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        x[i] = __fmul_rn(x[i], f);
}

int sw_cuda_sumsq(struct sw_backend *be, const float *const *x, const int64_t *n, int count,
                  double *out, double *total) {
    if (!be || be->device != SW_DEVICE_CUDA)
        return sw_err_set(SW_EINVAL, "sumsq: not a CUDA backend");
    if (count < 0) return sw_err_set(SW_EINVAL, "sumsq: negative tensor count %d", count);
    if (total) *total = 0;
    if (count == 0) return 0;
    for (int i = 0; i < count; i++)
        if (n[i] < 0 || (n[i] > 0 && !x[i]))
            return sw_err_set(SW_EINVAL, "sumsq: tensor %d has %lld elements at %p", i,
                              (long long)n[i], (const void *)x[i]);
    SW_CUDA_OP(be, "sumsq", count);
    size_t pbytes = (size_t)count * SW_CUDA_SUMSQ_BLOCKS * sizeof(double);
    char *ws = (char *)sw_cuda_ws(c, 0, pbytes + (size_t)count * sizeof(double));
    if (!ws) return sw_err_wrap(SW_ENOMEM, "sumsq: partial sums of %d tensors", count);
    double *partial = (double *)ws, *dout = (double *)(ws + pbytes);
    for (int i = 0; i < count; i++)
        k_sumsq_partial<<<SW_CUDA_SUMSQ_BLOCKS, SUMSQ_THREADS, 0, c->stream>>>(
            x[i], n[i], partial + (size_t)i * SW_CUDA_SUMSQ_BLOCKS);
    SW_CUDA_LAUNCHED("sumsq");
    k_sumsq_final<<<count, SW_CUDA_SUMSQ_BLOCKS, 0, c->stream>>>(partial, dout);
    SW_CUDA_LAUNCHED("sumsq");
    SW_CUDA_TRY(cudaMemcpyAsync(out, dout, (size_t)count * sizeof(double), cudaMemcpyDeviceToHost,
                                c->stream));
    SW_CUDA_TRY(cudaStreamSynchronize(c->stream));
    SW_TRY(sw_cuda_fault_check(c));
    // The global sum in parameter order on the host (what sw-train added up before this member
    // existed), so the gradient norm keeps its bits.
    if (total) {
        double t = 0;
        for (int i = 0; i < count; i++)
            t += out[i];
        *total = t;
    }
    return 0;
}

int sw_cuda_scale(struct sw_backend *be, float *x, int64_t n, float f) {
    if (!be || be->device != SW_DEVICE_CUDA)
        return sw_err_set(SW_EINVAL, "scale: not a CUDA backend");
    if (n < 0) return sw_err_set(SW_EINVAL, "scale: negative size %lld", (long long)n);
    SW_CUDA_OP(be, "scale", n);
    if (n == 0) return 0;
    k_scale<<<sw_cuda_blocks(n, 256), 256, 0, c->stream>>>(x, n, f);
    SW_CUDA_LAUNCHED("scale");
    return 0;
}

int sw_cuda_mem_free_total(sw_cuda_ctx *c, size_t *free_bytes, size_t *total_bytes) {
    size_t fr = 0, tot = 0;
    SW_CUDA_TRY(cudaSetDevice(c->device));
    SW_CUDA_TRY(cudaMemGetInfo(&fr, &tot));
    if (free_bytes) *free_bytes = fr;
    if (total_bytes) *total_bytes = tot;
    return 0;
}
