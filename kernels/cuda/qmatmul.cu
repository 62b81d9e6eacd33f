// qmatmul.cu — linears over a frozen quantized weight (lib/core/sw_qformat.h): a grid-stride
// kernel dequantizes W (int8/int4 with group scales and zeros, NF4 with or without double
// quantization, FP8 E4M3 with channel scales) into the op workspace ws[0], then the ordinary
// cuBLASLt GEMM runs on it. In the 16-bit GEMM modes the kernel writes the mode's 16-bit type
// directly (the operand the GEMM would otherwise convert from float32), so a quantized linear
// costs one [out, in] 16-bit workspace at a time, never a float copy of the model.
// The element formula is sw_qweight_dequant_span's (host reference), written again for the
// device; test/cuda/test_cuda_kernels.c compares the two.
#include "cuda_ops.h"

__device__ __forceinline__ float fp8_e4m3(uint8_t b) {
    int s = b >> 7, e = (b >> 3) & 15, m = b & 7;
    float v;
    if (e == 15 && m == 7)
        v = __int_as_float(0x7fc00000);
    else if (e == 0)
        v = ldexpf((float)m, -9);
    else
        v = ldexpf(1.0f + (float)m / 8.0f, e - 7);
    return s ? -v : v;
}

__device__ __forceinline__ float deq(const sw_qweight &q, int64_t r, int64_t c) {
    switch (q.fmt) {
    case SW_QFMT_INT8:
    case SW_QFMT_INT4: {
        int64_t g = q.g_idx ? q.g_idx[c] : c / q.group;
        float s = q.scale[r * q.ngroups + g];
        float z = q.zero ? q.zero[r * q.ngroups + g] : q.zero_const;
        float code;
        if (q.fmt == SW_QFMT_INT8)
            code = (float)q.q[r * q.cols + c];
        else {
            uint8_t byte = q.q[r * (q.cols / 2) + (c >> 1)];
            code = (float)((c & 1) ? byte >> 4 : byte & 15);
        }
        return s * (code - z);
    }
    case SW_QFMT_NF4: {
        int64_t i = r * q.cols + c, b = i / q.group;
        float a = q.qabsmax
                      ? q.nested_map[q.qabsmax[b]] * q.nested_absmax[b / 256] + q.nested_offset
                      : q.scale[b];
        uint8_t byte = q.q[i >> 1];
        return q.code[(i & 1) ? byte & 15 : byte >> 4] * a;
    }
    case SW_QFMT_FP8: return fp8_e4m3(q.q[r * q.cols + c]) * q.scale[r];
    default: return 0.0f;
    }
}

template <typename T> __device__ __forceinline__ T to_out(float v);
template <> __device__ __forceinline__ float to_out<float>(float v) {
    return v;
}
template <> __device__ __forceinline__ __nv_bfloat16 to_out<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}
template <> __device__ __forceinline__ __half to_out<__half>(float v) {
    return __float2half_rn(v);
}

template <typename T> __global__ void k_dequant(T *w, sw_qweight q, int64_t row0, int64_t n) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        int64_t r = i / q.cols, c = i - r * q.cols;
        w[i] = to_out<T>(deq(q, row0 + r, c));
    }
}

static int check(const char *op, const sw_qweight *q) {
    if (!q || q->fmt <= SW_QFMT_NONE || q->fmt >= SW_QFMT_COUNT || !q->q)
        return sw_err_set(SW_EINVAL, "%s: not a quantized weight", op);
    return 0;
}

// W (all rows) into ws[0], in the GEMM's operand type; *is_half says which.
static int dequant_ws(sw_cuda_ctx *c, const char *op, const sw_qweight *q, const void **w,
                      int *is_half) {
    int64_t n = q->rows * q->cols;
    int half = sw_cuda_half_mode(c) && !(c->prec == SW_CUDA_GEMM_BF16 && c->bf16_inline);
    void *ws = sw_cuda_ws(c, 0, (size_t)(n > 0 ? n : 1) * (half ? 2 : 4));
    if (!ws) return SW_ENOMEM;
    unsigned blocks = sw_cuda_blocks(n, 256);
    if (!half)
        k_dequant<float><<<blocks, 256, 0, c->stream>>>((float *)ws, *q, 0, n);
    else if (c->prec == SW_CUDA_GEMM_BF16)
        k_dequant<__nv_bfloat16><<<blocks, 256, 0, c->stream>>>((__nv_bfloat16 *)ws, *q, 0, n);
    else
        k_dequant<__half><<<blocks, 256, 0, c->stream>>>((__half *)ws, *q, 0, n);
    SW_CUDA_LAUNCHED(op);
    *w = ws;
    *is_half = half;
    return 0;
}

int sw_cuda_dequant(struct sw_backend *be, float *w, const struct sw_qweight *q, int64_t row0,
                    int64_t nrows) {
    SW_CUDA_OP(be, "dequant", nrows, q ? q->cols : 0);
    SW_TRY(check("dequant", q));
    if (row0 < 0 || nrows < 0 || row0 + nrows > q->rows)
        return sw_err_set(SW_ERANGE, "dequant: rows [%lld, %lld) outside the weight's %lld",
                          (long long)row0, (long long)(row0 + nrows), (long long)q->rows);
    int64_t n = nrows * q->cols;
    if (n == 0) return 0;
    k_dequant<float><<<sw_cuda_blocks(n, 256), 256, 0, c->stream>>>(w, *q, row0, n);
    SW_CUDA_LAUNCHED("dequant");
    return 0;
}

int sw_cuda_qmatmul_fwd(struct sw_backend *be, float *y, const float *x, const struct sw_qweight *q,
                        const float *b, int64_t M, float alpha, float beta) {
    SW_CUDA_OP(be, "qmatmul_fwd", M, q ? q->rows : 0, q ? q->cols : 0);
    SW_TRY(check("qmatmul_fwd", q));
    if (M == 0 || q->rows == 0) return 0;
    const void *w;
    int half;
    SW_TRY(dequant_ws(c, "qmatmul_fwd", q, &w, &half));
    return sw_cuda_gemm_mixed(c, "qmatmul_fwd", y, x, 0, w, half, b, M, q->rows, q->cols, 0, 1,
                              alpha, beta);
}

int sw_cuda_qmatmul_bwd_dx(struct sw_backend *be, float *dx, const float *dy,
                           const struct sw_qweight *q, int64_t M, float alpha, float beta) {
    SW_CUDA_OP(be, "qmatmul_bwd_dx", M, q ? q->rows : 0, q ? q->cols : 0);
    SW_TRY(check("qmatmul_bwd_dx", q));
    if (M == 0 || q->cols == 0) return 0;
    const void *w;
    int half;
    SW_TRY(dequant_ws(c, "qmatmul_bwd_dx", q, &w, &half));
    // dx[M,K] = dy[M,N] · w[N,K]
    return sw_cuda_gemm_mixed(c, "qmatmul_bwd_dx", dx, dy, 0, w, half, NULL, M, q->cols, q->rows, 0,
                              0, alpha, beta);
}
