"""`mxverify model compare` against an independent numpy computation, on
runs written here in the two formats the serving stack produces: full
log-probs (safetensors, tools/capture layout logprobs/R, targets/R) and
vLLM completions JSONL (prompt_logprobs with the prompt token appended
outside the top k, top_logprobs of generated tokens, "token_id:N" tokens).

numpy computes, in float64 and with its own formulas: the log-softmax, the
KLD as sum p (log p - log q), delta-p, the log-PPL ratio, same top-1, their
standard errors (np.std ddof=1), percentiles (np.percentile, linear), and
the top-k estimate as the KLD of the coarsened distributions (tokens known
in both runs + one tail cell).  mxverify's --json must agree to 1e-9.

Usage: python3 test_model_compare.py PATH/TO/mxverify WORKDIR
"""
import json
import os
import subprocess
import sys

import numpy as np
from safetensors.numpy import save_file

passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


def close(a, b, rel=1e-9, absol=1e-15):
    return abs(a - b) <= rel * abs(b) + absol


def log_softmax(x):
    x = np.asarray(x, np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


mxv, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
rng = np.random.default_rng(20261202)
V, K, R, S, G = 300, 5, 8, 10, 12
zipf = -1.2 * np.log(np.arange(1, V + 1))

runs = {}  # run -> list of (rid, group, logits [S-1+G, V] f32, prompt, gen)
prompts = [rng.integers(0, V, S) for _ in range(R)]
perm = [rng.permutation(V) for _ in range(R)]
for run, noise in (("base", 0.0), ("test", 0.02)):
    reqs = []
    for r in range(R):
        b = np.random.default_rng(1000 + r)
        base_logits = zipf[perm[r]][None, :] + 0.5 * b.normal(size=(S - 1 + G, V))
        logits = base_logits + noise * np.random.default_rng(2000 + r).normal(size=base_logits.shape)
        logits = logits.astype(np.float32)
        lp = log_softmax(logits)
        gen = lp[S - 1:].argmax(axis=1)  # greedy: each run follows its own argmax
        reqs.append(("req%d" % r, "decode" if r % 3 == 0 else "prefill", logits, prompts[r], gen))
    runs[run] = reqs

# a planted divergence: request 1's 4th generated token differs in TEST
rid, grp, lg, pr, gen = runs["test"][1]
gen = gen.copy()
alt = int(np.argsort(-log_softmax(lg[S - 1 + 3]))[1])
gen[3] = alt
runs["test"][1] = (rid, grp, lg, pr, gen)


def write_st(path, reqs):
    tensors, meta = {}, {}
    for rid, grp, lg, pr, gen in reqs:
        tensors["logits/" + rid] = lg
        tensors["targets/" + rid] = np.concatenate([pr[1:], gen]).astype(np.int64)
        meta["group/" + rid] = grp
        meta["prompt_len/" + rid] = str(S - 1)
    save_file(tensors, path, metadata=meta)


def top(lp_row, k):
    return [int(i) for i in np.argsort(-lp_row, kind="stable")[:k]]


def write_jsonl(path, reqs):
    with open(path, "w") as f:
        for rid, grp, lg, pr, gen in reqs:
            lp = log_softmax(lg)
            plp = [None]
            for i in range(1, S):
                row, tok = lp[i - 1], int(pr[i])
                e = {str(t): {"logprob": float(row[t]), "rank": j + 1, "decoded_token": "x"}
                     for j, t in enumerate(top(row, K))}
                e.setdefault(str(tok), {"logprob": float(row[tok]), "rank": 99, "decoded_token": "y"})
                plp.append(e)
            toks, tlp, tops = [], [], []
            for i, t in enumerate(gen):
                row = lp[S - 1 + i]
                toks.append("token_id:%d" % t)
                tlp.append(float(row[t]))
                d = {"token_id:%d" % u: float(row[u]) for u in top(row, K)}
                d.setdefault("token_id:%d" % t, float(row[t]))
                tops.append(d)
            resp = {"id": "cmpl-" + rid + os.path.basename(path), "request_id": rid, "group": grp,
                    "object": "text_completion",
                    "choices": [{"index": 0, "text": "",
                                 "logprobs": {"tokens": toks, "token_logprobs": tlp,
                                              "top_logprobs": tops, "text_offset": [0] * len(toks)},
                                 "prompt_logprobs": plp,
                                 "prompt_token_ids": [int(t) for t in pr]}]}
            f.write(json.dumps(resp, allow_nan=False) + "\n")


for run in ("base", "test"):
    write_st(os.path.join(work, run + ".safetensors"), runs[run])
    write_jsonl(os.path.join(work, run + ".jsonl"), runs[run])


def expected(kind):
    """Per group lists of per-position values, computed here."""
    out = {}
    for (rid, grp, lb, pr, gb), (_, _, lt, _, gt) in zip(runs["base"], runs["test"]):
        pb, pt = log_softmax(lb), log_softmax(lt)
        tb = np.concatenate([pr[1:], gb])
        tt = np.concatenate([pr[1:], gt])
        n = len(tb)
        stop = n
        div = None
        for i in range(S - 1, n):
            if tb[i] != tt[i]:
                stop, div = i + 1, i - (S - 1)
                break
        for g in ("all", grp):
            o = out.setdefault(g, {"kld": [], "dp": [], "lppl": [], "top1": [], "div": [], "lb": [], "lt": []})
            if div is not None:
                o["div"].append(div)
            for i in range(stop):
                a, b = pb[i], pt[i]
                if kind == "full":
                    kl = float(np.sum(np.exp(a) * (a - b)))
                    same = a.argmax() == b.argmax()
                else:
                    la = set(top(a, K)) | {int(tb[i])}
                    lb_ = set(top(b, K)) | {int(tt[i])}
                    sup = sorted(la & lb_)
                    p, q = np.exp(a[sup]), np.exp(b[sup])
                    ptl, qtl = 1 - p.sum(), 1 - q.sum()
                    kl = float(np.sum(p * np.log(p / q)) + ptl * np.log(ptl / qtl))
                    same = top(a, 1)[0] == top(b, 1)[0]
                t = int(tb[i])
                o["kld"].append(kl)
                o["top1"].append(bool(same))
                o["dp"].append(float(np.exp(b[t]) - np.exp(a[t])))
                o["lppl"].append(float(a[t] - b[t]))
                o["lb"].append(float(a[t]))
                o["lt"].append(float(b[t]))
    return out


levels = ["100", "99.9", "99", "95", "90", "50", "10", "5", "1", "0.1", "0"]
for kind, ext in (("full", ".safetensors"), ("topk", ".jsonl")):
    p = subprocess.run([mxv, "model", "compare", os.path.join(work, "base" + ext),
                        os.path.join(work, "test" + ext), "--json"],
                       capture_output=True, text=True)
    check(p.returncode == 0, "%s: exit %d: %s" % (kind, p.returncode, p.stderr))
    if p.returncode:
        continue
    rep = json.loads(p.stdout)
    exp = expected(kind)
    check(rep["kind"] == kind, "%s: kind %s" % (kind, rep["kind"]))
    groups = {g["name"]: g for g in rep["groups"]}
    check(sorted(groups) == sorted(exp), "%s: groups %s vs %s" % (kind, sorted(groups), sorted(exp)))
    for name, e in exp.items():
        g = groups.get(name)
        if g is None:
            continue
        kl = np.array(e["kld"])
        check(g["positions"] == len(kl), "%s/%s: positions %d vs %d" % (kind, name, g["positions"], len(kl)))
        check(close(g["kld"]["mean"], kl.mean()), "%s/%s: mean KLD %.17g vs %.17g" % (kind, name, g["kld"]["mean"], kl.mean()))
        check(close(g["kld"]["se"], kl.std(ddof=1) / np.sqrt(len(kl))), "%s/%s: KLD SE" % (kind, name))
        for lv in levels:
            want = np.percentile(kl, float(lv), method="linear")
            check(close(g["kld"]["percentiles"][lv], want),
                  "%s/%s: KLD %s%% %.17g vs %.17g" % (kind, name, lv, g["kld"]["percentiles"][lv], want))
        dp = np.array(e["dp"])
        check(close(g["delta_p"]["mean"], dp.mean(), absol=1e-14), "%s/%s: dp mean" % (kind, name))
        check(close(g["delta_p"]["rms"], np.sqrt(np.mean(dp * dp))), "%s/%s: dp rms" % (kind, name))
        for lv in levels:
            want = np.percentile(dp, float(lv), method="linear")
            check(close(g["delta_p"]["percentiles"][lv], want, absol=1e-14), "%s/%s: dp %s%%" % (kind, name, lv))
        lp = np.array(e["lppl"])
        check(close(g["log_ppl_ratio"]["mean"], lp.mean(), absol=1e-14), "%s/%s: lppl %.17g vs %.17g" % (kind, name, g["log_ppl_ratio"]["mean"], lp.mean()))
        check(close(g["log_ppl_ratio"]["se"], lp.std(ddof=1) / np.sqrt(len(lp))), "%s/%s: lppl SE" % (kind, name))
        lb_, lt_ = np.array(e["lb"]), np.array(e["lt"])
        check(close(g["ppl_base"], np.exp(-lb_.mean())), "%s/%s: PPL(BASE)" % (kind, name))
        check(close(g["ppl_test"], np.exp(-lt_.mean())), "%s/%s: PPL(TEST)" % (kind, name))
        check(close(g["ln_p_correlation"], np.corrcoef(lb_, lt_)[0, 1]), "%s/%s: correlation %.17g vs %.17g" % (kind, name, g["ln_p_correlation"], np.corrcoef(lb_, lt_)[0, 1]))
        t1 = np.array(e["top1"])
        check(g["same_top1"]["k"] == int(t1.sum()), "%s/%s: top1 %d vs %d" % (kind, name, g["same_top1"]["k"], t1.sum()))
        check(g["divergence"]["diverged"] == len(e["div"]), "%s/%s: diverged" % (kind, name))
        if e["div"]:
            check(g["divergence"]["first_token"]["percentiles"]["0"] == min(e["div"]), "%s/%s: divergence index" % (kind, name))
    reqs = {q["key"]: q for q in rep["requests"]}
    check(reqs["req1"]["diverged_at"] == 3, "%s: req1 diverged at %s" % (kind, reqs["req1"]["diverged_at"]))

print("test_model_compare: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
