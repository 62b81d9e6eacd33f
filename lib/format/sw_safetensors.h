/* sw_safetensors — the safetensors format: a validating, zero-copy reader over mmap; an atomic
 * writer with 8-byte-aligned data, a metadata map and sharding (model.safetensors.index.json);
 * and a set reader that opens a single file, a sharded index, or a folder holding either.
 *
 * File layout: u64 little-endian header length N, N bytes of JSON (an object: tensor name ->
 * {"dtype", "shape", "data_offsets": [begin, end]}, plus optional "__metadata__": {str: str}),
 * then the data section; offsets are relative to the data section start.
 * The reader validates everything before handing out a view (see sw_st_open). */
#ifndef SW_SAFETENSORS_H
#define SW_SAFETENSORS_H

#include "sw_tensor.h"

#include <stddef.h>
#include <stdint.h>

#define SW_ST_MAX_HEADER (100u << 20) /* 100 MB, as the reference implementation */

struct sw_st_entry {
    const char *name;
    enum sw_dtype dtype;
    int ndim;
    int64_t shape[SW_TENSOR_MAX_DIMS];
    const void *data; /* into the mapping; valid until the file is closed */
    size_t nbytes;
    uint64_t begin, end; /* data_offsets */
};

struct sw_st_file;

/* safetensors' dtype string for dt ("F32", "BF16", "F8_E4M3", ...), or NULL for a type the
 * format cannot name (Q4). */
const char *sw_st_dtype_name(enum sw_dtype dt);
/* Parse an exact safetensors dtype string. 0, SW_EUNSUPPORTED for names the format defines but
 * sw has no type for (F8_E8M0, F4, C64, ...), or SW_EFORMAT; no message is set. */
int sw_st_dtype_parse(const char *name, enum sw_dtype *out);
/* Bytes per element of a type the format can name; 0 for Q4. */
size_t sw_st_dtype_size(enum sw_dtype dt);

/* Map and validate path: header length within the file and SW_ST_MAX_HEADER, JSON object,
 * known dtype names, integer non-negative shapes, numel × dtype size == end − begin, spans
 * inside the data section, no two spans overlapping, every byte of the data section covered
 * (as the reference implementation requires), valid UTF-8 names, no duplicate names. Any violation
 * is SW_EFORMAT (or SW_ETRUNC when the file is shorter than it claims; SW_EUNSUPPORTED for valid
 * files sw cannot represent: more than 8 dimensions, dtypes such as F8_E8M0 or C64) with a
 * message naming the file and the tensor/field. Entries are kept in data-offset order. */
int sw_st_open(const char *path, struct sw_st_file **out);
/* The same over a caller-owned buffer (kept borrowed; used by the fuzzer and tests). */
int sw_st_open_mem(const void *buf, size_t len, const char *name, struct sw_st_file **out);
void sw_st_close(struct sw_st_file *f);

int sw_st_count(const struct sw_st_file *f);
const struct sw_st_entry *sw_st_get(const struct sw_st_file *f, int i);
const struct sw_st_entry *sw_st_find(const struct sw_st_file *f, const char *name);
/* Metadata value for key, or NULL. */
const char *sw_st_metadata(const struct sw_st_file *f, const char *key);
int sw_st_metadata_count(const struct sw_st_file *f);
/* i-th metadata pair (keys sorted). */
int sw_st_metadata_get(const struct sw_st_file *f, int i, const char **key, const char **value);
const char *sw_st_path(const struct sw_st_file *f);
/* A borrowed tensor view of an entry (name not copied; do not release the data). */
void sw_st_entry_view(const struct sw_st_entry *e, struct sw_tensor *t);

/* Writer: collects borrowed tensors (data must stay valid until write), then writes. */
struct sw_st_writer;
int sw_st_writer_new(struct sw_st_writer **out);
void sw_st_writer_free(struct sw_st_writer *w);
/* Add a contiguous CPU tensor under name (copied). Duplicate names are SW_EINVAL. */
int sw_st_writer_add(struct sw_st_writer *w, const char *name, const struct sw_tensor *t);
int sw_st_writer_set_metadata(struct sw_st_writer *w, const char *key, const char *value);
/* One file, written atomically. The header lists tensors in insertion order; the data section
 * starts 8-aligned (the header is padded with spaces) and holds the tensors back to back (the
 * reference requires the spans to tile it exactly, so no padding between tensors), in insertion
 * order stably sorted by element size, largest first: every tensor starts at a multiple of its
 * element size, and at a multiple of 8 whenever the tensors before it have sizes that are
 * multiples of 8 (always true of model weights). Q4 tensors are SW_EUNSUPPORTED (safetensors has
 * no name for them). */
int sw_st_writer_write(struct sw_st_writer *w, const char *path);
/* Shards of at most max_shard_bytes of tensor data in dir: "<base>-00001-of-0000N.safetensors"
 * plus "<base>.safetensors.index.json" ({"metadata": {"total_size": ...}, "weight_map": {...}});
 * a single "<base>.safetensors" when everything fits in one shard. base is usually "model". */
int sw_st_writer_write_sharded(struct sw_st_writer *w, const char *dir, const char *base,
                               uint64_t max_shard_bytes);

/* A set of files read as one: a .safetensors file, an index .json, or a folder holding
 * model.safetensors or model.safetensors.index.json (every shard validated; a tensor listed in
 * the index must be in its named shard and nowhere else). */
struct sw_st_set;
int sw_st_set_open(const char *path, struct sw_st_set **out);
void sw_st_set_close(struct sw_st_set *s);
int sw_st_set_count(const struct sw_st_set *s);
const struct sw_st_entry *sw_st_set_get(const struct sw_st_set *s,
                                        int i); /* shard order, then offset */
const struct sw_st_entry *sw_st_set_find(const struct sw_st_set *s, const char *name);
int sw_st_set_nfiles(const struct sw_st_set *s);
const struct sw_st_file *sw_st_set_file(const struct sw_st_set *s, int i);

#endif
