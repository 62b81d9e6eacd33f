/* sw_model — lifecycle of the decoder model and its parameter registry: builds every
 * parameter with its HF name and shape from the config (in transformers' named_parameters
 * order), owns values and gradients in backend memory, and hands them out by index or name to
 * loaders, savers and optimizers. Forward/backward live in sw_model_forward.c and
 * sw_model_backward.c (see sw_model_impl.h for the split). */
#include "sw_model_impl.h"

#include "sw_err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const sw_lin_names[SW_LIN_COUNT] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                "gate_proj", "up_proj", "down_proj"};
const char *const sw_lin_parents[SW_LIN_COUNT] = {
    "self_attn", "self_attn", "self_attn", "self_attn", "mlp", "mlp", "mlp"};

/* A contiguous float32 tensor description over backend memory. */
static void tensor_view(struct sw_tensor *t, enum sw_device dev, int ndim, int64_t d0, int64_t d1,
                        void *data) {
    memset(t, 0, sizeof(*t));
    t->dtype = SW_DTYPE_F32;
    t->device = dev;
    t->ndim = ndim;
    t->shape[0] = d0;
    if (ndim == 2) {
        t->shape[1] = d1;
        t->strides[1] = sizeof(float);
        t->strides[0] = d1 * (int64_t)sizeof(float);
    } else {
        t->strides[0] = sizeof(float);
    }
    t->data = data;
}

static int64_t param_numel(const struct sw_param *p) {
    return p->value.ndim == 2 ? p->value.shape[0] * p->value.shape[1] : p->value.shape[0];
}

char *sw_model_shape_str(const struct sw_param *p, char *buf, size_t cap) {
    if (p->value.ndim == 2)
        snprintf(buf, cap, "[%lld, %lld]", (long long)p->value.shape[0],
                 (long long)p->value.shape[1]);
    else
        snprintf(buf, cap, "[%lld]", (long long)p->value.shape[0]);
    return buf;
}

/* A parameter whose memory is allocated (alloc) or left for the loader (a linear weight that
 * may arrive quantized: sw_model_weights.c allocates float or quantized storage for it). */
static int add_param(struct sw_model *m, const char *name, int ndim, int64_t d0, int64_t d1,
                     int decay, int is_lora, int alloc, struct sw_param **out) {
    if (m->nparams == m->cap) {
        int cap = m->cap ? m->cap * 2 : 64;
        struct sw_param **np = realloc(m->params, (size_t)cap * sizeof(*np));
        if (!np) return sw_err_set(SW_ENOMEM, "model: out of memory for parameter '%s'", name);
        m->params = np;
        m->cap = cap;
    }
    struct sw_param *p = calloc(1, sizeof(*p));
    if (!p || !(p->name = strdup(name))) {
        free(p);
        return sw_err_set(SW_ENOMEM, "model: out of memory for parameter '%s'", name);
    }
    int64_t n = ndim == 2 ? d0 * d1 : d0;
    void *data = alloc ? m->be->alloc(m->be, (size_t)n * sizeof(float)) : NULL;
    if (alloc && !data) {
        free(p->name), free(p);
        return sw_err_wrap(SW_ENOMEM, "model: parameter '%s'", name);
    }
    tensor_view(&p->value, m->be->device, ndim, d0, d1, data);
    p->value.name = p->name;
    tensor_view(&p->grad, m->be->device, ndim, d0, d1, NULL);
    p->trainable = 1;
    p->decay = decay;
    p->is_lora = is_lora;
    m->params[m->nparams++] = p;
    if (out) *out = p;
    return 0;
}

int sw_model_add_param(struct sw_model *m, const char *name, int ndim, int64_t d0, int64_t d1,
                       int decay, int is_lora, struct sw_param **out) {
    return add_param(m, name, ndim, d0, d1, decay, is_lora, 1, out);
}

int sw_model_ensure_grads(struct sw_model *m) {
    for (int i = 0; i < m->nparams; i++) {
        struct sw_param *p = m->params[i];
        if (!p->trainable || p->grad.data) continue;
        p->grad.data = m->be->alloc(m->be, (size_t)param_numel(p) * sizeof(float));
        if (!p->grad.data) return sw_err_wrap(SW_ENOMEM, "model: gradient of '%s'", p->name);
    }
    return 0;
}

void sw_model_drop_grad(struct sw_model *m, struct sw_param *p) {
    m->be->free(m->be, p->grad.data);
    p->grad.data = NULL;
}

int sw_model_zero_grad(struct sw_model *m) {
    SW_TRY(sw_model_ensure_grads(m));
    for (int i = 0; i < m->nparams; i++) {
        struct sw_param *p = m->params[i];
        if (p->trainable)
            SW_TRY(m->be->memset0(m->be, p->grad.data, (size_t)param_numel(p) * sizeof(float)));
    }
    return 0;
}

int sw_model_rope_reserve(struct sw_model *m, int64_t P) {
    if (P <= m->rope_P) return 0;
    int64_t half = m->D / 2;
    size_t bytes = (size_t)(P * half) * sizeof(float);
    float *hc = malloc(bytes ? bytes : 1), *hs = malloc(bytes ? bytes : 1);
    float *dc = NULL, *ds = NULL;
    int rc = 0;
    if (!hc || !hs) {
        rc = sw_err_set(SW_ENOMEM, "model: out of memory for RoPE tables of %lld positions",
                        (long long)P);
        goto done;
    }
    struct sw_rope_params rp = {
        .theta = m->cfg.rope_theta,
        .type = (int)m->cfg.rope_type,
        .factor = m->cfg.rope_factor,
        .low_freq_factor = m->cfg.rope_low_freq_factor,
        .high_freq_factor = m->cfg.rope_high_freq_factor,
        .original_max_position = (double)m->cfg.rope_original_max_position,
    };
    SW_TRY_GOTO(rc, sw_rope_tables(&rp, P, m->D, hc, hs), done);
    dc = m->be->alloc(m->be, bytes);
    ds = m->be->alloc(m->be, bytes);
    if (!dc || !ds) {
        rc = sw_err_wrap(SW_ENOMEM, "model: RoPE tables");
        goto done;
    }
    SW_TRY_GOTO(rc, m->be->upload(m->be, dc, hc, bytes), done);
    SW_TRY_GOTO(rc, m->be->upload(m->be, ds, hs, bytes), done);
    m->be->free(m->be, m->rope_cos);
    m->be->free(m->be, m->rope_sin);
    m->rope_cos = dc;
    m->rope_sin = ds;
    m->rope_P = P;
    dc = ds = NULL;
done:
    if (dc) m->be->free(m->be, dc);
    if (ds) m->be->free(m->be, ds);
    free(hc), free(hs);
    return rc;
}

static int check_config(const struct sw_model_config *c) {
    const char *act = c->arch == SW_ARCH_GEMMA2 ? "gelu_pytorch_tanh" : "silu";
    if (c->hidden_act[0] && strcmp(c->hidden_act, act) != 0)
        return sw_err_set(SW_EUNSUPPORTED, "model: hidden_act '%s' (%s takes %s)", c->hidden_act,
                          c->model_type[0] ? c->model_type : "this family", act);
    if (c->sliding_window < 0 || c->attn_softcap < 0 || c->final_softcap < 0 ||
        c->query_pre_attn_scalar < 0)
        return sw_err_set(SW_EINVAL, "model: negative sliding_window, soft-cap or "
                                     "query_pre_attn_scalar");
    if (c->vocab_size <= 0 || c->hidden_size <= 0 || c->intermediate_size <= 0 ||
        c->num_hidden_layers <= 0 || c->num_attention_heads <= 0 || c->num_key_value_heads <= 0 ||
        c->head_dim <= 0)
        return sw_err_set(SW_EINVAL,
                          "model: config sizes must be positive (vocab_size, "
                          "hidden_size, intermediate_size, num_hidden_layers, heads, head_dim)");
    if (c->num_attention_heads % c->num_key_value_heads)
        return sw_err_set(SW_EINVAL,
                          "model: num_attention_heads %lld not a multiple of "
                          "num_key_value_heads %lld",
                          (long long)c->num_attention_heads, (long long)c->num_key_value_heads);
    if (c->head_dim % 2)
        return sw_err_set(SW_EUNSUPPORTED, "model: odd head_dim %lld (RoPE needs pairs)",
                          (long long)c->head_dim);
    if (c->quant.unsupported[0])
        return sw_err_set(
            SW_EUNSUPPORTED,
            "model: quantization_config %s cannot be loaded (sw loads GPTQ int4/int8, "
            "bitsandbytes nf4/int8 and compressed-tensors fp8)",
            c->quant.unsupported);
    if (c->vocab_size > INT32_MAX)
        return sw_err_set(SW_ERANGE, "model: vocab_size %lld beyond int32 token ids",
                          (long long)c->vocab_size);
    return 0;
}

/* Create the parameters of one linear: "<prefix>.<name>.weight" [out, in] (+ bias). */
static int add_linear(struct sw_model *m, struct sw_linear *lin, const char *prefix, int64_t out,
                      int64_t in, int bias, uint64_t site) {
    char name[256];
    snprintf(name, sizeof name, "%s.weight", prefix);
    /* A model that may hold quantized linears allocates their storage when loading. */
    int deferred = m->cfg.quant.keep || m->cfg.quant.load_fmt != SW_QFMT_NONE;
    SW_TRY(add_param(m, name, 2, out, in, 1, 0, !deferred, &lin->w));
    if (bias) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        SW_TRY(sw_model_add_param(m, name, 1, out, 0, 0, 0, &lin->b));
    }
    lin->in = in;
    lin->out = out;
    lin->site = site;
    return 0;
}

static int build_params(struct sw_model *m) {
    const struct sw_model_config *c = &m->cfg;
    char name[256], prefix[192];
    SW_TRY(sw_model_add_param(m, "model.embed_tokens.weight", 2, m->V, m->C, 1, 0, &m->embed));
    int qkv_bias = c->attention_bias || c->arch == SW_ARCH_QWEN2;
    int o_bias = c->attention_bias && c->arch != SW_ARCH_QWEN2;
    int qk_norm = c->qk_norm || c->arch == SW_ARCH_QWEN3;
    for (int64_t l = 0; l < m->L; l++) {
        struct sw_layer *ly = &m->layers[l];
        ly->window = sw_model_config_layer_window(c, l);
        const int64_t outs[SW_LIN_COUNT] = {m->Hq * m->D, m->Hk * m->D, m->Hk * m->D, m->C,
                                            m->F,         m->F,         m->C};
        const int64_t ins[SW_LIN_COUNT] = {m->C, m->C, m->C, m->Hq * m->D, m->C, m->C, m->F};
        /* HF order: q, k, v, o, (q_norm, k_norm), gate, up, down, input_ln, post_ln. */
        for (int i = 0; i < SW_LIN_COUNT; i++) {
            int bias = i <= SW_LIN_V ? qkv_bias : i == SW_LIN_O ? o_bias : c->mlp_bias;
            snprintf(prefix, sizeof prefix, "model.layers.%lld.%s.%s", (long long)l,
                     sw_lin_parents[i], sw_lin_names[i]);
            SW_TRY(add_linear(m, &ly->lin[i], prefix, outs[i], ins[i], bias,
                              (uint64_t)l * SW_LIN_COUNT + (uint64_t)i));
            if (i == SW_LIN_O && qk_norm) {
                snprintf(name, sizeof name, "model.layers.%lld.self_attn.q_norm.weight",
                         (long long)l);
                SW_TRY(sw_model_add_param(m, name, 1, m->D, 0, 0, 0, &ly->q_norm));
                snprintf(name, sizeof name, "model.layers.%lld.self_attn.k_norm.weight",
                         (long long)l);
                SW_TRY(sw_model_add_param(m, name, 1, m->D, 0, 0, 0, &ly->k_norm));
            }
        }
        snprintf(name, sizeof name, "model.layers.%lld.input_layernorm.weight", (long long)l);
        SW_TRY(sw_model_add_param(m, name, 1, m->C, 0, 0, 0, &ly->ln1));
        snprintf(name, sizeof name, "model.layers.%lld.post_attention_layernorm.weight",
                 (long long)l);
        /* Gemma 2's post_attention_layernorm normalises the attention output; its MLP input
         * norm is pre_feedforward_layernorm, and post_feedforward_layernorm follows the MLP. */
        SW_TRY(sw_model_add_param(m, name, 1, m->C, 0, 0, 0, m->gemma ? &ly->post_attn : &ly->ln2));
        if (m->gemma) {
            snprintf(name, sizeof name, "model.layers.%lld.pre_feedforward_layernorm.weight",
                     (long long)l);
            SW_TRY(sw_model_add_param(m, name, 1, m->C, 0, 0, 0, &ly->ln2));
            snprintf(name, sizeof name, "model.layers.%lld.post_feedforward_layernorm.weight",
                     (long long)l);
            SW_TRY(sw_model_add_param(m, name, 1, m->C, 0, 0, 0, &ly->post_ff));
        }
    }
    SW_TRY(sw_model_add_param(m, "model.norm.weight", 1, m->C, 0, 0, 0, &m->norm));
    if (c->tie_word_embeddings)
        m->lm_head = m->embed;
    else
        SW_TRY(sw_model_add_param(m, "lm_head.weight", 2, m->V, m->C, 1, 0, &m->lm_head));
    return 0;
}

int sw_model_new(const struct sw_model_config *cfg, struct sw_backend *be, struct sw_model **out) {
    *out = NULL;
    SW_TRY(check_config(cfg));
    struct sw_model *m = calloc(1, sizeof(*m));
    if (!m) return sw_err_set(SW_ENOMEM, "model: out of memory");
    m->cfg = *cfg;
    m->be = be;
    m->C = cfg->hidden_size;
    m->F = cfg->intermediate_size;
    m->Hq = cfg->num_attention_heads;
    m->Hk = cfg->num_key_value_heads;
    m->D = cfg->head_dim;
    m->V = cfg->vocab_size;
    m->L = cfg->num_hidden_layers;
    m->gemma = cfg->arch == SW_ARCH_GEMMA2;
    if (m->gemma && (!be->geglu_fwd || !be->attention_ext_fwd ||
                     (cfg->final_softcap > 0 && !be->ce_fused_cap_fwd))) {
        free(m);
        return sw_err_set(SW_EUNSUPPORTED,
                          "model: the %s backend has no GeGLU / soft-capped attention and loss yet "
                          "(gemma2 runs on the CPU)",
                          be->name);
    }
    /* transformers: hidden * torch.tensor(hidden_size ** 0.5, dtype=float32) */
    m->embed_scale = m->gemma ? (float)sqrt((double)m->C) : 1.0f;
    /* Chunk of the fused LM-head loss: ~32 MiB of logits, between 16 and 1024 rows. */
    m->ce_chunk_rows = (8 << 20) / (m->V > 0 ? m->V : 1);
    if (m->ce_chunk_rows < 16) m->ce_chunk_rows = 16;
    if (m->ce_chunk_rows > 1024) m->ce_chunk_rows = 1024;
    m->layers = calloc((size_t)m->L, sizeof(*m->layers));
    m->acts = calloc((size_t)m->L, sizeof(*m->acts));
    int rc;
    if (!m->layers || !m->acts) {
        rc = sw_err_set(SW_ENOMEM, "model: out of memory");
        goto fail;
    }
    SW_TRY_GOTO(rc, build_params(m), fail);
    if (m->gemma) {
        int64_t n = m->C > m->D ? m->C : m->D;
        float *h = malloc((size_t)n * sizeof(float));
        m->ones = be->alloc(be, (size_t)n * sizeof(float));
        if (!h || !m->ones) {
            free(h);
            rc = sw_err_set(SW_ENOMEM, "model: out of memory");
            goto fail;
        }
        for (int64_t i = 0; i < n; i++)
            h[i] = 1.0f;
        rc = be->upload(be, m->ones, h, (size_t)n * sizeof(float));
        free(h);
        if (rc < 0) goto fail;
    }
    int64_t P = cfg->max_position_embeddings > 0 ? cfg->max_position_embeddings : 2048;
    SW_TRY_GOTO(rc, sw_model_rope_reserve(m, P), fail);
    *out = m;
    return 0;
fail:
    sw_model_free(m);
    return rc;
}

void sw_model_free(struct sw_model *m) {
    if (!m) return;
    for (int i = 0; i < m->nparams; i++) {
        struct sw_param *p = m->params[i];
        sw_model_qweight_free(m, p->quant);
        m->be->free(m->be, p->value.data);
        m->be->free(m->be, p->grad.data);
        free(p->name);
        free(p);
    }
    free(m->params);
    free(m->layers);
    free(m->acts);
    if (m->be) {
        m->be->free(m->be, m->ones);
        m->be->free(m->be, m->rope_cos);
        m->be->free(m->be, m->rope_sin);
    }
    free(m);
}

const struct sw_model_config *sw_model_config_get(const struct sw_model *m) {
    return &m->cfg;
}
struct sw_backend *sw_model_backend(const struct sw_model *m) {
    return m->be;
}
int sw_model_nparams(const struct sw_model *m) {
    return m->nparams;
}

struct sw_param *sw_model_param(struct sw_model *m, int i) {
    return i >= 0 && i < m->nparams ? m->params[i] : NULL;
}

struct sw_param *sw_model_param_find(struct sw_model *m, const char *name) {
    for (int i = 0; i < m->nparams; i++)
        if (strcmp(m->params[i]->name, name) == 0) return m->params[i];
    return NULL;
}

int64_t sw_model_numel(const struct sw_model *m, int trainable_only) {
    int64_t n = 0;
    for (int i = 0; i < m->nparams; i++)
        if (!trainable_only || m->params[i]->trainable) n += param_numel(m->params[i]);
    return n;
}

void sw_model_weight_mem(const struct sw_model *m, struct sw_model_weight_mem *out) {
    memset(out, 0, sizeof *out);
    for (int i = 0; i < m->nparams; i++) {
        const struct sw_param *p = m->params[i];
        if (p->quant) {
            if (!out->n_quant++) out->fmt = p->quant->fmt;
            out->quant_params += param_numel(p);
            out->quant_bytes += sw_qweight_nbytes(p->quant);
        } else if (p->value.data) {
            out->float_params += param_numel(p);
            out->float_bytes += (size_t)param_numel(p) * sizeof(float);
        }
    }
}

void sw_model_set_training(struct sw_model *m, int training) {
    m->training = training;
}

void sw_model_set_seed(struct sw_model *m, uint64_t seed, uint64_t forward_count) {
    m->seed = seed;
    m->forward_count = forward_count;
}

void sw_model_set_gradient_checkpointing(struct sw_model *m, int on) {
    m->grad_ckpt = on != 0;
}

size_t sw_model_scratch_peak(const struct sw_model *m) {
    return m->be->scratch_peak ? m->be->scratch_peak(m->be) : 0;
}

void sw_model_set_linear_observer(struct sw_model *m, sw_linear_observer_fn fn, void *ctx) {
    m->observer = fn;
    m->observer_ctx = fn ? ctx : NULL;
}

void sw_model_set_lora_enabled(struct sw_model *m, int on) {
    m->lora_off = !on;
}
