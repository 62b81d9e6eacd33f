/* sw_hfconfig — Hugging Face config.json / generation_config.json for the decoder-only families
 * sw trains and serves: Llama (incl. Llama-3 rope scaling), Qwen2/Qwen2.5 (q/k/v bias), Qwen3
 * (q/k RMSNorm, explicit head_dim), Mistral (sliding-window attention) and Gemma 2 (GeGLU,
 * (1 + w) RMSNorms before and after each block, scaled embeddings, logit soft-capping,
 * query_pre_attn_scalar, alternating local / global layers).
 *
 * Both rope spellings are accepted: transformers 5's "rope_parameters": {"rope_theta",
 * "rope_type", ...} and the older top-level "rope_theta" + "rope_scaling". Missing optional keys
 * take transformers' defaults for the model_type; a missing required key, a wrong type or an
 * inconsistent value (hidden_size not divisible by heads without head_dim, kv heads not dividing
 * heads) is SW_EFORMAT naming the file and key. */
#ifndef SW_HFCONFIG_H
#define SW_HFCONFIG_H

#include "sw_qformat.h"

#include <stddef.h>
#include <stdint.h>

enum sw_arch { SW_ARCH_LLAMA = 0, SW_ARCH_QWEN2, SW_ARCH_QWEN3, SW_ARCH_MISTRAL, SW_ARCH_GEMMA2 };

enum sw_rope_type { SW_ROPE_DEFAULT = 0, SW_ROPE_LLAMA3, SW_ROPE_LINEAR };

struct sw_model_config {
    enum sw_arch arch;
    char model_type[32];   /* "llama", "qwen2", "qwen3", "mistral", "gemma2" */
    char architecture[64]; /* architectures[0], e.g. "Qwen3ForCausalLM" */
    char torch_dtype[16]; /* "bfloat16", "float32", ... ("dtype" in transformers 5); "" if absent */
    char hidden_act[24];  /* "silu"; Gemma 2: hidden_activation "gelu_pytorch_tanh" */
    int64_t vocab_size;
    int64_t hidden_size;
    int64_t intermediate_size;
    int64_t num_hidden_layers;
    int64_t num_attention_heads;
    int64_t num_key_value_heads; /* default as transformers: heads (llama), 32 (qwen2/qwen3) */
    int64_t head_dim;            /* default: hidden_size / heads (llama, qwen2), 128 (qwen3) */
    int64_t max_position_embeddings;
    double rms_norm_eps;
    double rope_theta;
    enum sw_rope_type rope_type;
    double rope_factor;                 /* llama3 / linear */
    double rope_low_freq_factor;        /* llama3 */
    double rope_high_freq_factor;       /* llama3 */
    int64_t rope_original_max_position; /* llama3: original_max_position_embeddings */
    int tie_word_embeddings;
    int attention_bias; /* q/k/v (and o for llama) biases; qwen2 always has q/k/v bias */
    int mlp_bias;
    int qk_norm; /* qwen3 */
    /* Sliding-window attention: a sliding layer's query at position i sees keys j > i − window.
     * Layer l slides when sliding_window > 0 and (sliding_period <= 1 or (l + 1) % period != 0):
     * Mistral period 1 (every layer), Gemma 2 period 2 (even layers local, odd global). */
    int64_t sliding_window; /* 0: none (Mistral's "sliding_window": null) */
    int sliding_period;
    double attn_softcap;          /* Gemma 2 attn_logit_softcapping (0: none) */
    double final_softcap;         /* Gemma 2 final_logit_softcapping (0: none) */
    double query_pre_attn_scalar; /* Gemma 2: attention scale 1/sqrt(this); 0: head_dim */
    int64_t bos_token_id; /* -1 when absent or null (llama: transformers' default 1, eos 2) */
    int64_t eos_token_ids[8];
    int n_eos;
    int64_t pad_token_id; /* -1 when absent */
    /* quantization_config (a quantized folder: GPTQ, bitsandbytes, compressed-tensors FP8) and
     * what the model does with it (sw_qformat.h); all zero for a float folder. Not written
     * back by sw_model_config_write. */
    struct sw_quant_spec quant;
};

/* Parse config.json text; name is used in messages. */
int sw_model_config_parse(const char *json, size_t len, const char *name,
                          struct sw_model_config *c);
int sw_model_config_load(const char *path, struct sw_model_config *c);
/* Write config.json (atomic) in the form transformers writes for the family (top-level
 * rope_theta/rope_scaling, so both transformers 4.x and 5.x load it). */
int sw_model_config_write(const struct sw_model_config *c, const char *path);
/* The sliding window of layer l (0: full attention). */
int64_t sw_model_config_layer_window(const struct sw_model_config *c, int64_t l);
/* Total parameter count implied by the config. */
int64_t sw_model_config_num_params(const struct sw_model_config *c);

struct sw_generation_config {
    int64_t bos_token_id;
    int64_t eos_token_ids[8];
    int n_eos;
    int64_t pad_token_id;
    int do_sample;
    double temperature, top_p, repetition_penalty;
    int64_t top_k, max_new_tokens;
};
/* Defaults (greedy, temperature 1, top_p 1, top_k 50, max_new_tokens 0 = unset) then the file. */
int sw_generation_config_load(const char *path, struct sw_generation_config *g);

#endif
