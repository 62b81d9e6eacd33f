/* sw_train — the training loop: resume, plan the steps and the memory, then per step gather
 * micro-batches, forward/backward with the step's target count as the loss denominator, check
 * for non-finite values, clip, AdamW with the scheduled LR (on the host, or on the device for
 * CUDA), and log / evaluate / save on their step multiples. float16 runs scale the loss and
 * skip the steps whose scaled gradients overflow (GradScaler; see scaled_update). The contract
 * (what a step is, what resume guarantees, signals) is in sw_train.h. */
#include "sw_train_grpo.h"
#include "sw_train_impl.h"
#include "sw_train_pref.h"

#include "sw_err.h"
#include "sw_io.h"
#include "sw_log.h"
#include "sw_progress.h"
#include "sw_record.h"
#include "sw_run_dir.h"
#include "sw_signal.h"
#include "sw_tokenizer.h"
#include "sw_train_report.h"

#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Metrics accumulated between two log lines. */
struct log_window {
    double loss_sum; /* sum of per-step mean losses */
    int64_t steps, tokens;
    double t_start;
    double last_norm;
    double last_tps; /* tokens/s of the last closed window: shown while a new one is empty */
    int64_t step0;   /* global_step when this process started training (for the ETA) */
    double t0;       /* when it did */
};

/* The scheduler's step count: completed steps less those float16's scaler skipped (HF Trainer
 * steps the scheduler only when the optimizer stepped: `if optimizer_was_run:
 * lr_scheduler.step()`, and accelerate's scheduler wrapper skips too). nan_policy skips still
 * advance it, as before. */
static int64_t sched_step(const struct sw_trainer *t) {
    return t->st.global_step - t->st.loss_scale_skipped;
}

static double epoch_now(const struct sw_trainer *t) {
    if (t->records_per_epoch > 0)
        return (double)t->data.epoch + (double)t->data.used / (double)t->records_per_epoch;
    return (double)t->data.epoch;
}

/* ---- set-up ------------------------------------------------------------------------------ */

/* The checkpoint to resume from (*path: its folder, malloc'ed, kept to choose the run folder). */
static int open_resume(const struct sw_train_opts *o, struct sw_ckpt **ck, char **path) {
    *ck = NULL;
    *path = NULL;
    if (!o->resume_from_checkpoint) return 0;
    if (strcmp(o->resume_from_checkpoint, "latest") == 0) {
        int rc = sw_run_dir_latest_checkpoint(o->output_dir, path);
        if (rc < 0) return sw_err_wrap(rc, "resume_from_checkpoint latest");
    } else if (!(*path = strdup(o->resume_from_checkpoint))) {
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    int rc = sw_ckpt_open(*path, ck);
    if (rc == 0)
        sw_info("resuming from %s (step %lld)", *path,
                (long long)sw_ckpt_get_state(*ck)->global_step);
    return rc < 0 ? sw_err_wrap(rc, "resume_from_checkpoint") : 0;
}

/* ---- the run folder ------------------------------------------------------------------------ */

/* Decide where the run writes (t->run_dir; nothing is created yet): a resumed run continues its
 * checkpoint's run folder when that lies in output_dir; otherwise a new vN-... folder
 * (add_version) or output_dir itself, which must not hold another run's records. *fresh is 1
 * when the folder is to be created (sw_run_dir_create). */
static int choose_run_dir(struct sw_trainer *t, const char *resume_path, int *fresh) {
    const struct sw_train_opts *o = t->o;
    *fresh = 0;
    if (resume_path) SW_TRY(sw_run_dir_of_checkpoint(o->output_dir, resume_path, &t->run_dir));
    if (t->run_dir) return 0;
    if (o->add_version) {
        *fresh = 1;
        return 0;
    }
    SW_TRY(sw_run_dir_check_unused(o->output_dir));
    return (t->run_dir = strdup(o->output_dir)) ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
}

/* Create the run folder chosen above (just before the first file is written, so that a run
 * refused during set-up leaves nothing behind). */
static int make_run_dir(struct sw_trainer *t, int fresh, int *made_parent) {
    *made_parent = 0;
    if (fresh) {
        SW_TRY(sw_run_dir_create(t->o->output_dir, &t->run_dir, made_parent));
    } else {
        *made_parent = access(t->run_dir, F_OK) != 0;
        SW_TRY(sw_mkdir_p(t->run_dir));
    }
    sw_info("run folder: %s", t->run_dir);
    return sw_train_report_open(t->run_dir, t->o->report_to, t->o->logging_dir, &t->report);
}

/* init_from_config runs have no model folder to take tokenizer files from: use the tokenizer
 * the stream was made with, found by the folder sw-pack recorded (as given, or next to the
 * stream file) and accepted only when its content digest is the recorded one. */
static int find_stream_tokenizer(struct sw_trainer *t) {
    if (t->model_dir || !t->data.r) return 0;
    const struct sw_stream_header *h = sw_stream_reader_header(t->data.r);
    const msgpack_object *dir = h->meta ? sw_msgpack_map_get(h->meta, "tokenizer") : NULL;
    const msgpack_object *sha = h->meta ? sw_msgpack_map_get(h->meta, "tokenizer_sha256") : NULL;
    if (!dir || dir->type != MSGPACK_OBJECT_STR || !sha || sha->type != MSGPACK_OBJECT_STR ||
        dir->via.str.size == 0 || dir->via.str.size >= PATH_MAX) {
        sw_warn("%s: the stream does not name its tokenizer: checkpoints will hold no tokenizer "
                "files (copy them in before sw-eval)",
                t->data.src);
        return 0;
    }
    char name[PATH_MAX];
    snprintf(name, sizeof name, "%.*s", (int)dir->via.str.size, dir->via.str.ptr);
    const char *want = sha->via.str.ptr;
    uint32_t wn = sha->via.str.size;
    if (wn > 7 && memcmp(want, "sha256:", 7) == 0) want += 7, wn -= 7;
    char cands[2][PATH_MAX];
    int nc = 0;
    snprintf(cands[nc++], PATH_MAX, "%s", name);
    const char *slash = strrchr(t->data.src, '/');
    if (name[0] != '/' && slash && t->data.reopenable &&
        snprintf(cands[nc], PATH_MAX, "%.*s/%s", (int)(slash - t->data.src), t->data.src, name) <
            PATH_MAX)
        nc++;
    for (int i = 0; i < nc; i++) {
        char hex[65];
        if (sw_path_is_dir(cands[i]) != 1 || sw_tokenizer_dir_sha256(cands[i], hex, NULL) != 1) {
            sw_err_clear();
            continue;
        }
        if (wn == 64 && memcmp(hex, want, 64) == 0) {
            sw_debug("checkpoints take their tokenizer files from %s", cands[i]);
            return (t->files_dir = strdup(cands[i])) ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
        }
        sw_warn("%s: not the tokenizer the stream was made with (its digest differs): "
                "checkpoints will hold no tokenizer files",
                cands[i]);
        return 0;
    }
    sw_warn("%s: the stream's tokenizer folder '%s' is not here: checkpoints will hold no "
            "tokenizer files (copy them in before sw-eval)",
            t->data.src, name);
    return 0;
}

/* The float16 scaler's state into the checkpoint state (at start and after every step). */
static void sync_scaler(struct sw_trainer *t) {
    t->st.has_loss_scaler = 1;
    t->st.loss_scale = t->scaler.scale;
    t->st.loss_scale_growth_tracker = t->scaler.growth_tracker;
    t->st.loss_scale_skipped = t->scaler.skipped;
}

static void init_state(struct sw_trainer *t, const struct sw_ckpt *ck) {
    const struct sw_train_opts *o = t->o;
    struct sw_ckpt_state *st = &t->st;
    if (ck) {
        *st = *sw_ckpt_get_state(ck);
        st->log_history = st->log_history ? json_deep_copy(st->log_history) : NULL;
        if (st->learning_rate != t->lr || strcmp(st->lr_scheduler_type, o->lr_scheduler_type) != 0)
            sw_warn("resuming with learning_rate %g / %s schedule; the checkpoint was trained with "
                    "%g / %s (the run will not match an uninterrupted one)",
                    t->lr, o->lr_scheduler_type, st->learning_rate, st->lr_scheduler_type);
    } else {
        st->seed = (uint64_t)o->seed;
        st->data_seed = (uint64_t)o->data_seed;
    }
    st->num_train_epochs = o->num_train_epochs;
    st->logging_steps = o->logging_steps;
    st->eval_steps = o->eval_steps;
    st->save_steps = o->save_steps;
    st->train_batch_size = o->per_device_train_batch_size;
    snprintf(st->tuner_type, sizeof st->tuner_type, "%s", t->lora ? "lora" : "full");
    snprintf(st->base_config_sha256, sizeof st->base_config_sha256, "%s", t->base_config_sha256);
    snprintf(st->lr_scheduler_type, sizeof st->lr_scheduler_type, "%s", o->lr_scheduler_type);
    st->learning_rate = t->lr;
    if (!t->fp16) return;      /* a scaler state from a float16 checkpoint is kept as it was */
    if (st->has_loss_scaler) { /* GradScaler.load_state_dict; a fixed --loss_scale wins */
        if (t->scaler.dynamic) t->scaler.scale = (float)st->loss_scale;
        t->scaler.growth_tracker = st->loss_scale_growth_tracker;
        t->scaler.skipped = st->loss_scale_skipped;
    }
    sync_scaler(t);
}

/* Open the training data, position it for a resume, and work out the total step count. */
static int plan_data(struct sw_trainer *t) {
    const struct sw_train_opts *o = t->o;
    /* The model folder's tokenizer content, whichever file holds it (tokenizer.json or the
     * tokenizer.json.gz sw ships): what sw-pack records as the stream's tokenizer_sha256. */
    if (t->model_dir) {
        int found = sw_tokenizer_dir_sha256(t->model_dir, t->tokenizer_sha256, NULL);
        if (found < 0) return found;
    }
    struct sw_data_limits lim = {
        .vocab_size = t->cfg.vocab_size,
        .max_positions = t->cfg.max_position_embeddings > 0 ? t->cfg.max_position_embeddings : 2048,
        .tokenizer_sha256 = t->tokenizer_sha256[0] ? t->tokenizer_sha256 : NULL,
        .rlhf = t->pref ? t->pref->kind : 0,
    };
    const char *src = o->dataset ? o->dataset : "-";
    SW_TRY(sw_train_data_open(&t->data, src, &lim, o->per_device_train_batch_size,
                              (int)o->dataset_timeout, sw_signal_pending));
    if (!t->data.samples && o->per_device_train_batch_size != 1)
        sw_warn("per_device_train_batch_size %lld has no effect: %s holds batches that sw-pack "
                "made (one batch record is one micro-batch); set the batch size when packing "
                "(sw-pack --per_device_train_batch_size, --max_length), or take more of them per "
                "step with gradient_accumulation_steps",
                (long long)o->per_device_train_batch_size, src);
    int64_t ga = o->gradient_accumulation_steps;
    if (t->data.reopenable) {
        int64_t mbs, recs;
        SW_TRY(
            sw_train_data_count(src, &lim, o->per_device_train_batch_size, &mbs, &recs, &t->shape));
        if (mbs == 0) return sw_err_set(SW_EINVAL, "%s: holds no training records", src);
        t->records_per_epoch = recs;
        t->steps_per_epoch = (mbs + ga - 1) / ga;
    }
    if (o->max_steps > 0) {
        t->total_steps = o->max_steps;
    } else if (t->steps_per_epoch > 0) {
        t->total_steps = t->steps_per_epoch * o->num_train_epochs;
    } else {
        return sw_err_set(SW_EUSAGE,
                          "dataset %s is a stream (stdin or ZeroMQ) of unknown length: "
                          "set max_steps (the schedule needs the total step count), or train "
                          "from a .sws file",
                          src);
    }
    struct sw_ckpt_state *st = &t->st;
    if (st->global_step > 0 && st->max_steps != t->total_steps)
        sw_warn("the run now has %lld steps, the checkpoint's had %lld: the schedule changes",
                (long long)t->total_steps, (long long)st->max_steps);
    if (st->global_step > 0 || st->data_records > 0) {
        if (st->data_header_sha256[0] &&
            strcmp(st->data_header_sha256, t->data.header_sha256) != 0) {
            if (t->data.reopenable)
                return sw_err_set(SW_EINVAL,
                                  "%s: not the dataset the checkpoint was trained on "
                                  "(its header differs)",
                                  src);
            sw_warn("%s: the stream header differs from the checkpoint's; assuming the producer "
                    "replays the same records",
                    src);
        }
        if (st->data_epoch > 0 && !t->data.reopenable)
            return sw_err_set(SW_EINVAL,
                              "%s: the checkpoint is in epoch %lld but the stream "
                              "cannot be re-read",
                              src, (long long)st->data_epoch);
        t->data.epoch = st->data_epoch;
        SW_TRY(sw_train_data_skip(&t->data, st->data_records));
    }
    snprintf(st->data_header_sha256, sizeof st->data_header_sha256, "%s", t->data.header_sha256);
    st->max_steps = t->total_steps;
    return 0;
}

static int load_val(struct sw_trainer *t) {
    if (!t->o->val_dataset) return 0;
    struct sw_data_limits lim = t->data.lim;
    struct sw_train_data d;
    SW_TRY(sw_train_data_open(&d, t->o->val_dataset, &lim, t->o->per_device_train_batch_size,
                              (int)t->o->dataset_timeout, NULL));
    int rc = 0, cap = 0;
    for (;;) {
        if (t->n_val == cap) {
            cap = cap ? cap * 2 : 8;
            struct sw_mb *v = realloc(t->val, (size_t)cap * sizeof *v);
            if (!v) {
                rc = sw_err_set(SW_ENOMEM, "out of memory loading %s", t->o->val_dataset);
                break;
            }
            t->val = v;
            memset(t->val + t->n_val, 0, (size_t)(cap - t->n_val) * sizeof *v);
        }
        rc = sw_train_data_next(&d, &t->val[t->n_val]);
        if (rc <= 0) break;
        t->n_val++;
    }
    sw_train_data_close(&d);
    if (rc == 0 && t->n_val == 0)
        rc = sw_err_set(SW_EINVAL, "%s: holds no records to evaluate", t->o->val_dataset);
    return rc;
}

static int init_schedule(struct sw_trainer *t) {
    const struct sw_train_opts *o = t->o;
    enum sw_sched_type type;
    SW_TRY(sw_sched_parse_type(o->lr_scheduler_type, &type));
    int64_t warm = sw_sched_warmup_steps(t->total_steps, o->warmup_steps, o->warmup_ratio);
    t->st.warmup_steps = warm;
    return sw_sched_init(&t->sched, type, t->lr, t->total_steps, warm, 0.0);
}

/* ---- one step ----------------------------------------------------------------------------- */

/* Fill t->mbs for the next step. *n = micro-batches (0 when the data is exhausted). */
static int gather(struct sw_trainer *t, int *n) {
    const struct sw_train_opts *o = t->o;
    *n = 0;
    if (t->grpo) { /* GRPO draws its prompts itself (sw_train_grpo.c) */
        *n = (int)o->gradient_accumulation_steps;
        return 0;
    }
    while (*n < o->gradient_accumulation_steps) {
        int rc = sw_train_data_next(&t->data, &t->mbs[*n]);
        if (rc < 0) return rc;
        if (rc == 1) {
            (*n)++;
            continue;
        }
        if (*n > 0) break; /* end of epoch: the last step takes what remains */
        int more_epochs = o->max_steps > 0 || t->data.epoch + 1 < o->num_train_epochs;
        if (!more_epochs || !t->data.reopenable) return 0;
        SW_TRY(sw_train_data_next_epoch(&t->data));
    }
    return 0;
}

/* bad: the first parameter whose gradient is non-finite, or -1. */
static int nonfinite_error(struct sw_trainer *t, double loss, double norm, int bad) {
    char where[400] = "";
    if (bad >= 0)
        snprintf(where, sizeof where, "; first non-finite gradient in '%s'", t->op[bad].name);
    if (strcmp(t->o->nan_policy, "skip") == 0) {
        sw_warn("step %lld: non-finite loss %g / grad_norm %g%s: step skipped (nan_policy skip)",
                (long long)t->st.global_step + 1, loss, norm, where);
        return 0;
    }
    return sw_err_set(SW_ERANGE,
                      "step %lld: non-finite loss %g / grad_norm %g%s (nan_policy "
                      "stop; records %lld.. of %s)",
                      (long long)t->st.global_step + 1, loss, norm, where,
                      (long long)t->mbs[0].first_record, t->data.src);
}

/* float16 (torch.cuda.amp.GradScaler's step + update): the gradients hold scale · ∂loss, and
 * *norm is their norm. A non-finite loss (a forward overflow) or norm is an overflow of the
 * scale, not a data error: the update is skipped (the gradients are dropped — the next step's
 * zero_grad clears them), the LR schedule does not advance (sched_step), the scale backs off
 * and the skip is counted; nan_policy stays out of it. Finite: the true norm is norm / scale,
 * and 1/scale rides the clipping pass. Once the scale is below 1, scaling is no longer what
 * overflows (a forward overflow or a NaN does not depend on it, and a dynamic scale would only
 * shrink towards 0): such a step goes to nan_policy as in the other dtypes. */
static int scaled_update(struct sw_trainer *t, double *loss, double *norm, int bad, double lr) {
    struct sw_grad_scaler *s = &t->scaler;
    double scale = s->scale;
    int overflow = !isfinite(*loss) || !isfinite(*norm);
    int apply = sw_grad_scaler_update(s, overflow);
    sync_scaler(t);
    if (apply) {
        *norm /= scale;
        return sw_train_dev_update(t, *norm, lr, 1.0 / scale);
    }
    if (scale < 1.0) return nonfinite_error(t, *loss, *norm, bad);
    sw_debug("step %lld: float16 overflow at loss scale %g (loss %g, scaled grad_norm %g): "
             "step skipped, scale now %g",
             (long long)t->st.global_step + 1, scale, *loss, *norm, (double)s->scale);
    return 0;
}

/* Forward/backward over n micro-batches, then the update. *loss and *norm report the step. */
static int train_step(struct sw_trainer *t, int n, double *loss, double *norm) {
    int64_t targets = 0;
    for (int i = 0; i < n; i++)
        targets += t->mbs[i].targets;
    SW_TRY(sw_model_zero_grad(t->m));
    /* float16: backward of loss · scale (GradScaler.scale(loss)); the mean's 1/targets and the
     * scale are one factor on the loss gradient. */
    double gscale = (t->fp16 ? (double)t->scaler.scale : 1.0) / (double)(targets ? targets : 1);
    double sum = 0;
    if (t->pref) { /* preference losses: a mean over pairs, not tokens (sw_train_pref.c) */
        SW_TRY(sw_train_mem_oom(
            t, sw_train_pref_step(t, n, t->fp16 ? (double)t->scaler.scale : 1.0, &sum),
            "activations", t->mem.acts));
        t->st.dropout_forward_count += n;
        targets = 1; /* sum is the step's loss already */
    }
    if (t->grpo) { /* TRL's GRPO loss over the step's rollouts (sw_train_grpo.c) */
        SW_TRY(sw_train_grpo_step(t, t->fp16 ? (double)t->scaler.scale : 1.0, &sum));
        targets = 1;
    }
    for (int i = 0; i < n && !t->pref && !t->grpo; i++) {
        struct sw_loss l;
        SW_TRY(sw_train_mem_oom(t, sw_model_forward(t->m, &t->mbs[i].b, &l), "activations",
                                t->mem.acts));
        t->st.dropout_forward_count++;
        sum += l.sum;
        if (targets > 0)
            SW_TRY(sw_train_mem_oom(t, sw_model_backward(t->m, (float)gscale), "activations",
                                    t->mem.acts));
    }
    *loss = targets > 0 ? sum / (double)targets : NAN;
    *norm = NAN;
    if (targets == 0) {
        sw_warn("step %lld: no target tokens in its micro-batches (every label is -100): skipped",
                (long long)t->st.global_step + 1);
        return 0;
    }
    double lr = sw_sched_lr(&t->sched, sched_step(t));
    /* norm, clipping and AdamW through the backend (sw_train_device.c), on every device */
    int bad;
    SW_TRY(sw_train_dev_norm(t, norm, &bad));
    if (t->fp16) return scaled_update(t, loss, norm, bad, lr);
    if (!isfinite(*loss) || !isfinite(*norm)) return nonfinite_error(t, *loss, *norm, bad);
    return sw_train_dev_update(t, *norm, lr, 1.0);
}

/* ---- logging, evaluation ------------------------------------------------------------------ */

static json_t *num_json(double v) {
    return isfinite(v) ? json_real(v) : json_null();
}

/* float16, preference and GRPO runs: sw_metrics_log_train's row (same keys, order and null
 * rule) plus what the run adds: TRL's preference or GRPO metrics of the window (those that
 * apply), and float16's scaler state ("loss_scale" after the step, "skipped_steps" so far). */
static int log_train_extra(struct sw_trainer *t, const struct sw_metrics_train *r) {
    json_t *o = json_object();
    if (!o) return sw_err_set(SW_ENOMEM, "out of memory");
    json_object_set_new(o, "step", json_integer(r->step));
    json_object_set_new(o, "epoch", num_json(r->epoch));
    json_object_set_new(o, "loss", num_json(r->loss));
    json_object_set_new(o, "grad_norm", num_json(r->grad_norm));
    json_object_set_new(o, "learning_rate", num_json(r->learning_rate));
    json_object_set_new(o, "tokens_per_sec", num_json(r->tokens_per_sec));
    json_object_set_new(o, "peak_mem_bytes", json_integer((json_int_t)r->peak_mem_bytes));
    json_object_set_new(o, "elapsed", num_json(r->elapsed));
    if (t->grpo) {
        sw_train_grpo_log(t, o);
    } else if (t->pref) {
        double mv[SW_PREF_NMETRICS];
        sw_train_pref_window(t, mv);
        for (int i = 0; i < SW_PREF_NMETRICS; i++)
            if (isfinite(mv[i]))
                json_object_set_new(o, sw_train_pref_metric_names[i], json_real(mv[i]));
    }
    if (t->fp16) {
        json_object_set_new(o, "loss_scale", json_real(t->scaler.scale));
        json_object_set_new(o, "skipped_steps", json_integer(t->scaler.skipped));
    }
    int rc = sw_metrics_log_json(t->metrics, o);
    json_decref(o);
    return rc;
}

static int log_train(struct sw_trainer *t, struct log_window *w) {
    double now = sw_now_seconds(), dt = now - w->t_start;
    struct sw_metrics_train row = {
        .step = t->st.global_step,
        .epoch = t->st.epoch,
        .loss = w->steps ? w->loss_sum / (double)w->steps : NAN,
        .grad_norm = w->last_norm,
        .learning_rate = sw_sched_lr(&t->sched, sched_step(t)),
        .tokens_per_sec = dt > 0 ? (double)w->tokens / dt : NAN,
        .peak_mem_bytes = sw_peak_rss_bytes(),
        .elapsed = now - t->t0,
    };
    SW_TRY(t->pref || t->grpo || t->fp16 ? log_train_extra(t, &row)
                                         : sw_metrics_log_train(t->metrics, &row));
    /* HF Trainer prints each logging step's dict; ms-swift adds progress and time. */
    int64_t done = row.step - w->step0;
    double run_s = now - w->t0;
    struct sw_train_line line = {
        .loss = row.loss,
        .grad_norm = row.grad_norm,
        .learning_rate = row.learning_rate,
        .tokens_per_sec = row.tokens_per_sec,
        .epoch = row.epoch,
        .mem_gib = (double)row.peak_mem_bytes / (1024.0 * 1024 * 1024),
        .loss_scale = t->fp16 ? t->scaler.scale : 0,
        .step = row.step,
        .max_steps = t->total_steps,
        .elapsed = row.elapsed,
        .remaining = done > 0 ? run_s / (double)done * (double)(t->total_steps - row.step) : -1,
    };
    char text[512];
    sw_train_report_line(text, sizeof text, &line);
    sw_info("%s", text);
    static const char *const tags[] = {"train/loss", "train/grad_norm", "train/learning_rate",
                                       "train/epoch"};
    double vals[] = {row.loss, row.grad_norm, row.learning_rate, row.epoch};
    SW_TRY(sw_train_report_scalars(t->report, row.step, tags, vals, 4));
    json_t *h = json_object();
    if (h) {
        json_object_set_new(h, "epoch", json_real(row.epoch));
        if (isfinite(row.grad_norm)) json_object_set_new(h, "grad_norm", json_real(row.grad_norm));
        json_object_set_new(h, "learning_rate", json_real(row.learning_rate));
        if (isfinite(row.loss)) json_object_set_new(h, "loss", json_real(row.loss));
        json_object_set_new(h, "step", json_integer(row.step));
        sw_ckpt_state_log(&t->st, h);
        json_decref(h);
    }
    struct log_window keep = *w;
    memset(w, 0, sizeof *w);
    w->t_start = now;
    w->last_norm = NAN;
    w->last_tps = isfinite(row.tokens_per_sec) ? row.tokens_per_sec : keep.last_tps;
    w->step0 = keep.step0;
    w->t0 = keep.t0;
    t->st.log_loss_sum = 0;
    t->st.log_steps = 0;
    return 0;
}

/* Preference runs: eval_loss and TRL's eval_ metrics of the validation pairs. */
static int evaluate_pref(struct sw_trainer *t) {
    double eval_loss, mv[SW_PREF_NMETRICS];
    SW_TRY(sw_train_pref_eval(t, &eval_loss, mv));
    struct sw_ckpt_state *st = &t->st;
    json_t *o = json_object();
    if (!o) return sw_err_set(SW_ENOMEM, "out of memory");
    json_object_set_new(o, "step", json_integer(st->global_step));
    json_object_set_new(o, "epoch", num_json(st->epoch));
    json_object_set_new(o, "eval_loss", num_json(eval_loss));
    char k[64];
    for (int i = 0; i < SW_PREF_NMETRICS; i++) {
        snprintf(k, sizeof k, "eval_%s", sw_train_pref_metric_names[i]);
        if (isfinite(mv[i])) json_object_set_new(o, k, json_real(mv[i]));
    }
    json_object_set_new(o, "elapsed", num_json(sw_now_seconds() - t->t0));
    int rc = sw_metrics_log_json(t->metrics, o);
    if (rc == 0) sw_ckpt_state_log(st, o);
    json_decref(o);
    SW_TRY(rc);
    if (isfinite(eval_loss) && (!st->has_best || eval_loss < st->best_metric)) {
        st->has_best = 1;
        st->best_metric = eval_loss;
        st->best_step = st->global_step;
    }
    sw_info("step %lld: eval_loss %.6g, eval rewards/accuracies %.4g, margins %.4g",
            (long long)st->global_step, eval_loss, mv[2], mv[3]);
    static const char *const tag[] = {"eval/loss"};
    return sw_train_report_scalars(t->report, st->global_step, tag, &eval_loss, 1);
}

static int evaluate(struct sw_trainer *t) {
    if (t->grpo) return sw_train_grpo_eval(t);
    if (t->pref) return evaluate_pref(t);
    double sum = 0;
    int64_t count = 0;
    sw_model_set_training(t->m, 0);
    int rc = 0;
    for (int i = 0; i < t->n_val && rc == 0; i++) {
        struct sw_loss l;
        rc = sw_model_forward(t->m, &t->val[i].b, &l);
        sum += l.sum;
        count += l.count;
    }
    /* Evaluation must not move the dropout stream of training. */
    sw_model_set_training(t->m, 1);
    sw_model_set_seed(t->m, t->st.seed, t->st.dropout_forward_count);
    SW_TRY(rc);
    double eval_loss = count ? sum / (double)count : NAN;
    struct sw_ckpt_state *st = &t->st;
    SW_TRY(sw_metrics_log_eval(t->metrics, st->global_step, st->epoch, eval_loss, count,
                               sw_now_seconds() - t->t0));
    json_t *h = json_pack("{s:f,s:o,s:I}", "epoch", st->epoch, "eval_loss",
                          isfinite(eval_loss) ? json_real(eval_loss) : json_null(), "step",
                          (json_int_t)st->global_step);
    if (h) sw_ckpt_state_log(st, h);
    json_decref(h);
    if (isfinite(eval_loss) && (!st->has_best || eval_loss < st->best_metric)) {
        st->has_best = 1;
        st->best_metric = eval_loss;
        st->best_step = st->global_step;
    }
    sw_info("step %lld: eval_loss %.6g over %lld tokens", (long long)st->global_step, eval_loss,
            (long long)count);
    static const char *const tag[] = {"eval/loss"};
    return sw_train_report_scalars(t->report, st->global_step, tag, &eval_loss, 1);
}

static void show_progress(struct sw_trainer *t, struct sw_progress *p, double loss,
                          const struct log_window *w) {
    char extra[128], tps[32] = "?";
    double dt = sw_now_seconds() - w->t_start;
    /* Right after a log line the window is empty: show the rate of the one just closed. */
    if (dt > 0 && w->tokens > 0)
        sw_progress_format_count(tps, sizeof tps, (double)w->tokens / dt);
    else if (w->last_tps > 0)
        sw_progress_format_count(tps, sizeof tps, w->last_tps);
    snprintf(extra, sizeof extra, "loss %.4f  lr %.3g  %s tok/s", loss,
             sw_sched_lr(&t->sched, sched_step(t)), tps);
    sw_progress_set_extra(p, extra);
    sw_progress_update(p, (uint64_t)t->st.global_step);
}

/* ---- the loop ----------------------------------------------------------------------------- */

static int run_loop(struct sw_trainer *t) {
    const struct sw_train_opts *o = t->o;
    struct sw_ckpt_state *st = &t->st;
    struct sw_progress prog;
    sw_progress_init(&prog, "train", (uint64_t)t->total_steps, "steps");
    sw_progress_update(&prog, (uint64_t)st->global_step);
    /* A resumed run continues the logging window the checkpoint was saved in. */
    struct log_window w = {.t_start = sw_now_seconds(),
                           .last_norm = NAN,
                           .loss_sum = st->log_loss_sum,
                           .steps = st->log_steps,
                           .step0 = st->global_step,
                           .t0 = sw_now_seconds()};
    int rc = 0;
    if (o->eval_on_start && t->n_val && st->global_step == 0) SW_TRY_GOTO(rc, evaluate(t), out);
    while (st->global_step < t->total_steps) {
        if (sw_signal_pending()) break;
        int n;
        rc = gather(t, &n);
        if (rc < 0 && sw_signal_pending()) { /* a signal cut a blocking read short */
            sw_debug("data read stopped by a signal: %s", sw_err_msg());
            rc = 0;
            break;
        }
        if (rc < 0) goto out;
        if (n == 0) {
            sw_warn("%s: the data ended after step %lld of %lld", t->data.src,
                    (long long)st->global_step, (long long)t->total_steps);
            break;
        }
        double loss, norm;
        SW_TRY_GOTO(rc, train_step(t, n, &loss, &norm), out);
        st->global_step++;
        for (int i = 0; i < n; i++) {
            st->input_tokens_seen += t->mbs[i].input_tokens;
            st->target_tokens_seen += t->mbs[i].targets;
            st->data_records_total += t->mbs[i].records;
            w.tokens += t->mbs[i].input_tokens;
        }
        st->data_records = t->data.used;
        st->data_epoch = t->data.epoch;
        st->epoch = epoch_now(t);
        if (isfinite(loss)) w.loss_sum += loss, w.steps++;
        w.last_norm = norm;
        st->log_loss_sum = w.loss_sum, st->log_steps = w.steps;
        int last = st->global_step == t->total_steps;
        if (st->global_step % o->logging_steps == 0 || last) SW_TRY_GOTO(rc, log_train(t, &w), out);
        if (t->n_val && (st->global_step % o->eval_steps == 0 || last))
            SW_TRY_GOTO(rc, evaluate(t), out);
        if (st->global_step % o->save_steps == 0) SW_TRY_GOTO(rc, sw_train_save(t), out);
        show_progress(t, &prog, loss, &w);
    }
    if (w.steps && st->global_step % o->logging_steps != 0) SW_TRY_GOTO(rc, log_train(t, &w), out);
    if (t->last_saved_step != st->global_step) SW_TRY_GOTO(rc, sw_train_save(t), out);
out:
    sw_progress_finish(&prog);
    return rc;
}

int sw_train_run(const struct sw_train_opts *o) {
    struct sw_trainer t;
    memset(&t, 0, sizeof t);
    t.o = o;
    t.t0 = sw_now_seconds();
    t.last_saved_step = -1;
    struct sw_ckpt *ck = NULL;
    char *resume_path = NULL;
    int rc = 0, tb = 0, fresh = 0, made_parent = 0, created = 0, fresh_metrics = 0;
    if (!o->output_dir || !*o->output_dir)
        return sw_err_set(SW_EUSAGE, "output_dir: must name a folder");
    SW_TRY(sw_train_report_parse(o->report_to, &tb));
    /* A hub id or a folder that is not a model: say so before anything is loaded. */
    if (o->model && !o->init_from_config) SW_TRY(sw_model_dir_check("model", o->model));
    SW_TRY_GOTO(rc, open_resume(o, &ck, &resume_path), out);
    SW_TRY_GOTO(rc, choose_run_dir(&t, resume_path, &fresh), out);
    SW_TRY_GOTO(rc, sw_train_setup_model(&t, ck), out);
    SW_TRY_GOTO(rc, sw_train_setup_optimizer(&t, ck), out);
    t.lr = o->learning_rate > 0 ? o->learning_rate : (t.lora ? 1e-4 : 1e-5);
    init_state(&t, ck);
    sw_ckpt_close(ck);
    ck = NULL;
    if (!(t.args = sw_train_args_json(o))) {
        rc = sw_err_set(SW_ENOMEM, "out of memory");
        goto out;
    }
    /* args.json records the precision the run resolved to (ms-swift saves the resolved
     * torch_dtype too), with HF's flags to match. */
    json_object_set_new(t.args, "torch_dtype", json_string(t.dtype));
    json_object_set_new(t.args, "bf16", json_boolean(strcmp(t.dtype, "bfloat16") == 0));
    json_object_set_new(t.args, "fp16", json_boolean(t.fp16));
    if (o->max_steps == 0) { /* the initial model only: a way to materialise a random init */
        SW_TRY_GOTO(rc, init_schedule(&t), out);
        SW_TRY_GOTO(rc, make_run_dir(&t, fresh, &made_parent), out);
        created = 1;
        SW_TRY_GOTO(rc, sw_train_save(&t), out);
        goto out;
    }
    SW_TRY_GOTO(rc, sw_signal_install(), out);
    int grpo = o->rlhf_type && strcmp(o->rlhf_type, "grpo") == 0;
    if (o->rlhf_type && !grpo) SW_TRY_GOTO(rc, sw_train_pref_open(&t), out);
    SW_TRY_GOTO(rc, grpo ? sw_train_grpo_open(&t) : plan_data(&t), out);
    SW_TRY_GOTO(rc, find_stream_tokenizer(&t), out);
    SW_TRY_GOTO(rc, init_schedule(&t), out);
    if (!grpo) SW_TRY_GOTO(rc, load_val(&t), out);
    /* Everything checked: the run folder is made only now. */
    SW_TRY_GOTO(rc, make_run_dir(&t, fresh, &made_parent), out);
    created = 1;
    char *mpath = sw_path_join(t.run_dir, "logging.jsonl");
    if (!mpath) {
        rc = sw_err_set(SW_ENOMEM, "out of memory");
        goto out;
    }
    /* A run continuing its folder keeps the lines up to the checkpoint's step. */
    int64_t keep = !fresh && t.st.global_step > 0 ? t.st.global_step : -1;
    fresh_metrics = keep < 0;
    rc = sw_metrics_open(mpath, keep, &t.metrics);
    free(mpath);
    if (rc < 0) goto out;
    if (!(t.mbs = calloc((size_t)o->gradient_accumulation_steps, sizeof *t.mbs))) {
        rc = sw_err_set(SW_ENOMEM, "out of memory");
        goto out;
    }
    sw_model_set_training(t.m, 1);
    sw_model_set_seed(t.m, t.st.seed, t.st.dropout_forward_count);
    SW_TRY_GOTO(rc, sw_train_mem_plan(&t), out);
    /* preference runs: reference log-probs first; dropout stays off (TRL's disable_dropout) */
    if (t.pref) SW_TRY_GOTO(rc, sw_train_pref_reference(&t), out);
    if (t.grpo) SW_TRY_GOTO(rc, sw_train_grpo_start(&t), out);
    char mb[96];
    if (t.data.samples)
        snprintf(mb, sizeof mb, "micro-batches of %lld samples",
                 (long long)o->per_device_train_batch_size);
    else
        snprintf(mb, sizeof mb, "micro-batches = the stream's batch records");
    sw_info("training %lld of %lld parameters (%s) for %lld steps, lr %g, %s schedule, %lld "
            "warmup, %s, %s x %lld per step",
            (long long)sw_model_numel(t.m, 1), (long long)sw_model_numel(t.m, 0),
            t.lora ? "lora" : "full", (long long)t.total_steps, t.lr, o->lr_scheduler_type,
            (long long)t.st.warmup_steps, t.dtype, mb, (long long)o->gradient_accumulation_steps);
    rc = run_loop(&t);
    if (rc < 0 && t.grpo) rc = sw_train_grpo_failed(&t, rc); /* keep what was trained */
    if (rc == 0) sw_train_mem_report(&t);
    if (rc == 0 && t.fp16) {
        /* Every step skipped means nothing was trained: say so louder. */
        int all = t.st.global_step > 0 && t.scaler.skipped >= t.st.global_step;
        sw_log(all ? SW_LOG_WARN : SW_LOG_INFO,
               "float16: %lld of %lld steps skipped for overflow (loss scale now %g%s)",
               (long long)t.scaler.skipped, (long long)t.st.global_step, (double)t.scaler.scale,
               t.scaler.dynamic ? "" : ", fixed");
    }
    int sig = sw_signal_pending();
    if (rc == 0 && sig) {
        rc = sw_err_set(SW_EINTR, "stopped by %s at step %lld; checkpoint-%lld saved in %s",
                        sig == SIGINT ? "SIGINT" : "SIGTERM", (long long)t.st.global_step,
                        (long long)t.last_saved_step, t.run_dir);
    }
out:
    sw_signal_restore();
    sw_ckpt_close(ck);
    free(resume_path);
    sw_metrics_close(t.metrics);
    t.metrics = NULL;
    sw_train_report_close(t.report);
    t.report = NULL;
    if (rc < 0 && created) {
        /* Remove what a failed run made but never wrote into; anything recorded stays. */
        static const char *const made[] = {"logging.jsonl", "images", "runs", NULL};
        sw_run_dir_cleanup(o->output_dir, t.run_dir, fresh || made_parent, made_parent,
                           fresh_metrics ? made : made + 1);
    }
    free(t.run_dir);
    t.run_dir = NULL;
    free(t.files_dir);
    t.files_dir = NULL;
    sw_train_pref_close(&t);
    sw_train_grpo_close(&t);
    sw_train_teardown(&t);
    return rc;
}
