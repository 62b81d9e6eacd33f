// swiglu.cu — the Llama/Qwen MLP gate: out = silu(gate) · up, silu(g) = g·σ(g), elementwise
// over n floats ([N, intermediate] flattened), and its backward
//   dup = dout·silu(g),   dgate = dout·up·σ(g)·(1 + g·(1 − σ(g))).
// σ uses expf (not the fast __expf) so results stay within float32 rounding of the CPU's.
#include "cuda_ops.h"

__device__ __forceinline__ float sigmoid_f(float g) {
    return 1.0f / (1.0f + expf(-g));
}

__device__ __forceinline__ float swiglu1(float g, float u) {
    return g * sigmoid_f(g) * u;
}
__device__ __forceinline__ void swiglu1_bwd(float d, float g, float u, float &dg, float &du) {
    float s = sigmoid_f(g);
    du = d * g * s;
    dg = d * u * s * (1.0f + g * (1.0f - s));
}

// Memory-bound: 16-byte loads and stores when every pointer allows (the [N, F] activations of
// the model always do), elementwise otherwise. The four-lane and one-lane paths compute the
// same expression, so results do not depend on alignment.
__global__ void k_swiglu_fwd(float *out, const float *gate, const float *up, int64_t n, int vec) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    int64_t i0 = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (vec) {
        const float4 *g4 = (const float4 *)gate, *u4 = (const float4 *)up;
        float4 *o4 = (float4 *)out;
        for (int64_t i = i0; i < n / 4; i += stride) {
            float4 g = g4[i], u = u4[i];
            o4[i] = make_float4(swiglu1(g.x, u.x), swiglu1(g.y, u.y), swiglu1(g.z, u.z),
                                swiglu1(g.w, u.w));
        }
        return;
    }
    for (int64_t i = i0; i < n; i += stride)
        out[i] = swiglu1(gate[i], up[i]);
}

__global__ void k_swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate,
                             const float *up, int64_t n, int vec) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    int64_t i0 = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (vec) {
        const float4 *d4 = (const float4 *)dout, *g4 = (const float4 *)gate;
        const float4 *u4 = (const float4 *)up;
        float4 *dg4 = (float4 *)dgate, *du4 = (float4 *)dup;
        for (int64_t i = i0; i < n / 4; i += stride) {
            float4 d = d4[i], g = g4[i], u = u4[i], dg, du;
            swiglu1_bwd(d.x, g.x, u.x, dg.x, du.x);
            swiglu1_bwd(d.y, g.y, u.y, dg.y, du.y);
            swiglu1_bwd(d.z, g.z, u.z, dg.z, du.z);
            swiglu1_bwd(d.w, g.w, u.w, dg.w, du.w);
            dg4[i] = dg;
            du4[i] = du;
        }
        return;
    }
    for (int64_t i = i0; i < n; i += stride)
        swiglu1_bwd(dout[i], gate[i], up[i], dgate[i], dup[i]);
}

static int aligned16(const void *a, const void *b, const void *c, const void *d, const void *e) {
    return ((((uintptr_t)a | (uintptr_t)b | (uintptr_t)c | (uintptr_t)d | (uintptr_t)e) & 15) == 0);
}

int sw_cuda_swiglu_fwd(struct sw_backend *be, float *out, const float *gate, const float *up,
                       int64_t n) {
    SW_CUDA_OP(be, "swiglu_fwd", n);
    if (n <= 0) return 0;
    int vec = (n & 3) == 0 && aligned16(out, gate, up, out, out);
    k_swiglu_fwd<<<sw_cuda_blocks(vec ? n / 4 : n, 256), 256, 0, c->stream>>>(out, gate, up, n,
                                                                              vec);
    SW_CUDA_LAUNCHED("swiglu_fwd");
    return 0;
}

int sw_cuda_swiglu_bwd(struct sw_backend *be, float *dgate, float *dup, const float *dout,
                       const float *gate, const float *up, int64_t n) {
    SW_CUDA_OP(be, "swiglu_bwd", n);
    if (n <= 0) return 0;
    int vec = (n & 3) == 0 && aligned16(dgate, dup, dout, gate, up);
    k_swiglu_bwd<<<sw_cuda_blocks(vec ? n / 4 : n, 256), 256, 0, c->stream>>>(dgate, dup, dout,
                                                                              gate, up, n, vec);
    SW_CUDA_LAUNCHED("swiglu_bwd");
    return 0;
}
