"""The statements of one SensorThings request: context, targets, and plans over entity views.

A :class:`Target` is where a resource path leads: an entity type under equality constraints on
its view columns, plus the entities the path went through without reading them. A :class:`Plan`
assembles one statement over the target's view: constraints, ``$filter``, ordering.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from api.sta import serialize
from api.sta.compile import ExprCompiler, OrderKey, Params, Scope
from api.sta.errors import StaNotFound, StaQueryError
from api.sta.units import catalogue_params
from store import sta

if TYPE_CHECKING:
    from collections.abc import Sequence

    import psycopg

    from api.sta.ast import ExpandItem, QueryOptions
    from api.sta.entities import Entity, Relation
    from store.visibility import Visibility


@dataclass(frozen=True, slots=True)
class Limits:
    """Server-side limits of the service (docs/sensorthings.md).

    Attributes:
        default_top: page size without ``$top``.
        max_top: largest page (``$top`` above it is capped, with a nextLink).
        max_skip: largest ``$skip``.
        max_expand_rows: entities one response may hold, expansions included.
        timeout_ms: statement timeout of every query of a request.
    """

    default_top: int = 100
    max_top: int = 5000
    max_skip: int = 100_000
    max_expand_rows: int = 50_000
    timeout_ms: int = 15_000


@dataclass
class Context:
    """One request: the connection, who calls, where the service lives.

    Attributes:
        conn: a connection inside :func:`store.sta.read_snapshot`.
        vis: the caller's visibility.
        base: the service root URL (``http://host/sta/v1.1``), no trailing slash.
        url: this request's URL without its query string.
        query: this request's query parameters, in order (to rebuild nextLinks).
        limits: the limits.
        budget: entities in the response so far (``$expand`` stops at the limit).
    """

    conn: psycopg.AsyncConnection[Any]
    vis: Visibility
    base: str
    url: str
    query: list[tuple[str, str]]
    limits: Limits = field(default_factory=Limits)
    budget: int = 0

    def view(self, entity: Entity) -> str:
        """The entity's view for this caller."""
        return sta.view(entity.name, self.vis)

    def statement_params(self, params: Params) -> dict[str, Any]:
        """The statement's own parameters plus visibility and catalogue ones."""
        return {**self.vis.params(), **CATALOGUE, **params.values}


CATALOGUE: Final = catalogue_params()


@dataclass(frozen=True, slots=True)
class Target:
    """Where the path leads: an entity (set) under equality constraints on view columns.

    Attributes:
        entity: the entity type.
        constraints: (view column, value) pairs the rows must match.
        single: one entity (addressed by id, or a to-one relation) or a collection.
        pending: entities the path went through without reading them, root first. Their
            existence is part of the final statement (``EXISTS``), and checked on their own
            only when that statement finds nothing, to tell a 404 from an empty collection.
    """

    entity: Entity
    constraints: tuple[tuple[str, Any], ...]
    single: bool
    pending: tuple[Target, ...] = ()


def missing(target: Target) -> StaNotFound:
    """404 for an addressed entity that is not there, naming its device if it has one."""
    keys = dict(target.constraints)
    entity = target.entity
    if not all(c in keys for c in entity.key):
        return StaNotFound(entity.name, "?")
    values = tuple(keys[c] for c in entity.key)
    device = values[entity.device_key] if entity.device_key is not None else None
    return StaNotFound(entity.name, entity.encode(values), device=device)


async def verify(ctx: Context, target: Target) -> None:
    """Raise the 404 of the first entity on the path to ``target`` that is not there."""
    for parent in target.pending:
        plan = Plan(ctx, parent.entity)
        plan.constrain(dataclasses.replace(parent, pending=()))
        if not await plan.rows(f"SELECT 1 AS found {plan.from_where()} LIMIT 1"):
            raise missing(parent)


@dataclass
class Plan:
    """A statement over one entity view being assembled."""

    ctx: Context
    entity: Entity
    params: Params = field(default_factory=Params)
    where: list[str] = field(default_factory=list)
    order: list[OrderKey] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.scope = Scope(self.params, self.ctx.view)
        self.alias = self.scope.alias()
        self.compiler = ExprCompiler(self.scope, self.entity, self.alias)

    def constrain(self, target: Target) -> None:
        """Rows of ``target``: its equality constraints, and its unread parents' existence."""
        self.where += equalities(self.params, target.entity, self.alias, target.constraints)
        for parent in target.pending:
            alias = self.scope.alias()
            conds = equalities(self.params, parent.entity, alias, parent.constraints)
            self.where.append(
                f"EXISTS (SELECT 1 FROM {self.ctx.view(parent.entity)} AS {alias}"
                f" WHERE {' AND '.join(conds) or 'true'})"
            )

    def filter(self, options: QueryOptions) -> None:
        """Add the ``$filter`` condition.

        Raises:
            StaQueryError: located in ``$filter``.
        """
        if options.filter is not None:
            try:
                self.where.append(self.compiler.condition(options.filter))
            except StaQueryError as err:
                raise err.located("$filter") from None

    def ordering(self, options: QueryOptions) -> None:
        """Set the order: ``$orderby`` or the entity's default, then the key as tiebreak.

        Raises:
            StaQueryError: located in ``$orderby``.
        """
        try:
            keys = self.compiler.order(options.orderby) if options.orderby else []
        except StaQueryError as err:
            raise err.located("$orderby") from None
        self.order = self.compiler.tiebreak(keys or self.compiler.default_order())

    def keyset_ready(self) -> bool:
        """Every ordering key is a non-null column: pages can continue by key."""
        return all(k.column is not None for k in self.order)

    def select_list(self, columns: set[str]) -> str:
        """The SQL select list of ``columns`` (in the entity's column order)."""
        ordered = [c for c in self.entity.columns if c in columns]
        return ", ".join(f"{self.alias}.{c} AS {c}" for c in ordered)

    def from_where(self, extra: Sequence[str] = ()) -> str:
        """``FROM <view> AS alias WHERE …`` with the plan's conditions and ``extra``."""
        conds = [*self.where, *extra]
        where = " AND ".join(conds) if conds else "true"
        return f"FROM {self.ctx.view(self.entity)} AS {self.alias} WHERE {where}"

    def order_by(self) -> str:
        """The ORDER BY list."""
        return ", ".join(f"{k.sql} {'DESC' if k.descending else 'ASC'}" for k in self.order)

    async def rows(self, sql: str) -> list[dict[str, Any]]:
        """Run ``sql`` with the plan's parameters; rows as dictionaries."""
        return await sta.fetch(self.ctx.conn, sql, self.ctx.statement_params(self.params))

    async def count(self) -> int:
        """How many rows match the plan's conditions."""
        sql = f"SELECT count(*) {self.from_where()}"
        n = await sta.fetch_value(self.ctx.conn, sql, self.ctx.statement_params(self.params))
        return int(n or 0)


def equalities(
    params: Params, entity: Entity, alias: str, constraints: Sequence[tuple[str, Any]]
) -> list[str]:
    """SQL conditions ``alias.column = <bound value>`` for each constraint."""
    return [f"{alias}.{c} = {params.bind(v, entity.columns[c])}" for c, v in constraints]


async def single_row(ctx: Context, target: Target, columns: set[str]) -> dict[str, Any]:
    """The one row of a single target, with ``columns`` (and its key).

    Raises:
        StaNotFound: when it, or an entity on the path to it, is not there or is hidden.
    """
    plan = Plan(ctx, target.entity)
    plan.constrain(target)
    cols = plan.select_list(columns | set(target.entity.key))
    rows = await plan.rows(f"SELECT {cols} {plan.from_where()} LIMIT 1")
    if not rows:
        await verify(ctx, target)
        raise missing(target)
    return rows[0]


def needed(entity: Entity, sel: serialize.Selection, expand: Sequence[ExpandItem]) -> set[str]:
    """View columns to select: the key, what the selection renders, expansions' join keys."""
    columns = set(entity.key) | sel.columns()
    for item in expand:
        rel = relation_of(entity, item)
        columns |= {s for s, _ in rel.pairs}
    return columns


def relation_of(entity: Entity, item: ExpandItem) -> Relation:
    """The relation an ``$expand`` item names.

    Raises:
        StaQueryError: when ``entity`` has no such relation.
    """
    rel = entity.relations.get(item.relation)
    if rel is None:
        raise StaQueryError(
            f"{entity.name} has no relation {item.relation!r}",
            option="$expand",
            position=item.pos,
            token=item.relation,
        )
    return rel


def page_size(ctx: Context, options: QueryOptions) -> int:
    """Rows per page: ``$top``, or the default, at most the cap."""
    top = options.top if options.top is not None else ctx.limits.default_top
    return min(top, ctx.limits.max_top)


def check_skip(ctx: Context, skip: int) -> None:
    """Refuse a ``$skip`` over the cap.

    Raises:
        StaQueryError: naming ``$skip``.
    """
    if skip > ctx.limits.max_skip:
        raise StaQueryError(
            f"may be at most {ctx.limits.max_skip}; narrow the collection with $filter or "
            "follow @iot.nextLink (which pages by key when it can)",
            option="$skip",
            token=str(skip),
        )


def self_link(ctx: Context, entity: Entity, row: dict[str, Any]) -> str:
    """The ``@iot.selfLink`` of a row of ``entity``."""
    return serialize.entity_link(ctx.base, entity, entity.id_of(row))
