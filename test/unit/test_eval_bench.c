/* test_eval_bench — lib/eval's pure parts: the CSV reader, documents and templates, Python's
 * random.sample (values from CPython 3.11), GSM8K answer extraction and matching, the harness's
 * stderr formulas, and the task readers' refusals of bad input (malformed row, missing split,
 * answer out of range) on files written here. */
#include "sw_bench.h"
#include "sw_err.h"
#include "sw_io.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_csv(void) {
    struct sw_csv *c = NULL;
    const char *t = "\xEF\xBB\xBFq,a\r\n\"x, \"\"y\"\"\nz\",2\n\nlast,\"\"\n";
    IS_INT(sw_csv_parse("t.csv", t, strlen(t), &c), 0, "csv: parses quotes, CRLF, BOM");
    IS_INT(c->nrows, 3, "csv: 3 rows (blank line skipped)");
    IS_STR(c->rows[0].f[0], "q", "csv: BOM skipped");
    IS_STR(c->rows[1].f[0], "x, \"y\"\nz", "csv: quoted comma, doubled quote, newline");
    IS_INT(c->rows[1].line, 2, "csv: row line");
    IS_INT(c->rows[2].line, 5, "csv: line after a multi-line field");
    IS_STR(c->rows[2].f[1], "", "csv: empty quoted field");
    sw_csv_free(c);
    c = NULL;
    const char *bad = "a,b\n\"open,x\n";
    IS_INT(sw_csv_parse("bad.csv", bad, strlen(bad), &c), SW_EFORMAT, "csv: unterminated quote");
    OK(strstr(sw_err_msg(), "bad.csv:2") != NULL, "csv: error names file:line (%s)", sw_err_msg());
    OK(c == NULL, "csv: nothing returned on error");
    IS_INT(sw_csv_parse("e.csv", "", 0, &c), 0, "csv: empty input");
    IS_INT(c->nrows, 0, "csv: no rows");
    sw_csv_free(c);
}

static void test_doc(void) {
    struct sw_doc d = {0};
    const char *j =
        "{\"q\": \"  Hi \", \"choices\": {\"text\": [\"a\", \"b\"]}, \"n\": 3, \"f\": 1.5}";
    IS_INT(sw_doc_from_json(&d, j, strlen(j), "x:1"), 0, "doc: JSON flattened");
    IS_STR(sw_doc_get(&d, "choices.text[1]"), "b", "doc: list item");
    IS_STR(sw_doc_get(&d, "choices.text.length"), "2", "doc: list length");
    IS_STR(sw_doc_get(&d, "n"), "3", "doc: integer as Python prints it");
    IS_STR(sw_doc_get(&d, "f"), "1.5", "doc: float as Python prints it");
    char *s = NULL;
    IS_INT(sw_doc_render(&d, "{{q.strip()}}|{{ q }}|{{choices.text[0]}}", "t", &s), 0, "render");
    IS_STR(s, "Hi|  Hi |a", "render: strip, plain, index");
    free(s);
    IS_INT(sw_doc_render(&d, "{{missing}}", "spec.yaml", &s), SW_EFORMAT, "render: missing field");
    OK(strstr(sw_err_msg(), "missing") != NULL, "render: names the field");
    sw_doc_release(&d);
}

static void test_pyrandom(void) {
    struct sw_pyrandom r;
    sw_pyrandom_seed(&r, 1234);
    IS_INT(sw_pyrandom_u32(&r), 4150886329u, "random: getrandbits(32) #1");
    IS_INT(sw_pyrandom_u32(&r), 3342196574u, "random: getrandbits(32) #2");
    int64_t idx[8];
    static const int64_t w1[5] = {6374, 3610, 957, 61, 742}, w2[5] = {7462, 6610, 4769, 286, 5501};
    sw_pyrandom_seed(&r, 1234);
    sw_pyrandom_sample(&r, 7473, 5, idx);
    OK(memcmp(idx, w1, sizeof w1) == 0, "random.sample(7473, 5) (set method)");
    sw_pyrandom_sample(&r, 7473, 5, idx);
    OK(memcmp(idx, w2, sizeof w2) == 0, "random.sample again: the generator state carries on");
    static const int64_t p1[2] = {3, 0}, p2[5] = {0, 5, 37, 2, 6},
                         p3[8] = {22, 15, 1, 37, 36, 39, 30, 29};
    sw_pyrandom_seed(&r, 1234);
    sw_pyrandom_sample(&r, 4, 2, idx);
    OK(memcmp(idx, p1, sizeof p1) == 0, "random.sample(4, 2) (pool method)");
    sw_pyrandom_sample(&r, 40, 5, idx);
    OK(memcmp(idx, p2, sizeof p2) == 0, "random.sample(40, 5)");
    sw_pyrandom_sample(&r, 40, 8, idx);
    OK(memcmp(idx, p3, sizeof p3) == 0, "random.sample(40, 8) (setsize grows with k)");
    /* n == 1 still consumes draws: sample(range(2), 2) then sample(range(3), 1) */
    sw_pyrandom_seed(&r, 1234);
    sw_pyrandom_sample(&r, 2, 2, idx);
    int64_t a0 = idx[0], a1 = idx[1];
    sw_pyrandom_sample(&r, 3, 1, idx);
    OK(a0 == 1 && a1 == 0 && idx[0] == 0, "random.sample(2, 2), then (3, 1): %lld %lld %lld",
       (long long)a0, (long long)a1, (long long)idx[0]);
}

static void test_extract(void) {
    char *a = NULL;
    sw_bench_extract_strict("so 3+4 = 7.\n#### 1,234.\nmore #### 9", "#### (\\-?[0-9\\.\\,]+)", &a);
    IS_STR(a, "1,234.", "strict: first match, group 1");
    free(a);
    sw_bench_extract_strict("no answer here", "#### (\\-?[0-9\\.\\,]+)", &a);
    IS_STR(a, "[invalid]", "strict: fallback");
    free(a);
    sw_bench_extract_flexible("She has $23 and 5 more, total 28.", &a);
    IS_STR(a, "28.", "flexible: last match");
    free(a);
    sw_bench_extract_flexible("<think>maybe 99 or 100</think>The answer is 7", &a);
    IS_STR(a, "7", "flexible: Qwen3 thinking stripped first");
    free(a);
    sw_bench_extract_flexible("nothing", &a);
    IS_STR(a, "[invalid]", "flexible: fallback");
    free(a);
    OK(sw_bench_gsm8k_match("1,234.", "Work: 1000+234\n#### 1234"),
       "match: , and trailing . ignored");
    OK(sw_bench_gsm8k_match("$18", "#### 18"), "match: $ ignored");
    OK(!sw_bench_gsm8k_match("17", "#### 18"), "match: different numbers");
    OK(!sw_bench_gsm8k_match("[invalid]", "#### 18"), "match: invalid");
    char *s = sw_bench_strip_thinking("a<think>x</think>b<think>y");
    IS_STR(s, "ab", "strip_thinking: closed and unterminated sections");
    free(s);
}

static void test_stats(void) {
    double x[4] = {1, 0, 1, 1}, m, se;
    sw_bench_mean_stderr(x, 4, &m, &se);
    IS_NEAR(m, 0.75, 1e-15, "mean");
    IS_NEAR(se, sqrt(0.25 / 4.0), 1e-15, "stderr = sample std / sqrt(n)");
    sw_bench_mean_stderr(x, 1, &m, &se);
    OK(isnan(se), "stderr of one item is undefined (N/A)");
    /* pooled over [1,0,1,1] and [0,0,1]: lm-eval's formula */
    double s1, s2;
    double y[3] = {0, 0, 1};
    sw_bench_mean_stderr(x, 4, NULL, &s1);
    sw_bench_mean_stderr(y, 3, NULL, &s2);
    double se2[2] = {s1, s2}, n2[2] = {4, 3};
    double want = sqrt(((3 * s1 * s1 * 4) + (2 * s2 * s2 * 3)) / (7 - 2) / 7);
    IS_NEAR(sw_bench_pooled_stderr(se2, n2, 2), want, 1e-15, "pooled stderr");
}

static char tmpdir[256];

static void put(const char *rel, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, rel);
    char *slash = strrchr(p, '/');
    *slash = 0;
    sw_mkdir_p(p);
    *slash = '/';
    sw_write_file_atomic(p, text, strlen(text));
}

static int load(const char *task, const char *subjects, int64_t k, struct sw_bench_task **t) {
    struct sw_bench_task_opts o = {task, tmpdir, subjects, k, 0, 0, 0};
    *t = NULL;
    return sw_bench_task_load(&o, t);
}

static void test_readers(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_eval_bench.%d", (int)getpid());
    put("mmlu/dev/s_dev.csv", "Q1,a,b,c,d,A\nQ2,a,b,c,d,B\n");
    put("mmlu/test/s_test.csv", " What? ,w,x,y,z,C\n");
    struct sw_bench_task *t;
    IS_INT(load("mmlu", NULL, 2, &t), 0, "mmlu original layout");
    IS_STR(t->items[0].prompt,
           "The following are multiple choice questions (with answers) about s.\n\n"
           "Q1\nA. a\nB. b\nC. c\nD. d\nAnswer: A\n\nQ2\nA. a\nB. b\nC. c\nD. d\nAnswer: B\n\n"
           "What?\nA. w\nB. x\nC. y\nD. z\nAnswer:",
           "mmlu prompt: description, 2 shots in order, question stripped");
    IS_INT(t->items[0].gold, 2, "mmlu gold from the letter");
    IS_STR(t->items[0].conts[3], " D", "continuation ' D'");
    sw_bench_task_free(t);
    put("mmlu/test/bad_test.csv", "Q,a,b,c,d,A\nQ,a,b,c,A\n");
    IS_INT(load("mmlu", "bad", 0, &t), SW_EFORMAT, "malformed row refused");
    OK(strstr(sw_err_msg(), "bad_test.csv:2") && strstr(sw_err_msg(), "5 fields"),
       "malformed row: file:line and field count (%s)", sw_err_msg());
    put("mmlu/test/e_test.csv", "Q,a,b,c,d,E\n");
    IS_INT(load("mmlu", "e", 0, &t), SW_EFORMAT, "answer letter out of range refused");
    OK(strstr(sw_err_msg(), "e_test.csv:1") && strstr(sw_err_msg(), "'E'"),
       "out of range: names the file, line and value (%s)", sw_err_msg());
    put("mmlu/test/h_test.csv", "question,choice0,choice1,choice2,choice3,answer\nQ,a,b,c,d,4\n");
    IS_INT(load("mmlu", "h", 0, &t), SW_EFORMAT, "HF export: index 4 out of range");
    IS_INT(load("mmlu", "nodev", 1, &t), SW_ENOTFOUND, "missing test file");
    put("mmlu/test/nodev_test.csv", "Q,a,b,c,d,A\n");
    IS_INT(load("mmlu", "nodev", 1, &t), SW_ENOTFOUND, "missing dev split refused");
    OK(strstr(sw_err_msg(), "missing split") != NULL, "missing split named (%s)", sw_err_msg());
    IS_INT(load("mmlu", "nodev", 0, &t), 0, "0-shot needs no dev split");
    sw_bench_task_free(t);
    IS_INT(load("mmlu", "s", 3, &t), SW_EINVAL, "more shots than dev rows refused");
    put("ceval/val/c_val.csv", "id,question,A,B,C,D,answer\n0,q,1,2,3,4,Z\n");
    IS_INT(load("ceval", "c", 0, &t), SW_EFORMAT, "C-Eval answer out of range");
    put("ceval/val/w_val.csv", "question,A,B,C,D,answer\nq,1,2,3,4,A\n");
    IS_INT(load("ceval", "w", 0, &t), SW_EFORMAT, "C-Eval header checked");
    IS_INT(load("nosuch", NULL, 0, &t), SW_EUSAGE, "unknown task");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    OK(system(cmd) == 0, "cleanup");
}

static void test_yaml(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_eval_yaml.%d", (int)getpid());
    put("t.csv", "question,answer\nQ one,B\n");
    put("s.csv", "question,answer\nQ zero,A\n");
    const char *y = "task: t\ntest_file: t.csv\nfewshot_file: s.csv\nnum_fewshot: 1\n"
                    "doc_to_text: \"{{question}}?\"\ndoc_to_choice: [\"A\", \"B\"]\n"
                    "doc_to_target: answer\n";
    char path[300];
    snprintf(path, sizeof path, "%s/t.yaml", tmpdir);
    struct sw_bench_task_opts o = {path, NULL, NULL, -1, 0, 0, 0};
    struct sw_bench_task *t = NULL;
    IS_INT(sw_bench_yaml_load(path, y, strlen(y), &o, &t), 0, "yaml spec");
    if (t) {
        IS_STR(t->items[0].prompt, "Q zero? A\n\nQ one?", "yaml prompt");
        IS_INT(t->items[0].gold, 1, "yaml gold");
    }
    sw_bench_task_free(t);
    const char *typo = "task: t\ntest_file: t.csv\ndoc_to_txt: x\n";
    IS_INT(sw_bench_yaml_load(path, typo, strlen(typo), &o, &t), SW_EFORMAT, "unknown key");
    OK(strstr(sw_err_msg(), ":3:") && strstr(sw_err_msg(), "doc_to_txt"), "names line and key (%s)",
       sw_err_msg());
    const char *notyaml = "task: [unclosed\n";
    IS_INT(sw_bench_yaml_load(path, notyaml, strlen(notyaml), &o, &t), SW_EFORMAT, "bad YAML");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    OK(system(cmd) == 0, "cleanup");
}

int main(void) {
    test_csv();
    test_doc();
    test_pyrandom();
    test_extract();
    test_stats();
    test_readers();
    test_yaml();
    return tap_done();
}
