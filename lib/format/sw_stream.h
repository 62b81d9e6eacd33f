/* sw_stream — the sws tensor stream: one reader/writer API over files, pipes and ZeroMQ.
 *
 * The format (full spec: docs/stream.md), version 1:
 *   - A stream is a sequence of msgpack values ("records"), each a map with a string key "kind".
 *     The same bytes travel over a file, a pipe, or ZeroMQ (one record per message).
 *   - Record 0 is the header: {"kind":"header", "magic":"sws", "version":1,
 *     "producer":"sw-pack 0.1.0", "stream_kind":"samples"|"packed_batches"|"tensors"|...,
 *     "meta":{free map}}. Readers reject another magic and a version newer than theirs.
 *   - The last record is {"kind":"end", "count":N, "checksum":"sha256:<64 lowercase hex>"}:
 *     N = records between header and end; the checksum is SHA-256 of every byte of the stream
 *     before the end record (header included). Nothing may follow it.
 *   - Tensors are maps {"dtype":"I32", "shape":[...], "data":bin} with little-endian row-major
 *     bytes; len(data) == numel × dtype size (Q4: two per byte, rounded up); ndim ≤ 8. An
 *     optional "pad" bin before "data" lets writers align data (sw aligns it to 16 bytes).
 *   - Kinds: "sample" (token sample or preference pair), "batch" (padded/packed batch),
 *     "tensors" (named tensor set), "x-..." (extensions: skipped by readers that do not know
 *     them); any other unknown kind is an error. Unknown fields are ignored.
 *   - Every map key is a UTF-8 string, unique in its map; strings are UTF-8; no ext types;
 *     nesting ≤ 16 levels; a record ≤ 1 GiB (configurable) and ≤ 16M msgpack items.
 * Errors: EOF before the end record is SW_ETRUNC ("truncated stream: ..."), a wrong count or
 * checksum SW_ECORRUPT, anything malformed SW_EFORMAT naming the record index and byte offset,
 * a size limit SW_ERANGE, a newer version SW_EUNSUPPORTED.
 *
 * Sources and targets (the same string for reader and writer):
 *   "-"                      stdin (reader) / stdout (writer)
 *   "tcp://host:port", "ipc://path", "inproc://name"
 *                            ZeroMQ: the writer is a ZMQ_PUSH socket, the reader a ZMQ_PULL
 *                            socket. By default the WRITER BINDS and the READER CONNECTS; a
 *                            leading '@' forces bind and '>' forces connect (as in CZMQ), e.g.
 *                            writer ">tcp://farm:5555" with reader "@tcp://0.0.0.0:5555". A writer
 *                            bound to port "*" reports the real one via
 *                            sw_stream_writer_endpoint(). One writer per reader socket.
 *   anything else            a file path: written atomically (temp file + rename) when it is
 *                            or will be a regular file; FIFOs and devices are written in place.
 *
 * Objects are not thread-safe; use one per thread. Errors follow sw_err.h. */
#ifndef SW_STREAM_H
#define SW_STREAM_H

#include "sw_record.h"

#include <stddef.h>
#include <stdint.h>

#define SW_STREAM_MAGIC "sws"
#define SW_STREAM_VERSION 1
#define SW_STREAM_MAX_RECORD ((uint64_t)1 << 30) /* default record size limit, bytes */
#define SW_STREAM_MAX_ITEMS ((uint64_t)1 << 24)  /* msgpack values per record */
#define SW_STREAM_MAX_DEPTH 16                   /* nesting of maps/arrays in a record */
#define SW_STREAM_ALIGN 16                       /* writers align tensor data to this */

struct sw_stream_reader;
struct sw_stream_writer;

/* Options for readers and writers; pass NULL for all defaults (a zeroed struct is the same). */
struct sw_stream_opts {
    uint64_t max_record; /* largest record accepted or written, bytes; 0 = SW_STREAM_MAX_RECORD */
    int timeout_ms;      /* ZeroMQ: longest wait for one record to arrive or leave; 0 = forever.
                            A reader that times out reports SW_ETRUNC, a writer SW_EIO. */
    int linger_ms;       /* ZeroMQ writer: longest wait at close for queued records to be
                            delivered; 0 = 30000, negative = forever */
    int keep_unknown;    /* reader: return "x-..." records too (they are skipped by default) */
    int flush_each;      /* writer: flush after every record even to a regular file (always done
                            for stdout, pipes, FIFOs and ZeroMQ) */
    int (*interrupted)(void); /* reader, optional: asked when a blocking read(2) is cut short
                                 by a signal (EINTR); nonzero makes the read fail with SW_EINTR
                                 instead of retrying (lets a trainer stop while its producer is
                                 idle) */
    void *zmq_ctx;            /* ZeroMQ context to use (borrowed). NULL: tcp/ipc streams make a
                                 private one (terminated at close, which is what guarantees
                                 delivery); inproc streams use sw_stream_zmq_context(). */
};

/* What a writer puts in the header record. */
struct sw_stream_info {
    const char *producer;    /* "sw-pack 0.1.0"; NULL = "sw <SW_VERSION>" */
    const char *stream_kind; /* required: "samples", "packed_batches", "tensors", ... */
    const struct sw_record_builder *meta; /* the header's "meta" map: a builder made with kind
                                             NULL (borrowed, read during open), or NULL = {} */
};

/* The header as a reader saw it (owned by the reader, valid until it is freed). */
struct sw_stream_header {
    int64_t version;
    const char *producer;       /* NUL-terminated */
    const char *stream_kind;    /* NUL-terminated */
    const msgpack_object *meta; /* a map (empty when the header has none) */
};

/* ---- reading --------------------------------------------------------------------------- */

/* Open src ("-", a path, or a ZeroMQ endpoint; see above) and read and check the header.
 * For ZeroMQ this waits for the writer (bounded by opts->timeout_ms). On success *r is a new
 * reader (free with sw_stream_reader_free). Errors: SW_ENOTFOUND/SW_EIO (open), SW_ETRUNC
 * (empty or cut header), SW_EFORMAT (not an sws stream), SW_EUNSUPPORTED (newer version). */
int sw_stream_open_read(struct sw_stream_reader **r, const char *src,
                        const struct sw_stream_opts *opts);
/* Same over a memory buffer (borrowed until the reader is freed); name is used in messages
 * (NULL = "<memory>"). */
int sw_stream_open_mem(struct sw_stream_reader **r, const void *data, size_t len, const char *name,
                       const struct sw_stream_opts *opts);
/* Same over an open file descriptor (a pipe, socket or file); take_fd = 1 closes it on free. */
int sw_stream_open_fd(struct sw_stream_reader **r, int fd, int take_fd, const char *name,
                      const struct sw_stream_opts *opts);

/* Read the next record. Returns 1 with *rec set (borrowed: valid until the next call or free),
 * 0 when the end record was read and verified and nothing follows it (then
 * sw_stream_reader_end_record() is available; later calls keep returning 0), or a negative
 * error. After an error, later calls return the same error. */
int sw_stream_read(struct sw_stream_reader *r, const struct sw_record **rec);

const struct sw_stream_header *sw_stream_reader_header(const struct sw_stream_reader *r);
/* The header / end record as records (e.g. to print them); end is NULL until read returned 0. */
const struct sw_record *sw_stream_reader_header_record(const struct sw_stream_reader *r);
const struct sw_record *sw_stream_reader_end_record(const struct sw_stream_reader *r);
/* Records read after the header so far, skipped "x-" records included. */
uint64_t sw_stream_reader_count(const struct sw_stream_reader *r);
/* The name used in messages: the path, "<stdin>", the endpoint, or the given name. */
const char *sw_stream_reader_name(const struct sw_stream_reader *r);
/* Close and free. Accepts NULL. */
void sw_stream_reader_free(struct sw_stream_reader *r);

/* ---- writing --------------------------------------------------------------------------- */

/* Open dst ("-", a path, or a ZeroMQ endpoint) and write the header from info. ZeroMQ writers
 * never block here: the header leaves with the first record (or the end record), which waits
 * until a reader is connected (bounded by timeout_ms).
 * On success *w is a new writer: finish it with sw_stream_close (writes the end record and
 * commits) or drop it with sw_stream_writer_free (no end record: readers see a truncated stream,
 * and a file target is not created). */
int sw_stream_open_write(struct sw_stream_writer **w, const char *dst,
                         const struct sw_stream_info *info, const struct sw_stream_opts *opts);
/* Encode and write one record. Its kind must be "sample", "batch", "tensors" or start with "x-"
 * (SW_EINVAL otherwise); a record over max_record is SW_ERANGE. Tensor data is read during the
 * call only. Write errors: SW_EIO, SW_EPIPE (the reader went away), SW_EINTR. After an error
 * the writer only accepts sw_stream_writer_free. */
int sw_stream_write(struct sw_stream_writer *w, const struct sw_record_builder *b);
/* Write one already-encoded record (e.g. sw_record_raw() of a record being forwarded): it must
 * be exactly one msgpack map with an allowed kind (checked like a reader would, SW_EFORMAT). */
int sw_stream_write_raw(struct sw_stream_writer *w, const void *rec, size_t len);
/* Write the end record, flush, commit the file / wait for ZeroMQ delivery, and free the writer;
 * *w is set to NULL in every case. Returns 0 or the first error. */
int sw_stream_close(struct sw_stream_writer **w);
/* Abandon the stream without an end record and free. Accepts NULL. */
void sw_stream_writer_free(struct sw_stream_writer *w);
/* Records written after the header so far. */
uint64_t sw_stream_writer_count(const struct sw_stream_writer *w);
/* For ZeroMQ writers, the endpoint actually bound or connected (with the real port when the
 * spec said "*"); for other targets the path or "-". */
const char *sw_stream_writer_endpoint(const struct sw_stream_writer *w);

/* ---- ZeroMQ ---------------------------------------------------------------------------- */

/* 1 when s names a ZeroMQ endpoint (optionally prefixed '@' or '>'), else 0. */
int sw_stream_is_endpoint(const char *s);
/* The process-wide context inproc streams share (created on first use, never terminated: inproc
 * needs both ends in one context). NULL with the message set if zmq cannot create it. */
void *sw_stream_zmq_context(void);

#endif
