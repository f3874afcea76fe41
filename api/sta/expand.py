"""``$expand``: related entities for a whole page, one statement per relation and level.

For a page of parents, ``unnest(parent keys) CROSS JOIN LATERAL (SELECT … ORDER BY … LIMIT n)``
applies the expansion's own ``$filter``, ``$orderby``, ``$skip`` and ``$top`` per parent, using
the same indexes as a direct request. Nested expansions recurse on the children of all parents
at once. A response holds at most :attr:`~api.sta.plan.Limits.max_expand_rows` entities.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlencode

from api.sta import serialize
from api.sta.entities import ENTITIES
from api.sta.errors import StaQueryError
from api.sta.options import option_pairs
from api.sta.paging import LINK_SAFE
from api.sta.plan import Plan, check_skip, needed, page_size, relation_of, self_link

if TYPE_CHECKING:
    from collections.abc import Sequence

    from api.sta.ast import ExpandItem, QueryOptions
    from api.sta.entities import Entity, Relation
    from api.sta.plan import Context


MAX_EXPAND_DEPTH: Final = 6


async def documents(
    ctx: Context,
    entity: Entity,
    rows: list[dict[str, Any]],
    sel: serialize.Selection,
    expand: Sequence[ExpandItem],
    *,
    depth: int,
) -> list[dict[str, Any]]:
    """Render ``rows`` of ``entity`` and add their expanded relations.

    Args:
        ctx: the request.
        entity: the rows' entity type.
        rows: view rows (with the columns the selection and the expansions need).
        sel: what ``$select`` keeps.
        expand: the relations to expand, with their options.
        depth: how deep in ``$expand`` this is.

    Raises:
        StaQueryError: for an unknown relation, options a to-one relation does not take, too
            deep a nesting, or a response over the entity budget.
    """
    render = serialize.Renderer(entity, sel, ctx.base)
    docs = [render(row) for row in rows]
    if not expand or not rows:
        return docs
    if depth >= MAX_EXPAND_DEPTH:
        raise StaQueryError(f"nested more than {MAX_EXPAND_DEPTH} levels", option="$expand")
    for item in expand:
        rel = relation_of(entity, item)
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
    plan = Plan(ctx, target)
    plan.filter(opts)
    plan.ordering(opts)
    page = page_size(ctx, opts) if rel.many else 1
    check_skip(ctx, opts.skip)
    arrays = [plan.params.bind([k[i] for k in unique], "text[]") for i in range(len(rel.pairs))]
    names = [f"k{i}" for i in range(len(rel.pairs))]
    match = [f"{plan.alias}.{t} = k.{n}" for (_, t), n in zip(rel.pairs, names, strict=True)]
    columns = needed(target, sel, opts.expand)
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
    rendered = await documents(ctx, target, kept, sel, opts.expand, depth=depth + 1)
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
    query = urlencode(option_pairs(nxt), quote_via=quote, safe=LINK_SAFE)
    return f"{self_link(ctx, entity, row)}/{rel.name}?{query}"
