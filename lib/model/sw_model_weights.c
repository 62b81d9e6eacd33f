/* sw_model_weights — filling the model's parameters: from a safetensors set (HF checkpoint,
 * every expected name and shape checked, F32/F16/BF16/F64 converted to float32 on the host
 * and uploaded), and the deterministic random init used to pre-train from scratch.
 * Decoder linear weights may be held quantized (struct sw_qweight): read from an HF quantized
 * folder's layout (lib/format/sw_qtensors.h), or quantized here while loading (QLoRA's
 * quantize-at-load), one tensor at a time through a host buffer, so neither the float model
 * nor a second copy of it is ever allocated. */
#include "sw_model_impl.h"

#include "sw_err.h"
#include "sw_log.h"
#include "sw_parallel.h"
#include "sw_qtensors.h"
#include "sw_rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *set_name(const struct sw_st_set *s) {
    const struct sw_st_file *f = sw_st_set_nfiles(s) > 0 ? sw_st_set_file(s, 0) : NULL;
    return f ? sw_st_path(f) : "safetensors";
}

/* Copy entry e into parameter p (shape already checked) through a host float buffer. */
static int fill_from_entry(struct sw_model *m, struct sw_param *p, const struct sw_st_entry *e,
                           const char *where) {
    int64_t n = p->value.ndim == 2 ? p->value.shape[0] * p->value.shape[1] : p->value.shape[0];
    size_t bytes = (size_t)n * sizeof(float);
    if (e->dtype != SW_DTYPE_F32 && e->dtype != SW_DTYPE_F16 && e->dtype != SW_DTYPE_BF16 &&
        e->dtype != SW_DTYPE_F64)
        return sw_err_set(SW_EFORMAT, "%s: tensor '%s' has dtype %s (want F32, F16, BF16 or F64)",
                          where, e->name, sw_dtype_name(e->dtype));
    if (e->dtype == SW_DTYPE_F32 && m->be->device == SW_DEVICE_CPU)
        return m->be->upload(m->be, p->value.data, e->data, bytes);
    float *h = malloc(bytes ? bytes : 1);
    if (!h) return sw_err_set(SW_ENOMEM, "%s: out of memory converting '%s'", where, e->name);
    int rc = sw_dtype_convert(SW_DTYPE_F32, h, e->dtype, e->data, (size_t)n);
    if (rc < 0)
        rc = sw_err_set(rc, "%s: cannot convert tensor '%s' from %s", where, e->name,
                        sw_dtype_name(e->dtype));
    else
        rc = m->be->upload(m->be, p->value.data, h, bytes);
    free(h);
    return rc;
}

/* Find p's tensor in s, check its shape, fill p. */
static int load_param(struct sw_model *m, struct sw_param *p, const char *name,
                      const struct sw_st_set *s) {
    const char *where = set_name(s);
    char want[64];
    sw_model_shape_str(p, want, sizeof want);
    const struct sw_st_entry *e = sw_st_set_find(s, name);
    if (!e)
        return sw_err_set(SW_ENOTFOUND, "%s: missing tensor '%s' (expected shape %s)", where, name,
                          want);
    int ok = e->ndim == p->value.ndim;
    for (int d = 0; ok && d < e->ndim; d++)
        ok = e->shape[d] == p->value.shape[d];
    if (!ok) {
        char got[128];
        int k = snprintf(got, sizeof got, "[");
        for (int d = 0; d < e->ndim && k < (int)sizeof got; d++)
            k += snprintf(got + k, sizeof got - (size_t)k, "%s%lld", d ? ", " : "",
                          (long long)e->shape[d]);
        if (k < (int)sizeof got) snprintf(got + k, sizeof got - (size_t)k, "]");
        return sw_err_set(SW_EFORMAT, "%s: tensor '%s' has shape %s, the config implies %s", where,
                          name, got, want);
    }
    return fill_from_entry(m, p, e, where);
}

/* ---- quantized linear weights ---- */

/* Bytes of each array of a struct sw_qweight (0 where it has none). */
struct qarr {
    size_t q, scale, zero, g_idx, code, qabsmax, nested_absmax, nested_map;
};
static struct qarr qarr_sizes(const struct sw_qweight *h) {
    struct qarr a = {0};
    int64_t n = h->rows * h->cols, f = sizeof(float);
    switch (h->fmt) {
    case SW_QFMT_INT8:
    case SW_QFMT_INT4:
        a.q = (size_t)(h->fmt == SW_QFMT_INT8 ? n : n / 2);
        a.scale = (size_t)(h->rows * h->ngroups * f);
        a.zero = h->zero ? a.scale : 0;
        a.g_idx = h->g_idx ? (size_t)h->cols * sizeof(int32_t) : 0;
        break;
    case SW_QFMT_NF4:
        a.q = (size_t)(n + 1) / 2;
        a.code = 16 * sizeof(float);
        a.scale = h->scale ? (size_t)(h->ngroups * f) : 0;
        a.qabsmax = h->qabsmax ? (size_t)h->ngroups : 0;
        a.nested_absmax = h->qabsmax ? (size_t)((h->ngroups + 255) / 256 * f) : 0;
        a.nested_map = h->qabsmax ? 256 * sizeof(float) : 0;
        break;
    case SW_QFMT_FP8:
        a.q = (size_t)n;
        a.scale = (size_t)(h->rows * f);
        break;
    default: break;
    }
    return a;
}

void sw_model_qweight_free(struct sw_model *m, struct sw_qweight *q) {
    if (!q) return;
    struct sw_backend *be = m->be;
    be->free(be, q->q), be->free(be, q->scale), be->free(be, q->zero), be->free(be, q->g_idx);
    be->free(be, q->code), be->free(be, q->qabsmax), be->free(be, q->nested_absmax);
    be->free(be, q->nested_map);
    free(q);
}

static int up(struct sw_model *m, void **dst, const void *src, size_t bytes) {
    *dst = NULL;
    if (!src || !bytes) return 0;
    if (!(*dst = m->be->alloc(m->be, bytes)))
        return sw_err_wrap(SW_ENOMEM, "model: quantized weight (%zu bytes)", bytes);
    return m->be->upload(m->be, *dst, src, bytes);
}

int sw_model_qweight_upload(struct sw_model *m, const struct sw_qweight *h,
                            struct sw_qweight **out) {
    struct sw_qweight *d = calloc(1, sizeof *d);
    if (!d) return sw_err_set(SW_ENOMEM, "model: out of memory");
    *d = *h;
    d->q = NULL, d->scale = d->zero = d->code = d->nested_absmax = d->nested_map = NULL;
    d->g_idx = NULL, d->qabsmax = NULL;
    struct qarr a = qarr_sizes(h);
    int rc = up(m, (void **)&d->q, h->q, a.q);
    if (rc == 0) rc = up(m, (void **)&d->scale, h->scale, a.scale);
    if (rc == 0) rc = up(m, (void **)&d->zero, h->zero, a.zero);
    if (rc == 0) rc = up(m, (void **)&d->g_idx, h->g_idx, a.g_idx);
    if (rc == 0) rc = up(m, (void **)&d->code, h->code, a.code);
    if (rc == 0) rc = up(m, (void **)&d->qabsmax, h->qabsmax, a.qabsmax);
    if (rc == 0) rc = up(m, (void **)&d->nested_absmax, h->nested_absmax, a.nested_absmax);
    if (rc == 0) rc = up(m, (void **)&d->nested_map, h->nested_map, a.nested_map);
    if (rc < 0) {
        sw_model_qweight_free(m, d);
        return rc;
    }
    *out = d;
    return 0;
}

/* p's storage becomes the quantized h (uploaded): the float storage, if any, is freed. */
static int set_quantized(struct sw_model *m, struct sw_param *p, const struct sw_qweight *h) {
    struct sw_qweight *d;
    SW_TRY(sw_model_qweight_upload(m, h, &d));
    sw_model_qweight_free(m, p->quant);
    m->be->free(m->be, p->value.data);
    m->be->free(m->be, p->grad.data);
    p->value.data = p->grad.data = NULL;
    p->quant = d;
    p->trainable = 0; /* a quantized base is frozen */
    return 0;
}

/* Float storage for p (a linear weight left to the loader, or one held quantized before). */
static int ensure_float(struct sw_model *m, struct sw_param *p) {
    if (p->value.data) return 0;
    sw_model_qweight_free(m, p->quant);
    p->quant = NULL;
    size_t bytes = (size_t)(p->value.shape[0] * p->value.shape[1]) * sizeof(float);
    if (!(p->value.data = m->be->alloc(m->be, bytes)))
        return sw_err_wrap(SW_ENOMEM, "model: parameter '%s'", p->name);
    return 0;
}

/* Whether p is the weight of a decoder linear. */
static int is_linear_weight(const struct sw_model *m, const struct sw_param *p) {
    for (int64_t l = 0; l < m->L; l++)
        for (int i = 0; i < SW_LIN_COUNT; i++)
            if (m->layers[l].lin[i].w == p) return 1;
    return 0;
}

/* A decoder linear's weight from s: its quantized layout (kept, or dequantized into float), or
 * its float tensor (quantized here with quant.load_fmt, else float). */
static int load_linear(struct sw_model *m, struct sw_param *p, const struct sw_st_set *s) {
    const struct sw_quant_spec *qs = &m->cfg.quant;
    int64_t rows = p->value.shape[0], cols = p->value.shape[1];
    char prefix[256];
    size_t len = strlen(p->name);
    snprintf(prefix, sizeof prefix, "%.*s", (int)(len > 7 ? len - 7 : len), p->name); /* -.weight */
    struct sw_qweight h;
    int found = sw_qtensors_read(s, prefix, rows, cols, qs->gptq_v2, &h);
    if (found < 0) return found;
    if (found && qs->keep) {
        int rc = set_quantized(m, p, &h);
        sw_qweight_free_host(&h);
        return rc;
    }
    int rc = 0;
    if (found) { /* dequantize into a float parameter */
        float *w = malloc((size_t)(rows * cols) * sizeof(float) + 1);
        if (!w)
            rc = sw_err_set(SW_ENOMEM, "%s: out of memory dequantizing '%s'", set_name(s), p->name);
        if (rc == 0) {
            sw_qweight_dequant_rows(&h, 0, rows, w);
            rc = ensure_float(m, p);
        }
        if (rc == 0) rc = m->be->upload(m->be, p->value.data, w, (size_t)(rows * cols) * 4);
        free(w);
        sw_qweight_free_host(&h);
        return rc;
    }
    if (qs->load_fmt == SW_QFMT_NONE) {
        SW_TRY(ensure_float(m, p));
        return load_param(m, p, p->name, s);
    }
    /* Quantize at load: the float tensor through a host buffer, never the model's memory. */
    const struct sw_st_entry *e = sw_st_set_find(s, p->name);
    if (!e || e->ndim != 2 || e->shape[0] != rows || e->shape[1] != cols ||
        !sw_dtype_is_float(e->dtype)) {
        SW_TRY(ensure_float(m, p)); /* for load_param's message naming what is wrong */
        return load_param(m, p, p->name, s);
    }
    float *w = malloc((size_t)(rows * cols) * sizeof(float) + 1);
    if (!w) return sw_err_set(SW_ENOMEM, "%s: out of memory converting '%s'", set_name(s), p->name);
    rc = sw_dtype_convert(SW_DTYPE_F32, w, e->dtype, e->data, (size_t)(rows * cols));
    if (rc < 0)
        rc = sw_err_set(rc, "%s: cannot convert tensor '%s' from %s", set_name(s), e->name,
                        sw_dtype_name(e->dtype));
    for (int64_t i = 0; rc == 0 && i < rows * cols; i++)
        if (!isfinite(w[i]))
            rc = sw_err_set(SW_EFORMAT, "%s: tensor '%s' has a non-finite value at element %lld",
                            set_name(s), e->name, (long long)i);
    if (rc == 0) {
        rc = sw_qweight_quantize(w, rows, cols, qs->load_fmt, qs->group_size, qs->sym,
                                 qs->double_quant, &h);
        if (rc < 0)
            rc = sw_err_wrap(rc, "quantizing '%s' to %s", p->name, sw_qfmt_name(qs->load_fmt));
    }
    free(w);
    if (rc == 0) rc = set_quantized(m, p, &h);
    sw_qweight_free_host(&h); /* zeroed by sw_qtensors_read, filled by the quantizer */
    return rc;
}

int sw_model_load(struct sw_model *m, const struct sw_st_set *s) {
    for (int i = 0; i < m->nparams; i++) {
        struct sw_param *p = m->params[i];
        if (p->is_lora) continue;
        if (p->value.ndim == 2 &&
            (m->cfg.quant.keep || m->cfg.quant.load_fmt || !p->value.data || p->quant ||
             !sw_st_set_find(s, p->name)) &&
            is_linear_weight(m, p))
            SW_TRY(load_linear(m, p, s));
        else
            SW_TRY(load_param(m, p, p->name, s));
    }
    int total = sw_st_set_count(s);
    for (int i = 0; i < total; i++) {
        const struct sw_st_entry *e = sw_st_set_get(s, i);
        if (!sw_model_param_find(m, e->name) && strcmp(e->name, "lm_head.weight") != 0 &&
            !sw_qtensors_is_aux(e->name))
            sw_debug("%s: ignoring tensor '%s' (not a parameter of this model)", set_name(s),
                     e->name);
    }
    return 0;
}

int sw_model_lora_load(struct sw_model *m, const struct sw_st_set *s) {
    if (!m->has_lora)
        return sw_err_set(SW_ESTATE,
                          "%s: model has no LoRA parameters (call sw_model_lora_add "
                          "first)",
                          set_name(s));
    for (int i = 0; i < m->nparams; i++) {
        struct sw_param *p = m->params[i];
        if (p->is_lora) SW_TRY(load_param(m, p, p->name, s));
    }
    return 0;
}

/* Random init in parallel, bit for bit the sequential definition. The values are defined as one
 * pass over the 2-D parameters in parameter order drawing sw_rng_normal from stream
 * SW_RNG_STREAM_INIT (the pad row is drawn, then zeroed; 1-D parameters draw nothing). Each
 * normal consumes exactly 4 words (sw_rng.h), so element k of that concatenation is Philox block
 * k of the stream: a function of (seed, k) alone. Any slice can therefore be drawn on its own
 * (sw_rng_fill_normal_at), and the split between threads cannot change a bit. */
struct init_slice {
    uint64_t seed;
    uint64_t first; /* index of x[0] in the concatenation of the 2-D parameters */
    float *x;
    float std;
};

static void init_slice_fill(void *ctx, int64_t begin, int64_t end) {
    const struct init_slice *s = ctx;
    sw_rng_fill_normal_at(s->seed, SW_RNG_STREAM_INIT, s->first + (uint64_t)begin, s->x + begin,
                          (size_t)(end - begin), 0.0f, s->std);
}

/* Draws per thread chunk at least: ~0.4 ms of Box-Muller, so tiny tensors stay on one thread. */
#define INIT_GRAIN 4096
/* Host staging for device backends: pieces of 16 Mi floats (64 MiB), filled by every thread and
 * uploaded in one copy each, so the host never holds a whole (up to 0.5 GiB) embedding. */
#define INIT_STAGE ((int64_t)1 << 24)

/* Fill x[0, n) = elements [first, first + n) of parameter p (2-D, first counted from p's start),
 * whose draws begin at global index base; zero the pad row's part of the slice. */
static void init_matrix_piece(struct sw_model *m, struct sw_param *p, uint64_t seed, float std,
                              uint64_t base, int64_t first, float *x, int64_t n) {
    struct init_slice s = {seed, base + (uint64_t)first, x, std};
    sw_parallel_for_grain(n, INIT_GRAIN, init_slice_fill, &s);
    int64_t pad = m->cfg.pad_token_id;
    if (p == m->embed && pad >= 0 && pad < m->V) { /* nn.Embedding(padding_idx) */
        int64_t lo = pad * m->C, hi = lo + m->C;
        if (lo < first) lo = first;
        if (hi > first + n) hi = first + n;
        if (lo < hi) memset(x + (lo - first), 0, (size_t)(hi - lo) * sizeof(float));
    }
}

/* Biases start at 0, norm weights at 1 — Gemma 2's at 0, its norms multiplying by (1 + w). */
static void init_vector_piece(const struct sw_model *m, const struct sw_param *p, float *x,
                              int64_t n) {
    size_t len = strlen(p->name);
    float v = m->gemma || (len > 5 && strcmp(p->name + len - 5, ".bias") == 0) ? 0.0f : 1.0f;
    for (int64_t k = 0; k < n; k++)
        x[k] = v;
}

int sw_model_init_random(struct sw_model *m, uint64_t seed, float std) {
    if (std <= 0) std = 0.02f;
    for (int i = 0; i < m->nparams; i++) /* linear weights left to a loader: float here */
        if (!m->params[i]->is_lora && !m->params[i]->value.data)
            SW_TRY(ensure_float(m, m->params[i]));
    int host = m->be->device == SW_DEVICE_CPU; /* parameters are host memory: fill in place */
    int64_t stage_n = 0;
    for (int i = 0; i < m->nparams && !host; i++) {
        int64_t n = sw_tensor_numel(&m->params[i]->value);
        if (!m->params[i]->is_lora && n > stage_n) stage_n = n;
    }
    if (stage_n > INIT_STAGE) stage_n = INIT_STAGE;
    float *stage = host ? NULL : malloc((size_t)(stage_n ? stage_n : 1) * sizeof(float));
    if (!host && !stage)
        return sw_err_set(SW_ENOMEM, "model init: out of memory for a %lld-float host buffer",
                          (long long)stage_n);
    uint64_t base = 0; /* draws made by the 2-D parameters before this one */
    int rc = 0;
    for (int i = 0; i < m->nparams && rc == 0; i++) {
        struct sw_param *p = m->params[i];
        if (p->is_lora) continue;
        int64_t n = sw_tensor_numel(&p->value);
        for (int64_t off = 0; off < n && rc == 0; off += host ? n : stage_n) {
            int64_t len = host ? n : (n - off < stage_n ? n - off : stage_n);
            float *x = host ? p->value.data : stage;
            if (p->value.ndim == 2)
                init_matrix_piece(m, p, seed, std, base, off, x, len);
            else
                init_vector_piece(m, p, x, len);
            if (!host)
                rc = m->be->upload(m->be, (float *)p->value.data + off, x,
                                   (size_t)len * sizeof(float));
        }
        if (p->value.ndim == 2) base += (uint64_t)n;
    }
    free(stage);
    return rc;
}
