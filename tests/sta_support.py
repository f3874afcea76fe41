"""Shared pieces of the SensorThings tests: the seeded city, a live server and small helpers.

The city is :func:`tests.api_support.seed` (public and private air-quality stations and
meters, a reading a minute for 13 hours) plus devices for the edge cases of the mapping:

* ``lamp:01``: a ``:`` in its id, no name, no coordinates (placed at its ward's centre), a
  street lamp reporting ``lamp_on`` every 10 minutes;
* ``noise-x``: no coordinates and no area (no Location at all), readings flagged SUSPECT;
* ``aq-pub`` gets a ``temperature`` series after the rollups were refreshed, so one
  Datastream's first reading comes from ``readings`` and the others' from the daily rollup.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import psycopg
from hypothesis import strategies as st

from core.metrics import QUALITY_SUSPECT
from store import devices
from store.loader import load_batch
from store.refresh import refresh
from tests.api_support import HOUR0, NOW, WARD, Keys, app_for, make_keys, seed, served

STA = "/sta/v1.1"

LAMP, NOISE = "lamp:01", "noise-x"
EXTRA = (
    devices.Device(LAMP, "street_light", None, WARD, None, None, public=True),
    devices.Device(NOISE, "noise", "Unplaced noise meter", None, None, None, public=True),
)
START = HOUR0 - timedelta(hours=12)
"""First reading of the seeded series."""
TEMPERATURE_AT = NOW - timedelta(minutes=30)
"""The only reading of aq-pub's temperature series (never rolled up)."""


def seed_sta(url: str) -> Keys:
    """The API tests' city, the edge-case devices, rolled up; return the test keys."""
    seed(url)
    with psycopg.connect(url) as conn:
        with conn.transaction():
            devices.upsert(conn, list(EXTRA))
        rows: list[tuple[str, str, datetime, float, int]] = []
        for i in range(0, int((NOW - START) / timedelta(minutes=1)), 10):
            t = START + timedelta(minutes=i)
            rows.append((LAMP, "lamp_on", t, float((i // 10) % 2), 1))
            quality = QUALITY_SUSPECT if i % 20 == 0 else 1
            rows.append((NOISE, "noise_laeq", t, 55.0 + (i % 7), quality))
        load_batch(conn, rows)
        conn.commit()
        refresh(conn)  # every mark, so the daily rollup knows each series' first reading
        load_batch(conn, [("aq-pub", "temperature", TEMPERATURE_AT, 29.5, 1)])
    return make_keys(url)


@dataclass(frozen=True)
class Service:
    """A live server: an HTTP client on it, its SensorThings root URL and the test keys."""

    client: httpx.Client
    root: str
    keys: Keys

    def get(
        self, path: str, token: str | None = None, q: dict[str, Any] | None = None
    ) -> httpx.Response:
        """GET a path below the service root (``/Things``), with a key and query options."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.client.get(STA + path, params=q, headers=headers)

    def json(self, path: str, token: str | None = None, q: dict[str, Any] | None = None) -> Any:
        """GET and decode, asserting a 200."""
        resp = self.get(path, token, q)
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("application/json")
        return resp.json()

    def follow(self, url: str, token: str | None = None) -> Any:
        """GET an absolute link the service handed out (a nextLink), asserting a 200."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = self.client.get(url, headers=headers)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def walk(
        self, path: str, token: str | None = None, q: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Every entity of a collection, following nextLinks to the end."""
        page = self.json(path, token, q)
        items = list(page["value"])
        while "@iot.nextLink" in page:
            page = self.follow(page["@iot.nextLink"], token)
            items += page["value"]
        return items


@contextlib.contextmanager
def service(url: str) -> Iterator[Service]:
    """Seed ``url`` and serve the API on it under uvicorn."""
    keys = seed_sta(url)
    app = app_for(url, anon_rate_per_s=10_000.0, anon_burst=10_000)
    with served(app) as base, httpx.Client(base_url=base, timeout=60) as client:
        yield Service(client, base + STA, keys)


def problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    """The problem document of an error response, checked for shape and status."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    return body


def sql_rows(url: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Rows of a query against the test database (expected values come from SQL)."""
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


# -- query corpus for property tests ------------------------------------------------------

VALID_FILTERS = (
    "result gt 30 and phenomenonTime ge 2024-01-01T00:00:00Z",
    "not (name eq 'a''b') or startswith(name, 'P')",
    "substringof('station', tolower(name)) and length(trim(name)) add 1 mod 3 lt 9",
    "geo.distance(location, geography'POINT(106.17 20.42)') le 1500.5",
    "st_within(location, geography'POLYGON((106 20, 107 20, 107 21, 106 20))')",
    (
        "year(phenomenonTime) eq 2024 and hour(resultTime) lt 12"
        " and date(phenomenonTime) eq 2024-05-01"
    ),
    "phenomenonTime gt now() sub duration'PT15M' and round(result div 3) eq floor(ceiling(2.5))",
    "Datastream/Thing/properties/kind eq 'air_quality' and Datastream/@iot.id ne 'a:b'",
    "unitOfMeasurement/symbol eq 'µg/m³' and indexof(concat(name, 'x'), 'x') ge 0",
)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A valid filter with a few random edits."""
    text = draw(st.sampled_from(VALID_FILTERS))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(("insert", "delete", "replace", "duplicate")))
        piece = draw(st.sampled_from([*"()'/ ,;0eZ-T:", " eq ", " and ", "not "]))
        if op == "insert":
            text = text[:i] + piece + text[i:]
        elif op == "delete":
            text = text[:i] + text[i + 1 :]
        elif op == "replace":
            text = text[:i] + piece + text[i + 1 :]
        else:
            text = text[:i] + text[i : i + 12] + text[i:]
    return text
