/* sw_gguf_export — a Hugging Face model folder (Llama, Qwen2, Qwen3; optionally with a PEFT LoRA
 * adapter merged first) written as one GGUF file that llama.cpp loads: llama.cpp's tensor names
 * and metadata keys (general.*, <arch>.*), the tokenizer under tokenizer.ggml.*, and the
 * weights in the file type asked for, chosen per tensor the way llama.cpp's quantizer does.
 *
 * File types (--quant_type; llama.cpp's LLAMA_FTYPE ids are written as general.file_type):
 *   f32 (0), f16 (1), bf16 (32), q8_0 (7), q4_0 (2), q4_1 (3), q5_0 (8), q5_1 (9),
 *   q4_k_s (14), q4_k_m (15), q5_k_s (16), q5_k_m (17), q6_k (18).
 * Per-tensor rule (llama.cpp src/llama-quant.cpp, llama_tensor_get_type):
 *   - 1-D tensors (norms, biases, rope_freqs) stay F32.
 *   - f32/f16/bf16: every 2-D weight takes that type.
 *   - quantized: the file type's base type (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K),
 *     except output.weight — or token_embd.weight when the embeddings are tied (no
 *     output.weight) — which becomes Q6_K (Q8_0 stays Q8_0; Q8_0 when its rows are not whole
 *     256-blocks); for *_M mixes attn_v and ffn_down of layers where use_more_bits(i, n) holds
 *     (the first and last eighth, and every third in between) become Q6_K; for q4_k_s attn_v of
 *     the first 4 layers and ffn_down of the first eighth become Q5_K; with an importance matrix
 *     and q4_0, ffn_down of the first eighth becomes Q4_1.
 *   - a row length that is not a multiple of the chosen type's block: Q4_K → Q5_0, Q5_K → Q5_1,
 *     Q6_K → Q8_0, and F16 when even 32 does not divide it; for the 32-block base types
 *     (q8_0, q4_0, ...) llama.cpp has no fallback and neither has sw: an error naming the
 *     tensor. */
#ifndef SW_GGUF_EXPORT_H
#define SW_GGUF_EXPORT_H

#include "sw_gguf.h"

#include <stdint.h>

/* llama.cpp file types. */
enum sw_llama_ftype {
    SW_FTYPE_ALL_F32 = 0,
    SW_FTYPE_F16 = 1,
    SW_FTYPE_Q4_0 = 2,
    SW_FTYPE_Q4_1 = 3,
    SW_FTYPE_Q8_0 = 7,
    SW_FTYPE_Q5_0 = 8,
    SW_FTYPE_Q5_1 = 9,
    SW_FTYPE_Q4_K_S = 14,
    SW_FTYPE_Q4_K_M = 15,
    SW_FTYPE_Q5_K_S = 16,
    SW_FTYPE_Q5_K_M = 17,
    SW_FTYPE_Q6_K = 18,
    SW_FTYPE_BF16 = 32,
};

/* Parse a --quant_type name (case-insensitive: "q4_k_m", "Q8_0", "bf16", ...). Sets the file type
 * and its base ggml type. Returns 0 or SW_EUSAGE listing the names. */
int sw_gguf_ftype_parse(const char *name, int *ftype, int *base_type);
/* The canonical name of a file type ("Q4_K_M"), or NULL. */
const char *sw_gguf_ftype_name(int ftype);
/* The '|'-separated list of accepted --quant_type names. */
const char *sw_gguf_ftype_choices(void);

/* What the per-tensor rule needs to know about the model. */
struct sw_gguf_mix {
    int ftype, base_type;
    int n_layer; /* transformer blocks */
    int tied;    /* no output.weight: token_embd.weight is the output matrix */
    int has_imatrix;
};

/* The ggml type of tensor `name` (llama.cpp's name) with n_dims dims ne[] (ggml order) under
 * mix, by the rule above. *fallback (may be NULL) is set to 1 when the row length forced a
 * fallback type. Returns the type, or SW_EUNSUPPORTED naming the tensor when no type fits. */
int sw_gguf_pick_type(const struct sw_gguf_mix *mix, const char *name, int n_dims,
                      const int64_t *ne, int *fallback);

/* llama.cpp's use_more_bits(i_layer, n_layers). */
int sw_gguf_use_more_bits(int i_layer, int n_layers);

/* An importance matrix (llama-imatrix output): per tensor name, one weight per column.
 * Reads the GGUF format (tensors "<name>.in_sum2" and "<name>.counts"; values = sums / count)
 * and the legacy binary format (int32 entry count; per entry int32 name length, name, int32
 * ncall, int32 nval, float[nval]; values = sums / ncall). */
struct sw_imatrix;
int sw_imatrix_load(const char *path, struct sw_imatrix **out);
void sw_imatrix_free(struct sw_imatrix *im);
/* The weights of tensor name (borrowed) and their count, or NULL when absent. */
const float *sw_imatrix_get(const struct sw_imatrix *im, const char *name, int64_t *n);
int sw_imatrix_count(const struct sw_imatrix *im);

/* Tokenizer metadata (sw_gguf_vocab.c). */
struct sw_gguf_vocab_info {
    int spm;          /* 1: "llama" (SentencePiece-style), 0: "gpt2" (byte-level BPE) */
    int64_t n_tokens; /* = embedding rows */
    int64_t n_added, n_unused, n_merges;
};
/* Write tokenizer.ggml.* and tokenizer.chat_template from the tokenizer files in dir, with
 * n_vocab tokens (the model's embedding rows). */
int sw_gguf_add_vocab(struct sw_gguf_writer *w, const char *dir, int64_t n_vocab,
                      struct sw_gguf_vocab_info *info);

struct sw_gguf_export_opts {
    const char *model;      /* HF model folder */
    const char *adapter;    /* PEFT LoRA adapter folder to merge first, or NULL */
    const char *output;     /* FILE.gguf */
    const char *quant_type; /* see the list above */
    const char *imatrix;    /* importance matrix file, or NULL */
    const char *name;       /* general.name (default: the model folder's base name) */
    int force;              /* replace an existing output */
};

/* What was written (for the summary line). */
struct sw_gguf_export_stats {
    int n_tensors;
    int n_fallback; /* tensors whose rows forced a fallback type */
    int n_imatrix;  /* tensors quantized with importance weights */
    int64_t n_params;
    uint64_t bytes; /* tensor data */
    uint64_t file_size;
    int by_type[SW_GGML_TYPE_COUNT];
};

/* Export as described at the top. The output appears only when complete (temp file, fsync,
 * rename); on error nothing is left behind. */
int sw_gguf_export(const struct sw_gguf_export_opts *o, struct sw_gguf_export_stats *st);

#endif
