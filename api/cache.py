"""A tiny per-process response cache for the hottest read routes (latest values, aggregates).

Dashboards and the portal ask the same questions many times a second (every viewer of a panel
refreshes the same query); answering them from memory for ``ttl`` seconds (1 s by default)
turns N identical queries a second into one. Keys always include what decides visibility, so a
cached answer is never served to a caller who may see less.

When an entry expires, one request recomputes it (single flight) while the others keep getting
the previous answer, so an expiry never sends a burst of identical queries to the database nor
a burst of slow responses to clients (the benchmark's p99 showed both). An answer is therefore
at most ``ttl`` plus one query old. Failures are not cached: a request whose computation fails
(a 404, the database down) answers for itself, and waiters compute their own.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Hashable

V = TypeVar("V")


class TtlCache(Generic[V]):
    """Values by key for ``ttl`` seconds; ``ttl`` 0 disables it. Used from the event loop only."""

    def __init__(self, ttl: float, max_entries: int = 1024) -> None:
        self.ttl = ttl
        self._max = max_entries
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._inflight: dict[Hashable, asyncio.Future[V | None]] = {}

    async def get_or_compute(self, key: Hashable, compute: Callable[[], Awaitable[V]]) -> V:
        """The cached value if fresh, else ``compute()``'s (computed once for concurrent callers).

        Raises:
            Whatever ``compute`` raises, to the caller that ran it.
        """
        if self.ttl <= 0:
            return await compute()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        pending = self._inflight.get(key)
        if pending is not None:
            if hit is not None:
                return hit[1]  # stale while another request refreshes it
            value = await asyncio.shield(pending)
            return value if value is not None else await compute()
        future: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        value = None
        try:
            value = await compute()
        finally:
            del self._inflight[key]
            future.set_result(value)
        self._entries[key] = (time.monotonic() + self.ttl, value)
        self._entries.move_to_end(key)
        if len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return value
