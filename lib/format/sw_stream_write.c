/* sw_stream_write — the sws writer to a file (atomically), stdout, a FIFO/device, or a ZeroMQ
 * PUSH socket.
 *
 * A record is encoded into an iovec list (small pieces copied, tensor data referenced), hashed,
 * and written piece by piece, or gathered into one ZeroMQ message. Writes to anything but a
 * regular file are flushed per record so a live consumer sees each record when it is complete.
 * A regular file is written to a temp file and renamed at close: a reader never sees a file
 * without its end record, and an abandoned writer leaves nothing behind. */
#include "sw_stream_impl.h"

#include "sw_err.h"
#include "sw_io.h"
#include "sw_sha256.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef SW_VERSION
#define SW_VERSION "0.0.0"
#endif

enum dst_type { DST_ATOMIC, DST_FILE, DST_STDOUT, DST_ZMQ };

struct sw_stream_writer {
    char *name;
    enum dst_type dst;
    struct sw_atomic_file af;
    FILE *fp;
    int flush_each;
    struct sw_zmq zmq;
    struct sw_enc enc;
    struct sw_sha256 hash;
    uint64_t count, max_record;
    int failed;
    void *pending; /* ZeroMQ: the encoded header, sent with the first record or the end */
    size_t pending_len;
};

/* Write the encoder's current record (hashing it unless it is the end record) and clear it. */
static int emit(struct sw_stream_writer *w, int hash) {
    const struct iovec *v = msgpack_vrefbuffer_vec(&w->enc.vbuf);
    size_t n = msgpack_vrefbuffer_veclen(&w->enc.vbuf);
    size_t total = w->enc.off;
    int rc = 0;
    if (total > w->max_record)
        rc = sw_err_set(SW_ERANGE, "%s: record %llu is %zu bytes, over the limit of %llu", w->name,
                        (unsigned long long)w->count + 1, total, (unsigned long long)w->max_record);
    for (size_t i = 0; rc == 0 && hash && i < n; i++)
        rc = sw_sha256_update(&w->hash, v[i].iov_base, v[i].iov_len);
    if (rc == 0 && w->dst == DST_ZMQ) {
        if (w->pending) {
            struct iovec hv = {.iov_base = w->pending, .iov_len = w->pending_len};
            rc = sw_zmq_send(&w->zmq, &hv, 1, w->pending_len);
            free(w->pending);
            w->pending = NULL;
        }
        if (rc == 0) rc = sw_zmq_send(&w->zmq, v, n, total);
    } else {
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = sw_write_full(w->fp, v[i].iov_base, v[i].iov_len, w->name);
        if (rc == 0 && w->flush_each && fflush(w->fp) != 0)
            rc = sw_err_errno("cannot write '%s'", w->name);
    }
    sw_enc_clear(&w->enc);
    if (rc < 0) w->failed = 1;
    return rc;
}

static int pack_cstr(msgpack_packer *pk, const char *key, const char *val) {
    return msgpack_pack_str_with_body(pk, key, strlen(key)) ||
           msgpack_pack_str_with_body(pk, val, strlen(val));
}

static int write_header(struct sw_stream_writer *w, const struct sw_stream_info *info) {
    const char *producer = info->producer ? info->producer : "sw " SW_VERSION;
    if (!info->stream_kind || !info->stream_kind[0] ||
        !sw_utf8_valid(info->stream_kind, strlen(info->stream_kind)) ||
        !sw_utf8_valid(producer, strlen(producer)))
        return sw_err_set(SW_EINVAL, "%s: the stream needs a UTF-8 stream_kind and producer",
                          w->name);
    msgpack_packer *pk = &w->enc.pk;
    int bad = msgpack_pack_map(pk, 6) || pack_cstr(pk, "kind", "header") ||
              pack_cstr(pk, "magic", SW_STREAM_MAGIC) ||
              msgpack_pack_str_with_body(pk, "version", 7) ||
              msgpack_pack_int(pk, SW_STREAM_VERSION) || pack_cstr(pk, "producer", producer) ||
              pack_cstr(pk, "stream_kind", info->stream_kind) ||
              msgpack_pack_str_with_body(pk, "meta", 4);
    if (bad) return sw_err_set(SW_ENOMEM, "out of memory encoding a header");
    if (info->meta)
        SW_TRY(sw_record_builder_pack(info->meta, &w->enc, 1));
    else if (msgpack_pack_map(pk, 0) != 0)
        return sw_err_set(SW_ENOMEM, "out of memory");
    if (w->dst != DST_ZMQ) return emit(w, 1);
    /* Sending would block until a reader connects, and a reader may need the endpoint this
     * open is about to report ("tcp://host:*"): hold the header until the first record. */
    const struct iovec *v = msgpack_vrefbuffer_vec(&w->enc.vbuf);
    size_t n = msgpack_vrefbuffer_veclen(&w->enc.vbuf);
    int rc = sw_enc_flatten(&w->enc, &w->pending, &w->pending_len);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = sw_sha256_update(&w->hash, v[i].iov_base, v[i].iov_len);
    sw_enc_clear(&w->enc);
    return rc;
}

static int open_target(struct sw_stream_writer *w, const char *dst,
                       const struct sw_stream_opts *o) {
    if (strcmp(dst, "-") == 0) {
        w->dst = DST_STDOUT;
        w->fp = stdout;
        w->flush_each = 1;
        return 0;
    }
    if (sw_stream_is_endpoint(dst)) {
        w->dst = DST_ZMQ;
        return sw_zmq_open(&w->zmq, dst, 1, o);
    }
    struct stat st;
    if (stat(dst, &st) == 0 && !S_ISREG(st.st_mode)) {
        /* A FIFO, a device or /dev/stdout: cannot be replaced by a rename. */
        w->dst = DST_FILE;
        w->fp = fopen(dst, "wbe");
        w->flush_each = 1;
        return w->fp ? 0 : sw_err_errno("cannot open '%s'", dst);
    }
    w->dst = DST_ATOMIC;
    SW_TRY(sw_atomic_open(&w->af, dst));
    w->fp = w->af.fp;
    return 0;
}

int sw_stream_open_write(struct sw_stream_writer **out, const char *dst,
                         const struct sw_stream_info *info, const struct sw_stream_opts *opts) {
    static const struct sw_stream_opts defaults;
    const struct sw_stream_opts *o = opts ? opts : &defaults;
    *out = NULL;
    struct sw_stream_writer *w = calloc(1, sizeof *w);
    if (!w) return sw_err_set(SW_ENOMEM, "out of memory opening '%s'", dst);
    w->max_record = o->max_record ? o->max_record : SW_STREAM_MAX_RECORD;
    w->name = strdup(dst);
    int rc = w->name ? 0 : sw_err_set(SW_ENOMEM, "out of memory opening '%s'", dst);
    if (rc == 0) rc = sw_enc_init(&w->enc);
    if (rc == 0) rc = sw_sha256_init(&w->hash);
    if (rc == 0) rc = open_target(w, dst, o);
    if (rc == 0) {
        w->flush_each |= o->flush_each;
        if (w->dst == DST_ZMQ) {
            free(w->name);
            w->name = strdup(w->zmq.endpoint);
            if (!w->name) rc = sw_err_set(SW_ENOMEM, "out of memory");
        }
    }
    if (rc == 0) rc = write_header(w, info);
    if (rc < 0) {
        sw_stream_writer_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

static int check_kind(const struct sw_stream_writer *w, const char *kind) {
    if (kind && sw_record_kind_class(kind) != 0) return 0;
    return sw_err_set(SW_EINVAL,
                      "%s: record %llu: kind '%s' cannot be written (want sample, "
                      "batch, tensors or x-...)",
                      w->name, (unsigned long long)w->count + 1, kind && kind[0] ? kind : "(none)");
}

int sw_stream_write(struct sw_stream_writer *w, const struct sw_record_builder *b) {
    if (w->failed) return sw_err_set(SW_ESTATE, "%s: the stream failed earlier", w->name);
    SW_TRY(check_kind(w, sw_record_builder_kind(b)));
    int rc = sw_record_builder_pack(b, &w->enc, 1);
    if (rc < 0) {
        sw_enc_clear(&w->enc);
        return rc;
    }
    SW_TRY(emit(w, 1));
    w->count++;
    return 0;
}

int sw_stream_write_raw(struct sw_stream_writer *w, const void *rec, size_t len) {
    if (w->failed) return sw_err_set(SW_ESTATE, "%s: the stream failed earlier", w->name);
    struct sw_frame f;
    sw_frame_reset(&f);
    int rc = sw_frame_scan(&f, rec, len, w->max_record);
    if (rc == 0 || (rc == 1 && f.off != len))
        rc = sw_err_set(SW_EFORMAT, "%zu bytes are not exactly one msgpack value", len);
    if (rc < 0)
        return sw_err_wrap(rc, "%s: raw record %llu", w->name, (unsigned long long)w->count + 1);
    struct sw_record r = {.index = w->count + 1, .raw = rec, .raw_len = len, .stream = w->name};
    msgpack_unpacked unp;
    msgpack_unpacked_init(&unp);
    rc = sw_record_parse(&r, &unp);
    if (rc == 0) rc = check_kind(w, r.kind);
    if (rc == 0) rc = sw_record_check_kind(&r);
    msgpack_unpacked_destroy(&unp);
    SW_TRY(rc);
    if (w->enc.pk.callback(w->enc.pk.data, rec, len) != 0) {
        sw_enc_clear(&w->enc);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    SW_TRY(emit(w, 1));
    w->count++;
    return 0;
}

static int write_end(struct sw_stream_writer *w) {
    uint8_t digest[32];
    char sum[7 + 65] = "sha256:";
    SW_TRY(sw_sha256_final(&w->hash, digest));
    sw_hex(digest, 32, sum + 7);
    msgpack_packer *pk = &w->enc.pk;
    if (msgpack_pack_map(pk, 3) || pack_cstr(pk, "kind", "end") ||
        msgpack_pack_str_with_body(pk, "count", 5) || msgpack_pack_uint64(pk, w->count) ||
        pack_cstr(pk, "checksum", sum))
        return sw_err_set(SW_ENOMEM, "out of memory encoding the end record");
    return emit(w, 0);
}

int sw_stream_close(struct sw_stream_writer **wp) {
    struct sw_stream_writer *w = *wp;
    *wp = NULL;
    if (!w) return sw_err_set(SW_EINVAL, "sw_stream_close: no writer");
    int rc =
        w->failed ? sw_err_set(SW_ESTATE, "%s: the stream failed earlier", w->name) : write_end(w);
    if (rc == 0) {
        switch (w->dst) {
        case DST_ATOMIC:
            w->fp = NULL;
            rc = sw_atomic_commit(&w->af);
            break;
        case DST_FILE:
            if (fclose(w->fp) != 0) rc = sw_err_errno("cannot write '%s'", w->name);
            w->fp = NULL;
            break;
        case DST_STDOUT:
            if (fflush(stdout) != 0) rc = sw_err_errno("cannot write to stdout");
            w->fp = NULL;
            break;
        case DST_ZMQ:
            sw_zmq_close(&w->zmq, 0); /* waits (up to the linger) for delivery */
            break;
        }
    }
    sw_stream_writer_free(w);
    return rc;
}

void sw_stream_writer_free(struct sw_stream_writer *w) {
    if (!w) return;
    switch (w->dst) {
    case DST_ATOMIC: sw_atomic_abort(&w->af); break;
    case DST_FILE:
        if (w->fp) fclose(w->fp);
        break;
    case DST_STDOUT:
        if (w->fp) fflush(stdout);
        break;
    case DST_ZMQ: sw_zmq_close(&w->zmq, 1); break;
    }
    sw_enc_release(&w->enc);
    sw_sha256_release(&w->hash);
    free(w->pending);
    free(w->name);
    free(w);
}

uint64_t sw_stream_writer_count(const struct sw_stream_writer *w) {
    return w->count;
}
const char *sw_stream_writer_endpoint(const struct sw_stream_writer *w) {
    return w->name;
}
