#!/usr/bin/env python3
"""torch_train_bench — the PyTorch side of bench/gpu_suite.sh (and of bench/gpu_train_bench.sh):
a Qwen2.5-shaped model (tied embeddings, q/k/v biases, vocab 151936) from random init, trained
as a user of transformers (+ PEFT) would: float32 master weights with bf16 autocast (or pure
bf16 weights with --pure-bf16), fused AdamW (betas 0.9/0.95, weight decay 0.1, sw-train's
defaults), gradient clipping at 1.0, SDPA attention, on B rows of T random token ids
(labels = ids; each row one causal sequence). Prints one JSON line per run on stdout (a
readable line on stderr).

    torch_train_bench.py [--shape 0.5b|1.5b] [--batch 8] [--seq 1024] [--mode full|lora]
                         [--gc] [--steps 10] [--warmup 3] [--attn sdpa|flash_attention_2|eager]
                         [--pure-bf16] [--compile] [--device cuda|cpu] [--row NAME]
                         [--hidden --layers --heads --kv-heads --inter --vocab N]  (shape overrides)
    torch_train_bench.py --attn-only [--batch 8 --seq 1024 --shape 0.5b] [--device cuda]
    torch_train_bench.py --write-config PATH [--shape ...]   config.json for sw-train
    torch_train_bench.py --write-sws PATH --records N [--batch --seq --shape ...]
                                            N random [B, T] batch records (docs/stream.md)

--write-config and --write-sws need only the standard library; the token ids are those the
training run uses (random.Random(1234), record i = step i), so sw and PyTorch see the same data.

LoRA: r 8, alpha 32, dropout 0 on q,k,v,o,gate,up,down (PEFT), base frozen. --gc:
model.gradient_checkpointing_enable(use_reentrant=False).

MFU = tokens/s x FLOPs per token / 989 TFLOP/s (H100 SXM dense bf16; --peak-tflops), with the
count of bench/gpu_train_bench.c: N = matmul parameters (decoder linears + LM head, no
embedding lookup, norms or biases), attention 6·L·Hq·D·T (causal: half the T×T scores, forward
+ backward); full: 6N + attention; LoRA: 4N (forward + backward-dX of the frozen base, no dW)
+ 6·N_lora + attention. Recomputation under gradient checkpointing is not counted (model FLOPs).

--attn-only: SDPA causal forward and backward alone (bf16, B x Hq x T x D with Hk kv heads),
median ms per backend (default choice, flash, cuDNN, memory-efficient) and GQA variant
(enable_gqa=True, or HF's repeat_kv expansion inside the timed region); one JSON line each.
"""
import argparse
import hashlib
import json
import random
import statistics
import struct
import sys
import time

SHAPES = {
    "0.5b": dict(hidden=896, layers=24, heads=14, kv_heads=2, inter=4864, vocab=151936),
    "1.5b": dict(hidden=1536, layers=28, heads=12, kv_heads=2, inter=8960, vocab=151936),
    "tiny": dict(hidden=64, layers=2, heads=4, kv_heads=2, inter=128, vocab=1000),  # smoke tests
}
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LORA_R, LORA_ALPHA = 8, 32
DATA_SEED = 1234


def shape_of(a):
    """The model shape: the preset, with any explicit --hidden etc. on top."""
    s = dict(SHAPES[a.shape])
    for k in s:
        v = getattr(a, k)
        if v is not None and v != s[k]:
            s[k] = v
            a.shape_name = "custom"
    if s["hidden"] % s["heads"] or s["heads"] % s["kv_heads"]:
        sys.exit("torch_train_bench: hidden must divide into heads and heads into kv heads")
    return s


def hf_config(s):
    """config.json of the benchmark model (read by sw-train --init_from_config and by us)."""
    return {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
        "vocab_size": s["vocab"], "hidden_size": s["hidden"], "intermediate_size": s["inter"],
        "num_hidden_layers": s["layers"], "num_attention_heads": s["heads"],
        "num_key_value_heads": s["kv_heads"], "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6, "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"},
        "hidden_act": "silu", "tie_word_embeddings": True, "use_sliding_window": False,
        "bos_token_id": 151643 if s["vocab"] > 151643 else None,
        "eos_token_id": 151643 if s["vocab"] > 151643 else None,
        "use_cache": False, "dtype": "float32",
    }


def flops_per_token(s, seq, mode):
    """(FLOPs per trained token, the formula in words); see the module docstring."""
    C, L, Hq, Hk, F, V = s["hidden"], s["layers"], s["heads"], s["kv_heads"], s["inter"], s["vocab"]
    D = C // Hq
    shapes = [(C, Hq * D), (C, Hk * D), (C, Hk * D), (Hq * D, C), (C, F), (C, F), (F, C)]
    n_mm = L * sum(i * o for i, o in shapes) + V * C
    attn = 6 * L * Hq * D * seq
    if mode == "full":
        return 6 * n_mm + attn, "6N + 6LHqDT"
    n_lora = L * sum(LORA_R * (i + o) for i, o in shapes)
    return 4 * n_mm + 6 * n_lora + attn, "4N + 6N_lora + 6LHqDT"


def random_batches(n, B, T, V):
    """n batches of B*T token ids: the same on both sides of the suite (seeded Python RNG)."""
    rng = random.Random(DATA_SEED)
    return [[rng.randrange(V) for _ in range(B * T)] for _ in range(n)]


def pack(v):
    """The msgpack subset an sws stream needs (maps, arrays, str, bin, non-negative ints), so
    writing data needs no msgpack package."""
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


def write_sws(path, n, B, T, V):
    def tensor(vals):
        return {"dtype": "I32", "shape": [B, T], "data": struct.pack("<%di" % len(vals), *vals)}

    out = bytearray(pack({"kind": "header", "magic": "sws", "version": 1,
                          "producer": "torch_train_bench.py", "stream_kind": "packed_batches",
                          "meta": {"vocab_size": V, "max_length": T}}))
    recs = random_batches(n, B, T, V)
    for ids in recs:
        out += pack({"kind": "batch", "input_ids": tensor(ids), "labels": tensor(ids),
                     "num_samples": B, "num_tokens": B * T})
    out += pack({"kind": "end", "count": len(recs),
                 "checksum": "sha256:" + hashlib.sha256(out).hexdigest()})
    with open(path, "wb") as f:
        f.write(out)


def emit(res):
    print(json.dumps(res), flush=True)


def is_oom(torch, e):
    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return isinstance(e, oom) or "out of memory" in str(e).lower()


def build_model(a, s, torch, dev):
    from transformers import Qwen2Config, Qwen2ForCausalLM
    d = {k: v for k, v in hf_config(s).items() if k not in ("architectures", "model_type", "dtype")}
    cfg = Qwen2Config(**d, attn_implementation=a.attn)
    torch.manual_seed(0)
    with dev:  # parameters are created (and initialised) on the device directly
        model = Qwen2ForCausalLM(cfg)
    if a.pure_bf16:
        model = model.to(torch.bfloat16)
    if a.gc:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if a.mode == "lora":
        import peft
        model = peft.get_peft_model(model, peft.LoraConfig(
            r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=0.0, target_modules=LORA_TARGETS,
            bias="none", task_type="CAUSAL_LM"))
    return model.train()


def train(a):
    import torch
    import transformers
    s = shape_of(a)
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    B, T = a.batch, a.seq
    fpt, formula = flops_per_token(s, T, a.mode)
    res = {"side": "torch", "row": a.row, "shape": a.shape_name, **s, "mode": a.mode, "gc": a.gc,
           "B": B, "T": T, "attn": a.attn, "dtype": "bf16" if a.pure_bf16 else "bf16-autocast",
           "steps": a.steps, "warmup": a.warmup, "flops_per_token": fpt, "flops": formula,
           "torch": torch.__version__, "transformers": transformers.__version__,
           "device": torch.cuda.get_device_name() if cuda else "cpu", "status": "ok"}
    if a.mode == "lora":
        import peft
        res["peft"] = peft.__version__
    if a.attn == "flash_attention_2":
        try:
            import flash_attn  # noqa: F401
        except ImportError as e:
            res.update(status="skipped", error="flash_attention_2: %s" % e)
            return emit(res)
    try:
        model = build_model(a, s, torch, dev)
        params = [p for p in model.parameters() if p.requires_grad]
        res["params"] = sum(p.numel() for p in model.parameters())
        res["trainable"] = sum(p.numel() for p in params)
        opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1,
                                fused=cuda or None)
        n = a.warmup + a.steps + 1
        data = torch.tensor(random_batches(n, B, T, s["vocab"]), dtype=torch.long,
                            device=dev).view(n, B, T)
        fwd = torch.compile(model) if a.compile else model
        sync = torch.cuda.synchronize if cuda else (lambda: None)
        autocast = not a.pure_bf16

        def step(ids, split=False):
            t0 = time.perf_counter()
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=autocast):
                loss = fwd(input_ids=ids, labels=ids).loss
            if split:
                sync()
            t1 = time.perf_counter()
            loss.backward()
            if split:
                sync()
            t2 = time.perf_counter()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            lv = loss.item()  # waits for the step, as sw-train's loss download does
            return lv, t1 - t0, t2 - t1, time.perf_counter() - t2

        times, losses = [], []
        for i in range(a.warmup + a.steps):
            t = time.perf_counter()
            losses.append(step(data[i])[0])
            if i >= a.warmup:
                times.append(time.perf_counter() - t)
        _, tf, tb, to = step(data[n - 1], split=True)
    except Exception as e:  # noqa: BLE001 — the suite wants a row, not a traceback
        res.update(status="oom" if is_oom(torch, e) else "error",
                   error=str(e).splitlines()[0][:300])
        if cuda:
            res["peak_alloc_gib"] = torch.cuda.max_memory_allocated() / 2**30
        return emit(res)
    med = statistics.median(times)
    tps = B * T / med
    res.update(step_ms=med * 1e3, step_ms_min=min(times) * 1e3, step_ms_max=max(times) * 1e3,
               tokens_per_s=tps, tokens_per_s_mean=B * T * len(times) / sum(times),
               mfu=tps * fpt / (a.peak_tflops * 1e12), fwd_ms=tf * 1e3, bwd_ms=tb * 1e3,
               opt_ms=to * 1e3, loss_first=losses[0], loss_last=losses[-1])
    if cuda:
        res["peak_alloc_gib"] = torch.cuda.max_memory_allocated() / 2**30
        res["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
    print("# torch %s %s %dx%d%s: %.0f tokens/s, %.1f ms/step (fwd %.1f bwd %.1f opt %.1f), "
          "MFU %.1f%%, peak %.2f GiB, loss %.4f -> %.4f" % (
              a.shape, a.mode, B, T, " gc" if a.gc else "", tps, med * 1e3, tf * 1e3, tb * 1e3,
              to * 1e3, 100 * res["mfu"], res.get("peak_alloc_gib", 0), losses[0], losses[-1]),
          file=sys.stderr)
    emit(res)


def attn_only(a):
    """SDPA causal fwd/bwd micro-benchmark at the model's attention shape."""
    import torch
    import torch.nn.functional as Fn
    from torch.nn.attention import SDPBackend, sdpa_kernel
    s = shape_of(a)
    B, T, Hq, Hk, D = a.batch, a.seq, s["heads"], s["kv_heads"], s["hidden"] // s["heads"]
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    g = torch.Generator(device=dev).manual_seed(0)
    q = torch.randn(B, Hq, T, D, device=dev, dtype=torch.bfloat16, generator=g)
    k = torch.randn(B, Hk, T, D, device=dev, dtype=torch.bfloat16, generator=g)
    v = torch.randn(B, Hk, T, D, device=dev, dtype=torch.bfloat16, generator=g)
    do = torch.randn(B, Hq, T, D, device=dev, dtype=torch.bfloat16, generator=g)
    fwd_flop = 2.0 * B * Hq * T * T * D  # QKᵀ and PV over the causal half
    backends = [("default", None), ("flash", SDPBackend.FLASH_ATTENTION),
                ("cudnn", SDPBackend.CUDNN_ATTENTION),
                ("efficient", SDPBackend.EFFICIENT_ATTENTION)]

    def timed(fn, iters):
        out = []
        for _ in range(iters):
            if cuda:
                e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                e0.record()
                fn()
                e1.record()
                e1.synchronize()
                out.append(e0.elapsed_time(e1))
            else:
                t = time.perf_counter()
                fn()
                out.append((time.perf_counter() - t) * 1e3)
        return statistics.median(out)

    for name, be in backends:
        for variant in ("gqa", "repeat"):
            res = {"side": "torch", "row": a.row, "bench": "attn", "backend": name,
                   "gqa": variant, "B": B, "T": T, "Hq": Hq, "Hk": Hk, "D": D,
                   "torch": torch.__version__, "status": "ok"}
            qq, kk, vv = (t.detach().requires_grad_() for t in (q, k, v))

            def forward():
                if variant == "gqa":
                    return Fn.scaled_dot_product_attention(qq, kk, vv, is_causal=True,
                                                           enable_gqa=True)
                rep = Hq // Hk  # transformers' repeat_kv
                return Fn.scaled_dot_product_attention(qq, kk.repeat_interleave(rep, 1),
                                                       vv.repeat_interleave(rep, 1), is_causal=True)

            try:
                with sdpa_kernel([be]) if be is not None else _nullctx():
                    for _ in range(3):
                        forward().backward(do)
                    f_ms = timed(forward, a.steps)
                    b_all = []
                    for _ in range(a.steps):
                        qq.grad = kk.grad = vv.grad = None
                        o = forward()
                        b_all.append(timed(lambda: o.backward(do), 1))
                    b_ms = statistics.median(b_all)
                res.update(fwd_ms=f_ms, bwd_ms=b_ms, fwd_tflops=fwd_flop / f_ms / 1e9,
                           bwd_tflops=2.5 * fwd_flop / b_ms / 1e9)
            except Exception as e:  # noqa: BLE001 — a backend may not support this shape
                res.update(status="unavailable", error=str(e).splitlines()[0][:200])
            emit(res)


class _nullctx:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="0.5b")
    for k in ("hidden", "layers", "heads", "kv-heads", "inter", "vocab"):
        ap.add_argument("--" + k, type=int, default=None)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--mode", choices=("full", "lora"), default="full")
    ap.add_argument("--gc", action="store_true", help="gradient checkpointing")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--attn", default="sdpa", choices=("sdpa", "flash_attention_2", "eager"))
    ap.add_argument("--pure-bf16", action="store_true", help="bf16 weights, no autocast")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--row", default="", help="label copied into the JSON line")
    ap.add_argument("--attn-only", action="store_true")
    ap.add_argument("--write-config", metavar="PATH")
    ap.add_argument("--write-sws", metavar="PATH")
    ap.add_argument("--records", type=int, default=0)
    a = ap.parse_args()
    a.shape_name = a.shape
    if a.steps < 1 or a.warmup < 0 or a.batch < 1 or a.seq < 2:
        ap.error("need --steps >= 1, --warmup >= 0, --batch >= 1, --seq >= 2")
    if a.write_config or a.write_sws:
        s = shape_of(a)
        if a.write_config:
            with open(a.write_config, "w") as f:
                json.dump(hf_config(s), f, indent=2)
                f.write("\n")
        if a.write_sws:
            if a.records < 1:
                ap.error("--write-sws needs --records N >= 1")
            write_sws(a.write_sws, a.records, a.batch, a.seq, s["vocab"])
        return
    if a.attn_only:
        return attn_only(a)
    train(a)


if __name__ == "__main__":
    main()
