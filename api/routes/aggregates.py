"""Aggregates over any interval, from the right rollup tier (store.queries.series)."""

import csv
import io
import json
import math
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Annotated, Final, Literal

from fastapi import APIRouter, Query, Request, Response

from api import objects
from api.const import CSV, NDJSON, PREFIX
from api.deps import Caller, State
from api.models import Aggregates, Point, Series
from api.params import (
    Align,
    AreaId,
    DeviceIdList,
    End,
    Format,
    Kind,
    MetricList,
    Start,
    check_metrics,
    check_range,
    parse_interval,
)
from api.problems import invalid, too_large
from api.routes.common import ERRORS, NOT_FOUND
from core.metrics import METRICS
from store import catalog, queries
from store.queries import AggSeries

router = APIRouter(prefix=PREFIX, tags=["aggregates"], responses=ERRORS)

Func = Literal["avg", "min", "max", "sum", "count", "first", "last"]
MAX_DEVICES: Final = 500
_ALT: Final = {
    "content": {
        CSV.split(";")[0]: {"schema": {"type": "string"}},
        NDJSON: {"schema": {"type": "string"}},
    }
}


@router.get(
    "/aggregates",
    summary="Aggregated readings per bucket",
    response_model=Aggregates,
    response_model_exclude_unset=True,
    responses={**NOT_FOUND, 200: _ALT},
)
async def aggregates(  # noqa: PLR0917 (one parameter per query option)
    caller: Caller,
    state: State,
    request: Request,
    start: Start,
    end: End,
    metrics: MetricList = None,
    device_ids: DeviceIdList = None,
    area_id: AreaId = None,
    kind: Kind = None,
    interval: Annotated[
        str, Query(description="bucket width: 30s, 15m, 1h, 1d, 1w", max_length=10)
    ] = "1h",
    funcs: Annotated[
        list[Func] | None, Query(alias="func", description="avg (default), min, max, sum …")
    ] = None,
    align: Annotated[
        Align, Query(description="bucket boundaries in UTC, or local (Asia/Ho_Chi_Minh) days")
    ] = "utc",
    combine: Annotated[
        bool, Query(description="one series per metric over all the devices")
    ] = False,
    fmt: Annotated[Format, Query(alias="format")] = "json",
) -> Response:
    """Buckets of ``interval`` over ``[start, end)`` for several devices and metrics at once.

    Name devices with ``device_id`` (repeatable), or take every visible device of an area
    (``area_id``, including the areas below it) and/or a ``kind``. Local alignment starts days
    at midnight in Asia/Ho_Chi_Minh. The answer comes from the coarsest exact rollup tier,
    with raw readings for buckets not rolled up yet (``source`` says which). At most
    ``aggregate_max_points`` (100,000) buckets × series per request.
    """
    cfg = state.config
    start, end = check_range(start, end)
    width = parse_interval(interval)
    mets = check_metrics(metrics, required=True) or []
    chosen: list[Func] = list(dict.fromkeys(funcs or ["avg"]))
    if not device_ids and area_id is None and kind is None:
        raise invalid("query", "device_id", "give device_id, area_id or kind")
    media = {"csv": CSV, "ndjson": NDJSON}.get(fmt, "application/json")
    # Dashboards refresh identical panels for every viewer: the same question from a caller who
    # sees the same devices gets the same answer for response_cache_s, without touching the
    # pool. Only answers that passed the object-level checks below are stored, and the key
    # holds the visibility, so a hit never skips a check that would fail.
    key = (
        "agg", caller.visibility, tuple(device_ids or ()), area_id, kind, tuple(mets), start,
        end, width, tuple(chosen), align, combine, fmt,
    )  # fmt: skip

    async def compute() -> bytes:
        async with state.db.pool.connection() as conn:
            if device_ids:
                where = (request.method, request.url.path)
                ids = await objects.devices(conn, state, caller, device_ids, where)
            else:
                if area_id is not None:
                    await objects.area(conn, area_id)
                flt = catalog.DeviceFilter(kind=kind, area_id=area_id)
                ids = await objects.area_devices(conn, caller, flt, MAX_DEVICES)
        buckets = math.ceil((end - start) / width)
        series = len(mets) * (1 if combine else max(1, len(ids)))
        if buckets * series > cfg.aggregate_max_points:
            raise too_large(
                "interval",
                f"{buckets} buckets x {series} series exceeds {cfg.aggregate_max_points} points;"
                " use a longer interval, a shorter range or fewer series",
            )
        # Read as columns (no object per bucket); each format walks them bucket by bucket.
        found: list[AggSeries] = []
        if ids:
            try:
                found = await state.db.run_sync(
                    queries.series,
                    ids,
                    mets,
                    start,
                    end,
                    width,
                    chosen,
                    align == "local",
                    combine_devices=combine,
                )
            except ValueError as exc:  # the store refuses what the checks above let through
                raise invalid("query", "interval", str(exc)) from None
        if fmt == "csv":
            return _csv(found, chosen).encode()
        if fmt == "ndjson":
            return _ndjson(found, chosen).encode()
        return (
            Aggregates(
                start=start,
                end=end,
                interval_s=int(width.total_seconds()),
                align=align,
                funcs=list(chosen),
                series=[_series(s, chosen) for s in found],
            )
            .model_dump_json(exclude_unset=True)
            .encode()
        )

    return Response(await state.responses.get_or_compute(key, compute), media_type=media)


def _buckets(
    found: list[AggSeries], extra: Sequence[str]
) -> Iterator[tuple[AggSeries, datetime, int, list[float | None]]]:
    """Each bucket of each series: (series, bucket, count, the ``extra`` values in order)."""
    for one in found:
        columns = [one.values[f] for f in extra]
        for b, c, *vs in zip(one.buckets, one.counts, *columns, strict=True):
            yield one, b, c, vs


def _unit(metric: str) -> str:
    return METRICS[metric].unit if metric in METRICS else ""


def _series(found: AggSeries, funcs: Sequence[str]) -> Series:
    extra = [f for f in funcs if f != "count"]
    return Series(
        device_id=found.device_id,
        metric=found.metric,
        unit=_unit(found.metric),
        source=sorted({s for src in set(found.sources) for s in src.split("+")}),
        points=[
            Point.model_construct(None, bucket=b, count=c, **dict(zip(extra, vs, strict=True)))
            for _, b, c, vs in _buckets([found], extra)
        ],
    )


def _csv(found: list[AggSeries], funcs: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    extra = [f for f in funcs if f != "count"]
    w.writerow(["bucket", "device_id", "metric", "unit", "count", *extra])
    for one, b, c, vs in _buckets(found, extra):
        w.writerow(
            [b.isoformat(), one.device_id or "", one.metric, _unit(one.metric), c]
            + [_num(v) for v in vs]
        )
    return buf.getvalue()


def _ndjson(found: list[AggSeries], funcs: Sequence[str]) -> str:
    extra = [f for f in funcs if f != "count"]
    lines = [
        json.dumps(
            {
                "bucket": b.isoformat(),
                "device_id": one.device_id,
                "metric": one.metric,
                "count": c,
                **dict(zip(extra, vs, strict=True)),
            },
            ensure_ascii=False,
        )
        for one, b, c, vs in _buckets(found, extra)
    ]
    return "".join(line + "\n" for line in lines)


def _num(v: float | None) -> str:
    return "" if v is None else repr(float(v))
