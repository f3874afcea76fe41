"""VN_AQI of stations and areas, now (anonymous access: the portal uses it)."""

from datetime import datetime, time, timedelta
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo

import psycopg
from fastapi import APIRouter, Path, Query, Request

from analytics import aqi as vn
from api import aqi, objects
from api.const import PREFIX
from api.deps import Caller, Conn, State
from api.models import AqiHistory, AqiPoint, AreaAqi, StationAqi
from api.params import ID_PATTERN, AreaId, End, Start, check_range
from api.problems import not_found
from api.routes.common import ERRORS, NOT_FOUND
from api.routes.devices import DeviceId
from store import aqihistory, catalog
from store.tiers import LOCAL_TZ

router = APIRouter(prefix=PREFIX, tags=["aqi"], responses=ERRORS)

STATION_KIND: Final = "air_quality"
MAX_STATIONS: Final = 1000


def _station(d: catalog.DeviceRow, hour_start: datetime, result: vn.AqiResult | None) -> StationAqi:
    return StationAqi(
        device_id=d.id,
        name=d.name,
        area_id=d.area_id,
        lat=d.lat,
        lon=d.lon,
        hour=hour_start,
        aqi=aqi.model(result),
    )


async def _stations(state: State, rows: list[catalog.DeviceRow]) -> list[StationAqi]:
    hour = aqi.current_hour()
    ids = tuple(d.id for d in rows)

    async def compute() -> dict[str, vn.AqiResult | None]:
        return await state.db.run_sync(aqi.compute, ids, hour)

    # The portal asks for every station's AQI on each page view; the hour's value changes
    # only with late data, so it is computed once per aqi_cache_s (the station list itself is
    # read per request, with the caller's visibility).
    results = await state.aqi_now.get_or_compute(("aqi", ids, hour), compute)
    return [_station(d, hour, results.get(d.id)) for d in rows]


@router.get("/aqi/stations", summary="Current AQI of every visible station", responses=NOT_FOUND)
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


Resolution = Annotated[
    Literal["hour", "day"], Query(description="hourly AQI, or daily AQI of local days")
]
_MAX_DAYS: Final = {"hour": 366, "day": 3660}
_LOCAL: Final = ZoneInfo(LOCAL_TZ)


async def _history(
    conn: psycopg.AsyncConnection[Any],
    ident: str,
    stations: list[str],
    span: tuple[datetime, datetime],
    resolution: Literal["hour", "day"],
) -> AqiHistory:
    start, end = check_range(*span, _MAX_DAYS[resolution])
    if resolution == "hour":
        rows = await aqihistory.history(conn, stations, "hour", start, end)
    else:
        first = start.astimezone(_LOCAL).date()
        last = (end - timedelta(microseconds=1)).astimezone(_LOCAL).date() + timedelta(days=1)
        rows = await aqihistory.history(conn, stations, "day", first, last)
    points = []
    for r in rows:
        when = r.period
        if not isinstance(when, datetime):  # a local day: its midnight in Asia/Ho_Chi_Minh
            when = datetime.combine(when, time(0), _LOCAL)
        cat = vn.category(r.value)
        points.append(
            AqiPoint(
                period_start=when,
                value=r.value,
                dominant=r.dominant,
                category=cat.key,
                colour_hex=cat.hex,
                station_id=r.station_id,
            )
        )
    return AqiHistory(id=ident, resolution=resolution, points=points)


@router.get(
    "/aqi/stations/{device_id}/history", summary="AQI history of a station", responses=NOT_FOUND
)
async def station_history(  # noqa: PLR0917 (one parameter per query option)
    device_id: DeviceId,
    caller: Caller,
    conn: Conn,
    state: State,
    request: Request,
    start: Start,
    end: End,
    resolution: Resolution = "hour",
) -> AqiHistory:
    """Hourly (hour start, UTC) or daily (local days) VN_AQI as computed by the analytics AQI
    job; hours or days it has not computed (too little data) are absent. Ranges up to 366
    days of hours or 3,660 days of days."""
    d = await objects.device(conn, state, caller, device_id, (request.method, request.url.path))
    if d.kind != STATION_KIND:
        raise not_found("air quality station", device_id)
    return await _history(conn, device_id, [device_id], (start, end), resolution)


@router.get("/aqi/areas/{area_id}/history", summary="AQI history of an area", responses=NOT_FOUND)
async def area_history(  # noqa: PLR0917
    area_id: Annotated[str, Path(max_length=64, pattern=ID_PATTERN)],
    caller: Caller,
    conn: Conn,
    start: Start,
    end: End,
    resolution: Resolution = "hour",
) -> AqiHistory:
    """Per hour or local day, the highest VN_AQI among the area's visible stations (and the
    station it was measured at)."""
    await objects.area(conn, area_id)
    flt = catalog.DeviceFilter(kind=STATION_KIND, area_id=area_id)
    rows = await catalog.devices(conn, caller.visibility, flt, limit=MAX_STATIONS)
    return await _history(conn, area_id, [d.id for d in rows], (start, end), resolution)
