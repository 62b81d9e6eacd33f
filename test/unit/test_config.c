/* Unit tests for sw_config: defaults, YAML, overrides, precedence, errors with suggestions. */
#include "sw_config.h"
#include "sw_err.h"
#include "tap.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

struct opts {
    double learning_rate;
    int64_t lora_rank;
    int packing;
    char *tuner_type;
    char *output_dir;
    char *target_modules;
};

static const struct sw_opt table[] = {
    {"learning_rate", SW_OPT_FLOAT, offsetof(struct opts, learning_rate), "1e-4", "peak LR", 0, 10,
     NULL, NULL},
    {"lora_rank", SW_OPT_INT, offsetof(struct opts, lora_rank), "8", "LoRA rank", 1, 4096, NULL,
     NULL},
    {"packing", SW_OPT_BOOL, offsetof(struct opts, packing), "false", "pack samples", 0, 0, NULL,
     NULL},
    {"tuner_type", SW_OPT_CHOICE, offsetof(struct opts, tuner_type), "lora", "full or lora", 0, 0,
     "full|lora", "train_type"},
    {"output_dir", SW_OPT_STRING, offsetof(struct opts, output_dir), NULL, "where to write", 0, 0,
     NULL, NULL},
    {"target_modules", SW_OPT_LIST, offsetof(struct opts, target_modules), "all-linear", "modules",
     0, 0, NULL, NULL},
    SW_OPT_END,
};

static const struct sw_cli cli = {"sw-test", "run", "sw-test run [options] FILE", "A test.", table,
                                  0,         2};

static int parse(int argc, char **argv, struct opts *o, char ***pos, int *npos) {
    return sw_cli_parse(&cli, o, argc, argv, pos, npos);
}

static void test_defaults_and_overrides(void) {
    struct opts o;
    char **pos;
    int npos;
    char *argv[] = {"run",
                    "--learning_rate",
                    "3e-4",
                    "--lora-rank=16",
                    "--packing",
                    "in.sws",
                    "--train_type",
                    "full",
                    "-",
                    NULL};
    int rc = parse(9, argv, &o, &pos, &npos);
    IS_INT(rc, 0, "parse ok: %s", sw_err_msg());
    IS_NEAR(o.learning_rate, 3e-4, 1e-12, "float override");
    IS_INT(o.lora_rank, 16, "--key=value with dashes");
    IS_INT(o.packing, 1, "bare bool flag means true");
    IS_STR(o.tuner_type, "full", "alias train_type sets tuner_type");
    IS_STR(o.target_modules, "all-linear", "list default");
    OK(o.output_dir == NULL, "unset string stays NULL");
    IS_INT(npos, 2, "two positionals");
    IS_STR(pos[0], "in.sws", "first positional");
    IS_STR(pos[1], "-", "lone dash is positional");
    free(pos);
    sw_config_release(table, &o);

    char *argv2[] = {"run", "--packing", "false", "--no-packing", NULL};
    rc = parse(4, argv2, &o, &pos, &npos);
    IS_INT(rc, 0, "bool with explicit value and --no-");
    IS_INT(o.packing, 0, "packing false");
    IS_INT(npos, 0, "no positionals");
    free(pos);
    sw_config_release(table, &o);
}

static void expect_usage(int argc, char **argv, const char *needle, const char *what) {
    struct opts o;
    char **pos;
    int npos;
    int rc = parse(argc, argv, &o, &pos, &npos);
    IS_INT(rc, SW_EUSAGE, "%s: usage error", what);
    OK(strstr(sw_err_msg(), needle) != NULL, "%s: message '%s' mentions '%s'", what, sw_err_msg(),
       needle);
}

static void test_errors(void) {
    char *a1[] = {"run", "--learnig_rate", "1", NULL};
    expect_usage(3, a1, "did you mean 'learning_rate'", "typo suggests");
    char *a2[] = {"run", "--lora_rank", "abc", NULL};
    expect_usage(3, a2, "expects an integer", "wrong type int");
    char *a3[] = {"run", "--lora_rank", "0", NULL};
    expect_usage(3, a3, "out of range", "int below range");
    char *a4[] = {"run", "--learning_rate", "nan", NULL};
    expect_usage(3, a4, "expects a number", "nan rejected");
    char *a5[] = {"run", "--tuner_type", "qlora", NULL};
    expect_usage(3, a5, "one of full|lora", "bad choice");
    char *a6[] = {"run", "--output_dir", NULL};
    expect_usage(2, a6, "needs a value", "missing value");
    char *a7[] = {"run", "a", "b", "c", NULL};
    expect_usage(4, a7, "unexpected argument 'c'", "too many positionals");
    char *a8[] = {"run", "-x", NULL};
    expect_usage(2, a8, "unknown option '-x'", "unknown short option");
    char *a9[] = {"run", "--packing=maybe", NULL};
    expect_usage(2, a9, "expects true or false", "bad bool");
    char *a10[] = {"run", "--zzzzzzzzzz", "1", NULL};
    expect_usage(3, a10, "see --help", "no suggestion for junk");
}

static void test_yaml(void) {
    struct opts o;
    sw_config_defaults(table, &o);
    const char *y = "# comment\nlearning_rate: 2e-5\nlora_rank: 32\npacking: true\n"
                    "target_modules: [q_proj, v_proj]\noutput_dir: out/run1\n";
    int rc = sw_config_load_yaml_mem(table, &o, y, strlen(y), "cfg.yaml");
    IS_INT(rc, 0, "yaml ok: %s", sw_err_msg());
    IS_NEAR(o.learning_rate, 2e-5, 1e-12, "yaml float");
    IS_INT(o.lora_rank, 32, "yaml int");
    IS_INT(o.packing, 1, "yaml bool");
    IS_STR(o.target_modules, "q_proj,v_proj", "yaml list joined");
    IS_STR(o.output_dir, "out/run1", "yaml string");
    sw_config_release(table, &o);

    sw_config_defaults(table, &o);
    const char *bad = "learning_rate: 1e-4\nlora_rnak: 8\n";
    rc = sw_config_load_yaml_mem(table, &o, bad, strlen(bad), "cfg.yaml");
    IS_INT(rc, SW_EUSAGE, "yaml unknown key");
    OK(strstr(sw_err_msg(), "cfg.yaml:2") && strstr(sw_err_msg(), "lora_rank"),
       "yaml error names file:line and suggestion: %s", sw_err_msg());
    const char *nested = "learning_rate:\n  a: 1\n";
    rc = sw_config_load_yaml_mem(table, &o, nested, strlen(nested), "n.yaml");
    IS_INT(rc, SW_EUSAGE, "nested mapping rejected");
    const char *syntax = "a: [1, 2\n";
    rc = sw_config_load_yaml_mem(table, &o, syntax, strlen(syntax), "s.yaml");
    IS_INT(rc, SW_EUSAGE, "syntax error");
    OK(strstr(sw_err_msg(), "s.yaml:") != NULL, "syntax error names file: %s", sw_err_msg());
    rc = sw_config_load_yaml_mem(table, &o, "", 0, "empty.yaml");
    IS_INT(rc, 0, "empty file is fine");
    rc = sw_config_load_yaml_mem(table, &o, "- a\n- b\n", 8, "l.yaml");
    IS_INT(rc, SW_EUSAGE, "top-level list rejected");
    sw_config_release(table, &o);
}

static void test_precedence(void) {
    char path[] = "/tmp/sw_test_config_XXXXXX";
    int fd = mkstemp(path);
    const char *y = "learning_rate: 0.5\nlora_rank: 4\n";
    OK(fd >= 0 && write(fd, y, strlen(y)) == (ssize_t)strlen(y), "temp config written");
    close(fd);
    struct opts o;
    char **pos;
    int npos;
    char *argv[] = {"run", "--lora_rank", "64", "--config", path, NULL};
    int rc = parse(5, argv, &o, &pos, &npos);
    IS_INT(rc, 0, "parse with config: %s", sw_err_msg());
    IS_NEAR(o.learning_rate, 0.5, 1e-12, "config value applies");
    IS_INT(o.lora_rank, 64, "command line wins over config regardless of order");
    free(pos);
    sw_config_release(table, &o);
    unlink(path);
    char *argv2[] = {"run", "--config", "/nonexistent/x.yaml", NULL};
    rc = parse(3, argv2, &o, &pos, &npos);
    IS_INT(rc, SW_EUSAGE, "missing config file is a usage error");
    OK(strstr(sw_err_msg(), "/nonexistent/x.yaml") != NULL, "names the file: %s", sw_err_msg());
}

static void test_suggest(void) {
    IS_STR(sw_config_suggest(table, "lr_rank"), "lora_rank", "suggest close key");
    IS_STR(sw_config_suggest(table, "rank"), "lora_rank", "suggest by substring");
    OK(sw_config_suggest(table, "qqqqqqqqqqqqqq") == NULL, "no suggestion for junk");
}

/* Integer ranges print as integers, in errors and in --help (issue 10, defect 10: they printed
 * as "[1, 1.07374e+09]"). */
static void test_int_range_text(void) {
    struct big {
        int64_t max_length;
        double ratio;
    } b;
    static const struct sw_opt big_table[] = {
        {"max_length", SW_OPT_INT, offsetof(struct big, max_length), "8", "tokens", 1, 1 << 30,
         NULL, NULL},
        {"ratio", SW_OPT_FLOAT, offsetof(struct big, ratio), "0.5", "a fraction", 0, 0.999, NULL,
         NULL},
        SW_OPT_END,
    };
    static const struct sw_cli big_cli = {"sw-test", NULL, "sw-test [options]", NULL, big_table,
                                          0,         0};
    char **pos;
    int npos;
    char *argv[] = {"sw-test", "--max_length", "0", NULL};
    int rc = sw_cli_parse(&big_cli, &b, 3, argv, &pos, &npos);
    IS_INT(rc, SW_EUSAGE, "out-of-range integer is a usage error");
    OK(strstr(sw_err_msg(), "out of range [1, 1073741824]") != NULL,
       "integer range as integers: %s", sw_err_msg());
    char *argv2[] = {"sw-test", "--ratio", "1.5", NULL};
    rc = sw_cli_parse(&big_cli, &b, 3, argv2, &pos, &npos);
    OK(rc == SW_EUSAGE && strstr(sw_err_msg(), "[0, 0.999]") != NULL, "float range unchanged: %s",
       sw_err_msg());
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    sw_config_print_help(&big_cli, f);
    fclose(f);
    OK(text && strstr(text, "range [1, 1073741824]") && !strstr(text, "e+09"),
       "--help prints the integer range as integers");
    free(text);
}

int main(void) {
    test_int_range_text();
    test_defaults_and_overrides();
    test_errors();
    test_yaml();
    test_precedence();
    test_suggest();
    return tap_done();
}
