/* sw_train_device — sw-train's optimizer, run by the backend on every device (the one optimizer
 * path). Parameters and gradients are the model's tensors in backend memory; both AdamW moments
 * are allocated next to them; a step computes the gradient norm from per-tensor sums of squares
 * (be->sumsq: one download of one double per parameter tensor on a GPU), clips (and in float16
 * runs unscales) with be->scale and updates with be->adamw — no tensor crosses to the host. The
 * CPU backend's three members are lib/sw_optim.c's arithmetic bit for bit (the norm is
 * sw_grad_norm's, the clip sw_grad_clip's, the update sw_adamw_step's); CUDA's update rounds the
 * same way (the same float32 scalars and operation order) and its norm agrees with sw_grad_norm
 * to ~1e-15 (another double summation order).
 *
 * Checkpoints are the same files on every device: saving hands sw_ckpt_save a host sw_adamw of
 * the moments (on the CPU a view of them, elsewhere a downloaded copy) as optimizer.safetensors;
 * resuming reads the file through such a host sw_adamw (sw_ckpt_load_optimizer checks names and
 * sizes) — straight into the moments on the CPU, uploaded from a copy elsewhere. */
#include "sw_train_impl.h"

#include "sw_err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void sw_train_dev_close(struct sw_trainer *t) {
    struct sw_train_dev *d = t->dev;
    if (!d) return;
    for (int i = 0; i < t->np; i++) {
        if (d->m) t->be->free(t->be, d->m[i]);
        if (d->v) t->be->free(t->be, d->v[i]);
    }
    free(d->m), free(d->v), free(d->g), free(d->n), free(d->sumsq);
    free(d);
    t->dev = NULL;
}

/* Backend memory the host can address directly (the CPU backend's). */
static int host_addressable(const struct sw_trainer *t) {
    return t->be->device == SW_DEVICE_CPU;
}

/* Copy the moments of h (a host optimizer over t->op) to the backend, or back. */
static int moments_copy(struct sw_trainer *t, struct sw_adamw *h, int to_device) {
    struct sw_train_dev *d = t->dev;
    for (int i = 0; i < t->np; i++) {
        int64_t numel;
        float *m, *v;
        if (!sw_adamw_slot(h, i, &numel, &m, &v) || numel != d->n[i])
            return sw_err_set(SW_ESTATE, "optimizer: slot %d does not match '%s'", i,
                              t->op[i].name);
        size_t bytes = (size_t)numel * sizeof(float);
        if (to_device) {
            SW_TRY(t->be->upload(t->be, d->m[i], m, bytes));
            SW_TRY(t->be->upload(t->be, d->v[i], v, bytes));
        } else {
            SW_TRY(t->be->download(t->be, m, d->m[i], bytes));
            SW_TRY(t->be->download(t->be, v, d->v[i], bytes));
        }
    }
    return 0;
}

/* A host sw_adamw over t->op for the moments: a view of them where the host can address the
 * backend's memory, else a new optimizer (zeroed host moments) the caller fills or reads. */
static int host_adamw(struct sw_trainer *t, struct sw_adamw **h) {
    struct sw_train_dev *d = t->dev;
    if (host_addressable(t)) return sw_adamw_new_view(&d->cfg, t->op, t->np, d->m, d->v, h);
    return sw_adamw_new(&d->cfg, t->op, t->np, h);
}

int sw_train_dev_open(struct sw_trainer *t, struct sw_ckpt *resume) {
    const struct sw_train_opts *o = t->o;
    struct sw_train_dev *d = calloc(1, sizeof *d);
    if (!d) return sw_err_set(SW_ENOMEM, "out of memory");
    t->dev = d;
    d->cfg =
        (struct sw_adamw_config){o->adam_beta1, o->adam_beta2, o->adam_epsilon, o->weight_decay};
    size_t k = (size_t)(t->np ? t->np : 1);
    d->m = calloc(k, sizeof *d->m);
    d->v = calloc(k, sizeof *d->v);
    d->g = calloc(k, sizeof *d->g);
    d->n = calloc(k, sizeof *d->n);
    d->sumsq = calloc(k, sizeof *d->sumsq);
    if (!d->m || !d->v || !d->g || !d->n || !d->sumsq)
        return sw_err_set(SW_ENOMEM, "out of memory");
    for (int i = 0; i < t->np; i++) {
        size_t bytes = (size_t)t->op[i].numel * sizeof(float);
        d->g[i] = t->op[i].grad;
        d->n[i] = t->op[i].numel;
        if (!(d->m[i] = t->be->alloc(t->be, bytes)) || !(d->v[i] = t->be->alloc(t->be, bytes)))
            return sw_train_mem_oom(
                t, sw_err_wrap(SW_ENOMEM, "AdamW moments of '%s'", t->op[i].name),
                "optimizer state", 2 * (size_t)sw_model_numel(t->m, 1) * sizeof(float));
    }
    /* A host optimizer to read optimizer.safetensors into (a view on the CPU: the file lands in
     * the moments). Without a checkpoint a view of the moments' pointers, never read through,
     * still checks the hyperparameters (betas, eps, weight decay) on every device. */
    struct sw_adamw *h = NULL;
    int rc = resume ? host_adamw(t, &h) : sw_adamw_new_view(&d->cfg, t->op, t->np, d->m, d->v, &h);
    if (rc == 0 && resume) {
        rc = sw_ckpt_load_optimizer(resume, h);
        if (rc == 0 && !host_addressable(t)) rc = moments_copy(t, h, 1);
        if (rc == 0) d->steps = sw_adamw_steps(h);
    }
    sw_adamw_free(h);
    return rc;
}

int sw_train_dev_norm(struct sw_trainer *t, double *norm, int *first_bad) {
    struct sw_train_dev *d = t->dev;
    *norm = NAN;
    *first_bad = -1;
    double total = 0;
    SW_TRY(t->be->sumsq(t->be, d->g, d->n, t->np, d->sumsq, &total));
    for (int i = 0; i < t->np; i++)
        if (!isfinite(d->sumsq[i])) {
            *first_bad = i;
            break;
        }
    *norm = sqrt(total);
    return 0;
}

int sw_train_dev_update(struct sw_trainer *t, double norm, double lr, double unscale) {
    struct sw_train_dev *d = t->dev;
    double max_norm = t->o->max_grad_norm;
    /* One pass over the gradients for both factors: float16's 1/scale (GradScaler.unscale_) and
     * the clip coefficient of the true norm — sw_grad_clip's coefficient, bit for bit, so with
     * unscale 1 this is exactly the CPU's clipping. Torch applies the two as two float32 passes;
     * here their product is formed in double and rounded once. */
    double f = unscale;
    if (max_norm > 0) {
        float coef = (float)max_norm / ((float)norm + 1e-6f);
        if (coef < 1.0f) f *= coef;
    }
    if (f != 1.0)
        for (int i = 0; i < t->np; i++)
            SW_TRY(t->be->scale(t->be, t->op[i].grad, d->n[i], (float)f));
    d->steps++;
    for (int i = 0; i < t->np; i++)
        SW_TRY(t->be->adamw(t->be, t->op[i].data, t->op[i].grad, d->m[i], d->v[i], d->n[i], lr,
                            d->cfg.beta1, d->cfg.beta2, d->cfg.eps, d->cfg.weight_decay,
                            t->op[i].decay, d->steps));
    return 0;
}

int sw_train_dev_host_optimizer(struct sw_trainer *t, struct sw_adamw **out) {
    *out = NULL;
    struct sw_adamw *h = NULL;
    SW_TRY(host_adamw(t, &h));
    int rc = host_addressable(t) ? 0 : moments_copy(t, h, 0);
    if (rc < 0) {
        sw_adamw_free(h);
        return rc;
    }
    sw_adamw_set_steps(h, t->dev->steps);
    *out = h;
    return 0;
}
