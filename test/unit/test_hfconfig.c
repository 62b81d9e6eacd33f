/* test_hfconfig — config.json / generation_config.json parsing and writing (sw_hfconfig) and
 * HF model folders with their tensor inventory (sw_hfmodel).
 *
 * The configs below are the published ones of Llama-3.1-8B (top-level rope_theta +
 * rope_scaling llama3), Qwen2.5-0.5B-Instruct and Qwen3-0.6B, plus transformers 5's
 * rope_parameters form; parameter counts are checked against the published totals. When
 * python3 can import transformers, configs sw writes are loaded by AutoConfig and compared. */
#include "sw_err.h"
#include "sw_hfconfig.h"
#include "sw_hfmodel.h"
#include "sw_io.h"
#include "sw_safetensors.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char tmpdir[256];

static const char *llama31_8b =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"attention_bias\": false, \"attention_dropout\": "
    "0.0,"
    " \"bos_token_id\": 128000, \"eos_token_id\": 128001, \"hidden_act\": \"silu\", "
    "\"hidden_size\": 4096,"
    " \"initializer_range\": 0.02, \"intermediate_size\": 14336, \"max_position_embeddings\": "
    "131072,"
    " \"mlp_bias\": false, \"model_type\": \"llama\", \"num_attention_heads\": 32, "
    "\"num_hidden_layers\": 32,"
    " \"num_key_value_heads\": 8, \"pretraining_tp\": 1, \"rms_norm_eps\": 1e-05,"
    " \"rope_scaling\": {\"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0,"
    " \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"},"
    " \"rope_theta\": 500000.0, \"tie_word_embeddings\": false, \"torch_dtype\": \"bfloat16\","
    " \"transformers_version\": \"4.43.0.dev0\", \"use_cache\": true, \"vocab_size\": 128256}";

static const char *qwen25_05b =
    "{\"architectures\": [\"Qwen2ForCausalLM\"], \"attention_dropout\": 0.0, \"bos_token_id\": "
    "151643,"
    " \"eos_token_id\": 151645, \"hidden_act\": \"silu\", \"hidden_size\": 896, "
    "\"initializer_range\": 0.02,"
    " \"intermediate_size\": 4864, \"max_position_embeddings\": 32768, \"max_window_layers\": 21,"
    " \"model_type\": \"qwen2\", \"num_attention_heads\": 14, \"num_hidden_layers\": 24,"
    " \"num_key_value_heads\": 2, \"rms_norm_eps\": 1e-06, \"rope_theta\": 1000000.0,"
    " \"sliding_window\": 32768, \"tie_word_embeddings\": true, \"torch_dtype\": \"bfloat16\","
    " \"transformers_version\": \"4.43.1\", \"use_cache\": true, \"use_sliding_window\": false,"
    " \"vocab_size\": 151936}";

static const char *qwen3_06b =
    "{\"architectures\": [\"Qwen3ForCausalLM\"], \"attention_bias\": false, \"attention_dropout\": "
    "0.0,"
    " \"bos_token_id\": 151643, \"eos_token_id\": 151645, \"head_dim\": 128, \"hidden_act\": "
    "\"silu\","
    " \"hidden_size\": 1024, \"initializer_range\": 0.02, \"intermediate_size\": 3072,"
    " \"max_position_embeddings\": 40960, \"max_window_layers\": 28, \"model_type\": \"qwen3\","
    " \"num_attention_heads\": 16, \"num_hidden_layers\": 28, \"num_key_value_heads\": 8,"
    " \"rms_norm_eps\": 1e-06, \"rope_scaling\": null, \"rope_theta\": 1000000, "
    "\"sliding_window\": null,"
    " \"tie_word_embeddings\": true, \"torch_dtype\": \"bfloat16\", \"transformers_version\": "
    "\"4.51.0\","
    " \"use_cache\": true, \"use_sliding_window\": false, \"vocab_size\": 151936}";

/* transformers 5 spelling: rope_parameters and dtype. */
static const char *llama_v5 =
    "{\"model_type\": \"llama\", \"dtype\": \"float16\", \"hidden_size\": 64, "
    "\"intermediate_size\": 128,"
    " \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 2, "
    "\"vocab_size\": 100,"
    " \"max_position_embeddings\": 512, \"eos_token_id\": [5, 6, 7], \"bos_token_id\": null,"
    " \"rope_parameters\": {\"rope_type\": \"llama3\", \"rope_theta\": 250000.0, \"factor\": 32.0,"
    " \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0}}";

/* Mistral-7B-v0.1's config.json (sliding window 4096 on every layer). */
static const char *mistral_7b =
    "{\"architectures\": [\"MistralForCausalLM\"], \"bos_token_id\": 1, \"eos_token_id\": 2,"
    " \"hidden_act\": \"silu\", \"hidden_size\": 4096, \"initializer_range\": 0.02,"
    " \"intermediate_size\": 14336, \"max_position_embeddings\": 32768, \"model_type\": "
    "\"mistral\", \"num_attention_heads\": 32, \"num_hidden_layers\": 32, "
    "\"num_key_value_heads\": 8, \"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, "
    "\"sliding_window\": 4096, \"tie_word_embeddings\": false, \"torch_dtype\": "
    "\"bfloat16\", \"use_cache\": true, \"vocab_size\": 32000}";

/* gemma-2-2b's config.json. */
static const char *gemma2_2b =
    "{\"architectures\": [\"Gemma2ForCausalLM\"], \"attention_bias\": false, "
    "\"attention_dropout\": 0.0, \"attn_logit_softcapping\": 50.0, \"bos_token_id\": 2, "
    "\"cache_implementation\": \"hybrid\", \"eos_token_id\": 1, "
    "\"final_logit_softcapping\": 30.0, \"head_dim\": 256, \"hidden_act\": "
    "\"gelu_pytorch_tanh\", \"hidden_activation\": \"gelu_pytorch_tanh\", \"hidden_size\": 2304,"
    " \"initializer_range\": 0.02, \"intermediate_size\": 9216, \"max_position_embeddings\": "
    "8192, \"model_type\": \"gemma2\", \"num_attention_heads\": 8, \"num_hidden_layers\": 26,"
    " \"num_key_value_heads\": 4, \"pad_token_id\": 0, \"query_pre_attn_scalar\": 256, "
    "\"rms_norm_eps\": 1e-06, \"rope_theta\": 10000.0, \"sliding_window\": 4096, "
    "\"torch_dtype\": \"float32\", \"use_cache\": true, \"vocab_size\": 256000}";

static int parse(const char *text, struct sw_model_config *c) {
    return sw_model_config_parse(text, strlen(text), "config.json", c);
}

static void test_published(void) {
    struct sw_model_config c;
    IS_INT(parse(llama31_8b, &c), 0, "Llama-3.1-8B config parses: %s", sw_err_msg());
    OK(c.arch == SW_ARCH_LLAMA && strcmp(c.architecture, "LlamaForCausalLM") == 0, "llama arch");
    OK(c.num_key_value_heads == 8 && c.head_dim == 128 && c.vocab_size == 128256, "llama sizes");
    OK(c.rope_type == SW_ROPE_LLAMA3 && c.rope_theta == 500000.0 && c.rope_factor == 8.0 &&
           c.rope_low_freq_factor == 1.0 && c.rope_high_freq_factor == 4.0 &&
           c.rope_original_max_position == 8192,
       "llama3 rope_scaling read from the top-level spelling");
    OK(c.rms_norm_eps == 1e-5 && !c.tie_word_embeddings && !c.attention_bias && !c.qk_norm,
       "llama flags");
    OK(c.bos_token_id == 128000 && c.n_eos == 1 && c.eos_token_ids[0] == 128001 &&
           c.pad_token_id == -1,
       "llama special tokens");
    IS_STR(c.torch_dtype, "bfloat16", "torch_dtype");
    IS_INT(sw_model_config_num_params(&c), 8030261248LL,
           "Llama-3.1-8B has 8,030,261,248 parameters");

    IS_INT(parse(qwen25_05b, &c), 0, "Qwen2.5-0.5B config parses: %s", sw_err_msg());
    OK(c.arch == SW_ARCH_QWEN2 && c.attention_bias && !c.qk_norm && c.tie_word_embeddings,
       "qwen2: q/k/v bias, tied");
    OK(c.head_dim == 64 && c.num_key_value_heads == 2 && c.rope_type == SW_ROPE_DEFAULT &&
           c.rope_theta == 1e6,
       "qwen2 head_dim = 896/14, rope default theta 1e6");
    IS_INT(sw_model_config_num_params(&c), 494032768LL, "Qwen2.5-0.5B has 494,032,768 parameters");
    struct sw_hf_tensor_spec *specs;
    int n;
    sw_hf_expected_tensors(&c, &specs, &n);
    IS_INT(n, 291, "qwen2.5-0.5B implies 290 tensors + the optional tied lm_head");
    OK(n == 291 && strcmp(specs[2].name, "model.layers.0.self_attn.q_proj.weight") == 0 &&
           strcmp(specs[3].name, "model.layers.0.self_attn.q_proj.bias") == 0 &&
           specs[290].optional,
       "qwen2 specs: q_proj weight then bias; lm_head optional when tied");
    free(specs);

    IS_INT(parse(qwen3_06b, &c), 0, "Qwen3-0.6B config parses: %s", sw_err_msg());
    OK(c.arch == SW_ARCH_QWEN3 && c.qk_norm && !c.attention_bias && c.head_dim == 128 &&
           c.max_position_embeddings == 40960 && c.rope_theta == 1e6,
       "qwen3: explicit head_dim 128 (q dim 2048 != hidden 1024), q/k norm, integer rope_theta");
    IS_INT(sw_model_config_num_params(&c), 596049920LL, "Qwen3-0.6B has 596,049,920 parameters");

    IS_INT(parse(llama_v5, &c), 0, "transformers 5 rope_parameters form parses: %s", sw_err_msg());
    OK(c.rope_type == SW_ROPE_LLAMA3 && c.rope_theta == 250000.0 && c.rope_factor == 32.0 &&
           c.rope_original_max_position == 512,
       "rope_parameters: theta inside, original_max_position defaults to max_position_embeddings");
    OK(c.n_eos == 3 && c.eos_token_ids[2] == 7 && c.bos_token_id == -1, "eos list, bos null");
    IS_STR(c.torch_dtype, "float16", "\"dtype\" (transformers 5) read into torch_dtype");
}

static void test_defaults(void) {
    struct sw_model_config c;
    IS_INT(parse("{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":100,"
                 "\"num_hidden_layers\":1,\"num_attention_heads\":8,\"vocab_size\":10}",
                 &c),
           0, "minimal llama parses");
    OK(c.num_key_value_heads == 8 && c.head_dim == 8 && c.max_position_embeddings == 2048 &&
           c.rms_norm_eps == 1e-6 && c.rope_theta == 10000.0 && c.rope_type == SW_ROPE_DEFAULT &&
           !c.tie_word_embeddings && c.bos_token_id == 1 && c.n_eos == 1 && c.eos_token_ids[0] == 2,
       "llama defaults as LlamaConfig: kv=heads, head_dim=hidden/heads, 2048, 1e-6, 1e4, bos 1, "
       "eos 2");
    IS_STR(c.hidden_act, "silu", "hidden_act defaults to silu");
    IS_STR(c.torch_dtype, "", "no dtype: empty");
    IS_INT(parse("{\"model_type\":\"qwen3\",\"hidden_size\":64,\"intermediate_size\":100,"
                 "\"num_hidden_layers\":1,\"num_attention_heads\":32,\"vocab_size\":10}",
                 &c),
           0, "minimal qwen3 parses");
    OK(c.num_key_value_heads == 32 && c.head_dim == 128 && c.max_position_embeddings == 32768 &&
           c.bos_token_id == -1 && c.n_eos == 0 && c.qk_norm,
       "qwen3 defaults as Qwen3Config: kv 32, head_dim 128, 32768, no bos/eos");
    IS_INT(parse("{\"model_type\":\"qwen2\",\"hidden_size\":64,\"intermediate_size\":100,"
                 "\"num_hidden_layers\":1,\"num_attention_heads\":8,\"num_key_value_heads\":8,"
                 "\"vocab_size\":10, \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2}}",
                 &c),
           0, "qwen2 with old-style rope_scaling {type: linear}");
    OK(c.rope_type == SW_ROPE_LINEAR && c.rope_factor == 2.0 && c.head_dim == 8,
       "linear rope factor 2");
    IS_INT(
        parse(
            "{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":100,"
            "\"num_hidden_layers\":1,\"num_attention_heads\":8,\"vocab_size\":10,\"head_dim\":null,"
            "\"rope_scaling\":{\"rope_type\":\"default\",\"rope_theta\":7.0},\"rope_theta\":3.0}",
            &c),
        0, "rope dict theta wins over top-level");
    OK(c.rope_theta == 7.0 && c.head_dim == 8, "theta 7 from the dict; head_dim null -> default");
}

struct bad {
    const char *what, *json;
    int code;
    const char *in_msg;
};

#define SIZES                                                                                      \
    "\"hidden_size\":64,\"intermediate_size\":100,\"num_hidden_layers\":1,\"vocab_size\":10"

static void test_errors(void) {
    static const struct bad bad[] = {
        {"not JSON", "{\"model_type\": ", SW_EFORMAT, "config.json:1:"},
        {"top level array", "[1]", SW_EFORMAT, "expected an object"},
        {"duplicate key", "{\"model_type\":\"llama\",\"model_type\":\"qwen2\"}", SW_EFORMAT,
         "duplicate"},
        {"missing model_type", "{" SIZES ",\"num_attention_heads\":8}", SW_EFORMAT, "model_type"},
        {"unsupported model_type",
         "{\"model_type\":\"mixtral\"," SIZES ",\"num_attention_heads\":8}", SW_EUNSUPPORTED,
         "'mixtral'"},
        {"model_type not a string", "{\"model_type\":3}", SW_EFORMAT,
         "\"model_type\" is an integer"},
        {"missing hidden_size",
         "{\"model_type\":\"llama\",\"intermediate_size\":1,\"num_hidden_layers\":1,"
         "\"num_attention_heads\":1,\"vocab_size\":1}",
         SW_EFORMAT, "\"hidden_size\""},
        {"hidden_size a string",
         "{\"model_type\":\"llama\",\"hidden_size\":\"64\",\"intermediate_size\":1,"
         "\"num_hidden_layers\":1,\"num_attention_heads\":1,\"vocab_size\":1}",
         SW_EFORMAT, "\"hidden_size\" is a string"},
        {"zero layers",
         "{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":1,"
         "\"num_hidden_layers\":0,\"num_attention_heads\":1,\"vocab_size\":1}",
         SW_EFORMAT, "\"num_hidden_layers\" is 0"},
        {"kv heads do not divide",
         "{\"model_type\":\"llama\"," SIZES ",\"num_attention_heads\":8,\"num_key_value_heads\":3}",
         SW_EFORMAT, "num_key_value_heads 3"},
        {"hidden not a multiple of heads",
         "{\"model_type\":\"llama\"," SIZES ",\"num_attention_heads\":7}", SW_EFORMAT,
         "not a multiple"},
        {"rope yarn",
         "{\"model_type\":\"qwen2\"," SIZES ",\"num_attention_heads\":8,\"num_key_value_heads\":8,"
         "\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4}}",
         SW_EUNSUPPORTED, "'yarn'"},
        {"llama3 rope without low_freq_factor",
         "{\"model_type\":\"llama\"," SIZES ",\"num_attention_heads\":8,"
         "\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8,\"high_freq_factor\":4}}",
         SW_EFORMAT, "low_freq_factor"},
        {"linear rope without factor",
         "{\"model_type\":\"llama\"," SIZES ",\"num_attention_heads\":8,"
         "\"rope_parameters\":{\"rope_type\":\"linear\"}}",
         SW_EFORMAT, "\"factor\""},
        {"llama3 high <= low",
         "{\"model_type\":\"llama\"," SIZES ",\"num_attention_heads\":8,"
         "\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8,\"low_freq_factor\":4,\"high_"
         "freq_factor\":1}}",
         SW_EFORMAT, "high_freq_factor"},
        {"negative rope_theta",
         "{\"model_type\":\"llama\"," SIZES ",\"num_attention_heads\":8,\"rope_theta\":-1}",
         SW_EFORMAT, "rope_theta"},
        {"rope_scaling a string",
         "{\"model_type\":\"llama\"," SIZES ",\"num_attention_heads\":8,\"rope_scaling\":\"x\"}",
         SW_EFORMAT, "rope_scaling"},
        {"partial rotary",
         "{\"model_type\":\"llama\"," SIZES ",\"num_attention_heads\":8,"
         "\"rope_parameters\":{\"rope_type\":\"default\",\"partial_rotary_factor\":0.5}}",
         SW_EUNSUPPORTED, "partial_rotary_factor"},
        {"gelu",
         "{\"model_type\":\"llama\"," SIZES ",\"num_attention_heads\":8,\"hidden_act\":\"gelu\"}",
         SW_EUNSUPPORTED, "gelu"},
        {"sliding window",
         "{\"model_type\":\"qwen2\"," SIZES ",\"num_attention_heads\":8,\"num_key_value_heads\":8,"
         "\"use_sliding_window\":true}",
         SW_EUNSUPPORTED, "use_sliding_window"},
        {"sliding layer type",
         "{\"model_type\":\"qwen3\"," SIZES ",\"num_attention_heads\":8,\"num_key_value_heads\":8,"
         "\"layer_types\":[\"full_attention\",\"sliding_attention\"]}",
         SW_EUNSUPPORTED, "layer_types[1]"},
        {"tie not a bool",
         "{\"model_type\":\"llama\"," SIZES ",\"num_attention_heads\":8,\"tie_word_embeddings\":1}",
         SW_EFORMAT, "tie_word_embeddings"},
        {"eos list too long",
         "{\"model_type\":\"llama\"," SIZES ",\"num_attention_heads\":8,"
         "\"eos_token_id\":[1,2,3,4,5,6,7,8,9]}",
         SW_EFORMAT, "eos_token_id"},
        {"eos a string",
         "{\"model_type\":\"llama\"," SIZES ",\"num_attention_heads\":8,\"eos_token_id\":\"</s>\"}",
         SW_EFORMAT, "eos_token_id"},
        {"negative eos",
         "{\"model_type\":\"llama\"," SIZES ",\"num_attention_heads\":8,\"eos_token_id\":-1}",
         SW_EFORMAT, "eos_token_id"},
        {"huge vocab",
         "{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":100,\"num_hidden_"
         "layers\":1,"
         "\"num_attention_heads\":8,\"vocab_size\":100000000000}",
         SW_EFORMAT, "vocab_size"},
        {"dtype too long",
         "{\"model_type\":\"llama\"," SIZES
         ",\"num_attention_heads\":8,\"torch_dtype\":\"bfloat16bfloat16bfloat16\"}",
         SW_EFORMAT, "torch_dtype"},
        {"rms_norm_eps zero",
         "{\"model_type\":\"llama\"," SIZES ",\"num_attention_heads\":8,\"rms_norm_eps\":0}",
         SW_EFORMAT, "rms_norm_eps"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct sw_model_config c;
        sw_err_clear();
        int rc = parse(bad[i].json, &c);
        IS_INT(rc, bad[i].code, "%s: %s", bad[i].what, sw_strerror(bad[i].code));
        OK(strncmp(sw_err_msg(), "config.json", 11) == 0 && strstr(sw_err_msg(), bad[i].in_msg),
           "%s: message names the file and '%s': %s", bad[i].what, bad[i].in_msg, sw_err_msg());
    }
    struct sw_model_config c;
    char missing[512];
    snprintf(missing, sizeof missing, "%s/nope/config.json", tmpdir);
    IS_INT(sw_model_config_load(missing, &c), SW_ENOTFOUND,
           "missing config.json file: SW_ENOTFOUND");
}

/* Mistral and Gemma 2: defaults, windows per layer, layer_types patterns, soft-caps. */
static void test_new_families(void) {
    struct sw_model_config c;
    IS_INT(parse(mistral_7b, &c), 0, "Mistral-7B-v0.1 config parses: %s", sw_err_msg());
    OK(c.arch == SW_ARCH_MISTRAL && c.num_key_value_heads == 8 && c.head_dim == 128 &&
           !c.tie_word_embeddings && c.bos_token_id == 1 && c.eos_token_ids[0] == 2,
       "mistral sizes and tokens");
    OK(c.sliding_window == 4096 && sw_model_config_layer_window(&c, 0) == 4096 &&
           sw_model_config_layer_window(&c, 31) == 4096,
       "mistral: every layer slides over 4096 keys");
    const char *m_null = "{\"model_type\": \"mistral\", \"hidden_size\": 64, "
                         "\"intermediate_size\": 128, \"num_hidden_layers\": 2, "
                         "\"num_attention_heads\": 8, \"vocab_size\": 100, "
                         "\"sliding_window\": null}";
    IS_INT(parse(m_null, &c), 0, "Mistral v0.2-style config (sliding_window null) parses");
    OK(c.sliding_window == 0 && sw_model_config_layer_window(&c, 1) == 0 &&
           c.num_key_value_heads == 8 && c.max_position_embeddings == 131072,
       "mistral: sliding_window null is full attention; transformers' defaults");

    IS_INT(parse(gemma2_2b, &c), 0, "gemma-2-2b config parses: %s", sw_err_msg());
    OK(c.arch == SW_ARCH_GEMMA2 && strcmp(c.hidden_act, "gelu_pytorch_tanh") == 0 &&
           c.head_dim == 256 && c.tie_word_embeddings && c.bos_token_id == 2 &&
           c.eos_token_ids[0] == 1 && c.pad_token_id == 0,
       "gemma2 sizes, activation and tokens");
    OK(c.attn_softcap == 50.0 && c.final_softcap == 30.0 && c.query_pre_attn_scalar == 256.0,
       "gemma2 soft-caps and query_pre_attn_scalar");
    OK(sw_model_config_layer_window(&c, 0) == 4096 && sw_model_config_layer_window(&c, 1) == 0 &&
           sw_model_config_layer_window(&c, 24) == 4096 &&
           sw_model_config_layer_window(&c, 25) == 0,
       "gemma2: even layers local (4096), odd layers global");
    struct sw_model_config w;
    const char *g_lt = "{\"model_type\": \"gemma2\", \"hidden_size\": 64, "
                       "\"intermediate_size\": 128, \"num_hidden_layers\": 4, "
                       "\"num_attention_heads\": 4, \"vocab_size\": 100, \"sliding_window\": 8,"
                       " \"final_logit_softcapping\": null, \"layer_types\": "
                       "[\"sliding_attention\", \"full_attention\", \"full_attention\", "
                       "\"sliding_attention\"]}";
    IS_INT(parse(g_lt, &w), SW_EUNSUPPORTED,
           "gemma2: a layer_types pattern that breaks is refused");
    const char *g_lt2 = "{\"model_type\": \"gemma2\", \"hidden_size\": 64, "
                        "\"intermediate_size\": 128, \"num_hidden_layers\": 6, "
                        "\"num_attention_heads\": 4, \"vocab_size\": 100, \"sliding_window\": "
                        "8, \"final_logit_softcapping\": null, \"layer_types\": "
                        "[\"sliding_attention\", \"sliding_attention\", \"full_attention\", "
                        "\"sliding_attention\", \"sliding_attention\", \"full_attention\"]}";
    IS_INT(parse(g_lt2, &w), 0, "gemma2: layer_types of period 3 parses");
    OK(w.sliding_period == 3 && sw_model_config_layer_window(&w, 1) == 8 &&
           sw_model_config_layer_window(&w, 2) == 0 && w.final_softcap == 0 &&
           w.attn_softcap == 50.0,
       "gemma2: period 3 from layer_types; final_logit_softcapping null is off");
    const char *g_act = "{\"model_type\": \"gemma2\", \"hidden_size\": 64, "
                        "\"intermediate_size\": 128, \"num_hidden_layers\": 2, "
                        "\"num_attention_heads\": 4, \"vocab_size\": 100, "
                        "\"hidden_activation\": \"gelu\"}";
    IS_INT(parse(g_act, &w), SW_EUNSUPPORTED, "gemma2: hidden_activation gelu (exact) is refused");
    OK(strstr(sw_err_msg(), "hidden_activation") != NULL, "... naming the key: %s", sw_err_msg());
    /* Parameter count: gemma-2-2b has 2,614,341,888 parameters (tied). */
    OK(sw_model_config_num_params(&c) == 2614341888LL, "gemma2: parameter count %lld",
       (long long)sw_model_config_num_params(&c));
}

/* ---- writer: round trip, and transformers reads what sw writes ---------------------------- */

static int same_config(const struct sw_model_config *a, const struct sw_model_config *b) {
    return a->arch == b->arch && strcmp(a->architecture, b->architecture) == 0 &&
           strcmp(a->torch_dtype, b->torch_dtype) == 0 && a->vocab_size == b->vocab_size &&
           a->hidden_size == b->hidden_size && a->intermediate_size == b->intermediate_size &&
           a->num_hidden_layers == b->num_hidden_layers &&
           a->num_attention_heads == b->num_attention_heads &&
           a->num_key_value_heads == b->num_key_value_heads && a->head_dim == b->head_dim &&
           a->max_position_embeddings == b->max_position_embeddings &&
           a->rms_norm_eps == b->rms_norm_eps && a->rope_theta == b->rope_theta &&
           a->rope_type == b->rope_type &&
           (a->rope_type == SW_ROPE_DEFAULT || a->rope_factor == b->rope_factor) &&
           (a->rope_type != SW_ROPE_LLAMA3 ||
            (a->rope_low_freq_factor == b->rope_low_freq_factor &&
             a->rope_high_freq_factor == b->rope_high_freq_factor &&
             a->rope_original_max_position == b->rope_original_max_position)) &&
           a->tie_word_embeddings == b->tie_word_embeddings &&
           a->attention_bias == b->attention_bias && a->mlp_bias == b->mlp_bias &&
           a->qk_norm == b->qk_norm && a->bos_token_id == b->bos_token_id && a->n_eos == b->n_eos &&
           memcmp(a->eos_token_ids, b->eos_token_ids, sizeof a->eos_token_ids) == 0 &&
           a->pad_token_id == b->pad_token_id && a->sliding_window == b->sliding_window &&
           (a->sliding_window == 0 || a->sliding_period == b->sliding_period) &&
           a->attn_softcap == b->attn_softcap && a->final_softcap == b->final_softcap &&
           a->query_pre_attn_scalar == b->query_pre_attn_scalar &&
           strcmp(a->hidden_act, b->hidden_act) == 0;
}

/* What transformers' AutoConfig makes of config.json in dir, as one line. */
static const char *py_config =
    "import sys, warnings\n"
    "warnings.simplefilter('ignore')\n"
    "from transformers import AutoConfig\n"
    "c = AutoConfig.from_pretrained(sys.argv[1])\n"
    "rp = getattr(c, 'rope_parameters', None) or getattr(c, 'rope_scaling', None) or {}\n"
    "theta = rp.get('rope_theta', getattr(c, 'rope_theta', None))\n"
    "eos = c.eos_token_id if isinstance(c.eos_token_id, list) else [c.eos_token_id]\n"
    "hd = getattr(c, 'head_dim', None) or c.hidden_size // c.num_attention_heads\n"
    "print('%s L%d H%d I%d V%d h%d kv%d hd%d eps%g theta%g rope=%s f%g tie%d eos%s' % "
    "(c.model_type,"
    " c.num_hidden_layers, c.hidden_size, c.intermediate_size, c.vocab_size, c.num_attention_heads,"
    " c.num_key_value_heads, hd, c.rms_norm_eps, theta, rp.get('rope_type', 'default'),"
    " rp.get('factor', 0) or 0, int(c.tie_word_embeddings), ','.join(str(e) for e in eos)))\n";

static void expect_line(const struct sw_model_config *c, char *buf, size_t cap) {
    static const char *const rope[] = {"default", "llama3", "linear"};
    char eos[128] = "";
    size_t o = 0;
    for (int i = 0; i < c->n_eos; i++)
        o += (size_t)snprintf(eos + o, sizeof eos - o, "%s%lld", i ? "," : "",
                              (long long)c->eos_token_ids[i]);
    if (c->n_eos == 0) snprintf(eos, sizeof eos, "None");
    snprintf(
        buf, cap,
        "%s L%lld H%lld I%lld V%lld h%lld kv%lld hd%lld eps%g theta%g rope=%s f%g tie%d eos%s\n",
        c->model_type, (long long)c->num_hidden_layers, (long long)c->hidden_size,
        (long long)c->intermediate_size, (long long)c->vocab_size,
        (long long)c->num_attention_heads, (long long)c->num_key_value_heads,
        (long long)c->head_dim, c->rms_norm_eps, c->rope_theta, rope[c->rope_type],
        c->rope_type == SW_ROPE_DEFAULT ? 0.0 : c->rope_factor, c->tie_word_embeddings, eos);
}

static void test_write(void) {
    const char *srcs[] = {llama31_8b, qwen25_05b, qwen3_06b, llama_v5, mistral_7b, gemma2_2b};
    const char *names[] = {"llama-3.1-8b", "qwen2.5-0.5b", "qwen3-0.6b",
                           "llama-v5",     "mistral-7b",   "gemma-2-2b"};
    int have_tf = system("python3 -c 'import transformers' >/dev/null 2>&1") == 0;
    char script[512];
    snprintf(script, sizeof script, "%s/cfg.py", tmpdir);
    sw_write_file_atomic(script, py_config, strlen(py_config));
    for (int i = 0; i < 6; i++) {
        struct sw_model_config a, b;
        parse(srcs[i], &a);
        char dir[512], path[600];
        snprintf(dir, sizeof dir, "%s/%s", tmpdir, names[i]);
        sw_mkdir_p(dir);
        snprintf(path, sizeof path, "%s/config.json", dir);
        IS_INT(sw_model_config_write(&a, path), 0, "%s: write config.json", names[i]);
        IS_INT(sw_model_config_load(path, &b), 0, "%s: read it back: %s", names[i], sw_err_msg());
        OK(same_config(&a, &b), "%s: every field survives the round trip", names[i]);
        if (!have_tf) {
            printf("ok %d - # SKIP %s: python3 cannot import transformers (pip install "
                   "transformers)\n",
                   ++tap_n, names[i]);
            continue;
        }
        char cmd[1400], got[512] = "", want[512];
        snprintf(cmd, sizeof cmd, "python3 %s %s 2>/dev/null", script, dir);
        FILE *p = popen(cmd, "r");
        if (p) {
            if (!fgets(got, sizeof got, p)) got[0] = '\0';
            pclose(p);
        }
        expect_line(&a, want, sizeof want);
        IS_STR(got, want, "%s: transformers' AutoConfig reads sw's config.json the same", names[i]);
        if (a.arch != SW_ARCH_MISTRAL && a.arch != SW_ARCH_GEMMA2) continue;
        /* The family's own keys, as transformers reads them. */
        snprintf(cmd, sizeof cmd,
                 "python3 -c \"import sys, warnings; warnings.simplefilter('ignore'); from "
                 "transformers import AutoConfig; c = AutoConfig.from_pretrained(sys.argv[1]); "
                 "g = lambda k: getattr(c, k, None); print(g('sliding_window'), "
                 "g('attn_logit_softcapping'), g('final_logit_softcapping'), "
                 "g('query_pre_attn_scalar'), g('hidden_activation') or g('hidden_act'), "
                 "','.join(t[0] for t in (g('layer_types') or [])))\" %s 2>/dev/null",
                 dir);
        p = popen(cmd, "r");
        got[0] = '\0';
        if (p) {
            if (!fgets(got, sizeof got, p)) got[0] = '\0';
            pclose(p);
        }
        int gem = a.arch == SW_ARCH_GEMMA2;
        snprintf(want, sizeof want, "%lld %s %s %s %s %s\n", (long long)a.sliding_window,
                 gem ? "50.0" : "None", gem ? "30.0" : "None", gem ? "256" : "None", a.hidden_act,
                 gem ? "s,f,s,f,s,f,s,f,s,f,s,f,s,f,s,f,s,f,s,f,s,f,s,f,s,f" : "");
        IS_STR(got, want, "%s: transformers reads the family's keys the same", names[i]);
    }
}

/* ---- generation_config.json ------------------------------------------------------------------ */

static void test_generation(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/generation_config.json", tmpdir);
    struct sw_generation_config g;
    const char *qwen = "{\"bos_token_id\": 151643, \"pad_token_id\": 151643, \"do_sample\": true,"
                       " \"eos_token_id\": [151645, 151643], \"repetition_penalty\": 1.1,"
                       " \"temperature\": 0.7, \"top_p\": 0.8, \"top_k\": 20, "
                       "\"transformers_version\": \"4.37.0\"}";
    sw_write_file_atomic(path, qwen, strlen(qwen));
    IS_INT(sw_generation_config_load(path, &g), 0, "Qwen2.5 generation_config.json loads");
    OK(g.do_sample && g.temperature == 0.7 && g.top_p == 0.8 && g.top_k == 20 &&
           g.repetition_penalty == 1.1 && g.n_eos == 2 && g.eos_token_ids[1] == 151643 &&
           g.bos_token_id == 151643 && g.pad_token_id == 151643 && g.max_new_tokens == 0,
       "sampling values and token ids");
    sw_write_file_atomic(path, "{}", 2);
    IS_INT(sw_generation_config_load(path, &g), 0, "empty generation config loads");
    OK(!g.do_sample && g.temperature == 1.0 && g.top_p == 1.0 && g.top_k == 50 &&
           g.repetition_penalty == 1.0 && g.n_eos == 0 && g.bos_token_id == -1 &&
           g.max_new_tokens == 0,
       "generation defaults: greedy, T 1, top_p 1, top_k 50");
    const char *bad[] = {"{\"top_p\": 2}", "{\"temperature\": \"hot\"}", "[]", "{\"top_k\": -1}",
                         "{"};
    for (int i = 0; i < 5; i++) {
        sw_write_file_atomic(path, bad[i], strlen(bad[i]));
        IS_INT(sw_generation_config_load(path, &g), SW_EFORMAT, "bad generation config %s", bad[i]);
        OK(strstr(sw_err_msg(), "generation_config.json") != NULL, "message names the file: %s",
           sw_err_msg());
    }
}

/* ---- model folders and the inventory ------------------------------------------------------- */

static void test_golden_models(void) {
    struct sw_hfmodel *m = NULL;
    int rc = sw_hfmodel_open("test/golden/hf_tiny_qwen3", &m);
    IS_INT(rc, 0, "golden tiny qwen3 (transformers save_pretrained) opens: %s", sw_err_msg());
    if (m) {
        OK(m->config.arch == SW_ARCH_QWEN3 && m->config.tie_word_embeddings &&
               m->config.head_dim == 8,
           "qwen3 golden config");
        OK(m->has_generation_config && m->generation.n_eos == 1 &&
               m->generation.eos_token_ids[0] == 2,
           "generation_config.json read");
        IS_INT(sw_hfmodel_verify(m), 0,
               "every tensor transformers wrote is the one the config implies: %s", sw_err_msg());
        struct sw_hf_inventory inv;
        sw_hf_inventory_check(&m->config, m->weights, &inv);
        OK(inv.n_matched == 24 && inv.n_expected == 25 && inv.n_issues == 0,
           "24 matched of 25 specs (tied lm_head absent)");
        IS_INT(inv.params, sw_model_config_num_params(&m->config),
               "inventory params == config num_params");
        sw_hf_inventory_release(&inv);
        sw_hfmodel_close(m);
    }
    rc = sw_hfmodel_open("test/golden/hf_tiny_llama", &m);
    IS_INT(rc, 0, "golden tiny llama (3 shards + index) opens: %s", sw_err_msg());
    if (m) {
        IS_INT(sw_st_set_nfiles(m->weights), 3, "three shards");
        OK(m->config.rope_type == SW_ROPE_LLAMA3 && m->config.rope_original_max_position == 64 &&
               m->config.n_eos == 2,
           "llama golden: rope_parameters llama3, eos list");
        IS_INT(sw_hfmodel_verify(m), 0, "llama golden inventory is clean: %s", sw_err_msg());
        int64_t n = 0;
        for (int i = 0; i < sw_st_set_count(m->weights); i++) {
            const struct sw_st_entry *e = sw_st_set_get(m->weights, i);
            int64_t k = 1;
            for (int d = 0; d < e->ndim; d++)
                k *= e->shape[d];
            n += k;
        }
        IS_INT(n, sw_model_config_num_params(&m->config),
               "sum of tensor sizes == config num_params (7248)");
        sw_hfmodel_close(m);
    }
}

/* A qwen3 folder whose tensors are the golden ones with deliberate faults. */
static void test_broken_model(void) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/broken", tmpdir);
    sw_mkdir_p(dir);
    char *cfg = NULL;
    size_t len = 0;
    sw_read_file("test/golden/hf_tiny_qwen3/config.json", &cfg, &len, 0);
    snprintf(path, sizeof path, "%s/config.json", dir);
    sw_write_file_atomic(path, cfg, len);
    free(cfg);
    struct sw_hfmodel *m = NULL;
    IS_INT(sw_hfmodel_open(dir, &m), SW_ENOTFOUND, "config but no weights: SW_ENOTFOUND");

    struct sw_st_set *gold = NULL;
    sw_st_set_open("test/golden/hf_tiny_qwen3", &gold);
    struct sw_st_writer *w;
    sw_st_writer_new(&w);
    static float small[4], nine[9];
    static int32_t ints[16];
    for (int i = 0; gold && i < sw_st_set_count(gold); i++) {
        const struct sw_st_entry *e = sw_st_set_get(gold, i);
        struct sw_tensor t;
        if (strcmp(e->name, "model.norm.weight") == 0) continue; /* missing */
        if (strcmp(e->name, "model.layers.1.self_attn.q_norm.weight") == 0) {
            int64_t s[1] = {4}; /* wrong shape */
            sw_tensor_init(&t, SW_DTYPE_F32, 1, s, small);
        } else if (strcmp(e->name, "model.layers.0.input_layernorm.weight") == 0) {
            int64_t s[1] = {16}; /* wrong dtype */
            sw_tensor_init(&t, SW_DTYPE_I32, 1, s, ints);
        } else {
            sw_st_entry_view(e, &t);
        }
        sw_st_writer_add(w, e->name, &t);
    }
    struct sw_tensor extra, invf;
    int64_t s9[2] = {3, 3}, s4[1] = {4};
    sw_tensor_init(&extra, SW_DTYPE_F32, 2, s9, nine);
    sw_tensor_init(&invf, SW_DTYPE_F32, 1, s4, small);
    sw_st_writer_add(w, "model.layers.0.self_attn.extra.weight", &extra);
    sw_st_writer_add(w, "model.layers.0.self_attn.rotary_emb.inv_freq", &invf);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    IS_INT(sw_st_writer_write(w, path), 0, "broken model written");
    sw_st_writer_free(w);
    sw_st_set_close(gold);

    IS_INT(sw_hfmodel_open(dir, &m), 0, "broken model opens (the files themselves are valid)");
    if (!m) return;
    OK(!m->has_generation_config && m->generation.top_k == 50 && m->generation.n_eos == 1 &&
           m->generation.eos_token_ids[0] == 2,
       "no generation_config.json: defaults with config.json's eos");
    struct sw_hf_inventory inv;
    IS_INT(sw_hf_inventory_check(&m->config, m->weights, &inv), 0, "inventory runs");
    IS_INT(inv.n_issues, 4, "four issues: missing, shape, dtype, unexpected");
    IS_INT(inv.n_ignored, 1, "rotary inv_freq buffer ignored");
    if (inv.n_issues == 4) {
        char line[512];
        OK(inv.issues[0].kind == SW_HF_MISSING &&
               strcmp(inv.issues[0].name, "model.norm.weight") == 0,
           "missing model.norm.weight first");
        IS_STR(sw_hf_issue_str(&inv.issues[0], line, sizeof line),
               "missing tensor 'model.norm.weight' [16]", "missing message");
        OK(inv.issues[1].kind == SW_HF_DTYPE && strstr(inv.issues[1].name, "input_layernorm"),
           "dtype issue for layer 0's input_layernorm");
        IS_STR(sw_hf_issue_str(&inv.issues[2], line, sizeof line),
               "tensor 'model.layers.1.self_attn.q_norm.weight' has shape [4] but the config "
               "implies [8]",
               "shape message");
        OK(inv.issues[3].kind == SW_HF_UNEXPECTED &&
               strcmp(inv.issues[3].name, "model.layers.0.self_attn.extra.weight") == 0,
           "unexpected tensor reported");
    }
    sw_hf_inventory_release(&inv);
    IS_INT(sw_hfmodel_verify(m), SW_EFORMAT, "verify refuses the broken folder");
    OK(strstr(sw_err_msg(), "1 missing, 1 wrong shape, 1 wrong dtype, 1 unexpected") &&
           strstr(sw_err_msg(), "model.norm.weight") && strstr(sw_err_msg(), "and 1 more"),
       "verify message counts and names: %s", sw_err_msg());
    sw_hfmodel_close(m);

    IS_INT(sw_hfmodel_open(tmpdir, &m), SW_ENOTFOUND, "folder without config.json: SW_ENOTFOUND");
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    sw_write_file_atomic(path, "{\"top_k\": \"many\"}", 17);
    IS_INT(sw_hfmodel_open(dir, &m), SW_EFORMAT, "malformed generation_config.json is an error");
    IS_INT(sw_hfmodel_open("test/golden/hf_tiny_qwen3/config.json", &m), SW_EINVAL,
           "a file is not a folder");
    sw_hfmodel_close(NULL);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sw_test_hfc.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    test_published();
    test_new_families();
    test_defaults();
    test_errors();
    test_write();
    test_generation();
    test_golden_models();
    test_broken_model();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) DIAG("could not remove %s", tmpdir);
    return tap_done();
}
