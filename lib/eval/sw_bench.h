/* sw_bench — benchmark evaluation, the machinery behind `sw-eval bench | farm | worker`:
 *
 *   - readers of the published benchmark layouts (lib/eval/sw_csv.c, sw_bench_data.c): MMLU
 *     (original CSVs and the Hugging Face export), C-Eval, CMMLU, GSM8K JSONL, ARC- and
 *     HellaSwag-style JSONL, ms-swift's custom CEval-style CSV and general-QA JSONL, and a YAML
 *     task spec (sw_bench_yaml.c) so that a new benchmark is a file;
 *   - prompts built exactly as lm-evaluation-harness builds them (sw_bench_tasks.c): description,
 *     k-shot examples joined by "\n\n", continuations " A".." D";
 *   - backends that answer log-likelihood and generation requests (sw_bench_local.c: the model in
 *     process; sw_bench_http.c: any OpenAI-compatible endpoint; sw_bench_farm.c: shards served
 *     to `sw-eval worker` processes over ZeroMQ);
 *   - scoring and the report (sw_bench_score.c, sw_bench_run.c): acc, acc_norm, GSM8K's
 *     strict-match / flexible-extract, per subject, micro and macro averages, stderr as the
 *     harness computes them, perplexity over rolling windows, a per-sample JSONL, a run cache.
 *
 * docs/eval.md has the definitions and the places where the harness is odd and sw follows it. */
#ifndef SW_BENCH_H
#define SW_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- CSV (sw_csv.c) ------------------------------------------------------------------------ */

struct sw_csv_row {
    int64_t line; /* 1-based line of the file where the row starts */
    size_t nf;    /* fields */
    char **f;     /* NUL-terminated fields (pointers into the table's buffer) */
};
struct sw_csv {
    struct sw_csv_row *rows;
    size_t nrows;
    char *buf;
};
/* Parse RFC 4180 CSV text data[0..len) (name for messages). Every row is kept, the header too.
 * SW_EFORMAT "<name>:<line>: ..." for an unterminated quoted field; SW_ENOMEM. */
int sw_csv_parse(const char *name, const char *data, size_t len, struct sw_csv **out);
/* Read path (gzip ok) and parse it. */
int sw_csv_read(const char *path, struct sw_csv **out);
void sw_csv_free(struct sw_csv *c);

/* ---- documents ----------------------------------------------------------------------------- */

/* A row of a data file as flat text fields: a CSV row by its header names, a JSON object with
 * nested keys joined by '.' and list entries as "key[i]" (plus "key.length"). */
struct sw_doc {
    size_t n, cap;
    char **keys, **vals;
    int64_t line;
};
const char *sw_doc_get(const struct sw_doc *d, const char *key);
int sw_doc_set(struct sw_doc *d, const char *key, const char *val);
void sw_doc_release(struct sw_doc *d);
/* Flatten a JSON object text (one JSON line) into d. */
int sw_doc_from_json(struct sw_doc *d, const char *text, size_t len, const char *where);

/* Render a template with {{field}}, {{field.strip()}}, {{field[i]}} and {{field[i].strip()}}
 * substitutions (the subset of Jinja that lm-eval's task YAMLs use for text); *out is malloc'ed.
 * A field the document lacks is SW_EFORMAT naming where and the field. */
int sw_doc_render(const struct sw_doc *d, const char *tpl, const char *where, char **out);
/* Python's str.strip() on s[0..*n): moves *s and shrinks *n. */
void sw_bench_strip(const char **s, size_t *n);

/* ---- tasks --------------------------------------------------------------------------------- */

enum sw_bench_kind {
    SW_BENCH_MC = 0, /* multiple choice by log-likelihood of each continuation */
    SW_BENCH_GEN,    /* greedy generation until stop sequences, then answer extraction */
    SW_BENCH_PPL,    /* perplexity of texts by rolling log-likelihood windows */
};

/* Scoring of generated answers. */
enum sw_bench_gen_metric {
    SW_GEN_GSM8K = 0, /* strict-match (a regex, first match) and flexible-extract (last number),
                         lm-eval's exact_match with its regexes_to_ignore */
    SW_GEN_EXACT,     /* exact match of the stripped answer (general QA, YAML generate tasks) */
};

struct sw_bench_item {
    int subject;    /* index into the task's subjects */
    int64_t index;  /* row of the test file, from 0 (data rows, header excluded) */
    char *prompt;   /* the plain-text context: description + shots + question */
    char *system;   /* for a chat template: the description (NULL when none) */
    char *user;     /* for a chat template: shots + question, trailing delimiter removed */
    int nchoices;   /* MC */
    char **choices; /* MC: the choice strings ("A"), acc_norm divides by their length */
    char **conts;   /* MC: continuations: target delimiter + choice (" A") */
    int gold;       /* MC: gold choice index (never out of range: readers refuse that) */
    char *target;   /* MC: the gold choice; GEN: the reference answer; PPL: the text */
};

struct sw_bench_subject {
    char *name;  /* "abstract_algebra" */
    char *group; /* category the harness groups it in ("stem"), or NULL */
};

struct sw_bench_task {
    char *name; /* "mmlu", "ceval", "gsm8k", ..., or the YAML's task name */
    enum sw_bench_kind kind;
    int has_acc_norm; /* MC: report acc_norm beside acc */
    struct sw_bench_subject *subjects;
    size_t nsubjects;
    struct sw_bench_item *items;
    size_t nitems, cap;
    /* GEN */
    char **until;
    int nuntil;
    int64_t max_gen_toks;
    enum sw_bench_gen_metric gen_metric;
    char *strict_regex; /* GSM8K: strict-match pattern (one capture group) */
    int64_t num_fewshot;
    /* PPL */
    int64_t ppl_max_length; /* window length (0: the backend's max_length) */
    int64_t ppl_stride;     /* tokens predicted per window (0: = max_length, lm-eval's disjoint
                               windows) */
};

struct sw_bench_task_opts {
    const char *name;     /* mmlu, ceval, cmmlu, gsm8k, gsm8k_cot, arc, hellaswag,
                             custom_mcq (CEval-style CSV), general_qa, ppl, or a *.yaml path */
    const char *dir;      /* dataset folder (for a name: DIR/<name>/ when it exists, else DIR) */
    const char *subjects; /* comma list, NULL/"" = all found */
    int64_t num_fewshot;  /* < 0: the task's default */
    int64_t limit;        /* items per subject (0 = all), lm-eval's --limit */
    int64_t ppl_max_length, ppl_stride;
};

/* Read a task's data and build every item's prompt. Errors name the file, line and field:
 * a malformed row (wrong field count), a missing split or subject file, an answer letter or
 * index out of range, fewer few-shot rows than requested. *out is freed with
 * sw_bench_task_free. */
int sw_bench_task_load(const struct sw_bench_task_opts *o, struct sw_bench_task **out);
void sw_bench_task_free(struct sw_bench_task *t);
/* Add an item (copied strings); used by the readers and tests. */
int sw_bench_task_add(struct sw_bench_task *t, const struct sw_bench_item *it);
int sw_bench_task_subject(struct sw_bench_task *t, const char *name, const char *group);

/* The YAML task spec reader (sw_bench_yaml.c): text[0..len) of file path. */
int sw_bench_yaml_load(const char *path, const char *text, size_t len,
                       const struct sw_bench_task_opts *o, struct sw_bench_task **out);

/* The subject tables of lm-eval (sw_bench_subjects.c): group of a subject, and the
 * description of a C-Eval / CMMLU subject. NULL when unknown. */
const char *sw_bench_mmlu_group(const char *subject);
const char *sw_bench_ceval_name_zh(const char *subject);
const char *sw_bench_cmmlu_name_zh(const char *subject);

/* Python's random.Random(seed).sample(range(n), k) (MT19937, CPython's algorithm), the
 * harness's few-shot sampler: idx[0..k). rng state is kept in *st across calls, as the harness
 * keeps one generator per task. */
struct sw_pyrandom {
    uint32_t mt[624];
    int mti;
};
void sw_pyrandom_seed(struct sw_pyrandom *r, uint32_t seed);
uint32_t sw_pyrandom_u32(struct sw_pyrandom *r);
int sw_pyrandom_sample(struct sw_pyrandom *r, int64_t n, int64_t k, int64_t *idx);

/* ---- requests and backends ----------------------------------------------------------------- */

struct sw_bench_ll_req {
    const char *context; /* plain text, or already chat-rendered */
    const char *continuation;
};
struct sw_bench_ll_res {
    double ll;  /* sum of the continuation tokens' log-probabilities */
    int greedy; /* 1 when every continuation token is the argmax */
    int ntok;   /* continuation tokens */
};
struct sw_bench_gen_req {
    const char *context;       /* plain text, or already chat-rendered */
    const char *system, *user; /* the chat parts, for endpoints that apply the template */
    const char *const *until;
    int nuntil;
    int64_t max_gen_toks;
};
/* Rolling perplexity: one text; the result is the sum of log-probabilities of every token
 * (lm-eval's loglikelihood_rolling) and the token count. */
struct sw_bench_roll_res {
    double ll;
    int64_t ntok;
};

/* Called by a backend when results [begin, end) of the current call are final (the run cache
 * appends them). A non-zero return stops the call with that error. */
typedef int (*sw_bench_done_fn)(void *ctx, size_t begin, size_t end);

struct sw_bench_backend {
    const char *kind;   /* "local", "http", "farm" */
    char *identity;     /* what the run cache keys results by: model (+ adapter) or URL + model */
    int64_t max_length; /* context tokens (lm-eval's max_length); 0 when unknown (http) */
    /* Chat: render (system, user) with the chat template and the generation prompt into a
     * malloc'ed string; NULL when the backend cannot (then generation goes through the
     * endpoint's chat API, see chat_generate). */
    int (*chat_render)(struct sw_bench_backend *b, const char *system, const char *user,
                       char **out);
    int (*loglik)(struct sw_bench_backend *b, const struct sw_bench_ll_req *r, size_t n,
                  struct sw_bench_ll_res *out, sw_bench_done_fn done, void *ctx);
    int (*generate)(struct sw_bench_backend *b, const struct sw_bench_gen_req *r, size_t n,
                    char **out, sw_bench_done_fn done, void *ctx);
    int (*rolling)(struct sw_bench_backend *b, const char *const *texts, size_t n,
                   int64_t max_length, int64_t stride, struct sw_bench_roll_res *out,
                   sw_bench_done_fn done, void *ctx);
    void (*free)(struct sw_bench_backend *b);
    void *impl;
    int64_t shard; /* requests handed out per shard / processed per progress step */
};
void sw_bench_backend_free(struct sw_bench_backend *b);

struct sw_bench_local_opts {
    const char *model;
    const char *adapter;       /* NULL: none */
    const char *template_name; /* chat template (NULL: from tokenizer_config.json) */
    int64_t max_length;        /* 0: lm-eval's rule (config max_position_embeddings, ...) */
    int64_t batch_tokens;      /* tokens per forward (0: 4096) */
    int64_t shard;             /* requests per progress step (0: 256) */
    const char *device;        /* "cpu" (NULL) or "cuda" */
    int no_engine;             /* 1: packed forwards on the evaluation model instead of the
                                  engine (the CUDA path always uses them) */
};
int sw_bench_local_new(const struct sw_bench_local_opts *o, struct sw_bench_backend **out);

struct sw_bench_http_opts {
    const char *url;       /* http://host:port/v1 */
    const char *model;     /* the request's "model" (NULL: "default") */
    const char *api_key;   /* NULL: none */
    int64_t timeout_s;     /* per request (0: 600) */
    int64_t parallel;      /* concurrent requests (0: 8) */
    int chat;              /* generation through /chat/completions */
    const char *tokenizer; /* a local tokenizer (folder or tokenizer.json): log-likelihood
                              prompts go as token ids, tokenized and truncated as lm-eval does;
                              NULL: as text, the continuation found by text_offset */
    int64_t max_length;    /* with tokenizer: context tokens (0: the server's max_model_len from
                              /models, else 2048) */
};
int sw_bench_http_new(const struct sw_bench_http_opts *o, struct sw_bench_backend **out);

/* The farm backend: binds endpoint, hands shards of `shard` requests to workers, re-issues a
 * shard whose worker has not answered in timeout_s seconds. identity is the workers' model. */
struct sw_bench_farm_opts {
    const char *bind;     /* e.g. tcp://0.0.0.0:5555 */
    const char *identity; /* cache key: what the workers run */
    int64_t shard;        /* requests per shard (0: 64) */
    double timeout_s;     /* re-issue after (0: 600) */
    int64_t max_length;   /* for rolling windows: the workers' max_length (needed up front) */
};
int sw_bench_farm_new(const struct sw_bench_farm_opts *o, struct sw_bench_backend **out);
/* Tell connected workers that the work is over (they exit), waiting up to linger_s seconds. */
void sw_bench_farm_finish(struct sw_bench_backend *b, double linger_s);

/* A worker: connect to a farm, process shards with be until the farm says done. Returns 0, or
 * SW_EIO when the farm cannot be reached for wait_s seconds. max_shards > 0 stops after that
 * many shards without answering the last one (tests: a worker that dies mid-shard). */
struct sw_bench_worker_opts {
    const char *connect;
    double wait_s;     /* give up after this long without the farm (0: 60) */
    int64_t die_after; /* tests: exit without answering the die_after-th shard (0: never) */
};
int sw_bench_worker_run(const struct sw_bench_worker_opts *o, struct sw_bench_backend *be);

/* ---- scoring (sw_bench_score.c) ------------------------------------------------------------ */

/* GSM8K answer extraction, lm-eval's filters: strict (first match of pattern, group 1) and
 * flexible ((-?[$0-9.,]{2,})|(-?[0-9]+), last match, first non-empty group); "[invalid]" when
 * nothing matches. The Qwen3 thinking section <think>...</think> is removed first. *out
 * malloc'ed. */
int sw_bench_extract_strict(const char *text, const char *pattern, char **out);
int sw_bench_extract_flexible(const char *text, char **out);
/* lm-eval's exact_match with ignore_case and regexes_to_ignore [",", "\$", "(?s).*#### ",
 * "\.$"] applied to both sides: 1 or 0. */
int sw_bench_gsm8k_match(const char *pred, const char *ref);
/* Remove <think>...</think> (and an unterminated <think>... up to the end) from text. */
char *sw_bench_strip_thinking(const char *text);

/* Mean and the harness's stderr of the mean (sample standard deviation / sqrt(n)). */
void sw_bench_mean_stderr(const double *x, size_t n, double *mean, double *stderr_);
/* lm-eval's pooled stderr over subtasks of sizes n[i] with stderrs se[i]. */
double sw_bench_pooled_stderr(const double *se, const double *n, size_t k);

/* ---- the run (sw_bench_run.c) -------------------------------------------------------------- */

struct sw_bench_run_opts {
    const char *tasks; /* comma list for --eval_dataset */
    const char *dataset_dir;
    const char *subjects;
    int64_t num_fewshot;
    int64_t limit;
    int apply_chat_template;
    const char *out_dir;  /* report.json, samples_<task>.jsonl, cache.jsonl */
    int no_cache;         /* ignore and do not write the run cache */
    int64_t max_gen_toks; /* > 0: overrides the generation tasks' max_gen_toks */
    int64_t ppl_max_length, ppl_stride;
};
/* Load every task, answer the requests not in the run cache with be, score, write out_dir and
 * the Markdown table to md (NULL: none). */
int sw_bench_run(const struct sw_bench_run_opts *o, struct sw_bench_backend *be, FILE *md);

#endif
