"""The syntax tree of SensorThings query options.

The parser (:mod:`api.sta.parser`) builds these from ``$filter``, ``$orderby``, ``$select`` and
``$expand`` text; the compiler (:mod:`api.sta.compile`) turns them into parameterised SQL. Nodes
are immutable and carry the character position they started at, so a compile error can still
point at the offending part of the query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class LitKind(Enum):
    """The type of a literal, as written."""

    NULL = "null"
    BOOLEAN = "boolean"
    INTEGER = "integer"
    FLOAT = "float"
    STRING = "string"
    DATETIME = "datetime"
    DATE = "date"
    TIME = "time"
    DURATION = "duration"
    GEOMETRY = "geometry"


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant: ``'text'``, ``42``, ``2024-01-01T00:00:00Z``, ``geography'POINT(…)'``."""

    kind: LitKind
    value: object  # None, bool, int, float, str, datetime, date, time, timedelta or geo.Shape
    pos: int


@dataclass(frozen=True, slots=True)
class Path:
    """A property path: ``name``, ``unitOfMeasurement/symbol``, ``Datastream/Thing/name``."""

    segments: tuple[str, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Call:
    """A function call: ``startswith(name, 'aq')``, ``geo.distance(location, …)``."""

    name: str
    args: tuple[Expr, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class BinOp:
    """A binary operator: comparison, logical or arithmetic (``eq``, ``and``, ``add`` …)."""

    op: str
    left: Expr
    right: Expr
    pos: int


@dataclass(frozen=True, slots=True)
class Not:
    """Logical negation."""

    operand: Expr
    pos: int


Expr = Literal | Path | Call | BinOp | Not

COMPARISONS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
LOGICAL = frozenset({"and", "or"})
ARITHMETIC = frozenset({"add", "sub", "mul", "div", "mod"})


@dataclass(frozen=True, slots=True)
class OrderItem:
    """One ``$orderby`` key."""

    expr: Expr
    descending: bool


@dataclass(frozen=True, slots=True)
class ExpandItem:
    """One ``$expand`` relation with the options that apply to the expanded entities."""

    relation: str
    options: QueryOptions
    pos: int


@dataclass(frozen=True, slots=True)
class QueryOptions:
    """The system query options of one request, or of one expanded relation.

    Attributes:
        filter: the ``$filter`` expression.
        orderby: ``$orderby`` keys, in order.
        top: ``$top`` (page size asked for), None when absent.
        skip: ``$skip``.
        count: ``$count=true``.
        select: ``$select`` names, None when absent (everything).
        expand: ``$expand`` relations.
        result_format: ``$resultFormat`` (``dataArray``), None when absent.
        skiptoken: ``$skiptoken`` (the server's own paging cursor), None when absent.
        raw: the options as the client wrote them (to rebuild links).
    """

    filter: Expr | None = None
    orderby: tuple[OrderItem, ...] = ()
    top: int | None = None
    skip: int = 0
    count: bool = False
    select: tuple[str, ...] | None = None
    expand: tuple[ExpandItem, ...] = ()
    result_format: str | None = None
    skiptoken: str | None = None
    raw: dict[str, str] = field(default_factory=dict, compare=False)
