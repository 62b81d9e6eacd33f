#!/usr/bin/env bash
# Prints a table of a training run's logging.jsonl: step, train loss, eval loss, tokens/s.
# usage: scripts/show-metrics.sh OUTPUT_DIR/logging.jsonl
set -eu
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
}' "$1"
