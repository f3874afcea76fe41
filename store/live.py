"""The query behind the API's live stream: latest values that changed recently.

The stream polls ``latest`` (one statement per API process per poll, whatever the number of
listeners) instead of adding a trigger or a received_at index to the ingest hot path; see
docs/api.md "Live stream" for the measurements and the trade-off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from store.visibility import AREA_SUBTREE

if TYPE_CHECKING:
    from datetime import datetime

    import psycopg


@dataclass(frozen=True, slots=True)
class LiveRow:
    """A latest value with what subscribers filter on."""

    device_id: str
    metric: str
    ts: datetime
    value: float
    quality: int
    kind: str
    area_id: str | None
    public: bool


async def latest_since(conn: psycopg.AsyncConnection[Any], since: datetime) -> list[LiveRow]:
    """Latest values of registered devices timestamped after ``since``, oldest first."""
    cur = await conn.execute(
        "SELECT l.device_id, l.metric, l.ts, l.value, l.quality, d.kind, d.area_id, d.public"
        " FROM latest AS l JOIN devices AS d ON d.id = l.device_id"
        " WHERE l.ts > %s ORDER BY l.ts, l.device_id, l.metric",
        (since,),
    )
    return [LiveRow(*r) for r in await cur.fetchall()]


async def area_subtree(conn: psycopg.AsyncConnection[Any], area_id: str) -> frozenset[str]:
    """The area and every area below it."""

    cur = await conn.execute(AREA_SUBTREE, {"subtree_roots": [area_id]})
    return frozenset(r[0] for r in await cur.fetchall())
