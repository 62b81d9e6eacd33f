/* sw_tok_decode — the decoders of tokenizer.json: ByteLevel, Metaspace, ByteFallback, Fuse,
 * Strip, Replace, BPEDecoder and Sequence (flattened at load).
 *
 * Like `tokenizers`, a decoder maps the list of token strings to a new list (decode_chain) and
 * the final list is concatenated. ByteLevel turns each token's characters back into bytes (a
 * token with a character outside the byte alphabet, such as an added token, contributes its
 * UTF-8 bytes unchanged) and repairs the result with from_utf8_lossy; ByteFallback turns runs
 * of <0xXX> tokens into text, or one U+FFFD per byte when the run is not valid UTF-8. */
#include <stdlib.h>
#include <string.h>

#include "sw_err.h"
#include "sw_tok_internal.h"

static void sw_tok_dec_free_one(struct sw_tok_dec *d) {
    sw_tok_pattern_release(&d->pat);
    free(d->content);
}

void sw_tok_decs_release(struct sw_tok_decs *d) {
    for (size_t i = 0; i < d->n; i++)
        sw_tok_dec_free_one(&d->v[i]);
    free(d->v);
    memset(d, 0, sizeof(*d));
}

static int sw_tok_dec_push(struct sw_tok_decs *ds, struct sw_tok_dec *d) {
    struct sw_tok_dec *v = realloc(ds->v, (ds->n + 1) * sizeof(*v));
    if (!v) {
        sw_tok_dec_free_one(d);
        return sw_err_set(SW_ENOMEM, "tokenizer: out of memory");
    }
    ds->v = v;
    ds->v[ds->n++] = *d;
    return 0;
}

static int sw_tok_jcp(const struct sw_tok_jctx *c, const json_t *j, const char *path,
                      const char *key, int32_t dflt, int32_t *cp) {
    json_t *v = sw_tok_jget(j, key);
    if (!v) {
        *cp = dflt;
        return 0;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (!s || n == 0 || sw_tok_utf8_len((unsigned char)s[0]) != n)
        return sw_tok_jerr(c, path, "\"%s\" must be a one-character string", key);
    sw_tok_utf8_next((const unsigned char *)s, n, cp);
    return 0;
}

static int sw_tok_jsize(const struct sw_tok_jctx *c, const json_t *j, const char *path,
                        const char *key, size_t *out) {
    long long v;
    SW_TRY(sw_tok_jint(c, j, path, key, 0, &v));
    if (v < 0) return sw_tok_jerr(c, path, "\"%s\" must not be negative", key);
    *out = (size_t)v;
    return 0;
}

int sw_tok_dec_parse(struct sw_tokenizer *tok, const struct sw_tok_jctx *c, const json_t *j,
                     const char *path, struct sw_tok_decs *out) {
    const char *type;
    out->present = 1;
    SW_TRY(sw_tok_jtype(c, j, path, &type));
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(j, "decoders");
        if (!json_is_array(list))
            return sw_tok_jerr(c, path, "Sequence needs a \"decoders\" array");
        for (size_t i = 0; i < json_array_size(list); i++) {
            char sub[256];
            snprintf(sub, sizeof(sub), "%s.decoders[%zu]", path, i);
            SW_TRY(sw_tok_dec_parse(tok, c, json_array_get(list, i), sub, out));
        }
        return 0;
    }
    struct sw_tok_dec d;
    memset(&d, 0, sizeof(d));
    int rc = 0;
    if (!strcmp(type, "ByteLevel")) {
        d.kind = SW_TOK_DEC_BYTELEVEL;
    } else if (!strcmp(type, "ByteFallback")) {
        d.kind = SW_TOK_DEC_BYTEFALLBACK;
    } else if (!strcmp(type, "Fuse")) {
        d.kind = SW_TOK_DEC_FUSE;
    } else if (!strcmp(type, "Metaspace")) {
        d.kind = SW_TOK_DEC_METASPACE;
        SW_TRY(sw_tok_jcp(c, j, path, "replacement", 0x2581, &d.repl_cp));
        json_t *ps = sw_tok_jget(j, "prepend_scheme");
        if (ps) {
            const char *s = json_string_value(ps);
            if (!s) return sw_tok_jerr(c, path, "\"prepend_scheme\" must be a string");
            d.prepend = !strcmp(s, "never")   ? SW_TOK_PREPEND_NEVER
                        : !strcmp(s, "first") ? SW_TOK_PREPEND_FIRST
                                              : SW_TOK_PREPEND_ALWAYS;
        } else {
            int aps;
            SW_TRY(sw_tok_jbool(c, j, path, "add_prefix_space", 1, &aps));
            d.prepend = aps ? SW_TOK_PREPEND_ALWAYS : SW_TOK_PREPEND_NEVER;
        }
    } else if (!strcmp(type, "Strip")) {
        d.kind = SW_TOK_DEC_STRIP;
        SW_TRY(sw_tok_jcp(c, j, path, "content", ' ', &d.content_cp));
        SW_TRY(sw_tok_jsize(c, j, path, "start", &d.start));
        SW_TRY(sw_tok_jsize(c, j, path, "stop", &d.stop));
    } else if (!strcmp(type, "Replace")) {
        d.kind = SW_TOK_DEC_REPLACE;
        char sub[256];
        snprintf(sub, sizeof(sub), "%s.pattern", path);
        SW_TRY(sw_tok_pattern_parse(tok, c, json_object_get(j, "pattern"), sub, &d.pat));
        SW_TRY_GOTO(rc, sw_tok_jstr(c, j, path, "content", 1, &d.content, &d.content_len), fail);
    } else if (!strcmp(type, "BPEDecoder")) {
        d.kind = SW_TOK_DEC_BPE;
        SW_TRY(sw_tok_jstr(c, j, path, "suffix", 0, &d.content, &d.content_len));
        if (!d.content) {
            d.content = sw_tok_strndup("</w>", 4);
            if (!d.content) return SW_ENOMEM;
            d.content_len = 4;
        }
    } else {
        return sw_err_set(SW_EUNSUPPORTED, "%s: %s: decoder type \"%s\" is not supported", c->file,
                          path, type);
    }
    return sw_tok_dec_push(out, &d);
fail:
    sw_tok_dec_free_one(&d);
    return rc;
}

/* ---- decode_chain steps: in -> out ---- */

static int sw_tok_dec_bytelevel(const struct sw_tok_strs *in, struct sw_tok_strs *out,
                                struct sw_tok_buf *tmp) {
    tmp->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        const unsigned char *s = (const unsigned char *)in->pool.p + in->off[i];
        size_t n = in->len[i], mark = tmp->n;
        int ok = 1;
        for (size_t k = 0; k < n;) {
            int32_t cp;
            k += sw_tok_utf8_next(s + k, n - k, &cp);
            int b = sw_tok_char_byte(cp);
            if (b < 0) {
                ok = 0;
                break;
            }
            unsigned char ch = (unsigned char)b;
            SW_TRY(sw_tok_buf_put(tmp, &ch, 1));
        }
        if (!ok) {
            tmp->n = mark;
            SW_TRY(sw_tok_buf_put(tmp, s, n));
        }
    }
    size_t start = out->pool.n;
    SW_TRY(sw_tok_utf8_lossy(tmp->p ? tmp->p : "", tmp->n, &out->pool));
    return sw_tok_strs_end(out, start);
}

static int sw_tok_dec_metaspace(const struct sw_tok_dec *d, const struct sw_tok_strs *in,
                                struct sw_tok_strs *out) {
    for (size_t i = 0; i < in->n; i++) {
        const unsigned char *s = (const unsigned char *)in->pool.p + in->off[i];
        size_t n = in->len[i], start = out->pool.n;
        for (size_t k = 0; k < n;) {
            int32_t cp;
            size_t cl = sw_tok_utf8_next(s + k, n - k, &cp);
            if (cp == d->repl_cp) {
                if (!(i == 0 && d->prepend != SW_TOK_PREPEND_NEVER))
                    SW_TRY(sw_tok_buf_put(&out->pool, " ", 1));
            } else {
                SW_TRY(sw_tok_buf_put(&out->pool, s + k, cl));
            }
            k += cl;
        }
        SW_TRY(sw_tok_strs_end(out, start));
    }
    return 0;
}

static int sw_tok_hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* "<0xXX>" -> byte, as u8::from_str_radix(&token[3..5], 16) reads it (a leading '+' allowed). */
static int sw_tok_fallback_byte(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    if (s[3] == '+') return sw_tok_hexval(s[4]);
    int hi = sw_tok_hexval(s[3]), lo = sw_tok_hexval(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

static int sw_tok_dec_flush_bytes(struct sw_tok_buf *bytes, struct sw_tok_strs *out) {
    if (!bytes->n) return 0;
    if (sw_tok_utf8_valid(bytes->p, bytes->n) == bytes->n) {
        SW_TRY(sw_tok_strs_push(out, bytes->p, bytes->n));
    } else {
        for (size_t k = 0; k < bytes->n; k++)
            SW_TRY(sw_tok_strs_push(out, "\xEF\xBF\xBD", 3));
    }
    bytes->n = 0;
    return 0;
}

static int sw_tok_dec_bytefallback(const struct sw_tok_strs *in, struct sw_tok_strs *out,
                                   struct sw_tok_buf *bytes) {
    bytes->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        const char *s = in->pool.p + in->off[i];
        int b = sw_tok_fallback_byte(s, in->len[i]);
        if (b >= 0) {
            unsigned char ch = (unsigned char)b;
            SW_TRY(sw_tok_buf_put(bytes, &ch, 1));
            continue;
        }
        SW_TRY(sw_tok_dec_flush_bytes(bytes, out));
        SW_TRY(sw_tok_strs_push(out, s, in->len[i]));
    }
    return sw_tok_dec_flush_bytes(bytes, out);
}

static int sw_tok_dec_strip(const struct sw_tok_dec *d, const struct sw_tok_strs *in,
                            struct sw_tok_strs *out) {
    for (size_t i = 0; i < in->n; i++) {
        const unsigned char *s = (const unsigned char *)in->pool.p + in->off[i];
        size_t n = in->len[i], a = 0, b = n;
        for (size_t k = 0; k < d->start && a < n; k++) {
            int32_t cp;
            size_t cl = sw_tok_utf8_next(s + a, n - a, &cp);
            if (cp != d->content_cp) break;
            a += cl;
        }
        for (size_t k = 0; k < d->stop && b > a; k++) {
            size_t cl = sw_tok_utf8_prev_len(s, b);
            int32_t cp;
            sw_tok_utf8_next(s + b - cl, cl, &cp);
            if (cp != d->content_cp) break;
            b -= cl;
        }
        SW_TRY(sw_tok_strs_push(out, (const char *)s + a, b - a));
    }
    return 0;
}

static int sw_tok_dec_replace(const struct sw_tokenizer *tok, const struct sw_tok_dec *d,
                              struct sw_tok_scratch *sc, const struct sw_tok_strs *in,
                              struct sw_tok_strs *out) {
    for (size_t i = 0; i < in->n; i++) {
        const char *s = in->pool.p + in->off[i];
        size_t start = out->pool.n;
        SW_TRY(sw_tok_pattern_find(tok, &d->pat, sc, s, in->len[i], &sc->find));
        for (size_t k = 0; k < sc->find.n; k++) {
            const struct sw_tok_span *v = &sc->find.v[k];
            if (v->flag)
                SW_TRY(sw_tok_buf_put(&out->pool, d->content, d->content_len));
            else
                SW_TRY(sw_tok_buf_put(&out->pool, s + v->start, v->end - v->start));
        }
        SW_TRY(sw_tok_strs_end(out, start));
    }
    return 0;
}

static int sw_tok_dec_bpe(const struct sw_tok_dec *d, const struct sw_tok_strs *in,
                          struct sw_tok_strs *out) {
    for (size_t i = 0; i < in->n; i++) {
        const char *s = in->pool.p + in->off[i];
        size_t n = in->len[i], start = out->pool.n;
        const char *rep = i + 1 == in->n ? "" : " ";
        for (size_t k = 0; k < n;) {
            if (d->content_len && k + d->content_len <= n &&
                !memcmp(s + k, d->content, d->content_len)) {
                SW_TRY(sw_tok_buf_put(&out->pool, rep, strlen(rep)));
                k += d->content_len;
            } else {
                SW_TRY(sw_tok_buf_put(&out->pool, s + k, 1));
                k++;
            }
        }
        SW_TRY(sw_tok_strs_end(out, start));
    }
    return 0;
}

int sw_tok_dec_run(const struct sw_tokenizer *tok, const struct sw_tok_decs *d,
                   struct sw_tok_scratch *sc, struct sw_tok_strs *in, struct sw_tok_buf *out) {
    struct sw_tok_strs *a = in, *b = (in == &sc->dec_a) ? &sc->dec_b : &sc->dec_a;
    if (!d->present) {
        for (size_t i = 0; i < a->n; i++) {
            if (i) SW_TRY(sw_tok_buf_put(out, " ", 1));
            SW_TRY(sw_tok_buf_put(out, a->pool.p + a->off[i], a->len[i]));
        }
        return 0;
    }
    for (size_t k = 0; k < d->n; k++) {
        const struct sw_tok_dec *dk = &d->v[k];
        sw_tok_strs_clear(b);
        switch (dk->kind) {
        case SW_TOK_DEC_BYTELEVEL: SW_TRY(sw_tok_dec_bytelevel(a, b, &sc->dec_tmp)); break;
        case SW_TOK_DEC_METASPACE: SW_TRY(sw_tok_dec_metaspace(dk, a, b)); break;
        case SW_TOK_DEC_BYTEFALLBACK: SW_TRY(sw_tok_dec_bytefallback(a, b, &sc->dec_tmp)); break;
        case SW_TOK_DEC_FUSE: {
            size_t start = b->pool.n;
            for (size_t i = 0; i < a->n; i++)
                SW_TRY(sw_tok_buf_put(&b->pool, a->pool.p + a->off[i], a->len[i]));
            SW_TRY(sw_tok_strs_end(b, start));
            break;
        }
        case SW_TOK_DEC_STRIP: SW_TRY(sw_tok_dec_strip(dk, a, b)); break;
        case SW_TOK_DEC_REPLACE: SW_TRY(sw_tok_dec_replace(tok, dk, sc, a, b)); break;
        case SW_TOK_DEC_BPE: SW_TRY(sw_tok_dec_bpe(dk, a, b)); break;
        case SW_TOK_DEC_WORDPIECE:
            return sw_err_set(SW_EUNSUPPORTED, "tokenizer: WordPiece decoder");
        }
        struct sw_tok_strs *t = a;
        a = b;
        b = t;
    }
    for (size_t i = 0; i < a->n; i++)
        SW_TRY(sw_tok_buf_put(out, a->pool.p + a->off[i], a->len[i]));
    return 0;
}
