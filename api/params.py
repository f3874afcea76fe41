"""Parsing and checking of query parameters shared by several routes."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Final, Literal

from fastapi import Query
from pydantic import AwareDatetime

from api.const import MAX_YEAR, MIN_YEAR
from api.problems import invalid, too_large
from core.metrics import METRICS

if TYPE_CHECKING:
    from collections.abc import Sequence

_INTERVAL: Final = re.compile(r"^(\d{1,7})(s|m|h|d|w)$")
_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_INTERVAL: Final = timedelta(days=366)
ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"

Align = Literal["utc", "local"]
Format = Literal["json", "csv", "ndjson"]

Start = Annotated[AwareDatetime, Query(description="inclusive start, ISO 8601 with offset")]
End = Annotated[AwareDatetime, Query(description="exclusive end, ISO 8601 with offset")]
MetricList = Annotated[
    list[str] | None,
    Query(alias="metric", description="canonical metric names (repeatable)", max_length=25),
]
DeviceIdList = Annotated[
    list[str] | None,
    Query(alias="device_id", description="device ids (repeatable)", max_length=100),
]
AreaId = Annotated[
    str | None,
    Query(description="an area: includes every area below it", max_length=64, pattern=ID_PATTERN),
]
Kind = Annotated[str | None, Query(description="device kind", max_length=32)]


def check_range(
    start: datetime, end: datetime, max_days: int | None = None
) -> tuple[datetime, datetime]:
    """Normalise to UTC and check a [start, end) range.

    Raises:
        ApiProblem: 422 naming ``start``/``end`` for years outside 1970…2100, an empty range,
            or one longer than ``max_days``.
    """
    for name, t in (("start", start), ("end", end)):
        if not MIN_YEAR <= t.astimezone(UTC).year < MAX_YEAR:
            raise invalid("query", name, f"must be between {MIN_YEAR} and {MAX_YEAR} (UTC)")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        raise invalid("query", "end", "must be after start")
    if max_days is not None and end - start > timedelta(days=max_days):
        raise too_large("end", f"the range may span at most {max_days} days")
    return start, end


def parse_interval(text: str) -> timedelta:
    """``90s``, ``15m``, ``1h``, ``1d``, ``1w`` → timedelta (1 s … 366 days).

    Raises:
        ApiProblem: 422 naming ``interval``.
    """
    m = _INTERVAL.match(text.strip())
    if m is None:
        raise invalid("query", "interval", "use a number and a unit: 30s, 15m, 1h, 1d or 1w")
    width = timedelta(seconds=int(m.group(1)) * _UNIT_S[m.group(2)])
    if not timedelta(seconds=1) <= width <= MAX_INTERVAL:
        raise invalid("query", "interval", "must be between 1s and 366d")
    return width


def check_metrics(metrics: Sequence[str] | None, *, required: bool = False) -> list[str] | None:
    """Check metric names against the registry (canonical names only).

    Raises:
        ApiProblem: 422 naming ``metric``.
    """
    if not metrics:
        if required:
            raise invalid("query", "metric", "give at least one metric")
        return None
    unknown = sorted({m for m in metrics if m not in METRICS})
    if unknown:
        raise invalid(
            "query", "metric", f"unknown metric(s) {', '.join(unknown)}; see /api/v1/metrics"
        )
    return list(dict.fromkeys(metrics))


def encode_cursor(payload: dict[str, str]) -> str:
    """An opaque page cursor."""
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, keys: Sequence[str]) -> dict[str, str]:
    """The payload of a cursor made by :func:`encode_cursor`.

    Raises:
        ApiProblem: 422 naming ``cursor`` for anything else.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid("query", "cursor", "not a cursor this API issued") from None
    if not isinstance(data, dict) or any(not isinstance(data.get(k), str) for k in keys):
        raise invalid("query", "cursor", "not a cursor this API issued")
    return {k: data[k] for k in keys}


def cursor_time(value: str) -> datetime:
    """A timestamp from a cursor.

    Raises:
        ApiProblem: 422 naming ``cursor``.
    """
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise invalid("query", "cursor", "not a cursor this API issued") from None
    if t.tzinfo is None:
        raise invalid("query", "cursor", "not a cursor this API issued")
    return t


def check_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """``min_lon,min_lat,max_lon,max_lat`` → floats.

    Raises:
        ApiProblem: 422 naming ``bbox``.
    """
    if text is None:
        return None
    try:
        x0, y0, x1, y1 = (float(p) for p in text.split(","))
    except ValueError:
        raise invalid("query", "bbox", "use min_lon,min_lat,max_lon,max_lat") from None
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise invalid("query", "bbox", "corners out of range or in the wrong order")
    return x0, y0, x1, y1
