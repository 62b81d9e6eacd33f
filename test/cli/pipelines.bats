#!/usr/bin/env bats
# pipelines/: content-addressed make stages (pipelines/sw.mk + scripts/sw-stage), run manifests
# and the comparison report (scripts/sw-report), on the two recipes shrunk to a 84K-parameter
# model (pipelines/configs/tiny-qwen3.json) and a few steps: a second make runs nothing; `make -n`
# says what would run and why; a changed option reruns exactly the stages below it; two clean runs
# give the same output hashes; an interrupted stage leaves no stamp and resumes to the same bytes;
# make -j4 over a 2x2 sweep (evaluations over the ZeroMQ farm) gives 4 manifests and a report.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup_file() {
    # isolated from an outer make (make test): its flags and jobserver are not this file's
    unset MAKEFLAGS MFLAGS MAKELEVEL
    export ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
    export SW_BIN="${SW_BIN:-$ROOT/bin}"
    # one thread per tool: the same bytes run after run, and -j4 does not oversubscribe 2 cores
    export SW_NUM_THREADS=1
    export A="$BATS_FILE_TMPDIR/a"
    # the sft-lora recipe, tiny: every stage once, reused by the tests below (in this order)
    run_sft "$A" > "$BATS_FILE_TMPDIR/a.log" 2>&1 || { cat "$BATS_FILE_TMPDIR/a.log" >&2; return 1; }
}

setup() {
    unset MAKEFLAGS MFLAGS MAKELEVEL
}

# make on a recipe with the tiny settings (any extra VAR=value or goal after the folder)
run_sft() {
    local out="$1"; shift
    make -C "$ROOT" --no-print-directory -f pipelines/sft-lora.mk OUT="$out" \
        BASE_CONFIG=pipelines/configs/tiny-qwen3.json BASE_STEPS=3 SFT_STEPS=2 \
        heldout.eval_limit=3 "$@"
}
run_pt() {
    local out="$1"; shift
    make -C "$ROOT" --no-print-directory -f pipelines/pretrain.mk OUT="$out" \
        PT_CONFIG=pipelines/configs/tiny-qwen3.json PT_STEPS=3 pt-data.max_length=64 \
        pt-data.per_device_train_batch_size=1 pt-data.split_dataset_ratio=0.01 \
        pt.logging_steps=1 pt.eval_steps=100000 pt-ppl.eval_limit=3 "$@"
}
export -f run_sft run_pt
# the output hash of every stage of a folder: "stage sha256" lines
hashes() {
    for r in "$1"/*/run.json; do
        printf '%s %s\n' "$(basename "$(dirname "$r")")" \
            "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["outputs"]["sha256"])' "$r")"
    done
}
ran() { grep -c ': running (' <<< "$output" || true; }

@test "sft-lora: every stage writes run.json (versions, options, hashes, time, memory, metrics); the report compares them" {
    for s in base-data base sft-data sft merged gguf eval-base eval-adapter eval-merged; do
        [ -s "$A/$s/run.json" ]
        ls "$A/$s"/.sw/stamp-* > /dev/null
    done
    run python3 - "$A" <<'EOF'
import json, sys, os
a = sys.argv[1]
r = json.load(open(f"{a}/sft/run.json"))
assert r["tool"] == "train" and r["tool_version"].startswith("sw-train "), r["tool_version"]
assert r["options"]["lora_rank"] == "16" and r["options"]["dataset"] == f"@{a}/sft-data"
assert r["options_full"]["add_version"] == "false" and r["options_full"]["lora_dropout"] == "0.05"
assert r["inputs"]["model"][0]["stage"] == f"{a}/base", r["inputs"]["model"]
assert len(r["key"]) == 64 and r["outputs"]["artifacts"]["main"]["path"] == "checkpoint-2"
assert "logging.jsonl" in r["outputs"]["volatile"]
assert r["wall_seconds"] > 0 and r["peak_rss_bytes"] > 1 << 20
assert 0 < r["metrics"]["loss"] < 20 and "eval_loss" in r["metrics"] and r["metrics"]["step"] == 2
e = [json.load(open(f"{a}/eval-{k}/run.json"))["metrics"]["ppl.token_perplexity"]
     for k in ("base", "adapter", "merged")]
# the merged model scores what base + adapter scores (merge-lora is exact up to float rounding)
assert abs(e[1] - e[2]) < 1e-3 * e[1], e
d = json.load(open(f"{a}/sft-data/run.json"))
assert d["metrics"]["tokens"] > 1000 and set(d["outputs"]["artifacts"]) == {"main", "val"}
print("ok")
EOF
    assert_success
    assert_output "ok"
    run cat "$A/report.md"
    assert_line --partial "| run | "
    assert_line --regexp "^\| $A/eval-merged \|"
    assert_output --partial "ppl.token_perplexity"
    assert_output --partial "eval_loss"
    run head -1 "$A/report.csv"
    assert_output --regexp "^run,.*ppl.token_perplexity.*wall_s,peak_mib$"
}

@test "a second make runs nothing and changes nothing" {
    touch "$BATS_TEST_TMPDIR/mark"
    run run_sft "$A" sft-lora
    assert_success
    refute_output --partial "sw-stage:"
    run find "$A" -newer "$BATS_TEST_TMPDIR/mark" -type f
    assert_output ""
}

@test "make -n after an option change says what would run and why, and runs nothing" {
    touch "$BATS_TEST_TMPDIR/mark"
    run run_sft "$A" -n sft.learning_rate=1e-3
    assert_success
    assert_output --partial "sw: sft: would run: option learning_rate: 3e-3 -> 1e-3"
    assert_output --partial "sw: merged: would run: upstream stage $A/sft runs first"
    assert_output --partial "sw: eval-merged: would run: upstream stage $A/merged runs first"
    refute_output --partial "sw: base:"
    refute_output --partial "sw: eval-base:"
    refute_output --partial "sw-stage:"
    run find "$A" -newer "$BATS_TEST_TMPDIR/mark" -type f
    assert_output ""
}

@test "a changed option reruns exactly the stages below it" {
    run run_sft "$A" sft.learning_rate=1e-3
    assert_success
    for s in sft merged gguf eval-adapter eval-merged; do assert_output --partial "sw-stage: $s: running ("; done
    assert_output --partial "sw-stage: sft: running (option learning_rate: 3e-3 -> 1e-3)"
    [ "$(ran)" -eq 5 ]
    run python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["options"]["learning_rate"])' "$A/sft/run.json"
    assert_output "1e-3"
    # an evaluation option: only the three evaluations
    run run_sft "$A" sft.learning_rate=1e-3 heldout.eval_limit=2
    assert_success
    for s in eval-base eval-adapter eval-merged; do assert_output --partial "sw-stage: $s: running (option eval_limit: 3 -> 2)"; done
    [ "$(ran)" -eq 3 ]
    # back to the first options: those 6 stages rerun once more, and nothing after that
    run run_sft "$A"
    assert_success
    [ "$(ran)" -eq 6 ]
    run run_sft "$A"
    assert_success
    [ "$(ran)" -eq 0 ]
}

@test "two clean runs give identical output hashes; a touched input with the same bytes reruns nothing" {
    c="$BATS_TEST_TMPDIR/c"
    run run_pt "$c"
    assert_success
    hashes "$c" > "$BATS_TEST_TMPDIR/h1"
    [ "$(wc -l < "$BATS_TEST_TMPDIR/h1")" -eq 4 ]
    rm -rf "$c"
    run run_pt "$c"
    assert_success
    hashes "$c" > "$BATS_TEST_TMPDIR/h2"
    run diff "$BATS_TEST_TMPDIR/h1" "$BATS_TEST_TMPDIR/h2"
    assert_success
    # the same config under another name: training reruns (an option changed) and gives the same
    # weights, so the evaluation below it finds its key unchanged and does not run
    cp "$ROOT/pipelines/configs/tiny-qwen3.json" "$BATS_TEST_TMPDIR/cfg.json"
    run run_pt "$c" PT_CONFIG="$BATS_TEST_TMPDIR/cfg.json"
    assert_success
    assert_output --partial "sw-stage: pt: running (option init_from_config: pipelines/configs/tiny-qwen3.json -> $BATS_TEST_TMPDIR/cfg.json)"
    assert_output --partial "sw-stage: pt-ppl: unchanged"
    [ "$(ran)" -eq 1 ]
    [ "$(hashes "$c" | grep '^pt ')" = "$(grep '^pt ' "$BATS_TEST_TMPDIR/h1")" ]
    # a newer input file with the same bytes: the stage compares its key and does not run
    touch "$BATS_TEST_TMPDIR/cfg.json"
    run run_pt "$c" PT_CONFIG="$BATS_TEST_TMPDIR/cfg.json"
    assert_success
    assert_output --partial "sw-stage: pt: unchanged"
    [ "$(ran)" -eq 0 ]
}

@test "an interrupted stage leaves no stamp; the rerun resumes it to the bytes of an uninterrupted run" {
    d="$BATS_TEST_TMPDIR/d"
    setsid bash -c 'run_pt "$@"' _ "$d" PT_STEPS=300 > "$BATS_TEST_TMPDIR/int.log" 2>&1 &
    pid=$!
    for i in $(seq 3000); do [ -s "$d/pt/logging.jsonl" ] && break; sleep 0.01; done
    kill -INT -- "-$pid"
    rc=0
    wait "$pid" || rc=$?
    [ "$rc" -ne 0 ]
    run cat "$BATS_TEST_TMPDIR/int.log"
    assert_output --partial "sw-stage: pt: sw-train exited with status 130; no stamp written"
    run ls "$d/pt/.sw"
    refute_output --partial "stamp-"
    [ ! -e "$d/pt/run.json" ]
    [ ! -e "$d/pt-ppl/run.json" ]
    ck=$(cd "$d/pt" && ls -d checkpoint-* | sort -t- -k2 -n | tail -1)
    run run_pt "$d" PT_STEPS=300
    assert_success
    assert_output --partial "sw-stage: pt: resuming an interrupted attempt from $ck"
    ls "$d/pt"/.sw/stamp-* > /dev/null
    [ -s "$d/pt-ppl/run.json" ]
    # the same stage run without interruption, in the same folder (the streams record their
    # input paths): the same checkpoint bytes
    hashes "$d" > "$BATS_TEST_TMPDIR/h1"
    rm -rf "$d"
    run run_pt "$d" PT_STEPS=300
    assert_success
    hashes "$d" > "$BATS_TEST_TMPDIR/h2"
    run diff "$BATS_TEST_TMPDIR/h1" "$BATS_TEST_TMPDIR/h2"
    assert_success
}

@test "make -j4 over a 2x2 learning rate x rank grid: 4 manifests and a report, evaluations over the farm" {
    run run_sft "$A" -j4 sft-lora-sweep SWEEP_LRS="1e-3 2e-3" SWEEP_RANKS="4 8"
    assert_success
    run bash -c "ls $A/sweep/*/sft/run.json | wc -l; ls $A/sweep/*/eval/run.json | wc -l"
    assert_output "4
4"
    run python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["command"][1], r["worker_command"][1])' \
        "$A/sweep/lr2e-3-r8/eval/run.json"
    assert_output "farm worker"
    run cat "$A/sweep/report.md"
    assert_line --regexp "^\| run \| sft.learning_rate \| sft.lora_alpha \| sft.lora_rank \|"
    assert_line --regexp "^\| $A/sweep/lr2e-3-r4 \| 2e-3 \| 8 \| 4 \|"
    [ "$(grep -c "^| $A/sweep/lr" "$A/sweep/report.md")" -eq 4 ]
    run run_sft "$A" -j4 sft-lora-sweep SWEEP_LRS="1e-3 2e-3" SWEEP_RANKS="4 8"
    assert_success
    refute_output --partial "sw-stage:"
}

@test "sw.mk in a user's Makefile: templates, shell stages, a failing stage leaves no stamp, bad references" {
    w="$BATS_TEST_TMPDIR/w"
    mkdir -p "$w"
    printf 'hello\n' > "$w/in.txt"
    cat > "$w/Makefile" <<EOF
include $ROOT/pipelines/sw.mk
SW_OUT := o
FAIL ?=
up.INPUTS := in.txt
up.COMMAND := tr a-z A-Z < \$\$1 > \$\$OUT/up.txt; test -z "\$(FAIL)"
up.ARTIFACTS := up.txt
\$(call sw_cmd,up)
tmpl.COMMAND := cat \$\$1 \$\$1 > \$\$OUT/twice.txt
twice.INPUTS := @up
\$(call sw_cmd,twice,tmpl)
q.model := $ROOT/test/golden/eval/model
q.quant_method := rtn
q.group_size := 16
\$(call sw_quantize,q)
all: \$(call sw_stamps,up twice q)
EOF
    run make -C "$w" --no-print-directory FAIL=1
    assert_failure
    assert_output --partial "sw-stage: up: bash exited with status 1; no stamp written"
    [ ! -e "$w/o/up/run.json" ]
    run make -C "$w" --no-print-directory
    assert_success
    assert_output --partial "sw-stage: up: running (restarting an interrupted attempt)"
    run cat "$w/o/twice/twice.txt"
    assert_output "HELLO
HELLO"
    [ -s "$w/o/q/model/config.json" ]
    run python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["outputs"]["artifacts"]["main"]["path"], r["metrics"]["size_bytes"] > 0, r["options_full"]["quant_bits"])' "$w/o/q/run.json"
    assert_output "model True 4"
    run make -C "$w" --no-print-directory
    assert_output "make: Nothing to be done for 'all'."
    printf 'world\n' > "$w/in.txt"
    run make -C "$w" --no-print-directory
    assert_output --partial "sw-stage: up: running (input in.txt changed"
    assert_output --partial "sw-stage: twice: running (input @o/up changed"
    run "$ROOT/scripts/sw-stage" verify "$w/o/up" "$w/o/twice"
    assert_success
    echo x >> "$w/o/twice/twice.txt"
    run "$ROOT/scripts/sw-stage" verify "$w/o/twice"
    assert_failure
    assert_output --partial "twice.txt: changed"
    printf 'include %s\nx.model := @nope\n$(call sw_train,x)\n' "$ROOT/pipelines/sw.mk" > "$w/Bad.mk"
    run make -C "$w" --no-print-directory -f Bad.mk
    assert_failure
    assert_output --partial "stage 'x' refers to @nope, but no stage 'nope' is declared before it"
}

@test "the top-level make knows the recipes, and its default goal is still 'all'" {
    run make -C "$ROOT" --no-print-directory ${SW_MAKEFLAGS:-BIN=$SW_BIN} -n pretrain OUT="$BATS_TEST_TMPDIR/top"
    assert_success
    assert_output --partial "sw: pt-split: would run: never run"
    [ ! -e "$BATS_TEST_TMPDIR/top" ]
    run make -C "$ROOT" --no-print-directory ${SW_MAKEFLAGS:-BIN=$SW_BIN} -p -n -q
    assert_line ".DEFAULT_GOAL := all"
}

@test "a fetch stage downloads through sw-fetch into its folder (the mock hub) and is not fetched again" {
    hub="$ROOT/test/hub/hubtool.py"
    python3 "$hub" make-repos "$BATS_TEST_TMPDIR/repos"
    python3 "$hub" start "$BATS_TEST_TMPDIR/repos" "$BATS_TEST_TMPDIR/port.json" "$BATS_TEST_TMPDIR/mock.log" > "$BATS_TEST_TMPDIR/mock.pid"
    export HF_ENDPOINT="http://127.0.0.1:$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$BATS_TEST_TMPDIR/port.json")"
    export HF_HOME="$BATS_TEST_TMPDIR/hf" SW_PROGRESS=0
    w="$BATS_TEST_TMPDIR/f"
    mkdir -p "$w"
    printf 'include %s\nSW_OUT := o\nm.REPO := org/tiny\nm.include := *.json\n$(call sw_fetch,m)\nall: $(SW_STAMP.m)\n' \
        "$ROOT/pipelines/sw.mk" > "$w/Makefile"
    run make -C "$w" --no-print-directory
    kill "$(cat "$BATS_TEST_TMPDIR/mock.pid")" 2>/dev/null || true
    assert_success
    cmp "$BATS_TEST_TMPDIR/repos/models/org/tiny/config.json" "$w/o/m/files/config.json"
    [ ! -e "$w/o/m/files/model.safetensors" ]
    run "$ROOT/scripts/sw-stage" artifact "$w/o/m"
    assert_output "$w/o/m/files"
    run make -C "$w" --no-print-directory
    assert_output "make: Nothing to be done for 'all'."
}
