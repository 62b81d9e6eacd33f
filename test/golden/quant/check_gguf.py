#!/usr/bin/env python3
"""check_gguf.py — checks a GGUF file that `sw-quant gguf` wrote, with gguf-py (PyPI `gguf`,
llama.cpp's own Python library) and numpy. Used by test/cli/quant-gguf.bats; exits non-zero
with a message on the first failed check, prints "ok ..." lines otherwise.

  check_gguf.py meta FILE.gguf MODEL_DIR QUANT_TYPE
      gguf.GGUFReader opens the file; general.* and <arch>.* keys match config.json; the
      tokenizer keys are there (tokens = vocab_size rows, token types, merges for gpt2, special
      ids, chat template); the tensor names, shapes and ggml types are the ones llama.cpp's
      converter + quantizer would give (1-D F32; file type's type; output / tied embeddings
      Q6_K; Q6_K for attn_v and ffn_down of use_more_bits layers in the *_M mixes; fallbacks);
      every tensor dequantized by gguf.quants.dequantize is within the type's error of the
      model's own weights (llama q/k rows permuted as convert_hf_to_gguf does).
  check_gguf.py deq FILE.gguf SW_DEQUANT.safetensors
      gguf.quants.dequantize of every tensor equals, bit for bit, what `sw-quant dequant`
      wrote (sw's own dequantizer).

gguf-py code paths: gguf/gguf_reader.py (GGUFReader, ReaderField.contents()),
gguf/quants.py (dequantize), gguf/constants.py (GGMLQuantizationType, LlamaFileType).
"""
import json
import os
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

# relative RMS error allowed per type (random N(0, 0.02) weights with heavy columns)
TOL = {T.F32: 0, T.F16: 1e-3, T.BF16: 8e-3, T.Q8_0: 0.01, T.Q6_K: 0.04, T.Q5_K: 0.07,
       T.Q5_0: 0.08, T.Q5_1: 0.08, T.Q4_K: 0.14, T.Q4_0: 0.16, T.Q4_1: 0.16}
FTYPE = {"f32": (0, T.F32), "f16": (1, T.F16), "bf16": (32, T.BF16), "q8_0": (7, T.Q8_0),
         "q4_0": (2, T.Q4_0), "q4_1": (3, T.Q4_1), "q5_0": (8, T.Q5_0), "q5_1": (9, T.Q5_1),
         "q4_k_s": (14, T.Q4_K), "q4_k_m": (15, T.Q4_K), "q5_k_s": (16, T.Q5_K),
         "q5_k_m": (17, T.Q5_K), "q6_k": (18, T.Q6_K)}


def fail(msg):
    print("FAIL " + msg)
    sys.exit(1)


def field(r, key):
    f = r.get_field(key)
    if f is None:
        fail("missing key " + key)
    return f.contents()


def load_st(path):
    """safetensors -> {name: float32 array} (F32, F16, BF16)."""
    out = {}
    files = [path]
    if os.path.isdir(path):
        idx = os.path.join(path, "model.safetensors.index.json")
        if os.path.exists(idx):
            files = [os.path.join(path, f) for f in sorted(set(json.load(open(idx))["weight_map"].values()))]
        else:
            files = [os.path.join(path, "model.safetensors")]
    for fn in files:
        raw = open(fn, "rb").read()
        n = struct.unpack("<Q", raw[:8])[0]
        hdr = json.loads(raw[8:8 + n])
        data = raw[8 + n:]
        for k, v in hdr.items():
            if k == "__metadata__":
                continue
            b, e = v["data_offsets"]
            buf = data[b:e]
            if v["dtype"] == "F32":
                a = np.frombuffer(buf, np.float32)
            elif v["dtype"] == "F16":
                a = np.frombuffer(buf, np.float16).astype(np.float32)
            elif v["dtype"] == "BF16":
                a = (np.frombuffer(buf, np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                fail("dtype " + v["dtype"])
            out[k] = a.reshape(v["shape"])
    return out


def use_more_bits(i, n):
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def expected_type(name, shape, ftype_name, n_layer, tied):
    """llama.cpp's converter + llama_tensor_get_type, written independently of sw."""
    ftype, base = FTYPE[ftype_name]
    if len(shape) < 2 or name.endswith("_norm.weight") or not name.endswith("weight"):
        return T.F32
    if base in (T.F32, T.F16, T.BF16):
        return base
    ne0 = shape[-1]
    blk = gguf.GGML_QUANT_SIZES
    t = base
    layer = int(name.split(".")[1]) if name.startswith("blk.") else -1
    if name == "output.weight" or (tied and name == "token_embd.weight"):
        t = T.Q8_0 if ne0 % blk[t][0] else (t if t == T.Q8_0 else T.Q6_K)
    elif "attn_v.weight" in name:
        if ftype_name in ("q4_k_m", "q5_k_m") and use_more_bits(layer, n_layer):
            t = T.Q6_K
        elif ftype_name == "q4_k_s" and layer < 4:
            t = T.Q5_K
    elif "ffn_down" in name:
        if ftype_name in ("q4_k_m", "q5_k_m") and use_more_bits(layer, n_layer):
            t = T.Q6_K
        elif ftype_name == "q4_k_s" and layer < n_layer // 8:
            t = T.Q5_K
    if ne0 % blk[t][0]:
        t = {T.Q4_K: T.Q5_0, T.Q5_K: T.Q5_1, T.Q6_K: T.Q8_0}[t]
        if ne0 % blk[t][0]:
            t = T.F16
    return t


def permute(w, n_head):
    """convert_hf_to_gguf LlamaModel.permute."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def cmd_meta(path, model_dir, qt):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    r = gguf.GGUFReader(path)
    arch = cfg["model_type"]
    if field(r, "general.architecture") != arch:
        fail("general.architecture")
    ftype, base = FTYPE[qt]
    checks = {"general.file_type": ftype, "general.quantization_version": 2,
              f"{arch}.block_count": cfg["num_hidden_layers"],
              f"{arch}.embedding_length": cfg["hidden_size"],
              f"{arch}.feed_forward_length": cfg["intermediate_size"],
              f"{arch}.attention.head_count": cfg["num_attention_heads"],
              f"{arch}.attention.head_count_kv": cfg["num_key_value_heads"],
              f"{arch}.context_length": cfg["max_position_embeddings"]}
    hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    checks[f"{arch}.rope.dimension_count"] = hd
    checks[f"{arch}.attention.key_length"] = hd
    for k, v in checks.items():
        if field(r, k) != v:
            fail(f"{k} = {field(r, k)}, want {v}")
    for k, v in ((f"{arch}.attention.layer_norm_rms_epsilon", cfg["rms_norm_eps"]),
                 (f"{arch}.rope.freq_base", cfg.get("rope_theta", 10000.0))):
        if abs(field(r, k) - v) > 1e-6 * max(1, abs(v)):
            fail(f"{k} = {field(r, k)}, want {v}")
    print("ok general/arch keys")
    toks = field(r, "tokenizer.ggml.tokens")
    if len(toks) != cfg["vocab_size"]:
        fail(f"{len(toks)} tokens for vocab_size {cfg['vocab_size']}")
    types = field(r, "tokenizer.ggml.token_type")
    if len(types) != len(toks):
        fail("token_type length")
    model = field(r, "tokenizer.ggml.model")
    tj = os.path.join(model_dir, "tokenizer.json")
    tok = json.load(open(tj)) if os.path.exists(tj) else None
    if tok is None and os.path.exists(tj + ".gz"):
        import gzip
        tok = json.load(gzip.open(tj + ".gz", "rt", encoding="utf-8"))
    if model == "gpt2":
        merges = field(r, "tokenizer.ggml.merges")
        if tok is not None:
            m = tok["model"]["merges"]
            want = [x if isinstance(x, str) else " ".join(p.replace(" ", "\u0120") for p in x) for x in m]
            if list(merges) != want:
                fail("merges differ from tokenizer.json")
            added = {a["id"] for a in tok.get("added_tokens", [])}
            for t_, i in tok["model"]["vocab"].items():
                if i not in added and (toks[i] != t_ or types[i] != 1):
                    fail(f"token {i} {toks[i]!r} type {types[i]}, want {t_!r} NORMAL")
            for a in tok.get("added_tokens", []):
                c = a["content"]
                looks = c.startswith("<|") and c.endswith("|>")  # convert's does_token_look_special
                if toks[a["id"]] != c or types[a["id"]] != (3 if a["special"] or looks else 4):
                    fail(f"added token {a}")
        field(r, "tokenizer.ggml.pre")
    elif model == "llama":
        scores = field(r, "tokenizer.ggml.scores")
        if tok is not None:
            added = {a["id"]: a for a in tok.get("added_tokens", [])}
            for t_, i in tok["model"]["vocab"].items():
                want_type = 3 if i in added and added[i]["special"] else (
                    6 if len(t_) == 6 and t_.startswith("<0x") and t_.endswith(">") else 1)
                if toks[i] != t_ or types[i] != want_type:
                    fail(f"token {i} {toks[i]!r} type {types[i]}, want {t_!r} type {want_type}")
            # scores order the merges: the token of merge k scores -(k + 1)
            first = {}
            for k, m in enumerate(tok["model"]["merges"]):
                t_ = m.replace(" ", "", 1) if isinstance(m, str) else m[0] + m[1]
                first.setdefault(t_, k)
            for t_, k in list(first.items())[:2000]:
                i = tok["model"]["vocab"].get(t_)
                if i is not None and i not in added and scores[i] != -(k + 1):
                    fail(f"score of {t_!r} is {scores[i]}, want {-(k + 1)}")
    else:
        fail("tokenizer model " + str(model))
    tc = os.path.join(model_dir, "tokenizer_config.json")
    if os.path.exists(tc):
        tcfg = json.load(open(tc))
        for k in ("bos_token", "eos_token"):
            if isinstance(tcfg.get(k), dict):
                tcfg[k] = tcfg[k].get("content")
        if isinstance(tcfg.get("chat_template"), str) and field(r, "tokenizer.chat_template") != tcfg["chat_template"]:
            fail("chat template")
        if isinstance(tcfg.get("eos_token"), str) and tok is not None and any(
                a["content"] == tcfg["eos_token"] for a in tok["added_tokens"]):
            want = [a["id"] for a in tok["added_tokens"] if a["content"] == tcfg["eos_token"]][0]
            if field(r, "tokenizer.ggml.eos_token_id") != want:
                fail("eos id")
    print(f"ok tokenizer ({model}, {len(toks)} tokens)")

    hf = load_st(model_dir)
    tied = "lm_head.weight" not in hf or cfg.get("tie_word_embeddings")
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    if not tied:
        names["lm_head.weight"] = "output.weight"
    sub = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
           "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
           "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
           "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate",
           "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for k in hf:
        if k.startswith("model.layers."):
            parts = k.split(".")
            mid = ".".join(parts[3:-1])
            names[k] = f"blk.{parts[2]}.{sub[mid]}.{parts[-1]}"
    got = {t.name: t for t in r.tensors}
    want_names = set(names.values())
    if cfg.get("rope_scaling", {}) and cfg["rope_scaling"].get("rope_type") == "llama3":
        want_names.add("rope_freqs.weight")
    if set(got) != want_names:
        fail(f"tensor names: extra {sorted(set(got) - want_names)}, missing {sorted(want_names - set(got))}")
    worst = {}
    for hfname, gname in names.items():
        t = got[gname]
        w = hf[hfname]
        shape = list(reversed([int(x) for x in t.shape]))
        if shape != list(w.shape):
            fail(f"{gname}: shape {shape}, want {list(w.shape)}")
        et = expected_type(gname, w.shape, qt, cfg["num_hidden_layers"], tied)
        if t.tensor_type != et:
            fail(f"{gname}: type {t.tensor_type.name}, want {et.name}")
        if arch == "llama" and (".attn_q." in gname or ".attn_k." in gname):
            w = permute(w, cfg["num_attention_heads"] if ".attn_q." in gname else cfg["num_key_value_heads"])
        d = dequantize(t.data, t.tensor_type).reshape(w.shape)
        err = float(np.sqrt(np.mean((d - w) ** 2)) / max(np.sqrt(np.mean(w ** 2)), 1e-12))
        if err > TOL[t.tensor_type]:
            fail(f"{gname} ({t.tensor_type.name}): relative RMS error {err:.4f} > {TOL[t.tensor_type]}")
        worst[t.tensor_type.name] = max(worst.get(t.tensor_type.name, 0), err)
    print("ok %d tensors: names, shapes, types; worst relative error per type %s" % (
        len(names), ", ".join(f"{k} {v:.4f}" for k, v in sorted(worst.items()))))


def cmd_deq(path, st):
    r = gguf.GGUFReader(path)
    sw = load_st(st)
    n = 0
    for t in r.tensors:
        d = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(sw[t.name].shape)
        if not np.array_equal(d.view(np.uint32), sw[t.name].view(np.uint32)):
            bad = int(np.sum(d.view(np.uint32) != sw[t.name].view(np.uint32)))
            fail(f"{t.name} ({t.tensor_type.name}): {bad} values differ from sw's dequantizer")
        n += 1
    print(f"ok {n} tensors: gguf.quants.dequantize == sw dequant bit for bit "
          f"({', '.join(sorted({t.tensor_type.name for t in r.tensors}))})")


if __name__ == "__main__":
    if sys.argv[1] == "meta":
        cmd_meta(*sys.argv[2:5])
    elif sys.argv[1] == "deq":
        cmd_deq(*sys.argv[2:4])
    else:
        fail("usage")
