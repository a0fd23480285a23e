"""Cross-check of mxverify's safetensors reader and writer against the
safetensors Python library (an independent implementation, in Rust).

Through tests/st_tool (a test-only driver of src/safetensors*.c):
  * files written by safetensors.numpy.save_file from numpy and ml_dtypes
    arrays of every dtype mxverify supports (scalars, zero-size tensors,
    metadata) are read by the C reader: same names, dtype spellings, shapes
    and bytes;
  * the C writer's copy of each such file is byte-identical to Python's
    (same tensor order, JSON spelling, escaping, padding) and loads back in
    Python; with several metadata keys (where Python's own order is a hash
    order) it still loads and is deterministic;
  * random files (random names with quotes, backslashes, control characters
    and non-ASCII; random dtypes and shapes) do the same;
  * mutated headers (offsets, shapes, dtypes, lengths, truncations, types of
    values) are accepted or refused by both readers alike, except for the
    listed cases where mxverify is deliberately stricter, which are checked
    to be refused by the C reader with a one-line message.

Usage: python3 test_safetensors.py PATH/TO/st_tool
"""
import hashlib
import json
import os
import random
import struct
import subprocess
import sys
import tempfile

import ml_dtypes
import numpy as np

try:
    import safetensors
    from safetensors import deserialize, safe_open
    from safetensors.numpy import load_file, save, save_file
except ImportError:
    safetensors = None

DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "BF16": ml_dtypes.bfloat16,
    "I64": np.int64,
    "I32": np.int32,
    "I8": np.int8,
    "U8": np.uint8,
    "F8_E4M3": ml_dtypes.float8_e4m3fn,
    "F8_E4M3FNUZ": ml_dtypes.float8_e4m3fnuz,
    "F8_E5M2": ml_dtypes.float8_e5m2,
    "F8_E5M2FNUZ": ml_dtypes.float8_e5m2fnuz,
    "F8_E8M0": ml_dtypes.float8_e8m0fnu,
}
NUMPY_NATIVE = {"F64", "F32", "F16", "I64", "I32", "I8", "U8"}
SHAPES = [(), (7,), (3, 5), (2, 3, 4), (0, 4), (1, 2, 1, 3)]

passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        if failed <= 30:
            print("FAIL:", what)


def skip(why):
    if os.environ.get("MXV_REQUIRE_PYTHON") == "1":
        sys.exit("error: " + why)
    print("SKIP:", why)
    sys.exit(77)


def rand_array(rng, dt, shape):
    n = int(np.prod(shape, dtype=np.int64)) * np.dtype(dt).itemsize
    raw = rng.integers(0, 256, size=n, dtype=np.uint8)
    return raw.view(dt).reshape(shape)


def header_of(data):
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8 : 8 + n])


class Tool:
    def __init__(self, path, tmp):
        self.path = path
        self.tmp = tmp
        self.count = 0

    def fresh(self, stem):
        self.count += 1
        return os.path.join(self.tmp, "%s-%d.safetensors" % (stem, self.count))

    def dump(self, files):
        p = subprocess.run([self.path, "dump"] + files, capture_output=True, text=True)
        lines = p.stdout.split("\n")[:-1]  # not splitlines: names hold U+2028
        if len(lines) != len(files):
            sys.exit("st_tool dump: %d lines for %d files: %s" % (len(lines), len(files), p.stderr))
        return [json.loads(l) for l in lines]

    def copy(self, src, dst):
        p = subprocess.run([self.path, "copy", src, dst], capture_output=True, text=True)
        return p.returncode, p.stderr


def read(path):
    with open(path, "rb") as f:
        return f.read()


def compare_dump(d, tensors, metadata, what):
    """d: one st_tool dump; tensors: name -> array."""
    check(d["ok"], "%s: C reader refused: %s" % (what, d.get("msg")))
    if not d["ok"]:
        return
    got = {t["name"]: t for t in d["tensors"]}
    check(set(got) == set(tensors), "%s: names %s vs %s" % (what, sorted(got), sorted(tensors)))
    for name, arr in tensors.items():
        t = got.get(name)
        if t is None:
            continue
        want_dtype = [k for k, v in DTYPES.items() if np.dtype(v) == arr.dtype][0]
        check(t["dtype"] == want_dtype, "%s: %r dtype %s, want %s" % (what, name, t["dtype"], want_dtype))
        check(tuple(t["shape"]) == arr.shape, "%s: %r shape %s, want %s" % (what, name, t["shape"], arr.shape))
        check(t["hex"] == arr.tobytes().hex(), "%s: %r bytes differ" % (what, name))
        check(t["aligned"], "%s: %r data not aligned" % (what, name))
    offs = [t["offset"] for t in d["tensors"]]
    check(offs == sorted(offs), "%s: tensors not in data order" % what)
    check(d["metadata"] == (metadata or {}), "%s: metadata %r vs %r" % (what, d["metadata"], metadata))


def python_reads(data, tensors, metadata, what):
    """The Python library reads bytes written by C and finds the tensors."""
    try:
        flat = dict(deserialize(data))
    except Exception as e:  # noqa: BLE001 - any refusal is the failure
        check(False, "%s: Python refused the C file: %s" % (what, e))
        return
    check(set(flat) == set(tensors), "%s: Python sees %s" % (what, sorted(flat)))
    for name, arr in tensors.items():
        v = flat.get(name)
        if v is None:
            continue
        want_dtype = [k for k, dt in DTYPES.items() if np.dtype(dt) == arr.dtype][0]
        check(v["dtype"] == want_dtype, "%s: Python dtype %s for %r" % (what, v["dtype"], name))
        check(tuple(v["shape"]) == arr.shape, "%s: Python shape for %r" % (what, name))
        check(bytes(v["data"]) == arr.tobytes(), "%s: Python bytes for %r" % (what, name))
    hdr = header_of(data)
    check(hdr.get("__metadata__", {}) == (metadata or {}), "%s: Python metadata" % what)


def roundtrip(tool, tensors, metadata, what, expect_identical=True):
    src = tool.fresh("py")
    save_file(tensors, src, metadata=metadata)
    (d,) = tool.dump([src])
    compare_dump(d, tensors, metadata, what + " (Python -> C)")
    dst = tool.fresh("c")
    rc, err = tool.copy(src, dst)
    check(rc == 0, "%s: C writer failed: %s" % (what, err))
    if rc != 0:
        return
    py, c = read(src), read(dst)
    if expect_identical:
        check(py == c, "%s: C bytes differ from Python's (sha256 %s vs %s)" % (
            what, hashlib.sha256(c).hexdigest()[:16], hashlib.sha256(py).hexdigest()[:16]))
    python_reads(c, tensors, metadata, what + " (C -> Python)")
    # Determinism: copying the C file again gives the same bytes.
    again = tool.fresh("c2")
    rc, err = tool.copy(dst, again)
    check(rc == 0 and read(again) == c, "%s: second C copy differs" % what)
    return dst


# ---- the tests -----------------------------------------------------------


def test_dtype_spellings(tool):
    """Python writes the names mxverify expects, and the C reader agrees."""
    rng = np.random.default_rng(1)
    tensors = {}
    for name, dt in DTYPES.items():
        for k, shape in enumerate(SHAPES):
            tensors["%s.%d" % (name, k)] = rand_array(rng, dt, shape)
    src = tool.fresh("spell")
    save_file(tensors, src, metadata={"kind": "dtype-table"})
    hdr = header_of(read(src))
    for name in DTYPES:
        check(hdr["%s.0" % name]["dtype"] == name,
              "Python spells %s as %s" % (name, hdr["%s.0" % name]["dtype"]))
    roundtrip(tool, tensors, {"kind": "dtype-table"}, "every dtype")


def test_numpy_loader(tool):
    """Files from the C writer load through safetensors.numpy.load_file."""
    rng = np.random.default_rng(2)
    tensors = {"%s" % n: rand_array(rng, DTYPES[n], (3, 4)) for n in NUMPY_NATIVE}
    meta = {"b": "2", "a": "1", "c": "x\ny", "format": "np"}
    src = tool.fresh("np")
    save_file(tensors, src, metadata=meta)
    dst = tool.fresh("npc")
    rc, err = tool.copy(src, dst)
    check(rc == 0, "numpy copy: %s" % err)
    loaded = load_file(dst)
    for n, arr in tensors.items():
        check(loaded[n].dtype == arr.dtype and np.array_equal(loaded[n].view(np.uint8), arr.view(np.uint8)),
              "load_file: %s differs" % n)
    with safe_open(dst, framework="np") as f:
        check(f.metadata() == meta, "safe_open metadata %r" % f.metadata())
    # Several metadata keys: Python's key order is a hash order, ours is
    # sorted; everything else must agree.
    roundtrip(tool, tensors, meta, "four metadata keys", expect_identical=False)
    hdr = header_of(read(dst))
    check(list(hdr["__metadata__"]) == sorted(meta), "C metadata keys not sorted")


def test_escapes(tool):
    """serde_json's string escaping, reproduced byte for byte."""
    every = "".join(chr(c) for c in range(1, 128)) + "\u00e9\u2028\U0001F600"
    tensors = {every: np.arange(3, dtype=np.uint8), "\\\"": np.zeros(1, np.float32)}
    roundtrip(tool, tensors, {every: every[::-1]}, "escapes")


def test_random_files(tool, n=30):
    rng = np.random.default_rng(3)
    pyr = random.Random(3)
    alphabet = ["a", "b", "Z", "0", "9", "-", ".", "_", "/", " ", "\"", "\\", "\n", "\t",
                "\x01", "\x1f", "\x7f", "\u00e9", "\u4e2d", "\U0001F600", "e", "[", "]", ":", ","]
    for i in range(n):
        tensors = {}
        for _ in range(pyr.randint(0, 8)):
            name = "".join(pyr.choice(alphabet) for _ in range(pyr.randint(1, 12)))
            dt = DTYPES[pyr.choice(sorted(DTYPES))]
            shape = tuple(pyr.randint(0, 5) for _ in range(pyr.randint(0, 4)))
            tensors[name] = rand_array(rng, dt, shape)
        meta = None
        if pyr.random() < 0.6:
            key = "".join(pyr.choice(alphabet) for _ in range(pyr.randint(0, 6)))
            meta = {key: "".join(pyr.choice(alphabet) for _ in range(pyr.randint(0, 20)))}
        roundtrip(tool, tensors, meta, "random file %d" % i)


def build(hdr_text, data, pad=True):
    h = hdr_text.encode() if isinstance(hdr_text, str) else hdr_text
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def python_accepts(data):
    try:
        deserialize(data)
        return True
    except Exception:  # noqa: BLE001 - the library's refusal
        return False


def mutations(base_hdr, data):
    """(description, file bytes) for many small changes of a valid file."""
    out = []
    names = [k for k in base_hdr if k != "__metadata__"]

    def emit(desc, hdr, d=data):
        out.append((desc, build(json.dumps(hdr, separators=(",", ":")), d)))

    def variant():
        return json.loads(json.dumps(base_hdr))

    for n in names:
        for which in (0, 1):
            for delta in (-2, -1, 1, 2, 1000):
                h = variant()
                h[n]["data_offsets"][which] += delta
                emit("%s offsets[%d] %+d" % (n, which, delta), h)
        for delta in (-2, -1, 1, 2):
            h = variant()
            h[n]["data_offsets"] = [x + delta for x in h[n]["data_offsets"]]
            emit("%s moved by %+d" % (n, delta), h)
        # A gap of one byte before n: a byte inserted there, n and every
        # tensor after it moved up.
        at = base_hdr[n]["data_offsets"][0]
        h = variant()
        for m in names:
            if h[m]["data_offsets"][0] >= at and (m == n or h[m]["data_offsets"][1] > at):
                h[m]["data_offsets"] = [x + 1 for x in h[m]["data_offsets"]]
        emit("gap before %s" % n, h, data[:at] + b"\0" + data[at:])
        h = variant()
        h[n]["data_offsets"] = [float(x) for x in h[n]["data_offsets"]]
        emit("%s offsets as floats" % n, h)
        h = variant()
        h[n]["data_offsets"] = h[n]["data_offsets"] + [0]
        emit("%s three offsets" % n, h)
        h = variant()
        h[n]["data_offsets"] = [str(x) for x in h[n]["data_offsets"]]
        emit("%s offsets as strings" % n, h)
        for dim in range(len(base_hdr[n]["shape"])):
            for delta in (-1, 1):
                h = variant()
                h[n]["shape"][dim] += delta
                emit("%s shape[%d] %+d" % (n, dim, delta), h)
            h = variant()
            h[n]["shape"][dim] = -h[n]["shape"][dim]
            emit("%s shape[%d] negated" % (n, dim), h)
            h = variant()
            del h[n]["shape"][dim]
            emit("%s shape[%d] removed" % (n, dim), h)
        h = variant()
        h[n]["shape"] = [1] + h[n]["shape"] + [1]
        emit("%s shape padded with ones" % n, h)
        h = variant()
        h[n]["shape"] = [float(x) for x in h[n]["shape"]]
        emit("%s shape as floats" % n, h)
        for dt in DTYPES:
            if dt != base_hdr[n]["dtype"]:
                h = variant()
                h[n]["dtype"] = dt
                emit("%s dtype %s" % (n, dt), h)
        for field in ("dtype", "shape", "data_offsets"):
            h = variant()
            del h[n][field]
            emit("%s without %s" % (n, field), h)
        h = variant()
        h[n]["dtype"] = h[n]["dtype"].lower()
        emit("%s dtype lower case" % n, h)
    for a in names:
        for b in names:
            if a < b:
                h = variant()
                h[a]["data_offsets"], h[b]["data_offsets"] = h[b]["data_offsets"], h[a]["data_offsets"]
                emit("offsets of %s and %s swapped" % (a, b), h)
    emit("one more data byte", variant(), data + b"\0")
    emit("one data byte less", variant(), data[:-1])
    h = variant()
    h["__metadata__"] = {"k": 1}
    emit("metadata value a number", h)
    h = variant()
    h["__metadata__"] = None
    emit("metadata null", h)
    h = variant()
    h["__metadata__"] = ["k"]
    emit("metadata a list", h)
    good = build(json.dumps(base_hdr, separators=(",", ":")), data)
    for cut in range(0, len(good), 7):
        out.append(("truncated to %d bytes" % cut, good[:cut]))
    n = struct.unpack("<Q", good[:8])[0]
    for delta in (-9, -8, -1, 1, 8):
        out.append(("header length %+d" % delta, struct.pack("<Q", n + delta) + good[8:]))
    out.append(("header length 2^63", struct.pack("<Q", 1 << 63) + good[8:]))
    return out


# Where mxverify refuses what the Python library (0.8) accepts, on purpose.
STRICTER = [
    ("unknown field in an entry",
     '{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"extra":1}}', 2),
    ("duplicate tensor name (Python keeps the last)",
     '{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},'
     '"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}', 2),
    ("NUL in a name", '{"a\\u0000":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}', 2),
    ("rank 17", '{"a":{"dtype":"U8","shape":[' + ",".join(["1"] * 16) + ',2],"data_offsets":[0,2]}}', 2),
] + [
    ("dtype %s, not one of mxverify's" % dt,
     '{"a":{"dtype":"%s","shape":[%d],"data_offsets":[0,8]}}' % (dt, n), 8)
    for dt, n in (("BOOL", 8), ("I16", 4), ("U16", 4), ("U32", 2), ("U64", 1), ("C64", 1), ("F4", 16))
]


def test_agreement(tool):
    rng = np.random.default_rng(4)
    tensors = {
        "w": rand_array(rng, ml_dtypes.float8_e4m3fn, (4, 64)),
        "s": rand_array(rng, ml_dtypes.float8_e8m0fnu, (4, 2)),
        "x": rand_array(rng, ml_dtypes.bfloat16, (3, 4)),
        "b": rand_array(rng, np.float32, (4,)),
        "e": rand_array(rng, np.int32, (0, 3)),
    }
    base = save(tensors, metadata={"kind": "mutations"})
    cases = mutations(header_of(base), base[8 + struct.unpack("<Q", base[:8])[0]:])
    paths = []
    for i, (desc, data) in enumerate(cases):
        p = tool.fresh("mut")
        with open(p, "wb") as f:
            f.write(data)
        paths.append(p)
    verdicts = tool.dump(paths)
    n_acc = n_ref = 0
    for (desc, data), p, v in zip(cases, paths, verdicts):
        py = python_accepts(data)
        check(py == v["ok"], "mutation '%s': Python %s, C %s (%s)" % (
            desc, "accepts" if py else "refuses", "accepts" if v["ok"] else "refuses", v.get("msg")))
        if not v["ok"]:
            n_ref += 1
            msg = v["msg"]
            check(v["exit"] == 3 and msg.startswith(p + ": ") and "\n" not in msg,
                  "mutation '%s': message %r" % (desc, msg))
        else:
            n_acc += 1
    check(n_acc >= 5 and n_ref >= 100, "mutations: %d accepted, %d refused" % (n_acc, n_ref))
    print("agreement: %d mutated files, %d accepted and %d refused by both" % (len(cases), n_acc, n_ref))

    paths = []
    for desc, hdr, size in STRICTER:
        p = tool.fresh("strict")
        data = build(hdr, b"\x01" * size)
        with open(p, "wb") as f:
            f.write(data)
        paths.append(p)
        check(python_accepts(data), "stricter case '%s': Python refuses it too (update STRICTER)" % desc)
    for (desc, _, _), p, v in zip(STRICTER, paths, tool.dump(paths)):
        check(not v["ok"] and v["exit"] == 3 and v["msg"].startswith(p + ': tensor "a'),
              "stricter case '%s': C gave %r" % (desc, v))


def test_messages(tool):
    """The C reader's message for the issue's example names file, tensor, field."""
    data = build('{"w13_scale":{"dtype":"U8","shape":[4,192],"data_offsets":[10,99]}}', b"\0" * 768, pad=False)
    p = tool.fresh("msg")
    with open(p, "wb") as f:
        f.write(data)
    (v,) = tool.dump([p])
    want = p + ': tensor "w13_scale": data_offsets [10, 99] do not match shape [4, 192] of dtype U8 (768 bytes)'
    check(v.get("msg") == want, "message %r" % v.get("msg"))
    check(not python_accepts(data), "Python accepts the mismatched file")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    if safetensors is None:
        skip("the safetensors Python package is not installed")
    try:
        save({"x": np.zeros(1, ml_dtypes.float8_e8m0fnu)})
    except Exception as e:  # noqa: BLE001
        skip("safetensors %s cannot write F8_E8M0 from numpy (%s); need 0.8+" % (safetensors.__version__, e))
    with tempfile.TemporaryDirectory() as tmp:
        tool = Tool(sys.argv[1], tmp)
        test_dtype_spellings(tool)
        test_numpy_loader(tool)
        test_escapes(tool)
        test_random_files(tool)
        test_agreement(tool)
        test_messages(tool)
    print("safetensors cross-check (safetensors %s): %d passed, %d failed" % (
        safetensors.__version__, passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
