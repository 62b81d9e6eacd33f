/* sw-pack [pack] — datasets to an sws stream of token samples or (packed) batches: the option
 * table and its checks. `sw-pack --tokenizer DIR --dataset FILE` (no command word) runs this too.
 * Option names are ms-swift's where ms-swift has the knob; the pipeline is pack_run.c. */
#include "pack.h"

#include "sw_config.h"
#include "sw_err.h"
#include "sw_hub.h"
#include "sw_log.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define O(f) offsetof(struct pack_opts, f)

static const struct sw_opt pack_opt_table[] = {
    {"tokenizer", SW_OPT_STRING, O(tokenizer), NULL,
     "tokenizer or model folder (tokenizer.json[.gz] + tokenizer_config.json), or a hub id "
     "(org/name: its tokenizer files are fetched into the hub cache); required",
     0, 0, NULL, NULL},
    {"dataset", SW_OPT_LIST, O(dataset), NULL,
     "datasets, comma-separated: FILE (.json/.jsonl, gzip ok), FOLDER, - (stdin), each with an "
     "optional #N to sample N rows; required",
     0, 0, NULL, NULL},
    {"val_dataset", SW_OPT_LIST, O(val_dataset), NULL,
     "validation datasets (same syntax), written to --val_output", 0, 0, NULL, NULL},
    {"dataset_format", SW_OPT_CHOICE, O(dataset_format), "auto",
     "row format; auto detects it per file from the first row's keys", 0, 0,
     "auto|alpaca|sharegpt|messages|query|preference|kto|text", NULL},
    {"template", SW_OPT_STRING, O(template_name), NULL,
     "chat template (chatml|default|gemma|llama|llama3|mistral|qwen|qwen2_5|qwen3); default: "
     "recognised from "
     "tokenizer_config.json's chat_template",
     0, 0, NULL, NULL},
    {"system", SW_OPT_STRING, O(system), NULL,
     "system prompt for rows without one (overrides the template default; '' = none)", 0, 0, NULL,
     NULL},
    {"max_length", SW_OPT_INT, O(max_length), "2048",
     "longest sample in tokens (and the packed sequence length)", 1, 1 << 30, NULL, NULL},
    {"truncation_strategy", SW_OPT_CHOICE, O(truncation_strategy), "delete",
     "samples over max_length: delete them, or keep the left or right max_length tokens "
     "(left = drop the start)",
     0, 0, "delete|left|right", NULL},
    {"loss_scale", SW_OPT_CHOICE, O(loss_scale), "default",
     "trained tokens: default = every assistant turn, last_round = the turns after the last "
     "user/tool turn, all = every token",
     0, 0, "default|last_round|all", NULL},
    {"packing", SW_OPT_BOOL, O(packing), "false",
     "pack samples into sequences of max_length (bin packing; positions restart per sample)", 0, 0,
     NULL, NULL},
    {"packing_strategy", SW_OPT_CHOICE, O(packing_strategy), "binpack",
     "binpack = best-fit decreasing (ms-swift), ffd = first-fit decreasing, sequential = next-fit "
     "in order",
     0, 0, "binpack|ffd|sequential", NULL},
    {"packing_window", SW_OPT_INT, O(packing_window), "0",
     "samples packed together (0: all of them, or 10000 with --streaming); the least filled "
     "sequence of a window joins the next",
     0, 1e12, NULL, NULL},
    {"padding_free", SW_OPT_BOOL, O(padding_free), "false",
     "batches as one flat row with cu_seqlens instead of right-padded rows", 0, 0, NULL, NULL},
    {"per_device_train_batch_size", SW_OPT_INT, O(per_device_train_batch_size), "1",
     "samples (or packed sequences) per batch record", 1, 1 << 20, NULL, NULL},
    {"batch", SW_OPT_BOOL, O(batch), "true",
     "write batch records; --no-batch writes one sample record per row (preference and KTO rows "
     "are always samples)",
     0, 0, NULL, NULL},
    {"data_seed", SW_OPT_INT, O(data_seed), "42", "seed of sampling, splitting and shuffling", 0,
     9.2e18, NULL, "seed"},
    {"dataset_shuffle", SW_OPT_BOOL, O(dataset_shuffle), "true",
     "shuffle the rows (and the packed sequences); with --streaming only within a window", 0, 0,
     NULL, NULL},
    {"split_dataset_ratio", SW_OPT_FLOAT, O(split_dataset_ratio), "0",
     "fraction of each dataset held out for validation (--val_output)", 0, 0.999999, NULL, NULL},
    {"streaming", SW_OPT_BOOL, O(streaming), "false",
     "bounded memory: read, tokenize and pack window by window (no global shuffle; #N takes the "
     "first N rows)",
     0, 0, NULL, NULL},
    {"dataset_num_proc", SW_OPT_INT, O(dataset_num_proc), "0",
     "tokenizer threads (0 = SW_NUM_THREADS or every core)", 0, 4096, NULL, NULL},
    {"skip_bad_rows", SW_OPT_BOOL, O(skip_bad_rows), "false",
     "count and skip rows with errors (reported at the end) instead of stopping at the first", 0, 0,
     NULL, NULL},
    {"check_tokenization", SW_OPT_INT, O(check_tokenization), "64",
     "verify that the first N rows tokenize piecewise exactly as whole texts", 0, 1e12, NULL, NULL},
    {"output", SW_OPT_STRING, O(output), "-", "output stream: file, - (stdout) or ZeroMQ endpoint",
     0, 0, NULL, NULL},
    {"val_output", SW_OPT_STRING, O(val_output), NULL,
     "validation stream (needs --val_dataset or --split_dataset_ratio)", 0, 0, NULL, NULL},
    {"stats", SW_OPT_STRING, O(stats), NULL, "also write the summary as JSON to this file", 0, 0,
     NULL, NULL},
    SW_HUB_OPT_ROWS(struct pack_opts),
    SW_OPT_END,
};

static const struct sw_cli pack_cli = {
    .tool = "sw-pack",
    .command = "pack",
    .usage = "sw-pack [pack] --tokenizer DIR --dataset FILE[,FILE...] [options]",
    .summary =
        "Read datasets (JSON or JSON lines, gzip ok; alpaca, sharegpt, messages, query/response,\n"
        "preference, KTO or plain text rows), render them with a chat template, tokenize them\n"
        "(all cores, order kept), mask the loss, truncate to max_length and write an sws stream\n"
        "of batches (padded, padding-free, or bin-packed with --packing) or samples. A summary\n"
        "goes to stderr. Without --streaming every row is read first (global shuffle, global\n"
        "packing); --streaming works window by window in bounded memory. See docs/pack.md.",
    .opts = pack_opt_table,
    .min_pos = 0,
    .max_pos = 0,
};

static int check_opts(struct pack_opts *o) {
    if (!o->tokenizer) return sw_err_set(SW_EUSAGE, "--tokenizer is required");
    if (!o->dataset) return sw_err_set(SW_EUSAGE, "--dataset is required");
    if (o->val_output && !o->val_dataset && o->split_dataset_ratio <= 0)
        return sw_err_set(SW_EUSAGE, "--val_output needs --val_dataset or --split_dataset_ratio");
    if ((o->val_dataset || o->split_dataset_ratio > 0) && !o->val_output)
        return sw_err_set(SW_EUSAGE, "validation rows need a destination: give --val_output FILE");
    if (o->val_dataset && o->split_dataset_ratio > 0)
        return sw_err_set(SW_EUSAGE, "--val_dataset and --split_dataset_ratio exclude each other");
    if (o->streaming && o->split_dataset_ratio > 0)
        return sw_err_set(SW_EUSAGE, "--split_dataset_ratio needs the whole dataset in memory; "
                                     "with --streaming give --val_dataset");
    if (!o->batch && (o->packing || o->padding_free))
        return sw_err_set(SW_EUSAGE, "--%s writes batch records; it does not go with --no-batch",
                          o->packing ? "packing" : "padding_free");
    if (o->packing && o->padding_free) sw_debug("--padding_free is implied by --packing");
    if (o->val_output && o->output && strcmp(o->val_output, o->output) == 0)
        return sw_err_set(SW_EUSAGE, "--val_output and --output are the same");
    if (o->template_name && !sw_template_get(o->template_name))
        return sw_err_set(SW_EUSAGE, "unknown template '%s' (%s)", o->template_name,
                          sw_template_names());
    return 0;
}

int sw_pack_pack_main(int argc, char **argv) {
    struct pack_opts o;
    memset(&o, 0, sizeof o);
    char **pos = NULL;
    int npos = 0;
    int rc = sw_cli_parse(&pack_cli, &o, argc, argv, &pos, &npos);
    free(pos);
    if (rc == 1) {
        sw_config_release(pack_opt_table, &o);
        return 0;
    }
    if (rc == 0) rc = check_opts(&o);
    if (rc == 0)
        rc = sw_hub_resolve_arg(&o.tokenizer, SW_HUB_NEED_TOKENIZER, o.use_hf, o.model_revision,
                                o.hub_token);
    if (rc == 0) rc = pack_run(&o);
    sw_config_release(pack_opt_table, &o);
    return rc;
}
