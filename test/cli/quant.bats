#!/usr/bin/env bats
# sw-quant: inspect on the golden HF folders written by transformers (text and --json, compared
# with the tensor listing Python's safetensors made of the same files), on single files and
# indexes, on malformed files (one-line errors, exit 1), and usage errors (exit 2).

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup_file() {
    export ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
    export QUANT="${SW_BIN:-$ROOT/bin}/sw-quant"
    export QWEN3="$ROOT/test/golden/hf_tiny_qwen3"
    export LLAMA="$ROOT/test/golden/hf_tiny_llama"
    export BAD="$BATS_FILE_TMPDIR/bad"
    mkdir -p "$BAD"
    # Malformed files, built with the standard library only: u64 header length + header + data.
    python3 - "$BAD" <<'EOF'
import json, struct, sys
d = sys.argv[1]
def st(name, header, data=b"", hlen=None):
    h = header.encode() if isinstance(header, str) else header
    with open(f"{d}/{name}", "wb") as f:
        f.write(struct.pack("<Q", len(h) if hlen is None else hlen) + h + data)
ok = '{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}'
st("good.safetensors", ok, bytes(16))
st("truncated.safetensors", ok, bytes(10))
st("bad_offsets.safetensors", '{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,10]}}', bytes(10))
st("overlap.safetensors", '{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},'
                          '"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}', bytes(6))
st("huge_header.safetensors", ok, bytes(16), hlen=1 << 62)
st("bad_dtype.safetensors", '{"w":{"dtype":"F31","shape":[2],"data_offsets":[0,8]}}', bytes(8))
st("not_json.safetensors", '{"w":', b"")
st("gap.safetensors", '{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},'
                      '"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}', bytes(6))
with open(f"{d}/short.safetensors", "wb") as f:
    f.write(b"\x05\x00")
# Many tensors, so --json output is far bigger than a pipe buffer.
hdr, off = {}, 0
for i in range(4000):
    hdr[f"model.layers.{i}.some.rather.long.tensor.name.weight"] = {"dtype": "U8", "shape": [1], "data_offsets": [off, off + 1]}
    off += 1
st("many.safetensors", json.dumps(hdr), bytes(off))
EOF
}

# One line on stderr, "sw-quant: error: ...", nothing on stdout, exit 1.
assert_one_line_error() {
    [ "$status" -eq 1 ] || { echo "status $status"; return 1; }
    [ -z "$(cat "$BATS_TEST_TMPDIR/out")" ] || { echo "stdout not empty"; return 1; }
    [ "$(wc -l < "$BATS_TEST_TMPDIR/err")" -eq 1 ] || { cat "$BATS_TEST_TMPDIR/err"; return 1; }
    grep -q "^sw-quant: error: .*$1" "$BATS_TEST_TMPDIR/err" || { cat "$BATS_TEST_TMPDIR/err"; return 1; }
}

run_split() { # run with stdout and stderr captured separately
    run bash -c '"$@" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err"' _ "$@"
}

# Compare `inspect --json` with the listing Python's safetensors made (name, dtype, shape,
# offsets, file) and the totals.
compare_with_python() { # $1 = folder
    run bash -c 'set -o pipefail; "$QUANT" inspect --json "$1" | python3 -c "
import json, sys
got = json.load(sys.stdin)
want = json.load(open(sys.argv[1] + \"/sw_expected_tensors.json\"))
g = sorted((t[\"name\"], t[\"dtype\"], t[\"shape\"], t[\"data_offsets\"], t[\"file\"]) for t in got[\"tensors\"])
w = sorted((t[\"name\"], t[\"dtype\"], t[\"shape\"], t[\"data_offsets\"], t[\"file\"]) for t in want[\"tensors\"])
assert g == w, (set(map(str, g)) ^ set(map(str, w)))
assert got[\"total_params\"] == want[\"total_params\"], got[\"total_params\"]
assert got[\"total_bytes\"] == want[\"total_bytes\"], got[\"total_bytes\"]
assert got[\"total_tensors\"] == len(want[\"tensors\"])
assert sorted(f[\"name\"] for f in got[\"files\"]) == want[\"files\"]
assert all(f[\"metadata\"] == want[\"metadata\"] for f in got[\"files\"])
assert got[\"inventory\"][\"ok\"] is True, got[\"inventory\"]
assert got[\"config\"][\"num_params\"] == want[\"total_params\"]
print(\"match\", len(g))
" "$1"' _ "$1"
    assert_success
    assert_output --partial "match"
}

@test "inspect: golden qwen3 folder, text" {
    run "$QUANT" inspect "$QWEN3"
    assert_success
    assert_line --regexp '^architecture: +Qwen3ForCausalLM \(qwen3\)$'
    assert_line --regexp '^heads: +4 \(kv heads 2, head_dim 8\)$'
    assert_line --regexp '^tie_embeddings: +yes$'
    assert_line --regexp '^rope: +default, theta 1000000$'
    assert_line --regexp '^inventory: +ok \(24 tensors as config.json implies\)$'
    assert_line --regexp '^model.layers.1.self_attn.q_norm.weight +F32 +\[8\] +32$'
    assert_line 'total: 24 tensors, 7280 parameters, 29120 bytes'
    refute_output --partial 'lm_head'
}

@test "inspect: golden llama folder (3 shards + index), text" {
    run "$QUANT" inspect "$LLAMA"
    assert_success
    assert_line --regexp '^files: +3 \(model-00001-of-00003.safetensors, '
    assert_line --regexp '^rope: +llama3, theta 500000, factor 8, low_freq_factor 1, high_freq_factor 4, original_max_position 64$'
    assert_line --regexp '^dtype: +bfloat16$'
    assert_line --regexp '^lm_head.weight +BF16 +\[64, 16\] +2048 +model-00003-of-00003.safetensors$'
    assert_line 'total: 21 tensors, 7248 parameters, 14496 bytes'
}

@test "inspect --json: qwen3 lists exactly the tensors Python's safetensors sees" {
    compare_with_python "$QWEN3"
}

@test "inspect --json: sharded llama lists exactly the tensors Python's safetensors sees" {
    compare_with_python "$LLAMA"
}

@test "inspect --json: config summary" {
    run bash -c 'set -o pipefail; "$QUANT" inspect --json "$LLAMA" | python3 -c "
import json, sys
c = json.load(sys.stdin)[\"config\"]
print(c[\"model_type\"], c[\"num_key_value_heads\"], c[\"head_dim\"], c[\"rope\"][\"type\"], c[\"rope\"][\"factor\"], c[\"eos_token_id\"], c[\"tie_word_embeddings\"], c[\"dtype\"])
"'
    assert_success
    assert_output 'llama 1 4 llama3 8.0 [1, 2] False bfloat16'
}

@test "inspect: a single .safetensors file" {
    run "$QUANT" inspect --json "$QWEN3/model.safetensors"
    assert_success
    run bash -c '"$QUANT" inspect --json "$QWEN3/model.safetensors" | python3 -c "
import json, sys; d = json.load(sys.stdin); print(d[\"config\"], d[\"total_tensors\"], len(d[\"files\"]))"'
    assert_output 'None 24 1'
    run "$QUANT" inspect "$BAD/good.safetensors"
    assert_success
    assert_line --regexp '^w +F32 +\[2, 2\] +16$'
    assert_line 'total: 1 tensors, 4 parameters, 16 bytes'
}

@test "inspect: an index json" {
    run "$QUANT" inspect "$LLAMA/model.safetensors.index.json"
    assert_success
    assert_line 'total: 21 tensors, 7248 parameters, 14496 bytes'
    refute_line --partial 'architecture:'
}

@test "inspect: truncated file is a one-line error" {
    run_split "$QUANT" inspect "$BAD/truncated.safetensors"
    assert_one_line_error "truncated.safetensors: tensor 'w': data_offsets \[0, 16\] extend past the end"
}

@test "inspect: bad offsets" {
    run_split "$QUANT" inspect "$BAD/bad_offsets.safetensors"
    assert_one_line_error "tensor 'w': data_offsets \[0, 10\] hold 10 bytes but F32 \[2, 2\] needs 16"
}

@test "inspect: overlapping spans" {
    run_split "$QUANT" inspect "$BAD/overlap.safetensors"
    assert_one_line_error "tensor 'b': data_offsets \[2, 6\] overlap tensor 'a'"
}

@test "inspect: gap between spans" {
    run_split "$QUANT" inspect "$BAD/gap.safetensors"
    assert_one_line_error "tensor 'b': .*gap of 2 bytes"
}

@test "inspect: huge header length" {
    run_split "$QUANT" inspect "$BAD/huge_header.safetensors"
    assert_one_line_error "header length 4611686018427387904 exceeds the limit"
}

@test "inspect: unknown dtype" {
    run_split "$QUANT" inspect "$BAD/bad_dtype.safetensors"
    assert_one_line_error "tensor 'w': unknown dtype 'F31'"
}

@test "inspect: header that is not JSON, and a 2-byte file" {
    run_split "$QUANT" inspect "$BAD/not_json.safetensors"
    assert_one_line_error "header JSON"
    run_split "$QUANT" inspect "$BAD/short.safetensors"
    assert_one_line_error "shorter than the 8-byte header length"
}

@test "inspect: nonexistent path" {
    run_split "$QUANT" inspect "$BATS_TEST_TMPDIR/nope"
    assert_one_line_error "cannot stat '.*nope': No such file or directory"
}

@test "inspect: folder without weights" {
    run_split "$QUANT" inspect "$BATS_TEST_TMPDIR"
    assert_one_line_error "no model.safetensors or model.safetensors.index.json"
}

@test "inspect: malformed config.json is an error" {
    local d="$BATS_TEST_TMPDIR/m"
    mkdir -p "$d"
    cp "$QWEN3/model.safetensors" "$d/"
    sed 's/"hidden_size": 16/"hidden_size": "big"/' "$QWEN3/config.json" > "$d/config.json"
    run_split "$QUANT" inspect "$d"
    assert_one_line_error "config.json: \"hidden_size\" is a string"
}

@test "inspect: unsupported architecture still lists tensors, with a warning" {
    local d="$BATS_TEST_TMPDIR/falcon"
    mkdir -p "$d"
    cp "$QWEN3/model.safetensors" "$d/"
    sed 's/"qwen3"/"falcon"/' "$QWEN3/config.json" > "$d/config.json"
    run_split "$QUANT" inspect "$d"
    assert_success
    grep -q "^sw-quant: warning: .*model_type 'falcon' is not supported .*; listing tensors only" "$BATS_TEST_TMPDIR/err"
    grep -q '^total: 24 tensors' "$BATS_TEST_TMPDIR/out"
}

@test "inspect: inventory mismatch is reported, not fatal" {
    local d="$BATS_TEST_TMPDIR/wrong"
    mkdir -p "$d"
    cp "$QWEN3/model.safetensors" "$d/"
    # The config claims 3 layers; the weights hold 2.
    sed 's/"num_hidden_layers": 2/"num_hidden_layers": 3/' "$QWEN3/config.json" > "$d/config.json"
    run_split "$QUANT" inspect "$d"
    assert_success
    grep -q "^sw-quant: warning: .*tensors do not match config.json (11 missing)" "$BATS_TEST_TMPDIR/err"
    grep -q "^inventory: *11 issues" "$BATS_TEST_TMPDIR/out"
    grep -q "^  missing tensor 'model.layers.2.self_attn.q_norm.weight' \[8\]" "$BATS_TEST_TMPDIR/out"
    run bash -c '"$QUANT" inspect --json "$1" 2>/dev/null | python3 -c "
import json, sys; i = json.load(sys.stdin)[\"inventory\"]; print(i[\"ok\"], len(i[\"issues\"]), i[\"issues\"][0][\"kind\"])"' _ "$d"
    assert_output 'False 11 missing'
}

@test "inspect: a closed pipe ends quietly with status 0" {
    run bash -c 'set -o pipefail; "$QUANT" inspect --json "$BAD/many.safetensors" 2>"$BATS_TEST_TMPDIR/err" | head -c 100 >/dev/null'
    assert_success
    [ ! -s "$BATS_TEST_TMPDIR/err" ]
}

@test "usage: no command, unknown command, missing/extra arguments, unknown option exit 2" {
    run "$QUANT"
    assert_failure 2
    assert_output --partial 'sw-quant: error: missing command'
    run "$QUANT" frobnicate
    assert_failure 2
    assert_output "sw-quant: error: unknown command 'frobnicate' (see sw-quant --help)"
    run "$QUANT" inspect
    assert_failure 2
    assert_output --partial 'sw-quant: error: missing argument'
    run "$QUANT" inspect "$QWEN3" "$LLAMA"
    assert_failure 2
    assert_output --partial 'unexpected argument'
    run "$QUANT" inspect --bogus "$QWEN3"
    assert_failure 2
    assert_output --partial 'sw-quant: error:'
}

@test "help and version" {
    run "$QUANT" --help
    assert_success
    assert_line --regexp '^  inspect +describe a .safetensors file'
    run "$QUANT" --version
    assert_success
    assert_output --regexp '^sw-quant [0-9]+\.[0-9]+\.[0-9]+ \('
    run "$QUANT" inspect --help
    assert_success
    assert_output --partial 'sw-quant inspect'
    assert_output --partial 'json'
}
