#!/usr/bin/env python3
"""Generate the preference-loss goldens test/golden/pref/golden.safetensors (read by
test/unit/test_pref.c).

The model: the tiny Llama of test/golden/model/llama with the PEFT LoRA adapter of
test/golden/model/llama_lora (B non-zero) as the policy, and the same model with the adapter
disabled as the reference (what sw does for LoRA: no second copy). A fixed batch of 3
(prompt, chosen, rejected) triples of token ids and, for KTO, 4 labelled rows; every sequence is
run on its own (no padding), per-token log-probs are log_softmax(logits)[target] over the
completion tokens (labels -100 on the prompt, shifted as HF does).

The losses are TRL's own code: the loss methods of the TRL release ms-swift runs on
(trl >= 0.15, < 1.0 — ms-swift's requirements/framework.txt), taken from the trl 0.24.0 wheel
from PyPI (`pip download trl==0.24.0 --no-deps`; the installed trl may be newer, and TRL 1.x
dropped label_smoothing/rpo_alpha from DPO). The methods DPOTrainer.dpo_loss,
CPOTrainer.cpo_loss, ORPOTrainer.odds_ratio_loss and KTOTrainer.kto_loss are extracted from the
wheel's source with `ast` and called with a namespace standing in for `self` (importing the
trainers would need their optional dependencies). The glue around them follows the same
release's get_batch_loss_metrics / concatenated_forward:
  DPO: logps summed (ipo: divided by the completion length, policy and reference);
       loss = mean(dpo_loss) (+ rpo_alpha * nll); nll = mean chosen-token cross-entropy
  CPO: logps averaged for ipo/simpo; loss = mean(cpo_loss) + cpo_alpha * nll
  ORPO: logps averaged; loss = nll - mean(odds_ratio_loss)
  KTO: kl pairs = prompt of row i + completion of row i-1 (cyclic; ms-swift's KTOPreprocessor
       shifts the completions by one in each batch), KL log-probs without gradient;
       loss = mean(kto_loss)
For each case it stores the loss, TRL's metrics and the gradient of every LoRA parameter
(torch autograd through the model).

Run: UPDATE_GOLDEN=1 python3 test/golden/gen_pref.py  (needs torch, transformers, peft,
safetensors and network access to PyPI for the wheel). Refuses to overwrite without
UPDATE_GOLDEN=1.
"""
import ast
import glob
import math
import os
import subprocess
import sys
import tempfile
import types
import zipfile

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "pref", "golden.safetensors")
TRL_VERSION = "0.24.0"

torch.use_deterministic_algorithms(True)


def trl_methods():
    """{(class, method): function} from the trl wheel's source."""
    tmp = tempfile.mkdtemp()
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp,
                    f"trl=={TRL_VERSION}"], check=True)
    whl = glob.glob(os.path.join(tmp, "trl-*.whl"))[0]
    want = {"trl/trainer/dpo_trainer.py": ("DPOTrainer", "dpo_loss"),
            "trl/trainer/cpo_trainer.py": ("CPOTrainer", "cpo_loss"),
            "trl/trainer/orpo_trainer.py": ("ORPOTrainer", "odds_ratio_loss"),
            "trl/trainer/kto_trainer.py": ("KTOTrainer", "kto_loss")}
    out = {}
    with zipfile.ZipFile(whl) as z:
        for path, (cls, meth) in want.items():
            src = z.read(path).decode()
            tree = ast.parse(src)
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name == cls:
                    for f in node.body:
                        if isinstance(f, ast.FunctionDef) and f.name == meth:
                            f.decorator_list = []
                            mod = ast.Module(body=[f], type_ignores=[])
                            ns = {"torch": torch, "F": F, "math": math, "Optional": object,
                                  "Union": object, "FDivergenceType": FDiv,
                                  "FDivergenceConstants": FDivC, "nn": torch.nn}
                            exec(compile(ast.fix_missing_locations(mod), path, "exec"), ns)
                            out[meth] = ns[meth]
    assert len(out) == 4, out.keys()
    return out


class FDiv:
    REVERSE_KL = "reverse_kl"
    JS_DIVERGENCE = "js_divergence"
    ALPHA_DIVERGENCE = "alpha_divergence"


class FDivC:
    ALPHA_DIVERGENCE_COEF_KEY = "alpha_divergence_coef"
    ALPHA_DIVERGENCE_COEF_DEFAULT = 1.0


class Acc:
    device = torch.device("cpu")

    @staticmethod
    def gather_for_metrics(x):
        return x


def fake_self(**kw):
    s = types.SimpleNamespace(accelerator=Acc(), reference_free=False,
                              f_divergence_type=FDiv.REVERSE_KL, f_divergence_params={},
                              label_smoothing=0.0, use_weighting=False, alpha=0.0,
                              calculate_KL=True, desirable_weight=1.0, undesirable_weight=1.0,
                              args=types.SimpleNamespace(discopop_tau=0.05))
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def load_model():
    import transformers as tf
    from peft import PeftModel
    mdir = os.path.join(HERE, "model", "llama")
    model = tf.AutoModelForCausalLM.from_pretrained(mdir, torch_dtype=torch.float32)
    model = PeftModel.from_pretrained(model, os.path.join(HERE, "model", "llama_lora"),
                                      is_trainable=True)
    model.eval()  # no dropout (TRL's disable_dropout)
    return model


def seq_logps(model, ids, nprompt, grad=True):
    """Σ over completion tokens of log p(token | prefix), and the completion length."""
    x = torch.tensor([ids])
    with torch.set_grad_enabled(grad):
        logits = model(input_ids=x).logits[0, :-1].float()
        lp = torch.log_softmax(logits, -1).gather(1, x[0, 1:, None])[:, 0]
        return lp[nprompt - 1:].sum(), len(ids) - nprompt


def ref_logps(model, ids, nprompt):
    with torch.no_grad(), model.disable_adapter():
        return seq_logps(model, ids, nprompt, grad=False)[0]


def batch():
    g = torch.Generator().manual_seed(7)
    r = lambda n: torch.randint(3, 97, (n,), generator=g).tolist()  # noqa: E731
    pairs = []
    for pl, cl, rl in [(4, 5, 3), (3, 2, 6), (5, 4, 4)]:
        p = r(pl)
        pairs.append((p, r(cl), r(rl)))
    kto = []
    for pl, cl, lab in [(3, 4, 1), (4, 3, 0), (2, 5, 1), (5, 2, 0)]:
        kto.append((r(pl), r(cl), lab))
    return pairs, kto


def lora_grads(model):
    out = {}
    for n, p in model.named_parameters():
        if p.requires_grad:
            key = n.replace(".default", "")
            out[key] = (p.grad.detach().clone() if p.grad is not None
                        else torch.zeros_like(p)).float().contiguous()
    return out


def run_pairwise(model, M, pairs, kind, loss_type, beta, ls=0.0, rpo=None, cpo_alpha=1.0,
                 gamma=1.0):
    model.zero_grad()
    n = len(pairs)
    c_sum, r_sum, c_len, r_len, c_ref, r_ref = [], [], [], [], [], []
    for p, c, rj in pairs:
        a, la = seq_logps(model, p + c, len(p))
        b, lb = seq_logps(model, p + rj, len(p))
        c_sum.append(a), r_sum.append(b), c_len.append(la), r_len.append(lb)
        if kind == "dpo":
            c_ref.append(ref_logps(model, p + c, len(p)))
            r_ref.append(ref_logps(model, p + rj, len(p)))
    cs, rs = torch.stack(c_sum), torch.stack(r_sum)
    cl, rl = torch.tensor(c_len, dtype=torch.float32), torch.tensor(r_len, dtype=torch.float32)
    nll = -cs.sum() / cl.sum()  # cross-entropy over every chosen completion token
    metrics = {}
    if kind == "dpo":
        cr, rr = torch.stack(c_ref), torch.stack(r_ref)
        if loss_type == "ipo":
            cs, rs, cr, rr = cs / cl, rs / rl, cr / cl, rr / rl
        s = fake_self(beta=beta, label_smoothing=ls)
        losses, crw, rrw = M["dpo_loss"](s, cs, rs, cr, rr, loss_type=loss_type)
        loss = losses.mean()
        if rpo is not None:
            loss = loss + rpo * nll
            metrics["nll_loss"] = nll
    elif kind == "cpo":
        if loss_type in ("ipo", "simpo"):
            cs, rs = cs / cl, rs / rl
        s = fake_self(beta=beta, label_smoothing=ls, loss_type=loss_type, simpo_gamma=gamma)
        losses, crw, rrw = M["cpo_loss"](s, cs, rs)
        loss = losses.mean() + cpo_alpha * nll
        metrics["nll_loss"] = nll
    else:  # orpo
        cs, rs = cs / cl, rs / rl
        s = fake_self(beta=beta)
        losses, crw, rrw, ratio, log_odds = M["odds_ratio_loss"](s, cs, rs)
        loss = nll - losses.mean()
        metrics["nll_loss"] = nll
        metrics["log_odds_ratio"] = ratio
        metrics["log_odds_chosen"] = log_odds
    loss.backward()
    metrics.update({"loss": loss, "rewards/chosen": crw.mean(), "rewards/rejected": rrw.mean(),
                    "rewards/accuracies": (crw > rrw).float().mean(),
                    "rewards/margins": (crw - rrw).mean(), "logps/chosen": cs.mean(),
                    "logps/rejected": rs.mean()})
    return metrics, lora_grads(model)


def run_kto(model, M, rows, beta, dw, uw):
    model.zero_grad()
    n = len(rows)
    lps, refs, kls, kl_refs, labels = [], [], [], [], []
    for i, (p, c, lab) in enumerate(rows):
        lp, _ = seq_logps(model, p + c, len(p))
        lps.append(lp)
        refs.append(ref_logps(model, p + c, len(p)))
        kc = rows[i - 1][1]  # completion of the previous row (cyclic)
        kls.append(seq_logps(model, p + kc, len(p), grad=False)[0])
        kl_refs.append(ref_logps(model, p + kc, len(p)))
        labels.append(lab)
    lp, ref = torch.stack(lps), torch.stack(refs)
    ci = [i for i in range(n) if labels[i]]
    ri = [i for i in range(n) if not labels[i]]
    s = fake_self(beta=beta, loss_type="kto", desirable_weight=dw, undesirable_weight=uw)
    losses, crw, rrw, kl = M["kto_loss"](s, lp[ci], lp[ri], torch.stack(kls), ref[ci], ref[ri],
                                         torch.stack(kl_refs))
    loss = losses.nanmean()
    loss.backward()
    metrics = {"loss": loss, "rewards/chosen": crw.mean(), "rewards/rejected": rrw.mean(),
               "rewards/margins": crw.mean() - rrw.mean(), "logps/chosen": lp[ci].mean(),
               "logps/rejected": lp[ri].mean(), "kl": kl.reshape(())}
    return metrics, lora_grads(model)


CASES = [
    # name, kind, loss_type, kwargs
    ("dpo_sigmoid", "dpo", "sigmoid", dict(beta=0.1)),
    ("dpo_sigmoid_ls", "dpo", "sigmoid", dict(beta=0.5, ls=0.2)),
    ("dpo_hinge", "dpo", "hinge", dict(beta=0.5)),
    ("dpo_ipo", "dpo", "ipo", dict(beta=0.1)),
    ("dpo_robust", "dpo", "robust", dict(beta=0.3, ls=0.1)),
    ("dpo_rpo", "dpo", "sigmoid", dict(beta=0.1, rpo=0.7)),
    ("cpo_sigmoid", "cpo", "sigmoid", dict(beta=0.1, cpo_alpha=1.0)),
    ("cpo_hinge", "cpo", "hinge", dict(beta=0.2, cpo_alpha=0.5)),
    ("simpo", "cpo", "simpo", dict(beta=2.0, gamma=1.0, cpo_alpha=0.3)),
    ("orpo", "orpo", None, dict(beta=0.1)),
]


def main():
    if os.path.exists(OUT) and os.environ.get("UPDATE_GOLDEN") != "1":
        sys.exit(f"{OUT} exists; set UPDATE_GOLDEN=1 to overwrite")
    M = trl_methods()
    model = load_model()
    pairs, kto = batch()
    t = {}
    # the batch: per pair prompt/chosen/rejected ids; per KTO row prompt/completion/label
    for i, (p, c, r) in enumerate(pairs):
        t[f"pair{i}.prompt"] = torch.tensor(p, dtype=torch.int32)
        t[f"pair{i}.chosen"] = torch.tensor(c, dtype=torch.int32)
        t[f"pair{i}.rejected"] = torch.tensor(r, dtype=torch.int32)
    for i, (p, c, lab) in enumerate(kto):
        t[f"kto{i}.prompt"] = torch.tensor(p, dtype=torch.int32)
        t[f"kto{i}.completion"] = torch.tensor(c, dtype=torch.int32)
        t[f"kto{i}.label"] = torch.tensor([lab], dtype=torch.int32)
    cases = list(CASES) + [("kto", "kto", "kto", dict(beta=0.1, dw=1.0, uw=1.0)),
                           ("kto_weighted", "kto", "kto", dict(beta=0.3, dw=1.5, uw=0.7))]
    for name, kind, loss_type, kw in cases:
        if kind == "kto":
            metrics, grads = run_kto(model, M, kto, kw["beta"], kw["dw"], kw["uw"])
        else:
            metrics, grads = run_pairwise(model, M, pairs, kind, loss_type, **kw)
        params = dict(beta=kw.get("beta"), label_smoothing=kw.get("ls", 0.0),
                      rpo_alpha=kw.get("rpo", float("nan")),
                      cpo_alpha=kw.get("cpo_alpha", 1.0), simpo_gamma=kw.get("gamma", 1.0),
                      desirable_weight=kw.get("dw", 1.0), undesirable_weight=kw.get("uw", 1.0))
        for k, v in params.items():
            t[f"{name}.param.{k}"] = torch.tensor([v], dtype=torch.float64)
        for k, v in metrics.items():
            t[f"{name}.metric.{k}"] = v.detach().double().reshape(1)
        for k, v in grads.items():
            t[f"{name}.grad.{k}"] = v
        print(name, {k: round(float(v), 6) for k, v in metrics.items()})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file({k: v.contiguous() for k, v in t.items()}, OUT,
              metadata={"trl": TRL_VERSION, "generator": "test/golden/gen_pref.py"})


if __name__ == "__main__":
    main()
