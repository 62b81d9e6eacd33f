/* sw_optim — AdamW, gradient norm/clipping and the decay rule (see sw_optim.h for the formulas).
 *
 * Floating-point contraction is switched off here so that no compiler fuses a multiply and an
 * add into an FMA on one machine and not on another: the update must be the same bits
 * everywhere for checkpoint resume and cross-machine reproducibility to mean something. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "sw_optim.h"

#include "sw_err.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Elements per work item: big enough to amortise scheduling, small enough to balance. */
#define CHUNK ((int64_t)1 << 15)
/* Chunks reduced per parallel pass of the gradient norm (bounded stack buffer). */
#define NORM_GROUP 256

struct adamw_slot {
    char *name;
    int64_t numel;
    float *m, *v;
};

struct adamw_chunk {
    int slot;
    int64_t begin, end;
};

struct sw_adamw {
    struct sw_adamw_config cfg;
    int64_t steps;
    int borrowed; /* the moment buffers are the caller's (sw_adamw_new_view) */
    int n;
    struct adamw_slot *slots;
    int nchunks;
    struct adamw_chunk *chunks;
};

/* ---- decay rule ------------------------------------------------------------------------- */

/* Does "norm" occur in s at i preceded by start-or-'.'/'_' (per pre) and followed by end or '.'? */
static int norm_at(const char *s, size_t i, size_t len) {
    return i + 4 <= len && memcmp(s + i, "norm", 4) == 0 && (i + 4 == len || s[i + 4] == '.');
}

int sw_param_wants_decay(const char *name) {
    char low[512];
    size_t len = strlen(name);
    if (len >= sizeof low) len = sizeof low - 1;
    for (size_t i = 0; i < len; i++)
        low[i] = (char)tolower((unsigned char)name[i]);
    low[len] = '\0';
    if (strstr(low, "bias") || strstr(low, "layernorm") || strstr(low, "rmsnorm")) return 0;
    for (size_t i = 0; i + 4 <= len; i++) {
        if (!norm_at(low, i, len)) continue;
        if (i == 0 || low[i - 1] == '.' || low[i - 1] == '_') return 0;
    }
    return 1;
}

/* ---- optimizer lifecycle ---------------------------------------------------------------- */

static int check_config(const struct sw_adamw_config *c) {
    if (!(c->beta1 >= 0 && c->beta1 < 1))
        return sw_err_set(SW_EINVAL, "adam_beta1: %g is outside [0, 1)", c->beta1);
    if (!(c->beta2 >= 0 && c->beta2 < 1))
        return sw_err_set(SW_EINVAL, "adam_beta2: %g is outside [0, 1)", c->beta2);
    if (!(c->eps >= 0) || !isfinite(c->eps))
        return sw_err_set(SW_EINVAL, "adam_epsilon: %g is not a finite value >= 0", c->eps);
    if (!(c->weight_decay >= 0) || !isfinite(c->weight_decay))
        return sw_err_set(SW_EINVAL, "weight_decay: %g is not a finite value >= 0",
                          c->weight_decay);
    return 0;
}

void sw_adamw_free(struct sw_adamw *o) {
    if (!o) return;
    for (int i = 0; i < o->n; i++) {
        free(o->slots[i].name);
        if (o->borrowed) continue;
        free(o->slots[i].m);
        free(o->slots[i].v);
    }
    free(o->slots);
    free(o->chunks);
    free(o);
}

static int build_chunks(struct sw_adamw *o) {
    int64_t total = 0;
    for (int i = 0; i < o->n; i++)
        total += (o->slots[i].numel + CHUNK - 1) / CHUNK;
    if (total > (1 << 30)) return sw_err_set(SW_ERANGE, "optimizer: too many parameters");
    o->chunks = calloc(total ? (size_t)total : 1, sizeof *o->chunks);
    if (!o->chunks) return sw_err_set(SW_ENOMEM, "optimizer: out of memory");
    int k = 0;
    for (int i = 0; i < o->n; i++)
        for (int64_t b = 0; b < o->slots[i].numel; b += CHUNK) {
            int64_t e = b + CHUNK < o->slots[i].numel ? b + CHUNK : o->slots[i].numel;
            o->chunks[k++] = (struct adamw_chunk){i, b, e};
        }
    o->nchunks = k;
    return 0;
}

/* sw_adamw_new, or sw_adamw_new_view when exp_avg / exp_avg_sq are given. */
static int adamw_new(const struct sw_adamw_config *cfg, const struct sw_optim_param *params, int n,
                     float *const *exp_avg, float *const *exp_avg_sq, struct sw_adamw **out) {
    *out = NULL;
    SW_TRY(check_config(cfg));
    if (n < 0) return sw_err_set(SW_EINVAL, "optimizer: negative parameter count");
    struct sw_adamw *o = calloc(1, sizeof *o);
    if (!o) return sw_err_set(SW_ENOMEM, "optimizer: out of memory");
    o->cfg = *cfg;
    o->borrowed = exp_avg != NULL;
    o->slots = calloc(n ? (size_t)n : 1, sizeof *o->slots);
    if (!o->slots) {
        free(o);
        return sw_err_set(SW_ENOMEM, "optimizer: out of memory");
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const struct sw_optim_param *p = &params[i];
        if (!p->name || p->numel < 0 || (p->numel > 0 && (!p->data || !p->grad))) {
            rc = sw_err_set(SW_EINVAL, "optimizer: parameter %d (%s) has no name, data or grad", i,
                            p->name ? p->name : "(null)");
            goto fail;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(params[j].name, p->name) == 0) {
                rc = sw_err_set(SW_EINVAL, "optimizer: parameter '%s' is listed twice", p->name);
                goto fail;
            }
        struct adamw_slot *s = &o->slots[i];
        o->n = i + 1;
        s->name = strdup(p->name);
        s->numel = p->numel;
        if (o->borrowed) {
            s->m = exp_avg[i];
            s->v = exp_avg_sq[i];
            if (p->numel > 0 && (!s->m || !s->v)) {
                rc = sw_err_set(SW_EINVAL, "optimizer: parameter '%s' has no moment buffers",
                                p->name);
                goto fail;
            }
            if (!s->name) {
                rc = sw_err_set(SW_ENOMEM, "optimizer: out of memory");
                goto fail;
            }
            continue;
        }
        size_t bytes = (size_t)(p->numel ? p->numel : 1) * sizeof(float);
        s->m = calloc(1, bytes);
        s->v = calloc(1, bytes);
        if (!s->name || !s->m || !s->v) {
            rc = sw_err_set(SW_ENOMEM, "optimizer: out of memory for state of '%s' (%lld values)",
                            p->name, (long long)p->numel);
            goto fail;
        }
    }
    o->n = n;
    SW_TRY_GOTO(rc, build_chunks(o), fail);
    *out = o;
    return 0;
fail:
    sw_adamw_free(o);
    return rc;
}

int sw_adamw_new(const struct sw_adamw_config *cfg, const struct sw_optim_param *params, int n,
                 struct sw_adamw **out) {
    return adamw_new(cfg, params, n, NULL, NULL, out);
}

int sw_adamw_new_view(const struct sw_adamw_config *cfg, const struct sw_optim_param *params, int n,
                      float *const *exp_avg, float *const *exp_avg_sq, struct sw_adamw **out) {
    *out = NULL;
    if (n > 0 && (!exp_avg || !exp_avg_sq))
        return sw_err_set(SW_EINVAL, "optimizer: a view needs its moment buffers");
    static float *const none[1] = {NULL};
    return adamw_new(cfg, params, n, n > 0 ? exp_avg : none, n > 0 ? exp_avg_sq : none, out);
}

int64_t sw_adamw_steps(const struct sw_adamw *o) {
    return o->steps;
}
void sw_adamw_set_steps(struct sw_adamw *o, int64_t steps) {
    o->steps = steps;
}
int sw_adamw_count(const struct sw_adamw *o) {
    return o->n;
}
const struct sw_adamw_config *sw_adamw_get_config(const struct sw_adamw *o) {
    return &o->cfg;
}

const char *sw_adamw_slot(struct sw_adamw *o, int i, int64_t *numel, float **exp_avg,
                          float **exp_avg_sq) {
    if (i < 0 || i >= o->n) return NULL;
    if (numel) *numel = o->slots[i].numel;
    if (exp_avg) *exp_avg = o->slots[i].m;
    if (exp_avg_sq) *exp_avg_sq = o->slots[i].v;
    return o->slots[i].name;
}

/* ---- the update ------------------------------------------------------------------------- */

/* Scalars of one step, each computed in double as torch computes them in Python, then rounded
 * to float where torch hands them to a float tensor op. */
struct adamw_scalars {
    float decay_mul; /* 1 - lr*wd */
    float one_minus_b1;
    float b2, one_minus_b2;
    float bc2_sqrt;
    float eps;
    float neg_step_size; /* -lr / (1 - b1^t) */
};

static void update_range(float *restrict p, const float *restrict g, float *restrict m,
                         float *restrict v, int64_t n, const struct adamw_scalars *k, int decay) {
    if (decay)
        for (int64_t i = 0; i < n; i++)
            p[i] = p[i] * k->decay_mul;
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i];
        /* torch's vectorised lerp is fmadd(w, g - m, m): one rounding. The product of two
         * floats is exact in double, so this is that fused result (up to a double rounding
         * of probability ~2^-29) on every machine, FMA unit or not. */
        m[i] = (float)((double)k->one_minus_b1 * (double)(gi - m[i]) + (double)m[i]);
        v[i] = v[i] * k->b2 + k->one_minus_b2 * gi * gi;
        float denom = sqrtf(v[i]) / k->bc2_sqrt + k->eps;
        p[i] = p[i] + k->neg_step_size * m[i] / denom;
    }
}

int sw_adamw_step(struct sw_adamw *o, const struct sw_optim_param *params, int n, double lr) {
    if (n != o->n)
        return sw_err_set(SW_EINVAL, "optimizer: step with %d parameters, created with %d", n,
                          o->n);
    for (int i = 0; i < n; i++)
        if (params[i].numel != o->slots[i].numel || !params[i].name ||
            strcmp(params[i].name, o->slots[i].name) != 0)
            return sw_err_set(SW_EINVAL,
                              "optimizer: parameter %d is '%s' (%lld values), expected '%s' "
                              "(%lld values)",
                              i, params[i].name ? params[i].name : "(null)",
                              (long long)params[i].numel, o->slots[i].name,
                              (long long)o->slots[i].numel);
    o->steps++;
    const struct sw_adamw_config *c = &o->cfg;
    double t = (double)o->steps;
    double bc1 = 1.0 - pow(c->beta1, t);
    double bc2 = 1.0 - pow(c->beta2, t);
    struct adamw_scalars k = {
        .decay_mul = (float)(1.0 - lr * c->weight_decay),
        .one_minus_b1 = (float)(1.0 - c->beta1),
        .b2 = (float)c->beta2,
        .one_minus_b2 = (float)(1.0 - c->beta2),
        .bc2_sqrt = (float)sqrt(bc2),
        .eps = (float)c->eps,
        .neg_step_size = (float)-(lr / bc1),
    };
    int use_decay = c->weight_decay != 0.0;
#pragma omp parallel for schedule(static) if (o->nchunks > 1)
    for (int ci = 0; ci < o->nchunks; ci++) {
        const struct adamw_chunk *ch = &o->chunks[ci];
        const struct sw_optim_param *p = &params[ch->slot];
        struct adamw_slot *s = &o->slots[ch->slot];
        update_range(p->data + ch->begin, p->grad + ch->begin, s->m + ch->begin, s->v + ch->begin,
                     ch->end - ch->begin, &k, use_decay && p->decay);
    }
    return 0;
}

/* ---- gradients -------------------------------------------------------------------------- */

static double sumsq(const float *g, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)g[i] * (double)g[i];
    return s;
}

double sw_grad_norm(const struct sw_optim_param *params, int n) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        const float *g = params[i].grad;
        int64_t numel = params[i].numel;
        int64_t nchunks = (numel + CHUNK - 1) / CHUNK;
        for (int64_t c0 = 0; c0 < nchunks; c0 += NORM_GROUP) {
            int64_t cn = nchunks - c0 < NORM_GROUP ? nchunks - c0 : NORM_GROUP;
            double part[NORM_GROUP];
#pragma omp parallel for schedule(static) if (cn > 1)
            for (int64_t c = 0; c < cn; c++) {
                int64_t b = (c0 + c) * CHUNK;
                int64_t e = b + CHUNK < numel ? b + CHUNK : numel;
                part[c] = sumsq(g + b, e - b);
            }
            for (int64_t c = 0; c < cn; c++)
                total += part[c];
        }
    }
    return sqrt(total);
}

static void scale_all(const struct sw_optim_param *params, int n, float f) {
    for (int i = 0; i < n; i++) {
        float *g = params[i].grad;
        int64_t numel = params[i].numel;
#pragma omp parallel for schedule(static) if (numel > CHUNK)
        for (int64_t j = 0; j < numel; j++)
            g[j] = g[j] * f;
    }
}

double sw_grad_clip(const struct sw_optim_param *params, int n, double max_norm, double norm) {
    if (!(max_norm > 0)) return 1.0;
    /* torch: clip_coef = max_norm / (total_norm + 1e-6) on a float32 tensor, clamped to 1. */
    float coef = (float)max_norm / ((float)norm + 1e-6f);
    if (!(coef < 1.0f)) return 1.0;
    scale_all(params, n, coef);
    return coef;
}

void sw_grad_zero(const struct sw_optim_param *params, int n) {
    for (int i = 0; i < n; i++)
        if (params[i].numel > 0) memset(params[i].grad, 0, (size_t)params[i].numel * sizeof(float));
}

int sw_grad_find_nonfinite(const struct sw_optim_param *params, int n) {
    for (int i = 0; i < n; i++) {
        const float *g = params[i].grad;
        int bad = 0;
        int64_t numel = params[i].numel;
#pragma omp parallel for schedule(static) reduction(| : bad) if (numel > CHUNK)
        for (int64_t j = 0; j < numel; j++)
            bad |= !isfinite(g[j]);
        if (bad) return i;
    }
    return -1;
}
