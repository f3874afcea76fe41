"""The batch writer: one transaction per batch of readings and dead letters.

Rows go through a binary COPY into a TEMP staging table, then ``INSERT … SELECT … ON CONFLICT DO
NOTHING`` into ``readings``, so a broker redelivery or a device retry never creates a duplicate.
Dead letters of the same messages are written in the same transaction, so a message is acked only
when *everything* it produced is durable.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import psycopg

from core.errors import TransientError
from store import rollups

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)

STAGING = "ingest_staging"
# Dead-letter payloads above this size are kept truncated (the reason says so).
DEAD_LETTER_MAX_BYTES = 1024 * 1024
# last_seen is written at most this often per device, so it never costs a per-message UPDATE.
LAST_SEEN_RESOLUTION_S = 30.0

# (device_id, metric, ts, value, quality): the column order of the staging table.
Row = tuple[str, str, datetime, float, int]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    payload: bytes
    reason: str
    detail: str
    device_id: str | None = None


@dataclass(slots=True)
class Batch:
    """What one flush writes: rows, dead letters, and the devices seen (with receive time)."""

    rows: list[Row] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    devices: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WriteResult:
    inserted: int
    duplicates: int
    dead_letters: int
    registered: int
    seconds: float


def ensure_staging(conn: psycopg.Connection[Any]) -> None:
    """Create this session's staging table (once per connection; emptied at each commit)."""
    conn.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {STAGING} ("
        " device_id text, metric text, ts timestamptz, value float8, quality int2)"
        " ON COMMIT DELETE ROWS"
    )


def insert_readings(
    cur: psycopg.Cursor[Any],
    rows: Iterable[Row],
    after_insert: Callable[[psycopg.Cursor[Any], str], None] | None = rollups.on_batch,
) -> int:
    """COPY rows into the staging table, insert the new ones, run the rollup hook.

    Runs inside the caller's transaction (the staging table must exist: :func:`ensure_staging`).
    Rows already stored, and repeats within ``rows``, are dropped by the readings key.

    Returns:
        How many readings were inserted.
    """
    with cur.copy(
        f"COPY {STAGING} (device_id, metric, ts, value, quality) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["text", "text", "timestamptz", "float8", "int2"])
        for row in rows:
            copy.write_row(row)
    cur.execute(
        "INSERT INTO readings (device_id, metric, ts, value, quality)"
        f" SELECT device_id, metric, ts, value, quality FROM {STAGING}"
        " ON CONFLICT DO NOTHING"
    )
    inserted = cur.rowcount
    if after_insert is not None:
        after_insert(cur, STAGING)
    return inserted


def is_transient(exc: BaseException) -> bool:
    """Errors worth retrying: the connection or the server, not the data."""
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        return True
    return isinstance(
        exc,
        (
            psycopg.errors.AdminShutdown,
            psycopg.errors.CannotConnectNow,
            psycopg.errors.SerializationFailure,
            psycopg.errors.DeadlockDetected,
            psycopg.errors.InsufficientResources,
        ),
    )


class BatchWriter:
    """Writes batches on its own connection; reconnects lazily after a failure.

    Args:
        url: database URL.
        unknown_devices: ``register`` creates a bare ``devices`` row for a new device id;
            ``reject`` turns its readings into dead letters (``unknown_device``).
        after_insert: hook run inside the batch transaction after the insert, given the staging
            table's name; by default the rollups' dirty marks and the latest-values table
            (:func:`store.rollups.on_batch`), which every write must keep current.
    """

    def __init__(
        self,
        url: str,
        *,
        unknown_devices: Literal["register", "reject"] = "register",
        after_insert: Callable[[psycopg.Cursor[Any], str], None] | None = rollups.on_batch,
    ) -> None:
        self.url = url
        self.unknown_devices = unknown_devices
        self.after_insert = after_insert
        self._conn: psycopg.Connection[Any] | None = None
        self._known: set[str] = set()
        self._last_seen_written: dict[str, float] = {}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            try:
                conn = psycopg.connect(self.url, connect_timeout=5, application_name="dothi-ingest")
            except psycopg.Error as exc:
                raise TransientError(f"database unreachable: {exc}") from exc
            ensure_staging(conn)
            conn.commit()
            self._conn = conn
        return self._conn

    def known_devices(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` exist in ``devices`` (cached; unknown ids are looked up)."""
        want = set(ids)
        missing = want - self._known
        if missing:
            conn = self._connection()
            rows = conn.execute(
                "SELECT id FROM devices WHERE id = ANY(%s::text[])", (sorted(missing),)
            ).fetchall()
            conn.commit()
            self._known.update(r[0] for r in rows)
        return want & self._known

    def write(self, batch: Batch) -> WriteResult:
        """Write one batch in one transaction.

        Raises:
            TransientError: the database is unreachable or restarting; nothing was written.
            psycopg.Error: a permanent error (the caller isolates the offending message).
        """
        t0 = time.perf_counter()
        try:
            return self._write(batch, t0)
        except psycopg.Error as exc:
            if self._conn is not None and (self._conn.broken or is_transient(exc)):
                self.close()
            elif self._conn is not None:
                self._conn.rollback()
            if is_transient(exc):
                raise TransientError(f"database write failed: {exc}") from exc
            raise

    def _write(self, batch: Batch, t0: float) -> WriteResult:
        conn = self._connection()
        registered = 0
        new_ids = [d for d in batch.devices if d not in self._known]
        with conn.transaction(), conn.cursor() as cur:
            if new_ids and self.unknown_devices == "register":
                cur.execute(
                    "INSERT INTO devices (id) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING",
                    (new_ids,),
                )
                registered = cur.rowcount
            inserted = 0
            if batch.rows:
                inserted = insert_readings(cur, batch.rows, self.after_insert)
            if batch.dead_letters:
                with cur.copy(
                    "COPY dead_letters (topic, payload, reason, detail, device_id) FROM STDIN"
                ) as copy:
                    for dl in batch.dead_letters:
                        copy.write_row(
                            (dl.topic, _clip(dl.payload), dl.reason, dl.detail, dl.device_id)
                        )
            seen = self._update_last_seen(cur, batch.devices)
        # Only after the commit: a rolled-back transaction must be redone in full next time.
        if self.unknown_devices == "register":
            self._known.update(new_ids)
        now = time.monotonic()
        for d in seen:
            self._last_seen_written[d] = now
        return WriteResult(
            inserted=inserted,
            duplicates=len(batch.rows) - inserted,
            dead_letters=len(batch.dead_letters),
            registered=registered,
            seconds=time.perf_counter() - t0,
        )

    def _update_last_seen(
        self, cur: psycopg.Cursor[Any], devices: dict[str, datetime]
    ) -> list[str]:
        now = time.monotonic()
        due = [
            (d, ts)
            for d, ts in devices.items()
            if now - self._last_seen_written.get(d, -1e9) >= LAST_SEEN_RESOLUTION_S
        ]
        if not due:
            return []
        cur.execute(
            "UPDATE devices d SET last_seen = u.ts"
            " FROM unnest(%s::text[], %s::timestamptz[]) AS u(id, ts)"
            " WHERE d.id = u.id AND (d.last_seen IS NULL OR d.last_seen < u.ts)",
            ([d for d, _ in due], [ts for _, ts in due]),
        )
        return [d for d, _ in due]


def _clip(payload: bytes) -> bytes:
    return payload if len(payload) <= DEAD_LETTER_MAX_BYTES else payload[:DEAD_LETTER_MAX_BYTES]
