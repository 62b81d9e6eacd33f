#!/usr/bin/env python3
"""make_random_model — a randomly initialised HF model folder of a published shape, for speed
benchmarks that need the shape and not the weights (the benchmark machine cannot download).

Usage: python3 bench/make_random_model.py OUTDIR [qwen2.5-0.5b|qwen2.5-1.5b|small] [--lora ADIR]
Writes config.json, generation_config.json and model.safetensors (bfloat16, normal(0, 0.02)
weights, norm weights 1) with transformers; needs torch and transformers. ~1 GB for 0.5B.
--lora ADIR also writes a PEFT LoRA adapter (r 16, alpha 32, all linear modules, random A and
B; needs peft) for the multi-adapter benchmarks.
"""
import sys

import torch
import transformers as tf

SHAPES = {
    # a CPU-sized shape (~12M parameters + a 32000-word vocabulary, tied): engine overheads
    "small": dict(hidden_size=256, intermediate_size=768, num_hidden_layers=8,
                  num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                  vocab_size=32000),
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2, tie_word_embeddings=True),
    "qwen2.5-1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                         num_attention_heads=12, num_key_value_heads=2, tie_word_embeddings=True),
}


def main():
    args = sys.argv[1:]
    lora = None
    if "--lora" in args:
        i = args.index("--lora")
        lora = args[i + 1]
        del args[i:i + 2]
    out = args[0]
    shape = args[1] if len(args) > 1 else "qwen2.5-0.5b"
    kw = dict(SHAPES[shape])
    kw.setdefault("vocab_size", 151936)
    cfg = tf.Qwen2Config(max_position_embeddings=32768, rms_norm_eps=1e-6, rope_theta=1000000.0,
                         bos_token_id=1, eos_token_id=2, **kw)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(dev):
        model = tf.AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.bfloat16)
    gen = torch.Generator(device=dev).manual_seed(0)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("norm.weight"):
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02, generator=gen)
    model.save_pretrained(out, safe_serialization=True)
    print(f"wrote {out} ({shape})", file=sys.stderr)
    if lora:
        from peft import LoraConfig, get_peft_model
        lc = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, bias="none",
                        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                        "up_proj", "down_proj"])
        pm = get_peft_model(model, lc)
        with torch.no_grad():
            for n, p in pm.named_parameters():
                if "lora_" in n:
                    p.normal_(0.0, 0.02, generator=gen)
        pm.save_pretrained(lora, safe_serialization=True)
        print(f"wrote {lora} (LoRA r 16)", file=sys.stderr)


if __name__ == "__main__":
    main()
