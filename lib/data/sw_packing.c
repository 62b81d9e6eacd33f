/* sw_packing — best-fit / first-fit decreasing and next-fit bin packing, the windowed packer, and
 * the per-sample position layout of packed sequences (see sw_packing.h).
 *
 * Both decreasing strategies find their bin with a segment tree instead of scanning the bins, so
 * packing a million samples stays O(n log n): best fit keeps a count of open bins per remaining
 * capacity (0..cap) and asks for the smallest remaining >= the item; first fit keeps the maximum
 * remaining capacity over bin ranges and walks down to the leftmost bin that fits. */
#include "sw_packing.h"

#include "sw_err.h"

#include <stdlib.h>
#include <string.h>

int sw_pack_strategy_parse(const char *s, enum sw_pack_strategy *out) {
    if (!strcmp(s, "binpack") || !strcmp(s, "bfd")) return *out = SW_PACK_BFD, 0;
    if (!strcmp(s, "ffd")) return *out = SW_PACK_FFD, 0;
    if (!strcmp(s, "sequential")) return *out = SW_PACK_SEQUENTIAL, 0;
    return sw_err_set(SW_EINVAL, "unknown packing strategy '%s' (binpack, ffd, sequential)", s);
}

const char *sw_pack_strategy_name(enum sw_pack_strategy s) {
    return s == SW_PACK_FFD ? "ffd" : s == SW_PACK_SEQUENTIAL ? "sequential" : "binpack";
}

void sw_pack_bins_release(struct sw_pack_bins *b) {
    if (!b) return;
    free(b->start);
    free(b->item);
    free(b->fill);
    memset(b, 0, sizeof *b);
}

double sw_pack_efficiency(uint64_t tokens, size_t n_bins, uint32_t cap) {
    if (!n_bins || !cap) return 0;
    return (double)tokens / ((double)n_bins * (double)cap);
}

void sw_pack_positions(const uint32_t *len, size_t n, int32_t *cu_seqlens, int32_t *position_ids) {
    int64_t off = 0;
    if (cu_seqlens) cu_seqlens[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (position_ids)
            for (uint32_t k = 0; k < len[i]; k++)
                position_ids[off + k] = (int32_t)k;
        off += len[i];
        if (cu_seqlens) cu_seqlens[i + 1] = (int32_t)off;
    }
}

/* ---- placement ----------------------------------------------------------------------------- */

struct item {
    uint32_t len;
    size_t idx;
};

static int cmp_desc(const void *a, const void *b) {
    const struct item *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static size_t pow2_at_least(size_t n) {
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

/* Segment tree of counts over leaves 0..size-1: the smallest leaf >= w with a non-zero count. */
static long first_nonzero_from(const uint32_t *tree, size_t size, size_t w) {
    size_t i = w + size;
    if (tree[i]) return (long)w;
    /* Climb while i is a right child; then try its right sibling's subtree. */
    for (;;) {
        while (i > 1 && (i & 1))
            i >>= 1;
        if (i <= 1) return -1;
        i++;
        if (tree[i]) break;
    }
    while (i < size)
        i = tree[2 * i] ? 2 * i : 2 * i + 1;
    return (long)(i - size);
}

static void count_add(uint32_t *tree, size_t size, size_t leaf, int delta) {
    for (size_t i = leaf + size; i >= 1; i >>= 1)
        tree[i] = (uint32_t)((int64_t)tree[i] + delta);
}

struct bins_build {
    uint64_t *fill; /* per bin */
    size_t *bin_of; /* per sorted item */
    size_t n_bins;
};

static int place_bfd(const struct item *it, size_t n, uint32_t cap, struct bins_build *bb) {
    size_t size = pow2_at_least((size_t)cap + 1);
    uint32_t *tree = calloc(2 * size, sizeof *tree);
    long *head = malloc(((size_t)cap + 1) * sizeof *head); /* bins with remaining r (linked) */
    long *next = malloc(n * sizeof *next);
    if (!tree || !head || !next) {
        free(tree), free(head), free(next);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    for (size_t r = 0; r <= cap; r++)
        head[r] = -1;
    for (size_t k = 0; k < n; k++) {
        uint32_t w = it[k].len;
        long r = first_nonzero_from(tree, size, w);
        size_t b;
        if (r < 0) {
            b = bb->n_bins++;
            bb->fill[b] = 0;
        } else {
            b = (size_t)head[r];
            head[r] = next[b];
            count_add(tree, size, (size_t)r, -1);
        }
        bb->fill[b] += w;
        bb->bin_of[k] = b;
        size_t rem = cap - bb->fill[b];
        next[b] = head[rem];
        head[rem] = (long)b;
        count_add(tree, size, rem, +1);
    }
    free(tree), free(head), free(next);
    return 0;
}

static int place_ffd(const struct item *it, size_t n, uint32_t cap, struct bins_build *bb) {
    size_t size = pow2_at_least(n ? n : 1);
    uint32_t *mx = calloc(2 * size, sizeof *mx); /* max remaining over the range; unused bins 0 */
    if (!mx) return sw_err_set(SW_ENOMEM, "out of memory");
    for (size_t k = 0; k < n; k++) {
        uint32_t w = it[k].len;
        size_t b;
        if (mx[1] >= w) {
            size_t i = 1;
            while (i < size)
                i = mx[2 * i] >= w ? 2 * i : 2 * i + 1;
            b = i - size;
        } else {
            b = bb->n_bins++;
            bb->fill[b] = 0;
        }
        bb->fill[b] += w;
        bb->bin_of[k] = b;
        size_t i = b + size;
        mx[i] = (uint32_t)(cap - bb->fill[b]);
        for (i >>= 1; i >= 1; i >>= 1)
            mx[i] = mx[2 * i] > mx[2 * i + 1] ? mx[2 * i] : mx[2 * i + 1];
    }
    free(mx);
    return 0;
}

/* ms-swift's "sequential": one open bin; close it when the next item does not fit or it is full. */
static void place_sequential(const struct item *it, size_t n, uint32_t cap, struct bins_build *bb) {
    int open = 0;
    for (size_t k = 0; k < n; k++) {
        if (open && bb->fill[bb->n_bins - 1] + it[k].len > cap) open = 0;
        if (!open) {
            bb->fill[bb->n_bins++] = 0;
            open = 1;
        }
        bb->fill[bb->n_bins - 1] += it[k].len;
        bb->bin_of[k] = bb->n_bins - 1;
        if (bb->fill[bb->n_bins - 1] >= cap) open = 0;
    }
}

int sw_pack(const uint32_t *len, size_t n, uint32_t cap, enum sw_pack_strategy s,
            struct sw_pack_bins *out) {
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < n; i++)
        if (len[i] == 0 || len[i] > cap)
            return sw_err_set(SW_ERANGE, "packing: sample %zu has %u tokens (allowed: 1..%u)", i,
                              len[i], cap);
    struct item *it = malloc((n ? n : 1) * sizeof *it);
    struct bins_build bb = {malloc((n ? n : 1) * sizeof(uint64_t)),
                            malloc((n ? n : 1) * sizeof(size_t)), 0};
    out->start = calloc(n + 1, sizeof *out->start);
    out->item = malloc((n ? n : 1) * sizeof *out->item);
    int rc = 0;
    if (!it || !bb.fill || !bb.bin_of || !out->start || !out->item) {
        rc = sw_err_set(SW_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        it[i] = (struct item){len[i], i};
    if (s != SW_PACK_SEQUENTIAL) qsort(it, n, sizeof *it, cmp_desc);
    if (s == SW_PACK_BFD)
        rc = place_bfd(it, n, cap, &bb);
    else if (s == SW_PACK_FFD)
        rc = place_ffd(it, n, cap, &bb);
    else
        place_sequential(it, n, cap, &bb);
    if (rc < 0) goto done;
    /* Counting sort of items by bin keeps each bin's placement order. */
    for (size_t k = 0; k < n; k++)
        out->start[bb.bin_of[k] + 1]++;
    for (size_t b = 0; b < bb.n_bins; b++)
        out->start[b + 1] += out->start[b];
    size_t *pos = malloc((bb.n_bins ? bb.n_bins : 1) * sizeof *pos);
    if (!pos) {
        rc = sw_err_set(SW_ENOMEM, "out of memory");
        goto done;
    }
    memcpy(pos, out->start, bb.n_bins * sizeof *pos);
    for (size_t k = 0; k < n; k++)
        out->item[pos[bb.bin_of[k]]++] = it[k].idx;
    free(pos);
    out->n_bins = bb.n_bins;
    out->n_items = n;
    out->fill = bb.fill;
    bb.fill = NULL;
done:
    free(it);
    free(bb.fill);
    free(bb.bin_of);
    if (rc < 0) sw_pack_bins_release(out);
    return rc;
}

/* ---- the windowed packer -------------------------------------------------------------------- */

void sw_packer_init(struct sw_packer *p, uint32_t cap, size_t window, enum sw_pack_strategy s) {
    memset(p, 0, sizeof *p);
    p->cap = cap;
    p->window = window;
    p->strategy = s;
}

void sw_packer_release(struct sw_packer *p) {
    if (!p) return;
    free(p->ids);
    free(p->lens);
    memset(p, 0, sizeof *p);
}

int sw_packer_push(struct sw_packer *p, uint64_t id, uint32_t len) {
    if (len == 0 || len > p->cap)
        return sw_err_set(SW_ERANGE, "packing: a sample has %u tokens (allowed: 1..%u)", len,
                          p->cap);
    if (p->n == p->cap_items) {
        size_t cap = p->cap_items ? p->cap_items * 2 : 1024;
        uint64_t *a = realloc(p->ids, cap * sizeof *a);
        if (!a) return sw_err_set(SW_ENOMEM, "out of memory");
        p->ids = a;
        uint32_t *b = realloc(p->lens, cap * sizeof *b);
        if (!b) return sw_err_set(SW_ENOMEM, "out of memory");
        p->lens = b;
        p->cap_items = cap;
    }
    p->ids[p->n] = id;
    p->lens[p->n] = len;
    p->n++;
    return 0;
}

int sw_packer_ready(const struct sw_packer *p) {
    return p->window && p->n - p->n_carried >= p->window;
}

size_t sw_packer_pending(const struct sw_packer *p) {
    return p->n;
}

int sw_packer_take(struct sw_packer *p, int final, struct sw_pack_bins *out) {
    SW_TRY(sw_pack(p->lens, p->n, p->cap, p->strategy, out));
    size_t keep = (size_t)-1;
    if (!final && out->n_bins > 0) {
        keep = 0;
        for (size_t b = 1; b < out->n_bins; b++)
            if (out->fill[b] <= out->fill[keep]) keep = b;
    }
    /* Rewrite items as ids; move the kept bin's samples to the front of the pending arrays. */
    size_t n_keep = 0;
    uint64_t *kid = NULL;
    uint32_t *klen = NULL;
    if (keep != (size_t)-1) {
        n_keep = out->start[keep + 1] - out->start[keep];
        kid = malloc(n_keep * sizeof *kid);
        klen = malloc(n_keep * sizeof *klen);
        if (!kid || !klen) {
            free(kid), free(klen);
            sw_pack_bins_release(out);
            return sw_err_set(SW_ENOMEM, "out of memory");
        }
        for (size_t k = 0; k < n_keep; k++) {
            uint64_t i = out->item[out->start[keep] + k];
            kid[k] = p->ids[i];
            klen[k] = p->lens[i];
        }
        /* Drop the kept bin from the output. */
        size_t w = out->start[keep];
        for (size_t r = out->start[keep + 1]; r < out->n_items; r++)
            out->item[w++] = out->item[r];
        for (size_t b = keep; b + 1 < out->n_bins; b++) {
            out->start[b + 1] = out->start[b + 2] - n_keep;
            out->fill[b] = out->fill[b + 1];
        }
        out->n_bins--;
        out->n_items -= n_keep;
    }
    for (size_t k = 0; k < out->n_items; k++)
        out->item[k] = p->ids[out->item[k]];
    for (size_t k = 0; k < n_keep; k++) {
        p->ids[k] = kid[k];
        p->lens[k] = klen[k];
    }
    p->n = n_keep;
    p->n_carried = n_keep;
    free(kid);
    free(klen);
    return 0;
}
