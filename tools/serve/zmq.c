/* zmq.c — sw-serve's ZeroMQ endpoint for batch clients (evaluation farms, RL rollouts): a ROUTER
 * socket (--zmq_bind) taking msgpack requests and answering msgpack replies, so a client keeps
 * thousands of requests in flight over one connection without HTTP's per-request cost.
 *
 * A request is the same object as an HTTP body (chat when it has "messages", else completions;
 * "type" may say which) plus an "id" echoed in every reply; {"id": X, "abort": true} aborts a
 * running request of the same client. Replies carry token ids (what RL training needs), text,
 * the chosen tokens' logprobs and the top alternatives; a request ends with one "done" reply
 * holding usage and the prompt ids. The schema is in docs/serve.md.
 *
 * Threads: this front end's thread alone touches the socket. The engine callback's wake hook
 * puts the job on a ready list and writes an eventfd that the thread polls beside the socket;
 * the thread turns queued events into replies. DEALER clients send [payload], REQ clients
 * [empty, payload]; the delimiter is echoed back (REQ then suits one non-streaming request at a
 * time). The socket's send high-water mark is off, so replies are never dropped. */
#include "serve.h"

#include "sw_err.h"
#include "sw_log.h"

#include <errno.h>
#include <msgpack.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

/* Per-choice accumulation of a non-streaming request. */
struct zchoice {
    int32_t *ids;
    float *lps;
    struct sw_logprob_entry *top; /* k per token */
    int64_t n, cap;
    struct sw_obuf text;
    int sent;
};

struct zreq {
    struct serve_zmq *z;
    unsigned char ident[256];
    size_t ident_len;
    int delim;  /* the client sent an empty delimiter frame (REQ) */
    json_t *id; /* echoed */
    struct serve_job *job;
    struct zchoice *ch;
    int n_choices, k; /* choices; top alternatives per token */
    json_t *plp;      /* prompt logprobs per prompt, for the done reply */
    int queued;       /* on the ready list (under z->mu) */
    struct zreq *next_ready, *prev, *next;
    int done_sent;
};

struct serve_zmq {
    struct serve *s;
    void *ctx, *sock;
    int efd;
    pthread_t th;
    int started;
    int stop, quiesced; /* atomic */
    pthread_mutex_t mu; /* ready list */
    struct zreq *ready;
    struct zreq *all; /* this thread only */
};

/* ---- packing ----------------------------------------------------------------------------------
 */

static void pack_str(msgpack_packer *pk, const char *s, size_t n) {
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}
#define PACK_KEY(pk, k) pack_str(pk, k, sizeof k - 1)

static void pack_json(msgpack_packer *pk, const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        msgpack_pack_map(pk, json_object_size(v));
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            pack_str(pk, k, strlen(k));
            pack_json(pk, x);
        }
        break;
    }
    case JSON_ARRAY:
        msgpack_pack_array(pk, json_array_size(v));
        for (size_t i = 0; i < json_array_size(v); i++)
            pack_json(pk, json_array_get(v, i));
        break;
    case JSON_STRING: pack_str(pk, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER: msgpack_pack_int64(pk, json_integer_value(v)); break;
    case JSON_REAL: msgpack_pack_double(pk, json_real_value(v)); break;
    case JSON_TRUE: msgpack_pack_true(pk); break;
    case JSON_FALSE: msgpack_pack_false(pk); break;
    default: msgpack_pack_nil(pk); break;
    }
}

static void pack_id(msgpack_packer *pk, const json_t *id) {
    PACK_KEY(pk, "id");
    if (id)
        pack_json(pk, id);
    else
        msgpack_pack_nil(pk);
}

/* Send [ident, (empty), payload]. */
static void send_reply(struct serve_zmq *z, const unsigned char *ident, size_t ident_len, int delim,
                       const msgpack_sbuffer *sb) {
    if (zmq_send(z->sock, ident, ident_len, ZMQ_SNDMORE) < 0) return;
    if (delim) zmq_send(z->sock, "", 0, ZMQ_SNDMORE);
    if (zmq_send(z->sock, sb->data, sb->size, 0) < 0)
        sw_warn("zmq: cannot send a reply: %s", zmq_strerror(errno));
}

static void send_error(struct serve_zmq *z, const unsigned char *ident, size_t ident_len, int delim,
                       const json_t *id, const struct sw_openai_error *e) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    pack_id(&pk, id);
    PACK_KEY(&pk, "error");
    json_t *ej = sw_openai_error_json(e);
    pack_json(&pk, ej ? json_object_get(ej, "error") : json_null());
    json_decref(ej);
    PACK_KEY(&pk, "done");
    msgpack_pack_true(&pk);
    send_reply(z, ident, ident_len, delim, &sb);
    msgpack_sbuffer_destroy(&sb);
}

static const char *finish_name(enum sw_finish_reason f) {
    return f == SW_FINISH_STOP     ? "stop"
           : f == SW_FINISH_LENGTH ? "length"
           : f == SW_FINISH_ABORT  ? "abort"
           : f == SW_FINISH_ERROR  ? "error"
                                   : NULL;
}

/* One choice reply: {id, index, token_ids, text, [logprobs], [top_logprobs], finish_reason,
 * stop_reason}. */
static void send_choice(struct zreq *r, int index, const int32_t *ids, int64_t n, const float *lps,
                        const struct sw_logprob_entry *top, int k, const char *text, size_t tlen,
                        const struct sw_engine_event *fin) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int want_lp = r->job->req.params.logprobs >= 0;
    msgpack_pack_map(&pk, 6 + (want_lp ? 1 : 0) + (want_lp && k > 0 ? 1 : 0));
    pack_id(&pk, r->id);
    PACK_KEY(&pk, "index");
    msgpack_pack_int(&pk, index);
    PACK_KEY(&pk, "token_ids");
    msgpack_pack_array(&pk, (size_t)n);
    for (int64_t i = 0; i < n; i++)
        msgpack_pack_int32(&pk, ids[i]);
    PACK_KEY(&pk, "text");
    pack_str(&pk, text ? text : "", text ? tlen : 0);
    if (want_lp) {
        PACK_KEY(&pk, "logprobs");
        msgpack_pack_array(&pk, (size_t)n);
        for (int64_t i = 0; i < n; i++)
            msgpack_pack_float(&pk, lps[i]);
        if (k > 0) {
            PACK_KEY(&pk, "top_logprobs");
            msgpack_pack_array(&pk, (size_t)n);
            for (int64_t i = 0; i < n; i++) {
                int m = 0;
                while (m < k && top[i * k + m].id >= 0)
                    m++;
                msgpack_pack_array(&pk, (size_t)m);
                for (int j = 0; j < m; j++) {
                    msgpack_pack_array(&pk, 2);
                    msgpack_pack_int32(&pk, top[i * k + j].id);
                    msgpack_pack_float(&pk, top[i * k + j].logprob);
                }
            }
        }
    }
    PACK_KEY(&pk, "finish_reason");
    const char *f = fin ? finish_name(fin->finish) : NULL;
    if (f)
        pack_str(&pk, f, strlen(f));
    else
        msgpack_pack_nil(&pk);
    PACK_KEY(&pk, "stop_reason");
    if (fin && fin->finish == SW_FINISH_STOP && fin->stop_str)
        pack_str(&pk, fin->stop_str, strlen(fin->stop_str));
    else if (fin && fin->finish == SW_FINISH_STOP && fin->stop_token >= 0)
        msgpack_pack_int32(&pk, fin->stop_token);
    else
        msgpack_pack_nil(&pk);
    send_reply(r->z, r->ident, r->ident_len, r->delim, &sb);
    msgpack_sbuffer_destroy(&sb);
}

/* The request's last reply: {id, done: true, usage, prompt_token_ids, [prompt_logprobs],
 * [error]}. */
static void send_done(struct zreq *r, json_t *prompt_lps) {
    struct serve_job *j = r->job;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    const char *emsg = j->resp ? sw_openai_resp_error(j->resp) : NULL;
    msgpack_pack_map(&pk, 4 + (prompt_lps ? 1 : 0) + (emsg ? 1 : 0));
    pack_id(&pk, r->id);
    PACK_KEY(&pk, "done");
    msgpack_pack_true(&pk);
    int64_t p = 0;
    for (int i = 0; i < j->n_prompts; i++)
        p += j->n_ids[i];
    pthread_mutex_lock(&j->mu);
    int64_t c = j->n_completion, k = j->n_cached;
    pthread_mutex_unlock(&j->mu);
    PACK_KEY(&pk, "usage");
    msgpack_pack_map(&pk, 4);
    PACK_KEY(&pk, "prompt_tokens");
    msgpack_pack_int64(&pk, p);
    PACK_KEY(&pk, "completion_tokens");
    msgpack_pack_int64(&pk, c);
    PACK_KEY(&pk, "total_tokens");
    msgpack_pack_int64(&pk, p + c);
    PACK_KEY(&pk, "cached_tokens");
    msgpack_pack_int64(&pk, k);
    PACK_KEY(&pk, "prompt_token_ids");
    msgpack_pack_array(&pk, (size_t)j->n_prompts);
    for (int i = 0; i < j->n_prompts; i++) {
        msgpack_pack_array(&pk, (size_t)j->n_ids[i]);
        for (int64_t t = 0; t < j->n_ids[i]; t++)
            msgpack_pack_int32(&pk, j->ids[i][t]);
    }
    if (prompt_lps) {
        PACK_KEY(&pk, "prompt_logprobs");
        pack_json(&pk, prompt_lps);
    }
    if (emsg) {
        PACK_KEY(&pk, "error");
        msgpack_pack_map(&pk, 1);
        PACK_KEY(&pk, "message");
        pack_str(&pk, emsg, strlen(emsg));
    }
    send_reply(r->z, r->ident, r->ident_len, r->delim, &sb);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- requests ---------------------------------------------------------------------------------
 */

static void zreq_free(struct zreq *r) {
    if (!r) return;
    for (int i = 0; r->ch && i < r->n_choices; i++) {
        free(r->ch[i].ids), free(r->ch[i].lps), free(r->ch[i].top);
        sw_obuf_release(&r->ch[i].text);
    }
    free(r->ch);
    json_decref(r->plp);
    json_decref(r->id);
    free(r);
}

/* The job's wake hook (engine thread). j->mu stays held while r is queued: the ZeroMQ thread
 * clears j->transport under j->mu before it takes r off the ready list and frees it, so r
 * cannot go away under us, nor be queued again after it left (lock order: j->mu, then z->mu). */
static void zmq_wake(struct serve_job *j) {
    pthread_mutex_lock(&j->mu);
    struct zreq *r = j->transport;
    struct serve_zmq *z = r ? r->z : NULL;
    if (r) {
        pthread_mutex_lock(&z->mu);
        if (!r->queued) {
            r->queued = 1;
            r->next_ready = z->ready;
            z->ready = r;
        }
        pthread_mutex_unlock(&z->mu);
    }
    pthread_mutex_unlock(&j->mu);
    uint64_t one = 1;
    if (z && write(z->efd, &one, sizeof one) < 0) { /* saturates only at 2^64 − 2 */
    }
}

/* Take r off the ready list if a wake queued it (under z->mu). */
static void unqueue(struct serve_zmq *z, struct zreq *r) {
    pthread_mutex_lock(&z->mu);
    struct zreq **pp = &z->ready;
    while (*pp && *pp != r)
        pp = &(*pp)->next_ready;
    if (*pp) *pp = r->next_ready;
    r->queued = 0;
    pthread_mutex_unlock(&z->mu);
}

static int choice_add(struct zchoice *c, const struct sw_engine_event *ev, int k) {
    if (c->n == c->cap) {
        int64_t cap = c->cap ? c->cap * 2 : 64;
        int32_t *ids = realloc(c->ids, (size_t)cap * sizeof *ids);
        if (ids) c->ids = ids;
        float *lps = realloc(c->lps, (size_t)cap * sizeof *lps);
        if (lps) c->lps = lps;
        struct sw_logprob_entry *top =
            k > 0 ? realloc(c->top, (size_t)(cap * k) * sizeof *top) : c->top;
        if (top) c->top = top;
        if (!ids || !lps || (k > 0 && !top)) return sw_err_set(SW_ENOMEM, "out of memory");
        c->cap = cap;
    }
    c->ids[c->n] = ev->token;
    c->lps[c->n] = ev->logprobs ? ev->logprobs->logprob : 0.0f;
    for (int j = 0; j < k; j++) {
        int ok = ev->logprobs && j < ev->logprobs->n_top;
        c->top[c->n * k + j] = ok ? ev->logprobs->top[j] : (struct sw_logprob_entry){-1, 0};
    }
    c->n++;
    return 0;
}

/* Turn a request's queued events into replies; returns 1 when the request is over. */
static int zreq_pump(struct zreq *r) {
    struct serve_job *j = r->job;
    pthread_mutex_lock(&j->mu);
    struct serve_event *e = j->head;
    j->head = NULL;
    j->tail = &j->head;
    int fin = j->n_done == j->n_submitted;
    pthread_mutex_unlock(&j->mu);
    int nseq = j->req.params.n > 0 ? j->req.params.n : 1;
    for (struct serve_event *x = e; x; x = x->next) {
        const struct sw_engine_event *ev = &x->ev;
        if (ev->prompt_logprobs && j->req.params.prompt_logprobs >= 0) {
            /* [null, lp1, lp2, ...] per prompt (the first token has none), for the done reply */
            json_t *arr = json_array();
            json_array_append_new(arr, json_null());
            for (int64_t t = 0; t < ev->n_prompt_logprobs; t++)
                json_array_append_new(arr, json_real(ev->prompt_logprobs[t].logprob));
            if (!r->plp) {
                r->plp = json_array();
                for (int i = 0; i < j->n_prompts; i++)
                    json_array_append_new(r->plp, json_null());
            }
            json_array_set_new(r->plp, (size_t)x->prompt, arr);
        }
        if (ev->index < 0 || ev->index >= nseq) continue;
        int ci = x->prompt * nseq + ev->index;
        struct zchoice *c = &r->ch[ci];
        if (j->stream) {
            if (ev->token >= 0 || ev->text_len || ev->finish != SW_FINISH_NONE) {
                float lp = ev->logprobs ? ev->logprobs->logprob : 0.0f;
                struct sw_logprob_entry top[64];
                int k = r->k < 64 ? r->k : 64;
                for (int t = 0; t < k; t++)
                    top[t] = ev->logprobs && t < ev->logprobs->n_top
                                 ? ev->logprobs->top[t]
                                 : (struct sw_logprob_entry){-1, 0};
                send_choice(r, ci, &ev->token, ev->token >= 0 ? 1 : 0, &lp, top, k, ev->text,
                            ev->text_len, ev->finish != SW_FINISH_NONE ? ev : NULL);
            }
        } else {
            if (ev->token >= 0 && choice_add(c, ev, r->k) < 0) sw_warn("zmq: %s", sw_err_msg());
            if (ev->text_len) sw_obuf_add(&c->text, ev->text, ev->text_len);
            if (ev->finish != SW_FINISH_NONE && !c->sent) {
                c->sent = 1;
                send_choice(r, ci, c->ids, c->n, c->lps, c->top, r->k, c->text.p, c->text.len, ev);
            }
        }
    }
    job_events_free(e);
    if (fin && !r->done_sent) {
        send_done(r, r->plp);
        r->done_sent = 1;
    }
    return fin;
}

static void handle_request(struct serve_zmq *z, const unsigned char *ident, size_t ident_len,
                           int delim, const void *data, size_t len) {
    struct serve *s = z->s;
    struct sw_openai_error err;
    json_t *body = NULL;
    pthread_mutex_lock(&s->metrics.mu);
    s->metrics.zmq_requests++;
    pthread_mutex_unlock(&s->metrics.mu);
    if (sw_openai_msgpack_to_json(data, len, &body) < 0 || !json_is_object(body)) {
        sw_openai_error_set(&err, 400, NULL, "%s",
                            body ? "the request must be a msgpack map" : sw_err_msg());
        json_decref(body);
        send_error(z, ident, ident_len, delim, NULL, &err);
        return;
    }
    json_t *id = json_incref(json_object_get(body, "id"));
    json_object_del(body, "id");
    /* abort: {"id": X, "abort": true} */
    json_t *ab = json_object_get(body, "abort");
    if (ab && json_is_true(ab)) {
        for (struct zreq *r = z->all; r; r = r->next)
            if (r->ident_len == ident_len && memcmp(r->ident, ident, ident_len) == 0 && id &&
                r->id && json_equal(r->id, id))
                job_abort(r->job);
        json_decref(id);
        json_decref(body);
        return;
    }
    enum sw_openai_kind kind =
        json_object_get(body, "messages") ? SW_OPENAI_CHAT : SW_OPENAI_COMPLETION;
    json_t *type = json_object_get(body, "type");
    if (type && json_is_string(type)) {
        if (strcmp(json_string_value(type), "chat") == 0)
            kind = SW_OPENAI_CHAT;
        else if (strcmp(json_string_value(type), "completion") == 0)
            kind = SW_OPENAI_COMPLETION;
        else {
            sw_openai_error_set(&err, 400, "type", "'type' must be 'chat' or 'completion'");
            send_error(z, ident, ident_len, delim, id, &err);
            json_decref(id), json_decref(body);
            return;
        }
    }
    json_object_del(body, "type");
    if (serve_draining(s)) {
        sw_openai_error_set(&err, 503, NULL, "the server is shutting down");
        send_error(z, ident, ident_len, delim, id, &err);
        json_decref(id), json_decref(body);
        return;
    }
    struct sw_openai_request req;
    struct sw_sampling_params d = s->defaults;
    int rc = sw_openai_request_from_json(kind, body, &d, &s->limits, &req, &err);
    json_decref(body);
    if (rc < 0) {
        sw_openai_request_release(&req);
        send_error(z, ident, ident_len, delim, id, &err);
        json_decref(id);
        return;
    }
    struct zreq *r = calloc(1, sizeof *r);
    struct serve_job *j = NULL;
    if (!r || ident_len > sizeof r->ident || job_new(s, &req, &j) < 0) {
        sw_openai_request_release(&req);
        free(r);
        sw_openai_error_set(&err, 500, NULL, "out of memory");
        send_error(z, ident, ident_len, delim, id, &err);
        json_decref(id);
        return;
    }
    r->z = z;
    memcpy(r->ident, ident, ident_len);
    r->ident_len = ident_len;
    r->delim = delim;
    r->id = id;
    r->job = j;
    r->n_choices = j->n_prompts * (j->req.params.n > 0 ? j->req.params.n : 1);
    r->k = j->req.params.logprobs > 0 ? j->req.params.logprobs : 0;
    r->ch = calloc((size_t)r->n_choices, sizeof *r->ch);
    j->wake = zmq_wake;
    pthread_mutex_lock(&j->mu);
    j->transport = r;
    pthread_mutex_unlock(&j->mu);
    if (!r->ch) {
        sw_openai_error_set(&err, 500, NULL, "out of memory");
        rc = -1;
    } else {
        rc = job_start(j, &err);
    }
    if (rc < 0) {
        send_error(z, ident, ident_len, delim, id, &err);
        pthread_mutex_lock(&j->mu);
        j->transport = NULL;
        pthread_mutex_unlock(&j->mu);
        unqueue(z, r); /* a wake may have queued it already */
        job_unref(j);
        zreq_free(r);
        return;
    }
    r->next = z->all;
    if (z->all) z->all->prev = r;
    z->all = r;
}

static void zreq_finish(struct serve_zmq *z, struct zreq *r) {
    struct serve_job *j = r->job;
    if (r->prev)
        r->prev->next = r->next;
    else
        z->all = r->next;
    if (r->next) r->next->prev = r->prev;
    pthread_mutex_lock(&j->mu);
    j->transport = NULL; /* no wake queues r after this */
    pthread_mutex_unlock(&j->mu);
    unqueue(z, r);
    job_account(j);
    if (z->s->o->access_log) {
        json_t *o = json_object();
        json_object_set_new(o, "transport", json_string("zmq"));
        json_object_set_new(o, "id", json_string(j->id));
        if (r->id) json_object_set(o, "request_id", r->id);
        json_object_set_new(o, "model", json_string(j->model));
        pthread_mutex_lock(&j->mu);
        json_object_set_new(o, "completion_tokens", json_integer(j->n_completion));
        pthread_mutex_unlock(&j->mu);
        json_object_set_new(o, "duration_ms", json_real((serve_now() - j->t_arrival) * 1e3));
        serve_access_log(z->s, o);
    }
    job_unref(j);
    zreq_free(r);
}

static void *zmq_thread(void *arg) {
    struct serve_zmq *z = arg;
    zmq_msg_t parts[4];
    struct zreq **ready = NULL;
    size_t cap_ready = 0;
    while (!__atomic_load_n(&z->stop, __ATOMIC_ACQUIRE)) {
        zmq_pollitem_t items[2] = {{z->sock, 0, ZMQ_POLLIN, 0}, {NULL, z->efd, ZMQ_POLLIN, 0}};
        int n = zmq_poll(items, 2, 100);
        if (n < 0 && errno != EINTR) break;
        if (items[1].revents & ZMQ_POLLIN) {
            uint64_t cnt;
            if (read(z->efd, &cnt, sizeof cnt) < 0) { /* drained below anyway */
            }
        }
        /* replies first: they free engine capacity's bookkeeping soonest */
        /* The ready list is copied out first: a wake during a pump pushes its request onto
         * the (new) list through next_ready, which must not redirect this walk. A request's
         * queued flag is cleared just before its pump, so an event arriving during the pump
         * queues it again. */
        pthread_mutex_lock(&z->mu);
        size_t nr = 0;
        for (struct zreq *r = z->ready; r; r = r->next_ready)
            nr++;
        if (nr > cap_ready) {
            struct zreq **nrl = realloc(ready, nr * sizeof *ready);
            if (nrl) ready = nrl, cap_ready = nr;
        }
        size_t k = 0;
        struct zreq *rest = z->ready;
        while (rest && k < cap_ready) {
            ready[k++] = rest;
            rest = rest->next_ready;
        }
        z->ready = rest; /* out of memory: the rest waits for the next round */
        pthread_mutex_unlock(&z->mu);
        for (size_t i = 0; i < k; i++) {
            struct zreq *r = ready[i];
            pthread_mutex_lock(&z->mu);
            r->queued = 0;
            pthread_mutex_unlock(&z->mu);
            if (zreq_pump(r)) zreq_finish(z, r);
        }
        if (items[0].revents & ZMQ_POLLIN) {
            for (int budget = 0; budget < 256; budget++) {
                int np = 0, more = 1;
                while (more && np < 4) {
                    zmq_msg_init(&parts[np]);
                    if (zmq_msg_recv(&parts[np], z->sock, ZMQ_DONTWAIT) < 0) {
                        zmq_msg_close(&parts[np]);
                        break;
                    }
                    more = zmq_msg_more(&parts[np]);
                    np++;
                }
                while (more) { /* more frames than any client sends: drop them */
                    zmq_msg_t x;
                    zmq_msg_init(&x);
                    if (zmq_msg_recv(&x, z->sock, ZMQ_DONTWAIT) < 0)
                        more = 0;
                    else
                        more = zmq_msg_more(&x);
                    zmq_msg_close(&x);
                }
                if (np == 0) break;
                /* [ident, payload] (DEALER) or [ident, "", payload] (REQ) */
                int delim = np == 3 && zmq_msg_size(&parts[1]) == 0;
                if (np == 2 || delim) {
                    zmq_msg_t *pl = &parts[np - 1];
                    handle_request(z, zmq_msg_data(&parts[0]), zmq_msg_size(&parts[0]), delim,
                                   zmq_msg_data(pl), zmq_msg_size(pl));
                } else if (np >= 1) {
                    struct sw_openai_error err;
                    sw_openai_error_set(&err, 400, NULL,
                                        "a request is one msgpack frame (after "
                                        "an optional empty delimiter)");
                    send_error(z, zmq_msg_data(&parts[0]), zmq_msg_size(&parts[0]), 0, NULL, &err);
                }
                for (int i = 0; i < np; i++)
                    zmq_msg_close(&parts[i]);
            }
        }
    }
    free(ready);
    return NULL;
}

int serve_zmq_start(struct serve *s, const char *bind, struct serve_zmq **out) {
    *out = NULL;
    struct serve_zmq *z = calloc(1, sizeof *z);
    if (!z) return sw_err_set(SW_ENOMEM, "out of memory");
    z->s = s;
    pthread_mutex_init(&z->mu, NULL);
    z->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    z->ctx = zmq_ctx_new();
    z->sock = z->ctx ? zmq_socket(z->ctx, ZMQ_ROUTER) : NULL;
    int zero = 0, linger = 1000;
    if (z->efd < 0 || !z->sock || zmq_setsockopt(z->sock, ZMQ_SNDHWM, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(z->sock, ZMQ_RCVHWM, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(z->sock, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_bind(z->sock, bind) != 0) {
        int rc = sw_err_set(SW_EIO, "--zmq_bind '%s': %s", bind, zmq_strerror(errno));
        if (z->sock) zmq_close(z->sock);
        if (z->ctx) zmq_ctx_term(z->ctx);
        if (z->efd >= 0) close(z->efd);
        free(z);
        return rc;
    }
    if (pthread_create(&z->th, NULL, zmq_thread, z) != 0) {
        zmq_close(z->sock);
        zmq_ctx_term(z->ctx);
        close(z->efd);
        free(z);
        return sw_err_set(SW_EIO, "cannot start the ZeroMQ thread");
    }
    z->started = 1;
    *out = z;
    return 0;
}

void serve_zmq_quiesce(struct serve_zmq *z) {
    if (z)
        __atomic_store_n(&z->quiesced, 1,
                         __ATOMIC_RELEASE); /* new requests are answered 503 (s->draining); running
                                               ones finish */
}

void serve_zmq_stop(struct serve_zmq *z) {
    if (!z) return;
    /* let the thread send what finished (the engine has stopped: every job is over) */
    for (int i = 0; i < 100 && z->all; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    __atomic_store_n(&z->stop, 1, __ATOMIC_RELEASE);
    if (z->started) pthread_join(z->th, NULL);
    while (z->all)
        zreq_finish(z, z->all);
    zmq_close(z->sock);
    zmq_ctx_term(z->ctx);
    close(z->efd);
    pthread_mutex_destroy(&z->mu);
    free(z);
}
