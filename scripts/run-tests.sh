#!/usr/bin/env bash
# Runs every unit-test binary given as arguments and every bats file under test/cli/, each
# producing TAP, and prints per-suite results and the closing line "N passed, N failed".
# SW_ONLY=unit|cli restricts the run; SW_TEST_FILTER=regex filters bats test names.
# Skipped tests are listed under their suite with the reason the test gives (which names the
# package that would enable it), and summed up by reason before the closing line.
set -u
cd "$(dirname "$0")/.."
passed=0 failed=0 skipped=0
logdir=build/test-logs
mkdir -p "$logdir"
skiplog="$logdir/skipped.txt" # "suite<TAB>reason" per skipped test
: > "$skiplog"

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
    # TAP: "ok 12 name # skip reason" (bats writes "# skip (reason)").
    if [ "$s" -gt 0 ]; then
        grep -E '^ok [0-9]+.*# ?[Ss][Kk][Ii][Pp]' "$1" | while IFS= read -r line; do
            name=${line#ok * }; name=${name%%# [Ss][Kk][Ii][Pp]*}; name=${name%% }
            reason=$(printf '%s' "$line" | sed -E 's/.*# ?[Ss][Kk][Ii][Pp]:? *//; s/^\((.*)\)$/\1/')
            printf '         skip: %s — %s\n' "$name" "${reason:-no reason given}"
            printf '%s\t%s\n' "$2" "${reason:-no reason given}" >> "$skiplog"
        done
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
    echo "skipped tests, by what would enable them:"
    sort "$skiplog" | awk -F '\t' '
        { n[$2]++; if (index(s[$2], $1) == 0) s[$2] = s[$2] (s[$2] ? ", " : "") $1 }
        END { for (r in n) printf "  %3d  %s  [%s]\n", n[r], r, s[r] }' | sort -k2
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
