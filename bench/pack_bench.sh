#!/usr/bin/env bash
# sw-pack throughput: all of Stanford Alpaca (52,002 rows) with the Qwen3 tokenizer, max_length
# 2048, packing on, written to a file. Prints the machine, the exact command, wall and CPU time,
# and sw-pack's own summary (rows/s, tokens/s, packing efficiency); bench/NOTES.md records runs.
#
#   bench/pack_bench.sh [ALPACA_JSON_GZ] [extra sw-pack options...]
#
# ALPACA defaults to ../shared/data/alpaca_en/alpaca_data.json.gz (the workplace copy; the repo
# only bundles a 2,000-row sample, data/alpaca_en/alpaca_sample.jsonl.gz, which also works).
# Runs 3 times after a warm-up and reports each run; SW_NUM_THREADS caps the threads.
set -euo pipefail
cd "$(dirname "$0")/.."
ALPACA=${1:-../shared/data/alpaca_en/alpaca_data.json.gz}
shift || true
[ -x bin/sw-pack ] || make -j"$(nproc)" bin/sw-pack >&2
OUTDIR=$(mktemp -d)
trap 'rm -rf "$OUTDIR"' EXIT
CMD=(bin/sw-pack --tokenizer data/tokenizers/qwen3 --dataset "$ALPACA" --max_length 2048
     --packing --output "$OUTDIR/alpaca.sws" --stats "$OUTDIR/stats.json" "$@")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: ${CMD[*]}"
"${CMD[@]}" -q  # warm-up (page cache)
for i in 1 2 3; do
    /usr/bin/time -f "run $i: wall %e s, user %U s, sys %S s, max RSS %M KB" "${CMD[@]}" -q
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); t=s["train"]
print("  rows %d, tokens %d, %.0f rows/s, %.0f tokens/s, %d sequences, efficiency %.4f" % (
    t["rows_out"], t["tokens"], s["rows_per_second"], s["tokens_per_second"], t["sequences"],
    t["packing_efficiency"]))' "$OUTDIR/stats.json"
done
