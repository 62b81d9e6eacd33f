#!/usr/bin/env bash
# eval_bench.sh — speed of sw-eval bench, two measurements (docs/bench.md "sw-eval bench"):
#
#   bench/eval_bench.sh mmlu MODEL_DIR MMLU_DIR OUT [sw-eval bench options...]
#       All of MMLU 5-shot (every subject found in MMLU_DIR/test, 14,042 questions for the full
#       set) with sw-eval bench, wall time and questions/s; then, when `python3 -c "import lm_eval"`
#       works, the same with lm-evaluation-harness's HF backend (`--model hf`, bf16 on cuda when
#       torch sees a GPU, batch size LM_EVAL_BATCH or auto) and both accuracies side by side.
#       Options after OUT go to sw-eval (e.g. --device cuda --batch_tokens 65536).
#
#   bench/eval_bench.sh farm MODEL_DIR MMLU_DIR OUT ["1 2 4"] [sw-eval options...]
#       The eval farm's scaling on this machine: for each worker count N, one `sw-eval farm` on an
#       ipc:// endpoint and N `sw-eval worker` processes (OMP_NUM_THREADS=1 each), wall time;
#       checks that every N gives the same report.json.
#
# SW_EVAL (default: bin/sw-eval) picks the binary. MODEL_DIR is an HF folder (config.json,
# model.safetensors, tokenizer.json). Output: a Markdown table on stdout, logs in OUT/.
set -euo pipefail
mode=${1:?usage: eval_bench.sh mmlu|farm MODEL_DIR MMLU_DIR OUT ...}
model=${2:?MODEL_DIR}
data=${3:?MMLU_DIR (with dev/ and test/)}
out=${4:?OUT}
shift 4
EVAL=${SW_EVAL:-bin/sw-eval}
mkdir -p "$out"
now() { date +%s.%N; }

case "$mode" in
mmlu)
    rm -f "$out/sw/cache.jsonl"
    t0=$(now)
    "$EVAL" bench --model "$model" --eval_dataset mmlu --dataset_dir "$data" --num_fewshot 5 \
        --eval_output_dir "$out/sw" "$@" > "$out/sw.md" 2> "$out/sw.log"
    t1=$(now)
    n=$(python3 -c "import json;print(json.load(open('$out/sw/report.json'))['tasks']['mmlu']['n'])")
    acc=$(python3 -c "import json;print('%.4f'%json.load(open('$out/sw/report.json'))['tasks']['mmlu']['acc'])")
    sw_s=$(python3 -c "print('%.1f'%($t1-$t0))")
    echo "| system | questions | wall s | questions/s | acc |"
    echo "|---|---:|---:|---:|---:|"
    echo "| sw-eval bench $* | $n | $sw_s | $(python3 -c "print('%.1f'%($n/($t1-$t0)))") | $acc |"
    if python3 -c "import lm_eval" 2>/dev/null; then
        # lm-eval reads MMLU from the hub; point it at the local CSVs through task YAMLs that
        # include its own mmlu template (test/golden/eval/gen_eval.py does the same).
        y="$out/lm_eval_tasks"
        mkdir -p "$y"
        python3 - "$data" "$y" <<'EOF'
import csv, glob, json, os, sys, yaml, lm_eval
data, y = sys.argv[1], sys.argv[2]
T = os.path.join(os.path.dirname(lm_eval.__file__), "tasks", "mmlu", "default")
names = []
for p in sorted(glob.glob(os.path.join(data, "test", "*_test.csv"))):
    s = os.path.basename(p)[:-9]
    files = {}
    for split in ("dev", "test"):
        rows = list(csv.reader(open(os.path.join(data, split, f"{s}_{split}.csv"), newline="", encoding="utf-8")))
        if rows and rows[0] == ["question", "choice0", "choice1", "choice2", "choice3", "answer"]:
            docs = [{"question": r[0], "choices": r[1:5], "answer": int(r[5])} for r in rows[1:]]
        else:
            docs = [{"question": r[0], "choices": r[1:5], "answer": "ABCD".index(r[5].strip())} for r in rows]
        files[split] = os.path.join(y, f"{s}_{split}.jsonl")
        with open(files[split], "w", encoding="utf-8") as f:
            for d in docs: f.write(json.dumps(d, ensure_ascii=False) + "\n")
    desc = yaml.safe_load(open(os.path.join(T, f"mmlu_{s}.yaml")))["description"]
    yaml.safe_dump({"include": os.path.join(T, "_default_template_yaml"), "task": f"local_mmlu_{s}",
                    "dataset_path": "json", "dataset_name": None,
                    "dataset_kwargs": {"data_files": files}, "description": desc},
                   open(os.path.join(y, f"local_mmlu_{s}.yaml"), "w"), allow_unicode=True)
    names.append(f"local_mmlu_{s}")
open(os.path.join(y, "tasks.txt"), "w").write(",".join(names))
EOF
        dev=$(python3 -c "import torch;print('cuda' if torch.cuda.is_available() else 'cpu')")
        dtype=$([ "$dev" = cuda ] && echo bfloat16 || echo float32)
        t0=$(now)
        python3 -m lm_eval --model hf --model_args "pretrained=$model,dtype=$dtype" \
            --tasks "$(cat "$y/tasks.txt")" --include_path "$y" --num_fewshot 5 --device "$dev" \
            --batch_size "${LM_EVAL_BATCH:-auto}" --output_path "$out/lm_eval" > "$out/lm_eval.log" 2>&1
        t1=$(now)
        lacc=$(python3 - "$out/lm_eval" <<'EOF'
import glob, json, sys
f = sorted(glob.glob(sys.argv[1] + "/**/results_*.json", recursive=True))[-1]
r = json.load(open(f))
num = sum(v["acc,none"] * r["n-samples"][k]["effective"] for k, v in r["results"].items() if k.startswith("local_mmlu_"))
den = sum(r["n-samples"][k]["effective"] for k in r["results"] if k.startswith("local_mmlu_"))
print("%.4f" % (num / den))
EOF
)
        echo "| lm-eval $(python3 -c 'import lm_eval;print(lm_eval.__version__)') --model hf ($dev, $dtype) | $n | $(python3 -c "print('%.1f'%($t1-$t0))") | $(python3 -c "print('%.1f'%($n/($t1-$t0)))") | $lacc |"
    else
        echo "(lm-eval not installed here: no side-by-side row)"
    fi
    ;;
farm)
    counts=${1:-"1 2 4"}
    [ $# -gt 0 ] && shift
    echo "| workers | wall s | speed-up | report = 1 worker's |"
    echo "|---:|---:|---:|---|"
    base=""
    for n in $counts; do
        o="$out/farm$n"
        rm -rf "$o"
        ep="ipc://$out/farm$n.sock"
        pids=()
        t0=$(now)
        for i in $(seq "$n"); do
            OMP_NUM_THREADS=1 "$EVAL" worker -q --connect "$ep" --model "$model" "$@" &
            pids+=($!)
        done
        "$EVAL" farm -q --bind "$ep" --eval_dataset mmlu --dataset_dir "$data" --num_fewshot 5 \
            --eval_output_dir "$o" > "$o.md" 2> "$o.log"
        t1=$(now)
        wait "${pids[@]}"
        s=$(python3 -c "print('%.1f'%($t1-$t0))")
        [ -z "$base" ] && base=$s
        same=$(python3 -c "
import json
a=json.load(open('$out/farm${counts%% *}/report.json'))['tasks']
b=json.load(open('$o/report.json'))['tasks']
print('yes' if a==b else 'NO')")
        echo "| $n | $s | $(python3 -c "print('%.2f'%($base/$s))") | $same |"
    done
    ;;
*)
    echo "eval_bench.sh: unknown mode '$mode' (mmlu or farm)" >&2
    exit 2
    ;;
esac
