# The SDK's fluent builders take their flags positionally (``.multi(True)``).
# ruff: noqa: FBT003
"""Panel and variable builders with dothi's defaults: the one data source, Vietnamese titles,
English descriptions, SQL targets, and the official VN_AQI colours."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, TypeVar

from grafana_foundation_sdk.builders import barchart, geomap, piechart, stat, table, timeseries
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import piechart as pm

from analytics.aqi import CATEGORIES
from dashboards.query import Format, Sql, datasource_ref

if TYPE_CHECKING:
    from collections.abc import Sequence

P = TypeVar(
    "P", timeseries.Panel, stat.Panel, table.Panel, geomap.Panel, barchart.Panel, piechart.Panel
)

SEVERITY_VI: Final = {
    "critical": ("Nghiêm trọng", "red"),
    "warning": ("Cảnh báo", "orange"),
    "info": ("Thông tin", "blue"),
}
STATE_VI: Final = {
    "open": ("Mới", "red"),
    "acknowledged": ("Đã tiếp nhận", "yellow"),
    "resolved": ("Đã xử lý", "green"),
}


def _common(
    panel: P,
    title: str,
    description: str,
    queries: Sequence[tuple[str, Format]],
    *,
    width: int,
    height: int,
) -> P:
    panel.title(title).description(description).datasource(datasource_ref())
    panel.span(width).height(height)
    for i, (sql, fmt) in enumerate(queries):
        panel.with_target(Sql(sql, fmt, chr(ord("A") + i)))
    return panel


def series(
    title: str,
    description: str,
    *queries: str,
    unit: str = "short",
    width: int = 12,
    height: int = 8,
) -> timeseries.Panel:
    """A time series panel; every query is ``time_series`` (time first, sorted by time)."""
    panel = timeseries.Panel().unit(unit).line_width(1).fill_opacity(10).span_nulls(False)
    panel.legend(cb.VizLegendOptions().show_legend(True).display_mode(cm.LegendDisplayMode.LIST))
    return _common(
        panel, title, description, [(q, "time_series") for q in queries], width=width, height=height
    )


def single(
    title: str,
    description: str,
    sql: str,
    *,
    unit: str = "short",
    width: int = 6,
    height: int = 5,
) -> stat.Panel:
    """A stat panel over a one-row table query."""
    panel = stat.Panel().unit(unit).color_mode(cm.BigValueColorMode.VALUE)
    panel.reduce_options(cb.ReduceDataOptions().values(False).calcs(["lastNotNull"]))
    return _common(panel, title, description, [(sql, "table")], width=width, height=height)


def grid(
    title: str, description: str, sql: str, *, width: int = 12, height: int = 8
) -> table.Panel:
    """A table panel."""
    panel = table.Panel().show_header(True)
    return _common(panel, title, description, [(sql, "table")], width=width, height=height)


def bars(
    title: str,
    description: str,
    sql: str,
    *,
    x_field: str,
    unit: str = "short",
    width: int = 12,
    height: int = 8,
) -> barchart.Panel:
    """A bar chart over a table query whose ``x_field`` column names the bars."""
    panel = barchart.Panel().x_field(x_field).unit(unit).show_value(cm.VisibilityMode.AUTO)
    return _common(panel, title, description, [(sql, "table")], width=width, height=height)


def pie(title: str, description: str, sql: str, *, unit: str, width: int = 6) -> piechart.Panel:
    """A pie chart of the numeric columns of a one-row table query."""
    panel = piechart.Panel().unit(unit).pie_type(pm.PieChartType.DONUT)
    panel.reduce_options(cb.ReduceDataOptions().values(False).calcs(["lastNotNull"]))
    return _common(panel, title, description, [(sql, "table")], width=width, height=8)


def aqi_thresholds() -> db.ThresholdsConfig:
    """VN_AQI bands (QĐ 1459 Bảng 1) as absolute thresholds in the official colours."""
    steps = [
        dm.Threshold(value=None if c.low == 0 else float(c.low), color=c.hex) for c in CATEGORIES
    ]
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(steps)


def value_names(names: dict[str, tuple[str, str]]) -> list[dm.ValueMapping]:
    """Value mappings showing codes (``critical``) as Vietnamese words in a colour."""
    options = {
        key: dm.ValueMappingResult(text=text, color=colour, index=i)
        for i, (key, (text, colour)) in enumerate(names.items())
    }
    return [dm.ValueMap(options=options)]


def colour_cells() -> dm.DynamicConfigValue:
    """Table cells coloured by their value's mapping or threshold."""
    return dm.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"})


def series_colour(colour: str, *, dashed: bool = False) -> list[dm.DynamicConfigValue]:
    """Override properties fixing a series' colour (reference lines are dashed)."""
    props = [dm.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": colour})]
    if dashed:
        props.append(
            dm.DynamicConfigValue(
                id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}
            )
        )
        props.append(dm.DynamicConfigValue(id_val="custom.fillOpacity", value=0))
    return props


def area_variable() -> db.QueryVariable:
    """``$area``: the province, the city and the districts; devices in any area below count."""
    sql = (
        "SELECT name AS __text, id AS __value FROM areas"
        " WHERE level IN ('province', 'city', 'district')"
        " ORDER BY level <> 'province', level <> 'city', name"
    )
    return (
        db.QueryVariable("area")
        .id("area")
        .label("Khu vực")
        .description("Area: the province, the city or a district (wards and communes included).")
        .datasource(datasource_ref())
        .query(sql)
        .multi(True)
        .include_all(True)
        .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD)
        .current(dm.VariableOption(selected=True, text="All", value="$__all"))
    )


def device_variable(name: str, label: str, kind: str, description: str) -> db.QueryVariable:
    """A multi-value variable of the devices of ``kind`` in ``$area``."""
    sql = (
        "SELECT coalesce(d.name, d.id) AS __text, d.id AS __value FROM devices AS d"
        f" WHERE d.kind = '{kind}'"
        " AND d.area_id IN (SELECT area_id FROM area_ancestors WHERE ancestor_id IN ($area))"
        " ORDER BY 1"
    )
    return (
        db.QueryVariable(name)
        .id(name)
        .label(label)
        .description(description)
        .datasource(datasource_ref())
        .query(sql)
        .multi(True)
        .include_all(True)
        .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD)
        .current(dm.VariableOption(selected=True, text="All", value="$__all"))
    )


def link_to_dashboards() -> db.DashboardLink:
    """The dropdown of every dothi dashboard, keeping the time range and variables."""
    return (
        db.DashboardLink("Bảng điều khiển dothi")
        .type(dm.DashboardLinkType.DASHBOARDS)
        .tags(["dothi"])
        .as_dropdown(True)
        .keep_time(True)
        .include_vars(True)
    )
