/* sw_rng — the deterministic random numbers of sw: Philox4x32-10 (Salmon et al., "Parallel
 * random numbers: as easy as 1, 2, 3", SC'11; the generator behind cuRAND's and PyTorch's CUDA
 * RNG), counter-based, so a stream is fully described by three integers and any position of it
 * can be computed directly.
 *
 * A stream is (seed, stream id): the 64-bit seed is the Philox key, the 128-bit counter is
 * (block index: 64 bits, stream id: 64 bits). Separate purposes (weight init, LoRA init, data
 * shuffling, dropout) use separate stream ids, so drawing more numbers for one never shifts
 * another. The state is (seed, stream, offset) where offset counts the 32-bit words already
 * drawn: saving those three numbers and restoring them continues the sequence exactly.
 *
 * Integer output is bit-identical on every machine. Floats: uniform() and uniform_f64() are exact
 * (integer bits scaled by a power of two); normal() uses Box–Muller with libm's log/cos/sin in
 * double and rounds to float, so it agrees wherever libm's double results are within one ulp
 * (glibc, musl), which in practice means everywhere. */
#ifndef SW_RNG_H
#define SW_RNG_H

#include <stddef.h>
#include <stdint.h>

/* Stream ids used by sw (any 64-bit value works; these keep purposes apart). */
enum sw_rng_stream {
    SW_RNG_STREAM_INIT = 1,    /* weight init from a config */
    SW_RNG_STREAM_LORA = 2,    /* LoRA A init */
    SW_RNG_STREAM_SHUFFLE = 3, /* data order */
    SW_RNG_STREAM_DROPOUT = 4, /* per-step dropout seeds */
};

/* The whole state; plain data, safe to copy, save and restore field by field. */
struct sw_rng {
    uint64_t seed;   /* Philox key */
    uint64_t stream; /* counter words 2..3 */
    uint64_t offset; /* 32-bit words drawn so far (block = offset / 4, word = offset % 4) */
    uint32_t buf[4]; /* cache of block offset / 4 (derived; valid when have_block) */
    uint64_t buf_block;
    int have_block;
};

/* One Philox4x32-10 block: out = philox(ctr, key). Matches Random123's known-answer vectors. */
void sw_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Start stream `stream` of seed at offset 0. */
void sw_rng_init(struct sw_rng *r, uint64_t seed, uint64_t stream);
/* Restore a saved position (the three numbers of the state). */
void sw_rng_restore(struct sw_rng *r, uint64_t seed, uint64_t stream, uint64_t offset);

/* Next 32 / 64 random bits (u64 = two words, low word first). */
uint32_t sw_rng_u32(struct sw_rng *r);
uint64_t sw_rng_u64(struct sw_rng *r);
/* Uniform integer in [0, n) without modulo bias (Lemire's method with rejection); n = 0 gives 0. */
uint64_t sw_rng_below(struct sw_rng *r, uint64_t n);
/* Uniform float in [0, 1) from 24 bits; double in [0, 1) from 53 bits. */
float sw_rng_uniform(struct sw_rng *r);
double sw_rng_uniform_f64(struct sw_rng *r);
/* Normal(mean, std) as float (Box–Muller; each call consumes 4 words, uses one of the pair so
 * the position after n draws is always 4n words). */
float sw_rng_normal(struct sw_rng *r, float mean, float std);
/* Fill x[n] with normal(mean, std) or uniform [lo, hi) values, in index order. */
void sw_rng_fill_normal(struct sw_rng *r, float *x, size_t n, float mean, float std);
void sw_rng_fill_uniform(struct sw_rng *r, float *x, size_t n, float lo, float hi);
/* Normal draws first .. first + n - 1 of stream (seed, stream) into x[n]: exactly what
 * sw_rng_restore(r, seed, stream, 4 * first) then sw_rng_fill_normal(r, x, n, ...) gives (draw
 * k is block k), stateless, so slices of one long draw can be filled by separate threads. */
void sw_rng_fill_normal_at(uint64_t seed, uint64_t stream, uint64_t first, float *x, size_t n,
                           float mean, float std);
/* Fisher–Yates shuffle of idx[n] (i from n-1 down to 1 swaps with below(i + 1)). */
void sw_rng_shuffle_u64(struct sw_rng *r, uint64_t *idx, size_t n);

/* A stateless derived 64-bit value: philox(ctr = (a, b), key = seed) words 0..1. Used for seeds
 * that must be a pure function of their coordinates (dropout seed of step a, site b). */
uint64_t sw_rng_derive(uint64_t seed, uint64_t a, uint64_t b);

#endif
