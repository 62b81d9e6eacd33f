/* sw-train's command entry point (train.c), called by main.c. */
#ifndef SW_TOOL_TRAIN_H
#define SW_TOOL_TRAIN_H

#include "sw_config.h"

/* The option table (ms-swift names; --help, YAML configs and args.json come from it) and the
 * command description (options.c). */
extern const struct sw_opt sw_train_options[];
extern const struct sw_cli sw_train_cli;

/* Parse argv (argv[0] is the program), train, and return the process exit status. */
int sw_train_main(int argc, char **argv);

#endif
