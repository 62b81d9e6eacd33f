/* sw_stream_impl — internals shared by the sw_stream*.c and sw_record*.c files: the record
 * struct, the msgpack framer, the encoder behind builders and writers, the record checks and the
 * ZeroMQ transport. Not part of the public API: include only from lib/sw_stream*.c and
 * lib/sw_record*.c. */
#ifndef SW_STREAM_IMPL_H
#define SW_STREAM_IMPL_H

#include "sw_stream.h"

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "sws tensors are little-endian on the wire; a big-endian port must byte-swap in sw_stream"
#endif

/* Aligned copies of misaligned tensor data, freed when the record is replaced. */
struct sw_scratch {
    void **blocks;
    size_t n, cap;
};
void *sw_scratch_alloc(struct sw_scratch *s, size_t len);
void sw_scratch_clear(struct sw_scratch *s);

struct sw_record {
    char kind[64]; /* NUL-terminated copy ("x-" kinds longer than 63 are cut) */
    uint64_t index, offset;
    const uint8_t *raw;
    size_t raw_len;
    msgpack_object root;        /* the map */
    const char *stream;         /* stream name for messages (owned by the reader) */
    struct sw_scratch *scratch; /* where misaligned tensor data is copied (the reader's) */
};

/* Message prefix for a record: "<stream>: record N (kind) at byte X". */
int sw_record_errf(const struct sw_record *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- framer: finds where one msgpack value ends, without trusting any count ---------- */

struct sw_frame {
    size_t off;     /* bytes of the value consumed so far */
    uint64_t items; /* values seen (containers count as one each) */
    int depth, started;
    uint64_t left[SW_STREAM_MAX_DEPTH]; /* values still expected per open container */
    uint8_t is_map[SW_STREAM_MAX_DEPTH];
};
void sw_frame_reset(struct sw_frame *f);
/* Continue scanning a value whose first len bytes are at buf (buf is the value's start; len
 * only grows between calls). Returns 1 when complete (length f->off), 0 when more bytes are
 * needed, SW_EFORMAT (bad byte, ext type, non-string key, top level not a map, too deep) or
 * SW_ERANGE (over max_len bytes or SW_STREAM_MAX_ITEMS values) with a message naming the
 * offset within the value (the caller adds the record context). */
int sw_frame_scan(struct sw_frame *f, const uint8_t *buf, size_t len, uint64_t max_len);

/* ---- encoder: msgpack into an iovec list, tracking the byte offset for alignment -------- */

struct sw_enc {
    msgpack_vrefbuffer vbuf;
    msgpack_packer pk;
    size_t off; /* bytes encoded since the last sw_enc_clear */
};
int sw_enc_init(struct sw_enc *e);
void sw_enc_release(struct sw_enc *e);
void sw_enc_clear(struct sw_enc *e);
/* Pack a tensor map with its data aligned to SW_STREAM_ALIGN relative to the encoding start. */
int sw_enc_tensor(struct sw_enc *e, enum sw_dtype dtype, int ndim, const int64_t *shape,
                  const void *data, size_t nbytes);
/* Append the builder: its whole map (as_map = 1) or only its entries (as_map = 0, the caller
 * packed the map header and adds sw_record_builder_nfields(b) to its count). */
int sw_record_builder_pack(const struct sw_record_builder *b, struct sw_enc *e, int as_map);
uint32_t sw_record_builder_nfields(const struct sw_record_builder *b);
const char *sw_record_builder_kind(const struct sw_record_builder *b);
/* Concatenate the encoder's iovecs into one malloc'ed buffer. */
int sw_enc_flatten(const struct sw_enc *e, void **out, size_t *len);

/* ---- checks ------------------------------------------------------------------------------ */

/* 1 if s[0..len) is well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF). */
int sw_utf8_valid(const char *s, size_t len);
/* Parse r->raw into r->root (zone owned by *unp) and check what every record must satisfy:
 * a map whose keys are unique UTF-8 strings, UTF-8 strings, a string "kind". Fills r->kind. */
int sw_record_parse(struct sw_record *r, msgpack_unpacked *unp);
/* Check the fields of a known kind ("sample", "batch", "tensors", "end"); other kinds pass. */
int sw_record_check_kind(const struct sw_record *r);
/* 1 for "sample", "batch", "tensors"; 2 for "x-..."; 0 otherwise. */
int sw_record_kind_class(const char *kind);
/* Parse a tensor map without copying (data may be misaligned); 0 or SW_EFORMAT/SW_ERANGE via
 * sw_record_errf naming what. */
int sw_record_tensor_parse(const struct sw_record *r, const msgpack_object *o, const char *what,
                           struct sw_tensor *t);

/* ---- ZeroMQ transport --------------------------------------------------------------------- */

struct sw_zmq {
    void *ctx, *sock;
    int own_ctx;
    char endpoint[512]; /* as bound/connected (with the real port) */
};
/* Open a PUSH (writer) or PULL (reader) socket for spec; default_bind applies when spec has no
 * '@'/'>' prefix. */
int sw_zmq_open(struct sw_zmq *z, const char *spec, int writer, const struct sw_stream_opts *o);
/* Send the iovecs as one message. */
int sw_zmq_send(struct sw_zmq *z, const struct iovec *v, size_t n, size_t total);
/* Receive one message into *buf (grown as needed, aligned; capacity in *cap). Returns 1 with
 * *len set, 0 when nothing arrived (only with dontwait), SW_ETRUNC on timeout, <0 errors. */
int sw_zmq_recv(struct sw_zmq *z, uint8_t **buf, size_t *cap, size_t *len, int dontwait,
                const char *what);
/* Close the socket and, when owned, terminate the context: waits up to the linger for queued
 * messages, or drops them when drop is set (an abandoned stream). Accepts a closed z. */
void sw_zmq_close(struct sw_zmq *z, int drop);

/* Grow an aligned buffer to at least need bytes, keeping keep bytes from its start. */
/* Initial size of a stream reader's buffer (bytes). */
#define SW_STREAM_BUF_INITIAL ((size_t)256 * 1024)
int sw_buf_reserve(uint8_t **buf, size_t *cap, size_t need, size_t keep);

#endif
