/* sw-pack tokenize / detokenize — JSON lines in, JSON lines out, with a Hugging Face tokenizer:
 *   tokenize:   {"text": "..."}  ->  {"ids": [...]}
 *   detokenize: {"ids": [...]}   ->  {"text": "..."}
 * Lines are processed a block at a time by every core; output keeps the input order. A line
 * that is not such an object stops the run with "FILE:LINE: ..." (exit 1). */
#include "pack.h"

#include "sw_config.h"
#include "sw_err.h"
#include "sw_hub.h"
#include "sw_log.h"
#include "sw_parallel.h"

#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 4096

struct tok_opts {
    char *tokenizer;
    char *use_hf, *model_revision, *hub_token;
    int add_special_tokens, skip_special_tokens;
    int64_t num_proc;
};

static const struct sw_opt tokenize_table[] = {
    {"tokenizer", SW_OPT_STRING, offsetof(struct tok_opts, tokenizer), NULL,
     "tokenizer or model folder (tokenizer.json[.gz]) or hub id (org/name); required", 0, 0, NULL,
     NULL},
    {"add_special_tokens", SW_OPT_BOOL, offsetof(struct tok_opts, add_special_tokens), "false",
     "apply the tokenizer's post-processor (BOS etc.), as transformers' add_special_tokens", 0, 0,
     NULL, NULL},
    {"dataset_num_proc", SW_OPT_INT, offsetof(struct tok_opts, num_proc), "0",
     "threads (0 = SW_NUM_THREADS or every core)", 0, 4096, NULL, NULL},
    SW_HUB_OPT_ROWS(struct tok_opts),
    SW_OPT_END,
};

static const struct sw_opt detokenize_table[] = {
    {"tokenizer", SW_OPT_STRING, offsetof(struct tok_opts, tokenizer), NULL,
     "tokenizer or model folder (tokenizer.json[.gz]) or hub id (org/name); required", 0, 0, NULL,
     NULL},
    {"skip_special_tokens", SW_OPT_BOOL, offsetof(struct tok_opts, skip_special_tokens), "false",
     "drop special tokens from the text, as transformers' skip_special_tokens", 0, 0, NULL, NULL},
    {"dataset_num_proc", SW_OPT_INT, offsetof(struct tok_opts, num_proc), "0",
     "threads (0 = SW_NUM_THREADS or every core)", 0, 4096, NULL, NULL},
    SW_HUB_OPT_ROWS(struct tok_opts),
    SW_OPT_END,
};

static const struct sw_cli tokenize_cli = {
    .tool = "sw-pack",
    .command = "tokenize",
    .usage = "sw-pack tokenize --tokenizer DIR [options] [FILE|-]",
    .summary =
        "Read JSON lines {\"text\": ...} (stdin or FILE) and write {\"ids\": [...]} lines in the\n"
        "same order, tokenized on every core.",
    .opts = tokenize_table,
    .min_pos = 0,
    .max_pos = 1,
};

static const struct sw_cli detokenize_cli = {
    .tool = "sw-pack",
    .command = "detokenize",
    .usage = "sw-pack detokenize --tokenizer DIR [options] [FILE|-]",
    .summary =
        "Read JSON lines {\"ids\": [...]} (stdin or FILE) and write {\"text\": ...} lines in the\n"
        "same order.",
    .opts = detokenize_table,
    .min_pos = 0,
    .max_pos = 1,
};

struct line {
    char *text; /* input line (owned) */
    long lineno;
    char *out; /* output line without newline (owned), or NULL with err */
    char *err;
    int code;
};

/* {"text": s} -> {"ids":[...]} */
static void do_tokenize(const struct sw_tokenizer *tok, int add_special, const char *name,
                        struct line *l) {
    json_error_t e;
    /* "\u0000" is valid JSON and HF tokenizers encode U+0000: keep it (the length below counts
     * it). */
    json_t *j = json_loads(l->text, JSON_ALLOW_NUL, &e);
    const char *s = NULL;
    size_t n = 0;
    json_t *t = j ? json_object_get(j, "text") : NULL;
    if (!j) {
        l->code = sw_err_set(SW_EFORMAT, "%s:%ld: invalid JSON: %s", name, l->lineno, e.text);
    } else if (!t || !json_is_string(t)) {
        l->code = sw_err_set(SW_EFORMAT, "%s:%ld: expected an object with a string field 'text'",
                             name, l->lineno);
    } else {
        s = json_string_value(t);
        n = json_string_length(t);
        int32_t *ids = NULL;
        size_t k = 0;
        l->code = sw_tokenizer_encode(tok, s, n, add_special, &ids, &k);
        if (l->code == 0) {
            size_t cap = 16 + k * 12;
            char *o = malloc(cap), *p = o;
            if (!o) {
                l->code = sw_err_set(SW_ENOMEM, "out of memory");
            } else {
                p += sprintf(p, "{\"ids\":[");
                for (size_t i = 0; i < k; i++)
                    p += sprintf(p, i ? ",%d" : "%d", ids[i]);
                sprintf(p, "]}");
                l->out = o;
            }
        }
        free(ids);
    }
    if (l->code < 0) l->err = strdup(sw_err_msg());
    json_decref(j);
}

/* {"ids": [...]} -> {"text": s} */
static void do_detokenize(const struct sw_tokenizer *tok, int skip, const char *name,
                          struct line *l) {
    json_error_t e;
    json_t *j = json_loads(l->text, 0, &e);
    json_t *a = j ? json_object_get(j, "ids") : NULL;
    int32_t *ids = NULL;
    if (!j) {
        l->code = sw_err_set(SW_EFORMAT, "%s:%ld: invalid JSON: %s", name, l->lineno, e.text);
    } else if (!a || !json_is_array(a)) {
        l->code = sw_err_set(SW_EFORMAT, "%s:%ld: expected an object with an array field 'ids'",
                             name, l->lineno);
    } else {
        size_t n = json_array_size(a), i;
        json_t *v;
        ids = malloc((n ? n : 1) * sizeof *ids);
        if (!ids) l->code = sw_err_set(SW_ENOMEM, "out of memory");
        json_array_foreach(a, i, v) {
            if (l->code < 0) break;
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) > INT32_MAX) {
                l->code = sw_err_set(SW_EFORMAT, "%s:%ld: field 'ids[%zu]': expected a token id",
                                     name, l->lineno, i);
                break;
            }
            ids[i] = (int32_t)json_integer_value(v);
        }
        char *text = NULL;
        size_t len = 0;
        if (l->code == 0) l->code = sw_tokenizer_decode(tok, ids, n, skip, &text, &len);
        if (l->code == 0) {
            json_t *o = json_object();
            json_t *sv = json_stringn(text, len);
            if (!sv) sv = json_string(""); /* decode always yields UTF-8; keep the line anyway */
            json_object_set_new(o, "text", sv);
            l->out = json_dumps(o, JSON_COMPACT);
            json_decref(o);
            if (!l->out) l->code = sw_err_set(SW_ENOMEM, "out of memory");
        }
        free(text);
    }
    if (l->code < 0) l->err = strdup(sw_err_msg());
    free(ids);
    json_decref(j);
}

static int run(const struct tok_opts *o, const char *src, int detok) {
    if (!o->tokenizer) return sw_err_set(SW_EUSAGE, "--tokenizer is required");
    if (o->num_proc > 0)
        sw_parallel_set_threads((int)o->num_proc);
    else
        sw_parallel_init();
    struct sw_tokenizer *tok;
    int rc = sw_tokenizer_load(o->tokenizer, &tok);
    if (rc < 0) return sw_err_wrap(rc, "--tokenizer '%s'", o->tokenizer);
    int is_stdin = !src || !strcmp(src, "-");
    const char *name = is_stdin ? "<stdin>" : src;
    FILE *in = is_stdin ? stdin : fopen(src, "r");
    if (!in) {
        sw_tokenizer_free(tok);
        return sw_err_errno("cannot open '%s'", src);
    }
    struct line *lines = calloc(BLOCK, sizeof *lines);
    if (!lines) rc = sw_err_set(SW_ENOMEM, "out of memory");
    long lineno = 0;
    int eof = 0;
    while (rc == 0 && !eof) {
        size_t n = 0;
        while (n < BLOCK) {
            char *buf = NULL;
            size_t cap = 0;
            ssize_t len = getline(&buf, &cap, in);
            if (len < 0) {
                free(buf);
                if (ferror(in)) rc = sw_err_errno("%s: read", name);
                eof = 1;
                break;
            }
            lineno++;
            size_t k = (size_t)len;
            while (k && (buf[k - 1] == '\n' || buf[k - 1] == '\r'))
                buf[--k] = '\0';
            size_t b = 0;
            while (b < k && (buf[b] == ' ' || buf[b] == '\t'))
                b++;
            if (b == k) { /* blank line */
                free(buf);
                continue;
            }
            lines[n].text = buf;
            lines[n].lineno = lineno;
            n++;
        }
        int nt = sw_parallel_threads();
#pragma omp parallel for schedule(dynamic, 16) num_threads(nt)
        for (long i = 0; i < (long)n; i++) {
            if (detok)
                do_detokenize(tok, o->skip_special_tokens, name, &lines[i]);
            else
                do_tokenize(tok, o->add_special_tokens, name, &lines[i]);
        }
        for (size_t i = 0; i < n; i++) {
            if (rc == 0 && lines[i].code < 0) rc = sw_err_set(lines[i].code, "%s", lines[i].err);
            if (rc == 0) {
                errno = 0;
                if (fputs(lines[i].out, stdout) == EOF || fputc('\n', stdout) == EOF) {
                    rc = errno == EPIPE ? SW_EPIPE : sw_err_errno("cannot write to stdout");
                }
            }
            free(lines[i].text);
            free(lines[i].out);
            free(lines[i].err);
            memset(&lines[i], 0, sizeof lines[i]);
        }
    }
    if (rc == 0 && fflush(stdout) != 0)
        rc = errno == EPIPE ? SW_EPIPE : sw_err_errno("cannot write to stdout");
    free(lines);
    if (!is_stdin) fclose(in);
    sw_tokenizer_free(tok);
    return rc;
}

static int main_common(const struct sw_cli *cli, const struct sw_opt *table, int argc, char **argv,
                       int detok) {
    struct tok_opts o;
    memset(&o, 0, sizeof o);
    char **pos = NULL;
    int npos = 0;
    int rc = sw_cli_parse(cli, &o, argc, argv, &pos, &npos);
    if (rc == 0)
        rc = sw_hub_resolve_arg(&o.tokenizer, SW_HUB_NEED_TOKENIZER, o.use_hf, o.model_revision,
                                o.hub_token);
    if (rc == 0) rc = run(&o, npos ? pos[0] : NULL, detok);
    if (rc == 1) rc = 0;
    free(pos);
    sw_config_release(table, &o);
    return rc;
}

int sw_pack_tokenize_main(int argc, char **argv) {
    return main_common(&tokenize_cli, tokenize_table, argc, argv, 0);
}

int sw_pack_detokenize_main(int argc, char **argv) {
    return main_common(&detokenize_cli, detokenize_table, argc, argv, 1);
}
