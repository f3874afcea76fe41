"""The API with its database down: 503 + Retry-After as problem+json, never a traceback."""

from __future__ import annotations

from dothi.stack import free_port
from tests.api_support import client_for

PREFIX = "/api/v1"


def test_database_down_is_503_with_retry_after() -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/dothi"
    with client_for(dead, pool_timeout_s=0.5) as client:
        assert client.get("/healthz").status_code == 200  # alive, just not ready
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["detail"] == "unreachable: database, broker"
        for path, headers in (
            (f"{PREFIX}/devices", {}),
            (f"{PREFIX}/latest", {}),
            (f"{PREFIX}/areas", {}),
            # A key must be looked up: the database being down is still a 503, not a 401/500.
            (f"{PREFIX}/devices", {"Authorization": "Bearer dk_0123456789ab_" + "s" * 43}),
        ):
            resp = client.get(path, headers=headers)
            assert resp.status_code == 503, (path, resp.text)
            assert resp.headers["content-type"].startswith("application/problem+json")
            assert resp.headers["retry-after"] == "5"
            body = resp.json()
            assert body["type"] == "urn:dothi:problem:unavailable"
            assert "Traceback" not in resp.text
            assert "psycopg" not in resp.text
        # What needs no database still works.
        assert client.get(f"{PREFIX}/metrics").status_code == 200
        assert client.get("/metrics").status_code == 200


def test_prometheus_metrics_by_route_template(db_url: str) -> None:
    with client_for(db_url) as client:
        client.get(f"{PREFIX}/devices/nope")
        text = client.get("/metrics").text
    assert (
        'dothi_api_requests_total{method="GET",route="/api/v1/devices/{device_id}",status="404"}'
        in text
    )


def test_cors_only_for_configured_origins(db_url: str) -> None:
    with client_for(db_url, cors_origins=("https://portal.namdinh.example",)) as client:
        ok = client.options(
            f"{PREFIX}/aqi/stations",
            headers={
                "Origin": "https://portal.namdinh.example",
                "Access-Control-Request-Method": "GET",
            },
        )
        assert ok.headers["access-control-allow-origin"] == "https://portal.namdinh.example"
        other = client.get(f"{PREFIX}/metrics", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_docs_and_schema_are_served(db_url: str) -> None:
    with client_for(db_url) as client:
        assert client.get("/docs").status_code == 200
        schema = client.get("/openapi.json").json()
    ops = [op for path in schema["paths"].values() for op in path.values()]
    for op in ops:
        for status, resp in op["responses"].items():
            if status.startswith(("4", "5")):
                assert list(resp["content"]) == ["application/problem+json"]


def test_pool_exhaustion_is_a_bounded_wait_then_503(fresh_db_url: str) -> None:
    # One connection, held by an export the client does not read: the next request waits
    # pool_timeout_s for a connection, then gets a 503 instead of piling up.
    import psycopg

    from tests.api_support import auth, make_keys, seed

    seed(fresh_db_url)
    keys = make_keys(fresh_db_url)
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO readings (device_id, metric, ts, value)"
            " SELECT 'aq-pub', 'temperature', t, 25 FROM generate_series("
            " now() - interval '20 days', now(), interval '2 seconds') AS t"
        )
    with client_for(fresh_db_url, pool_min=1, pool_max=1, pool_timeout_s=0.5) as client:
        params = {
            "device_id": "aq-pub",
            "start": "2026-01-01T00:00:00Z",
            "end": "2027-01-01T00:00:00Z",
        }
        with client.stream(
            "GET", f"{PREFIX}/exports/readings", params=params, headers=auth(keys.public)
        ) as export:
            assert export.status_code == 200
            # Rows flow, then the server blocks on the unread socket holding the connection.
            # (Keep the iterator referenced: dropping it would close the response.)
            chunks = export.iter_bytes()
            received = 0
            while received < 200_000:
                received += len(next(chunks))
            resp = client.get(f"{PREFIX}/devices")
            assert resp.status_code == 503
            assert resp.headers["retry-after"] == "5"
        # The export is gone (client closed it): the connection is back.
        assert client.get(f"{PREFIX}/devices").status_code == 200
