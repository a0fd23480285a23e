"""The MiniMax-M3 MoE layer in numpy, as production computes it
(docs: /work/shared/facts/production-numerics.md sections 2-5, mirrored in
docs/reference.md), with the hybrid dispatch and two planted bugs.

Everything is in raw codes: BF16 as uint16 bits, FP8 and E8M0 as uint8.
The GEMMs are mxverify_capture's emulations (exact 32-wide partial dots
rounded once to FP32, FP32 accumulation, BF16 round to nearest even), so
a correct layer here is bit-exact under mxverify's fp32-group model; the
rest of the layer (router, SwiGLU, moe_sum, the final combine) is written
below from the production description, not from the C reference.

Dataflows (policy):
  w8a8-mxfp8  x -> MXFP8 E4M3FNUZ (floor rule) -> GEMM1 on FNUZ weights
              (checkpoint FN bytes, 0x80 -> 0x00, scale + 1) -> g1 BF16 ->
              SwiGLU in FP32 -> MXFP8 quant -> GEMM2 with the top-k weight on
              the FP32 accumulator -> y BF16 -> moe_sum in BF16, sequential
  bf16        the same on BF16 weights bf16(value * 2^(s-127)), act stored
              BF16, no activation quantization
  hybrid      bf16 when T <= 8 or T >= 1024 tokens, w8a8-mxfp8 otherwise
              (TP only; with max_model_len > 4096 every 5th layer is bf16)
The shared expert always runs in BF16; out = bf16(2 * routed + shared).

Planted bugs (Bug(layer, expert, kind)), named as in docs/mutations.md:
  scale-next-group  GEMM1 of one expert multiplies the partial dot of K
                    group g by the weight scale of group g + 1 (the last
                    group reads a masked scale byte 0)
  bf16-truncate     GEMM2 of one expert truncates its FP32 accumulator to
                    BF16 instead of rounding to nearest even (one ulp)
"""
import numpy as np

from mxverify_capture import emulate, formats

SWIGLU_LIMIT = np.float32(7.0)
SWIGLU_ALPHA = np.float32(1.702)
ROUTED_SCALING = 2.0
HYBRID_LOW, HYBRID_HIGH = 8, 1024
BUG_KINDS = ("scale-next-group", "bf16-truncate")


class Bug:
    """A planted bug: in layer `layer`, expert `expert`, of kind `kind`."""

    def __init__(self, layer, expert, kind):
        if kind not in BUG_KINDS:
            raise ValueError("unknown bug %r (known: %s)" % (kind, ", ".join(BUG_KINDS)))
        self.layer, self.expert, self.kind = int(layer), int(expert), kind

    def __repr__(self):
        return "Bug(layer=%d, expert=%d, kind=%r)" % (self.layer, self.expert, self.kind)


def dispatch(policy, T, layer=0, max_model_len=4096):
    """The dataflow production runs for T tokens (resolves hybrid)."""
    if policy != "hybrid":
        return policy
    if max_model_len > 4096 and layer % 5 == 0:
        return "bf16"
    return "bf16" if T <= HYBRID_LOW or T >= HYBRID_HIGH else "w8a8-mxfp8"


# ---- weights ------------------------------------------------------------------

def quantize_checkpoint(w32):
    """A BF16/FP32 master weight [..., N, K] as a checkpoint MXFP8 tensor:
    E4M3FN codes and E8M0 scales [..., N, K/32] (OCP rule, saturating)."""
    w32 = np.asarray(w32, dtype=np.float32)
    shp = w32.shape
    q, s = emulate.mx_quantize(w32.reshape(-1, shp[-1]), element_format="e4m3fn",
                               scale_rule="ocp")
    return q.reshape(shp), s.reshape(shp[:-1] + (shp[-1] // 32,))


def fn_to_fnuz(q, s):
    """The gfx94x load-time conversion: value byte 0x80 -> 0x00, bytes read
    as E4M3FNUZ, every scale byte + 1 (the loader refuses bytes >= 254)."""
    if (s >= 254).any():
        raise ValueError("a checkpoint scale byte is >= 254")
    return np.where(q == 0x80, 0, q).astype(np.uint8), (s + 1).astype(np.uint8)


def dequant_bf16(q, s):
    """BF16 fallback weights: bf16(value * 2^(s - 127)), exact for E4M3."""
    v = formats.decode_fp8(q, "e4m3fn") * np.ldexp(1.0, s.astype(np.int64) - 127).repeat(32, axis=-1)
    return formats.f32_to_bf16(v.astype(np.float32))


class LayerWeights:
    """One layer's weights as the checkpoint holds them."""

    def __init__(self, router, bias, w13, w13_s, w2, w2_s, ws13, ws13_s, ws2, ws2_s):
        self.router = np.ascontiguousarray(router, dtype=np.float32)   # [E, H]
        self.bias = np.ascontiguousarray(bias, dtype=np.float32)       # [E]
        self.w13, self.w13_s = w13, w13_s                              # [E, 2I, H]
        self.w2, self.w2_s = w2, w2_s                                  # [E, H, I]
        self.ws13, self.ws13_s = ws13, ws13_s                          # [2Is, H]
        self.ws2, self.ws2_s = ws2, ws2_s                              # [H, Is]
        self._cache = {}

    def fnuz(self, name):
        key = ("fnuz", name)
        if key not in self._cache:
            self._cache[key] = fn_to_fnuz(getattr(self, name), getattr(self, name + "_s"))
        return self._cache[key]

    def bf16(self, name):
        key = ("bf16", name)
        if key not in self._cache:
            self._cache[key] = dequant_bf16(getattr(self, name), getattr(self, name + "_s"))
        return self._cache[key]

    @classmethod
    def from_master(cls, router, bias, w13, w2, ws13, ws2):
        """From float master weights (what a checkpoint was quantized from)."""
        q13, s13 = quantize_checkpoint(w13)
        q2, s2 = quantize_checkpoint(w2)
        qs13, ss13 = quantize_checkpoint(ws13)
        qs2, ss2 = quantize_checkpoint(ws2)
        return cls(router, bias, q13, s13, q2, s2, qs13, ss13, qs2, ss2)


# ---- stages -----------------------------------------------------------------------

def route(x, w, k):
    """Router: logits in FP32 (rounded once from a binary64 dot of BF16 x and
    FP32 weights), s = sigmoid, top-k of s + bias (ties: lower id), weights
    = the chosen FP32 s renormalized in FP32 in rank order.  Returns
    (logits f32 [T, E], ids int32 [T, k], weights f32 [T, k])."""
    x64 = formats.bf16_to_f32(x).astype(np.float64)
    l64 = x64 @ w.router.astype(np.float64).T
    logits = l64.astype(np.float32)
    score = 1.0 / (1.0 + np.exp(-l64)) + w.bias.astype(np.float64)
    T, E = score.shape
    ids = np.empty((T, k), dtype=np.int32)
    for t in range(T):
        order = np.lexsort((np.arange(E), -score[t]))
        ids[t] = order[:k]
    s32 = (1.0 / (1.0 + np.exp(-np.take_along_axis(logits, ids, 1).astype(np.float64)))).astype(np.float32)
    total = s32[:, 0].copy()
    for j in range(1, k):
        total = (total + s32[:, j]).astype(np.float32)
    weights = (s32 / total[:, None]).astype(np.float32)
    return logits, ids, weights


def swiglu_f32(g1):
    """Clamped SwiGLU in FP32 on g1 BF16 bits [rows, 2I] (gate first)."""
    g = formats.bf16_to_f32(g1)
    inter = g.shape[1] // 2
    gate = np.minimum(g[:, :inter], SWIGLU_LIMIT).astype(np.float32)
    up = np.clip(g[:, inter:], -SWIGLU_LIMIT, SWIGLU_LIMIT).astype(np.float32)
    with np.errstate(over="ignore"):
        z = (SWIGLU_ALPHA * gate).astype(np.float32)
        sig = (np.float32(1) / (np.float32(1) + np.exp(-z))).astype(np.float32)
    return (gate * sig * (up + np.float32(1))).astype(np.float32)


def moe_sum(y, T, k):
    """The top-k rows of y [T*k, H] added in BF16 arithmetic, sequentially."""
    yy = formats.bf16_to_f32(y).reshape(T, k, -1)
    acc = formats.bf16_to_f32(y.reshape(T, k, -1)[:, 0])
    for j in range(1, k):
        acc = formats.bf16_to_f32(formats.f32_to_bf16((acc + yy[:, j]).astype(np.float32)))
    return formats.f32_to_bf16(acc)


def _truncate_bf16(acc):
    bits = np.ascontiguousarray(acc, dtype=np.float32).view(np.uint32)
    return (bits >> 16).astype(np.uint16)


def _shift_scales_next_group(s):
    out = np.zeros_like(s)
    out[..., :-1] = s[..., 1:]
    return out


def shared_expert(x, w):
    T = x.shape[0]
    zeros = np.zeros((T, 1), dtype=np.int32)
    g1 = emulate.bf16_group_gemm(x, w.bf16("ws13")[None], zeros)
    act = formats.f32_to_bf16(swiglu_f32(g1))
    return emulate.bf16_group_gemm(act, w.bf16("ws2")[None], zeros)


def moe_layer(x, w, k, policy="hybrid", layer=0, bug=None, max_model_len=4096):
    """One MoE layer on x (BF16 bits [T, H]).  Returns a dict with the
    resolved policy and every intermediate the capture format names:
    router_logits, topk_ids, topk_weights, (xq, xq_scale, actq, actq_scale)
    or act, g1, y, routed, shared_out, out."""
    x = np.ascontiguousarray(x, dtype=np.uint16)
    T = x.shape[0]
    pol = dispatch(policy, T, layer, max_model_len)
    bug = bug if bug is not None and bug.layer == layer else None
    logits, ids, tw = route(x, w, k)
    r = {"policy": pol, "router_logits": logits, "topk_ids": ids, "topk_weights": tw}
    if pol == "w8a8-mxfp8":
        xq, xs = emulate.mx_quantize(x, element_format="e4m3fnuz", scale_rule="production")
        b13, s13 = w.fnuz("w13")
        if bug is not None and bug.kind == "scale-next-group":
            s13 = s13.copy()
            s13[bug.expert] = _shift_scales_next_group(s13[bug.expert])
        g1 = emulate.mxfp8_group_gemm(xq, xs, b13, s13, ids, element_format="e4m3fnuz")
        act32 = swiglu_f32(g1)
        aq, asc = emulate.mx_quantize(act32, element_format="e4m3fnuz", scale_rule="production")
        b2, s2 = w.fnuz("w2")
        y, acc = emulate.mxfp8_group_gemm(aq, asc, b2, s2, ids, element_format="e4m3fnuz",
                                          a_per_route=True, topk_weights=tw,
                                          mul_routed_weight=True, return_acc=True)
        r.update(xq=xq, xq_scale=xs, actq=aq, actq_scale=asc)
    elif pol in ("bf16", "w8a16"):
        g1 = emulate.bf16_group_gemm(x, w.bf16("w13"), ids)
        act = formats.f32_to_bf16(swiglu_f32(g1))
        y, acc = emulate.bf16_group_gemm(act, w.bf16("w2"), ids, a_per_route=True,
                                         topk_weights=tw, mul_routed_weight=True,
                                         return_acc=True)
        r.update(act=act)
    else:
        raise ValueError("unknown policy %r" % policy)
    if bug is not None and bug.kind == "bf16-truncate":
        rows = np.flatnonzero(ids.reshape(-1) == bug.expert)
        y = y.copy()
        y[rows] = _truncate_bf16(acc[rows])
    routed = moe_sum(y, T, k)
    shared = shared_expert(x, w)
    v = ROUTED_SCALING * formats.bf16_to_f32(routed).astype(np.float64) + \
        formats.bf16_to_f32(shared).astype(np.float64)
    out = formats.f32_to_bf16(v.astype(np.float32))
    r.update(g1=g1, y=y, routed=routed, shared_out=shared, out=out)
    return r


def capture(path, x, w, r, k, layer, producer, policy="hybrid"):
    """Writes a moe_layer capture of one call of moe_layer (r its result)."""
    import mxverify_capture as mc
    inter = {n: r[n] for n in ("topk_ids", "topk_weights", "xq", "xq_scale", "g1", "actq",
                               "actq_scale", "act", "y", "routed", "shared_out",
                               "router_logits") if n in r}
    return mc.capture_moe_layer(
        path, x=x, router_weight=w.router, router_bias=w.bias, w13=w.w13,
        w13_scale=w.w13_s, w2=w.w2, w2_scale=w.w2_s,
        experts_present=np.arange(w.w13.shape[0], dtype=np.int32), ws13=w.ws13,
        ws13_scale=w.ws13_s, ws2=w.ws2, ws2_scale=w.ws2_s, out=r["out"], policy=policy,
        shape="custom", topk=k, layer=layer, producer=producer, **inter)
