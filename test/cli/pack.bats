#!/usr/bin/env bats
# sw-pack (the default command) and tokenize/detokenize: every dataset format, loss masking
# modes, truncation strategies and their counts, packing checked through `sw-pack cat --full`
# (no token lost, capacity kept, positions restart, cu_seqlens), padded and padding-free batches,
# bad rows (file:line errors, --skip_bad_rows counts), gzip, stdin, FILE#N, folders, streaming,
# validation split, --stats, determinism, tokenize/detokenize round trip, and usage errors (exit 2).
# Reads only the repository: data/tokenizers/, data/alpaca_en/, test/fixtures/datasets/.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup_file() {
    export ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
    export PACK="${SW_BIN:-$ROOT/bin}/sw-pack"
    export TOK="$ROOT/data/tokenizers/qwen3"
    export F="$ROOT/test/fixtures/datasets"
    export ALPACA="$ROOT/data/alpaca_en/alpaca_sample.jsonl.gz"
}

# q 'python expression' < cat --full output: recs (all records), hdr, meta, body (sample/batch
# records), stats (the x-pack-stats record) are defined.
q() {
    python3 -c '
import json, sys
recs = [json.loads(l) for l in sys.stdin if l.strip()]
hdr = recs[0]; meta = hdr.get("meta", {})
body = [r for r in recs if r["kind"] in ("batch", "sample")]
st = [r for r in recs if r["kind"] == "x-pack-stats"]
stats = st[0] if st else {}
def v(r, k): return r[k]["values"]
def flat(x): return [a for row in x for a in row] if x and isinstance(x[0], list) else x
print(eval(sys.argv[1]))' "$1"
}

# pack ARGS... : write $BATS_TEST_TMPDIR/out.sws and its cat --full JSON lines to out.jsonl
pack() {
    "$PACK" --tokenizer "$TOK" --output "$BATS_TEST_TMPDIR/out.sws" "$@" &&
        "$PACK" cat --full "$BATS_TEST_TMPDIR/out.sws" > "$BATS_TEST_TMPDIR/out.jsonl"
}
outq() { q "$1" < "$BATS_TEST_TMPDIR/out.jsonl"; }

@test "help: sw-pack lists pack, tokenize, detokenize; pack --help lists ms-swift's options" {
    run "$PACK" --help
    assert_success
    assert_output --partial "pack "
    assert_output --partial "tokenize "
    assert_output --partial "detokenize "
    run "$PACK" pack --help
    assert_success
    for k in dataset val_dataset dataset_format template system max_length truncation_strategy \
             packing padding_free per_device_train_batch_size data_seed split_dataset_ratio \
             streaming loss_scale dataset_num_proc tokenizer output skip_bad_rows stats; do
        assert_output --partial "--$k"
    done
}

@test "no command word runs pack; 'pack' gives the same stream" {
    run "$PACK" --tokenizer "$TOK" --dataset "$F/alpaca.json" --output "$BATS_TEST_TMPDIR/a.sws" -q
    assert_success
    run "$PACK" pack --tokenizer "$TOK" --dataset "$F/alpaca.json" --output "$BATS_TEST_TMPDIR/b.sws" -q
    assert_success
    cmp "$BATS_TEST_TMPDIR/a.sws" "$BATS_TEST_TMPDIR/b.sws"
}

@test "every dataset format converts (rows in = rows out)" {
    for spec in alpaca.json:3 sharegpt.jsonl:2 messages.jsonl:4 query.jsonl:2 text.jsonl:3 alpaca.jsonl.gz:3; do
        pack --dataset "$F/${spec%%:*}" -q
        run outq 'stats["rows_out"], stats["rows_read"], meta["data_kind"]'
        assert_output "(${spec##*:}, ${spec##*:}, 'sft')"
    done
    pack --dataset "$F/folder" -q
    run outq 'stats["rows_out"]'
    assert_output "4"
}

@test "preference rows: sample records with chosen_ and rejected_ sides that share the prompt" {
    pack --dataset "$F/preference.jsonl" --no-dataset_shuffle -q
    run outq 'hdr["stream_kind"], meta["data_kind"], len(body)'
    assert_output "('samples', 'preference', 5)"
    # Same prompt tokens up to the answer; different answers.
    run outq 'all(v(r,"chosen_input_ids") != v(r,"rejected_input_ids") and v(r,"chosen_input_ids")[:5] == v(r,"rejected_input_ids")[:5] for r in body)'
    assert_output "True"
    run "$PACK" --tokenizer "$TOK" --dataset "$F/preference.jsonl" --packing --output /dev/null
    assert_failure 2
    assert_output --partial "--packing does not apply to preference rows"
}

@test "KTO rows carry their label" {
    pack --dataset "$F/kto.jsonl" --no-dataset_shuffle -q
    run outq '[r["label"] for r in body], meta["data_kind"]'
    assert_output "([True, False], 'kto')"
}

@test "mixing SFT and preference rows in one stream is refused with the row named" {
    run "$PACK" --tokenizer "$TOK" --dataset "$F/query.jsonl,$F/kto.jsonl" --no-dataset_shuffle --output /dev/null
    assert_failure 1
    assert_output --partial "kto.jsonl:1: a KTO row among SFT"
}

# Trained text of the sharegpt multi-turn row (line 2) under a loss scale.
trained_text() {
    pack --dataset "$F/sharegpt.jsonl" --no-dataset_shuffle --no-batch -q "$@"
    outq 'json.dumps({"ids": [l for l in v(body[1], "labels") if l != -100]})' |
        "$PACK" detokenize --tokenizer "$TOK"
}

@test "loss_scale: default trains every answer, last_round the last one" {
    run trained_text
    assert_output '{"text":"Blue.<|im_end|>\nGreen.<|im_end|>\n"}'
    run trained_text --loss_scale last_round
    assert_output '{"text":"Green.<|im_end|>\n"}'
}

@test "loss_scale details: qwen3's empty think block is masked; all masks only the first token" {
    pack --dataset "$F/sharegpt.jsonl" --no-dataset_shuffle --no-batch -q
    # Row 1: "...<|im_start|>assistant\n<think>\n\n</think>\n\n4<|im_end|>\n": 3 trained tokens.
    run outq 'sum(1 for l in v(body[0], "labels") if l != -100)'
    assert_output "3"
    pack --dataset "$F/sharegpt.jsonl" --no-dataset_shuffle --no-batch --loss_scale all -q
    run outq '[sum(1 for l in v(r, "labels") if l != -100) == len(v(r, "labels")) - 1 for r in body]'
    assert_output "[True, True]"
}

@test "truncation: delete drops and counts, left/right cut to max_length and count" {
    pack --dataset "$ALPACA" --max_length 48 -q
    run outq 'stats["rows_deleted"] > 0, stats["rows_truncated"], stats["rows_out"] + stats["rows_deleted"] + stats["rows_no_loss"] == 2000, max(r["num_tokens"] for r in body) <= 48'
    assert_output "(True, 0, True, True)"
    for side in left right; do
        pack --dataset "$ALPACA" --max_length 48 --truncation_strategy $side -q
        run outq 'stats["rows_deleted"], stats["rows_truncated"] > 0, max(r["num_tokens"] for r in body), stats["rows_out"] + stats["rows_no_loss"]'
        assert_output "(0, True, 48, 2000)"
    done
    # right truncation cuts answers off: rows with no trained token left are counted, not kept
    run outq 'stats["rows_no_loss"] > 0'
    assert_output "True"
}

@test "packing: no token lost or duplicated, capacity kept, positions restart, cu_seqlens consistent" {
    pack --dataset "$ALPACA" --max_length 512 --no-dataset_shuffle --no-batch -q
    outq 'json.dumps(sorted(json.dumps(v(r,"input_ids")) for r in body))' > "$BATS_TEST_TMPDIR/samples.json"
    pack --dataset "$ALPACA" --max_length 512 --no-dataset_shuffle --packing -q
    run outq 'hdr["stream_kind"], all(r["num_tokens"] <= 512 for r in body)'
    assert_output "('packed_batches', True)"
    # Cut every packed row at cu_seqlens: the samples must be exactly the unpacked ones.
    outq 'json.dumps(sorted(json.dumps(flat(v(r,"input_ids"))[a:b]) for r in body for a, b in zip(v(r,"cu_seqlens"), v(r,"cu_seqlens")[1:])))' > "$BATS_TEST_TMPDIR/packed.json"
    cmp "$BATS_TEST_TMPDIR/samples.json" "$BATS_TEST_TMPDIR/packed.json"
    run outq 'all(flat(v(r,"position_ids"))[a:b] == list(range(b - a)) for r in body for a, b in zip(v(r,"cu_seqlens"), v(r,"cu_seqlens")[1:]))'
    assert_output "True"
    run outq 'all(v(r,"cu_seqlens")[-1] == r["num_tokens"] == len(flat(v(r,"input_ids"))) and len(v(r,"cu_seqlens")) == r["num_samples"] + 1 for r in body)'
    assert_output "True"
    # Efficiency = tokens / (sequences x max_length).
    run outq 'abs(stats["packing_efficiency"] - stats["tokens"] / (stats["sequences"] * 512)) < 1e-12, stats["packing_efficiency"] > 0.95'
    assert_output "(True, True)"
}

@test "packing strategies and batch size: ffd, sequential, and 2 sequences per batch" {
    for s in ffd sequential; do
        pack --dataset "$ALPACA" --max_length 256 --packing --packing_strategy $s -q
        run outq 'stats["rows_out"] == stats["samples"], all(r["num_tokens"] <= 256 for r in body)'
        assert_output "(True, True)"
    done
    pack --dataset "$ALPACA" --max_length 256 --packing --per_device_train_batch_size 2 -q
    run outq 'all(r["num_sequences"] == 2 for r in body[:-1]), all(r["num_tokens"] <= 512 for r in body), stats["sequences"] in (2 * len(body), 2 * len(body) - 1)'
    assert_output "(True, True, True)"
}

@test "padded batches (right padding, attention_mask) and padding-free batches (cu_seqlens)" {
    pack --dataset "$F/alpaca.json" --no-dataset_shuffle --per_device_train_batch_size 2 -q
    run outq '[r["input_ids"]["shape"] for r in body], [r["num_samples"] for r in body]'
    assert_output --regexp '^\(\[\[2, [0-9]+\], \[1, [0-9]+\]\], \[2, 1\]\)$'
    # Padding: pad id, label -100, mask 0, after each shorter row's tokens.
    run outq 'all((m == 0) == (l == -100 and i == meta["pad_token_id"]) or m == 1 for r in body for mr, lr, ir in zip(v(r,"attention_mask"), v(r,"labels"), v(r,"input_ids")) for m, l, i in zip(mr, lr, ir))'
    assert_output "True"
    run outq 'sum(sum(row) for r in body for row in v(r,"attention_mask")) == stats["tokens"]'
    assert_output "True"
    pack --dataset "$F/alpaca.json" --no-dataset_shuffle --per_device_train_batch_size 2 --padding_free -q
    run outq '[r["input_ids"]["shape"][0] for r in body], [len(v(r,"cu_seqlens")) for r in body], "attention_mask" in body[0]'
    assert_output "([1, 1], [3, 2], False)"
}

@test "bad rows: the error names file:line and the field; exit 1; no stream left behind" {
    run "$PACK" --tokenizer "$TOK" --dataset "$F/alpaca_bad.json" --output "$BATS_TEST_TMPDIR/bad.sws"
    assert_failure 1
    assert_output --partial "alpaca_bad.json:3: field 'output': expected a string, got a number"
    [ ! -e "$BATS_TEST_TMPDIR/bad.sws" ]
    run "$PACK" --tokenizer "$TOK" --dataset "$F/malformed.jsonl" --output /dev/null
    assert_failure 1
    assert_output --partial "malformed.jsonl:2: invalid JSON"
}

@test "--skip_bad_rows counts and reports them at the end; --stats has the same numbers" {
    run "$PACK" --tokenizer "$TOK" --dataset "$F/malformed.jsonl" --skip_bad_rows \
        --output "$BATS_TEST_TMPDIR/o.sws" --stats "$BATS_TEST_TMPDIR/stats.json"
    assert_success
    assert_output --partial "malformed.jsonl:4: expected a JSON object"
    assert_output --partial "malformed.jsonl:5: field 'output': missing"
    assert_output --partial "5 rows read = 2 kept + 0 deleted (over max_length 2048) + 0 without trained tokens + 3 bad (skipped)"
    run python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["train"]; print(s["rows_read"], s["rows_bad"], s["rows_out"])' "$BATS_TEST_TMPDIR/stats.json"
    assert_output "5 3 2"
}

@test "the statistics add up: read (+ repeated) = kept + deleted + no loss + bad + unsampled + to validation (issue 10)" {
    # 2000 Alpaca rows, #60 with shuffle, a split, short max_length (deletions), bad rows.
    d="$BATS_TEST_TMPDIR"
    { zcat "$ROOT/data/alpaca_en/alpaca_sample.jsonl.gz" | head -40
      printf '{"instruction": "cut short", "output":\n{"instruction": "no output"}\n'; } > "$d/mix.jsonl"
    check='
import json, sys
s = json.load(open(sys.argv[1]))
t, v = s["train"], s["validation"]
lhs = t["rows_read"] + t["rows_repeated"]
rhs = t["rows_out"] + t["rows_deleted"] + t["rows_no_loss"] + t["rows_bad"] + t["rows_unsampled"] + t["rows_to_validation"]
assert lhs == rhs, ("train", lhs, rhs, t)
vl = v["rows_read"] + v["rows_repeated"] + v["rows_from_split"]
vr = v["rows_out"] + v["rows_deleted"] + v["rows_no_loss"] + v["rows_bad"] + v["rows_unsampled"] + v.get("rows_to_validation", 0)
assert vl == vr, ("validation", vl, vr, v)
assert v["rows_from_split"] == t["rows_to_validation"]
print("ok", t["rows_read"], t["rows_unsampled"], t["rows_repeated"], t["rows_bad"], t["rows_deleted"])
'
    run "$PACK" --tokenizer "$TOK" --dataset "$ROOT/data/alpaca_en/alpaca_sample.jsonl.gz#60" \
        --max_length 48 --split_dataset_ratio 0.1 --output "$d/t.sws" --val_output "$d/v.sws" \
        --stats "$d/s1.json"
    assert_success
    assert_output --regexp "train: 2000 rows read = [0-9]+ kept \+ [1-9][0-9]* deleted \(over max_length 48\) \+ [0-9]+ without trained tokens \+ 0 bad \(skipped\) \+ 1940 unsampled \(#N\) \+ 6 to validation"
    assert_output --regexp "validation: 6 rows from the split = [0-9]+ kept \+ [0-9]+ deleted"
    run python3 -c "$check" "$d/s1.json"
    assert_success
    assert_output --partial "ok 2000 1940 0 0"
    # #N above the row count (repeats), bad rows skipped; the bad rows past a #N sample are never
    # parsed.
    run "$PACK" --tokenizer "$TOK" --dataset "$d/mix.jsonl#50" --skip_bad_rows --max_length 64 \
        --split_dataset_ratio 0.1 --output "$d/t2.sws" --val_output "$d/v2.sws" --stats "$d/s2.json"
    assert_success
    assert_output --regexp "train: 42 rows read \+ 8 repeated \(#N above the row count\) = "
    run python3 -c "$check" "$d/s2.json"
    assert_success
    run "$PACK" --tokenizer "$TOK" --dataset "$d/mix.jsonl#10" --dataset_shuffle false \
        --output "$d/t3.sws" --stats "$d/s3.json"
    assert_success
    assert_output --partial "train: 42 rows read = 10 kept + 0 deleted (over max_length 2048) + 0 without trained tokens + 0 bad (skipped) + 32 unsampled (#N)"
}

@test "stdin (-), gzip, FILE#N sampling with repeats, and a comma-separated list" {
    run bash -c "set -o pipefail; cat '$F/alpaca.jsonl.gz' | '$PACK' --tokenizer '$TOK' --dataset - --output - -q | '$PACK' cat | grep -c '\"kind\":\"batch\"'"
    assert_success
    assert_output "3"
    pack --dataset "$F/alpaca.json#7" -q
    run outq 'stats["rows_out"], stats["rows_read"]'
    assert_output "(7, 3)"
    pack --dataset "$F/alpaca.json#2,$F/text.jsonl" -q
    run outq 'stats["rows_out"], [d["arg"] for d in meta["datasets"]] == ["'"$F"'/alpaca.json#2", "'"$F"'/text.jsonl"]'
    assert_output "(5, True)"
}

@test "header meta: tokenizer hash, template, options, datasets with sha256, counts" {
    pack --dataset "$F/alpaca.json" --max_length 333 --data_seed 7 -q
    run outq 'meta["template"], meta["max_length"], meta["data_seed"], meta["counts"]["rows_out"], len(meta["tokenizer_sha256"])'
    assert_output "('qwen3', 333, 7, 3, 64)"
    want=$(sha256sum "$F/alpaca.json" | cut -d' ' -f1)
    run outq 'meta["datasets"][0]["files"][0]["sha256"]'
    assert_output "$want"
}

@test "deterministic: same seed same bytes; another seed another order" {
    "$PACK" --tokenizer "$TOK" --dataset "$ALPACA" --packing --max_length 512 --output "$BATS_TEST_TMPDIR/1.sws" -q
    "$PACK" --tokenizer "$TOK" --dataset "$ALPACA" --packing --max_length 512 --output "$BATS_TEST_TMPDIR/2.sws" -q --dataset_num_proc 1
    cmp "$BATS_TEST_TMPDIR/1.sws" "$BATS_TEST_TMPDIR/2.sws"
    "$PACK" --tokenizer "$TOK" --dataset "$ALPACA" --packing --max_length 512 --output "$BATS_TEST_TMPDIR/3.sws" -q --seed 1
    run cmp -s "$BATS_TEST_TMPDIR/1.sws" "$BATS_TEST_TMPDIR/3.sws"
    assert_failure
}

@test "streaming: bounded windows, same tokens as in memory, no global counts in the header" {
    pack --dataset "$ALPACA" --max_length 512 --packing -q
    run outq 'stats["tokens"], stats["rows_out"]'
    mem="$output"
    pack --dataset "$ALPACA" --max_length 512 --packing --streaming --packing_window 300 -q
    run outq 'stats["tokens"], stats["rows_out"]'
    assert_output "$mem"
    run outq 'meta["streaming"], "counts" in meta, stats["packing_efficiency"] > 0.9'
    assert_output "(True, False, True)"
    pack --dataset "$ALPACA#10" --streaming -q
    run outq 'stats["rows_out"]'
    assert_output "10"
}

@test "validation: split_dataset_ratio and val_dataset write a second stream" {
    pack --dataset "$ALPACA" --split_dataset_ratio 0.1 --val_output "$BATS_TEST_TMPDIR/val.sws" -q
    run outq 'stats["rows_out"]'
    assert_output "1800"
    run bash -c "'$PACK' cat --full '$BATS_TEST_TMPDIR/val.sws' | python3 -c 'import json,sys; r=[json.loads(l) for l in sys.stdin]; print(r[0][\"meta\"][\"split\"], [x for x in r if x[\"kind\"]==\"x-pack-stats\"][0][\"rows_out\"])'"
    assert_output "validation 200"
    pack --dataset "$F/alpaca.json" --val_dataset "$F/query.jsonl" --val_output "$BATS_TEST_TMPDIR/val2.sws" -q
    run bash -c "'$PACK' cat '$BATS_TEST_TMPDIR/val2.sws' | grep -c '\"kind\":\"batch\"'"
    assert_output "2"
}

@test "templates: explicit --template, --system, and a template foreign to the tokenizer" {
    pack --dataset "$F/query.jsonl#1" --template qwen --no-dataset_shuffle --no-batch --system "Be nice." -q
    run bash -c "python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print(json.dumps({\"ids\": r[1][\"input_ids\"][\"values\"]}))' '$BATS_TEST_TMPDIR/out.jsonl' | '$PACK' detokenize --tokenizer '$TOK'"
    # The row's own system wins over --system.
    assert_output --partial 'system\nAnswer briefly.<|im_end|>'
    run "$PACK" --tokenizer "$TOK" --dataset "$F/query.jsonl" --template llama3 --output /dev/null
    assert_failure 1
    assert_output --partial "'<|begin_of_text|>' is not in the tokenizer's vocabulary"
}

@test "tokenize / detokenize: order kept, round trip, add_special_tokens, bad lines" {
    printf '%s\n' '{"text": "Hello world"}' '{"text": "你好，世界"}' '' '{"text": "<|im_start|>user"}' > "$BATS_TEST_TMPDIR/t.jsonl"
    run "$PACK" tokenize --tokenizer "$TOK" "$BATS_TEST_TMPDIR/t.jsonl"
    assert_success
    assert_line --index 0 '{"ids":[9707,1879]}'
    assert_line --index 2 '{"ids":[151644,872]}'
    run bash -c "set -o pipefail; '$PACK' tokenize --tokenizer '$TOK' < '$BATS_TEST_TMPDIR/t.jsonl' | '$PACK' detokenize --tokenizer '$TOK'"
    assert_success
    assert_line --index 0 '{"text":"Hello world"}'
    assert_line --index 1 '{"text":"你好，世界"}'
    assert_line --index 2 '{"text":"<|im_start|>user"}'
    run bash -c "printf '%s\n' '{\"text\": \"Hello\"}' | '$PACK' tokenize --tokenizer '$ROOT/data/tokenizers/llama2' --add_special_tokens"
    assert_output --regexp '^\{"ids":\[1,[0-9]+\]\}$'
    run bash -c "printf '%s\n' '{\"text\": \"Hello\"}' | '$PACK' tokenize --tokenizer '$ROOT/data/tokenizers/llama2'"
    assert_output --regexp '^\{"ids":\[[0-9]+\]\}$'
    # Many lines through several threads keep their order.
    python3 -c 'import json; [print(json.dumps({"text": "line %d" % i})) for i in range(10000)]' > "$BATS_TEST_TMPDIR/many.jsonl"
    run bash -c "set -o pipefail; '$PACK' tokenize --tokenizer '$TOK' --dataset_num_proc 2 < '$BATS_TEST_TMPDIR/many.jsonl' | '$PACK' detokenize --tokenizer '$TOK' | cmp - <(python3 -c 'import json; [print(json.dumps({\"text\": \"line %d\" % i}, separators=(\",\", \":\"))) for i in range(10000)]')"
    assert_success
    run bash -c "printf '%s\n' '{\"text\": 1}' | '$PACK' tokenize --tokenizer '$TOK'"
    assert_failure 1
    assert_output --partial "<stdin>:1: expected an object with a string field 'text'"
    run bash -c "printf '%s\n' '{\"ids\": [1, -2]}' | '$PACK' detokenize --tokenizer '$TOK'"
    assert_failure 1
    assert_output --partial "field 'ids[1]'"
}

@test "usage errors exit 2" {
    run "$PACK" --dataset "$F/alpaca.json"
    assert_failure 2
    assert_output --partial "--tokenizer is required"
    run "$PACK" --tokenizer "$TOK"
    assert_failure 2
    run "$PACK" --tokenizer "$TOK" --dataset "$F/alpaca.json" --max_lenght 5
    assert_failure 2
    assert_output --partial "did you mean 'max_length'"
    run "$PACK" --tokenizer "$TOK" --dataset "$F/alpaca.json" --truncation_strategy split
    assert_failure 2
    run "$PACK" --tokenizer "$TOK" --dataset "$F/alpaca.json" --val_output /tmp/x.sws
    assert_failure 2
    run "$PACK" --tokenizer "$TOK" --dataset "$F/alpaca.json" --streaming --split_dataset_ratio 0.1 --val_output /tmp/x.sws
    assert_failure 2
    run "$PACK" --tokenizer "$TOK" --dataset "$F/alpaca.json#0"
    assert_failure 2
    run "$PACK" --tokenizer "$TOK" --dataset "$F/alpaca.json" --template nope
    assert_failure 2
    run "$PACK" --tokenizer "$TOK" --dataset "$F/alpaca.json" --packing --no-batch
    assert_failure 2
    assert_output --partial "does not go with --no-batch"
    run "$PACK" tokenize
    assert_failure 2
}

@test "runtime errors exit 1: missing dataset, missing tokenizer; a closed stdout is quiet" {
    run "$PACK" --tokenizer "$TOK" --dataset "$F/nope.jsonl"
    assert_failure 1
    assert_output --partial "nope.jsonl"
    run "$PACK" --tokenizer "$BATS_TEST_TMPDIR" --dataset "$F/alpaca.json"
    assert_failure 1
    run bash -c "'$PACK' --tokenizer '$TOK' --dataset '$ALPACA' -q | head -c 100 > /dev/null; echo \${PIPESTATUS[0]}"
    assert_output "0"
}

@test "a JSON \\u0000 is accepted and encoded as tokenizers encodes U+0000; a cut-short line names itself (issue 10)" {
    d="$BATS_TEST_TMPDIR"
    printf '{"text": "a\\u0000b c\\u0000"}\n' > "$d/nul.jsonl"
    run "$PACK" tokenize --tokenizer "$TOK" "$d/nul.jsonl"
    assert_success
    tok_ids=$(grep -o '\[[0-9,]*\]' <<< "$output")
    if python3 -c 'import tokenizers' 2>/dev/null; then
        want=$(python3 -c '
import gzip, sys, tokenizers
t = tokenizers.Tokenizer.from_str(gzip.open(sys.argv[1] + "/tokenizer.json.gz").read().decode())
print(str(t.encode("a\x00b c\x00", add_special_tokens=False).ids).replace(" ", ""))' "$TOK")
        [ "$tok_ids" = "$want" ]
    fi
    # The dataset reader takes the same row; the sample's ids are the tokenizer's (+ <|im_end|>).
    run "$PACK" --tokenizer "$TOK" --dataset "$d/nul.jsonl" -q --output "$d/nul.sws"
    assert_success
    run bash -c "'$PACK' cat --full '$d/nul.sws' | sed -n 2p | grep -o '\"input_ids\":{[^}]*' | grep -o '\[\[[0-9,]*'"
    [ "${output#[[}" = "$(tr -d '[]' <<< "$tok_ids"),151645" ]
    # Defect 9: a broken line 2 of 3 is named as line 2, cut short.
    printf '%s\n' '{"query": "a", "response": "b"}' '{"query": "a", "response": ' '{"query": "c", "response": "d"}' > "$d/cut.jsonl"
    run "$PACK" --tokenizer "$TOK" --dataset "$d/cut.jsonl" --output "$d/cut.sws"
    assert_failure 1
    assert_output --partial "cut.jsonl:2: invalid JSON: unexpected token at the end of the line"
    refute_output --partial "end of file"
}
