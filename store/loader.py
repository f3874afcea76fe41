"""The reference batch write: COPY → TEMP staging → INSERT … ON CONFLICT DO NOTHING → on_batch.

This is the sequence the ingest writer follows (one transaction per batch). Tests, the storage
benchmark and one-off backfills use it; the writer may call it too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from store.rollups import on_batch

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    import psycopg

STAGING = "dothi_staging"

Row = tuple[str, str, "datetime", float, int]
"""(device_id, metric, ts, value, quality)."""


def load_batch(conn: psycopg.Connection[Any], rows: Iterable[Row]) -> int:
    """Store one batch of readings and mark it for the rollups, in one transaction.

    Duplicates of stored readings (and within the batch) are dropped by the readings key.

    Args:
        conn: a connection not inside a transaction block of the caller's.
        rows: ``(device_id, metric, ts, value, quality)`` tuples, ts timezone-aware.

    Returns:
        The number of readings actually inserted.
    """
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {STAGING} (device_id text, metric text,"
            " ts timestamptz, value double precision, quality smallint) ON COMMIT DELETE ROWS"
        )
        with cur.copy(f"COPY {STAGING} (device_id, metric, ts, value, quality) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(
            "INSERT INTO readings (device_id, metric, ts, value, quality)"
            f" SELECT device_id, metric, ts, value, quality FROM {STAGING}"
            " ON CONFLICT DO NOTHING"
        )
        inserted = cur.rowcount
        on_batch(cur, STAGING)
    return inserted
