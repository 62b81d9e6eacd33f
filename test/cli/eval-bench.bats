#!/usr/bin/env bats
# sw-eval bench / farm / worker: parity with lm-evaluation-harness (test/golden/eval/expected.json,
# written by gen_eval.py with lm-eval's own task YAMLs and its HF backend on the tiny model
# test/golden/eval/model and the samples in data/eval): the same prompts byte for byte, every
# choice's log-likelihood within 1e-4, the same predicted choice and accuracy for MMLU (both
# published layouts), C-Eval, CMMLU, ARC- and HellaSwag-style sets, and the same generated text
# and strict/flexible answers for GSM8K and GSM8K-CoT (test/golden/eval/compare.py checks).
# Then the outputs (report.json, samples JSONL, the run cache and resuming), the custom task
# formats, the farm (same numbers with 1 or 2 workers, a worker that dies mid-shard), and bad
# input: malformed CSV row, missing split, answer out of range, unreachable endpoint.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup_file() {
    export ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
    export EVAL="${SW_BIN:-$ROOT/bin}/sw-eval"
    export M="$ROOT/test/golden/eval/model"
    export EXP="$ROOT/test/golden/eval/expected.json"
    export CMP="$ROOT/test/golden/eval/compare.py"
    export D="$ROOT/data/eval"
    # one 5-shot run of the three Chinese/English MCQ suites, reused by several tests
    "$EVAL" bench -q --model "$M" --eval_dataset mmlu,ceval,cmmlu --dataset_dir "$D" \
        --num_fewshot 5 --eval_output_dir "$BATS_FILE_TMPDIR/mc" > "$BATS_FILE_TMPDIR/mc.md"
}

@test "MMLU, C-Eval, CMMLU 5-shot: prompts, log-likelihoods (1e-4), predictions, accuracy = lm-eval" {
    run python3 "$CMP" "$EXP" "$BATS_FILE_TMPDIR/mc" mmlu ceval cmmlu
    assert_success
    assert_output --partial "0 failure(s)"
    assert_output --regexp "compared 56 items"
}

@test "MMLU's Hugging Face export layout gives the same numbers as the original CSVs" {
    run "$EVAL" bench -q --model "$M" --eval_dataset mmlu --dataset_dir "$D/mmlu_hf" \
        --num_fewshot 5 --eval_output_dir "$BATS_FILE_TMPDIR/hf"
    assert_success
    run python3 "$CMP" "$EXP" "$BATS_FILE_TMPDIR/hf" mmlu
    assert_success
    run python3 -c "
import json,sys
a=json.load(open('$BATS_FILE_TMPDIR/mc/report.json'))['tasks']['mmlu']
b=json.load(open('$BATS_FILE_TMPDIR/hf/report.json'))['tasks']['mmlu']
sys.exit(0 if a==b else 1)"
    assert_success
}

@test "GSM8K (5-shot) and GSM8K-CoT (8-shot): generated text and both filters = lm-eval" {
    run "$EVAL" bench -q --model "$M" --eval_dataset gsm8k,gsm8k_cot --dataset_dir "$D" \
        --max_gen_toks 24 --eval_output_dir "$BATS_FILE_TMPDIR/gsm"
    assert_success
    assert_output --partial "| gsm8k | | 8 | strict_match |"
    assert_output --partial "| gsm8k_cot | | 8 | flexible_extract |"
    run python3 "$CMP" "$EXP" "$BATS_FILE_TMPDIR/gsm" gsm8k gsm8k_cot
    assert_success
    assert_output --partial "compared 16 items"
}

@test "--engine false (packed forwards; generation on a late engine): the same parity" {
    run "$EVAL" bench -q --model "$M" --engine false --eval_dataset mmlu,gsm8k --dataset_dir "$D" \
        --num_fewshot 5 --max_gen_toks 24 --eval_limit 1 --eval_output_dir "$BATS_FILE_TMPDIR/noeng"
    assert_success
    run python3 "$CMP" --limit 1 "$EXP" "$BATS_FILE_TMPDIR/noeng" mmlu gsm8k
    assert_success
    assert_output --partial "compared 4 items"
}

@test "ARC- and HellaSwag-style 2-shot (random shots as Python's random.sample): = lm-eval" {
    run "$EVAL" bench -q --model "$M" --eval_dataset arc,hellaswag --dataset_dir "$D" \
        --num_fewshot 2 --eval_output_dir "$BATS_FILE_TMPDIR/ah"
    assert_success
    run python3 "$CMP" "$EXP" "$BATS_FILE_TMPDIR/ah" arc hellaswag
    assert_success
    assert_output --partial "compared 7 items"
}

@test "report.json, samples JSONL and the Markdown table" {
    run python3 -c "
import json
r=json.load(open('$BATS_FILE_TMPDIR/mc/report.json'))
m=r['tasks']['mmlu']
assert m['n']==24 and set(m['subjects'])=={'abstract_algebra','anatomy','marketing'}, m
assert abs(m['acc']-sum(s['acc']*s['n'] for s in m['subjects'].values())/24)<1e-9
assert m['subjects']['anatomy']['group']=='stem' and 'stem' in m['groups']
assert 'acc_norm' in r['tasks']['ceval'] and 'acc_macro' in r['tasks']['cmmlu']
rows=[json.loads(l) for l in open('$BATS_FILE_TMPDIR/mc/samples_mmlu.jsonl')]
s=rows[0]
assert {'subject','index','prompt','target','pred','loglikelihoods','acc'} <= set(s), s
assert sorted(x['index'] for x in rows if x['subject']=='anatomy')==list(range(8))
print('ok')"
    assert_success
    assert_output "ok"
    run cat "$BATS_FILE_TMPDIR/mc.md"
    assert_line --index 0 "| task | subject | n | metric | value | stderr |"
    assert_output --regexp "\| mmlu \| \| 24 \| acc \| 0\.[0-9]{4} \| 0\.[0-9]{4} \|"
}

@test "the run cache: a rerun answers nothing again; an interrupted run resumes to the same report" {
    out="$BATS_FILE_TMPDIR/cache"
    rm -rf "$out"
    "$EVAL" bench -q --model "$M" --eval_dataset ceval --dataset_dir "$D" --eval_output_dir "$out" >/dev/null
    cp "$out/report.json" "$BATS_FILE_TMPDIR/full.json"
    run "$EVAL" bench --model "$M" --eval_dataset ceval --dataset_dir "$D" --eval_output_dir "$out"
    assert_success
    refute_output --partial "requests to answer"
    # keep half the cache (as if killed) plus a torn last line
    n=$(wc -l < "$out/cache.jsonl")
    head -n $((n / 2)) "$out/cache.jsonl" > "$out/c" && printf '{"k":"ab' >> "$out/c" && mv "$out/c" "$out/cache.jsonl"
    run "$EVAL" bench --model "$M" --eval_dataset ceval --dataset_dir "$D" --eval_output_dir "$out"
    assert_success
    assert_output --partial "$((n / 2)) results from an earlier run"
    assert_output --partial "$((n - n / 2)) log-likelihood"
    run cmp "$out/report.json" "$BATS_FILE_TMPDIR/full.json"
    assert_success
}

@test "custom tasks: CEval-style CSV, general-QA JSONL, a YAML spec, perplexity" {
    run "$EVAL" bench -q --model "$M" --eval_dataset custom_mcq,general_qa,yaml/quiz.yaml,ppl \
        --dataset_dir "$D" --max_gen_toks 4 --eval_output_dir "$BATS_FILE_TMPDIR/custom"
    assert_success
    assert_output --partial "| custom_mcq | | 3 | acc |"
    assert_output --partial "| general_qa | | 2 | exact_match |"
    assert_output --partial "| quiz | | 3 | acc |"
    assert_output --regexp "\| ppl \| \| 2 \| bits_per_byte \| [0-9]+\.[0-9]{4} \|"
    run python3 -c "
import json,math
r=json.load(open('$BATS_FILE_TMPDIR/custom/report.json'))['tasks']['ppl']
s=[json.loads(l) for l in open('$BATS_FILE_TMPDIR/custom/samples_ppl.jsonl')]
ll=sum(x['loglikelihood'] for x in s); b=sum(x['bytes'] for x in s)
assert abs(r['bits_per_byte']-(-ll/b/math.log(2)))<1e-9
assert all(x['loglikelihood']<0 for x in s)
print(open('$D/yaml/quiz.yaml').read().count('task:'))"
    assert_success
}

@test "perplexity with a stride scores every token once (windows overlap only as context)" {
    run "$EVAL" bench -q --model "$M" --eval_dataset ppl --dataset_dir "$D" \
        --ppl_max_length 8 --ppl_stride 4 --eval_output_dir "$BATS_FILE_TMPDIR/ppl8"
    assert_success
    run "$EVAL" bench -q --model "$M" --eval_dataset ppl --dataset_dir "$D" \
        --ppl_max_length 1024 --eval_output_dir "$BATS_FILE_TMPDIR/pplfull"
    assert_success
    run python3 -c "
import json
a=[json.loads(l) for l in open('$BATS_FILE_TMPDIR/ppl8/samples_ppl.jsonl')]
b=[json.loads(l) for l in open('$BATS_FILE_TMPDIR/pplfull/samples_ppl.jsonl')]
assert [x['tokens'] for x in a]==[x['tokens'] for x in b]
assert all(x['loglikelihood']!=y['loglikelihood'] for x,y in zip(a,b))
print('ok')"
    assert_success
}

@test "the farm: 2 workers give the same report as sw-eval bench; a worker that dies mid-shard loses nothing" {
    ep="ipc://$BATS_FILE_TMPDIR/farm.sock"
    out="$BATS_FILE_TMPDIR/farm"
    rm -rf "$out"
    "$EVAL" farm --bind "$ep" --eval_dataset mmlu,ceval,cmmlu --dataset_dir "$D" --num_fewshot 5 \
        --shard_timeout 3 --eval_output_dir "$out" > "$out.md" 2> "$out.log" &
    farm=$!
    # the first worker takes a shard and dies holding it; only then do the others start
    run "$EVAL" worker --connect "$ep" --model "$M" --die_after 1
    assert_success
    assert_output --partial "leaving shard"
    "$EVAL" worker -q --connect "$ep" --model "$M" &
    w2=$!
    "$EVAL" worker -q --connect "$ep" --model "$M" &
    w3=$!
    wait $farm
    # A worker that connects after the farm handed out its last shard finds no farm and gives up
    # with an error after its timeout (a loaded machine makes that order possible); the report
    # below is what must not depend on it.
    wait $w2 || true
    wait $w3 || true
    run cat "$out.log"
    assert_output --partial "handing it out again"
    run python3 -c "
import json,sys
a=json.load(open('$BATS_FILE_TMPDIR/mc/report.json'))['tasks']
b=json.load(open('$out/report.json'))['tasks']
sys.exit(0 if a==b else 1)"
    assert_success
}

@test "a worker without a farm gives up with a clear error" {
    run "$EVAL" worker --connect "ipc://$BATS_FILE_TMPDIR/nobody.sock" --model "$M" --wait 1.5
    assert_failure
    assert_output --partial "no answer from the farm"
}

@test "bad input: malformed CSV row, missing split, answer letter out of range" {
    d="$BATS_FILE_TMPDIR/bad"
    rm -rf "$d" && mkdir -p "$d/mmlu/test" "$d/mmlu/dev"
    printf 'Q,a,b,c,d,A\nQ,a,b,c,A\n' > "$d/mmlu/test/x_test.csv"
    run "$EVAL" bench --model "$M" --eval_dataset mmlu --dataset_dir "$d" --num_fewshot 0 --eval_output_dir "$d/o"
    assert_failure
    assert_output --partial "x_test.csv:2: malformed row: 5 fields, expected 6"
    printf 'Q,a,b,c,d,A\n' > "$d/mmlu/test/x_test.csv"
    run "$EVAL" bench --model "$M" --eval_dataset mmlu --dataset_dir "$d" --eval_output_dir "$d/o"
    assert_failure
    assert_output --partial "missing split"
    assert_output --partial "x_dev.csv"
    printf 'Q,a,b,c,d,F\n' > "$d/mmlu/test/x_test.csv"
    run "$EVAL" bench --model "$M" --eval_dataset mmlu --dataset_dir "$d" --num_fewshot 0 --eval_output_dir "$d/o"
    assert_failure
    assert_output --partial "x_test.csv:1: answer 'F' is out of range"
    run test -e "$d/o/report.json"
    assert_failure
}

@test "an unreachable endpoint is a clear error" {
    run "$EVAL" bench --api_url http://127.0.0.1:9/v1 --eval_dataset ceval --dataset_dir "$D" \
        --eval_limit 1 --eval_output_dir "$BATS_FILE_TMPDIR/api"
    assert_failure
    assert_output --partial "cannot reach http://127.0.0.1:9/v1/completions"
    run "$EVAL" bench --api_url ftp://x --eval_dataset ceval --dataset_dir "$D" --eval_output_dir "$BATS_FILE_TMPDIR/api"
    assert_failure
    assert_output --partial "expected http://host:port/v1"
}

@test "--apply_chat_template renders the description as system and the shots + question as user" {
    run "$EVAL" bench -q --model "$M" --eval_dataset ceval --dataset_dir "$D" --eval_limit 1 \
        --num_fewshot 1 --apply_chat_template --eval_output_dir "$BATS_FILE_TMPDIR/chat"
    assert_success
    run python3 -c "
import json
s=json.loads(open('$BATS_FILE_TMPDIR/chat/samples_ceval.jsonl').readline())
p=s['prompt']
assert p.startswith('<|im_start|>system\n以下是中国关于') and p.endswith('答案：<|im_end|>\n<|im_start|>assistant\n'), p
print('ok')"
    assert_success
}

@test "--api_url against sw-serve: log-likelihood tasks and GSM8K = lm-eval (token prompts with --tokenizer)" {
    SERVE="$(dirname "$EVAL")/sw-serve"
    [ -x "$SERVE" ] || skip "no sw-serve binary next to sw-eval"
    port=$(python3 -c "import socket;s=socket.socket();s.bind(('127.0.0.1',0));print(s.getsockname()[1])")
    # max_model_len 1025 = the HF backend's window (max_length 1024 + 1) that the goldens used
    "$SERVE" --model "$M" --device cpu --host 127.0.0.1 --port "$port" --max_model_len 1025 2> "$BATS_FILE_TMPDIR/serve.log" &
    spid=$!
    for i in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
    run "$EVAL" bench -q --api_url "http://127.0.0.1:$port/v1" --tokenizer "$M" --eval_model model \
        --eval_dataset mmlu,ceval,cmmlu --dataset_dir "$D" --num_fewshot 5 --eval_output_dir "$BATS_FILE_TMPDIR/api"
    ok1=$status
    run "$EVAL" bench -q --api_url "http://127.0.0.1:$port/v1" --tokenizer "$M" --max_length 1024 \
        --eval_model model --eval_dataset gsm8k --dataset_dir "$D" --max_gen_toks 24 \
        --eval_output_dir "$BATS_FILE_TMPDIR/api"
    ok2=$status
    kill "$spid" 2>/dev/null || true
    wait "$spid" || true
    if [ "$ok1" != 0 ] || [ "$ok2" != 0 ]; then cat "$BATS_FILE_TMPDIR/serve.log"; false; fi
    run python3 "$CMP" "$EXP" "$BATS_FILE_TMPDIR/api" mmlu ceval cmmlu
    assert_success
    assert_output --partial "compared 56 items"
    run python3 "$CMP" --server-text "$EXP" "$BATS_FILE_TMPDIR/api" gsm8k
    assert_success
}

@test "perplexity = lm-eval's loglikelihood_rolling (one window, and disjoint windows of 8 tokens)" {
    for ml in 0 8; do
        run "$EVAL" bench -q --model "$M" --eval_dataset ppl --dataset_dir "$D" --ppl_max_length $ml \
            --eval_output_dir "$BATS_FILE_TMPDIR/ppl$ml"
        assert_success
    done
    run python3 -c "
import json
g=json.load(open('$ROOT/test/golden/eval/expected_ppl.json'))['runs']
for ml, key in (('0','1024'), ('8','8')):
    s=[json.loads(l) for l in open('$BATS_FILE_TMPDIR/ppl%s/samples_ppl.jsonl'%ml)]
    for x, ll, n in zip(s, g[key]['ll'], g[key]['tokens']):
        assert abs(x['loglikelihood']-ll) <= 1e-4*max(1,abs(ll)), (ml, x['loglikelihood'], ll)
        assert x['tokens']==n
print('ok')"
    assert_success
    assert_output "ok"
}
