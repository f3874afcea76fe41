"""What every dothi dashboard has in common: tags, time zone, refresh, links, numbering."""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import dashboard as dm

from dashboards.panels import link_to_dashboards
from dashboards.sql import LOCAL_TZ

TAGS: Final = ["dothi", "nam-dinh"]


def new(uid: str, title: str, description: str, *, time_from: str = "now-24h") -> db.Dashboard:
    """A dashboard in Vietnamese time with dothi's tags, a shared crosshair and links to the
    other dothi dashboards; ``description`` is the English one-liner."""
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .timezone(LOCAL_TZ)
        .time(time_from, "now")
        .refresh("1m")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .link(link_to_dashboards())
    )


def finish(builder: db.Dashboard) -> dm.Dashboard:
    """Build, then number every panel (rows included) in layout order."""
    dash = builder.build()
    for i, panel in enumerate(dash.panels or [], start=1):
        panel.id_val = i
    return dash
