"""Writes the seed corpora of tests/fuzz/corpus (committed; rerun only to
change them): small valid inputs of every reader, so that the fuzzers start
from deep inside each format.  usage: make_seeds.py SRCDIR"""
import json, os, struct, sys
sys.path.insert(0, os.path.join(sys.argv[1], "tests", "python"))
import numpy as np
import make_bad_inputs as mk

src = sys.argv[1]
C = os.path.join(src, "tests", "fuzz", "corpus")
p = lambda d, n: os.path.join(C, d, n)
for d in ("capture", "check", "safetensors"):
    one = np.ones
    mk.bf16_gemm(p(d, "bf16_gemm.safetensors"), one((2, 32)) * 0.5,
                 one((2, 3, 32)), [[0, 1], [1, 0]], np.full((4, 3), 16.0))
    mk.bf16_gemm(p(d, "bf16_gemm_ep.safetensors"), one((1, 32)), one((1, 2, 32)),
                 [[0]], np.full((1, 2), 32.0), experts="4",
                 mul_routed_weight="false", accum_model="fp32-seq")
    a8 = np.full((1, 32), 0x40); b8 = np.full((1, 2, 32), 0x40)
    mk.mxfp8_gemm(p(d, "mxfp8_gemm.safetensors"), a8, np.full((1, 1), 127), b8,
                  np.full((1, 2, 1), 127), [[0]], np.full((1, 2), 32.0))
    mk.mxfp8_gemm(p(d, "mxfp8_gemm_block.safetensors"), a8, np.full((1, 1), 120),
                  b8, np.full((1, 1, 2), 130), [[0]], np.full((1, 2), 32.0),
                  scale_layout="packed", accum_model="block:hopper-fp8")
    mk.write_st(p(d, "mx_quant.safetensors"),
                [("x", "BF16", (1, 32), mk.bf16(np.linspace(-3, 3, 32))),
                 ("q", "U8", (1, 32), bytes(32)), ("q_scale", "U8", (1, 1), b"\x7f")],
                {"mxverify.capture": "1", "kind": "mx_quant", "scale_rule": "rceil",
                 "rceil_max": "448"})
    mk.moe_layer(p(d, "moe_layer.safetensors"), 1)
    mk.write_st(p(d, "meta_only.safetensors"), [], {"k": "v"})
    mk.bf16_gemm(p(d, "crash_zero_row.safetensors"),
                 np.array([[1.0, 2.0 ** -100] + [0] * 30]),
                 np.array([[[1.0] * 32, [0.0] * 32]]), [[0]], [[1.0, 0.0]])
g = json.load(open(os.path.join(src, "golden", "gate-smoke-cpu.json")))
g["entries"] = g["entries"][:2]
json.dump(g, open(p("golden", "smoke2.json"), "w"), indent=1)
g["entries"] = []
json.dump(g, open(p("golden", "empty.json"), "w"))
open(p("probe", "small.probe"), "w").write(
    "# a comment\nfa e4m3fn\nfb e4m3fn\nk 4\nplan 2\nncase 2\n3f800000\n00000000\n")
open(p("probe", "k128.probe"), "w").write(
    "fa e4m3fn\nfb e4m3fn\nk 128\nplan 2\nncase 1\n3f800000\n")
mxtd = b"MXTD" + struct.pack("<IIIQIIQ", 1, 0, 1, 7, 32, 2, 0) + struct.pack("<II", 0x3f800000, 0)
open(p("probe", "result.mxtd"), "wb").write(b"M" + mxtd)
vec = open(os.path.join(src, "golden", "h100", "mma_e4m3_e4m3.vec")).read().splitlines()
head = [l for l in vec if l[:1] in "#fkp"][:12]
body = [l for l in vec if l[:1] not in "#fkp"][:3]
open(p("vec", "mma_e4m3.vec"), "w").write("\n".join(head + body) + "\n")
vec = open(os.path.join(src, "golden", "h100", "wgmma_bf16_bf16.vec")).read().splitlines()
head = [l for l in vec if not l[:1].isdigit() and l[:1] not in "abcdef"][:12]
body = [l for l in vec if l not in head][:2]
open(p("vec", "wgmma_bf16.vec"), "w").write("\n".join(head + body) + "\n")
