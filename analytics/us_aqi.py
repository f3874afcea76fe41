"""US EPA AQI (Technical Assistance Document EPA-454/B-24-002, May 2024), for comparison.

dothi publishes VN_AQI (:mod:`analytics.aqi`); the US index is offered because third parties and
residents compare with AirNow-style apps. Breakpoints are REFERENCE.md §2 (the 2024 table: PM2.5
Good/Moderate boundary 9.0 µg/m³, one Hazardous segment 301–500).

How it differs from VN_AQI:

- Breakpoints are in native units: PM in µg/m³, O3 and CO in ppm, SO2 and NO2 in ppb. dothi
  stores every gas in µg/m³, so inputs are converted with the 25 °C factors of the metric registry
  (:mod:`core.metrics`: NO2 1.88, O3 1.96, SO2 2.62 µg/m³ per ppb; CO 1145 µg/m³ per ppm).
- Inputs are truncated before the lookup: PM2.5 and CO to 0.1, O3 to 0.001 ppm, PM10, SO2 and
  NO2 to an integer. The table has gaps (9.0 | 9.1) that truncation never falls into.
- Averaging times differ: PM 24 h (or the NowCast, :func:`analytics.aqi.nowcast`, hourly), O3 8 h
  (1 h only from 0.125 ppm), CO 8 h, SO2 and NO2 1 h.
- There is no rule requiring PM.

Choices where the TAD leaves room: the index is rounded half up like VN_AQI; above the top
breakpoint (EPA's "beyond the AQI") it is capped at 500; 1 h SO2 above 304 ppb without a 24 h
mean of at least 305 ppb is reported as 200, the top of the 1 h scale (**unverified** against the
TAD's SO2 section).
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Literal

from analytics._shared import round_half_up, truncate
from analytics.aqi import POLLUTANTS, AqiResult, Category, category_for, make_result
from core.metrics import METRICS

if TYPE_CHECKING:
    from collections.abc import Mapping

UsPollutant = Literal["pm25", "pm10", "o3_8h", "o3_1h", "co_8h", "so2_1h", "so2_24h", "no2_1h"]

# (C_lo, C_hi, I_lo, I_hi) rows of TAD 2024 Table 6, native units (see _NATIVE).
_Row = tuple[float, float, int, int]
US_BREAKPOINTS: Final[Mapping[UsPollutant, tuple[_Row, ...]]] = MappingProxyType(
    {
        "pm25": (
            (0.0, 9.0, 0, 50),
            (9.1, 35.4, 51, 100),
            (35.5, 55.4, 101, 150),
            (55.5, 125.4, 151, 200),
            (125.5, 225.4, 201, 300),
            (225.5, 325.4, 301, 500),
        ),
        "pm10": (
            (0, 54, 0, 50),
            (55, 154, 51, 100),
            (155, 254, 101, 150),
            (255, 354, 151, 200),
            (355, 424, 201, 300),
            (425, 604, 301, 500),
        ),
        # 8 h O3 does not define indices above 300; above 0.200 ppm the 1 h value is used.
        "o3_8h": (
            (0.000, 0.054, 0, 50),
            (0.055, 0.070, 51, 100),
            (0.071, 0.085, 101, 150),
            (0.086, 0.105, 151, 200),
            (0.106, 0.200, 201, 300),
        ),
        # 1 h O3 starts at AQI 101; below 0.125 ppm only the 8 h value indexes O3.
        "o3_1h": (
            (0.125, 0.164, 101, 150),
            (0.165, 0.204, 151, 200),
            (0.205, 0.404, 201, 300),
            (0.405, 0.604, 301, 500),
        ),
        "co_8h": (
            (0.0, 4.4, 0, 50),
            (4.5, 9.4, 51, 100),
            (9.5, 12.4, 101, 150),
            (12.5, 15.4, 151, 200),
            (15.5, 30.4, 201, 300),
            (30.5, 50.4, 301, 500),
        ),
        # 1 h SO2 does not define indices of 200 and above; the 24 h mean does.
        "so2_1h": (
            (0, 35, 0, 50),
            (36, 75, 51, 100),
            (76, 185, 101, 150),
            (186, 304, 151, 200),
        ),
        "so2_24h": (
            (305, 604, 201, 300),
            (605, 1004, 301, 500),
        ),
        "no2_1h": (
            (0, 53, 0, 50),
            (54, 100, 51, 100),
            (101, 360, 101, 150),
            (361, 649, 151, 200),
            (650, 1249, 201, 300),
            (1250, 2049, 301, 500),
        ),
    }
)

# pollutant → (canonical metric, native unit, decimals kept by truncation)
_NATIVE: Final[Mapping[UsPollutant, tuple[str, str, int]]] = MappingProxyType(
    {
        "pm25": ("pm25", "µg/m³", 1),
        "pm10": ("pm10", "µg/m³", 0),
        "o3_8h": ("o3", "ppm", 3),
        "o3_1h": ("o3", "ppm", 3),
        "co_8h": ("co", "ppm", 1),
        "so2_1h": ("so2", "ppb", 0),
        "so2_24h": ("so2", "ppb", 0),
        "no2_1h": ("no2", "ppb", 0),
    }
)
# Past the top of these tables the index is not capped but handed to another averaging time.
_HANDED_OFF: Final = frozenset({"o3_8h", "so2_1h"})

# EPA category names and colours (TAD Table 1). The RGB values are those of VN_AQI; the
# Vietnamese names are dothi's translation, not an official one.
US_CATEGORIES: Final[tuple[Category, ...]] = (
    Category(1, "good", "Tốt", "Good", "Xanh", "Green", (0, 228, 0), 0, 50),
    Category(2, "moderate", "Trung bình", "Moderate", "Vàng", "Yellow", (255, 255, 0), 51, 100),
    Category(
        3,
        "unhealthy_for_sensitive_groups",
        "Không tốt cho nhóm nhạy cảm",
        "Unhealthy for Sensitive Groups",
        "Da cam",
        "Orange",
        (255, 126, 0),
        101,
        150,
    ),
    Category(4, "unhealthy", "Không tốt", "Unhealthy", "Đỏ", "Red", (255, 0, 0), 151, 200),
    Category(
        5, "very_unhealthy", "Rất không tốt", "Very Unhealthy", "Tím", "Purple", (143, 63, 151),
        201, 300,
    ),
    Category(6, "hazardous", "Nguy hại", "Hazardous", "Nâu", "Maroon", (126, 0, 35), 301, 500),
)  # fmt: skip


def us_category(value: int) -> Category:
    """The US AQI category of an integer index value.

    Raises:
        ValueError: for a value outside 0…500.
    """
    return category_for(value, US_CATEGORIES)


def to_native(pollutant: UsPollutant, ugm3: float) -> float:
    """Convert a concentration in µg/m³ to the table's unit (ppm for O3/CO, ppb for SO2/NO2)."""
    metric, unit, _ = _NATIVE[pollutant]
    if unit == "µg/m³":
        return ugm3
    # The registry maps ppb/ppm to µg/m³ (canonical = value × scale); invert it here.
    return ugm3 / METRICS[metric].units[unit].scale


def us_sub_index_native(pollutant: UsPollutant, value: float) -> int | None:
    """The US sub-index of a concentration already in the table's unit.

    Args:
        pollutant: table name: ``pm25``, ``pm10`` (µg/m³), ``o3_8h``, ``o3_1h``, ``co_8h``
            (ppm), ``so2_1h``, ``so2_24h``, ``no2_1h`` (ppb).
        value: the concentration; truncated as the TAD requires before the lookup. Negative
            values count as 0.

    Returns:
        The index (capped at 500), or ``None`` where the table has no value: 1 h O3 below
        0.125 ppm, 24 h SO2 below 305 ppb, 8 h O3 above 0.200 ppm (use 1 h) and 1 h SO2 above
        304 ppb (use 24 h).

    Raises:
        ValueError: for NaN or an unknown pollutant.
    """
    if pollutant not in US_BREAKPOINTS:
        raise ValueError(f"unknown US AQI table {pollutant!r}; expected one of {sorted(_NATIVE)}")
    if math.isnan(value):
        raise ValueError(f"{pollutant} concentration is NaN")
    rows = US_BREAKPOINTS[pollutant]
    c = truncate(max(value, 0.0), _NATIVE[pollutant][2])
    if c < rows[0][0]:
        return None
    if c > rows[-1][1]:
        return None if pollutant in _HANDED_OFF else 500
    for c_lo, c_hi, i_lo, i_hi in rows:
        if c <= c_hi:
            return round_half_up((i_hi - i_lo) / (c_hi - c_lo) * (c - c_lo) + i_lo)
    raise AssertionError("unreachable: c is within the table")  # pragma: no cover


def us_sub_index(pollutant: UsPollutant, ugm3: float) -> int | None:
    """The US sub-index of a concentration in µg/m³ (dothi's unit for every pollutant).

    See :func:`us_sub_index_native` for the tables and the ``None`` cases.
    """
    return us_sub_index_native(pollutant, to_native(pollutant, ugm3))


def us_aqi(
    *,
    pm25: float | None = None,
    pm10: float | None = None,
    o3_8h: float | None = None,
    o3_1h: float | None = None,
    co_8h: float | None = None,
    so2_1h: float | None = None,
    so2_24h: float | None = None,
    no2_1h: float | None = None,
) -> AqiResult | None:
    """The US EPA AQI from concentrations in µg/m³, each for its averaging time.

    Args:
        pm25: 24 h mean, or the NowCast (:func:`analytics.aqi.nowcast`) for an hourly value.
        pm10: 24 h mean or NowCast.
        o3_8h: 8 h mean. Above 0.200 ppm (392 µg/m³) it does not index O3; pass ``o3_1h``.
        o3_1h: 1 h mean; indexes O3 from 0.125 ppm (245 µg/m³). O3 is the larger of the two.
        co_8h: 8 h mean.
        so2_1h: 1 h mean; indexes SO2 up to 304 ppb (796.5 µg/m³).
        so2_24h: 24 h mean; indexes SO2 when the 1 h value is above 304 ppb.
        no2_1h: 1 h mean.

    Returns:
        The AQI with ``method="US_EPA_AQI"``; ``None`` when nothing could be indexed.
    """
    pairs: tuple[tuple[UsPollutant, float | None], ...] = (
        ("pm25", pm25),
        ("pm10", pm10),
        ("o3_8h", o3_8h),
        ("o3_1h", o3_1h),
        ("co_8h", co_8h),
        ("so2_1h", so2_1h),
        ("so2_24h", so2_24h),
        ("no2_1h", no2_1h),
    )
    given = {name: c for name, c in pairs if c is not None and not math.isnan(c)}
    per_table = {name: us_sub_index(name, conc) for name, conc in given.items()}

    if "so2_1h" in given and per_table["so2_1h"] is None:
        # 1 h above 304 ppb: the 24 h mean decides, and the index is at least the 1 h top (200).
        per_table["so2_1h"] = max(200, per_table.get("so2_24h") or 0)
        per_table.pop("so2_24h", None)

    subs: dict[str, int] = {}
    inputs: dict[str, float] = {}
    for name, idx in per_table.items():
        if idx is None:
            continue
        pollutant = _NATIVE[name][0]
        subs[pollutant] = max(idx, subs.get(pollutant, idx))
        inputs[name] = given[name]
    if not subs:
        return None
    return make_result(subs, inputs, "US_EPA_AQI", US_CATEGORIES, POLLUTANTS)
