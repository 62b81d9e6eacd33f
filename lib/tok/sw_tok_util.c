/* sw_tok_util — small pieces every part of the tokenizer uses: growable buffers, UTF-8 decoding
 * and repair (with Rust's from_utf8_lossy rule, so sw and `tokenizers` agree on what invalid
 * input becomes), the Unicode predicates Rust's char methods define, the GPT-2 byte-level
 * alphabet, and JSON field readers whose errors name the file and the field path. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sw_err.h"
#include "sw_tok_internal.h"

/* ---- buffers ---- */

int sw_tok_buf_grow(struct sw_tok_buf *b, size_t need) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return sw_err_set(SW_ENOMEM, "tokenizer: out of memory (%zu bytes)", cap);
    b->p = p;
    b->cap = cap;
    return 0;
}

int sw_tok_buf_put(struct sw_tok_buf *b, const void *s, size_t n) {
    /* allocate even for n == 0: callers do pointer arithmetic on b->p */
    if (!b->p) SW_TRY(sw_tok_buf_grow(b, n + 1));
    SW_TRY(sw_tok_buf_reserve(b, n));
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    return 0;
}

void sw_tok_buf_release(struct sw_tok_buf *b) {
    free(b->p);
    memset(b, 0, sizeof(*b));
}

int sw_tok_spans_push(struct sw_tok_spans *s, size_t start, size_t end, int32_t flag) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct sw_tok_span *v = realloc(s->v, cap * sizeof(*v));
        if (!v) return sw_err_set(SW_ENOMEM, "tokenizer: out of memory (%zu spans)", cap);
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (struct sw_tok_span){start, end, flag};
    return 0;
}

void sw_tok_spans_release(struct sw_tok_spans *s) {
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static int sw_tok_ids_grow(struct sw_tok_ids *b, size_t need) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    int32_t *p = realloc(b->ids, cap * sizeof(*p));
    if (!p) return sw_err_set(SW_ENOMEM, "tokenizer: out of memory (%zu ids)", cap);
    b->ids = p;
    b->cap = cap;
    return 0;
}

int sw_tok_ids_push(struct sw_tok_ids *b, int32_t id) {
    if (b->n == b->cap) SW_TRY(sw_tok_ids_grow(b, b->n + 1));
    b->ids[b->n++] = id;
    return 0;
}

int sw_tok_ids_put(struct sw_tok_ids *b, const int32_t *ids, size_t n) {
    if (b->n + n > b->cap) SW_TRY(sw_tok_ids_grow(b, b->n + n));
    if (n) memcpy(b->ids + b->n, ids, n * sizeof(*ids));
    b->n += n;
    return 0;
}

void sw_tok_ids_release(struct sw_tok_ids *b) {
    if (!b) return;
    free(b->ids);
    memset(b, 0, sizeof(*b));
}

int sw_tok_strs_end(struct sw_tok_strs *s, size_t start) {
    if (!s->pool.p) SW_TRY(sw_tok_buf_grow(&s->pool, 64)); /* strings point into a real buffer */
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        size_t *off = realloc(s->off, cap * sizeof(*off));
        if (!off) return sw_err_set(SW_ENOMEM, "tokenizer: out of memory (%zu strings)", cap);
        s->off = off;
        size_t *len = realloc(s->len, cap * sizeof(*len));
        if (!len) return sw_err_set(SW_ENOMEM, "tokenizer: out of memory (%zu strings)", cap);
        s->len = len;
        s->cap = cap;
    }
    s->off[s->n] = start;
    s->len[s->n] = s->pool.n - start;
    s->n++;
    return 0;
}

int sw_tok_strs_push(struct sw_tok_strs *s, const char *p, size_t n) {
    size_t start = s->pool.n;
    SW_TRY(sw_tok_buf_put(&s->pool, p, n));
    return sw_tok_strs_end(s, start);
}

void sw_tok_strs_clear(struct sw_tok_strs *s) {
    s->pool.n = 0;
    s->n = 0;
}

void sw_tok_strs_release(struct sw_tok_strs *s) {
    sw_tok_buf_release(&s->pool);
    free(s->off);
    free(s->len);
    memset(s, 0, sizeof(*s));
}

char *sw_tok_strndup(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) {
        sw_err_set(SW_ENOMEM, "tokenizer: out of memory (%zu bytes)", n + 1);
        return NULL;
    }
    if (n) memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* ---- UTF-8 ---- */

int sw_tok_utf8_put(struct sw_tok_buf *b, int32_t cp) {
    SW_TRY(sw_tok_buf_reserve(b, 4));
    unsigned char *o = (unsigned char *)b->p + b->n;
    uint32_t c = (uint32_t)cp;
    if (c < 0x80) {
        o[0] = (unsigned char)c;
        b->n += 1;
    } else if (c < 0x800) {
        o[0] = (unsigned char)(0xC0 | (c >> 6));
        o[1] = (unsigned char)(0x80 | (c & 0x3F));
        b->n += 2;
    } else if (c < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (c >> 12));
        o[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (c & 0x3F));
        b->n += 3;
    } else {
        o[0] = (unsigned char)(0xF0 | (c >> 18));
        o[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
        o[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        o[3] = (unsigned char)(0x80 | (c & 0x3F));
        b->n += 4;
    }
    return 0;
}

/* Length of the valid sequence at s, or -(bytes of the maximal invalid prefix) (Rust's
 * Utf8Chunks rule: the first byte plus every continuation byte that could still belong to a
 * valid sequence). */
static long sw_tok_utf8_step(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        if (n >= 2 && (s[1] & 0xC0) == 0x80) return 2;
        return -1;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 2) return -1;
        unsigned d = s[1];
        int ok = (c == 0xE0)   ? (d >= 0xA0 && d <= 0xBF)
                 : (c == 0xED) ? (d >= 0x80 && d <= 0x9F)
                               : (d >= 0x80 && d <= 0xBF);
        if (!ok) return -1;
        if (n < 3 || (s[2] & 0xC0) != 0x80) return -2;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 2) return -1;
        unsigned d = s[1];
        int ok = (c == 0xF0)   ? (d >= 0x90 && d <= 0xBF)
                 : (c == 0xF4) ? (d >= 0x80 && d <= 0x8F)
                               : (d >= 0x80 && d <= 0xBF);
        if (!ok) return -1;
        if (n < 3 || (s[2] & 0xC0) != 0x80) return -2;
        if (n < 4 || (s[3] & 0xC0) != 0x80) return -3;
        return 4;
    }
    return -1;
}

size_t sw_tok_utf8_valid(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        /* ASCII fast path, 8 bytes at a time */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, u + i, 8);
            if (w & 0x8080808080808080ULL) break;
            i += 8;
        }
        if (i >= n) break;
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        long k = sw_tok_utf8_step(u + i, n - i);
        if (k < 0) return i;
        i += (size_t)k;
    }
    return n;
}

int sw_tok_utf8_lossy(const char *s, size_t n, struct sw_tok_buf *out) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t ok = sw_tok_utf8_valid(s + i, n - i);
        SW_TRY(sw_tok_buf_put(out, s + i, ok));
        i += ok;
        if (i >= n) break;
        long k = sw_tok_utf8_step(u + i, n - i);
        i += (size_t)(-k);
        SW_TRY(sw_tok_buf_put(out, "\xEF\xBF\xBD", 3));
    }
    return 0;
}

int sw_tok_utf8_repair_text(const char *s, size_t n, struct sw_tok_buf *out) {
    size_t i = 0;
    while (i < n) {
        size_t end = i;
        while (end + 1 < n && !((unsigned char)s[end] == 0xC0 && (unsigned char)s[end + 1] == 0x80))
            end++;
        if (end + 1 >= n) end = n;
        SW_TRY(sw_tok_utf8_lossy(s + i, end - i, out));
        if (end == n) break;
        SW_TRY(sw_tok_buf_put(out, "", 1));
        i = end + 2;
    }
    return 0;
}

/* ---- Unicode predicates ---- */

int sw_tok_is_whitespace(int32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

int sw_tok_uni_in(const uint32_t (*r)[2], size_t n, int32_t cp) {
    uint32_t c = (uint32_t)cp;
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < r[mid][0])
            hi = mid;
        else if (c > r[mid][1])
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

int sw_tok_is_numeric(int32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    return SW_TOK_UNI_IN(sw_tok_uni_numeric, c);
}

int sw_tok_is_punct(int32_t c) {
    if (c < 0x80)
        return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
               (c >= 0x7B && c <= 0x7E);
    return SW_TOK_UNI_IN(sw_tok_uni_punct, c);
}

int sw_tok_is_word(int32_t c) {
    if (c < 0x80)
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               c == '_';
    return SW_TOK_UNI_IN(sw_tok_uni_word, c);
}

/* ---- byte-level alphabet ---- */

int32_t sw_tok_byte_char[256];
static int16_t sw_tok_char_byte_tab[324];
static pthread_once_t sw_tok_bl_once = PTHREAD_ONCE_INIT;

static void sw_tok_bytelevel_build(void) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        sw_tok_byte_char[b] = printable ? b : 256 + n++;
    }
    for (int i = 0; i < 324; i++)
        sw_tok_char_byte_tab[i] = -1;
    for (int b = 0; b < 256; b++)
        sw_tok_char_byte_tab[sw_tok_byte_char[b]] = (int16_t)b;
}

void sw_tok_bytelevel_init(void) {
    pthread_once(&sw_tok_bl_once, sw_tok_bytelevel_build);
}

int sw_tok_char_byte(int32_t cp) {
    if (cp < 0 || cp >= 324) return -1;
    return sw_tok_char_byte_tab[cp];
}

/* ---- JSON helpers ---- */

int sw_tok_jerr(const struct sw_tok_jctx *c, const char *path, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return sw_err_set(SW_EFORMAT, "%s: %s: %s", c->file, path, msg);
}

json_t *sw_tok_jget(const json_t *obj, const char *key) {
    if (!json_is_object(obj)) return NULL;
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

int sw_tok_jbool(const struct sw_tok_jctx *c, const json_t *obj, const char *path, const char *key,
                 int dflt, int *out) {
    json_t *v = sw_tok_jget(obj, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_boolean(v)) return sw_tok_jerr(c, path, "field \"%s\" must be a boolean", key);
    *out = json_is_true(v);
    return 0;
}

int sw_tok_jint(const struct sw_tok_jctx *c, const json_t *obj, const char *path, const char *key,
                long long dflt, long long *out) {
    json_t *v = sw_tok_jget(obj, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v)) return sw_tok_jerr(c, path, "field \"%s\" must be an integer", key);
    *out = json_integer_value(v);
    return 0;
}

int sw_tok_jstr(const struct sw_tok_jctx *c, const json_t *obj, const char *path, const char *key,
                int required, char **out, size_t *len) {
    json_t *v = sw_tok_jget(obj, key);
    *out = NULL;
    if (len) *len = 0;
    if (!v) {
        if (required) return sw_tok_jerr(c, path, "missing string field \"%s\"", key);
        return 0;
    }
    if (!json_is_string(v)) return sw_tok_jerr(c, path, "field \"%s\" must be a string", key);
    size_t n = json_string_length(v);
    *out = sw_tok_strndup(json_string_value(v), n);
    if (!*out) return SW_ENOMEM;
    if (len) *len = n;
    return 0;
}

int sw_tok_jtype(const struct sw_tok_jctx *c, const json_t *obj, const char *path,
                 const char **type) {
    if (!json_is_object(obj)) return sw_tok_jerr(c, path, "expected an object");
    json_t *t = json_object_get(obj, "type");
    if (!json_is_string(t)) return sw_tok_jerr(c, path, "missing string field \"type\"");
    *type = json_string_value(t);
    return 0;
}
