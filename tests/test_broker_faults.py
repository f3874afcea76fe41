"""The broker restarting under ingest: sessions and queues survive SIGTERM; SIGKILL loses at most
what arrived since the last save (the documented RPO: Mosquitto's autosave interval)."""

from __future__ import annotations

import os
import signal
import time

from dothi.stack import LocalStack
from tests.helpers import discard_session, ingest_settings, running_worker, wait_for
from tests.test_ingest_faults import publish_range, unique_rows


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
