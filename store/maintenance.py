"""The long-running storage maintenance loop: refresh rollups every few seconds, retention hourly.

Run it in one (or more: they take turns on an advisory lock) supervised process, e.g. the CLI's
maintenance service calls ``run_maintenance(settings.db_url(), stop_event)``. It survives
database restarts: on a connection error it logs, waits with a growing back-off (1 s → 60 s) and
reconnects; a round interrupted by the error rolls back and its dirty marks are redone.
"""

from __future__ import annotations

import logging
import threading  # noqa: TC003 (documented parameter type)
import time
from datetime import UTC, datetime
from typing import Any

import psycopg

from store.retention import RetentionPolicy, apply_retention
from store.rollups import refresh

log = logging.getLogger(__name__)

BACKOFF_MAX_S = 60.0
ROUNDS_PER_PASS = 50  # bounds one refresh call, so a stop request is seen within a pass


def edition(conn: psycopg.Connection[Any]) -> str:
    """The TimescaleDB licence of the database: ``apache``, ``timescale`` or ``unknown``."""
    row = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()
    return str(row[0]) if row and row[0] else "unknown"


def _log_edition(conn: psycopg.Connection[Any]) -> None:
    licence = edition(conn)
    if licence == "timescale":
        # Continuous aggregates could run here, but they cannot be tested on the Apache builds
        # this project is developed on, and one code path keeps both editions' answers equal.
        log.info(
            "TimescaleDB licence 'timescale': rollups stay self-maintained tables"
            " (continuous aggregates, compression and policies are not used)"
        )
    else:
        log.info("TimescaleDB licence %r: rollups are self-maintained tables", licence)


def _serve(
    conn: psycopg.Connection[Any],
    stop: threading.Event,
    *,
    interval_s: float,
    policy: RetentionPolicy,
    retention_every_s: float,
    next_retention: float,
) -> float:
    """Run passes on one connection until stopped; returns when the next retention is due."""
    while not stop.is_set():
        stats = refresh(conn, max_rounds=ROUNDS_PER_PASS)
        if time.monotonic() >= next_retention:
            dropped = apply_retention(conn, policy, datetime.now(UTC))
            log.info("retention applied: %s", dropped)
            next_retention = time.monotonic() + retention_every_s
        if stats.rounds < ROUNDS_PER_PASS:  # caught up: wait; otherwise keep going
            stop.wait(interval_s)
    return next_retention


def run_maintenance(
    url: str,
    stop: threading.Event,
    interval_s: float = 5.0,
    *,
    policy: RetentionPolicy | None = None,
    retention_every_s: float = 3600.0,
) -> None:
    """Keep the rollups fresh and apply retention until ``stop`` is set.

    Args:
        url: database URL.
        stop: set it to make the loop return (within about ``interval_s``).
        interval_s: pause between refreshes once caught up.
        policy: retention policy (default: :class:`RetentionPolicy` defaults).
        retention_every_s: how often retention runs (first run right after connecting).
    """
    policy = policy or RetentionPolicy()
    backoff = 1.0
    next_retention = 0.0
    while not stop.is_set():
        try:
            with psycopg.connect(
                url, autocommit=True, connect_timeout=10, application_name="dothi-maintenance"
            ) as conn:
                log.info("storage maintenance connected")
                _log_edition(conn)
                backoff = 1.0
                next_retention = _serve(
                    conn,
                    stop,
                    interval_s=interval_s,
                    policy=policy,
                    retention_every_s=retention_every_s,
                    next_retention=next_retention,
                )
        except psycopg.OperationalError as exc:
            log.warning(
                "storage maintenance: database unavailable (%s); reconnecting in %.0f s",
                str(exc).strip(),
                backoff,
            )
        except psycopg.Error:
            # Not a lost connection (e.g. a statement failed): log with the traceback and
            # retry later rather than die; the supervisor's log shows it.
            log.exception("storage maintenance failed; retrying in %.0f s", backoff)
        else:
            break
        stop.wait(backoff)
        backoff = min(backoff * 2, BACKOFF_MAX_S)
    log.info("storage maintenance stopped")
