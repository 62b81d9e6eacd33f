#!/usr/bin/env python3
"""Builds the quick-start demo's bundled data (run once; outputs are committed).

1. data/tinyshakespeare/tinyshakespeare.jsonl.gz: Tiny Shakespeare split into speeches (blank-line
   separated blocks), one {"text": ...} per line, for pre-training with sw-pack's text format.
2. data/tokenizers/demo-bpe2k/: a 2,048-token byte-level BPE tokenizer (HF tokenizer.json, made with
   the Python `tokenizers` package) trained on Tiny Shakespeare + the bundled Alpaca sample, with
   ChatML special tokens and a ChatML chat_template, so a model small enough to train on two CPU
   cores in minutes still uses the real tokenizer.json code path and the chat template machinery.

usage: python3 scripts/make_demo_data.py /path/to/tinyshakespeare/input.txt
"""
import gzip
import json
import os
import sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def write_gz(path, data: bytes):
    with open(path, "wb") as f, gzip.GzipFile(filename="", mode="wb", fileobj=f, compresslevel=9, mtime=0) as g:
        g.write(data)


def speeches(text):
    for block in text.split("\n\n"):
        block = block.strip("\n")
        if block:
            yield block


def main():
    src = sys.argv[1]
    text = open(src, encoding="utf-8").read()
    rows = [json.dumps({"text": s}, ensure_ascii=False) + "\n" for s in speeches(text)]
    write_gz(os.path.join(ROOT, "data/tinyshakespeare/tinyshakespeare.jsonl.gz"), "".join(rows).encode())

    alpaca = [json.loads(l) for l in gzip.open(os.path.join(ROOT, "data/alpaca_en/alpaca_sample.jsonl.gz"), "rt")]
    corpus = list(speeches(text)) + [" ".join([r["instruction"], r["input"], r["output"]]) for r in alpaca]
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2048, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer=trainer)
    out = os.path.join(ROOT, "data/tokenizers/demo-bpe2k")
    tok.save(os.path.join(out, "tokenizer.json"))
    chat_template = (
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content']"
        " + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": None, "eos_token": "<|im_end|>",
           "pad_token": "<|endoftext|>", "unk_token": None, "model_max_length": 512,
           "add_bos_token": False, "add_eos_token": False, "chat_template": chat_template}
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
