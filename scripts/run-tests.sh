#!/usr/bin/env bash
# Runs every unit-test binary given as arguments and every bats file under test/cli/, each
# producing TAP, and prints per-suite results and the closing line "N passed, N failed".
# SW_ONLY=unit|cli restricts the run; SW_TEST_FILTER=regex filters bats test names.
set -u
cd "$(dirname "$0")/.."
passed=0 failed=0 skipped=0
logdir=build/test-logs
mkdir -p "$logdir"

count() { # $1 = TAP log, $2 = suite name, $3 = exit status
    local p f s
    p=$(grep -cE '^ok [0-9]+' "$1" | tr -d ' ')
    s=$(grep -cE '^ok [0-9]+.*# ?[Ss][Kk][Ii][Pp]' "$1" | tr -d ' ')
    f=$(grep -cE '^not ok [0-9]+' "$1" | tr -d ' ')
    p=$((p - s))
    # A crash or a non-zero exit with no failing line still counts as one failure.
    if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "  $2: exited with status $3" >&2; fi
    if [ "$f" -gt 0 ]; then
        grep -E -A6 '^not ok' "$1" | sed 's/^/    /'
        printf '  FAIL %-28s %4d passed, %d failed\n' "$2" "$p" "$f"
    else
        printf '  ok   %-28s %4d passed%s\n' "$2" "$p" "$([ "$s" -gt 0 ] && echo ", $s skipped")"
    fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}

if [ "${SW_ONLY:-unit}" = unit ] || [ -z "${SW_ONLY:-}" ]; then
    for t in "$@"; do
        name=$(basename "$t")
        "$t" > "$logdir/$name.tap" 2> "$logdir/$name.err"
        count "$logdir/$name.tap" "unit/$name" $?
    done
fi
if [ "${SW_ONLY:-cli}" = cli ] || [ -z "${SW_ONLY:-}" ]; then
    if ! command -v bats >/dev/null; then
        echo "  bats not installed: run scripts/deps.sh" >&2; failed=$((failed + 1))
    else
        for b in test/cli/*.bats; do
            [ -e "$b" ] || continue
            name=$(basename "$b" .bats)
            bats --tap ${SW_TEST_FILTER:+--filter "$SW_TEST_FILTER"} "$b" > "$logdir/$name.bats.tap" 2>&1
            count "$logdir/$name.bats.tap" "cli/$name" $?
        done
    fi
fi
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
