/* sw_emit — writes tokenized samples (sw_template_sample) into an sws stream as the records
 * docs/pack.md "Output records" defines: one "sample" record per row (SFT, preference pairs, KTO),
 * or "batch" records of per-device batch size: right-padded [B, T] with an attention mask,
 * padding-free [1, total] with cu_seqlens, or bin-packed sequences of at most max_length tokens.
 *
 * Packing keeps waiting samples in a slot pool bounded by the packing window (0 = the whole
 * input, flushed by sw_emitter_finish), so streaming input needs bounded memory; with shuffle the
 * packed sequences of each window are emitted in a seeded random order. */
#ifndef SW_EMIT_H
#define SW_EMIT_H

#include "sw_packing.h"
#include "sw_stream.h"
#include "sw_template.h"

#include <stddef.h>
#include <stdint.h>

enum sw_emit_mode {
    SW_EMIT_SAMPLES = 0, /* one "sample" record per row */
    SW_EMIT_PADDED,      /* "batch": right-padded rows + attention_mask */
    SW_EMIT_FLAT,        /* "batch": padding-free, one row with cu_seqlens */
    SW_EMIT_PACKED,      /* "batch": bin-packed sequences, padding-free */
};

/* What the rows are; every row of a stream is of one kind. Batches are SFT only. */
enum sw_emit_kind { SW_EMIT_SFT = 0, SW_EMIT_PREFERENCE, SW_EMIT_KTO };

struct sw_emit_opts {
    enum sw_emit_mode mode;
    enum sw_emit_kind kind;
    size_t batch_size;     /* samples (or packed sequences) per batch record */
    uint32_t max_length;   /* packed sequence length */
    size_t packing_window; /* samples per packing round; 0 = all */
    enum sw_pack_strategy strategy;
    uint64_t seed; /* order of packed sequences when shuffle */
    int shuffle;
    int32_t pad_id; /* right padding of SW_EMIT_PADDED */
};

/* Counters the emitter adds to (the caller owns them and may read them at any time). */
struct sw_emit_counts {
    uint64_t records, samples, sequences, padded_tokens;
};

/* One row handed to the emitter. s (and r for preference rows) are moved out: the emitter takes
 * their buffers and leaves them zeroed. file/line name the row's origin in "sample" records. */
struct sw_emit_row {
    struct sw_template_sample *s; /* the sample, or the chosen side of a pair */
    struct sw_template_sample *r; /* the rejected side (SW_EMIT_PREFERENCE), else NULL */
    int kto;                      /* SW_KTO_DESIRABLE / SW_KTO_UNDESIRABLE for SW_EMIT_KTO */
    const char *file;             /* borrowed; NULL writes "" */
    long line;
};

struct sw_emitter;

/* The stream_kind of the header an emitter with o writes: samples | batches | packed_batches. */
const char *sw_emit_stream_kind(const struct sw_emit_opts *o);
/* A new emitter writing records to w (borrowed, already opened with sw_emit_stream_kind's kind)
 * and adding to counts (borrowed). SW_EINVAL for batches of non-SFT rows or batch_size 0. */
int sw_emitter_new(const struct sw_emit_opts *o, struct sw_stream_writer *w,
                   struct sw_emit_counts *counts, struct sw_emitter **out);
/* Hand over one row (see struct sw_emit_row); may write records. 0 or a negative sw_err. */
int sw_emitter_add(struct sw_emitter *e, struct sw_emit_row *row);
/* Write what is pending (last partial batch, last packing window). */
int sw_emitter_finish(struct sw_emitter *e);
void sw_emitter_free(struct sw_emitter *e);

#endif
