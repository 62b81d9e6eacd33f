/* sw_grpo_loss — the GRPO loss of sw-train --rlhf_type grpo as TRL's GRPOTrainer._compute_loss
 * defines it (loss_type grpo | bnpo | dr_grpo | dapo, token-level importance sampling), with
 * ms-swift's argument names and its advantages (swift/rl_core/advantage.py). Pure host math on
 * per-token log-probs: the model computes those (the fused cross-entropy's per-token losses,
 * sw_model_token_losses), this file turns them into the loss, TRL's metrics and dL/dlogp of every
 * completion token, which the trainer feeds (negated) to sw_model_backward_weighted.
 *
 * Per completion token t of completion i, with logp l, old log-prob o (the rollout pass's; o = l
 * without gradient when each batch is used for one update) and reference log-prob q:
 *   r = exp(l − o);  L = −min(r·A_i, clip(r, 1 − ε_low, 1 + ε_high)·A_i) + β·k3
 *   k3 = exp(q − l) − (q − l) − 1  (Schulman's estimator, TRL's per_token_kl)
 *   dL/dl = −A_i·r unless the token is clipped (r < 1 − ε_low with A_i < 0, or r > 1 + ε_high
 *           with A_i > 0: the min takes the constant clipped branch, gradient 0)
 *           + β·(1 − exp(q − l)).
 * (At r = 1 both branches of the min are equal; torch splits the gradient between them and clamp
 * passes it inside its range, so the sum is −A·r as above.)
 * A micro-batch's loss (TRL, one process):
 *   grpo     mean over completions of (Σ_t L / T_i), divided by gradient_accumulation_steps
 *   bnpo     Σ L / Σ T_i, divided by gradient_accumulation_steps
 *   dr_grpo  Σ L / (completions · max_completion_length), divided by gradient_accumulation_steps
 *   dapo     Σ L / (completion tokens of the whole generation batch: num_items_in_batch)
 * Advantages: rewards (Σ_f w_f · reward_f) minus their group's mean, divided by (std + 1e-4) where
 * std is the group's (scale_rewards group), the batch's (batch), or not at all (none); torch's
 * unbiased std. */
#ifndef SW_GRPO_LOSS_H
#define SW_GRPO_LOSS_H

#include <stdint.h>

enum sw_grpo_loss_type { SW_GRPO_GRPO = 0, SW_GRPO_BNPO, SW_GRPO_DR_GRPO, SW_GRPO_DAPO };
enum sw_grpo_scale { SW_GRPO_SCALE_GROUP = 0, SW_GRPO_SCALE_BATCH, SW_GRPO_SCALE_NONE };

struct sw_grpo_cfg {
    enum sw_grpo_loss_type loss;
    double beta;                   /* KL coefficient (0: no reference term) */
    double epsilon_low;            /* ms-swift's epsilon */
    double epsilon_high;           /* ms-swift's epsilon_high (= epsilon when unset) */
    int64_t max_completion_length; /* dr_grpo's normaliser */
    int64_t grad_accum;            /* gradient_accumulation_steps (grpo, bnpo, dr_grpo) */
};

/* "grpo" | "bnpo" | "dr_grpo" | "dapo" (NULL: grpo); "group" | "batch" | "none" (NULL: group).
 * SW_EUSAGE naming the value otherwise. */
int sw_grpo_loss_type_parse(const char *s, enum sw_grpo_loss_type *out);
int sw_grpo_scale_parse(const char *s, enum sw_grpo_scale *out);

/* Advantages adv[n] of n rewards in groups of g consecutive completions (n % g == 0). Also, when
 * not NULL, group_std[n / g]: every group's unbiased std (0 when g == 1). */
void sw_grpo_advantages(const double *rewards, int n, int g, enum sw_grpo_scale scale, double *adv,
                        double *group_std);

/* TRL's metrics of one micro-batch (means over its completion tokens; low_min / high_max over its
 * completions' per-completion means). kl is NaN when beta is 0. */
struct sw_grpo_metrics {
    double loss;
    double kl;
    double clip_low_mean, clip_high_mean, clip_region_mean;
    double clip_low_min, clip_high_max;
    int64_t tokens;
};

/* One micro-batch of S completions: the tokens of completion s are [off[s], off[s + 1]) of
 * logp, old, ref and dlogp. old NULL: on-policy (o = l); ref may be NULL when beta is 0.
 * num_items: dapo's normaliser (completion tokens of the generation batch). Fills dlogp (the
 * gradient of the returned loss w.r.t. every logp) and mt. */
int sw_grpo_loss(const struct sw_grpo_cfg *c, int S, const int64_t *off, const double *logp,
                 const double *old, const double *ref, const double *adv, double num_items,
                 double *dlogp, struct sw_grpo_metrics *mt);

#endif
