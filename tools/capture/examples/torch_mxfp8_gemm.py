#!/usr/bin/env python3
"""Emulate an MXFP8 grouped GEMM (E4M3FNUZ operands, E8M0 scales) and a BF16
grouped GEMM in torch on a GPU, and write both as mxverify captures.

The MXFP8 GEMM follows production-numerics.md section 4 in torch:
dequantize the FNUZ bytes to FP32 through a 256-entry table, decode the
scale bytes the production way (the byte as a BF16 exponent: 0 -> 0.0),
one batched matmul per expert for the 32-wide group partials (FP32 by
default, TF32 off; --partials fp64 makes them exact, then RN32), then per
group acc = acc + p * (sa * sb) in FP32, the top-k weight on the FP32
accumulator (GEMM2, the default) and a BF16 cast (round to nearest even).
The BF16 GEMM is a bf16 torch matmul (FP32 accumulation, reduced-precision
reductions off) of the BF16 activations and the weights dequantized to BF16
(exact), one row per token (GEMM1 form).

Outputs, in --out-dir:
    mxfp8-gemm.safetensors          kind mxfp8_group_gemm
    bf16-gemm.safetensors           kind bf16_group_gemm
    mxfp8-gemm-corrupt.safetensors  with --corrupt-scale: one b_scale byte
                                    raised by one (that group's weights
                                    doubled); the script prints the output
                                    elements mxverify check should flag.
Then:
    mxverify check OUT_DIR/mxfp8-gemm.safetensors OUT_DIR/bf16-gemm.safetensors
    mxverify check OUT_DIR/mxfp8-gemm-corrupt.safetensors    (must fail)

Operands come from mxverify_capture.rng (the same on every machine), so
--check-numpy can recompute the MXFP8 output with the package's numpy
emulation and count differing elements (0 expected with --partials fp64).
Needs torch (any version with float8_e4m3fnuz); runs on the CPU with
--device cpu.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import numpy as np  # noqa: E402

import mxverify_capture as mc  # noqa: E402
from mxverify_capture import formats, rng  # noqa: E402

FMT = "e4m3fnuz"


def build_operands(seed, T, topk, E, N, K):
    """numpy operands of one GEMM2-style call (one A row per route).

    a [T*topk, K] FNUZ codes and a_scale [T*topk, K/32]: BF16 activations
    (x_bf16) quantized with the production rule; b [E, N, K] FNUZ codes
    with b_scale packed [E, K/32, N]: random BF16 weights quantized with
    the production rule (so weight scales vary per row and group);
    b_bf16 [E, N, K]: the weights dequantized to BF16 (exact); topk_ids
    [T, topk] distinct per token; topk_weights [T, topk] float32; x_tok
    [T, K] BF16 token activations for the BF16 GEMM."""
    R = T * topk
    x = rng.bf16_values(seed, (R, K), -12, 0)
    a, a_scale = mc.mx_quantize(x, element_format=FMT)
    w = rng.bf16_values(seed + 10, (E * N, K), -16, -6)
    b, b_scale_rows = mc.mx_quantize(w, element_format=FMT)
    b = b.reshape(E, N, K)
    b_scale_rows = b_scale_rows.reshape(E, N, K // 32)
    b_scale = np.ascontiguousarray(b_scale_rows.transpose(0, 2, 1))
    deq = formats.decode_fp8(b, FMT) * np.exp2(np.repeat(b_scale_rows, 32, -1).astype(np.float64) - 127)
    b_bf16 = formats.f32_to_bf16(deq.astype(np.float32))
    return dict(a=a, a_scale=a_scale, b=b, b_scale=b_scale, b_bf16=b_bf16,
                topk_ids=rng.distinct_rows(seed + 20, T, topk, E),
                topk_weights=rng.weights(seed + 30, T, topk),
                x_tok=rng.bf16_values(seed + 40, (T, K), -8, 0))


def corruption_target(topk_ids, b_scale):
    """(expert, group, column, flat output rows) for the scale byte the
    corrupt copy changes: group 0, column 0 of the first token's first
    expert; every route to that expert has output (row, 0) changed."""
    e = int(topk_ids[0, 0])
    rows = [int(r) for r in np.flatnonzero(topk_ids.reshape(-1) == e)]
    return e, 0, 0, rows


def torch_mxfp8_group_gemm(torch, dev, ops, partials):
    """The MXFP8 grouped GEMM in torch (GEMM2 form); returns (out bf16
    tensor [T*topk, N] on dev, seconds)."""
    a = torch.from_numpy(ops["a"]).to(dev)
    b = torch.from_numpy(ops["b"]).to(dev)
    sa = torch.from_numpy(ops["a_scale"]).to(dev)
    sb = torch.from_numpy(ops["b_scale"]).to(dev)                 # packed [E, G, N]
    ids = torch.from_numpy(ops["topk_ids"]).to(dev).reshape(-1)
    wts = torch.from_numpy(ops["topk_weights"]).to(dev).reshape(-1)
    # Values of all 256 FNUZ bytes (exact in FP32; NaN byte never used).
    lut = torch.from_numpy(np.nan_to_num(formats.fp8_format(FMT).table).astype(np.float32)).to(dev)
    # Production E8M0 decode: s << 7 as BF16 == s << 23 as FP32 (0 -> +0.0).
    sa32 = (sa.to(torch.int32) << 23).view(torch.float32)          # [R, G]
    sb32 = (sb.to(torch.int32) << 23).view(torch.float32)          # [E, G, N]
    pdt = torch.float64 if partials == "fp64" else torch.float32
    R, K = a.shape
    E, N, _ = b.shape
    G = K // 32
    av = lut[a.long()].to(pdt).reshape(R, G, 32)
    bv = lut[b.long()].to(pdt).reshape(E, N, G, 32)
    out = torch.zeros((R, N), dtype=torch.bfloat16, device=dev)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for e in range(E):
        routes = torch.nonzero(ids == e).reshape(-1)
        if routes.numel() == 0:
            continue
        # [G, r, 32] @ [G, 32, N] -> [G, r, N]: the 32-wide group partials.
        p = torch.bmm(av[routes].permute(1, 0, 2), bv[e].permute(1, 2, 0)).to(torch.float32)
        acc = torch.zeros((routes.numel(), N), dtype=torch.float32, device=dev)
        for g in range(G):
            sc = sa32[routes, g][:, None] * sb32[e, g][None, :]
            acc = acc + p[g] * sc
        acc = acc * wts[routes][:, None]
        out[routes] = acc.to(torch.bfloat16)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def torch_bf16_group_gemm(torch, dev, ops, mode):
    """BF16 grouped GEMM, one A row per token (GEMM1 form), no weights."""
    x = torch.from_numpy(ops["x_tok"].view(np.int16)).to(dev).view(torch.bfloat16)
    w = torch.from_numpy(ops["b_bf16"].view(np.int16)).to(dev).view(torch.bfloat16)
    ids = ops["topk_ids"]
    T, k = ids.shape
    E, N, _ = w.shape
    out = torch.zeros((T * k, N), dtype=torch.bfloat16, device=dev)
    flat = torch.from_numpy(ids.reshape(-1)).to(dev)
    for e in range(E):
        routes = torch.nonzero(flat == e).reshape(-1)
        if routes.numel() == 0:
            continue
        xa = x[routes // k]
        if mode == "bf16":
            y = torch.matmul(xa, w[e].t())
        else:
            y = torch.matmul(xa.float(), w[e].float().t()).to(torch.bfloat16)
        out[routes] = y
    return out


def positive(name):
    def parse(s):
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError("%s must be an integer, got %r" % (name, s)) from None
        if v < 1:
            raise argparse.ArgumentTypeError("%s must be >= 1, got %d" % (name, v))
        return v
    return parse


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out-dir", default=".", help="directory for the captures (default .)")
    p.add_argument("--seed", type=int, default=1, help="operand seed (default 1)")
    p.add_argument("--tokens", "-T", type=positive("--tokens"), default=16)
    p.add_argument("--topk", type=positive("--topk"), default=4)
    p.add_argument("--experts", "-E", type=positive("--experts"), default=8)
    p.add_argument("-N", type=positive("-N"), default=256, help="output columns")
    p.add_argument("-K", type=positive("-K"), default=512, help="reduction size (multiple of 32)")
    p.add_argument("--device", default="cuda", help="torch device (default cuda)")
    p.add_argument("--partials", choices=("fp32", "fp64"), default="fp32",
                   help="dtype of the group-partial matmuls (fp64: exact, bit-identical "
                        "to the fp32-group model)")
    p.add_argument("--bf16-matmul", choices=("bf16", "fp32"), default="bf16",
                   help="BF16 GEMM: bf16 matmul (default) or FP32 matmul then BF16")
    p.add_argument("--corrupt-scale", action="store_true",
                   help="also write mxfp8-gemm-corrupt.safetensors with one b_scale byte changed")
    p.add_argument("--check-numpy", action="store_true",
                   help="compare the torch MXFP8 output with the numpy emulation")
    a = p.parse_args(argv)
    if a.K % 32:
        p.error("-K must be a multiple of 32, got %d" % a.K)
    if a.topk > a.experts:
        p.error("--topk %d exceeds --experts %d" % (a.topk, a.experts))
    return a


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        import torch
    except ImportError:
        print("error: this example needs torch (pip install torch)", file=sys.stderr)
        return 2
    if not hasattr(torch, "float8_e4m3fnuz"):
        print("error: torch %s has no float8_e4m3fnuz" % torch.__version__, file=sys.stderr)
        return 2
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("error: CUDA is not available (use --device cpu)", file=sys.stderr)
        return 2
    if not os.path.isdir(args.out_dir):
        print("error: --out-dir %r is not a directory" % args.out_dir, file=sys.stderr)
        return 2
    # Plain FP32 and BF16 arithmetic: no TF32, no reduced-precision reductions.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
    torch.set_float32_matmul_precision("highest")

    T, k, E, N, K = args.tokens, args.topk, args.experts, args.N, args.K
    ops = build_operands(args.seed, T, k, E, N, K)
    device_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    producer = "tools/capture/examples/torch_mxfp8_gemm.py, torch %s, %s, seed %d" % (
        torch.__version__, device_name, args.seed)

    out, secs = torch_mxfp8_group_gemm(torch, dev, ops, args.partials)
    # Hand torch tensors straight to the writer (it moves them to the CPU).
    fnuz = torch.float8_e4m3fnuz
    a_t = torch.from_numpy(ops["a"]).to(dev).view(fnuz)
    b_t = torch.from_numpy(ops["b"]).to(dev).view(fnuz)
    mx_path = mc.capture_mxfp8_group_gemm(
        os.path.join(args.out_dir, "mxfp8-gemm.safetensors"),
        a=a_t, a_scale=torch.from_numpy(ops["a_scale"]).to(dev),
        b=b_t, b_scale=torch.from_numpy(ops["b_scale"]).to(dev),
        topk_ids=torch.from_numpy(ops["topk_ids"]).to(dev).to(torch.int32),
        topk_weights=torch.from_numpy(ops["topk_weights"]).to(dev),
        out=out.reshape(T, k, N), scale_layout="packed", a_per_route=True,
        mul_routed_weight=True, producer=producer + ", partials " + args.partials)
    print("wrote %s (MXFP8 grouped GEMM T=%d topk=%d E=%d N=%d K=%d, %.3f s on %s)"
          % (mx_path, T, k, E, N, K, secs, device_name))

    bout = torch_bf16_group_gemm(torch, dev, ops, args.bf16_matmul)
    bf_path = mc.capture_bf16_group_gemm(
        os.path.join(args.out_dir, "bf16-gemm.safetensors"),
        a=torch.from_numpy(ops["x_tok"].view(np.int16)).to(dev).view(torch.bfloat16),
        b=torch.from_numpy(ops["b_bf16"].view(np.int16)).to(dev).view(torch.bfloat16),
        topk_ids=torch.from_numpy(ops["topk_ids"]).to(dev), out=bout,
        producer=producer + ", %s matmul" % args.bf16_matmul)
    print("wrote %s (BF16 grouped GEMM, %s matmul)" % (bf_path, args.bf16_matmul))

    if args.check_numpy:
        want = mc.mxfp8_group_gemm(ops["a"], ops["a_scale"], ops["b"], ops["b_scale"],
                                   ops["topk_ids"], element_format=FMT, scale_layout="packed",
                                   a_per_route=True, topk_weights=ops["topk_weights"],
                                   mul_routed_weight=True)
        _, t = mc.read_capture(mx_path)
        got = t["out"][1]
        diff = np.flatnonzero(got.reshape(-1) != want.reshape(-1))
        print("numpy emulation vs torch: %d of %d elements differ" % (diff.size, got.size))
        if diff.size:
            ulps = np.abs(got.astype(np.int32) - want.astype(np.int32)).max()
            print("  largest difference: %d BF16 ulps (first at flat index %d)" % (ulps, diff[0]))

    if args.corrupt_scale:
        e, g, n, rows = corruption_target(ops["topk_ids"], ops["b_scale"])
        bad_path = os.path.join(args.out_dir, "mxfp8-gemm-corrupt.safetensors")
        old, new = mc.corrupt_element(mx_path, bad_path, "b_scale", (e, g, n))
        print("wrote %s: b_scale[%d, %d, %d] (expert %d, K group %d, column %d) %d -> %d"
              % (bad_path, e, g, n, e, g, n, old, new))
        print("  mxverify check should flag out[r, %d] for r in %s" % (n, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
