#!/usr/bin/env python3
"""check_hf.py — reads a folder `sw-quant quantize` wrote through the reference layouts'
unpacking (numpy re-implementations of the reference code paths, listed in README.md) and
compares the weights with the original model's.

Usage: check_hf.py gptq|fp8|nf4 QUANT_DIR ORIGINAL_DIR MAX_REL_ERR

gptq: quantization_config is GPTQ's (quant_method gptq, checkpoint_format gptq, bits,
  group_size, sym, desc_act false); every decoder linear has qweight/qzeros/scales/g_idx of the
  shapes AutoGPTQ's QuantLinear allocates; they unpack as GPTQModel / AutoGPTQ (and llama.cpp's
  convert_hf_to_gguf dequant_gptq) unpack them: shifts [0, bits, ...] along int32 words, zeros
  + 1 (v1 format), W = (scales[g_idx] * (q - zeros[g_idx])).T; the result is within
  MAX_REL_ERR (relative RMS) of the original weight.
fp8: quantization_config is compressed-tensors float-quantized; weight is F8_E4M3 and
  weight_scale [out, 1] or [1]; W = weight.float() * weight_scale (compressed-tensors'
  decompression) is within MAX_REL_ERR of the original.
nf4: quantization_config is bitsandbytes' (load_in_4bit, nf4, double quant); every linear has
  weight (uint8 [n/2, 1]) and weight.absmax / .quant_map / .nested_absmax / .nested_quant_map /
  .quant_state.bitsandbytes__nf4 (the JSON bitsandbytes' QuantState.as_dict(packed=True)
  writes); quant_map is the NF4 table and nested_quant_map bitsandbytes' create_dynamic_map()
  (recomputed here in float32); bitsandbytes' dequantize_4bit (absmax = nested_quant_map[q] *
  nested_absmax + nested_offset, W = quant_map[code] * absmax, high nibble first) is within
  MAX_REL_ERR of the original.
All: every other tensor is byte-identical to the original.
"""
import json
import os
import struct
import sys

import numpy as np


def load(path):
    raw = open(os.path.join(path, "model.safetensors"), "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[k] = (v["dtype"], v["shape"], raw[8 + n + b:8 + n + e])
    return out


def as_f32(dt, shape, buf):
    if dt == "F32":
        return np.frombuffer(buf, np.float32).reshape(shape)
    if dt == "F16":
        return np.frombuffer(buf, np.float16).astype(np.float32).reshape(shape)
    if dt == "BF16":
        return (np.frombuffer(buf, np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(shape)
    if dt == "F8_E4M3":
        b = np.frombuffer(buf, np.uint8).astype(np.int32)
        s, e, m = (b >> 7) & 1, (b >> 3) & 15, b & 7
        v = np.where(e == 0, m / 8.0 * 2.0 ** -6, (1 + m / 8.0) * 2.0 ** (e - 7))
        v = np.where((e == 15) & (m == 7), np.nan, v)
        return (np.where(s == 1, -v, v)).astype(np.float32).reshape(shape)
    raise SystemExit("FAIL dtype " + dt)


def fail(msg):
    print("FAIL " + msg)
    sys.exit(1)


def gptq_unpack(qweight, qzeros, scales, g_idx, bits):
    """GPTQModel / AutoGPTQ v1 unpacking (convert_hf_to_gguf.py dequant_gptq, numpy)."""
    pf = 32 // bits
    wf = np.arange(0, 32, bits, dtype=np.uint32)
    maxq = (1 << bits) - 1
    qz = qzeros.view(np.uint32)
    zeros = ((qz[:, :, None] >> wf[None, None, :]) & maxq).reshape(scales.shape)
    qw = qweight.view(np.uint32)
    w = ((qw[:, None, :] >> wf[None, :, None]) & maxq).reshape(qw.shape[0] * pf, qw.shape[1])
    zeros = zeros + 1
    return (scales[g_idx].astype(np.float32) * (w.astype(np.float32) - zeros[g_idx].astype(np.float32))).T


NF4 = np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
                -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
                0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
                0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0], np.float32)


def dynamic_map():
    """bitsandbytes.functional.create_dynamic_map(signed=True), float32 like torch."""
    data = []
    for i in range(7):
        steps = 2 ** i + 1
        start, end = np.float32(0.1), np.float32(1.0)
        step = (end - start) / np.float32(steps - 1)
        b = [start + step * np.float32(j) if j < steps // 2 else end - step * np.float32(steps - j - 1)
             for j in range(steps)]
        b = np.array(b, np.float32)
        means = (b[:-1] + b[1:]) / np.float32(2)
        sc = np.float32(10.0 ** (i - 6))
        data += list(sc * means) + list(-sc * means)
    data += [0.0, 1.0]
    return np.sort(np.array(data, np.float32))


def nf4_dequant(q, name):
    qs = json.loads(bytes(q[name + ".quant_state.bitsandbytes__nf4"][2]).decode())
    qmap = np.frombuffer(q[name + ".quant_map"][2], np.float32)
    nqmap = np.frombuffer(q[name + ".nested_quant_map"][2], np.float32)
    if not np.array_equal(qmap, NF4):
        fail(name + ".quant_map is not the NF4 table")
    if not np.array_equal(nqmap, dynamic_map()):
        fail(name + ".nested_quant_map is not create_dynamic_map()")
    for k, v in (("quant_type", "nf4"), ("blocksize", 64), ("nested_blocksize", 256), ("nested_dtype", "float32")):
        if qs.get(k) != v:
            fail(f"{name} quant_state {k} = {qs.get(k)}")
    shape = qs["shape"]
    n = shape[0] * shape[1]
    qabs = np.frombuffer(q[name + ".absmax"][2], np.uint8)
    nabs = np.frombuffer(q[name + ".nested_absmax"][2], np.float32)
    absmax = nqmap[qabs] * np.repeat(nabs, 256)[:len(qabs)] + np.float32(qs["nested_offset"])
    packed = np.frombuffer(q[name][2], np.uint8)
    codes = np.stack([packed >> 4, packed & 15], axis=1).reshape(-1)[:n]
    return (NF4[codes] * np.repeat(absmax, 64)[:n]).reshape(shape)


def main():
    kind, qdir, odir, tol = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    q, o = load(qdir), load(odir)
    qc = json.load(open(os.path.join(qdir, "config.json")))["quantization_config"]
    worst, nq = 0.0, 0
    for name, (dt, shape, buf) in o.items():
        base = name[:-len(".weight")] if name.endswith(".weight") else name
        if kind == "gptq" and base + ".qweight" in q:
            if qc["quant_method"] != "gptq" or qc["checkpoint_format"] != "gptq" or qc["desc_act"]:
                fail("quantization_config " + json.dumps(qc))
            bits, g = qc["bits"], qc["group_size"]
            out, inn = shape
            g = inn if g == -1 else g
            qw = np.frombuffer(q[base + ".qweight"][2], np.int32).reshape(q[base + ".qweight"][1])
            qz = np.frombuffer(q[base + ".qzeros"][2], np.int32).reshape(q[base + ".qzeros"][1])
            sc = np.frombuffer(q[base + ".scales"][2], np.float16).reshape(q[base + ".scales"][1])
            gi = np.frombuffer(q[base + ".g_idx"][2], np.int32).reshape(q[base + ".g_idx"][1])
            want = {"qweight": [inn * bits // 32, out], "qzeros": [inn // g, out * bits // 32],
                    "scales": [inn // g, out], "g_idx": [inn]}
            for k, s in want.items():
                if q[base + "." + k][1] != s:
                    fail(f"{base}.{k} shape {q[base + '.' + k][1]}, want {s}")
            if not np.array_equal(gi, np.arange(inn) // g):
                fail(base + ".g_idx")
            w = gptq_unpack(qw, qz, sc, gi, bits)
        elif kind == "nf4" and name + ".quant_state.bitsandbytes__nf4" in q:
            if qc["quant_method"] != "bitsandbytes" or not qc["load_in_4bit"] or qc["bnb_4bit_quant_type"] != "nf4" \
                    or not qc["bnb_4bit_use_double_quant"]:
                fail("quantization_config " + json.dumps(qc))
            if q[name][0] != "U8" or q[name][1] != [(shape[0] * shape[1] + 1) // 2, 1]:
                fail(f"{name}: {q[name][0]} {q[name][1]}")
            w = nf4_dequant(q, name)
        elif kind == "fp8" and name in q and q[name][0] == "F8_E4M3":
            if qc["quant_method"] != "compressed-tensors" or qc["format"] != "float-quantized":
                fail("quantization_config " + json.dumps(qc))
            sdt, sshape, sbuf = q[base + ".weight_scale"]
            if sshape not in ([shape[0], 1], [1]):
                fail(f"{base}.weight_scale shape {sshape}")
            w = as_f32(*q[name]) * as_f32(sdt, sshape, sbuf)
        else:
            if name not in q or q[name] != (dt, shape, buf):
                fail(name + " changed")
            continue
        ref = as_f32(dt, shape, buf)
        err = float(np.sqrt(np.mean((w - ref) ** 2)) / np.sqrt(np.mean(ref ** 2)))
        if not err <= tol:
            fail(f"{name}: relative RMS error {err:.4f} > {tol}")
        worst, nq = max(worst, err), nq + 1
    print(f"ok {kind}: {nq} weights through the reference unpacking, worst relative error {worst:.4f}; "
          f"other tensors byte-identical")


if __name__ == "__main__":
    main()
