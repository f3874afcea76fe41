"""Raw readings of one device, in keyset-paginated pages."""

from typing import Annotated

from fastapi import APIRouter, Query, Request

from api import objects
from api.const import PREFIX
from api.deps import Caller, Conn, State
from api.models import Reading, ReadingPage
from api.params import (
    End,
    MetricList,
    Start,
    check_metrics,
    check_range,
    cursor_time,
    decode_cursor,
    encode_cursor,
)
from api.problems import too_large
from api.routes.common import ERRORS, NOT_FOUND
from api.routes.devices import DeviceId
from store import readings

router = APIRouter(prefix=PREFIX, tags=["readings"], responses=ERRORS)


@router.get(
    "/devices/{device_id}/readings", summary="Raw readings of a device", responses=NOT_FOUND
)
async def device_readings(  # noqa: PLR0917 (one parameter per query filter)
    device_id: DeviceId,
    caller: Caller,
    conn: Conn,
    state: State,
    request: Request,
    start: Start,
    end: End,
    metrics: MetricList = None,
    limit: Annotated[int, Query(ge=1, description="rows per page (at most page_max)")] = 1000,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> ReadingPage:
    """Readings in ``[start, end)`` ordered by (ts, metric); ranges up to ``raw_max_days``
    (31 by default), pages up to ``page_max`` rows (5,000). Longer: use /exports/readings."""
    cfg = state.config
    if limit > cfg.page_max:
        raise too_large("limit", f"limit may be at most {cfg.page_max}")
    start, end = check_range(start, end, cfg.raw_max_days)
    mets = check_metrics(metrics)
    after = None
    if cursor:
        c = decode_cursor(cursor, ("ts", "metric"))
        after = (cursor_time(c["ts"]), c["metric"])
    await objects.device(conn, state, caller, device_id, (request.method, request.url.path))
    rows = await readings.page(conn, device_id, mets, start, end, after=after, limit=limit + 1)
    items = [
        Reading(
            metric=r.metric, ts=r.ts, value=r.value, quality=r.quality, received_at=r.received_at
        )
        for r in rows[:limit]
    ]
    nxt = None
    if len(rows) > limit:
        last = items[-1]
        nxt = encode_cursor({"ts": last.ts.isoformat(), "metric": last.metric})
    return ReadingPage(device_id=device_id, items=items, next_cursor=nxt)
