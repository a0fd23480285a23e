"""A tiny deterministic generator (SplitMix64 over a counter) for example
and golden data: the same seed gives the same numbers on every machine and
every numpy version (numpy's own generators promise no stream stability
across versions, and golden files must regenerate byte for byte)."""
import numpy as np

from . import formats

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def uint64s(seed, n):
    """n 64-bit words of stream `seed` (an int >= 0)."""
    z = np.uint64(seed & 0xFFFFFFFFFFFFFFFF) + (np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def integers(seed, shape, lo, hi):
    """Integers in [lo, hi) (int64 array of `shape`)."""
    n = int(np.prod(shape, dtype=np.int64))
    span = np.uint64(hi - lo)
    return ((uint64s(seed, n) >> np.uint64(8)) % span).astype(np.int64).reshape(shape) + lo


def fp8_codes(seed, shape, fmt):
    """Uniformly random finite codes of FP8 format `fmt` (uint8)."""
    finite = np.flatnonzero(np.isfinite(formats.fp8_format(fmt).table)).astype(np.uint8)
    return finite[integers(seed, shape, 0, finite.size)]


def bf16_values(seed, shape, lo_exp=-14, hi_exp=-2):
    """BF16 bit patterns (uint16) of values m * 2^e with an 8-bit signed
    integer m and e in [lo_exp, hi_exp): exact in BF16 and FP32."""
    m = integers(seed, shape, -255, 256)
    e = integers(seed + 1, shape, lo_exp, hi_exp)
    return formats.f32_to_bf16(np.ldexp(m.astype(np.float32), e.astype(np.int32)))


def distinct_rows(seed, rows, k, n):
    """[rows, k] int64: each row k distinct values of range(n)."""
    if k > n:
        raise ValueError("cannot pick %d distinct of %d" % (k, n))
    keys = uint64s(seed, rows * n).reshape(rows, n)
    return np.argsort(keys, axis=1, kind="stable")[:, :k].astype(np.int64)


def weights(seed, rows, k):
    """[rows, k] float32 positive weights summing to about 1 per row."""
    w = (integers(seed, (rows, k), 1, 1 << 16).astype(np.float64) / (1 << 16))
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)
