"""Per-key (or per-address) token buckets, in process.

Each API process keeps its own buckets: with N uvicorn workers a client can get up to N times
its rate (documented in docs/api.md). Buckets live in an LRU-bounded map so a scan from many
addresses cannot grow memory without bound; an evicted bucket comes back full, which only ever
errs in the client's favour.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by a string (``key:<id>`` or ``ip:<address>``).

    Only the event loop thread calls it, so it needs no lock.
    """

    def __init__(self, max_buckets: int = 50_000) -> None:
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._max = max_buckets

    def take(self, key: str, rate: float, burst: int, now: float | None = None) -> float:
        """Take one token.

        Args:
            key: whose bucket.
            rate: refill rate, tokens per second.
            burst: bucket size.
            now: monotonic time (tests pass it).

        Returns:
            0.0 when the request may proceed, else the seconds until a token is available.
        """
        t = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(burst), t)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(float(burst), bucket.tokens + (t - bucket.updated) * rate)
            bucket.updated = t
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate


def retry_after(wait_s: float) -> int:
    """Whole seconds for a Retry-After header (at least 1)."""
    return max(1, math.ceil(wait_s))
