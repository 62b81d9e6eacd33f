#!/usr/bin/env bash
# quant_decode_bench — CPU decode speed of a quantized base (int8 per channel, int4 g128, NF4,
# FP8) against float32 on one random model, and the bytes per parameter each holds.
#
# The model: a random Qwen2 (hidden 1024, intermediate 2816, 8 layers, 8 heads / 4 kv heads,
# 93 M linear parameters) with the 320-token tokenizer of test/golden/generate/model, so the
# decoder's linears are almost all of the weights (what quantization shrinks). sw-train writes
# it (--max_steps 0), sw-quant quantize writes the quantized folders, and sw-eval generate
# decodes --new tokens greedily after a short prompt, batch 1; the figure is new tokens over
# the wall time of the run minus the wall time of a run with one new token (load + prefill),
# best of --reps. Usage: bench/quant_decode_bench.sh [BIN] [new tokens, 128] [reps, 3]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${1:-$ROOT/bin}"
NEW="${2:-128}"
REPS="${3:-3}"
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
cat > "$W/cfg.json" <<'EOF'
{"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 320,
 "hidden_size": 1024, "intermediate_size": 2816, "num_hidden_layers": 8, "num_attention_heads": 8,
 "num_key_value_heads": 4, "max_position_embeddings": 512, "rms_norm_eps": 1e-06,
 "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": true, "bos_token_id": 1,
 "eos_token_id": 2, "torch_dtype": "float32"}
EOF
"$BIN/sw-train" -q --init_from_config "$W/cfg.json" --tuner_type full --max_steps 0 \
    --add_version false --output_dir "$W/m" --report_to none
F="$W/m/checkpoint-0"
cp "$ROOT/test/golden/generate/model/tokenizer.json" "$ROOT/test/golden/generate/model/tokenizer_config.json" "$F/"
# No EOS: every run decodes exactly --new tokens.
printf '{"eos_token_id": [], "do_sample": false}\n' > "$F/generation_config.json"
"$BIN/sw-quant" quantize -q --model "$F" --quant_method rtn --quant_bits 8 --group_size -1 --output_dir "$W/int8"
"$BIN/sw-quant" quantize -q --model "$F" --quant_method rtn --quant_bits 4 --group_size 128 --output_dir "$W/int4"
"$BIN/sw-quant" quantize -q --model "$F" --quant_method nf4 --quant_bits 4 --output_dir "$W/nf4"
"$BIN/sw-quant" quantize -q --model "$F" --quant_method fp8 --quant_bits 8 --output_dir "$W/fp8"

run_s() { # folder new_tokens -> best wall seconds of REPS runs
    local best=""
    for _ in $(seq "$REPS"); do
        local t0 t1
        t0=$(date +%s.%N)
        "$BIN/sw-eval" generate -q --model "$1" --prompt "The quick brown fox" \
            --max_new_tokens "$2" --json > /dev/null
        t1=$(date +%s.%N)
        best=$(python3 -c "import sys; a=float(sys.argv[1]); b=sys.argv[2]; print(min(a, float(b)) if b else a)" "$(echo "$t1 - $t0" | bc)" "$best")
    done
    echo "$best"
}

printf '%-8s %12s %10s\n' format "decode tok/s" "speedup"
base=""
for d in "$F" "$W/int8" "$W/int4" "$W/nf4" "$W/fp8"; do
    full=$(run_s "$d" "$NEW")
    one=$(run_s "$d" 1)
    tps=$(python3 -c "import sys; print('%.1f' % ((int(sys.argv[3]) - 1) / (float(sys.argv[1]) - float(sys.argv[2]))))" "$full" "$one" "$NEW")
    [ -z "$base" ] && base="$tps"
    name=$(basename "$d"); [ "$d" = "$F" ] && name=f32
    printf '%-8s %12s %9.2fx\n' "$name" "$tps" "$(python3 -c "import sys; print(float(sys.argv[1]) / float(sys.argv[2]))" "$tps" "$base")"
done
