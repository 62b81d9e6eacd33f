#!/usr/bin/env bats
# scripts/run-tests.sh itself (issue 10, defect 13): skipped tests are listed with the reason
# their skip message gives (the package that would enable them), summed up by reason before the
# closing "N passed, N failed, N skipped" line; a failure still fails the run.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup() {
    ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
    # A copy of the runner in a scratch tree with its own test/cli/ (run with a clean environment:
    # the inner bats must not see this bats run's variables).
    mkdir -p "$BATS_TEST_TMPDIR/t/scripts" "$BATS_TEST_TMPDIR/t/test/cli"
    cp "$ROOT/scripts/run-tests.sh" "$BATS_TEST_TMPDIR/t/scripts/"
    cd "$BATS_TEST_TMPDIR/t"
    # bats puts its libexec folder first on PATH: the inner run must find the real bats.
    CLEAN_PATH=$(tr ':' '\n' <<< "$PATH" | grep -v bats-core | paste -sd: -)
}

@test "skipped tests are named with their reason and summed up by reason" {
    # (printf, not a here-document: bats would take an "@test" line of this file as its own)
    printf '%s\n' '@test "runs" { true; }' \
        '@test "needs torch" { skip "python package torch not installed (pip install torch)"; }' \
        '@test "needs torch too" { skip "python package torch not installed (pip install torch)"; }' \
        > test/cli/a.bats
    printf '%s\n' \
        '@test "needs tb" { skip "python package tensorboard not installed (pip install tensorboard)"; }' \
        '@test "bare skip" { skip; }' > test/cli/b.bats
    run env -i PATH="$CLEAN_PATH" HOME="$HOME" SW_ONLY=cli scripts/run-tests.sh
    assert_success
    assert_line --partial "skip: needs torch — python package torch not installed (pip install torch)"
    assert_line --partial "skip: needs tb — python package tensorboard not installed (pip install tensorboard)"
    assert_line --partial "skip: bare skip — no reason given"
    assert_line "skipped tests, by what would enable them:"
    assert_line --regexp "^ +2  python package torch not installed \(pip install torch\)  \[cli/a\]$"
    assert_line --regexp "^ +1  python package tensorboard not installed \(pip install tensorboard\)  \[cli/b\]$"
    assert_line --index $((${#lines[@]} - 1)) "1 passed, 0 failed, 4 skipped"
}

@test "no skips: no list; a failure fails the run" {
    printf '@test "fails" { false; }\n' > test/cli/c.bats
    run env -i PATH="$CLEAN_PATH" HOME="$HOME" SW_ONLY=cli scripts/run-tests.sh
    assert_failure
    refute_output --partial "skipped tests"
    assert_line --index $((${#lines[@]} - 1)) "0 passed, 1 failed"
}
