#!/usr/bin/env python3
"""make_model.py — a small random HF model folder (Llama, Qwen2 or Qwen3) for the GGUF export
tests, written with the standard library only (no numpy or torch), so the CLI tests can build
models whose rows are whole 256-element K-quant blocks without committing megabytes.

Usage: make_model.py OUT --arch llama|qwen2|qwen3 [--hidden 256] [--inter 512] [--layers 2]
       [--heads 4] [--kv 2] [--head_dim D] [--vocab 320] [--tie] [--bias] [--dtype f32|bf16]
       [--rope llama3|linear] [--tokenizer DIR] [--seed 1] [--nan TENSOR] [--lora DIR]

Weights are N(0, 0.02) (norm weights 1 + N(0, 0.1)); a few outlier columns make the
quantization non-trivial. --tokenizer copies tokenizer.json[.gz] and tokenizer_config.json from
DIR (default test/golden/generate/model, a 320-token byte-level BPE). --nan puts a NaN into one
tensor (for the error tests). --lora also writes a PEFT LoRA adapter (r 4, alpha 8, q/v/down
projections of every layer, B non-zero) for the model into DIR.
"""
import argparse
import json
import os
import random
import shutil
import struct
import sys
from array import array

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def write_st(path, tensors):
    hdr, blobs, off = {}, [], 0
    for name, (shape, vals) in tensors.items():
        raw = array("f", vals).tobytes()
        hdr[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as fp:
        fp.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write_lora(out, shapes, rnd, r=4):
    os.makedirs(out, exist_ok=True)
    t = {}
    for name, shape in shapes:
        if not name.endswith(("q_proj.weight", "v_proj.weight", "down_proj.weight")):
            continue
        base = "base_model.model." + name[:-len(".weight")]
        o, i = shape
        t[base + ".lora_A.weight"] = ([r, i], [rnd.gauss(0, 0.05) for _ in range(r * i)])
        t[base + ".lora_B.weight"] = ([o, r], [rnd.gauss(0, 0.05) for _ in range(o * r)])
    write_st(os.path.join(out, "adapter_model.safetensors"), t)
    cfg = {"peft_type": "LORA", "r": r, "lora_alpha": 2 * r, "lora_dropout": 0.0, "bias": "none",
           "target_modules": ["q_proj", "v_proj", "down_proj"], "use_rslora": False,
           "task_type": "CAUSAL_LM", "fan_in_fan_out": False}
    with open(os.path.join(out, "adapter_config.json"), "w") as fp:
        json.dump(cfg, fp, indent=2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--arch", default="qwen2", choices=["llama", "qwen2", "qwen3"])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--inter", type=int, default=512)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv", type=int, default=2)
    ap.add_argument("--head_dim", type=int, default=0)
    ap.add_argument("--vocab", type=int, default=320)
    ap.add_argument("--tie", action="store_true")
    ap.add_argument("--bias", action="store_true")
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    ap.add_argument("--rope", default="")
    ap.add_argument("--tokenizer", default=os.path.join(ROOT, "test/golden/generate/model"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--nan", default="")
    ap.add_argument("--lora", default="")
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    hd = a.head_dim or a.hidden // a.heads
    if a.arch == "qwen3" and not a.head_dim:
        hd = a.hidden // a.heads
    H, I, V = a.hidden, a.inter, a.vocab
    shapes = [("model.embed_tokens.weight", [V, H])]
    for l in range(a.layers):
        p = f"model.layers.{l}."
        shapes += [(p + "input_layernorm.weight", [H]),
                   (p + "self_attn.q_proj.weight", [a.heads * hd, H]),
                   (p + "self_attn.k_proj.weight", [a.kv * hd, H]),
                   (p + "self_attn.v_proj.weight", [a.kv * hd, H]),
                   (p + "self_attn.o_proj.weight", [H, a.heads * hd])]
        if a.arch == "qwen2" or a.bias:
            shapes += [(p + "self_attn.q_proj.bias", [a.heads * hd]),
                       (p + "self_attn.k_proj.bias", [a.kv * hd]),
                       (p + "self_attn.v_proj.bias", [a.kv * hd])]
        if a.arch == "llama" and a.bias:
            shapes += [(p + "self_attn.o_proj.bias", [H])]
        if a.arch == "qwen3":
            shapes += [(p + "self_attn.q_norm.weight", [hd]), (p + "self_attn.k_norm.weight", [hd])]
        shapes += [(p + "post_attention_layernorm.weight", [H]),
                   (p + "mlp.gate_proj.weight", [I, H]),
                   (p + "mlp.up_proj.weight", [I, H]),
                   (p + "mlp.down_proj.weight", [H, I])]
    shapes.append(("model.norm.weight", [H]))
    if not a.tie:
        shapes.append(("lm_head.weight", [V, H]))

    hdr, blobs, off = {}, [], 0
    for name, shape in shapes:
        n = 1
        for s in shape:
            n *= s
        if name.endswith("norm.weight"):
            vals = [1.0 + rnd.gauss(0, 0.1) for _ in range(n)]
        else:
            vals = [rnd.gauss(0, 0.02) for _ in range(n)]
            if len(shape) == 2:  # a few heavy columns, as trained weights have
                cols = shape[1]
                for c in (3, cols // 2 + 1):
                    for r in range(shape[0]):
                        vals[r * cols + c] *= 6
        if name == a.nan:
            vals[min(5, n - 1)] = float("nan")
        f = array("f", vals)
        if a.dtype == "bf16":
            u = array("I", f.tobytes())
            # round to nearest even on the top 16 bits
            b = array("H", [((x + 0x7FFF + ((x >> 16) & 1)) >> 16) & 0xFFFF for x in u])
            raw, dt = b.tobytes(), "BF16"
        else:
            raw, dt = f.tobytes(), "F32"
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    hdr["__metadata__"] = {"format": "pt"}
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "model.safetensors"), "wb") as fp:
        fp.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            fp.write(b)
    arch = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}
    cfg = {"architectures": [arch[a.arch]], "model_type": a.arch, "vocab_size": V,
           "hidden_size": H, "intermediate_size": I, "num_hidden_layers": a.layers,
           "num_attention_heads": a.heads, "num_key_value_heads": a.kv,
           "max_position_embeddings": 512, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
           "hidden_act": "silu", "tie_word_embeddings": a.tie, "bos_token_id": None,
           "eos_token_id": 2, "torch_dtype": "float32" if a.dtype == "f32" else "bfloat16"}
    if a.arch == "qwen3" or a.head_dim:
        cfg["head_dim"] = hd
    if a.arch == "llama":
        cfg["attention_bias"] = a.bias
        cfg["mlp_bias"] = False
        cfg["bos_token_id"] = 1
    if a.rope == "llama3":
        cfg["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                               "high_freq_factor": 4.0, "original_max_position_embeddings": 128}
    elif a.rope == "linear":
        cfg["rope_scaling"] = {"rope_type": "linear", "factor": 2.0}
    with open(os.path.join(a.out, "config.json"), "w") as fp:
        json.dump(cfg, fp, indent=2)
    if a.lora:
        write_lora(a.lora, shapes, rnd)
    for f in ("tokenizer.json", "tokenizer.json.gz", "tokenizer_config.json"):
        src = os.path.join(a.tokenizer, f)
        if os.path.exists(src):
            shutil.copy(src, os.path.join(a.out, f))
    return 0


if __name__ == "__main__":
    sys.exit(main())
