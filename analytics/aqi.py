"""VN_AQI, the Vietnamese air quality index of QĐ 1459/QĐ-TCMT (Tổng cục Môi trường, 12/11/2019).

Everything is computed from the decision's own tables (REFERENCE.md §1), never from the public
implementations, several of which carry wrong breakpoints:

- Bảng 2, breakpoints in µg/m³ (CO included), is :data:`VN_BREAKPOINTS`.
- Công thức 1 / 2 (linear interpolation on a segment) is :func:`sub_index_exact`.
- NowCast for PM2.5 and PM10 is :func:`nowcast`.
- AQI giờ (§2.2.1) is :func:`hourly_aqi`; AQI ngày (§2.2.2) is :func:`daily_aqi`.
- Bảng 1, 4 and 5 (name, colour, health effect and advice) are :data:`CATEGORIES`.

Choices where the decision is silent (each is repeated where it is made):

- Rounding: the decision says only "làm tròn thành số nguyên". We round half up, which reproduces
  its worked examples (daily PM2.5 55.7 → 109.5 → 110; round-half-even and floor give 110 and 109,
  ceil would turn NO2 65.4 into 66). Each AQIx is rounded, and the overall value is the maximum of
  the rounded AQIx, which equals rounding the maximum because rounding is monotonic.
- Above the top breakpoint (the "≥" row 8) the index stays at 500.
- Negative concentrations (gas sensors read slightly below zero in clean air) count as 0.
- The NowCast always uses the normalised weighted mean; see :func:`nowcast`.
- Daily statistics need 18 of 24 hours (75 %), an 8-hour mean 6 of 8 hours; see
  :func:`daily_concentrations`.
- When two pollutants share the highest AQIx, the dominant one is taken in the order of
  :data:`POLLUTANTS` (PM first, as the index cannot exist without PM).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Literal

import numpy as np

from analytics._shared import interpolate, rolling_mean, round_half_up, to_array

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import numpy.typing as npt

    # Hourly values: a sequence with None for a gap, or a float array with NaN for a gap.
    Hours = Sequence[float | None] | npt.NDArray[np.float64]

Method = Literal["VN_AQI", "US_EPA_AQI"]
VnTable = Literal["pm25", "pm10", "o3_1h", "o3_8h", "co", "so2", "no2"]

# Canonical metric names (core.metrics) of the six VN_AQI pollutants, in tie-break order.
POLLUTANTS: Final = ("pm25", "pm10", "o3", "no2", "so2", "co")
_PM: Final = ("pm25", "pm10")

# QĐ 1459/QĐ-TCMT Bảng 2: BP_i in µg/m³ for I_i = 0, 50, 100, 150, 200, 300, 400, 500. The last
# column is printed as "≥ …": at and above it the index is 500. The O3 8 h column stops at
# 400 µg/m³ (I = 300); above that the daily O3 index uses the 1 h value only (§2.2.2 b).
_INDEX_LEVELS: Final = (0, 50, 100, 150, 200, 300, 400, 500)
VN_BREAKPOINTS: Final[Mapping[VnTable, tuple[float, ...]]] = MappingProxyType(
    {
        "o3_1h": (0, 160, 200, 300, 400, 800, 1000, 1200),
        "o3_8h": (0, 100, 120, 170, 210, 400),
        "co": (0, 10_000, 30_000, 45_000, 60_000, 90_000, 120_000, 150_000),
        "so2": (0, 125, 350, 550, 800, 1600, 2100, 2630),
        "no2": (0, 100, 200, 700, 1200, 2350, 3100, 3850),
        "pm10": (0, 50, 150, 250, 350, 420, 500, 600),
        "pm25": (0, 25, 50, 80, 150, 250, 350, 500),
    }
)
_POINTS: Final[Mapping[VnTable, tuple[tuple[float, float], ...]]] = MappingProxyType(
    {k: tuple(zip(bps, _INDEX_LEVELS, strict=False)) for k, bps in VN_BREAKPOINTS.items()}
)
O3_8H_TABLE_MAX: Final = 400.0  # µg/m³; Bảng 2 has no O3 8 h breakpoint above it

# Hourly AQI: gases use their 1 h value on these tables (O3: the 1 h column only).
_HOURLY_TABLE: Final[Mapping[str, VnTable]] = MappingProxyType(
    {"pm25": "pm25", "pm10": "pm10", "o3": "o3_1h", "no2": "no2", "so2": "so2", "co": "co"}
)

NOWCAST_HOURS: Final = 12
# Data-completeness defaults where the decision is silent; 75 % is the usual rule (US EPA uses
# 18/24 hours for a daily mean and 6/8 hours for an 8-hour mean).
MIN_HOURS_DAY: Final = 18
MIN_HOURS_8H: Final = 6


@dataclass(frozen=True, slots=True)
class HealthAdvice:
    """Bảng 4 (effect on health) and Bảng 5 (recommended activity) for one category.

    The Vietnamese text is abridged from the decision; the English is dothi's translation.
    "Sensitive" means the elderly, children and people with respiratory or heart disease.
    """

    effect_vi: str
    effect_en: str
    normal_vi: str
    normal_en: str
    sensitive_vi: str
    sensitive_en: str


@dataclass(frozen=True, slots=True)
class Category:
    """One AQI band with its official name and colour.

    Attributes:
        level: 1 (best) … 6 (worst).
        key: stable identifier for APIs and dashboards (``good`` … ``hazardous``).
        name_vi: official Vietnamese name (VN_AQI) or dothi's translation (US AQI).
        name_en: English name.
        colour_vi: colour name as printed in Bảng 1.
        colour_en: colour name in English.
        rgb: official RGB triple (the same for VN_AQI and the US AQI).
        low: lowest index value in the band.
        high: highest index value in the band.
        advice: health effect and advice (VN_AQI only).
    """

    level: int
    key: str
    name_vi: str
    name_en: str
    colour_vi: str
    colour_en: str
    rgb: tuple[int, int, int]
    low: int
    high: int
    advice: HealthAdvice | None = None

    @property
    def hex(self) -> str:
        """The colour as ``#RRGGBB``."""
        r, g, b = self.rgb
        return f"#{r:02X}{g:02X}{b:02X}"


# Bảng 5 prints one merged cell for both groups at 301–500.
_SAME_FOR_BOTH = (
    "Mọi người nên ở trong nhà, đóng cửa ra vào và cửa sổ; nếu cần ra ngoài, hãy đeo khẩu trang "
    "đạt tiêu chuẩn."
)
_SAME_FOR_BOTH_EN = (
    "Everyone should stay indoors with doors and windows closed; if going out is necessary, "
    "wear a certified mask."
)

# QĐ 1459/QĐ-TCMT Bảng 1 (ranges, names, colours, RGB), Bảng 4 and Bảng 5 (advice, abridged).
CATEGORIES: Final[tuple[Category, ...]] = (
    Category(
        1,
        "good",
        "Tốt",
        "Good",
        "Xanh",
        "Green",
        (0, 228, 0),
        0,
        50,
        HealthAdvice(
            "Chất lượng không khí tốt, không ảnh hưởng tới sức khỏe.",
            "Air quality is good and does not affect health.",
            "Tự do thực hiện các hoạt động ngoài trời.",
            "Outdoor activities as usual.",
            "Tự do thực hiện các hoạt động ngoài trời.",
            "Outdoor activities as usual.",
        ),
    ),
    Category(
        2,
        "moderate",
        "Trung bình",
        "Moderate",
        "Vàng",
        "Yellow",
        (255, 255, 0),
        51,
        100,
        HealthAdvice(
            "Chất lượng không khí ở mức chấp nhận được; người nhạy cảm (người già, trẻ em, người "
            "mắc bệnh hô hấp, tim mạch) có thể chịu những tác động nhất định tới sức khỏe.",
            "Air quality is acceptable; sensitive people (the elderly, children, people with "
            "respiratory or heart disease) may feel some effects.",
            "Tự do thực hiện các hoạt động ngoài trời.",
            "Outdoor activities as usual.",
            "Nên theo dõi các triệu chứng như ho hoặc khó thở, nhưng vẫn có thể hoạt động bên "
            "ngoài.",
            "Watch for symptoms such as coughing or shortness of breath; outdoor activity is "
            "still possible.",
        ),
    ),
    Category(
        3,
        "poor",
        "Kém",
        "Poor",
        "Da cam",
        "Orange",
        (255, 126, 0),
        101,
        150,
        HealthAdvice(
            "Người nhạy cảm gặp phải các vấn đề về sức khỏe; người bình thường ít bị ảnh hưởng.",
            "Sensitive people experience health problems; the general public is little affected.",
            "Người có triệu chứng đau mắt, ho hoặc đau họng nên cân nhắc giảm hoạt động ngoài "
            "trời; học sinh nên giảm bớt việc tập thể dục kéo dài.",
            "People with sore eyes, a cough or a sore throat should consider reducing outdoor "
            "activity; pupils should cut down on prolonged exercise.",
            "Nên giảm các hoạt động mạnh và thời gian hoạt động ngoài trời; người mắc bệnh hen "
            "suyễn có thể cần dùng thuốc thường xuyên hơn.",
            "Reduce strenuous activity and time outdoors; people with asthma may need their "
            "medication more often.",
        ),
    ),
    Category(
        4,
        "bad",
        "Xấu",
        "Bad",
        "Đỏ",
        "Red",
        (255, 0, 0),
        151,
        200,
        HealthAdvice(
            "Người bình thường bắt đầu bị ảnh hưởng tới sức khỏe; nhóm người nhạy cảm có thể gặp "
            "những vấn đề sức khỏe nghiêm trọng hơn.",
            "Everyone begins to feel health effects; sensitive people may have more serious "
            "problems.",
            "Giảm các hoạt động mạnh ngoài trời, tránh tập thể dục kéo dài và nghỉ ngơi nhiều hơn "
            "trong nhà.",
            "Reduce strenuous outdoor activity, avoid prolonged exercise and rest more indoors.",
            "Nên ở trong nhà và giảm hoạt động mạnh; nếu cần ra ngoài, hãy đeo khẩu trang đạt "
            "tiêu chuẩn.",
            "Stay indoors and reduce strenuous activity; if going out is necessary, wear a "
            "certified mask.",
        ),
    ),
    Category(
        5,
        "very_bad",
        "Rất xấu",
        "Very bad",
        "Tím",
        "Purple",
        (143, 63, 151),
        201,
        300,
        HealthAdvice(
            "Cảnh báo sức khỏe: mọi người bị ảnh hưởng tới sức khỏe nghiêm trọng hơn.",
            "Health warning: everyone may experience more serious health effects.",
            "Hạn chế tối đa các hoạt động ngoài trời, chuyển các hoạt động vào trong nhà; nếu cần "
            "ra ngoài, hãy đeo khẩu trang đạt tiêu chuẩn.",
            "Avoid outdoor activity as far as possible and move activities indoors; if going "
            "out is necessary, wear a certified mask.",
            "Nên ở trong nhà và giảm hoạt động mạnh.",
            "Stay indoors and reduce strenuous activity.",
        ),
    ),
    Category(
        6,
        "hazardous",
        "Nguy hại",
        "Hazardous",
        "Nâu",
        "Maroon",
        (126, 0, 35),
        301,
        500,
        HealthAdvice(
            "Cảnh báo khẩn cấp về sức khỏe: toàn bộ dân số bị ảnh hưởng tới sức khỏe nghiêm trọng.",
            "Health emergency: the whole population is seriously affected.",
            _SAME_FOR_BOTH,
            _SAME_FOR_BOTH_EN,
            _SAME_FOR_BOTH,
            _SAME_FOR_BOTH_EN,
        ),
    ),
)


def category_for(value: int, categories: Sequence[Category]) -> Category:
    """The band of ``categories`` that contains an integer index value.

    Raises:
        ValueError: for a value outside 0…500.
    """
    for cat in categories:
        if cat.low <= value <= cat.high:
            return cat
    raise ValueError(f"AQI value {value} is outside 0…500")


def category(value: int) -> Category:
    """The VN_AQI category (Bảng 1) of an integer AQI value, e.g. 50 → Tốt, 51 → Trung bình.

    Raises:
        ValueError: for a value outside 0…500.
    """
    return category_for(value, CATEGORIES)


@dataclass(frozen=True, slots=True)
class AqiResult:
    """An overall AQI with what Bảng 3 asks a publisher to show.

    Attributes:
        value: the overall index, the maximum of ``sub_indices``.
        category: its band (name, colour, advice).
        dominant: the pollutant with the highest AQIx (``pm25``, ``o3`` …).
        sub_indices: every AQIx that could be computed, by pollutant.
        inputs: the concentration each AQIx was computed from, in µg/m³ (NowCast for hourly
            PM; ``o3_1h``/``o3_8h`` for daily O3).
        method: ``VN_AQI`` or ``US_EPA_AQI``.
    """

    value: int
    category: Category
    dominant: str
    sub_indices: Mapping[str, int] = field(hash=False)
    inputs: Mapping[str, float] = field(hash=False)
    method: Method = "VN_AQI"


def make_result(
    sub_indices: Mapping[str, int],
    inputs: Mapping[str, float],
    method: Method,
    categories: Sequence[Category],
    order: Sequence[str],
) -> AqiResult:
    """Assemble an :class:`AqiResult` from non-empty sub-indices (ties resolved by ``order``)."""
    value = max(sub_indices.values())
    dominant = next(p for p in order if sub_indices.get(p) == value)
    return AqiResult(
        value=value,
        category=category_for(value, categories),
        dominant=dominant,
        sub_indices=MappingProxyType(dict(sub_indices)),
        inputs=MappingProxyType(dict(inputs)),
        method=method,
    )


def sub_index_exact(table: VnTable, concentration: float) -> float | None:
    """AQIx before rounding (Công thức 1), for charts and tests.

    Args:
        table: the Bảng 2 column: ``pm25``, ``pm10``, ``o3_1h``, ``o3_8h``, ``co``, ``so2``,
            ``no2``.
        concentration: µg/m³ (CO too). Negative values count as 0.

    Returns:
        The index, capped at 500; ``None`` for an O3 8 h mean above 400 µg/m³, which the decision
        does not index.

    Raises:
        ValueError: for NaN or an unknown table.
    """
    if table not in _POINTS:
        raise ValueError(f"unknown VN_AQI table {table!r}; expected one of {sorted(_POINTS)}")
    if math.isnan(concentration):
        raise ValueError(f"{table} concentration is NaN")
    if table == "o3_8h" and concentration > O3_8H_TABLE_MAX:
        return None
    return interpolate(_POINTS[table], max(concentration, 0.0))


def sub_index(table: VnTable, concentration: float) -> int | None:
    """AQIx rounded half up to an integer (see :func:`sub_index_exact` for the arguments).

    Example: ``sub_index("no2", 118.7)`` is 59 (59.35).
    """
    exact = sub_index_exact(table, concentration)
    return None if exact is None else round_half_up(exact)


def nowcast(hours_newest_first: Hours) -> float | None:
    """NowCast of PM2.5 or PM10 from up to 12 hourly means (QĐ 1459 §2.2.1 a; US EPA alike).

    Args:
        hours_newest_first: c1, c2, … c12: c1 is the mean of the current hour, c12 the one 11
            hours earlier. ``None`` or NaN marks a missing hour; a shorter sequence means the
            older hours are missing.

    Returns:
        The NowCast in µg/m³, or ``None`` when fewer than 2 of c1, c2, c3 are present.

    The weight is ``w = max(Cmin / Cmax, 1/2)`` over the hours present, and the result is
    ``Σ w^(i−1)·ci / Σ w^(i−1)`` with missing hours weighted 0. For ``w = 1/2`` the decision
    prints the unnormalised ``Σ (1/2)^i·ci``; with 12 hours that is the normalised value
    × 0.99976, and with missing hours it would be biased low, so the normalised form is used
    throughout (as the US EPA does).

    Raises:
        ValueError: for more than 12 hours or a negative value.
    """
    if len(hours_newest_first) > NOWCAST_HOURS:
        raise ValueError(
            f"NowCast takes at most {NOWCAST_HOURS} hourly values, got {len(hours_newest_first)}"
        )
    present = [
        (i, float(v))
        for i, v in enumerate(hours_newest_first)
        if v is not None and not math.isnan(v)
    ]
    if sum(1 for i, _ in present if i < 3) < 2:
        return None
    values = [v for _, v in present]
    if min(values) < 0:
        raise ValueError(f"PM concentrations cannot be negative: {min(values)}")
    c_max = max(values)
    if c_max == 0:
        return 0.0
    w = max(min(values) / c_max, 0.5)
    weights = [w**i for i, _ in present]
    return sum(wt * v for wt, (_, v) in zip(weights, present, strict=True)) / sum(weights)


def hourly_aqi(history: Mapping[str, Hours]) -> AqiResult | None:
    """AQI giờ (QĐ 1459 §2.2.1) for one station and hour.

    Args:
        history: per pollutant (canonical metric names ``pm25``, ``pm10``, ``o3``, ``no2``,
            ``so2``, ``co``), its hourly means in µg/m³, newest first (the current hour first),
            ``None``/NaN for a missing hour. PM uses up to 12 hours for the NowCast; the gases
            use the current hour only (O3 on the 1 h table).

    Returns:
        The AQI, or ``None`` when neither PM2.5 nor PM10 yields a NowCast: the decision forbids
        an AQI without PM.

    Raises:
        ValueError: for a pollutant name outside :data:`POLLUTANTS`.
    """
    _check_names(history)
    subs: dict[str, int] = {}
    inputs: dict[str, float] = {}
    for pollutant, hours in history.items():
        if pollutant in _PM:
            c = nowcast(hours)
        else:
            first = hours[0] if len(hours) else None
            c = None if first is None or math.isnan(first) else float(first)
        if c is None:
            continue
        idx = sub_index(_HOURLY_TABLE[pollutant], c)
        if idx is not None:
            subs[pollutant] = idx
            inputs[pollutant] = c
    if not any(p in subs for p in _PM):
        return None
    return make_result(subs, inputs, "VN_AQI", CATEGORIES, POLLUTANTS)


@dataclass(frozen=True, slots=True)
class DailyConcentrations:
    """The daily inputs of QĐ 1459 §2.2.2 a, in µg/m³; ``None`` where not available."""

    pm25_24h: float | None = None
    pm10_24h: float | None = None
    o3_1h_max: float | None = None
    o3_8h_max: float | None = None
    no2_1h_max: float | None = None
    so2_1h_max: float | None = None
    co_1h_max: float | None = None


def daily_concentrations(
    day: Mapping[str, Hours],
    *,
    o3_prior: Hours = (),
    min_hours: int = MIN_HOURS_DAY,
    min_hours_8h: int = MIN_HOURS_8H,
) -> DailyConcentrations:
    """The daily statistics of QĐ 1459 §2.2.2 a from one local day of hourly means.

    Args:
        day: per pollutant, exactly 24 hourly means in µg/m³ in time order, ``None``/NaN when
            missing. They are the hours starting 00:00 … 23:00 local time, which the decision
            labels by their end, "01:00 to 00:00 next day".
        o3_prior: up to 7 O3 hourly means immediately before the day, oldest first. The
            decision's 8 h means run over the 8 hours ending at each hour of the day, so the
            first seven reach into the previous day.
        min_hours: hours (of 24) a daily statistic needs, and 8 h means the O3 8 h maximum needs.
            The decision is silent; 18 (75 %) by default.
        min_hours_8h: hours (of 8) an 8 h mean needs; 6 (75 %) by default.

    Returns:
        PM 24 h means, SO2/NO2/CO/O3 1 h maxima and the O3 maximum 8 h mean.

    Raises:
        ValueError: for a day that is not 24 values long, more than 7 prior hours or an unknown
            pollutant.
    """
    _check_names(day)
    if not 1 <= min_hours <= 24 or not 1 <= min_hours_8h <= 8:
        raise ValueError("min_hours must be in 1..24 and min_hours_8h in 1..8")
    if len(o3_prior) > 7:
        raise ValueError(f"o3_prior holds at most 7 hours, got {len(o3_prior)}")
    stats: dict[str, float | None] = {}
    for pollutant, hours in day.items():
        if len(hours) != 24:
            raise ValueError(f"{pollutant}: a day has 24 hourly values, got {len(hours)}")
        values = to_array(hours)
        enough = np.count_nonzero(~np.isnan(values)) >= min_hours
        if pollutant in _PM:
            stats[f"{pollutant}_24h"] = float(np.nanmean(values)) if enough else None
            continue
        stats[f"{pollutant}_1h_max"] = float(np.nanmax(values)) if enough else None
        if pollutant == "o3":
            prior = np.concatenate((np.full(7 - len(o3_prior), np.nan), to_array(o3_prior)))
            means = rolling_mean(np.concatenate((prior, values)), 8, min_hours_8h)[7:]
            ok = np.count_nonzero(~np.isnan(means)) >= min_hours
            stats["o3_8h_max"] = float(np.nanmax(means)) if ok else None
    return DailyConcentrations(**stats)


def daily_aqi(concentrations: DailyConcentrations) -> AqiResult | None:
    """AQI ngày (QĐ 1459 §2.2.2 b, c) from the daily statistics.

    O3 is indexed from its maximum 1 h value on the 1 h table and from its maximum 8 h mean on
    the 8 h table, and the larger index is kept; an 8 h maximum above 400 µg/m³ is not indexed
    (1 h only), as the decision says.

    Returns:
        The AQI, or ``None`` without a PM2.5 or PM10 24 h mean.
    """
    c = concentrations
    candidates: tuple[tuple[str, str, VnTable, float | None], ...] = (
        ("pm25", "pm25", "pm25", c.pm25_24h),
        ("pm10", "pm10", "pm10", c.pm10_24h),
        ("o3", "o3_1h", "o3_1h", c.o3_1h_max),
        ("o3", "o3_8h", "o3_8h", c.o3_8h_max),
        ("no2", "no2", "no2", c.no2_1h_max),
        ("so2", "so2", "so2", c.so2_1h_max),
        ("co", "co", "co", c.co_1h_max),
    )
    subs: dict[str, int] = {}
    inputs: dict[str, float] = {}
    for pollutant, input_name, table, conc in candidates:
        if conc is None or math.isnan(conc):
            continue
        idx = sub_index(table, conc)
        if idx is None:
            continue
        inputs[input_name] = conc
        subs[pollutant] = max(idx, subs.get(pollutant, idx))
    if not any(p in subs for p in _PM):
        return None
    return make_result(subs, inputs, "VN_AQI", CATEGORIES, POLLUTANTS)


def _check_names(data: Mapping[str, object]) -> None:
    unknown = sorted(set(data) - set(POLLUTANTS))
    if unknown:
        raise ValueError(f"not VN_AQI pollutants: {unknown}; expected names from {POLLUTANTS}")
