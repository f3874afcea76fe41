"""*Phòng chống lũ* (Flood): river levels against alarm levels I/II/III (QĐ 05/2020/QĐ-TTg),
rate of rise, rainfall and flood alerts."""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.models import dashboard as dm

from dashboards import layout
from dashboards.city import ALARM_VI, alerts_table, gauges_now_sql, open_alerts_sql
from dashboards.panels import (
    area_variable,
    colour_cells,
    device_variable,
    grid,
    series,
    series_colour,
    value_names,
)
from dashboards.sql import gauge_levels, hours_series, in_area, tier_rows

UID: Final = "dothi-flood"
ALARM_LINES: Final = (("BĐ I", "yellow"), ("BĐ II", "orange"), ("BĐ III", "red"))


def level_sql() -> str:
    """Mean water level per interval of the gauge(s) in ``$gauge``, metres."""
    branch = (
        "SELECT t.bucket, coalesce(d.name, d.id) AS station, t.sum, t.count"
        " FROM {tier} AS t JOIN devices AS d ON d.id = t.device_id"
        " WHERE {gate} AND $__timeFilter(t.bucket) AND t.metric = 'water_level'"
        " AND t.device_id IN ($gauge)"
    )
    return f"""SELECT $__timeGroupAlias(r.bucket, $__interval), r.station AS metric,
  sum(r.sum) / sum(r.count) AS "Mực nước"
FROM (
{tier_rows(branch)}
) AS r
GROUP BY 1, 2
ORDER BY 1"""


def alarm_lines_sql() -> str:
    """Alarm levels I/II/III of the gauge in ``$gauge`` as horizontal reference series."""
    return f"""SELECT t.ts AS "time", lv.l1 AS "BĐ I", lv.l2 AS "BĐ II", lv.l3 AS "BĐ III"
FROM {hours_series()}
CROSS JOIN ({gauge_levels()}) AS lv
WHERE lv.device_id IN ($gauge)
ORDER BY 1"""


def rise_sql() -> str:
    """Rate of rise in cm/h between consecutive intervals (last reading of each)."""
    branch = (
        "SELECT t.bucket, coalesce(d.name, d.id) AS station, t.last, t.last_ts"
        " FROM {tier} AS t JOIN devices AS d ON d.id = t.device_id"
        " WHERE {gate} AND $__timeFilter(t.bucket) AND t.metric = 'water_level'"
        " AND t.device_id IN ($gauge)"
    )
    return f"""SELECT s.time, s.station AS metric,
  (s.lv - lag(s.lv) OVER w) * 100
    / nullif(extract(epoch FROM s.ts - lag(s.ts) OVER w) / 3600, 0) AS "cm/h"
FROM (
  SELECT $__timeGroupAlias(r.bucket, $__interval), r.station,
    last(r.last, r.last_ts) AS lv, max(r.last_ts) AS ts
  FROM (
{tier_rows(branch)}
  ) AS r
  GROUP BY 1, 2
) AS s
WINDOW w AS (PARTITION BY s.station ORDER BY s.time)
ORDER BY 1"""


def rainfall_sql() -> str:
    """Mean rainfall intensity per interval per weather station in ``$area``, mm/h."""
    branch = (
        "SELECT t.bucket, coalesce(d.name, d.id) AS station, t.sum, t.count"
        " FROM {tier} AS t JOIN devices AS d ON d.id = t.device_id"
        " WHERE {gate} AND $__timeFilter(t.bucket) AND t.metric = 'rainfall'"
        f" AND d.kind = 'weather' AND {in_area()}"
    )
    return f"""SELECT $__timeGroupAlias(r.bucket, $__interval), r.station AS metric,
  sum(r.sum) / sum(r.count) AS "mm/h"
FROM (
{tier_rows(branch)}
) AS r
GROUP BY 1, 2
ORDER BY 1"""


def level_panel() -> timeseries.Panel:
    """One panel per selected gauge: level with its alarm levels as dashed lines."""
    panel = series(
        "Mực nước ${gauge:text}",
        "Water level at the gauge (mean per interval, rollup tiers), metres, with its flood alarm"
        " levels I/II/III (QĐ 05/2020/QĐ-TTg) as dashed lines. Repeated for each selected gauge.",
        level_sql(),
        alarm_lines_sql(),
        unit="lengthm",
        width=12,
    )
    panel.repeat("gauge").repeat_direction("h")
    for name, colour in ALARM_LINES:
        panel.override_by_name(name, series_colour(colour, dashed=True))
    return panel


def build() -> dm.Dashboard:
    """The Flood dashboard."""
    rise = series(
        "Tốc độ nước lên (cm/h)",
        "Rate of rise per gauge, cm/h, between the last readings of consecutive intervals"
        " (15 min at least). The river-rise rule alerts above 50 cm in 15 min.",
        rise_sql(),
        unit="short",
        width=12,
    )
    rise.interval("15m")
    now = grid(
        "Mực nước hiện tại",
        "Latest level of each gauge in the area against its alarm levels.",
        gauges_now_sql(),
        width=12,
    )
    now.unit("lengthm").override_by_name(
        "Cấp báo động",
        [dm.DynamicConfigValue("mappings", value_names(ALARM_VI)), colour_cells()],
    )
    dash = (
        layout.new(
            UID,
            "Phòng chống lũ – mực nước sông",
            "Flood: river gauges with alarm levels I/II/III, rate of rise, rainfall and flood"
            " alerts.",
            time_from="now-3d",
        )
        .with_variable(area_variable())
        .with_variable(
            device_variable("gauge", "Trạm thủy văn", "river_gauge", "River gauge(s) in the area.")
        )
        .with_row(db.Row("Mực nước và mức báo động"))
        .with_panel(level_panel())
        .with_row(db.Row("Diễn biến"))
        .with_panel(rise)
        .with_panel(now)
        .with_panel(
            series(
                "Lượng mưa (mm/h)",
                "Rainfall intensity per weather station in the area, mm/h (mean per interval).",
                rainfall_sql(),
                unit="short",
                width=12,
            )
        )
        .with_panel(
            alerts_table(
                "Cảnh báo lũ đang mở",
                "Open flood alerts (alarm levels and fast rises); a row opens the alert in /ops.",
                open_alerts_sql("(a.kind = 'river_alarm' OR a.metric = 'water_level')"),
            ).span(12)
        )
    )
    return layout.finish(dash)
