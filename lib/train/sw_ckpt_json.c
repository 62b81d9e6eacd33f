/* sw_ckpt_json — the JSON files of a checkpoint: HF's trainer_state.json, sw's
 * training_state.json and rng_state.json; writing and strict
 * parsing (a missing key or a value of the wrong type is SW_EFORMAT naming the file and key).
 *
 * 64-bit unsigned values (seeds) are written as JSON integers when they fit int64 and as decimal
 * strings otherwise, since JSON readers commonly hold integers in int64 or double. */
#include "sw_ckpt_impl.h"

#include "sw_err.h"
#include "sw_io.h"
#include "sw_json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static json_t *u64_json(uint64_t v) {
    if (v <= (uint64_t)INT64_MAX) return json_integer((json_int_t)v);
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return json_string(buf);
}

/* A number, or null when not finite (JSON has no NaN). */
static json_t *real_json(double v) {
    return isfinite(v) ? json_real(v) : json_null();
}

static int load_json(const char *dir, const char *name, json_t **out) {
    char *path = sw_path_join(dir, name);
    if (!path) return sw_err_set(SW_ENOMEM, "out of memory");
    char *text = NULL;
    size_t len = 0;
    int rc = sw_read_file(path, &text, &len, 64u << 20);
    if (rc < 0) {
        free(path);
        return rc;
    }
    json_error_t jerr;
    *out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!*out)
        rc = sw_err_set(SW_EFORMAT, "%s:%d: %s", path, jerr.line, jerr.text);
    else if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        rc = sw_err_set(SW_EFORMAT, "%s: not a JSON object", path);
    }
    free(path);
    return rc;
}

/* ---- state ------------------------------------------------------------------------------ */

void sw_ckpt_state_release(struct sw_ckpt_state *st) {
    if (!st) return;
    json_decref(st->log_history);
    memset(st, 0, sizeof *st);
}

int sw_ckpt_state_log(struct sw_ckpt_state *st, const json_t *obj) {
    if (!st->log_history && !(st->log_history = json_array()))
        return sw_err_set(SW_ENOMEM, "out of memory");
    json_t *copy = json_deep_copy(obj);
    if (!copy || json_array_append_new(st->log_history, copy) != 0)
        return sw_err_set(SW_ENOMEM, "out of memory");
    return 0;
}

char *sw_ckpt_trainer_state_json(const struct sw_ckpt_state *st) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "best_global_step",
                        st->has_best ? json_integer(st->best_step) : json_null());
    json_object_set_new(o, "best_metric", st->has_best ? real_json(st->best_metric) : json_null());
    if (st->has_best) {
        char name[64];
        snprintf(name, sizeof name, "checkpoint-%lld", (long long)st->best_step);
        json_object_set_new(o, "best_model_checkpoint", json_string(name));
    } else {
        json_object_set_new(o, "best_model_checkpoint", json_null());
    }
    json_object_set_new(o, "epoch", real_json(st->epoch));
    json_object_set_new(o, "eval_steps", json_integer(st->eval_steps));
    json_object_set_new(o, "global_step", json_integer(st->global_step));
    json_object_set_new(o, "is_hyper_param_search", json_false());
    json_object_set_new(o, "is_local_process_zero", json_true());
    json_object_set_new(o, "is_world_process_zero", json_true());
    json_object_set_new(o, "log_history",
                        st->log_history ? json_deep_copy(st->log_history) : json_array());
    json_object_set_new(o, "logging_steps", json_integer(st->logging_steps));
    json_object_set_new(o, "max_steps", json_integer(st->max_steps));
    json_object_set_new(o, "num_input_tokens_seen", json_integer(st->input_tokens_seen));
    json_object_set_new(o, "num_train_epochs", json_integer(st->num_train_epochs));
    json_object_set_new(o, "save_steps", json_integer(st->save_steps));
    json_t *ctl = json_pack("{s:{s:{s:b,s:b,s:b,s:b,s:b},s:{}}}", "TrainerControl", "args",
                            "should_epoch_stop", 0, "should_evaluate", 0, "should_log", 0,
                            "should_save", 1, "should_training_stop", 0, "attributes");
    json_object_set_new(o, "stateful_callbacks", ctl ? ctl : json_object());
    json_object_set_new(o, "total_flos", json_integer(0));
    json_object_set_new(o, "train_batch_size", json_integer(st->train_batch_size));
    json_object_set_new(o, "trial_name", json_null());
    json_object_set_new(o, "trial_params", json_null());
    char *s = sw_json_dump(o);
    json_decref(o);
    return s;
}

char *sw_ckpt_training_state_json(const struct sw_ckpt_state *st) {
    json_t *o = json_pack(
        "{s:s,s:i,s:I,s:I,s:I,s:o,s:I,"
        "s:{s:I,s:I,s:I,s:s},"
        "s:{s:I,s:I},"
        "s:{s:s,s:f,s:I},"
        "s:s,s:s}",
        "format", "sw-train-state", "version", 1, "global_step", (json_int_t)st->global_step,
        "optimizer_steps", (json_int_t)st->optimizer_steps, "max_steps", (json_int_t)st->max_steps,
        "epoch", real_json(st->epoch), "num_train_epochs", (json_int_t)st->num_train_epochs, "data",
        "epoch", (json_int_t)st->data_epoch, "records", (json_int_t)st->data_records,
        "records_total", (json_int_t)st->data_records_total, "header_sha256",
        st->data_header_sha256, "tokens", "input", (json_int_t)st->input_tokens_seen, "target",
        (json_int_t)st->target_tokens_seen, "schedule", "type", st->lr_scheduler_type,
        "learning_rate", st->learning_rate, "warmup_steps", (json_int_t)st->warmup_steps,
        "tuner_type", st->tuner_type, "base_config_sha256", st->base_config_sha256);
    if (!o) return NULL;
    json_t *best = st->has_best ? json_pack("{s:o,s:I}", "metric", real_json(st->best_metric),
                                            "step", (json_int_t)st->best_step)
                                : json_null();
    json_object_set_new(o, "best", best);
    json_object_set_new(o, "log_window",
                        json_pack("{s:o,s:I}", "loss_sum", real_json(st->log_loss_sum), "steps",
                                  (json_int_t)st->log_steps));
    /* Optional (float16 runs only), so files of other runs stay as they were. */
    if (st->has_loss_scaler)
        json_object_set_new(o, "loss_scaler",
                            json_pack("{s:f,s:I,s:I}", "scale", st->loss_scale, "growth_tracker",
                                      (json_int_t)st->loss_scale_growth_tracker, "skipped_steps",
                                      (json_int_t)st->loss_scale_skipped));
    char *s = sw_json_dump(o);
    json_decref(o);
    return s;
}

char *sw_ckpt_rng_state_json(const struct sw_ckpt_state *st) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "generator", json_string("philox4x32-10"));
    json_object_set_new(o, "seed", u64_json(st->seed));
    json_object_set_new(o, "data_seed", u64_json(st->data_seed));
    json_object_set_new(o, "dropout_forward_count", u64_json(st->dropout_forward_count));
    char *s = sw_json_dump(o);
    json_decref(o);
    return s;
}

static int parse_training_state(json_t *o, const char *f, struct sw_ckpt_state *st) {
    char fmt[32];
    int64_t version;
    SW_TRY(sw_json_get_str(o, "format", f, fmt, sizeof fmt));
    if (strcmp(fmt, "sw-train-state") != 0)
        return sw_err_set(SW_EFORMAT, "%s: format is '%s', expected 'sw-train-state'", f, fmt);
    SW_TRY(sw_json_get_i64(o, "version", f, &version));
    if (version != 1)
        return sw_err_set(SW_EUNSUPPORTED, "%s: version %lld is not supported (this sw reads 1)", f,
                          (long long)version);
    SW_TRY(sw_json_get_i64(o, "global_step", f, &st->global_step));
    SW_TRY(sw_json_get_i64(o, "optimizer_steps", f, &st->optimizer_steps));
    SW_TRY(sw_json_get_i64(o, "max_steps", f, &st->max_steps));
    SW_TRY(sw_json_get_real(o, "epoch", f, &st->epoch));
    SW_TRY(sw_json_get_i64(o, "num_train_epochs", f, &st->num_train_epochs));
    json_t *d, *t, *s;
    SW_TRY(sw_json_get_obj(o, "data", f, &d));
    SW_TRY(sw_json_get_i64(d, "epoch", f, &st->data_epoch));
    SW_TRY(sw_json_get_i64(d, "records", f, &st->data_records));
    SW_TRY(sw_json_get_i64(d, "records_total", f, &st->data_records_total));
    SW_TRY(sw_json_get_str(d, "header_sha256", f, st->data_header_sha256,
                           sizeof st->data_header_sha256));
    SW_TRY(sw_json_get_obj(o, "tokens", f, &t));
    SW_TRY(sw_json_get_i64(t, "input", f, &st->input_tokens_seen));
    SW_TRY(sw_json_get_i64(t, "target", f, &st->target_tokens_seen));
    SW_TRY(sw_json_get_obj(o, "schedule", f, &s));
    SW_TRY(sw_json_get_str(s, "type", f, st->lr_scheduler_type, sizeof st->lr_scheduler_type));
    SW_TRY(sw_json_get_real(s, "learning_rate", f, &st->learning_rate));
    SW_TRY(sw_json_get_i64(s, "warmup_steps", f, &st->warmup_steps));
    SW_TRY(sw_json_get_str(o, "tuner_type", f, st->tuner_type, sizeof st->tuner_type));
    if (strcmp(st->tuner_type, "full") != 0 && strcmp(st->tuner_type, "lora") != 0)
        return sw_err_set(SW_EFORMAT, "%s: tuner_type '%s' is neither 'full' nor 'lora'", f,
                          st->tuner_type);
    SW_TRY(sw_json_get_str(o, "base_config_sha256", f, st->base_config_sha256,
                           sizeof st->base_config_sha256));
    json_t *w;
    SW_TRY(sw_json_get_obj(o, "log_window", f, &w));
    SW_TRY(sw_json_get_real(w, "loss_sum", f, &st->log_loss_sum));
    SW_TRY(sw_json_get_i64(w, "steps", f, &st->log_steps));
    json_t *ls = json_object_get(o, "loss_scaler");
    if (ls) {
        SW_TRY(sw_json_get_obj(o, "loss_scaler", f, &ls));
        SW_TRY(sw_json_get_real(ls, "scale", f, &st->loss_scale));
        SW_TRY(sw_json_get_i64(ls, "growth_tracker", f, &st->loss_scale_growth_tracker));
        SW_TRY(sw_json_get_i64(ls, "skipped_steps", f, &st->loss_scale_skipped));
        if (!(st->loss_scale > 0) || st->loss_scale_growth_tracker < 0 ||
            st->loss_scale_skipped < 0 || st->loss_scale_skipped > st->global_step)
            return sw_err_set(SW_EFORMAT,
                              "%s: loss_scaler: scale %g, growth_tracker %lld, skipped_steps "
                              "%lld out of range",
                              f, st->loss_scale, (long long)st->loss_scale_growth_tracker,
                              (long long)st->loss_scale_skipped);
        st->has_loss_scaler = 1;
    }
    int rc = 0;
    json_t *b = sw_json_need(o, "best", f, &rc);
    if (!b) return rc;
    st->has_best = json_is_object(b);
    if (st->has_best) {
        SW_TRY(sw_json_get_real(b, "metric", f, &st->best_metric));
        SW_TRY(sw_json_get_i64(b, "step", f, &st->best_step));
    } else if (!json_is_null(b)) {
        return sw_err_set(SW_EFORMAT, "%s: key 'best' is neither an object nor null", f);
    }
    if (st->global_step < 0 || st->optimizer_steps < 0 || st->optimizer_steps > st->global_step ||
        st->data_epoch < 0 || st->data_records < 0 || st->data_records_total < st->data_records)
        return sw_err_set(SW_EFORMAT,
                          "%s: inconsistent counters (global_step %lld, "
                          "optimizer_steps %lld, data records %lld of %lld)",
                          f, (long long)st->global_step, (long long)st->optimizer_steps,
                          (long long)st->data_records, (long long)st->data_records_total);
    return 0;
}

int sw_ckpt_state_load(const char *dir, struct sw_ckpt_state *st) {
    memset(st, 0, sizeof *st);
    json_t *ts = NULL, *tr = NULL, *rng = NULL;
    char *f_ts = sw_path_join(dir, CKPT_TRAINER_STATE);
    char *f_tr = sw_path_join(dir, CKPT_TRAINING_STATE);
    char *f_rng = sw_path_join(dir, CKPT_RNG_STATE);
    int rc = 0;
    if (!f_ts || !f_tr || !f_rng) {
        rc = sw_err_set(SW_ENOMEM, "out of memory");
        goto out;
    }
    SW_TRY_GOTO(rc, load_json(dir, CKPT_TRAINING_STATE, &tr), out);
    SW_TRY_GOTO(rc, parse_training_state(tr, f_tr, st), out);
    SW_TRY_GOTO(rc, load_json(dir, CKPT_TRAINER_STATE, &ts), out);
    int64_t gs;
    SW_TRY_GOTO(rc, sw_json_get_i64(ts, "global_step", f_ts, &gs), out);
    if (gs != st->global_step) {
        rc = sw_err_set(SW_ECORRUPT, "%s: global_step %lld disagrees with %s (%lld)", f_ts,
                        (long long)gs, CKPT_TRAINING_STATE, (long long)st->global_step);
        goto out;
    }
    SW_TRY_GOTO(rc, sw_json_get_i64(ts, "logging_steps", f_ts, &st->logging_steps), out);
    SW_TRY_GOTO(rc, sw_json_get_i64(ts, "eval_steps", f_ts, &st->eval_steps), out);
    SW_TRY_GOTO(rc, sw_json_get_i64(ts, "save_steps", f_ts, &st->save_steps), out);
    json_t *bs = json_object_get(ts, "train_batch_size");
    st->train_batch_size = json_is_integer(bs) ? json_integer_value(bs) : 0;
    json_t *lh = json_object_get(ts, "log_history");
    if (!json_is_array(lh)) {
        rc = sw_err_set(SW_EFORMAT, "%s: key 'log_history' is missing or not an array", f_ts);
        goto out;
    }
    st->log_history = json_incref(lh);
    SW_TRY_GOTO(rc, load_json(dir, CKPT_RNG_STATE, &rng), out);
    SW_TRY_GOTO(rc, sw_json_get_u64(rng, "seed", f_rng, &st->seed), out);
    SW_TRY_GOTO(rc, sw_json_get_u64(rng, "data_seed", f_rng, &st->data_seed), out);
    SW_TRY_GOTO(
        rc, sw_json_get_u64(rng, "dropout_forward_count", f_rng, &st->dropout_forward_count), out);
out:
    json_decref(ts);
    json_decref(tr);
    json_decref(rng);
    free(f_ts);
    free(f_tr);
    free(f_rng);
    if (rc < 0) sw_ckpt_state_release(st);
    return rc;
}
