// attention_bf16.cu — the tensor-core variant of attention.cu, used when the backend's GEMM
// precision is bf16 (the arithmetic of PyTorch's bf16 autocast + SDPA): Q, K, V, dO and the
// probabilities P / dS enter the tensor cores as bfloat16 (WMMA m16n16k16, HMMA on Hopper); the
// scores, the online-softmax statistics, lse and every accumulator stay float32. Same masking,
// grid order, lse convention and deterministic three-pass backward as attention.cu (read that
// file's comment first); inputs and outputs are float32 tensors.
//
// A block is 4 warps over a 64-row tile (warp w owns rows 16w..16w+15). Per key tile each warp
//   S = Q·Kᵀ (4 fragments of 16×16, into shared float), softmax of its 16 rows by lane pairs
//   (lane 2r and 2r+1 take the two halves of row r), P as bf16, then O = α·O + P·V with O kept
//   in shared float (WMMA does not expose the row of an accumulator element, so the row rescale
//   α happens in shared memory between a store and a load of the accumulator).
// Backward: dQ per query tile (dQ accumulators stay in registers), dK/dV per key tile and query
// head (both accumulators in registers; the heads of a GQA group write partials that one more
// kernel sums in head order, deterministic), dS and P rounded to bf16 before their products.
// Inputs are first converted once to bf16 rows padded to DP (k_tc_convert), so tile loads are
// 16-byte copies and the K/V of a GQA group are converted once, not once per query head.
// Shared tiles are padded (bf16 rows + 8, float rows + 4) to spread banks and keep the 32-byte
// alignment WMMA loads need.
#include "attention_common.cuh"
#include "cuda_ops.h"

#include <mma.h>

using namespace nvcuda;

#define TB 64      // tile rows
#define TT 128     // threads (4 warps)
#define LOG2E_F 1.4426950408889634f
#define LN2_F 0.6931471805599453f

typedef __nv_bfloat16 bf16;
typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> frag_a;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> frag_b_row;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> frag_b_col;
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> frag_c;

template <int DP> struct tc_dims {
    static const int LDB = DP + 8;   // bf16 [64][DP] tiles
    static const int LDP = TB + 8;   // bf16 [64][64] tiles
    static const int LDS = TB + 4;   // float [64][64] tiles
    static const int LDO = DP + 4;   // float [64][DP] tiles
    static const int TILE_B = TB * LDB * 2, TILE_P = TB * LDP * 2;
    static const int TILE_S = TB * LDS * 4, TILE_O = TB * LDO * 4;
};

// Rows [row0, row0+64) of a bf16 [*, stride] matrix whose rows hold DP values (head_dim padded
// with zeros by tc_convert), into dst[64][LDB] with 16-byte copies; rows ≥ nvalid are zero.
template <int DP>
__device__ __forceinline__ void tc_load(bf16 *dst, const bf16 *src, int64_t row0, int64_t nvalid,
                                        int64_t stride) {
    const int LDB = tc_dims<DP>::LDB, VPR = DP / 8; // 16-byte vectors per row
    for (int idx = threadIdx.x; idx < TB * VPR; idx += TT) {
        int r = idx / VPR, cv = idx % VPR;
        uint4 val = make_uint4(0, 0, 0, 0);
        if (r < nvalid) val = ((const uint4 *)(src + (row0 + r) * stride))[cv];
        *(uint4 *)(dst + r * LDB + cv * 8) = val;
    }
}

// dst[nh, 0..DP) = bf16(src[nh, 0..D) · mul), zero-padded to DP: one pass before the kernels so
// every tile load is a plain 16-byte copy (and K/V are converted once, not once per query head).
__global__ void k_tc_convert(bf16 *dst, const float *src, int64_t NH, int D, int DP, float mul) {
    int64_t total = NH * DP, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += stride) {
        int64_t nh = t / DP;
        int d = (int)(t % DP);
        dst[t] = __float2bfloat16_rn(d < D ? src[nh * D + d] * mul : 0.0f);
    }
}

// C strip (16 × 64, warp's rows) = A[16w.., 0..DP) · B[0..64, 0..DP)ᵀ into float S[.][LDS].
template <int DP>
__device__ __forceinline__ void tc_abt(float *S, const bf16 *A, const bf16 *B, int warp) {
    const int LDB = tc_dims<DP>::LDB, LDS = tc_dims<DP>::LDS;
#pragma unroll
    for (int n = 0; n < TB / 16; n++) {
        frag_c c;
        wmma::fill_fragment(c, 0.0f);
#pragma unroll
        for (int k = 0; k < DP / 16; k++) {
            frag_a a;
            frag_b_col b;
            wmma::load_matrix_sync(a, A + warp * 16 * LDB + k * 16, LDB);
            wmma::load_matrix_sync(b, B + n * 16 * LDB + k * 16, LDB);
            wmma::mma_sync(c, a, b, c);
        }
        wmma::store_matrix_sync(S + warp * 16 * LDS + n * 16, c, LDS, wmma::mem_row_major);
    }
}

// acc[n] += P[16w.., 0..64) · M[0..64, 16n..16n+16)  (P bf16 [64][LDP], M bf16 [64][LDB])
template <int DP>
__device__ __forceinline__ void tc_pm(frag_c (&acc)[DP / 16], const bf16 *P, const bf16 *M,
                                      int warp) {
    const int LDB = tc_dims<DP>::LDB, LDP = tc_dims<DP>::LDP;
#pragma unroll
    for (int k = 0; k < TB / 16; k++) {
        frag_a a;
        wmma::load_matrix_sync(a, P + warp * 16 * LDP + k * 16, LDP);
#pragma unroll
        for (int n = 0; n < DP / 16; n++) {
            frag_b_row b;
            wmma::load_matrix_sync(b, M + k * 16 * LDB + n * 16, LDB);
            wmma::mma_sync(acc[n], a, b, acc[n]);
        }
    }
}

// ---- forward ----------------------------------------------------------------------------------

template <int DP>
__global__ void __launch_bounds__(TT)
k_att_fwd_tc(float *out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v,
             const int32_t *cu, const int32_t *kv_len, int nseq, int ntiles, int64_t N, int Hq,
             int Hk, int D) {
    typedef tc_dims<DP> T;
    extern __shared__ __align__(128) unsigned char smem[];
    bf16 *Qs = (bf16 *)smem, *Ks = (bf16 *)(smem + T::TILE_B), *Vs = (bf16 *)(smem + 2 * T::TILE_B);
    bf16 *Ps = (bf16 *)(smem + 3 * T::TILE_B);
    float *Ss = (float *)(smem + 3 * T::TILE_B + T::TILE_P);
    float *Os = (float *)(smem + 3 * T::TILE_B + T::TILE_P + T::TILE_S);
    int64_t b = blockIdx.x;
    int s = (int)(b % nseq), h = (int)((b / nseq) % Hq);
    int tile = ntiles - 1 - (int)(b / ((int64_t)nseq * Hq));
    att_seg g = att_segment(cu, kv_len, s, N);
    int64_t i0 = (int64_t)tile * TB;
    if (!g.ok || i0 >= g.L) return;
    int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    int rl = warp * 16 + (lane >> 1), half = lane & 1; // this lane's row (in tile) and half
    int kh = h / (Hq / Hk);
    int64_t qs = (int64_t)Hq * DP, ks = (int64_t)Hk * DP; // bf16 rows padded to DP
    int64_t nq = g.L - i0 < TB ? g.L - i0 : TB;
    int64_t nkeys = i0 + nq < g.kvl ? i0 + nq : g.kvl;
    int64_t i = i0 + rl;

    tc_load<DP>(Qs, q + g.base * qs + (int64_t)h * DP, i0, nq, qs); // q holds q·scale·log2 e
    for (int c = half * (DP / 2); c < (half + 1) * (DP / 2); c++) Os[rl * T::LDO + c] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    for (int64_t j0 = 0; j0 < nkeys; j0 += TB) {
        __syncthreads();
        int64_t nk = nkeys - j0 < TB ? nkeys - j0 : TB;
        tc_load<DP>(Ks, k + g.base * ks + (int64_t)kh * DP, j0, nk, ks);
        tc_load<DP>(Vs, v + g.base * ks + (int64_t)kh * DP, j0, nk, ks);
        __syncthreads();
        tc_abt<DP>(Ss, Qs, Ks, warp);
        __syncwarp();
        // Softmax of row rl over this lane's 32 (interleaved) columns, combined with its partner.
        float *srow = Ss + rl * T::LDS + half; // columns half, half + 2, ... (fewer bank conflicts)
        float mx = -INFINITY;
        for (int c = 0; c < 64; c += 2) {
            int64_t j = j0 + half + c;
            float sv = (j > i || j >= g.kvl) ? -INFINITY : srow[c];
            srow[c] = sv;
            mx = fmaxf(mx, sv);
        }
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        float mnew = fmaxf(m, mx);
        float mref = mnew == -INFINITY ? 0.0f : mnew;
        float alpha = exp2f(m - mref), ps = 0.0f;
        bf16 *prow = Ps + rl * T::LDP + half;
        for (int c = 0; c < 64; c += 2) {
            float p = exp2f(srow[c] - mref);
            bf16 pb = __float2bfloat16_rn(p);
            ps += __bfloat162float(pb); // the sum of what the product uses
            prow[c] = pb;
        }
        ps += __shfl_xor_sync(0xffffffffu, ps, 1);
        l = l * alpha + ps;
        m = mnew;
        float *orow = Os + rl * T::LDO + half;
        for (int c = 0; c < DP; c += 2) orow[c] *= alpha;
        __syncwarp();
        frag_c acc[DP / 16];
#pragma unroll
        for (int n = 0; n < DP / 16; n++)
            wmma::load_matrix_sync(acc[n], Os + warp * 16 * T::LDO + n * 16, T::LDO,
                                   wmma::mem_row_major);
        tc_pm<DP>(acc, Ps, Vs, warp);
#pragma unroll
        for (int n = 0; n < DP / 16; n++)
            wmma::store_matrix_sync(Os + warp * 16 * T::LDO + n * 16, acc[n], T::LDO,
                                    wmma::mem_row_major);
        __syncwarp();
    }
    __syncwarp();
    if (i < g.L) {
        int64_t r = g.base + i;
        float inv = l > 0.0f ? 1.0f / l : 0.0f;
        for (int c = half * (DP / 2); c < (half + 1) * (DP / 2); c++)
            if (c < D) out[(r * Hq + h) * D + c] = Os[rl * T::LDO + c] * inv;
        if (half == 0) lse[r * Hq + h] = l > 0.0f ? LN2_F * (m + log2f(l)) : 0.0f;
    }
}

// ---- backward: dQ -----------------------------------------------------------------------------

template <int DP>
__global__ void __launch_bounds__(TT)
k_att_dq_tc(float *dq, const bf16 *dout, const bf16 *q, const bf16 *k, const bf16 *v,
            const float *lse, const float *delta, const int32_t *cu, const int32_t *kv_len,
            int nseq, int ntiles, int64_t N, int Hq, int Hk, int D, float scale,
            float scale_log2) {
    typedef tc_dims<DP> T;
    extern __shared__ __align__(128) unsigned char smem[];
    bf16 *Qs = (bf16 *)smem, *Dos = (bf16 *)(smem + T::TILE_B);
    bf16 *Ks = (bf16 *)(smem + 2 * T::TILE_B), *Vs = (bf16 *)(smem + 3 * T::TILE_B);
    bf16 *dSs = (bf16 *)(smem + 4 * T::TILE_B);
    float *Ss = (float *)(smem + 4 * T::TILE_B + T::TILE_P);
    float *dPs = (float *)(smem + 4 * T::TILE_B + T::TILE_P + T::TILE_S);
    float *Outs = Ss; // final dQ staging [64][LDO] (aliases Ss + dPs, free by then)
    int64_t b = blockIdx.x;
    int s = (int)(b % nseq), h = (int)((b / nseq) % Hq);
    int tile = ntiles - 1 - (int)(b / ((int64_t)nseq * Hq));
    att_seg g = att_segment(cu, kv_len, s, N);
    int64_t i0 = (int64_t)tile * TB;
    if (!g.ok || i0 >= g.L) return;
    int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    int rl = warp * 16 + (lane >> 1), half = lane & 1;
    int kh = h / (Hq / Hk);
    int64_t qs = (int64_t)Hq * DP, ks = (int64_t)Hk * DP; // bf16 rows padded to DP
    int64_t nq = g.L - i0 < TB ? g.L - i0 : TB;
    int64_t nkeys = i0 + nq < g.kvl ? i0 + nq : g.kvl;
    int64_t i = i0 + rl;
    float lse2 = i < g.L ? lse[(g.base + i) * Hq + h] * LOG2E_F : INFINITY;
    float dl = i < g.L ? delta[(g.base + i) * Hq + h] : 0.0f;

    tc_load<DP>(Qs, q + g.base * qs + (int64_t)h * DP, i0, nq, qs);
    tc_load<DP>(Dos, dout + g.base * qs + (int64_t)h * DP, i0, nq, qs);
    frag_c acc[DP / 16];
#pragma unroll
    for (int n = 0; n < DP / 16; n++) wmma::fill_fragment(acc[n], 0.0f);
    for (int64_t j0 = 0; j0 < nkeys; j0 += TB) {
        __syncthreads();
        int64_t nk = nkeys - j0 < TB ? nkeys - j0 : TB;
        tc_load<DP>(Ks, k + g.base * ks + (int64_t)kh * DP, j0, nk, ks);
        tc_load<DP>(Vs, v + g.base * ks + (int64_t)kh * DP, j0, nk, ks);
        __syncthreads();
        tc_abt<DP>(Ss, Qs, Ks, warp);
        tc_abt<DP>(dPs, Dos, Vs, warp);
        __syncwarp();
        const float *srow = Ss + rl * T::LDS + half, *drow = dPs + rl * T::LDS + half;
        bf16 *dsrow = dSs + rl * T::LDP + half;
        for (int c = 0; c < 64; c += 2) {
            int64_t j = j0 + half + c;
            float p = (j <= i && j < g.kvl) ? exp2f(srow[c] * scale_log2 - lse2) : 0.0f;
            dsrow[c] = __float2bfloat16_rn(p * (drow[c] - dl));
        }
        __syncwarp();
        tc_pm<DP>(acc, dSs, Ks, warp);
    }
    __syncthreads(); // Ss/dPs of every warp are done before the staging area reuses them
#pragma unroll
    for (int n = 0; n < DP / 16; n++)
        wmma::store_matrix_sync(Outs + warp * 16 * T::LDO + n * 16, acc[n], T::LDO,
                                wmma::mem_row_major);
    __syncwarp();
    if (i < g.L) {
        int64_t r = g.base + i;
        for (int c = half * (DP / 2); c < (half + 1) * (DP / 2); c++)
            if (c < D) dq[(r * Hq + h) * D + c] = Outs[rl * T::LDO + c] * scale;
    }
}

// ---- backward: dK, dV -------------------------------------------------------------------------

template <int DP>
__global__ void __launch_bounds__(TT)
k_att_dkv_tc(float *pk, float *pv, const bf16 *dout, const bf16 *q, const bf16 *k,
             const bf16 *v, const float *lse, const float *delta, const int32_t *cu,
             const int32_t *kv_len, int nseq, int ntiles, int64_t N, int Hq, int Hk, int D,
             float scale, float scale_log2) {
    typedef tc_dims<DP> T;
    extern __shared__ __align__(128) unsigned char smem[];
    bf16 *Ks = (bf16 *)smem, *Vs = (bf16 *)(smem + T::TILE_B);
    bf16 *Qs = (bf16 *)(smem + 2 * T::TILE_B), *Dos = (bf16 *)(smem + 3 * T::TILE_B);
    bf16 *Pt = (bf16 *)(smem + 4 * T::TILE_B), *dSt = (bf16 *)(smem + 4 * T::TILE_B + T::TILE_P);
    float *St = (float *)(smem + 4 * T::TILE_B + 2 * T::TILE_P);
    float *dPt = (float *)(smem + 4 * T::TILE_B + 2 * T::TILE_P + T::TILE_S);
    float *lse_s = (float *)(smem + 4 * T::TILE_B + 2 * T::TILE_P + 2 * T::TILE_S);
    float *dl_s = lse_s + TB;
    float *Outs = St; // final staging [64][LDO] (aliases St + dPt)
    // One block per (key tile, query head, segment): the heads of a GQA group write partial
    // dK/dV (pk/pv[h % group]), summed in head order by k_att_dkv_reduce — a balanced grid
    // instead of one block walking every head of the group.
    int64_t b = blockIdx.x;
    int s = (int)(b % nseq), hq = (int)((b / nseq) % Hq);
    int tile = (int)(b / ((int64_t)nseq * Hq)); // early key tiles see the most queries: first
    att_seg g = att_segment(cu, kv_len, s, N);
    int64_t j0 = (int64_t)tile * TB;
    if (!g.ok || j0 >= g.L) return;
    int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    int rl = warp * 16 + (lane >> 1), half = lane & 1;
    int group = Hq / Hk, kh = hq / group;
    int64_t qs = (int64_t)Hq * DP, ks = (int64_t)Hk * DP; // bf16 rows padded to DP
    int64_t nk = g.L - j0 < TB ? g.L - j0 : TB;
    int64_t j = j0 + rl;
    float *dk = pk + (int64_t)(hq % group) * N * Hk * D, *dv = pv + (int64_t)(hq % group) * N * Hk * D;

    frag_c accK[DP / 16], accV[DP / 16];
#pragma unroll
    for (int n = 0; n < DP / 16; n++) {
        wmma::fill_fragment(accK[n], 0.0f);
        wmma::fill_fragment(accV[n], 0.0f);
    }
    if (j0 < g.kvl) {
        tc_load<DP>(Ks, k + g.base * ks + (int64_t)kh * DP, j0, nk, ks);
        tc_load<DP>(Vs, v + g.base * ks + (int64_t)kh * DP, j0, nk, ks);
        {
            for (int64_t i0 = j0; i0 < g.L; i0 += TB) {
                __syncthreads();
                int64_t nq = g.L - i0 < TB ? g.L - i0 : TB;
                tc_load<DP>(Qs, q + g.base * qs + (int64_t)hq * DP, i0, nq, qs);
                tc_load<DP>(Dos, dout + g.base * qs + (int64_t)hq * DP, i0, nq, qs);
                if (threadIdx.x < TB) {
                    int r = threadIdx.x;
                    int64_t rh = (g.base + i0 + r) * Hq + hq;
                    lse_s[r] = r < nq ? lse[rh] * LOG2E_F : INFINITY;
                    dl_s[r] = r < nq ? delta[rh] : 0.0f;
                }
                __syncthreads();
                tc_abt<DP>(St, Ks, Qs, warp);  // [key][query]
                tc_abt<DP>(dPt, Vs, Dos, warp);
                __syncwarp();
                const float *srow = St + rl * T::LDS + half, *drow = dPt + rl * T::LDS + half;
                bf16 *prow = Pt + rl * T::LDP + half, *dsrow = dSt + rl * T::LDP + half;
                for (int c = 0; c < 64; c += 2) {
                    int qc = half + c;
                    int64_t iq = i0 + qc;
                    bool vis = j <= iq && j < g.kvl && qc < nq;
                    float p = vis ? exp2f(srow[c] * scale_log2 - lse_s[qc]) : 0.0f;
                    prow[c] = __float2bfloat16_rn(p);
                    dsrow[c] = __float2bfloat16_rn(p * (drow[c] - dl_s[qc]));
                }
                __syncwarp();
                tc_pm<DP>(accV, Pt, Dos, warp);
                tc_pm<DP>(accK, dSt, Qs, warp);
            }
        }
    }
    __syncthreads();
#pragma unroll
    for (int n = 0; n < DP / 16; n++)
        wmma::store_matrix_sync(Outs + warp * 16 * T::LDO + n * 16, accK[n], T::LDO,
                                wmma::mem_row_major);
    __syncwarp();
    int64_t r = (g.base + j) * Hk + kh;
    if (j < g.L)
        for (int c = half * (DP / 2); c < (half + 1) * (DP / 2); c++)
            if (c < D) dk[r * D + c] = Outs[rl * T::LDO + c] * scale;
    __syncwarp();
#pragma unroll
    for (int n = 0; n < DP / 16; n++)
        wmma::store_matrix_sync(Outs + warp * 16 * T::LDO + n * 16, accV[n], T::LDO,
                                wmma::mem_row_major);
    __syncwarp();
    if (j < g.L)
        for (int c = half * (DP / 2); c < (half + 1) * (DP / 2); c++)
            if (c < D) dv[r * D + c] = Outs[rl * T::LDO + c];
}

// dk[e] = Σ_g pk[g][e] (g = 0..group-1 in order), the same for dv; e over N·Hk·D.
__global__ void k_att_dkv_reduce(float *dk, float *dv, const float *pk, const float *pv,
                                 int64_t n, int group) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += stride) {
        float a = 0.0f, b = 0.0f;
        for (int g = 0; g < group; g++) a += pk[g * n + e], b += pv[g * n + e];
        dk[e] = a;
        dv[e] = b;
    }
}

// ---- launchers (called from attention.cu) -----------------------------------------------------

template <int DP> static size_t tc_smem_fwd() {
    typedef tc_dims<DP> T;
    return 3 * T::TILE_B + T::TILE_P + T::TILE_S + T::TILE_O;
}
template <int DP> static size_t tc_smem_dq() {
    typedef tc_dims<DP> T;
    size_t st = 2 * T::TILE_S > T::TILE_O ? 2 * T::TILE_S : T::TILE_O;
    return 4 * T::TILE_B + T::TILE_P + st;
}
template <int DP> static size_t tc_smem_dkv() {
    typedef tc_dims<DP> T;
    size_t st = 2 * T::TILE_S > T::TILE_O ? 2 * T::TILE_S : T::TILE_O;
    return 4 * T::TILE_B + 2 * T::TILE_P + st + 2 * TB * 4;
}

#define SMEM_ATTR(kern, bytes)                                                                 \
    SW_TRY(sw_cuda_check((int)cudaFuncSetAttribute(kern,                                       \
                                                   cudaFuncAttributeMaxDynamicSharedMemorySize, \
                                                   (int)(bytes)),                              \
                         "cudaFuncSetAttribute(" #kern ")", __FILE__, __LINE__))

template <int DP>
static int tc_fwd(sw_cuda_ctx *c, float *out, float *lse, const bf16 *q, const bf16 *k,
                  const bf16 *v, const int32_t *cu, const int32_t *kv_len, int nseq, int ntiles,
                  int64_t N, int Hq, int Hk, int D) {
    size_t sm = tc_smem_fwd<DP>();
    SMEM_ATTR(k_att_fwd_tc<DP>, sm);
    k_att_fwd_tc<DP><<<(unsigned)((int64_t)ntiles * nseq * Hq), TT, sm, c->stream>>>(
        out, lse, q, k, v, cu, kv_len, nseq, ntiles, N, Hq, Hk, D);
    SW_CUDA_LAUNCHED("attention_fwd (bf16)");
    return 0;
}

template <int DP>
static int tc_bwd(sw_cuda_ctx *c, float *dq, float *dk, float *dv, const bf16 *dout,
                  const bf16 *q, const bf16 *k, const bf16 *v, const float *lse,
                  const float *delta, const int32_t *cu, const int32_t *kv_len, int nseq,
                  int ntiles, int64_t N, int Hq, int Hk, int D, float scale, float *part) {
    size_t s1 = tc_smem_dq<DP>(), s2 = tc_smem_dkv<DP>();
    SMEM_ATTR(k_att_dq_tc<DP>, s1);
    SMEM_ATTR(k_att_dkv_tc<DP>, s2);
    k_att_dq_tc<DP><<<(unsigned)((int64_t)ntiles * nseq * Hq), TT, s1, c->stream>>>(
        dq, dout, q, k, v, lse, delta, cu, kv_len, nseq, ntiles, N, Hq, Hk, D, scale,
        scale * LOG2E_F);
    SW_CUDA_LAUNCHED("attention_bwd (bf16)");
    int group = Hq / Hk;
    int64_t n = N * Hk * D;
    float *pk = group > 1 ? part : dk, *pv = group > 1 ? part + (int64_t)group * n : dv;
    k_att_dkv_tc<DP><<<(unsigned)((int64_t)ntiles * nseq * Hq), TT, s2, c->stream>>>(
        pk, pv, dout, q, k, v, lse, delta, cu, kv_len, nseq, ntiles, N, Hq, Hk, D, scale,
        scale * LOG2E_F);
    SW_CUDA_LAUNCHED("attention_bwd (bf16)");
    if (group > 1 && n > 0) {
        k_att_dkv_reduce<<<sw_cuda_blocks(n, 256), 256, 0, c->stream>>>(dk, dv, pk, pv, n, group);
        SW_CUDA_LAUNCHED("attention_bwd (bf16)");
    }
    return 0;
}

// bf16 copies of n rows of D floats, padded to DP, carved from workspace 1 (attention calls no
// GEMM, and workspace 0 holds the backward's Δ).
// extra: bytes more at *extra_out (256-aligned), for the backward's dK/dV partials.
static int tc_inputs(sw_cuda_ctx *c, const char *op, int dp, int D, const float **src,
                     const int64_t *rows, const float *mul, int n, bf16 **dst, size_t extra,
                     float **extra_out) {
    size_t off[5], total = 0;
    for (int i = 0; i < n; i++) {
        off[i] = total;
        total += ((size_t)rows[i] * (size_t)dp * 2 + 255) & ~(size_t)255;
    }
    char *ws = (char *)sw_cuda_ws(c, 1, total + extra);
    if (!ws) return SW_ENOMEM;
    if (extra_out) *extra_out = (float *)(ws + total);
    for (int i = 0; i < n; i++) {
        dst[i] = (bf16 *)(ws + off[i]);
        int64_t tot = rows[i] * dp;
        if (tot <= 0) continue;
        k_tc_convert<<<sw_cuda_blocks(tot, 256), 256, 0, c->stream>>>(dst[i], src[i], rows[i], D,
                                                                        dp, mul[i]);
        SW_CUDA_LAUNCHED(op);
    }
    return 0;
}

int sw_cuda_attention_fwd_bf16(sw_cuda_ctx *c, int dp, float *out, float *lse, const float *q,
                               const float *k, const float *v, const int32_t *cu,
                               const int32_t *kv_len, int nseq, int ntiles, int64_t N, int Hq,
                               int Hk, int D, float scale) {
    const float *src[3] = {q, k, v};
    int64_t rows[3] = {N * Hq, N * Hk, N * Hk};
    float mul[3] = {scale * LOG2E_F, 1.0f, 1.0f}; // scores come out in the log2 domain
    bf16 *b[3];
    SW_TRY(tc_inputs(c, "attention_fwd (bf16)", dp, D, src, rows, mul, 3, b, 0, NULL));
    switch (dp) {
    case 16: return tc_fwd<16>(c, out, lse, b[0], b[1], b[2], cu, kv_len, nseq, ntiles, N, Hq, Hk, D);
    case 32: return tc_fwd<32>(c, out, lse, b[0], b[1], b[2], cu, kv_len, nseq, ntiles, N, Hq, Hk, D);
    case 64: return tc_fwd<64>(c, out, lse, b[0], b[1], b[2], cu, kv_len, nseq, ntiles, N, Hq, Hk, D);
    default: return tc_fwd<128>(c, out, lse, b[0], b[1], b[2], cu, kv_len, nseq, ntiles, N, Hq, Hk, D);
    }
}

int sw_cuda_attention_bwd_bf16(sw_cuda_ctx *c, int dp, float *dq, float *dk, float *dv,
                               const float *dout, const float *q, const float *k, const float *v,
                               const float *lse, const float *delta, const int32_t *cu,
                               const int32_t *kv_len, int nseq, int ntiles, int64_t N, int Hq,
                               int Hk, int D, float scale) {
    const float *src[4] = {dout, q, k, v};
    int64_t rows[4] = {N * Hq, N * Hq, N * Hk, N * Hk};
    float mul[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    bf16 *b[4];
    float *part = NULL;
    size_t part_bytes = Hq / Hk > 1 ? (size_t)2 * (size_t)(Hq / Hk) * (size_t)(N * Hk * D) * 4 : 0;
    SW_TRY(tc_inputs(c, "attention_bwd (bf16)", dp, D, src, rows, mul, 4, b, part_bytes, &part));
    switch (dp) {
    case 16: return tc_bwd<16>(c, dq, dk, dv, b[0], b[1], b[2], b[3], lse, delta, cu, kv_len, nseq, ntiles, N, Hq, Hk, D, scale, part);
    case 32: return tc_bwd<32>(c, dq, dk, dv, b[0], b[1], b[2], b[3], lse, delta, cu, kv_len, nseq, ntiles, N, Hq, Hk, D, scale, part);
    case 64: return tc_bwd<64>(c, dq, dk, dv, b[0], b[1], b[2], b[3], lse, delta, cu, kv_len, nseq, ntiles, N, Hq, Hk, D, scale, part);
    default: return tc_bwd<128>(c, dq, dk, dv, b[0], b[1], b[2], b[3], lse, delta, cu, kv_len, nseq, ntiles, N, Hq, Hk, D, scale, part);
    }
}
