/* sw_tok_fastsplit — hand-written matchers for the pre-tokenizer regexes of the GPT-2, Qwen2/3
 * and Llama-3 families, which carry most real-world tokenizer.json files.
 *
 * A PCRE2 call per piece costs more than the piece's BPE once the word cache is warm, so the
 * three patterns are recognised by their exact source text and matched by code instead:
 *
 *   GPT-2   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *   Qwen    (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}
 *           | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *   Llama 3 the same with \p{N}{1,3}
 *
 * Each alternative is resolved the way a backtracking engine resolves it, leftmost first; the
 * reasoning is in comments at each step. Every position matches one alternative, so matches
 * tile the text. Character classes come from the tables measured on `tokenizers` (Oniguruma's
 * \p{L}, \p{N}, \s), looked up through a two-level table built once. The case-insensitive
 * contractions also accept U+017F (long s), which Unicode case folding maps to 's'. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sw_tok_internal.h"

static const char sw_tok_re_gpt2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char sw_tok_re_qwen[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char sw_tok_re_llama3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

enum { C_L = 1, C_N = 2, C_S = 4, C_NL = 8 }; /* C_NL: \r or \n */

static uint16_t sw_tok_cls_stage1[0x110000 >> 8];
static uint8_t (*sw_tok_cls_stage2)[256];
static uint8_t sw_tok_cls_ascii[128];
static pthread_once_t sw_tok_cls_once = PTHREAD_ONCE_INIT;
static int sw_tok_cls_ok;

static void sw_tok_cls_mark(uint8_t *flat, const uint32_t (*r)[2], size_t n, uint8_t bit) {
    for (size_t k = 0; k < n; k++)
        for (uint32_t c = r[k][0]; c <= r[k][1] && c < 0x110000; c++)
            flat[c] |= bit;
}

static void sw_tok_cls_build(void) {
    uint8_t *flat = calloc(0x110000, 1);
    uint8_t(*blocks)[256] = malloc((0x110000 >> 8) * 256);
    if (!flat || !blocks) {
        free(flat);
        free(blocks);
        return;
    }
    sw_tok_cls_mark(flat, sw_tok_uni_L, sw_tok_uni_L_n, C_L);
    sw_tok_cls_mark(flat, sw_tok_uni_N, sw_tok_uni_N_n, C_N);
    sw_tok_cls_mark(flat, sw_tok_uni_S, sw_tok_uni_S_n, C_S);
    flat['\r'] |= C_NL;
    flat['\n'] |= C_NL;
    size_t nb = 0;
    for (size_t b = 0; b < (0x110000 >> 8); b++) {
        size_t k = 0;
        while (k < nb && memcmp(blocks[k], flat + b * 256, 256) != 0)
            k++;
        if (k == nb) memcpy(blocks[nb++], flat + b * 256, 256);
        sw_tok_cls_stage1[b] = (uint16_t)k;
    }
    memcpy(sw_tok_cls_ascii, flat, 128);
    sw_tok_cls_stage2 = realloc(blocks, nb * 256);
    if (!sw_tok_cls_stage2) sw_tok_cls_stage2 = blocks;
    free(flat);
    sw_tok_cls_ok = 1;
}

int sw_tok_fast_kind(const char *src, size_t len) {
    pthread_once(&sw_tok_cls_once, sw_tok_cls_build);
    if (!sw_tok_cls_ok) return SW_TOK_FAST_NONE;
    if (len == sizeof(sw_tok_re_gpt2) - 1 && !memcmp(src, sw_tok_re_gpt2, len))
        return SW_TOK_FAST_GPT2;
    if (len == sizeof(sw_tok_re_qwen) - 1 && !memcmp(src, sw_tok_re_qwen, len))
        return SW_TOK_FAST_QWEN;
    if (len == sizeof(sw_tok_re_llama3) - 1 && !memcmp(src, sw_tok_re_llama3, len))
        return SW_TOK_FAST_LLAMA3;
    return SW_TOK_FAST_NONE;
}

/* Class of the character at s[i] (i < n) and its byte length. */
static inline unsigned sw_tok_cls_at(const unsigned char *s, size_t n, size_t i, size_t *len) {
    if (s[i] < 0x80) {
        *len = 1;
        return sw_tok_cls_ascii[s[i]];
    }
    int32_t cp;
    *len = sw_tok_utf8_next(s + i, n - i, &cp);
    return sw_tok_cls_stage2[sw_tok_cls_stage1[cp >> 8]][cp & 0xFF];
}

/* End of the run of characters whose class satisfies (cls & want) == want_eq, from i. */
static inline size_t sw_tok_run(const unsigned char *s, size_t n, size_t i, unsigned mask,
                                unsigned want) {
    while (i < n) {
        size_t l;
        if ((sw_tok_cls_at(s, n, i, &l) & mask) != want) break;
        i += l;
    }
    return i;
}

static inline int sw_tok_lower_ascii(unsigned char c) {
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* The contraction alternative at s[i] == '\''; 0 when it does not match. */
static inline size_t sw_tok_contraction(const unsigned char *s, size_t n, size_t i, int fold) {
    if (i + 1 >= n) return 0;
    int a = fold ? sw_tok_lower_ascii(s[i + 1]) : s[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if (fold && s[i + 1] == 0xC5 && i + 2 < n && s[i + 2] == 0xBF) return i + 3; /* U+017F */
    if (i + 2 >= n) return 0;
    int b = fold ? sw_tok_lower_ascii(s[i + 2]) : s[i + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    return 0;
}

/* \s+(?!\S) then \s+ at a whitespace character: the greedy run backs off one character when a
 * non-space follows it, unless that would leave nothing. */
static inline size_t sw_tok_space_tail(const unsigned char *s, size_t n, size_t i) {
    size_t j = i, last = i;
    while (j < n) {
        size_t l;
        if (!(sw_tok_cls_at(s, n, j, &l) & C_S)) break;
        last = j;
        j += l;
    }
    if (j == n || last == i) return j; /* at the end, or a single space: \s+ */
    return last;
}

size_t sw_tok_fast_match(int kind, const unsigned char *s, size_t n, size_t i) {
    size_t l0;
    unsigned c0 = sw_tok_cls_at(s, n, i, &l0);
    unsigned char b0 = s[i];
    if (kind == SW_TOK_FAST_GPT2) {
        if (b0 == '\'') {
            size_t e = sw_tok_contraction(s, n, i, 0);
            if (e) return e;
        }
        /* ` ?X+` for X in L, N, other: the optional space is taken when X follows it */
        size_t j = i;
        unsigned c = c0;
        if (b0 == ' ' && i + 1 < n) {
            size_t l1;
            unsigned c1 = sw_tok_cls_at(s, n, i + 1, &l1);
            if (!(c1 & C_S)) {
                j = i + 1;
                c = c1;
            }
        }
        if (c & C_L) return sw_tok_run(s, n, j, C_L, C_L);
        if (c & C_N) return sw_tok_run(s, n, j, C_N, C_N);
        if (!(c & C_S)) return sw_tok_run(s, n, j, C_L | C_N | C_S, 0);
        return sw_tok_space_tail(s, n, i);
    }
    /* Qwen / Llama 3 */
    if (b0 == '\'') {
        size_t e = sw_tok_contraction(s, n, i, 1);
        if (e) return e;
    }
    /* [^\r\n\p{L}\p{N}]?\p{L}+ : a leading character that is none of those, then letters */
    if (!(c0 & (C_L | C_N | C_NL)) && i + l0 < n) {
        size_t l1;
        if (sw_tok_cls_at(s, n, i + l0, &l1) & C_L) return sw_tok_run(s, n, i + l0 + l1, C_L, C_L);
    }
    if (c0 & C_L) return sw_tok_run(s, n, i + l0, C_L, C_L);
    if (c0 & C_N) {
        if (kind == SW_TOK_FAST_QWEN) return i + l0;
        size_t j = i + l0;
        for (int k = 1; k < 3 && j < n; k++) { /* \p{N}{1,3} */
            size_t l;
            if (!(sw_tok_cls_at(s, n, j, &l) & C_N)) break;
            j += l;
        }
        return j;
    }
    /* ` ?[^\s\p{L}\p{N}]+[\r\n]*` */
    size_t j = i;
    int other = !(c0 & C_S);
    if (!other && b0 == ' ' && i + 1 < n) {
        size_t l1;
        if (!(sw_tok_cls_at(s, n, i + 1, &l1) & (C_S | C_L | C_N))) {
            other = 1;
            j = i + 1;
        }
    }
    if (other) {
        j = sw_tok_run(s, n, j, C_L | C_N | C_S, 0);
        while (j < n && (s[j] == '\r' || s[j] == '\n'))
            j++;
        return j;
    }
    /* whitespace: `\s*[\r\n]+` ends after the last \r or \n of the run, if it has one */
    size_t k = i, last_nl = (size_t)-1;
    while (k < n) {
        size_t l;
        unsigned c = sw_tok_cls_at(s, n, k, &l);
        if (!(c & C_S)) break;
        if (c & C_NL) last_nl = k;
        k += l;
    }
    if (last_nl != (size_t)-1) return last_nl + 1;
    return sw_tok_space_tail(s, n, i);
}
