"""The REST API against the real database: routes, visibility, scopes, problems."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.api_support import (
    CITY,
    DISTRICT,
    HOUR0,
    NOW,
    WARD,
    Keys,
    auth,
    client_for,
    make_keys,
    seed,
)

PREFIX = "/api/v1"


@pytest.fixture(scope="module")
def api_keys(db_url: str) -> Keys:
    seed(db_url)
    return make_keys(db_url)


@pytest.fixture(scope="module")
def client(db_url: str, api_keys: Keys) -> Iterator[httpx.Client]:
    with client_for(db_url, anon_rate_per_s=1000.0, anon_burst=1000) as c:
        yield c


def _problem(resp: object, status: int) -> dict[str, object]:
    assert resp.status_code == status, resp.text  # type: ignore[attr-defined]
    assert resp.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    body: dict[str, object] = resp.json()  # type: ignore[attr-defined]
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert body["status"] == status
    return body


def test_health_and_catalogue(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    metrics = client.get(f"{PREFIX}/metrics").json()
    assert {"name": "pm25", "unit": "µg/m³", "description": "Fine particulate matter PM2.5",
            "counter": False} in metrics  # fmt: skip


def test_area_tree(client: httpx.Client) -> None:
    roots = client.get(f"{PREFIX}/areas").json()
    assert [r["id"] for r in roots] == ["nam-dinh"]
    city = client.get(f"{PREFIX}/areas/{CITY}").json()
    assert WARD in [c["id"] for c in city["children"]]
    _problem(client.get(f"{PREFIX}/areas/nowhere"), 404)


def test_anonymous_sees_public_devices_only(client: httpx.Client, api_keys: Keys) -> None:
    ids = [d["id"] for d in client.get(f"{PREFIX}/devices").json()["items"]]
    assert ids == ["aq-pub", "meter-pub"]
    everything = client.get(f"{PREFIX}/devices", headers=auth(api_keys.all)).json()["items"]
    assert [d["id"] for d in everything] == ["aq-priv", "aq-pub", "meter-priv", "meter-pub"]
    assert "metadata" not in everything[0]


def test_device_filters(client: httpx.Client, api_keys: Keys) -> None:
    h = auth(api_keys.all)

    def ids(**params: object) -> list[str]:
        resp = client.get(f"{PREFIX}/devices", params=params, headers=h)  # type: ignore[arg-type]
        assert resp.status_code == 200, resp.text
        return [d["id"] for d in resp.json()["items"]]

    assert ids(kind="smart_meter") == ["meter-priv", "meter-pub"]
    assert ids(area_id=CITY) == ["aq-priv", "aq-pub"]  # the ward below the city included
    assert ids(area_id=WARD) == ["aq-pub"]
    assert ids(bbox="106.16,20.41,106.18,20.43") == ["aq-priv", "aq-pub"]
    assert ids(public="false") == ["aq-priv", "meter-priv"]
    page = client.get(f"{PREFIX}/devices", params={"limit": 3}, headers=h).json()
    rest = client.get(f"{PREFIX}/devices", params={"cursor": page["next_cursor"]}, headers=h).json()
    assert [d["id"] for d in page["items"] + rest["items"]] == ids()
    assert rest["next_cursor"] is None


def test_hidden_device_is_404_like_a_missing_one(client: httpx.Client, api_keys: Keys) -> None:
    hidden = _problem(client.get(f"{PREFIX}/devices/aq-priv"), 404)
    missing = _problem(client.get(f"{PREFIX}/devices/aq-none"), 404)
    assert hidden["title"] == missing["title"]
    _problem(client.get(f"{PREFIX}/devices/aq-priv", headers=auth(api_keys.public)), 404)
    assert client.get(f"{PREFIX}/devices/aq-priv", headers=auth(api_keys.all)).status_code == 200
    # An area-limited key sees its district's private meter, not the city's private station.
    h = auth(api_keys.district)
    assert client.get(f"{PREFIX}/devices/meter-priv", headers=h).status_code == 200
    _problem(client.get(f"{PREFIX}/devices/aq-priv", headers=h), 404)


def test_latest(client: httpx.Client, api_keys: Keys) -> None:
    rows = client.get(f"{PREFIX}/latest", params={"metric": "pm25"}).json()
    assert [(r["device_id"], r["metric"], r["unit"]) for r in rows] == [("aq-pub", "pm25", "µg/m³")]
    rows = client.get(f"{PREFIX}/latest", headers=auth(api_keys.all)).json()
    assert {r["device_id"] for r in rows} == {"aq-pub", "aq-priv", "meter-priv", "meter-pub"}
    _problem(client.get(f"{PREFIX}/latest", params={"device_id": "aq-priv"}), 404)
    body = _problem(client.get(f"{PREFIX}/latest", params={"metric": "pm2.5"}), 422)
    assert body["errors"] == [
        {
            "location": "query",
            "field": "metric",
            "detail": "unknown metric(s) pm2.5; see /api/v1/metrics",
        }
    ]


def test_raw_readings_pages(client: httpx.Client, api_keys: Keys) -> None:
    start, end = HOUR0, HOUR0 + timedelta(minutes=10)
    params: dict[str, Any] = {"start": start.isoformat(), "end": end.isoformat(), "limit": 7}
    seen = []
    cursor = None
    for _ in range(10):
        if cursor:
            params["cursor"] = cursor
        page = client.get(f"{PREFIX}/devices/aq-pub/readings", params=params).json()
        seen += [(r["ts"], r["metric"]) for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 30 == len(set(seen))  # 10 minutes x 3 metrics, no duplicates
    assert seen == sorted(seen)
    body = _problem(
        client.get(f"{PREFIX}/devices/aq-pub/readings", params={**params, "limit": 10**6}), 422
    )
    assert body["errors"][0]["field"] == "limit"  # type: ignore[index]
    _problem(client.get(f"{PREFIX}/devices/aq-pub/readings", params={**params, "cursor": "x"}), 422)


def test_aggregates_hourly_and_local_days(client: httpx.Client, api_keys: Keys) -> None:
    params = {
        "device_id": ["aq-pub", "aq-priv"],
        "metric": ["pm25", "no2"],
        "start": (HOUR0 - timedelta(hours=2)).isoformat(),
        "end": HOUR0.isoformat(),
        "interval": "1h",
        "func": ["avg", "max", "count"],
    }
    _problem(client.get(f"{PREFIX}/aggregates", params=params), 404)  # aq-priv is hidden
    body = client.get(f"{PREFIX}/aggregates", params=params, headers=auth(api_keys.all)).json()
    assert [(s["device_id"], s["metric"]) for s in body["series"]] == [
        ("aq-priv", "no2"), ("aq-priv", "pm25"), ("aq-pub", "no2"), ("aq-pub", "pm25"),
    ]  # fmt: skip
    point = body["series"][3]["points"][0]
    assert set(point) == {"bucket", "count", "avg", "max"}
    assert point["count"] == 60
    assert point["max"] == 36.0
    csv_text = client.get(
        f"{PREFIX}/aggregates", params={**params, "format": "csv"}, headers=auth(api_keys.all)
    ).text
    assert csv_text.splitlines()[0] == "bucket,device_id,metric,unit,count,avg,max"
    assert len(csv_text.splitlines()) == 1 + 4 * 2
    combined = client.get(
        f"{PREFIX}/aggregates",
        params={
            "area_id": CITY,
            "metric": "pm25",
            "start": params["start"],
            "end": params["end"],
            "interval": "1h",
            "combine": "true",
        },
    ).json()
    assert [s["device_id"] for s in combined["series"]] == [None]
    local = client.get(
        f"{PREFIX}/aggregates",
        params={
            "device_id": "aq-pub",
            "metric": "pm25",
            "start": (NOW - timedelta(days=2)).isoformat(),
            "end": NOW.isoformat(),
            "interval": "1d",
            "align": "local",
        },
    ).json()
    for p in local["series"][0]["points"]:
        assert p["bucket"].endswith("17:00:00Z")  # local midnight, UTC+7


def test_aggregate_limits_are_422_naming_the_field(client: httpx.Client) -> None:
    base = {"device_id": "aq-pub", "metric": "pm25", "start": "2026-01-01T00:00:00Z",
            "end": "2026-12-31T00:00:00Z"}  # fmt: skip
    body = _problem(client.get(f"{PREFIX}/aggregates", params={**base, "interval": "1s"}), 422)
    assert body["errors"][0]["field"] == "interval"  # type: ignore[index]
    assert "100000" in str(body["detail"])
    for bad, field in (
        ({"interval": "fortnight"}, "interval"),
        ({"start": "yesterday"}, "start"),
        ({"start": "2026-01-01T00:00:00"}, "start"),  # no offset
        ({"end": "1900-01-01T00:00:00Z"}, "end"),
        ({"func": "median"}, "func"),
        ({"metric": "nope"}, "metric"),
    ):
        body = _problem(client.get(f"{PREFIX}/aggregates", params={**base, **bad}), 422)
        assert body["errors"][0]["field"] == field, body  # type: ignore[index]


def test_energy(client: httpx.Client, api_keys: Keys) -> None:
    params = {"start": (HOUR0 - timedelta(hours=4)).isoformat(), "end": HOUR0.isoformat(),
              "interval": "1h", "align": "utc"}  # fmt: skip
    body = client.get(f"{PREFIX}/energy/devices/meter-pub", params=params).json()
    assert [p["kwh"] for p in body["points"]] == [30.0] * 4  # 0.5 kWh a minute
    _problem(client.get(f"{PREFIX}/energy/devices/meter-priv", params=params), 404)
    anon = client.get(f"{PREFIX}/energy/areas/{DISTRICT}", params=params).json()
    full = client.get(
        f"{PREFIX}/energy/areas/{DISTRICT}", params=params, headers=auth(api_keys.all)
    ).json()
    assert [p["kwh"] for p in anon["points"]] == [30.0] * 4  # the public meter only
    assert [p["kwh"] for p in full["points"]] == [60.0] * 4


def test_aqi_now(client: httpx.Client, api_keys: Keys) -> None:
    stations = client.get(f"{PREFIX}/aqi/stations").json()
    assert [s["device_id"] for s in stations] == ["aq-pub"]
    aqi = stations[0]["aqi"]
    assert aqi["dominant"] == "pm25"
    assert aqi["category"]["key"] == "moderate"
    assert aqi["category"]["colour_hex"] == "#FFFF00"
    assert aqi["category"]["name_vi"] == "Trung bình"
    area = client.get(f"{PREFIX}/aqi/areas/{CITY}", headers=auth(api_keys.all)).json()
    assert area["worst_station"] == "aq-priv"
    assert {s["device_id"] for s in area["stations"]} == {"aq-pub", "aq-priv"}
    _problem(client.get(f"{PREFIX}/aqi/stations/meter-pub"), 404)


def test_bad_credentials_are_401_never_anonymous(client: httpx.Client, api_keys: Keys) -> None:
    for headers in (
        auth("dk_nothere00_" + "x" * 43),
        auth("not-a-key"),
        auth(api_keys.revoked),
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-API-Key": api_keys.all[:-2] + "zz"},
    ):
        resp = client.get(f"{PREFIX}/devices", headers=headers)
        body = _problem(resp, 401)
        assert resp.headers["www-authenticate"].startswith("Bearer")
        assert body["type"] == "urn:dothi:problem:unauthorized"
    assert client.get(f"{PREFIX}/devices", headers={"X-API-Key": api_keys.all}).status_code == 200


def test_unknown_route_and_method_are_problems(client: httpx.Client) -> None:
    _problem(client.get(f"{PREFIX}/nothing"), 404)
    _problem(client.delete(f"{PREFIX}/devices"), 405)


def test_response_cache_is_per_visibility(db_url: str, api_keys: Keys) -> None:
    with client_for(db_url, response_cache_s=60.0, anon_rate_per_s=1000.0, anon_burst=1000) as c:
        anon = c.get(f"{PREFIX}/latest", params={"metric": "pm25"}).json()
        full = c.get(f"{PREFIX}/latest", params={"metric": "pm25"}, headers=auth(api_keys.all))
        # A cached public answer is never served to a key that sees more, nor the reverse.
        assert {r["device_id"] for r in anon} == {"aq-pub"}
        assert {r["device_id"] for r in full.json()} == {"aq-pub", "aq-priv"}
        again = c.get(f"{PREFIX}/latest", params={"metric": "pm25"}).json()
        assert again == anon
        # A hidden device is still a 404 while an answer for visible ones is cached.
        assert c.get(f"{PREFIX}/latest", params={"device_id": "aq-priv"}).status_code == 404


def test_admin_dead_letters_and_audit(client: httpx.Client, api_keys: Keys, db_url: str) -> None:
    import psycopg

    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "INSERT INTO dead_letters (topic, payload, reason, detail, device_id)"
            " VALUES ('dothi/v1/devices/x/up', %s, 'malformed_json', 'line 1', 'x') RETURNING id",
            (b"{nope",),
        ).fetchone()
    assert row is not None
    dl_id = row[0]
    assert client.get(f"{PREFIX}/admin/deadletters").status_code == 401
    assert client.get(f"{PREFIX}/admin/deadletters", headers=auth(api_keys.all)).status_code == 403
    page = client.get(f"{PREFIX}/admin/deadletters", headers=auth(api_keys.admin)).json()
    assert [d["id"] for d in page["items"]] == [dl_id]
    one = client.get(f"{PREFIX}/admin/deadletters/{dl_id}", headers=auth(api_keys.admin)).json()
    assert (one["reason"], one["payload_base64"], one["payload_bytes"]) == (
        "malformed_json",
        "e25vcGU=",
        5,
    )
    _problem(client.get(f"{PREFIX}/admin/deadletters/999999", headers=auth(api_keys.admin)), 404)
    audit = client.get(f"{PREFIX}/admin/audit", headers=auth(api_keys.admin)).text
    tokens = (api_keys.public, api_keys.all, api_keys.admin, api_keys.revoked, api_keys.writer)
    assert not [t for t in tokens if t.split("_", 2)[2] in audit]  # ids only, never secrets


def test_aqi_history_from_the_aqi_tables(client: httpx.Client, api_keys: Keys, db_url: str) -> None:
    import psycopg
    from psycopg.types.json import Jsonb

    with psycopg.connect(db_url) as conn:
        for station, value in (("aq-pub", 60), ("aq-priv", 160)):
            for h in range(3):
                conn.execute(
                    "INSERT INTO aqi_hourly (station_id, method, hour, value, category, dominant,"
                    " sub_indices, inputs) VALUES (%s, 'VN_AQI', %s, %s, 'x', 'pm25', %s, %s)",
                    (station, HOUR0 - timedelta(hours=h), value + h, Jsonb({}), Jsonb({})),
                )
    params = {"start": (HOUR0 - timedelta(hours=5)).isoformat(), "end": NOW.isoformat()}
    station = client.get(f"{PREFIX}/aqi/stations/aq-pub/history", params=params).json()
    assert [p["value"] for p in station["points"]] == [62, 61, 60]
    assert station["points"][0]["category"] == "moderate"
    _problem(client.get(f"{PREFIX}/aqi/stations/aq-priv/history", params=params), 404)
    public_area = client.get(f"{PREFIX}/aqi/areas/{CITY}/history", params=params).json()
    assert [p["station_id"] for p in public_area["points"]] == ["aq-pub"] * 3
    full_area = client.get(
        f"{PREFIX}/aqi/areas/{CITY}/history", params=params, headers=auth(api_keys.all)
    ).json()
    assert [p["value"] for p in full_area["points"]] == [162, 161, 160]  # the worst station
    assert full_area["points"][0]["colour_hex"] == "#FF0000"
    daily = client.get(
        f"{PREFIX}/aqi/areas/{CITY}/history", params={**params, "resolution": "day"}
    ).json()
    assert daily["resolution"] == "day"


def test_a_single_valued_parameter_given_twice_is_refused(client: httpx.Client) -> None:
    body = _problem(client.get(f"{PREFIX}/devices", params={"kind": ["noise", "weather"]}), 422)
    assert body["errors"] == [
        {"location": "query", "field": "kind", "detail": "give this parameter once"}
    ]
    # Repeatable ones stay repeatable.
    resp = client.get(f"{PREFIX}/latest", params={"metric": ["pm25", "pm10"]})
    assert resp.status_code == 200
