"""Re-ingest dead letters after a fix (a new alias, a corrected unit, a registered device).

Replay runs the stored payload through the same decode → validate → write path as live ingest,
using the letter's original receive time for timestamp checks and missing device times. A letter
that now goes through completely is marked ``replayed_at``; one that still fails keeps its row with
the new reason, so nothing is lost either way. Readings already stored from a partly good message
are deduplicated by the unique key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import psycopg

from core.errors import PayloadError
from ingest import formats
from ingest.validate import TimeLimits, validate
from store.writer import Batch, BatchWriter

if TYPE_CHECKING:
    from datetime import datetime

    from core.settings import Settings


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    id: int
    ok: bool
    stored: int
    reason: str | None
    detail: str | None


def replay(
    settings: Settings,
    *,
    ids: list[int] | None = None,
    reason: str | None = None,
    limit: int = 1000,
) -> list[ReplayOutcome]:
    """Replay dead letters not yet replayed, selected by id or reason (oldest first)."""
    url = settings.db_url()
    limits = TimeLimits(
        max_future=timedelta(seconds=settings.ingest_max_future_s),
        max_age=timedelta(days=settings.ingest_max_age_days),
    )
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id, topic, payload, received_at FROM dead_letters"
            " WHERE replayed_at IS NULL"
            " AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))"
            " AND (%(reason)s::text IS NULL OR reason = %(reason)s)"
            " ORDER BY id LIMIT %(limit)s",
            {"ids": ids, "reason": reason, "limit": limit},
        ).fetchall()
    writer = BatchWriter(url, unknown_devices=settings.ingest_unknown_devices)
    outcomes: list[ReplayOutcome] = []
    try:
        with psycopg.connect(url) as conn:
            outcomes.extend(_replay_one(conn, writer, row, limits) for row in rows)
    finally:
        writer.close()
    return outcomes


def _replay_one(
    conn: psycopg.Connection[Any],
    writer: BatchWriter,
    row: tuple[int, str, bytes, datetime],
    limits: TimeLimits,
) -> ReplayOutcome:
    dl_id, topic, raw, received_at = row
    payload = bytes(raw)
    errors: list[PayloadError]
    stored = 0
    try:
        decoded = formats.decode(topic, payload, received_at)
    except PayloadError as exc:
        errors = [exc]
    else:
        v = validate(decoded, received_at, limits)
        errors = v.errors
        if v.rows:
            if writer.unknown_devices == "reject" and not writer.known_devices({decoded.device_id}):
                errors = [
                    PayloadError(
                        "unknown_device", f"device {decoded.device_id!r} is not registered"
                    )
                ]
            else:
                writer.write(Batch(rows=v.rows, devices={decoded.device_id: received_at}))
                stored = len(v.rows)
    if errors:
        detail = "; ".join(e.detail for e in errors[:20])
        conn.execute(
            "UPDATE dead_letters SET reason = %s, detail = %s WHERE id = %s",
            (errors[0].reason, detail, dl_id),
        )
        conn.commit()
        return ReplayOutcome(dl_id, ok=False, stored=stored, reason=errors[0].reason, detail=detail)
    conn.execute("UPDATE dead_letters SET replayed_at = now() WHERE id = %s", (dl_id,))
    conn.commit()
    return ReplayOutcome(dl_id, ok=True, stored=stored, reason=None, detail=None)
