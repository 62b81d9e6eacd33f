/* sw_ckpt_impl — internals shared by the checkpoint writer, reader and JSON forms. */
#ifndef SW_CKPT_IMPL_H
#define SW_CKPT_IMPL_H

#include "sw_ckpt.h"

#include <jansson.h>
#include <stdint.h>

#define CKPT_TRAINER_STATE "trainer_state.json"
#define CKPT_TRAINING_STATE "training_state.json"
#define CKPT_RNG_STATE "rng_state.json"
#define CKPT_OPTIMIZER "optimizer.safetensors"
#define CKPT_ADAPTER_CONFIG "adapter_config.json"
#define CKPT_ADAPTER_MODEL "adapter_model.safetensors"
#define CKPT_ARGS "args.json"

/* JSON text of the three state files (malloc'ed, ending in a newline), or NULL on ENOMEM. */
char *sw_ckpt_trainer_state_json(const struct sw_ckpt_state *st);
char *sw_ckpt_training_state_json(const struct sw_ckpt_state *st);
char *sw_ckpt_rng_state_json(const struct sw_ckpt_state *st);
/* Parse the files of folder dir into st (log_history from trainer_state.json). Errors name the
 * file and key. */
int sw_ckpt_state_load(const char *dir, struct sw_ckpt_state *st);

#endif
