"""Pure-numpy emulations of the production kernels (no GPU): what a correct
kernel following production-numerics.md sections 3 and 4 writes, bit for
bit under the fp32-group accumulation model.

MXFP8 grouped GEMM, per output element (row r = t*k + j, column n, expert
e = topk_ids[t, j]):
    acc = +0.0 (FP32)
    for each group g of 32 along K:
        p   = RN32(exact dot of the 32 FP8 products)          one rounding
        sc  = f32(dec(a_scale[row, g])) * f32(dec(b_scale[e, n, g]))  FP32
        acc = f32(acc + f32(p * sc))
    if mul_routed_weight: acc = f32(acc * topk_weights[t, j])
    out = bf16_rne(acc)
dec is the E8M0 decode (production: the byte as a BF16 exponent, 0 -> 0.0;
spec: 2^(s-127)).  A route whose expert is not among the experts held
(expert_ids) gives an all-zero row.  The BF16 grouped GEMM is the same
without scales (acc = f32(acc + p)), K any size, the last group shorter.

How p is made exact: every FP8 or BF16 value is exact in binary64 and so is
every product (at most 16 significant bits, exponents far inside binary64's
range).  The 32 products of a group are summed with a binary64 matrix
multiply; the sum is exact in any order when all products are integer
multiples of 2^L and the group's sum of magnitudes stays below 2^(L+53).
Per (row, group) and (column, group) the code bounds the largest exponent
and the smallest last-bit exponent (value exponent minus the format's
precision), and for each (row, column, group) where the bound does not
prove exactness (possible for E5M2 and BF16 with widely spread values,
never for E4M3) it recomputes the dot product with exact rationals.  The
exact sum is then rounded to FP32 once (binary64 -> binary32 is a single
correct rounding of an exact value).

The MX quantizer (section 3), per row and block of 32 along K, in FP32:
    production  amax = max(max|x|, 1e-30); X = floor(log2 amax), exact;
                s = clamp(X + 127, 0, 254); q = fp8(x / 2^(s-127)), RNE,
                overflow to NaN (no clamp)
    ocp         X = floor(log2 amax) - emax(element format), s = 0 for an
                all-zero block; elements saturate
    rceil       X = ceil(log2(amax / max_elem)) (max_elem 448 by default),
                amax clamped below at 1e-30 as in production; overflow to
                NaN (448 overflows E4M3FNUZ: the hazard the rule carries)
"""
import math
from fractions import Fraction

import numpy as np

from . import formats
from ._validate import Checker, SCALE_RULES, group_gemm
from .tensors import CaptureError

_BIG = 1 << 20
_PRECISION = {"e4m3fn": 4, "e4m3fnuz": 4, "e5m2": 3, "e5m2fnuz": 3, "bf16": 8}


def _exp_bounds(v, precision):
    """For v [..., G, L]: (largest exponent e with |v| < 2^e, smallest
    last-bit exponent e - precision), over the L values of each group;
    groups of zeros give (-BIG, +BIG)."""
    _, e = np.frexp(v)
    e = e.astype(np.int64)
    nz = v != 0
    emax = np.where(nz, e, -_BIG).max(axis=-1)
    lsb = np.where(nz, e - precision, _BIG).min(axis=-1)
    return emax, lsb


def group_partials(av, bv, precision):
    """RN32 of the exact group dot products.

    av [R, G, L], bv [N, G, L] float64 values of one format with the given
    precision; returns float32 [G, R, N]."""
    L = av.shape[2]
    S = np.matmul(av.transpose(1, 0, 2), bv.transpose(1, 2, 0))   # [G, R, N]
    ea, la = _exp_bounds(av, precision)                           # [R, G]
    eb, lb = _exp_bounds(bv, precision)                           # [N, G]
    grow = max(L - 1, 0).bit_length()                             # sum of L terms
    span = (ea.T[:, :, None] + eb.T[:, None, :] + grow
            - la.T[:, :, None] - lb.T[:, None, :])
    p = S.astype(np.float32)
    for g, r, n in np.argwhere((span > 53) & np.isfinite(S)):
        exact = sum((Fraction(float(x)) * Fraction(float(y))
                     for x, y in zip(av[r, g], bv[n, g])), Fraction(0))
        p[g, r, n] = formats.round_to_f32(exact)
    return p


def _route_plan(g):
    """Per route r = t*k + j: the A row, the local expert index (-1 when the
    expert is not held) and the FP32 weight (or None)."""
    R = g.T * g.k
    r = np.arange(R)
    arow = r if g.a_per_route else r // g.k
    local_of = {int(e): i for i, e in enumerate(g.expert_ids)}
    local = np.array([local_of.get(int(e), -1) for e in g.topk_ids.reshape(-1)], dtype=np.int64)
    w = g.topk_weights.reshape(-1) if g.mul_routed_weight else None
    return arow, local, w


def _run(g, values_a, values_b, precision, sa32=None, sb32=None, groups=32):
    """The grouped GEMM on decoded values; returns (out bits, acc)."""
    arow, local, w = _route_plan(g)
    R, N, K = g.T * g.k, g.N, g.K
    G = -(-K // groups)
    pad = G * groups - K
    if pad:
        values_a = np.pad(values_a, ((0, 0), (0, pad)))
        values_b = np.pad(values_b, ((0, 0), (0, 0), (0, pad)))
    va = values_a.reshape(-1, G, groups)
    vb = values_b.reshape(g.E, N, G, groups)
    acc = np.zeros((R, N), dtype=np.float32)
    for e in range(g.E):
        routes = np.flatnonzero(local == e)
        if routes.size == 0:
            continue
        rows = arow[routes]
        p = group_partials(va[rows], vb[e], precision)            # [G, nr, N]
        a_acc = np.zeros((routes.size, N), dtype=np.float32)
        for gi in range(G):
            if sa32 is not None:
                sc = sa32[rows, gi][:, None] * sb32[e, :, gi][None, :]
                a_acc = a_acc + p[gi] * sc
            else:
                a_acc = a_acc + p[gi]
        if w is not None:
            a_acc = a_acc * w[routes][:, None]
        acc[routes] = a_acc
    return formats.f32_to_bf16(acc), acc          # rows of experts not held stay +0


def mxfp8_group_gemm(a, a_scale, b, b_scale, topk_ids, *, element_format=None,
                     scale_layout="rows", e8m0_decode="production", a_per_route=False,
                     topk_weights=None, mul_routed_weight=False, expert_ids=None,
                     return_acc=False):
    """Emulated MXFP8 grouped GEMM (module docstring).  Arguments as for
    capture_mxfp8_group_gemm.  Returns the output as BF16 bit patterns
    (uint16 [T*k, N]); with return_acc=True also the FP32 accumulators."""
    ck = Checker("mxfp8_group_gemm")
    with np.errstate(over="ignore", invalid="ignore"):
        g = group_gemm(ck, a=a, a_scale=a_scale, b=b, b_scale=b_scale, topk_ids=topk_ids,
                       topk_weights=topk_weights, expert_ids=expert_ids,
                       element_format=element_format, scale_layout=scale_layout,
                       e8m0_decode=e8m0_decode, a_per_route=a_per_route,
                       mul_routed_weight=mul_routed_weight, finite=False, mx=True)
        va = formats.decode_fp8(g.a, g.fmt)
        vb = formats.decode_fp8(g.b, g.fmt)
        sa32 = formats.decode_e8m0(g.a_scale, g.e8m0_decode).astype(np.float32)
        sb32 = formats.decode_e8m0(g.b_scale_rows, g.e8m0_decode).astype(np.float32)
        out, acc = _run(g, va, vb, _PRECISION[g.fmt], sa32, sb32)
    return (out, acc) if return_acc else out


def bf16_group_gemm(a, b, topk_ids, *, a_per_route=False, topk_weights=None,
                    mul_routed_weight=False, expert_ids=None, return_acc=False):
    """Emulated BF16 grouped GEMM: FP32 accumulation of RN32 group-of-32
    partials, BF16 output.  a, b BF16 (bfloat16 or uint16 bits)."""
    ck = Checker("bf16_group_gemm")
    with np.errstate(over="ignore", invalid="ignore"):
        g = group_gemm(ck, a=a, b=b, topk_ids=topk_ids, topk_weights=topk_weights,
                       expert_ids=expert_ids, a_per_route=a_per_route,
                       mul_routed_weight=mul_routed_weight, finite=False, mx=False)
        va = formats.bf16_to_f32(g.a).astype(np.float64)
        vb = formats.bf16_to_f32(g.b).astype(np.float64)
        out, acc = _run(g, va, vb, _PRECISION["bf16"])
    return (out, acc) if return_acc else out


# ---- MX quantization ------------------------------------------------------------

def _emax(fmt):
    return math.frexp(formats.fp8_format(fmt).max)[1] - 1


def _ceil_log2_ratio(amax, max_elem):
    """Smallest integer X with amax <= max_elem * 2^X (amax > 0), exactly."""
    X = np.ceil(np.log2(amax) - math.log2(max_elem)).astype(np.int64)
    for _ in range(2):
        X = np.where(amax > np.ldexp(max_elem, X), X + 1, X)
        X = np.where(amax <= np.ldexp(max_elem, X - 1), X - 1, X)
    return X


def mx_quantize(x, *, element_format="e4m3fnuz", scale_rule="production",
                rceil_max=448.0, overflow=None, amax_floor=1e-30):
    """MX-quantizes x [rows, K] (BF16 as bfloat16 or uint16 bits, or
    float32; K % 32 == 0) along K.  Returns (q uint8 codes [rows, K],
    scales uint8 [rows, K/32]).  overflow: "nan" or "saturate"; default
    saturate for ocp, nan otherwise (module docstring)."""
    ck = Checker("mx_quantize")
    fmt = ck.choice("element_format", element_format, formats.FP8_FORMATS)
    rule = ck.choice("scale_rule", scale_rule, SCALE_RULES)
    if overflow is None:
        overflow = "saturate" if rule == "ocp" else "nan"
    ck.choice("overflow", overflow, ("nan", "saturate"))
    tag, arr = ck.array("x", x)
    if tag in ("bfloat16", "uint16"):
        x32 = formats.bf16_to_f32(arr)
    elif tag in ("float32", "float16"):
        x32 = arr.astype(np.float32)
    else:
        ck.fail("x", "dtype %s is not BF16 or float32" % tag)
    ck.rank("x", x32, 2, ["rows", "K"])
    rows, K = x32.shape
    if K % 32:
        ck.fail("x", "K = %d is not a multiple of 32" % K)
    ck.f32_finite("x", x32)
    if not (isinstance(rceil_max, (int, float)) and math.isfinite(rceil_max) and rceil_max > 0):
        ck.fail("rceil_max", "must be a positive finite number, got %r" % (rceil_max,))
    blocks = x32.reshape(rows, K // 32, 32)
    amax = np.abs(blocks).max(axis=-1).astype(np.float64) if K else np.zeros((rows, 0))
    floor = float(np.float32(amax_floor))
    if rule == "production":
        X = np.frexp(np.maximum(amax, floor))[1].astype(np.int64) - 1
    elif rule == "ocp":
        X = np.frexp(amax)[1].astype(np.int64) - 1 - _emax(fmt)
    else:
        X = _ceil_log2_ratio(np.maximum(amax, floor), float(rceil_max))
    s = np.clip(X + 127, 0, 254)
    if rule == "ocp":
        s = np.where(amax == 0, 0, s)
    scaled = np.ldexp(blocks.astype(np.float64), (127 - s)[:, :, None])
    q = formats.encode_fp8(scaled, fmt, overflow=overflow).reshape(rows, K)
    return q, s.astype(np.uint8)


__all__ = ["mxfp8_group_gemm", "bf16_group_gemm", "mx_quantize", "group_partials",
           "CaptureError"]
