"""QCVN 05:2023 exceedances, QCVN 26:2010 noise limits, flood alarm levels, supply quality."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from analytics._shared import VN_UTC_OFFSET_HOURS
from analytics.regulations import (
    GAUGES,
    QCVN05_2023,
    alarm_level,
    alarm_severity,
    find_exceedances,
    frequency_status,
    noise_limit,
    qcvn05_limit,
    voltage_status,
)

H = timedelta(hours=1)
T0 = datetime(2025, 6, 9, 0, tzinfo=UTC)  # 07:00 local


def series(start: datetime, values: Sequence[float | None]) -> list[tuple[datetime, float | None]]:
    return [(start + i * H, v) for i, v in enumerate(values)]


# --- QCVN 05:2023 limits ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pollutant", "averaging", "on", "expected"),
    [
        ("pm25", "24h", date(2025, 12, 31), 50.0),
        ("pm25", "24h", date(2026, 1, 1), 45.0),
        ("pm25", "year", date(2026, 6, 1), 25.0),
        ("pm25", "1h", date(2025, 6, 1), None),
        ("pm10", "24h", date(2025, 6, 1), 100.0),
        ("pm10", "year", date(2025, 6, 1), 50.0),
        ("so2", "1h", date(2025, 6, 1), 350.0),
        ("so2", "24h", date(2025, 6, 1), 125.0),
        ("no2", "1h", date(2025, 6, 1), 200.0),
        ("no2", "year", date(2025, 6, 1), 40.0),
        ("o3", "1h", date(2025, 6, 1), 200.0),
        ("o3", "8h", date(2025, 6, 1), 120.0),
        ("o3", "24h", date(2025, 6, 1), None),
        ("co", "1h", date(2025, 6, 1), 30_000.0),
        ("co", "8h", date(2025, 6, 1), 10_000.0),
        ("tsp", "24h", date(2025, 6, 1), 200.0),
        ("temperature", "1h", date(2025, 6, 1), None),
    ],
)
def test_qcvn05_limits(pollutant: str, averaging: str, on: date, expected: float | None) -> None:
    assert qcvn05_limit(pollutant, averaging, on) == expected  # type: ignore[arg-type]


def test_pm25_24h_limits_do_not_overlap() -> None:
    staged = [lim for lim in QCVN05_2023 if lim.pollutant == "pm25" and lim.averaging == "24h"]
    assert len(staged) == 2
    for day in (date(2023, 9, 12), date(2025, 12, 31), date(2026, 1, 1), date(2030, 1, 1)):
        assert sum(lim.applies_on(day) for lim in staged) == 1


# --- Exceedances ----------------------------------------------------------------------------------


def test_1h_exceedance_is_strictly_above_the_limit() -> None:
    found = find_exceedances("no2", series(T0, [150.0, 200.0, 201.0, None]))
    assert [(e.averaging, e.start, e.end, e.value, e.limit) for e in found] == [
        ("1h", T0 + 2 * H, T0 + 3 * H, 201.0, 200.0)
    ]


def test_rolling_8h_means() -> None:
    # Eight hours of 100 then eight of 140. The 8 h mean ending at hour j (m = j − 7 hours of
    # 140) is (800 + 40·m)/8: 120 at j = 11 (complies), 125, 130, 135, 140 at j = 12…15.
    found = find_exceedances("o3", series(T0, [100.0] * 8 + [140.0] * 8))
    assert [e.averaging for e in found] == ["8h"] * 4
    assert [e.value for e in found] == pytest.approx([125.0, 130.0, 135.0, 140.0])
    assert [e.start for e in found] == [T0 + 5 * H, T0 + 6 * H, T0 + 7 * H, T0 + 8 * H]
    assert [e.end - e.start for e in found] == [8 * H] * 4
    assert all(e.hours == 8 and e.limit == 120.0 for e in found)


def test_8h_mean_needs_six_hours() -> None:
    # Windows ending at hours 5, 6, 7 hold 6, 7, 8 hours (the series starts at hour 0).
    found = find_exceedances("o3", series(T0, [130.0] * 8))
    assert [e.hours for e in found] == [6, 7, 8]
    assert [e.start for e in found] == [T0 - 2 * H, T0 - H, T0]
    # Five hours are never enough; a gap inside a window counts as missing.
    assert find_exceedances("o3", series(T0, [130.0] * 5)) == []
    gappy = series(T0, [130.0, None, None, 130.0, 130.0, None, 130.0, 130.0])
    assert find_exceedances("o3", gappy) == []


def test_24h_mean_is_per_local_day() -> None:
    # 72 hours from 2025-06-09 00:00 UTC (07:00 local): 60 on the local day 2025-06-10, else 40.
    start_local_day = datetime(2025, 6, 9, 17, tzinfo=UTC)  # 2025-06-10 00:00 local
    values: list[float | None] = [
        60.0 if start_local_day <= T0 + i * H < start_local_day + 24 * H else 40.0
        for i in range(72)
    ]
    found = find_exceedances("pm25", series(T0, values))
    # The first local day has only 17 hours (07:00–23:00) and the last 7: neither is evaluated.
    assert [(e.averaging, e.start, e.end, e.value, e.limit, e.hours) for e in found] == [
        ("24h", start_local_day, start_local_day + 24 * H, 60.0, 50.0, 24)
    ]


def test_24h_needs_18_hours() -> None:
    day = datetime(2025, 6, 9, 17, tzinfo=UTC)
    assert find_exceedances("pm10", series(day, [150.0] * 17)) == []
    found = find_exceedances("pm10", series(day, [150.0] * 18))
    assert [(e.averaging, e.hours, e.value) for e in found] == [("24h", 18, 150.0)]


def test_pm25_limit_tightens_on_2026_01_01() -> None:
    new_year = datetime(2025, 12, 31, 17, tzinfo=UTC)  # 2026-01-01 00:00 local
    before = find_exceedances("pm25", series(new_year - 24 * H, [47.0] * 24))
    after = find_exceedances("pm25", series(new_year, [47.0] * 24))
    assert before == []
    assert [(e.start, e.limit) for e in after] == [(new_year, 45.0)]


def test_numpy_input_and_ordering() -> None:
    times = np.array(
        [np.datetime64("2025-06-09T00:00") + np.timedelta64(i, "h") for i in range(10)]
    )
    values = np.array([250.0, 100.0, 100.0, math.nan, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0])
    found = find_exceedances("o3", (times[::-1], values[::-1]))  # order does not matter
    # 1 h: 250 > 200 at hour 0. 8 h windows holding hour 0 (hour 3 is missing):
    # ending at 5: 5 hours, too few; at 6: (250 + 5·100)/6 = 125; at 7: (250 + 6·100)/7 = 121.4;
    # at 8 (hours 1…8): 100. Same start: 1 h before 8 h.
    assert [(e.averaging, e.start, round(e.value, 1), e.hours) for e in found] == [
        ("8h", T0 - H, 125.0, 6),
        ("1h", T0, 250.0, 1),
        ("8h", T0, 121.4, 7),
    ]


def test_a_year_of_hours_with_one_bad_day() -> None:
    # 2025 in local days: 365 × 24 hours from 2024-12-31 17:00 UTC, PM2.5 30 µg/m³ except the
    # local day 2025-11-20 (day 323 of the year, index 323) at 80.
    start = np.datetime64("2024-12-31T17:00")
    times = start + np.arange(365 * 24) * np.timedelta64(1, "h")
    values = np.full(365 * 24, 30.0)
    bad_day = 323  # 2025-01-01 + 323 days = 2025-11-20
    values[bad_day * 24 : (bad_day + 1) * 24] = 80.0
    found = find_exceedances("pm25", (times, values))
    assert [(e.averaging, e.start, e.value, e.limit) for e in found] == [
        ("24h", datetime(2025, 11, 19, 17, tzinfo=UTC), 80.0, 50.0)
    ]


def test_series_validation() -> None:
    with pytest.raises(ValueError, match="naive"):
        find_exceedances("no2", [(datetime(2025, 6, 9, 0), 1.0)])  # noqa: DTZ001
    with pytest.raises(ValueError, match="start of their hour"):
        find_exceedances("no2", [(T0 + timedelta(minutes=30), 1.0)])
    with pytest.raises(ValueError, match="same hour"):
        find_exceedances("no2", [(T0, 1.0), (T0, 2.0)])
    assert find_exceedances("no2", []) == []


def test_aware_non_utc_times_are_converted() -> None:
    local = ZoneInfo("Asia/Ho_Chi_Minh")
    found = find_exceedances("no2", [(datetime(2025, 6, 9, 7, tzinfo=local), 300.0)])
    assert [e.start for e in found] == [T0]


def test_vietnam_has_a_fixed_utc_offset() -> None:
    # find_exceedances groups local days with a fixed offset; the tz database must agree.
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    for year in (1980, 2000, 2024, 2030):
        for month in (1, 7):
            offset = datetime(year, month, 1, tzinfo=tz).utcoffset()
            assert offset == timedelta(hours=VN_UTC_OFFSET_HOURS)


# --- QCVN 26:2010 noise -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("area", "at", "expected"),
    [
        ("special", time(5, 59), 45),
        ("special", time(6, 0), 55),
        ("special", time(20, 59, 59), 55),
        ("special", time(21, 0), 45),
        ("normal", time(0, 0), 55),
        ("normal", time(6, 0), 70),
        ("normal", time(12, 0), 70),
        ("normal", time(21, 0), 55),
    ],
)
def test_noise_limit(area: str, at: time, expected: int) -> None:
    assert noise_limit(area, at) == expected  # type: ignore[arg-type]


def test_noise_limit_converts_aware_datetimes() -> None:
    # 23:30 UTC is 06:30 local the next day: daytime.
    assert noise_limit("normal", datetime(2025, 1, 1, 23, 30, tzinfo=UTC)) == 70
    # 14:30 UTC is 21:30 local: night-time.
    assert noise_limit("normal", datetime(2025, 1, 1, 14, 30, tzinfo=UTC)) == 55
    # A naive datetime is local.
    assert noise_limit("special", datetime(2025, 1, 1, 14, 30)) == 55  # noqa: DTZ001
    with pytest.raises(ValueError, match="area type"):
        noise_limit("industrial", time(12))  # type: ignore[arg-type]


# --- Flood alarm levels ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gauge", "stage", "expected"),
    [
        ("nam_dinh", 2.72, 0),  # 16/6/2022 bulletin: 0.48 below BĐ I
        ("nam_dinh", 3.19, 0),
        ("nam_dinh", 3.20, 1),
        ("nam_dinh", 3.79, 1),
        ("nam_dinh", 3.80, 2),
        ("nam_dinh", 4.29, 2),
        ("nam_dinh", 4.30, 3),
        ("nam_dinh", 5.04, 3),  # Yagi, 11/9/2024: 0.74 above BĐ III
        ("truc_phuong", 1.99, 0),
        ("truc_phuong", 2.00, 1),
        ("truc_phuong", 2.30, 1),  # BĐ II unknown: stays at I
        ("truc_phuong", 2.59, 1),
        ("truc_phuong", 2.60, 3),
        ("truc_phuong", 3.64, 3),
    ],
)
def test_alarm_level(gauge: str, stage: float, expected: int) -> None:
    assert alarm_level(gauge, stage) == expected


def test_alarm_level_without_unverified_thresholds() -> None:
    assert GAUGES["nam_dinh"].thresholds[2].verified is False
    assert 2 not in GAUGES["truc_phuong"].thresholds
    assert alarm_level("nam_dinh", 3.9, include_unverified=False) == 1
    assert alarm_level(GAUGES["nam_dinh"], 3.9) == 2


def test_alarm_level_errors() -> None:
    with pytest.raises(ValueError, match="unknown gauge"):
        alarm_level("phu_le", 2.0)
    with pytest.raises(ValueError, match="NaN"):
        alarm_level("nam_dinh", math.nan)


def test_alarm_severity() -> None:
    assert [alarm_severity(level) for level in range(4)] == [
        None,
        "warning",
        "warning",
        "critical",
    ]
    with pytest.raises(ValueError, match="0…3"):
        alarm_severity(4)


# --- TT 39/2015 supply quality ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("volts", "expected"),
    [
        (220.0, "normal"),
        (209.0, "normal"),  # −5 %
        (231.0, "normal"),  # +5 %
        (208.9, "contingency"),
        (198.0, "contingency"),  # −10 %
        (197.9, "out_of_range"),
        (231.1, "out_of_range"),  # above +5 % is never allowed
        (0.0, "out_of_range"),
    ],
)
def test_voltage_status(volts: float, expected: str) -> None:
    assert voltage_status(volts) == expected


def test_voltage_status_other_nominal() -> None:
    assert voltage_status(380.0 * 0.95, nominal=380.0) == "normal"  # 361 V
    assert voltage_status(350.0, nominal=380.0) == "contingency"  # 92.1 %


@pytest.mark.parametrize(
    ("hz", "expected"),
    [
        (50.0, "normal"),
        (49.8, "normal"),
        (50.2, "normal"),
        (50.21, "contingency"),
        (49.5, "contingency"),
        (50.5, "contingency"),
        (50.51, "out_of_range"),
        (49.49, "out_of_range"),
    ],
)
def test_frequency_status(hz: float, expected: str) -> None:
    assert frequency_status(hz) == expected
