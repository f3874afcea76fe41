"""The rollup job: consume dirty marks, recompute exactly the buckets they touch.

A round is one transaction under an advisory lock:

1. claim up to N (device, metric, UTC day) keys: ``DELETE … RETURNING`` every mark of them;
2. recompute the 1 min buckets of the claimed ranges from raw readings;
3. recompute the 1 h buckets those ranges touch from 1 min, then the UTC and local days from 1 h.

Why no mark is ever lost (READ COMMITTED): the claiming DELETE only sees marks whose ingest
transactions had committed when it started, and those transactions' readings are visible to
every later statement of the round. Marks committed meanwhile are untouched and wait for the next
round. ``rollup_dirty`` has no unique key, so an ingest insert never waits on (or is silently
absorbed by) a mark a refresh is about to delete.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg

from store.tiers import (
    COLUMNS,
    COUNTER_METRICS,
    TIER_1D,
    TIER_1D_LOCAL,
    TIER_1H,
    TIER_1M,
    Kind,
    Source,
    Tier,
    counter_condition,
    from_raw_sql,
    from_tier_sql,
    interval_sql,
)

log = logging.getLogger(__name__)

LOCK_KEY: Final = 0x646F7468690001
"""Advisory lock serialising rollup rounds and retention (migrations lock ``dothi`` alone)."""

KEYS_PER_ROUND: Final = 1000
"""(device, metric, day) ranges per round: at 1-minute data at most 1.44 M raw rows."""

# Each tier is derived from this finer one.
_DERIVED: Final = ((TIER_1H, TIER_1M), (TIER_1D, TIER_1H), (TIER_1D_LOCAL, TIER_1H))

_TEMP_TABLES = [
    """CREATE TEMP TABLE rollup_work (
        device_id text NOT NULL, metric text NOT NULL, day timestamptz NOT NULL,
        lo timestamptz NOT NULL, hi timestamptz NOT NULL, marks integer NOT NULL,
        marked_at timestamptz NOT NULL
    ) ON COMMIT DELETE ROWS""",
    *(
        f"CREATE TEMP TABLE rollup_{kind}_{t.name} (LIKE rollup_1m) ON COMMIT DELETE ROWS"
        for t in (TIER_1M, TIER_1H, TIER_1D, TIER_1D_LOCAL)
        for kind in ("fresh", "existing")
    ),
    *(
        f"CREATE TEMP TABLE rollup_keys_{t.name} (device_id text NOT NULL, metric text NOT NULL,"
        " bucket timestamptz NOT NULL) ON COMMIT DELETE ROWS"
        for t, _ in _DERIVED
    ),
]

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

# Raw is complete only from its horizon on (retention dropped older chunks): recomputing an
# older bucket from what is left would replace a good rollup with a partial one.
_SKIP_BEYOND_HORIZON = """
DELETE FROM rollup_work
WHERE day < (SELECT complete_from FROM rollup_horizon WHERE relation = 'readings')
"""


# LATERAL … OFFSET 0 (a fence against flattening) pins the plan to one index range scan per
# range: fresh chunks have no statistics yet, and the planner then chose a merge join comparing
# every row with every range (9 s instead of 0.2 s for 300 ranges). The constant bounds let
# TimescaleDB exclude chunks when planning.
def _raw_source(kind: Kind) -> str:
    return f"""
FROM rollup_work AS w CROSS JOIN LATERAL (
    SELECT r.device_id, r.metric, r.ts, r.value FROM readings AS r
    WHERE r.device_id = w.device_id AND r.metric = w.metric
      AND r.ts >= w.lo AND r.ts < w.hi + interval '1 minute'
      AND r.ts >= %(lo)s AND r.ts < %(hi)s
    OFFSET 0) AS s
WHERE {counter_condition("w.metric", kind)}"""


# The 1 min rows already stored in the claimed ranges: one index range scan per range.
_RAW_EXISTING = """
FROM rollup_work AS w CROSS JOIN LATERAL (
    SELECT x.* FROM rollup_1m AS x
    WHERE x.device_id = w.device_id AND x.metric = w.metric
      AND x.bucket >= w.lo AND x.bucket <= w.hi AND x.bucket >= %(lo)s AND x.bucket < %(hi)s
    OFFSET 0) AS e"""


@dataclass
class RefreshStats:
    """What one :func:`refresh` call did.

    Attributes:
        rounds: transactions that claimed something.
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


def _keys_sql(tier: Tier, finer: Tier) -> str:
    """The ``tier`` buckets the work ranges touch (and whose source is still complete)."""
    return f"""
INSERT INTO rollup_keys_{tier.name} (device_id, metric, bucket)
SELECT DISTINCT w.device_id, w.metric, g.bucket
FROM rollup_work AS w,
     generate_series({tier.bucket_sql("w.lo")}, {tier.bucket_sql("w.hi")},
                     {interval_sql(tier.width)}) AS g(bucket)
WHERE g.bucket >= (SELECT complete_from FROM rollup_horizon WHERE relation = '{finer.table}')
"""


def _derived_source(tier: Tier, finer: Tier) -> Source:
    def source(kind: Kind) -> str:
        return f"""
FROM rollup_keys_{tier.name} AS k CROSS JOIN LATERAL (
    SELECT f.* FROM {finer.table} AS f
    WHERE f.device_id = k.device_id AND f.metric = k.metric
      AND f.bucket >= k.bucket AND f.bucket < k.bucket + {interval_sql(tier.width)}
      AND f.bucket >= %(lo)s AND f.bucket < %(hi)s
    OFFSET 0) AS s
WHERE {counter_condition("k.metric", kind)}"""

    return source


def _existing_source(tier: Tier) -> str:
    """The ``tier`` rows already stored under the round's keys: one index probe per key."""
    return f"""
FROM rollup_keys_{tier.name} AS k CROSS JOIN LATERAL (
    SELECT x.* FROM {tier.table} AS x
    WHERE x.device_id = k.device_id AND x.metric = k.metric AND x.bucket = k.bucket
      AND x.bucket >= %(lo)s AND x.bucket < %(hi)s
    OFFSET 0) AS e"""


def _write_sqls(tier: Tier) -> tuple[str, str, str]:
    """DELETE, UPDATE and INSERT that turn the stored rows into the fresh ones.

    Every statement is driven by the small set of rows already stored under the round's keys
    (``rollup_existing_*``): the big tier is only touched through primary-key probes, so a round
    costs what it recomputes, not what the tier holds. (A MERGE, and a DELETE joining the
    ranges, were planned as scans of whole chunks: 40 s a round at 30 days × 1,000 sensors.)
    New rows go in with a plain INSERT; rounds hold the advisory lock and are the only writers,
    so no key can appear meanwhile. Unchanged rows are not rewritten; rows whose bucket has no
    data any more (raw deleted by hand, then marked) are deleted, so a tier always equals a
    fresh aggregate of its source.
    """
    fresh, existing = f"rollup_fresh_{tier.name}", f"rollup_existing_{tier.name}"
    values = COLUMNS[3:]
    key = "t.device_id = c.device_id AND t.metric = c.metric AND t.bucket = c.bucket"
    bounds = "t.bucket >= %(lo)s AND t.bucket < %(hi)s"
    delete = f"""
DELETE FROM {tier.table} AS t
USING (SELECT e.device_id, e.metric, e.bucket FROM {existing} AS e
       WHERE NOT EXISTS (SELECT 1 FROM {fresh} AS f WHERE f.device_id = e.device_id
                         AND f.metric = e.metric AND f.bucket = e.bucket)) AS c
WHERE {key} AND {bounds}"""
    update = f"""
UPDATE {tier.table} AS t SET {", ".join(f"{c} = c.{c}" for c in values)}
FROM (SELECT f.* FROM {existing} AS e
      JOIN {fresh} AS f USING (device_id, metric, bucket)
      WHERE ({", ".join(f"e.{c}" for c in values)})
            IS DISTINCT FROM ({", ".join(f"f.{c}" for c in values)})) AS c
WHERE {key} AND {bounds}"""
    insert = f"""
INSERT INTO {tier.table} ({", ".join(COLUMNS)})
SELECT f.* FROM {fresh} AS f
WHERE NOT EXISTS (SELECT 1 FROM {existing} AS e WHERE e.device_id = f.device_id
                  AND e.metric = f.metric AND e.bucket = f.bucket)"""
    return delete, update, insert


def _write(cur: psycopg.Cursor[Any], tier: Tier, select: str, existing: str, params: Any) -> int:
    """Recompute ``tier`` rows with ``select`` and store them; returns rows written."""
    cur.execute(f"INSERT INTO rollup_fresh_{tier.name} {select}", params)
    cur.execute(f"INSERT INTO rollup_existing_{tier.name} SELECT e.* {existing}", params)
    # Real sizes for the planner: a round's sets range from one row to millions.
    cur.execute(f"ANALYZE rollup_fresh_{tier.name}, rollup_existing_{tier.name}")
    delete, update, insert = _write_sqls(tier)
    cur.execute(delete, params)
    written = cur.rowcount
    cur.execute(update, params)
    written += cur.rowcount
    cur.execute(insert, params)
    return written + cur.rowcount


def _claim(cur: psycopg.Cursor[Any], limit: int) -> tuple[int, Any, int, int, Any, Any]:
    """Claim marks into rollup_work.

    Returns:
        (marks claimed, oldest mark time, ranges skipped past the horizon, ranges to
        recompute, earliest and latest minute to recompute).
    """
    cur.execute("SELECT to_regclass('pg_temp.rollup_work') IS NULL")
    if (cur.fetchone() or (False,))[0]:
        for ddl in _TEMP_TABLES:
            cur.execute(ddl)
    cur.execute(_CLAIM, {"limit": limit})
    cur.execute("SELECT coalesce(sum(marks), 0), min(marked_at) FROM rollup_work")
    marks, marked_at = cur.fetchone() or (0, None)
    cur.execute(_SKIP_BEYOND_HORIZON)
    skipped = cur.rowcount
    cur.execute("SELECT count(*), min(lo), max(hi) FROM rollup_work")
    ranges, lo, hi = cur.fetchone() or (0, None, None)
    return int(marks), marked_at, skipped, int(ranges), lo, hi


def _round(cur: psycopg.Cursor[Any], stats: RefreshStats, limit: int, now: datetime) -> bool:
    """One locked transaction's worth of work; False when there was nothing to claim."""
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
    # A round sorts and groups up to ~1.5 M rows: keep that in memory, for this round only.
    cur.execute("SET LOCAL work_mem = '256MB'")
    cur.execute("SET LOCAL enable_memoize = off")  # every probe is distinct: caching only costs
    # JIT compiles for the big estimates of a backfill round and costs more than it saves on
    # the small steady-state rounds.
    cur.execute("SET LOCAL jit = off")
    marks, marked_at, skipped, ranges, lo, hi = _claim(cur, limit)
    if marks == 0:
        return False
    stats.rounds += 1
    stats.marks += marks
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
    if ranges == 0:
        return True
    stats.ranges += ranges
    cur.execute("ANALYZE rollup_work")
    params = {
        "counters": list(COUNTER_METRICS),
        # Bounds for chunk exclusion: a range's widest derived bucket is a (local) day.
        "lo": lo - timedelta(days=1),
        "hi": hi + timedelta(days=2),
    }
    minutes = from_raw_sql(_raw_source, "time_bucket('1 minute', s.ts)")
    written = _write(cur, TIER_1M, minutes, _RAW_EXISTING, params)
    stats.rows[TIER_1M.name] = stats.rows.get(TIER_1M.name, 0) + written
    for tier, finer in _DERIVED:
        cur.execute(_keys_sql(tier, finer))
        cur.execute(f"ANALYZE rollup_keys_{tier.name}")
        select = from_tier_sql(_derived_source(tier, finer), tier.bucket_sql("s.bucket"))
        written = _write(cur, tier, select, _existing_source(tier), params)
        stats.rows[tier.name] = stats.rows.get(tier.name, 0) + written
    return True


def refresh(
    conn: psycopg.Connection[Any],
    *,
    now: datetime | None = None,
    max_rounds: int | None = None,
    keys_per_round: int = KEYS_PER_ROUND,
) -> RefreshStats:
    """Bring every rollup tier up to date with the readings marked dirty so far.

    Each round is its own transaction under an advisory lock (several refreshing processes,
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
    slow = stats.seconds > 10 or stats.ranges > 10 * keys_per_round
    log.log(
        logging.INFO if slow else logging.DEBUG,
        "rollups refreshed: %d range(s) from %d mark(s) in %d round(s), %.2f s",
        stats.ranges,
        stats.marks,
        stats.rounds,
        stats.seconds,
    )
    return stats
