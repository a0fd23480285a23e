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


def emulate(a, sa, b, sb, ids, k):
    """out[t*k+j, n] for GEMM1 (A row = token)."""
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
    return out.astype(ml_dtypes.bfloat16)


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

    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
