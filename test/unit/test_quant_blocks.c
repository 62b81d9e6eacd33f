/* test_quant_blocks — sw's ggml block quantizers and dequantizers against gguf-py, and the
 * properties of the K-quants.
 *
 * test/golden/quant/blocks.gguf (written by gguf-py's GGUFWriter from gen_quant.py, so this
 * also reads a file written by the reference writer) holds float rows and their Q8_0, Q4_0,
 * Q4_1, Q5_0, Q5_1 quantizations by `gguf.quants.quantize`: sw's bytes must be identical. It
 * also holds random blocks of every type sw reads (Q4_0 .. Q6_K, Q2_K, Q3_K) with their
 * `gguf.quants.dequantize` values: sw's dequantizer must give exactly those floats.
 * The K-quant quantizers have no reference in gguf-py (its K-quant classes only dequantize);
 * their bytes are compared with llama.cpp's own quantizer in test/cli/quant-gguf.bats where
 * llama-cpp-python is installed. Here they are checked for error bounds against the block's range,
 * for beating the simpler 32-block format of the same bits, for determinism, for all-zero and
 * constant rows, and for the importance vector lowering the error where it asks. */
#include "sw_err.h"
#include "sw_ggml_quant.h"
#include "sw_gguf.h"
#include "tap.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN "test/golden/quant/blocks.gguf"

static const char *const cases[] = {"normal", "wide", "outlier", "zero",   "const",
                                    "negmax", "tie",  "tiny",    "uniform"};
static const int legacy[] = {SW_GGML_Q8_0, SW_GGML_Q4_0, SW_GGML_Q4_1, SW_GGML_Q5_0, SW_GGML_Q5_1};
static const int readable[] = {SW_GGML_Q8_0, SW_GGML_Q4_0, SW_GGML_Q4_1, SW_GGML_Q5_0,
                               SW_GGML_Q5_1, SW_GGML_Q2_K, SW_GGML_Q3_K, SW_GGML_Q4_K,
                               SW_GGML_Q5_K, SW_GGML_Q6_K};

static void lower(char *s) {
    for (; *s; s++)
        *s = (char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
}

static void test_golden(void) {
    struct sw_gguf *g = NULL;
    int rc = sw_gguf_open(GOLDEN, &g);
    if (!OK(rc == 0, "open %s (%s)", GOLDEN, sw_err_msg())) return;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char name[64];
        snprintf(name, sizeof name, "x.%s", cases[c]);
        const struct sw_gguf_tensor *x = sw_gguf_find_tensor(g, name);
        if (!OK(x && x->type == SW_GGML_F32 && x->n_dims == 2, "%s is F32 2-D", name)) continue;
        for (size_t k = 0; k < sizeof legacy / sizeof legacy[0]; k++) {
            char qn[64], tn[16];
            snprintf(tn, sizeof tn, "%s", sw_ggml_type_name(legacy[k]));
            lower(tn);
            snprintf(qn, sizeof qn, "%s.%s", tn, cases[c]);
            const struct sw_gguf_tensor *q = sw_gguf_find_tensor(g, qn);
            if (!OK(q && q->type == legacy[k], "%s present", qn)) continue;
            uint8_t *out = malloc(q->nbytes);
            rc = sw_ggml_quantize(legacy[k], x->data, out, x->ne[1], x->ne[0], NULL);
            size_t diff = 0;
            for (size_t i = 0; i < q->nbytes; i++)
                diff += out[i] != ((const uint8_t *)q->data)[i];
            OK(rc == 0 && diff == 0,
               "%s: sw's bytes equal gguf.quants.quantize (%zu of %zu differ)", qn, diff,
               q->nbytes);
            free(out);
        }
    }
    for (size_t k = 0; k < sizeof readable / sizeof readable[0]; k++) {
        char bn[32], dn[32], tn[16];
        snprintf(tn, sizeof tn, "%s", sw_ggml_type_name(readable[k]));
        lower(tn);
        snprintf(bn, sizeof bn, "blk.%s", tn);
        snprintf(dn, sizeof dn, "deq.%s", tn);
        const struct sw_gguf_tensor *b = sw_gguf_find_tensor(g, bn),
                                    *d = sw_gguf_find_tensor(g, dn);
        if (!OK(b && d && b->type == readable[k] && d->type == SW_GGML_F32, "%s and %s present", bn,
                dn))
            continue;
        int64_t n = sw_gguf_tensor_numel(b);
        float *y = malloc((size_t)n * sizeof *y);
        rc = sw_ggml_dequantize(b->type, b->data, y, n);
        int64_t bad = 0;
        const float *want = d->data;
        for (int64_t i = 0; i < n; i++)
            bad += memcmp(&y[i], &want[i], 4) != 0;
        OK(rc == 0 && n == sw_gguf_tensor_numel(d) && bad == 0,
           "%s: sw's dequantization equals gguf.quants.dequantize bit for bit (%lld of %lld "
           "differ)",
           tn, (long long)bad, (long long)n);
        free(y);
    }
    sw_gguf_close(g);
}

/* Deterministic pseudo-normal numbers (sum of uniforms), no dependence on libc's rand. */
static uint64_t rs = 88172645463325252ull;
static float urand(void) {
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    return (float)((rs >> 11) * (1.0 / 9007199254740992.0));
}
static float nrand(void) {
    float s = 0;
    for (int i = 0; i < 12; i++)
        s += urand();
    return s - 6;
}

/* RMS error of quantize → dequantize of x (rows × n) relative to the RMS of x, weighted by w
 * per column when w is given. */
static double rel_err(int type, const float *x, int64_t rows, int64_t n, const float *imat,
                      const float *w) {
    size_t rb = sw_ggml_row_size(type, n);
    uint8_t *q = malloc(rb * (size_t)rows);
    float *y = malloc((size_t)(rows * n) * sizeof *y);
    if (sw_ggml_quantize(type, x, q, rows, n, imat) != 0 ||
        sw_ggml_dequantize(type, q, y, rows * n) != 0) {
        free(q), free(y);
        return INFINITY;
    }
    double e = 0, s = 0;
    for (int64_t i = 0; i < rows * n; i++) {
        double wi = w ? w[i % n] : 1;
        e += wi * (x[i] - y[i]) * (x[i] - y[i]);
        s += wi * x[i] * x[i];
    }
    free(q), free(y);
    return sqrt(e / s);
}

static void test_kquants(void) {
    const int64_t rows = 64, n = 512;
    float *x = malloc((size_t)(rows * n) * sizeof *x);
    for (int64_t i = 0; i < rows * n; i++)
        x[i] = 0.02f * nrand();
    /* heavier tails in a few columns, as real weights have */
    for (int64_t r = 0; r < rows; r++)
        x[r * n + 7] *= 8, x[r * n + 300] *= -6;
    struct {
        int type;
        double max_err;
        int ref;
    } k[] = {
        {SW_GGML_Q4_K, 0.12, SW_GGML_Q4_0},
        {SW_GGML_Q5_K, 0.06, SW_GGML_Q5_0},
        {SW_GGML_Q6_K, 0.03, SW_GGML_Q8_0},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        const char *tn = sw_ggml_type_name(k[i].type);
        double e = rel_err(k[i].type, x, rows, n, NULL, NULL);
        double eref = rel_err(k[i].ref, x, rows, n, NULL, NULL);
        DIAG("%s relative RMS error %.4f (%s: %.4f)", tn, e, sw_ggml_type_name(k[i].ref), eref);
        OK(e < k[i].max_err, "%s round trip error %.4f < %.2f", tn, e, k[i].max_err);
        if (k[i].type != SW_GGML_Q6_K)
            OK(e < eref, "%s beats %s on the same data (%.4f < %.4f)", tn,
               sw_ggml_type_name(k[i].ref), e, eref);
        /* determinism */
        size_t rb = sw_ggml_row_size(k[i].type, n);
        uint8_t *a = malloc(rb * (size_t)rows), *b = malloc(rb * (size_t)rows);
        sw_ggml_quantize(k[i].type, x, a, rows, n, NULL);
        sw_ggml_quantize(k[i].type, x, b, rows, n, NULL);
        OK(memcmp(a, b, rb * (size_t)rows) == 0, "%s is deterministic (threads included)", tn);
        free(a), free(b);
        /* the importance vector: every fourth column matters 100x more (within each sub-block,
         * since only relative weights inside a sub-block change the fit) */
        float *imat = malloc((size_t)n * sizeof *imat);
        for (int64_t j = 0; j < n; j++)
            imat[j] = j % 4 == 0 ? 100.f : 1.f;
        double ew_plain = rel_err(k[i].type, x, rows, n, NULL, imat);
        double ew_imat = rel_err(k[i].type, x, rows, n, imat, imat);
        DIAG("%s weighted error without / with the importance vector: %.4f / %.4f", tn, ew_plain,
             ew_imat);
        OK(ew_imat < ew_plain, "%s: the importance vector lowers the weighted error (%.4f < %.4f)",
           tn, ew_imat, ew_plain);
        free(imat);
        /* zero and constant rows */
        float z[256] = {0}, c[256], y[256];
        uint8_t qb[256];
        for (int j = 0; j < 256; j++)
            c[j] = -0.75f;
        sw_ggml_quantize(k[i].type, z, qb, 1, 256, NULL);
        sw_ggml_dequantize(k[i].type, qb, y, 256);
        int allz = 1;
        for (int j = 0; j < 256; j++)
            allz &= y[j] == 0;
        OK(allz, "%s: an all-zero row stays zero", tn);
        sw_ggml_quantize(k[i].type, c, qb, 1, 256, NULL);
        sw_ggml_dequantize(k[i].type, qb, y, 256);
        double me = 0;
        for (int j = 0; j < 256; j++)
            me = fmax(me, fabs(y[j] - c[j]));
        OK(me < 0.02, "%s: a constant row comes back within 0.02 (%.5f)", tn, me);
    }
    /* rows that are not whole blocks */
    uint8_t dummy[1024];
    OK(sw_ggml_quantize(SW_GGML_Q4_K, x, dummy, 1, 128, NULL) == SW_EINVAL,
       "Q4_K refuses a row of 128 (not a multiple of 256): %s", sw_err_msg());
    OK(sw_ggml_quantize(SW_GGML_Q8_0, x, dummy, 1, 48, NULL) == SW_EINVAL,
       "Q8_0 refuses a row of 48: %s", sw_err_msg());
    OK(sw_ggml_quantize(SW_GGML_IQ2_XXS, x, dummy, 1, 256, NULL) == SW_EUNSUPPORTED,
       "IQ2_XXS is refused as unsupported: %s", sw_err_msg());
    /* F16 / BF16 rows */
    uint16_t h[4];
    float in[4] = {1.0f, -2.5f, 65504.f, 1e-8f}, back[4];
    sw_ggml_quantize(SW_GGML_F16, in, h, 1, 4, NULL);
    sw_ggml_dequantize(SW_GGML_F16, h, back, 4);
    OK(back[0] == 1.0f && back[1] == -2.5f && back[2] == 65504.f, "F16 rows round trip");
    sw_ggml_quantize(SW_GGML_BF16, in, h, 1, 4, NULL);
    OK(h[0] == 0x3f80 && h[1] == 0xc020, "BF16 rows are the top halves (rounded)");
    float inf[3] = {1, NAN, 2};
    OK(sw_ggml_check_finite(inf, 3) == 1 && sw_ggml_check_finite(in, 4) == -1,
       "check_finite finds the NaN");
    free(x);
}

int main(void) {
    test_golden();
    test_kquants();
    return tap_done();
}
