"""Answer one SensorThings GET: resolve the path, build statements, page, expand, render.

Resolution walks the path one segment at a time. An entity addressed by id is looked up (404
when missing or hidden); a navigation from it becomes equality constraints on the related
entity's view columns, taken from the row just read. The final collection, entity, property or
``$ref`` is then one statement: ``SELECT … FROM (<view>) AS e0 WHERE <constraints> AND
<$filter> ORDER BY … LIMIT``, so filters and paging on Observations run in PostgreSQL against
the readings index, never in Python.

Paging: ``$top`` is the page size (capped at :attr:`Limits.max_top`); more rows than that give
an ``@iot.nextLink``. When every ordering key is a non-null column (the default orders, and
``$orderby`` on plain properties) the link carries a ``$skiptoken`` with the last row's key
values (keyset paging: each page costs the same however deep); otherwise it carries ``$skip``,
capped at :attr:`Limits.max_skip`.

``$expand`` runs one statement per expanded relation and level for the whole page:
``unnest(parent keys) CROSS JOIN LATERAL (SELECT … LIMIT n)`` applies the expansion's own
``$filter``/``$orderby``/``$top`` per parent.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlencode

from api.sta import serialize
from api.sta.compile import ExprCompiler, OrderKey, Params, Scope
from api.sta.entities import BY_PLURAL, ENTITIES, ID_NAMES, Entity, Prop, Relation, iso
from api.sta.errors import StaNotFound, StaQueryError
from api.sta.options import option_pairs
from api.sta.resource import Segment, parse_path
from api.sta.units import catalogue_params
from store import sta

if TYPE_CHECKING:
    from collections.abc import Sequence

    import psycopg

    from api.sta.ast import ExpandItem, QueryOptions
    from store.visibility import Visibility

CONFORMANCE: Final = (
    "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/data-array/data-array",
)
"""The conformance classes served: reading (Sensing Core), the Filtering Extension and the
dataArray result format. Create/update/delete, batch requests, MultiDatastreams and MQTT are
not implemented, so they are not listed."""

_LINK_SAFE: Final = "$',()/:@;=*!"  # kept readable in nextLinks


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


@dataclass(frozen=True, slots=True)
class Reply:
    """What the route sends: a JSON document, or text for ``$value``."""

    body: Any
    media_type: str = "application/json"
    status: int = 200


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
        return {**self.vis.params(), **_CATALOGUE, **params.values}


_CATALOGUE: Final = catalogue_params()


@dataclass(frozen=True, slots=True)
class _Target:
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
    pending: tuple[_Target, ...] = ()


# -- entry point -------------------------------------------------------------------------------


def service_root(base: str) -> dict[str, Any]:
    """The service root document: entity sets and server settings."""
    return {
        "value": [{"name": e.plural, "url": f"{base}/{e.plural}"} for e in ENTITIES.values()],
        "serverSettings": {"conformance": list(CONFORMANCE)},
    }


async def answer(ctx: Context, path: str, options: QueryOptions) -> Reply:
    """Answer a GET of ``path`` (below the service root) with ``options``.

    Raises:
        StaQueryError: a malformed path or option (400).
        StaNotFound: an entity, relation or property that does not exist or is hidden (404).
    """
    segments = parse_path(path)
    if not segments:
        return Reply(service_root(ctx.base))
    first = segments[0]
    entity = BY_PLURAL.get(first.name)
    if entity is None:
        raise StaNotFound("entity set", first.name)
    target = _Target(entity, (), single=False)
    if first.key is not None:
        target = _keyed(entity, first.key, ())
    prop: Prop | None = None
    ident_prop = False
    ref = value = False
    for seg in segments[1:]:
        if value or ref:
            raise StaQueryError("nothing may follow $value or $ref", option="path", token=seg.name)
        if seg.name == "$ref":
            if prop is not None or ident_prop or seg.key is not None:
                raise StaQueryError("$ref follows an entity or a collection", option="path")
            ref = True
            continue
        if seg.name == "$value":
            if prop is None and not ident_prop:
                raise StaQueryError("$value follows a property", option="path", token=seg.name)
            value = True
            continue
        if prop is not None or ident_prop:
            raise StaNotFound("property", seg.name)
        if not target.single:
            raise StaQueryError(
                "a collection has no properties or relations; address one entity by its id,"
                " e.g. Things('aq-1')/Datastreams",
                option="path",
                position=seg.pos,
                token=seg.name,
            )
        rel = target.entity.relations.get(seg.name)
        if rel is not None:
            target = await _navigate(ctx, target, rel, seg)
            continue
        if seg.key is not None:
            raise StaNotFound(f"relation of {target.entity.name}", seg.name)
        if seg.name in ID_NAMES:
            ident_prop = True
            continue
        prop = target.entity.props.get(seg.name)
        if prop is None:
            raise StaNotFound(f"property or relation of {target.entity.name}", seg.name)
    if prop is not None or ident_prop:
        return await _property(ctx, target, prop, raw=value)
    if ref:
        return await _refs(ctx, target, options)
    if target.single:
        return await _entity(ctx, target, options)
    return await _collection(ctx, target, options)


def _keyed(entity: Entity, key: str, constraints: tuple[tuple[str, Any], ...]) -> _Target:
    values = entity.decode(key)
    if values is None:
        raise StaNotFound(entity.name, key)
    return _Target(entity, (*constraints, *zip(entity.key, values, strict=True)), single=True)


def _missing(target: _Target) -> StaNotFound:
    """404 for an addressed entity that is not there, naming its device if it has one."""
    keys = dict(target.constraints)
    entity = target.entity
    if not all(c in keys for c in entity.key):
        return StaNotFound(entity.name, "?")
    values = tuple(keys[c] for c in entity.key)
    device = values[entity.device_key] if entity.device_key is not None else None
    return StaNotFound(entity.name, entity.encode(values), device=device)


async def _navigate(ctx: Context, source: _Target, rel: Relation, seg: Segment) -> _Target:
    known = dict(source.constraints)
    if all(s in known for s, _ in rel.pairs):
        # The join values are in the source's id: no need to read it now (one round trip
        # less per request); its existence is checked with the final statement.
        constraints = tuple((t, known[s]) for s, t in rel.pairs)
        pending = (*source.pending, source)
    else:
        row = await _single_row(ctx, source, {s for s, _ in rel.pairs})
        constraints = tuple((t, row[s]) for s, t in rel.pairs)
        pending = ()
    target = ENTITIES[rel.target]
    if rel.many:
        if seg.key is not None:
            return dataclasses.replace(_keyed(target, seg.key, constraints), pending=pending)
        return _Target(target, constraints, single=False, pending=pending)
    if seg.key is not None:
        raise StaQueryError(f"{rel.name} is one entity: it takes no id", option="path")
    if any(v is None for _, v in constraints):
        raise StaNotFound(rel.name, f"of {source.entity.name}")
    return _Target(target, constraints, single=True, pending=pending)


async def _verify(ctx: Context, target: _Target) -> None:
    """Raise the 404 of the first entity on the path to ``target`` that is not there."""
    for parent in target.pending:
        plan = _Plan(ctx, parent.entity)
        plan.constrain(dataclasses.replace(parent, pending=()))
        if not await plan.rows(f"SELECT 1 AS found {plan.from_where()} LIMIT 1"):
            raise _missing(parent)


# -- statements ----------------------------------------------------------------------------------


@dataclass
class _Plan:
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

    def constrain(self, target: _Target) -> None:
        """Rows of ``target``: its equality constraints, and its unread parents' existence."""
        self.where += _equalities(self.params, target.entity, self.alias, target.constraints)
        for parent in target.pending:
            alias = self.scope.alias()
            conds = _equalities(self.params, parent.entity, alias, parent.constraints)
            self.where.append(
                f"EXISTS (SELECT 1 FROM {self.ctx.view(parent.entity)} AS {alias}"
                f" WHERE {' AND '.join(conds) or 'true'})"
            )

    def filter(self, options: QueryOptions) -> None:
        if options.filter is not None:
            try:
                self.where.append(self.compiler.condition(options.filter))
            except StaQueryError as err:
                raise err.located("$filter") from None

    def ordering(self, options: QueryOptions) -> None:
        try:
            keys = self.compiler.order(options.orderby) if options.orderby else []
        except StaQueryError as err:
            raise err.located("$orderby") from None
        self.order = self.compiler.tiebreak(keys or self.compiler.default_order())

    def keyset_ready(self) -> bool:
        return all(k.column is not None for k in self.order)

    def select_list(self, columns: set[str]) -> str:
        ordered = [c for c in self.entity.columns if c in columns]
        return ", ".join(f"{self.alias}.{c} AS {c}" for c in ordered)

    def from_where(self, extra: Sequence[str] = ()) -> str:
        conds = [*self.where, *extra]
        where = " AND ".join(conds) if conds else "true"
        return f"FROM {self.ctx.view(self.entity)} AS {self.alias} WHERE {where}"

    def order_by(self) -> str:
        return ", ".join(f"{k.sql} {'DESC' if k.descending else 'ASC'}" for k in self.order)

    async def rows(self, sql: str) -> list[dict[str, Any]]:
        return await sta.fetch(self.ctx.conn, sql, self.ctx.statement_params(self.params))

    async def count(self) -> int:
        sql = f"SELECT count(*) {self.from_where()}"
        n = await sta.fetch_value(self.ctx.conn, sql, self.ctx.statement_params(self.params))
        return int(n or 0)


def _equalities(
    params: Params, entity: Entity, alias: str, constraints: Sequence[tuple[str, Any]]
) -> list[str]:
    return [f"{alias}.{c} = {params.bind(v, entity.columns[c])}" for c, v in constraints]


async def _single_row(ctx: Context, target: _Target, columns: set[str]) -> dict[str, Any]:
    plan = _Plan(ctx, target.entity)
    plan.constrain(target)
    cols = plan.select_list(columns | set(target.entity.key))
    rows = await plan.rows(f"SELECT {cols} {plan.from_where()} LIMIT 1")
    if not rows:
        await _verify(ctx, target)
        raise _missing(target)
    return rows[0]


async def _property(ctx: Context, target: _Target, prop: Prop | None, *, raw: bool) -> Reply:
    row = await _single_row(ctx, target, set(prop.columns) if prop else set())
    if prop is None:
        name, value = "@iot.id", target.entity.id_of(row)
    else:
        name, value = prop.name, prop.render(row)
    if value is None:
        return Reply(None, status=204)
    if not raw:
        return Reply({name: value})
    if prop is not None and prop.value_text:
        return Reply(value)
    text = iso(value) if isinstance(value, datetime) else value
    return Reply(text if isinstance(text, str) else json.dumps(text), media_type="text/plain")


async def _entity(ctx: Context, target: _Target, options: QueryOptions) -> Reply:
    if options.result_format is not None:
        raise StaQueryError("applies to Observation collections", option="$resultFormat")
    sel = serialize.selection(target.entity, options.select)
    plan = _Plan(ctx, target.entity)
    plan.constrain(target)
    columns = _needed(target.entity, sel, options.expand)
    rows = await plan.rows(f"SELECT {plan.select_list(columns)} {plan.from_where()} LIMIT 1")
    if not rows:
        await _verify(ctx, target)
        raise _missing(target)
    ctx.budget = 1
    [doc] = await _documents(ctx, target.entity, rows, sel, options.expand, depth=0)
    return Reply(doc)


def _needed(entity: Entity, sel: serialize.Selection, expand: Sequence[ExpandItem]) -> set[str]:
    """View columns to select: the key, what the selection renders, expansions' join keys."""
    columns = set(entity.key) | sel.columns()
    for item in expand:
        rel = _relation(entity, item)
        columns |= {s for s, _ in rel.pairs}
    return columns


def _relation(entity: Entity, item: ExpandItem) -> Relation:
    rel = entity.relations.get(item.relation)
    if rel is None:
        raise StaQueryError(
            f"{entity.name} has no relation {item.relation!r}",
            option="$expand",
            position=item.pos,
            token=item.relation,
        )
    return rel


def _page_size(ctx: Context, options: QueryOptions) -> int:
    top = options.top if options.top is not None else ctx.limits.default_top
    return min(top, ctx.limits.max_top)


def _check_skip(ctx: Context, skip: int) -> None:
    if skip > ctx.limits.max_skip:
        raise StaQueryError(
            f"may be at most {ctx.limits.max_skip}; narrow the collection with $filter or "
            "follow @iot.nextLink (which pages by key when it can)",
            option="$skip",
            token=str(skip),
        )


async def _collection(ctx: Context, target: _Target, options: QueryOptions) -> Reply:
    entity = target.entity
    data_array = options.result_format is not None
    if data_array and entity.name != "Observation":
        raise StaQueryError("applies to Observation collections", option="$resultFormat")
    if data_array and options.expand:
        raise StaQueryError("cannot be combined with $expand", option="$resultFormat")
    sel = (
        serialize.selection(entity, None)
        if data_array
        else serialize.selection(entity, options.select)
    )
    plan = _Plan(ctx, entity)
    plan.constrain(target)
    plan.filter(options)
    plan.ordering(options)
    page = _page_size(ctx, options)
    _check_skip(ctx, options.skip)
    columns = _needed(entity, sel, options.expand) | {k.column for k in plan.order if k.column}
    count = await plan.count() if options.count else None
    cursor = _decode_skiptoken(plan, options.skiptoken) if options.skiptoken else None
    rows: list[dict[str, Any]] = []
    if page > 0:
        extra = [_keyset_condition(plan, cursor)] if cursor is not None else []
        offset = 0 if cursor is not None else options.skip
        sql = (
            f"SELECT {plan.select_list(columns)} {plan.from_where(extra)}"
            f" ORDER BY {plan.order_by()}"
            f" LIMIT {plan.params.bind(page + 1, 'bigint')}"
            f" OFFSET {plan.params.bind(offset, 'bigint')}"
        )
        rows = await plan.rows(sql)
    if not rows and target.pending:
        await _verify(ctx, target)  # an empty page: is the entity it belongs to there at all?
    more = len(rows) > page
    rows = rows[:page]
    doc: dict[str, Any] = {}
    if count is not None:
        doc["@iot.count"] = count
    if more:
        doc["@iot.nextLink"] = _next_link(ctx, plan, options, rows[-1], page)
    ctx.budget = len(rows)
    if data_array:
        doc["value"] = serialize.data_array(entity, rows, options.select, ctx.base)
    else:
        doc["value"] = await _documents(ctx, entity, rows, sel, options.expand, depth=0)
    return Reply(doc)


async def _refs(ctx: Context, target: _Target, options: QueryOptions) -> Reply:
    if options.select is not None or options.expand or options.result_format is not None:
        raise StaQueryError("$ref takes $filter, $orderby, $top, $skip and $count only")
    if target.single:
        row = await _single_row(ctx, target, set())
        return Reply({"@iot.selfLink": _self(ctx, target.entity, row)})
    only_links = dataclasses.replace(options, select=("@iot.selfLink",))
    return await _collection(ctx, target, only_links)


def _self(ctx: Context, entity: Entity, row: dict[str, Any]) -> str:
    return serialize.entity_link(ctx.base, entity, entity.id_of(row))


# -- keyset paging ---------------------------------------------------------------------------


def _fingerprint(plan: _Plan) -> str:
    text = "|".join(f"{k.column}:{int(k.descending)}" for k in plan.order)
    return hashlib.sha256(f"{plan.entity.name}|{text}".encode()).hexdigest()[:12]


def _encode_value(value: Any) -> Any:
    return {"t": value.isoformat()} if isinstance(value, datetime) else value


def _skiptoken(plan: _Plan, row: dict[str, Any]) -> str:
    payload = [_fingerprint(plan), [_encode_value(row[k.column]) for k in plan.order if k.column]]
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_skiptoken(plan: _Plan, token: str) -> list[Any]:
    def bad(why: str) -> StaQueryError:
        return StaQueryError(why, option="$skiptoken", token=token[:40])

    if not plan.keyset_ready():
        raise bad("this $orderby pages with $skip; $skiptoken does not apply")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        fingerprint, values = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise bad("not a token this service issued") from None
    if fingerprint != _fingerprint(plan) or not isinstance(values, list):
        raise bad("belongs to another $orderby or collection; follow the nextLink as given")
    if len(values) != len(plan.order):
        raise bad("malformed")
    out = []
    for key, value in zip(plan.order, values, strict=True):
        out.append(_decode_value(key, value, bad))
    return out


def _decode_value(key: OrderKey, value: Any, bad: Any) -> Any:
    sql_type = key.sql_type
    if sql_type == "timestamptz":
        if not isinstance(value, dict) or not isinstance(value.get("t"), str):
            raise bad("malformed")
        try:
            return datetime.fromisoformat(value["t"])
        except ValueError:
            raise bad("malformed") from None
    if sql_type == "float8":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("malformed")
        return float(value)
    if not isinstance(value, str):
        raise bad("malformed")
    return value


def _keyset_condition(plan: _Plan, values: list[Any]) -> str:
    """Rows after the cursor in the plan's order."""
    bind = plan.params.bind
    keys = plan.order
    placeholders = [bind(v, k.sql_type or "text") for k, v in zip(keys, values, strict=True)]
    first = keys[0]
    # Implied by the rest, but lets PostgreSQL skip whole chunks when the first key is time.
    bound = f"{first.sql} {'<=' if first.descending else '>='} {placeholders[0]}"
    if all(k.descending == first.descending for k in keys):
        op = "<" if first.descending else ">"
        row = f"({', '.join(k.sql for k in keys)}) {op} ({', '.join(placeholders)})"
        return f"({bound} AND {row})"
    alternatives = []
    for i, key in enumerate(keys):
        equal = [f"{k.sql} = {p}" for k, p in zip(keys[:i], placeholders[:i], strict=True)]
        op = "<" if key.descending else ">"
        alternatives.append("(" + " AND ".join([*equal, f"{key.sql} {op} {placeholders[i]}"]) + ")")
    return f"({bound} AND ({' OR '.join(alternatives)}))"


def _next_link(
    ctx: Context, plan: _Plan, options: QueryOptions, last: dict[str, Any], page: int
) -> str:
    kept = [(k, v) for k, v in ctx.query if k not in ("$skip", "$skiptoken", "$top")]
    kept.append(("$top", str(page)))
    if plan.keyset_ready():
        kept.append(("$skiptoken", _skiptoken(plan, last)))
    else:
        kept.append(("$skip", str(options.skip + page)))
    return f"{ctx.url}?{urlencode(kept, quote_via=quote, safe=_LINK_SAFE)}"


# -- expansion ---------------------------------------------------------------------------------

MAX_EXPAND_DEPTH: Final = 6


async def _documents(
    ctx: Context,
    entity: Entity,
    rows: list[dict[str, Any]],
    sel: serialize.Selection,
    expand: Sequence[ExpandItem],
    *,
    depth: int,
) -> list[dict[str, Any]]:
    render = serialize.Renderer(entity, sel, ctx.base)
    docs = [render(row) for row in rows]
    if not expand or not rows:
        return docs
    if depth >= MAX_EXPAND_DEPTH:
        raise StaQueryError(f"nested more than {MAX_EXPAND_DEPTH} levels", option="$expand")
    for item in expand:
        rel = _relation(entity, item)
        await _expand(ctx, entity, rows, docs, rel=rel, item=item, depth=depth)
    return docs


async def _expand(
    ctx: Context,
    entity: Entity,
    rows: list[dict[str, Any]],
    docs: list[dict[str, Any]],
    *,
    rel: Relation,
    item: ExpandItem,
    depth: int,
) -> None:
    target = ENTITIES[rel.target]
    opts = item.options
    if not rel.many and (opts.orderby or opts.top is not None or opts.skip or opts.count):
        raise StaQueryError(
            f"{rel.name} is one entity: only $select, $expand and $filter apply",
            option="$expand",
            position=item.pos,
            token=rel.name,
        )
    sel = serialize.selection(target, opts.select)
    parent_keys = [tuple(row[s] for s, _ in rel.pairs) for row in rows]
    unique = list(dict.fromkeys(k for k in parent_keys if None not in k))
    plan = _Plan(ctx, target)
    plan.filter(opts)
    plan.ordering(opts)
    page = _page_size(ctx, opts) if rel.many else 1
    _check_skip(ctx, opts.skip)
    arrays = [plan.params.bind([k[i] for k in unique], "text[]") for i in range(len(rel.pairs))]
    names = [f"k{i}" for i in range(len(rel.pairs))]
    match = [f"{plan.alias}.{t} = k.{n}" for (_, t), n in zip(rel.pairs, names, strict=True)]
    columns = _needed(target, sel, opts.expand)
    unnest = f"unnest({', '.join(arrays)}) WITH ORDINALITY AS k({', '.join(names)}, sta_ord)"
    sql = (
        f"SELECT k.sta_ord AS sta_ord, x.* FROM {unnest} CROSS JOIN LATERAL ("
        f"SELECT {plan.select_list(columns)} {plan.from_where(match)}"
        f" ORDER BY {plan.order_by()}"
        f" LIMIT {plan.params.bind(page + 1, 'bigint')}"
        f" OFFSET {plan.params.bind(opts.skip if rel.many else 0, 'bigint')}) AS x"
    )
    children = await plan.rows(sql) if unique and page > 0 else []
    counts: dict[int, int] = {}
    if opts.count and unique:
        count_sql = (
            f"SELECT k.sta_ord AS sta_ord, (SELECT count(*) {plan.from_where(match)}) AS n"
            f" FROM {unnest}"
        )
        counts = {r["sta_ord"]: r["n"] for r in await plan.rows(count_sql)}
    by_parent: dict[int, list[dict[str, Any]]] = {}
    for child in children:
        by_parent.setdefault(child["sta_ord"], []).append(child)
    kept = [c for group in by_parent.values() for c in group[:page]]
    ctx.budget += len(kept)
    if ctx.budget > ctx.limits.max_expand_rows:
        raise StaQueryError(
            f"the response would hold more than {ctx.limits.max_expand_rows} entities;"
            " lower $top inside $expand",
            option="$expand",
            position=item.pos,
            token=rel.name,
        )
    rendered = await _documents(ctx, target, kept, sel, opts.expand, depth=depth + 1)
    by_id = {id(row): doc for row, doc in zip(kept, rendered, strict=True)}
    ordinal = {key: i + 1 for i, key in enumerate(unique)}
    for row, doc, key in zip(rows, docs, parent_keys, strict=True):
        group = by_parent.get(ordinal.get(key, 0), [])
        if not rel.many:
            doc[rel.name] = by_id[id(group[0])] if group else None
            continue
        if opts.count:
            doc[f"{rel.name}@iot.count"] = counts.get(ordinal.get(key, 0), 0)
        if len(group) > page:
            doc[f"{rel.name}@iot.nextLink"] = _expand_link(
                ctx, entity, row, rel=rel, opts=opts, page=page
            )
        doc[rel.name] = [by_id[id(c)] for c in group[:page]]


def _expand_link(
    ctx: Context,
    entity: Entity,
    row: dict[str, Any],
    *,
    rel: Relation,
    opts: QueryOptions,
    page: int,
) -> str:
    nxt = dataclasses.replace(opts, top=page, skip=opts.skip + page)
    query = urlencode(option_pairs(nxt), quote_via=quote, safe=_LINK_SAFE)
    return f"{_self(ctx, entity, row)}/{rel.name}?{query}"
