/* sw_model_weights — filling the model's parameters: from a safetensors set (HF checkpoint,
 * every expected name and shape checked, F32/F16/BF16/F64 converted to float32 on the host
 * and uploaded), and the deterministic random init used to pre-train from scratch. */
#include "sw_model_impl.h"

#include "sw_err.h"
#include "sw_log.h"
#include "sw_parallel.h"
#include "sw_rng.h"

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

int sw_model_load(struct sw_model *m, const struct sw_st_set *s) {
    int used = 0;
    for (int i = 0; i < m->nparams; i++) {
        struct sw_param *p = m->params[i];
        if (p->is_lora) continue;
        SW_TRY(load_param(m, p, p->name, s));
        used++;
    }
    int total = sw_st_set_count(s);
    for (int i = 0; i < total; i++) {
        const struct sw_st_entry *e = sw_st_set_get(s, i);
        if (!sw_model_param_find(m, e->name) && strcmp(e->name, "lm_head.weight") != 0)
            sw_debug("%s: ignoring tensor '%s' (not a parameter of this model)", set_name(s),
                     e->name);
    }
    (void)used;
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

static void init_vector_piece(const struct sw_param *p, float *x, int64_t n) {
    size_t len = strlen(p->name);
    float v = len > 5 && strcmp(p->name + len - 5, ".bias") == 0 ? 0.0f : 1.0f;
    for (int64_t k = 0; k < n; k++)
        x[k] = v;
}

int sw_model_init_random(struct sw_model *m, uint64_t seed, float std) {
    if (std <= 0) std = 0.02f;
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
                init_vector_piece(p, x, len);
            if (!host)
                rc = m->be->upload(m->be, (float *)p->value.data + off, x,
                                   (size_t)len * sizeof(float));
        }
        if (p->value.ndim == 2) base += (uint64_t)n;
    }
    free(stage);
    return rc;
}
