// attention_common.cuh — what the f32 (attention.cu) and tensor-core (attention_mma.cu)
// attention kernels share: reading one packed segment's bounds from cu_seqlens.
#ifndef SW_CUDA_ATTENTION_COMMON_CUH
#define SW_CUDA_ATTENTION_COMMON_CUH

#include <cstdint>

// Segment s of a packed batch of N tokens: rows [base, base + L), of which the first kvl are
// valid keys (kv_len, for right padding). ok is false for bounds a bad cu_seqlens would give;
// kernels skip such segments and report the error (docs/cuda.md).
struct att_seg {
    int64_t base, L, kvl;
    bool ok;
};

__device__ __forceinline__ att_seg att_segment(const int32_t *cu, const int32_t *kv_len, int s,
                                               int64_t N) {
    att_seg g;
    g.base = cu[s];
    g.L = (int64_t)cu[s + 1] - g.base;
    g.ok = g.base >= 0 && g.L >= 0 && g.base + g.L <= N;
    g.kvl = kv_len ? kv_len[s] : g.L;
    if (g.kvl < 0) g.kvl = 0;
    if (g.kvl > g.L) g.kvl = g.L;
    return g;
}

#endif
