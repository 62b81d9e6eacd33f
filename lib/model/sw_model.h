/* sw_model — the decoder-only transformer sw trains: Llama, Qwen2 and Qwen3 (GQA, RoPE with
 * llama3/linear scaling, RMSNorm, SwiGLU MLP, tied or untied LM head, Qwen2 q/k/v biases, Qwen3
 * per-head q/k RMSNorm), forward and backward over packed or padded batches, with optional LoRA
 * adapters on every linear layer. All math goes through a struct sw_backend
 * (kernels/sw_kernels.h), so the same code runs on the CPU reference and on CUDA.
 *
 * Parameters are float32 in backend memory and carry transformers' names exactly
 * ("model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", ..., "model.norm.weight",
 * "lm_head.weight" — absent when tied), in transformers' order; LoRA parameters carry PEFT's saved
 * names ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"). A loader, a saver or
 * an optimizer walks them with sw_model_nparams/sw_model_param and maps 1:1.
 *
 * Driving a training step (what sw-train does):
 *
 *     struct sw_backend *be;   sw_backend_open(SW_DEVICE_CPU, &be);
 *     struct sw_model *m;      sw_model_new(&cfg, be, &m);
 *     sw_model_load(m, weights);           // or sw_model_init_random(m, seed, 0.02f)
 *     sw_model_lora_add(m, &lora)          // optional: adds A/B, freezes every base parameter
 *     sw_model_set_training(m, 1);         // enables LoRA dropout
 *     for each optimizer step:
 *         sw_model_zero_grad(m);
 *         n_tokens = Σ over its micro-batches of sw_batch_count_targets(&mb)
 *         for each micro-batch mb:
 *             struct sw_loss l;
 *             sw_model_forward(m, &mb, &l);           // loss sum + target count; keeps activations
 *             sw_model_backward(m, 1.0f / n_tokens);  // grads += d(loss_sum / n_tokens)
 *         for (int i = 0; i < sw_model_nparams(m); i++) {
 *             struct sw_param *p = sw_model_param(m, i);
 *             if (p->trainable) optimizer_update(p->value.data, p->grad.data, numel, p->decay);
 *         }
 *
 * One batch = one mean over its targets: sw_model_backward(m, 1.0f / l.count) gives exactly the
 * gradient of HF's loss (mean over non-ignored shifted labels) for that batch.
 * Activations of the last forward live in the backend's scratch arena, which every forward
 * resets; backward must follow its forward before the next forward. */
#ifndef SW_MODEL_H
#define SW_MODEL_H

#include "sw_hfconfig.h"
#include "sw_kernels.h"
#include "sw_safetensors.h"
#include "sw_tensor.h"

#include <stddef.h>
#include <stdint.h>

/* One parameter: its value and gradient tensors (float32, backend memory, device set).
 * grad.data is NULL until gradients are allocated (sw_model_zero_grad / first backward) and
 * stays NULL for frozen parameters. */
struct sw_param {
    char *name; /* HF / PEFT name (owned by the model) */
    struct sw_tensor value;
    struct sw_tensor grad;
    int trainable; /* 0: frozen (no gradient is computed) */
    int decay;     /* 1 for matrices, 0 for biases and norm weights (HF Trainer's rule) */
    int is_lora;   /* a LoRA A or B matrix */
    /* Non-NULL: a frozen linear weight held quantized (lib/core/sw_qformat.h; arrays in backend
     * memory, value.data NULL, value's shape W's). Loading a quantized folder keeps its linears
     * so, and a model whose config asks for quant.load_fmt quantizes them while loading. */
    struct sw_qweight *quant;
};

struct sw_model;

/* A batch of B rows of T tokens (host memory, int32, row-major [B, T]), in one of three layouts:
 *  - plain: every row one sequence (attention_mask and cu_seqlens NULL);
 *  - padded: attention_mask [B*T] 1 = token, 0 = padding, right padding only (a 1 after a 0 is
 *    SW_EINVAL); pad rows attend to their row's tokens like HF, and get no targets;
 *  - packed: cu_seqlens[n_seqs + 1] boundaries over the flattened B·T tokens (0, ..., B·T):
 *    tokens attend only inside their own sequence.
 * labels are HF's unshifted labels (SW_IGNORE_INDEX = -100 ignored): the target of token t is
 * labels[t + 1] of the same sequence, so the last token of a sequence predicts nothing.
 * position_ids NULL means the index of the token inside its sequence (restarting at 0). */
struct sw_batch {
    int64_t B, T;
    const int32_t *input_ids;      /* [B*T], required */
    const int32_t *labels;         /* [B*T] or NULL (no loss; forward still runs) */
    const int32_t *position_ids;   /* [B*T] or NULL */
    const int32_t *attention_mask; /* [B*T] or NULL */
    const int32_t *cu_seqlens;     /* [n_seqs + 1] or NULL */
    int n_seqs;
};

/* The loss of a forward: sum of the per-token losses and the number of targets (mean = sum/count).
 */
struct sw_loss {
    double sum;
    int64_t count;
};

/* LoRA on linear layers (PEFT's LoraConfig). */
struct sw_lora_config {
    int r;        /* rank, > 0 */
    double alpha; /* lora_alpha; scale = alpha / r, or alpha / sqrt(r) with rslora */
    int use_rslora;
    float dropout;              /* lora_dropout in [0, 1), applied to the adapter's input */
    const char *target_modules; /* "all-linear" (NULL means it) or a comma list of module names:
                                   q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj */
    uint64_t seed;              /* A ~ kaiming-uniform like PEFT (bound 1/sqrt(in)), B = 0 */
};

/* Calibration hook (sw-quant's GPTQ / AWQ / importance matrix): one decoder linear layer, as an
 * observer sees it. kind indexes q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj
 * (name is that module name); in / out are the layer's sizes. */
struct sw_linear_site {
    int layer, kind;
    const char *name;
    int64_t in, out;
};
/* Called with the input x [N, in] of every decoder linear before its base product, in forward
 * order, by the training forward and the inference engine alike. x is backend memory (host
 * memory on the CPU backend; download it on others). A non-zero return aborts the forward with
 * that code. */
typedef int (*sw_linear_observer_fn)(void *ctx, const struct sw_linear_site *site, const float *x,
                                     int64_t N);

/* Build a model for cfg on backend be (borrowed: it must outlive the model). Parameters are
 * allocated and zero; fill them with sw_model_load or sw_model_init_random. Returns 0,
 * SW_EUNSUPPORTED (hidden_act other than silu, odd head_dim), SW_EINVAL or SW_ENOMEM. */
int sw_model_new(const struct sw_model_config *cfg, struct sw_backend *be, struct sw_model **out);
/* Free the model, its parameters and gradients. Accepts NULL. */
void sw_model_free(struct sw_model *m);
const struct sw_model_config *sw_model_config_get(const struct sw_model *m);
struct sw_backend *sw_model_backend(const struct sw_model *m);

/* Parameters in HF order (LoRA parameters last). Pointers stay valid for the model's life. */
int sw_model_nparams(const struct sw_model *m);
struct sw_param *sw_model_param(struct sw_model *m, int i);
/* The parameter called name, or NULL. */
struct sw_param *sw_model_param_find(struct sw_model *m, const char *name);
/* Elements of all parameters / of the trainable ones. */
int64_t sw_model_numel(const struct sw_model *m, int trainable_only);
/* What the parameters take in backend memory: float ones 4 bytes per element, quantized linear
 * weights their arrays (struct sw_qweight). */
struct sw_model_weight_mem {
    int64_t float_params, quant_params;
    size_t float_bytes, quant_bytes;
    int n_quant; /* quantized linear weights */
    int fmt;     /* their enum sw_qfmt (the first one's; SW_QFMT_NONE when none) */
};
void sw_model_weight_mem(const struct sw_model *m, struct sw_model_weight_mem *out);

/* Fill every base parameter from s (model.safetensors / shards), converting F32/F16/BF16/F64 to
 * float32. A decoder linear whose tensors are quantized (GPTQ, bitsandbytes NF4/int8,
 * compressed-tensors FP8: lib/format/sw_qtensors.h) stays quantized when the config's quant.keep
 * is set (an HF quantized folder's config.json sets it), else is dequantized to float32; with
 * quant.load_fmt set every float linear weight is quantized as it is read (QLoRA), one tensor at
 * a time, so the float model never exists in memory. Every expected name must be present with the
 * expected shape: a missing tensor is SW_ENOTFOUND and a wrong shape or non-float dtype SW_EFORMAT,
 * naming the tensor and the file. lm_head.weight is not read for a tied model; other extra tensors
 * are ignored (logged at debug). LoRA parameters are untouched. */
int sw_model_load(struct sw_model *m, const struct sw_st_set *s);
/* Random init for pre-training: matrices and embeddings normal(0, std) (std 0.02 when std <= 0,
 * HF's initializer_range), the pad_token_id embedding row zero, norm weights 1, biases 0. Uses
 * sw_rng (Philox, stream SW_RNG_STREAM_INIT of seed) in parameter order: deterministic. */
int sw_model_init_random(struct sw_model *m, uint64_t seed, float std);

/* Add LoRA A [r, in] and B [out, r] to the targeted linear layers (never the LM head) and freeze
 * every base parameter (their gradients are freed). Once per model: a second call is
 * SW_ESTATE. Returns SW_EINVAL for a bad config or an unknown module name. */
int sw_model_lora_add(struct sw_model *m, const struct sw_lora_config *lc);
/* Fill the LoRA parameters from a PEFT adapter (adapter_model.safetensors; names as PEFT saves
 * them, "base_model.model.<module>.lora_A.weight"); every one must be present with its shape. */
int sw_model_lora_load(struct sw_model *m, const struct sw_st_set *s);

/* Training mode enables LoRA dropout (off by default). seed makes dropout masks a pure
 * function of (seed, forward count, layer site); the count starts at 0 and rises per forward. */
void sw_model_set_training(struct sw_model *m, int training);
void sw_model_set_seed(struct sw_model *m, uint64_t seed, uint64_t forward_count);

/* Number of non-ignored targets the batch implies (after the shift). Negative sw_err on a
 * malformed batch (same checks as forward). */
int64_t sw_batch_count_targets(const struct sw_batch *b);

/* Run the model over b: validates it (token ids in the vocabulary, layout, positions), resets
 * the scratch arena, keeps every activation backward needs, and when b has labels computes the
 * loss with the fused, chunked LM-head cross-entropy (the [B·T, vocab] logits never exist).
 * loss may be NULL; without labels it is {0, 0}. */
int sw_model_forward(struct sw_model *m, const struct sw_batch *b, struct sw_loss *loss);
/* Gradients of grad_scale · (loss sum of the last forward) added (+=) into every trainable
 * parameter's grad (allocated zeroed on first use). Frozen parameters get nothing; LoRA-only
 * training computes no base weight gradient. Needs a forward with labels since the last
 * backward: otherwise SW_ESTATE. */
int sw_model_backward(struct sw_model *m, float grad_scale);
/* Zero every trainable gradient (allocating missing ones). */
int sw_model_zero_grad(struct sw_model *m);

/* Full logits of the last forward, [B·T, vocab] float32, copied into the caller's host buffer
 * logits (eval and parity; uses the scratch arena for one [B·T, vocab] product). */
int sw_model_logits(struct sw_model *m, float *logits);
/* Logits of rows [row0, row0 + nrows) of the last forward only, [nrows, vocab] float32 into the
 * caller's host buffer (generation needs the last row: no [B·T, vocab] product). SW_EINVAL for
 * rows outside [0, B·T). */
int sw_model_logits_rows(struct sw_model *m, int64_t row0, int64_t nrows, float *logits);
/* Bytes of scratch the last forward/backward needed at most (activation memory report). */
size_t sw_model_scratch_peak(const struct sw_model *m);

/* Install (fn non-NULL) or remove (fn NULL) the linear-input observer. */
void sw_model_set_linear_observer(struct sw_model *m, sw_linear_observer_fn fn, void *ctx);

/* Gradient checkpointing (ms-swift's --gradient_checkpointing): with on = 1, a forward keeps
 * only each decoder layer's input [N, C] and one reusable set of layer activations, and
 * backward reruns each layer's forward from its saved input just before that layer's backward
 * (the last layer's activations are still there and are not recomputed). Costs about one extra
 * forward of the decoder layers; activation memory drops from ~L layer sets to L inputs + one
 * set. Gradients are bit-identical to a run without it (every op is deterministic and the
 * LoRA dropout masks are a function of the forward's seed). Takes effect at the next forward. */
void sw_model_set_gradient_checkpointing(struct sw_model *m, int on);

/* Scratch-arena bytes one training forward (with labels) + backward of a batch of N tokens in
 * nseq sequences (padded: right-padded rows with kv_len) takes on m as configured now (LoRA,
 * dropout in training mode, gradient checkpointing): every allocation the passes make, each
 * rounded up to 256 bytes — the CUDA arena's granule, so it is an upper bound on the CPU (whose
 * arena counts requested bytes). Op workspaces outside the arena (CUDA cross-entropy chunks,
 * GEMM operand copies) are not included. The activation line of a memory plan. */
size_t sw_model_scratch_estimate(const struct sw_model *m, int64_t N, int64_t nseq, int padded);

/* ---- per-token losses and weights (preference training, GRPO) ------------------------------
 * The fused cross-entropy never forms the [N, vocab] logits, but each token's loss (= −log-prob
 * of its target) is kept: sw_model_token_losses copies the last forward's per-token losses,
 * [B·T] float32, into the caller's host buffer (token t's entry is the loss of its shifted
 * target, 0 where it has none), so a sequence's log-prob is minus the sum over its tokens.
 * sw_model_backward_weighted adds the gradients of grad_scale · Σ_t weights[t] · loss_t
 * (weights: host [B·T], e.g. −dL/dlogp of each token's sequence); sw_model_backward is the
 * case of every weight 1. Same state rules as sw_model_backward. */
int sw_model_token_losses(struct sw_model *m, float *loss);
int sw_model_backward_weighted(struct sw_model *m, const float *weights, float grad_scale);
/* LoRA's reference model: with on = 0 every forward runs the frozen base alone (the adapters
 * are skipped, not removed: no second copy of the weights), as PEFT's disable_adapter(); a
 * backward after such a forward is SW_ESTATE. On by default. */
void sw_model_set_lora_enabled(struct sw_model *m, int on);

#endif
