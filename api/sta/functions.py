"""The ``$filter`` functions on text, times and numbers, and the table of all functions.

Each function is a builder taking the compiler (for its argument checks), the compiled
arguments and the call's position, returning a compiled value. Spatial functions live in
:mod:`api.sta.spatial`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from api.sta import spatial
from api.sta.entities import PType
from api.sta.values import Value, boolean, number, text

if TYPE_CHECKING:
    from collections.abc import Callable

    from api.sta.compile import ExprCompiler
    from api.sta.values import Compiled

    Builder = Callable[[ExprCompiler, list[Compiled], int], Compiled]


def _substringof(c: ExprCompiler, a: list[Compiled], pos: int) -> Compiled:
    needle, hay = c.text(a[0], "substringof"), c.text(a[1], "substringof")
    return boolean(f"(strpos({hay}, {needle}) > 0)", pos)


def _contains(c: ExprCompiler, a: list[Compiled], pos: int) -> Compiled:
    hay, needle = c.text(a[0], "contains"), c.text(a[1], "contains")
    return boolean(f"(strpos({hay}, {needle}) > 0)", pos)


def _startswith(c: ExprCompiler, a: list[Compiled], pos: int) -> Compiled:
    return boolean(f"starts_with({c.text(a[0], 'startswith')}, {c.text(a[1], 'startswith')})", pos)


def _endswith(c: ExprCompiler, a: list[Compiled], pos: int) -> Compiled:
    s, suffix = c.text(a[0], "endswith"), c.text(a[1], "endswith")
    return boolean(f"(right({s}, char_length({suffix})) = {suffix})", pos)


def _length(c: ExprCompiler, a: list[Compiled], pos: int) -> Compiled:
    return number(f"char_length({c.text(a[0], 'length')})", pos)


def _indexof(c: ExprCompiler, a: list[Compiled], pos: int) -> Compiled:
    return number(f"(strpos({c.text(a[0], 'indexof')}, {c.text(a[1], 'indexof')}) - 1)", pos)


def _substring(c: ExprCompiler, a: list[Compiled], pos: int) -> Compiled:
    s = c.text(a[0], "substring")
    start = f"(({c.number(a[1], 'substring')})::int + 1)"
    if len(a) == 3:
        return text(f"substr({s}, {start}, ({c.number(a[2], 'substring')})::int)", pos)
    return text(f"substr({s}, {start})", pos)


def _string_fn(sql_fn: str, name: str) -> Callable[[ExprCompiler, list[Compiled], int], Compiled]:
    def build(c: ExprCompiler, a: list[Compiled], pos: int) -> Compiled:
        return text(f"{sql_fn}({c.text(a[0], name)})", pos)

    return build


def _concat(c: ExprCompiler, a: list[Compiled], pos: int) -> Compiled:
    return text(f"({c.text(a[0], 'concat')} || {c.text(a[1], 'concat')})", pos)


_DATE_PARTS: Final = {
    "year": ("YEAR", (PType.DATE,)),
    "month": ("MONTH", (PType.DATE,)),
    "day": ("DAY", (PType.DATE,)),
    "hour": ("HOUR", (PType.TIME,)),
    "minute": ("MINUTE", (PType.TIME,)),
}


def _part(name: str) -> Callable[[ExprCompiler, list[Compiled], int], Compiled]:
    field, allowed = _DATE_PARTS[name]

    def build(c: ExprCompiler, a: list[Compiled], pos: int) -> Compiled:
        sql, _ = c.moment(a[0], name, allowed)
        # extract() is an exact numeric already; an integer cast would fail (a 500, not a 400)
        # on the infinite times mindatetime() and maxdatetime() give.
        return number(f"extract({field} FROM {sql})", pos)

    return build


def _second(c: ExprCompiler, a: list[Compiled], pos: int) -> Compiled:
    sql, _ = c.moment(a[0], "second", (PType.TIME,))
    return number(f"floor(extract(SECOND FROM {sql}))", pos)


def _fractional(c: ExprCompiler, a: list[Compiled], pos: int) -> Compiled:
    sql, _ = c.moment(a[0], "fractionalseconds", (PType.TIME,))
    return number(f"(extract(SECOND FROM {sql}) - floor(extract(SECOND FROM {sql})))", pos)


def _date(c: ExprCompiler, a: list[Compiled], pos: int) -> Compiled:
    sql, t = c.moment(a[0], "date", (PType.DATE,))
    return Value(sql if t is PType.DATE else f"({sql})::date", PType.DATE, pos)


def _time(c: ExprCompiler, a: list[Compiled], pos: int) -> Compiled:
    sql, t = c.moment(a[0], "time", (PType.TIME,))
    return Value(sql if t is PType.TIME else f"({sql})::time", PType.TIME, pos)


def _offset(c: ExprCompiler, a: list[Compiled], pos: int) -> Compiled:
    c.moment(a[0], "totaloffsetminutes", ())
    return number("0", pos)  # times are rendered in UTC


def _constant(sql: str, ptype: PType) -> Callable[[ExprCompiler, list[Compiled], int], Compiled]:
    def build(_c: ExprCompiler, _a: list[Compiled], pos: int) -> Compiled:
        return Value(sql, ptype, pos, not_null=True)

    return build


def _round(c: ExprCompiler, a: list[Compiled], pos: int) -> Compiled:
    # Halves round away from zero, as OData says; float8 round() would round them to even.
    return number(f"round(({c.number(a[0], 'round')})::numeric)", pos)


def _math(sql_fn: str, name: str) -> Callable[[ExprCompiler, list[Compiled], int], Compiled]:
    def build(c: ExprCompiler, a: list[Compiled], pos: int) -> Compiled:
        return number(f"{sql_fn}({c.number(a[0], name)})", pos)

    return build


FUNCTIONS: Final[dict[str, tuple[frozenset[int], Builder]]] = {
    "substringof": (frozenset({2}), _substringof),
    "contains": (frozenset({2}), _contains),
    "startswith": (frozenset({2}), _startswith),
    "endswith": (frozenset({2}), _endswith),
    "length": (frozenset({1}), _length),
    "indexof": (frozenset({2}), _indexof),
    "substring": (frozenset({2, 3}), _substring),
    "tolower": (frozenset({1}), _string_fn("lower", "tolower")),
    "toupper": (frozenset({1}), _string_fn("upper", "toupper")),
    "trim": (frozenset({1}), _string_fn("btrim", "trim")),
    "concat": (frozenset({2}), _concat),
    "year": (frozenset({1}), _part("year")),
    "month": (frozenset({1}), _part("month")),
    "day": (frozenset({1}), _part("day")),
    "hour": (frozenset({1}), _part("hour")),
    "minute": (frozenset({1}), _part("minute")),
    "second": (frozenset({1}), _second),
    "fractionalseconds": (frozenset({1}), _fractional),
    "date": (frozenset({1}), _date),
    "time": (frozenset({1}), _time),
    "totaloffsetminutes": (frozenset({1}), _offset),
    "now": (frozenset({0}), _constant("now()", PType.DATETIME)),
    "mindatetime": (frozenset({0}), _constant("'-infinity'::timestamptz", PType.DATETIME)),
    "maxdatetime": (frozenset({0}), _constant("'infinity'::timestamptz", PType.DATETIME)),
    "round": (frozenset({1}), _round),
    "floor": (frozenset({1}), _math("floor", "floor")),
    "ceiling": (frozenset({1}), _math("ceiling", "ceiling")),
    "geo.distance": (frozenset({2}), spatial.distance),
    "geo.length": (frozenset({1}), spatial.length),
    "geo.intersects": (frozenset({2}), spatial.relation("geo.intersects")),
    "st_equals": (frozenset({2}), spatial.relation("st_equals")),
    "st_disjoint": (frozenset({2}), spatial.relation("st_disjoint")),
    "st_touches": (frozenset({2}), spatial.relation("st_touches")),
    "st_within": (frozenset({2}), spatial.relation("st_within")),
    "st_overlaps": (frozenset({2}), spatial.relation("st_overlaps")),
    "st_crosses": (frozenset({2}), spatial.relation("st_crosses")),
    "st_intersects": (frozenset({2}), spatial.relation("st_intersects")),
    "st_contains": (frozenset({2}), spatial.relation("st_contains")),
    "st_relate": (frozenset({3}), spatial.relate),
}

FUNCTION_NAMES: Final = frozenset(FUNCTIONS)
"""Every function ``$filter`` accepts (docs/sensorthings.md lists them)."""
