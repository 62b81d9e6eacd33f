#!/usr/bin/env bats
# The model families beyond Llama/Qwen (Mistral: sliding window; Gemma 2: GeGLU, pre/post norms,
# soft-caps, local/global layers) through sw-train end to end: a short full and LoRA training run
# on a tiny random model (test/fixtures/models/tiny-<family>/config.json, windows shorter than
# the tiny samples), and —
# when python3 has torch, transformers, peft and msgpack — transformers / PEFT load the
# checkpoints and reproduce sw's eval_loss; the HF round trip: sw loads the transformers-made
# golden folder (test/golden/model/<family>) and writes it back (max_steps 0), and transformers
# gets the same tensors and the same logits from the written folder as from the original.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup() {
    ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
    T="${SW_BIN:-$ROOT/bin}/sw-train"
    M="$ROOT/test/fixtures/models"
    D="$M/tiny-data"
    G="$ROOT/test/golden/model"
    export SW_NUM_THREADS=1 SW_PROGRESS=0
    cd "$BATS_TEST_TMPDIR"
}

FAMILIES="mistral gemma2"

has_python_stack() {
    MISSING=""
    for m in torch transformers peft msgpack safetensors; do
        python3 -c "import $m" 2>/dev/null || MISSING="$MISSING $m"
    done
    [ -z "$MISSING" ]
}

# transformers (full) or PEFT (lora) on checkpoint $2: the token-mean loss over stream $3 must be
# sw's $4 (relative 1e-4).
check_py='
import json, sys, warnings
warnings.simplefilter("ignore")
import msgpack, numpy as np, torch, transformers

def tensor(v):
    if isinstance(v, dict) and "data" in v:
        return np.frombuffer(v["data"], dtype={"I32": np.int32, "U8": np.uint8}[v["dtype"]]).tolist()
    return v

tot, cnt = 0.0, 0
kind, ckpt, val, want = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
if kind == "full":
    model = transformers.AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32)
else:
    import peft
    base = json.load(open(ckpt + "/adapter_config.json"))["base_model_name_or_path"]
    model = peft.PeftModel.from_pretrained(
        transformers.AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), ckpt)
model.eval()
with open(val, "rb") as f:
    for r in msgpack.Unpacker(f, raw=False):
        if r.get("kind") != "sample":
            continue
        ids = tensor(r["input_ids"])
        if "labels" in r:
            lab = tensor(r["labels"])
        elif "loss_mask" in r:
            lab = [i if m else -100 for i, m in zip(ids, tensor(r["loss_mask"]))]
        else:
            lab = ids
        pos = tensor(r["position_ids"]) if "position_ids" in r else list(range(len(ids)))
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids]),
                           position_ids=torch.tensor([pos])).logits[0].double()
        tgt = torch.tensor(lab[1:])
        tot += float(torch.nn.functional.cross_entropy(logits[:-1], tgt, ignore_index=-100,
                                                       reduction="sum"))
        cnt += int((tgt != -100).sum())
got = tot / cnt
print("%s: transformers %.7f, sw %.7f" % (kind, got, want))
sys.exit(0 if abs(got - want) <= 1e-4 * max(1.0, abs(want)) else 1)
'

# The written folder $2 against the original $1: same tensors bit for bit, same logits.
roundtrip_py='
import sys, warnings
warnings.simplefilter("ignore")
import torch, transformers
from safetensors.torch import load_file
import glob
def tensors(d):
    out = {}
    for f in sorted(glob.glob(d + "/model*.safetensors")):
        out.update(load_file(f))
    return out
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
tied = transformers.AutoConfig.from_pretrained(sys.argv[1]).tie_word_embeddings
if tied:
    a.pop("lm_head.weight", None), b.pop("lm_head.weight", None)
assert sorted(a) == sorted(b), (sorted(set(a) ^ set(b)))
for k in a:
    assert torch.equal(a[k], b[k]), k
ma = transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32).eval()
mb = transformers.AutoModelForCausalLM.from_pretrained(sys.argv[2], dtype=torch.float32).eval()
assert type(ma) is type(mb), (type(ma), type(mb))
ids = torch.randint(3, ma.config.vocab_size, (2, 21), generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    la, lb = ma(input_ids=ids).logits, mb(input_ids=ids).logits
assert torch.equal(la, lb), float((la - lb).abs().max())
print("%d tensors equal, logits equal (%s)" % (len(a), type(mb).__name__))
'

last_eval_loss() {
    grep eval_loss "$1" | tail -1 | sed 's/.*"eval_loss":\([0-9.e+-]*\).*/\1/'
}

@test "full training of each family: the loss goes down; transformers reproduces sw's eval_loss" {
    for fam in $FAMILIES; do
        run "$T" -q --init_from_config "$M/tiny-$fam/config.json" --tuner_type full \
            --dataset "$D/train.sws" --val_dataset "$D/val.sws" --num_train_epochs 2 \
            --per_device_train_batch_size 4 --learning_rate 3e-3 --logging_steps 4 \
            --output_dir "f-$fam"
        assert_success
        first=$(grep '"loss"' f-$fam/v0-*/logging.jsonl | head -1 | sed 's/.*"loss":\([0-9.e+-]*\).*/\1/')
        last=$(grep '"loss"' f-$fam/v0-*/logging.jsonl | tail -1 | sed 's/.*"loss":\([0-9.e+-]*\).*/\1/')
        run python3 -c "import sys; sys.exit(0 if float('$last') < float('$first') else 1)"
        assert_success
        if has_python_stack; then
            run python3 -c "$check_py" full f-$fam/v0-*/checkpoint-24 "$D/val.sws" \
                "$(last_eval_loss f-$fam/v0-*/logging.jsonl)"
            echo "$output"
            assert_success
        fi
    done
    has_python_stack || skip "python packages not installed:$MISSING (pip install$MISSING)"
}

@test "LoRA training of each family: PEFT reproduces sw's eval_loss" {
    for fam in $FAMILIES; do
        "$T" -q --init_from_config "$M/tiny-$fam/config.json" --tuner_type full --max_steps 0 \
            --seed 7 --add_version false --output_dir "base-$fam"
        run "$T" -q --model "base-$fam/checkpoint-0" --lora_rank 4 --lora_alpha 16 \
            --target_modules all-linear --dataset "$D/train.sws" --val_dataset "$D/val.sws" \
            --num_train_epochs 1 --per_device_train_batch_size 4 --learning_rate 3e-2 \
            --output_dir "l-$fam"
        assert_success
        [ -f l-$fam/v0-*/checkpoint-12/adapter_model.safetensors ]
        if has_python_stack; then
            run python3 -c "$check_py" lora l-$fam/v0-*/checkpoint-12 "$D/val.sws" \
                "$(last_eval_loss l-$fam/v0-*/logging.jsonl)"
            echo "$output"
            assert_success
        fi
    done
    has_python_stack || skip "python packages not installed:$MISSING (pip install$MISSING)"
}

@test "HF round trip: sw loads each family's transformers folder and writes the same model" {
    for fam in $FAMILIES; do
        run "$T" -q --model "$G/$fam" --tuner_type full --max_steps 0 --add_version false \
            --output_dir "rt-$fam"
        assert_success
        grep -q "\"model_type\": \"$fam\"" rt-$fam/checkpoint-0/config.json
        if has_python_stack; then
            run python3 -c "$roundtrip_py" "$G/$fam" "rt-$fam/checkpoint-0"
            echo "$output"
            assert_success
        fi
    done
    has_python_stack || skip "python packages not installed:$MISSING (pip install$MISSING)"
}
