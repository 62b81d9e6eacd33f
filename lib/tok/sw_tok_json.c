/* sw_tok_json — a direct reader for tokenizer.json's model.vocab object.
 *
 * jansson cannot hold object keys containing NUL ("\u0000" is a real vocabulary entry in some
 * tokenizers), and building a 150k-member jansson object only to copy it into a hash map is
 * slow. So the loader finds the byte span of root.model.vocab with a small JSON skipper, parses
 * that object itself straight into the vocabulary map, and blanks the span (keeping newlines,
 * so jansson's line numbers stay right) before handing the rest to jansson. Strings follow JSON
 * (RFC 8259) as serde_json reads them: escapes including surrogate pairs, no lone surrogates,
 * no raw control characters, valid UTF-8. */
#include <stdlib.h>
#include <string.h>

#include "sw_err.h"
#include "sw_tok_internal.h"

#define SW_TOK_JSON_DEPTH 256

struct sw_tok_jscan {
    const char *s;
    size_t n, i;
};

static void sw_tok_jws(struct sw_tok_jscan *p) {
    while (p->i < p->n &&
           (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

/* Skip a string starting at the quote; returns 0 or -1. */
static int sw_tok_jskip_string(struct sw_tok_jscan *p) {
    if (p->i >= p->n || p->s[p->i] != '"') return -1;
    p->i++;
    while (p->i < p->n) {
        const char *q = memchr(p->s + p->i, '"', p->n - p->i);
        if (!q) return -1;
        size_t k = (size_t)(q - p->s), bs = 0;
        while (k > p->i + bs && p->s[k - 1 - bs] == '\\')
            bs++;
        p->i = k + 1;
        if (bs % 2 == 0) return 0;
    }
    return -1;
}

static int sw_tok_jskip_value(struct sw_tok_jscan *p, int depth) {
    if (depth > SW_TOK_JSON_DEPTH) return -1;
    sw_tok_jws(p);
    if (p->i >= p->n) return -1;
    char c = p->s[p->i];
    if (c == '"') return sw_tok_jskip_string(p);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        p->i++;
        sw_tok_jws(p);
        if (p->i < p->n && p->s[p->i] == close) {
            p->i++;
            return 0;
        }
        for (;;) {
            if (c == '{') {
                sw_tok_jws(p);
                if (sw_tok_jskip_string(p)) return -1;
                sw_tok_jws(p);
                if (p->i >= p->n || p->s[p->i] != ':') return -1;
                p->i++;
            }
            if (sw_tok_jskip_value(p, depth + 1)) return -1;
            sw_tok_jws(p);
            if (p->i >= p->n) return -1;
            if (p->s[p->i] == ',') {
                p->i++;
                continue;
            }
            if (p->s[p->i] == close) {
                p->i++;
                return 0;
            }
            return -1;
        }
    }
    /* number or literal */
    size_t start = p->i;
    while (p->i < p->n && !strchr(",}] \t\r\n", p->s[p->i]))
        p->i++;
    return p->i > start ? 0 : -1;
}

/* In the object starting at p->i, find the last member named key (raw bytes); its value span. */
static int sw_tok_jfind_member(struct sw_tok_jscan *p, const char *key, size_t *vs, size_t *ve) {
    size_t klen = strlen(key);
    int found = 0;
    sw_tok_jws(p);
    if (p->i >= p->n || p->s[p->i] != '{') return -1;
    p->i++;
    sw_tok_jws(p);
    if (p->i < p->n && p->s[p->i] == '}') return 0;
    for (;;) {
        sw_tok_jws(p);
        size_t ks = p->i;
        if (sw_tok_jskip_string(p)) return -1;
        int match = p->i - ks == klen + 2 && !memcmp(p->s + ks + 1, key, klen);
        sw_tok_jws(p);
        if (p->i >= p->n || p->s[p->i] != ':') return -1;
        p->i++;
        sw_tok_jws(p);
        size_t start = p->i;
        if (sw_tok_jskip_value(p, 1)) return -1;
        if (match) {
            *vs = start;
            *ve = p->i;
            found = 1;
        }
        sw_tok_jws(p);
        if (p->i >= p->n) return -1;
        if (p->s[p->i] == ',') {
            p->i++;
            continue;
        }
        if (p->s[p->i] == '}') return found;
        return -1;
    }
}

int sw_tok_json_find_vocab(const char *s, size_t n, size_t *start, size_t *end) {
    struct sw_tok_jscan p = {s, n, 0};
    size_t ms, me;
    int r = sw_tok_jfind_member(&p, "model", &ms, &me);
    if (r <= 0) return r;
    struct sw_tok_jscan q = {s, me, ms};
    return sw_tok_jfind_member(&q, "vocab", start, end);
}

static int sw_tok_hex4(const char *s, uint32_t *v) {
    *v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        *v = *v * 16 + (uint32_t)d;
    }
    return 0;
}

/* Decode the JSON string at p->i into out. Returns 0, or -1 with *why set. */
static int sw_tok_jstring(struct sw_tok_jscan *p, struct sw_tok_buf *out, const char **why) {
    out->n = 0;
    p->i++; /* opening quote */
    for (;;) {
        size_t start = p->i;
        while (p->i < p->n && p->s[p->i] != '"' && p->s[p->i] != '\\' &&
               (unsigned char)p->s[p->i] >= 0x20)
            p->i++;
        size_t run = p->i - start;
        if (sw_tok_utf8_valid(p->s + start, run) != run) {
            *why = "invalid UTF-8 in a string";
            return -1;
        }
        if (sw_tok_buf_put(out, p->s + start, run)) {
            *why = "out of memory";
            return -1;
        }
        if (p->i >= p->n) {
            *why = "unterminated string";
            return -1;
        }
        char c = p->s[p->i];
        if (c == '"') {
            p->i++;
            return 0;
        }
        if ((unsigned char)c < 0x20) {
            *why = "control character in a string";
            return -1;
        }
        /* escape */
        if (p->i + 1 >= p->n) {
            *why = "unterminated escape";
            return -1;
        }
        char e = p->s[p->i + 1];
        p->i += 2;
        static const char esc[] = "\"\\/bfnrt", map[] = "\"\\/\b\f\n\r\t";
        const char *simple = e ? strchr(esc, e) : NULL;
        if (simple) {
            if (sw_tok_buf_put(out, &map[simple - esc], 1)) return -1;
            continue;
        }
        uint32_t u;
        if (e != 'u' || p->i + 4 > p->n || sw_tok_hex4(p->s + p->i, &u)) {
            *why = "bad escape";
            return -1;
        }
        p->i += 4;
        if (u >= 0xDC00 && u <= 0xDFFF) {
            *why = "lone low surrogate";
            return -1;
        }
        if (u >= 0xD800 && u <= 0xDBFF) {
            uint32_t lo;
            if (p->i + 6 > p->n || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u' ||
                sw_tok_hex4(p->s + p->i + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                *why = "lone high surrogate";
                return -1;
            }
            p->i += 6;
            u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (sw_tok_utf8_put(out, (int32_t)u)) return -1;
    }
}

int sw_tok_json_parse_vocab(const char *file, const char *s, size_t n, struct sw_strmap *m) {
    struct sw_tok_jscan p = {s, n, 0};
    struct sw_tok_buf key = {0};
    const char *why = "expected an object";
    size_t count = 0;
    sw_tok_jws(&p);
    if (p.i >= p.n || s[p.i] != '{') goto bad;
    p.i++;
    sw_tok_jws(&p);
    if (p.i < p.n && s[p.i] == '}') goto done;
    for (;;) {
        sw_tok_jws(&p);
        why = "expected a string key";
        if (p.i >= p.n || s[p.i] != '"') goto bad;
        if (sw_tok_jstring(&p, &key, &why)) goto bad;
        sw_tok_jws(&p);
        why = "expected ':'";
        if (p.i >= p.n || s[p.i] != ':') goto bad;
        p.i++;
        sw_tok_jws(&p);
        /* a non-negative integer (serde reads ids as u32) */
        size_t d = p.i;
        long long id = 0;
        while (p.i < p.n && s[p.i] >= '0' && s[p.i] <= '9' && id <= INT32_MAX)
            id = id * 10 + (s[p.i++] - '0');
        why = "id must be an integer in [0, 2^26)";
        if (p.i == d || id >= (1 << 26) || (p.i < p.n && strchr(".eE-", s[p.i]))) goto bad;
        if (sw_strmap_put(m, key.p ? key.p : "", key.n, id)) {
            sw_tok_buf_release(&key);
            return SW_ENOMEM;
        }
        count++;
        sw_tok_jws(&p);
        why = "expected ',' or '}'";
        if (p.i >= p.n) goto bad;
        if (s[p.i] == ',') {
            p.i++;
            continue;
        }
        if (s[p.i] == '}') break;
        goto bad;
    }
done:
    sw_tok_buf_release(&key);
    return 0;
bad:
    sw_tok_buf_release(&key);
    return sw_err_set(SW_EFORMAT, "%s: model.vocab: entry %zu (byte %zu of the object): %s", file,
                      count, p.i, why);
}
