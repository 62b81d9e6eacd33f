/* sw_gguf_export — HF model folder → GGUF (what and which types: sw_gguf_export.h).
 *
 * The plan (names, shapes, types) is made before any data is touched, so every error a tensor
 * can cause (unsupported row length, importance vector of the wrong length) is found before the
 * output is opened; then each tensor is converted to float32, permuted where llama.cpp wants it,
 * checked for NaN/Inf, quantized and streamed into the temporary file, one tensor in memory at
 * a time. Names follow llama.cpp's gguf-py tensor map (token_embd, blk.N.attn_q, ...). Llama's
 * q/k rows are permuted from Hugging Face's rotate-half layout to ggml's interleaved pairs
 * (LlamaModel.permute in convert_hf_to_gguf: per head, rows (2, d/2) → (d/2, 2)); Qwen2/Qwen3
 * use NEOX rope in llama.cpp and keep the HF order. A Llama-3-scaled rope adds the
 * rope_freqs.weight factors that convert_hf_to_gguf computes. */
#include "sw_gguf_export.h"

#include "sw_dtype.h"
#include "sw_err.h"
#include "sw_ggml_quant.h"
#include "sw_hfmodel.h"
#include "sw_io.h"
#include "sw_log.h"
#include "sw_merge.h"
#include "sw_progress.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct plan {
    char name[SW_GGUF_MAX_NAME + 1];
    const struct sw_st_entry *src; /* NULL for rope_freqs */
    int permute_heads;             /* > 0: llama q/k row permutation with this many heads */
    int type, n_dims, fallback;
    int64_t ne[2];
    const float *imat;
};

/* llama.cpp's name for an HF tensor, or "" for tensors GGUF does not carry. */
static int gguf_name(const char *hf, char *out, size_t cap) {
    static const struct {
        const char *hf, *gg;
    } top[] = {{"model.embed_tokens.weight", "token_embd.weight"},
               {"model.norm.weight", "output_norm.weight"},
               {"lm_head.weight", "output.weight"}};
    static const struct {
        const char *hf, *gg;
    } layer[] = {{"input_layernorm", "attn_norm"},    {"self_attn.q_proj", "attn_q"},
                 {"self_attn.k_proj", "attn_k"},      {"self_attn.v_proj", "attn_v"},
                 {"self_attn.o_proj", "attn_output"}, {"self_attn.q_norm", "attn_q_norm"},
                 {"self_attn.k_norm", "attn_k_norm"}, {"post_attention_layernorm", "ffn_norm"},
                 {"mlp.gate_proj", "ffn_gate"},       {"mlp.up_proj", "ffn_up"},
                 {"mlp.down_proj", "ffn_down"}};
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        if (!strcmp(hf, top[i].hf)) return snprintf(out, cap, "%s", top[i].gg), 0;
    int l, n = 0;
    if (sscanf(hf, "model.layers.%d.%n", &l, &n) == 1 && n > 0) {
        const char *rest = hf + n, *dot = strrchr(rest, '.');
        if (!dot) return -1;
        for (size_t i = 0; i < sizeof layer / sizeof layer[0]; i++) {
            size_t k = strlen(layer[i].hf);
            if ((size_t)(dot - rest) == k && !strncmp(rest, layer[i].hf, k)) {
                snprintf(out, cap, "blk.%d.%s%s", l, layer[i].gg, dot);
                return 0;
            }
        }
    }
    return -1;
}

/* Llama-3 rope scaling factors per frequency (convert_hf_to_gguf LlamaModel
 * generate_extra_tensors). */
static float *llama3_rope_factors(const struct sw_model_config *c, int64_t *n) {
    int64_t dim = c->head_dim;
    *n = dim / 2;
    float *f = malloc((size_t)*n * sizeof *f);
    if (!f) return NULL;
    double factor = c->rope_factor > 0 ? c->rope_factor : 8.0;
    double lo = c->rope_low_freq_factor > 0 ? c->rope_low_freq_factor : 1.0;
    double hi = c->rope_high_freq_factor > 0 ? c->rope_high_freq_factor : 4.0;
    double old = c->rope_original_max_position > 0 ? (double)c->rope_original_max_position : 8192;
    double lo_wl = old / lo, hi_wl = old / hi;
    for (int64_t i = 0; i < *n; i++) {
        float freq = (float)(1.0 / pow(c->rope_theta, (double)(2 * i) / (double)dim));
        double wl = 2 * M_PI / freq;
        if (wl < hi_wl)
            f[i] = 1;
        else if (wl > lo_wl)
            f[i] = (float)factor;
        else {
            double smooth = (old / wl - lo) / (hi - lo);
            f[i] = (float)(1 / ((1 - smooth) / factor + smooth));
        }
    }
    return f;
}

static int write_metadata(struct sw_gguf_writer *w, const struct sw_model_config *c,
                          const char *name, int ftype) {
    const char *arch = c->arch == SW_ARCH_LLAMA   ? "llama"
                       : c->arch == SW_ARCH_QWEN2 ? "qwen2"
                                                  : "qwen3";
    char k[96];
#define KEY(suffix) (snprintf(k, sizeof k, "%s." suffix, arch), k)
    SW_TRY(sw_gguf_set_str(w, "general.architecture", arch));
    SW_TRY(sw_gguf_set_str(w, "general.type", "model"));
    SW_TRY(sw_gguf_set_str(w, "general.name", name));
    SW_TRY(sw_gguf_set_u32(w, "general.quantization_version", SW_GGML_QNT_VERSION));
    SW_TRY(sw_gguf_set_u32(w, "general.file_type", (uint32_t)ftype));
    SW_TRY(sw_gguf_set_u32(w, KEY("vocab_size"), (uint32_t)c->vocab_size));
    SW_TRY(sw_gguf_set_u32(w, KEY("context_length"), (uint32_t)c->max_position_embeddings));
    SW_TRY(sw_gguf_set_u32(w, KEY("embedding_length"), (uint32_t)c->hidden_size));
    SW_TRY(sw_gguf_set_u32(w, KEY("block_count"), (uint32_t)c->num_hidden_layers));
    SW_TRY(sw_gguf_set_u32(w, KEY("feed_forward_length"), (uint32_t)c->intermediate_size));
    SW_TRY(sw_gguf_set_u32(w, KEY("attention.head_count"), (uint32_t)c->num_attention_heads));
    SW_TRY(sw_gguf_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->num_key_value_heads));
    SW_TRY(sw_gguf_set_u32(w, KEY("attention.key_length"), (uint32_t)c->head_dim));
    SW_TRY(sw_gguf_set_u32(w, KEY("attention.value_length"), (uint32_t)c->head_dim));
    SW_TRY(sw_gguf_set_u32(w, KEY("rope.dimension_count"), (uint32_t)c->head_dim));
    SW_TRY(sw_gguf_set_f32(w, KEY("rope.freq_base"), (float)c->rope_theta));
    SW_TRY(sw_gguf_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), (float)c->rms_norm_eps));
    if (c->rope_type == SW_ROPE_LINEAR) {
        SW_TRY(sw_gguf_set_str(w, KEY("rope.scaling.type"), "linear"));
        SW_TRY(sw_gguf_set_f32(w, KEY("rope.scaling.factor"), (float)c->rope_factor));
    }
#undef KEY
    return 0;
}

/* float32 copy of the planned tensor's data, permuted for llama q/k. */
static float *load_f32(const struct plan *p, int *rc) {
    const struct sw_st_entry *e = p->src;
    int64_t n = p->ne[0] * (p->n_dims > 1 ? p->ne[1] : 1);
    float *x = malloc((size_t)(n ? n : 1) * sizeof *x);
    if (!x) {
        *rc = sw_err_set(SW_ENOMEM, "out of memory for '%s'", e->name);
        return NULL;
    }
    if ((*rc = sw_dtype_convert(SW_DTYPE_F32, x, e->dtype, e->data, (size_t)n)) < 0) {
        *rc = sw_err_set(SW_EUNSUPPORTED, "tensor '%s': cannot convert %s to float32", e->name,
                         sw_dtype_name(e->dtype));
        free(x);
        return NULL;
    }
    if (p->permute_heads > 0) {
        /* rows of each head: (2, hd/2) → (hd/2, 2); a bias is a "matrix" of 1-element rows */
        int64_t rows = p->n_dims > 1 ? p->ne[1] : p->ne[0], cols = p->n_dims > 1 ? p->ne[0] : 1;
        int64_t hd = rows / p->permute_heads, half = hd / 2;
        float *y = malloc((size_t)n * sizeof *y);
        if (!y) {
            free(x);
            *rc = sw_err_set(SW_ENOMEM, "out of memory for '%s'", e->name);
            return NULL;
        }
        for (int64_t h = 0; h < p->permute_heads; h++)
            for (int64_t i = 0; i < half; i++)
                for (int64_t j = 0; j < 2; j++)
                    memcpy(y + (h * hd + i * 2 + j) * cols, x + (h * hd + j * half + i) * cols,
                           (size_t)cols * sizeof *x);
        free(x);
        x = y;
    }
    int64_t bad = sw_ggml_check_finite(x, n);
    if (bad >= 0) {
        *rc = sw_err_set(SW_EFORMAT, "tensor '%s': element %lld is %s", e->name, (long long)bad,
                         isnan(x[bad]) ? "NaN" : "infinite");
        free(x);
        return NULL;
    }
    *rc = 0;
    return x;
}

static int export_folder(const char *dir, const struct sw_gguf_export_opts *o, const char *name,
                         struct sw_gguf_export_stats *st) {
    int ftype, base;
    SW_TRY(sw_gguf_ftype_parse(o->quant_type, &ftype, &base));
    struct sw_hfmodel *m = NULL;
    struct sw_imatrix *im = NULL;
    struct sw_gguf_writer *w = NULL;
    struct sw_hf_tensor_spec *specs = NULL;
    struct plan *plan = NULL;
    float *rope = NULL;
    int nspec = 0, np = 0, rc = 0;
    SW_TRY_GOTO(rc, sw_hfmodel_open(dir, &m), out);
    SW_TRY_GOTO(rc, sw_hfmodel_verify(m), out);
    const struct sw_model_config *c = &m->config;
    if (c->arch == SW_ARCH_MISTRAL || c->arch == SW_ARCH_GEMMA2) { /* no GGUF mapping written yet */
        rc = sw_err_set(SW_EUNSUPPORTED, "%s: GGUF export of %s models is not supported yet", dir,
                        c->model_type);
        goto out;
    }
    if (o->imatrix) SW_TRY_GOTO(rc, sw_imatrix_load(o->imatrix, &im), out);
    SW_TRY_GOTO(rc, sw_hf_expected_tensors(c, &specs, &nspec), out);
    plan = calloc((size_t)nspec + 1, sizeof *plan);
    if (!plan) {
        rc = sw_err_set(SW_ENOMEM, "out of memory");
        goto out;
    }
    int tied = c->tie_word_embeddings || !sw_st_set_find(m->weights, "lm_head.weight");
    struct sw_gguf_mix mix = {ftype, base, (int)c->num_hidden_layers, tied, im != NULL};
    int64_t rope_n = 0;
    if (c->arch == SW_ARCH_LLAMA && c->rope_type == SW_ROPE_LLAMA3) {
        if (!(rope = llama3_rope_factors(c, &rope_n))) {
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            goto out;
        }
        struct plan *p = &plan[np++];
        snprintf(p->name, sizeof p->name, "rope_freqs.weight");
        p->type = SW_GGML_F32, p->n_dims = 1, p->ne[0] = rope_n, p->ne[1] = 1;
    }
    for (int i = 0; i < nspec; i++) {
        const struct sw_st_entry *e = sw_st_set_find(m->weights, specs[i].name);
        if (!e) continue; /* optional and absent: lm_head of a tied model */
        if (tied && !strcmp(specs[i].name, "lm_head.weight")) continue;
        struct plan *p = &plan[np];
        if (gguf_name(e->name, p->name, sizeof p->name) < 0) {
            rc = sw_err_set(SW_EUNSUPPORTED, "tensor '%s' has no GGUF name", e->name);
            goto out;
        }
        p->src = e;
        p->n_dims = e->ndim;
        p->ne[0] = e->shape[e->ndim - 1];
        p->ne[1] = e->ndim > 1 ? e->shape[0] : 1;
        if (c->arch == SW_ARCH_LLAMA) {
            if (strstr(p->name, ".attn_q.")) p->permute_heads = (int)c->num_attention_heads;
            if (strstr(p->name, ".attn_k.")) p->permute_heads = (int)c->num_key_value_heads;
        }
        p->type = sw_gguf_pick_type(&mix, p->name, p->n_dims, p->ne, &p->fallback);
        if (p->type < 0) {
            rc = sw_err_wrap(p->type, "%s (%s)", dir, e->name);
            goto out;
        }
        if (p->fallback) {
            sw_warn("%s: rows of %lld are not whole 256-blocks: %s instead of the K-quant", p->name,
                    (long long)p->ne[0], sw_ggml_type_name(p->type));
            st->n_fallback++;
        }
        if (im && sw_ggml_is_quantized(p->type)) {
            int64_t n = 0;
            p->imat = sw_imatrix_get(im, p->name, &n);
            if (p->imat && n != p->ne[0]) {
                rc = sw_err_set(SW_EFORMAT,
                                "%s: importance entry '%s' has %lld values but the "
                                "tensor's rows have %lld",
                                o->imatrix, p->name, (long long)n, (long long)p->ne[0]);
                goto out;
            }
            if (!p->imat && p->n_dims > 1)
                sw_warn("%s: no importance entry for '%s'", o->imatrix, p->name);
            if (p->imat &&
                (p->type == SW_GGML_Q4_K || p->type == SW_GGML_Q5_K || p->type == SW_GGML_Q6_K))
                st->n_imatrix++;
        }
        np++;
    }
    SW_TRY_GOTO(rc, sw_gguf_writer_new(&w), out);
    SW_TRY_GOTO(rc, write_metadata(w, c, name, ftype), out);
    struct sw_gguf_vocab_info vi;
    SW_TRY_GOTO(rc, sw_gguf_add_vocab(w, dir, c->vocab_size, &vi), out);
    for (int i = 0; i < np; i++) {
        rc = sw_gguf_add_tensor(w, plan[i].name, plan[i].type, plan[i].n_dims, plan[i].ne);
        if (rc < 0) goto out;
        rc = 0;
    }
    SW_TRY_GOTO(rc, sw_gguf_writer_begin(w, o->output), out);
    struct sw_progress prog;
    sw_progress_init(&prog, "gguf", (uint64_t)np, "tensors");
    for (int i = 0; i < np && rc == 0; i++) {
        struct plan *p = &plan[i];
        size_t nbytes = sw_gguf_writer_tensor_nbytes(w, i);
        int64_t n = p->ne[0] * p->ne[1];
        if (!p->src) {
            rc = sw_gguf_writer_write_tensor(w, rope, nbytes);
        } else {
            float *x = load_f32(p, &rc);
            void *q = x && p->type != SW_GGML_F32 ? malloc(nbytes ? nbytes : 1) : NULL;
            if (x && p->type != SW_GGML_F32 && !q) rc = sw_err_set(SW_ENOMEM, "out of memory");
            if (rc == 0 && q) rc = sw_ggml_quantize(p->type, x, q, p->ne[1], p->ne[0], p->imat);
            if (rc == 0) rc = sw_gguf_writer_write_tensor(w, q ? q : x, nbytes);
            if (rc < 0 && !strstr(sw_err_msg(), p->src->name))
                rc = sw_err_wrap(rc, "tensor '%s'", p->src->name);
            free(x), free(q);
        }
        st->n_tensors++;
        st->n_params += n;
        st->bytes += nbytes;
        st->by_type[p->type]++;
        sw_progress_add(&prog, 1);
    }
    sw_progress_finish(&prog);
    if (rc == 0) rc = sw_gguf_writer_commit(w);
    if (rc == 0) {
        struct stat sb;
        if (stat(o->output, &sb) == 0) st->file_size = (uint64_t)sb.st_size;
    }
out:
    sw_gguf_writer_free(w);
    sw_imatrix_free(im);
    sw_hfmodel_close(m);
    free(specs), free(plan), free(rope);
    return rc;
}

int sw_gguf_export(const struct sw_gguf_export_opts *o, struct sw_gguf_export_stats *st) {
    memset(st, 0, sizeof *st);
    int ftype, base;
    SW_TRY(sw_gguf_ftype_parse(o->quant_type, &ftype, &base));
    struct stat sb;
    if (!o->force && stat(o->output, &sb) == 0)
        return sw_err_set(SW_EINVAL, "'%s' exists (use --force to replace it)", o->output);
    /* general.name: the given one, else the model folder's base name */
    char name[256];
    const char *src = o->model;
    size_t len = strlen(src);
    while (len > 1 && src[len - 1] == '/')
        len--;
    const char *b = src + len;
    while (b > src && b[-1] != '/')
        b--;
    snprintf(name, sizeof name, "%.*s", (int)(src + len - b), b);
    if (o->name) snprintf(name, sizeof name, "%s", o->name);
    if (!o->adapter) return export_folder(o->model, o, name, st);
    /* Merge the adapter into a float32 folder next to the output first (sw_merge_lora), export
     * that, and remove it whatever happens. */
    char *tmp = malloc(strlen(o->output) + 64);
    if (!tmp) return sw_err_set(SW_ENOMEM, "out of memory");
    sprintf(tmp, "%s.merge-tmp.%ld", o->output, (long)getpid());
    sw_rm_tree_quiet(tmp);
    struct sw_merge_opts mo = {o->model, o->adapter, tmp, "float32", 0, 0};
    int rc = sw_merge_lora(&mo);
    if (rc == 0) rc = export_folder(tmp, o, name, st);
    sw_rm_tree_quiet(tmp);
    free(tmp);
    return rc;
}
