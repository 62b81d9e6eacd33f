/* sw_train_grpo — the GRPO part of the trainer (sw-train --rlhf_type grpo; sw_train_grpo.c says
 * how): prompts from a JSONL dataset, rollouts on the inference engine over the trainer's own
 * model, rewards, advantages, the clipped policy-gradient step and TRL's metrics. sw_train.c
 * calls these where a GRPO run differs from supervised / preference training. */
#ifndef SW_TRAIN_GRPO_H
#define SW_TRAIN_GRPO_H

#include "sw_train_impl.h"

struct sw_train_grpo;

/* Parse the options and read the prompts (--dataset, --val_dataset): fills t->grpo, the step
 * plan (total_steps, records_per_epoch, steps_per_epoch, the largest micro-batch's shape) and,
 * for a resumed run, the data position. Replaces plan_data/load_val for GRPO. */
int sw_train_grpo_open(struct sw_trainer *t);
/* Open the engine over t->m and start the reward plugin: after the memory plan, before the
 * first step. Dropout is off from here on (TRL's disable_dropout). */
int sw_train_grpo_start(struct sw_trainer *t);
void sw_train_grpo_close(struct sw_trainer *t);
/* One optimizer step's forward and backward (rollouts first when the step starts a generation
 * batch): gradients of gscale · the step's loss; *loss is TRL's loss of the step (the sum of its
 * micro-batches' losses). Fills t->mbs[i].input_tokens / targets / records for the counters. */
int sw_train_grpo_step(struct sw_trainer *t, double gscale, double *loss);
/* The training log line's GRPO keys (the logging window's means) into o, and a new window. */
void sw_train_grpo_log(struct sw_trainer *t, json_t *o);
/* Greedy completions of the validation prompts: eval_reward, eval_rewards/<f>/mean,
 * eval_completions/mean_length into logging.jsonl. */
int sw_train_grpo_eval(struct sw_trainer *t);
/* A step failed with rc: when the run trained since its last checkpoint, save one (the failure
 * happened before the step's update, so the state is that of the last completed step) and say
 * so in the message. Returns rc. */
int sw_train_grpo_failed(struct sw_trainer *t, int rc);

#endif
