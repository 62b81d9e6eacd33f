/* sw_record_build — the record builder and the msgpack encoder behind it.
 *
 * A builder is a flat list of entries in pre-order (a map or array entry is followed by its
 * children), so encoding is one linear pass and a builder can be reset and refilled without
 * freeing. Keys and strings are copied into one character pool (entries keep offsets, so the
 * pool may move); tensor data stays borrowed and is handed to msgpack_vrefbuffer by reference,
 * so a big tensor is never copied on its way to the file or pipe.
 *
 * Tensor data is placed at a multiple of SW_STREAM_ALIGN bytes from the record's first byte: the
 * encoder knows every byte it emits, so before a tensor map it computes where "data" would land
 * and, when that is misaligned, adds a "pad" bin of 0..15 zero bytes before it. Readers that
 * place records at aligned addresses then get aligned tensor data for free. */
#include "sw_stream_impl.h"

#include "sw_err.h"

#include <stdlib.h>
#include <string.h>

/* Builder nesting limit: a tensor inside the deepest container adds its own map and shape
 * array, and a meta builder is embedded two levels down in the header. */
#define BUILDER_MAX_OPEN (SW_STREAM_MAX_DEPTH - 4)

enum ent_type { E_NIL, E_BOOL, E_INT, E_UINT, E_DOUBLE, E_STR, E_TENSOR, E_MAP, E_ARRAY, E_RAW };

struct ent {
    enum ent_type type;
    int has_key;
    int32_t parent; /* index of the enclosing map/array entry, -1 at the top */
    uint32_t nchild;
    size_t key_off, key_len;
    union {
        int64_t i;
        uint64_t u;
        double d;
        struct {
            size_t off, len;
        } s; /* E_STR, E_RAW: bytes in the pool */
        struct {
            const void *data;
            size_t nbytes;
            enum sw_dtype dtype;
            int ndim;
            int64_t shape[SW_TENSOR_MAX_DIMS];
        } t;
    } v;
};

struct sw_record_builder {
    struct ent *ents;
    size_t n, cap;
    char *pool;
    size_t npool, pool_cap;
    int32_t open[BUILDER_MAX_OPEN];
    int depth;
    uint32_t ntop;
    char kind[64];
};

/* ---- encoder ------------------------------------------------------------------------------ */

static int enc_write(void *data, const char *buf, size_t len) {
    struct sw_enc *e = data;
    e->off += len;
    return msgpack_vrefbuffer_write(&e->vbuf, buf, len);
}

int sw_enc_init(struct sw_enc *e) {
    memset(e, 0, sizeof *e);
    /* Pieces of 256 bytes and up (tensor data, long strings) are referenced, not copied. */
    if (!msgpack_vrefbuffer_init(&e->vbuf, 256, 64 * 1024))
        return sw_err_set(SW_ENOMEM, "out of memory for a record encoder");
    msgpack_packer_init(&e->pk, e, enc_write);
    return 0;
}

void sw_enc_release(struct sw_enc *e) {
    if (!e) return;
    msgpack_vrefbuffer_destroy(&e->vbuf);
    memset(e, 0, sizeof *e);
}

void sw_enc_clear(struct sw_enc *e) {
    msgpack_vrefbuffer_clear(&e->vbuf);
    e->off = 0;
}

int sw_enc_flatten(const struct sw_enc *e, void **out, size_t *len) {
    const struct iovec *v = msgpack_vrefbuffer_vec(&e->vbuf);
    size_t n = msgpack_vrefbuffer_veclen(&e->vbuf), total = 0;
    for (size_t i = 0; i < n; i++)
        total += v[i].iov_len;
    char *p = malloc(total ? total : 1);
    if (!p) return sw_err_set(SW_ENOMEM, "out of memory for a record of %zu bytes", total);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(p + at, v[i].iov_base, v[i].iov_len);
        at += v[i].iov_len;
    }
    *out = p;
    *len = total;
    return 0;
}

/* Encoded sizes, matching msgpack-c's choice of the shortest form. */
static size_t mp_uint_size(uint64_t v) {
    return v < 128 ? 1 : v < 256 ? 2 : v < 65536 ? 3 : v <= 0xffffffffu ? 5 : 9;
}
static size_t mp_str_size(size_t n) {
    return n + (n < 32 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5);
}
static size_t mp_bin_hdr(size_t n) {
    return n < 256 ? 2 : n < 65536 ? 3 : 5;
}

static int pack_cstr(msgpack_packer *pk, const char *s) {
    size_t n = strlen(s);
    if (msgpack_pack_str(pk, n) != 0) return -1;
    return msgpack_pack_str_body(pk, s, n);
}

int sw_enc_tensor(struct sw_enc *e, enum sw_dtype dtype, int ndim, const int64_t *shape,
                  const void *data, size_t nbytes) {
    static const char zeros[SW_STREAM_ALIGN];
    const char *name = sw_dtype_name(dtype);
    size_t prefix = 1 + mp_str_size(5) + mp_str_size(strlen(name)) + mp_str_size(5) + 1;
    for (int i = 0; i < ndim; i++)
        prefix += mp_uint_size((uint64_t)shape[i]);
    size_t data_at = e->off + prefix + mp_str_size(4) + mp_bin_hdr(nbytes);
    size_t padlen = 0;
    int use_pad = nbytes > 0 && data_at % SW_STREAM_ALIGN != 0;
    if (use_pad) {
        size_t base = data_at + mp_str_size(3) + 2; /* "pad" key and its bin8 header */
        padlen = (SW_STREAM_ALIGN - base % SW_STREAM_ALIGN) % SW_STREAM_ALIGN;
    }
    msgpack_packer *pk = &e->pk;
    int bad = msgpack_pack_map(pk, use_pad ? 4 : 3) || pack_cstr(pk, "dtype") ||
              pack_cstr(pk, name) || pack_cstr(pk, "shape") || msgpack_pack_array(pk, (size_t)ndim);
    for (int i = 0; i < ndim && !bad; i++)
        bad = msgpack_pack_uint64(pk, (uint64_t)shape[i]);
    if (use_pad && !bad)
        bad = pack_cstr(pk, "pad") || msgpack_pack_bin(pk, padlen) ||
              msgpack_pack_bin_body(pk, zeros, padlen);
    if (!bad) bad = pack_cstr(pk, "data") || msgpack_pack_bin(pk, nbytes);
    if (!bad) {
        SW_ASSERT(nbytes == 0 || e->off % SW_STREAM_ALIGN == 0);
        bad = msgpack_pack_bin_body(pk, data, nbytes);
    }
    return bad ? sw_err_set(SW_ENOMEM, "out of memory encoding a tensor") : 0;
}

/* ---- builder ------------------------------------------------------------------------------ */

struct sw_record_builder *sw_record_builder_new(const char *kind) {
    struct sw_record_builder *b = calloc(1, sizeof *b);
    if (!b) {
        sw_err_set(SW_ENOMEM, "out of memory for a record builder");
        return NULL;
    }
    if (sw_record_builder_reset(b, kind) != 0) {
        sw_record_builder_free(b);
        return NULL;
    }
    return b;
}

void sw_record_builder_free(struct sw_record_builder *b) {
    if (!b) return;
    free(b->ents);
    free(b->pool);
    free(b);
}

const char *sw_record_builder_kind(const struct sw_record_builder *b) {
    return b->kind;
}
uint32_t sw_record_builder_nfields(const struct sw_record_builder *b) {
    return b->ntop;
}

static int pool_add(struct sw_record_builder *b, const void *s, size_t len, size_t *off) {
    if (len > b->pool_cap - b->npool) {
        size_t cap = b->pool_cap ? b->pool_cap : 1024;
        while (cap - b->npool < len) {
            if (cap > SIZE_MAX / 2) return sw_err_set(SW_ENOMEM, "record builder: too large");
            cap *= 2;
        }
        char *p = realloc(b->pool, cap);
        if (!p) return sw_err_set(SW_ENOMEM, "out of memory in a record builder");
        b->pool = p;
        b->pool_cap = cap;
    }
    if (len) memcpy(b->pool + b->npool, s, len);
    *off = b->npool;
    b->npool += len;
    return 0;
}

int sw_record_builder_reset(struct sw_record_builder *b, const char *kind) {
    b->n = 0;
    b->npool = 0;
    b->depth = 0;
    b->ntop = 0;
    b->kind[0] = '\0';
    if (!kind) return 0;
    if (strlen(kind) >= sizeof b->kind || !kind[0] || !sw_utf8_valid(kind, strlen(kind)))
        return sw_err_set(SW_EINVAL, "record kind '%.64s' is empty, too long or not UTF-8", kind);
    strcpy(b->kind, kind);
    return sw_record_put_str(b, "kind", kind);
}

/* Append an entry under the innermost open container after checking the key. */
static struct ent *add(struct sw_record_builder *b, const char *key, enum ent_type type, int *rc) {
    int32_t parent = b->depth ? b->open[b->depth - 1] : -1;
    int in_map = parent < 0 || b->ents[parent].type == E_MAP;
    *rc = 0;
    if (in_map && !key) {
        *rc = sw_err_set(SW_EINVAL, "record builder: a map entry needs a key");
        return NULL;
    }
    if (!in_map && key) {
        *rc = sw_err_set(SW_EINVAL, "record builder: array element given a key ('%.64s')", key);
        return NULL;
    }
    size_t klen = key ? strlen(key) : 0;
    if (key && !sw_utf8_valid(key, klen)) {
        *rc = sw_err_set(SW_EINVAL, "record builder: key is not valid UTF-8");
        return NULL;
    }
    if (key) /* linear: builders hold tens of fields, weight sets a few thousand */
        for (size_t i = (size_t)(parent + 1); i < b->n; i++)
            if (b->ents[i].parent == parent && b->ents[i].key_len == klen &&
                memcmp(b->pool + b->ents[i].key_off, key, klen) == 0) {
                *rc = sw_err_set(SW_EINVAL, "record builder: duplicate key '%.64s'", key);
                return NULL;
            }
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 32;
        struct ent *p = realloc(b->ents, cap * sizeof *p);
        if (!p) {
            *rc = sw_err_set(SW_ENOMEM, "out of memory in a record builder");
            return NULL;
        }
        b->ents = p;
        b->cap = cap;
    }
    struct ent *e = &b->ents[b->n];
    memset(e, 0, sizeof *e);
    if (key && (*rc = pool_add(b, key, klen, &e->key_off)) != 0) return NULL;
    e->type = type;
    e->has_key = key != NULL;
    e->key_len = klen;
    e->parent = parent;
    b->n++;
    if (parent < 0)
        b->ntop++;
    else
        b->ents[parent].nchild++;
    return e;
}

#define PUT(b, key, type, assign)                                                                  \
    do {                                                                                           \
        int rc_;                                                                                   \
        struct ent *e_ = add(b, key, type, &rc_);                                                  \
        if (!e_) return rc_;                                                                       \
        assign;                                                                                    \
        return 0;                                                                                  \
    } while (0)

int sw_record_put_nil(struct sw_record_builder *b, const char *key) {
    PUT(b, key, E_NIL, (void)0);
}
int sw_record_put_bool(struct sw_record_builder *b, const char *key, int v) {
    PUT(b, key, E_BOOL, e_->v.i = v != 0);
}
int sw_record_put_int(struct sw_record_builder *b, const char *key, int64_t v) {
    PUT(b, key, E_INT, e_->v.i = v);
}
int sw_record_put_uint(struct sw_record_builder *b, const char *key, uint64_t v) {
    PUT(b, key, E_UINT, e_->v.u = v);
}
int sw_record_put_double(struct sw_record_builder *b, const char *key, double v) {
    PUT(b, key, E_DOUBLE, e_->v.d = v);
}

int sw_record_put_strn(struct sw_record_builder *b, const char *key, const char *s, size_t len) {
    if (len > UINT32_MAX || !sw_utf8_valid(s, len))
        return sw_err_set(SW_EINVAL, "record builder: value of '%.64s' is not a valid UTF-8 string",
                          key ? key : "(array element)");
    size_t off;
    SW_TRY(pool_add(b, s, len, &off));
    PUT(b, key, E_STR, (e_->v.s.off = off, e_->v.s.len = len));
}

int sw_record_put_str(struct sw_record_builder *b, const char *key, const char *s) {
    return sw_record_put_strn(b, key, s, strlen(s));
}

int sw_record_put_tensor(struct sw_record_builder *b, const char *key, const struct sw_tensor *t) {
    const char *what = key ? key : "(array element)";
    if ((unsigned)t->dtype >= SW_DTYPE_COUNT || t->ndim < 0 || t->ndim > SW_TENSOR_MAX_DIMS)
        return sw_err_set(SW_EINVAL, "record builder: tensor '%.64s' has a bad dtype or rank",
                          what);
    if (t->device != SW_DEVICE_CPU)
        return sw_err_set(SW_EINVAL, "record builder: tensor '%.64s' is not in CPU memory", what);
    if (!sw_tensor_is_contiguous(t))
        return sw_err_set(SW_EINVAL, "record builder: tensor '%.64s' is not contiguous", what);
    uint64_t numel;
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] < 0)
            return sw_err_set(SW_EINVAL, "record builder: tensor '%.64s' has a negative dimension",
                              what);
    if (sw_shape_numel(t->ndim, t->shape, &numel) != 0 || numel > ((uint64_t)1 << 40))
        return sw_err_set(SW_EINVAL, "record builder: tensor '%.64s' is too large", what);
    size_t nbytes = sw_dtype_nbytes(t->dtype, numel);
    if (nbytes > UINT32_MAX) /* msgpack bin32 */
        return sw_err_set(SW_EINVAL,
                          "record builder: tensor '%.64s' has %zu bytes (at most "
                          "4 GiB per tensor)",
                          what, nbytes);
    if (nbytes && !t->data)
        return sw_err_set(SW_EINVAL, "record builder: tensor '%.64s' has no data", what);
    PUT(b, key, E_TENSOR, ({
            e_->v.t.data = t->data;
            e_->v.t.nbytes = nbytes;
            e_->v.t.dtype = t->dtype;
            e_->v.t.ndim = t->ndim;
            memcpy(e_->v.t.shape, t->shape, sizeof e_->v.t.shape);
        }));
}

int sw_record_put_i32(struct sw_record_builder *b, const char *key, const int32_t *v, int64_t n) {
    struct sw_tensor t;
    SW_TRY(sw_tensor_init(&t, SW_DTYPE_I32, 1, &n, (void *)v));
    return sw_record_put_tensor(b, key, &t);
}

/* Values a reader would accept: no ext, string keys, UTF-8, bounded depth. */
static int object_ok(const msgpack_object *o, int levels_left) {
    switch (o->type) {
    case MSGPACK_OBJECT_EXT: return 0;
    case MSGPACK_OBJECT_STR: return sw_utf8_valid(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_ARRAY:
        if (levels_left <= 0) return 0;
        for (uint32_t i = 0; i < o->via.array.size; i++)
            if (!object_ok(&o->via.array.ptr[i], levels_left - 1)) return 0;
        return 1;
    case MSGPACK_OBJECT_MAP:
        if (levels_left <= 0) return 0;
        for (uint32_t i = 0; i < o->via.map.size; i++)
            if (o->via.map.ptr[i].key.type != MSGPACK_OBJECT_STR ||
                !object_ok(&o->via.map.ptr[i].key, 0) ||
                !object_ok(&o->via.map.ptr[i].val, levels_left - 1))
                return 0;
        return 1;
    default: return 1;
    }
}

int sw_record_put_object(struct sw_record_builder *b, const char *key, const msgpack_object *o) {
    if (!object_ok(o, BUILDER_MAX_OPEN - b->depth))
        return sw_err_set(SW_EINVAL,
                          "record builder: value of '%.64s' is not valid in a record "
                          "(ext type, non-string key, bad UTF-8 or nested too deeply)",
                          key ? key : "(array element)");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    size_t off = 0;
    int rc = msgpack_pack_object(&pk, *o) != 0
                 ? sw_err_set(SW_ENOMEM, "out of memory copying a msgpack value")
                 : pool_add(b, sb.data, sb.size, &off);
    size_t len = sb.size;
    msgpack_sbuffer_destroy(&sb);
    SW_TRY(rc);
    PUT(b, key, E_RAW, (e_->v.s.off = off, e_->v.s.len = len));
}

static int open_container(struct sw_record_builder *b, const char *key, enum ent_type type) {
    if (b->depth == BUILDER_MAX_OPEN)
        return sw_err_set(SW_EINVAL, "record builder: more than %d nested maps/arrays",
                          BUILDER_MAX_OPEN);
    int rc;
    if (!add(b, key, type, &rc)) return rc;
    b->open[b->depth++] = (int32_t)(b->n - 1);
    return 0;
}

int sw_record_put_map_begin(struct sw_record_builder *b, const char *key) {
    return open_container(b, key, E_MAP);
}
int sw_record_put_array_begin(struct sw_record_builder *b, const char *key) {
    return open_container(b, key, E_ARRAY);
}
int sw_record_put_end(struct sw_record_builder *b) {
    if (b->depth == 0) return sw_err_set(SW_ESTATE, "record builder: put_end without an open map");
    b->depth--;
    return 0;
}

/* ---- encoding ----------------------------------------------------------------------------- */

static int pack_ent(const struct sw_record_builder *b, const struct ent *x, struct sw_enc *e) {
    msgpack_packer *pk = &e->pk;
    if (x->has_key && (msgpack_pack_str(pk, x->key_len) ||
                       msgpack_pack_str_body(pk, b->pool + x->key_off, x->key_len)))
        return -1;
    switch (x->type) {
    case E_NIL: return msgpack_pack_nil(pk);
    case E_BOOL: return x->v.i ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    case E_INT: return msgpack_pack_int64(pk, x->v.i);
    case E_UINT: return msgpack_pack_uint64(pk, x->v.u);
    case E_DOUBLE: return msgpack_pack_double(pk, x->v.d);
    case E_STR:
        return msgpack_pack_str(pk, x->v.s.len) ||
               msgpack_pack_str_body(pk, b->pool + x->v.s.off, x->v.s.len);
    case E_RAW: return pk->callback(pk->data, b->pool + x->v.s.off, x->v.s.len) != 0;
    case E_MAP: return msgpack_pack_map(pk, x->nchild);
    case E_ARRAY: return msgpack_pack_array(pk, x->nchild);
    case E_TENSOR:
        return sw_enc_tensor(e, x->v.t.dtype, x->v.t.ndim, x->v.t.shape, x->v.t.data,
                             x->v.t.nbytes) != 0;
    }
    return -1;
}

int sw_record_builder_pack(const struct sw_record_builder *b, struct sw_enc *e, int as_map) {
    if (b->depth)
        return sw_err_set(SW_ESTATE, "record builder: %d nested map/array not closed", b->depth);
    if (as_map && msgpack_pack_map(&e->pk, b->ntop) != 0)
        return sw_err_set(SW_ENOMEM, "out of memory encoding a record");
    for (size_t i = 0; i < b->n; i++)
        if (pack_ent(b, &b->ents[i], e) != 0)
            return sw_err_set(SW_ENOMEM, "out of memory encoding a record");
    return 0;
}

int sw_record_builder_encode(const struct sw_record_builder *b, void **out, size_t *len) {
    struct sw_enc e;
    SW_TRY(sw_enc_init(&e));
    int rc = sw_record_builder_pack(b, &e, 1);
    if (rc == 0) rc = sw_enc_flatten(&e, out, len);
    sw_enc_release(&e);
    return rc;
}
