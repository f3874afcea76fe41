"""Energy consumption per bucket from monotonic counters (``energy``, kWh), resets handled.

A counter's consumption between two consecutive readings is ``E_t − E_{t−1}``, or ``E_t`` when
the counter went down (it restarted from 0: REFERENCE.md §5.2). That step is attributed to the
bucket of the later reading; the first reading in the range steps from the last reading before
the range, so consecutive ranges add up with nothing lost or counted twice.

The answer comes from the same tier :func:`store.queries.choose_tier` picks: each tier row
carries ``counter_inc`` (the reset-aware increase inside its bucket), so a bucket's consumption
is the sum of its rows' ``counter_inc`` plus the steps between consecutive rows. Tier buckets
with a pending dirty mark are replaced by their raw readings, so the result always equals the
same computation over raw readings with ``lag``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from store.queries import RAW, choose_tier
from store.tiers import COUNTER_METRICS, Tier, bucket_sql, interval_sql

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime, timedelta

    import psycopg

_STEP: Final = "CASE WHEN prev IS NULL THEN 0 WHEN first >= prev THEN first - prev ELSE first END"


@dataclass(frozen=True, slots=True)
class Consumption:
    """Energy used by one device in one bucket.

    Attributes:
        device_id: the meter.
        bucket: start of the bucket.
        kwh: consumption in the metric's unit (kWh for ``energy``).
        source: the tier the answer came from (``1h`` …) or ``raw``.
    """

    device_id: str
    bucket: datetime
    kwh: float
    source: str


@dataclass(frozen=True, slots=True)
class AreaConsumption:
    """Energy used in one bucket by the meters of an area and every area below it.

    Attributes:
        area_id: the area asked for.
        bucket: start of the bucket.
        kwh: total consumption.
        devices: meters that reported in the bucket (or stepped into it).
    """

    area_id: str
    bucket: datetime
    kwh: float
    devices: int


def _elements_sql(tier: Tier | None, interval: timedelta, *, local: bool) -> str:
    """Time-ordered pieces of each counter: tier rows, raw readings, and one look-back piece.

    A piece has a first value (to step into from the previous piece), a last value (to step out
    of), the increase inside it, and the output bucket it counts towards (NULL for look-back).
    """
    out_raw = bucket_sql(interval, "r.ts", local=local)
    lookback_tier = ""
    if tier is None:
        # No tier fits: every reading in the range is its own piece.
        body = f"""
    SELECT r.device_id, r.ts AS ts, r.value AS first, r.value AS last,
           0::double precision AS inc, {out_raw} AS bucket
    FROM readings AS r
    WHERE r.device_id IN (SELECT device_id FROM dev) AND r.metric = %(metric)s
      AND r.ts >= %(start)s AND r.ts < %(end)s"""
    else:
        width = interval_sql(tier.width)
        lookback_tier = f"""
        UNION ALL
        (SELECT t.last_ts, t.last FROM {tier.table} AS t
         WHERE t.device_id = dev.device_id AND t.metric = %(metric)s AND t.bucket < %(start)s
         ORDER BY t.bucket DESC LIMIT 1)"""
        body = f"""
    SELECT t.device_id, t.first_ts AS ts, t.first, t.last, coalesce(t.counter_inc, 0) AS inc,
           {bucket_sql(interval, "t.bucket", local=local)} AS bucket
    FROM {tier.table} AS t
    WHERE t.device_id IN (SELECT device_id FROM dev) AND t.metric = %(metric)s
      AND t.bucket >= %(start)s AND t.bucket < %(end)s
      AND NOT EXISTS (SELECT 1 FROM stale AS s
                      WHERE s.device_id = t.device_id AND s.bucket = t.bucket)
    UNION ALL
    -- tier buckets with a pending dirty mark: their raw readings instead
    SELECT r.device_id, r.ts, r.value, r.value, 0, {out_raw}
    FROM stale AS s
    JOIN readings AS r ON r.device_id = s.device_id AND r.metric = %(metric)s
     AND r.ts >= s.bucket AND r.ts < s.bucket + {width}
    WHERE r.ts >= %(start)s AND r.ts < %(end)s"""
    return f"""
elements AS ({body}
    UNION ALL
    -- the last reading before the range: the first piece steps from it
    SELECT dev.device_id, lb.ts, lb.value, lb.value, 0, NULL
    FROM dev, LATERAL (
        SELECT ts, value FROM (
            (SELECT r.ts, r.value FROM readings AS r
             WHERE r.device_id = dev.device_id AND r.metric = %(metric)s AND r.ts < %(start)s
             ORDER BY r.ts DESC LIMIT 1){lookback_tier}
        ) AS candidates
        ORDER BY ts DESC LIMIT 1
    ) AS lb
), steps AS (
    SELECT device_id, bucket, inc, first,
           lag(last) OVER (PARTITION BY device_id ORDER BY ts) AS prev
    FROM elements
)"""


def _stale_sql(tier: Tier) -> str:
    return f"""
stale AS MATERIALIZED (
    SELECT DISTINCT d.device_id, g.bucket
    FROM rollup_dirty AS d,
         generate_series({tier.bucket_sql("d.lo")}, {tier.bucket_sql("d.hi")},
                         {interval_sql(tier.width)}) AS g(bucket)
    WHERE d.metric = %(metric)s AND d.device_id IN (SELECT device_id FROM dev)
      AND d.hi + interval '1 minute' > %(start)s AND d.lo < %(end)s
),"""


def _consumption_sql(dev_sql: str, tier: Tier | None, interval: timedelta, local: bool) -> str:
    stale = _stale_sql(tier) if tier is not None else ""
    return f"""
WITH dev AS MATERIALIZED ({dev_sql}),
{stale}
{_elements_sql(tier, interval, local=local)}
SELECT device_id, bucket, sum(inc + {_STEP}) AS kwh
FROM steps
WHERE bucket IS NOT NULL
GROUP BY device_id, bucket
"""


def _check(metric: str, start: datetime, end: datetime, interval: timedelta) -> None:
    if metric not in COUNTER_METRICS:
        raise ValueError(f"{metric!r} is not a counter metric (counters: {COUNTER_METRICS})")
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if end <= start:
        raise ValueError(f"empty range: end {end} is not after start {start}")
    interval_sql(interval)


def device_consumption(
    conn: psycopg.Connection[Any],
    device_ids: Sequence[str],
    start: datetime,
    end: datetime,
    interval: timedelta,
    *,
    local_days: bool = False,
    metric: str = "energy",
) -> list[Consumption]:
    """Consumption per device and bucket of ``interval`` over ``[start, end)``.

    Args:
        conn: any connection (one statement, one snapshot).
        device_ids: the meters.
        start: inclusive start (timezone-aware).
        end: exclusive end (timezone-aware).
        interval: bucket width (whole seconds), aligned like :func:`store.queries.aggregate`.
        local_days: align buckets to Asia/Ho_Chi_Minh midnight.
        metric: the counter metric.

    Returns:
        Rows ordered by device and bucket; buckets without readings are absent.

    Raises:
        ValueError: not a counter metric, naive datetimes, empty range or bad interval.
    """
    _check(metric, start, end, interval)
    tier = choose_tier(interval, start, end, local_days=local_days)
    query = _consumption_sql(
        "SELECT unnest(%(devices)s::text[]) AS device_id", tier, interval, local_days
    )
    rows = conn.execute(
        f"{query} ORDER BY device_id, bucket",
        {"devices": list(device_ids), "metric": metric, "start": start, "end": end},
        prepare=False,  # planned for its own devices and range: see queries.aggregate
    ).fetchall()
    source = tier.name if tier is not None else RAW
    return [Consumption(str(d), b, float(k), source) for d, b, k in rows]


# Devices placed in the area or anywhere below it (a district includes its communes).
_AREA_DEVICES: Final = """
WITH RECURSIVE sub AS (
    SELECT id FROM areas WHERE id = %(area)s
    UNION ALL
    SELECT a.id FROM areas AS a JOIN sub ON a.parent_id = sub.id
)
SELECT d.id AS device_id FROM devices AS d WHERE d.area_id IN (SELECT id FROM sub)
"""


def area_consumption(
    conn: psycopg.Connection[Any],
    area_id: str,
    start: datetime,
    end: datetime,
    interval: timedelta,
    *,
    local_days: bool = False,
    metric: str = "energy",
) -> list[AreaConsumption]:
    """Total consumption per bucket of the meters in an area and all areas below it.

    Args:
        conn: any connection.
        area_id: an ``areas.id`` (province, city, district, ward, town or commune).
        start: inclusive start (timezone-aware).
        end: exclusive end (timezone-aware).
        interval: bucket width (whole seconds).
        local_days: align buckets to Asia/Ho_Chi_Minh midnight.
        metric: the counter metric.

    Returns:
        Rows ordered by bucket; buckets in which no meter of the area counted are absent.

    Raises:
        ValueError: as :func:`device_consumption`.
    """
    _check(metric, start, end, interval)
    tier = choose_tier(interval, start, end, local_days=local_days)
    inner = _consumption_sql(_AREA_DEVICES, tier, interval, local_days)
    rows = conn.execute(
        f"SELECT bucket, sum(kwh), count(*) FROM ({inner}) AS per_device"
        " GROUP BY bucket ORDER BY bucket",
        {"area": area_id, "metric": metric, "start": start, "end": end},
        prepare=False,
    ).fetchall()
    return [AreaConsumption(area_id, b, float(k), int(n)) for b, k, n in rows]
