/* test_stream — the sws stream: round trips of every record kind over a file, a pipe, stdout
 * of a child process and ZeroMQ (inproc, ipc, tcp), and the reader's defences: truncation at
 * every byte, byte flips, wrong count/checksum, data after the end, bad headers, malformed
 * tensors and records, limits, and misaligned (foreign-writer) tensor data.
 *
 * `test_stream --emit FILE` writes the all-kinds stream to FILE and exits (used by
 * test/cli/pack-cat.bats to check that Python can read what sw writes). */
#include "sw_err.h"
#include "sw_io.h"
#include "sw_sha256.h"
#include "sw_stream.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the reference content: one record of every kind -------------------------------------- */

static int32_t ids[6] = {1, 2, 3, 4, 5, 6};
static int32_t labels[6] = {-100, -100, 3, 4, 5, -100};
static int32_t pos[6] = {0, 1, 2, 3, 4, 5};
static int32_t ch_ids[3] = {7, 8, 9}, rj_ids[4] = {7, 8, 10, 11};
static int32_t ch_lab[3] = {-100, 8, 9}, rj_lab[4] = {-100, 8, 10, 11};
static int32_t b_ids[2 * 5] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 0};
static int32_t b_lab[2 * 5] = {-100, 2, 3, -100, 5, 6, 7, 8, -100, -100};
static int32_t b_pos[2 * 5] = {0, 1, 2, 0, 1, 0, 1, 2, 0, 0};
static int32_t b_cu[4] = {0, 3, 5, 8};
static float w_f32[2 * 3] = {0.1f, -2.5f, 3.0f, 1e-3f, 0.0f, 7.25f};
static uint16_t w_bf16[4];
static int64_t w_i64[3] = {-5, 0, (int64_t)1 << 40};
static uint8_t w_bool[3] = {1, 0, 1};
static uint8_t w_q4[2] = {0x21, 0x03}; /* elements 1, 2, 3 */
static double w_scalar = 2.5;
static float *big; /* 1M floats: forces buffer growth */
#define BIG_N (1 << 20)

static void init_data(void) {
    for (int i = 0; i < 4; i++)
        w_bf16[i] = sw_f32_to_bf16(0.5f * (float)(i + 1));
    if (!big) {
        big = malloc(sizeof(float) * BIG_N);
        for (int i = 0; i < BIG_N; i++)
            big[i] = (float)i * 0.5f;
    }
}

static int put_t(struct sw_record_builder *b, const char *key, enum sw_dtype dt, int ndim,
                 const int64_t *shape, const void *data) {
    struct sw_tensor t;
    SW_TRY(sw_tensor_init(&t, dt, ndim, shape, (void *)data));
    return sw_record_put_tensor(b, key, &t);
}

/* Write the reference records; with_big adds a 4 MiB tensor record. Returns 0 or an error. */
static int write_all(struct sw_stream_writer *w, int with_big) {
    struct sw_record_builder *b = sw_record_builder_new("sample");
    if (!b) return SW_ENOMEM;
    int rc = 0;
    /* 1: plain sample */
    SW_TRY_GOTO(rc, sw_record_put_i32(b, "input_ids", ids, 6), out);
    SW_TRY_GOTO(rc, sw_record_put_i32(b, "labels", labels, 6), out);
    SW_TRY_GOTO(rc, sw_record_put_i32(b, "position_ids", pos, 6), out);
    SW_TRY_GOTO(rc, sw_record_put_map_begin(b, "meta"), out);
    SW_TRY_GOTO(rc, sw_record_put_str(b, "source", "alpaca-zh.jsonl:17"), out);
    SW_TRY_GOTO(rc, sw_record_put_int(b, "turns", -3), out);
    SW_TRY_GOTO(rc, sw_record_put_array_begin(b, "tags"), out);
    SW_TRY_GOTO(rc, sw_record_put_str(b, NULL, "zh"), out);
    SW_TRY_GOTO(rc, sw_record_put_double(b, NULL, 0.5), out);
    SW_TRY_GOTO(rc, sw_record_put_nil(b, NULL), out);
    SW_TRY_GOTO(rc, sw_record_put_end(b), out);
    SW_TRY_GOTO(rc, sw_record_put_end(b), out);
    SW_TRY_GOTO(rc, sw_stream_write(w, b), out);
    /* 2: preference pair (KTO label too) */
    SW_TRY_GOTO(rc, sw_record_builder_reset(b, "sample"), out);
    SW_TRY_GOTO(rc, sw_record_put_i32(b, "chosen_input_ids", ch_ids, 3), out);
    SW_TRY_GOTO(rc, sw_record_put_i32(b, "chosen_labels", ch_lab, 3), out);
    SW_TRY_GOTO(rc, sw_record_put_i32(b, "rejected_input_ids", rj_ids, 4), out);
    SW_TRY_GOTO(rc, sw_record_put_i32(b, "rejected_labels", rj_lab, 4), out);
    SW_TRY_GOTO(rc, sw_record_put_bool(b, "label", 1), out);
    SW_TRY_GOTO(rc, sw_stream_write(w, b), out);
    /* 3: an extension record (skipped by default) */
    SW_TRY_GOTO(rc, sw_record_builder_reset(b, "x-note"), out);
    SW_TRY_GOTO(rc, sw_record_put_str(b, "text", "héllo ✓"), out);
    SW_TRY_GOTO(rc, sw_stream_write(w, b), out);
    /* 4: packed batch */
    SW_TRY_GOTO(rc, sw_record_builder_reset(b, "batch"), out);
    int64_t bt[2] = {2, 5}, ncu = 4;
    SW_TRY_GOTO(rc, put_t(b, "input_ids", SW_DTYPE_I32, 2, bt, b_ids), out);
    SW_TRY_GOTO(rc, put_t(b, "labels", SW_DTYPE_I32, 2, bt, b_lab), out);
    SW_TRY_GOTO(rc, put_t(b, "position_ids", SW_DTYPE_I32, 2, bt, b_pos), out);
    SW_TRY_GOTO(rc, put_t(b, "cu_seqlens", SW_DTYPE_I32, 1, &ncu, b_cu), out);
    SW_TRY_GOTO(rc, sw_record_put_uint(b, "num_samples", 3), out);
    SW_TRY_GOTO(rc, sw_record_put_uint(b, "num_tokens", 8), out);
    SW_TRY_GOTO(rc, sw_record_put_uint(b, "max_seqlen", 3), out);
    SW_TRY_GOTO(rc, sw_stream_write(w, b), out);
    /* 5: named tensor set */
    SW_TRY_GOTO(rc, sw_record_builder_reset(b, "tensors"), out);
    SW_TRY_GOTO(rc, sw_record_put_str(b, "name", "step-10"), out);
    SW_TRY_GOTO(rc, sw_record_put_map_begin(b, "tensors"), out);
    int64_t s23[2] = {2, 3}, s4 = 4, s3 = 3, s0[2] = {0, 7};
    SW_TRY_GOTO(rc, put_t(b, "w.f32", SW_DTYPE_F32, 2, s23, w_f32), out);
    SW_TRY_GOTO(rc, put_t(b, "w.bf16", SW_DTYPE_BF16, 1, &s4, w_bf16), out);
    SW_TRY_GOTO(rc, put_t(b, "w.i64", SW_DTYPE_I64, 1, &s3, w_i64), out);
    SW_TRY_GOTO(rc, put_t(b, "w.bool", SW_DTYPE_BOOL, 1, &s3, w_bool), out);
    SW_TRY_GOTO(rc, put_t(b, "w.q4", SW_DTYPE_Q4, 1, &s3, w_q4), out);
    SW_TRY_GOTO(rc, put_t(b, "scalar", SW_DTYPE_F64, 0, NULL, &w_scalar), out);
    SW_TRY_GOTO(rc, put_t(b, "empty", SW_DTYPE_F32, 2, s0, NULL), out);
    SW_TRY_GOTO(rc, sw_record_put_end(b), out);
    SW_TRY_GOTO(rc, sw_stream_write(w, b), out);
    if (with_big) {
        int64_t n = BIG_N;
        SW_TRY_GOTO(rc, sw_record_builder_reset(b, "tensors"), out);
        SW_TRY_GOTO(rc, sw_record_put_str(b, "name", "big"), out);
        SW_TRY_GOTO(rc, sw_record_put_map_begin(b, "tensors"), out);
        SW_TRY_GOTO(rc, put_t(b, "ramp", SW_DTYPE_F32, 1, &n, big), out);
        SW_TRY_GOTO(rc, sw_record_put_end(b), out);
        SW_TRY_GOTO(rc, sw_stream_write(w, b), out);
    }
out:
    sw_record_builder_free(b);
    return rc;
}

static struct sw_record_builder *make_meta(void) {
    struct sw_record_builder *m = sw_record_builder_new(NULL);
    sw_record_put_str(m, "dataset", "demo");
    sw_record_put_uint(m, "max_length", 2048);
    sw_record_put_double(m, "lr", 1e-4);
    return m;
}

static int open_writer(struct sw_stream_writer **w, const char *dst,
                       const struct sw_stream_opts *o) {
    struct sw_record_builder *meta = make_meta();
    struct sw_stream_info info = {
        .producer = "test_stream 1", .stream_kind = "samples", .meta = meta};
    int rc = sw_stream_open_write(w, dst, &info, o);
    sw_record_builder_free(meta);
    return rc;
}

/* Write the reference stream to dst and close it. */
static int write_stream(const char *dst, int with_big, const struct sw_stream_opts *o) {
    struct sw_stream_writer *w;
    SW_TRY(open_writer(&w, dst, o));
    int rc = write_all(w, with_big);
    if (rc < 0) {
        sw_stream_writer_free(w);
        return rc;
    }
    return sw_stream_close(&w);
}

static int same_i32(const struct sw_tensor *t, const int32_t *want, int64_t n) {
    return t->dtype == SW_DTYPE_I32 && sw_tensor_numel(t) == n &&
           memcmp(t->data, want, 4 * (size_t)n) == 0;
}

/* A tensor view is zero-copy (inside the record) and aligned. */
static int zero_copy(const struct sw_record *r, const struct sw_tensor *t) {
    size_t len;
    const char *raw = sw_record_raw(r, &len);
    const char *d = t->data;
    return d >= raw && d < raw + len && ((uintptr_t)d % SW_STREAM_ALIGN) == 0;
}

/* Read the reference stream and check everything; tag names the transport in test names. */
static void check_all(struct sw_stream_reader *r, const char *tag, int with_big, int keep) {
    const struct sw_stream_header *h = sw_stream_reader_header(r);
    IS_STR(h->producer, "test_stream 1", "%s: header producer", tag);
    IS_STR(h->stream_kind, "samples", "%s: header stream_kind", tag);
    IS_INT(h->version, 1, "%s: header version", tag);
    const msgpack_object *ml = sw_msgpack_map_get(h->meta, "max_length");
    OK(ml && ml->type == MSGPACK_OBJECT_POSITIVE_INTEGER && ml->via.u64 == 2048,
       "%s: header meta max_length", tag);

    const struct sw_record *rec;
    struct sw_tensor t;
    int rc = sw_stream_read(r, &rec);
    IS_INT(rc, 1, "%s: sample read (%s)", tag, sw_err_msg());
    if (rc != 1) return;
    IS_STR(sw_record_kind(rec), "sample", "%s: kind sample", tag);
    IS_INT(sw_record_index(rec), 1, "%s: first record has index 1", tag);
    OK(sw_record_get_tensor(rec, "input_ids", &t) == 0 && same_i32(&t, ids, 6) &&
           zero_copy(rec, &t),
       "%s: input_ids equal, zero-copy, aligned", tag);
    OK(sw_record_get_tensor(rec, "labels", &t) == 0 && same_i32(&t, labels, 6), "%s: labels equal",
       tag);
    const msgpack_object *meta;
    OK(sw_record_get_map(rec, "meta", &meta) == 0 &&
           sw_msgpack_str_eq(sw_msgpack_map_get(meta, "source"), "alpaca-zh.jsonl:17"),
       "%s: nested meta string", tag);
    const msgpack_object *tags = sw_msgpack_map_get(meta, "tags");
    OK(tags && tags->type == MSGPACK_OBJECT_ARRAY && tags->via.array.size == 3 &&
           tags->via.array.ptr[1].via.f64 == 0.5 &&
           tags->via.array.ptr[2].type == MSGPACK_OBJECT_NIL,
       "%s: nested array", tag);

    rc = sw_stream_read(r, &rec);
    int label = 0;
    OK(rc == 1 && sw_record_get_tensor(rec, "rejected_input_ids", &t) == 0 &&
           same_i32(&t, rj_ids, 4) && sw_record_get_bool(rec, "label", &label) == 0 && label,
       "%s: preference sample", tag);

    if (keep) {
        rc = sw_stream_read(r, &rec);
        const char *s;
        size_t n;
        OK(rc == 1 && strcmp(sw_record_kind(rec), "x-note") == 0 &&
               sw_record_get_str(rec, "text", &s, &n) == 0 && n == strlen("héllo ✓") &&
               memcmp(s, "héllo ✓", n) == 0,
           "%s: x- record returned with keep_unknown", tag);
    }

    rc = sw_stream_read(r, &rec);
    uint64_t ns = 0;
    OK(rc == 1 && strcmp(sw_record_kind(rec), "batch") == 0 &&
           sw_record_get_tensor(rec, "cu_seqlens", &t) == 0 && same_i32(&t, b_cu, 4) &&
           sw_record_get_uint(rec, "num_samples", &ns) == 0 && ns == 3,
       "%s: batch (x- record skipped by default)", tag);
    IS_INT(sw_record_index(rec), 4, "%s: batch index counts the skipped record", tag);
    OK(sw_record_get_tensor(rec, "input_ids", &t) == 0 && t.ndim == 2 && t.shape[0] == 2 &&
           t.shape[1] == 5 && same_i32(&t, b_ids, 10),
       "%s: batch input_ids [2,5]", tag);

    rc = sw_stream_read(r, &rec);
    OK(rc == 1 && strcmp(sw_record_kind(rec), "tensors") == 0 && sw_record_tensors_len(rec) == 7,
       "%s: tensors record with 7 tensors", tag);
    if (rc == 1) {
        const char *name;
        size_t nlen;
        int all = 1;
        for (size_t i = 0; i < sw_record_tensors_len(rec); i++) {
            if (sw_record_tensors_at(rec, i, &name, &nlen, &t) != 0) {
                all = 0;
                break;
            }
            if (nlen == 5 && memcmp(name, "w.f32", 5) == 0)
                all &= t.dtype == SW_DTYPE_F32 && t.ndim == 2 && memcmp(t.data, w_f32, 24) == 0 &&
                       zero_copy(rec, &t);
            else if (nlen == 6 && memcmp(name, "w.bf16", 6) == 0)
                all &= t.dtype == SW_DTYPE_BF16 && memcmp(t.data, w_bf16, 8) == 0;
            else if (nlen == 5 && memcmp(name, "w.i64", 5) == 0)
                all &= t.dtype == SW_DTYPE_I64 && ((int64_t *)t.data)[2] == (int64_t)1 << 40;
            else if (nlen == 4 && memcmp(name, "w.q4", 4) == 0)
                all &= t.dtype == SW_DTYPE_Q4 && t.shape[0] == 3 && memcmp(t.data, w_q4, 2) == 0;
            else if (nlen == 6 && memcmp(name, "scalar", 6) == 0)
                all &= t.ndim == 0 && *(double *)t.data == 2.5;
            else if (nlen == 5 && memcmp(name, "empty", 5) == 0)
                all &=
                    t.ndim == 2 && t.shape[0] == 0 && t.shape[1] == 7 && sw_tensor_nbytes(&t) == 0;
        }
        OK(all, "%s: every tensor's dtype, shape and bytes", tag);
    }
    if (with_big) {
        rc = sw_stream_read(r, &rec);
        OK(rc == 1 && sw_record_tensors_at(rec, 0, &(const char *){0}, &(size_t){0}, &t) == 0 &&
               sw_tensor_numel(&t) == BIG_N && memcmp(t.data, big, 4 * (size_t)BIG_N) == 0,
           "%s: 4 MiB tensor intact", tag);
    }
    rc = sw_stream_read(r, &rec);
    IS_INT(rc, 0, "%s: clean end (%s)", tag, rc < 0 ? sw_err_msg() : "");
    const struct sw_record *end = sw_stream_reader_end_record(r);
    uint64_t count = 0;
    OK(end && sw_record_get_uint(end, "count", &count) == 0 && count == (uint64_t)(5 + with_big),
       "%s: end record count", tag);
    IS_INT(sw_stream_read(r, &rec), 0, "%s: read after the end stays 0", tag);
}

/* ---- transports --------------------------------------------------------------------------- */

static char tmpdir[256];

static void test_file(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/a.sws", tmpdir);
    IS_INT(write_stream(path, 1, NULL), 0, "file: write (%s)", sw_err_msg());
    struct sw_stream_reader *r;
    int rc = sw_stream_open_read(&r, path, NULL);
    IS_INT(rc, 0, "file: open (%s)", sw_err_msg());
    if (rc == 0) check_all(r, "file", 1, 0);
    sw_stream_reader_free(r);
    struct sw_stream_opts keep = {.keep_unknown = 1};
    rc = sw_stream_open_read(&r, path, &keep);
    if (rc == 0) check_all(r, "file+keep", 1, 1);
    sw_stream_reader_free(r);

    /* Abandoned writer: no file appears. */
    char p2[512];
    snprintf(p2, sizeof p2, "%s/abandoned.sws", tmpdir);
    struct sw_stream_writer *w;
    rc = open_writer(&w, p2, NULL);
    write_all(w, 0);
    sw_stream_writer_free(w);
    OK(rc == 0 && access(p2, F_OK) != 0, "file: an abandoned writer leaves no file");
}

struct pipe_job {
    char dst[64];
    int rc;
};

static void *pipe_writer(void *arg) {
    struct pipe_job *j = arg;
    j->rc = write_stream(j->dst, 1, NULL);
    return NULL;
}

static void test_pipe(void) {
    int fds[2];
    if (pipe(fds) != 0) {
        OK(0, "pipe: pipe()");
        return;
    }
    /* The writer opens /dev/fd/N: a FIFO target, written in place and flushed per record. */
    struct pipe_job j;
    snprintf(j.dst, sizeof j.dst, "/dev/fd/%d", fds[1]);
    pthread_t th;
    pthread_create(&th, NULL, pipe_writer, &j);
    struct sw_stream_reader *r = NULL;
    int rc = 0;
    /* The writer's reopened descriptor keeps the pipe alive; close ours once it has opened. */
    rc = sw_stream_open_fd(&r, fds[0], 1, "pipe", NULL);
    IS_INT(rc, 0, "pipe: open (%s)", sw_err_msg());
    close(fds[1]);
    if (rc == 0) check_all(r, "pipe", 1, 0);
    pthread_join(th, NULL);
    IS_INT(j.rc, 0, "pipe: writer finished");
    sw_stream_reader_free(r);
}

static void test_stdout_child(void) {
    int fds[2];
    if (pipe(fds) != 0) return;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 1);
        close(fds[1]);
        _exit(write_stream("-", 1, NULL) == 0 ? 0 : 3);
    }
    close(fds[1]);
    struct sw_stream_reader *r;
    int rc = sw_stream_open_fd(&r, fds[0], 1, "child", NULL);
    IS_INT(rc, 0, "stdout: open (%s)", sw_err_msg());
    if (rc == 0) check_all(r, "stdout", 1, 0);
    sw_stream_reader_free(r);
    int st = 0;
    waitpid(pid, &st, 0);
    OK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "stdout: child writer exited 0");
}

struct zmq_job {
    const char *dst;
    char endpoint[256];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int opened, rc, big;
};

static void *zmq_writer(void *arg) {
    struct zmq_job *j = arg;
    struct sw_stream_opts o = {.timeout_ms = 20000};
    struct sw_stream_writer *w;
    int rc = open_writer(&w, j->dst, &o);
    pthread_mutex_lock(&j->mu);
    if (rc == 0) snprintf(j->endpoint, sizeof j->endpoint, "%s", sw_stream_writer_endpoint(w));
    j->opened = rc == 0 ? 1 : -1;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    if (rc == 0) {
        rc = write_all(w, j->big);
        if (rc == 0)
            rc = sw_stream_close(&w);
        else
            sw_stream_writer_free(w);
    }
    j->rc = rc;
    return NULL;
}

/* Writer thread on wdst; the reader opens rdst, or the writer's real endpoint when rdst is NULL. */
static void zmq_round_trip(const char *tag, const char *wdst, const char *rdst, int big) {
    struct zmq_job j = {.dst = wdst, .big = big};
    pthread_mutex_init(&j.mu, NULL);
    pthread_cond_init(&j.cv, NULL);
    pthread_t th;
    pthread_create(&th, NULL, zmq_writer, &j);
    pthread_mutex_lock(&j.mu);
    while (!j.opened)
        pthread_cond_wait(&j.cv, &j.mu);
    pthread_mutex_unlock(&j.mu);
    struct sw_stream_opts o = {.timeout_ms = 20000};
    struct sw_stream_reader *r = NULL;
    int rc = j.opened < 0 ? -1 : sw_stream_open_read(&r, rdst ? rdst : j.endpoint, &o);
    IS_INT(rc, 0, "%s: open (%s)", tag, sw_err_msg());
    if (rc == 0) check_all(r, tag, big, 0);
    sw_stream_reader_free(r);
    pthread_join(th, NULL);
    IS_INT(j.rc, 0, "%s: writer closed cleanly", tag);
}

static void test_zmq(void) {
    zmq_round_trip("inproc", "inproc://sws-test", "inproc://sws-test", 1);
    char ipc[512], ipc_w[520], ipc_r[520];
    snprintf(ipc, sizeof ipc, "ipc://%s/s.ipc", tmpdir);
    zmq_round_trip("ipc", ipc, ipc, 0);
    /* Roles reversed with the prefixes: the reader binds, the writer connects. The writer
     * opens first and connects lazily, so the reader can bind afterwards. */
    snprintf(ipc_w, sizeof ipc_w, ">ipc://%s/r.ipc", tmpdir);
    snprintf(ipc_r, sizeof ipc_r, "@ipc://%s/r.ipc", tmpdir);
    zmq_round_trip("ipc reader-binds", ipc_w, ipc_r, 0);
    zmq_round_trip("tcp", "tcp://127.0.0.1:*", NULL, 1);
    OK(sw_stream_is_endpoint("@tcp://a:1") && sw_stream_is_endpoint("inproc://x") &&
           !sw_stream_is_endpoint("tcp:/x") && !sw_stream_is_endpoint("data.sws"),
       "zmq: endpoint detection");

    /* Nobody writes: the reader gives up after its timeout with a truncation error. */
    struct sw_stream_opts o = {.timeout_ms = 200};
    struct sw_stream_reader *r;
    int rc = sw_stream_open_read(&r, "inproc://sws-nobody", &o);
    OK(rc == SW_ETRUNC && strstr(sw_err_msg(), "no record arrived"),
       "zmq: timeout is SW_ETRUNC (%s)", sw_err_msg());
}

/* ---- corrupted streams -------------------------------------------------------------------- */

static char *small; /* the reference stream without the big record */
static size_t small_len;

/* Read a whole memory stream; returns the first error, 0 on success. */
static int read_mem(const void *p, size_t len, const struct sw_stream_opts *o) {
    struct sw_stream_reader *r;
    SW_TRY(sw_stream_open_mem(&r, p, len, "mem", o));
    const struct sw_record *rec;
    int rc;
    while ((rc = sw_stream_read(r, &rec)) == 1) {
        struct sw_tensor t;
        sw_record_get_tensor(rec, "input_ids", &t); /* exercise the view path too */
    }
    int again = sw_stream_read(r, &rec);
    if (rc < 0 && again != rc) rc = -1000; /* errors must be sticky */
    sw_stream_reader_free(r);
    return rc;
}

static void test_truncation(void) {
    int bad = 0;
    size_t first_bad = 0;
    for (size_t cut = 0; cut < small_len; cut++) {
        int rc = read_mem(small, cut, NULL);
        if (rc != SW_ETRUNC && !bad++) first_bad = cut;
    }
    OK(bad == 0, "truncation at each of %zu byte offsets gives SW_ETRUNC (first bad: %zu)",
       small_len, first_bad);
    read_mem(small, small_len - 1, NULL);
    OK(strstr(sw_err_msg(), "truncated stream"), "truncation message: %s", sw_err_msg());
    IS_INT(read_mem(small, 0, NULL), SW_ETRUNC, "empty input is SW_ETRUNC");
}

static int allowed_corruption(int rc) {
    return rc == SW_ECORRUPT || rc == SW_EFORMAT || rc == SW_ETRUNC || rc == SW_ERANGE ||
           rc == SW_EUNSUPPORTED;
}

static void test_flips(void) {
    static const uint8_t masks[] = {0x01, 0x20, 0x80, 0xff};
    char *buf = malloc(small_len);
    int bad = 0, n = 0;
    size_t first_bad = 0;
    for (size_t i = 0; i < small_len; i++)
        for (size_t m = 0; m < sizeof masks; m++) {
            memcpy(buf, small, small_len);
            buf[i] ^= (char)masks[m];
            int rc = read_mem(buf, small_len, NULL);
            n++;
            if (!allowed_corruption(rc) && !bad++) first_bad = i;
        }
    OK(bad == 0, "%d byte flips all fail with a stream error (%d bad, first at %zu)", n, bad,
       first_bad);

    /* A flip inside tensor data changes no structure: exactly the checksum catches it. */
    struct sw_stream_reader *r;
    const struct sw_record *rec;
    struct sw_tensor t;
    size_t at = 0;
    if (sw_stream_open_mem(&r, small, small_len, "mem", NULL) == 0 &&
        sw_stream_read(r, &rec) == 1 && sw_record_get_tensor(rec, "labels", &t) == 0) {
        size_t len;
        const char *raw = sw_record_raw(rec, &len);
        at = sw_record_offset(rec) + (size_t)((const char *)t.data - raw) + 8;
    }
    sw_stream_reader_free(r);
    memcpy(buf, small, small_len);
    buf[at] ^= 0x04; /* labels[2]: 3 -> 7, still a valid label: only the checksum can tell */
    IS_INT(read_mem(buf, small_len, NULL), SW_ECORRUPT, "a flipped tensor byte is SW_ECORRUPT");
    OK(strstr(sw_err_msg(), "checksum mismatch"), "checksum message: %s", sw_err_msg());
    free(buf);
}

/* Build streams by hand: a header, hand-packed records, an end record with chosen fields. */
struct handmade {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    uint64_t count;
};

static void hm_init(struct handmade *h, const char *magic, int version) {
    msgpack_sbuffer_init(&h->sb);
    msgpack_packer_init(&h->pk, &h->sb, msgpack_sbuffer_write);
    h->count = 0;
    msgpack_packer *pk = &h->pk;
    msgpack_pack_map(pk, 6);
    msgpack_pack_str_with_body(pk, "kind", 4), msgpack_pack_str_with_body(pk, "header", 6);
    msgpack_pack_str_with_body(pk, "magic", 5),
        msgpack_pack_str_with_body(pk, magic, strlen(magic));
    msgpack_pack_str_with_body(pk, "version", 7), msgpack_pack_int(pk, version);
    msgpack_pack_str_with_body(pk, "producer", 8), msgpack_pack_str_with_body(pk, "hand", 4);
    msgpack_pack_str_with_body(pk, "stream_kind", 11), msgpack_pack_str_with_body(pk, "samples", 7);
    msgpack_pack_str_with_body(pk, "meta", 4), msgpack_pack_map(pk, 0);
}

static void hm_str(struct handmade *h, const char *s) {
    msgpack_pack_str_with_body(&h->pk, s, strlen(s));
}

/* A tensor map with free-form dtype/shape/data. */
static void hm_tensor(struct handmade *h, const char *dtype, int ndim, const uint64_t *shape,
                      const void *data, size_t len) {
    msgpack_pack_map(&h->pk, 3);
    hm_str(h, "dtype"), hm_str(h, dtype);
    hm_str(h, "shape"), msgpack_pack_array(&h->pk, (size_t)ndim);
    for (int i = 0; i < ndim; i++)
        msgpack_pack_uint64(&h->pk, shape[i]);
    hm_str(h, "data"), msgpack_pack_bin_with_body(&h->pk, data, len);
}

/* Finish with an end record: count + dcount, checksum corrupted when bad_sum. */
static void hm_end(struct handmade *h, int64_t dcount, int bad_sum) {
    uint8_t d[32];
    char sum[72] = "sha256:";
    sw_sha256(h->sb.data, h->sb.size, d);
    if (bad_sum) d[0] ^= 1;
    sw_hex(d, 32, sum + 7);
    msgpack_pack_map(&h->pk, 3);
    hm_str(h, "kind"), hm_str(h, "end");
    hm_str(h, "count"), msgpack_pack_uint64(&h->pk, (uint64_t)((int64_t)h->count + dcount));
    hm_str(h, "checksum"), hm_str(h, sum);
}

static int hm_read(struct handmade *h, const struct sw_stream_opts *o) {
    int rc = read_mem(h->sb.data, h->sb.size, o);
    msgpack_sbuffer_destroy(&h->sb);
    return rc;
}

/* One sample record {kind: sample, input_ids: tensor(dtype, shape, data)} plus extra pairs
 * packed by the caller: returns after the tensor with extra pairs still to pack. */
static void hm_sample(struct handmade *h, int extra, const char *dtype, int ndim,
                      const uint64_t *shape, const void *data, size_t len) {
    msgpack_pack_map(&h->pk, 2 + (size_t)extra);
    hm_str(h, "kind"), hm_str(h, "sample");
    hm_str(h, "input_ids");
    hm_tensor(h, dtype, ndim, shape, data, len);
    h->count++;
}

static void test_handmade(void) {
    struct handmade h;
    int32_t v[3] = {1, 2, 3};
    uint64_t s3 = 3, s2 = 2;

    hm_init(&h, "sws", 1);
    hm_sample(&h, 0, "I32", 1, &s3, v, 12);
    hm_end(&h, 0, 0);
    IS_INT(hm_read(&h, NULL), 0, "handmade: a valid stream reads (%s)", sw_err_msg());

    hm_init(&h, "sws", 1);
    hm_sample(&h, 0, "I32", 1, &s3, v, 12);
    hm_end(&h, 1, 0);
    IS_INT(hm_read(&h, NULL), SW_ECORRUPT, "count mismatch is SW_ECORRUPT");
    OK(strstr(sw_err_msg(), "counts 2 records but 1"), "count message: %s", sw_err_msg());

    hm_init(&h, "sws", 1);
    hm_sample(&h, 0, "I32", 1, &s3, v, 12);
    hm_end(&h, 0, 1);
    IS_INT(hm_read(&h, NULL), SW_ECORRUPT, "checksum mismatch is SW_ECORRUPT");

    hm_init(&h, "sws", 1);
    hm_end(&h, 0, 0);
    msgpack_pack_nil(&h.pk);
    IS_INT(hm_read(&h, NULL), SW_EFORMAT, "a byte after the end record is SW_EFORMAT");
    OK(strstr(sw_err_msg(), "data after the end record"), "after-end message: %s", sw_err_msg());

    hm_init(&h, "sws", 1);
    hm_end(&h, 0, 0);
    size_t one = h.sb.size;
    msgpack_sbuffer_write(&h.sb, h.sb.data, one); /* a second whole stream */
    IS_INT(hm_read(&h, NULL), SW_EFORMAT, "two concatenated streams are SW_EFORMAT");

    hm_init(&h, "swz", 1);
    hm_end(&h, 0, 0);
    IS_INT(hm_read(&h, NULL), SW_EFORMAT, "bad magic is SW_EFORMAT");
    OK(strstr(sw_err_msg(), "not an sws stream"), "magic message: %s", sw_err_msg());

    hm_init(&h, "sws", 2);
    hm_end(&h, 0, 0);
    IS_INT(hm_read(&h, NULL), SW_EUNSUPPORTED, "a newer version is SW_EUNSUPPORTED");
    OK(strstr(sw_err_msg(), "version 2 is newer"), "version message: %s", sw_err_msg());

    hm_init(&h, "sws", 0);
    hm_end(&h, 0, 0);
    IS_INT(hm_read(&h, NULL), SW_EFORMAT, "version 0 is SW_EFORMAT");

    IS_INT(read_mem("{\"kind\":\"header\"}\n", 18, NULL), SW_EFORMAT, "JSON text is SW_EFORMAT");
    OK(strstr(sw_err_msg(), "not an sws stream"), "JSON message: %s", sw_err_msg());

    /* The first record is not a header. */
    msgpack_sbuffer_init(&h.sb);
    msgpack_packer_init(&h.pk, &h.sb, msgpack_sbuffer_write);
    h.count = 0;
    hm_sample(&h, 0, "I32", 1, &s3, v, 12);
    IS_INT(hm_read(&h, NULL), SW_EFORMAT, "a stream without header is SW_EFORMAT");

    /* Tensor shape × dtype != data length. */
    hm_init(&h, "sws", 1);
    hm_sample(&h, 0, "I32", 1, &s3, v, 8);
    hm_end(&h, 0, 0);
    IS_INT(hm_read(&h, NULL), SW_EFORMAT, "shape/size mismatch is SW_EFORMAT");
    OK(strstr(sw_err_msg(), "input_ids") && strstr(sw_err_msg(), "record 1"),
       "size message names tensor and record: %s", sw_err_msg());

    uint64_t s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 3};
    hm_init(&h, "sws", 1);
    hm_sample(&h, 0, "I32", 9, s9, v, 12);
    hm_end(&h, 0, 0);
    IS_INT(hm_read(&h, NULL), SW_ERANGE, "9 dimensions is SW_ERANGE");

    hm_init(&h, "sws", 1);
    hm_sample(&h, 0, "int32", 1, &s3, v, 12);
    hm_end(&h, 0, 0);
    IS_INT(hm_read(&h, NULL), SW_EFORMAT, "a dtype alias ('int32') is SW_EFORMAT");

    uint64_t huge[2] = {(uint64_t)1 << 40, (uint64_t)1 << 40};
    hm_init(&h, "sws", 1);
    hm_sample(&h, 0, "I32", 2, huge, v, 12);
    hm_end(&h, 0, 0);
    OK(allowed_corruption(hm_read(&h, NULL)), "an overflowing shape is rejected");

    int32_t neg[3] = {1, -2, 3};
    hm_init(&h, "sws", 1);
    hm_sample(&h, 0, "I32", 1, &s3, neg, 12);
    hm_end(&h, 0, 0);
    IS_INT(hm_read(&h, NULL), SW_EFORMAT, "a negative token id is SW_EFORMAT");

    int32_t lab[2] = {1, 2};
    hm_init(&h, "sws", 1);
    hm_sample(&h, 1, "I32", 1, &s3, v, 12);
    hm_str(&h, "labels"), hm_tensor(&h, "I32", 1, &s2, lab, 8);
    hm_end(&h, 0, 0);
    IS_INT(hm_read(&h, NULL), SW_EFORMAT, "labels shorter than input_ids is SW_EFORMAT");

    int32_t badlab[3] = {-100, -1, 3};
    hm_init(&h, "sws", 1);
    hm_sample(&h, 1, "I32", 1, &s3, v, 12);
    hm_str(&h, "labels"), hm_tensor(&h, "I32", 1, &s3, badlab, 12);
    hm_end(&h, 0, 0);
    IS_INT(hm_read(&h, NULL), SW_EFORMAT, "label -1 is SW_EFORMAT");

    hm_init(&h, "sws", 1);
    hm_sample(&h, 1, "I32", 1, &s3, v, 12);
    hm_str(&h, "input_ids"), msgpack_pack_nil(&h.pk);
    hm_end(&h, 0, 0);
    IS_INT(hm_read(&h, NULL), SW_EFORMAT, "a duplicate key is SW_EFORMAT");

    hm_init(&h, "sws", 1);
    hm_sample(&h, 1, "I32", 1, &s3, v, 12);
    msgpack_pack_int(&h.pk, 5), msgpack_pack_nil(&h.pk);
    hm_end(&h, 0, 0);
    IS_INT(hm_read(&h, NULL), SW_EFORMAT, "an integer map key is SW_EFORMAT");

    hm_init(&h, "sws", 1);
    hm_sample(&h, 1, "I32", 1, &s3, v, 12);
    hm_str(&h, "meta"), msgpack_pack_str_with_body(&h.pk, "\xc3\x28", 2);
    hm_end(&h, 0, 0);
    IS_INT(hm_read(&h, NULL), SW_EFORMAT, "invalid UTF-8 is SW_EFORMAT");

    hm_init(&h, "sws", 1);
    hm_sample(&h, 1, "I32", 1, &s3, v, 12);
    hm_str(&h, "t"), msgpack_pack_ext_with_body(&h.pk, "abcd", 4, -1);
    hm_end(&h, 0, 0);
    IS_INT(hm_read(&h, NULL), SW_EFORMAT, "an ext value is SW_EFORMAT");

    hm_init(&h, "sws", 1);
    msgpack_pack_map(&h.pk, 1), hm_str(&h, "kind"), hm_str(&h, "bogus");
    h.count++;
    hm_end(&h, 0, 0);
    IS_INT(hm_read(&h, NULL), SW_EFORMAT, "an unknown kind is SW_EFORMAT");
    OK(strstr(sw_err_msg(), "x-"), "unknown-kind message mentions x-: %s", sw_err_msg());

    hm_init(&h, "sws", 1);
    msgpack_pack_map(&h.pk, 2), hm_str(&h, "kind"), hm_str(&h, "x-later");
    hm_str(&h, "whatever"), msgpack_pack_array(&h.pk, 0);
    h.count++;
    hm_end(&h, 0, 0);
    IS_INT(hm_read(&h, NULL), 0, "an x- kind is skipped (%s)", sw_err_msg());

    hm_init(&h, "sws", 1);
    msgpack_pack_map(&h.pk, 1), hm_str(&h, "kind"), hm_str(&h, "header");
    h.count++;
    hm_end(&h, 0, 0);
    IS_INT(hm_read(&h, NULL), SW_EFORMAT, "a second header is SW_EFORMAT");

    hm_init(&h, "sws", 1);
    msgpack_pack_map(&h.pk, 2), hm_str(&h, "kind"), hm_str(&h, "x-deep");
    hm_str(&h, "d");
    for (int i = 0; i < 20; i++)
        msgpack_pack_array(&h.pk, 1);
    msgpack_pack_nil(&h.pk);
    h.count++;
    hm_end(&h, 0, 0);
    IS_INT(hm_read(&h, NULL), SW_EFORMAT, "nesting past 16 levels is SW_EFORMAT");

    /* An array claiming 2^32-1 elements must not allocate for them. */
    hm_init(&h, "sws", 1);
    msgpack_pack_map(&h.pk, 2), hm_str(&h, "kind"), hm_str(&h, "x-big");
    hm_str(&h, "a");
    msgpack_sbuffer_write(&h.sb, "\xdd\xff\xff\xff\xff", 5);
    IS_INT(hm_read(&h, NULL), SW_ETRUNC, "a hostile array count is just a truncated stream");

    /* Record size limit. */
    hm_init(&h, "sws", 1);
    hm_sample(&h, 0, "I32", 1, &s3, v, 12);
    hm_end(&h, 0, 0);
    struct sw_stream_opts lim = {.max_record = 40};
    IS_INT(hm_read(&h, &lim), SW_ERANGE, "a record over max_record is SW_ERANGE");

    /* A batch whose cu_seqlens disagrees with num_tokens. */
    int32_t bids[4] = {1, 2, 3, 4}, cu[3] = {0, 2, 3};
    uint64_t s14[2] = {1, 4};
    hm_init(&h, "sws", 1);
    msgpack_pack_map(&h.pk, 5), hm_str(&h, "kind"), hm_str(&h, "batch");
    hm_str(&h, "input_ids"), hm_tensor(&h, "I32", 2, s14, bids, 16);
    hm_str(&h, "cu_seqlens"), hm_tensor(&h, "I32", 1, &s3, cu, 12);
    hm_str(&h, "num_samples"), msgpack_pack_uint64(&h.pk, 2);
    hm_str(&h, "num_tokens"), msgpack_pack_uint64(&h.pk, 4);
    h.count++;
    hm_end(&h, 0, 0);
    IS_INT(hm_read(&h, NULL), SW_EFORMAT, "cu_seqlens ending at 3 with num_tokens 4 is SW_EFORMAT");

    /* A foreign writer's misaligned tensor: the view is an aligned copy with the same values. */
    hm_init(&h, "sws", 1);
    msgpack_pack_map(&h.pk, 3), hm_str(&h, "kind"), hm_str(&h, "tensors");
    hm_str(&h, "name"), hm_str(&h, "m");
    hm_str(&h, "tensors"), msgpack_pack_map(&h.pk, 2);
    float f[3] = {1.5f, -2.0f, 3.25f};
    hm_str(&h, "a"), hm_tensor(&h, "F32", 1, &s3, f, 12);
    hm_str(&h, "bb"), hm_tensor(&h, "F32", 1, &s3, f, 12);
    h.count++;
    hm_end(&h, 0, 0);
    struct sw_stream_reader *r;
    const struct sw_record *rec;
    struct sw_tensor t1, t2;
    int ok = sw_stream_open_mem(&r, h.sb.data, h.sb.size, "mis", NULL) == 0 &&
             sw_stream_read(r, &rec) == 1 &&
             sw_record_tensors_at(rec, 0, &(const char *){0}, &(size_t){0}, &t1) == 0 &&
             sw_record_tensors_at(rec, 1, &(const char *){0}, &(size_t){0}, &t2) == 0;
    OK(ok && (uintptr_t)t1.data % 4 == 0 && (uintptr_t)t2.data % 4 == 0 &&
           ((float *)t1.data)[2] == 3.25f && ((float *)t2.data)[1] == -2.0f,
       "misaligned tensor data is served aligned");
    if (ok) IS_INT(sw_stream_read(r, &rec), 0, "misaligned stream ends cleanly");
    sw_stream_reader_free(r);
    msgpack_sbuffer_destroy(&h.sb);
}

/* ---- writer side -------------------------------------------------------------------------- */

static void test_writer_errors(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/w.sws", tmpdir);
    struct sw_stream_info info = {.stream_kind = "samples"};
    struct sw_stream_opts lim = {.max_record = 200};
    struct sw_stream_writer *w;
    int rc = sw_stream_open_write(&w, path, &info, &lim);
    IS_INT(rc, 0, "writer: open with a default producer");
    struct sw_record_builder *b = sw_record_builder_new("header");
    IS_INT(sw_stream_write(w, b), SW_EINVAL, "writer: kind 'header' is refused");
    sw_record_builder_reset(b, "sample");
    IS_INT(sw_record_put_nil(b, "kind"), SW_EINVAL, "builder: duplicate key refused");
    IS_INT(sw_record_put_nil(b, NULL), SW_EINVAL, "builder: map entry without key refused");
    IS_INT(sw_record_put_end(b), SW_ESTATE, "builder: put_end without begin is SW_ESTATE");
    IS_INT(sw_record_put_str(b, "s", "\xff"), SW_EINVAL, "builder: invalid UTF-8 refused");
    int32_t m[6] = {0};
    struct sw_tensor t;
    int64_t shape[2] = {2, 3};
    sw_tensor_init(&t, SW_DTYPE_I32, 2, shape, m);
    t.strides[0] = 4, t.strides[1] = 8; /* transposed view */
    IS_INT(sw_record_put_tensor(b, "t", &t), SW_EINVAL, "builder: non-contiguous tensor refused");
    sw_record_put_map_begin(b, "open");
    IS_INT(sw_stream_write(w, b), SW_ESTATE, "writer: an unclosed map is SW_ESTATE");
    sw_record_builder_reset(b, "sample");
    static int32_t many[100];
    sw_record_put_i32(b, "input_ids", many, 100);
    IS_INT(sw_stream_write(w, b), SW_ERANGE, "writer: a record over max_record is SW_ERANGE");
    sw_stream_writer_free(w);
    sw_record_builder_free(b);

    /* Forwarding raw records keeps the stream valid; a non-record is refused. */
    char in[512], outp[512];
    snprintf(in, sizeof in, "%s/a.sws", tmpdir);
    snprintf(outp, sizeof outp, "%s/fwd.sws", tmpdir);
    struct sw_stream_reader *r;
    struct sw_stream_opts keep = {.keep_unknown = 1};
    rc = sw_stream_open_read(&r, in, &keep);
    if (rc == 0)
        rc = sw_stream_open_write(&w, outp, &(struct sw_stream_info){.stream_kind = "x"}, NULL);
    const struct sw_record *rec;
    int n = 0;
    while (rc == 0 && sw_stream_read(r, &rec) == 1) {
        size_t len;
        const void *raw = sw_record_raw(rec, &len);
        rc = sw_stream_write_raw(w, raw, len);
        n++;
    }
    IS_INT(sw_stream_write_raw(w, "\x91\x01", 2), SW_EFORMAT, "write_raw: an array is refused");
    if (rc == 0) rc = sw_stream_close(&w);
    sw_stream_reader_free(r);
    IS_INT(rc, 0, "write_raw: forwarded %d records", n);
    struct sw_stream_opts keep2 = {.keep_unknown = 1};
    int m2 = 0;
    if (sw_stream_open_read(&r, outp, &keep2) == 0) {
        while (sw_stream_read(r, &rec) == 1)
            m2++;
        sw_stream_reader_free(r);
    }
    IS_INT(m2, n, "write_raw: the copy reads back with every record");
}

/* ---- JSON view ---------------------------------------------------------------------------- */

static void test_json(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/a.sws", tmpdir);
    struct sw_stream_reader *r;
    const struct sw_record *rec;
    if (sw_stream_open_read(&r, path, NULL) != 0 || sw_stream_read(r, &rec) != 1) {
        OK(0, "json: open");
        return;
    }
    json_t *j = sw_record_to_json(rec, 0);
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    OK(s &&
           strstr(s,
                  "\"input_ids\":{\"dtype\":\"I32\",\"shape\":[6],\"min\":1,\"max\":6,\"sum\":21}"),
       "json: tensor summary: %s", s ? s : sw_err_msg());
    free(s);
    json_decref(j);
    while (sw_stream_read(r, &rec) == 1 && strcmp(sw_record_kind(rec), "tensors") != 0) {
    }
    j = sw_record_to_json(rec, SW_RECORD_JSON_FULL);
    s = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    OK(s && strstr(s, "\"values\":[[0.1,-2.5,3.0],[0.001,0.0,7.25]]") &&
           strstr(s, "\"w.q4\":{\"dtype\":\"Q4\",\"shape\":[3],\"values\":[1,2,3]}") &&
           strstr(s, "\"values\":[true,false,true]"),
       "json: full values: %s", s ? s : sw_err_msg());
    free(s);
    json_decref(j);
    sw_stream_reader_free(r);
}

/* ---- main --------------------------------------------------------------------------------- */

static void load_small(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/small.sws", tmpdir);
    IS_INT(write_stream(path, 0, NULL), 0, "write the small stream");
    sw_read_file(path, &small, &small_len, 0);
    OK(small && small_len > 200 && small_len < 4096, "small stream is %zu bytes", small_len);
}

static void cleanup(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) DIAG("could not remove %s", tmpdir);
}

int main(int argc, char **argv) {
    sw_io_ignore_sigpipe();
    init_data();
    if (argc == 3 && strcmp(argv[1], "--emit") == 0) {
        int rc = write_stream(argv[2], 0, NULL);
        if (rc < 0) fprintf(stderr, "test_stream: %s\n", sw_err_msg());
        return rc < 0;
    }
    snprintf(tmpdir, sizeof tmpdir, "%s/sws-test.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        OK(0, "mkdtemp");
        return tap_done();
    }
    test_file();
    test_pipe();
    test_stdout_child();
    test_zmq();
    load_small();
    if (small) {
        test_truncation();
        test_flips();
    }
    test_handmade();
    test_writer_errors();
    test_json();
    free(small);
    free(big);
    cleanup();
    return tap_done();
}
