"""From the city to MQTT messages.

:class:`Generator` turns a stretch of simulated time into messages: each device's readings on
its grid (minus those lost to faults or a sensor outage), values with their faults, encoded in
the device's format, with transport faults deciding when (and how) each message goes out.
Backfill takes them device by device (:meth:`Generator.device_major`); real time takes them from
a :class:`Stream` in the order they are due, paced to a clock.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from simulators import energy, faults, payloads, schedule, signals
from simulators.environment import Environment
from simulators.payloads import Reading
from simulators.profiles import DAY_S, local_day
from simulators.profiles import day_start as local_day_start

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from simulators.city import City, DeviceSpec
    from simulators.faults import FaultPlan
    from simulators.prng import FloatArray
    from simulators.scenarios import Scenario


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT message to publish.

    Attributes:
        topic: the MQTT topic.
        payload: the bytes.
        device_id: the sending device.
        ts: time of its first reading (UTC epoch seconds).
        publish_at: simulated time it is sent (later than ``ts`` for late/out-of-order ones).
        readings: how many (metric, time) values it carries.
        faults: the transport faults it carries (``malformed``, ``late``, ``out-of-order``).
        copy: True for the second copy of a ``duplicate``.
    """

    topic: str
    payload: bytes
    device_id: str
    ts: int
    publish_at: float
    readings: int
    faults: tuple[str, ...] = ()
    copy: bool = False


@dataclass
class Generator:
    """Messages of a city's devices for stretches of simulated time.

    Attributes:
        city: the city.
        devices: the devices to simulate (a subset of the city's, or all).
        seed: the simulation seed.
        scenario: the active scenario, or None.
        plan: the fault rates.
        batch: at most this many readings per message for formats that can batch.
    """

    city: City
    devices: Sequence[DeviceSpec]
    seed: int = 0
    scenario: Scenario | None = None
    plan: FaultPlan = field(default_factory=faults.FaultPlan)
    batch: int = 1

    def environment(self, t0: float, t1: float) -> Environment:
        """The shared fields for a stretch."""
        return Environment(self.city, self.seed, self.scenario, t0, t1)

    def readings(
        self, device: DeviceSpec, t0: float, t1: float, env: Environment | None = None
    ) -> list[Reading]:
        """The readings a device sends for [t0, t1), faults and scenario included."""
        env = env or self.environment(t0, t1)
        times = schedule.reading_times(device, t0, t1)
        if self.scenario is not None:
            times = times[~self.scenario.silent(device, times.astype(np.float64))]
        if self.plan.active(device.id) and times.size:
            times = times[~faults.absent(device, times.astype(np.float64), self.plan)]
        if times.size == 0:
            return []
        tf = times.astype(np.float64)
        values = signals.sample(device, tf, env)
        wrong: dict[str, np.ndarray] = {}
        if self.plan.active(device.id):

            def clean(at: FloatArray) -> dict[str, FloatArray]:
                return signals.sample(device, at, env)

            def counter(at: FloatArray) -> FloatArray:
                return energy.counter(device, at, env)

            values = faults.apply_value_faults(
                device, tf, values, self.plan, clean=clean, counter=counter
            )
            wrong = faults.wrong_unit_masks(device, tf, self.plan)
        seqs = schedule.sequence(device, times).tolist()
        columns = {m: values[m].tolist() for m in device.metrics}
        out = []
        for i, ts in enumerate(times.tolist()):
            row = {m: payloads.round_value(m, columns[m][i]) for m in device.metrics}
            for metric, mask in wrong.items():
                if mask[i]:
                    _, scale, offset = faults.WRONG_UNITS[metric]
                    extra = max(0, -math.floor(math.log10(scale))) if scale < 1 else 0
                    row[metric] = payloads.round_value(
                        metric, row[metric] * scale + offset, extra + 1
                    )
            out.append(Reading(int(ts), int(seqs[i]), row))
        return out

    def _tasmota_energy(
        self, device: DeviceSpec, readings: list[Reading], env: Environment
    ) -> list[dict[str, float]]:
        """Today / Yesterday / Period of a Tasmota energy monitor, from its counter."""
        if "energy" not in device.metrics:
            return [{} for _ in readings]
        ts = np.array([r.ts for r in readings], dtype=np.float64)
        midnight = local_day_start(local_day(ts))
        at = np.concatenate((ts, midnight, midnight - DAY_S, ts - device.interval_s))
        e = energy.counter(device, at, env)
        n = ts.size
        now, mid, prev, before = e[:n], e[n : 2 * n], e[2 * n : 3 * n], e[3 * n :]
        start = float(schedule.ORIGIN)
        return [
            {
                "today": float(now[i] - mid[i]),
                "yesterday": float(mid[i] - prev[i]),
                "period": float((now[i] - before[i]) * 1000.0),
                "start": start,
            }
            for i in range(n)
        ]

    def encode(
        self, device: DeviceSpec, chunk: list[Reading], extra: dict[str, float] | None = None
    ) -> tuple[str, bytes]:
        """Topic and payload of one message in the device's format."""
        fmt = device.format
        if fmt == "native":
            return payloads.native(device, chunk)
        if fmt == "senml":
            return payloads.senml(device, chunk)
        if fmt == "chirpstack":
            return payloads.chirpstack(self.city, device, chunk[0])
        if fmt == "tts":
            return payloads.tts(self.city, device, chunk[0])
        return payloads.tasmota(device, chunk[0], extra)

    def device_messages(
        self, device: DeviceSpec, t0: float, t1: float, env: Environment
    ) -> list[Message]:
        """A device's messages for [t0, t1) with their transport faults applied."""
        readings = self.readings(device, t0, t1, env)
        if not readings:
            return []
        size = self.batch if device.format in payloads.BATCHING_FORMATS else 1
        extras = (
            self._tasmota_energy(device, readings, env)
            if device.format == "tasmota"
            else [{} for _ in readings]
        )
        out: list[Message] = []
        for start in range(0, len(readings), max(size, 1)):
            chunk = readings[start : start + max(size, 1)]
            topic, payload = self.encode(device, chunk, extras[start])
            first, last = chunk[0].ts, chunk[-1].ts
            count = sum(len(r.values) for r in chunk)
            due = float(last)
            struck = faults.transport_faults(self.plan, device, first)
            if "malformed" in struck:
                payload = faults.corrupt(self.plan, device, first, payload)
            if "late" in struck:
                due = last + faults.late_delay_s(self.plan, device, first)
                struck = tuple(f for f in struck if f != "out-of-order")
            elif "out-of-order" in struck:
                # Held until just after the device's next message.
                due = last + device.interval_s * len(chunk) + 0.5
            kept = tuple(f for f in struck if f != "duplicate")
            out.append(Message(topic, payload, device.id, first, due, count, kept))
            if "duplicate" in struck:
                out.append(
                    Message(topic, payload, device.id, first, due + 0.25, count, kept, copy=True)
                )
        return out

    def device_major(self, t0: float, t1: float, window_s: float) -> Iterator[Message]:
        """Everything of [t0, t1) for backfill: window by window, device by device.

        Only one device's messages are held at a time, so a large city backfills in little
        memory and each device's signals are computed for a whole window at once (fast). Within
        a device, messages come in the order they are due (late ones after newer ones).
        """
        start = t0
        while start < t1:
            end = min(start + window_s, t1)
            env = self.environment(start, end)
            for device in self.devices:
                msgs = self.device_messages(device, start, end, env)
                msgs.sort(key=lambda m: m.publish_at)
                yield from msgs
            start = end

    def window(self, t0: float, t1: float) -> list[Message]:
        """Every device's messages for [t0, t1), in the order they are due."""
        env = self.environment(t0, t1)
        msgs: list[tuple[float, int, int, Message]] = []
        for order, device in enumerate(self.devices):
            for j, m in enumerate(self.device_messages(device, t0, t1, env)):
                msgs.append((m.publish_at, order, j, m))
        msgs.sort(key=lambda x: (x[0], x[1], x[2]))
        return [m for *_, m in msgs]


class Stream:
    """Messages in the order they are due, generated ``window_s`` of simulated time at a time.

    Args:
        generator: makes the messages.
        start: simulated time the stream starts.
        end: simulated time after which no readings are generated (None: endless).
        window_s: how much simulated time one generation step covers.
    """

    def __init__(
        self, generator: Generator, start: float, end: float | None = None, window_s: float = 3600
    ) -> None:
        self.generator = generator
        self.generated_until = float(start)
        self.end = end
        self.window_s = window_s
        self._heap: list[tuple[float, int, Message]] = []
        self._order = itertools.count()

    def _fill(self, t: float) -> None:
        while self.generated_until <= t and (self.end is None or self.generated_until < self.end):
            w_end = self.generated_until + self.window_s
            if self.end is not None:
                w_end = min(w_end, self.end)
            for m in self.generator.window(self.generated_until, w_end):
                heapq.heappush(self._heap, (m.publish_at, next(self._order), m))
            self.generated_until = w_end

    def due(self, t: float) -> Iterator[Message]:
        """Messages due at or before simulated time ``t``, in order."""
        self._fill(t)
        while self._heap and self._heap[0][0] <= t:
            yield heapq.heappop(self._heap)[2]
            self._fill(t)

    def next_due(self) -> float | None:
        """When the next message is due (generating ahead if needed), or None at the end."""
        for _ in range(1000):  # a city with no device due for 1000 windows has nothing to send
            if self._heap or (self.end is not None and self.generated_until >= self.end):
                break
            self._fill(self.generated_until)
        return self._heap[0][0] if self._heap else None
