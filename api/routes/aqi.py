"""VN_AQI of stations and areas, now (anonymous access: the portal uses it)."""

from typing import Annotated, Final

from fastapi import APIRouter, Path, Query, Request

from api import aqi, objects
from api.deps import Caller, Conn, State
from api.models import AreaAqi, StationAqi
from api.params import ID_PATTERN, AreaId
from api.problems import not_found
from api.routes.common import ERRORS, NOT_FOUND
from api.routes.devices import DeviceId
from store import catalog

router = APIRouter(tags=["aqi"], responses=ERRORS)

STATION_KIND: Final = "air_quality"
MAX_STATIONS: Final = 1000


def _station(d: catalog.DeviceRow, hour_start: object, result: object) -> StationAqi:
    return StationAqi(
        device_id=d.id,
        name=d.name,
        area_id=d.area_id,
        lat=d.lat,
        lon=d.lon,
        hour=hour_start,  # type: ignore[arg-type]
        aqi=aqi.model(result),  # type: ignore[arg-type]
    )


async def _stations(state: State, rows: list[catalog.DeviceRow]) -> list[StationAqi]:
    hour = aqi.current_hour()
    results = await state.db.run_sync(aqi.compute, [d.id for d in rows], hour)
    return [_station(d, hour, results.get(d.id)) for d in rows]


@router.get("/aqi/stations", summary="Current AQI of every visible station")
async def stations_now(
    caller: Caller,
    conn: Conn,
    state: State,
    area_id: AreaId = None,
    limit: Annotated[int, Query(ge=1, le=MAX_STATIONS)] = MAX_STATIONS,
) -> list[StationAqi]:
    """Hourly VN_AQI (QĐ 1459) of the latest complete hour, with category, colour and advice
    in Vietnamese and English; ``aqi`` is null for a station without enough PM data."""
    if area_id is not None:
        await objects.area(conn, area_id)
    flt = catalog.DeviceFilter(kind=STATION_KIND, area_id=area_id)
    rows = await catalog.devices(conn, caller.visibility, flt, limit=limit)
    return await _stations(state, rows)


@router.get("/aqi/stations/{device_id}", summary="Current AQI of a station", responses=NOT_FOUND)
async def station_now(
    device_id: DeviceId, caller: Caller, conn: Conn, state: State, request: Request
) -> StationAqi:
    """One station's current hourly VN_AQI."""
    d = await objects.device(conn, state, caller, device_id, (request.method, request.url.path))
    if d.kind != STATION_KIND:
        raise not_found("air quality station", device_id)
    return (await _stations(state, [d]))[0]


@router.get("/aqi/areas/{area_id}", summary="Current AQI of an area", responses=NOT_FOUND)
async def area_now(
    area_id: Annotated[str, Path(max_length=64, pattern=ID_PATTERN)],
    caller: Caller,
    conn: Conn,
    state: State,
) -> AreaAqi:
    """The worst (highest) current AQI among the visible stations in the area and below it,
    and every station's, so a map can show both."""
    await objects.area(conn, area_id)
    flt = catalog.DeviceFilter(kind=STATION_KIND, area_id=area_id)
    rows = await catalog.devices(conn, caller.visibility, flt, limit=MAX_STATIONS)
    stations = await _stations(state, rows)
    rated = [s for s in stations if s.aqi is not None]
    worst = max(rated, key=lambda s: s.aqi.value if s.aqi else -1, default=None)
    return AreaAqi(
        area_id=area_id,
        hour=aqi.current_hour(),
        aqi=worst.aqi if worst else None,
        worst_station=worst.device_id if worst else None,
        stations=stations,
    )
