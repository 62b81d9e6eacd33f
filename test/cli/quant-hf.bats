#!/usr/bin/env bats
# sw-quant quantize: round-to-nearest HF folders. GPTQ packed int32 (4-bit g128 sym and asym,
# 8-bit per channel), compressed-tensors FP8 (per channel, per tensor) and bitsandbytes NF4
# (double quantization) exports of random
# models from test/golden/quant/make_model.py; config.json's quantization_config; the tensor
# set (qweight/qzeros/scales/g_idx, weight + weight_scale); errors (group size that does not
# divide, unknown method, existing output) leave nothing behind. When numpy is importable,
# check_hf.py unpacks every weight the way the reference code does (AutoGPTQ/GPTQModel v1
# unpacking; compressed-tensors' weight * weight_scale; bitsandbytes' dequantize_4bit with the
# stored NF4 and dynamic maps) and compares with the original weights.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup_file() {
    export ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
    export QUANT="${SW_BIN:-$ROOT/bin}/sw-quant"
    export GQ="$ROOT/test/golden/quant"
    export T="$BATS_FILE_TMPDIR"
    python3 "$GQ/make_model.py" "$T/qwen2" --arch qwen2
    python3 "$GQ/make_model.py" "$T/llama" --arch llama --dtype bf16 --layers 1
    python3 "$GQ/make_model.py" "$T/odd" --arch qwen2 --hidden 288 --inter 320 --layers 1
    if python3 -c 'import numpy' 2>/dev/null; then export HAVE_NP=1; fi
}

qc() { python3 -c "import json,sys; print(json.load(open(sys.argv[1] + '/config.json'))['quantization_config'][sys.argv[2]])" "$@"; }

@test "quantize rtn 4-bit: GPTQ layout, quantization_config, tensors" {
    run "$QUANT" quantize --model "$T/qwen2" --quant_method rtn --quant_bits 4 --group_size 128 --output_dir "$T/g4"
    assert_success
    assert_output --partial "14 linear weights quantized (rtn, 4 bits), 13 tensors kept"
    run qc "$T/g4" quant_method
    assert_output gptq
    run qc "$T/g4" checkpoint_format
    assert_output gptq
    run "$QUANT" inspect "$T/g4"
    assert_output --regexp "layers\.0\.self_attn\.q_proj\.qweight +I32 +\[32, 256\]"
    assert_output --regexp "layers\.1\.mlp\.down_proj\.qzeros +I32 +\[4, 32\]"
    assert_output --regexp "layers\.1\.mlp\.down_proj\.scales +F16 +\[4, 256\]"
    assert_output --regexp "layers\.1\.mlp\.down_proj\.g_idx +I32 +\[512\]"
    assert_output --partial "model.layers.0.self_attn.q_proj.bias"
    [ -e "$T/g4/tokenizer.json" ] && [ -e "$T/g4/tokenizer_config.json" ]
    run bash -c "ls '$T' | grep -c tmp"
    assert_output 0
}

@test "quantize: the reference layouts unpack to the original weights (GPTQ v1, compressed-tensors FP8)" {
    [ -n "${HAVE_NP:-}" ] || skip "numpy not installed"
    "$QUANT" quantize -q --model "$T/qwen2" --quant_method rtn --quant_bits 4 --output_dir "$T/c4" --force
    "$QUANT" quantize -q --model "$T/qwen2" --quant_method rtn --quant_bits 4 --sym false --output_dir "$T/c4a" --force
    "$QUANT" quantize -q --model "$T/qwen2" --quant_method rtn --quant_bits 8 --group_size -1 --output_dir "$T/c8" --force
    "$QUANT" quantize -q --model "$T/llama" --quant_method rtn --quant_bits 4 --group_size 64 --output_dir "$T/c4l" --force
    "$QUANT" quantize -q --model "$T/qwen2" --quant_method fp8 --quant_bits 8 --output_dir "$T/f8" --force
    "$QUANT" quantize -q --model "$T/llama" --quant_method fp8 --quant_bits 8 --fp8_scale tensor --output_dir "$T/f8t" --force
    run python3 "$GQ/check_hf.py" gptq "$T/c4" "$T/qwen2" 0.25
    assert_success
    run python3 "$GQ/check_hf.py" gptq "$T/c4a" "$T/qwen2" 0.16
    assert_success
    run python3 "$GQ/check_hf.py" gptq "$T/c8" "$T/qwen2" 0.02
    assert_success
    run python3 "$GQ/check_hf.py" gptq "$T/c4l" "$T/llama" 0.2
    assert_success
    run python3 "$GQ/check_hf.py" fp8 "$T/f8" "$T/qwen2" 0.05
    assert_success
    assert_output --partial "ok fp8: 14 weights"
    run python3 "$GQ/check_hf.py" fp8 "$T/f8t" "$T/llama" 0.1
    assert_success
    "$QUANT" quantize -q --model "$T/qwen2" --quant_method nf4 --quant_bits 4 --output_dir "$T/n4" --force
    "$QUANT" quantize -q --model "$T/llama" --quant_method nf4 --quant_bits 4 --output_dir "$T/n4l" --force
    run python3 "$GQ/check_hf.py" nf4 "$T/n4" "$T/qwen2" 0.15
    assert_success
    assert_output --partial "ok nf4: 14 weights"
    run python3 "$GQ/check_hf.py" nf4 "$T/n4l" "$T/llama" 0.15
    assert_success
}

@test "quantize: bad input is one line naming the tensor; nothing is written" {
    run "$QUANT" quantize --model "$T/odd" --quant_method rtn --quant_bits 4 --output_dir "$T/x"
    assert_failure
    assert_output --partial "tensor 'model.layers.0.self_attn.q_proj.weight': rows of 288 are not divisible by the group size 128"
    [ ! -e "$T/x" ]
    run "$QUANT" quantize --model "$T/qwen2" --quant_method fp8 --quant_bits 4 --output_dir "$T/x"
    assert_failure 2
    assert_output --partial "fp8 needs --quant_bits 8"
    run "$QUANT" quantize --model "$T/qwen2" --quant_method nf4 --quant_bits 8 --output_dir "$T/x"
    assert_failure 2
    assert_output --partial "nf4 needs --quant_bits 4"
    run "$QUANT" quantize --model "$T/qwen2" --quant_method hqq --output_dir "$T/x"
    assert_failure 2
    run "$QUANT" quantize --model "$T/qwen2" --quant_method rtn --quant_bits 4 --output_dir "$T/g4"
    assert_failure
    assert_output --partial "exists (use --force to replace it)"
    run bash -c "ls '$T' | grep -c tmp"
    assert_output 0
}
