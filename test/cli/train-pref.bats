#!/usr/bin/env bats
# sw-train --rlhf_type (preference training) end to end: a synthetic preference set (chosen
# answers engage with the prompt, rejected ones refuse) packed by sw-pack with the tiny Qwen3 of
# test/golden/generate/model, DPO with LoRA: held-out rewards/accuracies rises; the reference
# log-prob cache (--ref_logps) gives the same losses as recomputing; bad input is named.
# Losses and gradients against TRL are test/unit/test_pref.c's job.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup() {
    ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
    BIN="${SW_BIN:-$ROOT/bin}"
    M="$ROOT/test/golden/generate/model"
    F="$ROOT/test/fixtures/datasets"
    export SW_NUM_THREADS=1 SW_PROGRESS=0
    cd "$BATS_TEST_TMPDIR"
}

# n pairs from a seeded awk generator: the preference is learnable and generalises to new pairs.
gen() { # n seed
    awk -v n="$1" -v seed="$2" 'BEGIN { srand(seed)
        split("apple river stone cloud light paper music window garden silver", w, " ")
        for (i = 0; i < n; i++) {
            a = w[int(rand() * 10) + 1]; b = w[int(rand() * 10) + 1]
            printf "{\"prompt\": \"Tell me about %s and %s.\", \"chosen\": \"Good: %s is nice, %s is fine.\", \"rejected\": \"No. I will not talk about %s.\"}\n", a, b, a, b, a
        } }'
}

pack() { # jsonl out
    "$BIN/sw-pack" --tokenizer "$M" --dataset "$1" --output "$2" --max_length 128 -q
}

dpo() { # out_dir [args...]
    local out="$1"
    shift
    "$BIN/sw-train" --model "$M" --rlhf_type dpo --dataset train.sws --val_dataset val.sws \
        --per_device_train_batch_size 4 --max_steps 12 --learning_rate 1e-3 --lora_rank 8 \
        --logging_steps 1 --eval_steps 4 --eval_on_start true --save_steps 1000 --report_to none \
        --add_version false --output_dir "$out" "$@"
}

# "step loss" of every training line of a logging.jsonl
losses() {
    python3 -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if "loss" in r: print(r["step"], repr(r["loss"]), repr(r.get("rewards/margins")))' "$1"
}

@test "DPO with LoRA raises held-out rewards/accuracies; TRL's metrics are logged" {
    gen 48 1 >train.jsonl
    gen 16 2 >val.jsonl
    pack train.jsonl train.sws
    pack val.jsonl val.sws
    run dpo out
    assert_success
    assert_output --partial "reference pass: log-probs of 48 records (the base model: adapters off)"
    run python3 -c 'import json
rows = [json.loads(l) for l in open("out/logging.jsonl")]
tr = [r for r in rows if "loss" in r]
ev = [r for r in rows if "eval_loss" in r]
for k in ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
          "logps/chosen", "logps/rejected"):
    assert all(k in r for r in tr), k
acc = [r["eval_rewards/accuracies"] for r in ev]
print("eval accuracies", acc, "eval losses", [round(r["eval_loss"], 4) for r in ev])
# step 0: the adapter is zero, so the policy is the reference: every reward 0, accuracy 0,
# loss log 2
assert ev[0]["step"] == 0 and acc[0] == 0 and abs(ev[0]["eval_loss"] - 0.693147) < 1e-5, ev[0]
assert acc[-1] >= 0.9, acc
assert ev[-1]["eval_loss"] < ev[1]["eval_loss"] < ev[0]["eval_loss"]
assert ev[-1]["eval_rewards/margins"] > 0'
    assert_success
    echo "$output"
}

@test "the --ref_logps cache gives the same losses as recomputing, and is checked" {
    gen 24 3 >train.jsonl
    gen 8 4 >val.jsonl
    pack train.jsonl train.sws
    pack val.jsonl val.sws
    run dpo a --ref_logps ref.sws
    assert_success
    assert_output --partial "reference log-probs of 24 records written to ref.sws"
    [ -s ref.sws ]
    run dpo b --ref_logps ref.sws
    assert_success
    assert_output --partial "reference log-probs of 24 records read from ref.sws"
    refute_output --partial "reference pass"
    run dpo c
    assert_success
    losses a/logging.jsonl >a.txt
    losses b/logging.jsonl >b.txt
    losses c/logging.jsonl >c.txt
    [ "$(wc -l <a.txt)" -eq 12 ]
    cmp a.txt b.txt
    cmp a.txt c.txt
    # another dataset is refused
    gen 24 5 >other.jsonl
    pack other.jsonl train.sws
    run dpo d --ref_logps ref.sws
    assert_failure
    assert_output --partial "ref.sws: made for another dataset"
}

@test "bad input is named: KTO rows for dpo, a pair without a rejected answer, SFT data" {
    gen 8 6 >val.jsonl
    pack val.jsonl val.sws
    pack "$F/kto.jsonl" train.sws
    run dpo out
    assert_failure
    assert_output --partial "the stream holds kto data, but --rlhf_type dpo/cpo/simpo/orpo"
    assert_output --partial "(use --rlhf_type kto)"
    # a pair without a rejected answer is stopped where it enters, naming file and line
    printf '{"prompt": "a", "chosen": "b", "rejected": "c"}\n{"prompt": "d", "chosen": "e"}\n' >bad.jsonl
    run "$BIN/sw-pack" --tokenizer "$M" --dataset bad.jsonl --output bad.sws -q
    assert_failure
    assert_output --partial "bad.jsonl:2: field 'rejected': missing"
    printf '{"query": "hi", "response": "hello"}\n' >sft.jsonl
    pack sft.jsonl train.sws
    run dpo out
    assert_failure
    assert_output --partial "the stream holds sft data, but --rlhf_type dpo/cpo/simpo/orpo"
    run "$BIN/sw-train" --model "$M" --rlhf_type ppo --dataset train.sws
    assert_failure
}
