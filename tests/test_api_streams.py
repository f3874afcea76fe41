"""Exports (streamed, capped) and the live SSE stream, over a real server and database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from analytics import alerts
from api import keys as keyfmt
from store import keys
from store.loader import load_batch
from store.rollups import refresh
from tests.api_support import HOUR0, NOW, Keys, auth, client_for, make_keys, seed

PREFIX = "/api/v1"


@pytest.fixture(scope="module")
def api_keys(db_url: str) -> Keys:
    seed(db_url)
    return make_keys(db_url)


@pytest.fixture(scope="module")
def client(db_url: str, api_keys: Keys) -> Iterator[httpx.Client]:
    with client_for(db_url, anon_rate_per_s=1000.0, anon_burst=1000, export_max_rows=1000) as c:
        yield c


def _export(client: httpx.Client, token: str, **params: Any) -> httpx.Response:
    base: dict[str, Any] = {
        "device_id": "aq-pub",
        "start": (HOUR0 - timedelta(hours=12)).isoformat(),
        "end": (HOUR0 + timedelta(hours=2)).isoformat(),
    }
    return client.get(f"{PREFIX}/exports/readings", params={**base, **params}, headers=auth(token))


def test_export_needs_a_key_and_hides_private_devices(client: httpx.Client, api_keys: Keys) -> None:
    resp = client.get(
        f"{PREFIX}/exports/readings",
        params={
            "device_id": "aq-pub",
            "start": "2026-01-01T00:00:00Z",
            "end": "2026-01-02T00:00:00Z",
        },
    )
    assert resp.status_code == 401
    assert _export(client, api_keys.public, device_id="aq-priv").status_code == 404


def test_export_csv_streams_in_order(client: httpx.Client, api_keys: Keys) -> None:
    resp = _export(client, api_keys.public, metric="pm25", start=HOUR0.isoformat())
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    assert resp.headers["x-export-row-limit"] == "1000"
    lines = resp.text.splitlines()
    assert lines[0] == "device_id,metric,ts,value,quality"
    body = [line.split(",") for line in lines[1:]]
    assert len(body) == (NOW - HOUR0) / timedelta(minutes=1)  # one pm25 reading a minute
    assert [r[2] for r in body] == sorted(r[2] for r in body)


def test_export_stops_at_the_cap_with_a_clear_error(client: httpx.Client, api_keys: Keys) -> None:
    # 13 h x 60 min x 3 metrics = 2,340 rows or more > this server's cap of 1,000. Not rolled
    # up, so the estimate cannot refuse it up front: the stream itself must stop, saying why.
    csv_resp = _export(client, api_keys.public)
    lines = csv_resp.text.splitlines()
    assert csv_resp.status_code == 200
    assert len(lines) == 1 + 1000 + 1
    assert lines[-1].startswith("# error: export stopped at the limit of 1000 rows")
    nd = _export(client, api_keys.public, format="ndjson")
    assert nd.headers["content-type"].startswith("application/x-ndjson")
    records = [json.loads(line) for line in nd.text.splitlines()]
    assert len(records) == 1001
    assert records[0]["device_id"] == "aq-pub"
    err = records[-1]["error"]
    assert err["status"] == 422
    assert err["type"] == "urn:dothi:problem:limit"
    assert "1000 rows" in err["detail"]


def test_export_refused_up_front_when_the_rollups_say_too_many(
    fresh_db_url: str,
) -> None:
    seed(fresh_db_url)
    keys = make_keys(fresh_db_url)
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        refresh(conn)
    with client_for(fresh_db_url, export_max_rows=1000, export_max_days=30) as client:
        resp = _export(client, keys.public)
        assert resp.status_code == 422
        assert resp.json()["errors"][0]["field"] == "end"
        assert "1000" in resp.json()["detail"]
        too_long = _export(
            client, keys.public, start="2026-01-01T00:00:00Z", end="2026-03-01T00:00:00Z"
        )
        assert too_long.status_code == 422
        assert "30 days" in too_long.json()["detail"]


def _events(lines: Iterator[str], wanted: int, kind: str = "reading") -> list[dict[str, str]]:
    """Read SSE events (ignoring comments) until ``wanted`` events of ``kind`` have arrived."""
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in lines:
        if line == "":
            if current.get("event") == kind:
                events.append(current)
                if len(events) >= wanted:
                    return events
            current = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            current[name] = value
    return events


def test_live_stream_delivers_a_new_reading_and_resumes(
    client: httpx.Client, api_keys: Keys, db_url: str
) -> None:
    t1 = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    with client.stream(
        "GET", f"{PREFIX}/live", params={"area_id": "tp-nam-dinh", "duration": 20}
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = resp.iter_lines()
        assert next(lines) == "retry: 3000"  # subscribed: what is stored from now on arrives
        with psycopg.connect(db_url) as conn:
            load_batch(conn, [("aq-priv", "pm25", t1, 555.0, 1), ("aq-pub", "pm25", t1, 55.5, 1)])
        events = _events(lines, 1)
    data = json.loads(events[0]["data"])
    # Anonymous: the public station only, even though the private one changed too.
    assert (data["device_id"], data["metric"], data["value"]) == ("aq-pub", "pm25", 55.5)
    assert data["ts"] == t1.isoformat()
    first_id = events[0]["id"]
    assert int(first_id.split("-")[0]) >= int(t1.timestamp() * 1000)

    # Disconnected; a reading arrives; reconnecting with Last-Event-ID catches up.
    t2 = t1 + timedelta(seconds=1)
    with psycopg.connect(db_url) as conn:
        load_batch(conn, [("aq-pub", "pm25", t2, 66.6, 1)])
    with client.stream(
        "GET",
        f"{PREFIX}/live",
        params={"device_id": "aq-priv", "duration": 10},
        headers={**auth(api_keys.all), "Last-Event-ID": first_id},
    ) as resp:
        assert resp.status_code == 200
        resumed = [json.loads(e["data"]) for e in _events(resp.iter_lines(), 1)]
    assert resumed[0]["device_id"] == "aq-priv"  # the key sees it; the filter keeps it alone
    with client.stream(
        "GET",
        f"{PREFIX}/live",
        params={"device_id": "aq-pub", "metric": "pm25", "duration": 10},
        headers={"Last-Event-ID": first_id},
    ) as resp:
        resumed = [json.loads(e["data"]) for e in _events(resp.iter_lines(), 1)]
    assert (resumed[0]["value"], resumed[0]["ts"]) == (66.6, t2.isoformat()), resumed


def test_live_stream_filters_and_errors(client: httpx.Client) -> None:
    assert client.get(f"{PREFIX}/live", params={"device_id": "aq-priv"}).status_code == 404
    assert client.get(f"{PREFIX}/live", params={"metric": "smell"}).status_code == 422
    bad = client.get(f"{PREFIX}/live", headers={"Last-Event-ID": "yesterday"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "last-event-id"


def test_live_stream_carries_alert_events_for_keys(
    client: httpx.Client, api_keys: Keys, db_url: str
) -> None:
    with client.stream(
        "GET",
        f"{PREFIX}/live",
        params={"device_id": "aq-pub", "duration": 20},
        headers=auth(api_keys.public),
    ) as resp:
        lines = resp.iter_lines()
        assert next(lines) == "retry: 3000"
        with psycopg.connect(db_url) as conn:
            opened = alerts.open_alert(
                conn,
                alerts.NewAlert(
                    rule_id="live-test",
                    kind="threshold",
                    device_id="aq-pub",
                    metric="pm25",
                    severity="critical",
                    title="PM2.5 very high",
                    message="PM2.5 above 150",
                    started_at=NOW,
                    opened_at=NOW,
                ),
            )
        assert opened is not None
        got = _events(lines, 1, kind="alert")
    data = json.loads(got[0]["data"])
    assert (data["alert_id"], data["event"], data["severity"]) == (opened.id, "opened", "critical")
    ms, alert_id = got[0]["id"].split("-")
    assert int(alert_id) >= 1
    assert int(ms) > 0


def test_live_stream_ends_when_its_key_is_revoked(client: httpx.Client, db_url: str) -> None:
    new = keyfmt.generate()
    with psycopg.connect(db_url) as conn, conn.transaction():
        keys.insert(conn, new.key_id, "short-lived", ["read:all"], new.secret_hash)
    with client.stream(
        "GET", f"{PREFIX}/live", params={"duration": 20}, headers=auth(new.token)
    ) as resp:
        lines = resp.iter_lines()
        assert next(lines) == "retry: 3000"
        with psycopg.connect(db_url) as conn:
            keys.revoke(conn, new.key_id)
        for line in lines:
            if line.startswith("data:"):
                assert "revoked" in line
                break
        else:
            pytest.fail("the stream did not end with an error event")
