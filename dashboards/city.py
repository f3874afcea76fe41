"""*Tổng quan đô thị* (City overview): air quality on a map, open alerts, rivers, energy today."""

# The SDK's fluent builders take their flags positionally.
# ruff: noqa: FBT003

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import geomap, table
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import geomap as gm

from dashboards import layout
from dashboards.panels import (
    SEVERITY_VI,
    STATE_VI,
    aqi_thresholds,
    area_variable,
    bars,
    colour_cells,
    grid,
    single,
    value_names,
)
from dashboards.query import Sql, datasource_ref
from dashboards.sql import (
    SEVERITY_RANK,
    TO,
    aqi_category_name,
    counter_steps,
    district_join,
    gauge_levels,
    in_area,
    local_midnight,
    pollutant_label,
)

UID: Final = "dothi-city"
ALERT_LINK: Final = "${dothi_url}/ops#alert=${__data.fields.id}"
"""Where a row of an alert table leads: the operations console, opened on that alert."""

ALARM_VI: Final = {
    "0": ("Dưới BĐ I", "green"),
    "1": ("BĐ I", "yellow"),
    "2": ("BĐ II", "orange"),
    "3": ("BĐ III", "red"),
}


def station_aqi_sql() -> str:
    """Each station's newest hourly VN_AQI (from the AQI job) within 3 h of the range's end."""
    return f"""SELECT DISTINCT ON (d.id)
  h.hour AS "time", coalesce(d.name, d.id) AS "Trạm", d.lat AS latitude, d.lon AS longitude,
  h.value AS "VN_AQI", {aqi_category_name()} AS "Mức",
  {pollutant_label("h.dominant")} AS "Chất ô nhiễm chính"
FROM aqi_hourly AS h JOIN devices AS d ON d.id = h.station_id
WHERE h.method = 'VN_AQI' AND d.kind = 'air_quality' AND d.lat IS NOT NULL
  AND h.hour > {TO} - interval '3 hours' AND h.hour <= {TO}
  AND {in_area()}
ORDER BY d.id, h.hour DESC"""


def open_alerts_sql(extra: str = "true") -> str:
    """Unresolved alerts in ``$area`` (and those without an area), worst and oldest first."""
    return f"""SELECT a.id, a.severity AS "Mức độ", a.state AS "Trạng thái", a.title AS "Cảnh báo",
  coalesce(ar.name, '—') AS "Khu vực", a.value AS "Giá trị", a.opened_at AS "Mở lúc"
FROM alerts AS a LEFT JOIN areas AS ar ON ar.id = a.area_id
WHERE a.state <> 'resolved' AND (a.area_id IS NULL OR {in_area("a.area_id")}) AND {extra}
ORDER BY {SEVERITY_RANK}, a.opened_at
LIMIT 500"""


def gauges_now_sql() -> str:
    """Each river gauge's latest level against its alarm levels I/II/III."""
    return f"""SELECT coalesce(d.name, d.id) AS "Trạm", l.value AS "Mực nước (m)",
  lv.l1 AS "BĐ I", lv.l2 AS "BĐ II", lv.l3 AS "BĐ III",
  CASE WHEN l.value >= lv.l3 THEN 3 WHEN l.value >= lv.l2 THEN 2
       WHEN l.value >= lv.l1 THEN 1 ELSE 0 END AS "Cấp báo động",
  l.ts AS "Lúc"
FROM devices AS d
JOIN latest AS l ON l.device_id = d.id AND l.metric = 'water_level'
LEFT JOIN ({gauge_levels()}) AS lv ON lv.device_id = d.id
WHERE d.kind = 'river_gauge' AND {in_area()}
ORDER BY 6 DESC, 1"""


def alerts_table(title: str, description: str, sql: str) -> table.Panel:
    """An alert table whose rows link to ``/ops#alert=<id>``."""
    panel = grid(title, description, sql, width=24, height=9)
    panel.data_links([db.DashboardLink("Mở trong bảng điều hành").url(ALERT_LINK)])
    panel.override_by_name(
        "Mức độ",
        [dm.DynamicConfigValue("mappings", value_names(SEVERITY_VI)), colour_cells()],
    )
    panel.override_by_name("Trạng thái", [dm.DynamicConfigValue("mappings", value_names(STATE_VI))])
    panel.override_by_name("id", [dm.DynamicConfigValue("custom.width", 70)])
    return panel


def _aqi_map() -> geomap.Panel:
    markers = (
        cb.MapLayerOptions()
        .type("markers")
        .name("Trạm quan trắc không khí")
        .tooltip(True)
        .location(
            cb.FrameGeometrySource()
            .mode(cm.FrameGeometrySourceMode.COORDS)
            .latitude("latitude")
            .longitude("longitude")
        )
        .config(
            {
                "showLegend": True,
                "style": {
                    "size": {"fixed": 14},
                    "color": {"field": "VN_AQI", "fixed": "#00E400"},
                    "opacity": 0.9,
                    "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"},
                    "text": {"mode": "field", "field": "VN_AQI", "fixed": ""},
                    "textConfig": {"fontSize": 10, "textAlign": "center"},
                },
            }
        )
    )
    return (
        geomap.Panel()
        .title("Bản đồ VN_AQI các trạm")
        .description(
            "Air quality stations coloured by their latest hourly VN_AQI category (QĐ 1459/QĐ-TCMT"
            " colours); from the AQI job's hourly table, newest hour within 3 h of the range end."
        )
        .datasource(datasource_ref())
        .with_target(Sql(station_aqi_sql(), "table"))
        .span(12)
        .height(12)
        .view(geomap.MapViewConfig().id("fit").all_layers(True).padding(10))
        .basemap(cb.MapLayerOptions().type("default").name("Nền bản đồ"))
        .layers([markers])
        .tooltip(geomap.TooltipOptions().mode(gm.TooltipMode.DETAILS))
        .thresholds(aqi_thresholds())
        .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
    )


def build(dothi_url: str) -> dm.Dashboard:
    """The City overview dashboard; alert rows link to ``dothi_url``/ops."""
    stations = grid(
        "VN_AQI theo trạm",
        "Latest hourly VN_AQI per station with its category and dominant pollutant.",
        station_aqi_sql(),
        width=12,
        height=12,
    )
    stations.thresholds(aqi_thresholds()).color_scheme(
        db.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS)
    )
    stations.override_by_name("VN_AQI", [colour_cells()])
    stations.override_by_name("latitude", [dm.DynamicConfigValue("custom.hidden", True)])
    stations.override_by_name("longitude", [dm.DynamicConfigValue("custom.hidden", True)])

    gauges = grid(
        "Mực nước sông so với mức báo động",
        "River gauges: latest water level against flood alarm levels I/II/III"
        " (QĐ 05/2020/QĐ-TTg; levels from the device or analytics.regulations).",
        gauges_now_sql(),
        width=12,
        height=7,
    )
    gauges.unit("lengthm").override_by_name(
        "Cấp báo động",
        [dm.DynamicConfigValue("mappings", value_names(ALARM_VI)), colour_cells()],
    )

    kwh_today = single(
        "Điện năng tiêu thụ hôm nay",
        "Energy consumed today (local day of the range end) by the smart meters in the area, kWh;"
        " from the hourly rollup, counter resets handled.",
        f"""SELECT coalesce(sum(e.kwh), 0) AS "kWh"
FROM ({counter_steps(("smart_meter",))}) AS e
WHERE e.bucket >= {local_midnight(TO)} AND e.bucket <= {TO}""",
        unit="kwatth",
        width=4,
        height=7,
    )
    kwh_by_area = bars(
        "Điện năng hôm nay theo khu vực",
        "Energy consumed today per city/district, kWh (smart meters).",
        f"""SELECT dist.name AS "Khu vực", sum(e.kwh) AS "kWh"
FROM ({counter_steps(("smart_meter",))}) AS e
{district_join("e.area_id")}
WHERE e.bucket >= {local_midnight(TO)} AND e.bucket <= {TO}
GROUP BY dist.name ORDER BY 2 DESC""",
        x_field="Khu vực",
        unit="kwatth",
        width=8,
        height=7,
    )

    dash = (
        layout.new(
            UID,
            "Tổng quan đô thị Nam Định",
            "City overview: air quality (VN_AQI) on a map, open alerts, river gauges against"
            " flood alarm levels, energy today.",
            time_from="now-6h",
        )
        .with_variable(area_variable())
        .with_variable(
            db.ConstantVariable("dothi_url")
            .id("dothi_url")
            .label("dothi")
            .description("Base URL of the dothi API serving /ops (set at export).")
            .value(dothi_url.rstrip("/"))
        )
        .with_row(db.Row("Không khí (VN_AQI)"))
        .with_panel(_aqi_map())
        .with_panel(stations)
        .with_row(db.Row("Cảnh báo"))
        .with_panel(
            alerts_table(
                "Cảnh báo đang mở",
                "Open and acknowledged alerts, most severe and oldest first; a row opens the"
                " alert in the operations console (/ops).",
                open_alerts_sql(),
            )
        )
        .with_row(db.Row("Sông ngòi và năng lượng"))
        .with_panel(gauges)
        .with_panel(kwh_today)
        .with_panel(kwh_by_area)
    )
    return layout.finish(dash)
