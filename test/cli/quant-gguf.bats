#!/usr/bin/env bats
# sw-quant gguf / dequant / inspect on GGUF: exports of random Llama (llama3 rope, biases, q/k
# permutation), Qwen2 and Qwen3 (tied, bf16) models built by test/golden/quant/make_model.py
# (rows of 256, and an "odd" model whose rows are not whole 256-blocks) in every file type;
# llama.cpp's per-tensor type mix and fallbacks; the adapter path equals merge-lora + export byte
# for byte; importance matrices (legacy format) change the K-quants and are checked for length;
# errors (rows not whole 32-blocks, NaN weights, unsupported architecture, existing output,
# truncated GGUF) name the tensor or file and leave nothing behind. When the PyPI `gguf` package
# (with numpy) is importable, gguf.GGUFReader reads every export and check_gguf.py compares keys,
# tokenizer, names, shapes and types with llama.cpp's rules, the dequantized weights with the
# model's, and gguf.quants.dequantize with sw's dequantizer bit for bit. When llama-cpp-python
# is importable, llama.cpp itself loads the export and its logits match sw-eval's.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup_file() {
    export ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
    export QUANT="${SW_BIN:-$ROOT/bin}/sw-quant"
    export EVAL="${SW_BIN:-$ROOT/bin}/sw-eval"
    export GQ="$ROOT/test/golden/quant"
    export T="$BATS_FILE_TMPDIR"
    python3 "$GQ/make_model.py" "$T/qwen2" --arch qwen2 --lora "$T/lora"
    python3 "$GQ/make_model.py" "$T/llama" --arch llama --rope llama3 --bias --layers 3
    python3 "$GQ/make_model.py" "$T/qwen3" --arch qwen3 --tie --dtype bf16 --kv 1
    python3 "$GQ/make_model.py" "$T/odd" --arch qwen2 --hidden 288 --inter 320 --layers 8
    if python3 -c 'import gguf, numpy' 2>/dev/null; then export HAVE_GGUF=1; fi
}

kv() { # FILE.gguf KEY... : the scalar values, space-separated
    local f=$1; shift
    "$QUANT" inspect --json "$f" | python3 -c "import json,sys; d=json.load(sys.stdin)['metadata']; print(' '.join(str(d[k]['value']) for k in sys.argv[1:]))" "$@"
}

json_get() { # FILE.gguf PYTHON-EXPR over d (inspect --json document)
    "$QUANT" inspect --json "$1" | python3 -c "import json,sys; d=json.load(sys.stdin); print($2)"
}

@test "gguf: every file type exports, inspect lists it, the file type is recorded" {
    for t in f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_k_s q4_k_m q5_k_s q5_k_m q6_k; do
        run "$QUANT" gguf --model "$T/qwen2" --quant_type "$t" --output "$T/qwen2-$t.gguf"
        assert_success
        assert_output --partial "wrote $T/qwen2-$t.gguf: 27 tensors"
    done
    run "$QUANT" inspect "$T/qwen2-q4_k_m.gguf"
    assert_success
    assert_output --partial 'general.architecture (str) = "qwen2"'
    assert_output --partial 'general.file_type (u32) = 15'
    assert_output --partial 'tokenizer.ggml.model (str) = "gpt2"'
    assert_output --partial 'tokenizer.ggml.pre (str) = "gpt-2"'
    assert_output --partial 'tokenizer.ggml.tokens [str x 320]'
    assert_output --partial 'blk.0.attn_q.weight'
    assert_output --partial 'total: 27 tensors, 1345792 parameters'
    run json_get "$T/qwen2-bf16.gguf" "d['metadata']['general.file_type']['value'], d['types']"
    assert_output "32 {'F32': {'tensors': 11, 'bytes': 9216}, 'BF16': {'tensors': 16, 'bytes': 2686976}}"
}

@test "gguf: llama.cpp's K-quant mix: output Q6_K, attn_v/ffn_down Q6_K on use_more_bits layers" {
    run json_get "$T/qwen2-q4_k_m.gguf" "' '.join(t['name']+':'+t['type'] for t in d['tensors'] if t['type']!='F32')"
    assert_output --partial "token_embd.weight:Q4_K"
    assert_output --partial "output.weight:Q6_K"
    assert_output --partial "blk.0.attn_v.weight:Q4_K"
    assert_output --partial "blk.1.attn_v.weight:Q6_K"
    assert_output --partial "blk.0.ffn_down.weight:Q4_K"
    assert_output --partial "blk.1.ffn_down.weight:Q6_K"
    assert_output --partial "blk.1.ffn_up.weight:Q4_K"
    # q4_0 keeps Q4_0 everywhere except the output matrix
    run json_get "$T/qwen2-q4_0.gguf" "sorted(set(t['type'] for t in d['tensors'])), [t['type'] for t in d['tensors'] if t['name']=='output.weight']"
    assert_output "['F32', 'Q4_0', 'Q6_K'] ['Q6_K']"
    # tied embeddings: token_embd is the output matrix (Q6_K), no output.weight
    run "$QUANT" gguf --model "$T/qwen3" --quant_type q4_k_m --output "$T/qwen3-q4_k_m.gguf"
    assert_success
    run json_get "$T/qwen3-q4_k_m.gguf" "[t['type'] for t in d['tensors'] if t['name']=='token_embd.weight'], any(t['name']=='output.weight' for t in d['tensors'])"
    assert_output "['Q6_K'] False"
}

@test "gguf: rows that are not whole 256-blocks fall back as llama.cpp does, with a warning" {
    run "$QUANT" gguf --model "$T/odd" --quant_type q4_k_m --output "$T/odd.gguf"
    assert_success
    assert_output --partial "warning: blk.0.attn_q.weight: rows of 288 are not whole 256-blocks: Q5_0"
    run json_get "$T/odd.gguf" "sorted(set(t['type'] for t in d['tensors']))"
    assert_output "['F32', 'Q5_0', 'Q8_0']"
    run "$QUANT" gguf -q --model "$T/odd" --quant_type q5_k_m --output "$T/odd5.gguf"
    run json_get "$T/odd5.gguf" "sorted(set(t['type'] for t in d['tensors']))"
    assert_output "['F32', 'Q5_1', 'Q8_0']"
}

@test "gguf: --adapter equals merge-lora followed by the export, byte for byte" {
    run "$QUANT" gguf --model "$T/qwen2" --adapter "$T/lora" --quant_type q4_k_m --output "$T/a1.gguf"
    assert_success
    assert_output --partial "merged 6 LoRA modules"
    "$QUANT" merge-lora -q --model "$T/qwen2" --adapter "$T/lora" --output "$T/merged" --dtype float32
    "$QUANT" gguf -q --model "$T/merged" --name qwen2 --quant_type q4_k_m --output "$T/a2.gguf"
    cmp "$T/a1.gguf" "$T/a2.gguf"
    run cmp -s "$T/a1.gguf" "$T/qwen2-q4_k_m.gguf"
    assert_failure # the adapter changed the weights
    run bash -c "ls '$T' | grep -c merge-tmp"
    assert_output 0
}

@test "gguf: an importance matrix changes the K-quants; a wrong length names the entry" {
    python3 - "$T/qwen2" "$T/im.dat" "$T/im_bad.dat" <<'EOF'
import json, struct, sys
cfg = json.load(open(sys.argv[1] + "/config.json"))
H, I, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
def entry(name, n, w):
    b = name.encode()
    return struct.pack("<i", len(b)) + b + struct.pack("<ii", 10, n) + struct.pack("<%df" % n, *w)
def dump(path, bad):
    ents = []
    for l in range(L):
        for t, n in (("attn_q", H), ("attn_k", H), ("attn_v", H), ("attn_output", H),
                     ("ffn_gate", H), ("ffn_up", H), ("ffn_down", I)):
            n2 = n - 32 if bad and t == "ffn_down" else n
            ents.append(entry(f"blk.{l}.{t}.weight", n2, [10.0 * (1 + (k % 7)) for k in range(n2)]))
    open(path, "wb").write(struct.pack("<i", len(ents)) + b"".join(ents))
dump(sys.argv[2], False); dump(sys.argv[3], True)
EOF
    run "$QUANT" gguf --model "$T/qwen2" --quant_type q4_k_m --imatrix "$T/im.dat" --output "$T/im.gguf"
    assert_success
    assert_output --partial "importance weights used for 14 K-quant tensors"
    run cmp -s "$T/im.gguf" "$T/qwen2-q4_k_m.gguf"
    assert_failure
    run "$QUANT" gguf --model "$T/qwen2" --quant_type q4_k_m --imatrix "$T/im_bad.dat" --output "$T/im2.gguf"
    assert_failure
    assert_output --partial "importance entry 'blk.0.ffn_down.weight' has 480 values but the tensor's rows have 512"
    [ ! -e "$T/im2.gguf" ]
    printf 'xx' > "$T/trunc.dat"
    run "$QUANT" gguf --model "$T/qwen2" --quant_type q4_k_m --imatrix "$T/trunc.dat" --output "$T/im3.gguf"
    assert_failure
    assert_output --partial "truncated"
}

@test "gguf: bad input is a one-line error naming the tensor, and nothing is written" {
    python3 "$GQ/make_model.py" "$T/small" --arch qwen2 --hidden 48 --inter 96 --heads 4 --kv 2
    run "$QUANT" gguf --model "$T/small" --quant_type q8_0 --output "$T/small.gguf"
    assert_failure
    assert_output --partial "tensor 'token_embd.weight': rows of 48 elements are not a multiple of the Q8_0 block size 32"
    [ ! -e "$T/small.gguf" ]
    run "$QUANT" gguf -q --model "$T/small" --quant_type f16 --output "$T/small.gguf"
    assert_success
    python3 "$GQ/make_model.py" "$T/nan" --arch qwen2 --nan model.layers.1.mlp.up_proj.weight
    run "$QUANT" gguf --model "$T/nan" --quant_type q4_k_m --output "$T/nan.gguf"
    assert_failure
    assert_output --partial "tensor 'model.layers.1.mlp.up_proj.weight': element 5 is NaN"
    [ ! -e "$T/nan.gguf" ]
    run bash -c "ls -A '$T' | grep -c '^\.nan'"
    assert_output 0
    cp -r "$T/small" "$T/mistral"
    sed -i 's/"model_type": "qwen2"/"model_type": "mistral"/' "$T/mistral/config.json"
    run "$QUANT" gguf --model "$T/mistral" --quant_type f16 --output "$T/m.gguf"
    assert_failure
    assert_output --partial "mistral"
    run "$QUANT" gguf --model "$T/qwen2" --quant_type q4_k_m --output "$T/qwen2-q4_k_m.gguf"
    assert_failure
    assert_output --partial "exists (use --force to replace it)"
    run "$QUANT" gguf --model "$T/qwen2" --quant_type q3_k_m --output "$T/x.gguf"
    assert_failure 2
    head -c 3000 "$T/qwen2-q4_k_m.gguf" > "$T/cut.gguf"
    run "$QUANT" inspect "$T/cut.gguf"
    assert_failure
    assert_output --partial "cut.gguf: truncated"
}

@test "gguf: real tokenizers (Qwen3, Llama 3, Llama 2) as tokenizer.ggml.* the way convert_hf_to_gguf writes them" {
    D="$ROOT/data/tokenizers"
    small="--hidden 16 --inter 32 --heads 2 --kv 1 --head_dim 8 --layers 1 --tie"
    python3 "$GQ/make_model.py" "$T/tq3" --arch qwen3 $small --vocab 151669 --tokenizer "$D/qwen3"
    python3 "$GQ/make_model.py" "$T/tl3" --arch llama $small --vocab 128256 --tokenizer "$D/llama3"
    python3 "$GQ/make_model.py" "$T/tl2" --arch llama $small --vocab 32000 --tokenizer "$D/llama2"
    for m in tq3 tl3 tl2; do "$QUANT" gguf -q --model "$T/$m" --quant_type f16 --output "$T/$m.gguf"; done
    run kv "$T/tq3.gguf" tokenizer.ggml.model tokenizer.ggml.pre tokenizer.ggml.eos_token_id \
        tokenizer.ggml.padding_token_id
    assert_output "gpt2 qwen2 151645 151643"
    run json_get "$T/tq3.gguf" "d['metadata']['tokenizer.ggml.merges']['n'], d['metadata']['tokenizer.chat_template']['value'][:15]"
    assert_output "151387 {%- if tools %}"
    run kv "$T/tl3.gguf" tokenizer.ggml.model tokenizer.ggml.pre tokenizer.ggml.bos_token_id \
        tokenizer.ggml.eos_token_id
    assert_output "gpt2 llama-bpe 128000 128001"
    run kv "$T/tl2.gguf" tokenizer.ggml.model tokenizer.ggml.add_space_prefix \
        tokenizer.ggml.add_bos_token tokenizer.ggml.bos_token_id tokenizer.ggml.eos_token_id \
        tokenizer.ggml.unknown_token_id
    assert_output "llama True True 1 2 0"
    run json_get "$T/tl2.gguf" "d['metadata']['tokenizer.ggml.token_type']['head'][:4], 'tokenizer.ggml.merges' in d['metadata']"
    assert_output "[3, 3, 3, 6] False"
    if [ -n "${HAVE_GGUF:-}" ]; then
        for m in tq3 tl3 tl2; do
            run python3 "$GQ/check_gguf.py" meta "$T/$m.gguf" "$T/$m" f16
            [ "$status" -eq 0 ] || { echo "$m: $output"; false; }
        done
    fi
}

@test "dequant: every tensor as float32 safetensors, shapes outermost first" {
    run "$QUANT" dequant "$T/qwen2-q4_k_m.gguf" --output "$T/d.safetensors"
    assert_success
    run "$QUANT" inspect "$T/d.safetensors"
    assert_success
    assert_output --partial "blk.1.ffn_down.weight"
    assert_output --partial "F32"
    assert_output --partial "[256, 512]"
}

@test "gguf-py: GGUFReader reads every export; keys, tokenizer, names, shapes, types, values" {
    [ -n "${HAVE_GGUF:-}" ] || skip "python package gguf (and numpy) not installed: pip install gguf numpy"
    for m in qwen2 llama qwen3 odd; do
        for t in f16 bf16 q8_0 q4_0 q4_k_m q5_k_m q6_k q4_k_s; do
            [ -e "$T/$m-$t.gguf" ] || "$QUANT" gguf -q --model "$T/$m" --quant_type "$t" --output "$T/$m-$t.gguf" || {
                [ "$m" = odd ] && [ "$t" = q4_0 -o "$t" = q8_0 ] && continue
                false
            }
            run python3 "$GQ/check_gguf.py" meta "$T/$m-$t.gguf" "$T/$m" "$t"
            [ "$status" -eq 0 ] || { echo "$m $t: $output"; false; }
        done
    done
}

@test "gguf-py: gguf.quants.dequantize equals sw's dequantizer on every exported tensor" {
    [ -n "${HAVE_GGUF:-}" ] || skip "python package gguf (and numpy) not installed: pip install gguf numpy"
    for f in "$T"/*-q*.gguf "$T/odd.gguf" "$T/im.gguf"; do
        [ -e "$f" ] || continue
        "$QUANT" dequant "$f" --output "$T/deq.safetensors"
        run python3 "$GQ/check_gguf.py" deq "$f" "$T/deq.safetensors"
        [ "$status" -eq 0 ] || { echo "$f: $output"; false; }
    done
}

@test "llama.cpp (llama-cpp-python): loads sw's GGUF, logits match sw-eval's, its quantizer gives sw's bytes" {
    python3 -c 'import llama_cpp' 2>/dev/null || skip "llama-cpp-python not installed (it compiles llama.cpp)"
    [ -x "$EVAL" ] || skip "sw-eval not built"
    run python3 "$GQ/check_llama_cpp.py" "$EVAL" "$QUANT" "$T"
    echo "$output"
    assert_success
    # llama.cpp's own quantizer (llama_model_quantize on sw's F32 export) gives the same types
    # and bytes as sw's export for every file type, mixes and fallbacks included
    for m in qwen2 llama qwen3 odd; do
        run python3 "$GQ/check_llama_cpp.py" quantizer "$QUANT" "$T/$m" "$T" q8_0 q4_0 q4_1 q5_0 q5_1 \
            q4_k_s q4_k_m q5_k_s q5_k_m q6_k
        echo "$output"; assert_success
    done
    # ... and with the same importance matrix (test 5's legacy .dat)
    if [ -e "$T/im.dat" ]; then
        run python3 "$GQ/check_llama_cpp.py" quantizer "$QUANT" "$T/qwen2" "$T" --imatrix "$T/im.dat" \
            q4_0 q4_1 q5_0 q5_1 q4_k_s q4_k_m q5_k_m q6_k
        echo "$output"; assert_success
    fi
    # the tokenizer metadata: llama.cpp tokenizes the corpus as `tokenizers` does (Llama 2 on
    # every line; Llama 3 and Qwen3 except where llama.cpp's own pre-tokenizer differs: exotic
    # contractions, no NFC, "</s>" forced to a control token)
    R="$ROOT/test/golden/tokenizer"
    [ -e "$T/tl2.gguf" ] || skip "the real-tokenizer exports of the test above are missing"
    run python3 "$GQ/check_llama_cpp.py" tok "$T/tl2.gguf" "$R/llama2.ids.jsonl.gz" "$R/corpus.jsonl" 647
    echo "$output"; assert_success
    run python3 "$GQ/check_llama_cpp.py" tok "$T/tl3.gguf" "$R/llama3.ids.jsonl.gz" "$R/corpus.jsonl" 640
    echo "$output"; assert_success
    run python3 "$GQ/check_llama_cpp.py" tok "$T/tq3.gguf" "$R/qwen3.ids.jsonl.gz" "$R/corpus.jsonl" 620 nfc
    echo "$output"; assert_success
}
