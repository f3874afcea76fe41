"""*Năng lượng* (Energy): consumption by area, the time-of-use split (TT 16/2014/TT-BCT),
street lighting and rooftop solar."""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from dashboards import layout
from dashboards.city import alerts_table, open_alerts_sql
from dashboards.panels import area_variable, pie, series, series_colour, single
from dashboards.sql import (
    FROM,
    TO,
    counter_steps,
    day_start,
    district_join,
    in_area,
    local_day,
    local_midnight,
    tier_rows,
)

UID: Final = "dothi-energy"
TOU_BANDS: Final = (
    ("peak_kwh", "Cao điểm", "red"),
    ("normal_kwh", "Bình thường", "yellow"),
    ("offpeak_kwh", "Thấp điểm", "green"),
)


def consumption_by_area_sql() -> str:
    """kWh per interval per city/district from the smart meters' energy counters."""
    return f"""SELECT $__timeGroupAlias(e.bucket, $__interval), dist.name AS metric,
  sum(e.kwh) AS "kWh"
FROM ({counter_steps(("smart_meter",))}) AS e
{district_join("e.area_id")}
WHERE $__timeFilter(e.bucket)
GROUP BY 1, 2
ORDER BY 1"""


def tou_daily_sql() -> str:
    """kWh per local day in the peak / normal / off-peak bands (analytics energy job)."""
    cols = ", ".join(f'sum(e.{col}) AS "{label}"' for col, label, _ in TOU_BANDS)
    return f"""SELECT {day_start("e.day")} AS "time", {cols}
FROM energy_tou_daily AS e JOIN devices AS d ON d.id = e.device_id
WHERE e.day BETWEEN {local_day(FROM)} AND {local_day(TO)} AND {in_area()}
GROUP BY 1
ORDER BY 1"""


def tou_share_sql() -> str:
    """The range's kWh per band, one row (for the pie chart)."""
    cols = ", ".join(f'coalesce(sum(e.{col}), 0) AS "{label}"' for col, label, _ in TOU_BANDS)
    return f"""SELECT {cols}
FROM energy_tou_daily AS e JOIN devices AS d ON d.id = e.device_id
WHERE e.day BETWEEN {local_day(FROM)} AND {local_day(TO)} AND {in_area()}"""


def power_sql(kind: str, label: str) -> str:
    """Total power of the devices of ``kind`` per interval, kW: each device's mean, summed."""
    branch = (
        "SELECT t.bucket, t.device_id, t.sum, t.count"
        " FROM {tier} AS t JOIN devices AS d ON d.id = t.device_id"
        " WHERE {gate} AND $__timeFilter(t.bucket) AND t.metric = 'power'"
        f" AND d.kind = '{kind}' AND {in_area()}"
    )
    return f"""SELECT s.time, sum(s.w) / 1000 AS "{label}"
FROM (
  SELECT $__timeGroupAlias(r.bucket, $__interval), r.device_id, sum(r.sum) / sum(r.count) AS w
  FROM (
{tier_rows(branch)}
  ) AS r
  GROUP BY 1, 2
) AS s
GROUP BY 1
ORDER BY 1"""


def lamps_on_sql() -> str:
    """Street lights on now (latest ``lamp_on``) and how many report at all."""
    return f"""SELECT count(*) FILTER (WHERE l.value >= 0.5) AS "Đang sáng",
  count(*) AS "Tổng số đèn"
FROM devices AS d JOIN latest AS l ON l.device_id = d.id AND l.metric = 'lamp_on'
WHERE d.kind = 'street_light' AND {in_area()}"""


def kwh_today_sql(kind: str) -> str:
    """kWh of the devices of ``kind`` since local midnight of the range's end day."""
    return f"""SELECT coalesce(sum(e.kwh), 0) AS "kWh"
FROM ({counter_steps((kind,))}) AS e
WHERE e.bucket >= {local_midnight(TO)} AND e.bucket <= {TO}"""


def build() -> dm.Dashboard:
    """The Energy dashboard."""
    by_area = series(
        "Điện năng tiêu thụ theo khu vực (kWh)",
        "Energy consumed per city/district (smart meters), kWh per interval: counter increase"
        " inside each rollup bucket plus the step from the previous one, resets handled.",
        consumption_by_area_sql(),
        unit="kwatth",
        width=24,
    )
    by_area.draw_style(cm.GraphDrawStyle.BARS).fill_opacity(70).interval("1h")
    by_area.stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL))

    tou = series(
        "Điện năng theo khung giờ (TT 16/2014/TT-BCT)",
        "Daily energy in the peak, normal and off-peak bands of TT 16/2014/TT-BCT (analytics"
        " energy job, completed local days), kWh.",
        tou_daily_sql(),
        unit="kwatth",
        width=16,
    )
    tou.draw_style(cm.GraphDrawStyle.BARS).fill_opacity(80).stacking(
        cb.StackingConfig().mode(cm.StackingMode.NORMAL)
    )
    tou.time_from("30d")
    share = pie(
        "Tỷ trọng theo khung giờ",
        "Share of each time-of-use band over the last 30 days.",
        tou_share_sql(),
        unit="kwatth",
        width=8,
    )
    share.time_from("30d")
    for panel in (tou, share):
        for _, label, colour in TOU_BANDS:
            panel.override_by_name(label, series_colour(colour))

    power = series(
        "Công suất chiếu sáng và điện mặt trời (kW)",
        "Total power of the street lights and of rooftop solar in the area, kW (mean per"
        " interval per device, summed).",
        power_sql("street_light", "Chiếu sáng công cộng"),
        power_sql("solar", "Điện mặt trời"),
        unit="kwatt",
        width=12,
    )

    dash = (
        layout.new(
            UID,
            "Năng lượng",
            "Energy: consumption by area, time-of-use split, street lights and rooftop solar.",
            time_from="now-7d",
        )
        .with_variable(area_variable())
        .with_row(db.Row("Tiêu thụ điện"))
        .with_panel(by_area)
        .with_panel(tou)
        .with_panel(share)
        .with_row(db.Row("Chiếu sáng công cộng"))
        .with_panel(power)
        .with_panel(
            single(
                "Đèn đường đang sáng",
                "Street lights whose latest lamp_on reading is on, and all reporting lights.",
                lamps_on_sql(),
                width=6,
                height=8,
            )
        )
        .with_panel(
            single(
                "Điện năng chiếu sáng hôm nay",
                "Energy used by street lights today (local day of the range end), kWh.",
                kwh_today_sql("street_light"),
                unit="kwatth",
                width=6,
                height=8,
            )
        )
        .with_panel(
            alerts_table(
                "Đèn sáng ban ngày",
                "Open alerts of street lights on in daylight (rule kind lamp_daylight); a row"
                " opens the alert in /ops.",
                open_alerts_sql("a.kind = 'lamp_daylight'"),
            )
        )
    )
    return layout.finish(dash)
