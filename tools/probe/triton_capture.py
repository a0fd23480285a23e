#!/usr/bin/env python3
"""triton_capture.py -- turn the H100 Triton MXFP8 GEMM record
(golden/h100/mxfp8_gemm.safetensors, written by h100_triton.py) into
mxverify captures, one per problem: golden/h100/triton-mxfp8-pN.safetensors.

Each problem is one dense GEMM, written as a grouped GEMM of one expert with
top-1 routing: a [M, K] E4M3FN codes, b [1, N, K], E8M0 scales in rows
layout, production decode, out the BF16 bits the GPU stored, and
accum_model block:hopper-fp8 (the measured Hopper model).

Usage: python3 tools/probe/triton_capture.py [SRC] [OUTDIR]
"""
import os
import sys

import numpy as np
from safetensors import safe_open

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "capture"))
from mxverify_capture import capture_mxfp8_group_gemm  # noqa: E402


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "golden", "h100", "mxfp8_gemm.safetensors")
    outdir = sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(src)
    f = safe_open(src, "numpy")
    meta = f.metadata()
    for p in ("p0", "p1"):
        a = f.get_tensor(p + "_a")
        b = f.get_tensor(p + "_b")
        sa = f.get_tensor(p + "_sa")
        sb = f.get_tensor(p + "_sb")
        out = f.get_tensor(p + "_out").view(np.uint16)
        M, N = a.shape[0], b.shape[0]
        path = os.path.join(outdir, "triton-mxfp8-%s.safetensors" % p)
        capture_mxfp8_group_gemm(
            path, a=a, a_scale=sa, b=b[None], b_scale=sb[None],
            topk_ids=np.zeros((M, 1), dtype=np.int32), out=out,
            element_format="e4m3fn", scale_layout="rows", e8m0_decode="production",
            accum_model="block:hopper-fp8",
            producer="Triton %s on %s, %s (tools/probe/h100_triton.py), %s" % (
                meta.get("triton", "?"), meta.get("gpu", "?"), meta.get("wgmma", "?"),
                meta.get("date", "?")))
        print(path)


if __name__ == "__main__":
    main()
