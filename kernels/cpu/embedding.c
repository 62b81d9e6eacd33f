/* CPU embedding — token lookup and its scatter-add backward.
 * Shapes: ids[N] int32, table[V,C], out/dout[N,C]. The backward splits the C columns among
 * threads and adds rows in token order, so repeated ids accumulate deterministically without
 * atomics. */
#include "cpu_ops.h"

#include "sw_err.h"

#include <string.h>

static int check_ids(const char *op, const int32_t *ids, int64_t N, int64_t V) {
    for (int64_t n = 0; n < N; n++)
        if (ids[n] < 0 || ids[n] >= V)
            return sw_err_set(SW_ERANGE, "%s: token id %d at row %lld outside vocabulary [0, %lld)",
                              op, (int)ids[n], (long long)n, (long long)V);
    return 0;
}

int sw_cpu_embedding_fwd(struct sw_backend *be, float *out, const int32_t *ids, const float *table,
                         int64_t N, int64_t V, int64_t C) {
    (void)be;
    SW_TRY(check_ids("embedding_fwd", ids, N, V));
#pragma omp parallel for schedule(static) if (N * C > 65536)
    for (int64_t n = 0; n < N; n++)
        memcpy(out + n * C, table + (int64_t)ids[n] * C, (size_t)C * sizeof(float));
    return 0;
}

int sw_cpu_embedding_bwd(struct sw_backend *be, float *dtable, const float *dout,
                         const int32_t *ids, int64_t N, int64_t V, int64_t C) {
    (void)be;
    SW_TRY(check_ids("embedding_bwd", ids, N, V));
    int64_t nblk = (C + SW_CPU_COL_BLOCK - 1) / SW_CPU_COL_BLOCK;
#pragma omp parallel for schedule(static) if (N * C > 65536)
    for (int64_t blk = 0; blk < nblk; blk++) {
        int64_t c0 = blk * SW_CPU_COL_BLOCK;
        int64_t c1 = c0 + SW_CPU_COL_BLOCK < C ? c0 + SW_CPU_COL_BLOCK : C;
        for (int64_t n = 0; n < N; n++) {
            float *row = dtable + (int64_t)ids[n] * C;
            const float *g = dout + n * C;
            for (int64_t c = c0; c < c1; c++)
                row[c] += g[c];
        }
    }
    return 0;
}
