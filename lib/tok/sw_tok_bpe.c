/* sw_tok_bpe — the BPE model of tokenizer.json, ported from `tokenizers`' models/bpe.
 *
 * A word becomes symbols (one per character, with continuing_subword_prefix/end_of_word_suffix,
 * unk fusing and <0xXX> byte fallback exactly as BPE::merge_word does), then merges run in
 * Word::merge_all's order: a min-heap of (rank, position) whose entries are checked against the
 * current pair when popped. That check compares the merge's *result* id, which lets a stale
 * entry fire when another pair yields the same token (common in tiktoken-derived merge lists
 * such as Llama 3's); following the same heap discipline keeps sw's ids identical in those
 * cases too. Merges are a hash table keyed by the pair of ids.
 *
 * Raw-byte mode: when the byte-level pre-tokenizer is the last stage, its byte -> character
 * mapping is folded into a second vocabulary keyed by raw bytes, so words are merged on their
 * bytes without being rewritten (tokens with characters outside the byte alphabet can never
 * match a byte-level word, so leaving them out changes nothing).
 *
 * Each thread has a set-associative cache from short words to their ids: natural text repeats
 * words, and a cache hit costs one hash and one compare instead of the merge loop.
 *
 * SentencePiece-style tokenizers (Llama 2) have no pre-tokenizer, so a whole document is one
 * word. When no vocabulary token holds U+2581 right after another character, no merge can ever
 * join the two sides of such a boundary, so BPE of the word equals BPE of its pieces cut before
 * each "▁" that follows a non-"▁": those pieces are merged separately and go through the cache
 * ("meta chunks", checked at load). */
#include <stdlib.h>
#include <string.h>

#include "sw_err.h"
#include "sw_log.h"
#include "sw_tok_internal.h"

#define SW_TOK_MERGE_EMPTY UINT64_MAX
#define SW_TOK_MAX_ID (1 << 26) /* ids beyond this are a malformed file, not a vocabulary */

static inline uint64_t sw_tok_pair_key(int32_t a, int32_t b) {
    return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
}

static inline size_t sw_tok_pair_hash(uint64_t key) {
    key ^= key >> 29;
    key *= 0xbf58476d1ce4e5b9ULL;
    key ^= key >> 32;
    return (size_t)key;
}

static inline const struct sw_tok_merge *sw_tok_merge_get(const struct sw_tok_bpe *m, int32_t a,
                                                          int32_t b) {
    uint64_t key = sw_tok_pair_key(a, b);
    size_t i = sw_tok_pair_hash(key) & m->merge_mask;
    for (;;) {
        const struct sw_tok_merge *e = &m->merges[i];
        if (e->key == key) return e;
        if (e->key == SW_TOK_MERGE_EMPTY) return NULL;
        i = (i + 1) & m->merge_mask;
    }
}

static void sw_tok_merge_put(struct sw_tok_bpe *m, int32_t a, int32_t b, uint32_t rank,
                             int32_t new_id) {
    uint64_t key = sw_tok_pair_key(a, b);
    size_t i = sw_tok_pair_hash(key) & m->merge_mask;
    while (m->merges[i].key != SW_TOK_MERGE_EMPTY && m->merges[i].key != key)
        i = (i + 1) & m->merge_mask;
    if (m->merges[i].key == SW_TOK_MERGE_EMPTY) m->n_merges++;
    /* a repeated pair keeps the later rank, as collecting into a HashMap does */
    m->merges[i] = (struct sw_tok_merge){key, rank, new_id};
}

int32_t sw_tok_bpe_lookup(const struct sw_tok_bpe *m, const char *s, size_t n) {
    int64_t v;
    return sw_strmap_get(m->vocab, s, n, &v) ? (int32_t)v : -1;
}

void sw_tok_bpe_release(struct sw_tok_bpe *m) {
    sw_strmap_free(m->vocab);
    sw_strmap_free(m->raw);
    free(m->merges);
    free(m->unk_token);
    free(m->prefix);
    free(m->suffix);
    free(m->bmp_id);
    free(m->byte_pair);
    memset(m, 0, sizeof(*m));
}

static int sw_tok_bpe_vocab(const struct sw_tok_jctx *c, const json_t *vocab, struct sw_strmap *pre,
                            struct sw_tok_bpe *m) {
    if (pre) {
        m->vocab = pre;
        m->max_id = -1;
        size_t it = 0;
        int64_t v;
        while (sw_strmap_next(pre, &it, NULL, NULL, &v))
            if (v > m->max_id) m->max_id = (int32_t)v;
        m->vocab_n = sw_strmap_size(pre);
        return 0;
    }
    if (!json_is_object(vocab)) return sw_tok_jerr(c, "model.vocab", "must be an object");
    m->vocab = sw_strmap_new(json_object_size(vocab));
    if (!m->vocab) return SW_ENOMEM;
    m->max_id = -1;
    const char *key;
    json_t *val;
    void *it = json_object_iter((json_t *)vocab);
    while (it) {
        key = json_object_iter_key(it);
        size_t klen = json_object_iter_key_len(it);
        val = json_object_iter_value(it);
        if (!json_is_integer(val) || json_integer_value(val) < 0 ||
            json_integer_value(val) >= SW_TOK_MAX_ID)
            return sw_tok_jerr(c, "model.vocab", "token \"%.*s\": id must be an integer in [0, %d)",
                               (int)(klen > 64 ? 64 : klen), key, SW_TOK_MAX_ID);
        int32_t id = (int32_t)json_integer_value(val);
        SW_TRY(sw_strmap_put(m->vocab, key, klen, id));
        if (id > m->max_id) m->max_id = id;
        it = json_object_iter_next((json_t *)vocab, it);
    }
    m->vocab_n = sw_strmap_size(m->vocab);
    return 0;
}

/* One merge entry: "a b" or ["a", "b"]. */
static int sw_tok_bpe_merge_one(const struct sw_tok_jctx *c, struct sw_tok_bpe *m, const json_t *e,
                                size_t rank, struct sw_tok_buf *tmp) {
    const char *a, *b;
    size_t alen, blen;
    char path[64];
    snprintf(path, sizeof(path), "model.merges[%zu]", rank);
    if (json_is_string(e)) {
        const char *s = json_string_value(e);
        size_t n = json_string_length(e);
        const char *sp = memchr(s, ' ', n);
        if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - s)))
            return sw_tok_jerr(c, path, "merge \"%.*s\" is not two tokens separated by one space",
                               (int)(n > 64 ? 64 : n), s);
        a = s;
        alen = (size_t)(sp - s);
        b = sp + 1;
        blen = n - alen - 1;
    } else if (json_is_array(e) && json_array_size(e) == 2 &&
               json_is_string(json_array_get(e, 0)) && json_is_string(json_array_get(e, 1))) {
        a = json_string_value(json_array_get(e, 0));
        alen = json_string_length(json_array_get(e, 0));
        b = json_string_value(json_array_get(e, 1));
        blen = json_string_length(json_array_get(e, 1));
    } else {
        return sw_tok_jerr(c, path, "merge must be a \"a b\" string or a pair of strings");
    }
    int64_t ia, ib, in;
    if (!sw_strmap_get(m->vocab, a, alen, &ia))
        return sw_tok_jerr(c, path, "token \"%.*s\" is not in the vocabulary", (int)alen, a);
    if (!sw_strmap_get(m->vocab, b, blen, &ib))
        return sw_tok_jerr(c, path, "token \"%.*s\" is not in the vocabulary", (int)blen, b);
    if (blen < m->prefix_len)
        return sw_tok_jerr(c, path, "token \"%.*s\" is shorter than continuing_subword_prefix",
                           (int)blen, b);
    tmp->n = 0;
    SW_TRY(sw_tok_buf_put(tmp, a, alen));
    SW_TRY(sw_tok_buf_put(tmp, b + m->prefix_len, blen - m->prefix_len));
    if (!sw_strmap_get(m->vocab, tmp->p, tmp->n, &in))
        return sw_tok_jerr(c, path, "merged token \"%.*s\" is not in the vocabulary", (int)tmp->n,
                           tmp->p);
    sw_tok_merge_put(m, (int32_t)ia, (int32_t)ib, (uint32_t)rank, (int32_t)in);
    return 0;
}

static int sw_tok_bpe_merges(const struct sw_tok_jctx *c, const json_t *merges,
                             struct sw_tok_bpe *m) {
    size_t n = 0;
    if (merges && !json_is_array(merges)) return sw_tok_jerr(c, "model.merges", "must be an array");
    if (merges) n = json_array_size(merges);
    size_t slots = 16;
    while (slots < n + n / 4 + 2)
        slots <<= 1; /* load at most 0.8: a smaller table misses less */
    m->merges = malloc(slots * sizeof(*m->merges));
    if (!m->merges) return sw_err_set(SW_ENOMEM, "tokenizer: out of memory (%zu merges)", n);
    for (size_t i = 0; i < slots; i++)
        m->merges[i].key = SW_TOK_MERGE_EMPTY;
    m->merge_mask = slots - 1;
    struct sw_tok_buf tmp = {0};
    int rc = 0;
    size_t rank = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(merges, i);
        /* merges.txt-style "#version" lines are skipped without using up a rank */
        if (json_is_string(e) && !strncmp(json_string_value(e), "#version", 8)) continue;
        rc = sw_tok_bpe_merge_one(c, m, e, rank++, &tmp);
        if (rc) break;
    }
    sw_tok_buf_release(&tmp);
    return rc;
}

static int sw_tok_jopt_str(const struct sw_tok_jctx *c, const json_t *j, const char *key,
                           char **out, size_t *len) {
    return sw_tok_jstr(c, j, "model", key, 0, out, len);
}

int sw_tok_bpe_parse(struct sw_tokenizer *tok, const struct sw_tok_jctx *c, const json_t *j,
                     struct sw_strmap *vocab, struct sw_tok_bpe *m) {
    (void)tok;
    memset(m, 0, sizeof(*m));
    m->unk_id = -1;
    m->vocab = vocab; /* owned from here on, freed with m even on error */
    if (!json_is_object(j)) return sw_tok_jerr(c, "model", "must be an object");
    json_t *type = json_object_get(j, "type");
    if (type && (!json_is_string(type) || strcmp(json_string_value(type), "BPE") != 0))
        return sw_err_set(SW_EUNSUPPORTED, "%s: model: type \"%s\" is not supported (BPE only)",
                          c->file, json_is_string(type) ? json_string_value(type) : "?");
    json_t *dropout = sw_tok_jget(j, "dropout");
    if (dropout && json_number_value(dropout) > 0)
        sw_warn("%s: model.dropout %g ignored: sw encodes deterministically", c->file,
                json_number_value(dropout));
    SW_TRY(sw_tok_jopt_str(c, j, "unk_token", &m->unk_token, NULL));
    SW_TRY(sw_tok_jopt_str(c, j, "continuing_subword_prefix", &m->prefix, &m->prefix_len));
    SW_TRY(sw_tok_jopt_str(c, j, "end_of_word_suffix", &m->suffix, &m->suffix_len));
    SW_TRY(sw_tok_jbool(c, j, "model", "fuse_unk", 0, &m->fuse_unk));
    SW_TRY(sw_tok_jbool(c, j, "model", "byte_fallback", 0, &m->byte_fallback));
    SW_TRY(sw_tok_jbool(c, j, "model", "ignore_merges", 0, &m->ignore_merges));
    SW_TRY(sw_tok_bpe_vocab(c, json_object_get(j, "vocab"), vocab, m));
    SW_TRY(sw_tok_bpe_merges(c, sw_tok_jget(j, "merges"), m));
    if (m->unk_token) m->unk_id = sw_tok_bpe_lookup(m, m->unk_token, strlen(m->unk_token));
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof(name), "<0x%02X>", b);
        m->fb_id[b] = sw_tok_bpe_lookup(m, name, 6);
    }
    /* meta chunks: "▁" is a token, no token has "▁" after another character, and words are
     * plain characters (no prefix/suffix) */
    m->meta_chunks =
        !m->prefix_len && !m->suffix_len && sw_tok_bpe_lookup(m, "\xE2\x96\x81", 3) >= 0;
    for (size_t it2 = 0; m->meta_chunks;) {
        const char *k;
        size_t kl;
        if (!sw_strmap_next(m->vocab, &it2, &k, &kl, NULL)) break;
        for (size_t i = 0; i + 3 <= kl; i++)
            if (!memcmp(k + i, "\xE2\x96\x81", 3) && i > 0 &&
                !(i >= 3 && !memcmp(k + i - 3, "\xE2\x96\x81", 3))) {
                m->meta_chunks = 0;
                break;
            }
    }
    /* single-character tokens of the BMP, for the per-character lookup of generic words */
    m->bmp_id = malloc(0x10000 * sizeof(*m->bmp_id));
    if (!m->bmp_id) return sw_err_set(SW_ENOMEM, "tokenizer: out of memory");
    for (size_t i = 0; i < 0x10000; i++)
        m->bmp_id[i] = -1;
    size_t it = 0;
    const char *key;
    size_t klen;
    int64_t val;
    while (sw_strmap_next(m->vocab, &it, &key, &klen, &val)) {
        if (klen == 0 || klen > 3 || sw_tok_utf8_len((unsigned char)key[0]) != klen) continue;
        int32_t cp;
        sw_tok_utf8_next((const unsigned char *)key, klen, &cp);
        if (cp < 0x10000) m->bmp_id[cp] = (int32_t)val;
    }
    return 0;
}

int sw_tok_bpe_enable_raw(struct sw_tok_bpe *m) {
    if (m->prefix_len || m->suffix_len) return 0;
    sw_tok_bytelevel_init();
    for (int b = 0; b < 256; b++) {
        int32_t cp = sw_tok_byte_char[b];
        m->byte_id[b] = cp < 0x10000 ? m->bmp_id[cp] : -1;
        if (m->byte_id[b] < 0) return 0;
    }
    m->raw = sw_strmap_new(m->vocab_n);
    if (!m->raw) return SW_ENOMEM;
    struct sw_tok_buf tmp = {0};
    size_t it = 0;
    const char *key;
    size_t klen;
    int64_t val;
    while (sw_strmap_next(m->vocab, &it, &key, &klen, &val)) {
        tmp.n = 0;
        int ok = 1;
        for (size_t i = 0; i < klen && ok;) {
            int32_t cp;
            i += sw_tok_utf8_next((const unsigned char *)key + i, klen - i, &cp);
            int byte = sw_tok_char_byte(cp);
            if (byte < 0)
                ok = 0;
            else {
                unsigned char ch = (unsigned char)byte;
                if (sw_tok_buf_put(&tmp, &ch, 1)) {
                    sw_tok_buf_release(&tmp);
                    return SW_ENOMEM;
                }
            }
        }
        if (ok && sw_strmap_put(m->raw, tmp.p ? tmp.p : "", tmp.n, val)) {
            sw_tok_buf_release(&tmp);
            return SW_ENOMEM;
        }
    }
    sw_tok_buf_release(&tmp);
    /* The first merges of every word are between single bytes: a direct table keeps them out
     * of the large hash table. */
    m->byte_pair = malloc(65536 * sizeof(*m->byte_pair));
    if (!m->byte_pair) return sw_err_set(SW_ENOMEM, "tokenizer: out of memory");
    for (int x = 0; x < 256; x++)
        for (int y = 0; y < 256; y++) {
            const struct sw_tok_merge *e = sw_tok_merge_get(m, m->byte_id[x], m->byte_id[y]);
            m->byte_pair[x << 8 | y] =
                e ? *e : (struct sw_tok_merge){SW_TOK_MERGE_EMPTY, UINT32_MAX, -1};
        }
    m->raw_mode = 1;
    return 1;
}

/* ---- encoding ---- */

static int sw_tok_sym_reserve(struct sw_tok_scratch *sc, size_t n) {
    if (n <= sc->sym_cap) return 0;
    size_t cap = sc->sym_cap ? sc->sym_cap : 64;
    while (cap < n)
        cap *= 2;
    struct sw_tok_sym *s = realloc(sc->sym, cap * sizeof(*s));
    if (!s) return sw_err_set(SW_ENOMEM, "tokenizer: out of memory (%zu symbols)", cap);
    sc->sym = s;
    /* the heap holds at most n - 1 + (merges done) <= 2n entries: each merge pops one entry and
     * pushes at most two */
    struct sw_tok_heap_ent *h = realloc(sc->heap, 2 * cap * sizeof(*h));
    if (!h) return sw_err_set(SW_ENOMEM, "tokenizer: out of memory (%zu symbols)", cap);
    sc->heap = h;
    sc->sym_cap = cap;
    sc->heap_cap = 2 * cap;
    return 0;
}

static inline int sw_tok_heap_less(const struct sw_tok_heap_ent *a,
                                   const struct sw_tok_heap_ent *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static inline void sw_tok_heap_push(struct sw_tok_heap_ent *h, size_t *n,
                                    struct sw_tok_heap_ent e) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!sw_tok_heap_less(&e, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static inline struct sw_tok_heap_ent sw_tok_heap_pop(struct sw_tok_heap_ent *h, size_t *n) {
    struct sw_tok_heap_ent top = h[0];
    struct sw_tok_heap_ent last = h[--(*n)];
    size_t i = 0, cnt = *n;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= cnt) break;
        size_t r = l + 1;
        size_t m = (r < cnt && sw_tok_heap_less(&h[r], &h[l])) ? r : l;
        if (!sw_tok_heap_less(&h[m], &last)) break;
        h[i] = h[m];
        i = m;
    }
    if (cnt) h[i] = last;
    return top;
}

/* Word::add */
static inline void sw_tok_sym_add(struct sw_tok_sym *s, size_t *n, int32_t c, uint32_t len) {
    size_t k = *n;
    if (k) s[k - 1].next = (int32_t)k;
    s[k] = (struct sw_tok_sym){c, (int32_t)k - 1, -1, len};
    *n = k + 1;
}

/* Word::merge_all without dropout. raw: the initial symbols are single bytes (w). */
static void sw_tok_merge_all(const struct sw_tok_bpe *m, struct sw_tok_scratch *sc, size_t n,
                             const unsigned char *w) {
    struct sw_tok_sym *s = sc->sym;
    struct sw_tok_heap_ent *h = sc->heap;
    size_t hn = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        const struct sw_tok_merge *e =
            w ? &m->byte_pair[w[i] << 8 | w[i + 1]] : sw_tok_merge_get(m, s[i].c, s[i + 1].c);
        if (e && e->new_id >= 0)
            sw_tok_heap_push(
                h, &hn,
                (struct sw_tok_heap_ent){e->rank, (uint32_t)i, e->new_id, s[i].c, s[i + 1].c});
    }
    while (hn) {
        struct sw_tok_heap_ent top = sw_tok_heap_pop(h, &hn);
        struct sw_tok_sym *cur = &s[top.pos];
        if (cur->len == 0 || cur->next == -1) continue;
        int32_t next_pos = cur->next;
        struct sw_tok_sym right = s[next_pos];
        /* HF re-reads the merge of the current pair and fires if it yields the same token; an
         * unchanged pair trivially does. */
        if (cur->c != top.left || right.c != top.right) {
            const struct sw_tok_merge *e = sw_tok_merge_get(m, cur->c, right.c);
            if (!e || e->new_id != top.new_id) continue;
        }
        cur->c = top.new_id;
        cur->len += right.len;
        cur->next = right.next;
        s[next_pos].len = 0;
        if (right.next > -1 && (size_t)right.next < n) s[right.next].prev = (int32_t)top.pos;
        if (cur->prev >= 0) {
            const struct sw_tok_merge *e = sw_tok_merge_get(m, s[cur->prev].c, cur->c);
            if (e)
                sw_tok_heap_push(h, &hn,
                                 (struct sw_tok_heap_ent){e->rank, (uint32_t)cur->prev, e->new_id,
                                                          s[cur->prev].c, cur->c});
        }
        if (cur->next > -1 && (size_t)cur->next < n) {
            const struct sw_tok_merge *e = sw_tok_merge_get(m, cur->c, s[cur->next].c);
            if (e)
                sw_tok_heap_push(
                    h, &hn,
                    (struct sw_tok_heap_ent){e->rank, top.pos, e->new_id, cur->c, s[cur->next].c});
        }
    }
}

static inline int32_t sw_tok_char_id(const struct sw_tok_bpe *m, const char *s, size_t n) {
    if (n <= 3 && sw_tok_utf8_len((unsigned char)s[0]) == n) {
        int32_t cp;
        sw_tok_utf8_next((const unsigned char *)s, n, &cp);
        return m->bmp_id[cp];
    }
    return sw_tok_bpe_lookup(m, s, n);
}

/* BPE::merge_word's symbol construction for a word of UTF-8 characters. */
static int sw_tok_bpe_symbols(const struct sw_tok_bpe *m, struct sw_tok_scratch *sc, const char *w,
                              size_t n, size_t *nsym) {
    struct sw_tok_sym *s = sc->sym;
    size_t k = 0;
    int32_t unk = -1; /* pending unk id */
    uint32_t unk_len = 0;
    struct sw_tok_buf *tmp = &sc->spare;
    for (size_t i = 0; i < n;) {
        size_t cl = sw_tok_utf8_len((unsigned char)w[i]);
        if (cl > n - i) cl = n - i;
        int first = i == 0, last = i + cl == n;
        const char *cs = w + i;
        size_t csn = cl;
        int32_t id;
        if ((!first && m->prefix_len) || (last && m->suffix_len)) {
            tmp->n = 0;
            if (!first) SW_TRY(sw_tok_buf_put(tmp, m->prefix, m->prefix_len));
            SW_TRY(sw_tok_buf_put(tmp, w + i, cl));
            if (last) SW_TRY(sw_tok_buf_put(tmp, m->suffix, m->suffix_len));
            cs = tmp->p;
            csn = tmp->n;
            id = sw_tok_bpe_lookup(m, cs, csn);
        } else {
            id = sw_tok_char_id(m, cs, csn);
        }
        i += cl;
        if (id >= 0) {
            if (unk >= 0) {
                sw_tok_sym_add(s, &k, unk, unk_len);
                unk = -1;
            }
            sw_tok_sym_add(s, &k, id, (uint32_t)cl);
            continue;
        }
        if (m->byte_fallback) {
            int all = 1;
            for (size_t b = 0; b < csn; b++)
                if (m->fb_id[(unsigned char)cs[b]] < 0) all = 0;
            if (all) {
                /* may need more room than one symbol per byte of w when a prefix/suffix is added */
                if (k + csn > sc->sym_cap) {
                    SW_TRY(sw_tok_sym_reserve(sc, k + csn + (n - i)));
                    s = sc->sym;
                }
                for (size_t b = 0; b < csn; b++)
                    sw_tok_sym_add(s, &k, m->fb_id[(unsigned char)cs[b]], 1);
                continue;
            }
        }
        if (m->unk_token) {
            if (m->unk_id < 0)
                return sw_err_set(SW_EFORMAT,
                                  "tokenizer: unk_token \"%s\" is not in the vocabulary",
                                  m->unk_token);
            if (unk >= 0 && m->fuse_unk) {
                unk_len += (uint32_t)cl;
            } else {
                if (unk >= 0) sw_tok_sym_add(s, &k, unk, unk_len);
                unk = m->unk_id;
                unk_len = (uint32_t)cl;
            }
        }
    }
    if (unk >= 0) sw_tok_sym_add(s, &k, unk, unk_len);
    *nsym = k;
    return 0;
}

static int sw_tok_bpe_word(const struct sw_tok_bpe *m, struct sw_tok_scratch *sc, const char *w,
                           size_t n, struct sw_tok_ids *out);

int sw_tok_bpe_encode(const struct sw_tok_bpe *m, struct sw_tok_scratch *sc, const char *w,
                      size_t n, struct sw_tok_ids *out) {
    if (n == 0) return 0;
    if (m->raw_mode) {
        if (n == 1) return sw_tok_ids_push(out, m->byte_id[(unsigned char)w[0]]);
        if (m->ignore_merges) {
            int64_t v;
            if (sw_strmap_get(m->raw, w, n, &v)) return sw_tok_ids_push(out, (int32_t)v);
        }
    } else if (m->ignore_merges) {
        int32_t id = sw_tok_bpe_lookup(m, w, n);
        if (id >= 0) return sw_tok_ids_push(out, id);
    }
    if (!m->meta_chunks) return sw_tok_bpe_word(m, sc, w, n, out);
    size_t start = 0;
    for (size_t k = 1; k + 3 <= n; k++) {
        if ((unsigned char)w[k] != 0xE2 || memcmp(w + k, "\xE2\x96\x81", 3) != 0) continue;
        if (k >= 3 && !memcmp(w + k - 3, "\xE2\x96\x81", 3)) continue;
        SW_TRY(sw_tok_bpe_word(m, sc, w + start, k - start, out));
        start = k;
    }
    return sw_tok_bpe_word(m, sc, w + start, n - start, out);
}

static inline size_t sw_tok_cache_set_of(uint64_t h) {
    return (size_t)(h >> 17) & (SW_TOK_CACHE_SETS - 1);
}

void sw_tok_bpe_prefetch(const struct sw_tok_bpe *m, const struct sw_tok_scratch *sc, const char *w,
                         size_t n) {
    (void)m;
    if (!sc->cache || n > SW_TOK_CACHE_KEY || n < 2) return;
    const struct sw_tok_cache_set *set =
        &sc->cache[sw_tok_cache_set_of(sw_hash_bytes(w, n, 0x5157))];
    __builtin_prefetch(&set->way[0]);
    __builtin_prefetch(&set->way[1]);
}

/* One word (or meta chunk): cache, else symbols and merges. */
static int sw_tok_bpe_word(const struct sw_tok_bpe *m, struct sw_tok_scratch *sc, const char *w,
                           size_t n, struct sw_tok_ids *out) {
    struct sw_tok_cache_set *set = NULL;
    uint64_t h = 0;
    if (n <= SW_TOK_CACHE_KEY) {
        if (!sc->cache) {
            sc->cache = calloc(SW_TOK_CACHE_SETS, sizeof(*sc->cache));
            sc->cache_lru = calloc(SW_TOK_CACHE_SETS, 1);
            if (!sc->cache || !sc->cache_lru)
                return sw_err_set(SW_ENOMEM, "tokenizer: out of memory (word cache)");
        }
        h = sw_hash_bytes(w, n, 0x5157);
        size_t si = sw_tok_cache_set_of(h);
        set = &sc->cache[si];
        for (int k = 0; k < 2; k++) {
            const struct sw_tok_cache_slot *sl = &set->way[k];
            if (sl->hash == h && sl->klen == n && memcmp(sl->key, w, n) == 0) {
                sc->cache_lru[si] = (uint8_t)(1 - k); /* the other way is older now */
                return sw_tok_ids_put(out, sl->ids, sl->nids);
            }
        }
    }
    /* symbols: at most one per byte, plus byte-fallback expansion of prefix/suffix */
    SW_TRY(sw_tok_sym_reserve(sc, n + 1 + m->prefix_len + m->suffix_len));
    size_t ns = 0;
    if (m->raw_mode) {
        struct sw_tok_sym *s = sc->sym;
        for (size_t i = 0; i < n; i++)
            s[i] = (struct sw_tok_sym){m->byte_id[(unsigned char)w[i]], (int32_t)i - 1,
                                       i + 1 < n ? (int32_t)i + 1 : -1, 1};
        ns = n;
    } else {
        SW_TRY(sw_tok_bpe_symbols(m, sc, w, n, &ns));
    }
    if (ns > 1) sw_tok_merge_all(m, sc, ns, m->raw_mode ? (const unsigned char *)w : NULL);
    size_t start = out->n;
    for (size_t i = 0; i < ns; i++)
        if (sc->sym[i].len) SW_TRY(sw_tok_ids_push(out, sc->sym[i].c));
    size_t got = out->n - start;
    if (set && got > 0 && got <= SW_TOK_CACHE_IDS) {
        size_t si = sw_tok_cache_set_of(h);
        struct sw_tok_cache_slot *sl = &set->way[sc->cache_lru[si]];
        sc->cache_lru[si] ^= 1;
        sl->hash = h;
        sl->klen = (uint8_t)n;
        sl->nids = (uint8_t)got;
        memcpy(sl->key, w, n);
        memcpy(sl->ids, out->ids + start, got * sizeof(int32_t));
    }
    return 0;
}
