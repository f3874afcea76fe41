"""Raw readings for the API: keyset pages, row estimates and chunked export cursors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Sequence
    from datetime import datetime

    import psycopg

    from store.visibility import Visibility

    AConn = psycopg.AsyncConnection[Any]


@dataclass(frozen=True, slots=True)
class Reading:
    """One stored reading."""

    device_id: str
    metric: str
    ts: datetime
    value: float
    quality: int
    received_at: datetime


_COLS: Final = "r.device_id, r.metric, r.ts, r.value, r.quality, r.received_at"


async def page(
    conn: AConn,
    device_id: str,
    metrics: Sequence[str] | None,
    start: datetime,
    end: datetime,
    *,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Reading]:
    """One page of a device's readings in ``[start, end)``, ordered by (ts, metric).

    Args:
        conn: any connection.
        device_id: the device (the caller checked it may be seen).
        metrics: only these metrics; None for all.
        start: inclusive start.
        end: exclusive end.
        after: the (ts, metric) of the previous page's last row, for keyset paging.
        limit: rows at most.
    """
    cur = await conn.execute(
        f"SELECT {_COLS} FROM readings AS r"
        " WHERE r.device_id = %(dev)s AND r.ts >= %(start)s AND r.ts < %(end)s"
        " AND (%(all)s OR r.metric = ANY(%(metrics)s::text[]))"
        " AND (%(after_ts)s::timestamptz IS NULL OR (r.ts, r.metric) > (%(after_ts)s, %(after_m)s))"
        " ORDER BY r.ts, r.metric LIMIT %(limit)s",
        {
            "dev": device_id,
            "start": start,
            "end": end,
            "all": metrics is None,
            "metrics": list(metrics or []),
            "after_ts": after[0] if after else None,
            "after_m": after[1] if after else None,
            "limit": limit,
        },
    )
    return [Reading(*r) for r in await cur.fetchall()]


async def estimate_rows(
    conn: AConn,
    device_ids: Sequence[str],
    metrics: Sequence[str] | None,
    start: datetime,
    end: datetime,
) -> int:
    """Readings in the range according to the daily rollup (whole UTC days, so an upper bound
    for rolled-up data). Cheap enough to refuse an oversize export before streaming it."""
    cur = await conn.execute(
        "SELECT coalesce(sum(count), 0) FROM rollup_1d AS t"
        " WHERE t.device_id = ANY(%(devs)s::text[])"
        " AND (%(all)s OR t.metric = ANY(%(metrics)s::text[]))"
        " AND t.bucket > %(start)s - interval '1 day' AND t.bucket < %(end)s",
        {
            "devs": list(device_ids),
            "all": metrics is None,
            "metrics": list(metrics or []),
            "start": start,
            "end": end,
        },
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def export_chunks(  # noqa: PLR0917 (mirrors page(); a filter per argument)
    conn: AConn,
    vis: Visibility,
    device_ids: Sequence[str],
    metrics: Sequence[str] | None,
    start: datetime,
    end: datetime,
    *,
    chunk: int = 5000,
) -> AsyncGenerator[list[Reading]]:
    """Readings of the devices in ``[start, end)`` ordered by device, metric and ts, in chunks.

    A server-side cursor inside a transaction keeps memory constant however long the range:
    at most ``chunk`` rows are held at a time. The visibility predicate is applied again here,
    so an export can never stream a device its caller may not see.
    """
    async with conn.transaction(), conn.cursor(name="dothi_export") as cur:
        await cur.execute(
            f"SELECT {_COLS} FROM readings AS r JOIN devices AS d ON d.id = r.device_id"
            f" WHERE r.device_id = ANY(%(devs)s::text[]) AND {vis.predicate()}"
            " AND (%(all)s OR r.metric = ANY(%(metrics)s::text[]))"
            " AND r.ts >= %(start)s AND r.ts < %(end)s"
            " ORDER BY r.device_id, r.metric, r.ts",
            {
                **vis.params(),
                "devs": list(device_ids),
                "all": metrics is None,
                "metrics": list(metrics or []),
                "start": start,
                "end": end,
            },
        )
        while rows := await cur.fetchmany(chunk):
            yield [Reading(*r) for r in rows]
