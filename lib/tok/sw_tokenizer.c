/* sw_tokenizer — loading tokenizer.json + tokenizer_config.json, the encode/decode pipeline, the
 * id table and the per-thread scratch (see sw_tokenizer.h).
 *
 * Encode follows TokenizerImpl::encode_single_sequence: added tokens with normalized=false are
 * split off the raw text, each remaining stretch is normalized and searched for the
 * normalized=true added tokens, every remaining piece is pre-tokenized and run through the
 * model, and the post-processor adds the template's special tokens. Each thread keeps a scratch
 * (buffers, PCRE2 match data, the BPE word cache) in a pthread key of the tokenizer; the
 * tokenizer also lists every scratch so sw_tokenizer_free can release those of live threads. */
#include "sw_tokenizer.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sw_err.h"
#include "sw_io.h"
#include "sw_log.h"
#include "sw_sha256.h"
#include "sw_tok_internal.h"

#define SW_TOK_NO_TOKEN UINT64_MAX
#define SW_TOK_MAX_JSON ((size_t)1 << 30)

/* ---- per-thread scratch ---- */

static void sw_tok_scratch_free(struct sw_tok_scratch *sc, size_t n_re) {
    if (!sc) return;
    if (sc->md)
        for (size_t i = 0; i < n_re; i++)
            pcre2_match_data_free(sc->md[i]);
    free(sc->md);
    pcre2_match_context_free(sc->mctx);
    pcre2_jit_stack_free(sc->jit);
    sw_tok_buf_release(&sc->text);
    sw_tok_buf_release(&sc->norm);
    sw_tok_buf_release(&sc->spare);
    sw_tok_spans_release(&sc->added);
    sw_tok_spans_release(&sc->nadded);
    sw_tok_spans_release(&sc->find);
    if (sc->lvl_buf)
        for (size_t i = 0; i < 2 * sc->n_lvl + 2; i++)
            sw_tok_buf_release(&sc->lvl_buf[i]);
    if (sc->lvl_spans)
        for (size_t i = 0; i < sc->n_lvl + 1; i++)
            sw_tok_spans_release(&sc->lvl_spans[i]);
    free(sc->lvl_buf);
    free(sc->lvl_spans);
    free(sc->sym);
    free(sc->heap);
    free(sc->cache);
    free(sc->cache_lru);
    sw_tok_ids_release(&sc->ids_tmp);
    sw_tok_ids_release(&sc->post_tmp);
    sw_tok_strs_release(&sc->dec_a);
    sw_tok_strs_release(&sc->dec_b);
    sw_tok_buf_release(&sc->dec_tmp);
    free(sc);
}

/* Thread exit: unlink this thread's scratch from its tokenizer and free it. */
static void sw_tok_scratch_dtor(void *p) {
    struct sw_tok_scratch *sc = p;
    struct sw_tokenizer *tok = sc->owner;
    pthread_mutex_lock(&tok->mu);
    if (sc->prev)
        sc->prev->next = sc->next;
    else
        tok->scratches = sc->next;
    if (sc->next) sc->next->prev = sc->prev;
    size_t n_re = tok->re.n;
    pthread_mutex_unlock(&tok->mu);
    sw_tok_scratch_free(sc, n_re);
}

struct sw_tok_scratch *sw_tok_scratch_get(const struct sw_tokenizer *ctok) {
    struct sw_tokenizer *tok = (struct sw_tokenizer *)ctok; /* registry is internally locked */
    struct sw_tok_scratch *sc = pthread_getspecific(tok->key);
    if (sc) return sc;
    sc = calloc(1, sizeof(*sc));
    if (!sc) goto oom;
    sc->owner = tok;
    sc->md = calloc(tok->re.n + 1, sizeof(*sc->md));
    sc->mctx = pcre2_match_context_create(NULL);
    sc->jit = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, NULL);
    sc->n_lvl = tok->pre.n;
    sc->lvl_buf = calloc(2 * sc->n_lvl + 2, sizeof(*sc->lvl_buf));
    sc->lvl_spans = calloc(sc->n_lvl + 1, sizeof(*sc->lvl_spans));
    if (!sc->md || !sc->mctx || !sc->jit || !sc->lvl_buf || !sc->lvl_spans) goto oom;
    pcre2_jit_stack_assign(sc->mctx, NULL, sc->jit);
    for (size_t i = 0; i < tok->re.n; i++) {
        sc->md[i] = pcre2_match_data_create_from_pattern(tok->re.code[i], NULL);
        if (!sc->md[i]) goto oom;
    }
    if (pthread_setspecific(tok->key, sc) != 0) goto oom;
    pthread_mutex_lock(&tok->mu);
    sc->next = tok->scratches;
    if (sc->next) sc->next->prev = sc;
    tok->scratches = sc;
    pthread_mutex_unlock(&tok->mu);
    return sc;
oom:
    sw_tok_scratch_free(sc, tok->re.n);
    sw_err_set(SW_ENOMEM, "tokenizer: out of memory (thread scratch)");
    return NULL;
}

/* ---- loading ---- */

void sw_tokenizer_free(struct sw_tokenizer *tok) {
    if (!tok) return;
    if (tok->key_ok) {
        struct sw_tok_scratch *sc = tok->scratches;
        while (sc) {
            struct sw_tok_scratch *next = sc->next;
            sw_tok_scratch_free(sc, tok->re.n);
            sc = next;
        }
        pthread_setspecific(tok->key, NULL);
        pthread_key_delete(tok->key);
        pthread_mutex_destroy(&tok->mu);
    }
    sw_tok_bpe_release(&tok->bpe);
    sw_tok_norms_release(&tok->norm);
    sw_tok_pretoks_release(&tok->pre);
    sw_tok_posts_release(&tok->post);
    sw_tok_decs_release(&tok->dec);
    sw_tok_added_release(&tok->added);
    for (size_t i = 0; i < tok->re.n; i++)
        pcre2_code_free(tok->re.code[i]);
    free(tok->re.code);
    free(tok->id_off);
    free(tok->id_len);
    free(tok->id_special);
    free(tok->id_pool);
    for (int i = 0; i < SW_TOK_NSPECIAL; i++)
        free(tok->special_tok[i]);
    free(tok->chat_template);
    free(tok->path);
    free(tok);
}

static int sw_tok_file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* The id -> string table: model vocabulary, then added tokens over it; and which ids are
 * special (their string is the content of a special added token). */
static int sw_tok_build_ids(struct sw_tokenizer *tok) {
    int32_t max_id = tok->bpe.max_id;
    for (size_t i = 0; i < tok->added.n; i++)
        if (tok->added.v[i].id > max_id) max_id = tok->added.v[i].id;
    size_t n = (size_t)max_id + 1;
    tok->n_ids = n;
    tok->id_off = malloc((n ? n : 1) * sizeof(*tok->id_off));
    tok->id_len = calloc(n ? n : 1, sizeof(*tok->id_len));
    tok->id_special = calloc(n ? n : 1, 1);
    struct sw_tok_buf pool = {0};
    struct sw_strmap *special = sw_strmap_new(16);
    int rc = 0;
    if (!tok->id_off || !tok->id_len || !tok->id_special || !special) {
        rc = sw_err_set(SW_ENOMEM, "tokenizer: out of memory (id table)");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        tok->id_off[i] = SW_TOK_NO_TOKEN;
    size_t it = 0;
    const char *key;
    size_t klen;
    int64_t val;
    while (sw_strmap_next(tok->bpe.vocab, &it, &key, &klen, &val)) {
        tok->id_off[val] = pool.n;
        tok->id_len[val] = (uint32_t)klen;
        SW_TRY_GOTO(rc, sw_tok_buf_put(&pool, key, klen + 1), out);
    }
    for (size_t i = 0; i < tok->added.n; i++) {
        const struct sw_tok_added_token *t = &tok->added.v[i];
        tok->id_off[t->id] = pool.n;
        tok->id_len[t->id] = (uint32_t)t->len;
        SW_TRY_GOTO(rc, sw_tok_buf_put(&pool, t->content, t->len), out);
        SW_TRY_GOTO(rc, sw_tok_buf_put(&pool, "", 1), out);
        if (t->special) SW_TRY_GOTO(rc, sw_strmap_put(special, t->content, t->len, 1), out);
    }
    for (size_t i = 0; i < n; i++)
        if (tok->id_off[i] != SW_TOK_NO_TOKEN)
            tok->id_special[i] =
                (uint8_t)sw_strmap_get(special, pool.p + tok->id_off[i], tok->id_len[i], NULL);
    tok->id_pool = pool.p;
    pool.p = NULL;
out:
    sw_tok_buf_release(&pool);
    sw_strmap_free(special);
    return rc;
}

/* bos_token etc.: a string or an AddedToken object {"content": ...}. */
static int sw_tok_config_token(const struct sw_tok_jctx *c, const json_t *cfg, const char *key,
                               char **out) {
    json_t *v = sw_tok_jget(cfg, key);
    *out = NULL;
    if (!v) return 0;
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (!json_is_string(v))
        return sw_tok_jerr(c, key, "must be a string or an object with a \"content\" string");
    *out = sw_tok_strndup(json_string_value(v), json_string_length(v));
    return *out ? 0 : SW_ENOMEM;
}

static int sw_tok_load_config(struct sw_tokenizer *tok, const char *path) {
    static const char *keys[SW_TOK_NSPECIAL] = {"bos_token", "eos_token", "pad_token", "unk_token"};
    char *data = NULL;
    size_t len = 0;
    SW_TRY(sw_read_file(path, &data, &len, SW_TOK_MAX_JSON));
    json_error_t jerr;
    /* INT_AS_REAL: model_max_length is often 1e30 written as an integer literal */
    json_t *cfg = json_loadb(data, len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &jerr);
    free(data);
    if (!cfg)
        return sw_err_set(SW_EFORMAT, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
    struct sw_tok_jctx c = {path};
    int rc = 0;
    if (!json_is_object(cfg)) {
        rc = sw_tok_jerr(&c, "(top)", "expected an object");
        goto out;
    }
    for (int i = 0; i < SW_TOK_NSPECIAL; i++) {
        SW_TRY_GOTO(rc, sw_tok_config_token(&c, cfg, keys[i], &tok->special_tok[i]), out);
        if (tok->special_tok[i])
            tok->special_id[i] =
                sw_tokenizer_token_to_id(tok, tok->special_tok[i], strlen(tok->special_tok[i]));
    }
    json_t *v;
    if ((v = sw_tok_jget(cfg, "add_bos_token")) && json_is_boolean(v))
        tok->add_bos = json_is_true(v);
    if ((v = sw_tok_jget(cfg, "add_eos_token")) && json_is_boolean(v))
        tok->add_eos = json_is_true(v);
    if ((v = sw_tok_jget(cfg, "model_max_length"))) {
        double x = json_number_value(v);
        if (json_is_number(v) && x >= 0)
            tok->model_max_length = x >= 9.2e18 ? INT64_MAX : (int64_t)x;
    }
    v = sw_tok_jget(cfg, "chat_template");
    if (json_is_array(v)) { /* [{"name": ..., "template": ...}]: "default", else the first */
        json_t *pick = NULL;
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *e = json_array_get(v, i);
            const char *name = json_string_value(json_object_get(e, "name"));
            if (!pick || (name && !strcmp(name, "default"))) pick = e;
        }
        v = pick ? json_object_get(pick, "template") : NULL;
    }
    if (json_is_string(v)) {
        tok->chat_template = sw_tok_strndup(json_string_value(v), json_string_length(v));
        if (!tok->chat_template) rc = SW_ENOMEM;
    }
out:
    json_decref(cfg);
    return rc;
}

static int sw_tok_jdirection(const struct sw_tok_jctx *c, const json_t *obj, const char *path,
                             int *left) {
    json_t *d = sw_tok_jget(obj, "direction");
    const char *s = d ? json_string_value(d) : "Right";
    if (!s || (strcmp(s, "Right") && strcmp(s, "Left")))
        return sw_tok_jerr(c, path, "\"direction\" must be \"Right\" or \"Left\"");
    *left = s[0] == 'L';
    return 0;
}

/* "truncation": {max_length, direction, ...} and "padding": {strategy, direction, pad_id,
 * pad_to_multiple_of, ...}; stride and strategy only shape overflowing encodings and pairs. */
static int sw_tok_load_trunc_pad(struct sw_tokenizer *tok, const struct sw_tok_jctx *c,
                                 const json_t *root) {
    json_t *t = sw_tok_jget(root, "truncation");
    if (t) {
        long long ml;
        if (!json_is_object(t)) return sw_tok_jerr(c, "truncation", "must be an object or null");
        SW_TRY(sw_tok_jint(c, t, "truncation", "max_length", 512, &ml));
        if (ml < 0) return sw_tok_jerr(c, "truncation", "max_length must not be negative");
        SW_TRY(sw_tok_jdirection(c, t, "truncation", &tok->trunc_left));
        tok->trunc_on = 1;
        tok->trunc_max = (size_t)ml;
    }
    json_t *p = sw_tok_jget(root, "padding");
    if (p) {
        long long v;
        if (!json_is_object(p)) return sw_tok_jerr(c, "padding", "must be an object or null");
        json_t *st = sw_tok_jget(p, "strategy");
        if (json_is_object(st)) {
            json_t *fx = json_object_get(st, "Fixed");
            if (!json_is_integer(fx) || json_integer_value(fx) < 0)
                return sw_tok_jerr(c, "padding.strategy", "expected {\"Fixed\": length}");
            tok->pad_fixed = (size_t)json_integer_value(fx);
        } else if (st && (!json_is_string(st) || strcmp(json_string_value(st), "BatchLongest"))) {
            return sw_tok_jerr(c, "padding.strategy",
                               "expected \"BatchLongest\" or {\"Fixed\": n}");
        }
        SW_TRY(sw_tok_jdirection(c, p, "padding", &tok->pad_left));
        SW_TRY(sw_tok_jint(c, p, "padding", "pad_to_multiple_of", 0, &v));
        if (v < 0) return sw_tok_jerr(c, "padding", "pad_to_multiple_of must not be negative");
        tok->pad_multiple = (size_t)v;
        SW_TRY(sw_tok_jint(c, p, "padding", "pad_id", 0, &v));
        if (v < 0 || v > INT32_MAX) return sw_tok_jerr(c, "padding", "pad_id out of range");
        tok->pad_id = (int32_t)v;
        tok->pad_on = 1;
    }
    for (size_t k = 0; k < tok->post.n; k++)
        for (size_t i = 0; i < tok->post.v[k].n_single; i++)
            tok->n_added_single += tok->post.v[k].single[i].n_ids;
    return 0;
}

static int sw_tok_load_json(struct sw_tokenizer *tok, const json_t *root, struct sw_strmap *vocab) {
    struct sw_tok_jctx c = {tok->path};
    if (!json_is_object(root) || !json_object_get(root, "model")) {
        sw_strmap_free(vocab);
        if (!json_is_object(root)) return sw_tok_jerr(&c, "(top)", "expected an object");
        return sw_tok_jerr(&c, "model", "missing");
    }
    SW_TRY(sw_tok_bpe_parse(tok, &c, json_object_get(root, "model"), vocab, &tok->bpe));
    json_t *j;
    if ((j = sw_tok_jget(root, "normalizer")))
        SW_TRY(sw_tok_norm_parse(tok, &c, j, "normalizer", &tok->norm));
    if ((j = sw_tok_jget(root, "pre_tokenizer")))
        SW_TRY(sw_tok_pretok_parse(tok, &c, j, "pre_tokenizer", &tok->pre));
    if ((j = sw_tok_jget(root, "post_processor")))
        SW_TRY(sw_tok_post_parse(tok, &c, j, "post_processor", &tok->post));
    if ((j = sw_tok_jget(root, "decoder")))
        SW_TRY(sw_tok_dec_parse(tok, &c, j, "decoder", &tok->dec));
    SW_TRY(sw_tok_added_parse(tok, &c, sw_tok_jget(root, "added_tokens")));
    SW_TRY(sw_tok_load_trunc_pad(tok, &c, root));
    for (size_t i = 0; i < tok->pre.n; i++)
        if (tok->pre.v[i].kind == SW_TOK_PRE_BYTELEVEL ||
            tok->pre.v[i].kind == SW_TOK_PRE_METASPACE)
            sw_tok_bytelevel_init();
    sw_tok_bytelevel_init(); /* the ByteLevel decoder and normalizer use the table too */
    /* Raw-byte mode: ByteLevel is the last pre-tokenizer stage. */
    if (tok->pre.n && tok->pre.v[tok->pre.n - 1].kind == SW_TOK_PRE_BYTELEVEL) {
        int r = sw_tok_bpe_enable_raw(&tok->bpe);
        if (r < 0) return r;
        if (r == 1) {
            struct sw_tok_pretok *bl = &tok->pre.v[tok->pre.n - 1];
            bl->map_bytes = 0;
            tok->bytelevel_raw = 1;
            /* without regex or prefix space, a raw-mode ByteLevel stage passes pieces through */
            if (!bl->use_regex && !bl->add_prefix_space) {
                sw_tok_pattern_release(&bl->pat);
                tok->pre.n--;
            }
        }
    }
    return sw_tok_build_ids(tok);
}

static struct sw_tokenizer *sw_tok_new(void) {
    struct sw_tokenizer *tok = calloc(1, sizeof(*tok));
    if (!tok) {
        sw_err_set(SW_ENOMEM, "tokenizer: out of memory");
        return NULL;
    }
    for (int i = 0; i < SW_TOK_NSPECIAL; i++)
        tok->special_id[i] = -1;
    tok->add_bos = tok->add_eos = -1;
    tok->model_max_length = -1;
    if (pthread_key_create(&tok->key, sw_tok_scratch_dtor) != 0) {
        free(tok);
        sw_err_set(SW_ENOMEM, "tokenizer: no thread-specific key left");
        return NULL;
    }
    pthread_mutex_init(&tok->mu, NULL);
    tok->key_ok = 1;
    return tok;
}

/* Build tok from the tokenizer.json bytes in data (modified: model.vocab is blanked). */
static int sw_tok_load_buffer(struct sw_tokenizer *tok, char *data, size_t len) {
    SW_TRY(sw_sha256(data, len, tok->sha));
    sw_hex(tok->sha, 32, tok->sha_hex);
    /* model.vocab is read directly (NUL in keys, speed) and blanked for jansson */
    struct sw_strmap *vocab = NULL;
    size_t vs, ve;
    if (sw_tok_json_find_vocab(data, len, &vs, &ve) == 1) {
        vocab = sw_strmap_new((ve - vs) / 16);
        if (!vocab) return SW_ENOMEM;
        int rc = sw_tok_json_parse_vocab(tok->path, data + vs, ve - vs, vocab);
        if (rc) {
            sw_strmap_free(vocab);
            return rc;
        }
        data[vs] = '{';
        data[vs + 1] = '}';
        for (size_t i = vs + 2; i < ve; i++)
            if (data[i] != '\n') data[i] = ' ';
    }
    json_error_t jerr;
    json_t *root = json_loadb(data, len, JSON_ALLOW_NUL, &jerr);
    if (!root) {
        sw_strmap_free(vocab);
        return sw_err_set(SW_EFORMAT, "%s:%d:%d: %s", tok->path, jerr.line, jerr.column, jerr.text);
    }
    /* No scratch may exist before this returns: scratches size their match data by the regex
     * registry, which is final only once every component is loaded. */
    int rc = sw_tok_load_json(tok, root, vocab);
    json_decref(root);
    if (rc) return rc;
    struct sw_tok_scratch *sc = sw_tok_scratch_get(tok);
    if (!sc) return SW_ENOMEM;
    return sw_tok_added_build(tok, sc);
}

int sw_tokenizer_load(const char *path, struct sw_tokenizer **out) {
    *out = NULL;
    struct sw_tokenizer *tok = sw_tok_new();
    if (!tok) return SW_ENOMEM;
    char *cfg_path = NULL, *data = NULL;
    int rc = 0;
    int dir = sw_path_is_dir(path);
    if (dir < 0) {
        rc = dir;
        goto fail;
    }
    if (dir) {
        tok->path = sw_path_join(path, "tokenizer.json");
        if (tok->path && !sw_tok_file_exists(tok->path)) {
            free(tok->path);
            tok->path = sw_path_join(path, "tokenizer.json.gz");
            if (tok->path && !sw_tok_file_exists(tok->path)) {
                rc = sw_err_set(SW_ENOTFOUND, "%s: no tokenizer.json or tokenizer.json.gz", path);
                goto fail;
            }
        }
        cfg_path = sw_path_join(path, "tokenizer_config.json");
    } else {
        tok->path = sw_tok_strndup(path, strlen(path));
        char *tmp = sw_tok_strndup(path, strlen(path));
        if (tmp) cfg_path = sw_path_join(dirname(tmp), "tokenizer_config.json");
        free(tmp);
    }
    if (!tok->path || !cfg_path) {
        rc = sw_err_set(SW_ENOMEM, "tokenizer: out of memory");
        goto fail;
    }
    size_t len;
    SW_TRY_GOTO(rc, sw_read_file(tok->path, &data, &len, SW_TOK_MAX_JSON), fail);
    SW_TRY_GOTO(rc, sw_tok_load_buffer(tok, data, len), fail);
    if (sw_tok_file_exists(cfg_path)) SW_TRY_GOTO(rc, sw_tok_load_config(tok, cfg_path), fail);
    free(data);
    free(cfg_path);
    *out = tok;
    return 0;
fail:
    free(data);
    free(cfg_path);
    sw_tokenizer_free(tok);
    return rc;
}

int sw_tokenizer_load_mem(const char *name, const char *json, size_t len,
                          struct sw_tokenizer **out) {
    *out = NULL;
    struct sw_tokenizer *tok = sw_tok_new();
    if (!tok) return SW_ENOMEM;
    char *data = malloc(len + 1);
    tok->path =
        sw_tok_strndup(name ? name : "tokenizer.json", strlen(name ? name : "tokenizer.json"));
    int rc;
    if (!data || !tok->path) {
        rc = sw_err_set(SW_ENOMEM, "tokenizer: out of memory");
    } else {
        if (len) memcpy(data, json, len);
        data[len] = 0;
        rc = sw_tok_load_buffer(tok, data, len);
    }
    free(data);
    if (rc) {
        sw_tokenizer_free(tok);
        return rc;
    }
    *out = tok;
    return 0;
}

/* ---- encode ---- */

/* One stretch of text between raw-matched added tokens: normalize, split off normalized added
 * tokens, pre-tokenize and run the model. */
static int sw_tok_encode_segment(const struct sw_tokenizer *tok, struct sw_tok_scratch *sc,
                                 const char *s, size_t n, int at_origin, struct sw_tok_ids *out) {
    if (tok->norm.n) {
        sc->norm.n = 0;
        SW_TRY(sw_tok_buf_put(&sc->norm, s, n));
        SW_TRY(sw_tok_norm_apply(tok, &tok->norm, sc, &sc->norm, &at_origin));
        s = sc->norm.p ? sc->norm.p : "";
        n = sc->norm.n;
    }
    if (tok->added.norm_trie.n_patterns == 0)
        return sw_tok_pretok_run(tok, sc, s, n, at_origin, out);
    SW_TRY(sw_tok_added_split(&tok->added, 1, s, n, &sc->nadded));
    for (size_t i = 0; i < sc->nadded.n; i++) {
        const struct sw_tok_span *v = &sc->nadded.v[i];
        if (v->flag >= 0)
            SW_TRY(sw_tok_ids_push(out, v->flag));
        else
            SW_TRY(sw_tok_pretok_run(tok, sc, s + v->start, v->end - v->start,
                                     at_origin && v->start == 0, out));
    }
    return 0;
}

static int sw_tok_encode_core(const struct sw_tokenizer *tok, struct sw_tok_scratch *sc,
                              const char *s, size_t n, struct sw_tok_ids *out) {
    if (tok->added.raw_trie.n_patterns == 0) return sw_tok_encode_segment(tok, sc, s, n, 1, out);
    SW_TRY(sw_tok_added_split(&tok->added, 0, s, n, &sc->added));
    for (size_t i = 0; i < sc->added.n; i++) {
        const struct sw_tok_span *v = &sc->added.v[i];
        if (v->flag >= 0)
            SW_TRY(sw_tok_ids_push(out, v->flag));
        else
            SW_TRY(sw_tok_encode_segment(tok, sc, s + v->start, v->end - v->start, v->start == 0,
                                         out));
    }
    return 0;
}

int sw_tokenizer_encode_append(const struct sw_tokenizer *tok, const char *text, size_t len,
                               int add_special_tokens, struct sw_tok_ids *out) {
    if (len > INT32_MAX)
        return sw_err_set(SW_ERANGE, "tokenizer: text of %zu bytes is over the 2 GiB limit", len);
    struct sw_tok_scratch *sc = sw_tok_scratch_get(tok);
    if (!sc) return SW_ENOMEM;
    if (!text) text = "";
    const char *s = text;
    if (sw_tok_utf8_valid(text, len) != len) {
        sc->text.n = 0;
        SW_TRY(sw_tok_utf8_repair_text(text, len, &sc->text));
        s = sc->text.p;
        len = sc->text.n;
    }
    size_t start = out->n;
    int rc;
    int post = add_special_tokens && tok->post.n;
    if (!post && !tok->trunc_on && !tok->pad_on) {
        rc = sw_tok_encode_core(tok, sc, s, len, out);
        if (rc) out->n = start;
        return rc;
    }
    struct sw_tok_ids *ids = &sc->ids_tmp;
    ids->n = 0;
    SW_TRY(sw_tok_encode_core(tok, sc, s, len, ids));
    if (tok->trunc_on) {
        /* the template's tokens count against max_length; when they alone exceed it the
         * limit wraps around in `tokenizers` (usize arithmetic) and nothing is cut */
        size_t added = post ? tok->n_added_single : 0;
        if (added <= tok->trunc_max && ids->n > tok->trunc_max - added) {
            size_t keep = tok->trunc_max - added;
            if (tok->trunc_left)
                memmove(ids->ids, ids->ids + ids->n - keep, keep * sizeof(int32_t));
            ids->n = keep;
        }
    }
    if (post) SW_TRY(sw_tok_post_apply(&tok->post, ids, &sc->post_tmp));
    size_t target = ids->n;
    if (tok->pad_on) {
        if (tok->pad_fixed > target) target = tok->pad_fixed;
        if (tok->pad_multiple && target % tok->pad_multiple)
            target += tok->pad_multiple - target % tok->pad_multiple;
    }
    size_t pad = target - ids->n;
    rc = 0;
    for (size_t i = 0; !rc && tok->pad_left && i < pad; i++)
        rc = sw_tok_ids_push(out, tok->pad_id);
    if (!rc) rc = sw_tok_ids_put(out, ids->ids, ids->n);
    for (size_t i = 0; !rc && !tok->pad_left && i < pad; i++)
        rc = sw_tok_ids_push(out, tok->pad_id);
    if (rc) out->n = start;
    return rc;
}

int sw_tokenizer_encode(const struct sw_tokenizer *tok, const char *text, size_t len,
                        int add_special_tokens, int32_t **ids, size_t *n) {
    struct sw_tok_ids b = {0};
    *ids = NULL;
    *n = 0;
    int rc = sw_tokenizer_encode_append(tok, text, len, add_special_tokens, &b);
    if (rc == 0 && !b.ids) { /* promise a non-NULL array even for no ids */
        rc = sw_tok_ids_push(&b, 0);
        b.n = 0;
    }
    if (rc) {
        sw_tok_ids_release(&b);
        return rc;
    }
    *ids = b.ids;
    *n = b.n;
    return 0;
}

/* ---- decode and lookups ---- */

int sw_tokenizer_decode(const struct sw_tokenizer *tok, const int32_t *ids, size_t n,
                        int skip_special, char **out, size_t *len) {
    *out = NULL;
    if (len) *len = 0;
    struct sw_tok_scratch *sc = sw_tok_scratch_get(tok);
    if (!sc) return SW_ENOMEM;
    struct sw_tok_strs *in = &sc->dec_a;
    sw_tok_strs_clear(in);
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || (size_t)id >= tok->n_ids || tok->id_off[id] == SW_TOK_NO_TOKEN) continue;
        if (skip_special && tok->id_special[id]) continue;
        SW_TRY(sw_tok_strs_push(in, tok->id_pool + tok->id_off[id], tok->id_len[id]));
    }
    struct sw_tok_buf b = {0};
    int rc = sw_tok_dec_run(tok, &tok->dec, sc, in, &b);
    if (!rc) rc = sw_tok_buf_put(&b, "", 1);
    if (rc) {
        sw_tok_buf_release(&b);
        return rc;
    }
    *out = b.p;
    if (len) *len = b.n - 1;
    return 0;
}

int32_t sw_tokenizer_token_to_id(const struct sw_tokenizer *tok, const char *token, size_t len) {
    int64_t v;
    if (tok->added.by_content && sw_strmap_get(tok->added.by_content, token, len, &v))
        return (int32_t)v;
    return sw_tok_bpe_lookup(&tok->bpe, token, len);
}

const char *sw_tokenizer_id_to_token(const struct sw_tokenizer *tok, int32_t id, size_t *len) {
    if (id < 0 || (size_t)id >= tok->n_ids || tok->id_off[id] == SW_TOK_NO_TOKEN) return NULL;
    if (len) *len = tok->id_len[id];
    return tok->id_pool + tok->id_off[id];
}

size_t sw_tokenizer_vocab_size(const struct sw_tokenizer *tok) {
    return tok->n_ids;
}

int sw_tokenizer_is_special(const struct sw_tokenizer *tok, int32_t id) {
    return id >= 0 && (size_t)id < tok->n_ids && tok->id_special[id];
}

int32_t sw_tokenizer_special_id(const struct sw_tokenizer *tok, enum sw_tok_special which) {
    return (unsigned)which < SW_TOK_NSPECIAL ? tok->special_id[which] : -1;
}

const char *sw_tokenizer_special_token(const struct sw_tokenizer *tok, enum sw_tok_special which) {
    return (unsigned)which < SW_TOK_NSPECIAL ? tok->special_tok[which] : NULL;
}

int sw_tokenizer_add_bos(const struct sw_tokenizer *tok) {
    return tok->add_bos;
}
int sw_tokenizer_add_eos(const struct sw_tokenizer *tok) {
    return tok->add_eos;
}
const char *sw_tokenizer_chat_template(const struct sw_tokenizer *tok) {
    return tok->chat_template;
}
int64_t sw_tokenizer_model_max_length(const struct sw_tokenizer *tok) {
    return tok->model_max_length;
}
const uint8_t *sw_tokenizer_hash(const struct sw_tokenizer *tok) {
    return tok->sha;
}
const char *sw_tokenizer_hash_hex(const struct sw_tokenizer *tok) {
    return tok->sha_hex;
}

/* The digest sw_tokenizer_hash_hex would give, without building the tokenizer: the same file
 * lookup as sw_tokenizer_load (tokenizer.json, else tokenizer.json.gz) and the same bytes
 * (sw_read_file inflates gzip), so a stream packed from a folder that ships tokenizer.json.gz
 * matches a model folder holding the plain file and vice versa. */
int sw_tokenizer_dir_sha256(const char *dir, char hex[65], char **file) {
    static const char *const names[] = {"tokenizer.json", "tokenizer.json.gz"};
    hex[0] = '\0';
    if (file) *file = NULL;
    for (int i = 0; i < 2; i++) {
        char *path = sw_path_join(dir, names[i]);
        if (!path) return sw_err_set(SW_ENOMEM, "tokenizer: out of memory");
        if (!sw_tok_file_exists(path)) {
            free(path);
            continue;
        }
        char *data = NULL;
        size_t len = 0;
        uint8_t d[32];
        int rc = sw_read_file(path, &data, &len, SW_TOK_MAX_JSON);
        if (rc == 0) rc = sw_sha256(data, len, d);
        free(data);
        if (rc < 0) {
            free(path);
            return rc;
        }
        sw_hex(d, 32, hex);
        if (file)
            *file = path;
        else
            free(path);
        return 1;
    }
    return 0;
}
