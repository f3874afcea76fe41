"""Small numeric and time helpers shared by the AQI, regulation and tariff modules.

Nothing here knows about a particular regulation: breakpoint tables, limits and schedules live in
the modules that cite them.
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt

VN_TZ: Final = ZoneInfo("Asia/Ho_Chi_Minh")
# Vietnam has kept UTC+7 without daylight saving since 1975, so local days can be computed from
# UTC hours with a fixed offset (vectorised in numpy); a test checks this against the tz database.
VN_UTC_OFFSET_HOURS: Final = 7

# Arithmetic on decimal inputs leaves noise in the last bits (0.2 + 50 - 50 != 0.2). Values are
# rounded to this many decimals before any rounding, truncation or threshold comparison so that a
# result that is exactly on a boundary in decimal arithmetic is treated as on the boundary.
_NOISE_DECIMALS: Final = 9


def denoise(x: float) -> float:
    """Drop floating-point noise below 1e-9 (see ``_NOISE_DECIMALS``)."""
    return round(x, _NOISE_DECIMALS)


def round_half_up(x: float) -> int:
    """Round to the nearest integer, halves away from zero for positives (59.5 → 60).

    Python's ``round`` rounds halves to even (108.5 → 108), which is not how index values are
    published; the VN_AQI worked example 109.5 → 110 needs half-up.
    """
    return math.floor(denoise(x) + 0.5)


def truncate(x: float, decimals: int) -> float:
    """Truncate towards zero to ``decimals`` places (35.49 → 35.4 with 1 decimal)."""
    scale = 10**decimals
    return float(math.trunc(denoise(x * scale)) / scale)


def interpolate(points: Sequence[tuple[float, float]], c: float) -> float:
    """Piecewise-linear index for concentration ``c`` on a continuous breakpoint table.

    ``points`` are (concentration, index) pairs in increasing order. This is Công thức 1 of
    QĐ 1459/QĐ-TCMT: on the segment [BP_i, BP_i+1],
    ``I_i + (I_i+1 − I_i) / (BP_i+1 − BP_i) · (c − BP_i)``. Because the table is continuous, the
    choice of segment at a breakpoint does not change the result. Values at or above the last
    breakpoint return the last index (the cap); values below the first return the first index.
    """
    if c <= points[0][0]:
        return points[0][1]
    for (bp_lo, i_lo), (bp_hi, i_hi) in itertools.pairwise(points):
        if c <= bp_hi:
            return (i_hi - i_lo) / (bp_hi - bp_lo) * (c - bp_lo) + i_lo
    return points[-1][1]


def as_utc(dt: datetime) -> datetime:
    """An aware datetime converted to UTC; a naive one is refused (its zone is unknown)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt.isoformat()} given where UTC is required")
    return dt.astimezone(UTC)


def as_local(dt: datetime) -> datetime:
    """Naive wall-clock time in Asia/Ho_Chi_Minh.

    An aware datetime is converted; a naive one is taken to be local already. The result is naive
    so that arithmetic on it is plain wall-clock arithmetic, which is exact because Vietnam has no
    daylight saving.
    """
    if dt.tzinfo is None or dt.utcoffset() is None:
        return dt
    return dt.astimezone(VN_TZ).replace(tzinfo=None)


def rolling_mean(
    values: npt.NDArray[np.float64], window: int, min_valid: int
) -> npt.NDArray[np.float64]:
    """Trailing mean of ``window`` samples ending at each index; NaN marks a missing sample.

    The mean at index ``j`` covers ``values[j-window+1 .. j]`` (samples before the start count as
    missing). It is NaN unless at least ``min_valid`` samples of the window are present.
    """
    return rolling_mean_count(values, window, min_valid)[0]


def rolling_mean_count(
    values: npt.NDArray[np.float64], window: int, min_valid: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """:func:`rolling_mean` and the number of samples present in each window.

    Each window is summed on its own (no running sum), so long series accumulate no drift.
    """
    if not 1 <= min_valid <= window:
        raise ValueError(f"min_valid must be in 1..{window}, got {min_valid}")
    n = values.shape[0]
    if n == 0:
        return np.empty(0, dtype=np.float64), np.empty(0, dtype=np.int64)
    padded = np.concatenate((np.full(window - 1, np.nan), values.astype(np.float64)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, window)
    counts = np.count_nonzero(~np.isnan(windows), axis=1).astype(np.int64)
    sums = np.nansum(windows, axis=1)
    out = np.full(n, np.nan)
    ok = counts >= min_valid
    out[ok] = sums[ok] / counts[ok]
    return out, counts


def to_array(values: Sequence[float | None] | npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """A float64 array with NaN for missing (``None``) values."""
    if isinstance(values, np.ndarray):
        return values.astype(np.float64)
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
