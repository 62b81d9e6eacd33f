// attention_mma.cu — FlashAttention-2-style tensor-core attention for the 16-bit modes (bf16 and
// fp16): causal, GQA, packed variable-length segments, forward and a deterministic backward.
// Same masking, grid order, lse convention and results contract as attention.cu (read that
// file's comment first); inputs and outputs of the ops stay float32, Q/K/V/dO enter the tensor
// cores in the mode's 16-bit type, every score, softmax statistic and accumulator is float32.
//
// Design (per block: 4 warps, a 64-row tile, warp w owns rows 16w..16w+15):
//  - Operands are converted once per op into 16-bit rows padded to DP (k_mma_convert), so a tile
//    load is a row of 16-byte cp.async copies; shared tiles have rows of DP + 8 elements (16
//    bytes of padding), which puts the 8 row addresses of every ldmatrix in distinct banks.
//  - Products are mma.sync m16n8k16 (HMMA) with operands from ldmatrix (.trans where the
//    product needs the tile's columns as its k dimension). The score tile of a warp never
//    leaves registers: the accumulator layout of S = Q·Kᵀ (rows g, g+8; columns 2t, 2t+1 of
//    each 8-wide n-tile) is exactly the A-operand layout of the next product, so P (and dS in
//    the backward) is packed to 16-bit pairs in registers and fed straight into P·V (dS·K, ...).
//  - The softmax is online (running max m and sum l per row, in the log2 domain: Q is
//    pre-multiplied by scale·log2 e in the conversion); each lane keeps a partial l over its
//    columns and the four lanes of a row add theirs at the end. l sums the 16-bit rounded P, the
//    values the P·V product actually uses.
//  - K/V (forward, dQ) and Q/dO (dK/dV) tiles are double-buffered with cp.async: the next tile
//    streams in while the current one is multiplied.
//  - Backward: three passes, no atomics. Δ = rowsum(dO∘O) (attention.cu), dQ per query tile
//    (S and dP recomputed, dQ accumulated in registers), dK/dV per key tile and query head (P and
//    dS recomputed transposed; the heads of a GQA group write partials that k_att_dkv_reduce sums
//    in head order). Bit-identical from run to run.
#include "attention_common.cuh"
#include "cuda_ops.h"

#include <cuda_fp16.h>

#define MT 128 // threads per block (4 warps)
#define MB 64  // tile rows (queries or keys)
#define LOG2E_M 1.4426950408889634f
#define LN2_M 0.6931471805599453f

// ---- the two 16-bit types ----------------------------------------------------------------------

template <typename T> struct half_ops;
template <> struct half_ops<__nv_bfloat16> {
    static __device__ __forceinline__ __nv_bfloat16 from(float x) { return __float2bfloat16_rn(x); }
    // Two floats rounded to a packed pair (lo in the low half); r gets the rounded values' sum.
    static __device__ __forceinline__ uint32_t pack(float lo, float hi, float &r) {
        __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
        float2 f = __bfloat1622float2(v);
        r = f.x + f.y;
        return *(uint32_t *)&v;
    }
    static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
        __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
        return *(uint32_t *)&v;
    }
    static __device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                               uint32_t b1) {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
                     "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
};
template <> struct half_ops<__half> {
    static __device__ __forceinline__ __half from(float x) { return __float2half_rn(x); }
    static __device__ __forceinline__ uint32_t pack(float lo, float hi, float &r) {
        __half2 v = __floats2half2_rn(lo, hi);
        float2 f = __half22float2(v);
        r = f.x + f.y;
        return *(uint32_t *)&v;
    }
    static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
        __half2 v = __floats2half2_rn(lo, hi);
        return *(uint32_t *)&v;
    }
    static __device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                               uint32_t b1) {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
                     "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
};

// ---- shared-memory movement
// ----------------------------------------------------------------------

__device__ __forceinline__ uint32_t smem_addr(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}
// Four 8×8 16-bit matrices; lane l gives the address of row l%8 of matrix l/8 and receives
// element (row l/4, columns 2(l%4), +1) of matrix i in r[i] (.trans: of the transposed matrix).
__device__ __forceinline__ void ldsm4(uint32_t (&r)[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldsm4t(uint32_t (&r)[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
// 16 bytes global → shared, zero-filled when !valid (src is then not read).
__device__ __forceinline__ void cp16(void *dst, const void *src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
                 "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_commit() {
    asm volatile("cp.async.commit_group;\n" ::);
}
template <int n> __device__ __forceinline__ void cp_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(n));
}

// Rows [row0, row0 + 64) of a 16-bit [*, stride] matrix (rows of DP values) into dst[64][DP+8]
// by cp.async; rows ≥ nvalid are zero.
template <typename T, int DP>
__device__ __forceinline__ void tile_load(T *dst, const T *src, int64_t row0, int64_t nvalid,
                                          int64_t stride) {
    const int VPR = DP / 8, LD = DP + 8;
#pragma unroll
    for (int idx = threadIdx.x; idx < MB * VPR; idx += MT) {
        int r = idx / VPR, cv = idx % VPR;
        bool ok = r < nvalid;
        cp16(dst + r * LD + cv * 8,
             ok ? (const void *)(src + (row0 + r) * stride + cv * 8) : (const void *)src, ok);
    }
}

// A operand (16×16, rows r0.., columns k0..) of a row-major shared tile with row stride LD.
template <int LD>
__device__ __forceinline__ void load_a(uint32_t (&a)[4], const void *tile, int r0, int k0,
                                       int lane) {
    const char *p = (const char *)tile + ((r0 + (lane & 15)) * LD + k0 + (lane >> 4) * 8) * 2;
    ldsm4(a, p);
}
// B operands of two 8-wide n-tiles (n0.., n0+8..) × k0..k0+15 where the tile stores Bᵀ
// row-major ([n][k], e.g. K for Q·Kᵀ): b[0], b[1] for n-tile n0, b[2], b[3] for n0 + 8.
template <int LD>
__device__ __forceinline__ void load_bt(uint32_t (&b)[4], const void *tile, int n0, int k0,
                                        int lane) {
    const char *p = (const char *)tile +
                    ((n0 + (lane & 7) + ((lane >> 4) << 3)) * LD + k0 + ((lane >> 3) & 1) * 8) * 2;
    ldsm4(b, p);
}
// The same where the tile stores B row-major ([k][n], e.g. V for P·V): ldmatrix.trans.
template <int LD>
__device__ __forceinline__ void load_b(uint32_t (&b)[4], const void *tile, int k0, int n0,
                                       int lane) {
    const char *p = (const char *)tile +
                    ((k0 + (lane & 7) + ((lane >> 3) & 1) * 8) * LD + n0 + (lane >> 4) * 8) * 2;
    ldsm4t(b, p);
}

// acc[16 rows of the warp × 64 columns] = A[16 × DP] · Bᵀ where B is a [64][LD] tile (rows =
// the 64 output columns). A comes from a shared tile (rows a_r0..) or, when af is given, registers.
template <typename T, int DP>
__device__ __forceinline__ void mma_abt(float (&acc)[8][4], const T *A, int a_r0, const T *B,
                                        int lane) {
    const int LD = DP + 8;
#pragma unroll
    for (int n = 0; n < 8; n++)
        acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
#pragma unroll
    for (int kc = 0; kc < DP / 16; kc++) {
        uint32_t a[4];
        load_a<LD>(a, A, a_r0, kc * 16, lane);
#pragma unroll
        for (int np = 0; np < 4; np++) {
            uint32_t b[4];
            load_bt<LD>(b, B, np * 16, kc * 16, lane);
            half_ops<T>::mma(acc[2 * np], a, b[0], b[1]);
            half_ops<T>::mma(acc[2 * np + 1], a, b[2], b[3]);
        }
    }
}
template <typename T, int DP>
__device__ __forceinline__ void mma_abt_reg(float (&acc)[8][4], const uint32_t (&af)[DP / 16][4],
                                            const T *B, int lane) {
    const int LD = DP + 8;
#pragma unroll
    for (int n = 0; n < 8; n++)
        acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
#pragma unroll
    for (int kc = 0; kc < DP / 16; kc++) {
#pragma unroll
        for (int np = 0; np < 4; np++) {
            uint32_t b[4];
            load_bt<LD>(b, B, np * 16, kc * 16, lane);
            half_ops<T>::mma(acc[2 * np], af[kc], b[0], b[1]);
            half_ops<T>::mma(acc[2 * np + 1], af[kc], b[2], b[3]);
        }
    }
}
// acc[16 × DP] += P[16 × 64] · M[64][DP] with P packed in registers (pk[n-tile][row half]: the
// accumulator layout of a score tile) and M a row-major [64][LD] shared tile.
template <typename T, int DP>
__device__ __forceinline__ void mma_pm(float (&acc)[DP / 8][4], const uint32_t (&pk)[8][2],
                                       const T *M, int lane) {
    const int LD = DP + 8;
#pragma unroll
    for (int kc = 0; kc < 4; kc++) {
        uint32_t a[4] = {pk[2 * kc][0], pk[2 * kc][1], pk[2 * kc + 1][0], pk[2 * kc + 1][1]};
#pragma unroll
        for (int dp = 0; dp < DP / 16; dp++) {
            uint32_t b[4];
            load_b<LD>(b, M, kc * 16, dp * 16, lane);
            half_ops<T>::mma(acc[2 * dp], a, b[0], b[1]);
            half_ops<T>::mma(acc[2 * dp + 1], a, b[2], b[3]);
        }
    }
}

// Write a warp's float accumulator rows (16 × DP, rows r_a = row0 + g and r_b = r_a + 8 of the
// output, valid when < nvalid) times mul into out rows of stride ostride (floats), columns < D.
template <int DP>
__device__ __forceinline__ void
store_rows(float *out, int64_t ostride, const float (&acc)[DP / 8][4], int64_t ra, int64_t rb,
           bool va, bool vb, int D, float mul_a, float mul_b, int lane) {
    int t = lane & 3;
#pragma unroll
    for (int dn = 0; dn < DP / 8; dn++) {
        int c = dn * 8 + 2 * t;
        if (va) {
            if (c < D) out[ra * ostride + c] = acc[dn][0] * mul_a;
            if (c + 1 < D) out[ra * ostride + c + 1] = acc[dn][1] * mul_a;
        }
        if (vb) {
            if (c < D) out[rb * ostride + c] = acc[dn][2] * mul_b;
            if (c + 1 < D) out[rb * ostride + c + 1] = acc[dn][3] * mul_b;
        }
    }
}

// dst[nh, 0..DP) = T(src[nh, 0..D) · mul), zero-padded to DP.
template <typename T>
__global__ void k_mma_convert(T *dst, const float *src, int64_t NH, int D, int DP, float mul) {
    int64_t total = NH * DP, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += stride) {
        int64_t nh = t / DP;
        int d = (int)(t % DP);
        dst[t] = half_ops<T>::from(d < D ? src[nh * D + d] * mul : 0.0f);
    }
}

// ---- forward
// ---------------------------------------------------------------------------------------

template <typename T, int DP>
__global__ void __launch_bounds__(MT)
    k_att_fwd_mma(float *out, float *lse, const T *q, const T *k, const T *v, const int32_t *cu,
                  const int32_t *kv_len, int nseq, int ntiles, int64_t N, int Hq, int Hk, int D) {
    const int LD = DP + 8, TILE = MB * LD;
    extern __shared__ __align__(128) unsigned char smem[];
    T *Qs = (T *)smem, *Ks = Qs + TILE, *Vs = Ks + 2 * TILE; // K, V: two stages each
    int64_t b = blockIdx.x;
    int s = (int)(b % nseq), h = (int)((b / nseq) % Hq);
    int tile = ntiles - 1 - (int)(b / ((int64_t)nseq * Hq)); // longest (last) tiles first
    att_seg g = att_segment(cu, kv_len, s, N);
    int64_t i0 = (int64_t)tile * MB;
    if (!g.ok || i0 >= g.L) return;
    int warp = threadIdx.x / 32, lane = threadIdx.x & 31, gr = lane >> 2, t4 = lane & 3;
    int kh = h / (Hq / Hk);
    int64_t qs = (int64_t)Hq * DP, ks = (int64_t)Hk * DP;
    int64_t nq = g.L - i0 < MB ? g.L - i0 : MB;
    int64_t nkeys = i0 + nq < g.kvl ? i0 + nq : g.kvl;
    int64_t ia = i0 + warp * 16 + gr, ib = ia + 8; // this lane's two rows
    const T *kb = k + g.base * ks + (int64_t)kh * DP, *vb = v + g.base * ks + (int64_t)kh * DP;
    int ntk = (int)((nkeys + MB - 1) / MB);

    tile_load<T, DP>(Qs, q + g.base * qs + (int64_t)h * DP, i0, nq, qs); // q·scale·log2 e
    if (ntk > 0) {
        tile_load<T, DP>(Ks, kb, 0, nkeys, ks);
        tile_load<T, DP>(Vs, vb, 0, nkeys, ks);
    }
    cp_commit();
    cp_wait<0>();
    __syncthreads();
    uint32_t qf[DP / 16][4];
#pragma unroll
    for (int kc = 0; kc < DP / 16; kc++)
        load_a<LD>(qf[kc], Qs, warp * 16, kc * 16, lane);

    float o[DP / 8][4];
#pragma unroll
    for (int dn = 0; dn < DP / 8; dn++)
        o[dn][0] = o[dn][1] = o[dn][2] = o[dn][3] = 0.0f;
    float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.0f, l_b = 0.0f;
    for (int jt = 0; jt < ntk; jt++) {
        int st = jt & 1;
        if (jt + 1 < ntk) { // prefetch the next K/V tile into the other stage
            int64_t j1 = (int64_t)(jt + 1) * MB;
            tile_load<T, DP>(Ks + (st ^ 1) * TILE, kb, j1, nkeys - j1, ks);
            tile_load<T, DP>(Vs + (st ^ 1) * TILE, vb, j1, nkeys - j1, ks);
            cp_commit();
            cp_wait<1>();
        } else {
            cp_wait<0>();
        }
        __syncthreads();
        float sc[8][4];
        mma_abt_reg<T, DP>(sc, qf, Ks + st * TILE, lane);
        int64_t j0 = (int64_t)jt * MB;
        if (j0 + MB - 1 > i0 || j0 + MB > g.kvl) { // tile crosses the diagonal or kv_len
#pragma unroll
            for (int n = 0; n < 8; n++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    int64_t j = j0 + n * 8 + 2 * t4 + (e & 1), i = e < 2 ? ia : ib;
                    if (j > i || j >= g.kvl) sc[n][e] = -INFINITY;
                }
        }
        float mx_a = -INFINITY, mx_b = -INFINITY;
#pragma unroll
        for (int n = 0; n < 8; n++) {
            mx_a = fmaxf(mx_a, fmaxf(sc[n][0], sc[n][1]));
            mx_b = fmaxf(mx_b, fmaxf(sc[n][2], sc[n][3]));
        }
        mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, 1));
        mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, 2));
        mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 1));
        mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 2));
        float mn_a = fmaxf(m_a, mx_a), mn_b = fmaxf(m_b, mx_b);
        float mr_a = mn_a == -INFINITY ? 0.0f : mn_a, mr_b = mn_b == -INFINITY ? 0.0f : mn_b;
        float al_a = exp2f(m_a - mr_a), al_b = exp2f(m_b - mr_b);
        m_a = mn_a, m_b = mn_b;
        uint32_t pk[8][2];
        float ps_a = 0.0f, ps_b = 0.0f;
#pragma unroll
        for (int n = 0; n < 8; n++) {
            float r;
            pk[n][0] = half_ops<T>::pack(exp2f(sc[n][0] - mr_a), exp2f(sc[n][1] - mr_a), r);
            ps_a += r;
            pk[n][1] = half_ops<T>::pack(exp2f(sc[n][2] - mr_b), exp2f(sc[n][3] - mr_b), r);
            ps_b += r;
        }
        l_a = l_a * al_a + ps_a;
        l_b = l_b * al_b + ps_b;
#pragma unroll
        for (int dn = 0; dn < DP / 8; dn++) {
            o[dn][0] *= al_a, o[dn][1] *= al_a;
            o[dn][2] *= al_b, o[dn][3] *= al_b;
        }
        mma_pm<T, DP>(o, pk, Vs + st * TILE, lane);
        __syncthreads(); // every warp is done with this stage before it is refilled
    }
    l_a += __shfl_xor_sync(0xffffffffu, l_a, 1);
    l_a += __shfl_xor_sync(0xffffffffu, l_a, 2);
    l_b += __shfl_xor_sync(0xffffffffu, l_b, 1);
    l_b += __shfl_xor_sync(0xffffffffu, l_b, 2);
    bool va = ia < g.L, vb2 = ib < g.L;
    int64_t ra = g.base + ia, rb = g.base + ib;
    store_rows<DP>(out + (int64_t)h * D, (int64_t)Hq * D, o, ra, rb, va, vb2, D,
                   l_a > 0.0f ? 1.0f / l_a : 0.0f, l_b > 0.0f ? 1.0f / l_b : 0.0f, lane);
    if (t4 == 0) {
        if (va) lse[ra * Hq + h] = l_a > 0.0f ? LN2_M * (m_a + log2f(l_a)) : 0.0f;
        if (vb2) lse[rb * Hq + h] = l_b > 0.0f ? LN2_M * (m_b + log2f(l_b)) : 0.0f;
    }
}

// ---- backward: dQ
// ----------------------------------------------------------------------------------

template <typename T, int DP>
__global__ void __launch_bounds__(MT)
    k_att_dq_mma(float *dq, const T *dout, const T *q, const T *k, const T *v, const float *lse,
                 const float *delta, const int32_t *cu, const int32_t *kv_len, int nseq, int ntiles,
                 int64_t N, int Hq, int Hk, int D, float scale, float scale_log2) {
    const int LD = DP + 8, TILE = MB * LD;
    extern __shared__ __align__(128) unsigned char smem[];
    T *Qs = (T *)smem, *Dos = Qs + TILE, *Ks = Dos + TILE, *Vs = Ks + 2 * TILE;
    int64_t b = blockIdx.x;
    int s = (int)(b % nseq), h = (int)((b / nseq) % Hq);
    int tile = ntiles - 1 - (int)(b / ((int64_t)nseq * Hq));
    att_seg g = att_segment(cu, kv_len, s, N);
    int64_t i0 = (int64_t)tile * MB;
    if (!g.ok || i0 >= g.L) return;
    int warp = threadIdx.x / 32, lane = threadIdx.x & 31, gr = lane >> 2, t4 = lane & 3;
    int kh = h / (Hq / Hk);
    int64_t qs = (int64_t)Hq * DP, ks = (int64_t)Hk * DP;
    int64_t nq = g.L - i0 < MB ? g.L - i0 : MB;
    int64_t nkeys = i0 + nq < g.kvl ? i0 + nq : g.kvl;
    int64_t ia = i0 + warp * 16 + gr, ib = ia + 8;
    const T *kb = k + g.base * ks + (int64_t)kh * DP, *vb = v + g.base * ks + (int64_t)kh * DP;
    int ntk = (int)((nkeys + MB - 1) / MB);
    float lse_a = ia < g.L ? lse[(g.base + ia) * Hq + h] * LOG2E_M : INFINITY;
    float lse_b = ib < g.L ? lse[(g.base + ib) * Hq + h] * LOG2E_M : INFINITY;
    float dl_a = ia < g.L ? delta[(g.base + ia) * Hq + h] : 0.0f;
    float dl_b = ib < g.L ? delta[(g.base + ib) * Hq + h] : 0.0f;

    tile_load<T, DP>(Qs, q + g.base * qs + (int64_t)h * DP, i0, nq, qs);
    tile_load<T, DP>(Dos, dout + g.base * qs + (int64_t)h * DP, i0, nq, qs);
    if (ntk > 0) {
        tile_load<T, DP>(Ks, kb, 0, nkeys, ks);
        tile_load<T, DP>(Vs, vb, 0, nkeys, ks);
    }
    cp_commit();
    float acc[DP / 8][4];
#pragma unroll
    for (int dn = 0; dn < DP / 8; dn++)
        acc[dn][0] = acc[dn][1] = acc[dn][2] = acc[dn][3] = 0.0f;
    for (int jt = 0; jt < ntk; jt++) {
        int st = jt & 1;
        if (jt + 1 < ntk) {
            int64_t j1 = (int64_t)(jt + 1) * MB;
            tile_load<T, DP>(Ks + (st ^ 1) * TILE, kb, j1, nkeys - j1, ks);
            tile_load<T, DP>(Vs + (st ^ 1) * TILE, vb, j1, nkeys - j1, ks);
            cp_commit();
            cp_wait<1>();
        } else {
            cp_wait<0>();
        }
        __syncthreads();
        float sc[8][4], dp[8][4];
        mma_abt<T, DP>(sc, Qs, warp * 16, Ks + st * TILE, lane);
        mma_abt<T, DP>(dp, Dos, warp * 16, Vs + st * TILE, lane);
        int64_t j0 = (int64_t)jt * MB;
        uint32_t dsk[8][2];
#pragma unroll
        for (int n = 0; n < 8; n++) {
            float ds[4];
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int64_t j = j0 + n * 8 + 2 * t4 + (e & 1), i = e < 2 ? ia : ib;
                float p = (j <= i && j < g.kvl)
                              ? exp2f(sc[n][e] * scale_log2 - (e < 2 ? lse_a : lse_b))
                              : 0.0f;
                ds[e] = p * (dp[n][e] - (e < 2 ? dl_a : dl_b));
            }
            dsk[n][0] = half_ops<T>::pack(ds[0], ds[1]);
            dsk[n][1] = half_ops<T>::pack(ds[2], ds[3]);
        }
        mma_pm<T, DP>(acc, dsk, Ks + st * TILE, lane); // dQ += dS · K
        __syncthreads();
    }
    cp_wait<0>(); // no key tile: the Q/dO copies are still in flight
    store_rows<DP>(dq + (int64_t)h * D, (int64_t)Hq * D, acc, g.base + ia, g.base + ib, ia < g.L,
                   ib < g.L, D, scale, scale, lane);
}

// ---- backward: dK, dV
// ------------------------------------------------------------------------------

template <typename T, int DP>
__global__ void __launch_bounds__(MT)
    k_att_dkv_mma(float *pk, float *pv, const T *dout, const T *q, const T *k, const T *v,
                  const float *lse, const float *delta, const int32_t *cu, const int32_t *kv_len,
                  int nseq, int ntiles, int64_t N, int Hq, int Hk, int D, float scale,
                  float scale_log2) {
    const int LD = DP + 8, TILE = MB * LD;
    extern __shared__ __align__(128) unsigned char smem[];
    T *Ks = (T *)smem, *Vs = Ks + TILE, *Qs = Vs + TILE, *Dos = Qs + 2 * TILE; // Q, dO: 2 stages
    float *lse_s = (float *)(Dos + 2 * TILE), *dl_s = lse_s + 2 * MB;          // 2 stages each
    // One block per (key tile, query head, segment); the heads of a GQA group write partial
    // dK/dV (pk/pv[h % group]), summed in head order by k_att_dkv_reduce.
    int64_t b = blockIdx.x;
    int s = (int)(b % nseq), hq = (int)((b / nseq) % Hq);
    int tile = (int)(b / ((int64_t)nseq * Hq)); // early key tiles see the most queries: first
    att_seg g = att_segment(cu, kv_len, s, N);
    int64_t j0 = (int64_t)tile * MB;
    if (!g.ok || j0 >= g.L) return;
    int warp = threadIdx.x / 32, lane = threadIdx.x & 31, gr = lane >> 2, t4 = lane & 3;
    int group = Hq / Hk, kh = hq / group;
    int64_t qs = (int64_t)Hq * DP, ks = (int64_t)Hk * DP;
    int64_t nk = g.L - j0 < MB ? g.L - j0 : MB;
    int64_t ja = j0 + warp * 16 + gr, jb = ja + 8; // this lane's two key rows
    float *dk = pk + (int64_t)(hq % group) * N * Hk * D,
          *dv = pv + (int64_t)(hq % group) * N * Hk * D;
    const T *qb = q + g.base * qs + (int64_t)hq * DP, *ob = dout + g.base * qs + (int64_t)hq * DP;

    float accK[DP / 8][4], accV[DP / 8][4];
#pragma unroll
    for (int dn = 0; dn < DP / 8; dn++)
#pragma unroll
        for (int e = 0; e < 4; e++)
            accK[dn][e] = accV[dn][e] = 0.0f;
    int nqt = j0 < g.kvl ? (int)((g.L - j0 + MB - 1) / MB) : 0; // query tiles from the diagonal
    if (nqt > 0) {
        tile_load<T, DP>(Ks, k + g.base * ks + (int64_t)kh * DP, j0, nk, ks);
        tile_load<T, DP>(Vs, v + g.base * ks + (int64_t)kh * DP, j0, nk, ks);
        tile_load<T, DP>(Qs, qb, j0, g.L - j0, qs);
        tile_load<T, DP>(Dos, ob, j0, g.L - j0, qs);
        cp_commit();
        if (threadIdx.x < MB) {
            int r = threadIdx.x;
            int64_t i = j0 + r;
            lse_s[r] = i < g.L ? lse[(g.base + i) * Hq + hq] * LOG2E_M : INFINITY;
            dl_s[r] = i < g.L ? delta[(g.base + i) * Hq + hq] : 0.0f;
        }
    }
    for (int it = 0; it < nqt; it++) {
        int st = it & 1;
        int64_t i0 = j0 + (int64_t)it * MB;
        if (it + 1 < nqt) {
            int64_t i1 = i0 + MB;
            tile_load<T, DP>(Qs + (st ^ 1) * TILE, qb, i1, g.L - i1, qs);
            tile_load<T, DP>(Dos + (st ^ 1) * TILE, ob, i1, g.L - i1, qs);
            cp_commit();
            if (threadIdx.x < MB) {
                int r = threadIdx.x;
                int64_t i = i1 + r;
                lse_s[(st ^ 1) * MB + r] =
                    i < g.L ? lse[(g.base + i) * Hq + hq] * LOG2E_M : INFINITY;
                dl_s[(st ^ 1) * MB + r] = i < g.L ? delta[(g.base + i) * Hq + hq] : 0.0f;
            }
            cp_wait<1>();
        } else {
            cp_wait<0>();
        }
        __syncthreads();
        const T *Qt = Qs + st * TILE, *Ot = Dos + st * TILE;
        const float *ls = lse_s + st * MB, *dls = dl_s + st * MB;
        float sc[8][4], dp[8][4]; // [key row][query column]
        mma_abt<T, DP>(sc, Ks, warp * 16, Qt, lane);
        mma_abt<T, DP>(dp, Vs, warp * 16, Ot, lane);
        uint32_t pkk[8][2], dsk[8][2];
#pragma unroll
        for (int n = 0; n < 8; n++) {
            float p[4], ds[4];
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int qc = n * 8 + 2 * t4 + (e & 1);
                int64_t i = i0 + qc, j = e < 2 ? ja : jb;
                bool vis = j <= i && j < g.kvl && i < g.L;
                p[e] = vis ? exp2f(sc[n][e] * scale_log2 - ls[qc]) : 0.0f;
                ds[e] = p[e] * (dp[n][e] - dls[qc]);
            }
            pkk[n][0] = half_ops<T>::pack(p[0], p[1]);
            pkk[n][1] = half_ops<T>::pack(p[2], p[3]);
            dsk[n][0] = half_ops<T>::pack(ds[0], ds[1]);
            dsk[n][1] = half_ops<T>::pack(ds[2], ds[3]);
        }
        mma_pm<T, DP>(accV, pkk, Ot, lane); // dV += Pᵀ · dO
        mma_pm<T, DP>(accK, dsk, Qt, lane); // dK += dSᵀ · Q
        __syncthreads();
    }
    int64_t ra = (g.base + ja) * Hk + kh, rb = (g.base + jb) * Hk + kh;
    bool va = ja < g.L, vb = jb < g.L;
    store_rows<DP>(dk, D, accK, ra, rb, va, vb, D, scale, scale, lane);
    store_rows<DP>(dv, D, accV, ra, rb, va, vb, D, 1.0f, 1.0f, lane);
}

// dk[e] = Σ_g pk[g][e] (g = 0..group-1 in order), the same for dv; e over N·Hk·D.
__global__ void k_att_dkv_sum(float *dk, float *dv, const float *pk, const float *pv, int64_t n,
                              int group) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += stride) {
        float a = 0.0f, b = 0.0f;
        for (int g = 0; g < group; g++)
            a += pk[g * n + e], b += pv[g * n + e];
        dk[e] = a;
        dv[e] = b;
    }
}

// ---- launchers
// -------------------------------------------------------------------------------------

template <int DP> static size_t smem_tiles(int n) {
    return (size_t)n * MB * (DP + 8) * 2;
}

#define MMA_SMEM_ATTR(kern, bytes)                                                                 \
    SW_TRY(sw_cuda_check((int)cudaFuncSetAttribute(                                                \
                             kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)(bytes)),     \
                         "cudaFuncSetAttribute(" #kern ")", __FILE__, __LINE__))

template <typename T, int DP>
static int mma_fwd(sw_cuda_ctx *c, float *out, float *lse, const T *q, const T *k, const T *v,
                   const int32_t *cu, const int32_t *kv_len, int nseq, int ntiles, int64_t N,
                   int Hq, int Hk, int D) {
    size_t sm = smem_tiles<DP>(5);
    MMA_SMEM_ATTR((k_att_fwd_mma<T, DP>), sm);
    k_att_fwd_mma<T, DP><<<(unsigned)((int64_t)ntiles * nseq * Hq), MT, sm, c->stream>>>(
        out, lse, q, k, v, cu, kv_len, nseq, ntiles, N, Hq, Hk, D);
    SW_CUDA_LAUNCHED("attention_fwd (tensor cores)");
    return 0;
}

template <typename T, int DP>
static int mma_bwd(sw_cuda_ctx *c, float *dq, float *dk, float *dv, const T *dout, const T *q,
                   const T *k, const T *v, const float *lse, const float *delta, const int32_t *cu,
                   const int32_t *kv_len, int nseq, int ntiles, int64_t N, int Hq, int Hk, int D,
                   float scale, float *part) {
    size_t s1 = smem_tiles<DP>(6), s2 = smem_tiles<DP>(6) + 4 * MB * sizeof(float);
    MMA_SMEM_ATTR((k_att_dq_mma<T, DP>), s1);
    MMA_SMEM_ATTR((k_att_dkv_mma<T, DP>), s2);
    unsigned blocks = (unsigned)((int64_t)ntiles * nseq * Hq);
    k_att_dq_mma<T, DP><<<blocks, MT, s1, c->stream>>>(dq, dout, q, k, v, lse, delta, cu, kv_len,
                                                       nseq, ntiles, N, Hq, Hk, D, scale,
                                                       scale * LOG2E_M);
    SW_CUDA_LAUNCHED("attention_bwd (tensor cores)");
    int group = Hq / Hk;
    int64_t n = N * Hk * D;
    float *pk = group > 1 ? part : dk, *pv = group > 1 ? part + (int64_t)group * n : dv;
    k_att_dkv_mma<T, DP><<<blocks, MT, s2, c->stream>>>(pk, pv, dout, q, k, v, lse, delta, cu,
                                                        kv_len, nseq, ntiles, N, Hq, Hk, D, scale,
                                                        scale * LOG2E_M);
    SW_CUDA_LAUNCHED("attention_bwd (tensor cores)");
    if (group > 1 && n > 0) {
        k_att_dkv_sum<<<sw_cuda_blocks(n, 256), 256, 0, c->stream>>>(dk, dv, pk, pv, n, group);
        SW_CUDA_LAUNCHED("attention_bwd (tensor cores)");
    }
    return 0;
}

// 16-bit copies of n row sets of D floats, padded to DP, carved from workspace 1 (attention calls
// no GEMM, and workspace 0 holds the backward's Δ); extra bytes more at *extra_out (256-aligned)
// for the backward's dK/dV partials.
template <typename T>
static int mma_inputs(sw_cuda_ctx *c, const char *op, int dp, int D, const float **src,
                      const int64_t *rows, const float *mul, int n, T **dst, size_t extra,
                      float **extra_out) {
    size_t off[4], total = 0;
    for (int i = 0; i < n; i++) {
        off[i] = total;
        total += ((size_t)rows[i] * (size_t)dp * 2 + 255) & ~(size_t)255;
    }
    char *ws = (char *)sw_cuda_ws(c, 1, total + extra);
    if (!ws) return SW_ENOMEM;
    if (extra_out) *extra_out = (float *)(ws + total);
    for (int i = 0; i < n; i++) {
        dst[i] = (T *)(ws + off[i]);
        int64_t tot = rows[i] * dp;
        if (tot <= 0) continue;
        k_mma_convert<T><<<sw_cuda_blocks(tot, 256), 256, 0, c->stream>>>(dst[i], src[i], rows[i],
                                                                          D, dp, mul[i]);
        SW_CUDA_LAUNCHED(op);
    }
    return 0;
}

template <typename T>
static int fwd_typed(sw_cuda_ctx *c, int dp, float *out, float *lse, const float *q, const float *k,
                     const float *v, const int32_t *cu, const int32_t *kv_len, int nseq, int ntiles,
                     int64_t N, int Hq, int Hk, int D, float scale) {
    const float *src[3] = {q, k, v};
    int64_t rows[3] = {N * Hq, N * Hk, N * Hk};
    float mul[3] = {scale * LOG2E_M, 1.0f, 1.0f}; // scores come out in the log2 domain
    T *b[3];
    SW_TRY(mma_inputs<T>(c, "attention_fwd (tensor cores)", dp, D, src, rows, mul, 3, b, 0, NULL));
    switch (dp) {
    case 16:
        return mma_fwd<T, 16>(c, out, lse, b[0], b[1], b[2], cu, kv_len, nseq, ntiles, N, Hq, Hk,
                              D);
    case 32:
        return mma_fwd<T, 32>(c, out, lse, b[0], b[1], b[2], cu, kv_len, nseq, ntiles, N, Hq, Hk,
                              D);
    case 64:
        return mma_fwd<T, 64>(c, out, lse, b[0], b[1], b[2], cu, kv_len, nseq, ntiles, N, Hq, Hk,
                              D);
    default:
        return mma_fwd<T, 128>(c, out, lse, b[0], b[1], b[2], cu, kv_len, nseq, ntiles, N, Hq, Hk,
                               D);
    }
}

template <typename T>
static int bwd_typed(sw_cuda_ctx *c, int dp, float *dq, float *dk, float *dv, const float *dout,
                     const float *q, const float *k, const float *v, const float *lse,
                     const float *delta, const int32_t *cu, const int32_t *kv_len, int nseq,
                     int ntiles, int64_t N, int Hq, int Hk, int D, float scale) {
    const float *src[4] = {dout, q, k, v};
    int64_t rows[4] = {N * Hq, N * Hq, N * Hk, N * Hk};
    float mul[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    T *b[4];
    float *part = NULL;
    size_t part_bytes = Hq / Hk > 1 ? (size_t)2 * (size_t)(Hq / Hk) * (size_t)(N * Hk * D) * 4 : 0;
    SW_TRY(mma_inputs<T>(c, "attention_bwd (tensor cores)", dp, D, src, rows, mul, 4, b, part_bytes,
                         &part));
    switch (dp) {
    case 16:
        return mma_bwd<T, 16>(c, dq, dk, dv, b[0], b[1], b[2], b[3], lse, delta, cu, kv_len, nseq,
                              ntiles, N, Hq, Hk, D, scale, part);
    case 32:
        return mma_bwd<T, 32>(c, dq, dk, dv, b[0], b[1], b[2], b[3], lse, delta, cu, kv_len, nseq,
                              ntiles, N, Hq, Hk, D, scale, part);
    case 64:
        return mma_bwd<T, 64>(c, dq, dk, dv, b[0], b[1], b[2], b[3], lse, delta, cu, kv_len, nseq,
                              ntiles, N, Hq, Hk, D, scale, part);
    default:
        return mma_bwd<T, 128>(c, dq, dk, dv, b[0], b[1], b[2], b[3], lse, delta, cu, kv_len, nseq,
                               ntiles, N, Hq, Hk, D, scale, part);
    }
}

int sw_cuda_attention_fwd_mma(sw_cuda_ctx *c, int dp, float *out, float *lse, const float *q,
                              const float *k, const float *v, const int32_t *cu,
                              const int32_t *kv_len, int nseq, int ntiles, int64_t N, int Hq,
                              int Hk, int D, float scale) {
    if (c->prec == SW_CUDA_GEMM_FP16)
        return fwd_typed<__half>(c, dp, out, lse, q, k, v, cu, kv_len, nseq, ntiles, N, Hq, Hk, D,
                                 scale);
    return fwd_typed<__nv_bfloat16>(c, dp, out, lse, q, k, v, cu, kv_len, nseq, ntiles, N, Hq, Hk,
                                    D, scale);
}

int sw_cuda_attention_bwd_mma(sw_cuda_ctx *c, int dp, float *dq, float *dk, float *dv,
                              const float *dout, const float *q, const float *k, const float *v,
                              const float *lse, const float *delta, const int32_t *cu,
                              const int32_t *kv_len, int nseq, int ntiles, int64_t N, int Hq,
                              int Hk, int D, float scale) {
    if (c->prec == SW_CUDA_GEMM_FP16)
        return bwd_typed<__half>(c, dp, dq, dk, dv, dout, q, k, v, lse, delta, cu, kv_len, nseq,
                                 ntiles, N, Hq, Hk, D, scale);
    return bwd_typed<__nv_bfloat16>(c, dp, dq, dk, dv, dout, q, k, v, lse, delta, cu, kv_len, nseq,
                                    ntiles, N, Hq, Hk, D, scale);
}
