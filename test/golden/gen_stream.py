#!/usr/bin/env python3
"""gen_stream.py - writes the sws fixtures under test/golden/stream/ with Python msgpack only.

It is an independent implementation of docs/stream.md (no sw code involved), which proves the
format can be written outside sw, and it writes, next to each fixture, the JSON lines
`sw-pack cat` must print for it (`<name>.expect.jsonl`, and `<name>.full.jsonl` for --full),
computed here from the values themselves.

    UPDATE_GOLDEN=1 python3 test/golden/gen_stream.py   # regenerate the committed files
    python3 test/golden/gen_stream.py                   # check the committed files are current
    python3 test/golden/gen_stream.py --emit NAME       # write fixture NAME to stdout

Requires: pip install msgpack. Deterministic: the same bytes on every run.
"""
import hashlib
import json
import math
import os
import random
import struct
import sys

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "stream")

# ---- dtypes: name -> (struct code or None, element bytes, kind) --------------------------------
DTYPES = {
    "F32": ("f", 4, "float"), "F64": ("d", 8, "float"), "F16": ("e", 2, "float"),
    "BF16": (None, 2, "float"), "F8_E4M3": (None, 1, "float"), "F8_E5M2": (None, 1, "float"),
    "I8": ("b", 1, "int"), "U8": ("B", 1, "int"), "I16": ("h", 2, "int"), "U16": ("H", 2, "int"),
    "I32": ("i", 4, "int"), "U32": ("I", 4, "int"), "I64": ("q", 8, "int"), "U64": ("Q", 8, "int"),
    "BOOL": (None, 1, "bool"), "Q4": (None, 0, "int"),
}


def f32(x):
    """x rounded to float32."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def bf16_bits(x):
    """float -> bfloat16 bits, round to nearest even (exact for the values used here)."""
    b = struct.unpack("<I", struct.pack("<f", x))[0]
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) & 0xFFFF


def bf16_value(h):
    return struct.unpack("<f", struct.pack("<I", h << 16))[0]


def fp8_value(code, e4m3):
    """Decode an OCP fp8 byte (E4M3 'fn' or E5M2)."""
    sign = -1.0 if code & 0x80 else 1.0
    if e4m3:
        exp, man = (code >> 3) & 0xF, code & 7
        if exp == 15 and man == 7:
            return math.nan
        if exp == 0:
            return sign * man / 8 * 2.0 ** -6
        return sign * (1 + man / 8) * 2.0 ** (exp - 7)
    exp, man = (code >> 2) & 0x1F, code & 3
    if exp == 31:
        return sign * math.inf if man == 0 else math.nan
    if exp == 0:
        return sign * man / 4 * 2.0 ** -14
    return sign * (1 + man / 4) * 2.0 ** (exp - 15)


def fp8_code(x, e4m3):
    """The fp8 byte holding exactly x (the fixtures only use representable values)."""
    for c in range(256):
        v = fp8_value(c, e4m3)
        if v == x and math.copysign(1, v) == math.copysign(1, x):
            return c
    raise ValueError("%r is not exactly representable" % x)


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


class T:
    """A tensor: dtype name, shape and flat values; .msg() is its sws map."""

    def __init__(self, dtype, shape, values, pad=None):
        self.dtype, self.shape, self.values, self.pad = dtype, list(shape), list(values), pad
        assert len(self.values) == numel(self.shape)

    def data(self):
        code, _, _ = DTYPES[self.dtype]
        v = self.values
        if self.dtype == "BF16":
            return struct.pack("<%dH" % len(v), *[bf16_bits(x) for x in v])
        if self.dtype in ("F8_E4M3", "F8_E5M2"):
            return bytes(fp8_code(x, self.dtype == "F8_E4M3") for x in v)
        if self.dtype == "BOOL":
            return bytes(1 if x else 0 for x in v)
        if self.dtype == "Q4":
            out = bytearray((len(v) + 1) // 2)
            for i, x in enumerate(v):
                out[i // 2] |= (x & 15) << (4 * (i & 1))
            return bytes(out)
        return struct.pack("<%d%s" % (len(v), code), *v)

    def decoded(self):
        """Values as a reader sees them (float32/16 rounding applied)."""
        if self.dtype == "F32":
            return [f32(x) for x in self.values]
        if self.dtype == "BF16":
            return [bf16_value(bf16_bits(x)) for x in self.values]
        if self.dtype == "F16":
            return [struct.unpack("<e", struct.pack("<e", x))[0] for x in self.values]
        return list(self.values)

    def msg(self):
        m = {"dtype": self.dtype, "shape": self.shape}
        if self.pad is not None:
            m["pad"] = self.pad
        m["data"] = self.data()
        return m


# ---- expected `sw-pack cat` output ---------------------------------------------------------------

def jnum(x, kind):
    if kind == "bool":
        return bool(x)
    if kind == "float":
        if math.isnan(x):
            return "NaN"
        if math.isinf(x):
            return "Infinity" if x > 0 else "-Infinity"
        return float(x)
    return int(x)


def tensor_json(t, full):
    kind = DTYPES[t.dtype][2]
    out = {"dtype": t.dtype, "shape": t.shape}
    vals = t.decoded()
    if full:
        flat = [jnum(v, kind) for v in vals]

        def nest(dim, at):
            if dim == len(t.shape):
                return flat[at], at + 1
            row = []
            for _ in range(t.shape[dim]):
                v, at = nest(dim + 1, at)
                row.append(v)
            return row, at
        out["values"] = nest(0, 0)[0]
        return out
    if not vals:
        return out
    if kind == "float":
        ok = [v for v in vals if not math.isnan(v)]
        nan = len(vals) - len(ok)
        if ok:
            out["min"], out["max"], out["sum"] = jnum(min(ok), kind), jnum(max(ok), kind), jnum(sum(ok), kind)
        else:
            out["min"] = out["max"] = out["sum"] = "NaN"
        if nan:
            out["nan"] = nan
        return out
    ints = [int(v) for v in vals]
    out["min"], out["max"] = jnum(min(ints), kind), jnum(max(ints), kind)
    out["sum"] = sum(ints)
    return out


def to_json(v, full):
    if isinstance(v, T):
        return tensor_json(v, full)
    if isinstance(v, dict):
        return {k: to_json(x, full) for k, x in v.items()}
    if isinstance(v, list):
        return [to_json(x, full) for x in v]
    if isinstance(v, bytes):
        return {"bytes": len(v), "hex": v.hex()} if full else {"bytes": len(v)}
    return v


def to_msg(v):
    if isinstance(v, T):
        return v.msg()
    if isinstance(v, dict):
        return {k: to_msg(x) for k, x in v.items()}
    if isinstance(v, list):
        return [to_msg(x) for x in v]
    return v


# ---- the stream writer ---------------------------------------------------------------------------

def pack(rec):
    return msgpack.packb(to_msg(rec), use_bin_type=True)


def stream(stream_kind, records, meta=None, end=True):
    """Encode a whole stream: header, records, end (count + SHA-256 of every byte before it)."""
    header = {"kind": "header", "magic": "sws", "version": 1, "producer": "gen_stream.py 1",
              "stream_kind": stream_kind, "meta": meta or {}}
    out = bytearray(pack(header))
    for r in records:
        out += pack(r)
    if end:
        out += msgpack.packb({"kind": "end", "count": len(records),
                              "checksum": "sha256:" + hashlib.sha256(out).hexdigest()})
    return bytes(out), header


def expect_lines(data, header, records, full):
    lines = [header] + [to_json(r, full) for r in records]
    # The end record is re-read from the bytes: it is whatever the stream holds.
    unp = msgpack.Unpacker(raw=False)
    unp.feed(data)
    last = None
    for last in unp:
        pass
    lines.append(last)
    return "".join(json.dumps(x, ensure_ascii=False, separators=(",", ":")) + "\n" for x in lines)


# ---- fixture content -----------------------------------------------------------------------------

def samples():
    ids = [151644, 872, 198, 9707, 151645, 198]
    return [
        {"kind": "sample", "input_ids": T("I32", [6], ids),
         "labels": T("I32", [6], [-100, -100, -100, 9707, 151645, 198]),
         "position_ids": T("I32", [6], range(6)),
         "meta": {"source": "alpaca.jsonl:1", "lang": "zh", "weight": 0.5}},
        {"kind": "sample", "input_ids": T("I32", [4], [1, 2, 3, 4]),
         "loss_mask": T("U8", [4], [0, 0, 1, 1])},
        {"kind": "sample", "chosen_input_ids": T("I32", [3], [5, 6, 7]),
         "chosen_labels": T("I32", [3], [-100, 6, 7]),
         "rejected_input_ids": T("I32", [4], [5, 6, 8, 9]),
         "rejected_labels": T("I32", [4], [-100, 6, 8, 9]), "label": False},
        {"kind": "x-comment", "text": "extension records are skipped by readers: ✓",
         "payload": b"\x00\x01\xfe"},
    ]


def batches():
    # Padding-free packing: one row holding 3 samples, then 2 pad slots.
    return [
        {"kind": "batch", "input_ids": T("I32", [1, 10], [1, 2, 3, 4, 5, 6, 7, 8, 0, 0]),
         "labels": T("I32", [1, 10], [-100, 2, 3, -100, 5, -100, 7, 8, -100, -100]),
         "position_ids": T("I32", [1, 10], [0, 1, 2, 0, 1, 0, 1, 2, 0, 0]),
         "cu_seqlens": T("I32", [4], [0, 3, 5, 8]),
         "num_samples": 3, "num_tokens": 8, "num_loss_tokens": 5, "max_seqlen": 3},
        # Padded batch with an attention mask.
        {"kind": "batch", "input_ids": T("I32", [2, 3], [1, 2, 3, 4, 5, 0]),
         "labels": T("I32", [2, 3], [-100, 2, 3, -100, 5, -100]),
         "attention_mask": T("U8", [2, 3], [1, 1, 1, 1, 1, 0]),
         "num_samples": 2, "num_tokens": 5},
    ]


def tensors():
    ts = {
        "f32": T("F32", [2, 3], [0.1, -2.5, 3.0, 1e-3, 0.0, 7.25], pad=b"\x00\x00\x00"),
        "f64": T("F64", [3], [0.1, -1e300, 2.0 ** -40]),
        "f16": T("F16", [3], [0.5, -65504.0, 0.099975586]),
        "bf16": T("BF16", [4], [0.5, 1.0, -1.5, 3.0e38]),
        "f8_e4m3": T("F8_E4M3", [3], [448.0, -0.015625, 1.75]),
        "f8_e5m2": T("F8_E5M2", [3], [57344.0, -0.5, 3.0]),
        "i8": T("I8", [2], [-128, 127]), "u8": T("U8", [2], [0, 255]),
        "i16": T("I16", [2], [-32768, 32767]), "u16": T("U16", [2], [0, 65535]),
        "i32": T("I32", [2], [-2147483648, 2147483647]), "u32": T("U32", [2], [0, 4294967295]),
        "i64": T("I64", [2], [-(2 ** 62), 2 ** 62]), "u64": T("U64", [2], [0, 2 ** 40]),
        "bool": T("BOOL", [4], [True, False, True, True]),
        "q4": T("Q4", [5], [1, 15, 0, 7, 3]),
        "scalar": T("F32", [], [2.5]),
        "empty": T("F32", [0, 4], []),
        "special": T("F32", [4], [math.nan, math.inf, -math.inf, 1.0]),
    }
    return [{"kind": "tensors", "name": "all-dtypes", "tensors": ts, "meta": {"step": 0}}]


def weights():
    rng = random.Random(1234)
    vals = [rng.uniform(-1, 1) for _ in range(8192)]
    return [{"kind": "tensors", "name": "layer0", "tensors": {"w": T("F32", [64, 128], vals)}}]


FIXTURES = {
    "samples": ("samples", samples, {"dataset": "demo", "max_length": 2048, "template": "qwen2_5"}),
    "batches": ("packed_batches", batches, {"packing": True, "max_length": 10}),
    "tensors": ("tensors", tensors, {}),
    "weights": ("tensors", weights, {}),
}


def build():
    """name -> bytes for every committed file."""
    files = {}
    for name, (kind, make, meta) in FIXTURES.items():
        recs = make()
        data, header = stream(kind, recs, meta)
        files[name + ".sws"] = data
        if name != "weights":
            files[name + ".expect.jsonl"] = expect_lines(data, header, recs, False).encode()
            files[name + ".full.jsonl"] = expect_lines(data, header, recs, True).encode()
    # Broken streams derived from samples.sws.
    recs = samples()
    cut, _ = stream("samples", recs, FIXTURES["samples"][2], end=False)
    files["truncated.sws"] = cut  # no end record after 4 records
    whole = files["samples.sws"]
    files["cut.sws"] = whole[: len(cut) - 20]  # the stream ends inside record 4
    # Change labels[3] of the first sample (9707 -> 9706): still valid, caught by the checksum.
    bad = bytearray(whole)
    at = bad.index(struct.pack("<6i", -100, -100, -100, 9707, 151645, 198)) + 12
    bad[at] ^= 1
    files["corrupt.sws"] = bytes(bad)
    return files


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--emit":
        sys.stdout.buffer.write(build()[sys.argv[2] + ".sws"])
        return 0
    files = build()
    if os.environ.get("UPDATE_GOLDEN") == "1":
        os.makedirs(OUT, exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(OUT, name), "wb") as f:
                f.write(data)
        print("wrote %d files to %s" % (len(files), OUT))
        return 0
    stale = []
    for name, data in files.items():
        try:
            with open(os.path.join(OUT, name), "rb") as f:
                if f.read() != data:
                    stale.append(name)
        except FileNotFoundError:
            stale.append(name)
    if stale:
        print("gen_stream.py: stale or missing: %s (run with UPDATE_GOLDEN=1)" % " ".join(stale),
              file=sys.stderr)
        return 1
    print("all %d files current" % len(files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
