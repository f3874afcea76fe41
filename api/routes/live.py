"""Server-Sent Events: new latest values (and alert events) as they are stored.

Each event carries ``id:``, the stream's watermark: the newest reading timestamp sent so far
(milliseconds since the epoch). A client reconnecting with ``Last-Event-ID`` first gets every
series whose latest value is newer than that watermark minus the poll look-back, so nothing in
between is missed; some values may come twice (dedupe on device_id, metric, ts).
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from api import objects
from api.const import SSE
from api.deps import Caller, State
from api.live import LiveFilter, LiveHub, TooManyListeners
from api.params import AreaId, DeviceIdList, Kind, MetricList, check_metrics
from api.problems import invalid, unavailable
from api.routes.common import ERRORS, NOT_FOUND
from core.metrics import METRICS
from store.live import LiveRow, area_subtree

router = APIRouter(tags=["live"], responses=ERRORS)

RETRY_MS: Final = 3000
MAX_RESUME: Final = timedelta(days=1)


@router.get(
    "/live",
    summary="Live stream of new readings (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={
        **NOT_FOUND,
        200: {"content": {SSE: {"schema": {"type": "string"}}}, "description": "event stream"},
    },
)
async def live(  # noqa: PLR0917 (one parameter per filter)
    caller: Caller,
    state: State,
    request: Request,
    device_ids: DeviceIdList = None,
    area_id: AreaId = None,
    kind: Kind = None,
    metrics: MetricList = None,
    duration: Annotated[
        int | None, Query(ge=1, le=86400, description="end the stream after this many seconds")
    ] = None,
    last_event_id: Annotated[
        str | None, Header(max_length=64, description="resume after this event id")
    ] = None,
) -> StreamingResponse:
    """``event: reading`` per new latest value the caller may see, filtered by device, area
    (including the areas below it), kind and metric; ``: keep-alive`` comments when idle."""
    mets = check_metrics(metrics)
    resume = _resume_point(last_event_id) if last_event_id else None
    areas = None
    async with state.db.pool.connection() as conn:
        if device_ids:
            where = (request.method, request.url.path)
            await objects.devices(conn, state, caller, device_ids, where)
        if area_id is not None:
            await objects.area(conn, area_id)
            areas = await area_subtree(conn, area_id)
    flt = LiveFilter(
        visibility=caller.visibility,
        device_ids=frozenset(device_ids) if device_ids else None,
        area_ids=areas,
        kinds=frozenset([kind]) if kind else None,
        metrics=frozenset(mets) if mets else None,
    )
    if state.live.full:
        raise unavailable("too many live streams on this server; retry shortly")
    stream = _events(state.live, flt, resume, duration, state.config.live_heartbeat_s)
    return StreamingResponse(
        stream,
        media_type=SSE,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _resume_point(last_event_id: str) -> datetime:
    try:
        ms = int(last_event_id.split("-", 1)[0])
        t = datetime.fromtimestamp(ms / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        raise invalid("header", "last-event-id", "not an event id of this stream") from None
    return max(t, datetime.now(UTC) - MAX_RESUME)


async def _events(
    hub: LiveHub,
    flt: LiveFilter,
    resume: datetime | None,
    duration: int | None,
    heartbeat_s: float,
) -> AsyncIterator[str]:
    deadline = time.monotonic() + duration if duration else None
    watermark = resume or datetime.now(UTC)
    # Subscribed here, not in the route: a generator that never starts never unsubscribes.
    try:
        sub = await hub.subscribe(flt)
    except TooManyListeners:
        yield 'event: error\ndata: {"detail": "too many live streams; reconnect later"}\n\n'
        return
    try:
        yield f"retry: {RETRY_MS}\n\n"
        if resume is not None:
            rows = await hub.catch_up(flt, resume - hub.lookback)
            if rows:
                watermark = max(watermark, *(r.ts for r in rows))
                yield _format(rows, watermark)
        while True:
            wait = heartbeat_s
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    return
            try:
                batch = await asyncio.wait_for(sub.queue.get(), wait)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if batch is None:
                yield 'event: error\ndata: {"detail": "stream ended by the server; reconnect"}\n\n'
                return
            watermark = max(watermark, *(r.ts for r in batch))
            yield _format(batch, watermark)
    finally:
        hub.unsubscribe(sub)


def _format(rows: list[LiveRow], watermark: datetime) -> str:
    event_id = int(watermark.timestamp() * 1000)
    parts = []
    for r in rows:
        data = {
            "device_id": r.device_id,
            "metric": r.metric,
            "ts": r.ts.isoformat(),
            "value": r.value,
            "unit": METRICS[r.metric].unit if r.metric in METRICS else "",
            "quality": r.quality,
        }
        parts.append(f"event: reading\nid: {event_id}\ndata: {json.dumps(data)}\n\n")
    return "".join(parts)
