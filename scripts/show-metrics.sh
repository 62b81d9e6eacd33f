#!/usr/bin/env bash
# Prints a table of a training run's logging.jsonl: step, train loss, eval loss, tokens/s.
# usage: scripts/show-metrics.sh OUTPUT_DIR | RUN_FOLDER | FILE.jsonl
# An output_dir of runs made with sw-train's default --add_version true holds one
# vN-YYYYMMDD-HHMMSS/ folder per run: the newest run's logging.jsonl is shown.
set -eu
arg=${1:?usage: scripts/show-metrics.sh OUTPUT_DIR | RUN_FOLDER | FILE.jsonl}
file=$arg
if [ -d "$arg" ]; then
    if [ -f "$arg/logging.jsonl" ]; then
        file=$arg/logging.jsonl
    else
        # The highest vN (numerically, as sw-train numbers them) that has a log.
        run=$(for d in "$arg"/v[0-9]*; do
                  [ -f "$d/logging.jsonl" ] || continue
                  n=${d##*/v}; echo "${n%%[!0-9]*} $d"
              done | sort -n | tail -1 | cut -d' ' -f2-)
        if [ -z "$run" ]; then
            echo "show-metrics: no logging.jsonl in '$arg' or its vN-* run folders" >&2
            exit 1
        fi
        echo "run: $run"
        file=$run/logging.jsonl
    fi
fi
awk '
function field(line, key,    m) {
    if (match(line, "\"" key "\":[-0-9.eE+]+")) { m = substr(line, RSTART, RLENGTH); sub(/^[^:]*:/, "", m); return m }
    return ""
}
BEGIN { printf "%6s  %10s  %10s  %10s\n", "step", "loss", "eval_loss", "tokens/s" }
{
    s = field($0, "step"); l = field($0, "loss"); e = field($0, "eval_loss"); t = field($0, "tokens_per_sec")
    if (e != "") printf "%6s  %10s  %10.4f  %10s\n", s, "", e, ""
    else if (l != "") printf "%6s  %10.4f  %10s  %10.0f\n", s, l, "", t
}' "$file"
