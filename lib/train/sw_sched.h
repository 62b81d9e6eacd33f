/* sw_sched — learning-rate schedules, numerically the same as HF transformers' get_scheduler()
 * wrapped around torch's LambdaLR: lr(step) = base_lr · factor(step), where step counts
 * optimizer steps already taken (the first update uses factor(0), so a warmup starts at lr 0,
 * as in HF Trainer).
 *
 *   constant              factor = 1 (ignores warmup, like get_constant_schedule)
 *   constant_with_warmup  step < W ? step / max(1, W) : 1
 *   linear                step < W ? step / max(1, W) : max(0, (T − step) / max(1, T − W))
 *   cosine                step < W ? step / max(1, W) :
 *                         max(0, f·(1 − min_lr_rate) + min_lr_rate),
 *                         f = 0.5·(1 + cos(π · 2 · 0.5 · (step − W) / max(1, T − W)))
 *
 * W comes from sw_sched_warmup_steps: warmup_steps ≥ 1 is a step count; 0 < warmup_steps < 1
 * is a ratio (transformers 5); otherwise ceil(T · warmup_ratio) (transformers 4, ms-swift). */
#ifndef SW_SCHED_H
#define SW_SCHED_H

#include <stdint.h>

enum sw_sched_type {
    SW_SCHED_CONSTANT = 0,
    SW_SCHED_CONSTANT_WITH_WARMUP,
    SW_SCHED_LINEAR,
    SW_SCHED_COSINE,
};

struct sw_sched {
    enum sw_sched_type type;
    double base_lr;
    int64_t total_steps;  /* T */
    int64_t warmup_steps; /* W */
    double min_lr_rate;   /* cosine floor as a fraction of base_lr (0 = HF's plain cosine) */
};

/* "constant", "constant_with_warmup", "linear", "cosine" (HF's names). Returns 0, or SW_EINVAL
 * with a message listing the accepted names. */
int sw_sched_parse_type(const char *name, enum sw_sched_type *out);
const char *sw_sched_type_name(enum sw_sched_type type);

/* Warmup step count for total_steps from the two options (see the file comment). Negative
 * options are treated as 0. */
int64_t sw_sched_warmup_steps(int64_t total_steps, double warmup_steps, double warmup_ratio);

/* Fill s. Returns 0, or SW_EINVAL for base_lr < 0, total_steps < 0, warmup_steps < 0 or
 * min_lr_rate outside [0, 1] (the message names the value). */
int sw_sched_init(struct sw_sched *s, enum sw_sched_type type, double base_lr, int64_t total_steps,
                  int64_t warmup_steps, double min_lr_rate);

/* The multiplier of base_lr for the update after `step` completed steps (step ≥ 0). */
double sw_sched_factor(const struct sw_sched *s, int64_t step);
/* base_lr · factor(step), computed in double like LambdaLR. */
double sw_sched_lr(const struct sw_sched *s, int64_t step);

#endif
