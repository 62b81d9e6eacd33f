#!/usr/bin/env python3
"""check-layers — the include rules of docs/architecture.md, checked over the #include lines.

Usage: scripts/check-layers.py [ROOT]   (ROOT defaults to the repository root)

Every lib/ layer folder is on the include path, so sources write `#include "sw_err.h"` and this
script finds which folder a header lives in by its file name (names are unique across lib/ and
kernels/; a duplicate is itself an error). The rules:

  1. lib/<layer>/ includes only headers of its own folder and of layers with a lower rank
     (LAYERS below); kernels/sw_kernels.h counts as rank KERNELS_RANK, so only layers above it
     drive the device.
  2. kernels/ includes only lib/core/ and kernels/ headers.
  3. Private headers are used only where they live: kernels/cpu/* and kernels/cuda/* only from
     their own folder, and any *_impl.h / *_internal.h only from its own folder (test/ and
     bench/ may include lib/'s private headers for white-box tests, never kernels/cpu|cuda ones).
  4. tools/<name>/ may include any lib/ header and kernels/sw_kernels.h, and its own folder's
     headers, never another tool's.
  5. No `#if(def) ... SW_CUDA` outside kernels/ (and the build): lib/ and tools/ reach the device
     through struct sw_backend only, so a CPU build and a CUDA build run the same code above it.

Exits 0 when clean, 1 listing every violation as `file:line: message`.
"""
import os
import re
import sys

# rank of each lib/ layer: a folder may include from its own folder and strictly lower ranks.
LAYERS = {
    "core": 0,
    "format": 1, "tok": 1, "hub": 1,
    "data": 2,
    "model": 3,
    "quant": 4,
    "infer": 5,
    "eval": 6,
    "train": 7,
}
KERNELS_RANK = 2.5  # between data and model: model code is the first to call the backend
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
CUDA_IF = re.compile(r'^\s*#\s*(if|ifdef|ifndef|elif)\b.*\bSW_CUDA\b')


def headers(root):
    """basename -> repository-relative path of every header under lib/ and kernels/."""
    found, dups = {}, []
    for top in ("lib", "kernels"):
        for d, _, files in os.walk(os.path.join(root, top)):
            for f in files:
                if f.endswith((".h", ".cuh")):
                    rel = os.path.relpath(os.path.join(d, f), root)
                    if f in found:
                        dups.append(f"{rel}: header name also used by {found[f]}")
                    found[f] = rel
    return found, dups


def place(rel):
    """(kind, folder) of a repository-relative path: kind is lib, kernels, tools or other."""
    parts = rel.split(os.sep)
    if parts[0] == "lib" and len(parts) >= 3:
        return "lib", parts[1]
    if parts[0] == "kernels":
        return "kernels", os.sep.join(parts[:-1])
    if parts[0] == "tools" and len(parts) >= 3:
        return "tools", parts[1]
    return "other", os.path.dirname(rel)


def rank_of(rel):
    kind, folder = place(rel)
    if kind == "lib":
        return LAYERS.get(folder)
    if rel == os.path.join("kernels", "sw_kernels.h"):
        return KERNELS_RANK
    return None


def private(rel):
    """The folder a private header belongs to, or None for a public header."""
    d, f = os.path.split(rel)
    if d in (os.path.join("kernels", "cpu"), os.path.join("kernels", "cuda")):
        return d
    if f.endswith(("_impl.h", "_internal.h")):
        return d
    return None


def check_include(src, hdr):
    """A message when source file src (relative path) must not include header hdr, else None."""
    owner = private(hdr)
    kind, folder = place(src)
    white_box = kind == "other" and not hdr.startswith("kernels")  # test/ may test internals
    if owner is not None and os.path.dirname(src) != owner and not white_box:
        return f"private header {hdr} is used only inside {owner}/"
    hkind, hfolder = place(hdr)
    if kind == "lib":
        mine = LAYERS.get(folder)
        if mine is None:
            return f"lib/{folder}/ is not a known layer (add it to scripts/check-layers.py)"
        if hkind == "lib" and hfolder == folder:
            return None
        theirs = rank_of(hdr)
        if theirs is None:
            return f"lib/{folder}/ may not include {hdr}"
        if theirs >= mine:
            return f"upward include: lib/{folder}/ (rank {mine}) includes {hdr} (rank {theirs})"
        return None
    if kind == "kernels":
        if hkind == "kernels" or (hkind == "lib" and hfolder == "core"):
            return None
        return f"kernels/ includes only lib/core/ and kernels/ headers, not {hdr}"
    if kind == "tools":
        if hkind == "tools" and hfolder != folder:
            return f"tools/{folder}/ includes another tool's header {hdr}"
        if hkind == "kernels" and hdr != os.path.join("kernels", "sw_kernels.h"):
            return f"tools/ reach the device only through kernels/sw_kernels.h, not {hdr}"
        return None
    return None


def sources(root):
    for top in ("lib", "kernels", "tools", "test", "bench"):
        for d, _, files in os.walk(os.path.join(root, top)):
            for f in sorted(files):
                if f.endswith((".c", ".h", ".cu", ".cuh")):
                    yield os.path.relpath(os.path.join(d, f), root)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    known, problems = headers(root)
    for src in sources(root):
        with open(os.path.join(root, src), encoding="utf-8", errors="replace") as fh:
            device_free = src.split(os.sep)[0] in ("lib", "tools")
            for n, line in enumerate(fh, 1):
                if device_free and CUDA_IF.match(line):
                    problems.append(f"{src}:{n}: #if on SW_CUDA outside kernels/ (use struct sw_backend)")
                m = INCLUDE.match(line)
                if not m:
                    continue
                name = os.path.basename(m.group(1))
                local = os.path.join(os.path.dirname(src), m.group(1))
                if os.path.exists(os.path.join(root, local)):
                    hdr = os.path.normpath(local)
                elif name in known:
                    hdr = known[name]
                else:
                    continue  # a test-only or generated header outside lib/ and kernels/
                msg = check_include(src, hdr)
                if msg:
                    problems.append(f"{src}:{n}: {msg}")
    for p in problems:
        print(p)
    if problems:
        print(f"check-layers: {len(problems)} violation(s); see docs/architecture.md", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
