/* sw_dtype — element type table and exact conversions.
 *
 * The fp8 conversions go through one integer routine, minifloat_round(), that rounds an f32
 * magnitude to a format with m mantissa bits and exponent bias b, to nearest with ties to even,
 * subnormals included. It works on bits only, so the result does not depend on the FPU's
 * rounding mode or on flush-to-zero settings, and serves E4M3 and E5M2 alike (their overflow
 * rules differ and are applied by the callers). BF16 uses that routine's special case (no
 * rebias) and F16 a branch-free floating-point formulation, both so that array loops vectorize;
 * the tests hold all of them to the same independent reference.
 *
 * Sources wider than f32 (F64, I64, U64) would be rounded twice if converted to f32 with
 * round-to-nearest and then to a 16- or 8-bit float; a value just above a midpoint of the
 * narrow format can land exactly on the midpoint and then go the wrong way. Those paths round
 * to odd first (truncate, then set the last bit if anything was dropped), which keeps enough
 * information for the final round-to-nearest-even to be correct: round-to-odd to p bits followed
 * by round-to-nearest to q <= p - 2 bits equals a single rounding to q bits. */
#include "sw_dtype.h"

#include "sw_err.h"

#include <math.h>
#include <string.h>
#include <strings.h>

/* ---- the type table --------------------------------------------------------------------- */

static const struct {
    const char *name;
    int bits;
    int is_float;
} dtype_info[SW_DTYPE_COUNT] = {
    [SW_DTYPE_F32] = {"F32", 32, 1},        [SW_DTYPE_F16] = {"F16", 16, 1},
    [SW_DTYPE_BF16] = {"BF16", 16, 1},      [SW_DTYPE_F8_E4M3] = {"F8_E4M3", 8, 1},
    [SW_DTYPE_F8_E5M2] = {"F8_E5M2", 8, 1}, [SW_DTYPE_I8] = {"I8", 8, 0},
    [SW_DTYPE_U8] = {"U8", 8, 0},           [SW_DTYPE_I16] = {"I16", 16, 0},
    [SW_DTYPE_U16] = {"U16", 16, 0},        [SW_DTYPE_I32] = {"I32", 32, 0},
    [SW_DTYPE_U32] = {"U32", 32, 0},        [SW_DTYPE_I64] = {"I64", 64, 0},
    [SW_DTYPE_U64] = {"U64", 64, 0},        [SW_DTYPE_F64] = {"F64", 64, 1},
    [SW_DTYPE_BOOL] = {"BOOL", 8, 0},       [SW_DTYPE_Q4] = {"Q4", 4, 0},
};

/* Other spellings met in the wild: PyTorch/numpy names (config.json "torch_dtype"), ggml-ish
 * short names, and ml_dtypes' "float8_e4m3fn". Compared case-insensitively. */
static const struct {
    const char *alias;
    enum sw_dtype dt;
} dtype_alias[] = {
    {"float32", SW_DTYPE_F32},       {"fp32", SW_DTYPE_F32},
    {"float", SW_DTYPE_F32},         {"float16", SW_DTYPE_F16},
    {"fp16", SW_DTYPE_F16},          {"half", SW_DTYPE_F16},
    {"bfloat16", SW_DTYPE_BF16},     {"float8_e4m3fn", SW_DTYPE_F8_E4M3},
    {"f8_e4m3fn", SW_DTYPE_F8_E4M3}, {"fp8_e4m3", SW_DTYPE_F8_E4M3},
    {"e4m3", SW_DTYPE_F8_E4M3},      {"float8_e5m2", SW_DTYPE_F8_E5M2},
    {"fp8_e5m2", SW_DTYPE_F8_E5M2},  {"e5m2", SW_DTYPE_F8_E5M2},
    {"int8", SW_DTYPE_I8},           {"uint8", SW_DTYPE_U8},
    {"int16", SW_DTYPE_I16},         {"uint16", SW_DTYPE_U16},
    {"int32", SW_DTYPE_I32},         {"uint32", SW_DTYPE_U32},
    {"int64", SW_DTYPE_I64},         {"uint64", SW_DTYPE_U64},
    {"float64", SW_DTYPE_F64},       {"fp64", SW_DTYPE_F64},
    {"double", SW_DTYPE_F64},        {"bool", SW_DTYPE_BOOL},
};

static int dtype_valid(enum sw_dtype dt) {
    return (unsigned)dt < SW_DTYPE_COUNT;
}

int sw_dtype_bits(enum sw_dtype dt) {
    return dtype_valid(dt) ? dtype_info[dt].bits : 0;
}

size_t sw_dtype_nbytes(enum sw_dtype dt, uint64_t n) {
    if (!dtype_valid(dt)) return 0;
    if (dt == SW_DTYPE_Q4) return (size_t)(n / 2 + (n & 1));
    uint64_t size = (uint64_t)dtype_info[dt].bits / 8;
    if (n > SIZE_MAX / size) return SIZE_MAX; /* saturate: no real buffer is that large */
    return (size_t)(n * size);
}

const char *sw_dtype_name(enum sw_dtype dt) {
    return dtype_valid(dt) ? dtype_info[dt].name : "?";
}

int sw_dtype_parse(const char *name, enum sw_dtype *out) {
    if (!name) return SW_EFORMAT;
    if (strncmp(name, "torch.", 6) == 0) name += 6;
    for (int i = 0; i < SW_DTYPE_COUNT; i++) {
        if (strcasecmp(name, dtype_info[i].name) == 0) {
            *out = (enum sw_dtype)i;
            return 0;
        }
    }
    for (size_t i = 0; i < sizeof dtype_alias / sizeof dtype_alias[0]; i++) {
        if (strcasecmp(name, dtype_alias[i].alias) == 0) {
            *out = dtype_alias[i].dt;
            return 0;
        }
    }
    return SW_EFORMAT;
}

int sw_dtype_is_float(enum sw_dtype dt) {
    return dtype_valid(dt) && dtype_info[dt].is_float;
}

/* ---- scalar conversions ----------------------------------------------------------------- */

/* The element conversions are forced inline so the array loops below see their bodies and can
 * vectorize them; the public sw_* functions are thin wrappers. */
#define CV_INLINE static inline __attribute__((always_inline))

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Round the finite f32 magnitude x (bits, sign cleared) to a float format with mbits mantissa
 * bits and exponent bias `bias`, to nearest, ties to even. Returns the magnitude code
 * (exponent << mbits | mantissa); codes past the format's largest finite value are returned as
 * they come (the caller maps them to Inf, NaN or the maximum). */
static inline uint32_t minifloat_round(uint32_t x, int mbits, int bias) {
    int e = (int)(x >> 23);
    int e_min = 128 - bias; /* f32 biased exponent of the target's smallest normal */
    if (e >= e_min) {
        int s = 23 - mbits;
        uint32_t y = x - ((uint32_t)(127 - bias) << 23);
        y += ((1u << (s - 1)) - 1) + ((y >> s) & 1);
        return y >> s; /* a mantissa carry moves into the exponent, as it should */
    }
    /* Subnormal (or zero) in the target: code = value / 2^(1 - bias - mbits). */
    uint32_t m = (x & 0x7fffffu) | (e ? 0x800000u : 0);
    int shift = e_min - (e ? e : 1) + (23 - mbits);
    if (shift > 24) return 0; /* below half the smallest subnormal */
    uint32_t k = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    k += (rem > half) | ((rem == half) & (k & 1));
    return k; /* k == 1 << mbits is the smallest normal: the encoding is continuous */
}

CV_INLINE uint16_t cv_f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    /* minifloat_round(x, 7, 127) reduces to this: no rebias, 16 bits dropped. */
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1)) >> 16;
    uint32_t nan = (u >> 16) | 0x0040u; /* quiet, sign and top payload kept */
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? nan : r);
}

CV_INLINE float cv_bf16_to_f32(uint16_t h) {
    return f32_from_bits((uint32_t)h << 16);
}

/* F16 uses the floating-point formulation of Marat Dukhan's FP16 library instead of
 * minifloat_round(): the same result (the exhaustive and midpoint tests check it against an
 * independent reference and gcc's _Float16), but branch-free with constant shifts, so the array
 * loops vectorize with plain SSE2. The FPU does the rounding: adding a power of two just above
 * the value shifts its low bits out under the default round-to-nearest-even mode. Flush-to-zero
 * cannot change a result: every intermediate that matters is a normal f32. */
CV_INLINE uint16_t cv_f32_to_f16(float f) {
    const float scale_to_inf = 0x1.0p+112f, scale_to_zero = 0x1.0p-110f;
    float base = (fabsf(f) * scale_to_inf) * scale_to_zero; /* |f| * 4, or Inf past 65520 */
    uint32_t w = f32_bits(f), shl1_w = w + w, sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xff000000u;
    bias = bias < 0x71000000u ? 0x71000000u : bias; /* subnormal results share 2^-14's grid */
    base = f32_from_bits((bias >> 1) + 0x07800000u) + base;
    uint32_t bits = f32_bits(base);
    uint32_t nonsign = ((bits >> 13) & 0x7c00u) + (bits & 0x0fffu);
    uint32_t nan = 0u - (uint32_t)(shl1_w > 0xff000000u); /* NaN: quiet, sign kept */
    return (uint16_t)((sign >> 16) | (0x7e00u & nan) | (nonsign & ~nan));
}

CV_INLINE float cv_f16_to_f32(uint16_t h) {
    uint32_t w = (uint32_t)h << 16, sign = w & 0x80000000u, two_w = w + w;
    /* Normal (and Inf/NaN): move exponent and mantissa into place, then rebias by 2^-112. A
     * NaN passes through the multiply quiet, payload kept, as F16C hardware does. */
    float normalized = f32_from_bits((two_w >> 4) + (0xe0u << 23)) * 0x1.0p-112f;
    /* Subnormal: m × 2^-24 computed as (0.5 + m × 2^-24) - 0.5, exact by Sterbenz' lemma. */
    float denormalized = f32_from_bits((two_w >> 17) | (126u << 23)) - 0.5f;
    /* A mask select, not ?: — gcc would otherwise turn it into a branch and not vectorize. */
    uint32_t sub = 0u - (uint32_t)(two_w < (1u << 27));
    uint32_t r = (f32_bits(denormalized) & sub) | (f32_bits(normalized) & ~sub);
    return f32_from_bits(sign | r);
}

/* E4M3 (fn): bias 7, 3 mantissa bits, S.1111.111 is NaN, no infinities, max 0x7e = 448. */
CV_INLINE uint8_t fp8_e4m3_encode(float f, int saturate) {
    uint32_t u = f32_bits(f), x = u & 0x7fffffffu;
    uint8_t sign = (uint8_t)((u >> 24) & 0x80u);
    if (x > 0x7f800000u) return sign | 0x7f;
    if (x == 0x7f800000u) return sign | (saturate ? 0x7e : 0x7f);
    uint32_t c = minifloat_round(x, 3, 7);
    if (c > 0x7e) c = saturate ? 0x7e : 0x7f; /* above 464 (448 + half ulp, tie goes to 448) */
    return (uint8_t)(sign | c);
}

uint8_t sw_f32_to_fp8_e4m3(float f) {
    return fp8_e4m3_encode(f, 0);
}
uint8_t sw_f32_to_fp8_e4m3_sat(float f) {
    return fp8_e4m3_encode(f, 1);
}

CV_INLINE float cv_fp8_e4m3_to_f32(uint8_t b) {
    uint32_t sign = (uint32_t)(b & 0x80u) << 24;
    uint32_t e = (b >> 3) & 0xfu, m = b & 7u;
    if ((b & 0x7f) == 0x7f) return f32_from_bits(sign | 0x7fc00000u);
    if (e == 0) { /* subnormal: m × 2^-9, exact in f32 */
        float v = (float)m * 0x1p-9f;
        return sign ? -v : v;
    }
    return f32_from_bits(sign | ((e + 120) << 23) | (m << 20));
}

/* E5M2: bias 15, 2 mantissa bits, IEEE-like (0x7c Inf, 0x7d..0x7f NaN), max 0x7b = 57344. */
CV_INLINE uint8_t cv_f32_to_fp8_e5m2(float f) {
    uint32_t u = f32_bits(f), x = u & 0x7fffffffu;
    uint8_t sign = (uint8_t)((u >> 24) & 0x80u);
    if (x > 0x7f800000u) return sign | 0x7e; /* quiet NaN */
    uint32_t c = x == 0x7f800000u ? 0x7c : minifloat_round(x, 2, 15);
    return (uint8_t)(sign | (c > 0x7c ? 0x7c : c));
}

/* An E5M2 byte is the top byte of the F16 with the same value. */
CV_INLINE float cv_fp8_e5m2_to_f32(uint8_t b) {
    return cv_f16_to_f32((uint16_t)(b << 8));
}

/* The public entry points (the inline versions above serve the array loops). */
uint16_t sw_f32_to_bf16(float f) {
    return cv_f32_to_bf16(f);
}
float sw_bf16_to_f32(uint16_t h) {
    return cv_bf16_to_f32(h);
}
uint16_t sw_f32_to_f16(float f) {
    return cv_f32_to_f16(f);
}
float sw_f16_to_f32(uint16_t h) {
    return cv_f16_to_f32(h);
}
float sw_fp8_e4m3_to_f32(uint8_t b) {
    return cv_fp8_e4m3_to_f32(b);
}
uint8_t sw_f32_to_fp8_e5m2(float f) {
    return cv_f32_to_fp8_e5m2(f);
}
float sw_fp8_e5m2_to_f32(uint8_t b) {
    return cv_fp8_e5m2_to_f32(b);
}

/* ---- helpers for wide sources ----------------------------------------------------------- */

/* Double to float, rounding to odd: see the file comment. NaN and ±Inf pass through. */
static inline float f64_to_f32_odd(double d) {
    float f = (float)d;
    if ((double)f != d && d == d) {
        uint32_t u = f32_bits(f);
        if (fabs((double)f) > fabs(d)) u -= 1; /* rounded away from zero: step back */
        f = f32_from_bits(u | 1);
    }
    return f;
}

/* u64 to double, rounding to odd (exact below 2^53). */
static inline double u64_to_f64_odd(uint64_t u) {
    if ((u >> 53) == 0) return (double)u;
    int s = 64 - __builtin_clzll(u) - 53;
    uint64_t mask = (1ull << s) - 1;
    if (u & mask) u = (u & ~mask) | (1ull << s);
    return (double)u; /* at most 53 significant bits now: exact */
}

static inline double i64_to_f64_odd(int64_t v) {
    double d = u64_to_f64_odd(v < 0 ? -(uint64_t)v : (uint64_t)v);
    return v < 0 ? -d : d;
}

/* Float to integer: truncate toward zero, saturate, NaN -> 0. The bounds are powers of two, so
 * they are exact doubles. */
static inline int8_t f64_to_i8(double d) {
    return d != d ? 0 : d <= -128.0 ? INT8_MIN : d >= 128.0 ? INT8_MAX : (int8_t)d;
}
static inline int16_t f64_to_i16(double d) {
    return d != d ? 0 : d <= -32768.0 ? INT16_MIN : d >= 32768.0 ? INT16_MAX : (int16_t)d;
}
static inline int32_t f64_to_i32(double d) {
    return d != d ? 0 : d <= -0x1p31 ? INT32_MIN : d >= 0x1p31 ? INT32_MAX : (int32_t)d;
}
static inline int64_t f64_to_i64(double d) {
    return d != d ? 0 : d <= -0x1p63 ? INT64_MIN : d >= 0x1p63 ? INT64_MAX : (int64_t)d;
}
static inline uint8_t f64_to_u8(double d) {
    return !(d > 0) ? 0 : d >= 256.0 ? UINT8_MAX : (uint8_t)d;
}
static inline uint16_t f64_to_u16(double d) {
    return !(d > 0) ? 0 : d >= 65536.0 ? UINT16_MAX : (uint16_t)d;
}
static inline uint32_t f64_to_u32(double d) {
    return !(d > 0) ? 0 : d >= 0x1p32 ? UINT32_MAX : (uint32_t)d;
}
static inline uint64_t f64_to_u64(double d) {
    return !(d > 0) ? 0 : d >= 0x1p64 ? UINT64_MAX : (uint64_t)d;
}

/* ---- block conversions ------------------------------------------------------------------ */

#define BLK 1024 /* elements per block: buffers stay in L1, loops long enough to vectorize */

static int dt_is_int(enum sw_dtype dt) {
    return dt >= SW_DTYPE_I8 && dt <= SW_DTYPE_U64;
}
static int dt_is_signed(enum sw_dtype dt) {
    return dt == SW_DTYPE_I8 || dt == SW_DTYPE_I16 || dt == SW_DTYPE_I32 || dt == SW_DTYPE_I64;
}
/* F32 and smaller floats: exactly representable as f32. */
static int dt_is_narrow_float(enum sw_dtype dt) {
    return dt <= SW_DTYPE_F8_E5M2;
}

/* `omp simd` asks for vectorization whatever the -O2 cost model says; the element functions are
 * inline and branch-free enough (selects, not jumps) for the compiler to use vector blends. */
#define LOOP(n) _Pragma("omp simd") for (size_t i = 0; i < (n); i++)

/* Decode n elements of a narrow float type to f32 (exact). F32 is returned in place. */
static const float *dec_narrow(enum sw_dtype dt, const void *src, size_t n, float *buf) {
    switch (dt) {
    case SW_DTYPE_F32: return src;
    case SW_DTYPE_F16: {
        const uint16_t *s = src;
        LOOP(n) buf[i] = cv_f16_to_f32(s[i]);
        break;
    }
    case SW_DTYPE_BF16: {
        const uint16_t *s = src;
        LOOP(n) buf[i] = cv_bf16_to_f32(s[i]);
        break;
    }
    case SW_DTYPE_F8_E4M3:
    case SW_DTYPE_F8_E5M2: {
        float lut[256]; /* 256 decodes beat a branchy decode per element */
        for (int b = 0; b < 256; b++)
            lut[b] = dt == SW_DTYPE_F8_E4M3 ? cv_fp8_e4m3_to_f32((uint8_t)b)
                                            : cv_fp8_e5m2_to_f32((uint8_t)b);
        const uint8_t *s = src;
        LOOP(n) buf[i] = lut[s[i]];
        break;
    }
    default: break;
    }
    return buf;
}

/* Decode n elements of F64, an integer type or BOOL to double. odd: round 64-bit integers
 * to odd (the value goes on to a narrower float); otherwise round to nearest. */
static void dec_wide(enum sw_dtype dt, const void *src, size_t n, double *buf, int odd) {
    switch (dt) {
    case SW_DTYPE_F64: memcpy(buf, src, n * sizeof(double)); break;
    case SW_DTYPE_I8: {
        const int8_t *s = src;
        LOOP(n) buf[i] = s[i];
        break;
    }
    case SW_DTYPE_U8: {
        const uint8_t *s = src;
        LOOP(n) buf[i] = s[i];
        break;
    }
    case SW_DTYPE_BOOL: {
        const uint8_t *s = src;
        LOOP(n) buf[i] = s[i] != 0;
        break;
    }
    case SW_DTYPE_I16: {
        const int16_t *s = src;
        LOOP(n) buf[i] = s[i];
        break;
    }
    case SW_DTYPE_U16: {
        const uint16_t *s = src;
        LOOP(n) buf[i] = s[i];
        break;
    }
    case SW_DTYPE_I32: {
        const int32_t *s = src;
        LOOP(n) buf[i] = s[i];
        break;
    }
    case SW_DTYPE_U32: {
        const uint32_t *s = src;
        LOOP(n) buf[i] = s[i];
        break;
    }
    case SW_DTYPE_I64: {
        const int64_t *s = src;
        if (odd)
            LOOP(n) buf[i] = i64_to_f64_odd(s[i]);
        else
            LOOP(n) buf[i] = (double)s[i];
        break;
    }
    case SW_DTYPE_U64: {
        const uint64_t *s = src;
        if (odd)
            LOOP(n) buf[i] = u64_to_f64_odd(s[i]);
        else
            LOOP(n) buf[i] = (double)s[i];
        break;
    }
    default: break;
    }
}

/* Store doubles into an integer type (truncating, saturating). */
static void enc_int_from_f64(enum sw_dtype dt, void *dst, const double *in, size_t n) {
    switch (dt) {
    case SW_DTYPE_I8: {
        int8_t *d = dst;
        LOOP(n) d[i] = f64_to_i8(in[i]);
        break;
    }
    case SW_DTYPE_U8: {
        uint8_t *d = dst;
        LOOP(n) d[i] = f64_to_u8(in[i]);
        break;
    }
    case SW_DTYPE_I16: {
        int16_t *d = dst;
        LOOP(n) d[i] = f64_to_i16(in[i]);
        break;
    }
    case SW_DTYPE_U16: {
        uint16_t *d = dst;
        LOOP(n) d[i] = f64_to_u16(in[i]);
        break;
    }
    case SW_DTYPE_I32: {
        int32_t *d = dst;
        LOOP(n) d[i] = f64_to_i32(in[i]);
        break;
    }
    case SW_DTYPE_U32: {
        uint32_t *d = dst;
        LOOP(n) d[i] = f64_to_u32(in[i]);
        break;
    }
    case SW_DTYPE_I64: {
        int64_t *d = dst;
        LOOP(n) d[i] = f64_to_i64(in[i]);
        break;
    }
    case SW_DTYPE_U64: {
        uint64_t *d = dst;
        LOOP(n) d[i] = f64_to_u64(in[i]);
        break;
    }
    default: break;
    }
}

/* Encode f32 values into any supported target type. */
static void enc_from_f32(enum sw_dtype dt, void *dst, const float *in, size_t n) {
    switch (dt) {
    case SW_DTYPE_F32: memcpy(dst, in, n * sizeof(float)); break;
    case SW_DTYPE_F16: {
        uint16_t *d = dst;
        LOOP(n) d[i] = cv_f32_to_f16(in[i]);
        break;
    }
    case SW_DTYPE_BF16: {
        uint16_t *d = dst;
        LOOP(n) d[i] = cv_f32_to_bf16(in[i]);
        break;
    }
    case SW_DTYPE_F8_E4M3: {
        uint8_t *d = dst;
        LOOP(n) d[i] = fp8_e4m3_encode(in[i], 0);
        break;
    }
    case SW_DTYPE_F8_E5M2: {
        uint8_t *d = dst;
        LOOP(n) d[i] = cv_f32_to_fp8_e5m2(in[i]);
        break;
    }
    case SW_DTYPE_F64: {
        double *d = dst;
        LOOP(n) d[i] = in[i];
        break;
    }
    default: {
        double tmp[BLK];
        for (size_t o = 0; o < n; o += BLK) {
            size_t k = n - o < BLK ? n - o : BLK;
            LOOP(k) tmp[i] = in[o + i];
            enc_int_from_f64(dt, (char *)dst + o * (size_t)(sw_dtype_bits(dt) / 8), tmp, k);
        }
        break;
    }
    }
}

/* Encode doubles into any supported target type; narrow floats go through f32 rounded to odd. */
static void enc_from_f64(enum sw_dtype dt, void *dst, const double *in, size_t n) {
    if (dt == SW_DTYPE_F64) {
        memcpy(dst, in, n * sizeof(double));
    } else if (dt == SW_DTYPE_F32) {
        float *d = dst;
        LOOP(n) d[i] = (float)in[i];
    } else if (dt_is_narrow_float(dt)) {
        float tmp[BLK];
        for (size_t o = 0; o < n; o += BLK) {
            size_t k = n - o < BLK ? n - o : BLK;
            LOOP(k) tmp[i] = f64_to_f32_odd(in[o + i]);
            enc_from_f32(dt, (char *)dst + o * (size_t)(sw_dtype_bits(dt) / 8), tmp, k);
        }
    } else {
        enc_int_from_f64(dt, dst, in, n);
    }
}

/* Integer to integer without going through double (exact for all 64-bit values): widen to
 * int64/uint64, then clamp into the target's range. */
static void conv_int_block(enum sw_dtype ddt, void *dst, enum sw_dtype sdt, const void *src,
                           size_t n) {
    if (dt_is_signed(sdt)) {
        int64_t v[BLK];
        switch (sdt) {
        case SW_DTYPE_I8: {
            const int8_t *s = src;
            LOOP(n) v[i] = s[i];
            break;
        }
        case SW_DTYPE_I16: {
            const int16_t *s = src;
            LOOP(n) v[i] = s[i];
            break;
        }
        case SW_DTYPE_I32: {
            const int32_t *s = src;
            LOOP(n) v[i] = s[i];
            break;
        }
        default: memcpy(v, src, n * sizeof(int64_t)); break;
        }
#define CLAMP_S(T, LO, HI)                                                                         \
    {                                                                                              \
        T *d = dst;                                                                                \
        LOOP(n) d[i] = (T)(v[i] < (LO) ? (LO) : v[i] > (HI) ? (HI) : v[i]);                        \
    }
        switch (ddt) {
        case SW_DTYPE_I8: CLAMP_S(int8_t, INT8_MIN, INT8_MAX) break;
        case SW_DTYPE_U8: CLAMP_S(uint8_t, 0, UINT8_MAX) break;
        case SW_DTYPE_I16: CLAMP_S(int16_t, INT16_MIN, INT16_MAX) break;
        case SW_DTYPE_U16: CLAMP_S(uint16_t, 0, UINT16_MAX) break;
        case SW_DTYPE_I32: CLAMP_S(int32_t, INT32_MIN, INT32_MAX) break;
        case SW_DTYPE_U32: CLAMP_S(uint32_t, 0, (int64_t)UINT32_MAX) break;
        case SW_DTYPE_I64: memcpy(dst, v, n * sizeof(int64_t)); break;
        case SW_DTYPE_U64: {
            uint64_t *d = dst;
            LOOP(n) d[i] = v[i] < 0 ? 0 : (uint64_t)v[i];
            break;
        }
        default: break;
        }
#undef CLAMP_S
    } else {
        uint64_t v[BLK];
        switch (sdt) {
        case SW_DTYPE_U8: {
            const uint8_t *s = src;
            LOOP(n) v[i] = s[i];
            break;
        }
        case SW_DTYPE_BOOL: {
            const uint8_t *s = src;
            LOOP(n) v[i] = s[i] != 0;
            break;
        }
        case SW_DTYPE_U16: {
            const uint16_t *s = src;
            LOOP(n) v[i] = s[i];
            break;
        }
        case SW_DTYPE_U32: {
            const uint32_t *s = src;
            LOOP(n) v[i] = s[i];
            break;
        }
        default: memcpy(v, src, n * sizeof(uint64_t)); break;
        }
#define CLAMP_U(T, HI)                                                                             \
    {                                                                                              \
        T *d = dst;                                                                                \
        LOOP(n) d[i] = (T)(v[i] > (HI) ? (HI) : v[i]);                                             \
    }
        switch (ddt) {
        case SW_DTYPE_I8: CLAMP_U(int8_t, (uint64_t)INT8_MAX) break;
        case SW_DTYPE_U8: CLAMP_U(uint8_t, UINT8_MAX) break;
        case SW_DTYPE_I16: CLAMP_U(int16_t, (uint64_t)INT16_MAX) break;
        case SW_DTYPE_U16: CLAMP_U(uint16_t, UINT16_MAX) break;
        case SW_DTYPE_I32: CLAMP_U(int32_t, (uint64_t)INT32_MAX) break;
        case SW_DTYPE_U32: CLAMP_U(uint32_t, UINT32_MAX) break;
        case SW_DTYPE_I64: CLAMP_U(int64_t, (uint64_t)INT64_MAX) break;
        case SW_DTYPE_U64: memcpy(dst, v, n * sizeof(uint64_t)); break;
        default: break;
        }
#undef CLAMP_U
    }
}

/* Convert one block of at most BLK elements. */
static void conv_block(enum sw_dtype ddt, void *dst, enum sw_dtype sdt, const void *src, size_t n) {
    if ((dt_is_int(sdt) || sdt == SW_DTYPE_BOOL) && dt_is_int(ddt)) {
        conv_int_block(ddt, dst, sdt, src, n);
    } else if (dt_is_narrow_float(sdt)) {
        float buf[BLK];
        enc_from_f32(ddt, dst, dec_narrow(sdt, src, n, buf), n);
    } else {
        double buf[BLK];
        dec_wide(sdt, src, n, buf, ddt != SW_DTYPE_F64);
        enc_from_f64(ddt, dst, buf, n);
    }
}

int sw_dtype_convert(enum sw_dtype dst_dt, void *dst, enum sw_dtype src_dt, const void *src,
                     size_t n) {
    if (!dtype_valid(dst_dt) || !dtype_valid(src_dt))
        return sw_err_set(SW_EUNSUPPORTED, "dtype convert: unknown dtype %d -> %d", (int)src_dt,
                          (int)dst_dt);
    if (n == 0) return 0;
    if (dst_dt == src_dt) {
        memcpy(dst, src, sw_dtype_nbytes(src_dt, n));
        return 0;
    }
    if (dst_dt == SW_DTYPE_Q4 || src_dt == SW_DTYPE_Q4 || dst_dt == SW_DTYPE_BOOL)
        return sw_err_set(SW_EUNSUPPORTED, "dtype convert: %s -> %s is not supported",
                          sw_dtype_name(src_dt), sw_dtype_name(dst_dt));
    size_t ssz = (size_t)sw_dtype_bits(src_dt) / 8, dsz = (size_t)sw_dtype_bits(dst_dt) / 8;
    size_t nblk = (n + BLK - 1) / BLK;
    /* Threads only pay off past ~64K elements; below that the fork/join costs more. */
#pragma omp parallel for schedule(static) if (n > ((size_t)1 << 16))
    for (size_t b = 0; b < nblk; b++) {
        size_t o = b * BLK, k = n - o < BLK ? n - o : BLK;
        conv_block(dst_dt, (char *)dst + o * dsz, src_dt, (const char *)src + o * ssz, k);
    }
    return 0;
}
