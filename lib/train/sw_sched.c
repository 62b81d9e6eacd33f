/* sw_sched — HF's LR lambdas, term for term (the same double operations in the same order), so
 * the learning rates agree with transformers to the last bit of a double. */
#include "sw_sched.h"

#include "sw_err.h"

#include <math.h>
#include <string.h>

static const char *const names[] = {"constant", "constant_with_warmup", "linear", "cosine"};

int sw_sched_parse_type(const char *name, enum sw_sched_type *out) {
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (name && strcmp(name, names[i]) == 0) return *out = (enum sw_sched_type)i, 0;
    return sw_err_set(SW_EINVAL,
                      "lr_scheduler_type: unknown schedule '%s' (expected constant, "
                      "constant_with_warmup, linear or cosine)",
                      name ? name : "(null)");
}

const char *sw_sched_type_name(enum sw_sched_type type) {
    return (unsigned)type < sizeof names / sizeof names[0] ? names[type] : "?";
}

int64_t sw_sched_warmup_steps(int64_t total_steps, double warmup_steps, double warmup_ratio) {
    if (warmup_steps >= 1) return (int64_t)warmup_steps;
    if (warmup_steps > 0) return (int64_t)ceil((double)total_steps * warmup_steps);
    if (warmup_ratio > 0) return (int64_t)ceil((double)total_steps * warmup_ratio);
    return 0;
}

int sw_sched_init(struct sw_sched *s, enum sw_sched_type type, double base_lr, int64_t total_steps,
                  int64_t warmup_steps, double min_lr_rate) {
    if ((unsigned)type > SW_SCHED_COSINE)
        return sw_err_set(SW_EINVAL, "lr_scheduler_type: invalid value %d", (int)type);
    if (!(base_lr >= 0) || !isfinite(base_lr))
        return sw_err_set(SW_EINVAL, "learning_rate: %g is not a finite value >= 0", base_lr);
    if (total_steps < 0)
        return sw_err_set(SW_EINVAL, "schedule: total steps %lld < 0", (long long)total_steps);
    if (warmup_steps < 0)
        return sw_err_set(SW_EINVAL, "warmup_steps: %lld < 0", (long long)warmup_steps);
    if (!(min_lr_rate >= 0 && min_lr_rate <= 1))
        return sw_err_set(SW_EINVAL, "min_lr_rate: %g is outside [0, 1]", min_lr_rate);
    s->type = type;
    s->base_lr = base_lr;
    s->total_steps = total_steps;
    s->warmup_steps = warmup_steps;
    s->min_lr_rate = min_lr_rate;
    return 0;
}

static double max1(int64_t x) {
    return (double)(x > 1 ? x : 1);
}

double sw_sched_factor(const struct sw_sched *s, int64_t step) {
    int64_t W = s->warmup_steps, T = s->total_steps;
    if (s->type == SW_SCHED_CONSTANT) return 1.0;
    if (step < W) return (double)step / max1(W);
    switch (s->type) {
    case SW_SCHED_CONSTANT_WITH_WARMUP: return 1.0;
    case SW_SCHED_LINEAR: {
        double f = (double)(T - step) / max1(T - W);
        return f > 0.0 ? f : 0.0;
    }
    case SW_SCHED_COSINE: {
        double progress = (double)(step - W) / max1(T - W);
        double f = 0.5 * (1.0 + cos(M_PI * 0.5 * 2.0 * progress));
        f = f * (1 - s->min_lr_rate) + s->min_lr_rate;
        return f > 0.0 ? f : 0.0;
    }
    default: return 1.0;
    }
}

double sw_sched_lr(const struct sw_sched *s, int64_t step) {
    return s->base_lr * sw_sched_factor(s, step);
}
