/* generate_run — the command behind `sw-eval generate`: model (+ adapter) and tokenizer
 * opened once, prompts from --prompt (raw text), --query (one user message) or --messages (a
 * dataset file, one conversation per row, rendered with the chat template and
 * add_generation_prompt), generated on the inference engine (lib/infer/sw_engine.h: KV cache,
 * continuous batching of up to WINDOW prompts at a time) and printed in input order as text or
 * JSON lines.
 *
 * Dataset rows made for training end with the assistant's answer; rows made for inference end
 * with the user's turn. Both are accepted: a final assistant turn is dropped (and reported as
 * "reference" in --json output), and a row without one gets an empty one before the dataset
 * reader's conversion (which insists on it) and loses it again after. */
#include "eval.h"

#include "sw_conv.h"
#include "sw_dataset.h"
#include "sw_engine.h"
#include "sw_err.h"
#include "sw_io.h"
#include "sw_log.h"
#include "sw_template.h"
#include "sw_tokenizer.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sw_generate_encode_chat(const struct sw_tokenizer *tok, const struct sw_template *t,
                            struct sw_conv *c, const char *system, const char *where, int32_t **ids,
                            int64_t *n, char **reference) {
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
    struct sw_template_opts o = {
        .system = system, .loss = SW_LOSS_DEFAULT, .add_generation_prompt = 1};
    struct sw_template_tokens tk;
    struct sw_template_scratch scr;
    struct sw_template_sample s;
    memset(&scr, 0, sizeof scr);
    memset(&s, 0, sizeof s);
    int rc = sw_template_tokens_from(tok, &tk);
    if (rc == 0) rc = sw_template_encode(t, tok, c, &o, &tk, where, &scr, &s);
    if (rc == 0) {
        *ids = malloc((s.n ? s.n : 1) * sizeof(int32_t));
        if (!*ids)
            rc = sw_err_set(SW_ENOMEM, "out of memory");
        else
            memcpy(*ids, s.ids, s.n * sizeof(int32_t)), *n = (int64_t)s.n;
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

/* One prompt in flight: its ids, the engine's output, and whether it finished. */
struct slot {
    long index;
    int64_t n_prompt;
    char *reference;
    int32_t *gen;
    int64_t ng, cap;
    enum sw_finish_reason fin;
    int done, oom;
};

/* Prompts are submitted as they are read, up to WINDOW in flight (continuous batching runs them
 * together), and printed in input order as they complete. */
#define WINDOW 64

struct gen_ctx {
    const struct sw_generate_opts *o;
    struct sw_engine *e;
    const struct sw_tokenizer *tok;
    const struct sw_template *tpl;
    struct sw_sampling_params params;
    FILE *out;
    struct slot ring[WINDOW];
    long head, tail; /* slots [head, tail) in flight or waiting to be printed */
};

static int on_event(void *user, const struct sw_engine_event *ev) {
    struct slot *s = user;
    if (ev->token >= 0) {
        if (s->ng == s->cap) {
            int64_t cap = s->cap ? 2 * s->cap : 64;
            int32_t *g = realloc(s->gen, (size_t)cap * sizeof(int32_t));
            if (!g) {
                s->oom = 1;
                return 1;
            }
            s->gen = g, s->cap = cap;
        }
        s->gen[s->ng++] = ev->token;
    }
    if (ev->finish != SW_FINISH_NONE) s->fin = ev->finish;
    if (ev->request_done) s->done = 1;
    return 0;
}

static int write_err(void) {
    if (errno == 0) errno = EIO;
    return sw_err_errno("cannot write to stdout");
}

/* Text mode keeps its promise of one line per prompt: a backslash prints as \\, a newline as
 * \n, a carriage return as \r and a tab as \t (JSON's escapes, so the text reads back with
 * e.g. printf '%b'; --json gives the exact text). */
static int write_escaped(FILE *out, const char *text, size_t n) {
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *esc = text[i] == '\\'   ? "\\\\"
                          : text[i] == '\n' ? "\\n"
                          : text[i] == '\r' ? "\\r"
                          : text[i] == '\t' ? "\\t"
                                            : NULL;
        if (!esc) continue;
        if (fwrite(text + run, 1, i - run, out) != i - run || fputs(esc, out) == EOF) return -1;
        run = i + 1;
    }
    return fwrite(text + run, 1, n - run, out) == n - run ? 0 : -1;
}

/* Print a finished slot. */
static int print_slot(struct gen_ctx *x, const struct slot *s) {
    if (s->oom) return sw_err_set(SW_ENOMEM, "out of memory");
    if (s->fin == SW_FINISH_ERROR || s->fin == SW_FINISH_ABORT)
        return sw_err_set(SW_EDEVICE, "generation of prompt %ld failed in the engine", s->index);
    char *text = NULL;
    size_t tlen = 0;
    SW_TRY(sw_tokenizer_decode(x->tok, s->gen, (size_t)s->ng, x->o->skip_special, &text, &tlen));
    int rc = 0;
    errno = 0;
    if (x->o->json) {
        json_t *j = json_object(), *a = json_array();
        if (!j || !a) {
            json_decref(j), json_decref(a);
            free(text);
            return sw_err_set(SW_ENOMEM, "out of memory");
        }
        for (int64_t i = 0; i < s->ng; i++)
            json_array_append_new(a, json_integer(s->gen[i]));
        json_object_set_new(j, "index", json_integer(s->index));
        json_object_set_new(j, "prompt_tokens", json_integer(s->n_prompt));
        json_object_set_new(j, "ids", a);
        json_object_set_new(j, "text", json_stringn(text, tlen));
        json_object_set_new(j, "finish_reason", json_string(sw_finish_reason_name(s->fin)));
        if (s->reference) json_object_set_new(j, "reference", json_string(s->reference));
        int bad = json_dumpf(j, x->out, JSON_COMPACT | JSON_ENSURE_ASCII) != 0;
        json_decref(j);
        if (bad || fputc('\n', x->out) == EOF) rc = write_err();
    } else {
        if (write_escaped(x->out, text, tlen) < 0 || fputc('\n', x->out) == EOF) rc = write_err();
    }
    if (rc == 0 && fflush(x->out) != 0) rc = write_err();
    free(text);
    return rc;
}

/* One engine step, then print every finished slot at the head, in order. */
static int pump(struct gen_ctx *x, int step) {
    int rc = 0;
    if (step && x->head < x->tail) rc = sw_engine_step(x->e);
    while (rc >= 0 && x->head < x->tail && x->ring[x->head % WINDOW].done) {
        struct slot *s = &x->ring[x->head % WINDOW];
        rc = print_slot(x, s);
        free(s->gen), free(s->reference);
        memset(s, 0, sizeof(*s));
        x->head++;
    }
    return rc < 0 ? rc : 0;
}

/* Drain what is in flight (after an error too: rows before it still print, or are aborted
 * when printing failed). */
static int drain(struct gen_ctx *x, int rc) {
    while (x->head < x->tail) {
        if (rc < 0) { /* stop generating: abort what is in flight (callbacks run), then free */
            sw_engine_stop(x->e, 0);
            for (long i = x->head; i < x->tail; i++) {
                struct slot *s = &x->ring[i % WINDOW];
                free(s->gen), free(s->reference);
            }
            x->head = x->tail;
            break;
        }
        rc = pump(x, 1);
    }
    return rc;
}

/* Queue the prompt ids (taking reference); prints whatever finished meanwhile. */
static int generate_one(struct gen_ctx *x, const int32_t *ids, int64_t n, char *reference) {
    int rc = 0;
    while (rc == 0 && x->tail - x->head >= WINDOW)
        rc = pump(x, 1);
    if (rc < 0) {
        free(reference);
        return rc;
    }
    struct slot *s = &x->ring[x->tail % WINDOW];
    memset(s, 0, sizeof(*s));
    s->index = x->tail;
    s->n_prompt = n;
    s->reference = reference;
    rc = sw_engine_submit(x->e, ids, n, &x->params, x->o->adapter ? "adapter" : NULL, on_event, s,
                          NULL);
    if (rc < 0) {
        free(reference);
        s->reference = NULL;
        return rc;
    }
    x->tail++;
    return pump(x, 0);
}

static int need_template(struct gen_ctx *x) {
    if (x->tpl) return 0;
    return sw_err_set(SW_EUSAGE,
                      "the tokenizer's chat_template is missing or not recognised: "
                      "pass --template (%s)",
                      sw_template_names());
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
        rc = f == SW_DSFMT_AUTO ? sw_err_set(SW_EFORMAT,
                                             "%s: not a conversation (messages, "
                                             "conversations, query or instruction)",
                                             where)
                                : sw_dataset_row_to_conv(row2, f, where, &c);
        json_decref(row2);
        if (rc < 0) break;
        int32_t *ids = NULL;
        int64_t n = 0;
        char *ref = NULL;
        rc = sw_generate_encode_chat(x->tok, x->tpl, &c, x->o->system, where, &ids, &n, &ref);
        sw_conv_release(&c);
        if (rc == 0) {
            rc = generate_one(x, ids, n, added ? NULL : ref);
            if (!added) ref = NULL; /* taken */
        }
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
    if (rc == 0)
        rc = sw_generate_encode_chat(x->tok, x->tpl, &c, x->o->system, "--query", &ids, &n, NULL);
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

/* The request's sampling parameters from the command line, falling back on the model's
 * generation_config.json as transformers' generate() does (see struct sw_generate_request). */
static void resolve_params(const struct sw_generate_request *rq,
                           const struct sw_generation_config *g, int has_g,
                           struct sw_sampling_params *p) {
    sw_sampling_params_init(p);
    int64_t gmax = has_g && g->max_new_tokens > 0 ? g->max_new_tokens : 128;
    p->max_tokens = rq->max_new_tokens >= 0 ? rq->max_new_tokens : gmax;
    if (rq->temperature > 0)
        p->temperature = rq->temperature;
    else if (rq->temperature < 0 && has_g && g->do_sample)
        p->temperature = g->temperature > 0 ? g->temperature : 1.0;
    else
        p->temperature = 0;
    p->top_k = (int)(rq->top_k >= 0 ? rq->top_k : has_g && g->top_k >= 0 ? g->top_k : 50);
    p->top_p = rq->top_p >= 0 ? rq->top_p : has_g && g->top_p > 0 ? g->top_p : 1.0;
    p->repetition_penalty = rq->repetition_penalty > 0           ? rq->repetition_penalty
                            : has_g && g->repetition_penalty > 0 ? g->repetition_penalty
                                                                 : 1.0;
    p->has_seed = 1;
    p->seed = rq->seed;
}

int sw_generate_run(const struct sw_generate_opts *o, FILE *out) {
    int given = !!o->prompt + !!o->query + !!o->messages;
    if (given != 1)
        return sw_err_set(SW_EUSAGE, "give exactly one of --prompt, --query and --messages");
    /* A hub id or a folder that is not a model: say so, rather than name the first file the
     * engine misses (the tokenizer). */
    if (o->model) SW_TRY(sw_model_dir_check("--model", o->model));
    if (o->template_name && !sw_template_get(o->template_name))
        return sw_err_set(SW_EUSAGE, "unknown --template '%s' (%s)", o->template_name,
                          sw_template_names());
    struct gen_ctx *x = calloc(1, sizeof(*x));
    if (!x) return sw_err_set(SW_ENOMEM, "out of memory");
    x->o = o;
    x->out = out;
    struct sw_engine_opts eo;
    sw_engine_opts_init(&eo);
    eo.model_dir = o->model;
    eo.tokenizer = o->tokenizer;
    eo.template_name = o->template_name;
    eo.device = o->device;
    eo.max_num_seqs = WINDOW;
    struct sw_engine_adapter ad = {"adapter", o->adapter};
    if (o->adapter) eo.adapters = &ad, eo.n_adapters = 1;
    int rc = sw_engine_open(&eo, &x->e);
    if (rc < 0) {
        free(x);
        return rc;
    }
    x->tok = sw_engine_tokenizer(x->e);
    x->tpl = sw_engine_template(x->e);
    const struct sw_generation_config *g = sw_engine_generation_config(x->e);
    int has_g = sw_engine_has_generation_config(x->e);
    resolve_params(&o->req, g, has_g, &x->params);
    x->params.skip_special_tokens = o->skip_special;
    int n_eos;
    sw_engine_eos_ids(x->e, &n_eos);
    if (n_eos == 0)
        sw_warn("no EOS id in generation_config.json, config.json or the tokenizer: generating "
                "max_new_tokens (%lld) every time",
                (long long)x->params.max_tokens);
    if (o->prompt)
        rc = run_prompt(x);
    else if (o->query)
        rc = run_query(x);
    else
        rc = run_messages(x);
    rc = drain(x, rc);
    sw_engine_close(x->e);
    free(x);
    return rc;
}
