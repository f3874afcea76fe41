"""Time-of-use (TOU) bands and energy accounting for Vietnamese electricity tariffs.

- :func:`band`: the band (peak / normal / off-peak) in force at a local time, per
  TT 16/2014/TT-BCT Điều 5 (REFERENCE.md §3.4). The schedule is data (:data:`TT16_2014`), because
  the hours may have been revised since (unverified); pass another :class:`TouSchedule` if so.
- :func:`split_energy`: consumption of intervals of any length split across bands in proportion
  to the time each interval spends in each band.
- :func:`consumption_from_counter`: consumption from a cumulative kWh counter that may reset.

Times: an aware datetime is converted to Asia/Ho_Chi_Minh; a naive one is taken as local time.
Public holidays are not special in Điều 5: they follow their day of the week.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from analytics._shared import as_local, as_utc

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

Band = Literal["peak", "normal", "offpeak"]
BANDS: Final[tuple[Band, ...]] = ("peak", "normal", "offpeak")
_MINUTES_PER_DAY: Final = 24 * 60
_SUNDAY: Final = 6  # datetime.weekday()

Period = tuple[int, int, Band]  # (start minute, end minute, band), end exclusive


@dataclass(frozen=True, slots=True)
class TouSchedule:
    """Band periods of a day, in minutes from local midnight, for Monday–Saturday and Sunday.

    Each tuple must cover 0…1440 without gaps or overlaps, in order.
    """

    weekday: tuple[Period, ...]
    sunday: tuple[Period, ...]

    def __post_init__(self) -> None:
        for name, periods in (("weekday", self.weekday), ("sunday", self.sunday)):
            contiguous = all(a[1] == b[0] for a, b in itertools.pairwise(periods))
            if not periods or not contiguous:
                raise ValueError(f"{name} periods must cover 00:00–24:00 contiguously")
            if periods[0][0] != 0 or periods[-1][1] != _MINUTES_PER_DAY:
                raise ValueError(f"{name} periods must cover 00:00–24:00 contiguously")
            if any(start >= end for start, end, _ in periods):
                raise ValueError(f"{name} periods must have start < end")

    def periods(self, weekday: int) -> tuple[Period, ...]:
        """The periods of a day given by ``datetime.weekday()`` (0 = Monday)."""
        return self.sunday if weekday == _SUNDAY else self.weekday


# TT 16/2014/TT-BCT Điều 5. Mon–Sat: peak 09:30–11:30 and 17:00–20:00; normal 04:00–09:30,
# 11:30–17:00, 20:00–22:00; off-peak 22:00–04:00. Sunday: no peak; normal 04:00–22:00.
TT16_2014: Final = TouSchedule(
    weekday=(
        (0, 240, "offpeak"),
        (240, 570, "normal"),
        (570, 690, "peak"),
        (690, 1020, "normal"),
        (1020, 1200, "peak"),
        (1200, 1320, "normal"),
        (1320, 1440, "offpeak"),
    ),
    sunday=(
        (0, 240, "offpeak"),
        (240, 1320, "normal"),
        (1320, 1440, "offpeak"),
    ),
)


def band(local_dt: datetime, schedule: TouSchedule = TT16_2014) -> Band:
    """The TOU band at an instant; a period's start belongs to it (09:30 is peak on weekdays).

    Args:
        local_dt: aware (converted to Asia/Ho_Chi_Minh) or naive local time.
        schedule: band periods; TT 16/2014 by default.
    """
    t = as_local(local_dt)
    minute = t.hour * 60 + t.minute
    for start, end, b in schedule.periods(t.weekday()):
        if start <= minute < end:
            return b
    raise AssertionError("unreachable: the schedule covers the whole day")  # pragma: no cover


def band_durations(
    start: datetime, end: datetime, schedule: TouSchedule = TT16_2014
) -> dict[Band, timedelta]:
    """How much of ``[start, end)`` falls in each band.

    Raises:
        ValueError: if ``end`` is before ``start``.
    """
    t, stop = as_local(start), as_local(end)
    if stop < t:
        raise ValueError(
            f"interval ends ({end.isoformat()}) before it starts ({start.isoformat()})"
        )
    out: dict[Band, timedelta] = dict.fromkeys(BANDS, timedelta(0))
    while t < stop:
        midnight = datetime.combine(t.date(), datetime.min.time())
        offset = t - midnight
        for p_start, p_end, b in schedule.periods(t.weekday()):
            if timedelta(minutes=p_start) <= offset < timedelta(minutes=p_end):
                segment_end = min(midnight + timedelta(minutes=p_end), stop)
                out[b] += segment_end - t
                t = segment_end
                break
    return out


def split_energy(
    intervals: Iterable[tuple[datetime, datetime, float]], schedule: TouSchedule = TT16_2014
) -> dict[Band, float]:
    """Split the energy of intervals across TOU bands in proportion to time.

    Consumption inside an interval is assumed uniform, so an hourly reading for 09:00–10:00 on a
    weekday puts half in ``normal`` and half in ``peak`` (the band changes at 09:30).

    Args:
        intervals: ``(start, end, kWh)``; any length, may cross band boundaries and midnight.
        schedule: band periods; TT 16/2014 by default.

    Returns:
        kWh per band (every band present, 0.0 when unused).

    Raises:
        ValueError: for a non-finite energy, an interval ending before it starts, or energy in
            a zero-length interval.
    """
    totals: dict[Band, float] = dict.fromkeys(BANDS, 0.0)
    for start, end, kwh in intervals:
        if not math.isfinite(kwh):
            raise ValueError(f"energy for {start.isoformat()} is {kwh!r}")
        durations = band_durations(start, end, schedule)
        length = sum(durations.values(), timedelta(0))
        if length == timedelta(0):
            if kwh:
                raise ValueError(f"{kwh} kWh in a zero-length interval at {start.isoformat()}")
            continue
        for b, d in durations.items():
            totals[b] += kwh * (d / length)
    return totals


class CounterConsumption(NamedTuple):
    """Consumption derived from a cumulative counter.

    Attributes:
        total: kWh over the whole series.
        resets: how many times the counter went down (restart, replacement, rollover).
        per_interval: kWh between consecutive readings; ``per_interval[i]`` is the consumption
            between reading ``i`` and reading ``i + 1``.
    """

    total: float
    resets: int
    per_interval: npt.NDArray[np.float64]


def consumption_from_counter(
    ts: Sequence[datetime] | npt.NDArray[np.datetime64],
    values: Sequence[float] | npt.NDArray[np.float64],
    *,
    jitter_kwh: float = 0.0,
) -> CounterConsumption:
    """Consumption from a monotonic kWh counter that may reset (REFERENCE.md §5.2).

    When a reading is lower than the previous one the counter is taken to have restarted from 0,
    so the increment is the new reading itself (``E_t``) and one reset is counted. What was
    consumed between the last reading before the reset and the reset itself is unknown and lost;
    this is the same rule as TimescaleDB Toolkit's ``counter_agg``.

    Args:
        ts: reading times, strictly increasing (aware datetimes or ``datetime64``).
        values: counter readings in kWh, finite and non-negative.
        jitter_kwh: decreases up to this size are meter noise, counted as 0 kWh rather than a
            reset. The default 0 applies the rule above to every decrease.

    Returns:
        ``(total, resets, per_interval)``.

    Raises:
        ValueError: for mismatched lengths, times not strictly increasing, naive datetimes, or
            negative or non-finite readings.
    """
    seconds = _epoch_seconds(ts)
    e = np.asarray(values, dtype=np.float64)
    if seconds.shape != e.shape:
        raise ValueError(f"{seconds.size} times but {e.size} readings")
    if np.any(np.diff(seconds) <= 0):
        raise ValueError("reading times must be strictly increasing")
    if not np.all(np.isfinite(e)) or np.any(e < 0):
        raise ValueError("counter readings must be finite and non-negative")
    if jitter_kwh < 0:
        raise ValueError("jitter_kwh must be non-negative")
    diffs = np.diff(e)
    reset = diffs < -jitter_kwh
    per_interval = np.where(reset, e[1:], np.maximum(diffs, 0.0))
    return CounterConsumption(float(per_interval.sum()), int(reset.sum()), per_interval)


def counter_intervals(
    ts: Sequence[datetime] | npt.NDArray[np.datetime64],
    values: Sequence[float] | npt.NDArray[np.float64],
    *,
    jitter_kwh: float = 0.0,
) -> list[tuple[datetime, datetime, float]]:
    """``(start, end, kWh)`` between consecutive counter readings, ready for :func:`split_energy`.

    Times are returned as aware UTC datetimes. Arguments as for
    :func:`consumption_from_counter`.
    """
    per_interval = consumption_from_counter(ts, values, jitter_kwh=jitter_kwh).per_interval
    times = [datetime.fromtimestamp(s, tz=UTC) for s in _epoch_seconds(ts).tolist()]
    return [(a, b, float(kwh)) for a, b, kwh in zip(times, times[1:], per_interval, strict=False)]


def _epoch_seconds(ts: Sequence[datetime] | npt.NDArray[np.datetime64]) -> npt.NDArray[np.float64]:
    if isinstance(ts, np.ndarray):
        return ts.astype("datetime64[us]").astype(np.int64) / 1e6
    return np.array([as_utc(t).timestamp() for t in ts], dtype=np.float64)
