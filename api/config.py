"""The API's own knobs, read from :class:`core.settings.Settings` where the field exists.

Operators set the common ones through ``core/settings.py`` (``DOTHI_API_*``, README table); the
rest keep the defaults below. Tests and the benchmark pass overrides directly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.mqtturl import parse_mqtt_url

if TYPE_CHECKING:
    from core.settings import Settings


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """Settings of one API process.

    Attributes:
        db_url: the database.
        broker_host: the MQTT broker /readyz checks (TCP only).
        broker_port: its port.
        cors_origins: origins allowed to call the API from a browser (the portal); empty = no
            CORS headers at all.
        docs: serve ``/docs`` and ``/openapi.json``.
        pool_min: async pool connections kept open.
        pool_max: async pool connections at most.
        pool_timeout_s: longest a request waits for a connection before a 503.
        pool_max_waiting: requests queued for a connection before new ones get a 503 at once.
        sync_pool_max: connections for the shared synchronous store functions (aggregates …).
        key_rate_per_s: default token-bucket refill rate of a key (requests per second).
        key_burst: default bucket size of a key.
        anon_rate_per_s: refill rate per client address without a key.
        anon_burst: bucket size per client address without a key.
        key_cache_s: how long a looked-up key is trusted; a revocation takes effect within it.
        response_cache_s: how long /latest and /aggregates answers are reused for identical
            requests of callers who see the same devices (0 = off).
        aqi_cache_s: how long a station's computed AQI of the current hour is reused (late data
            for the hour shows up within it; the next hour is computed as soon as it starts).
        page_max: largest page of raw readings or devices.
        aggregate_max_points: buckets × series one aggregate request may return.
        raw_max_days: longest range of one raw readings query.
        export_max_days: longest range of one export.
        export_max_rows: rows of one export at most.
        export_concurrency: exports streaming at once per process.
        live_poll_s: how often the live stream polls the latest table.
        live_lookback_s: how late a reading may arrive and still be streamed.
        live_max_clients: live streams at once per process.
        live_heartbeat_s: comment lines keep idle streams (and proxies) alive.
        workers: uvicorn worker processes for ``dothi api``.
        access_log: uvicorn's access log.
    """

    db_url: str
    broker_host: str = "127.0.0.1"
    broker_port: int = 1883
    cors_origins: tuple[str, ...] = ()
    docs: bool = True
    pool_min: int = 2
    pool_max: int = 10
    pool_timeout_s: float = 5.0
    pool_max_waiting: int = 200
    sync_pool_max: int = 4
    key_rate_per_s: float = 20.0
    key_burst: int = 60
    anon_rate_per_s: float = 5.0
    anon_burst: int = 30
    key_cache_s: float = 5.0
    response_cache_s: float = 1.0
    aqi_cache_s: float = 60.0
    page_max: int = 5000
    aggregate_max_points: int = 100_000
    raw_max_days: int = 31
    export_max_days: int = 366
    export_max_rows: int = 2_000_000
    export_concurrency: int = 4
    live_poll_s: float = 1.0
    live_lookback_s: float = 900.0
    live_max_clients: int = 500
    live_heartbeat_s: float = 15.0
    workers: int = 1
    access_log: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ApiConfig:
        """Build from settings: ``api_<name>`` fields where they exist, else the defaults.

        Args:
            settings: the process settings.
            **overrides: field values that win over both (tests, benchmarks).
        """
        values: dict[str, Any] = {"db_url": settings.db_url()}
        host, port = _broker(settings)
        values.update(broker_host=host, broker_port=port)
        for f in dataclasses.fields(cls):
            if f.name in values:
                continue
            current = getattr(settings, f"api_{f.name}", None)
            if current is None:
                continue
            if f.name == "cors_origins":
                items = current.split(",") if isinstance(current, str) else current
                values[f.name] = tuple(o.strip() for o in items if o.strip())
            else:
                values[f.name] = current
        values.update(overrides)
        return cls(**values)


def _broker(settings: Settings) -> tuple[str, int]:
    if settings.mqtt_url is None:
        return "127.0.0.1", settings.mqtt_port
    target = parse_mqtt_url(settings.mqtt_url)
    return target.host, target.port
