"""Devices: listing with filters, one device, and the latest values."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic_core import to_json

from api import objects
from api.const import PREFIX
from api.deps import Caller, Conn, State
from api.models import Device, DevicePage, Latest
from api.params import (
    ID_PATTERN,
    AreaId,
    DeviceIdList,
    Kind,
    MetricList,
    check_bbox,
    check_metrics,
    decode_cursor,
    encode_cursor,
)
from api.routes.common import ERRORS, NOT_FOUND
from core.metrics import METRICS
from store import catalog

router = APIRouter(prefix=PREFIX, tags=["devices"], responses=ERRORS)

DeviceId = Annotated[str, Path(max_length=64, pattern=ID_PATTERN, examples=["aq-nd-001"])]


def device_model(d: catalog.DeviceRow) -> Device:
    """The API's view of a device row."""
    return Device(
        id=d.id,
        kind=d.kind,
        name=d.name,
        area_id=d.area_id,
        lat=d.lat,
        lon=d.lon,
        public=d.public,
        created_at=d.created_at,
        last_seen=d.last_seen,
    )


@router.get("/devices", summary="Devices the caller may see", responses=NOT_FOUND)
async def list_devices(  # noqa: PLR0917 (one parameter per query filter)
    caller: Caller,
    conn: Conn,
    kind: Kind = None,
    area_id: AreaId = None,
    bbox: Annotated[
        str | None,
        Query(
            description="min_lon,min_lat,max_lon,max_lat",
            examples=["106.10,20.38,106.22,20.46"],
            max_length=100,
        ),
    ] = None,
    public: Annotated[bool | None, Query(description="only public (true) or private")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> DevicePage:
    """Filter by kind, area (including every area below it), bounding box and visibility.

    Anonymous callers and keys without ``read:all`` see public devices only.
    """
    box = check_bbox(bbox)
    after = decode_cursor(cursor, ("id",))["id"] if cursor else None
    if area_id is not None:
        await objects.area(conn, area_id)
    flt = catalog.DeviceFilter(kind=kind, area_id=area_id, bbox=box, public=public)
    rows = await catalog.devices(conn, caller.visibility, flt, after_id=after, limit=limit + 1)
    items = [device_model(d) for d in rows[:limit]]
    nxt = encode_cursor({"id": items[-1].id}) if len(rows) > limit else None
    return DevicePage(items=items, next_cursor=nxt)


@router.get("/devices/{device_id}", summary="One device", responses=NOT_FOUND)
async def get_device(
    device_id: DeviceId, caller: Caller, conn: Conn, state: State, request: Request
) -> Device:
    """404 for an unknown device and for one the caller may not see alike."""
    where = (request.method, request.url.path)
    return device_model(await objects.device(conn, state, caller, device_id, where))


@router.get(
    "/latest",
    summary="Latest value of every visible series",
    response_model=list[Latest],
    responses=NOT_FOUND,
)
async def latest(  # noqa: PLR0917
    caller: Caller,
    state: State,
    request: Request,
    device_ids: DeviceIdList = None,
    area_id: AreaId = None,
    kind: Kind = None,
    metrics: MetricList = None,
) -> Response:
    """The newest reading of each (device, metric), filtered; one row per series."""
    mets = check_metrics(metrics)
    key = ("latest", caller.visibility, tuple(device_ids or ()), area_id, kind, tuple(mets or ()))

    async def compute() -> bytes:
        async with state.db.pool.connection() as conn:
            if device_ids:
                where = (request.method, request.url.path)
                await objects.devices(conn, state, caller, device_ids, where)
            if area_id is not None:
                await objects.area(conn, area_id)
            flt = catalog.DeviceFilter(ids=device_ids or None, kind=kind, area_id=area_id)
            rows = await catalog.latest(conn, caller.visibility, flt, mets)
        # The hottest route (the portal map, dashboards): rows come typed from the database,
        # so they are serialised directly (pydantic-core, in Rust) instead of being validated
        # into models first, which was over half of this route's time in the profile. The
        # fields are exactly those of the Latest model, which documents the response.
        return to_json(
            [
                {
                    "device_id": r.device_id,
                    "metric": r.metric,
                    "ts": r.ts,
                    "value": r.value,
                    "unit": _unit(r.metric),
                    "quality": r.quality,
                }
                for r in rows
            ]
        )

    # The key holds the visibility and every filter, and only answers that passed the checks
    # in compute() are stored, so a hit (which takes no connection) never skips an
    # object-level check that would fail for this caller.
    data = await state.responses.get_or_compute(key, compute)
    return Response(data, media_type="application/json")


def _unit(metric: str) -> str:
    m = METRICS.get(metric)
    return m.unit if m is not None else ""
