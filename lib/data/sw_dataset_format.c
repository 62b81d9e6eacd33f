/* sw_dataset_format — recognise a row's dataset format and convert it into a struct sw_conv.
 *
 * Key names follow ms-swift's preprocessors (swift/dataset/preprocessor/core.py): alpaca joins
 * instruction and input with "\n"; query/response rows also accept prompt/question and
 * answer/output/completion; message lists accept role/content or from/value with the role names
 * user/human, assistant/gpt/bot, system, tool/tool_response/observation/function_response, and
 * tool_call/function_call (folded into the assistant turn as a tool call). Preference rows come as
 * messages + rejected_response, messages + rejected_messages, chosen/rejected message lists (with
 * an optional prompt), chosen/rejected strings with a prompt, or Anthropic HH-RLHF transcripts
 * ("\n\nHuman: ... \n\nAssistant: ..."). Every error names the row ("file:line") and the field. */
#include "sw_dataset.h"

#include "sw_err.h"
#include "sw_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const fmt_names[] = {"auto",  "alpaca",     "sharegpt", "messages",
                                        "query", "preference", "kto",      "text"};

const char *sw_dataset_format_name(enum sw_dataset_format f) {
    return (unsigned)f < sizeof fmt_names / sizeof *fmt_names ? fmt_names[f] : "?";
}

int sw_dataset_format_parse(const char *name, enum sw_dataset_format *out) {
    for (size_t i = 0; i < sizeof fmt_names / sizeof *fmt_names; i++)
        if (strcmp(name, fmt_names[i]) == 0) return *out = (enum sw_dataset_format)i, 0;
    return sw_err_set(SW_EINVAL, "unknown dataset format '%s'", name);
}

static const char *kind(const json_t *v) {
    if (!v) return "nothing";
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* The first of keys (NULL-terminated) present in obj, with its name in *key. */
static json_t *get_any(const json_t *obj, const char *const *keys, const char **key) {
    for (; *keys; keys++) {
        json_t *v = json_object_get(obj, *keys);
        if (v) {
            if (key) *key = *keys;
            return v;
        }
    }
    return NULL;
}

static int has_any(const json_t *obj, const char *const *keys) {
    return get_any(obj, keys, NULL) != NULL;
}

static const char *const K_MESSAGES[] = {"messages", "conversations", "conversation", NULL};
static const char *const K_SYSTEM[] = {"system", "system_prompt", NULL};
static const char *const K_QUERY[] = {"query", "prompt",  "question", "instruction",
                                      "input", "problem", NULL};
static const char *const K_RESPONSE[] = {"response", "answer", "output", "completion",
                                         "solution", "target", NULL};
static const char *const K_ROLE[] = {"role", "from", NULL};
static const char *const K_CONTENT[] = {"content", "value", NULL};

enum sw_dataset_format sw_dataset_detect(const json_t *row) {
    if (!json_is_object(row)) return SW_DSFMT_AUTO;
    const char *mk = NULL;
    json_t *msgs = get_any(row, K_MESSAGES, &mk);
    if (msgs) {
        if (json_object_get(row, "label")) return SW_DSFMT_KTO;
        if (json_object_get(row, "rejected_response") || json_object_get(row, "rejected_messages"))
            return SW_DSFMT_PREFERENCE;
        json_t *first = json_is_array(msgs) ? json_array_get(msgs, 0) : NULL;
        if (first && json_object_get(first, "from")) return SW_DSFMT_SHAREGPT;
        return strcmp(mk, "messages") == 0 ? SW_DSFMT_MESSAGES : SW_DSFMT_SHAREGPT;
    }
    if (json_object_get(row, "chosen") && json_object_get(row, "rejected"))
        return SW_DSFMT_PREFERENCE;
    if (json_object_get(row, "instruction") && has_any(row, K_RESPONSE) &&
        !json_object_get(row, "query"))
        return SW_DSFMT_ALPACA;
    if (has_any(row, K_QUERY) && has_any(row, K_RESPONSE)) {
        if (json_object_get(row, "rejected_response")) return SW_DSFMT_PREFERENCE;
        if (json_object_get(row, "label")) return SW_DSFMT_KTO;
        return SW_DSFMT_QUERY;
    }
    if (json_object_get(row, "text")) return SW_DSFMT_TEXT;
    return SW_DSFMT_AUTO;
}

/* ---- field helpers ------------------------------------------------------------------------ */

static int bad_type(const char *where, const char *field, const char *want, const json_t *got) {
    return sw_err_set(SW_EFORMAT, "%s: field '%s': expected %s, got %s", where, field, want,
                      kind(got));
}

static int missing(const char *where, const char *field) {
    return sw_err_set(SW_EFORMAT, "%s: field '%s': missing", where, field);
}

/* *out = the string value (borrowed), NULL when v is NULL or JSON null and nullable. */
static int want_str(const json_t *v, const char *where, const char *field, int nullable,
                    const char **out) {
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (nullable) return 0;
        return v ? bad_type(where, field, "a string", v) : missing(where, field);
    }
    if (!json_is_string(v)) return bad_type(where, field, "a string", v);
    *out = json_string_value(v);
    return 0;
}

/* Message content: a string, null (""), or OpenAI content parts [{type: text, text}] joined. */
static int content_text(const json_t *v, const char *where, const char *field, char **out) {
    *out = NULL;
    if (!v || json_is_null(v)) return sw_conv_set_str(out, "");
    if (json_is_string(v)) return sw_conv_set_str(out, json_string_value(v));
    if (!json_is_array(v)) return bad_type(where, field, "a string or a list of text parts", v);
    size_t len = 0, i;
    json_t *part;
    json_array_foreach(v, i, part) {
        json_t *t = json_is_object(part) ? json_object_get(part, "text") : NULL;
        json_t *ty = json_is_object(part) ? json_object_get(part, "type") : NULL;
        if (!t || !json_is_string(t) ||
            (ty && (!json_is_string(ty) || strcmp(json_string_value(ty), "text"))))
            return sw_err_set(SW_EFORMAT,
                              "%s: field '%s[%zu]': only text parts ({\"type\": \"text\", "
                              "\"text\": ...}) are supported",
                              where, field, i);
        len += json_string_length(t);
    }
    char *s = malloc(len + 1);
    if (!s) return sw_err_set(SW_ENOMEM, "out of memory");
    len = 0;
    json_array_foreach(v, i, part) {
        json_t *t = json_object_get(part, "text");
        memcpy(s + len, json_string_value(t), json_string_length(t));
        len += json_string_length(t);
    }
    s[len] = '\0';
    *out = s;
    return 0;
}

static int add_turn(struct sw_conv *c, enum sw_role role, const char *s) {
    return sw_conv_add(c, role, s);
}

/* The system prompt of the row (system / system_prompt keys), if any. */
static int take_system(const json_t *row, const char *where, struct sw_conv *c) {
    const char *key = NULL, *s;
    json_t *v = get_any(row, K_SYSTEM, &key);
    if (!v) return 0;
    SW_TRY(want_str(v, where, key, 1, &s));
    return s ? sw_conv_set_str(&c->system, s) : 0;
}

/* ms-swift history: [[query, response], ...]. */
static int take_history(const json_t *row, const char *where, struct sw_conv *c) {
    json_t *h = json_object_get(row, "history");
    if (!h || json_is_null(h)) return 0;
    if (!json_is_array(h))
        return bad_type(where, "history", "a list of [query, response] pairs", h);
    size_t i;
    json_t *pair;
    char field[64];
    json_array_foreach(h, i, pair) {
        snprintf(field, sizeof field, "history[%zu]", i);
        if (!json_is_array(pair) || json_array_size(pair) != 2)
            return bad_type(where, field, "a [query, response] pair", pair);
        const char *q, *r;
        SW_TRY(want_str(json_array_get(pair, 0), where, field, 0, &q));
        SW_TRY(want_str(json_array_get(pair, 1), where, field, 0, &r));
        SW_TRY(add_turn(c, SW_ROLE_USER, q));
        SW_TRY(add_turn(c, SW_ROLE_ASSISTANT, r));
    }
    return 0;
}

/* ---- message lists ----------------------------------------------------------------------------
 */

static int role_parse(const char *s, enum sw_role *r, int *is_tool_call) {
    static const struct {
        const char *name;
        enum sw_role role;
        int tool_call;
    } map[] = {
        {"user", SW_ROLE_USER, 0},
        {"human", SW_ROLE_USER, 0},
        {"assistant", SW_ROLE_ASSISTANT, 0},
        {"gpt", SW_ROLE_ASSISTANT, 0},
        {"bot", SW_ROLE_ASSISTANT, 0},
        {"system", SW_ROLE_SYSTEM, 0},
        {"tool", SW_ROLE_TOOL, 0},
        {"tool_response", SW_ROLE_TOOL, 0},
        {"function_response", SW_ROLE_TOOL, 0},
        {"observation", SW_ROLE_TOOL, 0},
        {"observations", SW_ROLE_TOOL, 0},
        {"ipython", SW_ROLE_TOOL, 0},
        {"tool_call", SW_ROLE_ASSISTANT, 1},
        {"function_call", SW_ROLE_ASSISTANT, 1},
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (strcmp(s, map[i].name) == 0) {
            *r = map[i].role;
            *is_tool_call = map[i].tool_call;
            return 0;
        }
    return -1;
}

/* One tool call object: {"type": "function", "function": {name, arguments}} or {name, arguments};
 * arguments may be a JSON string (kept as is) or a value (serialised like Python's json.dumps). */
static int add_tool_call(struct sw_turn *t, const json_t *tc, const char *where,
                         const char *field) {
    if (!json_is_object(tc)) return bad_type(where, field, "an object", tc);
    json_t *fn = json_object_get(tc, "function");
    if (fn && json_is_object(fn)) tc = fn;
    const char *name;
    char f2[96];
    snprintf(f2, sizeof f2, "%s.name", field);
    SW_TRY(want_str(json_object_get(tc, "name"), where, f2, 0, &name));
    json_t *args = json_object_get(tc, "arguments");
    if (!args) args = json_object_get(tc, "parameters");
    if (!args || json_is_string(args))
        return sw_turn_add_tool_call(t, name, args ? json_string_value(args) : "{}");
    char *text = json_dumps(args, JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    if (!text) return sw_err_set(SW_ENOMEM, "out of memory");
    int rc = sw_turn_add_tool_call(t, name, text);
    free(text);
    return rc;
}

/* Convert a list of messages; the first system message becomes c->system. Tool-call messages
 * fold into the preceding assistant turn (or a new empty one). field names the list. */
static int take_messages(const json_t *msgs, const char *where, const char *field,
                         struct sw_conv *c) {
    if (!json_is_array(msgs)) return bad_type(where, field, "a list of messages", msgs);
    if (json_array_size(msgs) == 0)
        return sw_err_set(SW_EFORMAT, "%s: field '%s': empty", where, field);
    size_t i;
    json_t *m;
    char f[96];
    json_array_foreach(msgs, i, m) {
        snprintf(f, sizeof f, "%s[%zu]", field, i);
        if (!json_is_object(m)) return bad_type(where, f, "a message object", m);
        const char *rk = NULL, *ck = "content", *role_s;
        json_t *rv = get_any(m, K_ROLE, &rk);
        char f2[128];
        snprintf(f2, sizeof f2, "%s.%s", f, rk ? rk : "role");
        SW_TRY(want_str(rv, where, f2, 0, &role_s));
        enum sw_role role;
        int is_tc;
        if (role_parse(role_s, &role, &is_tc) < 0)
            return sw_err_set(SW_EFORMAT, "%s: field '%s': unknown role '%s'", where, f2, role_s);
        json_t *cv = get_any(m, K_CONTENT, &ck);
        snprintf(f2, sizeof f2, "%s.%s", f, ck ? ck : "content");
        json_t *tcs = json_object_get(m, "tool_calls");
        if (!cv && !tcs && !is_tc) return missing(where, f2);
        char *content;
        SW_TRY(content_text(cv, where, f2, &content));
        int rc = 0;
        if (role == SW_ROLE_SYSTEM && c->n_turns == 0 && !c->system) {
            c->system = content;
            continue;
        }
        if (is_tc) {
            /* ms-swift's tool_call role: content is the call as JSON text. */
            struct sw_turn *last = sw_conv_last(c);
            if (!last || last->role != SW_ROLE_ASSISTANT) {
                if ((rc = sw_conv_add(c, SW_ROLE_ASSISTANT, "")) < 0) goto out;
                last = sw_conv_last(c);
            }
            json_error_t e;
            json_t *call = json_loads(content, 0, &e);
            if (!call) {
                rc = sw_err_set(SW_EFORMAT,
                                "%s: field '%s': a tool call must be a JSON object "
                                "{\"name\", \"arguments\"}: %s",
                                where, f2, e.text);
                goto out;
            }
            rc = add_tool_call(last, call, where, f2);
            json_decref(call);
            goto out;
        }
        if ((rc = sw_conv_add(c, role, content)) < 0) goto out;
        struct sw_turn *t = sw_conv_last(c);
        json_t *rcv = json_object_get(m, "reasoning_content");
        if (rcv && !json_is_null(rcv)) {
            snprintf(f2, sizeof f2, "%s.reasoning_content", f);
            const char *rs;
            if ((rc = want_str(rcv, where, f2, 0, &rs)) < 0) goto out;
            if ((rc = sw_conv_set_str(&t->reasoning, rs)) < 0) goto out;
        }
        if (tcs && !json_is_null(tcs)) {
            snprintf(f2, sizeof f2, "%s.tool_calls", f);
            if (!json_is_array(tcs)) {
                rc = bad_type(where, f2, "a list", tcs);
                goto out;
            }
            size_t k;
            json_t *tc;
            json_array_foreach(tcs, k, tc) {
                char f3[160];
                snprintf(f3, sizeof f3, "%s[%zu]", f2, k);
                if ((rc = add_tool_call(t, tc, where, f3)) < 0) goto out;
            }
        }
        json_t *lv = json_object_get(m, "loss");
        if (lv && !json_is_null(lv)) {
            snprintf(f2, sizeof f2, "%s.loss", f);
            if (!json_is_boolean(lv) && !json_is_number(lv)) {
                rc = bad_type(where, f2, "a boolean", lv);
                goto out;
            }
            t->loss = json_is_boolean(lv) ? json_is_true(lv) : json_number_value(lv) != 0;
        }
    out:
        free(content);
        if (rc < 0) return rc;
    }
    return 0;
}

/* ShareGPT's pair form: [{"human": q, "assistant": r}, ...] (ms-swift's "sharegpt"). */
static int take_pairs(const json_t *msgs, const char *where, const char *field, struct sw_conv *c) {
    size_t i;
    json_t *m;
    char f[96];
    json_array_foreach(msgs, i, m) {
        snprintf(f, sizeof f, "%s[%zu]", field, i);
        if (!json_is_object(m)) return bad_type(where, f, "an object", m);
        static const char *const ku[] = {"human", "user", NULL};
        static const char *const ka[] = {"assistant", "gpt", "bot", NULL};
        const char *q, *r;
        SW_TRY(want_str(get_any(m, ku, NULL), where, f, 0, &q));
        SW_TRY(want_str(get_any(m, ka, NULL), where, f, 0, &r));
        SW_TRY(add_turn(c, SW_ROLE_USER, q));
        SW_TRY(add_turn(c, SW_ROLE_ASSISTANT, r));
    }
    return 0;
}

static int take_message_list(const json_t *row, const char *where, struct sw_conv *c) {
    const char *mk = NULL;
    json_t *msgs = get_any(row, K_MESSAGES, &mk);
    if (!msgs) return missing(where, "messages");
    json_t *tools = json_object_get(row, "tools");
    if (tools && !json_is_null(tools) && !(json_is_array(tools) && json_array_size(tools) == 0) &&
        !(json_is_string(tools) && json_string_length(tools) == 0))
        return sw_err_set(SW_EFORMAT,
                          "%s: field 'tools': tool definitions are not supported by "
                          "sw-pack (tool calls and tool results in messages are)",
                          where);
    json_t *first = json_is_array(msgs) ? json_array_get(msgs, 0) : NULL;
    if (first && json_is_object(first) && !get_any(first, K_ROLE, NULL) &&
        !get_any(first, K_CONTENT, NULL))
        SW_TRY(take_pairs(msgs, where, mk, c));
    else
        SW_TRY(take_messages(msgs, where, mk, c));
    /* As in ms-swift, a system message at the head of the list wins over the row's system key. */
    return c->system ? 0 : take_system(row, where, c);
}

/* ---- query/response and alpaca
 * -------------------------------------------------------------------- */

static int take_query_response(const json_t *row, const char *where, struct sw_conv *c,
                               int alpaca) {
    SW_TRY(take_system(row, where, c));
    SW_TRY(take_history(row, where, c));
    const char *q = NULL, *r, *qk = NULL, *rk = NULL;
    char *joined = NULL;
    if (alpaca) {
        const char *ins, *inp;
        SW_TRY(want_str(json_object_get(row, "instruction"), where, "instruction", 1, &ins));
        SW_TRY(want_str(json_object_get(row, "input"), where, "input", 1, &inp));
        if (!ins && !inp) return missing(where, "instruction");
        if (ins && *ins && inp && *inp) {
            size_t a = strlen(ins), b = strlen(inp);
            if (!(joined = malloc(a + b + 2))) return sw_err_set(SW_ENOMEM, "out of memory");
            memcpy(joined, ins, a);
            joined[a] = '\n';
            memcpy(joined + a + 1, inp, b + 1);
            q = joined;
        } else {
            q = ins && *ins ? ins : (inp ? inp : "");
        }
    } else {
        json_t *qv = get_any(row, K_QUERY, &qk);
        SW_TRY(want_str(qv, where, qk ? qk : "query", 0, &q));
    }
    json_t *rv = get_any(row, K_RESPONSE, &rk);
    int rc = want_str(rv, where, rk ? rk : (alpaca ? "output" : "response"), 0, &r);
    if (rc == 0) rc = add_turn(c, SW_ROLE_USER, q);
    if (rc == 0) rc = add_turn(c, SW_ROLE_ASSISTANT, r);
    free(joined);
    return rc;
}

/* ---- preference ------------------------------------------------------------------------------ */

static int turns_equal(const struct sw_turn *a, const struct sw_turn *b) {
    return a->role == b->role && strcmp(a->content, b->content) == 0;
}

/* Python's str.strip() for ASCII whitespace: [*b, *e) shrinks. */
static void strip_span(const char **b, const char **e) {
    while (*b < *e && strchr(" \t\n\r\v\f", **b) && **b)
        (*b)++;
    while (*e > *b && strchr(" \t\n\r\v\f", (*e)[-1]) && (*e)[-1])
        (*e)--;
}

/* The next turn delimiter at or after p: "\n\nHuman:", "\n\nAssistant:" or the truncated
 * "\n\nHum:" that occurs in the data (tried in that order at each position, as the regular
 * expression alternation does). *len = its length; NULL when there is none. */
static const char *next_delim(const char *p, size_t *len) {
    static const char *const d[] = {"\n\nHuman:", "\n\nAssistant:", "\n\nHum:"};
    for (const char *q = strstr(p, "\n\n"); q; q = strstr(q + 1, "\n\n"))
        for (int i = 0; i < 3; i++)
            if (strncmp(q, d[i], strlen(d[i])) == 0) return *len = strlen(d[i]), q;
    return NULL;
}

/* Anthropic HH-RLHF transcript "\n\nHuman: q\n\nAssistant: a\n\nHuman: ...", split as
 * ms-swift's HHRLHFPreprocessor does: the text stripped, cut at every "\n\nHuman:",
 * "\n\nAssistant:" or "\n\nHum:", each part stripped, the leading "Human:" removed, and the
 * parts paired in order into (user, assistant) turns — a last part without a partner (a
 * transcript with an odd number of turns, e.g. one that ends with a human turn) is dropped. */
static int parse_transcript(const char *s, const char *where, const char *field,
                            struct sw_conv *c) {
    const char *b = s, *e = s + strlen(s);
    strip_span(&b, &e);
    if (strncmp(b, "Human:", 6) != 0)
        return sw_err_set(SW_EFORMAT,
                          "%s: field '%s': expected a '\\n\\nHuman:' transcript (or give "
                          "'prompt')",
                          where, field);
    /* The parts, as spans of s (the text is not modified; the end of the stripped text bounds
     * the last part). */
    size_t cap = 8, n = 0;
    const char **pb = malloc(cap * sizeof *pb), **pe = malloc(cap * sizeof *pe);
    int rc = pb && pe ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
    const char *p = b;
    while (rc == 0) {
        size_t dl = 0;
        const char *d = next_delim(p, &dl);
        if (d && d >= e) d = NULL;
        if (n == cap) {
            cap *= 2;
            const char **nb = realloc(pb, cap * sizeof *pb);
            if (nb) pb = nb;
            const char **ne = nb ? realloc(pe, cap * sizeof *pe) : NULL;
            if (ne) pe = ne;
            if (!nb || !ne) {
                rc = sw_err_set(SW_ENOMEM, "out of memory");
                break;
            }
        }
        pb[n] = p;
        pe[n] = d ? d : e;
        strip_span(&pb[n], &pe[n]);
        n++;
        if (!d) break;
        p = d + dl;
    }
    if (rc == 0) { /* parts[0] started with "Human:" */
        pb[0] += 6;
        strip_span(&pb[0], &pe[0]);
    }
    for (size_t i = 0; rc == 0 && i + 1 < n; i += 2) {
        rc = sw_conv_add_n(c, SW_ROLE_USER, pb[i], (size_t)(pe[i] - pb[i]));
        if (rc == 0)
            rc = sw_conv_add_n(c, SW_ROLE_ASSISTANT, pb[i + 1], (size_t)(pe[i + 1] - pb[i + 1]));
    }
    if (rc == 0 && n % 2)
        sw_debug(
            "%s: field '%s': %zu turns; the last, unanswered one is dropped (as ms-swift does)",
            where, field, n);
    if (rc == 0 && n < 2)
        rc = sw_err_set(SW_EFORMAT, "%s: field '%s': the transcript has no assistant turn", where,
                        field);
    free(pb);
    free(pe);
    return rc;
}

/* The rejected conversation must equal the chosen one except for the final assistant answer. */
static int take_rejected_conv(const struct sw_conv *chosen, const struct sw_conv *rej,
                              const char *where, const char *field, struct sw_conv *c) {
    const struct sw_turn *last = rej->n_turns ? &rej->turns[rej->n_turns - 1] : NULL;
    if (!last || last->role != SW_ROLE_ASSISTANT)
        return sw_err_set(SW_EFORMAT, "%s: field '%s': does not end with an assistant turn", where,
                          field);
    if (rej->n_turns != chosen->n_turns)
        return sw_err_set(SW_EFORMAT,
                          "%s: field '%s': has %zu turns but the chosen conversation has %zu "
                          "(they may differ only in the last assistant turn)",
                          where, field, rej->n_turns, chosen->n_turns);
    for (size_t i = 0; i + 1 < rej->n_turns; i++)
        if (!turns_equal(&rej->turns[i], &chosen->turns[i]))
            return sw_err_set(SW_EFORMAT,
                              "%s: field '%s': turn %zu differs from the chosen "
                              "conversation (they may differ only in the last assistant turn)",
                              where, field, i);
    return sw_conv_set_str(&c->rejected, last->content);
}

static int take_preference(const json_t *row, const char *where, struct sw_conv *c) {
    json_t *rr = json_object_get(row, "rejected_response");
    json_t *rm = json_object_get(row, "rejected_messages");
    if (has_any(row, K_MESSAGES) && (rr || rm)) {
        SW_TRY(take_message_list(row, where, c));
        if (rr) {
            const char *s;
            SW_TRY(want_str(rr, where, "rejected_response", 0, &s));
            return sw_conv_set_str(&c->rejected, s);
        }
        struct sw_conv rej;
        sw_conv_init(&rej);
        int rc = take_messages(rm, where, "rejected_messages", &rej);
        if (rc == 0) rc = take_rejected_conv(c, &rej, where, "rejected_messages", c);
        sw_conv_release(&rej);
        return rc;
    }
    if (rr && !json_object_get(row, "chosen")) {
        SW_TRY(take_query_response(row, where, c, 0));
        const char *s;
        SW_TRY(want_str(rr, where, "rejected_response", 0, &s));
        return sw_conv_set_str(&c->rejected, s);
    }
    json_t *ch = json_object_get(row, "chosen"), *rj = json_object_get(row, "rejected");
    if (!ch) return missing(where, "chosen");
    if (!rj) return missing(where, "rejected");
    SW_TRY(take_system(row, where, c));
    const char *pk = NULL;
    json_t *prompt = get_any(row, (const char *const[]){"prompt", "query", "question", NULL}, &pk);
    if (json_is_array(ch)) {
        /* TRL conversational form: [prompt messages] + chosen/rejected message lists. */
        if (!json_is_array(rj))
            return bad_type(where, "rejected", "a list of messages like 'chosen'", rj);
        if (prompt && json_is_array(prompt))
            SW_TRY(take_messages(prompt, where, pk, c));
        else if (prompt) {
            const char *p;
            SW_TRY(want_str(prompt, where, pk, 0, &p));
            SW_TRY(add_turn(c, SW_ROLE_USER, p));
        }
        size_t base = c->n_turns;
        SW_TRY(take_messages(ch, where, "chosen", c));
        struct sw_conv rej;
        sw_conv_init(&rej);
        int rc = 0;
        /* The rejected list is compared against the chosen one with the prompt turns included. */
        for (size_t i = 0; i < base && rc == 0; i++)
            rc = sw_conv_add(&rej, c->turns[i].role, c->turns[i].content);
        if (rc == 0) rc = take_messages(rj, where, "rejected", &rej);
        if (rc == 0) rc = take_rejected_conv(c, &rej, where, "rejected", c);
        sw_conv_release(&rej);
        return rc;
    }
    const char *cs, *rs;
    SW_TRY(want_str(ch, where, "chosen", 0, &cs));
    SW_TRY(want_str(rj, where, "rejected", 0, &rs));
    if (prompt) {
        const char *p;
        SW_TRY(want_str(prompt, where, pk, 0, &p));
        SW_TRY(add_turn(c, SW_ROLE_USER, p));
        SW_TRY(add_turn(c, SW_ROLE_ASSISTANT, cs));
        return sw_conv_set_str(&c->rejected, rs);
    }
    SW_TRY(parse_transcript(cs, where, "chosen", c));
    struct sw_conv rej;
    sw_conv_init(&rej);
    int rc = parse_transcript(rs, where, "rejected", &rej);
    if (rc == 0) rc = take_rejected_conv(c, &rej, where, "rejected", c);
    sw_conv_release(&rej);
    return rc;
}

static int take_kto(const json_t *row, const char *where, struct sw_conv *c) {
    if (has_any(row, K_MESSAGES))
        SW_TRY(take_message_list(row, where, c));
    else
        SW_TRY(take_query_response(row, where, c, 0));
    json_t *l = json_object_get(row, "label");
    if (!l) return missing(where, "label");
    if (json_is_boolean(l))
        c->kto_label = json_is_true(l);
    else if (json_is_integer(l) && (json_integer_value(l) == 0 || json_integer_value(l) == 1))
        c->kto_label = (int)json_integer_value(l);
    else
        return bad_type(where, "label", "a boolean", l);
    return 0;
}

/* Training needs something to learn: the conversation ends with an assistant turn. */
static int check_conv(const struct sw_conv *c, const char *where) {
    if (c->text) return 0;
    if (c->n_turns == 0) return sw_err_set(SW_EFORMAT, "%s: the conversation has no turns", where);
    if (c->turns[c->n_turns - 1].role != SW_ROLE_ASSISTANT)
        return sw_err_set(SW_EFORMAT,
                          "%s: the conversation ends with a %s turn, not an assistant turn", where,
                          sw_role_name(c->turns[c->n_turns - 1].role));
    return 0;
}

int sw_dataset_row_to_conv(const json_t *row, enum sw_dataset_format fmt, const char *where,
                           struct sw_conv *out) {
    sw_conv_init(out);
    int rc;
    switch (fmt) {
    case SW_DSFMT_ALPACA: rc = take_query_response(row, where, out, 1); break;
    case SW_DSFMT_QUERY: rc = take_query_response(row, where, out, 0); break;
    case SW_DSFMT_SHAREGPT:
    case SW_DSFMT_MESSAGES: rc = take_message_list(row, where, out); break;
    case SW_DSFMT_PREFERENCE: rc = take_preference(row, where, out); break;
    case SW_DSFMT_KTO: rc = take_kto(row, where, out); break;
    case SW_DSFMT_TEXT: {
        const char *s;
        rc = want_str(json_object_get(row, "text"), where, "text", 0, &s);
        if (rc == 0) rc = sw_conv_set_str(&out->text, s);
        break;
    }
    default: rc = sw_err_set(SW_EINVAL, "%s: no dataset format given", where);
    }
    if (rc == 0) rc = check_conv(out, where);
    if (rc < 0) sw_conv_release(out);
    return rc;
}
