"""Writes the timing capture of docs/scaling.md ("The block (matrix-unit)
models"): one plain MXFP8 GEMM, M = N = 64, K = 6144, E4M3FN codes of
OCP-quantised Gaussian data (deterministic: SplitMix64 + Box-Muller, the
same bytes on every machine), the output the FP32 accumulator of the
package's numpy emulation (fp32-group, production E8M0 decode).

    PYTHONPATH=tools/capture python3 tools/capture/examples/k6144_gemm.py OUT [M N K]
"""
import sys

import numpy as np

import mxverify_capture as mc
from mxverify_capture import emulate, rng


def gaussian(seed, shape):
    n = int(np.prod(shape))
    u = rng.uint64s(seed, 2 * n) >> np.uint64(11)          # 53 random bits
    u1 = (u[:n].astype(np.float64) + 1.0) * 2.0 ** -53      # (0, 1]
    u2 = u[n:].astype(np.float64) * 2.0 ** -53
    z = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
    return z.reshape(shape).astype(np.float32)


def main(argv):
    path = argv[1]
    M, N, K = (int(v) for v in argv[2:5]) if len(argv) >= 5 else (64, 64, 6144)
    a, a_s = emulate.mx_quantize(gaussian(1, (M, K)), element_format="e4m3fn",
                                 scale_rule="ocp")
    b, b_s = emulate.mx_quantize(gaussian(2, (N, K)), element_format="e4m3fn",
                                 scale_rule="ocp")
    _, acc = emulate.mxfp8_group_gemm(a, a_s, b[None], b_s[None],
                                      np.zeros((M, 1), np.int32),
                                      element_format="e4m3fn", return_acc=True)
    mc.capture_mxfp8_gemm(path, a=a, a_scale=a_s, b=b, b_scale=b_s,
                          out=acc.astype(np.float32), element_format="e4m3fn",
                          accum_model="fp32-group", producer="k6144_gemm.py")


if __name__ == "__main__":
    main(sys.argv)
