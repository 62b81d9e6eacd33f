/* sw_reward — the rewards of sw-train --rlhf_type grpo: ms-swift's built-in reward functions that
 * need no model (accuracy on math answers, format) and user rewards as a plugin process.
 *
 *   accuracy  1 when the completion's answer equals the row's `solution`, else 0. The answer of a
 *             text is taken as ms-swift's GSM8K example reward does (examples/train/grpo/plugin/
 *             gsm8k: the last \boxed{...}, else the last `#### <number>`, commas and spaces
 *             removed, within the last 500 characters) and, when neither is there, the last
 *             number of the text (sw's fallback, so a bare "42" solution works). Two answers are
 *             equal when both parse as numbers within 1e-5, else when the strings are equal.
 *   format    ms-swift's `format` ORM: 1 when the completion is exactly
 *             <think>...</think> (whitespace) <answer>...</answer>, else 0.
 *   plugin    --reward_plugin CMD: `/bin/sh -c CMD` is started once and kept; each completion to
 *             score is one JSON line on its stdin — the dataset row's fields plus "prompt" (the
 *             rendered prompt text) and "completion" — and the plugin answers one number per line
 *             on stdout, in order (flush after each line). A plugin that exits, closes its
 *             stdout, answers something that is not a finite number, or takes longer than the
 *             timeout for one answer is an error naming the command and the row. */
#ifndef SW_REWARD_H
#define SW_REWARD_H

#include <jansson.h>
#include <stddef.h>

/* The answer of text into out (cap bytes, NUL-terminated; "" when there is none). */
void sw_reward_extract_answer(const char *text, char *out, size_t cap);
/* 1.0 or 0.0 (an empty solution answer scores 0). */
double sw_reward_accuracy(const char *completion, const char *solution);
double sw_reward_format(const char *completion);

/* One completion to score. */
struct sw_reward_item {
    const char *prompt;     /* the prompt as rendered (chat template, generation prompt) */
    const char *completion; /* the generated text */
    const json_t *row;      /* the dataset row (its fields go to the plugin), may be NULL */
    const char *where;      /* "file:line" of the row, for messages */
};

struct sw_reward_plugin;
/* Start cmd. timeout_s: seconds one answer may take (> 0). */
int sw_reward_plugin_open(const char *cmd, double timeout_s, struct sw_reward_plugin **out);
/* Score n items into out[n]. After an error the plugin is stopped (later calls fail at once). */
int sw_reward_plugin_score(struct sw_reward_plugin *p, const struct sw_reward_item *items, int n,
                           double *out);
/* Close its stdin, wait a moment for it to exit, then kill it. NULL ok. */
void sw_reward_plugin_close(struct sw_reward_plugin *p);

#endif
