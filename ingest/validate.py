"""Normalise decoded readings through the metric registry and check their timestamps.

The output rows are what the database stores; every reading that cannot be stored comes back as
a :class:`PayloadError` so the message lands in the dead letters with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from core.errors import PayloadError
from core.metrics import normalise

if TYPE_CHECKING:
    from ingest.model import Decoded
    from store.writer import Row


@dataclass(frozen=True, slots=True)
class TimeLimits:
    """How far from the receive time a reading's own timestamp may be."""

    max_future: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(days=400)


@dataclass(slots=True)
class Validated:
    rows: list[Row] = field(default_factory=list)
    errors: list[PayloadError] = field(default_factory=list)


def validate(decoded: Decoded, received_at: datetime, limits: TimeLimits) -> Validated:
    """Turn a decoded message into storable rows plus the errors of what was refused."""
    out = Validated(errors=list(decoded.errors))
    earliest = received_at - limits.max_age
    latest = received_at + limits.max_future
    seen: set[tuple[str, str, datetime]] = set()
    for r in decoded.readings:
        ts = r.ts or received_at
        if ts > latest:
            out.errors.append(
                PayloadError(
                    "future_timestamp",
                    f"{r.name} at {ts.isoformat()} is more than "
                    f"{limits.max_future.total_seconds():.0f} s ahead of the receive time "
                    f"{received_at.isoformat()}",
                )
            )
            continue
        if ts < earliest:
            out.errors.append(
                PayloadError(
                    "stale_timestamp",
                    f"{r.name} at {ts.isoformat()} is older than {limits.max_age.days} days",
                )
            )
            continue
        try:
            metric, value, quality = normalise(r.name, r.value, r.unit)
        except PayloadError as exc:
            out.errors.append(PayloadError(exc.reason, f"device {r.device_id}: {exc.detail}"))
            continue
        key = (r.device_id, metric.name, ts)
        if key in seen:
            # Two readings of one metric at one instant in one message: keep the first, say so.
            out.errors.append(
                PayloadError(
                    "duplicate_in_message",
                    f"{metric.name} at {ts.isoformat()} appears more than once",
                )
            )
            continue
        seen.add(key)
        out.rows.append((r.device_id, metric.name, ts, value, quality))
    return out
