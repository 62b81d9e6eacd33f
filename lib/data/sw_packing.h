/* sw_packing — bin packing of token samples into fixed-length sequences (ms-swift's --packing).
 *
 * Samples of lengths len[i] <= cap go into bins (packed sequences) of capacity cap tokens:
 *   binpack     best-fit decreasing (ms-swift's default, via the binpacking package): longest
 *               first, each into the fullest bin it fits, else a new bin. O(n log cap) with a
 *               segment tree over remaining capacities.
 *   ffd         first-fit decreasing: longest first, each into the earliest bin it fits.
 *               O(n log n) with a segment tree over bins (max remaining capacity).
 *   sequential  next-fit in input order (ms-swift's "sequential"): order preserved, one open bin.
 * First-fit decreasing uses at most 11/9 OPT + 6/9 bins (Dósa 2007); best-fit decreasing has the
 * same 11/9 asymptotic ratio (Johnson 1973).
 *
 * Global decreasing packing needs every length at once. sw_packer bounds that to a window: it
 * collects `window` samples, packs them, and hands out every bin but the least filled one, whose
 * samples wait for the next window (ms-swift's PackingDataset does the same with windows of 1000
 * samples and carries its last bin). A larger window packs tighter; memory is window samples.
 *
 * Inside a packed sequence every sample keeps its own positions (position_ids restart at 0) and
 * cu_seqlens marks the sample boundaries, so attention stays within samples. */
#ifndef SW_PACKING_H
#define SW_PACKING_H

#include <stddef.h>
#include <stdint.h>

enum sw_pack_strategy { SW_PACK_BFD = 0, SW_PACK_FFD, SW_PACK_SEQUENTIAL };

/* "binpack", "ffd", "sequential". Returns 0 or SW_EINVAL. */
int sw_pack_strategy_parse(const char *s, enum sw_pack_strategy *out);
const char *sw_pack_strategy_name(enum sw_pack_strategy s);

/* Bins as item lists: bin b holds item[start[b] .. start[b + 1]) and fill[b] tokens. */
struct sw_pack_bins {
    size_t n_bins;
    size_t *start;  /* n_bins + 1 */
    uint64_t *item; /* item indices (sw_pack) or ids (sw_packer_take), bin after bin */
    uint64_t *fill; /* n_bins */
    size_t n_items;
};
void sw_pack_bins_release(struct sw_pack_bins *b);

/* Pack n items of lengths len[] (each 1..cap) into *out (overwritten; release it after).
 * Bins come in creation order; a bin's items in the order they were placed. Returns 0,
 * SW_ERANGE naming the first item longer than cap (or empty), or SW_ENOMEM. */
int sw_pack(const uint32_t *len, size_t n, uint32_t cap, enum sw_pack_strategy s,
            struct sw_pack_bins *out);

/* tokens / (n_bins * cap), 0 when there are no bins. */
double sw_pack_efficiency(uint64_t tokens, size_t n_bins, uint32_t cap);

/* For n samples of lengths len[] laid out back to back: cu_seqlens[n + 1] (0, len0, len0+len1,
 * ...) and position_ids[sum len] restarting at 0 at each sample. Either output may be NULL. */
void sw_pack_positions(const uint32_t *len, size_t n, int32_t *cu_seqlens, int32_t *position_ids);

/* The windowed packer. */
struct sw_packer {
    uint32_t cap;
    size_t window;
    enum sw_pack_strategy strategy;
    uint64_t *ids;
    uint32_t *lens;
    size_t n, cap_items;
    size_t n_carried; /* samples kept back by the last take */
};

/* window 0 = unbounded (pack everything at the final take). */
void sw_packer_init(struct sw_packer *p, uint32_t cap, size_t window, enum sw_pack_strategy s);
void sw_packer_release(struct sw_packer *p);
/* Add one sample (id chosen by the caller, len 1..cap). Returns 0, SW_ERANGE, SW_ENOMEM. */
int sw_packer_push(struct sw_packer *p, uint64_t id, uint32_t len);
/* 1 when a window's worth of new samples arrived since the last take (time to take). */
int sw_packer_ready(const struct sw_packer *p);
size_t sw_packer_pending(const struct sw_packer *p);
/* Pack the pending samples into *out (item = the ids pushed). Unless final, the least filled bin
 * stays pending and joins the next window. Returns 0 or SW_ENOMEM. */
int sw_packer_take(struct sw_packer *p, int final, struct sw_pack_bins *out);

#endif
