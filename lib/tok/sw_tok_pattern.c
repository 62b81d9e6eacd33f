/* sw_tok_pattern — the pattern matching the normalizers, pre-tokenizers and decoders share.
 *
 * `tokenizers` compiles both {"String": s} (escaped) and {"Regex": r} patterns with Oniguruma
 * and walks matches with the onig crate's find_iter, whose rule for empty matches is: an empty
 * match right where the previous match ended is skipped and the search resumes one character
 * later. sw compiles regexes with PCRE2 (UTF + UCP, JIT) and reproduces that walk. Literal
 * strings are searched with memmem, which gives the same leftmost non-overlapping matches as the
 * escaped regex. Before compiling, the classes whose meaning differs between the two engines are
 * rewritten to Oniguruma's: \s (White_Space: PCRE2 adds U+180E), \h (hex digit in Oniguruma,
 * horizontal space in PCRE2), and the general-category properties (\p{L}, \p{Lu}, \p{N}, \p{M},
 * ...), which get the code points Unicode 16 (the tables of `tokenizers`' Oniguruma) added over
 * PCRE2's Unicode 14. The split behaviours (Removed,
 * Isolated, MergedWithPrevious, MergedWithNext, Contiguous) are ported from
 * NormalizedString::split. */
#include <stdlib.h>
#include <string.h>

#include "sw_err.h"
#include "sw_tok_internal.h"

/* Oniguruma's \s: the White_Space property. */
static const char sw_tok_re_ws[] =
    "\\t-\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
    "\\x{205F}\\x{3000}";

static int sw_tok_re_ranges(struct sw_tok_buf *o, const uint32_t (*r)[2], size_t n) {
    char tmp[48];
    for (size_t i = 0; i < n; i++) {
        int k = r[i][0] == r[i][1]
                    ? snprintf(tmp, sizeof(tmp), "\\x{%X}", r[i][0])
                    : snprintf(tmp, sizeof(tmp), "\\x{%X}-\\x{%X}", r[i][0], r[i][1]);
        SW_TRY(sw_tok_buf_put(o, tmp, (size_t)k));
    }
    return 0;
}

/* The Oniguruma property named name[0..len), or NULL when sw leaves it to PCRE2. */
static const struct sw_tok_uni_prop *sw_tok_re_prop(const char *name, size_t len) {
    for (size_t i = 0; i < sw_tok_uni_props_n; i++)
        if (strlen(sw_tok_uni_props[i].name) == len && !memcmp(sw_tok_uni_props[i].name, name, len))
            return &sw_tok_uni_props[i];
    return NULL;
}

/* Emit a class body (no brackets) for a rewritten escape: \s, \h, or a property. */
static int sw_tok_re_body(struct sw_tok_buf *o, char which, const struct sw_tok_uni_prop *prop) {
    if (which == 's') return sw_tok_buf_put(o, sw_tok_re_ws, sizeof(sw_tok_re_ws) - 1);
    if (which == 'h') return sw_tok_buf_put(o, "0-9a-fA-F", 9);
    if (!prop->full) {
        char tmp[16];
        int k = snprintf(tmp, sizeof(tmp), "\\p{%s}", prop->name);
        SW_TRY(sw_tok_buf_put(o, tmp, (size_t)k));
    }
    return sw_tok_re_ranges(o, prop->ranges, prop->n);
}

/* Rewrite the Oniguruma-specific escapes of src into out (see the file comment). */
static int sw_tok_regex_rewrite(const char *src, size_t n, struct sw_tok_buf *o) {
    int in_class = 0;
    for (size_t i = 0; i < n;) {
        char c = src[i];
        if (c == '\\' && i + 1 < n) {
            char d = src[i + 1];
            char which = 0;
            const struct sw_tok_uni_prop *prop = NULL;
            int neg = 0;
            size_t len = 2;
            if (d == 's' || d == 'S' || d == 'h' || d == 'H') {
                which = (char)(d | 0x20);
                neg = d == 'S' || d == 'H';
            } else if ((d == 'p' || d == 'P') && i + 2 < n) {
                const char *name = src + i + 2;
                size_t nl = 1;
                if (*name == '{') {
                    const char *close = memchr(name, '}', n - (i + 2));
                    name++;
                    nl = close ? (size_t)(close - name) : 0;
                    len = close ? (size_t)(close - (src + i)) + 1 : 2;
                } else {
                    len = 3;
                }
                prop = nl ? sw_tok_re_prop(name, nl) : NULL;
                if (prop) {
                    which = 'p';
                    neg = d == 'P';
                } else {
                    len = 2; /* not ours: copy the escape through unchanged */
                }
            }
            if (which && !in_class) {
                SW_TRY(sw_tok_buf_put(o, neg ? "[^" : "[", neg ? 2 : 1));
                SW_TRY(sw_tok_re_body(o, which, prop));
                SW_TRY(sw_tok_buf_put(o, "]", 1));
            } else if (which && !neg) {
                SW_TRY(sw_tok_re_body(o, which, prop));
            } else {
                /* a negated escape inside a class cannot be spelled as ranges: keep PCRE2's */
                SW_TRY(sw_tok_buf_put(o, src + i, len));
            }
            i += len;
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = 1;
            SW_TRY(sw_tok_buf_put(o, "[", 1));
            i++;
            if (i < n && src[i] == '^') SW_TRY(sw_tok_buf_put(o, src + i++, 1));
            if (i < n && src[i] == ']') SW_TRY(sw_tok_buf_put(o, src + i++, 1)); /* literal */
            continue;
        }
        if (c == '[' && in_class && i + 1 < n && src[i + 1] == ':') { /* [:alpha:] */
            const char *end = memmem(src + i + 2, n - i - 2, ":]", 2);
            size_t k = end ? (size_t)(end - src) + 2 - i : 1;
            SW_TRY(sw_tok_buf_put(o, src + i, k));
            i += k;
            continue;
        }
        if (c == ']' && in_class) in_class = 0;
        SW_TRY(sw_tok_buf_put(o, &c, 1));
        i++;
    }
    return 0;
}

int sw_tok_regex_add(struct sw_tokenizer *tok, const char *src, size_t len, const char *what,
                     int *idx) {
    struct sw_tok_regexes *r = &tok->re;
    int errcode;
    PCRE2_SIZE erroff;
    struct sw_tok_buf rw = {0};
    SW_TRY(sw_tok_regex_rewrite(src, len, &rw));
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)(rw.p ? rw.p : ""), rw.n, PCRE2_UTF | PCRE2_UCP,
                                     &errcode, &erroff, NULL);
    sw_tok_buf_release(&rw);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(errcode, msg, sizeof(msg));
        return sw_err_set(
            SW_EUNSUPPORTED, "%s: %s: regex '%.*s' does not compile at offset %zu: %s", tok->path,
            what, (int)(len > 200 ? 200 : len), src, (size_t)erroff, (const char *)msg);
    }
    /* JIT is an optimisation: without it (unsupported CPU, no executable memory) the
     * interpreter gives the same matches. */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        pcre2_code **v = realloc(r->code, cap * sizeof(*v));
        if (!v) {
            pcre2_code_free(code);
            return sw_err_set(SW_ENOMEM, "tokenizer: out of memory");
        }
        r->code = v;
        r->cap = cap;
    }
    r->code[r->n] = code;
    *idx = (int)r->n++;
    return 0;
}

int sw_tok_pattern_parse(struct sw_tokenizer *tok, const struct sw_tok_jctx *c, const json_t *j,
                         const char *path, struct sw_tok_pattern *p) {
    memset(p, 0, sizeof(*p));
    if (!json_is_object(j)) return sw_tok_jerr(c, path, "pattern must be an object");
    json_t *s = json_object_get(j, "String");
    json_t *r = json_object_get(j, "Regex");
    json_t *src = json_is_string(s) ? s : json_is_string(r) ? r : NULL;
    if (!src) return sw_tok_jerr(c, path, "pattern needs a \"String\" or \"Regex\" string");
    p->kind = src == s ? SW_TOK_PAT_STRING : SW_TOK_PAT_REGEX;
    p->len = json_string_length(src);
    p->str = sw_tok_strndup(json_string_value(src), p->len);
    if (!p->str) return SW_ENOMEM;
    /* An empty literal is an empty regex for Oniguruma: it matches between characters. */
    if (p->kind == SW_TOK_PAT_STRING && p->len == 0) p->kind = SW_TOK_PAT_REGEX;
    if (p->kind == SW_TOK_PAT_STRING) return 0;
    int rc = sw_tok_regex_add(tok, p->str, p->len, path, &p->re);
    if (rc)
        sw_tok_pattern_release(p);
    else if (!getenv("SW_TOK_NO_FAST"))
        p->fast = sw_tok_fast_kind(p->str, p->len);
    return rc;
}

void sw_tok_pattern_release(struct sw_tok_pattern *p) {
    free(p->str);
    memset(p, 0, sizeof(*p));
}

/* Oniguruma find_iter over s, calling back each match (start, end). */
static int sw_tok_regex_each(const struct sw_tokenizer *tok, int re, struct sw_tok_scratch *sc,
                             const char *s, size_t n, struct sw_tok_spans *out) {
    pcre2_code *code = tok->re.code[re];
    pcre2_match_data *md = sc->md[re];
    size_t last_end = 0;
    size_t prev = 0;
    int have_last = 0;
    size_t last_match = 0;
    while (last_end <= n) {
        int rc = pcre2_match(code, (PCRE2_SPTR)s, n, last_end, PCRE2_NO_UTF_CHECK, md, sc->mctx);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof(msg));
            return sw_err_set(SW_ERANGE, "%s: regex match failed on %zu bytes: %s", tok->path, n,
                              (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (me < ms) me = ms; /* \K tricks; never in tokenizer patterns */
        if (ms == me && have_last && last_match == me) {
            if (last_end >= n) break;
            last_end += sw_tok_utf8_len((unsigned char)s[last_end]);
            continue;
        }
        last_end = me;
        last_match = me;
        have_last = 1;
        if (prev != ms) SW_TRY(sw_tok_spans_push(out, prev, ms, 0));
        SW_TRY(sw_tok_spans_push(out, ms, me, 1));
        prev = me;
    }
    if (prev != n) SW_TRY(sw_tok_spans_push(out, prev, n, 0));
    return 0;
}

int sw_tok_pattern_find(const struct sw_tokenizer *tok, const struct sw_tok_pattern *p,
                        struct sw_tok_scratch *sc, const char *s, size_t n,
                        struct sw_tok_spans *out) {
    out->n = 0;
    if (n == 0) return sw_tok_spans_push(out, 0, 0, 0);
    if (p->fast) {
        for (size_t i = 0; i < n;) {
            size_t e = sw_tok_fast_match(p->fast, (const unsigned char *)s, n, i);
            SW_TRY(sw_tok_spans_push(out, i, e, 1));
            i = e;
        }
        return 0;
    }
    if (p->kind == SW_TOK_PAT_REGEX) return sw_tok_regex_each(tok, p->re, sc, s, n, out);
    size_t prev = 0, i = 0;
    while (i + p->len <= n) {
        const char *hit = memmem(s + i, n - i, p->str, p->len);
        if (!hit) break;
        size_t ms = (size_t)(hit - s);
        if (prev != ms) SW_TRY(sw_tok_spans_push(out, prev, ms, 0));
        SW_TRY(sw_tok_spans_push(out, ms, ms + p->len, 1));
        prev = i = ms + p->len;
    }
    if (prev != n) SW_TRY(sw_tok_spans_push(out, prev, n, 0));
    return 0;
}

int sw_tok_pattern_find_fn(int (*pred)(int32_t), int32_t arg_cp, const char *s, size_t n,
                           struct sw_tok_spans *out) {
    out->n = 0;
    if (n == 0) return sw_tok_spans_push(out, 0, 0, 0);
    const unsigned char *u = (const unsigned char *)s;
    size_t last = 0, i = 0;
    while (i < n) {
        int32_t cp;
        size_t k = sw_tok_utf8_next(u + i, n - i, &cp);
        int hit = pred ? pred(cp) : cp == arg_cp;
        if (hit) {
            if (last < i) SW_TRY(sw_tok_spans_push(out, last, i, 0));
            SW_TRY(sw_tok_spans_push(out, i, i + k, 1));
            last = i + k;
        }
        i += k;
    }
    if (n > last) SW_TRY(sw_tok_spans_push(out, last, n, 0));
    return 0;
}

int sw_tok_behavior_parse(const struct sw_tok_jctx *c, const json_t *obj, const char *path,
                          enum sw_tok_behavior dflt, enum sw_tok_behavior *out) {
    json_t *b = sw_tok_jget(obj, "behavior");
    *out = dflt;
    if (!b) return 0;
    const char *s = json_string_value(b);
    if (!s) return sw_tok_jerr(c, path, "\"behavior\" must be a string");
    if (!strcmp(s, "Removed"))
        *out = SW_TOK_REMOVED;
    else if (!strcmp(s, "Isolated"))
        *out = SW_TOK_ISOLATED;
    else if (!strcmp(s, "MergedWithPrevious"))
        *out = SW_TOK_MERGED_PREV;
    else if (!strcmp(s, "MergedWithNext"))
        *out = SW_TOK_MERGED_NEXT;
    else if (!strcmp(s, "Contiguous"))
        *out = SW_TOK_CONTIGUOUS;
    else
        return sw_tok_jerr(c, path, "unknown split behavior \"%s\"", s);
    return 0;
}

/* In the output, flag 1 marks a span to remove. */
void sw_tok_split_apply(struct sw_tok_spans *sp, enum sw_tok_behavior b, int invert) {
    struct sw_tok_span *v = sp->v;
    size_t n = sp->n, o = 0;
    if (invert)
        for (size_t i = 0; i < n; i++)
            v[i].flag = !v[i].flag;
    switch (b) {
    case SW_TOK_ISOLATED:
        for (size_t i = 0; i < n; i++)
            v[i].flag = 0;
        o = n;
        break;
    case SW_TOK_REMOVED: o = n; break;
    case SW_TOK_CONTIGUOUS: {
        int prev_match = 0;
        for (size_t i = 0; i < n; i++) {
            int m = v[i].flag;
            if (m == prev_match && o > 0)
                v[o - 1].end = v[i].end;
            else
                v[o++] = (struct sw_tok_span){v[i].start, v[i].end, 0};
            prev_match = m;
        }
        break;
    }
    case SW_TOK_MERGED_PREV: {
        int prev_match = 0;
        for (size_t i = 0; i < n; i++) {
            int m = v[i].flag;
            if (m && !prev_match && o > 0)
                v[o - 1].end = v[i].end;
            else
                v[o++] = (struct sw_tok_span){v[i].start, v[i].end, 0};
            prev_match = m;
        }
        break;
    }
    case SW_TOK_MERGED_NEXT: {
        /* Walk backwards, building the result from the end. */
        int prev_match = 0;
        size_t w = n; /* result occupies v[w..n) */
        for (size_t k = n; k-- > 0;) {
            struct sw_tok_span cur = v[k];
            int m = cur.flag;
            if (m && !prev_match && w < n)
                v[w].start = cur.start;
            else
                v[--w] = (struct sw_tok_span){cur.start, cur.end, 0};
            prev_match = m;
        }
        memmove(v, v + w, (n - w) * sizeof(*v));
        o = n - w;
        break;
    }
    }
    /* Drop removed and empty pieces. */
    size_t k = 0;
    for (size_t i = 0; i < o; i++)
        if (!v[i].flag && v[i].end > v[i].start) v[k++] = v[i];
    sp->n = k;
}
