/* sw_train_report — what a training run reports besides logging.jsonl, as ms-swift / HF Trainer
 * users expect it:
 *   - TensorBoard event files (--report_to tensorboard, ms-swift's default) in logging_dir
 *     (default <run>/runs, ms-swift's), with HF's tags: train/loss, train/grad_norm,
 *     train/learning_rate, train/epoch, eval/loss, at the global step;
 *   - plots of the curves in <run>/images/ (ms-swift's plot_images): train_loss.svg (raw and
 *     smoothed with weight 0.9, as ms-swift smooths), train_learning_rate.svg,
 *     train_grad_norm.svg and eval_loss.svg, redrawn from the trainer state's log_history at
 *     every save and at the end of a run (so a resumed run's plots cover the whole run);
 *   - the HF-style log line of each logging step (sw_train_report_line). */
#ifndef SW_TRAIN_REPORT_H
#define SW_TRAIN_REPORT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Parse --report_to (a comma/space list of tensorboard, none, all): *tensorboard is 1 when
 * event files are wanted. An integration sw does not have (wandb, swanlab, ...) is SW_EUSAGE
 * naming it. */
int sw_train_report_parse(const char *report_to, int *tensorboard);

struct sw_train_report;

/* A reporter for the run in run_dir. The event file is created at the first scalar, so a run
 * that fails before logging anything leaves no file behind. logging_dir NULL: run_dir/runs. */
int sw_train_report_open(const char *run_dir, const char *report_to, const char *logging_dir,
                         struct sw_train_report **out);
/* Scalars of one step (n tags and values; non-finite values are skipped). */
int sw_train_report_scalars(struct sw_train_report *r, int64_t step, const char *const *tags,
                            const double *values, int n);
/* The event file's path, or NULL before the first scalar / without tensorboard. */
const char *sw_train_report_events_path(const struct sw_train_report *r);
void sw_train_report_close(struct sw_train_report *r);

/* Redraw run_dir/images/ (SVG files) from an HF log_history array (borrowed; entries with "loss",
 * "grad_norm", "learning_rate" or "eval_loss" and "step"). Files are replaced atomically. */
int sw_train_report_plots(const char *run_dir, const json_t *log_history);

/* The HF-Trainer / ms-swift style line of a logging step, into buf:
 *   {'loss': 2.3456, 'grad_norm': 1.234, 'learning_rate': 9.5e-05, 'tokens_per_sec': 1234.5,
 *    'memory(GiB)': 0.12, 'epoch': 0.25, 'global_step/max_steps': '5/100',
 *    'percentage': '5.00%', 'elapsed_time': '0:10', 'remaining_time': '3:10'}
 * Non-finite numbers print as nan (Python's spelling). Pure: exposed for tests. */
struct sw_train_line {
    double loss, grad_norm, learning_rate, tokens_per_sec, epoch;
    double mem_gib;    /* < 0: left out */
    double loss_scale; /* > 0: float16 runs add 'loss_scale' */
    int64_t step, max_steps;
    double elapsed, remaining; /* seconds; remaining < 0 prints '?' */
};
int sw_train_report_line(char *buf, size_t cap, const struct sw_train_line *l);

#endif
