"""The analytics' reads: devices in a rule's scope, new readings past a watermark, hourly means.

Hourly means come from the 1 h rollup tier where it is current and from raw readings where it
is not: the ingest writer marks every stored reading's minute dirty (``rollup_dirty``) in the
same transaction, and the rollup refresh removes the mark only once the tiers include it, so
"tier rows of hours without a dirty mark, plus raw readings of hours with one" is exact in
every snapshot (store/rollups.py).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import psycopg

    from analytics.rules import Scope

HOUR: Final = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What the analytics need to know about a device."""

    id: str
    kind: str
    name: str | None
    area_id: str | None
    metadata: Mapping[str, Any] = field(hash=False)
    created_at: datetime | None = None
    last_seen: datetime | None = None


def scope_devices(conn: psycopg.Connection[Any], scope: Scope) -> list[DeviceInfo]:
    """The registered devices matching a rule's scope (areas include their sub-areas)."""
    conds = ["true"]
    if scope.devices:
        conds.append("d.id = ANY(%(devices)s::text[])")
    if scope.kinds:
        conds.append("d.kind = ANY(%(kinds)s::text[])")
    if scope.areas:
        conds.append(
            "d.area_id IN (WITH RECURSIVE sub AS (SELECT id FROM areas"
            " WHERE id = ANY(%(areas)s::text[]) UNION ALL SELECT a.id FROM areas AS a"
            " JOIN sub ON a.parent_id = sub.id) SELECT id FROM sub)"
        )
    rows = conn.execute(
        "SELECT d.id, d.kind, d.name, d.area_id, d.metadata, d.created_at, d.last_seen"
        f" FROM devices AS d WHERE {' AND '.join(conds)} ORDER BY d.id",
        {"devices": list(scope.devices), "kinds": list(scope.kinds), "areas": list(scope.areas)},
    ).fetchall()
    return [DeviceInfo(*r) for r in rows]


@dataclass(slots=True)
class RawSeries:
    """Readings of one (device, metric): ``ts``/``values`` in time order; ``new`` flags those
    after the watermark."""

    ts: list[datetime] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    new: list[bool] = field(default_factory=list)


def fetch_readings(
    conn: psycopg.Connection[Any],
    *,
    rule_id: str,
    state_metric: str,
    devices: Sequence[str],
    metrics: Sequence[str],
    start: datetime,
    now: datetime,
    context: tuple[timedelta, int],
    max_new: int,
) -> dict[tuple[str, str], RawSeries]:
    """New readings of a rule's series past their watermark, with the context before it.

    Each (device, metric) series continues from the ``last_ts`` its rule state saved for
    (device, ``state_metric``), or from ``start`` when it has none. New readings are those after
    it, up to ``now``, at most ``max_new`` of them (a long backlog is worked off over several
    cycles). Context readings are those at or before it, within ``context[0]`` and at most
    ``context[1]`` of them.

    Returns:
        Series by (device, metric), readings in time order.
    """
    span, count = context
    rows = conn.execute(
        """
WITH series AS (
    SELECT d.id AS device_id, m.metric, coalesce(s.last_ts, %(start)s) AS since
    FROM unnest(%(devices)s::text[]) AS d(id)
    CROSS JOIN unnest(%(metrics)s::text[]) AS m(metric)
    LEFT JOIN rule_series_state AS s
      ON s.rule_id = %(rule)s AND s.device_id = d.id AND s.metric = %(state_metric)s
)
SELECT x.device_id, x.metric, r.ts, r.value, r.is_new
FROM series AS x
CROSS JOIN LATERAL (
    (SELECT ts, value, true AS is_new FROM readings
     WHERE device_id = x.device_id AND metric = x.metric
       AND ts > x.since AND ts <= %(now)s
     ORDER BY ts LIMIT %(max_new)s)
    UNION ALL
    (SELECT ts, value, false FROM readings
     WHERE device_id = x.device_id AND metric = x.metric
       AND ts <= x.since AND ts > x.since - %(span)s
     ORDER BY ts DESC LIMIT %(count)s)
) AS r
ORDER BY 1, 2, 3
""",
        {
            "start": start,
            "devices": list(devices),
            "metrics": list(metrics),
            "rule": rule_id,
            "state_metric": state_metric,
            "now": now,
            "max_new": max_new,
            "span": span,
            "count": count,
        },
    ).fetchall()
    out: dict[tuple[str, str], RawSeries] = defaultdict(RawSeries)
    for device_id, metric, ts, value, is_new in rows:
        series = out[(device_id, metric)]
        series.ts.append(ts)
        series.values.append(float(value))
        series.new.append(bool(is_new))
    return dict(out)


def hourly_means(
    conn: psycopg.Connection[Any],
    devices: Sequence[str],
    metrics: Sequence[str],
    start: datetime,
    end: datetime,
) -> dict[tuple[str, str], dict[datetime, float]]:
    """Mean of each whole hour in ``[start, end)`` (both on the hour) per (device, metric).

    Hours come from ``rollup_1h`` unless a dirty mark says the tier is behind for them; those
    are averaged from raw readings. Hours without readings are absent.
    """
    rows = conn.execute(
        """
WITH stale AS MATERIALIZED (
    SELECT DISTINCT d.device_id, d.metric, g.hour
    FROM rollup_dirty AS d,
         generate_series(time_bucket('1 hour', d.lo), time_bucket('1 hour', d.hi),
                         interval '1 hour') AS g(hour)
    WHERE d.device_id = ANY(%(devices)s::text[]) AND d.metric = ANY(%(metrics)s::text[])
      AND d.hi + interval '1 minute' > %(start)s AND d.lo < %(end)s
)
SELECT t.device_id, t.metric, t.bucket, t.sum / t.count
FROM rollup_1h AS t
WHERE t.device_id = ANY(%(devices)s::text[]) AND t.metric = ANY(%(metrics)s::text[])
  AND t.bucket >= %(start)s AND t.bucket < %(end)s AND t.count > 0
  AND NOT EXISTS (SELECT 1 FROM stale AS s WHERE s.device_id = t.device_id
                  AND s.metric = t.metric AND s.hour = t.bucket)
UNION ALL
SELECT r.device_id, r.metric, s.hour, avg(r.value)
FROM stale AS s
JOIN readings AS r ON r.device_id = s.device_id AND r.metric = s.metric
 AND r.ts >= s.hour AND r.ts < s.hour + interval '1 hour'
WHERE s.hour >= %(start)s AND s.hour < %(end)s
GROUP BY 1, 2, 3
""",
        {"devices": list(devices), "metrics": list(metrics), "start": start, "end": end},
    ).fetchall()
    out: dict[tuple[str, str], dict[datetime, float]] = defaultdict(dict)
    for device_id, metric, hour, mean in rows:
        out[(device_id, metric)][hour] = float(mean)
    return dict(out)


def last_signs(conn: psycopg.Connection[Any], devices: Sequence[str]) -> dict[str, datetime]:
    """The newest sign of life of each device: its newest reading time or last receive time."""
    rows = conn.execute(
        """
SELECT d.id, greatest(d.last_seen, (SELECT max(l.ts) FROM latest AS l WHERE l.device_id = d.id))
FROM devices AS d WHERE d.id = ANY(%(devices)s::text[])
""",
        {"devices": list(devices)},
    ).fetchall()
    return {str(d): ts for d, ts in rows if ts is not None}


def fetch_range(
    conn: psycopg.Connection[Any],
    *,
    device: str,
    metrics: Sequence[str],
    since: datetime | None,
    until: datetime,
    context: tuple[timedelta, int],
) -> dict[str, RawSeries]:
    """One device's readings in ``(since, until]`` (flagged new), with the context before them.

    Used to judge a series again after late readings (analytics/evaluate.py): ``since`` is the
    checkpoint the series is rewound to (``None``: judge everything up to ``until``; the caller
    bounds it by the late-data horizon).

    Returns:
        Series by metric, readings in time order.
    """
    span, count = context
    rows = conn.execute(
        """
SELECT m.metric, r.ts, r.value, r.is_new
FROM unnest(%(metrics)s::text[]) AS m(metric)
CROSS JOIN LATERAL (
    (SELECT ts, value, true AS is_new FROM readings
     WHERE device_id = %(device)s AND metric = m.metric AND ts > %(since)s AND ts <= %(until)s
     ORDER BY ts)
    UNION ALL
    (SELECT ts, value, false FROM readings
     WHERE device_id = %(device)s AND metric = m.metric
       AND ts <= %(since)s AND ts > %(since)s - %(span)s
     ORDER BY ts DESC LIMIT %(count)s)
) AS r
ORDER BY 1, 2
""",
        {
            "metrics": list(metrics),
            "device": device,
            "since": since,
            "until": until,
            "span": span,
            "count": count,
        },
    ).fetchall()
    out: dict[str, RawSeries] = defaultdict(RawSeries)
    for metric, ts, value, is_new in rows:
        series = out[metric]
        series.ts.append(ts)
        series.values.append(float(value))
        series.new.append(bool(is_new))
    return dict(out)
