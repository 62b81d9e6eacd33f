#!/usr/bin/env python3
"""torch_train_bench — the PyTorch peer of bench/gpu_train_bench.c: the same Qwen2.5-0.5B-shaped
model (hidden 896, 24 layers, 14/2 heads, intermediate 4864, vocab 151936, tied embeddings) from
random init in float32 master weights, trained with bf16 autocast, fused AdamW and SDPA attention
on B sequences of T random tokens (labels = ids), as a user of transformers would. Prints the
median step time, tokens/s, the forward/backward/optimizer split and peak memory, in the same
columns as gpu_train_bench.

    python3 bench/torch_train_bench.py [--batch 8] [--seq 1024] [--steps 8] [--warmup 3]
                                       [--layers 24] [--compile]

MFU uses the same FLOP count as gpu_train_bench (6 x matmul params + 6 L Hq D T) over 989 TFLOP/s.
"""
import argparse
import statistics
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--compile", action="store_true")
    a = ap.parse_args()

    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864,
                      num_hidden_layers=a.layers, num_attention_heads=14, num_key_value_heads=2,
                      max_position_embeddings=32768, rope_theta=1e6, rms_norm_eps=1e-6,
                      tie_word_embeddings=True, attn_implementation="sdpa")
    model = Qwen2ForCausalLM(cfg).cuda().train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1, fused=True)
    fwd = torch.compile(model) if a.compile else model
    ids = torch.randint(0, cfg.vocab_size, (a.batch, a.seq), device="cuda")
    n_tok = a.batch * a.seq
    nparam = sum(p.numel() for p in model.parameters())
    D = cfg.hidden_size // cfg.num_attention_heads
    n_norm = cfg.hidden_size * (2 * a.layers + 1)
    n_bias = a.layers * (cfg.num_attention_heads + 2 * cfg.num_key_value_heads) * D
    flops_tok = 6.0 * (nparam - n_norm - n_bias) + 6.0 * a.layers * cfg.num_attention_heads * D * a.seq

    def step(split=False):
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = fwd(input_ids=ids, labels=ids).loss
        if split:
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        loss.backward()
        if split:
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        t3 = time.perf_counter()
        return loss.item(), t1 - t0, t2 - t1, t3 - t2

    for _ in range(a.warmup):
        step()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(a.steps):
        t = time.perf_counter()
        loss, *_ = step()
        times.append(time.perf_counter() - t)
    loss, tf, tb, to = step(split=True)
    med = statistics.median(times)
    peak = torch.cuda.max_memory_allocated() / 2**30
    name = "torch" + ("+compile" if a.compile else "")
    print(f"# {torch.cuda.get_device_name()} torch {torch.__version__}; {nparam} params; "
          f"batch {a.batch} x {a.seq}")
    print(f"{'prec':<14} {'tokens/s':>10} {'step_ms':>9} {'fwd_ms':>8} {'bwd_ms':>8} {'opt_ms':>8} "
          f"{'peak_GiB':>9} {'MFU%':>6} {'loss':>8}")
    print(f"{name:<14} {n_tok / med:10.0f} {med * 1e3:9.1f} {tf * 1e3:8.1f} {tb * 1e3:8.1f} "
          f"{to * 1e3:8.1f} {peak:9.2f} {100 * n_tok / med * flops_tok / 989e12:6.1f} {loss:8.4f}")


if __name__ == "__main__":
    main()
