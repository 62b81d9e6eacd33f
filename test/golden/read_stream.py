#!/usr/bin/env python3
"""read_stream.py - an independent (Python msgpack) reader of sws streams, per docs/stream.md.

    python3 test/golden/read_stream.py FILE|-
        Verify the stream (header, record kinds, tensor sizes, end record count and checksum,
        nothing after the end) and print one JSON summary line; exit 1 with a message on the
        first problem. Used to check that streams written by sw are readable outside sw.
    python3 test/golden/read_stream.py --compare EXPECTED.jsonl ACTUAL.jsonl
        Compare two JSON-lines files (e.g. gen_stream.py's expectation and `sw-pack cat`
        output): same structure, same strings and integers, floats within 1e-6 relative.

Requires: pip install msgpack (only for verifying).
"""
import hashlib
import json
import math
import sys

SIZES = {"F32": 4, "F64": 8, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I8": 1, "U8": 1,
         "I16": 2, "U16": 2, "I32": 4, "U32": 4, "I64": 8, "U64": 8, "BOOL": 1}
KNOWN = ("sample", "batch", "tensors")


class Bad(Exception):
    pass


def check_tensor(t, what):
    if not isinstance(t, dict) or not {"dtype", "shape", "data"} <= set(t):
        raise Bad("%s is not a tensor map" % what)
    dt, shape, data = t["dtype"], t["shape"], t["data"]
    if dt != "Q4" and dt not in SIZES:
        raise Bad("%s: unknown dtype %r" % (what, dt))
    if not isinstance(shape, list) or len(shape) > 8 or \
            not all(isinstance(d, int) and d >= 0 for d in shape):
        raise Bad("%s: bad shape %r" % (what, shape))
    if not isinstance(data, bytes):
        raise Bad("%s: data is not bin" % what)
    n = 1
    for d in shape:
        n *= d
    want = (n + 1) // 2 if dt == "Q4" else n * SIZES[dt]
    if len(data) != want:
        raise Bad("%s: %s x %d elements needs %d bytes, data has %d" % (what, dt, n, want, len(data)))
    return t


def check_record(rec):
    kind = rec["kind"]
    if kind == "sample":
        if "input_ids" not in rec and "chosen_input_ids" not in rec:
            raise Bad("sample without input_ids")
    elif kind == "batch":
        if check_tensor(rec.get("input_ids"), "input_ids")["dtype"] != "I32":
            raise Bad("batch input_ids is not I32")
        if not isinstance(rec.get("num_samples"), int) or not isinstance(rec.get("num_tokens"), int):
            raise Bad("batch without num_samples/num_tokens")
    elif kind == "tensors":
        if not isinstance(rec.get("name"), str) or not isinstance(rec.get("tensors"), dict):
            raise Bad("tensors record without name/tensors")
        for k, t in rec["tensors"].items():
            check_tensor(t, "tensors." + k)
        return
    for k, v in rec.items():
        if isinstance(v, dict) and "dtype" in v:
            check_tensor(v, k)


def verify(data):
    import msgpack

    unp = msgpack.Unpacker(raw=False, strict_map_key=True)
    unp.feed(data)
    start, recs, kinds = 0, 0, {}
    header = end = None
    while True:
        try:
            rec = unp.unpack()
        except msgpack.OutOfData:
            break
        except Exception as e:  # malformed msgpack
            raise Bad("malformed msgpack at byte %d: %s" % (start, e))
        stop = unp.tell()
        if not isinstance(rec, dict) or not isinstance(rec.get("kind"), str):
            raise Bad("record at byte %d is not a map with a string kind" % start)
        kind = rec["kind"]
        if header is None:
            if kind != "header" or rec.get("magic") != "sws":
                raise Bad("not an sws stream")
            if not isinstance(rec.get("version"), int) or not 1 <= rec["version"] <= 1:
                raise Bad("unsupported version %r" % rec.get("version"))
            if not isinstance(rec.get("producer"), str) or not isinstance(rec.get("stream_kind"), str):
                raise Bad("header without producer/stream_kind")
            header = rec
        elif kind == "end":
            end = rec
            want = "sha256:" + hashlib.sha256(data[:start]).hexdigest()
            if rec.get("checksum") != want:
                raise Bad("checksum mismatch: %r, bytes hash to %s" % (rec.get("checksum"), want))
            if rec.get("count") != recs:
                raise Bad("end record counts %r records, read %d" % (rec.get("count"), recs))
            if stop != len(data):
                raise Bad("data after the end record at byte %d" % stop)
            break
        else:
            if kind not in KNOWN and not kind.startswith("x-"):
                raise Bad("unknown record kind %r" % kind)
            if kind in KNOWN:
                check_record(rec)
            recs += 1
            kinds[kind] = kinds.get(kind, 0) + 1
        start = stop
    if header is None:
        raise Bad("truncated stream: empty")
    if end is None:
        raise Bad("truncated stream: no end record after %d records" % recs)
    return {"ok": True, "producer": header["producer"], "stream_kind": header["stream_kind"],
            "records": recs, "kinds": kinds}


def close(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, int) and isinstance(b, int):
            return a == b
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-30)
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    return a == b


def compare(expected, actual):
    with open(expected) as f:
        want = [json.loads(x) for x in f]
    with open(actual) as f:
        got = [json.loads(x) for x in f]
    if len(want) != len(got):
        print("line count: expected %d, got %d" % (len(want), len(got)), file=sys.stderr)
        return 1
    for i, (w, g) in enumerate(zip(want, got)):
        if not close(w, g):
            print("line %d differs:\n  expected %s\n  got      %s" % (i + 1, json.dumps(w), json.dumps(g)),
                  file=sys.stderr)
            return 1
    return 0


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--compare":
        return compare(sys.argv[2], sys.argv[3])
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    path = sys.argv[1]
    data = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()
    try:
        print(json.dumps(verify(data), separators=(",", ":")))
    except Bad as e:
        print("read_stream.py: %s: %s" % (path, e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
