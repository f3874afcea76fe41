"""Time modes: backfill as fast as the broker takes it, then real time or accelerated time.

The same :class:`~simulators.stream.Stream` feeds every mode; only the clock differs. In backfill
messages go out as soon as they are generated (several readings per message where the format
allows); in real time each message waits until the simulated clock reaches its time, and the
simulated clock runs ``speed`` times faster than the wall clock.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from simulators.payloads import rfc3339
from simulators.stream import Generator, Message, Stream

if TYPE_CHECKING:
    import threading
    from typing import TextIO

    from simulators.publisher import Publisher

log = logging.getLogger(__name__)

# Backfill computes each device's signals this much simulated time at a time.
BACKFILL_WINDOW_S = 6 * 3600.0
PROGRESS_EVERY_S = 10.0


class Sink(Protocol):
    """Where messages go."""

    def send(self, msg: Message) -> bool:
        """Send one message; False when stopping."""
        ...  # pragma: no cover


@dataclass
class MqttSink:
    """Messages to an MQTT broker."""

    publisher: Publisher

    def send(self, msg: Message) -> bool:
        """Publish; blocks while the broker is behind."""
        return self.publisher.publish(msg.topic, msg.payload)


@dataclass
class PrintSink:
    """Messages as lines ``topic<TAB>payload`` (``--print``: see what would be sent)."""

    out: TextIO

    def send(self, msg: Message) -> bool:
        """Write one line."""
        self.out.write(f"{msg.topic}\t{msg.payload.decode(errors='replace')}\n")
        return True


@dataclass
class Summary:
    """What a run sent, for reconciling with what arrived.

    ``readings`` counts (metric, time) values in well-formed messages, each message once;
    duplicates and malformed messages are counted apart.
    """

    mode: str
    seed: int
    devices: int
    scenario: str | None = None
    messages: int = 0
    readings: int = 0
    duplicates: int = 0
    malformed: int = 0
    malformed_readings: int = 0
    late: int = 0
    out_of_order: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    by_topic_root: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)

    def add(self, msg: Message) -> None:
        """Count a message that was sent."""
        self.messages += 1
        self.by_topic_root[msg.topic.split("/", 1)[0]] += 1
        if msg.copy:
            self.duplicates += 1
            return
        if "malformed" in msg.faults:
            self.malformed += 1
            self.malformed_readings += msg.readings
            return
        self.late += "late" in msg.faults
        self.out_of_order += "out-of-order" in msg.faults
        self.readings += msg.readings
        self.first_ts = msg.ts if self.first_ts is None else min(self.first_ts, msg.ts)
        self.last_ts = msg.ts if self.last_ts is None else max(self.last_ts, msg.ts)

    def as_dict(self, publisher: Publisher | None = None) -> dict[str, object]:
        """The summary as JSON-ready data."""
        elapsed = time.monotonic() - self.started
        out: dict[str, object] = {
            "mode": self.mode,
            "seed": self.seed,
            "devices": self.devices,
            "scenario": self.scenario,
            "messages_sent": self.messages,
            "readings": self.readings,
            "duplicates": self.duplicates,
            "malformed": self.malformed,
            "malformed_readings": self.malformed_readings,
            "late": self.late,
            "out_of_order": self.out_of_order,
            "first_ts": rfc3339(self.first_ts) if self.first_ts is not None else None,
            "last_ts": rfc3339(self.last_ts) if self.last_ts is not None else None,
            "by_topic": dict(sorted(self.by_topic_root.items())),
            "duration_s": round(elapsed, 3),
            "rate_msg_s": round(self.messages / elapsed, 1) if elapsed > 0 else None,
        }
        if publisher is not None:
            out["messages_acked"] = publisher.completed - publisher.rejected
            out["messages_rejected"] = publisher.rejected
            out["reconnects"] = publisher.reconnects
        return out

    def to_json(self, publisher: Publisher | None = None) -> str:
        """One line of JSON."""
        return json.dumps(self.as_dict(publisher), ensure_ascii=False)


class _Progress:
    def __init__(self, summary: Summary, what: str) -> None:
        self.summary = summary
        self.what = what
        self.next = time.monotonic() + PROGRESS_EVERY_S

    def tick(self, sim_time: float) -> None:
        now = time.monotonic()
        if now >= self.next:
            self.next = now + PROGRESS_EVERY_S
            log.info(
                "%s: %d messages, %d readings sent; simulated time %s",
                self.what,
                self.summary.messages,
                self.summary.readings,
                rfc3339(sim_time),
            )


def backfill(
    generator: Generator,
    t0: float,
    t1: float,
    *,
    sink: Sink,
    summary: Summary,
    stop: threading.Event,
) -> bool:
    """Send everything of [t0, t1) as fast as the sink takes it.

    Returns:
        False if stopped before the end.
    """
    progress = _Progress(summary, "backfill")
    for msg in generator.device_major(t0, t1, BACKFILL_WINDOW_S):
        if stop.is_set() or not sink.send(msg):
            return False
        summary.add(msg)
        progress.tick(msg.ts)
    log.info(
        "backfill %s → %s done: %d messages, %d readings",
        rfc3339(t0),
        rfc3339(t1),
        summary.messages,
        summary.readings,
    )
    return True


def real_time(
    generator: Generator,
    start: float,
    *,
    sink: Sink,
    summary: Summary,
    stop: threading.Event,
    speed: float = 1.0,
    duration_s: float | None = None,
    catch_up: bool = False,
) -> bool:
    """Send each message when the simulated clock reaches it.

    The simulated clock starts at ``start`` now and runs ``speed`` times faster than the wall
    clock; messages already due (e.g. after a backfill took a while) go out at once. With
    ``catch_up`` the clock never passes the wall clock: an accelerated run that started in the
    past replays up to now and then goes on in real time (ingest refuses future timestamps).

    Returns:
        False if stopped before the end (``duration_s`` of simulated time), True at the end.
    """
    end = None if duration_s is None else start + duration_s
    window = min(max(60.0, 30.0 * speed), 3600.0)
    stream = Stream(generator, start, end, window_s=window)
    wall0 = time.monotonic()
    progress = _Progress(summary, "real time" if speed == 1 else f"×{speed:g}")

    def sim_now() -> float:
        t = start + (time.monotonic() - wall0) * speed
        return min(t, time.time()) if catch_up else t

    while not stop.is_set():
        now = sim_now()
        for msg in stream.due(now):
            if stop.is_set() or not sink.send(msg):
                return False
            summary.add(msg)
        progress.tick(now)
        nxt = stream.next_due()
        if nxt is None:
            return True
        rate = 1.0 if catch_up and sim_now() >= time.time() - 1 else speed
        wait = (nxt - sim_now()) / rate
        if wait > 0:
            stop.wait(min(wait, 1.0))
    return False
