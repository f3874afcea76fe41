"""Retention per tier: drop whole chunks of the hypertables, delete old dead letters.

Dropping raw chunks does not touch the tiers built from them; each drop moves the relation's
horizon in ``rollup_horizon`` so :func:`store.rollups.refresh` never recomputes a bucket from
what retention left of its source (a late reading for a dropped day is stored, but cannot
change that day's rollups).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from store.rollups import LOCK_KEY, refresh

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How many days each relation keeps; None keeps it forever.

    Attributes:
        raw_days: ``readings`` (the raw hypertable).
        minute_days: ``rollup_1m``.
        hour_days: ``rollup_1h``.
        day_days: ``rollup_1d`` and ``rollup_1d_local``.
        dead_letter_days: ``dead_letters`` (by ``received_at``).
    """

    raw_days: int | None = 90
    minute_days: int | None = 365
    hour_days: int | None = 5 * 365
    day_days: int | None = None
    dead_letter_days: int | None = 30

    def __post_init__(self) -> None:
        for name in ("raw_days", "minute_days", "hour_days", "day_days", "dead_letter_days"):
            days = getattr(self, name)
            if days is not None and days < 1:
                raise ValueError(f"retention {name} must be at least 1 day or None, not {days}")

    def hypertables(self) -> dict[str, int | None]:
        """Hypertable name → days kept."""
        return {
            "readings": self.raw_days,
            "rollup_1m": self.minute_days,
            "rollup_1h": self.hour_days,
            "rollup_1d": self.day_days,
            "rollup_1d_local": self.day_days,
        }


# Chunks drop_chunks(older_than => cutoff) removes are those ending at or before the cutoff; the
# latest such end is where the relation is complete again.
_DROPPED_UNTIL = """
SELECT max(range_end) FROM timescaledb_information.chunks
WHERE hypertable_name = %s AND range_end <= %s
"""

_MOVE_HORIZON = """
UPDATE rollup_horizon SET complete_from = greatest(complete_from, %s) WHERE relation = %s
"""


def _drop(conn: psycopg.Connection[Any], table: str, cutoff: datetime) -> int:
    with conn.transaction():
        # Same lock as refresh rounds: a round never reads a chunk while it is being dropped,
        # and the horizon moves with the drop.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        row = conn.execute(_DROPPED_UNTIL, (table, cutoff)).fetchone()
        until = row[0] if row else None
        if until is None:
            return 0
        dropped = conn.execute(
            "SELECT drop_chunks(%s::regclass, older_than => %s::timestamptz)", (table, cutoff)
        ).fetchall()
        conn.execute(_MOVE_HORIZON, (until, table))
    log.info("retention: dropped %d chunk(s) of %s older than %s", len(dropped), table, until)
    return len(dropped)


def apply_retention(
    conn: psycopg.Connection[Any], policy: RetentionPolicy, now: datetime | None = None
) -> dict[str, int]:
    """Drop what ``policy`` no longer keeps.

    Pending dirty marks are refreshed first, so data about to go still reaches the tiers.
    Hypertables lose whole chunks only: a chunk is dropped once its newest possible row is
    older than the cutoff (so up to one chunk interval more than the policy is kept).

    Args:
        conn: a connection outside any transaction.
        policy: days per relation.
        now: the reference time (default: the clock).

    Returns:
        Relation → chunks dropped (hypertables) or rows deleted (``dead_letters``).
    """
    now = now or datetime.now(UTC)
    refresh(conn, now=now)
    result: dict[str, int] = {}
    for table, days in policy.hypertables().items():
        if days is not None:
            result[table] = _drop(conn, table, now - timedelta(days=days))
    if policy.dead_letter_days is not None:
        cutoff = now - timedelta(days=policy.dead_letter_days)
        with conn.transaction():
            cur = conn.execute("DELETE FROM dead_letters WHERE received_at < %s", (cutoff,))
        result["dead_letters"] = cur.rowcount
        if cur.rowcount:
            log.info("retention: deleted %d dead letter(s) older than %s", cur.rowcount, cutoff)
    return result
