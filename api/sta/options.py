"""System query options of a request, parsed; and the text form of parsed options.

:func:`parse_options` reads ``$filter``, ``$orderby``, ``$top``, ``$skip``, ``$count``,
``$select``, ``$expand``, ``$resultFormat`` and ``$skiptoken`` from the query string (other
parameters are ignored; an unknown ``$`` option is an error, as OData requires).

:func:`unparse_options` writes options back as query text, so the service can hand out
``@iot.nextLink`` URLs for collections inside ``$expand`` (whose options only exist as a tree);
``parse(unparse(x))`` gives ``x`` again (tested).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Final

from api.sta import geo
from api.sta.ast import (
    BinOp,
    Call,
    ExpandItem,
    Expr,
    Literal,
    LitKind,
    Not,
    OrderItem,
    Path,
    QueryOptions,
)
from api.sta.errors import StaQueryError
from api.sta.parser import parse_expand, parse_filter, parse_orderby, parse_select

if TYPE_CHECKING:
    from collections.abc import Iterable

SYSTEM_OPTIONS: Final = (
    "$filter",
    "$orderby",
    "$top",
    "$skip",
    "$count",
    "$select",
    "$expand",
    "$resultFormat",
    "$skiptoken",
)
_INTEGER: Final = re.compile(r"\d{1,18}")


def _integer(name: str, text: str) -> int:
    if not _INTEGER.fullmatch(text.strip()):
        raise StaQueryError("must be a non-negative integer", option=name, token=text)
    return int(text)


def parse_options(items: Iterable[tuple[str, str]]) -> QueryOptions:
    """Parse the system query options of a request.

    Args:
        items: the query string's (name, value) pairs, URL-decoded, in order.

    Raises:
        StaQueryError: naming the option (and the position in it) that is wrong.
    """
    raw: dict[str, str] = {}
    for name, value in items:
        if not name.startswith("$"):
            continue  # not a system option (cache busters, client tags): ignored
        if name not in SYSTEM_OPTIONS:
            known = ", ".join(SYSTEM_OPTIONS)
            raise StaQueryError(f"unknown query option (known: {known})", option=name)
        if name in raw:
            raise StaQueryError("given more than once", option=name)
        raw[name] = value
    count = raw.get("$count", "false").strip().lower()
    if count not in ("true", "false"):
        raise StaQueryError("must be true or false", option="$count", token=raw["$count"])
    fmt = raw.get("$resultFormat")
    if fmt is not None and fmt.strip().lower() != "dataarray":
        raise StaQueryError("only dataArray is supported", option="$resultFormat", token=fmt)
    return QueryOptions(
        filter=parse_filter(raw["$filter"]) if "$filter" in raw else None,
        orderby=parse_orderby(raw["$orderby"]) if "$orderby" in raw else (),
        top=_integer("$top", raw["$top"]) if "$top" in raw else None,
        skip=_integer("$skip", raw["$skip"]) if "$skip" in raw else 0,
        count=count == "true",
        select=parse_select(raw["$select"]) if "$select" in raw else None,
        expand=parse_expand(raw["$expand"]) if "$expand" in raw else (),
        result_format="dataArray" if fmt is not None else None,
        skiptoken=raw.get("$skiptoken"),
        raw=raw,
    )


# -- back to text ------------------------------------------------------------------------------


def _duration(value: timedelta) -> str:
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    secs = f"{seconds}.{value.microseconds:06d}".rstrip("0").rstrip(".")
    return f"duration'{sign}P{value.days}DT{hours}H{minutes}M{secs}S'"


def _coords(coords: tuple[geo.Coord, ...]) -> str:
    return "(" + ", ".join(f"{x!r} {y!r}" for x, y in coords) + ")"


def _wkt(shape: object) -> str:
    if isinstance(shape, geo.Point):
        return f"POINT({shape.x!r} {shape.y!r})"
    if isinstance(shape, geo.LineString):
        return "LINESTRING" + _coords(shape.coords)
    assert isinstance(shape, geo.Polygon)  # noqa: S101 (the three shapes the lexer makes)
    return "POLYGON(" + ", ".join(_coords(r) for r in shape.rings) + ")"


def unparse_literal(lit: Literal) -> str:
    """A literal as query text."""
    v = lit.value
    match lit.kind:
        case LitKind.NULL:
            return "null"
        case LitKind.BOOLEAN:
            return "true" if v else "false"
        case LitKind.INTEGER:
            return str(v)
        case LitKind.FLOAT:
            return repr(v)
        case LitKind.STRING:
            assert isinstance(v, str)  # noqa: S101
            return "'" + v.replace("'", "''") + "'"
        case LitKind.DATETIME:
            assert isinstance(v, datetime)  # noqa: S101
            return v.astimezone(UTC).isoformat().replace("+00:00", "Z")
        case LitKind.DATE | LitKind.TIME:
            assert isinstance(v, (date, time))  # noqa: S101
            return v.isoformat()
        case LitKind.DURATION:
            assert isinstance(v, timedelta)  # noqa: S101
            return _duration(v)
        case _:
            return f"geography'{_wkt(v)}'"


def unparse_expr(expr: Expr) -> str:
    """An expression as query text (fully parenthesised)."""
    if isinstance(expr, Literal):
        return unparse_literal(expr)
    if isinstance(expr, Path):
        return "/".join(expr.segments)
    if isinstance(expr, Call):
        return f"{expr.name}({', '.join(unparse_expr(a) for a in expr.args)})"
    if isinstance(expr, Not):
        return f"(not ({unparse_expr(expr.operand)}))"
    assert isinstance(expr, BinOp)  # noqa: S101
    return f"({unparse_expr(expr.left)} {expr.op} {unparse_expr(expr.right)})"


def unparse_orderby(items: Iterable[OrderItem]) -> str:
    """``$orderby`` text."""
    return ",".join(f"{unparse_expr(i.expr)} {'desc' if i.descending else 'asc'}" for i in items)


def unparse_expand(items: Iterable[ExpandItem]) -> str:
    """``$expand`` text, nested options included."""
    out = []
    for item in items:
        inner = unparse_options(item.options, separator=";")
        out.append(f"{item.relation}({inner})" if inner else item.relation)
    return ",".join(out)


def option_pairs(options: QueryOptions) -> list[tuple[str, str]]:
    """(name, text) of every option that differs from its default, in a fixed order."""
    pairs: list[tuple[str, str]] = []
    if options.filter is not None:
        pairs.append(("$filter", unparse_expr(options.filter)))
    if options.orderby:
        pairs.append(("$orderby", unparse_orderby(options.orderby)))
    if options.top is not None:
        pairs.append(("$top", str(options.top)))
    if options.skip:
        pairs.append(("$skip", str(options.skip)))
    if options.count:
        pairs.append(("$count", "true"))
    if options.select is not None:
        pairs.append(("$select", ",".join(options.select)))
    if options.expand:
        pairs.append(("$expand", unparse_expand(options.expand)))
    return pairs


def unparse_options(options: QueryOptions, separator: str = "&") -> str:
    """Options as ``name=value`` text joined by ``separator`` (not URL-encoded)."""
    return separator.join(f"{name}={text}" for name, text in option_pairs(options))
