/* sw_strmap — a hash map from byte strings to 64-bit integers.
 *
 * Keys are arbitrary bytes (NUL allowed) copied into the map; values are int64_t. Open addressing
 * over a slot table of 8-byte slots (entry index + hash tag) in front of an insertion-ordered
 * entry array, so a lookup usually touches one slot cache line and one entry. Built for large
 * read-mostly tables (tokenizer vocabularies of 150k+ entries) that many threads read at once:
 * lookups never write, so concurrent sw_strmap_get calls on one map are safe as long as no
 * thread inserts at the same time. There is no removal (none of the users need it). */
#ifndef SW_STRMAP_H
#define SW_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct sw_strmap;

/* A new empty map sized for about capacity_hint keys (0 is fine). NULL on ENOMEM (sw_err set). */
struct sw_strmap *sw_strmap_new(size_t capacity_hint);
/* Free the map and its copies of the keys. Accepts NULL. */
void sw_strmap_free(struct sw_strmap *m);

/* Insert key -> value, or overwrite the value when the key is present (the key keeps its
 * insertion position). key is copied. Returns 0, or SW_ENOMEM / SW_ERANGE (over 2^31 keys or
 * a key over 4 GiB) with the message set. */
int sw_strmap_put(struct sw_strmap *m, const void *key, size_t len, int64_t value);

/* Look key up. Returns 1 and stores the value in *value (when value is not NULL) if present,
 * 0 if absent. Thread-safe against other readers. */
int sw_strmap_get(const struct sw_strmap *m, const void *key, size_t len, int64_t *value);

/* Number of keys. */
size_t sw_strmap_size(const struct sw_strmap *m);

/* Iterate in insertion order: start with *iter = 0; each call that returns 1 yields the next
 * key (borrowed, NUL-terminated for convenience, valid until the next put) with its length and
 * value; returns 0 at the end. Any output pointer may be NULL. */
int sw_strmap_next(const struct sw_strmap *m, size_t *iter, const char **key, size_t *len,
                   int64_t *value);

/* The 64-bit hash the map uses (fast, not collision-attack resistant), for other tables that
 * want the same function. */
uint64_t sw_hash_bytes(const void *data, size_t len, uint64_t seed);

#endif
