#!/usr/bin/env python3
"""compare — check an `sw-eval bench` output folder against lm-evaluation-harness's goldens
(test/golden/eval/expected.json, written by gen_eval.py). Standard library only.

Usage: compare.py [--limit N] [--server-text] EXPECTED.json OUT_DIR TASK[=GOLDEN_TASK] ...
(--limit N: only the golden items with index < N, for a run with --eval_limit N;
 --server-text: generated text came from an OpenAI server, whose text leaves out a trailing
 incomplete UTF-8 character that transformers' decode writes as U+FFFD: accept that difference)

For every golden item of each task (matched by subject and index = row of the test file):
  - the prompt sw built is byte-for-byte the harness's context;
  - multiple choice: the same continuations, every choice's log-likelihood within 1e-4
    (|sw - hf| <= 1e-4 * max(1, |hf|)), the same predicted choice, the same acc / acc_norm;
  - generation: the same generated text, the same strict-match and flexible-extract answers
    and exact_match scores;
and per subject the same accuracy. Prints one line per failure and a summary; exits 1 on any.
"""
import json
import os
import sys

TOL = 1e-4


def main():
    args = sys.argv[1:]
    limit, server_text = None, False
    while args[:1] in (["--limit"], ["--server-text"]):
        if args[0] == "--limit":
            limit, args = int(args[1]), args[2:]
        else:
            server_text, args = True, args[1:]
    if len(args) < 3:
        sys.exit(__doc__)
    exp = json.load(open(args[0], encoding="utf-8"))
    out = args[1]
    fails, checked, worst = [], 0, 0.0
    for spec in args[2:]:
        task, gtask = (spec.split("=", 1) + [spec])[:2] if "=" in spec else (spec, spec)
        g = exp["tasks"][gtask]
        path = os.path.join(out, f"samples_{task}.jsonl")
        mine = {}
        with open(path, encoding="utf-8") as f:
            for line in f:
                s = json.loads(line)
                mine[(s["subject"], s["index"])] = s
        per_subj = {}
        for e in g["samples"]:
            if limit is not None and e["index"] >= limit:
                continue
            key = (e["subject"], e["index"])
            s = mine.get(key)
            where = f"{task} {key[0]}[{key[1]}]"
            if s is None:
                fails.append(f"{where}: missing in {path}")
                continue
            checked += 1
            if s["prompt"] != e["prompt"]:
                fails.append(f"{where}: prompt differs\n  sw: {s['prompt']!r}\n  hf: {e['prompt']!r}")
            if "lls" in e:
                lls = s["loglikelihoods"]
                if len(lls) != len(e["lls"]):
                    fails.append(f"{where}: {len(lls)} choices, harness {len(e['lls'])}")
                    continue
                for c, (a, b) in enumerate(zip(lls, e["lls"])):
                    d = abs(a - b) / max(1.0, abs(b))
                    worst = max(worst, d)
                    if d > TOL:
                        fails.append(f"{where}: choice {c} log-likelihood {a:.8f}, harness {b:.8f}")
                pa = max(range(len(lls)), key=lambda i: (lls[i], -i))
                pb = max(range(len(e["lls"])), key=lambda i: (e["lls"][i], -i))
                if pa != pb:
                    fails.append(f"{where}: predicted choice {pa}, harness {pb}")
                if s["acc"] != e["acc"]:
                    fails.append(f"{where}: acc {s['acc']}, harness {e['acc']}")
                if "acc_norm" in e and s.get("acc_norm") != e["acc_norm"]:
                    fails.append(f"{where}: acc_norm {s.get('acc_norm')}, harness {e['acc_norm']}")
                if [bool(x) for x in s["is_greedy"]] != e["is_greedy"]:
                    fails.append(f"{where}: is_greedy {s['is_greedy']}, harness {e['is_greedy']}")
                per_subj.setdefault(key[0], []).append(s["acc"])
            else:
                hf = e["response"].rstrip("\ufffd") if server_text else e["response"]
                if s["response"] != hf and not (server_text and s["response"].rstrip("\ufffd") == hf):
                    fails.append(f"{where}: generated {s['response']!r}\n  harness {e['response']!r}")
                for filt, k, m in (("strict-match", "pred", "strict_match"),
                                   ("flexible-extract", "pred_flexible", "flexible_extract")):
                    if s[k] != e[filt]["pred"]:
                        fails.append(f"{where}: {filt} answer {s[k]!r}, harness {e[filt]['pred']!r}")
                    if s[m] != e[filt]["exact_match"]:
                        fails.append(f"{where}: {filt} exact_match {s[m]}, harness "
                                     f"{e[filt]['exact_match']}")
        for subj, accs in per_subj.items() if limit is None else ():
            want = g["subjects"][subj]["acc"]
            got = sum(accs) / len(accs)
            if abs(got - want) > 1e-12:
                fails.append(f"{task} {subj}: acc {got}, harness {want}")
    for f in fails:
        print("FAIL", f)
    print(f"compared {checked} items; worst log-likelihood difference {worst:.3g}; "
          f"{len(fails)} failure(s)")
    sys.exit(1 if fails or checked == 0 else 0)


if __name__ == "__main__":
    main()
