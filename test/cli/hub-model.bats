#!/usr/bin/env bats
# Hub ids where tools take a model folder (issue 13): `--model ORG/NAME` (and --adapter,
# --tokenizer, sw-quant inspect's PATH) is fetched through the huggingface_hub-compatible cache
# from the mock hub (test/hub/mock_hub.py) and then used like the folder; HF_HUB_OFFLINE=1 runs
# from the cache alone; an unknown id fails naming it; an existing folder named like an id is a
# path (no network); --use_hf false picks the ModelScope API. The model is the generate golden's
# (test/golden/generate/model), so greedy ids can be compared with transformers'.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup_file() {
    export ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
    export EVAL="${SW_BIN:-$ROOT/bin}/sw-eval"
    export QUANT="${SW_BIN:-$ROOT/bin}/sw-quant"
    export PACK="${SW_BIN:-$ROOT/bin}/sw-pack"
    export TRAIN="${SW_BIN:-$ROOT/bin}/sw-train"
    export GM="$ROOT/test/golden/generate/model"
    export EXP="$ROOT/test/golden/generate/expected.json"
    export HUBTOOL="$ROOT/test/hub/hubtool.py"
    export REPOS="$BATS_FILE_TMPDIR/repos"
    export PORTFILE="$BATS_FILE_TMPDIR/port.json"
    mkdir -p "$REPOS/models/org/tiny-chat"
    cp "$GM"/* "$REPOS/models/org/tiny-chat/"
    python3 "$HUBTOOL" start "$REPOS" "$PORTFILE" "$BATS_FILE_TMPDIR/mock.log" "$BATS_ROOT_PID" \
        > "$BATS_FILE_TMPDIR/mock.pid"
    export PORT="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$PORTFILE")"
}

teardown_file() {
    [ -f "$BATS_FILE_TMPDIR/mock.pid" ] && kill "$(cat "$BATS_FILE_TMPDIR/mock.pid")" 2>/dev/null || true
}

setup() {
    unset HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_TOKEN_PATH HF_HUB_CACHE HUGGINGFACE_HUB_CACHE \
          HF_HUB_OFFLINE TRANSFORMERS_OFFLINE USE_HF MODELSCOPE_API_TOKEN XDG_CACHE_HOME
    export HF_ENDPOINT="http://127.0.0.1:$PORT"
    export MODELSCOPE_DOMAIN="http://127.0.0.1:$PORT"
    export HF_HOME="$BATS_TEST_TMPDIR/hf"
    export MODELSCOPE_CACHE="$BATS_TEST_TMPDIR/ms"
    export SW_PROGRESS=0
}

# sw-eval generate --json on the prompt_fox case, compared with transformers' ids.
fox() { # $@ = extra arguments (--model ...)
    run bash -c 'set -o pipefail; "$EVAL" generate -q --json --prompt "The quick brown fox" "$@" |
        python3 -c "
import json, sys
e = json.load(open(sys.argv[1]))[\"cases\"][\"prompt_fox\"]
got = json.loads(sys.stdin.read())
assert got[\"ids\"] == e[\"ids\"], (got[\"ids\"], e[\"ids\"])
print(\"match\", len(got[\"ids\"]))
" "$EXP"' _ "$@"
}

snapshot() { # the one snapshot folder of org/tiny-chat in the HF cache
    echo "$HF_HOME"/hub/models--org--tiny-chat/snapshots/*
}

@test "generate and inspect accept a hub id; a second run offline works from the cache" {
    fox --model org/tiny-chat
    assert_success
    assert_output "match 24"
    snap="$(snapshot)"
    [[ "$snap" =~ /snapshots/[0-9a-f]{40}$ ]]
    cmp "$snap/model.safetensors" "$GM/model.safetensors"
    run "$QUANT" inspect --json org/tiny-chat
    assert_success
    want="$("$QUANT" inspect --json "$GM" | python3 -c 'import json,sys; print(sorted(t["name"] for t in json.load(sys.stdin)["tensors"]))')"
    got="$(echo "$output" | python3 -c 'import json,sys; print(sorted(t["name"] for t in json.load(sys.stdin)["tensors"]))')"
    [ "$got" = "$want" ]
    # offline, with the hub unreachable: the cache alone answers
    HF_HUB_OFFLINE=1 HF_ENDPOINT=http://127.0.0.1:9 fox --model org/tiny-chat --tokenizer org/tiny-chat
    assert_success
    assert_output "match 24"
    HF_HUB_OFFLINE=1 HF_ENDPOINT=http://127.0.0.1:9 run "$QUANT" inspect org/tiny-chat
    assert_success
    assert_output --partial "model.safetensors"
    [ "$(snapshot)" = "$snap" ]
}

@test "sw-pack tokenize: a hub id fetches the tokenizer files only, same ids as the folder" {
    printf '{"text": "The quick brown fox"}\n{"text": "Hello, how are you?"}\n' > "$BATS_TEST_TMPDIR/in.jsonl"
    run "$PACK" tokenize -q --tokenizer org/tiny-chat "$BATS_TEST_TMPDIR/in.jsonl"
    assert_success
    hub_ids="$output"
    run "$PACK" tokenize -q --tokenizer "$GM" "$BATS_TEST_TMPDIR/in.jsonl"
    assert_output --partial '{"ids":['
    assert_success
    [ "$hub_ids" = "$output" ]
    snap="$(snapshot)"
    [ -f "$snap/tokenizer.json" ] && [ -f "$snap/config.json" ]
    [ ! -e "$snap/model.safetensors" ]
}

@test "an unknown id fails naming it (online and offline), before any work" {
    run "$QUANT" inspect org/no-such-model
    assert_failure
    assert_output --partial "org/no-such-model"
    HF_HUB_OFFLINE=1 run "$EVAL" generate --model org/no-such-model --prompt hi
    assert_failure
    assert_output --partial "org/no-such-model"
    run "$EVAL" generate --model org/tiny-chat --adapter org/no-such-lora --prompt hi
    assert_failure
    assert_output --partial "org/no-such-lora"
    HF_HUB_OFFLINE=1 run "$TRAIN" --model org/no-such-model --max_steps 1 --output_dir "$BATS_TEST_TMPDIR/o"
    assert_failure
    assert_output --partial "org/no-such-model"
    [ ! -e "$BATS_TEST_TMPDIR/o" ]
}

@test "an existing folder named like an id is a path: no network, no cache" {
    mkdir -p "$BATS_TEST_TMPDIR/cwd/org"
    cp -r "$GM" "$BATS_TEST_TMPDIR/cwd/org/tiny-chat"
    cd "$BATS_TEST_TMPDIR/cwd"
    # the hub is unreachable and not offline: any attempt to use it would fail
    HF_ENDPOINT=http://127.0.0.1:9 fox --model org/tiny-chat
    assert_success
    assert_output "match 24"
    HF_ENDPOINT=http://127.0.0.1:9 run "$QUANT" inspect org/tiny-chat
    assert_success
    [ ! -e "$HF_HOME" ]
}

@test "--use_hf false takes the id from the ModelScope API into its cache" {
    run "$QUANT" inspect --use_hf false org/tiny-chat
    assert_success
    assert_output --partial "model.safetensors"
    [ -n "$(find "$MODELSCOPE_CACHE" -name model.safetensors)" ]
    [ ! -e "$HF_HOME" ]
}
