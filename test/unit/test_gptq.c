/* test_gptq — GPTQ on one matrix and the GPTQ / AWQ packers of sw-quant quantize.
 *
 * - Reference: test/golden/quant/gptq.safetensors (gen_gptq.py: a numpy transcription of
 *   AutoGPTQ's fasterquant) — for five cases (4-bit g32 sym act-order, g64 asym, g32 sym with
 *   groups starting inside a block, 8-bit per-row, g64 asym act-order) the codes, zero points and
 *   g_idx are identical, the scales equal to 1e-6 relative and the dequantized weights within
 *   1e-5.
 * - Quality: on a synthetic layer with correlated, unevenly scaled input channels, GPTQ's output
 *   error tr((W − Ŵ) H (W − Ŵ)ᵀ) is below round-to-nearest's at the same bits and group size by
 *   a margin, on the calibration inputs and on held-out inputs of the same distribution.
 * - Packing: GPTQ codes round-trip through sw_gptq_unpack (act-order g_idx included); AutoAWQ's
 *   GEMM packing equals the reference packer's int32 words byte for byte (golden) and unpacks to
 *   (q − zero) · scale; AWQ's pseudo-quantizer and clipping search behave as AutoAWQ's. */
#include "sw_awq.h"
#include "sw_dtype.h"
#include "sw_err.h"
#include "sw_gptq.h"
#include "sw_quant_hf.h"
#include "sw_safetensors.h"
#include "tap.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN "test/golden/quant/gptq.safetensors"

static const void *get(const struct sw_st_file *f, const char *name, int64_t *n) {
    const struct sw_st_entry *e = sw_st_find(f, name);
    if (!e) return NULL;
    if (n) {
        *n = 1;
        for (int d = 0; d < e->ndim; d++)
            *n *= e->shape[d];
    }
    return e->data;
}

static void test_golden(void) {
    struct sw_st_file *f = NULL;
    if (sw_st_open(GOLDEN, &f) < 0) {
        OK(0, "open %s: %s", GOLDEN, sw_err_msg());
        return;
    }
    enum { OUT = 32, IN = 192 };
    const float *w = get(f, "W", NULL), *hf = get(f, "H", NULL);
    double *H = malloc(sizeof(double) * IN * IN);
    for (int i = 0; i < IN * IN; i++)
        H[i] = hf[i];
    static const struct {
        const char *name;
        int bits, g, sym, act, bs;
    } cases[] = {{"g32_sym_act", 4, 32, 1, 1, 128},
                 {"g64_asym", 4, 64, 0, 0, 64},
                 {"g32_stale", 4, 32, 1, 0, 128},
                 {"c8_sym", 8, -1, 1, 0, 64},
                 {"g64_asym_act", 4, 64, 0, 1, 128}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct sw_gptq_opts o = {cases[c].bits, cases[c].g, cases[c].sym,
                                 cases[c].act,  0.01,       cases[c].bs};
        struct sw_gptq_result r;
        int rc = sw_gptq_quantize(w, OUT, IN, H, &o, &r);
        if (!OK(rc == 0, "%s: quantize (%s)", cases[c].name, sw_err_msg())) continue;
        char k[64];
        int64_t ns = 0;
        snprintf(k, sizeof k, "%s.q", cases[c].name);
        const uint8_t *q = get(f, k, NULL);
        int qdiff = 0;
        for (int i = 0; i < OUT * IN; i++)
            qdiff += q[i] != r.q[i];
        OK(qdiff == 0, "%s: codes identical to the reference (%d differ)", cases[c].name, qdiff);
        snprintf(k, sizeof k, "%s.scales", cases[c].name);
        const float *sc = get(f, k, &ns);
        snprintf(k, sizeof k, "%s.zeros", cases[c].name);
        const int32_t *zr = get(f, k, NULL);
        double srel = 0;
        int zdiff = 0;
        OK(ns == r.ngroups * OUT, "%s: %lld groups x %d rows of scales", cases[c].name,
           (long long)r.ngroups, OUT);
        for (int64_t i = 0; i < ns && ns == r.ngroups * OUT; i++) {
            srel = fmax(srel, fabs(sc[i] - r.scales[i]) / fabs(sc[i]));
            zdiff += zr[i] != r.zeros[i];
        }
        OK(srel < 1e-6 && zdiff == 0, "%s: scales within %.1e relative, zero points identical",
           cases[c].name, srel);
        snprintf(k, sizeof k, "%s.g_idx", cases[c].name);
        const int32_t *gi = get(f, k, NULL);
        OK(!memcmp(gi, r.g_idx, sizeof(int32_t) * IN), "%s: g_idx identical", cases[c].name);
        snprintf(k, sizeof k, "%s.deq", cases[c].name);
        const float *dq = get(f, k, NULL);
        double dmax = 0;
        for (int i = 0; i < OUT * IN; i++)
            dmax = fmax(dmax, fabs(dq[i] - r.deq[i]));
        OK(dmax < 1e-5, "%s: dequantized weights within %.1e of the reference", cases[c].name,
           dmax);
        if (cases[c].bits == 4 && cases[c].act) {
            /* the v1 packing of act-order codes unpacks to f16(scale) · (q − zero) */
            int32_t *qw = malloc(sizeof(int32_t) * IN / 8 * OUT);
            int32_t *qz = malloc(sizeof(int32_t) * r.ngroups * OUT / 8);
            uint16_t *s16 = malloc(2 * r.ngroups * OUT);
            float *back = malloc(sizeof(float) * OUT * IN);
            OK(sw_gptq_pack_codes(&r, 4, qw, qz, s16) == 0, "%s: pack", cases[c].name);
            sw_gptq_unpack(qw, qz, s16, r.g_idx, OUT, IN, 4, r.ngroups, back);
            int exact = 1;
            for (int j = 0; j < OUT; j++)
                for (int i = 0; i < IN; i++) {
                    int64_t gg = r.g_idx[i];
                    float want = sw_f16_to_f32(s16[gg * OUT + j]) *
                                 (float)(r.q[j * IN + i] - r.zeros[gg * OUT + j]);
                    exact &= back[j * IN + i] == want;
                }
            OK(exact, "%s: GPTQ v1 packing with act-order g_idx round-trips", cases[c].name);
            free(qw), free(qz), free(s16), free(back);
        }
        sw_gptq_result_release(&r);
    }
    /* AutoAWQ's GEMM packing, byte for byte */
    int64_t nq = 0;
    const uint8_t *aq = get(f, "awq.q", NULL);
    const int32_t *az = get(f, "awq.zeros", NULL), *aqw = get(f, "awq.qweight", &nq),
                  *aqz = get(f, "awq.qzeros", NULL);
    const float *as = get(f, "awq.scales", NULL);
    const uint16_t *as16 = get(f, "awq.scales16", NULL);
    enum { G = 64 };
    int32_t qw[IN * OUT / 8], qz[IN / G * OUT / 8];
    uint16_t s16[IN / G * OUT];
    OK(nq == IN * OUT / 8, "AWQ qweight golden is [%d, %d]", IN, OUT / 8);
    OK(sw_awq_pack(aq, az, as, OUT, IN, G, qw, qz, s16) == 0, "AWQ pack");
    OK(!memcmp(qw, aqw, sizeof qw), "AWQ qweight equals AutoAWQ's packer byte for byte");
    OK(!memcmp(qz, aqz, sizeof qz), "AWQ qzeros equals AutoAWQ's packer byte for byte");
    OK(!memcmp(s16, as16, sizeof s16), "AWQ scales f16 equal");
    float *back = malloc(sizeof(float) * OUT * IN);
    sw_awq_unpack(qw, qz, s16, OUT, IN, G, back);
    int exact = 1;
    for (int r = 0; r < OUT; r++)
        for (int i = 0; i < IN; i++)
            exact &= back[r * IN + i] == sw_f16_to_f32(s16[(i / G) * OUT + r]) *
                                             (float)(aq[r * IN + i] - az[(i / G) * OUT + r]);
    OK(exact, "AWQ unpack gives (q - zero) * scale for every element");
    free(back);
    free(H);
    sw_st_close(f);
}

static uint64_t rs = 0x2545F4914F6CDD1Dull;
static double nrand(void) {
    double u = 0;
    for (int k = 0; k < 12; k++) {
        rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
        u += (double)(rs >> 11) * (1.0 / 9007199254740992.0);
    }
    return u - 6;
}

/* X [n, in]: correlated neighbours and channel scales over two orders of magnitude, the
 * activation statistics of a transformer's linear inputs in miniature. H = 2 XᵀX / n. */
static void make_h(int64_t n, int64_t in, const double *chs, double *H) {
    double *x = malloc(sizeof(double) * (size_t)(n * in)), *z = malloc(sizeof(double) * in);
    for (int64_t t = 0; t < n; t++) {
        for (int64_t i = 0; i < in; i++)
            z[i] = nrand();
        double common = nrand();
        for (int64_t i = 0; i < in; i++)
            x[t * in + i] = chs[i] * (z[i] + 0.7 * (i + 1 < in ? z[i + 1] : 0) + 0.5 * common);
    }
    for (int64_t a = 0; a < in; a++)
        for (int64_t b = 0; b <= a; b++) {
            double s = 0;
            for (int64_t t = 0; t < n; t++)
                s += x[t * in + a] * x[t * in + b];
            H[a * in + b] = H[b * in + a] = 2 * s / (double)n;
        }
    free(x), free(z);
}

static void test_quality(void) {
    enum { OUT = 64, IN = 256, N = 1024 };
    float *w = malloc(sizeof(float) * OUT * IN), *rtn = malloc(sizeof(float) * OUT * IN);
    double *chs = malloc(sizeof(double) * IN), *H = malloc(sizeof(double) * IN * IN),
           *Ht = malloc(sizeof(double) * IN * IN);
    for (int i = 0; i < IN; i++)
        chs[i] = exp(2.3 * (nrand() / 1.0) * 0.5) * (i % 37 == 0 ? 8 : 1);
    for (int i = 0; i < OUT * IN; i++)
        w[i] = (float)(0.05 * nrand());
    make_h(N, IN, chs, H);
    make_h(N, IN, chs, Ht); /* held-out inputs of the same distribution */
    static const struct {
        int bits, g, act;
        double margin;
    } cases[] = {{4, 128, 1, 0.8}, {4, 128, 0, 0.85}, {4, 32, 1, 0.85}, {8, -1, 1, 0.85}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int bits = cases[c].bits;
        int64_t g = cases[c].g > 0 ? cases[c].g : IN;
        int32_t *qw = malloc(sizeof(int32_t) * IN * OUT), *qz = malloc(sizeof(int32_t) * IN * OUT),
                *gi = malloc(sizeof(int32_t) * IN);
        uint16_t *sc = malloc(2 * IN * OUT);
        OK(sw_gptq_pack(w, OUT, IN, bits, g, 1, qw, qz, sc, gi) == 0, "rtn %d-bit g%d", bits,
           cases[c].g);
        sw_gptq_unpack(qw, qz, sc, gi, OUT, IN, bits, IN / g, rtn);
        struct sw_gptq_opts o = {bits, cases[c].g, 1, cases[c].act, 0.01, 128};
        struct sw_gptq_result r;
        if (!OK(sw_gptq_quantize(w, OUT, IN, H, &o, &r) == 0, "gptq (%s)", sw_err_msg())) continue;
        double e_rtn = sw_gptq_output_error(w, rtn, OUT, IN, H),
               e_gptq = sw_gptq_output_error(w, r.deq, OUT, IN, H),
               h_rtn = sw_gptq_output_error(w, rtn, OUT, IN, Ht),
               h_gptq = sw_gptq_output_error(w, r.deq, OUT, IN, Ht);
        OK(e_gptq < cases[c].margin * e_rtn,
           "%d-bit g%d%s: GPTQ output error %.4g < %.2f x RTN's %.4g (calibration inputs)", bits,
           cases[c].g, cases[c].act ? " act-order" : "", e_gptq, cases[c].margin, e_rtn);
        OK(h_gptq < cases[c].margin * h_rtn,
           "%d-bit g%d%s: GPTQ output error %.4g < %.2f x RTN's %.4g (held-out inputs)", bits,
           cases[c].g, cases[c].act ? " act-order" : "", h_gptq, cases[c].margin, h_rtn);
        sw_gptq_result_release(&r);
        free(qw), free(qz), free(gi), free(sc);
    }
    /* errors */
    struct sw_gptq_opts bad = {4, 100, 1, 0, 0.01, 128};
    struct sw_gptq_result r;
    OK(sw_gptq_quantize(w, OUT, IN, H, &bad, &r) == SW_EINVAL &&
           strstr(sw_err_msg(), "not divisible by the group size 100"),
       "a group size that does not divide the row is SW_EINVAL (%s)", sw_err_msg());
    /* a singular Hessian (one input direction) factors after raising the damping */
    for (int a = 0; a < IN; a++)
        for (int b = 0; b < IN; b++)
            H[a * IN + b] = 1.0;
    struct sw_gptq_opts o = {4, 128, 1, 0, 0.0, 128};
    int rc = sw_gptq_quantize(w, OUT, IN, H, &o, &r);
    OK(rc == 0 && r.damp > 0, "a rank-1 Hessian with damp 0 factors after raising it to %.4f",
       r.damp);
    if (rc == 0) sw_gptq_result_release(&r);
    free(w), free(rtn), free(chs), free(H), free(Ht);
}

static void test_awq_parts(void) {
    /* pseudo-quantization: the group's own min/max, zero = -round(min/scale) */
    float w[8] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 1.6f}, wq[8], s;
    int32_t z;
    uint8_t q[8];
    sw_awq_pseudo_quant(w, 1, 8, 4, 8, wq, q, &s, &z);
    IS_NEAR(s, 1.5f / 15, 1e-7, "AWQ scale = (max - min) / 15 without forcing 0 in");
    OK(z == 0, "zero = clamp(-round(min / scale), 0, 15) = %d", z);
    OK(q[0] == 1 && q[7] == 15, "codes round(w / scale) + zero: %d .. %d", q[0], q[7]);
    float w2[8] = {-0.3f, -0.1f, 0.0f, 0.2f, 0.4f, 0.6f, 0.8f, 1.2f};
    sw_awq_pseudo_quant(w2, 1, 8, 4, 8, wq, q, &s, &z);
    OK(z == 3 && q[0] == 0 && q[7] == 15 && fabsf(wq[3] - 0.2f) < 1e-6f,
       "a group over [-0.3, 1.2]: zero 3, min -> 0, max -> 15, 0.2 exact");
    /* clipping: an outlier in a group is clipped when that lowers the output error */
    enum { O = 8, I = 64, T = 256 };
    float *wc = malloc(sizeof(float) * O * I), *x = malloc(sizeof(float) * T * I);
    for (int i = 0; i < O * I; i++)
        wc[i] = (float)(0.02 * nrand());
    wc[5] = 0.5f; /* row 0: one outlier weight on an input that is always ~0 */
    for (int t = 0; t < T; t++)
        for (int i = 0; i < I; i++)
            x[t * I + i] = i == 5 ? 1e-4f * (float)nrand() : (float)nrand();
    sw_awq_clip(wc, O, I, x, T, 4, I);
    OK(wc[5] < 0.5f && wc[5] >= 0.25f, "the outlier is clipped to %.3f (bound >= 0.5 x max)",
       wc[5]);
    free(wc), free(x);
    /* ratio scales: normalised so that max · min = 1 */
    float xm[4] = {1, 2, 4, 8}, wm[4] = {0.5f, 0.5f, 0.5f, 0.5f}, sc[4];
    sw_awq_ratio_scales(xm, wm, 4, 0.5, sc);
    IS_NEAR(sc[0] * sc[3], 1.0, 1e-5, "scales normalised: max x min = 1");
    IS_NEAR(sc[3] / sc[0], sqrtf(8.0f), 1e-4, "alpha 0.5: s ~ x_mean^0.5");
}

int main(void) {
    test_golden();
    test_quality();
    test_awq_parts();
    return tap_done();
}
