"""The province's administrative tree, loaded from an editable CSV file.

The shipped file (``store/data/areas_nam_dinh.csv``) holds Nam Định province, its city and nine
districts with approximate centroids, and the communes known so far; the format (one row per
area, ``parent_id`` pointing up the tree) holds all 226 communes. Loading is an upsert, so it is
idempotent and an edited file updates names and coordinates in place.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path  # noqa: TC003 (used at runtime)

import psycopg

from core.errors import DothiError

LEVELS = ("province", "city", "district", "ward", "town", "commune")
COLUMNS = ("id", "parent_id", "level", "name", "name_en", "lat", "lon")


class AreaFileError(DothiError):
    """The areas file is malformed; the message names the line and the problem."""


@dataclass(frozen=True, slots=True)
class Area:
    id: str
    parent_id: str | None
    level: str
    name: str
    name_en: str | None
    lat: float | None
    lon: float | None


def default_file_text() -> str:
    return resources.files("store.data").joinpath("areas_nam_dinh.csv").read_text("utf-8")


def parse(text: str, source: str = "areas file") -> list[Area]:
    """Parse and check an areas CSV; parents must come before their children."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or tuple(reader.fieldnames) != COLUMNS:
        raise AreaFileError(f"{source}: header must be {','.join(COLUMNS)}")
    areas: list[Area] = []
    seen: set[str] = set()
    for row in reader:
        line = reader.line_num
        where = f"{source} line {line}"
        aid = (row["id"] or "").strip()
        if not aid:
            raise AreaFileError(f"{where}: empty id")
        if aid in seen:
            raise AreaFileError(f"{where}: duplicate id {aid!r}")
        level = (row["level"] or "").strip()
        if level not in LEVELS:
            raise AreaFileError(f"{where}: level {level!r} is not one of {', '.join(LEVELS)}")
        parent = (row["parent_id"] or "").strip() or None
        if (level == "province") != (parent is None):
            raise AreaFileError(f"{where}: only a province has no parent")
        if parent is not None and parent not in seen:
            raise AreaFileError(f"{where}: parent {parent!r} is not defined above this line")
        coords: list[float | None] = []
        for key, lo, hi in (("lat", -90.0, 90.0), ("lon", -180.0, 180.0)):
            raw = (row[key] or "").strip()
            if not raw:
                coords.append(None)
                continue
            try:
                val = float(raw)
            except ValueError:
                raise AreaFileError(f"{where}: {key} {raw!r} is not a number") from None
            if not lo <= val <= hi:
                raise AreaFileError(f"{where}: {key} {val} is out of range")
            coords.append(val)
        name = (row["name"] or "").strip()
        if not name:
            raise AreaFileError(f"{where}: empty name")
        areas.append(
            Area(
                aid,
                parent,
                level,
                name,
                (row["name_en"] or "").strip() or None,
                coords[0],
                coords[1],
            )
        )
        seen.add(aid)
    if not areas:
        raise AreaFileError(f"{source}: no areas")
    return areas


def load(url: str, path: Path | None = None) -> int:
    """Upsert the areas from ``path`` (default: the shipped file); return how many."""
    text = path.read_text(encoding="utf-8") if path else default_file_text()
    areas = parse(text, str(path) if path else "areas_nam_dinh.csv")
    with psycopg.connect(url) as conn:
        conn.cursor().executemany(
            "INSERT INTO areas (id, parent_id, level, name, name_en, lat, lon)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET parent_id = EXCLUDED.parent_id,"
            " level = EXCLUDED.level, name = EXCLUDED.name, name_en = EXCLUDED.name_en,"
            " lat = EXCLUDED.lat, lon = EXCLUDED.lon",
            [(a.id, a.parent_id, a.level, a.name, a.name_en, a.lat, a.lon) for a in areas],
        )
    return len(areas)
