/* Unit tests of lib/infer/sw_openai*.c: the OpenAI request parser (every endpoint field, every
 * error naming its param), vLLM's max_tokens rule, msgpack → JSON, the reasoning split (whole and
 * streamed in arbitrary pieces), and the response assembler fed synthetic engine events
 * (non-streaming bodies and SSE chunks, n > 1, echo, logprobs in both API shapes, usage). */
#include "sw_openai.h"

#include "sw_err.h"
#include "sw_tokenizer.h"
#include "tap.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

/* vLLM's neutral SamplingParams (what sw_sampling_params_init sets), written out so this file
 * needs only lib/infer/sw_openai*.c. */
static void params_init(struct sw_sampling_params *p) {
    memset(p, 0, sizeof *p);
    p->n = 1, p->max_tokens = 16, p->temperature = 1, p->top_p = 1, p->repetition_penalty = 1;
    p->logprobs = -1, p->prompt_logprobs = -1, p->skip_special_tokens = 1;
}

static struct sw_sampling_params defaults(void) {
    struct sw_sampling_params p;
    params_init(&p);
    return p;
}

static int parse(enum sw_openai_kind k, const char *body, struct sw_openai_request *r,
                 struct sw_openai_error *e) {
    struct sw_sampling_params d = defaults();
    memset(e, 0, sizeof *e);
    return sw_openai_request_parse(k, body, strlen(body), &d, NULL, r, e);
}

/* body must fail with status and param. */
static void bad(enum sw_openai_kind k, const char *body, int status, const char *param,
                const char *needle) {
    struct sw_openai_request r;
    struct sw_openai_error e;
    int rc = parse(k, body, &r, &e);
    OK(rc < 0 && e.status == status && strcmp(e.param, param) == 0 &&
           (!needle || strstr(e.message, needle)),
       "rejects %s -> %d param '%s'", body, status, param);
    if (!(rc < 0 && e.status == status && strcmp(e.param, param) == 0))
        DIAG("got rc %d status %d param '%s' message '%s'", rc, e.status, e.param, e.message);
    else if (needle && !strstr(e.message, needle))
        DIAG("message '%s' lacks '%s'", e.message, needle);
    sw_openai_request_release(&r);
}

static void test_chat_parse(void) {
    struct sw_openai_request r;
    struct sw_openai_error e;
    const char *body =
        "{\"model\": \"m\", \"messages\": [{\"role\": \"system\", \"content\": \"be brief\"},"
        "{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"a\"}, {\"type\": "
        "\"text\", \"text\": \"b\"}]}, {\"role\": \"assistant\", \"content\": \"x\", "
        "\"reasoning_content\": \"why\"}, {\"role\": \"user\", \"content\": \"q\"}],"
        "\"temperature\": 0.5, \"top_p\": 0.9, \"top_k\": 5, \"min_p\": 0.1, \"seed\": -3,"
        "\"max_tokens\": 7, \"n\": 3, \"stop\": [\"\\n\", \"\", \"END\"], \"stop_token_ids\": [4, "
        "9],"
        "\"presence_penalty\": 0.5, \"frequency_penalty\": -0.5, \"repetition_penalty\": 1.2,"
        "\"stream\": true, \"stream_options\": {\"include_usage\": true},"
        "\"logprobs\": true, \"top_logprobs\": 3, \"chat_template_kwargs\": {\"enable_thinking\": "
        "false},"
        "\"frobnicate\": 1, \"user\": \"u1\", \"tools\": [], \"response_format\": {\"type\": "
        "\"text\"}}";
    int rc = parse(SW_OPENAI_CHAT, body, &r, &e);
    IS_INT(rc, 0, "chat body parses (%s)", e.message);
    IS_STR(r.model, "m", "model");
    IS_STR(r.conv.system, "be brief", "first system message is the system prompt");
    IS_INT(r.conv.n_turns, 3, "three turns");
    IS_STR(r.conv.turns[0].content, "a\nb", "text parts joined by newline");
    IS_STR(r.conv.turns[1].reasoning, "why", "assistant reasoning_content kept");
    IS_INT(r.conv.turns[2].role, SW_ROLE_USER, "last turn is the user's");
    IS_NEAR(r.params.temperature, 0.5, 0, "temperature");
    IS_NEAR(r.params.top_p, 0.9, 0, "top_p");
    IS_INT(r.params.top_k, 5, "top_k");
    IS_NEAR(r.params.min_p, 0.1, 0, "min_p");
    IS_INT(r.params.has_seed, 1, "seed given");
    IS_INT((int64_t)r.params.seed, -3, "seed bits kept");
    IS_INT(r.params.max_tokens, 7, "max_tokens");
    IS_INT(r.max_tokens_given, 1, "max_tokens given");
    IS_INT(r.params.n, 3, "n");
    IS_INT(r.params.n_stop, 2, "empty stop string dropped");
    IS_STR(r.params.stop[1], "END", "stop strings");
    IS_INT(r.params.n_stop_token_ids, 2, "stop ids");
    IS_INT(r.params.stop_token_ids[1], 9, "stop id value");
    IS_NEAR(r.params.frequency_penalty, -0.5, 0, "frequency_penalty");
    IS_NEAR(r.params.repetition_penalty, 1.2, 0, "repetition_penalty");
    IS_INT(r.stream, 1, "stream");
    IS_INT(r.include_usage, 1, "include_usage");
    IS_INT(r.chat_logprobs, 1, "logprobs");
    IS_INT(r.params.logprobs, 3, "top_logprobs -> params.logprobs");
    IS_INT(r.enable_thinking, 0, "enable_thinking false");
    IS_INT(r.add_special_tokens, 0, "chat: no tokenizer special tokens by default");
    IS_STR(r.user, "u1", "user");
    IS_STR(r.ignored, "frobnicate", "unknown fields listed");
    sw_openai_request_release(&r);

    rc = parse(SW_OPENAI_CHAT,
               "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], "
               "\"logprobs\": true, \"max_completion_tokens\": 4, \"max_tokens\": 9}",
               &r, &e);
    IS_INT(rc, 0, "minimal chat parses");
    IS_INT(r.params.logprobs, 0, "logprobs without top_logprobs: 0 alternatives");
    IS_INT(r.params.max_tokens, 4, "max_completion_tokens wins over max_tokens");
    IS_INT(r.params.n, 1, "default n");
    OK(r.model == NULL && r.conv.system == NULL, "no model, no system");
    sw_openai_request_release(&r);
}

static void test_chat_errors(void) {
    const enum sw_openai_kind C = SW_OPENAI_CHAT;
    bad(C, "", 400, "", "empty");
    bad(C, "{\"messages\": [", 400, "", "not valid JSON");
    bad(C, "[1, 2]", 400, "", "JSON object");
    bad(C, "{\"a\": 1, \"a\": 2, \"messages\": []}", 400, "", "duplicate");
    bad(C, "{}", 400, "messages", "required");
    bad(C, "{\"messages\": {}}", 400, "messages", "list");
    bad(C, "{\"messages\": []}", 400, "messages", "empty");
    bad(C, "{\"messages\": [1]}", 400, "messages[0]", "object");
    bad(C, "{\"messages\": [{\"content\": \"x\"}]}", 400, "messages[0].role", NULL);
    bad(C, "{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}", 400, "messages[0].role",
        "robot");
    bad(C, "{\"messages\": [{\"role\": \"user\"}]}", 400, "messages[0].content", "required");
    bad(C, "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}", 400, "messages[0].content",
        NULL);
    bad(C, "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}", 400,
        "messages[0].content[0]", "image_url");
    bad(C, "{\"messages\": [{\"role\": \"user\", \"content\": \"a\\u0000b\"}]}", 400, "",
        "not allowed"); /* jansson refuses NUL in strings; msgpack requests get no_nul's check */
    bad(C, "{\"messages\": [{\"role\": \"system\", \"content\": \"s\"}]}", 400, "messages",
        "no user");
    const char *M = "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]";
    char b[512];
#define BAD(extra, param, needle)                                                                  \
    do {                                                                                           \
        snprintf(b, sizeof b, "{%s, %s}", M, extra);                                               \
        bad(C, b, 400, param, needle);                                                             \
    } while (0)
    BAD("\"temperature\": \"hot\"", "temperature", "number");
    BAD("\"temperature\": -1", "temperature", ">= 0");
    BAD("\"top_p\": 0", "top_p", "> 0");
    BAD("\"top_p\": 1.5", "top_p", NULL);
    BAD("\"top_k\": -2", "top_k", NULL);
    BAD("\"top_k\": 1.5", "top_k", "integer");
    BAD("\"min_p\": 2", "min_p", NULL);
    BAD("\"presence_penalty\": 3", "presence_penalty", NULL);
    BAD("\"frequency_penalty\": -2.5", "frequency_penalty", NULL);
    BAD("\"repetition_penalty\": 0", "repetition_penalty", NULL);
    BAD("\"n\": 0", "n", NULL);
    BAD("\"n\": 1000", "n", NULL);
    BAD("\"max_tokens\": 0", "max_tokens", "at least 1");
    BAD("\"max_tokens\": -5", "max_tokens", NULL);
    BAD("\"max_completion_tokens\": \"x\"", "max_completion_tokens", NULL);
    BAD("\"seed\": 1.5", "seed", "integer");
    BAD("\"stop\": 5", "stop", NULL);
    BAD("\"stop\": [\"a\", 5]", "stop[1]", NULL);
    BAD("\"stop_token_ids\": [-1]", "stop_token_ids", NULL);
    BAD("\"stream\": \"yes\"", "stream", "boolean");
    BAD("\"stream_options\": {\"include_usage\": true}", "stream_options", "stream true");
    BAD("\"stream\": true, \"stream_options\": {\"include_usage\": 1}",
        "stream_options.include_usage", NULL);
    BAD("\"logprobs\": 1", "logprobs", "boolean");
    BAD("\"top_logprobs\": 2", "top_logprobs", "logprobs");
    BAD("\"logprobs\": true, \"top_logprobs\": 21", "top_logprobs", NULL);
    BAD("\"logit_bias\": {\"5\": 10}", "logit_bias", "not supported");
    BAD("\"response_format\": {\"type\": \"json_object\"}", "response_format", "json_object");
    BAD("\"tools\": [{\"type\": \"function\"}]", "tools", "not supported");
    BAD("\"continue_final_message\": true", "continue_final_message", NULL);
    BAD("\"chat_template\": \"{{x}}\"", "chat_template", NULL);
    BAD("\"chat_template_kwargs\": {\"enable_thinking\": \"no\"}",
        "chat_template_kwargs.enable_thinking", NULL);
    BAD("\"best_of\": 2", "best_of", NULL);
    BAD("\"model\": 5", "model", "string");
#undef BAD
    /* a tools list with tool_choice none is accepted (nothing to call) */
    struct sw_openai_request r;
    struct sw_openai_error e;
    snprintf(b, sizeof b, "{%s, \"tools\": [{\"type\": \"function\"}], \"tool_choice\": \"none\"}",
             M);
    IS_INT(parse(C, b, &r, &e), 0, "tools with tool_choice none accepted");
    sw_openai_request_release(&r);
}

static void test_completion_parse(void) {
    const enum sw_openai_kind P = SW_OPENAI_COMPLETION;
    struct sw_openai_request r;
    struct sw_openai_error e;
    IS_INT(parse(P, "{\"prompt\": \"hello\", \"echo\": true, \"logprobs\": 2, \"max_tokens\": 0}",
                 &r, &e),
           0, "string prompt with echo and max_tokens 0");
    IS_INT(r.n_prompts, 1, "one prompt");
    IS_STR(r.prompts[0].text, "hello", "text");
    IS_INT(r.params.logprobs, 2, "logprobs");
    IS_INT(r.params.prompt_logprobs, 2, "echo + logprobs scores the prompt");
    IS_INT(r.add_special_tokens, 1, "completions add special tokens");
    IS_INT(r.params.max_tokens, 0, "max_tokens 0 with echo");
    sw_openai_request_release(&r);
    IS_INT(parse(P, "{\"prompt\": [\"a\", \"b\", \"c\"]}", &r, &e), 0, "list of strings");
    IS_INT(r.n_prompts, 3, "three prompts");
    IS_STR(r.prompts[2].text, "c", "third");
    sw_openai_request_release(&r);
    IS_INT(parse(P, "{\"prompt\": [1, 2, 3]}", &r, &e), 0, "token ids");
    OK(r.n_prompts == 1 && r.prompts[0].n_ids == 3 && r.prompts[0].ids[2] == 3 &&
           !r.prompts[0].text,
       "one id prompt");
    sw_openai_request_release(&r);
    {
        /* a flat id list longer than the prompt-count limit (1024) is still one prompt, while
         * 1025 string prompts are over it */
        char body[16384], *q = body;
        q += sprintf(q, "{\"prompt\": [");
        for (int i = 0; i < 1500; i++)
            q += sprintf(q, "%s%d", i ? "," : "", 1 + i % 7);
        sprintf(q, "]}");
        IS_INT(parse(P, body, &r, &e), 0, "1500 token ids: %s", e.message);
        OK(r.n_prompts == 1 && r.prompts[0].n_ids == 1500, "1500 token ids are one prompt");
        sw_openai_request_release(&r);
        q = body + sprintf(body, "{\"prompt\": [");
        for (int i = 0; i < 1025; i++)
            q += sprintf(q, "%s\"a\"", i ? "," : "");
        sprintf(q, "]}");
        bad(P, body, 400, "prompt", "at most 1024");
    }
    IS_INT(parse(P, "{\"prompt\": [[1, 2], [3]], \"n\": 2}", &r, &e), 0, "list of id lists");
    OK(r.n_prompts == 2 && r.prompts[1].n_ids == 1 && r.prompts[1].ids[0] == 3, "two id prompts");
    sw_openai_request_release(&r);
    bad(P, "{}", 400, "prompt", "required");
    bad(P, "{\"prompt\": []}", 400, "prompt", "empty");
    bad(P, "{\"prompt\": 5}", 400, "prompt", NULL);
    bad(P, "{\"prompt\": [\"a\", 5]}", 400, "prompt[1]", NULL);
    bad(P, "{\"prompt\": [[1], \"a\"]}", 400, "prompt[1]", NULL);
    bad(P, "{\"prompt\": [[]]}", 400, "prompt[0]", "empty");
    bad(P, "{\"prompt\": [1, -2]}", 400, "prompt", "token id");
    bad(P, "{\"prompt\": [[1, 2.5]]}", 400, "prompt[0]", "token id");
    bad(P, "{\"prompt\": [null]}", 400, "prompt", NULL);
    bad(P, "{\"prompt\": \"x\", \"logprobs\": true}", 400, "logprobs", "integer");
    bad(P, "{\"prompt\": \"x\", \"logprobs\": 50}", 400, "logprobs", NULL);
    bad(P, "{\"prompt\": \"x\", \"max_tokens\": 0}", 400, "max_tokens", "echo");
    bad(P, "{\"prompt\": \"x\", \"suffix\": \"y\"}", 400, "suffix", NULL);
    bad(P, "{\"prompt\": \"x\", \"echo\": 1}", 400, "echo", NULL);
}

static void test_max_tokens(void) {
    struct sw_openai_request r;
    struct sw_openai_error e;
    int64_t m = -1;
    parse(SW_OPENAI_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}", &r, &e);
    IS_INT(sw_openai_resolve_max_tokens(&r, 10, 100, 0, &m, &e), 0, "chat default");
    IS_INT(m, 90, "chat default: up to max_model_len");
    sw_openai_resolve_max_tokens(&r, 10, 100, 24, &m, &e);
    IS_INT(m, 24, "generation_config max_new_tokens caps it (vLLM)");
    OK(sw_openai_resolve_max_tokens(&r, 100, 100, 0, &m, &e) < 0 && e.status == 400 &&
           strcmp(e.param, "messages") == 0 && strstr(e.message, "maximum context length is 100"),
       "a prompt filling the context is 400");
    sw_openai_request_release(&r);
    parse(SW_OPENAI_COMPLETION, "{\"prompt\": \"x\", \"max_tokens\": 50}", &r, &e);
    IS_INT(sw_openai_resolve_max_tokens(&r, 10, 100, 0, &m, &e), 0, "given max_tokens");
    IS_INT(m, 50, "given max_tokens kept");
    sw_openai_resolve_max_tokens(&r, 10, 100, 20, &m, &e);
    IS_INT(m, 20, "given max_tokens capped by generation_config");
    OK(sw_openai_resolve_max_tokens(&r, 60, 100, 0, &m, &e) < 0 &&
           strcmp(e.param, "max_tokens") == 0 &&
           strstr(e.message, "you requested 110 tokens (60 in the prompt, 50 in the completion)"),
       "prompt + max_tokens over the context is 400 naming max_tokens: %s", e.message);
    sw_openai_request_release(&r);
    parse(SW_OPENAI_COMPLETION, "{\"prompt\": \"x\"}", &r, &e);
    sw_openai_resolve_max_tokens(&r, 10, 100, 0, &m, &e);
    IS_INT(m, 16, "completions default 16");
    sw_openai_resolve_max_tokens(&r, 90, 100, 0, &m, &e);
    IS_INT(m, 10, "completions default capped by the room left");
    sw_openai_request_release(&r);
    parse(SW_OPENAI_COMPLETION, "{\"prompt\": \"x\", \"echo\": true, \"max_tokens\": 0}", &r, &e);
    IS_INT(sw_openai_resolve_max_tokens(&r, 100, 100, 0, &m, &e), 0, "echo scoring a full context");
    IS_INT(m, 0, "max_tokens 0");
    sw_openai_request_release(&r);
}

static void test_msgpack(void) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    msgpack_pack_str(&pk, 6), msgpack_pack_str_body(&pk, "prompt", 6);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_int(&pk, 1), msgpack_pack_int(&pk, -2), msgpack_pack_uint64(&pk, 300);
    msgpack_pack_str(&pk, 1), msgpack_pack_str_body(&pk, "t", 1);
    msgpack_pack_double(&pk, 0.25);
    msgpack_pack_str(&pk, 1), msgpack_pack_str_body(&pk, "s", 1);
    msgpack_pack_true(&pk);
    msgpack_pack_str(&pk, 1), msgpack_pack_str_body(&pk, "n", 1);
    msgpack_pack_nil(&pk);
    msgpack_pack_str(&pk, 1), msgpack_pack_str_body(&pk, "u", 1);
    msgpack_pack_str(&pk, 3), msgpack_pack_str_body(&pk, "\xc3\xa9x", 3);
    json_t *j = NULL;
    IS_INT(sw_openai_msgpack_to_json(sb.data, sb.size, &j), 0, "msgpack map decodes");
    json_t *want = json_loads("{\"prompt\": [1, -2, 300], \"t\": 0.25, \"s\": true, \"n\": null, "
                              "\"u\": \"\\u00e9x\"}",
                              0, NULL);
    OK(j && json_equal(j, want), "msgpack -> JSON equal");
    json_decref(j), json_decref(want);
    /* trailing bytes */
    msgpack_pack_int(&pk, 1);
    OK(sw_openai_msgpack_to_json(sb.data, sb.size, &j) == SW_EFORMAT &&
           strstr(sw_err_msg(), "after"),
       "trailing bytes refused");
    OK(sw_openai_msgpack_to_json(sb.data, sb.size - 3, &j) == SW_EFORMAT, "truncated refused");
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1), msgpack_pack_str(&pk, 0), msgpack_pack_str(&pk, 0);
    IS_INT(sw_openai_msgpack_to_json(sb.data, sb.size, &j), 0, "empty key and value (fuzz)");
    OK(j && json_is_string(json_object_get(j, "")) &&
           json_string_length(json_object_get(j, "")) == 0,
       "{\"\": \"\"}");
    json_decref(j);
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 0xFFFFFFFFu);
    OK(sw_openai_msgpack_to_json(sb.data, sb.size, &j) == SW_EFORMAT,
       "a map declaring 2^32 entries in 5 bytes is refused before any allocation (fuzz)");
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_bin(&pk, 2), msgpack_pack_bin_body(&pk, "ab", 2);
    OK(sw_openai_msgpack_to_json(sb.data, sb.size, &j) == SW_EFORMAT, "binary refused");
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1), msgpack_pack_int(&pk, 1), msgpack_pack_int(&pk, 2);
    OK(sw_openai_msgpack_to_json(sb.data, sb.size, &j) == SW_EFORMAT, "integer map key refused");
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_str(&pk, 2), msgpack_pack_str_body(&pk, "\xff\xfe", 2);
    OK(sw_openai_msgpack_to_json(sb.data, sb.size, &j) == SW_EFORMAT, "invalid UTF-8 refused");
    msgpack_sbuffer_clear(&sb);
    for (int i = 0; i < 100; i++)
        msgpack_pack_array(&pk, 1);
    msgpack_pack_nil(&pk);
    OK(sw_openai_msgpack_to_json(sb.data, sb.size, &j) == SW_EFORMAT, "deep nesting refused (%s)",
       sw_err_msg());
    msgpack_sbuffer_destroy(&sb);
}

static void split_is(enum sw_reasoning_mode m, const char *text, const char *reason,
                     const char *content) {
    struct sw_reasoning_split s;
    sw_reasoning_split(m, text, strlen(text), &s);
    char r[128] = "(null)", c[128] = "(null)";
    if (s.has_reasoning)
        snprintf(r, sizeof r, "%.*s", (int)s.reasoning_len, text + s.reasoning_off);
    if (s.has_content) snprintf(c, sizeof c, "%.*s", (int)s.content_len, text + s.content_off);
    static int n;
    OK(strcmp(r, reason) == 0 && strcmp(c, content) == 0, "whole-output split %d", ++n);
    if (strcmp(r, reason) || strcmp(c, content)) DIAG("got '%s' | '%s'", r, c);
}

/* Feed text in pieces of size k; returns reasoning and content. */
static void stream_split(enum sw_reasoning_mode m, const char *text, size_t k, struct sw_obuf *r,
                         struct sw_obuf *c) {
    struct sw_reasoning_stream s;
    sw_reasoning_stream_init(&s, m);
    size_t n = strlen(text);
    for (size_t i = 0; i < n; i += k) {
        size_t len = i + k <= n ? k : n - i;
        sw_reasoning_stream_feed(&s, text + i, len, i + len >= n, r, c);
    }
    if (n == 0) sw_reasoning_stream_feed(&s, "", 0, 1, r, c);
}

static void test_reasoning(void) {
    const enum sw_reasoning_mode Q = SW_REASONING_QWEN3, D = SW_REASONING_DEEPSEEK_R1;
    split_is(Q, "<think>\nabc\n</think>\n\nHello", "\nabc\n", "\n\nHello");
    split_is(Q, "Hello", "(null)", "Hello");
    split_is(Q, "abc</think>Hello", "(null)", "abc</think>Hello");
    split_is(Q, "<think>abc", "(null)", "<think>abc");
    split_is(Q, "<think>abc</think>", "abc", "(null)");
    split_is(D, "abc</think>Hello", "abc", "Hello");
    split_is(D, "<think>abc</think>Hello", "abc", "Hello");
    split_is(D, "abc", "abc", "(null)");
    split_is(SW_REASONING_NONE, "<think>a</think>b", "(null)", "<think>a</think>b");
    enum sw_reasoning_mode m;
    OK(sw_reasoning_mode_parse("qwen3", &m) == 0 && m == Q, "parse qwen3");
    OK(sw_reasoning_mode_parse("llama", &m) == SW_EINVAL, "unknown parser refused");
    /* streamed in every piece size, the pieces add up to the whole split (both tags present) */
    const char *texts[] = {"<think>\nabc\n</think>\n\nHello <b>x</b>",
                           "pre<think>a<t</think>b</thi"};
    const char *want_r[] = {"\nabc\n", "a<t"}, *want_c[] = {"\n\nHello <b>x</b>", "preb</thi"};
    for (int t = 0; t < 2; t++) {
        int ok = 1;
        for (size_t k = 1; k <= strlen(texts[t]); k++) {
            struct sw_obuf r = {0}, c = {0};
            stream_split(Q, texts[t], k, &r, &c);
            if (strcmp(r.p ? r.p : "", want_r[t]) || strcmp(c.p ? c.p : "", want_c[t])) {
                ok = 0;
                DIAG("k %zu: '%s' | '%s'", k, r.p ? r.p : "", c.p ? c.p : "");
            }
            sw_obuf_release(&r), sw_obuf_release(&c);
        }
        OK(ok, "qwen3 streaming split of text %d in pieces of every size", t);
    }
    int ok = 1;
    for (size_t k = 1; k < 12; k++) {
        struct sw_obuf r = {0}, c = {0};
        stream_split(D, "thinking</think>answer", k, &r, &c);
        ok &= r.p && c.p && strcmp(r.p, "thinking") == 0 && strcmp(c.p, "answer") == 0;
        sw_obuf_release(&r), sw_obuf_release(&c);
    }
    OK(ok, "deepseek_r1 streaming: reasoning until </think>");
}

/* ---- response assembly -------------------------------------------------------------------------
 */

static struct sw_engine_event tok_ev(int index, int32_t id, const char *text,
                                     const struct sw_token_logprobs *lp) {
    struct sw_engine_event e;
    memset(&e, 0, sizeof e);
    e.index = index;
    e.token = id;
    e.text = text;
    e.text_len = strlen(text);
    e.logprobs = lp;
    e.stop_token = -1;
    return e;
}

static json_t *load(const struct sw_obuf *b) {
    json_error_t je;
    json_t *j = json_loadb(b->p ? b->p : "", b->len, 0, &je);
    if (!j) DIAG("bad JSON: %s in %.*s", je.text, (int)b->len, b->p ? b->p : "");
    return j;
}

/* SSE text -> array of chunk objects; *done = 1 when it ends with [DONE]. */
static json_t *chunks(const struct sw_obuf *b, int *done) {
    json_t *arr = json_array();
    *done = 0;
    const char *p = b->p ? b->p : "";
    while (*p) {
        if (strncmp(p, "data: ", 6) != 0) break;
        const char *end = strstr(p, "\n\n");
        if (!end) break;
        if (strncmp(p + 6, "[DONE]", 6) == 0)
            *done = end[2] == 0;
        else
            json_array_append_new(arr, json_loadb(p + 6, (size_t)(end - p - 6), 0, NULL));
        p = end + 2;
    }
    return arr;
}

static void test_chat_response(const struct sw_tokenizer *tok) {
    struct sw_openai_request r;
    struct sw_openai_error e;
    parse(SW_OPENAI_CHAT,
          "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"n\": 2, "
          "\"logprobs\": true, \"top_logprobs\": 2, \"stop_token_ids\": [7]}",
          &r, &e);
    struct sw_openai_resp_opts o = {"chatcmpl-1", "tiny", 123, SW_REASONING_QWEN3, tok};
    struct sw_openai_resp *a;
    IS_INT(sw_openai_resp_new(&r, &o, &a), 0, "assembler");
    int32_t pids[] = {1, 2, 3};
    sw_openai_resp_set_prompt(a, 0, pids, 3, NULL);
    int32_t H = sw_tokenizer_token_to_id(tok, "H", 1), E = sw_tokenizer_token_to_id(tok, "e", 1);
    OK(H >= 0 && E >= 0, "tokenizer has H and e");
    struct sw_logprob_entry top[] = {{H, -0.1f}, {E, -2.5f}};
    struct sw_token_logprobs lp = {H, -0.1f, 1, 2, top};
    struct sw_engine_event ev[6];
    ev[0] = tok_ev(0, H, "<think>a", &lp);
    ev[1] = tok_ev(1, H, "Hi", &lp);
    ev[2] = tok_ev(0, H, "</think>ok", &lp);
    ev[2].finish = SW_FINISH_STOP, ev[2].stop_token = 7;
    ev[3] = tok_ev(1, H, "!", &lp);
    ev[3].finish = SW_FINISH_LENGTH;
    ev[3].request_done = 1;
    ev[3].usage.cached_tokens = 2;
    for (int i = 0; i < 4; i++)
        IS_INT(sw_openai_resp_event(a, 0, &ev[i], NULL), 0, "event %d", i);
    IS_INT(sw_openai_resp_done(a), 1, "done after request_done");
    struct sw_obuf b = {0};
    IS_INT(sw_openai_resp_body(a, &b), 0, "body");
    json_t *j = load(&b);
    OK(j != NULL, "body is JSON");
    IS_STR(json_string_value(json_object_get(j, "object")), "chat.completion", "object");
    IS_STR(json_string_value(json_object_get(j, "id")), "chatcmpl-1", "id");
    IS_STR(json_string_value(json_object_get(j, "model")), "tiny", "model");
    json_t *ch = json_object_get(j, "choices");
    IS_INT(json_array_size(ch), 2, "two choices");
    json_t *m0 = json_object_get(json_array_get(ch, 0), "message");
    IS_STR(json_string_value(json_object_get(m0, "reasoning_content")), "a", "reasoning split");
    IS_STR(json_string_value(json_object_get(m0, "content")), "ok", "content after </think>");
    IS_STR(json_string_value(json_object_get(json_array_get(ch, 0), "finish_reason")), "stop",
           "stop");
    IS_INT(json_integer_value(json_object_get(json_array_get(ch, 0), "stop_reason")), 7,
           "stop_reason is the stop id");
    json_t *m1 = json_object_get(json_array_get(ch, 1), "message");
    IS_STR(json_string_value(json_object_get(m1, "content")), "Hi!", "second choice text");
    OK(json_is_null(json_object_get(m1, "reasoning_content")), "no think block: null reasoning");
    IS_STR(json_string_value(json_object_get(json_array_get(ch, 1), "finish_reason")), "length",
           "length");
    json_t *content =
        json_object_get(json_object_get(json_array_get(ch, 1), "logprobs"), "content");
    IS_INT(json_array_size(content), 2, "a logprob per token");
    json_t *c0 = json_array_get(content, 0);
    IS_STR(json_string_value(json_object_get(c0, "token")), "H", "token text decoded");
    IS_NEAR(json_real_value(json_object_get(c0, "logprob")), -0.1, 1e-6, "logprob");
    IS_INT(json_integer_value(json_array_get(json_object_get(c0, "bytes"), 0)), 'H', "bytes");
    IS_INT(json_array_size(json_object_get(c0, "top_logprobs")), 2, "top_logprobs has k entries");
    IS_STR(json_string_value(
               json_object_get(json_array_get(json_object_get(c0, "top_logprobs"), 1), "token")),
           "e", "second alternative");
    json_t *u = json_object_get(j, "usage");
    IS_INT(json_integer_value(json_object_get(u, "prompt_tokens")), 3, "usage.prompt_tokens");
    IS_INT(json_integer_value(json_object_get(u, "completion_tokens")), 4,
           "usage.completion_tokens over n");
    IS_INT(json_integer_value(json_object_get(u, "total_tokens")), 7, "usage.total_tokens");
    IS_INT(json_integer_value(
               json_object_get(json_object_get(u, "prompt_tokens_details"), "cached_tokens")),
           2, "cached tokens");
    json_decref(j);
    sw_obuf_release(&b);
    /* an event after its choice finished is refused */
    OK(sw_openai_resp_event(a, 0, &ev[0], NULL) == SW_EINVAL, "event after finish refused");
    sw_openai_resp_free(a);

    /* streaming the same */
    r.stream = 1, r.include_usage = 1;
    sw_openai_resp_new(&r, &o, &a);
    sw_openai_resp_set_prompt(a, 0, pids, 3, NULL);
    IS_INT(sw_openai_resp_stream_begin(a, &b), 0, "stream begin");
    for (int i = 0; i < 4; i++)
        sw_openai_resp_event(a, 0, &ev[i], &b);
    sw_openai_resp_stream_end(a, &b);
    int done;
    json_t *cs = chunks(&b, &done);
    OK(done, "stream ends with data: [DONE]");
    IS_INT(json_array_size(cs), 7, "2 role chunks + 4 token chunks + usage chunk");
    json_t *first = json_array_get(cs, 0);
    IS_STR(json_string_value(json_object_get(first, "object")), "chat.completion.chunk",
           "chunk object");
    json_t *d0 = json_object_get(json_array_get(json_object_get(first, "choices"), 0), "delta");
    IS_STR(json_string_value(json_object_get(d0, "role")), "assistant", "role chunk");
    /* chunk 2: choice 0 "<think>a" -> reasoning "a" */
    json_t *c2 = json_array_get(json_object_get(json_array_get(cs, 2), "choices"), 0);
    IS_STR(json_string_value(json_object_get(json_object_get(c2, "delta"), "reasoning_content")),
           "a", "streamed reasoning");
    OK(!json_object_get(json_object_get(c2, "delta"), "content"), "no content yet");
    json_t *c4 = json_array_get(json_object_get(json_array_get(cs, 4), "choices"), 0);
    IS_STR(json_string_value(json_object_get(json_object_get(c4, "delta"), "content")), "ok",
           "streamed content after </think>");
    IS_STR(json_string_value(json_object_get(c4, "finish_reason")), "stop",
           "finish in the last token's chunk");
    IS_INT(json_array_size(json_object_get(json_object_get(c4, "logprobs"), "content")), 1,
           "chunk logprobs in chat shape");
    json_t *last = json_array_get(cs, 6);
    IS_INT(json_array_size(json_object_get(last, "choices")), 0, "usage chunk has no choices");
    IS_INT(json_integer_value(json_object_get(json_object_get(last, "usage"), "completion_tokens")),
           4, "usage chunk counts");
    json_decref(cs);
    sw_obuf_release(&b);
    sw_openai_resp_free(a);

    /* a token that adds no text yet still makes its chunk (one per token, as vLLM); with
     * return_tokens_as_token_ids the logprobs name it by id */
    r.include_usage = 0, r.tokens_as_ids = 1, r.params.n = 1;
    sw_openai_resp_new(&r, &o, &a);
    sw_openai_resp_set_prompt(a, 0, pids, 3, NULL);
    struct sw_engine_event quiet = tok_ev(0, H, "", &lp);
    IS_INT(sw_openai_resp_event(a, 0, &quiet, &b), 0, "textless token event");
    cs = chunks(&b, &done);
    IS_INT(json_array_size(cs), 1, "a chunk for a token without text");
    json_t *q = json_array_get(json_object_get(json_array_get(cs, 0), "choices"), 0);
    IS_STR(json_string_value(json_object_get(json_object_get(q, "delta"), "content")), "",
           "empty content delta");
    char want[32];
    snprintf(want, sizeof want, "token_id:%d", H);
    IS_STR(json_string_value(json_object_get(
               json_array_get(json_object_get(json_object_get(q, "logprobs"), "content"), 0),
               "token")),
           want, "return_tokens_as_token_ids");
    json_decref(cs);
    sw_obuf_release(&b);
    struct sw_openai_error err;
    sw_openai_error_set(&err, 500, NULL, "boom");
    sw_openai_resp_stream_error(a, &err, &b);
    OK(strncmp(b.p, "data: {\"error\": ", 15) == 0 || strncmp(b.p, "data: {\"error\":{", 16) == 0,
       "stream error event");
    sw_obuf_release(&b);
    sw_openai_resp_free(a);
    sw_openai_request_release(&r);
}

static void test_completion_response(const struct sw_tokenizer *tok) {
    struct sw_openai_request r;
    struct sw_openai_error e;
    parse(SW_OPENAI_COMPLETION,
          "{\"prompt\": [\"ab\", \"c\"], \"echo\": true, \"logprobs\": 1, "
          "\"stop\": [\"zz\"]}",
          &r, &e);
    struct sw_openai_resp_opts o = {"cmpl-1", "tiny", 5, SW_REASONING_NONE, tok};
    struct sw_openai_resp *a;
    sw_openai_resp_new(&r, &o, &a);
    int32_t p0[] = {'a' - 32 + 0, 0}, p1[] = {0};
    /* the golden tokenizer is byte-level BPE: find the ids of "a", "b", "c" */
    p0[0] = sw_tokenizer_token_to_id(tok, "a", 1);
    p0[1] = sw_tokenizer_token_to_id(tok, "b", 1);
    p1[0] = sw_tokenizer_token_to_id(tok, "c", 1);
    OK(p0[0] >= 0 && p0[1] >= 0 && p1[0] >= 0, "tokenizer has a, b, c");
    sw_openai_resp_set_prompt(a, 0, p0, 2, "ab");
    sw_openai_resp_set_prompt(a, 1, p1, 1, "c");
    struct sw_logprob_entry top[] = {{p0[1], -0.5f}};
    struct sw_token_logprobs plp = {p0[1], -0.7f, 2, 1, top};
    struct sw_engine_event pe;
    memset(&pe, 0, sizeof pe);
    pe.index = -1, pe.token = -1, pe.prompt_logprobs = &plp, pe.n_prompt_logprobs = 1,
    pe.stop_token = -1;
    IS_INT(sw_openai_resp_event(a, 0, &pe, NULL), 0, "prompt logprobs event");
    struct sw_token_logprobs lp = {p1[0], -1.0f / 0.0f, 5, 1, top};
    struct sw_engine_event ev = tok_ev(0, p1[0], "c", &lp);
    ev.finish = SW_FINISH_STOP, ev.stop_str = "zz";
    sw_openai_resp_event(a, 0, &ev, NULL);
    struct sw_engine_event d0 = tok_ev(-1, -1, "", NULL);
    d0.request_done = 1;
    sw_openai_resp_event(a, 0, &d0, NULL);
    OK(!sw_openai_resp_done(a), "not done before the second prompt");
    struct sw_engine_event ev1 = tok_ev(0, p0[0], "a", &lp);
    ev1.finish = SW_FINISH_LENGTH, ev1.request_done = 1;
    sw_openai_resp_event(a, 1, &ev1, NULL);
    OK(sw_openai_resp_done(a), "done");
    struct sw_obuf b = {0};
    sw_openai_resp_body(a, &b);
    json_t *j = load(&b);
    IS_STR(json_string_value(json_object_get(j, "object")), "text_completion", "object");
    json_t *ch = json_object_get(j, "choices");
    IS_INT(json_array_size(ch), 2, "a choice per prompt");
    json_t *c0 = json_array_get(ch, 0);
    IS_STR(json_string_value(json_object_get(c0, "text")), "abc", "echo + output");
    IS_STR(json_string_value(json_object_get(c0, "stop_reason")), "zz",
           "stop_reason the stop string");
    json_t *lpo = json_object_get(c0, "logprobs");
    json_t *toks = json_object_get(lpo, "tokens"), *tl = json_object_get(lpo, "token_logprobs");
    json_t *tops = json_object_get(lpo, "top_logprobs"),
           *offs = json_object_get(lpo, "text_offset");
    IS_INT(json_array_size(toks), 3, "prompt tokens and the output token");
    IS_STR(json_string_value(json_array_get(toks, 2)), "c", "token strings");
    OK(json_is_null(json_array_get(tl, 0)) && json_is_null(json_array_get(tops, 0)),
       "first prompt token has no logprob");
    IS_NEAR(json_real_value(json_array_get(tl, 1)), -0.7, 1e-6, "prompt token logprob");
    IS_NEAR(json_real_value(json_array_get(tl, 2)), -9999.0, 0, "-inf written as -9999.0");
    IS_INT(json_object_size(json_array_get(tops, 2)), 2, "top alternatives + the chosen token");
    IS_INT(json_integer_value(json_array_get(offs, 0)), 0, "text_offset 0");
    IS_INT(json_integer_value(json_array_get(offs, 2)), 2, "text_offset counts characters");
    json_t *c1 = json_array_get(ch, 1);
    IS_STR(json_string_value(json_object_get(c1, "text")), "ca", "second prompt echoed");
    IS_INT(json_integer_value(
               json_array_get(json_object_get(json_object_get(c1, "logprobs"), "text_offset"), 0)),
           1, "offsets of a prompt without prompt logprobs start after its text");
    IS_INT(json_integer_value(json_object_get(json_object_get(j, "usage"), "prompt_tokens")), 3,
           "prompt tokens over prompts");
    json_decref(j);
    sw_obuf_release(&b);
    sw_openai_resp_free(a);

    /* streaming completions: the echo chunk first, then the token */
    r.stream = 1;
    sw_openai_resp_new(&r, &o, &a);
    sw_openai_resp_set_prompt(a, 0, p0, 2, "ab");
    sw_openai_resp_set_prompt(a, 1, p1, 1, "c");
    sw_openai_resp_stream_begin(a, &b);
    sw_openai_resp_event(a, 0, &pe, &b);
    struct sw_engine_event ev2 = tok_ev(0, p1[0], "c", &lp);
    ev2.finish = SW_FINISH_LENGTH, ev2.request_done = 1;
    sw_openai_resp_event(a, 0, &ev2, &b);
    int done;
    json_t *cs = chunks(&b, &done);
    IS_INT(json_array_size(cs), 2, "echo chunk + token chunk");
    json_t *e0 = json_array_get(json_object_get(json_array_get(cs, 0), "choices"), 0);
    IS_STR(json_string_value(json_object_get(e0, "text")), "ab", "echo chunk text");
    IS_INT(json_array_size(json_object_get(json_object_get(e0, "logprobs"), "tokens")), 2,
           "echo chunk carries the prompt logprobs");
    json_t *t1 = json_array_get(json_object_get(json_array_get(cs, 1), "choices"), 0);
    IS_INT(json_integer_value(
               json_array_get(json_object_get(json_object_get(t1, "logprobs"), "text_offset"), 0)),
           2, "streamed text_offset continues after the echo");
    json_decref(cs);
    sw_obuf_release(&b);
    sw_openai_resp_free(a);
    sw_openai_request_release(&r);
}

static void test_errors_json(void) {
    struct sw_openai_error e;
    OK(sw_openai_error_set(&e, 404, "model", "The model `x` does not exist.") == SW_EFORMAT,
       "4xx -> EFORMAT");
    struct sw_obuf b = {0};
    sw_openai_error_dump(&e, &b);
    json_t *j = load(&b);
    json_t *in = json_object_get(j, "error");
    IS_STR(json_string_value(json_object_get(in, "message")), "The model `x` does not exist.",
           "message");
    IS_STR(json_string_value(json_object_get(in, "type")), "invalid_request_error", "type");
    IS_STR(json_string_value(json_object_get(in, "param")), "model", "param");
    IS_STR(json_string_value(json_object_get(in, "code")), "model_not_found", "code");
    json_decref(j);
    sw_obuf_release(&b);
    sw_openai_error_set(&e, 401, NULL, "bad key");
    sw_openai_error_dump(&e, &b);
    j = load(&b);
    OK(json_is_null(json_object_get(json_object_get(j, "error"), "param")), "no param -> null");
    IS_STR(json_string_value(json_object_get(json_object_get(j, "error"), "type")),
           "authentication_error", "401 type");
    json_decref(j);
    sw_obuf_release(&b);
    sw_openai_error_set(&e, 429, NULL, "busy");
    IS_STR(e.type, "rate_limit_error", "429 type");
}

int main(void) {
    test_chat_parse();
    test_chat_errors();
    test_completion_parse();
    test_max_tokens();
    test_msgpack();
    test_reasoning();
    test_errors_json();
    struct sw_tokenizer *tok = NULL;
    int rc = sw_tokenizer_load("test/golden/generate/model", &tok);
    if (rc < 0) rc = sw_tokenizer_load("../test/golden/generate/model", &tok);
    OK(rc == 0, "golden tokenizer loads (%s)", sw_err_msg());
    if (tok) {
        test_chat_response(tok);
        test_completion_response(tok);
    }
    sw_tokenizer_free(tok);
    return tap_done();
}
