/* sw_record_check — what a reader verifies in every record before handing it out.
 *
 * Generic rules (all kinds): the record is a map, every key in every map is a unique UTF-8
 * string, every string is UTF-8, and "kind" is a string. Per-kind rules (docs/stream.md):
 * tensor fields have the documented dtypes, ranks and matching lengths, token ids are
 * non-negative, labels are token ids or -100, cu_seqlens is a valid prefix sum. Consumers can
 * then index with what they read without re-checking shapes. Integer data is read with memcpy
 * because the record's bytes need not be aligned when the check runs. */
#include "sw_stream_impl.h"

#include "sw_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sw_utf8_valid(const char *str, size_t len) {
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int n;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
            min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
            min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else
            return 0;
        if (len - i <= (size_t)n) return 0;
        for (int k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        i += (size_t)n + 1;
    }
    return 1;
}

/* ---- generic checks ----------------------------------------------------------------------- */

static int key_cmp(const void *a, const void *b) {
    const msgpack_object_str *x = *(const msgpack_object_str *const *)a;
    const msgpack_object_str *y = *(const msgpack_object_str *const *)b;
    size_t n = x->size < y->size ? x->size : y->size;
    int c = memcmp(x->ptr, y->ptr, n);
    if (c) return c;
    return (x->size > y->size) - (x->size < y->size);
}

/* Duplicate keys make a lookup ambiguous (and a JSON view invalid). Small maps compare pairs;
 * big ones (weight sets) sort pointers so a hostile map cannot make this quadratic. */
static int check_unique_keys(const struct sw_record *r, const msgpack_object_map *m) {
    uint32_t n = m->size;
    if (n < 2) return 0;
    if (n <= 16) {
        for (uint32_t i = 1; i < n; i++)
            for (uint32_t j = 0; j < i; j++) {
                const msgpack_object_str *a = &m->ptr[i].key.via.str, *b = &m->ptr[j].key.via.str;
                if (a->size == b->size && memcmp(a->ptr, b->ptr, a->size) == 0)
                    return sw_record_errf(r, SW_EFORMAT, "duplicate key '%.*s' in a map",
                                          (int)(a->size > 200 ? 200 : a->size), a->ptr);
            }
        return 0;
    }
    const msgpack_object_str **keys = malloc(n * sizeof *keys);
    if (!keys) return sw_err_set(SW_ENOMEM, "out of memory checking a map of %u keys", n);
    for (uint32_t i = 0; i < n; i++)
        keys[i] = &m->ptr[i].key.via.str;
    qsort(keys, n, sizeof *keys, key_cmp);
    int rc = 0;
    for (uint32_t i = 1; i < n && rc == 0; i++)
        if (key_cmp(&keys[i - 1], &keys[i]) == 0)
            rc = sw_record_errf(r, SW_EFORMAT, "duplicate key '%.*s' in a map",
                                (int)(keys[i]->size > 200 ? 200 : keys[i]->size), keys[i]->ptr);
    free(keys);
    return rc;
}

static int check_value(const struct sw_record *r, const msgpack_object *o, int depth) {
    if (depth > SW_STREAM_MAX_DEPTH) /* the framer already bounds this; never recurse deeper */
        return sw_record_errf(r, SW_EFORMAT, "nested too deeply");
    switch (o->type) {
    case MSGPACK_OBJECT_STR:
        if (!sw_utf8_valid(o->via.str.ptr, o->via.str.size))
            return sw_record_errf(r, SW_EFORMAT, "a string is not valid UTF-8");
        return 0;
    case MSGPACK_OBJECT_ARRAY:
        for (uint32_t i = 0; i < o->via.array.size; i++)
            SW_TRY(check_value(r, &o->via.array.ptr[i], depth + 1));
        return 0;
    case MSGPACK_OBJECT_MAP:
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (k->type != MSGPACK_OBJECT_STR)
                return sw_record_errf(r, SW_EFORMAT, "a map key is not a string");
            if (!sw_utf8_valid(k->via.str.ptr, k->via.str.size))
                return sw_record_errf(r, SW_EFORMAT, "a map key is not valid UTF-8");
            SW_TRY(check_value(r, &o->via.map.ptr[i].val, depth + 1));
        }
        return check_unique_keys(r, &o->via.map);
    case MSGPACK_OBJECT_EXT: return sw_record_errf(r, SW_EFORMAT, "ext values are not allowed");
    default: return 0;
    }
}

int sw_record_parse(struct sw_record *r, msgpack_unpacked *unp) {
    r->kind[0] = '\0';
    size_t off = 0;
    msgpack_unpack_return ret = msgpack_unpack_next(unp, (const char *)r->raw, r->raw_len, &off);
    if (ret == MSGPACK_UNPACK_NOMEM_ERROR)
        return sw_record_errf(r, SW_ENOMEM, "out of memory decoding %zu bytes", r->raw_len);
    if (ret != MSGPACK_UNPACK_SUCCESS || off != r->raw_len || unp->data.type != MSGPACK_OBJECT_MAP)
        return sw_record_errf(r, SW_EFORMAT, "malformed msgpack record of %zu bytes", r->raw_len);
    r->root = unp->data;
    SW_TRY(check_value(r, &r->root, 1));
    const msgpack_object *k = sw_msgpack_map_get(&r->root, "kind");
    if (!k) return sw_record_errf(r, SW_EFORMAT, "no \"kind\" key");
    if (k->type != MSGPACK_OBJECT_STR || k->via.str.size == 0)
        return sw_record_errf(r, SW_EFORMAT, "\"kind\" is not a non-empty string");
    size_t n = k->via.str.size < sizeof r->kind - 1 ? k->via.str.size : sizeof r->kind - 1;
    memcpy(r->kind, k->via.str.ptr, n);
    r->kind[n] = '\0';
    if (memchr(r->kind, '\0', n)) return sw_record_errf(r, SW_EFORMAT, "\"kind\" contains NUL");
    return 0;
}

int sw_record_kind_class(const char *kind) {
    if (strcmp(kind, "sample") == 0 || strcmp(kind, "batch") == 0 || strcmp(kind, "tensors") == 0)
        return 1;
    if (strncmp(kind, "x-", 2) == 0 && kind[2]) return 2;
    return 0;
}

/* ---- per-kind checks ---------------------------------------------------------------------- */

static int32_t i32_at(const struct sw_tensor *t, int64_t i) {
    int32_t v;
    memcpy(&v, (const char *)t->data + 4 * i, 4);
    return v;
}

/* The tensor under key, if present (*present = 0 when absent), with dtype in allowed (a
 * SW_DTYPE_COUNT-terminated list) and rank ndim. */
static int want_tensor(const struct sw_record *r, const char *key, const enum sw_dtype *allowed,
                       int ndim, struct sw_tensor *t, int *present) {
    const msgpack_object *o = sw_record_field(r, key);
    *present = o != NULL;
    if (!o) return 0;
    SW_TRY(sw_record_tensor_parse(r, o, key, t));
    int ok = 0;
    for (const enum sw_dtype *d = allowed; *d != SW_DTYPE_COUNT; d++)
        ok |= t->dtype == *d;
    if (!ok)
        return sw_record_errf(r, SW_EFORMAT, "field '%s': dtype %s is not allowed here", key,
                              sw_dtype_name(t->dtype));
    if (t->ndim != ndim)
        return sw_record_errf(r, SW_EFORMAT, "field '%s': expected %d dimension%s, got %d", key,
                              ndim, ndim == 1 ? "" : "s", t->ndim);
    return 0;
}

static const enum sw_dtype only_i32[] = {SW_DTYPE_I32, SW_DTYPE_COUNT};
static const enum sw_dtype mask_types[] = {SW_DTYPE_U8, SW_DTYPE_BOOL, SW_DTYPE_I32,
                                           SW_DTYPE_COUNT};

static int same_shape(const struct sw_record *r, const char *key, const struct sw_tensor *t,
                      const char *ref_key, const struct sw_tensor *ref) {
    for (int i = 0; i < ref->ndim; i++)
        if (t->shape[i] != ref->shape[i]) {
            char a[96], b[96];
            return sw_record_errf(r, SW_EFORMAT, "field '%s': shape %s differs from '%s' %s", key,
                                  sw_tensor_shape_str(t, a, sizeof a), ref_key,
                                  sw_tensor_shape_str(ref, b, sizeof b));
        }
    return 0;
}

static int check_token_ids(const struct sw_record *r, const char *key, const struct sw_tensor *t) {
    int64_t n = sw_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        if (i32_at(t, i) < 0)
            return sw_record_errf(r, SW_EFORMAT, "field '%s': negative token id %d at %lld", key,
                                  i32_at(t, i), (long long)i);
    return 0;
}

static int check_labels(const struct sw_record *r, const char *key, const struct sw_tensor *t) {
    int64_t n = sw_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        int32_t v = i32_at(t, i);
        if (v < 0 && v != -100)
            return sw_record_errf(r, SW_EFORMAT,
                                  "field '%s': label %d at %lld (want a token id "
                                  "or -100)",
                                  key, v, (long long)i);
    }
    return 0;
}

/* One side of a sample: <prefix>input_ids and its optional per-token companions. */
static int check_side(const struct sw_record *r, const char *prefix, int *present) {
    char k_ids[48], k_lab[48], k_mask[48], k_pos[48];
    snprintf(k_ids, sizeof k_ids, "%sinput_ids", prefix);
    snprintf(k_lab, sizeof k_lab, "%slabels", prefix);
    snprintf(k_mask, sizeof k_mask, "%sloss_mask", prefix);
    snprintf(k_pos, sizeof k_pos, "%sposition_ids", prefix);
    struct sw_tensor ids, t;
    int has;
    SW_TRY(want_tensor(r, k_ids, only_i32, 1, &ids, present));
    if (!*present) {
        const char *orphans[] = {k_lab, k_mask, k_pos};
        for (int i = 0; i < 3; i++)
            if (sw_record_field(r, orphans[i]))
                return sw_record_errf(r, SW_EFORMAT, "field '%s' without '%s'", orphans[i], k_ids);
        return 0;
    }
    SW_TRY(check_token_ids(r, k_ids, &ids));
    SW_TRY(want_tensor(r, k_lab, only_i32, 1, &t, &has));
    if (has) {
        SW_TRY(same_shape(r, k_lab, &t, k_ids, &ids));
        SW_TRY(check_labels(r, k_lab, &t));
    }
    SW_TRY(want_tensor(r, k_mask, mask_types, 1, &t, &has));
    if (has) SW_TRY(same_shape(r, k_mask, &t, k_ids, &ids));
    SW_TRY(want_tensor(r, k_pos, only_i32, 1, &t, &has));
    if (has) {
        SW_TRY(same_shape(r, k_pos, &t, k_ids, &ids));
        SW_TRY(check_token_ids(r, k_pos, &t));
    }
    return 0;
}

static int check_optional_map(const struct sw_record *r, const char *key) {
    const msgpack_object *o = sw_record_field(r, key);
    if (o && o->type != MSGPACK_OBJECT_MAP)
        return sw_record_errf(r, SW_EFORMAT, "field '%s' is not a map", key);
    return 0;
}

static int check_sample(const struct sw_record *r) {
    int plain, chosen, rejected;
    SW_TRY(check_side(r, "", &plain));
    SW_TRY(check_side(r, "chosen_", &chosen));
    SW_TRY(check_side(r, "rejected_", &rejected));
    if (chosen != rejected)
        return sw_record_errf(r, SW_EFORMAT, "'%s_input_ids' without '%s_input_ids'",
                              chosen ? "chosen" : "rejected", chosen ? "rejected" : "chosen");
    if (!plain && !chosen)
        return sw_record_errf(r, SW_EFORMAT,
                              "no 'input_ids' (or 'chosen_input_ids' and "
                              "'rejected_input_ids')");
    const msgpack_object *l = sw_record_field(r, "label");
    if (l && l->type != MSGPACK_OBJECT_BOOLEAN)
        return sw_record_errf(r, SW_EFORMAT, "field 'label' is not a boolean");
    return check_optional_map(r, "meta");
}

static int check_count_field(const struct sw_record *r, const char *key, int required,
                             uint64_t *out) {
    if (!sw_record_field(r, key))
        return required ? sw_record_errf(r, SW_EFORMAT, "no '%s'", key) : 0;
    return sw_record_get_uint(r, key, out);
}

static int check_cu_seqlens(const struct sw_record *r, const struct sw_tensor *cu, int64_t total,
                            uint64_t num_samples, uint64_t num_tokens) {
    int64_t n = cu->shape[0];
    if (n < 1)
        return sw_record_errf(r, SW_EFORMAT, "field 'cu_seqlens' is empty (want n+1 values)");
    if (i32_at(cu, 0) != 0)
        return sw_record_errf(r, SW_EFORMAT, "field 'cu_seqlens' does not start at 0");
    for (int64_t i = 1; i < n; i++)
        if (i32_at(cu, i) < i32_at(cu, i - 1))
            return sw_record_errf(r, SW_EFORMAT, "field 'cu_seqlens' decreases at %lld",
                                  (long long)i);
    int64_t last = i32_at(cu, n - 1);
    if (last > total)
        return sw_record_errf(r, SW_EFORMAT,
                              "field 'cu_seqlens' ends at %lld, past the %lld "
                              "tokens of the batch",
                              (long long)last, (long long)total);
    if ((uint64_t)(n - 1) != num_samples)
        return sw_record_errf(r, SW_EFORMAT,
                              "'num_samples' is %llu but 'cu_seqlens' holds %lld "
                              "sequences",
                              (unsigned long long)num_samples, (long long)(n - 1));
    if ((uint64_t)last != num_tokens)
        return sw_record_errf(r, SW_EFORMAT, "'num_tokens' is %llu but 'cu_seqlens' ends at %lld",
                              (unsigned long long)num_tokens, (long long)last);
    return 0;
}

static int check_batch(const struct sw_record *r) {
    struct sw_tensor ids, t;
    int has;
    SW_TRY(want_tensor(r, "input_ids", only_i32, 2, &ids, &has));
    if (!has) return sw_record_errf(r, SW_EFORMAT, "no 'input_ids'");
    SW_TRY(check_token_ids(r, "input_ids", &ids));
    SW_TRY(want_tensor(r, "labels", only_i32, 2, &t, &has));
    if (has) {
        SW_TRY(same_shape(r, "labels", &t, "input_ids", &ids));
        SW_TRY(check_labels(r, "labels", &t));
    }
    SW_TRY(want_tensor(r, "position_ids", only_i32, 2, &t, &has));
    if (has) {
        SW_TRY(same_shape(r, "position_ids", &t, "input_ids", &ids));
        SW_TRY(check_token_ids(r, "position_ids", &t));
    }
    SW_TRY(want_tensor(r, "attention_mask", mask_types, 2, &t, &has));
    if (has) SW_TRY(same_shape(r, "attention_mask", &t, "input_ids", &ids));
    uint64_t num_samples, num_tokens, v;
    SW_TRY(check_count_field(r, "num_samples", 1, &num_samples));
    SW_TRY(check_count_field(r, "num_tokens", 1, &num_tokens));
    SW_TRY(check_count_field(r, "num_loss_tokens", 0, &v));
    SW_TRY(check_count_field(r, "max_seqlen", 0, &v));
    int64_t total = ids.shape[0] * ids.shape[1];
    if (num_tokens > (uint64_t)total)
        return sw_record_errf(r, SW_EFORMAT, "'num_tokens' %llu exceeds the batch's %lld slots",
                              (unsigned long long)num_tokens, (long long)total);
    SW_TRY(want_tensor(r, "cu_seqlens", only_i32, 1, &t, &has));
    if (has) SW_TRY(check_cu_seqlens(r, &t, total, num_samples, num_tokens));
    return 0;
}

static int check_tensors(const struct sw_record *r) {
    const char *name;
    size_t len;
    int rc = sw_record_get_str(r, "name", &name, &len);
    if (rc == SW_ENOTFOUND) return sw_record_errf(r, SW_EFORMAT, "no 'name'");
    SW_TRY(rc);
    const msgpack_object *m = sw_record_field(r, "tensors");
    if (!m) return sw_record_errf(r, SW_EFORMAT, "no 'tensors' map");
    if (m->type != MSGPACK_OBJECT_MAP)
        return sw_record_errf(r, SW_EFORMAT, "field 'tensors' is not a map");
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        struct sw_tensor t;
        char what[160];
        const msgpack_object_str *k = &m->via.map.ptr[i].key.via.str;
        snprintf(what, sizeof what, "tensors.%.*s", (int)(k->size > 120 ? 120 : k->size), k->ptr);
        SW_TRY(sw_record_tensor_parse(r, &m->via.map.ptr[i].val, what, &t));
    }
    return check_optional_map(r, "meta");
}

static int check_end(const struct sw_record *r) {
    uint64_t count;
    const char *sum;
    size_t len;
    int rc = sw_record_get_uint(r, "count", &count);
    if (rc == SW_ENOTFOUND) return sw_record_errf(r, SW_EFORMAT, "no 'count'");
    SW_TRY(rc);
    rc = sw_record_get_str(r, "checksum", &sum, &len);
    if (rc == SW_ENOTFOUND) return sw_record_errf(r, SW_EFORMAT, "no 'checksum'");
    SW_TRY(rc);
    int ok = len == 7 + 64 && memcmp(sum, "sha256:", 7) == 0;
    for (size_t i = 7; ok && i < len; i++)
        ok = (sum[i] >= '0' && sum[i] <= '9') || (sum[i] >= 'a' && sum[i] <= 'f');
    if (!ok)
        return sw_record_errf(r, SW_EFORMAT,
                              "checksum '%.*s' is not \"sha256:\" and 64 "
                              "lowercase hex digits",
                              (int)(len > 80 ? 80 : len), sum);
    return 0;
}

int sw_record_check_kind(const struct sw_record *r) {
    if (strcmp(r->kind, "sample") == 0) return check_sample(r);
    if (strcmp(r->kind, "batch") == 0) return check_batch(r);
    if (strcmp(r->kind, "tensors") == 0) return check_tensors(r);
    if (strcmp(r->kind, "end") == 0) return check_end(r);
    return 0;
}
