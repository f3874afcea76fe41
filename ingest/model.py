"""What a payload decoder produces: readings as the device stated them, before normalisation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from core.errors import PayloadError


@dataclass(frozen=True, slots=True)
class RawReading:
    """One reading as the device sent it.

    Attributes:
        device_id: dothi device id (from the topic, or the payload for gateway formats).
        name: the device's name for the quantity (``PM2.5``, ``temp``); the metric registry
            resolves it to a canonical metric.
        value: the number as sent (booleans already mapped to 1.0/0.0).
        unit: the unit as sent, or None when the format carries none.
        ts: timezone-aware observation time, or None for "when received".
        seq: a device-supplied sequence number, when the format has one.
    """

    device_id: str
    name: str
    value: float
    unit: str | None = None
    ts: datetime | None = None
    seq: int | None = None


@dataclass(slots=True)
class Decoded:
    """A decoded message: its readings and any per-field problems.

    A field that cannot be read (say a string where a number belongs) is reported in ``errors``
    while the rest of the message is still stored; the whole message then also goes to the
    dead letters with those reasons, so replaying it after a fix loses nothing (stored readings
    are deduplicated).
    """

    device_id: str
    format: str
    readings: list[RawReading] = field(default_factory=list)
    errors: list[PayloadError] = field(default_factory=list)
