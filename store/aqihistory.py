"""AQI history as the API serves it, from the ``aqi_hourly`` and ``aqi_daily`` tables.

Those tables are written by the analytics AQI job; this module only reads them. An area's value
for a period is the highest of its stations' (the worst air in the area), the same rule as the
API's "now" for areas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import date, datetime

    import psycopg

Resolution = Literal["hour", "day"]
METHOD: Final = "VN_AQI"


@dataclass(frozen=True, slots=True)
class AqiPeriod:
    """One hour's (start, UTC) or one local day's AQI."""

    period: datetime | date
    value: int
    dominant: str
    station_id: str


def _sql(resolution: Resolution) -> str:
    table, col = ("aqi_hourly", "hour") if resolution == "hour" else ("aqi_daily", "day")
    # DISTINCT ON keeps, per period, the station with the highest value (ties: lowest id).
    return f"""
SELECT DISTINCT ON ({col}) {col}, value, dominant, station_id
FROM {table}
WHERE station_id = ANY(%(stations)s::text[]) AND method = %(method)s
  AND {col} >= %(start)s AND {col} < %(end)s
ORDER BY {col}, value DESC, station_id
"""


async def history(
    conn: psycopg.AsyncConnection[Any],
    station_ids: Sequence[str],
    resolution: Resolution,
    start: datetime | date,
    end: datetime | date,
) -> list[AqiPeriod]:
    """Per period in ``[start, end)``, the highest VN_AQI among ``station_ids``.

    Args:
        conn: any connection.
        station_ids: one station, or an area's visible stations.
        resolution: ``hour`` (start of the hour, UTC) or ``day`` (local dates).
        start: inclusive start (a datetime for hours, a date for days).
        end: exclusive end.
    """
    if not station_ids:
        return []
    cur = await conn.execute(
        _sql(resolution),
        {"stations": list(station_ids), "method": METHOD, "start": start, "end": end},
    )
    return [AqiPeriod(*r) for r in await cur.fetchall()]
