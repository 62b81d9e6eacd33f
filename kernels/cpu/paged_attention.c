/* CPU paged attention — the two ops of the inference engine's KV cache (lib/infer/sw_engine.c):
 *
 *   kv_cache_write: scatter the new tokens' K and V rows into their cache slots;
 *   paged_attention_fwd: causal, grouped-query attention of a batch of sequences, each with
 *     q_len new query rows, against every key of the sequence so far (cached + new), read from
 *     the cache through the sequence's block table.
 *
 * Cache layout (one layer): kcache/vcache [num_blocks · block_size, Hk, D]; token t of a
 * sequence lives in slot block_tables[s][t / block_size] · block_size + t % block_size.
 *
 * Work items are (sequence, kv head, block of SW_PA_BQ query rows), in parallel. An item gathers
 * the keys and values its rows can see into contiguous per-thread buffers (so the arithmetic is
 * two single-threaded sgemms, as in kernels/cpu/attention.c), then for each query head of the
 * group: S = scale·Q·Kᵀ [rows, keys], causal mask, softmax (sw_vexpf, the training kernel's
 * exp), out = P·V. A row's result depends only on its own sequence (never on the batch), which
 * is what lets the engine batch freely without changing a greedy result. */
#include "cpu_ops.h"
#include "fastmath.h"

#include "sw_err.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define SW_PA_BQ 32

int sw_cpu_kv_cache_write(struct sw_backend *be, float *kcache, float *vcache, const float *k,
                          const float *v, const int32_t *slot_mapping, int64_t N, int64_t Hk,
                          int64_t D, int64_t num_slots) {
    (void)be;
    for (int64_t n = 0; n < N; n++)
        if (slot_mapping[n] >= num_slots)
            return sw_err_set(SW_ERANGE,
                              "kv_cache_write: slot %d of token %lld outside the "
                              "cache's %lld slots",
                              (int)slot_mapping[n], (long long)n, (long long)num_slots);
    size_t row = (size_t)(Hk * D);
#pragma omp parallel for schedule(static) if (N > 64)
    for (int64_t n = 0; n < N; n++) {
        int64_t s = slot_mapping[n];
        if (s < 0) continue; /* a token whose K/V is not kept (padding) */
        memcpy(kcache + (size_t)s * row, k + (size_t)n * row, row * sizeof(float));
        memcpy(vcache + (size_t)s * row, v + (size_t)n * row, row * sizeof(float));
    }
    return 0;
}

struct pa_item {
    int s, kh;
    int64_t i0, i1; /* query rows inside the sequence's new rows */
};

/* First key position row position i sees with a sliding window of w keys (0 = none). */
static inline int64_t first_key(int64_t i, int64_t w) {
    return w > 0 && i - w + 1 > 0 ? i - w + 1 : 0;
}

static int pa_fwd(float *out, const float *q, const float *kcache, const float *vcache,
                  const int32_t *block_tables, int64_t max_blocks, const int32_t *cu_q,
                  const int32_t *seq_lens, int nseq, int64_t max_seq_len, int64_t N, int64_t Hq,
                  int64_t Hk, int64_t D, int64_t block_size, int64_t num_blocks, float scale,
                  int64_t window, float softcap) {
    if (window < 0 || softcap < 0)
        return sw_err_set(SW_EINVAL, "paged_attention: negative window %lld or soft-cap %g",
                          (long long)window, (double)softcap);
    if (nseq < 0 || (nseq > 0 && (!cu_q || cu_q[0] != 0 || cu_q[nseq] != N)))
        return sw_err_set(SW_EINVAL, "paged_attention: cu_q must run from 0 to N = %lld",
                          (long long)N);
    if (Hq <= 0 || Hk <= 0 || Hq % Hk || D <= 0 || block_size <= 0)
        return sw_err_set(SW_EINVAL,
                          "paged_attention: %lld query heads not a multiple of %lld "
                          "kv heads (head_dim %lld, block_size %lld)",
                          (long long)Hq, (long long)Hk, (long long)D, (long long)block_size);
    int64_t maxctx = 0, nitems = 0;
    for (int s = 0; s < nseq; s++) {
        int64_t ql = (int64_t)cu_q[s + 1] - cu_q[s], ctx = seq_lens[s];
        if (ql < 0 || ctx < ql)
            return sw_err_set(SW_EINVAL,
                              "paged_attention: sequence %d has %lld new rows but a "
                              "context of %lld",
                              s, (long long)ql, (long long)ctx);
        if ((ctx + block_size - 1) / block_size > max_blocks)
            return sw_err_set(SW_EINVAL,
                              "paged_attention: sequence %d needs %lld blocks, the "
                              "table has %lld",
                              s, (long long)((ctx + block_size - 1) / block_size),
                              (long long)max_blocks);
        for (int64_t b = 0; b < (ctx + block_size - 1) / block_size; b++) {
            int32_t blk = block_tables[s * max_blocks + b];
            if (blk < 0 || blk >= num_blocks)
                return sw_err_set(SW_ERANGE,
                                  "paged_attention: block %d of sequence %d (entry "
                                  "%lld) outside [0, %lld)",
                                  (int)blk, s, (long long)b, (long long)num_blocks);
        }
        if (ctx > maxctx) maxctx = ctx;
        nitems += Hk * ((ql + SW_PA_BQ - 1) / SW_PA_BQ);
    }
    if (max_seq_len > 0 && maxctx > max_seq_len)
        return sw_err_set(SW_EINVAL,
                          "paged_attention: a context of %lld tokens exceeds "
                          "max_seq_len %lld",
                          (long long)maxctx, (long long)max_seq_len);
    if (nitems == 0) return 0;
    struct pa_item *items = malloc((size_t)nitems * sizeof(*items));
    int nth = omp_get_max_threads();
    size_t kv_per = (size_t)maxctx * (size_t)D, s_per = (size_t)SW_PA_BQ * (size_t)maxctx;
    size_t per = 2 * kv_per + s_per;
    float *buf = malloc((size_t)nth * per * sizeof(float));
    if (!items || !buf) {
        free(items), free(buf);
        return sw_err_set(SW_ENOMEM, "paged_attention: out of memory");
    }
    int64_t k = 0;
    for (int s = 0; s < nseq; s++) {
        int64_t ql = (int64_t)cu_q[s + 1] - cu_q[s];
        for (int64_t kh = 0; kh < Hk; kh++)
            for (int64_t i0 = 0; i0 < ql; i0 += SW_PA_BQ)
                items[k++] =
                    (struct pa_item){s, (int)kh, i0, i0 + SW_PA_BQ < ql ? i0 + SW_PA_BQ : ql};
    }
    int64_t group = Hq / Hk, ldq = Hq * D, row = Hk * D;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
    for (int64_t t = 0; t < nitems; t++) {
        const struct pa_item *it = &items[t];
        float *Kb = buf + (size_t)omp_get_thread_num() * per, *Vb = Kb + kv_per, *S = Vb + kv_per;
        int64_t ql = (int64_t)cu_q[it->s + 1] - cu_q[it->s], ctx = seq_lens[it->s];
        int64_t first = ctx - ql;    /* position of the sequence's first new row */
        int64_t nk = first + it->i1; /* keys the item's last row sees */
        int64_t k0 = first_key(first + it->i0, window), nc = nk - k0; /* gathered: [k0, nk) */
        int64_t rows = it->i1 - it->i0;
        const int32_t *bt = block_tables + (int64_t)it->s * max_blocks;
        for (int64_t j = k0; j < nk; j++) {
            size_t slot =
                (size_t)bt[j / block_size] * (size_t)block_size + (size_t)(j % block_size);
            memcpy(Kb + (j - k0) * D, kcache + slot * row + it->kh * D, (size_t)D * sizeof(float));
            memcpy(Vb + (j - k0) * D, vcache + slot * row + it->kh * D, (size_t)D * sizeof(float));
        }
        for (int64_t h = it->kh * group; h < (it->kh + 1) * group; h++) {
            int64_t r0 = cu_q[it->s] + it->i0;
            sw_cpu_sgemm_1t(0, 1, rows, nc, D, scale, q + (r0 * Hq + h) * D, ldq, Kb, D, 0.0f, S,
                            nc);
            for (int64_t r = 0; r < rows; r++) {
                float *x = S + r * nc;
                int64_t i = first + it->i0 + r, vis = i + 1 - k0, lo = first_key(i, window) - k0;
                if (softcap > 0)
                    for (int64_t j = lo; j < vis; j++)
                        x[j] = softcap * tanhf(x[j] / softcap);
                float m = x[lo];
                for (int64_t j = lo + 1; j < vis; j++)
                    m = x[j] > m ? x[j] : m;
                float l = sw_vexpf(x + lo, x + lo, m, 1.0f, vis - lo);
                float inv = 1.0f / l;
#pragma omp simd
                for (int64_t j = lo; j < vis; j++)
                    x[j] *= inv;
                for (int64_t j = 0; j < lo; j++)
                    x[j] = 0.0f;
                for (int64_t j = vis; j < nc; j++)
                    x[j] = 0.0f;
            }
            sw_cpu_sgemm_1t(0, 0, rows, D, nc, 1.0f, S, nc, Vb, D, 0.0f, out + (r0 * Hq + h) * D,
                            ldq);
        }
    }
    free(items), free(buf);
    return 0;
}

int sw_cpu_paged_attention_fwd(struct sw_backend *be, float *out, const float *q,
                               const float *kcache, const float *vcache,
                               const int32_t *block_tables, int64_t max_blocks, const int32_t *cu_q,
                               const int32_t *seq_lens, int nseq, int64_t max_q_len,
                               int64_t max_seq_len, int64_t N, int64_t Hq, int64_t Hk, int64_t D,
                               int64_t block_size, int64_t num_blocks, float scale) {
    (void)be;
    (void)max_q_len;
    return pa_fwd(out, q, kcache, vcache, block_tables, max_blocks, cu_q, seq_lens, nseq,
                  max_seq_len, N, Hq, Hk, D, block_size, num_blocks, scale, 0, 0.0f);
}

int sw_cpu_paged_attention_ext_fwd(struct sw_backend *be, float *out, const float *q,
                                   const float *kcache, const float *vcache,
                                   const int32_t *block_tables, int64_t max_blocks,
                                   const int32_t *cu_q, const int32_t *seq_lens, int nseq,
                                   int64_t max_q_len, int64_t max_seq_len, int64_t N, int64_t Hq,
                                   int64_t Hk, int64_t D, int64_t block_size, int64_t num_blocks,
                                   float scale, int64_t window, float softcap) {
    (void)be;
    (void)max_q_len;
    return pa_fwd(out, q, kcache, vcache, block_tables, max_blocks, cu_q, seq_lens, nseq,
                  max_seq_len, N, Hq, Hk, D, block_size, num_blocks, scale, window, softcap);
}
