/* sw_record_json — a record as JSON (jansson), for sw-pack cat and for debugging.
 *
 * Every map that parses as a tensor ({"dtype","shape","data"} with consistent sizes) is shown
 * as a summary {"dtype","shape","min","max","sum"} (plus "nan": count for floats with NaNs),
 * or with SW_RECORD_JSON_FULL as {"dtype","shape","values": nested arrays like numpy's
 * tolist()}. Values of 32-bit-or-narrower float dtypes are printed as the shortest decimal that
 * reads back to the same float, so 0.1f shows as 0.1 (with a 15-digit dump precision).
 * JSON has no NaN or infinities: they become the strings "NaN", "Infinity", "-Infinity". */
#include "sw_stream_impl.h"

#include "sw_err.h"
#include "sw_sha256.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One element, widened. */
struct elem {
    enum { EL_INT, EL_UINT, EL_FLOAT, EL_BOOL } kind;
    int64_t i;
    uint64_t u;
    double f;
};

/* The double nearest to the shortest decimal that reads back as f (as Python's repr does for
 * floats). Printed with ≥ 9 significant digits it shows exactly that decimal. */
static double shortest_f32(float f) {
    char buf[32];
    if (!isfinite(f)) return f;
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)f);
        if (strtof(buf, NULL) == f) return strtod(buf, NULL);
    }
    return f;
}

static int is_narrow_float(enum sw_dtype dt) {
    return dt == SW_DTYPE_F32 || dt == SW_DTYPE_F16 || dt == SW_DTYPE_BF16 ||
           dt == SW_DTYPE_F8_E4M3 || dt == SW_DTYPE_F8_E5M2;
}

static struct elem elem_at(const struct sw_tensor *t, int64_t i) {
    const uint8_t *p = t->data;
    struct elem e = {.kind = EL_INT};
    switch (t->dtype) {
    case SW_DTYPE_F32: {
        float v;
        memcpy(&v, p + 4 * i, 4);
        e.kind = EL_FLOAT;
        e.f = v;
        break;
    }
    case SW_DTYPE_F64: {
        memcpy(&e.f, p + 8 * i, 8);
        e.kind = EL_FLOAT;
        break;
    }
    case SW_DTYPE_F16:
    case SW_DTYPE_BF16: {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        e.kind = EL_FLOAT;
        e.f = t->dtype == SW_DTYPE_F16 ? sw_f16_to_f32(h) : sw_bf16_to_f32(h);
        break;
    }
    case SW_DTYPE_F8_E4M3:
        e.kind = EL_FLOAT;
        e.f = sw_fp8_e4m3_to_f32(p[i]);
        break;
    case SW_DTYPE_F8_E5M2:
        e.kind = EL_FLOAT;
        e.f = sw_fp8_e5m2_to_f32(p[i]);
        break;
    case SW_DTYPE_I8: e.i = (int8_t)p[i]; break;
    case SW_DTYPE_U8: e.i = p[i]; break;
    case SW_DTYPE_I16: {
        int16_t v;
        memcpy(&v, p + 2 * i, 2);
        e.i = v;
        break;
    }
    case SW_DTYPE_U16: {
        uint16_t v;
        memcpy(&v, p + 2 * i, 2);
        e.i = v;
        break;
    }
    case SW_DTYPE_I32: {
        int32_t v;
        memcpy(&v, p + 4 * i, 4);
        e.i = v;
        break;
    }
    case SW_DTYPE_U32: {
        uint32_t v;
        memcpy(&v, p + 4 * i, 4);
        e.i = v;
        break;
    }
    case SW_DTYPE_I64: memcpy(&e.i, p + 8 * i, 8); break;
    case SW_DTYPE_U64:
        memcpy(&e.u, p + 8 * i, 8);
        e.kind = EL_UINT;
        break;
    case SW_DTYPE_BOOL:
        e.kind = EL_BOOL;
        e.i = p[i] != 0;
        break;
    case SW_DTYPE_Q4: e.i = (p[i / 2] >> (4 * (i & 1))) & 0x0f; break;
    default: break;
    }
    return e;
}

static json_t *json_double(double v, int narrow) {
    if (isnan(v)) return json_string("NaN");
    if (isinf(v)) return json_string(v > 0 ? "Infinity" : "-Infinity");
    return json_real(narrow ? shortest_f32((float)v) : v);
}

static json_t *json_u64(uint64_t v) {
    return v <= (uint64_t)INT64_MAX ? json_integer((json_int_t)v) : json_real((double)v);
}

static json_t *elem_json(const struct elem *e, int narrow) {
    switch (e->kind) {
    case EL_FLOAT: return json_double(e->f, narrow);
    case EL_UINT: return json_u64(e->u);
    case EL_BOOL: return json_boolean(e->i);
    default: return json_integer(e->i);
    }
}

/* Add a new reference under key; a NULL value (ENOMEM) fails the whole conversion. */
static int put(json_t *obj, const char *key, json_t *v) {
    return v && json_object_set_new(obj, key, v) == 0 ? 0 : -1;
}

static int add_stats(json_t *obj, const struct sw_tensor *t, int64_t n) {
    if (n == 0) return 0;
    int narrow = is_narrow_float(t->dtype);
    struct elem first = elem_at(t, 0);
    if (first.kind == EL_FLOAT) {
        double lo = INFINITY, hi = -INFINITY, sum = 0;
        int64_t nan = 0;
        for (int64_t i = 0; i < n; i++) {
            double v = elem_at(t, i).f;
            if (isnan(v)) {
                nan++;
                continue;
            }
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            sum += v;
        }
        if (nan == n) lo = hi = sum = NAN;
        int rc = put(obj, "min", json_double(lo, narrow)) |
                 put(obj, "max", json_double(hi, narrow)) | put(obj, "sum", json_double(sum, 0));
        if (nan) rc |= put(obj, "nan", json_integer(nan));
        return rc;
    }
    if (first.kind == EL_UINT) {
        uint64_t lo = UINT64_MAX, hi = 0;
        unsigned __int128 sum = 0;
        for (int64_t i = 0; i < n; i++) {
            uint64_t v = elem_at(t, i).u;
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            sum += v;
        }
        return put(obj, "min", json_u64(lo)) | put(obj, "max", json_u64(hi)) |
               put(obj, "sum",
                   sum <= INT64_MAX ? json_integer((json_int_t)sum) : json_real((double)sum));
    }
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    __int128 sum = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = elem_at(t, i).i;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        sum += v;
    }
    json_t *s = sum >= INT64_MIN && sum <= INT64_MAX ? json_integer((json_int_t)sum)
                                                     : json_real((double)sum);
    if (first.kind == EL_BOOL)
        return put(obj, "min", json_boolean(lo)) | put(obj, "max", json_boolean(hi)) |
               put(obj, "sum", s);
    return put(obj, "min", json_integer(lo)) | put(obj, "max", json_integer(hi)) |
           put(obj, "sum", s);
}

/* Nested arrays for dimensions dim.. of the elements starting at *at. */
static json_t *values_json(const struct sw_tensor *t, int dim, int64_t *at) {
    int narrow = is_narrow_float(t->dtype);
    if (dim == t->ndim) {
        struct elem e = elem_at(t, (*at)++);
        return elem_json(&e, narrow);
    }
    json_t *a = json_array();
    for (int64_t i = 0; a && i < t->shape[dim]; i++) {
        json_t *v = values_json(t, dim + 1, at);
        if (!v || json_array_append_new(a, v) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *tensor_json(const struct sw_tensor *t, int flags) {
    json_t *obj = json_object(), *shape = json_array();
    int rc = obj && shape ? 0 : -1;
    for (int i = 0; rc == 0 && i < t->ndim; i++)
        rc = json_array_append_new(shape, json_integer(t->shape[i]));
    if (rc == 0) rc = put(obj, "dtype", json_string(sw_dtype_name(t->dtype)));
    if (rc == 0) rc = put(obj, "shape", json_incref(shape));
    if (rc == 0 && (flags & SW_RECORD_JSON_FULL)) {
        int64_t at = 0;
        rc = put(obj, "values", values_json(t, 0, &at));
    } else if (rc == 0) {
        rc = add_stats(obj, t, sw_tensor_numel(t));
    }
    json_decref(shape);
    if (rc != 0) {
        json_decref(obj);
        sw_err_set(SW_ENOMEM, "out of memory converting a tensor to JSON");
        return NULL;
    }
    return obj;
}

static int looks_like_tensor(const msgpack_object *o) {
    const msgpack_object *dt = sw_msgpack_map_get(o, "dtype"), *sh = sw_msgpack_map_get(o, "shape"),
                         *da = sw_msgpack_map_get(o, "data");
    return dt && sh && da && dt->type == MSGPACK_OBJECT_STR && sh->type == MSGPACK_OBJECT_ARRAY &&
           da->type == MSGPACK_OBJECT_BIN;
}

static json_t *bin_json(const msgpack_object_bin *b, int flags) {
    json_t *obj = json_object();
    if (!obj || put(obj, "bytes", json_integer(b->size)) != 0) {
        json_decref(obj);
        return NULL;
    }
    if (flags & SW_RECORD_JSON_FULL) {
        char *hex = malloc(2 * (size_t)b->size + 1);
        if (hex) sw_hex((const uint8_t *)b->ptr, b->size, hex);
        if (!hex || put(obj, "hex", json_string(hex)) != 0) {
            free(hex);
            json_decref(obj);
            return NULL;
        }
        free(hex);
    }
    return obj;
}

static json_t *value_json(const struct sw_record *r, const msgpack_object *o, int flags);

static json_t *map_json(const struct sw_record *r, const msgpack_object *o, int flags) {
    if (looks_like_tensor(o)) {
        struct sw_tensor t;
        if (sw_record_tensor_from(r, o, "(tensor)", &t) == 0) return tensor_json(&t, flags);
        sw_err_clear(); /* not a consistent tensor: show the map as it is */
    }
    json_t *obj = json_object();
    for (uint32_t i = 0; obj && i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        json_t *v = value_json(r, &kv->val, flags);
        if (!v || kv->key.type != MSGPACK_OBJECT_STR ||
            json_object_setn_new(obj, kv->key.via.str.ptr, kv->key.via.str.size, v) != 0) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

static json_t *value_json(const struct sw_record *r, const msgpack_object *o, int flags) {
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return json_null();
    case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return json_u64(o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer(o->via.i64);
    case MSGPACK_OBJECT_FLOAT32: return json_double(o->via.f64, 1);
    case MSGPACK_OBJECT_FLOAT64: return json_double(o->via.f64, 0);
    case MSGPACK_OBJECT_STR: return json_stringn(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN: return bin_json(&o->via.bin, flags);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            json_t *v = value_json(r, &o->via.array.ptr[i], flags);
            if (!v || json_array_append_new(a, v) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: return map_json(r, o, flags);
    default: return NULL;
    }
}

json_t *sw_record_to_json(const struct sw_record *r, int flags) {
    sw_err_clear();
    json_t *j = value_json(r, &r->root, flags);
    if (!j && !sw_err_msg()[0])
        sw_record_errf(r, SW_ENOMEM, "cannot convert the record to JSON (out of memory)");
    return j;
}
