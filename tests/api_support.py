"""Shared pieces of the API tests: seeded city, keys, an app client and a real uvicorn server."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import uvicorn
from fastapi import FastAPI

from api import keys as keyfmt
from api.app import create_app
from api.config import ApiConfig
from core.settings import load_settings
from dothi.stack import free_port
from store import devices, keys
from store.loader import load_batch

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
HOUR0 = NOW.replace(minute=0) - timedelta(hours=1)  # the latest complete hour

# Two places: the city (ward below it) and a district. Public and private devices in both.
CITY, WARD, DISTRICT = "tp-nam-dinh", "tp-nam-dinh-tran-hung-dao", "hai-hau"
DEVICES = (
    devices.Device("aq-pub", "air_quality", "Public station", WARD, 20.428, 106.177, public=True),
    devices.Device("aq-priv", "air_quality", "Private station", CITY, 20.42, 106.17),
    devices.Device("meter-priv", "smart_meter", "District meter", DISTRICT, 20.15, 106.28),
    devices.Device(
        "meter-pub", "smart_meter", "Public meter", DISTRICT, 20.16, 106.29, public=True
    ),
)


@dataclass(frozen=True)
class Keys:
    """Tokens of the keys the tests use."""

    public: str
    all: str
    writer: str
    admin: str
    district: str
    revoked: str
    revoked_id: str


def seed(url: str) -> None:
    """Devices and readings: a reading a minute from 12 h before HOUR0 up to NOW (never later:
    the live stream tests need the latest values to be in the past)."""
    with psycopg.connect(url) as conn:
        with conn.transaction():
            devices.upsert(conn, list(DEVICES))
        start = HOUR0 - timedelta(hours=12)
        rows: list[tuple[str, str, datetime, float, int]] = []
        for i in range(int((NOW - start) / timedelta(minutes=1))):
            t = start + timedelta(minutes=i)
            for dev, pm in (("aq-pub", 30.0), ("aq-priv", 90.0)):
                rows.append((dev, "pm25", t, pm + (i % 7), 1))
                rows.append((dev, "pm10", t, pm * 1.5, 1))
                rows.append((dev, "no2", t, 40.0, 1))
            rows.extend((d, "energy", t, 1000.0 + i * 0.5, 1) for d in ("meter-priv", "meter-pub"))
        load_batch(conn, rows)


def make_keys(url: str) -> Keys:
    """Issue the test keys (one revoked)."""
    made: dict[str, str] = {}
    spec: dict[str, tuple[list[str], list[str] | None]] = {
        "public": (["read:public"], None),
        "all": (["read:all"], None),
        "writer": (["read:all", "alerts:write"], None),
        "admin": (["admin"], None),
        "district": (["read:all"], [DISTRICT]),
        "revoked": (["read:all"], None),
    }
    with psycopg.connect(url) as conn, conn.transaction():
        for name, (scopes, areas) in spec.items():
            new = keyfmt.generate()
            keys.insert(
                conn, new.key_id, name, scopes, new.secret_hash, area_ids=areas,
                rate_per_s=1000.0, burst=1000,
            )  # fmt: skip
            made[name] = new.token
            made[f"{name}_id"] = new.key_id
        keys.revoke(conn, made["revoked_id"])
    return Keys(
        made["public"],
        made["all"],
        made["writer"],
        made["admin"],
        made["district"],
        made["revoked"],
        made["revoked_id"],
    )


def config(url: str, **overrides: Any) -> ApiConfig:
    """An API config for tests: tight timeouts, fast polling."""
    values: dict[str, Any] = {
        "db_url": url,
        "broker_port": free_port(),  # nothing listens: /readyz reports the broker down
        "pool_min": 1,
        "pool_max": 4,
        "pool_timeout_s": 2.0,
        "live_poll_s": 0.1,
        "live_heartbeat_s": 1.0,
        "key_cache_s": 0.5,
        "response_cache_s": 0.0,  # tests change data between requests; one test turns it on
        "aqi_cache_s": 0.0,
    }
    values.update(overrides)
    return ApiConfig(**values)


def app_for(url: str, **overrides: Any) -> FastAPI:
    """An app on this database."""
    return create_app(load_settings(database_url=url), config=config(url, **overrides))


@contextlib.contextmanager
def client_for(url: str, **overrides: Any) -> Iterator[httpx.Client]:
    """An HTTP client of the app served by uvicorn on this database.

    A real server rather than Starlette's TestClient: streams (exports, SSE) behave as they do
    in production, and the TestClient's httpx transport is deprecated in this Starlette.
    """
    with served(app_for(url, **overrides)) as base, httpx.Client(base_url=base, timeout=60) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    """The Authorization header for a key."""
    return {"Authorization": f"Bearer {token}"}


@contextlib.contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """Run the app under uvicorn on a free loopback port; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            msg = "uvicorn did not start"
            raise RuntimeError(msg)
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
