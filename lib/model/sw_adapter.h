/* sw_adapter — PEFT LoRA adapter folders: adapter_config.json (sw_adapter_config: what sw-train
 * writes and what it reads back) and adapter_model.safetensors opened, every tensor parsed into
 * (layer, module, A/B) and checked against a model config, so an adapter trained on another base
 * is a clear error naming the tensor. Used by evaluation, serving, merging and training. */
#ifndef SW_ADAPTER_H
#define SW_ADAPTER_H

#include "sw_hfconfig.h"
#include "sw_safetensors.h"

#include <stddef.h>
#include <stdint.h>

/* A LoRA adapter's description (adapter_config.json). */
struct sw_adapter_config {
    int r;
    double alpha;
    double dropout;
    int use_rslora;
    char *target_modules; /* comma list of the module names that carry adapters ("q_proj,v_proj") */
    char *base_model;     /* base_model_name_or_path */
};

/* adapter_config.json text for lc (malloc'ed). */
char *sw_adapter_config_json(const struct sw_adapter_config *lc);
/* Parse adapter_config.json text; name is used in messages. lc's strings are malloc'ed (free
 * with sw_adapter_config_release). Requires peft_type LORA, r, lora_alpha, target_modules. */
int sw_adapter_config_parse(const char *text, size_t len, const char *name,
                            struct sw_adapter_config *lc);
void sw_adapter_config_release(struct sw_adapter_config *lc);

/* ---- PEFT LoRA adapters --------------------------------------------------------------------- */

/* The linear modules a LoRA adapter can target, in HF's order inside a decoder layer. */
enum sw_adapter_kind {
    SW_ADAPTER_Q = 0,
    SW_ADAPTER_K,
    SW_ADAPTER_V,
    SW_ADAPTER_O,
    SW_ADAPTER_GATE,
    SW_ADAPTER_UP,
    SW_ADAPTER_DOWN,
    SW_ADAPTER_NKINDS
};
/* "q_proj", ... and its parent "self_attn" / "mlp". */
const char *sw_adapter_kind_name(enum sw_adapter_kind k);
const char *sw_adapter_kind_parent(enum sw_adapter_kind k);

/* One adapted module: base weight "model.layers.<layer>.<parent>.<kind>.weight" [out, in],
 * A [r, in], B [out, r] (entries borrowed from the adapter's weight file). */
struct sw_adapter_module {
    int64_t layer;
    enum sw_adapter_kind kind;
    const struct sw_st_entry *a, *b;
};

struct sw_adapter {
    char *dir;                         /* owned copy of the folder path */
    struct sw_adapter_config cfg;      /* r, lora_alpha, use_rslora, target_modules as written */
    double scale;                      /* lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora */
    struct sw_st_set *weights;         /* adapter_model.safetensors (owned) */
    struct sw_adapter_module *modules; /* sorted by (layer, kind); n_modules of them */
    int n_modules;
    int64_t max_layer;            /* largest layer index present (−1 when there are no modules) */
    int kinds[SW_ADAPTER_NKINDS]; /* 1 for each module kind present in at least one layer */
};

/* Open dir: adapter_config.json (sw_adapter_config_parse, plus a refusal of what sw cannot
 * apply: rank_pattern / alpha_pattern, modules_to_save, lora_bias, DoRA) and
 * adapter_model.safetensors, whose every tensor must be
 * "base_model.model.model.layers.<N>.<self_attn|mlp>.<kind>.lora_<A|B>.weight" with a float
 * dtype, A [r, in] and B [out, r] with the config's r, and each A paired with its B. Errors name
 * the file and the tensor: SW_ENOTFOUND (missing file or partner), SW_EFORMAT (bad name, shape or
 * dtype), SW_EUNSUPPORTED (embedding adapters, extra trained modules, DoRA, per-module ranks).
 * *out is heap-allocated; free with sw_adapter_close. */
int sw_adapter_open(const char *dir, struct sw_adapter **out);
void sw_adapter_close(struct sw_adapter *a);

/* Check that the adapter fits a base model of config c: every module's layer < layers and
 * A [r, in], B [out, r] with in/out the base linear's shape. SW_EFORMAT naming the adapter
 * tensor and both shapes (or the layer count) otherwise. */
int sw_adapter_check(const struct sw_adapter *a, const struct sw_model_config *c);

/* The [out, in] shape of base linear `kind` for config c. */
void sw_adapter_base_shape(const struct sw_model_config *c, enum sw_adapter_kind kind, int64_t *out,
                           int64_t *in);

/* Write the kinds present as a comma list ("q_proj,v_proj") into buf (cap bytes); returns buf. */
char *sw_adapter_kinds_str(const struct sw_adapter *a, char *buf, size_t cap);

/* 1 when every kind present is present in every layer [0, layers), else 0 (PEFT's
 * layers_to_transform). */
int sw_adapter_covers_all_layers(const struct sw_adapter *a, int64_t layers);

#endif
