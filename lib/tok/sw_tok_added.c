/* sw_tok_added — added and special tokens, as `tokenizers`' AddedVocabulary handles them.
 *
 * Loading replays AddedVocabulary::add_tokens for each entry of "added_tokens" in file order:
 * a token whose content is already known keeps that id (llama2's <s> is model id 1), a new one
 * gets max(added ids)+1 or the model's vocabulary size. Matching uses two leftmost-longest
 * matchers: tokens with normalized=false are matched on the raw input, the others on each
 * normalized stretch between those matches, against their own normalized content. single_word
 * rejects a match touching a word character (\w) on either side; lstrip/rstrip widen the match
 * over adjacent whitespace; the search resumes after the match itself, not after the widened
 * span, as the Aho-Corasick iterator in `tokenizers` does. */
#include <stdlib.h>
#include <string.h>

#include "sw_err.h"
#include "sw_log.h"
#include "sw_tok_internal.h"

/* ---- trie (left-child right-sibling, built once) ---- */

struct sw_tok_trie_build {
    int32_t *child, *sibling, *term;
    uint8_t *byte;
    size_t n, cap;
};

static int sw_tok_trie_node(struct sw_tok_trie_build *b, uint8_t byte) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        int32_t *c = realloc(b->child, cap * sizeof(*c));
        if (c) b->child = c;
        int32_t *s = realloc(b->sibling, cap * sizeof(*s));
        if (s) b->sibling = s;
        int32_t *t = realloc(b->term, cap * sizeof(*t));
        if (t) b->term = t;
        uint8_t *y = realloc(b->byte, cap);
        if (y) b->byte = y;
        if (!c || !s || !t || !y) return sw_err_set(SW_ENOMEM, "tokenizer: out of memory (trie)");
        b->cap = cap;
    }
    b->child[b->n] = -1;
    b->sibling[b->n] = -1;
    b->term[b->n] = -1;
    b->byte[b->n] = byte;
    return (int)b->n++;
}

static int sw_tok_trie_insert(struct sw_tok_trie_build *b, const char *p, size_t n, int32_t pat) {
    int32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = (uint8_t)p[i];
        int32_t c = b->child[node];
        while (c >= 0 && b->byte[c] != ch)
            c = b->sibling[c];
        if (c < 0) {
            int r = sw_tok_trie_node(b, ch);
            if (r < 0) return r;
            c = r;
            b->sibling[c] = b->child[node];
            b->child[node] = c;
        }
        node = c;
    }
    if (b->term[node] < 0) b->term[node] = pat; /* a repeated pattern keeps its first entry */
    return 0;
}

static void sw_tok_trie_take(struct sw_tok_trie *t, struct sw_tok_trie_build *b, int n_patterns) {
    t->child = b->child;
    t->sibling = b->sibling;
    t->term = b->term;
    t->byte = b->byte;
    t->n_nodes = b->n;
    t->n_patterns = n_patterns;
    memset(t->first, 0, sizeof(t->first));
    for (int32_t c = b->child[0]; c >= 0; c = b->sibling[c])
        t->first[b->byte[c]] = 1;
}

static void sw_tok_trie_release(struct sw_tok_trie *t) {
    free(t->child);
    free(t->sibling);
    free(t->term);
    free(t->byte);
    memset(t, 0, sizeof(*t));
}

/* Leftmost-longest match at or after pos: returns 1 with [*ms, *me) and the pattern. */
static int sw_tok_trie_find(const struct sw_tok_trie *t, const unsigned char *s, size_t n,
                            size_t pos, size_t *ms, size_t *me, int32_t *pat) {
    if (t->n_patterns == 0) return 0;
    const int32_t *child = t->child, *sib = t->sibling;
    for (size_t i = pos; i < n; i++) {
        if (!t->first[s[i]]) continue;
        int32_t node = 0, best = -1;
        size_t best_end = 0;
        for (size_t j = i; j < n; j++) {
            int32_t c = child[node];
            while (c >= 0 && t->byte[c] != s[j])
                c = sib[c];
            if (c < 0) break;
            node = c;
            if (t->term[node] >= 0) {
                best = t->term[node];
                best_end = j + 1;
            }
        }
        if (best >= 0) {
            *ms = i;
            *me = best_end;
            *pat = best;
            return 1;
        }
    }
    return 0;
}

static int sw_tok_trie_build_set(struct sw_tok_trie *t, int32_t **map, const char **pats,
                                 const size_t *lens, const int32_t *tok_idx, size_t n) {
    struct sw_tok_trie_build b = {0};
    int rc = sw_tok_trie_node(&b, 0);
    for (size_t i = 0; rc >= 0 && i < n; i++)
        if (lens[i]) rc = sw_tok_trie_insert(&b, pats[i], lens[i], (int32_t)i);
    if (rc < 0) {
        free(b.child);
        free(b.sibling);
        free(b.term);
        free(b.byte);
        return rc;
    }
    sw_tok_trie_take(t, &b, (int)n);
    *map = malloc((n ? n : 1) * sizeof(**map));
    if (!*map) return sw_err_set(SW_ENOMEM, "tokenizer: out of memory");
    for (size_t i = 0; i < n; i++)
        (*map)[i] = tok_idx[i];
    return 0;
}

/* ---- loading ---- */

void sw_tok_added_release(struct sw_tok_added *a) {
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i].content);
    free(a->v);
    sw_strmap_free(a->by_content);
    sw_tok_trie_release(&a->raw_trie);
    sw_tok_trie_release(&a->norm_trie);
    free(a->raw_tok);
    free(a->norm_tok);
    memset(a, 0, sizeof(*a));
}

static int sw_tok_added_flags_equal(const struct sw_tok_added_token *x,
                                    const struct sw_tok_added_token *y) {
    return x->len == y->len && !memcmp(x->content, y->content, x->len) &&
           x->single_word == y->single_word && x->lstrip == y->lstrip && x->rstrip == y->rstrip &&
           x->normalized == y->normalized && x->special == y->special;
}

int sw_tok_added_parse(struct sw_tokenizer *tok, const struct sw_tok_jctx *c, const json_t *j) {
    struct sw_tok_added *a = &tok->added;
    a->by_content = sw_strmap_new(64);
    if (!a->by_content) return SW_ENOMEM;
    if (!j) return 0;
    if (!json_is_array(j)) return sw_tok_jerr(c, "added_tokens", "must be an array");
    size_t total = json_array_size(j);
    a->v = calloc(total ? total : 1, sizeof(*a->v));
    if (!a->v) return sw_err_set(SW_ENOMEM, "tokenizer: out of memory");
    int32_t max_added = -1;
    for (size_t i = 0; i < total; i++) {
        const json_t *e = json_array_get(j, i);
        char path[64];
        snprintf(path, sizeof(path), "added_tokens[%zu]", i);
        if (!json_is_object(e)) return sw_tok_jerr(c, path, "must be an object");
        struct sw_tok_added_token t = {0};
        long long want_id;
        SW_TRY(sw_tok_jint(c, e, path, "id", -1, &want_id));
        SW_TRY(sw_tok_jbool(c, e, path, "single_word", 0, &t.single_word));
        SW_TRY(sw_tok_jbool(c, e, path, "lstrip", 0, &t.lstrip));
        SW_TRY(sw_tok_jbool(c, e, path, "rstrip", 0, &t.rstrip));
        SW_TRY(sw_tok_jbool(c, e, path, "special", 0, &t.special));
        SW_TRY(sw_tok_jbool(c, e, path, "normalized", !t.special, &t.normalized));
        SW_TRY(sw_tok_jstr(c, e, path, "content", 1, &t.content, &t.len));
        int skip = t.len == 0;
        for (size_t k = 0; !skip && k < a->n; k++)
            if (sw_tok_added_flags_equal(&a->v[k], &t)) skip = 1;
        if (skip) {
            free(t.content);
            continue;
        }
        int64_t id;
        if (!sw_strmap_get(a->by_content, t.content, t.len, &id)) {
            id = sw_tok_bpe_lookup(&tok->bpe, t.content, t.len);
            if (id < 0) {
                int32_t vs = (int32_t)tok->bpe.vocab_n;
                id = max_added < 0 ? vs : (max_added >= vs || vs == 0) ? max_added + 1 : vs;
            }
        }
        t.id = (int32_t)id;
        if (t.id > max_added) max_added = t.id;
        if (want_id >= 0 && want_id != t.id)
            sw_warn("%s: %s: token '%s' was expected to have id %lld but was given id %d "
                    "(as `tokenizers` assigns it)",
                    c->file, path, t.content, want_id, t.id);
        a->v[a->n++] = t;
        SW_TRY(sw_strmap_put(a->by_content, t.content, t.len, t.id));
    }
    return 0;
}

int sw_tok_added_build(struct sw_tokenizer *tok, struct sw_tok_scratch *sc) {
    struct sw_tok_added *a = &tok->added;
    size_t n = a->n;
    const char **rp = calloc(n + 1, sizeof(*rp)), **np = calloc(n + 1, sizeof(*np));
    size_t *rl = calloc(n + 1, sizeof(*rl)), *nl = calloc(n + 1, sizeof(*nl));
    int32_t *ri = calloc(n + 1, sizeof(*ri)), *ni = calloc(n + 1, sizeof(*ni));
    char **owned = calloc(n + 1, sizeof(*owned));
    int32_t max_id = 0;
    for (size_t i = 0; i < n; i++)
        if (a->v[i].id > max_id) max_id = a->v[i].id;
    /* the flags in force for an id are those of the last entry added with it */
    int32_t *latest = malloc(((size_t)max_id + 1) * sizeof(*latest));
    size_t nr = 0, nn = 0;
    int rc = 0;
    if (!rp || !np || !rl || !nl || !ri || !ni || !owned || !latest) {
        rc = sw_err_set(SW_ENOMEM, "tokenizer: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        latest[a->v[i].id] = (int32_t)i;
    /* Priority order: special tokens first, then the others, each in file order. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            const struct sw_tok_added_token *t = &a->v[i];
            if (t->special != (pass == 0)) continue;
            if (!t->normalized) {
                rp[nr] = t->content;
                rl[nr] = t->len;
                ri[nr++] = latest[t->id];
                continue;
            }
            struct sw_tok_buf *b = &sc->norm;
            b->n = 0;
            SW_TRY_GOTO(rc, sw_tok_buf_put(b, t->content, t->len), out);
            int origin = 1;
            SW_TRY_GOTO(rc, sw_tok_norm_apply(tok, &tok->norm, sc, b, &origin), out);
            owned[nn] = sw_tok_strndup(b->p ? b->p : "", b->n);
            if (!owned[nn]) {
                rc = SW_ENOMEM;
                goto out;
            }
            np[nn] = owned[nn];
            nl[nn] = b->n;
            ni[nn++] = latest[t->id];
        }
    }
    SW_TRY_GOTO(rc, sw_tok_trie_build_set(&a->raw_trie, &a->raw_tok, rp, rl, ri, nr), out);
    SW_TRY_GOTO(rc, sw_tok_trie_build_set(&a->norm_trie, &a->norm_tok, np, nl, ni, nn), out);
out:
    if (owned)
        for (size_t i = 0; i < nn; i++)
            free(owned[i]);
    free(owned);
    free(rp);
    free(np);
    free(rl);
    free(nl);
    free(ri);
    free(ni);
    free(latest);
    return rc;
}

/* ---- matching ---- */

static int sw_tok_ends_with_word(const unsigned char *s, size_t n) {
    if (n == 0) return 0;
    size_t k = sw_tok_utf8_prev_len(s, n);
    int32_t cp;
    sw_tok_utf8_next(s + n - k, k, &cp);
    return sw_tok_is_word(cp);
}

static int sw_tok_starts_with_word(const unsigned char *s, size_t n) {
    if (n == 0) return 0;
    int32_t cp;
    sw_tok_utf8_next(s, n, &cp);
    return sw_tok_is_word(cp);
}

int sw_tok_added_split(const struct sw_tok_added *a, int normalized, const char *s, size_t n,
                       struct sw_tok_spans *out) {
    const struct sw_tok_trie *t = normalized ? &a->norm_trie : &a->raw_trie;
    const int32_t *map = normalized ? a->norm_tok : a->raw_tok;
    const unsigned char *u = (const unsigned char *)s;
    out->n = 0;
    if (n == 0) return sw_tok_spans_push(out, 0, 0, -1);
    size_t start_offset = 0, pos = 0, ms, me;
    int32_t pat;
    while (sw_tok_trie_find(t, u, n, pos, &ms, &me, &pat)) {
        pos = me;
        const struct sw_tok_added_token *tk = &a->v[map[pat]];
        size_t start = ms, stop = me;
        if (tk->single_word) {
            int start_space = start == 0 || !sw_tok_ends_with_word(u, start);
            int stop_space = stop == n || !sw_tok_starts_with_word(u + stop, n - stop);
            if (!start_space || !stop_space) continue;
        }
        if (tk->lstrip) {
            size_t ns = start;
            while (ns > 0) {
                size_t k = sw_tok_utf8_prev_len(u, ns);
                int32_t cp;
                sw_tok_utf8_next(u + ns - k, k, &cp);
                if (!sw_tok_is_whitespace(cp)) break;
                ns -= k;
            }
            start = ns > start_offset ? ns : start_offset;
        }
        if (tk->rstrip) {
            while (stop < n) {
                int32_t cp;
                size_t k = sw_tok_utf8_next(u + stop, n - stop, &cp);
                if (!sw_tok_is_whitespace(cp)) break;
                stop += k;
            }
        }
        if (start_offset < start) SW_TRY(sw_tok_spans_push(out, start_offset, start, -1));
        SW_TRY(sw_tok_spans_push(out, start, stop, tk->id));
        start_offset = stop;
    }
    if (start_offset != n) SW_TRY(sw_tok_spans_push(out, start_offset, n, -1));
    return 0;
}
