/* sw_openai_resp — OpenAI responses assembled from the engine's per-token events (sw_openai.h):
 * the streaming chunks (chat.completion.chunk / text_completion as server-sent events) or the
 * final chat.completion / text_completion object, with usage, finish_reason, vLLM's stop_reason,
 * logprobs in both API shapes, echo, and the reasoning split of <think> sections.
 *
 * Shapes follow OpenAI's API reference and vLLM's serving_chat.py / serving_completion.py where
 * OpenAI is silent: choice index = prompt · n + sequence; a stream opens with a
 * {"role": "assistant", "content": ""} delta per choice (chat) and closes with an optional
 * usage chunk (choices: []) and `data: [DONE]`; a -inf logprob is written as -9999.0; completions'
 * top_logprobs maps token text to logprob and includes the chosen token (so up to k + 1
 * entries); chat's top_logprobs lists exactly the k alternatives; token text is the single token
 * decoded (special tokens kept) and `bytes` its UTF-8 bytes; text_offset counts characters. */
#include "sw_openai.h"

#include "sw_err.h"
#include "sw_tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 helpers ----------------------------------------------------------------------------
 */

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0], cp;
    size_t k;
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0)
        k = 1, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0)
        k = 2, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0)
        k = 3, cp = c & 0x07;
    else
        return 0;
    if (k >= n) return 0;
    for (size_t j = 1; j <= k; j++) {
        if ((s[j] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[j] & 0x3F);
    }
    if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return k + 1;
}

/* A JSON string of s[0..n), each invalid byte replaced by U+FFFD (jansson refuses invalid UTF-8,
 * and a response must never fail over a token that is half of a character). */
static json_t *jstr(const char *s, size_t n) {
    if (!s || !n) return json_string("");
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t k = utf8_seq(u + i, n - i);
        if (!k || (k == 1 && u[i] == 0)) break;
        i += k;
    }
    if (i == n) return json_stringn_nocheck(s, n);
    struct sw_obuf b = {0};
    for (i = 0; i < n;) {
        size_t k = utf8_seq(u + i, n - i);
        if (k && !(k == 1 && u[i] == 0)) {
            if (sw_obuf_add(&b, s + i, k) < 0) break;
            i += k;
        } else {
            if (sw_obuf_add(&b, "\xEF\xBF\xBD", 3) < 0) break;
            i++;
        }
    }
    json_t *j = b.p ? json_stringn_nocheck(b.p, b.len) : json_string("");
    sw_obuf_release(&b);
    return j;
}

/* Characters (code points) in s[0..n), as Python's len() counts them. */
static int64_t utf8_chars(const char *s, size_t n) {
    int64_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* ---- reasoning --------------------------------------------------------------------------------
 */

static const char THINK_OPEN[] = "<think>", THINK_CLOSE[] = "</think>";

int sw_reasoning_mode_parse(const char *s, enum sw_reasoning_mode *out) {
    if (!s || !*s || strcmp(s, "none") == 0)
        *out = SW_REASONING_NONE;
    else if (strcmp(s, "qwen3") == 0)
        *out = SW_REASONING_QWEN3;
    else if (strcmp(s, "deepseek_r1") == 0)
        *out = SW_REASONING_DEEPSEEK_R1;
    else
        return sw_err_set(SW_EINVAL, "unknown reasoning parser '%s' (qwen3, deepseek_r1)", s);
    return 0;
}

static const char *find(const char *h, size_t n, const char *needle) {
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(h + i, needle, m) == 0) return h + i;
    return NULL;
}

void sw_reasoning_split(enum sw_reasoning_mode mode, const char *text, size_t len,
                        struct sw_reasoning_split *o) {
    memset(o, 0, sizeof *o);
    o->has_content = 1;
    o->content_len = len;
    if (mode == SW_REASONING_NONE) return;
    const char *open = find(text, len, THINK_OPEN);
    const char *close = find(text, len, THINK_CLOSE);
    if (mode == SW_REASONING_QWEN3 && (!open || !close)) return; /* all content */
    size_t start = 0;
    if (open) start = (size_t)(open - text) + sizeof THINK_OPEN - 1;
    close = find(text + start, len - start, THINK_CLOSE);
    if (!close) {
        if (mode == SW_REASONING_DEEPSEEK_R1) { /* no end yet: all reasoning */
            o->has_reasoning = 1, o->reasoning_off = start, o->reasoning_len = len - start;
            o->has_content = 0, o->content_len = 0;
        } else {
            o->content_off = start, o->content_len = len - start;
        }
        return;
    }
    size_t cend = (size_t)(close - text);
    o->has_reasoning = 1;
    o->reasoning_off = start;
    o->reasoning_len = cend - start;
    o->content_off = cend + sizeof THINK_CLOSE - 1;
    o->content_len = len - o->content_off;
    o->has_content = o->content_len > 0;
}

void sw_reasoning_stream_init(struct sw_reasoning_stream *s, enum sw_reasoning_mode mode) {
    memset(s, 0, sizeof *s);
    s->mode = mode;
    /* deepseek_r1: the <think> is often in the prompt, so the output starts inside it. */
    if (mode == SW_REASONING_DEEPSEEK_R1) s->state = 1;
}

/* Longest suffix of s[0..n) that is a proper prefix of tag. */
static size_t partial_tag(const char *s, size_t n, const char *tag) {
    size_t m = strlen(tag);
    for (size_t k = m - 1 < n ? m - 1 : n; k > 0; k--)
        if (memcmp(s + n - k, tag, k) == 0) return k;
    return 0;
}

int sw_reasoning_stream_feed(struct sw_reasoning_stream *s, const char *delta, size_t n, int final,
                             struct sw_obuf *reasoning, struct sw_obuf *content) {
    if (s->mode == SW_REASONING_NONE) return sw_obuf_add(content, delta, n);
    struct sw_obuf w = {0};
    int rc = sw_obuf_add(&w, s->hold, s->n_hold);
    if (rc == 0) rc = sw_obuf_add(&w, delta, n);
    s->n_hold = 0;
    const char *p = w.p ? w.p : "";
    size_t left = w.len;
    while (rc == 0 && left > 0) {
        if (s->state == 2) {
            rc = sw_obuf_add(content, p, left);
            break;
        }
        /* state 0 looks for <think> (text before it is content, as vLLM streams it); state 1
         * (inside, or deepseek before any tag) looks for </think> but also skips a <think>. */
        const char *tag = s->state == 0 ? THINK_OPEN : THINK_CLOSE;
        struct sw_obuf *dst = s->state == 0 ? content : reasoning;
        const char *hit = find(p, left, tag);
        if (s->state == 1 && s->mode == SW_REASONING_DEEPSEEK_R1) {
            const char *o = find(p, left, THINK_OPEN);
            if (o && (!hit || o < hit)) { /* drop a <think> the model wrote itself */
                rc = sw_obuf_add(dst, p, (size_t)(o - p));
                left -= (size_t)(o - p) + sizeof THINK_OPEN - 1;
                p = o + sizeof THINK_OPEN - 1;
                continue;
            }
        }
        if (hit) {
            rc = sw_obuf_add(dst, p, (size_t)(hit - p));
            left -= (size_t)(hit - p) + strlen(tag);
            p = hit + strlen(tag);
            s->state++;
            continue;
        }
        size_t keep = final ? 0 : partial_tag(p, left, tag);
        if (!final && s->state == 1 && s->mode == SW_REASONING_DEEPSEEK_R1) {
            size_t k2 = partial_tag(p, left, THINK_OPEN);
            if (k2 > keep) keep = k2;
        }
        rc = sw_obuf_add(dst, p, left - keep);
        memcpy(s->hold, p + left - keep, keep);
        s->n_hold = keep;
        break;
    }
    sw_obuf_release(&w);
    return rc;
}

/* ---- the assembler ----------------------------------------------------------------------------
 */

struct choice {
    int prompt;
    struct sw_obuf text; /* non-streaming: generated text */
    int64_t n_tokens;
    enum sw_finish_reason finish;
    int32_t stop_token;
    char *stop_str;
    json_t *lp;     /* non-streaming logprobs: chat content array, or completions
                       object {tokens, token_logprobs, top_logprobs, text_offset} */
    int64_t offset; /* completions: characters before the next token (text_offset) */
    struct sw_reasoning_stream rs;
    int echo_sent;
};

struct prompt {
    int32_t *ids;
    int64_t n;
    char *text; /* echo text */
    int set, done;
    int64_t cached;
    json_t *echo_lp; /* completions echo logprobs of the prompt (same object shape) */
};

struct sw_openai_resp {
    const struct sw_openai_request *r;
    struct sw_openai_resp_opts o;
    char *id, *model;
    int n_choices, n_prompts;
    struct choice *c;
    struct prompt *p;
    char *error;
};

int sw_openai_resp_new(const struct sw_openai_request *r, const struct sw_openai_resp_opts *o,
                       struct sw_openai_resp **out) {
    *out = NULL;
    struct sw_openai_resp *a = calloc(1, sizeof *a);
    if (!a) return sw_err_set(SW_ENOMEM, "out of memory");
    a->r = r;
    a->o = *o;
    a->n_prompts = r->kind == SW_OPENAI_CHAT ? 1 : r->n_prompts;
    int n = r->params.n > 0 ? r->params.n : 1;
    a->n_choices = a->n_prompts * n;
    a->id = strdup(o->id ? o->id : "");
    a->model = strdup(o->model ? o->model : "");
    a->c = calloc((size_t)a->n_choices, sizeof *a->c);
    a->p = calloc((size_t)(a->n_prompts > 0 ? a->n_prompts : 1), sizeof *a->p);
    if (!a->id || !a->model || !a->c || !a->p || a->n_prompts < 1) {
        sw_openai_resp_free(a);
        return sw_err_set(a->n_prompts < 1 ? SW_EINVAL : SW_ENOMEM, "cannot set up a response");
    }
    for (int i = 0; i < a->n_choices; i++) {
        a->c[i].prompt = i / n;
        a->c[i].stop_token = -1;
        sw_reasoning_stream_init(&a->c[i].rs,
                                 r->kind == SW_OPENAI_CHAT ? o->reasoning : SW_REASONING_NONE);
    }
    a->o.id = a->id;
    a->o.model = a->model;
    *out = a;
    return 0;
}

void sw_openai_resp_free(struct sw_openai_resp *a) {
    if (!a) return;
    for (int i = 0; a->c && i < a->n_choices; i++) {
        sw_obuf_release(&a->c[i].text);
        free(a->c[i].stop_str);
        json_decref(a->c[i].lp);
    }
    for (int i = 0; a->p && i < a->n_prompts; i++) {
        free(a->p[i].ids);
        free(a->p[i].text);
        json_decref(a->p[i].echo_lp);
    }
    free(a->c);
    free(a->p);
    free(a->id);
    free(a->model);
    free(a->error);
    free(a);
}

static int nomem(void) {
    return sw_err_set(SW_ENOMEM, "out of memory");
}

int sw_openai_resp_set_prompt(struct sw_openai_resp *a, int i, const int32_t *ids, int64_t n,
                              const char *text) {
    if (i < 0 || i >= a->n_prompts) return sw_err_set(SW_EINVAL, "prompt %d out of range", i);
    struct prompt *p = &a->p[i];
    free(p->ids), free(p->text);
    p->ids = malloc((size_t)(n > 0 ? n : 1) * sizeof *ids);
    if (!p->ids) return nomem();
    if (n) memcpy(p->ids, ids, (size_t)n * sizeof *ids);
    p->n = n;
    p->text = NULL;
    if (a->r->kind == SW_OPENAI_COMPLETION && a->r->echo) {
        size_t len = 0;
        if (text)
            p->text = strdup(text);
        else if (a->o.tok)
            SW_TRY(sw_tokenizer_decode(a->o.tok, ids, (size_t)n, 0, &p->text, &len));
        else
            p->text = strdup("");
        if (!p->text) return nomem();
    }
    p->set = 1;
    return 0;
}

/* The text of one token as vLLM writes it in logprobs (decoded alone, special tokens kept). */
static char *token_text(const struct sw_openai_resp *a, int32_t id, size_t *len) {
    char *s = NULL;
    *len = 0;
    if (!a->r->tokens_as_ids && a->o.tok && sw_tokenizer_decode(a->o.tok, &id, 1, 0, &s, len) == 0)
        return s;
    free(s);
    char buf[32];
    int n = snprintf(buf, sizeof buf, "token_id:%d", id);
    *len = (size_t)n;
    return strdup(buf);
}

static json_t *jlogprob(float lp) {
    double x = lp;
    if (!isfinite(x)) x = x < 0 || isnan(x) ? -9999.0 : 9999.0;
    if (x < -9999.0) x = -9999.0;
    return json_real(x);
}

static json_t *jbytes(const char *s, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_integer((unsigned char)s[i]));
    return a;
}

/* One chat logprobs content entry {token, logprob, bytes, top_logprobs}. */
static json_t *chat_lp_entry(const struct sw_openai_resp *a, const struct sw_token_logprobs *t) {
    size_t n;
    char *s = token_text(a, t->id, &n);
    json_t *e = json_object();
    if (!s || !e) {
        free(s);
        json_decref(e);
        return NULL;
    }
    json_object_set_new(e, "token", jstr(s, n));
    json_object_set_new(e, "logprob", jlogprob(t->logprob));
    json_object_set_new(e, "bytes", jbytes(s, n));
    free(s);
    json_t *top = json_array();
    int k = a->r->params.logprobs > 0 ? a->r->params.logprobs : 0;
    for (int j = 0; top && j < t->n_top && j < k; j++) {
        char *ts = token_text(a, t->top[j].id, &n);
        json_t *x = json_object();
        if (!ts || !x) {
            free(ts);
            json_decref(x);
            break;
        }
        json_object_set_new(x, "token", jstr(ts, n));
        json_object_set_new(x, "logprob", jlogprob(t->top[j].logprob));
        json_object_set_new(x, "bytes", jbytes(ts, n));
        free(ts);
        json_array_append_new(top, x);
    }
    json_object_set_new(e, "top_logprobs", top ? top : json_array());
    return e;
}

static json_t *comp_lp_new(void) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "tokens", json_array());
    json_object_set_new(o, "token_logprobs", json_array());
    json_object_set_new(o, "top_logprobs", json_array());
    json_object_set_new(o, "text_offset", json_array());
    return o;
}

/* Append one completions logprobs position to lp. t NULL: the first prompt token (no logprob);
 * id is then the token. *offset advances by the token's characters. */
static int comp_lp_add(const struct sw_openai_resp *a, json_t *lp, int32_t id,
                       const struct sw_token_logprobs *t, int k, int64_t *offset) {
    size_t n;
    char *s = token_text(a, t ? t->id : id, &n);
    if (!s) return nomem();
    json_array_append_new(json_object_get(lp, "tokens"), jstr(s, n));
    json_array_append_new(json_object_get(lp, "token_logprobs"),
                          t ? jlogprob(t->logprob) : json_null());
    json_array_append_new(json_object_get(lp, "text_offset"), json_integer(*offset));
    *offset += utf8_chars(s, n);
    json_t *top = t ? json_object() : json_null();
    if (t && top) {
        for (int j = 0; j < t->n_top && j < k; j++) {
            size_t m;
            char *ts = token_text(a, t->top[j].id, &m);
            if (!ts) break;
            json_t *key = jstr(ts, m);
            if (key && !json_object_get(top, json_string_value(key)))
                json_object_set_new(top, json_string_value(key), jlogprob(t->top[j].logprob));
            json_decref(key);
            free(ts);
        }
        json_t *key = jstr(s, n); /* the chosen token is always listed */
        if (key && !json_object_get(top, json_string_value(key)))
            json_object_set_new(top, json_string_value(key), jlogprob(t->logprob));
        json_decref(key);
    }
    json_array_append_new(json_object_get(lp, "top_logprobs"), top);
    free(s);
    return 0;
}

/* Append every position of src (a completions logprobs object) to dst. */
static void comp_lp_extend(json_t *dst, const json_t *src) {
    const char *keys[] = {"tokens", "token_logprobs", "top_logprobs", "text_offset"};
    for (int i = 0; i < 4; i++)
        json_array_extend(json_object_get(dst, keys[i]), json_object_get(src, keys[i]));
}

static const char *finish_name(enum sw_finish_reason f) {
    switch (f) {
    case SW_FINISH_STOP: return "stop";
    case SW_FINISH_LENGTH: return "length";
    case SW_FINISH_ABORT: return "abort";
    case SW_FINISH_ERROR: return "error";
    default: return NULL;
    }
}

static json_t *stop_reason(const struct sw_openai_resp *a, const struct choice *c) {
    if (c->finish != SW_FINISH_STOP) return json_null();
    if (c->stop_str) return json_string(c->stop_str);
    for (int i = 0; i < a->r->params.n_stop_token_ids; i++)
        if (a->r->stop_ids[i] == c->stop_token) return json_integer(c->stop_token);
    return json_null(); /* EOS: vLLM's stop_reason is None */
}

static void totals(const struct sw_openai_resp *a, int64_t *prompt, int64_t *completion,
                   int64_t *cached) {
    int64_t p = 0, c = 0, k = 0;
    for (int i = 0; i < a->n_prompts; i++)
        p += a->p[i].n, k += a->p[i].cached;
    for (int i = 0; i < a->n_choices; i++)
        c += a->c[i].n_tokens;
    *prompt = p, *completion = c, *cached = k;
}

static json_t *usage_json(const struct sw_openai_resp *a) {
    int64_t p, c, k;
    totals(a, &p, &c, &k);
    json_t *u = json_object();
    if (!u) return NULL;
    json_object_set_new(u, "prompt_tokens", json_integer(p));
    json_object_set_new(u, "completion_tokens", json_integer(c));
    json_object_set_new(u, "total_tokens", json_integer(p + c));
    if (k > 0) {
        json_t *d = json_object();
        json_object_set_new(d, "cached_tokens", json_integer(k));
        json_object_set_new(u, "prompt_tokens_details", d);
    }
    return u;
}

/* A chunk object around choices (a new array reference, stolen). */
static json_t *chunk_new(const struct sw_openai_resp *a, json_t *choices) {
    json_t *o = json_object();
    if (!o) {
        json_decref(choices);
        return NULL;
    }
    json_object_set_new(o, "id", json_string(a->id));
    json_object_set_new(
        o, "object",
        json_string(a->r->kind == SW_OPENAI_CHAT ? "chat.completion.chunk" : "text_completion"));
    json_object_set_new(o, "created", json_integer(a->o.created));
    json_object_set_new(o, "model", json_string(a->model));
    json_object_set_new(o, "choices", choices);
    if (a->r->continuous_usage) json_object_set_new(o, "usage", usage_json(a));
    return o;
}

#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(9))

/* "data: <o>\n\n" appended to out; o is consumed. */
static int sse(json_t *o, struct sw_obuf *out) {
    if (!o) return nomem();
    char *s = json_dumps(o, DUMP_FLAGS);
    json_decref(o);
    if (!s) return nomem();
    int rc = sw_obuf_str(out, "data: ");
    if (rc == 0) rc = sw_obuf_str(out, s);
    if (rc == 0) rc = sw_obuf_str(out, "\n\n");
    free(s);
    return rc;
}

int sw_openai_resp_stream_begin(struct sw_openai_resp *a, struct sw_obuf *out) {
    if (a->r->kind != SW_OPENAI_CHAT) return 0; /* completions' echo goes with the first event */
    json_t *choices = json_array();
    for (int i = 0; choices && i < a->n_choices; i++) {
        json_t *ch = json_object(), *d = json_object();
        json_object_set_new(d, "role", json_string("assistant"));
        json_object_set_new(d, "content", json_string(""));
        json_object_set_new(ch, "index", json_integer(i));
        json_object_set_new(ch, "delta", d);
        json_object_set_new(ch, "logprobs", json_null());
        json_object_set_new(ch, "finish_reason", json_null());
        json_array_append_new(choices, ch);
    }
    /* vLLM sends one role chunk per choice; one chunk per choice keeps clients that look only at
     * choices[0] of each chunk right. */
    int rc = 0;
    for (int i = 0; rc == 0 && i < a->n_choices; i++) {
        json_t *one = json_array();
        json_array_append(one, json_array_get(choices, (size_t)i));
        rc = sse(chunk_new(a, one), out);
    }
    json_decref(choices);
    return rc;
}

/* Characters before the first generated token of an echoing completions choice: the prompt
 * tokens' text when their logprobs are listed (offsets continue theirs), else the prompt text. */
static int64_t echo_end_offset(const struct prompt *p) {
    json_t *offs = p->echo_lp ? json_object_get(p->echo_lp, "text_offset") : NULL;
    size_t m = json_array_size(offs);
    if (!m) return p->text ? utf8_chars(p->text, strlen(p->text)) : 0;
    const char *last =
        json_string_value(json_array_get(json_object_get(p->echo_lp, "tokens"), m - 1));
    return json_integer_value(json_array_get(offs, m - 1)) +
           (last ? utf8_chars(last, strlen(last)) : 0);
}

/* The echo chunk of a completions choice (prompt text, prompt logprobs when asked). */
static int stream_echo(struct sw_openai_resp *a, int ci, struct sw_obuf *out) {
    struct choice *c = &a->c[ci];
    struct prompt *p = &a->p[c->prompt];
    c->echo_sent = 1;
    json_t *ch = json_object();
    if (!ch) return nomem();
    json_object_set_new(ch, "index", json_integer(ci));
    json_object_set_new(ch, "text", jstr(p->text ? p->text : "", p->text ? strlen(p->text) : 0));
    if (a->r->params.logprobs >= 0 && p->echo_lp)
        json_object_set(ch, "logprobs", p->echo_lp);
    else
        json_object_set_new(ch, "logprobs", json_null());
    c->offset = echo_end_offset(p);
    json_object_set_new(ch, "finish_reason", json_null());
    json_t *arr = json_array();
    json_array_append_new(arr, ch);
    return sse(chunk_new(a, arr), out);
}

/* Prompt logprobs of prompt i (completions echo): the first token with null, then the entries. */
static int store_prompt_lp(struct sw_openai_resp *a, int i, const struct sw_engine_event *ev) {
    struct prompt *p = &a->p[i];
    if (a->r->kind != SW_OPENAI_COMPLETION || !a->r->echo || a->r->params.logprobs < 0 ||
        p->echo_lp)
        return 0;
    json_t *lp = comp_lp_new();
    if (!lp) return nomem();
    int64_t off = 0;
    int k = a->r->params.logprobs;
    int rc = 0;
    if (p->n > 0) rc = comp_lp_add(a, lp, p->ids[0], NULL, k, &off);
    for (int64_t j = 0; rc == 0 && j < ev->n_prompt_logprobs; j++)
        rc = comp_lp_add(a, lp, -1, &ev->prompt_logprobs[j], k, &off);
    if (rc < 0) {
        json_decref(lp);
        return rc;
    }
    p->echo_lp = lp;
    return 0;
}

int sw_openai_resp_event(struct sw_openai_resp *a, int i, const struct sw_engine_event *ev,
                         struct sw_obuf *out) {
    if (i < 0 || i >= a->n_prompts || !a->p[i].set)
        return sw_err_set(SW_EINVAL, "event for prompt %d, which was not set up", i);
    int n = a->r->params.n > 0 ? a->r->params.n : 1;
    if (ev->index >= n) return sw_err_set(SW_EINVAL, "event for sequence %d of %d", ev->index, n);
    const int stream = a->r->stream && out;
    int rc = 0;
    if (ev->prompt_logprobs && ev->n_prompt_logprobs >= 0) SW_TRY(store_prompt_lp(a, i, ev));
    if (ev->finish == SW_FINISH_ERROR && ev->error && !a->error) {
        a->error = strdup(ev->error);
        if (!a->error) return nomem();
    }
    if (ev->index >= 0) {
        int ci = i * n + ev->index;
        struct choice *c = &a->c[ci];
        const int comp = a->r->kind == SW_OPENAI_COMPLETION;
        if (c->finish != SW_FINISH_NONE)
            return sw_err_set(SW_EINVAL, "event for choice %d after its finish", ci);
        if (ev->token >= 0) c->n_tokens++;
        if (ev->finish != SW_FINISH_NONE) {
            c->finish = ev->finish;
            c->stop_token = ev->stop_token;
            if (ev->stop_str && !(c->stop_str = strdup(ev->stop_str))) return nomem();
        }
        if (!stream) {
            /* non-streaming: text and logprobs accumulate */
            if (ev->text_len) SW_TRY(sw_obuf_add(&c->text, ev->text, ev->text_len));
            if (ev->logprobs && a->r->params.logprobs >= 0 && ev->token >= 0) {
                if (!c->lp) {
                    if (comp) {
                        c->lp = comp_lp_new();
                        struct prompt *p = &a->p[c->prompt];
                        c->offset = a->r->echo ? echo_end_offset(p) : 0;
                        /* the prompt's positions first; generated offsets follow on */
                        if (c->lp && a->r->echo && p->echo_lp) comp_lp_extend(c->lp, p->echo_lp);
                    } else {
                        c->lp = json_array();
                    }
                    if (!c->lp) return nomem();
                }
                if (comp)
                    SW_TRY(
                        comp_lp_add(a, c->lp, -1, ev->logprobs, a->r->params.logprobs, &c->offset));
                else
                    json_array_append_new(c->lp, chat_lp_entry(a, ev->logprobs));
            }
        } else {
            if (comp && a->r->echo && !c->echo_sent) SW_TRY(stream_echo(a, ci, out));
            json_t *ch = json_object();
            if (!ch) return nomem();
            json_object_set_new(ch, "index", json_integer(ci));
            /* one chunk per token, as vLLM sends them, even when the token adds no text yet
             * (half a UTF-8 character, a held-back stop-string prefix): clients count tokens
             * and time them by chunks */
            int has = ev->token >= 0;
            json_t *lp = json_null();
            if (ev->logprobs && a->r->params.logprobs >= 0 && ev->token >= 0) {
                if (comp) {
                    json_decref(lp);
                    lp = comp_lp_new();
                    if (!lp)
                        rc = nomem();
                    else
                        rc =
                            comp_lp_add(a, lp, -1, ev->logprobs, a->r->params.logprobs, &c->offset);
                } else {
                    json_decref(lp);
                    lp = json_object();
                    json_t *arr = json_array();
                    json_array_append_new(arr, chat_lp_entry(a, ev->logprobs));
                    json_object_set_new(lp, "content", arr);
                }
                has = 1;
            }
            if (comp) {
                json_object_set_new(ch, "text", jstr(ev->text ? ev->text : "", ev->text_len));
                has |= ev->text_len > 0;
            } else {
                struct sw_obuf rs = {0}, cs = {0};
                rc = rc ? rc
                        : sw_reasoning_stream_feed(&c->rs, ev->text ? ev->text : "", ev->text_len,
                                                   ev->finish != SW_FINISH_NONE, &rs, &cs);
                json_t *d = json_object();
                if (rs.len) json_object_set_new(d, "reasoning_content", jstr(rs.p, rs.len));
                if (cs.len || !rs.len) json_object_set_new(d, "content", jstr(cs.p, cs.len));
                has |= rs.len > 0 || cs.len > 0;
                sw_obuf_release(&rs), sw_obuf_release(&cs);
                json_object_set_new(ch, "delta", d);
            }
            json_object_set_new(ch, "logprobs", lp);
            const char *fin = finish_name(c->finish);
            json_object_set_new(ch, "finish_reason", fin ? json_string(fin) : json_null());
            if (fin) {
                json_object_set_new(ch, "stop_reason", stop_reason(a, c));
                has = 1;
            }
            if (rc == 0 && has) {
                json_t *arr = json_array();
                json_array_append_new(arr, ch);
                rc = sse(chunk_new(a, arr), out);
            } else {
                json_decref(ch);
            }
        }
    }
    if (ev->request_done) {
        a->p[i].done = 1;
        a->p[i].cached = ev->usage.cached_tokens;
    }
    return rc;
}

int sw_openai_resp_stream_end(struct sw_openai_resp *a, struct sw_obuf *out) {
    if (a->r->include_usage) {
        json_t *o = chunk_new(a, json_array());
        if (!o) return nomem();
        json_object_set_new(o, "usage", usage_json(a));
        SW_TRY(sse(o, out));
    }
    return sw_obuf_str(out, "data: [DONE]\n\n");
}

int sw_openai_resp_stream_error(struct sw_openai_resp *a, const struct sw_openai_error *e,
                                struct sw_obuf *out) {
    (void)a;
    return sse(sw_openai_error_json(e), out);
}

int sw_openai_resp_body(struct sw_openai_resp *a, struct sw_obuf *out) {
    const int chat = a->r->kind == SW_OPENAI_CHAT;
    json_t *o = json_object(), *choices = json_array();
    if (!o || !choices) {
        json_decref(o), json_decref(choices);
        return nomem();
    }
    json_object_set_new(o, "id", json_string(a->id));
    json_object_set_new(o, "object", json_string(chat ? "chat.completion" : "text_completion"));
    json_object_set_new(o, "created", json_integer(a->o.created));
    json_object_set_new(o, "model", json_string(a->model));
    for (int i = 0; i < a->n_choices; i++) {
        struct choice *c = &a->c[i];
        struct prompt *p = &a->p[c->prompt];
        json_t *ch = json_object();
        json_object_set_new(ch, "index", json_integer(i));
        const char *txt = c->text.p ? c->text.p : "";
        if (chat) {
            json_t *m = json_object();
            json_object_set_new(m, "role", json_string("assistant"));
            struct sw_reasoning_split sp;
            sw_reasoning_split(a->o.reasoning, txt, c->text.len, &sp);
            json_object_set_new(m, "content",
                                sp.has_content ? jstr(txt + sp.content_off, sp.content_len)
                                               : json_null());
            if (a->o.reasoning != SW_REASONING_NONE)
                json_object_set_new(m, "reasoning_content",
                                    sp.has_reasoning
                                        ? jstr(txt + sp.reasoning_off, sp.reasoning_len)
                                        : json_null());
            json_object_set_new(m, "tool_calls", json_array());
            json_object_set_new(ch, "message", m);
            if (a->r->chat_logprobs) {
                json_t *lp = json_object();
                json_object_set_new(lp, "content", c->lp ? json_incref(c->lp) : json_array());
                json_object_set_new(ch, "logprobs", lp);
            } else {
                json_object_set_new(ch, "logprobs", json_null());
            }
        } else {
            struct sw_obuf t = {0};
            int rc = 0;
            if (a->r->echo && p->text) rc = sw_obuf_str(&t, p->text);
            if (rc == 0) rc = sw_obuf_add(&t, txt, c->text.len);
            json_object_set_new(ch, "text", rc == 0 ? jstr(t.p, t.len) : json_string(""));
            sw_obuf_release(&t);
            if (a->r->params.logprobs >= 0) {
                json_t *lp = c->lp;
                if (!lp) { /* no generated token (max_tokens 0): the prompt's, or empty */
                    lp = comp_lp_new();
                    if (lp && a->r->echo && p->echo_lp) comp_lp_extend(lp, p->echo_lp);
                } else {
                    json_incref(lp);
                }
                json_object_set_new(ch, "logprobs", lp ? lp : json_null());
            } else {
                json_object_set_new(ch, "logprobs", json_null());
            }
        }
        const char *fin = finish_name(c->finish);
        json_object_set_new(ch, "finish_reason", fin ? json_string(fin) : json_null());
        json_object_set_new(ch, "stop_reason", stop_reason(a, c));
        json_array_append_new(choices, ch);
    }
    json_object_set_new(o, "choices", choices);
    json_object_set_new(o, "usage", usage_json(a));
    char *s = json_dumps(o, DUMP_FLAGS);
    json_decref(o);
    if (!s) return nomem();
    int rc = sw_obuf_str(out, s);
    free(s);
    return rc;
}

void sw_openai_resp_usage(const struct sw_openai_resp *a, int64_t *prompt, int64_t *completion,
                          int64_t *cached) {
    int64_t p, c, k;
    totals(a, &p, &c, &k);
    if (prompt) *prompt = p;
    if (completion) *completion = c;
    if (cached) *cached = k;
}

int sw_openai_resp_done(const struct sw_openai_resp *a) {
    for (int i = 0; i < a->n_prompts; i++)
        if (!a->p[i].done) return 0;
    return 1;
}

const char *sw_openai_resp_finish(const struct sw_openai_resp *a, int c) {
    if (c < 0 || c >= a->n_choices) return NULL;
    return finish_name(a->c[c].finish);
}

const char *sw_openai_resp_error(const struct sw_openai_resp *a) {
    return a->error;
}
