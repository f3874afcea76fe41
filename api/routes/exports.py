"""Streamed exports of raw readings as CSV or NDJSON, in constant memory.

Limits (documented in docs/api.md): a range of at most ``export_max_days`` (366) and at most
``export_max_rows`` (2,000,000) rows. The row count is estimated from the daily rollup before
anything is sent, so most oversize exports get a 422 naming the limit; readings not rolled up
yet can still push an export over the cap mid-stream, and then the stream ends with an explicit
error record (CSV: a ``# error:`` line; NDJSON: an ``{"error": …}`` problem object) instead of
silently stopping.
"""

import csv
import io
import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from api import objects
from api.auth import Principal
from api.const import CSV, NDJSON, PREFIX
from api.deps import KeyHolder, State
from api.params import (
    AreaId,
    DeviceIdList,
    End,
    Kind,
    MetricList,
    Start,
    check_metrics,
    check_range,
)
from api.problems import ApiProblem, body, invalid, rate_limited, too_large
from api.routes.common import ERRORS, FORBIDDEN, NOT_FOUND
from api.state import ApiState
from store import catalog, readings
from store.readings import Reading

log = logging.getLogger(__name__)

router = APIRouter(prefix=PREFIX, tags=["exports"], responses=ERRORS)

MAX_DEVICES: Final = 2000
_CONTENT: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "content": {
            CSV.split(";")[0]: {"schema": {"type": "string"}},
            NDJSON: {"schema": {"type": "string"}},
        },
        "description": "The readings, streamed",
    }
}


@router.get(
    "/exports/readings",
    summary="Export raw readings (streamed CSV or NDJSON)",
    response_class=StreamingResponse,
    responses={**_CONTENT, **NOT_FOUND, **FORBIDDEN},
)
async def export_readings(  # noqa: PLR0917 (one parameter per query filter)
    caller: KeyHolder,
    state: State,
    request: Request,
    start: Start,
    end: End,
    device_ids: DeviceIdList = None,
    area_id: AreaId = None,
    kind: Kind = None,
    metrics: MetricList = None,
    fmt: Annotated[Literal["csv", "ndjson"], Query(alias="format")] = "csv",
) -> StreamingResponse:
    """Readings of the chosen devices ordered by device, metric and time. Needs a key.

    Limits: ``export_max_days`` (366) per export and ``export_max_rows`` (2,000,000) rows;
    at most ``export_concurrency`` (4) exports stream at once per API process (else 429).
    """
    cfg = state.config
    start, end = check_range(start, end, cfg.export_max_days)
    mets = check_metrics(metrics)
    where = (request.method, request.url.path)
    async with state.db.pool.connection() as conn:
        if device_ids:
            ids = await objects.devices(conn, state, caller, device_ids, where)
        elif area_id is not None or kind is not None:
            if area_id is not None:
                await objects.area(conn, area_id)
            flt = catalog.DeviceFilter(kind=kind, area_id=area_id)
            ids = await objects.area_devices(conn, caller, flt, MAX_DEVICES)
        else:
            raise invalid("query", "device_id", "give device_id, area_id or kind")
        estimate = await readings.estimate_rows(conn, ids, mets, start, end) if ids else 0
    if estimate > cfg.export_max_rows:
        raise too_large(
            "end",
            f"about {estimate} rows exceed the export limit of {cfg.export_max_rows} rows;"
            " split the range",
        )
    if state.exports.locked():
        raise rate_limited(5, "too many exports are streaming; retry shortly")
    media = CSV if fmt == "csv" else NDJSON
    stream = _stream(state, caller, ids, mets, (start, end), fmt, request.url.path)
    return StreamingResponse(
        stream,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="readings.{fmt}"',
            "X-Export-Row-Limit": str(cfg.export_max_rows),
        },
    )


async def _stream(  # noqa: PLR0917
    state: ApiState,
    caller: Principal,
    ids: Sequence[str],
    metrics: Sequence[str] | None,
    span: tuple[datetime, datetime],
    fmt: str,
    path: str,
) -> AsyncIterator[str]:
    cap = state.config.export_max_rows
    sent = 0
    if fmt == "csv":
        yield "device_id,metric,ts,value,quality\n"
    if not ids:
        return
    # Taken here, not in the route: a generator that never starts never releases.
    async with state.exports:
        state.metrics.exports.inc()
        try:
            async with (
                state.db.pool.connection() as conn,
                aclosing(
                    readings.export_chunks(conn, caller.visibility, ids, metrics, *span)
                ) as chunks,
            ):
                async for chunk in chunks:
                    room = cap - sent
                    part = chunk[:room]
                    sent += len(part)
                    state.metrics.export_rows.inc(len(part))
                    yield _csv(part) if fmt == "csv" else _ndjson(part)
                    if len(chunk) > room:
                        yield _cap_error(fmt, cap, path)
                        break
        finally:
            state.metrics.exports.dec()


def _csv(rows: list[Reading]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerows((r.device_id, r.metric, r.ts.isoformat(), repr(r.value), r.quality) for r in rows)
    return buf.getvalue()


def _ndjson(rows: list[Reading]) -> str:
    return "".join(
        json.dumps(
            {
                "device_id": r.device_id,
                "metric": r.metric,
                "ts": r.ts.isoformat(),
                "value": r.value,
                "quality": r.quality,
            }
        )
        + "\n"
        for r in rows
    )


def _cap_error(fmt: str, cap: int, path: str) -> str:
    detail = f"export stopped at the limit of {cap} rows; split the range and export the rest"
    if fmt == "csv":
        return f"# error: {detail}\n"
    problem = ApiProblem(422, "limit", "Request exceeds a limit", detail)
    doc: dict[str, Any] = body(None, problem)
    doc["instance"] = path
    return json.dumps({"error": doc}) + "\n"
