/* fastmath — sw_vexpf, the array form of sw_expf (fastmath.h), SSE2 four lanes at a time on
 * x86-64 (every x86-64 CPU has SSE2; the build targets the baseline ISA), scalar elsewhere. Each
 * lane does exactly sw_expf's float operations in its order, so results do not depend on an
 * element's position. */
#include "fastmath.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

float sw_vexpf(float *dst, const float *src, float shift, float mul, int64_t n) {
    int64_t i = 0;
    float sum = 0.0f;
#ifdef __SSE2__
    const __m128 lo = _mm_set1_ps(SW_EXPF_LO), hi = _mm_set1_ps(SW_EXPF_HI);
    const __m128 magic = _mm_set1_ps(12582912.0f), log2e = _mm_set1_ps(1.44269504088896341f);
    const __m128 c1 = _mm_set1_ps(0.693359375f), c2 = _mm_set1_ps(-2.12194440e-4f);
    const __m128 one = _mm_set1_ps(1.0f), vshift = _mm_set1_ps(shift), vmul = _mm_set1_ps(mul);
    const __m128i bias = _mm_set1_epi32(127);
    __m128 acc = _mm_setzero_ps();
    for (; i + 4 <= n; i += 4) {
        __m128 x = _mm_sub_ps(_mm_loadu_ps(src + i), vshift);
        __m128 nan = _mm_cmpunord_ps(x, x), low = _mm_cmplt_ps(x, lo);
        __m128 xc = _mm_min_ps(_mm_max_ps(x, lo), hi);
        __m128 fn = _mm_sub_ps(_mm_add_ps(_mm_mul_ps(xc, log2e), magic), magic);
        __m128 r = _mm_sub_ps(xc, _mm_mul_ps(fn, c1));
        r = _mm_sub_ps(r, _mm_mul_ps(fn, c2));
        __m128 r2 = _mm_mul_ps(r, r);
        __m128 p = _mm_set1_ps(1.9875691500e-4f);
        p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(1.3981999507e-3f));
        p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(8.3334519073e-3f));
        p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(4.1665795894e-2f));
        p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(1.6666665459e-1f));
        p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(5.0000001201e-1f));
        p = _mm_add_ps(_mm_add_ps(_mm_mul_ps(p, r2), r), one);
        __m128i e = _mm_slli_epi32(_mm_add_epi32(_mm_cvttps_epi32(fn), bias), 23);
        __m128 y = _mm_andnot_ps(low, _mm_mul_ps(p, _mm_castsi128_ps(e)));
        y = _mm_or_ps(_mm_and_ps(nan, x), _mm_andnot_ps(nan, y));
        y = _mm_mul_ps(y, vmul);
        _mm_storeu_ps(dst + i, y);
        acc = _mm_add_ps(acc, y);
    }
    float lanes[4];
    _mm_storeu_ps(lanes, acc);
    sum = (lanes[0] + lanes[2]) + (lanes[1] + lanes[3]);
#endif
    for (; i < n; i++) {
        dst[i] = mul * sw_expf(src[i] - shift);
        sum += dst[i];
    }
    return sum;
}
