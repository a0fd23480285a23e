"""Deterministic safetensors writing (atomic) and a strict minimal reader.

Why not safetensors.numpy.save_file: the Python library emits __metadata__
in the order of a Rust hash map, which changes from run to run when there
is more than one key, so the same capture would not give the same bytes.
This writer follows the same conventions as mxverify's C writer
(docs/safetensors.md), so Python and C produce identical files:
  * the header is written here, not by a JSON library: no whitespace;
    "__metadata__" first (when there is metadata), keys in byte order;
    then the tensors in the Python library's order (dtype rank in the Rust
    Dtype enum, largest first, then name in byte order), which also aligns
    each tensor to its element size; padded with spaces to a multiple of 8;
  * strings escaped as serde_json escapes them (", \\, \\b \\f \\n \\r \\t,
    other control bytes as \\u00XX; everything else raw UTF-8).
For the same tensors and at most one metadata key the bytes equal the
Python library's (checked by the tests).

The file is written to a temporary file in the destination directory,
flushed, fsynced and renamed over the destination, so a reader never sees
a partial capture and a failure leaves the old file (if any) untouched.
"""
import json
import os
import struct
import tempfile

import numpy as np

# dtype name -> (element size, position in the Rust Dtype enum of 0.8)
DTYPES = {
    "F64": (8, 19), "I64": (8, 20),
    "F32": (4, 17), "I32": (4, 15),
    "F16": (2, 13), "BF16": (2, 14),
    "I8": (1, 5), "U8": (1, 4),
    "F8_E4M3": (1, 7), "F8_E4M3FNUZ": (1, 9), "F8_E5M2": (1, 6),
    "F8_E5M2FNUZ": (1, 10), "F8_E8M0": (1, 8),
}
# numpy storage dtype of each (what the raw arrays hold)
STORAGE = {
    "F64": np.float64, "I64": np.int64, "F32": np.float32, "I32": np.int32,
    "F16": np.float16, "BF16": np.uint16, "I8": np.int8, "U8": np.uint8,
    "F8_E4M3": np.uint8, "F8_E4M3FNUZ": np.uint8, "F8_E5M2": np.uint8,
    "F8_E5M2FNUZ": np.uint8, "F8_E8M0": np.uint8,
}
MAX_HEADER = 100_000_000


def _check_text(s, what):
    if not isinstance(s, str):
        raise ValueError("%s must be a str, got %s" % (what, type(s).__name__))
    if "\x00" in s:
        raise ValueError("%s contains a NUL character" % what)
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("%s is not encodable as UTF-8" % what) from None


def _json_string(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20:
            out.append("\\u%04x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _prepare(tensors, metadata):
    """Validates and orders; returns (header bytes, [raw uint8 views])."""
    items = []
    for name, (dtype, arr) in tensors.items():
        _check_text(name, "tensor name %r" % (name,))
        if name == "__metadata__":
            raise ValueError("'__metadata__' cannot name a tensor")
        if dtype not in DTYPES:
            raise ValueError("tensor %r: unknown dtype %r" % (name, dtype))
        arr = np.asarray(arr)
        if not arr.flags.c_contiguous:   # (ascontiguousarray would make 0-d 1-d)
            arr = arr.copy(order="C")
        if arr.dtype != np.dtype(STORAGE[dtype]):
            raise ValueError("tensor %r: %s data held as %s" % (name, dtype, arr.dtype))
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        items.append((name, dtype, arr))
    items.sort(key=lambda it: (-DTYPES[it[1]][1], it[0].encode("utf-8")))
    parts = []
    if metadata:
        kv = []
        for k in sorted(metadata, key=lambda s: s.encode("utf-8")):
            _check_text(k, "metadata key %r" % (k,))
            _check_text(metadata[k], "metadata value of %r" % (k,))
            kv.append(_json_string(k) + ":" + _json_string(metadata[k]))
        parts.append('"__metadata__":{' + ",".join(kv) + "}")
    off = 0
    views = []
    for name, dtype, arr in items:
        n = arr.nbytes
        parts.append('%s:{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}' % (
            _json_string(name), dtype, ",".join(str(int(d)) for d in arr.shape), off, off + n))
        off += n
        views.append(arr.reshape(-1).view(np.uint8))
    header = ("{" + ",".join(parts) + "}").encode("utf-8")
    header += b" " * (-len(header) % 8)
    if len(header) > MAX_HEADER:
        raise ValueError("header of %d bytes is too large" % len(header))
    return header, views


def serialize(tensors, metadata=None):
    """The file's bytes.  tensors: name -> (dtype name, numpy array in the
    STORAGE dtype of that name); metadata: str -> str."""
    header, views = _prepare(tensors, metadata)
    return struct.pack("<Q", len(header)) + header + b"".join(v.tobytes() for v in views)


def write(path, tensors, metadata=None):
    """Writes the file atomically (temporary file + os.replace)."""
    header, views = _prepare(tensors, metadata)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".%s.tmp-" % os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(header)))
            f.write(header)
            for v in views:
                f.write(v)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def read(path):
    """(metadata, tensors) of a safetensors file: tensors maps a name to
    (dtype name, numpy array in the STORAGE dtype, with its shape).  Strict:
    refuses (ValueError) what the format forbids and dtypes it does not
    know.  Reads the whole file (captures are modest)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError("%s: file is %d bytes" % (path, len(data)))
    n = struct.unpack("<Q", data[:8])[0]
    if n > MAX_HEADER or 8 + n > len(data):
        raise ValueError("%s: header length %d runs past the end" % (path, n))
    hdr = json.loads(data[8:8 + n].decode("utf-8"))
    if not isinstance(hdr, dict):
        raise ValueError("%s: header is not an object" % path)
    meta = hdr.pop("__metadata__", None) or {}
    body = memoryview(data)[8 + n:]
    tensors = {}
    spans = []
    for name, e in hdr.items():
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            raise ValueError("%s: tensor %r: bad entry" % (path, name))
        dtype = e["dtype"]
        if dtype not in DTYPES:
            raise ValueError("%s: tensor %r: dtype %r is not supported" % (path, name, dtype))
        shape = tuple(e["shape"])
        b, end = e["data_offsets"]
        count = 1
        for d in shape:
            if not isinstance(d, int) or d < 0:
                raise ValueError("%s: tensor %r: bad shape" % (path, name))
            count *= d
        if not (0 <= b <= end <= len(body)) or end - b != count * DTYPES[dtype][0]:
            raise ValueError("%s: tensor %r: bad data_offsets" % (path, name))
        arr = np.frombuffer(body[b:end], dtype=STORAGE[dtype]).reshape(shape).copy()
        tensors[name] = (dtype, arr)
        spans.append((b, end, name))
    pos = 0
    for b, end, name in sorted(spans):
        if b != pos:
            raise ValueError("%s: tensor %r: data does not tile the file" % (path, name))
        pos = end
    if pos != len(body):
        raise ValueError("%s: %d trailing bytes" % (path, len(body) - pos))
    return meta, tensors
