/* sw_gguf_read — the validating GGUF reader (format and rules at the top of sw_gguf.h).
 *
 * Every read goes through a cursor that knows how many bytes remain, so a length or count from
 * the file is checked against the bytes actually there before anything is allocated for it
 * (a 2^60-element array in a 100-byte file is a truncation error, not an allocation). Keys and
 * tensor names are copied and NUL-terminated; values stay in the mapping. */
#include "sw_gguf.h"

#include "sw_err.h"
#include "sw_io.h"

#include <stdlib.h>
#include <string.h>

struct sw_gguf {
    char *name;
    struct sw_mmap map; /* when opened from a path */
    const uint8_t *buf;
    size_t len;
    uint32_t version, alignment;
    uint64_t data_offset;
    int n_kv, n_tensors;
    struct sw_gguf_kv *kv;
    struct sw_gguf_tensor *tensors;
};

struct cursor {
    const uint8_t *p;
    size_t left;
    size_t off; /* file offset of p, for messages */
    const char *name;
};

/* Take n bytes from the cursor; SW_ETRUNC naming what when the file ends first. */
static int take(struct cursor *c, size_t n, const uint8_t **out, const char *what) {
    *out = NULL;
    if (n > c->left)
        return sw_err_set(SW_ETRUNC, "%s: truncated at byte %zu: %s needs %zu bytes, %zu remain",
                          c->name, c->off, what, n, c->left);
    *out = c->p;
    c->p += n, c->left -= n, c->off += n;
    return 0;
}

static int rd_u32(struct cursor *c, uint32_t *v, const char *what) {
    const uint8_t *p;
    SW_TRY(take(c, 4, &p, what));
    memcpy(v, p, 4);
    return 0;
}

static int rd_u64(struct cursor *c, uint64_t *v, const char *what) {
    const uint8_t *p;
    SW_TRY(take(c, 8, &p, what));
    memcpy(v, p, 8);
    return 0;
}

static int rd_str(struct cursor *c, struct sw_gguf_str *s, const char *what) {
    uint64_t n;
    SW_TRY(rd_u64(c, &n, what));
    if (n > c->left)
        return sw_err_set(SW_ETRUNC, "%s: truncated at byte %zu: %s claims %llu bytes, %zu remain",
                          c->name, c->off, what, (unsigned long long)n, c->left);
    const uint8_t *p;
    SW_TRY(take(c, (size_t)n, &p, what));
    s->p = (const char *)p, s->n = n;
    return 0;
}

static char *dup_str(const struct sw_gguf_str *s) {
    char *d = malloc(s->n + 1);
    if (d) memcpy(d, s->p, s->n), d[s->n] = 0;
    return d;
}

/* A printable prefix of a name for messages (names are untrusted bytes). */
static const char *show(const struct sw_gguf_str *s, char *buf, size_t cap) {
    size_t n = 0;
    for (uint64_t i = 0; i < s->n && n + 5 < cap; i++) {
        unsigned char ch = (unsigned char)s->p[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\'')
            buf[n++] = (char)ch;
        else
            n += (size_t)snprintf(buf + n, cap - n, "\\x%02x", ch);
    }
    if (n >= cap) n = cap - 1;
    buf[n] = 0;
    return buf;
}

static int read_value(struct cursor *c, struct sw_gguf_kv *kv) {
    const char *k = kv->key;
    uint32_t t;
    SW_TRY(rd_u32(c, &t, "value type"));
    if (t >= SW_GGUF_VTYPE_COUNT)
        return sw_err_set(SW_EFORMAT, "%s: key '%s': unknown value type %u", c->name, k, t);
    kv->type = (enum sw_gguf_vtype)t;
    if (t == SW_GGUF_STRING) return rd_str(c, &kv->str, k);
    if (t != SW_GGUF_ARRAY) {
        kv->n = 1;
        return take(c, sw_gguf_vtype_size((int)t), &kv->data, k);
    }
    uint32_t at;
    SW_TRY(rd_u32(c, &at, k));
    if (at >= SW_GGUF_VTYPE_COUNT || at == SW_GGUF_ARRAY)
        return sw_err_set(SW_EFORMAT, "%s: key '%s': array of %s values is not supported", c->name,
                          k, at == SW_GGUF_ARRAY ? "array" : "unknown");
    kv->arr_type = (enum sw_gguf_vtype)at;
    SW_TRY(rd_u64(c, &kv->n, k));
    if (at != SW_GGUF_STRING) {
        size_t es = sw_gguf_vtype_size((int)at);
        if (kv->n > c->left / es)
            return sw_err_set(SW_ETRUNC,
                              "%s: truncated: key '%s': array of %llu %s values needs "
                              "more than the %zu bytes left",
                              c->name, k, (unsigned long long)kv->n, sw_gguf_vtype_name((int)at),
                              c->left);
        return take(c, (size_t)kv->n * es, &kv->data, k);
    }
    /* Every string takes at least its 8-byte length: bound the count before allocating. */
    if (kv->n > c->left / 8)
        return sw_err_set(SW_ETRUNC,
                          "%s: truncated: key '%s': array of %llu strings needs more "
                          "than the %zu bytes left",
                          c->name, k, (unsigned long long)kv->n, c->left);
    kv->data = c->p;
    kv->strs = malloc((size_t)(kv->n ? kv->n : 1) * sizeof *kv->strs);
    if (!kv->strs) return sw_err_set(SW_ENOMEM, "out of memory for key '%s'", k);
    for (uint64_t i = 0; i < kv->n; i++)
        SW_TRY(rd_str(c, &kv->strs[i], k));
    return 0;
}

static int cmp_off(const void *a, const void *b) {
    const struct sw_gguf_tensor *x = *(const struct sw_gguf_tensor *const *)a;
    const struct sw_gguf_tensor *y = *(const struct sw_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Names must be unique: sort pointers and compare neighbours (n log n, no hash table). */
static int cmp_name_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int check_unique(const char *file, char **names, int n, const char *what) {
    if (n < 2) return 0;
    char **s = malloc((size_t)n * sizeof *s);
    if (!s) return sw_err_set(SW_ENOMEM, "out of memory");
    memcpy(s, names, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_name_ptr);
    int rc = 0;
    for (int i = 1; i < n && rc == 0; i++)
        if (strcmp(s[i - 1], s[i]) == 0)
            rc = sw_err_set(SW_EFORMAT, "%s: duplicate %s '%s'", file, what, s[i]);
    free(s);
    return rc;
}

static int parse(struct sw_gguf *g) {
    struct cursor c = {g->buf, g->len, 0, g->name};
    const uint8_t *magic;
    SW_TRY(take(&c, 4, &magic, "magic"));
    if (memcmp(magic, SW_GGUF_MAGIC, 4) != 0)
        return sw_err_set(SW_EFORMAT, "%s: not a GGUF file (magic is not 'GGUF')", g->name);
    SW_TRY(rd_u32(&c, &g->version, "version"));
    if (g->version == 0x03000000 || g->version == 0x02000000)
        return sw_err_set(SW_EUNSUPPORTED, "%s: big-endian GGUF files are not supported", g->name);
    if (g->version != 2 && g->version != 3)
        return sw_err_set(SW_EUNSUPPORTED, "%s: GGUF version %u is not supported (2 and 3 are)",
                          g->name, g->version);
    uint64_t nt, nkv;
    SW_TRY(rd_u64(&c, &nt, "tensor count"));
    SW_TRY(rd_u64(&c, &nkv, "key-value count"));
    /* A key takes at least 8 + 4 bytes and a tensor info at least 8 + 4 + 4 + 8. */
    if (nkv > c.left / 12 || nt > c.left / 24 || nkv > INT32_MAX || nt > INT32_MAX)
        return sw_err_set(SW_ETRUNC,
                          "%s: truncated: the header claims %llu keys and %llu "
                          "tensors, more than the %zu bytes of the file can hold",
                          g->name, (unsigned long long)nkv, (unsigned long long)nt, c.left);
    g->kv = calloc(nkv ? nkv : 1, sizeof *g->kv);
    g->tensors = calloc(nt ? nt : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors) return sw_err_set(SW_ENOMEM, "out of memory");
    char buf[96];
    g->alignment = SW_GGUF_DEFAULT_ALIGNMENT;
    for (uint64_t i = 0; i < nkv; i++) {
        struct sw_gguf_kv *kv = &g->kv[i];
        struct sw_gguf_str key;
        SW_TRY(rd_str(&c, &key, "key"));
        if (memchr(key.p, 0, key.n))
            return sw_err_set(SW_EFORMAT, "%s: key %llu ('%s') contains a NUL byte", g->name,
                              (unsigned long long)i, show(&key, buf, sizeof buf));
        if (!(kv->key = dup_str(&key))) return sw_err_set(SW_ENOMEM, "out of memory");
        g->n_kv = (int)i + 1;
        SW_TRY(read_value(&c, kv));
        if (strcmp(kv->key, "general.alignment") == 0) {
            uint32_t a;
            if (kv->type != SW_GGUF_UINT32)
                return sw_err_set(SW_EFORMAT, "%s: general.alignment is %s, not u32", g->name,
                                  sw_gguf_vtype_name(kv->type));
            memcpy(&a, kv->data, 4);
            if (a == 0 || (a & (a - 1)) != 0)
                return sw_err_set(SW_EFORMAT, "%s: general.alignment %u is not a power of two",
                                  g->name, a);
            g->alignment = a;
        }
    }
    char **names = malloc((nkv > nt ? nkv : nt ? nt : 1) * sizeof *names);
    if (!names) return sw_err_set(SW_ENOMEM, "out of memory");
    for (int i = 0; i < g->n_kv; i++)
        names[i] = g->kv[i].key;
    int rc = check_unique(g->name, names, g->n_kv, "key");
    for (uint64_t i = 0; i < nt && rc == 0; i++) {
        struct sw_gguf_tensor *t = &g->tensors[i];
        struct sw_gguf_str name;
        uint32_t nd, type;
        if ((rc = rd_str(&c, &name, "tensor name")) < 0) break;
        if (name.n == 0 || name.n > SW_GGUF_MAX_NAME || memchr(name.p, 0, name.n)) {
            rc = sw_err_set(SW_EFORMAT,
                            "%s: tensor %llu: name '%s' is empty, longer than %d bytes "
                            "or holds a NUL",
                            g->name, (unsigned long long)i, show(&name, buf, sizeof buf),
                            SW_GGUF_MAX_NAME);
            break;
        }
        if (!(t->name = dup_str(&name))) {
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            break;
        }
        g->n_tensors = (int)i + 1;
        if ((rc = rd_u32(&c, &nd, t->name)) < 0) break;
        if (nd == 0 || nd > SW_GGUF_MAX_DIMS) {
            rc = sw_err_set(SW_EFORMAT, "%s: tensor '%s': %u dimensions (1 to %d allowed)", g->name,
                            t->name, nd, SW_GGUF_MAX_DIMS);
            break;
        }
        t->n_dims = (int)nd;
        uint64_t numel = 1;
        for (int d = 0; d < SW_GGUF_MAX_DIMS; d++)
            t->ne[d] = 1;
        for (uint32_t d = 0; d < nd && rc == 0; d++) {
            uint64_t ne;
            if ((rc = rd_u64(&c, &ne, t->name)) < 0) break;
            if (ne > INT64_MAX || (ne && numel > (uint64_t)INT64_MAX / ne))
                rc = sw_err_set(SW_EFORMAT,
                                "%s: tensor '%s': dimension %u (%llu) overflows the "
                                "element count",
                                g->name, t->name, d, (unsigned long long)ne);
            t->ne[d] = (int64_t)ne, numel *= ne;
        }
        if (rc < 0) break;
        if ((rc = rd_u32(&c, &type, t->name)) < 0) break;
        if (!sw_ggml_type_name((int)type)) {
            rc = sw_err_set(SW_EUNSUPPORTED, "%s: tensor '%s': unknown ggml type %u", g->name,
                            t->name, type);
            break;
        }
        t->type = (int)type;
        int64_t blck = sw_ggml_blck_size(t->type);
        if (t->ne[0] % blck != 0) {
            rc = sw_err_set(SW_EFORMAT,
                            "%s: tensor '%s': row of %lld elements is not a multiple "
                            "of the %s block size %lld",
                            g->name, t->name, (long long)t->ne[0], sw_ggml_type_name(t->type),
                            (long long)blck);
            break;
        }
        uint64_t rows = numel / (uint64_t)(t->ne[0] ? t->ne[0] : 1);
        uint64_t row_bytes = (uint64_t)(t->ne[0] / blck) * sw_ggml_type_size(t->type);
        if (t->ne[0] == 0) rows = 0;
        if (row_bytes && rows > UINT64_MAX / row_bytes) {
            rc = sw_err_set(SW_EFORMAT, "%s: tensor '%s' is too large", g->name, t->name);
            break;
        }
        uint64_t nbytes = rows * row_bytes;
        if (nbytes > g->len) {
            rc = sw_err_set(SW_ETRUNC,
                            "%s: truncated: tensor '%s' needs %llu bytes, more than "
                            "the whole file (%zu)",
                            g->name, t->name, (unsigned long long)nbytes, g->len);
            break;
        }
        t->nbytes = (size_t)nbytes;
        if ((rc = rd_u64(&c, &t->offset, t->name)) < 0) break;
        if (t->offset % g->alignment != 0) {
            rc = sw_err_set(SW_EFORMAT,
                            "%s: tensor '%s': offset %llu is not a multiple of the "
                            "alignment %u",
                            g->name, t->name, (unsigned long long)t->offset, g->alignment);
            break;
        }
    }
    if (rc == 0) {
        for (int i = 0; i < g->n_tensors; i++)
            names[i] = g->tensors[i].name;
        rc = check_unique(g->name, names, g->n_tensors, "tensor");
    }
    free(names);
    if (rc < 0) return rc;
    /* The data section starts at the next multiple of the alignment (ggml pads even when there
     * are no tensors, but a file that ends right after the infos is fine then). */
    uint64_t pos = c.off;
    g->data_offset = (pos + g->alignment - 1) / g->alignment * g->alignment;
    if (g->n_tensors > 0 && g->data_offset > g->len)
        return sw_err_set(SW_ETRUNC,
                          "%s: truncated: the data section would start at byte %llu "
                          "but the file has %zu",
                          g->name, (unsigned long long)g->data_offset, g->len);
    size_t nt_alloc = g->n_tensors > 0 ? (size_t)g->n_tensors : 1;
    struct sw_gguf_tensor **by_off = malloc(nt_alloc * sizeof *by_off);
    if (!by_off) return sw_err_set(SW_ENOMEM, "out of memory");
    for (int i = 0; i < g->n_tensors; i++)
        by_off[i] = &g->tensors[i];
    qsort(by_off, (size_t)g->n_tensors, sizeof *by_off, cmp_off);
    uint64_t data_len = g->len - (g->n_tensors ? g->data_offset : g->len);
    for (int i = 0; i < g->n_tensors && rc == 0; i++) {
        struct sw_gguf_tensor *t = by_off[i];
        if (t->offset > data_len || t->nbytes > data_len - t->offset)
            rc = sw_err_set(SW_ETRUNC,
                            "%s: truncated: tensor '%s' ends at byte %llu of the data "
                            "section, which has %llu",
                            g->name, t->name, (unsigned long long)(t->offset + t->nbytes),
                            (unsigned long long)data_len);
        else if (i > 0 && by_off[i - 1]->offset + by_off[i - 1]->nbytes > t->offset)
            rc = sw_err_set(SW_EFORMAT, "%s: tensors '%s' and '%s' overlap", g->name,
                            by_off[i - 1]->name, t->name);
        else
            t->data = g->buf + g->data_offset + t->offset;
    }
    free(by_off);
    return rc;
}

int sw_gguf_open_mem(const void *buf, size_t len, const char *name, struct sw_gguf **out) {
    *out = NULL;
    struct sw_gguf *g = calloc(1, sizeof *g);
    if (!g) return sw_err_set(SW_ENOMEM, "out of memory");
    g->name = strdup(name ? name : "<gguf>");
    g->buf = buf, g->len = len;
    int rc = g->name ? parse(g) : sw_err_set(SW_ENOMEM, "out of memory");
    if (rc < 0) {
        sw_gguf_close(g);
        return rc;
    }
    *out = g;
    return 0;
}

int sw_gguf_open(const char *path, struct sw_gguf **out) {
    *out = NULL;
    struct sw_mmap m = {0};
    SW_TRY(sw_mmap_open(&m, path));
    int rc = sw_gguf_open_mem(m.data, m.len, path, out);
    if (rc < 0) {
        sw_mmap_close(&m);
        return rc;
    }
    (*out)->map = m;
    return 0;
}

void sw_gguf_close(struct sw_gguf *g) {
    if (!g) return;
    for (int i = 0; i < g->n_kv; i++)
        free(g->kv[i].key), free(g->kv[i].strs);
    for (int i = 0; i < g->n_tensors; i++)
        free(g->tensors[i].name);
    free(g->kv), free(g->tensors), free(g->name);
    sw_mmap_close(&g->map);
    free(g);
}

uint32_t sw_gguf_version(const struct sw_gguf *g) {
    return g->version;
}
uint32_t sw_gguf_alignment(const struct sw_gguf *g) {
    return g->alignment;
}
uint64_t sw_gguf_data_offset(const struct sw_gguf *g) {
    return g->data_offset;
}
uint64_t sw_gguf_file_size(const struct sw_gguf *g) {
    return g->len;
}
const char *sw_gguf_name(const struct sw_gguf *g) {
    return g->name;
}
int sw_gguf_kv_count(const struct sw_gguf *g) {
    return g->n_kv;
}
int sw_gguf_tensor_count(const struct sw_gguf *g) {
    return g->n_tensors;
}

const struct sw_gguf_kv *sw_gguf_kv_get(const struct sw_gguf *g, int i) {
    return i >= 0 && i < g->n_kv ? &g->kv[i] : NULL;
}

const struct sw_gguf_kv *sw_gguf_find_kv(const struct sw_gguf *g, const char *key) {
    for (int i = 0; i < g->n_kv; i++)
        if (strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return NULL;
}

const struct sw_gguf_tensor *sw_gguf_tensor_get(const struct sw_gguf *g, int i) {
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const struct sw_gguf_tensor *sw_gguf_find_tensor(const struct sw_gguf *g, const char *name) {
    for (int i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0) return &g->tensors[i];
    return NULL;
}

int64_t sw_gguf_tensor_numel(const struct sw_gguf_tensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->n_dims; d++)
        n *= t->ne[d];
    return n;
}

/* Value of a fixed-size element at p of type vt, as int64 (ok=0 when it does not fit) or
 * double. */
static int64_t elem_int(const uint8_t *p, int vt, int *ok) {
    *ok = 1;
    switch (vt) {
    case SW_GGUF_UINT8:
    case SW_GGUF_BOOL: return *p;
    case SW_GGUF_INT8: return (int8_t)*p;
    case SW_GGUF_UINT16: {
        uint16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case SW_GGUF_INT16: {
        int16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case SW_GGUF_UINT32: {
        uint32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    case SW_GGUF_INT32: {
        int32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    case SW_GGUF_UINT64: {
        uint64_t v;
        memcpy(&v, p, 8);
        if (v > INT64_MAX) *ok = 0;
        return (int64_t)v;
    }
    case SW_GGUF_INT64: {
        int64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    default: *ok = 0; return 0;
    }
}

static double elem_float(const uint8_t *p, int vt, int *ok) {
    if (vt == SW_GGUF_FLOAT32) {
        float v;
        memcpy(&v, p, 4);
        *ok = 1;
        return v;
    }
    if (vt == SW_GGUF_FLOAT64) {
        double v;
        memcpy(&v, p, 8);
        *ok = 1;
        return v;
    }
    if (vt == SW_GGUF_UINT64) {
        uint64_t v;
        memcpy(&v, p, 8);
        *ok = 1;
        return (double)v;
    }
    return (double)elem_int(p, vt, ok);
}

int sw_gguf_kv_int(const struct sw_gguf_kv *kv, int64_t *out) {
    int ok = 0;
    if (kv->type != SW_GGUF_ARRAY && kv->type != SW_GGUF_STRING)
        *out = elem_int(kv->data, kv->type, &ok);
    return ok ? 0
              : sw_err_set(SW_EFORMAT, "key '%s' is %s, not an integer that fits int64", kv->key,
                           sw_gguf_vtype_name(kv->type));
}

int sw_gguf_kv_float(const struct sw_gguf_kv *kv, double *out) {
    int ok = 0;
    if (kv->type != SW_GGUF_ARRAY && kv->type != SW_GGUF_STRING)
        *out = elem_float(kv->data, kv->type, &ok);
    return ok ? 0
              : sw_err_set(SW_EFORMAT, "key '%s' is %s, not a number", kv->key,
                           sw_gguf_vtype_name(kv->type));
}

int64_t sw_gguf_arr_int(const struct sw_gguf_kv *kv, uint64_t i) {
    int ok;
    return elem_int(kv->data + i * sw_gguf_vtype_size(kv->arr_type), kv->arr_type, &ok);
}

double sw_gguf_arr_float(const struct sw_gguf_kv *kv, uint64_t i) {
    int ok;
    return elem_float(kv->data + i * sw_gguf_vtype_size(kv->arr_type), kv->arr_type, &ok);
}
