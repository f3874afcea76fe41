"""The live stream across an API crash: ``dothi api`` runs as its own process, is SIGKILLed while a
client streams, readings are stored while it is down, and it is started again on the same port.
The client reconnecting with ``Last-Event-ID`` must get what it missed, once each."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from dothi.stack import free_port
from store import devices
from store.loader import load_batch
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[1]
LIVE = "/api/v1/live"

Reading = tuple[str, str, str, float]  # device_id, metric, ts, value


@contextlib.contextmanager
def api_process(db_url: str, port: int, home: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``dothi api`` (one worker) on ``port``, answering /healthz; killed when the block ends."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTHI_")}
    env.update(
        DOTHI_HOME=str(home),
        DOTHI_DATABASE_URL=db_url,
        DOTHI_API_PORT=str(port),
        DOTHI_API_WORKERS="1",
        DOTHI_LOG_LEVEL="WARNING",
    )
    log = home / f"api-{port}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dothi", "api"], env=env, cwd=ROOT, stdout=out, stderr=out
        )

    def healthy() -> bool:
        assert proc.poll() is None, f"dothi api exited: {log.read_text(errors='replace')}"
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(healthy, timeout=60, what="dothi api to answer /healthz")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)


def read_events(lines: Iterator[str], count: int) -> list[tuple[str, Reading]]:
    """(event id, reading) of the next ``count`` ``reading`` events."""
    got: list[tuple[str, Reading]] = []
    current: dict[str, str] = {}
    for line in lines:
        if line:
            if not line.startswith(":"):
                name, _, value = line.partition(": ")
                current[name] = value
            continue
        if current.get("event") == "reading":
            d = json.loads(current["data"])
            got.append((current["id"], (d["device_id"], d["metric"], d["ts"], d["value"])))
            if len(got) == count:
                return got
        current = {}
    msg = f"the stream ended after {got}"
    raise AssertionError(msg)


def test_live_stream_resumes_exactly_after_the_api_is_killed_and_restarted(
    fresh_db_url: str, uid: str, tmp_path: Path
) -> None:
    ids = [f"rs-{uid}-{i}" for i in range(3)]
    with psycopg.connect(fresh_db_url) as conn, conn.transaction():
        devices.upsert(conn, [devices.Device(d, "air_quality", public=True) for d in ids])
    t1 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    t2, t3 = t1 + timedelta(seconds=10), t1 + timedelta(seconds=20)

    def store(rows: list[tuple[str, datetime, float]]) -> list[Reading]:
        with psycopg.connect(fresh_db_url) as conn:
            load_batch(conn, [(d, "pm25", ts, v, 1) for d, ts, v in rows])
        return [(d, "pm25", ts.isoformat(), v) for d, ts, v in rows]

    port = free_port()
    url = f"http://127.0.0.1:{port}{LIVE}"
    params = {"device_id": ids}
    with httpx.Client(timeout=httpx.Timeout(60)) as client:
        with (
            api_process(fresh_db_url, port, tmp_path) as api,
            client.stream("GET", url, params=params) as resp,
        ):
            assert resp.status_code == 200
            lines = resp.iter_lines()
            assert next(lines) == "retry: 3000"  # subscribed
            before = store([(ids[0], t1, 1.0), (ids[1], t1, 2.0)])
            seen = read_events(lines, len(before))
            assert sorted(r for _, r in seen) == before
            last_id = seen[-1][0]
            api.send_signal(signal.SIGKILL)
            api.wait(30)
            # The stream ends with the process (an incomplete chunked body).
            with contextlib.suppress(httpx.TransportError):
                for _ in lines:
                    pass

        # While the API is down: a new value of each series streamed so far, and a new series.
        # (A series left unchanged within the look-back would be sent again on resume, by
        # design: api/routes/live.py resends rather than risk a late commit's gap.)
        with pytest.raises(httpx.ConnectError):
            client.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        missed = store([(ids[0], t2, 3.0), (ids[1], t2, 4.0), (ids[2], t2, 5.0)])

        with (
            api_process(fresh_db_url, port, tmp_path),
            client.stream("GET", url, params=params, headers={"Last-Event-ID": last_id}) as resp,
        ):
            assert resp.status_code == 200
            lines = resp.iter_lines()
            assert next(lines) == "retry: 3000"
            caught_up = read_events(lines, len(missed))
            # A reading stored now arrives live; anything else sent before it would be extra.
            (sentinel,) = store([(ids[0], t3, 6.0)])
            after = read_events(lines, 1)

    resumed = [r for _, r in caught_up]
    assert sorted(resumed) == missed  # no gap, no duplicate
    assert not set(resumed) & set(before)  # nothing it already had
    assert [r for _, r in after] == [sentinel]
    # Event ids (the stream's watermark) carry on from the one the client resumed after.
    ms = [int(event_id.split("-")[0]) for event_id, _ in [*seen, *caught_up, *after]]
    assert ms == sorted(ms)
