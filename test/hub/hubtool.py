#!/usr/bin/env python3
"""hubtool — helpers for sw-fetch's tests around the mock hub (standard library, plus
huggingface_hub for the interop commands when it is installed).

    hubtool.py make-repos ROOT            build the test repos (deterministic bytes) under ROOT
    hubtool.py start ROOT PORTFILE LOG [WATCH_PID]
                                          start mock_hub.py in the background, wait until it listens,
                                          print its pid (it exits by itself once WATCH_PID is gone)
    hubtool.py stat PORTFILE KEY          one counter of /_mock/stats (range_starts as "path:start ...")
    hubtool.py reset PORTFILE             forget the mock's fault counters and stats
    hubtool.py ids FILE                   "<sha256> <git blob sha1>" of a file
    hubtool.py hf-snapshot REPO [--offline] [--local-dir D] [--type model|dataset]
                                          huggingface_hub.snapshot_download; prints the folder and
                                          "sha256 path" for every file in it
"""
import hashlib
import json
import os
import random
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def make_repos(root):
    rnd = random.Random(1234)
    blob = rnd.randbytes
    m = os.path.join(root, "models", "org")
    d = os.path.join(root, "datasets", "org")
    # A small model: plain files, an LFS file, a nested folder.
    write(f"{m}/tiny/config.json", b'{"model_type": "llama", "hidden_size": 8}\n')
    write(f"{m}/tiny/tokenizer.json", b'{"version": "1.0", "model": {"type": "BPE"}}\n')
    write(f"{m}/tiny/model.safetensors", blob(300_000))
    write(f"{m}/tiny/sub/readme.txt", b"nested file\n")
    write(f"{m}/tiny/sub/deeper/notes.md", b"# notes\n")
    # Faults: a connection dropped mid-file, 429 with Retry-After, a 503.
    write(f"{m}/faults/big.bin", blob(3_000_000))
    write(f"{m}/faults/rl.json", b'{"rate": "limited"}\n')
    write(f"{m}/faults/s503.txt", b"service unavailable once\n")
    write(f"{m}/faults/.mock.json", json.dumps({"faults": {
        "big.bin": {"drop_after": 1_000_000},
        "rl.json": {"status": 429, "retry_after": 1, "times": 2},
        "s503.txt": {"status": 503, "times": 1}}}).encode())
    # Wrong bytes for what the listing publishes (LFS and plain).
    write(f"{m}/corrupt/bad.bin", blob(200_000))
    write(f"{m}/corrupt/bad.txt", b"this text will arrive altered\n")
    write(f"{m}/corrupt/good.txt", b"fine\n")
    write(f"{m}/corrupt/.mock.json", json.dumps({"faults": {"bad.bin": {"corrupt": True},
                                                            "bad.txt": {"corrupt": True}}}).encode())
    # Names that escape the target.
    write(f"{m}/evil/ok.txt", b"ok\n")
    write(f"{m}/evil/.mock.json", json.dumps({"extra": [{"path": "../../evil.txt", "content": "pwned"}]}).encode())
    write(f"{m}/abs/ok.txt", b"ok\n")
    write(f"{m}/abs/.mock.json", json.dumps({"extra": [{"path": "/tmp/sw-fetch-abs-evil.txt", "content": "pwned"}]}).encode())
    # Gated, with an LFS file (so the token's trip to the CDN can be checked).
    write(f"{m}/gated/config.json", b'{"gated": true}\n')
    write(f"{m}/gated/weights.safetensors", blob(50_000))
    write(f"{m}/gated/.mock.json", json.dumps({"gated": True, "tokens": ["hf_good_token"]}).encode())
    # A file served slowly (tests interrupt it).
    write(f"{m}/slow/w.bin", blob(2_000_000))
    write(f"{m}/slow/.mock.json", b"{}")
    # Many files in folders: the tree API pages (50 entries a page).
    for i in range(120):
        write(f"{m}/many/part{i // 40}/file{i:03d}.txt", f"file {i}\n".encode() * (i + 1))
    # A dataset.
    write(f"{d}/data/train.jsonl", b'{"text": "a"}\n{"text": "b"}\n')
    write(f"{d}/data/test.jsonl", b'{"text": "c"}\n')
    write(f"{d}/data/data/shard-0.parquet", blob(20_000))


def port(portfile):
    with open(portfile) as f:
        return json.load(f)["port"]


def start(root, portfile, log, watch_pid=None):
    if os.path.exists(portfile):
        os.unlink(portfile)
    cmd = [sys.executable, os.path.join(HERE, "mock_hub.py"), "--root", root, "--port-file", portfile]
    if watch_pid:
        cmd += ["--watch-pid", str(watch_pid)]
    with open(log, "ab") as lf:
        p = subprocess.Popen(cmd, stdout=lf, stderr=lf, stdin=subprocess.DEVNULL,
                             start_new_session=True)
    for _ in range(200):
        if os.path.exists(portfile):
            print(p.pid)
            return
        if p.poll() is not None:
            sys.exit(f"mock hub exited with {p.returncode} (see {log})")
        time.sleep(0.05)
    p.kill()
    sys.exit("mock hub did not start")


def get(portfile, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port(portfile)}{path}", timeout=10) as r:
        return json.load(r)


def stat(portfile, key):
    s = get(portfile, "/_mock/stats")
    if key == "range_starts":
        print(" ".join(f"{p}:{n}" for p, n in s["range_starts"]))
    elif key.startswith("by_path:"):
        print(s["by_path"].get(key[8:], 0))
    else:
        print(s.get(key, 0))


def ids(path):
    data = open(path, "rb").read()
    g = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    print(hashlib.sha256(data).hexdigest(), g)


def hf_snapshot(args):
    from huggingface_hub import snapshot_download
    repo, offline, local_dir, rtype = args[0], "--offline" in args, None, "model"
    if "--local-dir" in args:
        local_dir = args[args.index("--local-dir") + 1]
    if "--type" in args:
        rtype = args[args.index("--type") + 1]
    folder = snapshot_download(repo, repo_type=rtype, local_files_only=offline, local_dir=local_dir)
    print(folder)
    for d, dirs, files in sorted(os.walk(folder)):
        dirs[:] = sorted(x for x in dirs if x != ".cache")
        for f in sorted(files):
            p = os.path.join(d, f)
            print(hashlib.sha256(open(p, "rb").read()).hexdigest(), os.path.relpath(p, folder))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "make-repos":
        make_repos(args[0])
    elif cmd == "start":
        start(*args)
    elif cmd == "stat":
        stat(*args)
    elif cmd == "reset":
        get(args[0], "/_mock/reset")
    elif cmd == "ids":
        ids(args[0])
    elif cmd == "hf-snapshot":
        hf_snapshot(args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
