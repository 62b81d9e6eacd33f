/* Shared test fixtures. Model configurations the unit and CUDA tests build in memory, in one place:
 * the defaults every tiny test model shares (SiLU, RMSNorm eps 1e-6, RoPE theta 1e6, 128 positions,
 * bos 1, pad 0) and what each family adds the way its Hugging Face config would (Qwen2: tied
 * embeddings and q/k/v biases; Qwen3: tied embeddings and q/k norms; Llama: an untied LM head). A
 * test sets its own shape and overrides what it exercises after the call. */
#ifndef SW_TEST_FIXTURES_H
#define SW_TEST_FIXTURES_H

#include "sw_hfconfig.h"
#include "sw_model.h"
#include "sw_safetensors.h"

#include <math.h>
#include <string.h>

struct sw_test_shape {
    int64_t vocab, hidden, intermediate, layers, heads, kv_heads, head_dim;
};

static inline void sw_test_config(struct sw_model_config *c, enum sw_arch arch,
                                  struct sw_test_shape s) {
    memset(c, 0, sizeof *c);
    c->arch = arch;
    strcpy(c->hidden_act, "silu");
    c->vocab_size = s.vocab;
    c->hidden_size = s.hidden;
    c->intermediate_size = s.intermediate;
    c->num_hidden_layers = s.layers;
    c->num_attention_heads = s.heads;
    c->num_key_value_heads = s.kv_heads;
    c->head_dim = s.head_dim;
    c->max_position_embeddings = 128;
    c->rms_norm_eps = 1e-6;
    c->rope_theta = 1e6;
    c->bos_token_id = 1;
    c->pad_token_id = 0;
    switch (arch) {
    case SW_ARCH_LLAMA: strcpy(c->model_type, "llama"); break;
    case SW_ARCH_QWEN2:
        strcpy(c->model_type, "qwen2");
        c->tie_word_embeddings = 1;
        c->attention_bias = 1;
        break;
    case SW_ARCH_QWEN3:
        strcpy(c->model_type, "qwen3");
        c->tie_word_embeddings = 1;
        c->qk_norm = 1;
        break;
    case SW_ARCH_MISTRAL: /* a window shorter than the tests' sequences */
        strcpy(c->model_type, "mistral");
        c->sliding_window = 4;
        c->sliding_period = 1;
        break;
    case SW_ARCH_GEMMA2:
        strcpy(c->model_type, "gemma2");
        strcpy(c->hidden_act, "gelu_pytorch_tanh");
        c->tie_word_embeddings = 1;
        c->sliding_window = 4;
        c->sliding_period = 2;
        c->attn_softcap = 50.0;
        c->final_softcap = 30.0;
        c->query_pre_attn_scalar = (double)s.head_dim;
        break;
    }
}

/* Largest |a − b| over the largest |b| (at least 1e-6): the error measure of the parity tests
 * (CPU against CUDA, quantized against float). A NaN anywhere gives infinity. */
static inline double sw_test_rel_err(const float *a, const float *b, int64_t n) {
    double md = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > md || isnan(d)) md = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return md / (mb > 1e-6 ? mb : 1e-6);
}

/* The golden tiny Llama (test/golden/model/llama) with its PEFT adapter (llama_lora: r 4,
 * alpha 8, all-linear) loaded into it, on be: the policy of the preference, GRPO and
 * borrowed-engine tests. NULL with sw_err set on failure. Run from the repository root. */
static inline struct sw_model *sw_test_llama_lora(struct sw_backend *be) {
    struct sw_model_config c;
    struct sw_model *m = NULL;
    struct sw_st_set *s = NULL, *a = NULL;
    int rc = sw_model_config_load("test/golden/model/llama/config.json", &c);
    if (rc == 0) rc = sw_model_new(&c, be, &m);
    if (rc == 0) rc = sw_st_set_open("test/golden/model/llama", &s);
    if (rc == 0) rc = sw_model_load(m, s);
    struct sw_lora_config lc = {.r = 4, .alpha = 8, .target_modules = "all-linear", .seed = 1};
    if (rc == 0) rc = sw_model_lora_add(m, &lc);
    if (rc == 0) rc = sw_st_set_open("test/golden/model/llama_lora/adapter_model.safetensors", &a);
    if (rc == 0) rc = sw_model_lora_load(m, a);
    sw_st_set_close(s);
    sw_st_set_close(a);
    if (rc < 0) {
        sw_model_free(m);
        return NULL;
    }
    return m;
}

/* Every LoRA gradient of m (CPU backend: host memory) against the golden "<name>.grad.<param>"
 * tensors of g: the worst over parameters of max |got − ref| / max |ref|; *n_cmp counts the
 * parameters compared. A missing or non-F32 golden gives infinity. */
static inline double sw_test_lora_grads_err(struct sw_model *m, const struct sw_st_file *g,
                                            const char *name, int *n_cmp) {
    double worst = 0;
    *n_cmp = 0;
    for (int i = 0; i < sw_model_nparams(m); i++) {
        struct sw_param *p = sw_model_param(m, i);
        if (!p->is_lora) continue;
        char k[256];
        snprintf(k, sizeof k, "%s.grad.%s", name, p->name);
        const struct sw_st_entry *e = sw_st_find(g, k);
        if (!e || e->dtype != SW_DTYPE_F32) return INFINITY;
        int64_t n = (int64_t)(e->nbytes / 4);
        const float *ref = e->data, *got = p->grad.data;
        double mx = 1e-30, md = 0;
        for (int64_t j = 0; j < n; j++) {
            mx = fmax(mx, fabs(ref[j]));
            md = fmax(md, fabs((double)got[j] - ref[j]));
        }
        worst = fmax(worst, md / mx);
        (*n_cmp)++;
    }
    return worst;
}

#endif
