"""Spatial ``$filter`` functions. dothi's entities are points (device positions), and the
database has no PostGIS: a point is compared with a point, a line or a polygon using
PostgreSQL's built-in geometric types (``point <@ polygon``, ``point <@ lseg``), which compare
with a tolerance of 1e-6 degrees (about 0.1 m).

``geo.distance`` is the great-circle distance in metres (the literals are ``geography``), and a
polygon's boundary counts as inside it.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Final

from api.sta import geo
from api.sta.values import Compiled, GeoPoint, GeoShape, boolean, err, number

if TYPE_CHECKING:
    from collections.abc import Callable

    from api.sta.compile import ExprCompiler

EARTH_RADIUS_M: Final = 6_371_008.8
"""Mean Earth radius."""


def _haversine(a: GeoPoint, b: GeoPoint) -> str:
    dlat = f"radians(({b.lat}) - ({a.lat}))"
    dlon = f"radians(({b.lon}) - ({a.lon}))"
    h = (
        f"power(sin({dlat} / 2), 2) + cos(radians({a.lat})) * cos(radians({b.lat}))"
        f" * power(sin({dlon} / 2), 2)"
    )
    # Rounding can push h a hair above 1, where asin() fails. Clamped with CASE, not least():
    # least() ignores NULLs and would turn an unknown position into the longest distance.
    return f"({2 * EARTH_RADIUS_M!r} * asin(sqrt(CASE WHEN {h} > 1.0 THEN 1.0 ELSE {h} END)))"


def _same_point(a: GeoPoint, b: GeoPoint) -> str:
    # PostgreSQL's geometric operators compare with a tolerance of 1e-6 (about 0.1 m).
    return f"(point({a.lon}, {a.lat}) ~= point({b.lon}, {b.lat}))"


def _segments(c: ExprCompiler, coords: tuple[geo.Coord, ...]) -> list[str]:
    bind = c.scope.params.bind
    return [bind(geo.pg_lseg(p, q), "lseg") for p, q in itertools.pairwise(coords)]


def _on_line(c: ExprCompiler, p: GeoPoint, coords: tuple[geo.Coord, ...]) -> str:
    here = f"point({p.lon}, {p.lat})"
    return "(" + " OR ".join(f"{here} <@ {seg}" for seg in _segments(c, coords)) + ")"


def _inside(c: ExprCompiler, p: GeoPoint, shape: geo.LineString | geo.Polygon) -> str:
    """The point lies in or on the shape (a polygon's boundary counts as inside)."""
    if isinstance(shape, geo.LineString):
        return _on_line(c, p, shape.coords)
    here = f"point({p.lon}, {p.lat})"
    outer, *holes = shape.rings
    bind = c.scope.params.bind
    parts = [f"{here} <@ {bind(geo.pg_polygon(outer), 'polygon')}"]
    # In a hole's interior means outside the polygon; on the hole's edge is still on it.
    parts.extend(
        f"NOT ({here} <@ {bind(geo.pg_polygon(hole), 'polygon')} AND NOT {_on_line(c, p, hole)})"
        for hole in holes
    )
    return "(" + " AND ".join(parts) + ")"


def _boundary(c: ExprCompiler, p: GeoPoint, shape: geo.LineString | geo.Polygon) -> str:
    if isinstance(shape, geo.LineString):
        ends = (shape.coords[0], shape.coords[-1])
        bind = c.scope.params.bind
        pts = [GeoPoint(bind(x, "float8"), bind(y, "float8"), p.pos) for x, y in ends]
        return "(" + " OR ".join(_same_point(p, q) for q in pts) + ")"
    return "(" + " OR ".join(_on_line(c, p, ring) for ring in shape.rings) + ")"


def relation(name: str) -> Callable[[ExprCompiler, list[Compiled], int], Compiled]:
    """The builder of a spatial relation (``geo.intersects``, ``st_within`` …) named ``name``."""
    kind = name.removeprefix("geo.").removeprefix("st_")

    def build(c: ExprCompiler, a: list[Compiled], pos: int) -> Compiled:
        x, y = c.geometry(a[0], name), c.geometry(a[1], name)
        rel = kind
        if rel == "contains":
            x, y, rel = y, x, "within"
        if isinstance(x, GeoPoint) and isinstance(y, GeoPoint):
            same = _same_point(x, y)
            sql = {
                "intersects": same,
                "equals": same,
                "within": same,
                "disjoint": f"(NOT {same})",
            }.get(rel, "false")
            return boolean(sql, pos)
        if isinstance(x, GeoPoint) and isinstance(y, GeoShape):
            p, shape, point_first = x, y.shape, True
        elif isinstance(y, GeoPoint) and isinstance(x, GeoShape):
            p, shape, point_first = y, x.shape, False
        else:
            raise err(f"{name}() needs a location or a point on one side", pos, name)
        if rel in ("intersects", "disjoint"):
            inside = _inside(c, p, shape)
            return boolean(inside if rel == "intersects" else f"(NOT {inside})", pos)
        if rel == "within":
            # A point can lie within a shape; a line or polygon never lies within a point.
            return boolean(_inside(c, p, shape) if point_first else "false", pos)
        if rel == "touches":
            return boolean(_boundary(c, p, shape), pos)
        # equals, overlaps, crosses: a point never equals, overlaps or crosses a line or area.
        return boolean("false", pos)

    return build


def distance(c: ExprCompiler, a: list[Compiled], pos: int) -> Compiled:
    """``geo.distance(a, b)``: great-circle metres between two points."""
    x, y = c.geometry(a[0], "geo.distance"), c.geometry(a[1], "geo.distance")
    if not isinstance(x, GeoPoint) or not isinstance(y, GeoPoint):
        raise err("geo.distance() measures between points (locations, POINT literals)", pos)
    return number(_haversine(x, y), pos)


def length(c: ExprCompiler, a: list[Compiled], pos: int) -> Compiled:
    """``geo.length(g)``: 0 for a point, metres along a LINESTRING literal."""
    g = c.geometry(a[0], "geo.length")
    if isinstance(g, GeoPoint):
        return number(f"(CASE WHEN {g.lon} IS NULL THEN NULL ELSE 0.0 END)", pos)
    if isinstance(g.shape, geo.Polygon):
        raise err("geo.length() measures lines", pos)
    metres = sum(_great_circle(p, q) for p, q in itertools.pairwise(g.shape.coords))
    return number(c.scope.params.bind(metres, "float8"), pos)


def _great_circle(p: geo.Coord, q: geo.Coord) -> float:
    lat1, lat2 = math.radians(p[1]), math.radians(q[1])
    dlat, dlon = lat2 - lat1, math.radians(q[0] - p[0])
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def relate(_c: ExprCompiler, _a: list[Compiled], pos: int) -> Compiled:
    """``st_relate`` (DE-9IM patterns) is not supported."""
    raise err("st_relate() is not supported", pos, "st_relate")
