#!/usr/bin/env python3
"""h100_triton.py -- record Triton tensor-core results on a Hopper GPU.

Usage: python3 h100_triton.py OUTDIR

1. mxfp8_gemm.safetensors: the production-structured MXFP8 GEMM of
   docs/../shared/facts/production-numerics.md section 4, on NVIDIA formats:
   E4M3FN values, one E8M0 scale per 32 values along K, and per output
   element
       acc = 0 (FP32)
       for each K group g of 32:
           p   = tl.dot(a[m, 32g:32g+32], b[32g:32g+32, n])   one FP8 wgmma
           sc  = dec(sa[m, g]) * dec(sb[n, g])                (FP32)
           acc = acc + p * sc                                 (FP32)
       out = bf16(acc)                                        (RNE)
   with the production E8M0 decode (byte << 23 read as FP32: 0 -> 0.0).
   Tensors per problem P (p0, p1): P_a [M,K] u8, P_b [N,K] u8 (b stored
   N-major, so d[m,n] = sum_k a[m,k] b[n,k]), P_sa [M,K/32] u8, P_sb
   [N,K/32] u8, P_acc [M,N] f32 (the FP32 accumulator), P_out [M,N] u16
   (the BF16 bits).  Metadata: GPU, driver, versions, date, the wgmma
   instruction Triton emitted.
2. triton_dot_<fmt>_k<K>.npz: d = tl.dot(a, b, c) on random codes (one
   tile of 64x64 outputs per program): a [R,64,K] u8/u16 codes, b [R,64,K]
   (N-major), c and d [R,64,64] u32 FP32 bits.  A cross-check of the
   hand-written wgmma probe through Triton's own code generation, including
   K > instruction K (chained wgmma).
"""
import datetime
import json
import os
import re
import subprocess
import sys

import numpy as np
import torch
import triton
import triton.language as tl
from safetensors.torch import save_file


@triton.jit
def mxfp8_gemm_kernel(a_ptr, b_ptr, sa_ptr, sb_ptr, acc_ptr, out_ptr, N, K, G,
                      BM: tl.constexpr, BN: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    rm = pid_m * BM + tl.arange(0, BM)
    rn = pid_n * BN + tl.arange(0, BN)
    rk = tl.arange(0, 32)
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for g in range(0, G):
        a = tl.load(a_ptr + rm[:, None] * K + g * 32 + rk[None, :])
        b = tl.load(b_ptr + rn[None, :] * K + g * 32 + rk[:, None])
        p = tl.dot(a, b)
        sa = tl.load(sa_ptr + rm * G + g).to(tl.uint32)
        sb = tl.load(sb_ptr + rn * G + g).to(tl.uint32)
        fa = (sa << 23).to(tl.float32, bitcast=True)
        fb = (sb << 23).to(tl.float32, bitcast=True)
        acc += p * (fa[:, None] * fb[None, :])
    tl.store(acc_ptr + rm[:, None] * N + rn[None, :], acc)
    tl.store(out_ptr + rm[:, None] * N + rn[None, :], acc.to(tl.bfloat16))


@triton.jit
def dot_kernel(a_ptr, b_ptr, c_ptr, d_ptr, K: tl.constexpr):
    r = tl.program_id(0)
    rm = tl.arange(0, 64)
    rn = tl.arange(0, 64)
    rk = tl.arange(0, K)
    a = tl.load(a_ptr + r * 64 * K + rm[:, None] * K + rk[None, :])
    b = tl.load(b_ptr + r * 64 * K + rn[None, :] * K + rk[:, None])
    c = tl.load(c_ptr + r * 4096 + rm[:, None] * 64 + rn[None, :])
    d = tl.dot(a, b, c)
    tl.store(d_ptr + r * 4096 + rm[:, None] * 64 + rn[None, :], d)


def ocp_quant(x, rng_elem_max=448.0):
    """MXFP8 quantization, OCP rule: s = floor(log2 amax) - 8 (+127)."""
    M, K = x.shape
    xb = x.reshape(M, K // 32, 32)
    amax = xb.abs().amax(dim=2).clamp_min(2.0 ** -100)
    e = torch.floor(torch.log2(amax)) - 8
    s = (e + 127).clamp(1, 254)
    q = (xb / torch.exp2(s - 127)[:, :, None]).clamp(-rng_elem_max, rng_elem_max)
    q8 = q.reshape(M, K).to(torch.float8_e4m3fn)
    return q8.view(torch.uint8), s.to(torch.uint8)


def wgmma_lines(compiled):
    ptx = compiled.asm.get("ptx", "")
    lines = sorted(set(re.findall(r"wgmma\.mma_async[^ ]*", ptx)))
    return lines, len(re.findall(r"wgmma\.mma_async", ptx))


def mxfp8_problem(name, M, N, K, gen, log):
    G = K // 32
    if gen == "normal":
        x = torch.randn(M, K, generator=GEN) * torch.exp(
            torch.randn(M, K // 32, 1, generator=GEN) * 2).repeat(1, 1, 32).reshape(M, K)
        w = torch.randn(N, K, generator=GEN) * 0.05
        a, sa = ocp_quant(x)
        b, sb = ocp_quant(w)
    else:  # every finite E4M3FN code, scales over a wide range
        a = torch.randint(0, 256, (M, K), generator=GEN, dtype=torch.int32)
        b = torch.randint(0, 256, (N, K), generator=GEN, dtype=torch.int32)
        a[(a & 0x7f) == 0x7f] = 0x7e
        b[(b & 0x7f) == 0x7f] = 0x7e
        a = a.to(torch.uint8)
        b = b.to(torch.uint8)
        sa = torch.randint(100, 150, (M, G), generator=GEN, dtype=torch.int32).to(torch.uint8)
        sb = torch.randint(100, 150, (N, G), generator=GEN, dtype=torch.int32).to(torch.uint8)
    ad = a.cuda().view(torch.float8_e4m3fn)
    bd = b.cuda().view(torch.float8_e4m3fn)
    acc = torch.empty(M, N, dtype=torch.float32, device="cuda")
    out = torch.empty(M, N, dtype=torch.bfloat16, device="cuda")
    BM, BN = 64, 64
    k = mxfp8_gemm_kernel[(M // BM, N // BN)](
        ad, bd, sa.cuda(), sb.cuda(), acc, out, N, K, G, BM=BM, BN=BN, num_warps=4)
    torch.cuda.synchronize()
    lines, cnt = wgmma_lines(k)
    log.write(f"{name}: M={M} N={N} K={K} gen={gen} wgmma in PTX: {cnt} {lines}\n")
    return {f"{name}_a": a.contiguous(), f"{name}_b": b.contiguous(),
            f"{name}_sa": sa.contiguous(), f"{name}_sb": sb.contiguous(),
            f"{name}_acc": acc.cpu(), f"{name}_out": out.cpu().view(torch.int16).contiguous()}, lines


def random_codes(fmt, shape):
    if fmt in ("e4m3", "e5m2"):
        x = torch.randint(0, 256, shape, generator=GEN, dtype=torch.int32)
        if fmt == "e4m3":
            x[(x & 0x7f) == 0x7f] = 0x7e
        else:
            x[(x & 0x7c) == 0x7c] &= 0xf3  # no inf/NaN
        return x.to(torch.uint8)
    # bf16: exponent field within 127 +- 30
    s = torch.randint(0, 2, shape, generator=GEN, dtype=torch.int32)
    e = torch.randint(97, 158, shape, generator=GEN, dtype=torch.int32)
    m = torch.randint(0, 128, shape, generator=GEN, dtype=torch.int32)
    return ((s << 15) | (e << 7) | m).to(torch.int16)


def dot_check(fmt, K, R, outdir, log):
    a = random_codes(fmt, (R, 64, K))
    b = random_codes(fmt, (R, 64, K))
    # c: FP32 around the products' scale
    mag = torch.exp2(torch.randint(-12, 16, (R, 64, 64), generator=GEN).float())
    c = (torch.randn(R, 64, 64, generator=GEN) * mag).float()
    c[torch.rand(R, 64, 64, generator=GEN) < 0.2] = 0.0
    tdt = {"e4m3": torch.float8_e4m3fn, "e5m2": torch.float8_e5m2,
           "bf16": torch.bfloat16}[fmt]
    ad = a.cuda().view(tdt)
    bd = b.cuda().view(tdt)
    cd = c.cuda()
    dd = torch.empty_like(cd)
    k = dot_kernel[(R,)](ad, bd, cd, dd, K=K, num_warps=4)
    torch.cuda.synchronize()
    lines, cnt = wgmma_lines(k)
    log.write(f"dot {fmt} K={K}: {R*4096} cases, wgmma in PTX: {cnt} {lines}\n")
    np.savez_compressed(os.path.join(outdir, f"triton_dot_{fmt}_k{K}.npz"),
                        a=a.numpy(), b=b.numpy(),
                        c=c.view(torch.int32).numpy(),
                        d=dd.cpu().view(torch.int32).numpy())


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    global GEN
    GEN = torch.Generator().manual_seed(20261125)
    log = open(os.path.join(outdir, "triton.log"), "w")
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version",
                          "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
    meta = {"gpu": smi, "torch": torch.__version__, "triton": triton.__version__,
            "cuda": str(torch.version.cuda),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "script": "tools/probe/h100_triton.py"}
    tensors = {}
    t0, lines0 = mxfp8_problem("p0", 64, 64, 1024, "normal", log)
    t1, lines1 = mxfp8_problem("p1", 64, 64, 512, "codes", log)
    tensors.update(t0)
    tensors.update(t1)
    meta["wgmma"] = " ".join(sorted(set(lines0 + lines1)))
    save_file(tensors, os.path.join(outdir, "mxfp8_gemm.safetensors"),
              metadata={k: str(v) for k, v in meta.items()})
    log.write(json.dumps(meta) + "\n")
    log.flush()
    for fmt, K in (("e4m3", 32), ("e4m3", 128), ("e5m2", 32), ("bf16", 16), ("bf16", 64)):
        try:
            dot_check(fmt, K, 16, outdir, log)
        except Exception as e:  # keep going: record what failed
            log.write(f"dot {fmt} K={K} failed: {e!r}\n")
        log.flush()
    log.close()


if __name__ == "__main__":
    main()
