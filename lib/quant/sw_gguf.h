/* sw_gguf — the GGUF file format of ggml / llama.cpp: a bounds-checked reader and an atomic,
 * streaming writer, plus the table of ggml tensor types (block size and bytes per block).
 *
 * Layout (ggml docs/gguf.md; all integers little-endian):
 *   "GGUF" u32 version (3; 2 has the same layout) u64 n_tensors u64 n_kv
 *   n_kv × { string key, u32 value type, value }      string = u64 length + bytes (no NUL)
 *   n_tensors × { string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset }
 *   padding to general.alignment (default 32), then the data section; each tensor's offset is
 *   relative to the data section and a multiple of the alignment.
 * ne[] is ggml's order, innermost first: a PyTorch weight [out, in] is ne = {in, out}. Rows of a
 * quantized tensor are ne[0] elements, a whole number of blocks.
 *
 * The reader validates everything before handing anything out: every length and count against
 * the bytes that remain, unique keys and tensor names, names under 64 bytes, known value and
 * tensor types, at most 4 dimensions with no overflow of the element count, ne[0] a multiple
 * of the type's block size, aligned offsets, every tensor inside the file and no two
 * overlapping. A file shorter than it claims is SW_ETRUNC; any other lie is SW_EFORMAT; both
 * name the file and the key or tensor. Big-endian GGUF files are SW_EUNSUPPORTED. */
#ifndef SW_GGUF_H
#define SW_GGUF_H

#include <stddef.h>
#include <stdint.h>

#define SW_GGUF_MAGIC "GGUF"
#define SW_GGUF_VERSION 3
#define SW_GGUF_DEFAULT_ALIGNMENT 32
#define SW_GGUF_MAX_NAME 63 /* ggml's GGML_MAX_NAME (64) less the NUL */
#define SW_GGUF_MAX_DIMS 4
#define SW_GGML_QNT_VERSION 2 /* general.quantization_version of files llama.cpp writes */

/* ggml tensor types (ids as in ggml.h; the gaps are types ggml removed). */
enum sw_ggml_type {
    SW_GGML_F32 = 0,
    SW_GGML_F16 = 1,
    SW_GGML_Q4_0 = 2,
    SW_GGML_Q4_1 = 3,
    SW_GGML_Q5_0 = 6,
    SW_GGML_Q5_1 = 7,
    SW_GGML_Q8_0 = 8,
    SW_GGML_Q8_1 = 9,
    SW_GGML_Q2_K = 10,
    SW_GGML_Q3_K = 11,
    SW_GGML_Q4_K = 12,
    SW_GGML_Q5_K = 13,
    SW_GGML_Q6_K = 14,
    SW_GGML_Q8_K = 15,
    SW_GGML_IQ2_XXS = 16,
    SW_GGML_IQ2_XS = 17,
    SW_GGML_IQ3_XXS = 18,
    SW_GGML_IQ1_S = 19,
    SW_GGML_IQ4_NL = 20,
    SW_GGML_IQ3_S = 21,
    SW_GGML_IQ2_S = 22,
    SW_GGML_IQ4_XS = 23,
    SW_GGML_I8 = 24,
    SW_GGML_I16 = 25,
    SW_GGML_I32 = 26,
    SW_GGML_I64 = 27,
    SW_GGML_F64 = 28,
    SW_GGML_IQ1_M = 29,
    SW_GGML_BF16 = 30,
    SW_GGML_TQ1_0 = 34,
    SW_GGML_TQ2_0 = 35,
    SW_GGML_MXFP4 = 39,
    SW_GGML_TYPE_COUNT = 40,
};

/* The type's name ("Q4_K", "BF16"), or NULL for an id ggml does not define. */
const char *sw_ggml_type_name(int type);
/* Parse a name (case-insensitive). Returns the type or -1. */
int sw_ggml_type_parse(const char *name);
/* Elements per block (1 for plain types, 32 or 256 for quantized ones); 0 for unknown ids. */
int64_t sw_ggml_blck_size(int type);
/* Bytes per block; 0 for unknown ids. */
size_t sw_ggml_type_size(int type);
/* 1 for block-quantized types (everything but F32, F16, BF16, F64 and the integers). */
int sw_ggml_is_quantized(int type);
/* Bytes of a row of n elements (n a multiple of the block size), or 0 when it is not. */
size_t sw_ggml_row_size(int type, int64_t n);

/* GGUF metadata value types. */
enum sw_gguf_vtype {
    SW_GGUF_UINT8 = 0,
    SW_GGUF_INT8 = 1,
    SW_GGUF_UINT16 = 2,
    SW_GGUF_INT16 = 3,
    SW_GGUF_UINT32 = 4,
    SW_GGUF_INT32 = 5,
    SW_GGUF_FLOAT32 = 6,
    SW_GGUF_BOOL = 7,
    SW_GGUF_STRING = 8,
    SW_GGUF_ARRAY = 9,
    SW_GGUF_UINT64 = 10,
    SW_GGUF_INT64 = 11,
    SW_GGUF_FLOAT64 = 12,
    SW_GGUF_VTYPE_COUNT
};
const char *sw_gguf_vtype_name(int vtype); /* "u32", "str", "arr", ...; "?" for unknown */

/* A string inside the file (not NUL-terminated). */
struct sw_gguf_str {
    const char *p;
    uint64_t n;
};

/* One key-value pair. Scalars: type is the value's type and data points at its bytes. Strings:
 * str. Arrays: type SW_GGUF_ARRAY, arr_type the element type, n elements starting at data
 * (fixed-size types) or in strs (string arrays). Nested arrays are rejected by the reader. */
struct sw_gguf_kv {
    char *key; /* NUL-terminated copy */
    enum sw_gguf_vtype type;
    enum sw_gguf_vtype arr_type;
    uint64_t n;
    const uint8_t *data;
    struct sw_gguf_str str;
    struct sw_gguf_str *strs; /* string arrays: n entries (owned) */
};

struct sw_gguf_tensor {
    char *name; /* NUL-terminated copy */
    int n_dims;
    int64_t ne[SW_GGUF_MAX_DIMS]; /* ggml order; unused dims are 1 */
    int type;                     /* enum sw_ggml_type */
    uint64_t offset;              /* relative to the data section */
    const void *data;             /* into the file */
    size_t nbytes;
};

struct sw_gguf;

/* Map and validate path (see the top of this file). *out is NULL on error. */
int sw_gguf_open(const char *path, struct sw_gguf **out);
/* The same over a caller-owned buffer (borrowed; keep it alive while the file is open). name is
 * used in messages. */
int sw_gguf_open_mem(const void *buf, size_t len, const char *name, struct sw_gguf **out);
void sw_gguf_close(struct sw_gguf *g);

uint32_t sw_gguf_version(const struct sw_gguf *g);
uint32_t sw_gguf_alignment(const struct sw_gguf *g);
uint64_t sw_gguf_data_offset(const struct sw_gguf *g); /* file offset of the data section */
uint64_t sw_gguf_file_size(const struct sw_gguf *g);
const char *sw_gguf_name(const struct sw_gguf *g);

int sw_gguf_kv_count(const struct sw_gguf *g);
const struct sw_gguf_kv *sw_gguf_kv_get(const struct sw_gguf *g, int i); /* file order */
const struct sw_gguf_kv *sw_gguf_find_kv(const struct sw_gguf *g, const char *key);
int sw_gguf_tensor_count(const struct sw_gguf *g);
const struct sw_gguf_tensor *sw_gguf_tensor_get(const struct sw_gguf *g, int i); /* file order */
const struct sw_gguf_tensor *sw_gguf_find_tensor(const struct sw_gguf *g, const char *name);
int64_t sw_gguf_tensor_numel(const struct sw_gguf_tensor *t);

/* Typed reads of a scalar value: any integer type (bool included) for _int, any float or
 * integer for _float. 0 or SW_EFORMAT naming the key when the type does not fit, or the value
 * does not fit int64. */
int sw_gguf_kv_int(const struct sw_gguf_kv *kv, int64_t *out);
int sw_gguf_kv_float(const struct sw_gguf_kv *kv, double *out);
/* Element i (< kv->n) of an integer or float array, converted. */
int64_t sw_gguf_arr_int(const struct sw_gguf_kv *kv, uint64_t i);
double sw_gguf_arr_float(const struct sw_gguf_kv *kv, uint64_t i);
/* Bytes of one element of a fixed-size value type (0 for strings and arrays). */
size_t sw_gguf_vtype_size(int vtype);

/* ---- writer ----
 * Keys and tensor infos are collected first; sw_gguf_writer_begin writes the header into a
 * temporary file next to path; the tensor data then follows in the order the infos were added
 * (sw_gguf_writer_write_tensor, each exactly sw_ggml_row_size × rows bytes); commit pads, fsyncs
 * and renames. Nothing appears at path unless commit succeeds. Alignment is 32 unless a
 * general.alignment key (u32) is added. */
struct sw_gguf_writer;
int sw_gguf_writer_new(struct sw_gguf_writer **out);
void sw_gguf_writer_free(struct sw_gguf_writer *w); /* aborts an unfinished file; NULL ok */

/* Metadata. Keys must be unique (SW_EINVAL otherwise). Strings are copied. */
int sw_gguf_set_u32(struct sw_gguf_writer *w, const char *key, uint32_t v);
int sw_gguf_set_i32(struct sw_gguf_writer *w, const char *key, int32_t v);
int sw_gguf_set_u64(struct sw_gguf_writer *w, const char *key, uint64_t v);
int sw_gguf_set_f32(struct sw_gguf_writer *w, const char *key, float v);
int sw_gguf_set_bool(struct sw_gguf_writer *w, const char *key, int v);
int sw_gguf_set_str(struct sw_gguf_writer *w, const char *key, const char *v);
int sw_gguf_set_str_n(struct sw_gguf_writer *w, const char *key, const char *v, size_t n);
/* An array of n strings (lens may be NULL: NUL-terminated). */
int sw_gguf_set_arr_str(struct sw_gguf_writer *w, const char *key, const char *const *v,
                        const size_t *lens, size_t n);
/* An array of n fixed-size elements of vtype (bytes copied from v). */
int sw_gguf_set_arr(struct sw_gguf_writer *w, const char *key, enum sw_gguf_vtype vtype,
                    const void *v, size_t n);

/* Declare a tensor: name (< 64 bytes, unique), ggml type, n_dims ne[] in ggml order (ne[0]
 * a multiple of the block size). Returns its index (>= 0) or a negative error. */
int sw_gguf_add_tensor(struct sw_gguf_writer *w, const char *name, int type, int n_dims,
                       const int64_t *ne);
/* Bytes the data of tensor i must have. */
size_t sw_gguf_writer_tensor_nbytes(const struct sw_gguf_writer *w, int i);

/* Open the temp file and write header, metadata and tensor infos. */
int sw_gguf_writer_begin(struct sw_gguf_writer *w, const char *path);
/* Write the data of the next tensor (infos order); nbytes must be its exact size. */
int sw_gguf_writer_write_tensor(struct sw_gguf_writer *w, const void *data, size_t nbytes);
/* Every tensor written: pad, fsync, rename onto path. The writer can then only be freed. */
int sw_gguf_writer_commit(struct sw_gguf_writer *w);

#endif
