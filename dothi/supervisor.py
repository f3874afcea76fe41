"""Supervised child processes for ``dothi up``.

Each platform service runs as its own ``python -m dothi <service>`` process so a crash in one
cannot take the others down. A child that exits is restarted after a back-off that grows while it
keeps crashing (1 s → 30 s) and resets once it has stayed up for a minute. Stopping sends SIGTERM
to every child, waits, then SIGKILLs what is left.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger(__name__)

BACKOFF_MAX_S = 30.0
STABLE_AFTER_S = 60.0


@dataclass
class Service:
    """One supervised service: a name and the ``dothi`` sub-command that runs it."""

    name: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = 1.0
    next_start: float = 0.0

    def start(self, log_dir: Path) -> None:
        env = {**os.environ, **self.env}
        out = (log_dir / f"{self.name}.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dothi", *self.args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        out.close()
        self.started_at = time.monotonic()
        log.info("started %s (pid %d)", self.name, self.proc.pid)


class Supervisor:
    """Starts services, restarts crashed ones, stops all on request."""

    def __init__(self, services: list[Service], run_dir: Path, log_dir: Path) -> None:
        self.services = services
        self.run_dir = run_dir
        self.log_dir = log_dir
        self._stopping = False

    def request_stop(self, *_: object) -> None:
        self._stopping = True

    def _write_state(self) -> None:
        state = {
            s.name: {
                "pid": s.proc.pid if s.proc and s.proc.poll() is None else None,
                "restarts": s.restarts,
                "log": str(self.log_dir / f"{s.name}.log"),
            }
            for s in self.services
        }
        state_file = self.run_dir / "services.json"
        state_file.write_text(json.dumps({"supervisor": os.getpid(), "services": state}, indent=1))

    def run(self) -> None:
        """Run until SIGINT/SIGTERM, then stop every child."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        for svc in self.services:
            svc.start(self.log_dir)
        self._write_state()
        try:
            while not self._stopping:
                self._tick()
                time.sleep(0.2)
        finally:
            self.stop_all()

    def _tick(self) -> None:
        now = time.monotonic()
        changed = False
        for svc in self.services:
            if svc.proc is not None and svc.proc.poll() is not None:
                code = svc.proc.returncode
                uptime = now - svc.started_at
                if uptime > STABLE_AFTER_S:
                    svc.backoff = 1.0
                log.warning(
                    "%s exited with code %s after %.1f s; restarting in %.0f s (log: %s)",
                    svc.name,
                    code,
                    uptime,
                    svc.backoff,
                    self.log_dir / f"{svc.name}.log",
                )
                svc.proc = None
                svc.next_start = now + svc.backoff
                svc.backoff = min(svc.backoff * 2, BACKOFF_MAX_S)
                changed = True
            if svc.proc is None and now >= svc.next_start and not self._stopping:
                svc.restarts += 1
                svc.start(self.log_dir)
                changed = True
        if changed:
            self._write_state()

    def stop_all(self, timeout: float = 15.0) -> None:
        running = [(s.name, s.proc) for s in self.services if s.proc and s.proc.poll() is None]
        for _, proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name, proc in running:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s; killing it", name, timeout)
                proc.kill()
                proc.wait()
            log.info("stopped %s", name)
        (self.run_dir / "services.json").unlink(missing_ok=True)
