/* Unit tests for sw_rng: Philox4x32-10 against Random123's known-answer vectors, the word
 * layout of a stream, exact save/restore, stream separation, and sanity of the distributions
 * (bounded integers without bias, uniform and normal moments, shuffles are permutations). */
#include "sw_rng.h"
#include "tap.h"

#include <stdlib.h>

static void test_kat(void) {
    /* Random123 tests/kat_vectors, the three "philox4x32 10" lines: ctr[4] key[2] -> out[4]. */
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
         0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
         0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int i = 0; i < 3; i++) {
        uint32_t out[4];
        sw_philox4x32_10(kat[i], kat[i] + 4, out);
        OK(memcmp(out, kat[i] + 6, sizeof out) == 0, "Philox4x32-10 KAT %d (%08x %08x %08x %08x)",
           i, out[0], out[1], out[2], out[3]);
    }
}

static void test_layout_and_restore(void) {
    struct sw_rng r;
    uint64_t seed = 0x0123456789abcdefull, stream = 7;
    sw_rng_init(&r, seed, stream);
    uint32_t w[12];
    for (int i = 0; i < 12; i++)
        w[i] = sw_rng_u32(&r);
    int ok = 1;
    for (uint32_t b = 0; b < 3; b++) {
        uint32_t ctr[4] = {b, 0, (uint32_t)stream, 0}, key[2] = {0x89abcdef, 0x01234567}, out[4];
        sw_philox4x32_10(ctr, key, out);
        ok &= memcmp(out, w + 4 * b, sizeof out) == 0;
    }
    OK(ok, "word k of a stream is word k%%4 of block k/4 with counter (block, stream)");
    IS_INT(r.offset, 12, "offset counts words");

    /* Restore at every offset continues exactly. */
    sw_rng_init(&r, 99, 3);
    uint64_t seq[40];
    for (int i = 0; i < 40; i++)
        seq[i] = sw_rng_u32(&r);
    ok = 1;
    for (int at = 0; at < 40; at++) {
        struct sw_rng q;
        sw_rng_restore(&q, 99, 3, (uint64_t)at);
        for (int i = at; i < 40; i++)
            ok &= sw_rng_u32(&q) == seq[i];
    }
    OK(ok, "restore(seed, stream, offset) continues the sequence at every offset");

    /* Mixed draws: the state after a mix is reproducible from its three numbers. */
    sw_rng_init(&r, 5, SW_RNG_STREAM_SHUFFLE);
    sw_rng_u32(&r);
    sw_rng_normal(&r, 0, 1);
    sw_rng_below(&r, 10);
    struct sw_rng saved = r, q;
    sw_rng_restore(&q, saved.seed, saved.stream, saved.offset);
    float a = sw_rng_normal(&r, 0, 1), b = sw_rng_normal(&q, 0, 1);
    OK(memcmp(&a, &b, 4) == 0, "normal after restore is bit-identical");

    struct sw_rng s1, s2;
    sw_rng_init(&s1, 5, 1);
    sw_rng_init(&s2, 5, 2);
    int same = 0;
    for (int i = 0; i < 100; i++)
        same += sw_rng_u32(&s1) == sw_rng_u32(&s2);
    OK(same < 3, "different streams of one seed differ (%d equal words)", same);
    sw_rng_init(&s1, 5, 1);
    sw_rng_init(&s2, 6, 1);
    same = 0;
    for (int i = 0; i < 100; i++)
        same += sw_rng_u32(&s1) == sw_rng_u32(&s2);
    OK(same < 3, "different seeds differ");
    OK(sw_rng_derive(1, 2, 3) == sw_rng_derive(1, 2, 3), "derive is a pure function");
    OK(sw_rng_derive(1, 2, 3) != sw_rng_derive(1, 2, 4) &&
           sw_rng_derive(1, 2, 3) != sw_rng_derive(2, 2, 3),
       "derive depends on every argument");
    /* u64 = two words, low first. */
    sw_rng_init(&s1, 11, 0);
    sw_rng_init(&s2, 11, 0);
    uint64_t lo = sw_rng_u32(&s2), hi = sw_rng_u32(&s2);
    OK(sw_rng_u64(&s1) == (lo | hi << 32), "u64 is two words, low first");
}

static void test_distributions(void) {
    struct sw_rng r;
    sw_rng_init(&r, 42, 0);
    enum { N = 200000 };
    /* below(6): chi-square over 6 bins with 5 dof; 99.9% quantile is 20.5. */
    int64_t bins[6] = {0};
    int inrange = 1;
    for (int i = 0; i < N; i++) {
        uint64_t v = sw_rng_below(&r, 6);
        inrange &= v < 6;
        if (v < 6) bins[v]++;
    }
    double chi = 0, e = N / 6.0;
    for (int i = 0; i < 6; i++)
        chi += (bins[i] - e) * (bins[i] - e) / e;
    OK(inrange && chi < 20.5, "below(6) uniform (chi2 = %.2f)", chi);
    /* A bound near 2^64 exercises the rejection path. */
    uint64_t big = 0xc000000000000001ull;
    inrange = 1;
    for (int i = 0; i < 1000; i++)
        inrange &= sw_rng_below(&r, big) < big;
    OK(inrange, "below(n) < n for n near 2^64");
    IS_INT(sw_rng_below(&r, 0), 0, "below(0) is 0");
    IS_INT(sw_rng_below(&r, 1), 0, "below(1) is 0");

    double s = 0, ss = 0, mn = 1, mx = 0;
    for (int i = 0; i < N; i++) {
        float u = sw_rng_uniform(&r);
        s += u;
        ss += (double)u * u;
        if (u < mn) mn = u;
        if (u > mx) mx = u;
    }
    double mean = s / N, var = ss / N - mean * mean;
    OK(mn >= 0 && mx < 1 && fabs(mean - 0.5) < 0.005 && fabs(var - 1.0 / 12) < 0.002,
       "uniform in [0,1): mean %.4f var %.4f", mean, var);

    float *x = malloc(N * sizeof(float));
    uint64_t off0 = r.offset;
    sw_rng_fill_normal(&r, x, N, 1.0f, 2.0f);
    s = ss = 0;
    int finite = 1;
    for (int i = 0; i < N; i++) {
        finite &= isfinite(x[i]);
        s += x[i];
        ss += (double)x[i] * x[i];
    }
    mean = s / N, var = ss / N - mean * mean;
    OK(finite && fabs(mean - 1.0) < 0.03 && fabs(var - 4.0) < 0.08,
       "normal(1, 2): mean %.4f var %.4f", mean, var);
    IS_INT(r.offset - off0, 4 * (uint64_t)N, "each normal draw consumes 4 words");
    sw_rng_fill_uniform(&r, x, 1000, -3.0f, -1.0f);
    int ok = 1;
    for (int i = 0; i < 1000; i++)
        ok &= x[i] >= -3.0f && x[i] < -1.0f;
    OK(ok, "fill_uniform within [lo, hi)");
    free(x);

    uint64_t idx[1000], idx2[1000];
    for (int i = 0; i < 1000; i++)
        idx[i] = idx2[i] = (uint64_t)i;
    struct sw_rng a, b;
    sw_rng_init(&a, 3, SW_RNG_STREAM_SHUFFLE);
    sw_rng_init(&b, 3, SW_RNG_STREAM_SHUFFLE);
    sw_rng_shuffle_u64(&a, idx, 1000);
    sw_rng_shuffle_u64(&b, idx2, 1000);
    OK(memcmp(idx, idx2, sizeof idx) == 0, "same seed, same shuffle");
    int seen[1000] = {0}, fixed = 0;
    ok = 1;
    for (int i = 0; i < 1000; i++) {
        ok &= idx[i] < 1000 && !seen[idx[i]];
        if (idx[i] < 1000) seen[idx[i]] = 1;
        fixed += idx[i] == (uint64_t)i;
    }
    OK(ok && fixed < 10, "shuffle is a permutation that moves things (%d fixed points)", fixed);
    sw_rng_shuffle_u64(&a, idx, 0);
    sw_rng_shuffle_u64(&a, idx, 1);
    OK(1, "shuffle of 0 and 1 elements is a no-op");
}

static void test_golden_values(void) {
    /* Frozen outputs (cross-checked with an independent 12-line Python Philox): a change here
     * changes every seeded run of sw (initial weights, data order), so it must be deliberate. */
    struct sw_rng r;
    sw_rng_init(&r, 1234, SW_RNG_STREAM_INIT);
    uint32_t w0 = sw_rng_u32(&r), w1 = sw_rng_u32(&r);
    float u = sw_rng_uniform(&r);
    uint64_t b = sw_rng_below(&r, 1000);
    DIAG("frozen: %08x %08x %.9g %llu", w0, w1, u, (unsigned long long)b);
    OK(u == 0.781055391f, "uniform value");
    OK(w0 == 0xd115a128u && w1 == 0x52fc7c75u, "first words of seed 1234 / init stream");
    OK(b == 27u, "below(1000) value");
}

int main(void) {
    test_kat();
    test_layout_and_restore();
    test_distributions();
    test_golden_values();
    return tap_done();
}
