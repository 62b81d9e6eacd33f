/* sw_train_device — sw-train's optimizer on the CUDA backend. Parameters and gradients are the
 * model's device tensors; both AdamW moments are allocated next to them; a step computes the
 * gradient norm from per-tensor device sums of squares (sw_cuda_sumsq: one download of one
 * double per parameter tensor), clips (and in float16 runs unscales) with sw_cuda_scale and
 * updates with sw_cuda_adamw — no tensor crosses to the host. The update rounds exactly as
 * lib/sw_optim.c (the same float32 scalars, the same operation order), so CPU and CUDA runs
 * from the same gradients take the same step; the norm agrees with sw_grad_norm to ~1e-15 (another double summation order).
 *
 * Checkpoints stay the CPU's files: saving copies the moments into a temporary host sw_adamw
 * that sw_ckpt_save writes as optimizer.safetensors; resuming reads the file through a
 * temporary host sw_adamw (sw_ckpt_load_optimizer checks names and sizes) and uploads it. */
#include "sw_train_impl.h"

#include "sw_cuda.h"
#include "sw_err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef SW_CUDA

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

/* Copy the moments of h (a host optimizer over t->op) to the device, or back. */
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

int sw_train_dev_open(struct sw_trainer *t, struct sw_ckpt *resume) {
    const struct sw_train_opts *o = t->o;
    struct sw_train_dev *d = calloc(1, sizeof *d);
    if (!d) return sw_err_set(SW_ENOMEM, "out of memory");
    t->dev = d;
    d->cfg = (struct sw_adamw_config){o->adam_beta1, o->adam_beta2, o->adam_epsilon,
                                      o->weight_decay};
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
    if (!resume) return 0;
    /* Read (and check) optimizer.safetensors through a host optimizer, then upload. */
    struct sw_adamw *h = NULL;
    int rc = sw_adamw_new(&d->cfg, t->op, t->np, &h);
    if (rc == 0) rc = sw_ckpt_load_optimizer(resume, h);
    if (rc == 0) rc = moments_copy(t, h, 1);
    if (rc == 0) d->steps = sw_adamw_steps(h);
    sw_adamw_free(h);
    return rc;
}

int sw_train_dev_norm(struct sw_trainer *t, double *norm, int *first_bad) {
    struct sw_train_dev *d = t->dev;
    *norm = NAN;
    *first_bad = -1;
    SW_TRY(sw_cuda_sumsq(t->be, d->g, d->n, t->np, d->sumsq));
    double total = 0;
    for (int i = 0; i < t->np; i++) {
        if (*first_bad < 0 && !isfinite(d->sumsq[i])) *first_bad = i;
        total += d->sumsq[i];
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
            SW_TRY(sw_cuda_scale(t->be, t->op[i].grad, d->n[i], (float)f));
    d->steps++;
    for (int i = 0; i < t->np; i++)
        SW_TRY(sw_cuda_adamw(t->be, t->op[i].data, t->op[i].grad, d->m[i], d->v[i], d->n[i], lr,
                             d->cfg.beta1, d->cfg.beta2, d->cfg.eps, d->cfg.weight_decay,
                             t->op[i].decay, d->steps));
    return 0;
}

int sw_train_dev_host_optimizer(struct sw_trainer *t, struct sw_adamw **out) {
    *out = NULL;
    struct sw_adamw *h = NULL;
    SW_TRY(sw_adamw_new(&t->dev->cfg, t->op, t->np, &h));
    int rc = moments_copy(t, h, 0);
    if (rc < 0) {
        sw_adamw_free(h);
        return rc;
    }
    sw_adamw_set_steps(h, t->dev->steps);
    *out = h;
    return 0;
}

#else /* CPU-only build: open_backend refuses --device cuda before any of these runs. */

static int no_cuda(void) {
    return sw_err_set(SW_EUNSUPPORTED, "device optimizer: this sw was built without CUDA");
}
int sw_train_dev_open(struct sw_trainer *t, struct sw_ckpt *resume) {
    (void)t, (void)resume;
    return no_cuda();
}
int sw_train_dev_norm(struct sw_trainer *t, double *norm, int *first_bad) {
    (void)t;
    *norm = NAN;
    *first_bad = -1;
    return no_cuda();
}
int sw_train_dev_update(struct sw_trainer *t, double norm, double lr, double unscale) {
    (void)t, (void)norm, (void)lr, (void)unscale;
    return no_cuda();
}
int sw_train_dev_host_optimizer(struct sw_trainer *t, struct sw_adamw **out) {
    (void)t;
    *out = NULL;
    return no_cuda();
}
void sw_train_dev_close(struct sw_trainer *t) {
    free(t->dev);
    t->dev = NULL;
}

#endif
