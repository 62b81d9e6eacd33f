/* pack.h — shared declarations of sw-pack's pack/tokenize/detokenize subcommands (pack.c parses
 * options, pack_run.c drives the pipeline, pack_stats.c reports; lib/data/sw_emit writes records).
 * The library does the work (sw_dataset, sw_template, sw_packing, sw_stream); these files only
 * connect it. docs/pack.md describes the options and the records. */
#ifndef SW_PACK_TOOL_H
#define SW_PACK_TOOL_H

#include "sw_dataset.h"
#include "sw_emit.h"
#include "sw_packing.h"
#include "sw_progress.h"
#include "sw_stream.h"
#include "sw_template.h"
#include "sw_tokenizer.h"

#include <stdint.h>

int sw_pack_pack_main(int argc, char **argv);
int sw_pack_tokenize_main(int argc, char **argv);
int sw_pack_detokenize_main(int argc, char **argv);

/* Options, ms-swift names where ms-swift has the knob (see pack.c's table). */
struct pack_opts {
    char *tokenizer, *dataset, *val_dataset, *dataset_format, *template_name, *system;
    int64_t max_length;
    char *truncation_strategy, *loss_scale, *packing_strategy;
    int packing, padding_free, batch, dataset_shuffle, streaming, skip_bad_rows;
    int64_t packing_window, per_device_train_batch_size, data_seed, dataset_num_proc;
    int64_t check_tokenization;
    double split_dataset_ratio;
    char *output, *val_output, *stats;
    char *use_hf, *model_revision, *hub_token; /* --tokenizer as a hub id */
};

/* Row outcome after tokenization. */
enum pack_status { ITEM_OK = 0, ITEM_DELETED, ITEM_NO_LOSS, ITEM_BAD };

/* One tokenized row. */
struct pack_item {
    struct sw_template_sample s; /* the sample, or the chosen side of a pair */
    struct sw_template_sample r; /* the rejected side (preference rows) */
    int kto;                     /* KTO label or SW_KTO_NONE */
    uint32_t file;
    long line;
    unsigned char status, truncated;
    int code;  /* ITEM_BAD: the error code */
    char *err; /* ITEM_BAD: the message */
};

/* What the stream carries: decided by the first row, and every row must agree. */
enum pack_kind { KIND_UNSET = 0, KIND_SFT, KIND_PREFERENCE, KIND_KTO };

/* Row counts add up (pack_stats.c prints the sum):
 *     rows_read + rows_repeated + rows_from_split
 *         = rows_out + rows_deleted + rows_no_loss + rows_bad + rows_unsampled + rows_to_val
 * (rows_truncated is part of rows_out). */
struct pack_counts {
    uint64_t rows_read, rows_bad, rows_tokenized, rows_out, rows_truncated, rows_deleted;
    uint64_t rows_no_loss, rows_sampled;
    uint64_t rows_unsampled;  /* read, not chosen by #N (never parsed) */
    uint64_t rows_repeated;   /* extra copies #N above the row count made */
    uint64_t rows_to_val;     /* train: rows the split sent to validation */
    uint64_t rows_from_split; /* validation: rows it got from the split */
    uint64_t tokens, loss_tokens;
    uint64_t max_sample_len;
    struct sw_emit_counts out; /* records, samples, sequences, padding written (the emitter's) */
};

/* Everything the pipeline shares. */
struct pack_ctx {
    const struct pack_opts *o;
    struct sw_tokenizer *tok;
    const struct sw_template *tpl;
    struct sw_template_tokens tk;
    struct sw_template_opts topts;
    enum sw_truncation trunc;
    enum sw_pack_strategy strategy;
    enum sw_dataset_format format;
    int32_t pad_id;
    enum pack_kind kind;
    const char *const *files; /* file table of the current source (for row names) */
    uint64_t checked;         /* rows whose tokenization was verified against whole text */
};

/* The emitter options for this run (lib/data/sw_emit.h), from the options and ctx->kind. */
void pack_emit_opts(const struct pack_ctx *x, struct sw_emit_opts *eo);

/* ---- statistics (pack_stats.c) ------------------------------------------------------------- */

/* Summary lines on stderr (info level). */
void pack_stats_log(const struct pack_ctx *x, const struct pack_counts *train,
                    const struct pack_counts *val, double seconds);
/* The counts as a JSON object (new reference) for --stats and the header meta. */
struct json_t *pack_counts_json(const struct pack_ctx *x, const struct pack_counts *c);
/* Write the --stats file (atomically). */
int pack_stats_write(const char *path, const struct pack_ctx *x, const struct pack_counts *train,
                     const struct pack_counts *val, double seconds);

/* ---- the pipeline (pack_run.c) ------------------------------------------------------------- */

int pack_run(const struct pack_opts *o);

#endif
