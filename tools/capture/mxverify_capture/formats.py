"""Bit-level number formats in numpy: FP8 (E4M3FN, E4M3FNUZ, E5M2,
E5M2FNUZ), E8M0 scales, BF16 and FP32 rounding.

Everything here works on raw codes (uint8 for 8-bit formats, uint16 for
BF16) so that no value passes through a library conversion whose rounding
or NaN rules we do not control.  Decoding is exact (binary64 holds every
value of these formats).  Encoding rounds to nearest, ties to even, from
binary64; it is exact-input rounding (one rounding), not a cast chain.

Format parameters (production-numerics.md section 1):

    name       exp mant bias  special codes
    e4m3fn      4    3    7   S.1111.111 NaN; no inf; 0x80 is -0
    e4m3fnuz    4    3    8   0x80 NaN (only); no inf; no -0
    e5m2        5    2   15   exp 31: mant 0 inf, else NaN; 0x80 is -0
    e5m2fnuz    5    2   16   0x80 NaN (only); no inf; no -0
"""
import math
from fractions import Fraction

import numpy as np

FP8_FORMATS = ("e4m3fnuz", "e4m3fn", "e5m2", "e5m2fnuz")

# name -> (exponent bits, mantissa bits, bias, style)
_PARAMS = {
    "e4m3fn": (4, 3, 7, "fn"),
    "e4m3fnuz": (4, 3, 8, "fnuz"),
    "e5m2": (5, 2, 15, "ieee"),
    "e5m2fnuz": (5, 2, 16, "fnuz"),
}


class Fp8Format:
    """One FP8 format: its parameters and derived constants."""

    def __init__(self, name):
        if name not in _PARAMS:
            raise ValueError("unknown FP8 format %r (known: %s)" % (name, ", ".join(FP8_FORMATS)))
        self.name = name
        self.ebits, self.mbits, self.bias, self.style = _PARAMS[name]
        self.precision = self.mbits + 1          # significand bits
        self.emin = 1 - self.bias                # exponent of the least normal
        table = np.array([_decode_one(self, c) for c in range(256)], dtype=np.float64)
        table.setflags(write=False)
        self.table = table
        finite = table[np.isfinite(table)]
        self.max = float(finite.max())
        self.min_subnormal = math.ldexp(1.0, self.emin - self.mbits)
        self.has_inf = self.style == "ieee"
        # Code of the NaN an overflow or a NaN input produces (positive one).
        self.nan_code = 0x80 if self.style == "fnuz" else (0x7F if self.style == "fn" else 0x7E)

    def __repr__(self):
        return "Fp8Format(%r)" % self.name


def _decode_one(f, code):
    sign = -1.0 if code & 0x80 else 1.0
    e = (code >> f.mbits) & ((1 << f.ebits) - 1)
    m = code & ((1 << f.mbits) - 1)
    emax_field = (1 << f.ebits) - 1
    if f.style == "fnuz":
        if code == 0x80:
            return math.nan
    elif f.style == "fn":
        if e == emax_field and m == (1 << f.mbits) - 1:
            return math.nan
    else:  # ieee
        if e == emax_field:
            return sign * math.inf if m == 0 else math.nan
    if e == 0:
        return sign * math.ldexp(m, f.emin - f.mbits)
    return sign * math.ldexp((1 << f.mbits) + m, e - f.bias - f.mbits)


_FORMATS = {}


def fp8_format(name):
    """The Fp8Format of a name in FP8_FORMATS (cached)."""
    f = _FORMATS.get(name)
    if f is None:
        f = _FORMATS[name] = Fp8Format(name)
    return f


def decode_fp8(codes, name):
    """Values (float64) of uint8 codes in FP8 format `name`."""
    return fp8_format(name).table[np.asarray(codes, dtype=np.uint8)]


def fp8_nonfinite(codes, name):
    """Boolean mask of the codes that are NaN or infinite in `name`."""
    return ~np.isfinite(decode_fp8(codes, name))


def encode_fp8(values, name, overflow="nan"):
    """Rounds float64 values to FP8 codes of `name`, nearest-even.

    overflow: what a value whose rounded magnitude exceeds the largest
    finite one becomes: "nan" (the format's NaN; infinity for e5m2, which
    has one: IEEE overflow), or "saturate" (the largest finite value, sign
    kept).  NaN inputs give the format's NaN.  Zero keeps its sign where the
    format has -0 (e4m3fn, e5m2); FNUZ formats have only +0.
    """
    if overflow not in ("nan", "saturate"):
        raise ValueError("overflow must be 'nan' or 'saturate', not %r" % (overflow,))
    f = fp8_format(name)
    v = np.asarray(values, dtype=np.float64)
    neg = np.signbit(v)
    a = np.abs(v)
    with np.errstate(invalid="ignore", over="ignore"):
        _, e = np.frexp(a)                       # a = m 2^e, m in [0.5, 1)
        e = np.maximum(e - 1, f.emin)            # binade, subnormals share emin
        quantum_exp = e - f.mbits
        n = np.rint(np.ldexp(a, -quantum_exp))   # exact scaling, RNE on integers
        r = np.ldexp(n, quantum_exp)             # rounded magnitude
    big = ~np.isnan(a) & (r > f.max)             # includes inf inputs
    codes = np.zeros(v.shape, dtype=np.uint8)
    # Magnitude codes through a sorted table of the non-negative finite values.
    pos_codes = np.array([c for c in range(128) if np.isfinite(f.table[c])], dtype=np.uint8)
    pos_vals = f.table[pos_codes]
    order = np.argsort(pos_vals, kind="stable")
    pos_codes, pos_vals = pos_codes[order], pos_vals[order]
    ok = ~np.isnan(a) & ~big
    idx = np.searchsorted(pos_vals, np.where(ok, r, 0.0))
    codes[ok] = pos_codes[idx[ok]]
    if overflow == "saturate":
        codes[big] = pos_codes[-1]
    elif f.has_inf:
        codes[big] = 0x7C
    else:
        codes[big] = f.nan_code
    codes[np.isnan(a)] = f.nan_code
    if f.style == "fnuz":
        # No -0: a negative value that rounded to zero is +0; NaN is 0x80.
        signed = neg & ok & (r != 0) | neg & big & (overflow == "saturate")
    else:
        signed = neg & ~np.isnan(a)
    codes[signed] |= 0x80
    return codes


# ---- E8M0 -------------------------------------------------------------------

E8M0_DECODES = ("production", "spec")


def decode_e8m0(codes, decode="production"):
    """Scale values (float64) of E8M0 bytes.

    production: the byte shifted into a BF16 exponent field (s << 7 read as
    BF16), so 0 -> +0.0 and 255 -> +inf; spec (OCP MX v1.0): 2^(s-127) for
    every s < 255 and NaN for 255.
    """
    s = np.asarray(codes, dtype=np.uint8).astype(np.int64)
    v = np.ldexp(1.0, s - 127)
    if decode == "production":
        v = np.where(s == 0, 0.0, v)
        v = np.where(s == 255, np.inf, v)
    elif decode == "spec":
        v = np.where(s == 255, np.nan, v)
    else:
        raise ValueError("e8m0 decode must be 'production' or 'spec', not %r" % (decode,))
    return v


# ---- BF16 and FP32 ------------------------------------------------------------

def bf16_to_f32(bits):
    """FP32 values of BF16 bit patterns (uint16)."""
    b = np.asarray(bits, dtype=np.uint16).astype(np.uint32) << np.uint32(16)
    return b.view(np.float32)


def f32_to_bf16(values):
    """BF16 bit patterns (uint16) of FP32 values, round to nearest even.

    Overflow goes to infinity (IEEE); NaN stays NaN (made quiet, sign kept).
    """
    f = np.array(values, dtype=np.float32, order="C")
    u = f.view(np.uint32)
    nan = np.isnan(f)
    rounded = (u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    quiet = (u >> np.uint32(16)) | np.uint32(0x0040)
    return np.where(nan, quiet, rounded).astype(np.uint16)


def bf16_nonfinite(bits):
    """Mask of BF16 bit patterns that are NaN or infinite."""
    return (np.asarray(bits, dtype=np.uint16) & np.uint16(0x7F80)) == np.uint16(0x7F80)


def round_to_f32(x):
    """The FP32 value (as a Python float) nearest to the exact rational x
    (a Fraction, int or float), ties to even; overflow gives +-inf.

    Used where a sum is known exactly and must be rounded once (no double
    rounding through binary64)."""
    x = Fraction(x)
    if x == 0:
        return 0.0
    sign = -1.0 if x < 0 else 1.0
    n, d = abs(x.numerator), x.denominator
    # e = floor(log2(n/d))
    e = n.bit_length() - d.bit_length()
    if (n << max(-e, 0)) < (d << max(e, 0)):
        e -= 1
    e = max(e, -126)                  # subnormals share the quantum 2^-149
    qe = e - 23
    if qe >= 0:
        q, r = divmod(n, d << qe)
        half = d << qe
    else:
        q, r = divmod(n << -qe, d)
        half = d
    if 2 * r > half or (2 * r == half and q & 1):
        q += 1
    if q.bit_length() + qe > 128:     # q 2^qe >= 2^128: beyond FP32
        return sign * math.inf
    return sign * math.ldexp(q, qe)
