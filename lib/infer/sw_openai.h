/* sw_openai — the OpenAI API's JSON around the inference engine (sw_engine.h), without any
 * transport: sw-serve puts it behind HTTP and ZeroMQ, and any tool that speaks the API (a client
 * of another server, an evaluation farm) can reuse the same parser and the same response shapes.
 *
 *   - Requests: the body of POST /v1/chat/completions or /v1/completions (bytes or a jansson
 *     object) parsed and checked into a struct sw_openai_request: the conversation (chat) or the
 *     prompts (completions: a string, a list of strings, a list of token ids or a list of such
 *     lists), and the engine's sampling parameters over the defaults the caller passes (the
 *     model's generation_config.json). Every bad field is a 400 error naming the field in
 *     `param` ("messages[1].content", "temperature"), as vLLM's server reports it. Fields vLLM
 *     adds to OpenAI's (top_k, min_p, repetition_penalty, stop_token_ids, ignore_eos,
 *     min_tokens, skip_special_tokens, include_stop_str_in_output, add_special_tokens,
 *     prompt_logprobs, truncate_prompt_tokens, return_tokens_as_token_ids,
 *     chat_template_kwargs.enable_thinking) are read
 *     with vLLM's meaning. Unknown fields are ignored and listed in `ignored` (vLLM warns too).
 *   - Errors: {"error": {"message", "type", "param", "code"}} with the HTTP status.
 *   - Responses: a response assembler fed the engine's per-token events that writes either the
 *     server-sent-event chunks of a streaming response (`data: {...}\n\n` ... `data: [DONE]\n\n`)
 *     or the final JSON object: chat.completion(.chunk) and text_completion objects, usage,
 *     finish_reason and vLLM's stop_reason, logprobs in the chat shape ({"content": [{token,
 *     logprob, bytes, top_logprobs}]}) and the completions shape ({tokens, token_logprobs,
 *     top_logprobs, text_offset}), echo of the prompt, and the split of a reasoning model's
 *     <think>...</think> section into reasoning_content as vLLM's reasoning parsers do.
 *   - msgpack → JSON: the ZeroMQ endpoint's requests are the same objects in msgpack.
 *
 * Everything here is pure (no I/O, no threads) and bounds-checked: it parses untrusted bytes and
 * is fuzzed by test/fuzz/fuzz_serve_request.c. */
#ifndef SW_OPENAI_H
#define SW_OPENAI_H

#include "sw_conv.h"
#include "sw_engine.h"

#include <jansson.h>
#include "sw_obuf.h"

#include <stddef.h>
#include <stdint.h>

struct sw_tokenizer;

/* ---- errors --------------------------------------------------------------------------------- */

struct sw_openai_error {
    int status;       /* HTTP status: 400, 401, 404, 405, 413, 429, 500, 503 */
    const char *type; /* "invalid_request_error", "authentication_error", ... (static) */
    const char *code; /* NULL or a static code ("model_not_found", "invalid_api_key") */
    char param[96];   /* the offending field, "" when none */
    char message[512];
};

/* Fill e: the type follows the status (400/404/405/413 invalid_request_error (404 with code
 * model_not_found when param is "model"), 401 authentication_error, 429 rate_limit_error,
 * 503 service_unavailable_error, else server_error). param may be NULL. Returns SW_EFORMAT
 * for 4xx, SW_EIO otherwise, after setting the same message with sw_err_set. */
int sw_openai_error_set(struct sw_openai_error *e, int status, const char *param, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));
/* {"error": {"message", "type", "param" (null when ""), "code" (null, or the code)}} as a new
 * reference. code is the static code when set, else the status number as vLLM writes it. */
json_t *sw_openai_error_json(const struct sw_openai_error *e);
/* The same as compact JSON text appended to out (no newline). Returns 0 or SW_ENOMEM. */
int sw_openai_error_dump(const struct sw_openai_error *e, struct sw_obuf *out);

/* ---- requests ------------------------------------------------------------------------------- */

enum sw_openai_kind { SW_OPENAI_CHAT = 0, SW_OPENAI_COMPLETION = 1 };

/* One completions prompt: text (then ids is NULL) or token ids (then text is NULL). */
struct sw_openai_prompt {
    char *text;
    int32_t *ids;
    int64_t n_ids;
};

struct sw_openai_limits {
    int max_n;           /* n at most (default 128) */
    int max_logprobs;    /* logprobs / top_logprobs / prompt_logprobs at most (vLLM's 20) */
    int max_prompts;     /* completions prompts in one request (default 1024) */
    int max_stop;        /* stop strings and stop ids each (default 64) */
    size_t max_stop_len; /* bytes of one stop string (default 256) */
};
void sw_openai_limits_init(struct sw_openai_limits *l);

struct sw_openai_request {
    enum sw_openai_kind kind;
    char *model;                      /* the request's model field, NULL when absent */
    struct sw_conv conv;              /* chat: system (first system/developer message) and turns */
    struct sw_openai_prompt *prompts; /* completions: n_prompts ≥ 1 of them */
    int n_prompts;
    /* The defaults given to the parser overridden by the request's fields. params.stop and
     * params.stop_token_ids point into stop / stop_ids below (owned here). params.max_tokens is
     * the request's value when max_tokens_given, else the default's (see
     * sw_openai_resolve_max_tokens for vLLM's final rule). */
    struct sw_sampling_params params;
    char **stop;
    int32_t *stop_ids;
    int max_tokens_given;
    int stream;                /* server-sent events */
    int include_usage;         /* stream_options.include_usage: a last chunk with usage */
    int continuous_usage;      /* stream_options.continuous_usage_stats: usage in every chunk */
    int echo;                  /* completions: the prompt text (and logprobs) first */
    int chat_logprobs;         /* chat: logprobs true (top_logprobs in params.logprobs) */
    int add_generation_prompt; /* chat (default 1) */
    int add_special_tokens;    /* tokenizer post-processor on text prompts (completions 1,
                                  chat 0: the template writes them) */
    int enable_thinking;       /* chat_template_kwargs.enable_thinking: -1 unset, 0, 1 */
    int64_t truncate_prompt_tokens; /* keep only the last k prompt tokens (-1: off) */
    int tokens_as_ids;              /* return_tokens_as_token_ids: logprobs name tokens
                                       "token_id:N" (vLLM), so clients get exact ids */
    char *user;                     /* OpenAI's end-user id (logged), or NULL */
    char ignored[256];              /* unknown top-level fields, comma-separated, for a warning */
};

/* Parse len bytes of JSON (the HTTP body) into *out, starting from the sampling defaults d.
 * Returns 0, or SW_EFORMAT with *err filled (400: malformed JSON naming line and column, a field
 * of the wrong type or range naming it in param, an unsupported feature (tools, logit_bias,
 * response_format other than text, suffix, best_of != n, non-text content parts,
 * continue_final_message) naming the field) or SW_ENOMEM (err 500). *out is always left
 * releasable. */
int sw_openai_request_parse(enum sw_openai_kind kind, const char *body, size_t len,
                            const struct sw_sampling_params *d, const struct sw_openai_limits *lim,
                            struct sw_openai_request *out, struct sw_openai_error *err);
/* The same over a parsed JSON value (borrowed). */
int sw_openai_request_from_json(enum sw_openai_kind kind, json_t *body,
                                const struct sw_sampling_params *d,
                                const struct sw_openai_limits *lim, struct sw_openai_request *out,
                                struct sw_openai_error *err);
void sw_openai_request_release(struct sw_openai_request *r);

/* vLLM's max_tokens rule (entrypoints/utils.get_max_tokens, plus _validate_input): a prompt of
 * n_prompt tokens must leave room for one new token (else 400 naming messages/prompt); a given
 * max_tokens with n_prompt + max_tokens > max_model_len is a 400 naming max_tokens; the result is
 * the smallest of the request's max_tokens (completions: 16 when absent), max_model_len −
 * n_prompt and gen_cap (generation_config.json's max_new_tokens; ≤ 0: none). *out ≥ 0 (0 only
 * for echo with max_tokens 0). Returns 0 or SW_EFORMAT with err filled. */
int sw_openai_resolve_max_tokens(const struct sw_openai_request *r, int64_t n_prompt,
                                 int64_t max_model_len, int64_t gen_cap, int64_t *out,
                                 struct sw_openai_error *err);

/* ---- msgpack → JSON (the ZeroMQ endpoint) -------------------------------------------------- */

/* Decode one msgpack value from data[0..len) into a new JSON value: nil, booleans, integers
 * (unsigned above INT64_MAX are refused), floats, strings (UTF-8 checked), arrays and maps with
 * string keys, at most 64 levels deep. Binary and extension types are refused. Trailing bytes
 * are an error. Returns 0 or SW_EFORMAT (message says what and where). */
int sw_openai_msgpack_to_json(const void *data, size_t len, json_t **out);

/* ---- reasoning sections --------------------------------------------------------------------- */

enum sw_reasoning_mode {
    SW_REASONING_NONE = 0,
    SW_REASONING_QWEN3,       /* vLLM's qwen3 parser: <think>...</think>; needs both tags in a
                                 whole output, else it is all content */
    SW_REASONING_DEEPSEEK_R1, /* vLLM's deepseek_r1 parser: what precedes </think> is reasoning
                                 (the <think> may be in the prompt) */
};
/* "qwen3", "deepseek_r1" (or "none"/"" → NONE). Returns 0 or SW_EINVAL. */
int sw_reasoning_mode_parse(const char *s, enum sw_reasoning_mode *out);

/* Whole-output split (non-streaming responses), vLLM's extract_reasoning_content: *reasoning and
 * *content are byte ranges into text ([off, off + len)); has_* = 0 means JSON null. */
struct sw_reasoning_split {
    int has_reasoning, has_content;
    size_t reasoning_off, reasoning_len, content_off, content_len;
};
void sw_reasoning_split(enum sw_reasoning_mode mode, const char *text, size_t len,
                        struct sw_reasoning_split *out);

/* Streaming split, fed text deltas in order (vLLM's extract_reasoning_content_streaming, on text
 * rather than token ids so a tag split across deltas is still found: the bytes that could begin
 * a tag are held back until the next delta or the final flush). */
struct sw_reasoning_stream {
    enum sw_reasoning_mode mode;
    int state;     /* 0 before <think>, 1 inside, 2 after </think> */
    char hold[16]; /* a possible tag prefix held back */
    size_t n_hold;
};
void sw_reasoning_stream_init(struct sw_reasoning_stream *s, enum sw_reasoning_mode mode);
/* Feed delta[0..n) (final: no more text comes; flush what was held). The bytes go to reasoning
 * or content (appended). Returns 0 or SW_ENOMEM. */
int sw_reasoning_stream_feed(struct sw_reasoning_stream *s, const char *delta, size_t n, int final,
                             struct sw_obuf *reasoning, struct sw_obuf *content);

/* ---- responses ------------------------------------------------------------------------------ */

struct sw_openai_resp_opts {
    const char *id;                   /* "chatcmpl-…" / "cmpl-…" */
    const char *model;                /* the model name written back */
    int64_t created;                  /* unix seconds */
    enum sw_reasoning_mode reasoning; /* chat only */
    const struct sw_tokenizer *tok;   /* token strings of logprobs and echo (borrowed) */
};

struct sw_openai_resp;

/* An assembler for request r (borrowed; must outlive the assembler) with r->n_prompts prompts
 * (1 for chat) of r->params.n choices each; choice index = prompt · n + sequence, as vLLM
 * numbers them. Returns 0 or SW_ENOMEM. */
int sw_openai_resp_new(const struct sw_openai_request *r, const struct sw_openai_resp_opts *o,
                       struct sw_openai_resp **out);
void sw_openai_resp_free(struct sw_openai_resp *a);

/* The token ids prompt i was submitted with (copied: usage and echo logprobs use them) and its
 * text for echo (NULL: decoded from the ids). Call for every prompt before any event. */
int sw_openai_resp_set_prompt(struct sw_openai_resp *a, int i, const int32_t *ids, int64_t n,
                              const char *text);

/* Streaming: the opening chunks (chat: one {"role": "assistant", "content": ""} delta per choice;
 * completions with echo: the prompt text per choice) appended to out. */
int sw_openai_resp_stream_begin(struct sw_openai_resp *a, struct sw_obuf *out);
/* One engine event of prompt i. Streaming: appends the chunk(s) it makes to out (none for an
 * event that carries nothing to send); otherwise accumulates (out unused, may be NULL).
 * Returns 0, SW_ENOMEM, or SW_EINVAL for an event that does not fit the request (index out of
 * range, prompt i not set). */
int sw_openai_resp_event(struct sw_openai_resp *a, int i, const struct sw_engine_event *ev,
                         struct sw_obuf *out);
/* Streaming end: the usage chunk when include_usage, then "data: [DONE]\n\n". */
int sw_openai_resp_stream_end(struct sw_openai_resp *a, struct sw_obuf *out);
/* An error during a stream: data: {"error": …}\n\n (vLLM's way; [DONE] still follows). */
int sw_openai_resp_stream_error(struct sw_openai_resp *a, const struct sw_openai_error *e,
                                struct sw_obuf *out);
/* Non-streaming: the response object as compact JSON (appended to out). */
int sw_openai_resp_body(struct sw_openai_resp *a, struct sw_obuf *out);

/* Totals so far: prompt tokens (over prompts, once each), completion tokens (over choices),
 * prompt tokens served from the prefix cache. */
void sw_openai_resp_usage(const struct sw_openai_resp *a, int64_t *prompt, int64_t *completion,
                          int64_t *cached);
/* 1 when every prompt's request_done event was seen. */
int sw_openai_resp_done(const struct sw_openai_resp *a);
/* The finish reason of choice c ("stop", "length", "abort", "error", or NULL while running). */
const char *sw_openai_resp_finish(const struct sw_openai_resp *a, int c);
/* The first engine error message seen (SW_FINISH_ERROR), or NULL. */
const char *sw_openai_resp_error(const struct sw_openai_resp *a);

#endif
