#!/usr/bin/env python3
"""gen_gptq.py — reference GPTQ results for test/unit/test_gptq.c, and the AWQ packing golden.

GPTQ: a numpy (float64) transcription of AutoGPTQ's `GPTQ.fasterquant` (auto_gptq/quantization/
gptq.py; GPTQModel's `GPTQ.quantize` is the same algorithm) with its `Quantizer.find_params` /
`quantize` (auto_gptq/quantization/quantizer.py), kept in the reference's structure: dead columns,
act-order permutation, dampening by percdamp * mean(diag H), Cholesky -> cholesky_inverse ->
upper Cholesky, blocks of `blocksize` columns with the working copy W1 and the block-start W
that find_params reads, the lazy-batch update W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:], and g_idx
(i // group_size, permuted back with invperm under act-order, static_groups False).
One deliberate difference, also in sw: an asymmetric zero point is kept >= 1 (GPTQ v1 stores
zero - 1; see lib/quant/sw_gptq.h).

The layer: W [32, 192] ~ N(0, 1) with a few large columns; calibration inputs X [512, 192] with
correlated channels (X = Z @ A, A mixing neighbouring channels, channel scales spanning 30x), one
dead input channel (all zero); H = 2 X^T X / 512, stored as float32 (both sides use those
values).

Cases (name: bits, group_size, sym, desc_act, blocksize):
  g32_sym_act   4, 32, sym, act-order, 128
  g64_asym      4, 64, asym, no act-order, 64
  g32_stale     4, 32, sym, no act-order, 128 (groups starting inside a block: the stale W quirk)
  c8_sym        8, -1 (per row), sym, no act-order, 64
  g64_asym_act  4, 64, asym, act-order, 128 (a block boundary inside a group)
Each case stores <name>.q (U8 [32, 192]), .scales (F32 [ngroups, 32]), .zeros (I32),
.g_idx (I32 [192]), .deq (F32 [32, 192]); inputs W (F32) and H (F32).

AWQ packing: AutoAWQ's WQLinear_GEMM.from_linear (awq/modules/linear/gemm.py) transcribed:
intweight = round((W + zeros * scales) / scales.half()), transposed to [in, out], packed 8 per
int32 along out with order_map [0, 2, 4, 6, 1, 3, 5, 7]; qzeros the same over zeros [in/g, out];
scales f16 [in/g, out]. Inputs: codes awq.q (U8 [out, in]) and awq.scales (F32 [in/g, out]),
awq.zeros (I32 [in/g, out]); outputs awq.qweight, awq.qzeros (I32), awq.scales16 (F16).

Writes test/golden/quant/gptq.safetensors. Needs numpy. Deterministic (seeded).
"""
import json
import os
import struct
import sys

import numpy as np


def find_params(x, bits, sym):
    """Quantizer.find_params(x, weight=True) for x [rows, cols]: per-row scale and zero."""
    maxq = 2 ** bits - 1
    xmin = np.minimum(x.min(1), 0)
    xmax = np.maximum(x.max(1), 0)
    if sym:
        xmax = np.maximum(np.abs(xmin), xmax)
        tmp = xmin < 0
        xmin[tmp] = -xmax[tmp]
    tmp = (xmin == 0) & (xmax == 0)
    xmin[tmp] = -1
    xmax[tmp] = +1
    scale = (xmax - xmin) / maxq
    if sym:
        zero = np.full_like(scale, (maxq + 1) / 2)
    else:
        zero = np.round(-xmin / scale)
        zero = np.clip(zero, 1, maxq)  # sw's (documented) v1 fix; the reference has no clip
    return scale, zero


def quantize(x, scale, zero, maxq):
    q = np.clip(np.round(x / scale) + zero, 0, maxq)
    return scale * (q - zero), q


def fasterquant(W0, H0, bits, groupsize, sym, actorder, blocksize, percdamp=0.01):
    W = W0.astype(np.float64).copy()
    H = H0.copy()
    rows, columns = W.shape
    maxq = 2 ** bits - 1
    scale, zero = find_params(W, bits, sym)  # quantizer.find_params(W) before the loop
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    if actorder:
        perm = np.argsort(-np.diag(H), kind="stable")
        W = W[:, perm]
        H = H[perm][:, perm]
        invperm = np.argsort(perm)
    Q = np.zeros_like(W)
    Qi = np.zeros_like(W)
    damp = percdamp * np.mean(np.diag(H))
    H[np.arange(columns), np.arange(columns)] += damp
    L = np.linalg.cholesky(H)
    Hinv = np.linalg.inv(L).T @ np.linalg.inv(L)  # cholesky_inverse
    Hinv = np.linalg.cholesky(Hinv).T  # cholesky(upper=True)
    scales, zeros = [], []
    if groupsize == -1:
        scales.append(scale.copy())
        zeros.append(zero.copy())
    for i1 in range(0, columns, blocksize):
        i2 = min(i1 + blocksize, columns)
        count = i2 - i1
        W1 = W[:, i1:i2].copy()
        Q1 = np.zeros_like(W1)
        Qi1 = np.zeros_like(W1)
        Err1 = np.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        for i in range(count):
            w = W1[:, i]
            d = Hinv1[i, i]
            if groupsize != -1 and (i1 + i) % groupsize == 0:
                scale, zero = find_params(W[:, (i1 + i):(i1 + i + groupsize)], bits, sym)
                scales.append(scale.copy())
                zeros.append(zero.copy())
            q, qi = quantize(w, scale, zero, maxq)
            Q1[:, i] = q
            Qi1[:, i] = qi
            err1 = (w - q) / d
            W1[:, i:] -= np.outer(err1, Hinv1[i, i:])
            Err1[:, i] = err1
        Q[:, i1:i2] = Q1
        Qi[:, i1:i2] = Qi1
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]
    gs = groupsize if groupsize != -1 else columns
    g_idx = np.array([i // gs for i in range(columns)], np.int32)
    if actorder:
        Q = Q[:, invperm]
        Qi = Qi[:, invperm]
        g_idx = g_idx[invperm]
    return Q, Qi.astype(np.uint8), np.stack(scales), np.stack(zeros).astype(np.int32), g_idx


def awq_pack(intweight_oi, zeros, bits=4):
    """WQLinear_GEMM.from_linear's packing of codes [out, in] and zeros [in/g, out]."""
    pack_num = 32 // bits
    order_map = [0, 2, 4, 6, 1, 3, 5, 7]
    iw = intweight_oi.T.astype(np.int64)  # intweight.t(): [in, out]
    qweight = np.zeros((iw.shape[0], iw.shape[1] // 32 * bits), np.int64)
    for col in range(iw.shape[1] // pack_num):
        for i in range(pack_num):
            qweight[:, col] |= iw[:, col * pack_num + order_map[i]] << (i * bits)
    z = zeros.astype(np.int64)
    qzeros = np.zeros((z.shape[0], z.shape[1] // 32 * bits), np.int64)
    for col in range(z.shape[1] // pack_num):
        for i in range(pack_num):
            qzeros[:, col] |= z[:, col * pack_num + order_map[i]] << (i * bits)
    return qweight.astype(np.uint32).view(np.int32), qzeros.astype(np.uint32).view(np.int32)


def save(path, tensors):
    dt = {np.float32: "F32", np.float64: "F64", np.int32: "I32", np.uint8: "U8", np.float16: "F16"}
    hdr, blobs, off = {}, [], 0
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k])
        b = a.tobytes()
        hdr[k] = {"dtype": dt[a.dtype.type], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    rng = np.random.default_rng(20240611)
    out, inn, n = 32, 192, 512
    W = rng.standard_normal((out, inn)).astype(np.float32)
    W[:, [3, 77, 150]] *= 4
    Z = rng.standard_normal((n, inn))
    A = np.eye(inn) + 0.6 * np.eye(inn, k=1) + 0.3 * np.eye(inn, k=-2)
    X = Z @ A * np.exp(rng.uniform(-1.7, 1.7, inn))
    X[:, 9] = 0  # a dead input channel
    H = (2 * X.T @ X / n).astype(np.float32)
    t = {"W": W, "H": H}
    H = H.astype(np.float64)
    cases = [("g32_sym_act", 4, 32, True, True, 128), ("g64_asym", 4, 64, False, False, 64),
             ("g32_stale", 4, 32, True, False, 128), ("c8_sym", 8, -1, True, False, 64),
             ("g64_asym_act", 4, 64, False, True, 128)]
    for name, bits, g, sym, act, bs in cases:
        Q, Qi, sc, zr, gi = fasterquant(W, H, bits, g, sym, act, bs)
        t[name + ".q"] = Qi
        t[name + ".scales"] = sc.astype(np.float32)
        t[name + ".zeros"] = zr
        t[name + ".g_idx"] = gi
        t[name + ".deq"] = Q.astype(np.float32)
    # AWQ packing of codes/zeros/scales (out 32, in 192, group 64)
    q = rng.integers(0, 16, (out, inn)).astype(np.uint8)
    zeros = rng.integers(0, 16, (inn // 64, out)).astype(np.int32)
    scales = (rng.uniform(0.01, 0.1, (inn // 64, out))).astype(np.float32)
    s16 = scales.astype(np.float16)
    # from_linear re-derives the codes from the dequantized weight with f16 scales
    Wd = ((q.astype(np.float32).T.reshape(inn // 64, 64, out) - zeros[:, None, :]) * s16.astype(np.float32)[:, None, :]).reshape(inn, out).T
    iw = np.round((Wd.T.reshape(inn // 64, 64, out) + (zeros * s16.astype(np.float32))[:, None, :]) / s16.astype(np.float32)[:, None, :]).reshape(inn, out).T.astype(np.int32)
    assert (iw == q).all()
    qw, qz = awq_pack(iw, zeros)
    t.update({"awq.q": q, "awq.zeros": zeros, "awq.scales": scales, "awq.qweight": qw,
              "awq.qzeros": qz, "awq.scales16": s16})
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "gptq.safetensors")
    save(path, t)
    print("wrote", path)


if __name__ == "__main__":
    main()
