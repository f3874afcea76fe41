"""Load mode: as many messages as asked for, at a given rate, with a summary to reconcile.

Unlike the city simulation, values here are cheap stand-ins; what matters is that every reading
is a distinct (device, metric, time) key, so after a run the database must hold exactly
``unique_keys`` rows for the run's device-id prefix. Each message carries the send time as its
device timestamp (milliseconds, strictly increasing per device).
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

from simulators.payloads import SENML_NAMES, SENML_UNITS, native_topic, rfc3339

if TYPE_CHECKING:
    import threading

    from simulators.publisher import Publisher

log = logging.getLogger(__name__)

# Metrics a load message cycles through, with a typical value each (no counters: every reading
# must be independent of the others).
LOAD_METRICS: Final[tuple[tuple[str, float], ...]] = (
    ("pm25", 35.0),
    ("pm10", 60.0),
    ("no2", 40.0),
    ("o3", 60.0),
    ("co", 800.0),
    ("so2", 12.0),
    ("temperature", 26.0),
    ("humidity", 80.0),
    ("pressure", 1010.0),
    ("noise_laeq", 62.0),
    ("water_level", 1.8),
    ("rainfall", 0.4),
    ("voltage", 221.0),
    ("current", 3.2),
    ("power", 650.0),
    ("power_factor", 0.92),
    ("frequency", 50.0),
    ("dimming", 80.0),
    ("battery", 90.0),
)


@dataclass(frozen=True)
class LoadOptions:
    """What a load run sends.

    Attributes:
        devices: distinct device ids (``{prefix}-{n:05d}``), used round robin.
        messages: messages to send.
        rate: messages per second, or None for as fast as possible.
        readings_per_message: (metric, time) values per message.
        format: ``native`` or ``senml``.
        prefix: device id prefix; a fresh random one when None.
    """

    devices: int = 1000
    messages: int = 100_000
    rate: float | None = None
    readings_per_message: int = 1
    format: str = "native"
    prefix: str | None = None


def default_prefix() -> str:
    """A fresh device-id prefix, so a run's rows can be told from other runs'."""
    return f"load-{secrets.token_hex(3)}"


class _Clock:
    """Millisecond timestamps, strictly increasing per device."""

    def __init__(self, devices: int) -> None:
        self.last = [0] * devices

    def take(self, device: int, count: int) -> int:
        now_ms = int(time.time() * 1000)
        base = max(now_ms, self.last[device] + 1)
        self.last[device] = base + count - 1
        return base


# Ten values per metric within ±1 % of its typical one (inside every plausible range);
# message n, reading j takes value (n + j) % 10.
_VALUES: Final = tuple(
    tuple(round(base * (0.99 + 0.002 * r), 3) for r in range(10)) for _, base in LOAD_METRICS
)
_NAMES: Final = tuple(name for name, _ in LOAD_METRICS)
_SENML: Final = tuple((SENML_NAMES[name], SENML_UNITS[name]) for name in _NAMES)


@lru_cache(maxsize=4096)
def _second(sec: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))


def _ms_time(ms: int) -> str:
    """RFC 3339 UTC with milliseconds."""
    sec, milli = divmod(ms, 1000)
    return f"{_second(sec)}.{milli:03d}Z"


def timestamps_per_message(k: int) -> int:
    """Distinct timestamps a message of ``k`` readings uses (one per round of the metrics)."""
    return math.ceil(k / len(LOAD_METRICS))


def encode(fmt: str, device_id: str, n: int, base_ms: int, k: int) -> bytes:
    """Payload of load message ``n`` with ``k`` readings, timestamps from ``base_ms`` on."""
    per_time = len(LOAD_METRICS)
    times = timestamps_per_message(k)
    if fmt == "senml":
        records: list[dict[str, Any]] = []
        for i in range(k):
            m = i % per_time
            name, unit = _SENML[m]
            rec: dict[str, Any] = {}
            if i == 0:
                rec["bn"] = f"urn:dev:id:{device_id}:"
                rec["bt"] = base_ms / 1000
            if i >= per_time:
                rec["t"] = (i // per_time) / 1000
            rec["n"] = name
            rec["u"] = unit
            rec["v"] = _VALUES[m][(n + i) % 10]
            records.append(rec)
        return json.dumps(records, separators=(",", ":")).encode()
    objs = []
    for j in range(times):
        first = j * per_time
        count = min(k - first, per_time)
        objs.append(
            {
                "ts": _ms_time(base_ms + j),
                "seq": n,
                "readings": {_NAMES[m]: _VALUES[m][(n + first + m) % 10] for m in range(count)},
            }
        )
    body: Any = objs[0] if times == 1 else objs
    return json.dumps(body, separators=(",", ":")).encode()


def run_load(
    publisher: Publisher, options: LoadOptions, stop: threading.Event
) -> dict[str, object]:
    """Publish a load run and return its summary.

    The summary's ``unique_keys`` is what the readings table must hold for the run's prefix;
    ``messages_acked`` is what the broker acknowledged (QoS 1).
    """
    if options.format not in ("native", "senml"):
        raise ValueError(f"load format must be native or senml, got {options.format!r}")
    prefix = options.prefix or default_prefix()
    ids = [f"{prefix}-{i:05d}" for i in range(options.devices)]
    topics = [native_topic(d) for d in ids]
    clock = _Clock(options.devices)
    k = options.readings_per_message
    stamps = timestamps_per_message(k)
    first_ms: int | None = None
    last_ms = 0
    sent = readings = 0
    started = time.perf_counter()
    next_log = started + 10.0
    for n in range(options.messages):
        if stop.is_set():
            break
        if options.rate is not None:
            due = started + n / options.rate
            delay = due - time.perf_counter()
            if delay > 0:
                stop.wait(delay)
        d = n % options.devices
        base_ms = clock.take(d, stamps)
        payload = encode(options.format, ids[d], n, base_ms, k)
        if not publisher.publish(topics[d], payload):
            break
        first_ms = base_ms if first_ms is None else min(first_ms, base_ms)
        last_ms = max(last_ms, clock.last[d])
        sent += 1
        readings += k
        now = time.perf_counter()
        if now >= next_log:
            next_log = now + 10.0
            log.info(
                "load: %d/%d messages sent, %d unacknowledged",
                sent,
                options.messages,
                publisher.outstanding,
            )
    publish_done = time.perf_counter()
    publisher.flush(None if not stop.is_set() else 10.0)
    duration = time.perf_counter() - started
    return {
        "mode": "load",
        "format": options.format,
        "qos": publisher.qos,
        "devices": options.devices,
        "device_id_prefix": prefix,
        "topic_pattern": native_topic(f"{prefix}-NNNNN"),
        "messages_sent": sent,
        "messages_acked": publisher.completed - publisher.rejected - publisher.dropped,
        "messages_rejected": publisher.rejected,
        "readings": readings,
        "readings_per_message": k,
        "unique_keys": readings,
        "first_ts": rfc3339(first_ms / 1000, digits=3) if first_ms is not None else None,
        "last_ts": rfc3339(last_ms / 1000, digits=3) if first_ms is not None else None,
        "publish_s": round(publish_done - started, 3),
        "duration_s": round(duration, 3),
        "rate_msg_s": round(sent / duration, 1) if duration > 0 else None,
        "rate_readings_s": round(readings / duration, 1) if duration > 0 else None,
        "max_outstanding": publisher.max_outstanding,
        "reconnects": publisher.reconnects,
        "stopped_early": sent < options.messages,
    }
