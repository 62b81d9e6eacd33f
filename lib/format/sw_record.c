/* sw_record — accessors of a parsed record: fields by key, typed getters, and tensor views.
 *
 * A tensor view points into the record's bytes. Streams written by sw put tensor data at
 * 16-byte-aligned offsets and the reader places each record at a 16-byte-aligned address, so
 * the view is zero-copy. Other writers (python msgpack) leave data wherever it falls; typed
 * loads from such a pointer are undefined behaviour in C, so those views get an aligned copy
 * kept in the reader's scratch list until the next record. */
#include "sw_stream_impl.h"

#include "sw_err.h"

#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void *sw_scratch_alloc(struct sw_scratch *s, size_t len) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 8;
        void **b = realloc(s->blocks, cap * sizeof *b);
        if (!b) return NULL;
        s->blocks = b;
        s->cap = cap;
    }
    void *p = NULL;
    if (posix_memalign(&p, 64, len ? len : 1) != 0) return NULL;
    s->blocks[s->n++] = p;
    return p;
}

void sw_scratch_clear(struct sw_scratch *s) {
    for (size_t i = 0; i < s->n; i++)
        free(s->blocks[i]);
    s->n = 0;
}

const char *sw_record_kind(const struct sw_record *r) {
    return r->kind;
}
uint64_t sw_record_index(const struct sw_record *r) {
    return r->index;
}
uint64_t sw_record_offset(const struct sw_record *r) {
    return r->offset;
}
const msgpack_object *sw_record_map(const struct sw_record *r) {
    return &r->root;
}

const void *sw_record_raw(const struct sw_record *r, size_t *len) {
    *len = r->raw_len;
    return r->raw;
}

int sw_msgpack_str_eq(const msgpack_object *o, const char *s) {
    size_t n = strlen(s);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, s, n) == 0;
}

const msgpack_object *sw_msgpack_map_get(const msgpack_object *map, const char *key) {
    if (!map || map->type != MSGPACK_OBJECT_MAP) return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (sw_msgpack_str_eq(&map->via.map.ptr[i].key, key)) return &map->via.map.ptr[i].val;
    return NULL;
}

const msgpack_object *sw_record_field(const struct sw_record *r, const char *key) {
    return sw_msgpack_map_get(&r->root, key);
}

/* ---- typed getters ------------------------------------------------------------------------ */

static const msgpack_object *field_or_err(const struct sw_record *r, const char *key, int *rc) {
    const msgpack_object *o = sw_record_field(r, key);
    *rc = o ? 0 : sw_record_errf(r, SW_ENOTFOUND, "no field '%s'", key);
    return o;
}

int sw_record_get_int(const struct sw_record *r, const char *key, int64_t *out) {
    int rc;
    const msgpack_object *o = field_or_err(r, key, &rc);
    if (!o) return rc;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *out = o->via.i64;
    else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
        *out = (int64_t)o->via.u64;
    else
        return sw_record_errf(r, SW_EFORMAT, "field '%s' is not a 64-bit signed integer", key);
    return 0;
}

int sw_record_get_uint(const struct sw_record *r, const char *key, uint64_t *out) {
    int rc;
    const msgpack_object *o = field_or_err(r, key, &rc);
    if (!o) return rc;
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return sw_record_errf(r, SW_EFORMAT, "field '%s' is not a non-negative integer", key);
    *out = o->via.u64;
    return 0;
}

int sw_record_get_double(const struct sw_record *r, const char *key, double *out) {
    int rc;
    const msgpack_object *o = field_or_err(r, key, &rc);
    if (!o) return rc;
    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: *out = o->via.f64; return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: *out = (double)o->via.u64; return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = (double)o->via.i64; return 0;
    default: return sw_record_errf(r, SW_EFORMAT, "field '%s' is not a number", key);
    }
}

int sw_record_get_bool(const struct sw_record *r, const char *key, int *out) {
    int rc;
    const msgpack_object *o = field_or_err(r, key, &rc);
    if (!o) return rc;
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return sw_record_errf(r, SW_EFORMAT, "field '%s' is not a boolean", key);
    *out = o->via.boolean;
    return 0;
}

int sw_record_get_str(const struct sw_record *r, const char *key, const char **s, size_t *len) {
    int rc;
    const msgpack_object *o = field_or_err(r, key, &rc);
    if (!o) return rc;
    if (o->type != MSGPACK_OBJECT_STR)
        return sw_record_errf(r, SW_EFORMAT, "field '%s' is not a string", key);
    *s = o->via.str.ptr;
    *len = o->via.str.size;
    return 0;
}

int sw_record_get_map(const struct sw_record *r, const char *key, const msgpack_object **map) {
    int rc;
    const msgpack_object *o = field_or_err(r, key, &rc);
    if (!o) return rc;
    if (o->type != MSGPACK_OBJECT_MAP)
        return sw_record_errf(r, SW_EFORMAT, "field '%s' is not a map", key);
    *map = o;
    return 0;
}

/* ---- tensors ------------------------------------------------------------------------------ */

/* Exact canonical names only: sw_dtype_parse also accepts aliases ("float32"), which the spec
 * does not, so a stream stays readable by strict readers in other languages. */
static int dtype_from_obj(const msgpack_object *o, enum sw_dtype *out) {
    if (o->type != MSGPACK_OBJECT_STR) return -1;
    for (int d = 0; d < SW_DTYPE_COUNT; d++) {
        const char *name = sw_dtype_name((enum sw_dtype)d);
        if (name && sw_msgpack_str_eq(o, name)) {
            *out = (enum sw_dtype)d;
            return 0;
        }
    }
    return -1;
}

int sw_record_tensor_parse(const struct sw_record *r, const msgpack_object *o, const char *what,
                           struct sw_tensor *t) {
    memset(t, 0, sizeof *t);
    if (o->type != MSGPACK_OBJECT_MAP)
        return sw_record_errf(r, SW_EFORMAT, "tensor '%s' is not a map", what);
    const msgpack_object *dt = sw_msgpack_map_get(o, "dtype");
    const msgpack_object *sh = sw_msgpack_map_get(o, "shape");
    const msgpack_object *da = sw_msgpack_map_get(o, "data");
    const msgpack_object *pad = sw_msgpack_map_get(o, "pad");
    if (!dt || !sh || !da)
        return sw_record_errf(r, SW_EFORMAT, "tensor '%s' lacks '%s'", what,
                              !dt   ? "dtype"
                              : !sh ? "shape"
                                    : "data");
    enum sw_dtype dtype;
    if (dtype_from_obj(dt, &dtype) != 0) {
        if (dt->type == MSGPACK_OBJECT_STR)
            return sw_record_errf(r, SW_EFORMAT, "tensor '%s': unknown dtype '%.*s'", what,
                                  (int)(dt->via.str.size > 32 ? 32 : dt->via.str.size),
                                  dt->via.str.ptr);
        return sw_record_errf(r, SW_EFORMAT, "tensor '%s': dtype is not a string", what);
    }
    if (sh->type != MSGPACK_OBJECT_ARRAY)
        return sw_record_errf(r, SW_EFORMAT, "tensor '%s': shape is not an array", what);
    if (sh->via.array.size > SW_TENSOR_MAX_DIMS)
        return sw_record_errf(r, SW_ERANGE, "tensor '%s': %u dimensions (at most %d)", what,
                              sh->via.array.size, SW_TENSOR_MAX_DIMS);
    if (da->type != MSGPACK_OBJECT_BIN)
        return sw_record_errf(r, SW_EFORMAT, "tensor '%s': data is not bin", what);
    if (pad && pad->type != MSGPACK_OBJECT_BIN && pad->type != MSGPACK_OBJECT_NIL)
        return sw_record_errf(r, SW_EFORMAT, "tensor '%s': pad is not bin", what);
    int64_t shape[SW_TENSOR_MAX_DIMS];
    int ndim = (int)sh->via.array.size;
    for (int i = 0; i < ndim; i++) {
        const msgpack_object *d = &sh->via.array.ptr[i];
        if (d->type != MSGPACK_OBJECT_POSITIVE_INTEGER || d->via.u64 > INT64_MAX)
            return sw_record_errf(r, SW_EFORMAT,
                                  "tensor '%s': shape[%d] is not a non-negative "
                                  "integer",
                                  what, i);
        shape[i] = (int64_t)d->via.u64;
    }
    uint64_t numel;
    /* data is at most 4 GiB, so a real tensor has at most 2^33 elements (Q4); bounding numel
     * first keeps sw_dtype_nbytes from overflowing on a hostile shape. */
    if (sw_shape_numel(ndim, shape, &numel) != 0 || numel > ((uint64_t)1 << 40))
        return sw_record_errf(r, SW_ERANGE, "tensor '%s': its shape has too many elements", what);
    size_t nbytes = sw_dtype_nbytes(dtype, numel);
    if (nbytes != da->via.bin.size)
        return sw_record_errf(r, SW_EFORMAT,
                              "tensor '%s': %s × %llu elements is %zu bytes but "
                              "data holds %u",
                              what, sw_dtype_name(dtype), (unsigned long long)numel, nbytes,
                              da->via.bin.size);
    SW_TRY(sw_tensor_init(t, dtype, ndim, shape, (void *)da->via.bin.ptr));
    return 0;
}

/* Alignment a typed load of dtype needs (Q4/BOOL/bytes: none). */
static size_t dtype_align(enum sw_dtype dt) {
    int bits = sw_dtype_bits(dt);
    return bits >= 8 ? (size_t)bits / 8 : 1;
}

int sw_record_tensor_from(const struct sw_record *r, const msgpack_object *o, const char *what,
                          struct sw_tensor *t) {
    SW_TRY(sw_record_tensor_parse(r, o, what, t));
    size_t nbytes = sw_tensor_nbytes(t);
    if (nbytes && ((uintptr_t)t->data % dtype_align(t->dtype)) != 0) {
        void *copy = sw_scratch_alloc(r->scratch, nbytes);
        if (!copy) return sw_record_errf(r, SW_ENOMEM, "tensor '%s': out of memory", what);
        memcpy(copy, t->data, nbytes);
        t->data = copy;
    }
    return 0;
}

int sw_record_get_tensor(const struct sw_record *r, const char *key, struct sw_tensor *t) {
    int rc;
    const msgpack_object *o = field_or_err(r, key, &rc);
    if (!o) return rc;
    return sw_record_tensor_from(r, o, key, t);
}

size_t sw_record_tensors_len(const struct sw_record *r) {
    const msgpack_object *m = sw_record_field(r, "tensors");
    return m && m->type == MSGPACK_OBJECT_MAP ? m->via.map.size : 0;
}

int sw_record_tensors_at(const struct sw_record *r, size_t i, const char **name, size_t *name_len,
                         struct sw_tensor *t) {
    const msgpack_object *m = sw_record_field(r, "tensors");
    if (!m || m->type != MSGPACK_OBJECT_MAP || i >= m->via.map.size)
        return sw_record_errf(r, SW_ENOTFOUND, "no tensor #%zu in 'tensors'", i);
    const msgpack_object_kv *kv = &m->via.map.ptr[i];
    char what[160];
    snprintf(what, sizeof what, "tensors.%.*s",
             (int)(kv->key.via.str.size > 120 ? 120 : kv->key.via.str.size), kv->key.via.str.ptr);
    SW_TRY(sw_record_tensor_from(r, &kv->val, what, t));
    *name = kv->key.via.str.ptr;
    *name_len = kv->key.via.str.size;
    return 0;
}

int sw_record_errf(const struct sw_record *r, int code, const char *fmt, ...) {
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (r->kind[0])
        return sw_err_set(code, "%s: record %llu (%s) at byte %llu: %s", r->stream,
                          (unsigned long long)r->index, r->kind, (unsigned long long)r->offset,
                          what);
    return sw_err_set(code, "%s: record %llu at byte %llu: %s", r->stream,
                      (unsigned long long)r->index, (unsigned long long)r->offset, what);
}
