/* sw_template — the built-in chat templates: registry, detection from a Jinja chat_template, and
 * rendering a conversation into flagged text pieces (see sw_template.h).
 *
 * Each renderer transcribes one Jinja template (the model family's tokenizer_config.json
 * chat_template, or ms-swift's TemplateMeta for `default`) statement by statement, so the text
 * equals what apply_chat_template produces; what the Jinja cannot say (which part is trained) is
 * ms-swift's rule. Python string methods used by the Jinja (strip, trim, split) are mirrored
 * exactly, Unicode whitespace included. */
#include "sw_template.h"

#include "sw_err.h"

#include <stdlib.h>
#include <string.h>

enum tpl_kind {
    TPL_CHATML,
    TPL_QWEN3,
    TPL_LLAMA3,
    TPL_LLAMA2,
    TPL_DEFAULT,
    TPL_MISTRAL,
    TPL_GEMMA
};

struct sw_template {
    const char *name;
    enum tpl_kind kind;
    const char *default_system;
};

static const char LLAMA2_SYSTEM[] =
    "You are a helpful, respectful and honest assistant. Always answer as helpfully as possible, "
    "while being safe. Your answers should not include any harmful, unethical, racist, sexist, "
    "toxic, dangerous, or illegal content. Please ensure that your responses are socially unbiased "
    "and positive in nature.\n\nIf a question does not make any sense, or is not factually "
    "coherent, explain why instead of answering something not correct. If you don't know the "
    "answer to a question, please don't share false information.";

static const struct sw_template templates[] = {
    {"chatml", TPL_CHATML, NULL},
    {"default", TPL_DEFAULT, "You are a helpful assistant."},
    {"gemma", TPL_GEMMA, NULL},
    {"llama", TPL_LLAMA2, LLAMA2_SYSTEM},
    {"llama3", TPL_LLAMA3, NULL},
    {"mistral", TPL_MISTRAL, NULL},
    {"qwen", TPL_CHATML, "You are a helpful assistant."},
    {"qwen2_5", TPL_CHATML, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."},
    {"qwen3", TPL_QWEN3, NULL},
};

const struct sw_template *sw_template_get(const char *name) {
    for (size_t i = 0; name && i < sizeof templates / sizeof *templates; i++)
        if (strcmp(templates[i].name, name) == 0) return &templates[i];
    return NULL;
}

const char *sw_template_names(void) {
    return "chatml|default|gemma|llama|llama3|mistral|qwen|qwen2_5|qwen3";
}
const char *sw_template_name(const struct sw_template *t) {
    return t->name;
}
const char *sw_template_default_system(const struct sw_template *t) {
    return t->default_system;
}

const struct sw_template *sw_template_detect(const char *jinja) {
    if (!jinja) return NULL;
    if (strstr(jinja, "<|im_start|>")) {
        if (strstr(jinja, "<think>")) return sw_template_get("qwen3");
        if (strstr(jinja, "You are Qwen, created by Alibaba Cloud"))
            return sw_template_get("qwen2_5");
        if (strstr(jinja, "You are a helpful assistant")) return sw_template_get("qwen");
        return sw_template_get("chatml");
    }
    if (strstr(jinja, "<|start_header_id|>")) return sw_template_get("llama3");
    if (strstr(jinja, "<start_of_turn>")) return sw_template_get("gemma");
    /* Mistral-Instruct v0.1/v0.2: [INST] without Llama-2's <<SYS>> block and no system role
     * (later Mistral templates handle a system message: not this renderer). */
    if (strstr(jinja, "[INST]") && !strstr(jinja, "<<SYS>>") && !strstr(jinja, "system"))
        return sw_template_get("mistral");
    if (strstr(jinja, "[INST]")) return sw_template_get("llama");
    return NULL;
}

int sw_loss_scale_parse(const char *s, enum sw_loss_scale *out) {
    if (!strcmp(s, "default")) return *out = SW_LOSS_DEFAULT, 0;
    if (!strcmp(s, "last_round")) return *out = SW_LOSS_LAST_ROUND, 0;
    if (!strcmp(s, "all")) return *out = SW_LOSS_ALL, 0;
    return sw_err_set(SW_EINVAL, "unknown loss_scale '%s' (default, last_round, all)", s);
}

const char *sw_loss_scale_name(enum sw_loss_scale l) {
    return l == SW_LOSS_ALL ? "all" : l == SW_LOSS_LAST_ROUND ? "last_round" : "default";
}

/* ---- Python string helpers -------------------------------------------------------------- */

/* Length of the UTF-8 whitespace character (Python str.isspace) starting at s, or 0. */
static size_t ws_at(const unsigned char *s, size_t n) {
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f)) return 1;
    if (n >= 2 && c == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0)) return 2;
    if (n >= 3 && c == 0xe1 && s[1] == 0x9a && s[2] == 0x80) return 3; /* U+1680 */
    if (n >= 3 && c == 0xe2 && s[1] == 0x80 &&
        ((s[2] >= 0x80 && s[2] <= 0x8a) || s[2] == 0xa8 || s[2] == 0xa9 || s[2] == 0xaf))
        return 3; /* U+2000..200A, 2028, 2029, 202F */
    if (n >= 3 && c == 0xe2 && s[1] == 0x81 && s[2] == 0x9f) return 3; /* U+205F */
    if (n >= 3 && c == 0xe3 && s[1] == 0x80 && s[2] == 0x80) return 3; /* U+3000 */
    return 0;
}

/* Whitespace character ending at s + n (looking backwards), length or 0. */
static size_t ws_before(const unsigned char *s, size_t n) {
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        size_t w = ws_at(s + n - k, k);
        if (w == k) return k;
    }
    return 0;
}

/* Python str.strip() (chars NULL: Unicode whitespace) or str.strip(chars) with single-byte chars;
 * left/right select lstrip/rstrip. Narrows [*b, *e) of s. */
static void py_strip(const char *s, size_t *b, size_t *e, const char *chars, int left, int right) {
    const unsigned char *u = (const unsigned char *)s;
    while (left && *b < *e) {
        size_t w = chars ? (strchr(chars, u[*b]) && u[*b] ? 1 : 0) : ws_at(u + *b, *e - *b);
        if (!w) break;
        *b += w;
    }
    while (right && *e > *b) {
        size_t w =
            chars ? (strchr(chars, u[*e - 1]) && u[*e - 1] ? 1 : 0) : ws_before(u + *b, *e - *b);
        if (!w) break;
        *e -= w;
    }
}

static const char *memfind(const char *h, size_t hn, const char *needle) {
    size_t nn = strlen(needle);
    if (nn > hn) return NULL;
    for (size_t i = 0; i + nn <= hn; i++)
        if (memcmp(h + i, needle, nn) == 0) return h + i;
    return NULL;
}

static const char *memfind_last(const char *h, size_t hn, const char *needle) {
    size_t nn = strlen(needle);
    if (nn > hn) return NULL;
    for (size_t i = hn - nn + 1; i-- > 0;)
        if (memcmp(h + i, needle, nn) == 0) return h + i;
    return NULL;
}

/* ---- the render buffer ------------------------------------------------------------------ */

void sw_template_render_release(struct sw_template_render *r) {
    if (!r) return;
    free(r->text);
    free(r->pieces);
    memset(r, 0, sizeof *r);
}

static int put(struct sw_template_render *r, const char *s, size_t n, int trained, int special) {
    if (n == 0) return 0;
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 1024;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *t = realloc(r->text, cap);
        if (!t) return sw_err_set(SW_ENOMEM, "out of memory");
        r->text = t;
        r->cap = cap;
    }
    memcpy(r->text + r->len, s, n);
    struct sw_template_piece *last = r->n_pieces ? &r->pieces[r->n_pieces - 1] : NULL;
    if (last && !special && !last->special && last->trained == (unsigned char)trained) {
        last->len += n; /* merge: fewer pieces, same text */
    } else {
        if (r->n_pieces == r->cap_pieces) {
            size_t cap = r->cap_pieces ? r->cap_pieces * 2 : 32;
            struct sw_template_piece *p = realloc(r->pieces, cap * sizeof *p);
            if (!p) return sw_err_set(SW_ENOMEM, "out of memory");
            r->pieces = p;
            r->cap_pieces = cap;
        }
        r->pieces[r->n_pieces++] = (struct sw_template_piece){r->len, n, (unsigned char)!!trained,
                                                              (unsigned char)!!special};
    }
    r->len += n;
    r->text[r->len] = '\0';
    return 0;
}

#define PUT(r, s, tr) SW_TRY(put((r), (s), strlen(s), (tr), 0))
#define PUTN(r, s, n, tr) SW_TRY(put((r), (s), (n), (tr), 0))
#define SPECIAL(r, s, tr) SW_TRY(put((r), (s), strlen(s), (tr), 1))

/* ---- shared rules -------------------------------------------------------------------------- */

struct ctx {
    const struct sw_conv *c;
    const struct sw_template_opts *o;
    const char *where;
    long last_round; /* first turn index of the last round (after the last user/tool turn) */
};

/* Priority as in ms-swift: the row's system, then --system, then the template default. "" = none.
 */
static const char *resolve_system(const struct sw_template *t, const struct ctx *x) {
    const char *s = x->c->system;
    if (!s) s = x->o->system;
    if (!s) s = t->default_system;
    return s && *s ? s : NULL;
}

/* Is assistant turn i trained under the loss scale (and the row's own per-turn override)? */
static int turn_trained(const struct ctx *x, size_t i) {
    const struct sw_turn *t = &x->c->turns[i];
    if (t->role != SW_ROLE_ASSISTANT) return x->o->loss == SW_LOSS_ALL;
    if (t->loss >= 0) return t->loss;
    if (x->o->loss == SW_LOSS_LAST_ROUND) return (long)i > x->last_round;
    return 1;
}

/* Everything that is not an assistant turn's answer: trained only under loss_scale all. */
static int prompt_trained(const struct ctx *x) {
    return x->o->loss == SW_LOSS_ALL;
}

/* The content of assistant turn i (the rejected answer in place of the last one when asked). */
static const char *turn_content(const struct ctx *x, size_t i) {
    if (x->o->rejected && i + 1 == x->c->n_turns && x->c->rejected) return x->c->rejected;
    return x->c->turns[i].content;
}

/* Hermes-style tool calls as Qwen's templates write them:
 * "<tool_call>\n{\"name\": \"f\", \"arguments\": {...}}\n</tool_call>", '\n' between calls and
 * after non-empty content. */
static int put_tool_calls(struct sw_template_render *r, const struct sw_turn *t, int has_content,
                          int tr) {
    for (size_t k = 0; k < t->n_tool_calls; k++) {
        if (k > 0 || has_content) PUT(r, "\n", tr);
        PUT(r, "<tool_call>\n{\"name\": \"", tr);
        PUT(r, t->tool_calls[k].name, tr);
        PUT(r, "\", \"arguments\": ", tr);
        PUT(r, t->tool_calls[k].arguments, tr);
        PUT(r, "}\n</tool_call>", tr);
    }
    return 0;
}

static int check_alternating(const struct ctx *x, const char *tname) {
    for (size_t i = 0; i < x->c->n_turns; i++) {
        enum sw_role want = i % 2 == 0 ? SW_ROLE_USER : SW_ROLE_ASSISTANT;
        if (x->c->turns[i].role != want)
            return sw_err_set(SW_EFORMAT,
                              "%s: template '%s' needs turns alternating user/assistant "
                              "starting with user; turn %zu is %s",
                              x->where, tname, i, sw_role_name(x->c->turns[i].role));
        if (x->c->turns[i].n_tool_calls)
            return sw_err_set(SW_EFORMAT,
                              "%s: template '%s' does not support tool calls (turn %zu)", x->where,
                              tname, i);
    }
    return 0;
}

/* ---- ChatML (chatml, qwen, qwen2_5) and Qwen3 --------------------------------------------- */

/* Tool turns: consecutive ones share one "<|im_start|>user ... <|im_end|>\n" block. */
static int chatml_tool(struct sw_template_render *r, const struct ctx *x, size_t i) {
    const struct sw_turn *t = &x->c->turns[i];
    int p = prompt_trained(x);
    if (i == 0 || x->c->turns[i - 1].role != SW_ROLE_TOOL) {
        SPECIAL(r, "<|im_start|>", p);
        PUT(r, "user", p);
    }
    PUT(r, "\n<tool_response>\n", p);
    PUT(r, t->content, p);
    PUT(r, "\n</tool_response>", p);
    if (i + 1 == x->c->n_turns || x->c->turns[i + 1].role != SW_ROLE_TOOL) {
        SPECIAL(r, "<|im_end|>", p);
        PUT(r, "\n", p);
    }
    return 0;
}

static int chatml_plain(struct sw_template_render *r, const struct ctx *x, const char *role,
                        const char *content) {
    int p = prompt_trained(x);
    SPECIAL(r, "<|im_start|>", p);
    PUT(r, role, p);
    PUT(r, "\n", p);
    PUT(r, content, p);
    SPECIAL(r, "<|im_end|>", p);
    PUT(r, "\n", p);
    return 0;
}

/* Qwen3's reasoning split: reasoning_content when given, else the text between <think> and
 * </think> in the content. Writes byte ranges of the content and reasoning strings. */
struct qwen3_parts {
    const char *content;
    size_t cb, ce;
    const char *reasoning; /* NULL = '' */
    size_t rb, re;
};

static void qwen3_split(const struct sw_turn *t, const char *content, struct qwen3_parts *q) {
    q->content = content;
    q->cb = 0;
    q->ce = strlen(content);
    q->reasoning = NULL;
    q->rb = q->re = 0;
    if (t->reasoning) {
        q->reasoning = t->reasoning;
        q->re = strlen(t->reasoning);
        return;
    }
    const char *end_tag = memfind(content, q->ce, "</think>");
    if (!end_tag) return;
    /* content.split('</think>')[-1].lstrip('\n') */
    const char *last = memfind_last(content, q->ce, "</think>");
    q->cb = (size_t)(last - content) + 8;
    py_strip(content, &q->cb, &q->ce, "\n", 1, 0);
    /* content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') */
    size_t rb = 0, re = (size_t)(end_tag - content);
    py_strip(content, &rb, &re, "\n", 0, 1);
    const char *open = memfind_last(content + rb, re - rb, "<think>");
    if (open) rb = (size_t)(open - content) + 7;
    py_strip(content, &rb, &re, "\n", 1, 0);
    q->reasoning = content;
    q->rb = rb;
    q->re = re;
}

static int qwen3_assistant(struct sw_template_render *r, const struct ctx *x, size_t i, long lqi) {
    const struct sw_turn *t = &x->c->turns[i];
    int p = prompt_trained(x), tr = turn_trained(x, i);
    struct qwen3_parts q;
    qwen3_split(t, turn_content(x, i), &q);
    SPECIAL(r, "<|im_start|>", p);
    PUT(r, "assistant\n", p);
    int last = i + 1 == x->c->n_turns;
    size_t rb = q.rb, re = q.re;
    if (q.reasoning) py_strip(q.reasoning, &rb, &re, "\n", 1, 1);
    int has_reasoning = q.reasoning && q.re > q.rb; /* Jinja truthiness of the unstripped text */
    size_t cb = q.cb, ce = q.ce;
    if ((long)i > lqi && (last || has_reasoning)) {
        if (re > rb) {
            PUT(r, "<think>\n", tr);
            PUTN(r, q.reasoning + rb, re - rb, tr);
            PUT(r, "\n</think>\n\n", tr);
        } else {
            /* ms-swift's ignore_empty_think: the empty block is never trained. */
            PUT(r, "<think>\n\n</think>\n\n", x->o->loss == SW_LOSS_ALL);
        }
        py_strip(q.content, &cb, &ce, "\n", 1, 0);
    }
    PUTN(r, q.content + cb, ce - cb, tr);
    SW_TRY(put_tool_calls(r, t, ce > cb, tr));
    SPECIAL(r, "<|im_end|>", tr);
    PUT(r, "\n", tr);
    return 0;
}

static int has_tool_response_wrap(const char *s) {
    size_t n = strlen(s);
    return n >= 15 + 16 && strncmp(s, "<tool_response>", 15) == 0 &&
           strcmp(s + n - 16, "</tool_response>") == 0;
}

static int render_chatml(const struct sw_template *t, const struct ctx *x,
                         struct sw_template_render *r) {
    const char *sys = resolve_system(t, x);
    if (sys) SW_TRY(chatml_plain(r, x, "system", sys));
    long lqi = (long)x->c->n_turns - 1;
    if (t->kind == TPL_QWEN3) {
        /* ns.last_query_index: the last user turn that is not a wrapped tool response. */
        for (size_t i = x->c->n_turns; i > 0; i--) {
            const struct sw_turn *u = &x->c->turns[i - 1];
            if (u->role == SW_ROLE_USER && !has_tool_response_wrap(u->content)) {
                lqi = (long)i - 1;
                break;
            }
        }
    }
    for (size_t i = 0; i < x->c->n_turns; i++) {
        const struct sw_turn *u = &x->c->turns[i];
        switch (u->role) {
        case SW_ROLE_USER: SW_TRY(chatml_plain(r, x, "user", u->content)); break;
        case SW_ROLE_SYSTEM: SW_TRY(chatml_plain(r, x, "system", u->content)); break;
        case SW_ROLE_TOOL: SW_TRY(chatml_tool(r, x, i)); break;
        case SW_ROLE_ASSISTANT:
            if (t->kind == TPL_QWEN3) {
                SW_TRY(qwen3_assistant(r, x, i, lqi));
            } else {
                int p = prompt_trained(x), tr = turn_trained(x, i);
                const char *content = turn_content(x, i);
                SPECIAL(r, "<|im_start|>", p);
                PUT(r, "assistant\n", p);
                PUT(r, content, tr);
                SW_TRY(put_tool_calls(r, u, *content != 0, tr));
                SPECIAL(r, "<|im_end|>", tr);
                PUT(r, "\n", tr);
            }
            break;
        }
    }
    if (x->o->add_generation_prompt) {
        SPECIAL(r, "<|im_start|>", 0);
        PUT(r, "assistant\n", 0);
        if (t->kind == TPL_QWEN3 && x->o->thinking_off) PUT(r, "<think>\n\n</think>\n\n", 0);
    }
    return 0;
}

/* ---- Llama 3 ------------------------------------------------------------------------------ */

static int llama3_message(struct sw_template_render *r, const char *role, const char *content,
                          const struct sw_turn *t, int p, int tr) {
    SPECIAL(r, "<|start_header_id|>", p);
    PUT(r, role, p);
    SPECIAL(r, "<|end_header_id|>", p);
    PUT(r, "\n\n", p);
    size_t b = 0, e = strlen(content);
    py_strip(content, &b, &e, NULL, 1, 1); /* Jinja's | trim */
    PUTN(r, content + b, e - b, tr);
    if (t) SW_TRY(put_tool_calls(r, t, e > b, tr));
    SPECIAL(r, "<|eot_id|>", tr);
    return 0;
}

static int render_llama3(const struct sw_template *t, const struct ctx *x,
                         struct sw_template_render *r) {
    const char *sys = resolve_system(t, x);
    int p = prompt_trained(x);
    SPECIAL(r, "<|begin_of_text|>", p);
    if (sys) SW_TRY(llama3_message(r, "system", sys, NULL, p, p));
    for (size_t i = 0; i < x->c->n_turns; i++) {
        const struct sw_turn *u = &x->c->turns[i];
        if (u->role == SW_ROLE_ASSISTANT)
            SW_TRY(llama3_message(r, "assistant", turn_content(x, i), u, p, turn_trained(x, i)));
        else
            SW_TRY(llama3_message(r, sw_role_name(u->role), u->content, NULL, p, p));
    }
    if (x->o->add_generation_prompt) {
        SPECIAL(r, "<|start_header_id|>", 0);
        PUT(r, "assistant", 0);
        SPECIAL(r, "<|end_header_id|>", 0);
        PUT(r, "\n\n", 0);
    }
    return 0;
}

/* ---- Llama 2 ------------------------------------------------------------------------------ */

static int render_llama2(const struct sw_template *t, const struct ctx *x,
                         struct sw_template_render *r) {
    SW_TRY(check_alternating(x, t->name));
    const char *sys = resolve_system(t, x);
    int p = prompt_trained(x);
    for (size_t i = 0; i < x->c->n_turns; i++) {
        const char *content =
            x->c->turns[i].role == SW_ROLE_ASSISTANT ? turn_content(x, i) : x->c->turns[i].content;
        size_t b = 0, e = strlen(content);
        if (x->c->turns[i].role == SW_ROLE_USER) {
            SPECIAL(r, "<s>", p);
            PUT(r, "[INST] ", p);
            if (i == 0 && sys) {
                /* ('<<SYS>>\n' + system + '\n<</SYS>>\n\n' + content).strip(): the SYS block
                 * shields the left side, so only the content's right side is stripped — unless
                 * the system prompt itself starts with whitespace (it never can: "<<SYS>>"). */
                PUT(r, "<<SYS>>\n", p);
                PUT(r, sys, p);
                PUT(r, "\n<</SYS>>\n\n", p);
                py_strip(content, &b, &e, NULL, 0, 1);
                if (e == 0) {
                    /* The content vanished: the strip reaches into the SYS block's "\n\n". */
                    r->len -= 2;
                    r->pieces[r->n_pieces - 1].len -= 2;
                    r->text[r->len] = '\0';
                }
            } else {
                py_strip(content, &b, &e, NULL, 1, 1);
            }
            PUTN(r, content + b, e - b, p);
            PUT(r, " [/INST]", p);
        } else {
            int tr = turn_trained(x, i);
            py_strip(content, &b, &e, NULL, 1, 1);
            PUT(r, " ", tr);
            PUTN(r, content + b, e - b, tr);
            PUT(r, " ", tr);
            SPECIAL(r, "</s>", tr);
        }
    }
    return 0;
}

/* ---- Mistral (Instruct v0.1/v0.2) and Gemma (1, 2) -------------------------------------------
 * Mistral's chat_template: bos, then '[INST] ' + content + ' [/INST]' per user turn and content +
 * eos per assistant turn, nothing stripped, no system role, no generation prompt of its own.
 * Gemma's: bos, then '<start_of_turn>' + role ('model' for the assistant) + '\n' + content|trim +
 * '<end_of_turn>\n' per turn, no system role; the generation prompt is '<start_of_turn>model\n'.
 * Both raise on a system message, so a system prompt (the row's or --system) is SW_EFORMAT.
 * Trained: the answer and its end token (eos / <end_of_turn>), not the '\n' after it (ms-swift's
 * suffix for Gemma is '<end_of_turn>'). */

static int no_system(const struct sw_template *t, const struct ctx *x) {
    if (resolve_system(t, x))
        return sw_err_set(SW_EFORMAT,
                          "%s: template '%s' has no system role (the model's "
                          "chat_template raises on one)",
                          x->where, t->name);
    return 0;
}

static int render_mistral(const struct sw_template *t, const struct ctx *x,
                          const struct sw_template_tokens *tk, struct sw_template_render *r) {
    SW_TRY(check_alternating(x, t->name));
    SW_TRY(no_system(t, x));
    int p = prompt_trained(x);
    SPECIAL(r, tk && tk->bos ? tk->bos : "<s>", p);
    for (size_t i = 0; i < x->c->n_turns; i++) {
        if (x->c->turns[i].role == SW_ROLE_USER) {
            PUT(r, "[INST] ", p);
            PUT(r, x->c->turns[i].content, p);
            PUT(r, " [/INST]", p);
        } else {
            int tr = turn_trained(x, i);
            PUT(r, turn_content(x, i), tr);
            SPECIAL(r, tk && tk->eos ? tk->eos : "</s>", tr);
        }
    }
    return 0;
}

static int render_gemma(const struct sw_template *t, const struct ctx *x,
                        const struct sw_template_tokens *tk, struct sw_template_render *r) {
    SW_TRY(check_alternating(x, t->name));
    SW_TRY(no_system(t, x));
    int p = prompt_trained(x);
    SPECIAL(r, tk && tk->bos ? tk->bos : "<bos>", p);
    for (size_t i = 0; i < x->c->n_turns; i++) {
        int asst = x->c->turns[i].role == SW_ROLE_ASSISTANT;
        const char *content = asst ? turn_content(x, i) : x->c->turns[i].content;
        int tr = asst ? turn_trained(x, i) : p;
        SPECIAL(r, "<start_of_turn>", p);
        PUT(r, asst ? "model\n" : "user\n", p);
        size_t b = 0, e = strlen(content);
        py_strip(content, &b, &e, NULL, 1, 1); /* Jinja's | trim */
        PUTN(r, content + b, e - b, tr);
        SPECIAL(r, "<end_of_turn>", tr);
        PUT(r, "\n", p);
    }
    if (x->o->add_generation_prompt) {
        SPECIAL(r, "<start_of_turn>", 0);
        PUT(r, "model\n", 0);
    }
    return 0;
}

/* ---- ms-swift's default template ------------------------------------------------------------ */

static int render_default(const struct sw_template *t, const struct ctx *x,
                          const struct sw_template_tokens *tk, struct sw_template_render *r) {
    SW_TRY(check_alternating(x, t->name));
    const char *sys = resolve_system(t, x);
    int p = prompt_trained(x);
    if (tk && tk->bos) SPECIAL(r, tk->bos, p);
    if (sys) {
        PUT(r, sys, p);
        PUT(r, "\n\n", p);
    }
    for (size_t i = 0; i < x->c->n_turns; i += 2) {
        PUT(r, "### Human:\n", p);
        PUT(r, x->c->turns[i].content, p);
        PUT(r, "\n\n### Assistant:\n", p);
        if (i + 1 >= x->c->n_turns) break; /* generation prompt */
        int tr = turn_trained(x, i + 1);
        PUT(r, turn_content(x, i + 1), tr);
        if (i + 2 < x->c->n_turns)
            PUT(r, "\n\n", p); /* chat_sep: not trained in ms-swift */
        else if (tk && tk->eos)
            SPECIAL(r, tk->eos, tr);
    }
    return 0;
}

/* ---- entry point ----------------------------------------------------------------------------- */

static int render_text(const struct ctx *x, const struct sw_template_tokens *tk,
                       struct sw_template_render *r) {
    if (tk && tk->bos) SPECIAL(r, tk->bos, 1);
    PUT(r, x->c->text, 1);
    if (tk && tk->eos) SPECIAL(r, tk->eos, 1);
    return 0;
}

int sw_template_render(const struct sw_template *t, const struct sw_conv *c,
                       const struct sw_template_opts *o, const struct sw_template_tokens *tk,
                       const char *where, struct sw_template_render *out) {
    out->len = 0;
    out->n_pieces = 0;
    if (out->text) out->text[0] = '\0';
    struct ctx x = {c, o, where ? where : "conversation", -1};
    for (size_t i = c->n_turns; i > 0; i--)
        if (c->turns[i - 1].role == SW_ROLE_USER || c->turns[i - 1].role == SW_ROLE_TOOL) {
            x.last_round = (long)i - 1;
            break;
        }
    if (c->text) return render_text(&x, tk, out);
    if (!t)
        return sw_err_set(SW_EINVAL,
                          "%s: a chat template is needed for this row (give --template: %s)",
                          x.where, sw_template_names());
    if (c->n_turns == 0)
        return sw_err_set(SW_EFORMAT, "%s: the conversation has no turns", x.where);
    if (!o->add_generation_prompt && c->turns[c->n_turns - 1].role != SW_ROLE_ASSISTANT)
        return sw_err_set(SW_EFORMAT, "%s: the conversation does not end with an assistant turn",
                          x.where);
    if (o->rejected && !c->rejected)
        return sw_err_set(SW_EFORMAT, "%s: no rejected answer to render", x.where);
    switch (t->kind) {
    case TPL_CHATML:
    case TPL_QWEN3: return render_chatml(t, &x, out);
    case TPL_LLAMA3: return render_llama3(t, &x, out);
    case TPL_LLAMA2: return render_llama2(t, &x, out);
    case TPL_DEFAULT: return render_default(t, &x, tk, out);
    case TPL_MISTRAL: return render_mistral(t, &x, tk, out);
    case TPL_GEMMA: return render_gemma(t, &x, tk, out);
    }
    return sw_err_set(SW_EINVAL, "unknown template");
}
