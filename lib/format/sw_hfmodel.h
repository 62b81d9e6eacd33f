/* sw_hfmodel — a Hugging Face model folder: config.json, the optional generation_config.json,
 * and the safetensors weights (model.safetensors or a sharded index), opened and validated
 * together; plus the inventory that compares the tensors present with the tensors the config
 * implies for its architecture (names and shapes exactly as transformers writes them):
 *
 *   model.embed_tokens.weight                         [vocab, hidden]
 *   model.layers.N.input_layernorm.weight             [hidden]
 *   model.layers.N.self_attn.q_proj.weight            [heads*head_dim, hidden]   (+ .bias)
 *   model.layers.N.self_attn.k_proj.weight            [kv_heads*head_dim, hidden] (+ .bias)
 *   model.layers.N.self_attn.v_proj.weight            [kv_heads*head_dim, hidden] (+ .bias)
 *   model.layers.N.self_attn.o_proj.weight            [hidden, heads*head_dim]   (+ .bias:
 * llama/qwen3) model.layers.N.self_attn.{q,k}_norm.weight        [head_dim]                 (qwen3)
 *   model.layers.N.post_attention_layernorm.weight    [hidden]
 *   model.layers.N.mlp.{gate,up}_proj.weight          [intermediate, hidden]     (+ .bias:
 * mlp_bias) model.layers.N.mlp.down_proj.weight               [hidden, intermediate]     (+ .bias:
 * mlp_bias) model.norm.weight                                 [hidden] lm_head.weight [vocab,
 * hidden]  (absent when tied; allowed) Biases exist when attention_bias is set (always for qwen2's
 * q/k/v, never its o_proj). */
#ifndef SW_HFMODEL_H
#define SW_HFMODEL_H

#include "sw_hfconfig.h"
#include "sw_safetensors.h"

#include <stddef.h>
#include <stdint.h>

/* One tensor the config implies. */
struct sw_hf_tensor_spec {
    char name[96];
    int ndim;
    int64_t shape[2];
    int optional; /* may be absent (lm_head.weight of a tied model) */
};

/* Every tensor the config implies, in transformers' order (embeddings, layers, norm, head).
 * *specs is malloc'ed (caller frees); *n is its length. Returns 0 or SW_ENOMEM. */
int sw_hf_expected_tensors(const struct sw_model_config *c, struct sw_hf_tensor_spec **specs,
                           int *n);

enum sw_hf_issue_kind {
    SW_HF_MISSING = 0, /* implied by the config, not in the files */
    SW_HF_SHAPE,       /* present with another shape */
    SW_HF_DTYPE,       /* present with a non-float dtype (F32, F16, BF16, F64, F8 are floats) */
    SW_HF_UNEXPECTED,  /* in the files, not implied by the config */
};

struct sw_hf_issue {
    enum sw_hf_issue_kind kind;
    char name[256];
    int want_ndim, got_ndim;
    int64_t want[2];
    int64_t got[SW_TENSOR_MAX_DIMS];
    enum sw_dtype got_dtype;
};

/* The result of comparing a set of tensors with a config. Ignored on purpose: rotary
 * "*.rotary_emb.inv_freq" buffers that old checkpoints carry (recomputed from the config). */
struct sw_hf_inventory {
    int n_expected; /* specs implied by the config (optional ones included) */
    int n_matched;  /* present with the right shape */
    int n_ignored;  /* inv_freq buffers skipped */
    int n_issues;
    struct sw_hf_issue
        *issues;    /* missing first (config order), then shape/dtype, then unexpected */
    int64_t params; /* elements of the matched tensors */
};

/* Compare s with the tensors c implies. Fills inv (release with sw_hf_inventory_release);
 * returns 0 even when there are issues (inspect them in inv), or SW_ENOMEM. */
int sw_hf_inventory_check(const struct sw_model_config *c, const struct sw_st_set *s,
                          struct sw_hf_inventory *inv);
void sw_hf_inventory_release(struct sw_hf_inventory *inv);
/* One line for an issue: "missing tensor 'model.norm.weight' [16]",
 * "tensor 'x' has shape [16, 8] but the config implies [8, 16]", ... into buf; returns buf. */
char *sw_hf_issue_str(const struct sw_hf_issue *is, char *buf, size_t cap);
/* 0 when inv has no issues; otherwise SW_EFORMAT with a message naming where (what), how many
 * of each kind and the first few names (for loaders that must refuse a broken folder). */
int sw_hf_inventory_error(const struct sw_hf_inventory *inv, const char *what);

/* An open model folder. */
struct sw_hfmodel {
    char *dir; /* owned copy of the folder path */
    struct sw_model_config config;
    int has_generation_config;
    struct sw_generation_config generation; /* defaults when the file is absent */
    struct sw_st_set *weights;              /* owned */
};

/* Open dir: config.json (required), generation_config.json (optional; a malformed one is an
 * error), weights through sw_st_set_open(dir). Does not run the inventory (see
 * sw_hfmodel_verify). *out is heap-allocated; free with sw_hfmodel_close. */
int sw_hfmodel_open(const char *dir, struct sw_hfmodel **out);
void sw_hfmodel_close(struct sw_hfmodel *m);
/* Run the inventory on an open model: 0 when every tensor is present with the right shape and
 * nothing unexpected is there, else SW_EFORMAT (see sw_hf_inventory_error). */
int sw_hfmodel_verify(const struct sw_hfmodel *m);

#endif
