/* sw_hfconfig — config.json and generation_config.json of Llama, Qwen2, Qwen3, Mistral and Gemma 2.
 *
 * Defaults follow transformers 5's configuration_{llama,qwen2,qwen3}.py for the keys those
 * classes default, so a config.json that leaves a key out means the same model here as there:
 *   key                        llama            qwen2            qwen3
 *   num_key_value_heads        = heads          32               32
 *   head_dim                   hidden / heads   hidden / heads   128
 *   max_position_embeddings    2048             32768            32768
 *   rms_norm_eps               1e-6             1e-6             1e-6
 *   rope_theta                 10000            10000            10000
 *   tie_word_embeddings        false            false            false
 *   attention_bias             false            (q/k/v: always)  false
 *   bos / eos token            1 / 2            none / none      none / none
 * The five size keys (vocab_size, hidden_size, intermediate_size, num_hidden_layers,
 * num_attention_heads) are required: transformers' defaults for them describe a 7B model, and a
 * config.json that lacks one is broken rather than meant to be that model.
 *
 * Mistral (configuration_mistral.py) as Llama except: num_key_value_heads 8, max positions
 * 131072, sliding_window 4096 (null: none). Gemma 2 (configuration_gemma2.py): kv heads 4,
 * head_dim 256, hidden_activation gelu_pytorch_tanh, 8192 positions, bos 2 / eos 1 / pad 0,
 * tied, query_pre_attn_scalar 256, sliding_window 4096, final_logit_softcapping 30,
 * attn_logit_softcapping 50, layer_types alternating sliding / full from layer 0.
 *
 * What sw cannot run is SW_EUNSUPPORTED naming the key: another model_type, an activation other
 * than the family's (silu; Gemma 2 gelu_pytorch_tanh), rope types other than
 * default/linear/llama3, partial rotary embeddings, Qwen's sliding-window attention, layer_types
 * that are not one sliding window every layer or every layer but each period-th. */
#include "sw_hfconfig.h"

#include "sw_err.h"
#include "sw_io.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HF_CONFIG_MAX (16u << 20)

/* ---- typed getters: absent or null keeps the default; a wrong type is SW_EFORMAT ------------ */

static const char *kind(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a JSON value";
}

static int get_int(const json_t *o, const char *key, const char *name, int64_t *out) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
        fabs(json_real_value(v)) < 9.0e15) {
        *out = (int64_t)json_real_value(v); /* "4096.0": an integer written by a float printer */
        return 0;
    }
    if (!json_is_integer(v))
        return sw_err_set(SW_EFORMAT, "%s: \"%s\" is %s, expected an integer", name, key, kind(v));
    *out = json_integer_value(v);
    return 0;
}

static int get_num(const json_t *o, const char *key, const char *name, double *out) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v))
        return sw_err_set(SW_EFORMAT, "%s: \"%s\" is %s, expected a number", name, key, kind(v));
    *out = json_number_value(v);
    return 0;
}

static int get_bool(const json_t *o, const char *key, const char *name, int *out) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v))
        return sw_err_set(SW_EFORMAT, "%s: \"%s\" is %s, expected true or false", name, key,
                          kind(v));
    *out = json_is_true(v);
    return 0;
}

static int get_str(const json_t *o, const char *key, const char *name, char *out, size_t cap) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v))
        return sw_err_set(SW_EFORMAT, "%s: \"%s\" is %s, expected a string", name, key, kind(v));
    if (json_string_length(v) >= cap)
        return sw_err_set(SW_EFORMAT, "%s: \"%s\" is longer than %zu characters", name, key,
                          cap - 1);
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

/* eos_token_id: an integer or a list of at most 8; null means none. */
static int get_token_list(const json_t *o, const char *key, const char *name, int64_t *ids,
                          int *n) {
    const json_t *v = json_object_get(o, key);
    if (!v) return 0;
    if (json_is_null(v)) {
        *n = 0;
        return 0;
    }
    if (json_is_integer(v)) {
        ids[0] = json_integer_value(v);
        *n = 1;
    } else if (json_is_array(v)) {
        if (json_array_size(v) > 8)
            return sw_err_set(SW_EFORMAT, "%s: \"%s\" lists %zu tokens (at most 8)", name, key,
                              json_array_size(v));
        *n = 0;
        for (size_t i = 0; i < json_array_size(v); i++) {
            const json_t *x = json_array_get(v, i);
            if (!json_is_integer(x))
                return sw_err_set(SW_EFORMAT, "%s: \"%s\"[%zu] is %s, expected an integer", name,
                                  key, i, kind(x));
            ids[(*n)++] = json_integer_value(x);
        }
    } else {
        return sw_err_set(SW_EFORMAT, "%s: \"%s\" is %s, expected an integer or a list", name, key,
                          kind(v));
    }
    for (int i = 0; i < *n; i++)
        if (ids[i] < 0)
            return sw_err_set(SW_EFORMAT, "%s: \"%s\" holds negative token id %lld", name, key,
                              (long long)ids[i]);
    return 0;
}

static int get_token(const json_t *o, const char *key, const char *name, int64_t *out) {
    const json_t *v = json_object_get(o, key);
    if (!v) return 0;
    if (json_is_null(v)) {
        *out = -1;
        return 0;
    }
    /* Some configs carry a list for bos/pad too; the first is what generation uses. */
    if (json_is_array(v) && json_array_size(v) > 0) v = json_array_get(v, 0);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return sw_err_set(SW_EFORMAT, "%s: \"%s\" is %s, expected a non-negative integer", name,
                          key, kind(v));
    *out = json_integer_value(v);
    return 0;
}

/* ---- rope ------------------------------------------------------------------------------ */

/* rope_parameters (transformers 5) or rope_scaling (older) plus top-level rope_theta. Values
 * inside the dict win over top-level ones, as in transformers' convert_rope_params_to_dict. */
static int parse_rope(const json_t *root, const char *name, struct sw_model_config *c) {
    const json_t *rp = json_object_get(root, "rope_parameters");
    const char *rkey = "rope_parameters";
    if (!rp || json_is_null(rp)) {
        rp = json_object_get(root, "rope_scaling");
        rkey = "rope_scaling";
    }
    SW_TRY(get_num(root, "rope_theta", name, &c->rope_theta));
    c->rope_type = SW_ROPE_DEFAULT;
    if (!rp || json_is_null(rp)) goto check;
    if (!json_is_object(rp))
        return sw_err_set(SW_EFORMAT, "%s: \"%s\" is %s, expected an object", name, rkey, kind(rp));
    if (json_object_get(rp, "full_attention") || json_object_get(rp, "sliding_attention"))
        return sw_err_set(SW_EUNSUPPORTED, "%s: \"%s\" is nested per layer type (not supported)",
                          name, rkey);
    SW_TRY(get_num(rp, "rope_theta", name, &c->rope_theta));
    char type[32] = "default";
    SW_TRY(get_str(rp, "type", name, type, sizeof type));
    SW_TRY(get_str(rp, "rope_type", name, type, sizeof type));
    double partial = 1.0;
    SW_TRY(get_num(rp, "partial_rotary_factor", name, &partial));
    if (partial != 1.0)
        return sw_err_set(SW_EUNSUPPORTED, "%s: %s.partial_rotary_factor %g (only 1 is supported)",
                          name, rkey, partial);
    if (strcmp(type, "default") == 0) goto check;
    if (strcmp(type, "linear") == 0)
        c->rope_type = SW_ROPE_LINEAR;
    else if (strcmp(type, "llama3") == 0)
        c->rope_type = SW_ROPE_LLAMA3;
    else
        return sw_err_set(SW_EUNSUPPORTED,
                          "%s: %s type '%s' is not supported (default, linear, llama3)", name, rkey,
                          type);
    c->rope_factor = NAN;
    SW_TRY(get_num(rp, "factor", name, &c->rope_factor));
    if (isnan(c->rope_factor))
        return sw_err_set(SW_EFORMAT, "%s: %s type '%s' needs \"factor\"", name, rkey, type);
    if (!(c->rope_factor >= 1.0))
        return sw_err_set(SW_EFORMAT, "%s: %s.factor %g must be at least 1", name, rkey,
                          c->rope_factor);
    if (c->rope_type == SW_ROPE_LLAMA3) {
        c->rope_low_freq_factor = c->rope_high_freq_factor = NAN;
        SW_TRY(get_num(rp, "low_freq_factor", name, &c->rope_low_freq_factor));
        SW_TRY(get_num(rp, "high_freq_factor", name, &c->rope_high_freq_factor));
        if (isnan(c->rope_low_freq_factor) || isnan(c->rope_high_freq_factor))
            return sw_err_set(SW_EFORMAT, "%s: %s type 'llama3' needs \"%s\"", name, rkey,
                              isnan(c->rope_low_freq_factor) ? "low_freq_factor"
                                                             : "high_freq_factor");
        if (!(c->rope_high_freq_factor > c->rope_low_freq_factor) || !(c->rope_low_freq_factor > 0))
            return sw_err_set(SW_EFORMAT,
                              "%s: %s: need 0 < low_freq_factor (%g) < high_freq_factor (%g)", name,
                              rkey, c->rope_low_freq_factor, c->rope_high_freq_factor);
        c->rope_original_max_position = c->max_position_embeddings;
        SW_TRY(
            get_int(rp, "original_max_position_embeddings", name, &c->rope_original_max_position));
        if (c->rope_original_max_position <= 0)
            return sw_err_set(
                SW_EFORMAT, "%s: %s.original_max_position_embeddings must be positive", name, rkey);
    }
check:
    if (!(c->rope_theta > 0) || !isfinite(c->rope_theta))
        return sw_err_set(SW_EFORMAT, "%s: rope_theta %g must be positive", name, c->rope_theta);
    return 0;
}

/* ---- config.json ------------------------------------------------------------------------ */

static int check_size(const char *name, const char *key, int64_t v, int64_t max) {
    if (v <= 0)
        return sw_err_set(SW_EFORMAT, "%s: \"%s\" is %lld, must be positive", name, key,
                          (long long)v);
    if (v > max)
        return sw_err_set(SW_EFORMAT, "%s: \"%s\" is %lld, more than sw accepts (%lld)", name, key,
                          (long long)v, (long long)max);
    return 0;
}

/* quantization_config: the layouts sw's model loads (GPTQ int4/int8, AWQ gemm int4, bitsandbytes
 * NF4 and LLM.int8, compressed-tensors float-quantized FP8) set keep; any other is recorded in
 * q->unsupported (a config reader must not fail on it: sw_model_new does). */
static int parse_quant(const json_t *root, const char *name, struct sw_quant_spec *q) {
    const json_t *qc = json_object_get(root, "quantization_config");
    if (!qc || json_is_null(qc)) return 0;
    if (!json_is_object(qc))
        return sw_err_set(SW_EFORMAT, "%s: \"quantization_config\" is %s, expected an object", name,
                          kind(qc));
    SW_TRY(get_str(qc, "quant_method", name, q->method, sizeof q->method));
    char fmt[48] = "";
    if (!strcmp(q->method, "gptq")) {
        int64_t bits = 0;
        SW_TRY(get_int(qc, "bits", name, &bits));
        SW_TRY(get_str(qc, "checkpoint_format", name, fmt, sizeof fmt));
        q->gptq_v2 = !strcmp(fmt, "gptq_v2");
        if (bits != 4 && bits != 8)
            snprintf(q->unsupported, sizeof q->unsupported, "gptq with %lld bits (4 or 8 load)",
                     (long long)bits);
    } else if (!strcmp(q->method, "awq")) {
        int64_t bits = 0;
        SW_TRY(get_int(qc, "bits", name, &bits));
        SW_TRY(get_str(qc, "version", name, fmt, sizeof fmt));
        if (bits != 4 || (fmt[0] && strcasecmp(fmt, "gemm") != 0))
            snprintf(q->unsupported, sizeof q->unsupported, "awq %lld bits %s (4-bit gemm loads)",
                     (long long)bits, fmt);
    } else if (!strcmp(q->method, "bitsandbytes")) {
        int in4 = 0, in8 = 0;
        SW_TRY(get_bool(qc, "load_in_4bit", name, &in4));
        SW_TRY(get_bool(qc, "load_in_8bit", name, &in8));
        snprintf(fmt, sizeof fmt, "fp4");
        SW_TRY(get_str(qc, "bnb_4bit_quant_type", name, fmt, sizeof fmt));
        if (in4 && strcmp(fmt, "nf4") != 0)
            snprintf(q->unsupported, sizeof q->unsupported, "bitsandbytes 4-bit %s (nf4 loads)",
                     fmt);
        else if (!in4 && !in8)
            snprintf(q->unsupported, sizeof q->unsupported,
                     "bitsandbytes without load_in_4bit or load_in_8bit");
    } else if (!strcmp(q->method, "compressed-tensors")) {
        SW_TRY(get_str(qc, "format", name, fmt, sizeof fmt));
        if (strcmp(fmt, "float-quantized") != 0)
            snprintf(q->unsupported, sizeof q->unsupported,
                     "compressed-tensors format '%s' (float-quantized loads)", fmt);
    } else {
        snprintf(q->unsupported, sizeof q->unsupported, "quant_method '%s'",
                 q->method[0] ? q->method : "(none)");
    }
    q->keep = 1;
    return 0;
}

/* Mistral / Gemma 2: sliding_window, layer_types (as sliding_period), and Gemma 2's soft-caps and
 * query_pre_attn_scalar. A JSON null switches a feature off, as in transformers. */
static int parse_sliding(const json_t *root, const char *name, struct sw_model_config *c) {
    int gemma2 = c->arch == SW_ARCH_GEMMA2;
    const json_t *sw = json_object_get(root, "sliding_window");
    c->sliding_window = 4096;
    if (sw && json_is_null(sw)) c->sliding_window = 0;
    SW_TRY(get_int(root, "sliding_window", name, &c->sliding_window));
    if (c->sliding_window < 0)
        return sw_err_set(SW_EFORMAT, "%s: \"sliding_window\" %lld must not be negative", name,
                          (long long)c->sliding_window);
    c->sliding_period = gemma2 ? 2 : 1;
    const json_t *lt = json_object_get(root, "layer_types");
    if (lt && !json_is_null(lt)) {
        if (!json_is_array(lt) || (int64_t)json_array_size(lt) != c->num_hidden_layers)
            return sw_err_set(SW_EFORMAT, "%s: \"layer_types\" is not a list of %lld layer types",
                              name, (long long)c->num_hidden_layers);
        int64_t n = c->num_hidden_layers, first_full = -1;
        for (int64_t i = 0; i < n; i++) {
            const json_t *x = json_array_get(lt, (size_t)i);
            const char *t = json_is_string(x) ? json_string_value(x) : "";
            if (strcmp(t, "full_attention") != 0 && strcmp(t, "sliding_attention") != 0)
                return sw_err_set(SW_EUNSUPPORTED,
                                  "%s: layer_types[%lld] is not \"full_attention\" or "
                                  "\"sliding_attention\"",
                                  name, (long long)i);
            if (first_full < 0 && t[0] == 'f') first_full = i;
        }
        /* One period: sliding layers then a full one (Gemma 2: 2, Gemma 3: 6); all full: none. */
        c->sliding_period = first_full < 0 ? 1 : (int)(first_full + 1);
        if (c->sliding_period == 1 && first_full == 0) c->sliding_window = 0; /* all full */
        for (int64_t i = 0; i < n; i++) {
            int full = json_string_value(json_array_get(lt, (size_t)i))[0] == 'f';
            if (full != (sw_model_config_layer_window(c, i) == 0) &&
                (c->sliding_window > 0 || !full))
                return sw_err_set(SW_EUNSUPPORTED,
                                  "%s: layer_types[%lld] breaks the pattern of %d sliding layers "
                                  "then a full one (not supported)",
                                  name, (long long)i, c->sliding_period - 1);
        }
    }
    if (!gemma2) return 0;
    int bidir = 0;
    SW_TRY(get_bool(root, "use_bidirectional_attention", name, &bidir));
    if (bidir)
        return sw_err_set(SW_EUNSUPPORTED, "%s: use_bidirectional_attention is not supported",
                          name);
    static const char *const keys[] = {"final_logit_softcapping", "attn_logit_softcapping",
                                       "query_pre_attn_scalar"};
    double *vals[] = {&c->final_softcap, &c->attn_softcap, &c->query_pre_attn_scalar};
    const double defaults[] = {30.0, 50.0, 256.0};
    for (int i = 0; i < 3; i++) {
        const json_t *v = json_object_get(root, keys[i]);
        *vals[i] = v && json_is_null(v) ? 0.0 : defaults[i];
        SW_TRY(get_num(root, keys[i], name, vals[i]));
        if (!(*vals[i] >= 0) || !isfinite(*vals[i]))
            return sw_err_set(SW_EFORMAT, "%s: \"%s\" %g must be a non-negative number", name,
                              keys[i], *vals[i]);
    }
    return 0;
}

int64_t sw_model_config_layer_window(const struct sw_model_config *c, int64_t l) {
    if (c->sliding_window <= 0) return 0;
    if (c->sliding_period > 1 && (l + 1) % c->sliding_period == 0) return 0;
    return c->sliding_window;
}

static int parse_root(const json_t *root, const char *name, struct sw_model_config *c) {
    memset(c, 0, sizeof *c);
    if (!json_is_object(root))
        return sw_err_set(SW_EFORMAT, "%s: top level is %s, expected an object", name, kind(root));
    const json_t *mt = json_object_get(root, "model_type");
    if (!mt) return sw_err_set(SW_EFORMAT, "%s: missing \"model_type\"", name);
    SW_TRY(get_str(root, "model_type", name, c->model_type, sizeof c->model_type));
    if (strcmp(c->model_type, "llama") == 0)
        c->arch = SW_ARCH_LLAMA;
    else if (strcmp(c->model_type, "qwen2") == 0)
        c->arch = SW_ARCH_QWEN2;
    else if (strcmp(c->model_type, "qwen3") == 0)
        c->arch = SW_ARCH_QWEN3;
    else if (strcmp(c->model_type, "mistral") == 0)
        c->arch = SW_ARCH_MISTRAL;
    else if (strcmp(c->model_type, "gemma2") == 0)
        c->arch = SW_ARCH_GEMMA2;
    else
        return sw_err_set(SW_EUNSUPPORTED,
                          "%s: model_type '%s' is not supported (llama, qwen2, qwen3, mistral, "
                          "gemma2)",
                          name, c->model_type);
    int llama = c->arch == SW_ARCH_LLAMA, mistral = c->arch == SW_ARCH_MISTRAL;
    int gemma2 = c->arch == SW_ARCH_GEMMA2, qwen = !llama && !mistral && !gemma2;

    static const char *const default_arch[] = {"LlamaForCausalLM", "Qwen2ForCausalLM",
                                               "Qwen3ForCausalLM", "MistralForCausalLM",
                                               "Gemma2ForCausalLM"};
    snprintf(c->architecture, sizeof c->architecture, "%s", default_arch[c->arch]);
    const json_t *archs = json_object_get(root, "architectures");
    if (archs && !json_is_null(archs)) {
        if (!json_is_array(archs))
            return sw_err_set(SW_EFORMAT, "%s: \"architectures\" is %s, expected a list", name,
                              kind(archs));
        if (json_array_size(archs) > 0) {
            const json_t *a0 = json_array_get(archs, 0);
            if (!json_is_string(a0) || json_string_length(a0) >= sizeof c->architecture)
                return sw_err_set(SW_EFORMAT, "%s: \"architectures\"[0] is not a short string",
                                  name);
            memcpy(c->architecture, json_string_value(a0), json_string_length(a0) + 1);
        }
    }
    SW_TRY(get_str(root, "torch_dtype", name, c->torch_dtype, sizeof c->torch_dtype));
    SW_TRY(
        get_str(root, "dtype", name, c->torch_dtype, sizeof c->torch_dtype)); /* transformers 5 */
    /* Gemma 2's MLP reads hidden_activation (its hidden_act key is not used by transformers). */
    const char *act_key = gemma2 ? "hidden_activation" : "hidden_act";
    const char *act_want = gemma2 ? "gelu_pytorch_tanh" : "silu";
    snprintf(c->hidden_act, sizeof c->hidden_act, "%s", act_want);
    SW_TRY(get_str(root, act_key, name, c->hidden_act, sizeof c->hidden_act));
    if (strcmp(c->hidden_act, act_want) != 0)
        return sw_err_set(SW_EUNSUPPORTED, "%s: %s '%s' is not supported (only %s)", name, act_key,
                          c->hidden_act, act_want);

    static const char *const required[] = {"vocab_size", "hidden_size", "intermediate_size",
                                           "num_hidden_layers", "num_attention_heads"};
    int64_t *req[] = {&c->vocab_size, &c->hidden_size, &c->intermediate_size, &c->num_hidden_layers,
                      &c->num_attention_heads};
    static const int64_t req_max[] = {1 << 24, 1 << 18, 1 << 20, 1 << 12, 1 << 12};
    for (int i = 0; i < 5; i++) {
        const json_t *v = json_object_get(root, required[i]);
        if (!v || json_is_null(v))
            return sw_err_set(SW_EFORMAT, "%s: missing \"%s\"", name, required[i]);
        SW_TRY(get_int(root, required[i], name, req[i]));
        SW_TRY(check_size(name, required[i], *req[i], req_max[i]));
    }

    c->num_key_value_heads = llama ? c->num_attention_heads : mistral ? 8 : gemma2 ? 4 : 32;
    SW_TRY(get_int(root, "num_key_value_heads", name, &c->num_key_value_heads));
    SW_TRY(check_size(name, "num_key_value_heads", c->num_key_value_heads, 1 << 12));
    int has_head_dim =
        json_object_get(root, "head_dim") && !json_is_null(json_object_get(root, "head_dim"));
    c->head_dim = c->arch == SW_ARCH_QWEN3 ? 128
                  : gemma2                 ? 256
                                           : c->hidden_size / c->num_attention_heads;
    SW_TRY(get_int(root, "head_dim", name, &c->head_dim));
    if (!has_head_dim && c->arch != SW_ARCH_QWEN3 && !gemma2 &&
        c->hidden_size % c->num_attention_heads != 0)
        return sw_err_set(
            SW_EFORMAT,
            "%s: hidden_size %lld is not a multiple of num_attention_heads %lld (and no head_dim)",
            name, (long long)c->hidden_size, (long long)c->num_attention_heads);
    SW_TRY(check_size(name, "head_dim", c->head_dim, 1 << 12));
    if (c->num_attention_heads % c->num_key_value_heads != 0)
        return sw_err_set(
            SW_EFORMAT, "%s: num_key_value_heads %lld does not divide num_attention_heads %lld",
            name, (long long)c->num_key_value_heads, (long long)c->num_attention_heads);

    c->max_position_embeddings = llama ? 2048 : mistral ? 131072 : gemma2 ? 8192 : 32768;
    SW_TRY(get_int(root, "max_position_embeddings", name, &c->max_position_embeddings));
    SW_TRY(
        check_size(name, "max_position_embeddings", c->max_position_embeddings, (int64_t)1 << 40));
    c->rms_norm_eps = 1e-6;
    SW_TRY(get_num(root, "rms_norm_eps", name, &c->rms_norm_eps));
    if (!(c->rms_norm_eps > 0) || !(c->rms_norm_eps < 1))
        return sw_err_set(SW_EFORMAT, "%s: rms_norm_eps %g must be in (0, 1)", name,
                          c->rms_norm_eps);
    c->rope_theta = 10000.0;
    SW_TRY(parse_rope(root, name, c));

    c->tie_word_embeddings = gemma2;
    SW_TRY(get_bool(root, "tie_word_embeddings", name, &c->tie_word_embeddings));
    SW_TRY(get_bool(root, "attention_bias", name, &c->attention_bias));
    if (c->arch == SW_ARCH_QWEN2) c->attention_bias = 1; /* Qwen2 q/k/v always have a bias */
    if (llama) SW_TRY(get_bool(root, "mlp_bias", name, &c->mlp_bias));
    c->qk_norm = c->arch == SW_ARCH_QWEN3;
    if (mistral || gemma2) SW_TRY(parse_sliding(root, name, c));
    if (qwen) {
        int sliding = 0;
        SW_TRY(get_bool(root, "use_sliding_window", name, &sliding));
        if (sliding)
            return sw_err_set(SW_EUNSUPPORTED, "%s: use_sliding_window true is not supported",
                              name);
    }
    /* transformers 5 spells the attention kind of every layer out; sw runs full attention only
     * (Mistral and Gemma 2 read it in parse_sliding). */
    const json_t *lt = json_object_get(root, "layer_types");
    if (qwen && lt && !json_is_null(lt)) {
        if (!json_is_array(lt))
            return sw_err_set(SW_EFORMAT, "%s: \"layer_types\" is %s, expected a list", name,
                              kind(lt));
        for (size_t i = 0; i < json_array_size(lt); i++) {
            const json_t *x = json_array_get(lt, i);
            if (!json_is_string(x) || strcmp(json_string_value(x), "full_attention") != 0)
                return sw_err_set(SW_EUNSUPPORTED,
                                  "%s: layer_types[%zu] is not \"full_attention\" (only full "
                                  "attention is supported)",
                                  name, i);
        }
    }

    c->bos_token_id = llama || mistral ? 1 : gemma2 ? 2 : -1;
    c->pad_token_id = gemma2 ? 0 : -1;
    c->n_eos = qwen ? 0 : 1;
    c->eos_token_ids[0] = gemma2 ? 1 : 2;
    SW_TRY(get_token(root, "bos_token_id", name, &c->bos_token_id));
    SW_TRY(get_token(root, "pad_token_id", name, &c->pad_token_id));
    SW_TRY(get_token_list(root, "eos_token_id", name, c->eos_token_ids, &c->n_eos));
    if (c->n_eos == 0) c->eos_token_ids[0] = 0;
    return parse_quant(root, name, &c->quant);
}

int sw_model_config_parse(const char *json, size_t len, const char *name,
                          struct sw_model_config *c) {
    if (!name) name = "config.json";
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        memset(c, 0, sizeof *c);
        return sw_err_set(SW_EFORMAT, "%s:%d:%d: %s", name, jerr.line, jerr.column, jerr.text);
    }
    int rc = parse_root(root, name, c);
    json_decref(root);
    return rc;
}

int sw_model_config_load(const char *path, struct sw_model_config *c) {
    char *text = NULL;
    size_t len = 0;
    int rc = sw_read_file(path, &text, &len, HF_CONFIG_MAX);
    if (rc < 0) {
        memset(c, 0, sizeof *c);
        return rc;
    }
    rc = sw_model_config_parse(text, len, path, c);
    free(text);
    return rc;
}

/* ---- writer ------------------------------------------------------------------------------ */

/* One "key": value line; kept in an array and sorted, as transformers sorts keys. */
struct kv {
    const char *key;
    char val[512];
};

/* Shortest text that reads back as exactly x, always looking like a float ("10000.0"). */
static void fmt_double(double x, char *buf, size_t cap) {
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, cap, "%.*g", p, x);
        if (strtod(buf, NULL) == x) break;
    }
    if (!strpbrk(buf, ".eEni")) strncat(buf, ".0", cap - strlen(buf) - 1);
}

static void fmt_string(const char *s, char *buf, size_t cap) {
    json_t *j = json_string(s);
    char *t = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    snprintf(buf, cap, "%s", t ? t : "\"\"");
    free(t);
    json_decref(j);
}

static void fmt_token(int64_t id, char *buf, size_t cap) {
    if (id < 0)
        snprintf(buf, cap, "null");
    else
        snprintf(buf, cap, "%lld", (long long)id);
}

static int cmp_kv(const void *a, const void *b) {
    return strcmp(((const struct kv *)a)->key, ((const struct kv *)b)->key);
}

int sw_model_config_write(const struct sw_model_config *c, const char *path) {
    struct kv kv[40];
    int n = 0;
    char tmp[128];
#define KV(k) (kv[n].key = (k), kv[n++].val)
#define KVF(k, ...) snprintf(KV(k), sizeof kv[0].val, __VA_ARGS__)
    char arch[160];
    fmt_string(c->architecture, arch, sizeof arch);
    KVF("architectures", "[\n    %s\n  ]", arch);
    int gemma2 = c->arch == SW_ARCH_GEMMA2;
    if (c->arch != SW_ARCH_QWEN2) KVF("attention_bias", "%s", c->attention_bias ? "true" : "false");
    if (gemma2) {
        if (c->sliding_window > 0 && c->sliding_period != 2)
            return sw_err_set(SW_EUNSUPPORTED,
                              "%s: writing a Gemma 2 config with a sliding period of %d (only "
                              "the default alternation is written)",
                              path, c->sliding_period);
        fmt_double(c->final_softcap, tmp, sizeof tmp);
        KVF("final_logit_softcapping", "%s", c->final_softcap > 0 ? tmp : "null");
        fmt_double(c->attn_softcap, tmp, sizeof tmp);
        KVF("attn_logit_softcapping", "%s", c->attn_softcap > 0 ? tmp : "null");
        double qs = c->query_pre_attn_scalar > 0 ? c->query_pre_attn_scalar : (double)c->head_dim;
        if (qs == floor(qs) && qs < 9.0e15) /* transformers' field is an int */
            KVF("query_pre_attn_scalar", "%lld", (long long)qs);
        else
            return sw_err_set(SW_EUNSUPPORTED,
                              "%s: query_pre_attn_scalar %g is not an integer (transformers "
                              "reads an int)",
                              path, qs);
    }
    if (c->arch == SW_ARCH_MISTRAL || gemma2) {
        if (c->sliding_window > 0)
            KVF("sliding_window", "%lld", (long long)c->sliding_window);
        else
            KVF("sliding_window", "null");
    }
    if (c->arch == SW_ARCH_MISTRAL && c->sliding_window > 0 && c->sliding_period > 1)
        return sw_err_set(SW_EUNSUPPORTED,
                          "%s: a Mistral config with full-attention layers cannot be written",
                          path);
    KVF("attention_dropout", "0.0");
    fmt_token(c->bos_token_id, tmp, sizeof tmp);
    KVF("bos_token_id", "%s", tmp);
    if (c->n_eos == 0) {
        KVF("eos_token_id", "null");
    } else if (c->n_eos == 1) {
        KVF("eos_token_id", "%lld", (long long)c->eos_token_ids[0]);
    } else {
        char *v = KV("eos_token_id");
        size_t o = (size_t)snprintf(v, sizeof kv[0].val, "[");
        for (int i = 0; i < c->n_eos && i < 8; i++)
            o += (size_t)snprintf(v + o, sizeof kv[0].val - o, "%s\n    %lld", i ? "," : "",
                                  (long long)c->eos_token_ids[i]);
        snprintf(v + o, sizeof kv[0].val - o, "\n  ]");
    }
    KVF("head_dim", "%lld", (long long)c->head_dim);
    fmt_string(c->hidden_act[0] ? c->hidden_act
               : gemma2         ? "gelu_pytorch_tanh"
                                : "silu",
               tmp, sizeof tmp);
    KVF(gemma2 ? "hidden_activation" : "hidden_act", "%s", tmp);
    KVF("hidden_size", "%lld", (long long)c->hidden_size);
    KVF("initializer_range", "0.02");
    KVF("intermediate_size", "%lld", (long long)c->intermediate_size);
    KVF("max_position_embeddings", "%lld", (long long)c->max_position_embeddings);
    if (c->arch == SW_ARCH_LLAMA) KVF("mlp_bias", "%s", c->mlp_bias ? "true" : "false");
    fmt_string(c->model_type, tmp, sizeof tmp);
    KVF("model_type", "%s", tmp);
    KVF("num_attention_heads", "%lld", (long long)c->num_attention_heads);
    KVF("num_hidden_layers", "%lld", (long long)c->num_hidden_layers);
    KVF("num_key_value_heads", "%lld", (long long)c->num_key_value_heads);
    if (c->pad_token_id >= 0) KVF("pad_token_id", "%lld", (long long)c->pad_token_id);
    fmt_double(c->rms_norm_eps, tmp, sizeof tmp);
    KVF("rms_norm_eps", "%s", tmp);
    if (c->rope_type == SW_ROPE_DEFAULT) {
        KVF("rope_scaling", "null");
    } else {
        char f[64], lo[64], hi[64];
        fmt_double(c->rope_factor, f, sizeof f);
        if (c->rope_type == SW_ROPE_LINEAR) {
            KVF("rope_scaling", "{\n    \"factor\": %s,\n    \"rope_type\": \"linear\"\n  }", f);
        } else {
            fmt_double(c->rope_low_freq_factor, lo, sizeof lo);
            fmt_double(c->rope_high_freq_factor, hi, sizeof hi);
            KVF("rope_scaling",
                "{\n    \"factor\": %s,\n    \"high_freq_factor\": %s,\n    \"low_freq_factor\": "
                "%s,\n"
                "    \"original_max_position_embeddings\": %lld,\n    \"rope_type\": \"llama3\"\n  "
                "}",
                f, hi, lo, (long long)c->rope_original_max_position);
        }
    }
    fmt_double(c->rope_theta, tmp, sizeof tmp);
    KVF("rope_theta", "%s", tmp);
    KVF("tie_word_embeddings", "%s", c->tie_word_embeddings ? "true" : "false");
    if (c->torch_dtype[0]) {
        fmt_string(c->torch_dtype, tmp, sizeof tmp);
        KVF("torch_dtype", "%s", tmp);
    }
    KVF("use_cache", "true");
    if (c->arch == SW_ARCH_QWEN2 || c->arch == SW_ARCH_QWEN3) KVF("use_sliding_window", "false");
    KVF("vocab_size", "%lld", (long long)c->vocab_size);
#undef KV
#undef KVF
    qsort(kv, (size_t)n, sizeof kv[0], cmp_kv);
    size_t cap = 2 + (size_t)n * (sizeof kv[0].val + 48), o = 0;
    char *text = malloc(cap);
    if (!text) return sw_err_set(SW_ENOMEM, "%s: out of memory", path);
    o += (size_t)snprintf(text + o, cap - o, "{\n");
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(text + o, cap - o, "  \"%s\": %s%s\n", kv[i].key, kv[i].val,
                              i + 1 < n ? "," : "");
    o += (size_t)snprintf(text + o, cap - o, "}\n");
    int rc = sw_write_file_atomic(path, text, o);
    free(text);
    return rc;
}

int64_t sw_model_config_num_params(const struct sw_model_config *c) {
    int64_t h = c->hidden_size, hd = c->head_dim;
    int64_t q = c->num_attention_heads * hd, kv = c->num_key_value_heads * hd;
    int64_t attn = h * q + 2 * h * kv + q * h;
    if (c->attention_bias) attn += q + 2 * kv + (c->arch == SW_ARCH_QWEN2 ? 0 : h);
    if (c->qk_norm) attn += 2 * hd;
    int64_t mlp = 3 * h * c->intermediate_size;
    if (c->mlp_bias) mlp += 2 * c->intermediate_size + h;
    int64_t layer = attn + mlp + (c->arch == SW_ARCH_GEMMA2 ? 4 : 2) * h; /* + pre/post-ff norms */
    int64_t embed = c->vocab_size * h;
    return embed + c->num_hidden_layers * layer + h + (c->tie_word_embeddings ? 0 : embed);
}

/* ---- generation_config.json ------------------------------------------------------------ */

int sw_generation_config_load(const char *path, struct sw_generation_config *g) {
    memset(g, 0, sizeof *g);
    g->bos_token_id = g->pad_token_id = -1;
    g->temperature = g->top_p = g->repetition_penalty = 1.0;
    g->top_k = 50;
    char *text = NULL;
    size_t len = 0;
    SW_TRY(sw_read_file(path, &text, &len, HF_CONFIG_MAX));
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!root)
        return sw_err_set(SW_EFORMAT, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = sw_err_set(SW_EFORMAT, "%s: top level is %s, expected an object", path, kind(root));
        goto out;
    }
    SW_TRY_GOTO(rc, get_token(root, "bos_token_id", path, &g->bos_token_id), out);
    SW_TRY_GOTO(rc, get_token(root, "pad_token_id", path, &g->pad_token_id), out);
    SW_TRY_GOTO(rc, get_token_list(root, "eos_token_id", path, g->eos_token_ids, &g->n_eos), out);
    SW_TRY_GOTO(rc, get_bool(root, "do_sample", path, &g->do_sample), out);
    SW_TRY_GOTO(rc, get_num(root, "temperature", path, &g->temperature), out);
    SW_TRY_GOTO(rc, get_num(root, "top_p", path, &g->top_p), out);
    SW_TRY_GOTO(rc, get_num(root, "repetition_penalty", path, &g->repetition_penalty), out);
    SW_TRY_GOTO(rc, get_int(root, "top_k", path, &g->top_k), out);
    SW_TRY_GOTO(rc, get_int(root, "max_new_tokens", path, &g->max_new_tokens), out);
    if (g->temperature < 0 || g->top_p < 0 || g->top_p > 1 || g->repetition_penalty <= 0 ||
        g->top_k < 0 || g->max_new_tokens < 0)
        rc = sw_err_set(SW_EFORMAT,
                        "%s: a sampling value is out of range (temperature %g, top_p %g, top_k "
                        "%lld, repetition_penalty %g, max_new_tokens %lld)",
                        path, g->temperature, g->top_p, (long long)g->top_k, g->repetition_penalty,
                        (long long)g->max_new_tokens);
out:
    json_decref(root);
    return rc;
}
