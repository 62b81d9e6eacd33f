/* generate_run — the command behind `sw-eval generate`: model (+ adapter) and tokenizer
 * opened once, prompts from --prompt (raw text), --query (one user message) or --messages (a
 * dataset file, one conversation per row, rendered with the chat template and
 * add_generation_prompt), each generated with sw_generate and printed as text or JSON lines.
 *
 * Dataset rows made for training end with the assistant's answer; rows made for inference end
 * with the user's turn. Both are accepted: a final assistant turn is dropped (and reported as
 * "reference" in --json output), and a row without one gets an empty one before the dataset
 * reader's conversion (which insists on it) and loses it again after. */
#include "eval.h"

#include "sw_eval.h"

#include "sw_conv.h"
#include "sw_dataset.h"
#include "sw_err.h"
#include "sw_log.h"
#include "sw_template.h"
#include "sw_tokenizer.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sw_generate_encode_chat(const struct sw_tokenizer *tok, const struct sw_template *t,
                            struct sw_conv *c, const char *system, const char *where,
                            int32_t **ids, int64_t *n, char **reference) {
    *ids = NULL;
    *n = 0;
    if (reference) *reference = NULL;
    if (c->text)
        return sw_err_set(SW_EFORMAT, "%s: a plain-text row: use --prompt for raw text", where);
    if (c->n_turns > 0 && c->turns[c->n_turns - 1].role == SW_ROLE_ASSISTANT) {
        struct sw_turn *last = &c->turns[c->n_turns - 1];
        if (reference) *reference = last->content, last->content = NULL;
        free(last->content), last->content = NULL;
        free(last->reasoning), last->reasoning = NULL;
        for (size_t i = 0; i < last->n_tool_calls; i++)
            free(last->tool_calls[i].name), free(last->tool_calls[i].arguments);
        free(last->tool_calls), last->tool_calls = NULL, last->n_tool_calls = 0;
        c->n_turns--;
    }
    if (c->n_turns == 0) return sw_err_set(SW_EFORMAT, "%s: the conversation has no turns", where);
    struct sw_template_opts o = {.system = system, .loss = SW_LOSS_DEFAULT,
                                 .add_generation_prompt = 1};
    struct sw_template_tokens tk;
    struct sw_template_scratch scr;
    struct sw_template_sample s;
    memset(&scr, 0, sizeof scr);
    memset(&s, 0, sizeof s);
    int rc = sw_template_tokens_from(tok, &tk);
    if (rc == 0) rc = sw_template_encode(t, tok, c, &o, &tk, where, &scr, &s);
    if (rc == 0) {
        *ids = malloc((s.n ? s.n : 1) * sizeof(int32_t));
        if (!*ids) rc = sw_err_set(SW_ENOMEM, "out of memory");
        else memcpy(*ids, s.ids, s.n * sizeof(int32_t)), *n = (int64_t)s.n;
    }
    sw_template_sample_release(&s);
    sw_template_scratch_release(&scr);
    if (rc < 0 && reference) free(*reference), *reference = NULL;
    return rc;
}

/* Give a row meant for inference the empty final answer the dataset conversion requires.
 * Returns a new reference to the (possibly amended) copy of row; *added says whether. */
static json_t *with_answer_slot(const json_t *row, int *added) {
    json_t *r = json_deep_copy(row);
    *added = 0;
    if (!r) return NULL;
    const char *mkeys[] = {"messages", "conversations", "conversation"};
    for (size_t i = 0; i < 3; i++) {
        json_t *m = json_object_get(r, mkeys[i]);
        if (!json_is_array(m)) continue;
        json_t *last = json_array_get(m, json_array_size(m) - 1);
        const char *role = json_string_value(json_object_get(last, "role"));
        const char *from = json_string_value(json_object_get(last, "from"));
        int sharegpt = !role && from;
        const char *who = role ? role : from;
        if (who && (strcmp(who, "assistant") == 0 || strcmp(who, "gpt") == 0)) return r;
        json_t *t = sharegpt ? json_pack("{s:s,s:s}", "from", "gpt", "value", "")
                             : json_pack("{s:s,s:s}", "role", "assistant", "content", "");
        if (t) json_array_append_new(m, t), *added = 1;
        return r;
    }
    const char *resp[] = {"response", "answer", "output", "completion", "solution", "target"};
    for (size_t i = 0; i < 6; i++)
        if (json_object_get(r, resp[i])) return r;
    if (json_object_get(r, "instruction") && !json_object_get(r, "query"))
        json_object_set_new(r, "output", json_string(""));
    else
        json_object_set_new(r, "response", json_string(""));
    *added = 1;
    return r;
}

struct gen_ctx {
    const struct sw_generate_opts *o;
    struct sw_eval_model *em;
    struct sw_tokenizer *tok;
    const struct sw_template *tpl;
    struct sw_generate_params params;
    FILE *out;
    long index;
};

static int write_err(void) {
    if (errno == 0) errno = EIO;
    return sw_err_errno("cannot write to stdout");
}

/* Generate after ids and print the result. */
static int generate_one(struct gen_ctx *x, const int32_t *ids, int64_t n, const char *reference) {
    int32_t *gen = NULL;
    int64_t ng = 0;
    enum sw_finish fin;
    SW_TRY(sw_generate(x->em, ids, n, &x->params, &gen, &ng, &fin, NULL, NULL));
    char *text = NULL;
    size_t tlen = 0;
    int rc = sw_tokenizer_decode(x->tok, gen, (size_t)ng, x->o->skip_special, &text, &tlen);
    if (rc < 0) goto out;
    errno = 0;
    if (x->o->json) {
        json_t *j = json_object(), *a = json_array();
        if (!j || !a) {
            json_decref(j), json_decref(a);
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            goto out;
        }
        for (int64_t i = 0; i < ng; i++) json_array_append_new(a, json_integer(gen[i]));
        json_object_set_new(j, "index", json_integer(x->index));
        json_object_set_new(j, "prompt_tokens", json_integer(n));
        json_object_set_new(j, "ids", a);
        json_object_set_new(j, "text", json_stringn(text, tlen));
        json_object_set_new(j, "finish_reason",
                            json_string(fin == SW_FINISH_STOP ? "stop" : "length"));
        if (reference) json_object_set_new(j, "reference", json_string(reference));
        int bad = json_dumpf(j, x->out, JSON_COMPACT | JSON_ENSURE_ASCII) != 0;
        json_decref(j);
        if (bad || fputc('\n', x->out) == EOF) rc = write_err();
    } else {
        if (fwrite(text, 1, tlen, x->out) != tlen || fputc('\n', x->out) == EOF) rc = write_err();
    }
    if (rc == 0 && fflush(x->out) != 0) rc = write_err();
    x->index++;
out:
    free(text);
    free(gen);
    return rc;
}

static int need_template(struct gen_ctx *x) {
    if (x->tpl) return 0;
    return sw_err_set(SW_EUSAGE, "the tokenizer's chat_template is missing or not recognised: "
                      "pass --template (%s)", sw_template_names());
}

static int run_messages(struct gen_ctx *x) {
    struct sw_dataset_reader *r = NULL;
    SW_TRY(need_template(x));
    SW_TRY(sw_dataset_reader_open(&r, x->o->messages));
    int rc = 0;
    for (;;) {
        json_t *row = NULL;
        long line = 0;
        int got = sw_dataset_reader_next(r, &row, &line);
        if (got <= 0) {
            rc = got;
            break;
        }
        char where[512];
        snprintf(where, sizeof where, "%s:%ld", sw_dataset_reader_name(r), line);
        int added;
        json_t *row2 = with_answer_slot(row, &added);
        json_decref(row);
        if (!row2) {
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            break;
        }
        struct sw_conv c;
        enum sw_dataset_format f = sw_dataset_detect(row2);
        if (f == SW_DSFMT_PREFERENCE || f == SW_DSFMT_KTO) f = SW_DSFMT_MESSAGES;
        rc = f == SW_DSFMT_AUTO ? sw_err_set(SW_EFORMAT, "%s: not a conversation (messages, "
                                             "conversations, query or instruction)", where)
                                : sw_dataset_row_to_conv(row2, f, where, &c);
        json_decref(row2);
        if (rc < 0) break;
        int32_t *ids = NULL;
        int64_t n = 0;
        char *ref = NULL;
        rc = sw_generate_encode_chat(x->tok, x->tpl, &c, x->o->system, where, &ids, &n, &ref);
        sw_conv_release(&c);
        if (rc == 0) rc = generate_one(x, ids, n, added ? NULL : ref);
        if (rc < 0 && rc != SW_EPIPE) sw_err_wrap(rc, "%s", where);
        free(ids), free(ref);
        if (rc < 0) break;
    }
    sw_dataset_reader_free(r);
    return rc;
}

static int run_query(struct gen_ctx *x) {
    SW_TRY(need_template(x));
    struct sw_conv c;
    sw_conv_init(&c);
    int32_t *ids = NULL;
    int64_t n = 0;
    int rc = sw_conv_add(&c, SW_ROLE_USER, x->o->query);
    if (rc == 0) rc = sw_generate_encode_chat(x->tok, x->tpl, &c, x->o->system, "--query", &ids,
                                              &n, NULL);
    sw_conv_release(&c);
    if (rc == 0) rc = generate_one(x, ids, n, NULL);
    free(ids);
    return rc;
}

static int run_prompt(struct gen_ctx *x) {
    int32_t *ids = NULL;
    size_t n = 0;
    SW_TRY(sw_tokenizer_encode(x->tok, x->o->prompt, strlen(x->o->prompt), 1, &ids, &n));
    int rc = n == 0 ? sw_err_set(SW_EINVAL, "--prompt encodes to no tokens") : 0;
    if (rc == 0) rc = generate_one(x, ids, (int64_t)n, NULL);
    free(ids);
    return rc;
}

int sw_generate_run(const struct sw_generate_opts *o, FILE *out) {
    int given = !!o->prompt + !!o->query + !!o->messages;
    if (given != 1)
        return sw_err_set(SW_EUSAGE, "give exactly one of --prompt, --query and --messages");
    if (o->template_name && !sw_template_get(o->template_name))
        return sw_err_set(SW_EUSAGE, "unknown --template '%s' (%s)", o->template_name,
                          sw_template_names());
    struct gen_ctx x = {.o = o, .out = out};
    int rc = sw_tokenizer_load(o->tokenizer ? o->tokenizer : o->model, &x.tok);
    if (rc < 0) return sw_err_wrap(rc, "tokenizer");
    SW_TRY_GOTO(rc, sw_eval_model_open(o->model, o->adapter, &x.em), out);
    x.tpl = o->template_name ? sw_template_get(o->template_name)
                             : sw_template_detect(sw_tokenizer_chat_template(x.tok));
    sw_generate_params_resolve(&o->req, x.em->hf, sw_tokenizer_special_id(x.tok, SW_TOK_EOS),
                               &x.params);
    if (x.params.n_eos == 0)
        sw_warn("no EOS id in generation_config.json, config.json or the tokenizer: generating "
                "max_new_tokens (%lld) every time", (long long)x.params.max_new_tokens);
    if (o->prompt) rc = run_prompt(&x);
    else if (o->query) rc = run_query(&x);
    else rc = run_messages(&x);
out:
    sw_eval_model_close(x.em);
    sw_tokenizer_free(x.tok);
    return rc;
}
