/* sw-pack — data preparation: datasets in, sws streams out (docs/stream.md). This file only
 * dispatches subcommands; each lives in its own file and reports errors through sw_err. To add
 * one, write `int sw_pack_<name>_main(int argc, char **argv)` (argv[0] is the command word;
 * parse with sw_cli_parse) and add a row to the table below. */
#include "sw_config.h"

int sw_pack_cat_main(int argc, char **argv);
int sw_pack_pack_main(int argc, char **argv);
int sw_pack_tokenize_main(int argc, char **argv);
int sw_pack_detokenize_main(int argc, char **argv);

static const struct sw_cli_command commands[] = {
    {"cat", sw_pack_cat_main, "print an sws stream as JSON lines and verify it"},
    {"pack", sw_pack_pack_main, "datasets to samples or (packed) batches (the default command)"},
    {"tokenize", sw_pack_tokenize_main, "JSON lines {\"text\"} to {\"ids\"} with a tokenizer"},
    {"detokenize", sw_pack_detokenize_main, "JSON lines {\"ids\"} to {\"text\"}"},
};

int main(int argc, char **argv) {
    static const struct sw_cli_suite suite = {
        "sw-pack", "Turn datasets into token samples and packed batches, as sws streams.", commands,
        sizeof commands / sizeof commands[0], sw_pack_pack_main};
    return sw_cli_main(&suite, argc, argv);
}
