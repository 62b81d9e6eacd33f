/* sw_safetensors — the validating safetensors reader (one file, mapped or in memory).
 *
 * Nothing in the file is trusted: the 8-byte header length is bounded by SW_ST_MAX_HEADER and by
 * the file, the header must be a JSON object (duplicate keys rejected by jansson), every tensor
 * entry must carry a known dtype, a shape of at most SW_TENSOR_MAX_DIMS integer dimensions in
 * [0, 2^53] and integer data_offsets [begin, end] with begin <= end, the byte count implied by
 * dtype × shape (overflow-checked) must equal end - begin, and — as in the Rust reference —
 * the spans sorted by offset must tile the data section exactly: no overlap, no gap, nothing
 * left over. Only after all of that does a caller get pointers into the data.
 *
 * Error codes: SW_ETRUNC when the file is shorter than the header says (a truncated download),
 * SW_EUNSUPPORTED for valid safetensors sw cannot represent (more than 8 dimensions, newer
 * dtypes such as F8_E8M0 or C64), SW_EFORMAT for everything malformed. Every message starts with
 * the file name and names the tensor or field at fault. */
#include "sw_safetensors.h"

#include "sw_err.h"
#include "sw_io.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ST_MAX_INT ((int64_t)1 << 53) /* JSON numbers past 2^53 lose precision elsewhere */

struct sw_st_file {
    char *path;         /* name used in messages and returned by sw_st_path */
    struct sw_mmap map; /* set when opened from a path */
    int mapped;
    const uint8_t *data; /* data section start */
    size_t data_len;
    struct sw_st_entry *entries; /* data-offset order */
    int n;
    int *by_name;                  /* entry indices sorted by name, for sw_st_find */
    char **meta_keys, **meta_vals; /* sorted by key */
    int n_meta;
};

/* ---- dtype names ------------------------------------------------------------------------ */

static const struct {
    const char *name;
    enum sw_dtype dt;
    unsigned size;
} st_dtypes[] = {
    {"BOOL", SW_DTYPE_BOOL, 1},       {"U8", SW_DTYPE_U8, 1},           {"I8", SW_DTYPE_I8, 1},
    {"F8_E5M2", SW_DTYPE_F8_E5M2, 1}, {"F8_E4M3", SW_DTYPE_F8_E4M3, 1}, {"I16", SW_DTYPE_I16, 2},
    {"U16", SW_DTYPE_U16, 2},         {"F16", SW_DTYPE_F16, 2},         {"BF16", SW_DTYPE_BF16, 2},
    {"I32", SW_DTYPE_I32, 4},         {"U32", SW_DTYPE_U32, 4},         {"F32", SW_DTYPE_F32, 4},
    {"F64", SW_DTYPE_F64, 8},         {"I64", SW_DTYPE_I64, 8},         {"U64", SW_DTYPE_U64, 8},
};
#define ST_NDTYPES (sizeof st_dtypes / sizeof st_dtypes[0])

/* Names newer versions of the format define that sw has no type for: reported as unsupported
 * rather than malformed, so the user knows the file itself is fine. */
static const char *const st_dtypes_unsupported[] = {
    "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64", "C128", "F8_E4M3FNUZ", "F8_E5M2FNUZ", NULL,
};

const char *sw_st_dtype_name(enum sw_dtype dt) {
    for (size_t i = 0; i < ST_NDTYPES; i++)
        if (st_dtypes[i].dt == dt) return st_dtypes[i].name;
    return NULL;
}

int sw_st_dtype_parse(const char *name, enum sw_dtype *out) {
    for (size_t i = 0; i < ST_NDTYPES; i++) {
        if (strcmp(st_dtypes[i].name, name) == 0) {
            *out = st_dtypes[i].dt;
            return 0;
        }
    }
    for (int i = 0; st_dtypes_unsupported[i]; i++)
        if (strcmp(st_dtypes_unsupported[i], name) == 0) return SW_EUNSUPPORTED;
    return SW_EFORMAT;
}

size_t sw_st_dtype_size(enum sw_dtype dt) {
    for (size_t i = 0; i < ST_NDTYPES; i++)
        if (st_dtypes[i].dt == dt) return st_dtypes[i].size;
    return 0;
}

/* ---- message helpers ------------------------------------------------------------------- */

/* Tensor names come from the file: clip them and replace control bytes so that an error stays
 * one readable line whatever the file holds. */
static const char *clean(const char *s, char *buf, size_t cap) {
    size_t i = 0, j = 0;
    for (; s[i] && j + 4 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[j++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (s[i]) {
        memcpy(buf + j, "...", 3);
        j += 3;
    }
    buf[j] = '\0';
    return buf;
}

static void shape_str(int ndim, const int64_t *shape, char *buf, size_t cap) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "[");
    for (int i = 0; i < ndim && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

static const char *json_kind(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number with a fraction or exponent";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a JSON value";
}

/* ---- header parsing --------------------------------------------------------------------- */

/* A JSON integer in [0, 2^53]. what names the field for the message. */
static int get_uint(const json_t *v, const char *file, const char *tname, const char *what,
                    uint64_t *out) {
    char nb[256];
    if (!json_is_integer(v))
        return sw_err_set(SW_EFORMAT, "%s: tensor '%s': %s is %s, not a non-negative integer", file,
                          clean(tname, nb, sizeof nb), what, json_kind(v));
    json_int_t x = json_integer_value(v);
    if (x < 0 || x > ST_MAX_INT)
        return sw_err_set(SW_EFORMAT, "%s: tensor '%s': %s is %lld, outside [0, 2^53]", file,
                          clean(tname, nb, sizeof nb), what, (long long)x);
    *out = (uint64_t)x;
    return 0;
}

static int parse_entry(const char *file, const char *tname, const json_t *v,
                       struct sw_st_entry *e) {
    char nb[256];
    const char *cn = clean(tname, nb, sizeof nb);
    if (!json_is_object(v))
        return sw_err_set(SW_EFORMAT, "%s: tensor '%s': entry is %s, not an object", file, cn,
                          json_kind(v));
    const json_t *jd = json_object_get(v, "dtype");
    const json_t *js = json_object_get(v, "shape");
    const json_t *jo = json_object_get(v, "data_offsets");
    if (!jd || !js || !jo)
        return sw_err_set(SW_EFORMAT, "%s: tensor '%s': missing \"%s\"", file, cn,
                          !jd   ? "dtype"
                          : !js ? "shape"
                                : "data_offsets");
    if (!json_is_string(jd))
        return sw_err_set(SW_EFORMAT, "%s: tensor '%s': dtype is %s, not a string", file, cn,
                          json_kind(jd));
    char db[64];
    int rc = sw_st_dtype_parse(json_string_value(jd), &e->dtype);
    if (rc == SW_EUNSUPPORTED)
        return sw_err_set(rc, "%s: tensor '%s': dtype %s is not supported by sw", file, cn,
                          clean(json_string_value(jd), db, sizeof db));
    if (rc < 0)
        return sw_err_set(rc, "%s: tensor '%s': unknown dtype '%s'", file, cn,
                          clean(json_string_value(jd), db, sizeof db));
    if (!json_is_array(js))
        return sw_err_set(SW_EFORMAT, "%s: tensor '%s': shape is %s, not an array", file, cn,
                          json_kind(js));
    size_t nd = json_array_size(js);
    if (nd > SW_TENSOR_MAX_DIMS)
        return sw_err_set(SW_EUNSUPPORTED,
                          "%s: tensor '%s': %zu dimensions (sw supports at most %d)", file, cn, nd,
                          SW_TENSOR_MAX_DIMS);
    e->ndim = (int)nd;
    uint64_t numel = 1;
    int overflow = 0;
    for (size_t i = 0; i < nd; i++) {
        char what[32];
        uint64_t d;
        snprintf(what, sizeof what, "shape[%zu]", i);
        SW_TRY(get_uint(json_array_get(js, i), file, tname, what, &d));
        e->shape[i] = (int64_t)d;
        if (__builtin_mul_overflow(numel, d, &numel)) overflow = 1;
    }
    /* A zero dimension makes the tensor empty whatever the others multiply to. */
    for (size_t i = 0; i < nd; i++)
        if (e->shape[i] == 0) overflow = 0, numel = 0;
    uint64_t need = 0;
    char sb[256];
    if (overflow || __builtin_mul_overflow(numel, (uint64_t)sw_st_dtype_size(e->dtype), &need)) {
        shape_str(e->ndim, e->shape, sb, sizeof sb);
        return sw_err_set(SW_EFORMAT, "%s: tensor '%s': %s %s is too large (size overflows)", file,
                          cn, sw_st_dtype_name(e->dtype), sb);
    }
    if (!json_is_array(jo) || json_array_size(jo) != 2)
        return sw_err_set(SW_EFORMAT, "%s: tensor '%s': data_offsets is %s, not [begin, end]", file,
                          cn, json_is_array(jo) ? "an array of the wrong length" : json_kind(jo));
    SW_TRY(get_uint(json_array_get(jo, 0), file, tname, "data_offsets[0]", &e->begin));
    SW_TRY(get_uint(json_array_get(jo, 1), file, tname, "data_offsets[1]", &e->end));
    if (e->begin > e->end)
        return sw_err_set(SW_EFORMAT,
                          "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin", file,
                          cn, (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end - e->begin != need) {
        shape_str(e->ndim, e->shape, sb, sizeof sb);
        return sw_err_set(
            SW_EFORMAT,
            "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but %s %s needs %llu", file,
            cn, (unsigned long long)e->begin, (unsigned long long)e->end,
            (unsigned long long)(e->end - e->begin), sw_st_dtype_name(e->dtype), sb,
            (unsigned long long)need);
    }
    e->nbytes = (size_t)need;
    e->name = strdup(tname);
    return e->name ? 0 : sw_err_set(SW_ENOMEM, "%s: out of memory", file);
}

static int parse_metadata(struct sw_st_file *f, const json_t *v) {
    char nb[256];
    if (json_is_null(v)) return 0; /* the reference accepts "__metadata__": null */
    if (!json_is_object(v))
        return sw_err_set(SW_EFORMAT, "%s: __metadata__ is %s, not an object of strings", f->path,
                          json_kind(v));
    size_t n = json_object_size(v);
    f->meta_keys = calloc(n + 1, sizeof *f->meta_keys);
    f->meta_vals = calloc(n + 1, sizeof *f->meta_vals);
    if (!f->meta_keys || !f->meta_vals) return sw_err_set(SW_ENOMEM, "%s: out of memory", f->path);
    const char *k;
    const json_t *x;
    json_object_foreach((json_t *)v, k, x) {
        if (!json_is_string(x))
            return sw_err_set(SW_EFORMAT, "%s: __metadata__ '%s' is %s, not a string", f->path,
                              clean(k, nb, sizeof nb), json_kind(x));
        f->meta_keys[f->n_meta] = strdup(k);
        f->meta_vals[f->n_meta] = strdup(json_string_value(x));
        f->n_meta++;
        if (!f->meta_keys[f->n_meta - 1] || !f->meta_vals[f->n_meta - 1])
            return sw_err_set(SW_ENOMEM, "%s: out of memory", f->path);
    }
    /* Sort pairs by key (insertion sort: metadata maps are small). */
    for (int i = 1; i < f->n_meta; i++) {
        char *ki = f->meta_keys[i], *vi = f->meta_vals[i];
        int j = i - 1;
        for (; j >= 0 && strcmp(f->meta_keys[j], ki) > 0; j--) {
            f->meta_keys[j + 1] = f->meta_keys[j];
            f->meta_vals[j + 1] = f->meta_vals[j];
        }
        f->meta_keys[j + 1] = ki;
        f->meta_vals[j + 1] = vi;
    }
    return 0;
}

static int cmp_offset(const void *a, const void *b) {
    const struct sw_st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_name_idx(const void *a, const void *b, void *ctx) {
    const struct sw_st_entry *base = ctx;
    return strcmp(base[*(const int *)a].name, base[*(const int *)b].name);
}

/* The spans, sorted, must tile [0, data_len) exactly (the reference's rule). */
static int check_layout(const struct sw_st_file *f) {
    char nb[256], pb[256];
    uint64_t cursor = 0;
    const struct sw_st_entry *prev = NULL;
    for (int i = 0; i < f->n; i++) {
        const struct sw_st_entry *e = &f->entries[i];
        if (e->end > f->data_len)
            return sw_err_set(SW_ETRUNC,
                              "%s: tensor '%s': data_offsets [%llu, %llu] extend past the end of "
                              "the %zu-byte data section (truncated file?)",
                              f->path, clean(e->name, nb, sizeof nb), (unsigned long long)e->begin,
                              (unsigned long long)e->end, f->data_len);
    }
    for (int i = 0; i < f->n; i++) {
        const struct sw_st_entry *e = &f->entries[i];
        if (e->begin < cursor)
            return sw_err_set(
                SW_EFORMAT,
                "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s' [%llu, %llu]",
                f->path, clean(e->name, nb, sizeof nb), (unsigned long long)e->begin,
                (unsigned long long)e->end, clean(prev->name, pb, sizeof pb),
                (unsigned long long)prev->begin, (unsigned long long)prev->end);
        if (e->begin > cursor)
            return sw_err_set(
                SW_EFORMAT,
                "%s: tensor '%s': data_offsets [%llu, %llu] leave a gap of %llu bytes after offset "
                "%llu (spans must cover the data section contiguously)",
                f->path, clean(e->name, nb, sizeof nb), (unsigned long long)e->begin,
                (unsigned long long)e->end, (unsigned long long)(e->begin - cursor),
                (unsigned long long)cursor);
        cursor = e->end;
        prev = e;
    }
    if (cursor != f->data_len)
        return sw_err_set(SW_EFORMAT,
                          "%s: %llu bytes at the end of the data section (offset %llu of %zu) "
                          "belong to no tensor",
                          f->path, (unsigned long long)(f->data_len - cursor),
                          (unsigned long long)cursor, f->data_len);
    return 0;
}

static int parse_header(struct sw_st_file *f, const uint8_t *buf, size_t len) {
    if (len < 8)
        return sw_err_set(SW_ETRUNC, "%s: %zu bytes, shorter than the 8-byte header length",
                          f->path, len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | buf[i];
    if (hlen > SW_ST_MAX_HEADER)
        return sw_err_set(SW_EFORMAT, "%s: header length %llu exceeds the limit of %u bytes",
                          f->path, (unsigned long long)hlen, SW_ST_MAX_HEADER);
    if (hlen > len - 8)
        return sw_err_set(SW_ETRUNC,
                          "%s: header length %llu but only %zu bytes follow (truncated file?)",
                          f->path, (unsigned long long)hlen, len - 8);
    if (hlen == 0 || buf[8] != '{')
        return sw_err_set(SW_EFORMAT,
                          "%s: header does not start with '{' (not a safetensors file?)", f->path);
    f->data = buf + 8 + hlen;
    f->data_len = len - 8 - (size_t)hlen;

    json_error_t jerr;
    json_t *root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return sw_err_set(SW_EFORMAT, "%s: header JSON: %s (header byte %d)", f->path, jerr.text,
                          jerr.position);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = sw_err_set(SW_EFORMAT, "%s: header is %s, not an object", f->path, json_kind(root));
        goto out;
    }
    size_t n = json_object_size(root);
    f->entries = calloc(n + 1, sizeof *f->entries);
    if (!f->entries) {
        rc = sw_err_set(SW_ENOMEM, "%s: out of memory for %zu header entries", f->path, n);
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            SW_TRY_GOTO(rc, parse_metadata(f, v), out);
            continue;
        }
        SW_TRY_GOTO(rc, parse_entry(f->path, key, v, &f->entries[f->n]), out);
        f->n++;
    }
    qsort(f->entries, (size_t)f->n, sizeof *f->entries, cmp_offset);
    SW_TRY_GOTO(rc, check_layout(f), out);
    for (int i = 0; i < f->n; i++)
        f->entries[i].data = f->data + f->entries[i].begin;
    f->by_name = malloc(((size_t)f->n + 1) * sizeof *f->by_name);
    if (!f->by_name) {
        rc = sw_err_set(SW_ENOMEM, "%s: out of memory", f->path);
        goto out;
    }
    for (int i = 0; i < f->n; i++)
        f->by_name[i] = i;
    qsort_r(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_name_idx, f->entries);
out:
    json_decref(root);
    return rc;
}

static int file_new(const char *name, struct sw_st_file **out) {
    struct sw_st_file *f = calloc(1, sizeof *f);
    if (f) f->path = strdup(name ? name : "<memory>");
    if (!f || !f->path) {
        free(f);
        return sw_err_set(SW_ENOMEM, "%s: out of memory", name ? name : "<memory>");
    }
    *out = f;
    return 0;
}

int sw_st_open_mem(const void *buf, size_t len, const char *name, struct sw_st_file **out) {
    *out = NULL;
    struct sw_st_file *f;
    SW_TRY(file_new(name, &f));
    int rc = parse_header(f, buf, len);
    if (rc < 0) {
        sw_st_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

int sw_st_open(const char *path, struct sw_st_file **out) {
    *out = NULL;
    struct sw_st_file *f;
    SW_TRY(file_new(path, &f));
    int rc = sw_path_is_dir(path);
    if (rc == 1) rc = sw_err_set(SW_EINVAL, "%s: is a folder, not a .safetensors file", path);
    if (rc == 0) rc = sw_mmap_open(&f->map, path);
    if (rc == 0) {
        f->mapped = 1;
        rc = parse_header(f, f->map.data, f->map.len);
    }
    if (rc < 0) {
        sw_st_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

void sw_st_close(struct sw_st_file *f) {
    if (!f) return;
    for (int i = 0; f->entries && i < f->n; i++)
        free((char *)f->entries[i].name);
    free(f->entries);
    free(f->by_name);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_vals[i]);
    }
    free(f->meta_keys);
    free(f->meta_vals);
    if (f->mapped) sw_mmap_close(&f->map);
    free(f->path);
    free(f);
}

int sw_st_count(const struct sw_st_file *f) {
    return f ? f->n : 0;
}

const struct sw_st_entry *sw_st_get(const struct sw_st_file *f, int i) {
    return f && i >= 0 && i < f->n ? &f->entries[i] : NULL;
}

const struct sw_st_entry *sw_st_find(const struct sw_st_file *f, const char *name) {
    if (!f || !name) return NULL;
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const struct sw_st_entry *e = &f->entries[f->by_name[mid]];
        int c = strcmp(e->name, name);
        if (c == 0) return e;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

const char *sw_st_metadata(const struct sw_st_file *f, const char *key) {
    for (int i = 0; f && key && i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_vals[i];
    return NULL;
}

int sw_st_metadata_count(const struct sw_st_file *f) {
    return f ? f->n_meta : 0;
}

int sw_st_metadata_get(const struct sw_st_file *f, int i, const char **key, const char **value) {
    if (!f || i < 0 || i >= f->n_meta)
        return sw_err_set(SW_EINVAL, "%s: metadata index %d out of range (%d pairs)",
                          f ? f->path : "safetensors", i, f ? f->n_meta : 0);
    if (key) *key = f->meta_keys[i];
    if (value) *value = f->meta_vals[i];
    return 0;
}

const char *sw_st_path(const struct sw_st_file *f) {
    return f ? f->path : NULL;
}

/* sw_tensor_init cannot fail here: the entry's dtype, ndim and shape were validated when the
 * file was opened. The name is left NULL (a view owns nothing; the name stays in the entry). */
void sw_st_entry_view(const struct sw_st_entry *e, struct sw_tensor *t) {
    if (sw_tensor_init(t, e->dtype, e->ndim, e->shape, (void *)e->data) < 0)
        memset(t, 0, sizeof *t);
}
