#!/usr/bin/env bash
# tokenizer_bench.sh — encode throughput of sw_tokenizer next to the Python `tokenizers` package,
# on the same texts, in the same run.
#
#   bench/tokenizer_bench.sh [TOKENIZER...]      (default: qwen3 llama3 llama2)
#
# Texts: ~4 MB of Alpaca (English instruction data) + ~1 MB of 红楼梦 (Chinese) from
# ../shared/data when present, else test/golden/tokenizer/corpus.jsonl repeated to ~5 MB; one
# document per line. For each tokenizer it prints MB/s (UTF-8 input bytes) for
#   sw  1 thread        bench/tokenizer_bench.c, best of 3 (the word cache is warm after pass 1)
#   sw  N threads       the same with OpenMP over documents
#   hf  1 thread        tokenizers encode_batch with RAYON_NUM_THREADS=1
#   hf  N threads       tokenizers encode_batch on all cores
#   hf  encode() loop   one Python call per document, RAYON_NUM_THREADS=1
# and checks that both produce the same number of tokens. Needs python3 with `tokenizers`.
set -euo pipefail
cd "$(dirname "$0")/.."
toks=("$@")
[ ${#toks[@]} -gt 0 ] || toks=(qwen3 llama3 llama2)
work=$(mktemp -d /tmp/sw_tokbench.XXXXXX)
trap 'rm -rf "$work"' EXIT

make -s build/libsw.a >/dev/null
PKGS="jansson libpcre2-8 libutf8proc zlib libcrypto"
cc -std=gnu11 -O2 -g -fopenmp -pthread -D_GNU_SOURCE -Ilib $(pkg-config --cflags $PKGS) \
    bench/tokenizer_bench.c build/libsw.a -o "$work/tokenizer_bench" \
    $(pkg-config --libs libzmq msgpack yaml-0.1 jansson libpcre2-8 libutf8proc openblas zlib libcrypto) \
    -lm -fopenmp -pthread

python3 - "$work/texts.jsonl" <<'EOF'
import gzip, json, os, sys
out, shared = [], "../shared/data"
alp = os.path.join(shared, "alpaca_en", "alpaca_data.json.gz")
zh = os.path.join(shared, "zh_classics", "红楼梦.txt.gz")
if os.path.exists(alp) and os.path.exists(zh):
    n = 0
    for r in json.load(gzip.open(alp)):
        t = r["instruction"] + ("\n" + r["input"] if r["input"] else "") + "\n" + r["output"]
        out.append(t); n += len(t.encode())
        if n > 4_000_000: break
    n = 0
    for p in gzip.open(zh).read().decode("utf-8", "replace").split("\n"):
        if p.strip():
            out.append(p); n += len(p.encode())
            if n > 1_000_000: break
    src = "alpaca_en (4 MB) + zh_classics (1 MB)"
else:
    lines = [json.loads(l) for l in open("test/golden/tokenizer/corpus.jsonl", encoding="utf-8")
             .read().split("\n") if l]
    n = 0
    while n < 5_000_000:
        for t in lines:
            out.append(t); n += len(t.encode())
    src = "test/golden/tokenizer/corpus.jsonl repeated"
with open(sys.argv[1], "w", encoding="utf-8") as f:
    for t in out: f.write(json.dumps(t, ensure_ascii=False) + "\n")
print(f"texts: {src}: {len(out)} documents, {sum(len(t.encode()) for t in out)/1e6:.2f} MB")
EOF

cat > "$work/hf.py" <<'EOF'
import gzip, json, os, sys, time
from tokenizers import Tokenizer
tok = Tokenizer.from_str(gzip.open(sys.argv[1]).read().decode("utf-8"))
texts = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
nb = sum(len(t.encode()) for t in texts)
mode = sys.argv[3]
best, ntok = 1e30, 0
for _ in range(2):
    t0 = time.perf_counter()
    if mode == "loop":
        ntok = sum(len(tok.encode(t, add_special_tokens=False).ids) for t in texts)
    else:
        ntok = sum(len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False))
    best = min(best, time.perf_counter() - t0)
print(f"{nb / 1e6 / best:.2f} {ntok}")
EOF

ncpu=$(nproc)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "tokenizers $(python3 -c 'from importlib.metadata import version; print(version("tokenizers"))')"
for t in "${toks[@]}"; do
    echo "== $t"
    sw=$("$work/tokenizer_bench" "data/tokenizers/$t" "$work/texts.jsonl" 3)
    echo "$sw" | sed 's/^/  /'
    sw_tok=$(echo "$sw" | sed -n 's/.* \([0-9]*\) tokens, checksum.*/\1/p')
    read -r hf1 n1 < <(RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=true python3 "$work/hf.py" \
        "data/tokenizers/$t/tokenizer.json.gz" "$work/texts.jsonl" batch)
    read -r hfn nn < <(TOKENIZERS_PARALLELISM=true python3 "$work/hf.py" \
        "data/tokenizers/$t/tokenizer.json.gz" "$work/texts.jsonl" batch)
    read -r hfl nl < <(RAYON_NUM_THREADS=1 python3 "$work/hf.py" \
        "data/tokenizers/$t/tokenizer.json.gz" "$work/texts.jsonl" loop)
    printf '  hf     1 thread : %8.2f MB/s  (encode_batch, RAYON_NUM_THREADS=1)\n' "$hf1"
    printf '  hf     %d threads: %8.2f MB/s  (encode_batch)\n' "$ncpu" "$hfn"
    printf '  hf     1 thread : %8.2f MB/s  (encode() per document)\n' "$hfl"
    if [ "$sw_tok" = "$n1" ] && [ "$n1" = "$nn" ] && [ "$n1" = "$nl" ]; then
        echo "  token count: $sw_tok (sw and tokenizers agree)"
    else
        echo "  TOKEN COUNT MISMATCH: sw $sw_tok, tokenizers $n1 / $nn / $nl" >&2
        exit 1
    fi
done
