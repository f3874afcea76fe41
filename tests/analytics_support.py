"""Helpers for the analytics tests: devices, synthetic readings, rules from TOML text."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from analytics import alerts
from analytics.rulefile import parse_rules
from analytics.rules import RuleSet


def add_device(
    conn: psycopg.Connection[Any],
    device_id: str,
    kind: str,
    *,
    area: str | None = "tp-nam-dinh-loc-ha",
    name: str | None = None,
    metadata: dict[str, Any] | None = None,
    created_at: datetime | None = None,
) -> None:
    conn.execute(
        "INSERT INTO devices (id, kind, name, area_id, metadata, created_at)"
        " VALUES (%s, %s, %s, %s, %s, coalesce(%s, now()))",
        (device_id, kind, name, area, Jsonb(metadata or {}), created_at),
    )


def insert(
    conn: psycopg.Connection[Any],
    device_id: str,
    metric: str,
    points: Iterable[tuple[datetime, float]],
) -> int:
    """Store readings the way ingest does: rows plus their rollup dirty marks and latest."""
    rows = list(points)
    if not rows:
        return 0
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO readings (device_id, metric, ts, value) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            [(device_id, metric, ts, v) for ts, v in rows],
        )
    conn.execute(
        "INSERT INTO rollup_dirty (device_id, metric, lo, hi)"
        " SELECT %s, %s, time_bucket('1 minute', min(ts)), time_bucket('1 minute', max(ts))"
        " FROM unnest(%s::timestamptz[]) AS t(ts) GROUP BY time_bucket('1 day', ts)",
        (device_id, metric, [ts for ts, _ in rows]),
    )
    last_ts, last_v = max(rows)
    conn.execute(
        "INSERT INTO latest (device_id, metric, ts, value, quality) VALUES (%s, %s, %s, %s, 1)"
        " ON CONFLICT (device_id, metric) DO UPDATE SET ts = EXCLUDED.ts, value = EXCLUDED.value"
        " WHERE EXCLUDED.ts > latest.ts",
        (device_id, metric, last_ts, last_v),
    )
    return len(rows)


def every(
    start: datetime, step: timedelta, values: Sequence[float]
) -> list[tuple[datetime, float]]:
    """``values`` at ``start``, ``start + step``, …"""
    return [(start + i * step, float(v)) for i, v in enumerate(values)]


def rules(text: str) -> RuleSet:
    """A rule set from TOML text (dedented)."""
    return parse_rules(textwrap.dedent(text), "test-rules.toml")


def alerts_of(conn: psycopg.Connection[Any], device_id: str) -> list[alerts.Alert]:
    """Every alert of a device, oldest first."""
    return sorted(alerts.list_alerts(conn, device_id=device_id, limit=1000), key=lambda a: a.id)


def events_of(conn: psycopg.Connection[Any], device_id: str) -> list[tuple[int, str]]:
    """(alert id, event) of every alert event of a device, in order."""
    rows = conn.execute(
        "SELECT e.alert_id, e.event FROM alert_events AS e JOIN alerts AS a ON a.id = e.alert_id"
        " WHERE a.device_id = %s ORDER BY e.id",
        (device_id,),
    ).fetchall()
    return [(int(a), str(e)) for a, e in rows]
