/* sw_template_encode — tokenizing a rendered conversation into ids and labels, verifying that the
 * piecewise ids equal whole-text tokenization, and truncation (see sw_template.h).
 *
 * Why runs and not pieces: tokenizing each piece alone would split tokens at every loss boundary
 * ("assistant\n" + "Hello" is fine, but SentencePiece's "[/INST]" + " Hello" is not), giving ids
 * the model never saw. A run (the text between two special tokens) is tokenized whole, as the
 * tokenizer itself would after splitting off special tokens; only the labels need the boundary,
 * and the prefix-tokenization trick finds it without byte offsets from the tokenizer. */
#include "sw_template.h"

#include "sw_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sw_template_scratch_release(struct sw_template_scratch *s) {
    if (!s) return;
    sw_template_render_release(&s->render);
    sw_tok_ids_release(&s->run);
    sw_tok_ids_release(&s->prefix);
    free(s->buf);
    memset(s, 0, sizeof *s);
}

void sw_template_sample_release(struct sw_template_sample *s) {
    if (!s) return;
    free(s->ids);
    free(s->labels);
    memset(s, 0, sizeof *s);
}

static int sample_reserve(struct sw_template_sample *s, size_t n) {
    if (n <= s->cap) return 0;
    size_t cap = s->cap ? s->cap : 256;
    while (cap < n)
        cap *= 2;
    int32_t *a = realloc(s->ids, cap * sizeof *a);
    if (!a) return sw_err_set(SW_ENOMEM, "out of memory");
    s->ids = a;
    int32_t *b = realloc(s->labels, cap * sizeof *b);
    if (!b) return sw_err_set(SW_ENOMEM, "out of memory");
    s->labels = b;
    s->cap = cap;
    return 0;
}

static int sample_push(struct sw_template_sample *s, int32_t id, int trained) {
    SW_TRY(sample_reserve(s, s->n + 1));
    s->ids[s->n] = id;
    s->labels[s->n] = trained ? id : SW_LABEL_IGNORE;
    s->n++;
    return 0;
}

int sw_template_tokens_from(const struct sw_tokenizer *tok, struct sw_template_tokens *tk) {
    tk->bos = NULL;
    tk->eos = sw_tokenizer_special_token(tok, SW_TOK_EOS);
    int32_t *with = NULL, *without = NULL;
    size_t nw = 0, nwo = 0;
    int rc = sw_tokenizer_encode(tok, "a", 1, 1, &with, &nw);
    if (rc == 0) rc = sw_tokenizer_encode(tok, "a", 1, 0, &without, &nwo);
    /* ms-swift's auto_add_bos: whatever the post-processor puts before "a" is the BOS. */
    if (rc == 0 && nwo == 1 && nw >= 2 && with[1] == without[0])
        tk->bos = sw_tokenizer_id_to_token(tok, with[0], NULL);
    free(with);
    free(without);
    return rc;
}

/* Tokens of run[0, b) compared with the run's ids: the index of the first token of the part
 * after b. prev_trained says whether the part before b is trained (a straddling token is trained
 * if either side is: it goes to the trained side). */
static int boundary_token(const struct sw_tokenizer *tok, const char *run, size_t b,
                          const struct sw_tok_ids *all, int prev_trained, struct sw_tok_ids *pre,
                          size_t *out) {
    pre->n = 0;
    SW_TRY(sw_tokenizer_encode_append(tok, run, b, 0, pre));
    size_t k = 0;
    while (k < pre->n && k < all->n && pre->ids[k] == all->ids[k])
        k++;
    if (k < pre->n && prev_trained && k < all->n)
        k++; /* the straddling token belongs to the trained side */
    *out = k;
    return 0;
}

/* Tokenize pieces [p0, p1) (no special pieces) as one run and append ids and labels. */
static int encode_run(const struct sw_tokenizer *tok, const struct sw_template_render *r, size_t p0,
                      size_t p1, struct sw_template_scratch *s, struct sw_template_sample *out) {
    const char *run = r->text + r->pieces[p0].off;
    size_t run_len = r->pieces[p1 - 1].off + r->pieces[p1 - 1].len - r->pieces[p0].off;
    s->run.n = 0;
    SW_TRY(sw_tokenizer_encode_append(tok, run, run_len, 0, &s->run));
    size_t start_tok = 0;
    for (size_t p = p0; p < p1; p++) {
        int tr = r->pieces[p].trained;
        size_t end_tok = s->run.n;
        if (p + 1 < p1) {
            size_t b = r->pieces[p + 1].off - r->pieces[p0].off;
            SW_TRY(boundary_token(tok, run, b, &s->run, tr, &s->prefix, &end_tok));
            if (end_tok < start_tok) end_tok = start_tok;
        }
        SW_TRY(sample_reserve(out, out->n + (end_tok - start_tok)));
        for (size_t k = start_tok; k < end_tok; k++)
            sample_push(out, s->run.ids[k], tr);
        start_tok = end_tok;
    }
    return 0;
}

int sw_template_encode(const struct sw_template *t, const struct sw_tokenizer *tok,
                       const struct sw_conv *c, const struct sw_template_opts *o,
                       const struct sw_template_tokens *tk, const char *where,
                       struct sw_template_scratch *scratch, struct sw_template_sample *out) {
    out->n = 0;
    struct sw_template_render *r = &scratch->render;
    SW_TRY(sw_template_render(t, c, o, tk, where, r));
    size_t p = 0;
    while (p < r->n_pieces) {
        const struct sw_template_piece *pc = &r->pieces[p];
        if (pc->special) {
            int32_t id = sw_tokenizer_token_to_id(tok, r->text + pc->off, pc->len);
            if (id < 0)
                return sw_err_set(SW_ENOTFOUND,
                                  "template '%s': token '%.*s' is not in the tokenizer's "
                                  "vocabulary (wrong --template for this tokenizer?)",
                                  t ? sw_template_name(t) : "text", (int)pc->len,
                                  r->text + pc->off);
            SW_TRY(sample_push(out, id, pc->trained));
            p++;
            continue;
        }
        size_t q = p;
        while (q < r->n_pieces && !r->pieces[q].special)
            q++;
        SW_TRY(encode_run(tok, r, p, q, scratch, out));
        p = q;
    }
    if (out->n) out->labels[0] = SW_LABEL_IGNORE;
    return 0;
}

int sw_template_verify(const struct sw_tokenizer *tok, const struct sw_template_render *r,
                       const struct sw_template_sample *s, const char *where) {
    int32_t *ids = NULL;
    size_t n = 0;
    SW_TRY(sw_tokenizer_encode(tok, r->text, r->len, 0, &ids, &n));
    size_t k = 0;
    while (k < n && k < s->n && ids[k] == s->ids[k])
        k++;
    int rc = 0;
    if (k < n || k < s->n)
        rc = sw_err_set(SW_ECORRUPT,
                        "%s: template tokenization differs from whole-text tokenization "
                        "at token %zu (%d vs %d; %zu vs %zu tokens)",
                        where ? where : "conversation", k, k < s->n ? s->ids[k] : -1,
                        k < n ? ids[k] : -1, s->n, n);
    free(ids);
    return rc;
}

int sw_truncation_parse(const char *s, enum sw_truncation *out) {
    if (!strcmp(s, "delete")) return *out = SW_TRUNC_DELETE, 0;
    if (!strcmp(s, "left")) return *out = SW_TRUNC_LEFT, 0;
    if (!strcmp(s, "right")) return *out = SW_TRUNC_RIGHT, 0;
    return sw_err_set(SW_EINVAL, "unknown truncation_strategy '%s' (delete, left, right)", s);
}

int sw_template_truncate(struct sw_template_sample *s, size_t max_length, enum sw_truncation how) {
    if (max_length == 0 || s->n <= max_length) return 0;
    if (how == SW_TRUNC_DELETE) return 2;
    if (how == SW_TRUNC_LEFT) {
        size_t drop = s->n - max_length;
        memmove(s->ids, s->ids + drop, max_length * sizeof *s->ids);
        memmove(s->labels, s->labels + drop, max_length * sizeof *s->labels);
    }
    s->n = max_length;
    if (s->n) s->labels[0] = SW_LABEL_IGNORE;
    return 1;
}

size_t sw_template_sample_trained(const struct sw_template_sample *s) {
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        k += s->labels[i] != SW_LABEL_IGNORE;
    return k;
}
