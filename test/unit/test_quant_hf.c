/* test_quant_hf — the GPTQ packer and the FP8 quantizer of sw-quant quantize.
 *
 * Bit positions are checked on a hand-made matrix (row r of column j at bits (r % 8)·4 of word
 * (r / 8, j) for 4 bits; zero − 1 packed along the output dimension), the packer round-trips
 * through sw_gptq_unpack to exactly scale·(q − zero) for every element, the round-trip error
 * of random weights stays within half a step, asymmetric zero points stay in [1, 15], shapes
 * that do not divide are refused, and FP8 per-channel / per-tensor scales map the largest
 * magnitude to 448. The reference-layout readers (numpy re-implementations of AutoGPTQ's and
 * compressed-tensors' code) run in test/cli/quant-hf.bats. */
#include "sw_dtype.h"
#include "sw_err.h"
#include "sw_quant_hf.h"
#include "tap.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static float urand(void) {
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    return (float)((rs >> 11) * (1.0 / 9007199254740992.0)) * 2 - 1;
}

int main(void) {
    /* 8 outputs x 16 inputs, group 8: column j row i = (i - 8) * (j + 1) / 100 */
    enum { OUT = 8, IN = 16, G = 8 };
    float w[OUT * IN], back[OUT * IN];
    for (int j = 0; j < OUT; j++)
        for (int i = 0; i < IN; i++)
            w[j * IN + i] = (float)(i - 8) * (float)(j + 1) / 100.f;
    int32_t qw[IN / 8 * OUT], qz[IN / G * OUT / 8], gi[IN];
    uint16_t sc[IN / G * OUT];
    int rc = sw_gptq_pack(w, OUT, IN, 4, G, 1, qw, qz, sc, gi);
    OK(rc == 0, "pack 8x16 g8 (%s)", sw_err_msg());
    /* column 0, group 0: values -8..-1 (/100): absmax 0.08, scale 0.16/15, zero 8 */
    float s0 = sw_f16_to_f32(sc[0]);
    IS_NEAR(s0, 0.16f / 15, 1e-3, "scale of column 0 group 0 is 2*absmax/15");
    uint32_t word = (uint32_t)qw[0];
    int ok = 1;
    for (int r = 0; r < 8; r++) {
        int q = (int)((word >> (4 * r)) & 15);
        int want = (int)nearbyintf(w[r] / s0) + 8;
        ok &= q == (want < 0 ? 0 : want > 15 ? 15 : want);
    }
    OK(ok, "rows 0..7 of column 0 sit at bits 0, 4, .., 28 of word (0, 0)");
    OK((uint32_t)qz[0] == 0x77777777u,
       "symmetric zero points stored as 7 (v1: zero - 1), 8 per word");
    OK(gi[0] == 0 && gi[7] == 0 && gi[8] == 1 && gi[15] == 1, "g_idx = i / group");
    sw_gptq_unpack(qw, qz, sc, gi, OUT, IN, 4, IN / G, back);
    int exact = 1;
    for (int j = 0; j < OUT; j++)
        for (int i = 0; i < IN; i++) {
            float s = sw_f16_to_f32(sc[(i / G) * OUT + j]);
            int q = (int)nearbyintf(w[j * IN + i] / s) + 8;
            q = q < 0 ? 0 : q > 15 ? 15 : q;
            exact &= back[j * IN + i] == s * (float)(q - 8);
        }
    OK(exact, "unpack gives scale * (q - zero) for every element");

    /* random weights, 4 and 8 bits, sym and asym: error within about half a step. Not exactly:
     * symmetric GPTQ puts the largest magnitude at 7.5 steps with levels -8..7 (it clamps), and
     * the scale is stored rounded to f16, so the extremes can land a little past half a step. */
    enum { O2 = 64, I2 = 256 };
    float *x = malloc(sizeof(float) * O2 * I2), *y = malloc(sizeof(float) * O2 * I2);
    for (int k = 0; k < O2 * I2; k++)
        x[k] = 0.05f * urand() + (k % 7 == 0 ? 0.02f : 0);
    int32_t *qw2 = malloc(4 * O2 * I2), *qz2 = malloc(4 * O2 * I2), *gi2 = malloc(4 * I2);
    uint16_t *sc2 = malloc(2 * O2 * I2);
    for (int bits = 4; bits <= 8; bits += 4)
        for (int sym = 0; sym <= 1; sym++) {
            int64_t g = bits == 8 ? I2 : 64;
            rc = sw_gptq_pack(x, O2, I2, bits, g, sym, qw2, qz2, sc2, gi2);
            sw_gptq_unpack(qw2, qz2, sc2, gi2, O2, I2, bits, I2 / g, y);
            double worst = 0;
            for (int j = 0; j < O2; j++)
                for (int i = 0; i < I2; i++) {
                    double s = sw_f16_to_f32(sc2[(i / g) * O2 + j]);
                    worst = fmax(worst, fabs(y[j * I2 + i] - x[j * I2 + i]) / s);
                }
            OK(rc == 0 && worst <= 0.6, "%d-bit %s g%lld: error within 0.6 steps (%.3f)", bits,
               sym ? "sym" : "asym", (long long)g, worst);
            if (!sym) {
                int zok = 1, pf = 32 / bits;
                for (int k = 0; k < (int)(I2 / g) * O2; k++) {
                    uint32_t z =
                        (((uint32_t)qz2[k / pf] >> ((k % pf) * bits)) & ((1u << bits) - 1)) + 1;
                    zok &= z >= 1 && z <= (1u << bits) - 1;
                }
                OK(zok, "%d-bit asym zero points stay in [1, %d]", bits, (1 << bits) - 1);
            }
        }
    OK(sw_gptq_pack(x, O2, 200, 4, 128, 1, qw2, qz2, sc2, gi2) == SW_EINVAL,
       "rows not divisible by the group size refused: %s", sw_err_msg());
    OK(sw_gptq_pack(x, 12, I2, 4, 128, 1, qw2, qz2, sc2, gi2) == SW_EINVAL,
       "12 outputs cannot pack 8 zero points per int32: %s", sw_err_msg());
    OK(sw_gptq_pack(x, O2, I2, 3, 128, 1, qw2, qz2, sc2, gi2) == SW_EINVAL, "3 bits refused");

    /* FP8 */
    uint8_t *q8 = malloc(O2 * I2);
    float scales[O2];
    sw_fp8_quantize(x, O2, I2, 0, q8, scales);
    double err = 0, ss = 0;
    int maxhit = 1;
    for (int j = 0; j < O2; j++) {
        float amax = 0, got = 0;
        for (int i = 0; i < I2; i++) {
            amax = fmaxf(amax, fabsf(x[j * I2 + i]));
            float v = sw_fp8_e4m3_to_f32(q8[j * I2 + i]) * scales[j];
            got = fmaxf(got, fabsf(v));
            err += (v - x[j * I2 + i]) * (v - x[j * I2 + i]);
            ss += x[j * I2 + i] * x[j * I2 + i];
        }
        maxhit &= fabsf(got - amax) <= 1e-6f * amax + 1e-9f;
    }
    OK(maxhit, "per-channel FP8: each row's largest magnitude is exactly 448 * scale");
    OK(sqrt(err / ss) < 0.05, "per-channel FP8 relative RMS error %.4f < 0.05", sqrt(err / ss));
    float st;
    sw_fp8_quantize(x, O2, I2, 1, q8, &st);
    float amax = 0;
    for (int k = 0; k < O2 * I2; k++)
        amax = fmaxf(amax, fabsf(x[k]));
    IS_NEAR(st, amax / 448, 1e-6, "per-tensor FP8 scale = absmax / 448");
    /* NF4 with double quantization */
    const float *code = sw_nf4_code(), *dm = sw_bnb_dynamic_map();
    int sorted = 1;
    for (int k = 1; k < 256; k++)
        sorted &= dm[k] >= dm[k - 1];
    OK(code[0] == -1.0f && code[7] == 0.0f && code[15] == 1.0f, "NF4 table: -1, 0, 1 at 0, 7, 15");
    OK(sorted && dm[255] == 1.0f && dm[0] < -0.99f && dm[0] > -1.0f,
       "dynamic map: 256 sorted values up to 1 (%.6f .. %.6f)", dm[0], dm[255]);
    int64_t n = O2 * I2 - 3; /* an odd count: the last byte holds one code */
    int64_t nb = (n + 63) / 64, nn = (nb + 255) / 256;
    uint8_t *pk = malloc((size_t)(n + 1) / 2), *qa = malloc((size_t)nb);
    float *na = malloc((size_t)nn * 4), off = 0;
    sw_nf4_quantize(x, n, pk, qa, na, &off);
    sw_nf4_dequantize(pk, qa, na, off, n, y);
    err = 0, ss = 0;
    for (int64_t i = 0; i < n; i++)
        err += (y[i] - x[i]) * (y[i] - x[i]), ss += x[i] * x[i];
    OK(sqrt(err / ss) < 0.12, "NF4 relative RMS error %.4f < 0.12", sqrt(err / ss));
    float blk[64] = {0};
    blk[0] = 1.0f, blk[1] = -1.0f, blk[2] = 0.5f;
    uint8_t pb[32], qb;
    float nb1, o1;
    sw_nf4_quantize(blk, 64, pb, &qb, &nb1, &o1);
    OK(pb[0] == 0xF0 && (pb[1] >> 4) == 12,
       "first element in the high nibble (0x%02x); 0.5 -> code 12 (0.4407)", pb[0]);
    free(pk), free(qa), free(na);
    free(x), free(y), free(qw2), free(qz2), free(gi2), free(sc2), free(q8);
    return tap_done();
}
