#!/usr/bin/env python3
"""Generate the optimizer and LR-schedule goldens under test/golden/optim/ (read by
test/unit/test_optim.c and test/unit/test_sched.c).

optim/adamw.safetensors — for each case, a few float32 parameters named like a decoder's
(2-D weights that decay, 1-D norm weights and biases that do not, one odd-sized matrix) run through
N steps of exactly what HF Trainer does per optimizer step:
    grad_norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm)   (skipped if max <= 0)
    torch.optim.AdamW(param groups split by Trainer.get_decay_parameter_names).step()
    transformers.get_scheduler(...).step()
  tensors  <case>.init.<name>, <case>.grad.<step>.<name> (step 0..N-1), <case>.final.<name>,
           <case>.exp_avg.<name>, <case>.exp_avg_sq.<name>,
           <case>.lr (F64 [N]: the LR each step used), <case>.grad_norm (F64 [N]: pre-clip norm)
  metadata <case> -> JSON of the hyperparameters; "cases" -> JSON list of case names;
           "decay" -> JSON {parameter name: bool} from Trainer.get_decay_parameter_names over
           tiny Llama (attention/mlp biases), Qwen2 and Qwen3 (q/k norms) models and a PEFT LoRA
           model, so the C rule is checked against HF's on every name sw can produce.

optim/sched.json — LambdaLR values of get_scheduler for each schedule type and a few
(total steps, warmup) settings: "lrs"[k] is the LR of optimizer step k (k = 0..total+1), with
the warmup step count from TrainingArguments.get_warmup_steps (warmup_steps >= 1: steps;
0 < warmup_steps < 1: ceil(total * ratio), as ms-swift's warmup_ratio).

Run: UPDATE_GOLDEN=1 python3 test/golden/gen_optim.py   (needs torch, transformers, peft,
safetensors; CPU only)
"""
import json
import math
import os
import sys
import tempfile

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "optim")

PARAMS = [
    ("model.embed_tokens.weight", (7, 6)),
    ("model.layers.0.self_attn.q_proj.weight", (6, 6)),
    ("model.layers.0.self_attn.q_proj.bias", (6,)),
    ("model.layers.0.self_attn.q_norm.weight", (3,)),
    ("model.layers.0.input_layernorm.weight", (6,)),
    ("model.layers.0.mlp.down_proj.weight", (37, 29)),
    ("model.norm.weight", (6,)),
    ("lm_head.weight", (7, 6)),
]

CASES = {
    # clipping active on some steps, cosine with warmup, decoupled decay
    "cosine_clip": dict(lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1,
                        max_grad_norm=1.0, sched="cosine", warmup=2, steps=10),
    # no clipping, linear decay, torch's default betas, larger eps
    "linear_noclip": dict(lr=3e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0,
                          max_grad_norm=0.0, sched="linear", warmup=0, steps=7),
    # constant with warmup, strong decay, clip threshold below every norm
    "constwarm_clip": dict(lr=5e-2, betas=(0.8, 0.99), eps=1e-7, weight_decay=0.5,
                           max_grad_norm=0.3, sched="constant_with_warmup", warmup=3, steps=6),
}


def decay_names(model):
    from transformers import Trainer
    return set(Trainer.get_decay_parameter_names(None, model))


def decay_table():
    """{name: decays?} from HF's own rule over the names of real tiny models."""
    import transformers as tf
    from peft import LoraConfig, get_peft_model
    common = dict(vocab_size=11, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                  num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=16)
    models = [
        tf.LlamaForCausalLM(tf.LlamaConfig(**common, attention_bias=True, mlp_bias=True,
                                           tie_word_embeddings=False)),
        tf.Qwen2ForCausalLM(tf.Qwen2Config(**common, tie_word_embeddings=True)),
        tf.Qwen3ForCausalLM(tf.Qwen3Config(**common, head_dim=4, tie_word_embeddings=False)),
    ]
    lora = get_peft_model(tf.Qwen2ForCausalLM(tf.Qwen2Config(**common)),
                          LoraConfig(r=2, lora_alpha=4, target_modules="all-linear",
                                     task_type="CAUSAL_LM"))
    table = {}
    for m in models + [lora]:
        dec = decay_names(m)
        for n, _ in m.named_parameters():
            table[n] = n in dec
    for n, _ in PARAMS:  # the golden's own names
        table.setdefault(n, None)
    # the golden's names that did not occur in a model: same rule on a flat module
    flat = torch.nn.Module()
    for n, shape in PARAMS:
        mod = flat
        parts = n.split(".")
        for p in parts[:-1]:
            if not hasattr(mod, p):
                mod.add_module(p, torch.nn.Module())
            mod = getattr(mod, p)
        mod.register_parameter(parts[-1], torch.nn.Parameter(torch.zeros(shape)))
    dec = decay_names(flat)
    for n, _ in PARAMS:
        table[n] = n in dec
    return table


def run_case(name, cfg, decay):
    from transformers import get_scheduler
    gen = torch.Generator().manual_seed(1234 + len(name))
    params = {}
    for n, shape in PARAMS:
        t = torch.randn(shape, generator=gen, dtype=torch.float32) * 0.5
        if "norm" in n:
            t = t + 1.0
        params[n] = torch.nn.Parameter(t)
    tensors = {f"{name}.init.{n}": p.detach().clone() for n, p in params.items()}
    groups = [
        {"params": [p for n, p in params.items() if decay[n]], "weight_decay": cfg["weight_decay"]},
        {"params": [p for n, p in params.items() if not decay[n]], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=cfg["lr"], betas=cfg["betas"], eps=cfg["eps"])
    sched = get_scheduler(cfg["sched"], opt, num_warmup_steps=cfg["warmup"],
                          num_training_steps=cfg["steps"])
    lrs, norms = [], []
    for s in range(cfg["steps"]):
        # grad scales swing around the clip threshold so some steps clip and some do not
        scale = [0.05, 0.4, 0.02, 0.9, 0.1, 0.03, 0.6, 0.01, 0.2, 0.08][s % 10]
        for n, p in params.items():
            g = torch.randn(p.shape, generator=gen, dtype=torch.float32) * scale
            p.grad = g.clone()
            tensors[f"{name}.grad.{s}.{n}"] = g
        if cfg["max_grad_norm"] > 0:
            norm = torch.nn.utils.clip_grad_norm_(list(params.values()), cfg["max_grad_norm"])
        else:
            norm = torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(p.grad.double()) for p in params.values()]))
        norms.append(float(norm))
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        opt.zero_grad()
    for n, p in params.items():
        tensors[f"{name}.final.{n}"] = p.detach().clone()
        st = opt.state[p]
        tensors[f"{name}.exp_avg.{n}"] = st["exp_avg"].clone()
        tensors[f"{name}.exp_avg_sq.{n}"] = st["exp_avg_sq"].clone()
    tensors[f"{name}.lr"] = torch.tensor(lrs, dtype=torch.float64)
    tensors[f"{name}.grad_norm"] = torch.tensor(norms, dtype=torch.float64)
    meta = dict(cfg, betas=list(cfg["betas"]))
    return tensors, meta


def sched_goldens():
    from transformers import TrainingArguments, get_scheduler
    out = []
    settings = [(10, 0.0), (10, 3.0), (100, 0.05), (7, 0.1), (1, 0.0), (25, 0.5), (13, 13.0)]
    tmp = tempfile.mkdtemp()
    for typ in ["constant", "constant_with_warmup", "linear", "cosine"]:
        for total, warm in settings:
            args = TrainingArguments(output_dir=tmp, warmup_steps=warm, report_to=[])
            warmup = args.get_warmup_steps(total)
            p = torch.nn.Parameter(torch.zeros(1))
            opt = torch.optim.AdamW([p], lr=2e-4)
            sched = get_scheduler(typ, opt, num_warmup_steps=warmup, num_training_steps=total)
            lrs = []
            for _ in range(total + 2):
                lrs.append(opt.param_groups[0]["lr"])
                opt.step()
                sched.step()
            out.append(dict(type=typ, base_lr=2e-4, total=total, warmup_option=warm,
                            warmup=warmup, lrs=lrs))
    return out


def main():
    if os.environ.get("UPDATE_GOLDEN") != "1":
        sys.exit("gen_optim.py: set UPDATE_GOLDEN=1 to rewrite test/golden/optim/")
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    decay = decay_table()
    tensors, meta = {}, {"cases": json.dumps(list(CASES)), "decay": json.dumps(decay)}
    for name, cfg in CASES.items():
        t, m = run_case(name, cfg, decay)
        tensors.update(t)
        meta[name] = json.dumps(m)
    save_file(tensors, os.path.join(OUT, "adamw.safetensors"), metadata=meta)
    with open(os.path.join(OUT, "sched.json"), "w") as f:
        json.dump(sched_goldens(), f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}/adamw.safetensors ({len(tensors)} tensors) and sched.json")


if __name__ == "__main__":
    main()
