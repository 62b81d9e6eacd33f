/* paged_ops — the CPU kernels of the inference engine's paged KV cache
 * (kernels/cpu/paged_attention.c). Signatures and shapes are those of the kv_cache_write and
 * paged_attention_fwd members of struct sw_backend (kernels/sw_kernels.h). Internal to kernels/. */
#ifndef SW_CPU_PAGED_OPS_H
#define SW_CPU_PAGED_OPS_H

#include "sw_kernels.h"

int sw_cpu_kv_cache_write(struct sw_backend *be, float *kcache, float *vcache, const float *k,
                          const float *v, const int32_t *slot_mapping, int64_t N, int64_t Hk,
                          int64_t D, int64_t num_slots);
int sw_cpu_paged_attention_fwd(struct sw_backend *be, float *out, const float *q,
                               const float *kcache, const float *vcache,
                               const int32_t *block_tables, int64_t max_blocks,
                               const int32_t *cu_q, const int32_t *seq_lens, int nseq,
                               int64_t max_q_len, int64_t max_seq_len, int64_t N, int64_t Hq,
                               int64_t Hk, int64_t D, int64_t block_size, int64_t num_blocks,
                               float scale);

#endif
