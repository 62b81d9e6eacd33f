/* sw_detok — incremental detokenization of a generated sequence and exact stop strings, for
 * streaming: each new id gives a text delta of whole UTF-8 characters, and the text never
 * contains (or, with include_stop_str_in_output, never goes past) a stop string.
 *
 * Text of a new id: vLLM's method — decode ids[prefix_offset:read_offset] and
 * ids[prefix_offset:], the difference is the new text, accepted only when it does not end in
 * U+FFFD (a byte-level token that stops mid-character: wait for the next id); then
 * prefix_offset/read_offset move up. A few prompt ids start the window so that decoders that
 * depend on the preceding token (SentencePiece's leading space) render the first ids right.
 *
 * Stop strings: the text so far is searched from where a match could start (the new text plus
 * the last max_stop − 1 bytes before it); the earliest match cuts the text. Until then the last
 * max_stop − 1 bytes are held back (a stop string could start there), moved back further to a
 * character boundary; finishing releases everything. */
#ifndef SW_DETOK_H
#define SW_DETOK_H

#include <stddef.h>
#include <stdint.h>

struct sw_tokenizer;

struct sw_detok {
    const struct sw_tokenizer *tok;
    int skip_special;
    const char *const *stop; /* borrowed */
    int n_stop;
    size_t max_stop;
    int include_stop;
    int64_t prefix_offset, read_offset;
    char *text; /* output text so far (malloc'ed, NUL-terminated) */
    size_t len, cap;
    size_t emitted; /* bytes handed out by sw_detok_take */
    int stopped;    /* a stop string matched: no more text */
};

/* Start after a prompt of n_prompt ids (the window starts a few ids before its end). */
void sw_detok_init(struct sw_detok *d, const struct sw_tokenizer *tok, int skip_special,
                   int64_t n_prompt, const char *const *stop, int n_stop, int include_stop);
void sw_detok_release(struct sw_detok *d);
/* Back to the state after init (preempted sequences recompute but keep their text; the engine
 * never calls this for them — it is for reuse). */

/* ids[0..n) = prompt + output so far, the last one new. Appends its text. *matched receives the
 * index of the stop string that matched now, or −1. Returns 0 or SW_ENOMEM. After a match,
 * further calls add nothing. */
int sw_detok_add(struct sw_detok *d, const int32_t *ids, int64_t n, int *matched);
/* The delta to deliver now: text[emitted .. limit) where limit holds back a possible stop
 * string's start unless final; advances emitted. */
void sw_detok_take(struct sw_detok *d, int final, const char **delta, size_t *len);

#endif
