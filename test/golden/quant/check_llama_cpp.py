#!/usr/bin/env python3
"""check_llama_cpp.py — llama.cpp itself (through llama-cpp-python) loads GGUF files that
`sw-quant gguf` wrote, and its logits match sw-eval's on the Hugging Face folder.

Usage: check_llama_cpp.py SW_EVAL SW_QUANT WORKDIR
       check_llama_cpp.py tok FILE.gguf GOLDEN.ids.jsonl.gz CORPUS.jsonl MIN_LINES [nfc]
The second form loads only the vocabulary of FILE.gguf in llama.cpp, tokenizes every line of
the corpus (no BOS, special tokens parsed) and counts the lines whose ids equal the
`tokenizers` goldens of test/golden/tokenizer/; fewer than MIN_LINES fails. `nfc` normalizes
the text first (Qwen's tokenizer.json has an NFC normalizer that llama.cpp does not apply).
The first form: WORKDIR must hold the models test/cli/quant-gguf.bats builds (qwen2, llama, qwen3). For each
model, sw-eval computes the logits of 16 fixed token ids on the HF folder; llama.cpp evaluates
the same ids on sw's F32, Q8_0 and Q4_K_M exports. F32 must agree to float rounding (this
checks names, q/k permutation, rope, norms, biases and metadata); the quantized files must stay
within their quantization error of it, measured as the RMS of the logit difference relative
to the RMS of the logits. Prints one line per file; exits 1 on the first failure.

llama-cpp-python: pip install llama-cpp-python (it compiles llama.cpp), or a libllama built
from llama.cpp's CMake with LLAMA_CPP_LIB_PATH pointing at it and the package's llama_cpp/ on
PYTHONPATH. Needs numpy.
"""
import json
import os
import struct
import subprocess
import sys

import numpy as np
import llama_cpp

TOL = {"f32": 2e-4, "q8_0": 0.05, "q4_k_m": 0.25}


def save_ids(path, ids):
    raw = np.asarray([ids], np.int64).tobytes()
    hdr = json.dumps({"input_ids": {"dtype": "I64", "shape": [1, len(ids)], "data_offsets": [0, len(raw)]}}).encode()
    hdr += b" " * (-len(hdr) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)) + hdr + raw)


def load_logits(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    b, e = hdr["logits"]["data_offsets"]
    return np.frombuffer(raw[8 + n + b:8 + n + e], np.float32).reshape(hdr["logits"]["shape"])[0]


def llama_logits(path, ids):
    # F32 KV cache: llama.cpp's default F16 cache alone moves the logits by ~1e-3 relative
    llm = llama_cpp.Llama(model_path=path, n_ctx=64, n_batch=64, logits_all=True, verbose=False,
                          n_threads=2, n_gpu_layers=0, type_k=0, type_v=0)
    llm.eval(ids)
    out = np.array(llm.scores[:len(ids)], dtype=np.float32)
    del llm
    return out


def tok(path, golden, corpus, min_lines, nfc):
    import gzip
    import unicodedata
    llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    lines = [json.loads(line) for line in open(corpus, encoding="utf-8")]
    gold = [json.loads(line) for line in gzip.open(golden, "rt", encoding="utf-8")][1:]
    same, first_bad = 0, None
    for text, g in zip(lines, gold):
        t = unicodedata.normalize("NFC", text) if nfc else text
        got = llm.tokenize(t.encode("utf-8", "surrogatepass"), add_bos=False, special=True)
        if got == g["ids"]:
            same += 1
        elif first_bad is None:
            first_bad = (text[:30], got[:8], g["ids"][:8])
    ok = same >= min_lines
    print(f"{'ok' if ok else 'FAIL'} {os.path.basename(path)}: llama.cpp's tokenizer gives the tokenizers ids on "
          f"{same}/{len(lines)} corpus lines (need {min_lines}); first difference {first_bad}")
    return 0 if ok else 1


def main():
    if sys.argv[1] == "tok":
        return tok(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), len(sys.argv) > 6)
    ev, q, work = sys.argv[1:4]
    ids = [5, 17, 42, 99, 7, 250, 3, 64, 128, 77, 31, 200, 11, 150, 89, 12]
    save_ids(os.path.join(work, "ids.safetensors"), ids)
    failed = False
    for m in ("qwen2", "llama", "qwen3"):
        d = os.path.join(work, m)
        out = os.path.join(work, f"{m}-ref.safetensors")
        subprocess.run([ev, "logits", "-q", "--model", d, "--input", os.path.join(work, "ids.safetensors"),
                        "--output", out], check=True)
        ref = load_logits(out)
        for t in ("f32", "q8_0", "q4_k_m"):
            g = os.path.join(work, f"{m}-lc-{t}.gguf")
            subprocess.run([q, "gguf", "-q", "--force", "--model", d, "--quant_type", t, "--output", g], check=True)
            got = llama_logits(g, ids)
            rel = float(np.sqrt(np.mean((got - ref) ** 2)) / np.sqrt(np.mean(ref ** 2)))
            top1 = float(np.mean(got.argmax(-1) == ref.argmax(-1)))
            ok = rel <= TOL[t]
            print(f"{'ok' if ok else 'FAIL'} {m} {t}: llama.cpp vs sw-eval logits relative RMS {rel:.2e} "
                  f"(limit {TOL[t]}), top-1 agreement {top1:.2f}")
            failed |= not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
