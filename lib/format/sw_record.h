/* sw_record — one record of an sws stream: the parsed form a reader hands out, and the builder a
 * writer encodes from. The stream format itself is specified in docs/stream.md (summary at the
 * top of sw_stream.h).
 *
 * Read side: struct sw_record is opaque and borrowed from its reader. Every pointer obtained from
 * it (strings, msgpack objects, tensor data) points into the reader's buffer and stays valid
 * until the next sw_stream_read() on that reader or until the reader is freed, whichever comes
 * first (the header and end records live as long as the reader). Strings are UTF-8 and NOT
 * NUL-terminated (pointer + length), except sw_record_kind(). Tensor views are zero-copy when the
 * data is aligned to its element size in the buffer (always the case for streams written by sw);
 * otherwise the view points at an aligned copy owned by the reader, with the same lifetime.
 * Tensor views are read-only by convention.
 *
 * Write side: struct sw_record_builder collects fields in order and encodes them as one msgpack
 * map. Keys and strings are copied; tensor data is BORROWED and must stay valid until the record
 * has been written (sw_stream_write) or encoded (sw_record_builder_encode). Nested maps/arrays
 * are opened with *_begin and closed with sw_record_put_end; inside an array pass key NULL. */
#ifndef SW_RECORD_H
#define SW_RECORD_H

#include "sw_tensor.h"

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

struct sw_record;
struct sw_record_builder;
struct json_t;

/* ---- read side ------------------------------------------------------------------------- */

/* The record's "kind" ("sample", "batch", "tensors", "header", "end", "x-..."), NUL-terminated. */
const char *sw_record_kind(const struct sw_record *r);
/* Position of the record: the header is record 0, the first record after it is 1, ... */
uint64_t sw_record_index(const struct sw_record *r);
/* Byte offset of the record's first byte in the stream (for ZeroMQ: in the concatenation of the
 * messages received, which is the same byte sequence a file would hold). */
uint64_t sw_record_offset(const struct sw_record *r);
/* The record's msgpack bytes exactly as read (for forwarding with sw_stream_write_raw). */
const void *sw_record_raw(const struct sw_record *r, size_t *len);
/* The record as a msgpack map (MSGPACK_OBJECT_MAP; every key is a string). */
const msgpack_object *sw_record_map(const struct sw_record *r);
/* The value of a top-level field, or NULL when the record has no such key. */
const msgpack_object *sw_record_field(const struct sw_record *r, const char *key);

/* Typed getters for top-level fields. Each returns 0, SW_ENOTFOUND when the key is absent, or
 * SW_EFORMAT when the value has another type or does not fit; the message names the stream,
 * record index and key. get_double also accepts integers; get_int/get_uint reject floats. */
int sw_record_get_int(const struct sw_record *r, const char *key, int64_t *out);
int sw_record_get_uint(const struct sw_record *r, const char *key, uint64_t *out);
int sw_record_get_double(const struct sw_record *r, const char *key, double *out);
int sw_record_get_bool(const struct sw_record *r, const char *key, int *out);
/* *s points into the record (not NUL-terminated), *len is its length in bytes. */
int sw_record_get_str(const struct sw_record *r, const char *key, const char **s, size_t *len);
/* A map-valued field (e.g. "meta"). */
int sw_record_get_map(const struct sw_record *r, const char *key, const msgpack_object **map);

/* A tensor field as a borrowed view (see the lifetime rules above): t is filled with dtype,
 * shape, contiguous strides and data; t->name is NULL and t->owns_data 0, so
 * sw_tensor_release(t) is harmless but not needed. */
int sw_record_get_tensor(const struct sw_record *r, const char *key, struct sw_tensor *t);
/* Same for any tensor map inside the record (an element of a nested map or array); what names
 * it in messages (e.g. "tensors.lm_head.weight"). */
int sw_record_tensor_from(const struct sw_record *r, const msgpack_object *o, const char *what,
                          struct sw_tensor *t);
/* For "tensors" records: the number of entries of the "tensors" map (0 for other kinds), and the
 * i-th entry's name (not NUL-terminated) and tensor view. */
size_t sw_record_tensors_len(const struct sw_record *r);
int sw_record_tensors_at(const struct sw_record *r, size_t i, const char **name, size_t *name_len,
                         struct sw_tensor *t);

/* msgpack helpers: the value of key in a map object (NULL if absent or map is not a map), and
 * whether o is the string s. */
const msgpack_object *sw_msgpack_map_get(const msgpack_object *map, const char *key);
int sw_msgpack_str_eq(const msgpack_object *o, const char *s);

/* ---- JSON view (sw-pack cat) ------------------------------------------------------------ */

/* Tensors become {"dtype","shape","min","max","sum"[,"nan"]} summaries, or with this flag
 * {"dtype","shape","values":[nested arrays]}. */
#define SW_RECORD_JSON_FULL 1

/* The record as a new JSON object (caller owns: json_decref). Strings stay strings, bin values
 * outside tensors become {"bytes": n} (plus "hex" with SW_RECORD_JSON_FULL), non-finite floats
 * become the strings "NaN", "Infinity", "-Infinity". Returns NULL with the message set on
 * failure (SW_ENOMEM, or SW_EFORMAT for a malformed tensor). */
struct json_t *sw_record_to_json(const struct sw_record *r, int flags);

/* ---- write side ------------------------------------------------------------------------ */

/* A new builder whose map starts with "kind": kind; kind NULL builds a plain map (for the
 * header's meta). Returns NULL with the message set on ENOMEM. */
struct sw_record_builder *sw_record_builder_new(const char *kind);
/* Free the builder. Accepts NULL. */
void sw_record_builder_free(struct sw_record_builder *b);
/* Drop every field and start over with a new kind (NULL: plain map); keeps the allocations, so a
 * writer loop can reuse one builder. Returns 0 or SW_ENOMEM. */
int sw_record_builder_reset(struct sw_record_builder *b, const char *kind);

/* Add one field to the innermost open map (key required, unique in that map) or array (key
 * must be NULL). Return 0, SW_EINVAL (bad key, duplicate key, bad tensor) or SW_ENOMEM. */
int sw_record_put_nil(struct sw_record_builder *b, const char *key);
int sw_record_put_bool(struct sw_record_builder *b, const char *key, int v);
int sw_record_put_int(struct sw_record_builder *b, const char *key, int64_t v);
int sw_record_put_uint(struct sw_record_builder *b, const char *key, uint64_t v);
int sw_record_put_double(struct sw_record_builder *b, const char *key, double v);
/* s must be UTF-8 (checked): NUL-terminated for put_str, len bytes for put_strn. */
int sw_record_put_str(struct sw_record_builder *b, const char *key, const char *s);
int sw_record_put_strn(struct sw_record_builder *b, const char *key, const char *s, size_t len);
/* A contiguous CPU tensor; its data is borrowed until the record is written. */
int sw_record_put_tensor(struct sw_record_builder *b, const char *key, const struct sw_tensor *t);
/* Shorthand: a 1-D I32 tensor over n borrowed values (token ids, labels). */
int sw_record_put_i32(struct sw_record_builder *b, const char *key, const int32_t *v, int64_t n);
/* A copy of any msgpack value (e.g. a "meta" map taken from a record being forwarded). */
int sw_record_put_object(struct sw_record_builder *b, const char *key, const msgpack_object *o);
/* Open a nested map or array under key; close the innermost one with sw_record_put_end
 * (SW_ESTATE when none is open). At most 12 levels can be open at once. */
int sw_record_put_map_begin(struct sw_record_builder *b, const char *key);
int sw_record_put_array_begin(struct sw_record_builder *b, const char *key);
int sw_record_put_end(struct sw_record_builder *b);

/* Encode the builder into one malloc'ed buffer (caller frees) — the exact bytes a writer would
 * emit for it. SW_ESTATE if a nested map/array is still open. */
int sw_record_builder_encode(const struct sw_record_builder *b, void **out, size_t *len);

#endif
