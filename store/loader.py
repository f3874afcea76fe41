"""Store readings without MQTT: tests, benchmarks and one-off backfills.

The same write path as ingest (:func:`store.writer.insert_readings`: COPY → staging → INSERT …
ON CONFLICT DO NOTHING → rollup marks), one transaction per call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from store.writer import STAGING, Row, ensure_staging, insert_readings

if TYPE_CHECKING:
    from collections.abc import Iterable

    import psycopg

__all__ = ["STAGING", "Row", "load_batch"]


def load_batch(conn: psycopg.Connection[Any], rows: Iterable[Row]) -> int:
    """Store one batch of readings and mark it for the rollups, in one transaction.

    Args:
        conn: a connection not inside a transaction block of the caller's.
        rows: ``(device_id, metric, ts, value, quality)`` tuples, ts timezone-aware.

    Returns:
        The number of readings actually inserted.
    """
    ensure_staging(conn)
    with conn.transaction(), conn.cursor() as cur:
        return insert_readings(cur, rows)
