/* sw_tok_post — post-processors: TemplateProcessing, BertProcessing and RobertaProcessing (both
 * are fixed templates: [CLS] $A [SEP] and <s> $A </s>), ByteLevel (only moves offsets, which sw
 * does not return, so it is dropped) and Sequence (applied in order). They only add special
 * tokens, so encode skips them when add_special_tokens is off, as `tokenizers` does. */
#include <stdlib.h>
#include <string.h>

#include "sw_err.h"
#include "sw_tok_internal.h"

static void sw_tok_tmpl_items_free(struct sw_tok_tmpl_item *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(v[i].ids);
    free(v);
}

void sw_tok_posts_release(struct sw_tok_posts *p) {
    for (size_t i = 0; i < p->n; i++) {
        sw_tok_tmpl_items_free(p->v[i].single, p->v[i].n_single);
        sw_tok_tmpl_items_free(p->v[i].pair, p->v[i].n_pair);
    }
    free(p->v);
    memset(p, 0, sizeof(*p));
}

static int sw_tok_post_push(struct sw_tok_posts *p, struct sw_tok_tmpl *t) {
    struct sw_tok_tmpl *v = realloc(p->v, (p->n + 1) * sizeof(*v));
    if (!v) {
        sw_tok_tmpl_items_free(t->single, t->n_single);
        sw_tok_tmpl_items_free(t->pair, t->n_pair);
        return sw_err_set(SW_ENOMEM, "tokenizer: out of memory");
    }
    p->v = v;
    p->v[p->n++] = *t;
    return 0;
}

static int sw_tok_item_special(struct sw_tok_tmpl_item *it, int32_t id) {
    it->seq = -1;
    it->ids = malloc(sizeof(int32_t));
    if (!it->ids) return sw_err_set(SW_ENOMEM, "tokenizer: out of memory");
    it->ids[0] = id;
    it->n_ids = 1;
    return 0;
}

/* ["<s>", 0] */
static int sw_tok_tok_pair(const struct sw_tok_jctx *c, const json_t *j, const char *path,
                           const char *key, int32_t *id) {
    json_t *v = sw_tok_jget(j, key);
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(json_array_get(v, 1)))
        return sw_tok_jerr(c, path, "\"%s\" must be [token, id]", key);
    long long x = json_integer_value(json_array_get(v, 1));
    if (x < 0 || x > INT32_MAX) return sw_tok_jerr(c, path, "\"%s\" id out of range", key);
    *id = (int32_t)x;
    return 0;
}

static int sw_tok_template_list(const struct sw_tok_jctx *c, const json_t *list,
                                const json_t *specials, const char *path,
                                struct sw_tok_tmpl_item **out, size_t *n) {
    *out = NULL;
    *n = 0;
    if (!list) return 0;
    if (!json_is_array(list)) return sw_tok_jerr(c, path, "must be an array");
    size_t cnt = json_array_size(list);
    struct sw_tok_tmpl_item *v = calloc(cnt ? cnt : 1, sizeof(*v));
    if (!v) return sw_err_set(SW_ENOMEM, "tokenizer: out of memory");
    int rc = 0;
    for (size_t i = 0; i < cnt; i++) {
        const json_t *e = json_array_get(list, i);
        const json_t *sp = json_object_get(e, "SpecialToken");
        const json_t *sq = json_object_get(e, "Sequence");
        if (sq) {
            const char *id = json_string_value(json_object_get(sq, "id"));
            if (!id || (strcmp(id, "A") && strcmp(id, "B"))) {
                rc = sw_tok_jerr(c, path, "item %zu: Sequence id must be \"A\" or \"B\"", i);
                break;
            }
            v[i].seq = id[0] == 'A' ? 0 : 1;
        } else if (sp) {
            const char *id = json_string_value(json_object_get(sp, "id"));
            const json_t *st = id ? json_object_get(specials, id) : NULL;
            const json_t *ids = json_object_get(st, "ids");
            if (!id || !json_is_array(ids)) {
                rc = sw_tok_jerr(c, path, "item %zu: special token \"%s\" is not in special_tokens",
                                 i, id ? id : "?");
                break;
            }
            v[i].seq = -1;
            v[i].n_ids = json_array_size(ids);
            v[i].ids = malloc((v[i].n_ids ? v[i].n_ids : 1) * sizeof(int32_t));
            if (!v[i].ids) {
                rc = sw_err_set(SW_ENOMEM, "tokenizer: out of memory");
                break;
            }
            for (size_t k = 0; k < v[i].n_ids; k++) {
                json_int_t x = json_integer_value(json_array_get(ids, k));
                if (!json_is_integer(json_array_get(ids, k)) || x < 0 || x > INT32_MAX) {
                    rc = sw_tok_jerr(c, path, "special token \"%s\": bad id", id);
                    break;
                }
                v[i].ids[k] = (int32_t)x;
            }
            if (rc) break;
        } else {
            rc = sw_tok_jerr(c, path, "item %zu must be {\"SpecialToken\"} or {\"Sequence\"}", i);
            break;
        }
    }
    if (rc) {
        sw_tok_tmpl_items_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

int sw_tok_post_parse(struct sw_tokenizer *tok, const struct sw_tok_jctx *c, const json_t *j,
                      const char *path, struct sw_tok_posts *out) {
    const char *type;
    SW_TRY(sw_tok_jtype(c, j, path, &type));
    struct sw_tok_tmpl t;
    memset(&t, 0, sizeof(t));
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(j, "processors");
        if (!json_is_array(list))
            return sw_tok_jerr(c, path, "Sequence needs a \"processors\" array");
        for (size_t i = 0; i < json_array_size(list); i++) {
            char sub[256];
            snprintf(sub, sizeof(sub), "%s.processors[%zu]", path, i);
            SW_TRY(sw_tok_post_parse(tok, c, json_array_get(list, i), sub, out));
        }
        return 0;
    }
    if (!strcmp(type, "ByteLevel")) return 0;
    if (!strcmp(type, "TemplateProcessing")) {
        const json_t *specials = json_object_get(j, "special_tokens");
        char sub[256];
        snprintf(sub, sizeof(sub), "%s.single", path);
        SW_TRY(sw_tok_template_list(c, sw_tok_jget(j, "single"), specials, sub, &t.single,
                                    &t.n_single));
        snprintf(sub, sizeof(sub), "%s.pair", path);
        int rc = sw_tok_template_list(c, sw_tok_jget(j, "pair"), specials, sub, &t.pair, &t.n_pair);
        if (!rc && !t.single) { /* no single template: the sequence alone */
            t.single = calloc(1, sizeof(*t.single));
            t.n_single = 1;
            if (!t.single) rc = sw_err_set(SW_ENOMEM, "tokenizer: out of memory");
        }
        if (rc) {
            sw_tok_tmpl_items_free(t.single, t.n_single);
            sw_tok_tmpl_items_free(t.pair, t.n_pair);
            return rc;
        }
        return sw_tok_post_push(out, &t);
    }
    if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) {
        int32_t cls, sep;
        SW_TRY(sw_tok_tok_pair(c, j, path, "cls", &cls));
        SW_TRY(sw_tok_tok_pair(c, j, path, "sep", &sep));
        int roberta = type[0] == 'R';
        t.n_single = 3;
        t.n_pair = roberta ? 6 : 5;
        t.single = calloc(t.n_single, sizeof(*t.single));
        t.pair = calloc(t.n_pair, sizeof(*t.pair));
        int rc = (!t.single || !t.pair) ? sw_err_set(SW_ENOMEM, "tokenizer: out of memory") : 0;
        if (!rc) rc = sw_tok_item_special(&t.single[0], cls);
        if (!rc) rc = sw_tok_item_special(&t.single[2], sep);
        size_t k = 0;
        if (!rc) rc = sw_tok_item_special(&t.pair[k++], cls);
        if (!rc) t.pair[k++].seq = 0;
        if (!rc) rc = sw_tok_item_special(&t.pair[k++], sep);
        if (!rc && roberta) rc = sw_tok_item_special(&t.pair[k++], sep);
        if (!rc) t.pair[k++].seq = 1;
        if (!rc) rc = sw_tok_item_special(&t.pair[k++], sep);
        if (rc) {
            sw_tok_tmpl_items_free(t.single, t.single ? t.n_single : 0);
            sw_tok_tmpl_items_free(t.pair, t.pair ? t.n_pair : 0);
            return rc;
        }
        return sw_tok_post_push(out, &t);
    }
    return sw_err_set(SW_EUNSUPPORTED, "%s: %s: post_processor type \"%s\" is not supported",
                      c->file, path, type);
}

int sw_tok_post_apply(const struct sw_tok_posts *p, struct sw_tok_ids *ids,
                      struct sw_tok_ids *tmp) {
    for (size_t k = 0; k < p->n; k++) {
        const struct sw_tok_tmpl *t = &p->v[k];
        tmp->n = 0;
        for (size_t i = 0; i < t->n_single; i++) {
            const struct sw_tok_tmpl_item *it = &t->single[i];
            if (it->seq == 0)
                SW_TRY(sw_tok_ids_put(tmp, ids->ids, ids->n));
            else if (it->seq < 0)
                SW_TRY(sw_tok_ids_put(tmp, it->ids, it->n_ids));
        }
        struct sw_tok_ids x = *ids;
        *ids = *tmp;
        *tmp = x;
    }
    return 0;
}
