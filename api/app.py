"""The FastAPI application: ``create_app(settings)``."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import openapi, problems
from api.config import ApiConfig
from api.deps import single_query_values
from api.metrics import MetricsMiddleware
from api.routes import (
    admin,
    aggregates,
    alerts,
    aqi,
    areas,
    devices,
    energy,
    exports,
    live,
    meta,
    portal,
    readings,
)
from api.sta import router as sta_router
from api.state import ApiState
from core.settings import load_settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from core.settings import Settings

DESCRIPTION = """
Versioned REST API of the dothi smart-city platform (Nam Định): areas, devices, latest values,
raw readings, aggregates from rollup tiers, VN_AQI, alerts, energy, exports and a live stream.

**Keys.** Send `Authorization: Bearer dk_<id>_<secret>` (or `X-API-Key`). Without a key you see
what the public portal sees: public devices and AQI. Scopes: `read:public`, `read:all`,
`alerts:write`, `admin`.

**Errors** are `application/problem+json` (RFC 9457) with `errors` naming offending fields.
**Limits**: per-key token bucket (429 + `Retry-After`), capped pages, ranges and exports (422
naming the limit). See docs/api.md for examples.
"""


def create_app(settings: Settings, *, config: ApiConfig | None = None) -> FastAPI:
    """The API for these settings.

    Args:
        settings: process settings (database, broker, ``api_*`` fields where they exist).
        config: explicit API config (tests, benchmarks); built from ``settings`` if None.
    """
    cfg = config or ApiConfig.from_settings(settings)
    state = ApiState(cfg)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    app = FastAPI(
        title="dothi API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs" if cfg.docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if cfg.docs else None,
    )
    app.state.dothi = state
    problems.install(app)
    app.include_router(meta.probes)
    # Routers carry the /api/v1 prefix themselves, so a route's template (metrics label) is
    # its full path.
    one_value = [Depends(single_query_values)]
    for module in (meta, areas, devices, readings, aggregates, aqi, alerts, energy, exports):
        app.include_router(module.router, dependencies=one_value)
    app.include_router(live.router, dependencies=one_value)
    app.include_router(admin.router, dependencies=one_value)
    app.include_router(sta_router)  # SensorThings API 1.1 (read) at /sta/v1.1: api/sta/
    portal.install(app)  # /portal and /ops pages, their static files: api/portal/, api/ops/

    def custom_openapi() -> dict[str, Any]:
        return openapi.build(app)

    app.openapi = custom_openapi  # type: ignore[method-assign]
    if cfg.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cfg.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Last-Event-ID"],
            expose_headers=["Retry-After", "X-Export-Row-Limit"],
            max_age=600,
        )
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory api.app:app_from_env`` (several worker processes)."""
    return create_app(load_settings())
