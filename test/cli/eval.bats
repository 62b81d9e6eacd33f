#!/usr/bin/env bats
# sw-eval: `logits` reproduces the transformers/PEFT goldens of test/golden/model/* (logits of
# every row, padding included, and the loss) through the CLI, and transformers' loss definition
# with labels = input_ids on a padded batch (test/golden/generate/expected.json); `generate`
# reproduces transformers' greedy generate() ids for raw prompts, a chat conversation and a
# repetition penalty, and stops on the EOS ids of generation_config.json; sampling is seeded;
# errors are one line, exit 1 (usage: 2). Python's standard library reads and writes the
# safetensors files (no numpy or torch needed).

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup_file() {
    export ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
    export EVAL="${SW_BIN:-$ROOT/bin}/sw-eval"
    export G="$ROOT/test/golden"
    export GM="$G/generate/model"
    export EXP="$G/generate/expected.json"
    export ST="$BATS_FILE_TMPDIR/st.py"
    cat > "$ST" <<'EOF'
"""Minimal safetensors reader/writer (standard library only) and the checks the tests need."""
import json, struct, sys
from array import array

CODES = {"F32": "f", "I32": "i", "I64": "q", "F64": "d", "U8": "B"}

def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        if v["dtype"] == "BF16":
            a = array("f", [struct.unpack("<f", struct.pack("<I", x << 16))[0]
                            for x in array("H", data[b:e])])
        else:
            a = array(CODES[v["dtype"]], data[b:e])
        out[k] = (v["dtype"], v["shape"], a)
    return out

def save(path, tensors):
    hdr, blobs, off = {}, [], 0
    for k, (dt, shape, vals) in tensors.items():
        b = array(CODES[dt], vals).tobytes()
        hdr[k] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

def rel(a, b):
    scale = max(max((abs(x) for x in b), default=0.0), 1e-6)
    return max((abs(x - y) for x, y in zip(a, b)), default=0.0) / scale

def cmd_input(golden, prefix, out, *flags):
    """Input file from a golden layout: input_ids (I64), attention_mask, [labels]."""
    g = load(golden)
    t = {"input_ids": ("I64",) + g[prefix + ".input_ids"][1:],
         "attention_mask": g[prefix + ".attention_mask"]}
    if "labels" in flags:
        t["labels"] = g[prefix + ".labels"]
    save(out, t)

def cmd_check(out, golden, prefix, tol):
    """logits (every row) and loss of an sw-eval output against a golden layout."""
    o, g = load(out), load(golden)
    assert o["logits"][1] == g[prefix + ".logits"][1], (o["logits"][1], g[prefix + ".logits"][1])
    r1 = rel(o["logits"][2], g[prefix + ".logits"][2])
    r2 = rel(o["loss"][2], g[prefix + ".loss"][2])
    assert r1 <= float(tol) and r2 <= float(tol), (r1, r2)
    print("ok logits %.2e loss %.2e" % (r1, r2))

def cmd_same(a, b, tol):
    """Two sw-eval outputs agree."""
    x, y = load(a), load(b)
    r = rel(x["logits"][2], y["logits"][2])
    assert x["logits"][1] == y["logits"][1] and r <= float(tol), r
    print("same %.2e" % r)

def cmd_ids(out, rows_json, mask_json=None):
    """Write input_ids (I32) [and attention_mask] from JSON lists of rows."""
    rows = json.loads(rows_json)
    t = {"input_ids": ("I32", [len(rows), len(rows[0])], [x for r in rows for x in r])}
    if mask_json:
        m = json.loads(mask_json)
        t["attention_mask"] = ("I32", [len(m), len(m[0])], [x for r in m for x in r])
    save(out, t)

def cmd_get(path, name):
    dt, shape, vals = load(path)[name]
    print(json.dumps({"dtype": dt, "shape": shape, "values": list(vals)[:8]}))

globals()["cmd_" + sys.argv[1]](*sys.argv[2:])
EOF
}

run_split() { # stdout and stderr captured separately
    run bash -c '"$@" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err"' _ "$@"
}

# One line on stderr matching $1, nothing on stdout, exit status $2 (default 1).
assert_one_line_error() {
    [ "$status" -eq "${2:-1}" ] || { echo "status $status"; cat "$BATS_TEST_TMPDIR/err"; return 1; }
    [ -z "$(cat "$BATS_TEST_TMPDIR/out")" ] || { echo "stdout not empty"; return 1; }
    [ "$(wc -l < "$BATS_TEST_TMPDIR/err")" -eq 1 ] || { cat "$BATS_TEST_TMPDIR/err"; return 1; }
    grep -q "^sw-eval: error: .*$1" "$BATS_TEST_TMPDIR/err" || { cat "$BATS_TEST_TMPDIR/err"; return 1; }
}

# The expected.json value at a Python expression over `e`.
expected() {
    python3 -c "import json,sys; e=json.load(open(sys.argv[1])); print(json.dumps($1))" "$EXP"
}

@test "help and usage errors" {
    run "$EVAL" --help
    assert_success
    assert_output --partial "logits"
    assert_output --partial "generate"
    run "$EVAL" logits --help
    assert_success
    assert_output --partial "labels = input_ids"
    run "$EVAL" generate --help
    assert_success
    assert_output --partial "inference engine (KV cache"
    run_split "$EVAL" frobnicate
    assert_one_line_error "unknown command 'frobnicate'" 2
    run_split "$EVAL" logits --input x --output y
    assert_one_line_error "required" 2
    run_split "$EVAL" generate --model "$GM"
    assert_one_line_error "exactly one of --prompt, --query and --messages" 2
    run_split "$EVAL" logits --model "$GM" --input x --output y --bogus 1
    [ "$status" -eq 2 ]
}

@test "logits: llama, qwen2, qwen3 goldens through the CLI (every row, loss with labels)" {
    for m in llama qwen2 qwen3; do
        python3 "$ST" input "$G/model/$m/golden.safetensors" pad "$BATS_TEST_TMPDIR/in.st" labels
        run "$EVAL" logits -q --model "$G/model/$m" --input "$BATS_TEST_TMPDIR/in.st" \
            --output "$BATS_TEST_TMPDIR/$m.st"
        assert_success
        run python3 "$ST" check "$BATS_TEST_TMPDIR/$m.st" "$G/model/$m/golden.safetensors" pad 1e-4
        assert_success
        assert_output --partial "ok logits"
    done
}

@test "logits --adapter: the PEFT golden of llama_lora" {
    python3 "$ST" input "$G/model/llama_lora/golden.safetensors" pad "$BATS_TEST_TMPDIR/in.st" labels
    run "$EVAL" logits --model "$G/model/llama" --adapter "$G/model/llama_lora" \
        --input "$BATS_TEST_TMPDIR/in.st" --output "$BATS_TEST_TMPDIR/out.st"
    assert_success
    assert_output --partial "r=4, lora_alpha=8, 14 modules"
    run python3 "$ST" check "$BATS_TEST_TMPDIR/out.st" "$G/model/llama_lora/golden.safetensors" pad 1e-4
    assert_success
    # without the adapter the logits differ from the adapter golden
    run "$EVAL" logits -q --model "$G/model/llama" --input "$BATS_TEST_TMPDIR/in.st" \
        --output "$BATS_TEST_TMPDIR/base.st"
    run python3 "$ST" check "$BATS_TEST_TMPDIR/base.st" "$G/model/llama_lora/golden.safetensors" pad 1e-4
    assert_failure
}

@test "logits: transformers' loss with labels = input_ids counts padding (golden)" {
    ids=$(expected 'e["hf_loss"]["input_ids"]')
    mask=$(expected 'e["hf_loss"]["attention_mask"]')
    want=$(expected 'e["hf_loss"]["loss"]')
    python3 "$ST" ids "$BATS_TEST_TMPDIR/in.st" "$ids" "$mask"
    run "$EVAL" logits -q --model "$GM" --input "$BATS_TEST_TMPDIR/in.st" --output "$BATS_TEST_TMPDIR/o.st"
    assert_success
    run python3 -c "
import json, subprocess, sys
g = lambda n: json.loads(subprocess.check_output([sys.executable, '$ST', 'get', '$BATS_TEST_TMPDIR/o.st', n]))
loss, count, logits = g('loss'), g('count'), g('logits')
rows = json.loads('$ids')
assert count['values'] == [len(rows) * (len(rows[0]) - 1)], count
assert abs(loss['values'][0] - $want) <= 1e-4 * abs($want), (loss, $want)
assert logits['dtype'] == 'F32' and logits['shape'] == [len(rows), len(rows[0]), 320], logits
print('ok', loss['values'][0], $want)"
    assert_success
    assert_output --partial "ok"
}

@test "logits: rows are independent of how they are grouped (--max_tokens 1), int32 input" {
    python3 "$ST" input "$G/model/qwen3/golden.safetensors" pad "$BATS_TEST_TMPDIR/in.st"
    "$EVAL" logits -q --model "$G/model/qwen3" --input "$BATS_TEST_TMPDIR/in.st" --output "$BATS_TEST_TMPDIR/a.st"
    "$EVAL" logits -q --model "$G/model/qwen3" --input "$BATS_TEST_TMPDIR/in.st" --output "$BATS_TEST_TMPDIR/b.st" --max_tokens 1
    run python3 "$ST" same "$BATS_TEST_TMPDIR/a.st" "$BATS_TEST_TMPDIR/b.st" 1e-6
    assert_success
    python3 "$ST" ids "$BATS_TEST_TMPDIR/one.st" '[[5, 9, 17, 3]]'
    run "$EVAL" logits -q --model "$G/model/qwen3" --input "$BATS_TEST_TMPDIR/one.st" --output "$BATS_TEST_TMPDIR/one.out"
    assert_success
    run python3 "$ST" get "$BATS_TEST_TMPDIR/one.out" count
    assert_output --partial '"values": [3]'
}

@test "logits: errors name the file and tensor, write nothing" {
    out="$BATS_TEST_TMPDIR/o.st"
    python3 "$ST" ids "$BATS_TEST_TMPDIR/big.st" '[[5, 97, 3]]'
    run_split "$EVAL" logits --model "$G/model/llama" --input "$BATS_TEST_TMPDIR/big.st" --output "$out"
    assert_one_line_error "token id 97 at row 0, column 1 outside vocabulary \[0, 97)"
    python3 "$ST" ids "$BATS_TEST_TMPDIR/left.st" '[[0, 5, 6]]' '[[0, 1, 1]]'
    run_split "$EVAL" logits --model "$G/model/llama" --input "$BATS_TEST_TMPDIR/left.st" --output "$out"
    assert_one_line_error "only right padding"
    python3 -c "
import struct, json
h = json.dumps({'x': {'dtype': 'I32', 'shape': [1, 2], 'data_offsets': [0, 8]}}).encode()
open('$BATS_TEST_TMPDIR/noids.st', 'wb').write(struct.pack('<Q', len(h)) + h + bytes(8))"
    run_split "$EVAL" logits --model "$G/model/llama" --input "$BATS_TEST_TMPDIR/noids.st" --output "$out"
    assert_one_line_error "noids.st: missing tensor 'input_ids'"
    run_split "$EVAL" logits --model "$BATS_TEST_TMPDIR/nowhere" --input "$BATS_TEST_TMPDIR/big.st" --output "$out"
    assert_one_line_error "nowhere"
    [ ! -e "$out" ]
    [ -z "$(ls -A "$BATS_TEST_TMPDIR" | grep -v '\.st$' | grep -v '^out$\|^err$')" ]
}

@test "logits --adapter: an adapter of another base model is a clear error" {
    python3 "$ST" ids "$BATS_TEST_TMPDIR/in.st" '[[5, 9, 17, 3]]'
    run_split "$EVAL" logits --model "$G/model/qwen3" --adapter "$G/model/llama_lora" \
        --input "$BATS_TEST_TMPDIR/in.st" --output "$BATS_TEST_TMPDIR/o.st"
    assert_one_line_error "llama_lora: adapter '.*q_proj.lora_A.weight' is for a \[32, 32\] layer but the base model's q_proj is \[64, 32\]"
    run_split "$EVAL" logits --model "$G/model/llama" --adapter "$G/model/llama" \
        --input "$BATS_TEST_TMPDIR/in.st" --output "$BATS_TEST_TMPDIR/o.st"
    assert_one_line_error "adapter_config.json"
    # PEFT layers_to_transform: sw-eval refuses, pointing at merge-lora
    run_split "$EVAL" logits --model "$G/model/llama" --adapter "$G/merge/partial" \
        --input "$BATS_TEST_TMPDIR/in.st" --output "$BATS_TEST_TMPDIR/o.st"
    assert_one_line_error "only some of the 2 layers.*merge-lora"
    # an adapter tensor sw cannot apply
    mkdir -p "$BATS_TEST_TMPDIR/emb"
    cp "$G/model/llama_lora/adapter_config.json" "$BATS_TEST_TMPDIR/emb/"
    python3 -c "
import struct, json
h = json.dumps({'base_model.model.model.embed_tokens.lora_embedding_A': {'dtype': 'F32', 'shape': [4, 97], 'data_offsets': [0, 1552]}}).encode()
open('$BATS_TEST_TMPDIR/emb/adapter_model.safetensors', 'wb').write(struct.pack('<Q', len(h)) + h + bytes(1552))"
    run_split "$EVAL" logits --model "$G/model/llama" --adapter "$BATS_TEST_TMPDIR/emb" \
        --input "$BATS_TEST_TMPDIR/in.st" --output "$BATS_TEST_TMPDIR/o.st"
    assert_one_line_error "lora_embedding_A' is not a LoRA A/B matrix of a decoder linear layer"
}

# ---- generate ---------------------------------------------------------------------------------

# sw-eval generate --json for a case of expected.json compared with transformers' ids.
check_case() { # $1 = case name, rest = sw-eval generate arguments
    local c="$1"; shift
    run bash -c 'set -o pipefail; "$EVAL" generate -q --model "$GM" --json "$@" | python3 -c "
import json, sys
e = json.load(open(sys.argv[1]))[\"cases\"][sys.argv[2]]
lines = sys.stdin.read().splitlines()
assert len(lines) == 1, lines
got = json.loads(lines[0])
assert got[\"prompt_tokens\"] == len(e[\"prompt_ids\"]), (got[\"prompt_tokens\"], len(e[\"prompt_ids\"]))
assert got[\"ids\"] == e[\"ids\"], (got[\"ids\"], e[\"ids\"])
assert got[\"text\"] == e[\"text\"], (got[\"text\"], e[\"text\"])
print(\"match\", got[\"finish_reason\"], len(got[\"ids\"]))
" "$EXP" "$0"' "$c" "$@"
}

@test "generate: greedy ids equal transformers' generate() for raw prompts" {
    check_case prompt_fox --prompt "The quick brown fox"
    assert_success
    assert_output "match length 24"
    check_case prompt_hello --prompt "Hello, how are"
    assert_success
    assert_output --regexp "^match stop [0-9]+$"
    check_case stop --prompt "What is the capital"
    assert_success
    assert_output --regexp "^match stop [0-9]+$"
}

@test "generate: chat messages through the chat template equal transformers' (apply_chat_template)" {
    printf '%s\n' '{"messages": [{"role": "system", "content": "You answer briefly."}, {"role": "user", "content": "What is two plus two?"}]}' > "$BATS_TEST_TMPDIR/m.jsonl"
    check_case chat --messages "$BATS_TEST_TMPDIR/m.jsonl"
    assert_success
    assert_output --partial "match"
    check_case chat --query "What is two plus two?" --system "You answer briefly."
    assert_success
    check_case chat --query "What is two plus two?" --system "You answer briefly." --template chatml
    assert_success
    # a final assistant answer is dropped and reported as the reference
    printf '%s\n' '{"messages": [{"role": "system", "content": "You answer briefly."}, {"role": "user", "content": "What is two plus two?"}, {"role": "assistant", "content": "Four."}]}' > "$BATS_TEST_TMPDIR/r.jsonl"
    check_case chat --messages "$BATS_TEST_TMPDIR/r.jsonl"
    assert_success
    run "$EVAL" generate -q --model "$GM" --json --messages "$BATS_TEST_TMPDIR/r.jsonl"
    assert_output --partial '"reference":"Four."'
}

@test "generate: repetition penalty as transformers applies it" {
    check_case penalty --prompt "Practice makes" --repetition_penalty 1.3
    assert_success
    assert_output --partial "match"
}

@test "generate: text output, several rows, max_new_tokens" {
    printf '%s\n' '{"query": "What is two plus two?"}' '{"messages": [{"role": "user", "content": "Hi"}]}' > "$BATS_TEST_TMPDIR/m.jsonl"
    run_split "$EVAL" generate --model "$GM" --messages "$BATS_TEST_TMPDIR/m.jsonl" --json --max_new_tokens 3
    assert_success
    run python3 -c "
import json
rows = [json.loads(l) for l in open('$BATS_TEST_TMPDIR/out')]
assert [r['index'] for r in rows] == [0, 1], rows
assert all(len(r['ids']) <= 3 for r in rows), rows
print('ok')"
    assert_success
    # text mode prints the same text as --json (escaped: one line), then a newline
    run_split "$EVAL" generate --model "$GM" --prompt "Hello, how are"
    assert_success
    want=$(expected 'e["cases"]["prompt_hello"]["text"]')
    run python3 -c "$unescape_check" "$BATS_TEST_TMPDIR/out" "$want"
    assert_success
}

# The text of a line of sw-eval generate's text mode, unescaped (\\ \n \r \t), equals the
# expected text, and the output is exactly one line.
unescape_check='
import json, re, sys
got = open(sys.argv[1], encoding="utf-8", errors="surrogateescape").read()
assert got.endswith("\n") and got.count("\n") == 1, ("not one line", got)
esc = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}
text = re.sub(r"\\(.)", lambda m: esc[m.group(1)], got[:-1])
want = json.loads(sys.argv[2])
assert text.encode("utf-8", "surrogateescape") == want.encode("utf-8", "surrogateescape"), (text, want)
print("ok")
'

@test "generate: text mode keeps one line per prompt when the text has newlines (issue 10)" {
    want=$(expected 'e["cases"]["penalty"]["text"]')
    [[ "$want" == *'\n'* ]] # the golden text of this case holds a newline
    run_split "$EVAL" generate --model "$GM" --prompt "Practice makes" --repetition_penalty 1.3
    assert_success
    run python3 -c "$unescape_check" "$BATS_TEST_TMPDIR/out" "$want"
    assert_success
}

@test "generate: a hub id or a folder that is not a model is named as such (issue 10)" {
    # a hub id is fetched (test/cli/hub-model.bats); offline and not cached it is named as such
    HF_HOME="$BATS_TEST_TMPDIR/hf" HF_HUB_OFFLINE=1 run_split "$EVAL" generate --model Qwen/Qwen2.5-0.5B --prompt "x"
    assert_one_line_error "'Qwen/Qwen2.5-0.5B' is not a local path and could not be had from the hub: .*not in the cache"
    mkdir -p "$BATS_TEST_TMPDIR/empty"
    run_split "$EVAL" generate --model "$BATS_TEST_TMPDIR/empty" --prompt "x"
    assert_one_line_error "is not a model folder: it has no config.json"
}

@test "generate: sampling is seeded; top_k 1 is greedy" {
    a=$("$EVAL" generate -q --model "$GM" --prompt "Hello" --json --temperature 1.5 --seed 7 --max_new_tokens 12)
    b=$("$EVAL" generate -q --model "$GM" --prompt "Hello" --json --temperature 1.5 --seed 7 --max_new_tokens 12)
    c=$("$EVAL" generate -q --model "$GM" --prompt "Hello" --json --temperature 1.5 --seed 8 --max_new_tokens 12)
    [ "$a" = "$b" ]
    [ "$a" != "$c" ]
    g=$("$EVAL" generate -q --model "$GM" --prompt "The quick brown fox" --json | jq -c .ids)
    s=$("$EVAL" generate -q --model "$GM" --prompt "The quick brown fox" --json --temperature 0.7 --top_k 1 --seed 3 | jq -c .ids)
    [ "$g" = "$s" ]
    [ "$g" = "$(expected 'e["cases"]["prompt_fox"]["ids"]' | jq -c .)" ]
}

@test "generate: errors" {
    run_split "$EVAL" generate --model "$G/model/llama" --prompt "x"
    assert_one_line_error "tokenizer"
    run_split "$EVAL" generate --model "$GM" --query "x" --template nope
    assert_one_line_error "unknown --template 'nope'" 2
    printf '%s\n' '{"text": "plain"}' > "$BATS_TEST_TMPDIR/t.jsonl"
    run_split "$EVAL" generate --model "$GM" --messages "$BATS_TEST_TMPDIR/t.jsonl"
    assert_one_line_error "t.jsonl:1: a plain-text row"
}
