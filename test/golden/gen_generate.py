#!/usr/bin/env python3
"""Generate the sw-eval goldens under test/golden/generate/ (read by test/cli/eval.bats).

It builds a tiny but complete HF model folder, model/, that sw-eval generate can run end to end:
  - a byte-level BPE tokenizer (the `tokenizers` package, trained here on the text below, vocab
    320) with ChatML special tokens <|endoftext|>, <|im_start|>, <|im_end|>, and a
    tokenizer_config.json carrying eos/pad tokens and a ChatML chat_template;
  - a random float32 Qwen3 model (hidden 48, 2 layers, 4 heads / 2 kv heads of 16, intermediate
    96, tied embeddings; weights ~N(0, 0.15) so logits are far from ties);
  - generation_config.json whose eos_token_id is [<|im_end|>, X], X chosen so that greedy
    decoding of "prompt_hello" ends on it a few tokens in, "prompt_fox" runs to the limit and
    "stop" ends on <|im_end|>.
and expected.json with transformers' greedy generate() output ids (do_sample=False) for:
  prompt_*   raw text prompts (tokenizer(text).input_ids, no template)
  chat       a conversation rendered by apply_chat_template(add_generation_prompt=True)
  penalty    a raw prompt with repetition_penalty=1.3
plus hf_loss: model(input_ids, attention_mask, labels=input_ids).loss for a right-padded batch
(the definition sw-eval logits follows: padding counted) and the input itself.
Every greedy step's margin between the two best logits is checked to be > 1e-3, so a float
rounding difference between sw and torch cannot flip the argmax.

The engine goldens (read by test/unit/test_engine.c) add two more families on the same tokenizer,
each a complete HF folder with its own expected.json of greedy generate() ids:
  llama/model   LlamaForCausalLM, llama3 rope scaling, untied LM head
  qwen2/model   Qwen2ForCausalLM, q/k/v biases, tied embeddings
  mistral/model MistralForCausalLM, sliding window 6 (shorter than prompt + generation), untied
  gemma2/model  Gemma2ForCausalLM, layer 0 local (window 6) / layer 1 global, soft-caps 2 and 5,
                query_pre_attn_scalar 16, tied
  llama/adapter a PEFT LoRA adapter (r 4, all linear modules, random A and B) on llama/model, and
                llama/expected_lora.json: the same prompts through PeftModel.generate (unmerged)
Every case's ids are checked to be the same with and without transformers' KV cache
(use_cache=True/False) and in a left-padded batch of all the raw prompts; expected.json stores
them once, with the flags that were checked.

Run: UPDATE_GOLDEN=1 python3 test/golden/gen_generate.py [qwen3] [llama] [qwen2] [mistral] [gemma2]
(default: all;
needs torch, transformers, tokenizers, safetensors, and peft for the adapter; CPU torch is
enough). Without UPDATE_GOLDEN=1 it refuses to overwrite. The llama and qwen2 folders need the
qwen3 folder's tokenizer (model/tokenizer.json), so generate qwen3 first on a fresh tree.
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "generate")
MODEL = os.path.join(OUT, "model")

TEXT = """The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with a
single step. To be or not to be, that is the question. All that glitters is not gold. The early
bird catches the worm. Knowledge is power, and time is money. Where there is a will, there is a
way. Actions speak louder than words. Practice makes perfect. The pen is mightier than the sword.
Rome was not built in a day. When in Rome, do as the Romans do. Every cloud has a silver lining.
Hello, how are you today? I am fine, thank you. What is the capital of France? Paris is the
capital of France. Two plus two is four. Seven times three is twenty one."""

CHAT_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                 "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
                 "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

PROMPTS = {
    "prompt_fox": "The quick brown fox",
    "prompt_hello": "Hello, how are",
    "stop": "What is the capital",
}
CHAT = [{"role": "system", "content": "You answer briefly."},
        {"role": "user", "content": "What is two plus two?"}]
PENALTY_PROMPT = "Practice makes"
MAX_NEW = 24


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator([TEXT] * 4, trainer=trainer)
    os.makedirs(MODEL, exist_ok=True)
    tok.save(os.path.join(MODEL, "tokenizer.json"))
    cfg = {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
           "unk_token": None, "model_max_length": 1024, "chat_template": CHAT_TEMPLATE,
           "tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False,
           "added_tokens_decoder": {str(tok.token_to_id(s)): {"content": s, "special": True,
                                                              "lstrip": False, "rstrip": False,
                                                              "normalized": False,
                                                              "single_word": False}
                                    for s in specials}}
    with open(os.path.join(MODEL, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    return tok


def build_model(vocab, eos, pad):
    import transformers as tf
    cfg = tf.Qwen3Config(vocab_size=vocab, hidden_size=48, intermediate_size=96,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         head_dim=16, max_position_embeddings=256, rms_norm_eps=1e-6,
                         tie_word_embeddings=True, bos_token_id=None, eos_token_id=eos,
                         pad_token_id=pad,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    torch.manual_seed(7)
    model = tf.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").float()
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=gen))
    model.eval()
    return model


def greedy(model, ids, eos, penalty=1.0):
    """transformers' generate() plus the per-step margin check."""
    x = torch.tensor([ids])
    out = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=MAX_NEW,
                         do_sample=False, eos_token_id=eos, pad_token_id=0,
                         repetition_penalty=penalty, output_scores=True,
                         return_dict_in_generate=True)
    new = out.sequences[0, len(ids):].tolist()
    for s in out.scores:
        top = torch.topk(s[0], 2).values
        assert float(top[0] - top[1]) > 1e-3, f"near tie in greedy decoding: {top.tolist()}"
    return new


def main_qwen3():
    if os.path.exists(os.path.join(OUT, "expected.json")) and os.environ.get("UPDATE_GOLDEN") != "1":
        sys.exit(f"{OUT} exists: set UPDATE_GOLDEN=1 to regenerate")
    import transformers as tf
    tok = build_tokenizer()
    im_end, pad = tok.token_to_id("<|im_end|>"), tok.token_to_id("<|endoftext|>")
    vocab = tok.get_vocab_size()
    model = build_model(vocab, im_end, pad)
    ids = {k: tok.encode(v).ids for k, v in PROMPTS.items()}
    # Pick the extra EOS: a token greedy emits a few steps into "prompt_hello" but never for
    # "prompt_fox" (which must run to the limit); "stop" ends on <|im_end|> by itself.
    free = {k: greedy(model, v, [im_end]) for k, v in ids.items()}
    hello = free["prompt_hello"]
    extra = next((t for i, t in enumerate(hello) if i >= 3 and t not in hello[:i] and
                  t not in free["prompt_fox"] and t != im_end), None)
    assert extra is not None, "no token to stop on: change the prompts"
    eos = [im_end, extra]
    model.config.eos_token_id = eos
    model.generation_config = tf.GenerationConfig(eos_token_id=eos, pad_token_id=pad,
                                                  do_sample=False, max_new_tokens=MAX_NEW)
    model.save_pretrained(MODEL, safe_serialization=True)
    # The tokenizer as transformers sees it (the chat template comes from our config file).
    hft = tf.AutoTokenizer.from_pretrained(MODEL)
    cases = {}
    for k, v in PROMPTS.items():
        assert hft(v).input_ids == ids[k]
        cases[k] = {"prompt": v, "prompt_ids": ids[k], "ids": greedy(model, ids[k], eos)}
    assert cases["stop"]["ids"][-1] in eos and len(cases["stop"]["ids"]) < MAX_NEW
    assert cases["prompt_hello"]["ids"][-1] == extra and len(cases["prompt_hello"]["ids"]) > 3
    assert len(cases["prompt_fox"]["ids"]) == MAX_NEW
    chat_ids = hft.apply_chat_template(CHAT, add_generation_prompt=True, tokenize=True)
    if isinstance(chat_ids, dict) or hasattr(chat_ids, "input_ids"):
        chat_ids = chat_ids["input_ids"]
    cases["chat"] = {"messages": CHAT, "prompt_ids": list(chat_ids),
                     "ids": greedy(model, list(chat_ids), eos)}
    pids = tok.encode(PENALTY_PROMPT).ids
    cases["penalty"] = {"prompt": PENALTY_PROMPT, "prompt_ids": pids, "repetition_penalty": 1.3,
                        "ids": greedy(model, pids, eos, penalty=1.3)}
    for c in cases.values():
        c["text"] = tok.decode(c["ids"], skip_special_tokens=True)
    # HF's loss with labels = input_ids on a right-padded batch (padding counted).
    rows = [tok.encode(TEXT[:60]).ids[:12], tok.encode("Hello, how are you today?").ids[:12]]
    T = max(len(r) for r in rows)
    input_ids = [r + [pad] * (T - len(r)) for r in rows]
    mask = [[1] * len(r) + [0] * (T - len(r)) for r in rows]
    with torch.no_grad():
        loss = model(input_ids=torch.tensor(input_ids), attention_mask=torch.tensor(mask),
                     labels=torch.tensor(input_ids)).loss
    expected = {"generator": "test/golden/gen_generate.py", "torch": torch.__version__,
                "transformers": tf.__version__, "max_new_tokens": MAX_NEW, "eos": eos,
                "cases": cases,
                "hf_loss": {"input_ids": input_ids, "attention_mask": mask, "loss": float(loss)}}
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    for f in ("README.md",):
        if os.path.exists(os.path.join(MODEL, f)):
            os.remove(os.path.join(MODEL, f))
    total = 0
    for root, _, files in os.walk(OUT):
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
            total += os.path.getsize(os.path.join(root, f))
    print(f"wrote {OUT} ({total} bytes)", file=sys.stderr)


# ---- the engine's goldens: more families, cache on/off, batched, a LoRA adapter --------------

ENGINE_PROMPTS = ["The quick brown fox", "Hello, how are", "What is the capital", "Practice makes",
                  "Two plus two is four. Seven times three is", "Rome"]


def greedy_checked(model, ids, eos):
    """Greedy ids with the KV cache, checked equal without it (and margins > 1e-3)."""
    new = greedy(model, ids, eos)
    x = torch.tensor([ids])
    nocache = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=MAX_NEW,
                             do_sample=False, eos_token_id=eos, pad_token_id=0, use_cache=False)
    assert nocache[0, len(ids):].tolist() == new, "use_cache=False differs"
    return new


def batched(model, prompts, eos, pad):
    """Greedy ids of all prompts in one left-padded batch, with trailing pads removed."""
    T = max(len(p) for p in prompts)
    x = torch.tensor([[pad] * (T - len(p)) + p for p in prompts])
    m = torch.tensor([[0] * (T - len(p)) + [1] * len(p) for p in prompts])
    out = model.generate(x, attention_mask=m, max_new_tokens=MAX_NEW, do_sample=False,
                         eos_token_id=eos, pad_token_id=pad)
    res = []
    for row in out[:, T:].tolist():
        keep = []
        for t in row:
            keep.append(t)
            if t in eos:
                break
        res.append(keep)
    return res


def family_model(kind, vocab, eos, pad, seed):
    import transformers as tf
    common = dict(vocab_size=vocab, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                  rms_norm_eps=1e-6, bos_token_id=None, eos_token_id=eos, pad_token_id=pad)
    if kind == "llama":
        cfg = tf.LlamaConfig(**common, tie_word_embeddings=False,
                             rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0,
                                              "factor": 8.0, "low_freq_factor": 1.0,
                                              "high_freq_factor": 4.0,
                                              "original_max_position_embeddings": 64})
    elif kind == "mistral":  # a window of 6 keys: prompts and generations run past it
        cfg = tf.MistralConfig(**common, tie_word_embeddings=False, sliding_window=6,
                               rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    elif kind == "gemma2":  # layer 0 local (window 6), layer 1 global; small soft-caps
        cfg = tf.Gemma2Config(**common, head_dim=12, query_pre_attn_scalar=16, sliding_window=6,
                              attn_logit_softcapping=2.0, final_logit_softcapping=5.0,
                              tie_word_embeddings=True, hidden_activation="gelu_pytorch_tanh",
                              rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    else:
        cfg = tf.Qwen2Config(**common, tie_word_embeddings=True,
                             rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    torch.manual_seed(seed)
    model = tf.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").float()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=gen))
    model.eval()
    return model


def engine_cases(model, tok, eos, pad):
    ids = [tok.encode(p).ids for p in ENGINE_PROMPTS]
    alone = [greedy_checked(model, i, eos) for i in ids]
    assert batched(model, ids, eos, pad) == alone, "left-padded batch differs from alone"
    cases = {}
    for k, (p, i, a) in enumerate(zip(ENGINE_PROMPTS, ids, alone)):
        cases[f"p{k}"] = {"prompt": p, "prompt_ids": i, "ids": a,
                          "text": tok.decode(a, skip_special_tokens=True)}
    pids = ids[3]
    cases["penalty"] = {"prompt": ENGINE_PROMPTS[3], "prompt_ids": pids, "repetition_penalty": 1.3,
                        "ids": greedy(model, pids, eos, penalty=1.3)}
    return cases


def write_expected(path, cases, extra):
    import transformers as tf
    expected = {"generator": "test/golden/gen_generate.py", "torch": torch.__version__,
                "transformers": tf.__version__, "max_new_tokens": MAX_NEW,
                "checked": ["use_cache=False equal", "left-padded batch equal",
                            "greedy margins > 1e-3"], "cases": cases, **extra}
    with open(path, "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


def main_family(kind, seed):
    import shutil
    from tokenizers import Tokenizer
    import transformers as tf
    root = os.path.join(OUT, kind)
    if os.path.exists(root) and os.environ.get("UPDATE_GOLDEN") != "1":
        sys.exit(f"{root} exists: set UPDATE_GOLDEN=1 to regenerate")
    mdir = os.path.join(root, "model")
    os.makedirs(mdir, exist_ok=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(MODEL, f), os.path.join(mdir, f))
    tok = Tokenizer.from_file(os.path.join(mdir, "tokenizer.json"))
    im_end, pad = tok.token_to_id("<|im_end|>"), tok.token_to_id("<|endoftext|>")
    eos = [im_end]
    model = family_model(kind, tok.get_vocab_size(), eos, pad, seed)
    model.generation_config = tf.GenerationConfig(eos_token_id=eos, pad_token_id=pad,
                                                  do_sample=False, max_new_tokens=MAX_NEW)
    model.save_pretrained(mdir, safe_serialization=True)
    write_expected(os.path.join(root, "expected.json"), engine_cases(model, tok, eos, pad),
                   {"eos": eos})
    if kind == "llama":
        from peft import LoraConfig, get_peft_model
        lc = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, bias="none",
                        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                        "up_proj", "down_proj"])
        pm = get_peft_model(model, lc)
        gen = torch.Generator().manual_seed(seed + 2)
        with torch.no_grad():
            for n, p in pm.named_parameters():
                if "lora_" in n:
                    p.copy_(0.3 * torch.randn(p.shape, generator=gen))
        pm.eval()
        adir = os.path.join(root, "adapter")
        pm.save_pretrained(adir, safe_serialization=True)
        cases = engine_cases(pm, tok, eos, pad)
        base = json.load(open(os.path.join(root, "expected.json")))["cases"]
        assert any(cases[k]["ids"] != base[k]["ids"] for k in cases), "the adapter changes nothing"
        write_expected(os.path.join(root, "expected_lora.json"), cases,
                       {"eos": eos, "adapter": "llama/adapter"})
        readme = os.path.join(adir, "README.md")
        if os.path.exists(readme):
            os.remove(readme)
    for d, _, files in os.walk(root):
        for f in files:
            os.chmod(os.path.join(d, f), 0o644)
    print(f"wrote {root}", file=sys.stderr)


if __name__ == "__main__":
    which = sys.argv[1:] or ["qwen3", "llama", "qwen2", "mistral", "gemma2"]
    for w in which:
        if w == "qwen3":
            main_qwen3()
        elif w in ("llama", "qwen2", "mistral", "gemma2"):
            main_family(w, {"llama": 21, "qwen2": 31, "mistral": 41, "gemma2": 51}[w])
        else:
            sys.exit(f"unknown family '{w}' (qwen3, llama, qwen2, mistral, gemma2)")
