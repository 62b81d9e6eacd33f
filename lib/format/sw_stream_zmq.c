/* sw_stream_zmq — the ZeroMQ transport of sws streams: one record per single-part message over
 * PUSH (writer) / PULL (reader) sockets.
 *
 * PUSH/PULL gives back-pressure (a writer blocks while the reader's queue is full or while no
 * reader is connected) and never drops messages while connected, which is what a data feed
 * needs; the end record's count and checksum catch what a broken connection loses anyway.
 * Delivery at close: a tcp/ipc stream owns its context, and zmq_ctx_term() waits (up to the
 * linger) until queued messages are handed to the peer, so the end record is not lost when the
 * writer's process exits right after sw_stream_close(). inproc needs both ends in one context,
 * hence the shared process-wide context (never terminated: inproc queues live in it). */
#include "sw_stream_impl.h"

#include "sw_err.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define SW_ZMQ_DEFAULT_LINGER_MS 30000

int sw_stream_is_endpoint(const char *s) {
    if (!s) return 0;
    if (*s == '@' || *s == '>') s++;
    return strncmp(s, "tcp://", 6) == 0 || strncmp(s, "ipc://", 6) == 0 ||
           strncmp(s, "inproc://", 9) == 0;
}

static pthread_once_t shared_once = PTHREAD_ONCE_INIT;
static void *shared_ctx;

static void shared_make(void) {
    shared_ctx = zmq_ctx_new();
}

void *sw_stream_zmq_context(void) {
    pthread_once(&shared_once, shared_make);
    if (!shared_ctx) sw_err_set(SW_EIO, "cannot create a ZeroMQ context: %s", zmq_strerror(errno));
    return shared_ctx;
}

static int zmq_fail(const char *what, const char *endpoint) {
    int e = errno;
    return sw_err_set(e == EINTR ? SW_EINTR : SW_EIO, "%s '%s': %s", what, endpoint,
                      zmq_strerror(e));
}

static int set_int(void *sock, int opt, int v, const char *endpoint) {
    if (zmq_setsockopt(sock, opt, &v, sizeof v) != 0)
        return zmq_fail("cannot set a socket option for", endpoint);
    return 0;
}

int sw_zmq_open(struct sw_zmq *z, const char *spec, int writer, const struct sw_stream_opts *o) {
    memset(z, 0, sizeof *z);
    int bind = writer;
    if (*spec == '@' || *spec == '>') bind = *spec++ == '@';
    snprintf(z->endpoint, sizeof z->endpoint, "%s", spec);
    if (o->zmq_ctx)
        z->ctx = o->zmq_ctx;
    else if (strncmp(spec, "inproc://", 9) == 0)
        z->ctx = sw_stream_zmq_context();
    else {
        z->ctx = zmq_ctx_new();
        z->own_ctx = 1;
        if (!z->ctx) return zmq_fail("cannot create a ZeroMQ context for", spec);
    }
    if (!z->ctx) return SW_EIO;
    z->sock = zmq_socket(z->ctx, writer ? ZMQ_PUSH : ZMQ_PULL);
    if (!z->sock) {
        int rc = zmq_fail("cannot create a ZeroMQ socket for", spec);
        sw_zmq_close(z, 1);
        return rc;
    }
    int linger = !writer             ? 0
                 : o->linger_ms == 0 ? SW_ZMQ_DEFAULT_LINGER_MS
                 : o->linger_ms < 0  ? -1
                                     : o->linger_ms;
    int rc = set_int(z->sock, ZMQ_LINGER, linger, spec);
    if (rc == 0 && o->timeout_ms > 0)
        rc = set_int(z->sock, writer ? ZMQ_SNDTIMEO : ZMQ_RCVTIMEO, o->timeout_ms, spec);
    if (rc == 0 && !writer) {
        /* zmq drops bigger messages (and the connection) instead of buffering them. */
        int64_t max = (int64_t)(o->max_record ? o->max_record : SW_STREAM_MAX_RECORD);
        if (zmq_setsockopt(z->sock, ZMQ_MAXMSGSIZE, &max, sizeof max) != 0)
            rc = zmq_fail("cannot set the message size limit for", spec);
    }
    if (rc == 0 && (bind ? zmq_bind(z->sock, spec) : zmq_connect(z->sock, spec)) != 0)
        rc = zmq_fail(bind ? "cannot bind" : "cannot connect to", spec);
    if (rc == 0 && bind) {
        size_t n = sizeof z->endpoint;
        if (zmq_getsockopt(z->sock, ZMQ_LAST_ENDPOINT, z->endpoint, &n) != 0)
            snprintf(z->endpoint, sizeof z->endpoint, "%s", spec);
    }
    if (rc < 0) sw_zmq_close(z, 1);
    return rc;
}

int sw_zmq_send(struct sw_zmq *z, const struct iovec *v, size_t n, size_t total) {
    zmq_msg_t m;
    if (zmq_msg_init_size(&m, total) != 0)
        return sw_err_set(SW_ENOMEM, "out of memory for a ZeroMQ message of %zu bytes", total);
    char *p = zmq_msg_data(&m);
    for (size_t i = 0; i < n; i++) {
        memcpy(p, v[i].iov_base, v[i].iov_len);
        p += v[i].iov_len;
    }
    if (zmq_msg_send(&m, z->sock, 0) >= 0) return 0; /* zmq now owns the message */
    int e = errno;
    zmq_msg_close(&m);
    if (e == EAGAIN)
        return sw_err_set(SW_EIO, "'%s': timed out sending (no reader took the record)",
                          z->endpoint);
    errno = e;
    return zmq_fail("cannot send to", z->endpoint);
}

int sw_zmq_recv(struct sw_zmq *z, uint8_t **buf, size_t *cap, size_t *len, int dontwait,
                const char *what) {
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, z->sock, dontwait ? ZMQ_DONTWAIT : 0) < 0) {
        int e = errno;
        zmq_msg_close(&m);
        if (e == EAGAIN && dontwait) return 0;
        if (e == EAGAIN) return sw_err_set(SW_ETRUNC, "no %s arrived within the timeout", what);
        errno = e;
        return zmq_fail("cannot receive from", z->endpoint);
    }
    int rc = 1;
    size_t size = zmq_msg_size(&m);
    if (zmq_msg_more(&m))
        rc = sw_err_set(SW_EFORMAT,
                        "'%s': multi-part message (sws sends one record per "
                        "single-part message)",
                        z->endpoint);
    else if ((rc = sw_buf_reserve(buf, cap, size, 0)) == 0) {
        memcpy(*buf, zmq_msg_data(&m), size);
        *len = size;
        rc = 1;
    }
    zmq_msg_close(&m);
    return rc;
}

void sw_zmq_close(struct sw_zmq *z, int drop) {
    if (z->sock && drop) {
        int zero = 0;
        zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof zero);
    }
    if (z->sock) zmq_close(z->sock);
    z->sock = NULL;
    if (z->own_ctx && z->ctx)
        while (zmq_ctx_term(z->ctx) != 0 && errno == EINTR) {
        }
    z->ctx = NULL;
    z->own_ctx = 0;
}
