/* sw_tok_internal — the structures shared by the sw_tok_*.c files that implement sw_tokenizer.
 *
 * Not a public header: tools use sw_tokenizer.h. The split by file follows the `tokenizers`
 * pipeline: sw_tok_util.c (buffers, UTF-8, JSON field helpers), sw_tok_pattern.c (regex/literal
 * matching with `tokenizers`' find_matches and split-behaviour rules), sw_tok_added.c (added
 * tokens), sw_tok_normalize.c, sw_tok_pretok.c, sw_tok_bpe.c (the model), sw_tok_post.c
 * (post-processors), sw_tok_decode.c (decoders) and sw_tokenizer.c (loading, dispatch, per-thread
 * scratch). */
#ifndef SW_TOK_INTERNAL_H
#define SW_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "sw_strmap.h"
#include "sw_tokenizer.h"

struct sw_tok_scratch;

/* ---- growable buffers (sw_tok_util.c) ---- */

struct sw_tok_buf {
    char *p;
    size_t n, cap;
};
int sw_tok_buf_grow(struct sw_tok_buf *b, size_t need);
static inline int sw_tok_buf_reserve(struct sw_tok_buf *b, size_t extra) {
    return b->n + extra <= b->cap ? 0 : sw_tok_buf_grow(b, b->n + extra);
}
int sw_tok_buf_put(struct sw_tok_buf *b, const void *s, size_t n);
void sw_tok_buf_release(struct sw_tok_buf *b);

/* A half-open byte range with a flag (is_match for patterns, added-token id for splits). */
struct sw_tok_span {
    size_t start, end;
    int32_t flag;
};
struct sw_tok_spans {
    struct sw_tok_span *v;
    size_t n, cap;
};
int sw_tok_spans_push(struct sw_tok_spans *s, size_t start, size_t end, int32_t flag);
void sw_tok_spans_release(struct sw_tok_spans *s);

int sw_tok_ids_push(struct sw_tok_ids *b, int32_t id);
int sw_tok_ids_put(struct sw_tok_ids *b, const int32_t *ids, size_t n);

/* A list of strings in one pool (decoder chains). */
struct sw_tok_strs {
    struct sw_tok_buf pool;
    size_t *off, *len;
    size_t n, cap;
};
int sw_tok_strs_push(struct sw_tok_strs *s, const char *p, size_t n);
/* Start a string, append to pool directly, then finish it with the bytes written since start. */
int sw_tok_strs_end(struct sw_tok_strs *s, size_t start);
void sw_tok_strs_clear(struct sw_tok_strs *s);
void sw_tok_strs_release(struct sw_tok_strs *s);

/* ---- UTF-8 (sw_tok_util.c) ---- */

/* Decode one code point of valid UTF-8 at s (n > 0 bytes left); returns its length. A sequence
 * cut short by n (never the case for the repaired text sw works on) yields its first byte. */
static inline size_t sw_tok_utf8_next(const unsigned char *s, size_t n, int32_t *cp) {
    unsigned c = s[0];
    if (c < 0xC0 || n < 2) {
        *cp = (int32_t)c;
        return 1;
    }
    if (c < 0xE0) {
        *cp = (int32_t)(((c & 0x1F) << 6) | (s[1] & 0x3F));
        return 2;
    }
    if (n < 3) {
        *cp = (int32_t)c;
        return 1;
    }
    if (c < 0xF0) {
        *cp = (int32_t)(((c & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F));
        return 3;
    }
    if (n < 4) {
        *cp = (int32_t)c;
        return 1;
    }
    *cp = (int32_t)(((c & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) |
                    (s[3] & 0x3F));
    return 4;
}
/* Length of the UTF-8 sequence starting with lead byte c (1 for anything not a lead byte). */
static inline size_t sw_tok_utf8_len(unsigned char c) {
    return c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}
/* Length of the code point that ends at s[n-1] (valid UTF-8, n > 0). */
static inline size_t sw_tok_utf8_prev_len(const unsigned char *s, size_t n) {
    size_t k = 1;
    while (k < n && k < 4 && (s[n - k] & 0xC0) == 0x80)
        k++;
    return k;
}
int sw_tok_utf8_put(struct sw_tok_buf *b, int32_t cp);
/* Bytes of the longest valid UTF-8 prefix of s. */
size_t sw_tok_utf8_valid(const char *s, size_t n);
/* Append s to out, replacing each maximal invalid subsequence by U+FFFD (Rust from_utf8_lossy). */
int sw_tok_utf8_lossy(const char *s, size_t n, struct sw_tok_buf *out);
/* The text encode sees: invalid UTF-8 repaired as sw_tok_utf8_lossy does, except the overlong
 * pair C0 80, which is U+0000: sw's NUL-terminated strings carry U+0000 that way (Modified
 * UTF-8, e.g. a JSON "\u0000" read by the dataset reader), the character `tokenizers` sees. */
int sw_tok_utf8_repair_text(const char *s, size_t n, struct sw_tok_buf *out);

/* Unicode predicates on code points, as `tokenizers` applies them. */
int sw_tok_is_whitespace(int32_t cp); /* char::is_whitespace: White_Space property */
int sw_tok_is_numeric(int32_t cp);    /* char::is_numeric (Digits) */
int sw_tok_is_punct(int32_t cp);      /* Punctuation / BertPreTokenizer */
int sw_tok_is_word(int32_t cp);       /* Rust regex \w */

/* The GPT-2 byte <-> character table of the ByteLevel components. */
extern int32_t sw_tok_byte_char[256]; /* byte -> code point */
int sw_tok_char_byte(int32_t cp);     /* code point -> byte, or -1 */
void sw_tok_bytelevel_init(void);     /* idempotent, thread-safe */

/* Character classes measured on `tokenizers` (sw_tok_unitab.c, generated by
 * test/golden/tokenizer/gen_unicode.py): sorted inclusive code point ranges. */
#define SW_TOK_UNI_TABLE(name)                                                                     \
    extern const uint32_t name[][2];                                                               \
    extern const size_t name##_n
SW_TOK_UNI_TABLE(sw_tok_uni_L);
SW_TOK_UNI_TABLE(sw_tok_uni_N);
SW_TOK_UNI_TABLE(sw_tok_uni_S);
SW_TOK_UNI_TABLE(sw_tok_uni_word);
SW_TOK_UNI_TABLE(sw_tok_uni_punct);
SW_TOK_UNI_TABLE(sw_tok_uni_numeric);
SW_TOK_UNI_TABLE(sw_tok_uni_strip_accents);
SW_TOK_UNI_TABLE(sw_tok_uni_bert_drop);
SW_TOK_UNI_TABLE(sw_tok_uni_bert_space);
SW_TOK_UNI_TABLE(sw_tok_uni_bert_chinese);
SW_TOK_UNI_TABLE(sw_tok_uni_nonspacing);
/* General-category properties \p{NAME} as Oniguruma sees them: the ranges to add to PCRE2's
 * own \p{NAME} (full == 0), or every range of the class (full == 1). */
struct sw_tok_uni_prop {
    const char *name;
    const uint32_t (*ranges)[2];
    size_t n;
    int full;
};
extern const struct sw_tok_uni_prop sw_tok_uni_props[];
extern const size_t sw_tok_uni_props_n;
extern const uint32_t sw_tok_uni_lower[][4]; /* cp -> up to 3 cps, sorted by cp */
extern const size_t sw_tok_uni_lower_n;
/* 1 if cp lies in one of the n ranges r. */
int sw_tok_uni_in(const uint32_t (*r)[2], size_t n, int32_t cp);
#define SW_TOK_UNI_IN(table, cp) sw_tok_uni_in(table, table##_n, cp)

/* ---- JSON field helpers (sw_tok_util.c); errors name the file and the field path ---- */

struct sw_tok_jctx {
    const char *file; /* for messages */
};
int sw_tok_jerr(const struct sw_tok_jctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Optional member: NULL when absent or JSON null. */
json_t *sw_tok_jget(const json_t *obj, const char *key);
int sw_tok_jbool(const struct sw_tok_jctx *c, const json_t *obj, const char *path, const char *key,
                 int dflt, int *out);
int sw_tok_jint(const struct sw_tok_jctx *c, const json_t *obj, const char *path, const char *key,
                long long dflt, long long *out);
/* A string member copied into *out (malloc'ed, NUL-terminated, *len bytes); NULL when absent and
 * no default. */
int sw_tok_jstr(const struct sw_tok_jctx *c, const json_t *obj, const char *path, const char *key,
                int required, char **out, size_t *len);
/* The "type" member. */
int sw_tok_jtype(const struct sw_tok_jctx *c, const json_t *obj, const char *path,
                 const char **type);
char *sw_tok_strndup(const char *s, size_t n);

/* ---- direct JSON reading of model.vocab (sw_tok_json.c) ---- */

/* The byte span [*start, *end) of root.model.vocab in the JSON text s: 1 found, 0 absent, -1
 * when the text is not well-formed (jansson then reports the error). */
int sw_tok_json_find_vocab(const char *s, size_t n, size_t *start, size_t *end);
/* Parse the JSON object s[0..n) of token -> id into m. Errors name file and entry. */
int sw_tok_json_parse_vocab(const char *file, const char *s, size_t n, struct sw_strmap *m);

/* ---- patterns (sw_tok_pattern.c) ---- */

enum sw_tok_pat_kind {
    SW_TOK_PAT_NONE = 0,
    SW_TOK_PAT_STRING, /* literal, matched leftmost and non-overlapping */
    SW_TOK_PAT_REGEX,  /* PCRE2 (UTF, UCP), with Oniguruma's find_iter rules */
};

struct sw_tok_pattern {
    enum sw_tok_pat_kind kind;
    char *str; /* literal bytes, or the regex source */
    size_t len;
    int re;   /* index into tok->re for SW_TOK_PAT_REGEX */
    int fast; /* enum sw_tok_fast_kind: a hand-written matcher replaces PCRE2 */
};

/* ---- hand-written matchers for well-known pre-tokenizer regexes (sw_tok_fastsplit.c) ---- */

enum sw_tok_fast_kind {
    SW_TOK_FAST_NONE = 0,
    SW_TOK_FAST_GPT2,
    SW_TOK_FAST_QWEN,
    SW_TOK_FAST_LLAMA3
};
/* Which matcher implements the regex source src exactly, or SW_TOK_FAST_NONE. */
int sw_tok_fast_kind(const char *src, size_t len);
/* End of the match starting at s[i] (i < n; always > i: these patterns match everywhere). */
size_t sw_tok_fast_match(int kind, const unsigned char *s, size_t n, size_t i);

/* The registry of compiled regexes; each thread's scratch holds match data for each. */
struct sw_tok_regexes {
    pcre2_code **code;
    size_t n, cap;
};

struct sw_tokenizer;
/* Parse {"String": s} or {"Regex": r} into p, compiling regexes into the tokenizer's registry. */
int sw_tok_pattern_parse(struct sw_tokenizer *tok, const struct sw_tok_jctx *c, const json_t *j,
                         const char *path, struct sw_tok_pattern *p);
/* Compile a regex source (UTF + UCP, JIT when available) into the registry; *idx gets its
 * index. */
int sw_tok_regex_add(struct sw_tokenizer *tok, const char *src, size_t len, const char *what,
                     int *idx);
void sw_tok_pattern_release(struct sw_tok_pattern *p);

/* `tokenizers`' Pattern::find_matches: spans covering s[0..n) in order, flag 1 on matches, 0 on
 * the gaps (an empty s gives one empty gap). Appends to out (cleared first). */
int sw_tok_pattern_find(const struct sw_tokenizer *tok, const struct sw_tok_pattern *p,
                        struct sw_tok_scratch *sc, const char *s, size_t n,
                        struct sw_tok_spans *out);
/* Matches of a char predicate, with find_matches' shape. */
int sw_tok_pattern_find_fn(int (*pred)(int32_t), int32_t arg_cp, const char *s, size_t n,
                           struct sw_tok_spans *out);

enum sw_tok_behavior {
    SW_TOK_REMOVED = 0,
    SW_TOK_ISOLATED,
    SW_TOK_MERGED_PREV,
    SW_TOK_MERGED_NEXT,
    SW_TOK_CONTIGUOUS,
};
int sw_tok_behavior_parse(const struct sw_tok_jctx *c, const json_t *obj, const char *path,
                          enum sw_tok_behavior dflt, enum sw_tok_behavior *out);
/* NormalizedString::split: turns find_matches spans into the pieces to keep (in place);
 * empty pieces are dropped as PreTokenizedString::split drops them. invert swaps match/gap. */
void sw_tok_split_apply(struct sw_tok_spans *sp, enum sw_tok_behavior b, int invert);

/* ---- normalizers (sw_tok_normalize.c) ---- */

enum sw_tok_norm_kind {
    SW_TOK_NORM_NFC = 1,
    SW_TOK_NORM_NFD,
    SW_TOK_NORM_NFKC,
    SW_TOK_NORM_NFKD,
    SW_TOK_NORM_LOWERCASE,
    SW_TOK_NORM_STRIP,
    SW_TOK_NORM_STRIP_ACCENTS,
    SW_TOK_NORM_REPLACE,
    SW_TOK_NORM_PREPEND,
    SW_TOK_NORM_APPEND,
    SW_TOK_NORM_BYTELEVEL,
    SW_TOK_NORM_BERT,
};

struct sw_tok_norm {
    enum sw_tok_norm_kind kind;
    int left, right;           /* Strip */
    struct sw_tok_pattern pat; /* Replace */
    char *content;             /* Replace / Prepend / Append */
    size_t content_len;
    int clean_text, chinese, strip_accents, lowercase; /* Bert */
};

/* A normalizer is a flat list (Sequence flattened at load). */
struct sw_tok_norms {
    struct sw_tok_norm *v;
    size_t n;
};
int sw_tok_norm_parse(struct sw_tokenizer *tok, const struct sw_tok_jctx *c, const json_t *j,
                      const char *path, struct sw_tok_norms *out);
void sw_tok_norms_release(struct sw_tok_norms *ns);
/* Normalize s in place (swapping with the scratch's spare buffer). *at_origin is cleared when
 * the first character of the result no longer comes from the segment's first character. */
int sw_tok_norm_apply(const struct sw_tokenizer *tok, const struct sw_tok_norms *ns,
                      struct sw_tok_scratch *sc, struct sw_tok_buf *s, int *at_origin);

/* ---- pre-tokenizers (sw_tok_pretok.c) ---- */

enum sw_tok_pretok_kind {
    SW_TOK_PRE_SPLIT = 1,
    SW_TOK_PRE_BYTELEVEL,
    SW_TOK_PRE_METASPACE,
    SW_TOK_PRE_DIGITS,
    SW_TOK_PRE_PUNCT,
    SW_TOK_PRE_WHITESPACE,
    SW_TOK_PRE_WSSPLIT,
    SW_TOK_PRE_CHARDELIM,
};

enum sw_tok_prepend { SW_TOK_PREPEND_ALWAYS = 0, SW_TOK_PREPEND_FIRST, SW_TOK_PREPEND_NEVER };

struct sw_tok_pretok {
    enum sw_tok_pretok_kind kind;
    struct sw_tok_pattern pat; /* Split; ByteLevel's regex when use_regex */
    enum sw_tok_behavior behavior;
    int invert;
    int add_prefix_space, use_regex, map_bytes; /* ByteLevel; map_bytes=0 in raw byte mode */
    int32_t repl_cp; /* Metaspace replacement / CharDelimiterSplit delimiter */
    char repl[4];
    size_t repl_len;
    enum sw_tok_prepend prepend;
    int split; /* Metaspace */
    int individual_digits;
};

struct sw_tok_pretoks {
    struct sw_tok_pretok *v;
    size_t n;
};
int sw_tok_pretok_parse(struct sw_tokenizer *tok, const struct sw_tok_jctx *c, const json_t *j,
                        const char *path, struct sw_tok_pretoks *out);
void sw_tok_pretoks_release(struct sw_tok_pretoks *ps);
/* Pre-tokenize s (a normalized segment, at_origin when it starts at offset 0 of the input) and
 * feed every piece to the model, appending ids to out. */
int sw_tok_pretok_run(const struct sw_tokenizer *tok, struct sw_tok_scratch *sc, const char *s,
                      size_t n, int at_origin, struct sw_tok_ids *out);

/* ---- BPE model (sw_tok_bpe.c) ---- */

struct sw_tok_merge {
    uint64_t key; /* (left id << 32) | right id; UINT64_MAX = empty slot */
    uint32_t rank;
    int32_t new_id;
};

struct sw_tok_bpe {
    struct sw_strmap *vocab; /* token string -> id, as in tokenizer.json */
    struct sw_strmap *raw;   /* raw-byte mode: token bytes -> id */
    size_t vocab_n;
    int32_t max_id;
    struct sw_tok_merge *merges;
    size_t merge_mask, n_merges;
    int32_t unk_id;        /* -1: none */
    char *unk_token;       /* NULL: no unk token configured */
    char *prefix, *suffix; /* continuing_subword_prefix / end_of_word_suffix; NULL = None */
    size_t prefix_len, suffix_len;
    int fuse_unk, byte_fallback, ignore_merges;
    int32_t fb_id[256];             /* "<0xXX>" ids for byte_fallback, -1 when missing */
    int32_t byte_id[256];           /* raw-byte mode: id of each byte's byte-level character */
    struct sw_tok_merge *byte_pair; /* raw-byte mode: merges of two single bytes, by b0<<8|b1 */
    int32_t *bmp_id;                /* id of each single-character token below U+10000, -1 none */
    int raw_mode;                   /* pieces are raw bytes; vocabulary keys were un-mapped */
    int meta_chunks; /* words may be cut before each U+2581 that follows another char */
};

/* vocab: the model.vocab map read by sw_tok_json_parse_vocab (taken over), or NULL to read
 * model.vocab from j. */
int sw_tok_bpe_parse(struct sw_tokenizer *tok, const struct sw_tok_jctx *c, const json_t *j,
                     struct sw_strmap *vocab, struct sw_tok_bpe *m);
/* Switch to raw-byte mode (the byte-level pre-tokenizer's mapping folded into the vocabulary):
 * returns 1 if done, 0 if the vocabulary does not allow it. */
int sw_tok_bpe_enable_raw(struct sw_tok_bpe *m);
void sw_tok_bpe_release(struct sw_tok_bpe *m);
/* Tokenize one pre-token (word) and append its ids. */
int sw_tok_bpe_encode(const struct sw_tok_bpe *m, struct sw_tok_scratch *sc, const char *w,
                      size_t n, struct sw_tok_ids *out);
int32_t sw_tok_bpe_lookup(const struct sw_tok_bpe *m, const char *s, size_t n);
/* Start loading the word cache entry of w (a hint: call a few words ahead of encoding them). */
void sw_tok_bpe_prefetch(const struct sw_tok_bpe *m, const struct sw_tok_scratch *sc, const char *w,
                         size_t n);

/* ---- added tokens (sw_tok_added.c) ---- */

struct sw_tok_added_token {
    char *content;
    size_t len;
    int32_t id;
    int single_word, lstrip, rstrip, normalized, special;
};

/* Leftmost-longest matcher over a set of byte strings: a left-child right-sibling trie with a
 * filter on the first byte. Node 0 is the root. */
struct sw_tok_trie {
    int32_t *child, *sibling, *term; /* term: pattern index ending here, or -1 */
    uint8_t *byte;
    size_t n_nodes;
    uint8_t first[256];
    int n_patterns;
};

struct sw_tok_added {
    struct sw_tok_added_token *v; /* in match priority order: special tokens, then the others */
    size_t n;
    struct sw_strmap *by_content; /* content -> id */
    struct sw_tok_trie raw_trie, norm_trie;
    int32_t *raw_tok, *norm_tok; /* trie pattern -> index into v of the token's current flags */
};

int sw_tok_added_parse(struct sw_tokenizer *tok, const struct sw_tok_jctx *c, const json_t *j);
/* Build the matchers once the normalizer is loaded (normalized tokens match on their normalized
 * content, computed with sc). */
int sw_tok_added_build(struct sw_tokenizer *tok, struct sw_tok_scratch *sc);
void sw_tok_added_release(struct sw_tok_added *a);
/* Split s into added-token matches (flag = token id) and the text between (flag = -1), as
 * AddedVocabulary::find_matches does with one of its two tries. */
int sw_tok_added_split(const struct sw_tok_added *a, int normalized, const char *s, size_t n,
                       struct sw_tok_spans *out);

/* ---- post-processors (sw_tok_post.c) ---- */

struct sw_tok_tmpl_item {
    int seq;      /* 0 = $A, 1 = $B, -1 = special token */
    int32_t *ids; /* special token's ids */
    size_t n_ids;
};
struct sw_tok_tmpl {
    struct sw_tok_tmpl_item *single, *pair;
    size_t n_single, n_pair;
};
struct sw_tok_posts {
    struct sw_tok_tmpl *v; /* applied in order (Sequence flattened; ByteLevel dropped) */
    size_t n;
};
int sw_tok_post_parse(struct sw_tokenizer *tok, const struct sw_tok_jctx *c, const json_t *j,
                      const char *path, struct sw_tok_posts *out);
void sw_tok_posts_release(struct sw_tok_posts *p);
/* Apply every template to the single-sequence ids in *ids (scratch *tmp used). */
int sw_tok_post_apply(const struct sw_tok_posts *p, struct sw_tok_ids *ids, struct sw_tok_ids *tmp);

/* ---- decoders (sw_tok_decode.c) ---- */

enum sw_tok_dec_kind {
    SW_TOK_DEC_BYTELEVEL = 1,
    SW_TOK_DEC_METASPACE,
    SW_TOK_DEC_BYTEFALLBACK,
    SW_TOK_DEC_FUSE,
    SW_TOK_DEC_STRIP,
    SW_TOK_DEC_REPLACE,
    SW_TOK_DEC_WORDPIECE,
    SW_TOK_DEC_BPE,
};
struct sw_tok_dec {
    enum sw_tok_dec_kind kind;
    struct sw_tok_pattern pat;
    char *content; /* Replace content; Strip content char; WordPiece prefix; BPE suffix */
    size_t content_len;
    int32_t content_cp;
    size_t start, stop;
    int32_t repl_cp;
    enum sw_tok_prepend prepend;
    int cleanup;
};
struct sw_tok_decs {
    struct sw_tok_dec *v;
    size_t n;
    int present; /* 0: no decoder, tokens are joined with spaces */
};
int sw_tok_dec_parse(struct sw_tokenizer *tok, const struct sw_tok_jctx *c, const json_t *j,
                     const char *path, struct sw_tok_decs *out);
void sw_tok_decs_release(struct sw_tok_decs *d);
/* Run the chain on the token strings in *in (consumed) and append the joined text to out. */
int sw_tok_dec_run(const struct sw_tokenizer *tok, const struct sw_tok_decs *d,
                   struct sw_tok_scratch *sc, struct sw_tok_strs *in, struct sw_tok_buf *out);

/* ---- per-thread scratch (sw_tokenizer.c) ---- */

/* The word cache: 2-way set associative, one 64-byte line per slot. Words of more than
 * SW_TOK_CACHE_KEY bytes or more than SW_TOK_CACHE_IDS ids are not cached. */
#define SW_TOK_CACHE_SETS 32768
#define SW_TOK_CACHE_KEY 30
#define SW_TOK_CACHE_IDS 6
struct sw_tok_cache_slot {
    uint64_t hash;
    uint8_t klen; /* 0 = empty (empty words are never cached) */
    uint8_t nids;
    char key[SW_TOK_CACHE_KEY];
    int32_t ids[SW_TOK_CACHE_IDS];
};
struct sw_tok_cache_set {
    struct sw_tok_cache_slot way[2];
};

struct sw_tok_sym {
    int32_t c, prev, next;
    uint32_t len;
};
struct sw_tok_heap_ent {
    uint32_t rank, pos;
    int32_t new_id;
    int32_t left, right; /* the pair when pushed: an unchanged pair needs no new lookup */
};

struct sw_tok_scratch {
    struct sw_tok_scratch *prev, *next; /* the tokenizer's registry */
    struct sw_tokenizer *owner;
    pcre2_match_data **md; /* per regex */
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit;
    struct sw_tok_buf text, norm, spare;
    struct sw_tok_spans added, nadded, find;
    struct sw_tok_buf *lvl_buf;     /* per pre-tokenizer stage */
    struct sw_tok_spans *lvl_spans; /* per pre-tokenizer stage */
    size_t n_lvl;
    struct sw_tok_sym *sym;
    size_t sym_cap;
    struct sw_tok_heap_ent *heap;
    size_t heap_cap;
    struct sw_tok_cache_set *cache;
    uint8_t *cache_lru; /* per set: the way to replace next */
    struct sw_tok_ids ids_tmp, post_tmp;
    struct sw_tok_strs dec_a, dec_b;
    struct sw_tok_buf dec_tmp;
};

/* ---- the tokenizer ---- */

struct sw_tokenizer {
    char *path; /* the tokenizer.json read, for messages */
    struct sw_tok_bpe bpe;
    struct sw_tok_norms norm;
    struct sw_tok_pretoks pre;
    struct sw_tok_posts post;
    struct sw_tok_decs dec;
    struct sw_tok_added added;
    struct sw_tok_regexes re;
    int bytelevel_raw; /* raw-byte fast path active */

    /* "truncation" / "padding" of tokenizer.json, applied by encode as `tokenizers` does */
    int trunc_on, trunc_left;
    size_t trunc_max;
    size_t n_added_single; /* special ids the post-processor adds to one sequence */
    int pad_on, pad_left;
    size_t pad_fixed;    /* 0 = BatchLongest (a single sequence is its own longest) */
    size_t pad_multiple; /* 0 = none */
    int32_t pad_id;

    /* id -> token string (model vocabulary, overridden by added tokens) */
    size_t n_ids;     /* max id + 1 */
    uint64_t *id_off; /* into id_pool; UINT64_MAX = no token */
    uint32_t *id_len;
    uint8_t *id_special;
    char *id_pool;

    int32_t special_id[SW_TOK_NSPECIAL];
    char *special_tok[SW_TOK_NSPECIAL];
    int add_bos, add_eos;
    char *chat_template;
    int64_t model_max_length;
    uint8_t sha[32];
    char sha_hex[65];

    pthread_key_t key;
    int key_ok;
    pthread_mutex_t mu;
    struct sw_tok_scratch *scratches;
};

/* This thread's scratch for tok (created on first use); NULL with sw_err set on ENOMEM. */
struct sw_tok_scratch *sw_tok_scratch_get(const struct sw_tokenizer *tok);

#endif
