// embedding.cu — token lookup and its deterministic scatter-add backward.
//
// Shapes: ids[N] int32, table/dtable[V,C], out/dout[N,C].
// Forward: one block per row copies table[ids[n]] (float4 when C % 4 == 0). A bad id zeroes its
// row and raises the device fault (reported as SW_ERANGE naming the row, see cuda_ops.h).
// Backward without atomics: the (id, row) pairs are sorted by id with CUB's radix sort, which is
// stable, so the rows of one id stay in increasing row order; then one block per run of equal
// ids adds that run's gradient rows onto dtable[id] in row order — the CPU's order, so the
// result is bit-identical from run to run and matches the reference's summation order.
#include "cuda_ops.h"

#include <cub/cub.cuh>

__global__ void k_embed_fwd(float *out, const int32_t *ids, const float *table, int64_t N,
                            int64_t V, int64_t C, sw_cuda_faultrec *fault) {
    int64_t n = blockIdx.x;
    int32_t id = ids[n];
    float *o = out + n * C;
    if (id < 0 || id >= V) {
        if (threadIdx.x == 0) sw_cuda_fault_raise(fault, SW_CUDA_FAULT_EMBED_FWD, n, id, V);
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
            o[c] = 0.0f;
        return;
    }
    const float *t = table + (int64_t)id * C;
    if ((C & 3) == 0 && (((uintptr_t)table | (uintptr_t)out) & 15) == 0) {
        const float4 *t4 = (const float4 *)t;
        float4 *o4 = (float4 *)o;
        for (int64_t c = threadIdx.x; c < C / 4; c += blockDim.x)
            o4[c] = t4[c];
    } else {
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
            o[c] = t[c];
    }
}

__global__ void k_embed_keys(int32_t *keys, int32_t *rows, const int32_t *ids, int64_t N, int64_t V,
                             sw_cuda_faultrec *fault) {
    int64_t n = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    int32_t id = ids[n];
    if (id < 0 || id >= V) {
        sw_cuda_fault_raise(fault, SW_CUDA_FAULT_EMBED_BWD, n, id, V);
        id = -1; // sorts first, skipped below
    }
    keys[n] = id;
    rows[n] = (int32_t)n;
}

// Block i handles sorted position i if it starts a run of equal ids.
__global__ void k_embed_bwd_runs(float *dtable, const float *dout, const int32_t *skeys,
                                 const int32_t *srows, int64_t N, int64_t C) {
    int64_t i = blockIdx.x;
    int32_t id = skeys[i];
    if (id < 0 || (i > 0 && skeys[i - 1] == id)) return;
    int64_t end = i + 1;
    while (end < N && skeys[end] == id)
        end++;
    float *row = dtable + (int64_t)id * C;
    for (int64_t col = threadIdx.x; col < C; col += blockDim.x) {
        float acc = row[col];
        for (int64_t j = i; j < end; j++)
            acc += dout[(int64_t)srows[j] * C + col];
        row[col] = acc;
    }
}

int sw_cuda_embedding_fwd(struct sw_backend *be, float *out, const int32_t *ids, const float *table,
                          int64_t N, int64_t V, int64_t C) {
    SW_CUDA_OP(be, "embedding_fwd", N, V, C);
    if (N <= 0 || C <= 0) return 0;
    if (N > 0x7fffffff)
        return sw_err_set(SW_ERANGE, "embedding_fwd: %lld rows exceed the grid", (long long)N);
    k_embed_fwd<<<(unsigned)N, 128, 0, c->stream>>>(out, ids, table, N, V, C, c->fault_d);
    SW_CUDA_LAUNCHED("embedding_fwd");
    return 0;
}

int sw_cuda_embedding_bwd(struct sw_backend *be, float *dtable, const float *dout,
                          const int32_t *ids, int64_t N, int64_t V, int64_t C) {
    SW_CUDA_OP(be, "embedding_bwd", N, V, C);
    if (N <= 0 || C <= 0) return 0;
    if (N > 0x7fffffff)
        return sw_err_set(SW_ERANGE, "embedding_bwd: %lld rows exceed int32", (long long)N);
    int n = (int)N;
    // All 32 key bits: a bad id becomes -1 (CUB orders signed keys) and sorts first.
    size_t tmp_bytes = 0;
    cub::DeviceRadixSort::SortPairs(NULL, tmp_bytes, (const int32_t *)NULL, (int32_t *)NULL,
                                    (const int32_t *)NULL, (int32_t *)NULL, n, 0, 32, c->stream);
    size_t arr = ((size_t)N * sizeof(int32_t) + 255) & ~(size_t)255;
    char *ws = (char *)sw_cuda_ws(c, 0, 4 * arr + tmp_bytes);
    if (!ws) return SW_ENOMEM;
    int32_t *keys = (int32_t *)ws, *rows = (int32_t *)(ws + arr);
    int32_t *skeys = (int32_t *)(ws + 2 * arr), *srows = (int32_t *)(ws + 3 * arr);
    k_embed_keys<<<(unsigned)((N + 255) / 256), 256, 0, c->stream>>>(keys, rows, ids, N, V,
                                                                     c->fault_d);
    SW_CUDA_LAUNCHED("embedding_bwd");
    cudaError_t e = cub::DeviceRadixSort::SortPairs(ws + 4 * arr, tmp_bytes, keys, skeys, rows,
                                                    srows, n, 0, 32, c->stream);
    SW_TRY(sw_cuda_check((int)e, "cub::DeviceRadixSort::SortPairs", __FILE__, __LINE__));
    k_embed_bwd_runs<<<(unsigned)N, 128, 0, c->stream>>>(dtable, dout, skeys, srows, N, C);
    SW_CUDA_LAUNCHED("embedding_bwd");
    return 0;
}
