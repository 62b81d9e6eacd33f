#!/usr/bin/env bash
# bench/gpu_round.sh — one GPU-machine round in one call: unpack the carried binaries, run every
# CUDA test binary, then the training-speed rows of bench/gpu_suite.sh with this tree's sw-train
# and, when a baseline binary was carried, with the baseline's (same machine, same call, rows
# interleaved per side), and optional extra commands. Results land in $OUT (or OUTDIR).
#
#   bench/gpu_round.sh                 (on the GPU machine, from the repository root)
#
# Carried (see docs/cuda.md "Running on the GPU machine"): .devcarry/round.tar.xz holding
#   build/cuda/bin/sw-*, build/cuda/test/cuda/test_cuda_*, build/cuda/bench/gpu_*  (this tree)
#   base/sw-train                                                                    (optional)
#   .devlib/                                                   (bundled shared libraries)
# Environment: ROWS (gpu_suite rows, "a c"), STEPS (8), WARMUP (3), TESTS (1 = run the CUDA
# tests; TEST_BINS picks them, TEST_TIMEOUT caps each, 300 s), EXTRA (a command run last).
set -u -o pipefail
cd "$(dirname "$0")/.." || exit 1
OUTDIR=${OUT:-${OUTDIR:-out/gpu-round}}
mkdir -p "$OUTDIR"
[ -f .devcarry/round.tar.xz ] && tar -xJf .devcarry/round.tar.xz
export LD_LIBRARY_PATH=$PWD/.devlib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUTDIR/gpu.txt"
git log --oneline -1 2>/dev/null | tee -a "$OUTDIR/gpu.txt"

if [ "${TESTS:-1}" = 1 ]; then
    for t in ${TEST_BINS:-build/cuda/test/cuda/test_cuda_*}; do
        [ -x "$t" ] || continue
        n=$(basename "$t")
        start=$(date +%s)
        timeout "${TEST_TIMEOUT:-300}" "$t" > "$OUTDIR/$n.tap" 2>&1
        rc=$?
        ok=$(grep -c '^ok ' "$OUTDIR/$n.tap"); bad=$(grep -c '^not ok ' "$OUTDIR/$n.tap")
        echo "$n: $ok ok, $bad not ok, exit $rc, $(( $(date +%s) - start )) s" | tee -a "$OUTDIR/tests.txt"
    done
    cat "$OUTDIR"/test_cuda_*.tap > "$OUTDIR/tests.tap" 2>/dev/null
    rm -f "$OUTDIR"/test_cuda_*.tap
fi

if [ -n "${ROWS-a c}" ]; then
    for side in new base; do
        bin=build/cuda/bin/sw-train
        [ $side = base ] && bin=base/sw-train
        [ -x "$bin" ] || continue
        SIDES=sw ROWS="${ROWS-a c}" STEPS=${STEPS:-8} WARMUP=${WARMUP:-3} SW_TRAIN=$bin \
            bench/gpu_suite.sh "$OUTDIR/suite-$side" > "$OUTDIR/suite-$side.log" 2>&1
        echo "== $side ($bin)" >> "$OUTDIR/suite.md"
        cat "$OUTDIR/suite-$side/table.md" >> "$OUTDIR/suite.md" 2>/dev/null
    done
    cat "$OUTDIR/suite.md"
fi

if [ -n "${EXTRA:-}" ]; then
    bash -c "$EXTRA" > "$OUTDIR/extra.log" 2>&1
    tail -40 "$OUTDIR/extra.log"
fi
# The device tool returns at most 8 files: the suite folders and logs travel as one archive.
(cd "$OUTDIR" && ls -d suite-* >/dev/null 2>&1 && tar -czf suite.tar.gz suite-* && rm -rf suite-*)
ls "$OUTDIR"
