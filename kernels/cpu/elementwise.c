/* CPU elementwise ops — residual add, axpy (gradient accumulation) and inverted dropout whose
 * mask is recomputed from (seed, index) by sw_dropout_keep, so it is never stored and every
 * backend draws the same mask. All over n contiguous floats. */
#include "cpu_ops.h"

int sw_cpu_add(struct sw_backend *be, float *out, const float *a, const float *b, int64_t n) {
    (void)be;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
    return 0;
}

int sw_cpu_axpy(struct sw_backend *be, float *y, const float *x, float alpha, int64_t n) {
    (void)be;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++)
        y[i] += alpha * x[i];
    return 0;
}

int sw_cpu_dropout_fwd(struct sw_backend *be, float *out, const float *x, int64_t n, float p,
                       uint64_t seed) {
    (void)be;
    float keep_scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++)
        out[i] = sw_dropout_keep(seed, (uint64_t)i, p) ? x[i] * keep_scale : 0.0f;
    return 0;
}

int sw_cpu_dropout_bwd(struct sw_backend *be, float *dx, const float *dout, int64_t n, float p,
                       uint64_t seed) {
    return sw_cpu_dropout_fwd(be, dx, dout, n, p, seed);
}
