"""Property tests of the payload decoders (T10 of STYLE.md): whatever arrives, a decoder returns
readings with finite values or raises PayloadError with a known reason, and it finishes.
"""

from __future__ import annotations

import copy
import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import PayloadError
from ingest.formats import decode
from ingest.model import Decoded
from tests.test_formats import (
    CHIRPSTACK,
    CHIRPSTACK_UP,
    NATIVE,
    SENML_AIR,
    SENML_METER,
    SENML_RFC,
    TASMOTA,
    TASMOTA_AIR,
    TASMOTA_ENERGY,
    TTS,
    TTS_UP,
)

RECEIVED = datetime(2025, 1, 9, 3, 0, tzinfo=UTC)

REASONS = frozenset(
    (
        "unknown_topic",
        "bad_device_id",
        "invalid_utf8",
        "malformed_json",
        "wrong_shape",
        "wrong_type",
        "not_finite",
        "bad_timestamp",
        "device_mismatch",
        "duplicate_metric",
        "unsupported_senml",
        "no_readings",
    )
)

NATIVE_EXAMPLE = (
    b'[{"ts":"2025-01-09T10:00:00+07:00","seq":1,"readings":{"pm25":38.2,"noise":'
    b'{"value":67.4,"unit":"dB"},"lamp_on":true}},{"ts":1736391600,"readings":{"pm10":61}}]'
)

# (topic, valid payload) per decoder.
EXAMPLES: dict[str, tuple[str, bytes]] = {
    "native": (NATIVE, NATIVE_EXAMPLE),
    "senml_air": (NATIVE, SENML_AIR),
    "senml_meter": (NATIVE, SENML_METER),
    "senml_rfc": (NATIVE, SENML_RFC),
    "chirpstack": (CHIRPSTACK, CHIRPSTACK_UP),
    "ttn": (TTS, TTS_UP),
    "tasmota_energy": (TASMOTA, TASMOTA_ENERGY),
    "tasmota_air": (TASMOTA, TASMOTA_AIR),
}

# Keys the decoders look at, so mutations hit the interesting paths.
KEYS = (
    "ts", "seq", "readings", "device_id", "value", "unit",
    "bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "v", "vs", "vb", "vd", "s", "t", "ut", "x_",
    "deviceInfo", "devEui", "time", "fCnt", "object",
    "end_device_ids", "uplink_message", "decoded_payload", "rx_metadata", "received_at", "f_cnt",
    "Time", "TempUnit", "PressureUnit", "ENERGY", "Total", "Temperature", "PM2.5", "DewPoint",
    "", "pm25",
)  # fmt: skip

# Placeholders that become JSON text json.dumps cannot write.
_RAW = {'"@INF@"': "1e400", '"@NINF@"': "-1e400", '"@NAN@"': "NaN", '"@BIG@"': "9" * 400}

special_leaves: st.SearchStrategy[Any] = st.sampled_from(
    [
        "@INF@", "@NINF@", "@NAN@", "@BIG@",
        10**400, -(10**400), 2**63, -1, 2**28, 2**28 - 1, 1e308, -1e308, 5e-324, 0, -0.0,
        "2025-01-09T10:00:00", "2025-01-09T10:00:00Z", "2025-01-09T10:00:00.123456789+07:00",
        "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1970-01-01T00:00:00Z",
        "", "C", "F", "0101010101010101", "dev1", "aq-001", "other", "\x00", "\ud800", "é" * 50,
        True, False, None, [], {},
    ]
)  # fmt: skip
leaves = (
    special_leaves
    | st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


def _dumps(doc: Any) -> bytes:
    text = json.dumps(doc, ensure_ascii=False)
    for placeholder, raw in _RAW.items():
        text = text.replace(placeholder, raw)
    return text.encode("utf-8", "surrogatepass")


def _paths(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*path, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += _paths(value, (*path, index))
    return found


def _fresh(data: st.DataObject) -> Any:
    # A drawn value may share objects with earlier draws; inserting one into itself would make
    # the document cyclic (RecursionError in _paths), so every inserted value is a copy.
    return copy.deepcopy(data.draw(json_values))


def _mutate(doc: Any, data: st.DataObject) -> Any:
    """Apply one structural change at a random place of ``doc``."""
    path = data.draw(st.sampled_from(_paths(doc)))
    action = data.draw(st.sampled_from(["replace", "delete", "insert", "wrap", "dup"]))
    if not path:
        if action == "wrap":
            return [doc]
        return _fresh(data) if action == "replace" else doc
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "replace":
        parent[last] = _fresh(data)
    elif action == "delete":
        del parent[last]
    elif action == "wrap":
        inner = copy.deepcopy(parent[last])
        parent[last] = data.draw(st.sampled_from([[inner], {"value": inner}]))
    elif action == "dup" and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[last]))
    elif isinstance(parent[last], dict):
        parent[last][data.draw(st.sampled_from(KEYS))] = _fresh(data)
    elif isinstance(parent[last], list):
        parent[last].append(_fresh(data))
    return doc


def _check(topic: str, payload: bytes) -> Decoded | None:
    error: PayloadError | None = None
    try:
        decoded = decode(topic, payload, RECEIVED)
    except PayloadError as exc:
        error = exc
    if error is not None:
        assert error.reason in REASONS, error
        assert error.detail
        return None
    assert decoded.readings
    for r in decoded.readings:
        assert type(r.value) is float
        assert math.isfinite(r.value), r
        assert r.ts is None or r.ts.utcoffset() is not None
        assert isinstance(r.name, str)
        assert r.name
        assert r.unit is None or isinstance(r.unit, str)
        assert r.device_id == decoded.device_id
    for e in decoded.errors:
        assert isinstance(e, PayloadError)
        assert e.reason in REASONS, e
    return decoded


FUZZ = settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
TOPICS = sorted({topic for topic, _ in EXAMPLES.values()})


@pytest.mark.timeout(120)
@pytest.mark.parametrize("topic", TOPICS)
@FUZZ
@given(payload=st.binary(max_size=300))
def test_random_bytes(topic: str, payload: bytes) -> None:
    _check(topic, payload)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("topic", TOPICS)
@FUZZ
@given(doc=json_values)
def test_random_json(topic: str, doc: Any) -> None:
    _check(topic, _dumps(doc))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(EXAMPLES))
@FUZZ
@given(data=st.data())
def test_mutated_examples(name: str, data: st.DataObject) -> None:
    topic, payload = EXAMPLES[name]
    doc = json.loads(payload)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        doc = _mutate(doc, data)
    _check(topic, _dumps(doc))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(EXAMPLES))
@FUZZ
@given(data=st.data())
def test_byte_flips_of_examples(name: str, data: st.DataObject) -> None:
    topic, payload = EXAMPLES[name]
    raw = bytearray(payload)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        index = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        raw[index] = data.draw(st.integers(min_value=0, max_value=255))
    _check(topic, bytes(raw))


@pytest.mark.timeout(120)
@FUZZ
@given(topic=st.text(max_size=60), payload=st.binary(max_size=60))
def test_random_topics(topic: str, payload: bytes) -> None:
    _check(topic, payload)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_examples_decode_unmutated(name: str) -> None:
    topic, payload = EXAMPLES[name]
    assert _check(topic, payload) is not None
