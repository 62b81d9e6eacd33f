#!/usr/bin/env bats
# sw-train --rlhf_type grpo end to end with the tiny Qwen3 of test/golden/generate/model:
# the loop learns (a model pre-trained here on single-digit additions whose answers mostly carry
# a wrong minus sign; GRPO with the accuracy reward raises exact-match on held-out additions), the
# reward plugin's failures are named and lose no checkpoint, bad input is named.
# The loss and its gradients against TRL are test/unit/test_grpo.c's job.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup() {
    ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
    BIN="${SW_BIN:-$ROOT/bin}"
    M="$ROOT/test/golden/generate/model"
    export SW_NUM_THREADS=2 SW_PROGRESS=0
    cd "$BATS_TEST_TMPDIR"
}

# Single-digit additions a+b: nval held out (GRPO never sees them), the rest for pre-training
# (sft.jsonl: 8 copies, the answer written -(a+b) with probability 0.6, so the pre-trained model
# samples the right answer ~40% of the time and greedy decoding gets almost none) and GRPO
# (grpo.jsonl, with solutions).
gen() { # seed nval
    python3 - "$1" "$2" <<'EOF'
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
}

grpo() { # out_dir [args...]
    local out="$1"
    shift
    "$BIN/sw-train" --model "$M" --rlhf_type grpo --dataset grpo.jsonl --num_generations 4 \
        --per_device_train_batch_size 8 --max_completion_length 4 --logging_steps 1 \
        --save_steps 1000 --report_to none --add_version false --output_dir "$out" "$@"
}

@test "GRPO with the accuracy reward raises held-out exact-match of a pre-trained model" {
    gen 1 40
    run "$BIN/sw-pack" --tokenizer "$M" --dataset sft.jsonl --output sft.sws --max_length 64 \
        --per_device_train_batch_size 4 -q
    assert_success
    run "$BIN/sw-train" --model "$M" --tuner_type full --dataset sft.sws --num_train_epochs 4 \
        --learning_rate 3e-3 --output_dir sft --add_version false --save_steps 100000 \
        --logging_steps 100 --report_to none
    assert_success
    base=$(ls -d sft/checkpoint-*)
    run "$BIN/sw-train" --model "$base" --rlhf_type grpo --dataset grpo.jsonl \
        --val_dataset val.jsonl --reward_funcs accuracy --num_generations 8 \
        --per_device_train_batch_size 32 --max_completion_length 4 --temperature 1.0 \
        --max_steps 40 --learning_rate 2e-3 --lr_scheduler_type constant --warmup_ratio 0 \
        --weight_decay 0 --eval_steps 20 --eval_on_start true --logging_steps 10 \
        --save_steps 1000 --report_to none --add_version false --output_dir out
    assert_success
    assert_output --partial "GRPO: 60 prompts"
    run python3 -c 'import json
rows = [json.loads(l) for l in open("out/logging.jsonl")]
tr = [r for r in rows if "reward" in r]
ev = [r for r in rows if "eval_reward" in r]
for k in ("reward", "reward_std", "rewards/accuracy/mean", "frac_reward_zero_std",
          "completions/mean_length", "completions/clipped_ratio", "clip_ratio/region_mean",
          "time/generation", "time/scoring", "time/training"):
    assert all(k in r for r in tr), k
print("train reward", [round(r["reward"], 3) for r in tr])
print("held-out exact-match", [(r["step"], r["eval_reward"]) for r in ev])
assert ev[0]["step"] == 0 and ev[-1]["step"] == 40
assert ev[-1]["eval_reward"] >= ev[0]["eval_reward"] + 0.2, ev
assert tr[-1]["reward"] >= tr[0]["reward"] + 0.15, tr'
    echo "$output"
    assert_success
}

@test "a reward plugin that crashes: named with the row, the steps done are saved, resume works" {
    gen 2 20
    # answers 1 for two steps' worth of completions (2 x 8), then exits 3
    cat >crash.sh <<'EOF'
n=0
while read -r line; do
    n=$((n + 1))
    [ "$n" -gt 16 ] && exit 3
    echo 1
done
EOF
    run grpo out --reward_plugin "sh crash.sh" --max_steps 4
    assert_failure
    assert_output --partial "reward plugin 'sh crash.sh' exited with status 3 while scoring grpo.jsonl:"
    assert_output --partial "checkpoint-2 saved (resume with --resume_from_checkpoint)"
    [ -f out/checkpoint-2/adapter_model.safetensors ]
    run grpo out --reward_plugin "sh -c 'while read -r l; do echo 0.5; done'" --max_steps 4 \
        --resume_from_checkpoint out/checkpoint-2
    assert_success
    [ -d out/checkpoint-4 ]
    run python3 -c 'import json
rows = [json.loads(l) for l in open("out/logging.jsonl")]
print([(r["step"], r.get("rewards/plugin/mean")) for r in rows])
assert [r["step"] for r in rows] == [1, 2, 3, 4]
assert rows[0]["rewards/plugin/mean"] == 1 and rows[3]["rewards/plugin/mean"] == 0.5'
    assert_success
}

@test "a reward plugin that prints garbage or hangs is named; its JSON lines carry the row" {
    gen 3 20
    run grpo out --reward_plugin "sh -c 'while read -r l; do echo high; done'" --max_steps 2
    assert_failure
    assert_output --partial "reward plugin 'sh -c 'while read -r l; do echo high; done'' answered, not a finite number: 'high' while scoring grpo.jsonl:1 (completion 0)"
    [ ! -e out/checkpoint-1 ] # nothing was trained: nothing to save
    run grpo out2 --reward_plugin "sh -c 'read -r l; sleep 20'" --reward_timeout 0.5 --max_steps 2
    assert_failure
    assert_output --partial "gave no answer within 0.5 s while scoring grpo.jsonl:1 (completion 0)"
    # what a plugin sees: the row's fields, the rendered prompt and the completion
    run grpo out3 --reward_plugin "tee seen.jsonl | while read -r l; do echo 0; done" --max_steps 1
    assert_success
    run python3 -c 'import json
r = json.loads(open("seen.jsonl").readline())
assert set(r) >= {"messages", "solution", "prompt", "completion"}, r
assert r["prompt"].endswith("<|im_start|>assistant\n") and "+" in r["prompt"], r'
    assert_success
}

@test "bad GRPO input is named" {
    gen 4 20
    run grpo out
    assert_failure
    assert_output --partial "--rlhf_type grpo needs a reward"
    printf '{"messages": [{"role": "user", "content": "1+1="}]}\n' >nosol.jsonl
    run grpo out --dataset nosol.jsonl --reward_funcs accuracy
    assert_failure
    assert_output --partial "nosol.jsonl:1: field 'solution': missing"
    run grpo out --reward_funcs accuracy --num_generations 3
    assert_failure
    assert_output --partial "must be a multiple of num_generations 3"
    run grpo out --reward_funcs accuracy --num_generations 1 --per_device_train_batch_size 1
    assert_failure
    assert_output --partial "num_generations 1"
    run grpo out --reward_funcs accuracy,bleu
    assert_failure
    assert_output --partial "reward_funcs: 'bleu' is not a built-in reward"
    run grpo out --reward_funcs accuracy --tuner_type full --beta 0.04
    assert_failure
    assert_output --partial "needs a second copy of the model"
    run grpo out --reward_funcs accuracy --max_completion_length 250
    assert_failure
    assert_output --partial "grpo.jsonl:1: a prompt of"
    assert_output --partial "+ max_completion_length 250 is longer than the model's max_position_embeddings 256"
    run grpo out --reward_funcs accuracy --loss_type sigmoid
    assert_failure
    assert_output --partial "loss_type 'sigmoid'"
    [ ! -e out ]
}

@test "temperature 0.9 (the final norm's weight scaled for the step) leaves the weights exact" {
    gen 5 20
    # a constant reward: every advantage 0, so with weight decay 0 nothing may change at all
    run grpo out --tuner_type full --temperature 0.9 --weight_decay 0 --max_steps 2 \
        --reward_plugin "sh -c 'while read -r l; do echo 1; done'"
    assert_success
    run python3 -c 'import sys
from safetensors.numpy import load_file
a = load_file(sys.argv[1] + "/model.safetensors")
b = load_file("out/checkpoint-2/model.safetensors")
bad = [k for k in a if k in b and not (a[k] == b[k]).all()]
print(len(a), "tensors compared; differing:", bad)
assert not bad and "model.norm.weight" in b' "$M"
    assert_success
}

@test "num_iterations 2, beta, epsilon_high, dapo, dynamic_sample, two weighted rewards, log_completions" {
    gen 6 20
    # a plugin reward that differs inside most groups: completion length mod 3
    run grpo out --reward_funcs format --reward_weights 0.5,1 \
        --reward_plugin "python3 -u -c \"import sys, json
for l in sys.stdin: print(len(json.loads(l)['completion']) % 3)\"" \
        --gradient_accumulation_steps 2 --max_completion_length 6 --num_iterations 2 \
        --beta 0.04 --epsilon_high 0.28 --dynamic_sample true --loss_type dapo \
        --learning_rate 5e-3 --max_steps 4 --log_completions true
    assert_success
    run python3 -c 'import json
rows = [json.loads(l) for l in open("out/logging.jsonl")]
print(rows)
gen = [r for r in rows if "reward" in r]
# a rollout every num_iterations steps; its metrics on those steps
assert [r["step"] for r in gen] == [1, 3], gen
assert all(r["frac_reward_zero_std"] == 0 for r in gen)  # dynamic_sample kept spread groups
assert all("rewards/format/mean" in r and "rewards/plugin/mean" in r for r in gen)
assert all(abs(r["reward"] - (0.5 * r["rewards/format/mean"] + r["rewards/plugin/mean"])) < 1e-9 for r in gen)
# step 1 updates nothing (warmup: lr 0), so step 2 is still on-policy; step 4 is not
assert rows[1]["kl"] == 0 and rows[1]["clip_ratio/region_mean"] == 0
assert rows[3]["kl"] > 0 and rows[3]["clip_ratio/region_mean"] > 0
# --log_completions: the 2 rollouts x 16 completions, with their rewards and advantages
c = [json.loads(l) for l in open("out/completions.jsonl")]
assert len(c) == 32 and [x["step"] for x in c] == [1] * 16 + [3] * 16, [x["step"] for x in c]
for x in c:
    assert set(x["rewards"]) == {"format", "plugin"} and x["row"].startswith("grpo.jsonl:")
    assert x["rewards"]["plugin"] == len(x["completion"]) % 3
    assert abs(x["reward"] - 0.5 * x["rewards"]["format"] - x["rewards"]["plugin"]) < 1e-12
for k in range(0, 32, 4):  # a group: advantages sum to 0
    assert abs(sum(x["advantage"] for x in c[k:k + 4])) < 1e-9'
    assert_success
}
