#!/usr/bin/env bash
# bench/cpu_train_bench.sh — training-step speed on the CPU, sw-train against PyTorch side by side.
#
# One ~23M-parameter Qwen3-shaped model (hidden 256, 8 layers, 4 heads / 2 kv heads of 64,
# intermediate 768, vocab 32000, untied LM head; bench/torch_cpu_train_bench.py has the details),
# float32, AdamW, gradient clipping at 1.0, the same random batches of B=4 rows × T=256 tokens
# (labels = input_ids) on both sides, full fine-tuning and LoRA (r 8, alpha 32, dropout 0, all
# linear layers).
# sw runs through sw-train (timing from the per-step `elapsed` of its logging.jsonl, logging_steps
# 1); PyTorch through transformers (+ PEFT) with torch.set_num_threads(THREADS). Each side is
# timed over STEPS steps after WARMUP warm-up steps; the table shows median / min / max seconds
# per step, tokens/s at the median, and PyTorch's median over sw's (> 1: sw is faster).
#
#   bench/cpu_train_bench.sh                 # STEPS=8 WARMUP=2 THREADS=2 REPEAT=1
#   STEPS=12 REPEAT=2 bench/cpu_train_bench.sh
#   MODES=lora bench/cpu_train_bench.sh
#   taskset -c 0,1 bench/cpu_train_bench.sh  # two cores of a larger machine
#
# Needs python3 with torch, transformers and peft. Results go to stdout (one JSON line
# per run, then the table); nothing is written in the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-8}
WARMUP=${WARMUP:-2}
THREADS=${THREADS:-2}
REPEAT=${REPEAT:-1}
MODES=${MODES:-"full lora"}
PY=${PYTHON:-python3}

[ -n "${NO_BUILD:-}" ] || make -j2 bin/sw-train >/dev/null   # NO_BUILD=1: use bin/ as it is
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PY" bench/torch_cpu_train_bench.py config "$work/config.json"
"$PY" bench/torch_cpu_train_bench.py data "$work/train.sws" $((STEPS + WARMUP))

# Median / min / max of the per-step durations after the warm-up, from logging.jsonl.
sw_times() { # $1 = logging.jsonl, $2 = mode
    "$PY" - "$1" "$2" "$WARMUP" "$THREADS" <<'EOF'
import json, statistics, sys
path, mode, warm, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rows = [json.loads(l) for l in open(path) if l.strip()]
rows = [r for r in rows if "loss" in r and "elapsed" in r]
el = [r["elapsed"] for r in rows]
dur = [b - a for a, b in zip(el, el[1:])][max(warm - 1, 0):]
med = statistics.median(dur)
print(json.dumps({"side": "sw", "mode": mode, "threads": threads, "steps": len(dur),
                  "median_s": med, "min_s": min(dur), "max_s": max(dur),
                  "tokens_per_s": 4 * 256 / med, "first_loss": rows[0]["loss"]}))
EOF
}

# LoRA adapts a pretrained model: sw-train --max_steps 0 writes the random initial model as an
# HF folder (checkpoint-0) that the LoRA runs load.
SW_PROGRESS=0 bin/sw-train -q --init_from_config "$work/config.json" --tuner_type full \
    --dataset "$work/train.sws" --max_steps 0 --add_version false --output_dir "$work/base"
base="$work/base/checkpoint-0"

results="$work/results.jsonl"
for rep in $(seq "$REPEAT"); do
    for mode in $MODES; do
        out="$work/sw-$mode-$rep"
        SW_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS SW_PROGRESS=0 bin/sw-train -q \
            $([ "$mode" = full ] && echo --init_from_config "$work/config.json" || echo --model "$base") \
            --tuner_type "$mode" \
            --lora_rank 8 --lora_alpha 32 --lora_dropout 0 --target_modules all-linear \
            --weight_decay 0.1 \
            --dataset "$work/train.sws" --max_steps $((STEPS + WARMUP)) --logging_steps 1 \
            --save_steps 1000000 --save_only_model --add_version false --output_dir "$out"
        sw_times "$out/logging.jsonl" "$mode" | tee -a "$results"
        rm -rf "$out"
        THREADS=$THREADS "$PY" bench/torch_cpu_train_bench.py run "$mode" "$STEPS" "$WARMUP" \
            2>/dev/null | tee -a "$results"
    done
done

"$PY" - "$results" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print()
print("| mode | side | threads | median s/step | min | max | tokens/s | PyTorch/sw |")
print("|---|---|---|---|---|---|---|---|")
for mode in ("full", "lora"):
    got = {s: [r for r in rows if r["mode"] == mode and r["side"] == s] for s in ("sw", "pytorch")}
    if not got["sw"] or not got["pytorch"]:
        continue
    med = {s: statistics.median(r["median_s"] for r in got[s]) for s in got}
    for s in ("sw", "pytorch"):
        r = got[s]
        print("| %s | %s | %d | %.3f | %.3f | %.3f | %.0f | %s |" % (
            mode, s, r[0]["threads"], med[s], min(x["min_s"] for x in r),
            max(x["max_s"] for x in r), 1024 / med[s],
            "%.2f" % (med["pytorch"] / med["sw"]) if s == "sw" else ""))
EOF
