"""Alerts over the API: listing by visibility, acknowledge/resolve/comment, audit, scopes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import psycopg
import pytest

from analytics import alerts
from tests.api_support import NOW, Keys, auth, client_for, make_keys, seed
from tests.helpers import wait_for

PREFIX = "/api/v1"


def _open(url: str, device: str, rule: str) -> int:
    with psycopg.connect(url) as conn:
        alert = alerts.open_alert(
            conn,
            alerts.NewAlert(
                rule_id=rule,
                kind="threshold",
                device_id=device,
                metric="pm25",
                severity="warning",
                title=f"PM2.5 high at {device}",
                message="PM2.5 above 50 µg/m³ for an hour",
                started_at=NOW - timedelta(hours=1),
                opened_at=NOW,
                value=62.0,
                threshold=50.0,
            ),
        )
    assert alert is not None
    return alert.id


@pytest.fixture(scope="module")
def setup(db_url: str) -> tuple[Keys, int, int]:
    seed(db_url)
    return make_keys(db_url), _open(db_url, "aq-pub", "pm25_high"), _open(db_url, "aq-priv", "r2")


@pytest.fixture(scope="module")
def client(db_url: str, setup: tuple[Keys, int, int]) -> Iterator[httpx.Client]:
    with client_for(db_url, anon_rate_per_s=1000.0, anon_burst=1000) as c:
        yield c


def test_reading_alerts_needs_a_key_and_respects_visibility(
    client: httpx.Client, setup: tuple[Keys, int, int]
) -> None:
    keys, public_alert, private_alert = setup
    assert client.get(f"{PREFIX}/alerts").status_code == 401
    seen = client.get(f"{PREFIX}/alerts", headers=auth(keys.public)).json()["items"]
    assert [a["id"] for a in seen] == [public_alert]
    seen = client.get(f"{PREFIX}/alerts", headers=auth(keys.all)).json()["items"]
    assert [a["id"] for a in seen] == [private_alert, public_alert]
    # BOLA: a read:public key asking for the private device's alert gets 404, not 403.
    resp = client.get(f"{PREFIX}/alerts/{private_alert}", headers=auth(keys.public))
    assert resp.status_code == 404
    assert resp.json()["detail"] == f"alert '{private_alert}' does not exist"
    assert client.get(f"{PREFIX}/alerts/999999", headers=auth(keys.all)).status_code == 404
    one = client.get(f"{PREFIX}/alerts/{public_alert}", headers=auth(keys.public)).json()
    assert one["state"] == "open"
    filtered = client.get(
        f"{PREFIX}/alerts",
        params={"state": ["open", "acknowledged"], "area_id": "tp-nam-dinh"},
        headers=auth(keys.all),
    ).json()["items"]
    assert len(filtered) == 2


def test_read_only_key_cannot_write(
    client: httpx.Client, setup: tuple[Keys, int, int], db_url: str
) -> None:
    keys, public_alert, _ = setup
    for token in (keys.public, keys.all):
        resp = client.post(f"{PREFIX}/alerts/{public_alert}/acknowledge", headers=auth(token))
        assert resp.status_code == 403
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert "alerts:write" in resp.json()["detail"]
    assert client.post(f"{PREFIX}/alerts/{public_alert}/acknowledge").status_code == 401

    def audited() -> bool:
        with psycopg.connect(db_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM audit_log WHERE event = 'authz_fail' AND status = 403"
            ).fetchone()
        return row is not None and row[0] >= 2

    wait_for(audited, what="authz_fail audit rows")


def test_acknowledge_comment_resolve(
    client: httpx.Client, setup: tuple[Keys, int, int], db_url: str
) -> None:
    keys, public_alert, _ = setup
    h = auth(keys.writer)
    url = f"{PREFIX}/alerts/{public_alert}"
    acked = client.post(f"{url}/acknowledge", headers=h, json={"comment": "on it"})
    assert acked.status_code == 200, acked.text
    assert acked.json()["state"] == "acknowledged"
    assert acked.json()["acknowledged_by"].startswith("key:")
    again = client.post(f"{url}/acknowledge", headers=h)
    assert again.status_code == 409
    assert again.json()["type"] == "urn:dothi:problem:conflict"
    c = client.post(f"{url}/comments", headers=h, json={"text": "sensor cleaned"})
    assert c.status_code == 201
    assert c.json()["event"] == "commented"
    bad = client.post(f"{url}/comments", headers=h, json={"text": ""})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "text"
    assert client.post(f"{url}/comments", headers=h, content=b"{nope").status_code == 422
    done = client.post(f"{url}/resolve", headers=h, json={"comment": "fixed"})
    assert done.json()["state"] == "resolved"
    assert done.json()["resolution"] == "manual"
    history = client.get(f"{url}/history", headers=h).json()
    assert [e["event"] for e in history] == ["opened", "acknowledged", "commented", "resolved"]
    assert client.post(f"{PREFIX}/alerts/424242/resolve", headers=h).status_code == 404
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT event, key_id, target FROM audit_log WHERE event LIKE 'alert_%' ORDER BY id"
        ).fetchall()
        dump = str(conn.execute("SELECT * FROM audit_log").fetchall())
    events = [r[0] for r in rows]
    assert events == ["alert_acknowledge", "alert_comment", "alert_resolve"]
    assert {r[2] for r in rows} == {f"alert:{public_alert}"}
    secret = keys.writer.split("_", 2)[2]
    assert secret not in dump  # key ids only, never a key


def test_area_limited_writer_cannot_touch_other_areas(
    client: httpx.Client, setup: tuple[Keys, int, int]
) -> None:
    keys, _, private_alert = setup
    # The district key sees only hai-hau's private devices; aq-priv is in the city.
    resp = client.get(f"{PREFIX}/alerts/{private_alert}", headers=auth(keys.district))
    assert resp.status_code == 404
