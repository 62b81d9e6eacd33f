/* sw_tok_normalize — the normalizers of tokenizer.json: NFC/NFD/NFKC/NFKD (utf8proc), Lowercase,
 * Strip, StripAccents, Replace (string or regex), Prepend, Append, ByteLevel, BertNormalizer and
 * Sequence (flattened at load).
 *
 * `tokenizers` runs the normalizer on each stretch of text between added tokens, so these
 * functions see one segment at a time. Lowercase, StripAccents and the BERT character classes
 * come from tables measured on `tokenizers` (sw_tok_unitab.c); the normalization forms use
 * utf8proc (Unicode 15), which differs from `tokenizers` only on the few compositions that
 * Unicode 16 added. Normalization forms take a fast path when every code
 * point is one no form can change (ASCII and most CJK, kana, Hangul syllables, emoji), because
 * running utf8proc on every segment would dominate the encode time. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "sw_err.h"
#include "sw_tok_internal.h"

static void sw_tok_norm_free_one(struct sw_tok_norm *n) {
    sw_tok_pattern_release(&n->pat);
    free(n->content);
}

void sw_tok_norms_release(struct sw_tok_norms *ns) {
    for (size_t i = 0; i < ns->n; i++)
        sw_tok_norm_free_one(&ns->v[i]);
    free(ns->v);
    memset(ns, 0, sizeof(*ns));
}

static int sw_tok_norm_push(struct sw_tok_norms *ns, struct sw_tok_norm *n) {
    struct sw_tok_norm *v = realloc(ns->v, (ns->n + 1) * sizeof(*v));
    if (!v) {
        sw_tok_norm_free_one(n);
        return sw_err_set(SW_ENOMEM, "tokenizer: out of memory");
    }
    ns->v = v;
    ns->v[ns->n++] = *n;
    return 0;
}

int sw_tok_norm_parse(struct sw_tokenizer *tok, const struct sw_tok_jctx *c, const json_t *j,
                      const char *path, struct sw_tok_norms *out) {
    const char *type;
    SW_TRY(sw_tok_jtype(c, j, path, &type));
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(j, "normalizers");
        if (!json_is_array(list))
            return sw_tok_jerr(c, path, "Sequence needs a \"normalizers\" array");
        for (size_t i = 0; i < json_array_size(list); i++) {
            char sub[256];
            snprintf(sub, sizeof(sub), "%s.normalizers[%zu]", path, i);
            SW_TRY(sw_tok_norm_parse(tok, c, json_array_get(list, i), sub, out));
        }
        return 0;
    }
    struct sw_tok_norm n;
    memset(&n, 0, sizeof(n));
    int rc = 0;
    if (!strcmp(type, "NFC"))
        n.kind = SW_TOK_NORM_NFC;
    else if (!strcmp(type, "NFD"))
        n.kind = SW_TOK_NORM_NFD;
    else if (!strcmp(type, "NFKC"))
        n.kind = SW_TOK_NORM_NFKC;
    else if (!strcmp(type, "NFKD"))
        n.kind = SW_TOK_NORM_NFKD;
    else if (!strcmp(type, "Lowercase"))
        n.kind = SW_TOK_NORM_LOWERCASE;
    else if (!strcmp(type, "StripAccents"))
        n.kind = SW_TOK_NORM_STRIP_ACCENTS;
    else if (!strcmp(type, "ByteLevel"))
        n.kind = SW_TOK_NORM_BYTELEVEL;
    else if (!strcmp(type, "Strip")) {
        n.kind = SW_TOK_NORM_STRIP;
        SW_TRY(sw_tok_jbool(c, j, path, "strip_left", 1, &n.left));
        SW_TRY(sw_tok_jbool(c, j, path, "strip_right", 1, &n.right));
    } else if (!strcmp(type, "Replace")) {
        n.kind = SW_TOK_NORM_REPLACE;
        char sub[256];
        snprintf(sub, sizeof(sub), "%s.pattern", path);
        SW_TRY_GOTO(rc, sw_tok_pattern_parse(tok, c, json_object_get(j, "pattern"), sub, &n.pat),
                    fail);
        SW_TRY_GOTO(rc, sw_tok_jstr(c, j, path, "content", 1, &n.content, &n.content_len), fail);
    } else if (!strcmp(type, "Prepend") || !strcmp(type, "Append")) {
        n.kind = type[0] == 'P' ? SW_TOK_NORM_PREPEND : SW_TOK_NORM_APPEND;
        SW_TRY(sw_tok_jstr(c, j, path, type[0] == 'P' ? "prepend" : "append", 1, &n.content,
                           &n.content_len));
    } else if (!strcmp(type, "BertNormalizer")) {
        n.kind = SW_TOK_NORM_BERT;
        SW_TRY(sw_tok_jbool(c, j, path, "clean_text", 1, &n.clean_text));
        SW_TRY(sw_tok_jbool(c, j, path, "handle_chinese_chars", 1, &n.chinese));
        SW_TRY(sw_tok_jbool(c, j, path, "lowercase", 1, &n.lowercase));
        SW_TRY(sw_tok_jbool(c, j, path, "strip_accents", n.lowercase, &n.strip_accents));
    } else {
        return sw_err_set(SW_EUNSUPPORTED, "%s: %s: normalizer type \"%s\" is not supported",
                          c->file, path, type);
    }
    return sw_tok_norm_push(out, &n);
fail:
    sw_tok_norm_free_one(&n);
    return rc;
}

/* Code points a normalization form leaves alone when they stand among other such code points:
 * starters (ccc 0) without a decomposition of the kind the form applies (canonical only for
 * NFC/NFD, any for NFKC/NFKD) that are not marks and not conjoining jamo (the only non-mark
 * characters that compose with a preceding starter). */
static int sw_tok_nf_stable(int32_t cp, int compose, int compat) {
    if ((cp >= 0x1100 && cp <= 0x11FF) || (cp >= 0xA960 && cp <= 0xA97F) ||
        (cp >= 0xD7B0 && cp <= 0xD7FF))
        return 0;
    /* Hangul syllables decompose algorithmically (so utf8proc lists no decomposition), and
     * recompose under NFC/NFKC */
    if (cp >= 0xAC00 && cp <= 0xD7A3) return compose;
    const utf8proc_property_t *p = utf8proc_get_property(cp);
    if (p->combining_class != 0) return 0;
    if (p->decomp_seqindex != UINT16_MAX && (compat || p->decomp_type == 0)) return 0;
    return p->category != UTF8PROC_CATEGORY_MN && p->category != UTF8PROC_CATEGORY_MC &&
           p->category != UTF8PROC_CATEGORY_ME;
}

static int sw_tok_nf_quick(const char *s, size_t n, int32_t ascii_limit, int compose, int compat) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        int32_t cp;
        i += sw_tok_utf8_next(u + i, n - i, &cp);
        if (cp < ascii_limit) continue;
        if (!sw_tok_nf_stable(cp, compose, compat)) return 0;
    }
    return 1;
}

static int sw_tok_nf(enum sw_tok_norm_kind k, const struct sw_tok_buf *in, struct sw_tok_buf *out) {
    int32_t limit = k == SW_TOK_NORM_NFC ? 0x300 : k == SW_TOK_NORM_NFD ? 0xC0 : 0xA0;
    int compose = k == SW_TOK_NORM_NFC || k == SW_TOK_NORM_NFKC;
    int compat = k == SW_TOK_NORM_NFKC || k == SW_TOK_NORM_NFKD;
    if (sw_tok_nf_quick(in->p, in->n, limit, compose, compat))
        return sw_tok_buf_put(out, in->p, in->n);
    int opt = UTF8PROC_STABLE;
    if (k == SW_TOK_NORM_NFC || k == SW_TOK_NORM_NFKC)
        opt |= UTF8PROC_COMPOSE;
    else
        opt |= UTF8PROC_DECOMPOSE;
    if (k == SW_TOK_NORM_NFKC || k == SW_TOK_NORM_NFKD) opt |= UTF8PROC_COMPAT;
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)in->p, (utf8proc_ssize_t)in->n,
                                      &dst, (utf8proc_option_t)opt);
    if (r < 0) {
        free(dst);
        return sw_err_set(r == UTF8PROC_ERROR_NOMEM ? SW_ENOMEM : SW_EINVAL,
                          "tokenizer: unicode normalization failed: %s", utf8proc_errmsg(r));
    }
    int rc = sw_tok_buf_put(out, dst, (size_t)r);
    free(dst);
    return rc;
}

static const uint32_t *sw_tok_lower_find(int32_t cp) {
    size_t lo = 0, hi = sw_tok_uni_lower_n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if ((uint32_t)cp < sw_tok_uni_lower[mid][0])
            hi = mid;
        else if ((uint32_t)cp > sw_tok_uni_lower[mid][0])
            lo = mid + 1;
        else
            return sw_tok_uni_lower[mid];
    }
    return NULL;
}

/* char::to_lowercase of every code point (full mappings, no context rules). */
static int sw_tok_lower(const struct sw_tok_buf *in, struct sw_tok_buf *out) {
    const unsigned char *u = (const unsigned char *)in->p;
    SW_TRY(sw_tok_buf_reserve(out, in->n));
    for (size_t i = 0; i < in->n;) {
        if (u[i] < 0x80) {
            unsigned char ch = u[i++];
            if (ch >= 'A' && ch <= 'Z') ch = (unsigned char)(ch + 32);
            SW_TRY(sw_tok_buf_put(out, &ch, 1));
            continue;
        }
        int32_t cp;
        size_t k = sw_tok_utf8_next(u + i, in->n - i, &cp);
        const uint32_t *m = sw_tok_lower_find(cp);
        if (!m)
            SW_TRY(sw_tok_buf_put(out, in->p + i, k));
        else
            for (int j = 1; j < 4 && m[j]; j++)
                SW_TRY(sw_tok_utf8_put(out, (int32_t)m[j]));
        i += k;
    }
    return 0;
}

static int sw_tok_is_mark(int32_t cp) {
    return SW_TOK_UNI_IN(sw_tok_uni_strip_accents, cp);
}

/* Keep the code points of in for which keep() holds. */
static int sw_tok_filter(const struct sw_tok_buf *in, struct sw_tok_buf *out,
                         int (*drop)(int32_t)) {
    const unsigned char *u = (const unsigned char *)in->p;
    for (size_t i = 0; i < in->n;) {
        int32_t cp;
        size_t k = sw_tok_utf8_next(u + i, in->n - i, &cp);
        if (!drop(cp)) SW_TRY(sw_tok_buf_put(out, in->p + i, k));
        i += k;
    }
    return 0;
}

static int sw_tok_strip(const struct sw_tok_norm *nm, const struct sw_tok_buf *in,
                        struct sw_tok_buf *out, int *at_origin) {
    const unsigned char *u = (const unsigned char *)in->p;
    size_t a = 0, b = in->n;
    if (nm->left) {
        while (a < b) {
            int32_t cp;
            size_t k = sw_tok_utf8_next(u + a, b - a, &cp);
            if (!sw_tok_is_whitespace(cp)) break;
            a += k;
        }
        if (a > 0) *at_origin = 0;
    }
    if (nm->right) {
        while (b > a) {
            size_t k = sw_tok_utf8_prev_len(u, b);
            int32_t cp;
            sw_tok_utf8_next(u + b - k, k, &cp);
            if (!sw_tok_is_whitespace(cp)) break;
            b -= k;
        }
    }
    return sw_tok_buf_put(out, in->p + a, b - a);
}

static int sw_tok_replace(const struct sw_tokenizer *tok, const struct sw_tok_norm *nm,
                          struct sw_tok_scratch *sc, const struct sw_tok_buf *in,
                          struct sw_tok_buf *out) {
    struct sw_tok_spans *sp = &sc->find;
    SW_TRY(sw_tok_pattern_find(tok, &nm->pat, sc, in->p, in->n, sp));
    for (size_t i = 0; i < sp->n; i++) {
        if (sp->v[i].flag)
            SW_TRY(sw_tok_buf_put(out, nm->content, nm->content_len));
        else
            SW_TRY(sw_tok_buf_put(out, in->p + sp->v[i].start, sp->v[i].end - sp->v[i].start));
    }
    return 0;
}

static int sw_tok_bert_drop(int32_t cp) {
    return SW_TOK_UNI_IN(sw_tok_uni_bert_drop, cp);
}
static int sw_tok_is_chinese(int32_t cp) {
    return SW_TOK_UNI_IN(sw_tok_uni_bert_chinese, cp);
}
static int sw_tok_is_mn(int32_t cp) {
    return SW_TOK_UNI_IN(sw_tok_uni_nonspacing, cp);
}

static int sw_tok_bert(const struct sw_tok_norm *nm, struct sw_tok_buf *in, struct sw_tok_buf *out,
                       struct sw_tok_buf *tmp) {
    const unsigned char *u;
    if (nm->clean_text) {
        u = (const unsigned char *)in->p;
        out->n = 0;
        for (size_t i = 0; i < in->n;) {
            int32_t cp;
            size_t k = sw_tok_utf8_next(u + i, in->n - i, &cp);
            if (!sw_tok_bert_drop(cp)) {
                if (SW_TOK_UNI_IN(sw_tok_uni_bert_space, cp))
                    SW_TRY(sw_tok_buf_put(out, " ", 1));
                else
                    SW_TRY(sw_tok_buf_put(out, in->p + i, k));
            }
            i += k;
        }
        struct sw_tok_buf t = *in;
        *in = *out;
        *out = t;
    }
    if (nm->chinese) {
        u = (const unsigned char *)in->p;
        out->n = 0;
        for (size_t i = 0; i < in->n;) {
            int32_t cp;
            size_t k = sw_tok_utf8_next(u + i, in->n - i, &cp);
            if (sw_tok_is_chinese(cp)) {
                SW_TRY(sw_tok_buf_put(out, " ", 1));
                SW_TRY(sw_tok_buf_put(out, in->p + i, k));
                SW_TRY(sw_tok_buf_put(out, " ", 1));
            } else {
                SW_TRY(sw_tok_buf_put(out, in->p + i, k));
            }
            i += k;
        }
        struct sw_tok_buf t = *in;
        *in = *out;
        *out = t;
    }
    if (nm->strip_accents) {
        tmp->n = 0;
        SW_TRY(sw_tok_nf(SW_TOK_NORM_NFD, in, tmp));
        out->n = 0;
        SW_TRY(sw_tok_filter(tmp, out, sw_tok_is_mn));
        struct sw_tok_buf t = *in;
        *in = *out;
        *out = t;
    }
    out->n = 0;
    if (nm->lowercase) return sw_tok_lower(in, out);
    return sw_tok_buf_put(out, in->p, in->n);
}

int sw_tok_norm_apply(const struct sw_tokenizer *tok, const struct sw_tok_norms *ns,
                      struct sw_tok_scratch *sc, struct sw_tok_buf *s, int *at_origin) {
    for (size_t i = 0; i < ns->n; i++) {
        const struct sw_tok_norm *nm = &ns->v[i];
        struct sw_tok_buf *out = &sc->spare;
        out->n = 0;
        SW_TRY(sw_tok_buf_put(out, "", 0)); /* both buffers allocated: never a NULL base */
        SW_TRY(sw_tok_buf_put(s, "", 0));
        switch (nm->kind) {
        case SW_TOK_NORM_NFC:
        case SW_TOK_NORM_NFD:
        case SW_TOK_NORM_NFKC:
        case SW_TOK_NORM_NFKD: SW_TRY(sw_tok_nf(nm->kind, s, out)); break;
        case SW_TOK_NORM_LOWERCASE: SW_TRY(sw_tok_lower(s, out)); break;
        case SW_TOK_NORM_STRIP: SW_TRY(sw_tok_strip(nm, s, out, at_origin)); break;
        case SW_TOK_NORM_STRIP_ACCENTS: SW_TRY(sw_tok_filter(s, out, sw_tok_is_mark)); break;
        case SW_TOK_NORM_REPLACE: SW_TRY(sw_tok_replace(tok, nm, sc, s, out)); break;
        case SW_TOK_NORM_PREPEND:
            if (s->n) SW_TRY(sw_tok_buf_put(out, nm->content, nm->content_len));
            SW_TRY(sw_tok_buf_put(out, s->p, s->n));
            break;
        case SW_TOK_NORM_APPEND:
            SW_TRY(sw_tok_buf_put(out, s->p, s->n));
            if (s->n) SW_TRY(sw_tok_buf_put(out, nm->content, nm->content_len));
            break;
        case SW_TOK_NORM_BYTELEVEL:
            for (size_t k = 0; k < s->n; k++)
                SW_TRY(sw_tok_utf8_put(out, sw_tok_byte_char[(unsigned char)s->p[k]]));
            break;
        case SW_TOK_NORM_BERT: SW_TRY(sw_tok_bert(nm, s, out, &sc->dec_tmp)); break;
        }
        struct sw_tok_buf t = *s;
        *s = *out;
        *out = t;
    }
    return 0;
}
