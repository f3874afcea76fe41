"""Vietnamese thresholds as data, and the checks that use them.

- QCVN 05:2023/BTNMT ambient air limits (:data:`QCVN05_2023`) and :func:`find_exceedances`.
- QCVN 26:2010/BTNMT noise limits (:data:`QCVN26_2010`) and :func:`noise_limit`.
- River flood alarm levels (báo động I/II/III, framework QĐ 05/2020/QĐ-TTg) per gauge
  (:data:`GAUGES`), :func:`alarm_level` and :func:`alarm_severity`.
- TT 39/2015/TT-BCT supply quality: :func:`voltage_status` and :func:`frequency_status`.

Sources and their verification status are in REFERENCE.md §3; each table below cites its source.
Values marked unverified there are flagged in the data (``verified=False``), not hidden.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from analytics._shared import (
    VN_UTC_OFFSET_HOURS,
    as_local,
    as_utc,
    denoise,
    rolling_mean_count,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

Averaging = Literal["1h", "8h", "24h", "year"]
AreaType = Literal["special", "normal"]
Severity = Literal["info", "warning", "critical"]
SupplyStatus = Literal["normal", "contingency", "out_of_range"]

# An hourly series: (hour start, value) pairs, or (datetime64 times, float64 values) arrays.
HourlySeries: TypeAlias = (
    Sequence[tuple[datetime, float | None]]
    | tuple[npt.NDArray[np.datetime64], npt.NDArray[np.float64]]
)

# --- QCVN 05:2023/BTNMT -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AirLimit:
    """One QCVN 05:2023 limit: the average over ``averaging`` must not exceed ``value``.

    Attributes:
        pollutant: canonical metric name (``tsp`` has no dothi metric but is kept for reports).
        averaging: ``1h``, ``8h``, ``24h`` or ``year``.
        value: µg/Nm³ (25 °C, 760 mmHg, the reference conditions of dothi's µg/m³).
        valid_from: first day the value applies, if it is staged.
        valid_until: last day the value applies, if it is staged.
    """

    pollutant: str
    averaging: Averaging
    value: float
    valid_from: date | None = None
    valid_until: date | None = None

    def applies_on(self, day: date) -> bool:
        """Whether this value is the one in force on ``day``."""
        return (self.valid_from is None or day >= self.valid_from) and (
            self.valid_until is None or day <= self.valid_until
        )


# QCVN 05:2023/BTNMT Bảng 1 (TT 01/2023/TT-BTNMT, in force from 12/09/2023), REFERENCE.md §3.1.
QCVN05_2023: Final[tuple[AirLimit, ...]] = (
    AirLimit("so2", "1h", 350),
    AirLimit("so2", "24h", 125),
    AirLimit("so2", "year", 50),
    AirLimit("co", "1h", 30_000),
    AirLimit("co", "8h", 10_000),
    AirLimit("no2", "1h", 200),
    AirLimit("no2", "24h", 100),
    AirLimit("no2", "year", 40),
    AirLimit("o3", "1h", 200),
    AirLimit("o3", "8h", 120),
    AirLimit("tsp", "1h", 300),
    AirLimit("tsp", "24h", 200),
    AirLimit("tsp", "year", 100),
    AirLimit("pm10", "24h", 100),
    AirLimit("pm10", "year", 50),
    # The PM2.5 24 h cell reads "50 | 45(*)": 45 applies from 01/01/2026.
    AirLimit("pm25", "24h", 50, valid_until=date(2025, 12, 31)),
    AirLimit("pm25", "24h", 45, valid_from=date(2026, 1, 1)),
    AirLimit("pm25", "year", 25),
)


def qcvn05_limit(pollutant: str, averaging: Averaging, on: date) -> float | None:
    """The QCVN 05:2023 limit in µg/m³ in force on a (local) day, or ``None`` if there is none.

    QCVN 05:2023 is applied to every date; dothi has no QCVN 05:2013 table for data older than
    12/09/2023.

    Example: ``qcvn05_limit("pm25", "24h", date(2026, 1, 1))`` is 45.
    """
    for limit in QCVN05_2023:
        if limit.pollutant == pollutant and limit.averaging == averaging and limit.applies_on(on):
            return float(limit.value)
    return None


@dataclass(frozen=True, slots=True)
class Exceedance:
    """An averaging period whose mean was above the QCVN 05:2023 limit.

    Attributes:
        pollutant: canonical metric name.
        averaging: ``1h``, ``8h`` or ``24h``.
        start: first hour of the period, UTC (inclusive).
        end: end of the period, UTC (exclusive).
        value: the period's mean, µg/m³.
        limit: the limit it exceeded, µg/m³.
        hours: hourly values present in the period.
    """

    pollutant: str
    averaging: Averaging
    start: datetime
    end: datetime
    value: float
    limit: float
    hours: int


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_AVERAGING_ORDER: Final = {"1h": 0, "8h": 1, "24h": 2}


def find_exceedances(
    pollutant: str,
    series: HourlySeries,
    *,
    min_hours_8h: int = 6,
    min_hours_24h: int = 18,
) -> list[Exceedance]:
    """Periods of an hourly series above the QCVN 05:2023 1 h, 8 h and 24 h limits.

    Args:
        pollutant: canonical metric name (``pm25``, ``pm10``, ``no2``, ``o3``, ``co``, ``so2``).
        series: hourly means in µg/m³ keyed by the UTC start of their hour, either as
            ``(datetime, value)`` pairs (aware datetimes; ``None`` for a missing value) or as a
            pair of numpy arrays (``datetime64`` taken as UTC, float64 with NaN for missing).
            Order does not matter; absent hours are missing.
        min_hours_8h: hours (of 8) a rolling 8 h mean needs; 6 (75 %) by default.
        min_hours_24h: hours (of 24) a daily mean needs; 18 (75 %) by default.

    Returns:
        Exceedances sorted by start, then 1 h / 8 h / 24 h. A value equal to the limit complies
        ("không vượt quá").

        8 h means are rolling: one for the 8 hours ending at each hour of the series (the first
        windows reach before the series; those hours count as missing).

        24 h means are per **local calendar day in Asia/Ho_Chi_Minh** (hours starting
        00:00…23:00 local), matching the daily means of QĐ 1459 ("01:00 to 00:00", labelled by
        hour end) and dothi's report days.

        Annual means are not evaluated here. The limit in force is the one on the local date of
        the period's last hour.

    Raises:
        ValueError: for naive datetimes, times not on the hour, or duplicate hours.
    """
    hours, values = _hourly_arrays(series)
    if hours.size == 0:
        return []
    h0 = int(hours.min())
    grid = np.full(int(hours.max()) - h0 + 1, np.nan)
    grid[hours - h0] = values

    found: list[Exceedance] = []

    def check(
        averaging: Averaging,
        means: npt.NDArray[np.float64],
        counts: npt.NDArray[np.int64],
        first_hours: npt.NDArray[np.int64],
        length: int,
    ) -> None:
        limits = [
            lim.value
            for lim in QCVN05_2023
            if (lim.pollutant, lim.averaging) == (pollutant, averaging)
        ]
        if not limits:
            return
        # Only periods above the lowest limit ever in force can exceed; check those one by one
        # with the limit of their date (PM2.5 24 h changes on 2026-01-01).
        with np.errstate(invalid="ignore"):
            candidates = np.flatnonzero(np.round(means, 9) > min(limits))
        for j in candidates:
            first, last = int(first_hours[j]), int(first_hours[j]) + length - 1
            limit = qcvn05_limit(pollutant, averaging, _local_date(last))
            if limit is not None and denoise(float(means[j])) > limit:
                found.append(
                    Exceedance(
                        pollutant,
                        averaging,
                        _utc(first),
                        _utc(last + 1),
                        float(means[j]),
                        limit,
                        int(counts[j]),
                    )
                )

    grid_hours = h0 + np.arange(grid.size, dtype=np.int64)
    check("1h", grid, (~np.isnan(grid)).astype(np.int64), grid_hours, 1)

    means, counts = rolling_mean_count(grid, 8, min_hours_8h)
    check("8h", means, counts, grid_hours - 7, 8)

    # Pad the grid to whole local days, then one row per day.
    lead = (h0 + VN_UTC_OFFSET_HOURS) % 24
    padded = np.concatenate((np.full(lead, np.nan), grid))
    padded = np.concatenate((padded, np.full(-padded.size % 24, np.nan))).reshape(-1, 24)
    day_counts = np.count_nonzero(~np.isnan(padded), axis=1).astype(np.int64)
    day_means = np.full(day_counts.size, np.nan)
    ok = day_counts >= min_hours_24h
    day_means[ok] = np.nansum(padded[ok], axis=1) / day_counts[ok]
    day_starts = h0 - lead + 24 * np.arange(day_counts.size, dtype=np.int64)
    check("24h", day_means, day_counts, day_starts, 24)

    found.sort(key=lambda e: (e.start, _AVERAGING_ORDER[e.averaging]))
    return found


def _hourly_arrays(
    series: HourlySeries,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """(hours since the epoch, values) from either accepted series form."""
    if isinstance(series, tuple) and len(series) == 2 and isinstance(series[0], np.ndarray):
        times, vals = series
        seconds = times.astype("datetime64[s]").astype(np.int64)
        values = np.asarray(vals, dtype=np.float64)
        if seconds.shape != values.shape:
            raise ValueError(f"{seconds.size} times but {values.size} values")
    else:
        pairs = series
        seconds = np.array([_utc_seconds(t) for t, _ in pairs], dtype=np.int64)
        values = np.array([math.nan if v is None else v for _, v in pairs], dtype=np.float64)
    if np.any(seconds % 3600):
        raise ValueError("hourly values must be keyed by the start of their hour (hh:00:00)")
    hours = seconds // 3600
    if np.unique(hours).size != hours.size:
        raise ValueError("the series has more than one value for the same hour")
    return hours, values


def _utc_seconds(t: datetime) -> int:
    delta = as_utc(t) - _EPOCH
    if delta.microseconds:
        raise ValueError(f"{t.isoformat()} is not on the hour")
    return delta.days * 86_400 + delta.seconds


def _utc(hour: int) -> datetime:
    return _EPOCH + timedelta(hours=hour)


def _local_date(hour: int) -> date:
    return date(1970, 1, 1) + timedelta(days=(hour + VN_UTC_OFFSET_HOURS) // 24)


# --- QCVN 26:2010/BTNMT noise -------------------------------------------------------------------

# QCVN 26:2010/BTNMT Bảng 1 (TT 39/2010/TT-BTNMT), LAeq in dBA: (06:00–21:00, 21:00–06:00).
# Special areas are inside the fence of hospitals and clinics, libraries, nurseries, schools,
# churches, đình and chùa; normal areas are apartments, houses, hotels, guesthouses and
# administrative offices.
# QCVN 26:2025/BNNMT (TT 01/2025/TT-BNNMT) probably supersedes it; its values are unverified.
QCVN26_2010: Final[Mapping[AreaType, tuple[int, int]]] = MappingProxyType(
    {"special": (55, 45), "normal": (70, 55)}
)
NOISE_DAY_START: Final = time(6, 0)
NOISE_DAY_END: Final = time(21, 0)


def noise_limit(area_type: AreaType, local_time: datetime | time) -> int:
    """The QCVN 26:2010 LAeq limit (dBA) for an area type at a time of day.

    Args:
        area_type: ``special`` or ``normal`` (see :data:`QCVN26_2010`).
        local_time: an aware datetime (converted to Asia/Ho_Chi_Minh), a naive datetime or a
            ``time`` (taken as local). Day is 06:00 ≤ t < 21:00; 21:00 itself is night.

    Raises:
        ValueError: for an unknown area type.
    """
    if area_type not in QCVN26_2010:
        raise ValueError(f"unknown area type {area_type!r}; expected 'special' or 'normal'")
    t = as_local(local_time).time() if isinstance(local_time, datetime) else local_time
    t = t.replace(tzinfo=None)
    day, night = QCVN26_2010[area_type]
    return day if NOISE_DAY_START <= t < NOISE_DAY_END else night


# --- River flood alarm levels ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlarmThreshold:
    """The stage (m, as published in the gauge's bulletins) at which an alarm level starts."""

    stage_m: float
    verified: bool
    source: str


@dataclass(frozen=True, slots=True)
class Gauge:
    """A hydrological station with its alarm levels (báo động, BĐ) I, II, III.

    A level missing from ``thresholds`` is unknown to dothi, not absent from the regulation.
    """

    id: str
    name: str
    river: str
    thresholds: Mapping[int, AlarmThreshold] = field(hash=False)


_NAM_DINH_BULLETIN = (
    "sotnmt.namdinh.gov.vn bulletin 16/6/2022 (2.72 m, 0.48 below BĐ I); "
    "congthuong.vn 11/9/2024 (5.04 m, 0.74 above BĐ III)"
)

# Alarm levels under QĐ 05/2020/QĐ-TTg, derived from official bulletins (reading ± stated margin),
# REFERENCE.md §3.3.
GAUGES: Final[Mapping[str, Gauge]] = MappingProxyType(
    {
        "nam_dinh": Gauge(
            "nam_dinh",
            "Nam Định",
            "sông Đào",
            MappingProxyType(
                {
                    1: AlarmThreshold(3.20, verified=True, source=_NAM_DINH_BULLETIN),
                    # Not found in any bulletin; interpolated by the reference. Unverified.
                    2: AlarmThreshold(3.80, verified=False, source="unverified (REFERENCE.md)"),
                    3: AlarmThreshold(4.30, verified=True, source=_NAM_DINH_BULLETIN),
                }
            ),
        ),
        "truc_phuong": Gauge(
            "truc_phuong",
            "Trực Phương",
            "sông Ninh Cơ",
            MappingProxyType(
                {
                    1: AlarmThreshold(2.00, verified=True, source="Nam Định DONRE bulletin"),
                    # BĐ II unknown.
                    3: AlarmThreshold(
                        2.60, verified=True, source="bulletin: 3.64 m = BĐ III + 1.04"
                    ),
                }
            ),
        ),
    }
)

# Alert severity per alarm level. BĐ I already calls for action (dyke watch and patrols start),
# so it is a warning rather than information; BĐ III (dangerous flood, dyke protection and
# evacuation readiness) is critical. BĐ II stays a warning: the alarm level itself travels with
# the alert, so dashboards still tell I from II.
ALARM_SEVERITY: Final[Mapping[int, Severity]] = MappingProxyType(
    {1: "warning", 2: "warning", 3: "critical"}
)


def alarm_level(gauge: str | Gauge, stage_m: float, *, include_unverified: bool = True) -> int:
    """The alarm level (0 = below BĐ I, else 1, 2 or 3) reached by a water level.

    A level is reached when the stage is at or above its threshold. When an intermediate level is
    unknown (BĐ II at Trực Phương), a stage between the known levels reports the highest known
    level below it: 2.30 m there is level 1, never a guessed 2.

    Args:
        gauge: a :data:`GAUGES` id or a :class:`Gauge`.
        stage_m: the water level in metres, in the gauge's datum.
        include_unverified: use thresholds marked unverified (Nam Định BĐ II).

    Raises:
        ValueError: for an unknown gauge id or a NaN stage.
    """
    if isinstance(gauge, str):
        if gauge not in GAUGES:
            raise ValueError(f"unknown gauge {gauge!r}; known: {sorted(GAUGES)}")
        gauge = GAUGES[gauge]
    if math.isnan(stage_m):
        raise ValueError("water level is NaN")
    reached = [
        level
        for level, threshold in gauge.thresholds.items()
        if (threshold.verified or include_unverified) and denoise(stage_m) >= threshold.stage_m
    ]
    return max(reached, default=0)


def alarm_severity(level: int) -> Severity | None:
    """Alert severity for an alarm level (see :data:`ALARM_SEVERITY`); ``None`` below BĐ I."""
    if level not in (0, 1, 2, 3):
        raise ValueError(f"alarm level must be 0…3, got {level}")
    return ALARM_SEVERITY.get(level)


# --- TT 39/2015/TT-BCT supply quality ----------------------------------------------------------

# Voltage at the customer connection: ±5 % in normal operation; +5 % / −10 % during a single
# contingency or restoration. Percent as integers so 220 V × 95 % compares exactly (209 V).
VOLTAGE_NORMAL_PCT: Final = (95, 105)
VOLTAGE_CONTINGENCY_PCT: Final = (90, 105)
# Frequency: 50 Hz ± 0.2 Hz normally, ± 0.5 Hz when the system is not stable.
FREQUENCY_NORMAL_HZ: Final = 0.2
FREQUENCY_CONTINGENCY_HZ: Final = 0.5


def voltage_status(volts: float, nominal: float = 220.0) -> SupplyStatus:
    """Classify a supply voltage against TT 39/2015 (220 V: 209–231 V normal, 198–231 V).

    Returns:
        ``normal`` within ±5 %; ``contingency`` within +5 %/−10 % but not ±5 % (acceptable only
        during a contingency); ``out_of_range`` otherwise. Bounds are inclusive.
    """
    pct = denoise(volts * 100 / nominal)
    if VOLTAGE_NORMAL_PCT[0] <= pct <= VOLTAGE_NORMAL_PCT[1]:
        return "normal"
    if VOLTAGE_CONTINGENCY_PCT[0] <= pct <= VOLTAGE_CONTINGENCY_PCT[1]:
        return "contingency"
    return "out_of_range"


def frequency_status(hz: float, nominal: float = 50.0) -> SupplyStatus:
    """Classify a grid frequency against TT 39/2015 (49.8–50.2 Hz normal, 49.5–50.5 Hz).

    Returns:
        ``normal`` within ±0.2 Hz, ``contingency`` within ±0.5 Hz, else ``out_of_range``
        (bounds inclusive).
    """
    deviation = denoise(abs(hz - nominal))
    if deviation <= FREQUENCY_NORMAL_HZ:
        return "normal"
    if deviation <= FREQUENCY_CONTINGENCY_HZ:
        return "contingency"
    return "out_of_range"
