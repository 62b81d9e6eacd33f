/* sw_grpo_loss — GRPO's advantages, per-token loss, its gradient and TRL's metrics (see
 * sw_grpo_loss.h for the formulas). Sums run in double; the per-token values come from float32
 * log-probs, so this adds no error of its own beyond the model's. */
#include "sw_grpo_loss.h"

#include "sw_err.h"

#include <math.h>
#include <string.h>

int sw_grpo_loss_type_parse(const char *s, enum sw_grpo_loss_type *out) {
    static const char *const names[] = {"grpo", "bnpo", "dr_grpo", "dapo"};
    if (!s) {
        *out = SW_GRPO_GRPO;
        return 0;
    }
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (enum sw_grpo_loss_type)i;
            return 0;
        }
    return sw_err_set(SW_EUSAGE, "loss_type '%s': GRPO takes grpo, bnpo, dr_grpo or dapo", s);
}

int sw_grpo_scale_parse(const char *s, enum sw_grpo_scale *out) {
    static const char *const names[] = {"group", "batch", "none"};
    if (!s) {
        *out = SW_GRPO_SCALE_GROUP;
        return 0;
    }
    for (int i = 0; i < 3; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (enum sw_grpo_scale)i;
            return 0;
        }
    return sw_err_set(SW_EUSAGE, "scale_rewards '%s': takes group, batch or none", s);
}

/* torch.std (Bessel-corrected) of x[0..n); 0 for n < 2 (ms-swift's guard). */
static double ustd(const double *x, int n) {
    if (n < 2) return 0;
    double m = 0, s = 0;
    for (int i = 0; i < n; i++)
        m += x[i];
    m /= n;
    for (int i = 0; i < n; i++)
        s += (x[i] - m) * (x[i] - m);
    return sqrt(s / (n - 1));
}

void sw_grpo_advantages(const double *rewards, int n, int g, enum sw_grpo_scale scale, double *adv,
                        double *group_std) {
    double bstd = scale == SW_GRPO_SCALE_BATCH ? ustd(rewards, n) : 0;
    for (int a = 0; a + g <= n; a += g) {
        double m = 0;
        for (int i = a; i < a + g; i++)
            m += rewards[i];
        m /= g;
        double gs = ustd(rewards + a, g);
        if (group_std) group_std[a / g] = gs;
        double d = scale == SW_GRPO_SCALE_GROUP   ? gs + 1e-4
                   : scale == SW_GRPO_SCALE_BATCH ? bstd + 1e-4
                                                  : 1.0;
        for (int i = a; i < a + g; i++)
            adv[i] = (rewards[i] - m) / d;
    }
}

int sw_grpo_loss(const struct sw_grpo_cfg *c, int S, const int64_t *off, const double *logp,
                 const double *old, const double *ref, const double *adv, double num_items,
                 double *dlogp, struct sw_grpo_metrics *mt) {
    if (c->beta != 0 && !ref)
        return sw_err_set(SW_EINVAL, "grpo loss: beta %g needs reference log-probs", c->beta);
    int64_t T = off[S] - off[0];
    double ga = c->grad_accum > 0 ? (double)c->grad_accum : 1.0;
    double lsum = 0, klsum = 0, nlow = 0, nhigh = 0;
    double low_min = NAN, high_max = NAN;
    for (int s = 0; s < S; s++) {
        int64_t a = off[s], e = off[s + 1], n = e - a;
        /* the normaliser of this completion's tokens (TRL's aggregation, /GA where TRL does) */
        double k;
        switch (c->loss) {
        case SW_GRPO_GRPO: k = n > 0 ? 1.0 / ((double)n * S * ga) : 0; break;
        case SW_GRPO_BNPO: k = 1.0 / (fmax((double)T, 1.0) * ga); break;
        case SW_GRPO_DR_GRPO: k = 1.0 / ((double)S * (double)c->max_completion_length * ga); break;
        default: k = 1.0 / fmax(num_items, 1.0); break;
        }
        double A = adv[s], slow = 0, shigh = 0;
        for (int64_t t = a; t < e; t++) {
            double l = logp[t], o = old ? old[t] : l, r = exp(l - o);
            double lo = 1 - c->epsilon_low, hi = 1 + c->epsilon_high;
            double rc = r < lo ? lo : r > hi ? hi : r;
            int clow = r < lo && A<0, chigh = r> hi && A > 0;
            double L = -fmin(r * A, rc * A), g = clow || chigh ? 0.0 : -A * r;
            if (c->beta != 0) {
                double d = ref[t] - l, kl = exp(d) - d - 1;
                L += c->beta * kl;
                g += c->beta * (1 - exp(d));
                klsum += kl;
            }
            lsum += k * L;
            dlogp[t] = k * g;
            slow += clow, shigh += chigh;
        }
        nlow += slow, nhigh += shigh;
        if (n > 0) {
            double ml = slow / (double)n, mh = shigh / (double)n;
            low_min = isnan(low_min) ? ml : fmin(low_min, ml);
            high_max = isnan(high_max) ? mh : fmax(high_max, mh);
        }
    }
    double dn = fmax((double)T, 1.0);
    *mt = (struct sw_grpo_metrics){.loss = lsum,
                                   .kl = c->beta != 0 ? klsum / dn : NAN,
                                   .clip_low_mean = nlow / dn,
                                   .clip_high_mean = nhigh / dn,
                                   .clip_region_mean = (nlow + nhigh) / dn,
                                   .clip_low_min = low_min,
                                   .clip_high_max = high_max,
                                   .tokens = T};
    return 0;
}
