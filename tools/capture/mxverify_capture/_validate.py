"""Argument checking shared by the capture writers and the emulations.

Each helper raises CaptureError with a one-line message
    "<function>: argument '<name>': <what is wrong>"
and returns plain numpy arrays (see tensors.py for the conversion).
"""
import re

import numpy as np

from . import formats
from .tensors import CaptureError, as_array, describe

FP8_DTYPE = {"e4m3fn": "F8_E4M3", "e4m3fnuz": "F8_E4M3FNUZ",
             "e5m2": "F8_E5M2", "e5m2fnuz": "F8_E5M2FNUZ"}
SCALE_LAYOUTS = ("rows", "packed")
SCALE_RULES = ("production", "ocp", "rceil")
POLICIES = ("w8a8-mxfp8", "bf16", "w8a16", "hybrid")
SHAPES = ("m3-full", "m3-tp8", "m3-ep8", "custom")
# The accumulation models `mxverify check` accepts (mx_accum_names() in
# reference/accum.c; tests/python/test_check_captures.py compares the two
# lists, so a model added on one side only fails make check).
BLOCK_PRESETS = ("cdna3-fp8", "cdna3-bf16", "hopper-fp8", "hopper-bf16",
                 "hopper-fp8-mma", "exact-rne")
ACCUM_MODELS = ("fp32-group", "fp32-seq", "dequant-fp32") + tuple(
    "block:" + p for p in BLOCK_PRESETS)

# Every key the format defines: a caller's extra metadata may not use them.
RESERVED_KEYS = frozenset((
    "mxverify.capture", "kind", "producer", "element_format", "e8m0_decode",
    "scale_layout", "scale_rule", "rceil_max", "accum_model", "a_per_route",
    "mul_routed_weight", "policy", "shape", "hidden", "intermediate",
    "intermediate_shared", "experts", "experts_local", "expert0", "topk", "tp",
    "ep", "layer", "max_model_len", "finite"))


class Checker:
    """Argument checks for one public function (its name prefixes every
    message)."""

    def __init__(self, fn):
        self.fn = fn

    def fail(self, arg, msg):
        raise CaptureError("%s: argument '%s': %s" % (self.fn, arg, msg))

    # ---- scalars --------------------------------------------------------

    def choice(self, arg, value, choices):
        if not isinstance(value, str) or value not in choices:
            self.fail(arg, "%r is not one of %s" % (value, ", ".join(choices)))
        return value

    def flag(self, arg, value):
        if not isinstance(value, (bool, np.bool_)):
            self.fail(arg, "must be True or False, got %r" % (value,))
        return bool(value)

    def count(self, arg, value, minimum=0):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            self.fail(arg, "must be an integer, got %r" % (value,))
        if value < minimum:
            self.fail(arg, "must be >= %d, got %d" % (minimum, value))
        return int(value)

    def accum_model(self, value):
        if not isinstance(value, str) or value not in ACCUM_MODELS:
            self.fail("accum_model", "%r is not one of %s" % (value, ", ".join(ACCUM_MODELS)))
        return value

    def text(self, arg, value):
        if not isinstance(value, str):
            self.fail(arg, "must be a str, got %s" % type(value).__name__)
        if "\x00" in value:
            self.fail(arg, "contains a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            self.fail(arg, "is not encodable as UTF-8")
        return value

    def extra_metadata(self, metadata):
        if metadata is None:
            return {}
        if not isinstance(metadata, dict):
            self.fail("metadata", "must be a dict of str to str, got %s" % type(metadata).__name__)
        out = {}
        for k, v in metadata.items():
            self.text("metadata", k)
            if k in RESERVED_KEYS:
                self.fail("metadata", "key %r is set by the capture function (use its keyword argument)" % k)
            if not isinstance(v, str):
                self.fail("metadata", "value of %r must be a str, got %s" % (k, type(v).__name__))
            self.text("metadata", v)
            out[k] = v
        return out

    # ---- tensors --------------------------------------------------------

    def array(self, arg, x):
        if x is None:
            self.fail(arg, "is required (got None)")
        return as_array(x, "%s: argument '%s'" % (self.fn, arg))

    def fp8(self, arg, x):
        """(format or None for raw bytes, uint8 codes)."""
        tag, arr = self.array(arg, x)
        if tag.startswith("fp8:"):
            return tag[4:], arr
        if tag == "uint8":
            return None, arr
        self.fail(arg, "dtype %s is not FP8: pass FP8 values (torch or ml_dtypes "
                  "float8_e4m3fnuz, float8_e4m3fn, float8_e5m2, float8_e5m2fnuz) or "
                  "their raw bytes as uint8" % describe(tag))

    def e8m0(self, arg, x):
        tag, arr = self.array(arg, x)
        if tag in ("e8m0", "uint8"):
            return arr
        self.fail(arg, "dtype %s is not E8M0: pass float8_e8m0fnu scales or their "
                  "raw bytes as uint8" % describe(tag))

    def bf16(self, arg, x):
        tag, arr = self.array(arg, x)
        if tag in ("bfloat16", "uint16"):
            return arr
        self.fail(arg, "dtype %s is not BF16: pass bfloat16 values or their raw "
                  "bits as uint16" % describe(tag))

    def f32(self, arg, x):
        """FP32 values; BF16 and FP16 are widened (exactly)."""
        tag, arr = self.array(arg, x)
        if tag == "float32":
            return arr
        if tag == "float16":
            return arr.astype(np.float32)
        if tag == "bfloat16":
            return formats.bf16_to_f32(arr)
        self.fail(arg, "dtype %s is not float32 (float64 would have to be rounded: "
                  "pass the float32 the kernel used)" % describe(tag))

    def index(self, arg, x):
        tag, arr = self.array(arg, x)
        if tag not in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"):
            self.fail(arg, "dtype %s is not an integer type" % describe(tag))
        return arr.astype(np.int64) if arr.dtype != np.uint64 else self._u64(arg, arr)

    def _u64(self, arg, arr):
        if arr.size and arr.max() > np.iinfo(np.int64).max:
            self.fail(arg, "value %d is too large" % int(arr.max()))
        return arr.astype(np.int64)

    def shape(self, arg, arr, want, names):
        if tuple(arr.shape) != tuple(want):
            self.fail(arg, "shape %s does not match [%s] = %s" % (
                fmt_shape(arr.shape), ", ".join(names), fmt_shape(want)))

    def rank(self, arg, arr, r, names):
        if arr.ndim != r:
            self.fail(arg, "shape %s has rank %d, expected [%s]" % (
                fmt_shape(arr.shape), arr.ndim, ", ".join(names)))

    def resolve_format(self, element_format, given, default=None):
        """The FP8 format of the call from the element_format argument and
        the typed operands.  given: [(arg, format or None)]."""
        if element_format is not None:
            self.choice("element_format", element_format, formats.FP8_FORMATS)
        seen = None
        for arg, f in given:
            if f is None:
                continue
            if element_format is not None and f != element_format:
                self.fail(arg, "holds %s values but element_format=%r" % (f, element_format))
            if seen is not None and f != seen[1]:
                self.fail(arg, "holds %s values but '%s' holds %s values" % (f, seen[0], seen[1]))
            seen = seen or (arg, f)
        fmt = element_format or (seen[1] if seen else default)
        if fmt is None:
            raw = " and ".join(a for a, _ in given)
            self.fail("element_format", "is required when %s are raw uint8 bytes" % raw)
        return fmt

    # ---- values -----------------------------------------------------------

    def no_scale_255(self, arg, codes):
        bad = np.flatnonzero(codes.reshape(-1) == 255)
        if bad.size:
            self.fail(arg, "element %s is scale byte 255 (NaN in the E8M0 spec, "
                      "+inf in the production decode)" % fmt_index(bad[0], codes.shape))

    def fp8_finite(self, arg, codes, fmt):
        bad = np.flatnonzero(formats.fp8_nonfinite(codes, fmt).reshape(-1))
        if bad.size:
            c = int(codes.reshape(-1)[bad[0]])
            self.fail(arg, "element %s is %s (byte 0x%02X in %s) but finite=True" % (
                fmt_index(bad[0], codes.shape), _nan_or_inf(formats.decode_fp8(c, fmt)), c, fmt))

    def bf16_finite(self, arg, bits):
        bad = np.flatnonzero(formats.bf16_nonfinite(bits).reshape(-1))
        if bad.size:
            b = int(bits.reshape(-1)[bad[0]])
            self.fail(arg, "element %s is %s (BF16 0x%04X) but finite=True" % (
                fmt_index(bad[0], bits.shape), _nan_or_inf(formats.bf16_to_f32(b)), b))

    def f32_finite(self, arg, arr):
        bad = np.flatnonzero(~np.isfinite(arr.reshape(-1)))
        if bad.size:
            self.fail(arg, "element %s is %s but finite=True" % (
                fmt_index(bad[0], arr.shape), _nan_or_inf(arr.reshape(-1)[bad[0]])))

    def routing(self, ids, num_experts, arg="topk_ids"):
        """topk_ids in [0, num_experts), no expert twice in a token's row."""
        flat = ids.reshape(-1)
        bad = np.flatnonzero((flat < 0) | (flat >= num_experts))
        if bad.size:
            self.fail(arg, "element %s is %d, outside [0, %d) (the number of experts)" % (
                fmt_index(bad[0], ids.shape), int(flat[bad[0]]), num_experts))
        if ids.shape[1] > 1:
            s = np.sort(ids, axis=1)
            dup = np.argwhere(s[:, 1:] == s[:, :-1])
            if dup.size:
                t, j = dup[0]
                self.fail(arg, "token %d lists expert %d twice" % (t, int(s[t, j])))

    def unique_ids(self, arg, ids, num_experts):
        bad = np.flatnonzero((ids < 0) | (ids >= num_experts))
        if bad.size:
            self.fail(arg, "element [%d] is %d, outside [0, %d)" % (bad[0], int(ids[bad[0]]), num_experts))
        s = np.sort(ids)
        dup = np.flatnonzero(s[1:] == s[:-1])
        if dup.size:
            self.fail(arg, "expert %d appears twice" % int(s[dup[0]]))


def _nan_or_inf(v):
    v = float(v)
    return "NaN" if v != v else ("+inf" if v > 0 else "-inf")


def fmt_shape(shape):
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


def fmt_index(flat, shape):
    if len(shape) == 0:
        return "[]"
    return "[" + ", ".join(str(int(i)) for i in np.unravel_index(int(flat), shape)) + "]"


def routed_rows(ck, arg, arr, T, k, cols, col_name):
    """A per-route tensor given as [T*k, cols] or [T, k, cols] -> 2-D."""
    if arr.ndim == 3 and arr.shape[:2] == (T, k):
        arr = arr.reshape(T * k, arr.shape[2])
    if arr.ndim != 2:
        ck.fail(arg, "shape %s has rank %d, expected [T*k, %s] (or [T, k, %s])" % (
            fmt_shape(arr.shape), arr.ndim, col_name, col_name))
    ck.shape(arg, arr, (T * k, cols), ["T*k", col_name])
    return arr


class GroupGemm:
    """A validated grouped GEMM call (both kinds); attributes are plain
    arrays.  fmt is None for BF16."""


def group_gemm(ck, *, a, b, topk_ids, a_scale=None, b_scale=None, out=None,
               topk_weights=None, expert_ids=None, num_experts=None,
               element_format=None, scale_layout="rows", e8m0_decode="production",
               a_per_route=False, mul_routed_weight=False, finite=True, mx=True):
    """Checks one grouped GEMM call and returns a GroupGemm."""
    g = GroupGemm()
    g.a_per_route = ck.flag("a_per_route", a_per_route)
    g.mul_routed_weight = ck.flag("mul_routed_weight", mul_routed_weight)
    g.finite = ck.flag("finite", finite)
    if mx:
        g.scale_layout = ck.choice("scale_layout", scale_layout, SCALE_LAYOUTS)
        g.e8m0_decode = ck.choice("e8m0_decode", e8m0_decode, formats.E8M0_DECODES)
        fa, av = ck.fp8("a", a)
        fb, bv = ck.fp8("b", b)
        g.fmt = ck.resolve_format(element_format, [("a", fa), ("b", fb)])
        sa = ck.e8m0("a_scale", a_scale)
        sb = ck.e8m0("b_scale", b_scale)
    else:
        g.fmt = None
        av = ck.bf16("a", a)
        bv = ck.bf16("b", b)
    ids = ck.index("topk_ids", topk_ids)

    # Shapes.
    ck.rank("b", bv, 3, ["E", "N", "K"])
    E, N, K = bv.shape
    if E < 1 or N < 1 or K < 1:
        ck.fail("b", "shape %s has an empty dimension" % fmt_shape(bv.shape))
    if mx and K % 32:
        ck.fail("b", "K = %d is not a multiple of 32 (the MX block size)" % K)
    ck.rank("topk_ids", ids, 2, ["T", "k"])
    T, k = ids.shape
    if T < 1 or k < 1:
        ck.fail("topk_ids", "shape %s has an empty dimension" % fmt_shape(ids.shape))
    ck.rank("a", av, 2, ["T*k" if g.a_per_route else "T", "K"])
    rows = T * k if g.a_per_route else T
    if av.shape[1] != K:
        ck.fail("a", "shape %s has K = %d but b has K = %d" % (fmt_shape(av.shape), av.shape[1], K))
    if av.shape[0] != rows:
        hint = ""
        if not g.a_per_route and av.shape[0] == T * k:
            hint = " (one row per route: pass a_per_route=True)"
        elif g.a_per_route and av.shape[0] == T:
            hint = " (one row per token: pass a_per_route=False)"
        ck.fail("a", "shape %s has %d rows, expected %s = %d%s" % (
            fmt_shape(av.shape), av.shape[0], "T*k" if g.a_per_route else "T", rows, hint))
    if mx:
        G = K // 32
        ck.shape("a_scale", sa, (rows, G), ["rows of a", "K/32"])
        if g.scale_layout == "rows":
            if sb.shape == (E, G, N) and G != N:
                ck.fail("b_scale", "shape %s is the packed layout [E, K/32, N]; "
                        "pass scale_layout='packed'" % fmt_shape(sb.shape))
            ck.shape("b_scale", sb, (E, N, G), ["E", "N", "K/32"])
            sb_rows = sb
        else:
            if sb.shape == (E, N, G) and G != N:
                ck.fail("b_scale", "shape %s is the rows layout [E, N, K/32]; "
                        "pass scale_layout='rows'" % fmt_shape(sb.shape))
            ck.shape("b_scale", sb, (E, G, N), ["E", "K/32", "N"])
            sb_rows = np.ascontiguousarray(sb.transpose(0, 2, 1))
    if topk_weights is not None:
        w = ck.f32("topk_weights", topk_weights)
        ck.shape("topk_weights", w, (T, k), ["T", "k"])
    else:
        w = None
        if g.mul_routed_weight:
            ck.fail("topk_weights", "is required with mul_routed_weight=True")
    if expert_ids is not None:
        eids = ck.index("expert_ids", expert_ids)
        ck.shape("expert_ids", eids, (E,), ["E"])
    else:
        eids = np.arange(E, dtype=np.int64)
    if num_experts is None:
        num_experts = E if expert_ids is None else int(max(eids.max(), ids.max(), E - 1)) + 1
    else:
        num_experts = ck.count("num_experts", num_experts, 1)
        if num_experts < E:
            ck.fail("num_experts", "is %d, fewer than the %d experts in b" % (num_experts, E))
    g.out_dtype = "BF16"
    if out is not None:
        # BF16 (bits or bfloat16), or float32: the accumulator before any
        # BF16 rounding (judged against the FP32 model and its own bound)
        tag, arr = ck.array("out", out)
        if tag == "float32":
            ov = np.ascontiguousarray(arr)
            g.out_dtype = "F32"
        elif tag in ("bfloat16", "uint16"):
            ov = arr
        else:
            ck.fail("out", "dtype %s is not BF16 or float32 (BF16 values or their bits "
                    "as uint16, or the FP32 accumulator as float32)" % describe(tag))
        ov = routed_rows(ck, "out", ov, T, k, N, "N")
    else:
        ov = None

    # Values.
    ck.unique_ids("expert_ids", eids, num_experts)
    ck.routing(ids, num_experts)
    if mx:
        ck.no_scale_255("a_scale", sa)
        ck.no_scale_255("b_scale", sb)
    if g.finite:
        if mx:
            ck.fp8_finite("a", av, g.fmt)
            ck.fp8_finite("b", bv, g.fmt)
        else:
            ck.bf16_finite("a", av)
            ck.bf16_finite("b", bv)
        if w is not None:
            ck.f32_finite("topk_weights", w)

    g.T, g.k, g.E, g.N, g.K = T, k, E, N, K
    g.a, g.b, g.topk_ids, g.topk_weights = av, bv, ids, w
    g.expert_ids, g.num_experts, g.out = eids, num_experts, ov
    if mx:
        g.a_scale, g.b_scale, g.b_scale_rows = sa, sb, sb_rows
    return g
