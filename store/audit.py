"""The API's audit log: writes and authentication/authorisation failures.

Event names follow the OWASP logging vocabulary (``authn_login_fail``, ``authn_token_revoked``,
``authz_fail``) or name the write (``alert_acknowledge``, ``key_create`` …). Only key ids are
recorded, never keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from psycopg.types.json import Jsonb

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime

    import psycopg


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audit record (``at`` is set by the database when None)."""

    event: str
    key_id: str | None = None
    client: str | None = None
    method: str | None = None
    path: str | None = None
    status: int | None = None
    target: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None


_INSERT: Final = (
    "INSERT INTO audit_log (at, event, key_id, client, method, path, status, target, detail)"
    " VALUES (coalesce(%s, now()), %s, %s, %s, %s, %s, %s, %s, %s)"
)


def _params(e: AuditEvent) -> tuple[Any, ...]:
    return (
        e.at, e.event, e.key_id, e.client, e.method, e.path, e.status, e.target, Jsonb(e.detail),
    )  # fmt: skip


def record(conn: psycopg.Connection[Any], event: AuditEvent) -> None:
    """Append one event (in the caller's transaction, if any)."""
    conn.execute(_INSERT, _params(event))


async def record_async(conn: psycopg.AsyncConnection[Any], events: Iterable[AuditEvent]) -> int:
    """Append events (in the caller's transaction, if any); return how many."""
    batch = [_params(e) for e in events]
    if batch:
        async with conn.cursor() as cur:
            await cur.executemany(_INSERT, batch)
    return len(batch)


async def recent(
    conn: psycopg.AsyncConnection[Any],
    *,
    event: str | None = None,
    key_id: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> Sequence[tuple[int, AuditEvent]]:
    """Newest events first, optionally of one event name or key, before an id (paging)."""
    cur = await conn.execute(
        "SELECT id, at, event, key_id, client, method, path, status, target, detail"
        " FROM audit_log WHERE (%(event)s::text IS NULL OR event = %(event)s)"
        " AND (%(key)s::text IS NULL OR key_id = %(key)s)"
        " AND (%(before)s::bigint IS NULL OR id < %(before)s)"
        " ORDER BY id DESC LIMIT %(limit)s",
        {"event": event, "key": key_id, "before": before_id, "limit": limit},
    )
    return [
        (int(r[0]), AuditEvent(r[2], r[3], r[4], r[5], r[6], r[7], r[8], dict(r[9]), r[1]))
        for r in await cur.fetchall()
    ]
