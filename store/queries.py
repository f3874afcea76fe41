"""Read queries shared by the api, analytics and dashboards.

:func:`aggregate` answers "count/sum/min/max/avg/first/last per bucket" from the coarsest rollup
tier that is exact for the interval and the range's alignment, and from raw readings for every
bucket a dirty mark says is not rolled up yet, all in one statement (one snapshot). The result
therefore always equals a fresh ``GROUP BY time_bucket(…)`` over ``readings`` (sums up to float
rounding). Each row says where it came from in ``source``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

from store.tiers import (
    LOCAL_TZ,
    TIER_1D,
    TIER_1D_LOCAL,
    TIER_1H,
    TIER_1M,
    Tier,
    bucket_sql,
    interval_sql,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import psycopg

Func = Literal["count", "sum", "min", "max", "avg", "first", "last"]
FUNCS: Final[tuple[str, ...]] = get_args(Func)

RAW: Final = "raw"
"""``source`` of rows computed from the readings hypertable."""

# time_bucket's default origin: every bucket of a width dividing a day starts on a multiple of
# the width from here (local buckets: from local midnight of that Monday).
_ORIGIN: Final = datetime(2000, 1, 3, tzinfo=UTC)
_LOCAL_OFFSET: Final = timedelta(hours=7)  # Asia/Ho_Chi_Minh, no DST since 1975


# Not frozen: a frozen dataclass's __init__ goes through object.__setattr__ and took twice as
# long to build for the thousands of rows a series query returns.
@dataclass(slots=True)
class AggRow:
    """One bucket of one series (or of all requested devices when combined).

    Attributes:
        bucket: start of the bucket.
        device_id: the device, or None when devices were combined.
        metric: the metric.
        count: readings in the bucket.
        values: the requested functions' values, by name (``avg``, ``max`` …).
        source: where the row came from: a tier name (``1d``, ``1d_local``, ``1h``, ``1m``),
            ``raw``, or both joined by ``+`` when combined devices mixed them.
    """

    bucket: datetime
    device_id: str | None
    metric: str
    count: int
    values: Mapping[str, float | None]
    source: str


@dataclass(slots=True)
class LatestRow:
    """The newest reading of one (device, metric)."""

    device_id: str
    metric: str
    ts: datetime
    value: float
    quality: int


def _aligned(t: datetime, width: timedelta, *, local: bool) -> bool:
    origin = _ORIGIN - _LOCAL_OFFSET if local else _ORIGIN
    return (t - origin) % width == timedelta(0)


def choose_tier(
    interval: timedelta, start: datetime, end: datetime, *, local_days: bool = False
) -> Tier | None:
    """The coarsest tier whose buckets tile both the output buckets and [start, end).

    A tier is exact when its width divides ``interval`` (then every tier bucket lies inside one
    output bucket: both are aligned to time_bucket's origin) and ``start`` and ``end`` fall on
    its bucket boundaries (no tier bucket straddles the range's edges).

    Returns:
        The tier, or None when only raw readings can answer exactly.
    """
    days = TIER_1D_LOCAL if local_days else TIER_1D
    for tier in (days, TIER_1H, TIER_1M):
        if interval % tier.width != timedelta(0):
            continue
        local = local_days and tier.local
        if _aligned(start, tier.width, local=local) and _aligned(end, tier.width, local=local):
            return tier
    return None


_ORDER: Final = "ORDER BY device_id, metric, bucket"

_TIER_AGGS: Final = """
    sum(count)::bigint AS count, sum(sum) AS sum, min(min) AS min, max(max) AS max,
    first(first, first_ts) AS first, min(first_ts) AS first_ts,
    last(last, last_ts) AS last, max(last_ts) AS last_ts"""

_RAW_AGGS: Final = """
    count(*)::bigint AS count, sum(value) AS sum, min(value) AS min, max(value) AS max,
    first(value, ts) AS first, min(ts) AS first_ts, last(value, ts) AS last, max(ts) AS last_ts"""


def _filters(alias: str, time_col: str, *, devices: bool, metrics: bool) -> str:
    conds = [f"{alias}.{time_col} >= %(start)s", f"{alias}.{time_col} < %(end)s"]
    if devices:
        conds.append(f"{alias}.device_id = ANY(%(devices)s::text[])")
    if metrics:
        conds.append(f"{alias}.metric = ANY(%(metrics)s::text[])")
    return " AND ".join(conds)


def _raw_sql(interval: timedelta, *, local: bool, devices: bool, metrics: bool) -> str:
    bucket = bucket_sql(interval, "r.ts", local=local)
    return f"""
SELECT r.device_id, r.metric, {bucket} AS bucket, {_RAW_AGGS}, '{RAW}' AS source
FROM readings AS r
WHERE {_filters("r", "ts", devices=devices, metrics=metrics)}
GROUP BY 1, 2, 3
"""


def _stale_cte(interval: timedelta, *, local: bool, devices: bool, metrics: bool) -> str:
    """Output buckets overlapping a pending dirty mark: they are answered from raw entirely."""
    conds = [
        "d.hi + interval '1 minute' > %(start)s",
        "d.lo < %(end)s",
        *(["d.device_id = ANY(%(devices)s::text[])"] if devices else []),
        *(["d.metric = ANY(%(metrics)s::text[])"] if metrics else []),
    ]
    return f"""
WITH stale AS MATERIALIZED (
    SELECT DISTINCT d.device_id, d.metric, g.bucket
    FROM rollup_dirty AS d,
         generate_series({bucket_sql(interval, "d.lo", local=local)},
                         {bucket_sql(interval, "d.hi", local=local)},
                         {interval_sql(interval)}) AS g(bucket)
    WHERE {" AND ".join(conds)}
)"""


def _tier_rows(
    tier: Tier,
    interval: timedelta,
    *,
    local: bool,
    devices: bool,
    metrics: bool,
    exclude_stale: bool,
) -> str:
    out_bucket = bucket_sql(interval, "x.bucket", local=local)
    where = _filters("x", "bucket", devices=devices, metrics=metrics)
    if exclude_stale:
        where += f"""
      AND NOT EXISTS (SELECT 1 FROM stale AS s WHERE s.device_id = x.device_id
                      AND s.metric = x.metric AND s.bucket = {out_bucket})"""
    if interval == tier.width:
        # Output buckets are the tier's buckets: rows go out as stored, in index order.
        return f"""
SELECT x.device_id, x.metric, x.bucket, x.count::bigint AS count, x.sum, x.min, x.max, x.first,
       x.first_ts, x.last, x.last_ts, '{tier.name}' AS source
FROM {tier.table} AS x WHERE {where}"""
    return f"""
SELECT x.device_id, x.metric, {out_bucket} AS bucket, {_TIER_AGGS}, '{tier.name}' AS source
FROM {tier.table} AS x WHERE {where}
GROUP BY 1, 2, 3"""


def _stale_rows(interval: timedelta) -> str:
    """One row per stale bucket from raw (rollup_raw_agg is planned only when called, for one
    bucket's chunks: see migration 0011); count 0 when the bucket has no readings any more."""
    return f"""
SELECT s.device_id, s.metric, s.bucket, a.count, a.sum, a.min, a.max, a.first, a.first_ts,
       a.last, a.last_ts, '{RAW}' AS source
FROM stale AS s,
     rollup_raw_agg(s.device_id, s.metric, greatest(s.bucket, %(start)s),
                    least(s.bucket + {interval_sql(interval)}, %(end)s)) AS a"""


def _combined_sql(inner: str) -> str:
    """Combine per-device rows into one row per (metric, bucket) across devices."""
    return f"""
SELECT NULL::text AS device_id, metric, bucket, sum(count)::bigint AS count, sum(sum) AS sum,
       min(min) AS min, max(max) AS max, first(first, first_ts) AS first,
       min(first_ts) AS first_ts, last(last, last_ts) AS last, max(last_ts) AS last_ts,
       string_agg(DISTINCT source, '+' ORDER BY source) AS source
FROM ({inner}) AS per_device
GROUP BY metric, bucket
"""


def _query(
    tier: Tier | None,
    interval: timedelta,
    wanted: str,
    *,
    local: bool,
    devices: bool,
    metrics: bool,
    combine: bool,
) -> str:
    """The statement: columns device_id, metric, bucket, count, the wanted values, source."""

    def project(inner: str) -> str:
        return f"SELECT device_id, metric, bucket, count, {wanted}, source FROM ({inner}) AS q"

    flags = {"local": local, "devices": devices, "metrics": metrics}
    if tier is None:
        inner = _raw_sql(interval, **flags)
        return project(_combined_sql(inner) if combine else inner) + f" {_ORDER}"
    stale = _stale_cte(interval, **flags)
    if combine:
        inner = (
            _tier_rows(tier, interval, exclude_stale=True, **flags)
            + "\nUNION ALL\n"
            + _stale_rows(interval)
            + " WHERE a.count > 0"
        )
        return stale + "\n" + project(_combined_sql(inner)) + f" {_ORDER}"
    # Per device: the tier's rows in index order (no sort: sorting thousands of rows cost more
    # than the scan), then every stale bucket from raw; aggregate() swaps those in.
    tier_part = project(_tier_rows(tier, interval, exclude_stale=False, **flags))
    return f"""{stale}
SELECT * FROM ({tier_part} ORDER BY device_id, metric, bucket) AS from_tier
UNION ALL
{project(_stale_rows(interval))}"""


def aggregate(  # noqa: PLR0917 (positional order agreed with api and analytics)
    conn: psycopg.Connection[Any],
    device_ids: Sequence[str] | None,
    metrics: Sequence[str] | None,
    start: datetime,
    end: datetime,
    interval: timedelta,
    funcs: Sequence[Func] = ("avg",),
    local_days: bool = False,
    *,
    combine_devices: bool = False,
) -> list[AggRow]:
    """Aggregate readings per bucket of ``interval`` over ``[start, end)``.

    Buckets follow ``time_bucket(interval, ts)`` (origin Monday 2000-01-03), or with
    ``local_days`` the same in Asia/Ho_Chi_Minh (days start at local midnight, 17:00 UTC).

    Args:
        conn: any connection; the query is one statement, so one consistent snapshot.
        device_ids: devices to include; None for every device.
        metrics: metrics to include; None for every metric.
        start: inclusive start (timezone-aware).
        end: exclusive end (timezone-aware).
        interval: bucket width, a whole number of seconds (months are not supported).
        funcs: which of count, sum, min, max, avg, first, last to return in ``values``.
        local_days: align buckets to local midnight instead of UTC.
        combine_devices: one row per (metric, bucket) over all the devices (``device_id``
            None), e.g. a city-wide daily mean.

    Returns:
        Rows ordered by device, metric and bucket (buckets without readings are absent).

    Raises:
        ValueError: an unknown function, a naive datetime, an empty range or a bad interval.
    """
    unknown = [f for f in funcs if f not in FUNCS]
    if unknown:
        raise ValueError(f"unknown aggregate function(s) {unknown}; use {list(FUNCS)}")
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if end <= start:
        raise ValueError(f"empty range: end {end} is not after start {start}")
    interval_sql(interval)  # validates the width
    tier = choose_tier(interval, start, end, local_days=local_days)
    query = _query(
        tier,
        interval,
        ", ".join(_OUTPUT[f] for f in funcs) or "NULL",  # only what was asked leaves the server
        local=local_days,
        devices=device_ids is not None,
        metrics=metrics is not None,
        combine=combine_devices,
    )
    params = {
        "start": start,
        "end": end,
        "devices": list(device_ids or []),
        "metrics": list(metrics or []),
    }
    # Binary results: timestamps and floats decode without parsing text.
    with conn.cursor(binary=True) as cur:
        rows = cur.execute(query, params).fetchall()
    if tier is not None and not combine_devices:
        rows = _swap_in_stale(rows)
    if len(funcs) == 1:  # the usual case, and a dict literal is the cheapest to build
        (name,) = funcs
        return [AggRow(r[2], r[0], r[1], r[3], {name: r[4]}, r[-1]) for r in rows]
    names, stop = tuple(funcs), 4 + len(funcs)
    return [AggRow(r[2], r[0], r[1], r[3], dict(zip(names, r[4:stop])), r[-1]) for r in rows]  # noqa: B905


def _swap_in_stale(rows: list[Any]) -> list[Any]:
    """Replace tier rows of stale buckets by their raw rows (usually there are none)."""
    if not rows or rows[-1][-1] != RAW:
        return rows
    first_raw = next(i for i, r in enumerate(rows) if r[-1] == RAW)
    raw = rows[first_raw:]
    stale = {(r[0], r[1], r[2]) for r in raw}
    kept = [r for r in rows[:first_raw] if (r[0], r[1], r[2]) not in stale]
    kept += [r for r in raw if r[3] > 0]
    kept.sort(key=lambda r: (r[0], r[1], r[2]))
    return kept


# count is bigint; avg guards the empty stale buckets (count 0) that only mark a swap-out.
_OUTPUT: Final[Mapping[str, str]] = {
    "count": "count::double precision",
    "sum": "sum",
    "min": "min",
    "max": "max",
    "avg": "sum / nullif(count, 0)",
    "first": "first",
    "last": "last",
}


def latest(
    conn: psycopg.Connection[Any],
    device_ids: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
) -> list[LatestRow]:
    """The newest reading of each (device, metric), from the ``latest`` table.

    Args:
        conn: any connection.
        device_ids: devices to include; None for all.
        metrics: metrics to include; None for all.

    Returns:
        Rows ordered by device and metric.
    """
    conds = ["true"]
    if device_ids is not None:
        conds.append("device_id = ANY(%(devices)s::text[])")
    if metrics is not None:
        conds.append("metric = ANY(%(metrics)s::text[])")
    rows = conn.execute(
        "SELECT device_id, metric, ts, value, quality FROM latest"
        f" WHERE {' AND '.join(conds)} ORDER BY device_id, metric",
        {"devices": list(device_ids or []), "metrics": list(metrics or [])},
    ).fetchall()
    return [LatestRow(str(d), str(m), ts, float(v), int(q)) for d, m, ts, v, q in rows]


__all__ = ["FUNCS", "LOCAL_TZ", "RAW", "AggRow", "Func", "LatestRow", "aggregate", "latest"]
