/* optim — the CPU backend's optimizer ops (kernels/sw_kernels.h: adamw, sumsq, scale): the
 * pieces of sw-train's optimizer step, so that the trainer has one path for every backend.
 *
 * They are the arithmetic of lib/train/sw_optim.c, element for element: AdamW with the same float
 * scalars computed in double, the same operation order and the same one-rounding lerp; the sums
 * of squares over the same 2^15-element chunks added in the same order as sw_grad_norm (so
 * sqrt(total) is its result bit for bit); the scale as sw_grad_clip's float product.
 * test/unit/test_kernels.c checks all three against sw_optim bit for bit. Work is split into
 * fixed chunks, never by thread, so every result is independent of the thread count.
 *
 * Floating-point contraction is off (as in sw_optim.c): no compiler may fuse a multiply and an
 * add here on one machine and not on another. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "cpu_ops.h"

#include "sw_err.h"

#include <math.h>

/* Elements per work item and chunk sums per parallel pass: sw_optim.c's CHUNK and NORM_GROUP. */
#define CHUNK ((int64_t)1 << 15)
#define NORM_GROUP 256

int sw_cpu_adamw(struct sw_backend *be, float *p, const float *g, float *m, float *v, int64_t n,
                 double lr, double beta1, double beta2, double eps, double wd, int decay,
                 int64_t step) {
    (void)be;
    if (step < 1) return sw_err_set(SW_EINVAL, "adamw: step %lld < 1", (long long)step);
    if (n < 0) return sw_err_set(SW_EINVAL, "adamw: negative size %lld", (long long)n);
    double t = (double)step;
    double bc1 = 1.0 - pow(beta1, t), bc2 = 1.0 - pow(beta2, t);
    /* Each scalar computed in double as torch computes it in Python, then rounded to float where
     * torch hands it to a float tensor op (sw_optim.c's struct adamw_scalars). */
    const float decay_mul = (float)(1.0 - lr * wd), one_minus_b1 = (float)(1.0 - beta1);
    const float b2 = (float)beta2, one_minus_b2 = (float)(1.0 - beta2);
    const float bc2_sqrt = (float)sqrt(bc2), epsf = (float)eps;
    const float neg_step = (float)-(lr / bc1);
    const int use_decay = decay && wd != 0.0;
    int64_t nchunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (nchunks > 1)
    for (int64_t c = 0; c < nchunks; c++) {
        int64_t b = c * CHUNK, e = b + CHUNK < n ? b + CHUNK : n;
        float *restrict pp = p + b, *restrict mm = m + b, *restrict vv = v + b;
        const float *restrict gg = g + b;
        int64_t k = e - b;
        if (use_decay)
            for (int64_t i = 0; i < k; i++)
                pp[i] = pp[i] * decay_mul;
        for (int64_t i = 0; i < k; i++) {
            float gi = gg[i];
            /* torch's vectorised lerp is fmadd(w, g - m, m): one rounding (sw_optim.c). */
            mm[i] = (float)((double)one_minus_b1 * (double)(gi - mm[i]) + (double)mm[i]);
            vv[i] = vv[i] * b2 + one_minus_b2 * gi * gi;
            float denom = sqrtf(vv[i]) / bc2_sqrt + epsf;
            pp[i] = pp[i] + neg_step * mm[i] / denom;
        }
    }
    return 0;
}

static double chunk_sumsq(const float *x, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)x[i] * (double)x[i];
    return s;
}

int sw_cpu_sumsq(struct sw_backend *be, const float *const *x, const int64_t *n, int count,
                 double *out, double *total) {
    (void)be;
    if (count < 0) return sw_err_set(SW_EINVAL, "sumsq: negative tensor count %d", count);
    for (int i = 0; i < count; i++)
        if (n[i] < 0 || (n[i] > 0 && !x[i]))
            return sw_err_set(SW_EINVAL, "sumsq: tensor %d has %lld elements at %p", i,
                              (long long)n[i], (const void *)x[i]);
    /* sw_grad_norm's order: chunk sums added one by one to a running total over all tensors;
     * each tensor's own sum is its chunk sums added in order. */
    double all = 0;
    for (int i = 0; i < count; i++) {
        int64_t nchunks = (n[i] + CHUNK - 1) / CHUNK;
        double mine = 0;
        for (int64_t c0 = 0; c0 < nchunks; c0 += NORM_GROUP) {
            int64_t cn = nchunks - c0 < NORM_GROUP ? nchunks - c0 : NORM_GROUP;
            double part[NORM_GROUP];
#pragma omp parallel for schedule(static) if (cn > 1)
            for (int64_t c = 0; c < cn; c++) {
                int64_t b = (c0 + c) * CHUNK;
                int64_t e = b + CHUNK < n[i] ? b + CHUNK : n[i];
                part[c] = chunk_sumsq(x[i] + b, e - b);
            }
            for (int64_t c = 0; c < cn; c++) {
                mine += part[c];
                all += part[c];
            }
        }
        out[i] = mine;
    }
    if (total) *total = all;
    return 0;
}

int sw_cpu_scale(struct sw_backend *be, float *x, int64_t n, float f) {
    (void)be;
    if (n < 0) return sw_err_set(SW_EINVAL, "scale: negative size %lld", (long long)n);
#pragma omp parallel for schedule(static) if (n > CHUNK)
    for (int64_t j = 0; j < n; j++)
        x[j] = x[j] * f;
    return 0;
}
