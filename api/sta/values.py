"""What the ``$filter`` compiler produces: bound parameters, aliases and typed SQL values.

:mod:`api.sta.compile` builds these; :mod:`api.sta.functions` and :mod:`api.sta.spatial` combine
them. A :class:`Value` is SQL text with a type; points and shapes are kept apart because a point
is two SQL expressions (longitude, latitude) and a shape is a literal that becomes parameters
only once an operation knows what it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from api.sta.entities import PType
from api.sta.errors import StaQueryError

if TYPE_CHECKING:
    from collections.abc import Callable

    from api.sta import geo
    from api.sta.entities import Entity

NO_LITERAL: Final = object()
"""Marks a :class:`Value` that is not a literal."""


class Params:
    """Bound parameters of one statement, named ``p0``, ``p1`` …"""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def bind(self, value: object, sql_type: str) -> str:
        """Add a value; return its placeholder with an explicit cast."""
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"%({name})s::{sql_type}"


class Scope:
    """What the expressions of one statement share: parameters, aliases, entity views.

    Args:
        params: the statement's parameters.
        view: the parenthesised view SQL of an entity (visibility already applied).
    """

    def __init__(self, params: Params, view: Callable[[Entity], str]) -> None:
        self.params = params
        self.view = view
        self._aliases = 0

    def alias(self) -> str:
        """A fresh table alias (``e0``, ``e1`` …)."""
        name = f"e{self._aliases}"
        self._aliases += 1
        return name


@dataclass(frozen=True, slots=True)
class KeyRef:
    """The key columns (as SQL) behind an ``@iot.id`` value, so ``id eq '…'`` can compare
    the columns themselves and use their indexes."""

    entity: Entity
    cols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Value:
    """A compiled scalar expression.

    Attributes:
        sql: the SQL text.
        type: its type.
        pos: where it starts in the option text.
        end: for an interval (a Datastream's ``phenomenonTime``), the SQL of its end.
        key: for an ``@iot.id``, its key columns.
        column: the view column, when the value is exactly one column of the queried entity.
        not_null: the value is never NULL.
        literal: the Python value, when the expression is a literal.
    """

    sql: str
    type: PType
    pos: int
    end: str | None = None
    key: KeyRef | None = None
    column: str | None = None
    not_null: bool = False
    literal: object = NO_LITERAL


@dataclass(frozen=True, slots=True)
class GeoPoint:
    """A point: a location column pair or a ``POINT`` literal."""

    lon: str
    lat: str
    pos: int


@dataclass(frozen=True, slots=True)
class GeoShape:
    """A ``LINESTRING`` or ``POLYGON`` literal."""

    shape: geo.LineString | geo.Polygon
    pos: int


Compiled = Value | GeoPoint | GeoShape


@dataclass(frozen=True, slots=True)
class OrderKey:
    """One compiled ordering key.

    Attributes:
        sql: the expression.
        descending: sort direction.
        column: the view column when the key is one non-null column (keyset paging needs
            every key to be one).
        sql_type: that column's SQL type (to bind a keyset cursor value).
    """

    sql: str
    descending: bool
    column: str | None = None
    sql_type: str | None = None


def err(message: str, pos: int, token: str | None = None) -> StaQueryError:
    """A query error at ``pos``."""
    return StaQueryError(message, position=pos, token=token)


def base_type(t: PType) -> PType:
    """Intervals take part in arithmetic and functions as their start time."""
    return PType.DATETIME if t is PType.INTERVAL else t


def kind_of(v: Compiled) -> str:
    """A value's type name, for error messages."""
    if isinstance(v, Value):
        return v.type.value
    return "geometry"


def boolean(sql: str, pos: int) -> Value:
    """A boolean SQL value."""
    return Value(sql, PType.BOOLEAN, pos)


def number(sql: str, pos: int) -> Value:
    """A numeric SQL value."""
    return Value(sql, PType.NUMBER, pos)


def text(sql: str, pos: int) -> Value:
    """A text SQL value."""
    return Value(sql, PType.STRING, pos)
