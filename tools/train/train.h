/* sw-train's command entry point (train.c), called by main.c. */
#ifndef SW_TOOL_TRAIN_H
#define SW_TOOL_TRAIN_H

/* Parse argv (argv[0] is the program), train, and return the process exit status. */
int sw_train_main(int argc, char **argv);

#endif
