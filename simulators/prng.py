"""Counter-based pseudo-randomness: every number is a pure function of (seed, key, index).

The simulators never draw from a stateful generator. A value at time t is hashed from the seed, a
key naming what it is for (device, area, fault …) and an integer index (a time knot, a reading
number). Backfill and real time therefore produce the same numbers, in any order, and a test can
ask for the value at one instant without replaying the past.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)
_TWO_PI = 2.0 * np.pi
_MASK = 0xFFFFFFFFFFFFFFFF


@lru_cache(maxsize=1 << 20)
def key(*parts: object) -> int:
    """A stable 64-bit key for a tuple of names and numbers (Python's ``hash`` is salted)."""
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def _mix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    # splitmix64's output function. Arrays only: uint64 arrays wrap silently, numpy scalars
    # would warn on overflow.
    x = (x ^ (x >> _U64(30))) * _M1
    x = (x ^ (x >> _U64(27))) * _M2
    return x ^ (x >> _U64(31))


def hash64(k: int, index: npt.ArrayLike) -> npt.NDArray[np.uint64]:
    """64-bit hashes of ``index`` (any integer array) under key ``k``.

    This is splitmix64 with state ``k + (index + 1)·γ``: each key is its own stream, and
    element i is the stream's i-th output, so any index can be drawn without the others.
    """
    idx = np.atleast_1d(np.asarray(index, dtype=np.int64)).view(np.uint64)
    return _mix((idx + _U64(1)) * _GOLDEN + _U64(k & _MASK))


def uniform(k: int, index: npt.ArrayLike) -> FloatArray:
    """Uniform numbers in [0, 1), one per index."""
    return (hash64(k, index) >> _U64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def normal(k: int, index: npt.ArrayLike) -> FloatArray:
    """Standard normal numbers, one per index (Box–Muller on the two halves of one hash)."""
    h = hash64(k, index)
    u1 = ((h >> _U64(32)).astype(np.float64) + 0.5) * (1.0 / 4294967296.0)
    u2 = (h & _U64(0xFFFFFFFF)).astype(np.float64) * (1.0 / 4294967296.0)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(_TWO_PI * u2)


def smooth(k: int, t: npt.ArrayLike, period: float) -> FloatArray:
    """Smooth unit-variance noise: normal values at knots every ``period`` seconds, eased between.

    Dividing by the interpolation weights' norm keeps the variance at 1 between knots, so a
    level's spread does not dip at mid-knot.
    """
    tt = np.atleast_1d(np.asarray(t, dtype=np.float64)) / period
    k0 = np.floor(tt)
    u = tt - k0
    idx = k0.astype(np.int64)
    s = u * u * (3.0 - 2.0 * u)
    g0 = normal(k, idx)
    g1 = normal(k, idx + 1)
    return ((1.0 - s) * g0 + s * g1) / np.sqrt((1.0 - s) ** 2 + s * s)


def _mix_int(x: int) -> int:
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def hash_int(k: int, index: int) -> int:
    """:func:`hash64` of one index, in plain Python (payload fields hash one value at a time)."""
    return _mix_int((((index + 1) & _MASK) * 0x9E3779B97F4A7C15 + k) & _MASK)


def uniform_int(k: int, index: int) -> float:
    """:func:`uniform` of one index."""
    return (hash_int(k, index) >> 11) * (1.0 / 9007199254740992.0)


def choice_index(k: int, index: int, n: int) -> int:
    """A deterministic integer in [0, n)."""
    return int(uniform_int(k, index) * n) % max(n, 1)
