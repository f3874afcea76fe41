"""Grafana dashboards as code for the operations centre, their provisioning and publication.

Five dashboards (:data:`CATALOG`), built with grafana-foundation-sdk, all reading the rollup
tiers through one PostgreSQL data source connected as the read-only role ``dothi_grafana``:

- ``dothi-city`` *Tổng quan đô thị Nam Định*: VN_AQI map, open alerts, rivers, energy today;
- ``dothi-environment`` *Môi trường không khí*: pollutants per station with QCVN 05 limits;
- ``dothi-energy`` *Năng lượng*: consumption by area, time-of-use split, street lights;
- ``dothi-flood`` *Phòng chống lũ*: river levels against alarm levels I/II/III, rate of rise;
- ``dothi-platform`` *Tình trạng hệ thống*: ingest rate, lag, dead letters, database size.

``dothi dashboards export DIR`` writes Grafana provisioning files (:mod:`dashboards.provision`);
``dothi dashboards publish`` pushes the same through Grafana's HTTP API
(:mod:`dashboards.publish`). docs/dashboards.md describes every panel.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import city, energy, environment, flood, platform
from dashboards.query import DATASOURCE_NAME, DATASOURCE_TYPE, DATASOURCE_UID, register

if TYPE_CHECKING:
    from collections.abc import Callable

    from grafana_foundation_sdk.models import dashboard as dm

__all__ = [
    "CATALOG",
    "DATASOURCE_NAME",
    "DATASOURCE_TYPE",
    "DATASOURCE_UID",
    "DEFAULT_DOTHI_URL",
    "FOLDER_TITLE",
    "FOLDER_UID",
    "build_all",
    "to_json",
]

FOLDER_UID: Final = "dothi"
FOLDER_TITLE: Final = "dothi – Nam Định"
DEFAULT_DOTHI_URL: Final = "http://127.0.0.1:8080"

CATALOG: Final[dict[str, Callable[[str], dm.Dashboard]]] = {
    city.UID: city.build,
    environment.UID: lambda _: environment.build(),
    energy.UID: lambda _: energy.build(),
    flood.UID: lambda _: flood.build(),
    platform.UID: lambda _: platform.build(),
}
"""Every dashboard by uid: a function of the dothi API's base URL (for links to /ops)."""

register()  # so Dashboard.from_json reads our SQL targets back as SqlQuery


def to_json(dash: dm.Dashboard) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (plain dicts, lists and scalars)."""
    data: dict[str, Any] = json.loads(json.dumps(dash, cls=JSONEncoder, ensure_ascii=False))
    return data


def build_all(dothi_url: str = DEFAULT_DOTHI_URL) -> dict[str, dict[str, Any]]:
    """Every dashboard's JSON by uid; alert tables link to ``dothi_url``/ops."""
    return {uid: to_json(build(dothi_url)) for uid, build in CATALOG.items()}
