#!/usr/bin/env bash
# bench/grpo_arith_bench.sh — does sw-train --rlhf_type grpo learn? The demonstration of
# test/cli/train-grpo.bats, longer and over several seeds, with its curve.
#
# For each seed: single-digit additions "a+b=" (100 problems), NVAL held out; the tiny Qwen3 of
# test/golden/generate/model is pre-trained (full fine-tuning, 4 epochs) on the others with answers
# written with a wrong minus sign (-(a+b)) with probability 0.6, so it samples the right answer
# ~40% of the time and greedy decoding gets almost none; then GRPO (LoRA, accuracy reward, 8
# generations per prompt, 32 completions per step, lr 2e-3 constant) for STEPS steps, evaluating
# greedy exact-match on the
# held-out problems every EVAL steps. Prints per seed the held-out exact-match curve, the training
# reward per logging window and the mean seconds per step split into generation / scoring /
# training, then the mean held-out gain over the seeds.
#
#   bench/grpo_arith_bench.sh                  # SEEDS="1 2 3 4 5" STEPS=80 EVAL=10 NVAL=40
#   SEEDS="5" STEPS=60 bench/grpo_arith_bench.sh
#   SW_BIN=build/x/bin bench/grpo_arith_bench.sh   # binaries of another build folder
#
# Needs python3 (data generation and the summary). Writes only under a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-"1 2 3 4 5"}
STEPS=${STEPS:-80}
EVAL=${EVAL:-10}
NVAL=${NVAL:-40}
export SW_NUM_THREADS=${SW_NUM_THREADS:-2} SW_PROGRESS=0
# SW_BIN=DIR: binaries from DIR (no build); else bin/, built first
[ -n "${SW_BIN:-}" ] || make -j2 bin/sw-train bin/sw-pack >/dev/null
BIN=${SW_BIN:-$PWD/bin} M=$PWD/test/golden/generate/model
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for seed in $SEEDS; do
    d="$TMP/$seed"
    mkdir -p "$d"
    (
        cd "$d"
        python3 - "$seed" "$NVAL" <<'EOF'
import json, random, sys
random.seed(int(sys.argv[1]))
nval = int(sys.argv[2])
pairs = [(a, b) for a in range(10) for b in range(10)]
random.shuffle(pairs)
val, train = pairs[:nval], pairs[nval:]
def row(a, b):
    return {"messages": [{"role": "user", "content": f"{a}+{b}="}], "solution": str(a + b)}
with open("sft.jsonl", "w") as f:
    for rep in range(8):
        for a, b in train:
            ans = ("-" if random.random() < 0.6 else "") + str(a + b)
            f.write(json.dumps({"query": f"{a}+{b}=", "response": ans}) + "\n")
with open("grpo.jsonl", "w") as f:
    f.writelines(json.dumps(row(a, b)) + "\n" for a, b in train)
with open("val.jsonl", "w") as f:
    f.writelines(json.dumps(row(a, b)) + "\n" for a, b in val)
EOF
        "$BIN/sw-pack" --tokenizer "$M" --dataset sft.jsonl --output sft.sws --max_length 64 \
            --per_device_train_batch_size 4 -q
        "$BIN/sw-train" --model "$M" --tuner_type full --dataset sft.sws --num_train_epochs 4 \
            --learning_rate 3e-3 --output_dir sft --add_version false --save_steps 100000 \
            --logging_steps 1000 --report_to none -q
        "$BIN/sw-train" --model "$(ls -d sft/checkpoint-*)" --rlhf_type grpo \
            --dataset grpo.jsonl --val_dataset val.jsonl --reward_funcs accuracy \
            --num_generations 8 --per_device_train_batch_size 32 --max_completion_length 4 \
            --temperature 1.0 --max_steps "$STEPS" --learning_rate 2e-3 \
            --lr_scheduler_type constant --warmup_ratio 0 --weight_decay 0 \
            --eval_steps "$EVAL" --eval_on_start true --logging_steps 10 --save_steps 100000 \
            --report_to none --add_version false --output_dir out -q
    )
done
python3 - "$TMP" $SEEDS <<'EOF'
import json, sys
root, seeds = sys.argv[1], sys.argv[2:]
gains = []
for s in seeds:
    rows = [json.loads(l) for l in open(f"{root}/{s}/out/logging.jsonl")]
    ev = [(r["step"], r["eval_reward"]) for r in rows if "eval_reward" in r]
    tr = [r for r in rows if "reward" in r]
    t = {k: sum(r[k] for r in tr) / len(tr) for k in ("time/generation", "time/scoring", "time/training")}
    print(f"seed {s}: held-out exact-match {ev}")
    print(f"        train reward per 10 steps {[round(r['reward'], 3) for r in tr]}")
    print("        s/step: generation %.3f, scoring %.5f, training %.3f" % tuple(t.values()))
    gains.append(ev[-1][1] - ev[0][1])
print("held-out gain per seed", [round(g, 3) for g in gains], "mean %.3f" % (sum(gains) / len(gains)))
EOF
