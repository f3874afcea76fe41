"""The live stream's engine: one poller per API process fanning changes out to subscribers.

Every ``live_poll_s`` (while anyone listens) one statement reads the ``latest`` rows
timestamped in the last ``live_lookback_s``; rows whose timestamp moved since the previous poll
are new readings and go to every subscriber whose filter and visibility match. The database cost
is therefore per process, not per listener, and ingest's hot path is untouched (no trigger, no
NOTIFY, no extra index). A reading that arrives more than ``live_lookback_s`` after its own
timestamp is not streamed (it is in /readings); several readings of one series within one poll
interval stream as the newest only — this is a stream of latest values.

Alert events (opened, acknowledged, resolved …) ride along for callers with a key: the same poll
reads ``alert_events`` past the last id seen. Ids are taken at insert, not at commit, so the poll
re-reads a window of recent ids and skips those already sent rather than trusting ``id > last``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg_pool import PoolTimeout

from store.alertviews import AlertFeedRow, events_after, last_event_id
from store.live import LiveRow, latest_since

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

    from api.config import ApiConfig
    from api.metrics import ApiMetrics
    from store.visibility import Visibility

log = logging.getLogger(__name__)

_ALERT_WINDOW = 1000
"""Alert event ids re-read each poll: a transaction holding a smaller id may commit late."""


@dataclass(frozen=True, slots=True)
class LiveFilter:
    """What one subscriber wants (None = no restriction) and may see."""

    visibility: Visibility
    device_ids: frozenset[str] | None = None
    area_ids: frozenset[str] | None = None
    kinds: frozenset[str] | None = None
    metrics: frozenset[str] | None = None
    alerts: bool = False

    def matches(self, row: LiveRow | AlertFeedRow) -> bool:
        """Whether the row goes to this subscriber."""
        if isinstance(row, AlertFeedRow):
            if not self.alerts:
                return False
            metric_ok = self.metrics is None or row.metric in self.metrics or row.metric == "*"
        else:
            metric_ok = self.metrics is None or row.metric in self.metrics
        return (
            metric_ok
            and self.visibility.allows(public=row.public, area_id=row.area_id)
            and (self.device_ids is None or row.device_id in self.device_ids)
            and (self.area_ids is None or row.area_id in self.area_ids)
            and (self.kinds is None or row.kind in self.kinds)
        )


@dataclass(eq=False, slots=True)
class Subscription:
    """One listener: its filter and the queue of batches for it (None = it fell behind)."""

    flt: LiveFilter
    queue: asyncio.Queue[list[LiveRow | AlertFeedRow] | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=256)
    )


class TooManyListeners(Exception):  # noqa: N818 (a condition, reported as 503)
    """The process serves ``live_max_clients`` streams already."""


class LiveHub:
    """Polls ``latest`` while anyone listens and fans new values out."""

    def __init__(
        self,
        pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]],
        config: ApiConfig,
        metrics: ApiMetrics,
    ) -> None:
        self._pool = pool
        self._config = config
        self._metrics = metrics
        self._subs: set[Subscription] = set()
        self._seen: dict[tuple[str, str], datetime] = {}
        self._alert_last = 0
        self._alerts_sent: set[int] = set()
        self._primed = False
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()

    @property
    def full(self) -> bool:
        """Whether the process serves ``live_max_clients`` streams already."""
        return len(self._subs) >= self._config.live_max_clients

    @property
    def lookback(self) -> timedelta:
        """How far back a poll looks."""
        return timedelta(seconds=self._config.live_lookback_s)

    async def subscribe(self, flt: LiveFilter) -> Subscription:
        """Register a listener; values committed after this returns will reach it.

        Raises:
            TooManyListeners: at ``live_max_clients``.
        """
        if self.full:
            raise TooManyListeners
        async with self._lock:
            if not self._primed:
                # Record what is there now, so the first poll streams only what is new.
                await self._poll(emit=False)
            sub = Subscription(flt)
            self._subs.add(sub)
        self._metrics.live_clients.set(len(self._subs))
        self._wake.set()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a listener; with none left, polling stops and the state is dropped."""
        self._subs.discard(sub)
        self._metrics.live_clients.set(len(self._subs))
        if not self._subs:
            self._primed = False
            self._seen.clear()
            self._alerts_sent.clear()

    async def catch_up(
        self, flt: LiveFilter, since: datetime, alerts_after: int | None
    ) -> list[LiveRow | AlertFeedRow]:
        """What ``flt`` matches of the latest values timestamped after ``since`` and of the
        alert events after ``alerts_after`` (for resuming)."""
        async with self._pool.connection() as conn:
            rows: list[LiveRow | AlertFeedRow] = list(await latest_since(conn, since))
            if flt.alerts and alerts_after is not None:
                rows.extend(await events_after(conn, alerts_after))
        return [r for r in rows if flt.matches(r)]

    async def run(self) -> None:
        """Poll while there are listeners, until cancelled."""
        while True:
            if not self._subs:
                self._wake.clear()
                await self._wake.wait()
            t0 = time.monotonic()
            try:
                async with self._lock:
                    await self._poll(emit=True)
            except (psycopg.Error, PoolTimeout) as exc:
                log.warning("live poll failed (retrying): %s", exc)
            elapsed = time.monotonic() - t0
            await asyncio.sleep(max(0.0, self._config.live_poll_s - elapsed))

    async def _poll(self, *, emit: bool) -> None:
        since = datetime.now(UTC) - self.lookback
        t0 = time.perf_counter()
        async with self._pool.connection() as conn:
            rows = await latest_since(conn, since)
            if not self._primed:
                self._alert_last = await last_event_id(conn)
            events = await events_after(conn, max(0, self._alert_last - _ALERT_WINDOW))
        self._metrics.live_poll.observe(time.perf_counter() - t0)
        fresh: list[LiveRow | AlertFeedRow] = []
        for row in rows:
            key = (row.device_id, row.metric)
            seen = self._seen.get(key)
            if seen is None or row.ts > seen:
                self._seen[key] = row.ts
                fresh.append(row)
        # Series that fell out of the window would otherwise be remembered forever.
        if len(self._seen) > 2 * len(rows) + 1000:
            self._seen = {k: v for k, v in self._seen.items() if v > since}
        for ev in events:
            if ev.event_id in self._alerts_sent:
                continue
            self._alerts_sent.add(ev.event_id)
            if self._primed and ev.event_id > self._alert_last - _ALERT_WINDOW:
                fresh.append(ev)
            self._alert_last = max(self._alert_last, ev.event_id)
        floor = self._alert_last - _ALERT_WINDOW
        self._alerts_sent = {i for i in self._alerts_sent if i > floor}
        self._primed = True
        if emit and fresh:
            self._fan_out(fresh)

    @property
    def alert_watermark(self) -> int:
        """The newest alert event id seen."""
        return self._alert_last

    def _fan_out(self, rows: list[LiveRow | AlertFeedRow]) -> None:
        for sub in list(self._subs):
            mine = [r for r in rows if sub.flt.matches(r)]
            if not mine:
                continue
            try:
                sub.queue.put_nowait(mine)
            except asyncio.QueueFull:
                # Too slow a reader: end its stream; it resumes with Last-Event-ID.
                self._subs.discard(sub)
                _end(sub)
        self._metrics.live_clients.set(len(self._subs))

    async def close(self) -> None:
        """End every stream."""
        for sub in list(self._subs):
            _end(sub)
        self._subs.clear()


def _end(sub: Subscription) -> None:
    """Queue the end-of-stream marker, making room for it if needed."""
    if sub.queue.full():
        sub.queue.get_nowait()
    sub.queue.put_nowait(None)
