"""Tests of tools/capture (the mxverify_capture package), without torch.

Expected values never come from the package itself:
  * formats: FP8 / E8M0 / BF16 decoding and encoding against ml_dtypes (an
    independent implementation), exhaustively or on every midpoint; exact
    FP32 rounding against a neighbour-search oracle on Fractions;
  * emulations: the MXFP8 and BF16 grouped GEMMs against an oracle written
    here with Fractions and explicit FP32/BF16 rounding, element by element
    in the order of production-numerics.md section 4; hand-derived cases
    (ties, scale decode, FP32 absorption, EP rows); the quantizer against
    hand-derived bytes and against an oracle using ml_dtypes casts;
  * the writer: files read back with the safetensors library
    (deserialize, safe_open), byte-identical to safetensors.numpy.save with
    at most one metadata key; deterministic across processes;
  * every validation error path: the message names the function, argument
    and fault; no file (and no temporary file) is left behind; an existing
    file is left untouched;
  * the torch conversion path through a stand-in torch module;
  * golden/capture-example.safetensors regenerates byte for byte.

Usage: python3 test_capture.py [SRCDIR]     (SRCDIR: the repository root)
Prints a final line "N passed, M failed".
"""
import importlib.util
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import types
from fractions import Fraction

import ml_dtypes
import numpy as np

SRCDIR = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                         os.path.join(os.path.dirname(__file__), "..", ".."))
CAPTURE_DIR = os.path.join(SRCDIR, "tools", "capture")
sys.path.insert(0, CAPTURE_DIR)

import mxverify_capture as mc  # noqa: E402
from mxverify_capture import formats, rng, stfile  # noqa: E402
from mxverify_capture.emulate import group_partials  # noqa: E402

try:
    from safetensors import deserialize, safe_open
    from safetensors.numpy import save as st_save
except ImportError:
    deserialize = None

passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        if failed <= 40:
            print("FAIL:", what, flush=True)


def skip(why):
    if os.environ.get("MXV_REQUIRE_PYTHON") == "1":
        sys.exit("error: " + why)
    print("SKIP:", why)
    sys.exit(77)


ML = {"e4m3fn": ml_dtypes.float8_e4m3fn, "e4m3fnuz": ml_dtypes.float8_e4m3fnuz,
      "e5m2": ml_dtypes.float8_e5m2, "e5m2fnuz": ml_dtypes.float8_e5m2fnuz}
ST_NAME = {"e4m3fn": "F8_E4M3", "e4m3fnuz": "F8_E4M3FNUZ", "e5m2": "F8_E5M2",
           "e5m2fnuz": "F8_E5M2FNUZ"}
TMP = tempfile.mkdtemp(prefix="mxv-capture-test-")
_count = [0]


def fresh(stem="c"):
    _count[0] += 1
    return os.path.join(TMP, "%s-%d.safetensors" % (stem, _count[0]))


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def header_of(data):
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n])


# ---- independent oracles -------------------------------------------------------

def o_fp8(code, fmt):
    """Value of an FP8 code through ml_dtypes (float, maybe nan/inf)."""
    return float(np.array([code], dtype=np.uint8).view(ML[fmt])[0])


def o_bf16(bits):
    return float(np.array([bits], dtype=np.uint16).view(ml_dtypes.bfloat16)[0])


def o_scale(s, decode):
    if decode == "production":
        if s == 0:
            return 0.0
        if s == 255:
            return math.inf
    elif s == 255:
        return math.nan
    return math.ldexp(1.0, s - 127)


F32_MAX = float(np.finfo(np.float32).max)
F32_OVER = Fraction(2) ** 128 - Fraction(2) ** 103   # max + half ulp: ties go to inf


def o_rn32(x):
    """Nearest FP32 to the Fraction x, ties to even, by searching the
    neighbours of a first guess."""
    if x == 0:
        return 0.0
    if abs(x) >= F32_OVER:
        return math.copysign(math.inf, x)
    guess = np.float32(float(x)) if abs(x) <= F32_MAX else np.float32(math.copysign(F32_MAX, x))
    cands = {guess}
    for _ in range(2):
        for c in list(cands):
            with np.errstate(over="ignore"):
                cands.add(np.nextafter(c, np.float32(np.inf)))
                cands.add(np.nextafter(c, np.float32(-np.inf)))
    cands = [c for c in cands if np.isfinite(c)]
    best = min(cands, key=lambda c: (abs(Fraction(float(c)) - x),
                                     int(np.array([c], np.float32).view(np.uint32)[0]) & 1))
    return float(best)


def o_rnbf16(v):
    """BF16 bits of FP32 value v, nearest-even, by comparing the two
    neighbours (infinity counts as 2^128 when rounding)."""
    if math.isnan(v):
        return None
    if math.isinf(v):
        return 0x7F80 if v > 0 else 0xFF80
    bits = int(np.array([v], np.float32).view(np.uint32)[0])
    lo = bits >> 16
    hi = lo + 1

    def val(b):
        if (b & 0x7FFF) == 0x7F80:
            return Fraction(2) ** 128 * (-1 if b & 0x8000 else 1)
        return Fraction(o_bf16(b))
    x = Fraction(v)
    dl, dh = abs(val(lo) - x), abs(val(hi) - x)
    if dl < dh or (dl == dh and lo % 2 == 0):
        return lo
    return hi


def o_mul(x, y):
    if not (math.isfinite(x) and math.isfinite(y)):
        return float(np.float32(x) * np.float32(y))
    return o_rn32(Fraction(x) * Fraction(y))


def o_add(x, y):
    if not (math.isfinite(x) and math.isfinite(y)):
        return float(np.float32(x) + np.float32(y))
    return o_rn32(Fraction(x) + Fraction(y))


def o_group_gemm(a_vals, sa, b_vals, sb_rows, ids, *, a_per_route, weights, expert_ids,
                 decode="production", group=32):
    """Section 4 element by element.  a_vals [rows][K] floats, sa [rows][G]
    scale bytes or None (BF16), b_vals [E][N][K], sb_rows [E][N][G].
    Returns BF16 bits [T*k][N] (None for NaN)."""
    T, k = len(ids), len(ids[0])
    N, K = len(b_vals[0]), len(b_vals[0][0])
    local = {int(e): i for i, e in enumerate(expert_ids)}
    out = []
    for t in range(T):
        for j in range(k):
            r = t * k + j
            row = r if a_per_route else t
            e = local.get(int(ids[t][j]))
            if e is None:
                out.append([0] * N)
                continue
            orow = []
            for n in range(N):
                acc = 0.0
                for g0 in range(0, K, group):
                    ex = sum((Fraction(a_vals[row][i]) * Fraction(b_vals[e][n][i])
                              for i in range(g0, min(g0 + group, K))), Fraction(0))
                    p = o_rn32(ex)
                    if sa is not None:
                        g = g0 // group
                        sc = o_mul(o_scale(int(sa[row][g]), decode),
                                   o_scale(int(sb_rows[e][n][g]), decode))
                        acc = o_add(acc, o_mul(p, sc))
                    else:
                        acc = o_add(acc, p)
                if weights is not None:
                    acc = o_mul(acc, float(weights[t][j]))
                orow.append(o_rnbf16(acc))
            out.append(orow)
    return out


def same_bf16(got, want):
    """got: uint16 array; want: list of lists of ints/None (NaN)."""
    bad = []
    for r, row in enumerate(want):
        for n, w in enumerate(row):
            g = int(got[r, n])
            if w is None:
                if (g & 0x7F80) != 0x7F80 or (g & 0x7F) == 0:
                    bad.append((r, n, g, w))
            elif g != w:
                bad.append((r, n, g, w))
    return bad


# ---- formats ----------------------------------------------------------------------

def test_fp8_decode():
    codes = np.arange(256, dtype=np.uint8)
    for fmt in formats.FP8_FORMATS:
        mine = formats.decode_fp8(codes, fmt)
        ref = codes.view(ML[fmt]).astype(np.float64)
        ok = np.array_equal(np.isnan(mine), np.isnan(ref)) and \
            np.array_equal(mine[~np.isnan(ref)], ref[~np.isnan(ref)]) and \
            np.array_equal(np.signbit(mine[~np.isnan(ref)]), np.signbit(ref[~np.isnan(ref)]))
        check(ok, "decode_fp8 %s differs from ml_dtypes" % fmt)
        check(formats.fp8_format(fmt).max == float(ml_dtypes.finfo(ML[fmt]).max),
              "%s max" % fmt)
    # Facts section 1: FNUZ value of a byte is half its FN value.
    fn = formats.decode_fp8(codes, "e4m3fn")
    fnuz = formats.decode_fp8(codes, "e4m3fnuz")
    m = np.isfinite(fn) & np.isfinite(fnuz)
    check(np.array_equal(fnuz[m] * 2, fn[m]), "FNUZ = FN / 2")
    check(fnuz[0x7F] == 240 and fnuz[0xFF] == -240, "FN NaN bytes read as FNUZ are +-240")


def fp8_probe_values(fmt):
    """Every finite value, every midpoint between neighbours (and past the
    maximum), both signs, zeros, inf, nan, and random float32s."""
    vals = np.unique(formats.fp8_format(fmt).table[np.isfinite(formats.fp8_format(fmt).table)])
    mids = (vals[1:] + vals[:-1]) / 2
    f = formats.fp8_format(fmt)
    top = f.max + (vals[-1] - vals[-2]) / 2
    extra = [top, np.nextafter(top, 0), np.nextafter(top, np.inf), f.max * 2, 1e30, np.inf,
             np.nan, f.min_subnormal / 2, np.nextafter(f.min_subnormal / 2, 1), f.min_subnormal / 4]
    r = np.random.default_rng(5)
    rand = (r.standard_normal(4000) * np.exp2(r.integers(-20, 18, 4000))).astype(np.float32)
    v = np.concatenate([vals, mids, np.array(extra), rand.astype(np.float64)])
    return np.concatenate([v, -v]).astype(np.float32).astype(np.float64)


def test_fp8_encode():
    for fmt in formats.FP8_FORMATS:
        v = fp8_probe_values(fmt)
        mine = formats.encode_fp8(v, fmt)
        ref = v.astype(np.float32).astype(ML[fmt]).view(np.uint8)
        mv, rv = formats.decode_fp8(mine, fmt), formats.decode_fp8(ref, fmt)
        nan_ok = np.isnan(mv) == np.isnan(rv)
        eq = nan_ok & (np.isnan(rv) | (mine == ref))
        bad = np.flatnonzero(~eq)
        check(bad.size == 0, "encode_fp8 %s: %d of %d differ from ml_dtypes, first %r -> %#x vs %#x"
              % (fmt, bad.size, v.size, v[bad[0]] if bad.size else 0,
                 mine[bad[0]] if bad.size else 0, ref[bad[0]] if bad.size else 0))
    # Saturation, by hand.
    cases = [("e4m3fn", 500.0, 0x7E), ("e4m3fn", -1e9, 0xFE), ("e4m3fnuz", 300.0, 0x7F),
             ("e4m3fnuz", -241.0, 0xFF), ("e5m2", 1e6, 0x7B), ("e5m2fnuz", -1e6, 0xFF),
             ("e4m3fn", 464.0, 0x7E), ("e4m3fnuz", -0.0, 0x00), ("e4m3fn", -0.0, 0x80)]
    for fmt, x, want in cases:
        got = int(formats.encode_fp8(np.array([x]), fmt, overflow="saturate")[0])
        check(got == want, "saturate %s(%r) = %#x, want %#x" % (fmt, x, got, want))
    # Overflow without saturation: NaN, or inf for e5m2.
    for fmt, x, want in [("e4m3fnuz", 250.0, 0x80), ("e5m2", 61440.0, 0x7C),
                         ("e5m2", 61439.0, 0x7B), ("e4m3fn", 465.0, 0x7F)]:
        got = int(formats.encode_fp8(np.array([x]), fmt)[0])
        check(got == want, "overflow %s(%r) = %#x, want %#x" % (fmt, x, got, want))


def test_e8m0_and_bf16():
    s = np.arange(256, dtype=np.uint8)
    prod = formats.decode_e8m0(s, "production")
    spec = formats.decode_e8m0(s, "spec")
    check(prod[0] == 0.0 and prod[1] == 2.0 ** -126 and prod[127] == 1.0
          and prod[254] == 2.0 ** 127 and prod[255] == math.inf, "production E8M0 ends")
    check(spec[0] == 2.0 ** -127 and math.isnan(spec[255]), "spec E8M0 ends")
    ref = s[:255].view(ml_dtypes.float8_e8m0fnu).astype(np.float64)
    check(np.array_equal(spec[:255], ref), "spec E8M0 vs ml_dtypes")
    # Production decode = the byte in a BF16 exponent field.
    via_bf16 = (s.astype(np.uint16) << 7).view(ml_dtypes.bfloat16).astype(np.float64)
    check(np.array_equal(prod, via_bf16), "production E8M0 = s << 7 as BF16")
    # BF16 decode, all 65536 patterns.
    allb = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    mine = formats.bf16_to_f32(allb)
    refb = allb.view(ml_dtypes.bfloat16).astype(np.float32)
    check(np.array_equal(mine.view(np.uint32), refb.view(np.uint32)), "bf16_to_f32 exhaustive")
    # BF16 encode: random bit patterns, every exponent class, and midpoints.
    r = np.random.default_rng(7)
    u = r.integers(0, 1 << 32, 300000, dtype=np.uint64).astype(np.uint32)
    mids = (allb.astype(np.uint32) << 16) | 0x8000
    tails = (allb.astype(np.uint32) << 16) | 0x7FFF
    f = np.concatenate([u, mids, tails, mids + 1]).view(np.float32)
    mine = formats.f32_to_bf16(f)
    with np.errstate(invalid="ignore"):
        refb = f.astype(ml_dtypes.bfloat16).view(np.uint16)
    nanm = np.isnan(f)
    check(np.array_equal(mine[~nanm], refb[~nanm]), "f32_to_bf16 vs ml_dtypes (%d values)" % f.size)
    check(bool(np.all(formats.bf16_nonfinite(mine[nanm]) & ((mine[nanm] & 0x7F) != 0))),
          "f32_to_bf16 keeps NaN")


def test_round_to_f32():
    r = np.random.default_rng(9)
    cases = [Fraction(1), Fraction(-3, 7), Fraction(2) ** -149, Fraction(2) ** -150,
             Fraction(3) * Fraction(2) ** -151, Fraction(2) ** -150 + Fraction(1, 10 ** 60),
             F32_OVER, F32_OVER - Fraction(1, 10 ** 9), Fraction(2) ** 128,
             Fraction(F32_MAX), Fraction(1) + Fraction(2) ** -24,
             Fraction(1) + Fraction(2) ** -24 + Fraction(2) ** -80,
             Fraction(2) ** -126 - Fraction(2) ** -150]
    for _ in range(3000):
        num = int(r.integers(-(1 << 62), 1 << 62))
        cases.append(Fraction(num, 1) * Fraction(2) ** int(r.integers(-220, 100)) /
                     int(r.integers(1, 1 << 30)))
    bad = [c for c in cases if formats.round_to_f32(c) != o_rn32(c)]
    check(not bad, "round_to_f32 vs oracle: %d differ, first %r" % (len(bad), bad[:1]))


# ---- emulations --------------------------------------------------------------------

def random_mx_case(seed, fmt, T, k, E, N, K, *, a_per_route, weighted, layout, absent=0,
                   scale_lo=115, scale_hi=135):
    r = np.random.default_rng(seed)
    fin = np.flatnonzero(np.isfinite(formats.fp8_format(fmt).table)).astype(np.uint8)
    rows = T * k if a_per_route else T
    a = fin[r.integers(0, fin.size, (rows, K))]
    b = fin[r.integers(0, fin.size, (E, N, K))]
    sa = r.integers(scale_lo, scale_hi, (rows, K // 32)).astype(np.uint8)
    sb_rows = r.integers(scale_lo, scale_hi, (E, N, K // 32)).astype(np.uint8)
    eids = np.sort(r.permutation(E + absent)[:E])
    ids = np.array([r.permutation(E + absent)[:k] for _ in range(T)])
    if absent:
        missing = sorted(set(range(E + absent)) - set(eids.tolist()))[0]
        if missing not in ids[0]:
            ids[0, 0] = missing          # at least one route to an expert not held
    w = r.random((T, k)).astype(np.float32) if weighted else None
    sb = sb_rows if layout == "rows" else np.ascontiguousarray(sb_rows.transpose(0, 2, 1))
    return dict(a=a, a_scale=sa, b=b, b_scale=sb, topk_ids=ids, topk_weights=w,
                expert_ids=eids if absent else None, scale_layout=layout,
                a_per_route=a_per_route, mul_routed_weight=weighted,
                element_format=fmt), sb_rows


def test_mxfp8_emulation_vs_oracle():
    specs = [
        ("e4m3fnuz", 3, 2, 3, 4, 64, False, False, "packed", 0, "production"),
        ("e4m3fnuz", 2, 2, 3, 3, 96, True, True, "rows", 0, "production"),
        ("e4m3fn", 3, 2, 2, 3, 64, False, True, "rows", 2, "production"),
        ("e5m2", 2, 2, 2, 3, 64, True, False, "packed", 0, "spec"),
        ("e5m2fnuz", 2, 1, 2, 4, 32, False, True, "rows", 1, "production"),
        ("e4m3fn", 2, 2, 2, 2, 64, False, False, "rows", 0, "spec"),
    ]
    for i, (fmt, T, k, E, N, K, apr, wt, layout, absent, dec) in enumerate(specs):
        kw, sb_rows = random_mx_case(100 + i, fmt, T, k, E, N, K, a_per_route=apr,
                                     weighted=wt, layout=layout, absent=absent)
        got = mc.mxfp8_group_gemm(e8m0_decode=dec, **kw)
        av = [[o_fp8(c, fmt) for c in row] for row in kw["a"]]
        bv = [[[o_fp8(c, fmt) for c in row] for row in ex] for ex in kw["b"]]
        eids = kw["expert_ids"] if kw["expert_ids"] is not None else np.arange(E)
        want = o_group_gemm(av, kw["a_scale"], bv, sb_rows, kw["topk_ids"], a_per_route=apr,
                            weights=kw["topk_weights"], expert_ids=eids, decode=dec)
        bad = same_bf16(got, want)
        check(not bad, "mxfp8 emulation vs oracle, case %d (%s): %d differ, first %r"
              % (i, fmt, len(bad), bad[:1]))
        if absent:
            local = np.isin(kw["topk_ids"].reshape(-1), eids)
            check(bool(np.all(got[~local] == 0)) and (~local).any(), "EP rows zero, case %d" % i)
    # Extreme scales: products over- and underflow FP32 (inf, 0*inf = NaN).
    kw, sb_rows = random_mx_case(200, "e4m3fnuz", 2, 2, 2, 3, 64, a_per_route=False,
                                 weighted=False, layout="rows", scale_lo=0, scale_hi=255)
    kw["a_scale"][0, 0] = 254
    kw["b_scale"][:, :, 0] = 254
    kw["a_scale"][1, 1] = 0
    kw["b_scale"][:, 0, 1] = 1
    for dec in ("production", "spec"):
        got = mc.mxfp8_group_gemm(e8m0_decode=dec, **kw)
        av = [[o_fp8(c, "e4m3fnuz") for c in row] for row in kw["a"]]
        bv = [[[o_fp8(c, "e4m3fnuz") for c in row] for row in ex] for ex in kw["b"]]
        want = o_group_gemm(av, kw["a_scale"], bv, kw["b_scale"], kw["topk_ids"],
                            a_per_route=False, weights=None, expert_ids=np.arange(2), decode=dec)
        bad = same_bf16(got, want)
        check(not bad, "mxfp8 extreme scales (%s): %d differ, first %r" % (dec, len(bad), bad[:1]))
        check(bool(np.any(formats.bf16_nonfinite(got))), "extreme scales reach inf (%s)" % dec)


def test_bf16_emulation_vs_oracle():
    r = np.random.default_rng(31)
    cases = [(3, 2, 3, 3, 70, False, True), (2, 2, 2, 4, 32, True, False),
             (2, 1, 2, 2, 7, False, False)]
    for i, (T, k, E, N, K, apr, wt) in enumerate(cases):
        rows = T * k if apr else T
        x = (r.standard_normal((rows, K)) * np.exp2(r.integers(-30, 30, (rows, K))))
        y = (r.standard_normal((E, N, K)) * np.exp2(r.integers(-30, 30, (E, N, K))))
        a = x.astype(np.float32).astype(ml_dtypes.bfloat16)
        b = y.astype(np.float32).astype(ml_dtypes.bfloat16)
        ids = np.array([r.permutation(E)[:k] for _ in range(T)])
        w = r.random((T, k)).astype(np.float32) if wt else None
        got = mc.bf16_group_gemm(a, b, ids, a_per_route=apr, topk_weights=w,
                                 mul_routed_weight=wt)
        av = a.astype(np.float64).tolist()
        bv = b.astype(np.float64).tolist()
        want = o_group_gemm(av, None, bv, None, ids, a_per_route=apr, weights=w,
                            expert_ids=np.arange(E))
        bad = same_bf16(got, want)
        check(not bad, "bf16 emulation vs oracle, case %d: %d differ, first %r"
              % (i, len(bad), bad[:1]))


def test_exactness_fallback():
    """A group whose float64 sum double-rounds: the exact path must run."""
    av = np.zeros((1, 1, 32))
    bv = np.zeros((1, 1, 32))
    av[0, 0, :3] = [2.0 ** 15, 2.0 ** 3, 2.0 ** -16]     # E5M2 values
    bv[0, 0, :3] = [2.0 ** 15, 2.0 ** 3, 2.0 ** -16]
    naive = np.float32(av[0, 0] @ bv[0, 0])
    got = group_partials(av, bv, 3)[0, 0, 0]
    want = 2.0 ** 30 + 2.0 ** 7                            # above the FP32 midpoint
    check(float(naive) == 2.0 ** 30, "test premise: binary64 then FP32 double-rounds")
    check(float(got) == want, "exact partial %r, want %r" % (float(got), want))
    # Through the public entry point with E5M2 codes.
    c = formats.encode_fp8(av[0], "e5m2")
    d = formats.encode_fp8(bv[0], "e5m2").reshape(1, 1, 32)
    out, acc = mc.mxfp8_group_gemm(c, np.full((1, 1), 127, np.uint8), d,
                                   np.full((1, 1, 1), 127, np.uint8), np.zeros((1, 1), int),
                                   element_format="e5m2", return_acc=True)
    check(float(acc[0, 0]) == want, "mxfp8_group_gemm uses the exact partial")


def test_gemm_hand_cases():
    def one(a_vals, b_vals, sa, sb, fmt="e4m3fn", decode="production", w=None):
        a = formats.encode_fp8(np.array([a_vals], float), fmt)
        b = formats.encode_fp8(np.array([[b_vals]], float), fmt)
        check(np.array_equal(formats.decode_fp8(a, fmt), np.array([a_vals])), "hand values exact")
        out, acc = mc.mxfp8_group_gemm(
            a, np.array([sa], np.uint8), b, np.array([[sb]], np.uint8), np.zeros((1, 1), int),
            element_format=fmt, e8m0_decode=decode, return_acc=True,
            topk_weights=None if w is None else np.array([[w]], np.float32),
            mul_routed_weight=w is not None)
        return int(out[0, 0]), float(acc[0, 0])

    pad = [0.0] * 30
    # 1 + 2^-8 is a BF16 tie: even is 1.0 (0x3F80); 1 + 3*2^-8 ties up to 0x3F82.
    check(one([1.0, 2 ** -8] + pad, [1.0, 1.0] + pad, [127], [127]) == (0x3F80, 1 + 2 ** -8),
          "BF16 tie to even (down)")
    check(one([1.0, 3 * 2 ** -8] + pad, [1.0, 1.0] + pad, [127], [127])[0] == 0x3F82,
          "BF16 tie to even (up)")
    # Scales per group: 2 * 1 + 0.5 * 1 = 2.5 (0x4020).
    check(one([1.0] + [0.0] * 31 + [1.0] + [0.0] * 31, [1.0] + [0.0] * 31 + [1.0] + [0.0] * 31,
              [128, 126], [127, 127])[0] == 0x4020, "scale applied per group")
    # Scale byte 0: production 0.0 (nothing), spec 2^-127 (times 2^127 = 1).
    args = ([1.0] + pad + [0.0], [1.0] + pad + [0.0], [0], [254])
    check(one(*args)[0] == 0x0000, "production decode of byte 0 is 0.0")
    check(one(*args, decode="spec")[0] == 0x3F80, "spec decode of byte 0 is 2^-127")
    # FP32 accumulation across groups: 2^24 + 1 + (-2^24) = 0 (1 is absorbed).
    z = [0.0] * 31
    check(one([256.0] + z + [1.0] + z + [-256.0] + z, [256.0] + z + [1.0] + z + [256.0] + z,
              [131, 127, 131], [131, 127, 131]) == (0x0000, 0.0), "FP32 absorption across groups")
    # Within a group the sum is exact before its one rounding: 256 + 2^-18 - 256.
    got = one([16.0, 2 ** -9, -16.0] + [0.0] * 29, [16.0, 2 ** -9, 16.0] + [0.0] * 29, [127], [127])
    check(got == (0x3680, 2.0 ** -18), "group partial exact before rounding: %r" % (got,))
    # Weight on the FP32 accumulator: RN32(3 * RN32(1/3)) = 1.
    check(one([3.0] + [0.0] * 31, [1.0] + [0.0] * 31, [127], [127], w=1 / 3)[0] == 0x3F80,
          "top-k weight on the accumulator")


def test_quantizer_hand():
    def q(vals, fmt="e4m3fnuz", rule="production", **kw):
        x = np.zeros((1, 32), np.float32)
        x[0, :len(vals)] = vals
        codes, s = mc.mx_quantize(x, element_format=fmt, scale_rule=rule, **kw)
        return [int(c) for c in codes[0, :len(vals)]], int(s[0, 0])

    # amax 3 -> X = 1, s = 128; x / 2 = 0.75, -0.375, 1.5 in E4M3FNUZ (bias 8).
    check(q([1.5, -0.75, 3.0]) == ([0x3C, 0xB4, 0x44], 128), "production, amax 3")
    # All zeros: amax clamped to 1e-30, floor(log2) = -100, s = 27.
    check(q([]) == ([], 27) and q([0.0]) == ([0x00], 27), "production, zero block")
    # Flush to zero and subnormal ties, amax 1 (s = 127): min subnormal 2^-10.
    check(q([1.0, 2 ** -12, 3 * 2 ** -12, 2 ** -11, 1.5 * 2 ** -10])
          == ([0x40, 0x00, 0x01, 0x00, 0x02], 127), "production, subnormals: %r"
          % (q([1.0, 2 ** -12, 3 * 2 ** -12, 2 ** -11, 1.5 * 2 ** -10]),))
    # Rounding into the next binade: 1.9921875 -> 2.0 (FNUZ 0x48, FN 0x40).
    check(q([1.9921875]) == ([0x48], 127), "production rounds up a binade (FNUZ)")
    check(q([1.9921875], fmt="e4m3fn") == ([0x40], 127), "production rounds up a binade (FN)")
    # OCP, E4M3FN: amax 3 -> X = 1 - 8 = -7, s = 120; 3 * 128 = 384 (0x7C), 1.5*128 (0x74).
    check(q([3.0, 1.5], fmt="e4m3fn", rule="ocp") == ([0x7C, 0x74], 120), "ocp amax 3")
    # OCP saturates: 3.9 * 128 = 499.2 -> 448 (0x7E).
    check(q([3.9], fmt="e4m3fn", rule="ocp") == ([0x7E], 120), "ocp saturates")
    check(q([0.0], fmt="e4m3fn", rule="ocp") == ([0x00], 0), "ocp zero block")
    # RCEIL, max 448, FNUZ: amax 3 -> ceil(log2(3/448)) = -7, s = 120; 384 overflows -> NaN.
    check(q([3.0], rule="rceil") == ([0x80], 120), "rceil 448 overflows FNUZ")
    check(q([3.0], fmt="e4m3fn", rule="rceil") == ([0x7C], 120), "rceil fn")
    # Exactly on the boundary: amax = 448 * 2^-7 = 3.5 -> X = -7 (not -6).
    check(q([3.5], fmt="e4m3fn", rule="rceil") == ([0x7E], 120), "rceil exact boundary")
    check(q([3.5], fmt="e4m3fn", rule="rceil", rceil_max=240.0)[1] == 121, "rceil 240")


def o_quantize(x32, fmt, rule, rceil_max=448.0):
    """Independent quantizer: exact exponents by integer search, elements
    through ml_dtypes casts (clipped first for the saturating ocp rule)."""
    f = ML[fmt]
    fmax = float(ml_dtypes.finfo(f).max)
    emax = math.floor(math.log2(fmax))
    rows, K = x32.shape
    q = np.zeros((rows, K), np.uint8)
    s = np.zeros((rows, K // 32), np.uint8)
    for r in range(rows):
        for g in range(K // 32):
            blk = x32[r, 32 * g:32 * g + 32].astype(np.float64)
            amax = Fraction(float(np.max(np.abs(blk))))
            if rule == "ocp" and amax == 0:
                X = -127
            else:
                if rule != "ocp":
                    amax = max(amax, Fraction(float(np.float32(1e-30))))
                start = math.floor(math.log2(float(amax))) - 3
                if rule == "rceil":
                    X = start - 9
                    while amax > Fraction(rceil_max) * Fraction(2) ** X:
                        X += 1
                else:
                    X = start
                    while Fraction(2) ** (X + 1) <= amax:
                        X += 1
                    if rule == "ocp":
                        X -= emax
            sb = min(max(X + 127, 0), 254)
            s[r, g] = sb
            y = blk * 2.0 ** (127 - sb)
            if rule == "ocp":
                y = np.clip(y, -fmax, fmax)
            q[r, 32 * g:32 * g + 32] = y.astype(f).view(np.uint8)
    return q, s


def test_quantizer_vs_oracle():
    r = np.random.default_rng(41)
    rows, K = 6, 128
    x = (r.standard_normal((rows, K)) * np.exp2(r.integers(-20, 20, (rows, 1)))).astype(np.float32)
    x[0, :32] = 0.0
    x[1, 32:64] = 2.0 ** -140            # subnormal FP32 block
    x[2, 64:96] *= 1e30
    x[3, :32] = np.float32(1.9999999)    # just below a power of two
    xb = x.astype(ml_dtypes.bfloat16)
    for fmt in formats.FP8_FORMATS:
        for rule in ("production", "ocp", "rceil"):
            for src in (x, xb):
                qm, sm = mc.mx_quantize(src, element_format=fmt, scale_rule=rule)
                qo, so = o_quantize(src.astype(np.float32), fmt, rule)
                vm, vo = formats.decode_fp8(qm, fmt), formats.decode_fp8(qo, fmt)
                same = (np.isnan(vm) == np.isnan(vo)) & (np.isnan(vo) | (qm == qo))
                check(np.array_equal(sm, so) and bool(same.all()),
                      "quantizer %s %s %s: scales equal %s, %d bytes differ" % (
                          fmt, rule, src.dtype, np.array_equal(sm, so), int((~same).sum())))
    # Non-finite input is refused with the element named.
    bad = x.copy()
    bad[2, 5] = np.nan
    expect_error(lambda: mc.mx_quantize(bad), ["mx_quantize", "argument 'x'", "[2, 5]", "NaN"],
                 "mx_quantize NaN")


# ---- the writer ----------------------------------------------------------------------

def test_stfile_vs_library():
    if deserialize is None:
        return
    r = np.random.default_rng(3)
    arrays = {
        "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16,
        "I64": np.int64, "I32": np.int32, "I8": np.int8, "U8": np.uint8,
        "F8_E4M3": ml_dtypes.float8_e4m3fn, "F8_E4M3FNUZ": ml_dtypes.float8_e4m3fnuz,
        "F8_E5M2": ml_dtypes.float8_e5m2, "F8_E5M2FNUZ": ml_dtypes.float8_e5m2fnuz,
        "F8_E8M0": ml_dtypes.float8_e8m0fnu,
    }
    for meta in (None, {"k": "v\n\"q\"\\ \x01 \u00e9"}):
        typed, mine = {}, {}
        for i, (name, dt) in enumerate(arrays.items()):
            shape = [(2, 3), (5,), (), (0, 2), (1, 2, 3)][i % 5]
            raw = r.integers(0, 256, int(np.prod(shape)) * np.dtype(dt).itemsize, dtype=np.uint8)
            arr = raw.view(dt).reshape(shape)
            tname = "t%s_%s" % ("zyx"[i % 3], name)
            typed[tname] = arr
            mine[tname] = (name, raw.view(stfile.STORAGE[name]).reshape(shape))
        lib = st_save(typed, metadata=meta)
        check(stfile.serialize(mine, meta) == lib, "serialize == safetensors.numpy.save (meta %r)"
              % (meta,))
    # Several metadata keys: sorted here, hash order in the library.
    meta = {"b": "2", "a": "1", "c": "3"}
    data = stfile.serialize({"x": ("U8", np.arange(3, dtype=np.uint8))}, meta)
    check(list(header_of(data)["__metadata__"]) == ["a", "b", "c"], "metadata keys sorted")
    check((8 + struct.unpack("<Q", data[:8])[0]) % 8 == 0, "header padded")


def roundtrip_check(path, want_tensors, want_meta, what):
    """want_tensors: name -> (dtype name, raw array)."""
    data = read_bytes(path)
    if deserialize is not None:
        got = dict(deserialize(data))
        check(set(got) == set(want_tensors), "%s: names %s" % (what, sorted(got)))
        for name, (dtype, arr) in want_tensors.items():
            v = got.get(name)
            if v is None:
                continue
            check(v["dtype"] == dtype, "%s: %s dtype %s, want %s" % (what, name, v["dtype"], dtype))
            check(list(v["shape"]) == list(arr.shape), "%s: %s shape %s" % (what, name, v["shape"]))
            check(bytes(v["data"]) == np.ascontiguousarray(arr).tobytes(), "%s: %s bytes" % (what, name))
        with safe_open(path, framework="np") as f:
            check(f.metadata() == want_meta, "%s: metadata %r" % (what, f.metadata()))
    meta, tensors = mc.read_capture(path)
    check(meta == want_meta, "%s: read_capture metadata" % what)
    check(all(tensors[n][0] == d and np.array_equal(tensors[n][1], a)
              for n, (d, a) in want_tensors.items()) and set(tensors) == set(want_tensors),
          "%s: read_capture tensors" % what)


def mx_base(seed=1, fmt="e4m3fnuz", T=3, k=2, E=4, N=8, K=64, layout="packed"):
    r = np.random.default_rng(seed)
    a = rng.fp8_codes(seed, (T, K), fmt)
    b = rng.fp8_codes(seed + 1, (E, N, K), fmt)
    sa = r.integers(120, 130, (T, K // 32)).astype(np.uint8)
    sbr = r.integers(120, 130, (E, N, K // 32)).astype(np.uint8)
    sb = sbr if layout == "rows" else np.ascontiguousarray(sbr.transpose(0, 2, 1))
    ids = rng.distinct_rows(seed + 2, T, k, E)
    w = rng.weights(seed + 3, T, k)
    out = mc.mxfp8_group_gemm(a, sa, b, sb, ids, element_format=fmt, scale_layout=layout)
    return dict(a=a.view(ML[fmt]), a_scale=sa, b=b.view(ML[fmt]), b_scale=sb, topk_ids=ids,
                topk_weights=w, out=out.view(ml_dtypes.bfloat16), scale_layout=layout)


def test_roundtrips():
    kw = mx_base()
    p = mc.capture_mxfp8_group_gemm(fresh(), producer="unit test", metadata={"x.note": "hi"}, **kw)
    want = {"a": ("F8_E4M3FNUZ", kw["a"].view(np.uint8)), "a_scale": ("F8_E8M0", kw["a_scale"]),
            "b": ("F8_E4M3FNUZ", kw["b"].view(np.uint8)), "b_scale": ("F8_E8M0", kw["b_scale"]),
            "topk_ids": ("I32", kw["topk_ids"].astype(np.int32)),
            "topk_weights": ("F32", kw["topk_weights"]), "out": ("BF16", kw["out"].view(np.uint16))}
    meta = {"mxverify.capture": "1", "kind": "mxfp8_group_gemm", "producer": "unit test",
            "x.note": "hi", "element_format": "e4m3fnuz", "e8m0_decode": "production",
            "scale_layout": "packed", "accum_model": "fp32-group", "a_per_route": "false",
            "mul_routed_weight": "false", "experts": "4", "finite": "true"}
    roundtrip_check(p, want, meta, "mxfp8 round trip")
    check(os.stat(p).st_mode & 0o777 == 0o666 & ~_umask(), "file mode follows the umask")

    # routed_experts_only keeps the used experts and writes expert_ids.
    ids = np.array([[0, 2], [2, 0], [0, 2]])
    kw2 = dict(kw, topk_ids=ids, out=mc.mxfp8_group_gemm(
        kw["a"], kw["a_scale"], kw["b"], kw["b_scale"], ids, scale_layout="packed"))
    p = mc.capture_mxfp8_group_gemm(fresh(), routed_experts_only=True, **kw2)
    meta2, t2 = mc.read_capture(p)
    check(t2["b"][1].shape == (2, 8, 64) and np.array_equal(t2["expert_ids"][1], [0, 2])
          and np.array_equal(t2["b"][1], kw["b"].view(np.uint8)[[0, 2]])
          and np.array_equal(t2["b_scale"][1], kw["b_scale"][[0, 2]])
          and meta2["experts"] == "4", "routed_experts_only")
    # ... and the emulation on the reduced file gives the same output.
    out2 = mc.mxfp8_group_gemm(t2["a"][1], t2["a_scale"][1], t2["b"][1], t2["b_scale"][1],
                               t2["topk_ids"][1], element_format="e4m3fnuz",
                               scale_layout="packed", expert_ids=t2["expert_ids"][1])
    check(np.array_equal(out2, t2["out"][1]), "routed_experts_only file recomputes")

    # BF16 group GEMM, K not a multiple of 32, GEMM2 style.
    r = np.random.default_rng(4)
    a = r.standard_normal((6, 40)).astype(ml_dtypes.bfloat16)
    b = r.standard_normal((3, 5, 40)).astype(ml_dtypes.bfloat16)
    ids = rng.distinct_rows(9, 3, 2, 3)
    w = rng.weights(10, 3, 2)
    out = mc.bf16_group_gemm(a, b, ids, a_per_route=True, topk_weights=w, mul_routed_weight=True)
    p = mc.capture_bf16_group_gemm(fresh(), a=a, b=b, topk_ids=ids, out=out.reshape(3, 2, 5),
                                   topk_weights=w, a_per_route=True, mul_routed_weight=True,
                                   accum_model="fp32-seq")
    roundtrip_check(p, {"a": ("BF16", a.view(np.uint16)), "b": ("BF16", b.view(np.uint16)),
                        "topk_ids": ("I32", ids.astype(np.int32)), "topk_weights": ("F32", w),
                        "out": ("BF16", out)},
                    {"mxverify.capture": "1", "kind": "bf16_group_gemm", "accum_model": "fp32-seq",
                     "a_per_route": "true", "mul_routed_weight": "true", "experts": "3",
                     "finite": "true"}, "bf16 round trip")

    # mx_quant with BF16 and FP32 inputs, rceil with its max.
    x = r.standard_normal((4, 64)).astype(np.float32)
    qv, qs = mc.mx_quantize(x, element_format="e4m3fn", scale_rule="rceil", rceil_max=448)
    p = mc.capture_mx_quant(fresh(), x=x, q=qv, q_scale=qs, element_format="e4m3fn",
                            scale_rule="rceil", rceil_max=448)
    roundtrip_check(p, {"x": ("F32", x), "q": ("F8_E4M3", qv), "q_scale": ("F8_E8M0", qs)},
                    {"mxverify.capture": "1", "kind": "mx_quant", "element_format": "e4m3fn",
                     "scale_rule": "rceil", "rceil_max": "448", "finite": "true"}, "mx_quant")
    xb = x.astype(ml_dtypes.bfloat16)
    qv, qs = mc.mx_quantize(xb)
    p = mc.capture_mx_quant(fresh(), x=xb, q=qv.view(ml_dtypes.float8_e4m3fnuz),
                            q_scale=qs.view(ml_dtypes.float8_e8m0fnu))
    roundtrip_check(p, {"x": ("BF16", xb.view(np.uint16)), "q": ("F8_E4M3FNUZ", qv),
                        "q_scale": ("F8_E8M0", qs)},
                    {"mxverify.capture": "1", "kind": "mx_quant", "element_format": "e4m3fnuz",
                     "scale_rule": "production", "finite": "true"}, "mx_quant bf16")

    # moe_layer with every intermediate of the w8a8 dataflow.
    kw = moe_base()
    full = dict(kw, topk_ids=kw["topk_ids"], topk_weights=np.full((2, 2), 0.5, np.float32),
                xq=np.zeros((2, 64), np.uint8), xq_scale=np.full((2, 2), 127, np.uint8),
                g1=np.zeros((4, 64), np.uint16), actq=np.zeros((2, 2, 32), np.uint8),
                actq_scale=np.full((4, 1), 120, np.uint8), y=np.zeros((4, 64), np.uint16),
                routed=np.zeros((2, 64), np.uint16), shared_out=np.zeros((2, 64), np.uint16),
                router_logits=np.zeros((2, 8), np.float32),
                layer=5, max_model_len=8192, producer="p")
    p = mc.capture_moe_layer(fresh(), **full)
    meta, t = mc.read_capture(p)
    check(meta == {"mxverify.capture": "1", "kind": "moe_layer", "policy": "w8a8-mxfp8",
                   "shape": "custom", "hidden": "64", "intermediate": "32",
                   "intermediate_shared": "32", "experts": "8", "experts_local": "8",
                   "expert0": "0", "topk": "2", "tp": "1", "ep": "1", "layer": "5",
                   "max_model_len": "8192", "element_format": "e4m3fnuz",
                   "e8m0_decode": "production", "scale_rule": "production",
                   "accum_model": "fp32-group", "finite": "true", "producer": "p"},
          "moe_layer metadata %r" % meta)
    want = {"x": "BF16", "router_weight": "F32", "router_bias": "F32", "w13": "F8_E4M3",
            "w13_scale": "F8_E8M0", "w2": "F8_E4M3", "w2_scale": "F8_E8M0",
            "experts_present": "I32", "ws13": "F8_E4M3", "ws13_scale": "F8_E8M0",
            "ws2": "F8_E4M3", "ws2_scale": "F8_E8M0", "out": "BF16", "topk_ids": "I32",
            "topk_weights": "F32", "xq": "F8_E4M3FNUZ", "xq_scale": "F8_E8M0", "g1": "BF16",
            "actq": "F8_E4M3FNUZ", "actq_scale": "F8_E8M0", "y": "BF16", "routed": "BF16",
            "shared_out": "BF16", "router_logits": "F32"}
    check({n: d for n, (d, _) in t.items()} == want, "moe_layer dtypes %r" % sorted(t))
    check(t["actq"][1].shape == (4, 32) and t["w13"][1].shape == (2, 64, 64)
          and np.array_equal(t["w13"][1], kw["w13"]), "moe_layer shapes and bytes")
    if deserialize is not None:
        check(len(dict(deserialize(read_bytes(p)))) == len(want), "moe_layer: library reads it")
    # bf16 policy with act, ep=2 on rank 1.
    kw = moe_base(ep_rank=1)
    p = mc.capture_moe_layer(fresh(), **dict(kw, policy="bf16", ep=2, expert0=4,
                                             act=np.zeros((4, 32), np.uint16)))
    meta, t = mc.read_capture(p)
    check(meta["experts_local"] == "4" and meta["expert0"] == "4" and "act" in t, "moe ep=2")


def _umask():
    u = os.umask(0)
    os.umask(u)
    return u


def moe_base(ep_rank=0):
    """A tiny valid moe_layer: T=2, H=64, I=Is=32, 8 experts, top-2."""
    r = np.random.default_rng(12)
    present = np.array([0, 3]) + 4 * ep_rank
    fn = np.flatnonzero(np.isfinite(formats.fp8_format("e4m3fn").table)).astype(np.uint8)

    def w(*shape):
        return fn[r.integers(0, fn.size, shape)]
    return dict(
        x=r.standard_normal((2, 64)).astype(ml_dtypes.bfloat16),
        router_weight=r.standard_normal((8, 64)).astype(np.float32),
        router_bias=np.zeros(8, np.float32),
        w13=w(2, 64, 64), w13_scale=np.full((2, 64, 2), 120, np.uint8),
        w2=w(2, 64, 32), w2_scale=np.full((2, 64, 1), 120, np.uint8),
        experts_present=present,
        ws13=w(64, 64), ws13_scale=np.full((64, 2), 120, np.uint8),
        ws2=w(64, 32), ws2_scale=np.full((64, 1), 120, np.uint8),
        out=np.zeros((2, 64), np.uint16), policy="w8a8-mxfp8",
        topk_ids=np.array([[present[0], present[1]], [present[1], 3 if ep_rank else 0]]))


# ---- validation --------------------------------------------------------------------

def expect_error(fn, words, what, path=None):
    before = set(os.listdir(TMP))
    old = read_bytes(path) if path and os.path.exists(path) else None
    try:
        fn()
    except mc.CaptureError as e:
        msg = str(e)
        missing = [w for w in words if w not in msg]
        check(not missing, "%s: message %r lacks %r" % (what, msg, missing))
        check("\n" not in msg, "%s: message is one line" % what)
    except Exception as e:  # noqa: BLE001 - any other exception is the failure
        check(False, "%s: raised %s: %s" % (what, type(e).__name__, e))
    else:
        check(False, "%s: no error" % what)
    check(set(os.listdir(TMP)) == before, "%s: files left behind: %s" % (
        what, sorted(set(os.listdir(TMP)) - before)))
    if old is not None:
        check(read_bytes(path) == old, "%s: existing file changed" % what)


def test_mxfp8_errors():
    F = "capture_mxfp8_group_gemm"
    base = mx_base()
    path = fresh("exists")
    mc.capture_mxfp8_group_gemm(path, **base)
    fnuz = ML["e4m3fnuz"]

    def run(what, words, **change):
        kw = dict(base)
        kw.update(change)
        for key in [k for k, v in change.items() if v is _DROP]:
            kw.pop(key)
        expect_error(lambda: mc.capture_mxfp8_group_gemm(path, **kw), [F] + words, what, path)

    a_nan = base["a"].view(np.uint8).copy()
    a_nan[1, 7] = 0x80
    b_fn = np.zeros((4, 8, 64), np.uint8)
    b_fn[2, 3, 4] = 0x7F
    sa255 = base["a_scale"].copy()
    sa255[2, 1] = 255
    dup = base["topk_ids"].copy()
    dup[1] = [2, 2]
    oob = base["topk_ids"].copy()
    oob[2, 1] = 4
    neg = base["topk_ids"].copy()
    neg[0, 0] = -1
    w_nan = base["topk_weights"].copy()
    w_nan[1, 0] = np.inf
    cases = [
        ("a float32", ["argument 'a'", "float32 is not FP8"], dict(a=np.zeros((3, 64), np.float32))),
        ("a list", ["argument 'a'", "got list"], dict(a=[[0] * 64] * 3)),
        ("a None", ["argument 'a'", "is required"], dict(a=None)),
        ("a IEEE e4m3", ["argument 'a'", "IEEE-style"],
         dict(a=np.zeros((3, 64), ml_dtypes.float8_e4m3))),
        ("a e8m0", ["argument 'a'", "E8M0 is not FP8"],
         dict(a=np.zeros((3, 64), np.uint8).view(ml_dtypes.float8_e8m0fnu))),
        ("raw bytes no format", ["argument 'element_format'", "is required", "a and b"],
         dict(a=base["a"].view(np.uint8), b=base["b"].view(np.uint8))),
        ("formats differ", ["argument 'b'", "holds e4m3fn values but 'a' holds e4m3fnuz"],
         dict(b=base["b"].view(np.uint8).view(ML["e4m3fn"]))),
        ("format vs element_format", ["argument 'a'", "element_format='e4m3fn'"],
         dict(element_format="e4m3fn")),
        ("bad element_format", ["argument 'element_format'", "'e4m3' is not one of"],
         dict(element_format="e4m3")),
        ("K % 32", ["argument 'b'", "K = 48 is not a multiple of 32"],
         dict(b=np.zeros((4, 8, 48), fnuz), a=np.zeros((3, 48), fnuz))),
        ("b rank", ["argument 'b'", "rank 2", "[E, N, K]"], dict(b=np.zeros((8, 64), fnuz))),
        ("b empty", ["argument 'b'", "empty"], dict(b=np.zeros((0, 8, 64), fnuz))),
        ("a K", ["argument 'a'", "K = 32 but b has K = 64"], dict(a=np.zeros((3, 32), fnuz))),
        ("a rows per route", ["argument 'a'", "6 rows, expected T = 3", "a_per_route=True"],
         dict(a=np.zeros((6, 64), fnuz))),
        ("a rows per token", ["argument 'a'", "3 rows, expected T*k = 6", "a_per_route=False"],
         dict(a_per_route=True)),
        ("a_scale shape", ["argument 'a_scale'", "[3, 3] does not match [rows of a, K/32] = [3, 2]"],
         dict(a_scale=np.zeros((3, 3), np.uint8))),
        ("a_scale float", ["argument 'a_scale'", "float32 is not E8M0"],
         dict(a_scale=np.ones((3, 2), np.float32))),
        ("b_scale rows given as packed", ["argument 'b_scale'", "packed layout", "scale_layout='packed'"],
         dict(scale_layout="rows")),
        ("b_scale packed given as rows", ["argument 'b_scale'", "rows layout", "scale_layout='rows'"],
         dict(b_scale=np.ascontiguousarray(base["b_scale"].transpose(0, 2, 1)))),
        ("b_scale shape", ["argument 'b_scale'", "does not match [E, K/32, N] = [4, 2, 8]"],
         dict(b_scale=np.zeros((4, 2, 9), np.uint8))),
        ("scale_layout", ["argument 'scale_layout'", "'cols' is not one of rows, packed"],
         dict(scale_layout="cols")),
        ("e8m0_decode", ["argument 'e8m0_decode'", "'ocp' is not one of"], dict(e8m0_decode="ocp")),
        ("accum_model", ["argument 'accum_model'", "'fp64'"], dict(accum_model="fp64")),
        ("accum_model block", ["argument 'accum_model'", "'block:'"], dict(accum_model="block:")),
        ("a_per_route str", ["argument 'a_per_route'", "True or False"], dict(a_per_route="yes")),
        ("finite int", ["argument 'finite'", "True or False"], dict(finite=1)),
        ("routed_experts_only", ["argument 'routed_experts_only'"], dict(routed_experts_only=None)),
        ("topk_ids float", ["argument 'topk_ids'", "float64 is not an integer type"],
         dict(topk_ids=np.zeros((3, 2)))),
        ("topk_ids rank", ["argument 'topk_ids'", "rank 1"], dict(topk_ids=np.zeros(6, int))),
        ("topk_ids range", ["argument 'topk_ids'", "element [2, 1] is 4, outside [0, 4)"],
         dict(topk_ids=oob)),
        ("topk_ids negative", ["argument 'topk_ids'", "element [0, 0] is -1"], dict(topk_ids=neg)),
        ("topk_ids duplicate", ["argument 'topk_ids'", "token 1 lists expert 2 twice"],
         dict(topk_ids=dup)),
        ("weights missing", ["argument 'topk_weights'", "required with mul_routed_weight=True"],
         dict(topk_weights=None, mul_routed_weight=True)),
        ("weights float64", ["argument 'topk_weights'", "float64", "not float32"],
         dict(topk_weights=np.zeros((3, 2)))),
        ("weights shape", ["argument 'topk_weights'", "[T, k] = [3, 2]"],
         dict(topk_weights=np.zeros((2, 3), np.float32))),
        ("weights inf", ["argument 'topk_weights'", "element [1, 0] is +inf", "finite=True"],
         dict(topk_weights=w_nan)),
        ("a NaN", ["argument 'a'", "element [1, 7] is NaN (byte 0x80 in e4m3fnuz)"],
         dict(a=a_nan.view(fnuz))),
        ("b NaN fn", ["argument 'b'", "element [2, 3, 4] is NaN (byte 0x7F in e4m3fn)"],
         dict(a=np.zeros((3, 64), np.uint8), b=b_fn, element_format="e4m3fn")),
        ("b inf e5m2", ["argument 'b'", "is +inf (byte 0x7C in e5m2)"],
         dict(a=np.zeros((3, 64), ML["e5m2"]), b=np.full((4, 8, 64), 0x7C, np.uint8).view(ML["e5m2"]))),
        ("scale 255", ["argument 'a_scale'", "element [2, 1] is scale byte 255"],
         dict(a_scale=sa255)),
        ("scale 255 not finite", ["argument 'a_scale'", "scale byte 255"],
         dict(a_scale=sa255, finite=False)),
        ("out float64", ["argument 'out'", "float64 is not BF16 or float32"],
         dict(out=np.zeros((6, 8), np.float64))),
        ("out shape", ["argument 'out'", "[6, 9] does not match [T*k, N] = [6, 8]"],
         dict(out=np.zeros((6, 9), np.uint16))),
        ("out rank", ["argument 'out'", "rank 1"], dict(out=np.zeros(48, np.uint16))),
        ("out None", ["argument 'out'", "is required"], dict(out=None)),
        ("expert_ids dup", ["argument 'expert_ids'", "expert 1 appears twice"],
         dict(expert_ids=np.array([0, 1, 1, 3]))),
        ("expert_ids shape", ["argument 'expert_ids'", "[E] = [4]"], dict(expert_ids=np.arange(3))),
        ("expert_ids range", ["argument 'expert_ids'", "element [3] is 9, outside [0, 8)"],
         dict(expert_ids=np.array([0, 1, 2, 9]), num_experts=8)),
        ("num_experts small", ["argument 'num_experts'", "fewer than the 4 experts"],
         dict(num_experts=3)),
        ("num_experts bool", ["argument 'num_experts'", "integer"], dict(num_experts=True)),
        ("producer type", ["argument 'producer'", "must be a str"], dict(producer=5)),
        ("producer NUL", ["argument 'producer'", "NUL"], dict(producer="a\x00b")),
        ("producer surrogate", ["argument 'producer'", "UTF-8"], dict(producer="a\ud800")),
        ("metadata reserved", ["argument 'metadata'", "key 'kind' is set by the capture"],
         dict(metadata={"kind": "x"})),
        ("metadata value", ["argument 'metadata'", "value of 'n' must be a str"],
         dict(metadata={"n": 1})),
        ("metadata type", ["argument 'metadata'", "dict"], dict(metadata=["a"])),
    ]
    for what, words, change in cases:
        run(what, words, **change)
    expect_error(lambda: mc.capture_mxfp8_group_gemm(os.path.join(TMP, "nodir", "x.st"), **base),
                 [F, "argument 'path'", "does not exist"], "missing directory")
    expect_error(lambda: mc.capture_mxfp8_group_gemm(TMP, **base),
                 [F, "argument 'path'", "is a directory"], "path is a directory")
    expect_error(lambda: mc.capture_mxfp8_group_gemm(3.5, **base),
                 [F, "argument 'path'", "str or os.PathLike"], "path float")
    # finite=False lets NaN inputs through (and says so in the metadata).
    p = mc.capture_mxfp8_group_gemm(fresh(), **dict(base, a=a_nan.view(fnuz), finite=False))
    check(mc.read_capture(p)[0]["finite"] == "false", "finite=False accepted")
    # Outputs are never refused for their values.
    out = base["out"].view(np.uint16).copy()
    out[0, 0] = 0x7FC0
    mc.capture_mxfp8_group_gemm(fresh(), **dict(base, out=out))
    check(True, "NaN in out accepted")


_DROP = object()


def test_other_errors():
    # BF16 grouped GEMM.
    F = "capture_bf16_group_gemm"
    r = np.random.default_rng(5)
    a = r.standard_normal((3, 40)).astype(ml_dtypes.bfloat16)
    b = r.standard_normal((2, 4, 40)).astype(ml_dtypes.bfloat16)
    ids = np.array([[0, 1], [1, 0], [0, 1]])
    base = dict(a=a, b=b, topk_ids=ids, out=np.zeros((6, 4), np.uint16))
    mc.capture_bf16_group_gemm(fresh(), **base)
    check(True, "bf16 K=40 accepted")
    b_inf = b.view(np.uint16).copy()
    b_inf[1, 2, 3] = 0xFF80
    for what, words, change in [
            ("a fp8", ["argument 'a'", "FP8 e4m3fn is not BF16"],
             dict(a=np.zeros((3, 40), ML["e4m3fn"]))),
            ("a float16", ["argument 'a'", "float16 is not BF16"], dict(a=np.zeros((3, 40), np.float16))),
            ("b -inf", ["argument 'b'", "element [1, 2, 3] is -inf (BF16 0xFF80)"], dict(b=b_inf)),
            ("ids", ["argument 'topk_ids'", "outside [0, 2)"], dict(topk_ids=ids + 1)),
            ("a rows", ["argument 'a'", "expected T = 3"], dict(a=a[:2])),
    ]:
        kw = dict(base)
        kw.update(change)
        expect_error(lambda: mc.capture_bf16_group_gemm(fresh(), **kw), [F] + words, "bf16 " + what)

    # mx_quant.
    F = "capture_mx_quant"
    x = r.standard_normal((2, 64)).astype(np.float32)
    qv, qs = mc.mx_quantize(x)
    base = dict(x=x, q=qv.view(ML["e4m3fnuz"]), q_scale=qs)
    x_nan = x.copy()
    x_nan[1, 9] = np.nan
    for what, words, change in [
            ("x int", ["argument 'x'", "int32 is not BF16 or float32"],
             dict(x=np.zeros((2, 64), np.int32))),
            ("x float64", ["argument 'x'", "float64"], dict(x=x.astype(np.float64))),
            ("x K", ["argument 'x'", "K = 48 is not a multiple of 32"],
             dict(x=np.zeros((2, 48), np.float32))),
            ("x rank", ["argument 'x'", "rank 1"], dict(x=np.zeros(64, np.float32))),
            ("x NaN", ["argument 'x'", "element [1, 9] is NaN"], dict(x=x_nan)),
            ("q shape", ["argument 'q'", "[rows, K] = [2, 64]"],
             dict(q=np.zeros((2, 32), ML["e4m3fnuz"]))),
            ("q_scale shape", ["argument 'q_scale'", "[rows, K/32] = [2, 2]"],
             dict(q_scale=np.zeros((2, 3), np.uint8))),
            ("q raw", ["argument 'element_format'", "is required when q are raw"], dict(q=qv)),
            ("q format", ["argument 'q'", "holds e4m3fnuz values but element_format='e5m2'"],
             dict(element_format="e5m2")),
            ("rule", ["argument 'scale_rule'", "'floor' is not one of production, ocp, rceil"],
             dict(scale_rule="floor")),
            ("rceil_max without rceil", ["argument 'rceil_max'", "applies only to scale_rule='rceil'"],
             dict(rceil_max=448)),
            ("rceil_max negative", ["argument 'rceil_max'", "positive finite"],
             dict(scale_rule="rceil", rceil_max=-1.0)),
            ("rceil_max nan", ["argument 'rceil_max'", "positive finite"],
             dict(scale_rule="rceil", rceil_max=float("nan"))),
    ]:
        kw = dict(base)
        kw.update(change)
        expect_error(lambda: mc.capture_mx_quant(fresh(), **kw), [F] + words, "mx_quant " + what)
    # The kernel's q and q_scale are judged, not refused: NaN bytes and 255 pass.
    qbad, sbad = qv.copy(), qs.copy()
    qbad[0, 0], sbad[0, 0] = 0x80, 255
    mc.capture_mx_quant(fresh(), x=x, q=qbad, q_scale=sbad, element_format="e4m3fnuz")
    check(True, "mx_quant outputs with NaN and 255 accepted")
    mc.capture_mx_quant(fresh(), x=x_nan, q=qv, q_scale=qs, element_format="e4m3fnuz", finite=False)
    check(True, "mx_quant finite=False")

    # moe_layer.
    F = "capture_moe_layer"
    base = moe_base()
    w13_254 = base["w13_scale"].copy()
    w13_254[1, 5, 0] = 254
    w2_nan = base["w2"].copy()
    w2_nan[0, 1, 2] = 0xFF
    x_inf = base["x"].view(np.uint16).copy()
    x_inf[1, 1] = 0x7F80
    rw_nan = base["router_weight"].copy()
    rw_nan[3, 3] = np.nan
    ids_missing = base["topk_ids"].copy()
    ids_missing[0, 0] = 5
    for what, words, change in [
            ("policy", ["argument 'policy'", "'fp8' is not one of"], dict(policy="fp8")),
            ("shape", ["argument 'shape'", "'m3' is not one of"], dict(shape="m3")),
            ("named shape", ["argument 'shape'", "'m3-tp8' has hidden = 6144 but the arguments give 64",
                             "shape='custom'"], dict(shape="m3-tp8")),
            ("x H", ["argument 'x'", "H = 40 is not a multiple of 32"],
             dict(x=np.zeros((2, 40), np.uint16))),
            ("x inf", ["argument 'x'", "element [1, 1] is +inf"], dict(x=x_inf)),
            ("router NaN", ["argument 'router_weight'", "element [3, 3] is NaN"],
             dict(router_weight=rw_nan)),
            ("router shape", ["argument 'router_weight'", "[E_total, H] = [8, 64]"],
             dict(router_weight=np.zeros((8, 32), np.float32))),
            ("bias shape", ["argument 'router_bias'", "[E_total] = [8]"],
             dict(router_bias=np.zeros(7, np.float32))),
            ("w13 fnuz", ["argument 'w13'", "e4m3fnuz values", "checkpoint_weights_from_fnuz"],
             dict(w13=base["w13"].view(ML["e4m3fnuz"]))),
            ("w13 odd", ["argument 'w13'", "not 2I"], dict(w13=np.zeros((2, 63, 64), np.uint8))),
            ("w13 I", ["argument 'w13'", "I = 16 is not a positive multiple of 32"],
             dict(w13=np.zeros((2, 32, 64), np.uint8))),
            ("w13_scale 254", ["argument 'w13_scale'", "element [1, 5, 0] is scale byte 254",
                               "loader refuses"], dict(w13_scale=w13_254)),
            ("w13_scale shape", ["argument 'w13_scale'", "[n, N, K/32] = [2, 64, 2]"],
             dict(w13_scale=np.zeros((2, 64, 3), np.uint8))),
            ("w2 NaN", ["argument 'w2'", "element [0, 1, 2] is NaN (byte 0xFF in e4m3fn)"],
             dict(w2=w2_nan)),
            ("w2 shape", ["argument 'w2'", "[n, N, K] = [2, 64, 32]"],
             dict(w2=np.zeros((2, 64, 64), np.uint8))),
            ("ws2 Is", ["argument 'ws2'", "Is = 16"], dict(ws2=np.zeros((64, 16), np.uint8))),
            ("ws13 shape", ["argument 'ws13'", "[N, K] = [64, 64]"],
             dict(ws13=np.zeros((32, 64), np.uint8))),
            ("present dup", ["argument 'experts_present'", "expert 3 appears twice"],
             dict(experts_present=np.array([3, 3]))),
            ("present shape", ["argument 'experts_present'", "[n] = [2]"],
             dict(experts_present=np.array([1]))),
            ("present not local", ["argument 'experts_present'", "expert 5 is not local to this rank [0, 4)"],
             dict(experts_present=np.array([0, 5]), ep=2)),
            ("routed not present", ["argument 'experts_present'", "lacks expert 5",
                                    "topk_ids[0, 0]"], dict(topk_ids=ids_missing)),
            ("topk_ids dup", ["argument 'topk_ids'", "token 0 lists expert 0 twice"],
             dict(topk_ids=np.array([[0, 0], [3, 7]]))),
            ("topk_ids range", ["argument 'topk_ids'", "outside [0, 8)"],
             dict(topk_ids=np.array([[0, 8], [3, 7]]))),
            ("topk mismatch", ["argument 'topk'", "is 3 but topk_ids has 2 columns"], dict(topk=3)),
            ("topk required", ["argument 'topk'", "is required with shape='custom'"],
             dict(topk_ids=None)),
            ("weights without ids", ["argument 'topk_weights'", "needs topk_ids"],
             dict(topk_ids=None, topk=2, topk_weights=np.zeros((2, 2), np.float32))),
            ("ep divides", ["argument 'ep'", "3 does not divide the 8 experts"], dict(ep=3)),
            ("expert0", ["argument 'expert0'", "exceeds the 8 experts"], dict(expert0=1)),
            ("xq in bf16", ["argument 'xq'", "MXFP8 intermediate but policy is 'bf16'"],
             dict(policy="bf16", xq=np.zeros((2, 64), np.uint8), xq_scale=np.zeros((2, 2), np.uint8))),
            ("act in w8a8", ["argument 'act'", "BF16 intermediate"], dict(act=np.zeros((4, 32), np.uint16))),
            ("hybrid both", ["argument 'act'", "different dataflows"],
             dict(policy="hybrid", act=np.zeros((4, 32), np.uint16), actq=np.zeros((4, 32), np.uint8),
                  actq_scale=np.zeros((4, 1), np.uint8))),
            ("xq without scale", ["argument 'xq_scale'", "is required with xq"],
             dict(xq=np.zeros((2, 64), np.uint8))),
            ("actq_scale without actq", ["argument 'actq'", "is required with actq_scale"],
             dict(actq_scale=np.zeros((4, 1), np.uint8))),
            ("xq format", ["argument 'xq'", "holds e4m3fn values but element_format='e4m3fnuz'"],
             dict(xq=np.zeros((2, 64), ML["e4m3fn"]), xq_scale=np.zeros((2, 2), np.uint8))),
            ("g1 shape", ["argument 'g1'", "[T*k, 2I] = [4, 64]"], dict(g1=np.zeros((4, 32), np.uint16))),
            ("y dtype", ["argument 'y'", "float32 is not BF16"], dict(y=np.zeros((4, 64), np.float32))),
            ("routed shape", ["argument 'routed'", "[T, H] = [2, 64]"],
             dict(routed=np.zeros((4, 64), np.uint16))),
            ("out None", ["argument 'out'", "is required"], dict(out=None)),
            ("router_logits shape", ["argument 'router_logits'", "[T, E_total] = [2, 8]"],
             dict(router_logits=np.zeros((2, 4), np.float32))),
            ("layer", ["argument 'layer'", "must be >= 0"], dict(layer=-1)),
            ("max_model_len", ["argument 'max_model_len'", "integer"], dict(max_model_len="4096")),
    ]:
        kw = dict(base)
        kw.update(change)
        expect_error(lambda: mc.capture_moe_layer(fresh(), **kw), [F] + words, "moe " + what)


# ---- torch path through a stand-in module --------------------------------------------

class _FakeDtype:
    def __init__(self, name, np_dtype):
        self.name, self.np = name, np_dtype

    def __repr__(self):
        return "torch." + self.name


class _FakeDevice:
    def __init__(self, t):
        self.type = t


def make_fake_torch():
    """Just enough of torch for tensors.py: dtypes, Tensor with detach,
    cpu, contiguous, view(dtype) and numpy().  numpy() refuses the dtypes
    real torch cannot export (bfloat16, float8), as torch does."""
    torch = types.ModuleType("torch")
    spec = {"float8_e4m3fn": ML["e4m3fn"], "float8_e4m3fnuz": ML["e4m3fnuz"],
            "float8_e5m2": ML["e5m2"], "float8_e5m2fnuz": ML["e5m2fnuz"],
            "float8_e8m0fnu": ml_dtypes.float8_e8m0fnu, "bfloat16": ml_dtypes.bfloat16,
            "uint8": np.uint8, "int8": np.int8, "int16": np.int16, "int32": np.int32,
            "int64": np.int64, "bool": np.bool_, "float16": np.float16, "float32": np.float32,
            "float64": np.float64}
    for n, d in spec.items():
        setattr(torch, n, _FakeDtype(n, d))
    calls = []

    class Tensor:
        def __init__(self, arr, dtype, device="cuda", contiguous=True):
            self._a, self.dtype, self.device = arr, dtype, _FakeDevice(device)
            self._contig = contiguous

        def detach(self):
            calls.append("detach")
            return self

        def cpu(self):
            calls.append("cpu")
            return Tensor(self._a, self.dtype, "cpu", self._contig)

        def contiguous(self):
            calls.append("contiguous")
            return Tensor(np.ascontiguousarray(self._a), self.dtype, self.device.type, True)

        def view(self, dtype):
            if not self._contig:
                raise RuntimeError("view of a non-contiguous tensor")
            return Tensor(self._a.view(dtype.np), dtype, self.device.type)

        def numpy(self):
            if self.device.type != "cpu":
                raise TypeError("can't convert cuda tensor to numpy")
            if self.dtype.name.startswith("float8") or self.dtype.name == "bfloat16":
                raise TypeError("Got unsupported ScalarType " + self.dtype.name)
            return self._a

    torch.Tensor = Tensor
    torch.calls = calls
    return torch


def test_torch_path():
    fake = make_fake_torch()
    saved = sys.modules.get("torch")
    sys.modules["torch"] = fake
    try:
        T = fake.Tensor
        base = mx_base(layout="packed")
        p1 = mc.capture_mxfp8_group_gemm(fresh(), **base)
        # Non-contiguous "GPU" tensors (a transposed packed-scale view).
        sb_t = np.ascontiguousarray(base["b_scale"].transpose(0, 2, 1)).transpose(0, 2, 1)
        tt = dict(a=T(base["a"], fake.float8_e4m3fnuz),
                  a_scale=T(base["a_scale"].view(ml_dtypes.float8_e8m0fnu), fake.float8_e8m0fnu),
                  b=T(base["b"], fake.float8_e4m3fnuz),
                  b_scale=T(sb_t, fake.uint8, contiguous=False),
                  topk_ids=T(base["topk_ids"], fake.int64),
                  topk_weights=T(base["topk_weights"], fake.float32),
                  out=T(base["out"], fake.bfloat16), scale_layout="packed")
        p2 = mc.capture_mxfp8_group_gemm(fresh(), **tt)
        check(read_bytes(p1) == read_bytes(p2), "torch tensors give the same bytes as numpy")
        check("cpu" in fake.calls and "contiguous" in fake.calls, "torch path moved to the CPU")
        # The emulation accepts torch tensors too.
        out = mc.mxfp8_group_gemm(tt["a"], tt["a_scale"], tt["b"], tt["b_scale"], tt["topk_ids"],
                                  scale_layout="packed")
        check(np.array_equal(out, base["out"].view(np.uint16)), "emulation on torch tensors")
        # bf16 weights in float32 slots are widened exactly.
        w16 = base["topk_weights"].astype(ml_dtypes.bfloat16)
        p3 = mc.capture_mxfp8_group_gemm(fresh(), **dict(tt, topk_weights=T(w16, fake.bfloat16)))
        _, t3 = mc.read_capture(p3)
        check(np.array_equal(t3["topk_weights"][1], w16.astype(np.float32)), "bf16 weights widened")
        # Unsupported torch dtype.
        fake.complex64 = _FakeDtype("complex64", np.complex64)
        expect_error(lambda: mc.capture_mxfp8_group_gemm(
            fresh(), **dict(tt, topk_weights=T(np.zeros((3, 2), np.complex64), fake.complex64))),
            ["argument 'topk_weights'", "torch dtype torch.complex64 is not supported"], "torch dtype")
        expect_error(lambda: mc.capture_mxfp8_group_gemm(fresh(), **dict(tt, a=T(
            base["a"].view(np.uint8).view(ML["e4m3fn"]), fake.float8_e4m3fn))),
            ["argument 'b'", "holds e4m3fnuz values but 'a' holds e4m3fn"], "torch formats")
    finally:
        if saved is None:
            del sys.modules["torch"]
        else:
            sys.modules["torch"] = saved


# ---- determinism, atomicity, helpers, golden -------------------------------------------

def test_determinism():
    base = mx_base(layout="packed")
    p1 = mc.capture_mxfp8_group_gemm(fresh(), metadata={"b": "1", "a": "2", "c": "3"}, **base)
    p2 = mc.capture_mxfp8_group_gemm(fresh(), metadata={"c": "3", "a": "2", "b": "1"}, **base)
    check(read_bytes(p1) == read_bytes(p2), "same inputs, same bytes")
    # Other spellings of the same values.
    be = base["topk_weights"].astype(">f4")
    alt = dict(base, a=base["a"].view(np.uint8), b=base["b"].view(np.uint8),
               element_format="e4m3fnuz", topk_ids=base["topk_ids"].astype(np.int32),
               topk_weights=be, out=base["out"].view(np.uint16).reshape(3, 2, 8),
               b_scale=np.asfortranarray(base["b_scale"]))
    p3 = mc.capture_mxfp8_group_gemm(fresh(), metadata={"a": "2", "b": "1", "c": "3"}, **alt)
    check(read_bytes(p1) == read_bytes(p3), "raw/typed, int32/int64, big-endian, [T,k,N] agree")
    # Across processes (hash randomization must not change the bytes).
    npz = os.path.join(TMP, "base.npz")
    raw = {k: (v.view(np.uint8) if v.dtype.itemsize == 1 else v) for k, v in base.items()
           if isinstance(v, np.ndarray)}
    raw["out"] = base["out"].view(np.uint16)
    np.savez(npz, **raw)
    code = ("import sys; sys.path.insert(0, sys.argv[2]); import numpy as np; "
            "import mxverify_capture as mc; z = dict(np.load(sys.argv[3])); "
            "mc.capture_mxfp8_group_gemm(sys.argv[1], element_format='e4m3fnuz', "
            "scale_layout='packed', metadata={'b': '1', 'a': '2', 'c': '3'}, **z)")
    outs = []
    for seed in ("1", "2"):
        p = fresh("proc")
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONDONTWRITEBYTECODE="1")
        res = subprocess.run([sys.executable, "-c", code, p, CAPTURE_DIR, npz], env=env,
                             capture_output=True, text=True)
        check(res.returncode == 0, "subprocess writer: %s" % res.stderr[-500:])
        outs.append(read_bytes(p) if res.returncode == 0 else b"")
    os.unlink(npz)
    check(outs[0] == outs[1] == read_bytes(p1), "bytes equal across processes")


def test_atomic_write_failure():
    base = mx_base()
    path = fresh("atomic")
    mc.capture_mxfp8_group_gemm(path, **base)
    old = read_bytes(path)
    before = set(os.listdir(TMP))
    real = os.replace

    def boom(src, dst):
        raise OSError("simulated rename failure")
    os.replace = boom
    try:
        try:
            mc.capture_mxfp8_group_gemm(path, **dict(base, producer="new"))
            check(False, "simulated failure not raised")
        except OSError as e:
            check("simulated" in str(e), "simulated failure raised")
    finally:
        os.replace = real
    check(read_bytes(path) == old, "failed write leaves the old file")
    check(set(os.listdir(TMP)) == before, "failed write leaves no temporary file")


def test_helpers():
    # corrupt_element: exactly one data byte changes.
    base = mx_base(layout="packed")
    src = mc.capture_mxfp8_group_gemm(fresh(), **base)
    dst = fresh("corrupt")
    old, new = mc.corrupt_element(src, dst, "b_scale", (1, 0, 3))
    check(new == old + 1 and old == int(base["b_scale"][1, 0, 3]), "corrupt_element values")
    d1, d2 = read_bytes(src), read_bytes(dst)
    diff = [i for i in range(len(d1)) if d1[i] != d2[i]]
    check(len(d1) == len(d2) and len(diff) == 1, "corrupt_element changes one byte (%d)" % len(diff))
    _, t = mc.read_capture(dst)
    check(int(t["b_scale"][1][1, 0, 3]) == new, "corrupted element where asked")
    old, new = mc.corrupt_element(src, dst, "out", (0, 0))
    check(new == old ^ 1, "corrupt_element flips the low bit of a BF16")
    try:
        mc.corrupt_element(src, dst, "nope", (0,))
        check(False, "corrupt_element unknown tensor")
    except KeyError:
        check(True, "")
    # checkpoint_weights_from_fnuz preserves every value.
    r = np.random.default_rng(8)
    w = rng.fp8_codes(77, (2, 8, 64), "e4m3fnuz")
    w[(w & 0x7F) == 0x7F] = 0x33                       # +-240: NaN bytes in FN
    s_rows = r.integers(1, 200, (2, 8, 2)).astype(np.uint8)
    s_packed = np.ascontiguousarray(s_rows.transpose(0, 2, 1))
    fn, s = mc.checkpoint_weights_from_fnuz(w.view(ML["e4m3fnuz"]), s_packed)
    v_fnuz = w.view(ML["e4m3fnuz"]).astype(np.float64) * np.exp2(np.repeat(s_rows, 32, -1) - 127.0)
    v_fn = fn.view(ML["e4m3fn"]).astype(np.float64) * np.exp2(np.repeat(s, 32, -1) - 127.0)
    check(np.array_equal(v_fnuz, v_fn) and s.shape == (2, 8, 2), "FNUZ -> checkpoint preserves values")
    fn2, s2 = mc.checkpoint_weights_from_fnuz(w[0], s_rows[0], scale_layout="rows")
    check(np.array_equal(fn2, fn[0]) and np.array_equal(s2, s[0]), "2-D weights, rows layout")
    wbad = w.copy()
    wbad[0, 1, 2] = 0x80
    expect_error(lambda: mc.checkpoint_weights_from_fnuz(wbad, s_packed),
                 ["argument 'w'", "element [0, 1, 2] is 0x80"], "fnuz NaN weight")
    w240 = w.copy()
    w240[1, 0, 5] = 0xFF
    expect_error(lambda: mc.checkpoint_weights_from_fnuz(w240, s_packed),
                 ["argument 'w'", "element [1, 0, 5] is 0xFF (-240 in E4M3FNUZ)"], "fnuz 240")
    s0 = s_packed.copy()
    s0[1, 1, 1] = 0
    expect_error(lambda: mc.checkpoint_weights_from_fnuz(w, s0), ["argument 'w_scale'", "byte 0"],
                 "fnuz scale 0")
    expect_error(lambda: mc.checkpoint_weights_from_fnuz(w, s_rows),
                 ["argument 'w_scale'", "[..., K/32, N]"], "fnuz scale layout")
    # The deterministic generator is what the golden file depends on.
    check([int(v) for v in rng.uint64s(0, 3)] ==
          [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F], "SplitMix64 stream")


def test_golden():
    golden = os.path.join(SRCDIR, "golden", "capture-example.safetensors")
    if not os.path.exists(golden):
        check(False, "golden file missing: %s" % golden)
        return
    out = fresh("golden")
    res = subprocess.run([sys.executable, os.path.join(CAPTURE_DIR, "make_golden_example.py"), out],
                         capture_output=True, text=True,
                         env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    check(res.returncode == 0, "make_golden_example.py: %s" % res.stderr[-500:])
    data = read_bytes(golden)
    check(res.returncode == 0 and read_bytes(out) == data, "golden example regenerates byte for byte")
    check(len(data) < 200 * 1024, "golden example is small (%d bytes)" % len(data))
    meta, t = mc.read_capture(golden)
    check(meta["kind"] == "mxfp8_group_gemm" and meta["scale_layout"] == "packed"
          and meta["a_per_route"] == "false" and t["b"][1].shape == (4, 64, 256)
          and t["out"][1].shape == (32, 64), "golden example contents")
    # A sample of its outputs against the oracle.
    fmt = "e4m3fnuz"
    a, sa, b, sb = t["a"][1], t["a_scale"][1], t["b"][1], t["b_scale"][1]
    ids = t["topk_ids"][1]
    bad = 0
    for r, n in [(0, 0), (5, 17), (13, 63), (31, 31), (20, 2), (9, 40)]:
        tt, j = divmod(r, 4)
        e = int(ids[tt, j])
        acc = 0.0
        for g in range(8):
            ex = sum((Fraction(o_fp8(int(a[tt, i]), fmt)) * Fraction(o_fp8(int(b[e, n, i]), fmt))
                      for i in range(32 * g, 32 * g + 32)), Fraction(0))
            sc = o_mul(o_scale(int(sa[tt, g]), "production"), o_scale(int(sb[e, g, n]), "production"))
            acc = o_add(acc, o_mul(o_rn32(ex), sc))
        bad += o_rnbf16(acc) != int(t["out"][1][r, n])
    check(bad == 0, "golden outputs match the oracle (%d of 6 differ)" % bad)


def test_example_without_torch():
    path = os.path.join(CAPTURE_DIR, "examples", "torch_mxfp8_gemm.py")
    spec = importlib.util.spec_from_file_location("torch_example", path)
    mod = importlib.util.module_from_spec(spec)
    saved = sys.modules.pop("torch", None)
    try:
        spec.loader.exec_module(mod)
        check("torch" not in sys.modules, "importing the example does not import torch")
        ops = mod.build_operands(seed=3, T=4, topk=2, E=3, N=16, K=64)
        ops2 = mod.build_operands(seed=3, T=4, topk=2, E=3, N=16, K=64)
        check(all(np.array_equal(ops[k], ops2[k]) for k in ops if isinstance(ops[k], np.ndarray)),
              "example operands are deterministic")
        # The operands make valid captures with the numpy emulation.
        out = mc.mxfp8_group_gemm(ops["a"], ops["a_scale"], ops["b"], ops["b_scale"], ops["topk_ids"],
                                  element_format="e4m3fnuz", scale_layout="packed", a_per_route=True,
                                  topk_weights=ops["topk_weights"], mul_routed_weight=True)
        mc.capture_mxfp8_group_gemm(fresh(), a=ops["a"], a_scale=ops["a_scale"], b=ops["b"],
                                    b_scale=ops["b_scale"], topk_ids=ops["topk_ids"],
                                    topk_weights=ops["topk_weights"], out=out,
                                    element_format="e4m3fnuz", scale_layout="packed",
                                    a_per_route=True, mul_routed_weight=True)
        check(True, "example operands capture")
        # BF16 weights are the exact dequantization of the MX weights.
        bw = formats.bf16_to_f32(ops["b_bf16"]).astype(np.float64)
        exact = formats.decode_fp8(ops["b"], "e4m3fnuz") * np.exp2(
            np.repeat(ops["b_scale"].transpose(0, 2, 1).astype(np.float64), 32, -1) - 127)
        check(np.array_equal(bw, exact), "example BF16 weights are exact")
        e, g, n, rows = mod.corruption_target(ops["topk_ids"], ops["b_scale"])
        check(len(rows) > 0 and all(ops["topk_ids"].reshape(-1)[r] == e for r in rows),
              "corruption target is routed")
    finally:
        if saved is not None:
            sys.modules["torch"] = saved
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    res = subprocess.run([sys.executable, path, "--help"], capture_output=True, text=True, env=env)
    check(res.returncode == 0 and "--corrupt-scale" in res.stdout, "example --help")
    has_torch = importlib.util.find_spec("torch") is not None
    if not has_torch:
        res = subprocess.run([sys.executable, path, "--out-dir", TMP], capture_output=True,
                             text=True, env=env)
        check(res.returncode == 2 and "needs torch" in res.stderr, "example without torch: %r"
              % res.stderr[-300:])
    res = subprocess.run([sys.executable, path, "--tokens", "0"], capture_output=True, text=True,
                         env=env)
    check(res.returncode == 2 and "--tokens" in res.stderr, "example refuses --tokens 0")


def test_hooks():
    """MoELayerHook writes what a direct capture_moe_layer call writes."""
    kw = moe_base()
    x, out, ids = kw.pop("x"), kw.pop("out"), kw.pop("topk_ids")
    policy = kw.pop("policy")
    direct = mc.capture_moe_layer(fresh(), x=x, out=out, topk_ids=ids, policy=policy,
                                  layer=7, producer="hook test", **kw)

    class Block:
        last = {"topk_ids": ids}
    path = os.path.join(TMP, "hook-l{layer}-c{call}.safetensors")
    hook = mc.MoELayerHook(path, layer=7, weights=kw, intermediates=lambda m: m.last,
                           policy=policy, producer="hook test")
    # the block sees [batch, seq, H] and returns (hidden, router_logits)
    hook(Block(), (x.reshape(1, 2, 64),), (out.reshape(1, 2, 64), None))
    hook(Block(), (x.reshape(1, 2, 64),), (out.reshape(1, 2, 64), None))   # calls=1: not written
    first = os.path.join(TMP, "hook-l7-c0.safetensors")
    check(hook.paths == [first] and read_bytes(first) == read_bytes(direct),
          "hook file equals the direct capture")
    check(not os.path.exists(os.path.join(TMP, "hook-l7-c1.safetensors")), "hook: calls=1")
    hook2 = mc.MoELayerHook(path, layer=7, weights=kw, intermediates={"topk_ids": ids},
                            calls=None, policy=policy, producer="hook test")
    hook2.enabled = False
    hook2(Block(), (x,), out)
    check(hook2.count == 0, "hook: disabled")
    hook2.enabled = True
    hook2(Block(), (x,), out)
    hook2(Block(), (x,), out)
    check(hook2.count == 2 and read_bytes(hook2.paths[1]) == read_bytes(direct), "hook: calls=None")
    expect_error(lambda: hook2(Block(), (x.reshape(2, 32, 2),), out),
                 ["MoELayerHook", "the layer input", "not [..., H = 64]"], "hook shape")
    expect_error(lambda: mc.MoELayerHook(path, layer=0, weights={}), ["lacks 'router_weight'"],
                 "hook weights")


def main():
    if deserialize is None:
        skip("the safetensors Python library is not installed")
    tests = [test_fp8_decode, test_fp8_encode, test_e8m0_and_bf16, test_round_to_f32,
             test_mxfp8_emulation_vs_oracle, test_bf16_emulation_vs_oracle,
             test_exactness_fallback, test_gemm_hand_cases, test_quantizer_hand,
             test_quantizer_vs_oracle, test_stfile_vs_library, test_roundtrips,
             test_mxfp8_errors, test_other_errors, test_torch_path, test_determinism,
             test_atomic_write_failure, test_helpers, test_golden, test_example_without_torch,
             test_hooks]
    only = os.environ.get("MXV_CAPTURE_TESTS")
    try:
        for t in tests:
            if only and t.__name__ not in only.split(","):
                continue
            before = failed
            try:
                t()
            except Exception as e:  # noqa: BLE001 - a crash is one failure, the run goes on
                import traceback
                traceback.print_exc()
                check(False, "%s raised %s: %s" % (t.__name__, type(e).__name__, e))
            print("%-34s %s" % (t.__name__, "ok" if failed == before else "FAILED"), flush=True)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
