/* sw-quant inspect on a GGUF file — the header (version, alignment, counts), every metadata
 * key with its type and value (long arrays shortened to their first entries and their length),
 * every tensor (ggml type, shape, bytes, offset) and the totals per type. The file is fully
 * validated first by sw_gguf_open (lib/quant/sw_gguf_read.c), so a file inspect lists is one
 * the exporter's reader accepts. Shapes are printed outermost first, like the safetensors
 * listing (ggml's ne[] reversed: a [out, in] weight is ne = {in, out}). */
#include "quant.h"

#include "sw_err.h"
#include "sw_gguf.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_HEAD 8 /* entries shown of a long array */

/* A printable rendering of untrusted bytes: printable ASCII as is, the rest as \xNN, cut at
 * max bytes of input (with "..." appended). */
static void show_bytes(FILE *out, const char *p, uint64_t n, uint64_t max) {
    for (uint64_t i = 0; i < n && i < max; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            fputc(c, out);
        else if (c == '\\')
            fputs("\\\\", out);
        else if (c == '\n')
            fputs("\\n", out);
        else
            fprintf(out, "\\x%02x", c);
    }
    if (n > max) fputs("...", out);
}

static void show_scalar(FILE *out, const uint8_t *p, int vt) {
    struct sw_gguf_kv tmp = {.key = "", .type = (enum sw_gguf_vtype)vt, .data = p};
    int64_t v;
    double d;
    if (vt == SW_GGUF_BOOL)
        fputs(*p ? "true" : "false", out);
    else if (vt == SW_GGUF_FLOAT32 || vt == SW_GGUF_FLOAT64) {
        if (sw_gguf_kv_float(&tmp, &d) == 0) fprintf(out, "%.9g", d);
    } else if (vt == SW_GGUF_UINT64) {
        uint64_t u;
        memcpy(&u, p, 8);
        fprintf(out, "%llu", (unsigned long long)u);
    } else if (sw_gguf_kv_int(&tmp, &v) == 0)
        fprintf(out, "%lld", (long long)v);
}

static void print_kv_text(const struct sw_gguf_kv *kv, FILE *out) {
    fprintf(out, "  %s", kv->key);
    if (kv->type == SW_GGUF_ARRAY) {
        fprintf(out, " [%s x %llu] = [", sw_gguf_vtype_name(kv->arr_type),
                (unsigned long long)kv->n);
        size_t es = sw_gguf_vtype_size(kv->arr_type);
        for (uint64_t i = 0; i < kv->n && i < ARRAY_HEAD; i++) {
            if (i) fputs(", ", out);
            if (kv->arr_type == SW_GGUF_STRING) {
                fputc('"', out);
                show_bytes(out, kv->strs[i].p, kv->strs[i].n, 40);
                fputc('"', out);
            } else
                show_scalar(out, kv->data + i * es, kv->arr_type);
        }
        fprintf(out, "%s]\n", kv->n > ARRAY_HEAD ? ", ..." : "");
    } else if (kv->type == SW_GGUF_STRING) {
        fprintf(out, " (str) = \"");
        show_bytes(out, kv->str.p, kv->str.n, 120);
        fputs("\"\n", out);
    } else {
        fprintf(out, " (%s) = ", sw_gguf_vtype_name(kv->type));
        show_scalar(out, kv->data, kv->type);
        fputc('\n', out);
    }
}

static void shape_text(const struct sw_gguf_tensor *t, char *buf, size_t cap) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int d = t->n_dims - 1; d >= 0 && n < cap; d--)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d == t->n_dims - 1 ? "" : ", ",
                              (long long)t->ne[d]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* JSON string of untrusted bytes: as is when valid UTF-8, else with \xNN escapes. */
static json_t *jstr(const char *p, uint64_t n) {
    json_t *s = json_stringn(p, (size_t)n);
    if (s) return s;
    char *buf = malloc((size_t)n * 4 + 1);
    if (!buf) return NULL;
    size_t k = 0;
    for (uint64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f)
            buf[k++] = (char)c;
        else
            k += (size_t)sprintf(buf + k, "\\x%02x", c);
    }
    s = json_stringn(buf, k);
    free(buf);
    return s;
}

static json_t *jscalar(const uint8_t *p, int vt) {
    struct sw_gguf_kv tmp = {.key = "", .type = (enum sw_gguf_vtype)vt, .data = p};
    int64_t v;
    double d;
    if (vt == SW_GGUF_BOOL) return json_boolean(*p);
    if (vt == SW_GGUF_FLOAT32 || vt == SW_GGUF_FLOAT64)
        return sw_gguf_kv_float(&tmp, &d) == 0 ? json_real(d) : json_null();
    if (vt == SW_GGUF_UINT64) {
        uint64_t u;
        memcpy(&u, p, 8);
        return u <= INT64_MAX ? json_integer((json_int_t)u) : json_real((double)u);
    }
    return sw_gguf_kv_int(&tmp, &v) == 0 ? json_integer(v) : json_null();
}

static json_t *kv_json(const struct sw_gguf_kv *kv) {
    if (kv->type == SW_GGUF_STRING)
        return json_pack("{s:s, s:o}", "type", "str", "value", jstr(kv->str.p, kv->str.n));
    if (kv->type != SW_GGUF_ARRAY)
        return json_pack("{s:s, s:o}", "type", sw_gguf_vtype_name(kv->type), "value",
                         jscalar(kv->data, kv->type));
    json_t *head = json_array();
    size_t es = sw_gguf_vtype_size(kv->arr_type);
    for (uint64_t i = 0; i < kv->n && i < ARRAY_HEAD; i++)
        json_array_append_new(head, kv->arr_type == SW_GGUF_STRING
                                        ? jstr(kv->strs[i].p, kv->strs[i].n)
                                        : jscalar(kv->data + i * es, kv->arr_type));
    return json_pack("{s:s, s:s, s:I, s:o}", "type", "arr", "elem",
                     sw_gguf_vtype_name(kv->arr_type), "n", (json_int_t)kv->n, "head", head);
}

int sw_quant_inspect_gguf(const char *path, int json, FILE *out) {
    struct sw_gguf *g = NULL;
    SW_TRY(sw_gguf_open(path, &g));
    int64_t params = 0, by_type_n[SW_GGML_TYPE_COUNT] = {0};
    uint64_t bytes = 0, by_type_b[SW_GGML_TYPE_COUNT] = {0};
    for (int i = 0; i < sw_gguf_tensor_count(g); i++) {
        const struct sw_gguf_tensor *t = sw_gguf_tensor_get(g, i);
        params += sw_gguf_tensor_numel(t);
        bytes += t->nbytes;
        by_type_n[t->type]++;
        by_type_b[t->type] += t->nbytes;
    }
    int rc = 0, write_errno = 0;
    errno = 0;
    if (json) {
        json_t *meta = json_object(), *tensors = json_array(), *types = json_object();
        for (int i = 0; i < sw_gguf_kv_count(g); i++) {
            const struct sw_gguf_kv *kv = sw_gguf_kv_get(g, i);
            json_object_set_new(meta, kv->key, kv_json(kv));
        }
        for (int i = 0; i < sw_gguf_tensor_count(g); i++) {
            const struct sw_gguf_tensor *t = sw_gguf_tensor_get(g, i);
            json_t *shape = json_array(), *ne = json_array();
            for (int d = t->n_dims - 1; d >= 0; d--)
                json_array_append_new(shape, json_integer(t->ne[d]));
            for (int d = 0; d < t->n_dims; d++)
                json_array_append_new(ne, json_integer(t->ne[d]));
            json_array_append_new(
                tensors, json_pack("{s:s, s:s, s:o, s:o, s:I, s:I, s:I}", "name", t->name, "type",
                                   sw_ggml_type_name(t->type), "shape", shape, "ne", ne, "params",
                                   (json_int_t)sw_gguf_tensor_numel(t), "bytes",
                                   (json_int_t)t->nbytes, "offset", (json_int_t)t->offset));
        }
        for (int k = 0; k < SW_GGML_TYPE_COUNT; k++)
            if (by_type_n[k])
                json_object_set_new(types, sw_ggml_type_name(k),
                                    json_pack("{s:I, s:I}", "tensors", (json_int_t)by_type_n[k],
                                              "bytes", (json_int_t)by_type_b[k]));
        json_t *doc =
            json_pack("{s:s, s:s, s:i, s:i, s:I, s:I, s:o, s:o, s:o, s:i, s:I, s:I}", "path", path,
                      "format", "gguf", "version", (int)sw_gguf_version(g), "alignment",
                      (int)sw_gguf_alignment(g), "data_offset", (json_int_t)sw_gguf_data_offset(g),
                      "file_size", (json_int_t)sw_gguf_file_size(g), "metadata", meta, "tensors",
                      tensors, "types", types, "total_tensors", sw_gguf_tensor_count(g),
                      "total_params", (json_int_t)params, "total_bytes", (json_int_t)bytes);
        if (!doc)
            rc = sw_err_set(SW_ENOMEM, "out of memory");
        else if (json_dumpf(doc, out,
                            JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) == 0)
            fputc('\n', out);
        write_errno = errno;
        json_decref(doc);
    } else {
        fprintf(out, "file: %s\n", path);
        fprintf(out,
                "gguf: version %u, alignment %u, %d keys, %d tensors, data at byte %llu, "
                "%llu bytes\n",
                sw_gguf_version(g), sw_gguf_alignment(g), sw_gguf_kv_count(g),
                sw_gguf_tensor_count(g), (unsigned long long)sw_gguf_data_offset(g),
                (unsigned long long)sw_gguf_file_size(g));
        fprintf(out, "metadata:\n");
        for (int i = 0; i < sw_gguf_kv_count(g); i++)
            print_kv_text(sw_gguf_kv_get(g, i), out);
        fprintf(out, "tensors:\n");
        for (int i = 0; i < sw_gguf_tensor_count(g); i++) {
            const struct sw_gguf_tensor *t = sw_gguf_tensor_get(g, i);
            char shape[96];
            shape_text(t, shape, sizeof shape);
            fprintf(out, "  %-40s %-6s %-18s %12zu bytes  at %llu\n", t->name,
                    sw_ggml_type_name(t->type), shape, t->nbytes, (unsigned long long)t->offset);
        }
        fprintf(out, "types:");
        for (int k = 0; k < SW_GGML_TYPE_COUNT; k++)
            if (by_type_n[k])
                fprintf(out, " %s %lld (%llu bytes)", sw_ggml_type_name(k), (long long)by_type_n[k],
                        (unsigned long long)by_type_b[k]);
        fprintf(out, "\ntotal: %d tensors, %lld parameters, %llu bytes\n", sw_gguf_tensor_count(g),
                (long long)params, (unsigned long long)bytes);
        write_errno = errno;
    }
    sw_gguf_close(g);
    if (rc == 0 && (fflush(out) != 0 || ferror(out)))
        rc = errno == EPIPE || write_errno == EPIPE ? SW_EPIPE
                                                    : sw_err_errno("cannot write the report");
    return rc;
}
