/* http.c — sw-serve's HTTP/1.1 front end on libmicrohttpd (serve.h).
 *
 * libmicrohttpd parses HTTP (no hand-written parser: malformed requests get its 400s) on an
 * internal thread pool with poll() (see serve_http_start for why not epoll). A request's body is
 * collected (up to --max_request_bytes: 413, checked on Content-Length before any byte is read),
 * parsed by sw_openai and started as a job. The connection is then suspended: a non-streaming
 * request is resumed once by the job's wake hook when the engine has finished it; a streaming one
 * is answered with a callback response (chunked server-sent events) whose reader turns the job's
 * queued events into chunks and suspends again when it has nothing to send, the wake hook resuming
 * it per event. So no worker thread ever blocks on the engine, and thousands of requests can wait
 * at once.
 *
 * While suspended, libmicrohttpd does not watch a connection, so a client that hangs up would
 * go unnoticed until its answer is ready; a watchdog thread polls the sockets of suspended
 * connections (POLLRDHUP) every 50 ms and aborts the jobs of those that closed, freeing their
 * KV blocks at the engine's next step. A client that disconnects while a stream is being
 * written is noticed by the failed write, and the completion hook aborts its job the same way.
 *
 * Every answered request writes one JSON access-log line on stderr and counts in /metrics. */
#include "serve.h"

#include "sw_err.h"
#include "sw_log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum route {
    R_NOTFOUND = 0,
    R_HEALTH,
    R_METRICS,
    R_MODELS,
    R_VERSION,
    R_CHAT,
    R_COMPLETIONS,
    R_LOAD_LORA,
    R_UNLOAD_LORA
};

static const struct {
    const char *path;
    enum route r;
    const char *method;
    int auth;
} routes[] = {
    {"/health", R_HEALTH, "GET", 0},
    {"/metrics", R_METRICS, "GET", 0},
    {"/version", R_VERSION, "GET", 0},
    {"/v1/models", R_MODELS, "GET", 1},
    {"/v1/chat/completions", R_CHAT, "POST", 1},
    {"/v1/completions", R_COMPLETIONS, "POST", 1},
    {"/v1/load_lora_adapter", R_LOAD_LORA, "POST", 1},
    {"/v1/unload_lora_adapter", R_UNLOAD_LORA, "POST", 1},
};

struct serve_http {
    struct serve *s;
    struct MHD_Daemon *d;
    pthread_t watchdog;
    int watchdog_started;
    int stop;           /* atomic */
    pthread_mutex_t mu; /* the list of connections with a job */
    struct hconn *conns;
    int listen_fd; /* after quiesce: closed only after MHD_stop_daemon (its rule) */
};

struct hconn {
    struct serve_http *h;
    struct MHD_Connection *conn;
    int fd;
    int route_i; /* index in routes, -1: none */
    char method[12], path[160], remote[64];
    struct sw_obuf body;
    size_t discarded; /* body bytes dropped after the limit */
    int too_large, started, responded, status;
    struct serve_job *job;
    int suspended;      /* under job->mu */
    struct sw_obuf out; /* streaming bytes not yet handed to libmicrohttpd */
    int ended;          /* streaming: [DONE] is in out */
    double t0;
    char err[512];
    struct hconn *prev, *next;
};

/* ---- responses ------------------------------------------------------------------------------- */

static enum MHD_Result respond(struct hconn *hc, int status, const char *ctype, const char *body,
                               size_t len) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    if (ctype) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (serve_draining(hc->h->s) || hc->too_large)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(hc->conn, (unsigned)status, r);
    MHD_destroy_response(r);
    if (ok == MHD_YES) hc->responded = 1, hc->status = status;
    return ok;
}

static enum MHD_Result respond_json(struct hconn *hc, int status, json_t *o) {
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s) return MHD_NO;
    enum MHD_Result r = respond(hc, status, "application/json", s, strlen(s));
    free(s);
    return r;
}

static enum MHD_Result respond_error(struct hconn *hc, const struct sw_openai_error *e) {
    snprintf(hc->err, sizeof hc->err, "%s", e->message);
    return respond_json(hc, e->status, sw_openai_error_json(e));
}

static enum MHD_Result fail(struct hconn *hc, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static enum MHD_Result fail(struct hconn *hc, int status, const char *param, const char *fmt, ...) {
    struct sw_openai_error e;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sw_openai_error_set(&e, status, param, "%s", msg);
    return respond_error(hc, &e);
}

/* ---- the job's wake hook and the list of connections with a job ------------------------------ */

static void http_wake(struct serve_job *j) {
    struct MHD_Connection *resume = NULL;
    pthread_mutex_lock(&j->mu);
    struct hconn *hc = j->transport;
    if (hc && hc->suspended) {
        hc->suspended = 0;
        resume = hc->conn;
    }
    pthread_mutex_unlock(&j->mu);
    /* Outside j->mu: the connection stays suspended (so alive) until this call, and nobody
     * else resumes it since the flag is cleared. */
    if (resume) MHD_resume_connection(resume);
}

static void list_add(struct hconn *hc) {
    struct serve_http *h = hc->h;
    pthread_mutex_lock(&h->mu);
    hc->prev = NULL;
    hc->next = h->conns;
    if (h->conns) h->conns->prev = hc;
    h->conns = hc;
    pthread_mutex_unlock(&h->mu);
}

static void list_del(struct hconn *hc) {
    struct serve_http *h = hc->h;
    pthread_mutex_lock(&h->mu);
    if (hc->prev)
        hc->prev->next = hc->next;
    else if (h->conns == hc)
        h->conns = hc->next;
    if (hc->next) hc->next->prev = hc->prev;
    hc->prev = hc->next = NULL;
    pthread_mutex_unlock(&h->mu);
}

/* Suspend hc unless its job has something for us: called with j->mu held. Returns 1 when
 * suspended. */
static int suspend_locked(struct hconn *hc) {
    hc->suspended = 1;
    MHD_suspend_connection(hc->conn);
    return 1;
}

/* ---- streaming ---------------------------------------------------------------------------------
 */

static int finished_locked(struct serve_job *j);

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    struct hconn *hc = cls;
    struct serve_job *j = hc->job;
    (void)pos;
    for (;;) {
        if (hc->out.len > 0) {
            size_t n = hc->out.len < max ? hc->out.len : max;
            memcpy(buf, hc->out.p, n);
            sw_obuf_consume(&hc->out, n);
            return (ssize_t)n;
        }
        if (hc->ended) return MHD_CONTENT_READER_END_OF_STREAM;
        pthread_mutex_lock(&j->mu);
        struct serve_event *e = j->head;
        j->head = NULL;
        j->tail = &j->head;
        int fin = finished_locked(j);
        if (!e && !fin) {
            suspend_locked(hc);
            pthread_mutex_unlock(&j->mu);
            return 0;
        }
        pthread_mutex_unlock(&j->mu);
        int rc = job_assemble(j, e, &hc->out);
        job_events_free(e);
        if (rc < 0) {
            struct sw_openai_error err;
            sw_openai_error_set(&err, 500, NULL, "%s", sw_err_msg());
            snprintf(hc->err, sizeof hc->err, "%s", err.message);
            sw_openai_resp_stream_error(j->resp, &err, &hc->out);
            job_abort(j);
            fin = 1;
        }
        if (fin) {
            const char *emsg = sw_openai_resp_error(j->resp);
            if (emsg && rc == 0) {
                struct sw_openai_error err;
                sw_openai_error_set(&err, 500, NULL, "%s", emsg);
                snprintf(hc->err, sizeof hc->err, "%s", emsg);
                sw_openai_resp_stream_error(j->resp, &err, &hc->out);
            }
            if (sw_openai_resp_stream_end(j->resp, &hc->out) < 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            hc->ended = 1;
        }
    }
}

/* ---- /v1 endpoints ----------------------------------------------------------------------------
 */

static enum MHD_Result do_models(struct hconn *hc) {
    struct serve *s = hc->h->s;
    json_t *data = json_array();
    for (int i = 0; i < s->n_names; i++) {
        json_t *m = json_object();
        json_object_set_new(m, "id", json_string(s->names[i]));
        json_object_set_new(m, "object", json_string("model"));
        json_object_set_new(m, "created", json_integer(s->created));
        json_object_set_new(m, "owned_by", json_string("sw"));
        json_object_set_new(m, "root", json_string(s->o->model));
        json_object_set_new(m, "parent", json_null());
        json_object_set_new(m, "max_model_len", json_integer(s->max_model_len));
        json_array_append_new(data, m);
    }
    int na = sw_engine_adapter_count(s->engine);
    for (int i = 0; i < na; i++) {
        const char *nm = sw_engine_adapter_name(s->engine, i);
        if (!nm) continue;
        json_t *m = json_object();
        json_object_set_new(m, "id", json_string(nm));
        json_object_set_new(m, "object", json_string("model"));
        json_object_set_new(m, "created", json_integer(s->created));
        json_object_set_new(m, "owned_by", json_string("sw"));
        json_object_set_new(m, "root", json_string(nm));
        json_object_set_new(m, "parent", json_string(serve_model_name(s)));
        json_object_set_new(m, "max_model_len", json_integer(s->max_model_len));
        json_array_append_new(data, m);
    }
    json_t *o = json_object();
    json_object_set_new(o, "object", json_string("list"));
    json_object_set_new(o, "data", data);
    return respond_json(hc, 200, o);
}

/* vLLM's runtime LoRA endpoints: {"lora_name", "lora_path"} / {"lora_name"}. */
static enum MHD_Result do_lora(struct hconn *hc, int load) {
    struct serve *s = hc->h->s;
    if (!s->o->allow_runtime_lora)
        return fail(hc, 404, NULL,
                    "runtime LoRA loading is off (start sw-serve with "
                    "--allow_runtime_lora)");
    json_error_t je;
    json_t *b = json_loadb(hc->body.p ? hc->body.p : "", hc->body.len, 0, &je);
    if (!b || !json_is_object(b)) {
        json_decref(b);
        return fail(hc, 400, NULL, "the request body must be a JSON object");
    }
    json_t *name = json_object_get(b, "lora_name"), *path = json_object_get(b, "lora_path");
    enum MHD_Result r;
    if (!name || !json_is_string(name)) {
        r = fail(hc, 400, "lora_name", "'lora_name' must be a string");
    } else if (load && (!path || !json_is_string(path))) {
        r = fail(hc, 400, "lora_path", "'lora_path' must be a string");
    } else {
        const char *nm = json_string_value(name);
        int rc = load ? sw_engine_adapter_add(s->engine, nm, json_string_value(path))
                      : sw_engine_adapter_remove(s->engine, nm);
        if (rc == 0) {
            char msg[300];
            snprintf(msg, sizeof msg, "Success: LoRA adapter '%s' %s successfully.", nm,
                     load ? "added" : "removed");
            r = respond(hc, 200, "text/plain", msg, strlen(msg));
        } else {
            int st = rc == SW_ENOTFOUND && !load ? 404 : rc == SW_ENOMEM ? 500 : 400;
            r = fail(hc, st, load ? "lora_path" : "lora_name", "%s", sw_err_msg());
        }
    }
    json_decref(b);
    return r;
}

static int finished_locked(struct serve_job *j);

/* Parse, start a job, then answer (streaming) or suspend until the job is done. */
static enum MHD_Result do_completion(struct hconn *hc, enum sw_openai_kind kind) {
    struct serve *s = hc->h->s;
    struct sw_openai_request req;
    struct sw_openai_error err;
    struct sw_sampling_params d = s->defaults;
    if (sw_openai_request_parse(kind, hc->body.p ? hc->body.p : "", hc->body.len, &d, &s->limits,
                                &req, &err) < 0) {
        sw_openai_request_release(&req);
        return respond_error(hc, &err);
    }
    if (req.ignored[0]) sw_debug("request fields ignored: %s", req.ignored);
    struct serve_job *j;
    if (job_new(s, &req, &j) < 0) {
        sw_openai_request_release(&req);
        return fail(hc, 500, NULL, "out of memory");
    }
    j->wake = http_wake;
    hc->job = j;
    list_add(hc);
    pthread_mutex_lock(&j->mu);
    j->transport = hc;
    pthread_mutex_unlock(&j->mu);
    if (job_start(j, &err) < 0) return respond_error(hc, &err);
    if (j->stream) {
        if (sw_openai_resp_stream_begin(j->resp, &hc->out) < 0) {
            job_abort(j);
            return fail(hc, 500, NULL, "out of memory");
        }
        struct MHD_Response *r =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_reader, hc, NULL);
        if (!r) {
            job_abort(j);
            return MHD_NO;
        }
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        enum MHD_Result ok = MHD_queue_response(hc->conn, 200, r);
        MHD_destroy_response(r);
        if (ok == MHD_YES)
            hc->responded = 1, hc->status = 200;
        else
            job_abort(j);
        return ok;
    }
    pthread_mutex_lock(&j->mu);
    if (!finished_locked(j)) {
        suspend_locked(hc);
        pthread_mutex_unlock(&j->mu);
        return MHD_YES;
    }
    pthread_mutex_unlock(&j->mu);
    return MHD_YES; /* finished already: the next call (below) answers */
}

/* A resumed non-streaming request: answer when the job is done, else wait again. */
static enum MHD_Result finish_completion(struct hconn *hc) {
    struct serve_job *j = hc->job;
    struct serve *s = hc->h->s;
    pthread_mutex_lock(&j->mu);
    if (!finished_locked(j)) {
        suspend_locked(hc);
        pthread_mutex_unlock(&j->mu);
        return MHD_YES;
    }
    struct serve_event *e = j->head;
    j->head = NULL;
    j->tail = &j->head;
    int hangup = j->hangup;
    pthread_mutex_unlock(&j->mu);
    if (hangup) { /* nobody to answer */
        job_events_free(e);
        return MHD_NO;
    }
    int rc = job_assemble(j, e, NULL);
    job_events_free(e);
    if (rc < 0) return fail(hc, 500, NULL, "%s", sw_err_msg());
    const char *emsg = sw_openai_resp_error(j->resp);
    if (emsg) return fail(hc, 500, NULL, "%s", emsg);
    int nch = j->n_prompts * (j->req.params.n > 0 ? j->req.params.n : 1);
    for (int i = 0; i < nch; i++) {
        const char *f = sw_openai_resp_finish(j->resp, i);
        if ((!f || strcmp(f, "abort") == 0) && serve_draining(s))
            return fail(hc, 503, NULL, "the server shut down before the request finished");
    }
    struct sw_obuf out = {0};
    if (sw_openai_resp_body(j->resp, &out) < 0) {
        sw_obuf_release(&out);
        return fail(hc, 500, NULL, "out of memory");
    }
    enum MHD_Result r = respond(hc, 200, "application/json", out.p, out.len);
    sw_obuf_release(&out);
    return r;
}

static int finished_locked(struct serve_job *j) {
    /* mirrors job_finished without taking mu: every submitted request reported request_done
     * and job_start is over (the transport only gets here after job_start returned) */
    return j->n_done == j->n_submitted;
}

/* ---- the access handler
 * -------------------------------------------------------------------------- */

static int auth_ok(struct hconn *hc) {
    const char *key = hc->h->s->o->api_key;
    if (!key || !*key) return 1;
    const char *a = MHD_lookup_connection_value(hc->conn, MHD_HEADER_KIND, "Authorization");
    if (!a || strncasecmp(a, "Bearer ", 7) != 0) return 0;
    a += 7;
    while (*a == ' ')
        a++;
    size_t n = strlen(a), m = strlen(key);
    unsigned diff = (unsigned)(n != m);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)a[i] ^ (unsigned char)key[i % (m ? m : 1)];
    return diff == 0;
}

static void remote_of(struct MHD_Connection *c, char *out, size_t cap) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, cap, "?");
    if (!ci || !ci->client_addr) return;
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ci->client_addr->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ci->client_addr;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        port = ntohs(a->sin_port);
    } else if (ci->client_addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ci->client_addr;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        port = ntohs(a->sin6_port);
    }
    snprintf(out, cap, "%s:%d", ip, port);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls) {
    struct serve_http *h = cls;
    struct serve *s = h->s;
    struct hconn *hc = *con_cls;
    (void)version;
    if (!hc) {
        hc = calloc(1, sizeof *hc);
        if (!hc) return MHD_NO;
        *con_cls = hc;
        hc->h = h;
        hc->conn = c;
        hc->t0 = serve_now();
        hc->fd = -1;
        hc->route_i = -1;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci) hc->fd = ci->connect_fd;
        snprintf(hc->method, sizeof hc->method, "%s", method);
        snprintf(hc->path, sizeof hc->path, "%s", url);
        remote_of(c, hc->remote, sizeof hc->remote);
        int known = 0;
        for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
            if (strcmp(url, routes[i].path) != 0) continue;
            known = 1;
            if (strcmp(method, routes[i].method) == 0 ||
                (strcmp(method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0))
                hc->route_i = (int)i;
        }
        if (serve_draining(s)) return fail(hc, 503, NULL, "the server is shutting down");
        if (hc->route_i < 0) {
            if (known) return fail(hc, 405, NULL, "method %s is not allowed on %s", method, url);
            return fail(hc, 404, NULL, "no such endpoint: %s %s", method, url);
        }
        if (routes[hc->route_i].auth && !auth_ok(hc))
            return fail(hc, 401, NULL,
                        "Incorrect API key provided (send 'Authorization: Bearer "
                        "<key>' with the key sw-serve was started with)");
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > (unsigned long long)s->o->max_request_bytes) {
            hc->too_large = 1;
            return fail(hc, 413, NULL,
                        "the request body is %s bytes; at most %lld are accepted "
                        "(--max_request_bytes)",
                        cl, (long long)s->o->max_request_bytes);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (hc->responded) return MHD_YES;
        if (hc->too_large || hc->body.len + n > (size_t)s->o->max_request_bytes) {
            /* a chunked body over the limit: libmicrohttpd cannot answer mid-upload, so the rest
             * is read and dropped (up to as much again, then the connection is closed) */
            hc->too_large = 1;
            sw_obuf_release(&hc->body);
            hc->discarded += n;
            return hc->discarded > (size_t)s->o->max_request_bytes * 2 + (1u << 20) ? MHD_NO
                                                                                    : MHD_YES;
        }
        return sw_obuf_add(&hc->body, upload, n) == 0 ? MHD_YES : MHD_NO;
    }
    if (hc->responded) return MHD_YES;
    if (hc->too_large)
        return fail(hc, 413, NULL, "the request body is over %lld bytes (--max_request_bytes)",
                    (long long)s->o->max_request_bytes);
    if (hc->started) return finish_completion(hc);
    hc->started = 1;
    switch (routes[hc->route_i].r) {
    case R_HEALTH:
        if (serve_draining(s)) return fail(hc, 503, NULL, "the server is shutting down");
        return respond(hc, 200, "application/json", "{}", 2);
    case R_VERSION: {
        json_t *o = json_object();
        json_object_set_new(o, "version", json_string(SW_VERSION));
        json_object_set_new(o, "git_rev", json_string(SW_GIT_REV));
        return respond_json(hc, 200, o);
    }
    case R_METRICS: {
        struct sw_obuf out = {0};
        enum MHD_Result r =
            serve_metrics_render(s, &out) == 0
                ? respond(hc, 200, "text/plain; version=0.0.4; charset=utf-8", out.p, out.len)
                : fail(hc, 500, NULL, "out of memory");
        sw_obuf_release(&out);
        return r;
    }
    case R_MODELS: return do_models(hc);
    case R_CHAT: return do_completion(hc, SW_OPENAI_CHAT);
    case R_COMPLETIONS: return do_completion(hc, SW_OPENAI_COMPLETION);
    case R_LOAD_LORA: return do_lora(hc, 1);
    case R_UNLOAD_LORA: return do_lora(hc, 0);
    default: return fail(hc, 404, NULL, "no such endpoint");
    }
}

/* ---- completion: abort what runs, log, free ---------------------------------------------------
 */

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
    struct serve_http *h = cls;
    struct hconn *hc = *con_cls;
    (void)c;
    if (!hc) return;
    *con_cls = NULL;
    struct serve_job *j = hc->job;
    /* COMPLETED_OK means the whole answer went out, whatever the watchdog saw after it */
    int gone = toe != MHD_REQUEST_TERMINATED_COMPLETED_OK;
    if (j) {
        pthread_mutex_lock(&j->mu);
        gone |= j->hangup && !hc->responded;
        pthread_mutex_unlock(&j->mu);
        if (!job_finished(j)) job_abort(j); /* the client went away: free its blocks */
        pthread_mutex_lock(&j->mu);
        j->transport = NULL;
        hc->suspended = 0;
        pthread_mutex_unlock(&j->mu);
        list_del(hc);
    }
    int status = hc->responded ? hc->status : 499; /* nginx's "client closed request" */
    const char *endpoint = hc->route_i >= 0 ? routes[hc->route_i].path : "other";
    serve_metrics_http(&h->s->metrics, endpoint, status);
    if (h->s->o->access_log) {
        json_t *o = json_object();
        time_t now = time(NULL);
        struct tm tm;
        char ts[32];
        gmtime_r(&now, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_object_set_new(o, "time", json_string(ts));
        json_object_set_new(o, "remote", json_string(hc->remote));
        json_object_set_new(o, "method", json_string(hc->method));
        json_object_set_new(o, "path", json_stringn(hc->path, strnlen(hc->path, sizeof hc->path)));
        json_object_set_new(o, "status", json_integer(status));
        json_object_set_new(o, "duration_ms", json_real((serve_now() - hc->t0) * 1e3));
        if (j && j->resp) {
            int64_t p, cc, k;
            sw_openai_resp_usage(j->resp, &p, &cc, &k);
            json_object_set_new(o, "id", json_string(j->id));
            json_object_set_new(o, "model", json_string(j->model));
            json_object_set_new(o, "stream", json_boolean(j->stream));
            json_object_set_new(o, "n", json_integer(j->req.params.n));
            json_object_set_new(o, "prompt_tokens", json_integer(p));
            json_object_set_new(o, "completion_tokens", json_integer(cc));
            json_object_set_new(o, "cached_tokens", json_integer(k));
            const char *f = sw_openai_resp_finish(j->resp, 0);
            json_object_set_new(o, "finish_reason", f ? json_string(f) : json_null());
            if (j->t_first > 0)
                json_object_set_new(o, "ttft_ms", json_real((j->t_first - j->t_arrival) * 1e3));
            if (j->req.user) json_object_set_new(o, "user", json_string(j->req.user));
        }
        if (gone) json_object_set_new(o, "client_disconnected", json_true());
        if (hc->err[0]) json_object_set_new(o, "error", json_string(hc->err));
        serve_access_log(h->s, o);
    }
    if (j) {
        job_account(j);
        job_unref(j);
    }
    sw_obuf_release(&hc->body);
    sw_obuf_release(&hc->out);
    free(hc);
}

/* ---- the disconnect watchdog -------------------------------------------------------------------
 */

static void *watchdog(void *arg) {
    struct serve_http *h = arg;
    struct pollfd *pf = NULL;
    struct serve_job **pj = NULL;
    size_t cap = 0;
    while (!__atomic_load_n(&h->stop, __ATOMIC_ACQUIRE)) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        size_t n = 0;
        pthread_mutex_lock(&h->mu);
        for (struct hconn *hc = h->conns; hc; hc = hc->next) {
            struct serve_job *j = hc->job;
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 64;
                struct pollfd *npf = realloc(pf, nc * sizeof *pf);
                if (npf) pf = npf;
                struct serve_job **npj = realloc(pj, nc * sizeof *pj);
                if (npj) pj = npj;
                if (!npf || !npj) break;
                cap = nc;
            }
            pthread_mutex_lock(&j->mu);
            if (hc->suspended && hc->fd >= 0 && !j->client_gone) {
                pf[n] = (struct pollfd){hc->fd, POLLRDHUP, 0};
                pj[n++] = j;
            }
            pthread_mutex_unlock(&j->mu);
        }
        /* One poll over every suspended socket, h->mu still held: a connection leaves the list
         * (completed(), which needs h->mu) before libmicrohttpd closes its socket, so no fd
         * here can be closed and reused meanwhile. A connection resumed since the scan is
         * still open; a hang-up seen on it is real. */
        int hits = n ? poll(pf, (nfds_t)n, 0) : 0;
        size_t ng = 0;
        for (size_t i = 0; hits > 0 && i < n; i++) {
            if (!(pf[i].revents & (POLLRDHUP | POLLHUP | POLLERR))) continue;
            struct serve_job *j = pj[i];
            pthread_mutex_lock(&j->mu);
            j->refs++;
            j->hangup = 1;
            pthread_mutex_unlock(&j->mu);
            pj[ng++] = j;
        }
        pthread_mutex_unlock(&h->mu);
        for (size_t i = 0; i < ng; i++) {
            sw_debug("client of %s hung up: aborting", pj[i]->id);
            job_abort(pj[i]);
            job_unref(pj[i]);
        }
    }
    free(pf);
    free(pj);
    return NULL;
}

/* ---- start / stop ------------------------------------------------------------------------------
 */

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    sw_debug("http: %s", msg);
}

int serve_http_start(struct serve *s, struct serve_http **out, int *bound_port) {
    *out = NULL;
    struct serve_http *h = calloc(1, sizeof *h);
    if (!h) return sw_err_set(SW_ENOMEM, "out of memory");
    h->s = s;
    h->listen_fd = -1;
    pthread_mutex_init(&h->mu, NULL);
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    struct sockaddr *sa;
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    /* poll(), not epoll: libmicrohttpd 0.9.75's edge-triggered epoll loop misses a FIN that
     * arrives with the last bytes of a truncated body (about 1 time in 3 on loopback) and keeps
     * such a connection until its timeout; poll() is level-triggered and closes it at once. */
    unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    const char *host = s->o->host && *s->o->host ? s->o->host : "127.0.0.1";
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "") == 0) {
        a4.sin_family = AF_INET;
        a4.sin_addr.s_addr = htonl(INADDR_ANY);
        a4.sin_port = htons((uint16_t)s->o->port);
        sa = (struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)s->o->port);
        sa = (struct sockaddr *)&a4;
    } else if (strcmp(host, "localhost") == 0) {
        a4.sin_family = AF_INET;
        a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a4.sin_port = htons((uint16_t)s->o->port);
        sa = (struct sockaddr *)&a4;
    } else if (strcmp(host, "::") == 0 || inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        if (strcmp(host, "::") == 0) a6.sin6_addr = in6addr_any;
        a6.sin6_port = htons((uint16_t)s->o->port);
        sa = (struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        free(h);
        return sw_err_set(SW_EUSAGE, "--host '%s': not an IPv4 or IPv6 address", host);
    }
    h->d = MHD_start_daemon(
        flags, (uint16_t)s->o->port, NULL, NULL, handler, h, MHD_OPTION_SOCK_ADDR, sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->o->http_threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)s->o->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)s->o->timeout_keep_alive, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(256 * 1024), MHD_OPTION_NOTIFY_COMPLETED, completed, h, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_log, NULL, MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
    if (!h->d) {
        free(h);
        return sw_err_set(SW_EIO, "cannot listen on %s:%lld (address in use, or not allowed?)",
                          host, (long long)s->o->port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    *bound_port = di ? di->port : (int)s->o->port;
    if (pthread_create(&h->watchdog, NULL, watchdog, h) == 0) h->watchdog_started = 1;
    *out = h;
    return 0;
}

void serve_http_quiesce(struct serve_http *h) {
    if (!h || !h->d) return;
    MHD_socket fd = MHD_quiesce_daemon(h->d);
    if (fd == MHD_INVALID_SOCKET) return;
    /* The socket may not be closed while libmicrohttpd's threads run; shutting it down takes it
     * out of LISTEN at once, so new connections are refused rather than left in the backlog. */
    shutdown(fd, SHUT_RDWR);
    h->listen_fd = fd;
}

void serve_http_stop(struct serve_http *h) {
    if (!h) return;
    __atomic_store_n(&h->stop, 1, __ATOMIC_RELEASE);
    if (h->watchdog_started) pthread_join(h->watchdog, NULL);
    /* libmicrohttpd must not be stopped with suspended connections: resume them (their jobs are
     * over by now, so each answers and closes) */
    for (int round = 0; round < 200; round++) {
        int left = 0, nr = 0;
        struct MHD_Connection *resume[256];
        pthread_mutex_lock(&h->mu);
        for (struct hconn *hc = h->conns; hc; hc = hc->next) {
            struct serve_job *j = hc->job;
            pthread_mutex_lock(&j->mu);
            if (hc->suspended && nr < 256) hc->suspended = 0, resume[nr++] = hc->conn;
            pthread_mutex_unlock(&j->mu);
            left++;
        }
        pthread_mutex_unlock(&h->mu);
        /* outside h->mu: libmicrohttpd's completion hook takes it */
        for (int i = 0; i < nr; i++)
            MHD_resume_connection(resume[i]);
        if (!left) break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (h->d) MHD_stop_daemon(h->d);
    if (h->listen_fd >= 0) close(h->listen_fd);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

void serve_access_log(struct serve *s, json_t *o) {
    char *line = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(o);
    if (!line) return;
    pthread_mutex_lock(&s->log_mu);
    fprintf(stderr, "%s\n", line);
    fflush(stderr);
    pthread_mutex_unlock(&s->log_mu);
    free(line);
}
