"""Server-Sent Events: new latest values (and alert events) as they are stored.

Each event carries ``id: <ms>-<alert>``, the stream's watermark: the newest reading timestamp
sent so far (milliseconds since the epoch) and the newest alert event id. A client reconnecting
with ``Last-Event-ID`` first gets every series whose latest value is newer than that timestamp
minus the poll look-back, and every alert event after that id, so nothing in between is missed;
some readings may come twice (dedupe on device_id, metric, ts).
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from api import objects
from api.const import PREFIX, SSE
from api.deps import Caller, State
from api.live import LiveFilter, LiveHub, TooManyListeners
from api.params import AreaId, DeviceIdList, Kind, MetricList, check_metrics
from api.problems import invalid, unavailable
from api.routes.common import ERRORS, NOT_FOUND
from core.metrics import METRICS
from store.alertviews import AlertFeedRow
from store.live import LiveRow, area_subtree

router = APIRouter(prefix=PREFIX, tags=["live"], responses=ERRORS)

RETRY_MS: Final = 3000
# One Server-Sent Event (OpenAPI 3.2 ``itemSchema``; tools reading 3.1 documents honour it too).
_EVENT: Final = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": ["reading", "alert", "error"]},
        "id": {"type": "string", "description": "<newest reading ms>-<newest alert event id>"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "description": "reading: device_id, metric, ts, value, unit, quality; alert:"
            " alert_id, event, state, severity, device_id, metric, area_id, title, at",
        },
        "retry": {"type": "integer"},
    },
}
MAX_RESUME: Final = timedelta(days=1)


@router.get(
    "/live",
    summary="Live stream of new readings (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={
        **NOT_FOUND,
        200: {"content": {SSE: {"itemSchema": _EVENT}}, "description": "event stream"},
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
        alerts=caller.key_id is not None,  # alert events need a key, like /alerts
    )
    if state.live.full:
        raise unavailable("too many live streams on this server; retry shortly")

    async def key_still_valid() -> bool:
        # A stream outlives its request: a key revoked meanwhile must end it, not only refuse
        # the next request. Checked through the key cache, so within key_cache_s.
        if caller.key_id is None:
            return True
        key = await state.keys.get(caller.key_id)
        return key is not None and key.revoked_at is None

    timing = (duration, state.config.live_heartbeat_s, max(1.0, state.config.key_cache_s))
    stream = _events(state.live, flt, resume, timing, key_still_valid)
    return StreamingResponse(
        stream,
        media_type=SSE,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _resume_point(last_event_id: str) -> tuple[datetime, int | None]:
    ms_text, _, alert_text = last_event_id.partition("-")
    try:
        t = datetime.fromtimestamp(int(ms_text) / 1000, UTC)
        alert_id = int(alert_text) if alert_text else None
    except (ValueError, OverflowError, OSError):
        raise invalid("header", "last-event-id", "not an event id of this stream") from None
    if alert_id is not None and alert_id < 0:
        raise invalid("header", "last-event-id", "not an event id of this stream")
    return max(t, datetime.now(UTC) - MAX_RESUME), alert_id


class _Mark:
    """A stream's watermark: newest reading time and alert event id sent."""

    def __init__(self, ts: datetime, alert_id: int) -> None:
        self.ts = ts
        self.alert_id = alert_id

    def advance(self, rows: list[LiveRow | AlertFeedRow]) -> str:
        for r in rows:
            if isinstance(r, AlertFeedRow):
                self.alert_id = max(self.alert_id, r.event_id)
            else:
                self.ts = max(self.ts, r.ts)
        return f"{int(self.ts.timestamp() * 1000)}-{self.alert_id}"


async def _events(
    hub: LiveHub,
    flt: LiveFilter,
    resume: tuple[datetime, int | None] | None,
    timing: tuple[int | None, float, float],
    key_still_valid: Callable[[], Awaitable[bool]],
) -> AsyncIterator[str]:
    duration, heartbeat_s, recheck_s = timing
    deadline = time.monotonic() + duration if duration else None
    next_check = last_sent = time.monotonic()
    next_check += recheck_s
    # Subscribed here, not in the route: a generator that never starts never unsubscribes.
    try:
        sub = await hub.subscribe(flt)
    except TooManyListeners:
        yield 'event: error\ndata: {"detail": "too many live streams; reconnect later"}\n\n'
        return
    mark = _Mark(resume[0] if resume else datetime.now(UTC), hub.alert_watermark)
    try:
        yield f"retry: {RETRY_MS}\n\n"
        if resume is not None:
            ts, alert_id = resume
            rows = await hub.catch_up(flt, ts - hub.lookback, alert_id)
            if rows:
                yield _format(rows, mark.advance(rows))
        while True:
            wait = heartbeat_s
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    return
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + recheck_s
                if not await key_still_valid():
                    yield 'event: error\ndata: {"detail": "the API key was revoked"}\n\n'
                    return
            try:
                batch = await asyncio.wait_for(sub.queue.get(), min(wait, recheck_s))
            except TimeoutError:
                if time.monotonic() - last_sent >= heartbeat_s:
                    last_sent = time.monotonic()
                    yield ": keep-alive\n\n"
                continue
            if batch is None:
                yield 'event: error\ndata: {"detail": "stream ended by the server; reconnect"}\n\n'
                return
            last_sent = time.monotonic()
            yield _format(batch, mark.advance(batch))
    finally:
        hub.unsubscribe(sub)


def _format(rows: list[LiveRow | AlertFeedRow], event_id: str) -> str:
    parts = []
    for r in rows:
        if isinstance(r, AlertFeedRow):
            alert = {
                "alert_id": r.alert_id,
                "event": r.event,
                "state": r.to_state,
                "severity": r.severity,
                "device_id": r.device_id,
                "metric": r.metric,
                "area_id": r.area_id,
                "title": r.title,
                "at": r.at.isoformat(),
            }
            parts.append(f"event: alert\nid: {event_id}\ndata: {json.dumps(alert)}\n\n")
            continue
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
