/* sw_train_pref — sw-train --rlhf_type dpo|kto|cpo|simpo|orpo: the reference pass, one
 * preference step, evaluation and the cache of reference log-probs.
 *
 * Reference log-probs (DPO, KTO) are computed once, before the first step, over every record
 * of the training (and validation) data — TRL's precompute_ref_log_probs — with the frozen base:
 * LoRA runs switch the adapters off for that pass (sw_model_set_lora_enabled; no second copy of
 * the weights), full fine-tuning uses the initial weights, before any update. They are kept per
 * stream record (pair: chosen, rejected; KTO: row, KL pair). --ref_logps FILE writes them to an
 * sws stream when FILE is absent and reads them back when it exists, after checking that it was
 * made for this dataset (header digest, record count, batch size for KTO's KL pairs) and base
 * model (config digest); later runs then skip the pass.
 *
 * A step: per micro-batch, one forward of its packed sequences (chosen then rejected; KTO rows
 * and, without gradient, their KL pairs), TRL's loss on the per-sequence sums
 * (sw_pref_loss.c), and one backward with per-token weights; the micro-batch losses are
 * averaged over the step's micro-batches (HF Trainer's gradient accumulation). Dropout is off
 * (TRL's disable_dropout). */
#include "sw_train_pref.h"

#include "sw_err.h"
#include "sw_io.h"
#include "sw_log.h"
#include "sw_pref.h"
#include "sw_record.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int sw_train_pref_open(struct sw_trainer *t) {
    const struct sw_train_opts *o = t->o;
    struct sw_train_pref *p = calloc(1, sizeof *p);
    if (!p) return sw_err_set(SW_ENOMEM, "out of memory");
    t->pref = p;
    SW_TRY(sw_pref_cfg_parse(o->rlhf_type, o->loss_type, &p->cfg));
    if (o->beta > 0) p->cfg.beta = o->beta;
    p->cfg.label_smoothing = o->label_smoothing;
    p->cfg.use_rpo = o->rpo_alpha > 0;
    p->cfg.rpo_alpha = o->rpo_alpha;
    p->cfg.cpo_alpha = o->cpo_alpha;
    p->cfg.simpo_gamma = o->simpo_gamma;
    p->cfg.desirable_weight = o->desirable_weight;
    p->cfg.undesirable_weight = o->undesirable_weight;
    if (p->cfg.loss == SW_PREF_ROBUST && !(p->cfg.label_smoothing < 0.5))
        return sw_err_set(SW_EUSAGE, "label_smoothing %g: the robust loss needs [0, 0.5)",
                          p->cfg.label_smoothing);
    p->kind = p->cfg.type == SW_RLHF_KTO ? SW_TRAIN_KTO : SW_TRAIN_PAIRS;
    return 0;
}

void sw_train_pref_close(struct sw_trainer *t) {
    struct sw_train_pref *p = t->pref;
    if (!p) return;
    free(p->ref);
    free(p->have);
    for (int i = 0; i < p->n_vref; i++)
        free(p->vref[i]);
    free(p->vref);
    free(p);
    t->pref = NULL;
}

/* Per-sequence log-probs of mb (and of its KL batch for KTO) under the model as it is now.
 * lp: [2·pairs] pairs (chosen, then rejected) / [pairs] rows + [pairs] KL (KTO). */
static int mb_logps(struct sw_trainer *t, struct sw_mb *mb, double *lp, int64_t *nt) {
    if (t->pref->kind == SW_TRAIN_KTO)
        SW_TRY(sw_pref_forward_logps(t->m, &mb->side->b, lp + mb->pairs, nt + mb->pairs));
    /* the sequences last: their activations stay for the backward */
    return sw_pref_forward_logps(t->m, &mb->b, lp, nt);
}

/* The reference log-probs of mb into ref[2·pairs] (see mb_logps). */
static int mb_ref(struct sw_trainer *t, struct sw_mb *mb, double *ref) {
    int64_t *nt = malloc((size_t)(2 * mb->pairs) * sizeof *nt);
    if (!nt) return sw_err_set(SW_ENOMEM, "out of memory");
    if (t->lora) sw_model_set_lora_enabled(t->m, 0);
    int rc = mb_logps(t, mb, ref, nt);
    if (t->lora) sw_model_set_lora_enabled(t->m, 1);
    free(nt);
    return rc;
}

static int ref_store(struct sw_train_pref *p, uint64_t rec, double a, double b) {
    if ((int64_t)rec >= p->nref) {
        int64_t n = p->nref ? p->nref : 64;
        while (n <= (int64_t)rec)
            n *= 2;
        double *r = realloc(p->ref, (size_t)n * 2 * sizeof *r);
        if (r) p->ref = r;
        uint8_t *h = r ? realloc(p->have, (size_t)n) : NULL;
        if (!h) return sw_err_set(SW_ENOMEM, "out of memory");
        p->have = h;
        memset(p->have + p->nref, 0, (size_t)(n - p->nref));
        p->nref = n;
    }
    p->ref[2 * rec] = a, p->ref[2 * rec + 1] = b;
    p->have[rec] = 1;
    return 0;
}

/* ---- the cache file ------------------------------------------------------------------------ */

static int cache_meta_check(struct sw_trainer *t, const char *path,
                            const struct sw_stream_header *h) {
    struct sw_train_pref *p = t->pref;
    const msgpack_object *ds = sw_msgpack_map_get(h->meta, "dataset_sha256"),
                         *bs = sw_msgpack_map_get(h->meta, "batch_size"),
                         *kd = sw_msgpack_map_get(h->meta, "rlhf"),
                         *mc = sw_msgpack_map_get(h->meta, "base_config_sha256");
    if (!h->stream_kind || strcmp(h->stream_kind, "ref_logps") != 0 || !ds || !bs || !kd)
        return sw_err_set(SW_EFORMAT, "%s: not a reference log-prob file of sw-train", path);
    if (!sw_msgpack_str_eq(ds, t->data.header_sha256))
        return sw_err_set(SW_EINVAL,
                          "%s: made for another dataset (its header digest differs from %s's): "
                          "delete it to recompute",
                          path, t->data.src);
    if (!sw_msgpack_str_eq(kd, p->kind == SW_TRAIN_KTO ? "kto" : "pairs") ||
        (p->kind == SW_TRAIN_KTO && (bs->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
                                     (int64_t)bs->via.u64 != t->o->per_device_train_batch_size)))
        return sw_err_set(SW_EINVAL,
                          "%s: made for another rlhf_type or (KTO) batch size: delete it to "
                          "recompute",
                          path);
    if (mc && t->base_config_sha256[0] && !sw_msgpack_str_eq(mc, t->base_config_sha256))
        return sw_err_set(SW_EINVAL, "%s: made with another base model: delete it to recompute",
                          path);
    return 0;
}

static int cache_read(struct sw_trainer *t, const char *path) {
    struct sw_stream_reader *r = NULL;
    struct sw_stream_opts so = {0};
    SW_TRY(sw_stream_open_read(&r, path, &so));
    int rc = cache_meta_check(t, path, sw_stream_reader_header(r));
    const struct sw_record *rec = NULL;
    if (rc == 0 && (rc = sw_stream_read(r, &rec)) == 0)
        rc = sw_err_set(SW_ETRUNC, "%s: holds no log-probs", path);
    struct sw_tensor idx = {0}, val = {0};
    int got = 0;
    for (size_t i = 0; rc == 1 && i < sw_record_tensors_len(rec); i++) {
        const char *nm;
        size_t nl;
        struct sw_tensor tt;
        if (sw_record_tensors_at(rec, i, &nm, &nl, &tt) < 0) break;
        if (nl == 6 && memcmp(nm, "record", 6) == 0) idx = tt, got |= 1;
        if (nl == 3 && memcmp(nm, "ref", 3) == 0) val = tt, got |= 2;
    }
    if (rc == 1)
        rc = got == 3 ? 0 : sw_err_set(SW_EFORMAT, "%s: no 'record' / 'ref' tensors", path);
    if (rc == 0 &&
        (idx.dtype != SW_DTYPE_I64 || val.dtype != SW_DTYPE_F64 || val.ndim != 2 ||
         val.shape[0] != idx.shape[0] || val.shape[1] != 2 || idx.shape[0] != t->records_per_epoch))
        rc = sw_err_set(SW_EFORMAT,
                        "%s: %lld log-prob rows for a dataset of %lld records (or bad "
                        "tensors): delete it to recompute",
                        path, (long long)idx.shape[0], (long long)t->records_per_epoch);
    for (int64_t i = 0; rc == 0 && i < idx.shape[0]; i++) {
        int64_t k;
        double v[2];
        memcpy(&k, (const char *)idx.data + i * 8, 8);
        memcpy(v, (const char *)val.data + i * 16, 16);
        if (k < 0) rc = sw_err_set(SW_EFORMAT, "%s: negative record index", path);
        if (rc == 0) rc = ref_store(t->pref, (uint64_t)k, v[0], v[1]);
    }
    sw_stream_reader_free(r);
    if (rc == 0)
        sw_info("reference log-probs of %lld records read from %s", (long long)idx.shape[0], path);
    return rc;
}

static int cache_write(struct sw_trainer *t, const char *path) {
    struct sw_train_pref *p = t->pref;
    int64_t n = 0;
    for (int64_t i = 0; i < p->nref; i++)
        n += p->have[i];
    int64_t *idx = malloc((size_t)(n ? n : 1) * sizeof *idx);
    double *val = malloc((size_t)(n ? n : 1) * 2 * sizeof *val);
    struct sw_record_builder *meta = sw_record_builder_new(NULL),
                             *b = sw_record_builder_new("tensors");
    int rc = idx && val && meta && b ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
    for (int64_t i = 0, k = 0; rc == 0 && i < p->nref; i++)
        if (p->have[i])
            idx[k] = i, val[2 * k] = p->ref[2 * i], val[2 * k + 1] = p->ref[2 * i + 1], k++;
    if (rc == 0) rc = sw_record_put_str(meta, "dataset_sha256", t->data.header_sha256);
    if (rc == 0) rc = sw_record_put_str(meta, "rlhf", p->kind == SW_TRAIN_KTO ? "kto" : "pairs");
    if (rc == 0) rc = sw_record_put_int(meta, "batch_size", t->o->per_device_train_batch_size);
    if (rc == 0) rc = sw_record_put_int(meta, "records", n);
    if (rc == 0) rc = sw_record_put_str(meta, "base_config_sha256", t->base_config_sha256);
    struct sw_tensor ti, tv;
    const int64_t si[1] = {n}, sv[2] = {n, 2};
    if (rc == 0) rc = sw_tensor_init(&ti, SW_DTYPE_I64, 1, si, idx);
    if (rc == 0) rc = sw_tensor_init(&tv, SW_DTYPE_F64, 2, sv, val);
    if (rc == 0) rc = sw_record_put_str(b, "name", "ref_logps");
    if (rc == 0) rc = sw_record_put_map_begin(b, "tensors");
    if (rc == 0) rc = sw_record_put_tensor(b, "record", &ti);
    if (rc == 0) rc = sw_record_put_tensor(b, "ref", &tv);
    if (rc == 0) rc = sw_record_put_end(b);
    struct sw_stream_writer *w = NULL;
    struct sw_stream_info info = {"sw-train", "ref_logps", meta};
    if (rc == 0) rc = sw_stream_open_write(&w, path, &info, NULL);
    if (rc == 0) rc = sw_stream_write(w, b);
    if (rc == 0) rc = sw_stream_close(&w);
    sw_stream_writer_free(w);
    sw_record_builder_free(meta);
    sw_record_builder_free(b);
    free(idx);
    free(val);
    if (rc == 0) sw_info("reference log-probs of %lld records written to %s", (long long)n, path);
    return rc;
}

/* ---- the reference pass --------------------------------------------------------------------- */

int sw_train_pref_reference(struct sw_trainer *t) {
    struct sw_train_pref *p = t->pref;
    const char *cache = t->o->ref_logps;
    int need = sw_pref_needs_ref(&p->cfg);
    int rc = 0;
    sw_model_set_training(t->m, 0);
    if (need && cache && access(cache, F_OK) == 0) {
        SW_TRY(cache_read(t, cache));
    } else if (need) {
        if (!t->data.reopenable)
            return sw_err_set(SW_EUSAGE,
                              "%s: preference training with a reference model reads the dataset "
                              "twice (the reference pass first): give a .sws file",
                              t->data.src);
        if (!t->lora && t->st.global_step > 0)
            return sw_err_set(SW_EUSAGE,
                              "resuming full fine-tuning with --rlhf_type %s needs the "
                              "reference log-probs of the first run (--ref_logps FILE): the "
                              "initial weights are gone",
                              t->o->rlhf_type);
        struct sw_train_data d;
        struct sw_mb mb = {0};
        SW_TRY(sw_train_data_open(&d, t->data.src, &t->data.lim, t->o->per_device_train_batch_size,
                                  0, NULL));
        double *ref = NULL;
        int64_t nrec = 0;
        while (rc == 0 && (rc = sw_train_data_next(&d, &mb)) == 1) {
            double *r2 = realloc(ref, (size_t)(2 * mb.pairs) * sizeof *r2);
            if (!r2) {
                rc = sw_err_set(SW_ENOMEM, "out of memory");
                break;
            }
            ref = r2;
            rc = mb_ref(t, &mb, ref);
            for (int i = 0; rc == 0 && i < mb.pairs; i++)
                rc = ref_store(p, mb.rec[i], ref[i], ref[mb.pairs + i]);
            nrec += mb.pairs;
        }
        free(ref);
        sw_mb_release(&mb);
        sw_train_data_close(&d);
        if (rc < 0) return rc;
        rc = 0;
        sw_info("reference pass: log-probs of %lld records (%s)", (long long)nrec,
                t->lora ? "the base model: adapters off" : "the initial weights");
        if (cache) SW_TRY(cache_write(t, cache));
    }
    /* validation micro-batches: their reference once, kept next to them */
    if (need && t->n_val) {
        if (!(p->vref = calloc((size_t)t->n_val, sizeof *p->vref)))
            return sw_err_set(SW_ENOMEM, "out of memory");
        p->n_vref = t->n_val;
        for (int i = 0; i < t->n_val; i++) {
            if (!(p->vref[i] = malloc((size_t)(2 * t->val[i].pairs) * sizeof(double))))
                return sw_err_set(SW_ENOMEM, "out of memory");
            SW_TRY(mb_ref(t, &t->val[i], p->vref[i]));
        }
    }
    return 0;
}

/* ---- steps and evaluation ---------------------------------------------------------------------
 */

/* Loss of one micro-batch; with scale > 0 also its backward (gradient of scale · loss). */
static int mb_loss(struct sw_trainer *t, struct sw_mb *mb, const double *vref, double scale,
                   struct sw_pref_metrics *mt) {
    struct sw_train_pref *p = t->pref;
    int P = mb->pairs, kto = p->kind == SW_TRAIN_KTO;
    double *lp = malloc((size_t)(4 * P) * sizeof *lp), *grad = lp ? lp + 2 * P : NULL, nll = 0;
    int64_t *nt = malloc((size_t)(2 * P) * sizeof *nt);
    struct sw_pref_seq *seq = calloc((size_t)(2 * P), sizeof *seq);
    int rc = lp && nt && seq ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
    if (rc == 0) rc = mb_logps(t, mb, lp, nt);
    for (int i = 0; rc == 0 && i < P; i++) {
        double r0 = 0, r1 = 0;
        if (sw_pref_needs_ref(&p->cfg)) {
            if (vref) {
                r0 = vref[i], r1 = vref[P + i];
            } else if ((int64_t)mb->rec[i] < p->nref && p->have[mb->rec[i]]) {
                r0 = p->ref[2 * mb->rec[i]], r1 = p->ref[2 * mb->rec[i] + 1];
            } else {
                rc = sw_err_set(SW_ESTATE, "%s: record %llu has no reference log-probs",
                                t->data.src, (unsigned long long)mb->rec[i]);
                break;
            }
        }
        if (kto) {
            seq[i] = (struct sw_pref_seq){.logp = lp[i],
                                          .ref_logp = r0,
                                          .ntok = nt[i],
                                          .desirable = mb->kto[i] == 1,
                                          .kl_logp = lp[P + i],
                                          .ref_kl_logp = r1};
        } else {
            seq[i] = (struct sw_pref_seq){.logp = lp[i], .ref_logp = r0, .ntok = nt[i]};
            seq[P + i] = (struct sw_pref_seq){.logp = lp[P + i], .ref_logp = r1, .ntok = nt[P + i]};
        }
    }
    if (rc == 0) rc = sw_pref_loss(&p->cfg, P, seq, grad, &nll, mt);
    if (rc == 0 && scale > 0) rc = sw_pref_backward(t->m, &mb->b, grad, nll, kto ? 0 : P, scale);
    free(lp);
    free(nt);
    free(seq);
    return rc;
}

/* Running sums of the metrics: index order of sw_train_pref_metric_names. */
static void metrics_add(double *sum, int64_t *cnt, const struct sw_pref_metrics *mt) {
    const double v[SW_PREF_NMETRICS] = {mt->rewards_chosen,
                                        mt->rewards_rejected,
                                        mt->rewards_accuracies,
                                        mt->rewards_margins,
                                        mt->logps_chosen,
                                        mt->logps_rejected,
                                        mt->has_nll ? mt->nll_loss : NAN,
                                        mt->has_kl ? mt->kl : NAN,
                                        mt->has_odds ? mt->log_odds_ratio : NAN,
                                        mt->has_odds ? mt->log_odds_chosen : NAN};
    for (int i = 0; i < SW_PREF_NMETRICS; i++)
        if (isfinite(v[i])) sum[i] += v[i], cnt[i]++;
}

const char *const sw_train_pref_metric_names[SW_PREF_NMETRICS] = {
    "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
    "logps/chosen",   "logps/rejected",   "nll_loss",           "kl",
    "log_odds_ratio", "log_odds_chosen"};

int sw_train_pref_step(struct sw_trainer *t, int n, double gscale, double *loss) {
    struct sw_train_pref *p = t->pref;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        struct sw_pref_metrics mt;
        SW_TRY(mb_loss(t, &t->mbs[i], NULL, gscale / n, &mt));
        sum += mt.loss;
        metrics_add(p->win_sum, p->win_n, &mt);
    }
    *loss = sum / n;
    return 0;
}

int sw_train_pref_eval(struct sw_trainer *t, double *eval_loss, double *metrics) {
    struct sw_train_pref *p = t->pref;
    double sum[SW_PREF_NMETRICS] = {0}, lsum = 0;
    int64_t cnt[SW_PREF_NMETRICS] = {0};
    for (int i = 0; i < t->n_val; i++) {
        struct sw_pref_metrics mt;
        SW_TRY(mb_loss(t, &t->val[i], p->vref ? p->vref[i] : NULL, 0, &mt));
        lsum += mt.loss;
        metrics_add(sum, cnt, &mt);
    }
    *eval_loss = t->n_val ? lsum / t->n_val : NAN;
    for (int i = 0; i < SW_PREF_NMETRICS; i++)
        metrics[i] = cnt[i] ? sum[i] / (double)cnt[i] : NAN;
    return 0;
}

void sw_train_pref_window(struct sw_trainer *t, double *metrics) {
    struct sw_train_pref *p = t->pref;
    for (int i = 0; i < SW_PREF_NMETRICS; i++) {
        metrics[i] = p->win_n[i] ? p->win_sum[i] / (double)p->win_n[i] : NAN;
        p->win_sum[i] = 0, p->win_n[i] = 0;
    }
}
