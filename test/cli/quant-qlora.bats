#!/usr/bin/env bats
# Quantized base weights end to end: the inference engine on sw-quant's quantized folders (GPTQ
# int4/int8, bitsandbytes NF4, compressed-tensors FP8, AutoAWQ GEMM int4) against the float folder sw-quant dequant
# writes from them (same greedy tokens, logits to float rounding); QLoRA (sw-train
# --quant_method nf4 | rtn | bnb) on a tiny model: the loss goes down, the memory plan shows the
# packed base and its bytes per parameter, quantize-at-load and a pre-quantized folder train the
# same adapter bit for bit, the adapter is a PEFT adapter naming its base (PEFT loads it onto
# the float base when torch/transformers/peft import); sw-quant merge-lora over the NF4 base:
# float output = base + adapter to float rounding, requantized output within the quantization
# error; where bitsandbytes imports, its dequantize_4bit on sw's NF4 folder gives the weights sw's
# model multiplies by (skipped here: bitsandbytes 0.45 does not import without triton.ops/CUDA).
#
# One thread: the CPU kernels are bit-reproducible for a fixed thread count.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup_file() {
    export ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
    export QUANT="${SW_BIN:-$ROOT/bin}/sw-quant" EVAL="${SW_BIN:-$ROOT/bin}/sw-eval"
    export TRAIN="${SW_BIN:-$ROOT/bin}/sw-train"
    export GM="$ROOT/test/golden/generate/model" D="$ROOT/test/fixtures/models/tiny-data"
    export W="$BATS_FILE_TMPDIR" SW_NUM_THREADS=1 SW_PROGRESS=0
    export ST="$W/st.py"
    cat > "$ST" <<'EOF'
"""Standard-library safetensors: an input_ids file, and the relative max difference of logits."""
import json, struct, sys
from array import array

def load(p):
    raw = open(p, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n])
    h.pop("__metadata__", None)
    d, out = raw[8 + n:], {}
    for k, v in h.items():
        b, e = v["data_offsets"]
        out[k] = array({"F32": "f", "I32": "i", "I64": "q"}[v["dtype"]], d[b:e])
    return out

if sys.argv[1] == "input":  # input FILE N VOCAB
    n, v = int(sys.argv[3]), int(sys.argv[4])
    raw = array("i", [(i * 7 + 3) % v for i in range(n)]).tobytes()
    h = json.dumps({"input_ids": {"dtype": "I32", "shape": [1, n], "data_offsets": [0, len(raw)]}}).encode()
    h += b" " * (-len(h) % 8)
    open(sys.argv[2], "wb").write(struct.pack("<Q", len(h)) + h + raw)
elif sys.argv[1] == "rel":  # rel A B: max|a - b| / max|b|
    a, b = load(sys.argv[2])["logits"], load(sys.argv[3])["logits"]
    print("%.3g" % (max(abs(x - y) for x, y in zip(a, b)) / max(abs(y) for y in b)))
elif sys.argv[1] == "losses":  # losses logging.jsonl: first and last logged loss
    l = [json.loads(x)["loss"] for x in open(sys.argv[2]) if '"loss"' in x]
    print(l[0], l[-1])
EOF
    # The QLoRA base: a random Qwen2 64 wide (vocab 64, the tiny streams' ids) with a tokenizer.
    cat > "$W/cfg.json" <<'EOF'
{"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 64, "hidden_size": 64,
 "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
 "max_position_embeddings": 128, "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "hidden_act": "silu",
 "tie_word_embeddings": true, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32"}
EOF
    "$TRAIN" -q --init_from_config "$W/cfg.json" --tuner_type full --max_steps 0 --seed 7 \
        --add_version false --output_dir "$W/base" --report_to none
    export BASE="$W/base/checkpoint-0"
    cp "$GM/tokenizer.json" "$GM/tokenizer_config.json" "$BASE/"
    python3 "$ST" input "$W/in64.st" 16 64
    python3 "$ST" input "$W/in320.st" 16 300
}

qlora() { # output_dir model [options...]
    local out="$1" model="$2"
    shift 2
    "$TRAIN" --model "$model" --dataset "$D/train.sws" --max_steps 40 --learning_rate 1e-2 \
        --per_device_train_batch_size 4 --logging_steps 10 --add_version false \
        --report_to none --output_dir "$W/$out" "$@"
}

@test "engine: quantized folders (GPTQ int4/int8, NF4, FP8, AWQ) generate what their dequantized float folders do" {
    for q in "rtn 4 16" "rtn 8 -1" "nf4 4 64" "fp8 8 -1" "awq 4 16"; do
        set -- $q
        "$QUANT" quantize -q --model "$GM" --quant_method "$1" --quant_bits "$2" --group_size "$3" \
            --output_dir "$W/g-$1$2"
        run "$QUANT" dequant --model "$W/g-$1$2" --output_dir "$W/g-$1$2-f"
        assert_success
        assert_output --partial "14 linear weights dequantized to float32"
        run grep -c quantization_config "$W/g-$1$2-f/config.json"
        assert_output 0
        a=$("$EVAL" generate -q --model "$W/g-$1$2" --prompt "The quick brown fox" --max_new_tokens 24 --json | grep -o '"ids":\[[0-9,]*\]')
        b=$("$EVAL" generate -q --model "$W/g-$1$2-f" --prompt "The quick brown fox" --max_new_tokens 24 --json | grep -o '"ids":\[[0-9,]*\]')
        [ -n "$a" ] && [ "$a" = "$b" ] || { echo "$1 $2: $a vs $b"; false; }
        "$EVAL" logits -q --model "$W/g-$1$2" --input "$W/in320.st" --output "$W/lq.st"
        "$EVAL" logits -q --model "$W/g-$1$2-f" --input "$W/in320.st" --output "$W/lf.st"
        run python3 "$ST" rel "$W/lq.st" "$W/lf.st"
        python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 1e-5 else 1)" "$output" ||
            { echo "$1 $2: logits differ by $output"; false; }
    done
    # AWQ read as AutoAWQ's dequantize_gemm unpacks it (numpy transcription: nibble shifts
    # 0..28, the reverse order 0 4 1 5 2 6 3 7, (q - zero) * scale per group)
    if python3 -c "import numpy" 2>/dev/null; then
        run python3 -c "
import json, struct, sys, numpy as np
def load(p):
    raw = open(p, 'rb').read(); n = struct.unpack('<Q', raw[:8])[0]; h = json.loads(raw[8:8 + n]); h.pop('__metadata__', None)
    d = raw[8 + n:]
    return {k: np.frombuffer(d[v['data_offsets'][0]:v['data_offsets'][1]], dtype={'F32': np.float32, 'I32': np.int32, 'F16': np.float16}[v['dtype']]).reshape(v['shape']) for k, v in h.items()}
q, f = load(sys.argv[1] + '/model.safetensors'), load(sys.argv[2] + '/model.safetensors')
def unpack(x):
    u = (x.astype(np.uint32)[:, :, None] >> np.arange(0, 32, 4)[None, None, :]) & 15
    return u.reshape(x.shape[0], -1, 8)[:, :, [0, 4, 1, 5, 2, 6, 3, 7]].reshape(x.shape[0], -1).astype(np.float32)
n, worst = 0, 0.0
for k in [k for k in q if k.endswith('.qweight')]:
    p = k[:-8]
    iw, iz, s = unpack(q[k]), unpack(q[p + '.qzeros']), q[p + '.scales'].astype(np.float32)
    g = iw.shape[0] // s.shape[0]
    w = ((iw - np.repeat(iz, g, 0)) * np.repeat(s, g, 0)).T
    worst, n = max(worst, float(np.abs(w - f[p + '.weight']).max())), n + 1
print(n, worst)
" "$W/g-awq4" "$W/g-awq4-f"
        assert_output "14 0.0"
    fi
    # int8 is close to the float model itself (the same greedy tokens as the original)
    a=$("$EVAL" generate -q --model "$W/g-rtn8" --prompt "The quick brown fox" --max_new_tokens 12 --json | grep -o '"ids":\[[0-9,]*\]')
    b=$("$EVAL" generate -q --model "$GM" --prompt "The quick brown fox" --max_new_tokens 12 --json | grep -o '"ids":\[[0-9,]*\]')
    [ "$a" = "$b" ]
}

@test "QLoRA nf4: loss goes down, the packed base in the memory plan, a PEFT adapter naming its base" {
    run qlora nf4 "$BASE" --quant_method nf4 --quant_bits 4
    assert_success
    assert_output --regexp "quantized base: 14 nf4 linear weights, 73728 parameters in [0-9.]+ KiB \(0\.[0-9]+ bytes per parameter; float32 would take 288 KiB\)"
    assert_output --partial "training 16384 of"
    read first last < <(python3 "$ST" losses "$W/nf4/logging.jsonl")
    python3 -c "import sys; sys.exit(0 if float(sys.argv[2]) < float(sys.argv[1]) - 0.1 else 1)" "$first" "$last" ||
        { echo "loss $first -> $last"; false; }
    # the plan's weights: smaller than the float run's
    wq=$(echo "$output" | grep -o "weights [0-9.]* KiB" | head -1 | grep -o "[0-9.]*")
    run qlora f32 "$BASE" --max_steps 1
    wf=$(echo "$output" | grep -o "weights [0-9.]* KiB" | head -1 | grep -o "[0-9.]*")
    python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 0.6 * float(sys.argv[2]) else 1)" "$wq" "$wf" ||
        { echo "weights $wq KiB vs $wf KiB"; false; }
    ck="$W/nf4/checkpoint-40"
    [ -f "$ck/adapter_model.safetensors" ]
    run python3 -c "import json,sys; c=json.load(open(sys.argv[1])); print(c['peft_type'], c['base_model_name_or_path'])" "$ck/adapter_config.json"
    assert_output "LORA $BASE"
    run grep -c '"quant_method": "nf4"' "$ck/args.json"
    assert_output 1
}

@test "QLoRA: a pre-quantized NF4 folder trains the same adapter as quantize-at-load, bit for bit" {
    "$QUANT" quantize -q --model "$BASE" --quant_method nf4 --quant_bits 4 --output_dir "$W/bnf4"
    qlora a "$BASE" --quant_method nf4 --max_steps 8 -q
    qlora b "$W/bnf4" --max_steps 8 -q
    cmp "$W/a/checkpoint-8/adapter_model.safetensors" "$W/b/checkpoint-8/adapter_model.safetensors"
}

@test "QLoRA rtn int4 g32, bnb int8, fp8: train and report bytes per parameter" {
    run qlora r4 "$BASE" --quant_method rtn --quant_bits 4 --quant_group_size 32 --max_steps 10
    assert_success
    assert_output --regexp "14 int4 linear weights, 73728 parameters in [0-9.]+ KiB \(0\.6[0-9]+ bytes per parameter"
    run qlora b8 "$BASE" --quant_method bnb --quant_bits 8 --max_steps 10
    assert_success
    assert_output --regexp "14 int8 linear weights, 73728 parameters in [0-9.]+ KiB \(1\.0[0-9]+ bytes per parameter"
    run qlora f8 "$BASE" --quant_method fp8 --max_steps 10
    assert_success
    assert_output --partial "14 fp8 linear weights"
}

@test "QLoRA: bad combinations are usage errors" {
    run "$TRAIN" --model "$BASE" --quant_method nf4 --tuner_type full --dataset "$D/train.sws" --output_dir "$W/x1"
    assert_failure
    assert_output --partial "trains only adapters: use --tuner_type lora"
    run "$TRAIN" --model "$BASE" --quant_method bnb --quant_bits 4 --bnb_4bit_quant_type fp4 --dataset "$D/train.sws" --output_dir "$W/x2"
    assert_failure
    assert_output --partial "fp4 is not supported"
    run "$TRAIN" --model "$BASE" --quant_method rtn --quant_bits 3 --dataset "$D/train.sws" --output_dir "$W/x3"
    assert_failure
    assert_output --partial "--quant_method rtn with --quant_bits 3"
    [ ! -e "$W/x1" ] && [ ! -e "$W/x2" ] && [ ! -e "$W/x3" ]
}

@test "merge-lora over the NF4 base: float = base + adapter, requantized within the quantization error" {
    [ -d "$W/bnf4" ] || "$QUANT" quantize -q --model "$BASE" --quant_method nf4 --quant_bits 4 --output_dir "$W/bnf4"
    qlora m "$W/bnf4" -q
    ad="$W/m/checkpoint-40"
    "$EVAL" logits -q --model "$W/bnf4" --adapter "$ad" --input "$W/in64.st" --output "$W/ref.st"
    "$EVAL" logits -q --model "$W/bnf4" --input "$W/in64.st" --output "$W/noad.st"
    run "$QUANT" merge-lora --model "$W/bnf4" --adapter "$ad" --output_dir "$W/mf" --requantize false
    assert_success
    run grep -c quantization_config "$W/mf/config.json"
    assert_output 0
    "$EVAL" logits -q --model "$W/mf" --input "$W/in64.st" --output "$W/mf.st"
    run python3 "$ST" rel "$W/mf.st" "$W/ref.st"
    python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 1e-5 else 1)" "$output" || { echo "float merge: $output"; false; }
    run "$QUANT" merge-lora --model "$W/bnf4" --adapter "$ad" --output_dir "$W/mq"
    assert_success
    assert_output --partial "wrote $W/mq (nf4, 4 bits)"
    run python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['quantization_config']['bnb_4bit_quant_type'])" "$W/mq/config.json"
    assert_output nf4
    "$EVAL" logits -q --model "$W/mq" --input "$W/in64.st" --output "$W/mq.st"
    q=$(python3 "$ST" rel "$W/mq.st" "$W/ref.st")
    n=$(python3 "$ST" rel "$W/noad.st" "$W/ref.st")
    # within NF4's error of base + adapter, far closer than the base without the adapter
    python3 -c "import sys; q, n = map(float, sys.argv[1:]); sys.exit(0 if q < 0.25 and q < n / 4 else 1)" "$q" "$n" ||
        { echo "requantized $q, without adapter $n"; false; }
    run bash -c "ls '$W' | grep -c -e '\.deq-' -e '\.mrg-'"
    assert_output 0
}

@test "QLoRA adapter loads in PEFT onto the float base (transformers + peft)" {
    python3 -c "import torch, transformers, peft" 2>/dev/null || skip "torch, transformers or peft not installed"
    [ -d "$W/nf4/checkpoint-40" ] || qlora nf4 "$BASE" --quant_method nf4 -q
    run python3 -c "
import sys, torch, transformers, peft
m = transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1], torch_dtype=torch.float32)
p = peft.PeftModel.from_pretrained(m, sys.argv[2])
n = sum(1 for k, _ in p.named_parameters() if 'lora_' in k)
print('loaded', n)
" "$BASE" "$W/nf4/checkpoint-40"
    assert_success
    assert_output --partial "loaded 28"
}

@test "bitsandbytes reference (NF4 kernels on the same weights)" {
    python3 -c "import bitsandbytes.functional" 2>/dev/null ||
        skip "bitsandbytes does not import here (0.45.0 needs triton.ops / CUDA; the NF4 layout is checked against a numpy rewrite in quant-hf.bats)"
    "$QUANT" quantize -q --model "$GM" --quant_method nf4 --quant_bits 4 --output_dir "$W/bnb-q" --force
    "$QUANT" dequant --model "$W/bnb-q" --output_dir "$W/bnb-f" --force
    # bitsandbytes' own dequantize_4bit on the stored state == the weights sw's model uses
    run python3 -c "
import sys, torch, bitsandbytes.functional as F
from safetensors.torch import load_file
q, f = load_file(sys.argv[1] + '/model.safetensors'), load_file(sys.argv[2] + '/model.safetensors')
dev = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
worst = 0.0
for k in f:
    if not k.endswith('_proj.weight'):
        continue
    st = F.QuantState.from_dict({n[len(k) + 1:]: v for n, v in q.items() if n.startswith(k + '.')}, device=dev)
    w = F.dequantize_4bit(q[k].to(dev), st).float().cpu()
    worst = max(worst, ((w - f[k]).abs().max() / f[k].abs().max()).item())
print('worst', worst)
sys.exit(0 if worst < 1e-6 else 1)
" "$W/bnb-q" "$W/bnb-f"
    assert_success
}
