/* sw_model_batch — turns a struct sw_batch (plain rows, right-padded rows with an attention
 * mask, or packed sequences with cu_seqlens) into what the kernels need: sequence boundaries
 * (cu_seqlens), valid lengths of padded rows (kv_len), a position per token (restarting at 0 in
 * every sequence unless given) and the shifted next-token targets (labels[t+1] inside the same
 * sequence and the valid part of a padded row, else ignored). Every input is checked, since
 * batches come from files and streams: a bad one is SW_EINVAL/SW_ERANGE naming row and token. */
#include "sw_model_impl.h"

#include "sw_err.h"

#include <stdlib.h>
#include <string.h>

void sw_host_batch_release(struct sw_host_batch *hb) {
    free(hb->cu), free(hb->kv_len), free(hb->pos), free(hb->targets);
    memset(hb, 0, sizeof(*hb));
}

static int build_segments(const struct sw_batch *b, struct sw_host_batch *hb) {
    int64_t N = hb->N;
    if (b->cu_seqlens && b->attention_mask)
        return sw_err_set(SW_EINVAL, "batch: give either cu_seqlens (packed) or attention_mask "
                                     "(padded), not both");
    if (b->cu_seqlens) {
        if (b->n_seqs < 1)
            return sw_err_set(SW_EINVAL, "batch: cu_seqlens with %d sequences", b->n_seqs);
        if (b->cu_seqlens[0] != 0 || b->cu_seqlens[b->n_seqs] != N)
            return sw_err_set(SW_EINVAL,
                              "batch: cu_seqlens must run from 0 to B*T = %lld "
                              "(got %d .. %d)",
                              (long long)N, (int)b->cu_seqlens[0], (int)b->cu_seqlens[b->n_seqs]);
        for (int s = 0; s < b->n_seqs; s++)
            if (b->cu_seqlens[s + 1] < b->cu_seqlens[s])
                return sw_err_set(SW_EINVAL, "batch: cu_seqlens decreases at sequence %d", s);
        hb->nseq = b->n_seqs;
    } else {
        hb->nseq = (int)b->B;
    }
    hb->cu = malloc((size_t)(hb->nseq + 1) * sizeof(int32_t));
    hb->kv_len = malloc((size_t)(hb->nseq ? hb->nseq : 1) * sizeof(int32_t));
    if (!hb->cu || !hb->kv_len) return sw_err_set(SW_ENOMEM, "batch: out of memory");
    for (int s = 0; s <= hb->nseq; s++)
        hb->cu[s] = b->cu_seqlens ? b->cu_seqlens[s] : (int32_t)(s * b->T);
    hb->max_len = 0;
    for (int s = 0; s < hb->nseq; s++) {
        hb->kv_len[s] = hb->cu[s + 1] - hb->cu[s];
        if (hb->kv_len[s] > hb->max_len) hb->max_len = hb->kv_len[s];
    }
    if (b->attention_mask) {
        hb->padded = 1;
        for (int64_t r = 0; r < b->B; r++) {
            const int32_t *mk = b->attention_mask + r * b->T;
            int64_t len = 0;
            while (len < b->T && mk[len])
                len++;
            for (int64_t t = len; t < b->T; t++)
                if (mk[t])
                    return sw_err_set(SW_EINVAL,
                                      "batch: attention_mask row %lld has a token at "
                                      "%lld after padding at %lld (only right padding is "
                                      "supported)",
                                      (long long)r, (long long)t, (long long)len);
            hb->kv_len[r] = (int32_t)len;
        }
    }
    return 0;
}

static int build_positions(const struct sw_batch *b, struct sw_host_batch *hb) {
    hb->max_pos = 0;
    for (int s = 0; s < hb->nseq; s++)
        for (int32_t t = hb->cu[s]; t < hb->cu[s + 1]; t++) {
            int32_t p = b->position_ids ? b->position_ids[t] : t - hb->cu[s];
            if (p < 0)
                return sw_err_set(SW_ERANGE, "batch: negative position_id %d at token %d", (int)p,
                                  (int)t);
            hb->pos[t] = p;
            if (p > hb->max_pos) hb->max_pos = p;
        }
    return 0;
}

/* Target of token t = labels[t + 1] when t + 1 is in the same sequence and not padding. */
static int build_targets(const struct sw_batch *b, int64_t vocab, struct sw_host_batch *hb) {
    hb->count = 0;
    for (int64_t t = 0; t < hb->N; t++)
        hb->targets[t] = SW_IGNORE_INDEX;
    if (!b->labels) return 0;
    for (int s = 0; s < hb->nseq; s++) {
        int32_t a = hb->cu[s], valid = a + hb->kv_len[s];
        for (int32_t t = a; t + 1 < valid; t++) {
            int32_t y = b->labels[t + 1];
            if (y == SW_IGNORE_INDEX) continue;
            if (y < 0 || y >= vocab)
                return sw_err_set(SW_ERANGE,
                                  "batch: label %d at token %d outside vocabulary "
                                  "[0, %lld) (use -100 to ignore)",
                                  (int)y, (int)(t + 1), (long long)vocab);
            hb->targets[t] = y;
            hb->count++;
        }
    }
    return 0;
}

int sw_host_batch_build(const struct sw_batch *b, int64_t vocab, struct sw_host_batch *hb) {
    memset(hb, 0, sizeof(*hb));
    if (!b || !b->input_ids || b->B < 1 || b->T < 1 || b->B * b->T > INT32_MAX)
        return sw_err_set(SW_EINVAL,
                          "batch: need input_ids and 1 <= B*T <= 2^31-1 (B %lld, T %lld)",
                          b ? (long long)b->B : 0LL, b ? (long long)b->T : 0LL);
    hb->N = b->B * b->T;
    for (int64_t t = 0; t < hb->N; t++)
        if (b->input_ids[t] < 0 || b->input_ids[t] >= vocab)
            return sw_err_set(SW_ERANGE,
                              "batch: token id %d at row %lld, column %lld outside "
                              "vocabulary [0, %lld)",
                              (int)b->input_ids[t], (long long)(t / b->T), (long long)(t % b->T),
                              (long long)vocab);
    int rc;
    hb->pos = malloc((size_t)hb->N * sizeof(int32_t));
    hb->targets = malloc((size_t)hb->N * sizeof(int32_t));
    if (!hb->pos || !hb->targets) {
        rc = sw_err_set(SW_ENOMEM, "batch: out of memory");
        goto fail;
    }
    SW_TRY_GOTO(rc, build_segments(b, hb), fail);
    SW_TRY_GOTO(rc, build_positions(b, hb), fail);
    SW_TRY_GOTO(rc, build_targets(b, vocab, hb), fail);
    return 0;
fail:
    sw_host_batch_release(hb);
    return rc;
}

int64_t sw_batch_count_targets(const struct sw_batch *b) {
    struct sw_host_batch hb;
    /* The vocabulary is unknown here: accept every non-negative id and label. */
    int rc = sw_host_batch_build(b, INT32_MAX, &hb);
    if (rc < 0) return rc;
    int64_t n = hb.count;
    sw_host_batch_release(&hb);
    return n;
}
