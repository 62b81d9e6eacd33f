/* sw_config — options for every tool: a table of typed keys, filled from defaults, then a YAML
 * file (--config FILE.yaml), then command-line overrides (--key value, --key=value), in that order.
 *
 * Keys use ms-swift's argument names where ms-swift has the same knob. Unknown keys, wrong types
 * and out-of-range values are SW_EUSAGE errors that name the key (and the YAML file:line) and
 * suggest the closest valid key. --help prints every key with type, default and meaning.
 * Common flags handled here for every tool: -h/--help, --version, -q/--quiet, -v/--verbose,
 * --config FILE. A lone "-" is a positional argument (stdin/stdout); "--" ends options. */
#ifndef SW_CONFIG_H
#define SW_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <stdio.h>

enum sw_opt_type {
    SW_OPT_BOOL,   /* int: 0/1; "--key" alone means true; values true/false/1/0/yes/no */
    SW_OPT_INT,    /* int64_t */
    SW_OPT_FLOAT,  /* double */
    SW_OPT_STRING, /* char * (owned by the options struct; freed by sw_config_release) */
    SW_OPT_CHOICE, /* char *, one of the '|'-separated words in .choices */
    SW_OPT_LIST,   /* char *: comma-separated list kept as text (YAML sequences are joined) */
};

struct sw_opt {
    const char *key; /* ms-swift argument name, e.g. "learning_rate" */
    enum sw_opt_type type;
    size_t offset;       /* offsetof(struct my_opts, field) */
    const char *def;     /* default as text; NULL = unset (strings stay NULL, numbers 0) */
    const char *help;    /* one line */
    double min, max;     /* inclusive range for INT/FLOAT when min < max */
    const char *choices; /* "a|b|c" for CHOICE */
    const char *alias;   /* an accepted older name ("train_type" for "tuner_type"), or NULL */
};
#define SW_OPT_END                                                                                 \
    { 0 }

/* What a command accepts. opts ends with SW_OPT_END (key == NULL). */
struct sw_cli {
    const char *tool;    /* "sw-pack" */
    const char *command; /* "cat", or NULL for a tool without subcommands */
    const char *usage;   /* "sw-pack cat [options] [FILE|-]" */
    const char *summary; /* one paragraph printed under the usage line */
    const struct sw_opt *opts;
    int min_pos, max_pos; /* positional argument count bounds (max_pos < 0: unlimited) */
};

/* Parse argv (argv[0] is the command word, already consumed by the caller) into dst.
 * On success returns 0 and sets *pos and *npos to the positional arguments (pointers into argv,
 * array owned by dst's release: free(*pos)). Returns 1 when --help or --version was printed
 * (exit 0), or a negative sw_err (SW_EUSAGE for usage errors) with the message set.
 * -q/-v adjust the log level directly. */
int sw_cli_parse(const struct sw_cli *cli, void *dst, int argc, char **argv, char ***pos,
                 int *npos);

/* Building blocks, exposed for tests and for tools with custom flows. */
int sw_config_defaults(const struct sw_opt *opts, void *dst);
int sw_config_set(const struct sw_opt *opts, void *dst, const char *key, const char *value,
                  const char *where);
int sw_config_load_yaml(const struct sw_opt *opts, void *dst, const char *path);
/* Parse YAML text from memory; name is used in messages ("<name>:<line>: ..."). */
int sw_config_load_yaml_mem(const struct sw_opt *opts, void *dst, const char *text, size_t len,
                            const char *name);
void sw_config_release(const struct sw_opt *opts, void *dst);
/* Every key of opts with its value in dst as one JSON object (booleans, integers, reals, strings
 * or null): what a run records as args.json / run.json. NULL when out of memory. */
json_t *sw_config_to_json(const struct sw_opt *opts, const void *dst);
void sw_config_print_help(const struct sw_cli *cli, FILE *out);
/* The key of opts closest to key by edit distance (NULL when nothing is reasonably close). */
const char *sw_config_suggest(const struct sw_opt *opts, const char *key);

/* A tool made of subcommands ("sw-pack cat ..."): the whole of its main() is one call. */
struct sw_cli_command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command word; returns 0 or a sw_err */
    const char *summary;
};
struct sw_cli_suite {
    const char *tool;    /* "sw-pack" */
    const char *summary; /* one line under the usage */
    const struct sw_cli_command *commands;
    size_t ncommands;
    /* Run when the first argument is an option rather than a command word (NULL: usage error). */
    int (*default_run)(int argc, char **argv);
};

/* Initialise logging, ignore SIGPIPE, handle --help/--version, dispatch to the command and map
 * its result to the exit status (printing "sw-<tool>: error: ..." on failure). */
int sw_cli_main(const struct sw_cli_suite *suite, int argc, char **argv);

/* Print "sw-<tool> <version> (<git rev>)". */
void sw_print_version(const char *tool, FILE *out);

#endif
