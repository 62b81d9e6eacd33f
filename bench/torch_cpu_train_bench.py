#!/usr/bin/env python3
"""The PyTorch side of bench/cpu_train_bench.sh: training-step time of a Qwen3-shaped model on
the CPU with transformers (+ PEFT for LoRA), float32, AdamW, gradient clipping at 1.0, the same
config and batch as sw's side, torch.set_num_threads(THREADS).

  torch_cpu_train_bench.py config CONFIG.json          write the benchmark model's config.json
  torch_cpu_train_bench.py data OUT.sws STEPS          write STEPS random [B, T] batch records
                                                       (an sws stream, docs/stream.md)
  torch_cpu_train_bench.py run full|lora STEPS WARMUP  time STEPS steps after WARMUP, print JSON

The model: hidden 256, 8 layers, 4 heads / 2 kv heads of head_dim 64, intermediate 768, vocab
32000, untied LM head (22.68M parameters: 16.38M in the embedding and LM head, 6.29M in the
layers). The batch: B=4 rows of T=256 random token ids, labels = input_ids (each row one causal
sequence), the same ids on both sides (seeded). LoRA: r 8, alpha 32, all linear layers of the
decoder, dropout 0 (PEFT's get_peft_model; the base frozen).

Environment: THREADS (default 2), B, T. `run` needs torch and transformers (peft for lora);
`config` and `data` only the standard library.
"""
import hashlib
import json
import os
import random
import statistics
import struct
import sys
import time

B = int(os.environ.get("B", "4"))
T = int(os.environ.get("T", "256"))
THREADS = int(os.environ.get("THREADS", "2"))
CONFIG = {
    "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "vocab_size": 32000,
    "hidden_size": 256, "intermediate_size": 768, "num_hidden_layers": 8,
    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64,
    "max_position_embeddings": 2048, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
    "hidden_act": "silu", "attention_bias": False, "tie_word_embeddings": False,
    "bos_token_id": None, "eos_token_id": 2, "torch_dtype": "float32",
}


def batches(n):
    """The same token ids on both sides: a seeded Python RNG."""
    rng = random.Random(1234)
    return [[rng.randrange(CONFIG["vocab_size"]) for _ in range(B * T)] for _ in range(n)]


def cmd_config(path):
    with open(path, "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")


def pack(v):
    """The msgpack subset an sws stream needs (maps, str, bin, non-negative ints), so the bench
    runs where the msgpack package is not installed."""
    if isinstance(v, dict):
        out = bytearray([0x80 | len(v)] if len(v) < 16 else b"\xde" + struct.pack(">H", len(v)))
        for k, x in v.items():
            out += pack(k) + pack(x)
        return bytes(out)
    if isinstance(v, list):
        return bytes([0x90 | len(v)]) + b"".join(pack(x) for x in v)
    if isinstance(v, str):
        b = v.encode()
        return (bytes([0xa0 | len(b)]) if len(b) < 32 else b"\xd9" + bytes([len(b)])) + b
    if isinstance(v, bytes):
        return b"\xc6" + struct.pack(">I", len(v)) + v
    if isinstance(v, int) and 0 <= v < 128:
        return bytes([v])
    if isinstance(v, int) and 0 <= v < 2 ** 32:
        return b"\xce" + struct.pack(">I", v)
    raise TypeError(type(v))


def cmd_data(path, steps):
    def tensor(vals):
        return {"dtype": "I32", "shape": [B, T], "data": struct.pack("<%di" % len(vals), *vals)}

    out = bytearray(pack({"kind": "header", "magic": "sws", "version": 1,
                          "producer": "torch_cpu_train_bench.py", "stream_kind": "packed_batches",
                          "meta": {"vocab_size": CONFIG["vocab_size"], "max_length": T}}))
    recs = batches(int(steps))
    for ids in recs:
        out += pack({"kind": "batch", "input_ids": tensor(ids), "labels": tensor(ids),
                     "num_samples": B, "num_tokens": B * T})
    out += pack({"kind": "end", "count": len(recs),
                 "checksum": "sha256:" + hashlib.sha256(out).hexdigest()})
    with open(path, "wb") as f:
        f.write(out)


def cmd_run(mode, steps, warmup):
    import torch
    import transformers as tf
    steps, warmup = int(steps), int(warmup)
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    cfg = tf.Qwen3Config(**{k: v for k, v in CONFIG.items()
                            if k not in ("architectures", "model_type", "torch_dtype")})
    model = tf.Qwen3ForCausalLM(cfg).float()
    if mode == "lora":
        import peft
        model = peft.get_peft_model(model, peft.LoraConfig(
            r=8, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear",
            task_type="CAUSAL_LM"))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    lr = 1e-4 if mode == "lora" else 1e-5
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.1)
    data = batches(steps + warmup)
    times, losses = [], []
    for i, ids in enumerate(data):
        x = torch.tensor(ids, dtype=torch.long).view(B, T)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        losses.append(float(loss.detach()))
        if i >= warmup:
            times.append(dt)
    med = statistics.median(times)
    print(json.dumps({"side": "pytorch", "mode": mode, "threads": THREADS, "B": B, "T": T,
                      "params": sum(p.numel() for p in model.parameters()),
                      "trainable": sum(p.numel() for p in params), "steps": len(times),
                      "median_s": med, "min_s": min(times), "max_s": max(times),
                      "tokens_per_s": B * T / med, "first_loss": losses[0],
                      "torch": torch.__version__, "transformers": tf.__version__}))


if __name__ == "__main__":
    globals()["cmd_" + sys.argv[1]](*sys.argv[2:])
