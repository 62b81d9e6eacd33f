/* pack_run — sw-pack's pipeline: tokenizer and template, datasets, parallel tokenization in row
 * order, bad rows, truncation, and the hand-over to the emitter; in memory (global shuffle and
 * packing) or streaming (window by window, bounded memory).
 *
 * Rows are tokenized CHUNK at a time: an OpenMP team renders and tokenizes the chunk's rows into
 * slots indexed by row, so the output order is the input order whatever the thread timing; the
 * statuses are then read in order, which makes the first reported error the first bad row. */
#include "pack.h"

#include "sw_err.h"
#include "sw_io.h"
#include "sw_log.h"
#include "sw_parallel.h"
#include "sw_rng.h"
#include "sw_sha256.h"

#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Rows tokenized per parallel step (and the shuffle buffer of --streaming). */
#define CHUNK 4096
/* Bad rows shown as warnings; the rest are counted (and shown with -v). */
#define BAD_SHOWN 10

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Default packing window with --streaming (samples). */
#define STREAM_WINDOW 10000

void pack_emit_opts(const struct pack_ctx *x, struct sw_emit_opts *eo) {
    const struct pack_opts *o = x->o;
    memset(eo, 0, sizeof *eo);
    eo->kind = x->kind == KIND_PREFERENCE ? SW_EMIT_PREFERENCE
               : x->kind == KIND_KTO      ? SW_EMIT_KTO
                                          : SW_EMIT_SFT;
    if (eo->kind != SW_EMIT_SFT || !o->batch)
        eo->mode = SW_EMIT_SAMPLES;
    else if (o->packing)
        eo->mode = SW_EMIT_PACKED;
    else if (o->padding_free)
        eo->mode = SW_EMIT_FLAT;
    else
        eo->mode = SW_EMIT_PADDED;
    eo->batch_size = (size_t)o->per_device_train_batch_size;
    eo->max_length = (uint32_t)o->max_length;
    eo->packing_window = (size_t)o->packing_window;
    if (eo->packing_window == 0 && o->streaming) eo->packing_window = STREAM_WINDOW;
    eo->strategy = x->strategy;
    eo->seed = (uint64_t)o->data_seed;
    eo->shuffle = o->dataset_shuffle;
    eo->pad_id = x->pad_id;
}

static void item_release(struct pack_item *it) {
    sw_template_sample_release(&it->s);
    sw_template_sample_release(&it->r);
    free(it->err);
    memset(it, 0, sizeof *it);
}

/* ---- one row --------------------------------------------------------------------------------- */

struct tok_job {
    struct pack_ctx *x;
    const struct sw_example *ex;
    struct pack_item *items;
    size_t n;
    uint64_t first_index; /* global index of ex[0] (for check_tokenization) */
};

static void tokenize_one(struct pack_ctx *x, const struct sw_example *ex, uint64_t index,
                         struct sw_template_scratch *scr, struct pack_item *it) {
    char where[600];
    snprintf(where, sizeof where, "%s:%ld", x->files[ex->file], ex->line);
    it->file = ex->file;
    it->line = ex->line;
    it->kto = ex->conv.kto_label;
    int verify = index < (uint64_t)x->o->check_tokenization;
    int rc = sw_template_encode(x->tpl, x->tok, &ex->conv, &x->topts, &x->tk, where, scr, &it->s);
    if (rc == 0 && verify) rc = sw_template_verify(x->tok, &scr->render, &it->s, where);
    if (rc == 0 && ex->conv.rejected) {
        struct sw_template_opts ro = x->topts;
        ro.rejected = 1;
        rc = sw_template_encode(x->tpl, x->tok, &ex->conv, &ro, &x->tk, where, scr, &it->r);
        if (rc == 0 && verify) rc = sw_template_verify(x->tok, &scr->render, &it->r, where);
    }
    if (rc < 0) {
        it->status = ITEM_BAD;
        it->err = strdup(sw_err_msg());
        it->code = rc;
        return;
    }
    size_t max = (size_t)x->o->max_length;
    int t1 = sw_template_truncate(&it->s, max, x->trunc);
    int t2 = ex->conv.rejected ? sw_template_truncate(&it->r, max, x->trunc) : 0;
    if (t1 == 2 || t2 == 2) {
        it->status = ITEM_DELETED;
        return;
    }
    it->truncated = t1 == 1 || t2 == 1;
    if (sw_template_sample_trained(&it->s) == 0 ||
        (ex->conv.rejected && sw_template_sample_trained(&it->r) == 0))
        it->status = ITEM_NO_LOSS;
}

/* Tokenize rows [0, n) of ex into items[0..n) with every thread. */
static void tokenize_chunk(struct pack_ctx *x, const struct sw_example *ex, size_t n,
                           uint64_t first_index, struct pack_item *items) {
    int nt = sw_parallel_threads();
    if ((size_t)nt > n) nt = n ? (int)n : 1;
#pragma omp parallel num_threads(nt)
    {
        struct sw_template_scratch scr;
        memset(&scr, 0, sizeof scr);
#pragma omp for schedule(dynamic, 16)
        for (long i = 0; i < (long)n; i++)
            tokenize_one(x, &ex[i], first_index + (uint64_t)i, &scr, &items[i]);
        sw_template_scratch_release(&scr);
    }
}

static enum pack_kind kind_of(const struct pack_item *it) {
    if (it->r.n) return KIND_PREFERENCE;
    if (it->kto != SW_KTO_NONE) return KIND_KTO;
    return KIND_SFT;
}

static const char *kind_name(enum pack_kind k) {
    return k == KIND_PREFERENCE ? "preference" : k == KIND_KTO ? "KTO" : "SFT/pre-training";
}

/* Open the writer once the kind is known (the header needs it). */
struct sink {
    const char *target;
    const char *split; /* "train" or "validation" */
    const struct sw_dataset_spec *specs;
    size_t n_specs;
    char **hashes; /* per file of specs in order: hex or NULL (stdin) */
    struct sw_stream_writer *w;
    struct sw_emitter *em;
    struct pack_counts counts;
    int have_counts_in_header;
};

int pack_put_json(struct sw_record_builder *b, const char *key, const json_t *v);

static int open_sink(struct pack_ctx *x, struct sink *s) {
    struct sw_record_builder *meta = sw_record_builder_new(NULL);
    if (!meta) return SW_ENOMEM;
    const struct pack_opts *o = x->o;
    int rc = 0;
#define TRYM(e)                                                                                    \
    do {                                                                                           \
        if (rc == 0) rc = (e);                                                                     \
    } while (0)
    TRYM(sw_record_put_str(meta, "split", s->split));
    TRYM(sw_record_put_str(meta, "data_kind",
                           x->kind == KIND_PREFERENCE ? "preference"
                           : x->kind == KIND_KTO      ? "kto"
                                                      : "sft"));
    TRYM(sw_record_put_str(meta, "tokenizer", o->tokenizer));
    TRYM(sw_record_put_str(meta, "tokenizer_sha256", sw_tokenizer_hash_hex(x->tok)));
    TRYM(sw_record_put_uint(meta, "vocab_size", sw_tokenizer_vocab_size(x->tok)));
    if (x->tpl)
        TRYM(sw_record_put_str(meta, "template", sw_template_name(x->tpl)));
    else
        TRYM(sw_record_put_nil(meta, "template"));
    if (o->system) TRYM(sw_record_put_str(meta, "system", o->system));
    TRYM(sw_record_put_int(meta, "max_length", o->max_length));
    TRYM(sw_record_put_str(meta, "truncation_strategy", o->truncation_strategy));
    TRYM(sw_record_put_str(meta, "loss_scale", o->loss_scale));
    TRYM(sw_record_put_bool(meta, "packing", o->packing));
    if (o->packing) {
        TRYM(sw_record_put_str(meta, "packing_strategy", o->packing_strategy));
        TRYM(sw_record_put_int(meta, "packing_window", o->packing_window));
    }
    TRYM(sw_record_put_bool(meta, "padding_free", o->padding_free || o->packing));
    TRYM(sw_record_put_bool(meta, "batch", o->batch && x->kind == KIND_SFT));
    TRYM(sw_record_put_int(meta, "per_device_train_batch_size", o->per_device_train_batch_size));
    TRYM(sw_record_put_int(meta, "pad_token_id", x->pad_id));
    TRYM(sw_record_put_int(meta, "data_seed", o->data_seed));
    TRYM(sw_record_put_bool(meta, "dataset_shuffle", o->dataset_shuffle));
    TRYM(sw_record_put_bool(meta, "streaming", o->streaming));
    TRYM(sw_record_put_double(meta, "split_dataset_ratio", o->split_dataset_ratio));
    TRYM(sw_record_put_array_begin(meta, "datasets"));
    size_t h = 0;
    for (size_t i = 0; i < s->n_specs; i++) {
        TRYM(sw_record_put_map_begin(meta, NULL));
        TRYM(sw_record_put_str(meta, "arg", s->specs[i].arg));
        if (s->specs[i].sample >= 0) TRYM(sw_record_put_int(meta, "sample", s->specs[i].sample));
        TRYM(sw_record_put_array_begin(meta, "files"));
        for (size_t j = 0; j < s->specs[i].n_files; j++, h++) {
            TRYM(sw_record_put_map_begin(meta, NULL));
            TRYM(sw_record_put_str(meta, "path", s->specs[i].files[j]));
            if (s->hashes[h])
                TRYM(sw_record_put_str(meta, "sha256", s->hashes[h]));
            else
                TRYM(sw_record_put_nil(meta, "sha256"));
            TRYM(sw_record_put_end(meta));
        }
        TRYM(sw_record_put_end(meta));
        TRYM(sw_record_put_end(meta));
    }
    TRYM(sw_record_put_end(meta));
    if (s->have_counts_in_header) {
        json_t *j = pack_counts_json(x, &s->counts);
        if (!j)
            rc = rc ? rc : SW_ENOMEM;
        else
            TRYM(pack_put_json(meta, "counts", j));
        json_decref(j);
    }
#undef TRYM
    char producer[64];
    snprintf(producer, sizeof producer, "sw-pack %s", SW_VERSION);
    struct sw_emit_opts eo;
    pack_emit_opts(x, &eo);
    struct sw_stream_info info = {producer, sw_emit_stream_kind(&eo), meta};
    if (rc == 0) rc = sw_stream_open_write(&s->w, s->target, &info, NULL);
    sw_record_builder_free(meta);
    if (rc == 0) rc = sw_emitter_new(&eo, s->w, &s->counts.out, &s->em);
    return rc;
}

/* The statistics trailer: an extension record readers skip unless they ask for it. */
static int close_sink(struct pack_ctx *x, struct sink *s) {
    int rc = 0;
    if (s->em) rc = sw_emitter_finish(s->em);
    if (rc == 0 && s->w) {
        struct sw_record_builder *b = sw_record_builder_new("x-pack-stats");
        json_t *j = pack_counts_json(x, &s->counts);
        if (!b || !j) rc = SW_ENOMEM;
        const char *k;
        json_t *v;
        if (rc == 0) {
            json_object_foreach(j, k, v) {
                if ((rc = pack_put_json(b, k, v)) < 0) break;
            }
        }
        if (rc == 0) rc = sw_stream_write(s->w, b);
        sw_record_builder_free(b);
        json_decref(j);
    }
    sw_emitter_free(s->em);
    s->em = NULL;
    if (rc == 0 && s->w) rc = sw_stream_close(&s->w);
    sw_stream_writer_free(s->w);
    s->w = NULL;
    return rc;
}

/* Read outcomes in row order: count, report or fail on bad rows, check the kind. Rows that are
 * not kept are released here. */
static int classify(struct pack_ctx *x, struct pack_counts *c, struct pack_item *items, size_t n,
                    uint64_t *bad_seen) {
    for (size_t i = 0; i < n; i++) {
        struct pack_item *it = &items[i];
        c->rows_tokenized++;
        switch (it->status) {
        case ITEM_BAD: {
            int code = it->code;
            if (!x->o->skip_bad_rows || code != SW_EFORMAT) return sw_err_set(code, "%s", it->err);
            c->rows_bad++;
            if (++*bad_seen <= BAD_SHOWN)
                sw_warn("skipping bad row: %s", it->err);
            else
                sw_debug("skipping bad row: %s", it->err);
            item_release(it);
            it->status = ITEM_BAD;
            continue;
        }
        case ITEM_DELETED:
            c->rows_deleted++;
            sw_debug("%s:%ld: longer than max_length %lld; row deleted", x->files[it->file],
                     it->line, (long long)x->o->max_length);
            item_release(it);
            it->status = ITEM_DELETED;
            continue;
        case ITEM_NO_LOSS:
            c->rows_no_loss++;
            sw_debug("%s:%ld: no trained token left (after truncation); row dropped",
                     x->files[it->file], it->line);
            item_release(it);
            it->status = ITEM_NO_LOSS;
            continue;
        default: break;
        }
        enum pack_kind k = kind_of(it);
        if (x->kind == KIND_UNSET) {
            x->kind = k;
            if (k != KIND_SFT && x->o->packing)
                return sw_err_set(SW_EUSAGE, "%s:%ld: --packing does not apply to %s rows",
                                  x->files[it->file], it->line, kind_name(k));
            if (k != KIND_SFT && x->o->batch)
                sw_info("%s rows are written as sample records (pairs are not batched)",
                        kind_name(k));
        } else if (k != x->kind) {
            return sw_err_set(SW_EFORMAT,
                              "%s:%ld: a %s row among %s rows (a stream carries one kind; "
                              "pack them separately)",
                              x->files[it->file], it->line, kind_name(k), kind_name(x->kind));
        }
        c->rows_truncated += it->truncated;
        c->rows_out++;
        const struct sw_template_sample *sides[2] = {&it->s, &it->r};
        for (int k2 = 0; k2 < 2; k2++) {
            if (!sides[k2]->n) continue;
            c->tokens += sides[k2]->n;
            c->loss_tokens += sw_template_sample_trained(sides[k2]);
            if (sides[k2]->n > c->max_sample_len) c->max_sample_len = sides[k2]->n;
        }
    }
    return 0;
}

/* Hand the kept rows to the sink (opened on first use, when the kind is known). */
static int emit_items(struct pack_ctx *x, struct sink *s, struct pack_item *items, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (items[i].status != ITEM_OK) continue;
        if (!s->w) SW_TRY(open_sink(x, s));
        struct sw_emit_row row = {&items[i].s, &items[i].r, items[i].kto, x->files[items[i].file],
                                  items[i].line};
        SW_TRY(sw_emitter_add(s->em, &row));
    }
    return 0;
}

/* ---- datasets ------------------------------------------------------------------------------ */

static int hash_specs(const struct sw_dataset_spec *specs, size_t n, char ***out) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += specs[i].n_files;
    char **h = calloc(total ? total : 1, sizeof *h);
    if (!h) return sw_err_set(SW_ENOMEM, "out of memory");
    size_t k = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        for (size_t j = 0; rc == 0 && j < specs[i].n_files; j++, k++) {
            if (!strcmp(specs[i].files[j], "-")) continue; /* stdin: not re-readable */
            uint8_t d[32];
            rc = sw_sha256_file(specs[i].files[j], d);
            if (rc == 0 && !(h[k] = malloc(65))) rc = sw_err_set(SW_ENOMEM, "out of memory");
            if (rc == 0) sw_hex(d, 32, h[k]);
        }
    *out = h;
    return rc;
}

static void free_hashes(char **h, const struct sw_dataset_spec *specs, size_t n) {
    if (!h) return;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += specs[i].n_files;
    for (size_t i = 0; i < total; i++)
        free(h[i]);
    free(h);
}

/* ---- in memory --------------------------------------------------------------------------------
 */

/* Tokenize examples[0..n) chunk by chunk into items[0..n) (with progress), freeing the
 * conversations as they are done with, then classify them all. */
static int tokenize_all(struct pack_ctx *x, struct sink *s, struct sw_example *ex, size_t n,
                        struct pack_item **out, struct sw_progress *p, uint64_t *bad_seen) {
    struct pack_item *items = calloc(n ? n : 1, sizeof *items);
    *out = items;
    if (!items) return sw_err_set(SW_ENOMEM, "out of memory");
    for (size_t base = 0; base < n; base += CHUNK) {
        size_t m = n - base < CHUNK ? n - base : CHUNK;
        tokenize_chunk(x, ex + base, m, x->checked, items + base);
        x->checked += m;
        for (size_t i = 0; i < m; i++)
            sw_conv_release(&ex[base + i].conv);
        sw_progress_add(p, m);
    }
    return classify(x, &s->counts, items, n, bad_seen);
}

static void items_free(struct pack_item *items, size_t n) {
    if (!items) return;
    for (size_t i = 0; i < n; i++)
        item_release(&items[i]);
    free(items);
}

static int run_memory(struct pack_ctx *x, struct sink *train, struct sink *val,
                      const struct sw_dataset_opts *dopts, const struct sw_dataset_spec *vspecs,
                      size_t n_vspecs) {
    struct sw_dataset ds, dv;
    memset(&dv, 0, sizeof dv);
    double t0 = now_s();
    SW_TRY(sw_dataset_load(&ds, train->specs, train->n_specs, dopts));
    int rc = 0;
    if (vspecs) {
        struct sw_dataset_opts vo = *dopts;
        vo.shuffle = 0; /* ms-swift: val_dataset_shuffle defaults to false */
        vo.split_ratio = 0;
        rc = sw_dataset_load(&dv, vspecs, n_vspecs, &vo);
    }
    train->counts.rows_read = ds.stats.rows_read;
    train->counts.rows_bad = ds.stats.rows_bad;
    train->counts.rows_unsampled = ds.stats.rows_unsampled;
    train->counts.rows_repeated = ds.stats.rows_repeated;
    train->counts.rows_to_val = ds.stats.rows_val;
    train->counts.rows_sampled = ds.stats.rows_train;
    if (vspecs) {
        val->counts.rows_read = dv.stats.rows_read;
        val->counts.rows_bad = dv.stats.rows_bad;
        val->counts.rows_unsampled = dv.stats.rows_unsampled;
        val->counts.rows_repeated = dv.stats.rows_repeated;
        val->counts.rows_sampled = dv.stats.rows_train;
    } else {
        val->counts.rows_from_split = ds.stats.rows_val;
        val->counts.rows_sampled = ds.stats.rows_val;
    }
    double t1 = now_s();
    sw_debug("read %zu + %zu rows in %.2f s", ds.n_train, ds.n_val + dv.n_train, t1 - t0);
    struct sw_progress p;
    uint64_t bad_seen = ds.stats.rows_bad + dv.stats.rows_bad;
    struct pack_item *ti = NULL, *vi = NULL;
    size_t n_t = ds.n_train, n_v = vspecs ? dv.n_train : ds.n_val;
    if (rc == 0) {
        /* Everything is tokenized before anything is written, so the header can hold the final
         * row and token counts (the end record has no room for them). */
        sw_progress_init(&p, "sw-pack", n_t + (val->target ? n_v : 0), "rows");
        x->files = (const char *const *)ds.files;
        rc = tokenize_all(x, train, ds.train, n_t, &ti, &p, &bad_seen);
        if (rc == 0 && val->target) {
            x->files = (const char *const *)(vspecs ? dv.files : ds.files);
            rc = tokenize_all(x, val, vspecs ? dv.train : ds.val, n_v, &vi, &p, &bad_seen);
        }
        sw_progress_finish(&p);
    }
    if (x->kind == KIND_UNSET) x->kind = KIND_SFT;
    double t2 = now_s();
    sw_debug("tokenized in %.2f s (%d threads)", t2 - t1, sw_parallel_threads());
    if (rc == 0) {
        train->have_counts_in_header = val->have_counts_in_header = 1;
        x->files = (const char *const *)ds.files;
        rc = open_sink(x, train);
        if (rc == 0) rc = emit_items(x, train, ti, n_t);
        if (rc == 0) rc = close_sink(x, train);
    }
    items_free(ti, n_t);
    ti = NULL;
    if (rc == 0 && val->target) {
        x->files = (const char *const *)(vspecs ? dv.files : ds.files);
        rc = open_sink(x, val);
        if (rc == 0) rc = emit_items(x, val, vi, n_v);
        if (rc == 0) rc = close_sink(x, val);
    }
    items_free(vi, n_v);
    sw_debug("packed and written in %.2f s", now_s() - t2);
    sw_dataset_release(&ds);
    sw_dataset_release(&dv);
    return rc;
}

/* ---- streaming ----------------------------------------------------------------------------------
 */

static int run_stream_one(struct pack_ctx *x, struct sink *s, const struct sw_dataset_opts *dopts,
                          struct sw_progress *p, uint64_t *bad_seen) {
    struct sw_dataset_iter *it;
    SW_TRY(sw_dataset_iter_open(&it, s->specs, s->n_specs, dopts));
    const char **table = malloc((sw_dataset_iter_n_files(it) + 1) * sizeof *table);
    struct sw_example *ex = calloc(CHUNK, sizeof *ex);
    struct pack_item *items = calloc(CHUNK, sizeof *items);
    int rc = table && ex && items ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < sw_dataset_iter_n_files(it); i++)
        table[i] = sw_dataset_iter_file(it, (uint32_t)i);
    x->files = table;
    struct sw_rng rng;
    sw_rng_init(&rng, (uint64_t)x->o->data_seed, SW_RNG_STREAM_SHUFFLE);
    int done = 0;
    while (rc == 0 && !done) {
        size_t m = 0;
        while (m < CHUNK) {
            int got = sw_dataset_iter_next(it, &ex[m], NULL);
            if (got < 0) {
                rc = got;
                break;
            }
            if (got == 0) {
                done = 1;
                break;
            }
            m++;
        }
        if (rc == 0 && x->o->dataset_shuffle && m > 1) {
            /* A bounded shuffle: the rows of one chunk. */
            uint64_t perm[CHUNK];
            for (size_t i = 0; i < m; i++)
                perm[i] = i;
            sw_rng_shuffle_u64(&rng, perm, m);
            struct sw_example *tmp = malloc(m * sizeof *tmp);
            if (!tmp) rc = sw_err_set(SW_ENOMEM, "out of memory");
            for (size_t i = 0; rc == 0 && i < m; i++)
                tmp[i] = ex[perm[i]];
            if (rc == 0) memcpy(ex, tmp, m * sizeof *tmp);
            free(tmp);
        }
        if (rc == 0 && m) {
            tokenize_chunk(x, ex, m, x->checked, items);
            x->checked += m;
            rc = classify(x, &s->counts, items, m, bad_seen);
            if (rc == 0) rc = emit_items(x, s, items, m);
            sw_progress_add(p, m);
        }
        for (size_t i = 0; i < m; i++) {
            item_release(&items[i]);
            sw_conv_release(&ex[i].conv);
        }
    }
    const struct sw_dataset_stats *st = sw_dataset_iter_stats(it);
    s->counts.rows_read = st->rows_read;
    s->counts.rows_bad += st->rows_bad;
    s->counts.rows_sampled = s->counts.rows_tokenized;
    *bad_seen += st->rows_bad;
    if (rc == 0 && !s->w) {
        if (x->kind == KIND_UNSET) x->kind = KIND_SFT;
        rc = open_sink(x, s);
    }
    if (rc == 0) rc = close_sink(x, s);
    free(table);
    free(ex);
    free(items);
    sw_dataset_iter_free(it);
    return rc;
}

/* ---- entry --------------------------------------------------------------------------------- */

static int setup(struct pack_ctx *x, const struct pack_opts *o) {
    x->o = o;
    enum sw_loss_scale ls;
    SW_TRY(sw_loss_scale_parse(o->loss_scale, &ls));
    SW_TRY(sw_truncation_parse(o->truncation_strategy, &x->trunc));
    SW_TRY(sw_pack_strategy_parse(o->packing_strategy, &x->strategy));
    SW_TRY(sw_dataset_format_parse(o->dataset_format, &x->format));
    x->topts.loss = ls;
    x->topts.system = o->system;
    if (o->dataset_num_proc > 0)
        sw_parallel_set_threads((int)o->dataset_num_proc);
    else
        sw_parallel_init();
    double t0 = now_s();
    int rc = sw_tokenizer_load(o->tokenizer, &x->tok);
    if (rc < 0) return sw_err_wrap(rc, "--tokenizer '%s'", o->tokenizer);
    sw_debug("tokenizer loaded in %.2f s", now_s() - t0);
    if (o->template_name) {
        x->tpl = sw_template_get(o->template_name);
    } else {
        x->tpl = sw_template_detect(sw_tokenizer_chat_template(x->tok));
        if (x->tpl)
            sw_info("template '%s' (recognised from the tokenizer's chat_template)",
                    sw_template_name(x->tpl));
        else
            sw_info("no --template and the tokenizer's chat_template is not recognised: only plain "
                    "text rows can be packed");
    }
    SW_TRY(sw_template_tokens_from(x->tok, &x->tk));
    x->pad_id = sw_tokenizer_special_id(x->tok, SW_TOK_PAD);
    if (x->pad_id < 0) x->pad_id = sw_tokenizer_special_id(x->tok, SW_TOK_EOS);
    if (x->pad_id < 0) x->pad_id = 0;
    return 0;
}

int pack_run(const struct pack_opts *o) {
    double t0 = now_s();
    struct pack_ctx x;
    memset(&x, 0, sizeof x);
    struct sink train, val;
    memset(&train, 0, sizeof train);
    memset(&val, 0, sizeof val);
    struct sw_dataset_spec *specs = NULL, *vspecs = NULL;
    size_t n_specs = 0, n_vspecs = 0;
    int rc = setup(&x, o);
    if (rc == 0) rc = sw_dataset_specs_parse(o->dataset, &specs, &n_specs);
    if (rc == 0 && o->val_dataset) rc = sw_dataset_specs_parse(o->val_dataset, &vspecs, &n_vspecs);
    if (rc == 0) rc = hash_specs(specs, n_specs, &train.hashes);
    if (rc == 0 && vspecs) rc = hash_specs(vspecs, n_vspecs, &val.hashes);
    train.target = o->output ? o->output : "-";
    train.split = "train";
    train.specs = specs;
    train.n_specs = n_specs;
    val.target = o->val_output;
    val.split = "validation";
    val.specs = vspecs ? vspecs : specs;
    val.n_specs = vspecs ? n_vspecs : n_specs;
    if (!vspecs) val.hashes = train.hashes;
    struct sw_dataset_opts dopts = {x.format, o->skip_bad_rows, o->dataset_shuffle,
                                    (uint64_t)o->data_seed, o->split_dataset_ratio};
    if (rc == 0 && !o->streaming) {
        rc = run_memory(&x, &train, &val, &dopts, vspecs, n_vspecs);
    } else if (rc == 0) {
        struct sw_progress p;
        uint64_t bad_seen = 0;
        sw_progress_init(&p, "sw-pack", 0, "rows");
        rc = run_stream_one(&x, &train, &dopts, &p, &bad_seen);
        if (rc == 0 && vspecs) {
            struct sw_dataset_opts vo = dopts;
            vo.shuffle = 0;
            rc = run_stream_one(&x, &val, &vo, &p, &bad_seen);
        }
        sw_progress_finish(&p);
    }
    double secs = now_s() - t0;
    if (rc == 0) {
        pack_stats_log(&x, &train.counts, val.target ? &val.counts : NULL, secs);
        if (o->stats)
            rc = pack_stats_write(o->stats, &x, &train.counts, val.target ? &val.counts : NULL,
                                  secs);
    }
    /* On error: drop unfinished streams (no end record; a file target is not created). */
    sw_emitter_free(train.em);
    sw_emitter_free(val.em);
    sw_stream_writer_free(train.w);
    sw_stream_writer_free(val.w);
    if (val.hashes != train.hashes) free_hashes(val.hashes, vspecs, n_vspecs);
    free_hashes(train.hashes, specs, n_specs);
    sw_dataset_specs_free(specs, n_specs);
    sw_dataset_specs_free(vspecs, n_vspecs);
    sw_tokenizer_free(x.tok);
    return rc;
}
