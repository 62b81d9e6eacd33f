/* CPU RoPE — rotate-half rotary embedding (HF Llama's apply_rotary_pos_emb), in place.
 * Shapes: x[N,H,D] (token, head, head_dim), pos[N] int32 (per token, so packed samples restart
 * at 0), cos/sin[P, D/2] from sw_rope_tables. Pair i of a head is (x[i], x[i + D/2]).
 * The backward rotates the gradient by −θ (the transpose of the forward rotation). */
#include "cpu_ops.h"

#include "sw_err.h"

static int rope_apply(const char *op, float *x, const int32_t *pos, const float *cos_t,
                      const float *sin_t, int64_t N, int64_t H, int64_t D, int64_t P, float sign) {
    for (int64_t n = 0; n < N; n++)
        if (pos[n] < 0 || pos[n] >= P)
            return sw_err_set(SW_ERANGE, "%s: position %d at row %lld outside the table [0, %lld)",
                              op, (int)pos[n], (long long)n, (long long)P);
    int64_t half = D / 2;
#pragma omp parallel for schedule(static) if (N * H * D > 65536)
    for (int64_t n = 0; n < N; n++) {
        const float *c = cos_t + (int64_t)pos[n] * half, *s = sin_t + (int64_t)pos[n] * half;
        for (int64_t h = 0; h < H; h++) {
            float *v = x + (n * H + h) * D;
            for (int64_t i = 0; i < half; i++) {
                float x1 = v[i], x2 = v[i + half], si = sign * s[i];
                v[i] = x1 * c[i] - x2 * si;
                v[i + half] = x2 * c[i] + x1 * si;
            }
        }
    }
    return 0;
}

int sw_cpu_rope_fwd(struct sw_backend *be, float *x, const int32_t *pos, const float *cos_t,
                    const float *sin_t, int64_t N, int64_t H, int64_t D, int64_t P) {
    (void)be;
    return rope_apply("rope_fwd", x, pos, cos_t, sin_t, N, H, D, P, 1.0f);
}

int sw_cpu_rope_bwd(struct sw_backend *be, float *dx, const int32_t *pos, const float *cos_t,
                    const float *sin_t, int64_t N, int64_t H, int64_t D, int64_t P) {
    (void)be;
    return rope_apply("rope_bwd", dx, pos, cos_t, sin_t, N, H, D, P, -1.0f);
}
