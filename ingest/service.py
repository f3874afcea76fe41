"""Run one ingest worker in this process until SIGINT/SIGTERM (``dothi ingest``).

Several workers are several processes (``dothi ingest --workers N`` starts them, each with its
own slot, i.e. its own stable client id in the shared group): Python threads would share one core.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING

from prometheus_client import start_http_server

from ingest.consumer import FatalIngestError, IngestWorker

if TYPE_CHECKING:
    from core.settings import Settings

log = logging.getLogger(__name__)


def run_worker(settings: Settings, slot: int, stop: threading.Event | None = None) -> int:
    """Run worker ``slot`` in this process; return an exit code."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    if settings.ingest_metrics_port:
        port = settings.ingest_metrics_port + slot
        try:
            start_http_server(port, addr="127.0.0.1")
            log.info("ingest metrics on http://127.0.0.1:%d/metrics", port)
        except OSError as exc:
            log.warning("ingest metrics not served on port %d: %s", port, exc)
    worker = IngestWorker(
        settings,
        slot,
        db_url=settings.db_url(),
        mqtt_url=settings.broker_url("ingest"),
    )
    try:
        worker.run(stop)
    except FatalIngestError as exc:
        log.error("ingest worker %d stopped: %s", slot, exc)
        return 1
    log.info("ingest worker %d stopped", slot)
    return 0
