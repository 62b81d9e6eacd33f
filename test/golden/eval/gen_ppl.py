#!/usr/bin/env python3
"""gen_ppl — lm-evaluation-harness's loglikelihood_rolling (HF backend) of the texts in
data/eval/ppl/demo.jsonl on test/golden/eval/model, with its own max_length (1024: one window per
text) and with max_length 8 (many disjoint windows), into test/golden/eval/expected_ppl.json:
the summed log-likelihood and token count of each text. Read by test/cli/eval-bench.bats
(sw-eval bench --eval_dataset ppl [--ppl_max_length 8]).

Run: UPDATE_GOLDEN=1 python3 test/golden/eval/gen_ppl.py  (pip install lm-eval torch transformers
accelerate; runs after gen_eval.py made the model)
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
OUT = os.path.join(HERE, "expected_ppl.json")


def main():
    if os.path.exists(OUT) and os.environ.get("UPDATE_GOLDEN") != "1":
        sys.exit(f"{OUT} exists: set UPDATE_GOLDEN=1 to regenerate")
    import lm_eval
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM
    texts = [json.loads(l)["text"] for l in open(os.path.join(ROOT, "data", "eval", "ppl", "demo.jsonl"),
                                               encoding="utf-8")]
    out = {"lm_eval_version": lm_eval.__version__, "texts": texts, "runs": {}}
    for ml in (None, 8):
        kw = {"max_length": ml} if ml else {}
        lm = HFLM(pretrained=os.path.join(HERE, "model"), dtype="float32", device="cpu",
                  batch_size=1, **kw)
        reqs = [Instance(request_type="loglikelihood_rolling", doc={}, arguments=(t,), idx=0)
                for t in texts]
        lls = lm.loglikelihood_rolling(reqs)
        ntok = [len(lm.tok_encode(t)) for t in texts]
        out["runs"][str(ml or lm.max_length)] = {"ll": [float(x) for x in lls], "tokens": ntok}
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
