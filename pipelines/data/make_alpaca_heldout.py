#!/usr/bin/env python3
"""Writes alpaca-heldout/alpaca_heldout.jsonl: Stanford Alpaca records 2000-2049 (the 50 records
right after the 2,000 of data/alpaca_en/alpaca_sample.jsonl.gz, so none of them is trained on),
each rendered as sw-pack renders an alpaca row with the ChatML template and no system prompt
(docs/pack.md): {"text": "<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n{a}<|im_end|>\n"}
with q = instruction + "\n" + input when input is not empty. sw-eval bench's perplexity task
(`--eval_dataset ppl --dataset_dir pipelines/data/alpaca-heldout`) scores these texts.

usage: python3 make_alpaca_heldout.py alpaca_data.json.gz   (the full 52,002-record file)
"""
import gzip
import json
import sys

rows = json.load(gzip.open(sys.argv[1]))[2000:2050]
with open("alpaca-heldout/alpaca_heldout.jsonl", "w", encoding="utf-8", newline="\n") as f:
    for r in rows:
        q = r["instruction"] + ("\n" + r["input"] if r["input"] else "")
        text = f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n{r['output']}<|im_end|>\n"
        f.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
