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

# ---- --decode (issue 10: see the template and the loss mask) -------------------------------------

@test "cat --decode shows each sequence as text with the loss mask visible (samples, padded and packed batches)" {
    has_python || skip "python3 is needed to read the JSON lines"
    TOK="$ROOT/data/tokenizers/qwen3" F="$ROOT/test/fixtures/datasets"
    d="$BATS_TEST_TMPDIR"
    "$PACK" --tokenizer "$TOK" --dataset "$F/alpaca.json" --dataset_shuffle false -q --output "$d/b.sws"
    # The header names the tokenizer: --decode needs no --tokenizer here.
    run "$PACK" cat --decode "$d/b.sws"
    assert_success
    printf '%s\n' "$output" > "$d/b.jsonl"
    run python3 - "$d/b.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert lines[0]["kind"] == "header" and lines[-1]["kind"] == "end"
seqs = lines[1:-1]
assert len(seqs) == 3, seqs
s = seqs[0]
assert s["input"].startswith("<|im_start|>user\nGive three tips for staying healthy.<|im_end|>\n<|im_start|>assistant\n"), s
# ms-swift's print_inputs: the prompt is a run of -100, then the trained answer and <|im_end|>.
assert s["labels"].startswith("[-100 * ") and "]1. Eat a balanced diet." in s["labels"], s
assert s["labels"].rstrip("\n").endswith("<|im_end|>"), s
assert 0 < s["trained"] < s["tokens"]
# A two-turn conversation: both answers trained, each after its own masked run.
multi = seqs[2]
assert multi["labels"].count("[-100 * ") == 2 and "The weather is nice today." in multi["labels"], multi
print("ok")
PY
    assert_success
    assert_output "ok"
    # Packed: one line per sequence of the row, in cu_seqlens order; the same texts.
    "$PACK" --tokenizer "$TOK" --dataset "$F/alpaca.json" --dataset_shuffle false --packing \
        --max_length 128 -q --output "$d/p.sws"
    run bash -c "'$PACK' cat --decode --tokenizer '$TOK' '$d/p.sws' | grep -c '\"seq\":'"
    assert_output "3"
    run bash -c "'$PACK' cat --decode '$d/p.sws' | grep -o '\"labels\":\"[^\"]*' | sort"
    want=$(grep -o '"labels":"[^"]*' "$d/b.jsonl" | sort)
    [ "$output" = "$want" ]
    # A tokenizer other than the stream's: a warning (the text would be wrong).
    run "$PACK" cat --decode --tokenizer "$ROOT/data/tokenizers/llama3" "$d/b.sws"
    assert_success
    assert_output --partial "is not the tokenizer the stream was made with"
}

@test "cat --decode: pre-training text is trained but for its first token; a stream without a tokenizer needs --tokenizer" {
    TOK="$ROOT/data/tokenizers/demo-bpe2k" F="$ROOT/test/fixtures/datasets"
    d="$BATS_TEST_TMPDIR"
    "$PACK" --tokenizer "$TOK" --dataset "$F/text.jsonl" -q --output "$d/t.sws"
    run bash -c "'$PACK' cat --decode '$d/t.sws' | sed -n 2p"
    assert_success
    assert_output --regexp '"tokens":([0-9]+),"trained":[0-9]+,"input":"It was the best of times'
    # Only the first token has no target (nothing predicts it).
    assert_output --partial '"labels":"[-100 * 1] was the best of times'
    [ "$(grep -o '"tokens":[0-9]*' <<< "$output" | cut -d: -f2)" -eq $(( $(grep -o '"trained":[0-9]*' <<< "$output" | cut -d: -f2) + 1 )) ]
    # The fixture streams of sw-train name no tokenizer.
    run "$PACK" cat --decode "$ROOT/test/fixtures/models/tiny-data/train.sws"
    assert_failure 2
    assert_output --partial "--decode needs --tokenizer DIR (the stream's header names no tokenizer)"
}
