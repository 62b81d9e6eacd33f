#!/usr/bin/env bats
# The README's first command, shrunk: the same pipeline (pack -> pre-train -> LoRA SFT -> generate)
# with a handful of steps, so every stage and its outputs are checked on each test run.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup() {
    ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
    QS="$BATS_TEST_TMPDIR/qs"
}

@test "quickstart pipeline runs end to end and writes every artifact" {
    run make -C "$ROOT" --no-print-directory ${SW_MAKEFLAGS:-} quickstart QS="$QS" \
        QS_PT_STEPS=4 QS_SFT_STEPS=2
    assert_success
    assert_output --partial "== 5/5 generate"
    assert_output --partial "outputs:"
    # The step banners come in their numbered order.
    [ "$(grep -o '^== [0-9]/5' <<< "$output" | cut -c4 | tr -d '\n')" = "12345" ]
    # It says what a 3.7M-parameter model's answer will look like before showing it.
    assert_output --partial "What to expect: a 3.7M-parameter model"
    # sw-train's own checkpoint carries the tokenizer (no copy step in the recipe).
    refute_output --partial "cp data/tokenizers"
    [ -s "$QS/pt-train.sws" ] && [ -s "$QS/pt-val.sws" ] && [ -s "$QS/sft-train.sws" ]
    [ -s "$QS/pretrain/checkpoint-4/config.json" ]
    [ -s "$QS/pretrain/checkpoint-4/model.safetensors" ]
    [ -s "$QS/pretrain/checkpoint-4/tokenizer.json.gz" ]
    [ -s "$QS/sft-lora/checkpoint-2/adapter_config.json" ]
    [ -s "$QS/sft-lora/checkpoint-2/adapter_model.safetensors" ]
    grep -q '"eval_loss"' "$QS/pretrain/logging.jsonl"
    grep -q '"eval_loss"' "$QS/sft-lora/logging.jsonl"
    [ -s "$QS/pretrain/checkpoint-4/generation_config.json" ]
    [ -s "$QS/pretrain/images/train_loss.svg" ]
}
