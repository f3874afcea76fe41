"""The administrative tree (reference data: no key needed)."""

from typing import Annotated

from fastapi import APIRouter, Path

from api.const import PREFIX
from api.deps import Caller, Conn
from api.models import Area
from api.params import ID_PATTERN
from api.problems import not_found
from api.routes.common import ERRORS, NOT_FOUND
from store import catalog

router = APIRouter(prefix=PREFIX, tags=["areas"], responses=ERRORS)


def _tree(rows: list[catalog.AreaRow]) -> tuple[list[Area], dict[str, Area]]:
    """Nest areas (rows come parents first)."""
    children: dict[str | None, list[catalog.AreaRow]] = {}
    for r in rows:
        children.setdefault(r.parent_id, []).append(r)
    nodes: dict[str, Area] = {}

    def build(r: catalog.AreaRow) -> Area:
        node = Area(
            id=r.id,
            parent_id=r.parent_id,
            level=r.level,
            name=r.name,
            name_en=r.name_en,
            lat=r.lat,
            lon=r.lon,
            children=[build(c) for c in children.get(r.id, [])],
        )
        nodes[r.id] = node
        return node

    return [build(r) for r in children.get(None, [])], nodes


@router.get("/areas", summary="The area tree")
async def areas(_: Caller, conn: Conn) -> list[Area]:
    """Province → city/districts → wards, towns and communes, nested in ``children``."""
    roots, _nodes = _tree(await catalog.areas(conn))
    return roots


@router.get("/areas/{area_id}", summary="One area with everything below it", responses=NOT_FOUND)
async def area(
    area_id: Annotated[str, Path(max_length=64, pattern=ID_PATTERN)], _: Caller, conn: Conn
) -> Area:
    """The area and its subtree."""
    _roots, nodes = _tree(await catalog.areas(conn))
    if area_id not in nodes:
        raise not_found("area", area_id)
    return nodes[area_id]
