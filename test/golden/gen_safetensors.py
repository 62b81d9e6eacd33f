#!/usr/bin/env python3
"""Regenerate the tiny HF model folders test/golden/hf_tiny_qwen3 and test/golden/hf_tiny_llama.

Each folder is what transformers' save_pretrained writes for a tiny randomly initialised model
(config.json, generation_config.json, model.safetensors or shards + index), plus
sw_expected_tensors.json: the tensors listed in the safetensors headers as Python's `safetensors`
reads them, which test/cli/quant.bats compares with `sw-quant inspect --json`.

  qwen3: float32, tied embeddings (no lm_head.weight), q/k norms, one model.safetensors
  llama: bfloat16, llama3 rope scaling, eos list, untied, sharded into several files + index

With torch installed the weights come from the real transformers model (from_config +
save_pretrained): the tensor names, shapes, header metadata and index are transformers' own.
Without torch (the CPU dev box) the config still comes from transformers' config classes and the
weights are written with safetensors using the names transformers' modeling code uses.

Run:  UPDATE_GOLDEN=1 python3 test/golden/gen_safetensors.py [OUTDIR]
(OUTDIR defaults to test/golden; without UPDATE_GOLDEN the script refuses to overwrite.)
"""
import json
import os
import struct
import sys

import numpy as np
import transformers
from safetensors import safe_open

QWEN3 = dict(
    vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=128,
    rms_norm_eps=1e-6, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
)
LLAMA = dict(
    vocab_size=64, hidden_size=16, intermediate_size=40, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=1, max_position_embeddings=256,
    rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=0, eos_token_id=[1, 2],
    rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                     "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 64},
)
LLAMA_SHARD_BYTES = 6000  # forces several shards for the ~16 KB bf16 model


def have_torch():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def tensor_names(cfg):
    """Names and shapes transformers' Llama/Qwen3 modeling code creates (for the no-torch path)."""
    h, hd = cfg.hidden_size, cfg.head_dim
    q, kv, im = cfg.num_attention_heads * hd, cfg.num_key_value_heads * hd, cfg.intermediate_size
    out = [("model.embed_tokens.weight", (cfg.vocab_size, h))]
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        out += [(p + "input_layernorm.weight", (h,)),
                (p + "self_attn.q_proj.weight", (q, h)),
                (p + "self_attn.k_proj.weight", (kv, h)),
                (p + "self_attn.v_proj.weight", (kv, h)),
                (p + "self_attn.o_proj.weight", (h, q))]
        if cfg.model_type == "qwen3":
            out += [(p + "self_attn.q_norm.weight", (hd,)), (p + "self_attn.k_norm.weight", (hd,))]
        out += [(p + "post_attention_layernorm.weight", (h,)),
                (p + "mlp.gate_proj.weight", (im, h)),
                (p + "mlp.up_proj.weight", (im, h)),
                (p + "mlp.down_proj.weight", (h, im))]
    out.append(("model.norm.weight", (h,)))
    if not cfg.tie_word_embeddings:
        out.append(("lm_head.weight", (cfg.vocab_size, h)))
    return out


def bf16_bytes(a):
    """float32 -> bfloat16 bytes, round to nearest even (numpy has no bfloat16)."""
    u = a.astype(np.float32).view(np.uint32)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16).tobytes()


def save_without_torch(cfg, outdir, dtype, shard_bytes):
    from safetensors import serialize_file
    rng = np.random.default_rng(0)
    tensors = {}
    for name, shape in tensor_names(cfg):
        if name.endswith("norm.weight"):
            a = np.ones(shape, np.float32)
        else:
            a = (rng.standard_normal(shape) * 0.02).astype(np.float32)
        if dtype == "bfloat16":
            tensors[name] = {"dtype": "BF16", "shape": list(shape), "data": bf16_bytes(a)}
        else:
            tensors[name] = {"dtype": "F32", "shape": list(shape), "data": a.tobytes()}
    shards, cur, size = [[]], 0, 0
    for name, t in tensors.items():
        n = len(t["data"])
        if shard_bytes and cur and cur + n > shard_bytes:
            shards.append([])
            cur = 0
        shards[-1].append(name)
        cur += n
        size += n
    meta = {"format": "pt"}
    if len(shards) == 1:
        serialize_file(tensors, os.path.join(outdir, "model.safetensors"), metadata=meta)
        return
    weight_map = {}
    for i, names in enumerate(shards):
        fn = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        serialize_file({k: tensors[k] for k in names}, os.path.join(outdir, fn), metadata=meta)
        weight_map.update({k: fn for k in names})
    index = {"metadata": {"total_size": size}, "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(outdir, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2, sort_keys=True)
        f.write("\n")


def save_with_torch(cfg, outdir, dtype, shard_bytes):
    import torch
    from transformers import AutoModelForCausalLM
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=getattr(torch, dtype))
    kw = {"max_shard_size": shard_bytes} if shard_bytes else {}
    model.save_pretrained(outdir, **kw)


def read_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))


def listing(outdir):
    """Every tensor in the folder's safetensors files, from the headers, cross-checked with
    safetensors' own reader."""
    files = sorted(f for f in os.listdir(outdir) if f.endswith(".safetensors"))
    tensors, metadata = [], {}
    for fn in files:
        hdr = read_header(os.path.join(outdir, fn))
        metadata.update(hdr.pop("__metadata__", {}) or {})
        with safe_open(os.path.join(outdir, fn), framework="numpy") as f:
            assert sorted(f.keys()) == sorted(hdr), fn
        for name, t in hdr.items():
            tensors.append({"name": name, "dtype": t["dtype"], "shape": t["shape"], "file": fn,
                            "data_offsets": t["data_offsets"]})
    tensors.sort(key=lambda t: t["name"])
    params = sum(int(np.prod(t["shape"], dtype=np.int64)) for t in tensors)
    nbytes = sum(t["data_offsets"][1] - t["data_offsets"][0] for t in tensors)
    return {"files": files, "metadata": metadata, "tensors": tensors,
            "total_params": params, "total_bytes": nbytes}


def build(kind, outdir):
    from transformers import GenerationConfig, LlamaConfig, Qwen3Config
    os.makedirs(outdir, exist_ok=True)
    for fn in os.listdir(outdir):
        os.remove(os.path.join(outdir, fn))
    if kind == "qwen3":
        cfg, dtype, shard = Qwen3Config(**QWEN3), "float32", 0
    else:
        cfg, dtype, shard = LlamaConfig(**LLAMA), "bfloat16", LLAMA_SHARD_BYTES
    cfg.architectures = ["Qwen3ForCausalLM" if kind == "qwen3" else "LlamaForCausalLM"]
    cfg.dtype = dtype
    if have_torch():
        save_with_torch(cfg, outdir, dtype, shard)
    else:
        cfg.save_pretrained(outdir)
        GenerationConfig.from_model_config(cfg).save_pretrained(outdir)
        save_without_torch(cfg, outdir, dtype, shard)
    lst = listing(outdir)
    lst["generator"] = {"transformers": transformers.__version__, "torch": have_torch()}
    with open(os.path.join(outdir, "sw_expected_tensors.json"), "w") as f:
        json.dump(lst, f, indent=1, sort_keys=True)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(outdir, x)) for x in os.listdir(outdir))
    assert total < 200_000, f"{outdir}: {total} bytes, over the 200 KB budget"
    print(f"{outdir}: {len(lst['tensors'])} tensors, {lst['total_params']} params, "
          f"{total} bytes on disk", file=sys.stderr)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else here
    if out == here and os.environ.get("UPDATE_GOLDEN") != "1":
        sys.exit("gen_safetensors.py: set UPDATE_GOLDEN=1 to overwrite the committed goldens")
    build("qwen3", os.path.join(out, "hf_tiny_qwen3"))
    build("llama", os.path.join(out, "hf_tiny_llama"))


if __name__ == "__main__":
    main()
