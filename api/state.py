"""Everything one API process holds: config, pools, limiter, key cache, audit writer, live hub."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from api.audit import AuditWriter
from api.auth import Authenticator, KeyCache
from api.cache import TtlCache
from api.db import Database
from api.live import LiveHub
from api.metrics import ApiMetrics
from api.ratelimit import RateLimiter
from store import keys

if TYPE_CHECKING:
    from analytics.aqi import AqiResult
    from api.config import ApiConfig
    from store.keys import ApiKey

log = logging.getLogger(__name__)


class ApiState:
    """The long-lived parts of one API process, created with the app, opened in its lifespan."""

    def __init__(self, config: ApiConfig) -> None:
        self.config = config
        self.metrics = ApiMetrics()
        self.db = Database(config)
        self.limiter = RateLimiter()
        self.audit = AuditWriter(self.db.pool, self.metrics)
        self.keys = KeyCache(self._fetch_key, config.key_cache_s)
        self.auth = Authenticator(config, self.keys, self.limiter, self.audit)
        self.live = LiveHub(self.db.pool, config, self.metrics)
        self.exports = asyncio.Semaphore(config.export_concurrency)
        self.responses: TtlCache[bytes] = TtlCache(config.response_cache_s)
        self.aqi_now: TtlCache[dict[str, AqiResult | None]] = TtlCache(config.aqi_cache_s)
        self._tasks: list[asyncio.Task[None]] = []

    async def _fetch_key(self, key_id: str) -> ApiKey | None:
        async with self.db.pool.connection() as conn:
            return await keys.fetch(conn, key_id)

    async def start(self) -> None:
        """Open the pools and start the background tasks."""
        await self.db.open()
        self._tasks = [
            asyncio.create_task(self.audit.run(), name="audit-writer"),
            asyncio.create_task(self.live.run(), name="live-poller"),
        ]

    async def stop(self) -> None:
        """Stop the background tasks, write pending audit events, close the pools."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.live.close()
        await self.audit.flush()
        await self.db.close()
