#!/usr/bin/env bash
# Runs each libFuzzer target for a bounded time: scripts/run-fuzz.sh SECONDS BIN...
# Seeds come from test/fuzz/corpus/<name>/ (name = binary name without "fuzz_"); new inputs
# found go to build/fuzz/corpus/<name>/ so the committed corpus stays small. A crash fails.
set -u
secs=$1; shift
status=0
for bin in "$@"; do
    name=$(basename "$bin"); name=${name#fuzz_}
    work=build/fuzz/corpus/$name; mkdir -p "$work" build/fuzz/crashes
    seeds=test/fuzz/corpus/$name; [ -d "$seeds" ] || seeds=
    echo "fuzz: $name for ${secs}s" >&2
    if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix=build/fuzz/crashes/"$name"- "$work" $seeds > "build/fuzz/$name.log" 2>&1; then
        echo "fuzz: $name FAILED (see build/fuzz/$name.log and build/fuzz/crashes/)" >&2
        tail -30 "build/fuzz/$name.log" >&2
        status=1
    else
        grep -E '^Done [0-9]+ runs' "build/fuzz/$name.log" | sed "s/^/fuzz: $name: /" >&2
    fi
done
exit $status
