"""Audit events the request path must not wait for (authentication and authorisation failures).

They are queued in memory and written in batches by a background task, so a flood of bad keys
costs the database a few multi-row inserts, not one transaction per request. The queue is
bounded: beyond it events are dropped and counted (``dothi_api_audit_dropped_total``). Writes
(alert acknowledgements …) are audited in their own transaction instead, by the route.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg_pool import PoolTimeout

from store.audit import AuditEvent, record_async

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

    from api.metrics import ApiMetrics

log = logging.getLogger(__name__)


class AuditWriter:
    """Background batch writer of :class:`AuditEvent`."""

    def __init__(
        self,
        pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]],
        metrics: ApiMetrics,
        max_queue: int = 10_000,
        batch: int = 500,
    ) -> None:
        self._pool = pool
        self._metrics = metrics
        self._queue: asyncio.Queue[AuditEvent] = asyncio.Queue(max_queue)
        self._batch = batch

    def emit(self, event: AuditEvent) -> None:
        """Queue an event; never blocks."""
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self._metrics.audit_dropped.inc()

    async def run(self) -> None:
        """Write queued events until cancelled."""
        while True:
            events = [await self._queue.get()]
            while len(events) < self._batch and not self._queue.empty():
                events.append(self._queue.get_nowait())
            await self._write(events)

    async def flush(self) -> None:
        """Write whatever is queued now (shutdown, tests)."""
        events = []
        while not self._queue.empty():
            events.append(self._queue.get_nowait())
        if events:
            await self._write(events)

    async def _write(self, events: list[AuditEvent]) -> None:
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await record_async(conn, events)
        except (psycopg.Error, PoolTimeout) as exc:
            # The database is down: the events are lost, but said so, once per batch.
            self._metrics.audit_dropped.inc(len(events))
            log.warning("audit log: %d events not written: %s", len(events), exc)
