/* sw-quant gguf — export an HF model folder (optionally with a PEFT LoRA adapter merged first)
 * as one GGUF file for llama.cpp, in the file type asked for (f16, bf16, q8_0, q4_0, q4_k_m,
 * q5_k_m, q6_k, ...). The work is in lib/quant/sw_gguf_export.c; this file parses the options
 * and reports what was written. */
#include "quant.h"

#include "sw_config.h"
#include "sw_err.h"
#include "sw_gguf_export.h"
#include "sw_hub.h"
#include "sw_log.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct gguf_opts {
    char *model, *adapter, *output, *quant_type, *imatrix, *name;
    char *use_hf, *model_revision, *hub_token;
    int force;
};

static const struct sw_opt gguf_table[] = {
    {"model", SW_OPT_STRING, offsetof(struct gguf_opts, model), NULL,
     "HF model folder (config.json, weights, tokenizer.json) or hub id (org/name); required", 0, 0,
     NULL, NULL},
    {"adapter", SW_OPT_STRING, offsetof(struct gguf_opts, adapter), NULL,
     "PEFT LoRA adapter folder or hub id to merge into the model first", 0, 0, NULL, NULL},
    {"output", SW_OPT_STRING, offsetof(struct gguf_opts, output), NULL,
     "GGUF file to write; required", 0, 0, NULL, NULL},
    {"quant_type", SW_OPT_CHOICE, offsetof(struct gguf_opts, quant_type), "f16",
     "file type: per-tensor types chosen as llama.cpp's quantizer does", 0, 0,
     "f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1|q4_k_s|q4_k_m|q5_k_s|q5_k_m|q6_k", NULL},
    {"imatrix", SW_OPT_STRING, offsetof(struct gguf_opts, imatrix), NULL,
     "importance matrix from llama-imatrix (GGUF or legacy .dat) for the K-quants", 0, 0, NULL,
     NULL},
    {"name", SW_OPT_STRING, offsetof(struct gguf_opts, name), NULL,
     "general.name (default: the model folder's name; a hub id's NAME)", 0, 0, NULL, NULL},
    {"force", SW_OPT_BOOL, offsetof(struct gguf_opts, force), "false",
     "replace an existing output file", 0, 0, NULL, NULL},
    SW_HUB_OPT_ROWS(struct gguf_opts),
    SW_OPT_END,
};

static const struct sw_cli gguf_cli = {
    .tool = "sw-quant",
    .command = "gguf",
    .usage = "sw-quant gguf --model DIR [--adapter DIR] --quant_type TYPE [--imatrix FILE] "
             "--output FILE.gguf",
    .summary =
        "Write a Llama / Qwen2 / Qwen3 model folder as a GGUF file that llama.cpp loads:\n"
        "llama.cpp's tensor names and metadata keys, the tokenizer (tokenizer.ggml.*, chat\n"
        "template) and the weights in --quant_type. 1-D tensors stay F32; 2-D weights take the\n"
        "file type's type, with llama.cpp's per-tensor mix for the K-quants (output and tied\n"
        "embeddings Q6_K; *_m: attn_v and ffn_down of some layers Q6_K) and its fallbacks for "
        "rows\n"
        "that are not whole 256-blocks. --adapter merges a LoRA adapter first. The file appears\n"
        "only when complete.",
    .opts = gguf_table,
    .min_pos = 0,
    .max_pos = 0,
};

/* Hub ids become snapshot folders; a hub model keeps its repo NAME as general.name (the snapshot
 * folder is named after a commit). */
static int gguf_hub_resolve(struct gguf_opts *o) {
    const char *given = o->model;
    char *name = NULL;
    if (!o->name && given && access(given, F_OK) != 0 && sw_hub_looks_like_id(given)) {
        const char *slash = strrchr(given, '/');
        if (!(name = strdup(slash ? slash + 1 : given))) return sw_err_set(SW_ENOMEM, "no memory");
    }
    int rc = sw_hub_resolve_arg(&o->model, SW_HUB_NEED_MODEL, o->use_hf, o->model_revision,
                                o->hub_token);
    if (rc == 0)
        rc = sw_hub_resolve_arg(&o->adapter, SW_HUB_NEED_MODEL, o->use_hf, NULL, o->hub_token);
    if (rc == 0 && name) o->name = name, name = NULL;
    free(name);
    return rc;
}

int sw_quant_gguf_main(int argc, char **argv) {
    struct gguf_opts o;
    char **pos = NULL;
    int npos = 0;
    int rc = sw_cli_parse(&gguf_cli, &o, argc, argv, &pos, &npos);
    if (rc != 0) return rc > 0 ? 0 : rc;
    free(pos);
    if (!o.model || !o.output) {
        rc = sw_err_set(SW_EUSAGE, "--model and --output are required (see sw-quant gguf --help)");
    } else if ((rc = gguf_hub_resolve(&o)) == 0) {
        struct sw_gguf_export_opts e = {o.model,   o.adapter, o.output, o.quant_type,
                                        o.imatrix, o.name,    o.force};
        struct sw_gguf_export_stats st;
        rc = sw_gguf_export(&e, &st);
        if (rc == 0) {
            char types[512];
            size_t n = 0;
            types[0] = 0;
            for (int t = 0; t < SW_GGML_TYPE_COUNT && n < sizeof types; t++)
                if (st.by_type[t])
                    n += (size_t)snprintf(types + n, sizeof types - n, "%s%s %d", n ? ", " : "",
                                          sw_ggml_type_name(t), st.by_type[t]);
            sw_info("wrote %s: %d tensors (%s), %lld parameters, %.2f MiB, %.2f bits per weight%s",
                    o.output, st.n_tensors, types, (long long)st.n_params,
                    (double)st.file_size / (1 << 20),
                    st.n_params ? 8.0 * (double)st.bytes / (double)st.n_params : 0.0,
                    st.n_fallback ? " (some rows used fallback types)" : "");
            if (o.imatrix) sw_info("importance weights used for %d K-quant tensors", st.n_imatrix);
        }
    }
    sw_config_release(gguf_table, &o);
    return rc;
}
