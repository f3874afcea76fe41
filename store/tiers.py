"""The rollup tiers and the SQL that builds a bucket's aggregate from raw rows or finer tier rows.

Every tier row holds count, sum, min, max, first/first_ts, last/last_ts and, for counter
metrics, counter_inc. These combine exactly: a coarser bucket is the sum of counts and sums, the
min of mins, the max of maxes, the first of the earliest row and the last of the latest row.
Only sums are re-associated, so they agree with a GROUP BY over raw up to float rounding.

counter_inc is the reset-aware increase of a counter inside a bucket (REFERENCE.md §5.2: when
E_t < E_{t-1} the counter restarted and the increment is E_t). Combining buckets adds the
increments inside each part and the step between consecutive parts (previous part's last value
to this part's first value, with the same reset rule), which is again exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Literal

from core.metrics import METRICS

LOCAL_TZ: Final = "Asia/Ho_Chi_Minh"
"""Time zone of local-day buckets (UTC+7, no DST, so a local day is 24 whole UTC hours)."""

COUNTER_METRICS: Final = tuple(sorted(m.name for m in METRICS.values() if m.counter))
"""Metrics whose rollups carry counter_inc (from the metric registry: energy)."""

COLUMNS: Final = (
    "device_id",
    "metric",
    "bucket",
    "count",
    "sum",
    "min",
    "max",
    "first",
    "first_ts",
    "last",
    "last_ts",
    "counter_inc",
)


@dataclass(frozen=True, slots=True)
class Tier:
    """One rollup tier.

    Attributes:
        name: short name, also the ``source`` reported by queries (``1h``).
        table: the hypertable holding it.
        width: bucket width.
        local: buckets start at local (Asia/Ho_Chi_Minh) midnight instead of UTC.
    """

    name: str
    table: str
    width: timedelta
    local: bool = False

    def bucket_sql(self, column: str) -> str:
        """SQL for the bucket of this tier that ``column`` (a timestamptz) falls in."""
        return bucket_sql(self.width, column, local=self.local)


def interval_sql(width: timedelta) -> str:
    """A SQL interval literal of a whole number of seconds (``'3600 seconds'::interval``).

    Seconds, never days: ``timestamptz + '1 day'`` follows the session's time zone across DST
    changes, while buckets here are fixed lengths.
    """
    seconds = int(width.total_seconds())
    if seconds <= 0 or width != timedelta(seconds=seconds):
        raise ValueError(f"bucket width must be a positive whole number of seconds, not {width}")
    return f"'{seconds} seconds'::interval"


def bucket_sql(width: timedelta, column: str, *, local: bool = False) -> str:
    """SQL ``time_bucket`` of ``width`` over ``column``, local-midnight aligned when ``local``."""
    if local:
        return f"time_bucket({interval_sql(width)}, {column}, '{LOCAL_TZ}')"
    return f"time_bucket({interval_sql(width)}, {column})"


TIER_1M: Final = Tier("1m", "rollup_1m", timedelta(minutes=1))
TIER_1H: Final = Tier("1h", "rollup_1h", timedelta(hours=1))
TIER_1D: Final = Tier("1d", "rollup_1d", timedelta(days=1))
TIER_1D_LOCAL: Final = Tier("1d_local", "rollup_1d_local", timedelta(days=1), local=True)
TIERS: Final = (TIER_1M, TIER_1H, TIER_1D, TIER_1D_LOCAL)

# A step from a previous value to the next, with the counter-reset rule.
_STEP = "CASE WHEN {prev} IS NULL THEN 0 WHEN {cur} >= {prev} THEN {cur} - {prev} ELSE {cur} END"


Kind = Literal["counters", "others"]
"""Counter metrics, or every other metric."""

Source = Callable[[Kind], str]
"""Builds ``FROM … [WHERE …]`` yielding rows aliased ``s`` of one :data:`Kind` of metrics.
Filtering is the source's job so it can apply the condition where it is cheapest (before a
LATERAL scan, not after it)."""


def counter_condition(column: str, kind: Kind) -> str:
    """SQL condition: ``column`` is a metric of ``kind``; binds ``%(counters)s``."""
    if kind == "counters":
        return f"{column} = ANY(%(counters)s::text[])"
    return f"{column} <> ALL(%(counters)s::text[])"


def from_raw_sql(source: Source, bucket: str) -> str:
    """SELECT of tier rows aggregated from raw readings.

    Counter metrics go through a second branch that also sums the reset-aware steps between
    consecutive readings of a bucket (``lag``); other metrics skip that sort.

    Args:
        source: the readings (``s.device_id``, ``s.metric``, ``s.ts``, ``s.value``); the
            statement must bind ``%(counters)s`` to :data:`COUNTER_METRICS`.
        bucket: SQL bucket expression over ``s.ts``.

    Returns:
        A SELECT producing :data:`COLUMNS`.
    """
    aggs = (
        "count(*)::integer, sum(value), min(value), max(value),"
        " first(value, ts), min(ts), last(value, ts), max(ts)"
    )
    step = _STEP.format(prev="prev", cur="value")
    return f"""
SELECT device_id, metric, bucket, {aggs}, NULL::double precision
FROM (SELECT s.device_id, s.metric, {bucket} AS bucket, s.ts, s.value
      {source("others")}) AS x
GROUP BY device_id, metric, bucket
UNION ALL
SELECT device_id, metric, bucket, {aggs}, sum({step})
FROM (SELECT s.device_id, s.metric, {bucket} AS bucket, s.ts, s.value,
             lag(s.value) OVER (PARTITION BY s.device_id, s.metric, {bucket} ORDER BY s.ts) AS prev
      {source("counters")}) AS x
GROUP BY device_id, metric, bucket
"""


def from_tier_sql(source: Source, bucket: str) -> str:
    """SELECT of coarser rows combined from finer tier rows; same contract as :func:`from_raw_sql`.

    ``source`` rows are tier rows aliased ``s``; ``bucket`` is an expression over ``s.bucket``.
    """
    aggs = (
        "sum(count)::integer, sum(sum), min(min), max(max),"
        " first(first, first_ts), min(first_ts), last(last, last_ts), max(last_ts)"
    )
    step = _STEP.format(prev="prev_last", cur="first")
    return f"""
SELECT device_id, metric, bucket, {aggs}, NULL::double precision
FROM (SELECT s.device_id, s.metric, {bucket} AS bucket, s.count, s.sum, s.min, s.max,
             s.first, s.first_ts, s.last, s.last_ts
      {source("others")}) AS x
GROUP BY device_id, metric, bucket
UNION ALL
SELECT device_id, metric, bucket, {aggs}, sum(counter_inc + {step})
FROM (SELECT s.device_id, s.metric, {bucket} AS bucket, s.count, s.sum, s.min, s.max,
             s.first, s.first_ts, s.last, s.last_ts, s.counter_inc,
             lag(s.last) OVER (PARTITION BY s.device_id, s.metric, {bucket}
                               ORDER BY s.bucket) AS prev_last
      {source("counters")}) AS x
GROUP BY device_id, metric, bucket
"""
