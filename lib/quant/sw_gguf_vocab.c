/* sw_gguf_vocab — a Hugging Face tokenizer (tokenizer.json[.gz] + tokenizer_config.json +
 * config.json of a model folder) as llama.cpp's `tokenizer.ggml.*` metadata, the way
 * llama.cpp's convert_hf_to_gguf.py writes it (its get_vocab_base / _set_vocab_gpt2 /
 * LlamaHfVocab paths and gguf-py's SpecialVocab):
 *
 * - Byte-level BPE (Qwen2/2.5/3, Llama 3): model "gpt2"; one token per embedding row (gaps
 *   become "[PAD<i>]" of type UNUSED); added tokens CONTROL when special or looking special
 *   ("<|...|>"), USER_DEFINED otherwise; every other token NORMAL; the merges as "a b" strings
 *   (a space inside a part written as U+0120, as gguf-py does); tokenizer.ggml.pre from the
 *   pre-tokenizer's split regex: "qwen2", "llama-bpe", plain GPT-2 ("gpt-2"), else "default"
 *   with a warning (llama.cpp identifies it by hashing a tokenization; sw compares the regex).
 * - SentencePiece-style BPE with byte fallback (Llama 2): model "llama"; <0xNN> tokens BYTE,
 *   special tokens CONTROL, added ones USER_DEFINED; scores = −(rank of the merge that makes
 *   the token) so llama.cpp's SPM merge order equals the merge list's (gguf-py's LlamaHfVocab
 *   writes −1000 everywhere, which loses that order); add_space_prefix from the Prepend
 *   normalizer or Metaspace pre-tokenizer.
 * - Both: bos/eos/unk/sep/pad ids from tokenizer_config.json's <type>_token matched against
 *   the added tokens, then config.json's <type>_token_id; add_bos/add_eos from
 *   tokenizer_config.json or the post-processor's template; the chat template from
 *   tokenizer_config.json or chat_template.jinja. */
#include "sw_gguf_export.h"

#include "sw_err.h"
#include "sw_io.h"
#include "sw_log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

static const char *const QWEN2_RE =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char *const LLAMA3_RE =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* tokenizer_config.json may hold integers past int64 (model_max_length 1e30 written as an
 * integer): flags JSON_DECODE_INT_AS_REAL for it; nothing read from it is an integer. */
static json_t *load_json(const char *dir, const char *name, int required, size_t flags, int *rc) {
    char *p = sw_path_join(dir, name);
    char *text = NULL;
    size_t len = 0;
    json_t *j = NULL;
    *rc = 0;
    if (!p) {
        *rc = sw_err_set(SW_ENOMEM, "out of memory");
        return NULL;
    }
    int r = sw_read_file(p, &text, &len, 0);
    if (r == SW_ENOTFOUND && !required) {
        sw_err_clear();
    } else if (r < 0) {
        *rc = r;
    } else {
        json_error_t e;
        j = json_loadb(text, len, flags, &e);
        if (!json_is_object(j)) {
            *rc = sw_err_set(SW_EFORMAT, "%s:%d: %s", p, e.line, j ? "not a JSON object" : e.text);
            json_decref(j);
            j = NULL;
        }
    }
    free(text), free(p);
    return j;
}

/* The content of a special-token entry of tokenizer_config.json (a string or {content}). */
static const char *token_content(const json_t *v) {
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v) && json_is_string(json_object_get(v, "content")))
        return json_string_value(json_object_get(v, "content"));
    return NULL;
}

static int looks_special(const char *t) {
    size_t n = strlen(t);
    if (!strcmp(t, "<pad>") || !strcmp(t, "<mask>") || !strcmp(t, "<2mass>") ||
        !strcmp(t, "[@BOS@]"))
        return 1;
    if (n >= 4 && !strncmp(t, "<|", 2) && !strcmp(t + n - 2, "|>")) return 1;
    /* "<｜" ... "｜>" (fullwidth bar, deepseek) */
    if (n >= 8 && !strncmp(t, "<\xef\xbd\x9c", 4) && !strcmp(t + n - 4, "\xef\xbd\x9c>")) return 1;
    if (n >= 8 && !strncmp(t, "<unused", 7) && t[n - 1] == '>') return 1;
    return 0;
}

/* The pre-tokenizer's Split regex (first one found), or NULL. */
static const char *split_regex(const json_t *pt) {
    if (!json_is_object(pt)) return NULL;
    const char *type = json_string_value(json_object_get(pt, "type"));
    if (type && !strcmp(type, "Split")) {
        const json_t *pat = json_object_get(pt, "pattern");
        return json_string_value(json_object_get(pat, "Regex"));
    }
    if (type && !strcmp(type, "Sequence")) {
        size_t i;
        const json_t *e;
        json_array_foreach(json_object_get(pt, "pretokenizers"), i, e) {
            const char *r = split_regex(e);
            if (r) return r;
        }
    }
    return NULL;
}

static const char *pre_name(const json_t *tok) {
    const json_t *pt = json_object_get(tok, "pre_tokenizer");
    const char *re = split_regex(pt);
    if (re && !strcmp(re, QWEN2_RE)) return "qwen2";
    if (re && !strcmp(re, LLAMA3_RE)) return "llama-bpe";
    const char *type = json_string_value(json_object_get(pt, "type"));
    if (!re && type && !strcmp(type, "ByteLevel") && json_is_true(json_object_get(pt, "use_regex")))
        return "gpt-2";
    sw_warn("tokenizer: pre-tokenizer not recognised (llama.cpp knows it by its own hash); "
            "writing tokenizer.ggml.pre \"default\"");
    return "default";
}

/* Has the SentencePiece-style tokenizer a leading-space rule? */
static int space_prefix(const json_t *tok) {
    const json_t *n = json_object_get(tok, "normalizer");
    const json_t *list = json_object_get(n, "normalizers");
    size_t i;
    const json_t *e;
    if (json_is_array(list)) {
        json_array_foreach(list, i, e) {
            const char *t = json_string_value(json_object_get(e, "type"));
            if (t && !strcmp(t, "Prepend")) return 1;
        }
    } else {
        const char *t = json_string_value(json_object_get(n, "type"));
        if (t && !strcmp(t, "Prepend")) return 1;
    }
    const json_t *pt = json_object_get(tok, "pre_tokenizer");
    const char *t = json_string_value(json_object_get(pt, "type"));
    if (t && !strcmp(t, "Metaspace")) {
        const char *scheme = json_string_value(json_object_get(pt, "prepend_scheme"));
        if (scheme) return strcmp(scheme, "never") != 0;
        return json_is_true(json_object_get(pt, "add_prefix_space"));
    }
    return 0;
}

/* One merge as "a b" (a malloc'ed string); spaces inside parts become U+0120. */
static char *merge_text(const json_t *m) {
    if (json_is_string(m)) return strdup(json_string_value(m));
    if (!json_is_array(m) || json_array_size(m) != 2) return NULL;
    const char *a = json_string_value(json_array_get(m, 0)),
               *b = json_string_value(json_array_get(m, 1));
    if (!a || !b) return NULL;
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(2 * (na + nb) + 2), *o = s;
    if (!s) return NULL;
    for (const char *p = a; *p; p++) {
        if (*p == ' ')
            *o++ = (char)0xC4, *o++ = (char)0xA0;
        else
            *o++ = *p;
    }
    *o++ = ' ';
    for (const char *p = b; *p; p++) {
        if (*p == ' ')
            *o++ = (char)0xC4, *o++ = (char)0xA0;
        else
            *o++ = *p;
    }
    *o = 0;
    return s;
}

/* For scores: the merged token of a merge entry (parts joined, spaces as they are). */
static char *merge_result(const json_t *m) {
    if (json_is_string(m)) {
        const char *s = json_string_value(m), *sp = strchr(s, ' ');
        if (!sp) return NULL;
        size_t n = strlen(s);
        char *r = malloc(n);
        if (!r) return NULL;
        memcpy(r, s, (size_t)(sp - s));
        memcpy(r + (sp - s), sp + 1, n - (size_t)(sp - s) - 1);
        r[n - 1] = 0;
        return r;
    }
    const char *a = json_string_value(json_array_get(m, 0)),
               *b = json_string_value(json_array_get(m, 1));
    if (!a || !b) return NULL;
    char *r = malloc(strlen(a) + strlen(b) + 1);
    if (r) strcpy(r, a), strcat(r, b);
    return r;
}

static int is_byte_token(const char *t) {
    return strlen(t) == 6 && !strncmp(t, "<0x", 3) && t[5] == '>' &&
           strchr("0123456789ABCDEFabcdef", t[3]) && strchr("0123456789ABCDEFabcdef", t[4]);
}

struct vocab {
    int64_t n;
    char **tok;    /* n token strings (owned) */
    int32_t *type; /* n token types */
    float *score;  /* SPM only */
};

static void vocab_release(struct vocab *v) {
    if (v->tok)
        for (int64_t i = 0; i < v->n; i++)
            free(v->tok[i]);
    free(v->tok), free(v->type), free(v->score);
}

static int set_special_ids(struct sw_gguf_writer *w, const json_t *tok, const json_t *tcfg,
                           const json_t *cfg, int64_t n) {
    static const char *const kinds[] = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};
    static const char *const keys[] = {
        "tokenizer.ggml.bos_token_id",     "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.seperator_token_id",
        "tokenizer.ggml.padding_token_id", NULL,
        "tokenizer.ggml.mask_token_id"};
    const json_t *added = json_object_get(tok, "added_tokens");
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        if (!keys[k]) continue; /* cls: gguf-py has no key for it */
        char name[32];
        int64_t id = -1;
        snprintf(name, sizeof name, "%s_token", kinds[k]);
        const char *content = tcfg ? token_content(json_object_get(tcfg, name)) : NULL;
        if (content) {
            size_t i;
            const json_t *a;
            json_array_foreach(added, i, a) {
                const char *c = json_string_value(json_object_get(a, "content"));
                if (c && !strcmp(c, content) && json_is_integer(json_object_get(a, "id"))) {
                    id = json_integer_value(json_object_get(a, "id"));
                    break;
                }
            }
        }
        if (id < 0 && cfg) {
            snprintf(name, sizeof name, "%s_token_id", kinds[k]);
            const json_t *v = json_object_get(cfg, name);
            if (json_is_integer(v)) id = json_integer_value(v);
        }
        if (id >= 0 && id < n)
            SW_TRY(sw_gguf_set_u32(w, keys[k], (uint32_t)id));
        else if (id >= n)
            sw_warn("tokenizer: %s id %lld is out of the vocabulary (%lld); skipped", kinds[k],
                    (long long)id, (long long)n);
    }
    /* add_bos / add_eos: tokenizer_config.json first, else the post-processor's template */
    int add_bos = -1, add_eos = -1;
    if (tcfg && json_is_boolean(json_object_get(tcfg, "add_bos_token")))
        add_bos = json_is_true(json_object_get(tcfg, "add_bos_token"));
    if (tcfg && json_is_boolean(json_object_get(tcfg, "add_eos_token")))
        add_eos = json_is_true(json_object_get(tcfg, "add_eos_token"));
    const json_t *pp = json_object_get(tok, "post_processor");
    const json_t *procs = json_object_get(pp, "processors");
    size_t np = json_is_array(procs) ? json_array_size(procs) : 1;
    for (size_t i = 0; i < np; i++) {
        const json_t *p = json_is_array(procs) ? json_array_get(procs, i) : pp;
        const char *type = json_string_value(json_object_get(p, "type"));
        if (!type || strcmp(type, "TemplateProcessing") != 0) continue;
        const json_t *single = json_object_get(p, "single");
        if (json_array_size(single) < 2) continue;
        const char *bos = tcfg ? token_content(json_object_get(tcfg, "bos_token")) : NULL;
        const char *eos = tcfg ? token_content(json_object_get(tcfg, "eos_token")) : NULL;
        const char *first = json_string_value(
            json_object_get(json_object_get(json_array_get(single, 0), "SpecialToken"), "id"));
        const char *last = json_string_value(json_object_get(
            json_object_get(json_array_get(single, json_array_size(single) - 1), "SpecialToken"),
            "id"));
        if (first && add_bos < 0) add_bos = bos && !strcmp(first, bos);
        if (last && add_eos < 0) add_eos = eos && !strcmp(last, eos);
    }
    if (add_bos >= 0) SW_TRY(sw_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", add_bos));
    if (add_eos >= 0) SW_TRY(sw_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", add_eos));
    return 0;
}

static int set_chat_template(struct sw_gguf_writer *w, const char *dir, const json_t *tcfg) {
    const json_t *ct = tcfg ? json_object_get(tcfg, "chat_template") : NULL;
    if (json_is_string(ct))
        return sw_gguf_set_str(w, "tokenizer.chat_template", json_string_value(ct));
    if (json_is_array(ct)) {
        /* named templates: "default" is the main one, the others go under their names */
        size_t i;
        const json_t *e;
        json_array_foreach(ct, i, e) {
            const char *name = json_string_value(json_object_get(e, "name"));
            const char *tmpl = json_string_value(json_object_get(e, "template"));
            if (!name || !tmpl) continue;
            char key[160];
            if (!strcmp(name, "default"))
                snprintf(key, sizeof key, "tokenizer.chat_template");
            else
                snprintf(key, sizeof key, "tokenizer.chat_template.%.100s", name);
            SW_TRY(sw_gguf_set_str(w, key, tmpl));
        }
        return 0;
    }
    char *p = sw_path_join(dir, "chat_template.jinja"), *text = NULL;
    size_t len = 0;
    int rc = p ? sw_read_file(p, &text, &len, 0) : sw_err_set(SW_ENOMEM, "out of memory");
    free(p);
    if (rc == SW_ENOTFOUND) {
        sw_err_clear();
        return 0;
    }
    if (rc == 0) rc = sw_gguf_set_str_n(w, "tokenizer.chat_template", text, len);
    free(text);
    return rc;
}

int sw_gguf_add_vocab(struct sw_gguf_writer *w, const char *dir, int64_t n_vocab,
                      struct sw_gguf_vocab_info *info) {
    int rc = 0;
    json_t *tok = NULL, *tcfg = NULL, *cfg = NULL;
    struct vocab v = {0};
    memset(info, 0, sizeof *info);
    char *tpath = sw_path_join(dir, "tokenizer.json");
    tok = tpath ? load_json(dir, "tokenizer.json", 0, 0, &rc) : NULL;
    if (rc == 0 && !tok) tok = load_json(dir, "tokenizer.json.gz", 0, 0, &rc);
    if (rc == 0 && !tok)
        rc = sw_err_set(SW_ENOTFOUND,
                        "%s: no tokenizer.json (GGUF needs the tokenizer; "
                        "sw reads Hugging Face tokenizer.json only)",
                        dir);
    if (rc == 0) tcfg = load_json(dir, "tokenizer_config.json", 0, JSON_DECODE_INT_AS_REAL, &rc);
    if (rc == 0) cfg = load_json(dir, "config.json", 0, 0, &rc);
    json_t *model = tok ? json_object_get(tok, "model") : NULL;
    const char *mtype = json_string_value(json_object_get(model, "type"));
    if (rc == 0 && (!mtype || strcmp(mtype, "BPE") != 0))
        rc = sw_err_set(SW_EUNSUPPORTED,
                        "%s: tokenizer model %s is not supported for GGUF export "
                        "(BPE only)",
                        tpath, mtype ? mtype : "(none)");
    int spm = json_is_true(json_object_get(model, "byte_fallback"));
    json_t *vocab = json_object_get(model, "vocab");
    if (rc == 0 && !json_is_object(vocab))
        rc = sw_err_set(SW_EFORMAT, "%s: model.vocab is not an object", tpath);
    if (rc == 0) {
        v.n = n_vocab;
        v.tok = calloc((size_t)n_vocab, sizeof *v.tok);
        v.type = calloc((size_t)n_vocab, sizeof *v.type);
        v.score = spm ? calloc((size_t)n_vocab, sizeof *v.score) : NULL;
        if (!v.tok || !v.type || (spm && !v.score)) rc = sw_err_set(SW_ENOMEM, "out of memory");
    }
    const char *k;
    json_t *val;
    if (rc == 0) {
        json_object_foreach(vocab, k, val) {
            int64_t id = json_integer_value(val);
            if (!json_is_integer(val) || id < 0 || id >= n_vocab) {
                rc = sw_err_set(SW_EFORMAT,
                                "%s: token '%.40s' has id %lld, outside the model's %lld "
                                "embedding rows",
                                tpath, k, (long long)id, (long long)n_vocab);
                break;
            }
            free(v.tok[id]);
            if (!(v.tok[id] = strdup(k))) {
                rc = sw_err_set(SW_ENOMEM, "out of memory");
                break;
            }
            v.type[id] = spm && is_byte_token(k) ? TT_BYTE : TT_NORMAL;
        }
    }
    const json_t *added = tok ? json_object_get(tok, "added_tokens") : NULL;
    size_t i;
    const json_t *a;
    if (rc == 0) {
        json_array_foreach(added, i, a) {
            const char *c = json_string_value(json_object_get(a, "content"));
            int64_t id = json_integer_value(json_object_get(a, "id"));
            if (!c || !json_is_integer(json_object_get(a, "id"))) continue;
            if (id < 0 || id >= n_vocab) {
                rc = sw_err_set(SW_EFORMAT,
                                "%s: added token '%.40s' has id %lld, outside the model's "
                                "%lld embedding rows",
                                tpath, c, (long long)id, (long long)n_vocab);
                break;
            }
            free(v.tok[id]);
            if (!(v.tok[id] = strdup(c))) {
                rc = sw_err_set(SW_ENOMEM, "out of memory");
                break;
            }
            int special = json_is_true(json_object_get(a, "special"));
            if (spm)
                v.type[id] = special ? TT_CONTROL : TT_USER;
            else
                v.type[id] = special || looks_special(c) ? TT_CONTROL : TT_USER;
            if (spm) v.score[id] = -1000.0f;
            info->n_added++;
        }
    }
    for (int64_t id = 0; rc == 0 && id < n_vocab; id++) {
        if (v.tok[id]) continue;
        char pad[40];
        snprintf(pad, sizeof pad, "[PAD%lld]", (long long)id);
        if (!(v.tok[id] = strdup(pad))) rc = sw_err_set(SW_ENOMEM, "out of memory");
        v.type[id] = TT_UNUSED;
        if (spm) v.score[id] = -1000.0f;
        info->n_unused++;
    }
    const json_t *merges = json_object_get(model, "merges");
    if (rc == 0 && spm) {
        /* score = −rank of the merge that forms the token (the lowest rank when several do) */
        json_t *rank = json_object();
        json_array_foreach(merges, i, a) {
            char *r = merge_result(a);
            if (r && !json_object_get(rank, r))
                json_object_set_new(rank, r, json_integer((json_int_t)i));
            free(r);
        }
        json_object_foreach(vocab, k, val) {
            const json_t *rk = json_object_get(rank, k);
            int64_t id = json_integer_value(val);
            if (rk && v.type[id] == TT_NORMAL) v.score[id] = -(float)json_integer_value(rk) - 1.0f;
        }
        json_decref(rank);
    }
    if (rc == 0) rc = sw_gguf_set_str(w, "tokenizer.ggml.model", spm ? "llama" : "gpt2");
    if (rc == 0) rc = sw_gguf_set_str(w, "tokenizer.ggml.pre", spm ? "default" : pre_name(tok));
    if (rc == 0)
        rc = sw_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.tok, NULL,
                                 (size_t)v.n);
    if (rc == 0 && spm)
        rc = sw_gguf_set_arr(w, "tokenizer.ggml.scores", SW_GGUF_FLOAT32, v.score, (size_t)v.n);
    if (rc == 0)
        rc = sw_gguf_set_arr(w, "tokenizer.ggml.token_type", SW_GGUF_INT32, v.type, (size_t)v.n);
    if (rc == 0 && !spm) {
        size_t nm = json_array_size(merges);
        char **mt = calloc(nm ? nm : 1, sizeof *mt);
        if (!mt) rc = sw_err_set(SW_ENOMEM, "out of memory");
        for (size_t m = 0; rc == 0 && m < nm; m++)
            if (!(mt[m] = merge_text(json_array_get(merges, m))))
                rc =
                    sw_err_set(SW_EFORMAT, "%s: merge %zu is neither \"a b\" nor [a, b]", tpath, m);
        if (rc == 0)
            rc = sw_gguf_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)mt, NULL, nm);
        for (size_t m = 0; mt && m < nm; m++)
            free(mt[m]);
        free(mt);
        info->n_merges = (int64_t)nm;
    }
    if (rc == 0 && spm)
        rc = sw_gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", space_prefix(tok));
    if (rc == 0) rc = set_special_ids(w, tok, tcfg, cfg, n_vocab);
    if (rc == 0) rc = set_chat_template(w, dir, tcfg);
    info->spm = spm;
    info->n_tokens = v.n;
    vocab_release(&v);
    json_decref(tok), json_decref(tcfg), json_decref(cfg);
    free(tpath);
    return rc;
}
