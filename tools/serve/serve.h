/* serve.h — the parts of sw-serve and how they meet.
 *
 *   main.c     options, engine start, the HTTP and ZeroMQ front ends, SIGTERM drain
 *   job.c      one API request from parsed body to engine submissions and back: prompt
 *              encoding (chat template / tokenizer), model → adapter, the engine callback that
 *              copies events into the job's queue (the engine thread does nothing else), the
 *              wake-up of the transport, reference counting
 *   http.c     libmicrohttpd front end: routes, auth, body limits, suspend/resume streaming,
 *              disconnect watchdog, access log
 *   zmq.c      ZeroMQ ROUTER front end for batch clients (msgpack in and out)
 *   metrics.c  counters and histograms, Prometheus text for GET /metrics
 *
 * Threads: the engine loop thread runs callbacks (job_engine_cb); libmicrohttpd's worker threads
 * run the HTTP handlers (and turn queued events into response bytes); one ZeroMQ thread owns
 * its socket; one watchdog thread notices clients that hang up while their request waits. */
#ifndef SW_SERVE_TOOL_H
#define SW_SERVE_TOOL_H

#include "sw_engine.h"
#include "sw_openai.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

struct serve;
struct serve_job;

/* ---- metrics (metrics.c) -------------------------------------------------------------------- */

#define SERVE_HIST_MAX 24
struct serve_hist {
    int n; /* bucket upper bounds */
    double le[SERVE_HIST_MAX];
    uint64_t bucket[SERVE_HIST_MAX + 1]; /* per bucket (the last: +Inf), not cumulative */
    uint64_t count;
    double sum;
};

struct serve_metrics {
    pthread_mutex_t mu;
    struct {
        char endpoint[32];
        int status;
        uint64_t n;
    } http[64];
    int n_http;
    uint64_t finished[5];                                     /* by sw_finish_reason */
    uint64_t prompt_tokens, generation_tokens, cached_tokens; /* of finished requests */
    uint64_t zmq_requests;
    struct serve_hist ttft, itl, e2e, prompt_len, gen_len;
    double started;       /* process start (monotonic) */
    double ready_seconds; /* start to ready */
};
void serve_metrics_init(struct serve_metrics *m);
void serve_metrics_release(struct serve_metrics *m);
void serve_hist_observe(struct serve_metrics *m, struct serve_hist *h, double v);
void serve_metrics_http(struct serve_metrics *m, const char *endpoint, int status);
/* Prometheus text exposition (version 0.0.4) of m plus the engine's counters into out. */
int serve_metrics_render(struct serve *s, struct sw_obuf *out);

/* ---- the server ------------------------------------------------------------------------------ */

struct serve_opts {
    char *model, *adapters, *tokenizer, *template_name, *served_model_name, *host, *api_key;
    char *device, *reasoning_parser, *zmq_bind, *use_hf, *model_revision, *hub_token;
    int64_t port, max_model_len, max_num_seqs, max_waiting, block_size, max_num_batched_tokens;
    int64_t kv_cache_memory_bytes, max_loras, seed, max_request_bytes, http_threads;
    int64_t max_connections, timeout_keep_alive, drain_timeout, max_logprobs;
    double gpu_memory_utilization;
    int enable_prefix_caching, access_log, allow_runtime_lora;
};

struct serve {
    const struct serve_opts *o;
    struct sw_engine *engine;
    char **names; /* served names of the base model */
    int n_names;
    enum sw_reasoning_mode reasoning;
    struct sw_openai_limits limits;
    struct sw_sampling_params defaults; /* sw_engine_default_params */
    int64_t gen_cap;                    /* generation_config.json max_new_tokens (0: none) */
    int64_t max_model_len;
    int64_t created; /* unix time of start (/v1/models) */
    struct serve_metrics metrics;
    int draining;            /* SIGTERM seen: new requests get 503 (serve_draining) */
    pthread_mutex_t jobs_mu; /* in-flight jobs (drain waits for 0) */
    pthread_cond_t jobs_cv;
    int64_t jobs;
    uint64_t jobs_started; /* ever (under jobs_mu) */
    uint64_t next_id;
    struct serve_http *http;
    struct serve_zmq *zmq;
    pthread_mutex_t log_mu;
};

/* ---- jobs (job.c) ---------------------------------------------------------------------------- */

/* One queued engine event: a deep copy of struct sw_engine_event (its pointers point into the
 * same allocation) and the prompt it belongs to. */
struct serve_event {
    struct serve_event *next;
    int prompt;
    struct sw_engine_event ev;
};

struct serve_job {
    pthread_mutex_t mu;
    int refs; /* the transport's + one per engine request not yet done */
    struct serve *srv;
    struct sw_openai_request req;
    struct sw_openai_resp *resp; /* built by the transport side only */
    char id[48];
    char model[128];   /* the model name answered (the request's, or the first served) */
    char adapter[128]; /* "" = the base model */
    int n_prompts;
    int32_t **ids; /* encoded prompts */
    int64_t *n_ids;
    uint64_t *engine_ids; /* 0: not submitted */
    int n_submitted, n_done;
    struct serve_event *head, **tail; /* under mu */
    int stream;      /* copy of req.stream: wake on every event, not only at the end */
    int client_gone; /* callback answers "abort" */
    int hangup;      /* the watchdog saw the client close its connection */
    /* counted by the engine callback (under mu), for metrics and logs */
    int64_t n_completion, n_cached;
    unsigned char *finish; /* per choice: enum sw_finish_reason */
    /* timing (monotonic seconds), written by the engine callback */
    double t_arrival, t_first;
    double *t_last; /* per choice: the previous token's time (ITL) */
    /* transport hooks: wake is called (without mu held) after events are queued; the transport
     * decides under mu whether it must resume anything. */
    void (*wake)(struct serve_job *j);
    void *transport; /* struct hconn * / zmq request */
};

/* A job for a parsed request (taken over: *req is zeroed). refs = 1 (the caller's). Counted
 * in srv->jobs until freed. */
int job_new(struct serve *s, struct sw_openai_request *req, struct serve_job **out);
/* Encode the prompts, resolve the model and max_tokens, create the response assembler and
 * submit to the engine. Returns 0, or fills err (400/404/429/503/500) and returns < 0 with
 * nothing left running. */
int job_start(struct serve_job *j, struct sw_openai_error *err);
/* Detach the queued events (the caller frees them with job_events_free after use). */
struct serve_event *job_take_events(struct serve_job *j);
void job_events_free(struct serve_event *e);
/* Feed events to the assembler (streaming: SSE bytes appended to out). */
int job_assemble(struct serve_job *j, struct serve_event *e, struct sw_obuf *out);
/* 1 when every submitted engine request reported request_done (under mu or not: a snapshot). */
int job_finished(struct serve_job *j);
/* Abort every engine request of the job (client gone, shutdown). Call without mu held. */
void job_abort(struct serve_job *j);
void job_ref(struct serve_job *j);
void job_unref(struct serve_job *j);
/* Record the metrics of a finished job (usage, finish reasons, e2e). */
void job_account(struct serve_job *j);
/* The base model name answered when a request names none. */
const char *serve_model_name(const struct serve *s);
/* 1 when name is the base model or one of its served names; adapter names in *adapter. */
int serve_resolve_model(struct serve *s, const char *name, char *adapter, size_t cap);

/* ---- front ends ------------------------------------------------------------------------------ */

struct serve_http;
/* Start libmicrohttpd on host:port; *bound_port receives the port (for --port 0). */
int serve_http_start(struct serve *s, struct serve_http **out, int *bound_port);
/* Stop accepting connections (the listening socket is closed); running requests go on. */
void serve_http_quiesce(struct serve_http *h);
void serve_http_stop(struct serve_http *h);

struct serve_zmq;
int serve_zmq_start(struct serve *s, const char *bind, struct serve_zmq **out);
void serve_zmq_quiesce(struct serve_zmq *z);
void serve_zmq_stop(struct serve_zmq *z);

/* The drain flag, written by the main thread and read by every front end (atomic). */
static inline int serve_draining(const struct serve *s) {
    return __atomic_load_n(&s->draining, __ATOMIC_ACQUIRE);
}

/* One JSON access-log line on stderr (o is consumed). */
void serve_access_log(struct serve *s, json_t *o);
/* A new response id: prefix + 24 hex digits. */
void serve_new_id(struct serve *s, const char *prefix, char *out, size_t cap);
double serve_now(void);

#endif
