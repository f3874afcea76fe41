"""Energy consumption of meters and areas (store.energy: counter increases, resets handled)."""

import math
from collections import defaultdict
from datetime import datetime
from typing import Annotated, Final

from fastapi import APIRouter, Path, Query, Request

from api import objects
from api.const import PREFIX
from api.deps import Caller, Conn, State
from api.models import Energy, EnergyPoint
from api.params import ID_PATTERN, Align, End, Start, check_range, parse_interval
from api.problems import too_large
from api.routes.common import ERRORS, NOT_FOUND
from api.routes.devices import DeviceId
from store import catalog, energy

router = APIRouter(prefix=PREFIX, tags=["energy"], responses=ERRORS)

MAX_METERS: Final = 2000
Interval = Annotated[str, Query(description="bucket width: 15m, 1h, 1d …", max_length=10)]
AlignQ = Annotated[Align, Query(description="UTC buckets, or local (Asia/Ho_Chi_Minh) days")]


def _check_points(state: State, start: datetime, end: datetime, width_s: float) -> None:
    buckets = math.ceil((end - start).total_seconds() / width_s)
    if buckets > state.config.aggregate_max_points:
        raise too_large(
            "interval",
            f"{buckets} buckets exceed {state.config.aggregate_max_points}; use a longer interval",
        )


@router.get("/energy/devices/{device_id}", summary="A meter's consumption", responses=NOT_FOUND)
async def device_energy(  # noqa: PLR0917 (one parameter per query option)
    device_id: DeviceId,
    caller: Caller,
    conn: Conn,
    state: State,
    request: Request,
    start: Start,
    end: End,
    interval: Interval = "1d",
    align: AlignQ = "local",
) -> Energy:
    """kWh per bucket from the meter's ``energy`` counter (a counter reset is not a drop)."""
    start, end = check_range(start, end)
    width = parse_interval(interval)
    _check_points(state, start, end, width.total_seconds())
    await objects.device(conn, state, caller, device_id, (request.method, request.url.path))
    rows = await state.db.run_sync(
        energy.device_consumption, [device_id], start, end, width, local_days=align == "local"
    )
    return Energy(
        id=device_id,
        interval_s=int(width.total_seconds()),
        align=align,
        source=rows[0].source if rows else None,
        points=[EnergyPoint(bucket=r.bucket, kwh=r.kwh) for r in rows],
    )


@router.get("/energy/areas/{area_id}", summary="An area's consumption", responses=NOT_FOUND)
async def area_energy(  # noqa: PLR0917
    area_id: Annotated[str, Path(max_length=64, pattern=ID_PATTERN)],
    caller: Caller,
    conn: Conn,
    state: State,
    start: Start,
    end: End,
    interval: Interval = "1d",
    align: AlignQ = "local",
) -> Energy:
    """Total kWh per bucket of the meters in the area and every area below it that the caller
    may see (a key without ``read:all`` gets the public meters' total)."""
    start, end = check_range(start, end)
    width = parse_interval(interval)
    _check_points(state, start, end, width.total_seconds())
    await objects.area(conn, area_id)
    local = align == "local"
    if caller.visibility.everything:
        rows = await state.db.run_sync(
            energy.area_consumption, area_id, start, end, width, local_days=local
        )
        points = [EnergyPoint(bucket=r.bucket, kwh=r.kwh, devices=r.devices) for r in rows]
    else:
        flt = catalog.DeviceFilter(area_id=area_id)
        ids = await objects.area_devices(conn, caller, flt, MAX_METERS)
        per_device = (
            await state.db.run_sync(
                energy.device_consumption, ids, start, end, width, local_days=local
            )
            if ids
            else []
        )
        total: dict[datetime, list[float]] = defaultdict(list)
        for r in per_device:
            total[r.bucket].append(r.kwh)
        points = [
            EnergyPoint(bucket=b, kwh=sum(v), devices=len(v)) for b, v in sorted(total.items())
        ]
    return Energy(id=area_id, interval_s=int(width.total_seconds()), align=align, points=points)
