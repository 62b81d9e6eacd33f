/* sw_csv — an RFC 4180 CSV reader for benchmark files (MMLU, C-Eval, CMMLU, custom CEval-style
 * sets). The whole file is parsed into rows of NUL-terminated fields in one owned buffer, each
 * row tagged with the 1-based line where it starts, so that a reader above can say
 * "anatomy_test.csv:17: ..." about a bad row.
 *
 * Rules (those of Python's csv module in its default dialect, which is how pandas/datasets wrote
 * the published files): fields separated by ',', rows by "\n" or "\r\n"; a field that starts with
 * '"' is quoted and may hold commas, newlines and doubled quotes ""; text after a closing quote
 * up to the next separator is appended as is (csv's lenient behaviour); a quote inside an
 * unquoted field is literal. A UTF-8 byte-order mark at the start is skipped. Blank lines are
 * skipped. An unterminated quoted field is an error naming the line where it started. The input
 * is untrusted: every index is bounds-checked (fuzzed by test/fuzz/fuzz_eval_csv.c). */
#include "sw_bench.h"

#include "sw_err.h"
#include "sw_io.h"

#include <stdlib.h>
#include <string.h>

void sw_csv_free(struct sw_csv *c) {
    if (!c) return;
    for (size_t i = 0; i < c->nrows; i++)
        free(c->rows[i].f);
    free(c->rows);
    free(c->buf);
    free(c);
}

static int push_row(struct sw_csv *c, size_t *cap, int64_t line, char **fields, size_t nf) {
    if (c->nrows == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        struct sw_csv_row *r = realloc(c->rows, nc * sizeof(*r));
        if (!r) return sw_err_set(SW_ENOMEM, "csv: out of memory");
        c->rows = r;
        *cap = nc;
    }
    char **f = malloc((nf ? nf : 1) * sizeof(char *));
    if (!f) return sw_err_set(SW_ENOMEM, "csv: out of memory");
    memcpy(f, fields, nf * sizeof(char *));
    /* Field by field (not a compound literal), so cppcheck sees f owned by the row. */
    struct sw_csv_row *row = &c->rows[c->nrows++];
    row->line = line;
    row->nf = nf;
    row->f = f;
    return 0;
}

int sw_csv_parse(const char *name, const char *data, size_t len, struct sw_csv **out) {
    *out = NULL;
    struct sw_csv *c = calloc(1, sizeof(*c));
    if (!c) return sw_err_set(SW_ENOMEM, "csv: out of memory");
    /* Unescaping only shrinks text, so len + one NUL per field fits in 2·len + 2 bytes. */
    c->buf = malloc(2 * len + 2);
    char **fields = NULL;
    size_t fcap = 0, rcap = 0;
    int rc = 0;
    if (!c->buf) {
        rc = sw_err_set(SW_ENOMEM, "csv: out of memory");
        goto fail;
    }
    size_t i = 0, w = 0;
    int64_t line = 1;
    if (len >= 3 && (unsigned char)data[0] == 0xEF && (unsigned char)data[1] == 0xBB &&
        (unsigned char)data[2] == 0xBF)
        i = 3;
    /* Field starts are kept as offsets into buf while a row is built (buf does not move). */
    while (i < len) {
        /* Skip blank lines. */
        if (data[i] == '\n' || data[i] == '\r') {
            if (data[i] == '\n') line++;
            i++;
            continue;
        }
        int64_t row_line = line;
        size_t nf = 0;
        for (;;) { /* one field */
            if (nf == fcap) {
                size_t nc = fcap ? fcap * 2 : 16;
                char **f = realloc(fields, nc * sizeof(char *));
                if (!f) {
                    rc = sw_err_set(SW_ENOMEM, "csv: out of memory");
                    goto fail;
                }
                fields = f, fcap = nc;
            }
            fields[nf++] = c->buf + w;
            if (i < len && data[i] == '"') {
                int64_t qline = line;
                i++;
                for (;;) {
                    if (i >= len) {
                        rc = sw_err_set(SW_EFORMAT,
                                        "%s:%lld: a quoted field is not closed "
                                        "(unterminated '\"')",
                                        name, (long long)qline);
                        goto fail;
                    }
                    if (data[i] == '"') {
                        if (i + 1 < len && data[i + 1] == '"') {
                            c->buf[w++] = '"';
                            i += 2;
                            continue;
                        }
                        i++;
                        break;
                    }
                    if (data[i] == '\n') line++;
                    c->buf[w++] = data[i++];
                }
            }
            /* Unquoted text, or what follows a closing quote, up to , or end of line. */
            while (i < len && data[i] != ',' && data[i] != '\n' &&
                   !(data[i] == '\r' && (i + 1 >= len || data[i + 1] == '\n')))
                c->buf[w++] = data[i++];
            c->buf[w++] = '\0';
            if (i < len && data[i] == ',') {
                i++;
                continue;
            }
            break;
        }
        if (i < len && data[i] == '\r') i++;
        if (i < len && data[i] == '\n') i++, line++;
        SW_TRY_GOTO(rc, push_row(c, &rcap, row_line, fields, nf), fail);
    }
    free(fields);
    *out = c;
    return 0;
fail:
    free(fields);
    sw_csv_free(c);
    return rc;
}

int sw_csv_read(const char *path, struct sw_csv **out) {
    char *data = NULL;
    size_t len = 0;
    *out = NULL;
    SW_TRY(sw_read_file(path, &data, &len, 0));
    int rc = sw_csv_parse(path, data, len, out);
    free(data);
    return rc;
}
