#!/usr/bin/env python3
"""serve_bench — load generator for OpenAI-compatible servers (sw-serve, vLLM, ...), Python
standard library only, reporting what `vllm bench serve` reports.

Each concurrency level runs a fixed set of requests through C workers (vLLM's --max-concurrency
with an infinite request rate): every worker keeps one HTTP/1.1 keep-alive connection and sends
its next request as soon as the previous one finished. Requests are streaming completions
(`stream: true`, `stream_options.include_usage`), so per-token timing is seen by the client:

  TTFT  time from sending a request to its first token chunk
  ITL   time between consecutive token chunks of a request (sw-serve and vLLM send one chunk
        per token)
  TPOT  (e2e latency - TTFT) / (output tokens - 1), per request (vLLM's definition)
  E2E   time from sending a request to its last byte
and request throughput (req/s), output tokens/s and total (prompt + output) tokens/s over the
level's wall time. Output token counts come from the server's usage; `ignore_eos` makes every
request produce exactly its output length, as `vllm bench serve` does for random prompts.

Datasets:
  random   vLLM's random dataset: prompts of --random_input_len random token ids (sent as a
           token-id prompt, ids in [--random_vocab_lo, --random_vocab_hi)), --random_output_len
           output tokens each
  alpaca   Alpaca instructions (+ input) from data/alpaca_en/alpaca_sample.jsonl.gz as chat
           messages, output lengths uniform in [--alpaca_output_min, --alpaca_output_max]
           (default 128-512, a ShareGPT-like mix of long answers)

Examples:
  bench/serve_bench.py --base_url http://127.0.0.1:8000 --dataset random --max_concurrency 1 16 64 256
  bench/serve_bench.py --dataset alpaca --num_prompts 200 --max_concurrency 16 --markdown
"""
import argparse
import asyncio
import gzip
import json
import os
import random
import statistics
import sys
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def percentile(xs, p):
    """numpy's default (linear) percentile."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = (len(s) - 1) * p / 100.0
    f = int(k)
    c = min(f + 1, len(s) - 1)
    return s[f] + (s[c] - s[f]) * (k - f)


def load_alpaca(path, n, rng):
    rows = []
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    if not rows:
        sys.exit(f"serve_bench: no rows in {path}")
    out = []
    for i in range(n):
        r = rows[rng.randrange(len(rows))]
        text = r.get("instruction", "")
        if r.get("input"):
            text += "\n\n" + r["input"]
        out.append(text)
    return out


def make_requests(a, rng, max_model_len):
    """(endpoint path, body) per request."""
    reqs = []
    if a.dataset == "random":
        out_len = a.random_output_len
        in_len = a.random_input_len
        if max_model_len and in_len + out_len > max_model_len:
            sys.exit(f"serve_bench: input {in_len} + output {out_len} > max_model_len {max_model_len}")
        for _ in range(a.num_prompts):
            ids = [rng.randrange(a.random_vocab_lo, a.random_vocab_hi) for _ in range(in_len)]
            body = {"model": a.model, "prompt": ids, "max_tokens": out_len, "ignore_eos": True,
                    "temperature": a.temperature, "stream": True,
                    "stream_options": {"include_usage": True}}
            reqs.append(("/v1/completions", body))
    else:
        texts = load_alpaca(a.alpaca_path, a.num_prompts, rng)
        for t in texts:
            out_len = rng.randint(a.alpaca_output_min, a.alpaca_output_max)
            body = {"model": a.model, "messages": [{"role": "user", "content": t}],
                    "max_tokens": out_len, "ignore_eos": True, "temperature": a.temperature,
                    "stream": True, "stream_options": {"include_usage": True}}
            reqs.append(("/v1/chat/completions", body))
    return reqs


class Conn:
    """One keep-alive HTTP/1.1 connection with a chunked/SSE reader."""

    def __init__(self, host, port, headers):
        self.host, self.port, self.headers = host, port, headers
        self.r = self.w = None

    async def open(self):
        self.r, self.w = await asyncio.open_connection(self.host, self.port, limit=1 << 22)

    def close(self):
        if self.w:
            self.w.close()
        self.r = self.w = None

    async def stream(self, path, body):
        """Send one streaming request; returns (t_send, [chunk times with content], usage, error)."""
        if not self.w:
            await self.open()
        data = json.dumps(body).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n{self.headers}\r\n").encode()
        t0 = time.perf_counter()
        self.w.write(head + data)
        await self.w.drain()
        status_line = await self.r.readuntil(b"\r\n")
        status = int(status_line.split()[1])
        hdrs = {}
        while True:
            l = await self.r.readuntil(b"\r\n")
            if l == b"\r\n":
                break
            k, _, v = l.decode("latin-1").partition(":")
            hdrs[k.strip().lower()] = v.strip()
        times, usage, buf, err = [], None, b"", None
        if status != 200:
            n = int(hdrs.get("content-length", "0"))
            payload = await self.r.readexactly(n) if n else b""
            if hdrs.get("connection", "").lower() == "close":
                self.close()
            return t0, [], None, f"HTTP {status}: {payload[:200]!r}"
        chunked = hdrs.get("transfer-encoding", "").lower() == "chunked"
        done = False
        while not done:
            if chunked:
                size = int((await self.r.readuntil(b"\r\n")).split(b";")[0], 16)
                piece = await self.r.readexactly(size + 2)
                if size == 0:
                    break
                buf += piece[:-2]
            else:
                piece = await self.r.read(65536)
                if not piece:
                    break
                buf += piece
            now = time.perf_counter()
            while b"\n\n" in buf:
                ev, buf = buf.split(b"\n\n", 1)
                if not ev.startswith(b"data: "):
                    continue
                if ev == b"data: [DONE]":
                    done = True
                    continue
                o = json.loads(ev[6:])
                if "error" in o:
                    err = o["error"].get("message")
                if o.get("usage"):
                    usage = o["usage"]
                # a chunk per token (sw-serve and vLLM send one even when the token adds no
                # text yet); the chat stream's opening role chunk is not a token
                chs = o.get("choices", [])
                if chs and "role" not in chs[0].get("delta", {}):
                    times.append(now)
        if chunked and done:  # the terminating zero chunk after [DONE]
            size = int((await self.r.readuntil(b"\r\n")).split(b";")[0], 16)
            await self.r.readexactly(size + 2)
        if not chunked or hdrs.get("connection", "").lower() == "close":
            self.close()
        return t0, times, usage, err


async def run_level(a, reqs, concurrency):
    u = urllib.parse.urlparse(a.base_url)
    headers = f"Authorization: Bearer {a.api_key}\r\n" if a.api_key else ""
    queue = asyncio.Queue()
    for r in reqs:
        queue.put_nowait(r)
    results = []

    async def worker():
        c = Conn(u.hostname, u.port or 80, headers)
        while True:
            try:
                path, body = queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            try:
                t0, times, usage, err = await c.stream(path, body)
                t1 = time.perf_counter()
            except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                c.close()
                results.append({"error": repr(e)})
                continue
            results.append({"t0": t0, "t1": t1, "times": times, "usage": usage, "error": err,
                            "want": body["max_tokens"]})
        c.close()

    t_start = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    return results, time.perf_counter() - t_start


def summarize(results, wall):
    ok = [r for r in results if not r.get("error") and r.get("usage") and r["times"]]
    ttft = [(r["times"][0] - r["t0"]) * 1e3 for r in ok]
    e2e = [(r["t1"] - r["t0"]) * 1e3 for r in ok]
    itl, tpot = [], []
    for r in ok:
        ts = r["times"]
        itl += [(ts[i] - ts[i - 1]) * 1e3 for i in range(1, len(ts))]
        n = r["usage"]["completion_tokens"]
        if n > 1:
            tpot.append(((r["t1"] - r["t0"]) - (ts[0] - r["t0"])) * 1e3 / (n - 1))
    out_tok = sum(r["usage"]["completion_tokens"] for r in ok)
    in_tok = sum(r["usage"]["prompt_tokens"] for r in ok)
    short = sum(1 for r in ok if r["usage"]["completion_tokens"] != r["want"])
    stat = lambda xs: {"mean": statistics.fmean(xs) if xs else float("nan"),
                       "median": percentile(xs, 50), "p99": percentile(xs, 99)}
    return {
        "completed": len(ok), "failed": len(results) - len(ok), "short_outputs": short,
        "duration_s": wall, "input_tokens": in_tok, "output_tokens": out_tok,
        "request_throughput": len(ok) / wall, "output_throughput": out_tok / wall,
        "total_token_throughput": (in_tok + out_tok) / wall,
        "ttft_ms": stat(ttft), "tpot_ms": stat(tpot), "itl_ms": stat(itl), "e2el_ms": stat(e2e),
        "errors": sorted({r["error"] for r in results if r.get("error")})[:5],
    }


def print_result(s, label):
    w = 50
    print(f"{' Serving Benchmark Result ':=^{w}}")
    print(f"{'Run:':<40}{label}")
    print(f"{'Successful requests:':<40}{s['completed']:<10}")
    print(f"{'Failed requests:':<40}{s['failed']:<10}")
    print(f"{'Benchmark duration (s):':<40}{s['duration_s']:<10.2f}")
    print(f"{'Total input tokens:':<40}{s['input_tokens']:<10}")
    print(f"{'Total generated tokens:':<40}{s['output_tokens']:<10}")
    print(f"{'Request throughput (req/s):':<40}{s['request_throughput']:<10.2f}")
    print(f"{'Output token throughput (tok/s):':<40}{s['output_throughput']:<10.2f}")
    print(f"{'Total Token throughput (tok/s):':<40}{s['total_token_throughput']:<10.2f}")
    for key, title, name in (("ttft_ms", "Time to First Token", "TTFT"),
                             ("tpot_ms", "Time per Output Token (excl. 1st token)", "TPOT"),
                             ("itl_ms", "Inter-token Latency", "ITL"),
                             ("e2el_ms", "End-to-end Latency", "E2EL")):
        print(f"{title:-^{w}}")
        for k in ("mean", "median", "p99"):
            print(f"{(k.capitalize() if k != 'p99' else 'P99') + ' ' + name + ' (ms):':<40}{s[key][k]:<10.2f}")
    if s["errors"]:
        print("errors:", *s["errors"], sep="\n  ")
    print("=" * w)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base_url", default="http://127.0.0.1:8000")
    p.add_argument("--model", default=None, help="model name (default: the server's first)")
    p.add_argument("--api_key", default=os.environ.get("SW_API_KEY"))
    p.add_argument("--dataset", choices=["random", "alpaca"], default="random")
    p.add_argument("--num_prompts", type=int, default=0,
                   help="requests per level (default: max(32, 4 x concurrency))")
    p.add_argument("--max_concurrency", type=int, nargs="+", default=[1, 16, 64, 256])
    p.add_argument("--random_input_len", type=int, default=256)
    p.add_argument("--random_output_len", type=int, default=128)
    p.add_argument("--random_vocab_lo", type=int, default=0)
    p.add_argument("--random_vocab_hi", type=int, default=256,
                   help="random prompt ids are drawn below this (256: byte tokens, valid in any "
                        "byte-level vocabulary)")
    p.add_argument("--alpaca_path", default=os.path.join(HERE, "..", "data", "alpaca_en",
                                                         "alpaca_sample.jsonl.gz"))
    p.add_argument("--alpaca_output_min", type=int, default=128)
    p.add_argument("--alpaca_output_max", type=int, default=512)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write every level's numbers to this file")
    p.add_argument("--markdown", action="store_true", help="print a markdown table row per level")
    a = p.parse_args()

    auth = {"Authorization": f"Bearer {a.api_key}"} if a.api_key else {}
    models = json.load(urllib.request.urlopen(urllib.request.Request(
        a.base_url.rstrip("/") + "/v1/models", headers=auth)))
    if a.model is None:
        a.model = models["data"][0]["id"]
    max_model_len = next((m.get("max_model_len") for m in models["data"] if m["id"] == a.model), None)
    rows = []
    for c in a.max_concurrency:
        n = a.num_prompts or max(32, 4 * c)
        a_n = argparse.Namespace(**vars(a))
        a_n.num_prompts = n
        rng = random.Random(a.seed)
        reqs = make_requests(a_n, rng, max_model_len)
        # warm-up: one request, not counted
        asyncio.run(run_level(a_n, reqs[:1], 1))
        results, wall = asyncio.run(run_level(a_n, reqs, c))
        s = summarize(results, wall)
        s.update(dataset=a.dataset, concurrency=c, num_prompts=n, model=a.model)
        rows.append(s)
        print_result(s, f"{a.dataset}, concurrency {c}, {n} requests, model {a.model}")
        sys.stdout.flush()
    if a.markdown:
        print("\n| dataset | concurrency | requests | req/s | output tok/s | TTFT mean / p50 / p99 ms | "
              "TPOT mean / p50 / p99 ms | ITL mean / p50 / p99 ms | E2E mean / p50 / p99 ms |")
        print("|---|---:|---:|---:|---:|---|---|---|---|")
        f3 = lambda d: f"{d['mean']:.1f} / {d['median']:.1f} / {d['p99']:.1f}"
        for s in rows:
            print(f"| {s['dataset']} | {s['concurrency']} | {s['completed']} | "
                  f"{s['request_throughput']:.2f} | {s['output_throughput']:.1f} | {f3(s['ttft_ms'])} | "
                  f"{f3(s['tpot_ms'])} | {f3(s['itl_ms'])} | {f3(s['e2el_ms'])} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=2)
    bad = sum(s["failed"] + s["short_outputs"] for s in rows)
    if bad:
        print(f"serve_bench: {bad} failed or short requests", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
