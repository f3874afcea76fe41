"""Compile ``$filter`` and ``$orderby`` syntax trees into parameterised SQL.

Every value from the query becomes a bound parameter with an explicit cast
(``%(p3)s::timestamptz``); identifiers come only from :mod:`api.sta.entities` (view columns
declared there) and aliases this module makes up (``e0``, ``e1`` …). Expressions are type
checked while compiling, so ``name gt 3`` or ``startswith(result, 'a')`` is a 400 naming the
offending part, not a database error.

Where SQL could still fail on values (arithmetic overflow, a negative ``substring`` length) the
database raises a data exception, which the routes answer with a 400 too. Divisions by zero
yield NULL (the row does not match) rather than an error.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from api.sta import geo
from api.sta.ast import (
    ARITHMETIC,
    COMPARISONS,
    BinOp,
    Call,
    Expr,
    Literal,
    LitKind,
    Not,
    OrderItem,
    Path,
)
from api.sta.entities import ENTITIES, ID_NAMES, Entity, PType
from api.sta.functions import FUNCTIONS
from api.sta.lexer import tokenize
from api.sta.values import (
    NO_LITERAL,
    Compiled,
    GeoPoint,
    GeoShape,
    KeyRef,
    OrderKey,
    Params,
    Scope,
    Value,
    base_type,
    err,
    kind_of,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["ExprCompiler", "OrderKey", "Params", "Scope"]

_SQL_OPS: Final = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_FLIP: Final = {"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}


class ExprCompiler:
    """Compiles expressions over one entity, whose view row is ``alias``.

    Args:
        scope: the statement's shared state.
        entity: the entity the expressions are about.
        alias: the SQL alias of its view.
    """

    def __init__(self, scope: Scope, entity: Entity, alias: str) -> None:
        self.scope = scope
        self.entity = entity
        self.alias = alias

    # -- entry points ----------------------------------------------------------------------

    def condition(self, expr: Expr) -> str:
        """A ``$filter``: SQL of a boolean condition.

        Raises:
            StaQueryError: when the expression is not boolean or does not type check.
        """
        value = self.compile(expr)
        if not isinstance(value, Value) or value.type not in (PType.BOOLEAN, PType.NULL):
            raise err("$filter must be a condition (a comparison or a boolean function)", 0)
        return value.sql

    def order(self, items: Sequence[OrderItem]) -> list[OrderKey]:
        """``$orderby`` keys as SQL.

        Raises:
            StaQueryError: for a key that cannot be ordered on.
        """
        keys: list[OrderKey] = []
        for item in items:
            value = self.compile(item.expr)
            if isinstance(value, GeoShape):
                raise err("cannot order by a geometry literal", value.pos)
            if isinstance(value, GeoPoint):
                # Points order by longitude, then latitude: deterministic, if not meaningful.
                keys += [OrderKey(value.lon, item.descending), OrderKey(value.lat, item.descending)]
                continue
            if value.type is PType.NULL:
                continue
            if value.key is not None and value.key.entity is self.entity:
                # Ordering by @iot.id orders by the key columns (index order, not text order).
                keys += [self._column_key(c, item.descending) for c in self.entity.key]
                continue
            column = value.column if value.not_null else None
            keys.append(
                OrderKey(
                    value.sql,
                    item.descending,
                    column,
                    self.entity.columns.get(column) if column else None,
                )
            )
        return keys

    def _column_key(self, column: str, descending: bool) -> OrderKey:
        return OrderKey(f"{self.alias}.{column}", descending, column, self.entity.columns[column])

    def default_order(self) -> list[OrderKey]:
        """The entity's order when there is no ``$orderby``."""
        return [self._column_key(c, d) for c, d in self.entity.default_order]

    def tiebreak(self, keys: list[OrderKey]) -> list[OrderKey]:
        """``keys`` followed by the entity's key columns (skipping those already there), in the
        direction of the last key: the order becomes total, so pages never overlap or skip."""
        descending = keys[-1].descending if keys else False
        present = {k.sql for k in keys}
        extra = [
            self._column_key(c, descending)
            for c in self.entity.key
            if f"{self.alias}.{c}" not in present
        ]
        return keys + extra

    # -- expressions -----------------------------------------------------------------------

    def compile(self, expr: Expr) -> Compiled:
        """Compile any expression."""
        if isinstance(expr, Literal):
            return self.literal(expr)
        if isinstance(expr, Path):
            return self.path(self.entity, self.alias, expr.segments, expr.pos, top=True)
        if isinstance(expr, Not):
            inner = self.boolean(expr.operand)
            return Value(f"(NOT {inner.sql})", PType.BOOLEAN, expr.pos)
        if isinstance(expr, BinOp):
            if expr.op in ("and", "or"):
                left, right = self.boolean(expr.left), self.boolean(expr.right)
                return Value(f"({left.sql} {expr.op.upper()} {right.sql})", PType.BOOLEAN, expr.pos)
            if expr.op in COMPARISONS:
                return self.comparison(expr)
            if expr.op in ARITHMETIC:
                return self.arithmetic(expr)
            raise err(f"unknown operator {expr.op!r}", expr.pos, expr.op)
        return self.call(expr)

    def boolean(self, expr: Expr) -> Value:
        """Compile an expression that must be a condition.

        Raises:
            StaQueryError: when it is not boolean.
        """
        value = self.compile(expr)
        if not isinstance(value, Value) or value.type not in (PType.BOOLEAN, PType.NULL):
            raise err("expected a condition", value.pos, kind_of(value))
        if value.type is PType.NULL:
            return Value("NULL::boolean", PType.BOOLEAN, value.pos)
        return value

    def literal(self, lit: Literal) -> Compiled:
        """A literal as a bound parameter (points become two parameters)."""
        bind = self.scope.params.bind
        kind, v = lit.kind, lit.value
        if kind is LitKind.NULL:
            return Value("NULL", PType.NULL, lit.pos, literal=None)
        if kind is LitKind.GEOMETRY:
            if isinstance(v, geo.Point):
                return GeoPoint(bind(v.x, "float8"), bind(v.y, "float8"), lit.pos)
            assert isinstance(v, (geo.LineString, geo.Polygon))  # noqa: S101 (lexer guarantees)
            return GeoShape(v, lit.pos)
        sql_type, ptype = _LITERAL_TYPES[kind]
        return Value(bind(v, sql_type), ptype, lit.pos, not_null=True, literal=v)

    # -- paths -------------------------------------------------------------------------------

    def path(
        self, entity: Entity, alias: str, segments: tuple[str, ...], pos: int, *, top: bool
    ) -> Compiled:
        """A property path of ``entity`` (row ``alias``), through to-one relations.

        Args:
            entity: the entity the path starts from.
            alias: the SQL alias of its view row.
            segments: the path's names.
            pos: where the path starts in the option text.
            top: the path starts at the queried entity (its plain columns can page by key).

        Raises:
            StaQueryError: for an unknown name, a to-many relation, a relation used as a value.
        """
        name, rest = segments[0], segments[1:]
        if name in ID_NAMES:
            if rest:
                raise err("@iot.id has no sub-properties", pos, "/".join(segments))
            cols = tuple(f"{alias}.{c}" for c in entity.key)
            column = entity.key[0] if top and len(entity.key) == 1 else None
            return Value(
                entity.id_sql(list(cols)),
                PType.STRING,
                pos,
                key=KeyRef(entity, cols),
                column=column,
                not_null=True,
            )
        prop = entity.props.get(name)
        if prop is not None:
            return self.property(entity, alias, prop, rest, pos, top=top)
        rel = entity.relations.get(name)
        if rel is None:
            raise err(f"{entity.name} has no property or relation {name!r}", pos, name)
        if rel.many:
            raise err(
                f"cannot filter through the to-many relation {name!r}; query "
                f"{name}?$filter=… from the other side instead",
                pos,
                name,
            )
        if not rest:
            raise err(f"{name!r} is an entity, not a value: name one of its properties", pos, name)
        target = ENTITIES[rel.target]
        if len(rest) == 1 and rest[0] in ID_NAMES:
            # The related id is made of our own foreign-key columns: no subquery needed.
            by_target = {t: s for s, t in rel.pairs}
            cols = tuple(f"{alias}.{by_target[k]}" for k in target.key)
            return Value(
                target.id_sql(list(cols)),
                PType.STRING,
                pos,
                key=KeyRef(target, cols),
                not_null=True,
            )
        inner_alias = self.scope.alias()
        inner = self.path(target, inner_alias, rest, pos, top=False)
        join = " AND ".join(f"{inner_alias}.{t} = {alias}.{s}" for s, t in rel.pairs)
        view = self.scope.view(target)

        def wrap(sql: str) -> str:
            return f"(SELECT {sql} FROM {view} AS {inner_alias} WHERE {join} LIMIT 1)"

        if isinstance(inner, GeoPoint):
            return GeoPoint(wrap(inner.lon), wrap(inner.lat), pos)
        if isinstance(inner, GeoShape):  # pragma: no cover (paths never yield literals)
            return inner
        return Value(
            wrap(inner.sql),
            inner.type,
            pos,
            end=wrap(inner.end) if inner.end else None,
        )

    def property(
        self,
        entity: Entity,
        alias: str,
        prop: Any,
        rest: tuple[str, ...],
        pos: int,
        *,
        top: bool,
    ) -> Compiled:
        """One property of ``entity`` and what follows it in the path (JSON members, an
        object's members).

        Raises:
            StaQueryError: for sub-paths a property does not have.
        """
        full = "/".join((prop.name, *rest))
        if prop.type is PType.GEOMETRY:
            if rest:
                raise err(f"{prop.name} has no sub-properties", pos, full)
            return GeoPoint(f"{alias}.lon", f"{alias}.lat", pos)
        if prop.type is PType.INTERVAL:
            if rest:
                raise err(f"{prop.name} has no sub-properties", pos, full)
            start, end = prop.columns
            return Value(f"{alias}.{start}", PType.INTERVAL, pos, end=f"{alias}.{end}")
        if prop.type is PType.OBJECT:
            if len(rest) != 1 or rest[0] not in prop.sub:
                members = ", ".join(f"{prop.name}/{m}" for m in prop.sub)
                raise err(f"use one of {members}", pos, full)
            column = prop.sub[rest[0]]
            ctype = entity.columns[column]
            ptype = PType.DATETIME if ctype == "timestamptz" else PType.STRING
            return Value(f"{alias}.{column}", ptype, pos, column=column if top else None)
        column = prop.columns[0]
        if prop.type is PType.JSON:
            if rest:
                path = self.scope.params.bind(list(rest), "text[]")
                return Value(f"({alias}.{column} #> {path})", PType.JSON, pos)
            return Value(f"{alias}.{column}", PType.JSON, pos, not_null=True)
        if rest:
            raise err(f"{prop.name} has no sub-properties", pos, full)
        return Value(
            f"{alias}.{column}",
            prop.type,
            pos,
            column=column if top else None,
            not_null=prop.not_null,
        )

    # -- operators ---------------------------------------------------------------------------

    def comparison(self, expr: BinOp) -> Value:
        """A comparison, type checked; ``@iot.id`` against a literal compares key columns.

        Raises:
            StaQueryError: when the operands cannot be compared.
        """
        op = expr.op
        left, right = self.compile(expr.left), self.compile(expr.right)
        if isinstance(left, (GeoPoint, GeoShape)) or isinstance(right, (GeoPoint, GeoShape)):
            return self._geo_null_check(op, left, right, expr.pos)
        if right.type is PType.NULL or left.type is PType.NULL:
            other = left if right.type is PType.NULL else right
            if op not in ("eq", "ne"):
                return Value("NULL::boolean", PType.BOOLEAN, expr.pos)
            test = "IS NULL" if op == "eq" else "IS NOT NULL"
            if other.type is PType.NULL:
                return Value("true" if op == "eq" else "false", PType.BOOLEAN, expr.pos)
            return Value(f"({other.sql} {test})", PType.BOOLEAN, expr.pos)
        if left.key is None and right.key is not None:
            left, right, op = right, left, _FLIP[op]
        if left.key is not None and right.literal is not NO_LITERAL and op in ("eq", "ne"):
            return self._id_equals(left.key, right, op, expr.pos)
        left, right = self._unify(left, right, expr.pos)
        sql_op = _SQL_OPS[op]
        if left.type is PType.INTERVAL:
            return Value(self._interval_compare(left, op, right), PType.BOOLEAN, expr.pos)
        if right.type is PType.INTERVAL:
            flipped = self._interval_compare(right, _FLIP[op], left)
            return Value(flipped, PType.BOOLEAN, expr.pos)
        return Value(f"({left.sql} {sql_op} {right.sql})", PType.BOOLEAN, expr.pos)

    def _geo_null_check(self, op: str, left: Compiled, right: Compiled, pos: int) -> Value:
        point = left if isinstance(left, GeoPoint) else right
        other = right if point is left else left
        if (
            isinstance(point, GeoPoint)
            and isinstance(other, Value)
            and other.type is PType.NULL
            and op in ("eq", "ne")
        ):
            test = "IS NULL" if op == "eq" else "IS NOT NULL"
            return Value(f"({point.lon} {test})", PType.BOOLEAN, pos)
        raise err(
            "geometries are compared with st_equals, geo.intersects, st_within or geo.distance",
            pos,
            op,
        )

    def _id_equals(self, key: KeyRef, literal: Value, op: str, pos: int) -> Value:
        values = key.entity.decode(literal.literal) if isinstance(literal.literal, str) else None
        if values is None:
            return Value("false" if op == "eq" else "true", PType.BOOLEAN, pos)
        bind = self.scope.params.bind
        parts = [
            f"{col} = {bind(v, key.entity.columns[name])}"
            for col, name, v in zip(key.cols, key.entity.key, values, strict=True)
        ]
        test = "(" + " AND ".join(parts) + ")"
        return Value(test if op == "eq" else f"(NOT {test})", PType.BOOLEAN, pos)

    def _interval_compare(self, interval: Value, op: str, other: Value) -> str:
        # An interval is after a time when it starts after it, before when it ends before it,
        # and equal when it starts and ends at that time.
        start, end = interval.sql, interval.end or interval.sql
        o = other.sql
        if op in ("gt", "ge"):
            return f"({start} {_SQL_OPS[op]} {o})"
        if op in ("lt", "le"):
            return f"({end} {_SQL_OPS[op]} {o})"
        same = f"({start} = {o} AND {end} = {o})"
        return same if op == "eq" else f"(NOT {same})"

    def _unify(self, left: Value, right: Value, pos: int) -> tuple[Value, Value]:
        """Make two operands comparable, or refuse."""
        lt, rt = base_type(left.type), base_type(right.type)
        if lt is rt and lt is not PType.JSON:
            return left, right
        if lt is PType.DATETIME and rt is PType.STRING:
            return left, self._as_datetime(right)
        if rt is PType.DATETIME and lt is PType.STRING:
            return self._as_datetime(left), right
        if PType.JSON in (lt, rt):
            return self._json_pair(left, right)
        raise err(f"cannot compare {left.type.value} with {right.type.value}", pos, "compare")

    def _as_datetime(self, value: Value) -> Value:
        if not isinstance(value.literal, str):
            raise err("cannot compare a time with text", value.pos)
        tokens = tokenize(value.literal)
        if len(tokens) != 2 or not isinstance(tokens[0].value, datetime):
            raise err("not a date-time with a time zone", value.pos, value.literal)
        sql = self.scope.params.bind(tokens[0].value, "timestamptz")
        return Value(sql, PType.DATETIME, value.pos, not_null=True, literal=tokens[0].value)

    def _json_pair(self, left: Value, right: Value) -> tuple[Value, Value]:
        """JSON properties compare as text with text and as JSON with numbers and booleans
        (``jsonb`` compares across types without errors)."""

        def side(v: Value, other: Value) -> Value:
            if v.type is not PType.JSON:
                if v.type is PType.STRING:
                    return v
                if v.type in (PType.NUMBER, PType.BOOLEAN):
                    return Value(f"to_jsonb({v.sql})", PType.JSON, v.pos)
                raise err(f"cannot compare a JSON property with {v.type.value}", v.pos)
            if other.type is PType.STRING:
                return Value(f"({v.sql} #>> '{{}}')", PType.STRING, v.pos)
            return v

        return side(left, right), side(right, left)

    def arithmetic(self, expr: BinOp) -> Value:
        """``add``, ``sub``, ``mul``, ``div``, ``mod`` on numbers; time and duration sums.

        Raises:
            StaQueryError: for operand types that do not combine.
        """
        left, right = self.compile(expr.left), self.compile(expr.right)
        if not isinstance(left, Value) or not isinstance(right, Value):
            raise err(f"{expr.op} needs numbers, times or durations", expr.pos, expr.op)
        lt, rt = base_type(left.type), base_type(right.type)
        op = expr.op
        if lt is PType.NUMBER and rt is PType.NUMBER:
            if op == "div":
                return Value(f"({left.sql} / NULLIF({right.sql}, 0))", PType.NUMBER, expr.pos)
            if op == "mod":
                sql = f"mod(({left.sql})::numeric, NULLIF(({right.sql})::numeric, 0))"
                return Value(sql, PType.NUMBER, expr.pos)
            sym = {"add": "+", "sub": "-", "mul": "*"}[op]
            return Value(f"({left.sql} {sym} {right.sql})", PType.NUMBER, expr.pos)
        result = _TIME_ARITHMETIC.get((lt, op, rt))
        if result is None:
            raise err(f"cannot {op} {left.type.value} and {right.type.value}", expr.pos, expr.op)
        sym = "+" if op == "add" else "-"
        return Value(f"({left.sql} {sym} {right.sql})", result, expr.pos)

    # -- functions ---------------------------------------------------------------------------

    def call(self, expr: Call) -> Compiled:
        """A function call, looked up in :data:`api.sta.functions.FUNCTIONS`.

        Raises:
            StaQueryError: for an unknown function or a wrong number of arguments.
        """
        spec = FUNCTIONS.get(expr.name)
        if spec is None:
            raise err(f"unknown function {expr.name}()", expr.pos, expr.name)
        arity, build = spec
        if len(expr.args) not in arity:
            counts = " or ".join(str(n) for n in sorted(arity))
            raise err(f"{expr.name}() takes {counts} argument(s)", expr.pos, expr.name)
        args = [self.compile(a) for a in expr.args]
        return build(self, args, expr.pos)

    def text(self, v: Compiled, fn: str) -> str:
        """SQL of a text argument of ``fn`` (JSON members are read as text).

        Raises:
            StaQueryError: when the argument is not text.
        """
        if isinstance(v, Value):
            if v.type is PType.STRING:
                return v.sql
            if v.type is PType.JSON:
                return f"({v.sql} #>> '{{}}')"
            if v.type is PType.NULL:
                return "NULL::text"
        raise err(f"{fn}() expects text", v.pos, kind_of(v))

    def number(self, v: Compiled, fn: str) -> str:
        """SQL of a numeric argument of ``fn``.

        Raises:
            StaQueryError: when the argument is not a number.
        """
        if isinstance(v, Value) and v.type in (PType.NUMBER, PType.NULL):
            return v.sql if v.type is PType.NUMBER else "NULL::float8"
        raise err(f"{fn}() expects a number", v.pos, kind_of(v))

    def moment(self, v: Compiled, fn: str, allowed: tuple[PType, ...]) -> tuple[str, PType]:
        """SQL of a date-time argument of ``fn`` in UTC, or of a date/time in ``allowed``.

        Raises:
            StaQueryError: when the argument is not one of those.
        """
        if isinstance(v, Value):
            t = base_type(v.type)
            if t is PType.DATETIME:
                return f"({v.sql} AT TIME ZONE 'UTC')", t
            if t in allowed:
                return v.sql, t
        raise err(f"{fn}() expects a date-time", v.pos, kind_of(v))

    def geometry(self, v: Compiled, fn: str) -> GeoPoint | GeoShape:
        """A geometry argument of ``fn``: a location column or a ``geography`` literal.

        Raises:
            StaQueryError: when the argument is not a geometry.
        """
        if isinstance(v, (GeoPoint, GeoShape)):
            return v
        raise err(f"{fn}() expects a location or a geography'…' literal", v.pos, kind_of(v))


_LITERAL_TYPES: Final = {
    LitKind.BOOLEAN: ("boolean", PType.BOOLEAN),
    LitKind.INTEGER: ("bigint", PType.NUMBER),
    LitKind.FLOAT: ("float8", PType.NUMBER),
    LitKind.STRING: ("text", PType.STRING),
    LitKind.DATETIME: ("timestamptz", PType.DATETIME),
    LitKind.DATE: ("date", PType.DATE),
    LitKind.TIME: ("time", PType.TIME),
    LitKind.DURATION: ("interval", PType.DURATION),
}

_TIME_ARITHMETIC: Final = {
    (PType.DATETIME, "add", PType.DURATION): PType.DATETIME,
    (PType.DURATION, "add", PType.DATETIME): PType.DATETIME,
    (PType.DATETIME, "sub", PType.DURATION): PType.DATETIME,
    (PType.DATETIME, "sub", PType.DATETIME): PType.DURATION,
    (PType.DURATION, "add", PType.DURATION): PType.DURATION,
    (PType.DURATION, "sub", PType.DURATION): PType.DURATION,
}
