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
