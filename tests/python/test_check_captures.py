"""`mxverify check` on hand-built captures: a correct one passes, a wrong
element fails and is named, and every kind of bad input is refused with one
line naming file, tensor and field, exit code 3, and no half-written report.

The expected output of the base capture is computed here with numpy from
the production arithmetic (facts §4): exact 32-wide group dots in float64
(exact for E4M3 products), rounded to float32, times the float32 scale
product, accumulated in float32, rounded to BF16 (ml_dtypes, RNE).

Usage: python3 test_check_captures.py PATH/TO/mxverify WORKDIR
"""
import json
import os
import struct
import subprocess
import sys

import ml_dtypes
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


FNUZ = ml_dtypes.float8_e4m3fnuz


def prod_scale(s):
    """Production E8M0 decode: the byte shifted into a BF16 exponent."""
    return np.where(s == 0, 0.0, np.ldexp(1.0, s.astype(np.int64) - 127)).astype(np.float32)


def emulate(a, sa, b, sb, ids, k, fp32=False):
    """out[t*k+j, n] for GEMM1 (A row = token); fp32=True: the FP32
    accumulator before the BF16 rounding."""
    T, K = a.shape
    E, N, _ = b.shape
    av = a.view(FNUZ).astype(np.float64)
    bv = b.view(FNUZ).astype(np.float64)
    out = np.zeros((T * k, N), dtype=np.float32)
    for t in range(T):
        for j in range(k):
            e = ids[t, j]
            acc = np.zeros(N, dtype=np.float32)
            for g in range(K // 32):
                p = (bv[e, :, 32 * g:32 * g + 32] * av[t, 32 * g:32 * g + 32]).sum(axis=1)
                p32 = p.astype(np.float32)  # exact sum, one rounding
                sc = prod_scale(sa[t, g:g + 1])[0] * prod_scale(sb[e, :, g])
                acc = (acc + (p32 * sc).astype(np.float32)).astype(np.float32)
            out[t * k + j] = acc
    return out if fp32 else out.astype(ml_dtypes.bfloat16)


def base_capture(rng, K=64):
    T, k, E, N = 4, 2, 3, 8
    def codes(shape):
        c = rng.integers(0, 256, size=shape, dtype=np.uint8)
        c[c == 0x80] = 0x01
        return c
    a = codes((T, K))
    b = codes((E, N, K))
    sa = rng.integers(118, 128, size=(T, K // 32), dtype=np.uint8)
    sb = rng.integers(118, 128, size=(E, N, K // 32), dtype=np.uint8)
    ids = np.array([[0, 1], [2, 0], [1, 2], [0, 2]], dtype=np.int32)
    out = emulate(a, sa, b, sb, ids, k)
    tensors = {"a": a.view(FNUZ), "a_scale": sa, "b": b.view(FNUZ), "b_scale": sb,
               "topk_ids": ids, "out": out}
    meta = {"mxverify.capture": "1", "kind": "mxfp8_group_gemm",
            "element_format": "e4m3fnuz", "e8m0_decode": "production",
            "scale_layout": "rows", "producer": "tests/python/test_check_captures.py"}
    return tensors, meta


def run(mxv, *args):
    p = subprocess.run([mxv, "check", *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def write(path, tensors, meta):
    save_file(tensors, path, metadata=meta)


def expect_bad(mxv, work, name, path, must_contain):
    report = os.path.join(work, name + ".report.json")
    if os.path.exists(report):
        os.remove(report)
    rc, out, err = run(mxv, path, "--report-json", report)
    lines = [l for l in err.splitlines() if l.strip()]
    check(rc == 3, "%s: exit %d, want 3 (stderr: %s)" % (name, rc, err.strip()))
    check(len(lines) == 1 and lines[0].startswith("mxverify: error: "),
          "%s: want one error line, got %r" % (name, lines))
    check(path in err, "%s: the error does not name the file: %s" % (name, err.strip()))
    for word in must_contain:
        check(word in err, "%s: the error does not name %r: %s" % (name, word, err.strip()))
    # the report is complete JSON or absent, never half-written
    if os.path.exists(report):
        try:
            json.load(open(report))
            check(True, "")
        except ValueError:
            check(False, "%s: half-written report" % name)
    leftovers = [f for f in os.listdir(work) if ".tmp" in f]
    check(not leftovers, "%s: temporary files left: %s" % (name, leftovers))


def patch_header(path, src, fn):
    """Rewrite the JSON header of src with fn(header) into path."""
    raw = open(src, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    fn(hdr)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + raw[8 + n:])


def main():
    mxv, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(7)
    t, m = base_capture(rng)
    good = os.path.join(work, "good.safetensors")
    write(good, t, m)
    rc, out, err = run(mxv, good)
    check(rc == 0, "the emulated capture passes (exit %d): %s %s" % (rc, out, err))

    # a wrong element fails and is named with its indices
    t2 = dict(t)
    o = t["out"].view(np.uint16).copy()
    o[5, 3] ^= 0x0004
    t2["out"] = o.view(ml_dtypes.bfloat16)
    wrong = os.path.join(work, "wrong.safetensors")
    write(wrong, t2, m)
    rc, out, err = run(mxv, wrong)
    check(rc == 1, "a wrong element fails (exit %d)" % rc)
    check("out[5, 3]" in out, "the failing element is named: %s" % out)

    # a corrupted scale byte in b: the check fails and names elements
    t3 = dict(t)
    sb = t["b_scale"].copy()
    sb[1, 4, 0] += 1
    t3["b_scale"] = sb
    cs = os.path.join(work, "scale.safetensors")
    write(cs, t3, m)
    rc, out, err = run(mxv, cs)
    check(rc == 1 and "out[" in out, "a corrupted scale byte fails (exit %d)" % rc)

    cases = []

    def case(name, tensors=None, meta=None, must=()):
        path = os.path.join(work, name + ".safetensors")
        write(path, tensors if tensors is not None else t, meta if meta is not None else m)
        cases.append((name, path, must))

    nan_a = t["a"].view(np.uint8).copy()
    nan_a[2, 17] = 0x80
    case("nan_input", dict(t, a=nan_a.view(FNUZ)), must=("\"a\"", "[2, 17]"))
    s255 = t["b_scale"].copy()
    s255[2, 5, 1] = 255
    case("scale_255", dict(t, b_scale=s255), must=("\"b_scale\"", "255"))
    tk, mk = base_capture(np.random.default_rng(8), K=64)
    tk48 = dict(tk, a=tk["a"][:, :48].copy(), b=tk["b"][:, :, :48].copy(),
                a_scale=tk["a_scale"][:, :1].copy(), b_scale=tk["b_scale"][:, :, :1].copy())
    case("k_not_32", tk48, must=("\"b\"", "multiple of 32"))
    ids = t["topk_ids"].copy()
    ids[1, 1] = 9
    case("expert_out_of_range", dict(t, topk_ids=ids), must=("\"topk_ids\"", "[1, 1]"))
    ids = t["topk_ids"].copy()
    ids[3, 1] = ids[3, 0]
    case("duplicate_expert", dict(t, topk_ids=ids), must=("\"topk_ids\"", "twice"))
    case("missing_tensor", {k2: v for k2, v in t.items() if k2 != "out"}, must=("\"out\"",))
    case("wrong_layout", meta=dict(m, scale_layout="packed"), must=("\"b_scale\"", "shape"))
    case("bad_metadata", meta=dict(m, kind="mxfp9"), must=("kind",))
    case("not_a_capture", meta={"format": "pt"}, must=("mxverify.capture",))
    case("bad_decode", meta=dict(m, e8m0_decode="ieee"), must=("e8m0_decode",))

    # malformed files: truncated, header past the end, overlap, dtype, shape
    raw = open(good, "rb").read()
    p = os.path.join(work, "truncated.safetensors")
    open(p, "wb").write(raw[:-100])
    cases.append(("truncated", p, ()))
    p = os.path.join(work, "header_past_end.safetensors")
    open(p, "wb").write(struct.pack("<Q", 10 ** 7) + raw[8:])
    cases.append(("header_past_end", p, ()))

    def overlap(h):
        h["out"]["data_offsets"] = h["a"]["data_offsets"]
    p = os.path.join(work, "overlap.safetensors")
    patch_header(p, good, overlap)
    cases.append(("overlap", p, ()))

    def dtype(h):
        h["a"]["dtype"] = "F8_E3M4"
    p = os.path.join(work, "unknown_dtype.safetensors")
    patch_header(p, good, dtype)
    cases.append(("unknown_dtype", p, ("\"a\"", "dtype")))

    def shape(h):
        h["b"]["shape"] = [3, 8, 63]
    p = os.path.join(work, "shape_mismatch.safetensors")
    patch_header(p, good, shape)
    cases.append(("shape_mismatch", p, ("\"b\"",)))

    for name, path, must in cases:
        expect_bad(mxv, work, name, path, must)

    # several files: bad input wins over a failure, and every file is reported
    rc, out, err = run(mxv, good, wrong, os.path.join(work, "scale_255.safetensors"))
    check(rc == 3, "bad input among several files exits 3 (got %d)" % rc)
    check("good.safetensors: mxfp8_group_gemm" in out and "wrong.safetensors" in out,
          "every readable file is still reported")

    output_types_and_plain_kinds(mxv, work, rng)
    scale_product_overflow(mxv, work)
    writer_names_match_check(mxv, work)

    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


def output_types_and_plain_kinds(mxv, work, rng):
    """FP32 outputs (the accumulator before the BF16 cast) and the plain
    GEMM kinds: the emulated output passes bit-exact, a wrong one fails."""
    t, m = base_capture(rng)
    ids, k = t["topk_ids"], 2
    a, sa, b, sb = (t["a"].view(np.uint8), t["a_scale"], t["b"].view(np.uint8), t["b_scale"])
    acc = emulate(a, sa, b, sb, ids, k, fp32=True)
    t32 = dict(t, out=acc)
    p = os.path.join(work, "group_f32.safetensors")
    write(p, t32, m)
    rep = os.path.join(work, "group_f32.json")
    rc, out, err = run(mxv, p, "--report-json", rep)
    check(rc == 0, "FP32-output group capture passes (exit %d): %s %s" % (rc, out, err))
    r = json.load(open(rep))["files"]
    tj = r[0]["tensors"][0] if isinstance(r, list) and r else None
    check(tj is not None and tj.get("output_type") == "f32" and
          tj.get("bit_exact_share") == 1, "FP32 output judged as f32, bit-exact: %r" % (tj,))
    bad = acc.copy()
    bad[3, 5] = np.float32(bad[3, 5] * np.float32(1.01) + np.float32(1e-3))
    write(p, dict(t, out=bad), m)
    rc, out, err = run(mxv, p)
    check(rc == 1 and "out[3, 5]" in out, "a wrong FP32 element fails and is named (exit %d): %s"
          % (rc, out))
    # NaN in an FP32 output is judged (fails), not refused
    bad[1, 1] = np.float32("nan")
    write(p, dict(t, out=bad), m)
    rc, out, err = run(mxv, p)
    check(rc == 1, "a NaN FP32 output fails (exit %d): %s %s" % (rc, out, err))

    # plain mxfp8_gemm: token rows of expert 0, one route each
    ids1 = np.zeros((a.shape[0], 1), dtype=np.int32)
    for fp32 in (False, True):
        o = emulate(a, sa, b[:1], sb[:1], ids1, 1, fp32=fp32)
        tp = {"a": t["a"], "a_scale": sa, "b": b[0].view(FNUZ), "b_scale": sb[0], "out": o}
        mp = dict(m, kind="mxfp8_gemm")
        p = os.path.join(work, "plain_%d.safetensors" % fp32)
        write(p, tp, mp)
        rc, out, err = run(mxv, p)
        check(rc == 0, "plain mxfp8_gemm (fp32=%s) passes (exit %d): %s %s" % (fp32, rc, out, err))
        o2 = o.copy()
        o2[0, 0] = -o2[0, 0] if o2[0, 0] != 0 else (1.0 if fp32 else ml_dtypes.bfloat16(1.0))
        write(p, dict(tp, out=o2), mp)
        rc, out, err = run(mxv, p)
        check(rc == 1 and "out[0, 0]" in out, "plain mxfp8_gemm (fp32=%s): a wrong element "
              "fails (exit %d): %s" % (fp32, rc, out))
        # a group-GEMM-only tensor shape (b rank 3) is refused as bad input
        write(p, dict(tp, b=b[:1].view(FNUZ)), mp)
        rc, out, err = run(mxv, p)
        check(rc == 3 and "\"b\"" in err, "plain mxfp8_gemm with b [E, N, K] is refused "
              "(exit %d): %s" % (rc, err))


def scale_product_overflow(mxv, work):
    """Scale bytes past FP32's range (docs/bounds.md, verdict classes): with
    a = 2^-10, b = 1 and both scale bytes 192 the exact value is 2^120 but
    production's FP32 scale product 2^65 * 2^65 is +inf, so +inf is the
    right output and anything else fails; with bytes 202 (exact 2^140, an
    FP32 intermediate overflows) NaN or 1.0 must fail too.  On the code
    before the verdict classes the first case failed and the other two
    passed unjudged."""
    def cap(name, sbyte, out_bits):
        a = np.zeros((1, 32), np.float32)
        a[0, 0] = 2.0 ** -10
        b = np.zeros((1, 1, 32), np.float32)
        b[0, 0, 0] = 1.0
        t = {"a": a.astype(FNUZ), "a_scale": np.full((1, 1), sbyte, np.uint8),
             "b": b.astype(FNUZ), "b_scale": np.full((1, 1, 1), sbyte, np.uint8),
             "topk_ids": np.zeros((1, 1), np.int32),
             "out": np.array([[out_bits]], np.uint16).view(ml_dtypes.bfloat16)}
        m = {"mxverify.capture": "1", "kind": "mxfp8_group_gemm",
             "element_format": "e4m3fnuz", "e8m0_decode": "production",
             "scale_layout": "rows", "accum_model": "fp32-seq"}
        p = os.path.join(work, name + ".safetensors")
        write(p, t, m)
        return run(mxv, p)
    for name, sbyte, bits, want in (("ovf_model_inf", 192, 0x7F80, 0),
                                    ("ovf_model_inf_wrong", 192, 0x7B80, 1),
                                    ("ovf_nan", 202, 0x7FC0, 1),
                                    ("ovf_finite", 202, 0x3F80, 1),
                                    ("ovf_inf", 202, 0x7F80, 0)):
        rc, out, err = cap(name, sbyte, bits)
        check(rc == want, "%s: exit %d, want %d: %s %s" % (name, rc, want, out, err))


def writer_names_match_check(mxv, work):
    """The Python writer accepts exactly the accumulation models and scale
    rules that check accepts (both lists come from the error messages)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "..", "tools", "capture"))
    import mxverify_capture as mc
    p = subprocess.run([mxv, "check", "--model", "no-such-model", "x.safetensors"],
                       capture_output=True, text=True)
    line = p.stderr.strip().splitlines()[-1]
    names = line.split("one of ", 1)[1].split(", ") if "one of " in line else []
    check(sorted(names) == sorted(mc.ACCUM_MODELS),
          "check's models %r != the writer's %r" % (names, mc.ACCUM_MODELS))
    for n in names:
        try:
            mc.capture_bf16_gemm(os.path.join(work, "names.safetensors"),
                                 a=np.zeros((1, 32), np.uint16), b=np.zeros((2, 32), np.uint16),
                                 out=np.zeros((1, 2), np.uint16), accum_model=n)
            check(True, "")
        except mc.CaptureError as e:
            check(False, "the writer refuses model %r that check accepts: %s" % (n, e))
    for bad in ("block:volta-fp8", "fp64", "FP32-SEQ"):
        try:
            mc.capture_bf16_gemm(os.path.join(work, "names.safetensors"),
                                 a=np.zeros((1, 32), np.uint16), b=np.zeros((2, 32), np.uint16),
                                 out=np.zeros((1, 2), np.uint16), accum_model=bad)
            check(False, "the writer accepts model %r that check refuses" % bad)
        except mc.CaptureError as e:
            check("accum_model" in str(e), "refusal names the argument: %s" % e)
    # the writer's plain kind with an FP32 output round-trips through check
    t, m = base_capture(np.random.default_rng(5))
    a, sa, b, sb = (t["a"].view(np.uint8), t["a_scale"], t["b"].view(np.uint8), t["b_scale"])
    o = emulate(a, sa, b[:1], sb[:1], np.zeros((a.shape[0], 1), np.int32), 1, fp32=True)
    p = mc.capture_mxfp8_gemm(os.path.join(work, "writer_plain.safetensors"), a=t["a"],
                              a_scale=sa, b=b[0].view(FNUZ), b_scale=sb[0], out=o)
    rc, out, err = run(mxv, p)
    check(rc == 0 and "100.00%" in out, "writer's mxfp8_gemm FP32 capture passes bit-exact "
          "(exit %d): %s %s" % (rc, out, err))
    # scale rules: check's refusal of a bogus rule lists the ones it accepts
    t, m = base_capture(np.random.default_rng(3))
    p = os.path.join(work, "rule.safetensors")
    write(p, t, dict(m, scale_rule="bogus"))
    rc, out, err = run(mxv, p)
    rules = [w.strip() for w in err.replace(" or ", ", ").split("(")[-1].rstrip(")\n").split(",")]
    words = [r for r in ("production", "ocp", "rceil") if r in err]
    check(rc == 3 and sorted(words) == sorted(mc.SCALE_RULES),
          "check's scale rules %r (from %r) != the writer's %r" % (words, err.strip(), mc.SCALE_RULES))
    del rules


if __name__ == "__main__":
    main()
