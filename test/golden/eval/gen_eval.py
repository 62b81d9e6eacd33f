#!/usr/bin/env python3
"""Generate the sw-eval bench goldens under test/golden/eval/ (read by test/cli/eval-bench.bats and
test/golden/eval/compare.py) by running lm-evaluation-harness itself (`pip install lm-eval torch
transformers`; CPU is enough) with its HF backend on a tiny model and the bundled data samples.

1. model/: a tiny but complete HF folder: a byte-level BPE tokenizer (the `tokenizers` package,
   trained here on the text of data/eval/, vocab 1000, ChatML specials and chat_template) and a
   random float32 Qwen3 (hidden 48, 2 layers, weights ~N(0, 0.15) so that choices are far from
   ties), max_position_embeddings 1024, so the longest 5-shot prompts are cut on the left as the
   harness cuts them.
2. lm-eval tasks that are lm-eval's own task YAMLs (`include:` of the installed files: prompt,
   few-shot sampler, metrics, filters all theirs) with only the data source replaced by local
   JSON lines converted from data/eval/ with Python's csv module (every field a string, as the
   Hugging Face hub copies are).
3. expected.json: per task and item the prompt, every choice's log-likelihood and is_greedy, the
   harness's metrics; for GSM8K the generated text and both filters' answers; and the aggregate
   accuracies. Runs (lm_eval.simple_evaluate, batch_size 1, device cpu):
     mmlu (3 subjects), ceval-valid (2), cmmlu (2) with num_fewshot 5;
     gsm8k (5-shot, random shots from train, seed 1234) and gsm8k-cot (8 fixed exemplars) with
     gen_kwargs max_gen_toks=24;
     arc_easy and hellaswag with num_fewshot 2 (random shots: Python's random.sample).

Run: UPDATE_GOLDEN=1 python3 test/golden/eval/gen_eval.py
"""
import csv
import glob
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
DATA = os.path.join(ROOT, "data", "eval")
MODEL = os.path.join(HERE, "model")
GEN_TOKS = 24

CHAT_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                 "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
                 "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def corpus():
    out = []
    for p in sorted(glob.glob(os.path.join(DATA, "**", "*.*"), recursive=True)):
        if p.endswith((".csv", ".jsonl")):
            with open(p, encoding="utf-8") as f:
                out.append(f.read())
    return out


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus(), trainer=trainer)
    tok.save(os.path.join(MODEL, "tokenizer.json"))
    cfg = {"bos_token": None, "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
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


def build_model(vocab, eos):
    import torch
    import transformers as tf
    cfg = tf.Qwen3Config(vocab_size=vocab, hidden_size=48, intermediate_size=96,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         head_dim=16, max_position_embeddings=1024, rms_norm_eps=1e-6,
                         tie_word_embeddings=True, bos_token_id=None, eos_token_id=eos,
                         pad_token_id=eos,
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
    model.save_pretrained(MODEL, safe_serialization=True)
    model.generation_config.save_pretrained(MODEL)
    for f in os.listdir(MODEL):
        os.chmod(os.path.join(MODEL, f), 0o644)


def csv_rows(p, header=True):
    with open(p, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return (rows[0], rows[1:]) if header else (None, rows)


def write_jsonl(p, docs):
    with open(p, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")


def make_tasks(tmp, lm):
    """lm-eval task YAMLs (includes of the installed ones) over local JSON lines."""
    T = os.path.join(os.path.dirname(lm.__file__), "tasks")
    import yaml
    tasks = {"mc5": [], "gen": [], "mc2": []}
    names = {}

    def write_yaml(name, body):
        with open(os.path.join(tmp, name + ".yaml"), "w", encoding="utf-8") as f:
            yaml.safe_dump(body, f, allow_unicode=True, sort_keys=False)

    # MMLU, from the Hugging Face export layout (what the hub dataset holds)
    for p in sorted(glob.glob(os.path.join(DATA, "mmlu_hf", "test", "*_test.csv"))):
        s = os.path.basename(p)[:-len("_test.csv")]
        files = {}
        for split in ("dev", "test"):
            _, rows = csv_rows(os.path.join(DATA, "mmlu_hf", split, f"{s}_{split}.csv"))
            docs = [{"question": r[0], "subject": s, "choices": r[1:5], "answer": int(r[5])}
                    for r in rows]
            files[split] = os.path.join(tmp, f"mmlu_{s}_{split}.jsonl")
            write_jsonl(files[split], docs)
        orig = yaml.safe_load(open(os.path.join(T, "mmlu", "default", f"mmlu_{s}.yaml")))
        name = f"swgold_mmlu_{s}"
        write_yaml(name, {"include": os.path.join(T, "mmlu", "default", "_default_template_yaml"),
                          "task": name, "dataset_path": "json", "dataset_name": None,
                          "dataset_kwargs": {"data_files": files},
                          "description": orig["description"]})
        tasks["mc5"].append(name)
        names[name] = ("mmlu", s)
    # C-Eval
    for p in sorted(glob.glob(os.path.join(DATA, "ceval", "val", "*_val.csv"))):
        s = os.path.basename(p)[:-len("_val.csv")]
        files = {}
        for split in ("dev", "val"):
            hdr, rows = csv_rows(os.path.join(DATA, "ceval", split, f"{s}_{split}.csv"))
            files[split] = os.path.join(tmp, f"ceval_{s}_{split}.jsonl")
            write_jsonl(files[split], [dict(zip(hdr, r)) for r in rows])
        orig = yaml.safe_load(open(os.path.join(T, "ceval", f"ceval-valid_{s}.yaml")))
        name = f"swgold_ceval_{s}"
        write_yaml(name, {"include": os.path.join(T, "ceval", "_default_ceval_yaml"),
                          "task": name, "dataset_path": "json", "dataset_name": None,
                          "dataset_kwargs": {"data_files": files},
                          "description": orig["description"]})
        tasks["mc5"].append(name)
        names[name] = ("ceval", s)
    # CMMLU
    for p in sorted(glob.glob(os.path.join(DATA, "cmmlu", "test", "*.csv"))):
        s = os.path.basename(p)[:-len(".csv")]
        files = {}
        for split in ("dev", "test"):
            hdr, rows = csv_rows(os.path.join(DATA, "cmmlu", split, f"{s}.csv"))
            files[split] = os.path.join(tmp, f"cmmlu_{s}_{split}.jsonl")
            write_jsonl(files[split], [{k: v for k, v in zip(hdr, r) if k} for r in rows])
        orig = yaml.safe_load(open(os.path.join(T, "cmmlu", f"cmmlu_{s}.yaml")))
        name = f"swgold_cmmlu_{s}"
        write_yaml(name, {"include": os.path.join(T, "cmmlu", "_default_template_yaml"),
                          "task": name, "dataset_path": "json", "dataset_name": None,
                          "dataset_kwargs": {"data_files": files},
                          "description": orig["description"]})
        tasks["mc5"].append(name)
        names[name] = ("cmmlu", s)
    # GSM8K (5-shot, random shots from train) and GSM8K CoT (8 exemplars)
    g = {"train": os.path.join(DATA, "gsm8k", "train.jsonl"),
         "test": os.path.join(DATA, "gsm8k", "test.jsonl")}
    write_yaml("swgold_gsm8k", {"include": os.path.join(T, "gsm8k", "gsm8k.yaml"),
                                "task": "swgold_gsm8k", "dataset_path": "json",
                                "dataset_name": None, "dataset_kwargs": {"data_files": g}})
    write_yaml("swgold_gsm8k_cot", {"include": os.path.join(T, "gsm8k", "gsm8k-cot.yaml"),
                                    "task": "swgold_gsm8k_cot", "dataset_path": "json",
                                    "dataset_name": None, "dataset_kwargs": {"data_files": g}})
    tasks["gen"] += ["swgold_gsm8k", "swgold_gsm8k_cot"]
    names["swgold_gsm8k"] = ("gsm8k", "gsm8k")
    names["swgold_gsm8k_cot"] = ("gsm8k_cot", "gsm8k")
    # ARC- and HellaSwag-style
    write_yaml("swgold_arc", {"include": os.path.join(T, "arc", "arc_easy.yaml"),
                              "task": "swgold_arc", "dataset_path": "json", "dataset_name": None,
                              "validation_split": None,
                              "dataset_kwargs": {"data_files": {
                                  "train": os.path.join(DATA, "arc", "train.jsonl"),
                                  "test": os.path.join(DATA, "arc", "test.jsonl")}}})
    write_yaml("swgold_hellaswag", {"include": os.path.join(T, "hellaswag", "hellaswag.yaml"),
                                    "task": "swgold_hellaswag", "dataset_path": "json",
                                    "dataset_name": None,
                                    "dataset_kwargs": {"data_files": {
                                        "train": os.path.join(DATA, "hellaswag", "train.jsonl"),
                                        "validation": os.path.join(DATA, "hellaswag",
                                                                   "validation.jsonl")}}})
    tasks["mc2"] += ["swgold_arc", "swgold_hellaswag"]
    names["swgold_arc"] = ("arc", "arc")
    names["swgold_hellaswag"] = ("hellaswag", "hellaswag")
    return tasks, names


def run(lm, tmp, tasks, num_fewshot, gen_kwargs=None):
    from lm_eval.tasks import TaskManager
    return lm.simple_evaluate(model="hf", model_args=f"pretrained={MODEL},dtype=float32",
                              tasks=tasks, num_fewshot=num_fewshot, batch_size=1, device="cpu",
                              log_samples=True, task_manager=TaskManager(include_path=tmp),
                              gen_kwargs=gen_kwargs, random_seed=0, numpy_random_seed=1234,
                              torch_random_seed=1234, fewshot_random_seed=1234)


def main():
    if os.path.exists(os.path.join(HERE, "expected.json")) and os.environ.get("UPDATE_GOLDEN") != "1":
        sys.exit("test/golden/eval/expected.json exists: set UPDATE_GOLDEN=1 to regenerate")
    import lm_eval
    import transformers
    os.makedirs(MODEL, exist_ok=True)
    tok = build_tokenizer()
    build_model(tok.get_vocab_size(), tok.token_to_id("<|endoftext|>"))
    tmp = tempfile.mkdtemp(prefix="swgold_")
    try:
        tasks, names = make_tasks(tmp, lm_eval)
        out = {"lm_eval_version": lm_eval.__version__,
               "transformers_version": transformers.__version__, "max_gen_toks": GEN_TOKS,
               "tasks": {}}
        for group, k, gk in (("mc5", 5, None), ("gen", None, f"max_gen_toks={GEN_TOKS}"),
                             ("mc2", 2, None)):
            res = run(lm_eval, tmp, tasks[group], k, gk)
            for tname in tasks[group]:
                task, subject = names[tname]
                T = out["tasks"].setdefault(task, {"subjects": {}, "samples": []})
                T["subjects"][subject] = {m.split(",")[0] + ("," + m.split(",")[1]
                                                             if m.split(",")[1] != "none" else ""): v
                                          for m, v in res["results"][tname].items()
                                          if "," in m and "stderr" not in m}
                T["subjects"][subject]["n"] = res["n-samples"][tname]["effective"]
                for s in sorted(res["samples"][tname], key=lambda s: s["doc_id"]):
                    e = {"subject": subject, "index": s["doc_id"],
                         "prompt": s["arguments"][0][0] if isinstance(s["arguments"][0], (list, tuple))
                         else s["arguments"]["gen_args_0"]["arg_0"]}
                    if group == "gen":
                        e["response"] = s["resps"][0][0]
                        e["target"] = s["target"]
                        e["filtered"] = s["filtered_resps"]
                        e["exact_match"] = s["exact_match"]
                        e["filter"] = s["filter"]
                    else:
                        e["conts"] = [a[1] for a in s["arguments"]]
                        e["lls"] = [r[0][0] for r in s["resps"]]
                        e["is_greedy"] = [bool(r[0][1]) for r in s["resps"]]
                        e["acc"] = s["acc"]
                        if "acc_norm" in s:
                            e["acc_norm"] = s["acc_norm"]
                        e["target"] = s["target"]
                    T["samples"].append(e)
        # merge the two filters' sample entries of the generation tasks
        for task in ("gsm8k", "gsm8k_cot"):
            merged = {}
            for e in out["tasks"][task]["samples"]:
                m = merged.setdefault(e["index"], {k: v for k, v in e.items()
                                                   if k not in ("filtered", "exact_match",
                                                                "filter")})
                m[e["filter"]] = {"pred": e["filtered"][0] if isinstance(e["filtered"], list)
                                  else e["filtered"], "exact_match": e["exact_match"]}
            out["tasks"][task]["samples"] = [merged[k] for k in sorted(merged)]
        with open(os.path.join(HERE, "expected.json"), "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1, ensure_ascii=False, sort_keys=True)
            f.write("\n")
    finally:
        shutil.rmtree(tmp)
    print("wrote", os.path.join(HERE, "expected.json"))


if __name__ == "__main__":
    main()
