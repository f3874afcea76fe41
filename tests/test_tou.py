"""Time-of-use bands (TT 16/2014/TT-BCT Điều 5), energy splitting and counter consumption."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from analytics.tou import (
    TT16_2014,
    TouSchedule,
    band,
    band_durations,
    consumption_from_counter,
    counter_intervals,
    split_energy,
)

# Naive datetimes are local time by contract; aware ones are tested separately.
MONDAY = datetime(2025, 6, 9)  # noqa: DTZ001
SATURDAY = datetime(2025, 6, 14)  # noqa: DTZ001
SUNDAY = datetime(2025, 6, 15)  # noqa: DTZ001


def at(day: datetime, hh: int, mm: int = 0) -> datetime:
    return day.replace(hour=hh, minute=mm)


# --- band() -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hh", "mm", "expected"),
    [
        (0, 0, "offpeak"),
        (3, 59, "offpeak"),
        (4, 0, "normal"),
        (9, 29, "normal"),
        (9, 30, "peak"),
        (11, 29, "peak"),
        (11, 30, "normal"),
        (16, 59, "normal"),
        (17, 0, "peak"),
        (19, 59, "peak"),
        (20, 0, "normal"),
        (21, 59, "normal"),
        (22, 0, "offpeak"),
        (23, 59, "offpeak"),
    ],
)
def test_weekday_bands(hh: int, mm: int, expected: str) -> None:
    assert band(at(MONDAY, hh, mm)) == expected
    assert band(at(SATURDAY, hh, mm)) == expected  # Saturday is a working day for TOU


@pytest.mark.parametrize(
    ("hh", "mm", "expected"),
    [
        (3, 59, "offpeak"),
        (4, 0, "normal"),
        (9, 30, "normal"),  # no peak on Sunday
        (18, 0, "normal"),
        (21, 59, "normal"),
        (22, 0, "offpeak"),
    ],
)
def test_sunday_bands(hh: int, mm: int, expected: str) -> None:
    assert band(at(SUNDAY, hh, mm)) == expected


def test_band_converts_aware_times() -> None:
    # 02:30 UTC Monday is 09:30 local: peak. 10:00 UTC Monday is 17:00 local: peak.
    assert band(datetime(2025, 6, 9, 2, 30, tzinfo=UTC)) == "peak"
    assert band(datetime(2025, 6, 9, 10, 0, tzinfo=UTC)) == "peak"
    # 16:00 UTC Sunday 15 June is 23:00 local Sunday: off-peak.
    assert band(datetime(2025, 6, 15, 16, 0, tzinfo=UTC)) == "offpeak"


def test_schedule_must_cover_the_day() -> None:
    with pytest.raises(ValueError, match="contiguously"):
        TouSchedule(weekday=((0, 600, "normal"), (700, 1440, "peak")), sunday=TT16_2014.sunday)
    with pytest.raises(ValueError, match="00:00–24:00"):
        TouSchedule(weekday=((0, 1400, "normal"),), sunday=TT16_2014.sunday)


# --- split_energy() -----------------------------------------------------------------------------


def test_hour_straddling_0930_splits_in_half() -> None:
    split = split_energy([(at(MONDAY, 9), at(MONDAY, 10), 1.0)])
    assert split == pytest.approx({"peak": 0.5, "normal": 0.5, "offpeak": 0.0})


def test_quarter_hours_around_a_boundary() -> None:
    # 09:15–09:45: 15 min normal, 15 min peak.
    split = split_energy([(at(MONDAY, 9, 15), at(MONDAY, 9, 45), 0.3)])
    assert split == pytest.approx({"peak": 0.15, "normal": 0.15, "offpeak": 0.0})


def test_whole_weekday_and_sunday() -> None:
    # Mon–Sat: off-peak 4 + 2 = 6 h, normal 5.5 + 5.5 + 2 = 13 h, peak 2 + 3 = 5 h.
    weekday = split_energy([(MONDAY, MONDAY + timedelta(days=1), 24.0)])
    assert weekday == pytest.approx({"peak": 5.0, "normal": 13.0, "offpeak": 6.0})
    # Sunday: off-peak 6 h, normal 18 h.
    sunday = split_energy([(SUNDAY, SUNDAY + timedelta(days=1), 24.0)])
    assert sunday == pytest.approx({"peak": 0.0, "normal": 18.0, "offpeak": 6.0})


def test_interval_across_midnight_sunday_to_monday() -> None:
    # Sunday 21:00 → Monday 05:00, 8 kWh: Sun 21–22 normal, 22–24 off-peak, Mon 00–04 off-peak,
    # 04–05 normal → normal 2, off-peak 6.
    split = split_energy([(at(SUNDAY, 21), at(SUNDAY, 21) + timedelta(hours=8), 8.0)])
    assert split == pytest.approx({"peak": 0.0, "normal": 2.0, "offpeak": 6.0})


def test_hourly_intervals_add_up() -> None:
    hours = [(at(MONDAY, h), at(MONDAY, h + 1), 1.0) for h in range(16, 21)]
    # 16–17 normal, 17–20 peak, 20–21 normal.
    assert split_energy(hours) == pytest.approx({"peak": 3.0, "normal": 2.0, "offpeak": 0.0})


def test_split_energy_with_aware_utc_intervals() -> None:
    start = datetime(2025, 6, 9, 2, tzinfo=UTC)  # 09:00 local
    split = split_energy([(start, start + timedelta(hours=1), 2.0)])
    assert split == pytest.approx({"peak": 1.0, "normal": 1.0, "offpeak": 0.0})


def test_band_durations() -> None:
    durations = band_durations(at(MONDAY, 11), at(MONDAY, 12))
    assert durations == {
        "peak": timedelta(minutes=30),
        "normal": timedelta(minutes=30),
        "offpeak": timedelta(0),
    }


def test_split_energy_rejects_bad_intervals() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        split_energy([(at(MONDAY, 10), at(MONDAY, 9), 1.0)])
    with pytest.raises(ValueError, match="zero-length"):
        split_energy([(at(MONDAY, 10), at(MONDAY, 10), 1.0)])
    with pytest.raises(ValueError, match="nan"):
        split_energy([(at(MONDAY, 9), at(MONDAY, 10), math.nan)])
    # An empty interval without energy is harmless.
    assert split_energy([(at(MONDAY, 10), at(MONDAY, 10), 0.0)])["normal"] == 0.0


# --- Counter consumption ------------------------------------------------------------------------

T0 = datetime(2025, 6, 9, 2, tzinfo=UTC)  # 09:00 local, Monday


def hourly(n: int) -> list[datetime]:
    return [T0 + timedelta(hours=i) for i in range(n)]


def test_counter_with_reset() -> None:
    # 100 → 101.5 → 103 → 0.5 (reset: counts 0.5) → 2.0.
    total, resets, per = consumption_from_counter(hourly(5), [100.0, 101.5, 103.0, 0.5, 2.0])
    assert total == pytest.approx(5.0)
    assert resets == 1
    assert per.tolist() == pytest.approx([1.5, 1.5, 0.5, 1.5])


def test_counter_without_reset() -> None:
    result = consumption_from_counter(hourly(3), [10.0, 10.0, 12.25])
    assert result.total == pytest.approx(2.25)
    assert result.resets == 0


def test_counter_jitter() -> None:
    # Without tolerance the 0.001 dip is a reset: 0 + 9.999 + 1.001 = 11.
    strict = consumption_from_counter(hourly(3), [10.0, 9.999, 11.0])
    assert strict.total == pytest.approx(11.0)
    assert strict.resets == 1
    tolerant = consumption_from_counter(hourly(3), [10.0, 9.999, 11.0], jitter_kwh=0.01)
    assert tolerant.total == pytest.approx(1.001)
    assert tolerant.resets == 0


def test_counter_single_reading() -> None:
    result = consumption_from_counter(hourly(1), [42.0])
    assert result.total == 0.0
    assert result.resets == 0
    assert result.per_interval.size == 0


def test_counter_numpy_input() -> None:
    ts = np.array(["2025-06-09T02:00", "2025-06-09T02:30", "2025-06-09T03:00"], dtype="datetime64")
    result = consumption_from_counter(ts, np.array([5.0, 1.0, 1.25]))
    assert result.total == pytest.approx(1.25)
    assert result.resets == 1


def test_counter_validation() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        consumption_from_counter([T0, T0], [1.0, 2.0])
    with pytest.raises(ValueError, match="non-negative"):
        consumption_from_counter(hourly(2), [1.0, -2.0])
    with pytest.raises(ValueError, match="non-negative"):
        consumption_from_counter(hourly(2), [1.0, math.nan])
    with pytest.raises(ValueError, match="readings"):
        consumption_from_counter(hourly(3), [1.0, 2.0])
    with pytest.raises(ValueError, match="naive"):
        consumption_from_counter([datetime(2025, 6, 9)], [1.0])  # noqa: DTZ001


def test_counter_intervals_feed_split_energy() -> None:
    # Readings at 09:00, 10:00, 11:00 local: 1 kWh then 2 kWh → normal 0.5, peak 0.5 + 2.
    intervals = counter_intervals(hourly(3), [100.0, 101.0, 103.0])
    assert intervals == [
        (T0, T0 + timedelta(hours=1), 1.0),
        (T0 + timedelta(hours=1), T0 + timedelta(hours=2), 2.0),
    ]
    assert split_energy(intervals) == pytest.approx({"peak": 2.5, "normal": 0.5, "offpeak": 0.0})
