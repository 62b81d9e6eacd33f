/* sw_kv_blocks — the host-side accounting of the engine's paged KV cache: which of num_blocks
 * blocks are in use (reference counts: a block is shared by every sequence whose prefix it
 * holds), which free blocks still hold a reusable prefix (the prefix cache) and which block to
 * hand out next.
 *
 * Prefix cache: a full block is identified by hash(parent block's hash, its block_size token ids,
 * extra), extra being what else changes its K/V (the LoRA adapter). Lookups compare the parent
 * hash, extra and the token ids themselves, so a hash collision can only confuse two blocks whose
 * 64-bit parent hashes also collide. A block whose last reference goes stays findable until it
 * is handed out again; free blocks are handed out least recently freed first (LRU), and a
 * sequence releases its blocks last-first, so a shared prompt's first blocks are evicted last.
 *
 * Not thread-safe: the engine's step thread owns it. The device storage is struct sw_kv_cache
 * (lib/model/sw_model_infer.h). */
#ifndef SW_KV_BLOCKS_H
#define SW_KV_BLOCKS_H

#include <stdint.h>

struct sw_kv_blocks;

/* num_blocks ≥ 1 blocks of block_size ≥ 1 tokens; prefix_caching 0 turns lookups and
 * registrations into no-ops. Returns 0, SW_EINVAL or SW_ENOMEM. */
int sw_kv_blocks_new(int64_t num_blocks, int block_size, int prefix_caching,
                     struct sw_kv_blocks **out);
void sw_kv_blocks_free(struct sw_kv_blocks *bm);

int64_t sw_kv_blocks_total(const struct sw_kv_blocks *bm);
int sw_kv_blocks_block_size(const struct sw_kv_blocks *bm);
/* Blocks that can be handed out (free, cached ones included) / referenced / free but cached. */
int64_t sw_kv_blocks_num_free(const struct sw_kv_blocks *bm);
int64_t sw_kv_blocks_num_used(const struct sw_kv_blocks *bm);
int64_t sw_kv_blocks_num_cached_free(const struct sw_kv_blocks *bm);
/* Reference count of block id (0 = free). */
int sw_kv_blocks_refs(const struct sw_kv_blocks *bm, int32_t id);
/* 1 when block id holds a registered (findable) prefix. */
int sw_kv_blocks_is_cached(const struct sw_kv_blocks *bm, int32_t id);

/* A block with one reference, taken from the head of the free list (a cached block there is
 * evicted from the cache first); -1 when none is free. */
int32_t sw_kv_blocks_alloc(struct sw_kv_blocks *bm);
/* One more reference (a free cached block leaves the free list). */
void sw_kv_blocks_retain(struct sw_kv_blocks *bm, int32_t id);
/* One reference less; at zero the block joins the tail of the free list (still findable when
 * cached). */
void sw_kv_blocks_release(struct sw_kv_blocks *bm, int32_t id);

/* The hash of a full block: tokens[block_size] after the block whose hash is parent (0 for the
 * first block), with extra mixed in. */
uint64_t sw_kv_block_hash(uint64_t parent, const int32_t *tokens, int n, uint64_t extra);
/* The cached block with that identity, or -1 (and always -1 with prefix caching off). Does not
 * change reference counts; counts a query and a hit. */
int32_t sw_kv_blocks_lookup(struct sw_kv_blocks *bm, uint64_t hash, uint64_t parent,
                            const int32_t *tokens, uint64_t extra);
/* Make block id (referenced, full, K/V computed) findable under hash. Returns 1 when registered,
 * 0 when an identical block is already cached (id stays an ordinary block) or caching is off. */
int sw_kv_blocks_register(struct sw_kv_blocks *bm, int32_t id, uint64_t hash, uint64_t parent,
                          const int32_t *tokens, uint64_t extra);
/* Forget every cached prefix (e.g. when an adapter is replaced). */
void sw_kv_blocks_reset_cache(struct sw_kv_blocks *bm);

/* Lookups and hits since creation (blocks). */
void sw_kv_blocks_counters(const struct sw_kv_blocks *bm, int64_t *queries, int64_t *hits);

/* Check every invariant (free list ⟺ refs 0, counts, hash chains); 0 or SW_ECORRUPT naming the
 * first broken one. For tests. */
int sw_kv_blocks_check(const struct sw_kv_blocks *bm);

#endif
