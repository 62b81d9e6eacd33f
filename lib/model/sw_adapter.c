/* sw_adapter — a PEFT LoRA adapter folder opened and understood tensor by tensor, for
 * sw-eval (apply it to a model) and sw-quant merge-lora (fold it into the base weights).
 *
 * PEFT saves "base_model.model.<module path>.lora_A.weight" [r, in] and "...lora_B.weight"
 * [out, r]; for the decoder families sw supports the module path is
 * "model.layers.<N>.<self_attn|mlp>.<q|k|v|o|gate|up|down>_proj". Everything is parsed and
 * checked here once so that users of an adapter only see modules that are well formed: names,
 * float dtypes, ranks, A/B pairs, and (sw_adapter_check) the shapes a given base model implies.
 * What sw cannot apply faithfully (trained embeddings or extra modules, DoRA, per-module ranks)
 * is refused rather than silently dropped. */
#include "sw_adapter.h"

#include "sw_err.h"
#include "sw_io.h"
#include "sw_log.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[SW_ADAPTER_NKINDS] = {
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
static const char *const kind_parents[SW_ADAPTER_NKINDS] = {
    "self_attn", "self_attn", "self_attn", "self_attn", "mlp", "mlp", "mlp"};

#define PREFIX "base_model.model.model.layers."

const char *sw_adapter_kind_name(enum sw_adapter_kind k) {
    return k >= 0 && k < SW_ADAPTER_NKINDS ? kind_names[k] : "?";
}

const char *sw_adapter_kind_parent(enum sw_adapter_kind k) {
    return k >= 0 && k < SW_ADAPTER_NKINDS ? kind_parents[k] : "?";
}

void sw_adapter_base_shape(const struct sw_model_config *c, enum sw_adapter_kind kind, int64_t *out,
                           int64_t *in) {
    int64_t C = c->hidden_size, F = c->intermediate_size;
    int64_t q = c->num_attention_heads * c->head_dim, kv = c->num_key_value_heads * c->head_dim;
    switch (kind) {
    case SW_ADAPTER_Q: *out = q, *in = C; break;
    case SW_ADAPTER_K:
    case SW_ADAPTER_V: *out = kv, *in = C; break;
    case SW_ADAPTER_O: *out = C, *in = q; break;
    case SW_ADAPTER_GATE:
    case SW_ADAPTER_UP: *out = F, *in = C; break;
    default: *out = C, *in = F; break;
    }
}

/* Parse "base_model.model.model.layers.<N>.<parent>.<kind>.lora_<A|B>.weight": 0 with layer,
 * kind and is_b set, or -1 when the name has another form. */
static int parse_name(const char *name, int64_t *layer, int *kind, int *is_b) {
    size_t plen = strlen(PREFIX);
    if (strncmp(name, PREFIX, plen) != 0) return -1;
    const char *p = name + plen;
    if (*p < '0' || *p > '9') return -1;
    int64_t n = 0;
    while (*p >= '0' && *p <= '9') {
        if (n > 100000000) return -1;
        n = n * 10 + (*p++ - '0');
    }
    if (*p++ != '.') return -1;
    for (int k = 0; k < SW_ADAPTER_NKINDS; k++) {
        size_t a = strlen(kind_parents[k]), b = strlen(kind_names[k]);
        if (strncmp(p, kind_parents[k], a) != 0 || p[a] != '.' ||
            strncmp(p + a + 1, kind_names[k], b) != 0)
            continue;
        const char *rest = p + a + 1 + b;
        if (strcmp(rest, ".lora_A.weight") == 0)
            *is_b = 0;
        else if (strcmp(rest, ".lora_B.weight") == 0)
            *is_b = 1;
        else
            return -1;
        *layer = n;
        *kind = k;
        return 0;
    }
    return -1;
}

static int cmp_module(const void *x, const void *y) {
    const struct sw_adapter_module *a = x, *b = y;
    if (a->layer != b->layer) return a->layer < b->layer ? -1 : 1;
    return (int)a->kind - (int)b->kind;
}

/* Keys of adapter_config.json that change what the adapter computes and that sw does not
 * implement: refuse them instead of applying a different function. */
static int check_unsupported_keys(const char *text, size_t len, const char *name) {
    json_error_t jerr;
    json_t *o = json_loadb(text, len, 0, &jerr);
    if (!o) return sw_err_set(SW_EFORMAT, "%s:%d: %s", name, jerr.line, jerr.text);
    int rc = 0;
    const char *const maps[] = {"rank_pattern", "alpha_pattern"};
    for (size_t i = 0; i < 2 && rc == 0; i++) {
        json_t *v = json_object_get(o, maps[i]);
        if (v && !json_is_null(v) && !(json_is_object(v) && json_object_size(v) == 0))
            rc = sw_err_set(SW_EUNSUPPORTED,
                            "%s: '%s' (per-module ranks or alphas) is not "
                            "supported",
                            name, maps[i]);
    }
    json_t *ms = json_object_get(o, "modules_to_save");
    if (rc == 0 && ms && !json_is_null(ms) && !(json_is_array(ms) && json_array_size(ms) == 0))
        rc = sw_err_set(SW_EUNSUPPORTED,
                        "%s: 'modules_to_save' (fully trained extra modules) is "
                        "not supported",
                        name);
    if (rc == 0 && json_is_true(json_object_get(o, "lora_bias")))
        rc = sw_err_set(SW_EUNSUPPORTED, "%s: 'lora_bias' is not supported", name);
    json_decref(o);
    return rc;
}

/* Fill a->modules from the weights, pairing A and B. */
static int collect_modules(struct sw_adapter *a, const char *wname) {
    int n = sw_st_set_count(a->weights);
    a->modules = calloc((size_t)(n ? n : 1), sizeof(*a->modules));
    if (!a->modules) return sw_err_set(SW_ENOMEM, "%s: out of memory", wname);
    a->max_layer = -1;
    for (int i = 0; i < n; i++) {
        const struct sw_st_entry *e = sw_st_set_get(a->weights, i);
        int64_t layer;
        int kind, is_b;
        if (parse_name(e->name, &layer, &kind, &is_b) < 0) {
            int unsupported = strstr(e->name, "lora_embedding") || strstr(e->name, "lm_head") ||
                              strstr(e->name, "magnitude") || strstr(e->name, "modules_to_save");
            return sw_err_set(unsupported ? SW_EUNSUPPORTED : SW_EFORMAT,
                              "%s: tensor '%s' is not a LoRA A/B matrix of a decoder linear layer "
                              "(expected '" PREFIX "<N>.<self_attn|mlp>.<x>_proj.lora_<A|B>."
                              "weight')",
                              wname, e->name);
        }
        if (!sw_dtype_is_float(e->dtype) || e->ndim != 2)
            return sw_err_set(SW_EFORMAT,
                              "%s: tensor '%s' must be a float matrix (got %s with "
                              "%d dimensions)",
                              wname, e->name, sw_dtype_name(e->dtype), e->ndim);
        int64_t rank = is_b ? e->shape[1] : e->shape[0];
        if (rank != a->cfg.r)
            return sw_err_set(SW_EFORMAT,
                              "%s: tensor '%s' has rank %lld but adapter_config.json "
                              "says r = %d",
                              wname, e->name, (long long)rank, a->cfg.r);
        struct sw_adapter_module *m = NULL;
        for (int j = 0; j < a->n_modules; j++)
            if (a->modules[j].layer == layer && (int)a->modules[j].kind == kind) m = &a->modules[j];
        if (!m) {
            m = &a->modules[a->n_modules++];
            m->layer = layer;
            m->kind = (enum sw_adapter_kind)kind;
        }
        if (is_b)
            m->b = e;
        else
            m->a = e;
        a->kinds[kind] = 1;
        if (layer > a->max_layer) a->max_layer = layer;
    }
    for (int j = 0; j < a->n_modules; j++) {
        struct sw_adapter_module *m = &a->modules[j];
        if (!m->a || !m->b)
            return sw_err_set(SW_ENOTFOUND, "%s: '%s' has no matching lora_%s tensor", wname,
                              (m->a ? m->a : m->b)->name, m->a ? "B" : "A");
        if (m->a->shape[0] != m->b->shape[1])
            return sw_err_set(SW_EFORMAT, "%s: '%s' and its lora_B disagree on the rank", wname,
                              m->a->name);
    }
    if (a->n_modules == 0) return sw_err_set(SW_EFORMAT, "%s: no LoRA tensors", wname);
    qsort(a->modules, (size_t)a->n_modules, sizeof(*a->modules), cmp_module);
    return 0;
}

int sw_adapter_open(const char *dir, struct sw_adapter **out) {
    *out = NULL;
    struct sw_adapter *a = calloc(1, sizeof(*a));
    char *cpath = sw_path_join(dir, "adapter_config.json");
    char *wpath = sw_path_join(dir, "adapter_model.safetensors");
    char *text = NULL;
    size_t len = 0;
    int rc = 0;
    if (!a || !cpath || !wpath || !(a->dir = strdup(dir))) {
        rc = sw_err_set(SW_ENOMEM, "out of memory");
        goto out;
    }
    SW_TRY_GOTO(rc, sw_read_file(cpath, &text, &len, 1u << 24), out);
    SW_TRY_GOTO(rc, sw_adapter_config_parse(text, len, cpath, &a->cfg), out);
    SW_TRY_GOTO(rc, check_unsupported_keys(text, len, cpath), out);
    if (!(a->cfg.alpha > 0) || !isfinite(a->cfg.alpha)) {
        rc = sw_err_set(SW_EFORMAT, "%s: lora_alpha must be > 0 (got %g)", cpath, a->cfg.alpha);
        goto out;
    }
    a->scale = a->cfg.use_rslora ? a->cfg.alpha / sqrt((double)a->cfg.r) : a->cfg.alpha / a->cfg.r;
    SW_TRY_GOTO(rc, sw_st_set_open(wpath, &a->weights), out);
    SW_TRY_GOTO(rc, collect_modules(a, wpath), out);
out:
    free(text), free(cpath), free(wpath);
    if (rc < 0)
        sw_adapter_close(a);
    else
        *out = a;
    return rc;
}

void sw_adapter_close(struct sw_adapter *a) {
    if (!a) return;
    sw_adapter_config_release(&a->cfg);
    sw_st_set_close(a->weights);
    free(a->modules);
    free(a->dir);
    free(a);
}

int sw_adapter_check(const struct sw_adapter *a, const struct sw_model_config *c) {
    for (int j = 0; j < a->n_modules; j++) {
        const struct sw_adapter_module *m = &a->modules[j];
        if (m->layer >= c->num_hidden_layers)
            return sw_err_set(SW_EFORMAT,
                              "%s: adapter tensor '%s' is for layer %lld but the base "
                              "model has %lld layers (an adapter of another base model?)",
                              a->dir, m->a->name, (long long)m->layer,
                              (long long)c->num_hidden_layers);
        int64_t out, in;
        sw_adapter_base_shape(c, m->kind, &out, &in);
        if (m->a->shape[1] != in || m->b->shape[0] != out)
            return sw_err_set(SW_EFORMAT,
                              "%s: adapter '%s' is for a [%lld, %lld] layer but the "
                              "base model's %s is [%lld, %lld] (an adapter of another base model?)",
                              a->dir, m->a->name, (long long)m->b->shape[0],
                              (long long)m->a->shape[1], kind_names[m->kind], (long long)out,
                              (long long)in);
    }
    return 0;
}

char *sw_adapter_kinds_str(const struct sw_adapter *a, char *buf, size_t cap) {
    size_t k = 0;
    if (cap) buf[0] = 0;
    for (int i = 0; i < SW_ADAPTER_NKINDS; i++) {
        if (!a->kinds[i]) continue;
        int w = snprintf(buf + k, cap > k ? cap - k : 0, "%s%s", k ? "," : "", kind_names[i]);
        if (w > 0) k += (size_t)w;
        if (k >= cap) break;
    }
    return buf;
}

int sw_adapter_covers_all_layers(const struct sw_adapter *a, int64_t layers) {
    int64_t want = 0;
    for (int i = 0; i < SW_ADAPTER_NKINDS; i++)
        want += a->kinds[i];
    /* modules are unique per (layer, kind), so a full cover has exactly layers · kinds of them */
    return a->max_layer < layers && (int64_t)a->n_modules == want * layers;
}
