/* sw_grpo_opts — the options of sw-train --rlhf_type grpo (ms-swift's GRPO argument names; see
 * docs/train.md "GRPO"). A member of struct sw_train_opts (sw_train.h); the shared ones
 * (beta, loss_type, per_device_train_batch_size, ...) stay there. */
#ifndef SW_GRPO_OPTS_H
#define SW_GRPO_OPTS_H

#include <stdint.h>

struct sw_grpo_opts {
    int64_t num_generations;       /* completions per prompt (G) */
    int64_t max_completion_length; /* new tokens per completion at most */
    double temperature, top_p;     /* sampling (vLLM's semantics) */
    int64_t top_k;                 /* -1 or 0: off */
    double epsilon;                /* clip range low (and high unless epsilon_high) */
    double epsilon_high;           /* 0: epsilon (DAPO's clip-higher when larger) */
    int64_t num_iterations;        /* optimizer steps per generated batch (GRPO's μ) */
    char *scale_rewards;           /* group | batch | none */
    int dynamic_sample;            /* DAPO: resample groups whose rewards are all equal */
    int64_t max_resample_times;
    char *reward_funcs;    /* comma list: accuracy, format */
    char *reward_weights;  /* comma list of numbers, one per reward (plugin last) */
    char *reward_plugin;   /* command of a reward plugin process (sw_reward.h) */
    double reward_timeout; /* seconds the plugin may take for one answer */
    int log_completions;   /* every rollout's completions into <run folder>/completions.jsonl */
};

#endif
