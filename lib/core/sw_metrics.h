/* sw_metrics — training metrics as JSON lines (output_dir/logging.jsonl, ms-swift's file name):
 * one object per line, flushed as soon as it is written so `tail -f` and a crash both see every
 * completed line. Training rows carry step, epoch, loss, grad_norm, learning_rate,
 * tokens_per_sec, peak_mem_bytes and elapsed (seconds); evaluation rows step, epoch, eval_loss,
 * eval_tokens and elapsed. Non-finite numbers are written as null (JSON has no NaN).
 *
 * Resuming from checkpoint-N keeps the lines with step <= N and drops the rest (they describe
 * steps that will be redone), so the file reads as one uninterrupted run. */
#ifndef SW_METRICS_H
#define SW_METRICS_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

struct sw_metrics;

/* Open path for appending. keep_until_step < 0 starts a new file (truncating an old one);
 * otherwise the lines of an existing file whose "step" is <= keep_until_step are kept (the
 * others, and lines that are not JSON objects, are dropped; rewritten atomically first).
 * Returns 0 or SW_EIO/SW_ENOMEM with the path in the message. */
int sw_metrics_open(const char *path, int64_t keep_until_step, struct sw_metrics **out);
/* Close. Accepts NULL. */
void sw_metrics_close(struct sw_metrics *m);

struct sw_metrics_train {
    int64_t step;
    double epoch;
    double loss;          /* mean token loss over the logging window */
    double grad_norm;     /* pre-clip global norm of the last step */
    double learning_rate; /* the scheduler's value after the step, as HF Trainer logs it */
    double tokens_per_sec;
    uint64_t peak_mem_bytes;
    double elapsed; /* seconds since the run (or the resumed run) started */
};
int sw_metrics_log_train(struct sw_metrics *m, const struct sw_metrics_train *row);
int sw_metrics_log_eval(struct sw_metrics *m, int64_t step, double epoch, double eval_loss,
                        int64_t eval_tokens, double elapsed);
/* A line of arbitrary fields given as a jansson object (borrowed). */
int sw_metrics_log_json(struct sw_metrics *m, const json_t *obj);

/* Peak resident set size of this process in bytes (getrusage ru_maxrss). */
uint64_t sw_peak_rss_bytes(void);
/* Monotonic clock in seconds. */
double sw_now_seconds(void);

#endif
