/* sw_hfmodel — opening an HF model folder and checking its tensors against its config.
 *
 * The inventory is what lets a loader refuse a folder with a clear message ("2 missing tensors:
 * model.layers.1.mlp.up_proj.weight, ...") instead of failing deep inside a matmul, and what
 * `sw-quant inspect` prints. Expected names are transformers' own (see sw_hfmodel.h). */
#include "sw_hfmodel.h"

#include "sw_err.h"
#include "sw_io.h"
#include "sw_qtensors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- expected tensors -------------------------------------------------------------------- */

struct spec_list {
    struct sw_hf_tensor_spec *v;
    int n, cap;
};

/* Whether p is an existing regular file (no error message is set either way). */
static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int spec_add(struct spec_list *l, int optional, int64_t d0, int64_t d1, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int spec_add(struct spec_list *l, int optional, int64_t d0, int64_t d1, const char *fmt,
                    ...) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        struct sw_hf_tensor_spec *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return sw_err_set(SW_ENOMEM, "model inventory: out of memory");
        l->v = v;
        l->cap = cap;
    }
    struct sw_hf_tensor_spec *s = &l->v[l->n++];
    memset(s, 0, sizeof *s);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->name, sizeof s->name, fmt, ap);
    va_end(ap);
    s->ndim = d1 < 0 ? 1 : 2;
    s->shape[0] = d0;
    s->shape[1] = d1 < 0 ? 0 : d1;
    s->optional = optional;
    return 0;
}

/* A linear layer's weight [out, in] and, when bias, its bias [out]. */
static int spec_linear(struct spec_list *l, long long layer, const char *mod, int64_t out,
                       int64_t in, int bias) {
    SW_TRY(spec_add(l, 0, out, in, "model.layers.%lld.%s.weight", layer, mod));
    if (bias) SW_TRY(spec_add(l, 0, out, -1, "model.layers.%lld.%s.bias", layer, mod));
    return 0;
}

static int specs_build(const struct sw_model_config *c, struct spec_list *l) {
    int64_t h = c->hidden_size, hd = c->head_dim, im = c->intermediate_size;
    int64_t q = c->num_attention_heads * hd, kv = c->num_key_value_heads * hd;
    int qkv_bias = c->attention_bias || c->arch == SW_ARCH_QWEN2;
    int o_bias = c->attention_bias && c->arch != SW_ARCH_QWEN2;
    SW_TRY(spec_add(l, 0, c->vocab_size, h, "model.embed_tokens.weight"));
    for (long long i = 0; i < c->num_hidden_layers; i++) {
        SW_TRY(spec_add(l, 0, h, -1, "model.layers.%lld.input_layernorm.weight", i));
        SW_TRY(spec_linear(l, i, "self_attn.q_proj", q, h, qkv_bias));
        SW_TRY(spec_linear(l, i, "self_attn.k_proj", kv, h, qkv_bias));
        SW_TRY(spec_linear(l, i, "self_attn.v_proj", kv, h, qkv_bias));
        SW_TRY(spec_linear(l, i, "self_attn.o_proj", h, q, o_bias));
        if (c->qk_norm) {
            SW_TRY(spec_add(l, 0, hd, -1, "model.layers.%lld.self_attn.q_norm.weight", i));
            SW_TRY(spec_add(l, 0, hd, -1, "model.layers.%lld.self_attn.k_norm.weight", i));
        }
        SW_TRY(spec_add(l, 0, h, -1, "model.layers.%lld.post_attention_layernorm.weight", i));
        if (c->arch == SW_ARCH_GEMMA2) { /* norms around the MLP */
            SW_TRY(spec_add(l, 0, h, -1, "model.layers.%lld.pre_feedforward_layernorm.weight", i));
            SW_TRY(spec_add(l, 0, h, -1, "model.layers.%lld.post_feedforward_layernorm.weight", i));
        }
        SW_TRY(spec_linear(l, i, "mlp.gate_proj", im, h, c->mlp_bias));
        SW_TRY(spec_linear(l, i, "mlp.up_proj", im, h, c->mlp_bias));
        SW_TRY(spec_linear(l, i, "mlp.down_proj", h, im, c->mlp_bias));
    }
    SW_TRY(spec_add(l, 0, h, -1, "model.norm.weight"));
    /* Tied models usually omit lm_head.weight; some checkpoints still carry a copy. */
    SW_TRY(spec_add(l, c->tie_word_embeddings, c->vocab_size, h, "lm_head.weight"));
    return 0;
}

int sw_hf_expected_tensors(const struct sw_model_config *c, struct sw_hf_tensor_spec **specs,
                           int *n) {
    struct spec_list l = {0};
    int rc = specs_build(c, &l);
    if (rc < 0) {
        free(l.v);
        *specs = NULL;
        *n = 0;
        return rc;
    }
    *specs = l.v;
    *n = l.n;
    return 0;
}

/* ---- inventory ------------------------------------------------------------------------------ */

static int issue_add(struct sw_hf_inventory *inv, int *cap, enum sw_hf_issue_kind kind,
                     const char *name, const struct sw_hf_tensor_spec *want,
                     const struct sw_st_entry *got) {
    if (inv->n_issues == *cap) {
        int nc = *cap ? 2 * *cap : 16;
        struct sw_hf_issue *v = realloc(inv->issues, (size_t)nc * sizeof *v);
        if (!v) return sw_err_set(SW_ENOMEM, "model inventory: out of memory");
        inv->issues = v;
        *cap = nc;
    }
    struct sw_hf_issue *is = &inv->issues[inv->n_issues++];
    memset(is, 0, sizeof *is);
    is->kind = kind;
    snprintf(is->name, sizeof is->name, "%s", name);
    if (want) {
        is->want_ndim = want->ndim;
        memcpy(is->want, want->shape, sizeof is->want);
    }
    if (got) {
        is->got_ndim = got->ndim;
        memcpy(is->got, got->shape, sizeof is->got);
        is->got_dtype = got->dtype;
    }
    return 0;
}

static int spec_matches(const struct sw_hf_tensor_spec *s, const struct sw_st_entry *e) {
    if (e->ndim != s->ndim) return 0;
    for (int i = 0; i < s->ndim; i++)
        if (e->shape[i] != s->shape[i]) return 0;
    return 1;
}

static int is_float(enum sw_dtype dt) {
    return dt == SW_DTYPE_F32 || dt == SW_DTYPE_F16 || dt == SW_DTYPE_BF16 || dt == SW_DTYPE_F64 ||
           dt == SW_DTYPE_F8_E4M3 || dt == SW_DTYPE_F8_E5M2;
}

static int ends_with(const char *s, const char *suffix) {
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

static int cmp_spec_name(const void *a, const void *b) {
    return strcmp(((const struct sw_hf_tensor_spec *)a)->name,
                  ((const struct sw_hf_tensor_spec *)b)->name);
}

/* A quantized folder (quantization_config) holds its decoder linears in a quantized layout
 * (lib/format/sw_qtensors.h): name is such a linear's weight and s has that layout's tensors.
 * Their shapes and dtypes are checked when the model loads them. */
static int quantized_linear(const struct sw_model_config *c, const struct sw_st_set *s,
                            const char *name) {
    if (!c->quant.keep || !ends_with(name, "_proj.weight")) return 0;
    static const char *const marks[] = {".qweight", ".weight.absmax", ".SCB", ".weight.SCB",
                                        ".weight_scale"};
    char k[320];
    size_t n = strlen(name) - strlen(".weight");
    for (size_t i = 0; i < sizeof marks / sizeof *marks; i++) {
        snprintf(k, sizeof k, "%.*s%s", (int)n, name, marks[i]);
        if (sw_st_set_find(s, k)) return 1;
    }
    return 0;
}

int sw_hf_inventory_check(const struct sw_model_config *c, const struct sw_st_set *s,
                          struct sw_hf_inventory *inv) {
    memset(inv, 0, sizeof *inv);
    struct sw_hf_tensor_spec *specs = NULL, *sorted = NULL;
    int n = 0, cap = 0;
    int rc = sw_hf_expected_tensors(c, &specs, &n);
    if (rc < 0) return rc;
    inv->n_expected = n;
    for (int i = 0; i < n && rc == 0; i++) {
        if (!sw_st_set_find(s, specs[i].name) && !specs[i].optional &&
            !quantized_linear(c, s, specs[i].name))
            rc = issue_add(inv, &cap, SW_HF_MISSING, specs[i].name, &specs[i], NULL);
    }
    for (int i = 0; i < n && rc == 0; i++) {
        const struct sw_st_entry *e = sw_st_set_find(s, specs[i].name);
        if (!e) continue;
        if (quantized_linear(c, s, specs[i].name))
            inv->n_matched++;
        else if (!spec_matches(&specs[i], e))
            rc = issue_add(inv, &cap, SW_HF_SHAPE, specs[i].name, &specs[i], e);
        else if (!is_float(e->dtype))
            rc = issue_add(inv, &cap, SW_HF_DTYPE, specs[i].name, &specs[i], e);
        else {
            inv->n_matched++;
            int64_t numel = 1;
            for (int d = 0; d < e->ndim; d++)
                numel *= e->shape[d];
            inv->params += numel;
        }
    }
    sorted = malloc(((size_t)n + 1) * sizeof *sorted);
    if (!sorted && rc == 0) rc = sw_err_set(SW_ENOMEM, "model inventory: out of memory");
    if (rc == 0) {
        memcpy(sorted, specs, (size_t)n * sizeof *sorted);
        qsort(sorted, (size_t)n, sizeof *sorted, cmp_spec_name);
    }
    for (int i = 0; i < sw_st_set_count(s) && rc == 0; i++) {
        const struct sw_st_entry *e = sw_st_set_get(s, i);
        struct sw_hf_tensor_spec key = {0};
        snprintf(key.name, sizeof key.name, "%s", e->name);
        if (strlen(e->name) < sizeof key.name &&
            bsearch(&key, sorted, (size_t)n, sizeof *sorted, cmp_spec_name))
            continue;
        if (ends_with(e->name, ".rotary_emb.inv_freq") ||
            (c->quant.keep && sw_qtensors_is_aux(e->name))) {
            inv->n_ignored++;
            continue;
        }
        rc = issue_add(inv, &cap, SW_HF_UNEXPECTED, e->name, NULL, e);
    }
    free(specs);
    free(sorted);
    if (rc < 0) sw_hf_inventory_release(inv);
    return rc;
}

void sw_hf_inventory_release(struct sw_hf_inventory *inv) {
    if (!inv) return;
    free(inv->issues);
    memset(inv, 0, sizeof *inv);
}

static void dims_str(int ndim, const int64_t *d, char *buf, size_t cap) {
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? ", " : "", (long long)d[i]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

char *sw_hf_issue_str(const struct sw_hf_issue *is, char *buf, size_t cap) {
    char w[128], g[256];
    dims_str(is->want_ndim, is->want, w, sizeof w);
    dims_str(is->got_ndim, is->got, g, sizeof g);
    switch (is->kind) {
    case SW_HF_MISSING: snprintf(buf, cap, "missing tensor '%s' %s", is->name, w); break;
    case SW_HF_SHAPE:
        snprintf(buf, cap, "tensor '%s' has shape %s but the config implies %s", is->name, g, w);
        break;
    case SW_HF_DTYPE:
        snprintf(buf, cap, "tensor '%s' has dtype %s, not a float type", is->name,
                 sw_st_dtype_name(is->got_dtype) ? sw_st_dtype_name(is->got_dtype) : "?");
        break;
    case SW_HF_UNEXPECTED:
        snprintf(buf, cap, "unexpected tensor '%s' %s (not implied by the config)", is->name, g);
        break;
    }
    return buf;
}

int sw_hf_inventory_error(const struct sw_hf_inventory *inv, const char *what) {
    if (inv->n_issues == 0) return 0;
    int counts[4] = {0};
    for (int i = 0; i < inv->n_issues; i++)
        counts[inv->issues[i].kind]++;
    char msg[900];
    size_t o = (size_t)snprintf(msg, sizeof msg, "%s: tensors do not match config.json (", what);
    static const char *const names[] = {"missing", "wrong shape", "wrong dtype", "unexpected"};
    int first = 1;
    for (int k = 0; k < 4; k++) {
        if (!counts[k]) continue;
        o += (size_t)snprintf(msg + o, sizeof msg - o, "%s%d %s", first ? "" : ", ", counts[k],
                              names[k]);
        first = 0;
    }
    o += (size_t)snprintf(msg + o, sizeof msg - o, ")");
    for (int i = 0; i < inv->n_issues && i < 3 && o < sizeof msg; i++) {
        char line[400];
        o += (size_t)snprintf(msg + o, sizeof msg - o, "%s%s", i ? "; " : ": ",
                              sw_hf_issue_str(&inv->issues[i], line, sizeof line));
    }
    if (inv->n_issues > 3 && o < sizeof msg)
        snprintf(msg + o, sizeof msg - o, "; and %d more", inv->n_issues - 3);
    return sw_err_set(SW_EFORMAT, "%s", msg);
}

/* ---- model folder ---------------------------------------------------------------------------- */

int sw_hfmodel_open(const char *dir, struct sw_hfmodel **out) {
    *out = NULL;
    int isdir = sw_path_is_dir(dir);
    if (isdir < 0) return isdir;
    if (!isdir) return sw_err_set(SW_EINVAL, "%s: not a folder (an HF model is a folder)", dir);
    struct sw_hfmodel *m = calloc(1, sizeof *m);
    char *cfg = sw_path_join(dir, "config.json");
    char *gen = sw_path_join(dir, "generation_config.json");
    int rc = 0;
    if (!m || !cfg || !gen || !(m->dir = strdup(dir))) {
        rc = sw_err_set(SW_ENOMEM, "%s: out of memory", dir);
        goto out;
    }
    if (!is_file(cfg)) {
        rc = sw_err_set(SW_ENOTFOUND, "%s: no config.json (not an HF model folder?)", dir);
        goto out;
    }
    SW_TRY_GOTO(rc, sw_model_config_load(cfg, &m->config), out);
    if (is_file(gen)) {
        SW_TRY_GOTO(rc, sw_generation_config_load(gen, &m->generation), out);
        m->has_generation_config = 1;
    } else {
        /* Defaults, with the special tokens from config.json, as transformers derives them. */
        struct sw_generation_config *g = &m->generation;
        memset(g, 0, sizeof *g);
        g->temperature = g->top_p = g->repetition_penalty = 1.0;
        g->top_k = 50;
        g->bos_token_id = m->config.bos_token_id;
        g->pad_token_id = m->config.pad_token_id;
        g->n_eos = m->config.n_eos;
        memcpy(g->eos_token_ids, m->config.eos_token_ids, sizeof g->eos_token_ids);
    }
    SW_TRY_GOTO(rc, sw_st_set_open(dir, &m->weights), out);
out:
    free(cfg);
    free(gen);
    if (rc < 0) {
        sw_hfmodel_close(m);
        return rc;
    }
    *out = m;
    return 0;
}

void sw_hfmodel_close(struct sw_hfmodel *m) {
    if (!m) return;
    sw_st_set_close(m->weights);
    free(m->dir);
    free(m);
}

int sw_hfmodel_verify(const struct sw_hfmodel *m) {
    struct sw_hf_inventory inv;
    SW_TRY(sw_hf_inventory_check(&m->config, m->weights, &inv));
    int rc = sw_hf_inventory_error(&inv, m->dir);
    sw_hf_inventory_release(&inv);
    return rc;
}
