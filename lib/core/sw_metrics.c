/* sw_metrics — logging.jsonl writer, resume-time trimming, and the peak-memory/clock helpers. */
#include "sw_metrics.h"

#include "sw_err.h"
#include "sw_io.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

struct sw_metrics {
    FILE *fp;
    char *path;
};

/* Keep the lines of an existing file with "step" <= keep; rewrite it atomically. */
static int trim_file(const char *path, int64_t keep) {
    char *data = NULL;
    size_t len = 0;
    int rc = sw_read_file(path, &data, &len, 0);
    if (rc == SW_ENOTFOUND) return sw_err_clear(), 0;
    SW_TRY(rc);
    struct sw_atomic_file af;
    rc = sw_atomic_open(&af, path);
    if (rc < 0) {
        free(data);
        return rc;
    }
    char *line = data, *end = data + len;
    while (line < end && rc == 0) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
        json_error_t jerr;
        json_t *obj = json_loadb(line, n, 0, &jerr);
        json_t *step = obj ? json_object_get(obj, "step") : NULL;
        if (step && json_is_integer(step) && json_integer_value(step) <= keep) {
            if (fwrite(line, 1, n, af.fp) != n || fputc('\n', af.fp) == EOF)
                rc = sw_err_errno("cannot write '%s'", path);
        }
        json_decref(obj);
        line += n + 1;
    }
    free(data);
    if (rc < 0) {
        sw_atomic_abort(&af);
        return rc;
    }
    return sw_atomic_commit(&af);
}

int sw_metrics_open(const char *path, int64_t keep_until_step, struct sw_metrics **out) {
    *out = NULL;
    if (keep_until_step >= 0) SW_TRY(trim_file(path, keep_until_step));
    struct sw_metrics *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return sw_err_set(SW_ENOMEM, "out of memory opening '%s'", path);
    }
    m->fp = fopen(path, keep_until_step >= 0 ? "a" : "w");
    if (!m->fp) {
        int rc = sw_err_errno("cannot open metrics file '%s'", path);
        free(m->path);
        free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void sw_metrics_close(struct sw_metrics *m) {
    if (!m) return;
    if (m->fp) fclose(m->fp);
    free(m->path);
    free(m);
}

int sw_metrics_log_json(struct sw_metrics *m, const json_t *obj) {
    char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    if (!text) return sw_err_set(SW_ENOMEM, "cannot format a metrics line for '%s'", m->path);
    int ok = fputs(text, m->fp) >= 0 && fputc('\n', m->fp) != EOF && fflush(m->fp) == 0;
    free(text);
    if (!ok) return sw_err_errno("cannot write metrics to '%s'", m->path);
    return 0;
}

/* A number, or null when it is not finite. */
static json_t *num(double v) {
    return isfinite(v) ? json_real(v) : json_null();
}

int sw_metrics_log_train(struct sw_metrics *m, const struct sw_metrics_train *r) {
    json_t *o = json_object();
    if (!o) return sw_err_set(SW_ENOMEM, "out of memory");
    json_object_set_new(o, "step", json_integer(r->step));
    json_object_set_new(o, "epoch", num(r->epoch));
    json_object_set_new(o, "loss", num(r->loss));
    json_object_set_new(o, "grad_norm", num(r->grad_norm));
    json_object_set_new(o, "learning_rate", num(r->learning_rate));
    json_object_set_new(o, "tokens_per_sec", num(r->tokens_per_sec));
    json_object_set_new(o, "peak_mem_bytes", json_integer((json_int_t)r->peak_mem_bytes));
    json_object_set_new(o, "elapsed", num(r->elapsed));
    int rc = sw_metrics_log_json(m, o);
    json_decref(o);
    return rc;
}

int sw_metrics_log_eval(struct sw_metrics *m, int64_t step, double epoch, double eval_loss,
                        int64_t eval_tokens, double elapsed) {
    json_t *o = json_object();
    if (!o) return sw_err_set(SW_ENOMEM, "out of memory");
    json_object_set_new(o, "step", json_integer(step));
    json_object_set_new(o, "epoch", num(epoch));
    json_object_set_new(o, "eval_loss", num(eval_loss));
    json_object_set_new(o, "eval_tokens", json_integer(eval_tokens));
    json_object_set_new(o, "elapsed", num(elapsed));
    int rc = sw_metrics_log_json(m, o);
    json_decref(o);
    return rc;
}

uint64_t sw_peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (uint64_t)ru.ru_maxrss * 1024u; /* Linux reports kilobytes */
}

double sw_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
