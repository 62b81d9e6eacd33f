/* sw_bench_tasks — the built-in benchmarks: their file layouts and prompts, exactly as
 * lm-evaluation-harness 0.4 builds them (task YAMLs mmlu/default, ceval, cmmlu, gsm8k,
 * gsm8k-cot, arc, hellaswag):
 *
 *   prompt = description + Σ_shots (text(shot) + " " + answer(shot) + "\n\n") + text(doc)
 *
 * with the continuations " " + choice for multiple choice. For a chat template the harness puts
 * the description in a system message and the shots + question in one user message; item->system
 * and item->user hold those.
 *
 * Layouts (docs/eval.md lists them with examples):
 *   mmlu     DIR/dev/<s>_dev.csv + DIR/test/<s>_test.csv, either the original files (no header,
 *            6 fields, answer letter) or the Hugging Face export (header
 *            question,choice0,choice1,choice2,choice3,answer; answer 0-based). Detected per file.
 *   ceval    DIR/dev/<s>_dev.csv + DIR/val/<s>_val.csv (id,question,A,B,C,D,answer[,explanation])
 *   cmmlu    DIR/dev/<s>.csv + DIR/test/<s>.csv (,Question,A,B,C,D,Answer)
 *   custom_mcq  ms-swift's CEval-style custom set: DIR/<s>_dev.csv (optional) + DIR/<s>_val.csv
 *   gsm8k, gsm8k_cot  DIR/test.jsonl (+ DIR/train.jsonl[.gz] for gsm8k's shots)
 *   arc      DIR/test.jsonl (+ train.jsonl): {question, choices: {text, label}, answerKey}
 *   hellaswag DIR/validation.jsonl (+ train.jsonl): {activity_label, ctx_a, ctx_b, endings, label}
 *   general_qa DIR/<s>.jsonl: {query, response}
 *   ppl      DIR/<s>.jsonl ({text}) or DIR/<s>.txt (one document per file)
 */
#include "sw_bench.h"

#include "sw_err.h"
#include "sw_obuf.h"
#include "sw_io.h"
#include "sw_log.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_CHOICES 64

/* ---- task object --------------------------------------------------------------------------- */

static void item_release(struct sw_bench_item *it) {
    free(it->prompt), free(it->system), free(it->user), free(it->target);
    for (int c = 0; c < it->nchoices; c++) {
        if (it->choices) free(it->choices[c]);
        if (it->conts) free(it->conts[c]);
    }
    free(it->choices), free(it->conts);
}

void sw_bench_task_free(struct sw_bench_task *t) {
    if (!t) return;
    for (size_t i = 0; i < t->nitems; i++)
        item_release(&t->items[i]);
    free(t->items);
    for (size_t i = 0; i < t->nsubjects; i++)
        free(t->subjects[i].name), free(t->subjects[i].group);
    free(t->subjects);
    for (int i = 0; i < t->nuntil; i++)
        free(t->until[i]);
    free(t->until);
    free(t->strict_regex);
    free(t->name);
    free(t);
}

static char *dupn(const char *s) {
    return s ? strdup(s) : NULL;
}

int sw_bench_task_add(struct sw_bench_task *t, const struct sw_bench_item *it) {
    if (t->nitems == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 256;
        struct sw_bench_item *p = realloc(t->items, nc * sizeof(*p));
        if (!p) return sw_err_set(SW_ENOMEM, "out of memory");
        t->items = p, t->cap = nc;
    }
    struct sw_bench_item *d = &t->items[t->nitems];
    memset(d, 0, sizeof *d);
    d->subject = it->subject;
    d->index = it->index;
    d->gold = it->gold;
    d->prompt = dupn(it->prompt), d->system = dupn(it->system), d->user = dupn(it->user);
    d->target = dupn(it->target);
    int bad = (it->prompt && !d->prompt) || (it->system && !d->system) || (it->user && !d->user) ||
              (it->target && !d->target);
    if (it->nchoices > 0) {
        d->choices = calloc((size_t)it->nchoices, sizeof(char *));
        d->conts = calloc((size_t)it->nchoices, sizeof(char *));
        if (!d->choices || !d->conts)
            bad = 1;
        else {
            d->nchoices = it->nchoices;
            for (int c = 0; c < it->nchoices; c++) {
                d->choices[c] = strdup(it->choices[c]);
                d->conts[c] = strdup(it->conts[c]);
                if (!d->choices[c] || !d->conts[c]) bad = 1;
            }
        }
    }
    if (bad) {
        item_release(d);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    t->nitems++;
    return 0;
}

int sw_bench_task_subject(struct sw_bench_task *t, const char *name, const char *group) {
    struct sw_bench_subject *p = realloc(t->subjects, (t->nsubjects + 1) * sizeof(*p));
    if (!p) return sw_err_set(SW_ENOMEM, "out of memory");
    t->subjects = p;
    p[t->nsubjects].name = strdup(name);
    p[t->nsubjects].group = dupn(group);
    if (!p[t->nsubjects].name || (group && !p[t->nsubjects].group))
        return sw_err_set(SW_ENOMEM, "out of memory");
    t->nsubjects++;
    return (int)t->nsubjects - 1;
}

/* ---- helpers ------------------------------------------------------------------------------- */

/* Python's s.strip() as a new string. */
static char *strip_dup(const char *s) {
    size_t n = strlen(s);
    sw_bench_strip(&s, &n);
    char *r = malloc(n + 1);
    if (r) memcpy(r, s, n), r[n] = '\0';
    return r;
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Sorted names of the files in dir ending with suffix, the suffix removed. */
static int list_subjects(const char *dir, const char *suffix, char ***out, size_t *n) {
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return sw_err_errno("cannot open folder '%s'", dir);
    size_t sl = strlen(suffix), cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l <= sl || strcmp(e->d_name + l - sl, suffix) != 0 || e->d_name[0] == '.') continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            char **p = realloc(*out, cap * sizeof(char *));
            if (!p) {
                rc = sw_err_set(SW_ENOMEM, "out of memory");
                break;
            }
            *out = p;
        }
        (*out)[*n] = strndup(e->d_name, l - sl);
        if (!(*out)[*n]) {
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (rc == 0)
        for (size_t i = 1; i < *n; i++) /* insertion sort: a few dozen names */
            for (size_t j = i; j > 0 && strcmp((*out)[j - 1], (*out)[j]) > 0; j--) {
                char *t = (*out)[j];
                (*out)[j] = (*out)[j - 1], (*out)[j - 1] = t;
            }
    return rc;
}

static void free_list(char **l, size_t n) {
    for (size_t i = 0; l && i < n; i++)
        free(l[i]);
    free(l);
}

/* The subjects to run: --subjects (validated later by the file lookups) or every file found. */
static int pick_subjects(const char *want, const char *dir, const char *suffix, char ***out,
                         size_t *n) {
    if (!want || !*want) {
        SW_TRY(list_subjects(dir, suffix, out, n));
        if (*n == 0)
            return sw_err_set(SW_ENOTFOUND,
                              "%s: no '*%s' files (is --dataset_dir the right "
                              "folder?)",
                              dir, suffix);
        return 0;
    }
    *out = NULL;
    *n = 0;
    const char *p = want;
    while (*p) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        if (l > 0) {
            char **q = realloc(*out, (*n + 1) * sizeof(char *));
            if (!q) return sw_err_set(SW_ENOMEM, "out of memory");
            *out = q;
            q[*n] = strndup(p, l);
            if (!q[*n]) return sw_err_set(SW_ENOMEM, "out of memory");
            (*n)++;
        }
        p += l + (c ? 1 : 0);
    }
    return 0;
}

/* A multiple-choice question as the readers see it. */
struct mcq {
    const char *q;
    const char *c[MAX_CHOICES];
    int nc;
    int gold;
    int64_t line;
};

static const char LETTERS[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/* Answer letter A.. (exactly one letter, surrounding spaces allowed) → index, or -1. */
static int letter_index(const char *s, int nc) {
    while (*s == ' ')
        s++;
    if (!s[0]) return -1;
    const char *e = s + 1;
    while (*e == ' ')
        e++;
    if (*e) return -1;
    if (s[0] < 'A' || s[0] >= 'A' + nc) return -1;
    return s[0] - 'A';
}

static int digit_index(const char *s, int nc) {
    char *end;
    while (*s == ' ')
        s++;
    long v = strtol(s, &end, 10);
    while (*end == ' ')
        end++;
    if (end == s || *end || v < 0 || v >= nc) return -1;
    return (int)v;
}

/* ---- CSV multiple choice (MMLU, C-Eval, CMMLU, custom) ------------------------------------- */

enum csv_layout { L_MMLU_ORIG, L_MMLU_HF, L_CEVAL, L_CMMLU };

struct mcq_file {
    struct sw_csv *csv;
    struct mcq *rows;
    size_t n;
};

static void mcq_file_release(struct mcq_file *f) {
    free(f->rows);
    sw_csv_free(f->csv);
    memset(f, 0, sizeof *f);
}

static int header_is(const struct sw_csv_row *r, const char *const *names, size_t n) {
    if (r->nf != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(r->f[i], names[i]) != 0) return 0;
    return 1;
}

/* Read one MCQ CSV of the given family (MMLU files are detected as original or HF export). */
static int read_mcq_csv(const char *path, enum csv_layout layout, struct mcq_file *out) {
    memset(out, 0, sizeof *out);
    if (!file_exists(path))
        return sw_err_set(SW_ENOTFOUND, "missing split: '%s' does not exist", path);
    SW_TRY(sw_csv_read(path, &out->csv));
    struct sw_csv *c = out->csv;
    size_t first = 0;
    static const char *const hf[] = {"question", "choice0", "choice1",
                                     "choice2",  "choice3", "answer"};
    static const char *const ce[] = {"id", "question", "A", "B", "C", "D", "answer"};
    static const char *const cex[] = {"id", "question", "A",      "B",
                                      "C",  "D",        "answer", "explanation"};
    static const char *const cm[] = {"", "Question", "A", "B", "C", "D", "Answer"};
    size_t want_nf = 6;
    if (layout == L_MMLU_ORIG || layout == L_MMLU_HF) {
        layout = c->nrows > 0 && header_is(&c->rows[0], hf, 6) ? L_MMLU_HF : L_MMLU_ORIG;
        first = layout == L_MMLU_HF;
    } else if (layout == L_CEVAL) {
        if (c->nrows == 0 || !(header_is(&c->rows[0], ce, 7) || header_is(&c->rows[0], cex, 8)))
            return sw_err_set(SW_EFORMAT,
                              "%s:1: expected the C-Eval header "
                              "'id,question,A,B,C,D,answer[,explanation]'",
                              path);
        want_nf = c->rows[0].nf;
        first = 1;
    } else {
        if (c->nrows == 0 || !header_is(&c->rows[0], cm, 7))
            return sw_err_set(SW_EFORMAT,
                              "%s:1: expected the CMMLU header "
                              "',Question,A,B,C,D,Answer'",
                              path);
        want_nf = 7;
        first = 1;
    }
    if (layout == L_MMLU_ORIG || layout == L_MMLU_HF) want_nf = 6;
    out->rows = calloc(c->nrows ? c->nrows : 1, sizeof(struct mcq));
    if (!out->rows) return sw_err_set(SW_ENOMEM, "out of memory");
    for (size_t i = first; i < c->nrows; i++) {
        const struct sw_csv_row *r = &c->rows[i];
        if (r->nf != want_nf)
            return sw_err_set(SW_EFORMAT, "%s:%lld: malformed row: %zu fields, expected %zu", path,
                              (long long)r->line, r->nf, want_nf);
        struct mcq *m = &out->rows[out->n++];
        m->line = r->line;
        m->nc = 4;
        const char *ans;
        if (layout == L_MMLU_ORIG || layout == L_MMLU_HF) {
            m->q = r->f[0];
            for (int k = 0; k < 4; k++)
                m->c[k] = r->f[1 + k];
            ans = r->f[5];
        } else {
            m->q = r->f[1];
            for (int k = 0; k < 4; k++)
                m->c[k] = r->f[2 + k];
            ans = r->f[6];
        }
        m->gold = layout == L_MMLU_HF ? digit_index(ans, 4) : letter_index(ans, 4);
        if (m->gold < 0)
            return sw_err_set(SW_EFORMAT, "%s:%lld: answer '%s' is out of range (expected %s)",
                              path, (long long)r->line, ans,
                              layout == L_MMLU_HF ? "0, 1, 2 or 3" : "A, B, C or D");
    }
    return 0;
}

/* text(doc) of the MMLU / C-Eval / CMMLU templates: question.strip() + "\nA. " + A ... + tail. */
static int mcq_text(const struct mcq *m, const char *tail, struct sw_obuf *b) {
    char *q = strip_dup(m->q);
    if (!q) return sw_err_set(SW_ENOMEM, "out of memory");
    int rc = sw_obuf_str(b, q);
    free(q);
    for (int k = 0; rc == 0 && k < m->nc; k++) {
        char h[8];
        snprintf(h, sizeof h, "\n%c. ", LETTERS[k]);
        rc = sw_obuf_str(b, h);
        if (rc == 0) rc = sw_obuf_str(b, m->c[k]);
    }
    if (rc == 0) rc = sw_obuf_str(b, tail);
    return rc;
}

/* Build and add the items of one subject: shots = the first k rows of the few-shot file. */
static int add_mcq_subject(struct sw_bench_task *t, int subj, const char *description,
                           const struct mcq_file *dev, const struct mcq_file *test,
                           const char *tail, int64_t k, int64_t limit, const char *dev_path) {
    if (k > 0 && (!dev || (int64_t)dev->n < k))
        return sw_err_set(SW_EINVAL,
                          "%s: %lld few-shot examples requested but the dev split has "
                          "%zu",
                          dev_path ? dev_path : "dev split", (long long)k,
                          dev ? dev->n : (size_t)0);
    struct sw_obuf shots = {0};
    int rc = sw_obuf_add(&shots, "", 0);
    for (int64_t s = 0; rc == 0 && s < k; s++) {
        rc = mcq_text(&dev->rows[s], tail, &shots);
        if (rc == 0) rc = sw_obuf_add(&shots, " ", 1);
        if (rc == 0) rc = sw_obuf_add(&shots, &LETTERS[dev->rows[s].gold], 1);
        if (rc == 0) rc = sw_obuf_add(&shots, "\n\n", 2);
    }
    size_t n = test->n;
    if (limit > 0 && (size_t)limit < n) n = (size_t)limit;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const struct mcq *m = &test->rows[i];
        struct sw_obuf user = {0}, prompt = {0};
        rc = sw_obuf_add(&user, shots.p, shots.len);
        if (rc == 0) rc = mcq_text(m, tail, &user);
        if (rc == 0) rc = sw_obuf_str(&prompt, description);
        if (rc == 0) rc = sw_obuf_add(&prompt, user.p, user.len);
        char ch[MAX_CHOICES][2], co[MAX_CHOICES][3];
        char *chp[MAX_CHOICES], *cop[MAX_CHOICES];
        for (int c = 0; c < m->nc; c++) {
            ch[c][0] = LETTERS[c], ch[c][1] = 0;
            co[c][0] = ' ', co[c][1] = LETTERS[c], co[c][2] = 0;
            chp[c] = ch[c], cop[c] = co[c];
        }
        if (rc == 0) {
            struct sw_bench_item it = {
                .subject = subj,
                .index = (int64_t)i,
                .prompt = prompt.p,
                .system = *description ? (char *)description : NULL,
                .user = user.p,
                .nchoices = m->nc,
                .choices = chp,
                .conts = cop,
                .gold = m->gold,
                .target = ch[m->gold],
            };
            rc = sw_bench_task_add(t, &it);
        }
        free(user.p), free(prompt.p);
    }
    free(shots.p);
    return rc;
}

static int64_t fewshot_or(const struct sw_bench_task_opts *o, int64_t def) {
    return o->num_fewshot >= 0 ? o->num_fewshot : def;
}

static int load_csv_family(struct sw_bench_task *t, const struct sw_bench_task_opts *o,
                           const char *dir) {
    enum csv_layout lay;
    const char *test_split, *test_suffix, *dev_suffix, *tail;
    int custom = strcmp(t->name, "custom_mcq") == 0;
    if (strcmp(t->name, "mmlu") == 0)
        lay = L_MMLU_ORIG, test_split = "test", test_suffix = "_test.csv", dev_suffix = "_dev.csv",
        tail = "\nAnswer:";
    else if (strcmp(t->name, "cmmlu") == 0)
        lay = L_CMMLU, test_split = "test", test_suffix = ".csv", dev_suffix = ".csv",
        tail = "\n答案：";
    else /* ceval, custom_mcq */
        lay = L_CEVAL, test_split = "val", test_suffix = "_val.csv", dev_suffix = "_dev.csv",
        tail = "\n答案：";
    t->kind = SW_BENCH_MC;
    t->has_acc_norm = lay != L_MMLU_ORIG;
    int64_t k = fewshot_or(o, custom ? 0 : 5);
    t->num_fewshot = k;
    char *test_dir = custom ? strdup(dir) : sw_path_join(dir, test_split);
    char *dev_dir = custom ? strdup(dir) : sw_path_join(dir, "dev");
    char **subj = NULL;
    size_t ns = 0;
    int rc = (!test_dir || !dev_dir) ? sw_err_set(SW_ENOMEM, "out of memory") : 0;
    if (rc == 0) {
        rc = pick_subjects(o->subjects, test_dir, test_suffix, &subj, &ns);
        if (rc < 0 && sw_path_is_dir(test_dir) <= 0)
            rc = sw_err_set(SW_ENOTFOUND, "missing split: %s has no '%s' folder", dir, test_split);
    }
    for (size_t s = 0; rc == 0 && s < ns; s++) {
        char name[1024], desc[2048];
        snprintf(name, sizeof name, "%s%s", subj[s], test_suffix);
        char *tp = sw_path_join(test_dir, name);
        snprintf(name, sizeof name, "%s%s", subj[s], dev_suffix);
        char *dp = sw_path_join(dev_dir, name);
        struct mcq_file dev = {0}, test = {0};
        const char *group = NULL;
        if (!tp || !dp) rc = sw_err_set(SW_ENOMEM, "out of memory");
        if (rc == 0) rc = read_mcq_csv(tp, lay, &test);
        if (rc == 0 && k > 0) rc = read_mcq_csv(dp, lay, &dev);
        if (rc == 0) {
            if (lay == L_MMLU_ORIG) {
                char sp[1024];
                snprintf(sp, sizeof sp, "%s", subj[s]);
                for (char *c = sp; *c; c++)
                    if (*c == '_') *c = ' ';
                snprintf(desc, sizeof desc,
                         "The following are multiple choice questions (with "
                         "answers) about %s.\n\n",
                         sp);
                group = sw_bench_mmlu_group(subj[s]);
            } else if (lay == L_CMMLU) {
                const char *zh = sw_bench_cmmlu_name_zh(subj[s]);
                snprintf(desc, sizeof desc,
                         "以下是关于%s的单项选择题，请直接给出正确答案的选项。\n\n",
                         zh ? zh : subj[s]);
            } else {
                const char *zh = custom ? NULL : sw_bench_ceval_name_zh(subj[s]);
                snprintf(desc, sizeof desc,
                         "以下是中国关于%s的单项选择题，请选出其中的正确答案。\n\n",
                         zh ? zh : subj[s]);
            }
            int si = sw_bench_task_subject(t, subj[s], group);
            rc = si < 0 ? si
                        : add_mcq_subject(t, si, desc, k > 0 ? &dev : NULL, &test, tail, k,
                                          o->limit, dp);
        }
        mcq_file_release(&dev), mcq_file_release(&test);
        free(tp), free(dp);
    }
    free_list(subj, ns);
    free(test_dir), free(dev_dir);
    return rc;
}

/* ---- JSON lines ---------------------------------------------------------------------------- */

struct jsonl {
    struct sw_doc *docs;
    size_t n;
};

static void jsonl_release(struct jsonl *j) {
    for (size_t i = 0; i < j->n; i++)
        sw_doc_release(&j->docs[i]);
    free(j->docs);
    memset(j, 0, sizeof *j);
}

/* Read path or path.gz as JSON lines (blank lines skipped). */
static int read_jsonl(const char *path, struct jsonl *out) {
    memset(out, 0, sizeof *out);
    char gz[4096];
    const char *p = path;
    if (!file_exists(p)) {
        snprintf(gz, sizeof gz, "%s.gz", path);
        if (!file_exists(gz))
            return sw_err_set(SW_ENOTFOUND, "missing split: '%s' does not exist", path);
        p = gz;
    }
    char *data = NULL;
    size_t len = 0;
    SW_TRY(sw_read_file(p, &data, &len, 0));
    size_t cap = 0;
    int rc = 0;
    int64_t line = 0;
    for (size_t i = 0; i < len && rc == 0;) {
        size_t e = i;
        while (e < len && data[e] != '\n')
            e++;
        line++;
        size_t s = i;
        while (s < e && (data[s] == ' ' || data[s] == '\r' || data[s] == '\t'))
            s++;
        if (s < e) {
            if (out->n == cap) {
                cap = cap ? cap * 2 : 256;
                struct sw_doc *d = realloc(out->docs, cap * sizeof(*d));
                if (!d) {
                    rc = sw_err_set(SW_ENOMEM, "out of memory");
                    break;
                }
                out->docs = d;
            }
            struct sw_doc *d = &out->docs[out->n];
            memset(d, 0, sizeof *d);
            char where[4200];
            snprintf(where, sizeof where, "%s:%lld", p, (long long)line);
            rc = sw_doc_from_json(d, data + s, e - s, where);
            d->line = line;
            out->n++;
        }
        i = e + 1;
    }
    free(data);
    if (rc < 0) jsonl_release(out);
    return rc;
}

static int need(const struct sw_doc *d, const char *key, const char *path, const char **v) {
    *v = sw_doc_get(d, key);
    if (!*v)
        return sw_err_set(SW_EFORMAT, "%s:%lld: missing field '%s'", path, (long long)d->line, key);
    return 0;
}

/* The eight chain-of-thought exemplars of lm-eval's gsm8k-cot (Wei et al. 2022). */
static const char *const COT_Q[8] = {
    "There are 15 trees in the grove. Grove workers will plant trees in the grove today. After "
    "they are done, there will be 21 trees. How many trees did the grove workers plant today?",
    "If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the "
    "parking lot?",
    "Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have "
    "left in total?",
    "Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many "
    "lollipops did Jason give to Denny?",
    "Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys "
    "does he have now?",
    "There were nine computers in the server room. Five more computers were installed each day, "
    "from monday to thursday. How many computers are now in the server room?",
    "Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. "
    "How many golf balls did he have at the end of wednesday?",
    "Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
};
static const char *const COT_A[8] = {
    "There are 15 trees originally. Then there were 21 trees after some more were planted. So "
    "there must have been 21 - 15 = 6. The answer is 6.",
    "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5.",
    "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. "
    "After eating 35, they had 74 - 35 = 39. The answer is 39.",
    "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny "
    "20 - 12 = 8. The answer is 8.",
    "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more "
    "toys. 5 + 4 = 9. The answer is 9.",
    "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 "
    "= 20 computers were added. 9 + 20 is 29. The answer is 29.",
    "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After "
    "losing 2 more, he had 35 - 2 = 33 golf balls. The answer is 33.",
    "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has "
    "23 - 15 dollars left. 23 - 15 is 8. The answer is 8.",
};

static int set_until(struct sw_bench_task *t, const char *const *u, int n) {
    t->until = calloc((size_t)n, sizeof(char *));
    if (!t->until) return sw_err_set(SW_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        t->until[i] = strdup(u[i]);
        if (!t->until[i]) return sw_err_set(SW_ENOMEM, "out of memory");
        t->nuntil++;
    }
    return 0;
}

static int load_gsm8k(struct sw_bench_task *t, const struct sw_bench_task_opts *o,
                      const char *dir) {
    int cot = strcmp(t->name, "gsm8k_cot") == 0;
    t->kind = SW_BENCH_GEN;
    t->gen_metric = SW_GEN_GSM8K;
    t->max_gen_toks = 256;
    t->strict_regex = strdup(cot ? "The answer is (\\-?[0-9\\.\\,]+)." : "#### (\\-?[0-9\\.\\,]+)");
    static const char *const u5[] = {"Question:", "</s>", "<|im_end|>"};
    static const char *const u8[] = {"Q:", "</s>", "<|im_end|>"};
    SW_TRY(set_until(t, cot ? u8 : u5, 3));
    int64_t k = fewshot_or(o, cot ? 8 : 5);
    t->num_fewshot = k;
    if (cot && k > 8)
        return sw_err_set(SW_EINVAL, "gsm8k_cot has 8 fixed exemplars (--num_fewshot %lld)",
                          (long long)k);
    char *tp = sw_path_join(dir, "test.jsonl"), *trp = sw_path_join(dir, "train.jsonl");
    struct jsonl test = {0}, train = {0};
    int rc = (!tp || !trp) ? sw_err_set(SW_ENOMEM, "out of memory") : 0;
    if (rc == 0) rc = read_jsonl(tp, &test);
    if (rc == 0 && !cot && k > 0) rc = read_jsonl(trp, &train);
    if (rc == 0 && !cot && k > (int64_t)train.n)
        rc = sw_err_set(SW_EINVAL, "%s: %lld few-shot examples requested but it has %zu rows", trp,
                        (long long)k, train.n);
    int subj = rc == 0 ? sw_bench_task_subject(t, "gsm8k", NULL) : rc;
    if (subj < 0) rc = subj;
    struct sw_pyrandom rnd;
    sw_pyrandom_seed(&rnd, 1234); /* lm-eval's fewshot_random_seed, one generator per task */
    int64_t idx[64];
    size_t n = test.n;
    if (o->limit > 0 && (size_t)o->limit < n) n = (size_t)o->limit;
    if (k > 64) rc = sw_err_set(SW_EINVAL, "--num_fewshot %lld: at most 64", (long long)k);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *q, *a;
        rc = need(&test.docs[i], "question", tp, &q);
        if (rc == 0) rc = need(&test.docs[i], "answer", tp, &a);
        if (rc < 0) break;
        struct sw_obuf user = {0};
        rc = sw_obuf_add(&user, "", 0);
        if (!cot && k > 0) rc = sw_pyrandom_sample(&rnd, (int64_t)train.n, k, idx);
        for (int64_t s = 0; rc == 0 && s < k; s++) {
            const char *sq, *sa;
            if (cot)
                sq = COT_Q[s], sa = COT_A[s];
            else {
                rc = need(&train.docs[idx[s]], "question", trp, &sq);
                if (rc == 0) rc = need(&train.docs[idx[s]], "answer", trp, &sa);
                if (rc < 0) break;
            }
            rc = sw_obuf_str(&user, cot ? "Q: " : "Question: ");
            if (rc == 0) rc = sw_obuf_str(&user, sq);
            if (rc == 0) rc = sw_obuf_str(&user, cot ? "\nA: " : "\nAnswer: ");
            if (rc == 0) rc = sw_obuf_str(&user, sa);
            if (rc == 0) rc = sw_obuf_str(&user, "\n\n");
        }
        if (rc == 0) rc = sw_obuf_str(&user, cot ? "Q: " : "Question: ");
        if (rc == 0) rc = sw_obuf_str(&user, q);
        if (rc == 0) rc = sw_obuf_str(&user, cot ? "\nA:" : "\nAnswer:");
        char *target = NULL;
        if (rc == 0) {
            /* gsm8k: the whole answer (the metric's "(?s).*#### " strips the working);
             * gsm8k-cot: answer.split('####')[-1].strip() */
            const char *h = cot ? strstr(a, "####") : NULL, *last = h;
            while (h)
                last = h, h = strstr(h + 4, "####");
            target = last ? strip_dup(last + 4) : strdup(a);
            if (!target) rc = sw_err_set(SW_ENOMEM, "out of memory");
        }
        if (rc == 0) {
            struct sw_bench_item it = {.subject = subj,
                                       .index = (int64_t)i,
                                       .prompt = user.p,
                                       .user = user.p,
                                       .gold = -1,
                                       .target = target};
            rc = sw_bench_task_add(t, &it);
        }
        free(target);
        free(user.p);
    }
    jsonl_release(&test), jsonl_release(&train);
    free(tp), free(trp);
    return rc;
}

/* ---- ARC / HellaSwag style ----------------------------------------------------------------- */

/* lm-eval's hellaswag preprocess: strip, " [title]" → ". ", drop "[...]", "  " → " ". */
static char *hs_preprocess(const char *in) {
    char *s = strip_dup(in);
    if (!s) return NULL;
    struct sw_obuf b = {0};
    if (sw_obuf_add(&b, "", 0) < 0) goto oom;
    for (const char *p = s; *p;) {
        if (strncmp(p, " [title]", 8) == 0) {
            if (sw_obuf_add(&b, ". ", 2) < 0) goto oom;
            p += 8;
        } else {
            if (sw_obuf_add(&b, p, 1) < 0) goto oom;
            p++;
        }
    }
    /* re.sub("\\[.*?\\]", "") */
    struct sw_obuf c = {0};
    if (sw_obuf_add(&c, "", 0) < 0) goto oom;
    for (size_t i = 0; i < b.len;) {
        if (b.p[i] == '[') {
            const char *e = memchr(b.p + i, ']', b.len - i);
            if (e) {
                i = (size_t)(e - b.p) + 1;
                continue;
            }
        }
        if (sw_obuf_add(&c, b.p + i, 1) < 0) {
            free(c.p);
            goto oom;
        }
        i++;
    }
    /* .replace("  ", " "): non-overlapping, left to right, one pass */
    size_t w = 0;
    for (size_t i = 0; i < c.len;) {
        if (i + 1 < c.len && c.p[i] == ' ' && c.p[i + 1] == ' ')
            c.p[w++] = ' ', i += 2;
        else
            c.p[w++] = c.p[i++];
    }
    c.p[w] = '\0';
    free(s), free(b.p);
    return c.p;
oom:
    free(s), free(b.p);
    return NULL;
}

/* Python's str.capitalize() for ASCII (first upper, rest lower); other bytes are kept. */
static char *capitalize(const char *s) {
    char *r = strdup(s);
    if (!r) return NULL;
    for (char *p = r; *p; p++)
        *p = (char)(p == r ? toupper((unsigned char)*p) : tolower((unsigned char)*p));
    return r;
}

/* One ARC / HellaSwag doc → text, choices, gold. *text and choice strings malloc'ed. */
static int choice_doc(int hella, const struct sw_doc *d, const char *path, char **text, char **ch,
                      int *nc, int *gold) {
    char key[64];
    *text = NULL;
    *nc = 0;
    if (hella) {
        const char *al, *ca, *cb, *lab;
        SW_TRY(need(d, "activity_label", path, &al));
        SW_TRY(need(d, "ctx_a", path, &ca));
        SW_TRY(need(d, "ctx_b", path, &cb));
        SW_TRY(need(d, "label", path, &lab));
        char *cap = capitalize(cb);
        struct sw_obuf q = {0};
        int rc = cap ? 0 : SW_ENOMEM;
        if (rc == 0) rc = sw_obuf_str(&q, al);
        if (rc == 0) rc = sw_obuf_str(&q, ": ");
        if (rc == 0) rc = sw_obuf_str(&q, ca);
        if (rc == 0) rc = sw_obuf_str(&q, " ");
        if (rc == 0) rc = sw_obuf_str(&q, cap);
        free(cap);
        if (rc == 0) *text = hs_preprocess(q.p);
        free(q.p);
        if (rc < 0 || !*text) return sw_err_set(SW_ENOMEM, "out of memory");
        for (int c = 0; c < MAX_CHOICES; c++) {
            snprintf(key, sizeof key, "endings[%d]", c);
            const char *e = sw_doc_get(d, key);
            if (!e) break;
            ch[c] = hs_preprocess(e);
            if (!ch[c]) return sw_err_set(SW_ENOMEM, "out of memory");
            (*nc)++;
        }
        *gold = digit_index(lab, *nc);
        if (*gold < 0)
            return sw_err_set(SW_EFORMAT, "%s:%lld: label '%s' is out of range (%d endings)", path,
                              (long long)d->line, lab, *nc);
    } else {
        const char *q, *ak;
        SW_TRY(need(d, "question", path, &q));
        SW_TRY(need(d, "answerKey", path, &ak));
        struct sw_obuf t = {0};
        int rc = sw_obuf_str(&t, "Question: ");
        if (rc == 0) rc = sw_obuf_str(&t, q);
        if (rc == 0) rc = sw_obuf_str(&t, "\nAnswer:");
        if (rc < 0) return rc;
        *text = t.p;
        *gold = -1;
        for (int c = 0; c < MAX_CHOICES; c++) {
            snprintf(key, sizeof key, "choices.text[%d]", c);
            const char *e = sw_doc_get(d, key);
            if (!e) break;
            snprintf(key, sizeof key, "choices.label[%d]", c);
            const char *l = sw_doc_get(d, key);
            if (l && strcmp(l, ak) == 0 && *gold < 0) *gold = c;
            ch[c] = strdup(e);
            if (!ch[c]) return sw_err_set(SW_ENOMEM, "out of memory");
            (*nc)++;
        }
        if (*gold < 0)
            return sw_err_set(SW_EFORMAT, "%s:%lld: answerKey '%s' is not one of the choice labels",
                              path, (long long)d->line, ak);
    }
    if (*nc < 1) return sw_err_set(SW_EFORMAT, "%s:%lld: no choices", path, (long long)d->line);
    return 0;
}

static int doc_equal(const struct sw_doc *a, const struct sw_doc *b) {
    if (a->n != b->n) return 0;
    for (size_t i = 0; i < a->n; i++) {
        const char *v = sw_doc_get(b, a->keys[i]);
        if (!v || strcmp(v, a->vals[i]) != 0) return 0;
    }
    return 1;
}

/* The harness's sampler when the few-shot split "equals" the test split (HellaSwag: both unset,
 * None == None): draw k + 1, drop every copy of the evaluated doc, keep the first k; when that
 * leaves fewer than k, draw k again from the pool without the doc. idx has room for k + 1. */
static int sample_excluding(struct sw_pyrandom *rnd, const struct jsonl *pool,
                            const struct sw_doc *eval, int64_t k, int64_t *idx) {
    int64_t n = (int64_t)pool->n, m = k + 1 <= n ? k + 1 : n, got = 0;
    int64_t *tmp = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    if (!tmp) return sw_err_set(SW_ENOMEM, "out of memory");
    int rc = sw_pyrandom_sample(rnd, n, m, tmp);
    for (int64_t j = 0; rc == 0 && j < m && got < k; j++)
        if (!doc_equal(&pool->docs[tmp[j]], eval)) idx[got++] = tmp[j];
    if (rc == 0 && got < k) {
        int64_t np = 0;
        for (int64_t j = 0; j < n; j++)
            if (!doc_equal(&pool->docs[j], eval)) tmp[np++] = j;
        int64_t *pick = malloc((size_t)(k ? k : 1) * sizeof(int64_t));
        rc = !pick ? sw_err_set(SW_ENOMEM, "out of memory") : sw_pyrandom_sample(rnd, np, k, pick);
        for (int64_t j = 0; rc == 0 && j < k; j++)
            idx[j] = tmp[pick[j]];
        free(pick);
    }
    free(tmp);
    return rc;
}

static int load_choice_jsonl(struct sw_bench_task *t, const struct sw_bench_task_opts *o,
                             const char *dir) {
    int hella = strcmp(t->name, "hellaswag") == 0;
    t->kind = SW_BENCH_MC;
    t->has_acc_norm = 1;
    int64_t k = fewshot_or(o, 0);
    t->num_fewshot = k;
    char *tp = sw_path_join(dir, hella ? "validation.jsonl" : "test.jsonl");
    char *trp = sw_path_join(dir, "train.jsonl");
    struct jsonl test = {0}, train = {0};
    int rc = (!tp || !trp) ? sw_err_set(SW_ENOMEM, "out of memory") : 0;
    if (rc == 0) rc = read_jsonl(tp, &test);
    if (rc == 0 && k > 0) rc = read_jsonl(trp, &train);
    if (rc == 0 && k > (int64_t)train.n)
        rc = sw_err_set(SW_EINVAL, "%s: %lld few-shot examples requested but it has %zu rows", trp,
                        (long long)k, train.n);
    int subj = rc == 0 ? sw_bench_task_subject(t, t->name, NULL) : rc;
    if (subj < 0) rc = subj;
    struct sw_pyrandom rnd;
    sw_pyrandom_seed(&rnd, 1234);
    size_t n = test.n;
    if (o->limit > 0 && (size_t)o->limit < n) n = (size_t)o->limit;
    int64_t *idx = calloc((size_t)(k + 1), sizeof(int64_t));
    if (!idx && rc == 0) rc = sw_err_set(SW_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char *text = NULL, *ch[MAX_CHOICES] = {0}, *co[MAX_CHOICES];
        int nc = 0, gold = -1;
        struct sw_obuf user = {0};
        rc = sw_obuf_add(&user, "", 0);
        if (rc == 0 && k > 0) {
            if (!hella)
                rc = sw_pyrandom_sample(&rnd, (int64_t)train.n, k, idx);
            else
                rc = sample_excluding(&rnd, &train, &test.docs[i], k, idx);
        }
        for (int64_t s = 0; rc == 0 && s < k; s++) {
            char *st = NULL, *sch[MAX_CHOICES];
            int snc = 0, sg = -1;
            rc = choice_doc(hella, &train.docs[idx[s]], trp, &st, sch, &snc, &sg);
            if (rc == 0) rc = sw_obuf_str(&user, st);
            if (rc == 0) rc = sw_obuf_str(&user, " ");
            if (rc == 0) rc = sw_obuf_str(&user, sch[sg]);
            if (rc == 0) rc = sw_obuf_str(&user, "\n\n");
            free(st);
            for (int c = 0; c < snc; c++)
                free(sch[c]);
        }
        if (rc == 0) rc = choice_doc(hella, &test.docs[i], tp, &text, ch, &nc, &gold);
        if (rc == 0) rc = sw_obuf_str(&user, text);
        int nco = 0;
        for (int c = 0; rc == 0 && c < nc; c++, nco++) {
            co[c] = malloc(strlen(ch[c]) + 2);
            if (!co[c]) {
                rc = sw_err_set(SW_ENOMEM, "out of memory");
                break;
            }
            co[c][0] = ' ';
            strcpy(co[c] + 1, ch[c]);
        }
        if (rc == 0) {
            struct sw_bench_item it = {.subject = subj,
                                       .index = (int64_t)i,
                                       .prompt = user.p,
                                       .user = user.p,
                                       .nchoices = nc,
                                       .choices = ch,
                                       .conts = co,
                                       .gold = gold,
                                       .target = ch[gold]};
            rc = sw_bench_task_add(t, &it);
        }
        for (int c = 0; c < nco; c++)
            free(co[c]);
        for (int c = 0; c < nc; c++)
            free(ch[c]);
        free(text), free(user.p);
    }
    free(idx);
    jsonl_release(&test), jsonl_release(&train);
    free(tp), free(trp);
    return rc;
}

/* ---- general QA and perplexity texts ------------------------------------------------------- */

static int load_per_file(struct sw_bench_task *t, const struct sw_bench_task_opts *o,
                         const char *dir) {
    int ppl = strcmp(t->name, "ppl") == 0;
    t->kind = ppl ? SW_BENCH_PPL : SW_BENCH_GEN;
    t->gen_metric = SW_GEN_EXACT;
    t->max_gen_toks = 256;
    t->ppl_max_length = o->ppl_max_length;
    t->ppl_stride = o->ppl_stride;
    char **subj = NULL;
    size_t ns = 0;
    int rc = pick_subjects(o->subjects, dir, ".jsonl", &subj, &ns);
    if (rc == SW_ENOTFOUND && ppl) {
        sw_err_clear();
        rc = pick_subjects(o->subjects, dir, ".txt", &subj, &ns);
    }
    for (size_t s = 0; rc == 0 && s < ns; s++) {
        char name[1024];
        snprintf(name, sizeof name, "%s.jsonl", subj[s]);
        char *p = sw_path_join(dir, name);
        if (!p) {
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            break;
        }
        int si = sw_bench_task_subject(t, subj[s], NULL);
        if (si < 0) rc = si;
        if (rc == 0 && ppl && !file_exists(p)) {
            /* a plain text document */
            snprintf(name, sizeof name, "%s.txt", subj[s]);
            free(p);
            p = sw_path_join(dir, name);
            char *data = NULL;
            size_t len = 0;
            rc = p ? sw_read_file(p, &data, &len, 0) : SW_ENOMEM;
            if (rc == 0) {
                struct sw_bench_item it = {.subject = si, .index = 0, .gold = -1, .target = data};
                rc = sw_bench_task_add(t, &it);
            }
            free(data), free(p);
            continue;
        }
        struct jsonl j = {0};
        if (rc == 0) rc = read_jsonl(p, &j);
        size_t n = j.n;
        if (o->limit > 0 && (size_t)o->limit < n) n = (size_t)o->limit;
        for (size_t i = 0; rc == 0 && i < n; i++) {
            const char *q = NULL, *a = NULL;
            if (ppl)
                rc = need(&j.docs[i], "text", p, &a);
            else {
                rc = need(&j.docs[i], "query", p, &q);
                if (rc == 0) rc = need(&j.docs[i], "response", p, &a);
            }
            if (rc < 0) break;
            struct sw_bench_item it = {.subject = si,
                                       .index = (int64_t)i,
                                       .prompt = (char *)q,
                                       .user = (char *)q,
                                       .gold = -1,
                                       .target = (char *)a};
            rc = sw_bench_task_add(t, &it);
        }
        jsonl_release(&j);
        free(p);
    }
    free_list(subj, ns);
    return rc;
}

/* ---- entry --------------------------------------------------------------------------------- */

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

int sw_bench_task_load(const struct sw_bench_task_opts *o, struct sw_bench_task **out) {
    *out = NULL;
    if (!o->name || !*o->name) return sw_err_set(SW_EUSAGE, "no task name");
    if (ends_with(o->name, ".yaml") || ends_with(o->name, ".yml")) {
        /* a spec path as given, else inside --dataset_dir */
        char *alt = NULL;
        const char *path = o->name;
        if (!file_exists(path) && o->dir && o->name[0] != '/') {
            alt = sw_path_join(o->dir, o->name);
            if (alt && file_exists(alt)) path = alt;
        }
        char *text = NULL;
        size_t len = 0;
        int rc = sw_read_file(path, &text, &len, 1 << 24);
        if (rc == 0) rc = sw_bench_yaml_load(path, text, len, o, out);
        free(text), free(alt);
        return rc;
    }
    static const char *const known[] = {"mmlu",      "ceval", "cmmlu",     "custom_mcq", "gsm8k",
                                        "gsm8k_cot", "arc",   "hellaswag", "general_qa", "ppl"};
    size_t which = sizeof known / sizeof known[0];
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(o->name, known[i]) == 0) which = i;
    if (which == sizeof known / sizeof known[0])
        return sw_err_set(SW_EUSAGE,
                          "unknown task '%s' (known: mmlu, ceval, cmmlu, gsm8k, "
                          "gsm8k_cot, arc, hellaswag, custom_mcq, general_qa, ppl, or a task "
                          "spec FILE.yaml)",
                          o->name);
    if (!o->dir) return sw_err_set(SW_EUSAGE, "%s: --dataset_dir is required", o->name);
    struct sw_bench_task *t = calloc(1, sizeof(*t));
    if (!t) return sw_err_set(SW_ENOMEM, "out of memory");
    t->name = strdup(o->name);
    /* gsm8k_cot reads the gsm8k files */
    char *sub = sw_path_join(o->dir, strcmp(o->name, "gsm8k_cot") == 0 ? "gsm8k" : o->name);
    const char *dir = sub && sw_path_is_dir(sub) > 0 ? sub : o->dir;
    int rc = !t->name ? sw_err_set(SW_ENOMEM, "out of memory") : 0;
    if (rc == 0 && sw_path_is_dir(dir) <= 0)
        rc = sw_err_set(SW_ENOTFOUND, "%s: dataset folder '%s' does not exist", o->name, dir);
    if (rc == 0) {
        if (which <= 3)
            rc = load_csv_family(t, o, dir);
        else if (which <= 5)
            rc = load_gsm8k(t, o, dir);
        else if (which <= 7)
            rc = load_choice_jsonl(t, o, dir);
        else
            rc = load_per_file(t, o, dir);
    }
    if (rc == 0 && t->nitems == 0)
        rc = sw_err_set(SW_ENOTFOUND, "%s: no items in '%s'", o->name, dir);
    if (rc == 0)
        sw_info("%s: %zu items in %zu subject(s) from %s (%lld-shot)", t->name, t->nitems,
                t->nsubjects, dir, (long long)t->num_fewshot);
    free(sub);
    if (rc < 0) {
        sw_bench_task_free(t);
        return rc;
    }
    *out = t;
    return 0;
}
