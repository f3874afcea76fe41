"""Liveness, readiness, Prometheus metrics and the metric catalogue."""

import asyncio
import contextlib

import psycopg
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import PoolTimeout

from api.const import PREFIX
from api.deps import Caller, State
from api.models import Health, MetricInfo, Problem
from api.problems import ApiProblem
from api.routes.common import ERRORS
from core.metrics import METRICS

probes = APIRouter(tags=["operations"])
router = APIRouter(prefix=PREFIX, tags=["reference"], responses=ERRORS)

_CHECK_TIMEOUT_S = 2.0


@probes.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> Health:
    """Always 200 while the process runs; it checks nothing else (see /readyz)."""
    return Health(status="ok")


@probes.get(
    "/readyz",
    summary="Readiness: database and broker reachable",
    responses={503: {"model": Problem, "description": "A dependency is unreachable"}},
)
async def readyz(state: State) -> Health:
    """200 when the database answers a query and the broker accepts a TCP connection."""
    checks = {"database": "ok", "broker": "ok"}
    try:
        async with state.db.pool.connection(timeout=_CHECK_TIMEOUT_S) as conn:
            await conn.execute("SELECT 1")
    except (psycopg.Error, PoolTimeout):
        checks["database"] = "unreachable"
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(state.config.broker_host, state.config.broker_port),
            _CHECK_TIMEOUT_S,
        )
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    except (OSError, TimeoutError):
        checks["broker"] = "unreachable"
    down = [name for name, v in checks.items() if v != "ok"]
    if down:
        raise ApiProblem(
            503,
            "not-ready",
            "Not ready",
            f"unreachable: {', '.join(down)}",
            headers={"Retry-After": "5"},
        )
    return Health(status="ready", checks=checks)


@probes.get(
    "/metrics",
    summary="Prometheus metrics of this API process",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics(state: State) -> Response:
    """Request counts and latencies by route template, live streams, exports, audit drops."""
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/metrics", summary="The metric catalogue")
async def metric_catalogue(_: Caller) -> list[MetricInfo]:
    """Canonical metric names and units (reference data: no key needed)."""
    return [
        MetricInfo(name=m.name, unit=m.unit, description=m.description, counter=m.counter)
        for m in METRICS.values()
    ]
