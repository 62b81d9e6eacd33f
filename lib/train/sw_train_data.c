/* sw_train_data — the training stream as micro-batches: header checks against the model, records
 * turned into owned sw_batch layouts, epochs, and the record count that makes resume exact.
 *
 * Records (docs/stream.md; the reader has already checked dtypes, ranks and matching lengths):
 *   "sample"  input_ids [T] I32, optional labels [T] (HF's unshifted labels, -100 = no loss),
 *             loss_mask [T] (used when labels are absent) and position_ids [T]. Without labels
 *             and loss_mask every token is a target (pre-training). batch_size consecutive
 *             samples are packed back to back into one row with cu_seqlens (padding-free).
 *   "batch"   input_ids [B, T] and optional labels, position_ids, attention_mask [B, T] and
 *             cu_seqlens (packed; tokens past its last boundary are padding and get no loss).
 * Every token id, label and position is checked against the model here, so an error names the
 * stream and record ("train.sws: record 17: input_ids[3] = 70000 is not below the model's
 * vocab_size 64") rather than a row of a batch. */
#include "sw_train_impl.h"

#include "sw_err.h"
#include "sw_log.h"
#include "sw_sha256.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

void sw_mb_release(struct sw_mb *mb) {
    free(mb->ids);
    free(mb->labels);
    free(mb->pos);
    free(mb->mask);
    free(mb->cu);
    free(mb->rec);
    free(mb->kto);
    free(mb->plen);
    if (mb->side) sw_mb_release(mb->side);
    free(mb->side);
    memset(mb, 0, sizeof *mb);
}

static void mb_clear(struct sw_mb *mb) {
    memset(&mb->b, 0, sizeof mb->b);
    mb->input_tokens = mb->targets = mb->records = 0;
    mb->pairs = 0;
    if (mb->side) mb_clear(mb->side);
}

/* Room for tokens and seqs (+1 boundary) more. */
static int mb_reserve(struct sw_mb *mb, int64_t tokens, int64_t seqs) {
    if (tokens > mb->cap_tokens) {
        int64_t cap = mb->cap_tokens ? mb->cap_tokens : 256;
        while (cap < tokens)
            cap *= 2;
        size_t bytes = (size_t)cap * sizeof(int32_t);
        int32_t *a = realloc(mb->ids, bytes), *b = a ? realloc(mb->labels, bytes) : NULL;
        if (a) mb->ids = a;
        if (b) mb->labels = b;
        int32_t *c = b ? realloc(mb->pos, bytes) : NULL;
        if (c) mb->pos = c;
        int32_t *d = c ? realloc(mb->mask, bytes) : NULL;
        if (d) mb->mask = d;
        if (!d)
            return sw_err_set(SW_ENOMEM, "out of memory for a micro-batch of %lld tokens",
                              (long long)tokens);
        mb->cap_tokens = cap;
    }
    if (seqs + 1 > mb->cap_seqs) {
        int64_t cap = mb->cap_seqs ? mb->cap_seqs : 16;
        while (cap < seqs + 1)
            cap *= 2;
        int32_t *a = realloc(mb->cu, (size_t)cap * sizeof(int32_t));
        if (!a) return sw_err_set(SW_ENOMEM, "out of memory");
        mb->cu = a;
        mb->cap_seqs = cap;
    }
    return 0;
}

/* ---- record checks ---------------------------------------------------------------------- */

static int32_t i32_at(const struct sw_tensor *t, int64_t i) {
    int32_t v;
    memcpy(&v, (const char *)t->data + i * 4, 4);
    return v;
}

static int mask_at(const struct sw_tensor *t, int64_t i) {
    if (t->dtype == SW_DTYPE_I32) return i32_at(t, i) != 0;
    return ((const uint8_t *)t->data)[i] != 0;
}

static int rec_err(const struct sw_train_data *d, const struct sw_record *r, int code,
                   const char *fmt, const char *key, int64_t i, long long v, long long limit) {
    char what[256];
    snprintf(what, sizeof what, fmt, key, (long long)i, v, limit);
    return sw_err_set(code, "%s: record %llu: %s", d->src, (unsigned long long)sw_record_index(r),
                      what);
}

/* ids/labels/positions of n tokens at dst offsets, checked against the model. */
static int check_tokens(const struct sw_train_data *d, const struct sw_record *r, const char *key,
                        const int32_t *v, int64_t n, int is_label) {
    int64_t lim = is_label || strstr(key, "input_ids") ? d->lim.vocab_size : d->lim.max_positions;
    const char *what =
        strstr(key, "position") ? "the model's max_position_embeddings" : "the model's vocab_size";
    for (int64_t i = 0; i < n; i++) {
        if (is_label && v[i] == SW_IGNORE_INDEX) continue;
        if (v[i] < 0 || v[i] >= lim) {
            char fmt[160];
            snprintf(fmt, sizeof fmt, "%%s[%%lld] = %%lld is not below %s %%lld", what);
            return rec_err(d, r, SW_ERANGE, fmt, key, i, v[i], (long long)lim);
        }
    }
    return 0;
}

/* A tensor field if present (*t zeroed and 0 returned when absent). */
static int opt_tensor(const struct sw_record *r, const char *key, struct sw_tensor *t, int *has) {
    memset(t, 0, sizeof *t);
    *has = sw_record_field(r, key) != NULL;
    return *has ? sw_record_get_tensor(r, key, t) : 0;
}

static void copy_i32(int32_t *dst, const struct sw_tensor *t, int64_t n) {
    memcpy(dst, t->data, (size_t)n * sizeof(int32_t));
}

/* Targets (after the shift) of n labels forming one sequence. */
static int64_t seq_targets(const int32_t *labels, int64_t n) {
    int64_t c = 0;
    for (int64_t i = 1; i < n; i++)
        c += labels[i] != SW_IGNORE_INDEX;
    return c;
}

/* Append one "sample" record to the packed row of mb. */
static int add_sample(const struct sw_train_data *d, const struct sw_record *r, struct sw_mb *mb) {
    if (sw_record_field(r, "chosen_input_ids"))
        return sw_err_set(SW_EUNSUPPORTED,
                          "%s: record %llu is a preference pair (chosen/rejected): train it "
                          "with --rlhf_type dpo (or cpo, simpo, orpo)",
                          d->src, (unsigned long long)sw_record_index(r));
    struct sw_tensor ids, lab, lmask, pos;
    int has_lab, has_mask, has_pos, has_ids;
    SW_TRY(opt_tensor(r, "input_ids", &ids, &has_ids));
    if (!has_ids)
        return sw_err_set(SW_EFORMAT, "%s: record %llu: no 'input_ids'", d->src,
                          (unsigned long long)sw_record_index(r));
    SW_TRY(opt_tensor(r, "labels", &lab, &has_lab));
    SW_TRY(opt_tensor(r, "loss_mask", &lmask, &has_mask));
    SW_TRY(opt_tensor(r, "position_ids", &pos, &has_pos));
    int64_t n = ids.shape[0];
    if (n == 0)
        return sw_err_set(SW_EFORMAT, "%s: record %llu: empty sample", d->src,
                          (unsigned long long)sw_record_index(r));
    int64_t at = mb->b.T, s = mb->b.n_seqs;
    if (at + n > INT32_MAX)
        return sw_err_set(SW_ERANGE, "%s: record %llu: micro-batch over 2^31 tokens", d->src,
                          (unsigned long long)sw_record_index(r));
    SW_TRY(mb_reserve(mb, at + n, s + 1));
    copy_i32(mb->ids + at, &ids, n);
    SW_TRY(check_tokens(d, r, "input_ids", mb->ids + at, n, 0));
    if (has_lab) {
        copy_i32(mb->labels + at, &lab, n);
        SW_TRY(check_tokens(d, r, "labels", mb->labels + at, n, 1));
    } else {
        for (int64_t i = 0; i < n; i++)
            mb->labels[at + i] =
                !has_mask || mask_at(&lmask, i) ? mb->ids[at + i] : SW_IGNORE_INDEX;
    }
    if (has_pos) {
        copy_i32(mb->pos + at, &pos, n);
        SW_TRY(check_tokens(d, r, "position_ids", mb->pos + at, n, 0));
    } else {
        if (n > d->lim.max_positions)
            return rec_err(d, r, SW_ERANGE,
                           "%s: %lld tokens (%lld) exceed max_position_embeddings "
                           "%lld",
                           "sample", n, n, (long long)d->lim.max_positions);
        for (int64_t i = 0; i < n; i++)
            mb->pos[at + i] = (int32_t)i;
    }
    if (s == 0) mb->cu[0] = 0;
    mb->cu[s + 1] = (int32_t)(at + n);
    mb->b.n_seqs = (int)(s + 1);
    mb->b.B = 1;
    mb->b.T = at + n;
    mb->input_tokens += n;
    mb->targets += seq_targets(mb->labels + at, n);
    if (mb->records++ == 0) mb->first_record = sw_record_index(r);
    return 0;
}

/* ---- preference and KTO records (sw-train --rlhf_type) ---------------------------------- */

/* "record 7 (data.jsonl:8)": the record and, when sw-pack recorded it, its source row. */
static void rec_name(const struct sw_record *r, char *buf, size_t cap) {
    const msgpack_object *meta = sw_record_field(r, "meta");
    const msgpack_object *f = meta && meta->type == MSGPACK_OBJECT_MAP
                                  ? sw_msgpack_map_get(meta, "file")
                                  : NULL,
                         *l = meta && meta->type == MSGPACK_OBJECT_MAP
                                  ? sw_msgpack_map_get(meta, "line")
                                  : NULL;
    int n = snprintf(buf, cap, "record %llu", (unsigned long long)sw_record_index(r));
    if (f && f->type == MSGPACK_OBJECT_STR && f->via.str.size && l &&
        l->type == MSGPACK_OBJECT_POSITIVE_INTEGER && n > 0 && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, " (%.*s:%llu)",
                 (int)(f->via.str.size > 200 ? 200 : f->via.str.size), f->via.str.ptr,
                 (unsigned long long)l->via.u64);
}

/* Append one sequence (ids, labels of n tokens) to mb's packed row. */
static int append_seq(struct sw_mb *mb, const int32_t *ids, const int32_t *labels, int64_t n) {
    int64_t at = mb->b.T, s = mb->b.n_seqs;
    SW_TRY(mb_reserve(mb, at + n, s + 1));
    memcpy(mb->ids + at, ids, (size_t)n * sizeof(int32_t));
    memcpy(mb->labels + at, labels, (size_t)n * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++)
        mb->pos[at + i] = (int32_t)i;
    if (s == 0) mb->cu[0] = 0;
    mb->cu[s + 1] = (int32_t)(at + n);
    mb->b.n_seqs = (int)(s + 1);
    mb->b.B = 1;
    mb->b.T = at + n;
    mb->input_tokens += n;
    mb->targets += seq_targets(labels, n);
    return 0;
}

static int pair_reserve(struct sw_mb *mb) {
    if (mb->pairs < mb->cap_pairs) return 0;
    int cap = mb->cap_pairs ? 2 * mb->cap_pairs : 8;
    uint64_t *a = realloc(mb->rec, (size_t)cap * sizeof *a);
    if (a) mb->rec = a;
    int32_t *b = a ? realloc(mb->kto, (size_t)cap * sizeof *b) : NULL;
    if (b) mb->kto = b;
    int32_t *c = b ? realloc(mb->plen, (size_t)cap * sizeof *c) : NULL;
    if (c) mb->plen = c;
    if (!c) return sw_err_set(SW_ENOMEM, "out of memory");
    mb->cap_pairs = cap;
    return !mb->side && !(mb->side = calloc(1, sizeof *mb->side))
               ? sw_err_set(SW_ENOMEM, "out of memory")
               : 0;
}

/* One side of a record (prefix "chosen_", "rejected_" or ""): ids and labels, checked. */
static int rec_side(const struct sw_train_data *d, const struct sw_record *r, const char *prefix,
                    struct sw_tensor *ids, struct sw_tensor *lab) {
    char k1[64], k2[64], name[300];
    int h1, h2;
    snprintf(k1, sizeof k1, "%sinput_ids", prefix);
    snprintf(k2, sizeof k2, "%slabels", prefix);
    SW_TRY(opt_tensor(r, k1, ids, &h1));
    SW_TRY(opt_tensor(r, k2, lab, &h2));
    rec_name(r, name, sizeof name);
    if (!h1 || !h2) {
        if (*prefix == 'r')
            return sw_err_set(SW_EFORMAT,
                              "%s: %s is a preference row without a rejected answer (no "
                              "'%s'); every pair needs chosen and rejected",
                              d->src, name, h1 ? k2 : k1);
        return sw_err_set(SW_EFORMAT, "%s: %s: no '%s'", d->src, name, h1 ? k2 : k1);
    }
    int64_t n = ids->shape[0];
    if (n < 2 || n > d->lim.max_positions)
        return sw_err_set(SW_EFORMAT, "%s: %s: %s has %lld tokens (need 2 .. %lld)", d->src, name,
                          k1, (long long)n, (long long)d->lim.max_positions);
    SW_TRY(check_tokens(d, r, k1, ids->data, n, 0));
    SW_TRY(check_tokens(d, r, k2, lab->data, n, 1));
    if (seq_targets(lab->data, n) == 0)
        return sw_err_set(SW_EFORMAT, "%s: %s: %s has no target tokens (every label is -100)",
                          d->src, name, k2);
    return 0;
}

/* A preference pair (chosen side into mb, rejected staged in mb->side) or a KTO row. */
static int add_pref(const struct sw_train_data *d, const struct sw_record *r, struct sw_mb *mb) {
    int pairs = sw_record_field(r, "chosen_input_ids") != NULL;
    char name[300];
    rec_name(r, name, sizeof name);
    if (d->lim.rlhf == SW_TRAIN_PAIRS && !pairs)
        return sw_err_set(SW_EFORMAT,
                          "%s: %s is not a preference pair (no chosen_input_ids / "
                          "rejected_input_ids): %s",
                          d->src, name,
                          sw_record_field(r, "label") ? "a KTO row (use --rlhf_type kto)"
                                                      : "an SFT sample");
    if (d->lim.rlhf == SW_TRAIN_KTO && (pairs || !sw_record_field(r, "label")))
        return sw_err_set(SW_EFORMAT, "%s: %s is not a KTO row (input_ids, labels, label): %s",
                          d->src, name, pairs ? "a preference pair" : "no 'label'");
    SW_TRY(pair_reserve(mb));
    struct sw_tensor ids, lab;
    if (pairs) {
        struct sw_tensor rid, rlab;
        SW_TRY(rec_side(d, r, "chosen_", &ids, &lab));
        SW_TRY(rec_side(d, r, "rejected_", &rid, &rlab));
        SW_TRY(append_seq(mb, ids.data, lab.data, ids.shape[0]));
        SW_TRY(append_seq(mb->side, rid.data, rlab.data, rid.shape[0]));
        mb->kto[mb->pairs] = -1;
        mb->plen[mb->pairs] = 0;
    } else {
        int label;
        SW_TRY(rec_side(d, r, "", &ids, &lab));
        if (sw_record_get_bool(r, "label", &label) < 0)
            return sw_err_set(SW_EFORMAT, "%s: %s: 'label' is not true/false", d->src, name);
        int64_t p = 0;
        while (p < ids.shape[0] && i32_at(&lab, p) == SW_IGNORE_INDEX)
            p++;
        if (p == 0)
            return sw_err_set(SW_EFORMAT,
                              "%s: %s: a KTO row needs a prompt (labels -100) before its "
                              "completion",
                              d->src, name);
        SW_TRY(append_seq(mb, ids.data, lab.data, ids.shape[0]));
        mb->kto[mb->pairs] = label != 0;
        mb->plen[mb->pairs] = (int32_t)p;
    }
    mb->rec[mb->pairs++] = sw_record_index(r);
    if (mb->records++ == 0) mb->first_record = sw_record_index(r);
    return 0;
}

/* End of a preference micro-batch: the rejected sequences after the chosen ones; for KTO the KL
 * batch (ms-swift's KTOPreprocessor pairs row i's prompt with row i−1's completion). */
static int finish_pref(const struct sw_train_data *d, struct sw_mb *mb) {
    struct sw_mb *side = mb->side;
    if (d->lim.rlhf == SW_TRAIN_PAIRS) {
        for (int s = 0; s < side->b.n_seqs; s++) {
            int64_t a = side->cu[s], n = side->cu[s + 1] - a;
            SW_TRY(append_seq(mb, side->ids + a, side->labels + a, n));
        }
        mb_clear(side);
        return 0;
    }
    if (mb->pairs < 2)
        return sw_err_set(SW_EINVAL,
                          "%s: a KTO micro-batch of %d row: the KL term needs at least 2 (raise "
                          "per_device_train_batch_size; ms-swift refuses a batch of 1 too)",
                          d->src, mb->pairs);
    mb_clear(side);
    int32_t *ids = NULL, *lab = NULL;
    int64_t cap = 0;
    int rc = 0;
    for (int i = 0; i < mb->pairs && rc == 0; i++) {
        int j = (i + mb->pairs - 1) % mb->pairs;
        int64_t pa = mb->cu[i], pn = mb->plen[i];
        int64_t ca = mb->cu[j] + mb->plen[j], cn = mb->cu[j + 1] - ca;
        if (pn + cn > cap) {
            cap = pn + cn;
            int32_t *a = realloc(ids, (size_t)cap * sizeof *a),
                    *b = a ? realloc(lab, (size_t)cap * sizeof *b) : NULL;
            if (a) ids = a;
            if (b) lab = b;
            if (!b) {
                rc = sw_err_set(SW_ENOMEM, "out of memory");
                break;
            }
        }
        memcpy(ids, mb->ids + pa, (size_t)pn * sizeof *ids);
        memcpy(ids + pn, mb->ids + ca, (size_t)cn * sizeof *ids);
        for (int64_t t = 0; t < pn; t++)
            lab[t] = SW_IGNORE_INDEX;
        memcpy(lab + pn, mb->labels + ca, (size_t)cn * sizeof *lab);
        if (pn + cn > d->lim.max_positions)
            rc = sw_err_set(SW_ERANGE,
                            "%s: a KTO KL pair of %lld tokens exceeds max_position_embeddings",
                            d->src, (long long)(pn + cn));
        if (rc == 0) rc = append_seq(side, ids, lab, pn + cn);
    }
    free(ids);
    free(lab);
    if (rc == 0) {
        side->b.input_ids = side->ids;
        side->b.labels = side->labels;
        side->b.position_ids = side->pos;
        side->b.cu_seqlens = side->cu;
    }
    return rc;
}

/* One "batch" record as the whole of mb. */
static int set_batch(const struct sw_train_data *d, const struct sw_record *r, struct sw_mb *mb) {
    struct sw_tensor ids, lab, pos, am, cu;
    int has_ids, has_lab, has_pos, has_am, has_cu;
    mb_clear(mb);
    SW_TRY(opt_tensor(r, "input_ids", &ids, &has_ids));
    if (!has_ids)
        return sw_err_set(SW_EFORMAT, "%s: record %llu: no 'input_ids'", d->src,
                          (unsigned long long)sw_record_index(r));
    SW_TRY(opt_tensor(r, "labels", &lab, &has_lab));
    SW_TRY(opt_tensor(r, "position_ids", &pos, &has_pos));
    SW_TRY(opt_tensor(r, "attention_mask", &am, &has_am));
    SW_TRY(opt_tensor(r, "cu_seqlens", &cu, &has_cu));
    int64_t B = ids.shape[0], T = ids.shape[1], N = B * T;
    if (N == 0 || N > INT32_MAX)
        return sw_err_set(SW_EFORMAT, "%s: record %llu: batch of %lld x %lld tokens", d->src,
                          (unsigned long long)sw_record_index(r), (long long)B, (long long)T);
    int64_t nseq = has_cu ? cu.shape[0] - 1 : 0;
    SW_TRY(mb_reserve(mb, N, nseq + 1));
    copy_i32(mb->ids, &ids, N);
    SW_TRY(check_tokens(d, r, "input_ids", mb->ids, N, 0));
    if (has_am)
        for (int64_t i = 0; i < N; i++)
            mb->mask[i] = mask_at(&am, i);
    if (has_lab) {
        copy_i32(mb->labels, &lab, N);
        SW_TRY(check_tokens(d, r, "labels", mb->labels, N, 1));
    } else {
        for (int64_t i = 0; i < N; i++)
            mb->labels[i] = !has_am || mb->mask[i] ? mb->ids[i] : SW_IGNORE_INDEX;
    }
    if (has_pos) {
        copy_i32(mb->pos, &pos, N);
        SW_TRY(check_tokens(d, r, "position_ids", mb->pos, N, 0));
    } else if (T > d->lim.max_positions) {
        return rec_err(d, r, SW_ERANGE,
                       "%s: rows of %lld tokens (%lld) exceed "
                       "max_position_embeddings %lld",
                       "batch", T, T, (long long)d->lim.max_positions);
    }
    mb->b.B = B;
    mb->b.T = T;
    mb->b.input_ids = mb->ids;
    mb->b.labels = mb->labels;
    mb->b.position_ids = has_pos ? mb->pos : NULL;
    if (has_cu) {
        copy_i32(mb->cu, &cu, nseq + 1);
        int32_t last = mb->cu[nseq];
        /* Padding after the last boundary: a segment of its own with no targets. */
        for (int64_t i = last; i < N; i++)
            mb->labels[i] = SW_IGNORE_INDEX;
        if (last < N) mb->cu[++nseq] = (int32_t)N;
        mb->b.cu_seqlens = mb->cu;
        mb->b.n_seqs = (int)nseq;
        mb->input_tokens = last;
        for (int64_t s = 0; s < nseq; s++)
            mb->targets += seq_targets(mb->labels + mb->cu[s], mb->cu[s + 1] - mb->cu[s]);
    } else {
        mb->b.attention_mask = has_am ? mb->mask : NULL;
        for (int64_t b = 0; b < B; b++) {
            int64_t real = T;
            if (has_am) {
                real = 0;
                for (int64_t i = 0; i < T; i++)
                    real += mb->mask[b * T + i] != 0;
                /* Padded positions never carry a loss. */
                for (int64_t i = 0; i < T; i++)
                    if (!mb->mask[b * T + i]) mb->labels[b * T + i] = SW_IGNORE_INDEX;
            }
            mb->input_tokens += real;
            mb->targets += seq_targets(mb->labels + b * T, T);
        }
    }
    mb->records = 1;
    mb->first_record = sw_record_index(r);
    return 0;
}

/* ---- header ------------------------------------------------------------------------------ */

/* A string or integer value of the header's meta map. */
static const msgpack_object *meta_get(const struct sw_stream_header *h, const char *key) {
    return h->meta ? sw_msgpack_map_get(h->meta, key) : NULL;
}

static int meta_int(const struct sw_stream_header *h, const char *key, int64_t *out) {
    const msgpack_object *o = meta_get(h, key);
    if (!o) return 0;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
        return *out = (int64_t)o->via.u64, 1;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) return *out = o->via.i64, 1;
    return 0;
}

static int check_header(struct sw_train_data *d) {
    const struct sw_stream_header *h = sw_stream_reader_header(d->r);
    const char *kind = h->stream_kind ? h->stream_kind : "";
    if (strcmp(kind, "samples") != 0 && strcmp(kind, "packed_batches") != 0 &&
        strcmp(kind, "batches") != 0)
        return sw_err_set(SW_EFORMAT,
                          "%s: stream kind '%s' holds no training data (expected "
                          "'samples' or 'packed_batches')",
                          d->src, kind);
    d->samples = strcmp(kind, "samples") == 0;
    int64_t v;
    if (meta_int(h, "max_length", &v) && v > 0) d->max_length = v;
    if (meta_int(h, "vocab_size", &v) && v > d->lim.vocab_size)
        return sw_err_set(SW_EINVAL,
                          "%s: the stream was tokenized for vocab_size %lld but the "
                          "model has %lld",
                          d->src, (long long)v, (long long)d->lim.vocab_size);
    const msgpack_object *dk = meta_get(h, "data_kind");
    const char *want = d->lim.rlhf == SW_TRAIN_PAIRS ? "preference"
                       : d->lim.rlhf == SW_TRAIN_KTO ? "kto"
                                                     : "sft";
    if (d->lim.rlhf && !dk)
        return sw_err_set(SW_EFORMAT,
                          "%s: the stream does not say what it holds (no meta data_kind); "
                          "preference training reads sw-pack's %s streams",
                          d->src, want);
    if (dk && dk->type == MSGPACK_OBJECT_STR && !sw_msgpack_str_eq(dk, want)) {
        int n = (int)(dk->via.str.size > 32 ? 32 : dk->via.str.size);
        if (!d->lim.rlhf)
            return sw_err_set(SW_EUNSUPPORTED,
                              "%s: the stream holds %.*s data: train it with --rlhf_type (%s)",
                              d->src, n, dk->via.str.ptr,
                              sw_msgpack_str_eq(dk, "kto") ? "kto" : "dpo, cpo, simpo or orpo");
        return sw_err_set(SW_EINVAL,
                          "%s: the stream holds %.*s data, but --rlhf_type %s trains on %s "
                          "records%s",
                          d->src, n, dk->via.str.ptr,
                          d->lim.rlhf == SW_TRAIN_KTO ? "kto" : "dpo/cpo/simpo/orpo",
                          d->lim.rlhf == SW_TRAIN_KTO ? "KTO (labelled)" : "preference pair",
                          sw_msgpack_str_eq(dk, "kto") ? " (use --rlhf_type kto)" : "");
    }
    if (meta_int(h, "max_length", &v) && v > 0 && v > d->lim.max_positions)
        return sw_err_set(SW_EINVAL,
                          "%s: the stream's max_length %lld exceeds the model's "
                          "max_position_embeddings %lld",
                          d->src, (long long)v, (long long)d->lim.max_positions);
    const char *keys[] = {"tokenizer_sha256", "tokenizer_hash", NULL};
    for (int i = 0; keys[i] && d->lim.tokenizer_sha256; i++) {
        const msgpack_object *o = meta_get(h, keys[i]);
        if (!o || o->type != MSGPACK_OBJECT_STR) continue;
        const char *s = o->via.str.ptr;
        uint32_t n = o->via.str.size;
        if (n > 7 && memcmp(s, "sha256:", 7) == 0) s += 7, n -= 7;
        if (n != 64 || memcmp(s, d->lim.tokenizer_sha256, 64) != 0)
            return sw_err_set(SW_EINVAL,
                              "%s: the stream was tokenized with another tokenizer "
                              "(%s %.16s..., the model folder's tokenizer has sha256 %.16s...)",
                              d->src, keys[i], s, d->lim.tokenizer_sha256);
    }
    size_t len;
    const void *raw = sw_record_raw(sw_stream_reader_header_record(d->r), &len);
    uint8_t dg[32];
    SW_TRY(sw_sha256(raw, len, dg));
    sw_hex(dg, 32, d->header_sha256);
    return 0;
}

/* ---- source ------------------------------------------------------------------------------ */

/* 1 when path holds JSON (a dataset file sw-pack reads), looking through gzip. */
static int looks_like_json(const char *path) {
    gzFile gz = gzopen(path, "rb");
    if (!gz) return 0;
    char buf[256];
    int n = gzread(gz, buf, sizeof buf);
    gzclose(gz);
    for (int i = 0; i < n; i++) {
        if (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n') continue;
        return buf[i] == '{' || buf[i] == '[';
    }
    return 0;
}

static int reader_open(struct sw_train_data *d) {
    int rc = sw_stream_open_read(&d->r, d->src, &d->sopts);
    if (rc == SW_EFORMAT && d->reopenable && looks_like_json(d->src))
        return sw_err_set(SW_EFORMAT,
                          "%s is a JSON dataset, not an sws stream: run sw-pack first, e.g. "
                          "sw-pack --tokenizer MODEL_DIR --dataset %s --output train.sws, then "
                          "pass train.sws (or pipe: sw-pack ... | sw-train --dataset -)",
                          d->src, d->src);
    if (rc < 0) return rc;
    return check_header(d);
}

int sw_train_data_open(struct sw_train_data *d, const char *src, const struct sw_data_limits *lim,
                       int64_t batch_size, int timeout_ms, int (*interrupted)(void)) {
    memset(d, 0, sizeof *d);
    if (!(d->src = strdup(src))) return sw_err_set(SW_ENOMEM, "out of memory");
    d->lim = *lim;
    d->batch_size = batch_size > 0 ? batch_size : 1;
    d->sopts.timeout_ms = timeout_ms;
    d->sopts.interrupted = interrupted;
    struct stat st;
    d->reopenable = strcmp(src, "-") != 0 && !sw_stream_is_endpoint(src) && stat(src, &st) == 0 &&
                    S_ISREG(st.st_mode);
    int rc = reader_open(d);
    if (rc < 0) sw_train_data_close(d);
    return rc;
}

void sw_train_data_close(struct sw_train_data *d) {
    sw_stream_reader_free(d->r);
    sw_mb_release(&d->pending);
    free(d->src);
    memset(d, 0, sizeof *d);
}

static void swap_mb(struct sw_mb *a, struct sw_mb *b) {
    struct sw_mb t = *a;
    *a = *b;
    *b = t;
}

int sw_train_data_next(struct sw_train_data *d, struct sw_mb *mb) {
    mb_clear(mb);
    if (d->has_pending) {
        swap_mb(mb, &d->pending);
        d->has_pending = 0;
        d->used += mb->records;
        return 1;
    }
    while (!d->at_end) {
        const struct sw_record *r;
        int rc = sw_stream_read(d->r, &r);
        if (rc < 0) return rc;
        if (rc == 0) {
            d->at_end = 1;
            break;
        }
        const char *kind = sw_record_kind(r);
        if (strcmp(kind, "sample") == 0 && d->lim.rlhf) {
            SW_TRY(add_pref(d, r, mb));
            if (mb->records >= d->batch_size) break;
        } else if (strcmp(kind, "sample") == 0) {
            SW_TRY(add_sample(d, r, mb));
            if (mb->records >= d->batch_size) break;
        } else if (strcmp(kind, "batch") == 0 && d->lim.rlhf) {
            return sw_err_set(SW_EFORMAT,
                              "%s: record %llu is a packed batch: preference training reads "
                              "sample records (sw-pack without --packing)",
                              d->src, (unsigned long long)sw_record_index(r));
        } else if (strcmp(kind, "batch") == 0) {
            if (mb->records == 0) {
                SW_TRY(set_batch(d, r, mb));
                break;
            }
            /* Samples were being packed: finish them, keep the batch for next time. */
            SW_TRY(set_batch(d, r, &d->pending));
            d->has_pending = 1;
            break;
        } else {
            return sw_err_set(SW_EFORMAT,
                              "%s: record %llu: kind '%s' is not training data "
                              "(expected 'sample' or 'batch')",
                              d->src, (unsigned long long)sw_record_index(r), kind);
        }
    }
    if (mb->records == 0) return 0;
    if (d->lim.rlhf) SW_TRY(finish_pref(d, mb));
    if (mb->b.cu_seqlens == NULL && mb->b.B == 1 && mb->b.n_seqs > 0) {
        /* A packed row of samples. */
        mb->b.input_ids = mb->ids;
        mb->b.labels = mb->labels;
        mb->b.position_ids = mb->pos;
        mb->b.cu_seqlens = mb->cu;
    }
    d->used += mb->records;
    return 1;
}

int sw_train_data_next_epoch(struct sw_train_data *d) {
    if (!d->reopenable)
        return sw_err_set(SW_EINVAL,
                          "%s: cannot read a pipe or ZeroMQ stream twice for another "
                          "epoch (train from a .sws file, or set max_steps)",
                          d->src);
    sw_stream_reader_free(d->r);
    d->r = NULL;
    char old[65];
    memcpy(old, d->header_sha256, sizeof old);
    SW_TRY(reader_open(d));
    if (memcmp(old, d->header_sha256, sizeof old) != 0)
        return sw_err_set(SW_ECORRUPT, "%s: the file changed during training", d->src);
    d->epoch++;
    d->used = 0;
    d->at_end = 0;
    d->has_pending = 0;
    return 0;
}

int sw_train_data_skip(struct sw_train_data *d, int64_t n) {
    while (d->used < n) {
        const struct sw_record *r;
        int rc = sw_stream_read(d->r, &r);
        if (rc < 0) return rc;
        if (rc == 0)
            return sw_err_set(SW_ETRUNC,
                              "%s: ended after %lld records, but the checkpoint had "
                              "consumed %lld in this epoch (a different dataset?)",
                              d->src, (long long)d->used, (long long)n);
        const char *kind = sw_record_kind(r);
        if (strcmp(kind, "sample") != 0 && strcmp(kind, "batch") != 0)
            return sw_err_set(SW_EFORMAT, "%s: record %llu: kind '%s' is not training data", d->src,
                              (unsigned long long)sw_record_index(r), kind);
        d->used++;
    }
    return 0;
}

int sw_train_data_count(const char *src, const struct sw_data_limits *lim, int64_t batch_size,
                        int64_t *micro_batches, int64_t *records, struct sw_data_shape *shape) {
    struct sw_train_data d;
    struct sw_mb mb = {0};
    *micro_batches = *records = 0;
    if (shape) memset(shape, 0, sizeof *shape);
    SW_TRY(sw_train_data_open(&d, src, lim, batch_size, 0, NULL));
    int rc;
    while ((rc = sw_train_data_next(&d, &mb)) == 1) {
        (*micro_batches)++;
        *records += mb.records;
        if (!shape) continue;
        int64_t tokens = mb.b.B * mb.b.T, seqs = mb.b.cu_seqlens ? mb.b.n_seqs : mb.b.B;
        if (tokens > shape->max_tokens) shape->max_tokens = tokens;
        if (seqs > shape->max_seqs) shape->max_seqs = seqs;
        if (mb.b.attention_mask) shape->padded = 1;
    }
    sw_mb_release(&mb);
    sw_train_data_close(&d);
    return rc < 0 ? rc : 0;
}
