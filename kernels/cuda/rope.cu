// rope.cu — rotate-half rotary embedding (HF Llama's apply_rotary_pos_emb), in place.
//
// Shapes: x[N,H,D] (token, head, head_dim), pos[N] int32, cos/sin[P, D/2] tables. One thread
// per (token, head, pair i < D/2) rotates (x[i], x[i + D/2]) by θ (forward) or −θ (backward,
// the transpose). A position outside [0, P) leaves its row untouched and raises the device
// fault (SW_ERANGE naming the row, see cuda_ops.h).
#include "cuda_ops.h"

__global__ void k_rope(float *x, const int32_t *pos, const float *cos_t, const float *sin_t,
                       int64_t N, int64_t H, int64_t D, int64_t P, float sign, int fault_code,
                       sw_cuda_faultrec *fault) {
    int64_t half = D / 2, total = N * H * half;
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += stride) {
        int64_t i = t % half, nh = t / half, n = nh / H;
        int32_t p = pos[n];
        if (p < 0 || p >= P) {
            if (i == 0 && nh % H == 0) sw_cuda_fault_raise(fault, fault_code, n, p, P);
            continue;
        }
        float c = cos_t[(int64_t)p * half + i], s = sign * sin_t[(int64_t)p * half + i];
        float *v = x + nh * D;
        float x1 = v[i], x2 = v[i + half];
        v[i] = x1 * c - x2 * s;
        v[i + half] = x2 * c + x1 * s;
    }
}

static int rope_run(struct sw_backend *be, const char *op, float *x, const int32_t *pos,
                    const float *cos_t, const float *sin_t, int64_t N, int64_t H, int64_t D,
                    int64_t P, float sign, int code) {
    SW_CUDA_OP(be, op, N, H, D);
    if (D % 2) return sw_err_set(SW_EINVAL, "%s: head_dim %lld is odd", op, (long long)D);
    int64_t total = N * H * (D / 2);
    if (total <= 0) return 0;
    k_rope<<<sw_cuda_blocks(total, 256), 256, 0, c->stream>>>(x, pos, cos_t, sin_t, N, H, D, P,
                                                              sign, code, c->fault_d);
    SW_CUDA_LAUNCHED(op);
    return 0;
}

int sw_cuda_rope_fwd(struct sw_backend *be, float *x, const int32_t *pos, const float *cos_t,
                     const float *sin_t, int64_t N, int64_t H, int64_t D, int64_t P) {
    return rope_run(be, "rope_fwd", x, pos, cos_t, sin_t, N, H, D, P, 1.0f, SW_CUDA_FAULT_ROPE_FWD);
}

int sw_cuda_rope_bwd(struct sw_backend *be, float *dx, const int32_t *pos, const float *cos_t,
                     const float *sin_t, int64_t N, int64_t H, int64_t D, int64_t P) {
    return rope_run(be, "rope_bwd", dx, pos, cos_t, sin_t, N, H, D, P, -1.0f,
                    SW_CUDA_FAULT_ROPE_BWD);
}
