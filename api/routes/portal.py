"""The provincial portal (``/portal``) and the operations console (``/ops``).

Both are static pages (``api/portal/``, ``api/ops/``: hand-written HTML, CSS and JavaScript, no
CDN, nothing fetched from elsewhere) that call the API from the browser. Anonymous JSON
feeds live here because ``/api/v1`` has no anonymous equivalent: the portal's public alerts
(alerts need a key there) and 24 hours of hourly VN_AQI for every public station in one
request (one per station would run into the anonymous rate limit on a page load); a third
lists the VN_AQI categories for the legend (from analytics.aqi, so the page never disagrees
with the API). They only ever show public devices, whatever key the caller sends, and are
left out of the OpenAPI document: they are the portal's, not a versioned API.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict

from analytics import aqi as vn
from api.deps import Caller, Conn
from store import alertviews, aqihistory, catalog
from store.visibility import PUBLIC_ONLY

PORTAL_DIR: Final = Path(__file__).resolve().parents[1] / "portal"
OPS_DIR: Final = Path(__file__).resolve().parents[1] / "ops"

# Pages load only their own files and call only this origin (the API and its live stream).
_PAGE_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
        " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}
# Device kinds whose alerts the public sees, and what the portal calls them.
PUBLIC_ALERT_KINDS: Final = {"river_gauge": "flood", "air_quality": "air"}
HISTORY_HOURS: Final = 24
MAX_STATIONS: Final = 1000

router = APIRouter(include_in_schema=False)


class PublicAlert(BaseModel):
    """An active flood or air-quality alert of a public device."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int
    category: str
    severity: str
    state: str
    title: str
    device_id: str
    device_name: str | None
    metric: str
    area_id: str | None
    value: float | None
    threshold: float | None
    opened_at: datetime


class Category(BaseModel):
    """A VN_AQI band (QĐ 1459/QĐ-TCMT Bảng 1) for the portal's legend."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    level: int
    low: int
    high: int
    name_vi: str
    name_en: str
    colour_hex: str


class HourAqi(BaseModel):
    """One station's VN_AQI of one hour (``hour`` = its start, UTC)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hour: datetime
    value: int
    category: str
    colour_hex: str
    dominant: str


def _page(path: Path) -> FileResponse:
    return FileResponse(path, media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)


@router.get("/portal")
async def portal_root() -> RedirectResponse:
    """``/portal`` → ``/portal/`` so the page's relative asset paths resolve."""
    return RedirectResponse("/portal/", status_code=308)


@router.get("/portal/")
async def portal_page() -> FileResponse:
    """The provincial portal."""
    return _page(PORTAL_DIR / "index.html")


@router.get("/ops")
async def ops_page() -> FileResponse:
    """The operations console; ``/ops#alert=<id>`` opens one alert."""
    return _page(OPS_DIR / "index.html")


@router.get("/portal/data/categories")
async def categories() -> list[Category]:
    """The six VN_AQI categories with their official names and colours (the legend)."""
    return [
        Category(
            key=c.key,
            level=c.level,
            low=c.low,
            high=c.high,
            name_vi=c.name_vi,
            name_en=c.name_en,
            colour_hex=c.hex,
        )
        for c in vn.CATEGORIES
    ]


@router.get("/portal/data/alerts")
async def public_alerts(_: Caller, conn: Conn) -> list[PublicAlert]:
    """Open and acknowledged warning/critical alerts of public river gauges and stations,
    most severe first, then newest."""
    rows = await alertviews.listing(
        conn,
        PUBLIC_ONLY,
        states=["open", "acknowledged"],
        severities=["warning", "critical"],
        area_id=None,
        device_id=None,
        before_id=None,
        limit=200,
    )
    if not rows:
        return []
    flt = catalog.DeviceFilter(ids=sorted({a.device_id for a in rows}))
    devices = {d.id: d for d in await catalog.devices(conn, PUBLIC_ONLY, flt, limit=MAX_STATIONS)}
    out = []
    for a in rows:
        d = devices.get(a.device_id)
        if d is None or d.kind not in PUBLIC_ALERT_KINDS:
            continue
        out.append(
            PublicAlert(
                id=a.id,
                category=PUBLIC_ALERT_KINDS[d.kind],
                severity=a.severity,
                state=a.state,
                title=a.title,
                device_id=a.device_id,
                device_name=d.name,
                metric=a.metric,
                area_id=a.area_id,
                value=a.value,
                threshold=a.threshold,
                opened_at=a.opened_at,
            )
        )
    out.sort(key=lambda x: (x.severity != "critical", -x.opened_at.timestamp()))
    return out


@router.get("/portal/data/history")
async def public_history(_: Caller, conn: Conn) -> dict[str, list[HourAqi]]:
    """The last 24 hours of hourly VN_AQI (analytics AQI job) of every public station."""
    flt = catalog.DeviceFilter(kind="air_quality")
    stations = await catalog.devices(conn, PUBLIC_ONLY, flt, limit=MAX_STATIONS)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=HISTORY_HOURS)
    out: dict[str, list[HourAqi]] = {}
    for s in stations:
        # One station per call: aqihistory keeps the worst station per period otherwise.
        rows = await aqihistory.history(conn, [s.id], "hour", start, end)
        points = []
        for r in rows:
            if not isinstance(r.period, datetime):
                continue
            cat = vn.category(r.value)
            points.append(
                HourAqi(
                    hour=r.period,
                    value=r.value,
                    category=cat.key,
                    colour_hex=cat.hex,
                    dominant=r.dominant,
                )
            )
        out[s.id] = points
    return out


def install(app: FastAPI) -> None:
    """Serve the portal and the console, and their static files, on ``app``."""
    app.include_router(router)
    app.mount("/portal/assets", StaticFiles(directory=PORTAL_DIR), name="portal-assets")
    app.mount("/ops/assets", StaticFiles(directory=OPS_DIR), name="ops-assets")
