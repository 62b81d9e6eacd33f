/* test_dataset — the row reader (JSON arrays, JSON lines, gzip, line numbers, recovery), format
 * detection and conversion of every format (with field-named errors), dataset arguments
 * (#N, folders, lists) and loading (sampling, split, deterministic shuffle, bad rows).
 * Fixtures: test/fixtures/datasets/ (run from the repository root, as make test does). */
#include "sw_dataset.h"
#include "sw_err.h"
#include "sw_log.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define FIX "test/fixtures/datasets/"

static char tmpdir[] = "/tmp/sw_test_dataset_XXXXXX";

static char *tmp_path(const char *name) {
    static char buf[4][256];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 256, "%s/%s", tmpdir, name);
    return p;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

static void write_gz(const char *path, const char *text) {
    gzFile g = gzopen(path, "wb9");
    gzwrite(g, text, (unsigned)strlen(text));
    gzclose(g);
}

/* Read every row of path; returns the count, records lines, stops at the first error (rc). */
static int read_all(const char *path, long *lines, int max, int *rc_out) {
    struct sw_dataset_reader *r;
    int rc = sw_dataset_reader_open(&r, path), n = 0;
    if (rc < 0) {
        *rc_out = rc;
        return 0;
    }
    json_t *row;
    long line;
    while ((rc = sw_dataset_reader_next(r, &row, &line)) == 1) {
        if (n < max) lines[n] = line;
        n++;
        json_decref(row);
    }
    *rc_out = rc;
    sw_dataset_reader_free(r);
    return n;
}

static void test_reader(void) {
    long lines[16];
    int rc;
    int n = read_all(FIX "alpaca.json", lines, 16, &rc);
    IS_INT(n, 3, "JSON array: 3 rows");
    IS_INT(rc, 0, "JSON array: clean end");
    IS_INT(lines[0], 2, "first element starts on line 2");
    IS_INT(lines[1], 7, "second element on line 7");
    IS_INT(lines[2], 12, "third element on line 12");

    n = read_all(FIX "sharegpt.jsonl", lines, 16, &rc);
    IS_INT(n, 2, "JSON lines: 2 rows");
    IS_INT(lines[1], 2, "JSON lines: line numbers");

    n = read_all(FIX "alpaca.jsonl.gz", lines, 16, &rc);
    IS_INT(n, 3, "gzip JSON lines: 3 rows");
    n = read_all(FIX "folder/b.json.gz", lines, 16, &rc);
    IS_INT(n, 2, "gzip JSON array: 2 rows");

    /* Blank lines, CRLF, and a gzip file whose name does not say so. */
    write_file(tmp_path("crlf.jsonl"), "\n{\"text\": \"a\"}\r\n\r\n  \n{\"text\": \"b\"}");
    n = read_all(tmp_path("crlf.jsonl"), lines, 16, &rc);
    IS_INT(n, 2, "blank lines skipped, last line without newline read");
    IS_INT(lines[0], 2, "line of the first row after a blank line");
    IS_INT(lines[1], 5, "line of the second row");
    write_gz(tmp_path("hidden.json"), "[{\"text\": \"x\"}]");
    n = read_all(tmp_path("hidden.json"), lines, 16, &rc);
    IS_INT(n, 1, "gzip detected by magic, not by name");

    /* Empty file and empty array. */
    write_file(tmp_path("empty.jsonl"), "");
    n = read_all(tmp_path("empty.jsonl"), lines, 16, &rc);
    OK(n == 0 && rc == 0, "empty file: no rows, no error");
    write_file(tmp_path("emptyarr.json"), " [ ] \n");
    n = read_all(tmp_path("emptyarr.json"), lines, 16, &rc);
    OK(n == 0 && rc == 0, "empty array: no rows, no error");

    /* Strings holding brackets, quotes and escapes do not confuse the array scanner. */
    write_file(tmp_path("tricky.json"),
               "[{\"text\": \"a ] } [ { \\\" \\\\\"},\n {\"text\": \"line\\nbreak\"}]");
    n = read_all(tmp_path("tricky.json"), lines, 16, &rc);
    OK(n == 2 && rc == 0, "brackets and escapes inside strings");

    /* Broken containers. */
    write_file(tmp_path("trunc.json"), "[{\"text\": \"a\"},\n{\"text\": \"b\"");
    n = read_all(tmp_path("trunc.json"), lines, 16, &rc);
    OK(n == 1 && rc == SW_ETRUNC, "unterminated array: SW_ETRUNC after the good row");
    OK(strstr(sw_err_msg(), "trunc.json:2") != NULL, "message names file:line (%s)", sw_err_msg());
    write_file(tmp_path("trailing.json"), "[{\"text\": \"a\"}] x");
    n = read_all(tmp_path("trailing.json"), lines, 16, &rc);
    OK(n == 1 && rc == SW_EFORMAT, "data after the array is an error");
    write_file(tmp_path("csv.txt"), "a,b,c\n1,2,3\n");
    n = read_all(tmp_path("csv.txt"), lines, 16, &rc);
    OK(rc == SW_EFORMAT && strstr(sw_err_msg(), "expected a JSON array"), "not JSON: %s",
       sw_err_msg());
    write_file(tmp_path("truncgz.jsonl.gz"), "");
    {
        /* A gzip stream cut in half. */
        gzFile g = gzopen(tmp_path("full.gz"), "wb9");
        for (int i = 0; i < 2000; i++)
            gzprintf(g, "{\"text\": \"row %d with some words\"}\n", i);
        gzclose(g);
        FILE *f = fopen(tmp_path("full.gz"), "rb");
        static char buf[1 << 16];
        size_t len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        f = fopen(tmp_path("truncgz.jsonl.gz"), "wb");
        fwrite(buf, 1, len / 2, f);
        fclose(f);
        n = read_all(tmp_path("truncgz.jsonl.gz"), lines, 16, &rc);
        OK(rc == SW_ETRUNC && n > 0 && n < 2000, "truncated gzip: SW_ETRUNC after %d rows (%s)", n,
           sw_err_msg());
    }
    rc = 0;
    n = read_all(tmp_path("no-such-file.jsonl"), lines, 16, &rc);
    IS_INT(rc, SW_ENOTFOUND, "missing file: SW_ENOTFOUND");

    /* Recovery: a bad line is reported with its line and the next rows still come. */
    struct sw_dataset_reader *r;
    sw_dataset_reader_open(&r, FIX "malformed.jsonl");
    json_t *row;
    long line;
    int got = 0, errs = 0, err_lines[4] = {0};
    for (;;) {
        rc = sw_dataset_reader_next(r, &row, &line);
        if (rc == 0) break;
        if (rc < 0) {
            if (!sw_dataset_reader_recoverable(r)) break;
            if (errs < 4) sscanf(strstr(sw_err_msg(), ".jsonl:") + 7, "%d", &err_lines[errs]);
            errs++;
            continue;
        }
        got++;
        json_decref(row);
    }
    sw_dataset_reader_free(r);
    IS_INT(rc, 0, "malformed.jsonl read to the end");
    IS_INT(got, 3, "three rows are JSON objects");
    IS_INT(errs, 2, "two rows are not");
    IS_INT(err_lines[0], 2, "invalid JSON reported on line 2");
    IS_INT(err_lines[1], 4, "non-object reported on line 4");
}

/* Convert the row of file at 1-based index k with auto-detection. */
static int conv_of(const char *path, int k, struct sw_conv *c, enum sw_dataset_format *fmt) {
    struct sw_dataset_reader *r;
    if (sw_dataset_reader_open(&r, path) < 0) return -100;
    json_t *row = NULL;
    long line;
    int rc = 0;
    for (int i = 0; i < k; i++) {
        json_decref(row);
        row = NULL;
        rc = sw_dataset_reader_next(r, &row, &line);
        if (rc != 1) break;
    }
    if (rc == 1) {
        enum sw_dataset_format f = sw_dataset_detect(row);
        if (fmt) *fmt = f;
        char where[256];
        snprintf(where, sizeof where, "%s:%ld", sw_dataset_reader_name(r), line);
        rc = sw_dataset_row_to_conv(row, f, where, c);
    } else {
        rc = -101;
    }
    json_decref(row);
    sw_dataset_reader_free(r);
    return rc;
}

static void test_formats(void) {
    struct sw_conv c;
    enum sw_dataset_format f;
    int rc = conv_of(FIX "alpaca.json", 1, &c, &f);
    OK(rc == 0 && f == SW_DSFMT_ALPACA, "alpaca detected and converted");
    OK(c.n_turns == 2 && c.turns[0].role == SW_ROLE_USER && c.turns[1].role == SW_ROLE_ASSISTANT,
       "alpaca: user + assistant");
    IS_STR(c.turns[0].content, "Give three tips for staying healthy.",
           "alpaca: empty input adds nothing");
    sw_conv_release(&c);
    conv_of(FIX "alpaca.json", 2, &c, &f);
    IS_STR(c.turns[0].content, "Translate the sentence into French.\nThe cat sleeps.",
           "alpaca: instruction + \\n + input (ms-swift)");
    sw_conv_release(&c);
    conv_of(FIX "alpaca.json", 3, &c, &f);
    IS_STR(c.system, "You are a translator.", "alpaca: system");
    IS_INT(c.n_turns, 4, "alpaca: history pair + the row");
    IS_STR(c.turns[1].content, "你好！有什么可以帮你？", "alpaca: history response");
    sw_conv_release(&c);

    rc = conv_of(FIX "alpaca_bad.json", 2, &c, &f);
    IS_INT(rc, SW_EFORMAT, "bad alpaca row fails");
    IS_STR(sw_err_msg(), FIX "alpaca_bad.json:3: field 'output': expected a string, got a number",
           "error names file:line and field");

    rc = conv_of(FIX "sharegpt.jsonl", 1, &c, &f);
    OK(rc == 0 && f == SW_DSFMT_SHAREGPT, "sharegpt detected");
    IS_STR(c.system, "You are terse.", "sharegpt: system message becomes the system prompt");
    OK(c.n_turns == 2 && !strcmp(c.turns[1].content, "4"), "sharegpt: human/gpt turns");
    sw_conv_release(&c);
    conv_of(FIX "sharegpt.jsonl", 2, &c, &f);
    IS_INT(c.n_turns, 4, "sharegpt: multi-turn");
    sw_conv_release(&c);

    rc = conv_of(FIX "messages.jsonl", 2, &c, &f);
    OK(rc == 0 && f == SW_DSFMT_MESSAGES, "messages detected");
    OK(c.n_turns == 4 && c.turns[1].n_tool_calls == 1 && c.turns[2].role == SW_ROLE_TOOL,
       "messages: tool call and tool result");
    IS_STR(c.turns[1].tool_calls[0].name, "get_weather", "tool call name");
    IS_STR(c.turns[1].tool_calls[0].arguments, "{\"city\": \"Paris\"}",
           "tool call arguments serialised like json.dumps");
    sw_conv_release(&c);
    conv_of(FIX "messages.jsonl", 3, &c, &f);
    IS_STR(c.turns[1].reasoning, "3*7 = 21.", "messages: reasoning_content kept");
    sw_conv_release(&c);
    conv_of(FIX "messages.jsonl", 4, &c, &f);
    OK(c.turns[1].loss == 0 && c.turns[3].loss == -1, "messages: per-turn loss override");
    sw_conv_release(&c);

    rc = conv_of(FIX "query.jsonl", 2, &c, &f);
    OK(rc == 0 && f == SW_DSFMT_QUERY && c.n_turns == 4, "query/response with history");
    sw_conv_release(&c);
    conv_of(FIX "query.jsonl", 1, &c, &f);
    IS_STR(c.system, "Answer briefly.", "query/response: system");
    sw_conv_release(&c);

    const char *pref_last[] = {"Hi!", "Seven.", "Yes, on a clear day.",
                               "Put it in boiling water for 8 minutes.", "4"};
    const char *pref_rej[] = {"Go away.", "No.", "It is green.", "I don't know.", "5"};
    for (int k = 1; k <= 5; k++) {
        rc = conv_of(FIX "preference.jsonl", k, &c, &f);
        OK(rc == 0 && f == SW_DSFMT_PREFERENCE, "preference form %d detected (%s)", k,
           rc ? sw_err_msg() : "");
        if (rc == 0) {
            IS_STR(c.turns[c.n_turns - 1].content, pref_last[k - 1], "preference form %d: chosen",
                   k);
            IS_STR(c.rejected, pref_rej[k - 1], "preference form %d: rejected", k);
            sw_conv_release(&c);
        }
    }

    rc = conv_of(FIX "kto.jsonl", 2, &c, &f);
    OK(rc == 0 && f == SW_DSFMT_KTO && c.kto_label == 0, "kto: label false");
    sw_conv_release(&c);
    conv_of(FIX "kto.jsonl", 1, &c, &f);
    IS_INT(c.kto_label, 1, "kto: label true");
    sw_conv_release(&c);

    rc = conv_of(FIX "text.jsonl", 3, &c, &f);
    OK(rc == 0 && f == SW_DSFMT_TEXT && c.n_turns == 0, "text detected");
    IS_STR(c.text, "天下大势，分久必合，合久必分。", "text kept verbatim");
    sw_conv_release(&c);

    /* Field errors through the JSON API directly. */
    struct {
        const char *json;
        enum sw_dataset_format fmt;
        const char *msg;
    } bad[] = {
        {"{\"messages\": []}", SW_DSFMT_MESSAGES, "x:1: field 'messages': empty"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": 3}]}", SW_DSFMT_MESSAGES,
         "x:1: field 'messages[0].content': expected a string or a list of text parts, got a "
         "number"},
        {"{\"messages\": [{\"role\": \"wizard\", \"content\": \"x\"}]}", SW_DSFMT_MESSAGES,
         "x:1: field 'messages[0].role': unknown role 'wizard'"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}", SW_DSFMT_MESSAGES,
         "x:1: the conversation ends with a user turn, not an assistant turn"},
        {"{\"text\": null}", SW_DSFMT_TEXT, "x:1: field 'text': expected a string, got null"},
        {"{\"instruction\": \"a\"}", SW_DSFMT_ALPACA, "x:1: field 'output': missing"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", "
         "\"content\": \"a\"}], \"label\": \"yes\"}",
         SW_DSFMT_KTO, "x:1: field 'label': expected a boolean, got a string"},
        {"{\"chosen\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", "
         "\"content\": \"a\"}], "
         "\"rejected\": [{\"role\": \"user\", \"content\": \"other\"}, {\"role\": \"assistant\", "
         "\"content\": \"b\"}]}",
         SW_DSFMT_PREFERENCE, "x:1: field 'rejected': turn 0 differs from the chosen conversation"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", "
         "\"content\": \"a\"}], \"tools\": [{\"name\": \"f\"}]}",
         SW_DSFMT_MESSAGES, "x:1: field 'tools': tool definitions are not supported"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *row = json_loads(bad[i].json, 0, NULL);
        rc = sw_dataset_row_to_conv(row, bad[i].fmt, "x:1", &c);
        OK(rc == SW_EFORMAT && strncmp(sw_err_msg(), bad[i].msg, strlen(bad[i].msg)) == 0,
           "bad row %zu: %s", i, sw_err_msg());
        json_decref(row);
    }
    json_t *row = json_loads("{\"foo\": 1}", 0, NULL);
    IS_INT(sw_dataset_detect(row), SW_DSFMT_AUTO, "unknown keys: no format");
    json_decref(row);
    /* Content parts (OpenAI multimodal form with text only) are joined. */
    row = json_loads(
        "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"a\"}, "
        "{\"type\": \"text\", \"text\": \"b\"}]}, {\"role\": \"assistant\", \"content\": \"c\"}]}",
        0, NULL);
    rc = sw_dataset_row_to_conv(row, SW_DSFMT_MESSAGES, "x:1", &c);
    OK(rc == 0 && !strcmp(c.turns[0].content, "ab"), "text content parts joined");
    sw_conv_release(&c);
    json_decref(row);
    enum sw_dataset_format pf;
    OK(sw_dataset_format_parse("sharegpt", &pf) == 0 && pf == SW_DSFMT_SHAREGPT,
       "format names parse");
    OK(sw_dataset_format_parse("csv", &pf) == SW_EINVAL, "unknown format name rejected");
}

static void test_specs(void) {
    struct sw_dataset_spec *s;
    size_t n;
    int rc = sw_dataset_specs_parse(FIX "alpaca.json#5, " FIX "folder," FIX "text.jsonl", &s, &n);
    OK(rc == 0 && n == 3, "three comma-separated specs");
    if (rc == 0) {
        IS_INT(s[0].sample, 5, "#5 parsed");
        IS_STR(s[0].path, FIX "alpaca.json", "path without #N");
        IS_INT(s[1].n_files, 2, "folder: the two data files (notes.txt ignored)");
        OK(strstr(s[1].files[0], "a.jsonl") && strstr(s[1].files[1], "b.json.gz"), "folder sorted");
        IS_INT(s[2].sample, -1, "no #N: every row");
        sw_dataset_specs_free(s, n);
    }
    rc = sw_dataset_specs_parse(FIX "nope.jsonl", &s, &n);
    IS_INT(rc, SW_ENOTFOUND, "missing dataset: SW_ENOTFOUND");
    OK(strstr(sw_err_msg(), "nope.jsonl") != NULL, "message names it: %s", sw_err_msg());
    rc = sw_dataset_specs_parse(FIX "alpaca.json#0", &s, &n);
    IS_INT(rc, SW_EUSAGE, "#0 is a usage error");
    rc = sw_dataset_specs_parse("-,-", &s, &n);
    IS_INT(rc, SW_EUSAGE, "stdin twice is a usage error");
    rc = sw_dataset_specs_parse(" , ", &s, &n);
    IS_INT(rc, SW_EUSAGE, "empty list is a usage error");
}

static int load(const char *list, struct sw_dataset_opts *o, struct sw_dataset *ds) {
    struct sw_dataset_spec *s;
    size_t n;
    int rc = sw_dataset_specs_parse(list, &s, &n);
    if (rc < 0) return rc;
    rc = sw_dataset_load(ds, s, n, o);
    sw_dataset_specs_free(s, n);
    return rc;
}

/* A dataset of n rows {"text": "row <i>"}. */
static const char *make_rows(int n) {
    const char *p = tmp_path("rows.jsonl");
    FILE *f = fopen(p, "w");
    for (int i = 0; i < n; i++)
        fprintf(f, "{\"text\": \"row %d\"}\n", i);
    fclose(f);
    return p;
}

static int row_no(const struct sw_example *e) {
    return atoi(e->conv.text + 4);
}

static void test_load(void) {
    struct sw_dataset ds;
    struct sw_dataset_opts o = {.format = SW_DSFMT_AUTO, .shuffle = 0, .seed = 42};
    const char *rows = make_rows(10);
    char spec[512];

    int rc = load(rows, &o, &ds);
    OK(rc == 0 && ds.n_train == 10 && ds.n_val == 0, "all rows, no split");
    int inorder = 1;
    for (size_t i = 0; i < ds.n_train; i++)
        inorder &= row_no(&ds.train[i]) == (int)i;
    OK(inorder, "dataset_shuffle false keeps file order");
    IS_INT(ds.train[3].line, 4, "examples keep their line");
    sw_dataset_release(&ds);

    snprintf(spec, sizeof spec, "%s#4", rows);
    rc = load(spec, &o, &ds);
    OK(rc == 0 && ds.n_train == 4 && row_no(&ds.train[3]) == 3, "#4 without shuffle: the first 4");
    sw_dataset_release(&ds);

    o.shuffle = 1;
    rc = load(spec, &o, &ds);
    int seen[10] = {0}, distinct = 1;
    for (size_t i = 0; i < ds.n_train; i++)
        distinct &= !seen[row_no(&ds.train[i])]++;
    OK(rc == 0 && ds.n_train == 4 && distinct, "#4 with shuffle: 4 distinct rows");
    sw_dataset_release(&ds);

    snprintf(spec, sizeof spec, "%s#25", rows);
    rc = load(spec, &o, &ds);
    int count[10] = {0}, ok = rc == 0 && ds.n_train == 25;
    for (size_t i = 0; ok && i < ds.n_train; i++)
        count[row_no(&ds.train[i])]++;
    int twos = 0, threes = 0;
    for (int i = 0; i < 10; i++) {
        twos += count[i] == 2;
        threes += count[i] == 3;
    }
    OK(ok && twos == 5 && threes == 5, "#25 of 10: every row twice plus 5 random rows once more");
    sw_dataset_release(&ds);

    /* Determinism: same seed same order; another seed another order. */
    struct sw_dataset a, b, c;
    load(rows, &o, &a);
    load(rows, &o, &b);
    o.seed = 7;
    load(rows, &o, &c);
    int same = 1, differ = 0, moved = 0;
    for (size_t i = 0; i < 10; i++) {
        same &= row_no(&a.train[i]) == row_no(&b.train[i]);
        differ |= row_no(&a.train[i]) != row_no(&c.train[i]);
        moved |= row_no(&a.train[i]) != (int)i;
    }
    OK(same, "same seed, same order");
    OK(differ && moved, "shuffled, and another seed gives another order");
    sw_dataset_release(&a);
    sw_dataset_release(&b);
    sw_dataset_release(&c);

    /* Validation split: max(1, floor(10 * 0.25)) = 2 rows, disjoint from training. */
    o.split_ratio = 0.25;
    rc = load(rows, &o, &ds);
    OK(rc == 0 && ds.n_train == 8 && ds.n_val == 2, "split 0.25 of 10: 8 + 2");
    int in_train[10] = {0}, disjoint = 1;
    for (size_t i = 0; i < ds.n_train; i++)
        in_train[row_no(&ds.train[i])] = 1;
    for (size_t i = 0; i < ds.n_val; i++)
        disjoint &= !in_train[row_no(&ds.val[i])];
    OK(disjoint, "validation rows are not in training");
    sw_dataset_release(&ds);
    o.split_ratio = 0.01;
    rc = load(rows, &o, &ds);
    OK(rc == 0 && ds.n_val == 1, "a tiny ratio still gives one validation row");
    sw_dataset_release(&ds);
    o.shuffle = 0;
    o.split_ratio = 0.2;
    rc = load(rows, &o, &ds);
    OK(rc == 0 && ds.n_val == 2 && row_no(&ds.val[0]) == 8 && row_no(&ds.val[1]) == 9,
       "no shuffle: the last rows are validation");
    sw_dataset_release(&ds);
    o.split_ratio = 0;

    /* Several datasets concatenate; formats are per file. */
    rc = load(FIX "alpaca.json," FIX "folder", &o, &ds);
    OK(rc == 0 && ds.n_train == 7, "alpaca (3) + folder (2 + 2)");
    OK(ds.n_files == 3 && strstr(ds.files[ds.train[6].file], "b.json.gz"), "file table");
    OK(ds.train[6].conv.text && !strcmp(ds.train[6].conv.text, "b2"),
       "text rows from the gzip array");
    sw_dataset_release(&ds);

    /* Bad rows: an error by default, counted with skip_bad_rows. */
    rc = load(FIX "malformed.jsonl", &o, &ds);
    OK(rc == SW_EFORMAT && strstr(sw_err_msg(), "malformed.jsonl:2"), "bad row stops the load: %s",
       sw_err_msg());
    o.skip_bad_rows = 1;
    sw_log_set_level(SW_LOG_ERROR);
    rc = load(FIX "malformed.jsonl", &o, &ds);
    OK(rc == 0 && ds.n_train == 2 && ds.stats.rows_bad == 3 && ds.stats.rows_read == 5,
       "skip_bad_rows: 2 kept, 3 counted (read %llu, bad %llu)",
       (unsigned long long)ds.stats.rows_read, (unsigned long long)ds.stats.rows_bad);
    sw_dataset_release(&ds);
    rc = load(FIX "unknown.jsonl", &o, &ds);
    OK(rc == SW_EFORMAT, "a dataset with no usable row is an error");
    sw_dataset_release(&ds);
    o.skip_bad_rows = 0;
    rc = load(FIX "unknown.jsonl", &o, &ds);
    OK(rc == SW_EFORMAT && strstr(sw_err_msg(), "use --dataset_format"), "undetectable format: %s",
       sw_err_msg());
    o.format = SW_DSFMT_TEXT;
    rc = load(FIX "unknown.jsonl", &o, &ds);
    OK(rc == SW_EFORMAT && strstr(sw_err_msg(), "field 'text'"), "forced format checks fields: %s",
       sw_err_msg());
    sw_log_set_level(SW_LOG_INFO);

    /* Streaming iterator: #N takes the first N. */
    struct sw_dataset_spec *s;
    size_t n;
    snprintf(spec, sizeof spec, "%s#3,%s", rows, FIX "text.jsonl");
    sw_dataset_specs_parse(spec, &s, &n);
    struct sw_dataset_iter *it;
    o.format = SW_DSFMT_AUTO;
    sw_dataset_iter_open(&it, s, n, &o);
    struct sw_example ex;
    size_t si, k = 0, per[2] = {0, 0};
    while ((rc = sw_dataset_iter_next(it, &ex, &si)) == 1) {
        if (si < 2) per[si]++;
        k++;
        sw_conv_release(&ex.conv);
    }
    OK(rc == 0 && k == 6 && per[0] == 3 && per[1] == 3, "iterator: 3 sampled + 3 rows");
    sw_dataset_iter_free(it);
    sw_dataset_specs_free(s, n);
}

/* Issue 10, defects 9, 11, 12: what a new user's datasets hit. */
static void test_issue10(void) {
    /* 9: a JSON lines row cut short is named as that row, not "near end of file". */
    const char *p = tmp_path("cut.jsonl");
    write_file(p, "{\"query\": \"a\", \"response\": \"b\"}\n{\"query\": \"a\", \"response\": \n"
                  "{\"query\": \"c\", \"response\": \"d\"}\n");
    long lines[4];
    int rc;
    int n = read_all(p, lines, 4, &rc);
    OK(n == 1 && rc == SW_EFORMAT && strstr(sw_err_msg(), "cut.jsonl:2: invalid JSON") &&
           strstr(sw_err_msg(), "at the end of the line") && !strstr(sw_err_msg(), "end of file"),
       "a cut-short line 2 says so: %s", sw_err_msg());

    /* 12: "\u0000" is valid JSON: the row loads, the string keeps U+0000 as C0 80. */
    p = tmp_path("nul.jsonl");
    write_file(p, "{\"query\": \"a\\u0000b\", \"response\": \"x\\u0000\"}\n");
    struct sw_conv c;
    sw_conv_init(&c);
    rc = conv_of(p, 1, &c, NULL);
    OK(rc == 0 && c.n_turns == 2 &&
           strcmp(c.turns[0].content, "a\xC0\x80"
                                      "b") == 0 &&
           strcmp(c.turns[1].content, "x\xC0\x80") == 0,
       "\\u0000 accepted and carried as C0 80 (%s)", rc ? sw_err_msg() : "ok");
    sw_conv_release(&c);

    /* 11: #N parses only the rows it chooses: a bad row beyond them does not stop the load. */
    p = tmp_path("tail_bad.jsonl");
    write_file(
        p, "{\"query\": \"q0\", \"response\": \"r0\"}\n{\"query\": \"q1\", \"response\": \"r1\"}\n"
           "{\"query\": \"q2\", \"response\": \"r2\"}\n{\"query\": \"q3\", \"response\":\n"
           "{\"query\": \"q4\"}\n");
    char spec[300];
    snprintf(spec, sizeof spec, "%s#2", p);
    struct sw_dataset_opts o = {.format = SW_DSFMT_AUTO, .shuffle = 0, .seed = 42};
    struct sw_dataset ds;
    rc = load(spec, &o, &ds);
    OK(rc == 0 && ds.n_train == 2 && !strcmp(ds.train[1].conv.turns[0].content, "q1"),
       "#2 of a file with bad rows 4 and 5: the first two load (%s)", rc ? sw_err_msg() : "ok");
    OK(ds.stats.rows_read == 5 && ds.stats.rows_unsampled == 3 && ds.stats.rows_bad == 0 &&
           ds.stats.rows_repeated == 0,
       "stats: 5 read, 3 unsampled (never parsed), 0 bad");
    sw_dataset_release(&ds);
    /* All rows without #N: the bad row is an error, as before. */
    rc = load(p, &o, &ds);
    OK(rc == SW_EFORMAT && strstr(sw_err_msg(), "tail_bad.jsonl:4"), "without #N row 4 stops: %s",
       sw_err_msg());
    /* A chosen bad row is an error naming it; skip_bad_rows counts it (once per time chosen). */
    snprintf(spec, sizeof spec, "%s#5", p);
    rc = load(spec, &o, &ds);
    OK(rc == SW_EFORMAT && strstr(sw_err_msg(), "tail_bad.jsonl:4"), "#5 chooses row 4: %s",
       sw_err_msg());
    o.skip_bad_rows = 1;
    snprintf(spec, sizeof spec, "%s#7", p);
    sw_log_set_level(SW_LOG_ERROR);
    rc = load(spec, &o, &ds);
    sw_log_set_level(SW_LOG_WARN);
    const struct sw_dataset_stats *st = &ds.stats;
    OK(rc == 0 && ds.n_train == 5 && st->rows_bad == 2 && st->rows_repeated == 2 &&
           st->rows_unsampled == 0 &&
           st->rows_read + st->rows_repeated ==
               st->rows_bad + st->rows_unsampled + st->rows_train + st->rows_val,
       "#7 of 5 (rows 0, 1 twice) with 2 bad: 5 kept, 2 bad, 2 repeated; the counts add up (%s)",
       rc ? sw_err_msg() : "ok");
    sw_dataset_release(&ds);
    /* The split and #N together: the counts still add up, with shuffle. */
    o.skip_bad_rows = 0;
    o.shuffle = 1;
    o.split_ratio = 0.3;
    const char *rows = make_rows(20);
    snprintf(spec, sizeof spec, "%s#10", rows);
    rc = load(spec, &o, &ds);
    OK(rc == 0 && ds.n_val == 3 && ds.n_train == 7 && st->rows_unsampled == 10 &&
           st->rows_read + st->rows_repeated ==
               st->rows_bad + st->rows_unsampled + st->rows_train + st->rows_val,
       "#10 of 20 with split 0.3: 7 + 3, 10 unsampled, the counts add up");
    sw_dataset_release(&ds);
    o.split_ratio = 0;

    /* 11: hh-rlhf transcripts as ms-swift's HHRLHFPreprocessor splits them: stripped parts,
     * "\n\nHum:" too, and an odd number of turns drops the unanswered last one. */
    p = tmp_path("hh.jsonl");
    write_file(
        p, "{\"chosen\": \"\\n\\nHuman: Hi  \\n\\nAssistant:   Hello there\\n\\nHuman: Bye\", "
           "\"rejected\": \"\\n\\nHuman: Hi  \\n\\nAssistant: Go away\\n\\nHuman: Bye\"}\n"
           "{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant: b\\n\\nHum: c\\n\\nAssistant: d\", "
           "\"rejected\": \"\\n\\nHuman: a\\n\\nAssistant: b\\n\\nHum: c\\n\\nAssistant: e\"}\n");
    sw_conv_init(&c);
    rc = conv_of(p, 1, &c, NULL);
    OK(rc == 0 && c.n_turns == 2 && !strcmp(c.turns[0].content, "Hi") &&
           !strcmp(c.turns[1].content, "Hello there") && c.rejected &&
           !strcmp(c.rejected, "Go away"),
       "odd turns: the trailing human turn is dropped, parts stripped (%s)",
       rc ? sw_err_msg() : "ok");
    sw_conv_release(&c);
    sw_conv_init(&c);
    rc = conv_of(p, 2, &c, NULL);
    OK(rc == 0 && c.n_turns == 4 && !strcmp(c.turns[2].content, "c") &&
           c.turns[2].role == SW_ROLE_USER && !strcmp(c.rejected, "e"),
       "\"\\n\\nHum:\" is a turn delimiter (%s)", rc ? sw_err_msg() : "ok");
    sw_conv_release(&c);
}

int main(void) {
    sw_log_init("test_dataset");
    sw_log_set_level(SW_LOG_WARN);
    if (!mkdtemp(tmpdir)) return 1;
    test_reader();
    test_formats();
    test_specs();
    test_load();
    test_issue10();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) DIAG("could not remove %s", tmpdir);
    return tap_done();
}
