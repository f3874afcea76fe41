"""VN_AQI now: hourly means from the rollups, NowCast and sub-indices from analytics.aqi.

The current AQI of a station is that of the latest complete hour (QĐ 1459 defines the hourly
AQI from hourly means): 12 hourly means of PM for the NowCast, the hour's means of the gases.
It is computed per request from the 1 h rollup (one statement for every station asked), so it
is current even before the AQI history job has run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from analytics import aqi as vn
from api.models import Aqi, AqiCategory
from store import queries

if TYPE_CHECKING:
    from collections.abc import Sequence

    import psycopg

HOUR: Final = timedelta(hours=1)


def current_hour(now: datetime | None = None) -> datetime:
    """Start of the latest complete hour (UTC)."""
    t = (now or datetime.now(UTC)).astimezone(UTC)
    return t.replace(minute=0, second=0, microsecond=0) - HOUR


def compute(
    conn: psycopg.Connection[Any], station_ids: Sequence[str], hour: datetime
) -> dict[str, vn.AqiResult | None]:
    """The hourly VN_AQI of each station for the hour starting at ``hour`` (sync: run it in
    the API's worker thread)."""
    if not station_ids:
        return {}
    n = vn.NOWCAST_HOURS
    rows = queries.aggregate(
        conn, list(station_ids), list(vn.POLLUTANTS), hour - (n - 1) * HOUR, hour + HOUR, HOUR
    )
    hist: dict[str, dict[str, list[float | None]]] = {s: {} for s in station_ids}
    for r in rows:
        if r.device_id is None:
            continue
        series = hist[r.device_id].setdefault(r.metric, [None] * n)
        series[int((hour - r.bucket) / HOUR)] = r.values["avg"]
    out: dict[str, vn.AqiResult | None] = {}
    for station, history in hist.items():
        try:
            out[station] = vn.hourly_aqi(history) if history else None
        except ValueError:  # negative PM (a faulty sensor): no AQI rather than a wrong one
            out[station] = None
    return out


def category_model(cat: vn.Category) -> AqiCategory:
    """The API's view of a VN_AQI category."""
    adv = cat.advice
    return AqiCategory(
        level=cat.level,
        key=cat.key,
        name_vi=cat.name_vi,
        name_en=cat.name_en,
        colour_hex=cat.hex,
        effect_vi=adv.effect_vi if adv else None,
        effect_en=adv.effect_en if adv else None,
        advice_vi=adv.normal_vi if adv else None,
        advice_en=adv.normal_en if adv else None,
        advice_sensitive_vi=adv.sensitive_vi if adv else None,
        advice_sensitive_en=adv.sensitive_en if adv else None,
    )


def model(result: vn.AqiResult | None) -> Aqi | None:
    """The API's view of an AQI result."""
    if result is None:
        return None
    return Aqi(
        value=result.value,
        dominant=result.dominant,
        category=category_model(result.category),
        sub_indices=dict(result.sub_indices),
        inputs={k: round(v, 2) for k, v in result.inputs.items()},
    )
