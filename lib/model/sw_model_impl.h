/* sw_model_impl — the inside of struct sw_model, shared by lib/sw_model*.c only (not a public
 * header): the per-layer parameter handles, the per-step activation record that forward fills
 * and backward consumes, and the helpers that split the work between the files:
 *   sw_model.c           lifecycle, parameter registry, gradients
 *   sw_model_weights.c   loading from safetensors, random init
 *   sw_model_lora.c      LoRA parameters (add, load)
 *   sw_model_batch.c     batch validation → segments, positions, shifted targets
 *   sw_model_linear.c    a linear layer with its optional LoRA branch, forward and backward
 *   sw_model_forward.c   embedding → layers → final norm → fused cross-entropy; logits
 *   sw_model_backward.c  the reverse, layer by layer
 *   sw_model_memory.c    the scratch bytes a batch shape needs (memory plans)
 * Layer forward/backward take a layer's saved inputs explicitly, so gradient checkpointing reruns
 * sw_model_layer_forward from the saved layer input alone (sw_model_forward.c keeps only the
 * inputs and one reusable activation set; sw_model_backward.c recomputes before each layer). */
#ifndef SW_MODEL_IMPL_H
#define SW_MODEL_IMPL_H

#include "sw_model.h"

/* The linear layers of a decoder layer, in HF's order; index = LoRA site inside the layer. */
enum sw_lin {
    SW_LIN_Q = 0,
    SW_LIN_K,
    SW_LIN_V,
    SW_LIN_O,
    SW_LIN_GATE,
    SW_LIN_UP,
    SW_LIN_DOWN,
    SW_LIN_COUNT
};
extern const char *const sw_lin_names[SW_LIN_COUNT];   /* "q_proj", ... */
extern const char *const sw_lin_parents[SW_LIN_COUNT]; /* "self_attn" or "mlp" */

struct sw_linear {
    struct sw_param *w, *b;           /* w [out, in]; b [out] or NULL */
    struct sw_param *lora_a, *lora_b; /* [r, in], [out, r]; NULL without LoRA */
    int64_t in, out, r;
    float lora_scale, lora_dropout;
    uint64_t site; /* dropout site id: layer · SW_LIN_COUNT + index */
};

struct sw_layer {
    struct sw_param *ln1, *ln2;       /* input_layernorm, post_attention_layernorm [hidden] */
    struct sw_param *q_norm, *k_norm; /* qwen3 [head_dim], else NULL */
    struct sw_linear lin[SW_LIN_COUNT];
    int64_t window; /* sliding-window attention (Mistral, Gemma 2's local layers); 0: full */
    /* Gemma 2: post_attention_layernorm (on the attention output) and post_feedforward_layernorm
     * (on the MLP output); ln2 is its pre_feedforward_layernorm. NULL elsewhere. */
    struct sw_param *post_attn, *post_ff;
};

/* What one linear's LoRA branch keeps for backward. */
struct sw_lora_act {
    float *xd;     /* dropout(x) [N, in] when dropout is on, else NULL (x itself is used) */
    float *t;      /* xd · Aᵀ [N, r] */
    float *xd_buf; /* the scratch buffer xd points into (kept when a set is reused) */
};

/* Activations one layer keeps from forward to backward (scratch memory). A NULL buffer is
 * allocated by sw_model_layer_forward; a set whose buffers are already there is overwritten in
 * place (gradient checkpointing reuses one set for every layer). */
struct sw_layer_act {
    float *x;               /* layer input, the residual stream [N, C] */
    float *ln1, *ln1_rstd;  /* [N, C], [N] */
    float *q, *k, *v;       /* attention inputs after q/k-norm and RoPE [N, H·D] */
    float *q_pre, *k_pre;   /* qwen3: projections before the q/k norm, else NULL */
    float *q_rstd, *k_rstd; /* qwen3: [N·Hq], [N·Hk] */
    float *att, *lse;       /* attention output [N, Hq·D], logsumexp [N, Hq] */
    float *h1;              /* x + o_proj(att) [N, C] */
    float *ln2, *ln2_rstd;
    float *gate, *up, *act; /* [N, F] */
    float *o_out, *o_rstd;  /* gemma2: o_proj output before its post-norm [N, C], rstd [N] */
    float *d_out, *d_rstd;  /* gemma2: down_proj output before its post-norm [N, C], rstd [N] */
    struct sw_lora_act lora[SW_LIN_COUNT];
};

/* A validated batch in backend memory plus its host-side bookkeeping. */
struct sw_step {
    int64_t N; /* tokens = B·T */
    int nseq;
    int64_t max_len;                            /* longest sequence (attention grid sizing) */
    int32_t *ids, *pos, *targets, *cu, *kv_len; /* device; kv_len NULL unless padded */
    int64_t count;                              /* targets != ignore */
    uint64_t dropout_seed;                      /* per-forward seed for LoRA dropout */
    struct sw_layer_act *acts;                  /* = model's acts (host) */
    float *f_tmp;    /* forward temporary [N, C], shared by every layer */
    float *final_in; /* output of the last layer [N, C] */
    float *final_out, *final_rstd;
    float *loss_rows, *lse_rows; /* [N] */
    /* Backward workspace, allocated once per backward and reused by every layer. */
    float *g_res[2];                              /* residual-stream gradients, ping-pong [N, C] */
    float *g_ln, *g_h1;                           /* [N, C] */
    float *g_att, *g_q, *g_qn, *g_k, *g_kn, *g_v; /* [N, H·D] (g_qn/g_kn: qwen3 norm inputs) */
    float *g_act, *g_gate, *g_up;                 /* [N, F] */
    float *g_lora_t, *g_lora_x;                   /* LoRA: [N, r], [N, max(C, F, Hq·D)] */
    /* Gradient checkpointing: acts[l].x holds each layer's input only; ckpt_work is the one
     * activation set every layer's forward and recomputation share, holding layer ckpt_layer. */
    int ckpt;       /* this forward ran with checkpointing */
    int ckpt_layer; /* the layer whose activations ckpt_work holds (-1: none) */
    struct sw_layer_act ckpt_work;
    int lora_off;     /* it ran with the adapters switched off (sw_model_set_lora_enabled) */
    int have_forward; /* a forward ran since the last reset */
    int have_loss;    /* it had labels and backward has not consumed it */
};

struct sw_model {
    struct sw_model_config cfg;
    struct sw_backend *be;
    int64_t C, F, Hq, Hk, D, V,
        L;                    /* hidden, intermediate, heads, kv heads, head_dim, vocab, layers */
    struct sw_param **params; /* owned, HF order then LoRA */
    int nparams, cap;
    struct sw_param *embed, *norm, *lm_head; /* lm_head == embed when tied */
    struct sw_layer *layers;
    struct sw_layer_act *acts;  /* host array [L] of the last forward's activations */
    float *rope_cos, *rope_sin; /* device [rope_P, D/2] */
    int64_t rope_P;
    int has_lora, training;
    int grad_ckpt; /* sw_model_set_gradient_checkpointing */
    int lora_off;  /* sw_model_set_lora_enabled(m, 0): forwards skip every LoRA branch */
    uint64_t seed, forward_count;
    int64_t ce_chunk_rows;
    struct sw_step step;
    sw_linear_observer_fn observer; /* sw_model_set_linear_observer, or NULL */
    void *observer_ctx;
    /* Gemma 2: RMSNorm weights act as (1 + w), embeddings are scaled by sqrt(hidden) (rounded to
     * float as transformers does), the MLP is GeGLU and the logits are soft-capped. */
    int gemma;
    float embed_scale; /* 1 when not scaled */
    float *ones;       /* device [max(C, D)] of 1.0 (gemma), for the (1 + w) weights */
};

/* Registry (sw_model.c): a new parameter of shape [d0] or [d0, d1] (ndim 1 or 2), value
 * allocated zeroed in backend memory. */
int sw_model_add_param(struct sw_model *m, const char *name, int ndim, int64_t d0, int64_t d1,
                       int decay, int is_lora, struct sw_param **out);
/* Quantized linear weights (sw_model_weights.c): copy a host struct sw_qweight into backend
 * memory (*out a new descriptor), and free one (NULL accepted). */
int sw_model_qweight_upload(struct sw_model *m, const struct sw_qweight *h,
                            struct sw_qweight **out);
void sw_model_qweight_free(struct sw_model *m, struct sw_qweight *q);
/* Allocate (zeroed) the gradient of every trainable parameter that has none. */
int sw_model_ensure_grads(struct sw_model *m);
/* Free the gradient of a parameter made frozen. */
void sw_model_drop_grad(struct sw_model *m, struct sw_param *p);
/* Make the RoPE tables cover positions [0, P). */
int sw_model_rope_reserve(struct sw_model *m, int64_t P);
/* "[a, b]" for messages. */
char *sw_model_shape_str(const struct sw_param *p, char *buf, size_t cap);

/* Batch (sw_model_batch.c): validate b and fill host arrays cu[nseq+1], kv_len[nseq] (or all
 * -1 when not padded), pos[N], targets[N] (malloc'ed, caller frees); returns count of targets. */
struct sw_host_batch {
    int64_t N;
    int nseq;
    int padded;
    int32_t *cu, *kv_len, *pos, *targets;
    int64_t count, max_pos, max_len;
};
int sw_host_batch_build(const struct sw_batch *b, int64_t vocab, struct sw_host_batch *hb);
void sw_host_batch_release(struct sw_host_batch *hb);

/* The weight an RMSNorm multiplies by (sw_model_forward.c): p's value, or for Gemma 2 a scratch
 * copy of 1 + p (its gradient is p's). NULL with sw_err set when out of scratch. */
const float *sw_model_norm_w(struct sw_model *m, const struct sw_param *p);
/* The MLP's gate: silu (swiglu) or, for Gemma 2, gelu_tanh (geglu). */
int sw_model_mlp_act(struct sw_model *m, float *out, const float *gate, const float *up, int64_t n);

/* Scratch helpers (sw_model_forward.c): n floats / ints from the backend arena, or NULL with
 * sw_err set. */
float *sw_model_scratch_f(struct sw_model *m, int64_t n);
int32_t *sw_model_scratch_i(struct sw_model *m, int64_t n);

/* The base weight's part of a decoder linear (sw_model_linear.c), the one place the training
 * forward, the inference engine and calibration observers reach W: y = x·Wᵀ (+ b) for x [N, in]
 * of layer l (the observer, when set, sees x first); dx = beta·dx + dy·W. */
int sw_linear_base_forward(struct sw_model *m, const struct sw_linear *lin, float *y,
                           const float *x, int64_t N);
int sw_linear_base_backward_dx(struct sw_model *m, const struct sw_linear *lin, float *dx,
                               float dx_beta, const float *dy, int64_t N);

/* Linear layer with its LoRA branch (sw_model_linear.c). x [N, in] → y [N, out] (overwritten).
 * la receives what backward needs (NULL lin->lora_a: untouched). */
int sw_linear_forward(struct sw_model *m, const struct sw_linear *lin, float *y, const float *x,
                      int64_t N, struct sw_lora_act *la);
/* dy [N, out] → dx [N, in] (dx = beta·dx + ∂; dx NULL skips it) and += grads of the trainable
 * parameters of lin (w, b, A, B). */
int sw_linear_backward(struct sw_model *m, const struct sw_linear *lin, float *dx, float dx_beta,
                       const float *dy, const float *x, int64_t N, const struct sw_lora_act *la);

/* One decoder layer (sw_model_forward.c / sw_model_backward.c). forward reads a->x and fills
 * the rest of a (allocating the buffers that are NULL, overwriting the others) plus out [N, C]
 * (out may be m->step.f_tmp); backward turns dout [N, C] (the layer output's gradient) into
 * dx [N, C] (the layer input's) and adds the layer's parameter gradients. */
int sw_model_layer_forward(struct sw_model *m, int l, struct sw_layer_act *a, float *out);
/* The attention of layer l for the current step (sw_model_forward.c): the plain ops when the
 * layer has no soft-cap and no window that a segment of max_len tokens can exceed, else the
 * backend's attention_ext ops (SW_EUNSUPPORTED naming the family where it has none). *window
 * and *softcap receive what to pass (0: off); scale is the family's score scale. */
int sw_model_attention_mode(const struct sw_model *m, int l, int64_t max_len, int64_t *window,
                            float *softcap, float *scale);
int sw_model_layer_backward(struct sw_model *m, int l, const struct sw_layer_act *a,
                            const float *dout, float *dx);

#endif
