/* sw_awq — AWQ's pseudo-quantizer, scale and clipping searches and AutoAWQ's GEMM packing
 * (formulas and references: sw_awq.h). Float32 throughout except the error sums (double);
 * AutoAWQ runs the same arithmetic in the model's float16. */
#include "sw_awq.h"

#include "sw_dtype.h"
#include "sw_err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One group of n values: AutoAWQ's zero-point quantization. */
static void group_params(const float *x, int64_t n, int maxq, float *scale, float *zero) {
    float mn = x[0], mx = x[0];
    for (int64_t i = 1; i < n; i++)
        mn = fminf(mn, x[i]), mx = fmaxf(mx, x[i]);
    float s = fmaxf(mx - mn, 1e-5f) / (float)maxq;
    float z = -nearbyintf(mn / s);
    *scale = s;
    *zero = z < 0 ? 0 : z > (float)maxq ? (float)maxq : z;
}

static inline float qdq(float x, float s, float z, int maxq, int *qi) {
    float q = nearbyintf(x / s) + z;
    q = q < 0 ? 0 : q > (float)maxq ? (float)maxq : q;
    if (qi) *qi = (int)q;
    return (q - z) * s;
}

/* Σ a[i]·b[i] over n floats in eight float lanes (vectorizable; AutoAWQ sums in float16). */
static float dot8(const float *a, const float *b, int64_t n) {
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += a[i + k] * b[i + k];
    float s = 0;
    for (; i < n; i++)
        s += a[i] * b[i];
    for (int k = 0; k < 8; k++)
        s += acc[k];
    return s;
}

void sw_awq_pseudo_quant(const float *w, int64_t out, int64_t in, int bits, int64_t g, float *wq,
                         uint8_t *q, float *scales, int32_t *zeros) {
    int maxq = (1 << bits) - 1;
    int64_t ng = in / g;
#pragma omp parallel for schedule(static) if (out * in > 65536)
    for (int64_t r = 0; r < out; r++)
        for (int64_t gi = 0; gi < ng; gi++) {
            const float *x = w + r * in + gi * g;
            float s, z;
            group_params(x, g, maxq, &s, &z);
            if (scales) scales[gi * out + r] = s;
            if (zeros) zeros[gi * out + r] = (int32_t)z;
            for (int64_t i = 0; i < g; i++) {
                int qi;
                float v = qdq(x[i], s, z, maxq, &qi);
                if (q) q[r * in + gi * g + i] = (uint8_t)qi;
                wq[r * in + gi * g + i] = v;
            }
        }
}

void sw_awq_w_mean(const float *const *ws, const int64_t *outs, int nw, int64_t in, int64_t g,
                   float *w_mean) {
    int64_t rows = 0;
    double *acc = calloc((size_t)in, sizeof *acc);
    if (!acc) {
        for (int64_t c = 0; c < in; c++)
            w_mean[c] = 1;
        return;
    }
    for (int k = 0; k < nw; k++) {
        for (int64_t r = 0; r < outs[k]; r++) {
            const float *row = ws[k] + r * in;
            for (int64_t g0 = 0; g0 < in; g0 += g) {
                float amax = 0;
                for (int64_t i = g0; i < g0 + g; i++)
                    amax = fmaxf(amax, fabsf(row[i]));
                for (int64_t i = g0; i < g0 + g; i++)
                    acc[i] += fabsf(row[i]) / (amax + 1e-6f);
            }
        }
        rows += outs[k];
    }
    for (int64_t c = 0; c < in; c++)
        w_mean[c] = (float)(acc[c] / (double)rows);
    free(acc);
}

void sw_awq_ratio_scales(const float *x_mean, const float *w_mean, int64_t in, double ratio,
                         float *s) {
    float mx = 0, mn = INFINITY;
    for (int64_t c = 0; c < in; c++) {
        float v = powf(x_mean[c], (float)ratio) / (powf(w_mean[c], (float)(1 - ratio)) + 1e-4f);
        v = fmaxf(v, 1e-4f);
        s[c] = v;
        mx = fmaxf(mx, v), mn = fminf(mn, v);
    }
    float norm = sqrtf(mx * mn);
    for (int64_t c = 0; c < in; c++) {
        float v = s[c] / norm;
        s[c] = isfinite(v) ? v : 1.0f; /* AutoAWQ: inf and nan scales become 1 */
    }
}

void sw_awq_scaled_quant(const float *w, int64_t out, int64_t in, const float *s, int bits,
                         int64_t g, float *wq) {
    for (int64_t r = 0; r < out; r++)
        for (int64_t c = 0; c < in; c++)
            wq[r * in + c] = w[r * in + c] * s[c];
    sw_awq_pseudo_quant(wq, out, in, bits, g, wq, NULL, NULL, NULL);
    for (int64_t r = 0; r < out; r++)
        for (int64_t c = 0; c < in; c++)
            wq[r * in + c] /= s[c];
}

void sw_awq_clip(float *w, int64_t out, int64_t in, const float *x, int64_t n, int bits,
                 int64_t g) {
    int maxq = (1 << bits) - 1;
    int64_t step = n / 512 > 1 ? n / 512 : 1, nt = (n + step - 1) / step, ng = in / g;
#pragma omp parallel
    {
        float *cur = malloc((size_t)g * sizeof *cur);
        double *org = malloc((size_t)nt * sizeof *org);
#pragma omp for schedule(dynamic, 4)
        for (int64_t rg = 0; rg < out * ng; rg++) {
            if (!cur || !org) continue;
            float *wv = w + (rg / ng) * in + (rg % ng) * g;
            int64_t c0 = (rg % ng) * g;
            float amax = 0;
            for (int64_t i = 0; i < g; i++)
                amax = fmaxf(amax, fabsf(wv[i]));
            for (int64_t t = 0; t < nt; t++)
                org[t] = dot8(x + t * step * in + c0, wv, g);
            float best = amax;
            double min_err = 1e9;
            for (int k = 0; k < 10; k++) {
                float m = amax * (1.0f - (float)k / 20.0f);
                for (int64_t i = 0; i < g; i++)
                    cur[i] = fminf(fmaxf(wv[i], -m), m);
                float s, z;
                group_params(cur, g, maxq, &s, &z);
                for (int64_t i = 0; i < g; i++)
                    cur[i] = qdq(cur[i], s, z, maxq, NULL);
                double err = 0;
                for (int64_t t = 0; t < nt; t++) {
                    double d = (double)dot8(x + t * step * in + c0, cur, g) - org[t];
                    err += d * d;
                }
                err /= (double)nt;
                if (err < min_err) min_err = err, best = m;
            }
            for (int64_t i = 0; i < g; i++)
                wv[i] = fminf(fmaxf(wv[i], -best), best);
        }
        free(cur), free(org);
    }
}

static const int awq_order[8] = {0, 2, 4, 6, 1, 3, 5, 7};

int sw_awq_pack(const uint8_t *q, const int32_t *zeros, const float *scales, int64_t out,
                int64_t in, int64_t g, int32_t *qweight, int32_t *qzeros, uint16_t *scales16) {
    if (out % 8 != 0)
        return sw_err_set(SW_EINVAL, "AWQ packing needs out_features divisible by 8, not %lld",
                          (long long)out);
    if (g <= 0 || in % g != 0)
        return sw_err_set(SW_EINVAL, "rows of %lld are not divisible by the group size %lld",
                          (long long)in, (long long)g);
    int64_t ng = in / g, ow = out / 8;
    for (int64_t i = 0; i < in; i++)
        for (int64_t c = 0; c < ow; c++) {
            uint32_t word = 0;
            for (int k = 0; k < 8; k++)
                word |= (uint32_t)(q[(c * 8 + awq_order[k]) * in + i] & 15) << (4 * k);
            qweight[i * ow + c] = (int32_t)word;
        }
    for (int64_t gi = 0; gi < ng; gi++) {
        for (int64_t c = 0; c < ow; c++) {
            uint32_t word = 0;
            for (int k = 0; k < 8; k++)
                word |= ((uint32_t)zeros[gi * out + c * 8 + awq_order[k]] & 15) << (4 * k);
            qzeros[gi * ow + c] = (int32_t)word;
        }
        for (int64_t r = 0; r < out; r++)
            scales16[gi * out + r] = sw_f32_to_f16(scales[gi * out + r]);
    }
    return 0;
}

void sw_awq_unpack(const int32_t *qweight, const int32_t *qzeros, const uint16_t *scales16,
                   int64_t out, int64_t in, int64_t g, float *w) {
    int64_t ow = out / 8;
    for (int64_t i = 0; i < in; i++) {
        int64_t gi = i / g;
        for (int64_t c = 0; c < ow; c++) {
            uint32_t word = (uint32_t)qweight[i * ow + c], zw = (uint32_t)qzeros[gi * ow + c];
            for (int k = 0; k < 8; k++) {
                int64_t r = c * 8 + awq_order[k];
                float qv = (float)((word >> (4 * k)) & 15), zv = (float)((zw >> (4 * k)) & 15);
                w[r * in + i] = (qv - zv) * sw_f16_to_f32(scales16[gi * out + r]);
            }
        }
    }
}
