"""The broker restarting under ingest: sessions and queues survive SIGTERM; SIGKILL loses at most
what arrived since the last save (the documented RPO: Mosquitto's autosave interval)."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from dothi.stack import LocalStack, Mosquitto, free_port
from ingest import metrics
from tests.helpers import discard_session, ingest_settings, publisher, running_worker, wait_for
from tests.test_ingest_faults import message, publish_range, unique_rows


def test_broker_sigterm_restart_keeps_sessions_and_queues(
    stack: LocalStack, fresh_db_url: str, uid: str
) -> None:
    settings = ingest_settings(stack, fresh_db_url, uid)
    dev = f"bt-{uid}"
    with running_worker(settings) as worker:
        publish_range(stack, dev, 0, 200)
        wait_for(lambda: unique_rows(fresh_db_url, dev) == 200)
        # A running worker rides through a broker restart: it reconnects and resumes.
        stack.mosquitto.stop()
        stack.mosquitto.start()
        assert worker.wait_connected(30)
        publish_range(stack, dev, 200, 400)
        wait_for(lambda: unique_rows(fresh_db_url, dev) == 400, what="after reconnect")
        assert worker.session_present is True
    # Worker down: messages queue in its persistent session; the broker restarts (SIGTERM saves
    # its state) before the worker comes back, and the queue is still there.
    publish_range(stack, dev, 400, 700)
    stack.mosquitto.stop()
    stack.mosquitto.start()
    with running_worker(settings):
        wait_for(lambda: unique_rows(fresh_db_url, dev) == 700, what="queue restored from disk")
    discard_session(stack, settings.ingest_client_id + "-0")


def test_broker_sigkill_loses_at_most_the_unsaved_window(
    stack: LocalStack, fresh_db_url: str, uid: str
) -> None:
    settings = ingest_settings(stack, fresh_db_url, uid)
    dev = f"bk-{uid}"
    with running_worker(settings):
        pass  # the persistent session exists from here on
    publish_range(stack, dev, 0, 300)
    pid = stack.mosquitto.running_pid()
    assert pid is not None
    os.kill(pid, signal.SIGUSR1)  # what autosave does every autosave_interval seconds
    time.sleep(1.0)
    publish_range(stack, dev, 300, 400)  # after the save: at risk
    stack.mosquitto.kill()
    stack.mosquitto.start()
    with running_worker(settings) as worker:
        wait_for(lambda: unique_rows(fresh_db_url, dev) >= 300, what="the saved queue")
        time.sleep(1.0)  # let anything else that survived arrive too
        assert worker.stats.duplicates == 0
    discard_session(stack, settings.ingest_client_id + "-0")
    stored = unique_rows(fresh_db_url, dev)
    assert 300 <= stored <= 400  # everything saved survived; only the unsaved window is at risk


def test_broker_queue_overflow_is_visible_not_silent(
    stack: LocalStack, fresh_db_url: str, uid: str
) -> None:
    """A consumer down past the broker's queue budget: Mosquitto drops silently, ingest says so."""
    home = Path(tempfile.mkdtemp(prefix="dothi-small-", dir="/tmp"))
    home.chmod(0o755)
    small = Mosquitto(home, free_port(), max_queued_messages=50, sys_interval=1)
    small.start()
    dev = f"ov-{uid}"
    try:
        settings = ingest_settings(stack, fresh_db_url, uid, mqtt_url=small.url("ingest"))
        with running_worker(settings):
            pass
        with publisher(small.url("admin")) as pub:
            for i in range(200):
                pub(*message(dev, i))
        with running_worker(settings) as worker:
            wait_for(lambda: unique_rows(fresh_db_url, dev) >= 50, what="the queued 50")
            wait_for(
                lambda: metrics.BROKER_DROPPED._value.get() >= 150,
                what="the broker's dropped count to reach ingest",
            )
            stored = worker.stats.stored
    finally:
        small.stop()
        shutil.rmtree(home, ignore_errors=True)
    assert 50 <= stored < 200  # what fit in the queue arrived; the overflow never reached ingest
