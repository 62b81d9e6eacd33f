/* sw_arena — bump allocation from a list of large blocks, freed all at once.
 *
 * Small requests are carved from the head block; a request bigger than the block size gets a
 * dedicated block that is linked *behind* the head, so the head keeps serving small requests
 * instead of being abandoned half-used. Reset coalesces: when a cycle (a training step, a
 * request) needed several blocks, they are replaced by one block of their total size, so the
 * steady state is a single block and no malloc per cycle. */
#include "sw_arena.h"

#include "sw_err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_HDR 64 /* block header size; keeps every block's data 64-byte aligned */
#define ARENA_DEFAULT_BLOCK ((size_t)1 << 20)
#define ARENA_MAX_ALIGN 4096

struct arena_block {
    struct arena_block *next;
    size_t cap;  /* usable bytes after the header */
    size_t used; /* bytes consumed, padding included */
};

struct sw_arena {
    struct arena_block *head;
    size_t block_size;
    size_t used, peak; /* requested bytes since reset, and their maximum */
};

static char *block_data(struct arena_block *b) {
    return (char *)b + ARENA_HDR;
}

static struct arena_block *block_new(size_t cap) {
    if (cap > SIZE_MAX - 2 * ARENA_HDR) return NULL;
    size_t total = (ARENA_HDR + cap + 63) & ~(size_t)63;
    struct arena_block *b = aligned_alloc(64, total);
    if (!b) return NULL;
    b->next = NULL;
    b->cap = cap;
    b->used = 0;
    return b;
}

struct sw_arena *sw_arena_new(size_t block_size) {
    struct sw_arena *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->block_size = block_size ? block_size : ARENA_DEFAULT_BLOCK;
    return a;
}

static void blocks_free(struct arena_block *b) {
    while (b) {
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
}

void sw_arena_free(struct sw_arena *a) {
    if (!a) return;
    blocks_free(a->head);
    free(a);
}

/* Offset in b where size bytes aligned to align fit, or SIZE_MAX. */
static size_t block_fit(struct arena_block *b, size_t size, size_t align) {
    uintptr_t base = (uintptr_t)block_data(b);
    uintptr_t p = (base + b->used + (align - 1)) & ~(uintptr_t)(align - 1);
    size_t off = (size_t)(p - base);
    if (off > b->cap || size > b->cap - off) return SIZE_MAX;
    return off;
}

void *sw_arena_alloc(struct sw_arena *a, size_t size, size_t align) {
    if (align == 0) align = 64;
    if ((align & (align - 1)) || align > ARENA_MAX_ALIGN) {
        sw_err_set(SW_EINVAL, "arena: alignment %zu is not a power of two <= %d", align,
                   ARENA_MAX_ALIGN);
        return NULL;
    }
    struct arena_block *b = a->head;
    size_t off = b ? block_fit(b, size, align) : SIZE_MAX;
    if (off == SIZE_MAX) {
        /* Block data is 64-aligned, so only alignments above 64 need padding room. */
        size_t pad = align > 64 ? align - 64 : 0;
        if (size > SIZE_MAX - pad - 2 * ARENA_HDR) {
            sw_err_set(SW_ENOMEM, "arena: request of %zu bytes is too large", size);
            return NULL;
        }
        size_t need = size + pad;
        b = block_new(need > a->block_size ? need : a->block_size);
        if (!b) {
            sw_err_set(SW_ENOMEM, "arena: cannot allocate a block for %zu bytes", size);
            return NULL;
        }
        if (need > a->block_size && a->head) { /* dedicated block: keep the head current */
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
        off = block_fit(b, size, align);
    }
    b->used = off + size;
    a->used += size;
    if (a->used > a->peak) a->peak = a->used;
    return block_data(b) + off;
}

void *sw_arena_calloc(struct sw_arena *a, size_t size, size_t align) {
    void *p = sw_arena_alloc(a, size, align);
    if (p) memset(p, 0, size);
    return p;
}

char *sw_arena_strdup(struct sw_arena *a, const char *s) {
    size_t n = strlen(s) + 1;
    char *p = sw_arena_alloc(a, n, 1);
    if (p) memcpy(p, s, n);
    return p;
}

void sw_arena_reset(struct sw_arena *a) {
    if (!a) return;
    a->used = 0;
    struct arena_block *b = a->head;
    if (!b) return;
    if (!b->next) {
        b->used = 0;
        return;
    }
    size_t total = 0;
    struct arena_block *largest = b;
    for (struct arena_block *x = b; x; x = x->next) {
        total = total > SIZE_MAX - x->cap ? SIZE_MAX : total + x->cap;
        if (x->cap > largest->cap) largest = x;
    }
    struct arena_block *one = block_new(total);
    if (one) { /* coalesce: next cycle fits in one block */
        blocks_free(a->head);
    } else { /* no memory for that: keep the largest block */
        for (struct arena_block *x = a->head, *next; x; x = next) {
            next = x->next;
            if (x != largest) free(x);
        }
        one = largest;
        one->used = 0;
    }
    one->next = NULL;
    a->head = one;
}

size_t sw_arena_used(const struct sw_arena *a) {
    return a ? a->used : 0;
}
size_t sw_arena_peak(const struct sw_arena *a) {
    return a ? a->peak : 0;
}
