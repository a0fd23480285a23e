#!/usr/bin/env python3
"""Regenerates golden/capture-example.safetensors byte for byte.

One mxfp8_group_gemm capture (GEMM1-like: one A row per token), T = 8
tokens, top-4 of E = 4 experts, N = 64, K = 256, E4M3FNUZ operands, packed
weight scales, production E8M0 decode.  The activations are BF16 values
quantized with the production MX rule; the weights are random finite FNUZ
bytes with scales 2^-11..2^-4; the output is the numpy emulation's
(fp32-group model), so `mxverify check` must find it bit-exact.  All
randomness comes from mxverify_capture.rng (stable across machines).

usage: make_golden_example.py [OUTPUT]   (default: golden/capture-example.safetensors)
"""
import hashlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import mxverify_capture as mc  # noqa: E402
from mxverify_capture import rng  # noqa: E402

SEED = 20250501
T, TOPK, E, N, K = 8, 4, 4, 64, 256
PRODUCER = "tools/capture/make_golden_example.py (numpy emulation, fp32-group model)"


def build():
    """The capture's arguments (a dict for capture_mxfp8_group_gemm)."""
    x = rng.bf16_values(SEED, (T, K))
    a, a_scale = mc.mx_quantize(x, element_format="e4m3fnuz")
    b = rng.fp8_codes(SEED + 10, (E, N, K), "e4m3fnuz")
    b_scale = rng.integers(SEED + 11, (E, K // 32, N), 116, 124).astype("uint8")
    topk_ids = rng.distinct_rows(SEED + 12, T, TOPK, E)
    out = mc.mxfp8_group_gemm(a, a_scale, b, b_scale, topk_ids, element_format="e4m3fnuz",
                              scale_layout="packed")
    return dict(a=a, a_scale=a_scale, b=b, b_scale=b_scale, topk_ids=topk_ids, out=out,
                element_format="e4m3fnuz", scale_layout="packed", e8m0_decode="production",
                a_per_route=False, mul_routed_weight=False, producer=PRODUCER)


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1].startswith("-")):
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    out = argv[1] if len(argv) == 2 else os.path.join(HERE, "..", "..", "golden",
                                                      "capture-example.safetensors")
    path = mc.capture_mxfp8_group_gemm(out, **build())
    with open(path, "rb") as f:
        data = f.read()
    print("%s: %d bytes, sha256 %s" % (os.path.normpath(path), len(data),
                                       hashlib.sha256(data).hexdigest()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
