/* CPU GeGLU and logit soft-capping — Gemma 2's MLP gate and its final-logit cap.
 * geglu: out = gelu_tanh(gate) · up with PyTorch's gelu(approximate="tanh"),
 *   gelu_tanh(g) = ½·g·(1 + tanh(u)), u = √(2/π)·(g + 0.044715·g³);
 *   backward: dup = dout·gelu_tanh(g), dgate = dout·up·(½(1 + t) + ½·g·(1 − t²)·√(2/π)·(1 +
 *   3·0.044715·g²)), t = tanh(u). Computed in double per element (one float rounding at the end),
 *   so the float result is within an ulp of torch's float32 kernel.
 * softcap: x ← cap·tanh(x / cap) in place (transformers' final_logit_softcapping). */
#include "cpu_ops.h"

#include <math.h>

#define GELU_K 0.7978845608028654 /* √(2/π) */
#define GELU_C 0.044715

int sw_cpu_geglu_fwd(struct sw_backend *be, float *out, const float *gate, const float *up,
                     int64_t n) {
    (void)be;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        double g = gate[i];
        double t = tanh(GELU_K * (g + GELU_C * g * g * g));
        out[i] = (float)(0.5 * g * (1.0 + t) * (double)up[i]);
    }
    return 0;
}

int sw_cpu_geglu_bwd(struct sw_backend *be, float *dgate, float *dup, const float *dout,
                     const float *gate, const float *up, int64_t n) {
    (void)be;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        double g = gate[i], d = dout[i];
        double t = tanh(GELU_K * (g + GELU_C * g * g * g));
        double dg =
            0.5 * (1.0 + t) + 0.5 * g * (1.0 - t * t) * GELU_K * (1.0 + 3.0 * GELU_C * g * g);
        dup[i] = (float)(d * 0.5 * g * (1.0 + t));
        dgate[i] = (float)(d * (double)up[i] * dg);
    }
    return 0;
}

int sw_cpu_softcap_fwd(struct sw_backend *be, float *x, int64_t n, float cap) {
    (void)be;
    if (!(cap > 0)) return 0;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++)
        x[i] = cap * tanhf(x[i] / cap);
    return 0;
}
