#!/usr/bin/env python3
"""check_calib.py — reads `sw-quant quantize --quant_method gptq|awq` folders through the
reference code's unpacking (numpy transcriptions) and compares model outputs.

  check_calib.py unpack QDIR ORIGINAL OUTDIR
      QDIR's quantization_config must be GPTQ's (quant_method gptq, checkpoint_format gptq, bits,
      group_size, desc_act, sym, static_groups false) or AutoAWQ's (quant_method awq, bits 4,
      zero_point true, version gemm). Every decoder linear has exactly the tensors the reference
      QuantLinear allocates, with their dtypes and shapes (GPTQ: qweight I32 [in*bits/32, out],
      qzeros I32 [in/g, out*bits/32], scales F16 [in/g, out], g_idx I32 [in]; AWQ: qweight I32
      [in, out/8], qzeros I32 [in/g, out/8], scales F16 [in/g, out]), g_idx values in range (and
      with desc_act false equal to i // group_size). The weights are unpacked as
        GPTQ: GPTQModel / AutoGPTQ v1 (llama.cpp's convert_hf_to_gguf dequant_gptq):
              shifts [0, bits, ...], zeros + 1, W = (scales[g_idx] * (q - zeros[g_idx])).T
        AWQ:  AutoAWQ awq/utils/packing_utils.py dequantize_gemm: unpack_awq (shifts along the
              int32 words), reverse_awq_order (AWQ_REVERSE_ORDER [0, 4, 1, 5, 2, 6, 3, 7]),
              & 15, W = ((q - zeros) * scales).T with scales / zeros repeated per group
      and written with every other tensor as OUTDIR (a float32 HF folder, config.json without
      quantization_config). Tensors other than the linears must be byte-identical to ORIGINAL's,
      except — for AWQ — the input / post-attention norm weights (and v_proj / up_proj biases),
      which carry AWQ's scales: they must be finite and differ from the original.
  check_calib.py closer FP.safetensors A.safetensors B.safetensors
      sw-eval logits outputs of the float model and of two quantized ones: prints the relative RMS
      logit error and the loss difference of each against FP; exits 1 unless A's logit error is
      below B's.
  check_calib.py same A_DIR B_DIR
      every decoder linear weight of two float folders is identical (sw-quant dequant --model
      against the reference unpacking above).
  check_calib.py imatrix ORIGINAL IM.gguf WITH.safetensors WITHOUT.safetensors
      IM.gguf read by gguf-py's GGUFReader: general.type imatrix, imatrix.chunk_count, every
      decoder linear's <blk.N.name>.in_sum2 / .counts; WITH / WITHOUT are `sw-quant dequant` of
      GGUF exports with and without it: the importance-weighted error
      sum_j (in_sum2_j / counts) (w_j - w^_j)^2 over the linears is lower with it (exit 1 otherwise).
"""
import json
import os
import shutil
import struct
import sys

import numpy as np

DT = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "I64": np.int64, "U8": np.uint8}
MODS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]


def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[k] = (v["dtype"], v["shape"], raw[8 + n + b:8 + n + e])
    return out


def arr(t):
    dt, shape, buf = t
    if dt == "BF16":
        return (np.frombuffer(buf, np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(shape)
    return np.frombuffer(buf, DT[dt]).reshape(shape)


def save(path, tensors):
    hdr, blobs, off = {}, [], 0
    for k, (dt, shape, b) in tensors.items():
        hdr[k] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def fail(msg):
    print("FAIL", msg)
    sys.exit(1)


def gptq_unpack(qweight, qzeros, scales, g_idx, bits):
    mask = (1 << bits) - 1
    wf = np.arange(0, 32, bits, dtype=np.uint32)
    qz = qzeros.view(np.uint32)
    zeros = ((qz[:, :, None] >> wf[None, None, :]) & mask).reshape(qz.shape[0], -1).astype(np.int64) + 1
    qw = qweight.view(np.uint32)
    w = ((qw[:, None, :] >> wf[None, :, None]) & mask).reshape(-1, qw.shape[1]).astype(np.int64)
    s = scales.astype(np.float32)
    return (s[g_idx] * (w - zeros[g_idx])).T


def awq_unpack(qweight, qzeros, scales, bits, g):
    order = [0, 4, 1, 5, 2, 6, 3, 7]
    shifts = np.arange(0, 32, bits, dtype=np.uint32)
    iw = (qweight.view(np.uint32)[:, :, None] >> shifts[None, None, :]).reshape(qweight.shape[0], -1)
    iz = (qzeros.view(np.uint32)[:, :, None] >> shifts[None, None, :]).reshape(qzeros.shape[0], -1)
    rev = np.arange(iw.shape[-1]).reshape(-1, 32 // bits)[:, order].reshape(-1)
    iw = (iw[:, rev] & 15).astype(np.int64)
    iz = (iz[:, rev] & 15).astype(np.int64)
    s = np.repeat(scales.astype(np.float32), g, axis=0)
    z = np.repeat(iz, g, axis=0)
    return ((iw - z) * s).T


def unpack(qdir, orig, outdir):
    cfg = json.load(open(os.path.join(qdir, "config.json")))
    qc = cfg.get("quantization_config") or fail("no quantization_config")
    awq = qc["quant_method"] == "awq"
    bits, g = qc["bits"], qc["group_size"]
    if awq:
        if (bits, qc.get("zero_point"), qc.get("version")) != (4, True, "gemm"):
            fail("AWQ config %s" % qc)
    else:
        if qc["quant_method"] != "gptq" or qc.get("checkpoint_format") != "gptq" or qc.get("static_groups"):
            fail("GPTQ config %s" % qc)
        for k in ("desc_act", "sym", "damp_percent", "true_sequential"):
            if k not in qc:
                fail("GPTQ config lacks " + k)
    q, o = load(os.path.join(qdir, "model.safetensors")), load(os.path.join(orig, "model.safetensors"))
    out, nlin, changed = {}, 0, 0
    for name, t in o.items():
        base = name[:-len(".weight")] if name.endswith(".weight") else None
        if base and any(base.endswith(m) for m in MODS) and ".layers." in base:
            W = arr(t).astype(np.float32)
            rows, cols = W.shape
            gg = g if g > 0 else cols
            ng = cols // gg
            want = ({"qweight": ("I32", [cols, rows // 8]), "qzeros": ("I32", [ng, rows // 8]),
                     "scales": ("F16", [ng, rows])} if awq else
                    {"qweight": ("I32", [cols * bits // 32, rows]), "qzeros": ("I32", [ng, rows * bits // 32]),
                     "scales": ("F16", [ng, rows]), "g_idx": ("I32", [cols])})
            got = {}
            for suf, (dt, shape) in want.items():
                k = base + "." + suf
                if k not in q or q[k][0] != dt or q[k][1] != shape:
                    fail("%s: %s, expected %s %s" % (k, q.get(k, ("missing", None))[:2], dt, shape))
                got[suf] = arr(q[k])
            if base + ".weight" in q:
                fail(base + ".weight is still there")
            if awq:
                Wq = awq_unpack(got["qweight"], got["qzeros"], got["scales"], bits, gg)
            else:
                gi = got["g_idx"]
                if gi.min() < 0 or gi.max() >= ng:
                    fail(base + ".g_idx out of range")
                if not qc["desc_act"] and not (gi == np.arange(cols) // gg).all():
                    fail(base + ".g_idx is not i // group_size without desc_act")
                if qc["desc_act"] and (np.bincount(gi, minlength=ng) != gg).any():
                    fail(base + ".g_idx groups are not all of group_size columns")
                Wq = gptq_unpack(got["qweight"], got["qzeros"], got["scales"], gi, bits)
            if not np.isfinite(Wq).all():
                fail(base + ": non-finite weights")
            rel = np.sqrt(((Wq - W) ** 2).mean() / (W ** 2).mean())
            if not awq and rel > 0.5:
                fail("%s: relative error %.3f" % (base, rel))
            out[name] = ("F32", [rows, cols], np.ascontiguousarray(Wq, np.float32).tobytes())
            nlin += 1
            continue
        if name not in q:
            fail(name + " missing")
        if q[name][2] != t[2]:
            scaled = awq and (name.endswith("layernorm.weight") or name.endswith("v_proj.bias")
                              or name.endswith("up_proj.bias"))
            if not scaled:
                fail(name + " differs from the original")
            if not np.isfinite(arr(q[name])).all():
                fail(name + " is not finite")
            changed += 1
        out[name] = q[name]
    if awq and changed == 0:
        fail("AWQ left every norm weight as it was")
    if len(q) != len(o) - nlin + nlin * (3 if awq else 4):
        fail("unexpected tensors: %d, expected %d" % (len(q), len(o) - nlin + nlin * (3 if awq else 4)))
    shutil.rmtree(outdir, ignore_errors=True)
    os.makedirs(outdir)
    save(os.path.join(outdir, "model.safetensors"), out)
    del cfg["quantization_config"]
    json.dump(cfg, open(os.path.join(outdir, "config.json"), "w"), indent=2)
    for f in ("tokenizer.json", "tokenizer.json.gz", "tokenizer_config.json", "generation_config.json"):
        if os.path.exists(os.path.join(qdir, f)):
            shutil.copy(os.path.join(qdir, f), outdir)
    print("ok %s: %d linears unpacked, %d scaled tensors" % ("awq" if awq else "gptq", nlin, changed))


def closer(fp, a, b):
    res = []
    F = load(fp)
    lf, loss_f = arr(F["logits"]).astype(np.float64), float(arr(F["loss"])[0])
    for p in (a, b):
        T = load(p)
        l = arr(T["logits"]).astype(np.float64)
        rel = np.sqrt(((l - lf) ** 2).mean() / ((lf - lf.mean()) ** 2).mean())
        dl = abs(float(arr(T["loss"])[0]) - loss_f)
        res.append(rel)
        print("%s: relative logit RMS error %.4g, |loss - fp32 loss| %.4g (fp32 loss %.4f)" % (
            os.path.basename(p), rel, dl, loss_f))
    if not res[0] < res[1]:
        fail("%s is not closer to the float model than %s" % (a, b))
    print("ok: %.4g < %.4g" % (res[0], res[1]))


def same(a, b):
    A, B = load(os.path.join(a, "model.safetensors")), load(os.path.join(b, "model.safetensors"))
    n = 0
    for k, t in B.items():
        if any(k.endswith(m + ".weight") for m in MODS):
            if k not in A:
                fail(k + " missing in " + a)
            d = float(np.abs(arr(A[k]).astype(np.float64) - arr(t).astype(np.float64)).max())
            if d != 0:
                fail("%s differs by %g" % (k, d))
            n += 1
    if n == 0:
        fail("no linear weights")
    print("ok: %d linear weights identical" % n)


GGUF_NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
              "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
              "mlp.down_proj": "ffn_down"}


def imatrix(orig, im, with_path, without_path):
    import gguf
    r = gguf.GGUFReader(im)
    f = r.fields
    if bytes(f["general.type"].parts[-1]).decode() != "imatrix" or "imatrix.chunk_count" not in f:
        fail("imatrix metadata")
    t = {x.name: np.array(x.data, np.float64).reshape(-1) for x in r.tensors}
    o = load(os.path.join(orig, "model.safetensors"))
    A, B = load(with_path), load(without_path)
    ew = eo = 0.0
    n = 0
    for name, tt in o.items():
        for hf, gg in GGUF_NAMES.items():
            if name.endswith(hf + ".weight") and ".layers." in name:
                layer = int(name.split(".layers.")[1].split(".")[0])
                g = "blk.%d.%s.weight" % (layer, gg)
                if g + ".in_sum2" not in t or g + ".counts" not in t:
                    fail("no imatrix entry " + g)
                imp = t[g + ".in_sum2"] / t[g + ".counts"][0]
                W = arr(tt).astype(np.float64)
                if imp.shape[0] != W.shape[1]:
                    fail(g + ": %d values for %d columns" % (imp.shape[0], W.shape[1]))
                ew += float((((arr(A[g]) - W) ** 2) * imp).sum())
                eo += float((((arr(B[g]) - W) ** 2) * imp).sum())
                n += 1
    print("importance-weighted error over %d linears: %.6g with the imatrix, %.6g without" % (n, ew, eo))
    if n == 0 or not ew < eo:
        fail("the imatrix did not lower the weighted error")
    print("ok")


if __name__ == "__main__":
    if sys.argv[1] == "unpack":
        unpack(*sys.argv[2:5])
    elif sys.argv[1] == "closer":
        closer(*sys.argv[2:5])
    elif sys.argv[1] == "same":
        same(*sys.argv[2:4])
    elif sys.argv[1] == "imatrix":
        imatrix(*sys.argv[2:6])
    else:
        fail("usage")
