/* serve.c — sw-serve's option table and orchestration: open the engine (model, tokenizer, chat
 * template, adapters, KV cache), start its loop, the HTTP front end and the optional ZeroMQ
 * endpoint, report ready, and on SIGTERM/SIGINT drain: stop accepting, let running requests
 * finish for up to --drain_timeout seconds, abort the rest, exit 0. See docs/serve.md. */
#include "serve.h"

#include "sw_config.h"
#include "sw_err.h"
#include "sw_hub.h"
#include "sw_kernels.h"
#include "sw_log.h"
#include "sw_parallel.h"
#include "sw_signal.h"
#include "sw_template.h"

#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int sw_serve_main(int argc, char **argv);

#define F(x) offsetof(struct serve_opts, x)
static const struct sw_opt serve_table[] = {
    {"model", SW_OPT_STRING, F(model), NULL,
     "HF model folder or sw checkpoint (config.json, weights, tokenizer.json), or a hub id "
     "(org/name: fetched into the hub cache, as sw-fetch does); required",
     0, 0, NULL, NULL},
    {"adapters", SW_OPT_LIST, F(adapters), NULL,
     "LoRA adapters to serve, name=path[,name=path...] (a bare path is named after its folder; "
     "more name=path words may follow as arguments); a request's model picks one",
     0, 0, NULL, NULL},
    {"served_model_name", SW_OPT_LIST, F(served_model_name), NULL,
     "name(s) of the base model in the API, comma-separated (default: the model folder's name)", 0,
     0, NULL, NULL},
    {"tokenizer", SW_OPT_STRING, F(tokenizer), NULL,
     "tokenizer folder or tokenizer.json (default: the model folder)", 0, 0, NULL, NULL},
    {"template", SW_OPT_STRING, F(template_name), NULL,
     "chat template (default: recognised from tokenizer_config.json's chat_template, as sw-pack "
     "does)",
     0, 0, NULL, NULL},
    {"use_hf", SW_OPT_CHOICE, F(use_hf), NULL,
     "hub ids: true = Hugging Face, false = ModelScope (default: $USE_HF, else Hugging Face)", 0, 0,
     "true|false|1|0", NULL},
    {"model_revision", SW_OPT_STRING, F(model_revision), NULL,
     "hub revision of --model (default main / master)", 0, 0, NULL, NULL},
    {"hub_token", SW_OPT_STRING, F(hub_token), NULL,
     "hub access token (default: HF_TOKEN, the huggingface_hub token file, MODELSCOPE_API_TOKEN)",
     0, 0, NULL, NULL},
    {"host", SW_OPT_STRING, F(host), "127.0.0.1",
     "address to listen on (0.0.0.0 or :: for every interface)", 0, 0, NULL, NULL},
    {"port", SW_OPT_INT, F(port), "8000", "TCP port (0: any free port, printed at start)", 0, 65535,
     NULL, NULL},
    {"api_key", SW_OPT_STRING, F(api_key), NULL,
     "require 'Authorization: Bearer KEY' on /v1/* (default: $SW_API_KEY; unset: no key)", 0, 0,
     NULL, NULL},
    {"device", SW_OPT_CHOICE, F(device), "auto",
     "where the model runs (auto: cuda when sw was built with CUDA, else cpu)", 0, 0,
     "auto|cpu|cuda", NULL},
    {"max_model_len", SW_OPT_INT, F(max_model_len), "0",
     "prompt + output tokens of one sequence at most (0: config.json's "
     "max_position_embeddings, capped by the KV cache)",
     0, 1e9, NULL, NULL},
    {"max_num_seqs", SW_OPT_INT, F(max_num_seqs), "256", "sequences in the running batch at most",
     1, 1e6, NULL, NULL},
    {"max_num_batched_tokens", SW_OPT_INT, F(max_num_batched_tokens), "0",
     "new tokens per engine step (0: max(2048, max_num_seqs))", 0, 1e9, NULL, NULL},
    {"max_queue_len", SW_OPT_INT, F(max_waiting), "1024",
     "requests waiting for a place in the batch before new ones get 429 (0: unlimited)", 0, 1e9,
     NULL, NULL},
    {"gpu_memory_utilization", SW_OPT_FLOAT, F(gpu_memory_utilization), "0.9",
     "cuda: fraction of GPU memory for weights, activations and the KV cache", 0.01, 1, NULL, NULL},
    {"kv_cache_memory_bytes", SW_OPT_INT, F(kv_cache_memory_bytes), "0",
     "KV cache size in bytes (wins over gpu_memory_utilization; 0: automatic; cpu: what "
     "max_num_seqs sequences of max_model_len need, at most 1 GiB)",
     0, 1e15, NULL, NULL},
    {"block_size", SW_OPT_INT, F(block_size), "16", "tokens per KV-cache block", 1, 4096, NULL,
     NULL},
    {"enable_prefix_caching", SW_OPT_BOOL, F(enable_prefix_caching), "true",
     "share the KV blocks of a common prompt prefix between requests", 0, 0, NULL, NULL},
    {"max_loras", SW_OPT_INT, F(max_loras), "8", "adapters loaded at once, run-time ones included",
     1, 1e4, NULL, NULL},
    {"seed", SW_OPT_INT, F(seed), "0", "seed of requests that give none", 0, 9.2e18, NULL, NULL},
    {"reasoning_parser", SW_OPT_CHOICE, F(reasoning_parser), "none",
     "chat: move the <think>...</think> section into message.reasoning_content (qwen3: Qwen3's "
     "rule, vLLM's parser of that name)",
     0, 0, "none|qwen3|deepseek_r1", NULL},
    {"max_logprobs", SW_OPT_INT, F(max_logprobs), "20",
     "logprobs / top_logprobs / prompt_logprobs a request may ask for", 0, 1000, NULL, NULL},
    {"zmq_bind", SW_OPT_STRING, F(zmq_bind), NULL,
     "also serve batch clients on this ZeroMQ ROUTER endpoint (tcp://127.0.0.1:5555, ipc://...; "
     "msgpack requests, see docs/serve.md)",
     0, 0, NULL, NULL},
    {"max_request_bytes", SW_OPT_INT, F(max_request_bytes), "16777216",
     "largest request body accepted (413 above)", 1024, 1e12, NULL, NULL},
    {"http_threads", SW_OPT_INT, F(http_threads), "4",
     "HTTP worker threads (parsing, tokenizing, formatting)", 1, 1024, NULL, NULL},
    {"max_connections", SW_OPT_INT, F(max_connections), "4096", "open HTTP connections at most", 1,
     1e6, NULL, NULL},
    {"timeout_keep_alive", SW_OPT_INT, F(timeout_keep_alive), "60",
     "seconds an idle HTTP connection stays open (0: forever)", 0, 1e6, NULL, NULL},
    {"drain_timeout", SW_OPT_INT, F(drain_timeout), "30",
     "on SIGTERM, seconds running requests may take to finish before they are aborted", 0, 1e6,
     NULL, NULL},
    {"access_log", SW_OPT_BOOL, F(access_log), "true", "one JSON line per request on stderr", 0, 0,
     NULL, NULL},
    {"allow_runtime_lora", SW_OPT_BOOL, F(allow_runtime_lora), "false",
     "enable POST /v1/load_lora_adapter and /v1/unload_lora_adapter (vLLM's endpoints)", 0, 0, NULL,
     NULL},
    SW_OPT_END,
};
#undef F

static const struct sw_cli serve_cli = {
    .tool = "sw-serve",
    .command = NULL,
    .usage = "sw-serve --model DIR [--adapters name=path ...] [--port N] [options]",
    .summary =
        "Serve a model over an OpenAI-compatible HTTP API (POST /v1/chat/completions,\n"
        "/v1/completions; GET /v1/models, /health, /metrics) and, with --zmq_bind, a ZeroMQ\n"
        "endpoint for batch clients. The engine batches requests continuously over a paged\n"
        "KV cache; chat templates and the tokenizer are the ones training uses. SIGTERM\n"
        "drains: new requests get 503, running ones finish (up to --drain_timeout), exit 0.",
    .opts = serve_table,
    .min_pos = 0,
    .max_pos = -1,
};

/* Split "a=b,c" / positional words into engine adapters (strings owned by *store); a path that
 * is a hub id is fetched (o's hub options). */
static int parse_adapters(const struct serve_opts *o, const char *list, char **pos, int npos,
                          struct sw_engine_adapter **out, int *n, char ***store, int *nstore) {
    *out = NULL, *n = 0, *store = NULL, *nstore = 0;
    int cap = npos + 1;
    for (const char *p = list; p && *p; p++)
        cap += *p == ',';
    struct sw_engine_adapter *a = calloc((size_t)cap, sizeof *a);
    char **st = calloc((size_t)cap * 2, sizeof *st);
    if (!a || !st) {
        free(a), free(st);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    *out = a, *store = st;
    char *copy = list ? strdup(list) : NULL;
    int k = 0;
    for (int round = 0; round < 2; round++) {
        int count = round == 0 ? (copy ? 1 : 0) : npos;
        char *save = NULL;
        char *tok = round == 0 && copy ? strtok_r(copy, ",", &save) : NULL;
        for (int i = 0; round == 0 ? tok != NULL : i < count; i++) {
            const char *w = round == 0 ? tok : pos[i];
            if (round == 1 && !strchr(w, '='))
                return free(copy), sw_err_set(SW_EUSAGE,
                                              "unexpected argument '%s' (adapters are "
                                              "given as name=path)",
                                              w);
            const char *eq = strchr(w, '=');
            char *name, *path;
            if (eq) {
                name = strndup(w, (size_t)(eq - w));
                path = strdup(eq + 1);
            } else {
                path = strdup(w);
                size_t len = strlen(w);
                while (len > 1 && w[len - 1] == '/')
                    len--; /* "dir/" names itself "dir" */
                const char *b = NULL;
                for (size_t j = 0; j < len; j++)
                    if (w[j] == '/') b = w + j;
                name = b ? strndup(b + 1, len - (size_t)(b + 1 - w)) : strndup(w, len);
            }
            if (!name || !path) return free(copy), sw_err_set(SW_ENOMEM, "out of memory");
            st[(*nstore)++] = name;
            st[(*nstore)++] = path;
            if (!*name || !*path)
                return free(copy), sw_err_set(SW_EUSAGE, "--adapters '%s': expected name=path", w);
            int rc = sw_hub_resolve_arg(&st[*nstore - 1], SW_HUB_NEED_MODEL, o->use_hf, NULL,
                                        o->hub_token);
            if (rc < 0) return free(copy), sw_err_wrap(rc, "--adapters %s", name);
            path = st[*nstore - 1];
            for (int j = 0; j < k; j++)
                if (strcmp(a[j].name, name) == 0)
                    return free(copy), sw_err_set(SW_EUSAGE,
                                                  "--adapters: the name '%s' is used "
                                                  "twice",
                                                  name);
            a[k].name = name, a[k].path = path;
            k++;
            if (round == 0) tok = strtok_r(NULL, ",", &save);
        }
    }
    free(copy);
    *n = k;
    return 0;
}

static int split_names(struct serve *s, const char *list, const char *fallback) {
    int cap = 2;
    for (const char *p = list; p && *p; p++)
        cap += *p == ',';
    s->names = calloc((size_t)cap, sizeof *s->names);
    if (!s->names) return sw_err_set(SW_ENOMEM, "out of memory");
    if (list && *list) {
        char *copy = strdup(list), *save = NULL;
        if (!copy) return sw_err_set(SW_ENOMEM, "out of memory");
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
            if (*t && !(s->names[s->n_names++] = strdup(t))) return sw_err_set(SW_ENOMEM, "oom");
        free(copy);
    }
    if (s->n_names == 0 && !(s->names[s->n_names++] = strdup(fallback)))
        return sw_err_set(SW_ENOMEM, "out of memory");
    return 0;
}

static int wait_jobs(struct serve *s, double seconds) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    double t = (double)dl.tv_sec + (double)dl.tv_nsec * 1e-9 + seconds;
    dl.tv_sec = (time_t)t;
    dl.tv_nsec = (long)((t - (double)dl.tv_sec) * 1e9);
    pthread_mutex_lock(&s->jobs_mu);
    while (s->jobs > 0)
        if (pthread_cond_timedwait(&s->jobs_cv, &s->jobs_mu, &dl) == ETIMEDOUT) break;
    int64_t left = s->jobs;
    pthread_mutex_unlock(&s->jobs_mu);
    return (int)left;
}

static int serve_run(struct serve_opts *o, char **pos, int npos, double t_start) {
    struct serve s;
    memset(&s, 0, sizeof s);
    s.o = o;
    pthread_mutex_init(&s.jobs_mu, NULL);
    pthread_cond_init(&s.jobs_cv, NULL);
    pthread_mutex_init(&s.log_mu, NULL);
    serve_metrics_init(&s.metrics);
    s.created = (int64_t)time(NULL);
    sw_openai_limits_init(&s.limits);
    s.limits.max_logprobs = (int)o->max_logprobs;
    int rc = sw_reasoning_mode_parse(o->reasoning_parser, &s.reasoning);
    if (!o->api_key && getenv("SW_API_KEY") && *getenv("SW_API_KEY"))
        o->api_key = strdup(getenv("SW_API_KEY"));
    if (rc == 0 && o->template_name && !sw_template_get(o->template_name))
        rc = sw_err_set(SW_EUSAGE, "unknown --template '%s' (%s)", o->template_name,
                        sw_template_names());

    struct sw_engine_adapter *ad = NULL;
    int nad = 0, nstore = 0;
    char **store = NULL;
    /* hub ids (org/name) become snapshot folders in the hub cache; paths stay as they are. A
     * hub model is served under its id by default (vLLM's way), a folder under its name. */
    char *given = o->model ? strdup(o->model) : NULL;
    if (rc == 0)
        rc = sw_hub_resolve_arg(&o->model, SW_HUB_NEED_MODEL, o->use_hf, o->model_revision,
                                o->hub_token);
    if (rc == 0)
        rc =
            sw_hub_resolve_arg(&o->tokenizer, SW_HUB_NEED_TOKENIZER, o->use_hf, NULL, o->hub_token);
    if (rc == 0) rc = parse_adapters(o, o->adapters, pos, npos, &ad, &nad, &store, &nstore);
    struct sw_engine_opts eo;
    sw_engine_opts_init(&eo);
    eo.model_dir = o->model;
    eo.tokenizer = o->tokenizer;
    eo.template_name = o->template_name;
    eo.adapters = ad;
    eo.n_adapters = nad;
    eo.max_loras = (int)o->max_loras;
    /* auto: the GPU when this build has its backend */
    eo.device = strcmp(o->device, "cuda") == 0 ||
                        (strcmp(o->device, "auto") == 0 && sw_backend_available(SW_DEVICE_CUDA))
                    ? SW_DEVICE_CUDA
                    : SW_DEVICE_CPU;
    if (rc == 0 && eo.device == SW_DEVICE_CUDA && !sw_backend_available(SW_DEVICE_CUDA))
        rc = sw_err_set(SW_EUNSUPPORTED, "--device cuda: this sw was built without CUDA (rebuild "
                                         "with make CUDA=1, or use --device cpu)");
    eo.max_model_len = o->max_model_len;
    eo.max_num_seqs = (int)o->max_num_seqs;
    eo.max_waiting = (int)o->max_waiting;
    eo.gpu_memory_utilization = o->gpu_memory_utilization;
    eo.kv_cache_bytes = o->kv_cache_memory_bytes;
    eo.block_size = (int)o->block_size;
    eo.max_num_batched_tokens = o->max_num_batched_tokens;
    eo.enable_prefix_caching = o->enable_prefix_caching;
    eo.seed = (uint64_t)o->seed;
    if (rc == 0) rc = sw_engine_open(&eo, &s.engine);
    for (int i = 0; i < nstore; i++)
        free(store[i]);
    free(store), free(ad);
    int from_hub = given && o->model && strcmp(given, o->model) != 0;
    if (rc == 0)
        rc = split_names(&s, o->served_model_name,
                         from_hub ? given : sw_engine_model_name(s.engine));
    free(given);
    if (rc == 0) {
        sw_engine_default_params(s.engine, &s.defaults);
        const struct sw_generation_config *gc = sw_engine_generation_config(s.engine);
        s.gen_cap = gc && gc->max_new_tokens > 0 ? gc->max_new_tokens : 0;
        s.max_model_len = sw_engine_max_model_len(s.engine);
        rc = sw_engine_start(s.engine);
    }
    int port = 0;
    if (rc == 0) rc = sw_signal_install();
    if (rc == 0) rc = serve_http_start(&s, &s.http, &port);
    if (rc == 0 && o->zmq_bind) rc = serve_zmq_start(&s, o->zmq_bind, &s.zmq);
    if (rc == 0) {
        double ready = serve_now() - t_start;
        pthread_mutex_lock(&s.metrics.mu);
        s.metrics.ready_seconds = ready;
        pthread_mutex_unlock(&s.metrics.mu);
        const struct sw_template *t = sw_engine_template(s.engine);
        int v6 = strchr(o->host, ':') != NULL; /* http://[::1]:8000 */
        sw_info(
            "serving %s (%d adapter%s, template %s, max_model_len %lld) on http://%s%s%s:%d%s%s",
            serve_model_name(&s), sw_engine_adapter_count(s.engine),
            sw_engine_adapter_count(s.engine) == 1 ? "" : "s", t ? sw_template_name(t) : "none",
            (long long)s.max_model_len, v6 ? "[" : "", o->host, v6 ? "]" : "", port,
            o->zmq_bind ? " and " : "", o->zmq_bind ? o->zmq_bind : "");
        sw_info("ready in %.3f s", ready);
        /* Idle: hand freed heap pages back to the system (glibc keeps them in its per-thread
         * arenas otherwise), so a server's RSS returns to its idle level after a burst. */
        uint64_t seen = 0;
        int quiet = 0;
        while (!sw_signal_pending()) {
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&s.jobs_mu);
            int64_t busy = s.jobs;
            uint64_t ids = s.jobs_started;
            pthread_mutex_unlock(&s.jobs_mu);
            quiet = busy == 0 ? quiet + 1 : 0;
            if (quiet == 10 && ids != seen) { /* 0.5 s without a request, after some */
                malloc_trim(0);
                seen = ids;
            }
        }
        /* drain: stop accepting, let running requests finish, then abort the rest */
        __atomic_store_n(&s.draining, 1, __ATOMIC_RELEASE);
        serve_http_quiesce(s.http);
        serve_zmq_quiesce(s.zmq);
        int64_t busy;
        pthread_mutex_lock(&s.jobs_mu);
        busy = s.jobs;
        pthread_mutex_unlock(&s.jobs_mu);
        sw_info("signal %d: draining %lld request%s (up to %lld s)", sw_signal_pending(),
                (long long)busy, busy == 1 ? "" : "s", (long long)o->drain_timeout);
        int left = wait_jobs(&s, (double)o->drain_timeout);
        if (left)
            sw_warn("aborting %d request%s still running after %lld s", left, left == 1 ? "" : "s",
                    (long long)o->drain_timeout);
        rc = sw_engine_stop(s.engine, 0);
        left = wait_jobs(&s, 5.0);
        if (left) sw_warn("%d request%s did not finish", left, left == 1 ? "" : "s");
    }
    serve_zmq_stop(s.zmq);
    serve_http_stop(s.http);
    sw_engine_close(s.engine);
    sw_signal_restore();
    for (int i = 0; i < s.n_names; i++)
        free(s.names[i]);
    free(s.names);
    serve_metrics_release(&s.metrics);
    if (rc == 0) sw_info("stopped");
    return rc;
}

int sw_serve_main(int argc, char **argv) {
    double t0 = serve_now();
    struct serve_opts o;
    char **pos = NULL;
    int npos = 0;
    int rc = sw_cli_parse(&serve_cli, &o, argc, argv, &pos, &npos);
    if (rc == 1) return 0; /* --help / --version */
    if (rc < 0) return sw_log_report(rc);
    if (!o.model) rc = sw_err_set(SW_EUSAGE, "--model is required (see sw-serve --help)");
    if (rc == 0) {
        sw_parallel_init();
        rc = serve_run(&o, pos, npos, t0);
    }
    free(pos);
    sw_config_release(serve_table, &o);
    return rc < 0 ? sw_log_report(rc) : 0;
}
