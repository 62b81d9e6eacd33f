/* sw_tok_pretok — the pre-tokenizers of tokenizer.json: Split (regex or string, every behaviour,
 * invert), ByteLevel, Metaspace, Digits, Punctuation, Whitespace, WhitespaceSplit,
 * BertPreTokenizer, CharDelimiterSplit and Sequence (flattened at load).
 *
 * `tokenizers` materialises every split of every stage; sw streams instead: stage k splits its
 * piece, then hands each sub-piece to stage k+1 depth-first, and the last stage hands it to the
 * model. Each stage owns a span list and scratch buffers in the thread's scratch, so a piece
 * costs no allocation and no copy unless the stage rewrites the text (ByteLevel's byte mapping,
 * Metaspace's replacement). When ByteLevel is the last stage and the vocabulary allows it, the
 * byte mapping is folded into the model's vocabulary (raw-byte mode) and skipped here. */
#include <stdlib.h>
#include <string.h>

#include "sw_err.h"
#include "sw_tok_internal.h"

/* GPT-2's pattern, used by ByteLevel when use_regex is set. */
static const char sw_tok_gpt2_re[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
/* Whitespace's `\w+|[^\w\s]+` with the Rust regex crate's \w and \s spelled out for PCRE2. */
static const char sw_tok_ws_re[] =
    "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]+|"
    "[^\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}\\p{White_Space}]+";

void sw_tok_pretoks_release(struct sw_tok_pretoks *ps) {
    for (size_t i = 0; i < ps->n; i++)
        sw_tok_pattern_release(&ps->v[i].pat);
    free(ps->v);
    memset(ps, 0, sizeof(*ps));
}

static int sw_tok_pretok_push(struct sw_tok_pretoks *ps, struct sw_tok_pretok *p) {
    struct sw_tok_pretok *v = realloc(ps->v, (ps->n + 1) * sizeof(*v));
    if (!v) {
        sw_tok_pattern_release(&p->pat);
        return sw_err_set(SW_ENOMEM, "tokenizer: out of memory");
    }
    ps->v = v;
    ps->v[ps->n++] = *p;
    return 0;
}

/* A one-character string field (Metaspace replacement, CharDelimiterSplit delimiter). */
static int sw_tok_jchar(const struct sw_tok_jctx *c, const json_t *j, const char *path,
                        const char *key, int32_t dflt, int32_t *cp, char *utf8, size_t *len) {
    json_t *v = sw_tok_jget(j, key);
    if (!v) {
        *cp = dflt;
    } else {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (!s || n == 0 || sw_tok_utf8_len((unsigned char)s[0]) != n)
            return sw_tok_jerr(c, path, "\"%s\" must be a one-character string", key);
        sw_tok_utf8_next((const unsigned char *)s, n, cp);
    }
    struct sw_tok_buf b = {0};
    SW_TRY(sw_tok_utf8_put(&b, *cp));
    memcpy(utf8, b.p, b.n);
    *len = b.n;
    sw_tok_buf_release(&b);
    return 0;
}

static int sw_tok_prepend_parse(const struct sw_tok_jctx *c, const json_t *j, const char *path,
                                enum sw_tok_prepend *out) {
    json_t *ps = sw_tok_jget(j, "prepend_scheme");
    if (ps) {
        const char *s = json_string_value(ps);
        if (!s) return sw_tok_jerr(c, path, "\"prepend_scheme\" must be a string");
        if (!strcmp(s, "always"))
            *out = SW_TOK_PREPEND_ALWAYS;
        else if (!strcmp(s, "first"))
            *out = SW_TOK_PREPEND_FIRST;
        else if (!strcmp(s, "never"))
            *out = SW_TOK_PREPEND_NEVER;
        else
            return sw_tok_jerr(c, path, "unknown prepend_scheme \"%s\"", s);
        return 0;
    }
    /* Older files carry add_prefix_space instead. */
    int aps;
    SW_TRY(sw_tok_jbool(c, j, path, "add_prefix_space", 1, &aps));
    *out = aps ? SW_TOK_PREPEND_ALWAYS : SW_TOK_PREPEND_NEVER;
    return 0;
}

int sw_tok_pretok_parse(struct sw_tokenizer *tok, const struct sw_tok_jctx *c, const json_t *j,
                        const char *path, struct sw_tok_pretoks *out) {
    const char *type;
    SW_TRY(sw_tok_jtype(c, j, path, &type));
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(j, "pretokenizers");
        if (!json_is_array(list))
            return sw_tok_jerr(c, path, "Sequence needs a \"pretokenizers\" array");
        for (size_t i = 0; i < json_array_size(list); i++) {
            char sub[256];
            snprintf(sub, sizeof(sub), "%s.pretokenizers[%zu]", path, i);
            SW_TRY(sw_tok_pretok_parse(tok, c, json_array_get(list, i), sub, out));
        }
        return 0;
    }
    struct sw_tok_pretok p;
    memset(&p, 0, sizeof(p));
    int rc = 0;
    if (!strcmp(type, "Split")) {
        p.kind = SW_TOK_PRE_SPLIT;
        char sub[256];
        snprintf(sub, sizeof(sub), "%s.pattern", path);
        SW_TRY(sw_tok_pattern_parse(tok, c, json_object_get(j, "pattern"), sub, &p.pat));
        SW_TRY_GOTO(rc, sw_tok_behavior_parse(c, j, path, SW_TOK_REMOVED, &p.behavior), fail);
        if (!sw_tok_jget(j, "behavior")) {
            rc = sw_tok_jerr(c, path, "Split needs a \"behavior\"");
            goto fail;
        }
        SW_TRY_GOTO(rc, sw_tok_jbool(c, j, path, "invert", 0, &p.invert), fail);
    } else if (!strcmp(type, "ByteLevel")) {
        p.kind = SW_TOK_PRE_BYTELEVEL;
        SW_TRY(sw_tok_jbool(c, j, path, "add_prefix_space", 1, &p.add_prefix_space));
        SW_TRY(sw_tok_jbool(c, j, path, "use_regex", 1, &p.use_regex));
        p.map_bytes = 1;
        if (p.use_regex) {
            p.pat.kind = SW_TOK_PAT_REGEX;
            SW_TRY(
                sw_tok_regex_add(tok, sw_tok_gpt2_re, sizeof(sw_tok_gpt2_re) - 1, path, &p.pat.re));
            if (!getenv("SW_TOK_NO_FAST"))
                p.pat.fast = sw_tok_fast_kind(sw_tok_gpt2_re, sizeof(sw_tok_gpt2_re) - 1);
        }
    } else if (!strcmp(type, "Metaspace")) {
        p.kind = SW_TOK_PRE_METASPACE;
        SW_TRY(sw_tok_jchar(c, j, path, "replacement", 0x2581, &p.repl_cp, p.repl, &p.repl_len));
        SW_TRY(sw_tok_prepend_parse(c, j, path, &p.prepend));
        SW_TRY(sw_tok_jbool(c, j, path, "split", 1, &p.split));
    } else if (!strcmp(type, "Digits")) {
        p.kind = SW_TOK_PRE_DIGITS;
        SW_TRY(sw_tok_jbool(c, j, path, "individual_digits", 0, &p.individual_digits));
        p.behavior = p.individual_digits ? SW_TOK_ISOLATED : SW_TOK_CONTIGUOUS;
    } else if (!strcmp(type, "Punctuation")) {
        p.kind = SW_TOK_PRE_PUNCT;
        SW_TRY(sw_tok_behavior_parse(c, j, path, SW_TOK_ISOLATED, &p.behavior));
    } else if (!strcmp(type, "Whitespace")) {
        p.kind = SW_TOK_PRE_WHITESPACE;
        p.pat.kind = SW_TOK_PAT_REGEX;
        SW_TRY(sw_tok_regex_add(tok, sw_tok_ws_re, sizeof(sw_tok_ws_re) - 1, path, &p.pat.re));
        p.behavior = SW_TOK_REMOVED;
        p.invert = 1;
    } else if (!strcmp(type, "WhitespaceSplit")) {
        p.kind = SW_TOK_PRE_WSSPLIT;
        p.behavior = SW_TOK_REMOVED;
    } else if (!strcmp(type, "BertPreTokenizer")) {
        /* whitespace split (removed), then punctuation isolated */
        p.kind = SW_TOK_PRE_WSSPLIT;
        p.behavior = SW_TOK_REMOVED;
        SW_TRY(sw_tok_pretok_push(out, &p));
        memset(&p, 0, sizeof(p));
        p.kind = SW_TOK_PRE_PUNCT;
        p.behavior = SW_TOK_ISOLATED;
    } else if (!strcmp(type, "CharDelimiterSplit")) {
        p.kind = SW_TOK_PRE_CHARDELIM;
        if (!sw_tok_jget(j, "delimiter")) return sw_tok_jerr(c, path, "missing \"delimiter\"");
        SW_TRY(sw_tok_jchar(c, j, path, "delimiter", 0, &p.repl_cp, p.repl, &p.repl_len));
        p.behavior = SW_TOK_REMOVED;
    } else {
        return sw_err_set(SW_EUNSUPPORTED, "%s: %s: pre_tokenizer type \"%s\" is not supported",
                          c->file, path, type);
    }
    return sw_tok_pretok_push(out, &p);
fail:
    sw_tok_pattern_release(&p.pat);
    return rc;
}

static int sw_tok_pretok_level(const struct sw_tokenizer *tok, struct sw_tok_scratch *sc,
                               size_t lvl, const char *s, size_t n, int at_origin,
                               struct sw_tok_ids *out);

/* Run the next stage on each kept span of s. */
static int sw_tok_pretok_each(const struct sw_tokenizer *tok, struct sw_tok_scratch *sc, size_t lvl,
                              const struct sw_tok_spans *sp, const char *s, int at_origin,
                              struct sw_tok_ids *out) {
    if (lvl + 1 == tok->pre.n) {
        /* pieces go straight to the model: fetch word-cache lines a few pieces ahead, since a
         * cache hit is otherwise a wait on memory */
        enum { AHEAD = 6 };
        for (size_t i = 0; i < sp->n && i < AHEAD; i++)
            sw_tok_bpe_prefetch(&tok->bpe, sc, s + sp->v[i].start, sp->v[i].end - sp->v[i].start);
        for (size_t i = 0; i < sp->n; i++) {
            const struct sw_tok_span *v = &sp->v[i];
            if (i + AHEAD < sp->n)
                sw_tok_bpe_prefetch(&tok->bpe, sc, s + sp->v[i + AHEAD].start,
                                    sp->v[i + AHEAD].end - sp->v[i + AHEAD].start);
            SW_TRY(sw_tok_bpe_encode(&tok->bpe, sc, s + v->start, v->end - v->start, out));
        }
        return 0;
    }
    for (size_t i = 0; i < sp->n; i++) {
        const struct sw_tok_span *v = &sp->v[i];
        SW_TRY(sw_tok_pretok_level(tok, sc, lvl + 1, s + v->start, v->end - v->start,
                                   at_origin && v->start == 0, out));
    }
    return 0;
}

/* ByteLevel's mapping of one piece, then the next stage. */
static int sw_tok_bytelevel_emit(const struct sw_tokenizer *tok, struct sw_tok_scratch *sc,
                                 size_t lvl, const struct sw_tok_pretok *p, const char *s, size_t n,
                                 int at_origin, struct sw_tok_ids *out) {
    if (!p->map_bytes) return sw_tok_pretok_level(tok, sc, lvl + 1, s, n, at_origin, out);
    struct sw_tok_buf *b = &sc->lvl_buf[2 * lvl + 1];
    b->n = 0;
    SW_TRY(sw_tok_buf_reserve(b, 2 * n));
    for (size_t i = 0; i < n; i++)
        SW_TRY(sw_tok_utf8_put(b, sw_tok_byte_char[(unsigned char)s[i]]));
    return sw_tok_pretok_level(tok, sc, lvl + 1, b->p, b->n, at_origin, out);
}

static int sw_tok_pretok_level(const struct sw_tokenizer *tok, struct sw_tok_scratch *sc,
                               size_t lvl, const char *s, size_t n, int at_origin,
                               struct sw_tok_ids *out) {
    if (n == 0) return 0; /* empty splits are dropped */
    if (lvl == tok->pre.n) return sw_tok_bpe_encode(&tok->bpe, sc, s, n, out);
    const struct sw_tok_pretok *p = &tok->pre.v[lvl];
    struct sw_tok_spans *sp = &sc->lvl_spans[lvl];
    struct sw_tok_buf *b = &sc->lvl_buf[2 * lvl];
    switch (p->kind) {
    case SW_TOK_PRE_SPLIT:
    case SW_TOK_PRE_WHITESPACE:
        SW_TRY(sw_tok_pattern_find(tok, &p->pat, sc, s, n, sp));
        sw_tok_split_apply(sp, p->behavior, p->invert);
        return sw_tok_pretok_each(tok, sc, lvl, sp, s, at_origin, out);
    case SW_TOK_PRE_DIGITS:
        SW_TRY(sw_tok_pattern_find_fn(sw_tok_is_numeric, 0, s, n, sp));
        sw_tok_split_apply(sp, p->behavior, 0);
        return sw_tok_pretok_each(tok, sc, lvl, sp, s, at_origin, out);
    case SW_TOK_PRE_PUNCT:
        SW_TRY(sw_tok_pattern_find_fn(sw_tok_is_punct, 0, s, n, sp));
        sw_tok_split_apply(sp, p->behavior, 0);
        return sw_tok_pretok_each(tok, sc, lvl, sp, s, at_origin, out);
    case SW_TOK_PRE_WSSPLIT:
        SW_TRY(sw_tok_pattern_find_fn(sw_tok_is_whitespace, 0, s, n, sp));
        sw_tok_split_apply(sp, SW_TOK_REMOVED, 0);
        return sw_tok_pretok_each(tok, sc, lvl, sp, s, at_origin, out);
    case SW_TOK_PRE_CHARDELIM:
        SW_TRY(sw_tok_pattern_find_fn(NULL, p->repl_cp, s, n, sp));
        sw_tok_split_apply(sp, SW_TOK_REMOVED, 0);
        return sw_tok_pretok_each(tok, sc, lvl, sp, s, at_origin, out);
    case SW_TOK_PRE_METASPACE: {
        b->n = 0;
        int starts = n >= p->repl_len && memcmp(s, p->repl, p->repl_len) == 0;
        if (s[0] == ' ' && p->repl_cp != ' ') starts = 1; /* the space becomes the replacement */
        if (p->repl_cp == ' ') starts = s[0] == ' ';
        int prepend = !starts && (p->prepend == SW_TOK_PREPEND_ALWAYS ||
                                  (p->prepend == SW_TOK_PREPEND_FIRST && at_origin));
        if (prepend) SW_TRY(sw_tok_buf_put(b, p->repl, p->repl_len));
        for (size_t i = 0; i < n; i++) {
            if (s[i] == ' ')
                SW_TRY(sw_tok_buf_put(b, p->repl, p->repl_len));
            else
                SW_TRY(sw_tok_buf_put(b, s + i, 1));
        }
        if (!p->split) return sw_tok_pretok_level(tok, sc, lvl + 1, b->p, b->n, at_origin, out);
        SW_TRY(sw_tok_pattern_find_fn(NULL, p->repl_cp, b->p, b->n, sp));
        sw_tok_split_apply(sp, SW_TOK_MERGED_NEXT, 0);
        return sw_tok_pretok_each(tok, sc, lvl, sp, b->p, at_origin, out);
    }
    case SW_TOK_PRE_BYTELEVEL: {
        const char *src = s;
        size_t len = n;
        if (p->add_prefix_space && s[0] != ' ') {
            b->n = 0;
            SW_TRY(sw_tok_buf_put(b, " ", 1));
            SW_TRY(sw_tok_buf_put(b, s, n));
            src = b->p;
            len = b->n;
        }
        if (!p->use_regex) return sw_tok_bytelevel_emit(tok, sc, lvl, p, src, len, at_origin, out);
        SW_TRY(sw_tok_pattern_find(tok, &p->pat, sc, src, len, sp));
        sw_tok_split_apply(sp, SW_TOK_ISOLATED, 0);
        for (size_t i = 0; i < sp->n; i++) {
            const struct sw_tok_span *v = &sp->v[i];
            SW_TRY(sw_tok_bytelevel_emit(tok, sc, lvl, p, src + v->start, v->end - v->start,
                                         at_origin && v->start == 0, out));
        }
        return 0;
    }
    }
    return 0;
}

int sw_tok_pretok_run(const struct sw_tokenizer *tok, struct sw_tok_scratch *sc, const char *s,
                      size_t n, int at_origin, struct sw_tok_ids *out) {
    return sw_tok_pretok_level(tok, sc, 0, s, n, at_origin, out);
}
