/* sw_bench_http — the OpenAI-compatible endpoint backend (sw-serve, vLLM, ...), over libcurl:
 *
 *   - log-likelihood: POST {url}/completions {"prompt": context + continuation, "max_tokens": 0,
 *     "echo": true, "logprobs": 1, "temperature": 0}; the continuation's tokens are those whose
 *     text_offset (in characters, as the API gives it) is at or after the context's length; their
 *     token_logprobs are summed, and is_greedy checks each against its top_logprobs entry. A
 *     server that returns no echoed logprobs is a clear error (the harness needs them);
 *   - generation: POST {url}/completions {"prompt", "max_tokens", "stop" (the first 4 stop
 *     strings, the API's limit), "temperature": 0}, or with --apply_chat_template
 *     {url}/chat/completions with the system and user messages; the text is cut at every stop
 *     string afterwards as the harness does.
 *
 * Requests go out `parallel` at a time (curl multi) in waves; results are reported per wave. An
 * unreachable endpoint fails the first wave with curl's reason and the URL. */
#include "sw_bench.h"
#include "sw_bench_impl.h"

#include "sw_err.h"
#include "sw_log.h"
#include "sw_tokenizer.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct http {
    char *base, *model, *auth;
    long timeout_s;
    int parallel, chat;
    struct sw_tokenizer *tok; /* NULL: text prompts */
    int64_t max_length;
};

struct resp {
    char *p;
    size_t n;
};

static size_t on_data(char *d, size_t sz, size_t nm, void *u) {
    struct resp *r = u;
    size_t k = sz * nm;
    if (r->n + k > ((size_t)1 << 30)) return 0;
    char *p = realloc(r->p, r->n + k + 1);
    if (!p) return 0;
    memcpy(p + r->n, d, k);
    r->p = p;
    r->n += k;
    r->p[r->n] = 0;
    return k;
}

struct call {
    CURL *h;
    struct curl_slist *hdr;
    char *body;
    struct resp resp;
    long status;
    CURLcode code;
};

static int call_setup(struct http *H, struct call *c, const char *path, json_t *body) {
    memset(c, 0, sizeof *c);
    c->body = json_dumps(body, JSON_COMPACT);
    c->h = curl_easy_init();
    if (!c->body || !c->h) return sw_err_set(SW_ENOMEM, "out of memory");
    char url[4096];
    snprintf(url, sizeof url, "%s%s", H->base, path);
    c->hdr = curl_slist_append(NULL, "Content-Type: application/json");
    if (H->auth) c->hdr = curl_slist_append(c->hdr, H->auth);
    curl_easy_setopt(c->h, CURLOPT_URL, url);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->hdr);
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, c->body);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &c->resp);
    curl_easy_setopt(c->h, CURLOPT_TIMEOUT, H->timeout_s);
    curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
    return 0;
}

static void call_release(struct call *c) {
    if (c->h) curl_easy_cleanup(c->h);
    curl_slist_free_all(c->hdr);
    free(c->body), free(c->resp.p);
}

/* Run n prepared calls in one curl multi; codes and statuses land in the calls. */
static int run_wave(struct call *c, size_t n) {
    CURLM *m = curl_multi_init();
    if (!m) return sw_err_set(SW_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        curl_multi_add_handle(m, c[i].h);
    int running = 1;
    while (running) {
        if (curl_multi_perform(m, &running) != CURLM_OK) break;
        if (running) curl_multi_poll(m, NULL, 0, 200, NULL);
    }
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left)))
        if (msg->msg == CURLMSG_DONE)
            for (size_t i = 0; i < n; i++)
                if (c[i].h == msg->easy_handle) c[i].code = msg->data.result;
    for (size_t i = 0; i < n; i++) {
        curl_easy_getinfo(c[i].h, CURLINFO_RESPONSE_CODE, &c[i].status);
        curl_multi_remove_handle(m, c[i].h);
    }
    curl_multi_cleanup(m);
    return 0;
}

/* Parse a finished call's JSON (checking transport and HTTP status). */
static int call_json(struct http *H, struct call *c, const char *path, json_t **out) {
    *out = NULL;
    if (c->code != CURLE_OK)
        return sw_err_set(SW_EIO, "cannot reach %s%s: %s", H->base, path,
                          curl_easy_strerror(c->code));
    json_error_t e;
    json_t *j = c->resp.p ? json_loads(c->resp.p, 0, &e) : NULL;
    if (c->status != 200) {
        const char *msg =
            json_string_value(json_object_get(json_object_get(j, "error"), "message"));
        int rc = sw_err_set(SW_EIO, "%s%s: HTTP %ld%s%s", H->base, path, c->status, msg ? ": " : "",
                            msg ? msg : "");
        json_decref(j);
        return rc;
    }
    if (!j) return sw_err_set(SW_EFORMAT, "%s%s: the answer is not JSON", H->base, path);
    *out = j;
    return 0;
}

static size_t u8chars(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) k++;
    return k;
}

/* ctx_chars: text prompts, the continuation starts at this text_offset; ncont > 0: token
 * prompts, the continuation is the last ncont tokens. */
static int parse_ll(struct http *H, json_t *j, size_t ctx_chars, int64_t ncont,
                    struct sw_bench_ll_res *r) {
    json_t *lp = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "logprobs");
    json_t *toks = json_object_get(lp, "tokens"), *tlp = json_object_get(lp, "token_logprobs"),
           *top = json_object_get(lp, "top_logprobs"), *off = json_object_get(lp, "text_offset");
    if (!json_is_array(tlp) || !json_is_array(off) || json_array_size(off) != json_array_size(tlp))
        return sw_err_set(SW_EUNSUPPORTED,
                          "%s/completions: no echoed prompt logprobs "
                          "(choices[0].logprobs.token_logprobs / text_offset): the server does not "
                          "support echo + logprobs, which log-likelihood tasks need",
                          H->base);
    double sum = 0;
    int g = 1, nt = 0;
    size_t nt_all = json_array_size(tlp);
    if (ncont > 0 && (size_t)ncont >= nt_all)
        return sw_err_set(SW_EFORMAT,
                          "%s/completions: %zu echoed tokens for a continuation of "
                          "%lld",
                          H->base, nt_all, (long long)ncont);
    for (size_t i = 0; i < nt_all; i++) {
        if (ncont > 0 ? i < nt_all - (size_t)ncont
                      : (size_t)json_integer_value(json_array_get(off, i)) < ctx_chars)
            continue;
        json_t *v = json_array_get(tlp, i);
        if (!json_is_number(v))
            return sw_err_set(SW_EFORMAT, "%s/completions: token_logprobs[%zu] is not a number",
                              H->base, i);
        sum += json_number_value(v);
        nt++;
        json_t *t = json_array_get(top, i);
        const char *tok = json_string_value(json_array_get(toks, i));
        if (json_is_object(t) && tok) {
            const char *k, *best = NULL;
            json_t *x;
            double bv = -1e300;
            json_object_foreach(t, k, x) if (json_number_value(x) > bv) bv = json_number_value(x),
                                                                        best = k;
            if (best && strcmp(best, tok) != 0) g = 0;
        }
    }
    if (nt == 0)
        return sw_err_set(SW_EFORMAT,
                          "%s/completions: no token of the continuation in the echoed "
                          "prompt",
                          H->base);
    *r = (struct sw_bench_ll_res){sum, g, nt};
    return 0;
}

static int http_loglik(struct sw_bench_backend *b, const struct sw_bench_ll_req *q, size_t n,
                       struct sw_bench_ll_res *out, sw_bench_done_fn done, void *ctx) {
    struct http *H = b->impl;
    struct call *c = calloc((size_t)H->parallel, sizeof(*c));
    int64_t *ncont = calloc((size_t)H->parallel, sizeof(int64_t));
    if (!c || !ncont) {
        free(c), free(ncont);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    int rc = 0;
    for (size_t w0 = 0; rc == 0 && w0 < n; w0 += (size_t)H->parallel) {
        size_t w1 = w0 + (size_t)H->parallel < n ? w0 + (size_t)H->parallel : n;
        for (size_t i = w0; rc == 0 && i < w1; i++) {
            json_t *prompt = NULL;
            if (H->tok) {
                int32_t *ids = NULL;
                int64_t nids = 0;
                rc = sw_bench_tokenize_pair(H->tok, H->max_length, q[i].context, q[i].continuation,
                                            &ids, &nids, &ncont[i - w0]);
                if (rc == 0) {
                    /* one prompt as a list of token-id lists: [[ids]] (a flat list longer than
                     * a server's prompt-count limit is refused by some) */
                    json_t *one = json_array();
                    for (int64_t t = 0; t < nids; t++)
                        json_array_append_new(one, json_integer(ids[t]));
                    prompt = json_array();
                    json_array_append_new(prompt, one);
                }
                free(ids);
                if (rc < 0) break;
            } else {
                size_t lc = strlen(q[i].context), lo = strlen(q[i].continuation);
                char *p = malloc(lc + lo + 1);
                if (!p) {
                    rc = sw_err_set(SW_ENOMEM, "out of memory");
                    break;
                }
                memcpy(p, q[i].context, lc);
                memcpy(p + lc, q[i].continuation, lo + 1);
                prompt = json_string(p);
                free(p);
                ncont[i - w0] = 0;
            }
            json_t *body =
                json_pack("{s:s,s:o,s:i,s:b,s:i,s:f}", "model", H->model, "prompt", prompt,
                          "max_tokens", 0, "echo", 1, "logprobs", 1, "temperature", 0.0);
            rc = call_setup(H, &c[i - w0], "/completions", body);
            json_decref(body);
        }
        if (rc == 0) rc = run_wave(c, w1 - w0);
        for (size_t i = w0; rc == 0 && i < w1; i++) {
            json_t *j;
            rc = call_json(H, &c[i - w0], "/completions", &j);
            if (rc == 0)
                rc = parse_ll(H, j, u8chars(q[i].context, strlen(q[i].context)), ncont[i - w0],
                              &out[i]);
            json_decref(j);
        }
        for (size_t i = 0; i < w1 - w0; i++)
            call_release(&c[i]);
        if (rc == 0 && done) rc = done(ctx, w0, w1);
    }
    free(c), free(ncont);
    return rc;
}

static int http_generate(struct sw_bench_backend *b, const struct sw_bench_gen_req *q, size_t n,
                         char **out, sw_bench_done_fn done, void *ctx) {
    struct http *H = b->impl;
    struct call *c = calloc((size_t)H->parallel, sizeof(*c));
    if (!c) return sw_err_set(SW_ENOMEM, "out of memory");
    const char *path = H->chat ? "/chat/completions" : "/completions";
    int rc = 0;
    for (size_t w0 = 0; rc == 0 && w0 < n; w0 += (size_t)H->parallel) {
        size_t w1 = w0 + (size_t)H->parallel < n ? w0 + (size_t)H->parallel : n;
        for (size_t i = w0; rc == 0 && i < w1; i++) {
            json_t *stop = json_array();
            for (int u = 0; u < q[i].nuntil && u < 4; u++)
                json_array_append_new(stop, json_string(q[i].until[u]));
            json_t *body =
                json_pack("{s:s,s:I,s:f,s:o}", "model", H->model, "max_tokens",
                          (json_int_t)q[i].max_gen_toks, "temperature", 0.0, "stop", stop);
            if (H->chat) {
                json_t *msgs = json_array();
                if (q[i].system)
                    json_array_append_new(
                        msgs, json_pack("{s:s,s:s}", "role", "system", "content", q[i].system));
                json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content",
                                                      q[i].user ? q[i].user : q[i].context));
                json_object_set_new(body, "messages", msgs);
            } else if (H->tok) {
                /* token prompt: the context's last max_length - max_gen_toks tokens, as the
                 * harness cuts it */
                struct sw_tok_ids t = {0};
                rc = sw_tokenizer_encode_append(H->tok, q[i].context, strlen(q[i].context), 0, &t);
                int64_t keep = H->max_length - q[i].max_gen_toks;
                if (rc == 0 && (keep < 1 || t.n == 0))
                    rc = sw_err_set(SW_EINVAL,
                                    "generation: no room for the context (max_length "
                                    "%lld, max_gen_toks %lld)",
                                    (long long)H->max_length, (long long)q[i].max_gen_toks);
                if (rc == 0) {
                    size_t skip = (int64_t)t.n > keep ? t.n - (size_t)keep : 0;
                    json_t *one = json_array(), *pr = json_array();
                    for (size_t k = skip; k < t.n; k++)
                        json_array_append_new(one, json_integer(t.ids[k]));
                    json_array_append_new(pr, one);
                    json_object_set_new(body, "prompt", pr);
                }
                sw_tok_ids_release(&t);
                if (rc < 0) {
                    json_decref(body);
                    break;
                }
            } else
                json_object_set_new(body, "prompt", json_string(q[i].context));
            rc = call_setup(H, &c[i - w0], path, body);
            json_decref(body);
        }
        if (rc == 0) rc = run_wave(c, w1 - w0);
        for (size_t i = w0; rc == 0 && i < w1; i++) {
            json_t *j;
            rc = call_json(H, &c[i - w0], path, &j);
            json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
            const char *t =
                H->chat
                    ? json_string_value(json_object_get(json_object_get(ch, "message"), "content"))
                    : json_string_value(json_object_get(ch, "text"));
            if (rc == 0 && !t)
                rc = sw_err_set(SW_EFORMAT, "%s%s: no choices[0].%s in the answer", H->base, path,
                                H->chat ? "message.content" : "text");
            if (rc == 0) {
                out[i] = strdup(t);
                if (!out[i]) rc = sw_err_set(SW_ENOMEM, "out of memory");
                for (int u = 0; rc == 0 && u < q[i].nuntil; u++) {
                    char *s = *q[i].until[u] ? strstr(out[i], q[i].until[u]) : NULL;
                    if (s) *s = 0;
                }
            }
            json_decref(j);
        }
        for (size_t i = 0; i < w1 - w0; i++)
            call_release(&c[i]);
        if (rc == 0 && done) rc = done(ctx, w0, w1);
    }
    free(c);
    return rc;
}

static void http_free(struct sw_bench_backend *b) {
    struct http *H = b->impl;
    if (!H) return;
    free(H->base), free(H->model), free(H->auth);
    sw_tokenizer_free(H->tok);
    free(H);
}

int sw_bench_http_new(const struct sw_bench_http_opts *o, struct sw_bench_backend **out) {
    *out = NULL;
    static int inited;
    if (!inited) curl_global_init(CURL_GLOBAL_DEFAULT), inited = 1;
    struct sw_bench_backend *b = calloc(1, sizeof(*b));
    struct http *H = calloc(1, sizeof(*H));
    if (!b || !H) {
        free(b), free(H);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    b->impl = H;
    b->kind = "http";
    b->free = http_free;
    b->loglik = http_loglik;
    b->generate = http_generate;
    H->base = strdup(o->url);
    if (H->base) {
        size_t l = strlen(H->base);
        while (l && H->base[l - 1] == '/')
            H->base[--l] = 0;
    }
    H->model = strdup(o->model ? o->model : "default");
    H->timeout_s = o->timeout_s > 0 ? (long)o->timeout_s : 600;
    H->parallel = o->parallel > 0 ? (int)o->parallel : 8;
    H->chat = o->chat;
    if (o->api_key) {
        size_t l = strlen(o->api_key) + 32;
        H->auth = malloc(l);
        if (H->auth) snprintf(H->auth, l, "Authorization: Bearer %s", o->api_key);
    }
    char id[8192];
    snprintf(id, sizeof id, "http:%s#%s", o->url, H->model ? H->model : "");
    b->identity = strdup(id);
    if (!H->base || !H->model || !b->identity || (o->api_key && !H->auth)) {
        sw_bench_backend_free(b);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    if (strncmp(H->base, "http://", 7) != 0 && strncmp(H->base, "https://", 8) != 0) {
        int rc = sw_err_set(SW_EUSAGE, "--api_url '%s': expected http://host:port/v1", o->url);
        sw_bench_backend_free(b);
        return rc;
    }
    if (o->tokenizer) {
        int rc = sw_tokenizer_load(o->tokenizer, &H->tok);
        if (rc == 0 && o->max_length > 0)
            H->max_length = o->max_length;
        else if (rc == 0) {
            /* the server's context length, as /models reports it (sw-serve, vLLM) */
            struct call c;
            json_t *none = json_object();
            H->max_length = 2048;
            if (call_setup(H, &c, "/models", none) == 0) {
                curl_easy_setopt(c.h, CURLOPT_HTTPGET, 1L);
                if (run_wave(&c, 1) == 0 && c.code == CURLE_OK && c.status == 200) {
                    json_t *j = json_loads(c.resp.p ? c.resp.p : "", 0, NULL);
                    json_t *m = json_object_get(json_array_get(json_object_get(j, "data"), 0),
                                                "max_model_len");
                    if (json_is_integer(m) && json_integer_value(m) > 0)
                        H->max_length = json_integer_value(m);
                    json_decref(j);
                }
            }
            call_release(&c);
            json_decref(none);
        }
        if (rc < 0) {
            sw_bench_backend_free(b);
            return rc;
        }
        sw_info("%s: token prompts (tokenizer %s), max_length %lld", o->url, o->tokenizer,
                (long long)H->max_length);
    }
    *out = b;
    return 0;
}
