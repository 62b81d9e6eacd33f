/* sw-eval — local evaluation and inference on the CPU over an HF model folder (plus a PEFT
 * adapter). This file only dispatches the subcommand; each lives in its own file and reports
 * errors through sw_err. See tools/eval/README.md and docs/eval.md. */
#include "eval.h"

#include "sw_config.h"

int sw_eval_bench_main(int argc, char **argv);  /* bench.c */
int sw_eval_farm_main(int argc, char **argv);   /* farm.c */
int sw_eval_worker_main(int argc, char **argv); /* worker.c */

static const struct sw_cli_command commands[] = {
    {"logits", sw_eval_logits_main,
     "full logits and transformers' loss of token ids (safetensors in and out)"},
    {"generate", sw_eval_generate_main,
     "greedy or sampled text generation from a prompt, a query or chat messages"},
    {"bench", sw_eval_bench_main,
     "benchmarks (MMLU, C-Eval, CMMLU, GSM8K, ...) scored as lm-evaluation-harness scores them"},
    {"farm", sw_eval_farm_main, "serve a benchmark run's shards to workers over ZeroMQ"},
    {"worker", sw_eval_worker_main, "answer an eval farm's shards"},
};

int main(int argc, char **argv) {
    static const struct sw_cli_suite suite = {
        "sw-eval",
        "Evaluate and run a Hugging Face model folder (and a PEFT LoRA adapter) on the CPU.",
        commands, sizeof commands / sizeof commands[0], NULL};
    return sw_cli_main(&suite, argc, argv);
}
