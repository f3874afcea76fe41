"""Alerts as a caller may see them: listings filtered by device visibility, and the live feed.

:func:`analytics.alerts.list_alerts` has no visibility filter, and paging through it while
dropping hidden alerts in Python would break its keyset pages; so the API lists alerts with
this query (same filters, same order) and uses analytics.alerts for single alerts, their history
and every transition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from store.visibility import AREA_SUBTREE, Visibility

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    import psycopg

    AConn = psycopg.AsyncConnection[Any]


@dataclass(frozen=True, slots=True)
class AlertRow:
    """The columns of an alert the API shows (names as in analytics.alerts.Alert)."""

    id: int
    rule_id: str
    kind: str
    device_id: str
    metric: str
    area_id: str | None
    severity: str
    state: str
    flapping: bool
    title: str
    message: str
    value: float | None
    threshold: float | None
    details: Mapping[str, Any]
    started_at: datetime
    opened_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None


_COLS: Final = (
    "a.id, a.rule_id, a.kind, a.device_id, a.metric, a.area_id, a.severity, a.state,"
    " a.flapping, a.title, a.message, a.value, a.threshold, a.details, a.started_at,"
    " a.opened_at, a.updated_at, a.acknowledged_at, a.acknowledged_by, a.resolved_at,"
    " a.resolved_by, a.resolution"
)


async def listing(
    conn: AConn,
    vis: Visibility,
    *,
    states: Sequence[str] | None,
    severities: Sequence[str] | None,
    area_id: str | None,
    device_id: str | None,
    before_id: int | None,
    limit: int,
) -> list[AlertRow]:
    """Visible alerts, newest first; ``area_id`` includes the areas below it."""
    conds = [vis.predicate()]
    params: dict[str, Any] = {**vis.params(), "limit": limit}
    if states:
        conds.append("a.state = ANY(%(states)s::text[])")
        params["states"] = list(states)
    if severities:
        conds.append("a.severity = ANY(%(sev)s::text[])")
        params["sev"] = list(severities)
    if device_id is not None:
        conds.append("a.device_id = %(dev)s")
        params["dev"] = device_id
    if area_id is not None:
        conds.append(f"a.area_id IN ({AREA_SUBTREE})")
        params["subtree_roots"] = [area_id]
    if before_id is not None:
        conds.append("a.id < %(before)s")
        params["before"] = before_id
    cur = await conn.execute(
        f"SELECT {_COLS} FROM alerts AS a JOIN devices AS d ON d.id = a.device_id"
        f" WHERE {' AND '.join(conds)} ORDER BY a.id DESC LIMIT %(limit)s",
        params,
    )
    return [AlertRow(*r) for r in await cur.fetchall()]


async def visible(conn: AConn, vis: Visibility, alert_id: int) -> tuple[bool, bool]:
    """(exists, visible): whether the alert exists and whether its device may be seen."""
    cur = await conn.execute(
        f"SELECT {vis.predicate()} FROM alerts AS a LEFT JOIN devices AS d ON d.id = a.device_id"
        " WHERE a.id = %(id)s",
        {**vis.params(), "id": alert_id},
    )
    row = await cur.fetchone()
    if row is None:
        return False, False
    return True, bool(row[0])


@dataclass(frozen=True, slots=True)
class AlertFeedRow:
    """An alert event with what live-stream subscribers filter on."""

    event_id: int
    alert_id: int
    at: datetime
    event: str
    to_state: str | None
    severity: str
    device_id: str
    metric: str
    area_id: str | None
    title: str
    kind: str
    public: bool


async def events_after(conn: AConn, after_id: int, limit: int = 5000) -> list[AlertFeedRow]:
    """Alert events with an id above ``after_id``, oldest first."""
    cur = await conn.execute(
        "SELECT e.id, e.alert_id, e.at, e.event, e.to_state, e.severity, a.device_id, a.metric,"
        " a.area_id, a.title, coalesce(d.kind, 'unknown'), coalesce(d.public, false)"
        " FROM alert_events AS e JOIN alerts AS a ON a.id = e.alert_id"
        " LEFT JOIN devices AS d ON d.id = a.device_id"
        " WHERE e.id > %s ORDER BY e.id LIMIT %s",
        (after_id, limit),
    )
    return [AlertFeedRow(*r) for r in await cur.fetchall()]


async def last_event_id(conn: AConn) -> int:
    """The newest alert event id (0 when none)."""
    cur = await conn.execute("SELECT coalesce(max(id), 0) FROM alert_events")
    row = await cur.fetchone()
    return int(row[0]) if row else 0
