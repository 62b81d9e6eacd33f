/* sw_dataset — reading training datasets into conversations (sw_conv.h).
 *
 * Three layers, each usable alone:
 *   1. the row reader: JSON arrays or JSON lines, plain or gzip-compressed, from a file or stdin,
 *      one JSON object at a time with the line it starts on, in bounded memory (only the current
 *      row is buffered, so a 100 GB JSON array streams);
 *   2. format detection and conversion: a row's keys select alpaca, sharegpt, messages,
 *      query/response, preference, KTO or plain text (or --dataset_format forces one) and the row
 *      becomes a struct sw_conv, or an error naming "file:line: field 'x': ...";
 *   3. dataset arguments: ms-swift's syntax `PATH[#N]` (N rows sampled), folders (every
 *      *.json, *.jsonl, *.json.gz, *.jsonl.gz in it, sorted by name), `-` (JSON lines on stdin),
 *      comma-separated lists; and loading a whole dataset with sampling, a validation split and a
 *      deterministic shuffle, following ms-swift's semantics (see sw_dataset_load).
 *
 * Bad rows either stop the load with their error or, with skip_bad_rows, are counted, logged
 * (the first few as warnings) and left out; nothing is dropped silently. */
#ifndef SW_DATASET_H
#define SW_DATASET_H

#include "sw_conv.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* ---- 1. rows ---------------------------------------------------------------------------- */

struct sw_dataset_reader;

/* Open path ("-" = stdin) for reading rows. The container (JSON array or JSON lines) is decided by
 * the first non-space byte ('[' or '{'); gzip is detected by its magic bytes, whatever the file
 * is called. *r is NULL on error (SW_ENOTFOUND/SW_EIO with the message set). */
int sw_dataset_reader_open(struct sw_dataset_reader **r, const char *path);
/* The next row: *row is a new reference to a JSON object (caller json_decref's it) and *line the
 * 1-based line its first byte is on. Returns 1 for a row, 0 at the end, or a negative error.
 * A row that is not valid JSON or not an object is SW_EFORMAT "file:line: ..." and reading may
 * go on after it (sw_dataset_reader_recoverable() says whether it can); a broken container
 * (unterminated array, truncated gzip, I/O error) ends the reader. */
int sw_dataset_reader_next(struct sw_dataset_reader *r, json_t **row, long *line);
/* The next row's bytes without parsing them: *text (borrowed until the next call; not
 * NUL-terminated) and *len, and the line it starts on. Returns 1, 0 at the end, or an error that
 * ends the reader (a broken container). Parse it later with sw_dataset_row_parse. */
int sw_dataset_reader_next_raw(struct sw_dataset_reader *r, const char **text, size_t *len,
                               long *line);
/* 1 when the file is a JSON array (rows are its elements), 0 for JSON lines. */
int sw_dataset_reader_in_array(const struct sw_dataset_reader *r);
/* Parse one row's bytes as sw_dataset_reader_next does: 1 with *row a new reference to the
 * object, or SW_EFORMAT "name:line: ..." (a row cut short says it ends early). A "\u0000" in a
 * string becomes the bytes C0 80 (Modified UTF-8: rows are used as NUL-terminated strings; the
 * tokenizer encodes C0 80 as U+0000). */
int sw_dataset_row_parse(const char *name, long line, const char *text, size_t len, int in_array,
                         json_t **row);
/* 1 when the last error from _next affected one row only and the next call continues. */
int sw_dataset_reader_recoverable(const struct sw_dataset_reader *r);
/* Name used in messages: the path, or "<stdin>". */
const char *sw_dataset_reader_name(const struct sw_dataset_reader *r);
/* Close and free. Accepts NULL. */
void sw_dataset_reader_free(struct sw_dataset_reader *r);

/* ---- 2. formats --------------------------------------------------------------------------- */

enum sw_dataset_format {
    SW_DSFMT_AUTO = 0,   /* detect from the first row's keys */
    SW_DSFMT_ALPACA,     /* instruction, input, output [, system, history] */
    SW_DSFMT_SHAREGPT,   /* conversations: [{from: human|gpt|system|tool, value}] [, system] */
    SW_DSFMT_MESSAGES,   /* messages: [{role, content [, reasoning_content, tool_calls, loss]}] */
    SW_DSFMT_QUERY,      /* query, response [, system, history] */
    SW_DSFMT_PREFERENCE, /* chosen/rejected (messages or strings) or messages + rejected_response */
    SW_DSFMT_KTO,        /* messages (or query/response) + label: bool */
    SW_DSFMT_TEXT,       /* text (pre-training) */
};

/* "auto", "alpaca", "sharegpt", "messages", "query", "preference", "kto", "text". */
const char *sw_dataset_format_name(enum sw_dataset_format f);
/* Parse a name as above. Returns 0 or SW_EINVAL. */
int sw_dataset_format_parse(const char *name, enum sw_dataset_format *out);
/* The format a row's keys indicate, or SW_DSFMT_AUTO when none matches. */
enum sw_dataset_format sw_dataset_detect(const json_t *row);
/* Convert one row. where ("alpaca.json:12") prefixes error messages. *out is initialised here;
 * on error it is released. Returns 0, SW_EFORMAT (bad field, named), or SW_ENOMEM. */
int sw_dataset_row_to_conv(const json_t *row, enum sw_dataset_format fmt, const char *where,
                           struct sw_conv *out);

/* ---- 3. dataset arguments and loading ----------------------------------------------------------
 */

/* One dataset argument, expanded. */
struct sw_dataset_spec {
    char *arg;        /* as given, e.g. "data/x#100" */
    char *path;       /* without the #N suffix */
    long long sample; /* N of #N, or -1 for every row */
    char **files;     /* the files it reads ("-" for stdin), sorted for a folder */
    size_t n_files;
};

/* Split a comma-separated list of dataset arguments and expand each (folders listed, files checked
 * to exist). Returns 0 with *specs (array of *n) or SW_ENOTFOUND / SW_EUSAGE naming the argument.
 */
int sw_dataset_specs_parse(const char *list, struct sw_dataset_spec **specs, size_t *n);
void sw_dataset_specs_free(struct sw_dataset_spec *specs, size_t n);

/* A conversation with where it came from. */
struct sw_example {
    struct sw_conv conv;
    uint32_t file; /* index into the loader's file table (sw_dataset_files) */
    long line;     /* line of the row's first byte */
};

/* Options for reading. */
struct sw_dataset_opts {
    enum sw_dataset_format format; /* SW_DSFMT_AUTO to detect per file */
    int skip_bad_rows;             /* count and skip rows that fail instead of stopping */
    int shuffle;                   /* dataset_shuffle: sample randomly and shuffle the result */
    uint64_t seed;                 /* data_seed */
    double split_ratio;            /* split_dataset_ratio in [0, 1) */
};

/* Counters every stage adds to. They add up:
 *     rows_read + rows_repeated = rows_bad + rows_unsampled + rows_train + rows_val */
struct sw_dataset_stats {
    uint64_t rows_read;      /* rows read from the files (before sampling) */
    uint64_t rows_bad;       /* rows left out because of an error (skip_bad_rows) */
    uint64_t rows_unsampled; /* rows read that #N sampling did not choose (never parsed) */
    uint64_t rows_repeated;  /* extra copies #N above a dataset's row count adds */
    uint64_t rows_sampled;   /* rows after #N sampling and the split (repeats counted) */
    uint64_t rows_train, rows_val;
};

/* Row source over a list of dataset arguments in order (used directly by --streaming, and by
 * sw_dataset_load). Files are opened lazily, one at a time. */
struct sw_dataset_iter;
int sw_dataset_iter_open(struct sw_dataset_iter **it, const struct sw_dataset_spec *specs,
                         size_t n_specs, const struct sw_dataset_opts *o);
/* The next example (the caller owns ex->conv and releases it). Returns 1, 0 at the end, or a
 * negative error (with skip_bad_rows, only errors that end a file's container or I/O). With
 * #N on a spec, the iterator stops that spec after N rows (streaming has no random sampling).
 * *spec_index (may be NULL) is set to the index of the spec the row belongs to. */
int sw_dataset_iter_next(struct sw_dataset_iter *it, struct sw_example *ex, size_t *spec_index);
/* The file table: name of file index i (valid while the iterator lives). */
const char *sw_dataset_iter_file(const struct sw_dataset_iter *it, uint32_t i);
size_t sw_dataset_iter_n_files(const struct sw_dataset_iter *it);
/* The counters so far. */
const struct sw_dataset_stats *sw_dataset_iter_stats(const struct sw_dataset_iter *it);
void sw_dataset_iter_free(struct sw_dataset_iter *it);

/* A loaded dataset: train and validation examples, and the file table. */
struct sw_dataset {
    struct sw_example *train, *val;
    size_t n_train, n_val;
    char **files;
    size_t n_files;
    struct sw_dataset_stats stats;
};

/* Load every spec into memory and apply, per spec in ms-swift's order: the validation split
 * (split_ratio > 0: max(1, floor(min(len, N) * ratio)) rows, random when shuffle, else the last
 * ones), then #N sampling of the rest (N below the row count: a random subset when shuffle, else
 * the first N; N above it: the whole dataset N / len times plus a random N % len rows, as
 * ms-swift's sample_dataset does); then the specs are concatenated and the training examples
 * shuffled with seed (Philox stream SW_RNG_STREAM_SHUFFLE). The validation rows keep file order.
 * The rows of a #N spec are kept as bytes until sampling has chosen them: only the chosen rows
 * are parsed and converted (a bad row that is not chosen costs nothing; a chosen one is an
 * error, or counted with skip_bad_rows), and a file's format is detected from its first row.
 * Returns 0 or a negative error; *ds is released on error. */
int sw_dataset_load(struct sw_dataset *ds, const struct sw_dataset_spec *specs, size_t n_specs,
                    const struct sw_dataset_opts *o);
void sw_dataset_release(struct sw_dataset *ds);

/* Release an array of examples (each conv) and the array. */
void sw_examples_free(struct sw_example *ex, size_t n);

#endif
