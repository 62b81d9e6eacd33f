/* sw_bench_farm — the eval farm: a backend that answers a run's requests by handing shards of
 * them to `sw-eval worker` processes over ZeroMQ, and the worker loop itself.
 *
 * Sockets: the farm binds a ROUTER, each worker connects a REQ; every exchange is one msgpack map
 * from the worker and one back:
 *
 *   worker → {"t":"hello","id":identity,"max_length":N}   farm → {"t":"ok"}
 *   worker → {"t":"get"} or {"t":"res","shard":i,...results}
 *   farm   → {"t":"shard","shard":i,"kind":"ll"|"gen"|"roll",...requests} | {"t":"wait","ms":M}
 *            | {"t":"done"}
 *
 * Shards are fixed slices of the request list (shard requests each), so every result is
 * computed on the same batch whatever the number of workers: the merged numbers are the same for
 * 1 or 100 workers (and the same as `sw-eval bench --shard_size` with the same size). A shard
 * handed out and not answered within timeout_s is handed out again (its worker died or hangs); a
 * late answer to a shard already done is dropped. A worker's REQ socket that gets no reply in a
 * second is closed and opened again (ZeroMQ's "lazy pirate"), so a farm that restarts or is not
 * up yet is simply waited for, up to wait_s. */
#include "sw_bench.h"

#include "sw_err.h"
#include "sw_log.h"
#include "sw_record.h"

#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void pk_str(msgpack_packer *pk, const char *s) {
    size_t l = s ? strlen(s) : 0;
    msgpack_pack_str(pk, l);
    msgpack_pack_str_body(pk, s ? s : "", l);
}

static char *obj_strdup(const msgpack_object *o) {
    if (!o || o->type != MSGPACK_OBJECT_STR) return NULL;
    return strndup(o->via.str.ptr, o->via.str.size);
}

static int obj_is(const msgpack_object *map, const char *key, const char *val) {
    const msgpack_object *v = sw_msgpack_map_get(map, key);
    return v && sw_msgpack_str_eq(v, val);
}

static int64_t obj_int(const msgpack_object *map, const char *key, int64_t def) {
    const msgpack_object *v = sw_msgpack_map_get(map, key);
    if (!v) return def;
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) return (int64_t)v->via.u64;
    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) return v->via.i64;
    return def;
}

static const msgpack_object *obj_arr(const msgpack_object *map, const char *key, size_t n) {
    const msgpack_object *v = sw_msgpack_map_get(map, key);
    if (!v || v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size != n) return NULL;
    return v;
}

static double obj_num(const msgpack_object *o) {
    if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32) return o->via.f64;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) return (double)o->via.u64;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) return (double)o->via.i64;
    return 0;
}

/* ---- the farm ------------------------------------------------------------------------------ */

enum { SH_PENDING = 0, SH_OUT, SH_DONE };

/* A worker as the farm knows it: its ROUTER routing id, when it last spoke, whether it was
 * told that the work is over. */
struct wk {
    unsigned char id[256];
    size_t idlen;
    double last;
    int told_done;
    int busy; /* its last reply was a shard (it may take up to the shard timeout to speak again);
                 else it was told to wait and asks again within a fraction of a second */
};

struct farm {
    void *ctx, *sock;
    char *bind;
    int64_t shard;
    double timeout_s;
    int workers_seen;
    struct wk *wks;
    size_t nwk;
    /* the current call */
    int kind; /* 0 ll, 1 gen, 2 roll; -1 idle */
    size_t n, nshards, ndone;
    unsigned char *state;
    double *deadline;
    const struct sw_bench_ll_req *llq;
    struct sw_bench_ll_res *llr;
    const struct sw_bench_gen_req *gq;
    char **gt;
    const char *const *texts;
    int64_t roll_ml, roll_stride;
    struct sw_bench_roll_res *rr;
};

/* Send a reply to the worker whose routing id is rid. */
static int farm_send(struct farm *f, const zmq_msg_t *rid, const msgpack_sbuffer *sb) {
    zmq_msg_t id;
    zmq_msg_init(&id);
    zmq_msg_copy(&id, (zmq_msg_t *)rid);
    if (zmq_msg_send(&id, f->sock, ZMQ_SNDMORE) < 0 || zmq_send(f->sock, "", 0, ZMQ_SNDMORE) < 0 ||
        zmq_send(f->sock, sb->data, sb->size, 0) < 0) {
        zmq_msg_close(&id);
        return sw_err_set(SW_EIO, "farm: cannot send to a worker: %s", zmq_strerror(errno));
    }
    return 0;
}

static void pack_simple(msgpack_sbuffer *sb, const char *t, int64_t ms) {
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, ms >= 0 ? 2 : 1);
    pk_str(&pk, "t");
    pk_str(&pk, t);
    if (ms >= 0) {
        pk_str(&pk, "ms");
        msgpack_pack_int64(&pk, ms);
    }
}

static void pack_shard(struct farm *f, size_t s, msgpack_sbuffer *sb) {
    size_t b = s * (size_t)f->shard, e = b + (size_t)f->shard < f->n ? b + (size_t)f->shard : f->n;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, f->kind == 0 ? 5 : f->kind == 1 ? 4 : 6);
    pk_str(&pk, "t");
    pk_str(&pk, "shard");
    pk_str(&pk, "shard");
    msgpack_pack_uint64(&pk, s);
    pk_str(&pk, "kind");
    pk_str(&pk, f->kind == 0 ? "ll" : f->kind == 1 ? "gen" : "roll");
    if (f->kind == 0) {
        pk_str(&pk, "ctx");
        msgpack_pack_array(&pk, e - b);
        for (size_t i = b; i < e; i++)
            pk_str(&pk, f->llq[i].context);
        pk_str(&pk, "cont");
        msgpack_pack_array(&pk, e - b);
        for (size_t i = b; i < e; i++)
            pk_str(&pk, f->llq[i].continuation);
    } else if (f->kind == 1) {
        pk_str(&pk, "gen");
        msgpack_pack_array(&pk, e - b);
        for (size_t i = b; i < e; i++) {
            const struct sw_bench_gen_req *q = &f->gq[i];
            msgpack_pack_array(&pk, 5);
            pk_str(&pk, q->context);
            pk_str(&pk, q->system);
            pk_str(&pk, q->user);
            msgpack_pack_int64(&pk, q->max_gen_toks);
            msgpack_pack_array(&pk, (size_t)q->nuntil);
            for (int u = 0; u < q->nuntil; u++)
                pk_str(&pk, q->until[u]);
        }
    } else {
        pk_str(&pk, "texts");
        msgpack_pack_array(&pk, e - b);
        for (size_t i = b; i < e; i++)
            pk_str(&pk, f->texts[i]);
        pk_str(&pk, "max_length");
        msgpack_pack_int64(&pk, f->roll_ml);
        pk_str(&pk, "stride");
        msgpack_pack_int64(&pk, f->roll_stride);
    }
}

/* Take a worker's results for shard s (ignored when malformed or already done). */
static int take_results(struct farm *f, const msgpack_object *m, sw_bench_done_fn done, void *ctx) {
    int64_t s = obj_int(m, "shard", -1);
    if (f->kind < 0 || s < 0 || (size_t)s >= f->nshards || f->state[s] == SH_DONE) return 0;
    size_t b = (size_t)s * (size_t)f->shard,
           e = b + (size_t)f->shard < f->n ? b + (size_t)f->shard : f->n;
    size_t k = e - b;
    if (f->kind == 0) {
        const msgpack_object *ll = obj_arr(m, "ll", k), *g = obj_arr(m, "g", k),
                             *t = obj_arr(m, "nt", k);
        if (!ll || !g || !t) {
            sw_warn("farm: malformed results for shard %lld (dropped; it will be re-issued)",
                    (long long)s);
            return 0;
        }
        for (size_t i = 0; i < k; i++)
            f->llr[b + i] =
                (struct sw_bench_ll_res){obj_num(&ll->via.array.ptr[i]),
                                         g->via.array.ptr[i].type == MSGPACK_OBJECT_BOOLEAN &&
                                             g->via.array.ptr[i].via.boolean,
                                         (int)obj_num(&t->via.array.ptr[i])};
    } else if (f->kind == 1) {
        const msgpack_object *tx = obj_arr(m, "text", k);
        if (!tx) return 0;
        for (size_t i = 0; i < k; i++) {
            char *x = obj_strdup(&tx->via.array.ptr[i]);
            if (!x) return sw_err_set(SW_ENOMEM, "out of memory");
            free(f->gt[b + i]);
            f->gt[b + i] = x;
        }
    } else {
        const msgpack_object *ll = obj_arr(m, "ll", k), *nt = obj_arr(m, "nt", k);
        if (!ll || !nt) return 0;
        for (size_t i = 0; i < k; i++)
            f->rr[b + i] = (struct sw_bench_roll_res){obj_num(&ll->via.array.ptr[i]),
                                                      (int64_t)obj_num(&nt->via.array.ptr[i])};
    }
    f->state[s] = SH_DONE;
    f->ndone++;
    sw_debug("farm: shard %lld done (%zu/%zu)", (long long)s, f->ndone, f->nshards);
    return done ? done(ctx, b, e) : 0;
}

/* The next shard to hand out: pending first, then an overdue one. -1: none. */
static int64_t next_shard(struct farm *f) {
    double t = now_s();
    for (size_t s = 0; s < f->nshards; s++)
        if (f->state[s] == SH_PENDING) return (int64_t)s;
    for (size_t s = 0; s < f->nshards; s++)
        if (f->state[s] == SH_OUT && t > f->deadline[s]) {
            sw_warn("farm: shard %zu not answered in %.0f s: handing it out again", s,
                    f->timeout_s);
            return (int64_t)s;
        }
    return -1;
}

/* Serve one message (waiting up to wait_ms). Returns 0, or an error. */
static int farm_serve_one(struct farm *f, int wait_ms, sw_bench_done_fn done, void *ctx,
                          int finishing) {
    zmq_pollitem_t it = {f->sock, 0, ZMQ_POLLIN, 0};
    int pr = zmq_poll(&it, 1, wait_ms);
    if (pr < 0) {
        if (errno == EINTR) return sw_err_set(SW_EINTR, "farm: interrupted");
        return sw_err_set(SW_EIO, "farm: poll: %s", zmq_strerror(errno));
    }
    if (pr == 0) return 0;
    zmq_msg_t rid, empty, body;
    zmq_msg_init(&rid), zmq_msg_init(&empty), zmq_msg_init(&body);
    int rc = 0;
    if (zmq_msg_recv(&rid, f->sock, 0) < 0 || zmq_msg_recv(&empty, f->sock, 0) < 0 ||
        zmq_msg_recv(&body, f->sock, 0) < 0) {
        rc = sw_err_set(SW_EIO, "farm: receive: %s", zmq_strerror(errno));
        goto out;
    }
    struct wk *w = NULL;
    size_t il = zmq_msg_size(&rid);
    for (size_t k = 0; k < f->nwk && !w; k++)
        if (f->wks[k].idlen == il && memcmp(f->wks[k].id, zmq_msg_data(&rid), il) == 0)
            w = &f->wks[k];
    if (!w && il <= sizeof w->id) {
        struct wk *p = realloc(f->wks, (f->nwk + 1) * sizeof(*p));
        if (p) {
            f->wks = p;
            w = &p[f->nwk++];
            memset(w, 0, sizeof *w);
            memcpy(w->id, zmq_msg_data(&rid), il);
            w->idlen = il;
        }
    }
    if (w) w->last = now_s(), w->told_done = 0, w->busy = 0;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (msgpack_unpack_next(&up, zmq_msg_data(&body), zmq_msg_size(&body), NULL) !=
            MSGPACK_UNPACK_SUCCESS ||
        up.data.type != MSGPACK_OBJECT_MAP) {
        sw_warn("farm: a malformed message from a worker (ignored)");
        pack_simple(&sb, "wait", 500);
    } else {
        const msgpack_object *m = &up.data;
        if (obj_is(m, "t", "hello")) {
            f->workers_seen++;
            char *id = obj_strdup(sw_msgpack_map_get(m, "id"));
            sw_info("farm: worker %d connected (%s)", f->workers_seen, id ? id : "?");
            free(id);
            pack_simple(&sb, "ok", -1);
        } else {
            if (obj_is(m, "t", "res")) rc = take_results(f, m, done, ctx);
            int64_t s = f->kind >= 0 && !finishing ? next_shard(f) : -1;
            if (s >= 0) {
                f->state[s] = SH_OUT;
                f->deadline[s] = now_s() + f->timeout_s;
                pack_shard(f, (size_t)s, &sb);
                if (w) w->busy = 1;
            } else {
                pack_simple(&sb, finishing ? "done" : "wait", finishing ? -1 : 200);
                if (finishing && w) w->told_done = 1;
            }
        }
    }
    if (rc == 0) rc = farm_send(f, &rid, &sb);
    msgpack_sbuffer_destroy(&sb);
    msgpack_unpacked_destroy(&up);
out:
    zmq_msg_close(&rid), zmq_msg_close(&empty), zmq_msg_close(&body);
    return rc;
}

static int farm_call(struct farm *f, int kind, size_t n, sw_bench_done_fn done, void *ctx) {
    f->kind = kind;
    f->n = n;
    f->nshards = (n + (size_t)f->shard - 1) / (size_t)f->shard;
    f->ndone = 0;
    f->state = calloc(f->nshards ? f->nshards : 1, 1);
    f->deadline = calloc(f->nshards ? f->nshards : 1, sizeof(double));
    int rc = (!f->state || !f->deadline) ? sw_err_set(SW_ENOMEM, "out of memory") : 0;
    sw_info("farm: %zu requests in %zu shards of %lld", n, f->nshards, (long long)f->shard);
    while (rc == 0 && f->ndone < f->nshards)
        rc = farm_serve_one(f, 200, done, ctx, 0);
    free(f->state), free(f->deadline);
    f->state = NULL, f->deadline = NULL;
    f->kind = -1;
    return rc;
}

static int farm_loglik(struct sw_bench_backend *b, const struct sw_bench_ll_req *r, size_t n,
                       struct sw_bench_ll_res *out, sw_bench_done_fn done, void *ctx) {
    struct farm *f = b->impl;
    f->llq = r, f->llr = out;
    return farm_call(f, 0, n, done, ctx);
}

static int farm_generate(struct sw_bench_backend *b, const struct sw_bench_gen_req *r, size_t n,
                         char **out, sw_bench_done_fn done, void *ctx) {
    struct farm *f = b->impl;
    f->gq = r, f->gt = out;
    return farm_call(f, 1, n, done, ctx);
}

static int farm_rolling(struct sw_bench_backend *b, const char *const *texts, size_t n,
                        int64_t max_length, int64_t stride, struct sw_bench_roll_res *out,
                        sw_bench_done_fn done, void *ctx) {
    struct farm *f = b->impl;
    f->texts = texts, f->rr = out, f->roll_ml = max_length, f->roll_stride = stride;
    return farm_call(f, 2, n, done, ctx);
}

static void farm_free(struct sw_bench_backend *b) {
    struct farm *f = b->impl;
    if (!f) return;
    if (f->sock) zmq_close(f->sock);
    if (f->ctx) zmq_ctx_term(f->ctx);
    free(f->bind);
    free(f->wks);
    free(f);
}

/* Workers heard from within the shard timeout that have not been told "done" yet. */
static int workers_pending(const struct farm *f) {
    double t = now_s();
    int n = 0;
    for (size_t k = 0; k < f->nwk; k++)
        if (!f->wks[k].told_done && t - f->wks[k].last < (f->wks[k].busy ? f->timeout_s : 2.0)) n++;
    return n;
}

void sw_bench_farm_finish(struct sw_bench_backend *b, double linger_s) {
    struct farm *f = b->impl;
    /* Answer "done" to whoever asks, so the workers exit cleanly: at least linger_s, and on
     * while a worker that is alive (heard from within the shard timeout: it may be finishing a
     * shard that another worker already answered) has not been told, up to the timeout. */
    double start = now_s(), end = start + linger_s, cap = start + linger_s + f->timeout_s;
    while (now_s() < end || (workers_pending(f) > 0 && now_s() < cap))
        if (farm_serve_one(f, 100, NULL, NULL, 1) < 0) break;
}

int sw_bench_farm_new(const struct sw_bench_farm_opts *o, struct sw_bench_backend **out) {
    *out = NULL;
    struct sw_bench_backend *b = calloc(1, sizeof(*b));
    struct farm *f = calloc(1, sizeof(*f));
    if (!b || !f) {
        free(b), free(f);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    b->impl = f;
    b->kind = "farm";
    b->free = farm_free;
    b->loglik = farm_loglik;
    b->generate = farm_generate;
    b->rolling = farm_rolling;
    f->kind = -1;
    f->shard = o->shard > 0 ? o->shard : 64;
    f->timeout_s = o->timeout_s > 0 ? o->timeout_s : 600;
    b->shard = f->shard;
    b->max_length = o->max_length;
    b->identity = strdup(o->identity ? o->identity : "farm");
    f->bind = strdup(o->bind);
    f->ctx = zmq_ctx_new();
    f->sock = f->ctx ? zmq_socket(f->ctx, ZMQ_ROUTER) : NULL;
    int rc = 0;
    if (!b->identity || !f->bind)
        rc = sw_err_set(SW_ENOMEM, "out of memory");
    else if (!f->sock)
        rc = sw_err_set(SW_EIO, "farm: cannot create a socket: %s", zmq_strerror(errno));
    else {
        int linger = 1000;
        zmq_setsockopt(f->sock, ZMQ_LINGER, &linger, sizeof linger);
        if (zmq_bind(f->sock, o->bind) != 0)
            rc = sw_err_set(SW_EIO, "farm: cannot bind '%s': %s", o->bind, zmq_strerror(errno));
    }
    if (rc < 0) {
        sw_bench_backend_free(b);
        return rc;
    }
    sw_info("farm: serving shards on %s", o->bind);
    *out = b;
    return 0;
}

/* ---- the worker ---------------------------------------------------------------------------- */

struct wconn {
    void *ctx, *sock;
    const char *ep;
};

static int wconn_open(struct wconn *c) {
    if (c->sock) zmq_close(c->sock);
    c->sock = zmq_socket(c->ctx, ZMQ_REQ);
    if (!c->sock)
        return sw_err_set(SW_EIO, "worker: cannot create a socket: %s", zmq_strerror(errno));
    int linger = 0, tmo = 1000;
    zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(c->sock, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
    if (zmq_connect(c->sock, c->ep) != 0)
        return sw_err_set(SW_EIO, "worker: cannot connect to '%s': %s", c->ep, zmq_strerror(errno));
    return 0;
}

/* Send req and wait for the reply into *reply (malloc'ed), retrying with a fresh socket every
 * second, for up to wait_s. */
static int wconn_call(struct wconn *c, const msgpack_sbuffer *req, double wait_s, char **reply,
                      size_t *len) {
    double end = now_s() + wait_s;
    for (;;) {
        if (zmq_send(c->sock, req->data, req->size, 0) >= 0) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            int r = zmq_msg_recv(&m, c->sock, 0);
            if (r >= 0) {
                *len = zmq_msg_size(&m);
                *reply = malloc(*len ? *len : 1);
                if (*reply) memcpy(*reply, zmq_msg_data(&m), *len);
                zmq_msg_close(&m);
                return *reply ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
            }
            zmq_msg_close(&m);
            if (errno == EINTR) return sw_err_set(SW_EINTR, "worker: interrupted");
        }
        if (now_s() > end)
            return sw_err_set(SW_EIO,
                              "worker: no answer from the farm at '%s' for %.0f s (is "
                              "`sw-eval farm --bind` running there?)",
                              c->ep, wait_s);
        SW_TRY(wconn_open(c)); /* a REQ socket that timed out must be replaced */
    }
}

static int do_shard(struct sw_bench_backend *be, const msgpack_object *m, msgpack_sbuffer *sb) {
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int64_t s = obj_int(m, "shard", -1);
    int rc = 0;
    if (obj_is(m, "kind", "ll")) {
        const msgpack_object *cx = sw_msgpack_map_get(m, "ctx"),
                             *co = sw_msgpack_map_get(m, "cont");
        if (!cx || !co || cx->type != MSGPACK_OBJECT_ARRAY || co->type != MSGPACK_OBJECT_ARRAY ||
            cx->via.array.size != co->via.array.size)
            return sw_err_set(SW_EFORMAT, "worker: malformed shard from the farm");
        size_t n = cx->via.array.size;
        struct sw_bench_ll_req *q = calloc(n ? n : 1, sizeof(*q));
        struct sw_bench_ll_res *r = calloc(n ? n : 1, sizeof(*r));
        char **strs = calloc(2 * n + 1, sizeof(char *));
        if (!q || !r || !strs) rc = sw_err_set(SW_ENOMEM, "out of memory");
        for (size_t i = 0; rc == 0 && i < n; i++) {
            strs[2 * i] = obj_strdup(&cx->via.array.ptr[i]);
            strs[2 * i + 1] = obj_strdup(&co->via.array.ptr[i]);
            if (!strs[2 * i] || !strs[2 * i + 1])
                rc = sw_err_set(SW_EFORMAT, "worker: bad shard");
            else
                q[i] = (struct sw_bench_ll_req){strs[2 * i], strs[2 * i + 1]};
        }
        int64_t keep = be->shard;
        be->shard = (int64_t)(n ? n : 1); /* one batch set per shard, as the farm cut it */
        if (rc == 0) rc = be->loglik(be, q, n, r, NULL, NULL);
        be->shard = keep;
        if (rc == 0) {
            msgpack_pack_map(&pk, 5);
            pk_str(&pk, "t"), pk_str(&pk, "res");
            pk_str(&pk, "shard"), msgpack_pack_int64(&pk, s);
            pk_str(&pk, "ll"), msgpack_pack_array(&pk, n);
            for (size_t i = 0; i < n; i++)
                msgpack_pack_double(&pk, r[i].ll);
            pk_str(&pk, "g"), msgpack_pack_array(&pk, n);
            for (size_t i = 0; i < n; i++)
                r[i].greedy ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
            pk_str(&pk, "nt"), msgpack_pack_array(&pk, n);
            for (size_t i = 0; i < n; i++)
                msgpack_pack_int64(&pk, r[i].ntok);
        }
        for (size_t i = 0; strs && i < 2 * n; i++)
            free(strs[i]);
        free(strs), free(q), free(r);
        return rc;
    }
    if (obj_is(m, "kind", "gen")) {
        const msgpack_object *g = sw_msgpack_map_get(m, "gen");
        if (!g || g->type != MSGPACK_OBJECT_ARRAY)
            return sw_err_set(SW_EFORMAT, "worker: malformed shard from the farm");
        size_t n = g->via.array.size;
        struct sw_bench_gen_req *q = calloc(n ? n : 1, sizeof(*q));
        char **out = calloc(n ? n : 1, sizeof(char *));
        char ***keep = calloc(n ? n : 1, sizeof(char **));
        if (!q || !out || !keep) rc = sw_err_set(SW_ENOMEM, "out of memory");
        for (size_t i = 0; rc == 0 && i < n; i++) {
            const msgpack_object *e = &g->via.array.ptr[i];
            if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 5 ||
                e->via.array.ptr[4].type != MSGPACK_OBJECT_ARRAY) {
                rc = sw_err_set(SW_EFORMAT, "worker: malformed generation request");
                break;
            }
            const msgpack_object *u = &e->via.array.ptr[4];
            size_t nu = u->via.array.size;
            keep[i] = calloc(nu + 4, sizeof(char *)); /* NULL-terminated */
            if (!keep[i]) {
                rc = sw_err_set(SW_ENOMEM, "out of memory");
                break;
            }
            keep[i][0] = obj_strdup(&e->via.array.ptr[0]);
            keep[i][1] = obj_strdup(&e->via.array.ptr[1]);
            keep[i][2] = obj_strdup(&e->via.array.ptr[2]);
            for (size_t k = 0; k < nu; k++)
                keep[i][3 + k] = obj_strdup(&u->via.array.ptr[k]);
            q[i] =
                (struct sw_bench_gen_req){keep[i][0], keep[i][1] && *keep[i][1] ? keep[i][1] : NULL,
                                          keep[i][2], (const char *const *)keep[i] + 3,
                                          (int)nu,    (int64_t)obj_num(&e->via.array.ptr[3])};
            if (!keep[i][0]) rc = sw_err_set(SW_EFORMAT, "worker: malformed generation request");
        }
        if (rc == 0) rc = be->generate(be, q, n, out, NULL, NULL);
        if (rc == 0) {
            msgpack_pack_map(&pk, 3);
            pk_str(&pk, "t"), pk_str(&pk, "res");
            pk_str(&pk, "shard"), msgpack_pack_int64(&pk, s);
            pk_str(&pk, "text"), msgpack_pack_array(&pk, n);
            for (size_t i = 0; i < n; i++)
                pk_str(&pk, out[i]);
        }
        for (size_t i = 0; i < n; i++) {
            if (keep && keep[i]) {
                for (size_t k = 0; keep[i][k] || k < 3; k++)
                    free(keep[i][k]);
                free(keep[i]);
            }
            if (out) free(out[i]);
        }
        free(q), free(out), free(keep);
        return rc;
    }
    if (obj_is(m, "kind", "roll")) {
        const msgpack_object *tx = sw_msgpack_map_get(m, "texts");
        if (!tx || tx->type != MSGPACK_OBJECT_ARRAY)
            return sw_err_set(SW_EFORMAT, "worker: malformed shard from the farm");
        size_t n = tx->via.array.size;
        char **t = calloc(n ? n : 1, sizeof(char *));
        struct sw_bench_roll_res *r = calloc(n ? n : 1, sizeof(*r));
        if (!t || !r) rc = sw_err_set(SW_ENOMEM, "out of memory");
        for (size_t i = 0; rc == 0 && i < n; i++)
            if (!(t[i] = obj_strdup(&tx->via.array.ptr[i])))
                rc = sw_err_set(SW_EFORMAT, "bad shard");
        if (rc == 0)
            rc = be->rolling(be, (const char *const *)t, n, obj_int(m, "max_length", 0),
                             obj_int(m, "stride", 0), r, NULL, NULL);
        if (rc == 0) {
            msgpack_pack_map(&pk, 4);
            pk_str(&pk, "t"), pk_str(&pk, "res");
            pk_str(&pk, "shard"), msgpack_pack_int64(&pk, s);
            pk_str(&pk, "ll"), msgpack_pack_array(&pk, n);
            for (size_t i = 0; i < n; i++)
                msgpack_pack_double(&pk, r[i].ll);
            pk_str(&pk, "nt"), msgpack_pack_array(&pk, n);
            for (size_t i = 0; i < n; i++)
                msgpack_pack_int64(&pk, r[i].ntok);
        }
        for (size_t i = 0; t && i < n; i++)
            free(t[i]);
        free(t), free(r);
        return rc;
    }
    return sw_err_set(SW_EFORMAT, "worker: a shard of unknown kind");
}

int sw_bench_worker_run(const struct sw_bench_worker_opts *o, struct sw_bench_backend *be) {
    struct wconn c = {zmq_ctx_new(), NULL, o->connect};
    double wait_s = o->wait_s > 0 ? o->wait_s : 60;
    if (!c.ctx) return sw_err_set(SW_EIO, "worker: cannot create a ZeroMQ context");
    int rc = wconn_open(&c);
    msgpack_sbuffer req;
    msgpack_sbuffer_init(&req);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &req, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    pk_str(&pk, "t"), pk_str(&pk, "hello");
    pk_str(&pk, "id"), pk_str(&pk, be->identity);
    pk_str(&pk, "max_length"), msgpack_pack_int64(&pk, be->max_length);
    int64_t shards = 0;
    while (rc == 0) {
        char *rep = NULL;
        size_t len = 0;
        rc = wconn_call(&c, &req, wait_s, &rep, &len);
        if (rc < 0) break;
        msgpack_sbuffer_clear(&req);
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        if (msgpack_unpack_next(&up, rep, len, NULL) != MSGPACK_UNPACK_SUCCESS ||
            up.data.type != MSGPACK_OBJECT_MAP) {
            rc = sw_err_set(SW_EFORMAT, "worker: a malformed message from the farm");
        } else if (obj_is(&up.data, "t", "done")) {
            sw_info("worker: the farm is done (%lld shards here)", (long long)shards);
            msgpack_unpacked_destroy(&up);
            free(rep);
            break;
        } else if (obj_is(&up.data, "t", "shard")) {
            shards++;
            if (o->die_after > 0 && shards >= o->die_after) {
                sw_warn("worker: --die_after %lld: leaving shard %lld unanswered",
                        (long long)o->die_after, (long long)obj_int(&up.data, "shard", -1));
                msgpack_unpacked_destroy(&up);
                free(rep);
                break;
            }
            rc = do_shard(be, &up.data, &req);
        } else {
            if (obj_is(&up.data, "t", "wait"))
                usleep((useconds_t)(obj_int(&up.data, "ms", 200) * 1000));
            msgpack_pack_map(&pk, 1);
            pk_str(&pk, "t"), pk_str(&pk, "get");
        }
        msgpack_unpacked_destroy(&up);
        free(rep);
    }
    msgpack_sbuffer_destroy(&req);
    if (c.sock) zmq_close(c.sock);
    zmq_ctx_term(c.ctx);
    return rc;
}
