"""Database access of one API process: an async pool, and a small sync pool for shared code.

Routes use the async pool. The store's and analytics' shared read functions
(:func:`store.queries.aggregate`, :mod:`store.energy`, the alert lifecycle) are synchronous, as
the CLI and the services that also call them are; the API runs them in a worker thread on a
connection of the sync pool (:meth:`Database.run_sync`) rather than re-implementing them.

Both pools open without waiting, so the API starts (and answers /healthz) while the database
is down; a request that cannot get a connection within ``pool_timeout_s`` gets a 503.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread
from psycopg_pool import AsyncConnectionPool, ConnectionPool

if TYPE_CHECKING:
    from collections.abc import Callable

    import psycopg

    from api.config import ApiConfig

log = logging.getLogger(__name__)

T = TypeVar("T")


class Database:
    """The pools of one API process."""

    def __init__(self, config: ApiConfig) -> None:
        self.config = config
        # Autocommit: reads need no transaction (saves BEGIN/COMMIT round trips); writes open
        # one explicitly.
        self.pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            config.db_url,
            min_size=config.pool_min,
            max_size=config.pool_max,
            timeout=config.pool_timeout_s,
            max_waiting=config.pool_max_waiting,
            kwargs={"autocommit": True, "connect_timeout": 5},
            open=False,
            name="api",
        )
        self.sync_pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            config.db_url,
            min_size=1,
            max_size=config.sync_pool_max,
            timeout=config.pool_timeout_s,
            max_waiting=config.pool_max_waiting,
            kwargs={"autocommit": True, "connect_timeout": 5},
            open=False,
            name="api-sync",
        )

    async def open(self) -> None:
        """Start connecting in the background (never blocks on a database that is down)."""
        await self.pool.open(wait=False)
        self.sync_pool.open(wait=False)

    async def close(self) -> None:
        """Close both pools."""
        await self.pool.close()
        await anyio.to_thread.run_sync(self.sync_pool.close)

    async def run_sync(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``func(conn, *args, **kwargs)`` in a worker thread with a sync connection."""

        def call() -> T:
            with self.sync_pool.connection() as conn:
                return func(conn, *args, **kwargs)

        return await anyio.to_thread.run_sync(call)
