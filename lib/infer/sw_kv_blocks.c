/* sw_kv_blocks — block accounting and the prefix cache (see sw_kv_blocks.h).
 *
 * Per block: a reference count, links of the doubly-linked free list (head = next to hand out),
 * and when cached its identity (hash, parent hash, extra, token ids) and its link in a chained
 * hash table of 2^k buckets. Every operation is O(1) except lookups and registrations, which
 * also compare block_size ids, and removal from a hash chain (chains are short). */
#include "sw_kv_blocks.h"

#include "sw_err.h"

#include <stdlib.h>
#include <string.h>

struct sw_kv_blocks {
    int64_t n;
    int bs;
    int caching;
    int32_t *refs;
    int32_t *prev, *next; /* free list links, -1 = none */
    int32_t head, tail;
    int64_t nfree, ncached_free;
    /* cache */
    unsigned char *cached;
    uint64_t *hash, *parent, *extra;
    int32_t *tokens; /* [n · bs] */
    int32_t *chain;  /* next block in the same bucket */
    int32_t *buckets;
    uint64_t mask;
    int64_t queries, hits;
};

int64_t sw_kv_blocks_total(const struct sw_kv_blocks *bm) {
    return bm->n;
}
int sw_kv_blocks_block_size(const struct sw_kv_blocks *bm) {
    return bm->bs;
}
int64_t sw_kv_blocks_num_free(const struct sw_kv_blocks *bm) {
    return bm->nfree;
}
int64_t sw_kv_blocks_num_used(const struct sw_kv_blocks *bm) {
    return bm->n - bm->nfree;
}
int64_t sw_kv_blocks_num_cached_free(const struct sw_kv_blocks *bm) {
    return bm->ncached_free;
}
int sw_kv_blocks_refs(const struct sw_kv_blocks *bm, int32_t id) {
    return bm->refs[id];
}
int sw_kv_blocks_is_cached(const struct sw_kv_blocks *bm, int32_t id) {
    return bm->cached[id];
}

void sw_kv_blocks_counters(const struct sw_kv_blocks *bm, int64_t *queries, int64_t *hits) {
    *queries = bm->queries;
    *hits = bm->hits;
}

void sw_kv_blocks_free(struct sw_kv_blocks *bm) {
    if (!bm) return;
    free(bm->refs), free(bm->prev), free(bm->next), free(bm->cached), free(bm->hash);
    free(bm->parent), free(bm->extra), free(bm->tokens), free(bm->chain), free(bm->buckets);
    free(bm);
}

int sw_kv_blocks_new(int64_t num_blocks, int block_size, int prefix_caching,
                     struct sw_kv_blocks **out) {
    *out = NULL;
    if (num_blocks < 1 || num_blocks >= INT32_MAX / 2 || block_size < 1)
        return sw_err_set(SW_EINVAL,
                          "kv blocks: need 1 <= blocks < 2^30 and block_size >= 1 "
                          "(got %lld, %d)",
                          (long long)num_blocks, block_size);
    struct sw_kv_blocks *bm = calloc(1, sizeof(*bm));
    if (!bm) return sw_err_set(SW_ENOMEM, "kv blocks: out of memory");
    size_t n = (size_t)num_blocks;
    uint64_t nb = 1;
    while (nb < 2 * n)
        nb <<= 1;
    bm->n = num_blocks;
    bm->bs = block_size;
    bm->caching = prefix_caching;
    bm->mask = nb - 1;
    bm->refs = calloc(n, sizeof(int32_t));
    bm->prev = malloc(n * sizeof(int32_t));
    bm->next = malloc(n * sizeof(int32_t));
    bm->cached = calloc(n, 1);
    bm->hash = calloc(n, sizeof(uint64_t));
    bm->parent = calloc(n, sizeof(uint64_t));
    bm->extra = calloc(n, sizeof(uint64_t));
    bm->tokens = malloc(n * (size_t)block_size * sizeof(int32_t));
    bm->chain = malloc(n * sizeof(int32_t));
    bm->buckets = malloc(nb * sizeof(int32_t));
    if (!bm->refs || !bm->prev || !bm->next || !bm->cached || !bm->hash || !bm->parent ||
        !bm->extra || !bm->tokens || !bm->chain || !bm->buckets) {
        sw_kv_blocks_free(bm);
        return sw_err_set(SW_ENOMEM, "kv blocks: out of memory for %lld blocks",
                          (long long)num_blocks);
    }
    for (size_t i = 0; i < n; i++) {
        bm->prev[i] = (int32_t)i - 1;
        bm->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
        bm->chain[i] = -1;
    }
    for (uint64_t b = 0; b < nb; b++)
        bm->buckets[b] = -1;
    bm->head = 0;
    bm->tail = (int32_t)n - 1;
    bm->nfree = num_blocks;
    *out = bm;
    return 0;
}

static void list_remove(struct sw_kv_blocks *bm, int32_t id) {
    int32_t p = bm->prev[id], q = bm->next[id];
    if (p >= 0)
        bm->next[p] = q;
    else
        bm->head = q;
    if (q >= 0)
        bm->prev[q] = p;
    else
        bm->tail = p;
    bm->prev[id] = bm->next[id] = -1;
    bm->nfree--;
    if (bm->cached[id]) bm->ncached_free--;
}

static void list_append(struct sw_kv_blocks *bm, int32_t id) {
    bm->prev[id] = bm->tail;
    bm->next[id] = -1;
    if (bm->tail >= 0)
        bm->next[bm->tail] = id;
    else
        bm->head = id;
    bm->tail = id;
    bm->nfree++;
    if (bm->cached[id]) bm->ncached_free++;
}

static void uncache(struct sw_kv_blocks *bm, int32_t id) {
    if (!bm->cached[id]) return;
    int32_t *pp = &bm->buckets[bm->hash[id] & bm->mask];
    while (*pp != id)
        pp = &bm->chain[*pp];
    *pp = bm->chain[id];
    bm->chain[id] = -1;
    bm->cached[id] = 0;
}

int32_t sw_kv_blocks_alloc(struct sw_kv_blocks *bm) {
    int32_t id = bm->head;
    if (id < 0) return -1;
    list_remove(bm, id);
    uncache(bm, id); /* evicted: its content is about to be overwritten */
    bm->refs[id] = 1;
    return id;
}

void sw_kv_blocks_retain(struct sw_kv_blocks *bm, int32_t id) {
    if (bm->refs[id]++ == 0) list_remove(bm, id);
}

void sw_kv_blocks_release(struct sw_kv_blocks *bm, int32_t id) {
    SW_ASSERT(bm->refs[id] > 0);
    if (--bm->refs[id] == 0) list_append(bm, id);
}

uint64_t sw_kv_block_hash(uint64_t parent, const int32_t *tokens, int n, uint64_t extra) {
    /* FNV-1a over the 32-bit words, then a splitmix64 finaliser for the bucket bits */
    uint64_t h = 0xcbf29ce484222325ull;
    uint64_t words[2] = {parent, extra};
    for (int i = 0; i < 2; i++)
        for (int b = 0; b < 8; b++)
            h = (h ^ ((words[i] >> (8 * b)) & 0xff)) * 0x100000001b3ull;
    for (int i = 0; i < n; i++) {
        uint32_t t = (uint32_t)tokens[i];
        for (int b = 0; b < 4; b++)
            h = (h ^ ((t >> (8 * b)) & 0xff)) * 0x100000001b3ull;
    }
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
    return h ^ (h >> 31);
}

static int32_t find(const struct sw_kv_blocks *bm, uint64_t hash, uint64_t parent,
                    const int32_t *tokens, uint64_t extra) {
    for (int32_t id = bm->buckets[hash & bm->mask]; id >= 0; id = bm->chain[id])
        if (bm->hash[id] == hash && bm->parent[id] == parent && bm->extra[id] == extra &&
            memcmp(bm->tokens + (size_t)id * bm->bs, tokens, (size_t)bm->bs * sizeof(int32_t)) == 0)
            return id;
    return -1;
}

int32_t sw_kv_blocks_lookup(struct sw_kv_blocks *bm, uint64_t hash, uint64_t parent,
                            const int32_t *tokens, uint64_t extra) {
    if (!bm->caching) return -1;
    bm->queries++;
    int32_t id = find(bm, hash, parent, tokens, extra);
    if (id >= 0) bm->hits++;
    return id;
}

int sw_kv_blocks_register(struct sw_kv_blocks *bm, int32_t id, uint64_t hash, uint64_t parent,
                          const int32_t *tokens, uint64_t extra) {
    if (!bm->caching || bm->cached[id]) return 0;
    if (find(bm, hash, parent, tokens, extra) >= 0) return 0;
    SW_ASSERT(bm->refs[id] > 0);
    bm->cached[id] = 1;
    bm->hash[id] = hash;
    bm->parent[id] = parent;
    bm->extra[id] = extra;
    memcpy(bm->tokens + (size_t)id * bm->bs, tokens, (size_t)bm->bs * sizeof(int32_t));
    uint64_t b = hash & bm->mask;
    bm->chain[id] = bm->buckets[b];
    bm->buckets[b] = id;
    return 1;
}

void sw_kv_blocks_reset_cache(struct sw_kv_blocks *bm) {
    for (int64_t i = 0; i < bm->n; i++) {
        if (!bm->cached[i]) continue;
        if (bm->refs[i] == 0) bm->ncached_free--;
        uncache(bm, (int32_t)i);
    }
}

int sw_kv_blocks_check(const struct sw_kv_blocks *bm) {
    int64_t nfree = 0, ncf = 0;
    unsigned char *seen = calloc((size_t)bm->n, 1);
    if (!seen) return sw_err_set(SW_ENOMEM, "kv blocks: out of memory");
    int rc = 0;
    for (int32_t id = bm->head, p = -1; id >= 0 && rc == 0; p = id, id = bm->next[id]) {
        if (seen[id] || bm->prev[id] != p)
            rc = sw_err_set(SW_ECORRUPT, "kv blocks: free list broken at block %d", (int)id);
        else if (bm->refs[id] != 0)
            rc = sw_err_set(SW_ECORRUPT, "kv blocks: block %d is free with %d references", (int)id,
                            (int)bm->refs[id]);
        seen[id] = 1;
        nfree++;
        ncf += bm->cached[id];
        if (bm->next[id] < 0 && bm->tail != id)
            rc = sw_err_set(SW_ECORRUPT, "kv blocks: free list tail is not its last block");
    }
    for (int64_t i = 0; i < bm->n && rc == 0; i++)
        if (!seen[i] && bm->refs[i] <= 0)
            rc = sw_err_set(SW_ECORRUPT, "kv blocks: block %lld has no reference and is not free",
                            (long long)i);
    if (rc == 0 && (nfree != bm->nfree || ncf != bm->ncached_free))
        rc = sw_err_set(SW_ECORRUPT,
                        "kv blocks: counts %lld free / %lld cached free, lists say "
                        "%lld / %lld",
                        (long long)bm->nfree, (long long)bm->ncached_free, (long long)nfree,
                        (long long)ncf);
    int64_t chained = 0, cached = 0;
    for (uint64_t b = 0; b <= bm->mask && rc == 0; b++)
        for (int32_t id = bm->buckets[b]; id >= 0 && rc == 0; id = bm->chain[id]) {
            chained++;
            if (!bm->cached[id] || (bm->hash[id] & bm->mask) != b)
                rc = sw_err_set(SW_ECORRUPT, "kv blocks: hash chain %llu holds block %d wrongly",
                                (unsigned long long)b, (int)id);
            if (chained > bm->n) rc = sw_err_set(SW_ECORRUPT, "kv blocks: hash chain loop");
        }
    for (int64_t i = 0; i < bm->n; i++)
        cached += bm->cached[i];
    if (rc == 0 && chained != cached)
        rc = sw_err_set(SW_ECORRUPT, "kv blocks: %lld cached blocks but %lld in the hash table",
                        (long long)cached, (long long)chained);
    free(seen);
    return rc;
}
