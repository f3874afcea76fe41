"""One ingest worker: an MQTT session in the shared group, and a writer that acks after commit.

Threads: the MQTT session's thread (ingest/session.py) only appends arriving messages to an
inbox; the worker thread decodes and validates a batch while the writer thread writes the
previous one in one transaction and then acknowledges its messages in arrival order. Nothing is
acknowledged before its commit, so a crash at any point makes the broker redeliver, and the
database's unique key absorbs what was already stored.

Guarantees and their limits (ENVIRONMENT.md, STYLE.md B1):
- persistent session (``clean_start=False`` + session expiry) under a stable client id, so
  messages that arrive while the worker is down wait in the broker;
- MQTT v5 Receive Maximum (for 3.1.1, the broker's max_inflight_messages) bounds the unacked
  messages the broker sends, which bounds memory during a database outage; the broker queues the
  rest up to its own limits;
- packet ids belong to one connection: acks of messages received before a reconnect are dropped
  (the broker redelivers those; the database deduplicates them).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import psycopg

from core.errors import PayloadError, TransientError
from core.mqtturl import MqttTarget, parse_mqtt_url
from ingest import formats
from ingest import metrics as m
from ingest.session import SubscriberSession
from ingest.validate import TimeLimits, validate
from store.writer import Batch, BatchWriter, DeadLetter, Row

if TYPE_CHECKING:
    from collections.abc import Callable

    from core.settings import Settings
    from ingest.session import Message

log = logging.getLogger(__name__)

SYS_DROPPED_TOPIC = "$SYS/broker/publish/messages/dropped"
RETRY_MIN_S = 0.5
RETRY_MAX_S = 5.0  # a returning database is used within seconds; a retry costs nothing
IDLE_POLL_S = 0.25


@dataclass(slots=True)
class Inbound:
    mid: int
    qos: int
    generation: int
    topic: str
    payload: bytes
    received_at: datetime
    arrived: float  # monotonic, for the flush timer and latency


@dataclass(slots=True)
class WorkerStats:
    """This worker's own counts (the Prometheus metrics add up all workers of a process)."""

    received: int = 0
    acked: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0


@dataclass(slots=True)
class Parsed:
    """A message after decoding and validation: what to store and what to keep aside."""

    item: Inbound
    device: str | None
    rows: list[Row]
    errors: list[PayloadError]


class FatalIngestError(Exception):
    """The worker cannot go on (e.g. the broker refuses its credentials)."""


class IngestWorker:
    """One member of the ingest shared-subscription group.

    Args:
        settings: platform settings (batch size, flush interval, session expiry …).
        slot: worker number; the MQTT client id is ``{ingest_client_id}-{slot}`` and must stay
            the same across restarts so the broker's session (and its queue) is resumed.
        db_url: database URL.
        mqtt_url: broker URL with ingest's credential.
        on_committed: called with each committed chunk just before its acks are sent (fault
            tests use it to crash in the window between commit and ack).
    """

    def __init__(
        self,
        settings: Settings,
        slot: int,
        *,
        db_url: str,
        mqtt_url: str,
        on_committed: Callable[[list[Inbound]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_committed = on_committed
        self.slot = slot
        self.client_id = f"{settings.ingest_client_id}-{slot}"
        self.target: MqttTarget = parse_mqtt_url(mqtt_url)
        self.writer = BatchWriter(db_url, unknown_devices=settings.ingest_unknown_devices)
        self.limits = TimeLimits(
            max_future=timedelta(seconds=settings.ingest_max_future_s),
            max_age=timedelta(days=settings.ingest_max_age_days),
        )
        self.mqtt_v5 = settings.ingest_mqtt_version == "5"
        self.batch_size = settings.ingest_batch_size
        self.flush_s = settings.ingest_flush_ms / 1000
        self._inbox: list[Inbound] = []
        self._cond = threading.Condition()
        self._connected = threading.Event()  # set at SUBACK, cleared at disconnect
        self._fatal: str | None = None
        self._writer_error: BaseException | None = None
        self.session_present: bool | None = None
        self.stats = WorkerStats()
        group = settings.ingest_share_group
        subs = [(f"$share/{group}/{flt}", 1) for flt in formats.SUBSCRIPTIONS]
        if slot == 0:
            subs.append((SYS_DROPPED_TOPIC, 0))
        self._session = SubscriberSession(
            self.target,
            self.client_id,
            subs,
            self,
            mqtt5=self.mqtt_v5,
            session_expiry_s=settings.ingest_session_expiry_s,
            # 3.1.1 has no Receive Maximum: the broker's max_inflight_messages bounds what it
            # sends (the embedded broker sets it to DOTHI_INGEST_RECEIVE_MAXIMUM).
            receive_maximum=settings.ingest_receive_maximum,
        )

    # --- MQTT side (the session's thread) -------------------------------------------------------
    def on_connected(self, generation: int, session_present: bool) -> None:
        del generation  # each message carries its connection's generation
        self.session_present = session_present
        m.CONNECTED.labels(str(self.slot)).set(1)
        log.info(
            "%s connected to %s (session present: %s)",
            self.client_id,
            self.target.redacted(),
            self.session_present,
        )

    def on_subscribed(self, refused: list[str]) -> None:
        if refused:
            log.error(
                "%s: the broker refused subscriptions: %s", self.client_id, ", ".join(refused)
            )
        log.info(
            "%s subscribed to %s",
            self.client_id,
            ", ".join(t for t, _ in self._session.subscriptions),
        )
        # Ready only once the broker has recorded the subscriptions (SUBACK): from now on
        # everything published to these topics reaches this worker's session.
        self._connected.set()

    def on_unreachable(self, reason: str) -> None:
        log.warning(
            "%s cannot reach the broker at %s (%s); retrying",
            self.client_id,
            self.target.redacted(),
            reason,
        )

    def on_refused(self, reason: str, fatal: bool) -> None:
        msg = f"broker {self.target.redacted()} refused {self.client_id}: {reason}"
        log.error("%s", msg)
        if fatal:
            self._fatal = msg
            with self._cond:
                self._cond.notify_all()

    def on_failed(self, reason: str) -> None:
        self._fatal = f"{self.client_id}: the MQTT session stopped on an internal error: {reason}"
        with self._cond:
            self._cond.notify_all()

    def on_disconnected(self, reason: str) -> None:
        self._connected.clear()
        m.CONNECTED.labels(str(self.slot)).set(0)
        log.warning("%s lost the broker (%s); reconnecting", self.client_id, reason)

    def on_messages(self, generation: int, messages: list[Message]) -> None:
        # One clock reading per read from the socket: these arrived together.
        received_at = datetime.now(UTC)
        arrived = time.monotonic()
        items = []
        for msg in messages:
            if msg.topic == SYS_DROPPED_TOPIC:
                self._note_broker_drops(msg.payload)
                continue
            items.append(
                Inbound(
                    msg.packet_id,
                    msg.qos,
                    generation,
                    msg.topic,
                    msg.payload,
                    received_at,
                    arrived,
                )
            )
        m.MESSAGES_RECEIVED.inc(len(items))
        with self._cond:
            self.stats.received += len(items)
            was_empty = not self._inbox
            self._inbox.extend(items)
            # Wake the worker when a batch is full, and for the first messages after a quiet
            # moment: it may be waiting out its idle poll, unaware a flush timer should start.
            # (Waking only on a full batch held such messages up to IDLE_POLL_S: the 250 ms
            # p99 of the live benchmark.)
            if was_empty or len(self._inbox) >= self.batch_size:
                self._cond.notify()

    def _note_broker_drops(self, payload: bytes) -> None:
        try:
            dropped = int(payload)
        except ValueError:
            return
        previous = m.BROKER_DROPPED._value.get()  # noqa: SLF001 (read back our own gauge)
        m.BROKER_DROPPED.set(dropped)
        if dropped > previous:
            log.error(
                "the broker reports %d dropped messages (was %d): its queue limits were exceeded;"
                " readings were lost before reaching ingest",
                dropped,
                int(previous),
            )

    # --- worker side ----------------------------------------------------------------------------
    def connect(self) -> None:
        self._session.start()

    def wait_connected(self, timeout: float) -> bool:
        """Wait until connected and subscribed (SUBACK received)."""
        return self._connected.wait(timeout)

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; flush and ack what is pending, then disconnect.

        This thread decodes and validates; a writer thread writes, commits and acks, so the
        next batch is parsed while the database commits the previous one. One writer keeps
        the acks in arrival order. A parsed batch waits until the writer takes it before the
        next is cut, so batches grow with the load and at most two are in hand.

        Raises:
            FatalIngestError: the broker refused the credentials.
        """
        self.connect()
        pending: list[Inbound] = []
        handoff: queue.Queue[tuple[list[Inbound], list[Parsed]] | None] = queue.Queue(1)
        writer = threading.Thread(
            target=self._write_loop, args=(handoff, stop), name=f"ingest-writer-{self.slot}"
        )
        writer.start()
        try:
            while self._writer_error is None:
                with self._cond:
                    if not self._inbox and not stop.is_set() and self._fatal is None:
                        timeout = IDLE_POLL_S  # nothing pending: only a stop to notice
                        if pending:
                            timeout = max(0.0, pending[0].arrived + self.flush_s - time.monotonic())
                        self._cond.wait(timeout)
                    pending.extend(self._inbox)
                    self._inbox = []
                if self._fatal is not None:
                    raise FatalIngestError(self._fatal)
                m.PENDING.set(len(pending))
                due = pending and (
                    len(pending) >= self.batch_size
                    or time.monotonic() - pending[0].arrived >= self.flush_s
                    or stop.is_set()
                )
                while due and pending:
                    chunk, pending = pending[: self.batch_size], pending[self.batch_size :]
                    handoff.put((chunk, [self._parse(item) for item in chunk]))
                    # Until the writer takes it, more messages gather for the next batch.
                    handoff.join()
                if stop.is_set():
                    break
        finally:
            handoff.put(None)  # the writer finishes what it holds, then stops
            writer.join()
            self._session.stop()
            self.writer.close()
            m.CONNECTED.labels(str(self.slot)).set(0)
        if self._writer_error is not None:
            raise self._writer_error

    def _write_loop(
        self,
        handoff: queue.Queue[tuple[list[Inbound], list[Parsed]] | None],
        stop: threading.Event,
    ) -> None:
        """The writer thread: commit and ack each handed-over batch, in order."""
        abandoned = False
        while (item := handoff.get()) is not None:
            handoff.task_done()  # taken: the parser may cut the next batch
            if abandoned:
                continue  # stopping while the database is down: not acked, redelivered later
            chunk, parsed = item
            try:
                abandoned = not self._commit_with_retry(chunk, parsed, stop)
            except BaseException as exc:  # a bug: stop the worker, surface it from run()
                self._writer_error = exc
                abandoned = True
                with self._cond:
                    self._cond.notify_all()

    def _commit_with_retry(
        self, chunk: list[Inbound], parsed: list[Parsed], stop: threading.Event
    ) -> bool:
        """Write ``chunk`` and ack it; retry while the database is unavailable.

        Returns False when stopping before the write succeeded (nothing acked).
        """
        batch = self._assemble(parsed)
        delay = RETRY_MIN_S
        while True:
            try:
                self._write(batch, chunk)
            except TransientError as exc:
                m.DB_ERRORS.labels("transient").inc()
                log.warning(
                    "batch of %d messages not written (%s); retrying in %.1f s, not acking",
                    len(chunk),
                    exc,
                    delay,
                )
                if stop.wait(delay):
                    return False
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            except psycopg.Error as exc:
                m.DB_ERRORS.labels("permanent").inc()
                log.error("batch rejected by the database (%s); isolating the message", exc)
                self._isolate(chunk, stop)
            if self.on_committed is not None:
                self.on_committed(chunk)
            self._ack(chunk)
            return True

    def _build_batch(self, chunk: list[Inbound]) -> Batch:
        return self._assemble([self._parse(item) for item in chunk])

    def _assemble(self, parsed: list[Parsed]) -> Batch:
        """The batch to write (on the writer's thread: the device check uses its connection)."""
        known: set[str] | None = None
        if self.writer.unknown_devices == "reject":
            known = self.writer.known_devices({p.device for p in parsed if p.rows and p.device})
        batch = Batch()
        for p in parsed:
            if known is not None and p.rows and p.device not in known:
                p.errors.insert(
                    0,
                    PayloadError(
                        "unknown_device",
                        f"device {p.device!r} is not registered and "
                        "DOTHI_INGEST_UNKNOWN_DEVICES=reject",
                    ),
                )
                p.rows = []
            if p.rows:
                batch.rows.extend(p.rows)
                batch.devices[p.rows[0][0]] = p.item.received_at
            if p.errors:
                batch.dead_letters.append(_dead_letter(p))
        return batch

    def _parse(self, item: Inbound) -> Parsed:
        max_bytes = self.settings.ingest_max_payload_bytes
        if len(item.payload) > max_bytes:
            err = PayloadError(
                "oversize",
                f"payload of {len(item.payload)} bytes exceeds the limit of {max_bytes} bytes "
                "(DOTHI_INGEST_MAX_PAYLOAD_BYTES)",
            )
            return Parsed(item, None, [], [err])
        try:
            decoded = formats.decode(item.topic, item.payload, item.received_at)
        except PayloadError as exc:
            return Parsed(item, None, [], [exc])
        v = validate(decoded, item.received_at, self.limits)
        if not v.rows and not v.errors:
            v.errors.append(PayloadError("no_readings", "the message holds no readings"))
        return Parsed(item, decoded.device_id, v.rows, v.errors)

    def _write(self, batch: Batch, chunk: list[Inbound]) -> None:
        result = self.writer.write(batch)
        self.stats.stored += result.inserted
        self.stats.duplicates += result.duplicates
        self.stats.dead_letters += result.dead_letters
        m.READINGS_STORED.inc(result.inserted)
        m.READINGS_DUPLICATE.inc(result.duplicates)
        m.DEAD_LETTERS.inc(result.dead_letters)
        m.DEVICES_REGISTERED.inc(result.registered)
        m.BATCH_READINGS.observe(len(batch.rows))
        m.COMMIT_SECONDS.observe(result.seconds)
        for dl in batch.dead_letters:
            m.REJECTED.labels(dl.reason).inc()
        now = time.monotonic()
        m.LATENCY_SECONDS.observe(now - chunk[0].arrived)

    def _isolate(self, chunk: list[Inbound], stop: threading.Event) -> None:
        """Write message by message; a message the database refuses becomes a dead letter."""
        for item in chunk:
            single = self._build_batch([item])
            while not stop.is_set():
                try:
                    self._write(single, [item])
                    break
                except TransientError:
                    stop.wait(RETRY_MIN_S)
                except psycopg.Error as exc:
                    dl = DeadLetter(
                        item.topic,
                        item.payload,
                        "db_rejected",
                        f"the database refused this message: {exc}".strip(),
                    )
                    try:
                        self._write(Batch(dead_letters=[dl]), [item])
                        break
                    except TransientError:
                        stop.wait(RETRY_MIN_S)

    def _ack(self, chunk: list[Inbound]) -> None:
        # A packet id from an earlier connection may now name another message: the session
        # drops acks that are not for its current connection.
        by_generation: dict[int, list[int]] = {}
        for item in chunk:
            if item.qos > 0:
                by_generation.setdefault(item.generation, []).append(item.mid)
        acked = sum(self._session.ack(mids, gen) for gen, mids in by_generation.items())
        m.MESSAGES_ACKED.inc(acked)
        self.stats.acked += acked


def _dead_letter(p: Parsed) -> DeadLetter:
    details = "; ".join(e.detail for e in p.errors[:20])
    if len(p.errors) > 20:
        details += f"; … and {len(p.errors) - 20} more"
    if p.rows:
        details += f" ({len(p.rows)} other readings of this message were stored)"
    return DeadLetter(p.item.topic, p.item.payload, p.errors[0].reason, details, p.device)
