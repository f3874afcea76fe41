"""Rollup tiers (1 min, 1 h, 1 day UTC, 1 day local) kept exact under late and duplicate data.

Two halves:

* :func:`on_batch` runs inside the ingest writer's transaction, right after
  ``INSERT INTO readings … ON CONFLICT DO NOTHING``. It appends the batch's dirty ranges (one row
  per device, metric and UTC day touched) to ``rollup_dirty`` and upserts ``latest``. Because the
  marks commit atomically with the readings, every stored reading is either reflected in the
  tiers or covered by a dirty range, in every snapshot.
* :func:`refresh` (see :mod:`store.refresh`) consumes the dirty ranges and recomputes exactly the
  buckets they touch: 1 min from raw, 1 h from 1 min, days from 1 h.

docs/storage.md has the full argument.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg import sql

from store.tiers import (
    COLUMNS,
    COUNTER_METRICS,
    TIER_1D,
    TIER_1D_LOCAL,
    TIER_1H,
    TIER_1M,
    Tier,
    from_raw_sql,
    from_tier_sql,
    interval_sql,
)

log = logging.getLogger(__name__)

# Dirty ranges are cut at UTC days so a range never spans more than 1,440 one-minute buckets:
# a batch holding one reading from today and one from last month marks two small ranges, not
# the month between them.
_MARK_DIRTY = """
INSERT INTO rollup_dirty (device_id, metric, lo, hi)
SELECT device_id, metric, time_bucket('1 minute', min(ts)), time_bucket('1 minute', max(ts))
FROM {staging}
GROUP BY device_id, metric, time_bucket('1 day', ts)
"""

# Straight from the staging rows: joining readings to pick up the stored value (for a batch that
# repeats a stored (device, metric, ts) with another value) cost 5-8x more per batch, and that
# case is a faulty device. Older or equal timestamps never overwrite (late data, redeliveries).
# The ORDER BY also makes concurrent writers lock latest's rows in one order: no deadlocks.
_UPSERT_LATEST = """
INSERT INTO latest AS l (device_id, metric, ts, value, quality)
SELECT DISTINCT ON (device_id, metric) device_id, metric, ts, value, quality
FROM {staging}
ORDER BY device_id, metric, ts DESC
ON CONFLICT (device_id, metric) DO UPDATE
SET ts = EXCLUDED.ts, value = EXCLUDED.value, quality = EXCLUDED.quality
WHERE EXCLUDED.ts > l.ts
"""


def _relation(name: str) -> sql.Identifier:
    """Quote a table name, optionally schema-qualified (``pg_temp.staging``)."""
    return sql.Identifier(*name.split("."))


def on_batch(cur: psycopg.Cursor[Any], staging: str) -> None:
    """Record one ingest batch for the rollups; call it in the writer's transaction.

    Call it right after ``INSERT INTO readings SELECT … FROM <staging> ON CONFLICT DO NOTHING``
    and before the commit, so the dirty marks commit (or roll back) with the readings.

    Args:
        cur: a cursor of the writer's connection, inside its open transaction.
        staging: name of the staging table (``device_id text, metric text, ts timestamptz,
            value float8, quality smallint``). Rows duplicating stored readings are harmless.
    """
    rel = _relation(staging)
    cur.execute(sql.SQL(_MARK_DIRTY).format(staging=rel))
    cur.execute(sql.SQL(_UPSERT_LATEST).format(staging=rel))


# --- refresh -------------------------------------------------------------------------------------

LOCK_KEY: Final = 0x646F7468690001
"""Advisory lock serialising rollup rounds and retention (migrations lock ``dothi`` alone)."""

KEYS_PER_ROUND: Final = 1000
"""(device, metric, day) ranges recomputed per transaction: at 1-minute data ≤ 1.44 M raw rows."""

_WORK_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS rollup_work (
    device_id text NOT NULL, metric text NOT NULL, day timestamptz NOT NULL,
    lo timestamptz NOT NULL, hi timestamptz NOT NULL, marks integer NOT NULL,
    marked_at timestamptz NOT NULL
) ON COMMIT DELETE ROWS
"""

# Claim up to %(limit)s (device, metric, day) keys with every mark they have. In READ COMMITTED
# the DELETE sees only marks committed before it started, and those transactions' readings are
# visible to every later statement of this round, so the recompute below covers them. Marks
# committed meanwhile are not touched and wait for the next round: nothing is ever lost, and an
# insert into rollup_dirty never waits on a refresh (no unique key to conflict on).
_CLAIM = """
WITH keys AS (
    SELECT DISTINCT device_id, metric, time_bucket('1 day', lo) AS day
    FROM rollup_dirty
    LIMIT %(limit)s
), claimed AS (
    DELETE FROM rollup_dirty AS d
    USING keys AS k
    WHERE d.device_id = k.device_id AND d.metric = k.metric
      AND time_bucket('1 day', d.lo) = k.day
    RETURNING d.device_id, d.metric, k.day, d.lo, d.hi, d.marked_at
)
INSERT INTO rollup_work (device_id, metric, day, lo, hi, marks, marked_at)
SELECT device_id, metric, day, min(lo), max(hi), count(*), min(marked_at)
FROM claimed
GROUP BY device_id, metric, day
"""

_SUMMARY = """
SELECT count(*), coalesce(sum(marks), 0), min(marked_at), min(lo), max(hi)
FROM rollup_work
"""

# Raw is complete only from its horizon on (retention dropped older chunks): recomputing an
# older bucket from what is left would replace a good rollup with a partial one.
_SKIP_BEYOND_HORIZON = """
DELETE FROM rollup_work
WHERE day < (SELECT complete_from FROM rollup_horizon WHERE relation = 'readings')
"""


@dataclass
class RefreshStats:
    """What one :func:`refresh` call did.

    Attributes:
        rounds: transactions that recomputed something.
        marks: dirty marks consumed.
        ranges: (device, metric, UTC day) ranges recomputed.
        skipped: ranges older than the raw horizon (retention), left as they were.
        rows: tier name → bucket rows inserted or changed.
        oldest_mark_age_s: how long the oldest consumed mark had waited (``now`` − mark time).
        seconds: wall time of the call.
    """

    rounds: int = 0
    marks: int = 0
    ranges: int = 0
    skipped: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    oldest_mark_age_s: float | None = None
    seconds: float = 0.0


def _upsert_sql(tier: Tier, fresh: str, gone: str) -> str:
    """Statement writing ``fresh`` rows into ``tier`` and deleting the rows ``gone`` selects.

    Unchanged rows are not rewritten (a day's range usually changes a few buckets of many).
    Rows that no longer have data (raw deleted by hand, then marked dirty) are removed, so a
    tier always equals a fresh aggregate of its source.
    """
    values = COLUMNS[3:]
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in values)
    old = ", ".join(f"t.{c}" for c in values)
    new = ", ".join(f"EXCLUDED.{c}" for c in values)
    return f"""
WITH fresh AS MATERIALIZED ({fresh}),
gone AS (
    DELETE FROM {tier.table} AS t
    {gone}
      AND NOT EXISTS (SELECT 1 FROM fresh AS f WHERE f.device_id = t.device_id
                      AND f.metric = t.metric AND f.bucket = t.bucket)
)
INSERT INTO {tier.table} AS t ({", ".join(COLUMNS)})
SELECT * FROM fresh
ON CONFLICT (device_id, metric, bucket) DO UPDATE SET {sets}
WHERE ({old}) IS DISTINCT FROM ({new})
"""


def _minutes_sql() -> str:
    source = (
        "FROM rollup_work AS w JOIN readings AS s ON s.device_id = w.device_id"
        " AND s.metric = w.metric AND s.ts >= w.lo AND s.ts < w.hi + interval '1 minute'"
        # Constant bounds let TimescaleDB exclude chunks when planning.
        " WHERE s.ts >= %(lo)s AND s.ts < %(hi)s"
    )
    gone = (
        "USING rollup_work AS w WHERE t.device_id = w.device_id AND t.metric = w.metric"
        " AND t.bucket >= w.lo AND t.bucket <= w.hi"
    )
    return _upsert_sql(TIER_1M, from_raw_sql(source, TIER_1M.bucket_sql("s.ts")), gone)


def _derived_sql(tier: Tier, finer: Tier) -> str:
    """Recompute ``tier``'s buckets touched by the work ranges from the ``finer`` tier."""
    step = interval_sql(tier.width)
    keys = f"""
    SELECT DISTINCT w.device_id, w.metric, g.bucket
    FROM rollup_work AS w,
         generate_series({tier.bucket_sql("w.lo")}, {tier.bucket_sql("w.hi")}, {step}) AS g(bucket)
    -- A finer tier older than its horizon lost rows to retention: leave those buckets alone.
    WHERE g.bucket >= (SELECT complete_from FROM rollup_horizon WHERE relation = %(finer)s)
    """
    source = (
        f"FROM keys AS k JOIN {finer.table} AS s ON s.device_id = k.device_id"
        f" AND s.metric = k.metric AND s.bucket >= k.bucket AND s.bucket < k.bucket + {step}"
        " WHERE s.bucket >= %(lo)s AND s.bucket < %(hi)s"
    )
    gone = (
        "USING keys AS k WHERE t.device_id = k.device_id AND t.metric = k.metric"
        " AND t.bucket = k.bucket"
    )
    fresh = from_tier_sql(source, tier.bucket_sql("s.bucket"))
    return (
        "WITH keys AS MATERIALIZED ("
        + keys
        + ")\n"
        + _upsert_sql(tier, fresh, gone).replace("WITH fresh", ", fresh", 1)
    )


_DERIVED: Final = ((TIER_1H, TIER_1M), (TIER_1D, TIER_1H), (TIER_1D_LOCAL, TIER_1H))


def _round(cur: psycopg.Cursor[Any], stats: RefreshStats, limit: int, now: datetime) -> bool:
    """One locked transaction's worth of work; False when there was nothing to claim."""
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
    cur.execute(_WORK_TABLE)
    cur.execute(_CLAIM, {"limit": limit})
    cur.execute(_SKIP_BEYOND_HORIZON)
    skipped = cur.rowcount
    cur.execute(_SUMMARY)
    ranges, marks, marked_at, lo, hi = cur.fetchone() or (0, 0, None, None, None)
    if ranges == 0 and skipped == 0 and marks == 0:
        return False
    stats.rounds += 1
    stats.marks += int(marks)
    stats.skipped += skipped
    if skipped:
        log.warning(
            "rollups: %d dirty range(s) are older than the raw data kept (retention);"
            " their buckets keep their earlier values",
            skipped,
        )
    if marked_at is not None:
        age = (now - marked_at).total_seconds()
        stats.oldest_mark_age_s = max(age, stats.oldest_mark_age_s or 0.0)
    if ranges == 0 or lo is None or hi is None:
        return True
    stats.ranges += int(ranges)
    cur.execute("ANALYZE rollup_work")
    # Bounds for plan-time chunk exclusion; days are the widest buckets derived from a range.
    bounds = {
        "counters": list(COUNTER_METRICS),
        "lo": lo - timedelta(days=1),
        "hi": hi + timedelta(days=2),
    }
    cur.execute(_minutes_sql(), bounds)
    stats.rows[TIER_1M.name] = stats.rows.get(TIER_1M.name, 0) + cur.rowcount
    for tier, finer in _DERIVED:
        cur.execute(_derived_sql(tier, finer), {**bounds, "finer": finer.table})
        stats.rows[tier.name] = stats.rows.get(tier.name, 0) + cur.rowcount
    return True


def refresh(
    conn: psycopg.Connection[Any],
    *,
    now: datetime | None = None,
    max_rounds: int | None = None,
    keys_per_round: int = KEYS_PER_ROUND,
) -> RefreshStats:
    """Bring every rollup tier up to date with the readings marked dirty so far.

    Each round is its own transaction under an advisory lock (so several refreshing processes,
    and retention, take turns instead of overwriting each other): it claims up to
    ``keys_per_round`` (device, metric, day) ranges, recomputes their 1 min buckets from raw,
    then the 1 h buckets they touch from 1 min, then the UTC and local days from 1 h. Rounds
    repeat until no dirty mark is left (marks committed while refreshing are picked up too).

    Args:
        conn: a connection outside any transaction (rounds commit as they go).
        now: the time to measure mark ages against (default: the clock).
        max_rounds: stop after this many rounds even if marks remain (None: until done).
        keys_per_round: ranges per round; bounds a round's size and lock time.

    Returns:
        What was done.

    Raises:
        ValueError: ``conn`` is inside a transaction.
    """
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise ValueError("refresh needs a connection outside any transaction")
    started = time.monotonic()
    stats = RefreshStats()
    now = now or datetime.now(UTC)
    while max_rounds is None or stats.rounds < max_rounds:
        with conn.transaction(), conn.cursor() as cur:
            if not _round(cur, stats, keys_per_round, now):
                break
    stats.seconds = time.monotonic() - started
    level = (
        logging.INFO if stats.seconds > 10 or stats.ranges > 10 * keys_per_round else logging.DEBUG
    )
    log.log(
        level,
        "rollups refreshed: %d range(s) from %d mark(s) in %d round(s), %.2f s",
        stats.ranges,
        stats.marks,
        stats.rounds,
        stats.seconds,
    )
    return stats
