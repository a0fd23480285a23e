"""Writes the hand-made bad inputs of tests/bad_inputs.test into a directory.

Each file reproduces one defect of issue 12 (a crash, a false pass, a lenient
reader or an unclear error).  Safetensors files are written byte by byte here
(not with the safetensors library, not with tools/capture), so that inputs
the Python writers would refuse -- empty dimensions, odd metadata -- can be
made.  Only the standard library and numpy are used.

usage: make_bad_inputs.py OUTDIR [GOLDEN.json]
"""
import json
import os
import struct
import sys

import numpy as np


def bf16(x):
    """BF16 bytes of float32 values that BF16 holds exactly (truncation)."""
    a = np.ascontiguousarray(np.asarray(x, dtype=np.float32)).view(np.uint32)
    return (a >> 16).astype("<u2").tobytes()


def write_st(path, tensors, meta):
    """tensors: (name, dtype, shape, bytes) in data order."""
    hdr = {"__metadata__": meta}
    off = 0
    data = b""
    for name, dt, shape, raw in tensors:
        hdr[name] = {"dtype": dt, "shape": list(shape),
                     "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        data += raw
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def i32(v, shape=None):
    return np.asarray(v, dtype="<i4").tobytes()


def bf16_gemm(path, a, b, ids, out, **meta):
    """bf16_group_gemm: a [T, K], b [E, N, K], topk_ids [T, k], out [T*k, N]."""
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    ids = np.asarray(ids, np.int32)
    out = np.asarray(out, np.float32)
    m = {"mxverify.capture": "1", "kind": "bf16_group_gemm"}
    m.update(meta)
    write_st(path, [("a", "BF16", a.shape, bf16(a)),
                    ("b", "BF16", b.shape, bf16(b)),
                    ("topk_ids", "I32", ids.shape, ids.astype("<i4").tobytes()),
                    ("out", "BF16", out.shape, bf16(out))], m)


def mxfp8_gemm(path, a, a_scale, b, b_scale, ids, out, **meta):
    """mxfp8_group_gemm with raw FP8 (U8) codes and E8M0 (U8) scales."""
    m = {"mxverify.capture": "1", "kind": "mxfp8_group_gemm",
         "element_format": "e4m3fnuz"}
    m.update(meta)
    ids = np.asarray(ids, np.int32)
    out = np.asarray(out, np.float32)
    write_st(path, [("a", "U8", a.shape, a.astype(np.uint8).tobytes()),
                    ("a_scale", "U8", a_scale.shape, a_scale.astype(np.uint8).tobytes()),
                    ("b", "U8", b.shape, b.astype(np.uint8).tobytes()),
                    ("b_scale", "U8", b_scale.shape, b_scale.astype(np.uint8).tobytes()),
                    ("topk_ids", "I32", ids.shape, ids.astype("<i4").tobytes()),
                    ("out", "BF16", out.shape, bf16(out))], m)


def moe_layer(path, T):
    """A one-expert moe_layer capture (H = I = Is = 32) with T tokens."""
    H = I = 32
    one = 0x38  # 1.0 in E4M3FN
    def fp8(shape):
        return ("U8", shape, np.full(shape, one, np.uint8).tobytes())
    def sc(shape):
        return ("U8", shape, np.full(shape, 127, np.uint8).tobytes())
    t = [("x", "BF16", (T, H), bf16(np.ones((T, H)))),
         ("router_weight", "F32", (1, H), np.ones((1, H), "<f4").tobytes()),
         ("router_bias", "F32", (1,), np.zeros(1, "<f4").tobytes()),
         ("experts_present", "I32", (1,), i32([0])),
         ("w13",) + fp8((1, 2 * I, H)), ("w13_scale",) + sc((1, 2 * I, H // 32)),
         ("w2",) + fp8((1, H, I)), ("w2_scale",) + sc((1, H, I // 32)),
         ("ws13",) + fp8((2 * I, H)), ("ws13_scale",) + sc((2 * I, H // 32)),
         ("ws2",) + fp8((H, I)), ("ws2_scale",) + sc((H, I // 32)),
         ("out", "BF16", (T, H), bf16(np.zeros((T, H))))]
    write_st(path, t, {"mxverify.capture": "1", "kind": "moe_layer",
                       "policy": "w8a8-mxfp8", "shape": "custom", "hidden": "32",
                       "intermediate": "32", "intermediate_shared": "32",
                       "experts": "1", "topk": "1", "tp": "1", "ep": "1"})


def main():
    d = sys.argv[1]
    os.makedirs(d, exist_ok=True)
    p = lambda n: os.path.join(d, n)

    # 1: one A row holding 1.0 and 2^-100 in one 32-group, one all-zero B
    # row: the INT_MAX "all-zero row" marker reached exponent arithmetic.
    a = np.zeros((1, 32)); a[0, 0] = 1.0; a[0, 1] = 2.0 ** -100
    b = np.zeros((1, 2, 32)); b[0, 0, :] = 1.0
    bf16_gemm(p("crash_zero_row.safetensors"), a, b, [[0]], [[1.0, 0.0]])

    # 4: every scale byte 254 (bound infinite), the output all NaN / all 0.
    # a = b = 1.0 (E4M3FNUZ 0x40): exact value 32 * 2^254, far above BF16.
    a8 = np.full((1, 32), 0x40); b8 = np.full((1, 2, 32), 0x40)
    for name, val in (("nan", np.nan), ("zero", 0.0)):
        mxfp8_gemm(p("infbound_%s.safetensors" % name), a8, np.full((1, 1), 254),
                   b8, np.full((1, 2, 1), 254), [[0]], np.full((1, 2), val))

    # 4/8: empty dimensions (the format requires sizes >= 1)
    one = np.ones
    bf16_gemm(p("empty_T.safetensors"), np.zeros((0, 32)), one((1, 2, 32)),
              np.zeros((0, 1)), np.zeros((0, 2)))
    bf16_gemm(p("empty_k.safetensors"), one((1, 32)), one((1, 2, 32)),
              np.zeros((1, 0)), np.zeros((0, 2)))
    bf16_gemm(p("empty_N.safetensors"), one((1, 32)), one((1, 0, 32)), [[0]],
              np.zeros((1, 0)))
    bf16_gemm(p("empty_ET.safetensors"), np.zeros((0, 32)), np.zeros((0, 2, 32)),
              np.zeros((0, 1)), np.zeros((0, 2)))
    bf16_gemm(p("empty_K.safetensors"), np.zeros((1, 0)), np.zeros((1, 2, 0)),
              [[0]], np.zeros((1, 2)))
    write_st(p("empty_quant.safetensors"),
             [("x", "BF16", (0, 32), b""), ("q", "U8", (0, 32), b""),
              ("q_scale", "U8", (0, 1), b"")],
             {"mxverify.capture": "1", "kind": "mx_quant"})
    moe_layer(p("empty_moe_T.safetensors"), 0)
    moe_layer(p("moe_ok.safetensors"), 1)

    # 8: a NaN in a (finite = false lets it through to the reference)
    a = one((1, 32)); a[0, 3] = np.nan
    bf16_gemm(p("nan_in_a.safetensors"), a, one((1, 2, 32)), [[0]],
              np.full((1, 2), 32.0), finite="false")

    # 7: the experts metadata of a group GEMM
    for name, val in (("lots", "lots"), ("neg", "-1"), ("small", "0"),
                      ("plus", "+3"), ("space", " 2")):
        bf16_gemm(p("experts_%s.safetensors" % name), one((1, 32)),
                  one((1, 2, 32)), [[5]], np.full((1, 2), 32.0), experts=val)

    # 7: a .probe declaring k 128 in 69 bytes; 8: a NUL byte in a .probe
    with open(p("k128.probe"), "wb") as f:
        f.write(b"fa e4m3fn\nfb e4m3fn\nk 128\nplan 2\nncase 1\n3f800000\n")
    with open(p("nul.probe"), "wb") as f:
        f.write(b"fa e4m3fn\nfb e4m3fn\nk 3\x002\nplan 2\nncase 1\n3f800000\n")

    # 4/7: golden files (from a real one when given)
    if len(sys.argv) > 2:
        src = open(sys.argv[2], "rb").read()
        g = json.loads(src)
        # a duplicated key: cJSON kept the first value, Python keeps the last
        e0 = json.dumps(g["entries"][0]["thresholds"], separators=(",", ":"))
        text = json.dumps(g, indent=1)
        th = '"thresholds": ' + json.dumps(g["entries"][0]["thresholds"], indent=1)
        i = text.index('"thresholds"')
        j = text.index("}", i) + 1
        dup = text[:i] + text[i:j] + ', "thresholds": {"max_err_over_bound": 0, ' \
            '"max_outside": 0, "max_ulp": 0, "bit_exact": true}' + text[j:]
        open(p("golden_dupkey.json"), "w").write(dup)
        open(p("golden_trailing.json"), "wb").write(src.rstrip() + b"\n}garbage\n")
        g2 = json.loads(src)
        g2["entries"][0]["thresholds"]["max_ulps"] = 3
        open(p("golden_unknown.json"), "w").write(json.dumps(g2, indent=1))
        g3 = json.loads(src)
        g3["extra"] = 1
        open(p("golden_unknown_top.json"), "w").write(json.dumps(g3, indent=1))
        raw = src.replace(b'"smoke"', b'"smo\nke\x1b[2J"', 1)
        open(p("golden_ctrl.json"), "wb").write(raw)
        del e0, th


if __name__ == "__main__":
    main()
