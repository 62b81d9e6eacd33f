/* sw_detok — incremental detokenization and stop strings (see sw_detok.h). */
#include "sw_detok.h"

#include "sw_err.h"
#include "sw_tokenizer.h"

#include <stdlib.h>
#include <string.h>

/* Prompt ids decoded before the first generated one (vLLM's INITIAL_INCREMENTAL_DETOKENIZATION
 * _OFFSET). */
#define SW_DETOK_WINDOW 5

void sw_detok_init(struct sw_detok *d, const struct sw_tokenizer *tok, int skip_special,
                   int64_t n_prompt, const char *const *stop, int n_stop, int include_stop) {
    memset(d, 0, sizeof(*d));
    d->tok = tok;
    d->skip_special = skip_special;
    d->stop = stop;
    d->n_stop = n_stop;
    d->include_stop = include_stop;
    for (int i = 0; i < n_stop; i++) {
        size_t l = strlen(stop[i]);
        if (l > d->max_stop) d->max_stop = l;
    }
    d->prefix_offset = n_prompt > SW_DETOK_WINDOW ? n_prompt - SW_DETOK_WINDOW : 0;
    d->read_offset = n_prompt;
}

void sw_detok_release(struct sw_detok *d) {
    if (!d) return;
    free(d->text);
    d->text = NULL;
    d->len = d->cap = d->emitted = 0;
}

static int append(struct sw_detok *d, const char *s, size_t n) {
    if (d->len + n + 1 > d->cap) {
        size_t cap = d->cap ? d->cap : 64;
        while (cap < d->len + n + 1)
            cap *= 2;
        char *t = realloc(d->text, cap);
        if (!t) return sw_err_set(SW_ENOMEM, "detokenizer: out of memory");
        d->text = t;
        d->cap = cap;
    }
    memcpy(d->text + d->len, s, n);
    d->len += n;
    d->text[d->len] = 0;
    return 0;
}

static int ends_in_replacement(const char *s, size_t n) {
    return n >= 3 && (unsigned char)s[n - 3] == 0xEF && (unsigned char)s[n - 2] == 0xBF &&
           (unsigned char)s[n - 1] == 0xBD;
}

/* Search the stop strings in text from byte `from`; the earliest match wins (then the longest
 * string there). Returns the string's index and sets *at, or −1. */
static int find_stop(const struct sw_detok *d, size_t from, size_t *at) {
    int best = -1;
    size_t best_at = 0, best_len = 0;
    for (int i = 0; i < d->n_stop; i++) {
        size_t l = strlen(d->stop[i]);
        for (size_t p = from; p + l <= d->len; p++) {
            if (best >= 0 && p > best_at) break;
            if (memcmp(d->text + p, d->stop[i], l) == 0) {
                if (best < 0 || p < best_at || (p == best_at && l > best_len))
                    best = i, best_at = p, best_len = l;
                break;
            }
        }
    }
    if (best >= 0) *at = best_at;
    return best;
}

int sw_detok_add(struct sw_detok *d, const int32_t *ids, int64_t n, int *matched) {
    *matched = -1;
    if (d->stopped) return 0;
    char *prefix = NULL, *full = NULL;
    size_t plen = 0, flen = 0;
    int rc = sw_tokenizer_decode(d->tok, ids + d->prefix_offset,
                                 (size_t)(d->read_offset - d->prefix_offset), d->skip_special,
                                 &prefix, &plen);
    if (rc == 0)
        rc = sw_tokenizer_decode(d->tok, ids + d->prefix_offset, (size_t)(n - d->prefix_offset),
                                 d->skip_special, &full, &flen);
    if (rc < 0) goto out;
    if (flen > plen && !ends_in_replacement(full, flen)) {
        /* the window's ids up to read_offset were accepted whole, so full starts with prefix */
        size_t old_len = d->len;
        if ((rc = append(d, full + plen, flen - plen)) < 0) goto out;
        d->prefix_offset = d->read_offset;
        d->read_offset = n;
        if (d->n_stop > 0) {
            size_t from = old_len > d->max_stop - 1 ? old_len - (d->max_stop - 1) : 0, at;
            int i = find_stop(d, from, &at);
            if (i >= 0) {
                d->len = at + (d->include_stop ? strlen(d->stop[i]) : 0);
                d->text[d->len] = 0;
                if (d->emitted > d->len) d->emitted = d->len;
                d->stopped = 1;
                *matched = i;
            }
        }
    }
out:
    free(prefix), free(full);
    return rc;
}

void sw_detok_take(struct sw_detok *d, int final, const char **delta, size_t *len) {
    size_t limit = d->len;
    if (!final && !d->stopped && d->max_stop > 1) {
        limit = d->len > d->max_stop - 1 ? d->len - (d->max_stop - 1) : 0;
        /* never split a UTF-8 character: back up over continuation bytes */
        while (limit > d->emitted && limit < d->len &&
               ((unsigned char)d->text[limit] & 0xC0) == 0x80)
            limit--;
    }
    if (limit < d->emitted) limit = d->emitted;
    *delta = d->text ? d->text + d->emitted : "";
    *len = limit - d->emitted;
    d->emitted = limit;
}
