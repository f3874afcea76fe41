"""VN_AQI (QĐ 1459/QĐ-TCMT) and US EPA AQI: worked examples, boundaries, missing data.

Expected values are the decision's worked examples (REFERENCE.md §1.2) or computed by hand from
the breakpoint tables; the arithmetic is in the comments.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics.aqi import (
    CATEGORIES,
    VN_BREAKPOINTS,
    DailyConcentrations,
    VnTable,
    category,
    daily_aqi,
    daily_concentrations,
    hourly_aqi,
    nowcast,
    sub_index,
    sub_index_exact,
)
from analytics.us_aqi import (
    US_BREAKPOINTS,
    US_CATEGORIES,
    UsPollutant,
    us_aqi,
    us_category,
    us_sub_index,
    us_sub_index_native,
)

# The decision's NowCast example, PM2.5 09:00 → 20:00 (oldest first, as printed).
DECISION_PM25_OLDEST_FIRST = [
    26.9,
    24.7,
    20.5,
    23.5,
    19.5,
    16.5,
    19.0,
    16.5,
    20.3,
    22.4,
    19.6,
    20.6,
]
DECISION_PM25 = DECISION_PM25_OLDEST_FIRST[::-1]  # c1 = 20:00

# The decision's O3 example for the 8 h mean (§2.2.2 a), hour-ending labels 18:00 … 00:00, then
# 01:00 … 00:00 of the day itself.
DECISION_O3_PRIOR = [15.7, 14.2, 17.7, 18.9, 19.3, 15.7, 19.7]
DECISION_O3_DAY = [
    22.6, 27.1, 29.0, 31.9, 25.3, 34.7, 35.2, 41.6, 45.7, 49.2, 55.8, 69.6,
    78.3, 91.5, 97.7, 81.2, 71.8, 43.5, 34.3, 21.5, 20.5, 19.4, 20.4, 21.3,
]  # fmt: skip


# --- NowCast -----------------------------------------------------------------------------------


def test_nowcast_decision_example() -> None:
    # w* = 16.5 / 26.9 = 0.6134 > 0.5; the weighted mean is 20.2658 (the decision prints 20.3).
    value = nowcast(DECISION_PM25)
    assert value is not None
    assert value == pytest.approx(20.2658, abs=5e-5)
    assert round(value, 2) == 20.27


def test_nowcast_takes_c1_as_newest() -> None:
    # c1 = 40, c2 = 10: w* = 0.25 → w = 0.5; (40 + 0.5·10) / 1.5 = 30.
    assert nowcast([40.0, 10.0]) == pytest.approx(30.0)
    # Reversed: (10 + 0.5·40) / 1.5 = 20.
    assert nowcast([10.0, 40.0]) == pytest.approx(20.0)


def test_nowcast_constant_series_is_the_constant() -> None:
    assert nowcast([35.0] * 12) == pytest.approx(35.0)


def test_nowcast_missing_hours_weigh_zero() -> None:
    # c1 missing, c2 = 5, c3 = 7: w = 5/7; (w·5 + w²·7) / (w + w²) = (5 + 5) / (1 + 5/7) = 70/12.
    assert nowcast([None, 5.0, 7.0]) == pytest.approx(70 / 12)
    # NaN is a missing hour too.
    assert nowcast([math.nan, 5.0, 7.0]) == pytest.approx(70 / 12)


def test_nowcast_half_weight_is_normalised() -> None:
    # min/max = 0 → w = 0.5; normalised: (100 + 0.5·0) / 1.5 = 66.67 (unnormalised would be 50).
    assert nowcast([100.0, 0.0]) == pytest.approx(200 / 3)


@pytest.mark.parametrize(
    "hours",
    [
        [],
        [20.0],
        [20.0, None, None, 20.0, 20.0],
        [None, None, 20.0, 20.0, 20.0],
        [None, 20.0, math.nan, 20.0],
    ],
)
def test_nowcast_needs_two_of_the_three_latest_hours(hours: list[float | None]) -> None:
    assert nowcast(hours) is None


def test_nowcast_all_zero() -> None:
    assert nowcast([0.0, 0.0, 0.0]) == 0.0


def test_nowcast_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at most 12"):
        nowcast([1.0] * 13)
    with pytest.raises(ValueError, match="negative"):
        nowcast([1.0, -2.0])


# --- Sub-indices (Bảng 2, Công thức 1) --------------------------------------------------------

LEVELS = (0, 50, 100, 150, 200, 300, 400, 500)


@pytest.mark.parametrize(
    ("table", "bp", "expected"),
    [
        (table, bp, level)
        for table, bps in VN_BREAKPOINTS.items()
        for bp, level in zip(bps, LEVELS, strict=False)
    ],
)
def test_every_breakpoint_maps_to_its_index(table: VnTable, bp: float, expected: int) -> None:
    assert sub_index(table, bp) == expected


def test_breakpoint_table_matches_bang_2() -> None:
    # Spot checks against the buggy public copies REFERENCE.md warns about.
    assert VN_BREAKPOINTS["no2"] == (0, 100, 200, 700, 1200, 2350, 3100, 3850)
    assert VN_BREAKPOINTS["so2"] == (0, 125, 350, 550, 800, 1600, 2100, 2630)
    assert VN_BREAKPOINTS["o3_1h"][1] == 160
    assert VN_BREAKPOINTS["o3_8h"] == (0, 100, 120, 170, 210, 400)
    assert VN_BREAKPOINTS["pm25"] == (0, 25, 50, 80, 150, 250, 350, 500)
    assert VN_BREAKPOINTS["pm10"] == (0, 50, 150, 250, 350, 420, 500, 600)
    assert VN_BREAKPOINTS["co"] == (0, 10_000, 30_000, 45_000, 60_000, 90_000, 120_000, 150_000)


@pytest.mark.parametrize(
    ("table", "concentration", "exact", "rounded"),
    [
        ("o3_1h", 136.1, 42.53125, 43),  # 50/160 · 136.1
        ("no2", 118.7, 59.35, 59),  # 50 + 50/100 · 18.7
        ("pm25", 20.3, 40.6, 41),  # 50/25 · 20.3
        ("o3_8h", 89.3, 44.65, 45),  # 50/100 · 89.3
        ("o3_1h", 114.6, 35.8125, 36),  # 50/160 · 114.6
        ("no2", 130.8, 65.4, 65),  # 50 + 50/100 · 30.8
        ("pm25", 55.7, 109.5, 110),  # 100 + 50/30 · 5.7, a half: rounds up
        ("pm25", 10.25, 20.5, 21),  # half-even would give 20
        ("pm10", 385.0, 250.0, 250),  # 200 + 100/70 · 35
        ("so2", 237.5, 75.0, 75),  # 50 + 50/225 · 112.5
        ("co", 37_500.0, 125.0, 125),  # 100 + 50/15000 · 7500
        ("o3_1h", 600.0, 250.0, 250),  # 200 + 100/400 · 200
    ],
)
def test_sub_index_by_hand(
    table: VnTable, concentration: float, exact: float, rounded: int
) -> None:
    assert sub_index_exact(table, concentration) == pytest.approx(exact)
    assert sub_index(table, concentration) == rounded


@pytest.mark.parametrize(
    ("table", "concentration"),
    [("pm25", 500.0), ("pm25", 999.0), ("pm10", 2000.0), ("co", 200_000.0), ("o3_1h", 1500.0)],
)
def test_caps_at_500(table: VnTable, concentration: float) -> None:
    assert sub_index(table, concentration) == 500


def test_o3_8h_table_stops_at_400() -> None:
    assert sub_index("o3_8h", 400.0) == 300
    assert sub_index("o3_8h", 400.1) is None


def test_negative_concentration_counts_as_zero() -> None:
    assert sub_index("no2", -3.0) == 0


def test_sub_index_rejects_nan_and_unknown_table() -> None:
    with pytest.raises(ValueError, match="NaN"):
        sub_index("no2", math.nan)
    with pytest.raises(ValueError, match="unknown"):
        sub_index("tsp", 10.0)  # type: ignore[arg-type]


_TOPS = {table: bps[-1] for table, bps in VN_BREAKPOINTS.items()}


@given(data=st.data(), table=st.sampled_from(sorted(VN_BREAKPOINTS)))
def test_sub_index_monotonic_and_bounded(data: st.DataObject, table: VnTable) -> None:
    hi = _TOPS[table] if table == "o3_8h" else 2 * _TOPS[table]
    a = data.draw(st.floats(min_value=0, max_value=hi, allow_nan=False))
    b = data.draw(st.floats(min_value=a, max_value=hi, allow_nan=False))
    ia, ib = sub_index(table, a), sub_index(table, b)
    assert ia is not None
    assert ib is not None
    assert 0 <= ia <= ib <= 500
    ea, eb = sub_index_exact(table, a), sub_index_exact(table, b)
    assert ea is not None
    assert eb is not None
    assert ea <= eb


# --- Hourly AQI ---------------------------------------------------------------------------------


def test_hourly_decision_example() -> None:
    result = hourly_aqi({"pm25": DECISION_PM25, "o3": [136.1], "no2": [118.7]})
    assert result is not None
    # The decision prints AQI(NO2) = 60 and AQI^h = 60, but its own formula gives
    # 50 + (100 − 50)/(200 − 100) · (118.7 − 100) = 59.35, which rounds to 59 under any rounding
    # rule that also reproduces its other examples (ceil would make daily NO2 65.4 → 66, not 65).
    # The printed 60 is an arithmetic slip in the decision; we assert the formula's result.
    assert dict(result.sub_indices) == {"o3": 43, "no2": 59, "pm25": 41}
    assert result.value == 59
    assert result.dominant == "no2"
    assert result.category.name_vi == "Trung bình"
    assert result.method == "VN_AQI"
    assert result.inputs["pm25"] == pytest.approx(20.2658, abs=5e-5)


def test_hourly_pm_uses_nowcast_not_the_last_hour() -> None:
    # c1 = 100 but c2 = 20: w = 0.5, NowCast = (100 + 10)/1.5 = 73.33 → 100 + 50/30 · 23.33 = 138.9
    # (the current hour alone would give 150 + 50/70 · 20 = 164).
    result = hourly_aqi({"pm25": [100.0, 20.0]})
    assert result is not None
    assert result.value == 139
    assert result.category.key == "poor"


def test_hourly_o3_uses_the_1h_table() -> None:
    # 180 µg/m³ on the 1 h table: 50 + 50/40 · 20 = 75 (the 8 h table would give 100+).
    result = hourly_aqi({"pm25": [10.0, 10.0], "o3": [180.0]})
    assert result is not None
    assert result.sub_indices["o3"] == 75
    assert result.dominant == "o3"


def test_hourly_gas_uses_current_hour_only() -> None:
    result = hourly_aqi({"pm10": [40.0, 40.0], "no2": [None, 500.0], "so2": [125.0, None]})
    assert result is not None
    assert "no2" not in result.sub_indices
    assert result.sub_indices["so2"] == 50
    assert result.sub_indices["pm10"] == 40  # 50/50 · 40


def test_no_aqi_without_pm() -> None:
    assert hourly_aqi({"o3": [300.0], "no2": [500.0]}) is None
    # PM present but without 2 of the last 3 hours: no NowCast, so no AQI.
    assert hourly_aqi({"pm25": [30.0, None, None, 30.0], "no2": [500.0]}) is None
    assert hourly_aqi({}) is None


def test_pm10_alone_is_enough() -> None:
    result = hourly_aqi({"pm10": [150.0, 150.0], "co": [5000.0]})
    assert result is not None
    assert result.value == 100
    assert result.dominant == "pm10"


def test_ties_prefer_pm() -> None:
    # PM2.5 25 → 50 and SO2 125 → 50.
    result = hourly_aqi({"so2": [125.0], "pm25": [25.0, 25.0]})
    assert result is not None
    assert result.dominant == "pm25"


def test_hourly_accepts_numpy_arrays_with_nan() -> None:
    history = {
        "pm25": np.array([30.0, np.nan, 30.0]),
        "no2": np.array([np.nan, 300.0]),
        "o3": np.array([200.0]),
    }
    result = hourly_aqi(history)
    assert result is not None
    # PM2.5 NowCast 30 → 50 + 50/25 · 5 = 60; O3 1 h 200 → 100; NO2's current hour is missing.
    assert dict(result.sub_indices) == {"pm25": 60, "o3": 100}


def test_unknown_pollutant_is_refused() -> None:
    with pytest.raises(ValueError, match="not VN_AQI pollutants"):
        hourly_aqi({"pm2.5": [10.0, 10.0]})


# --- Daily AQI ----------------------------------------------------------------------------------


def test_daily_decision_example() -> None:
    result = daily_aqi(
        DailyConcentrations(pm25_24h=55.7, o3_8h_max=89.3, o3_1h_max=114.6, no2_1h_max=130.8)
    )
    assert result is not None
    # O3: max(8 h 45, 1 h 36) = 45; NO2 65; PM2.5 109.5 → 110.
    assert dict(result.sub_indices) == {"pm25": 110, "o3": 45, "no2": 65}
    assert result.value == 110
    assert result.dominant == "pm25"
    assert result.category.name_vi == "Kém"


def test_daily_o3_1h_wins_when_higher() -> None:
    # 8 h 100 → 50; 1 h 300 → 150.
    result = daily_aqi(DailyConcentrations(pm25_24h=10.0, o3_8h_max=100.0, o3_1h_max=300.0))
    assert result is not None
    assert result.sub_indices["o3"] == 150


def test_daily_o3_8h_above_400_uses_1h_only() -> None:
    # 8 h 450 is off the 8 h table; 1 h 500 → 200 + 100/400 · 100 = 225.
    result = daily_aqi(DailyConcentrations(pm25_24h=10.0, o3_8h_max=450.0, o3_1h_max=500.0))
    assert result is not None
    assert result.sub_indices["o3"] == 225
    assert "o3_8h" not in result.inputs
    # At exactly 400 the 8 h table still applies: 300 > 225.
    result = daily_aqi(DailyConcentrations(pm25_24h=10.0, o3_8h_max=400.0, o3_1h_max=500.0))
    assert result is not None
    assert result.sub_indices["o3"] == 300


def test_daily_no_aqi_without_pm() -> None:
    assert daily_aqi(DailyConcentrations(o3_1h_max=300.0, no2_1h_max=200.0)) is None


def test_daily_concentrations_decision_o3_example() -> None:
    stats = daily_concentrations({"o3": DECISION_O3_DAY}, o3_prior=DECISION_O3_PRIOR)
    # The decision's maximum 8 h mean is 74.4 (hours 10:00 … 17:00: 595.1 / 8 = 74.3875).
    assert stats.o3_8h_max == pytest.approx(74.3875)
    assert stats.o3_1h_max == pytest.approx(97.7)
    assert stats.pm25_24h is None


def test_daily_concentrations_pm_mean_and_gas_max() -> None:
    pm = [10.0] * 12 + [30.0] * 12
    no2 = [50.0] * 23 + [180.0]
    stats = daily_concentrations({"pm25": pm, "no2": no2})
    assert stats.pm25_24h == pytest.approx(20.0)
    assert stats.no2_1h_max == pytest.approx(180.0)
    result = daily_aqi(stats)
    assert result is not None
    # PM2.5 20 → 40; NO2 180 → 50 + 50/100 · 80 = 90.
    assert dict(result.sub_indices) == {"pm25": 40, "no2": 90}


def test_daily_concentrations_need_18_hours() -> None:
    eighteen: list[float | None] = [20.0] * 18 + [None] * 6
    seventeen: list[float | None] = [20.0] * 17 + [None] * 7
    assert daily_concentrations({"pm10": eighteen}).pm10_24h == pytest.approx(20.0)
    assert daily_concentrations({"pm10": seventeen}).pm10_24h is None
    assert daily_concentrations({"so2": seventeen}).so2_1h_max is None


def test_daily_o3_8h_without_prior_day() -> None:
    # Without the previous evening, the first 8 h means have fewer hours; 6 of 8 is enough from
    # the window ending at the 6th hour. All hours 40 except 80 at hours 16…23: max 8 h = 80.
    day = [40.0] * 16 + [80.0] * 8
    stats = daily_concentrations({"o3": day})
    assert stats.o3_8h_max == pytest.approx(80.0)


def test_daily_concentrations_validate_shape() -> None:
    with pytest.raises(ValueError, match="24 hourly values"):
        daily_concentrations({"pm25": [1.0] * 23})
    with pytest.raises(ValueError, match="at most 7"):
        daily_concentrations({"o3": [1.0] * 24}, o3_prior=[1.0] * 8)


# --- Categories (Bảng 1, 4, 5) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "name_vi", "hex_colour"),
    [
        (0, "Tốt", "#00E400"),
        (50, "Tốt", "#00E400"),
        (51, "Trung bình", "#FFFF00"),
        (100, "Trung bình", "#FFFF00"),
        (101, "Kém", "#FF7E00"),
        (150, "Kém", "#FF7E00"),
        (151, "Xấu", "#FF0000"),
        (200, "Xấu", "#FF0000"),
        (201, "Rất xấu", "#8F3F97"),
        (300, "Rất xấu", "#8F3F97"),
        (301, "Nguy hại", "#7E0023"),
        (500, "Nguy hại", "#7E0023"),
    ],
)
def test_category_boundaries(value: int, name_vi: str, hex_colour: str) -> None:
    cat = category(value)
    assert cat.name_vi == name_vi
    assert cat.hex == hex_colour


def test_category_rgb_and_advice() -> None:
    assert [c.rgb for c in CATEGORIES] == [
        (0, 228, 0),
        (255, 255, 0),
        (255, 126, 0),
        (255, 0, 0),
        (143, 63, 151),
        (126, 0, 35),
    ]
    assert [c.name_en for c in CATEGORIES] == [
        "Good",
        "Moderate",
        "Poor",
        "Bad",
        "Very bad",
        "Hazardous",
    ]
    for cat in CATEGORIES:
        assert cat.advice is not None
        assert cat.advice.normal_vi
        assert cat.advice.sensitive_en
    hazardous = CATEGORIES[-1].advice
    assert hazardous is not None
    assert hazardous.normal_vi == hazardous.sensitive_vi  # one merged cell in Bảng 5
    assert "khẩu trang" in hazardous.normal_vi


@pytest.mark.parametrize("value", [-1, 501])
def test_category_out_of_range(value: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        category(value)


# --- US EPA AQI (TAD 2024) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pollutant", "value", "expected"),
    [
        # PM2.5 (µg/m³, truncated to 0.1), 2024 breakpoints.
        ("pm25", 0.0, 0),
        ("pm25", 9.0, 50),
        ("pm25", 9.09, 50),  # truncates to 9.0, not into the 9.0 | 9.1 gap
        ("pm25", 9.1, 51),
        ("pm25", 12.0, 56),  # 51 + 49/26.3 · 2.9 = 56.40 (AQI 50 under the pre-2024 table)
        ("pm25", 35.4, 100),
        ("pm25", 35.5, 101),
        ("pm25", 35.9, 102),  # 101 + 49/19.9 · 0.4 = 101.98
        ("pm25", 55.4, 150),
        ("pm25", 55.5, 151),
        ("pm25", 125.4, 200),
        ("pm25", 225.4, 300),
        ("pm25", 225.5, 301),
        ("pm25", 325.4, 500),
        ("pm25", 600.0, 500),  # beyond the AQI: capped
        # PM10 (µg/m³, integer).
        ("pm10", 54.9, 50),  # truncates to 54
        ("pm10", 55.0, 51),
        ("pm10", 104.0, 75),  # 51 + 49/99 · 49 = 75.25
        ("pm10", 604.0, 500),
        # O3 (ppm, 3 decimals).
        ("o3_8h", 0.054, 50),
        ("o3_8h", 0.055, 51),
        ("o3_8h", 0.078, 126),  # 101 + 49/0.014 · 0.007 = 125.5, rounds up
        ("o3_8h", 0.200, 300),
        ("o3_8h", 0.201, None),  # 8 h does not define indices above 300
        ("o3_1h", 0.124, None),  # 1 h starts at 0.125 ppm
        ("o3_1h", 0.125, 101),
        ("o3_1h", 0.604, 500),
        # CO (ppm, 1 decimal).
        ("co_8h", 4.4, 50),
        ("co_8h", 4.5, 51),
        ("co_8h", 50.4, 500),
        # SO2 and NO2 (ppb, integer).
        ("so2_1h", 75.0, 100),
        ("so2_1h", 304.0, 200),
        ("so2_1h", 305.0, None),  # handed to the 24 h mean
        ("so2_24h", 304.0, None),
        ("so2_24h", 305.0, 201),
        ("no2_1h", 53.0, 50),
        ("no2_1h", 100.9, 100),  # truncates to 100
        ("no2_1h", 101.0, 101),
        ("no2_1h", 2049.0, 500),
    ],
)
def test_us_sub_index_native(pollutant: UsPollutant, value: float, expected: int | None) -> None:
    assert us_sub_index_native(pollutant, value) == expected


@pytest.mark.parametrize(
    ("pollutant", "ugm3", "expected"),
    [
        ("no2_1h", 188.0, 100),  # 100 ppb × 1.88
        ("no2_1h", 189.88, 101),  # 101 ppb
        ("o3_8h", 152.88, 126),  # 78 ppb × 1.96 = 0.078 ppm, exact despite float division
        ("so2_1h", 196.5, 100),  # 75 ppb × 2.62
        ("co_8h", 10_763.0, 100),  # 9.4 ppm × 1145
        ("pm25", 35.9, 102),  # PM stays in µg/m³
    ],
)
def test_us_sub_index_converts_from_ugm3(
    pollutant: UsPollutant, ugm3: float, expected: int
) -> None:
    assert us_sub_index(pollutant, ugm3) == expected


def test_us_aqi_overall() -> None:
    result = us_aqi(pm25=12.0, no2_1h=188.0, o3_8h=100.0)
    assert result is not None
    # O3 100 µg/m³ = 51.02 ppb → 0.051 ppm → 50/0.054 · 0.051 = 47.2.
    assert dict(result.sub_indices) == {"pm25": 56, "no2": 100, "o3": 47}
    assert result.value == 100
    assert result.dominant == "no2"
    assert result.method == "US_EPA_AQI"
    assert result.category.name_en == "Moderate"
    assert result.category.advice is None


def test_us_aqi_o3_takes_the_higher_of_1h_and_8h() -> None:
    # 8 h 0.060 ppm = 117.6 µg/m³ → 51 + 49/0.015 · 0.005 = 67.3; 1 h 0.165 ppm = 323.4 → 151.
    result = us_aqi(o3_8h=117.6, o3_1h=323.4)
    assert result is not None
    assert result.sub_indices["o3"] == 151
    # An 8 h value above 0.200 ppm alone does not index O3.
    assert us_aqi(o3_8h=500.0) is None


def test_us_aqi_so2_above_304_ppb() -> None:
    # 1 h 400 ppb = 1048 µg/m³ needs the 24 h mean.
    # 24 h 455 ppb = 1192.1 µg/m³ → 201 + 99/299 · 150 = 250.7.
    result = us_aqi(so2_1h=1048.0, so2_24h=1192.1)
    assert result is not None
    assert result.sub_indices["so2"] == 251
    # Without a qualifying 24 h mean, the top of the 1 h scale.
    result = us_aqi(so2_1h=1048.0)
    assert result is not None
    assert result.sub_indices["so2"] == 200


def test_us_aqi_does_not_require_pm() -> None:
    result = us_aqi(co_8h=10_763.0)
    assert result is not None
    assert result.value == 100
    assert us_aqi() is None
    assert us_aqi(pm25=math.nan) is None


def test_us_aqi_hourly_pm_with_shared_nowcast() -> None:
    value = nowcast(DECISION_PM25)
    assert value is not None
    # NowCast 20.27 → truncated 20.2 → 51 + 49/26.3 · 11.1 = 71.68.
    assert us_sub_index("pm25", value) == 72


def test_us_categories() -> None:
    assert us_category(100).name_en == "Moderate"
    assert us_category(101).name_en == "Unhealthy for Sensitive Groups"
    assert us_category(201).name_en == "Very Unhealthy"
    assert us_category(301).hex == "#7E0023"
    assert [c.rgb for c in US_CATEGORIES] == [c.rgb for c in CATEGORIES]


@given(data=st.data(), pollutant=st.sampled_from(sorted(US_BREAKPOINTS)))
def test_us_sub_index_monotonic_and_bounded(data: st.DataObject, pollutant: UsPollutant) -> None:
    rows = US_BREAKPOINTS[pollutant]
    lo, hi = rows[0][0], rows[-1][1]
    a = data.draw(st.floats(min_value=lo, max_value=hi, allow_nan=False))
    b = data.draw(st.floats(min_value=a, max_value=hi, allow_nan=False))
    ia, ib = us_sub_index_native(pollutant, a), us_sub_index_native(pollutant, b)
    assert ia is not None
    assert ib is not None
    assert 0 <= ia <= ib <= 500
