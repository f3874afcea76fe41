"""Sunrise and sunset in Nam Định, for street-lighting checks.

REFERENCE.md §6.5 gives sunrise and sunset for the 15th of each month at 20.42° N, 106.17° E
(NOAA formula, local time UTC+7). Other days are interpolated linearly between the neighbouring
15ths; the curve is smooth enough that the error stays within a couple of minutes, far below the
margin a lighting rule allows.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Final

from analytics._shared import as_local

# (sunrise, sunset) on the 15th of each month, minutes after local midnight.
_TABLE: Final[tuple[tuple[int, int], ...]] = (
    (6 * 60 + 33, 17 * 60 + 34),  # Jan
    (6 * 60 + 25, 17 * 60 + 53),  # Feb
    (6 * 60 + 5, 18 * 60 + 4),  # Mar
    (5 * 60 + 37, 18 * 60 + 13),  # Apr
    (5 * 60 + 18, 18 * 60 + 24),  # May
    (5 * 60 + 14, 18 * 60 + 36),  # Jun
    (5 * 60 + 23, 18 * 60 + 38),  # Jul
    (5 * 60 + 34, 18 * 60 + 25),  # Aug
    (5 * 60 + 42, 17 * 60 + 59),  # Sep
    (5 * 60 + 49, 17 * 60 + 32),  # Oct
    (6 * 60 + 4, 17 * 60 + 15),  # Nov
    (6 * 60 + 23, 17 * 60 + 17),  # Dec
)


def _anchor(year: int, month: int) -> date:
    """The 15th of a month, months counted past December or before January."""
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    return date(year, month, 15)


def sun_times(day: date) -> tuple[time, time]:
    """Local sunrise and sunset in Nam Định on ``day`` (to the minute).

    Example: ``sun_times(date(2026, 6, 15))`` is (05:14, 18:36).
    """
    month = day.month if day.day >= 15 else day.month - 1
    before, after = _anchor(day.year, month), _anchor(day.year, month + 1)
    frac = (day - before).days / (after - before).days
    lo, hi = _TABLE[(before.month - 1) % 12], _TABLE[(after.month - 1) % 12]
    rise = round(lo[0] + (hi[0] - lo[0]) * frac)
    sets = round(lo[1] + (hi[1] - lo[1]) * frac)
    return time(rise // 60, rise % 60), time(sets // 60, sets % 60)


def is_daylight(at: datetime, margin: timedelta = timedelta(0)) -> bool:
    """Whether ``at`` is after sunrise + ``margin`` and before sunset − ``margin`` (local time).

    Args:
        at: an aware datetime (converted to Asia/Ho_Chi_Minh) or naive local time.
        margin: how far inside the day to start and stop; a light may switch on a little before
            sunset and off a little after sunrise without counting as "on in daylight".
    """
    local = as_local(at)
    rise, sets = sun_times(local.date())
    start = datetime.combine(local.date(), rise) + margin
    end = datetime.combine(local.date(), sets) - margin
    return start <= local < end
