/* sw_ggml_quant — ggml block quantization (layouts in sw_ggml_quant.h).
 *
 * Exactness: the legacy 32-element formats must give the same bytes as ggml's reference
 * quantizers, which work in float32 with one rounding per operation; fused multiply-adds would
 * change last bits, so contraction is turned off for this file. Halves are rounded to nearest,
 * ties to even (sw_f32_to_f16, as ggml's F16C path and numpy do).
 *
 * The K-quants search, per sub-block, for the scale (and for Q4_K/Q5_K the offset) that
 * minimises a weighted squared error of the rounded values: a first guess from the range,
 * then a grid of nearby candidate scales, each refit by least squares on the levels it
 * produces; the sub-block scales are themselves quantized to 6 bits (Q4_K/Q5_K, against a
 * super-block d and dmin) or 8 bits (Q6_K), and the values are requantized with the scales
 * actually stored. Without an importance vector the weights are ggml's defaults (|x| plus the
 * RMS of the sub-block for Q4_K/Q5_K, x² for Q6_K); with one, w·sqrt(σ² + x²). The 32-element
 * formats with an importance vector use the same searches (llama.cpp's quantize_row_q4_0_impl
 * etc.). */
#pragma GCC optimize("fp-contract=off")
#include "sw_ggml_quant.h"

#include "sw_dtype.h"
#include "sw_err.h"
#include "sw_gguf.h"

#include <math.h>
#include <string.h>

#define QK 32
#define QKK 256

static inline float h2f(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return sw_f16_to_f32(h);
}

static inline void f2h(uint8_t *p, float f) {
    uint16_t h = sw_f32_to_f16(f);
    memcpy(p, &h, 2);
}

/* Round to nearest, ties to even, for |f| < 2^22: adding 1.5·2^23 leaves the integer in the
 * low mantissa bits (ggml's trick; callers keep values in range). */
static inline int nearest(float f) {
    float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static inline int imin(int a, int b) {
    return a < b ? a : b;
}
static inline int imax(int a, int b) {
    return a > b ? a : b;
}

/* ---- 32-element formats (ggml's reference quantizers) ---- */

static void q8_0_block(const float *x, uint8_t *y) {
    float amax = 0;
    for (int j = 0; j < QK; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    float d = amax / 127, id = d != 0 ? 1.0f / d : 0.0f;
    f2h(y, d);
    for (int j = 0; j < QK; j++)
        y[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
}

/* The value of largest magnitude (the first one on ties), sign kept. */
static float signed_absmax(const float *x, int n) {
    float amax = 0, max = 0;
    for (int j = 0; j < n; j++)
        if (amax < fabsf(x[j])) amax = fabsf(x[j]), max = x[j];
    return max;
}

static void q4_0_block(const float *x, uint8_t *y) {
    float d = signed_absmax(x, QK) / -8, id = d != 0 ? 1.0f / d : 0.0f;
    f2h(y, d);
    for (int j = 0; j < QK / 2; j++) {
        /* truncation toward zero of a value in [0, 17), as ggml's (int8_t) cast */
        int a = imin(15, (int)(x[j] * id + 8.5f)), b = imin(15, (int)(x[j + QK / 2] * id + 8.5f));
        y[2 + j] = (uint8_t)(a | (b << 4));
    }
}

static void minmax(const float *x, int n, float *mn, float *mx) {
    float lo = INFINITY, hi = -INFINITY;
    for (int j = 0; j < n; j++)
        lo = x[j] < lo ? x[j] : lo, hi = x[j] > hi ? x[j] : hi;
    *mn = lo, *mx = hi;
}

static void q4_1_block(const float *x, uint8_t *y) {
    float mn, mx;
    minmax(x, QK, &mn, &mx);
    float d = (mx - mn) / 15, id = d != 0 ? 1.0f / d : 0.0f;
    f2h(y, d), f2h(y + 2, mn);
    for (int j = 0; j < QK / 2; j++) {
        int a = imin(15, (int)((x[j] - mn) * id + 0.5f));
        int b = imin(15, (int)((x[j + QK / 2] - mn) * id + 0.5f));
        y[4 + j] = (uint8_t)(a | (b << 4));
    }
}

static void q5_0_block(const float *x, uint8_t *y) {
    float d = signed_absmax(x, QK) / -16, id = d != 0 ? 1.0f / d : 0.0f;
    uint32_t qh = 0;
    f2h(y, d);
    for (int j = 0; j < QK / 2; j++) {
        int a = imin(31, (int)(x[j] * id + 16.5f)), b = imin(31, (int)(x[j + QK / 2] * id + 16.5f));
        y[6 + j] = (uint8_t)((a & 15) | ((b & 15) << 4));
        qh |= (uint32_t)(a >> 4) << j;
        qh |= (uint32_t)(b >> 4) << (j + QK / 2);
    }
    memcpy(y + 2, &qh, 4);
}

static void q5_1_block(const float *x, uint8_t *y) {
    float mn, mx;
    minmax(x, QK, &mn, &mx);
    float d = (mx - mn) / 31, id = d != 0 ? 1.0f / d : 0.0f;
    uint32_t qh = 0;
    f2h(y, d), f2h(y + 2, mn);
    for (int j = 0; j < QK / 2; j++) {
        int a = imin(31, (int)((x[j] - mn) * id + 0.5f));
        int b = imin(31, (int)((x[j + QK / 2] - mn) * id + 0.5f));
        y[8 + j] = (uint8_t)((a & 15) | ((b & 15) << 4));
        qh |= (uint32_t)(a >> 4) << j;
        qh |= (uint32_t)(b >> 4) << (j + QK / 2);
    }
    memcpy(y + 4, &qh, 4);
}

/* ---- K-quant helpers ---- */

/* Asymmetric fit x ≈ scale·L − off with L in [0, nmax], weights w (n ≤ 32): start from the
 * range, then try iscale = (nmax + rmin + rdelta·k)/(max − min) for k = 0..nstep, refit
 * (scale, min) by weighted least squares on each candidate's levels and keep the lowest
 * weighted squared error. Returns scale; *off is −min (≥ 0). */
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *off,
                           float rmin, float rdelta, int nstep) {
    float mn = x[0], mx = x[0], sum_w = w[0], sum_x = w[0] * x[0];
    for (int i = 1; i < n; i++) {
        mn = x[i] < mn ? x[i] : mn;
        mx = x[i] > mx ? x[i] : mx;
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (mn > 0) mn = 0;
    if (mx <= mn) {
        memset(L, 0, (size_t)n);
        *off = -mn;
        return 0.f;
    }
    float iscale = nmax / (mx - mn), scale = 1 / iscale, best = 0;
    for (int i = 0; i < n; i++) {
        int l = imax(0, imin(nmax, nearest(iscale * (x[i] - mn))));
        L[i] = (uint8_t)l;
        float diff = scale * l + mn - x[i];
        best += w[i] * (diff * diff); /* ggml's association: the last bits pick the fit */
    }
    uint8_t Laux[32];
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (mx - mn);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            /* min is the range's at this point, so the product stays within [0, nmax + 1) */
            float v = iscale * (x[i] - mn);
            int l = v > 0 ? nearest(fminf(v, (float)nmax)) : 0;
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) this_min = 0, this_scale = sum_xl / sum_l2;
            float err = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                err += w[i] * (diff * diff);
            }
            if (err < best) {
                memcpy(L, Laux, (size_t)n);
                best = err, scale = this_scale, mn = this_min;
            }
        }
    }
    *off = -mn;
    return scale;
}

/* Symmetric fit x ≈ scale·(L − nmax) with L − nmax in [−nmax, nmax − 1], weights w (x² when
 * NULL): the scale from the signed absmax, then 18 nearby candidates, each refit by least
 * squares. Returns the scale (may be negative); L holds levels + nmax. */
static float fit_scale_sym(int n, int nmax, const float *x, int8_t *L, const float *qw) {
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), max = x[i];
    if (amax < 1e-15f) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = imax(-nmax, imin(nmax - 1, nearest(iscale * x[i])));
        L[i] = (int8_t)(l + nmax);
        float w = qw ? qw[i] : x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f, best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = imax(-nmax, imin(nmax - 1, nearest(iscale * x[i])));
            float w = qw ? qw[i] : x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, nearest(iscale * x[i]))));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Non-negative values x[0..n) as scale·L with L in [0, nmax], weighted (the sub-block scales
 * and mins of Q4_K/Q5_K under an importance vector): best of 9 candidate scales, then
 * coordinate descent on single levels. Returns the scale. */
static float fit_scale_pos(int n, int nmax, const float *x, uint8_t *L, const float *w) {
    float max = 0;
    for (int i = 0; i < n; i++)
        max = fmaxf(max, x[i]);
    if (max < 1e-15f) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = nmax / max, scale = 1 / iscale, best = 0;
    for (int i = 0; i < n; i++) {
        float diff = x[i] - scale * nearest(iscale * x[i]);
        best += w[i] * diff * diff;
    }
    for (int is = -4; is <= 4; is++) {
        if (is == 0) continue;
        float iscale_is = (0.1f * is + nmax) / max, scale_is = 1 / iscale_is, mse = 0;
        for (int i = 0; i < n; i++) {
            int l = imin(nmax, nearest(iscale_is * x[i]));
            float diff = x[i] - scale_is * l;
            mse += w[i] * diff * diff;
        }
        if (mse < best) best = mse, iscale = iscale_is;
    }
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = imin(nmax, nearest(iscale * x[i]));
        L[i] = (uint8_t)l;
        sumlx += w[i] * x[i] * l;
        suml2 += w[i] * l * l;
    }
    for (int it = 0; it < 5; it++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            float slx = sumlx - w[i] * x[i] * L[i], sl2 = suml2 - w[i] * L[i] * L[i];
            if (slx > 0 && sl2 > 0) {
                int nl = imin(nmax, nearest(x[i] * sl2 / slx));
                if (nl != L[i]) {
                    slx += w[i] * x[i] * nl;
                    sl2 += w[i] * nl * nl;
                    if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (uint8_t)nl, sumlx = slx, suml2 = sl2;
                        changed++;
                    }
                }
            }
        }
        if (!changed) break;
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* The 12 scale bytes of Q4_K/Q5_K: sub-blocks 0-3 keep scale and min in the low 6 bits of
 * bytes 0-3 and 4-7; sub-blocks 4-7 keep their low 4 bits in bytes 8-11 and their top 2 bits
 * in the high bits of bytes 0-7. */
static void pack_scale_min(uint8_t *s, const uint8_t *ls, const uint8_t *lm) {
    memset(s, 0, 12);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            s[j] = ls[j];
            s[j + 4] = lm[j];
        } else {
            s[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            s[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            s[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

static void unpack_scale_min(int j, const uint8_t *s, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        *m = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

/* Q4_K (nmax 15) and Q5_K (nmax 31): the levels L[256] of one super-block x, with d, dmin and
 * the scale bytes written at y (d at 0, dmin at 2, scales at 4). */
static void qk_levels(const float *x, uint8_t *y, uint8_t *L, int nmax, const float *qw) {
    float scales[8], mins[8], w[32], sw[8];
    uint8_t ls[8], lm[8];
    float d_block, m_block;
    if (!qw) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 8; j++) {
            const float *xs = x + 32 * j;
            float sum_x2 = 0;
            for (int l = 0; l < 32; l++)
                sum_x2 += xs[l] * xs[l];
            float av_x = sqrtf(sum_x2 / 32);
            for (int l = 0; l < 32; l++)
                w[l] = av_x + fabsf(xs[l]);
            scales[j] = nmax == 15
                            ? fit_scale_min(32, nmax, xs, w, L + 32 * j, &mins[j], -1.f, 0.1f, 20)
                            : fit_scale_min(32, nmax, xs, w, L + 32 * j, &mins[j], -0.5f, 0.1f, 15);
            max_scale = fmaxf(max_scale, scales[j]);
            max_min = fmaxf(max_min, mins[j]);
        }
        float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        for (int j = 0; j < 8; j++) {
            ls[j] = (uint8_t)imin(63, nearest(inv_scale * scales[j]));
            lm[j] = (uint8_t)imin(63, nearest(inv_min * mins[j]));
        }
        d_block = max_scale / 63.f;
        m_block = max_min / 63.f;
    } else {
        float sum_x2 = 0;
        for (int l = 0; l < QKK; l++)
            sum_x2 += x[l] * x[l];
        float sigma2 = 2 * sum_x2 / QKK;
        for (int j = 0; j < 8; j++) {
            const float *xs = x + 32 * j;
            sw[j] = 0;
            for (int l = 0; l < 32; l++) {
                w[l] = qw[32 * j + l] * sqrtf(sigma2 + xs[l] * xs[l]);
                sw[j] += w[l];
            }
            scales[j] = fit_scale_min(32, nmax, xs, w, L + 32 * j, &mins[j], -0.9f, 0.05f, 36);
        }
        d_block = fit_scale_pos(8, 63, scales, ls, sw);
        m_block = fit_scale_pos(8, 63, mins, lm, sw);
    }
    f2h(y, d_block);
    f2h(y + 2, m_block);
    pack_scale_min(y + 4, ls, lm);
    /* Requantize with the scales as stored. */
    float d = h2f(y), dmin = h2f(y + 2);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        unpack_scale_min(j, y + 4, &sc, &m);
        float ds = d * sc;
        if (ds == 0) continue;
        float dm = dmin * m;
        for (int i = 0; i < 32; i++)
            L[32 * j + i] = (uint8_t)imax(0, imin(nmax, nearest((x[32 * j + i] + dm) / ds)));
    }
}

static void q4_k_block(const float *x, uint8_t *y, const float *qw) {
    uint8_t L[QKK];
    qk_levels(x, y, L, 15, qw);
    uint8_t *q = y + 16;
    for (int j = 0; j < QKK; j += 64, q += 32)
        for (int l = 0; l < 32; l++)
            q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
}

static void q5_k_block(const float *x, uint8_t *y, const float *qw) {
    uint8_t L[QKK];
    qk_levels(x, y, L, 31, qw);
    uint8_t *qh = y + 16, *ql = y + 48;
    memset(qh, 0, 32);
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < QKK; n += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
        for (int j = 0; j < 32; j++) {
            int l1 = L[n + j], l2 = L[n + j + 32];
            if (l1 > 15) l1 -= 16, qh[j] |= m1;
            if (l2 > 15) l2 -= 16, qh[j] |= m2;
            ql[j] = (uint8_t)(l1 | (l2 << 4));
        }
    }
}

static void q6_k_block(const float *x, uint8_t *y, const float *qw) {
    int8_t L[QKK];
    float scales[16], max_scale = 0, max_abs = 0;
    uint8_t *ql = y, *qh = y + 128, *sc = y + 192, *dp = y + 208;
    for (int ib = 0; ib < 16; ib++) {
        scales[ib] = fit_scale_sym(16, 32, x + 16 * ib, L + 16 * ib, qw ? qw + 16 * ib : NULL);
        if (fabsf(scales[ib]) > max_abs) max_abs = fabsf(scales[ib]), max_scale = scales[ib];
    }
    if (max_abs < 1e-15f) {
        memset(y, 0, 210);
        return;
    }
    float iscale = -128.f / max_scale;
    f2h(dp, 1 / iscale);
    for (int ib = 0; ib < 16; ib++)
        sc[ib] = (uint8_t)(int8_t)imin(127, nearest(iscale * scales[ib]));
    float d = h2f(dp);
    for (int j = 0; j < 16; j++) {
        float ds = d * (int8_t)sc[j];
        if (ds == 0) continue;
        for (int i = 0; i < 16; i++)
            L[16 * j + i] = (int8_t)(imax(-32, imin(31, nearest(x[16 * j + i] / ds))) + 32);
    }
    for (int j = 0; j < QKK; j += 128, ql += 64, qh += 32) {
        for (int l = 0; l < 32; l++) {
            uint8_t a = (uint8_t)L[j + l], b = (uint8_t)L[j + l + 32];
            uint8_t c = (uint8_t)L[j + l + 64], e = (uint8_t)L[j + l + 96];
            ql[l] = (uint8_t)((a & 0xF) | ((c & 0xF) << 4));
            ql[l + 32] = (uint8_t)((b & 0xF) | ((e & 0xF) << 4));
            qh[l] = (uint8_t)((a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6));
        }
    }
}

/* ---- 32-element formats with an importance vector (llama.cpp's *_impl paths): weights
 * qw·sqrt(σ² + x²) with σ² the row's mean square; Q4_0/Q5_0 fit a symmetric scale, Q4_1/Q5_1
 * a scale and offset, by the same searches as the K-quants. ---- */

static void q4_0_block_w(const float *x, uint8_t *y, const float *qw, float sigma2) {
    float w[QK];
    int8_t L[QK];
    for (int j = 0; j < QK; j++)
        w[j] = qw[j] * sqrtf(sigma2 + x[j] * x[j]);
    f2h(y, fit_scale_sym(QK, 8, x, L, w));
    for (int j = 0; j < 16; j++)
        y[2 + j] = (uint8_t)(L[j] | (L[j + 16] << 4));
}

static void q5_0_block_w(const float *x, uint8_t *y, const float *qw, float sigma2) {
    float w[QK];
    int8_t L[QK];
    uint32_t qh = 0;
    for (int j = 0; j < QK; j++)
        w[j] = qw[j] * sqrtf(sigma2 + x[j] * x[j]);
    f2h(y, fit_scale_sym(QK, 16, x, L, w));
    for (int j = 0; j < 16; j++) {
        uint8_t a = (uint8_t)L[j], b = (uint8_t)L[j + 16];
        y[6 + j] = (uint8_t)((a & 15) | ((b & 15) << 4));
        qh |= (uint32_t)((a & 0x10u) >> 4) << j;
        qh |= (uint32_t)((b & 0x10u) >> 4) << (j + 16);
    }
    memcpy(y + 2, &qh, 4);
}

static void qx_1_block_w(const float *x, uint8_t *y, const float *qw, float sigma2, int nmax) {
    float w[QK], off;
    uint8_t L[QK];
    for (int j = 0; j < QK; j++)
        w[j] = qw[j] * sqrtf(sigma2 + x[j] * x[j]);
    f2h(y, fit_scale_min(QK, nmax, x, w, L, &off, -0.9f, 0.05f, 36));
    f2h(y + 2, -off);
    if (nmax == 15) {
        for (int j = 0; j < 16; j++)
            y[4 + j] = (uint8_t)(L[j] | (L[j + 16] << 4));
        return;
    }
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        y[8 + j] = (uint8_t)((L[j] & 15) | ((L[j + 16] & 15) << 4));
        qh |= (uint32_t)((L[j] & 0x10u) >> 4) << j;
        qh |= (uint32_t)((L[j + 16] & 0x10u) >> 4) << (j + 16);
    }
    memcpy(y + 4, &qh, 4);
}

/* ---- dequantizers ---- */

static void dq_q8_0(const uint8_t *b, float *y) {
    float d = h2f(b);
    for (int j = 0; j < QK; j++)
        y[j] = (int8_t)b[2 + j] * d;
}

static void dq_q4_0(const uint8_t *b, float *y) {
    float d = h2f(b);
    for (int j = 0; j < QK / 2; j++) {
        y[j] = ((b[2 + j] & 0xF) - 8) * d;
        y[j + QK / 2] = ((b[2 + j] >> 4) - 8) * d;
    }
}

static void dq_q4_1(const uint8_t *b, float *y) {
    float d = h2f(b), m = h2f(b + 2);
    for (int j = 0; j < QK / 2; j++) {
        y[j] = (b[4 + j] & 0xF) * d + m;
        y[j + QK / 2] = (b[4 + j] >> 4) * d + m;
    }
}

static void dq_q5_0(const uint8_t *b, float *y) {
    float d = h2f(b);
    uint32_t qh;
    memcpy(&qh, b + 2, 4);
    for (int j = 0; j < QK / 2; j++) {
        int a = (b[6 + j] & 0xF) | (int)(((qh >> j) & 1) << 4);
        int c = (b[6 + j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
        y[j] = (a - 16) * d;
        y[j + QK / 2] = (c - 16) * d;
    }
}

static void dq_q5_1(const uint8_t *b, float *y) {
    float d = h2f(b), m = h2f(b + 2);
    uint32_t qh;
    memcpy(&qh, b + 4, 4);
    for (int j = 0; j < QK / 2; j++) {
        int a = (b[8 + j] & 0xF) | (int)(((qh >> j) & 1) << 4);
        int c = (b[8 + j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
        y[j] = a * d + m;
        y[j + QK / 2] = c * d + m;
    }
}

static void dq_q4_k(const uint8_t *b, float *y) {
    float d = h2f(b), dmin = h2f(b + 2);
    const uint8_t *q = b + 16;
    for (int j = 0, is = 0; j < QKK; j += 64, q += 32, is += 2) {
        uint8_t sc, m;
        unpack_scale_min(is, b + 4, &sc, &m);
        float d1 = d * sc, m1 = dmin * m;
        unpack_scale_min(is + 1, b + 4, &sc, &m);
        float d2 = d * sc, m2 = dmin * m;
        for (int l = 0; l < 32; l++)
            *y++ = d1 * (q[l] & 0xF) - m1;
        for (int l = 0; l < 32; l++)
            *y++ = d2 * (q[l] >> 4) - m2;
    }
}

static void dq_q5_k(const uint8_t *b, float *y) {
    float d = h2f(b), dmin = h2f(b + 2);
    const uint8_t *qh = b + 16, *ql = b + 48;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < QKK; j += 64, ql += 32, is += 2, u1 <<= 2, u2 <<= 2) {
        uint8_t sc, m;
        unpack_scale_min(is, b + 4, &sc, &m);
        float d1 = d * sc, m1 = dmin * m;
        unpack_scale_min(is + 1, b + 4, &sc, &m);
        float d2 = d * sc, m2 = dmin * m;
        for (int l = 0; l < 32; l++)
            *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++)
            *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    }
}

static void dq_q6_k(const uint8_t *b, float *y) {
    float d = h2f(b + 208);
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    for (int n = 0; n < QKK; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * sc[is] * q1;
            y[l + 32] = d * sc[is + 2] * q2;
            y[l + 64] = d * sc[is + 4] * q3;
            y[l + 96] = d * sc[is + 6] * q4;
        }
    }
}

/* Q2_K: scales[16] (low nibble scale, high nibble min), qs[64] (2 bits), f16 d, dmin. */
static void dq_q2_k(const uint8_t *b, float *y) {
    const uint8_t *scales = b, *q = b + 16;
    float d = h2f(b + 80), mn = h2f(b + 82);
    int is = 0;
    for (int n = 0; n < QKK; n += 128, q += 32) {
        for (int shift = 0; shift < 8; shift += 2) {
            for (int half = 0; half < 2; half++) {
                uint8_t sc = scales[is++];
                float dl = d * (sc & 0xF), ml = mn * (sc >> 4);
                for (int l = 0; l < 16; l++)
                    *y++ = dl * ((q[l + 16 * half] >> shift) & 3) - ml;
            }
        }
    }
}

/* Q3_K: hmask[32], qs[64], scales[12] (16 six-bit signed scales), f16 d. */
static void dq_q3_k(const uint8_t *b, float *y) {
    const uint8_t *hm = b, *q = b + 32, *s = b + 96;
    float d_all = h2f(b + 108);
    int8_t scales[16];
    for (int j = 0; j < 16; j++) {
        int lo = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
        int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        scales[j] = (int8_t)((lo | (hi << 4)) - 32);
    }
    int is = 0;
    uint8_t m = 1;
    for (int n = 0; n < QKK; n += 128, q += 32) {
        for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
            for (int half = 0; half < 2; half++) {
                float dl = d_all * scales[is++];
                for (int l = 0; l < 16; l++) {
                    int k = l + 16 * half;
                    *y++ = dl * ((int8_t)((q[k] >> shift) & 3) - ((hm[k] & m) ? 0 : 4));
                }
            }
        }
    }
}

/* ---- dispatch ---- */

int sw_ggml_can_quantize(int type) {
    switch (type) {
    case SW_GGML_F32:
    case SW_GGML_F16:
    case SW_GGML_BF16:
    case SW_GGML_Q8_0:
    case SW_GGML_Q4_0:
    case SW_GGML_Q4_1:
    case SW_GGML_Q5_0:
    case SW_GGML_Q5_1:
    case SW_GGML_Q4_K:
    case SW_GGML_Q5_K:
    case SW_GGML_Q6_K: return 1;
    default: return 0;
    }
}

int sw_ggml_can_dequantize(int type) {
    return sw_ggml_can_quantize(type) || type == SW_GGML_Q2_K || type == SW_GGML_Q3_K;
}

int64_t sw_ggml_check_finite(const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return i;
    return -1;
}

static void quantize_row(int type, const float *x, uint8_t *y, int64_t n, const float *qw) {
    int64_t nb = n / sw_ggml_blck_size(type);
    size_t bs = sw_ggml_type_size(type);
    int64_t blck = sw_ggml_blck_size(type);
    if (qw && (type == SW_GGML_Q4_0 || type == SW_GGML_Q4_1 || type == SW_GGML_Q5_0 ||
               type == SW_GGML_Q5_1)) {
        float sum_x2 = 0;
        for (int64_t j = 0; j < n; j++)
            sum_x2 += x[j] * x[j];
        float sigma2 = sum_x2 / (float)n;
        for (int64_t b = 0; b < nb; b++) {
            const float *xb = x + b * QK, *wb = qw + b * QK;
            uint8_t *yb = y + (size_t)b * bs;
            if (type == SW_GGML_Q4_0)
                q4_0_block_w(xb, yb, wb, sigma2);
            else if (type == SW_GGML_Q5_0)
                q5_0_block_w(xb, yb, wb, sigma2);
            else
                qx_1_block_w(xb, yb, wb, sigma2, type == SW_GGML_Q4_1 ? 15 : 31);
        }
        return;
    }
    for (int64_t b = 0; b < nb; b++) {
        const float *xb = x + b * blck;
        uint8_t *yb = y + (size_t)b * bs;
        const float *wb = qw ? qw + b * blck : NULL;
        switch (type) {
        case SW_GGML_Q8_0: q8_0_block(xb, yb); break;
        case SW_GGML_Q4_0: q4_0_block(xb, yb); break;
        case SW_GGML_Q4_1: q4_1_block(xb, yb); break;
        case SW_GGML_Q5_0: q5_0_block(xb, yb); break;
        case SW_GGML_Q5_1: q5_1_block(xb, yb); break;
        case SW_GGML_Q4_K: q4_k_block(xb, yb, wb); break;
        case SW_GGML_Q5_K: q5_k_block(xb, yb, wb); break;
        case SW_GGML_Q6_K: q6_k_block(xb, yb, wb); break;
        default: break;
        }
    }
}

int sw_ggml_quantize(int type, const float *src, void *dst, int64_t nrows, int64_t n_per_row,
                     const float *imatrix) {
    if (!sw_ggml_can_quantize(type))
        return sw_err_set(SW_EUNSUPPORTED, "cannot quantize to ggml type %s",
                          sw_ggml_type_name(type) ? sw_ggml_type_name(type) : "?");
    size_t row = sw_ggml_row_size(type, n_per_row);
    if (n_per_row <= 0 || row == 0)
        return sw_err_set(SW_EINVAL,
                          "a row of %lld elements is not a multiple of the %s block "
                          "size %lld",
                          (long long)n_per_row, sw_ggml_type_name(type),
                          (long long)sw_ggml_blck_size(type));
    uint8_t *out = dst;
    size_t n = (size_t)(nrows * n_per_row);
    switch (type) {
    case SW_GGML_F32: memcpy(dst, src, n * 4); return 0;
    case SW_GGML_F16: return sw_dtype_convert(SW_DTYPE_F16, dst, SW_DTYPE_F32, src, n);
    case SW_GGML_BF16: return sw_dtype_convert(SW_DTYPE_BF16, dst, SW_DTYPE_F32, src, n);
    default: break;
    }
    /* Q8_0 ignores the importance vector, as in llama.cpp */
    const float *qw = type == SW_GGML_Q8_0 ? NULL : imatrix;
#pragma omp parallel for schedule(dynamic, 16) if (nrows * n_per_row > 65536)
    for (int64_t r = 0; r < nrows; r++)
        quantize_row(type, src + r * n_per_row, out + (size_t)r * row, n_per_row, qw);
    return 0;
}

int sw_ggml_dequantize(int type, const void *src, float *dst, int64_t n) {
    if (!sw_ggml_can_dequantize(type))
        return sw_err_set(SW_EUNSUPPORTED, "cannot dequantize ggml type %s",
                          sw_ggml_type_name(type) ? sw_ggml_type_name(type) : "?");
    int64_t blck = sw_ggml_blck_size(type);
    if (n < 0 || n % blck != 0)
        return sw_err_set(SW_EINVAL, "%lld elements are not a multiple of the %s block size",
                          (long long)n, sw_ggml_type_name(type));
    switch (type) {
    case SW_GGML_F32: memcpy(dst, src, (size_t)n * 4); return 0;
    case SW_GGML_F16: return sw_dtype_convert(SW_DTYPE_F32, dst, SW_DTYPE_F16, src, (size_t)n);
    case SW_GGML_BF16: return sw_dtype_convert(SW_DTYPE_F32, dst, SW_DTYPE_BF16, src, (size_t)n);
    default: break;
    }
    const uint8_t *in = src;
    size_t bs = sw_ggml_type_size(type);
    int64_t nb = n / blck;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *x = in + (size_t)b * bs;
        float *y = dst + b * blck;
        switch (type) {
        case SW_GGML_Q8_0: dq_q8_0(x, y); break;
        case SW_GGML_Q4_0: dq_q4_0(x, y); break;
        case SW_GGML_Q4_1: dq_q4_1(x, y); break;
        case SW_GGML_Q5_0: dq_q5_0(x, y); break;
        case SW_GGML_Q5_1: dq_q5_1(x, y); break;
        case SW_GGML_Q4_K: dq_q4_k(x, y); break;
        case SW_GGML_Q5_K: dq_q5_k(x, y); break;
        case SW_GGML_Q6_K: dq_q6_k(x, y); break;
        case SW_GGML_Q2_K: dq_q2_k(x, y); break;
        case SW_GGML_Q3_K: dq_q3_k(x, y); break;
        default: break;
        }
    }
    return 0;
}
