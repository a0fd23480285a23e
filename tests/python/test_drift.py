"""Cross-check of `mxverify drift` on golden/tinym3 against a second, simpler
implementation in numpy (Fractions-free but binary64 with math.fsum):
per-layer TEST-vs-BASE comparisons (rel L2, cosine, SQNR, max |d|),
routing agreement, the KLD at the logits (log-softmax in binary64), FP8
statistics (ml_dtypes decoding) and scale-byte histograms (np.bincount);
and, for the planted bugs, that every element drift counts outside lies in
the rows of the planted expert (from the captures' topk_ids and run.json).

usage: test_drift.py SRCDIR   (run from the build directory: ./src/mxverify)
"""
import json
import math
import os
import re
import subprocess
import sys
import tempfile

import ml_dtypes
import numpy as np

SRC = sys.argv[1] if len(sys.argv) > 1 else "."
sys.path.insert(0, os.path.join(SRC, "tools", "capture"))
from mxverify_capture import stfile  # noqa: E402

G = os.path.join(SRC, "golden", "tinym3")
MXV = os.path.join(".", "src", "mxverify")
passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


def close(a, b, rel, what):
    ok = (a == b) or (math.isfinite(a) and math.isfinite(b) and
                      abs(a - b) <= rel * max(abs(a), abs(b)))
    check(ok, "%s: drift %r, numpy %r" % (what, a, b))


def drift_json(base, test):
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "r.json")
        r = subprocess.run([MXV, "drift", base, test, "--report-json", p],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with open(p) as f:
            return r.returncode, json.load(f)


def bf16(a):
    return (a.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def values(dtype, a):
    if dtype == "BF16":
        return bf16(a).reshape(-1)
    return a.astype(np.float64).reshape(-1)


def compare(t, b):
    d = t - b
    D = math.fsum(d * d)
    B = math.fsum(b * b)
    Tt = math.fsum(t * t)
    return {"rel_l2": math.sqrt(D) / (math.sqrt(B) + 1e-30),
            "cosine": math.fsum(t * b) / math.sqrt(B * Tt),
            "sqnr_db": 10 * math.log10(B / D) if D > 0 else 1e308,
            "max_abs": float(np.max(np.abs(d))) if d.size else 0.0}


def layers(run):
    d = os.path.join(G, run, "layers")
    return [stfile.read(os.path.join(d, f)) for f in sorted(os.listdir(d))]


def fp8_stats(codes, fmt, source=None):
    v = codes.view(fmt).astype(np.float64).reshape(-1)
    fin = ml_dtypes.finfo(fmt)
    a = np.abs(v)
    n = v.size
    out = {"zero": np.count_nonzero(a == 0) / n,
           "subnormal": np.count_nonzero((a > 0) & (a < float(fin.smallest_normal))) / n,
           "saturated": np.count_nonzero(a == float(fin.max)) / n,
           "nan": np.count_nonzero(np.isnan(v)) / n}
    if source is not None:
        nzs = source != 0
        out["underflow"] = np.count_nonzero(nzs & (a == 0)) / max(np.count_nonzero(nzs), 1)
    return out


def log_softmax(x):
    m = np.max(x)
    return x - (m + math.log(math.fsum(np.exp(x - m))))


def kld_numpy(base_lp, test_lp):
    mb, tb = stfile.read(base_lp)
    mt, tt = stfile.read(test_lp)
    kl, same = [], 0
    for name, (dt, arr) in sorted(tb.items()):
        if not name.startswith("logprobs/"):
            continue
        rid = name[len("logprobs/"):]
        n = int(mb.get("prompt_len/" + rid, arr.shape[0]))
        brr = arr.astype(np.float64)
        trr = tt[name][1].astype(np.float64)
        for r in range(n):
            lp, lq = log_softmax(brr[r]), log_softmax(trr[r])
            kl.append(max(math.fsum(np.exp(lp) * (lp - lq)), 0.0))
            same += int(np.argmax(brr[r]) == np.argmax(trr[r]))
    return kl, same


# ---- BASE vs TEST: every figure ------------------------------------------------
rc, rep = drift_json(os.path.join(G, "base"), os.path.join(G, "test"))
check(rc == 0 and rep["pass"], "base vs test passes (exit %d)" % rc)
B, T = layers("base"), layers("test")
for L, (bm, bt), (tm, tt) in zip(rep["layers"], B, T):
    lay = L["layer"]
    check(L["local"]["pass"] and L["local"]["outside"] == 0, "layer %d local pass" % lay)
    for key, tensor in (("input", "x"), ("output", "out"), ("router_logits", "router_logits")):
        want = compare(values(*tt[tensor]), values(*bt[tensor]))
        got = L["inherited"][key]
        for m in ("rel_l2", "cosine", "sqnr_db", "max_abs"):
            close(got[m], want[m], 1e-12, "layer %d %s %s" % (lay, key, m))
    ti, bi = tt["topk_ids"][1], bt["topk_ids"][1]
    agree = np.mean([set(a) == set(b) for a, b in zip(ti.tolist(), bi.tolist())])
    close(L["inherited"]["routing_agreement"], float(agree), 1e-15, "layer %d routing" % lay)
    # FP8 statistics and scale histograms
    fmts = {"xq": ml_dtypes.float8_e4m3fnuz, "actq": ml_dtypes.float8_e4m3fnuz,
            "w13": ml_dtypes.float8_e4m3fn, "w2": ml_dtypes.float8_e4m3fn}
    got = {s["tensor"]: s for s in L["fp8"]}
    check(sorted(got) == sorted(fmts), "layer %d fp8 tensors %s" % (lay, sorted(got)))
    for name, fmt in fmts.items():
        src = values(*tt["x"]) if name == "xq" else None
        want = fp8_stats(tt[name][1], fmt, src)
        for m, v in want.items():
            close(got[name][m], v, 1e-15, "layer %d %s %s" % (lay, name, m))
        hist = np.bincount(tt[name + "_scale"][1].reshape(-1), minlength=256)
        check({int(k): int(v) for k, v in got[name]["scale_histogram"].items()} ==
              {i: int(c) for i, c in enumerate(hist) if c},
              "layer %d %s scale histogram" % (lay, name))
# drift growth: the output rel L2 grows from the first layer to the last
check(rep["layers"][-1]["inherited"]["output"]["rel_l2"] >
      rep["layers"][0]["inherited"]["output"]["rel_l2"] > 0, "inherited drift grows")
kl, same = kld_numpy(os.path.join(G, "base", "logprobs.safetensors"),
                     os.path.join(G, "test", "logprobs.safetensors"))
k = rep["kld_logits"]
check(k["positions"] == len(kl), "KLD positions %d vs %d" % (k["positions"], len(kl)))
close(k["mean"], math.fsum(kl) / len(kl), 1e-9, "KLD mean")
close(k["max"], max(kl), 1e-9, "KLD max")
close(k["same_top1"], same / len(kl), 1e-15, "same top-1")

# ---- planted bugs: everything outside lies in the planted expert's rows ------------
for run, stage in (("bug-scale", "g1"), ("bug-trunc", "y")):
    with open(os.path.join(G, run, "run.json")) as f:
        m = re.match(r"Bug\(layer=(\d+), expert=(\d+), kind='([a-z0-9-]+)'\)", json.load(f)["bug"])
    lay, ex = int(m.group(1)), int(m.group(2))
    rc, rep = drift_json(os.path.join(G, "base"), os.path.join(G, run))
    check(rc == 1 and not rep["pass"], "%s fails (exit %d)" % (run, rc))
    fb = rep["first_bug"]
    check((fb["layer"], fb["stage"], fb["expert"]) == (lay, stage, ex),
          "%s first bug %r, planted (%d, %s, %d)" % (run, fb, lay, stage, ex))
    ids = layers(run)[lay][1]["topk_ids"][1]
    routed_tokens = {t for t in range(ids.shape[0]) if ex in ids[t]}
    for L in rep["layers"]:
        loc = L["local"]
        if L["layer"] != lay:
            check(loc["pass"], "%s layer %d passes" % (run, L["layer"]))
            continue
        eo = loc["expert_outside"]
        check(eo[ex] == loc["outside"] and sum(eo) == eo[ex] and loc["shared_expert_outside"] == 0,
              "%s: outside %d not all in expert %d: %r" % (run, loc["outside"], ex, eo))
        toks = {t for t, c in enumerate(loc["token_outside"]) if c}
        check(toks <= routed_tokens and toks,
              "%s: tokens outside %s not among those routed to expert %d" % (run, toks, ex))
        st = {s["stage"]: s["outside"] for s in loc["stages"]}
        check(st[stage] == loc["outside"], "%s: all outside elements in %s: %r" % (run, stage, st))

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
