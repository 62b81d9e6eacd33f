#!/usr/bin/env bash
# bench/gpu_suite.sh — training speed on one GPU: sw-train --device cuda against PyTorch +
# transformers (+ PEFT for LoRA) on the same configurations, row by row, the two sides back to
# back. Qwen2.5 shapes (tied embeddings, q/k/v biases, vocab 151936) from random init; random
# token ids, labels = ids, each row of a batch one causal sequence; bf16 GEMMs with float32
# master weights, AdamW (weight decay 0.1, betas 0.9/0.95), clipping at 1.0.
#
#   bench/gpu_suite.sh [OUTDIR]             run the rows; OUTDIR/results.jsonl, table.md, logs/
#   bench/gpu_suite.sh --table RESULTS.jsonl  print the table of a results file
#   bench/gpu_suite.sh --list               the rows
#
# Rows (ROWS selects, in order; default "a b c d e f g attn"):
#   a  0.5B  8 x 1024  full            e  0.5B  4 x 2048  full
#   b  0.5B  8 x 1024  full, gradient checkpointing
#   c  0.5B  8 x 1024  LoRA r 8 alpha 32, dropout 0, q,k,v,o,gate,up,down, base frozen
#   d  0.5B  8 x 1024  LoRA + gradient checkpointing
#   f  1.5B  4 x 2048  full            g  1.5B  4 x 2048  LoRA
#   h  1.5B  4 x 2048  full, gradient checkpointing (not in the default list)
#   attn  PyTorch SDPA causal fwd/bwd alone at 8 x 1024, 14/2 heads of 64 (attn.jsonl)
#   t, u  a tiny model (hidden 64, 2 layers, vocab 1000), 2 x 32, full / LoRA + GC: checks the
#         script itself; with DEVICE=cpu both sides run on the CPU (sw built without CUDA)
#
# Environment: ROWS, STEPS (timed steps, 10), WARMUP (untimed first steps, 3), SIDES ("sw torch"),
# SW_TRAIN (build/cuda/bin/sw-train), PYTHON (python3), RUN_TIMEOUT (s per run, 300), WORK
# (data, configs, LoRA base models, run folders; default /dev/shm/sw-gpu-suite when it has 24 GB
# free, else /tmp/sw-gpu-suite), PEAK_TFLOPS (989, H100 SXM dense bf16), DEVICE (cuda), DRY_RUN=1
# (write the configs and data, print the commands, run nothing). Relative paths are the
# caller's; SW_TRAIN's default is the repository's build/cuda/bin/sw-train. `.devlib/` of the
# repository goes on LD_LIBRARY_PATH when present (bundled shared libraries, docs/bench.md).
#
# sw: tokens/s = median of logging.jsonl's per-step tokens_per_sec (--logging_steps 1) over the
# steps after WARMUP; step ms = median of the per-step `elapsed` differences; peak = the
# "memory peak: device" line. PyTorch: bench/torch_train_bench.py, B*T / median step time,
# torch.cuda.max_memory_allocated (and _reserved). MFU: the same FLOP count on both sides
# (bench/torch_train_bench.py's flops_per_token: full 6N + 6·L·Hq·D·T, LoRA 4N + 6·N_lora +
# 6·L·Hq·D·T; N = matmul parameters incl. the LM head; recomputation not counted).
set -u -o pipefail
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; } # paths are the caller's
[ "${1:-}" = --table ] && [ -n "${2:-}" ] && set -- --table "$(abs "$2")"
[ -n "${1:-}" ] && [ "${1#-}" = "$1" ] && set -- "$(abs "$1")"
[ -n "${SW_TRAIN:-}" ] && SW_TRAIN=$(abs "$SW_TRAIN")
[ -n "${WORK:-}" ] && WORK=$(abs "$WORK")
cd "$(dirname "$0")/.." || exit 1
PY=${PYTHON:-python3}
SUITE_PY=bench/torch_train_bench.py

die() { echo "gpu_suite: $*" >&2; exit 1; }

row_spec() { # id -> "shape B T mode gc"
    case $1 in
    a) echo "0.5b 8 1024 full 0" ;;
    b) echo "0.5b 8 1024 full 1" ;;
    c) echo "0.5b 8 1024 lora 0" ;;
    d) echo "0.5b 8 1024 lora 1" ;;
    e) echo "0.5b 4 2048 full 0" ;;
    f) echo "1.5b 4 2048 full 0" ;;
    g) echo "1.5b 4 2048 lora 0" ;;
    h) echo "1.5b 4 2048 full 1" ;;
    attn) echo "0.5b 8 1024 attn 0" ;;
    t) echo "tiny 2 32 full 0" ;; # smoke tests of the script itself (DEVICE=cpu works)
    u) echo "tiny 2 32 lora 1" ;;
    *) return 1 ;;
    esac
}

# The Python half: one row of sw results from its logging.jsonl + log, and the table.
summarize() {
    "$PY" - "$@" <<'EOF'
import json, os, re, statistics, sys
sys.path.insert(0, "bench")
import torch_train_bench as ttb

def sw_row(argv):
    row, shape, B, T, mode, gc, rc, logging, log, device, warmup, steps, peak, wall = argv
    B, T, rc, warmup, steps = int(B), int(T), int(rc), int(warmup), int(steps)
    s = ttb.SHAPES[shape]
    fpt, formula = ttb.flops_per_token(s, T, mode)
    res = {"side": "sw", "row": row, "shape": shape, **s, "mode": mode, "gc": gc == "1",
           "B": B, "T": T, "dtype": "fp32" if device == "cpu" else "bf16",
           "steps": steps, "warmup": warmup,
           "flops_per_token": fpt, "flops": formula, "wall_s": float(wall), "status": "ok"}
    text = open(log, errors="replace").read() if os.path.exists(log) else ""
    m = re.search(r"memory peak: device ([0-9.]+) (GiB|MiB)", text)
    if m:
        res["peak_device_gib"] = float(m.group(1)) / (1024 if m.group(2) == "MiB" else 1)
    m = re.search(r"activations ([0-9.]+) (GiB|MiB) in the scratch arena", text)
    if m:
        res["scratch_gib"] = float(m.group(1)) / (1024 if m.group(2) == "MiB" else 1)
    lines = [l for l in text.splitlines() if l.strip()]
    if rc != 0:
        oom = "out of device memory" in text or "out of memory" in text
        res["status"] = "oom" if oom else "timeout" if rc in (124, 137) else "error"
        err = [l for l in lines if "error" in l.lower() or "memory" in l.lower()]
        res["error"] = ((err or lines or ["exit status %d" % rc])[-1])[:300]
        return res
    rows = []
    if os.path.exists(logging):
        rows = [json.loads(l) for l in open(logging) if l.strip()]
    rows = {r["step"]: r for r in rows if "tokens_per_sec" in r}
    timed = [k for k in sorted(rows) if k > warmup]
    if not timed or warmup not in rows and warmup > 0:
        res.update(status="error", error="logging.jsonl has no steps after the warm-up")
        return res
    el = {k: rows[k]["elapsed"] for k in rows}
    el.setdefault(0, 0.0)
    dur = [el[k] - el[k - 1] for k in timed if k - 1 in el]
    tps = statistics.median(rows[k]["tokens_per_sec"] for k in timed)
    res.update(tokens_per_s=tps, tokens_per_s_mean=B * T * len(dur) / sum(dur),
               step_ms=statistics.median(dur) * 1e3, step_ms_min=min(dur) * 1e3,
               step_ms_max=max(dur) * 1e3, mfu=tps * fpt / (float(peak) * 1e12),
               loss_first=rows[min(rows)]["loss"], loss_last=rows[max(rows)]["loss"],
               timed_steps=len(timed))
    return res

def cell(r, key, fmt, scale=1):
    if r is None:
        return "—"
    if r.get("status") != "ok":
        st = r.get("status")
        return {"oom": "OOM", "timeout": "timeout", "skipped": "skipped"}.get(st, "error")
    v = r.get(key)
    return fmt % (v * scale) if v is not None else "—"

def table(path):
    res = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
    order, by = [], {}
    for r in res:
        if r.get("bench") == "attn":
            continue
        if r["row"] not in by:
            order.append(r["row"])
            by[r["row"]] = {}
        by[r["row"]][r["side"]] = r
    out = ["| row | model | tokens/step | tuner | sw tokens/s | PyTorch tokens/s | sw/PyTorch "
           "| sw step ms | PyTorch step ms | sw MFU | PyTorch MFU | sw peak GiB "
           "| PyTorch peak GiB (alloc / reserved) |",
           "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in order:
        sw, pt = by[row].get("sw"), by[row].get("torch")
        any_ = sw or pt
        tuner = ("LoRA r 8" if any_["mode"] == "lora" else "full") + (" + GC" if any_["gc"] else "")
        ratio = "—"
        if sw and pt and sw.get("status") == "ok" and pt.get("status") == "ok":
            ratio = "**%.2f**" % (sw["tokens_per_s"] / pt["tokens_per_s"])
        ptpeak = cell(pt, "peak_alloc_gib", "%.1f")
        if pt and pt.get("status") == "ok" and pt.get("peak_reserved_gib") is not None:
            ptpeak += " / %.1f" % pt["peak_reserved_gib"]
        out.append("| %s | %s | %d × %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            row, any_["shape"].upper(), any_["B"], any_["T"], tuner,
            cell(sw, "tokens_per_s", "%.0f"), cell(pt, "tokens_per_s", "%.0f"), ratio,
            cell(sw, "step_ms", "%.1f"), cell(pt, "step_ms", "%.1f"),
            cell(sw, "mfu", "%.1f%%", 100), cell(pt, "mfu", "%.1f%%", 100),
            cell(sw, "peak_device_gib", "%.1f"), ptpeak))
    notes = ["%s %s: %s" % (r["row"], r["side"], r.get("error", r["status"])) for r in res
             if r.get("bench") != "attn" and r.get("status") != "ok"]
    attn = [r for r in res if r.get("bench") == "attn"]
    if attn:
        out += ["", "| SDPA (PyTorch) | GQA | fwd ms | bwd ms | fwd TFLOP/s | bwd TFLOP/s |",
                "|---|---|---:|---:|---:|---:|"]
        for r in attn:
            if r.get("status") == "ok":
                out.append("| %s | %s | %.3f | %.3f | %.0f | %.0f |" % (
                    r["backend"], r["gqa"], r["fwd_ms"], r["bwd_ms"], r["fwd_tflops"],
                    r["bwd_tflops"]))
            else:
                out.append("| %s | %s | %s | | | |" % (r["backend"], r["gqa"], r["status"]))
    if notes:
        out += [""] + ["* " + n for n in notes]
    print("\n".join(out))

if sys.argv[1] == "sw":
    print(json.dumps(sw_row(sys.argv[2:])))
elif sys.argv[1] == "fail":  # side row shape B T mode gc status error
    side, row, shape, B, T, mode, gc, status, err = sys.argv[2:]
    print(json.dumps({"side": side, "row": row, "shape": shape, "mode": mode, "gc": gc == "1",
                      "B": int(B), "T": int(T), "status": status, "error": err[:300]}))
else:
    table(sys.argv[2])
EOF
}

case ${1:-} in
--table)
    [ -f "${2:-}" ] || die "--table needs a results.jsonl file"
    summarize table "$2"
    exit ;;
--list)
    for r in a b c d e f g h attn t u; do echo "$r: $(row_spec $r)  (shape B T tuner gc)"; done
    exit ;;
-h | --help)
    sed -n '2,/^set -u/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit ;;
-*) die "unknown option '$1' (--table FILE, --list, --help)" ;;
esac

OUT=${1:-out/gpu_suite}
ROWS=${ROWS:-a b c d e f g attn}
STEPS=${STEPS:-10}
WARMUP=${WARMUP:-3}
SIDES=${SIDES:-sw torch}
SW_TRAIN=${SW_TRAIN:-$PWD/build/cuda/bin/sw-train}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
PEAK_TFLOPS=${PEAK_TFLOPS:-989}
DEVICE=${DEVICE:-cuda}
DRY=${DRY_RUN:-}

for v in STEPS WARMUP RUN_TIMEOUT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
[ "$STEPS" -ge 1 ] || die "STEPS must be at least 1"
for r in $ROWS; do row_spec "$r" >/dev/null || die "unknown row '$r' in ROWS (see --list)"; done
for s in $SIDES; do
    [ "$s" = sw ] || [ "$s" = torch ] || die "SIDES: 'sw' and/or 'torch', not '$s'"
done
has_side() { [[ " $SIDES " == *" $1 "* ]]; }
command -v "$PY" >/dev/null || die "no $PY (set PYTHON)"
command -v timeout >/dev/null || die "no timeout(1)"
[ -d .devlib ] && export LD_LIBRARY_PATH=$PWD/.devlib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

if [ -z "${WORK:-}" ]; then
    WORK=/tmp/sw-gpu-suite
    avail=$(df -P -B1G /dev/shm 2>/dev/null | awk 'NR == 2 {print $4}')
    [ "${avail:-0}" -ge 24 ] && WORK=/dev/shm/sw-gpu-suite
fi
mkdir -p "$OUT/logs" "$WORK" || die "cannot create $OUT or $WORK"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
: >"$OUT/attn.jsonl"

# ---- checks ------------------------------------------------------------------------------
SW_ENV=(SW_PROGRESS=0)
SW_PREC=()
if has_side sw && [ -z "$DRY" ]; then
    [ -x "$SW_TRAIN" ] || die "no sw-train at $SW_TRAIN (build with make CUDA=1; set SW_TRAIN)"
    "$SW_TRAIN" --version >/dev/null 2>&1 ||
        die "$SW_TRAIN does not start: $("$SW_TRAIN" --version 2>&1 | head -1) (LD_LIBRARY_PATH?)"
fi
sw_help=$([ -x "$SW_TRAIN" ] && "$SW_TRAIN" --help 2>&1)
if [ "$DEVICE" = cpu ]; then
    : # float32: sw's CPU backend has no bf16 GEMMs (smoke tests only)
elif [[ $sw_help == *--torch_dtype* ]]; then
    SW_PREC=(--torch_dtype bfloat16)
else
    SW_ENV+=(SW_CUDA_MATMUL=bf16)
fi
# One Python start (imports take ~10 s): the versions, and whether the PyTorch side can run.
TORCH_VERSIONS=$("$PY" - "$DEVICE" 2>"$OUT/logs/torch-check.log" <<'EOF2'
import sys
import torch, transformers
v = "torch %s transformers %s" % (torch.__version__, transformers.__version__)
try:
    import peft
    v += " peft " + peft.__version__
except ImportError:
    v += " (no peft: LoRA rows fail on the PyTorch side)"
print(v)
assert sys.argv[1] != "cuda" or torch.cuda.is_available(), "torch sees no CUDA device"
EOF2
) || { has_side torch && [ -z "$DRY" ] &&
    die "PyTorch side unusable: $(tail -1 "$OUT/logs/torch-check.log") (SIDES=sw to skip it)"; }
{
    echo "date: $(date -u +%FT%TZ)   git: $(git rev-parse --short HEAD 2>/dev/null || echo ?)"
    echo "rows: $ROWS   steps: $STEPS after $WARMUP warm-up   sides: $SIDES   work: $WORK"
    echo "sw: $SW_TRAIN ${SW_PREC[*]} ${SW_ENV[*]}"
    command -v nvidia-smi >/dev/null && nvidia-smi --format=csv,noheader \
        --query-gpu=name,memory.total,clocks.max.sm,power.limit,driver_version
    echo "$TORCH_VERSIONS"
} | tee "$OUT/env.txt"

# ---- inputs: configs, data, LoRA base models ----------------------------------------------
exec 3>&2 # the terminal's stderr, for run's echo inside redirected calls
run() { # print, then run unless DRY_RUN
    echo "+ $*" >&3
    [ -n "$DRY" ] || "$@"
}
config_of() { echo "$WORK/config-$1.json"; }
data_of() { echo "$WORK/data-$1x$2.sws"; }
declare -A written=()
for r in $ROWS; do
    read -r shape B T mode gc <<<"$(row_spec "$r")"
    [ "$mode" = attn ] && continue
    cfg=$(config_of "$shape") data=$(data_of "$B" "$T")
    [ -s "$cfg" ] || "$PY" "$SUITE_PY" --shape "$shape" --write-config "$cfg" ||
        die "cannot write $cfg"
    # one record per step (the token ids PyTorch's side uses too), written once per invocation
    if [ -z "${written[$data]:-}" ]; then
        "$PY" "$SUITE_PY" --shape "$shape" --batch "$B" --seq "$T" --write-sws "$data" \
            --records $((WARMUP + STEPS)) || die "cannot write $data"
        written[$data]=1
    fi
done

# LoRA adapts a model: sw-train --max_steps 0 writes the random init as checkpoint-0 (once).
base_of() { # shape data
    local shape=$1 dir=$WORK/base-$1
    if [ ! -s "$dir/checkpoint-0/model.safetensors" ]; then
        rm -rf "$dir"
        run env "${SW_ENV[@]}" timeout "$RUN_TIMEOUT" "$SW_TRAIN" --device cpu --tuner_type full \
            --init_from_config "$(config_of "$shape")" --dataset "$2" \
            --max_steps 0 --save_only_model --add_version false --output_dir "$dir" \
            >"$OUT/logs/base-$shape.log" 2>&1 ||
            return 1
    fi
    echo "$dir/checkpoint-0"
}

# ---- the runs --------------------------------------------------------------------------------
sw_side() { # id shape B T mode gc
    local id=$1 shape=$2 B=$3 T=$4 mode=$5 gc=$6 out=$WORK/sw-$1 log=$OUT/logs/sw-$1.log
    local args=(--device "$DEVICE" "${SW_PREC[@]}" --tuner_type "$mode"
        --dataset "$(data_of "$B" "$T")"
        --max_steps $((WARMUP + STEPS)) --logging_steps 1 --learning_rate 1e-4
        --save_steps 1000000 --save_only_model --add_version false --output_dir "$out")
    [ "$gc" = 1 ] && args+=(--gradient_checkpointing true)
    if [ "$mode" = lora ]; then
        local base
        if ! base=$(base_of "$shape" "$(data_of "$B" "$T")"); then
            summarize fail sw "$id" "$shape" "$B" "$T" "$mode" "$gc" error \
                "could not write the LoRA base model: $(tail -1 "$OUT/logs/base-$shape.log")" |
                tee -a "$RESULTS"
            return
        fi
        args+=(--model "$base" --lora_rank 8 --lora_alpha 32 --lora_dropout 0
            --target_modules all-linear)
    else
        args+=(--init_from_config "$(config_of "$shape")")
    fi
    rm -rf "$out"
    local t0=$SECONDS rc=0
    run env "${SW_ENV[@]}" timeout "$RUN_TIMEOUT" "$SW_TRAIN" "${args[@]}" >"$log" 2>&1 || rc=$?
    [ -n "$DRY" ] && return
    cp "$out/logging.jsonl" "$OUT/logs/sw-$id.logging.jsonl" 2>/dev/null
    summarize sw "$id" "$shape" "$B" "$T" "$mode" "$gc" "$rc" "$out/logging.jsonl" "$log" \
        "$DEVICE" "$WARMUP" "$STEPS" "$PEAK_TFLOPS" $((SECONDS - t0)) | tee -a "$RESULTS"
    rm -rf "$out" # the final checkpoint: GBs we do not need
}

torch_side() { # id shape B T mode gc
    local id=$1 shape=$2 B=$3 T=$4 mode=$5 gc=$6 rc=0 t0=$SECONDS
    local args=(--shape "$shape" --batch "$B" --seq "$T" --steps "$STEPS" --warmup "$WARMUP"
        --row "$id" --peak-tflops "$PEAK_TFLOPS" --device "$DEVICE")
    if [ "$mode" = attn ]; then
        args+=(--attn-only)
    else
        args+=(--mode "$mode")
        [ "$gc" = 1 ] && args+=(--gc)
    fi
    run timeout "$RUN_TIMEOUT" "$PY" "$SUITE_PY" "${args[@]}" >"$OUT/logs/torch-$id.jsonl" \
        2>"$OUT/logs/torch-$id.log" || rc=$?
    [ -n "$DRY" ] && return
    if [ "$mode" = attn ]; then
        grep '^{' "$OUT/logs/torch-$id.jsonl" | tee -a "$OUT/attn.jsonl" >>"$RESULTS"
        summarize table "$OUT/attn.jsonl" | sed -n '/SDPA/,$p'
        return
    fi
    local line
    line=$(grep '^{' "$OUT/logs/torch-$id.jsonl" | tail -1)
    if [ -z "$line" ]; then # crashed or timed out before printing its row
        local status=error
        [ "$rc" = 124 ] || [ "$rc" = 137 ] && status=timeout
        line=$(summarize fail torch "$id" "$shape" "$B" "$T" "$mode" "$gc" "$status" \
            "exit $rc: $(tail -1 "$OUT/logs/torch-$id.log")")
    fi
    echo "${line%\}}, \"wall_s\": $((SECONDS - t0))}" | tee -a "$RESULTS"
}

for r in $ROWS; do
    read -r shape B T mode gc <<<"$(row_spec "$r")"
    echo "== row $r: $shape, $B x $T, $mode$([ "$gc" = 1 ] && echo ', gradient checkpointing')" \
        "(at ${SECONDS}s)" >&2
    if [ "$mode" != attn ] && has_side sw; then sw_side "$r" "$shape" "$B" "$T" "$mode" "$gc"; fi
    if has_side torch; then torch_side "$r" "$shape" "$B" "$T" "$mode" "$gc"; fi
done

[ -n "$DRY" ] && exit 0
echo
summarize table "$RESULTS" | tee "$OUT/table.md"
echo "results: $RESULTS, $OUT/table.md, logs in $OUT/logs; ${SECONDS}s in all" >&2
