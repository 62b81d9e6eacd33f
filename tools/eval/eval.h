/* eval.h — the subcommands of sw-eval, each a function taking the arguments after the
 * subcommand word (argv[0] is the word itself) and returning 0 or a negative sw_err with the
 * message set; main.c maps that to the exit status. The work is in lib/sw_eval*.c and
 * lib/sw_generate*.c. */
#ifndef SW_EVAL_TOOL_H
#define SW_EVAL_TOOL_H

/* sw-eval logits --model DIR [--adapter DIR] --input IN --output OUT */
int sw_eval_logits_main(int argc, char **argv);
/* sw-eval generate --model DIR [--adapter DIR] (--prompt T | --query T | --messages F) ... */
int sw_eval_generate_main(int argc, char **argv);

#endif
