"""*Môi trường không khí* (Environment): per station VN_AQI and pollutant trends with the
QCVN 05:2023/BTNMT limits drawn as reference lines, exceedances and latest values."""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from dashboards import layout
from dashboards.panels import (
    aqi_thresholds,
    area_variable,
    device_variable,
    grid,
    series,
    series_colour,
)
from dashboards.sql import (
    FROM,
    POLLUTANT_LABELS,
    TO,
    hours_series,
    local_day,
    local_midnight,
    pollutant_label,
    qcvn05_limit,
    tier_rows,
)

UID: Final = "dothi-environment"
AVERAGING_VI: Final = {"1h": "1 giờ", "8h": "8 giờ", "24h": "24 giờ"}
LIMIT_COLOURS: Final = {"1h": "dark-red", "8h": "orange", "24h": "red"}
UNIT_UGM3: Final = "conµgm3"

# Pollutant panels: metric, Vietnamese title (names as QCVN 05:2023 prints them), English.
POLLUTANTS: Final = (
    ("pm25", "Bụi mịn PM2.5", "Fine particulate matter PM2.5"),
    ("pm10", "Bụi PM10", "Particulate matter PM10"),
    ("no2", "Nitơ đioxit NO₂", "Nitrogen dioxide NO2"),
    ("o3", "Ozon O₃", "Ozone O3"),
    ("so2", "Lưu huỳnh đioxit SO₂", "Sulphur dioxide SO2"),
    ("co", "Cacbon oxit CO", "Carbon monoxide CO"),
)


def station_series_sql(metric: str) -> str:
    """Mean of ``metric`` per ``$__interval`` per station in ``$station``, from the tier the
    range calls for."""
    branch = (
        "SELECT t.bucket, coalesce(d.name, d.id) AS station, t.sum, t.count"
        " FROM {tier} AS t JOIN devices AS d ON d.id = t.device_id"
        " WHERE {gate} AND $__timeFilter(t.bucket)"
        f" AND t.metric = '{metric}' AND t.device_id IN ($station)"
    )
    return f"""SELECT $__timeGroupAlias(r.bucket, $__interval), r.station AS metric,
  sum(r.sum) / sum(r.count) AS "value"
FROM (
{tier_rows(branch)}
) AS r
GROUP BY 1, 2
ORDER BY 1"""


def limits_sql(metric: str, *, daily: bool = False) -> str | None:
    """QCVN 05:2023 1 h / 8 h / 24 h limits of ``metric`` as reference series over the range
    (per local date, so the PM2.5 change on 2026-01-01 shows); None when it has none."""
    cols = []
    for averaging, label in AVERAGING_VI.items():
        if daily and averaging != "24h":
            continue
        expr = qcvn05_limit(metric, averaging, local_day("t.ts"))
        if expr is not None:
            cols.append(f'{expr} AS "QCVN 05:2023 – {label}"')
    if not cols:
        return None
    rows = (
        f"generate_series({local_midnight(FROM)}, {TO}, interval '1 day') AS t (ts)"
        if daily
        else hours_series()
    )
    return f'SELECT t.ts AS "time", {", ".join(cols)}\nFROM {rows}\nORDER BY 1'


def _limit_overrides(panel: timeseries.Panel) -> timeseries.Panel:
    for averaging, label in AVERAGING_VI.items():
        panel.override_by_name(
            f"QCVN 05:2023 – {label}", series_colour(LIMIT_COLOURS[averaging], dashed=True)
        )
    return panel


def pollutant_panel(metric: str, title: str, english: str) -> timeseries.Panel:
    """Hourly-or-finer means per station with the limits of ``metric`` as dashed lines."""
    queries = [station_series_sql(metric)]
    limits = limits_sql(metric)
    if limits is not None:
        queries.append(limits)
    panel = series(
        f"{title} (µg/m³)",
        f"{english}, mean per interval per station (rollup tiers), µg/m³; dashed: QCVN 05:2023"
        " limits. 1 h limits apply to hourly means, 8 h and 24 h limits to means over those"
        " periods (see the daily panel and the exceedance table).",
        *queries,
        unit=UNIT_UGM3,
    )
    return _limit_overrides(panel)


def daily_pm25_panel() -> timeseries.Panel:
    """Daily (local day) PM2.5 means as bars against the 24 h limit."""
    data = """SELECT r.bucket AS "time", coalesce(d.name, d.id) AS metric,
  r.sum / r.count AS "value"
FROM rollup_1d_local AS r JOIN devices AS d ON d.id = r.device_id
WHERE $__timeFilter(r.bucket) AND r.metric = 'pm25' AND r.device_id IN ($station)
ORDER BY 1"""
    limits = limits_sql("pm25", daily=True)
    panel = series(
        "Bụi PM2.5 trung bình ngày (µg/m³)",
        "Daily PM2.5 mean per station (local days, Asia/Ho_Chi_Minh) against the QCVN 05:2023"
        " 24 h limit (50 µg/m³, 45 from 2026-01-01).",
        *(q for q in (data, limits) if q is not None),
        unit=UNIT_UGM3,
    )
    panel.draw_style(cm.GraphDrawStyle.BARS).fill_opacity(60)
    panel.time_from("7d")
    return _limit_overrides(panel)


def aqi_panel() -> timeseries.Panel:
    """Hourly VN_AQI per station on the official colour bands."""
    sql = """SELECT h.hour AS "time", coalesce(d.name, d.id) AS metric, h.value AS "VN_AQI"
FROM aqi_hourly AS h JOIN devices AS d ON d.id = h.station_id
WHERE h.method = 'VN_AQI' AND $__timeFilter(h.hour) AND h.station_id IN ($station)
ORDER BY 1"""
    panel = series(
        "Chỉ số VN_AQI theo giờ",
        "Hourly VN_AQI (QĐ 1459/QĐ-TCMT) per station, from the analytics AQI job; background"
        " bands in the official category colours.",
        sql,
        width=24,
    )
    panel.thresholds(aqi_thresholds()).min(0)
    panel.thresholds_style(cb.GraphThresholdsStyleConfig().mode(cm.GraphTresholdsStyleMode.AREA))
    return panel


def exceedances_sql() -> str:
    """QCVN 05:2023 exceedances recorded by the AQI job in the range."""
    return f"""SELECT coalesce(d.name, d.id) AS "Trạm", {pollutant_label("x.pollutant")} AS "Chất",
  x.averaging AS "Trung bình", x.period_start AS "Từ", x.period_end AS "Đến",
  round(x.value::numeric, 1) AS "Giá trị (µg/m³)", x.limit_value AS "Giới hạn (µg/m³)"
FROM qcvn05_exceedances AS x JOIN devices AS d ON d.id = x.station_id
WHERE $__timeFilter(x.period_start) AND x.station_id IN ($station)
ORDER BY x.period_start DESC
LIMIT 500"""


def latest_sql() -> str:
    """The newest value of each pollutant per station."""
    cols = ",\n  ".join(
        f"max(l.value) FILTER (WHERE l.metric = '{m}') AS \"{label}\""
        for m, label in POLLUTANT_LABELS.items()
    )
    metrics = ", ".join(f"'{m}'" for m in POLLUTANT_LABELS)
    return f"""SELECT coalesce(d.name, d.id) AS "Trạm",
  {cols},
  max(l.ts) AS "Cập nhật"
FROM devices AS d JOIN latest AS l ON l.device_id = d.id
WHERE d.id IN ($station) AND l.metric IN ({metrics})
GROUP BY 1
ORDER BY 1"""


def build() -> dm.Dashboard:
    """The Environment dashboard."""
    dash = (
        layout.new(
            UID,
            "Môi trường không khí",
            "Environment: per station VN_AQI and pollutant trends with QCVN 05:2023/BTNMT limit"
            " lines, daily PM2.5, exceedances and latest values.",
        )
        .with_variable(area_variable())
        .with_variable(
            device_variable(
                "station",
                "Trạm",
                "air_quality",
                "Air quality station(s) in the selected area.",
            )
        )
        .with_row(db.Row("Chỉ số chất lượng không khí"))
        .with_panel(aqi_panel())
        .with_row(db.Row("Nồng độ các chất ô nhiễm"))
    )
    for metric, title, english in POLLUTANTS:
        dash = dash.with_panel(pollutant_panel(metric, title, english))
    dash = (
        dash.with_row(db.Row("So sánh với QCVN 05:2023/BTNMT"))
        .with_panel(daily_pm25_panel())
        .with_panel(
            grid(
                "Giá trị mới nhất",
                "Latest value of each pollutant per station, µg/m³.",
                latest_sql(),
            ).unit(UNIT_UGM3)
        )
        .with_panel(
            grid(
                "Vượt quy chuẩn QCVN 05:2023",
                "Periods whose 1 h, 8 h or 24 h mean exceeded the QCVN 05:2023 limit (recorded by"
                " the AQI job).",
                exceedances_sql(),
                width=24,
            )
        )
    )
    return layout.finish(dash)
