#!/usr/bin/env python3
"""h200_triton_bugs.py -- captures of a production-structured MXFP8 GEMM on a
Hopper GPU, correct and with two planted bugs, for `mxverify check`.

Usage: PYTHONPATH=tools/capture python3 h200_triton_bugs.py OUTDIR

The kernel is the production structure of facts section 4 in Triton (as
tools/probe/h100_triton.py): per output element
    acc = 0 (FP32)
    for each K group g of 32:
        p   = tl.dot(a[m, 32g:32g+32], b[32g:32g+32, n])   one FP8 wgmma
        sc  = dec(sa[m, g]) * dec(sb[n, g])                (FP32)
        acc = acc + p * sc                                 (FP32)
    out = bf16(acc)                                        (RNE)
with the production E8M0 decode (byte << 23 read as FP32).  Variants:
    correct     as above
    trunc       out = the FP32 accumulator's top 16 bits (BF16 truncated,
                not rounded)
    scalenext   group g is multiplied by the scales of group g + 1 (the last
                group by a masked scale byte 0, i.e. 0.0)
Data (E4M3FN codes, M = 64 rows, N = 64 columns):
    random      OCP-quantized Gaussian activations with outlier blocks and
                Gaussian weights, K = 512
    cancel      the second half of K repeats the first with the weights
                negated (every dot cancels to a few perturbed terms), K = 512
    wide        every finite E4M3FN code, scale bytes 100..149 (2^-27 ..
                2^22), K = 256
Each (data, variant) is written as a capture (tools/capture) with
accum_model block:hopper-fp8: OUTDIR/h200-triton-DATA-VARIANT.safetensors.
The inputs come from a fixed torch generator seed, so the three variants of
one data set share their inputs.
"""
import datetime
import os
import subprocess
import sys

import torch
import triton
import triton.language as tl

import mxverify_capture as mc


@triton.jit
def mxfp8_gemm_kernel(a_ptr, b_ptr, sa_ptr, sb_ptr, out_ptr, N, K, G,
                      BM: tl.constexpr, BN: tl.constexpr, VARIANT: tl.constexpr):
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
        gs = g
        if VARIANT == 2:  # scalenext: the scales of group g + 1
            gs = g + 1
        ok = gs < G
        sa = tl.load(sa_ptr + rm * G + gs, mask=(rm >= 0) & ok, other=0).to(tl.uint32)
        sb = tl.load(sb_ptr + rn * G + gs, mask=(rn >= 0) & ok, other=0).to(tl.uint32)
        fa = (sa << 23).to(tl.float32, bitcast=True)
        fb = (sb << 23).to(tl.float32, bitcast=True)
        acc += p * (fa[:, None] * fb[None, :])
    if VARIANT == 1:  # trunc: the top 16 bits of the FP32 accumulator
        bits = (acc.to(tl.uint32, bitcast=True) >> 16).to(tl.uint16)
        o = bits.to(tl.bfloat16, bitcast=True)
    else:
        o = acc.to(tl.bfloat16)
    tl.store(out_ptr + rm[:, None] * N + rn[None, :], o)


def ocp_quant(x):
    """MXFP8 quantization, OCP rule: s = floor(log2 amax) - 8 (+127)."""
    M, K = x.shape
    xb = x.reshape(M, K // 32, 32)
    amax = xb.abs().amax(dim=2).clamp_min(2.0 ** -100)
    e = torch.floor(torch.log2(amax)) - 8
    s = (e + 127).clamp(1, 254)
    q = (xb / torch.exp2(s - 127)[:, :, None]).clamp(-448.0, 448.0)
    return q.reshape(M, K).to(torch.float8_e4m3fn).view(torch.uint8), s.to(torch.uint8)


def data(kind, M, N, gen):
    if kind == "random":
        K = 512
        x = torch.randn(M, K, generator=gen) * torch.exp(
            torch.randn(M, K // 32, 1, generator=gen) * 2).repeat(1, 1, 32).reshape(M, K)
        w = torch.randn(N, K, generator=gen) * 0.05
        a, sa = ocp_quant(x)
        b, sb = ocp_quant(w)
    elif kind == "cancel":
        K = 512
        h = K // 2
        x = torch.randn(M, h, generator=gen)
        w = torch.randn(N, h, generator=gen) * 0.05
        x = torch.cat([x, x], dim=1)
        w2 = -w.clone()
        pert = torch.rand(N, h, generator=gen) < 1.0 / 16
        w2[pert] = torch.randn(int(pert.sum()), generator=gen) * 0.05
        w = torch.cat([w, w2], dim=1)
        a, sa = ocp_quant(x)
        b, sb = ocp_quant(w)
    else:  # wide: every finite E4M3FN code, wide scales
        K = 256
        G = K // 32
        a = torch.randint(0, 256, (M, K), generator=gen, dtype=torch.int32)
        b = torch.randint(0, 256, (N, K), generator=gen, dtype=torch.int32)
        a[(a & 0x7f) == 0x7f] = 0x7e
        b[(b & 0x7f) == 0x7f] = 0x7e
        a = a.to(torch.uint8)
        b = b.to(torch.uint8)
        sa = torch.randint(100, 150, (M, G), generator=gen, dtype=torch.int32).to(torch.uint8)
        sb = torch.randint(100, 150, (N, G), generator=gen, dtype=torch.int32).to(torch.uint8)
    return a.contiguous(), sa.contiguous(), b.contiguous(), sb.contiguous()


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version",
                          "--format=csv,noheader"], capture_output=True,
                         text=True).stdout.strip()
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    M, N = 64, 64
    log = open(os.path.join(outdir, "h200_triton_bugs.log"), "w")
    for di, kind in enumerate(("random", "cancel", "wide")):
        gen = torch.Generator().manual_seed(20261202 + di)
        a, sa, b, sb = data(kind, M, N, gen)
        K = a.shape[1]
        G = K // 32
        for vi, variant in enumerate(("correct", "trunc", "scalenext")):
            out = torch.empty(M, N, dtype=torch.bfloat16, device="cuda")
            k = mxfp8_gemm_kernel[(M // 64, N // 64)](
                a.cuda().view(torch.float8_e4m3fn), b.cuda().view(torch.float8_e4m3fn),
                sa.cuda(), sb.cuda(), out, N, K, G, BM=64, BN=64, VARIANT=vi,
                num_warps=4)
            torch.cuda.synchronize()
            ptx = k.asm.get("ptx", "")
            wg = sorted(set(l.split()[0] for l in ptx.splitlines()
                            if "wgmma.mma_async" in l))
            bits = out.cpu().view(torch.int16).numpy().view("uint16")
            path = os.path.join(outdir, f"h200-triton-{kind}-{variant}.safetensors")
            producer = (f"Triton {triton.__version__} on {smi}, {' '.join(wg)} "
                        f"(tools/probe/h200_triton_bugs.py, variant {variant}), {date}")
            mc.capture_mxfp8_group_gemm(
                path, a=a.numpy(), a_scale=sa.numpy(), b=b.numpy()[None],
                b_scale=sb.numpy()[None], topk_ids=torch.zeros(M, 1, dtype=torch.int32).numpy(),
                out=bits, element_format="e4m3fn", accum_model="block:hopper-fp8",
                producer=producer)
            log.write(f"{path}: M={M} N={N} K={K} wgmma {wg}\n")
            log.flush()
    log.close()


if __name__ == "__main__":
    main()
