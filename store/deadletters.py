"""Dead letters as the API's admin routes show them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from datetime import datetime

    import psycopg


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    """One refused input, with its raw payload."""

    id: int
    received_at: datetime
    topic: str
    reason: str
    detail: str
    device_id: str | None
    replayed_at: datetime | None
    payload: bytes


_COLS: Final = "id, received_at, topic, reason, detail, device_id, replayed_at, payload"


def _row(r: tuple[Any, ...]) -> DeadLetterRow:
    return DeadLetterRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bytes(r[7]))


async def listing(
    conn: psycopg.AsyncConnection[Any],
    *,
    reason: str | None,
    device_id: str | None,
    pending_only: bool,
    before_id: int | None,
    limit: int,
) -> list[DeadLetterRow]:
    """Newest first, filtered, before ``before_id`` (keyset paging)."""
    cur = await conn.execute(
        f"SELECT {_COLS} FROM dead_letters"
        " WHERE (%(reason)s::text IS NULL OR reason = %(reason)s)"
        " AND (%(dev)s::text IS NULL OR device_id = %(dev)s)"
        " AND (NOT %(pending)s OR replayed_at IS NULL)"
        " AND (%(before)s::bigint IS NULL OR id < %(before)s)"
        " ORDER BY id DESC LIMIT %(limit)s",
        {
            "reason": reason,
            "dev": device_id,
            "pending": pending_only,
            "before": before_id,
            "limit": limit,
        },
    )
    return [_row(r) for r in await cur.fetchall()]


async def get(conn: psycopg.AsyncConnection[Any], dl_id: int) -> DeadLetterRow | None:
    """One dead letter by id."""
    cur = await conn.execute(f"SELECT {_COLS} FROM dead_letters WHERE id = %s", (dl_id,))
    row = await cur.fetchone()
    return _row(row) if row else None
