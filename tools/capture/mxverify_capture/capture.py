"""The capture writers: one function per capture kind of
docs/capture-format.md (version 1).

Each function checks every argument before anything is written (shapes
consistent with each other, K % 32 for MX operands, dtypes, the scale
layout against the shapes, metadata values in their lists, routing ids in
range and distinct per token, no scale byte 255, and with finite=True no
NaN or infinity in an input), raising CaptureError naming the argument;
then it writes the file atomically.  The same arguments give the same
bytes.  Outputs under test (out, q, q_scale, and the intermediates of a
layer) are never refused for their values: a wrong value there is what
mxverify check is for.
"""
import os

import numpy as np

from . import formats, stfile
from ._validate import (FP8_DTYPE, POLICIES, SCALE_RULES, SHAPES, Checker,
                        fmt_index, group_gemm, routed_rows)

FORMAT_VERSION = "1"

# Named MiniMax-M3 shapes: the dimensions a capture of that name must have.
NAMED_SHAPES = {
    "m3-full": dict(hidden=6144, intermediate=3072, intermediate_shared=3072,
                    experts=128, experts_local=128, topk=4, tp=1, ep=1),
    "m3-tp8": dict(hidden=6144, intermediate=384, intermediate_shared=384,
                   experts=128, experts_local=128, topk=4, tp=8, ep=1),
    "m3-ep8": dict(hidden=6144, intermediate=3072, experts=128, experts_local=16,
                   topk=4, tp=1, ep=8),
}


def _bool(v):
    return "true" if v else "false"


def _decimal(v):
    r = repr(float(v))
    return r[:-2] if r.endswith(".0") else r


def _target(ck, path):
    try:
        path = os.fspath(path)
    except TypeError:
        ck.fail("path", "must be a str or os.PathLike, got %s" % type(path).__name__)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not path:
        ck.fail("path", "is empty")
    if os.path.isdir(path):
        ck.fail("path", "%r is a directory" % path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        ck.fail("path", "directory %r does not exist" % directory)
    return path


def _common_meta(ck, kind, producer, metadata, finite):
    meta = ck.extra_metadata(metadata)
    meta["mxverify.capture"] = FORMAT_VERSION
    meta["kind"] = kind
    meta["finite"] = _bool(finite)
    if producer is not None:
        meta["producer"] = ck.text("producer", producer)
    return meta


def _gemm_tensors(g, fp8_dtype=None):
    t = {
        "a": (fp8_dtype or "BF16", g.a),
        "b": (fp8_dtype or "BF16", g.b),
        "topk_ids": ("I32", g.topk_ids.astype(np.int32)),
        "out": (g.out_dtype, g.out),
    }
    if g.topk_weights is not None:
        t["topk_weights"] = ("F32", g.topk_weights)
    if g.expert_ids_given:
        t["expert_ids"] = ("I32", g.expert_ids.astype(np.int32))
    return t


def _keep_routed(g):
    """Drops the experts of b that no route uses (routed_experts_only)."""
    used = np.isin(g.expert_ids, g.topk_ids.reshape(-1))
    if not used.any():
        used[0] = True
    keep = np.flatnonzero(used)
    g.b = np.ascontiguousarray(g.b[keep])
    if hasattr(g, "b_scale"):
        g.b_scale = np.ascontiguousarray(g.b_scale[keep])
    g.expert_ids = g.expert_ids[keep]
    g.E = keep.size
    g.expert_ids_given = True


def capture_mxfp8_group_gemm(path, *, a, a_scale, b, b_scale, topk_ids, out,
                             topk_weights=None, expert_ids=None, num_experts=None,
                             element_format=None, scale_layout="rows",
                             e8m0_decode="production", accum_model="fp32-group",
                             a_per_route=False, mul_routed_weight=False, finite=True,
                             routed_experts_only=False, producer=None, metadata=None):
    """Writes one MXFP8 grouped GEMM call (kind mxfp8_group_gemm).

    a [T, K] (or [T*k, K] with a_per_route=True) FP8, a_scale [rows of a,
    K/32] E8M0, b [E, N, K] FP8, b_scale [E, N, K/32] (scale_layout="rows")
    or [E, K/32, N] ("packed") E8M0, topk_ids [T, k] integers, out
    [T*k, N] (or [T, k, N]) BF16; topk_weights [T, k] float32 (required
    with mul_routed_weight=True); expert_ids [E]: global id of each expert
    in b (default 0..E-1), num_experts: number of global ids (default E, or
    with expert_ids the largest id seen + 1).  FP8 tensors are typed (torch
    or ml_dtypes float8_*) or raw uint8 bytes, which need element_format.
    routed_experts_only=True stores only the experts some route uses (and
    their expert_ids): a much smaller file for a few tokens.  Returns the
    path written."""
    ck = Checker("capture_mxfp8_group_gemm")
    path = _target(ck, path)
    accum_model = ck.accum_model(accum_model)
    routed_only = ck.flag("routed_experts_only", routed_experts_only)
    if out is None:
        ck.fail("out", "is required (got None)")
    g = group_gemm(ck, a=a, a_scale=a_scale, b=b, b_scale=b_scale, topk_ids=topk_ids,
                   out=out, topk_weights=topk_weights, expert_ids=expert_ids,
                   num_experts=num_experts, element_format=element_format,
                   scale_layout=scale_layout, e8m0_decode=e8m0_decode,
                   a_per_route=a_per_route, mul_routed_weight=mul_routed_weight,
                   finite=finite, mx=True)
    meta = _common_meta(ck, "mxfp8_group_gemm", producer, metadata, g.finite)
    g.expert_ids_given = expert_ids is not None
    if routed_only:
        _keep_routed(g)
    meta.update({
        "element_format": g.fmt, "e8m0_decode": g.e8m0_decode,
        "scale_layout": g.scale_layout, "accum_model": accum_model,
        "a_per_route": _bool(g.a_per_route),
        "mul_routed_weight": _bool(g.mul_routed_weight),
        "experts": str(g.num_experts),
    })
    tensors = _gemm_tensors(g, FP8_DTYPE[g.fmt])
    tensors["a_scale"] = ("F8_E8M0", g.a_scale)
    tensors["b_scale"] = ("F8_E8M0", g.b_scale)
    stfile.write(path, tensors, meta)
    return path


def capture_bf16_group_gemm(path, *, a, b, topk_ids, out, topk_weights=None,
                            expert_ids=None, num_experts=None, accum_model="fp32-group",
                            a_per_route=False, mul_routed_weight=False, finite=True,
                            routed_experts_only=False, producer=None, metadata=None):
    """Writes one BF16 grouped GEMM call (kind bf16_group_gemm): as
    capture_mxfp8_group_gemm with a [T, K] (or [T*k, K]) and b [E, N, K]
    BF16 (bfloat16, or raw bits as uint16) and no scales; K any size."""
    ck = Checker("capture_bf16_group_gemm")
    path = _target(ck, path)
    accum_model = ck.accum_model(accum_model)
    routed_only = ck.flag("routed_experts_only", routed_experts_only)
    if out is None:
        ck.fail("out", "is required (got None)")
    g = group_gemm(ck, a=a, b=b, topk_ids=topk_ids, out=out, topk_weights=topk_weights,
                   expert_ids=expert_ids, num_experts=num_experts, a_per_route=a_per_route,
                   mul_routed_weight=mul_routed_weight, finite=finite, mx=False)
    meta = _common_meta(ck, "bf16_group_gemm", producer, metadata, g.finite)
    g.expert_ids_given = expert_ids is not None
    if routed_only:
        _keep_routed(g)
    meta.update({
        "accum_model": accum_model, "a_per_route": _bool(g.a_per_route),
        "mul_routed_weight": _bool(g.mul_routed_weight), "experts": str(g.num_experts),
    })
    stfile.write(path, _gemm_tensors(g), meta)
    return path


def _plain(g, fp8_dtype=None):
    """The tensors of a plain GEMM (one expert, every row routed once)."""
    t = {"a": (fp8_dtype or "BF16", g.a), "b": (fp8_dtype or "BF16", g.b[0]),
         "out": (g.out_dtype, g.out)}
    if fp8_dtype:
        t["a_scale"] = ("F8_E8M0", g.a_scale)
        t["b_scale"] = ("F8_E8M0", g.b_scale[0])
    return t


def _plain_ids(ck, a):
    tag, arr = ck.array("a", a)
    if arr.ndim != 2:
        ck.fail("a", "shape %s has rank %d, expected [M, K]" % (tuple(arr.shape), arr.ndim))
    return np.zeros((arr.shape[0], 1), dtype=np.int64)


def _expert(ck, arg, x):
    """[N, ...] -> [1, N, ...] (a plain GEMM's b as one expert)."""
    if x is None:
        return None
    tag, arr = ck.array(arg, x)
    if arr.ndim != 2:
        ck.fail(arg, "shape %s has rank %d, expected rank 2" % (tuple(arr.shape), arr.ndim))
    return x[None] if hasattr(x, "__getitem__") else arr[None]


def capture_mxfp8_gemm(path, *, a, a_scale, b, b_scale, out, element_format=None,
                       scale_layout="rows", e8m0_decode="production",
                       accum_model="fp32-group", finite=True, producer=None,
                       metadata=None):
    """Writes one plain MXFP8 GEMM call (kind mxfp8_gemm): no experts, no
    top-k.  a [M, K] FP8, a_scale [M, K/32], b [N, K] FP8, b_scale [N, K/32]
    (scale_layout="rows") or [K/32, N] ("packed"), out [M, N]: BF16, or
    float32 for the FP32 accumulator before any BF16 rounding (judged
    against the model's FP32 value and its own bound).  Returns the path."""
    ck = Checker("capture_mxfp8_gemm")
    path = _target(ck, path)
    accum_model = ck.accum_model(accum_model)
    if out is None:
        ck.fail("out", "is required (got None)")
    g = group_gemm(ck, a=a, a_scale=a_scale, b=_expert(ck, "b", b),
                   b_scale=_expert(ck, "b_scale", b_scale), topk_ids=_plain_ids(ck, a),
                   out=out, element_format=element_format, scale_layout=scale_layout,
                   e8m0_decode=e8m0_decode, finite=finite, mx=True)
    meta = _common_meta(ck, "mxfp8_gemm", producer, metadata, g.finite)
    meta.update({"element_format": g.fmt, "e8m0_decode": g.e8m0_decode,
                 "scale_layout": g.scale_layout, "accum_model": accum_model})
    stfile.write(path, _plain(g, FP8_DTYPE[g.fmt]), meta)
    return path


def capture_bf16_gemm(path, *, a, b, out, accum_model="fp32-group", finite=True,
                      producer=None, metadata=None):
    """Writes one plain BF16 GEMM call (kind bf16_gemm): a [M, K], b [N, K]
    BF16, out [M, N] BF16 or float32 (as capture_mxfp8_gemm)."""
    ck = Checker("capture_bf16_gemm")
    path = _target(ck, path)
    accum_model = ck.accum_model(accum_model)
    if out is None:
        ck.fail("out", "is required (got None)")
    g = group_gemm(ck, a=a, b=_expert(ck, "b", b), topk_ids=_plain_ids(ck, a), out=out,
                   finite=finite, mx=False)
    meta = _common_meta(ck, "bf16_gemm", producer, metadata, g.finite)
    meta["accum_model"] = accum_model
    stfile.write(path, _plain(g), meta)
    return path


def _rceil_max(ck, scale_rule, rceil_max):
    if rceil_max is None:
        return 448.0 if scale_rule == "rceil" else None
    if scale_rule != "rceil":
        ck.fail("rceil_max", "applies only to scale_rule='rceil' (scale_rule is %r)" % scale_rule)
    if isinstance(rceil_max, bool) or not isinstance(rceil_max, (int, float, np.floating, np.integer)) \
            or not np.isfinite(rceil_max) or rceil_max <= 0:
        ck.fail("rceil_max", "must be a positive finite number, got %r" % (rceil_max,))
    return float(rceil_max)


def capture_mx_quant(path, *, x, q, q_scale, element_format=None,
                     scale_rule="production", rceil_max=None, finite=True,
                     producer=None, metadata=None):
    """Writes one activation quantization call (kind mx_quant): x [rows, K]
    BF16 or float32 (float16 is widened exactly), K % 32 == 0; the kernel's
    q [rows, K] FP8 and q_scale [rows, K/32] E8M0.  rceil_max only with
    scale_rule="rceil" (default 448)."""
    ck = Checker("capture_mx_quant")
    path = _target(ck, path)
    rule = ck.choice("scale_rule", scale_rule, SCALE_RULES)
    rmax = _rceil_max(ck, rule, rceil_max)
    fin = ck.flag("finite", finite)
    tag, xv = ck.array("x", x)
    if tag in ("bfloat16", "uint16"):
        x_entry = ("BF16", xv)
        x32 = formats.bf16_to_f32(xv)
    elif tag in ("float32", "float16"):
        x32 = xv.astype(np.float32)
        x_entry = ("F32", x32)
    else:
        ck.fail("x", "dtype %s is not BF16 or float32" % tag)
    fq, qv = ck.fp8("q", q)
    fmt = ck.resolve_format(element_format, [("q", fq)])
    sv = ck.e8m0("q_scale", q_scale)
    ck.rank("x", x32, 2, ["rows", "K"])
    rows, K = x32.shape
    if rows < 1 or K < 1:
        ck.fail("x", "shape [%d, %d] has an empty dimension" % (rows, K))
    if K % 32:
        ck.fail("x", "K = %d is not a multiple of 32 (the MX block size)" % K)
    ck.shape("q", qv, (rows, K), ["rows", "K"])
    ck.shape("q_scale", sv, (rows, K // 32), ["rows", "K/32"])
    if fin:
        ck.f32_finite("x", x32)
    meta = _common_meta(ck, "mx_quant", producer, metadata, fin)
    meta.update({"element_format": fmt, "scale_rule": rule})
    if rmax is not None:
        meta["rceil_max"] = _decimal(rmax)
    stfile.write(path, {"x": x_entry, "q": (FP8_DTYPE[fmt], qv), "q_scale": ("F8_E8M0", sv)}, meta)
    return path


def _weight(ck, arg, fw, scale_arg, s, want, finite):
    """A checkpoint weight fw = (format or None, codes) from Checker.fp8
    and its rows-layout scales, shapes `want` ([..., N, K]) and
    [..., N, K/32]."""
    f, wv = fw
    if f not in (None, "e4m3fn"):
        ck.fail(arg, "holds %s values; moe_layer weights are checkpoint E4M3FN bytes "
                "(convert with checkpoint_weights_from_fnuz)" % f)
    sv = ck.e8m0(scale_arg, s)
    names = ["n", "N", "K"][-len(want):]
    ck.shape(arg, wv, want, names)
    ck.shape(scale_arg, sv, tuple(want[:-1]) + (want[-1] // 32,), names[:-1] + ["K/32"])
    bad = np.flatnonzero(sv.reshape(-1) >= 254)
    if bad.size:
        ck.fail(scale_arg, "element %s is scale byte %d; the production loader refuses "
                "bytes >= 254 (the FNUZ conversion adds 1)" % (
                    fmt_index(bad[0], sv.shape), int(sv.reshape(-1)[bad[0]])))
    if finite:
        ck.fp8_finite(arg, wv, "e4m3fn")
    return wv, sv


def capture_moe_layer(path, *, x, router_weight, router_bias, w13, w13_scale, w2,
                      w2_scale, experts_present, ws13, ws13_scale, ws2, ws2_scale, out,
                      policy, shape="custom", topk=None, tp=None, ep=None,
                      experts_local=None, expert0=None, layer=None, max_model_len=None,
                      topk_ids=None, topk_weights=None, xq=None, xq_scale=None, g1=None,
                      actq=None, actq_scale=None, act=None, y=None, routed=None,
                      shared_out=None, router_logits=None, element_format="e4m3fnuz",
                      e8m0_decode="production", scale_rule="production", rceil_max=None,
                      accum_model="fp32-group", finite=True, producer=None, metadata=None):
    """Writes one MiniMax-M3 MoE layer (kind moe_layer); see
    docs/capture-format.md for the tensors.  Dimensions come from the
    tensors (hidden H from x, intermediate I from w2, ...); a named shape
    must agree with them.  element_format is the format of the activation
    quantization intermediates (xq, actq); the weights are checkpoint
    E4M3FN bytes with rows-layout scales."""
    ck = Checker("capture_moe_layer")
    path = _target(ck, path)
    policy = ck.choice("policy", policy, POLICIES)
    shape = ck.choice("shape", shape, SHAPES)
    fin = ck.flag("finite", finite)
    accum_model = ck.accum_model(accum_model)
    e8m0_decode = ck.choice("e8m0_decode", e8m0_decode, formats.E8M0_DECODES)
    rule = ck.choice("scale_rule", scale_rule, SCALE_RULES)
    rmax = _rceil_max(ck, rule, rceil_max)
    named = NAMED_SHAPES.get(shape, {})

    xv = ck.bf16("x", x)
    ck.rank("x", xv, 2, ["T", "H"])
    T, H = xv.shape
    if T < 1 or H < 1:
        ck.fail("x", "shape [%d, %d] has an empty dimension" % (T, H))
    if H % 32:
        ck.fail("x", "H = %d is not a multiple of 32" % H)
    rw = ck.f32("router_weight", router_weight)
    ck.rank("router_weight", rw, 2, ["E_total", "H"])
    E_total = rw.shape[0]
    ck.shape("router_weight", rw, (E_total, H), ["E_total", "H"])
    if E_total < 1:
        ck.fail("router_weight", "has no experts")
    rb = ck.f32("router_bias", router_bias)
    ck.shape("router_bias", rb, (E_total,), ["E_total"])

    fw13, fw2, fws13, fws2 = (ck.fp8("w13", w13), ck.fp8("w2", w2),
                              ck.fp8("ws13", ws13), ck.fp8("ws2", ws2))
    w13v = fw13[1]
    ck.rank("w13", w13v, 3, ["n", "2I", "H"])
    n, I2 = w13v.shape[:2]
    if I2 % 2:
        ck.fail("w13", "has %d rows, not 2I (gate and up halves)" % I2)
    inter = I2 // 2
    if inter < 1 or inter % 32:
        ck.fail("w13", "I = %d is not a positive multiple of 32" % inter)
    w13v, s13 = _weight(ck, "w13", fw13, "w13_scale", w13_scale, (n, I2, H), fin)
    w2v, s2 = _weight(ck, "w2", fw2, "w2_scale", w2_scale, (n, H, inter), fin)
    ck.rank("ws2", fws2[1], 2, ["H", "Is"])
    Is = fws2[1].shape[1]
    if Is < 1 or Is % 32:
        ck.fail("ws2", "Is = %d is not a positive multiple of 32" % Is)
    ws13v, ss13 = _weight(ck, "ws13", fws13, "ws13_scale", ws13_scale, (2 * Is, H), fin)
    ws2v, ss2 = _weight(ck, "ws2", fws2, "ws2_scale", ws2_scale, (H, Is), fin)

    for key, got in (("hidden", H), ("intermediate", inter), ("intermediate_shared", Is),
                     ("experts", E_total)):
        if key in named and named[key] != got:
            ck.fail("shape", "%r has %s = %d but the arguments give %d (use shape='custom')"
                    % (shape, key, named[key], got))
    tp = ck.count("tp", tp if tp is not None else named.get("tp", 1), 1)
    ep = ck.count("ep", ep if ep is not None else named.get("ep", 1), 1)
    if experts_local is None:
        experts_local = named.get("experts_local", E_total // ep)
        if E_total % ep:
            ck.fail("ep", "%d does not divide the %d experts; pass experts_local" % (ep, E_total))
    E_local = ck.count("experts_local", experts_local, 1)
    e0 = ck.count("expert0", expert0 if expert0 is not None else 0, 0)
    if e0 + E_local > E_total:
        ck.fail("expert0", "%d + experts_local %d exceeds the %d experts" % (e0, E_local, E_total))
    present = ck.index("experts_present", experts_present)
    ck.shape("experts_present", present, (n,), ["n"])
    ck.unique_ids("experts_present", present, E_total)
    outside = np.flatnonzero((present < e0) | (present >= e0 + E_local))
    if outside.size:
        ck.fail("experts_present", "expert %d is not local to this rank [%d, %d)" % (
            int(present[outside[0]]), e0, e0 + E_local))

    ids = None
    if topk_ids is not None:
        ids = ck.index("topk_ids", topk_ids)
        ck.rank("topk_ids", ids, 2, ["T", "k"])
        ck.shape("topk_ids", ids, (T, ids.shape[1]), ["T", "k"])
        if topk is not None and ck.count("topk", topk, 1) != ids.shape[1]:
            ck.fail("topk", "is %d but topk_ids has %d columns" % (topk, ids.shape[1]))
        topk = ids.shape[1]
    if topk is None:
        topk = named.get("topk")
        if topk is None:
            ck.fail("topk", "is required with shape='custom' when topk_ids is not given")
    k = ck.count("topk", topk, 1)
    if k > E_total:
        ck.fail("topk", "%d exceeds the %d experts" % (k, E_total))
    dims = dict(hidden=H, intermediate=inter, intermediate_shared=Is, experts=E_total,
                experts_local=E_local, topk=k, tp=tp, ep=ep)
    for key, want in named.items():
        if dims[key] != want:
            ck.fail("shape", "%r has %s = %d but the arguments give %d (use shape='custom')"
                    % (shape, key, want, dims[key]))

    tensors = {
        "x": ("BF16", xv), "router_weight": ("F32", rw), "router_bias": ("F32", rb),
        "w13": ("F8_E4M3", w13v), "w13_scale": ("F8_E8M0", s13),
        "w2": ("F8_E4M3", w2v), "w2_scale": ("F8_E8M0", s2),
        "experts_present": ("I32", present.astype(np.int32)),
        "ws13": ("F8_E4M3", ws13v), "ws13_scale": ("F8_E8M0", ss13),
        "ws2": ("F8_E4M3", ws2v), "ws2_scale": ("F8_E8M0", ss2),
    }
    if ids is not None:
        ck.routing(ids, E_total)
        local = (ids >= e0) & (ids < e0 + E_local) & ~np.isin(ids, present)
        if local.any():
            t, j = np.argwhere(local)[0]
            ck.fail("experts_present", "lacks expert %d, which topk_ids[%d, %d] routes to "
                    "and which is local to this rank" % (int(ids[t, j]), t, j))
        tensors["topk_ids"] = ("I32", ids.astype(np.int32))
    if topk_weights is not None:
        if ids is None:
            ck.fail("topk_weights", "needs topk_ids")
        wv = ck.f32("topk_weights", topk_weights)
        ck.shape("topk_weights", wv, (T, k), ["T", "k"])
        tensors["topk_weights"] = ("F32", wv)
    if router_logits is not None:
        lv = ck.f32("router_logits", router_logits)
        ck.shape("router_logits", lv, (T, E_total), ["T", "E_total"])
        tensors["router_logits"] = ("F32", lv)

    # Activation-quant intermediates share one FP8 format.
    given_fp8 = {}
    for arg, val in (("xq", xq), ("actq", actq)):
        if val is not None:
            given_fp8[arg] = ck.fp8(arg, val)
    fmt = ck.resolve_format(element_format, [(a, f) for a, (f, _) in given_fp8.items()],
                            default="e4m3fnuz")
    w8a8_given = [a for a, v in (("xq", xq), ("xq_scale", xq_scale), ("actq", actq),
                                 ("actq_scale", actq_scale)) if v is not None]
    if policy in ("bf16", "w8a16") and w8a8_given:
        ck.fail(w8a8_given[0], "is an MXFP8 intermediate but policy is %r" % policy)
    if policy == "w8a8-mxfp8" and act is not None:
        ck.fail("act", "is a BF16 intermediate but policy is 'w8a8-mxfp8' (use actq)")
    if policy == "hybrid" and act is not None and w8a8_given:
        ck.fail("act", "and %s come from different dataflows; give one" % w8a8_given[0])
    for qa, sa, rows, cols, cname in (("xq", "xq_scale", T, H, "H"),
                                      ("actq", "actq_scale", T * k, inter, "I")):
        qv, sv = (xq, xq_scale) if qa == "xq" else (actq, actq_scale)
        if (qv is None) != (sv is None):
            ck.fail(sa if sv is None else qa, "is required with %s" % (qa if sv is None else sa))
        if qv is None:
            continue
        codes = given_fp8[qa][1]
        scales = ck.e8m0(sa, sv)
        if qa == "xq":
            ck.shape(qa, codes, (T, H), ["T", "H"])
            ck.shape(sa, scales, (T, H // 32), ["T", "H/32"])
        else:
            codes = routed_rows(ck, qa, codes, T, k, inter, "I")
            scales = routed_rows(ck, sa, scales, T, k, inter // 32, "I/32")
        tensors[qa] = (FP8_DTYPE[fmt], codes)
        tensors[sa] = ("F8_E8M0", scales)
    for arg, val, cols, cname, per_route in (
            ("g1", g1, 2 * inter, "2I", True), ("act", act, inter, "I", True),
            ("y", y, H, "H", True), ("routed", routed, H, "H", False),
            ("shared_out", shared_out, H, "H", False), ("out", out, H, "H", False)):
        if val is None:
            if arg == "out":
                ck.fail("out", "is required (got None)")
            continue
        v = ck.bf16(arg, val)
        if per_route:
            v = routed_rows(ck, arg, v, T, k, cols, cname)
        else:
            ck.shape(arg, v, (T, cols), ["T", cname])
        tensors[arg] = ("BF16", v)

    if fin:
        ck.bf16_finite("x", xv)
        ck.f32_finite("router_weight", rw)
        ck.f32_finite("router_bias", rb)
    meta = _common_meta(ck, "moe_layer", producer, metadata, fin)
    meta.update({"policy": policy, "shape": shape, "element_format": fmt,
                 "e8m0_decode": e8m0_decode, "scale_rule": rule, "accum_model": accum_model,
                 "expert0": str(e0)})
    meta.update({key: str(v) for key, v in dims.items()})
    if rmax is not None:
        meta["rceil_max"] = _decimal(rmax)
    if layer is not None:
        meta["layer"] = str(ck.count("layer", layer, 0))
    if max_model_len is not None:
        meta["max_model_len"] = str(ck.count("max_model_len", max_model_len, 1))
    stfile.write(path, tensors, meta)
    return path


# ---- helpers ----------------------------------------------------------------------

def checkpoint_weights_from_fnuz(w, w_scale, scale_layout="packed"):
    """Undoes the gfx94x load-time conversion (production-numerics.md
    section 2) for capture_moe_layer: FNUZ weight bytes [..., N, K] are
    returned unchanged as E4M3FN bytes (the FN value of a byte is twice its
    FNUZ value) and every scale byte lowered by one, in the rows layout
    [..., N, K/32] (from packed [..., K/32, N] or rows).  Returns (bytes,
    scales) as uint8 arrays.  Refuses the FNUZ NaN byte 0x80, the bytes
    0x7F and 0xFF (+-240 in FNUZ but NaN in FN: the loader only ever makes
    them from checkpoint NaNs) and scale byte 0 (no FN scale represents it)."""
    ck = Checker("checkpoint_weights_from_fnuz")
    layout = ck.choice("scale_layout", scale_layout, ("rows", "packed"))
    f, wv = ck.fp8("w", w)
    if f not in (None, "e4m3fnuz"):
        ck.fail("w", "holds %s values, expected e4m3fnuz" % f)
    sv = ck.e8m0("w_scale", w_scale)
    if wv.ndim < 2:
        ck.fail("w", "shape %s has rank %d, expected [..., N, K]" % (list(wv.shape), wv.ndim))
    N, K = wv.shape[-2:]
    if K % 32:
        ck.fail("w", "K = %d is not a multiple of 32" % K)
    lead = wv.shape[:-2]
    if layout == "packed":
        ck.shape("w_scale", sv, lead + (K // 32, N), ["..."] * len(lead) + ["K/32", "N"])
        sv = np.swapaxes(sv, -1, -2)
    else:
        ck.shape("w_scale", sv, lead + (N, K // 32), ["..."] * len(lead) + ["N", "K/32"])
    bad = np.flatnonzero(wv.reshape(-1) == 0x80)
    if bad.size:
        ck.fail("w", "element %s is 0x80, NaN in E4M3FNUZ" % fmt_index(bad[0], wv.shape))
    bad = np.flatnonzero((wv.reshape(-1) & 0x7F) == 0x7F)
    if bad.size:
        code = int(wv.reshape(-1)[bad[0]])
        ck.fail("w", "element %s is 0x%02X (%s240 in E4M3FNUZ), a NaN byte in E4M3FN: "
                "no checkpoint holds it" % (fmt_index(bad[0], wv.shape), code,
                                            "-" if code & 0x80 else "+"))
    s = np.ascontiguousarray(sv)
    zero = np.flatnonzero(s.reshape(-1) == 0)
    if zero.size:
        ck.fail("w_scale", "holds scale byte 0, which has no E4M3FN equivalent")
    return wv.copy(), (s - 1).astype(np.uint8)


def read_capture(path):
    """(metadata, tensors) of a capture; tensors maps each name to (dtype
    name, raw numpy array: uint8 codes for FP8 and E8M0, uint16 bits for
    BF16, the native dtype otherwise)."""
    return stfile.read(path)


def corrupt_element(src, dst, tensor, index, value=None):
    """Copies capture src to dst with one element of `tensor` changed, for
    showing that mxverify check catches it.  index: a tuple into the
    tensor's shape.  value: the new raw bits (an int); default: a 1-byte
    element goes up by one (down by one from 254 and 255), which for an
    E8M0 scale doubles it; a wider element gets its lowest bit flipped.
    Returns (old bits, new bits)."""
    meta, tensors = stfile.read(src)
    if tensor not in tensors:
        raise KeyError("%s: no tensor %r" % (src, tensor))
    dtype, arr = tensors[tensor]
    arr = arr.copy()
    raw = arr.view(np.dtype("u%d" % arr.dtype.itemsize))
    old = int(raw[tuple(index)])
    if value is None:
        if arr.dtype.itemsize == 1:
            value = old + 1 if old < 254 else old - 1
        else:
            value = old ^ 1
    raw[tuple(index)] = value
    tensors[tensor] = (dtype, arr)
    stfile.write(dst, tensors, meta)
    return old, int(raw[tuple(index)])
