/* sw_bench_yaml — a benchmark defined by a file: a YAML task spec in the spirit of
 * lm-evaluation-harness's task YAMLs, read with libyaml, so that a new benchmark needs no code.
 *
 *   task: my_quiz                      # name in the report (default: the file name)
 *   output_type: multiple_choice       # or generate_until
 *   test_file: quiz_test.csv           # .csv with a header or .jsonl; relative paths are looked
 *   fewshot_file: quiz_dev.csv         #   up in --dataset_dir, else next to the YAML file
 *   num_fewshot: 2                     # first n rows of fewshot_file (--num_fewshot overrides)
 *   description: "Quiz.\n\n"           # may use {{fields}} of the row
 *   doc_to_text: "{{question}}\nAnswer:"
 *   doc_to_choice: ["A", "B", "C", "D"] # a list, or the name of a list field ("choices")
 *   doc_to_target: answer              # field holding a choice, a letter of it or a 0-based index
 *   target_delimiter: " "
 *   fewshot_delimiter: "\n\n"
 *   metric: acc                        # acc (acc_norm reported too) | exact_match
 *   generation_kwargs: {until: ["\n\n"], max_gen_toks: 64}
 *
 * Unknown keys are errors naming the file and line (a typo must not silently change a score).
 * The prompt is built as lm-eval builds it: description + Σ shots (text + target_delimiter +
 * answer + fewshot_delimiter) + text. The reader is fuzzed (test/fuzz/fuzz_eval_yaml.c). */
#include "sw_bench.h"

#include "sw_err.h"
#include "sw_obuf.h"
#include "sw_io.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAXC 64

struct spec {
    char *task, *output_type, *test_file, *fewshot_file, *description, *doc_to_text,
        *doc_to_choice_field, *doc_to_target, *target_delimiter, *fewshot_delimiter, *metric;
    char *choices[MAXC];
    int nchoices;
    int64_t num_fewshot, max_gen_toks;
    char *until[16];
    int nuntil;
};

static void spec_release(struct spec *s) {
    free(s->task), free(s->output_type), free(s->test_file), free(s->fewshot_file);
    free(s->description), free(s->doc_to_text), free(s->doc_to_choice_field);
    free(s->doc_to_target), free(s->target_delimiter), free(s->fewshot_delimiter), free(s->metric);
    for (int i = 0; i < s->nchoices; i++)
        free(s->choices[i]);
    for (int i = 0; i < s->nuntil; i++)
        free(s->until[i]);
}

static int scalar(yaml_document_t *doc, yaml_node_t *n, const char *path, const char *key,
                  char **out) {
    if (!n || n->type != YAML_SCALAR_NODE)
        return sw_err_set(SW_EFORMAT, "%s:%zu: '%s' must be a string", path,
                          n ? n->start_mark.line + 1 : 0, key);
    (void)doc;
    free(*out);
    *out = strndup((const char *)n->data.scalar.value, n->data.scalar.length);
    if (!*out) return sw_err_set(SW_ENOMEM, "out of memory");
    return 0;
}

static int integer(yaml_node_t *n, const char *path, const char *key, int64_t lo, int64_t hi,
                   int64_t *out) {
    if (!n || n->type != YAML_SCALAR_NODE)
        return sw_err_set(SW_EFORMAT, "%s:%zu: '%s' must be an integer", path,
                          n ? n->start_mark.line + 1 : 0, key);
    char buf[32];
    size_t l = n->data.scalar.length < sizeof buf - 1 ? n->data.scalar.length : sizeof buf - 1;
    memcpy(buf, n->data.scalar.value, l);
    buf[l] = 0;
    char *e;
    long long v = strtoll(buf, &e, 10);
    if (e == buf || *e || v < lo || v > hi)
        return sw_err_set(SW_EFORMAT, "%s:%zu: '%s' must be an integer in [%lld, %lld]", path,
                          n->start_mark.line + 1, key, (long long)lo, (long long)hi);
    *out = v;
    return 0;
}

static int str_list(yaml_document_t *doc, yaml_node_t *n, const char *path, const char *key,
                    char **out, int max, int *count) {
    if (n->type != YAML_SEQUENCE_NODE)
        return sw_err_set(SW_EFORMAT, "%s:%zu: '%s' must be a list", path, n->start_mark.line + 1,
                          key);
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        if (*count >= max)
            return sw_err_set(SW_EFORMAT, "%s:%zu: '%s' has more than %d entries", path,
                              n->start_mark.line + 1, key, max);
        char *s = NULL;
        SW_TRY(scalar(doc, yaml_document_get_node(doc, *it), path, key, &s));
        out[(*count)++] = s;
    }
    return 0;
}

static int parse_spec(const char *path, const char *text, size_t len, struct spec *s) {
    yaml_parser_t p;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&p)) return sw_err_set(SW_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    if (!yaml_parser_load(&p, &doc)) {
        int rc = sw_err_set(SW_EFORMAT, "%s:%zu: %s", path, p.problem_mark.line + 1,
                            p.problem ? p.problem : "invalid YAML");
        yaml_parser_delete(&p);
        return rc;
    }
    int rc = 0;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || root->type != YAML_MAPPING_NODE) {
        rc = sw_err_set(SW_EFORMAT, "%s: a task spec is a YAML mapping (task:, doc_to_text:, ...)",
                        path);
        goto out;
    }
    for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
         rc == 0 && pr < root->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = yaml_document_get_node(&doc, pr->key);
        yaml_node_t *v = yaml_document_get_node(&doc, pr->value);
        if (!k || k->type != YAML_SCALAR_NODE || !v) {
            rc = sw_err_set(SW_EFORMAT, "%s: keys must be strings", path);
            break;
        }
        const char *key = (const char *)k->data.scalar.value;
        size_t line = k->start_mark.line + 1;
        if (!strcmp(key, "task"))
            rc = scalar(&doc, v, path, key, &s->task);
        else if (!strcmp(key, "output_type"))
            rc = scalar(&doc, v, path, key, &s->output_type);
        else if (!strcmp(key, "test_file"))
            rc = scalar(&doc, v, path, key, &s->test_file);
        else if (!strcmp(key, "fewshot_file"))
            rc = scalar(&doc, v, path, key, &s->fewshot_file);
        else if (!strcmp(key, "description"))
            rc = scalar(&doc, v, path, key, &s->description);
        else if (!strcmp(key, "doc_to_text"))
            rc = scalar(&doc, v, path, key, &s->doc_to_text);
        else if (!strcmp(key, "doc_to_target"))
            rc = scalar(&doc, v, path, key, &s->doc_to_target);
        else if (!strcmp(key, "target_delimiter"))
            rc = scalar(&doc, v, path, key, &s->target_delimiter);
        else if (!strcmp(key, "fewshot_delimiter"))
            rc = scalar(&doc, v, path, key, &s->fewshot_delimiter);
        else if (!strcmp(key, "metric"))
            rc = scalar(&doc, v, path, key, &s->metric);
        else if (!strcmp(key, "num_fewshot"))
            rc = integer(v, path, key, 0, 1000, &s->num_fewshot);
        else if (!strcmp(key, "doc_to_choice")) {
            if (v->type == YAML_SCALAR_NODE)
                rc = scalar(&doc, v, path, key, &s->doc_to_choice_field);
            else
                rc = str_list(&doc, v, path, key, s->choices, MAXC, &s->nchoices);
        } else if (!strcmp(key, "generation_kwargs")) {
            if (v->type != YAML_MAPPING_NODE) {
                rc = sw_err_set(SW_EFORMAT, "%s:%zu: generation_kwargs must be a mapping", path,
                                line);
                break;
            }
            for (yaml_node_pair_t *g = v->data.mapping.pairs.start;
                 rc == 0 && g < v->data.mapping.pairs.top; g++) {
                yaml_node_t *gk = yaml_document_get_node(&doc, g->key);
                yaml_node_t *gv = yaml_document_get_node(&doc, g->value);
                if (!gk || gk->type != YAML_SCALAR_NODE || !gv) {
                    rc = sw_err_set(SW_EFORMAT, "%s: keys must be strings", path);
                    break;
                }
                const char *n = (const char *)gk->data.scalar.value;
                if (!strcmp(n, "until"))
                    rc = str_list(&doc, gv, path, n, s->until, 16, &s->nuntil);
                else if (!strcmp(n, "max_gen_toks"))
                    rc = integer(gv, path, n, 1, 1 << 20, &s->max_gen_toks);
                else if (!strcmp(n, "do_sample") || !strcmp(n, "temperature"))
                    continue;
                else
                    rc = sw_err_set(SW_EFORMAT,
                                    "%s:%zu: unknown generation_kwargs key '%s' "
                                    "(until, max_gen_toks; decoding is greedy)",
                                    path, gk->start_mark.line + 1, n);
            }
        } else
            rc = sw_err_set(SW_EFORMAT,
                            "%s:%zu: unknown key '%s' (task, output_type, test_file, "
                            "fewshot_file, num_fewshot, description, doc_to_text, doc_to_choice, "
                            "doc_to_target, target_delimiter, fewshot_delimiter, metric, "
                            "generation_kwargs)",
                            path, line, key);
    }
out:
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);
    return rc;
}

/* Rows of a CSV (with header) or JSON lines file as documents. */
static int read_docs(const char *path, struct sw_doc **docs, size_t *n) {
    *docs = NULL;
    *n = 0;
    size_t l = strlen(path);
    int rc = 0;
    if (l > 4 && strcmp(path + l - 4, ".csv") == 0) {
        struct sw_csv *c = NULL;
        SW_TRY(sw_csv_read(path, &c));
        if (c->nrows < 1) {
            sw_csv_free(c);
            return sw_err_set(SW_EFORMAT, "%s: empty (a header row is needed)", path);
        }
        *docs = calloc(c->nrows, sizeof(struct sw_doc));
        if (!*docs) rc = sw_err_set(SW_ENOMEM, "out of memory");
        const struct sw_csv_row *h = &c->rows[0];
        for (size_t r = 1; rc == 0 && r < c->nrows; r++) {
            if (c->rows[r].nf != h->nf) {
                rc = sw_err_set(SW_EFORMAT,
                                "%s:%lld: malformed row: %zu fields, the header has "
                                "%zu",
                                path, (long long)c->rows[r].line, c->rows[r].nf, h->nf);
                break;
            }
            struct sw_doc *d = &(*docs)[(*n)++];
            d->line = c->rows[r].line;
            for (size_t f = 0; rc == 0 && f < h->nf; f++)
                rc = sw_doc_set(d, h->f[f], c->rows[r].f[f]);
        }
        sw_csv_free(c);
        return rc;
    }
    char *data = NULL;
    size_t len = 0;
    SW_TRY(sw_read_file(path, &data, &len, 0));
    size_t cap = 0;
    int64_t line = 0;
    for (size_t i = 0; rc == 0 && i < len;) {
        size_t e = i;
        while (e < len && data[e] != '\n')
            e++;
        line++;
        size_t s = i;
        while (s < e && (data[s] == ' ' || data[s] == '\r' || data[s] == '\t'))
            s++;
        if (s < e) {
            if (*n == cap) {
                cap = cap ? 2 * cap : 64;
                struct sw_doc *d = realloc(*docs, cap * sizeof(*d));
                if (!d) {
                    rc = sw_err_set(SW_ENOMEM, "out of memory");
                    break;
                }
                *docs = d;
            }
            struct sw_doc *d = &(*docs)[*n];
            memset(d, 0, sizeof *d);
            (*n)++;
            char where[4200];
            snprintf(where, sizeof where, "%s:%lld", path, (long long)line);
            rc = sw_doc_from_json(d, data + s, e - s, where);
            d->line = line;
        }
        i = e + 1;
    }
    free(data);
    return rc;
}

static void free_docs(struct sw_doc *d, size_t n) {
    for (size_t i = 0; i < n; i++)
        sw_doc_release(&d[i]);
    free(d);
}

/* Choices of a row: the literal list, or the list field. */
static int doc_choices(const struct spec *s, const struct sw_doc *d, const char *path,
                       const char **ch, int *nc) {
    *nc = 0;
    if (!s->doc_to_choice_field) {
        for (int i = 0; i < s->nchoices; i++)
            ch[(*nc)++] = s->choices[i];
        return 0;
    }
    char key[300];
    for (int i = 0; i < MAXC; i++) {
        snprintf(key, sizeof key, "%s[%d]", s->doc_to_choice_field, i);
        const char *v = sw_doc_get(d, key);
        if (!v) break;
        ch[(*nc)++] = v;
    }
    if (*nc == 0)
        return sw_err_set(SW_EFORMAT, "%s:%lld: no list field '%s' for doc_to_choice", path,
                          (long long)d->line, s->doc_to_choice_field);
    return 0;
}

/* doc_to_target: the field's value as a choice, a letter A.. of a choice, or an index. */
static int doc_gold(const struct spec *s, const struct sw_doc *d, const char *path, const char **ch,
                    int nc, int *gold, const char **text) {
    const char *v = sw_doc_get(d, s->doc_to_target);
    if (!v)
        return sw_err_set(SW_EFORMAT, "%s:%lld: missing field '%s' (doc_to_target)", path,
                          (long long)d->line, s->doc_to_target);
    *text = v;
    *gold = -1;
    if (nc == 0) return 0;
    for (int i = 0; i < nc; i++)
        if (strcmp(ch[i], v) == 0) *gold = i;
    if (*gold < 0 && v[0] >= 'A' && v[0] < 'A' + nc && v[1] == 0) *gold = v[0] - 'A';
    if (*gold < 0) {
        char *e;
        long x = strtol(v, &e, 10);
        if (e != v && !*e && x >= 0 && x < nc) *gold = (int)x;
    }
    if (*gold < 0)
        return sw_err_set(SW_EFORMAT,
                          "%s:%lld: answer '%s' is out of range (not a choice, a "
                          "letter A-%c or an index 0-%d)",
                          path, (long long)d->line, v, 'A' + nc - 1, nc - 1);
    return 0;
}

static char *resolve(const char *base_dir, const char *yaml_path, const char *f) {
    if (f[0] == '/') return strdup(f);
    if (base_dir) {
        char *p = sw_path_join(base_dir, f);
        if (p && sw_path_is_dir(p) <= 0) {
            FILE *fp = fopen(p, "rb");
            if (fp) {
                fclose(fp);
                return p;
            }
        }
        free(p);
    }
    const char *sl = strrchr(yaml_path, '/');
    if (!sl) return strdup(f);
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", (int)(sl - yaml_path), yaml_path);
    return sw_path_join(dir, f);
}

int sw_bench_yaml_load(const char *path, const char *text, size_t len,
                       const struct sw_bench_task_opts *o, struct sw_bench_task **out) {
    *out = NULL;
    struct spec s;
    memset(&s, 0, sizeof s);
    s.num_fewshot = 0;
    s.max_gen_toks = 256;
    struct sw_doc *test = NULL, *shots = NULL;
    size_t ntest = 0, nshots = 0;
    struct sw_bench_task *t = NULL;
    char *tp = NULL, *fp = NULL;
    int rc = parse_spec(path, text, len, &s);
    if (rc < 0) goto out;
    if (!s.test_file || !s.doc_to_text || !s.doc_to_target) {
        rc = sw_err_set(SW_EFORMAT, "%s: test_file, doc_to_text and doc_to_target are required",
                        path);
        goto out;
    }
    int gen = s.output_type && strcmp(s.output_type, "generate_until") == 0;
    if (s.output_type && !gen && strcmp(s.output_type, "multiple_choice") != 0) {
        rc = sw_err_set(SW_EFORMAT, "%s: output_type '%s' (multiple_choice or generate_until)",
                        path, s.output_type);
        goto out;
    }
    if (!gen && !s.nchoices && !s.doc_to_choice_field) {
        rc = sw_err_set(SW_EFORMAT, "%s: a multiple_choice task needs doc_to_choice", path);
        goto out;
    }
    if (s.metric && strcmp(s.metric, "acc") && strcmp(s.metric, "acc_norm") &&
        strcmp(s.metric, "exact_match")) {
        rc = sw_err_set(SW_EFORMAT, "%s: metric '%s' (acc, acc_norm or exact_match)", path,
                        s.metric);
        goto out;
    }
    int64_t k = o->num_fewshot >= 0 ? o->num_fewshot : s.num_fewshot;
    const char *tdel = s.target_delimiter ? s.target_delimiter : " ";
    const char *fdel = s.fewshot_delimiter ? s.fewshot_delimiter : "\n\n";
    tp = resolve(o->dir, path, s.test_file);
    if (!tp) {
        rc = sw_err_set(SW_ENOMEM, "out of memory");
        goto out;
    }
    FILE *probe = fopen(tp, "rb");
    if (!probe) {
        rc = sw_err_set(SW_ENOTFOUND, "%s: missing split: test_file '%s' does not exist", path, tp);
        goto out;
    }
    fclose(probe);
    if ((rc = read_docs(tp, &test, &ntest)) < 0) goto out;
    if (k > 0) {
        if (!s.fewshot_file) {
            rc = sw_err_set(SW_EINVAL, "%s: %lld-shot needs fewshot_file", path, (long long)k);
            goto out;
        }
        fp = resolve(o->dir, path, s.fewshot_file);
        probe = fp ? fopen(fp, "rb") : NULL;
        if (!probe) {
            rc = sw_err_set(SW_ENOTFOUND, "%s: missing split: fewshot_file '%s' does not exist",
                            path, fp ? fp : s.fewshot_file);
            goto out;
        }
        fclose(probe);
        if ((rc = read_docs(fp, &shots, &nshots)) < 0) goto out;
        if ((int64_t)nshots < k) {
            rc = sw_err_set(SW_EINVAL, "%s: %lld few-shot examples requested but it has %zu rows",
                            fp, (long long)k, nshots);
            goto out;
        }
    }
    t = calloc(1, sizeof(*t));
    if (!t) {
        rc = sw_err_set(SW_ENOMEM, "out of memory");
        goto out;
    }
    if (s.task)
        t->name = strdup(s.task);
    else {
        const char *b = strrchr(path, '/');
        b = b ? b + 1 : path;
        t->name = strndup(b, strcspn(b, "."));
    }
    t->kind = gen ? SW_BENCH_GEN : SW_BENCH_MC;
    t->has_acc_norm = !gen;
    t->gen_metric = SW_GEN_EXACT;
    t->max_gen_toks = s.max_gen_toks;
    t->num_fewshot = k;
    for (int i = 0; i < s.nuntil; i++) {
        t->until = realloc(t->until, (size_t)(i + 1) * sizeof(char *));
        if (!t->until) {
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            goto out;
        }
        t->until[i] = s.until[i], s.until[i] = NULL;
        t->nuntil++;
    }
    s.nuntil = 0;
    int subj = sw_bench_task_subject(t, t->name, NULL);
    if (subj < 0) {
        rc = subj;
        goto out;
    }
    /* The shots: the same for every row (first n). */
    struct sw_obuf sh = {0};
    rc = sw_obuf_str(&sh, "");
    for (int64_t i = 0; rc == 0 && i < k; i++) {
        const char *ch[MAXC], *ans;
        int nc = 0, g;
        char *q = NULL;
        if (!gen) rc = doc_choices(&s, &shots[i], fp, ch, &nc);
        if (rc == 0) rc = doc_gold(&s, &shots[i], fp, ch, nc, &g, &ans);
        if (rc == 0) rc = sw_doc_render(&shots[i], s.doc_to_text, fp, &q);
        if (rc == 0) rc = sw_obuf_str(&sh, q);
        if (rc == 0) rc = sw_obuf_str(&sh, tdel);
        if (rc == 0) rc = sw_obuf_str(&sh, gen ? ans : ch[g]);
        if (rc == 0) rc = sw_obuf_str(&sh, fdel);
        free(q);
    }
    size_t n = ntest;
    if (o->limit > 0 && (size_t)o->limit < n) n = (size_t)o->limit;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *ch[MAXC], *ans;
        int nc = 0, g = -1;
        char *q = NULL, *desc = NULL;
        if (!gen) rc = doc_choices(&s, &test[i], tp, ch, &nc);
        if (rc == 0) rc = doc_gold(&s, &test[i], tp, ch, nc, &g, &ans);
        if (rc == 0) rc = sw_doc_render(&test[i], s.doc_to_text, tp, &q);
        if (rc == 0) rc = sw_doc_render(&test[i], s.description ? s.description : "", path, &desc);
        struct sw_obuf user = {0}, prompt = {0};
        if (rc == 0) rc = sw_obuf_str(&user, sh.p);
        if (rc == 0) rc = sw_obuf_str(&user, q);
        if (rc == 0) rc = sw_obuf_str(&prompt, desc);
        if (rc == 0) rc = sw_obuf_str(&prompt, user.p);
        char *co[MAXC] = {0};
        for (int c = 0; rc == 0 && c < nc; c++) {
            co[c] = malloc(strlen(tdel) + strlen(ch[c]) + 1);
            if (!co[c])
                rc = sw_err_set(SW_ENOMEM, "out of memory");
            else
                strcat(strcpy(co[c], tdel), ch[c]);
        }
        if (rc == 0) {
            struct sw_bench_item it = {.subject = subj,
                                       .index = (int64_t)i,
                                       .prompt = prompt.p,
                                       .system = desc && *desc ? desc : NULL,
                                       .user = user.p,
                                       .nchoices = nc,
                                       .choices = (char **)ch,
                                       .conts = co,
                                       .gold = g,
                                       .target = gen ? (char *)ans : (char *)ch[g]};
            rc = sw_bench_task_add(t, &it);
        }
        for (int c = 0; c < nc; c++)
            free(co[c]);
        free(q), free(desc), free(user.p), free(prompt.p);
    }
    free(sh.p);
    if (rc == 0 && t->nitems == 0) rc = sw_err_set(SW_ENOTFOUND, "%s: no rows in '%s'", path, tp);
out:
    free_docs(test, ntest), free_docs(shots, nshots);
    free(tp), free(fp);
    spec_release(&s);
    if (rc < 0) {
        sw_bench_task_free(t);
        return rc;
    }
    *out = t;
    return 0;
}
