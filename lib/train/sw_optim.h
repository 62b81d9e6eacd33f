/* sw_optim — AdamW as torch.optim.AdamW, global gradient norm and clipping as
 * torch.nn.utils.clip_grad_norm_, and the weight-decay rule of HF Trainer, over a plain list of
 * float32 host parameters.
 *
 * A struct sw_optim_param names one trainable tensor: its data, its gradient (same element count)
 * and whether weight decay applies. The optimizer keeps exp_avg/exp_avg_sq per parameter in the
 * order given; the caller passes the same list (same order, same sizes) to every step.
 *
 * The update of one element, with t the optimizer's step count after increment and every scalar
 * computed in double then applied in float, in torch's order:
 *     p ← p · (1 − lr·wd)                         (only when the parameter decays and wd ≠ 0)
 *     m ← m + (1 − β1)·(g − m)                    (exp_avg.lerp_(grad, 1 − β1))
 *     v ← v·β2 + (1 − β2)·g·g                     (exp_avg_sq.mul_(β2).addcmul_(g, g, 1 − β2))
 *     p ← p + (−lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
 *
 * Determinism: work is split into fixed chunks of elements (independent of the thread count);
 * the gradient norm sums each chunk in double and adds the chunk sums in chunk order, so the
 * result is bit-identical for any number of OpenMP threads.
 *
 * sw-train itself steps through its backend (the adamw, sumsq and scale members of struct
 * sw_backend, kernels/sw_kernels.h), whose CPU implementation is this file's arithmetic bit for
 * bit (test/unit/test_kernels.c checks it); an sw_adamw is then the moments' host form for
 * checkpoints (sw_ckpt_save / sw_ckpt_load_optimizer), as a copy or, on the CPU backend, a view
 * (sw_adamw_new_view). */
#ifndef SW_OPTIM_H
#define SW_OPTIM_H

#include <stdint.h>

struct sw_optim_param {
    const char *name; /* HF/PEFT parameter name (borrowed) */
    float *data;      /* [numel] */
    float *grad;      /* [numel] */
    int64_t numel;
    int decay; /* 1: weight decay applies (see sw_param_wants_decay) */
};

/* HF Trainer.get_decay_parameter_names' rule for one name: no decay when the lower-cased name
 * contains "bias", "layernorm" or "rmsnorm", or matches (^|\.)norm($|\.) or _norm($|\.)
 * (RMSNorm weights such as input_layernorm, model.norm, q_norm/k_norm, and every bias).
 * Returns 1 when the parameter decays. */
int sw_param_wants_decay(const char *name);

struct sw_adamw_config {
    double beta1, beta2, eps, weight_decay;
};

struct sw_adamw;

/* An optimizer for params[n] with zeroed moments and step count 0. cfg is copied; the names are
 * copied. Returns 0, SW_EINVAL (β outside [0, 1), eps < 0, wd < 0, numel < 0, a NULL name or
 * duplicate name, naming it) or SW_ENOMEM. */
int sw_adamw_new(const struct sw_adamw_config *cfg, const struct sw_optim_param *params, int n,
                 struct sw_adamw **out);
/* An optimizer over moment buffers the caller owns: exp_avg[i] and exp_avg_sq[i] hold
 * params[i].numel floats each, are used in place (a checkpoint loads into them, a step updates
 * them) and are not freed by sw_adamw_free. Same checks as sw_adamw_new, plus SW_EINVAL for a
 * NULL buffer of a non-empty parameter. */
int sw_adamw_new_view(const struct sw_adamw_config *cfg, const struct sw_optim_param *params, int n,
                      float *const *exp_avg, float *const *exp_avg_sq, struct sw_adamw **out);
/* Accepts NULL. */
void sw_adamw_free(struct sw_adamw *o);

/* One update of params[n] (the list given to new, same order) with learning rate lr. The step
 * count is incremented first, as torch does. Returns 0, or SW_EINVAL if the list does not match
 * (count, name or size; the message names the parameter). */
int sw_adamw_step(struct sw_adamw *o, const struct sw_optim_param *params, int n, double lr);

/* Completed steps (torch's state["step"]). */
int64_t sw_adamw_steps(const struct sw_adamw *o);
/* Restore the step count (checkpoint resume). */
void sw_adamw_set_steps(struct sw_adamw *o, int64_t steps);
int sw_adamw_count(const struct sw_adamw *o);
const struct sw_adamw_config *sw_adamw_get_config(const struct sw_adamw *o);
/* The i-th parameter's name, element count and moment buffers (owned by the optimizer; writable
 * so a checkpoint can be loaded into them). NULL name for i out of range. */
const char *sw_adamw_slot(struct sw_adamw *o, int i, int64_t *numel, float **exp_avg,
                          float **exp_avg_sq);

/* L2 norm of every gradient together, in double, deterministic (see the file comment). */
double sw_grad_norm(const struct sw_optim_param *params, int n);
/* torch's clip_grad_norm_ scaling: coef = max_norm / (norm + 1e-6) in float32, clamped to 1;
 * gradients are multiplied by coef when coef < 1. max_norm ≤ 0 disables clipping. norm is the
 * value sw_grad_norm returned. Returns the factor applied (1 when nothing was scaled). */
double sw_grad_clip(const struct sw_optim_param *params, int n, double max_norm, double norm);
/* Zero every gradient. */
void sw_grad_zero(const struct sw_optim_param *params, int n);
/* Index of the first parameter whose gradient holds a NaN or ±Inf, or -1 when all are finite. */
int sw_grad_find_nonfinite(const struct sw_optim_param *params, int n);

#endif
