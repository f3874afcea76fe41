"""A tiny per-process response cache for the hottest read routes (latest values, aggregates).

Dashboards and the portal ask the same questions many times a second (every viewer of a panel
refreshes the same query); answering them from memory for ``ttl`` seconds (1 s by default)
turns N identical queries a second into one. Keys always include what decides visibility, so a
cached answer is never served to a caller who may see less. Entries expire by time; the map is
LRU-bounded.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Hashable


class TtlCache:
    """Bytes by key for ``ttl`` seconds; ``ttl`` 0 disables it."""

    def __init__(self, ttl: float, max_entries: int = 1024) -> None:
        self.ttl = ttl
        self._max = max_entries
        self._entries: OrderedDict[Hashable, tuple[float, bytes]] = OrderedDict()

    def get(self, key: Hashable) -> bytes | None:
        """The cached value if fresh."""
        if self.ttl <= 0:
            return None
        hit = self._entries.get(key)
        if hit is None or hit[0] <= time.monotonic():
            return None
        return hit[1]

    def put(self, key: Hashable, value: bytes) -> None:
        """Remember a value for ``ttl`` seconds."""
        if self.ttl <= 0:
            return
        self._entries[key] = (time.monotonic() + self.ttl, value)
        self._entries.move_to_end(key)
        if len(self._entries) > self._max:
            self._entries.popitem(last=False)
