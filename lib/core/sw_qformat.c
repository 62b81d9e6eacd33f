/* sw_qformat — the quantized-weight formats of sw_qformat.h: the reference dequantizer (also
 * what the CPU backend's quantized matmuls run per tile), the round-to-nearest quantizers the
 * model uses to quantize at load, and bitsandbytes' NF4 constants and blockwise quantizer. */
#include "sw_qformat.h"

#include "sw_dtype.h"
#include "sw_err.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

const char *sw_qfmt_name(int fmt) {
    switch (fmt) {
    case SW_QFMT_INT8: return "int8";
    case SW_QFMT_INT4: return "int4";
    case SW_QFMT_NF4: return "nf4";
    case SW_QFMT_FP8: return "fp8";
    default: return "none";
    }
}

/* bitsandbytes' NF4 code (get_4bit_type("nf4")): quantiles of N(0, 1) scaled to [-1, 1]. */
static const float nf4[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

const float *sw_nf4_code(void) {
    return nf4;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

static float dyn_map[256];
static pthread_once_t dyn_once = PTHREAD_ONCE_INIT;

/* create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8), computed in float32 the
 * way torch does it: for exponent i = 0..6, the midpoints of linspace(0.1, 1, 2^i + 1) scaled
 * by ±10^(i−6); then 0 and 1; sorted. */
static void dyn_map_init(void) {
    int k = 0;
    for (int i = 0; i < 7; i++) {
        int steps = (1 << i) + 1;
        float b[65];
        float start = 0.1f, end = 1.0f, step = (end - start) / (float)(steps - 1);
        int half = steps / 2;
        for (int j = 0; j < steps; j++)
            b[j] = j < half ? start + step * (float)j : end - step * (float)(steps - j - 1);
        float scale = (float)pow(10.0, (double)(i - 6));
        for (int j = 0; j + 1 < steps; j++) {
            float mean = (b[j] + b[j + 1]) / 2.0f;
            dyn_map[k++] = scale * mean;
            dyn_map[k++] = -scale * mean;
        }
    }
    dyn_map[k++] = 0.0f;
    dyn_map[k++] = 1.0f;
    qsort(dyn_map, 256, sizeof *dyn_map, cmp_float);
}

const float *sw_bnb_dynamic_map(void) {
    pthread_once(&dyn_once, dyn_map_init);
    return dyn_map;
}

/* Index of the code value nearest to v (the first one on ties, as torch.argmin). */
static int nearest_code(const float *code, int n, float v) {
    int best = 0;
    float bd = fabsf(v - code[0]);
    for (int k = 1; k < n; k++) {
        float d = fabsf(v - code[k]);
        if (d < bd) bd = d, best = k;
    }
    return best;
}

/* Block absmax and NF4 codes of x [n] (blocks of 64): absmax [ceil(n/64)], packed. */
static void nf4_codes(const float *x, int64_t n, uint8_t *packed, float *absmax) {
    int64_t nb = (n + 63) / 64;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t b = 0; b < nb; b++) {
        int64_t lo = b * 64, hi = lo + 64 < n ? lo + 64 : n;
        float a = 0;
        for (int64_t i = lo; i < hi; i++)
            a = fmaxf(a, fabsf(x[i]));
        absmax[b] = a;
        uint8_t q[64] = {0};
        for (int64_t i = lo; i < hi; i++)
            q[i - lo] = a > 0 ? (uint8_t)nearest_code(nf4, 16, x[i] / a) : 0;
        /* lo is even: the block owns its bytes. */
        for (int64_t i = lo; i < hi; i += 2)
            packed[i / 2] = (uint8_t)((q[i - lo] << 4) | (i + 1 < hi ? q[i + 1 - lo] : 0));
    }
}

/* bitsandbytes' double quantization of absmax [nb]: 8-bit blockwise (256) of absmax − mean. */
static void nf4_double(const float *absmax, int64_t nb, uint8_t *qabsmax, float *nested_absmax,
                       float *offset) {
    double sum = 0;
    for (int64_t b = 0; b < nb; b++)
        sum += absmax[b];
    float off = (float)(sum / (double)(nb ? nb : 1));
    const float *dm = sw_bnb_dynamic_map();
    int64_t nn = (nb + 255) / 256;
    for (int64_t c = 0; c < nn; c++) {
        int64_t lo = c * 256, hi = lo + 256 < nb ? lo + 256 : nb;
        float a = 0;
        for (int64_t b = lo; b < hi; b++)
            a = fmaxf(a, fabsf(absmax[b] - off));
        nested_absmax[c] = a;
        float inv = a > 0 ? 1.0f / a : 0.0f;
        for (int64_t b = lo; b < hi; b++) {
            float v = (absmax[b] - off) * inv;
            v = v < -1 ? -1 : v > 1 ? 1 : v;
            qabsmax[b] = (uint8_t)nearest_code(dm, 256, v);
        }
    }
    *offset = off;
}

int sw_nf4_quantize(const float *x, int64_t n, uint8_t *packed, uint8_t *qabsmax,
                    float *nested_absmax, float *offset) {
    int64_t nb = (n + 63) / 64;
    float *absmax = malloc((size_t)(nb ? nb : 1) * sizeof *absmax);
    if (!absmax) return sw_err_set(SW_ENOMEM, "nf4: out of memory for %lld blocks", (long long)nb);
    nf4_codes(x, n, packed, absmax);
    nf4_double(absmax, nb, qabsmax, nested_absmax, offset);
    free(absmax);
    return 0;
}

void sw_nf4_dequantize(const uint8_t *packed, const uint8_t *qabsmax, const float *nested_absmax,
                       float offset, int64_t n, float *y) {
    const float *dm = sw_bnb_dynamic_map();
    for (int64_t i = 0; i < n; i++) {
        int64_t b = i / 64;
        float a = dm[qabsmax[b]] * nested_absmax[b / 256] + offset;
        int q = i % 2 == 0 ? packed[i / 2] >> 4 : packed[i / 2] & 15;
        y[i] = nf4[q] * a;
    }
}

size_t sw_qweight_nbytes(const struct sw_qweight *q) {
    size_t n = (size_t)(q->rows * q->cols), f = sizeof(float);
    switch (q->fmt) {
    case SW_QFMT_INT8:
    case SW_QFMT_INT4: {
        size_t s = (size_t)(q->rows * q->ngroups) * f * (q->zero ? 2 : 1);
        if (q->g_idx) s += (size_t)q->cols * sizeof(int32_t);
        return (q->fmt == SW_QFMT_INT8 ? n : (n + 1) / 2) + s;
    }
    case SW_QFMT_NF4:
        return (n + 1) / 2 + 16 * f +
               (q->qabsmax ? (size_t)q->ngroups + (size_t)((q->ngroups + 255) / 256) * f + 256 * f
                           : (size_t)q->ngroups * f);
    case SW_QFMT_FP8: return n + (size_t)q->rows * f;
    default: return 0;
    }
}

/* E4M3 decoded once (a table lookup per weight instead of a bit decode). */
static float fp8_table[256];
static pthread_once_t fp8_once = PTHREAD_ONCE_INIT;
static void fp8_init(void) {
    for (int b = 0; b < 256; b++)
        fp8_table[b] = sw_fp8_e4m3_to_f32((uint8_t)b);
}

/* NF4 block absmax of block b. */
static inline float nf4_absmax(const struct sw_qweight *q, int64_t b) {
    if (!q->qabsmax) return q->scale[b];
    return q->nested_map[q->qabsmax[b]] * q->nested_absmax[b / 256] + q->nested_offset;
}

void sw_qweight_dequant_span(const struct sw_qweight *q, int64_t r, int64_t c0, int64_t c1,
                             float *out) {
    int64_t cols = q->cols;
    switch (q->fmt) {
    case SW_QFMT_INT8:
    case SW_QFMT_INT4: {
        const float *sc = q->scale + r * q->ngroups;
        const float *zr = q->zero ? q->zero + r * q->ngroups : NULL;
        const uint8_t *row = q->q + r * (q->fmt == SW_QFMT_INT8 ? cols : cols / 2);
        for (int64_t c = c0; c < c1;) {
            int64_t g = q->g_idx ? q->g_idx[c] : c / q->group;
            /* Columns of the same group in a run (all of them without g_idx). */
            int64_t end = q->g_idx ? c + 1 : (g + 1) * q->group;
            if (end > c1) end = c1;
            float s = sc[g], z = zr ? zr[g] : q->zero_const;
            if (q->fmt == SW_QFMT_INT8)
                for (int64_t k = c; k < end; k++)
                    out[k - c0] = s * ((float)row[k] - z);
            else
                for (int64_t k = c; k < end; k++) {
                    uint8_t byte = row[k >> 1];
                    out[k - c0] = s * ((float)((k & 1) ? byte >> 4 : byte & 15) - z);
                }
            c = end;
        }
        break;
    }
    case SW_QFMT_NF4: {
        int64_t i0 = r * cols + c0, i1 = r * cols + c1;
        for (int64_t i = i0; i < i1;) {
            int64_t b = i / q->group, end = (b + 1) * q->group;
            if (end > i1) end = i1;
            float a = nf4_absmax(q, b);
            for (int64_t k = i; k < end; k++) {
                uint8_t byte = q->q[k >> 1];
                out[k - i0] = q->code[(k & 1) ? byte & 15 : byte >> 4] * a;
            }
            i = end;
        }
        break;
    }
    case SW_QFMT_FP8: {
        pthread_once(&fp8_once, fp8_init);
        float s = q->scale[r];
        const uint8_t *row = q->q + r * cols;
        for (int64_t k = c0; k < c1; k++)
            out[k - c0] = fp8_table[row[k]] * s;
        break;
    }
    default:
        for (int64_t k = c0; k < c1; k++)
            out[k - c0] = 0.0f;
    }
}

void sw_qweight_dequant_rows(const struct sw_qweight *q, int64_t r0, int64_t n, float *out) {
    for (int64_t r = 0; r < n; r++)
        sw_qweight_dequant_span(q, r0 + r, 0, q->cols, out + r * q->cols);
}

void sw_qweight_free_host(struct sw_qweight *q) {
    if (!q) return;
    free(q->q), free(q->scale), free(q->zero), free(q->g_idx), free(q->code), free(q->qabsmax);
    free(q->nested_absmax), free(q->nested_map);
    memset(q, 0, sizeof *q);
}

/* GPTQ's round-to-nearest of one group x[g] (sw_gptq_pack's arithmetic): the f16-rounded scale,
 * the zero point and the codes. */
static void rtn_group(const float *x, int64_t g, int bits, int sym, float *scale, float *zero,
                      uint8_t *codes) {
    uint32_t maxq = (1u << bits) - 1;
    float mn = 0, mx = 0;
    for (int64_t i = 0; i < g; i++)
        mn = fminf(mn, x[i]), mx = fmaxf(mx, x[i]);
    if (sym) mx = fmaxf(-mn, mx), mn = -mx;
    if (mn == 0 && mx == 0) mn = -1, mx = 1;
    uint16_t s16 = sw_f32_to_f16((mx - mn) / (float)maxq);
    float s = sw_f16_to_f32(s16);
    if (!(s > 0)) s = sw_f16_to_f32(1); /* below the smallest half */
    int z;
    if (sym)
        z = (int)((maxq + 1) / 2);
    else {
        z = (int)nearbyintf(-mn / s);
        z = z < 1 ? 1 : z > (int)maxq ? (int)maxq : z;
    }
    *scale = s;
    *zero = (float)z;
    for (int64_t i = 0; i < g; i++) {
        float v = nearbyintf(x[i] / s) + (float)z;
        codes[i] = (uint8_t)(v < 0 ? 0 : v > (float)maxq ? maxq : (uint32_t)v);
    }
}

static int quant_int(const float *w, int64_t rows, int64_t cols, int bits, int64_t group, int sym,
                     struct sw_qweight *o) {
    if (group <= 0 || group > cols) group = cols; /* a group wider than the row is the row */
    if (cols % group != 0)
        return sw_err_set(SW_EINVAL, "rows of %lld are not divisible by the group size %lld",
                          (long long)cols, (long long)group);
    if (bits == 4 && cols % 2 != 0)
        return sw_err_set(SW_EINVAL, "int4 needs an even number of columns, not %lld",
                          (long long)cols);
    o->fmt = bits == 8 ? SW_QFMT_INT8 : SW_QFMT_INT4;
    o->group = group;
    o->ngroups = cols / group;
    size_t nq = (size_t)(bits == 8 ? rows * cols : rows * cols / 2);
    o->q = malloc(nq ? nq : 1);
    o->scale = malloc((size_t)(rows * o->ngroups) * sizeof(float) + 1);
    if (!sym) o->zero = malloc((size_t)(rows * o->ngroups) * sizeof(float) + 1);
    o->zero_const = sym ? (float)(1u << (bits - 1)) : 0.0f;
    uint8_t *tmp = malloc((size_t)(rows * cols) + 1);
    if (!o->q || !o->scale || (!sym && !o->zero) || !tmp) {
        free(tmp);
        return sw_err_set(SW_ENOMEM, "quantize: out of memory for a [%lld, %lld] weight",
                          (long long)rows, (long long)cols);
    }
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t gi = 0; gi < o->ngroups; gi++) {
            float z;
            rtn_group(w + r * cols + gi * group, group, bits, sym, &o->scale[r * o->ngroups + gi],
                      &z, tmp + r * cols + gi * group);
            if (o->zero) o->zero[r * o->ngroups + gi] = z;
        }
    if (bits == 8)
        memcpy(o->q, tmp, nq);
    else
        for (size_t i = 0; i < nq; i++)
            o->q[i] = (uint8_t)(tmp[2 * i] | (tmp[2 * i + 1] << 4));
    free(tmp);
    return 0;
}

static int quant_nf4(const float *w, int64_t n, int double_quant, struct sw_qweight *o) {
    int64_t nb = (n + 63) / 64, nn = (nb + 255) / 256;
    o->fmt = SW_QFMT_NF4;
    o->group = 64;
    o->ngroups = nb;
    o->q = malloc((size_t)(n + 1) / 2 + 1);
    o->code = malloc(16 * sizeof(float));
    o->scale = malloc((size_t)nb * sizeof(float) + 1);
    if (!o->q || !o->code || !o->scale) goto oom;
    memcpy(o->code, nf4, sizeof nf4);
    nf4_codes(w, n, o->q, o->scale);
    if (!double_quant) return 0;
    o->qabsmax = malloc((size_t)nb + 1);
    o->nested_absmax = malloc((size_t)nn * sizeof(float) + 1);
    o->nested_map = malloc(256 * sizeof(float));
    if (!o->qabsmax || !o->nested_absmax || !o->nested_map) goto oom;
    memcpy(o->nested_map, sw_bnb_dynamic_map(), 256 * sizeof(float));
    nf4_double(o->scale, nb, o->qabsmax, o->nested_absmax, &o->nested_offset);
    free(o->scale);
    o->scale = NULL;
    return 0;
oom:
    return sw_err_set(SW_ENOMEM, "quantize: out of memory for %lld NF4 values", (long long)n);
}

static int quant_fp8(const float *w, int64_t rows, int64_t cols, struct sw_qweight *o) {
    o->fmt = SW_QFMT_FP8;
    o->group = cols;
    o->ngroups = 1;
    o->q = malloc((size_t)(rows * cols) + 1);
    o->scale = malloc((size_t)rows * sizeof(float) + 1);
    if (!o->q || !o->scale)
        return sw_err_set(SW_ENOMEM, "quantize: out of memory for a [%lld, %lld] weight",
                          (long long)rows, (long long)cols);
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
    for (int64_t r = 0; r < rows; r++) {
        const float *x = w + r * cols;
        float a = 0;
        for (int64_t c = 0; c < cols; c++)
            a = fmaxf(a, fabsf(x[c]));
        float s = a > 0 ? a / 448.0f : 1.0f;
        o->scale[r] = s;
        for (int64_t c = 0; c < cols; c++)
            o->q[r * cols + c] = sw_f32_to_fp8_e4m3_sat(x[c] / s);
    }
    return 0;
}

int sw_qweight_quantize(const float *w, int64_t rows, int64_t cols, int fmt, int64_t group, int sym,
                        int double_quant, struct sw_qweight *out) {
    memset(out, 0, sizeof *out);
    out->rows = rows;
    out->cols = cols;
    int rc;
    switch (fmt) {
    case SW_QFMT_INT8: rc = quant_int(w, rows, cols, 8, group, sym, out); break;
    case SW_QFMT_INT4: rc = quant_int(w, rows, cols, 4, group, sym, out); break;
    case SW_QFMT_NF4: rc = quant_nf4(w, rows * cols, double_quant, out); break;
    case SW_QFMT_FP8: rc = quant_fp8(w, rows, cols, out); break;
    default: rc = sw_err_set(SW_EINVAL, "quantize: unknown format %d", fmt);
    }
    if (rc < 0) sw_qweight_free_host(out);
    return rc;
}
