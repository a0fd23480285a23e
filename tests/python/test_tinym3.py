"""tools/tinym3/moe_numpy.py (the tiny model's MoE layer in the production
dataflow) against mxverify's C reference: random layers in every dataflow
(w8a8-mxfp8, bf16, hybrid on both sides of its thresholds) are captured
and must pass `mxverify check` bit-exact; each planted bug must fail it in
exactly the stage and expert it was planted in.

usage: test_tinym3.py SRCDIR   (run from the build directory: ./src/mxverify)
"""
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

SRC = sys.argv[1] if len(sys.argv) > 1 else "."
sys.path[:0] = [os.path.join(SRC, "tools", "capture"), os.path.join(SRC, "tools", "tinym3")]
import moe_numpy as M  # noqa: E402
from mxverify_capture import formats  # noqa: E402

MXV = os.path.join(".", "src", "mxverify")
passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


rng = np.random.Generator(np.random.PCG64(11))
H, I, E, k = 64, 32, 6, 3
w = M.LayerWeights.from_master(rng.normal(0, 0.3, (E, H)).astype(np.float32),
                               rng.normal(0, 0.02, E).astype(np.float32),
                               rng.normal(0, 0.15, (E, 2 * I, H)), rng.normal(0, 0.15, (E, H, I)),
                               rng.normal(0, 0.15, (2 * I, H)), rng.normal(0, 0.15, (H, I)))
x = formats.f32_to_bf16(rng.normal(0, 1.5, (20, H)).astype(np.float32))
check(M.dispatch("hybrid", 8) == "bf16" and M.dispatch("hybrid", 9) == "w8a8-mxfp8" and
      M.dispatch("hybrid", 1023) == "w8a8-mxfp8" and M.dispatch("hybrid", 1024) == "bf16" and
      M.dispatch("hybrid", 100, layer=5, max_model_len=8192) == "bf16" and
      M.dispatch("hybrid", 100, layer=4, max_model_len=8192) == "w8a8-mxfp8", "hybrid thresholds")

with tempfile.TemporaryDirectory() as d:
    def run(name, xx, policy, bug=None, layer=0):
        r = M.moe_layer(xx, w, k, policy, layer=layer, bug=bug)
        p = os.path.join(d, name + ".safetensors")
        M.capture(p, xx, w, r, k, layer, "test_tinym3", policy=policy)
        out = subprocess.run([MXV, "check", p], stdout=subprocess.PIPE, universal_newlines=True)
        return r, out.returncode, out.stdout

    for name, xx, pol, want in (("w8a8", x, "w8a8-mxfp8", "w8a8-mxfp8"), ("bf16", x, "bf16", "bf16"),
                                ("hyb-large", x, "hybrid", "w8a8-mxfp8"),
                                ("hyb-small", x[:8], "hybrid", "bf16")):
        r, rc, out = run(name, xx, pol)
        check(r["policy"] == want, "%s: dispatch %s" % (name, r["policy"]))
        check(rc == 0, "%s: check fails:\n%s" % (name, out))
        rows = [l for l in out.splitlines() if re.match(r"^(g1|y|shared_out|out) ", l)]
        check(rows and all(" 100.00% " in l for l in rows), "%s: not bit-exact:\n%s" % (name, out))
    for kind, stage in (("scale-next-group", "g1"), ("bf16-truncate", "y")):
        ex = int(M.route(x, w, k)[1][0, 0])
        r, rc, out = run(kind, x, "w8a8-mxfp8", M.Bug(0, ex, kind))
        check(rc == 1, "%s: check passes" % kind)
        bad = [l.split()[0] for l in out.splitlines() if re.match(r"^\S+ +NO ", l)]
        check(bad == [stage], "%s: failing stages %s, want %s" % (kind, bad, stage))
        rows = {int(m.group(1)) for m in re.finditer(r"^  %s\[(\d+), \d+\]" % stage, out, re.M)}
        ids = r["topk_ids"].reshape(-1)
        check(rows and all(ids[rr] == ex for rr in rows),
              "%s: elements named outside expert %d's rows: %s" % (kind, ex, sorted(rows)))
        # a bug in another layer leaves this one alone
        r, rc, out = run(kind + "-other", x, "w8a8-mxfp8", M.Bug(1, ex, kind), layer=0)
        check(rc == 0, "%s planted in layer 1 changed layer 0" % kind)

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
