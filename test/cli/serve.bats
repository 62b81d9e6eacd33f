#!/usr/bin/env bats
# sw-serve: the OpenAI API over HTTP on loopback with the tiny Qwen3 model of
# test/golden/generate (a copy without generation_config's max_new_tokens, so long generations
# are possible) and a LoRA adapter made here.
#   - the official `openai` client (skipped with a reason when not installed): chat, completions,
#     streaming, n > 1, logprobs, bad requests, unknown model, bad key;
#   - greedy ids equal transformers' goldens (expected.json) and `sw-eval generate`'s, over HTTP
#     (return_tokens_as_token_ids) and over ZeroMQ (pyzmq + msgpack; skipped when missing);
#     through an adapter they equal `sw-eval generate --adapter`'s;
#   - every error status with curl: 400 naming the field, 401, 404, 405, 413 (Content-Length and
#     chunked), 429 when the queue is full, 503 while draining;
#   - malformed HTTP on raw sockets: each answered or closed, never a hang, the server lives on;
#   - load: 200 concurrent streams finish with the golden ids (no token lost or repeated), 40
#     clients that hang up mid-stream leave no KV blocks, RSS comes back to its idle level;
#   - SIGTERM drains: running requests finish, new connections are refused, exit 0;
#   - /metrics in Prometheus text format, one JSON access-log line per request.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup_file() {
    export ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
    export SERVE="${SW_BIN:-$ROOT/bin}/sw-serve"
    export EVAL="${SW_BIN:-$ROOT/bin}/sw-eval"
    export EXP="$ROOT/test/golden/generate/expected.json"
    export T="$BATS_FILE_TMPDIR"
    export M="$T/m"
    mkdir -p "$M"
    cp "$ROOT"/test/golden/generate/model/* "$M/"
    python3 - "$M" "$T/lora" <<'EOF'
"""The test model (the golden one without max_new_tokens) and a random LoRA adapter for it
(PEFT layout: q_proj and v_proj of both layers, r 4, alpha 8), standard library only."""
import json, os, random, struct, sys
from array import array
m, lora = sys.argv[1], sys.argv[2]
g = json.load(open(os.path.join(m, "generation_config.json")))
g.pop("max_new_tokens", None)
json.dump(g, open(os.path.join(m, "generation_config.json"), "w"))
os.makedirs(lora, exist_ok=True)
json.dump({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"],
           "lora_dropout": 0.0, "bias": "none", "use_rslora": False, "use_dora": False,
           "task_type": "CAUSAL_LM", "base_model_name_or_path": None},
          open(os.path.join(lora, "adapter_config.json"), "w"))
rnd = random.Random(5)
hdr, blobs, off = {}, [], 0
for layer in range(2):
    for mod, out in (("q_proj", 64), ("v_proj", 32)):
        for ab, shape in (("A", [4, 48]), ("B", [out, 4])):
            n = shape[0] * shape[1]
            b = array("f", [rnd.gauss(0, 0.5) for _ in range(n)]).tobytes()
            name = f"base_model.model.model.layers.{layer}.self_attn.{mod}.lora_{ab}.weight"
            hdr[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(b)]}
            blobs.append(b)
            off += len(b)
h = json.dumps(hdr).encode()
h += b" " * (-len(h) % 8)
open(os.path.join(lora, "adapter_model.safetensors"), "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
EOF
    # The main server: the model, the adapter, a ZeroMQ endpoint.
    start_server main --model "$M" --adapters "mylora=$T/lora" --served_model_name tiny,tiny2 \
        --zmq_bind "ipc://$T/zmq.sock"
}

teardown_file() {
    for f in "$BATS_FILE_TMPDIR"/*.pid; do
        [ -e "$f" ] || continue
        kill "$(cat "$f")" 2>/dev/null || true
    done
}

# Start sw-serve in the background (name, then arguments); writes $T/name.{pid,port,err} and
# waits for /health 200. Fails when the server exits or is not ready in 20 s.
start_server() {
    local name="$1"; shift
    "$SERVE" --port 0 --device cpu "$@" 2> "$T/$name.err" 3>&- &
    local pid=$!
    echo "$pid" > "$T/$name.pid"
    local port="" i
    for i in $(seq 1 400); do
        port=$(sed -n 's|.* on http://127.0.0.1:\([0-9]*\).*|\1|p' "$T/$name.err" | head -1)
        if [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/health" > /dev/null; then
            echo "$port" > "$T/$name.port"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { cat "$T/$name.err" >&2; return 1; }
        sleep 0.05
    done
    cat "$T/$name.err" >&2
    return 1
}

port() { cat "$T/${1:-main}.port"; }
url() { echo "http://127.0.0.1:$(port "${2:-main}")$1"; }

# curl a JSON body to an endpoint of the main server: prints the body, then the status on a line
post() { # path body [extra curl args]
    local p="$1" b="$2"; shift 2
    curl -s -w '\n%{http_code}' "$(url "$p")" -H 'Content-Type: application/json' -d "$b" "$@"
}

# The value of a metric (first sample matching the regex) on server $2.
metric() {
    curl -s "$(url /metrics "${2:-main}")" | grep -E "^$1" | head -1 | awk '{print $NF}'
}

need_python() { # module...
    for m in "$@"; do
        python3 -c "import $m" 2>/dev/null || skip "python package '$m' is not installed (pip install $m)"
    done
}

@test "help, usage errors, a bad model folder" {
    run "$SERVE" --help
    assert_success
    for k in model adapters served_model_name host port api_key device max_model_len max_num_seqs \
             gpu_memory_utilization max_queue_len zmq_bind reasoning_parser drain_timeout \
             max_request_bytes; do
        assert_output --partial "--$k"
    done
    run "$SERVE"
    [ "$status" -eq 2 ]
    assert_output --partial "--model is required"
    run "$SERVE" --model "$M" --port 0 --device cpu --template nope
    [ "$status" -eq 2 ]
    assert_output --partial "unknown --template 'nope'"
    run "$SERVE" --model "$M" --port 0 --device cpu --adapters "a=$T/lora,a=$T/lora"
    [ "$status" -eq 2 ]
    assert_output --partial "used twice"
    run "$SERVE" --model "$M" --port 0 --device cpu stray
    [ "$status" -eq 2 ]
    assert_output --partial "unexpected argument 'stray'"
    run "$SERVE" --model "$T/nowhere" --port 0 --device cpu
    [ "$status" -eq 1 ]
    assert_output --partial "nowhere"
    run "$SERVE" --model "$M" --port 0 --device cpu --host 999.1.1.1
    [ "$status" -ne 0 ]
    if ! ldd "$SERVE" 2>/dev/null | grep -q libcudart; then # a CPU-only build
        run "$SERVE" --model "$M" --port 0 --device cuda
        [ "$status" -eq 1 ]
        assert_output --partial "built without CUDA"
    fi
}

@test "ready: model loaded, port open, /health 200; start time logged and in /metrics" {
    grep -q "ready in [0-9.]* s" "$T/main.err"
    run curl -s -o /dev/null -w '%{http_code}' "$(url /health)"
    assert_output "200"
    run metric sw_server_ready_seconds
    assert_success
    python3 -c "import sys; v = float(sys.argv[1]); assert 0 < v < 60, v" "$output"
    run curl -s "$(url /version)"
    assert_output --partial '"version"'
}

@test "/v1/models lists the served names and the adapter" {
    run curl -s "$(url /v1/models)"
    assert_success
    run python3 -c "
import json, sys
d = json.loads(sys.argv[1])
ids = [m['id'] for m in d['data']]
assert d['object'] == 'list' and ids == ['tiny', 'tiny2', 'mylora'], ids
lo = d['data'][2]
assert lo['parent'] == 'tiny' and d['data'][0]['max_model_len'] == 256, d
print('ok')" "$output"
    assert_success
}

@test "adapters: name=path words after --adapters, a bare path; runtime load/unload (vLLM's endpoints)" {
    cp -r "$T/lora" "$T/lora3"
    start_server lora --model "$M" --adapters "a=$T/lora" "b=$T/lora" --allow_runtime_lora
    run curl -s "$(url /v1/models lora)"
    assert_output --partial '"id":"a"'
    assert_output --partial '"id":"b"'
    run curl -s -w '\n%{http_code}' "$(url /v1/load_lora_adapter lora)" -d "{\"lora_name\": \"c\", \"lora_path\": \"$T/lora3\"}"
    assert_line --index 1 "200"
    run curl -s -w '\n%{http_code}' "$(url /v1/completions lora)" -d '{"model": "c", "prompt": "hi", "max_tokens": 2}'
    assert_line --index 1 "200"
    assert_line --index 0 --partial '"model":"c"'
    run curl -s -w '\n%{http_code}' "$(url /v1/load_lora_adapter lora)" -d "{\"lora_name\": \"d\", \"lora_path\": \"$T/nowhere\"}"
    assert_line --index 1 "400"
    assert_line --index 0 --partial "nowhere"
    run curl -s -w '\n%{http_code}' "$(url /v1/unload_lora_adapter lora)" -d '{"lora_name": "c"}'
    assert_line --index 1 "200"
    run curl -s -w '\n%{http_code}' "$(url /v1/completions lora)" -d '{"model": "c", "prompt": "hi", "max_tokens": 2}'
    assert_line --index 1 "404"
    kill "$(cat "$T/lora.pid")"
    # off by default (the main server)
    run post /v1/load_lora_adapter "{\"lora_name\": \"c\", \"lora_path\": \"$T/lora3\"}"
    assert_line --index 1 "404"
    assert_line --index 0 --partial "allow_runtime_lora"
    # a bare path is named after its folder
    start_server bare --model "$M" --adapters "$T/lora3/"
    run curl -s "$(url /v1/models bare)"
    assert_output --partial '"id":"lora3"'
    kill "$(cat "$T/bare.pid")"
}

@test "hub ids: --model, --adapters and --tokenizer resolved from the hub cache (offline)" {
    # huggingface_hub's cache layout, made by hand: models--org--name/{snapshots/<commit>, refs/main}
    hub="$BATS_TEST_TMPDIR/hf/hub"
    c=0123456789abcdef0123456789abcdef01234567
    for r in org--tiny org--tiny-lora; do
        mkdir -p "$hub/models--$r/snapshots/$c" "$hub/models--$r/refs"
        printf $c > "$hub/models--$r/refs/main"
    done
    cp "$M"/* "$hub/models--org--tiny/snapshots/$c/"
    cp "$T"/lora/* "$hub/models--org--tiny-lora/snapshots/$c/"
    HF_HOME="$BATS_TEST_TMPDIR/hf" HF_HUB_OFFLINE=1 SW_PROGRESS=0 \
        start_server hub --model org/tiny --adapters org/tiny-lora --tokenizer org/tiny
    run curl -s "$(url /v1/models hub)"
    assert_output --partial '"id":"org/tiny"'
    assert_output --partial '"id":"tiny-lora"'
    run curl -s -w '\n%{http_code}' "$(url /v1/completions hub)" -d '{"model": "org/tiny", "prompt": "hi", "max_tokens": 2}'
    assert_line --index 1 "200"
    kill "$(cat "$T/hub.pid")"
    # not a folder, not in the cache, offline: one clear error
    HF_HOME="$BATS_TEST_TMPDIR/hf" HF_HUB_OFFLINE=1 run "$SERVE" --model org/none --port 0 --device cpu
    [ "$status" -ne 0 ]
    assert_output --partial "org/none"
}

@test "greedy ids over HTTP equal transformers' goldens and sw-eval generate's" {
    run python3 - "$(url /v1/completions)" "$EXP" "$EVAL" "$M" <<'EOF'
import json, subprocess, sys, urllib.request
url, exp, ev, model = sys.argv[1:5]
cases = json.load(open(exp))["cases"]
for name in ("prompt_fox", "prompt_hello", "stop", "penalty"):
    c = cases[name]
    body = {"model": "tiny", "prompt": c["prompt"], "max_tokens": 24, "temperature": 0,
            "logprobs": 0, "return_tokens_as_token_ids": True}
    if "repetition_penalty" in c:
        body["repetition_penalty"] = c["repetition_penalty"]
    r = json.load(urllib.request.urlopen(urllib.request.Request(url, json.dumps(body).encode())))
    ch = r["choices"][0]
    ids = [int(t.split(":")[1]) for t in ch["logprobs"]["tokens"]]
    assert ids == c["ids"], (name, ids, c["ids"])
    assert r["usage"]["prompt_tokens"] == len(c["prompt_ids"]), r["usage"]
    assert r["usage"]["completion_tokens"] == len(c["ids"])
    assert ch["finish_reason"] == ("length" if len(c["ids"]) == 24 else "stop"), ch
    args = [ev, "generate", "-q", "--model", model, "--prompt", c["prompt"], "--json",
            "--max_new_tokens", "24"]
    if "repetition_penalty" in c:
        args += ["--repetition_penalty", str(c["repetition_penalty"])]
    g = json.loads(subprocess.check_output(args))
    assert g["ids"] == ids, (name, g["ids"], ids)
    # text: as vLLM, a stop token's own text is left out of the output, and an incomplete UTF-8
    # character at the end is held back; sw-eval generate decodes every id
    if ch["finish_reason"] == "stop":
        args[args.index("--max_new_tokens") + 1] = str(len(ids) - 1)
        g = json.loads(subprocess.check_output(args))
    t = g["text"]
    while t.endswith("\ufffd") and not ch["text"].endswith("\ufffd"):
        t = t[:-1]
    assert ch["text"] == t, (name, ch["text"], g["text"])
    print("match", name, len(ids))
EOF
    assert_success
    assert_output --partial "match penalty 15"
}

@test "greedy chat equals transformers' golden (chat template from tokenizer_config.json)" {
    run python3 - "$(url /v1/chat/completions)" "$EXP" <<'EOF'
import json, sys, urllib.request
url, exp = sys.argv[1:3]
c = json.load(open(exp))["cases"]["chat"]
body = {"model": "tiny", "messages": c["messages"], "max_tokens": 24, "temperature": 0,
        "logprobs": True, "return_tokens_as_token_ids": True}
r = json.load(urllib.request.urlopen(urllib.request.Request(url, json.dumps(body).encode())))
ids = [int(x["token"].split(":")[1]) for x in r["choices"][0]["logprobs"]["content"]]
assert ids == c["ids"], (ids, c["ids"])
assert r["usage"]["prompt_tokens"] == len(c["prompt_ids"]), r["usage"]
print("ok")
EOF
    assert_success
}

@test "an adapter picked by the request's model equals sw-eval generate --adapter" {
    run python3 - "$(url /v1/completions)" "$EVAL" "$M" "$T/lora" <<'EOF'
import json, subprocess, sys, urllib.request
url, ev, model, lora = sys.argv[1:5]
def ids(name):
    body = {"model": name, "prompt": "The quick brown fox", "max_tokens": 12, "temperature": 0,
            "logprobs": 0, "return_tokens_as_token_ids": True}
    r = json.load(urllib.request.urlopen(urllib.request.Request(url, json.dumps(body).encode())))
    assert r["model"] == name, r["model"]
    return [int(t.split(":")[1]) for t in r["choices"][0]["logprobs"]["tokens"]]
a, b = ids("mylora"), ids("tiny")
assert a != b, "the adapter changes nothing"
g = json.loads(subprocess.check_output([ev, "generate", "-q", "--model", model, "--adapter", lora,
                                        "--prompt", "The quick brown fox", "--json",
                                        "--max_new_tokens", "12"]))
assert g["ids"] == a, (g["ids"], a)
print("ok", a)
EOF
    assert_success
}

@test "openai client: chat, completions, streaming, n > 1, logprobs, usage, bad requests" {
    need_python openai
    run python3 - "$(url /v1)" <<'EOF'
import sys, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key="none", max_retries=0)
msgs = [{"role": "system", "content": "You answer briefly."}, {"role": "user", "content": "What is two plus two?"}]

# chat, non-streaming and streaming give the same greedy text
r = c.chat.completions.create(model="tiny", messages=msgs, max_tokens=20, temperature=0)
assert r.object == "chat.completion" and r.choices[0].message.role == "assistant", r
assert r.usage.completion_tokens == 20 and r.choices[0].finish_reason == "length", r.usage
text = r.choices[0].message.content
parts, usage, finish = [], None, None
for ch in c.chat.completions.create(model="tiny", messages=msgs, max_tokens=20, temperature=0,
                                    stream=True, stream_options={"include_usage": True}):
    if ch.usage:
        usage = ch.usage
    for x in ch.choices:
        parts.append(x.delta.content or "")
        finish = x.finish_reason or finish
assert "".join(parts) == text, ("".join(parts), text)
assert usage.completion_tokens == 20 and usage.prompt_tokens == r.usage.prompt_tokens, usage
assert finish == "length"

# n > 1 sampled with a seed: reproducible, every index present
kw = dict(model="tiny", messages=msgs, max_tokens=8, temperature=1.0, seed=11, n=3)
a, b = c.chat.completions.create(**kw), c.chat.completions.create(**kw)
assert [x.index for x in a.choices] == [0, 1, 2]
assert [x.message.content for x in a.choices] == [x.message.content for x in b.choices]
assert a.usage.completion_tokens == 24, a.usage
seen = {}
for ch in c.chat.completions.create(stream=True, **kw):
    for x in ch.choices:
        seen[x.index] = seen.get(x.index, "") + (x.delta.content or "")
assert seen == {i: a.choices[i].message.content for i in range(3)}, seen

# logprobs in the chat shape
r = c.chat.completions.create(model="tiny", messages=msgs, max_tokens=5, temperature=0,
                              logprobs=True, top_logprobs=3)
lp = r.choices[0].logprobs.content
assert len(lp) == 5 and all(len(x.top_logprobs) == 3 for x in lp), lp
assert all(x.logprob <= 0 and x.top_logprobs[0].logprob >= x.top_logprobs[2].logprob for x in lp)
assert abs(lp[0].logprob - lp[0].top_logprobs[0].logprob) < 1e-6  # greedy picks the top one

# completions: a list of prompts, echo, logprobs in the completions shape
r = c.completions.create(model="tiny", prompt=["Hello, how are", "The quick"], max_tokens=4,
                         temperature=0, n=2, logprobs=2, echo=True)
assert [x.index for x in r.choices] == [0, 1, 2, 3]
assert r.choices[0].text.startswith("Hello, how are") and r.choices[2].text.startswith("The quick")
assert r.choices[0].text == r.choices[1].text  # greedy: both samples of a prompt agree
l = r.choices[2].logprobs
assert l.token_logprobs[0] is None and len(l.tokens) == len(l.text_offset) == len(l.top_logprobs)
assert all(len(t) >= 2 for t in l.top_logprobs[1:]), l.top_logprobs
# scoring a prompt: echo with max_tokens 0 (log-likelihood evaluation)
r = c.completions.create(model="tiny", prompt="The quick brown fox", max_tokens=0, echo=True, logprobs=1)
assert r.choices[0].text == "The quick brown fox" and r.usage.completion_tokens == 0
assert len(r.choices[0].logprobs.token_logprobs) == r.usage.prompt_tokens
# streaming completions
s = "".join(ch.choices[0].text for ch in c.completions.create(model="tiny", prompt="The quick",
                                                               max_tokens=6, temperature=0, stream=True))
assert s == c.completions.create(model="tiny", prompt="The quick", max_tokens=6, temperature=0).choices[0].text

# bad requests: status, type and the offending param
def fails(exc, param, **kw):
    try:
        c.chat.completions.create(**kw)
    except exc as e:
        assert e.body.get("param") == param, e.body
        return e
    raise AssertionError(f"no {exc.__name__} for {kw}")
fails(openai.BadRequestError, "temperature", model="tiny", messages=msgs, temperature=-1)
fails(openai.BadRequestError, "messages[0].role", model="tiny", messages=[{"role": "x", "content": "a"}])
fails(openai.BadRequestError, "top_logprobs", model="tiny", messages=msgs, top_logprobs=2)
fails(openai.BadRequestError, "max_tokens", model="tiny", messages=msgs, max_tokens=100000)
fails(openai.BadRequestError, "n", model="tiny", messages=msgs, n=0)
fails(openai.BadRequestError, "tools", model="tiny", messages=msgs,
      tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}])
e = fails(openai.NotFoundError, "model", model="gpt-4", messages=msgs)
assert e.status_code == 404 and e.body["code"] == "model_not_found"
try:
    c.completions.create(model="tiny", prompt=[[5, 999999]])
    raise AssertionError("id outside the vocabulary accepted")
except openai.BadRequestError as e:
    assert "vocabulary" in e.body["message"], e.body
print("openai ok")
EOF
    assert_success
    assert_output --partial "openai ok"
}

@test "openai client: a bad API key is 401, the right one works" {
    need_python openai
    start_server auth --model "$M" --api_key sekret
    run python3 - "$(url /v1 auth)" <<'EOF'
import sys, openai
bad = openai.OpenAI(base_url=sys.argv[1], api_key="wrong", max_retries=0)
try:
    bad.models.list()
    raise AssertionError("wrong key accepted")
except openai.AuthenticationError as e:
    assert e.status_code == 401 and e.body["type"] == "authentication_error", e.body
good = openai.OpenAI(base_url=sys.argv[1], api_key="sekret", max_retries=0)
assert [m.id for m in good.models.list()] == ["m"]
print("auth ok")
EOF
    assert_success
    kill "$(cat "$T/auth.pid")"
}

@test "curl: every error status with OpenAI's error object" {
    # 400 naming the field
    run post /v1/chat/completions '{"messages": [{"role": "user", "content": "x"}], "top_p": 7}'
    assert_line --index 1 "400"
    run python3 -c "import json,sys; e=json.loads(sys.argv[1])['error']; assert e['param']=='top_p' and e['type']=='invalid_request_error' and set(e)=={'message','type','param','code'}, e" "${lines[0]}"
    assert_success
    run post /v1/completions '{"prompt": "x", "max_tokens": 3'
    assert_line --index 1 "400"
    assert_line --index 0 --partial "not valid JSON"
    run post /v1/completions ''
    assert_line --index 1 "400"
    # 404: unknown model, unknown path; 405: wrong method
    run post /v1/completions '{"prompt": "x", "model": "nope"}'
    assert_line --index 1 "404"
    assert_line --index 0 --partial '"code":"model_not_found"'
    run curl -s -w '\n%{http_code}' "$(url /v2/foo)"
    assert_line --index 1 "404"
    run curl -s -w '\n%{http_code}' -X PUT "$(url /v1/chat/completions)"
    assert_line --index 1 "405"
    # 413: by Content-Length before the body is read, and a chunked body over the limit
    run bash -c "head -c 17000000 /dev/zero | curl -s -w '\n%{http_code}' '$(url /v1/completions)' --data-binary @-"
    assert_line --index 1 "413"
    run bash -c "head -c 17000000 /dev/zero | curl -s -w '\n%{http_code}' -H 'Transfer-Encoding: chunked' '$(url /v1/completions)' --data-binary @-"
    assert_line --index 1 "413"
    # 401 on the key-protected server only for /v1; /health stays open
    start_server auth2 --model "$M" --api_key sekret
    run curl -s -w '\n%{http_code}' "$(url /v1/models auth2)"
    assert_line --index 1 "401"
    run curl -s -w '\n%{http_code}' -H 'Authorization: Bearer sekret2' "$(url /v1/models auth2)"
    assert_line --index 1 "401"
    run curl -s -w '\n%{http_code}' -H 'Authorization: Bearer sekret' "$(url /v1/models auth2)"
    assert_line --index 1 "200"
    run curl -s -o /dev/null -w '%{http_code}' "$(url /health auth2)"
    assert_output "200"
    kill "$(cat "$T/auth2.pid")"
    # the server is alive after all of it
    run post /v1/completions '{"prompt": "x", "max_tokens": 2}'
    assert_line --index 1 "200"
}

@test "curl: 429 when the queue is full (max_num_seqs 1, max_queue_len 1)" {
    start_server q --model "$M" --max_num_seqs 1 --max_queue_len 1
    run python3 - "$(port q)" <<'EOF'
import json, socket, sys
port = int(sys.argv[1])
# six requests sent within a millisecond: one runs, one waits, the rest find the queue full
body = json.dumps({"prompt": "hi", "max_tokens": 240, "ignore_eos": True}).encode()
socks = []
for _ in range(6):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body) + body)
    socks.append(s)
codes = []
for s in socks:
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    head, _, payload = data.partition(b"\r\n\r\n")
    code = int(head.split()[1])
    if code == 429:
        err = json.loads(payload)["error"]
        assert err["type"] == "rate_limit_error" and err["code"] == "queue_full", err
    codes.append(code)
assert codes.count(200) >= 1 and codes.count(429) >= 1 and set(codes) <= {200, 429}, codes
print("codes", sorted(codes))
EOF
    assert_success
    assert_output --partial "429"
    kill "$(cat "$T/q.pid")"
}

@test "malformed HTTP on raw sockets: answered or closed, never a hang; the server lives on" {
    run python3 - "$(port)" <<'EOF'
import socket, sys, time
port = int(sys.argv[1])
cases = [
    ("garbage", b"GARBAGE\r\n\r\n"),
    ("binary", bytes(range(256)) * 8),
    ("no version", b"GET /health\r\n\r\n"),
    ("bad version", b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n"),
    ("huge header", b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 400000 + b"\r\n\r\n"),
    ("huge url", b"GET /" + b"a" * 200000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("bad chunk", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n0\r\n\r\n"),
    ("negative length", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"),
    ("two lengths", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello!!"),
    ("length overflow", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
    ("header without colon", b"GET /health HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n"),
    ("nul in header", b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"),
    ("truncated body", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"prompt\""),
    ("truncated headers", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Le"),
    ("lf only", b"GET /health HTTP/1.1\nHost: x\n\n"),
    ("json not utf8", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 15\r\n\r\n{\"prompt\":\"\xff\xfe\"}"),
]
for name, data in cases:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(data)
    except OSError:
        pass  # the server may close before reading everything
    if name.startswith("truncated"):
        s.shutdown(socket.SHUT_WR)  # the client gives up half-way
    t0, got = time.time(), b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
            if b"\r\n\r\n" in got and not name.startswith("truncated"):
                break
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise AssertionError(f"{name}: no answer and no close in 10 s")
    s.close()
    status = got.split(b" ", 2)[1].decode() if got.startswith(b"HTTP/") else "closed"
    assert status == "closed" or status[0] in "2345", (name, got[:200])
    print(name, status)
# still serving
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
assert s.recv(100).startswith(b"HTTP/1.1 200"), "server not healthy afterwards"
print("alive")
EOF
    assert_success
    assert_output --partial "alive"
    assert_line "bad chunk 400"
    kill -0 "$(cat "$T/main.pid")"
}

@test "ZeroMQ: batch requests (msgpack) return token ids equal to HTTP's; abort; errors" {
    need_python zmq msgpack
    run python3 - "ipc://$T/zmq.sock" "$EXP" <<'EOF'
import json, sys, msgpack, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.DEALER)
s.connect(sys.argv[1])
s.RCVTIMEO = 30000
cases = json.load(open(sys.argv[2]))["cases"]
def send(o): s.send(msgpack.packb(o))
def recv(): return msgpack.unpackb(s.recv())
# several requests in flight at once, streaming and not
send({"id": "fox", "prompt": cases["prompt_fox"]["prompt"], "max_tokens": 24, "temperature": 0, "logprobs": 2})
send({"id": 7, "prompt": [cases["stop"]["prompt_ids"], cases["prompt_hello"]["prompt_ids"]], "max_tokens": 24, "temperature": 0, "stream": True})
send({"id": "chat", "type": "chat", "messages": cases["chat"]["messages"], "max_tokens": 24, "temperature": 0})
send({"id": "bad", "prompt": "x", "temperature": "hot"})
got, done, streamed = {}, {}, {}
while len(done) < 4:
    m = recv()
    if m.get("done"):
        done[m["id"]] = m
    elif m["id"] == 7:
        streamed.setdefault(m["index"], []).extend(m["token_ids"])
    else:
        got[(m["id"], m["index"])] = m
assert done["bad"]["error"]["param"] == "temperature", done["bad"]
fox = got[("fox", 0)]
assert fox["token_ids"] == cases["prompt_fox"]["ids"] and fox["finish_reason"] == "length", fox
assert len(fox["logprobs"]) == 24 and all(len(t) == 2 for t in fox["top_logprobs"])
assert done["fox"]["usage"]["completion_tokens"] == 24
assert done["fox"]["prompt_token_ids"] == [cases["prompt_fox"]["prompt_ids"]]
assert streamed == {0: cases["stop"]["ids"], 1: cases["prompt_hello"]["ids"]}, streamed
assert got[("chat", 0)]["token_ids"] == cases["chat"]["ids"]
# abort a long streaming request after a few tokens
send({"id": "long", "prompt": "hi", "max_tokens": 250, "ignore_eos": True, "stream": True})
n = 0
while True:
    m = recv()
    if m.get("done"):
        break
    n += len(m["token_ids"])
    if n == 3:
        send({"id": "long", "abort": True})
    if m.get("finish_reason"):
        assert m["finish_reason"] == "abort", m
assert 3 <= n < 250, n
# many requests in flight on one socket, streaming and not, n = 2: every one ends, with the golden ids
names = ["prompt_fox", "prompt_hello", "stop"]
for i in range(150):
    c = cases[names[i % 3]]
    send({"id": 1000 + i, "prompt": c["prompt"], "max_tokens": 24, "temperature": 0, "n": 2,
          "stream": i % 2 == 0})
ids, ended = {}, set()
while len(ended) < 150:
    m = recv()
    if m.get("done"):
        assert "error" not in m, m
        ended.add(m["id"])
    else:
        ids.setdefault((m["id"], m["index"]), []).extend(m["token_ids"])
for i in range(150):
    for k in range(2):
        assert ids[(1000 + i, k)] == cases[names[i % 3]]["ids"], (i, k, ids[(1000 + i, k)])
# a malformed message gets an error, not silence
s.send(b"\xc1garbage")
m = recv()
assert m["done"] and "msgpack" in m["error"]["message"], m
print("zmq ok")
EOF
    assert_success
    assert_output --partial "zmq ok"
}

@test "clients that disconnect mid-request leave no KV blocks; access log says so" {
    run python3 - "$(port)" <<'EOF'
import json, socket, sys, time
port = int(sys.argv[1])
socks = []
for i in range(12):
    body = json.dumps({"prompt": "hello %d" % i, "max_tokens": 250, "ignore_eos": True,
                       "stream": i % 2 == 0, "n": 1 + i % 3}).encode()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body) + body)
    socks.append(s)
# close as soon as the engine runs some of them (a fixed sleep let a tiny model finish all 250
# tokens first, or closed before any request reached the engine on a loaded machine)
import urllib.request
running = 0
for _ in range(1000):
    m = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port).read().decode()
    running = max([int(float(l.split()[-1])) for l in m.splitlines()
                   if l.startswith("sw_num_requests_running")] or [0])
    if running > 0:
        break
    time.sleep(0.005)
for s in socks:
    s.close()
print("closed with %d running" % running)
EOF
    assert_success
    for i in $(seq 1 100); do
        [ "$(metric 'sw_server_requests_in_flight')" = "0" ] && [ "$(metric 'sw_kv_cache_blocks\{.*state="used"')" = "0" ] && break
        sleep 0.1
    done
    [ "$(metric 'sw_server_requests_in_flight')" = "0" ]
    [ "$(metric 'sw_kv_cache_blocks\{.*state="used"')" = "0" ]
    [ "$(metric 'sw_num_requests_running')" = "0" ]
    # the clients closed while requests were running: at least those were aborted (how many of
    # the 12 had already finished or not yet started depends on the machine's speed)
    [ "$(metric 'sw_engine_requests_total\{.*state="aborted"')" -ge 1 ]
    [ "$(grep -c '"client_disconnected":true' "$T/main.err")" -ge 1 ]
}

@test "load: 200 concurrent streams, 40 hang-ups, exact ids, no leaked blocks, RSS back to idle" {
    # under AddressSanitizer freed memory sits in its quarantine: RSS says nothing there
    asan=0
    ldd "$SERVE" 2>/dev/null | grep -q libasan && asan=1
    run python3 - "$(port)" "$EXP" "$(cat "$T/main.pid")" "$asan" <<'EOF'
import asyncio, json, random, sys, time, urllib.request
port, exp, pid, asan = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == "1"
cases = json.load(open(exp))["cases"]
names = ["prompt_fox", "prompt_hello", "stop", "penalty"]

def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"):
            return int(l.split()[1]) * 1024

def metric(prefix):
    for l in urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode().splitlines():
        if l.startswith(prefix):
            return float(l.split()[-1])

async def stream(i, hangup=False):
    c = cases[names[i % 4]]
    body = {"model": "tiny", "prompt": c["prompt"], "max_tokens": 24, "temperature": 0,
            "stream": True, "stream_options": {"include_usage": True}, "logprobs": 0,
            "return_tokens_as_token_ids": True}
    if "repetition_penalty" in c:
        body["repetition_penalty"] = c["repetition_penalty"]
    if hangup:
        body.update(max_tokens=200, ignore_eos=True)
    data = json.dumps(body).encode()
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(data) + data)
    await w.drain()
    head = await r.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    ids, text, usage, done, buf, events = [], "", None, False, b"", 0
    while not done:
        size = int((await r.readuntil(b"\r\n")).strip(), 16)  # chunked encoding
        chunk = await r.readexactly(size + 2)
        if size == 0:
            break
        buf += chunk[:-2]
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            assert ev.startswith(b"data: "), ev
            if ev == b"data: [DONE]":
                done = True
                break
            o = json.loads(ev[6:])
            events += 1
            if o.get("usage"):
                usage = o["usage"]
            for ch in o["choices"]:
                lp = ch["logprobs"]
                if lp:
                    ids += [int(t.split(":")[1]) for t in lp["tokens"]]
                text += ch["text"]
        if hangup and events >= 3:
            w.close()
            return None
    w.close()
    assert done, "no [DONE]"
    assert ids == c["ids"], (names[i % 4], ids, c["ids"])
    assert usage["completion_tokens"] == len(ids), usage
    return text

async def round_():
    tasks = [stream(i) for i in range(200)] + [stream(i, hangup=True) for i in range(40)]
    random.Random(1).shuffle(tasks)
    t0 = time.time()
    out = await asyncio.gather(*tasks)
    texts = {}
    for i, t in enumerate(x for x in out if x is not None):
        texts.setdefault(t, 0)
    return time.time() - t0, len([x for x in out if x is not None])

def settle():
    for _ in range(200):
        if metric("sw_server_requests_in_flight") == 0 and metric('sw_kv_cache_blocks{model_name="tiny",state="used"}') == 0:
            return
        time.sleep(0.05)
    raise AssertionError("requests or KV blocks left: in flight %s, used %s" % (
        metric("sw_server_requests_in_flight"), metric('sw_kv_cache_blocks{model_name="tiny",state="used"}')))

asyncio.run(round_())          # warm-up: allocator pools, thread stacks, connection slots
settle()
time.sleep(1.0)                # the server trims its heap after 0.5 s idle
idle = rss()
secs, ok = asyncio.run(round_())
settle()
time.sleep(1.0)
after = rss()
assert ok == 200, ok
grow = (after - idle) / 2**20
print(f"200 streams + 40 hang-ups in {secs:.2f} s; RSS idle {idle / 2**20:.1f} MiB, after {after / 2**20:.1f} MiB (+{grow:.2f})")
assert grow < 4 or asan, f"RSS grew by {grow:.1f} MiB"
if asan:
    print("(RSS not checked: AddressSanitizer build)")
print("load ok")
EOF
    echo "$output"
    assert_success
    assert_output --partial "load ok"
}

@test "/metrics: Prometheus text with counters, gauges and consistent histograms" {
    run curl -s "$(url /metrics)"
    assert_success
    run python3 -c "
import re, sys
text = sys.argv[1]
names = {}
for l in text.splitlines():
    if l.startswith('# TYPE'):
        _, _, n, t = l.split()
        names[n] = t
        continue
    if l.startswith('#') or not l:
        continue
    m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.e+-]+|\+Inf|NaN)$', l)
    assert m, 'bad sample line: ' + l
for n in ['sw_num_requests_running', 'sw_num_requests_waiting', 'sw_kv_cache_usage_perc',
          'sw_http_requests_total', 'sw_prompt_tokens_total', 'sw_generation_tokens_total',
          'sw_time_to_first_token_seconds', 'sw_inter_token_latency_seconds',
          'sw_e2e_request_latency_seconds', 'sw_server_requests_in_flight',
          'process_resident_memory_bytes', 'sw_request_success_total']:
    assert n in names, n
assert names['sw_time_to_first_token_seconds'] == 'histogram'
b = [float(x) for x in re.findall(r'sw_time_to_first_token_seconds_bucket\{[^}]*\} ([0-9.e+]+)', text)]
assert b == sorted(b) and b[-1] > 0, b
cnt = float(re.search(r'sw_time_to_first_token_seconds_count\{[^}]*\} ([0-9.e+]+)', text).group(1))
assert cnt == b[-1], (cnt, b[-1])
assert re.search(r'sw_http_requests_total\{[^}]*endpoint=\"/v1/completions\",status=\"400\"\} [1-9]', text)
print('metrics ok')" "$output"
    assert_success
}

@test "access log: one JSON line per request" {
    n=$(grep -c '^{' "$T/main.err")
    post /v1/completions '{"prompt": "x", "max_tokens": 2, "user": "alice"}' > /dev/null
    curl -s "$(url /health)" > /dev/null
    sleep 0.2
    [ "$(grep -c '^{' "$T/main.err")" -eq $((n + 2)) ]
    run bash -c "grep '\"user\":\"alice\"' '$T/main.err' | tail -1"
    run python3 -c "
import json, sys
o = json.loads(sys.argv[1])
assert o['path'] == '/v1/completions' and o['status'] == 200 and o['completion_tokens'] == 2, o
assert o['prompt_tokens'] >= 1 and o['duration_ms'] > 0 and o['id'].startswith('cmpl-'), o
print('ok')" "$output"
    assert_success
}

@test "chat: reasoning parser and enable_thinking with the qwen3 template" {
    start_server think --model "$M" --template qwen3 --reasoning_parser qwen3
    run python3 - "$(url /v1/chat/completions think)" <<'EOF'
import json, sys, urllib.request
url = sys.argv[1]
def ask(**kw):
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "temperature": 0, **kw}
    return json.load(urllib.request.urlopen(urllib.request.Request(url, json.dumps(body).encode())))
a = ask()
b = ask(chat_template_kwargs={"enable_thinking": False})
# enable_thinking=false appends Qwen3's empty think block to the prompt
assert b["usage"]["prompt_tokens"] > a["usage"]["prompt_tokens"], (a["usage"], b["usage"])
m = a["choices"][0]["message"]
# the tiny model writes no <think>: everything is content, reasoning_content is null
assert "reasoning_content" in m and m["reasoning_content"] is None and m["content"], m
print("ok")
EOF
    assert_success
    kill "$(cat "$T/think.pid")"
}

@test "SIGTERM drains: running requests finish, new connections refused, 503 on kept-alive ones, exit 0" {
    # one sequence at a time: the two long requests run one after the other, so the drain lasts
    # well past the checks below however fast the machine is
    "$SERVE" --port 0 --device cpu --model "$M" --drain_timeout 30 --max_num_seqs 1 \
        2> "$T/drain.err" 3>&- &
    pid=$!
    for i in $(seq 1 200); do
        p=$(sed -n 's|.* on http://127.0.0.1:\([0-9]*\).*|\1|p' "$T/drain.err" | head -1)
        [ -n "$p" ] && curl -sf "http://127.0.0.1:$p/health" > /dev/null && break
        sleep 0.05
    done
    run python3 - "$p" "$pid" <<'EOF'
import http.client, json, os, signal, socket, sys, threading, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
idle = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
idle.request("GET", "/health")
assert idle.getresponse().read() is not None
results = {}
def long(name, stream):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body = json.dumps({"prompt": "hi", "max_tokens": 240, "ignore_eos": True, "stream": stream})
    c.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    results[name] = (r.status, r.read().decode())
ts = [threading.Thread(target=long, args=("plain", False)), threading.Thread(target=long, args=("stream", True))]
for t in ts: t.start()
time.sleep(0.1)
os.kill(pid, signal.SIGTERM)
time.sleep(0.05)
# a kept-alive connection gets 503 and is closed (or, when the server closed it before this
# request arrived, which a loaded machine makes possible, it is simply closed: not served)
try:
    idle.request("GET", "/health")
    r = idle.getresponse()
    assert r.status == 503 and r.getheader("Connection") == "close", (r.status, r.getheaders())
except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
    pass
# a new connection is refused
try:
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    raise AssertionError("accepted a new connection while draining")
except ConnectionRefusedError:
    pass
for t in ts: t.join()
st, body = results["plain"]
assert st == 200 and json.loads(body)["usage"]["completion_tokens"] == 240, results["plain"]
st, body = results["stream"]
assert st == 200 and body.rstrip().endswith("data: [DONE]") and '"finish_reason":"length"' in body
print("drained")
EOF
    assert_success
    assert_output --partial "drained"
    wait "$pid" # exit status 0
    grep -qE "draining [0-9]+ request" "$T/drain.err" # both were accepted; one may still be parsing
    grep -q "stopped" "$T/drain.err"
    ! grep -q "Sanitizer" "$T/drain.err"
}

@test "the main server, after every test above, stops cleanly on SIGTERM (no sanitizer report)" {
    pid=$(cat "$T/main.pid")
    kill -TERM "$pid"
    for i in $(seq 1 200); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    ! kill -0 "$pid" 2>/dev/null
    grep -q "sw-serve: stopped" "$T/main.err"
    run grep -A20 "Sanitizer" "$T/main.err"
    assert_failure
}
