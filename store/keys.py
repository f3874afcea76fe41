"""API keys: issued and revoked by the CLI, looked up by the API.

Only the SHA-256 of a key's secret is stored; the id is public. The API looks keys up by id and
compares hashes itself, so a lookup never sends a secret to the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from core.errors import DothiError
from store.visibility import AREA_SUBTREE

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    import psycopg


class ApiKeyError(DothiError):
    """A key cannot be issued as asked (unknown area, duplicate id); the message says why."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One API key as stored.

    Attributes:
        id: public key id (the ``<id>`` of ``dk_<id>_<secret>``).
        name: who or what holds it.
        scopes: granted scopes.
        area_ids: areas its ``read:all`` is limited to; None for every area.
        secret_hash: SHA-256 of the secret.
        rate_per_s: token-bucket refill rate; None for the API's default.
        burst: token-bucket size; None for the API's default.
        created_at: when it was issued.
        revoked_at: when it was revoked, or None.
        visible_areas: ``area_ids`` with every area below them (filled by :func:`fetch`).
    """

    id: str
    name: str
    scopes: tuple[str, ...]
    area_ids: tuple[str, ...] | None
    secret_hash: bytes
    rate_per_s: float | None
    burst: int | None
    created_at: datetime
    revoked_at: datetime | None
    visible_areas: tuple[str, ...] | None = None


_COLUMNS: Final = (
    "id, name, scopes, area_ids, secret_hash, rate_per_s, burst, created_at, revoked_at"
)


def _key(row: Sequence[Any], visible: Sequence[str] | None = None) -> ApiKey:
    return ApiKey(
        id=row[0],
        name=row[1],
        scopes=tuple(row[2]),
        area_ids=tuple(row[3]) if row[3] is not None else None,
        secret_hash=bytes(row[4]),
        rate_per_s=row[5],
        burst=row[6],
        created_at=row[7],
        revoked_at=row[8],
        visible_areas=tuple(visible) if visible is not None else None,
    )


def insert(
    conn: psycopg.Connection[Any],
    key_id: str,
    name: str,
    scopes: Sequence[str],
    secret_hash: bytes,
    *,
    area_ids: Sequence[str] | None = None,
    rate_per_s: float | None = None,
    burst: int | None = None,
) -> ApiKey:
    """Store a new key.

    Raises:
        ApiKeyError: an area id does not exist, or the key id is taken.
    """
    if area_ids:
        rows = conn.execute(
            "SELECT id FROM areas WHERE id = ANY(%s::text[])", (list(area_ids),)
        ).fetchall()
        unknown = sorted(set(area_ids) - {r[0] for r in rows})
        if unknown:
            raise ApiKeyError(f"unknown area id(s): {', '.join(unknown)}")
    row = conn.execute(
        "INSERT INTO api_keys (id, name, scopes, area_ids, secret_hash, rate_per_s, burst)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING"
        f" RETURNING {_COLUMNS}",
        (
            key_id,
            name,
            list(scopes),
            list(area_ids) if area_ids else None,
            secret_hash,
            rate_per_s,
            burst,
        ),
    ).fetchone()
    if row is None:
        raise ApiKeyError(f"key id {key_id!r} exists already")
    return _key(row)


def list_keys(conn: psycopg.Connection[Any], *, include_revoked: bool = False) -> list[ApiKey]:
    """Every key, oldest first (revoked ones only when asked)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM api_keys"
        " WHERE %(all)s OR revoked_at IS NULL ORDER BY created_at, id",
        {"all": include_revoked},
    ).fetchall()
    return [_key(r) for r in rows]


def revoke(conn: psycopg.Connection[Any], key_id: str) -> bool:
    """Revoke a key; False when there is no such unrevoked key."""
    cur = conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL", (key_id,)
    )
    return cur.rowcount > 0


async def fetch(conn: psycopg.AsyncConnection[Any], key_id: str) -> ApiKey | None:
    """One key by id, revoked or not, with its visible areas expanded to whole subtrees."""
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE id = %(id)s", {"id": key_id})
    row = await cur.fetchone()
    if row is None:
        return None
    visible: list[str] | None = None
    if row[3] is not None:
        cur = await conn.execute(AREA_SUBTREE, {"subtree_roots": list(row[3])})
        visible = sorted(r[0] for r in await cur.fetchall())
    return _key(row, visible)
