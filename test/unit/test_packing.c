/* test_packing — invariants of the bin packers (every sample exactly once, no bin over capacity,
 * consistent offsets), agreement with naive reference implementations of first-fit and best-fit
 * decreasing, optimality bounds against brute force on small cases, next-fit order, efficiency,
 * position ids / cu_seqlens, and the windowed packer's carry-over. */
#include "sw_err.h"
#include "sw_packing.h"
#include "sw_rng.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

/* Every item exactly once, fills = sums of lengths <= cap, offsets monotone. */
static int check_bins(const struct sw_pack_bins *b, const uint32_t *len, size_t n, uint32_t cap) {
    unsigned char *seen = calloc(n ? n : 1, 1);
    int ok = b->n_items == n && b->start[0] == 0 && b->start[b->n_bins] == n;
    for (size_t k = 0; ok && k < b->n_bins; k++) {
        uint64_t sum = 0;
        ok &= b->start[k] < b->start[k + 1]; /* no empty bin */
        for (size_t j = b->start[k]; ok && j < b->start[k + 1]; j++) {
            uint64_t i = b->item[j];
            ok &= i < n && !seen[i];
            if (ok) {
                seen[i] = 1;
                sum += len[i];
            }
        }
        ok &= sum == b->fill[k] && sum <= cap;
    }
    for (size_t i = 0; ok && i < n; i++)
        ok &= seen[i];
    free(seen);
    return ok;
}

static int cmp_u32_desc_idx(const void *a, const void *b, void *lenv) {
    const uint32_t *len = lenv;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    if (len[x] != len[y]) return len[x] > len[y] ? -1 : 1;
    return x < y ? -1 : 1;
}

/* Naive O(n * bins) decreasing packers: best = fullest bin that fits, else first bin that fits. */
static size_t naive_pack(const uint32_t *len, size_t n, uint32_t cap, int best, uint64_t *fill,
                         size_t *bin_of_item) {
    size_t *order = malloc(n * sizeof *order);
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    qsort_r(order, n, sizeof *order, cmp_u32_desc_idx, (void *)len);
    size_t nb = 0;
    for (size_t k = 0; k < n; k++) {
        uint32_t w = len[order[k]];
        long pick = -1;
        for (size_t b = 0; b < nb; b++) {
            if (fill[b] + w > cap) continue;
            if (!best) {
                pick = (long)b;
                break;
            }
            if (pick < 0 || fill[b] > fill[pick]) pick = (long)b;
        }
        if (pick < 0) {
            pick = (long)nb;
            fill[nb++] = 0;
        }
        fill[pick] += w;
        if (bin_of_item) bin_of_item[order[k]] = (size_t)pick;
    }
    free(order);
    return nb;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Smallest number of bins for n <= 10 items by exhaustive search (items in decreasing order,
 * each into an existing bin or a new one; symmetric new bins pruned). */
static void opt_rec(const uint32_t *len, size_t n, size_t k, uint32_t cap, uint64_t *fill,
                    size_t nb, size_t *best) {
    if (nb >= *best) return;
    if (k == n) {
        *best = nb;
        return;
    }
    for (size_t b = 0; b < nb; b++) {
        if (fill[b] + len[k] > cap) continue;
        fill[b] += len[k];
        opt_rec(len, n, k + 1, cap, fill, nb, best);
        fill[b] -= len[k];
    }
    fill[nb] = len[k];
    opt_rec(len, n, k + 1, cap, fill, nb + 1, best);
}

static size_t opt_bins(const uint32_t *len_in, size_t n, uint32_t cap) {
    uint32_t len[16];
    memcpy(len, len_in, n * sizeof *len);
    for (size_t i = 0; i < n; i++) /* decreasing order prunes faster */
        for (size_t j = i + 1; j < n; j++)
            if (len[j] > len[i]) {
                uint32_t t = len[i];
                len[i] = len[j];
                len[j] = t;
            }
    uint64_t fill[16];
    size_t best = n;
    opt_rec(len, n, 0, cap, fill, 0, &best);
    return best;
}

static void test_invariants(void) {
    struct sw_rng rng;
    sw_rng_init(&rng, 1234, 9);
    const uint32_t caps[] = {16, 100, 2048};
    int all_ok = 1, ffd_same = 1, bfd_same = 1, trials = 0;
    for (int t = 0; t < 60; t++) {
        uint32_t cap = caps[t % 3];
        size_t n = 1 + sw_rng_below(&rng, 400);
        uint32_t *len = malloc(n * sizeof *len);
        for (size_t i = 0; i < n; i++) {
            /* Mix of tiny, medium and near-capacity samples. */
            uint32_t kind = (uint32_t)sw_rng_below(&rng, 3);
            uint32_t hi = kind == 0 ? (cap / 8 ? cap / 8 : 1) : kind == 1 ? cap / 2 : cap;
            len[i] = 1 + (uint32_t)sw_rng_below(&rng, hi);
        }
        for (int s = 0; s < 3; s++) {
            struct sw_pack_bins b;
            int rc = sw_pack(len, n, cap, (enum sw_pack_strategy)s, &b);
            all_ok &= rc == 0 && check_bins(&b, len, n, cap);
            uint64_t *fill = malloc(n * sizeof *fill);
            size_t *bin_of = malloc(n * sizeof *bin_of);
            if (s == SW_PACK_FFD) {
                /* First fit is deterministic: the same bin for every item. */
                size_t nb = naive_pack(len, n, cap, 0, fill, bin_of);
                int same = nb == b.n_bins;
                for (size_t k = 0; same && k < b.n_bins; k++)
                    for (size_t j = b.start[k]; j < b.start[k + 1]; j++)
                        same &= bin_of[b.item[j]] == k;
                ffd_same &= same;
            } else if (s == SW_PACK_BFD) {
                /* Best fit's ties (equal fill) may pick either bin; the multiset of fills cannot
                 * differ. */
                size_t nb = naive_pack(len, n, cap, 1, fill, NULL);
                uint64_t *mine = malloc(b.n_bins * sizeof *mine);
                memcpy(mine, b.fill, b.n_bins * sizeof *mine);
                qsort(mine, b.n_bins, sizeof *mine, cmp_u64);
                qsort(fill, nb, sizeof *fill, cmp_u64);
                bfd_same &= nb == b.n_bins && memcmp(mine, fill, nb * sizeof *mine) == 0;
                free(mine);
            }
            free(fill);
            free(bin_of);
            sw_pack_bins_release(&b);
        }
        free(len);
        trials++;
    }
    OK(all_ok, "%d random cases x 3 strategies: every sample once, no bin over capacity", trials);
    OK(ffd_same, "ffd equals a naive first-fit-decreasing, bin for bin");
    OK(bfd_same, "binpack equals a naive best-fit-decreasing (same bin fills)");
}

static void test_small_cases(void) {
    /* Classic cases where decreasing packing is optimal. */
    uint32_t a[] = {6, 4, 6, 4};
    struct sw_pack_bins b;
    sw_pack(a, 4, 10, SW_PACK_FFD, &b);
    IS_INT(b.n_bins, 2, "{6,4,6,4} into 10: 2 bins");
    IS_NEAR(sw_pack_efficiency(20, b.n_bins, 10), 1.0, 1e-12, "efficiency 1.0");
    sw_pack_bins_release(&b);
    sw_pack(a, 4, 10, SW_PACK_SEQUENTIAL, &b);
    IS_INT(b.n_bins, 2, "sequential {6,4,6,4}: 2 bins too");
    sw_pack_bins_release(&b);
    uint32_t c[] = {6, 6, 5, 5};
    sw_pack(c, 4, 11, SW_PACK_SEQUENTIAL, &b);
    IS_INT(b.n_bins, 3, "sequential {6,6,5,5} into 11: 3 bins (order kept)");
    OK(b.item[0] == 0 && b.item[1] == 1 && b.item[2] == 2 && b.item[3] == 3,
       "sequential keeps order");
    sw_pack_bins_release(&b);
    sw_pack(c, 4, 11, SW_PACK_BFD, &b);
    IS_INT(b.n_bins, 2, "binpack {6,6,5,5} into 11: 2 bins");
    sw_pack_bins_release(&b);

    /* Against brute force: within Dósa's bound 11/9 OPT + 6/9, and equal on most cases. */
    struct sw_rng rng;
    sw_rng_init(&rng, 99, 1);
    int bound_ok = 1, equal = 0, cases = 200;
    for (int t = 0; t < cases; t++) {
        size_t n = 2 + sw_rng_below(&rng, 9);
        uint32_t len[16], cap = 20;
        for (size_t i = 0; i < n; i++)
            len[i] = 1 + (uint32_t)sw_rng_below(&rng, cap);
        size_t opt = opt_bins(len, n, cap);
        for (int s = 0; s < 2; s++) {
            sw_pack(len, n, cap, (enum sw_pack_strategy)s, &b);
            bound_ok &= 9 * b.n_bins <= 11 * opt + 6;
            equal += b.n_bins == opt;
            sw_pack_bins_release(&b);
        }
    }
    OK(bound_ok, "binpack and ffd stay within 11/9 OPT + 6/9 on %d brute-forced cases", cases);
    OK(equal >= 2 * cases * 9 / 10, "and reach the optimum on %d of %d", equal, 2 * cases);

    /* Efficiency is tokens over bins x capacity. */
    IS_NEAR(sw_pack_efficiency(1500, 2, 1000), 0.75, 1e-12, "1500 tokens in 2 x 1000: 0.75");
    IS_NEAR(sw_pack_efficiency(0, 0, 1000), 0.0, 0, "no bins: 0");

    uint32_t bad[] = {3, 0};
    IS_INT(sw_pack(bad, 2, 10, SW_PACK_BFD, &b), SW_ERANGE, "an empty sample is refused");
    uint32_t big[] = {3, 11};
    IS_INT(sw_pack(big, 2, 10, SW_PACK_FFD, &b), SW_ERANGE, "a sample over capacity is refused");
    IS_INT(sw_pack(NULL, 0, 10, SW_PACK_BFD, &b), 0, "no samples: fine");
    IS_INT(b.n_bins, 0, "no samples: no bins");
    sw_pack_bins_release(&b);
    enum sw_pack_strategy st;
    OK(sw_pack_strategy_parse("binpack", &st) == 0 && st == SW_PACK_BFD,
       "'binpack' is best-fit decreasing");
    OK(sw_pack_strategy_parse("nope", &st) == SW_EINVAL, "unknown strategy rejected");
}

static void test_positions(void) {
    uint32_t len[] = {3, 1, 4};
    int32_t cu[4], pos[8];
    sw_pack_positions(len, 3, cu, pos);
    OK(cu[0] == 0 && cu[1] == 3 && cu[2] == 4 && cu[3] == 8, "cu_seqlens 0,3,4,8");
    int32_t want[] = {0, 1, 2, 0, 0, 1, 2, 3};
    OK(memcmp(pos, want, sizeof want) == 0, "position ids restart at every sample");
}

static void test_packer(void) {
    struct sw_rng rng;
    sw_rng_init(&rng, 5, 5);
    const uint32_t cap = 512;
    const size_t n = 5000;
    struct sw_packer p;
    sw_packer_init(&p, cap, 300, SW_PACK_BFD);
    unsigned char *seen = calloc(n, 1);
    uint32_t *lens = malloc(n * sizeof *lens);
    uint64_t tokens = 0, bins = 0, twice = 0, over = 0, takes = 0, max_pending = 0;
    for (size_t i = 0; i <= n; i++) {
        int final = i == n;
        if (!final) {
            lens[i] = 1 + (uint32_t)sw_rng_below(&rng, cap / 3);
            tokens += lens[i];
            sw_packer_push(&p, 1000 + i, lens[i]);
            if (sw_packer_pending(&p) > max_pending) max_pending = sw_packer_pending(&p);
        }
        if (final || sw_packer_ready(&p)) {
            struct sw_pack_bins b;
            sw_packer_take(&p, final, &b);
            takes++;
            for (size_t k = 0; k < b.n_bins; k++) {
                uint64_t sum = 0;
                for (size_t j = b.start[k]; j < b.start[k + 1]; j++) {
                    uint64_t id = b.item[j] - 1000;
                    twice += seen[id]++;
                    sum += lens[id];
                }
                over += sum != b.fill[k] || sum > cap;
            }
            bins += b.n_bins;
            sw_pack_bins_release(&b);
        }
    }
    size_t missing = 0;
    for (size_t i = 0; i < n; i++)
        missing += !seen[i];
    OK(missing == 0 && twice == 0, "windowed: every sample exactly once (%zu missing, %llu twice)",
       missing, (unsigned long long)twice);
    IS_INT(over, 0, "windowed: fills right and within capacity");
    IS_INT(sw_packer_pending(&p), 0, "final take leaves nothing pending");
    OK(max_pending < 300 + 100, "memory bounded by about one window (max pending %llu)",
       (unsigned long long)max_pending);
    double eff = sw_pack_efficiency(tokens, bins, cap);
    OK(eff > 0.95, "windowed efficiency %.4f over %llu takes", eff, (unsigned long long)takes);
    free(seen);
    free(lens);
    sw_packer_release(&p);

    /* window 0: nothing is ready until the final take; everything in one global pass. */
    sw_packer_init(&p, 10, 0, SW_PACK_FFD);
    for (int i = 0; i < 8; i++)
        sw_packer_push(&p, (uint64_t)i, i % 2 ? 6 : 4);
    OK(!sw_packer_ready(&p), "window 0 never asks for a take");
    struct sw_pack_bins b;
    sw_packer_take(&p, 1, &b);
    IS_INT(b.n_bins, 4, "global pass: 4 bins of 6+4");
    sw_pack_bins_release(&b);
    IS_INT(sw_packer_push(&p, 1, 11), SW_ERANGE, "push over capacity refused");
    sw_packer_release(&p);
}

int main(void) {
    test_invariants();
    test_small_cases();
    test_positions();
    test_packer();
    return tap_done();
}
