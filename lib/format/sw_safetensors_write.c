/* sw_safetensors_write — the safetensors writer: one file or shards plus an index.
 *
 * Output is deterministic: the header JSON lists "__metadata__" first (keys sorted), then the
 * tensors in insertion order, written compactly by jansson and padded with spaces so that
 * 8 + header length is a multiple of 8. The data section holds the tensors back to back with
 * no padding, because the reference reader (Rust safetensors) rejects any byte not covered by a
 * span. Alignment therefore comes from ordering: tensors are placed in insertion order stably
 * sorted by element size, largest first (what Python's safetensors does too, there by name), so
 * each starts at a multiple of its element size from an 8-aligned data section.
 *
 * Files are written through sw_atomic_open/commit: a reader never sees a half-written file, and
 * a sharded write commits every shard before the index that names them. */
#include "sw_safetensors.h"

#include "sw_err.h"
#include "sw_io.h"
#include "sw_log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct st_wtensor {
    char *name;
    enum sw_dtype dtype;
    int ndim;
    int64_t shape[SW_TENSOR_MAX_DIMS];
    const void *data; /* borrowed until the write */
    size_t nbytes;
};

struct sw_st_writer {
    struct st_wtensor *t;
    int n, cap;
    char **mkeys, **mvals;
    int nmeta, capmeta;
};

int sw_st_writer_new(struct sw_st_writer **out) {
    *out = calloc(1, sizeof **out);
    return *out ? 0 : sw_err_set(SW_ENOMEM, "safetensors writer: out of memory");
}

void sw_st_writer_free(struct sw_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++)
        free(w->t[i].name);
    for (int i = 0; i < w->nmeta; i++) {
        free(w->mkeys[i]);
        free(w->mvals[i]);
    }
    free(w->t);
    free(w->mkeys);
    free(w->mvals);
    free(w);
}

/* Contiguous row-major strides, ignoring dimensions of size 1 (any stride is fine there). */
static int is_contiguous(const struct sw_tensor *t, size_t esize) {
    int64_t want = (int64_t)esize;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->strides[i] != want) return 0;
        want *= t->shape[i];
    }
    return 1;
}

int sw_st_writer_add(struct sw_st_writer *w, const char *name, const struct sw_tensor *t) {
    if (!name || !t) return sw_err_set(SW_EINVAL, "safetensors writer: NULL name or tensor");
    if (strcmp(name, "__metadata__") == 0)
        return sw_err_set(SW_EINVAL,
                          "safetensors writer: '__metadata__' is reserved, not a tensor name");
    json_t *probe = json_string(name); /* jansson validates UTF-8 */
    if (!probe) return sw_err_set(SW_EINVAL, "safetensors writer: tensor name is not valid UTF-8");
    json_decref(probe);
    size_t esize = sw_st_dtype_size(t->dtype);
    if (!sw_st_dtype_name(t->dtype))
        return sw_err_set(SW_EUNSUPPORTED,
                          "safetensors writer: tensor '%s': dtype %s has no safetensors name", name,
                          t->dtype == SW_DTYPE_Q4 ? "Q4" : "(unknown)");
    if (t->device != SW_DEVICE_CPU)
        return sw_err_set(SW_EINVAL, "safetensors writer: tensor '%s' is not in CPU memory", name);
    if (t->ndim < 0 || t->ndim > SW_TENSOR_MAX_DIMS)
        return sw_err_set(SW_EINVAL, "safetensors writer: tensor '%s': ndim %d", name, t->ndim);
    uint64_t numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0)
            return sw_err_set(SW_EINVAL, "safetensors writer: tensor '%s': negative dimension",
                              name);
        if (__builtin_mul_overflow(numel, (uint64_t)t->shape[i], &numel))
            return sw_err_set(SW_ERANGE, "safetensors writer: tensor '%s': size overflows", name);
    }
    uint64_t nbytes;
    if (__builtin_mul_overflow(numel, (uint64_t)esize, &nbytes) || nbytes > SIZE_MAX)
        return sw_err_set(SW_ERANGE, "safetensors writer: tensor '%s': size overflows", name);
    if (nbytes && !t->data)
        return sw_err_set(SW_EINVAL, "safetensors writer: tensor '%s' has no data", name);
    if (nbytes && !is_contiguous(t, esize))
        return sw_err_set(SW_EINVAL, "safetensors writer: tensor '%s' is not contiguous", name);
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return sw_err_set(SW_EINVAL, "safetensors writer: tensor '%s' added twice", name);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 64;
        struct st_wtensor *nt = realloc(w->t, (size_t)cap * sizeof *nt);
        if (!nt) return sw_err_set(SW_ENOMEM, "safetensors writer: out of memory");
        w->t = nt;
        w->cap = cap;
    }
    struct st_wtensor *e = &w->t[w->n];
    memset(e, 0, sizeof *e);
    e->name = strdup(name);
    if (!e->name) return sw_err_set(SW_ENOMEM, "safetensors writer: out of memory");
    e->dtype = t->dtype;
    e->ndim = t->ndim;
    memcpy(e->shape, t->shape, sizeof e->shape);
    e->data = t->data;
    e->nbytes = (size_t)nbytes;
    w->n++;
    return 0;
}

int sw_st_writer_set_metadata(struct sw_st_writer *w, const char *key, const char *value) {
    if (!key || !value)
        return sw_err_set(SW_EINVAL, "safetensors writer: NULL metadata key or value");
    json_t *pk = json_string(key), *pv = json_string(value);
    int ok = pk && pv;
    json_decref(pk);
    json_decref(pv);
    if (!ok)
        return sw_err_set(SW_EINVAL, "safetensors writer: metadata '%s' is not valid UTF-8", key);
    for (int i = 0; i < w->nmeta; i++) {
        if (strcmp(w->mkeys[i], key) == 0) {
            char *v = strdup(value);
            if (!v) return sw_err_set(SW_ENOMEM, "safetensors writer: out of memory");
            free(w->mvals[i]);
            w->mvals[i] = v;
            return 0;
        }
    }
    if (w->nmeta == w->capmeta) {
        int cap = w->capmeta ? 2 * w->capmeta : 8;
        char **k = realloc(w->mkeys, (size_t)cap * sizeof *k);
        if (k) w->mkeys = k;
        char **v = realloc(w->mvals, (size_t)cap * sizeof *v);
        if (v) w->mvals = v;
        if (!k || !v) return sw_err_set(SW_ENOMEM, "safetensors writer: out of memory");
        w->capmeta = cap;
    }
    /* Keep keys sorted so the header is the same whatever order they were set in. */
    int pos = w->nmeta;
    while (pos > 0 && strcmp(w->mkeys[pos - 1], key) > 0)
        pos--;
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return sw_err_set(SW_ENOMEM, "safetensors writer: out of memory");
    }
    memmove(w->mkeys + pos + 1, w->mkeys + pos, (size_t)(w->nmeta - pos) * sizeof *w->mkeys);
    memmove(w->mvals + pos + 1, w->mvals + pos, (size_t)(w->nmeta - pos) * sizeof *w->mvals);
    w->mkeys[pos] = k;
    w->mvals[pos] = v;
    w->nmeta++;
    return 0;
}

/* Data order of the tensors idx[0..n): stable sort by element size, largest first. */
static void layout_order(const struct sw_st_writer *w, const int *idx, int n, int *order) {
    int k = 0;
    for (size_t sz = 8; sz >= 1; sz /= 2)
        for (int i = 0; i < n; i++)
            if (sw_st_dtype_size(w->t[idx[i]].dtype) == sz) order[k++] = idx[i];
}

/* The padded header text for tensors idx[0..n) (header order = idx order). Caller frees. */
static int build_header(const struct sw_st_writer *w, const int *idx, int n, const char *path,
                        char **out, size_t *out_len) {
    int *order = malloc(((size_t)n + 1) * sizeof *order);
    uint64_t *begin = calloc((size_t)w->n + 1, sizeof *begin);
    json_t *root = json_object();
    int rc = 0;
    if (!order || !begin || !root) goto nomem;
    layout_order(w, idx, n, order);
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        begin[order[i]] = off;
        off += w->t[order[i]].nbytes;
    }
    if (w->nmeta) {
        json_t *m = json_object();
        if (!m || json_object_set_new(root, "__metadata__", m)) goto nomem;
        for (int i = 0; i < w->nmeta; i++)
            if (json_object_set_new(m, w->mkeys[i], json_string(w->mvals[i]))) goto nomem;
    }
    for (int i = 0; i < n; i++) {
        const struct st_wtensor *t = &w->t[idx[i]];
        json_t *e = json_object(), *shape = json_array(), *offs = json_array();
        if (!e || !shape || !offs) {
            json_decref(e);
            json_decref(shape);
            json_decref(offs);
            goto nomem;
        }
        for (int d = 0; d < t->ndim; d++)
            json_array_append_new(shape, json_integer(t->shape[d]));
        json_array_append_new(offs, json_integer((json_int_t)begin[idx[i]]));
        json_array_append_new(offs, json_integer((json_int_t)(begin[idx[i]] + t->nbytes)));
        json_object_set_new(e, "dtype", json_string(sw_st_dtype_name(t->dtype)));
        json_object_set_new(e, "shape", shape);
        json_object_set_new(e, "data_offsets", offs);
        if (json_object_set_new(root, t->name, e)) goto nomem;
    }
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text) goto nomem;
    size_t len = strlen(text);
    size_t padded = (len + 7) & ~(size_t)7;
    if (padded > SW_ST_MAX_HEADER) {
        free(text);
        rc = sw_err_set(SW_ERANGE, "%s: header of %zu bytes exceeds the %u-byte limit", path,
                        padded, SW_ST_MAX_HEADER);
        goto out;
    }
    char *p = realloc(text, padded + 1);
    if (!p) {
        free(text);
        goto nomem;
    }
    memset(p + len, ' ', padded - len);
    p[padded] = '\0';
    *out = p;
    *out_len = padded;
    goto out;
nomem:
    rc = sw_err_set(SW_ENOMEM, "%s: out of memory building the header", path);
out:
    json_decref(root);
    free(order);
    free(begin);
    return rc;
}

/* Write tensors idx[0..n) as one file at path. */
static int write_subset(const struct sw_st_writer *w, const int *idx, int n, const char *path) {
    char *header = NULL;
    size_t hlen = 0;
    SW_TRY(build_header(w, idx, n, path, &header, &hlen));
    int *order = malloc(((size_t)n + 1) * sizeof *order);
    if (!order) {
        free(header);
        return sw_err_set(SW_ENOMEM, "%s: out of memory", path);
    }
    layout_order(w, idx, n, order);
    struct sw_atomic_file af;
    int rc = sw_atomic_open(&af, path);
    if (rc < 0) goto out;
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    SW_TRY_GOTO(rc, sw_write_full(af.fp, le, 8, path), fail);
    SW_TRY_GOTO(rc, sw_write_full(af.fp, header, hlen, path), fail);
    for (int i = 0; i < n; i++) {
        const struct st_wtensor *t = &w->t[order[i]];
        if (t->nbytes) SW_TRY_GOTO(rc, sw_write_full(af.fp, t->data, t->nbytes, path), fail);
    }
    rc = sw_atomic_commit(&af);
    goto out;
fail:
    sw_atomic_abort(&af);
out:
    free(order);
    free(header);
    return rc;
}

int sw_st_writer_write(struct sw_st_writer *w, const char *path) {
    int *idx = malloc(((size_t)w->n + 1) * sizeof *idx);
    if (!idx) return sw_err_set(SW_ENOMEM, "%s: out of memory", path);
    for (int i = 0; i < w->n; i++)
        idx[i] = i;
    int rc = write_subset(w, idx, w->n, path);
    free(idx);
    return rc;
}

static int write_index(const struct sw_st_writer *w, const int *shard_of, int nshards,
                       const char *dir, const char *base, const char *index_path) {
    json_t *root = json_object(), *meta = json_object(), *map = json_object();
    int rc = 0;
    if (!root || !meta || !map) {
        json_decref(meta);
        json_decref(map);
        goto nomem;
    }
    json_object_set_new(root, "metadata", meta);
    json_object_set_new(root, "weight_map", map);
    uint64_t total = 0;
    for (int i = 0; i < w->n; i++)
        total += w->t[i].nbytes;
    json_object_set_new(meta, "total_size", json_integer((json_int_t)total));
    for (int i = 0; i < w->n; i++) {
        char shard[1024];
        snprintf(shard, sizeof shard, "%s-%05d-of-%05d.safetensors", base, shard_of[i] + 1,
                 nshards);
        if (json_object_set_new(map, w->t[i].name, json_string(shard))) goto nomem;
    }
    /* transformers writes the index with indent=2 and sorted keys; do the same. */
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!text) goto nomem;
    size_t len = strlen(text);
    char *nl = realloc(text, len + 2);
    if (!nl) {
        free(text);
        goto nomem;
    }
    nl[len] = '\n';
    nl[len + 1] = '\0';
    rc = sw_write_file_atomic(index_path, nl, len + 1);
    free(nl);
    json_decref(root);
    return rc;
nomem:
    json_decref(root);
    (void)dir;
    return sw_err_set(SW_ENOMEM, "%s: out of memory", index_path);
}

int sw_st_writer_write_sharded(struct sw_st_writer *w, const char *dir, const char *base,
                               uint64_t max_shard_bytes) {
    if (!dir || !base || !*base || strchr(base, '/'))
        return sw_err_set(SW_EINVAL, "safetensors writer: bad shard base name '%s'",
                          base ? base : "");
    if (max_shard_bytes == 0)
        return sw_err_set(SW_EINVAL, "safetensors writer: max_shard_bytes must be positive");
    char name[1024];
    snprintf(name, sizeof name, "%s.safetensors.index.json", base);
    char *index_path = sw_path_join(dir, name);
    int *shard_of = calloc((size_t)w->n + 1, sizeof *shard_of);
    int *idx = malloc(((size_t)w->n + 1) * sizeof *idx);
    int rc = 0;
    if (!index_path || !shard_of || !idx) {
        rc = sw_err_set(SW_ENOMEM, "%s: out of memory", dir);
        goto out;
    }
    SW_TRY_GOTO(rc, sw_mkdir_p(dir), out);
    /* Greedy split in insertion order; a tensor larger than the limit gets a shard of its own. */
    int nshards = 1;
    uint64_t cur = 0;
    for (int i = 0; i < w->n; i++) {
        if (cur > 0 && cur + w->t[i].nbytes > max_shard_bytes) {
            nshards++;
            cur = 0;
        }
        shard_of[i] = nshards - 1;
        cur += w->t[i].nbytes;
    }
    if (nshards > 99999) {
        rc = sw_err_set(SW_ERANGE, "%s: %d shards (at most 99999)", dir, nshards);
        goto out;
    }
    if (nshards == 1) {
        snprintf(name, sizeof name, "%s.safetensors", base);
        char *path = sw_path_join(dir, name);
        if (!path) {
            rc = sw_err_set(SW_ENOMEM, "%s: out of memory", dir);
            goto out;
        }
        rc = sw_st_writer_write(w, path);
        free(path);
        /* A stale index from an earlier sharded save would shadow the new file for readers
         * (they prefer the index), so it goes, as transformers' save_pretrained does. */
        if (rc == 0 && access(index_path, F_OK) == 0) {
            sw_debug("removing stale %s", index_path);
            if (unlink(index_path) != 0) rc = sw_err_errno("cannot remove stale '%s'", index_path);
        }
        goto out;
    }
    for (int s = 0; s < nshards && rc == 0; s++) {
        int n = 0;
        for (int i = 0; i < w->n; i++)
            if (shard_of[i] == s) idx[n++] = i;
        snprintf(name, sizeof name, "%s-%05d-of-%05d.safetensors", base, s + 1, nshards);
        char *path = sw_path_join(dir, name);
        if (!path) {
            rc = sw_err_set(SW_ENOMEM, "%s: out of memory", dir);
            break;
        }
        rc = write_subset(w, idx, n, path);
        free(path);
    }
    if (rc == 0) rc = write_index(w, shard_of, nshards, dir, base, index_path);
out:
    free(index_path);
    free(shard_of);
    free(idx);
    return rc;
}
