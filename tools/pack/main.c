/* sw-pack — data preparation: datasets in, sws streams out (docs/stream.md). This file only
 * dispatches subcommands; each lives in its own file and reports errors through sw_err. To add
 * one, write `int sw_pack_<name>_main(int argc, char **argv)` (argv[0] is the command word;
 * parse with sw_cli_parse) and add a row to the table below. */
#include "sw_config.h"
#include "sw_err.h"
#include "sw_io.h"
#include "sw_log.h"

#include <stdio.h>
#include <string.h>

int sw_pack_cat_main(int argc, char **argv);
int sw_pack_pack_main(int argc, char **argv);
int sw_pack_tokenize_main(int argc, char **argv);
int sw_pack_detokenize_main(int argc, char **argv);

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"cat", sw_pack_cat_main, "print an sws stream as JSON lines and verify it"},
    {"pack", sw_pack_pack_main, "datasets to samples or (packed) batches (the default command)"},
    {"tokenize", sw_pack_tokenize_main, "JSON lines {\"text\"} to {\"ids\"} with a tokenizer"},
    {"detokenize", sw_pack_detokenize_main, "JSON lines {\"ids\"} to {\"text\"}"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
    fprintf(out, "usage: sw-pack <command> [options] [args]\n"
                 "       sw-pack <command> --help\n\n"
                 "Turn datasets into token samples and packed batches, as sws streams.\n\n"
                 "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\noptions:\n"
                 "  -h, --help  show this help\n"
                 "  --version   show the version\n");
}

int main(int argc, char **argv) {
    sw_log_init("sw-pack");
    sw_io_ignore_sigpipe(); /* a closed stdout is EPIPE, reported as SW_EPIPE: a quiet exit 0 */
    if (argc < 2) {
        usage(stderr);
        return sw_log_report(sw_err_set(SW_EUSAGE, "missing command (see sw-pack --help)"));
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        sw_print_version("sw-pack", stdout);
        return 0;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return sw_log_report(commands[i].run(argc - 1, argv + 1));
    /* Options first and no command word: the default command (sw-pack --tokenizer D ...). */
    if (cmd[0] == '-' && cmd[1] == '-') return sw_log_report(sw_pack_pack_main(argc, argv));
    return sw_log_report(sw_err_set(SW_EUSAGE, "unknown command '%s' (see sw-pack --help)", cmd));
}
