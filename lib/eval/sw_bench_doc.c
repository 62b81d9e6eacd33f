/* sw_bench_doc — a data row as flat text fields, the mini-Jinja that task prompts are written
 * in, and Python's random.sample (the harness's few-shot sampler).
 *
 * Documents: a CSV row maps header name → field; a JSON object is flattened (nested objects as
 * "a.b", lists as "a[0]", "a[1]", ... and "a.length") so that one template language covers
 * every reader. Templates substitute {{name}}, {{name.strip()}}, {{name[i]}},
 * {{name[i].strip()}} and leave other text as is: lm-eval's task YAMLs use no more than that for
 * the text of a prompt (their list/index expressions for choices and targets are handled by the
 * readers and the YAML spec's own keys).
 *
 * random.sample: CPython seeds MT19937 by init_by_array with the seed's 32-bit words, draws
 * _randbelow(n) as getrandbits(bit_length(n)) with rejection, and picks by a shrinking pool when
 * n is small (n <= setsize) or by rejection against a set of chosen indices otherwise. The same
 * steps here give the same indices, so "default" (random) few-shot sampling matches. */
#include "sw_bench.h"

#include "sw_err.h"
#include "sw_obuf.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *sw_doc_get(const struct sw_doc *d, const char *key) {
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->keys[i], key) == 0) return d->vals[i];
    return NULL;
}

int sw_doc_set(struct sw_doc *d, const char *key, const char *val) {
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->keys[i], key) == 0) {
            char *v = strdup(val);
            if (!v) return sw_err_set(SW_ENOMEM, "out of memory");
            free(d->vals[i]);
            d->vals[i] = v;
            return 0;
        }
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 16;
        char **k = realloc(d->keys, nc * sizeof(char *));
        if (!k) return sw_err_set(SW_ENOMEM, "out of memory");
        d->keys = k;
        char **v = realloc(d->vals, nc * sizeof(char *));
        if (!v) return sw_err_set(SW_ENOMEM, "out of memory");
        d->vals = v;
        d->cap = nc;
    }
    d->keys[d->n] = strdup(key);
    d->vals[d->n] = strdup(val);
    if (!d->keys[d->n] || !d->vals[d->n]) {
        free(d->keys[d->n]), free(d->vals[d->n]);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    d->n++;
    return 0;
}

void sw_doc_release(struct sw_doc *d) {
    for (size_t i = 0; i < d->n; i++)
        free(d->keys[i]), free(d->vals[i]);
    free(d->keys), free(d->vals);
    memset(d, 0, sizeof *d);
}

/* Python's str() of a JSON scalar, as Jinja prints it: numbers as Python would (1, 1.5, True). */
static int scalar_text(const json_t *v, char *buf, size_t cap, const char **out) {
    switch (json_typeof(v)) {
    case JSON_STRING: *out = json_string_value(v); return 0;
    case JSON_INTEGER: snprintf(buf, cap, "%lld", (long long)json_integer_value(v)); break;
    case JSON_REAL: {
        double x = json_real_value(v);
        snprintf(buf, cap, "%.17g", x);
        /* shortest round-trip like Python's repr */
        for (int p = 1; p <= 17; p++) {
            char t[64];
            snprintf(t, sizeof t, "%.*g", p, x);
            if (strtod(t, NULL) == x) {
                snprintf(buf, cap, "%s", t);
                break;
            }
        }
        if (!strchr(buf, '.') && !strchr(buf, 'e') && !strchr(buf, 'n') && !strchr(buf, 'i'))
            strncat(buf, ".0", cap - strlen(buf) - 1);
        break;
    }
    case JSON_TRUE: snprintf(buf, cap, "True"); break;
    case JSON_FALSE: snprintf(buf, cap, "False"); break;
    case JSON_NULL: snprintf(buf, cap, "None"); break;
    default: *out = NULL; return 0;
    }
    *out = buf;
    return 0;
}

static int flatten(struct sw_doc *d, const char *prefix, const json_t *v, int depth) {
    if (depth > 16) return sw_err_set(SW_EFORMAT, "JSON nested deeper than 16 levels");
    char key[512];
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            if (*prefix)
                snprintf(key, sizeof key, "%s.%s", prefix, k);
            else
                snprintf(key, sizeof key, "%s", k);
            SW_TRY(flatten(d, key, x, depth + 1));
        }
        return 0;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            snprintf(key, sizeof key, "%s[%zu]", prefix, i);
            SW_TRY(flatten(d, key, x, depth + 1));
        }
        char n[32];
        snprintf(key, sizeof key, "%s.length", prefix);
        snprintf(n, sizeof n, "%zu", json_array_size(v));
        return sw_doc_set(d, key, n);
    }
    char buf[64];
    const char *s = NULL;
    scalar_text(v, buf, sizeof buf, &s);
    return s ? sw_doc_set(d, prefix, s) : 0;
}

int sw_doc_from_json(struct sw_doc *d, const char *text, size_t len, const char *where) {
    json_error_t e;
    json_t *o = json_loadb(text, len, JSON_ALLOW_NUL, &e);
    if (!o)
        return sw_err_set(SW_EFORMAT, "%s: invalid JSON: %s (column %d)", where, e.text, e.column);
    int rc;
    if (!json_is_object(o))
        rc = sw_err_set(SW_EFORMAT, "%s: a row must be a JSON object", where);
    else
        rc = flatten(d, "", o, 0);
    json_decref(o);
    if (rc < 0 && rc != SW_ENOMEM) sw_err_wrap(rc, "%s", where);
    return rc;
}

/* Python's str.strip(): ASCII whitespace and the Unicode spaces str.isspace() knows that occur in
 * data (NBSP, ideographic space, ...). */
static size_t space_len(const unsigned char *s, size_t n) {
    if (n >= 1 && (s[0] == ' ' || (s[0] >= 9 && s[0] <= 13) || (s[0] >= 0x1c && s[0] <= 0x1f)))
        return 1;
    if (n >= 2 && s[0] == 0xC2 && (s[1] == 0x85 || s[1] == 0xA0)) return 2;
    if (n >= 3 && s[0] == 0xE3 && s[1] == 0x80 && s[2] == 0x80) return 3; /* U+3000 */
    if (n >= 3 && s[0] == 0xE2 && s[1] == 0x80 &&
        ((s[2] >= 0x80 && s[2] <= 0x8A) || s[2] == 0xA8 || s[2] == 0xA9 || s[2] == 0xAF))
        return 3;                                                         /* U+2000.. */
    if (n >= 3 && s[0] == 0xE2 && s[1] == 0x81 && s[2] == 0x9F) return 3; /* U+205F */
    if (n >= 3 && s[0] == 0xE1 && s[1] == 0x9A && s[2] == 0x80) return 3; /* U+1680 */
    return 0;
}

void sw_bench_strip(const char **s, size_t *n) {
    const unsigned char *p = (const unsigned char *)*s;
    size_t len = *n, k;
    while (len && (k = space_len(p, len)) > 0)
        p += k, len -= k;
    /* trailing: test every possible suffix start (1..3 bytes) */
    for (;;) {
        size_t cut = 0;
        for (size_t w = 1; w <= 3 && w <= len; w++)
            if (space_len(p + len - w, w) == w) {
                cut = w;
                break;
            }
        if (!cut) break;
        len -= cut;
    }
    *s = (const char *)p;
    *n = len;
}

int sw_doc_render(const struct sw_doc *d, const char *tpl, const char *where, char **out) {
    struct sw_obuf b = {0};
    *out = NULL;
    int rc = sw_obuf_add(&b, "", 0);
    const char *p = tpl;
    while (rc == 0 && *p) {
        const char *o = strstr(p, "{{");
        if (!o) {
            rc = sw_obuf_add(&b, p, strlen(p));
            break;
        }
        rc = sw_obuf_add(&b, p, (size_t)(o - p));
        if (rc < 0) break;
        const char *c = strstr(o + 2, "}}");
        if (!c) {
            rc = sw_err_set(SW_EFORMAT, "%s: template has '{{' without '}}'", where);
            break;
        }
        /* expression: trim spaces, optional .strip() suffix */
        const char *e = o + 2, *ee = c;
        while (e < ee && *e == ' ')
            e++;
        while (ee > e && ee[-1] == ' ')
            ee--;
        int strip = 0;
        if (ee - e > 8 && memcmp(ee - 8, ".strip()", 8) == 0) strip = 1, ee -= 8;
        char key[512];
        size_t kl = (size_t)(ee - e);
        if (kl == 0 || kl >= sizeof key) {
            rc = sw_err_set(SW_EFORMAT, "%s: bad template expression '%.*s'", where,
                            (int)(c - o + 2), o);
            break;
        }
        memcpy(key, e, kl);
        key[kl] = '\0';
        const char *v = sw_doc_get(d, key);
        if (!v) {
            rc = sw_err_set(SW_EFORMAT, "%s: the row has no field '%s' (template '{{%s}}')", where,
                            key, key);
            break;
        }
        size_t vn = strlen(v);
        if (strip) sw_bench_strip(&v, &vn);
        rc = sw_obuf_add(&b, v, vn);
        p = c + 2;
    }
    if (rc < 0) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    return 0;
}

/* ---- Python's random ----------------------------------------------------------------------- */

static void mt_init(struct sw_pyrandom *r, uint32_t s) {
    r->mt[0] = s;
    for (int i = 1; i < 624; i++)
        r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
    r->mti = 624;
}

void sw_pyrandom_seed(struct sw_pyrandom *r, uint32_t seed) {
    /* init_by_array(key = [seed]) — CPython's random_seed for a non-negative int < 2^32. */
    uint32_t key[1] = {seed};
    int klen = 1;
    mt_init(r, 19650218u);
    int i = 1, j = 0;
    for (int k = 624 > klen ? 624 : klen; k; k--) {
        r->mt[i] =
            (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1664525u)) + key[j] + (uint32_t)j;
        i++, j++;
        if (i >= 624) r->mt[0] = r->mt[623], i = 1;
        if (j >= klen) j = 0;
    }
    for (int k = 623; k; k--) {
        r->mt[i] = (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
        i++;
        if (i >= 624) r->mt[0] = r->mt[623], i = 1;
    }
    r->mt[0] = 0x80000000u;
    r->mti = 624;
}

uint32_t sw_pyrandom_u32(struct sw_pyrandom *r) {
    static const uint32_t mag01[2] = {0x0u, 0x9908b0dfu};
    uint32_t y;
    if (r->mti >= 624) {
        int kk;
        for (kk = 0; kk < 624 - 397; kk++) {
            y = (r->mt[kk] & 0x80000000u) | (r->mt[kk + 1] & 0x7fffffffu);
            r->mt[kk] = r->mt[kk + 397] ^ (y >> 1) ^ mag01[y & 1u];
        }
        for (; kk < 623; kk++) {
            y = (r->mt[kk] & 0x80000000u) | (r->mt[kk + 1] & 0x7fffffffu);
            r->mt[kk] = r->mt[kk + (397 - 624)] ^ (y >> 1) ^ mag01[y & 1u];
        }
        y = (r->mt[623] & 0x80000000u) | (r->mt[0] & 0x7fffffffu);
        r->mt[623] = r->mt[396] ^ (y >> 1) ^ mag01[y & 1u];
        r->mti = 0;
    }
    y = r->mt[r->mti++];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= (y >> 18);
    return y;
}

/* getrandbits(k) for 1 <= k <= 32, then _randbelow's rejection loop. */
static int64_t randbelow(struct sw_pyrandom *r, int64_t n) {
    if (n <= 0) return 0; /* never asked; n == 1 still draws (getrandbits(1) until 0), as CPython */
    int k = 0;
    while (k < 63 && ((int64_t)1 << k) <= n)
        k++; /* n.bit_length(), 1..63 */
    if (k <= 32) {
        unsigned shift = (unsigned)(32 - k);
        for (;;) {
            uint32_t v = sw_pyrandom_u32(r) >> shift;
            if ((int64_t)v < n) return v;
        }
    }
    /* getrandbits(k > 32): 32-bit words, least significant first, the last one shifted */
    for (;;) {
        uint64_t v = 0;
        int got = 0, left = k;
        while (left > 0) {
            uint32_t w = sw_pyrandom_u32(r);
            if (left < 32) w >>= (unsigned)(32 - left);
            v |= (uint64_t)w << got;
            got += 32, left -= 32;
        }
        if ((int64_t)v < n) return (int64_t)v;
    }
}

int sw_pyrandom_sample(struct sw_pyrandom *r, int64_t n, int64_t k, int64_t *idx) {
    if (k < 0 || k > n)
        return sw_err_set(SW_EINVAL, "sample larger than population (%lld of %lld)", (long long)k,
                          (long long)n);
    int64_t setsize = 21;
    if (k > 5) setsize += (int64_t)pow(4.0, ceil(log((double)k * 3) / log(4.0)));
    if (n <= setsize) {
        int64_t *pool = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
        if (!pool) return sw_err_set(SW_ENOMEM, "out of memory");
        for (int64_t i = 0; i < n; i++)
            pool[i] = i;
        for (int64_t i = 0; i < k; i++) {
            int64_t j = randbelow(r, n - i);
            idx[i] = pool[j];
            pool[j] = pool[n - i - 1];
        }
        free(pool);
        return 0;
    }
    for (int64_t i = 0; i < k; i++) {
        int64_t j;
        for (;;) {
            j = randbelow(r, n);
            int seen = 0;
            for (int64_t t = 0; t < i; t++)
                if (idx[t] == j) seen = 1;
            if (!seen) break;
        }
        idx[i] = j;
    }
    return 0;
}
