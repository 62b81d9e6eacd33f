/* sw_strmap — byte-string -> int64 hash map (see sw_strmap.h).
 *
 * Layout: `slots` is a power-of-two table of {entry index + 1, high 32 hash bits}; 0 marks an
 * empty slot. Linear probing, load factor at most 1/2, so a miss usually ends at the first or
 * second slot and a hit compares one key. `entries` keeps keys in insertion order (iteration
 * order) and each entry keeps its full hash, so growing never rehashes key bytes. Key bytes
 * live NUL-terminated in one pool. */
#include "sw_strmap.h"

#include <stdlib.h>
#include <string.h>

#include "sw_err.h"

struct sw_strmap_slot {
    uint32_t idx; /* entry index + 1; 0 = empty */
    uint32_t tag; /* hash >> 32 */
};

struct sw_strmap_entry {
    uint64_t key_off;
    uint64_t hash;
    int64_t value;
    uint32_t key_len;
};

struct sw_strmap {
    struct sw_strmap_slot *slots;
    size_t mask; /* slot count - 1 */
    struct sw_strmap_entry *entries;
    size_t n, cap;
    char *pool;
    size_t pool_len, pool_cap;
};

static inline uint64_t sw_strmap_mix(uint64_t a, uint64_t b) {
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

uint64_t sw_hash_bytes(const void *data, size_t len, uint64_t seed) {
    const uint8_t *p = data;
    uint64_t h = seed ^ 0x9e3779b97f4a7c15ULL ^ ((uint64_t)len * 0xff51afd7ed558ccdULL);
    while (len >= 16) {
        uint64_t a, b;
        memcpy(&a, p, 8);
        memcpy(&b, p + 8, 8);
        h = sw_strmap_mix(a ^ 0xa0761d6478bd642fULL ^ h, b ^ 0xe7037ed1a0b428dbULL);
        p += 16;
        len -= 16;
    }
    uint64_t a = 0, b = 0;
    if (len >= 8) {
        memcpy(&a, p, 8);
        memcpy(&b, p + len - 8, 8); /* overlapping read of the tail */
    } else if (len >= 4) {
        uint32_t x, y;
        memcpy(&x, p, 4);
        memcpy(&y, p + len - 4, 4);
        a = x;
        b = y;
    } else if (len > 0) {
        a = ((uint64_t)p[0] << 16) | ((uint64_t)p[len >> 1] << 8) | p[len - 1];
    }
    h = sw_strmap_mix(a ^ 0x8ebc6af09c88c6e3ULL ^ h, b ^ 0x589965cc75374cc3ULL);
    return sw_strmap_mix(h ^ 0x1d8e4e27c47d124fULL, 0xa0761d6478bd642fULL);
}

static size_t sw_strmap_pow2(size_t n) {
    size_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

struct sw_strmap *sw_strmap_new(size_t capacity_hint) {
    struct sw_strmap *m = calloc(1, sizeof(*m));
    if (!m) goto oom;
    size_t nslots = sw_strmap_pow2(capacity_hint * 2 + 2);
    m->slots = calloc(nslots, sizeof(*m->slots));
    m->cap = capacity_hint > 8 ? capacity_hint : 8;
    m->entries = malloc(m->cap * sizeof(*m->entries));
    m->pool_cap = m->cap * 8;
    m->pool = malloc(m->pool_cap);
    if (!m->slots || !m->entries || !m->pool) goto oom;
    m->mask = nslots - 1;
    return m;
oom:
    sw_strmap_free(m);
    sw_err_set(SW_ENOMEM, "sw_strmap: out of memory");
    return NULL;
}

void sw_strmap_free(struct sw_strmap *m) {
    if (!m) return;
    free(m->slots);
    free(m->entries);
    free(m->pool);
    free(m);
}

size_t sw_strmap_size(const struct sw_strmap *m) {
    return m ? m->n : 0;
}

/* Slot holding key, or the empty slot where it would go. */
static size_t sw_strmap_find(const struct sw_strmap *m, const void *key, size_t len, uint64_t h,
                             int *found) {
    uint32_t tag = (uint32_t)(h >> 32);
    size_t i = (size_t)h & m->mask;
    for (;;) {
        const struct sw_strmap_slot *s = &m->slots[i];
        if (s->idx == 0) {
            *found = 0;
            return i;
        }
        if (s->tag == tag) {
            const struct sw_strmap_entry *e = &m->entries[s->idx - 1];
            if (e->key_len == len && memcmp(m->pool + e->key_off, key, len) == 0) {
                *found = 1;
                return i;
            }
        }
        i = (i + 1) & m->mask;
    }
}

static int sw_strmap_grow_slots(struct sw_strmap *m) {
    size_t nslots = (m->mask + 1) * 2;
    struct sw_strmap_slot *slots = calloc(nslots, sizeof(*slots));
    if (!slots)
        return sw_err_set(SW_ENOMEM, "sw_strmap: out of memory growing to %zu slots", nslots);
    size_t mask = nslots - 1;
    for (size_t k = 0; k < m->n; k++) {
        const struct sw_strmap_entry *e = &m->entries[k];
        uint64_t full = e->hash;
        size_t i = (size_t)full & mask;
        while (slots[i].idx)
            i = (i + 1) & mask;
        slots[i].idx = (uint32_t)(k + 1);
        slots[i].tag = (uint32_t)(full >> 32);
    }
    free(m->slots);
    m->slots = slots;
    m->mask = mask;
    return 0;
}

int sw_strmap_put(struct sw_strmap *m, const void *key, size_t len, int64_t value) {
    if (len > UINT32_MAX)
        return sw_err_set(SW_ERANGE, "sw_strmap: key of %zu bytes is too long", len);
    uint64_t h = sw_hash_bytes(key, len, 0);
    int found;
    size_t i = sw_strmap_find(m, key, len, h, &found);
    if (found) {
        m->entries[m->slots[i].idx - 1].value = value;
        return 0;
    }
    if (m->n >= INT32_MAX) return sw_err_set(SW_ERANGE, "sw_strmap: more than 2^31 keys");
    if ((m->n + 1) * 2 > m->mask + 1) {
        SW_TRY(sw_strmap_grow_slots(m));
        i = sw_strmap_find(m, key, len, h, &found);
    }
    if (m->n == m->cap) {
        size_t cap = m->cap * 2;
        struct sw_strmap_entry *e = realloc(m->entries, cap * sizeof(*e));
        if (!e) return sw_err_set(SW_ENOMEM, "sw_strmap: out of memory (%zu entries)", cap);
        m->entries = e;
        m->cap = cap;
    }
    if (m->pool_len + len + 1 > m->pool_cap) {
        size_t cap = m->pool_cap * 2;
        while (cap < m->pool_len + len + 1)
            cap *= 2;
        char *p = realloc(m->pool, cap);
        if (!p) return sw_err_set(SW_ENOMEM, "sw_strmap: out of memory (%zu key bytes)", cap);
        m->pool = p;
        m->pool_cap = cap;
    }
    struct sw_strmap_entry *e = &m->entries[m->n];
    e->key_off = m->pool_len;
    e->key_len = (uint32_t)len;
    e->hash = h;
    e->value = value;
    if (len) memcpy(m->pool + m->pool_len, key, len);
    m->pool[m->pool_len + len] = 0;
    m->pool_len += len + 1;
    m->n++;
    m->slots[i].idx = (uint32_t)m->n;
    m->slots[i].tag = (uint32_t)(h >> 32);
    return 0;
}

int sw_strmap_get(const struct sw_strmap *m, const void *key, size_t len, int64_t *value) {
    uint64_t h = sw_hash_bytes(key, len, 0);
    int found;
    size_t i = sw_strmap_find(m, key, len, h, &found);
    if (found && value) *value = m->entries[m->slots[i].idx - 1].value;
    return found;
}

int sw_strmap_next(const struct sw_strmap *m, size_t *iter, const char **key, size_t *len,
                   int64_t *value) {
    if (*iter >= m->n) return 0;
    const struct sw_strmap_entry *e = &m->entries[(*iter)++];
    if (key) *key = m->pool + e->key_off;
    if (len) *len = e->key_len;
    if (value) *value = e->value;
    return 1;
}
