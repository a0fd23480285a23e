"""Turning the caller's arrays into plain numpy arrays, losslessly.

Accepted inputs are numpy arrays (native dtypes and the ml_dtypes ones:
float8_e4m3fn, float8_e4m3fnuz, float8_e5m2, float8_e5m2fnuz,
float8_e8m0fnu, bfloat16) and torch tensors (any device).  torch is never
imported here: a torch tensor can only reach us if the caller imported
torch, so it is recognized through sys.modules.

A converted array is a pair (tag, array):
    tag "fp8:<format>"  typed FP8 values; array uint8 codes
    tag "e8m0"          typed E8M0 scales; array uint8 codes
    tag "bfloat16"      array uint16 bit patterns
    otherwise the numpy dtype name ("uint8", "uint16", "float32", "int64",
    ...) with the array in that dtype.
Arrays are C-contiguous and little-endian.  torch tensors go through a
uint8 (1-byte types) or int16 (bfloat16) view on the CPU, so no value is
ever converted by torch.
"""
import sys

import numpy as np


class CaptureError(ValueError):
    """An argument of a capture call is invalid; the message names it."""


# ml_dtypes names (numpy dtype .name) -> tag
_NUMPY_TYPED = {
    "float8_e4m3fn": "fp8:e4m3fn",
    "float8_e4m3fnuz": "fp8:e4m3fnuz",
    "float8_e5m2": "fp8:e5m2",
    "float8_e5m2fnuz": "fp8:e5m2fnuz",
    "float8_e8m0fnu": "e8m0",
    "bfloat16": "bfloat16",
}
# numpy dtypes refused by name, with the reason
_NUMPY_REFUSED = {
    "float8_e4m3": "is IEEE-style E4M3 (with infinities), not e4m3fn",
    "float8_e4m3b11fnuz": "is not a format mxverify models",
    "float8_e3m4": "is not a format mxverify models",
}
_NATIVE = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16",
           "uint32", "uint64", "float16", "float32", "float64")

# torch dtype attribute names -> (tag, view dtype name or None)
_TORCH = {
    "float8_e4m3fn": ("fp8:e4m3fn", "uint8"),
    "float8_e4m3fnuz": ("fp8:e4m3fnuz", "uint8"),
    "float8_e5m2": ("fp8:e5m2", "uint8"),
    "float8_e5m2fnuz": ("fp8:e5m2fnuz", "uint8"),
    "float8_e8m0fnu": ("e8m0", "uint8"),
    "bfloat16": ("bfloat16", "int16"),
    "uint8": ("uint8", None),
    "int8": ("int8", None),
    "int16": ("int16", None),
    "int32": ("int32", None),
    "int64": ("int64", None),
    "bool": ("bool", None),
    "float16": ("float16", None),
    "float32": ("float32", None),
    "float64": ("float64", None),
}


def describe(tag):
    """A human name of a tag for messages."""
    if tag.startswith("fp8:"):
        return "FP8 " + tag[4:]
    if tag == "e8m0":
        return "E8M0"
    return tag


def _torch_tensor_type():
    torch = sys.modules.get("torch")
    return getattr(torch, "Tensor", None) if torch is not None else None


def _from_torch(t, where):
    torch = sys.modules["torch"]
    kind = None
    for name, entry in _TORCH.items():
        dt = getattr(torch, name, None)
        if dt is not None and t.dtype == dt:
            kind = entry
            break
    if kind is None:
        raise CaptureError("%s: torch dtype %s is not supported" % (where, t.dtype))
    tag, view = kind
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    t = t.contiguous()
    if view is not None:
        t = t.view(getattr(torch, view))
    arr = t.numpy()
    if tag == "bfloat16":
        arr = arr.view(np.uint16)
    return tag, arr


def as_array(x, where):
    """(tag, array) for a numpy array or torch tensor; CaptureError else."""
    tensor_type = _torch_tensor_type()
    if tensor_type is not None and isinstance(x, tensor_type):
        tag, arr = _from_torch(x, where)
    elif isinstance(x, np.ndarray):
        name = x.dtype.name
        if name in _NUMPY_TYPED:
            tag = _NUMPY_TYPED[name]
            arr = x.view(np.uint16 if tag == "bfloat16" else np.uint8)
        elif name in _NUMPY_REFUSED:
            raise CaptureError("%s: numpy dtype %s %s" % (where, name, _NUMPY_REFUSED[name]))
        elif x.dtype.kind in "biuf" and name in _NATIVE:
            tag, arr = name, x
        else:
            raise CaptureError("%s: numpy dtype %s is not supported" % (where, x.dtype))
    else:
        raise CaptureError("%s: expected a numpy array or a torch tensor, got %s"
                           % (where, type(x).__name__))
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    if not arr.flags.c_contiguous:   # (ascontiguousarray would make 0-d 1-d)
        arr = arr.copy(order="C")
    return tag, arr
