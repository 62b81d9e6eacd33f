/* sw_model_weights — filling the model's parameters: from a safetensors set (HF checkpoint,
 * every expected name and shape checked, F32/F16/BF16/F64 converted to float32 on the host
 * and uploaded), and the deterministic random init used to pre-train from scratch. */
#include "sw_model_impl.h"

#include "sw_err.h"
#include "sw_log.h"
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
        return sw_err_set(SW_ENOTFOUND, "%s: missing tensor '%s' (expected shape %s)", where,
                          name, want);
    int ok = e->ndim == p->value.ndim;
    for (int d = 0; ok && d < e->ndim; d++) ok = e->shape[d] == p->value.shape[d];
    if (!ok) {
        char got[128];
        int k = snprintf(got, sizeof got, "[");
        for (int d = 0; d < e->ndim && k < (int)sizeof got; d++)
            k += snprintf(got + k, sizeof got - (size_t)k, "%s%lld", d ? ", " : "",
                          (long long)e->shape[d]);
        if (k < (int)sizeof got) snprintf(got + k, sizeof got - (size_t)k, "]");
        return sw_err_set(SW_EFORMAT, "%s: tensor '%s' has shape %s, the config implies %s",
                          where, name, got, want);
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
        return sw_err_set(SW_ESTATE, "%s: model has no LoRA parameters (call sw_model_lora_add "
                          "first)", set_name(s));
    for (int i = 0; i < m->nparams; i++) {
        struct sw_param *p = m->params[i];
        if (p->is_lora) SW_TRY(load_param(m, p, p->name, s));
    }
    return 0;
}

int sw_model_init_random(struct sw_model *m, uint64_t seed, float std) {
    if (std <= 0) std = 0.02f;
    struct sw_rng rng;
    sw_rng_init(&rng, seed, SW_RNG_STREAM_INIT);
    int rc = 0;
    for (int i = 0; i < m->nparams && rc == 0; i++) {
        struct sw_param *p = m->params[i];
        if (p->is_lora) continue;
        int64_t n = p->value.ndim == 2 ? p->value.shape[0] * p->value.shape[1] : p->value.shape[0];
        float *h = malloc((size_t)(n ? n : 1) * sizeof(float));
        if (!h) return sw_err_set(SW_ENOMEM, "model init: out of memory for '%s'", p->name);
        size_t len = strlen(p->name);
        if (p->value.ndim == 2) {
            sw_rng_fill_normal(&rng, h, (size_t)n, 0.0f, std);
            int64_t pad = m->cfg.pad_token_id;
            if (p == m->embed && pad >= 0 && pad < m->V) /* nn.Embedding(padding_idx) */
                memset(h + pad * m->C, 0, (size_t)m->C * sizeof(float));
        } else {
            float v = len > 5 && strcmp(p->name + len - 5, ".bias") == 0 ? 0.0f : 1.0f;
            for (int64_t k = 0; k < n; k++) h[k] = v;
        }
        rc = m->be->upload(m->be, p->value.data, h, (size_t)n * sizeof(float));
        free(h);
    }
    return rc;
}
