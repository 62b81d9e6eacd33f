#!/usr/bin/env python3
"""Generate the model parity goldens under test/golden/model/ (read by test/unit/test_model.c).

For each tiny random decoder (Llama with llama3 rope scaling, untied; Qwen2 with q/k/v biases,
tied; Qwen3 with q/k RMSNorm and an explicit head_dim that differs from hidden/heads, tied) it
writes, in float32:
  model/<name>/config.json + model.safetensors     (save_pretrained: what sw loads)
  model/<name>/golden.safetensors                  inputs and reference outputs of two layouts:
    pad.*   B=2 rows, right padding, attention_mask, position_ids 0..T-1
    pack.*  one row of 3 samples packed back to back, position_ids restarting at 0, cu_seqlens;
            the reference runs each sample separately and concatenates (transformers' own
            packed-sequence detection is for flash-attention only), so samples never interact.
  with <layout>.input_ids/labels/position_ids (int32), logits, loss (sum of token losses /
  number of non-ignored targets, labels shifted inside each sequence like HF) and
  <layout>.grad.<HF parameter name> for every parameter.
Mistral (sliding window 4, shorter than every sequence of both layouts, untied) and Gemma 2
(layer 0 local with window 4, layer 1 global; attention soft-cap 1 and final soft-cap 2 — small,
so they bend the tiny model's logits; query_pre_attn_scalar 12 ≠ head_dim 8; tied) join them.
And a LoRA case (PEFT, r=4, alpha=8, all linear layers, B initialised non-zero) on the Llama,
Mistral and Gemma 2 models: model/<family>_lora/adapter_model.safetensors + adapter_config.json and
golden.safetensors with the gradients of every lora_A/lora_B weight under PEFT's saved names.

Run: UPDATE_GOLDEN=1 python3 test/golden/gen_model.py [family ...]   (needs torch, transformers,
safetensors, peft; CPU torch is enough). Without UPDATE_GOLDEN=1 it refuses to overwrite existing
goldens; naming families regenerates only those (and their LoRA cases).
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "model")
VOCAB = 97

torch.use_deterministic_algorithms(True)


def make_config(name):
    import transformers as tf
    common = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                  rms_norm_eps=1e-6, initializer_range=0.02, bos_token_id=1, eos_token_id=2,
                  pad_token_id=0)
    if name == "llama":
        return tf.LlamaConfig(**common, tie_word_embeddings=False, attention_bias=False,
                              rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0,
                                               "factor": 8.0, "low_freq_factor": 1.0,
                                               "high_freq_factor": 4.0,
                                               "original_max_position_embeddings": 64})
    if name == "qwen2":
        return tf.Qwen2Config(**common, tie_word_embeddings=True,
                              rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})
    if name == "qwen3":
        return tf.Qwen3Config(**common, head_dim=16, tie_word_embeddings=True,
                              attention_bias=False,
                              rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})
    if name == "mistral":  # sliding window 4: shorter than the sequences, so the window matters
        return tf.MistralConfig(**common, sliding_window=4, tie_word_embeddings=False,
                                rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    if name == "gemma2":  # small caps and a query scalar != head_dim so each feature matters
        return tf.Gemma2Config(**common, head_dim=8, query_pre_attn_scalar=12, sliding_window=4,
                               attn_logit_softcapping=1.0, final_logit_softcapping=2.0,
                               tie_word_embeddings=True, hidden_activation="gelu_pytorch_tanh",
                               rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    raise ValueError(name)


def randomize(model, gen):
    """Larger-than-default random values everywhere (norm weights around 1, non-zero biases) so
    every parameter matters and every gradient is non-trivial."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif n.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))


def inputs(gen):
    """The two layouts: padded batch and one packed row."""
    T, lens = 10, [10, 7]
    ids = torch.randint(3, VOCAB, (2, T), generator=gen)
    mask = torch.zeros(2, T, dtype=torch.long)
    for b, n in enumerate(lens):
        mask[b, :n] = 1
    ids = ids * mask  # pad id 0
    labels = ids.clone()
    labels[mask == 0] = -100
    labels[0, :3] = -100  # a masked prompt
    labels[1, 1] = -100
    pos = torch.arange(T).unsqueeze(0).repeat(2, 1)
    pad = dict(input_ids=ids, attention_mask=mask, labels=labels, position_ids=pos)

    slens = [5, 8, 4]
    n = sum(slens)
    pids = torch.randint(3, VOCAB, (1, n), generator=gen)
    plabels = pids.clone()
    plabels[0, 0:2] = -100
    plabels[0, 5:8] = -100
    ppos = torch.cat([torch.arange(s) for s in slens]).unsqueeze(0)
    cu = torch.tensor([0] + list(torch.cumsum(torch.tensor(slens), 0)))
    pack = dict(input_ids=pids, labels=plabels, position_ids=ppos, cu_seqlens=cu)
    return pad, pack


def ce_sum(logits, labels):
    """Sum of next-token losses inside one sequence (HF's shift) and the count of targets."""
    sl = logits[..., :-1, :].reshape(-1, logits.shape[-1])
    tl = labels[..., 1:].reshape(-1)
    loss = torch.nn.functional.cross_entropy(sl, tl, ignore_index=-100, reduction="sum")
    return loss, int((tl != -100).sum())


def run_pad(model, pad):
    out = model(input_ids=pad["input_ids"], attention_mask=pad["attention_mask"],
                position_ids=pad["position_ids"])
    s, c = ce_sum(out.logits, pad["labels"])
    loss = s / c
    ref = model(input_ids=pad["input_ids"], attention_mask=pad["attention_mask"],
                position_ids=pad["position_ids"], labels=pad["labels"]).loss
    assert abs(float(ref) - float(loss)) < 1e-5, (float(ref), float(loss))
    return out.logits, loss


def run_pack(model, pack):
    cu = pack["cu_seqlens"].tolist()
    logits, total, count = [], 0.0, 0
    for a, b in zip(cu[:-1], cu[1:]):
        out = model(input_ids=pack["input_ids"][:, a:b], position_ids=pack["position_ids"][:, a:b])
        s, c = ce_sum(out.logits, pack["labels"][:, a:b])
        logits.append(out.logits)
        total = total + s
        count += c
    return torch.cat(logits, dim=1), total / count


def grads(model, strip_default=False):
    g = {}
    for n, p in model.named_parameters():
        if p.grad is None:
            continue
        if strip_default:
            n = n.replace(".default", "")
        g["grad." + n] = p.grad.detach().clone().contiguous()
    return g


def record(model, pad, pack, peft=False):
    tensors = {}
    for key, fn, inp in (("pad", run_pad, pad), ("pack", run_pack, pack)):
        model.zero_grad(set_to_none=True)
        logits, loss = fn(model, inp)
        loss.backward()
        tensors[key + ".logits"] = logits.detach().float().contiguous()
        tensors[key + ".loss"] = loss.detach().float().reshape(1)
        for k, v in inp.items():
            tensors[key + "." + k] = v.to(torch.int32).contiguous()
        for k, v in grads(model, strip_default=peft).items():
            tensors[key + "." + k] = v
    model.zero_grad(set_to_none=True)
    return tensors


def gen_family(name, seed):
    import transformers as tf
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    cfg = make_config(name)
    cfg._attn_implementation = "eager"
    model = tf.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").float()
    randomize(model, gen)
    model.train()  # no dropout in these families; train() only mirrors a training step
    pad, pack = inputs(gen)
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    tensors = record(model, pad, pack)
    save_file(tensors, os.path.join(d, "golden.safetensors"),
              metadata={"generator": "test/golden/gen_model.py", "torch": torch.__version__,
                        "transformers": tf.__version__})
    return model, pad, pack


def gen_lora(base, pad, pack, seed, name="llama_lora"):
    import peft
    gen = torch.Generator().manual_seed(seed)
    lcfg = peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear",
                           bias="none", task_type="CAUSAL_LM")
    model = peft.get_peft_model(base, lcfg)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_" in n:  # PEFT starts B at zero; random A and B make every gradient count
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    if os.path.exists(os.path.join(d, "README.md")):  # PEFT's model card: not needed
        os.remove(os.path.join(d, "README.md"))
    acfg = os.path.join(d, "adapter_config.json")  # PEFT writes target_modules in set order
    with open(acfg) as f:
        ac = json.load(f)
    ac["target_modules"] = sorted(ac["target_modules"])
    with open(acfg, "w") as f:
        json.dump(ac, f, indent=2, sort_keys=True)
        f.write("\n")
    tensors = record(model, pad, pack, peft=True)
    save_file(tensors, os.path.join(d, "golden.safetensors"),
              metadata={"generator": "test/golden/gen_model.py", "peft": peft.__version__,
                        "base": "../" + name[:-len("_lora")]})


# family -> (seed, LoRA seed or None); the LoRA goldens go to <family>_lora.
FAMILIES = {"llama": (1234, 4567), "qwen2": (2345, None), "qwen3": (3456, None),
            "mistral": (5678, 6789), "gemma2": (7890, 8901)}


def main():
    """Every family, or only those named on the command line (python3 gen_model.py mistral)."""
    names = sys.argv[1:] or list(FAMILIES)
    for name in names:
        if name not in FAMILIES:
            sys.exit(f"unknown family {name} (one of {', '.join(FAMILIES)})")
        if os.path.exists(os.path.join(OUT, name)) and os.environ.get("UPDATE_GOLDEN") != "1":
            sys.exit(f"{OUT}/{name} exists: set UPDATE_GOLDEN=1 to regenerate")
    os.makedirs(OUT, exist_ok=True)
    for name in names:
        seed, lora_seed = FAMILIES[name]
        model, pad, pack = gen_family(name, seed)
        if lora_seed is not None:
            gen_lora(model, pad, pack, lora_seed, name + "_lora")
    total = 0
    for root, _, files in os.walk(OUT):
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
            total += os.path.getsize(os.path.join(root, f))
    print(f"wrote {OUT} ({total} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
