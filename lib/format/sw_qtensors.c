/* sw_qtensors — reading one quantized linear's tensors (layouts: sw_qtensors.h) into a host
 * struct sw_qweight. Converting once at load (GPTQ's int32 words into one code per byte or
 * nibble along the input, float16 scales into float, the v1 zero encoding undone) keeps the
 * device kernels to one simple formula per format. */
#include "sw_qtensors.h"

#include "sw_dtype.h"
#include "sw_err.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *file_of(const struct sw_st_set *s) {
    const struct sw_st_file *f = sw_st_set_nfiles(s) > 0 ? sw_st_set_file(s, 0) : NULL;
    return f ? sw_st_path(f) : "safetensors";
}

static const struct sw_st_entry *find(const struct sw_st_set *s, const char *p, const char *sfx) {
    char name[512];
    snprintf(name, sizeof name, "%s%s", p, sfx);
    return sw_st_set_find(s, name);
}

static int64_t numel(const struct sw_st_entry *e) {
    int64_t n = 1;
    for (int d = 0; d < e->ndim; d++)
        n *= e->shape[d];
    return n;
}

static int bad(const struct sw_st_set *s, const struct sw_st_entry *e, const char *what) {
    char shape[96];
    int k = snprintf(shape, sizeof shape, "[");
    for (int d = 0; d < e->ndim && k < (int)sizeof shape; d++)
        k += snprintf(shape + k, sizeof shape - (size_t)k, "%s%lld", d ? ", " : "",
                      (long long)e->shape[d]);
    if (k < (int)sizeof shape) snprintf(shape + k, sizeof shape - (size_t)k, "]");
    return sw_err_set(SW_EFORMAT, "%s: tensor '%s' (%s %s): %s", file_of(s), e->name,
                      sw_dtype_name(e->dtype), shape, what);
}

static int is2(const struct sw_st_entry *e, int64_t a, int64_t b) {
    return e->ndim == 2 && e->shape[0] == a && e->shape[1] == b;
}

/* n floats of a float tensor into a new host array. */
static int floats(const struct sw_st_set *s, const struct sw_st_entry *e, int64_t n, float **out) {
    if (!sw_dtype_is_float(e->dtype) || numel(e) != n)
        return bad(s, e, "expected float values of the right count");
    *out = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!*out) return sw_err_set(SW_ENOMEM, "out of memory reading '%s'", e->name);
    if (sw_dtype_convert(SW_DTYPE_F32, *out, e->dtype, e->data, (size_t)n) < 0)
        return bad(s, e, "cannot convert to float32");
    return 0;
}

static uint32_t u32(const void *p, int64_t i) {
    uint32_t v;
    memcpy(&v, (const char *)p + 4 * i, 4);
    return v;
}

/* A constant zero point over every group (symmetric quantization): keep one value. */
static void fold_zero(struct sw_qweight *q) {
    int64_t n = q->rows * q->ngroups;
    for (int64_t i = 1; i < n; i++)
        if (q->zero[i] != q->zero[0]) return;
    q->zero_const = n ? q->zero[0] : 0.0f;
    free(q->zero);
    q->zero = NULL;
}

static int read_gptq(const struct sw_st_set *s, const char *p, int64_t rows, int64_t cols, int v2,
                     const struct sw_st_entry *qw, struct sw_qweight *q) {
    const struct sw_st_entry *qz = find(s, p, ".qzeros"), *sc = find(s, p, ".scales");
    const struct sw_st_entry *gi = find(s, p, ".g_idx");
    if (!qz || !sc)
        return sw_err_set(SW_EFORMAT, "%s: '%s.qweight' without %s", file_of(s), p,
                          !qz ? "qzeros" : "scales");
    if (qw->dtype != SW_DTYPE_I32 && qw->dtype != SW_DTYPE_U32) return bad(s, qw, "not int32");
    if (qw->ndim != 2 || qw->shape[1] != rows || cols <= 0)
        return bad(s, qw, "expected [in·bits/32, out]");
    int bits = (int)(qw->shape[0] * 32 / cols);
    if ((bits != 4 && bits != 8) || qw->shape[0] * 32 != (int64_t)bits * cols)
        return bad(s, qw, "packs neither 4 nor 8 bits per input row");
    int pf = 32 / bits;
    if (bits == 4 && cols % 2) return bad(s, qw, "an odd input size");
    uint32_t maxq = (1u << bits) - 1;
    if (sc->ndim != 2 || sc->shape[1] != rows || sc->shape[0] <= 0)
        return bad(s, sc, "expected [groups, out]");
    int64_t ng = sc->shape[0];
    if (rows % pf != 0 || (qz->dtype != SW_DTYPE_I32 && qz->dtype != SW_DTYPE_U32) ||
        !is2(qz, ng, rows / pf))
        return bad(s, qz, "expected int32 [groups, out·bits/32]");
    if (gi && ((gi->dtype != SW_DTYPE_I32 && gi->dtype != SW_DTYPE_I64) || numel(gi) != cols))
        return bad(s, gi, "expected int32 [in]");
    q->fmt = bits == 8 ? SW_QFMT_INT8 : SW_QFMT_INT4;
    q->ngroups = ng;
    q->group = cols % ng == 0 ? cols / ng : cols;
    float *st = NULL;
    SW_TRY(floats(s, sc, ng * rows, &st));
    q->scale = malloc((size_t)(rows * ng) * sizeof(float));
    q->zero = malloc((size_t)(rows * ng) * sizeof(float));
    q->q = malloc((size_t)(bits == 8 ? rows * cols : rows * cols / 2) + 1);
    if (gi) q->g_idx = malloc((size_t)cols * sizeof(int32_t));
    if (!q->scale || !q->zero || !q->q || (gi && !q->g_idx)) {
        free(st);
        return sw_err_set(SW_ENOMEM, "out of memory reading '%s'", p);
    }
    for (int64_t g = 0; g < ng; g++)
        for (int64_t r = 0; r < rows; r++) {
            q->scale[r * ng + g] = st[g * rows + r];
            uint32_t z = (u32(qz->data, g * (rows / pf) + r / pf) >> ((r % pf) * bits)) & maxq;
            q->zero[r * ng + g] = (float)z + (v2 ? 0.0f : 1.0f);
        }
    free(st);
    if (gi) {
        int identity = q->group * ng == cols;
        for (int64_t i = 0; i < cols; i++) {
            int64_t v = gi->dtype == SW_DTYPE_I64 ? ((const int64_t *)gi->data)[i]
                                                  : (int64_t)(int32_t)u32(gi->data, i);
            if (v < 0 || v >= ng) return bad(s, gi, "a group index outside [0, groups)");
            q->g_idx[i] = (int32_t)v;
            identity = identity && v == i / q->group;
        }
        if (identity) free(q->g_idx), q->g_idx = NULL;
    } else if (q->group * ng != cols) {
        return bad(s, sc, "groups do not divide the input without a g_idx");
    }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < cols; i++) {
            uint8_t v = (uint8_t)((u32(qw->data, (i / pf) * rows + r) >> ((i % pf) * bits)) & maxq);
            if (bits == 8)
                q->q[r * cols + i] = v;
            else if (i % 2 == 0)
                q->q[r * (cols / 2) + i / 2] = v;
            else
                q->q[r * (cols / 2) + i / 2] |= (uint8_t)(v << 4);
        }
    fold_zero(q);
    return 1;
}

/* AutoAWQ's GEMM layout (4 bits): qweight int32 [in, out/8] and qzeros int32 [groups, out/8]
 * packed along the output with nibble k holding output 8c + order[k]; scales [groups, out];
 * W[j, i] = scales[g, j] · (q − zero), the zero as stored. */
static int read_awq(const struct sw_st_set *s, const char *p, int64_t rows, int64_t cols,
                    const struct sw_st_entry *qw, struct sw_qweight *q) {
    static const int order[8] = {0, 2, 4, 6, 1, 3, 5, 7};
    const struct sw_st_entry *qz = find(s, p, ".qzeros"), *sc = find(s, p, ".scales");
    if (!qz || !sc)
        return sw_err_set(SW_EFORMAT, "%s: '%s.qweight' without %s", file_of(s), p,
                          !qz ? "qzeros" : "scales");
    if (rows % 8 || cols % 2) return bad(s, qw, "AWQ needs out % 8 == 0 and an even input");
    if (sc->ndim != 2 || sc->shape[1] != rows || sc->shape[0] <= 0 || cols % sc->shape[0])
        return bad(s, sc, "expected [groups, out] with groups dividing the input");
    int64_t ng = sc->shape[0], ow = rows / 8;
    if ((qz->dtype != SW_DTYPE_I32 && qz->dtype != SW_DTYPE_U32) || !is2(qz, ng, ow))
        return bad(s, qz, "expected int32 [groups, out/8]");
    q->fmt = SW_QFMT_INT4;
    q->ngroups = ng;
    q->group = cols / ng;
    float *st = NULL;
    SW_TRY(floats(s, sc, ng * rows, &st));
    q->scale = malloc((size_t)(rows * ng) * sizeof(float));
    q->zero = malloc((size_t)(rows * ng) * sizeof(float));
    q->q = calloc((size_t)(rows * cols / 2) + 1, 1);
    if (!q->scale || !q->zero || !q->q) {
        free(st);
        return sw_err_set(SW_ENOMEM, "out of memory reading '%s'", p);
    }
    for (int64_t g = 0; g < ng; g++)
        for (int64_t c = 0; c < ow; c++) {
            uint32_t zw = u32(qz->data, g * ow + c);
            for (int k = 0; k < 8; k++) {
                int64_t r = c * 8 + order[k];
                q->scale[r * ng + g] = st[g * rows + r];
                q->zero[r * ng + g] = (float)((zw >> (4 * k)) & 15);
            }
        }
    free(st);
    for (int64_t i = 0; i < cols; i++)
        for (int64_t c = 0; c < ow; c++) {
            uint32_t word = u32(qw->data, i * ow + c);
            for (int k = 0; k < 8; k++) {
                int64_t r = c * 8 + order[k];
                uint8_t v = (uint8_t)((word >> (4 * k)) & 15);
                q->q[r * (cols / 2) + i / 2] |= (uint8_t)(i % 2 ? v << 4 : v);
            }
        }
    fold_zero(q);
    return 1;
}

static int read_nf4(const struct sw_st_set *s, const char *p, int64_t rows, int64_t cols,
                    const struct sw_st_entry *w, const struct sw_st_entry *am,
                    struct sw_qweight *q) {
    const struct sw_st_entry *qs = find(s, p, ".weight.quant_state.bitsandbytes__nf4");
    const struct sw_st_entry *qm = find(s, p, ".weight.quant_map");
    if (!qs || !qm)
        return sw_err_set(SW_EFORMAT, "%s: '%s.weight.absmax' without %s", file_of(s), p,
                          !qs ? "quant_state.bitsandbytes__nf4" : "quant_map");
    json_error_t jerr;
    json_t *j = json_loadb(qs->data, qs->nbytes, 0, &jerr);
    if (!json_is_object(j)) {
        json_decref(j);
        return bad(s, qs, "not a JSON object");
    }
    const json_t *shape = json_object_get(j, "shape");
    int64_t bs = json_integer_value(json_object_get(j, "blocksize"));
    int ok = json_is_array(shape) && json_array_size(shape) == 2 &&
             json_integer_value(json_array_get(shape, 0)) == rows &&
             json_integer_value(json_array_get(shape, 1)) == cols && bs > 0 && bs % 2 == 0;
    const json_t *nb_j = json_object_get(j, "nested_blocksize");
    int nested = json_object_get(j, "nested_offset") != NULL;
    if (nested && nb_j && json_integer_value(nb_j) != 256) ok = 0;
    float offset = (float)json_number_value(json_object_get(j, "nested_offset"));
    json_decref(j);
    if (!ok) return bad(s, qs, "shape differs from the model's or an unsupported blocksize");
    int64_t n = rows * cols, nb = (n + bs - 1) / bs;
    if (w->dtype != SW_DTYPE_U8 || numel(w) != (n + 1) / 2)
        return bad(s, w, "expected uint8 codes");
    q->fmt = SW_QFMT_NF4;
    q->group = bs;
    q->ngroups = nb;
    q->q = malloc((size_t)(n + 1) / 2 + 1);
    if (!q->q) return sw_err_set(SW_ENOMEM, "out of memory reading '%s'", p);
    memcpy(q->q, w->data, (size_t)(n + 1) / 2);
    SW_TRY(floats(s, qm, 16, &q->code));
    if (!nested) {
        if (am->dtype == SW_DTYPE_U8) return bad(s, am, "uint8 absmax without nested_offset");
        SW_TRY(floats(s, am, nb, &q->scale));
        return 1;
    }
    const struct sw_st_entry *na = find(s, p, ".weight.nested_absmax");
    const struct sw_st_entry *nm = find(s, p, ".weight.nested_quant_map");
    if (!na || !nm)
        return sw_err_set(SW_EFORMAT, "%s: '%s' is double-quantized but lacks %s", file_of(s), p,
                          !na ? "weight.nested_absmax" : "weight.nested_quant_map");
    if (am->dtype != SW_DTYPE_U8 || numel(am) != nb) return bad(s, am, "expected uint8 [blocks]");
    q->qabsmax = malloc((size_t)nb + 1);
    if (!q->qabsmax) return sw_err_set(SW_ENOMEM, "out of memory reading '%s'", p);
    memcpy(q->qabsmax, am->data, (size_t)nb);
    SW_TRY(floats(s, na, (nb + 255) / 256, &q->nested_absmax));
    SW_TRY(floats(s, nm, 256, &q->nested_map));
    q->nested_offset = offset;
    return 1;
}

static int read_int8_bnb(const struct sw_st_set *s, const char *p, int64_t rows, int64_t cols,
                         const struct sw_st_entry *w, const struct sw_st_entry *scb,
                         struct sw_qweight *q) {
    if (!is2(w, rows, cols)) return bad(s, w, "expected [out, in]");
    q->fmt = SW_QFMT_INT8;
    q->group = cols;
    q->ngroups = 1;
    q->zero_const = 128.0f;
    SW_TRY(floats(s, scb, rows, &q->scale));
    for (int64_t r = 0; r < rows; r++)
        q->scale[r] /= 127.0f;
    q->q = malloc((size_t)(rows * cols) + 1);
    if (!q->q) return sw_err_set(SW_ENOMEM, "out of memory reading '%s'", p);
    const int8_t *src = w->data;
    for (int64_t i = 0; i < rows * cols; i++)
        q->q[i] = (uint8_t)(src[i] + 128);
    return 1;
}

static int read_fp8(const struct sw_st_set *s, const char *p, int64_t rows, int64_t cols,
                    const struct sw_st_entry *w, struct sw_qweight *q) {
    const struct sw_st_entry *ws = find(s, p, ".weight_scale");
    if (!ws)
        return sw_err_set(SW_EFORMAT, "%s: '%s.weight' is F8_E4M3 without weight_scale", file_of(s),
                          p);
    if (!is2(w, rows, cols)) return bad(s, w, "expected [out, in]");
    int64_t ns = numel(ws);
    if (ns != rows && ns != 1) return bad(s, ws, "expected [out, 1] or one value");
    q->fmt = SW_QFMT_FP8;
    q->group = cols;
    q->ngroups = 1;
    float *sc = NULL;
    SW_TRY(floats(s, ws, ns, &sc));
    q->scale = malloc((size_t)rows * sizeof(float) + 1);
    q->q = malloc((size_t)(rows * cols) + 1);
    if (!q->scale || !q->q) {
        free(sc);
        return sw_err_set(SW_ENOMEM, "out of memory reading '%s'", p);
    }
    for (int64_t r = 0; r < rows; r++)
        q->scale[r] = sc[ns == 1 ? 0 : r];
    free(sc);
    memcpy(q->q, w->data, (size_t)(rows * cols));
    return 1;
}

int sw_qtensors_read(const struct sw_st_set *s, const char *prefix, int64_t rows, int64_t cols,
                     int gptq_v2, struct sw_qweight *out) {
    memset(out, 0, sizeof *out);
    out->rows = rows;
    out->cols = cols;
    const struct sw_st_entry *w = find(s, prefix, ".weight"), *e;
    int rc = 0;
    if ((e = find(s, prefix, ".qweight")) && e->ndim == 2 && e->shape[0] == cols &&
        e->shape[1] * 8 == rows && (e->dtype == SW_DTYPE_I32 || e->dtype == SW_DTYPE_U32))
        rc = read_awq(s, prefix, rows, cols, e, out); /* [in, out/8]: AutoAWQ GEMM */
    else if (e)
        rc = read_gptq(s, prefix, rows, cols, gptq_v2, e, out);
    else if (w && (e = find(s, prefix, ".weight.absmax")))
        rc = read_nf4(s, prefix, rows, cols, w, e, out);
    else if (w && w->dtype == SW_DTYPE_I8 &&
             ((e = find(s, prefix, ".SCB")) || (e = find(s, prefix, ".weight.SCB"))))
        rc = read_int8_bnb(s, prefix, rows, cols, w, e, out);
    else if (w && w->dtype == SW_DTYPE_F8_E4M3)
        rc = read_fp8(s, prefix, rows, cols, w, out);
    if (rc <= 0) sw_qweight_free_host(out);
    return rc;
}

int sw_qtensors_is_aux(const char *name) {
    static const char *const sfx[] = {".qweight",
                                      ".qzeros",
                                      ".scales",
                                      ".g_idx",
                                      ".weight.absmax",
                                      ".weight.quant_map",
                                      ".weight.nested_absmax",
                                      ".weight.nested_quant_map",
                                      ".weight.quant_state.bitsandbytes__nf4",
                                      ".SCB",
                                      ".weight.SCB",
                                      ".weight_format",
                                      ".weight_scale"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof sfx / sizeof *sfx; i++) {
        size_t k = strlen(sfx[i]);
        if (n > k && strcmp(name + n - k, sfx[i]) == 0) return 1;
    }
    return 0;
}
