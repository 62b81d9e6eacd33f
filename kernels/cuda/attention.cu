// attention.cu — causal, grouped-query, variable-length (packed) scaled dot-product attention:
// a FlashAttention-style tiled forward with online softmax and saved logsumexp, and a
// deterministic tiled backward. No T×T buffer exists; float32 throughout (CUDA cores).
//
// Shapes: q[N,Hq,D], k/v[N,Hk,D], out[N,Hq,D], lse[N,Hq]; segments cu_seqlens[nseq+1], optional
// kv_len[nseq]; query i of a segment sees keys j ≤ i with j < kv_len (sw_kernels.h).
//
// Tiling: 64 query rows × 64 keys per step, 256 threads as a 16×16 grid; thread (ty, tx) owns
// rows ty + 16·a (a < 4) and, of a 64-wide score tile, columns tx + 16·b (b < 4), of a D-wide
// tile columns tx + 16·b (b < DP/16). Row statistics reduce over the 16 lanes of a half-warp by
// shuffles. Shared tiles are padded to DP + 1 floats a row so that the column-strided reads of
// the score products hit distinct banks. DP is D rounded up to 16, 32, 64 or 128 (template);
// the padding columns hold zeros. Scores are taken in the log2 domain (scale·log2 e folded in)
// and lse is written in natural log: lse = ln 2 · (m₂ + log₂ l).
//
// Grid: one block per (query or key tile, head, segment), flattened into blockIdx.x with the
// heaviest tiles first (late query tiles forward, early key tiles backward). The number of
// tiles comes from max_len (a host value; when it is 0 the backend reads cu_seqlens back).
//
// Backward (deterministic, no atomics), as the CPU reference in three passes:
//   Δ[r,h] = Σ_d dout·out;
//   dQ kernel, per query tile: for each key tile, P = exp(S − lse), dS = P∘(dO·Vᵀ − Δ),
//     dQ += dS·K;
//   dK/dV kernel, per key tile and kv head: for each query head of the group and each query
//     tile at or after the key tile, Pᵀ and dSᵀ, then dV += Pᵀ·dO and dK += dSᵀ·Q.
// In the 16-bit GEMM modes (bf16, fp16) the same two ops run the tensor-core kernels of
// attention_mma.cu instead (16-bit operands, float32 softmax and accumulators), like SDPA under
// autocast; the kernels here are the float32 modes' (fp32, tf32).
// Malformed cu_seqlens / kv_len / a segment longer than max_len raise the device fault (reported
// as SW_EINVAL at the next sync or download); the kernels clamp so they never read or write out
// of bounds.
#include "attention_common.cuh"
#include "cuda_ops.h"

#include <cstdlib>

#define ATT_B 64  // rows per tile (queries and keys)
#define ATT_T 256 // threads per block
#define LOG2E 1.4426950408889634f
#define LN2 0.6931471805599453f

// Rows [row0, row0 + 64) of a [*, stride] matrix (head offset applied by the caller), columns
// [0, D) into dst[64][DP+1]; rows ≥ nvalid and columns ≥ D are zero; values times mul.
template <int DP>
__device__ __forceinline__ void att_load(float *dst, const float *src, int64_t row0, int64_t nvalid,
                                         int64_t stride, int D, float mul) {
    for (int idx = threadIdx.x; idx < ATT_B * DP; idx += ATT_T) {
        int r = idx / DP, d = idx % DP;
        float v = 0.0f;
        if (r < nvalid && d < D) v = src[(row0 + r) * stride + d] * mul;
        dst[r * (DP + 1) + d] = v;
    }
}

__device__ __forceinline__ float hw_max(float v) { // max over the 16 lanes of a half-warp
    for (int o = 8; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ float hw_sum(float v) {
    for (int o = 8; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// s[a][b] = Σ_k A[ty+16a][k] · B[tx+16b][k] over the DP columns of two [64][DP+1] tiles.
template <int DP>
__device__ __forceinline__ void att_abt(float (&s)[4][4], const float *A, const float *B, int ty,
                                        int tx) {
#pragma unroll
    for (int a = 0; a < 4; a++)
#pragma unroll
        for (int b = 0; b < 4; b++)
            s[a][b] = 0.0f;
#pragma unroll 8
    for (int k = 0; k < DP; k++) {
        float x[4], y[4];
#pragma unroll
        for (int a = 0; a < 4; a++)
            x[a] = A[(ty + 16 * a) * (DP + 1) + k];
#pragma unroll
        for (int b = 0; b < 4; b++)
            y[b] = B[(tx + 16 * b) * (DP + 1) + k];
#pragma unroll
        for (int a = 0; a < 4; a++)
#pragma unroll
            for (int b = 0; b < 4; b++)
                s[a][b] += x[a] * y[b];
    }
}

// acc[a][b] += Σ_k P[ty+16a][k] · M[k][tx+16b] with P [64][65] and M [64][DP+1].
template <int DP>
__device__ __forceinline__ void att_pm(float (&acc)[4][DP / 16], const float *P, const float *M,
                                       int ty, int tx) {
#pragma unroll 4
    for (int k = 0; k < ATT_B; k++) {
        float p[4];
#pragma unroll
        for (int a = 0; a < 4; a++)
            p[a] = P[(ty + 16 * a) * (ATT_B + 1) + k];
#pragma unroll
        for (int b = 0; b < DP / 16; b++) {
            float m = M[k * (DP + 1) + tx + 16 * b];
#pragma unroll
            for (int a = 0; a < 4; a++)
                acc[a][b] += p[a] * m;
        }
    }
}

// ---- forward ----------------------------------------------------------------------------------

template <int DP>
__global__ void __launch_bounds__(ATT_T)
    k_att_fwd(float *out, float *lse, const float *q, const float *k, const float *v,
              const int32_t *cu, const int32_t *kv_len, int nseq, int ntiles, int64_t N, int Hq,
              int Hk, int D, float scale_log2) {
    extern __shared__ float sm[];
    float *Qs = sm, *Ks = Qs + ATT_B * (DP + 1), *Vs = Ks + ATT_B * (DP + 1);
    float *Ps = Vs + ATT_B * (DP + 1);
    int64_t b = blockIdx.x;
    int s = (int)(b % nseq), h = (int)((b / nseq) % Hq);
    int tile = ntiles - 1 - (int)(b / ((int64_t)nseq * Hq));
    att_seg g = att_segment(cu, kv_len, s, N);
    int64_t i0 = (int64_t)tile * ATT_B;
    if (!g.ok || i0 >= g.L) return;
    int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
    int kh = h / (Hq / Hk);
    int64_t qs = (int64_t)Hq * D, ks = (int64_t)Hk * D;
    int64_t nq = g.L - i0 < ATT_B ? g.L - i0 : ATT_B;

    float acc[4][DP / 16];
    float m[4], l[4];
#pragma unroll
    for (int a = 0; a < 4; a++) {
        m[a] = -INFINITY, l[a] = 0.0f;
#pragma unroll
        for (int c = 0; c < DP / 16; c++)
            acc[a][c] = 0.0f;
    }
    // Keys this tile needs: j ≤ last row and j < kv_len.
    int64_t nkeys = i0 + nq < g.kvl ? i0 + nq : g.kvl;
    att_load<DP>(Qs, q + g.base * qs + (int64_t)h * D, i0, nq, qs, D, scale_log2);
    for (int64_t j0 = 0; j0 < nkeys; j0 += ATT_B) {
        __syncthreads(); // the previous step is done with Ks, Vs, Ps (and Qs is written)
        int64_t nk = nkeys - j0 < ATT_B ? nkeys - j0 : ATT_B;
        att_load<DP>(Ks, k + g.base * ks + (int64_t)kh * D, j0, nk, ks, D, 1.0f);
        att_load<DP>(Vs, v + g.base * ks + (int64_t)kh * D, j0, nk, ks, D, 1.0f);
        __syncthreads();
        float sc[4][4];
        att_abt<DP>(sc, Qs, Ks, ty, tx);
#pragma unroll
        for (int a = 0; a < 4; a++) {
            int64_t i = i0 + ty + 16 * a;
            float mx = -INFINITY;
#pragma unroll
            for (int c = 0; c < 4; c++) {
                int64_t j = j0 + tx + 16 * c;
                if (j > i || j >= g.kvl) sc[a][c] = -INFINITY;
                mx = fmaxf(mx, sc[a][c]);
            }
            mx = hw_max(mx);
            float mnew = fmaxf(m[a], mx);
            float mref = mnew == -INFINITY ? 0.0f : mnew; // a row with nothing visible yet
            float alpha = exp2f(m[a] - mref);
            float ps = 0.0f;
#pragma unroll
            for (int c = 0; c < 4; c++) {
                float p = exp2f(sc[a][c] - mref);
                ps += p;
                Ps[(ty + 16 * a) * (ATT_B + 1) + tx + 16 * c] = p;
            }
            ps = hw_sum(ps);
            l[a] = l[a] * alpha + ps;
            m[a] = mnew;
#pragma unroll
            for (int c = 0; c < DP / 16; c++)
                acc[a][c] *= alpha;
        }
        __syncthreads();
        att_pm<DP>(acc, Ps, Vs, ty, tx);
    }
#pragma unroll
    for (int a = 0; a < 4; a++) {
        int64_t i = i0 + ty + 16 * a;
        if (i >= g.L) continue;
        int64_t r = g.base + i;
        float inv = l[a] > 0.0f ? 1.0f / l[a] : 0.0f;
#pragma unroll
        for (int c = 0; c < DP / 16; c++) {
            int d = tx + 16 * c;
            if (d < D) out[(r * Hq + h) * D + d] = acc[a][c] * inv;
        }
        if (tx == 0) lse[r * Hq + h] = l[a] > 0.0f ? LN2 * (m[a] + log2f(l[a])) : 0.0f;
    }
}

// ---- backward ---------------------------------------------------------------------------------

// Δ[r,h] = Σ_d dout·out: one warp per (row, head).
__global__ void k_att_delta(float *delta, const float *dout, const float *out, int64_t NH, int D) {
    int64_t w = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    int lane = threadIdx.x & 31;
    if (w >= NH) return;
    const float *a = dout + w * D, *b = out + w * D;
    float s = 0.0f;
    for (int d = lane; d < D; d += 32)
        s += a[d] * b[d];
    for (int o = 16; o > 0; o >>= 1)
        s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) delta[w] = s;
}

template <int DP>
__global__ void __launch_bounds__(ATT_T)
    k_att_bwd_dq(float *dq, const float *dout, const float *q, const float *k, const float *v,
                 const float *lse, const float *delta, const int32_t *cu, const int32_t *kv_len,
                 int nseq, int ntiles, int64_t N, int Hq, int Hk, int D, float scale,
                 float scale_log2) {
    extern __shared__ float sm[];
    float *Qs = sm, *Os = Qs + ATT_B * (DP + 1), *Ks = Os + ATT_B * (DP + 1);
    float *Vs = Ks + ATT_B * (DP + 1), *Ss = Vs + ATT_B * (DP + 1);
    int64_t b = blockIdx.x;
    int s = (int)(b % nseq), h = (int)((b / nseq) % Hq);
    int tile = ntiles - 1 - (int)(b / ((int64_t)nseq * Hq));
    att_seg g = att_segment(cu, kv_len, s, N);
    int64_t i0 = (int64_t)tile * ATT_B;
    if (!g.ok || i0 >= g.L) return;
    int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
    int kh = h / (Hq / Hk);
    int64_t qs = (int64_t)Hq * D, ks = (int64_t)Hk * D;
    int64_t nq = g.L - i0 < ATT_B ? g.L - i0 : ATT_B;
    int64_t nkeys = i0 + nq < g.kvl ? i0 + nq : g.kvl;

    float acc[4][DP / 16], lse2[4], dl[4];
#pragma unroll
    for (int a = 0; a < 4; a++) {
        int64_t i = i0 + ty + 16 * a;
        int64_t rh = (g.base + (i < g.L ? i : 0)) * Hq + h;
        lse2[a] = i < g.L ? lse[rh] * LOG2E : INFINITY;
        dl[a] = i < g.L ? delta[rh] : 0.0f;
#pragma unroll
        for (int c = 0; c < DP / 16; c++)
            acc[a][c] = 0.0f;
    }
    att_load<DP>(Qs, q + g.base * qs + (int64_t)h * D, i0, nq, qs, D, 1.0f);
    att_load<DP>(Os, dout + g.base * qs + (int64_t)h * D, i0, nq, qs, D, 1.0f);
    for (int64_t j0 = 0; j0 < nkeys; j0 += ATT_B) {
        __syncthreads();
        int64_t nk = nkeys - j0 < ATT_B ? nkeys - j0 : ATT_B;
        att_load<DP>(Ks, k + g.base * ks + (int64_t)kh * D, j0, nk, ks, D, 1.0f);
        att_load<DP>(Vs, v + g.base * ks + (int64_t)kh * D, j0, nk, ks, D, 1.0f);
        __syncthreads();
        float sc[4][4], dp[4][4];
        att_abt<DP>(sc, Qs, Ks, ty, tx);
        att_abt<DP>(dp, Os, Vs, ty, tx);
#pragma unroll
        for (int a = 0; a < 4; a++) {
            int64_t i = i0 + ty + 16 * a;
#pragma unroll
            for (int c = 0; c < 4; c++) {
                int64_t j = j0 + tx + 16 * c;
                float p = (j <= i && j < g.kvl) ? exp2f(sc[a][c] * scale_log2 - lse2[a]) : 0.0f;
                Ss[(ty + 16 * a) * (ATT_B + 1) + tx + 16 * c] = p * (dp[a][c] - dl[a]);
            }
        }
        __syncthreads();
        att_pm<DP>(acc, Ss, Ks, ty, tx);
    }
#pragma unroll
    for (int a = 0; a < 4; a++) {
        int64_t i = i0 + ty + 16 * a;
        if (i >= g.L) continue;
        int64_t r = g.base + i;
#pragma unroll
        for (int c = 0; c < DP / 16; c++) {
            int d = tx + 16 * c;
            if (d < D) dq[(r * Hq + h) * D + d] = acc[a][c] * scale;
        }
    }
}

template <int DP>
__global__ void __launch_bounds__(ATT_T)
    k_att_bwd_dkv(float *dk, float *dv, const float *dout, const float *q, const float *k,
                  const float *v, const float *lse, const float *delta, const int32_t *cu,
                  const int32_t *kv_len, int nseq, int ntiles, int64_t N, int Hq, int Hk, int D,
                  float scale, float scale_log2) {
    extern __shared__ float sm[];
    float *Ks = sm, *Vs = Ks + ATT_B * (DP + 1), *Qs = Vs + ATT_B * (DP + 1);
    float *Os = Qs + ATT_B * (DP + 1), *Ps = Os + ATT_B * (DP + 1);
    float *Ds = Ps + ATT_B * (ATT_B + 1), *lse_s = Ds + ATT_B * (ATT_B + 1), *dl_s = lse_s + ATT_B;
    int64_t b = blockIdx.x;
    int s = (int)(b % nseq), kh = (int)((b / nseq) % Hk);
    int tile = (int)(b / ((int64_t)nseq * Hk)); // early key tiles see the most queries: first
    att_seg g = att_segment(cu, kv_len, s, N);
    int64_t j0 = (int64_t)tile * ATT_B;
    if (!g.ok || j0 >= g.L) return;
    int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
    int group = Hq / Hk;
    int64_t qs = (int64_t)Hq * D, ks = (int64_t)Hk * D;
    int64_t nk = g.L - j0 < ATT_B ? g.L - j0 : ATT_B;

    float accK[4][DP / 16], accV[4][DP / 16];
#pragma unroll
    for (int a = 0; a < 4; a++)
#pragma unroll
        for (int c = 0; c < DP / 16; c++)
            accK[a][c] = accV[a][c] = 0.0f;
    if (j0 < g.kvl) {
        att_load<DP>(Ks, k + g.base * ks + (int64_t)kh * D, j0, nk, ks, D, 1.0f);
        att_load<DP>(Vs, v + g.base * ks + (int64_t)kh * D, j0, nk, ks, D, 1.0f);
        for (int h = kh * group; h < (kh + 1) * group; h++) {
            for (int64_t i0 = j0; i0 < g.L; i0 += ATT_B) {
                __syncthreads();
                int64_t nq = g.L - i0 < ATT_B ? g.L - i0 : ATT_B;
                att_load<DP>(Qs, q + g.base * qs + (int64_t)h * D, i0, nq, qs, D, 1.0f);
                att_load<DP>(Os, dout + g.base * qs + (int64_t)h * D, i0, nq, qs, D, 1.0f);
                if (threadIdx.x < ATT_B) {
                    int r = threadIdx.x;
                    int64_t rh = (g.base + i0 + r) * Hq + h;
                    lse_s[r] = r < nq ? lse[rh] * LOG2E : INFINITY;
                    dl_s[r] = r < nq ? delta[rh] : 0.0f;
                }
                __syncthreads();
                float sc[4][4], dp[4][4];
                att_abt<DP>(sc, Ks, Qs, ty, tx); // [key][query]
                att_abt<DP>(dp, Vs, Os, ty, tx);
#pragma unroll
                for (int a = 0; a < 4; a++) {
                    int64_t j = j0 + ty + 16 * a;
#pragma unroll
                    for (int c = 0; c < 4; c++) {
                        int qc = tx + 16 * c;
                        int64_t i = i0 + qc;
                        bool vis = j <= i && j < g.kvl && qc < nq;
                        float p = vis ? exp2f(sc[a][c] * scale_log2 - lse_s[qc]) : 0.0f;
                        Ps[(ty + 16 * a) * (ATT_B + 1) + qc] = p;
                        Ds[(ty + 16 * a) * (ATT_B + 1) + qc] = p * (dp[a][c] - dl_s[qc]);
                    }
                }
                __syncthreads();
                att_pm<DP>(accV, Ps, Os, ty, tx);
                att_pm<DP>(accK, Ds, Qs, ty, tx);
            }
        }
    }
#pragma unroll
    for (int a = 0; a < 4; a++) {
        int64_t j = j0 + ty + 16 * a;
        if (j >= g.L) continue;
        int64_t r = (g.base + j) * Hk + kh;
#pragma unroll
        for (int c = 0; c < DP / 16; c++) {
            int d = tx + 16 * c;
            if (d < D) {
                dk[r * D + d] = accK[a][c] * scale;
                dv[r * D + d] = accV[a][c];
            }
        }
    }
}

// Validate the segment table on the device (one thread per segment).
__global__ void k_att_check(const int32_t *cu, const int32_t *kv_len, int nseq, int64_t N,
                            int64_t max_len, sw_cuda_faultrec *fault) {
    int s = blockIdx.x * blockDim.x + threadIdx.x;
    if (s > nseq) return;
    if (s == 0 && cu[0] != 0) sw_cuda_fault_raise(fault, SW_CUDA_FAULT_ATT_CU, 0, cu[0], N);
    if (s == nseq) {
        if (cu[nseq] != N) sw_cuda_fault_raise(fault, SW_CUDA_FAULT_ATT_CU, nseq, cu[nseq], N);
        return;
    }
    int64_t L = (int64_t)cu[s + 1] - cu[s];
    if (L < 0)
        sw_cuda_fault_raise(fault, SW_CUDA_FAULT_ATT_CU, s + 1, cu[s + 1], N);
    else if (kv_len && (kv_len[s] < 0 || kv_len[s] > L))
        sw_cuda_fault_raise(fault, SW_CUDA_FAULT_ATT_KVLEN, s, kv_len[s], L);
    else if (L > max_len)
        sw_cuda_fault_raise(fault, SW_CUDA_FAULT_ATT_MAXLEN, s, L, max_len);
}

// ---- host side --------------------------------------------------------------------------------

static size_t smem_fwd(int DP) {
    return sizeof(float) * (3 * ATT_B * (DP + 1) + ATT_B * (ATT_B + 1));
}
static size_t smem_dq(int DP) {
    return sizeof(float) * (4 * ATT_B * (DP + 1) + ATT_B * (ATT_B + 1));
}
static size_t smem_dkv(int DP) {
    return sizeof(float) * (4 * ATT_B * (DP + 1) + 2 * ATT_B * (ATT_B + 1) + 2 * ATT_B);
}

static int pick_dp(int64_t D) {
    if (D <= 16) return 16;
    if (D <= 32) return 32;
    if (D <= 64) return 64;
    if (D <= 128) return 128;
    return 0;
}

struct att_geom {
    int ntiles;
    int64_t max_len;
};

static int att_prepare(sw_cuda_ctx *c, const char *op, const int32_t *cu, const int32_t *kv_len,
                       int nseq, int64_t max_len, int64_t N, int64_t Hq, int64_t Hk, int64_t D,
                       att_geom *g) {
    if (nseq < 0 || !cu)
        return sw_err_set(SW_EINVAL, "%s: cu_seqlens must start at 0 and end at N = %lld", op,
                          (long long)N);
    if (Hq <= 0 || Hk <= 0 || Hq % Hk || D <= 0)
        return sw_err_set(SW_EINVAL,
                          "%s: %lld query heads not a multiple of %lld kv heads "
                          "(head_dim %lld)",
                          op, (long long)Hq, (long long)Hk, (long long)D);
    if (!pick_dp(D))
        return sw_err_set(SW_EUNSUPPORTED,
                          "%s: head_dim %lld > 128 is not supported by the CUDA "
                          "kernels",
                          op, (long long)D);
    if (max_len <= 0) { // not given: read the table back (one sync)
        int32_t *h = (int32_t *)malloc((size_t)(nseq + 1) * sizeof(int32_t));
        if (!h) return sw_err_set(SW_ENOMEM, "%s: out of memory", op);
        cudaError_t e = cudaMemcpyAsync(h, cu, (size_t)(nseq + 1) * sizeof(int32_t),
                                        cudaMemcpyDeviceToHost, c->stream);
        if (e == cudaSuccess) e = cudaStreamSynchronize(c->stream);
        max_len = 0;
        for (int s = 0; e == cudaSuccess && s < nseq; s++)
            if ((int64_t)h[s + 1] - h[s] > max_len) max_len = (int64_t)h[s + 1] - h[s];
        free(h);
        SW_TRY(sw_cuda_check((int)e, "attention: reading cu_seqlens", __FILE__, __LINE__));
    }
    if (nseq > 0) {
        k_att_check<<<(unsigned)((nseq + 1 + 255) / 256), 256, 0, c->stream>>>(cu, kv_len, nseq, N,
                                                                               max_len, c->fault_d);
        SW_CUDA_LAUNCHED(op);
    }
    g->max_len = max_len;
    g->ntiles = (int)((max_len + ATT_B - 1) / ATT_B);
    return 0;
}

template <int DP>
static int att_fwd_launch(sw_cuda_ctx *c, float *out, float *lse, const float *q, const float *k,
                          const float *v, const int32_t *cu, const int32_t *kv_len, int nseq,
                          int ntiles, int64_t N, int Hq, int Hk, int D, float scale) {
    size_t sm = smem_fwd(DP);
    SW_TRY(sw_cuda_check((int)cudaFuncSetAttribute(
                             k_att_fwd<DP>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sm),
                         "cudaFuncSetAttribute(k_att_fwd)", __FILE__, __LINE__));
    int64_t blocks = (int64_t)ntiles * nseq * Hq;
    k_att_fwd<DP><<<(unsigned)blocks, ATT_T, sm, c->stream>>>(out, lse, q, k, v, cu, kv_len, nseq,
                                                              ntiles, N, Hq, Hk, D, scale * LOG2E);
    SW_CUDA_LAUNCHED("attention_fwd");
    return 0;
}

template <int DP>
static int att_bwd_launch(sw_cuda_ctx *c, float *dq, float *dk, float *dv, const float *dout,
                          const float *q, const float *k, const float *v, const float *lse,
                          const float *delta, const int32_t *cu, const int32_t *kv_len, int nseq,
                          int ntiles, int64_t N, int Hq, int Hk, int D, float scale) {
    size_t s1 = smem_dq(DP), s2 = smem_dkv(DP);
    SW_TRY(sw_cuda_check((int)cudaFuncSetAttribute(k_att_bwd_dq<DP>,
                                                   cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                   (int)s1),
                         "cudaFuncSetAttribute(k_att_bwd_dq)", __FILE__, __LINE__));
    SW_TRY(sw_cuda_check((int)cudaFuncSetAttribute(k_att_bwd_dkv<DP>,
                                                   cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                   (int)s2),
                         "cudaFuncSetAttribute(k_att_bwd_dkv)", __FILE__, __LINE__));
    int64_t bq = (int64_t)ntiles * nseq * Hq, bk = (int64_t)ntiles * nseq * Hk;
    k_att_bwd_dq<DP><<<(unsigned)bq, ATT_T, s1, c->stream>>>(dq, dout, q, k, v, lse, delta, cu,
                                                             kv_len, nseq, ntiles, N, Hq, Hk, D,
                                                             scale, scale * LOG2E);
    SW_CUDA_LAUNCHED("attention_bwd");
    k_att_bwd_dkv<DP><<<(unsigned)bk, ATT_T, s2, c->stream>>>(dk, dv, dout, q, k, v, lse, delta, cu,
                                                              kv_len, nseq, ntiles, N, Hq, Hk, D,
                                                              scale, scale * LOG2E);
    SW_CUDA_LAUNCHED("attention_bwd");
    return 0;
}

int sw_cuda_attention_fwd(struct sw_backend *be, float *out, float *lse, const float *q,
                          const float *k, const float *v, const int32_t *cu_seqlens,
                          const int32_t *kv_len, int nseq, int64_t max_len, int64_t N, int64_t Hq,
                          int64_t Hk, int64_t D, float scale) {
    SW_CUDA_OP(be, "attention_fwd", N, Hq, D);
    att_geom g;
    SW_TRY(att_prepare(c, "attention_fwd", cu_seqlens, kv_len, nseq, max_len, N, Hq, Hk, D, &g));
    if (N <= 0 || nseq == 0 || g.ntiles == 0) return 0;
    if (c->prec == SW_CUDA_GEMM_BF16 || c->prec == SW_CUDA_GEMM_FP16)
        return sw_cuda_attention_fwd_mma(c, pick_dp(D), out, lse, q, k, v, cu_seqlens, kv_len, nseq,
                                         g.ntiles, N, (int)Hq, (int)Hk, (int)D, scale);
    switch (pick_dp(D)) {
    case 16:
        return att_fwd_launch<16>(c, out, lse, q, k, v, cu_seqlens, kv_len, nseq, g.ntiles, N,
                                  (int)Hq, (int)Hk, (int)D, scale);
    case 32:
        return att_fwd_launch<32>(c, out, lse, q, k, v, cu_seqlens, kv_len, nseq, g.ntiles, N,
                                  (int)Hq, (int)Hk, (int)D, scale);
    case 64:
        return att_fwd_launch<64>(c, out, lse, q, k, v, cu_seqlens, kv_len, nseq, g.ntiles, N,
                                  (int)Hq, (int)Hk, (int)D, scale);
    default:
        return att_fwd_launch<128>(c, out, lse, q, k, v, cu_seqlens, kv_len, nseq, g.ntiles, N,
                                   (int)Hq, (int)Hk, (int)D, scale);
    }
}

int sw_cuda_attention_bwd(struct sw_backend *be, float *dq, float *dk, float *dv, const float *dout,
                          const float *q, const float *k, const float *v, const float *out,
                          const float *lse, const int32_t *cu_seqlens, const int32_t *kv_len,
                          int nseq, int64_t max_len, int64_t N, int64_t Hq, int64_t Hk, int64_t D,
                          float scale) {
    SW_CUDA_OP(be, "attention_bwd", N, Hq, D);
    att_geom g;
    SW_TRY(att_prepare(c, "attention_bwd", cu_seqlens, kv_len, nseq, max_len, N, Hq, Hk, D, &g));
    if (N <= 0 || nseq == 0 || g.ntiles == 0) return 0;
    float *delta = (float *)sw_cuda_ws(c, 0, (size_t)(N * Hq) * sizeof(float));
    if (!delta) return SW_ENOMEM;
    int64_t NH = N * Hq;
    k_att_delta<<<(unsigned)((NH * 32 + 255) / 256), 256, 0, c->stream>>>(delta, dout, out, NH,
                                                                          (int)D);
    SW_CUDA_LAUNCHED("attention_bwd");
    if (c->prec == SW_CUDA_GEMM_BF16 || c->prec == SW_CUDA_GEMM_FP16)
        return sw_cuda_attention_bwd_mma(c, pick_dp(D), dq, dk, dv, dout, q, k, v, lse, delta,
                                         cu_seqlens, kv_len, nseq, g.ntiles, N, (int)Hq, (int)Hk,
                                         (int)D, scale);
    switch (pick_dp(D)) {
    case 16:
        return att_bwd_launch<16>(c, dq, dk, dv, dout, q, k, v, lse, delta, cu_seqlens, kv_len,
                                  nseq, g.ntiles, N, (int)Hq, (int)Hk, (int)D, scale);
    case 32:
        return att_bwd_launch<32>(c, dq, dk, dv, dout, q, k, v, lse, delta, cu_seqlens, kv_len,
                                  nseq, g.ntiles, N, (int)Hq, (int)Hk, (int)D, scale);
    case 64:
        return att_bwd_launch<64>(c, dq, dk, dv, dout, q, k, v, lse, delta, cu_seqlens, kv_len,
                                  nseq, g.ntiles, N, (int)Hq, (int)Hk, (int)D, scale);
    default:
        return att_bwd_launch<128>(c, dq, dk, dv, dout, q, k, v, lse, delta, cu_seqlens, kv_len,
                                   nseq, g.ntiles, N, (int)Hq, (int)Hk, (int)D, scale);
    }
}
