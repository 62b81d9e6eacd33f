#!/usr/bin/env bash
# sw-fetch against huggingface_hub's snapshot_download on loopback, both fetching from the mock
# hub (test/hub/mock_hub.py) into a fresh cache every run: many small files (plain git files:
# one GET each for sw-fetch, HEAD + GET for huggingface_hub) and one multi-GB LFS file (302 to
# the CDN port, then the bytes). Reports the median wall time of each, and — to show the Python
# mock is not what limits them — the time a plain `curl` takes for the same files to /dev/null
# (8 parallel transfers for the small files, like both clients' 8 workers).
#
#   bench/fetch_bench.sh
#
# Environment: SW_BIN (folder of sw-fetch, default bin/), NSMALL (1000), BIG_MB (2048), RUNS (5,
# small files), BIG_RUNS (3), BENCH_DIR (where the temporary repos and caches go, default /tmp;
# needs 3 x BIG_MB free). The generated files are deleted at the end. Each timed run starts after
# `sync`, so dirty pages of the previous run (huggingface_hub does not fsync; sw-fetch does
# before each rename) are not charged to the next one. huggingface_hub is timed twice: the whole
# `python3 -c` process (what a user waits for) and snapshot_download alone (without the ~1 s
# import). Needs python3 and huggingface_hub (`pip install huggingface_hub`); curl optional.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SW_BIN:-bin}
NSMALL=${NSMALL:-1000}
BIG_MB=${BIG_MB:-2048}
RUNS=${RUNS:-5}
BIG_RUNS=${BIG_RUNS:-3}
[ -x "$BIN/sw-fetch" ] || make -j"$(nproc)" "$BIN/sw-fetch" >&2
python3 -c 'import huggingface_hub' 2>/dev/null || { echo "fetch_bench: needs huggingface_hub (pip install huggingface_hub)" >&2; exit 1; }
TMP=$(mktemp -d "${BENCH_DIR:-/tmp}/sw-fetch-bench.XXXXXX")
MOCK_PID=
cleanup() { [ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "versions: $("$BIN/sw-fetch" --version), huggingface_hub $(python3 -c 'import huggingface_hub as h; print(h.__version__)'), $(curl --version 2>/dev/null | head -1 | cut -d' ' -f1-2)"

# ---- the repos ----
python3 - "$TMP/repos/models/bench/many" "$NSMALL" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
r = random.Random(7)
for i in range(n):
    p = f"{root}/d{i // 100:02d}/f{i:05d}.json"
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(r.randbytes(r.randint(1024, 16384)))
EOF
mkdir -p "$TMP/repos/models/bench/big"
head -c $((BIG_MB << 20)) /dev/urandom > "$TMP/repos/models/bench/big/model.safetensors"
SMALL_BYTES=$(du -sb "$TMP/repos/models/bench/many" | cut -f1)
BIG_BYTES=$((BIG_MB << 20))

MOCK_PID=$(python3 test/hub/hubtool.py start "$TMP/repos" "$TMP/port.json" "$TMP/mock.log" $$)
PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$TMP/port.json")
export HF_ENDPOINT="http://127.0.0.1:$PORT" SW_PROGRESS=0 HF_HUB_DISABLE_PROGRESS_BARS=1 \
       HF_HUB_DISABLE_TELEMETRY=1
unset HF_TOKEN HF_HUB_OFFLINE
# The mock hashes files on first listing: do it before any timing.
python3 - "$HF_ENDPOINT" "$TMP" <<'EOF'
import json, sys, urllib.request
ep, tmp = sys.argv[1], sys.argv[2]
for repo in ("bench/many", "bench/big"):
    d = json.load(urllib.request.urlopen(f"{ep}/api/models/{repo}/revision/main?blobs=true"))
    with open(f"{tmp}/{repo.split('/')[1]}.curl", "w") as f:
        for s in d["siblings"]:
            f.write(f'url = "{ep}/{repo}/resolve/{d["sha"]}/{s["rfilename"]}"\noutput = "/dev/null"\n')
EOF

now() { date +%s.%N; }
# CPU seconds (user + system) of the timed command, through GNU time when it is installed: on a
# shared machine the CPU a tool burns is steadier than its wall time.
cpu_run() {
    if [ -x /usr/bin/time ]; then /usr/bin/time -f %U+%S -o "$TMP/cpu" "$@"; else : > "$TMP/cpu"; "$@"; fi
}
cpu_of() { if [ -s "$TMP/cpu" ]; then tail -1 "$TMP/cpu" | awk -F+ '{print $1 + $2}'; else echo nan; fi; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# $1 = repo, $2 = runs; fills $TMP/<repo>.{sw,hf,hfin}
measure() {
    local repo=$1 runs=$2 name=${1#bench/} t0 t1
    : > "$TMP/$name.sw"; : > "$TMP/$name.hf"; : > "$TMP/$name.hfin"; : > "$TMP/$name.swcpu"; : > "$TMP/$name.hfcpu"
    for i in $(seq 0 "$runs"); do # run 0 warms up (page cache, connections) and is not counted
        rm -rf "$TMP/cache-sw" "$TMP/cache-hf"; sync
        t0=$(now)
        HF_HOME="$TMP/cache-sw" cpu_run "$BIN/sw-fetch" -q "$repo" > "$TMP/sw.out"
        t1=$(now)
        if [ "$i" -gt 0 ]; then
            elapsed "$t0" "$t1" >> "$TMP/$name.sw"
            cpu_of >> "$TMP/$name.swcpu"
        fi
        rm -rf "$TMP/cache-sw"; sync
        t0=$(now)
        HF_HOME="$TMP/cache-hf" cpu_run python3 -c '
import sys, time
from huggingface_hub import snapshot_download
t = time.perf_counter(); p = snapshot_download(sys.argv[1]); t = time.perf_counter() - t
print(p); print(t, file=sys.stderr)' "$repo" > "$TMP/hf.out" 2> "$TMP/hf.in"
        t1=$(now)
        if [ "$i" -gt 0 ]; then
            elapsed "$t0" "$t1" >> "$TMP/$name.hf"
            tail -1 "$TMP/hf.in" >> "$TMP/$name.hfin"
            cpu_of >> "$TMP/$name.hfcpu"
        fi
    done
    # Same files from both (checked on the last run's caches).
    HF_HOME="$TMP/cache-sw" "$BIN/sw-fetch" -q "$repo" > "$TMP/sw.out"
    (cd "$(cat "$TMP/sw.out")" && find -L . -type f -printf '%P %s\n' | sort) > "$TMP/a"
    (cd "$(cat "$TMP/hf.out")" && find -L . -type f -printf '%P %s\n' | sort) > "$TMP/b"
    cmp -s "$TMP/a" "$TMP/b" || { echo "fetch_bench: $repo: the two caches differ" >&2; exit 1; }
    rm -rf "$TMP/cache-sw" "$TMP/cache-hf"
}

curl_time() { # $1 = repo short name, $2 = parallel transfers; median of 3
    command -v curl > /dev/null || { echo "n/a"; return; }
    local t0 t1
    for _ in 1 2 3; do
        t0=$(now)
        curl -s --no-progress-meter -L -Z --parallel-max "$2" -K "$TMP/$1.curl" 2>/dev/null
        t1=$(now)
        elapsed "$t0" "$t1"
    done | median
}

measure bench/many "$RUNS"
measure bench/big "$BIG_RUNS"
CURL_MANY=$(curl_time many 8)
CURL_BIG=$(curl_time big 1)

row() { # name files bytes curl
    local sw hf hfin swc hfc
    sw=$(median < "$TMP/$1.sw"); hf=$(median < "$TMP/$1.hf"); hfin=$(median < "$TMP/$1.hfin")
    swc=$(median < "$TMP/$1.swcpu"); hfc=$(median < "$TMP/$1.hfcpu")
    awk -v n="$1" -v f="$2" -v b="$3" -v sw="$sw" -v hf="$hf" -v hfin="$hfin" -v c="$4" \
        -v swc="$swc" -v hfc="$hfc" 'BEGIN {
        printf "| %s | %d | %.1f MB | %.2f s (%.0f MB/s) | %.2f s (%.0f MB/s) | %.2f s | %.2fx | %.2f s | %.2f s | %s |\n",
            n, f, b / 1e6, sw, b / 1e6 / sw, hf, b / 1e6 / hf, hfin, hf / sw, swc, hfc,
            (c == "n/a" ? c : sprintf("%.2f s", c)) }'
}
echo
echo "medians of $RUNS runs (small files) and $BIG_RUNS runs (big file), fresh cache each run; load now $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| repo | files | bytes | sw-fetch | huggingface_hub (process) | snapshot_download alone | hf / sw | sw-fetch CPU | huggingface_hub CPU | curl to /dev/null |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
row many "$NSMALL" "$SMALL_BYTES" "$CURL_MANY"
row big 1 "$BIG_BYTES" "$CURL_BIG"
echo
echo "raw seconds: sw-fetch many: $(tr '\n' ' ' < "$TMP/many.sw")| hf many: $(tr '\n' ' ' < "$TMP/many.hf")| sw-fetch big: $(tr '\n' ' ' < "$TMP/big.sw")| hf big: $(tr '\n' ' ' < "$TMP/big.hf")"
