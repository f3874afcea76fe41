"""Daily and seasonal shapes of Nam Định (REFERENCE.md §6) and local-time helpers.

Tables marked [U] in the reference are modelling assumptions; they live here, in one place, so a
better source changes one line. Hourly tables are hour-of-day means (00→23) and are interpolated
between hour centres; monthly tables are interpolated between mid-months, wrapping around the year.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from simulators.prng import FloatArray

# Việt Nam has had no daylight-saving time since 1975: a fixed offset is exact and cheap.
TZ_OFFSET_S: Final = 7 * 3600
DAY_S: Final = 86400
HOUR_S: Final = 3600
YEAR_DAYS: Final = 365.2425

_MONTH_X = (np.arange(12) + 0.5) * YEAR_DAYS / 12
_HOUR_X = np.arange(24) + 0.5

# §6.1 PM2.5 hourly multipliers (Hanoi shape; high 02–08, low 14–15).
PM25_HOURLY: Final = (
    1.06, 1.08, 1.11, 1.13, 1.14, 1.16, 1.18, 1.21, 1.16, 1.05, 0.95, 0.87,
    0.81, 0.77, 0.74, 0.74, 0.77, 0.85, 0.95, 1.02, 1.05, 1.06, 1.06, 1.06,
)  # fmt: skip
# Monthly PM2.5 means for a city-centre station, µg/m³ [U]: winter ≈ 3× summer (§6.1).
PM25_MONTHLY: Final = (62.0, 52.0, 42.0, 35.0, 25.0, 18.5, 17.0, 19.0, 24.0, 35.0, 48.0, 58.0)

# §6.2 NO2 hourly multipliers (traffic; rush hours 06–09 and 16–19:30).
NO2_HOURLY: Final = (
    0.86, 0.76, 0.71, 0.69, 0.71, 0.81, 1.07, 1.37, 1.42, 1.17, 0.96, 0.86,
    0.81, 0.79, 0.79, 0.86, 1.01, 1.27, 1.42, 1.37, 1.22, 1.12, 1.01, 0.93,
)  # fmt: skip
# Seasonal NO2 factor [U]: poorer winter mixing.
NO2_MONTHLY: Final = (1.35, 1.25, 1.1, 1.0, 0.85, 0.75, 0.72, 0.75, 0.85, 1.0, 1.2, 1.3)

# §6.3 O3 day profile printed in QĐ 1459 (µg/m³), hour → value; peak 97.7 at 15:00.
O3_POINTS: Final = (
    (0.0, 19.7), (3.0, 29.0), (6.0, 34.7), (9.0, 45.7), (12.0, 69.6), (14.0, 91.5),
    (15.0, 97.7), (17.0, 71.8), (19.0, 34.3), (22.0, 19.4),
)  # fmt: skip
# Seasonal O3 factor [U]: sunnier dry-season months higher, monsoon cloud lower.
O3_MONTHLY: Final = (0.8, 0.75, 0.85, 1.0, 1.05, 0.95, 0.9, 0.9, 1.0, 1.1, 1.0, 0.85)

# §6.4 monthly mean temperature °C [U] and daily range (5–7 °C).
TEMP_MONTHLY: Final = (16.5, 17.2, 19.7, 23.5, 27.2, 29.0, 29.3, 28.6, 27.6, 25.2, 21.9, 18.5)
TEMP_RANGE_MONTHLY: Final = (5.5, 5.0, 5.0, 6.0, 7.0, 7.0, 6.5, 6.5, 6.5, 7.0, 7.0, 6.5)
# The reference's day model is T̄ + (A/2)·cos(2π(h−14)/24) with the minimum near 05:00–06:00;
# a plain cosine puts the minimum at 02:00, so the day is warped: max 14:00, min 05:30.
TEMP_MAX_HOUR: Final = 14.0
TEMP_MIN_HOUR: Final = 5.5

# Relative humidity monthly mean %RH [U] (80–90 %; spring drizzle highest).
RH_MONTHLY: Final = (80.0, 86.0, 90.0, 89.0, 84.0, 82.0, 83.0, 86.0, 84.0, 81.0, 79.0, 78.0)
# Sea-level pressure monthly mean hPa [U] (winter monsoon high, summer low).
PRESSURE_MONTHLY: Final = (
    1020.0,
    1018.5,
    1016.0,
    1013.0,
    1008.5,
    1005.0,
    1004.0,
    1005.0,
    1009.0,
    1014.0,
    1017.5,
    1019.5,
)
# Monthly rainfall mm [U] (Red River Delta ≈ 1 700 mm/yr, wettest Aug–Sep ≈ 300 mm) and the
# share of hours with rain (winter: long drizzle, summer: short downpours).
RAIN_MONTHLY_MM: Final = (
    25.0,
    30.0,
    45.0,
    85.0,
    180.0,
    220.0,
    245.0,
    320.0,
    310.0,
    175.0,
    60.0,
    25.0,
)
RAIN_WET_FRACTION: Final = (0.10, 0.16, 0.18, 0.12, 0.09, 0.10, 0.11, 0.13, 0.12, 0.08, 0.06, 0.06)

# §6.5 sunrise / sunset for Nam Định on the 15th of each month, minutes after local midnight.
SUNRISE_MIN: Final = (393, 385, 365, 337, 318, 314, 323, 334, 342, 349, 364, 383)
SUNSET_MIN: Final = (1054, 1073, 1084, 1093, 1104, 1116, 1118, 1105, 1079, 1052, 1035, 1037)
LIGHT_ON_AFTER_SUNSET_MIN: Final = 10
LIGHT_OFF_BEFORE_SUNRISE_MIN: Final = 10
LIGHT_DIM_FROM_HOUR: Final = 22.0
LIGHT_DIM_LEVEL: Final = 50.0


# §6.6 household load, kW, per half hour (00:00, 00:30 … 23:30) [U]: night base, 05:30–07:00
# morning peak, 11–13 midday, 17:30–22:00 evening peak. The AC layer is added in summer.
def _half_hours(*segments: tuple[float, float, float], base: float) -> tuple[float, ...]:
    slots = [base] * 48
    for start, end, kw in segments:
        for i in range(int(start * 2), int(end * 2)):
            slots[i % 48] = kw
    return tuple(slots)


HOUSEHOLD_KW: Final = _half_hours(
    (5.0, 5.5, 0.3),
    (5.5, 7.0, 0.7),
    (7.0, 8.0, 0.3),
    (8.0, 11.0, 0.15),
    (11.0, 13.0, 0.45),
    (13.0, 17.0, 0.15),
    (17.0, 17.5, 0.45),
    (17.5, 20.0, 1.2),
    (20.0, 22.0, 0.85),
    (22.0, 23.0, 0.3),
    (23.0, 24.0, 0.15),
    base=0.12,
)  # ≈ 9.4 kWh/day for a household of factor 1 (households span 0.45–1.25)
HOUSEHOLD_AC_KW: Final = _half_hours(
    (12.0, 17.0, 0.3),
    (19.0, 23.0, 0.55),
    (23.0, 29.0, 0.35),  # air conditioning through the night (wraps past midnight)
    base=0.0,
)  # ≈ 5.8 kWh/day at full summer: summer ≈ 1.6× winter
# Summer weight of the AC layer: 0 below 22 °C monthly mean, 1 from 29 °C (≈ 1.5–2× winter use).
AC_TEMP_LOW: Final = 22.0
AC_TEMP_HIGH: Final = 29.0

# Solar: peak output as a fraction of capacity on a typical day [U] (drizzly Feb lowest).
SOLAR_PEAK_MONTHLY: Final = (0.55, 0.48, 0.52, 0.66, 0.78, 0.8, 0.8, 0.76, 0.76, 0.74, 0.66, 0.58)


def _f64(x: object) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def local_hour(t: npt.ArrayLike) -> FloatArray:
    """Hour of the local day in [0, 24) for UTC epoch seconds."""
    tt = np.asarray(t, dtype=np.float64)
    return np.asarray(np.mod(tt + TZ_OFFSET_S, DAY_S) / HOUR_S, dtype=np.float64)


def local_day(t: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Local calendar day number (days since 1970-01-01 local)."""
    tt = np.asarray(t, dtype=np.float64)
    return np.floor((tt + TZ_OFFSET_S) / DAY_S).astype(np.int64)


def day_start(day: npt.ArrayLike) -> FloatArray:
    """UTC epoch seconds of local midnight starting ``day``."""
    return np.asarray(day, dtype=np.float64) * DAY_S - TZ_OFFSET_S


def day_of_year(t: npt.ArrayLike) -> FloatArray:
    """Fractional local day of the year, 0 = 1 January (to within a day, good for seasons)."""
    tt = np.asarray(t, dtype=np.float64)
    return np.asarray(np.mod((tt + TZ_OFFSET_S) / DAY_S, YEAR_DAYS), dtype=np.float64)


def monthly(table: tuple[float, ...], t: npt.ArrayLike) -> FloatArray:
    """A monthly table interpolated between mid-months at times ``t``."""
    return _f64(np.interp(day_of_year(t), _MONTH_X, np.asarray(table), period=YEAR_DAYS))


def monthly_at_doy(table: tuple[float, ...], doy: npt.ArrayLike) -> FloatArray:
    """A monthly table interpolated at fractional days of the year."""
    return _f64(
        np.interp(np.asarray(doy, dtype=np.float64), _MONTH_X, np.asarray(table), period=YEAR_DAYS)
    )


def hourly(table: tuple[float, ...], hour: npt.ArrayLike) -> FloatArray:
    """An hour-of-day table (hourly means) interpolated between hour centres."""
    return _f64(
        np.interp(np.asarray(hour, dtype=np.float64), _HOUR_X, np.asarray(table), period=24.0)
    )


def o3_profile(hour: npt.ArrayLike) -> FloatArray:
    """The QĐ 1459 O3 day profile (µg/m³) at fractional hours."""
    xs = np.array([p[0] for p in O3_POINTS])
    ys = np.array([p[1] for p in O3_POINTS])
    return _f64(np.interp(np.asarray(hour, dtype=np.float64), xs, ys, period=24.0))


def temperature_day_shape(hour: npt.ArrayLike) -> FloatArray:
    """cos θ of the warped day: +1 at 14:00, −1 at 05:30, mean 0 over the day."""
    h = np.asarray(hour, dtype=np.float64)
    since_max = np.mod(h - TEMP_MAX_HOUR, 24.0)
    cooling = 24.0 - (TEMP_MAX_HOUR - TEMP_MIN_HOUR)  # 14:00 → 05:30 next day
    theta = np.where(
        since_max < cooling,
        np.pi * since_max / cooling,
        np.pi + np.pi * (since_max - cooling) / (24.0 - cooling),
    )
    return np.asarray(np.cos(theta), dtype=np.float64)


def sun_times(day: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Sunrise and sunset (local hours) of local days, from the mid-month table."""
    noon = day_start(day) + 12 * HOUR_S
    doy = day_of_year(noon)
    rise = monthly_at_doy(tuple(float(m) for m in SUNRISE_MIN), doy) / 60.0
    sets = monthly_at_doy(tuple(float(m) for m in SUNSET_MIN), doy) / 60.0
    return rise, sets


def half_hour_profile(table: tuple[float, ...], hour: npt.ArrayLike) -> FloatArray:
    """Value of a 48-slot (half-hourly, piecewise constant) profile at fractional hours."""
    h = np.asarray(hour, dtype=np.float64)
    slot = np.clip(np.floor(h * 2).astype(np.int64), 0, 47)
    return np.asarray(np.asarray(table)[slot], dtype=np.float64)


def half_hour_cumulative(table: tuple[float, ...], hour: npt.ArrayLike) -> FloatArray:
    """∫₀ʰ of a 48-slot profile, in value·hours (kWh for a kW profile); exact, piecewise linear."""
    arr = np.asarray(table, dtype=np.float64)
    edges = np.concatenate(([0.0], np.cumsum(arr) * 0.5))
    h = np.clip(np.asarray(hour, dtype=np.float64), 0.0, 24.0)
    slot = np.clip(np.floor(h * 2).astype(np.int64), 0, 47)
    return np.asarray(edges[slot] + arr[slot] * (h - slot * 0.5), dtype=np.float64)
