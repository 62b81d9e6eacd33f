/* sw_model_infer — the model's inference forward for the engine (lib/infer/sw_engine*.c): a batch
 * of sequences, each contributing its new tokens (a prefill chunk or one decode token) on top of
 * its context already in a paged KV cache, run through the same weights and backend ops as
 * training (sw_model.h), with several LoRA adapters side by side on the frozen base.
 *
 *   - struct sw_kv_cache: the cache's device storage, per layer K and V of num_blocks blocks of
 *     block_size tokens ([num_blocks · block_size, Hk, D] float32 each). Which blocks belong to
 *     which sequence is the engine's business (lib/infer/sw_kv_blocks.h); here a sequence is a
 *     block table.
 *   - struct sw_lora_weights: one PEFT adapter's A and B matrices in backend memory, applied
 *     without merging (y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ) to the rows of the sequences that use it.
 *   - sw_model_infer: embedding → layers (RMSNorm, q/k/v with their LoRA, Qwen3 q/k norm, RoPE at
 *     each token's position, the new K/V written into the cache, paged attention over the
 *     sequence's blocks, o_proj, MLP) → final norm and LM head only for the rows asked for.
 *
 * The model itself is left untouched (no LoRA parameters are added to it): the same sw_model can
 * serve any number of adapters. Activations live in the backend's scratch arena, reset by every
 * call (sw_model_infer cannot interleave with a training forward/backward on the same backend). */
#ifndef SW_MODEL_INFER_H
#define SW_MODEL_INFER_H

#include "sw_adapter.h"
#include "sw_model.h"

#include <stddef.h>
#include <stdint.h>

/* ---- KV cache storage ---------------------------------------------------------------------- */

struct sw_kv_cache {
    float *data; /* backend memory, [L][K|V][num_blocks · block_size][Hk][D] */
    int64_t num_blocks, block_size, L, Hk, D;
};

/* Bytes one block takes over all layers (K and V, float32). */
size_t sw_kv_cache_block_bytes(const struct sw_model_config *c, int64_t block_size);
/* Allocate num_blocks blocks on be (zeroed). Returns 0, SW_EINVAL or SW_ENOMEM. */
int sw_kv_cache_init(struct sw_kv_cache *kv, struct sw_backend *be, const struct sw_model_config *c,
                     int64_t num_blocks, int64_t block_size);
void sw_kv_cache_release(struct sw_kv_cache *kv, struct sw_backend *be);
/* Layer l's K / V storage. */
float *sw_kv_cache_k(const struct sw_kv_cache *kv, int64_t l);
float *sw_kv_cache_v(const struct sw_kv_cache *kv, int64_t l);
/* Copy block src into block dst in every layer (copy-on-write of a shared partial block). */
int sw_kv_cache_copy_block(struct sw_kv_cache *kv, struct sw_backend *be, int32_t dst, int32_t src);

/* ---- LoRA adapters for inference ---------------------------------------------------------- */

struct sw_lora_weights;

/* Upload adapter a (opened and checked against m's config by the caller or here) to m's backend:
 * every module it has, A [r, in] and B [out, r] converted to float32. An adapter may cover only
 * some layers or modules (PEFT layers_to_transform): the others use the base alone.
 * *out is freed with sw_lora_weights_free. */
int sw_lora_weights_load(struct sw_model *m, const struct sw_adapter *a,
                         struct sw_lora_weights **out);
void sw_lora_weights_free(struct sw_lora_weights *w);
/* Bytes of backend memory the adapter takes. */
size_t sw_lora_weights_bytes(const struct sw_lora_weights *w);

/* ---- the forward --------------------------------------------------------------------------- */

/* One step's batch (host memory). Sequence s owns new-token rows [cu_q[s], cu_q[s+1]) and has
 * seq_lens[s] tokens in total after this step (cached + new), so its new tokens sit at positions
 * seq_lens[s] − q_len .. seq_lens[s] − 1 (pos[] gives each token's RoPE position, normally
 * exactly those). slot_mapping[n] is the cache slot (block · block_size + offset) where token n's
 * K/V goes; block_tables [nseq, max_blocks] lists each sequence's blocks in order. */
struct sw_infer_batch {
    int nseq;
    int64_t N;                   /* new tokens, Σ q_len */
    const int32_t *ids;          /* [N] */
    const int32_t *pos;          /* [N] */
    const int32_t *cu_q;         /* [nseq + 1] */
    const int32_t *seq_lens;     /* [nseq] */
    const int32_t *block_tables; /* [nseq · max_blocks] */
    int64_t max_blocks;
    const int32_t *slot_mapping; /* [N] */
    /* Per sequence adapter (NULL entries: the base), or NULL for none at all. Consecutive
     * sequences with the same adapter are computed as one slab: order the batch by adapter. */
    const struct sw_lora_weights *const *lora;
    const int32_t *logit_rows; /* [n_logits] rows in [0, N) whose next-token logits are
                                  wanted, in any order */
    int64_t n_logits;
};

/* Run b through m on cache kv (K/V of the new tokens written into their slots) and write the
 * logits of b->logit_rows into logits (host, [n_logits, vocab] float32). Returns 0 or a negative
 * error (ids outside the vocabulary, slots or blocks outside the cache, positions beyond the
 * RoPE range are SW_ERANGE/SW_EINVAL). */
int sw_model_infer(struct sw_model *m, struct sw_kv_cache *kv, const struct sw_infer_batch *b,
                   float *logits);

/* Scratch-arena bytes sw_model_infer needs for N new tokens, n_logits logit rows and adapters
 * of rank up to max_r (an upper bound; for sizing the arena and the KV budget). */
size_t sw_model_infer_scratch_bytes(const struct sw_model *m, int64_t N, int64_t n_logits,
                                    int64_t max_r);

#endif
