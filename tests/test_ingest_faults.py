"""Ingest under faults: crashes, restarts, database outage, scale-out (real processes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta

import pytest

from dothi.stack import LocalStack
from tests.helpers import (
    count,
    discard_session,
    ingest_settings,
    publisher,
    running_worker,
    wait_for,
)

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def message(device: str, i: int) -> tuple[str, str]:
    ts = (T0 + timedelta(milliseconds=i)).isoformat()
    return f"dothi/v1/devices/{device}/up", json.dumps({"ts": ts, "readings": {"pm25": i % 500}})


def publish_range(stack: LocalStack, device: str, start: int, stop: int) -> None:
    with publisher(stack.mosquitto.url("admin")) as pub:
        for i in range(start, stop):
            pub(*message(device, i))


def unique_rows(url: str, device: str) -> int:
    return count(url, "SELECT count(*) FROM readings WHERE device_id = %s", device)


@pytest.mark.parametrize("version", ["5", "3.1.1"])
def test_restart_keeps_the_session(
    stack: LocalStack, fresh_db_url: str, uid: str, version: str
) -> None:
    settings = ingest_settings(stack, fresh_db_url, uid, ingest_mqtt_version=version)
    dev = f"rs-{uid}"
    with running_worker(settings) as first:
        publish_range(stack, dev, 0, 100)
        wait_for(lambda: unique_rows(fresh_db_url, dev) == 100)
    # Worker down: these wait in its persistent session on the broker.
    publish_range(stack, dev, 100, 300)
    with running_worker(settings) as second:
        wait_for(lambda: unique_rows(fresh_db_url, dev) == 300, what="queued messages")
        assert second.session_present is True
    assert first.session_present is False  # the very first connect created the session
    discard_session(stack, settings.ingest_client_id + "-0")


def test_two_workers_in_a_share_group_store_each_message_once(
    stack: LocalStack, fresh_db_url: str, uid: str
) -> None:
    settings = ingest_settings(stack, fresh_db_url, uid, ingest_batch_size=50)
    dev = f"sh-{uid}"
    with running_worker(settings, 0) as w0, running_worker(settings, 1) as w1:
        publish_range(stack, dev, 0, 2000)
        wait_for(lambda: w0.stats.acked + w1.stats.acked == 2000, what="2000 acks")
    for slot in (0, 1):
        discard_session(stack, f"{settings.ingest_client_id}-{slot}")
    assert unique_rows(fresh_db_url, dev) == 2000
    # The broker shared the work: each member stored part of it, none stored the same row twice.
    assert w0.stats.stored > 0
    assert w1.stats.stored > 0
    assert w0.stats.stored + w1.stats.stored == 2000
    assert w0.stats.duplicates + w1.stats.duplicates == 0


def test_database_outage_of_30_s_loses_nothing(
    stack: LocalStack, fresh_db_url: str, uid: str
) -> None:
    settings = ingest_settings(stack, fresh_db_url, uid)
    dev = f"db-{uid}"
    with running_worker(settings) as worker:
        publish_range(stack, dev, 0, 200)
        wait_for(lambda: unique_rows(fresh_db_url, dev) == 200)
        stack.postgres.stop()
        try:
            publish_range(stack, dev, 200, 700)
            time.sleep(30)
            acked_during_outage = worker.stats.acked
        finally:
            stack.postgres.start()
        wait_for(lambda: unique_rows(fresh_db_url, dev) == 700, timeout=60, what="recovery")
    discard_session(stack, settings.ingest_client_id + "-0")
    assert acked_during_outage == 200  # nothing acked while the database was down
    assert unique_rows(fresh_db_url, dev) == 700


CRASH_AFTER_COMMIT = textwrap.dedent(
    """
    import os, signal, sys, threading
    from core.settings import load_settings
    from ingest.consumer import IngestWorker

    settings = load_settings()
    def crash(chunk):
        # Committed, not yet acked: die the hardest way.
        sys.stdout.write(f"committed {len(chunk)}\\n"); sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    worker = IngestWorker(settings, 0, db_url=settings.db_url(),
                          mqtt_url=settings.broker_url("ingest"), on_committed=crash)
    worker.run(threading.Event())
    """
)


def ingest_env(stack: LocalStack, db_url: str, uid: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTHI_")}
    env.update(
        DOTHI_DATABASE_URL=db_url,
        DOTHI_MQTT_URL=stack.mosquitto.url("ingest"),
        DOTHI_INGEST_CLIENT_ID=f"t-{uid}",
        DOTHI_INGEST_SHARE_GROUP=f"g{uid}",
        DOTHI_INGEST_METRICS_PORT="0",
        DOTHI_INGEST_FLUSH_MS="50",
    )
    return env


def test_sigkill_between_commit_and_ack_is_deduplicated(
    stack: LocalStack, fresh_db_url: str, uid: str
) -> None:
    dev = f"ck-{uid}"
    env = ingest_env(stack, fresh_db_url, uid)
    # Subscribe once (creating the session), then publish while no worker runs.
    with running_worker(ingest_settings(stack, fresh_db_url, uid)):
        pass
    publish_range(stack, dev, 0, 500)
    proc = subprocess.run(
        [sys.executable, "-c", CRASH_AFTER_COMMIT],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    committed = int(proc.stdout.split()[1])
    assert 0 < committed <= 500
    assert unique_rows(fresh_db_url, dev) == committed  # stored, but never acked
    # The restarted worker gets the unacked messages again; the unique key absorbs them.
    with running_worker(ingest_settings(stack, fresh_db_url, uid)) as worker:
        wait_for(lambda: unique_rows(fresh_db_url, dev) == 500, what="all 500 after restart")
        wait_for(lambda: worker.stats.acked >= 500, what="the redelivered ones acked too")
        assert worker.stats.duplicates >= committed
    discard_session(stack, f"t-{uid}-0")
    assert count(fresh_db_url, "SELECT count(*) FROM readings") == 500


@pytest.mark.slow
def test_kill_9_of_dothi_ingest_mid_stream_loses_nothing(
    stack: LocalStack, fresh_db_url: str, uid: str
) -> None:
    dev = f"k9-{uid}"
    env = ingest_env(stack, fresh_db_url, uid)
    total = 3000

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "dothi", "ingest"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    with running_worker(ingest_settings(stack, fresh_db_url, uid)):
        pass  # creates the persistent session, so nothing published below is missed
    proc = start()
    try:
        with publisher(stack.mosquitto.url("admin")) as pub:
            for i in range(total):
                pub(*message(dev, i))
                if i == total // 3:
                    wait_for(lambda: unique_rows(fresh_db_url, dev) > 0, what="first rows")
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    proc = start()
        wait_for(lambda: unique_rows(fresh_db_url, dev) == total, timeout=60, what="all rows")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    discard_session(stack, f"t-{uid}-0")
    assert unique_rows(fresh_db_url, dev) == total


def test_ingest_with_a_wrong_password_stops_with_a_clear_error(
    stack: LocalStack, fresh_db_url: str, uid: str
) -> None:
    env = ingest_env(stack, fresh_db_url, uid)
    env["DOTHI_MQTT_URL"] = f"mqtt://dothi-ingest:wrong@127.0.0.1:{stack.mosquitto.port}"
    proc = subprocess.run(
        [sys.executable, "-m", "dothi", "ingest"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "refused t-" in proc.stderr
    assert "Not authorized" in proc.stderr or "Bad user name or password" in proc.stderr
    assert "Traceback" not in proc.stderr
