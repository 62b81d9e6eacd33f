/* test_dtype — float conversions checked exhaustively and against independent references.
 *
 * The reference rounding below does not share code with sw_dtype.c: it lists every finite value
 * of a format (computed with ldexp in double), finds the neighbours of x by binary search and
 * picks the nearer one in exact double arithmetic, the even code on a tie. A sentinel one step
 * past the largest finite value stands for overflow (Inf, or NaN for E4M3), which reproduces
 * IEEE's rule that overflow happens at max + half an ulp with ties going to the even code.
 * gcc's _Float16 (soft-float in libgcc on x86-64) is a second, external reference for F16.
 * Big loops count mismatches and report as one TAP line each. */
#include "sw_dtype.h"
#include "sw_err.h"
#include "tap.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

/* ---- reference formats ------------------------------------------------------------------ */

struct ref_fmt {
    const char *name;
    int mbits, bias;
    uint32_t max_code;  /* largest finite magnitude code */
    double sentinel;    /* the value one step past max_code */
    uint32_t over_code; /* what overflow encodes to (magnitude) */
    uint32_t sign_bit;  /* 0x8000 or 0x80 */
    double *val;        /* val[c] for c in 0..max_code */
};

static double ref_decode(const struct ref_fmt *f, uint32_t c) {
    uint32_t e = c >> f->mbits, m = c & ((1u << f->mbits) - 1);
    if (e == 0) return ldexp((double)m, 1 - f->bias - f->mbits);
    return ldexp((double)((1u << f->mbits) + m), (int)e - f->bias - f->mbits);
}

static void ref_init(struct ref_fmt *f) {
    f->val = malloc((f->max_code + 1) * sizeof(double));
    for (uint32_t c = 0; c <= f->max_code; c++)
        f->val[c] = ref_decode(f, c);
    f->sentinel = ref_decode(f, f->max_code + 1);
}

/* Code of the non-negative finite double x rounded to nearest, ties to even. */
static uint32_t ref_round_mag(const struct ref_fmt *f, double x) {
    if (x >= f->sentinel) return f->over_code;
    uint32_t lo = 0, hi = f->max_code + 1; /* val[lo] <= x < val[hi] (hi may be the sentinel) */
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if (f->val[mid] <= x)
            lo = mid;
        else
            hi = mid;
    }
    double vlo = f->val[lo], vhi = hi <= f->max_code ? f->val[hi] : f->sentinel;
    double dlo = x - vlo, dhi = vhi - x; /* exact: see the file comment of sw_dtype.c */
    uint32_t pick = dlo < dhi ? lo : dhi < dlo ? hi : (lo & 1) ? hi : lo;
    return pick > f->max_code ? f->over_code : pick;
}

static uint32_t ref_round(const struct ref_fmt *f, double x) {
    uint32_t s = signbit(x) ? f->sign_bit : 0;
    return s | ref_round_mag(f, fabs(x));
}

static struct ref_fmt R_F16 = {"F16", 10, 15, 0x7bff, 0, 0x7c00, 0x8000, NULL};
static struct ref_fmt R_BF16 = {"BF16", 7, 127, 0x7f7f, 0, 0x7f80, 0x8000, NULL};
static struct ref_fmt R_E4M3 = {"E4M3", 3, 7, 0x7e, 0, 0x7f, 0x80, NULL};
static struct ref_fmt R_E4M3S = {"E4M3 sat", 3, 7, 0x7e, 0, 0x7e, 0x80, NULL};
static struct ref_fmt R_E5M2 = {"E5M2", 2, 15, 0x7b, 0, 0x7c, 0x80, NULL};

/* ---- helpers ---------------------------------------------------------------------------- */

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float bitsf(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int f16_is_nan(uint16_t h) {
    return (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
}
static int bf16_is_nan(uint16_t h) {
    return (h & 0x7f80) == 0x7f80 && (h & 0x7f);
}
static int e4m3_is_nan(uint8_t b) {
    return (b & 0x7f) == 0x7f;
}
static int e5m2_is_nan(uint8_t b) {
    return (b & 0x7c) == 0x7c && (b & 3);
}

typedef uint32_t (*enc_fn)(float);
static uint32_t enc_f16(float f) {
    return sw_f32_to_f16(f);
}
static uint32_t enc_bf16(float f) {
    return sw_f32_to_bf16(f);
}
static uint32_t enc_e4m3(float f) {
    return sw_f32_to_fp8_e4m3(f);
}
static uint32_t enc_e4m3s(float f) {
    return sw_f32_to_fp8_e4m3_sat(f);
}
static uint32_t enc_e5m2(float f) {
    return sw_f32_to_fp8_e5m2(f);
}

/* Compare enc against the reference for one finite f32; prints the first few mismatches. */
static int check_one(const struct ref_fmt *r, enc_fn enc, float f, long *shown) {
    uint32_t got = enc(f), want = ref_round(r, (double)f);
    if (got == want) return 0;
    if ((*shown)++ < 5)
        DIAG("%s: f32 %a (0x%08x) -> got 0x%x, want 0x%x", r->name, f, fbits(f), got, want);
    return 1;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_table(void) {
    IS_INT(sw_dtype_bits(SW_DTYPE_BF16), 16, "bits BF16");
    IS_INT(sw_dtype_bits(SW_DTYPE_Q4), 4, "bits Q4");
    IS_INT(sw_dtype_bits(SW_DTYPE_COUNT), 0, "bits of an invalid dtype is 0");
    IS_INT(sw_dtype_nbytes(SW_DTYPE_F32, 5), 20, "nbytes F32 x5");
    IS_INT(sw_dtype_nbytes(SW_DTYPE_Q4, 3), 2, "nbytes Q4 x3 rounds up");
    IS_INT(sw_dtype_nbytes(SW_DTYPE_Q4, 4), 2, "nbytes Q4 x4");
    OK(sw_dtype_nbytes(SW_DTYPE_F64, UINT64_MAX / 4) == SIZE_MAX, "nbytes overflow saturates");
    int bad = 0;
    for (int i = 0; i < SW_DTYPE_COUNT; i++) {
        enum sw_dtype dt;
        if (sw_dtype_parse(sw_dtype_name((enum sw_dtype)i), &dt) != 0 || dt != (enum sw_dtype)i)
            bad++;
    }
    IS_INT(bad, 0, "every canonical name parses back to its dtype");
    static const struct {
        const char *s;
        enum sw_dtype dt;
    } al[] = {
        {"bfloat16", SW_DTYPE_BF16},   {"torch.float16", SW_DTYPE_F16},
        {"FP32", SW_DTYPE_F32},        {"float8_e4m3fn", SW_DTYPE_F8_E4M3},
        {"f8_e5m2", SW_DTYPE_F8_E5M2}, {"bf16", SW_DTYPE_BF16},
        {"int64", SW_DTYPE_I64},       {"UINT8", SW_DTYPE_U8},
        {"double", SW_DTYPE_F64},      {"q4", SW_DTYPE_Q4},
    };
    bad = 0;
    for (size_t i = 0; i < sizeof al / sizeof al[0]; i++) {
        enum sw_dtype dt;
        if (sw_dtype_parse(al[i].s, &dt) != 0 || dt != al[i].dt) {
            bad++;
            DIAG("alias '%s' failed", al[i].s);
        }
    }
    IS_INT(bad, 0, "aliases parse (case-insensitive, torch. prefix)");
    enum sw_dtype dt = SW_DTYPE_U8;
    IS_INT(sw_dtype_parse("f17", &dt), SW_EFORMAT, "unknown name is SW_EFORMAT");
    IS_INT(dt, SW_DTYPE_U8, "output untouched on failure");
    OK(sw_dtype_is_float(SW_DTYPE_F8_E5M2) && sw_dtype_is_float(SW_DTYPE_F64) &&
           !sw_dtype_is_float(SW_DTYPE_I32) && !sw_dtype_is_float(SW_DTYPE_Q4),
       "is_float");
}

/* All 65536 patterns of a 16-bit format: decode equals the reference value, encode(decode(h))
 * is h for every non-NaN, NaN stays NaN with its sign. */
static void test_exhaustive16(const struct ref_fmt *r, float (*dec)(uint16_t),
                              uint16_t (*enc)(float), int (*is_nan)(uint16_t)) {
    long bad_val = 0, bad_rt = 0, bad_nan = 0;
    uint32_t exp_mask = r->max_code + 1; /* 0x7c00 / 0x7f80: the Inf pattern */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = dec((uint16_t)h);
        uint32_t mag = h & 0x7fff;
        int neg = (h & 0x8000) != 0;
        if (is_nan((uint16_t)h)) {
            if (!isnan(f) || (signbit(f) != 0) != neg) bad_val++;
            uint16_t back = enc(f);
            if (!is_nan(back) || (back & 0x8000) != (h & 0x8000)) bad_nan++;
            continue;
        }
        double want = mag == exp_mask ? INFINITY : ref_decode(r, mag);
        if (neg) want = -want;
        if ((double)f != want || (signbit(f) != 0) != neg) {
            if (bad_val++ < 5) DIAG("%s 0x%04x decodes to %a, want %a", r->name, h, f, want);
        }
        if (enc(f) != h) {
            if (bad_rt++ < 5) DIAG("%s 0x%04x -> %a -> 0x%04x", r->name, h, f, enc(f));
        }
    }
    IS_INT(bad_val, 0, "%s: all 65536 patterns decode to the reference value", r->name);
    IS_INT(bad_rt, 0, "%s: encode(decode(h)) == h for every non-NaN pattern", r->name);
    IS_INT(bad_nan, 0, "%s: every NaN pattern decodes to NaN and encodes back to NaN, sign kept",
           r->name);
}

/* Every midpoint between consecutive values (and between max and the overflow sentinel), both
 * signs: the tie goes to the even code, one f32 ulp either side goes to the nearer value. */
static void test_midpoints(const struct ref_fmt *r, enc_fn enc) {
    long bad = 0, shown = 0, inexact = 0, n = 0;
    for (uint32_t c = 0; c <= r->max_code; c++) {
        double a = r->val[c], b = c < r->max_code ? r->val[c + 1] : r->sentinel;
        double mid = (a + b) / 2;
        float fm = (float)mid;
        if ((double)fm != mid) {
            inexact++;
            continue;
        }
        for (int s = 0; s < 2; s++) {
            float m = s ? -fm : fm;
            bad += check_one(r, enc, m, &shown);
            bad += check_one(r, enc, nextafterf(m, 0), &shown);
            bad += check_one(r, enc, nextafterf(m, s ? -INFINITY : INFINITY), &shown);
            n += 3;
        }
    }
    IS_INT(inexact, 0, "%s: every midpoint is exact in f32", r->name);
    IS_INT(bad, 0, "%s: %ld midpoint cases (ties to even, ±1 ulp) match the reference", r->name, n);
}

/* Random f32 bit patterns (all exponents) and random values in the format's own range. */
static void test_random(const struct ref_fmt *r, enc_fn enc, long count, int lo_exp, int hi_exp) {
    long bad = 0, shown = 0, bad_nan = 0;
    for (long i = 0; i < count; i++) {
        uint32_t u = (uint32_t)rng();
        if (i & 1) { /* exponent drawn from the interesting window */
            uint32_t e = (uint32_t)(lo_exp + (int)(rng() % (uint64_t)(hi_exp - lo_exp + 1)));
            u = (u & 0x807fffffu) | (e << 23);
        }
        float f = bitsf(u);
        if (isnan(f)) {
            uint32_t got = enc(f);
            int nan =
                r->sign_bit == 0x80
                    ? (r->mbits == 3 ? e4m3_is_nan((uint8_t)got) : e5m2_is_nan((uint8_t)got))
                    : (r->mbits == 10 ? f16_is_nan((uint16_t)got) : bf16_is_nan((uint16_t)got));
            bad_nan += !nan;
            continue;
        }
        if (isinf(f)) continue; /* checked explicitly elsewhere */
        bad += check_one(r, enc, f, &shown);
    }
    IS_INT(bad, 0, "%s: %ld random f32 values match the reference rounding", r->name, count);
    IS_INT(bad_nan, 0, "%s: random NaN inputs give NaN", r->name);
}

#if defined(__FLT16_MAX__) && (defined(__x86_64__) || defined(__aarch64__))
#define HAVE_FLOAT16 1
static void test_float16_compiler(void) {
    long bad_dec = 0, bad_enc = 0, shown = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t hb = (uint16_t)h;
        _Float16 x;
        memcpy(&x, &hb, 2);
        float want = (float)x, got = sw_f16_to_f32(hb);
        if (isnan(want) ? !isnan(got) : fbits(want) != fbits(got)) bad_dec++;
    }
    IS_INT(bad_dec, 0, "F16 decode equals gcc _Float16 -> float for all 65536 patterns");
    long n = 4000000;
    for (long i = 0; i < n; i++) {
        uint32_t u = (uint32_t)rng();
        if (i & 1) u = (u & 0x807fffffu) | ((uint32_t)(100 + rng() % 45) << 23);
        float f = bitsf(u);
        _Float16 y = (_Float16)f;
        uint16_t want;
        memcpy(&want, &y, 2);
        uint16_t got = sw_f32_to_f16(f);
        if (isnan(f) ? !f16_is_nan(got) : got != want) {
            if (shown++ < 5) DIAG("f32 %a: got 0x%04x, _Float16 0x%04x", f, got, want);
            bad_enc++;
        }
    }
    IS_INT(bad_enc, 0, "F16 encode equals gcc _Float16 for %ld random f32", n);
}
#endif

static void test_special_16(void) {
    IS_INT(sw_f32_to_f16(65504.0f), 0x7bff, "f16: 65504 is the max");
    IS_INT(sw_f32_to_f16(nextafterf(65520.0f, 0)), 0x7bff, "f16: just below 65520 stays finite");
    IS_INT(sw_f32_to_f16(65520.0f), 0x7c00, "f16: 65520 (tie) rounds to Inf");
    IS_INT(sw_f32_to_f16(1e30f), 0x7c00, "f16: overflow to Inf");
    IS_INT(sw_f32_to_f16(-1e30f), 0xfc00, "f16: overflow to -Inf");
    IS_INT(sw_f32_to_f16(INFINITY), 0x7c00, "f16: Inf");
    IS_INT(sw_f32_to_f16(-0.0f), 0x8000, "f16: -0 keeps its sign");
    IS_INT(sw_f32_to_f16(0x1p-24f), 0x0001, "f16: smallest subnormal");
    IS_INT(sw_f32_to_f16(0x1p-25f), 0x0000, "f16: half the smallest subnormal ties to 0");
    IS_INT(sw_f32_to_f16(0x1.000002p-25f), 0x0001, "f16: just above half rounds up");
    IS_INT(sw_f32_to_f16(0x3p-25f), 0x0002, "f16: 1.5 subnormal units ties to 2 (even)");
    IS_INT(sw_f32_to_f16(0x1.ff8p-15f), 0x03ff, "f16: largest subnormal");
    IS_INT(sw_f32_to_f16(0x1.ffcp-15f), 0x0400,
           "f16: tie above the largest subnormal goes to the smallest normal");
    IS_INT(sw_f32_to_f16(FLT_TRUE_MIN), 0x0000, "f16: f32 subnormal underflows to 0");
    uint16_t q = sw_f32_to_f16(bitsf(0xff800001u)); /* signalling NaN, negative */
    OK(f16_is_nan(q) && (q & 0x8000) && (q & 0x0200), "f16: sNaN -> quiet NaN with sign (0x%04x)",
       q);

    IS_INT(sw_f32_to_bf16(bitsf(0x7f7fffffu)), 0x7f80, "bf16: FLT_MAX rounds to Inf");
    IS_INT(sw_f32_to_bf16(bitsf(0x7f7f7fffu)), 0x7f7f,
           "bf16: below the last midpoint stays finite");
    IS_INT(sw_f32_to_bf16(-INFINITY), 0xff80, "bf16: -Inf");
    IS_INT(sw_f32_to_bf16(bitsf(0x3f808000u)), 0x3f80, "bf16: tie to even (down)");
    IS_INT(sw_f32_to_bf16(bitsf(0x3f818000u)), 0x3f82, "bf16: tie to even (up)");
    IS_INT(sw_f32_to_bf16(bitsf(0x00008000u)), 0x0000, "bf16: subnormal tie to even (0)");
    IS_INT(sw_f32_to_bf16(bitsf(0x00018000u)), 0x0002, "bf16: subnormal tie to even (2)");
    q = sw_f32_to_bf16(bitsf(0x7f800001u)); /* sNaN whose payload lives only in dropped bits */
    OK(bf16_is_nan(q), "bf16: an sNaN with a low payload stays NaN (0x%04x), not Inf", q);
}

static void test_fp8(void) {
    long bad4 = 0, bad5 = 0, bad4s = 0, nan4 = 0, nan5 = 0;
    for (int b = 0; b < 256; b++) {
        uint8_t u = (uint8_t)b;
        float f4 = sw_fp8_e4m3_to_f32(u), f5 = sw_fp8_e5m2_to_f32(u);
        int neg = (b & 0x80) != 0;
        if (e4m3_is_nan(u)) {
            nan4++;
            if (!isnan(f4) || !e4m3_is_nan(sw_f32_to_fp8_e4m3(f4)) ||
                !e4m3_is_nan(sw_f32_to_fp8_e4m3_sat(f4)))
                bad4++;
        } else {
            double want = ref_decode(&R_E4M3, b & 0x7f) * (neg ? -1 : 1);
            if ((double)f4 != want || (signbit(f4) != 0) != neg || sw_f32_to_fp8_e4m3(f4) != u)
                bad4++;
            if (sw_f32_to_fp8_e4m3_sat(f4) != u) bad4s++;
        }
        if (e5m2_is_nan(u)) {
            nan5++;
            if (!isnan(f5) || !e5m2_is_nan(sw_f32_to_fp8_e5m2(f5))) bad5++;
        } else {
            int inf = (b & 0x7f) == 0x7c;
            double want = inf ? INFINITY : ref_decode(&R_E5M2, b & 0x7f);
            if (neg) want = -want;
            if ((double)f5 != want || (signbit(f5) != 0) != neg || sw_f32_to_fp8_e5m2(f5) != u)
                bad5++;
        }
    }
    IS_INT(bad4, 0, "E4M3: all 256 patterns decode to the reference and round trip");
    IS_INT(bad4s, 0, "E4M3 sat: all 254 finite patterns round trip");
    IS_INT(nan4, 2, "E4M3: exactly two NaN patterns (0x7f, 0xff)");
    IS_INT(bad5, 0, "E5M2: all 256 patterns decode to the reference and round trip");
    IS_INT(nan5, 6, "E5M2: six NaN patterns");

    IS_INT(sw_f32_to_fp8_e4m3(448.0f), 0x7e, "E4M3: 448 is the max");
    IS_INT(sw_f32_to_fp8_e4m3(464.0f), 0x7e, "E4M3: 464 (tie with the NaN slot) rounds to 448");
    IS_INT(sw_f32_to_fp8_e4m3(nextafterf(464.0f, 1e9f)), 0x7f, "E4M3: just above 464 is NaN");
    IS_INT(sw_f32_to_fp8_e4m3(1e6f), 0x7f, "E4M3: overflow is NaN (non-saturating)");
    IS_INT(sw_f32_to_fp8_e4m3(-1e6f), 0xff, "E4M3: negative overflow is NaN with sign");
    IS_INT(sw_f32_to_fp8_e4m3(INFINITY), 0x7f, "E4M3: Inf is NaN");
    IS_INT(sw_f32_to_fp8_e4m3_sat(1e6f), 0x7e, "E4M3 sat: overflow clamps to 448");
    IS_INT(sw_f32_to_fp8_e4m3_sat(-INFINITY), 0xfe, "E4M3 sat: -Inf clamps to -448");
    IS_INT(sw_f32_to_fp8_e4m3_sat(470.0f), 0x7e, "E4M3 sat: 470 clamps");
    OK(e4m3_is_nan(sw_f32_to_fp8_e4m3_sat(NAN)), "E4M3 sat: NaN stays NaN");
    IS_INT(sw_f32_to_fp8_e4m3(0x1p-9f), 0x01, "E4M3: smallest subnormal");
    IS_INT(sw_f32_to_fp8_e4m3(0x1p-10f), 0x00, "E4M3: half of it ties to 0");
    IS_INT(sw_f32_to_fp8_e4m3(0x3p-10f), 0x02, "E4M3: 1.5 units ties to 2");
    IS_INT(sw_f32_to_fp8_e4m3(-0.0f), 0x80, "E4M3: -0");
    IS_INT(sw_f32_to_fp8_e5m2(57344.0f), 0x7b, "E5M2: 57344 is the max");
    IS_INT(sw_f32_to_fp8_e5m2(nextafterf(61440.0f, 0)), 0x7b, "E5M2: below 61440 stays finite");
    IS_INT(sw_f32_to_fp8_e5m2(61440.0f), 0x7c, "E5M2: 61440 (tie) is Inf");
    IS_INT(sw_f32_to_fp8_e5m2(-1e9f), 0xfc, "E5M2: overflow is -Inf");
    IS_INT(sw_f32_to_fp8_e5m2(INFINITY), 0x7c, "E5M2: Inf");
    OK(e5m2_is_nan(sw_f32_to_fp8_e5m2(-NAN)) && (sw_f32_to_fp8_e5m2(-NAN) & 0x80),
       "E5M2: NaN stays NaN with its sign");
    IS_INT(sw_f32_to_fp8_e5m2(0x1p-16f), 0x01, "E5M2: smallest subnormal");
    IS_INT(sw_f32_to_fp8_e5m2(0x1p-17f), 0x00, "E5M2: half of it ties to 0");
}

/* ---- sw_dtype_convert ------------------------------------------------------------------- */

static void test_convert_arrays(void) {
    /* 3 × 65536 elements: above the 1<<16 threshold, so the OpenMP path runs */
    size_t n = 3 * 65536;
    uint16_t *h = malloc(n * 2), *h2 = malloc(n * 2);
    float *f = malloc(n * 4);
    uint8_t *b = malloc(n);
    for (size_t i = 0; i < n; i++)
        h[i] = (uint16_t)i;
    IS_INT(sw_dtype_convert(SW_DTYPE_F32, f, SW_DTYPE_F16, h, n), 0, "convert F16->F32 (parallel)");
    long bad = 0;
    for (size_t i = 0; i < n; i++)
        if (fbits(f[i]) != fbits(sw_f16_to_f32(h[i]))) bad++;
    IS_INT(bad, 0, "array F16->F32 equals the scalar conversion");
    IS_INT(sw_dtype_convert(SW_DTYPE_BF16, h2, SW_DTYPE_F16, h, n), 0, "convert F16->BF16");
    bad = 0;
    for (size_t i = 0; i < n; i++)
        if (h2[i] != sw_f32_to_bf16(sw_f16_to_f32(h[i]))) bad++;
    IS_INT(bad, 0, "array F16->BF16 equals scalar f16->f32->bf16");

    for (size_t i = 0; i < n; i++)
        f[i] = bitsf((uint32_t)rng() & 0xc7ffffffu);
    static const enum sw_dtype narrow[] = {SW_DTYPE_F16, SW_DTYPE_BF16, SW_DTYPE_F8_E4M3,
                                           SW_DTYPE_F8_E5M2};
    for (int k = 0; k < 4; k++) {
        enum sw_dtype dt = narrow[k];
        void *out = sw_dtype_bits(dt) == 16 ? (void *)h2 : (void *)b;
        int rc = sw_dtype_convert(dt, out, SW_DTYPE_F32, f, n);
        bad = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t got = sw_dtype_bits(dt) == 16 ? h2[i] : b[i];
            uint32_t want = dt == SW_DTYPE_F16       ? sw_f32_to_f16(f[i])
                            : dt == SW_DTYPE_BF16    ? sw_f32_to_bf16(f[i])
                            : dt == SW_DTYPE_F8_E4M3 ? sw_f32_to_fp8_e4m3(f[i])
                                                     : sw_f32_to_fp8_e5m2(f[i]);
            if (got != want) bad++;
        }
        OK(rc == 0 && bad == 0, "array F32->%s equals the scalar conversion (%ld mismatches)",
           sw_dtype_name(dt), bad);
    }
    for (int k = 2; k < 4; k++) {
        enum sw_dtype dt = narrow[k];
        for (size_t i = 0; i < n; i++)
            b[i] = (uint8_t)i;
        sw_dtype_convert(SW_DTYPE_F32, f, dt, b, n);
        bad = 0;
        for (size_t i = 0; i < n; i++) {
            float want =
                dt == SW_DTYPE_F8_E4M3 ? sw_fp8_e4m3_to_f32(b[i]) : sw_fp8_e5m2_to_f32(b[i]);
            if (isnan(want) ? !isnan(f[i]) : fbits(want) != fbits(f[i])) bad++;
        }
        IS_INT(bad, 0, "array %s->F32 equals the scalar conversion", sw_dtype_name(dt));
    }
    free(h);
    free(h2);
    free(f);
    free(b);
}

/* Doubles with bits below f32 precision: the F64 path must round once, not twice. */
static void test_convert_f64(void) {
    double d[2] = {1.0 + 0x1p-11 + 0x1p-40, 1.0 + 0x1p-8 + 0x1p-40};
    uint16_t h[2];
    sw_dtype_convert(SW_DTYPE_F16, h, SW_DTYPE_F64, d, 1);
    IS_INT(h[0], 0x3c01, "F64->F16: just above a midpoint rounds up (no double rounding)");
    sw_dtype_convert(SW_DTYPE_BF16, h, SW_DTYPE_F64, d + 1, 1);
    IS_INT(h[0], 0x3f81, "F64->BF16: just above a midpoint rounds up (no double rounding)");

    size_t n = 200000;
    double *x = malloc(n * sizeof *x);
    uint16_t *o16 = malloc(n * 2);
    uint8_t *o8 = malloc(n);
    for (size_t i = 0; i < n; i++) {
        uint64_t u = rng();
        int e = (int)(rng() % 70) - 40; /* 2^-40 .. 2^29 covers every narrow format's range */
        x[i] = ldexp(1.0 + (double)(u >> 12) * 0x1p-52, e) * ((u & 1) ? -1 : 1);
        if (i % 4 == 0) { /* a midpoint of F16 nudged by a few double ulps */
            float m = bitsf(((uint32_t)rng() & 0x07ffe000u) | 0x38000000u | 0x1000u);
            x[i] = nextafter((double)m, (u & 2) ? 1e300 : -1e300);
        }
    }
    struct {
        enum sw_dtype dt;
        const struct ref_fmt *r;
    } cases[] = {
        {SW_DTYPE_F16, &R_F16},
        {SW_DTYPE_BF16, &R_BF16},
        {SW_DTYPE_F8_E4M3, &R_E4M3},
        {SW_DTYPE_F8_E5M2, &R_E5M2},
    };
    for (int k = 0; k < 4; k++) {
        int w16 = sw_dtype_bits(cases[k].dt) == 16;
        sw_dtype_convert(cases[k].dt, w16 ? (void *)o16 : (void *)o8, SW_DTYPE_F64, x, n);
        long bad = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t got = w16 ? o16[i] : o8[i], want = ref_round(cases[k].r, x[i]);
            if (got != want && bad++ < 3)
                DIAG("F64 %a -> %s got 0x%x want 0x%x", x[i], cases[k].r->name, got, want);
        }
        IS_INT(bad, 0, "F64->%s: %zu random doubles match the reference (single rounding)",
               cases[k].r->name, n);
    }
    free(x);
    free(o16);
    free(o8);

    float f1[3] = {1.5f, -2.25f, 3e38f};
    double dd[3];
    float f2[3];
    sw_dtype_convert(SW_DTYPE_F64, dd, SW_DTYPE_F32, f1, 3);
    sw_dtype_convert(SW_DTYPE_F32, f2, SW_DTYPE_F64, dd, 3);
    OK(memcmp(f1, f2, sizeof f1) == 0 && dd[1] == -2.25, "F32->F64->F32 is the identity");
}

static void test_convert_int(void) {
    float f[10] = {-1e9f, -128.5f, -127.9f, -0.9f, 0.9f, 127.9f, 300.0f, NAN, INFINITY, -INFINITY};
    int8_t i8[10];
    static const int8_t want8[10] = {-128, -128, -127, 0, 0, 127, 127, 0, 127, -128};
    sw_dtype_convert(SW_DTYPE_I8, i8, SW_DTYPE_F32, f, 10);
    OK(memcmp(i8, want8, 10) == 0, "F32->I8 truncates toward zero and saturates, NaN -> 0");

    float g[5] = {-5.0f, 255.9f, 256.0f, 1e10f, NAN};
    uint8_t u8[5];
    static const uint8_t wantu8[5] = {0, 255, 255, 255, 0};
    sw_dtype_convert(SW_DTYPE_U8, u8, SW_DTYPE_F32, g, 5);
    OK(memcmp(u8, wantu8, 5) == 0, "F32->U8 saturates at 0 and 255");

    double d[4] = {9.3e18, -9.3e18, 0x1p63, -0x1p63};
    int64_t i64[4];
    sw_dtype_convert(SW_DTYPE_I64, i64, SW_DTYPE_F64, d, 4);
    OK(i64[0] == INT64_MAX && i64[1] == INT64_MIN && i64[2] == INT64_MAX && i64[3] == INT64_MIN,
       "F64->I64 saturates at both ends");
    double du[3] = {0x1p64, 0x1p63, -1.0};
    uint64_t u64[3];
    sw_dtype_convert(SW_DTYPE_U64, u64, SW_DTYPE_F64, du, 3);
    OK(u64[0] == UINT64_MAX && u64[1] == (1ull << 63) && u64[2] == 0, "F64->U64 saturates");

    int64_t big[2] = {(1ll << 60) + (1ll << 52) + 1, -((1ll << 60) + (1ll << 52) + 1)};
    uint16_t bf[2];
    sw_dtype_convert(SW_DTYPE_BF16, bf, SW_DTYPE_I64, big, 2);
    OK(bf[0] == 0x5d81 && bf[1] == 0xdd81, "I64->BF16 rounds once (0x%04x 0x%04x)", bf[0], bf[1]);
    int64_t odd[1] = {(1ll << 53) + 1};
    double dodd[1];
    sw_dtype_convert(SW_DTYPE_F64, dodd, SW_DTYPE_I64, odd, 1);
    OK(dodd[0] == 0x1p53, "I64->F64 is plain round-to-nearest (2^53+1 -> 2^53)");
    uint64_t umax[1] = {UINT64_MAX};
    float fu[1];
    sw_dtype_convert(SW_DTYPE_F32, fu, SW_DTYPE_U64, umax, 1);
    OK(fu[0] == 0x1p64f, "U64 max -> F32 is 2^64");
    int64_t near[1] = {(1ll << 40) + (1ll << 16) + 1}; /* just above an f32 midpoint */
    float fn[1];
    sw_dtype_convert(SW_DTYPE_F32, fn, SW_DTYPE_I64, near, 1);
    OK(fn[0] == 0x1p40f + 0x1p17f, "I64->F32 just above a midpoint rounds up");

    int32_t iv[5] = {65504, 65519, 65520, 100000, -70000};
    uint16_t hv[5];
    static const uint16_t wanth[5] = {0x7bff, 0x7bff, 0x7c00, 0x7c00, 0xfc00};
    sw_dtype_convert(SW_DTYPE_F16, hv, SW_DTYPE_I32, iv, 5);
    OK(memcmp(hv, wanth, sizeof hv) == 0, "I32->F16 rounds and overflows to Inf");

    int64_t s64[4] = {-1000, 1000, INT64_MIN, INT64_MAX};
    int8_t s8[4];
    sw_dtype_convert(SW_DTYPE_I8, s8, SW_DTYPE_I64, s64, 4);
    OK(s8[0] == -128 && s8[1] == 127 && s8[2] == -128 && s8[3] == 127, "I64->I8 clamps");
    uint64_t bu[2] = {UINT64_MAX, 5};
    int64_t bi[2];
    sw_dtype_convert(SW_DTYPE_I64, bi, SW_DTYPE_U64, bu, 2);
    OK(bi[0] == INT64_MAX && bi[1] == 5, "U64->I64 clamps");
    int32_t neg[2] = {-1, 7};
    uint32_t un[2];
    sw_dtype_convert(SW_DTYPE_U32, un, SW_DTYPE_I32, neg, 2);
    OK(un[0] == 0 && un[1] == 7, "I32->U32 clamps negatives to 0");
    uint8_t ub[2] = {200, 100};
    int8_t sb[2];
    sw_dtype_convert(SW_DTYPE_I8, sb, SW_DTYPE_U8, ub, 2);
    OK(sb[0] == 127 && sb[1] == 100, "U8->I8 clamps");
    int64_t exact[1] = {INT64_MAX - 1};
    uint64_t ex2[1];
    sw_dtype_convert(SW_DTYPE_U64, ex2, SW_DTYPE_I64, exact, 1);
    OK(ex2[0] == (uint64_t)INT64_MAX - 1, "I64->U64 is exact (no double on the way)");

    uint8_t bl[4] = {0, 1, 2, 255};
    int32_t bi32[4];
    float bf32[4];
    sw_dtype_convert(SW_DTYPE_I32, bi32, SW_DTYPE_BOOL, bl, 4);
    sw_dtype_convert(SW_DTYPE_F32, bf32, SW_DTYPE_BOOL, bl, 4);
    OK(bi32[0] == 0 && bi32[1] == 1 && bi32[2] == 1 && bi32[3] == 1 && bf32[3] == 1.0f,
       "BOOL source reads nonzero as 1");

    uint8_t q[4] = {0x21, 0x43, 0, 0}, q2[4] = {0};
    IS_INT(sw_dtype_convert(SW_DTYPE_Q4, q2, SW_DTYPE_Q4, q, 3), 0, "Q4->Q4 is a copy");
    OK(q2[0] == 0x21 && q2[1] == 0x43 && q2[2] == 0, "Q4 copy moves ceil(n/2) bytes");
    IS_INT(sw_dtype_convert(SW_DTYPE_F32, bf32, SW_DTYPE_Q4, q, 2), SW_EUNSUPPORTED,
           "Q4 source unsupported");
    IS_INT(sw_dtype_convert(SW_DTYPE_BOOL, bl, SW_DTYPE_F32, bf32, 2), SW_EUNSUPPORTED,
           "BOOL target unsupported");
    OK(strstr(sw_err_msg(), "BOOL") != NULL, "message names the dtypes: %s", sw_err_msg());
    IS_INT(sw_dtype_convert(SW_DTYPE_F32, bf32, SW_DTYPE_I8, s8, 0), 0, "n = 0 is fine");
}

int main(void) {
    ref_init(&R_F16);
    ref_init(&R_BF16);
    ref_init(&R_E4M3);
    ref_init(&R_E4M3S);
    ref_init(&R_E5M2);

    test_table();
    test_exhaustive16(&R_F16, sw_f16_to_f32, sw_f32_to_f16, f16_is_nan);
    test_exhaustive16(&R_BF16, sw_bf16_to_f32, sw_f32_to_bf16, bf16_is_nan);
    test_special_16();
    test_fp8();

    test_midpoints(&R_F16, enc_f16);
    test_midpoints(&R_BF16, enc_bf16);
    test_midpoints(&R_E4M3, enc_e4m3);
    test_midpoints(&R_E4M3S, enc_e4m3s);
    test_midpoints(&R_E5M2, enc_e5m2);

    test_random(&R_F16, enc_f16, 4000000, 127 - 27, 127 + 17);
    test_random(&R_BF16, enc_bf16, 4000000, 0, 254);
    test_random(&R_E4M3, enc_e4m3, 2000000, 127 - 12, 127 + 10);
    test_random(&R_E4M3S, enc_e4m3s, 2000000, 127 - 12, 127 + 10);
    test_random(&R_E5M2, enc_e5m2, 2000000, 127 - 19, 127 + 17);
#ifdef HAVE_FLOAT16
    test_float16_compiler();
#else
    OK(1, "# SKIP _Float16 not supported by this compiler");
#endif

    test_convert_arrays();
    test_convert_f64();
    test_convert_int();
    return tap_done();
}
