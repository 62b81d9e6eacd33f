/* fastmath — a fast float exp for the CPU kernels' softmaxes (attention, cross-entropy).
 *
 * glibc's exp/expf are scalar calls; softmax over a 32000-word vocabulary for every token made
 * them ~10% of a training step. sw_expf is Cephes' expf: n = round(x·log2 e) (by the 1.5·2^23
 * rounding trick), r = x − n·ln 2 in two parts, a degree-5 polynomial, times 2^n built in the
 * exponent bits. Relative error below 1e-7 on [−87, 88]; inputs below −87.3 give 0 (the
 * softmax weight of a masked score), inputs above 88.4 saturate at 2.4e38, NaN stays NaN.
 * sw_vexpf applies it to an array four lanes at a time with SSE2 (scalar elsewhere), with the
 * same operations in the same order, so every element gets the same bits either way. */
#ifndef SW_CPU_FASTMATH_H
#define SW_CPU_FASTMATH_H

#include <stdint.h>
#include <string.h>

#define SW_EXPF_LO (-87.33654f)
#define SW_EXPF_HI 88.37626f

static inline float sw_expf(float x) {
    float xc = x < SW_EXPF_LO ? SW_EXPF_LO : (x > SW_EXPF_HI ? SW_EXPF_HI : x);
    const float magic = 12582912.0f; /* 1.5 · 2^23: x + magic − magic rounds to an integer */
    float fn = (xc * 1.44269504088896341f + magic) - magic;
    float r = xc - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    float r2 = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r2 + r + 1.0f;
    int32_t bits = ((int32_t)fn + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float y = p * scale;
    y = x < SW_EXPF_LO ? 0.0f : y;
    return x != x ? x : y;
}

/* dst[i] = mul · exp(src[i] − shift) for i < n (dst may equal src); returns Σ dst[i] (float,
 * four lane sums then the tail, a fixed order). */
float sw_vexpf(float *dst, const float *src, float shift, float mul, int64_t n);

#endif
