"""Answer one SensorThings GET: resolve the path, build statements, page, expand, render.

Resolution walks the path one segment at a time. A navigation from an entity addressed by id
becomes equality constraints on the related entity's view columns: taken from the id itself
when the relation joins on key columns (the entity is then not read; its existence becomes an
``EXISTS`` in the final statement and is checked on its own only when that finds nothing), or
from the entity's row otherwise. The final collection, entity, property or ``$ref`` is one
statement: ``SELECT … FROM (<view>) AS e0 WHERE <constraints> AND <$filter> ORDER BY … LIMIT``,
so filters and paging on Observations run in PostgreSQL against the readings index, never in
Python. Missing and hidden entities are alike: 404.

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

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from api.sta import serialize
from api.sta.entities import BY_PLURAL, ENTITIES, ID_NAMES, Entity, Prop, Relation, iso
from api.sta.errors import StaNotFound, StaQueryError
from api.sta.expand import documents
from api.sta.paging import decode_skiptoken, keyset_condition, next_link
from api.sta.plan import (
    Context,
    Limits,
    Plan,
    Target,
    check_skip,
    missing,
    needed,
    page_size,
    self_link,
    single_row,
    verify,
)
from api.sta.resource import Segment, parse_path

if TYPE_CHECKING:
    from api.sta.ast import QueryOptions

__all__ = ["CONFORMANCE", "Context", "Limits", "Reply", "answer", "service_root"]

CONFORMANCE: Final = (
    "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/data-array/data-array",
)
"""The conformance classes served: reading (Sensing Core), the Filtering Extension and the
dataArray result format. Create/update/delete, batch requests, MultiDatastreams and MQTT are
not implemented, so they are not listed."""


@dataclass(frozen=True, slots=True)
class Reply:
    """What the route sends: a JSON document, or text for ``$value``."""

    body: Any
    media_type: str = "application/json"
    status: int = 200


# -- entry point ------------------------------------------------------------------------------


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
    target = Target(entity, (), single=False)
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


def _keyed(entity: Entity, key: str, constraints: tuple[tuple[str, Any], ...]) -> Target:
    values = entity.decode(key)
    if values is None:
        raise StaNotFound(entity.name, key)
    return Target(entity, (*constraints, *zip(entity.key, values, strict=True)), single=True)


async def _navigate(ctx: Context, source: Target, rel: Relation, seg: Segment) -> Target:
    known = dict(source.constraints)
    if all(s in known for s, _ in rel.pairs):
        # The join values are in the source's id: no need to read it now (one round trip
        # less per request); its existence is checked with the final statement.
        constraints = tuple((t, known[s]) for s, t in rel.pairs)
        pending = (*source.pending, source)
    else:
        row = await single_row(ctx, source, {s for s, _ in rel.pairs})
        constraints = tuple((t, row[s]) for s, t in rel.pairs)
        pending = ()
    target = ENTITIES[rel.target]
    if rel.many:
        if seg.key is not None:
            return dataclasses.replace(_keyed(target, seg.key, constraints), pending=pending)
        return Target(target, constraints, single=False, pending=pending)
    if seg.key is not None:
        raise StaQueryError(f"{rel.name} is one entity: it takes no id", option="path")
    if any(v is None for _, v in constraints):
        raise StaNotFound(rel.name, f"of {source.entity.name}")
    return Target(target, constraints, single=True, pending=pending)


async def _property(ctx: Context, target: Target, prop: Prop | None, *, raw: bool) -> Reply:
    row = await single_row(ctx, target, set(prop.columns) if prop else set())
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


async def _entity(ctx: Context, target: Target, options: QueryOptions) -> Reply:
    if options.result_format is not None:
        raise StaQueryError("applies to Observation collections", option="$resultFormat")
    sel = serialize.selection(target.entity, options.select)
    plan = Plan(ctx, target.entity)
    plan.constrain(target)
    columns = needed(target.entity, sel, options.expand)
    rows = await plan.rows(f"SELECT {plan.select_list(columns)} {plan.from_where()} LIMIT 1")
    if not rows:
        await verify(ctx, target)
        raise missing(target)
    ctx.budget = 1
    [doc] = await documents(ctx, target.entity, rows, sel, options.expand, depth=0)
    return Reply(doc)


async def _collection(ctx: Context, target: Target, options: QueryOptions) -> Reply:
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
    plan = Plan(ctx, entity)
    plan.constrain(target)
    plan.filter(options)
    plan.ordering(options)
    page = page_size(ctx, options)
    check_skip(ctx, options.skip)
    columns = needed(entity, sel, options.expand) | {k.column for k in plan.order if k.column}
    count = await plan.count() if options.count else None
    cursor = decode_skiptoken(plan, options.skiptoken) if options.skiptoken else None
    rows: list[dict[str, Any]] = []
    if page > 0:
        extra = [keyset_condition(plan, cursor)] if cursor is not None else []
        offset = 0 if cursor is not None else options.skip
        sql = (
            f"SELECT {plan.select_list(columns)} {plan.from_where(extra)}"
            f" ORDER BY {plan.order_by()}"
            f" LIMIT {plan.params.bind(page + 1, 'bigint')}"
            f" OFFSET {plan.params.bind(offset, 'bigint')}"
        )
        rows = await plan.rows(sql)
    if not rows and target.pending:
        await verify(ctx, target)  # an empty page: is the entity it belongs to there at all?
    more = len(rows) > page
    rows = rows[:page]
    doc: dict[str, Any] = {}
    if count is not None:
        doc["@iot.count"] = count
    if more:
        doc["@iot.nextLink"] = next_link(ctx, plan, options, rows[-1], page)
    ctx.budget = len(rows)
    if data_array:
        doc["value"] = serialize.data_array(entity, rows, options.select, ctx.base)
    else:
        doc["value"] = await documents(ctx, entity, rows, sel, options.expand, depth=0)
    return Reply(doc)


async def _refs(ctx: Context, target: Target, options: QueryOptions) -> Reply:
    if options.select is not None or options.expand or options.result_format is not None:
        raise StaQueryError("$ref takes $filter, $orderby, $top, $skip and $count only")
    if target.single:
        row = await single_row(ctx, target, set())
        return Reply({"@iot.selfLink": self_link(ctx, target.entity, row)})
    only_links = dataclasses.replace(options, select=("@iot.selfLink",))
    return await _collection(ctx, target, only_links)
