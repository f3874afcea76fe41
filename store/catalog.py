"""What the API shows of areas and devices, and the latest values, filtered by visibility.

Every function here takes a :class:`~store.visibility.Visibility` (or serves reference data
anyone may see), so no query can return a device its caller is not allowed to see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from store.visibility import AREA_SUBTREE, Visibility

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    import psycopg

    AConn = psycopg.AsyncConnection[Any]


@dataclass(frozen=True, slots=True)
class AreaRow:
    """One administrative area (reference data, visible to everyone)."""

    id: str
    parent_id: str | None
    level: str
    name: str
    name_en: str | None
    lat: float | None
    lon: float | None


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """A device as the API shows it (no metadata: it may hold installation secrets)."""

    id: str
    kind: str
    name: str | None
    area_id: str | None
    lat: float | None
    lon: float | None
    public: bool
    created_at: datetime
    last_seen: datetime | None


@dataclass(frozen=True, slots=True)
class LatestValue:
    """The newest reading of one (device, metric)."""

    device_id: str
    metric: str
    ts: datetime
    value: float
    quality: int


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    """Optional filters of a device listing; all given ones must hold.

    Attributes:
        ids: only these devices.
        kind: only this kind.
        area_id: only devices in this area or any area below it.
        bbox: (min_lon, min_lat, max_lon, max_lat), inclusive.
        public: only public (True) or only non-public (False) devices.
    """

    ids: Sequence[str] | None = None
    kind: str | None = None
    area_id: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    public: bool | None = None

    def sql(self, alias: str = "d") -> tuple[str, dict[str, Any]]:
        """SQL conditions (joined with AND, ``true`` when none) and their parameters."""
        conds: list[str] = []
        params: dict[str, Any] = {}
        if self.ids is not None:
            conds.append(f"{alias}.id = ANY(%(f_ids)s::text[])")
            params["f_ids"] = list(self.ids)
        if self.kind is not None:
            conds.append(f"{alias}.kind = %(f_kind)s")
            params["f_kind"] = self.kind
        if self.area_id is not None:
            conds.append(f"{alias}.area_id IN ({AREA_SUBTREE})")
            params["subtree_roots"] = [self.area_id]
        if self.bbox is not None:
            conds.append(
                f"{alias}.lon BETWEEN %(f_x0)s AND %(f_x1)s"
                f" AND {alias}.lat BETWEEN %(f_y0)s AND %(f_y1)s"
            )
            params.update(zip(("f_x0", "f_y0", "f_x1", "f_y1"), self.bbox, strict=True))
        if self.public is not None:
            conds.append(f"{alias}.public = %(f_public)s")
            params["f_public"] = self.public
        return (" AND ".join(conds) or "true"), params


_DEVICE_COLS: Final = (
    "d.id, d.kind, d.name, d.area_id, d.lat, d.lon, d.public, d.created_at, d.last_seen"
)


async def areas(conn: AConn) -> list[AreaRow]:
    """Every area, parents before children (by level, then id)."""
    cur = await conn.execute(
        "SELECT id, parent_id, level, name, name_en, lat, lon FROM areas"
        " ORDER BY array_position(ARRAY['province','city','district','ward','town','commune'],"
        " level), id"
    )
    return [AreaRow(*r) for r in await cur.fetchall()]


async def area_exists(conn: AConn, area_id: str) -> bool:
    """True when the area exists."""
    cur = await conn.execute("SELECT 1 FROM areas WHERE id = %s", (area_id,))
    return await cur.fetchone() is not None


async def devices(
    conn: AConn,
    vis: Visibility,
    flt: DeviceFilter,
    *,
    after_id: str | None = None,
    limit: int = 1000,
) -> list[DeviceRow]:
    """Visible devices matching ``flt``, ordered by id, after ``after_id`` (keyset paging)."""
    where, params = flt.sql()
    cur = await conn.execute(
        f"SELECT {_DEVICE_COLS} FROM devices AS d WHERE {vis.predicate()} AND {where}"
        " AND (%(after)s::text IS NULL OR d.id > %(after)s) ORDER BY d.id LIMIT %(limit)s",
        {**vis.params(), **params, "after": after_id, "limit": limit},
    )
    return [DeviceRow(*r) for r in await cur.fetchall()]


async def device(conn: AConn, vis: Visibility, device_id: str) -> tuple[DeviceRow | None, bool]:
    """One device if visible.

    Returns:
        (the device or None, whether it exists at all). The second value is for the audit log
        only: callers answer "not found" for hidden and missing devices alike.
    """
    cur = await conn.execute(
        f"SELECT {_DEVICE_COLS}, {vis.predicate()} FROM devices AS d WHERE d.id = %(id)s",
        {**vis.params(), "id": device_id},
    )
    row = await cur.fetchone()
    if row is None:
        return None, False
    if not row[-1]:
        return None, True
    return DeviceRow(*row[:-1]), True


async def split_visible(
    conn: AConn, vis: Visibility, device_ids: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Split ids into (visible, not visible); the latter holds hidden and unknown ids alike."""
    cur = await conn.execute(
        f"SELECT d.id FROM devices AS d WHERE d.id = ANY(%(ids)s::text[]) AND {vis.predicate()}",
        {**vis.params(), "ids": list(device_ids)},
    )
    found = {r[0] for r in await cur.fetchall()}
    return [i for i in device_ids if i in found], [i for i in device_ids if i not in found]


async def existing_ids(conn: AConn, ids: Sequence[str]) -> list[str]:
    """Which of ``ids`` exist (for auditing attempts on devices a caller may not see)."""
    cur = await conn.execute("SELECT id FROM devices WHERE id = ANY(%s::text[])", (list(ids),))
    return sorted(r[0] for r in await cur.fetchall())


async def device_ids(conn: AConn, vis: Visibility, flt: DeviceFilter, limit: int) -> list[str]:
    """Ids of the visible devices matching ``flt`` (at most ``limit`` + 1, to detect excess)."""
    where, params = flt.sql()
    cur = await conn.execute(
        f"SELECT d.id FROM devices AS d WHERE {vis.predicate()} AND {where}"
        " ORDER BY d.id LIMIT %(limit)s",
        {**vis.params(), **params, "limit": limit + 1},
    )
    return [r[0] for r in await cur.fetchall()]


async def latest(
    conn: AConn, vis: Visibility, flt: DeviceFilter, metrics: Sequence[str] | None
) -> list[LatestValue]:
    """The newest value of each (visible device, metric) matching the filters.

    :func:`store.queries.latest` takes device ids; the API needs the visibility and device
    filters joined in the same statement (one round trip on the hottest route), hence this.
    """
    where, params = flt.sql()
    metric_cond = "true" if metrics is None else "l.metric = ANY(%(metrics)s::text[])"
    cur = await conn.execute(
        "SELECT l.device_id, l.metric, l.ts, l.value, l.quality"
        " FROM latest AS l JOIN devices AS d ON d.id = l.device_id"
        f" WHERE {vis.predicate()} AND {where} AND {metric_cond}"
        " ORDER BY l.device_id, l.metric",
        {**vis.params(), **params, "metrics": list(metrics or [])},
    )
    return [LatestValue(*r) for r in await cur.fetchall()]
