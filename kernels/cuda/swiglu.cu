// swiglu.cu — the Llama/Qwen MLP gate: out = silu(gate) · up, silu(g) = g·σ(g), elementwise
// over n floats ([N, intermediate] flattened), and its backward
//   dup = dout·silu(g),   dgate = dout·up·σ(g)·(1 + g·(1 − σ(g))).
// σ uses expf (not the fast __expf) so results stay within float32 rounding of the CPU's.
#include "cuda_ops.h"

__device__ __forceinline__ float sigmoid_f(float g) { return 1.0f / (1.0f + expf(-g)); }

__global__ void k_swiglu_fwd(float *out, const float *gate, const float *up, int64_t n) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float g = gate[i];
        out[i] = g * sigmoid_f(g) * up[i];
    }
}

__global__ void k_swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate,
                             const float *up, int64_t n) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float g = gate[i], s = sigmoid_f(g), d = dout[i], u = up[i];
        dup[i] = d * g * s;
        dgate[i] = d * u * s * (1.0f + g * (1.0f - s));
    }
}

int sw_cuda_swiglu_fwd(struct sw_backend *be, float *out, const float *gate, const float *up,
                       int64_t n) {
    SW_CUDA_OP(be, "swiglu_fwd", n);
    if (n <= 0) return 0;
    k_swiglu_fwd<<<sw_cuda_blocks(n, 256), 256, 0, c->stream>>>(out, gate, up, n);
    SW_CUDA_LAUNCHED("swiglu_fwd");
    return 0;
}

int sw_cuda_swiglu_bwd(struct sw_backend *be, float *dgate, float *dup, const float *dout,
                       const float *gate, const float *up, int64_t n) {
    SW_CUDA_OP(be, "swiglu_bwd", n);
    if (n <= 0) return 0;
    k_swiglu_bwd<<<sw_cuda_blocks(n, 256), 256, 0, c->stream>>>(dgate, dup, dout, gate, up, n);
    SW_CUDA_LAUNCHED("swiglu_bwd");
    return 0;
}
