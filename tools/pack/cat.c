/* sw-pack cat — print an sws stream as JSON lines: the header, one line per record (tensors as
 * {"dtype","shape","min","max","sum"} summaries, or every value with --full), and the end record.
 *
 * The stream is fully checked while it is printed (count, checksum, nothing after the end), so
 * `sw-pack cat x.sws > /dev/null` is also the way to verify a stream: a bad one exits 1 with the
 * reader's message after the lines read so far. A closed stdout (`| head`) ends quietly. */
#include "sw_config.h"
#include "sw_err.h"
#include "sw_stream.h"

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
};

static const struct sw_opt cat_opt_table[] = {
    {"full", SW_OPT_BOOL, offsetof(struct cat_opts, full), "false",
     "print every tensor value (nested arrays) instead of min/max/sum summaries", 0, 0, NULL, NULL},
    {"timeout_ms", SW_OPT_INT, offsetof(struct cat_opts, timeout_ms), "0",
     "ZeroMQ input: give up after this many ms without a record (0 = wait forever)", 0, 86400000,
     NULL, NULL},
    SW_OPT_END,
};

static const struct sw_cli cat_cli = {
    .tool = "sw-pack",
    .command = "cat",
    .usage = "sw-pack cat [options] [FILE|ENDPOINT|-]",
    .summary = "Print an sws stream (file, stdin, or a ZeroMQ endpoint such as\n"
               "@tcp://0.0.0.0:5555) as JSON lines: the header, each record with tensors\n"
               "summarized, and the end record. The stream's count and checksum are verified;\n"
               "a damaged or truncated stream exits 1. See docs/stream.md.",
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

static int cat_run(const struct cat_opts *o, const char *src, FILE *out) {
    struct sw_stream_opts so = {.keep_unknown = 1, .timeout_ms = (int)o->timeout_ms};
    int flags = o->full ? SW_RECORD_JSON_FULL : 0;
    /* A live source (pipe, socket) is printed record by record; a file in big writes. */
    int live = strcmp(src, "-") == 0 || sw_stream_is_endpoint(src);
    struct sw_stream_reader *r;
    SW_TRY(sw_stream_open_read(&r, src, &so));
    int rc = print_line(out, sw_record_to_json(sw_stream_reader_header_record(r), flags), live);
    const struct sw_record *rec;
    while (rc == 0 && (rc = sw_stream_read(r, &rec)) == 1)
        rc = print_line(out, sw_record_to_json(rec, flags), live);
    if (rc == 0) rc = print_line(out, sw_record_to_json(sw_stream_reader_end_record(r), flags), 0);
    /* Flush before returning, even on error: the lines read so far come out before the
     * message main() prints on stderr. */
    if (fflush(out) != 0 && rc == 0) rc = sw_err_errno("cannot write to stdout");
    sw_stream_reader_free(r);
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
