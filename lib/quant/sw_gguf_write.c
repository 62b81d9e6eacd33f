/* sw_gguf_write — the GGUF writer: metadata serialised as it is set, tensor infos declared up
 * front (so the header with every offset can be written first), then the tensor data streamed
 * one tensor at a time into a temporary file that is renamed onto the output only when complete
 * (sw_atomic_*: temp in the same folder, fsync, rename, fsync of the folder). Streaming keeps
 * the memory of an export at one tensor, whatever the size of the model. */
#include "sw_gguf.h"

#include "sw_err.h"
#include "sw_io.h"

#include <stdlib.h>
#include <string.h>

struct winfo {
    char *name;
    int type, n_dims;
    int64_t ne[SW_GGUF_MAX_DIMS];
    size_t nbytes;
    uint64_t offset;
};

struct sw_gguf_writer {
    uint8_t *kv; /* serialised key-value pairs */
    size_t kv_len, kv_cap;
    char **keys;
    int n_kv, keys_cap;
    uint32_t alignment;
    struct winfo *t;
    int n_t, t_cap;
    struct sw_atomic_file f;
    int begun, next, done;
    uint64_t pos; /* bytes written to the data section */
};

int sw_gguf_writer_new(struct sw_gguf_writer **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return sw_err_set(SW_ENOMEM, "out of memory");
    (*out)->alignment = SW_GGUF_DEFAULT_ALIGNMENT;
    return 0;
}

void sw_gguf_writer_free(struct sw_gguf_writer *w) {
    if (!w) return;
    if (w->begun && !w->done) sw_atomic_abort(&w->f);
    for (int i = 0; i < w->n_kv; i++)
        free(w->keys[i]);
    for (int i = 0; i < w->n_t; i++)
        free(w->t[i].name);
    free(w->keys), free(w->kv), free(w->t);
    free(w);
}

static int put(struct sw_gguf_writer *w, const void *p, size_t n) {
    if (w->kv_len + n > w->kv_cap) {
        size_t cap = w->kv_cap ? w->kv_cap : 4096;
        while (cap < w->kv_len + n)
            cap *= 2;
        uint8_t *np = realloc(w->kv, cap);
        if (!np) return sw_err_set(SW_ENOMEM, "out of memory for GGUF metadata");
        w->kv = np, w->kv_cap = cap;
    }
    memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
    return 0;
}

static int put_u32(struct sw_gguf_writer *w, uint32_t v) {
    return put(w, &v, 4);
}
static int put_u64(struct sw_gguf_writer *w, uint64_t v) {
    return put(w, &v, 8);
}
static int put_str(struct sw_gguf_writer *w, const char *s, size_t n) {
    SW_TRY(put_u64(w, n));
    return put(w, s, n);
}

/* Record a new key (unique) and write it with its value type. */
static int key(struct sw_gguf_writer *w, const char *k, enum sw_gguf_vtype t) {
    if (w->begun) return sw_err_set(SW_ESTATE, "GGUF key '%s' set after the header was written", k);
    for (int i = 0; i < w->n_kv; i++)
        if (strcmp(w->keys[i], k) == 0) return sw_err_set(SW_EINVAL, "duplicate GGUF key '%s'", k);
    if (w->n_kv == w->keys_cap) {
        int cap = w->keys_cap ? 2 * w->keys_cap : 32;
        char **nk = realloc(w->keys, (size_t)cap * sizeof *nk);
        if (!nk) return sw_err_set(SW_ENOMEM, "out of memory");
        w->keys = nk, w->keys_cap = cap;
    }
    if (!(w->keys[w->n_kv] = strdup(k))) return sw_err_set(SW_ENOMEM, "out of memory");
    w->n_kv++;
    SW_TRY(put_str(w, k, strlen(k)));
    return put_u32(w, (uint32_t)t);
}

int sw_gguf_set_u32(struct sw_gguf_writer *w, const char *k, uint32_t v) {
    if (strcmp(k, "general.alignment") == 0) {
        if (v == 0 || (v & (v - 1)) != 0)
            return sw_err_set(SW_EINVAL, "general.alignment %u is not a power of two", v);
        w->alignment = v;
    }
    SW_TRY(key(w, k, SW_GGUF_UINT32));
    return put_u32(w, v);
}

int sw_gguf_set_i32(struct sw_gguf_writer *w, const char *k, int32_t v) {
    SW_TRY(key(w, k, SW_GGUF_INT32));
    return put(w, &v, 4);
}

int sw_gguf_set_u64(struct sw_gguf_writer *w, const char *k, uint64_t v) {
    SW_TRY(key(w, k, SW_GGUF_UINT64));
    return put_u64(w, v);
}

int sw_gguf_set_f32(struct sw_gguf_writer *w, const char *k, float v) {
    SW_TRY(key(w, k, SW_GGUF_FLOAT32));
    return put(w, &v, 4);
}

int sw_gguf_set_bool(struct sw_gguf_writer *w, const char *k, int v) {
    uint8_t b = v ? 1 : 0;
    SW_TRY(key(w, k, SW_GGUF_BOOL));
    return put(w, &b, 1);
}

int sw_gguf_set_str_n(struct sw_gguf_writer *w, const char *k, const char *v, size_t n) {
    SW_TRY(key(w, k, SW_GGUF_STRING));
    return put_str(w, v, n);
}

int sw_gguf_set_str(struct sw_gguf_writer *w, const char *k, const char *v) {
    return sw_gguf_set_str_n(w, k, v, strlen(v));
}

int sw_gguf_set_arr_str(struct sw_gguf_writer *w, const char *k, const char *const *v,
                        const size_t *lens, size_t n) {
    SW_TRY(key(w, k, SW_GGUF_ARRAY));
    SW_TRY(put_u32(w, SW_GGUF_STRING));
    SW_TRY(put_u64(w, n));
    for (size_t i = 0; i < n; i++)
        SW_TRY(put_str(w, v[i], lens ? lens[i] : strlen(v[i])));
    return 0;
}

int sw_gguf_set_arr(struct sw_gguf_writer *w, const char *k, enum sw_gguf_vtype vt, const void *v,
                    size_t n) {
    size_t es = sw_gguf_vtype_size(vt);
    if (!es)
        return sw_err_set(SW_EINVAL, "GGUF key '%s': arrays of %s need their own call", k,
                          sw_gguf_vtype_name(vt));
    SW_TRY(key(w, k, SW_GGUF_ARRAY));
    SW_TRY(put_u32(w, (uint32_t)vt));
    SW_TRY(put_u64(w, n));
    return put(w, v, n * es);
}

int sw_gguf_add_tensor(struct sw_gguf_writer *w, const char *name, int type, int n_dims,
                       const int64_t *ne) {
    if (w->begun)
        return sw_err_set(SW_ESTATE, "tensor '%s' added after the header was written", name);
    size_t len = strlen(name);
    if (len == 0 || len > SW_GGUF_MAX_NAME)
        return sw_err_set(SW_EINVAL, "tensor name '%s' is empty or longer than %d bytes", name,
                          SW_GGUF_MAX_NAME);
    if (!sw_ggml_type_name(type))
        return sw_err_set(SW_EINVAL, "tensor '%s': unknown ggml type %d", name, type);
    if (n_dims < 1 || n_dims > SW_GGUF_MAX_DIMS)
        return sw_err_set(SW_EINVAL, "tensor '%s': %d dimensions", name, n_dims);
    for (int i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return sw_err_set(SW_EINVAL, "duplicate tensor '%s'", name);
    int64_t rows = 1;
    for (int d = 1; d < n_dims; d++) {
        if (ne[d] < 0) return sw_err_set(SW_EINVAL, "tensor '%s': negative dimension", name);
        rows *= ne[d];
    }
    size_t row = sw_ggml_row_size(type, ne[0]);
    if (ne[0] < 0 || (ne[0] > 0 && row == 0))
        return sw_err_set(SW_EINVAL,
                          "tensor '%s': row of %lld elements is not a multiple of the "
                          "%s block size %lld",
                          name, (long long)ne[0], sw_ggml_type_name(type),
                          (long long)sw_ggml_blck_size(type));
    if (w->n_t == w->t_cap) {
        int cap = w->t_cap ? 2 * w->t_cap : 64;
        struct winfo *nt = realloc(w->t, (size_t)cap * sizeof *nt);
        if (!nt) return sw_err_set(SW_ENOMEM, "out of memory");
        w->t = nt, w->t_cap = cap;
    }
    struct winfo *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return sw_err_set(SW_ENOMEM, "out of memory");
    t->type = type, t->n_dims = n_dims;
    for (int d = 0; d < SW_GGUF_MAX_DIMS; d++)
        t->ne[d] = d < n_dims ? ne[d] : 1;
    t->nbytes = row * (size_t)rows;
    return w->n_t++;
}

size_t sw_gguf_writer_tensor_nbytes(const struct sw_gguf_writer *w, int i) {
    return i >= 0 && i < w->n_t ? w->t[i].nbytes : 0;
}

static uint64_t align_up(uint64_t x, uint64_t a) {
    return (x + a - 1) / a * a;
}

static int write_pad(struct sw_gguf_writer *w, uint64_t n) {
    static const uint8_t zeros[256];
    while (n) {
        size_t k = n > sizeof zeros ? sizeof zeros : (size_t)n;
        SW_TRY(sw_write_full(w->f.fp, zeros, k, w->f.path));
        n -= k;
    }
    return 0;
}

int sw_gguf_writer_begin(struct sw_gguf_writer *w, const char *path) {
    if (w->begun) return sw_err_set(SW_ESTATE, "GGUF writer already begun");
    uint64_t off = 0;
    for (int i = 0; i < w->n_t; i++) {
        w->t[i].offset = off;
        off = align_up(off + w->t[i].nbytes, w->alignment);
    }
    SW_TRY(sw_atomic_open(&w->f, path));
    w->begun = 1;
    uint32_t version = SW_GGUF_VERSION;
    uint64_t nt = (uint64_t)w->n_t, nkv = (uint64_t)w->n_kv;
    uint64_t pos = 4 + 4 + 8 + 8 + w->kv_len;
    int rc = sw_write_full(w->f.fp, SW_GGUF_MAGIC, 4, path);
    if (rc == 0) rc = sw_write_full(w->f.fp, &version, 4, path);
    if (rc == 0) rc = sw_write_full(w->f.fp, &nt, 8, path);
    if (rc == 0) rc = sw_write_full(w->f.fp, &nkv, 8, path);
    if (rc == 0) rc = sw_write_full(w->f.fp, w->kv, w->kv_len, path);
    for (int i = 0; i < w->n_t && rc == 0; i++) {
        struct winfo *t = &w->t[i];
        uint64_t len = strlen(t->name);
        uint32_t nd = (uint32_t)t->n_dims, type = (uint32_t)t->type;
        rc = sw_write_full(w->f.fp, &len, 8, path);
        if (rc == 0) rc = sw_write_full(w->f.fp, t->name, len, path);
        if (rc == 0) rc = sw_write_full(w->f.fp, &nd, 4, path);
        for (int d = 0; d < t->n_dims && rc == 0; d++) {
            uint64_t ne = (uint64_t)t->ne[d];
            rc = sw_write_full(w->f.fp, &ne, 8, path);
        }
        if (rc == 0) rc = sw_write_full(w->f.fp, &type, 4, path);
        if (rc == 0) rc = sw_write_full(w->f.fp, &t->offset, 8, path);
        pos += 8 + len + 4 + 8 * (uint64_t)t->n_dims + 4 + 8;
    }
    if (rc == 0) rc = write_pad(w, align_up(pos, w->alignment) - pos);
    return rc;
}

int sw_gguf_writer_write_tensor(struct sw_gguf_writer *w, const void *data, size_t nbytes) {
    if (!w->begun || w->done || w->next >= w->n_t)
        return sw_err_set(SW_ESTATE, "GGUF writer: no tensor left to write");
    struct winfo *t = &w->t[w->next];
    if (nbytes != t->nbytes)
        return sw_err_set(SW_EINVAL, "tensor '%s': %zu bytes given, %zu expected", t->name, nbytes,
                          t->nbytes);
    SW_TRY(write_pad(w, t->offset - w->pos));
    SW_TRY(sw_write_full(w->f.fp, data, nbytes, w->f.path));
    w->pos = t->offset + nbytes;
    w->next++;
    return 0;
}

int sw_gguf_writer_commit(struct sw_gguf_writer *w) {
    if (!w->begun || w->done) return sw_err_set(SW_ESTATE, "GGUF writer not begun");
    if (w->next != w->n_t)
        return sw_err_set(SW_ESTATE, "GGUF writer: %d of %d tensors written", w->next, w->n_t);
    /* Pad the last tensor like ggml does, so the file size is a multiple of the alignment. */
    SW_TRY(write_pad(w, align_up(w->pos, w->alignment) - w->pos));
    w->done = 1;
    return sw_atomic_commit(&w->f);
}
