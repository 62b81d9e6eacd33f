/* sw_arena — bump allocation for tensors and short-lived buffers.
 *
 * Allocations come from large blocks and are freed all at once (sw_arena_reset keeps the memory
 * for reuse, sw_arena_free returns everything). Used for per-step activations and scratch:
 * no per-tensor free, no fragmentation, and a high-water mark for memory reports. */
#ifndef SW_ARENA_H
#define SW_ARENA_H

#include <stddef.h>

struct sw_arena;

/* A new arena whose blocks are at least block_size bytes (0 picks 1 MiB). NULL on ENOMEM. */
struct sw_arena *sw_arena_new(size_t block_size);
/* Free the arena and every allocation. Accepts NULL. */
void sw_arena_free(struct sw_arena *a);
/* size bytes aligned to align (a power of two ≤ 4096; 0 means 64). NULL with sw_err set on ENOMEM
 * (or SW_EINVAL for a bad align). size 0 gives a valid pointer that must not be dereferenced. */
void *sw_arena_alloc(struct sw_arena *a, size_t size, size_t align);
/* Like alloc, zero-filled. */
void *sw_arena_calloc(struct sw_arena *a, size_t size, size_t align);
/* Copy a string into the arena. */
char *sw_arena_strdup(struct sw_arena *a, const char *s);
/* Drop every allocation and keep the memory for reuse: blocks are coalesced into one block of
 * their total size (if that allocation fails, the largest block is kept). Accepts NULL. */
void sw_arena_reset(struct sw_arena *a);
/* Bytes handed out since the last reset, and the most ever handed out (high-water mark). */
size_t sw_arena_used(const struct sw_arena *a);
size_t sw_arena_peak(const struct sw_arena *a);

#endif
