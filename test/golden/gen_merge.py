#!/usr/bin/env python3
"""Generate the sw-quant merge-lora goldens under test/golden/merge/ (read by
test/cli/quant-merge.bats): what PEFT's merge_and_unload() makes of an adapter.

Cases (the base is test/golden/model/llama, float32, from gen_model.py):
  llama_lora.safetensors   every tensor of base + test/golden/model/llama_lora (r 4, alpha 8,
                           all linear layers) merged by PEFT in float32
  partial/                 a second adapter written here: r 2, lora_alpha 3, use_rslora,
                           target_modules q_proj + down_proj, layers_to_transform [1] (so layer 0
                           has no adapter), A and B random; partial.safetensors holds the merged
                           tensors PEFT changed
  bf16/                    the base saved in bfloat16 (save_pretrained), and bf16.safetensors: the
                           llama_lora adapter merged by PEFT into that bf16 model (PEFT computes
                           the delta in float32, rounds it to bf16 and adds in bf16; sw adds in
                           float32 and rounds once, so the test allows one bf16 ulp)

Run: UPDATE_GOLDEN=1 python3 test/golden/gen_merge.py  (needs torch, transformers, peft,
safetensors; CPU torch is enough). Without UPDATE_GOLDEN=1 it refuses to overwrite.
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "merge")
BASE = os.path.join(HERE, "model", "llama")
LORA = os.path.join(HERE, "model", "llama_lora")


def load_base(dtype=torch.float32, path=BASE):
    import transformers as tf
    return tf.AutoModelForCausalLM.from_pretrained(path, dtype=dtype)


def merged_state(model):
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def tidy_adapter(d):
    """PEFT writes a model card and target_modules in set order: drop / sort for stable files."""
    if os.path.exists(os.path.join(d, "README.md")):
        os.remove(os.path.join(d, "README.md"))
    p = os.path.join(d, "adapter_config.json")
    with open(p) as f:
        ac = json.load(f)
    if isinstance(ac.get("target_modules"), list):
        ac["target_modules"] = sorted(ac["target_modules"])
    with open(p, "w") as f:
        json.dump(ac, f, indent=2, sort_keys=True)
        f.write("\n")


def case_full():
    import peft
    m = peft.PeftModel.from_pretrained(load_base(), LORA).merge_and_unload()
    st = merged_state(m)
    if m.config.tie_word_embeddings:
        st.pop("lm_head.weight", None)
    save_file(st, os.path.join(OUT, "llama_lora.safetensors"),
              metadata={"generator": "test/golden/gen_merge.py", "peft": peft.__version__})


def case_partial():
    import peft
    d = os.path.join(OUT, "partial")
    os.makedirs(d, exist_ok=True)
    cfg = peft.LoraConfig(r=2, lora_alpha=3, use_rslora=True, lora_dropout=0.0,
                          target_modules=["q_proj", "down_proj"], layers_to_transform=[1],
                          bias="none", task_type="CAUSAL_LM")
    base = load_base()
    before = merged_state(base)
    model = peft.get_peft_model(base, cfg)
    gen = torch.Generator().manual_seed(99)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_" in n:
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))
    model.save_pretrained(d, safe_serialization=True)
    tidy_adapter(d)
    merged = merged_state(model.merge_and_unload())
    changed = {k: v for k, v in merged.items() if not torch.equal(v, before[k])}
    assert sorted(changed) == ["model.layers.1.mlp.down_proj.weight",
                               "model.layers.1.self_attn.q_proj.weight"], sorted(changed)
    save_file(changed, os.path.join(OUT, "partial.safetensors"),
              metadata={"generator": "test/golden/gen_merge.py", "peft": peft.__version__})


def case_bf16():
    import peft
    d = os.path.join(OUT, "bf16")
    os.makedirs(d, exist_ok=True)
    load_base(torch.bfloat16).save_pretrained(d, safe_serialization=True)
    for f in ("generation_config.json",):
        assert os.path.exists(os.path.join(d, f))
    m = peft.PeftModel.from_pretrained(load_base(torch.bfloat16, d), LORA).merge_and_unload()
    st = merged_state(m)
    assert all(v.dtype == torch.bfloat16 for v in st.values())
    save_file(st, os.path.join(OUT, "bf16.safetensors"),
              metadata={"generator": "test/golden/gen_merge.py", "peft": peft.__version__})


def main():
    if os.path.exists(OUT) and os.environ.get("UPDATE_GOLDEN") != "1":
        sys.exit(f"{OUT} exists: set UPDATE_GOLDEN=1 to regenerate")
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    case_full()
    case_partial()
    case_bf16()
    total = 0
    for root, _, files in os.walk(OUT):
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
            total += os.path.getsize(os.path.join(root, f))
    print(f"wrote {OUT} ({total} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
