"""Decode throughput of the payload decoders (messages per second, one core).

Run: ``.venv/bin/python bench/formats_bench.py [seconds-per-case]``. Not a test; numbers depend on
the machine.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime

from ingest.formats import decode

RECEIVED = datetime(2025, 1, 9, 3, 0, tzinfo=UTC)

NATIVE_ONE = b'{"ts":"2025-01-09T10:00:00+07:00","seq":42,"readings":{"pm25":38.2}}'

SENML_50 = json.dumps(
    [{"bn": "urn:dev:mac:a8404187d187106e:", "bt": 1.7364e9, "bver": 10, "bu": "ug/m3"}]
    + [{"n": f"m{i % 10}", "v": 30.0 + i, "t": -60 * (i // 10)} for i in range(50)]
).encode()

CHIRPSTACK_UP = json.dumps(
    {
        "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        "time": "2022-07-18T09:34:15.775023242+00:00",
        "deviceInfo": {
            "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
            "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97",
            "deviceProfileName": "Test device-profile",
            "deviceName": "Test device",
            "devEui": "0101010101010101",
            "tags": {"key": "value"},
        },
        "devAddr": "00189440",
        "adr": True,
        "dr": 1,
        "fCnt": 57,
        "fPort": 1,
        "data": "qg==",
        "object": {"pm25": 38.2, "pm10": 61, "temperature": 24.6, "humidity": 82.1},
        "rxInfo": [{"gatewayId": "0016c001f153a14c", "rssi": -36, "snr": 10.5}],
        "txInfo": {"frequency": 923200000},
    }
).encode()

CASES = (
    ("native, 1 reading", "dothi/v1/devices/aq-001/up", NATIVE_ONE),
    ("SenML, 50 records", "dothi/v1/devices/aq-001/up", SENML_50),
    (
        "ChirpStack uplink, 4 readings",
        "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/0101010101010101/event/up",
        CHIRPSTACK_UP,
    ),
)


def measure(topic: str, payload: bytes, seconds: float) -> tuple[float, int]:
    """Return (messages per second, readings per message), best of three runs."""
    readings = len(decode(topic, payload, RECEIVED).readings)
    best = 0.0
    for _ in range(3):
        count = 0
        start = time.perf_counter()
        deadline = start + seconds / 3
        while True:
            for _ in range(1000):
                decode(topic, payload, RECEIVED)
            count += 1000
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, count / (now - start))
    return best, readings


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    print(f"Python {sys.version.split()[0]}, {seconds:g} s per case (best of 3)")
    for label, topic, payload in CASES:
        rate, readings = measure(topic, payload, seconds)
        print(
            f"{label:<32} {rate:>10,.0f} msg/s  {rate * readings:>11,.0f} readings/s  "
            f"({len(payload)} bytes)"
        )


if __name__ == "__main__":
    main()
