"""The device registry: one row per device, with its kind, place and visibility."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb

from core.errors import DothiError

if TYPE_CHECKING:
    from datetime import datetime

    import psycopg

DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
KINDS = (
    "air_quality",
    "noise",
    "weather",
    "river_gauge",
    "smart_meter",
    "street_light",
    "solar",
    "unknown",
)


class DeviceError(DothiError):
    """A device id, kind or area is not acceptable; the message says which."""


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    kind: str = "unknown"
    name: str | None = None
    area_id: str | None = None
    lat: float | None = None
    lon: float | None = None
    public: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    last_seen: datetime | None = None


def check(device: Device) -> None:
    """Refuse ids, kinds and coordinates that would break topics, ACLs or maps."""
    if not DEVICE_ID.match(device.id):
        raise DeviceError(
            f"device id {device.id!r} must be 1-64 characters of letters, digits, '.', '_', "
            "':' or '-', starting with a letter or digit"
        )
    if device.kind not in KINDS:
        raise DeviceError(f"kind {device.kind!r} is not one of {', '.join(KINDS)}")
    if (device.lat is None) != (device.lon is None):
        raise DeviceError("give both --lat and --lon, or neither")
    if device.lat is not None and not -90 <= device.lat <= 90:
        raise DeviceError(f"latitude {device.lat} is out of range")
    if device.lon is not None and not -180 <= device.lon <= 180:
        raise DeviceError(f"longitude {device.lon} is out of range")


def upsert(conn: psycopg.Connection[Any], devices: list[Device]) -> int:
    """Insert or update devices (registration keeps created_at and last_seen)."""
    for d in devices:
        check(d)
    areas = {d.area_id for d in devices if d.area_id}
    if areas:
        rows = conn.execute(
            "SELECT id FROM areas WHERE id = ANY(%s::text[])", (sorted(areas),)
        ).fetchall()
        unknown = areas - {r[0] for r in rows}
        if unknown:
            raise DeviceError(f"unknown area id(s): {', '.join(sorted(unknown))}")
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO devices (id, kind, name, area_id, lat, lon, public, metadata)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, name = EXCLUDED.name,"
            " area_id = EXCLUDED.area_id, lat = EXCLUDED.lat, lon = EXCLUDED.lon,"
            " public = EXCLUDED.public, metadata = EXCLUDED.metadata",
            [
                (d.id, d.kind, d.name, d.area_id, d.lat, d.lon, d.public, Jsonb(d.metadata))
                for d in devices
            ],
        )
    return len(devices)


def list_devices(
    conn: psycopg.Connection[Any], kind: str | None = None, area_id: str | None = None
) -> list[Device]:
    rows = conn.execute(
        "SELECT id, kind, name, area_id, lat, lon, public, metadata, created_at, last_seen"
        " FROM devices WHERE (%(kind)s::text IS NULL OR kind = %(kind)s)"
        " AND (%(area)s::text IS NULL OR area_id = %(area)s) ORDER BY id",
        {"kind": kind, "area": area_id},
    ).fetchall()
    return [Device(*r) for r in rows]


def delete(conn: psycopg.Connection[Any], device_id: str) -> bool:
    """Remove a device from the registry (its readings stay)."""
    cur = conn.execute("DELETE FROM devices WHERE id = %s", (device_id,))
    return cur.rowcount > 0
