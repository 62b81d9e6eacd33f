/* sw_dataset_read — the row reader: JSON arrays and JSON lines, plain or gzip, in bounded memory.
 *
 * Input goes through zlib's gzFile, which reads gzip (every member) and passes other bytes through
 * unchanged, so one code path serves files, gzip files and stdin. Only the current row is held:
 * JSON lines are split at '\n'; a JSON array is cut into elements by a small structural scanner
 * (depth and string state only) and each element is parsed by jansson on its own. That keeps the
 * line number of every element (jansson alone reports none for array members), lets a malformed
 * element be reported and skipped while its neighbours still load, and never holds the whole array.
 */
#include "sw_dataset.h"

#include "sw_err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define RD_CHUNK (256 * 1024)
/* One row above this is refused rather than growing without bound on garbage input. */
#define RD_MAX_ROW ((size_t)512 << 20)

enum rd_mode { RD_UNKNOWN, RD_LINES, RD_ARRAY, RD_DONE };

struct sw_dataset_reader {
    gzFile gz;
    char *name;
    unsigned char *buf; /* input chunk [pos, len) */
    size_t pos, len;
    int eof, failed;
    long line; /* line of the next byte */
    enum rd_mode mode;
    int first_elem; /* array mode: no element read yet */
    int recoverable;
    char *row; /* the current row's bytes */
    size_t row_len, row_cap;
};

/* Refill the chunk. Returns 1 when bytes are available, 0 at EOF, or a negative error. */
static int rd_fill(struct sw_dataset_reader *r) {
    if (r->pos < r->len) return 1;
    if (r->eof) return 0;
    int n = gzread(r->gz, r->buf, RD_CHUNK);
    if (n < 0) {
        int zerr;
        const char *msg = gzerror(r->gz, &zerr);
        r->failed = 1;
        if (zerr == Z_ERRNO) return sw_err_errno("%s: read", r->name);
        return sw_err_set(SW_EFORMAT, "%s: gzip: %s", r->name, msg ? msg : "invalid data");
    }
    if (n == 0) {
        /* gzread reports a truncated gzip member as EOF plus an error state. */
        int zerr;
        const char *msg = gzerror(r->gz, &zerr);
        r->eof = 1;
        if (zerr != Z_OK && zerr != Z_STREAM_END) {
            r->failed = 1;
            if (zerr == Z_BUF_ERROR)
                return sw_err_set(SW_ETRUNC, "%s: truncated gzip data", r->name);
            return sw_err_set(SW_EFORMAT, "%s: gzip: %s", r->name, msg ? msg : "invalid data");
        }
        return 0;
    }
    r->pos = 0;
    r->len = (size_t)n;
    return 1;
}

/* Next byte (0..255), -1 at EOF, or a negative error below -1 (message set). */
static inline int rd_getc(struct sw_dataset_reader *r) {
    if (r->pos >= r->len) {
        int rc = rd_fill(r);
        if (rc == 0) return -1;
        if (rc < 0) return rc < -1 ? rc : -100;
    }
    int c = r->buf[r->pos++];
    if (c == '\n') r->line++;
    return c;
}

static inline int rd_peek(struct sw_dataset_reader *r) {
    if (r->pos >= r->len) {
        int rc = rd_fill(r);
        if (rc == 0) return -1;
        if (rc < 0) return rc < -1 ? rc : -100;
    }
    return r->buf[r->pos];
}

static int row_push(struct sw_dataset_reader *r, int c) {
    if (r->row_len + 1 >= r->row_cap) {
        if (r->row_cap >= RD_MAX_ROW)
            return sw_err_set(SW_ERANGE, "%s:%ld: a row is larger than %zu MiB", r->name, r->line,
                              RD_MAX_ROW >> 20);
        size_t cap = r->row_cap ? r->row_cap * 2 : 4096;
        char *p = realloc(r->row, cap);
        if (!p) return sw_err_set(SW_ENOMEM, "out of memory");
        r->row = p;
        r->row_cap = cap;
    }
    r->row[r->row_len++] = (char)c;
    return 0;
}

int sw_dataset_reader_open(struct sw_dataset_reader **out, const char *path) {
    *out = NULL;
    struct sw_dataset_reader *r = calloc(1, sizeof *r);
    if (!r) return sw_err_set(SW_ENOMEM, "out of memory");
    int is_stdin = strcmp(path, "-") == 0;
    r->name = strdup(is_stdin ? "<stdin>" : path);
    r->buf = malloc(RD_CHUNK);
    r->line = 1;
    r->first_elem = 1;
    if (!r->name || !r->buf) {
        sw_dataset_reader_free(r);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    if (is_stdin) {
        int fd = dup(0);
        if (fd < 0 || !(r->gz = gzdopen(fd, "rb"))) {
            if (fd >= 0) close(fd);
            sw_dataset_reader_free(r);
            return sw_err_errno("<stdin>");
        }
    } else {
        errno = 0;
        r->gz = gzopen(path, "rb");
        if (!r->gz) {
            if (!errno) errno = ENOMEM;
            int rc = sw_err_errno("cannot open '%s'", path);
            sw_dataset_reader_free(r);
            return rc;
        }
    }
    gzbuffer(r->gz, RD_CHUNK);
    *out = r;
    return 0;
}

const char *sw_dataset_reader_name(const struct sw_dataset_reader *r) {
    return r->name;
}
int sw_dataset_reader_recoverable(const struct sw_dataset_reader *r) {
    return r->recoverable;
}

void sw_dataset_reader_free(struct sw_dataset_reader *r) {
    if (!r) return;
    if (r->gz) gzclose(r->gz);
    free(r->name);
    free(r->buf);
    free(r->row);
    free(r);
}

static int is_space(int c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Skip whitespace; returns the next byte without consuming it (or -1 / error). */
static int skip_space(struct sw_dataset_reader *r) {
    for (;;) {
        int c = rd_peek(r);
        if (c < 0 || !is_space(c)) return c;
        rd_getc(r);
    }
}

static const char *json_kind(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* Strings holding U+0000 ("\u0000" is valid JSON, and HF tokenizers encode the character) get it
 * as the two bytes C0 80 (Modified UTF-8), because every consumer of a row keeps NUL-terminated
 * strings; sw_tokenizer_encode reads C0 80 back as U+0000. */
static int nul_to_mutf8(json_t *v) {
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) SW_TRY(nul_to_mutf8(x));
        return 0;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) SW_TRY(nul_to_mutf8(x));
        return 0;
    }
    if (!json_is_string(v)) return 0;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v), nul = 0;
    if (strlen(s) == n) return 0;
    for (size_t i = 0; i < n; i++)
        nul += s[i] == '\0';
    char *t = malloc(n + nul + 1);
    if (!t) return sw_err_set(SW_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\0') {
            t[k++] = (char)0xC0;
            t[k++] = (char)0x80;
        } else {
            t[k++] = s[i];
        }
    }
    t[k] = '\0';
    int rc = json_string_setn_nocheck(v, t, k) == 0 ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
    free(t);
    return rc;
}

int sw_dataset_row_parse(const char *name, long line, const char *text, size_t len, int in_array,
                         json_t **row) {
    *row = NULL;
    json_error_t e;
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!v) {
        /* jansson's line is relative to the row's first line, and its "end of file" is the end
         * of the row: say so, a row of a JSON lines file is one line. */
        long at = line + (e.line > 0 ? e.line - 1 : 0);
        const char *eof = strstr(e.text, " near end of file");
        if (eof)
            return sw_err_set(SW_EFORMAT,
                              "%s:%ld: invalid JSON: %.*s at the end of the %s (column %d): the "
                              "row is incomplete%s",
                              name, at, (int)(eof - e.text), e.text, in_array ? "element" : "line",
                              e.column,
                              in_array ? "" : " (JSON lines: one complete object per line)");
        return sw_err_set(SW_EFORMAT, "%s:%ld: invalid JSON: %s (column %d)", name, at, e.text,
                          e.column);
    }
    if (!json_is_object(v)) {
        const char *k = json_kind(v);
        json_decref(v);
        return sw_err_set(SW_EFORMAT, "%s:%ld: expected a JSON object as the row, got %s", name,
                          line, k);
    }
    int rc = nul_to_mutf8(v);
    if (rc < 0) {
        json_decref(v);
        return rc;
    }
    *row = v;
    return 1;
}

/* Parse the buffered row; the row starts on line `line`. */
static int parse_row(struct sw_dataset_reader *r, long line, json_t **row) {
    int rc = sw_dataset_row_parse(r->name, line, r->row, r->row_len, r->mode == RD_ARRAY, row);
    r->recoverable = rc == SW_EFORMAT;
    return rc;
}

/* JSON lines: the next non-blank line (parsed when row is not NULL). */
static int next_line(struct sw_dataset_reader *r, json_t **row, long *line) {
    for (;;) {
        r->row_len = 0;
        long start = r->line;
        int blank = 1, c;
        while ((c = rd_getc(r)) >= 0 && c != '\n') {
            if (!is_space(c)) blank = 0;
            SW_TRY(row_push(r, c));
        }
        if (c < -1) return c == -100 ? SW_EIO : c;
        if (!blank) {
            *line = start;
            return row ? parse_row(r, start, row) : 1;
        }
        if (c == -1) {
            r->mode = RD_DONE;
            return 0;
        }
    }
}

/* Copy one JSON string (the opening quote already pushed) into the row. */
static int scan_string(struct sw_dataset_reader *r) {
    for (;;) {
        int c = rd_getc(r);
        if (c < 0) return c;
        SW_TRY(row_push(r, c));
        if (c == '"') return 0;
        if (c == '\\') {
            c = rd_getc(r);
            if (c < 0) return c;
            SW_TRY(row_push(r, c));
        }
    }
}

/* Copy one JSON value into the row: objects and arrays by depth, strings by quotes, scalars up to
 * the next delimiter. Returns 0, -1 at an early EOF, or an error. */
static int scan_value(struct sw_dataset_reader *r) {
    int c = rd_getc(r);
    if (c < 0) return c;
    SW_TRY(row_push(r, c));
    if (c == '"') return scan_string(r);
    if (c == '{' || c == '[') {
        long depth = 1;
        while (depth > 0) {
            c = rd_getc(r);
            if (c < 0) return c;
            SW_TRY(row_push(r, c));
            if (c == '"') {
                int rc = scan_string(r);
                if (rc < 0) return rc;
            } else if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                depth--;
            }
        }
        return 0;
    }
    for (;;) {
        c = rd_peek(r);
        if (c < 0 || is_space(c) || c == ',' || c == ']') return c < -1 ? c : 0;
        SW_TRY(row_push(r, rd_getc(r)));
    }
}

static int array_broken(struct sw_dataset_reader *r, int c, const char *what) {
    r->mode = RD_DONE;
    r->recoverable = 0;
    if (c < -1) return c == -100 ? SW_EIO : c;
    if (c == -1)
        return sw_err_set(SW_ETRUNC, "%s:%ld: the JSON array ends early (%s)", r->name, r->line,
                          what);
    return sw_err_set(SW_EFORMAT, "%s:%ld: malformed JSON array: expected %s, got '%c'", r->name,
                      r->line, what, c);
}

/* JSON array: the next element. */
static int next_element(struct sw_dataset_reader *r, json_t **row, long *line) {
    int c = skip_space(r);
    if (!r->first_elem) {
        if (c == ']') goto end;
        if (c != ',') return array_broken(r, c, "',' or ']'");
        rd_getc(r);
        c = skip_space(r);
    } else if (c == ']') {
        goto end;
    }
    if (c < 0 || c == ']' || c == ',') return array_broken(r, c, "a value");
    r->first_elem = 0;
    r->row_len = 0;
    long start = r->line;
    int rc = scan_value(r);
    if (rc < 0) return array_broken(r, rc, "the end of a value");
    *line = start;
    return row ? parse_row(r, start, row) : 1;
end:
    rd_getc(r);
    c = skip_space(r);
    r->mode = RD_DONE;
    if (c >= 0)
        return sw_err_set(SW_EFORMAT, "%s:%ld: unexpected data after the JSON array", r->name,
                          r->line);
    return c < -1 ? c : 0;
}

/* The next row, parsed into *row, or (row NULL) only buffered. */
static int reader_next(struct sw_dataset_reader *r, json_t **row, long *line) {
    if (row) *row = NULL;
    *line = 0;
    r->recoverable = 0;
    if (r->failed) return sw_err_set(SW_ESTATE, "%s: reader already failed", r->name);
    if (r->mode == RD_UNKNOWN) {
        int c = skip_space(r);
        if (c < -1) return c == -100 ? SW_EIO : c;
        if (c == -1) {
            r->mode = RD_DONE;
            return 0;
        }
        if (c == '[') {
            rd_getc(r);
            r->mode = RD_ARRAY;
        } else if (c == '{') {
            r->mode = RD_LINES;
        } else {
            r->mode = RD_DONE;
            return sw_err_set(SW_EFORMAT,
                              "%s:%ld: expected a JSON array ('[') or JSON lines ('{'), got '%c'",
                              r->name, r->line, c);
        }
    }
    switch (r->mode) {
    case RD_LINES: return next_line(r, row, line);
    case RD_ARRAY: return next_element(r, row, line);
    default: return 0;
    }
}

int sw_dataset_reader_next(struct sw_dataset_reader *r, json_t **row, long *line) {
    return reader_next(r, row, line);
}

int sw_dataset_reader_next_raw(struct sw_dataset_reader *r, const char **text, size_t *len,
                               long *line) {
    *text = NULL;
    *len = 0;
    int rc = reader_next(r, NULL, line);
    if (rc == 1) {
        *text = r->row_len ? r->row : "";
        *len = r->row_len;
    }
    return rc;
}

int sw_dataset_reader_in_array(const struct sw_dataset_reader *r) {
    return r->mode == RD_ARRAY;
}
