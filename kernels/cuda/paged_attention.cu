// paged_attention.cu — the inference engine's two KV-cache ops on CUDA (float32 cache), with
// the shapes and rules of the kv_cache_write / paged_attention_fwd members of struct sw_backend
// (kernels/sw_kernels.h) and the CPU reference kernels/cpu/paged_attention.c:
//
//   kv_cache_write: one thread per element of the new K/V rows, scattered to its slot.
//   paged_attention_fwd: one thread block per (query row, query head), PA_WARPS warps. The
//     block finds its sequence in cu_q (binary search), loads the scaled query row into shared
//     memory, and each warp walks every PA_WARPS-th visible key through the block table: a
//     warp-wide dot product (lanes over head_dim), then an online softmax (running max m, sum l,
//     and the lane's slice of the weighted V sum). The warps' partial (m, l, acc) are merged in
//     shared memory at the end. Decode rows (one per sequence) and prefill rows use the same
//     kernel; work per row is O(context · head_dim), as flash-decoding without the split.
//
// Bad indices cannot be reported from a kernel without a read-back: a slot outside the cache
// is skipped by kv_cache_write and a block id outside the cache contributes no key. The engine
// never produces either (its block tables come from lib/infer/sw_kv_blocks.c), and the CPU op,
// which checks them, is the reference the parity test (test/cuda/test_cuda_engine.c) runs.
#include "cuda_ops.h"

#include <cfloat>

#define PA_WARPS 4
#define PA_DMAX 256 // head_dim up to this (8 floats per lane)

__global__ void k_kv_cache_write(float *kc, float *vc, const float *k, const float *v,
                                 const int32_t *slots, int64_t N, int64_t row, int64_t num_slots) {
    int64_t total = N * row, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        int64_t n = i / row, j = i - n * row;
        int64_t s = slots[n];
        if (s < 0 || s >= num_slots) continue;
        kc[s * row + j] = k[i];
        vc[s * row + j] = v[i];
    }
}

int sw_cuda_kv_cache_write(struct sw_backend *be, float *kcache, float *vcache, const float *k,
                           const float *v, const int32_t *slot_mapping, int64_t N, int64_t Hk,
                           int64_t D, int64_t num_slots) {
    SW_CUDA_OP(be, "kv_cache_write", N, Hk, D);
    if (N <= 0) return 0;
    int64_t row = Hk * D;
    k_kv_cache_write<<<sw_cuda_blocks(N * row, 256), 256, 0, c->stream>>>(
        kcache, vcache, k, v, slot_mapping, N, row, num_slots);
    SW_CUDA_LAUNCHED("kv_cache_write");
    return 0;
}

__device__ __forceinline__ float warp_sum(float x) {
    for (int o = 16; o > 0; o >>= 1)
        x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

__global__ void __launch_bounds__(PA_WARPS * 32)
    k_paged_attention(float *out, const float *q, const float *kc, const float *vc,
                      const int32_t *bt, int64_t max_blocks, const int32_t *cu, const int32_t *lens,
                      int nseq, int64_t Hq, int64_t Hk, int64_t D, int64_t bs, int64_t num_blocks,
                      float scale) {
    __shared__ float qs[PA_DMAX];
    __shared__ float wm[PA_WARPS], wl[PA_WARPS];
    __shared__ float wacc[PA_WARPS][PA_DMAX];
    const int64_t row = blockIdx.x, h = blockIdx.y;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    // the sequence owning this row: the last s with cu[s] <= row (empty sequences skipped)
    int lo = 0, hi = nseq - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (cu[mid] <= row)
            lo = mid;
        else
            hi = mid - 1;
    }
    const int s = lo;
    const int64_t qlen = (int64_t)cu[s + 1] - cu[s], ctx = lens[s];
    const int64_t nk = ctx - qlen + (row - cu[s]) + 1; // keys 0..position
    const int64_t kvh = h / (Hq / Hk), rowkv = Hk * D;
    const float *qr = q + (row * Hq + h) * D;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x)
        qs[d] = qr[d] * scale;
    __syncthreads();
    float m = -FLT_MAX, l = 0.0f, acc[PA_DMAX / 32];
#pragma unroll
    for (int i = 0; i < PA_DMAX / 32; i++)
        acc[i] = 0.0f;
    const int32_t *table = bt + (int64_t)s * max_blocks;
    for (int64_t j = warp; j < nk; j += PA_WARPS) {
        int64_t blk = table[j / bs];
        if (blk < 0 || blk >= num_blocks) continue;
        int64_t slot = blk * bs + j % bs;
        const float *kp = kc + slot * rowkv + kvh * D, *vp = vc + slot * rowkv + kvh * D;
        float dot = 0.0f;
        for (int64_t d = lane; d < D; d += 32)
            dot += qs[d] * kp[d];
        dot = warp_sum(dot);
        float mn = fmaxf(m, dot);
        float corr = __expf(m - mn), p = __expf(dot - mn);
        l = l * corr + p;
#pragma unroll
        for (int i = 0; i < PA_DMAX / 32; i++) {
            int64_t d = lane + 32 * i;
            if (d < D) acc[i] = acc[i] * corr + p * vp[d];
        }
        m = mn;
    }
    if (lane == 0) wm[warp] = m, wl[warp] = l;
#pragma unroll
    for (int i = 0; i < PA_DMAX / 32; i++) {
        int64_t d = lane + 32 * i;
        if (d < D) wacc[warp][d] = acc[i];
    }
    __syncthreads();
    float M = -FLT_MAX;
    for (int w = 0; w < PA_WARPS; w++)
        M = fmaxf(M, wm[w]);
    float L = 0.0f;
    for (int w = 0; w < PA_WARPS; w++)
        L += wl[w] > 0.0f ? wl[w] * __expf(wm[w] - M) : 0.0f;
    float *o = out + (row * Hq + h) * D;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
        float x = 0.0f;
        for (int w = 0; w < PA_WARPS; w++)
            if (wl[w] > 0.0f) x += wacc[w][d] * __expf(wm[w] - M);
        o[d] = L > 0.0f ? x / L : 0.0f;
    }
}

int sw_cuda_paged_attention_fwd(struct sw_backend *be, float *out, const float *q,
                                const float *kcache, const float *vcache,
                                const int32_t *block_tables, int64_t max_blocks,
                                const int32_t *cu_q, const int32_t *seq_lens, int nseq,
                                int64_t max_q_len, int64_t max_seq_len, int64_t N, int64_t Hq,
                                int64_t Hk, int64_t D, int64_t block_size, int64_t num_blocks,
                                float scale) {
    SW_CUDA_OP(be, "paged_attention", N, Hq, D);
    (void)max_q_len, (void)max_seq_len;
    if (Hq <= 0 || Hk <= 0 || Hq % Hk || D <= 0 || block_size <= 0 || nseq < 0)
        return sw_err_set(SW_EINVAL,
                          "paged_attention: %lld query heads not a multiple of %lld "
                          "kv heads (head_dim %lld, block_size %lld)",
                          (long long)Hq, (long long)Hk, (long long)D, (long long)block_size);
    if (D > PA_DMAX)
        return sw_err_set(SW_EUNSUPPORTED, "paged_attention: head_dim %lld > %d on CUDA",
                          (long long)D, PA_DMAX);
    if (N <= 0 || nseq == 0) return 0;
    if (Hq > 65535 || N > 2147483647LL)
        return sw_err_set(SW_EINVAL, "paged_attention: grid too large (%lld rows, %lld heads)",
                          (long long)N, (long long)Hq);
    dim3 grid((unsigned)N, (unsigned)Hq);
    k_paged_attention<<<grid, PA_WARPS * 32, 0, c->stream>>>(out, q, kcache, vcache, block_tables,
                                                             max_blocks, cu_q, seq_lens, nseq, Hq,
                                                             Hk, D, block_size, num_blocks, scale);
    SW_CUDA_LAUNCHED("paged_attention");
    return 0;
}
