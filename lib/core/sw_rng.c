/* sw_rng — Philox4x32-10 streams: block function, word cache, and the distributions built on it.
 *
 * The cache only avoids recomputing a block for the next three words; the numbers depend on
 * (seed, stream, offset) alone, which is what makes saving and restoring the state exact. */
#include "sw_rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void sw_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

void sw_rng_init(struct sw_rng *r, uint64_t seed, uint64_t stream) {
    sw_rng_restore(r, seed, stream, 0);
}

void sw_rng_restore(struct sw_rng *r, uint64_t seed, uint64_t stream, uint64_t offset) {
    r->seed = seed;
    r->stream = stream;
    r->offset = offset;
    r->buf_block = 0;
    r->have_block = 0;
}

static void block_at(uint64_t seed, uint64_t a, uint64_t b, uint32_t out[4]) {
    uint32_t ctr[4] = {(uint32_t)a, (uint32_t)(a >> 32), (uint32_t)b, (uint32_t)(b >> 32)};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    sw_philox4x32_10(ctr, key, out);
}

uint32_t sw_rng_u32(struct sw_rng *r) {
    uint64_t block = r->offset >> 2;
    if (!r->have_block || r->buf_block != block) {
        block_at(r->seed, block, r->stream, r->buf);
        r->buf_block = block;
        r->have_block = 1;
    }
    return r->buf[r->offset++ & 3];
}

uint64_t sw_rng_u64(struct sw_rng *r) {
    uint64_t lo = sw_rng_u32(r);
    uint64_t hi = sw_rng_u32(r);
    return lo | hi << 32;
}

uint64_t sw_rng_below(struct sw_rng *r, uint64_t n) {
    if (n == 0) return 0;
    /* Lemire: the high word of x·n is uniform once the low word clears the threshold
     * (2^64 - n) mod n. */
    uint64_t x = sw_rng_u64(r);
    unsigned __int128 m = (unsigned __int128)x * n;
    uint64_t low = (uint64_t)m;
    if (low < n) {
        uint64_t threshold = (0 - n) % n;
        while (low < threshold) {
            x = sw_rng_u64(r);
            m = (unsigned __int128)x * n;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

float sw_rng_uniform(struct sw_rng *r) {
    return (float)(sw_rng_u32(r) >> 8) * (1.0f / 16777216.0f);
}

double sw_rng_uniform_f64(struct sw_rng *r) {
    return (double)(sw_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Box–Muller from two 64-bit draws a (then) b; shared by the stream and the indexed fill so
 * both round identically. */
static float normal_from(uint64_t a, uint64_t b, float mean, float std) {
    /* u1 in (0, 1] so log(u1) is finite. */
    double u1 = (double)((a >> 11) + 1) * (1.0 / 9007199254740992.0);
    double u2 = (double)(b >> 11) * (1.0 / 9007199254740992.0);
    double z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
    return (float)((double)mean + (double)std * z);
}

float sw_rng_normal(struct sw_rng *r, float mean, float std) {
    uint64_t a = sw_rng_u64(r);
    return normal_from(a, sw_rng_u64(r), mean, std);
}

void sw_rng_fill_normal(struct sw_rng *r, float *x, size_t n, float mean, float std) {
    for (size_t i = 0; i < n; i++)
        x[i] = sw_rng_normal(r, mean, std);
}

void sw_rng_fill_normal_at(uint64_t seed, uint64_t stream, uint64_t first, float *x, size_t n,
                           float mean, float std) {
    for (size_t i = 0; i < n; i++) {
        uint32_t w[4];
        block_at(seed, first + i, stream, w);
        x[i] = normal_from((uint64_t)w[0] | (uint64_t)w[1] << 32,
                           (uint64_t)w[2] | (uint64_t)w[3] << 32, mean, std);
    }
}

void sw_rng_fill_uniform(struct sw_rng *r, float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * sw_rng_uniform(r);
}

void sw_rng_shuffle_u64(struct sw_rng *r, uint64_t *idx, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)sw_rng_below(r, i);
        uint64_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}

uint64_t sw_rng_derive(uint64_t seed, uint64_t a, uint64_t b) {
    uint32_t out[4];
    block_at(seed, a, b, out);
    return (uint64_t)out[0] | (uint64_t)out[1] << 32;
}
