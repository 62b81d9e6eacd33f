#!/usr/bin/env bats
# sw-quant quantize --quant_method gptq|awq: calibrated quantization of a random Qwen2 model
# (test/golden/quant/make_model.py) from a small sw-pack stream of Tiny Shakespeare, or the
# built-in calibration text. The folders are read back through numpy transcriptions of the
# reference unpacking (GPTQModel/AutoGPTQ v1, AutoAWQ's dequantize_gemm: check_calib.py, which
# also checks config, tensor set, shapes and dtypes) and through sw's own reader (sw-quant
# dequant --model: identical weights), and sw-eval's logits on held-out text are
# closer to the float model's for GPTQ and AWQ than for round-to-nearest at the same bits and
# group size. Bad input (no or too little calibration data, a group size that does not divide,
# unsupported bits) is one line naming the option or tensor, and nothing is written.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup_file() {
    export ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
    export BIN="${SW_BIN:-$ROOT/bin}"
    export QUANT="$BIN/sw-quant"
    export GQ="$ROOT/test/golden/quant"
    export T="$BATS_FILE_TMPDIR"
    python3 "$GQ/make_model.py" "$T/m" --arch qwen2
    python3 "$GQ/make_model.py" "$T/odd" --arch qwen2 --hidden 288 --inter 320 --layers 1
    "$BIN/sw-pack" --tokenizer "$T/m" -q --dataset "$ROOT/data/tinyshakespeare/tinyshakespeare.jsonl.gz#40" \
        --max_length 160 --output "$T/calib.sws"
    if python3 -c 'import numpy' 2>/dev/null; then export HAVE_NP=1; fi
}

qc() { python3 -c "import json,sys; print(json.load(open(sys.argv[1] + '/config.json'))['quantization_config'][sys.argv[2]])" "$@"; }

@test "gptq 4-bit g128: GPTQ layout and quantization_config, error below round-to-nearest" {
    run "$QUANT" quantize --model "$T/m" --quant_method gptq --quant_bits 4 --dataset "$T/calib.sws" \
        --calib_rows 16 --output_dir "$T/g4"
    assert_success
    assert_output --partial "calibrating on 16 rows"
    assert_output --partial "14 linear weights quantized (gptq, 4 bits, 16 calibration rows"
    # the summed calibration output error of GPTQ against round-to-nearest's
    ratio=$(echo "$output" | sed -n 's/.*round-to-nearest [0-9.e+-]* (\([0-9.]*\) x).*/\1/p')
    python3 -c "import sys; sys.exit(0 if float('$ratio') < 0.5 else 1)"
    run qc "$T/g4" quant_method
    assert_output gptq
    run qc "$T/g4" desc_act
    assert_output False
    run qc "$T/g4" checkpoint_format
    assert_output gptq
    run "$QUANT" inspect "$T/g4"
    assert_output --regexp "layers\.0\.self_attn\.q_proj\.qweight +I32 +\[32, 256\]"
    assert_output --regexp "layers\.1\.mlp\.down_proj\.g_idx +I32 +\[512\]"
    [ -e "$T/g4/tokenizer.json" ]
    run bash -c "ls '$T' | grep -c tmp"
    assert_output 0
}

@test "gptq act-order and 8-bit per-channel, awq: the reference unpacking reads them" {
    [ -n "${HAVE_NP:-}" ] || skip "numpy not installed"
    "$QUANT" quantize -q --model "$T/m" --quant_method gptq --desc_act true --group_size 64 \
        --dataset "$T/calib.sws" --calib_rows 8 --output_dir "$T/g4a"
    run qc "$T/g4a" desc_act
    assert_output True
    run python3 "$GQ/check_calib.py" unpack "$T/g4a" "$T/m" "$T/g4a.f"
    assert_success
    assert_output --partial "ok gptq: 14 linears unpacked"
    "$QUANT" quantize -q --model "$T/m" --quant_method gptq --quant_bits 8 --group_size -1 \
        --sym false --dataset "$T/calib.sws" --calib_rows 8 --output_dir "$T/g8"
    run python3 "$GQ/check_calib.py" unpack "$T/g8" "$T/m" "$T/g8.f"
    assert_success
    run "$QUANT" quantize --model "$T/m" --quant_method awq --quant_bits 4 --dataset "$T/calib.sws" \
        --calib_rows 8 --output_dir "$T/a4"
    assert_success
    assert_output --partial "14 linear weights quantized (awq, 4 bits"
    run qc "$T/a4" version
    assert_output gemm
    run "$QUANT" inspect "$T/a4"
    assert_output --regexp "layers\.0\.mlp\.up_proj\.qweight +I32 +\[256, 64\]"
    assert_output --regexp "layers\.0\.mlp\.up_proj\.qzeros +I32 +\[2, 64\]"
    assert_output --regexp "layers\.0\.mlp\.up_proj\.scales +F16 +\[2, 512\]"
    run python3 "$GQ/check_calib.py" unpack "$T/a4" "$T/m" "$T/a4.f"
    assert_success
    assert_output --partial "ok awq: 14 linears unpacked, 4 scaled tensors"
    # sw's own reader of quantized folders gives exactly the reference unpacking
    for x in g4a g8 a4; do
        "$QUANT" dequant -q --model "$T/$x" --output_dir "$T/$x.sw"
        run python3 "$GQ/check_calib.py" same "$T/$x.sw" "$T/$x.f"
        assert_success
    done
}

@test "held-out logits: gptq and awq closer to the float model than round-to-nearest" {
    [ -n "${HAVE_NP:-}" ] || skip "numpy not installed"
    [ -d "$T/g4" ] && [ -d "$T/a4.f" ] || skip "needs the folders of the tests above"
    "$QUANT" quantize -q --model "$T/m" --quant_method rtn --quant_bits 4 --output_dir "$T/r4"
    python3 "$GQ/check_calib.py" unpack "$T/g4" "$T/m" "$T/g4.f"
    python3 "$GQ/check_calib.py" unpack "$T/r4" "$T/m" "$T/r4.f"
    # held-out text: speeches far from the calibration sample, 16 rows of 40 tokens
    zcat "$ROOT/data/tinyshakespeare/tinyshakespeare.jsonl.gz" | sed -n '6001,6200p' |
        "$BIN/sw-pack" tokenize --tokenizer "$T/m" > "$T/held.jsonl"
    python3 - "$T/held.jsonl" "$T/in.safetensors" <<'EOF'
import json, struct, sys
import numpy as np
rows = [json.loads(l)["ids"] for l in open(sys.argv[1])]
a = np.array([r[:40] for r in rows if len(r) >= 40][:16], np.int64)
h = json.dumps({"input_ids": {"dtype": "I64", "shape": list(a.shape), "data_offsets": [0, a.nbytes]}}).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(h)) + h + a.tobytes())
EOF
    for x in m g4.f a4.f r4.f; do
        "$BIN/sw-eval" logits -q --model "$T/$x" --input "$T/in.safetensors" --output "$T/$x.lg"
    done
    run python3 "$GQ/check_calib.py" closer "$T/m.lg" "$T/g4.f.lg" "$T/r4.f.lg"
    echo "$output"
    assert_success
    run python3 "$GQ/check_calib.py" closer "$T/m.lg" "$T/a4.f.lg" "$T/r4.f.lg"
    echo "$output"
    assert_success
}

@test "gptq without --dataset calibrates on the built-in text" {
    run "$QUANT" quantize --model "$T/m" --quant_method gptq --calib_rows 4 --max_length 64 \
        --output_dir "$T/gd"
    assert_success
    assert_output --partial "calibrating on 4 rows"
    assert_output --partial "(built-in text)"
}

@test "bad input: one line naming the option or tensor; nothing is written" {
    run "$QUANT" quantize --model "$T/m" --quant_method gptq --dataset "$T/calib.sws" \
        --calib_rows 500 --output_dir "$T/x"
    assert_failure
    assert_output --partial "calib.sws: only"
    assert_output --partial "calibration rows, --calib_rows asks for 500"
    [ ! -e "$T/x" ]
    # a stream without calibration rows
    "$BIN/sw-pack" --tokenizer "$T/m" -q --dataset "$ROOT/data/tinyshakespeare/tinyshakespeare.jsonl.gz#4" \
        --max_length 2 --output "$T/empty.sws" || true
    if [ -e "$T/empty.sws" ]; then
        run "$QUANT" quantize --model "$T/m" --quant_method awq --dataset "$T/empty.sws" --output_dir "$T/x"
        assert_failure
        assert_output --partial "only 0 calibration rows"
    fi
    run "$QUANT" quantize --model "$T/m" --quant_method gptq --dataset "$T/nope.sws" --output_dir "$T/x"
    assert_failure
    assert_output --partial "nope.sws"
    run "$QUANT" quantize --model "$T/odd" --quant_method gptq --dataset "$T/calib.sws" --output_dir "$T/x"
    assert_failure
    assert_output --partial "tensor 'model.layers.0.self_attn.q_proj.weight': rows of 288 are not divisible by the group size 128"
    run "$QUANT" quantize --model "$T/m" --quant_method awq --quant_bits 8 --output_dir "$T/x"
    assert_failure 2
    assert_output --partial "awq supports --quant_bits 4 only"
    run "$QUANT" quantize --model "$T/m" --quant_method gptq --quant_bits 5 --output_dir "$T/x"
    assert_failure 2
    assert_output --partial "gptq needs --quant_bits 4 or 8"
    run "$QUANT" quantize --model "$T/m" --quant_method awq --group_size -1 --output_dir "$T/x"
    assert_failure 2
    assert_output --partial "--group_size must be positive for awq"
    [ ! -e "$T/x" ]
    run bash -c "ls '$T' | grep -c tmp"
    assert_output 0
}

@test "imatrix: llama-imatrix's GGUF format under llama.cpp's names; gguf --imatrix lowers the weighted error" {
    run "$QUANT" imatrix --model "$T/m" --dataset "$T/calib.sws" --calib_rows 16 --output "$T/im.gguf"
    assert_success
    assert_output --partial "wrote $T/im.gguf: 14 entries from 16 rows"
    run "$QUANT" inspect "$T/im.gguf"
    assert_output --partial 'general.type (str) = "imatrix"'
    assert_output --partial "imatrix.chunk_count (u32) = 16"
    assert_output --regexp "blk\.0\.attn_q\.weight\.in_sum2 +F32 +\[1, 256\]"
    assert_output --regexp "blk\.1\.ffn_down\.weight\.in_sum2 +F32 +\[1, 512\]"
    assert_output --regexp "blk\.1\.attn_output\.weight\.counts +F32 +\[1, 1\]"
    run "$QUANT" gguf --model "$T/m" --quant_type q4_k_m --imatrix "$T/im.gguf" --output "$T/qi.gguf"
    assert_success
    assert_output --partial "importance weights used for 14 K-quant tensors"
    run "$QUANT" imatrix --model "$T/m" --dataset "$T/calib.sws" --calib_rows 500 --output "$T/im2.gguf"
    assert_failure
    assert_output --partial "--calib_rows asks for 500"
    [ ! -e "$T/im2.gguf" ]
    python3 -c 'import gguf, numpy' 2>/dev/null || skip "gguf-py or numpy not installed"
    "$QUANT" gguf -q --model "$T/m" --quant_type q4_k_m --output "$T/qn.gguf"
    "$QUANT" dequant "$T/qi.gguf" --output "$T/qi.st"
    "$QUANT" dequant "$T/qn.gguf" --output "$T/qn.st"
    run python3 "$GQ/check_calib.py" imatrix "$T/m" "$T/im.gguf" "$T/qi.st" "$T/qn.st"
    echo "$output"
    assert_success
}
