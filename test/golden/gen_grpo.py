#!/usr/bin/env python3
"""Generate the GRPO-loss goldens test/golden/grpo/golden.safetensors (read by
test/unit/test_grpo.c).

The model: the tiny Llama of test/golden/model/llama with the PEFT LoRA adapter of
test/golden/model/llama_lora as the policy, the same model with the adapter disabled as the
reference (what sw does for LoRA). A fixed generation batch: 2 prompts of 4 token ids, 2
completions each (num_generations 2) of 5, 3, 6 and 2 ids, right-padded as TRL pads them (the
prompts have one length, so no left padding moves positions).

The loss is TRL's own code: GRPOTrainer._compute_loss of the installed trl (checked: 1.16),
called with a namespace standing in for `self` that supplies the per-token log-probs (log_softmax
of the logits at temperature 1 gathered at the completion ids, as _get_per_token_logps does) and
the attributes the method reads. Advantages are ms-swift's (swift/rl_core/advantage.py:
(reward - group mean) / (group std + 1e-4), torch's unbiased std); old log-probs for the
num_iterations > 1 cases are the current ones plus fixed offsets, so the clipping branches run.
For each case it stores the loss, TRL's metrics and the gradient of every LoRA parameter
(torch autograd through the model), plus the inputs the C test needs (rewards, advantages,
old log-probs, the policy's log-probs).

Run: UPDATE_GOLDEN=1 python3 test/golden/gen_grpo.py  (needs torch, transformers, peft, trl,
safetensors). Refuses to overwrite without UPDATE_GOLDEN=1.
"""
import collections
import os
import sys
import types

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "grpo", "golden.safetensors")

torch.use_deterministic_algorithms(True)

PROMPTS = [[11, 42, 7, 93], [5, 77, 31, 64]]
COMPLETIONS = [[23, 8, 56, 12, 2], [61, 19, 2], [34, 9, 88, 45, 70, 2], [15, 2]]
REWARDS = [1.0, 0.0, 0.5, 2.0]
G = 2
# (name, loss_type, beta, epsilon, epsilon_high, off-policy, max_completion_length, GA,
#  temperature)
CASES = [
    ("grpo", "grpo", 0.04, 0.2, 0.2, False, 8, 1, 1.0),
    ("grpo_ga2", "grpo", 0.04, 0.2, 0.2, False, 8, 2, 1.0),
    ("bnpo_old", "bnpo", 0.04, 0.2, 0.28, True, 8, 1, 1.0),
    ("dr_grpo_old", "dr_grpo", 0.0, 0.2, 0.2, True, 8, 1, 1.0),
    ("dapo_old", "dapo", 0.1, 0.2, 0.28, True, 8, 1, 1.0),
    ("grpo_temp", "grpo", 0.04, 0.2, 0.2, True, 8, 1, 0.7),
]


def load_model():
    import transformers as tf
    from peft import PeftModel
    mdir = os.path.join(HERE, "model", "llama")
    model = tf.AutoModelForCausalLM.from_pretrained(mdir, dtype=torch.float32)
    model = PeftModel.from_pretrained(model, os.path.join(HERE, "model", "llama_lora"),
                                      is_trainable=True)
    model.eval()  # no dropout (sw runs GRPO without dropout)
    return model


def logps_and_entropies(model, input_ids, attention_mask, logits_to_keep, temperature=1.0, **kw):
    """_get_per_token_logps(_and_entropies): log_softmax(logits / temperature) (TRL's fused LM
    head divides by the temperature)."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    logits = logits[:, -logits_to_keep - 1:-1, :].float() / temperature
    lsm = torch.log_softmax(logits, -1)
    ids = input_ids[:, -logits_to_keep:]
    lp = lsm.gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    ent = -(lsm.exp() * lsm).sum(-1)
    return lp, ent, None


class Acc:
    num_processes = 1
    device = torch.device("cpu")

    @staticmethod
    def gather(x):
        return x

    @staticmethod
    def gather_for_metrics(x):
        return x

    @staticmethod
    def reduce(x, reduction="sum"):
        return x


def advantages(rewards):
    r = torch.tensor(rewards, dtype=torch.float64)
    grouped = r.view(-1, G)
    mean = grouped.mean(dim=1).repeat_interleave(G)
    std = grouped.std(dim=1).repeat_interleave(G)
    return (r - mean) / (std + 1e-4)


def main():
    if os.path.exists(OUT) and os.environ.get("UPDATE_GOLDEN") != "1":
        sys.exit(f"{OUT} exists: set UPDATE_GOLDEN=1 to regenerate")
    import trl
    from trl.trainer.grpo_trainer import GRPOTrainer
    model = load_model()
    L = max(len(c) for c in COMPLETIONS)
    pids, cids, cmask = [], [], []
    for i, c in enumerate(COMPLETIONS):
        pids.append(PROMPTS[i // G])
        cids.append(c + [0] * (L - len(c)))
        cmask.append([1] * len(c) + [0] * (L - len(c)))
    prompt_ids = torch.tensor(pids)
    completion_ids = torch.tensor(cids)
    completion_mask = torch.tensor(cmask)
    prompt_mask = torch.ones_like(prompt_ids)
    adv = advantages(REWARDS)
    ids = torch.cat([prompt_ids, completion_ids], 1)
    am = torch.cat([prompt_mask, completion_mask], 1)
    with torch.no_grad():
        lp_now, _, _ = logps_and_entropies(model, ids, am, L)
        with model.disable_adapter():
            ref, _, _ = logps_and_entropies(model, ids, am, L)
    # fixed offsets: some ratios leave [1 - eps, 1 + eps_high] on both sides
    offs = torch.tensor([[0.3, -0.25, 0.05, 0.4, -0.35, 0, 0, 0],
                         [-0.3, 0.5, 0.1, 0, 0, 0, 0, 0],
                         [0.2, -0.4, 0.35, -0.1, 0.3, -0.3, 0, 0],
                         [-0.45, 0.25, 0, 0, 0, 0, 0, 0]], dtype=torch.float32)[:, :L]
    old = (lp_now + offs) * completion_mask
    out = {"rewards": torch.tensor(REWARDS, dtype=torch.float64),
           "advantages": adv.clone(),
           "logp": torch.cat([lp_now[i, :len(c)] for i, c in enumerate(COMPLETIONS)]).double(),
           "ref": torch.cat([ref[i, :len(c)] for i, c in enumerate(COMPLETIONS)]).double(),
           "old": torch.cat([old[i, :len(c)] for i, c in enumerate(COMPLETIONS)]).double()}
    for name, lt, beta, eps, eps_high, off, mcl, ga, temp in CASES:
        model.zero_grad()
        case_ref, case_old = ref, old
        if temp != 1.0:  # the reference and old log-probs at the same temperature, as TRL has them
            with torch.no_grad():
                lp_t, _, _ = logps_and_entropies(model, ids, am, L, temp)
                with model.disable_adapter():
                    case_ref, _, _ = logps_and_entropies(model, ids, am, L, temp)
            case_old = (lp_t + offs) * completion_mask
            out[f"{name}.ref"] = torch.cat([case_ref[i, :len(c)] for i, c in enumerate(COMPLETIONS)]).double()
            out[f"{name}.old"] = torch.cat([case_old[i, :len(c)] for i, c in enumerate(COMPLETIONS)]).double()
        s = types.SimpleNamespace(
            _get_per_token_logps_and_entropies=lambda *a, _t=temp, **k: logps_and_entropies(*a, temperature=_t, **k),
            top_entropy_quantile=1.0, off_policy_mask_threshold=None,
            importance_sampling_level="token", beta=beta, loss_type=lt, epsilon_low=eps,
            epsilon_high=eps_high, use_vllm=False, model=model,
            current_gradient_accumulation_steps=ga, max_completion_length=mcl,
            accelerator=Acc(), _entropy_bonus_enabled=False, aux_loss_enabled=False,
            _metrics={"train": collections.defaultdict(list), "eval": collections.defaultdict(list)},
            args=types.SimpleNamespace(use_bias_correction_kl=False, delta=None,
                                       steps_per_generation=ga))
        model.training = True  # TRL's mode switch only ("train" metrics, /GA); dropout is 0
        inputs = {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask,
                  "completion_ids": completion_ids, "completion_mask": completion_mask,
                  "advantages": adv.float(),
                  "num_items_in_batch": completion_mask.sum()}
        if off:
            inputs["old_per_token_logps"] = case_old
        if beta != 0:
            inputs["ref_per_token_logps"] = case_ref
        loss = GRPOTrainer._compute_loss(s, model, inputs)
        loss.backward()
        model.training = False
        out[f"{name}.loss"] = torch.tensor(loss.item(), dtype=torch.float64)
        for k, v in s._metrics["train"].items():
            out[f"{name}.metric.{k}"] = torch.tensor(float(v[-1]), dtype=torch.float64)
        for n, p in model.named_parameters():
            if p.requires_grad:
                key = n.replace(".default", "")
                g = p.grad if p.grad is not None else torch.zeros_like(p)
                out[f"{name}.grad.{key}"] = g.detach().float().contiguous()
        print(name, "loss", loss.item(), {k: v[-1] for k, v in s._metrics["train"].items()})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file(out, OUT, metadata={"trl": trl.__version__, "torch": torch.__version__})
    print("wrote", OUT)


if __name__ == "__main__":
    main()
