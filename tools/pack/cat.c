/* sw-pack cat — print an sws stream as JSON lines: the header, one line per record (tensors as
 * {"dtype","shape","min","max","sum"} summaries, or every value with --full), and the end record.
 * With --decode, each training sequence becomes text instead (ms-swift's template.print_inputs):
 * one line per sample, per row of a padded batch and per sequence of a packed one, with the
 * decoded input and the decoded labels where every run of positions without a loss prints as
 * "[-100 * N]", so the template and the loss mask can be checked by eye.
 *
 * The stream is fully checked while it is printed (count, checksum, nothing after the end), so
 * `sw-pack cat x.sws > /dev/null` is also the way to verify a stream: a bad one exits 1 with the
 * reader's message after the lines read so far. A closed stdout (`| head`) ends quietly. */
#include "sw_config.h"
#include "sw_err.h"
#include "sw_log.h"
#include "sw_stream.h"
#include "sw_tokenizer.h"

#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sw_pack_cat_main(int argc, char **argv);

struct cat_opts {
    int full;
    int64_t timeout_ms;
    int decode;
    char *tokenizer;
};

static const struct sw_opt cat_opt_table[] = {
    {"full", SW_OPT_BOOL, offsetof(struct cat_opts, full), "false",
     "print every tensor value (nested arrays) instead of min/max/sum summaries", 0, 0, NULL, NULL},
    {"timeout_ms", SW_OPT_INT, offsetof(struct cat_opts, timeout_ms), "0",
     "ZeroMQ input: give up after this many ms without a record (0 = wait forever)", 0, 86400000,
     NULL, NULL},
    {"decode", SW_OPT_BOOL, offsetof(struct cat_opts, decode), "false",
     "print each sequence as text: its input and its labels, where positions without a loss "
     "show as [-100 * N] (check the template and the loss mask)",
     0, 0, NULL, NULL},
    {"tokenizer", SW_OPT_STRING, offsetof(struct cat_opts, tokenizer), NULL,
     "tokenizer folder for --decode (default: the one the stream's header names)", 0, 0, NULL,
     NULL},
    SW_OPT_END,
};

static const struct sw_cli cat_cli = {
    .tool = "sw-pack",
    .command = "cat",
    .usage = "sw-pack cat [options] [FILE|ENDPOINT|-]",
    .summary = "Print an sws stream (file, stdin, or a ZeroMQ endpoint such as\n"
               "@tcp://0.0.0.0:5555) as JSON lines: the header, each record with tensors\n"
               "summarized, and the end record. The stream's count and checksum are verified;\n"
               "a damaged or truncated stream exits 1. With --decode (and --tokenizer DIR),\n"
               "samples print as text with the loss mask visible. See docs/stream.md.",
    .opts = cat_opt_table,
    .min_pos = 0,
    .max_pos = 1,
};

/* One JSON line. A write error on stdout (EPIPE when the next stage quit) becomes SW_EPIPE. */
static int print_line(FILE *out, json_t *j, int flush) {
    if (!j) return sw_err_msg()[0] ? SW_EFORMAT : sw_err_set(SW_ENOMEM, "out of memory");
    errno = 0;
    int bad = json_dumpf(j, out, JSON_COMPACT | JSON_REAL_PRECISION(15)) != 0;
    json_decref(j);
    if (!bad) bad = fputc('\n', out) == EOF;
    if (!bad && flush) bad = fflush(out) != 0;
    if (bad || ferror(out)) {
        if (errno == 0) errno = EIO;
        return sw_err_errno("cannot write to stdout");
    }
    return 0;
}

/* ---- --decode ------------------------------------------------------------------------------ */

/* text (n bytes) with invalid UTF-8 replaced by U+FFFD (a decode can end inside a character),
 * as a JSON string. */
static json_t *json_text(const char *t, size_t n) {
    json_t *j = json_stringn(t, n);
    if (j) return j;
    char *o = malloc(n * 3 + 1);
    if (!o) return NULL;
    size_t k = 0;
    const unsigned char *u = (const unsigned char *)t;
    for (size_t i = 0; i < n;) {
        size_t len = u[i] < 0x80         ? 1
                     : (u[i] >> 5) == 6  ? 2
                     : (u[i] >> 4) == 14 ? 3
                     : (u[i] >> 3) == 30 ? 4
                                         : 0;
        int ok = len > 0 && i + len <= n && u[i] != 0;
        for (size_t c = 1; ok && c < len; c++)
            ok = (u[i + c] & 0xC0) == 0x80;
        if (ok) { /* jansson's check also refuses overlong forms, surrogates, > U+10FFFF */
            json_t *c = json_stringn(t + i, len);
            ok = c != NULL;
            json_decref(c);
        }
        if (ok) {
            memcpy(o + k, t + i, len);
            k += len;
            i += len;
        } else {
            memcpy(o + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i++;
        }
    }
    j = json_stringn(o, k);
    free(o);
    return j;
}

/* ms-swift's labels text: decoded runs of trained ids, "[-100 * N]" for runs without a loss. */
static int labels_text(const struct sw_tokenizer *tok, const int32_t *lab, int64_t n,
                       json_t **out) {
    size_t cap = 256, len = 0;
    char *buf = malloc(cap);
    int rc = buf ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
    for (int64_t i = 0; rc == 0 && i < n;) {
        int64_t j = i;
        int masked = lab[i] == -100;
        while (j < n && (lab[j] == -100) == masked)
            j++;
        char num[40], *piece = NULL;
        size_t plen = 0;
        if (masked) {
            plen = (size_t)snprintf(num, sizeof num, "[-100 * %lld]", (long long)(j - i));
        } else {
            rc = sw_tokenizer_decode(tok, lab + i, (size_t)(j - i), 0, &piece, &plen);
            if (rc < 0) break;
        }
        if (len + plen + 1 > cap) {
            while (len + plen + 1 > cap)
                cap *= 2;
            char *b = realloc(buf, cap);
            if (!b) {
                free(piece);
                rc = sw_err_set(SW_ENOMEM, "out of memory");
                break;
            }
            buf = b;
        }
        memcpy(buf + len, masked ? num : piece, plen);
        len += plen;
        free(piece);
        i = j;
    }
    if (rc == 0 && !(*out = json_text(buf ? buf : "", len)))
        rc = sw_err_set(SW_ENOMEM, "out of memory");
    free(buf);
    return rc;
}

/* One decoded sequence: ids[0..n) and its labels (NULL: every token trained). */
static int print_seq(FILE *out, const struct sw_tokenizer *tok, const struct sw_record *rec,
                     const char *side, int64_t row, int64_t seq, const int32_t *ids,
                     const int32_t *lab, int64_t n, int live) {
    char *text = NULL;
    size_t tlen = 0;
    SW_TRY(sw_tokenizer_decode(tok, ids, (size_t)n, 0, &text, &tlen));
    int32_t *all = NULL;
    if (!lab) { /* pre-training: every token is a target */
        if (!(all = malloc((size_t)(n ? n : 1) * sizeof *all))) {
            free(text);
            return sw_err_set(SW_ENOMEM, "out of memory");
        }
        memcpy(all, ids, (size_t)n * sizeof *all);
        lab = all;
    }
    int64_t trained = 0;
    for (int64_t i = 0; i < n; i++)
        trained += lab[i] != -100;
    json_t *lt = NULL;
    int rc = labels_text(tok, lab, n, &lt);
    json_t *j = rc == 0 ? json_object() : NULL;
    if (j) {
        json_object_set_new(j, "record", json_integer((json_int_t)sw_record_index(rec)));
        json_object_set_new(j, "kind", json_string(sw_record_kind(rec)));
        if (side) json_object_set_new(j, "side", json_string(side));
        if (row >= 0) json_object_set_new(j, "row", json_integer(row));
        if (seq >= 0) json_object_set_new(j, "seq", json_integer(seq));
        json_object_set_new(j, "tokens", json_integer(n));
        json_object_set_new(j, "trained", json_integer(trained));
        json_object_set_new(j, "input", json_text(text, tlen));
        json_object_set_new(j, "labels", lt);
        lt = NULL;
    }
    json_decref(lt);
    free(text);
    free(all);
    if (rc < 0) return rc;
    if (!j) return sw_err_set(SW_ENOMEM, "out of memory");
    errno = 0;
    int bad = json_dumpf(j, out, JSON_COMPACT) != 0;
    json_decref(j);
    if (!bad) bad = fputc('\n', out) == EOF;
    if (!bad && live) bad = fflush(out) != 0;
    if (bad) {
        if (errno == 0) errno = EIO;
        return sw_err_errno("cannot write to stdout");
    }
    return 0;
}

/* An int32 tensor field as a host array (copied: record bytes need not be aligned), or NULL. */
static int get_i32(const struct sw_record *rec, const char *key, int32_t **out, int64_t *rows,
                   int64_t *cols) {
    *out = NULL;
    if (!sw_record_field(rec, key)) return 0;
    struct sw_tensor t;
    SW_TRY(sw_record_get_tensor(rec, key, &t));
    int64_t n = 1;
    for (int d = 0; d < t.ndim; d++)
        n *= t.shape[d];
    *rows = t.ndim == 2 ? t.shape[0] : 1;
    *cols = t.ndim == 2 ? t.shape[1] : n;
    int32_t *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v) return sw_err_set(SW_ENOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        if (t.dtype == SW_DTYPE_I32)
            memcpy(&v[i], (const char *)t.data + i * 4, 4);
        else
            v[i] = ((const uint8_t *)t.data)[i]; /* U8 masks */
    }
    *out = v;
    return 0;
}

/* A training record as decoded sequences. Other records are skipped. */
static int decode_record(FILE *out, const struct sw_tokenizer *tok, const struct sw_record *rec,
                         int live) {
    const char *kind = sw_record_kind(rec);
    static const char *const sides[][3] = {
        {NULL, "input_ids", "labels"},
        {"chosen", "chosen_input_ids", "chosen_labels"},
        {"rejected", "rejected_input_ids", "rejected_labels"},
    };
    int rc = 0;
    for (int k = 0; k < 3 && rc == 0; k++) {
        int32_t *ids = NULL, *lab = NULL, *mask = NULL, *cu = NULL;
        int64_t rows = 0, cols = 0, r2, c2, ncu = 0;
        rc = get_i32(rec, sides[k][1], &ids, &rows, &cols);
        if (rc == 0 && ids) rc = get_i32(rec, sides[k][2], &lab, &r2, &c2);
        if (rc == 0 && ids && !lab && k == 0) { /* samples may carry a loss_mask instead */
            rc = get_i32(rec, "loss_mask", &mask, &r2, &c2);
            if (rc == 0 && mask) {
                for (int64_t i = 0; i < rows * cols; i++)
                    mask[i] = mask[i] ? ids[i] : -100;
                lab = mask, mask = NULL;
            }
        }
        if (rc == 0 && ids && strcmp(kind, "batch") == 0) {
            rc = get_i32(rec, "cu_seqlens", &cu, &r2, &ncu);
            if (rc == 0 && !cu) rc = get_i32(rec, "attention_mask", &mask, &r2, &c2);
        }
        if (rc == 0 && ids) {
            if (cu) { /* packed: sequences at cu_seqlens boundaries; the rest is padding */
                for (int64_t q = 0; q + 1 < ncu && rc == 0; q++) {
                    int64_t a = cu[q], b = cu[q + 1];
                    if (a < 0 || b < a || b > rows * cols) {
                        rc = sw_err_set(SW_EFORMAT, "record %llu: cu_seqlens out of range",
                                        (unsigned long long)sw_record_index(rec));
                        break;
                    }
                    rc = print_seq(out, tok, rec, sides[k][0], -1, q, ids + a, lab ? lab + a : NULL,
                                   b - a, live);
                }
            } else {
                for (int64_t r = 0; r < rows && rc == 0; r++) {
                    /* Padded rows: the span the attention mask keeps (padding on either side). */
                    int64_t a = 0, b = cols;
                    if (mask) {
                        while (a < cols && !mask[r * cols + a])
                            a++;
                        while (b > a && !mask[r * cols + b - 1])
                            b--;
                    }
                    rc =
                        print_seq(out, tok, rec, sides[k][0], rows > 1 || mask ? r : -1, -1,
                                  ids + r * cols + a, lab ? lab + r * cols + a : NULL, b - a, live);
                }
            }
        }
        free(ids), free(lab), free(mask), free(cu);
    }
    return rc;
}

/* The tokenizer for --decode: --tokenizer, else the folder the header names; a digest other
 * than the header's is a warning (the text shown would be wrong). */
static int open_decoder(const struct cat_opts *o, const struct sw_stream_reader *r,
                        struct sw_tokenizer **tok) {
    const struct sw_stream_header *h = sw_stream_reader_header(r);
    const msgpack_object *d = h->meta ? sw_msgpack_map_get(h->meta, "tokenizer") : NULL;
    const msgpack_object *sha = h->meta ? sw_msgpack_map_get(h->meta, "tokenizer_sha256") : NULL;
    char named[4096] = "";
    if (d && d->type == MSGPACK_OBJECT_STR && d->via.str.size < sizeof named)
        snprintf(named, sizeof named, "%.*s", (int)d->via.str.size, d->via.str.ptr);
    const char *dir = o->tokenizer ? o->tokenizer : named;
    if (!*dir)
        return sw_err_set(SW_EUSAGE, "--decode needs --tokenizer DIR (the stream's header names "
                                     "no tokenizer)");
    int rc = sw_tokenizer_load(dir, tok);
    if (rc < 0) {
        if (!o->tokenizer)
            return sw_err_set(rc == SW_ENOTFOUND ? SW_EUSAGE : rc,
                              "--decode: the stream's tokenizer '%s' cannot be loaded here (%s); "
                              "give --tokenizer DIR",
                              dir, sw_err_msg());
        return rc;
    }
    if (sha && sha->type == MSGPACK_OBJECT_STR) {
        const char *w = sha->via.str.ptr;
        uint32_t wn = sha->via.str.size;
        if (wn > 7 && memcmp(w, "sha256:", 7) == 0) w += 7, wn -= 7;
        if (wn != 64 || memcmp(w, sw_tokenizer_hash_hex(*tok), 64) != 0)
            sw_warn("%s is not the tokenizer the stream was made with (its digest differs): the "
                    "text shown is not what was trained",
                    dir);
    }
    return 0;
}

static int cat_run(const struct cat_opts *o, const char *src, FILE *out) {
    struct sw_stream_opts so = {.keep_unknown = 1, .timeout_ms = (int)o->timeout_ms};
    int flags = o->full ? SW_RECORD_JSON_FULL : 0;
    /* A live source (pipe, socket) is printed record by record; a file in big writes. */
    int live = strcmp(src, "-") == 0 || sw_stream_is_endpoint(src);
    struct sw_stream_reader *r;
    SW_TRY(sw_stream_open_read(&r, src, &so));
    struct sw_tokenizer *tok = NULL;
    int rc = o->decode ? open_decoder(o, r, &tok) : 0;
    if (rc == 0)
        rc = print_line(out, sw_record_to_json(sw_stream_reader_header_record(r), flags), live);
    const struct sw_record *rec;
    while (rc == 0 && (rc = sw_stream_read(r, &rec)) == 1)
        rc = tok ? decode_record(out, tok, rec, live)
                 : print_line(out, sw_record_to_json(rec, flags), live);
    if (rc == 0) rc = print_line(out, sw_record_to_json(sw_stream_reader_end_record(r), flags), 0);
    /* Flush before returning, even on error: the lines read so far come out before the
     * message main() prints on stderr. */
    if (fflush(out) != 0 && rc == 0) rc = sw_err_errno("cannot write to stdout");
    sw_stream_reader_free(r);
    sw_tokenizer_free(tok);
    return rc;
}

int sw_pack_cat_main(int argc, char **argv) {
    struct cat_opts o;
    char **pos;
    int npos;
    int rc = sw_cli_parse(&cat_cli, &o, argc, argv, &pos, &npos);
    if (rc != 0) return rc > 0 ? 0 : rc;
    rc = cat_run(&o, npos ? pos[0] : "-", stdout);
    free(pos);
    sw_config_release(cat_opt_table, &o);
    return rc;
}
