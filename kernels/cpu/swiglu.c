/* CPU SwiGLU — the Llama/Qwen MLP gate: out = silu(gate) · up, silu(g) = g·σ(g).
 * Shapes: gate/up/out and their gradients, n elements each ([N, intermediate] flattened).
 * Backward: dup = dout·silu(g); dgate = dout·up·σ(g)·(1 + g·(1 − σ(g))). */
#include "cpu_ops.h"

#include <math.h>

static inline float sigmoidf(float g) {
    return 1.0f / (1.0f + expf(-g));
}

int sw_cpu_swiglu_fwd(struct sw_backend *be, float *out, const float *gate, const float *up,
                      int64_t n) {
    (void)be;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++)
        out[i] = gate[i] * sigmoidf(gate[i]) * up[i];
    return 0;
}

int sw_cpu_swiglu_bwd(struct sw_backend *be, float *dgate, float *dup, const float *dout,
                      const float *gate, const float *up, int64_t n) {
    (void)be;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i], s = sigmoidf(g);
        float d = dout[i];
        dup[i] = d * g * s;
        dgate[i] = d * up[i] * s * (1.0f + g * (1.0f - s));
    }
    return 0;
}
