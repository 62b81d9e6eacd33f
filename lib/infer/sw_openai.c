/* sw_openai — OpenAI API requests: the byte buffer, errors, the request parser of
 * /v1/chat/completions and /v1/completions bodies, vLLM's max_tokens rule and the msgpack → JSON
 * decoder of the ZeroMQ endpoint (see sw_openai.h). Responses are in sw_openai_resp.c.
 *
 * The parser reads the body as untrusted input: every field is type- and range-checked and a
 * failure names the field in the error's param, so a client sees what to fix. Field meanings
 * follow OpenAI's API reference and, for the fields vLLM adds, vLLM's protocol.py. */
#include "sw_openai.h"

#include "sw_err.h"

#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors --------------------------------------------------------------------------------- */

int sw_openai_error_set(struct sw_openai_error *e, int status, const char *param, const char *fmt,
                        ...) {
    e->status = status;
    e->code = NULL;
    switch (status) {
    case 400:
    case 405:
    case 413: e->type = "invalid_request_error"; break;
    case 404:
        e->type = "invalid_request_error";
        if (param && strcmp(param, "model") == 0) e->code = "model_not_found";
        break;
    case 401:
        e->type = "authentication_error";
        e->code = "invalid_api_key";
        break;
    case 429:
        e->type = "rate_limit_error";
        e->code = "queue_full";
        break;
    case 503: e->type = "service_unavailable_error"; break;
    default: e->type = "server_error"; break;
    }
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    int code = status >= 400 && status < 500 ? SW_EFORMAT : SW_EIO;
    return sw_err_set(code, "%s", e->message);
}

json_t *sw_openai_error_json(const struct sw_openai_error *e) {
    json_t *in = json_object();
    if (!in) return NULL;
    json_object_set_new(in, "message", json_string(e->message));
    json_object_set_new(in, "type", json_string(e->type ? e->type : "server_error"));
    json_object_set_new(in, "param", e->param[0] ? json_string(e->param) : json_null());
    json_object_set_new(in, "code", e->code ? json_string(e->code) : json_integer(e->status));
    json_t *o = json_object();
    if (!o) {
        json_decref(in);
        return NULL;
    }
    json_object_set_new(o, "error", in);
    return o;
}

int sw_openai_error_dump(const struct sw_openai_error *e, struct sw_obuf *out) {
    json_t *o = sw_openai_error_json(e);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s) return sw_err_set(SW_ENOMEM, "out of memory");
    int rc = sw_obuf_str(out, s);
    free(s);
    return rc;
}

/* ---- request parsing ------------------------------------------------------------------------ */

void sw_openai_limits_init(struct sw_openai_limits *l) {
    l->max_n = 128;
    l->max_logprobs = 20;
    l->max_prompts = 1024;
    l->max_stop = 64;
    l->max_stop_len = 256;
}

void sw_openai_request_release(struct sw_openai_request *r) {
    if (!r) return;
    free(r->model);
    sw_conv_release(&r->conv);
    for (int i = 0; i < r->n_prompts; i++)
        free(r->prompts[i].text), free(r->prompts[i].ids);
    free(r->prompts);
    for (int i = 0; i < r->params.n_stop; i++)
        free(r->stop[i]);
    free(r->stop);
    free(r->stop_ids);
    free(r->user);
    memset(r, 0, sizeof *r);
}

struct parse {
    struct sw_openai_request *r;
    struct sw_openai_error *err;
    const struct sw_openai_limits *lim;
};

static int bad(struct parse *p, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(struct parse *p, const char *param, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sw_openai_error_set(p->err, 400, param, "%s", msg);
}

static int oom(struct parse *p) {
    return sw_openai_error_set(p->err, 500, NULL, "out of memory"), SW_ENOMEM;
}

static const char *jtype(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* A number field in [lo, hi] (NaN bounds = open). Absent or null leaves *out. */
static int get_num(struct parse *p, json_t *o, const char *key, double lo, double hi, int lo_open,
                   double *out) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return bad(p, key, "'%s' must be a number, not %s", key, jtype(v));
    double x = json_number_value(v);
    if (!isfinite(x) || (lo_open ? !(x > lo) : !(x >= lo)) || !(x <= hi))
        return bad(p, key, "'%s' must be %s %g and <= %g, got %g", key, lo_open ? ">" : ">=", lo,
                   hi, x);
    *out = x;
    return 0;
}

/* An integer field (an integral real is accepted, as pydantic does) in [lo, hi]. */
static int get_int(struct parse *p, json_t *o, const char *key, int64_t lo, int64_t hi,
                   int64_t *out, int *given) {
    json_t *v = json_object_get(o, key);
    if (given) *given = 0;
    if (!v || json_is_null(v)) return 0;
    int64_t x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
               fabs(json_real_value(v)) < 9e18) {
        x = (int64_t)json_real_value(v);
    } else {
        return bad(p, key, "'%s' must be an integer, not %s", key, jtype(v));
    }
    if (x < lo || x > hi)
        return bad(p, key, "'%s' must be in [%lld, %lld], got %lld", key, (long long)lo,
                   (long long)hi, (long long)x);
    *out = x;
    if (given) *given = 1;
    return 0;
}

static int get_bool(struct parse *p, json_t *o, const char *key, int *out) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return bad(p, key, "'%s' must be a boolean, not %s", key, jtype(v));
    *out = json_is_true(v);
    return 0;
}

/* A string field copied into *out (NULL when absent or null). */
static int get_str(struct parse *p, json_t *o, const char *key, char **out) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) return bad(p, key, "'%s' must be a string, not %s", key, jtype(v));
    free(*out);
    *out = strndup(json_string_value(v), json_string_length(v));
    return *out ? 0 : oom(p);
}

/* A NUL byte inside a JSON string would silently cut the text we pass on as C strings. */
static int no_nul(struct parse *p, json_t *s, const char *param) {
    if (strlen(json_string_value(s)) != json_string_length(s))
        return bad(p, param, "'%s' contains a NUL character", param);
    return 0;
}

/* stop: a string or a list of strings (empty strings are dropped, as they match nothing). */
static int parse_stop(struct parse *p, json_t *body) {
    struct sw_openai_request *r = p->r;
    json_t *v = json_object_get(body, "stop");
    if (!v || json_is_null(v)) return 0;
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (!json_is_string(v) && !json_is_array(v))
        return bad(p, "stop", "'stop' must be a string or a list of strings, not %s", jtype(v));
    if (n > (size_t)p->lim->max_stop)
        return bad(p, "stop", "'stop' has %zu strings, at most %d are allowed", n,
                   p->lim->max_stop);
    r->stop = calloc(n ? n : 1, sizeof *r->stop);
    if (!r->stop) return oom(p);
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_is_array(v) ? json_array_get(v, i) : v;
        char param[32];
        snprintf(param, sizeof param, json_is_array(v) ? "stop[%zu]" : "stop", i);
        if (!json_is_string(s))
            return bad(p, param, "'%s' must be a string, not %s", param, jtype(s));
        SW_TRY(no_nul(p, s, param));
        if (json_string_length(s) > p->lim->max_stop_len)
            return bad(p, param, "'%s' is %zu bytes long, at most %zu are allowed", param,
                       json_string_length(s), p->lim->max_stop_len);
        if (json_string_length(s) == 0) continue;
        r->stop[r->params.n_stop] = strdup(json_string_value(s));
        if (!r->stop[r->params.n_stop]) return oom(p);
        r->params.n_stop++;
    }
    r->params.stop = (const char *const *)r->stop;
    return 0;
}

static int parse_stop_ids(struct parse *p, json_t *body) {
    struct sw_openai_request *r = p->r;
    json_t *v = json_object_get(body, "stop_token_ids");
    if (!v || json_is_null(v)) return 0;
    if (!json_is_array(v))
        return bad(p, "stop_token_ids", "'stop_token_ids' must be a list of integers, not %s",
                   jtype(v));
    size_t n = json_array_size(v);
    if (n > (size_t)p->lim->max_stop)
        return bad(p, "stop_token_ids", "'stop_token_ids' has %zu ids, at most %d are allowed", n,
                   p->lim->max_stop);
    r->stop_ids = malloc((n ? n : 1) * sizeof *r->stop_ids);
    if (!r->stop_ids) return oom(p);
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(v, i);
        if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > INT32_MAX)
            return bad(p, "stop_token_ids",
                       "'stop_token_ids[%zu]' must be a token id (an integer "
                       ">= 0)",
                       i);
        r->stop_ids[i] = (int32_t)json_integer_value(x);
    }
    r->params.stop_token_ids = r->stop_ids;
    r->params.n_stop_token_ids = (int)n;
    return 0;
}

/* The sampling fields both endpoints share. */
static int parse_sampling(struct parse *p, json_t *body) {
    struct sw_openai_request *r = p->r;
    struct sw_sampling_params *sp = &r->params;
    int64_t i64;
    int given;

    i64 = sp->n;
    SW_TRY(get_int(p, body, "n", 1, p->lim->max_n, &i64, NULL));
    sp->n = (int)i64;
    /* max_completion_tokens is the chat API's newer name; it wins when both are given. */
    const char *mt = json_object_get(body, "max_completion_tokens") &&
                             !json_is_null(json_object_get(body, "max_completion_tokens"))
                         ? "max_completion_tokens"
                         : "max_tokens";
    SW_TRY(get_int(p, body, mt, 0, INT32_MAX, &i64, &given));
    if (given) {
        if (i64 == 0 && !(r->kind == SW_OPENAI_COMPLETION && r->echo))
            return bad(p, mt, "'%s' must be at least 1 (0 only with echo, to score the prompt)",
                       mt);
        sp->max_tokens = i64;
        r->max_tokens_given = 1;
    }
    i64 = sp->min_tokens;
    SW_TRY(get_int(p, body, "min_tokens", 0, INT32_MAX, &i64, NULL));
    sp->min_tokens = i64;
    SW_TRY(get_num(p, body, "temperature", 0, 1e6, 0, &sp->temperature));
    SW_TRY(get_num(p, body, "top_p", 0, 1, 1, &sp->top_p));
    i64 = sp->top_k;
    SW_TRY(get_int(p, body, "top_k", -1, INT32_MAX, &i64, NULL));
    sp->top_k = (int)i64;
    SW_TRY(get_num(p, body, "min_p", 0, 1, 0, &sp->min_p));
    SW_TRY(get_num(p, body, "presence_penalty", -2, 2, 0, &sp->presence_penalty));
    SW_TRY(get_num(p, body, "frequency_penalty", -2, 2, 0, &sp->frequency_penalty));
    SW_TRY(get_num(p, body, "repetition_penalty", 0, 1e6, 1, &sp->repetition_penalty));
    json_t *seed = json_object_get(body, "seed");
    if (seed && !json_is_null(seed)) {
        if (!json_is_integer(seed))
            return bad(p, "seed", "'seed' must be an integer, not %s", jtype(seed));
        sp->has_seed = 1;
        sp->seed = (uint64_t)json_integer_value(seed);
    }
    SW_TRY(parse_stop(p, body));
    SW_TRY(parse_stop_ids(p, body));
    SW_TRY(get_bool(p, body, "ignore_eos", &sp->ignore_eos));
    SW_TRY(get_bool(p, body, "skip_special_tokens", &sp->skip_special_tokens));
    SW_TRY(get_bool(p, body, "include_stop_str_in_output", &sp->include_stop_str_in_output));
    SW_TRY(get_bool(p, body, "add_special_tokens", &r->add_special_tokens));
    i64 = sp->prompt_logprobs;
    SW_TRY(get_int(p, body, "prompt_logprobs", -1, p->lim->max_logprobs, &i64, NULL));
    sp->prompt_logprobs = (int)i64;
    i64 = -1;
    SW_TRY(get_int(p, body, "truncate_prompt_tokens", 1, INT32_MAX, &i64, NULL));
    r->truncate_prompt_tokens = i64;
    SW_TRY(get_str(p, body, "user", &r->user));
    SW_TRY(get_bool(p, body, "return_tokens_as_token_ids", &r->tokens_as_ids));

    /* stream and stream_options */
    SW_TRY(get_bool(p, body, "stream", &r->stream));
    json_t *so = json_object_get(body, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so))
            return bad(p, "stream_options", "'stream_options' must be an object, not %s",
                       jtype(so));
        if (!r->stream)
            return bad(p, "stream_options", "'stream_options' can only be given with stream true");
        json_t *u = json_object_get(so, "include_usage");
        if (u && !json_is_null(u) && !json_is_boolean(u))
            return bad(p, "stream_options.include_usage",
                       "'stream_options.include_usage' must be a boolean");
        r->include_usage = u && json_is_true(u);
        u = json_object_get(so, "continuous_usage_stats");
        if (u && !json_is_null(u) && !json_is_boolean(u))
            return bad(p, "stream_options.continuous_usage_stats",
                       "'stream_options.continuous_usage_stats' must be a boolean");
        r->continuous_usage = u && json_is_true(u);
    }

    /* What the engine cannot do is refused, never silently ignored. */
    json_t *lb = json_object_get(body, "logit_bias");
    if (lb && !json_is_null(lb) && !(json_is_object(lb) && json_object_size(lb) == 0))
        return bad(p, "logit_bias", "'logit_bias' is not supported by sw-serve");
    json_t *rf = json_object_get(body, "response_format");
    if (rf && !json_is_null(rf)) {
        json_t *t = json_is_object(rf) ? json_object_get(rf, "type") : NULL;
        if (!t || !json_is_string(t))
            return bad(p, "response_format", "'response_format' must be an object with a 'type'");
        if (strcmp(json_string_value(t), "text") != 0)
            return bad(p, "response_format",
                       "response_format type '%s' is not supported by "
                       "sw-serve (only 'text')",
                       json_string_value(t));
    }
    json_t *bo = json_object_get(body, "best_of");
    if (bo && !json_is_null(bo) && (!json_is_integer(bo) || json_integer_value(bo) != sp->n))
        return bad(p, "best_of", "'best_of' other than n is not supported by sw-serve");
    return 0;
}

/* content: a string, null, or a list of {"type": "text", "text": ...} parts (joined by "\n", as
 * vLLM joins text parts). *out is malloc'ed. */
static int content_text(struct parse *p, json_t *v, const char *param, char **out) {
    *out = NULL;
    if (!v || json_is_null(v)) {
        *out = strdup("");
        return *out ? 0 : oom(p);
    }
    if (json_is_string(v)) {
        SW_TRY(no_nul(p, v, param));
        *out = strndup(json_string_value(v), json_string_length(v));
        return *out ? 0 : oom(p);
    }
    if (!json_is_array(v))
        return bad(p, param, "'%s' must be a string or a list of content parts, not %s", param,
                   jtype(v));
    struct sw_obuf b = {0};
    char sub[128];
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *part = json_array_get(v, i);
        snprintf(sub, sizeof sub, "%s[%zu]", param, i);
        json_t *t = json_is_object(part) ? json_object_get(part, "type") : NULL;
        if (!t || !json_is_string(t)) {
            sw_obuf_release(&b);
            return bad(p, sub, "'%s' must be an object with a 'type'", sub);
        }
        if (strcmp(json_string_value(t), "text") != 0) {
            sw_obuf_release(&b);
            return bad(p, sub, "content part type '%s' is not supported by sw-serve (text only)",
                       json_string_value(t));
        }
        json_t *x = json_object_get(part, "text");
        if (!x || !json_is_string(x)) {
            sw_obuf_release(&b);
            return bad(p, sub, "'%s.text' must be a string", sub);
        }
        int rc = no_nul(p, x, sub);
        if (rc == 0 && i > 0) rc = sw_obuf_add(&b, "\n", 1);
        if (rc == 0) rc = sw_obuf_add(&b, json_string_value(x), json_string_length(x));
        if (rc < 0) {
            sw_obuf_release(&b);
            return rc == SW_ENOMEM ? oom(p) : rc;
        }
    }
    if (sw_obuf_add(&b, NULL, 0) < 0) return oom(p);
    *out = b.p;
    return 0;
}

static int parse_tool_calls(struct parse *p, json_t *m, struct sw_turn *t, const char *param) {
    json_t *tc = json_object_get(m, "tool_calls");
    if (!tc || json_is_null(tc)) return 0;
    char sub[160];
    snprintf(sub, sizeof sub, "%s.tool_calls", param);
    if (!json_is_array(tc)) return bad(p, sub, "'%s' must be a list", sub);
    for (size_t i = 0; i < json_array_size(tc); i++) {
        json_t *c = json_array_get(tc, i);
        json_t *f = json_is_object(c) ? json_object_get(c, "function") : NULL;
        json_t *name = f && json_is_object(f) ? json_object_get(f, "name") : NULL;
        json_t *args = f && json_is_object(f) ? json_object_get(f, "arguments") : NULL;
        snprintf(sub, sizeof sub, "%s.tool_calls[%zu].function", param, i);
        if (!name || !json_is_string(name)) return bad(p, sub, "'%s.name' must be a string", sub);
        char *a = NULL;
        if (args && json_is_string(args))
            a = strdup(json_string_value(args));
        else if (args && !json_is_null(args))
            a = json_dumps(args, JSON_COMPACT);
        else
            a = strdup("{}");
        if (!a) return oom(p);
        int rc = sw_turn_add_tool_call(t, json_string_value(name), a);
        free(a);
        if (rc < 0) return oom(p);
    }
    return 0;
}

static int parse_messages(struct parse *p, json_t *body) {
    struct sw_openai_request *r = p->r;
    json_t *ms = json_object_get(body, "messages");
    if (!ms || json_is_null(ms)) return bad(p, "messages", "'messages' is required");
    if (!json_is_array(ms))
        return bad(p, "messages", "'messages' must be a list, not %s", jtype(ms));
    if (json_array_size(ms) == 0) return bad(p, "messages", "'messages' must not be empty");
    char param[64], sub[96];
    for (size_t i = 0; i < json_array_size(ms); i++) {
        json_t *m = json_array_get(ms, i);
        snprintf(param, sizeof param, "messages[%zu]", i);
        if (!json_is_object(m))
            return bad(p, param, "'%s' must be an object, not %s", param, jtype(m));
        json_t *role = json_object_get(m, "role");
        snprintf(sub, sizeof sub, "%s.role", param);
        if (!role || !json_is_string(role)) return bad(p, sub, "'%s' must be a string", sub);
        const char *rs = json_string_value(role);
        enum sw_role rl;
        if (strcmp(rs, "system") == 0 || strcmp(rs, "developer") == 0)
            rl = SW_ROLE_SYSTEM;
        else if (strcmp(rs, "user") == 0)
            rl = SW_ROLE_USER;
        else if (strcmp(rs, "assistant") == 0)
            rl = SW_ROLE_ASSISTANT;
        else if (strcmp(rs, "tool") == 0 || strcmp(rs, "function") == 0)
            rl = SW_ROLE_TOOL;
        else
            return bad(p, sub, "'%s' must be system, developer, user, assistant or tool, not '%s'",
                       sub, rs);
        snprintf(sub, sizeof sub, "%s.content", param);
        json_t *cv = json_object_get(m, "content");
        if (!cv && rl != SW_ROLE_ASSISTANT) return bad(p, sub, "'%s' is required", sub);
        char *text = NULL;
        SW_TRY(content_text(p, cv, sub, &text));
        int rc = 0;
        if (rl == SW_ROLE_SYSTEM && r->conv.n_turns == 0 && !r->conv.system) {
            r->conv.system = text; /* the first system message is the conversation's system */
            continue;
        }
        rc = sw_conv_add(&r->conv, rl, text);
        free(text);
        if (rc < 0) return oom(p);
        struct sw_turn *t = sw_conv_last(&r->conv);
        if (rl == SW_ROLE_ASSISTANT) {
            json_t *rc_v = json_object_get(m, "reasoning_content");
            if (!rc_v || json_is_null(rc_v)) rc_v = json_object_get(m, "reasoning");
            if (rc_v && !json_is_null(rc_v)) {
                snprintf(sub, sizeof sub, "%s.reasoning_content", param);
                if (!json_is_string(rc_v)) return bad(p, sub, "'%s' must be a string", sub);
                SW_TRY(no_nul(p, rc_v, sub));
                if (sw_conv_set_str(&t->reasoning, json_string_value(rc_v)) < 0) return oom(p);
            }
            SW_TRY(parse_tool_calls(p, m, t, param));
        }
    }
    if (r->conv.n_turns == 0)
        return bad(p, "messages", "'messages' has no user, assistant or tool message");
    return 0;
}

static int parse_chat(struct parse *p, json_t *body) {
    struct sw_openai_request *r = p->r;
    SW_TRY(parse_messages(p, body));
    SW_TRY(get_bool(p, body, "add_generation_prompt", &r->add_generation_prompt));
    int cont = 0;
    SW_TRY(get_bool(p, body, "continue_final_message", &cont));
    if (cont)
        return bad(p, "continue_final_message",
                   "'continue_final_message' is not supported by "
                   "sw-serve");
    int lp = 0;
    SW_TRY(get_bool(p, body, "logprobs", &lp));
    int64_t top = -1;
    int given;
    SW_TRY(get_int(p, body, "top_logprobs", 0, p->lim->max_logprobs, &top, &given));
    if (given && !lp) return bad(p, "top_logprobs", "'top_logprobs' needs 'logprobs' set to true");
    r->chat_logprobs = lp;
    r->params.logprobs = lp ? (int)(given ? top : 0) : -1;
    json_t *kw = json_object_get(body, "chat_template_kwargs");
    if (kw && !json_is_null(kw)) {
        if (!json_is_object(kw))
            return bad(p, "chat_template_kwargs", "'chat_template_kwargs' must be an object");
        json_t *et = json_object_get(kw, "enable_thinking");
        if (et && !json_is_null(et)) {
            if (!json_is_boolean(et))
                return bad(p, "chat_template_kwargs.enable_thinking",
                           "'chat_template_kwargs.enable_thinking' must be a boolean");
            r->enable_thinking = json_is_true(et);
        }
    }
    json_t *ct = json_object_get(body, "chat_template");
    if (ct && !json_is_null(ct))
        return bad(p, "chat_template",
                   "a request's own 'chat_template' is not supported by "
                   "sw-serve (start it with --template)");
    json_t *tools = json_object_get(body, "tools");
    json_t *choice = json_object_get(body, "tool_choice");
    int tools_off =
        choice && json_is_string(choice) && strcmp(json_string_value(choice), "none") == 0;
    if (tools && !json_is_null(tools) && !(json_is_array(tools) && json_array_size(tools) == 0) &&
        !tools_off)
        return bad(p, "tools", "'tools' (function calling) is not supported by sw-serve");
    return 0;
}

/* One completions prompt of token ids: a JSON list of integers. */
static int prompt_ids(struct parse *p, json_t *v, const char *param, struct sw_openai_prompt *out) {
    size_t n = json_array_size(v);
    if (n == 0) return bad(p, param, "'%s' must not be empty", param);
    out->ids = malloc(n * sizeof *out->ids);
    if (!out->ids) return oom(p);
    for (size_t j = 0; j < n; j++) {
        json_t *x = json_array_get(v, j);
        if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > INT32_MAX)
            return bad(p, param, "'%s[%zu]' must be a token id (an integer >= 0)", param, j);
        out->ids[j] = (int32_t)json_integer_value(x);
    }
    out->n_ids = (int64_t)n;
    return 0;
}

static int parse_prompts(struct parse *p, json_t *body) {
    struct sw_openai_request *r = p->r;
    json_t *v = json_object_get(body, "prompt");
    if (!v || json_is_null(v)) return bad(p, "prompt", "'prompt' is required");
    int n;
    enum { ONE_TEXT, TEXTS, ONE_IDS, IDS } shape;
    if (json_is_string(v)) {
        shape = ONE_TEXT, n = 1;
    } else if (json_is_array(v)) {
        if (json_array_size(v) == 0) return bad(p, "prompt", "'prompt' must not be empty");
        json_t *f = json_array_get(v, 0);
        if (json_is_integer(f))
            shape = ONE_IDS, n = 1;
        else if (json_is_string(f))
            shape = TEXTS, n = (int)json_array_size(v);
        else if (json_is_array(f))
            shape = IDS, n = (int)json_array_size(v);
        else
            return bad(p, "prompt",
                       "'prompt' must be a string, a list of strings, a list of token "
                       "ids or a list of lists of token ids");
        /* a flat list of token ids is one prompt, however many tokens it has */
        if (shape != ONE_IDS && json_array_size(v) > (size_t)p->lim->max_prompts)
            return bad(p, "prompt", "'prompt' has %zu prompts, at most %d are allowed",
                       json_array_size(v), p->lim->max_prompts);
    } else {
        return bad(p, "prompt", "'prompt' must be a string or a list, not %s", jtype(v));
    }
    r->prompts = calloc((size_t)n, sizeof *r->prompts);
    if (!r->prompts) return oom(p);
    r->n_prompts = n;
    char param[48];
    for (int i = 0; i < n; i++) {
        struct sw_openai_prompt *pr = &r->prompts[i];
        json_t *x = shape == ONE_TEXT || shape == ONE_IDS ? v : json_array_get(v, (size_t)i);
        snprintf(param, sizeof param, shape == TEXTS || shape == IDS ? "prompt[%d]" : "prompt", i);
        if (shape == ONE_TEXT || shape == TEXTS) {
            if (!json_is_string(x))
                return bad(p, param, "'%s' must be a string like the first prompt, not %s", param,
                           jtype(x));
            SW_TRY(no_nul(p, x, param));
            pr->text = strndup(json_string_value(x), json_string_length(x));
            if (!pr->text) return oom(p);
        } else {
            if (!json_is_array(x))
                return bad(p, param,
                           "'%s' must be a list of token ids like the first prompt, not "
                           "%s",
                           param, jtype(x));
            SW_TRY(prompt_ids(p, x, param, pr));
        }
    }
    return 0;
}

static int parse_completion(struct parse *p, json_t *body) {
    struct sw_openai_request *r = p->r;
    SW_TRY(parse_prompts(p, body));
    json_t *lp = json_object_get(body, "logprobs");
    if (lp && !json_is_null(lp)) {
        if (json_is_boolean(lp))
            return bad(p, "logprobs",
                       "'logprobs' of /v1/completions is an integer (the number of "
                       "top alternatives), not a boolean");
        int64_t k = -1;
        SW_TRY(get_int(p, body, "logprobs", 0, p->lim->max_logprobs, &k, NULL));
        r->params.logprobs = (int)k;
    }
    json_t *sfx = json_object_get(body, "suffix");
    if (sfx && !json_is_null(sfx) && !(json_is_string(sfx) && json_string_length(sfx) == 0))
        return bad(p, "suffix", "'suffix' is not supported by sw-serve");
    /* echo with logprobs scores the prompt too (the legacy API's way to get log-likelihoods). */
    if (r->echo && r->params.logprobs >= 0 && r->params.prompt_logprobs < r->params.logprobs)
        r->params.prompt_logprobs = r->params.logprobs;
    return 0;
}

static const char *const known_common[] = {"model",
                                           "n",
                                           "max_tokens",
                                           "max_completion_tokens",
                                           "min_tokens",
                                           "temperature",
                                           "top_p",
                                           "top_k",
                                           "min_p",
                                           "presence_penalty",
                                           "frequency_penalty",
                                           "repetition_penalty",
                                           "seed",
                                           "stop",
                                           "stop_token_ids",
                                           "ignore_eos",
                                           "skip_special_tokens",
                                           "include_stop_str_in_output",
                                           "add_special_tokens",
                                           "prompt_logprobs",
                                           "truncate_prompt_tokens",
                                           "user",
                                           "stream",
                                           "stream_options",
                                           "logit_bias",
                                           "response_format",
                                           "best_of",
                                           "logprobs",
                                           "spaces_between_special_tokens",
                                           "priority",
                                           "request_id",
                                           "return_tokens_as_token_ids",
                                           NULL};
static const char *const known_chat[] = {"messages",
                                         "add_generation_prompt",
                                         "continue_final_message",
                                         "top_logprobs",
                                         "chat_template_kwargs",
                                         "chat_template",
                                         "tools",
                                         "tool_choice",
                                         "parallel_tool_calls",
                                         NULL};
static const char *const known_completion[] = {"prompt", "echo", "suffix", NULL};

static int in_list(const char *const *l, const char *k) {
    for (; *l; l++)
        if (strcmp(*l, k) == 0) return 1;
    return 0;
}

int sw_openai_request_from_json(enum sw_openai_kind kind, json_t *body,
                                const struct sw_sampling_params *d,
                                const struct sw_openai_limits *lim, struct sw_openai_request *out,
                                struct sw_openai_error *err) {
    memset(out, 0, sizeof *out);
    sw_conv_init(&out->conv);
    out->kind = kind;
    out->params = *d;
    out->params.stop = NULL, out->params.n_stop = 0;
    out->params.stop_token_ids = NULL, out->params.n_stop_token_ids = 0;
    out->add_generation_prompt = 1;
    out->add_special_tokens = kind == SW_OPENAI_COMPLETION;
    out->enable_thinking = -1;
    out->truncate_prompt_tokens = -1;
    struct sw_openai_limits dl;
    if (!lim) sw_openai_limits_init(&dl), lim = &dl;
    struct parse p = {out, err, lim};
    if (!json_is_object(body))
        return bad(&p, NULL, "the request body must be a JSON object, not %s", jtype(body));
    SW_TRY(get_str(&p, body, "model", &out->model));
    if (kind == SW_OPENAI_COMPLETION) SW_TRY(get_bool(&p, body, "echo", &out->echo));
    SW_TRY(parse_sampling(&p, body));
    if (kind == SW_OPENAI_CHAT)
        SW_TRY(parse_chat(&p, body));
    else
        SW_TRY(parse_completion(&p, body));
    /* Unknown fields: listed for the caller's warning, as vLLM does. */
    const char *k;
    json_t *v;
    size_t used = 0;
    json_object_foreach(body, k, v) {
        if (in_list(known_common, k) ||
            in_list(kind == SW_OPENAI_CHAT ? known_chat : known_completion, k))
            continue;
        int w =
            snprintf(out->ignored + used, sizeof out->ignored - used, "%s%s", used ? "," : "", k);
        if (w < 0 || (size_t)w >= sizeof out->ignored - used) break;
        used += (size_t)w;
    }
    return 0;
}

int sw_openai_request_parse(enum sw_openai_kind kind, const char *body, size_t len,
                            const struct sw_sampling_params *d, const struct sw_openai_limits *lim,
                            struct sw_openai_request *out, struct sw_openai_error *err) {
    memset(out, 0, sizeof *out);
    sw_conv_init(&out->conv);
    if (len == 0)
        return sw_openai_error_set(err, 400, NULL,
                                   "the request body is empty (a JSON "
                                   "object is expected)");
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return sw_openai_error_set(err, 400, NULL,
                                   "the request body is not valid JSON: %s "
                                   "(line %d, column %d)",
                                   je.text, je.line, je.column);
    int rc = sw_openai_request_from_json(kind, j, d, lim, out, err);
    json_decref(j);
    return rc;
}

int sw_openai_resolve_max_tokens(const struct sw_openai_request *r, int64_t n_prompt,
                                 int64_t max_model_len, int64_t gen_cap, int64_t *out,
                                 struct sw_openai_error *err) {
    const char *what = r->kind == SW_OPENAI_CHAT ? "messages" : "prompt";
    if (n_prompt + 1 > max_model_len &&
        !(r->echo && r->max_tokens_given && r->params.max_tokens == 0 && n_prompt <= max_model_len))
        return sw_openai_error_set(err, 400, what,
                                   "This model's maximum context length is %lld "
                                   "tokens. However, your request has %lld input tokens. Please "
                                   "reduce the length of the input.",
                                   (long long)max_model_len, (long long)n_prompt);
    int64_t room = max_model_len - n_prompt;
    int64_t m = room;
    if (r->max_tokens_given) {
        if (r->params.max_tokens > room)
            return sw_openai_error_set(
                err, 400, "max_tokens",
                "This model's maximum context length is %lld tokens. "
                "However, you requested %lld tokens (%lld in the %s, %lld "
                "in the completion). Please reduce the length of the %s or "
                "completion.",
                (long long)max_model_len, (long long)(n_prompt + r->params.max_tokens),
                (long long)n_prompt, what, (long long)r->params.max_tokens, what);
        m = r->params.max_tokens;
    } else if (r->kind == SW_OPENAI_COMPLETION) {
        m = 16 < room ? 16 : room; /* OpenAI's (and vLLM's) completions default */
    }
    if (gen_cap > 0 && gen_cap < m) m = gen_cap;
    *out = m;
    return 0;
}

/* ---- msgpack → JSON ------------------------------------------------------------------------- */

static int utf8_ok(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0)
            k = 1, cp = c & 0x1F;
        else if ((c & 0xF0) == 0xE0)
            k = 2, cp = c & 0x0F;
        else if ((c & 0xF8) == 0xF0)
            k = 3, cp = c & 0x07;
        else
            return 0;
        if (i + k >= n) return 0; /* the sequence runs past the end */
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

static int mp_to_json(const msgpack_object *o, int depth, json_t **out) {
    *out = NULL;
    if (depth > 64) return sw_err_set(SW_EFORMAT, "msgpack: nested more than 64 levels");
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: *out = json_null(); break;
    case MSGPACK_OBJECT_BOOLEAN: *out = json_boolean(o->via.boolean); break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > INT64_MAX)
            return sw_err_set(SW_EFORMAT, "msgpack: integer %llu is too large",
                              (unsigned long long)o->via.u64);
        *out = json_integer((json_int_t)o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = json_integer((json_int_t)o->via.i64); break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (!isfinite(o->via.f64)) return sw_err_set(SW_EFORMAT, "msgpack: a non-finite float");
        *out = json_real(o->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        if (!utf8_ok((const unsigned char *)o->via.str.ptr, o->via.str.size))
            return sw_err_set(SW_EFORMAT, "msgpack: a string is not valid UTF-8");
        /* an empty string may come with a NULL pointer */
        *out = o->via.str.size ? json_stringn_nocheck(o->via.str.ptr, o->via.str.size)
                               : json_string("");
        break;
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        if (!a) return sw_err_set(SW_ENOMEM, "out of memory");
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            json_t *x;
            int rc = mp_to_json(&o->via.array.ptr[i], depth + 1, &x);
            if (rc < 0 || json_array_append_new(a, x) != 0) {
                json_decref(a);
                return rc < 0 ? rc : sw_err_set(SW_ENOMEM, "out of memory");
            }
        }
        *out = a;
        return 0;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        if (!m) return sw_err_set(SW_ENOMEM, "out of memory");
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (k->type != MSGPACK_OBJECT_STR) {
                json_decref(m);
                return sw_err_set(SW_EFORMAT, "msgpack: a map key is not a string");
            }
            const char *kp = k->via.str.size ? k->via.str.ptr : "";
            if (!utf8_ok((const unsigned char *)kp, k->via.str.size) ||
                memchr(kp, 0, k->via.str.size)) {
                json_decref(m);
                return sw_err_set(SW_EFORMAT, "msgpack: a map key is not valid UTF-8 text");
            }
            json_t *x;
            int rc = mp_to_json(&o->via.map.ptr[i].val, depth + 1, &x);
            if (rc < 0) {
                json_decref(m);
                return rc;
            }
            if (json_object_setn_new_nocheck(m, kp, k->via.str.size, x) != 0) {
                json_decref(m);
                return sw_err_set(SW_ENOMEM, "out of memory");
            }
        }
        *out = m;
        return 0;
    }
    default: return sw_err_set(SW_EFORMAT, "msgpack: binary and extension values are not accepted");
    }
    return *out ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
}

/* Walk the msgpack bytes without allocating and check that every container's declared size is
 * possible (each element takes at least one byte): msgpack-c allocates a container's elements
 * from its header before reading them, so 5 bytes declaring 2^32 entries would ask for 128 GiB. */
static int mp_plausible(const unsigned char *p, size_t n) {
    size_t i = 0, pending = 1;
    while (pending > 0) {
        if (i >= n) return 0;
        unsigned c = p[i++];
        size_t skip = 0, items = 0, hdr = 0;
        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
        } else if (c >= 0x80 && c <= 0x8f) {
            items = 2 * (c & 0x0f);
        } else if (c >= 0x90 && c <= 0x9f) {
            items = c & 0x0f;
        } else if (c >= 0xa0 && c <= 0xbf) {
            skip = c & 0x1f;
        } else {
            switch (c) {
            case 0xc4:
            case 0xd9: hdr = 1; break; /* bin8, str8 */
            case 0xc5:
            case 0xda: hdr = 2; break; /* bin16, str16 */
            case 0xc6:
            case 0xdb: hdr = 4; break; /* bin32, str32 */
            case 0xc7:
                hdr = 1;
                skip = 1;
                break; /* ext8: len, type */
            case 0xc8:
                hdr = 2;
                skip = 1;
                break;
            case 0xc9:
                hdr = 4;
                skip = 1;
                break;
            case 0xca: skip = 4; break;
            case 0xcb: skip = 8; break;
            case 0xcc:
            case 0xd0: skip = 1; break;
            case 0xcd:
            case 0xd1: skip = 2; break;
            case 0xce:
            case 0xd2: skip = 4; break;
            case 0xcf:
            case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc:
            case 0xdd:
            case 0xde:
            case 0xdf: hdr = c == 0xdc || c == 0xde ? 2 : 4; break;
            default: return 0; /* 0xc1: never used */
            }
        }
        if (hdr) {
            if (n - i < hdr) return 0;
            size_t v = 0;
            for (size_t k = 0; k < hdr; k++)
                v = v << 8 | p[i + k];
            i += hdr;
            if (c >= 0xdc)
                items = c >= 0xde ? 2 * v : v;
            else
                skip += v;
        }
        if (skip > n - i) return 0;
        i += skip;
        if (items > n - i) return 0;
        pending += items;
        pending--;
    }
    return 1;
}

int sw_openai_msgpack_to_json(const void *data, size_t len, json_t **out) {
    *out = NULL;
    if (!mp_plausible(data, len))
        return sw_err_set(SW_EFORMAT, "msgpack: malformed or truncated data");
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    msgpack_unpack_return r = msgpack_unpack_next(&u, (const char *)data, len, &off);
    int rc;
    if (r == MSGPACK_UNPACK_SUCCESS && off == len) {
        rc = mp_to_json(&u.data, 0, out);
    } else if (r == MSGPACK_UNPACK_SUCCESS || r == MSGPACK_UNPACK_EXTRA_BYTES) {
        rc = sw_err_set(SW_EFORMAT, "msgpack: %zu bytes after the value", len - off);
    } else if (r == MSGPACK_UNPACK_NOMEM_ERROR) {
        /* msgpack-c also says this when its fixed parse stack (32 levels) overflows */
        rc = sw_err_set(SW_EFORMAT, "msgpack: nested too deeply (or out of memory)");
    } else {
        rc = sw_err_set(SW_EFORMAT, "msgpack: %s",
                        r == MSGPACK_UNPACK_CONTINUE ? "the message ends inside a value"
                                                     : "malformed data");
    }
    msgpack_unpacked_destroy(&u);
    return rc;
}
