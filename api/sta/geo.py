"""Geometry literals of ``$filter`` (``geography'POINT(106.17 20.43)'``) as small shapes.

dothi's entities only carry points (a device's coordinates), and the database has no PostGIS,
so the spatial functions compare a point with a point, a line or a polygon; the shapes here are
what the well-known text (WKT) of a literal describes. Coordinates are (longitude, latitude),
WGS 84, as in GeoJSON.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

from api.sta.errors import StaQueryError

MAX_VERTICES: Final = 10_000
"""A literal with more vertices is refused: the SQL it becomes grows with it."""

Coord = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Point:
    """A position."""

    x: float
    y: float


@dataclass(frozen=True, slots=True)
class LineString:
    """Connected segments through two or more positions."""

    coords: tuple[Coord, ...]


@dataclass(frozen=True, slots=True)
class Polygon:
    """An outer ring and optional holes, each closed (first position = last)."""

    rings: tuple[tuple[Coord, ...], ...]


Shape = Point | LineString | Polygon

_HEAD = re.compile(r"\s*(?:SRID=(\d+);)?\s*([A-Za-z]+)\s*", re.IGNORECASE)
_NUMBER = re.compile(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str) -> StaQueryError:
        return StaQueryError(f"invalid geometry: {message}", position=self.pos, token=self.text)

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def expect(self, char: str) -> None:
        self.skip_space()
        if self.pos >= len(self.text) or self.text[self.pos] != char:
            raise self.fail(f"expected {char!r}")
        self.pos += 1

    def peek(self) -> str:
        self.skip_space()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def number(self) -> float:
        m = _NUMBER.match(self.text, self.pos)
        if m is None:
            raise self.fail("expected a number")
        self.pos = m.end()
        value = float(m.group(1))
        if not math.isfinite(value):
            raise self.fail("coordinates must be finite")
        return value

    def coord(self) -> Coord:
        x = self.number()
        y = self.number()
        if not (-180.0 <= x <= 180.0 and -90.0 <= y <= 90.0):
            raise self.fail(f"({x:g} {y:g}) is not a longitude/latitude pair")
        # A third (altitude) ordinate is allowed and ignored: dothi's positions are 2-D.
        if _NUMBER.match(self.text, self.pos):
            self.number()
        return (x, y)

    def coords(self, budget: list[int]) -> tuple[Coord, ...]:
        self.expect("(")
        out = [self.coord()]
        while self.peek() == ",":
            self.pos += 1
            out.append(self.coord())
            budget[0] -= 1
            if budget[0] < 0:
                raise self.fail(f"more than {MAX_VERTICES} vertices")
        self.expect(")")
        return tuple(out)


def parse_wkt(text: str) -> Shape:
    """Parse a POINT, LINESTRING or POLYGON in well-known text (optionally ``SRID=4326;``).

    Raises:
        StaQueryError: for any other geometry, bad syntax, or coordinates outside the globe.
    """
    head = _HEAD.match(text)
    if head is None:
        raise StaQueryError("invalid geometry: expected POINT, LINESTRING or POLYGON", token=text)
    srid, kind = head.group(1), head.group(2).upper()
    if srid is not None and srid != "4326":
        raise StaQueryError(f"unsupported SRID {srid}: only 4326 (WGS 84)", token=text)
    reader = _Reader(text)
    reader.pos = head.end()
    budget = [MAX_VERTICES]
    shape: Shape
    if kind == "POINT":
        reader.expect("(")
        x, y = reader.coord()
        reader.expect(")")
        shape = Point(x, y)
    elif kind == "LINESTRING":
        coords = reader.coords(budget)
        if len(coords) < 2:
            raise reader.fail("a LINESTRING needs at least two positions")
        shape = LineString(coords)
    elif kind == "POLYGON":
        reader.expect("(")
        rings = [reader.coords(budget)]
        while reader.peek() == ",":
            reader.pos += 1
            rings.append(reader.coords(budget))
        reader.expect(")")
        closed = []
        for ring in rings:
            if ring[0] != ring[-1]:
                ring = (*ring, ring[0])  # noqa: PLW2901 (close it, as most clients expect)
            if len(ring) < 4:
                raise reader.fail("a polygon ring needs at least three distinct positions")
            closed.append(ring)
        shape = Polygon(tuple(closed))
    else:
        raise StaQueryError(
            f"unsupported geometry {kind}: use POINT, LINESTRING or POLYGON", token=text
        )
    reader.skip_space()
    if reader.pos != len(text):
        raise reader.fail("unexpected text after the geometry")
    return shape


def pg_polygon(ring: tuple[Coord, ...]) -> str:
    """A ring as PostgreSQL ``polygon`` input text (bound as a parameter, never inlined)."""
    return "(" + ",".join(f"({x!r},{y!r})" for x, y in ring) + ")"


def pg_lseg(a: Coord, b: Coord) -> str:
    """A segment as PostgreSQL ``lseg`` input text (bound as a parameter)."""
    return f"[({a[0]!r},{a[1]!r}),({b[0]!r},{b[1]!r})]"
