/* sw-quant — model conversion and quantization over HF folders. This file only dispatches the
 * subcommand; each lives in its own file (inspect.c, ...) and reports errors through sw_err. */
#include "quant.h"

#include "sw_config.h"
#include "sw_err.h"
#include "sw_io.h"
#include "sw_log.h"

#include <stdio.h>
#include <string.h>

int sw_quant_merge_lora_main(int argc, char **argv); /* merge.c */

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"inspect", sw_quant_inspect_main,
     "describe a .safetensors file, a shard index or an HF model folder"},
    {"merge-lora", sw_quant_merge_lora_main, "fold a PEFT LoRA adapter into its base model"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
    fprintf(out, "usage: sw-quant <command> [options] [args]\n"
                 "       sw-quant <command> --help\n\n"
                 "Model conversion and quantization over Hugging Face model folders.\n\n"
                 "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\noptions:\n"
                 "  -h, --help  show this help\n"
                 "  --version   show the version\n");
}

int main(int argc, char **argv) {
    sw_log_init("sw-quant");
    sw_io_ignore_sigpipe();
    if (argc < 2) {
        usage(stderr);
        return sw_log_report(sw_err_set(SW_EUSAGE, "missing command (see sw-quant --help)"));
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        sw_print_version("sw-quant", stdout);
        return 0;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return sw_log_report(commands[i].run(argc - 1, argv + 1));
    return sw_log_report(sw_err_set(SW_EUSAGE, "unknown command '%s' (see sw-quant --help)", cmd));
}
