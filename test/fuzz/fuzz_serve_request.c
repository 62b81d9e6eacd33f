/* libFuzzer target: sw-serve's request parsing over arbitrary bytes (lib/infer/sw_openai*.c).
 * The first byte picks the path: 0 a /v1/chat/completions body, 1 a /v1/completions body (both
 * JSON), 2 a ZeroMQ request (msgpack → JSON → either parser), 3 the streaming reasoning split fed
 * the rest in pieces, 4 a whole-output reasoning split. A request that parses is then run
 * through the response assembler with synthetic engine events (streaming and not), so the
 * accepted shapes are exercised end to end. */
#include "sw_openai.h"

#include "sw_err.h"

#include <stdint.h>
#include <string.h>

/* vLLM's neutral SamplingParams (what sw_sampling_params_init sets), written out so this file
 * needs only lib/infer/sw_openai*.c. */
static void params_init(struct sw_sampling_params *p) {
    memset(p, 0, sizeof *p);
    p->n = 1, p->max_tokens = 16, p->temperature = 1, p->top_p = 1, p->repetition_penalty = 1;
    p->logprobs = -1, p->prompt_logprobs = -1, p->skip_special_tokens = 1;
}

static void assemble(struct sw_openai_request *r, const uint8_t *data, size_t size) {
    struct sw_openai_resp_opts o = {"id", "m", 1, (enum sw_reasoning_mode)(size % 3), NULL};
    for (int stream = 0; stream < 2; stream++) {
        r->stream = stream;
        struct sw_openai_resp *a;
        if (sw_openai_resp_new(r, &o, &a) < 0) return;
        int32_t ids[3] = {1, 2, 3};
        int np = r->kind == SW_OPENAI_CHAT ? 1 : r->n_prompts;
        for (int i = 0; i < np; i++)
            sw_openai_resp_set_prompt(a, i, ids, 3, i % 2 ? NULL : "abc");
        struct sw_obuf out = {0};
        sw_openai_resp_stream_begin(a, &out);
        struct sw_logprob_entry top[2] = {{5, -1.0f}, {6, -2.0f}};
        struct sw_token_logprobs lp = {4, -0.5f, 1, 2, top};
        struct sw_token_logprobs plp[2] = {{2, -1.5f, 3, 2, top}, {3, -0.25f, 1, 1, top}};
        int n = r->params.n > 0 ? r->params.n : 1;
        for (int i = 0; i < np; i++) {
            struct sw_engine_event pe;
            memset(&pe, 0, sizeof pe);
            pe.index = -1, pe.token = -1, pe.prompt_logprobs = plp, pe.n_prompt_logprobs = 2;
            pe.stop_token = -1;
            sw_openai_resp_event(a, i, &pe, stream ? &out : NULL);
            for (int s = 0; s < n && s < 4; s++) {
                struct sw_engine_event ev;
                memset(&ev, 0, sizeof ev);
                ev.index = s, ev.token = 4, ev.logprobs = &lp, ev.stop_token = -1;
                ev.text = (const char *)data;
                ev.text_len = size < 40 ? size : 40; /* arbitrary bytes as token text */
                sw_openai_resp_event(a, i, &ev, stream ? &out : NULL);
                ev.finish = SW_FINISH_STOP, ev.stop_token = 4, ev.text_len = 0;
                ev.request_done = s == n - 1;
                sw_openai_resp_event(a, i, &ev, stream ? &out : NULL);
            }
        }
        if (stream)
            sw_openai_resp_stream_end(a, &out);
        else
            sw_openai_resp_body(a, &out);
        sw_obuf_release(&out);
        sw_openai_resp_free(a);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0] % 5;
    data++, size--;
    struct sw_sampling_params d;
    params_init(&d);
    struct sw_openai_limits lim;
    sw_openai_limits_init(&lim);
    lim.max_n = 4;
    lim.max_prompts = 8;
    struct sw_openai_request r;
    struct sw_openai_error e;
    if (mode <= 1) {
        if (sw_openai_request_parse(mode ? SW_OPENAI_COMPLETION : SW_OPENAI_CHAT,
                                    (const char *)data, size, &d, &lim, &r, &e) == 0)
            assemble(&r, data, size);
        sw_openai_request_release(&r);
    } else if (mode == 2) {
        json_t *j = NULL;
        if (sw_openai_msgpack_to_json(data, size, &j) == 0) {
            enum sw_openai_kind k = json_is_object(j) && json_object_get(j, "messages")
                                        ? SW_OPENAI_CHAT
                                        : SW_OPENAI_COMPLETION;
            if (sw_openai_request_from_json(k, j, &d, &lim, &r, &e) == 0) assemble(&r, data, size);
            sw_openai_request_release(&r);
        }
        json_decref(j);
    } else if (mode == 3) {
        struct sw_reasoning_stream s;
        sw_reasoning_stream_init(&s, size % 2 ? SW_REASONING_QWEN3 : SW_REASONING_DEEPSEEK_R1);
        struct sw_obuf rs = {0}, cs = {0};
        size_t step = size % 7 + 1;
        for (size_t i = 0; i < size; i += step)
            sw_reasoning_stream_feed(&s, (const char *)data + i, i + step <= size ? step : size - i,
                                     i + step >= size, &rs, &cs);
        /* nothing is lost or invented: the pieces hold every byte but the tags */
        if (rs.len + cs.len > size) __builtin_trap();
        sw_obuf_release(&rs), sw_obuf_release(&cs);
    } else {
        struct sw_reasoning_split sp;
        sw_reasoning_split(size % 2 ? SW_REASONING_QWEN3 : SW_REASONING_DEEPSEEK_R1,
                           (const char *)data, size, &sp);
        if (sp.reasoning_off + sp.reasoning_len > size || sp.content_off + sp.content_len > size)
            __builtin_trap();
    }
    return 0;
}
