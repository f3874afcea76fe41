"""The simulators against a real Mosquitto: what subscribers receive is what the summary says.

An ``admin`` subscriber is connected before anything is published, then counts and decodes
what arrives. The simulator runs in-process through its CLI entry point (``main``), except for
the signal test, which needs a process of its own.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from core.metrics import METRICS, resolve
from dothi.stack import LocalStack, Mosquitto, free_port
from ingest.formats import decode
from simulators import faults, payloads, schedule
from simulators.city import load_city
from simulators.cli import main
from simulators.stream import Generator

ROOT = Path(__file__).resolve().parents[1]
TOPICS = (
    "dothi/v1/devices/+/up",
    "application/+/device/+/event/up",
    "v3/+/devices/+/up",
    "tele/+/SENSOR",
)
RECEIVED_AT = datetime(2026, 12, 1, tzinfo=UTC)


class Capture:
    """An MQTT subscriber that keeps every message of the simulator topics, in arrival order."""

    def __init__(self, url: str, topics: tuple[str, ...] = TOPICS) -> None:
        parts = urlsplit(url)
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-capture-{uuid.uuid4().hex[:8]}"
        )
        self.client.username_pw_set(parts.username, parts.password)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        self.client.loop_start()
        self.client.subscribe([(t, 1) for t in topics])
        assert self._subscribed.wait(10), "no SUBACK"

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def wait_for(self, count: int, timeout: float = 30.0) -> list[tuple[str, bytes]]:
        """Wait until ``count`` messages arrived (or nothing came for ``timeout`` s)."""
        last, seen = time.monotonic(), -1
        while True:
            with self._lock:
                n = len(self.messages)
            if n >= count:
                break
            if n != seen:
                last, seen = time.monotonic(), n
            if time.monotonic() - last > timeout:
                break
            time.sleep(0.05)
        time.sleep(0.3)  # anything beyond the expected count shows up too
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def capture(stack: LocalStack) -> Iterator[Capture]:
    cap = Capture(stack.mosquitto.url("admin"))
    try:
        yield cap
    finally:
        cap.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    """Run ``dothi simulate`` in-process; return code, the JSON summary and stderr."""
    code = main(list(argv))
    out = capsys.readouterr()
    lines = [line for line in out.out.splitlines() if line.startswith("{")]
    return code, json.loads(lines[-1]) if lines else {}, out.err


def readings_of(topic: str, payload: bytes) -> list[tuple[str, str, int, float]]:
    """(device, canonical metric, whole second, value as sent) of a message."""
    decoded = decode(topic, payload, RECEIVED_AT)
    assert not decoded.errors, (topic, decoded.errors)
    out = []
    for r in decoded.readings:
        assert r.ts is not None
        out.append((decoded.device_id, resolve(r.name).name, math.floor(r.ts.timestamp()), r.value))
    return out


# -- counts -------------------------------------------------------------------------------------
def test_backfill_publishes_the_expected_count(
    stack: LocalStack, capture: Capture, capsys: pytest.CaptureFixture[str]
) -> None:
    url = stack.mosquitto.url("simulator")
    code, summary, err = run(
        capsys,
        "--mqtt-url", url, "--devices", "60", "--from", "2026-03-01T06:00",
        "--to", "2026-03-01T09:00", "--batch", "10",
    )  # fmt: skip
    assert code == 0, err
    city = load_city(devices=60)
    t0 = datetime(2026, 2, 28, 23, tzinfo=UTC).timestamp()
    expected_msgs = expected_readings = 0
    for d in city.devices:
        n = schedule.reading_times(d, t0, t0 + 3 * 3600).size
        expected_readings += n * len(d.metrics)
        expected_msgs += math.ceil(n / 10) if d.format in ("native", "senml") else n
    assert summary["messages_sent"] == expected_msgs
    assert summary["messages_acked"] == expected_msgs
    assert summary["readings"] == expected_readings
    got = capture.wait_for(expected_msgs)
    assert len(got) == expected_msgs
    keys = {r[:3] for topic, payload in got for r in readings_of(topic, payload)}
    assert len(keys) == expected_readings
    assert {k[0] for k in keys} == {d.id for d in city.devices}


@pytest.mark.parametrize(("fmt", "k"), [("native", 1), ("senml", 25), ("native", 40)])
def test_load_summary_reconciles_with_what_arrived(
    stack: LocalStack, capture: Capture, capsys: pytest.CaptureFixture[str], fmt: str, k: int
) -> None:
    url = stack.mosquitto.url("simulator")
    code, summary, err = run(
        capsys,
        "load", "--mqtt-url", url, "--devices", "37", "--messages", "3000",
        "--readings-per-message", str(k), "--format", fmt, "--max-outstanding", "500",
    )  # fmt: skip
    assert code == 0, err
    assert summary["messages_sent"] == summary["messages_acked"] == 3000
    assert summary["readings"] == summary["unique_keys"] == 3000 * k
    got = capture.wait_for(3000)
    assert len(got) == 3000
    keys = set()
    prefix = summary["device_id_prefix"]
    for topic, payload in got:
        for row in readings_of(topic, payload):
            assert row[0].startswith(prefix)
        decoded = decode(topic, payload, RECEIVED_AT)
        keys |= {(decoded.device_id, r.name, r.ts) for r in decoded.readings}
    assert len(keys) == summary["unique_keys"]


# -- faults -------------------------------------------------------------------------------------
FAULT_SPEC = (
    "spike=0.03,flatline=0.5,drift=0.6,dropout=0.03,offline=0.5,counter-reset=0.6,"
    "pm-inversion=0.03,duplicate=0.03,out-of-order=0.03,late=0.02,malformed=0.03,wrong-unit=0.03"
)


def _close(a: float, b: float, digits: int) -> bool:
    return bool(abs(a - b) <= 1.5 * 10**-digits + 1e-9 * abs(b))


def test_every_fault_leaves_its_signature_in_what_is_published(
    stack: LocalStack, capture: Capture, capsys: pytest.CaptureFixture[str]
) -> None:
    url = stack.mosquitto.url("simulator")
    kinds = "air_quality,solar,river_gauge"
    code, summary, err = run(
        capsys,
        "--mqtt-url", url, "--kinds", kinds, "--from", "2026-01-12T00:00",
        "--to", "2026-01-12T06:00", "--batch", "1", "--seed", "11", "--faults", FAULT_SPEC,
        "--no-device-faults",
    )  # fmt: skip
    assert code == 0, err
    got = capture.wait_for(summary["messages_sent"])
    assert len(got) == summary["messages_sent"]

    # The same stretch without faults, for comparison.
    city = load_city(seed=11)
    devices = [d for d in city.devices if d.kind in kinds.split(",")]
    t0 = datetime(2026, 1, 11, 17, tzinfo=UTC).timestamp()
    clean: dict[tuple[str, int], dict[str, float]] = {}
    for d in devices:
        for r in Generator(city, devices, 11).readings(d, t0, t0 + 6 * 3600):
            clean[(d.id, r.ts)] = dict(r.values)

    malformed: set[bytes] = set()
    arrivals: list[tuple[str, int]] = []
    values: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    for topic, payload in got:
        try:
            json.loads(payload)
        except ValueError:
            malformed.add(payload)
            continue
        rows = readings_of(topic, payload)
        arrivals.append((rows[0][0], rows[0][2]))
        for device, metric, ts, value in rows:
            values[(device, metric)].append((ts, value))

    # malformed: cut short, no JSON parser takes it
    assert len(malformed) == summary["malformed"] > 0
    # duplicate: the very same bytes twice
    repeats = [p for p, n in Counter(p for _, p in got).items() if n > 1]
    assert len(repeats) == summary["duplicates"] > 0
    # out-of-order: a device's message arrives after its next one
    last_seen: dict[str, int] = {}
    backwards = 0
    for device, ts in arrivals:
        if ts < last_seen.get(device, 0):
            backwards += 1
        last_seen[device] = max(ts, last_seen.get(device, 0))
    assert backwards > 0
    # late: arrives after the device's readings at least 10 minutes newer
    newest: dict[str, int] = {}
    late = 0
    for device, ts in arrivals:
        late += ts < newest.get(device, 0) - 600
        newest[device] = max(newest.get(device, 0), ts)
    # (those due after the last reading of the run arrive last, but less than 10 min behind)
    assert summary["late"] >= late > 0.8 * summary["late"]
    # dropout and offline: readings missing, hours-long gaps
    sent = {(d, ts) for d, ts in arrivals}
    assert sent < set(clean)
    longest_gap = max(
        np.diff([t0, *sorted({ts for ts, _ in values[(d.id, d.metrics[0])]}), t0 + 6 * 3600]).max()
        for d in devices
    )
    assert longest_gap >= 2 * 3600

    hits: Counter[str] = Counter()
    for (device, metric), pairs in values.items():
        by_time = sorted(dict(pairs).items())  # a duplicate's second copy adds nothing
        digits = payloads.DECIMALS[metric]
        vs = [v for _, v in by_time]
        ref = [clean[(device, ts)][metric] for ts, _ in by_time]
        for i in range(len(vs) - 8):
            if len(set(vs[i : i + 8])) == 1 and len(set(ref[i : i + 8])) > 1:
                hits["flatline"] += 1
                break
        if metric == "energy" and any(b < a and b < 50 for a, b in itertools.pairwise(vs)):
            hits["counter-reset"] += 1
        for (ts, v), c in zip(by_time, ref, strict=True):
            if _close(v, c, digits):
                hits["equal"] += 1
                continue
            hits["different"] += 1
            if metric in faults.SPIKES:
                mul, add = faults.SPIKES[metric]
                lo, hi = METRICS[metric].reject
                hits["spike"] += _close(v, float(np.clip(c * mul + add, lo, hi)), digits)
            if metric in faults.WRONG_UNITS:
                _, scale, offset = faults.WRONG_UNITS[metric]
                hits["wrong-unit"] += (
                    abs(v - (c * scale + offset)) <= abs(scale) * 10**-digits + 1e-6
                )
            if metric in faults.DRIFTS:
                how, size = faults.DRIFTS[metric]
                x = (ts % (3 * 86400)) / (3 * 86400)
                for sign in (-1, 1):
                    want = c * (1 + sign * size * x) if how == "rel" else c + sign * size * x
                    hits["drift"] += abs(v - want) <= 2 * 10**-digits + 0.01 * abs(want)
    pm = {k[0]: dict(v) for k, v in values.items() if k[1] == "pm25"}
    pm10 = {k[0]: dict(v) for k, v in values.items() if k[1] == "pm10"}
    hits["pm-inversion"] = sum(
        pm[d][ts] > pm10[d][ts] for d in pm for ts in pm[d] if ts in pm10.get(d, {})
    )
    for fault in ("flatline", "counter-reset", "spike", "wrong-unit", "drift", "pm-inversion"):
        assert hits[fault] > 0, (fault, hits)
    assert hits["equal"] > 4 * hits["different"]


# -- time modes ---------------------------------------------------------------------------------
def test_accelerated_real_time_matches_backfill_byte_for_byte(
    stack: LocalStack, capture: Capture, capsys: pytest.CaptureFixture[str]
) -> None:
    url = stack.mosquitto.url("simulator")
    common = ("--mqtt-url", url, "--kinds", "river_gauge,weather", "--seed", "5")
    code, fast, err = run(
        capsys, *common, "--speed", "7200", "--start", "2026-10-01T00:00", "--duration", "2h"
    )
    assert code == 0, err
    live = capture.wait_for(fast["messages_sent"])
    code, back, err = run(
        capsys, *common, "--from", "2026-10-01T00:00", "--to", "2026-10-01T02:00", "--batch", "1"
    )
    assert code == 0, err
    everything = capture.wait_for(fast["messages_sent"] + back["messages_sent"])
    replay = everything[len(live) :]
    assert fast["messages_sent"] == back["messages_sent"] == 2 * 24 + 10 * 24
    assert sorted(live) == sorted(replay)
    stamps = sorted(ts for t, p in live for _, _, ts, _ in readings_of(t, p))
    assert stamps[0] >= datetime(2026, 9, 30, 17, tzinfo=UTC).timestamp()
    assert stamps[-1] < datetime(2026, 9, 30, 19, tzinfo=UTC).timestamp()


# -- errors and signals -------------------------------------------------------------------------
def test_wrong_password_is_one_clear_line(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"mqtt://dothi-simulator:wrong@127.0.0.1:{stack.mosquitto.port}"
    assert main(["--mqtt-url", url, "--kinds", "river_gauge"]) == 1
    err = capsys.readouterr().err
    assert "dothi simulate: error: broker refused the connection: not authorised" in err
    assert "Traceback" not in err
    assert "wrong" not in err


def test_unreachable_broker_names_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    url = f"mqtt://dothi-simulator:secret@127.0.0.1:{port}"
    assert main(["load", "--mqtt-url", url, "--messages", "1"]) == 1
    err = capsys.readouterr().err
    assert f"cannot reach the MQTT broker at mqtt://dothi-simulator@127.0.0.1:{port}" in err
    assert "secret" not in err
    assert "Traceback" not in err


def test_sigterm_stops_cleanly_with_a_summary(stack: LocalStack, capture: Capture) -> None:
    url = stack.mosquitto.url("simulator")
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators", "--mqtt-url", url, "--speed", "600",
         "--kinds", "river_gauge,noise", "--start", "2026-10-01"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        capture.wait_for(3, timeout=20)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["messages_sent"] >= 3
    assert summary["messages_acked"] == summary["messages_sent"]


def test_publisher_reconnects_after_the_broker_restarts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = Path(tempfile.mkdtemp(prefix="dothi-sim-", dir="/tmp"))
    home.chmod(0o755)
    broker = Mosquitto(home, free_port())
    broker.start()
    result: dict[str, Any] = {}
    try:
        url = broker.url("simulator")
        args = ["--mqtt-url", url, "--speed", "1200", "--kinds", "noise", "--duration", "2h",
                "--start", "2026-10-01", "--mqtt-version", "3.1.1"]  # fmt: skip

        def simulate() -> None:
            result["code"] = main(args)

        worker = threading.Thread(target=simulate)
        worker.start()
        time.sleep(1.5)
        broker.stop()
        time.sleep(1.0)
        broker.start()
        worker.join(timeout=60)
        assert not worker.is_alive()
    finally:
        broker.stop()
        shutil.rmtree(home, ignore_errors=True)
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert result["code"] == 0
    assert summary["reconnects"] >= 1
    assert summary["messages_acked"] == summary["messages_sent"] == 10 * 120
