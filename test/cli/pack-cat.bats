#!/usr/bin/env bats
# sw-pack cat on the sws fixtures that Python msgpack wrote (test/golden/gen_stream.py): output
# compared with the JSON the generator computed from the values (floats within 1e-6), summaries
# and --full, stdin, broken streams (one-line error, exit 1), a closed stdout (quiet), usage
# errors (exit 2), and Python reading a stream written by sw.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup_file() {
    export ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
    export PACK="${SW_BIN:-$ROOT/bin}/sw-pack"
    export G="$ROOT/test/golden/stream"
    export READ="$ROOT/test/golden/read_stream.py"
}

has_python() { command -v python3 >/dev/null; }
has_msgpack() { has_python && python3 -c 'import msgpack' 2>/dev/null; }

# cat FIXTURE [--full] and compare with the generator's expectation.
compare_with_expect() {
    has_python || skip "python3 is needed to compare JSON with a float tolerance"
    local name=$1 suffix=$2
    shift 2
    run "$PACK" cat "$@" "$G/$name.sws"
    assert_success
    printf '%s\n' "$output" > "$BATS_TEST_TMPDIR/out.jsonl"
    run python3 "$READ" --compare "$G/$name.$suffix.jsonl" "$BATS_TEST_TMPDIR/out.jsonl"
    assert_success
}

@test "sw-pack --help lists cat; cat --help shows its options" {
    run "$PACK" --help
    assert_success
    assert_output --partial "cat "
    run "$PACK" cat --help
    assert_success
    assert_output --partial "--full"
}

@test "cat prints the header, every record and the end record" {
    run "$PACK" cat "$G/samples.sws"
    assert_success
    assert_equal "${#lines[@]}" 6
    assert_line --index 0 '{"kind":"header","magic":"sws","version":1,"producer":"gen_stream.py 1","stream_kind":"samples","meta":{"dataset":"demo","max_length":2048,"template":"qwen2_5"}}'
    assert_line --index 1 --partial '"input_ids":{"dtype":"I32","shape":[6],"min":198,"max":151645,"sum":314264}'
    assert_line --index 4 '{"kind":"x-comment","text":"extension records are skipped by readers: ✓","payload":{"bytes":3}}'
    assert_line --index 5 --regexp '^\{"kind":"end","count":4,"checksum":"sha256:[0-9a-f]{64}"\}$'
}

@test "sample summaries match the generator" { compare_with_expect samples expect; }
@test "batch summaries match the generator" { compare_with_expect batches expect; }
@test "every dtype's summary matches the generator (NaN/Inf as strings)" {
    compare_with_expect tensors expect
}
@test "--full values match the generator (samples)" { compare_with_expect samples full --full; }
@test "--full values match the generator (batches)" { compare_with_expect batches full --full; }
@test "--full values match the generator (every dtype)" { compare_with_expect tensors full --full; }

@test "--full prints nested arrays" {
    run "$PACK" cat --full "$G/batches.sws"
    assert_success
    assert_line --index 1 --partial '"input_ids":{"dtype":"I32","shape":[1,10],"values":[[1,2,3,4,5,6,7,8,0,0]]}'
}

@test "stdin: '-' and no argument read the same stream" {
    run bash -c "'$PACK' cat '$G/samples.sws'"
    local want="$output"
    run bash -c "'$PACK' cat - < '$G/samples.sws'"
    assert_success
    assert_output "$want"
    run bash -c "set -o pipefail; cat '$G/samples.sws' | '$PACK' cat"
    assert_success
    assert_output "$want"
}

@test "a stream without its end record: exit 1, 'truncated stream'" {
    run "$PACK" cat "$G/truncated.sws"
    assert_failure 1
    assert_line --index 4 --partial '"kind":"x-comment"'
    assert_line --index 5 "sw-pack: error: $G/truncated.sws: truncated stream: no end record after 4 records"
}

@test "a stream cut inside a record: exit 1, names record and byte" {
    run "$PACK" cat "$G/cut.sws"
    assert_failure 1
    assert_output --partial "cut.sws: truncated stream: record 4 at byte 722 is incomplete"
}

@test "truncated input on stdin: exit 1" {
    run bash -c "'$PACK' cat - < '$G/truncated.sws'"
    assert_failure 1
    assert_output --partial "sw-pack: error: <stdin>: truncated stream: no end record after 4 records"
}

@test "a changed tensor byte: exit 1, checksum mismatch" {
    run "$PACK" cat "$G/corrupt.sws"
    assert_failure 1
    assert_output --partial "checksum mismatch"
}

@test "not an sws file: exit 1" {
    run "$PACK" cat "$G/samples.expect.jsonl"
    assert_failure 1
    assert_output --partial "not an sws stream"
}

@test "a missing file: exit 1 naming it" {
    run "$PACK" cat "$BATS_TEST_TMPDIR/nope.sws"
    assert_failure 1
    assert_output "sw-pack: error: cannot open '$BATS_TEST_TMPDIR/nope.sws': No such file or directory"
}

@test "| head -1 ends quietly (EPIPE is not an error)" {
    run bash -c "set -o pipefail; '$PACK' cat --full '$G/weights.sws' 2>'$BATS_TEST_TMPDIR/err' | head -1"
    assert_success
    assert_output --partial '"kind":"header"'
    run cat "$BATS_TEST_TMPDIR/err"
    assert_output ""
}

@test "usage errors exit 2" {
    run "$PACK" cat --fulll "$G/samples.sws"
    assert_failure 2
    assert_output --partial "did you mean 'full'"
    run "$PACK" cat a.sws b.sws
    assert_failure 2
    run "$PACK" frobnicate
    assert_failure 2
    assert_output --partial "unknown command 'frobnicate'"
}

@test "a ZeroMQ endpoint with no writer times out as a truncated stream" {
    run "$PACK" cat --timeout_ms 300 tcp://127.0.0.1:9
    assert_failure 1
    assert_output --partial "truncated stream: no record arrived within 300 ms"
}

@test "the committed fixtures are what gen_stream.py writes" {
    has_msgpack || skip "python3 with msgpack is not available (pip install msgpack)"
    run python3 "$ROOT/test/golden/gen_stream.py"
    assert_success
}

@test "a live pipe from the Python writer" {
    has_msgpack || skip "python3 with msgpack is not available (pip install msgpack)"
    run bash -c "set -o pipefail; python3 '$ROOT/test/golden/gen_stream.py' --emit batches | '$PACK' cat | tail -1"
    assert_success
    assert_output --regexp '^\{"kind":"end","count":2,'
}

@test "Python reads a stream written by sw (header, kinds, count, checksum)" {
    has_msgpack || skip "python3 with msgpack is not available (pip install msgpack)"
    local emit="${SW_BUILD:-$ROOT/build}/test/test_stream"
    [ -x "$emit" ] || skip "build/test/test_stream is not built (make test builds it)"
    run "$emit" --emit "$BATS_TEST_TMPDIR/sw.sws"
    assert_success
    run python3 "$READ" "$BATS_TEST_TMPDIR/sw.sws"
    assert_success
    assert_output '{"ok":true,"producer":"test_stream 1","stream_kind":"samples","records":5,"kinds":{"sample":2,"x-note":1,"batch":1,"tensors":1}}'
    # ... and sw agrees with itself on it.
    run "$PACK" cat "$BATS_TEST_TMPDIR/sw.sws"
    assert_success
}

@test "the Python reader is not a rubber stamp" {
    has_msgpack || skip "python3 with msgpack is not available (pip install msgpack)"
    for bad in truncated cut corrupt; do
        run python3 "$READ" "$G/$bad.sws"
        assert_failure 1
    done
    run python3 "$READ" "$G/tensors.sws"
    assert_success
}
