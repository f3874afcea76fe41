"""Rollup tiers (1 min, 1 h, 1 day UTC, 1 day local) kept exact under late and duplicate data.

Two halves:

* :func:`on_batch` runs inside the ingest writer's transaction, right after
  ``INSERT INTO readings … ON CONFLICT DO NOTHING``. It appends the batch's dirty ranges (one row
  per device, metric and UTC day touched) to ``rollup_dirty`` and upserts ``latest``. Because the
  marks commit atomically with the readings, every stored reading is either reflected in the
  tiers or covered by a dirty range, in every snapshot.
* :func:`refresh` (in :mod:`store.refresh`) consumes the dirty ranges and recomputes exactly the
  buckets they touch: 1 min from raw, 1 h from 1 min, days from 1 h.

docs/storage.md has the full argument.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg import sql

# The refresh half lives in its own module; it is re-exported here for callers' convenience.
from store.refresh import LOCK_KEY, RefreshStats, refresh

if TYPE_CHECKING:
    import psycopg

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
# repeats a stored (device, metric, ts) with another value) cost up to 7x more per batch, and that
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


__all__ = ["LOCK_KEY", "RefreshStats", "on_batch", "refresh"]
