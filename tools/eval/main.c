/* sw-eval — local evaluation and inference on the CPU over an HF model folder (plus a PEFT
 * adapter). This file only dispatches the subcommand; each lives in its own file and reports
 * errors through sw_err. See tools/eval/README.md and docs/eval.md. */
#include "eval.h"

#include "sw_config.h"
#include "sw_err.h"
#include "sw_io.h"
#include "sw_log.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"logits", sw_eval_logits_main,
     "full logits and transformers' loss of token ids (safetensors in and out)"},
    {"generate", sw_eval_generate_main,
     "greedy or sampled text generation from a prompt, a query or chat messages"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
    fprintf(out, "usage: sw-eval <command> [options]\n"
                 "       sw-eval <command> --help\n\n"
                 "Evaluate and run a Hugging Face model folder (and a PEFT LoRA adapter) on the "
                 "CPU.\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\noptions:\n"
                 "  -h, --help  show this help\n"
                 "  --version   show the version\n");
}

int main(int argc, char **argv) {
    sw_log_init("sw-eval");
    sw_io_ignore_sigpipe();
    if (argc < 2) {
        usage(stderr);
        return sw_log_report(sw_err_set(SW_EUSAGE, "missing command (see sw-eval --help)"));
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        sw_print_version("sw-eval", stdout);
        return 0;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return sw_log_report(commands[i].run(argc - 1, argv + 1));
    return sw_log_report(sw_err_set(SW_EUSAGE, "unknown command '%s' (see sw-eval --help)", cmd));
}
