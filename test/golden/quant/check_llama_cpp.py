#!/usr/bin/env python3
"""check_llama_cpp.py — llama.cpp itself (through llama-cpp-python) loads GGUF files that
`sw-quant gguf` wrote, and its logits match sw-eval's on the Hugging Face folder.

Usage: check_llama_cpp.py SW_EVAL SW_QUANT WORKDIR
       check_llama_cpp.py tok FILE.gguf GOLDEN.ids.jsonl.gz CORPUS.jsonl MIN_LINES [nfc]
The second form loads only the vocabulary of FILE.gguf in llama.cpp, tokenizes every line of
the corpus (no BOS, special tokens parsed) and counts the lines whose ids equal the
`tokenizers` goldens of test/golden/tokenizer/; fewer than MIN_LINES fails. `nfc` normalizes
the text first (Qwen's tokenizer.json has an NFC normalizer that llama.cpp does not apply).
       check_llama_cpp.py quantizer SW_QUANT MODEL_DIR WORKDIR [--imatrix FILE.dat] TYPE...
The third form has llama.cpp's own quantizer (llama_model_quantize, as llama-quantize) turn
sw's F32 export of MODEL_DIR into each TYPE and requires every tensor of sw's export of that
type to have the same ggml type and the same bytes. --imatrix gives both the same legacy
importance matrix (llama.cpp through llama_model_quantize_params.imatrix, values = sums /
ncall as llama-quantize's load_imatrix computes them).
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


FTYPES = {"q8_0": 7, "q4_0": 2, "q4_1": 3, "q5_0": 8, "q5_1": 9, "q4_k_s": 14, "q4_k_m": 15,
          "q5_k_s": 16, "q5_k_m": 17, "q6_k": 18}


def load_legacy_imatrix(path):
    raw = open(path, "rb").read()
    n, off, out = struct.unpack_from("<i", raw)[0], 4, {}
    for _ in range(n):
        ln = struct.unpack_from("<i", raw, off)[0]
        name = raw[off + 4:off + 4 + ln].decode()
        off += 4 + ln
        ncall, nval = struct.unpack_from("<ii", raw, off)
        off += 8
        v = np.frombuffer(raw, np.float32, nval, off).copy()
        off += 4 * nval
        out[name] = v / ncall if ncall > 0 else v
    return out


def quantizer(q, model, work, types):
    import ctypes
    import gguf
    im, im_name = None, ""
    if types and types[0] == "--imatrix":
        im_name, types = types[1], types[2:]
        im = load_legacy_imatrix(im_name)
        keep = []  # the C array must outlive the calls
        arr = (llama_cpp.llama_model_imatrix_data * (len(im) + 1))()
        for i, (k, v) in enumerate(im.items()):
            kb, vv = k.encode(), np.ascontiguousarray(v, np.float32)
            keep += [kb, vv]
            arr[i].name, arr[i].data, arr[i].size = kb, vv.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), len(vv)
        arr[len(im)].name = None
    name = os.path.basename(os.path.normpath(model))
    f32 = os.path.join(work, f"{name}-qz-f32.gguf")
    subprocess.run([q, "gguf", "-q", "--force", "--model", model, "--quant_type", "f32", "--output", f32], check=True)
    failed = 0
    for t in types:
        lc, sw = os.path.join(work, f"{name}-qz-llamacpp-{t}.gguf"), os.path.join(work, f"{name}-qz-sw-{t}.gguf")
        p = llama_cpp.llama_model_quantize_default_params()
        p.ftype, p.nthread = FTYPES[t], 2
        if im is not None:
            p.imatrix = ctypes.cast(arr, ctypes.POINTER(llama_cpp.llama_model_imatrix_data))
        if llama_cpp.llama_model_quantize(f32.encode(), lc.encode(), ctypes.byref(p)) != 0:
            print(f"FAIL {name} {t}: llama_model_quantize failed")
            failed += 1
            continue
        subprocess.run([q, "gguf", "-q", "--force", "--model", model, "--quant_type", t, "--output", sw]
                       + (["--imatrix", im_name] if im is not None else []), check=True)
        a = {x.name: x for x in gguf.GGUFReader(lc).tensors}
        b = {x.name: x for x in gguf.GGUFReader(sw).tensors}
        bad = sorted(set(a) ^ set(b))
        for k in set(a) & set(b):
            if a[k].tensor_type != b[k].tensor_type or not np.array_equal(
                    np.asarray(a[k].data).view(np.uint8), np.asarray(b[k].data).view(np.uint8)):
                bad.append(f"{k} ({a[k].tensor_type.name} vs sw {b[k].tensor_type.name})")
        types_used = sorted({x.tensor_type.name for x in b.values()})
        print(f"{'FAIL' if bad else 'ok'} {name} {t}{' (imatrix)' if im is not None else ''}: {len(a) - len(bad)}/{len(a)} tensors byte-identical to "
              f"llama.cpp's quantizer ({', '.join(types_used)}){': ' + ', '.join(bad[:3]) if bad else ''}")
        failed += bool(bad)
    return 1 if failed else 0


def main():
    if sys.argv[1] == "quantizer":
        return quantizer(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
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
