#!/usr/bin/env python3
"""gen_quant.py — reference blocks for sw's ggml quantizers and dequantizers, written by the
PyPI `gguf` package (gguf-py, llama.cpp's own Python library), into one GGUF file that sw's
reader then has to parse: test/golden/quant/blocks.gguf.

Usage: pip install gguf numpy; python3 test/golden/quant/gen_quant.py   (UPDATE_GOLDEN=1 is
implied: the script only writes the golden file.)

Contents (every tensor 2-D, rows of 256 elements):
  x.<case>             F32 inputs: normal data at several scales, a row with an outlier, an
                       all-zero row, constant rows, rows whose largest magnitude is negative,
                       ties for the largest magnitude, tiny values near the f16 subnormal range
  <type>.<case>        gguf.quants.quantize(x.<case>, <type>) for Q8_0, Q4_0, Q4_1, Q5_0, Q5_1
                       (gguf-py states these are bit-exact with ggml's reference quantizers);
                       sw's quantizer must give the same bytes
  blk.<type>           random blocks of <type> (every byte random except the f16 scales,
                       which are random finite halves) for Q4_0 .. Q6_K, Q2_K and Q3_K
  deq.<type>           gguf.quants.dequantize(blk.<type>) as F32; sw's dequantizer must give
                       exactly these floats

The test that reads it is test/unit/test_quant_blocks.c. gguf-py code paths used:
gguf/quants.py (`quantize`, `dequantize`, classes Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K .. Q6_K)
and gguf/gguf_writer.py (`GGUFWriter.add_tensor` with raw_dtype).
"""
import os
import sys

import numpy as np

try:
    import gguf
    from gguf import GGMLQuantizationType as T
    from gguf.quants import quantize, dequantize
except ImportError:
    sys.exit("gen_quant.py needs `pip install gguf numpy`")

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "blocks.gguf")
rng = np.random.default_rng(20260101)
N = 256


def cases():
    c = {}
    c["normal"] = rng.standard_normal((8, N)).astype(np.float32) * 0.02
    c["wide"] = (rng.standard_normal((4, N)) * np.exp(rng.uniform(-8, 4, (4, 1)))).astype(np.float32)
    out = rng.standard_normal((2, N)).astype(np.float32) * 0.01
    out[0, 17] = 3.0
    out[1, 200] = -5.0
    c["outlier"] = out
    c["zero"] = np.zeros((1, N), np.float32)
    c["const"] = np.stack([np.full(N, 0.5, np.float32), np.full(N, -0.25, np.float32)])
    neg = rng.uniform(-1, 1, (2, N)).astype(np.float32)
    neg[:, ::32] = -1.5  # the largest magnitude of every 32-block is negative
    c["negmax"] = neg
    tie = rng.uniform(-1, 1, (1, N)).astype(np.float32)
    tie[0, 3], tie[0, 9] = 2.0, -2.0  # equal magnitudes: the first one wins
    c["tie"] = tie
    c["tiny"] = (rng.standard_normal((2, N)) * 1e-6).astype(np.float32)
    c["uniform"] = rng.uniform(-3, 3, (4, N)).astype(np.float32)
    return c


def random_blocks(qtype, nblocks):
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, (nblocks, size), dtype=np.uint8)
    # f16 fields: finite random halves (random bytes could be Inf/NaN, which tell nothing)
    def halves(n):
        h = (rng.standard_normal(n) * 0.05).astype(np.float16)
        return h.view(np.uint8).reshape(n, 2)
    offsets = {
        T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
        T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
    }[qtype]
    for off in offsets:
        raw[:, off:off + 2] = halves(nblocks)
    return raw, block


def main():
    w = gguf.GGUFWriter(OUT, "sw-quant-golden")
    w.add_string("sw.generator", "test/golden/quant/gen_quant.py")
    w.add_string("sw.gguf_version", getattr(gguf, "__version__", "unknown"))
    for name, x in cases().items():
        w.add_tensor("x." + name, x)
        for qt in (T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1):
            q = quantize(x, qt)
            w.add_tensor(f"{qt.name.lower()}.{name}", q, raw_shape=q.shape, raw_dtype=qt)
    for qt in (T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K):
        raw, block = random_blocks(qt, 16)
        nrow = 4
        q = raw.reshape(nrow, -1)
        d = dequantize(q, qt).astype(np.float32)
        assert np.all(np.isfinite(d))
        w.add_tensor("blk." + qt.name.lower(), q, raw_shape=q.shape, raw_dtype=qt)
        w.add_tensor("deq." + qt.name.lower(), d)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
