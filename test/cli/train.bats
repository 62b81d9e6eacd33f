#!/usr/bin/env bats
# sw-train end to end on tiny models (test/fixtures/models/tiny-*/config.json, random init by
# sw-train itself) and tiny streams (test/fixtures/models/tiny-data/, from gen_tiny_data.py):
# training, exact resume (byte-identical safetensors), SIGTERM, LoRA, evaluation, pruning, bad
# input, and — when python3 has torch, transformers, peft and msgpack — loading the checkpoints
# with transformers / PEFT and recomputing sw's eval_loss there.
#
# One thread: the CPU kernels are bit-reproducible for a fixed thread count, and tiny models
# train fastest on one core.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup() {
    ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
    T="${SW_BIN:-$ROOT/bin}/sw-train"
    M="$ROOT/test/fixtures/models"
    D="$M/tiny-data"
    export SW_NUM_THREADS=1 SW_PROGRESS=0
    cd "$BATS_TEST_TMPDIR"
}

# A random tiny model as an HF folder: NAME/checkpoint-0 (--add_version false: no vN-* run
# folder, so the fixture has a fixed path; the other tests use the default run folders).
make_base() { # name config [seed]
    "$T" -q --init_from_config "$M/$2/config.json" --tuner_type full --max_steps 0 \
        --seed "${3:-42}" --add_version false --output_dir "$1"
}

full_args() {
    echo --init_from_config "$M/tiny-qwen2/config.json" --tuner_type full \
        --dataset "$D/train.sws" --num_train_epochs 2 --per_device_train_batch_size 4 \
        --gradient_accumulation_steps 2 --learning_rate 3e-3 --logging_steps 2
}

# The Python packages the parity checks need; MISSING names those that are not installed, for
# the skip message (run-tests.sh lists skips by that message).
has_python_stack() {
    MISSING=""
    for m in torch transformers peft msgpack; do
        python3 -c "import $m" 2>/dev/null || MISSING="$MISSING $m"
    done
    [ -z "$MISSING" ]
}

# Offset in bytes of the first element of tensor $2 in safetensors file $1.
tensor_offset() {
    local hlen off
    hlen=$(od -An -t u8 -N8 "$1" | tr -d ' ')
    off=$(head -c $((8 + hlen)) "$1" | tail -c "$hlen" | grep -o "\"$2\":{[^}]*}" |
          sed 's/.*"data_offsets":\[\([0-9]*\),.*/\1/')
    echo $((8 + hlen + off))
}

@test "--help lists the ms-swift option names" {
    run "$T" --help
    assert_success
    for k in model dataset tuner_type train_type lora_rank learning_rate lr_scheduler_type \
             warmup_ratio gradient_accumulation_steps max_grad_norm save_total_limit \
             resume_from_checkpoint nan_policy init_from_config; do
        assert_output --partial "$k"
    done
}

@test "unknown option is a usage error with a suggestion" {
    run "$T" --learnig_rate 1e-4
    assert_failure 2
    assert_output --partial "did you mean 'learning_rate'"
}

@test "max_steps 0 writes the initial model as an HF folder with a valid manifest" {
    make_base base tiny-qwen3
    [ -f base/checkpoint-0/config.json ]
    [ -f base/checkpoint-0/model.safetensors ]
    run grep -c '"model_type": "qwen3"' base/checkpoint-0/config.json
    assert_output 1
    (cd base/checkpoint-0 && sha256sum -c --quiet checkpoint.sha256)
}

@test "full training from a file: metrics lines, loss goes down, final checkpoint" {
    run "$T" $(full_args) --output_dir out
    assert_success
    [ -d out/v0-*/checkpoint-12 ]
    [ "$(wc -l < out/v0-*/logging.jsonl)" -eq 6 ]
    run head -1 out/v0-*/logging.jsonl
    for k in step epoch loss grad_norm learning_rate tokens_per_sec peak_mem_bytes elapsed; do
        assert_output --partial "\"$k\":"
    done
    first=$(head -1 out/v0-*/logging.jsonl | sed 's/.*"loss":\([0-9.]*\).*/\1/')
    last=$(tail -1 out/v0-*/logging.jsonl | sed 's/.*"loss":\([0-9.]*\).*/\1/')
    run awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.05) }'
    assert_success
    grep -q '"global_step": 12' out/v0-*/checkpoint-12/trainer_state.json
    grep -q '"log_history"' out/v0-*/checkpoint-12/trainer_state.json
}

@test "resume is exact: straight run vs resume from its middle checkpoint" {
    "$T" -q $(full_args) --save_steps 5 --output_dir a
    [ -d a/v0-*/checkpoint-5 ] && [ -d a/v0-*/checkpoint-12 ]
    "$T" -q $(full_args) --save_steps 5 --output_dir b --resume_from_checkpoint a/v0-*/checkpoint-5
    for f in model.safetensors optimizer.safetensors trainer_state.json training_state.json \
             rng_state.json; do
        cmp a/v0-*/checkpoint-12/$f b/v0-*/checkpoint-12/$f
    done
}

@test "resume from 'latest' continues the newest checkpoint of output_dir" {
    "$T" -q $(full_args) --save_steps 5 --output_dir a
    rm -rf a/v0-*/checkpoint-12 a/v0-*/checkpoint-10
    run "$T" $(full_args) --save_steps 5 --output_dir a --resume_from_checkpoint latest
    assert_success
    assert_output --regexp "resuming from a/v0-[0-9]{8}-[0-9]{6}/checkpoint-5"
    [ -d a/v0-*/checkpoint-12 ]
    # logging.jsonl was trimmed to step 5, then continued: no step appears twice.
    [ "$(grep -o '"step":[0-9]*,"epoch":[0-9.]*,"loss"' a/v0-*/logging.jsonl | sort | uniq -d | wc -l)" -eq 0 ]
}

@test "LoRA with dropout: resume is exact, checkpoint is a PEFT folder" {
    make_base base tiny-llama
    args="--model base/checkpoint-0 --tuner_type lora --lora_rank 4 --lora_alpha 8
          --lora_dropout 0.1 --dataset $D/train.sws --num_train_epochs 1
          --per_device_train_batch_size 3 --learning_rate 1e-2 --save_steps 7"
    "$T" -q $args --output_dir l1
    "$T" -q $args --output_dir l2 --resume_from_checkpoint l1/v0-*/checkpoint-7
    cmp l1/v0-*/checkpoint-16/adapter_model.safetensors l2/v0-*/checkpoint-16/adapter_model.safetensors
    cmp l1/v0-*/checkpoint-16/optimizer.safetensors l2/v0-*/checkpoint-16/optimizer.safetensors
    [ ! -e l1/v0-*/checkpoint-16/model.safetensors ]
    grep -q '"peft_type": "LORA"' l1/v0-*/checkpoint-16/adapter_config.json
    grep -q '"task_type": "CAUSAL_LM"' l1/v0-*/checkpoint-16/adapter_config.json
    grep -q '"r": 4' l1/v0-*/checkpoint-16/adapter_config.json
    grep -q 'base_model.model.model.layers.1.mlp.down_proj.lora_B.weight' \
        l1/v0-*/checkpoint-16/adapter_model.safetensors
}

@test "SIGTERM during training: exit 143, a loadable checkpoint, and resuming it is exact" {
    # The producer sends part of the stream and then stalls: the trainer is blocked reading
    # when the signal arrives, and must still stop and save.
    args="--init_from_config $M/tiny-qwen2/config.json --tuner_type full --max_steps 30
          --per_device_train_batch_size 2 --learning_rate 3e-3 --save_steps 1000"
    "$T" -q $args --dataset "$D/train.sws" --output_dir straight
    mkfifo feed
    # exec: the feeder's pid is the sleep itself, so killing it leaves nothing behind.
    (head -c 6000 "$D/train.sws"; exec sleep 60) > feed 2> /dev/null &
    feeder=$!
    "$T" $args --dataset - --output_dir sig < feed 2> sig.err &
    pid=$!
    # Wait for the first metrics line (step 5), then a little for the trainer to drain the
    # records it has and block on the idle pipe.
    for _ in $(seq 200); do [ -s sig/v0-*/logging.jsonl ] && break; sleep 0.1; done
    sleep 1
    kill -TERM "$pid"
    status=0
    wait "$pid" || status=$?
    kill "$feeder" 2> /dev/null || true
    [ "$status" -eq 143 ]
    grep -q "stopped by SIGTERM" sig.err
    ckpt=$(ls -d sig/v0-*/checkpoint-* | head -1)
    [ -n "$ckpt" ]
    [ "$(ls -d sig/v0-*/checkpoint-* | wc -l)" -eq 1 ]
    (cd "$ckpt" && sha256sum -c --quiet checkpoint.sha256)
    step=${ckpt##*-}
    [ "$step" -gt 0 ] && [ "$step" -lt 30 ]
    # Resume from the file: same records, same schedule, same result as the straight run.
    "$T" -q $args --dataset "$D/train.sws" --output_dir sig --resume_from_checkpoint "$ckpt"
    cmp straight/v0-*/checkpoint-30/model.safetensors sig/v0-*/checkpoint-30/model.safetensors
}

@test "evaluation: eval lines, best metric kept by save_total_limit" {
    run "$T" $(full_args) --val_dataset "$D/val.sws" --eval_steps 3 --save_steps 3 \
        --save_total_limit 2 --output_dir out
    assert_success
    [ "$(grep -c eval_loss out/v0-*/logging.jsonl)" -eq 4 ]
    best=$(grep -o '"best_global_step": [0-9]*' out/v0-*/checkpoint-12/trainer_state.json | grep -o '[0-9]*$')
    [ -d out/v0-*/checkpoint-"$best" ]
    [ -d out/v0-*/checkpoint-12 ]
    [ "$(ls -d out/v0-*/checkpoint-* | wc -l)" -le 2 ]
}

@test "batch records: packed rows with cu_seqlens and padded rows with attention_mask" {
    run "$T" --init_from_config "$M/tiny-qwen3/config.json" --tuner_type full \
        --dataset "$D/batches.sws" --num_train_epochs 2 --learning_rate 1e-3 --output_dir out
    assert_success
    [ -d out/v0-*/checkpoint-12 ]
}

@test "nan_policy: stop fails naming the step, skip completes without updates" {
    make_base base tiny-qwen2
    f=base/checkpoint-0/model.safetensors
    printf '\x00\x00\xc0\x7f' |
        dd of="$f" bs=1 seek="$(tensor_offset "$f" model.norm.weight)" conv=notrunc status=none
    run "$T" --model base/checkpoint-0 --tuner_type full --dataset "$D/train.sws" \
        --max_steps 3 --output_dir out
    assert_failure 1
    assert_output --partial "step 1: non-finite loss"
    run "$T" --model base/checkpoint-0 --tuner_type full --dataset "$D/train.sws" \
        --max_steps 3 --nan_policy skip --output_dir out2
    assert_success
    assert_output --partial "skipped (nan_policy skip)"
    grep -q '"optimizer_steps": 0' out2/v0-*/checkpoint-3/training_state.json
}

@test "token id outside the vocabulary names the stream record" {
    run "$T" --init_from_config "$M/tiny-qwen2/config.json" --tuner_type full \
        --dataset "$D/bad_id.sws" --output_dir out
    assert_failure 1
    assert_output --partial "bad_id.sws: record 5: input_ids[2] = 64 is not below the model's vocab_size 64"
}

@test "stream header tokenized for another vocabulary is refused" {
    run "$T" --init_from_config "$M/tiny-qwen2/config.json" --tuner_type full \
        --dataset "$D/big_vocab.sws" --output_dir out
    assert_failure 1
    assert_output --partial "vocab_size 50000 but the model has 64"
}

@test "tokenizer digest: a stream for another tokenizer is refused; a match trains and is copied" {
    make_base base tiny-qwen2
    printf '{"version": "1.0", "model": {"type": "other"}}\n' > base/checkpoint-0/tokenizer.json
    run "$T" --model base/checkpoint-0 --tuner_type full --dataset "$D/tok.sws" --output_dir o
    assert_failure 1
    assert_output --partial "tokenized with another tokenizer"
    printf '{"version": "1.0", "model": {"type": "tiny"}}\n' > base/checkpoint-0/tokenizer.json
    run "$T" --model base/checkpoint-0 --tuner_type full --dataset "$D/tok.sws" --max_steps 2 \
        --output_dir o
    assert_success
    cmp base/checkpoint-0/tokenizer.json o/v0-*/checkpoint-2/tokenizer.json
}

@test "stdin without max_steps, cuda on a CPU build, lora without a base: clear errors" {
    run bash -c "'$T' --init_from_config '$M/tiny-qwen2/config.json' --tuner_type full --output_dir o < '$D/train.sws'"
    assert_failure 2
    assert_output --partial "set max_steps"
    if ! nm "$T" | grep -q sw_cuda_check; then # a CPU-only build
        run "$T" --init_from_config "$M/tiny-qwen2/config.json" --tuner_type full --device cuda \
            --dataset "$D/train.sws" --output_dir o
        assert_failure 1
        assert_output --partial "built without CUDA"
    fi
    run "$T" --init_from_config "$M/tiny-qwen2/config.json" --dataset "$D/train.sws" --output_dir o
    assert_failure 2
    assert_output --partial "lora needs a pretrained --model"
}

@test "precision options: float16/bfloat16 on cpu, contradictions and bad values are clear errors" {
    a="--init_from_config $M/tiny-qwen2/config.json --tuner_type full --dataset $D/train.sws"
    run "$T" $a --torch_dtype float16 --output_dir o
    assert_failure 2
    assert_output --partial "torch_dtype float16: --device cpu computes in float32 only"
    run "$T" $a --bf16 true --output_dir o
    assert_failure 2
    assert_output --partial "torch_dtype bfloat16 (--bf16 true): --device cpu computes in float32 only"
    run "$T" $a --torch_dtype half --output_dir o
    assert_failure 2
    assert_output --partial "must be one of auto|float32|bfloat16|float16|fp32|bf16|fp16, got 'half'"
    run "$T" $a --bf16 true --fp16 true --output_dir o
    assert_failure 2
    assert_output --partial "bf16 and fp16 are both true"
    run "$T" $a --fp16 true --torch_dtype bf16 --output_dir o
    assert_failure 2
    assert_output --partial "fp16 true contradicts torch_dtype bf16"
    for v in dyn 0 -1 1e39 dynamic:0 nan; do
        run "$T" $a --loss_scale "$v" --output_dir o
        assert_failure 2
        assert_output --partial "loss_scale '$v': expected \"dynamic\""
    done
    run "$T" $a --loss_scale last_round --output_dir o
    assert_failure 2
    assert_output --partial "ms-swift's per-token loss weighting, which sw-pack applies"
    [ ! -e o ]
    # float32 (auto on cpu, and fp32 spelled out) trains; args.json records the resolved dtype.
    run "$T" $a --max_steps 2 --loss_scale 1024 --output_dir o
    assert_success
    assert_output --partial "loss_scale 1024 has no effect: the run computes in float32"
    assert_output --partial "warmup, float32"
    grep -q '"torch_dtype": "float32"' o/v0-*/checkpoint-2/args.json
    grep -q '"fp16": false' o/v0-*/checkpoint-2/args.json
    run "$T" $a --max_steps 2 --torch_dtype fp32 --output_dir o2
    assert_success
    cmp o/v0-*/checkpoint-2/model.safetensors o2/v0-*/checkpoint-2/model.safetensors
    run grep -q loss_scaler o/v0-*/checkpoint-2/training_state.json
    assert_failure
}

@test "unsupported architecture and mis-shaped / missing tensors name the problem" {
    sed 's/"qwen2"/"gpt2"/' "$M/tiny-qwen2/config.json" > gpt2.json
    run "$T" --init_from_config gpt2.json --tuner_type full --dataset "$D/train.sws" --output_dir o
    assert_failure 1
    assert_output --partial "model_type 'gpt2' is not supported"
    make_base base tiny-qwen2
    sed -i 's/"intermediate_size": 32/"intermediate_size": 48/' base/checkpoint-0/config.json
    run "$T" --model base/checkpoint-0 --tuner_type full --dataset "$D/train.sws" --output_dir o
    assert_failure 1
    assert_output --partial "mlp.gate_proj.weight"
    sed -i 's/"intermediate_size": 48/"intermediate_size": 32/; s/"num_hidden_layers": 2/"num_hidden_layers": 3/' \
        base/checkpoint-0/config.json
    run "$T" --model base/checkpoint-0 --tuner_type full --dataset "$D/train.sws" --output_dir o
    assert_failure 1
    assert_output --partial "model.layers.2."
}

@test "resume refuses a missing, corrupt or foreign checkpoint" {
    make_base base tiny-llama
    run "$T" --model base/checkpoint-0 --dataset "$D/train.sws" --output_dir o \
        --resume_from_checkpoint nowhere
    assert_failure 1
    assert_output --partial "nowhere"
    "$T" -q --model base/checkpoint-0 --lora_rank 4 --dataset "$D/train.sws" --max_steps 4 \
        --save_steps 2 --output_dir l
    # One flipped byte in the adapter.
    f=$(echo l/v0-*/checkpoint-2/adapter_model.safetensors)
    printf '\x01' | dd of="$f" bs=1 seek=$(( $(stat -c %s "$f") - 5 )) conv=notrunc status=none
    run "$T" --model base/checkpoint-0 --lora_rank 4 --dataset "$D/train.sws" --max_steps 4 \
        --output_dir l --resume_from_checkpoint l/v0-*/checkpoint-2
    assert_failure 1
    assert_output --partial "adapter_model.safetensors: checksum mismatch"
    # A file missing.
    rm l/v0-*/checkpoint-4/rng_state.json
    run "$T" --model base/checkpoint-0 --lora_rank 4 --dataset "$D/train.sws" --max_steps 4 \
        --output_dir l --resume_from_checkpoint l/v0-*/checkpoint-4
    assert_failure 1
    assert_output --partial "rng_state.json"
    # Another base model (same config, other weights), another rank, another tuner.
    "$T" -q $(full_args) --max_steps 2 --output_dir f
    make_base other tiny-llama 7
    "$T" -q --model base/checkpoint-0 --lora_rank 4 --dataset "$D/train.sws" --max_steps 4 \
        --save_steps 2 --output_dir l2
    run "$T" --model other/checkpoint-0 --lora_rank 4 --dataset "$D/train.sws" --max_steps 4 \
        --output_dir l2 --resume_from_checkpoint l2/v0-*/checkpoint-2
    assert_failure 1
    assert_output --partial "adapter base mismatch"
    run "$T" --model base/checkpoint-0 --lora_rank 8 --dataset "$D/train.sws" --max_steps 4 \
        --output_dir l2 --resume_from_checkpoint l2/v0-*/checkpoint-2
    assert_failure 1
    assert_output --partial "differs from the options (r 8"
    run "$T" --model base/checkpoint-0 --tuner_type full --dataset "$D/train.sws" --max_steps 4 \
        --output_dir l2 --resume_from_checkpoint l2/v0-*/checkpoint-2
    assert_failure 1
    assert_output --partial "is a LoRA checkpoint but tuner_type is full"
}

@test "save_only_model checkpoints cannot be resumed exactly, and say so" {
    "$T" -q $(full_args) --max_steps 2 --save_only_model --output_dir o
    [ ! -e o/v0-*/checkpoint-2/optimizer.safetensors ]
    run "$T" $(full_args) --max_steps 4 --output_dir o --resume_from_checkpoint o/v0-*/checkpoint-2
    assert_failure 1
    assert_output --partial "optimizer.safetensors: missing"
}

# ---- the ecosystem loads what sw writes --------------------------------------------------------

check_py='
import json, struct, sys
import msgpack, torch, transformers

def tensor(m):
    n = 1
    for d in m["shape"]:
        n *= d
    return list(struct.unpack("<%d%s" % (n, {"I32": "i", "U8": "B"}[m["dtype"]]), m["data"]))

def eval_loss(model, path):
    tot, cnt = 0.0, 0
    with open(path, "rb") as f:
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
    return tot / cnt

kind, ckpt, val, want = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
if kind == "full":
    model = transformers.AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32)
else:
    import peft
    base = json.load(open(ckpt + "/adapter_config.json"))["base_model_name_or_path"]
    model = peft.PeftModel.from_pretrained(
        transformers.AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), ckpt)
model.eval()
got = eval_loss(model, val)
print("%s: transformers %.7f, sw %.7f" % (kind, got, want))
sys.exit(0 if abs(got - want) <= 1e-4 * max(1.0, abs(want)) else 1)
'

last_eval_loss() {
    grep eval_loss "$1" | tail -1 | sed 's/.*"eval_loss":\([0-9.e+-]*\).*/\1/'
}

@test "transformers loads full checkpoints and reproduces sw's eval_loss (llama, qwen2, qwen3)" {
    has_python_stack || skip "python packages not installed:$MISSING (pip install$MISSING)"
    for cfg in tiny-llama tiny-qwen2 tiny-qwen3; do
        "$T" -q --init_from_config "$M/$cfg/config.json" --tuner_type full --dataset "$D/train.sws" \
            --val_dataset "$D/val.sws" --num_train_epochs 1 --per_device_train_batch_size 4 \
            --learning_rate 3e-3 --output_dir "f-$cfg"
        run python3 -c "$check_py" full f-$cfg/v0-*/checkpoint-12 "$D/val.sws" \
            "$(last_eval_loss f-$cfg/v0-*/logging.jsonl)"
        assert_success
    done
}

@test "PEFT loads LoRA checkpoints and reproduces sw's eval_loss" {
    has_python_stack || skip "python packages not installed:$MISSING (pip install$MISSING)"
    make_base base tiny-qwen2
    "$T" -q --model base/checkpoint-0 --lora_rank 4 --lora_alpha 16 --use_rslora \
        --target_modules q_proj,v_proj,down_proj --dataset "$D/train.sws" \
        --val_dataset "$D/val.sws" --num_train_epochs 1 --per_device_train_batch_size 4 \
        --learning_rate 3e-2 --output_dir l
    run python3 -c "$check_py" lora l/v0-*/checkpoint-12 "$D/val.sws" "$(last_eval_loss l/v0-*/logging.jsonl)"
    assert_success
}

@test "memory plan and measured peak on stderr; gradient checkpointing changes no bit" {
    run "$T" $(full_args) --output_dir plain
    assert_success
    assert_output --regexp "memory plan \(cpu\): weights [0-9.]+ KiB \+ gradients [0-9.]+ KiB \+ optimizer state [0-9.]+ KiB \+ activations ~[0-9.]+ KiB \(micro-batch of [0-9]+ tokens\) = [0-9.]+ KiB; host .* free of"
    assert_output --regexp "memory peak: .* resident \(max RSS\); activations .* in the scratch arena \(planned"
    run "$T" $(full_args) --gradient_checkpointing true --output_dir ckpt
    assert_success
    assert_output --partial "tokens, gradient checkpointing)"
    for f in model.safetensors optimizer.safetensors trainer_state.json; do
        cmp plain/v0-*/checkpoint-12/$f ckpt/v0-*/checkpoint-12/$f
    done
    # The activation estimate shrinks with checkpointing (two layers: one set instead of two).
    plan() { sed -n 's/.*activations ~\([0-9.]*\) KiB.*/\1/p' "$1"; }
    "$T" $(full_args) --output_dir p2 2> a.err
    "$T" $(full_args) --gradient_checkpointing --output_dir c2 2> b.err
    run awk -v a="$(plan a.err)" -v b="$(plan b.err)" 'BEGIN { exit !(b > 0 && b < a) }'
    assert_success
    make_base base tiny-llama
    args="--model base/checkpoint-0 --tuner_type lora --lora_rank 4 --lora_dropout 0.1
          --dataset $D/train.sws --max_steps 6 --per_device_train_batch_size 3 --learning_rate 1e-2"
    "$T" -q $args --output_dir l1
    "$T" -q $args --gradient_checkpointing true --output_dir l2
    cmp l1/v0-*/checkpoint-6/adapter_model.safetensors l2/v0-*/checkpoint-6/adapter_model.safetensors
    cmp l1/v0-*/checkpoint-6/optimizer.safetensors l2/v0-*/checkpoint-6/optimizer.safetensors
}

@test "--device cuda on a CPU-only build is a clear error before anything is written" {
    nm "$T" | grep -q sw_cuda_check && skip "this sw-train is a CUDA build"
    run "$T" --init_from_config "$M/tiny-qwen2/config.json" --tuner_type full --device cuda \
        --dataset "$D/train.sws" --output_dir o
    assert_failure 1
    assert_output --partial "device cuda: this sw was built without CUDA (rebuild with make CUDA=1, or use --device cpu)"
    [ ! -e o ]
}

# ---- issue 10: what a new user hits --------------------------------------------------------------

@test "tokenizer digest covers tokenizer.json.gz: another tokenizer is refused, the match is copied" {
    make_base base tiny-qwen2
    printf '{"version": "1.0", "model": {"type": "other"}}\n' | gzip -n > base/checkpoint-0/tokenizer.json.gz
    run "$T" --model base/checkpoint-0 --tuner_type full --dataset "$D/tok.sws" --max_steps 2 \
        --output_dir o
    assert_failure 1
    assert_output --partial "tok.sws: the stream was tokenized with another tokenizer"
    [ ! -e o ]
    printf '{"version": "1.0", "model": {"type": "tiny"}}\n' | gzip -n > base/checkpoint-0/tokenizer.json.gz
    run "$T" --model base/checkpoint-0 --tuner_type full --dataset "$D/tok.sws" --max_steps 2 \
        --output_dir o
    assert_success
    cmp base/checkpoint-0/tokenizer.json.gz o/v0-*/checkpoint-2/tokenizer.json.gz
}

@test "checkpoints are complete HF folders: tokenizer (from the stream when trained from a config), generation_config, chat template; sw-eval generates from them" {
    PACK="${SW_BIN:-$ROOT/bin}/sw-pack" EVAL="${SW_BIN:-$ROOT/bin}/sw-eval"
    sed 's/"vocab_size": 64/"vocab_size": 2048/' "$M/tiny-qwen2/config.json" > cfg.json
    # The stream records the tokenizer folder as given (relative to where sw-pack ran).
    (cd "$ROOT" && "$PACK" --tokenizer data/tokenizers/demo-bpe2k -q \
        --dataset data/tinyshakespeare/tinyshakespeare.jsonl.gz#16 --max_length 32 \
        --output "$BATS_TEST_TMPDIR/pt.sws")
    # Run from the repository: the recorded folder resolves there.
    (cd "$ROOT" && "$T" -q --init_from_config "$BATS_TEST_TMPDIR/cfg.json" --tuner_type full \
        --dataset "$BATS_TEST_TMPDIR/pt.sws" --max_steps 2 --output_dir "$BATS_TEST_TMPDIR/pt")
    ck=$(echo pt/v0-*/checkpoint-2)
    for f in tokenizer.json.gz tokenizer_config.json generation_config.json; do [ -s "$ck/$f" ]; done
    grep -q chat_template "$ck/tokenizer_config.json"
    grep -q '"_from_model_config": true' "$ck/generation_config.json"
    grep -q '"eos_token_id": 2' "$ck/generation_config.json"
    (cd "$ck" && sha256sum -c --quiet checkpoint.sha256)
    run "$EVAL" generate --model "$ck" --prompt "ROMEO:" --max_new_tokens 4 --seed 1
    assert_success
    # A full fine-tune of that checkpoint carries the same files on.
    "$T" -q --model "$ck" --tuner_type full --dataset pt.sws --max_steps 1 --output_dir ft
    for f in tokenizer.json.gz tokenizer_config.json generation_config.json; do
        cmp "$ck/$f" ft/v0-*/checkpoint-1/$f
    done
    # From another folder the stream's tokenizer is not found: a warning, not a silent gap.
    run "$T" --init_from_config cfg.json --tuner_type full --dataset pt.sws --max_steps 1 \
        --output_dir pt2
    assert_success
    assert_output --partial "the stream's tokenizer folder 'data/tokenizers/demo-bpe2k' is not here"
}

@test "output_dir: a vN-YYYYMMDD-HHMMSS folder per run; add_version false refuses a used folder; latest finds the newest run" {
    "$T" -q $(full_args) --max_steps 4 --save_steps 2 --output_dir out
    first=$(cat out/v0-*/logging.jsonl)
    [ -n "$first" ]
    run "$T" $(full_args) --max_steps 2 --output_dir out
    assert_success
    assert_output --regexp "run folder: out/v1-[0-9]{8}-[0-9]{6}"
    [ "$(ls -d out/v* | wc -l)" -eq 2 ]
    # The first run's records are untouched.
    [ "$(cat out/v0-*/logging.jsonl)" = "$first" ]
    [ -d out/v0-*/checkpoint-4 ] && [ -d out/v1-*/checkpoint-2 ]
    # latest: the newest run (v1) and its newest checkpoint.
    run "$T" $(full_args) --max_steps 4 --output_dir out --resume_from_checkpoint latest
    assert_success
    assert_output --regexp "resuming from out/v1-[0-9]{8}-[0-9]{6}/checkpoint-2"
    [ -d out/v1-*/checkpoint-4 ]
    [ "$(ls -d out/v* | wc -l)" -eq 2 ]
    # add_version false: one folder, refused once it holds a run, resumable with latest.
    "$T" -q $(full_args) --max_steps 2 --add_version false --output_dir flat
    [ -d flat/checkpoint-2 ] && [ -s flat/logging.jsonl ]
    run "$T" $(full_args) --max_steps 2 --add_version false --output_dir flat
    assert_failure 1
    assert_output --partial "output_dir 'flat' already holds a run"
    assert_output --partial "--resume_from_checkpoint latest"
    [ "$(wc -l < flat/logging.jsonl)" -eq 1 ]
    run "$T" $(full_args) --max_steps 4 --add_version false --output_dir flat \
        --resume_from_checkpoint latest
    assert_success
    [ -d flat/checkpoint-4 ]
    [ "$(wc -l < flat/logging.jsonl)" -eq 2 ]
}

@test "a failed run leaves no empty output folder; a run that recorded something keeps it" {
    run "$T" --init_from_config "$M/tiny-qwen2/config.json" --tuner_type full \
        --dataset "$D/bad_id.sws" --output_dir out
    assert_failure 1
    [ ! -e out ]
    mkdir keep
    run "$T" --init_from_config "$M/tiny-qwen2/config.json" --tuner_type full \
        --dataset "$D/bad_id.sws" --output_dir keep
    assert_failure 1
    [ -d keep ] && [ -z "$(ls -A keep)" ]
    make_base base tiny-qwen2
    f=base/checkpoint-0/model.safetensors
    printf '\x00\x00\xc0\x7f' |
        dd of="$f" bs=1 seek="$(tensor_offset "$f" model.norm.weight)" conv=notrunc status=none
    run "$T" --model base/checkpoint-0 --tuner_type full --dataset "$D/train.sws" \
        --max_steps 3 --output_dir nan
    assert_failure 1
    [ ! -e nan ]
}

@test "log lines per logging_steps on a non-terminal stderr, tokens/s on every progress line" {
    run env SW_PROGRESS=1 "$T" $(full_args) --output_dir out
    assert_success
    # HF Trainer / ms-swift: one dict per logging step (12 steps, logging_steps 2).
    [ "$(grep -c "^sw-train: {'loss': [0-9.]*, 'grad_norm': [0-9.e+-]*, 'learning_rate': [0-9.e+-]*, 'tokens_per_sec': [0-9.]*, 'memory(GiB)': [0-9.]*, 'epoch': [0-9.]*, 'global_step/max_steps': '[0-9]*/12', 'percentage': '[0-9.]*%', 'elapsed_time': '[0-9:]*', 'remaining_time': '[0-9:?]*'}" <<< "$output")" -eq 6 ]
    # The progress line after a logging step (the last one here) still has a rate.
    assert_output --regexp "train: .*12/12 steps .*tok/s"
    refute_output --partial "? tok/s"
}

@test "plots in images/ and TensorBoard event files (report_to), at the end and on each save" {
    run "$T" $(full_args) --val_dataset "$D/val.sws" --eval_steps 4 --save_steps 6 --output_dir out
    assert_success
    run_dir=$(echo out/v0-*)
    for f in train_loss train_learning_rate train_grad_norm eval_loss; do
        [ -s "$run_dir/images/$f.svg" ]
        grep -q '<polyline' "$run_dir/images/$f.svg"
    done
    grep -q 'smoothed (0.9)' "$run_dir/images/train_loss.svg"
    if python3 -c 'import xml.etree.ElementTree' 2>/dev/null; then
        python3 -c 'import sys, xml.etree.ElementTree as E; [E.parse(f) for f in sys.argv[1:]]' "$run_dir"/images/*.svg
    fi
    ls "$run_dir"/runs/events.out.tfevents.*
    run "$T" $(full_args) --max_steps 2 --report_to none --output_dir none
    assert_success
    [ ! -e none/v0-*/runs ] && [ -s none/v0-*/images/train_loss.svg ]
    run "$T" $(full_args) --report_to wandb --output_dir w
    assert_failure 2
    assert_output --partial "report_to: 'wandb' is not available in sw"
    [ ! -e w ]
}

@test "TensorBoard reads the event files back (train/loss, eval/loss at each logging step)" {
    python3 -c 'import tensorboard' 2>/dev/null ||
        skip "python package tensorboard not installed (pip install tensorboard)"
    "$T" -q $(full_args) --val_dataset "$D/val.sws" --eval_steps 6 --output_dir out
    run python3 - out/v0-*/runs out/v0-*/logging.jsonl <<'PY'
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
ea = EventAccumulator(sys.argv[1]); ea.Reload()
rows = [json.loads(l) for l in open(sys.argv[2])]
train = {r["step"]: r for r in rows if "loss" in r}
evals = {r["step"]: r for r in rows if "eval_loss" in r}
got = {e.step: e.value for e in ea.Scalars("train/loss")}
assert sorted(got) == sorted(train), (got, train)
for s, v in got.items():
    assert abs(v - train[s]["loss"]) <= 1e-6 * abs(train[s]["loss"]), (s, v)
lr = {e.step: e.value for e in ea.Scalars("train/learning_rate")}
assert all(abs(lr[s] - train[s]["learning_rate"]) <= 1e-6 * max(1e-9, train[s]["learning_rate"]) + 1e-12 for s in train)
ev = {e.step: e.value for e in ea.Scalars("eval/loss")}
assert sorted(ev) == sorted(evals) and len(ev) == 2, ev
assert set(ea.Tags()["scalars"]) >= {"train/loss", "train/grad_norm", "train/learning_rate", "train/epoch", "eval/loss"}
print("ok", len(got), "train and", len(ev), "eval scalars")
PY
    assert_success
    assert_output --partial "ok 6 train and 2 eval scalars"
}

@test "a batch stream says what sets its batch size when per_device_train_batch_size is given" {
    run "$T" --init_from_config "$M/tiny-qwen3/config.json" --tuner_type full \
        --dataset "$D/batches.sws" --max_steps 2 --per_device_train_batch_size 4 --output_dir out
    assert_success
    assert_output --partial "per_device_train_batch_size 4 has no effect: $D/batches.sws holds batches that sw-pack made"
    assert_output --partial "micro-batches = the stream's batch records"
    run "$T" $(full_args) --max_steps 1 --output_dir s
    refute_output --partial "has no effect"
    assert_output --partial "micro-batches of 4 samples x 2 per step"
}

@test "a hub id, a raw JSONL dataset and a folder that is not a model get the next step to take" {
    # a hub id is fetched (test/cli/hub-model.bats); offline and not cached it says so
    HF_HOME="$PWD/hf" HF_HUB_OFFLINE=1 run "$T" --model Qwen/Qwen2.5-0.5B --dataset "$D/train.sws" --output_dir o
    assert_failure 1
    assert_output --partial "'Qwen/Qwen2.5-0.5B' is not a local path and could not be had from the hub"
    mkdir notamodel
    run "$T" --model notamodel --dataset "$D/train.sws" --output_dir o
    assert_failure 1
    assert_output --partial "'notamodel' is not a model folder: it has no config.json"
    printf '{"query": "q", "response": "r"}\n' > raw.jsonl
    run "$T" --init_from_config "$M/tiny-qwen2/config.json" --tuner_type full --dataset raw.jsonl \
        --output_dir o
    assert_failure 1
    assert_output --partial "raw.jsonl is a JSON dataset, not an sws stream: run sw-pack first"
    [ ! -e o ]
}

@test "scripts/show-metrics.sh takes an output_dir (the newest vN-* run), a run folder or a file" {
    "$T" -q $(full_args) --max_steps 2 --output_dir out
    "$T" -q $(full_args) --max_steps 4 --output_dir out
    # Ten runs sort numerically: v10 after v9.
    mkdir out/v10-20000101-000000 && cp out/v1-*/logging.jsonl out/v10-20000101-000000/
    run "$ROOT/scripts/show-metrics.sh" out
    assert_success
    assert_line --index 0 "run: out/v10-20000101-000000"
    assert_line --regexp "^ +4 +[0-9.]+ +[0-9]+$"
    run "$ROOT/scripts/show-metrics.sh" out/v0-*
    assert_success
    refute_line --regexp "^ +4 "
    run "$ROOT/scripts/show-metrics.sh" "$(echo out/v0-*/logging.jsonl)"
    assert_success
    assert_line --regexp "^ +2 +[0-9.]+"
    mkdir empty
    run "$ROOT/scripts/show-metrics.sh" empty
    assert_failure
    assert_output --partial "no logging.jsonl in 'empty'"
}
