#!/usr/bin/env bats
# sw-quant merge-lora: the merged tensors equal PEFT's merge_and_unload() (goldens from
# test/golden/gen_merge.py: float32 all-linear adapter, a partial rsLoRA adapter with
# layers_to_transform, a bf16 base), untouched tensors are byte-identical, config / generation
# config / tokenizer files are carried over, --dtype converts and updates config.json, the output
# appears atomically, and the merged folder computes what base + adapter computes (sw-eval) and
# loads in transformers (when torch and transformers are importable). Python's standard library
# reads the safetensors files.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup_file() {
    export ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
    export QUANT="${SW_BIN:-$ROOT/bin}/sw-quant"
    export EVAL="${SW_BIN:-$ROOT/bin}/sw-eval"
    export G="$ROOT/test/golden"
    export BASE="$G/model/llama"
    export LORA="$G/model/llama_lora"
    export ST="$BATS_FILE_TMPDIR/st.py"
    cat > "$ST" <<'EOF'
"""Standard-library safetensors reader and the comparisons of the merge tests."""
import json, struct, sys
from array import array

CODES = {"F32": "f", "I32": "i", "I64": "q", "F16": "e", "BF16": "H"}

def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    meta = hdr.pop("__metadata__", {})
    data = raw[8 + n:]
    out = {}
    for k, v in hdr.items():
        b, e = v["data_offsets"]
        out[k] = (v["dtype"], v["shape"], array(CODES[v["dtype"]], data[b:e]), data[b:e])
    return out, meta

def folder(path):
    """Every tensor of a model folder (single file or index + shards)."""
    import os
    idx = os.path.join(path, "model.safetensors.index.json")
    if os.path.exists(idx):
        out = {}
        for f in sorted(set(json.load(open(idx))["weight_map"].values())):
            out.update(load(os.path.join(path, f))[0])
        return out
    return load(os.path.join(path, "model.safetensors"))[0]

def bf16(h):
    return struct.unpack("<f", struct.pack("<I", h << 16))[0]

def cmd_compare(merged_dir, golden, tol, ulp="0"):
    """Every golden tensor in the merged folder: same dtype and shape; F32 within tol relative
    to the tensor's max, BF16 within ulp units in the last place."""
    m, (g, _) = folder(merged_dir), load(golden)
    worst = 0.0
    for k, (dt, shape, vals, _) in g.items():
        assert k in m, "missing " + k
        mdt, mshape, mvals, _ = m[k]
        assert (mdt, mshape) == (dt, shape), (k, mdt, mshape, dt, shape)
        if dt == "BF16":
            d = max(abs(a - b) for a, b in zip(mvals, vals))  # bit patterns of same-sign values
            assert d <= int(ulp), (k, d)
        else:
            scale = max(max(abs(x) for x in vals), 1e-6)
            r = max(abs(a - b) for a, b in zip(mvals, vals)) / scale
            assert r <= float(tol), (k, r)
            worst = max(worst, r)
    print("ok %d tensors, worst %.2e" % (len(g), worst))

def cmd_untouched(merged_dir, base_dir, changed_golden):
    """Tensors the adapter does not touch are byte-identical to the base; the others differ."""
    m, b = folder(merged_dir), folder(base_dir)
    changed = set(load(changed_golden)[0])
    assert set(m) == set(b), set(m) ^ set(b)
    for k in b:
        same = m[k][3] == b[k][3]
        assert same == (k not in changed), k
    print("ok %d untouched" % (len(b) - len(changed)))

def cmd_dtypes(merged_dir):
    print(" ".join(sorted(set(v[0] for v in folder(merged_dir).values()))))

def cmd_meta(path):
    print(json.dumps(load(path)[1], sort_keys=True))

globals()["cmd_" + sys.argv[1]](*sys.argv[2:])
EOF
}

run_split() { # stdout and stderr captured separately
    run bash -c '"$@" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err"' _ "$@"
}

assert_one_line_error() { # $1 = regex, $2 = status (default 1)
    [ "$status" -eq "${2:-1}" ] || { echo "status $status"; cat "$BATS_TEST_TMPDIR/err"; return 1; }
    [ "$(wc -l < "$BATS_TEST_TMPDIR/err")" -eq 1 ] || { cat "$BATS_TEST_TMPDIR/err"; return 1; }
    grep -q "^sw-quant: error: .*$1" "$BATS_TEST_TMPDIR/err" || { cat "$BATS_TEST_TMPDIR/err"; return 1; }
}

@test "merge-lora: help and usage errors" {
    run "$QUANT" --help
    assert_output --partial "merge-lora"
    run "$QUANT" merge-lora --help
    assert_success
    assert_output --partial "W + scale * B * A"
    run_split "$QUANT" merge-lora --model "$BASE" --output x
    assert_one_line_error "required" 2
    run_split "$QUANT" merge-lora --model "$BASE" --adapter "$LORA" --output x --dtype int8
    [ "$status" -eq 2 ]
}

@test "merge-lora: --output_dir (ms-swift's name); a base without generation_config.json gets the one transformers derives (issue 10)" {
    run "$QUANT" merge-lora --help
    assert_output --partial "folder to create with the merged model (ms-swift export's name)"
    assert_output --partial "default transformers derives from the base's config.json: its bos/eos/pad token ids"
    cd "$BATS_TEST_TMPDIR"
    cp -r "$BASE" base
    rm base/generation_config.json
    [ ! -e "$LORA/generation_config.json" ]
    run "$QUANT" merge-lora -q --model base --adapter "$LORA" --output_dir merged
    assert_success
    [ -s merged/model.safetensors ] && [ -s merged/generation_config.json ]
    grep -q '"_from_model_config": true' merged/generation_config.json
    if python3 -c 'import transformers' 2>/dev/null; then
        run python3 -c '
import json, sys
from transformers import AutoConfig, GenerationConfig
want = GenerationConfig.from_model_config(AutoConfig.from_pretrained(sys.argv[1])).to_diff_dict()
got = json.load(open(sys.argv[2]))
# The token ids and the origin mark, as transformers derives them (transformers 5 also copies
# settings such as use_cache that sw does not read).
ids = {k: v for k, v in want.items() if k.endswith("_token_id") or k == "_from_model_config"}
assert got == ids, (got, want)
print("same as transformers:", got)' base merged/generation_config.json
        assert_success
    fi
    HF_HOME="$PWD/hf" HF_HUB_OFFLINE=1 run_split "$QUANT" merge-lora --model Qwen/Qwen2.5-0.5B --adapter "$LORA" --output_dir m2
    assert_one_line_error "'Qwen/Qwen2.5-0.5B' is not a local path and could not be had from the hub"
    [ ! -e m2 ]
}

@test "merge-lora: float32 all-linear adapter equals PEFT merge_and_unload" {
    out="$BATS_TEST_TMPDIR/merged"
    run "$QUANT" merge-lora --model "$BASE" --adapter "$LORA" --output "$out"
    assert_success
    assert_output --partial "merged 14 LoRA modules (scale 2)"
    run python3 "$ST" compare "$out" "$G/merge/llama_lora.safetensors" 1e-6
    assert_success
    assert_output --partial "ok 21 tensors"
    cmp "$BASE/config.json" "$out/config.json"
    cmp "$BASE/generation_config.json" "$out/generation_config.json"
    run python3 "$ST" meta "$out/model.safetensors"
    assert_output --partial '"format": "pt"'
    # nothing else is left next to the output
    [ "$(ls "$BATS_TEST_TMPDIR" | grep -c merged)" -eq 1 ]
}

@test "merge-lora: partial rsLoRA adapter (layers_to_transform) merges only what it covers" {
    out="$BATS_TEST_TMPDIR/merged"
    run "$QUANT" merge-lora --model "$BASE" --adapter "$G/merge/partial" --output "$out"
    assert_success
    assert_output --partial "merged 2 LoRA modules"
    run python3 "$ST" compare "$out" "$G/merge/partial.safetensors" 1e-6
    assert_success
    run python3 "$ST" untouched "$out" "$BASE" "$G/merge/partial.safetensors"
    assert_success
    assert_output --partial "ok 19 untouched"
}

@test "merge-lora: a bf16 base stays bf16 and matches PEFT's bf16 merge within one ulp" {
    out="$BATS_TEST_TMPDIR/merged"
    run "$QUANT" merge-lora -q --model "$G/merge/bf16" --adapter "$LORA" --output "$out"
    assert_success
    run python3 "$ST" compare "$out" "$G/merge/bf16.safetensors" 0 1
    assert_success
    run python3 "$ST" dtypes "$out"
    assert_output "BF16"
    cmp "$G/merge/bf16/config.json" "$out/config.json"
}

@test "merge-lora --dtype: converts every float tensor and updates config.json" {
    out="$BATS_TEST_TMPDIR/m32"
    run "$QUANT" merge-lora -q --model "$G/merge/bf16" --adapter "$LORA" --output "$out" --dtype float32
    assert_success
    run python3 "$ST" dtypes "$out"
    assert_output "F32"
    run jq -r '.dtype // .torch_dtype' "$out/config.json"
    assert_output "float32"
    # every other config key unchanged
    run bash -c "diff <(jq -S 'del(.dtype, .torch_dtype)' '$G/merge/bf16/config.json') <(jq -S 'del(.dtype, .torch_dtype)' '$out/config.json')"
    assert_success
    out="$BATS_TEST_TMPDIR/m16"
    run "$QUANT" merge-lora -q --model "$BASE" --adapter "$LORA" --output "$out" --dtype bfloat16
    assert_success
    run python3 "$ST" dtypes "$out"
    assert_output "BF16"
    run jq -r '.dtype // .torch_dtype' "$out/config.json"
    assert_output "bfloat16"
}

@test "merge-lora: the merged model computes what base + adapter computes (sw-eval logits)" {
    out="$BATS_TEST_TMPDIR/merged"
    "$QUANT" merge-lora -q --model "$BASE" --adapter "$LORA" --output "$out" --max_shard_size 30000
    [ -f "$out/model.safetensors.index.json" ]
    [ -f "$out/model-00001-of-00004.safetensors" ] || [ -f "$out/model-00001-of-00005.safetensors" ]
    python3 -c "
import struct, json
ids = [5, 9, 17, 3, 44, 80, 2, 61]
h = json.dumps({'input_ids': {'dtype': 'I32', 'shape': [1, 8], 'data_offsets': [0, 32]}}).encode()
open('$BATS_TEST_TMPDIR/in.st', 'wb').write(struct.pack('<Q', len(h)) + h + struct.pack('<8i', *ids))"
    "$EVAL" logits -q --model "$out" --input "$BATS_TEST_TMPDIR/in.st" --output "$BATS_TEST_TMPDIR/a.st"
    "$EVAL" logits -q --model "$BASE" --adapter "$LORA" --input "$BATS_TEST_TMPDIR/in.st" --output "$BATS_TEST_TMPDIR/b.st"
    "$EVAL" logits -q --model "$BASE" --input "$BATS_TEST_TMPDIR/in.st" --output "$BATS_TEST_TMPDIR/c.st"
    run python3 -c "
import sys
sys.argv = ['st', 'x']
exec(open('$ST').read().split('globals()[')[0])
a, b, c = (load('$BATS_TEST_TMPDIR/%s.st' % n)[0]['logits'][2] for n in 'abc')
scale = max(abs(x) for x in b)
d_ab = max(abs(x - y) for x, y in zip(a, b)) / scale
d_ac = max(abs(x - y) for x, y in zip(a, c)) / scale
assert d_ab < 1e-5 and d_ac > 1e-3, (d_ab, d_ac)
print('ok', d_ab, d_ac)"
    assert_success
}

@test "merge-lora: existing output is refused (or replaced with --force), errors leave nothing" {
    out="$BATS_TEST_TMPDIR/merged"
    mkdir -p "$out" && echo keep > "$out/file"
    run_split "$QUANT" merge-lora --model "$BASE" --adapter "$LORA" --output "$out"
    assert_one_line_error "merged' exists (remove it or pass --force)"
    [ "$(cat "$out/file")" = keep ]
    run "$QUANT" merge-lora -q --model "$BASE" --adapter "$LORA" --output "$out" --force
    assert_success
    [ ! -e "$out/file" ] && [ -f "$out/model.safetensors" ]
    [ "$(ls "$BATS_TEST_TMPDIR" | grep -c merged)" -eq 1 ]
    # an adapter of another base model
    run_split "$QUANT" merge-lora --model "$G/model/qwen3" --adapter "$LORA" --output "$BATS_TEST_TMPDIR/bad"
    assert_one_line_error "is for a \[32, 32\] layer but the base model's q_proj is \[64, 32\]"
    [ ! -e "$BATS_TEST_TMPDIR/bad" ]
    # a base folder missing an adapted weight (its config implies the tensor, the file lacks it)
    mkdir -p "$BATS_TEST_TMPDIR/hole"
    cp "$BASE/config.json" "$BATS_TEST_TMPDIR/hole/"
    python3 -c "
import json, struct
raw = open('$BASE/model.safetensors', 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]; hdr = json.loads(raw[8:8 + n]); data = raw[8 + n:]
hdr.pop('__metadata__', None)
drop = 'model.layers.1.mlp.up_proj.weight'
out, blobs, off = {}, [], 0
for k, v in sorted(hdr.items(), key=lambda kv: kv[1]['data_offsets'][0]):
    if k == drop: continue
    b, e = v['data_offsets']; blobs.append(data[b:e])
    out[k] = {'dtype': v['dtype'], 'shape': v['shape'], 'data_offsets': [off, off + e - b]}; off += e - b
h = json.dumps(out).encode(); h += b' ' * (-len(h) % 8)
open('$BATS_TEST_TMPDIR/hole/model.safetensors', 'wb').write(struct.pack('<Q', len(h)) + h + b''.join(blobs))"
    run_split "$QUANT" merge-lora --model "$BATS_TEST_TMPDIR/hole" --adapter "$LORA" --output "$BATS_TEST_TMPDIR/bad"
    assert_one_line_error "the base model has no tensor 'model.layers.1.mlp.up_proj.weight'"
    [ ! -e "$BATS_TEST_TMPDIR/bad" ]
    [ -z "$(ls "$BATS_TEST_TMPDIR" | grep tmp-)" ]
}

@test "merge-lora: tokenizer files are copied (from the adapter folder when the base has none)" {
    mkdir -p "$BATS_TEST_TMPDIR/ad"
    cp "$LORA"/adapter_* "$BATS_TEST_TMPDIR/ad/"
    printf '{"version": "1.0"}\n' > "$BATS_TEST_TMPDIR/ad/tokenizer.json"
    printf '{"eos_token": "x"}\n' > "$BATS_TEST_TMPDIR/ad/tokenizer_config.json"
    run "$QUANT" merge-lora -q --model "$BASE" --adapter "$BATS_TEST_TMPDIR/ad" --output "$BATS_TEST_TMPDIR/m"
    assert_success
    cmp "$BATS_TEST_TMPDIR/ad/tokenizer.json" "$BATS_TEST_TMPDIR/m/tokenizer.json"
    cmp "$BATS_TEST_TMPDIR/ad/tokenizer_config.json" "$BATS_TEST_TMPDIR/m/tokenizer_config.json"
    # the generate golden model: its own tokenizer files travel with it
    gm="$G/generate/model"
    mkdir -p "$BATS_TEST_TMPDIR/zero"
    python3 - "$gm" "$BATS_TEST_TMPDIR/zero" <<'EOF'
import json, struct, sys
src, dst = sys.argv[1], sys.argv[2]
cfg = json.load(open(src + "/config.json"))
C, L, r = cfg["hidden_size"], cfg["num_hidden_layers"], 2
tensors, blobs, off = {}, [], 0
for l in range(L):
    for part, shape_a, shape_b in (("A", [r, C], None), ("B", None, [cfg["num_attention_heads"] * cfg["head_dim"], r])):
        shape = shape_a or shape_b
        n = shape[0] * shape[1] * 4
        tensors["base_model.model.model.layers.%d.self_attn.q_proj.lora_%s.weight" % (l, part)] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + n]}
        blobs.append(bytes(n)); off += n
h = json.dumps(tensors).encode(); h += b" " * (-len(h) % 8)
open(dst + "/adapter_model.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
json.dump({"peft_type": "LORA", "r": r, "lora_alpha": 4, "target_modules": ["q_proj"], "bias": "none"}, open(dst + "/adapter_config.json", "w"))
EOF
    run "$QUANT" merge-lora -q --model "$gm" --adapter "$BATS_TEST_TMPDIR/zero" --output "$BATS_TEST_TMPDIR/g"
    assert_success
    for f in tokenizer.json tokenizer_config.json generation_config.json config.json; do
        cmp "$gm/$f" "$BATS_TEST_TMPDIR/g/$f"
    done
    # B = 0: the merged weights are the base's, bit for bit
    cmp "$gm/model.safetensors" "$BATS_TEST_TMPDIR/g/model.safetensors" ||
        python3 -c "
import sys
exec(open('$ST').read().split('globals()[')[0])
a, b = folder('$gm'), folder('$BATS_TEST_TMPDIR/g')
assert all(a[k][3] == b[k][3] for k in a) and set(a) == set(b)"
    # and sw-eval generate runs on the merged folder like on the base
    a=$("$EVAL" generate -q --model "$gm" --prompt "The quick brown fox" --json --max_new_tokens 5)
    b=$("$EVAL" generate -q --model "$BATS_TEST_TMPDIR/g" --prompt "The quick brown fox" --json --max_new_tokens 5)
    [ "$a" = "$b" ]
}

@test "merge-lora: transformers loads the merged folder and reproduces PEFT's logits" {
    python3 -c "import torch, transformers" 2>/dev/null ||
        skip "python packages torch and transformers not installed (pip install torch transformers)"
    out="$BATS_TEST_TMPDIR/merged"
    "$QUANT" merge-lora -q --model "$BASE" --adapter "$LORA" --output "$out"
    run python3 - "$out" "$LORA/golden.safetensors" <<'EOF'
import sys, torch, transformers
from safetensors.torch import load_file
m = transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
g = load_file(sys.argv[2])
with torch.no_grad():
    out = m(input_ids=g["pad.input_ids"].long(), attention_mask=g["pad.attention_mask"].long(),
            position_ids=g["pad.position_ids"].long())
ref = g["pad.logits"]
r = float((out.logits - ref).abs().max() / ref.abs().max())
assert r < 1e-4, r
print("ok", r)
EOF
    assert_success
    assert_output --partial "ok"
}
