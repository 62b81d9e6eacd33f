/* sw_emit — tokenized samples into sws records: sample records, right-padded batches,
 * padding-free batches and bin-packed batches (docs/pack.md "Output records"). sw-pack writes
 * its streams through it; anything else that turns conversations into a training stream can.
 *
 * Packing keeps the waiting samples in a slot pool (slot = the id given to the packer), so memory
 * is bounded by the packing window, not by the dataset; with dataset_shuffle the packed sequences
 * of each window are emitted in a seeded random order (decreasing-size packing creates them
 * longest first, which would otherwise order the stream by length). */
#include "sw_emit.h"

#include "sw_err.h"
#include "sw_rng.h"

#include <stdlib.h>
#include <string.h>

/* Philox stream id for the order of packed sequences (apart from the dataset shuffle's). */
#define PACK_RNG_STREAM 0x7061636bULL /* "pack" */
struct sw_emitter {
    struct sw_emit_opts o;
    struct sw_stream_writer *w;
    struct sw_emit_counts *c;
    enum sw_emit_mode mode;
    size_t bsz;
    struct sw_record_builder *b;
    /* samples waiting for a batch (SW_EMIT_PADDED / SW_EMIT_FLAT), or the packed batch being built
     * (SW_EMIT_PACKED: slots of its samples) */
    struct sw_template_sample *pend;
    size_t n_pend, cap_pend;
    uint64_t *batch_slots;
    size_t n_batch_slots, cap_batch_slots, bins_in_batch;
    /* packing */
    struct sw_packer packer;
    struct sw_template_sample *pool;
    size_t pool_cap;
    uint64_t *free_slots;
    size_t n_free;
    struct sw_rng rng;
    /* record buffers */
    int32_t *ids, *labels, *pos, *cu;
    uint8_t *mask;
    uint32_t *lens;
    size_t cap_tok, cap_seq;
};

const char *sw_emit_stream_kind(const struct sw_emit_opts *o) {
    if (o->mode == SW_EMIT_SAMPLES) return "samples";
    return o->mode == SW_EMIT_PACKED ? "packed_batches" : "batches";
}

int sw_emitter_new(const struct sw_emit_opts *o, struct sw_stream_writer *w,
                   struct sw_emit_counts *counts, struct sw_emitter **out) {
    *out = NULL;
    if (o->mode != SW_EMIT_SAMPLES && (o->kind != SW_EMIT_SFT || o->batch_size == 0))
        return sw_err_set(SW_EINVAL, "batches need SFT samples and a batch size >= 1");
    struct sw_emitter *e = calloc(1, sizeof *e);
    if (!e || !(e->b = sw_record_builder_new("sample"))) {
        free(e);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    e->o = *o;
    e->w = w;
    e->c = counts;
    e->mode = o->mode;
    e->bsz = o->batch_size;
    sw_packer_init(&e->packer, o->max_length, o->packing_window, o->strategy);
    sw_rng_init(&e->rng, o->seed, PACK_RNG_STREAM);
    *out = e;
    return 0;
}

void sw_emitter_free(struct sw_emitter *e) {
    if (!e) return;
    for (size_t i = 0; i < e->n_pend; i++)
        sw_template_sample_release(&e->pend[i]);
    free(e->pend);
    for (size_t i = 0; i < e->pool_cap; i++)
        sw_template_sample_release(&e->pool[i]);
    free(e->pool);
    free(e->free_slots);
    free(e->batch_slots);
    sw_packer_release(&e->packer);
    sw_record_builder_free(e->b);
    free(e->ids), free(e->labels), free(e->pos), free(e->cu), free(e->mask), free(e->lens);
    free(e);
}

static int grow(void **p, size_t *cap, size_t want, size_t elem) {
    if (want <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < want)
        c *= 2;
    void *n = realloc(*p, c * elem);
    if (!n) return sw_err_set(SW_ENOMEM, "out of memory");
    *p = n;
    *cap = c;
    return 0;
}

/* Token buffers for a record of total tokens and nseq sequences. */
static int reserve(struct sw_emitter *e, size_t total, size_t nseq) {
    if (total > e->cap_tok) {
        size_t c = e->cap_tok, c2;
        c2 = c;
        SW_TRY(grow((void **)&e->ids, &c, total, sizeof *e->ids));
        c = c2;
        SW_TRY(grow((void **)&e->labels, &c, total, sizeof *e->labels));
        c = c2;
        SW_TRY(grow((void **)&e->pos, &c, total, sizeof *e->pos));
        c = c2;
        SW_TRY(grow((void **)&e->mask, &c, total, sizeof *e->mask));
        e->cap_tok = c;
    }
    if (nseq + 1 > e->cap_seq) {
        size_t c = e->cap_seq, c2 = c;
        SW_TRY(grow((void **)&e->cu, &c, nseq + 1, sizeof *e->cu));
        c = c2;
        SW_TRY(grow((void **)&e->lens, &c, nseq + 1, sizeof *e->lens));
        e->cap_seq = c;
    }
    return 0;
}

static int put_2d(struct sw_record_builder *b, const char *key, enum sw_dtype dt, int64_t rows,
                  int64_t cols, void *data) {
    struct sw_tensor t;
    int64_t shape[2] = {rows, cols};
    SW_TRY(sw_tensor_init(&t, dt, 2, shape, data));
    return sw_record_put_tensor(b, key, &t);
}

static int write_record(struct sw_emitter *e) {
    SW_TRY(sw_stream_write(e->w, e->b));
    e->c->records++;
    return 0;
}

/* ---- sample records ---------------------------------------------------------------------- */

static int emit_sample(struct sw_emitter *e, struct sw_emit_row *it) {
    struct sw_record_builder *b = e->b;
    SW_TRY(sw_record_builder_reset(b, "sample"));
    if (e->o.kind == SW_EMIT_PREFERENCE) {
        SW_TRY(sw_record_put_i32(b, "chosen_input_ids", it->s->ids, (int64_t)it->s->n));
        SW_TRY(sw_record_put_i32(b, "chosen_labels", it->s->labels, (int64_t)it->s->n));
        SW_TRY(sw_record_put_i32(b, "rejected_input_ids", it->r->ids, (int64_t)it->r->n));
        SW_TRY(sw_record_put_i32(b, "rejected_labels", it->r->labels, (int64_t)it->r->n));
    } else {
        SW_TRY(sw_record_put_i32(b, "input_ids", it->s->ids, (int64_t)it->s->n));
        SW_TRY(sw_record_put_i32(b, "labels", it->s->labels, (int64_t)it->s->n));
        if (e->o.kind == SW_EMIT_KTO)
            SW_TRY(sw_record_put_bool(b, "label", it->kto == SW_KTO_DESIRABLE));
    }
    SW_TRY(sw_record_put_map_begin(b, "meta"));
    SW_TRY(sw_record_put_str(b, "file", it->file ? it->file : ""));
    SW_TRY(sw_record_put_int(b, "line", it->line));
    SW_TRY(sw_record_put_end(b));
    SW_TRY(write_record(e));
    e->c->samples++;
    return 0;
}

/* ---- batches of samples -------------------------------------------------------------------- */

/* n samples laid out flat in one row: [1, total] with cu_seqlens; or right-padded [n, T]. */
static int emit_batch(struct sw_emitter *e, struct sw_template_sample *const *s, size_t n, int flat,
                      size_t n_sequences) {
    size_t total = 0, tmax = 0, loss = 0;
    for (size_t i = 0; i < n; i++) {
        total += s[i]->n;
        if (s[i]->n > tmax) tmax = s[i]->n;
    }
    size_t slots = flat ? total : n * tmax;
    SW_TRY(reserve(e, slots ? slots : 1, n));
    if (flat) {
        size_t off = 0;
        for (size_t i = 0; i < n; i++) {
            memcpy(e->ids + off, s[i]->ids, s[i]->n * sizeof *e->ids);
            memcpy(e->labels + off, s[i]->labels, s[i]->n * sizeof *e->labels);
            e->lens[i] = (uint32_t)s[i]->n;
            off += s[i]->n;
        }
        sw_pack_positions(e->lens, n, e->cu, e->pos);
    } else {
        for (size_t i = 0; i < n; i++) {
            size_t row = i * tmax, k = s[i]->n;
            memcpy(e->ids + row, s[i]->ids, k * sizeof *e->ids);
            memcpy(e->labels + row, s[i]->labels, k * sizeof *e->labels);
            for (size_t j = 0; j < tmax; j++) {
                e->mask[row + j] = j < k;
                e->pos[row + j] = j < k ? (int32_t)j : 0;
                if (j >= k) {
                    e->ids[row + j] = e->o.pad_id;
                    e->labels[row + j] = SW_LABEL_IGNORE;
                }
            }
        }
    }
    for (size_t i = 0; i < slots; i++)
        loss += e->labels[i] != SW_LABEL_IGNORE;
    struct sw_record_builder *b = e->b;
    SW_TRY(sw_record_builder_reset(b, "batch"));
    int64_t rows = flat ? 1 : (int64_t)n, cols = flat ? (int64_t)total : (int64_t)tmax;
    SW_TRY(put_2d(b, "input_ids", SW_DTYPE_I32, rows, cols, e->ids));
    SW_TRY(put_2d(b, "labels", SW_DTYPE_I32, rows, cols, e->labels));
    SW_TRY(put_2d(b, "position_ids", SW_DTYPE_I32, rows, cols, e->pos));
    if (flat)
        SW_TRY(sw_record_put_i32(b, "cu_seqlens", e->cu, (int64_t)n + 1));
    else
        SW_TRY(put_2d(b, "attention_mask", SW_DTYPE_U8, rows, cols, e->mask));
    SW_TRY(sw_record_put_uint(b, "num_samples", n));
    SW_TRY(sw_record_put_uint(b, "num_tokens", total));
    SW_TRY(sw_record_put_uint(b, "num_loss_tokens", loss));
    SW_TRY(sw_record_put_uint(b, "max_seqlen", tmax));
    if (n_sequences) SW_TRY(sw_record_put_uint(b, "num_sequences", n_sequences));
    SW_TRY(write_record(e));
    e->c->samples += n;
    e->c->padded_tokens += slots - total;
    return 0;
}

static int flush_pending(struct sw_emitter *e) {
    if (!e->n_pend) return 0;
    struct sw_template_sample **p = calloc(e->n_pend, sizeof *p);
    if (!p) return sw_err_set(SW_ENOMEM, "out of memory");
    for (size_t i = 0; i < e->n_pend; i++)
        p[i] = &e->pend[i];
    int rc = emit_batch(e, p, e->n_pend, e->mode == SW_EMIT_FLAT, 0);
    free(p);
    for (size_t i = 0; i < e->n_pend; i++)
        sw_template_sample_release(&e->pend[i]);
    e->n_pend = 0;
    return rc;
}

/* ---- packing --------------------------------------------------------------------------------- */

static int slot_get(struct sw_emitter *e, uint64_t *slot) {
    if (e->n_free) {
        *slot = e->free_slots[--e->n_free];
        return 0;
    }
    size_t old = e->pool_cap;
    SW_TRY(grow((void **)&e->pool, &e->pool_cap, old + 1, sizeof *e->pool));
    memset(e->pool + old, 0, (e->pool_cap - old) * sizeof *e->pool);
    size_t fc = e->n_free;
    SW_TRY(grow((void **)&e->free_slots, &fc, e->pool_cap, sizeof *e->free_slots));
    for (size_t i = e->pool_cap; i-- > old + 1;)
        e->free_slots[e->n_free++] = i;
    *slot = old;
    return 0;
}

static void slot_put(struct sw_emitter *e, uint64_t slot) {
    sw_template_sample_release(&e->pool[slot]);
    e->free_slots[e->n_free++] = slot; /* capacity = pool_cap, never exceeded */
}

static int emit_packed_batch(struct sw_emitter *e) {
    if (!e->bins_in_batch) return 0;
    size_t n = e->n_batch_slots;
    struct sw_template_sample **p = calloc(n ? n : 1, sizeof *p);
    if (!p) return sw_err_set(SW_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        p[i] = &e->pool[e->batch_slots[i]];
    int rc = emit_batch(e, p, n, 1, e->bins_in_batch);
    free(p);
    for (size_t i = 0; i < n; i++)
        slot_put(e, e->batch_slots[i]);
    e->n_batch_slots = 0;
    e->bins_in_batch = 0;
    return rc;
}

/* Emit the bins of one take, in random order when shuffling. */
static int emit_bins(struct sw_emitter *e, struct sw_pack_bins *bins) {
    uint64_t *order = malloc((bins->n_bins ? bins->n_bins : 1) * sizeof *order);
    if (!order) return sw_err_set(SW_ENOMEM, "out of memory");
    for (size_t i = 0; i < bins->n_bins; i++)
        order[i] = i;
    if (e->o.shuffle) sw_rng_shuffle_u64(&e->rng, order, bins->n_bins);
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < bins->n_bins; k++) {
        size_t b = order[k];
        size_t cnt = bins->start[b + 1] - bins->start[b];
        rc = grow((void **)&e->batch_slots, &e->cap_batch_slots, e->n_batch_slots + cnt,
                  sizeof *e->batch_slots);
        for (size_t j = bins->start[b]; rc == 0 && j < bins->start[b + 1]; j++)
            e->batch_slots[e->n_batch_slots++] = bins->item[j];
        e->bins_in_batch++;
        e->c->sequences++;
        if (rc == 0 && e->bins_in_batch == e->bsz) rc = emit_packed_batch(e);
    }
    free(order);
    return rc;
}

static int take(struct sw_emitter *e, int final) {
    struct sw_pack_bins bins;
    SW_TRY(sw_packer_take(&e->packer, final, &bins));
    int rc = emit_bins(e, &bins);
    sw_pack_bins_release(&bins);
    return rc;
}

/* ---- entry points -----------------------------------------------------------------------------
 */

int sw_emitter_add(struct sw_emitter *e, struct sw_emit_row *it) {
    switch (e->mode) {
    case SW_EMIT_SAMPLES: return emit_sample(e, it);
    case SW_EMIT_PADDED:
    case SW_EMIT_FLAT:
        SW_TRY(grow((void **)&e->pend, &e->cap_pend, e->n_pend + 1, sizeof *e->pend));
        e->pend[e->n_pend++] = *it->s;
        memset(it->s, 0, sizeof *it->s);
        return e->n_pend == e->bsz ? flush_pending(e) : 0;
    case SW_EMIT_PACKED: {
        uint64_t slot;
        SW_TRY(slot_get(e, &slot));
        SW_TRY(sw_packer_push(&e->packer, slot, (uint32_t)it->s->n));
        e->pool[slot] = *it->s;
        memset(it->s, 0, sizeof *it->s);
        return sw_packer_ready(&e->packer) ? take(e, 0) : 0;
    }
    }
    return 0;
}

int sw_emitter_finish(struct sw_emitter *e) {
    if (e->mode == SW_EMIT_PADDED || e->mode == SW_EMIT_FLAT) return flush_pending(e);
    if (e->mode == SW_EMIT_PACKED) {
        SW_TRY(take(e, 1));
        return emit_packed_batch(e);
    }
    return 0;
}
