/* sw_stream_read — the sws reader over a file descriptor (file, pipe, stdin), a memory buffer
 * or a ZeroMQ PULL socket.
 *
 * Bytes arrive in chunks (read(2) returns what a pipe has, so a live producer's records are
 * seen as soon as they are complete) into one aligned buffer. The framer (sw_stream_frame.c)
 * finds where a record ends; the record is then moved down to a 16-byte boundary if needed, so
 * aligned tensor data in the stream is aligned in memory, hashed, parsed by msgpack-c without
 * copying (objects point into the buffer) and checked. The buffer is compacted only when it
 * runs out of room, and grows only for a record bigger than it, up to the record limit.
 *
 * Every byte before the end record goes into the SHA-256 compared with the end record's
 * checksum. Errors are sticky: once a stream is known to be bad, no later read succeeds. */
#include "sw_stream_impl.h"

#include "sw_err.h"
#include "sw_sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK ((size_t)64 * 1024)

enum src_type { SRC_FD, SRC_MEM, SRC_ZMQ };

/* A record kept for the reader's lifetime (header, end), with its own bytes. */
struct kept_record {
    struct sw_record rec;
    msgpack_unpacked unp;
    uint8_t *buf;
    struct sw_scratch scratch;
    int valid;
};

struct sw_stream_reader {
    char *name;
    enum src_type src;
    int fd, own_fd;
    const uint8_t *mem;
    size_t mem_len, mem_pos;
    struct sw_zmq zmq;
    struct sw_stream_opts opts;
    uint64_t max_record;

    uint8_t *buf; /* aligned; [pos, len) not yet consumed */
    size_t cap, pos, len;
    uint64_t base; /* stream offset of buf[0] */
    int eof;

    struct sw_sha256 hash;
    uint64_t count; /* records after the header so far */
    int state;      /* 0 reading, 1 ended cleanly, < 0 failed with that code */
    char *fail_msg;

    struct sw_record cur;
    msgpack_unpacked cur_unp;
    struct sw_scratch scratch;
    struct kept_record head, end;
    struct sw_stream_header hdr;
    char *producer, *stream_kind;
};

static const msgpack_object empty_map = {.type = MSGPACK_OBJECT_MAP};

/* ---- errors ------------------------------------------------------------------------------- */

static int fail(struct sw_stream_reader *r, int rc) {
    r->state = rc;
    free(r->fail_msg);
    r->fail_msg = strdup(sw_err_msg());
    return rc;
}

static int replay_failure(const struct sw_stream_reader *r) {
    return sw_err_set(r->state, "%s", r->fail_msg ? r->fail_msg : sw_strerror(r->state));
}

/* Index the record being read will get: the header is 0. */
static uint64_t next_index(const struct sw_stream_reader *r) {
    return r->head.valid ? r->count + 1 : 0;
}

/* ---- raw records from a byte source ------------------------------------------------------- */

static int src_read(struct sw_stream_reader *r, uint8_t *dst, size_t n, size_t *got) {
    if (r->src == SRC_MEM) {
        size_t k = r->mem_len - r->mem_pos < n ? r->mem_len - r->mem_pos : n;
        memcpy(dst, r->mem + r->mem_pos, k);
        r->mem_pos += k;
        *got = k;
        return 0;
    }
    for (;;) {
        ssize_t k = read(r->fd, dst, n);
        if (k >= 0) {
            *got = (size_t)k;
            return 0;
        }
        if (errno != EINTR) return sw_err_errno("cannot read '%s'", r->name);
        if (r->opts.interrupted && r->opts.interrupted())
            return sw_err_set(SW_EINTR, "%s: reading interrupted by a signal", r->name);
    }
}

/* Read another chunk, compacting or growing the buffer when it is short of room. */
static int fill(struct sw_stream_reader *r) {
    if (r->cap - r->len < READ_CHUNK) {
        if (r->pos > 0) {
            memmove(r->buf, r->buf + r->pos, r->len - r->pos);
            r->base += r->pos;
            r->len -= r->pos;
            r->pos = 0;
        }
        SW_TRY(sw_buf_reserve(&r->buf, &r->cap, r->len + READ_CHUNK, r->len));
    }
    size_t got = 0;
    SW_TRY(src_read(r, r->buf + r->len, r->cap - r->len, &got));
    if (got == 0) r->eof = 1;
    r->len += got;
    return 0;
}

static int frame_error(const struct sw_stream_reader *r, int rc) {
    return sw_err_wrap(rc, "%s: record %llu at byte %llu", r->name,
                       (unsigned long long)next_index(r), (unsigned long long)(r->base + r->pos));
}

/* Frame the next record of a byte source. Returns 1 with the record's bytes at a 16-byte-aligned
 * *rec, 0 at a clean end of input (no byte of a new record), or an error. */
static int next_raw_bytes(struct sw_stream_reader *r, const uint8_t **rec, size_t *rlen,
                          uint64_t *roff) {
    struct sw_frame f;
    sw_frame_reset(&f);
    for (;;) {
        int rc = sw_frame_scan(&f, r->buf + r->pos, r->len - r->pos, r->max_record);
        if (rc < 0) return frame_error(r, rc);
        if (rc == 1) break;
        if (r->eof) {
            if (r->len == r->pos) return 0;
            return sw_err_set(SW_ETRUNC,
                              "%s: truncated stream: record %llu at byte %llu is "
                              "incomplete (the stream ends at byte %llu)",
                              r->name, (unsigned long long)next_index(r),
                              (unsigned long long)(r->base + r->pos),
                              (unsigned long long)(r->base + r->len));
        }
        SW_TRY(fill(r));
    }
    size_t start = r->pos, a = start & ~(size_t)(SW_STREAM_ALIGN - 1);
    /* Bytes before start belong to records already handed out and now invalid. */
    if (a != start) memmove(r->buf + a, r->buf + start, f.off);
    *rec = r->buf + a;
    *rlen = f.off;
    *roff = r->base + start;
    r->pos = start + f.off;
    return 1;
}

/* One ZeroMQ message must be exactly one record. */
static int next_raw_msg(struct sw_stream_reader *r, const uint8_t **rec, size_t *rlen,
                        uint64_t *roff) {
    size_t len = 0;
    int rc = sw_zmq_recv(&r->zmq, &r->buf, &r->cap, &len, 0, "record");
    if (rc == SW_ETRUNC)
        return sw_err_set(SW_ETRUNC,
                          "%s: truncated stream: no record arrived within %d ms "
                          "after %llu records",
                          r->name, r->opts.timeout_ms,
                          (unsigned long long)(r->head.valid ? r->count + 1 : 0));
    if (rc < 0) return sw_err_wrap(rc, "%s", r->name);
    r->pos = 0;
    r->len = len;
    struct sw_frame f;
    sw_frame_reset(&f);
    rc = sw_frame_scan(&f, r->buf, len, r->max_record);
    if (rc < 0) return frame_error(r, rc);
    if (rc == 0 || f.off != len) {
        return sw_err_set(SW_EFORMAT,
                          "%s: record %llu at byte %llu: a message of %zu bytes holds "
                          "%s",
                          r->name, (unsigned long long)next_index(r), (unsigned long long)r->base,
                          len, rc == 0 ? "an incomplete record" : "more than one msgpack value");
    }
    *rec = r->buf;
    *rlen = len;
    *roff = r->base;
    r->base += len;
    return 1;
}

/* Frame and parse the next record into rec/unp with the generic checks. 0 at clean EOF. */
static int next_record(struct sw_stream_reader *r, struct sw_record *rec, msgpack_unpacked *unp,
                       struct sw_scratch *scratch) {
    const uint8_t *bytes = NULL;
    size_t len = 0;
    uint64_t off = 0;
    int rc = r->src == SRC_ZMQ ? next_raw_msg(r, &bytes, &len, &off)
                               : next_raw_bytes(r, &bytes, &len, &off);
    if (rc <= 0) return rc;
    memset(rec, 0, sizeof *rec);
    rec->index = next_index(r);
    rec->offset = off;
    rec->raw = bytes;
    rec->raw_len = len;
    rec->stream = r->name;
    rec->scratch = scratch;
    SW_TRY(sw_record_parse(rec, unp));
    return 1;
}

/* Copy a record (header, end) into storage that lives as long as the reader. */
static int keep_record(struct sw_stream_reader *r, struct kept_record *k,
                       const struct sw_record *src) {
    if (posix_memalign((void **)&k->buf, 64, src->raw_len ? src->raw_len : 1) != 0)
        return sw_err_set(SW_ENOMEM, "%s: out of memory", r->name);
    memcpy(k->buf, src->raw, src->raw_len);
    k->rec = *src;
    k->rec.raw = k->buf;
    k->rec.scratch = &k->scratch;
    msgpack_unpacked_init(&k->unp);
    SW_TRY(sw_record_parse(&k->rec, &k->unp));
    k->valid = 1;
    return 0;
}

static void release_kept(struct kept_record *k) {
    if (k->buf) msgpack_unpacked_destroy(&k->unp);
    sw_scratch_clear(&k->scratch);
    free(k->scratch.blocks);
    free(k->buf);
    memset(k, 0, sizeof *k);
}

/* ---- header ------------------------------------------------------------------------------- */

static int not_sws(const struct sw_stream_reader *r, const char *fmt, const char *arg) {
    char what[256];
    snprintf(what, sizeof what, fmt, arg);
    return sw_err_set(SW_EFORMAT, "%s: not an sws stream: %s", r->name, what);
}

static char *str_copy(const msgpack_object *o) {
    return strndup(o->via.str.ptr, o->via.str.size);
}

static int read_header(struct sw_stream_reader *r) {
    int rc = next_record(r, &r->cur, &r->cur_unp, &r->scratch);
    if (rc == 0)
        return sw_err_set(SW_ETRUNC, "%s: truncated stream: empty (no header record)", r->name);
    if (rc == SW_EFORMAT) {
        /* "<name>: record 0 ...: why" becomes "<name>: not an sws stream: record 0 ...: why" */
        char why[1024];
        const char *m = sw_err_msg();
        size_t n = strlen(r->name);
        if (strncmp(m, r->name, n) == 0 && strncmp(m + n, ": ", 2) == 0) m += n + 2;
        snprintf(why, sizeof why, "%s", m);
        return sw_err_set(rc, "%s: not an sws stream: %s", r->name, why);
    }
    SW_TRY(rc);
    const struct sw_record *h = &r->cur;
    if (strcmp(h->kind, "header") != 0)
        return not_sws(r, "the first record's kind is '%s', not 'header'", h->kind);
    const msgpack_object *magic = sw_record_field(h, "magic");
    if (!magic || !sw_msgpack_str_eq(magic, SW_STREAM_MAGIC))
        return not_sws(r, "%s", "the header's magic is not \"" SW_STREAM_MAGIC "\"");
    int64_t version;
    rc = sw_record_get_int(h, "version", &version);
    if (rc < 0) return not_sws(r, "%s", "the header has no integer \"version\"");
    if (version < 1) return not_sws(r, "%s", "the header's version is below 1");
    if (version > SW_STREAM_VERSION)
        return sw_err_set(SW_EUNSUPPORTED,
                          "%s: stream version %lld is newer than this reader "
                          "(version %d): upgrade sw",
                          r->name, (long long)version, SW_STREAM_VERSION);
    const msgpack_object *producer = sw_record_field(h, "producer");
    const msgpack_object *skind = sw_record_field(h, "stream_kind");
    const msgpack_object *meta = sw_record_field(h, "meta");
    if (!producer || producer->type != MSGPACK_OBJECT_STR)
        return sw_record_errf(h, SW_EFORMAT, "the header has no string \"producer\"");
    if (!skind || skind->type != MSGPACK_OBJECT_STR)
        return sw_record_errf(h, SW_EFORMAT, "the header has no string \"stream_kind\"");
    if (meta && meta->type != MSGPACK_OBJECT_MAP)
        return sw_record_errf(h, SW_EFORMAT, "the header's \"meta\" is not a map");
    SW_TRY(sw_sha256_update(&r->hash, h->raw, h->raw_len));
    SW_TRY(keep_record(r, &r->head, h));
    h = &r->head.rec;
    r->producer = str_copy(sw_record_field(h, "producer"));
    r->stream_kind = str_copy(sw_record_field(h, "stream_kind"));
    if (!r->producer || !r->stream_kind) return sw_err_set(SW_ENOMEM, "out of memory");
    r->hdr.version = version;
    r->hdr.producer = r->producer;
    r->hdr.stream_kind = r->stream_kind;
    r->hdr.meta = sw_record_field(h, "meta");
    if (!r->hdr.meta) r->hdr.meta = &empty_map;
    return 0;
}

/* ---- end ---------------------------------------------------------------------------------- */

/* Nothing may follow the end record: for byte sources read to EOF; for ZeroMQ look for a
 * message already queued (a later one would belong to a socket nobody reads any more). */
static int check_nothing_after(struct sw_stream_reader *r, uint64_t end_at) {
    if (r->src == SRC_ZMQ) {
        size_t len;
        int rc = sw_zmq_recv(&r->zmq, &r->buf, &r->cap, &len, 1, "record");
        if (rc < 0) return sw_err_wrap(rc, "%s", r->name);
        if (rc == 1)
            return sw_err_set(SW_EFORMAT, "%s: a message arrived after the end record (byte %llu)",
                              r->name, (unsigned long long)end_at);
        return 0;
    }
    while (r->len == r->pos && !r->eof)
        SW_TRY(fill(r));
    if (r->len > r->pos)
        return sw_err_set(SW_EFORMAT, "%s: data after the end record at byte %llu", r->name,
                          (unsigned long long)(r->base + r->pos));
    return 0;
}

static int finish(struct sw_stream_reader *r) {
    const struct sw_record *e = &r->cur;
    SW_TRY(sw_record_check_kind(e));
    uint64_t count;
    const char *sum;
    size_t sum_len;
    SW_TRY(sw_record_get_uint(e, "count", &count));
    SW_TRY(sw_record_get_str(e, "checksum", &sum, &sum_len));
    if (count != r->count)
        return sw_record_errf(e, SW_ECORRUPT,
                              "the end record counts %llu records but %llu were "
                              "read",
                              (unsigned long long)count, (unsigned long long)r->count);
    uint8_t digest[32];
    char hex[65];
    SW_TRY(sw_sha256_final(&r->hash, digest));
    sw_hex(digest, 32, hex);
    if (memcmp(sum + 7, hex, 64) != 0)
        return sw_record_errf(e, SW_ECORRUPT,
                              "checksum mismatch: the end record says %.71s, the "
                              "stream hashes to sha256:%s",
                              sum, hex);
    /* Keep the end record first: looking for more input may reuse the buffer it sits in. */
    SW_TRY(keep_record(r, &r->end, e));
    return check_nothing_after(r, e->offset + e->raw_len);
}

/* ---- public API --------------------------------------------------------------------------- */

int sw_stream_read(struct sw_stream_reader *r, const struct sw_record **out) {
    *out = NULL;
    if (r->state < 0) return replay_failure(r);
    if (r->state == 1) return 0;
    for (;;) {
        msgpack_unpacked_destroy(&r->cur_unp);
        sw_scratch_clear(&r->scratch);
        int rc = next_record(r, &r->cur, &r->cur_unp, &r->scratch);
        if (rc == 0)
            rc = sw_err_set(SW_ETRUNC, "%s: truncated stream: no end record after %llu records",
                            r->name, (unsigned long long)r->count);
        if (rc < 0) return fail(r, rc);
        const char *kind = r->cur.kind;
        if (strcmp(kind, "end") == 0) {
            rc = finish(r);
            if (rc < 0) return fail(r, rc);
            r->state = 1;
            return 0;
        }
        rc = sw_sha256_update(&r->hash, r->cur.raw, r->cur.raw_len);
        if (rc < 0) return fail(r, rc);
        r->count++;
        int cls = sw_record_kind_class(kind);
        if (cls == 0)
            return fail(r, sw_record_errf(&r->cur, SW_EFORMAT,
                                          strcmp(kind, "header") == 0
                                              ? "a second header record"
                                              : "unknown record kind (kinds outside the spec "
                                                "must start with \"x-\")"));
        if (cls == 2 && !r->opts.keep_unknown) continue;
        rc = sw_record_check_kind(&r->cur);
        if (rc < 0) return fail(r, rc);
        *out = &r->cur;
        return 1;
    }
}

static int reader_new(struct sw_stream_reader **out, const char *name,
                      const struct sw_stream_opts *opts) {
    *out = NULL;
    struct sw_stream_reader *r = calloc(1, sizeof *r);
    if (!r) return sw_err_set(SW_ENOMEM, "out of memory opening '%s'", name);
    r->fd = -1;
    if (opts) r->opts = *opts;
    r->max_record = r->opts.max_record ? r->opts.max_record : SW_STREAM_MAX_RECORD;
    msgpack_unpacked_init(&r->cur_unp);
    r->name = strdup(name);
    *out = r;
    if (!r->name) return sw_err_set(SW_ENOMEM, "out of memory opening '%s'", name);
    return sw_sha256_init(&r->hash);
}

/* Shared tail of every open: read the header, or free the reader on failure. */
static int open_finish(struct sw_stream_reader **out, struct sw_stream_reader *r, int rc) {
    if (rc == 0 && r->src != SRC_ZMQ)
        rc = sw_buf_reserve(&r->buf, &r->cap, SW_STREAM_BUF_INITIAL, 0);
    if (rc == 0) rc = read_header(r);
    if (rc < 0) {
        sw_stream_reader_free(r);
        *out = NULL;
        return rc;
    }
    *out = r;
    return 0;
}

int sw_stream_open_mem(struct sw_stream_reader **out, const void *data, size_t len,
                       const char *name, const struct sw_stream_opts *opts) {
    struct sw_stream_reader *r;
    int rc = reader_new(&r, name ? name : "<memory>", opts);
    if (r) {
        r->src = SRC_MEM;
        r->mem = data;
        r->mem_len = len;
    }
    return r ? open_finish(out, r, rc) : rc;
}

int sw_stream_open_fd(struct sw_stream_reader **out, int fd, int take_fd, const char *name,
                      const struct sw_stream_opts *opts) {
    char buf[32];
    snprintf(buf, sizeof buf, "<fd %d>", fd);
    struct sw_stream_reader *r;
    int rc = reader_new(&r, name ? name : buf, opts);
    if (!r) {
        if (take_fd) close(fd);
        return rc;
    }
    r->src = SRC_FD;
    r->fd = fd;
    r->own_fd = take_fd;
    return open_finish(out, r, rc);
}

int sw_stream_open_read(struct sw_stream_reader **out, const char *src,
                        const struct sw_stream_opts *opts) {
    *out = NULL;
    if (strcmp(src, "-") == 0) return sw_stream_open_fd(out, 0, 0, "<stdin>", opts);
    if (!sw_stream_is_endpoint(src)) {
        int fd = open(src, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return sw_err_errno("cannot open '%s'", src);
        return sw_stream_open_fd(out, fd, 1, src, opts);
    }
    struct sw_stream_reader *r;
    int rc = reader_new(&r, src, opts);
    if (!r) return rc;
    r->src = SRC_ZMQ;
    if (rc == 0) rc = sw_zmq_open(&r->zmq, src, 0, &r->opts);
    return open_finish(out, r, rc);
}

const struct sw_stream_header *sw_stream_reader_header(const struct sw_stream_reader *r) {
    return &r->hdr;
}
const struct sw_record *sw_stream_reader_header_record(const struct sw_stream_reader *r) {
    return r->head.valid ? &r->head.rec : NULL;
}
const struct sw_record *sw_stream_reader_end_record(const struct sw_stream_reader *r) {
    return r->end.valid ? &r->end.rec : NULL;
}
uint64_t sw_stream_reader_count(const struct sw_stream_reader *r) {
    return r->count;
}
const char *sw_stream_reader_name(const struct sw_stream_reader *r) {
    return r->name;
}

void sw_stream_reader_free(struct sw_stream_reader *r) {
    if (!r) return;
    msgpack_unpacked_destroy(&r->cur_unp);
    sw_scratch_clear(&r->scratch);
    free(r->scratch.blocks);
    release_kept(&r->head);
    release_kept(&r->end);
    if (r->src == SRC_ZMQ) sw_zmq_close(&r->zmq, 1);
    if (r->own_fd && r->fd >= 0) close(r->fd);
    sw_sha256_release(&r->hash);
    free(r->buf);
    free(r->fail_msg);
    free(r->producer);
    free(r->stream_kind);
    free(r->name);
    free(r);
}
