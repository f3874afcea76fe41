"""``dothi analytics``: the rule engine, the AQI and energy jobs and the notifier, continuously.

Several instances may run (on several hosts, for availability); exactly one evaluates. Each
instance holds a database session and tries ``pg_try_advisory_lock`` on it: the holder is the
active evaluator and runs every cycle **on that same session**, so if its session dies (process
killed, network cut, database restart) it loses the lock and can no longer write, and a standby
takes over within its poll interval. Standbys keep trying. Only the active instance runs the
notifier (its deliveries are claimed with leases, so even an overlap would not send twice).

Database or broker outages are survived: the database session is re-established with
exponential back-off (0.5 s doubling to 30 s) and the lock re-acquired; the MQTT client
reconnects by itself and undelivered notifications wait in the delivery log.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import psycopg

from analytics.aqi_job import AqiJob
from analytics.energy_job import EnergyJob
from analytics.evaluate import RuleEngine
from analytics.notify import MqttPublisher, Notifier
from analytics.notifyconfig import NotifyConfigWatcher
from analytics.rulefile import RuleFileWatcher

if TYPE_CHECKING:
    from collections.abc import Callable

    from core.settings import Settings

log = logging.getLogger(__name__)

LOCK_KEY: Final = 0x64746861  # "dtha"; below 2**32 so pg_locks shows it as objid
APP_NAME: Final = "dothi-analytics"
DEFAULT_RULES: Final = Path("deploy/rules.toml")
DEFAULT_NOTIFICATIONS: Final = Path("deploy/notifications.toml")


@dataclass
class ServiceOptions:
    """How the service runs (the CLI fills it from its options).

    Attributes:
        rules: the rules file.
        notifications: the channels file; None for MQTT only with defaults.
        interval_s: seconds between evaluation cycles.
        aqi_every_s: seconds between AQI job runs.
        energy_every_s: seconds between energy job runs.
        standby_poll_s: how often a standby instance tries to take over.
        notify_poll_s: how often the notifier looks for work.
        instance: this instance's name (logs, MQTT client id, pg_stat_activity).
        once: run one cycle (if this instance gets the lock) and return.
        now: the clock (tests inject one).
    """

    rules: Path = DEFAULT_RULES
    notifications: Path | None = DEFAULT_NOTIFICATIONS
    interval_s: float = 1.0  # bounds publish → alert latency (docs/benchmarks.md)
    aqi_every_s: float = 60.0
    energy_every_s: float = 600.0
    standby_poll_s: float = 2.0
    notify_poll_s: float = 0.5
    instance: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    once: bool = False
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


class Backoff:
    """Exponential back-off delays: 0.5 s doubling up to 30 s; :meth:`reset` after a success."""

    def __init__(self, first: float = 0.5, cap: float = 30.0) -> None:
        self.first, self.cap, self._next = first, cap, first

    def next(self) -> float:
        """The delay to wait now (and double the following one)."""
        delay, self._next = self._next, min(self._next * 2, self.cap)
        return delay

    def reset(self) -> None:
        """Start again from the first delay."""
        self._next = self.first


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run(settings: Settings, stop: threading.Event, options: ServiceOptions | None = None) -> None:
    """Run analytics until ``stop`` is set.

    Raises:
        RuleFileError: the rules file is missing or invalid at start (later edits that are
            invalid are refused and logged; the running rules stay).
        NotifyConfigError: the notifications file is invalid at start.
        ConfigError: MQTT notifications are on but no broker credential is available.
    """
    opts = options or ServiceOptions()
    rules = RuleFileWatcher(opts.rules)
    channels = NotifyConfigWatcher(opts.notifications)
    broker_url: str | None = None
    if channels.current.mqtt.enabled:
        broker_url = settings.broker_url("analytics")  # ConfigError without a credential
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGHUP, lambda *_: rules.request_reload())
    service = _Service(settings.db_url(), broker_url, rules, channels, opts, stop)
    service.loop()


class _Service:
    def __init__(  # noqa: PLR0917 (private, one call site)
        self,
        db_url: str,
        broker_url: str | None,
        rules: RuleFileWatcher,
        channels: NotifyConfigWatcher,
        opts: ServiceOptions,
        stop: threading.Event,
    ) -> None:
        self.db_url = db_url
        self.broker_url = broker_url
        self.rules = rules
        self.channels = channels
        self.opts = opts
        self.stop = stop
        self.engine = RuleEngine()
        self.aqi = AqiJob()
        self.energy = EnergyJob()
        self._next_aqi = 0.0
        self._next_energy = 0.0

    def loop(self) -> None:
        backoff = Backoff()
        while not self.stop.is_set():
            try:
                with psycopg.connect(
                    self.db_url,
                    autocommit=True,
                    connect_timeout=5,
                    application_name=f"{APP_NAME} {self.opts.instance}",
                ) as conn:
                    log.info("analytics %s connected to the database", self.opts.instance)
                    backoff.reset()
                    if not self._wait_for_lock(conn):
                        return
                    self._lead(conn)
                    if self.opts.once:
                        return
            except psycopg.OperationalError as exc:
                delay = backoff.next()
                log.warning(
                    "analytics: database unavailable (%s); retrying in %.1f s",
                    _first_line(exc),
                    delay,
                )
                self.stop.wait(delay)
            except psycopg.Error:
                # Not an outage (a query the schema refuses, say): log it fully, start over.
                delay = backoff.next()
                log.exception("analytics: database error; restarting in %.1f s", delay)
                self.stop.wait(delay)

    def _wait_for_lock(self, conn: psycopg.Connection[Any]) -> bool:
        """Block until this session holds the lock (True) or the service stops (False)."""
        said = False
        while not self.stop.is_set():
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
            if row is not None and row[0]:
                log.info("analytics %s is the active evaluator", self.opts.instance)
                return True
            if self.opts.once:
                log.info("another analytics instance is active; nothing to do")
                return False
            if not said:
                log.info("another analytics instance is active; %s stands by", self.opts.instance)
                said = True
            self.stop.wait(self.opts.standby_poll_s)
        return False

    def _lead(self, conn: psycopg.Connection[Any]) -> None:
        """Evaluate on the locked session until stopped or the session fails."""
        sender = _Sender(self.db_url, self.broker_url, self.channels, self.opts)
        sender.start()
        try:
            while not self.stop.is_set():
                started = time.monotonic()
                self._cycle(conn)
                if self.opts.once:
                    sender.drain()
                    return
                self.stop.wait(max(0.0, self.opts.interval_s - (time.monotonic() - started)))
        finally:
            sender.close()
            if not conn.closed and not conn.broken:
                # Hand over at once rather than when the session ends.
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))

    def _cycle(self, conn: psycopg.Connection[Any]) -> None:
        now = self.opts.now()
        tick = time.monotonic()
        if tick >= self._next_aqi:
            # Before the rules, so AQI category rules see this cycle's hours.
            self.aqi.run(conn, now)
            self._next_aqi = tick + self.opts.aqi_every_s
        if tick >= self._next_energy:
            self.energy.run(conn, now)
            self._next_energy = tick + self.opts.energy_every_s
        self.engine.evaluate(conn, self.rules.poll(), now)


class _Sender:
    """The notifier's thread: dispatch and deliver, on its own session and MQTT client."""

    def __init__(
        self,
        db_url: str,
        broker_url: str | None,
        channels: NotifyConfigWatcher,
        opts: ServiceOptions,
    ) -> None:
        self.db_url = db_url
        self.opts = opts
        self.publisher = (
            MqttPublisher(broker_url, f"{APP_NAME}-{opts.instance}") if broker_url else None
        )
        self.notifier = Notifier(channels.poll, self.publisher)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="analytics-notify", daemon=True)

    def start(self) -> None:
        if self.publisher is not None:
            self.publisher.start()
        self._thread.start()

    def drain(self, timeout: float = 10.0) -> None:
        """Wait (for ``--once``) until the MQTT client is up and nothing is due any more."""
        if self.publisher is not None:
            self.publisher.wait_connected(timeout)
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            self._work(conn)

    def _work(self, conn: psycopg.Connection[Any]) -> None:
        now = self.opts.now()
        self.notifier.dispatch(conn, now)
        self.notifier.deliver(conn, now)

    def _run(self) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self.db_url,
                    autocommit=True,
                    connect_timeout=5,
                    application_name=f"{APP_NAME}-notify {self.opts.instance}",
                ) as conn:
                    backoff.reset()
                    while not self._stop.is_set():
                        self._work(conn)
                        self._stop.wait(self.opts.notify_poll_s)
            except psycopg.OperationalError as exc:
                delay = backoff.next()
                log.warning(
                    "notifier: database unavailable (%s); retrying in %.1f s",
                    _first_line(exc),
                    delay,
                )
                self._stop.wait(delay)
            except Exception:
                # A bug or an unexpected answer must not end notifications for good.
                log.exception("notifier failed; restarting it")
                self._stop.wait(backoff.next())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)
        if self.publisher is not None:
            self.publisher.close()


__all__ = ["LOCK_KEY", "Backoff", "ServiceOptions", "run"]
