/* pack_stats — sw-pack's summary: counts of rows (read, bad, deleted, truncated, kept, unsampled,
 * sent to validation; they add up, see struct pack_counts), tokens,
 * records and packing efficiency, as log lines on stderr, as JSON for --stats, and as msgpack in
 * the stream (header "counts" and the closing "x-pack-stats" record). Nothing is dropped without
 * a count here. */
#include "pack.h"

#include "sw_err.h"
#include "sw_io.h"
#include "sw_log.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* A JSON value into a record builder (objects become maps, arrays arrays). */
int pack_put_json(struct sw_record_builder *b, const char *key, const json_t *v);
int pack_put_json(struct sw_record_builder *b, const char *key, const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        SW_TRY(sw_record_put_map_begin(b, key));
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) SW_TRY(pack_put_json(b, k, x));
        return sw_record_put_end(b);
    }
    case JSON_ARRAY: {
        SW_TRY(sw_record_put_array_begin(b, key));
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) SW_TRY(pack_put_json(b, NULL, x));
        return sw_record_put_end(b);
    }
    case JSON_STRING:
        return sw_record_put_strn(b, key, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: return sw_record_put_int(b, key, json_integer_value(v));
    case JSON_REAL: return sw_record_put_double(b, key, json_real_value(v));
    case JSON_TRUE: return sw_record_put_bool(b, key, 1);
    case JSON_FALSE: return sw_record_put_bool(b, key, 0);
    default: return sw_record_put_nil(b, key);
    }
}

static double efficiency(const struct pack_ctx *x, const struct pack_counts *c) {
    return sw_pack_efficiency(c->tokens, c->out.sequences, (uint32_t)x->o->max_length);
}

json_t *pack_counts_json(const struct pack_ctx *x, const struct pack_counts *c) {
    json_t *j = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "rows_read",
        (json_int_t)c->rows_read, "rows_repeated", (json_int_t)c->rows_repeated, "rows_from_split",
        (json_int_t)c->rows_from_split, "rows_bad", (json_int_t)c->rows_bad, "rows_unsampled",
        (json_int_t)c->rows_unsampled, "rows_to_validation", (json_int_t)c->rows_to_val,
        "rows_sampled", (json_int_t)c->rows_sampled, "rows_tokenized",
        (json_int_t)c->rows_tokenized, "rows_deleted", (json_int_t)c->rows_deleted,
        "rows_truncated", (json_int_t)c->rows_truncated, "rows_no_loss",
        (json_int_t)c->rows_no_loss, "rows_out", (json_int_t)c->rows_out, "tokens",
        (json_int_t)c->tokens, "loss_tokens", (json_int_t)c->loss_tokens, "max_sample_length",
        (json_int_t)c->max_sample_len);
    if (!j) return NULL;
    /* Record-level counts exist once records were written (not yet in a header). */
    if (c->out.records) {
        json_object_set_new(j, "records", json_integer((json_int_t)c->out.records));
        json_object_set_new(j, "samples", json_integer((json_int_t)c->out.samples));
        if (x->o->packing) {
            json_object_set_new(j, "sequences", json_integer((json_int_t)c->out.sequences));
            json_object_set_new(j, "packing_efficiency", json_real(efficiency(x, c)));
        } else if (x->o->batch && !x->o->padding_free) {
            json_object_set_new(j, "padding_tokens",
                                json_integer((json_int_t)c->out.padded_tokens));
        }
    }
    return j;
}

/* The row counts as a sum that adds up, every term named (terms that cannot apply are left
 * out): "2000 rows read = 9 kept + 36 deleted (over max_length 64) + ... + 1950 unsampled (#N) +
 * 5 to validation". */
static void log_counts(const struct pack_ctx *x, const char *what, const struct pack_counts *c,
                       double secs) {
    char in[160], out[600];
    int n = 0;
    if (c->rows_from_split && !c->rows_read)
        n = snprintf(in, sizeof in, "%llu rows from the split",
                     (unsigned long long)c->rows_from_split);
    else
        n = snprintf(in, sizeof in, "%llu rows read", (unsigned long long)c->rows_read);
    if (c->rows_repeated && n > 0)
        snprintf(in + n, sizeof in - (size_t)n, " + %llu repeated (#N above the row count)",
                 (unsigned long long)c->rows_repeated);
    n = snprintf(out, sizeof out,
                 "%llu kept + %llu deleted (over max_length %lld) + %llu without trained tokens + "
                 "%llu bad (skipped)",
                 (unsigned long long)c->rows_out, (unsigned long long)c->rows_deleted,
                 (long long)x->o->max_length, (unsigned long long)c->rows_no_loss,
                 (unsigned long long)c->rows_bad);
    if (c->rows_unsampled && n > 0 && (size_t)n < sizeof out)
        n += snprintf(out + n, sizeof out - (size_t)n, " + %llu unsampled (#N)",
                      (unsigned long long)c->rows_unsampled);
    if (c->rows_to_val && n > 0 && (size_t)n < sizeof out)
        snprintf(out + n, sizeof out - (size_t)n, " + %llu to validation",
                 (unsigned long long)c->rows_to_val);
    sw_info("%s: %s = %s", what, in, out);
    if (c->rows_truncated)
        sw_info("%s: %llu of the kept rows truncated to max_length %lld", what,
                (unsigned long long)c->rows_truncated, (long long)x->o->max_length);
    char extra[160] = "";
    if (x->o->packing && x->kind == KIND_SFT)
        snprintf(extra, sizeof extra, ", %llu packed sequences of %lld, efficiency %.2f%%",
                 (unsigned long long)c->out.sequences, (long long)x->o->max_length,
                 100 * efficiency(x, c));
    else if (x->kind == KIND_SFT && x->o->batch && !x->o->padding_free && c->tokens)
        snprintf(extra, sizeof extra, ", %llu padding tokens (%.1f%%)",
                 (unsigned long long)c->out.padded_tokens,
                 100.0 * (double)c->out.padded_tokens / (double)(c->tokens + c->out.padded_tokens));
    sw_info("%s: %llu tokens (%llu trained), %llu records%s", what, (unsigned long long)c->tokens,
            (unsigned long long)c->loss_tokens, (unsigned long long)c->out.records, extra);
    (void)secs;
}

void pack_stats_log(const struct pack_ctx *x, const struct pack_counts *train,
                    const struct pack_counts *val, double seconds) {
    log_counts(x, "train", train, seconds);
    if (val) log_counts(x, "validation", val, seconds);
    uint64_t rows = train->rows_tokenized + (val ? val->rows_tokenized : 0);
    uint64_t toks = train->tokens + (val ? val->tokens : 0);
    if (seconds > 0)
        sw_info("%.2f s: %.0f rows/s, %.0f tokens/s", seconds, (double)rows / seconds,
                (double)toks / seconds);
}

int pack_stats_write(const char *path, const struct pack_ctx *x, const struct pack_counts *train,
                     const struct pack_counts *val, double seconds) {
    json_t *j = json_object();
    json_t *t = pack_counts_json(x, train);
    if (!j || !t) {
        json_decref(j);
        json_decref(t);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    json_object_set_new(j, "train", t);
    if (val) json_object_set_new(j, "validation", pack_counts_json(x, val));
    json_object_set_new(j, "seconds", json_real(seconds));
    uint64_t rows = train->rows_tokenized + (val ? val->rows_tokenized : 0);
    uint64_t toks = train->tokens + (val ? val->tokens : 0);
    json_object_set_new(j, "rows_per_second", json_real(seconds > 0 ? (double)rows / seconds : 0));
    json_object_set_new(j, "tokens_per_second",
                        json_real(seconds > 0 ? (double)toks / seconds : 0));
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!text) return sw_err_set(SW_ENOMEM, "out of memory");
    size_t n = strlen(text);
    text[n] = '\n';
    int rc = sw_write_file_atomic(path, text, n + 1);
    free(text);
    return rc < 0 ? sw_err_wrap(rc, "--stats") : 0;
}
