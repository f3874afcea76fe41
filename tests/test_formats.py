"""Payload decoders: the real examples of REFERENCE.md §4 and every error class.

No database or broker: decoders are pure functions.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.errors import PayloadError
from core.metrics import resolve
from ingest.formats import SUBSCRIPTIONS, decode
from ingest.formats.tasmota import SKIPPED_FIELDS
from ingest.model import Decoded

RECEIVED = datetime(2025, 1, 9, 3, 0, tzinfo=UTC)

NATIVE = "dothi/v1/devices/aq-001/up"
CHIRPSTACK = "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/0101010101010101/event/up"
TTS = "v3/app1@tenant1/devices/dev1/up"
TASMOTA = "tele/tasmota_energy/SENSOR"

Row = tuple[str, float, str | None, datetime | None]


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ok(topic: str, payload: bytes | Any) -> Decoded:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return decode(topic, raw, RECEIVED)


def rows(decoded: Decoded) -> list[Row]:
    return [(r.name, r.value, r.unit, r.ts) for r in decoded.readings]


def fails(topic: str, payload: bytes | Any, reason: str) -> PayloadError:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    with pytest.raises(PayloadError) as info:
        decode(topic, raw, RECEIVED)
    assert info.value.reason == reason, info.value
    return info.value


def reasons(decoded: Decoded) -> list[str]:
    return [e.reason for e in decoded.errors]


# ---------------------------------------------------------------- REFERENCE.md §4 examples
# Verbatim from REFERENCE.md §4, hence the long lines.

SENML_AIR = b"""[{"bn":"urn:dev:mac:a8404187d187106e:","bt":1.7364e9,"bver":10,"n":"pm25","u":"ug/m3","v":38.2,"ut":60},
 {"n":"pm10","u":"ug/m3","v":61.0},{"n":"temp","u":"Cel","v":24.6},{"n":"hum","u":"%RH","v":82.1},
 {"n":"laeq","u":"dB","v":67.4},{"n":"rain","u":"mm/h","v":0},{"n":"batt","u":"%EL","t":-5,"v":91}]"""  # noqa: E501

SENML_METER = b"""[{"bn":"urn:dev:mac:0016c001f153a14c:meter:","bt":1.7364e9,"n":"voltage","u":"V","v":226.4},
 {"n":"current","u":"A","v":3.12},{"n":"power","u":"W","v":655.0},
 {"n":"energy","u":"kWh","v":1532.871},{"n":"relay","vb":true}]"""  # noqa: E501

SENML_RFC = (
    b'[{"bn":"urn:dev:ow:10e2073a01080063:","n":"voltage","u":"V","v":120.1},'
    b'{"n":"current","u":"A","v":1.2}]'
)

CHIRPSTACK_UP = b"""{"deduplicationId":"3ac7e3c4-4401-4b8d-9386-a5c902f9202d","time":"2022-07-18T09:34:15.775023242+00:00",
 "deviceInfo":{"tenantId":"52f14cd4-c6f1-4fbd-8f87-4025e1d49242","tenantName":"ChirpStack",
  "applicationId":"17c82e96-be03-4f38-aef3-f83d48582d97","applicationName":"Test application",
  "deviceProfileId":"14855bf7-d10d-4aee-b618-ebfcb64dc7ad","deviceProfileName":"Test device-profile",
  "deviceName":"Test device","devEui":"0101010101010101","tags":{"key":"value"}},
 "devAddr":"00189440","adr":true,"dr":1,"fCnt":57,"fPort":1,"data":"qg==",
 "object":{"pm25":38.2,"pm10":61,"temperature":24.6,"humidity":82.1},
 "rxInfo":[{"gatewayId":"0016c001f153a14c","uplinkId":4217106255,"rssi":-36,"snr":10.5,"context":"E3OWOQ==",
   "metadata":{"region_name":"eu868","region_common_name":"EU868"}}],
 "txInfo":{"frequency":867100000,"modulation":{"lora":{"bandwidth":125000,"spreadingFactor":11,"codeRate":"CR_4_5"}}}}"""  # noqa: E501

TTS_UP = b"""{"end_device_ids":{"device_id":"dev1","application_ids":{"application_id":"app1"},
   "dev_eui":"0004A30B001C0530","join_eui":"800000000000000C","dev_addr":"00BCB929"},
 "correlation_ids":["as:up:01..."],"received_at":"2020-02-12T15:15:45.790Z",
 "uplink_message":{"session_key_id":"AXA50...","f_cnt":1,"f_port":1,"frm_payload":"gkHe",
   "decoded_payload":{"temperature":1.0,"luminosity":0.64},
   "rx_metadata":[{"gateway_ids":{"gateway_id":"gtw1","eui":"9C5C8E00001A05C4"},"time":"2020-02-12T15:15:45.787Z",
     "timestamp":2463457000,"rssi":-35,"channel_rssi":-35,"snr":5.2,"channel_index":2}],
   "settings":{"data_rate":{"lora":{"bandwidth":125000,"spreading_factor":7}},"coding_rate":"4/6","frequency":"868300000"},
   "received_at":"2020-02-12T15:15:45.780Z","consumed_airtime":"0.056576s",
   "network_ids":{"net_id":"000013","tenant_id":"tenant1","cluster_id":"eu1"}},"simulated":true}"""

TASMOTA_ENERGY = b"""{"Time":"2020-03-11T17:49:33","ENERGY":{"TotalStartTime":"2020-02-12T18:49:35","Total":14.834,"Yesterday":0.553,
 "Today":0.176,"Period":0,"Power":0,"ApparentPower":0,"ReactivePower":0,"Factor":0.00,"Voltage":230,"Current":0.000}}"""  # noqa: E501

TASMOTA_AIR = b"""{"Time":"2023-05-21T01:06:38","BME280":{"Temperature":20.5,"Humidity":53.1,"DewPoint":10.6,"Pressure":977.0},
 "SDS0X1":{"PM2.5":11.8,"PM10":5.8},"PressureUnit":"hPa","TempUnit":"C"}"""  # noqa: E501


def test_senml_air_quality_example() -> None:
    decoded = ok(NATIVE, SENML_AIR)
    assert decoded.format == "senml"
    assert decoded.device_id == "aq-001"  # the topic's, never bn
    bt = _utc("2025-01-09T05:20:00")  # 1.7364e9
    assert rows(decoded) == [
        ("pm25", 38.2, "ug/m3", bt),
        ("pm10", 61.0, "ug/m3", bt),
        ("temp", 24.6, "Cel", bt),
        ("hum", 82.1, "%RH", bt),
        ("laeq", 67.4, "dB", bt),
        ("rain", 0.0, "mm/h", bt),
        ("batt", 91.0, "%EL", bt - timedelta(seconds=5)),
    ]
    assert decoded.errors == []
    assert all(r.device_id == "aq-001" and r.seq is None for r in decoded.readings)


def test_senml_meter_example_maps_vb_to_one() -> None:
    decoded = ok("dothi/v1/devices/meter-7/up", SENML_METER)
    bt = _utc("2025-01-09T05:20:00")
    assert rows(decoded) == [
        ("voltage", 226.4, "V", bt),
        ("current", 3.12, "A", bt),
        ("power", 655.0, "W", bt),
        ("energy", 1532.871, "kWh", bt),
        ("relay", 1.0, None, bt),
    ]


def test_senml_rfc_example_without_time_is_the_receive_time() -> None:
    decoded = ok(NATIVE, SENML_RFC)
    assert rows(decoded) == [("voltage", 120.1, "V", RECEIVED), ("current", 1.2, "A", RECEIVED)]


def test_chirpstack_documented_example() -> None:
    decoded = ok(CHIRPSTACK, CHIRPSTACK_UP)
    assert decoded.format == "chirpstack"
    assert decoded.device_id == "0101010101010101"
    # 775023242 ns truncated to microseconds.
    ts = datetime(2022, 7, 18, 9, 34, 15, 775023, tzinfo=UTC)
    assert rows(decoded) == [
        ("pm25", 38.2, None, ts),
        ("pm10", 61.0, None, ts),
        ("temperature", 24.6, None, ts),
        ("humidity", 82.1, None, ts),
    ]
    assert {r.seq for r in decoded.readings} == {57}
    assert decoded.errors == []


def test_tts_example() -> None:
    decoded = ok(TTS, TTS_UP)
    assert decoded.format == "ttn"
    assert decoded.device_id == "dev1"
    ts = datetime(2020, 2, 12, 15, 15, 45, 787000, tzinfo=UTC)  # rx_metadata[0].time
    assert rows(decoded) == [("temperature", 1.0, None, ts), ("luminosity", 0.64, None, ts)]
    assert {r.seq for r in decoded.readings} == {1}


def test_tasmota_energy_example() -> None:
    decoded = ok(TASMOTA, TASMOTA_ENERGY)
    assert decoded.format == "tasmota"
    assert decoded.device_id == "tasmota_energy"
    ts = _utc("2020-03-11T10:49:33")  # 17:49:33 in Asia/Ho_Chi_Minh (UTC+7)
    assert rows(decoded) == [
        ("Total", 14.834, "kWh", ts),
        ("Power", 0.0, "W", ts),
        ("Factor", 0.0, None, ts),
        ("Voltage", 230.0, "V", ts),
        ("Current", 0.0, "A", ts),
    ]
    # Today, Yesterday, Period, ApparentPower, ReactivePower, TotalStartTime: skipped on purpose.
    assert decoded.errors == []


def test_tasmota_air_example_keeps_pm25_above_pm10_for_the_validator() -> None:
    decoded = ok("tele/aq_tas/SENSOR", TASMOTA_AIR)
    ts = _utc("2023-05-20T18:06:38")  # 01:06:38 local is the previous day in UTC
    assert rows(decoded) == [
        ("Temperature", 20.5, "°C", ts),
        ("Humidity", 53.1, "%RH", ts),
        ("Pressure", 977.0, "hPa", ts),
        ("PM2.5", 11.8, "µg/m³", ts),
        ("PM10", 5.8, "µg/m³", ts),
    ]
    assert decoded.errors == []


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        (NATIVE, SENML_AIR),
        (NATIVE, SENML_METER),
        (CHIRPSTACK, CHIRPSTACK_UP),
        (TTS, TTS_UP),
        (TASMOTA, TASMOTA_ENERGY),
        (TASMOTA, TASMOTA_AIR),
    ],
)
def test_example_names_and_units_are_ones_the_registry_resolves(topic: str, payload: bytes) -> None:
    for r in ok(topic, payload).readings:
        if r.name == "luminosity":  # not a dothi metric: the validator dead-letters it
            continue
        resolve(r.name).convert(r.value, r.unit)


# ---------------------------------------------------------------- router


def test_subscriptions() -> None:
    assert SUBSCRIPTIONS == (
        "dothi/v1/devices/+/up",
        "application/+/device/+/event/up",
        "v3/+/devices/+/up",
        "tele/+/SENSOR",
    )


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "dothi",
        "dothi/v2/devices/aq-001/up",
        "dothi/v1/devices/aq-001/down",
        "dothi/v1/devices/aq-001/up/extra",
        "application/app/device/0101010101010101/event/join",
        "application/app/device/0101010101010101/event/status",
        "v3/app1/devices/dev1/join",
        "tele/tas/STATE",
        "tele/tas/LWT",
        "stat/tas/SENSOR",
        "spBv1.0/group/NDATA/node",
    ],
)
def test_unknown_topic(topic: str) -> None:
    err = fails(topic, {"readings": {"pm25": 1}}, "unknown_topic")
    assert "dothi/v1/devices/+/up" in err.detail


@pytest.mark.parametrize(
    "topic",
    [
        "dothi/v1/devices//up",
        "dothi/v1/devices/-lead/up",
        "dothi/v1/devices/has space/up",
        "dothi/v1/devices/" + "x" * 65 + "/up",
        "dothi/v1/devices/ünïcode/up",
        "v3/app/devices/a$b/up",
        "tele/a+b/SENSOR",
        "tele//SENSOR",
    ],
)
def test_bad_device_id_in_topic(topic: str) -> None:
    fails(topic, b"{}", "bad_device_id")


def test_longest_device_id_is_accepted() -> None:
    device = "A" + "b.c_d:e-" * 7 + "f" * 7
    assert len(device) == 64
    assert ok(f"dothi/v1/devices/{device}/up", {"readings": {"pm25": 1}}).device_id == device


@pytest.mark.parametrize("topic", [NATIVE, CHIRPSTACK, TTS, TASMOTA])
def test_invalid_utf8(topic: str) -> None:
    err = fails(topic, b'{"readings": {"pm25": 1}, "x": "\xff"}', "invalid_utf8")
    assert "byte" in err.detail


@pytest.mark.parametrize("topic", [NATIVE, CHIRPSTACK, TTS, TASMOTA])
@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"   ",
        b"{",
        b'{"readings": {"pm25": 1}} trailing',
        b"{'single': 1}",
        b'{"readings": {"pm25": NaN}}',
        b'{"readings": {"pm25": Infinity}}',
        b'{"readings": {"pm25": -Infinity}}',
        b'[{"n": "pm25", "v": NaN}]',
        b'{"readings": {"pm25": ' + b"9" * 5000 + b"}}",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    ],
)
def test_malformed_json(topic: str, payload: bytes) -> None:
    fails(topic, payload, "malformed_json")


def test_malformed_json_detail_says_where() -> None:
    err = fails(NATIVE, b'{"readings": {"pm25": 1,}}', "malformed_json")
    assert "line 1 column" in err.detail
    assert "empty" in fails(NATIVE, b"", "malformed_json").detail
    assert "NaN" in fails(NATIVE, b'{"readings": {"pm25": NaN}}', "malformed_json").detail


# ---------------------------------------------------------------- native


def test_native_single_object() -> None:
    decoded = ok(
        NATIVE,
        {
            "ts": "2025-01-09T10:00:00+07:00",
            "seq": 42,
            "readings": {
                "pm25": 38.2,
                "temperature": 24.6,
                "noise": {"value": 67.4, "unit": "dB"},
                "lamp_on": True,
                "dimming": False,
                "count": 7,
            },
        },
    )
    ts = _utc("2025-01-09T03:00:00")
    assert decoded.format == "native"
    assert rows(decoded) == [
        ("pm25", 38.2, None, ts),
        ("temperature", 24.6, None, ts),
        ("noise", 67.4, "dB", ts),
        ("lamp_on", 1.0, None, ts),
        ("dimming", 0.0, None, ts),
        ("count", 7.0, None, ts),
    ]
    assert all(r.seq == 42 and type(r.value) is float for r in decoded.readings)
    assert all(r.ts is not None and r.ts.utcoffset() == timedelta(0) for r in decoded.readings)


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (None, None),
        ("2025-01-09T03:00:00Z", _utc("2025-01-09T03:00:00")),
        ("2025-01-09t03:00:00z", _utc("2025-01-09T03:00:00")),
        ("2025-01-09 03:00:00+00:00", _utc("2025-01-09T03:00:00")),
        ("2025-01-09T02:00:00-01:00", _utc("2025-01-09T03:00:00")),
        ("2025-01-09T03:00:00.5Z", datetime(2025, 1, 9, 3, 0, 0, 500000, tzinfo=UTC)),
        ("2025-01-09T03:00:00.123456789Z", datetime(2025, 1, 9, 3, 0, 0, 123456, tzinfo=UTC)),
        (1736391600, _utc("2025-01-09T03:00:00")),
        (1736391600.25, datetime(2025, 1, 9, 3, 0, 0, 250000, tzinfo=UTC)),
    ],
)
def test_native_timestamps(ts: Any, expected: datetime | None) -> None:
    record: dict[str, Any] = {"readings": {"pm25": 1}}
    if ts is not None:
        record["ts"] = ts
    assert ok(NATIVE, record).readings[0].ts == expected


@pytest.mark.parametrize(
    "ts",
    [
        "2025-01-09T10:00:00",  # naive: no offset
        "2025-01-09",
        "2025-W02-4",
        "20250109T030000Z",
        "2025-01-09T03:00:00+0700",
        "2025-13-01T00:00:00Z",
        "2025-02-30T00:00:00Z",
        "2016-12-31T23:59:60Z",
        "0001-01-01T00:00:00+01:00",  # before datetime.min in UTC
        "9999-12-31T23:59:59-01:00",
        "٢٠٢٥-01-09T03:00:00Z",
        "",
        True,
        [],
        {"t": 1},
        1e300,
        -1e300,
    ],
)
def test_native_bad_timestamp(ts: Any) -> None:
    fails(NATIVE, {"ts": ts, "readings": {"pm25": 1}}, "bad_timestamp")


def test_naive_timestamp_detail() -> None:
    err = fails(NATIVE, {"ts": "2025-01-09T10:00:00", "readings": {"pm25": 1}}, "bad_timestamp")
    assert err.detail == "ts: '2025-01-09T10:00:00' has no UTC offset; add Z or ±hh:mm"


def test_milliseconds_are_called_out() -> None:
    err = fails(NATIVE, {"ts": 1736391600000, "readings": {"pm25": 1}}, "bad_timestamp")
    assert "milliseconds" in err.detail


def test_native_batch() -> None:
    decoded = ok(
        NATIVE,
        [
            {"ts": 1736391600, "seq": 1, "readings": {"pm25": 30}},
            {"ts": 1736391660, "seq": 2, "readings": {"pm25": 31, "pm10": 50}},
        ],
    )
    assert decoded.format == "native"
    assert [(r.name, r.value, r.seq, r.ts) for r in decoded.readings] == [
        ("pm25", 30.0, 1, _utc("2025-01-09T03:00:00")),
        ("pm25", 31.0, 2, _utc("2025-01-09T03:01:00")),
        ("pm10", 50.0, 2, _utc("2025-01-09T03:01:00")),
    ]


def test_native_batch_keeps_good_records_and_reports_bad_ones() -> None:
    decoded = ok(
        NATIVE,
        [
            {"ts": "2025-01-09T10:00:00", "readings": {"pm25": 1}},
            {"ts": "2025-01-09T10:00:00Z", "readings": {"pm25": 2}},
            7,
            {"readings": "pm25=3"},
            {"seq": -1, "readings": {"pm25": 4}},
        ],
    )
    assert [r.value for r in decoded.readings] == [2.0]
    assert reasons(decoded) == ["bad_timestamp", "wrong_shape", "wrong_shape", "wrong_shape"]
    assert [e.detail.split(":")[0] for e in decoded.errors] == [
        "[0].ts",
        "[2]",
        "[3].readings",
        "[4].seq",
    ]


def test_native_wrong_shape_details() -> None:
    err = fails(NATIVE, {"readings": {"pm25": "abc"}}, "wrong_shape")
    assert err.detail == 'readings.pm25: expected a number, got "abc"'
    err = fails(NATIVE, {"ts": "2025-01-09T03:00:00Z"}, "wrong_shape")
    assert err.detail == "readings: expected an object, it is missing"
    err = fails(NATIVE, {"readings": [1, 2]}, "wrong_shape")
    assert err.detail == "readings: expected an object, got an array"
    err = fails(NATIVE, "just text", "wrong_shape")
    assert err.detail == 'payload: expected a JSON object or array, got "just text"'
    err = fails(NATIVE, 42, "wrong_shape")
    assert err.detail == "payload: expected a JSON object or array, got 42"
    err = fails(NATIVE, {"seq": "7", "readings": {"pm25": 1}}, "wrong_shape")
    assert err.detail == 'seq: expected an integer from 0 to 2^63-1, got "7"'
    err = fails(NATIVE, {"readings": {"noise": {"unit": "dB"}}}, "wrong_shape")
    assert err.detail == "readings.noise.value: missing"
    err = fails(NATIVE, {"readings": {"noise": {"value": 1, "unit": 5}}}, "wrong_shape")
    assert err.detail == "readings.noise.unit: expected a unit string, got 5"
    err = fails(NATIVE, {"readings": {"noise": {"value": None}}}, "wrong_shape")
    assert err.detail == "readings.noise.value: expected a number, got null"
    err = fails(NATIVE, {"readings": {"": 1}}, "wrong_shape")
    assert err.detail == "readings: reading name is empty"
    fails(NATIVE, {"readings": {"x" * 101: 1}}, "wrong_shape")
    long_text = fails(NATIVE, {"readings": {"pm25": "y" * 10_000}}, "wrong_shape").detail
    assert len(long_text) < 120


def test_native_per_field_problems_keep_the_rest() -> None:
    decoded = ok(
        NATIVE, b'{"readings": {"pm25": 12, "pm10": "n/a", "temperature": null, "noise": 1e400}}'
    )
    assert rows(decoded) == [("pm25", 12.0, None, None)]
    assert reasons(decoded) == ["wrong_shape", "wrong_shape", "not_finite"]
    assert decoded.errors[2].detail == "readings.noise: the number is beyond the float range"


def test_all_fields_bad_raises_the_first_with_all_details() -> None:
    err = fails(NATIVE, {"readings": {"pm25": "a", "pm10": "b"}}, "wrong_shape")
    assert 'readings.pm25: expected a number, got "a"' in err.detail
    assert 'readings.pm10: expected a number, got "b"' in err.detail


@pytest.mark.parametrize("number", [10**400, -(10**400), 1e400, -1e400])
def test_numbers_beyond_float_range_are_per_field_errors(number: float) -> None:
    payload = json.dumps({"readings": {"pm25": 1, "pm10": number}}).replace("Infinity", "1e400")
    decoded = ok(NATIVE, payload.encode())
    assert [r.name for r in decoded.readings] == ["pm25"]
    assert reasons(decoded) == ["not_finite"]


@pytest.mark.parametrize("payload", [{"readings": {}}, [], [{"readings": {}}, {"readings": {}}]])
def test_native_no_readings(payload: Any) -> None:
    fails(NATIVE, payload, "no_readings")


def test_native_device_id_must_match_the_topic() -> None:
    assert ok(NATIVE, {"device_id": "aq-001", "readings": {"pm25": 1}}).device_id == "aq-001"
    err = fails(NATIVE, {"device_id": "aq-002", "readings": {"pm25": 1}}, "device_mismatch")
    assert err.detail == "device_id 'aq-002' differs from the topic's device 'aq-001'"
    fails(NATIVE, {"device_id": None, "readings": {"pm25": 1}}, "device_mismatch")
    # One record claiming another device discredits the whole batch.
    batch = [{"readings": {"pm25": 1}}, {"device_id": "other", "readings": {"pm25": 2}}]
    assert fails(NATIVE, batch, "device_mismatch").detail.startswith("[1].device_id")


def test_native_array_of_native_objects_is_not_senml() -> None:
    assert ok(NATIVE, [{"readings": {"pm25": 1}}]).format == "native"
    # An array of something else is a native batch with bad records.
    fails(NATIVE, [1, 2], "wrong_shape")
    fails(NATIVE, [{"foo": 1}], "wrong_shape")


# ---------------------------------------------------------------- SenML


def test_senml_base_fields_carry_over_until_redefined() -> None:
    decoded = ok(
        NATIVE,
        [
            {"bn": "dev:", "bt": 1736391600, "bu": "ug/m3", "bv": 100, "n": "pm25", "v": 1.5},
            {"n": "pm10", "v": 2.5},
            {"bu": "Cel", "bv": 0, "n": "temp", "v": 24, "t": 60},
            {"bn": "other:", "n": "hum", "u": "%RH", "v": 80},
            {"bt": 1736391700, "n": "temp", "v": 25},
        ],
    )
    t0 = _utc("2025-01-09T03:00:00")
    assert rows(decoded) == [
        ("pm25", 101.5, "ug/m3", t0),
        ("pm10", 102.5, "ug/m3", t0),
        ("temp", 24.0, "Cel", t0 + timedelta(seconds=60)),
        ("hum", 80.0, "%RH", t0),
        ("temp", 25.0, "Cel", t0 + timedelta(seconds=100)),
    ]


def test_senml_relative_times_count_from_the_receive_time() -> None:
    decoded = ok(
        NATIVE,
        [
            {"n": "pm25", "v": 1, "t": -60},
            {"n": "pm25", "v": 2},
            {"bt": -120, "n": "pm25", "v": 3, "t": 30},
            {"bt": 0, "n": "pm25", "v": 4, "t": 2**28 - 1},
            {"n": "pm25", "v": 5, "t": 2**28},  # absolute: Unix 268435456
        ],
    )
    assert [r.ts for r in decoded.readings] == [
        RECEIVED - timedelta(seconds=60),
        RECEIVED,
        RECEIVED - timedelta(seconds=90),
        RECEIVED + timedelta(seconds=2**28 - 1),
        datetime.fromtimestamp(2**28, UTC),
    ]


def test_senml_relative_time_with_a_naive_receive_time_is_utc() -> None:
    naive = RECEIVED.replace(tzinfo=None)
    decoded = decode(NATIVE, SENML_RFC, naive)
    assert decoded.readings[0].ts == RECEIVED


def test_senml_relative_time_in_another_zone_comes_out_in_utc() -> None:
    local = RECEIVED.astimezone(datetime.now(UTC).astimezone().tzinfo)
    ts = decode(NATIVE, SENML_RFC, local).readings[0].ts
    assert ts == RECEIVED
    assert ts is not None
    assert ts.tzinfo is UTC


def test_senml_sum_only_when_it_is_the_only_value() -> None:
    decoded = ok(
        NATIVE,
        [
            {"bs": 1000, "n": "energy", "u": "Wh", "s": 5},
            {"n": "power", "u": "W", "v": 7, "s": 99},
            {"n": "lamp", "vb": False},
        ],
    )
    assert [(r.name, r.value) for r in decoded.readings] == [
        ("energy", 1005.0),
        ("power", 7.0),
        ("lamp", 0.0),
    ]


def test_senml_string_and_data_values_are_wrong_type() -> None:
    decoded = ok(
        NATIVE,
        [
            {"n": "pm25", "v": 1},
            {"n": "status", "vs": "ok"},
            {"n": "blob", "vd": "aGk"},
        ],
    )
    assert [r.name for r in decoded.readings] == ["pm25"]
    assert reasons(decoded) == ["wrong_type", "wrong_type"]
    assert decoded.errors[0].detail == "[1].vs: a string value is not a number dothi can store"
    fails(NATIVE, [{"n": "status", "vs": "ok"}], "wrong_type")


def test_senml_record_problems() -> None:
    decoded = ok(
        NATIVE,
        [
            {"n": "good", "v": 1},
            {"n": "two", "v": 1, "vb": True},
            {"n": "text", "v": "1"},
            {"n": "flag", "vb": 1},
            {"v": 1},
            {"n": "bad name!", "v": 1},
            {"n": "novalue"},
            {"n": 5, "v": 1},
            {"n": "badtime", "v": 1, "t": "now"},
            {"n": "badunit", "u": 3, "v": 1},
            {"n": "overflow", "bv": 1e308, "v": 1e308},
            "not an object",
            {"n": "far", "v": 1, "t": 1e300},
            {"n": "past", "v": 1, "t": -1e300},
        ],
    )
    assert [r.name for r in decoded.readings] == ["good"]
    assert reasons(decoded) == [
        "wrong_shape",
        "wrong_shape",
        "wrong_shape",
        "wrong_shape",
        "wrong_shape",
        "wrong_shape",
        "wrong_shape",
        "wrong_shape",
        "wrong_shape",
        "not_finite",
        "wrong_shape",
        "bad_timestamp",
        "bad_timestamp",
    ]
    assert [e.detail.split(":")[0] for e in decoded.errors][:5] == [
        "[1]",
        "[2].v",
        "[3].vb",
        "[4]",
        "[5].n",
    ]


def test_senml_header_only_records_are_not_readings() -> None:
    decoded = ok(NATIVE, [{"bn": "dev:", "bt": 1736391600}, {"n": "pm25", "v": 1}, {"ut": 60}])
    assert rows(decoded) == [("pm25", 1.0, None, _utc("2025-01-09T03:00:00"))]
    assert decoded.errors == []
    fails(NATIVE, [{"bn": "dev:", "bver": 10}], "no_readings")


def test_senml_names() -> None:
    # Without bn the name itself must start with a letter or digit; after bn it may not.
    assert ok(NATIVE, [{"bn": "dev", "n": ":pm25", "v": 1}]).readings[0].name == ":pm25"
    fails(NATIVE, [{"n": ":pm25", "v": 1}], "wrong_shape")
    assert ok(NATIVE, [{"n": "a-b:c./d_e", "v": 1}]).readings[0].name == "a-b:c./d_e"
    # The rule follows bn when it is redefined to empty, also for a name seen before.
    decoded = ok(NATIVE, [{"bn": "dev", "n": ":x", "v": 1}, {"bn": "", "n": ":x", "v": 2}])
    assert [r.value for r in decoded.readings] == [1.0]
    assert decoded.errors[0].detail.startswith("[1].n: ':x' is not a SenML name")
    fails(NATIVE, [{"n": ["pm25"], "v": 1}], "wrong_shape")


@pytest.mark.parametrize(
    "records",
    [
        [{"bver": 11, "n": "pm25", "v": 1}],
        [{"n": "pm25", "v": 1}, {"bver": 12, "n": "pm10", "v": 1}],
        [{"n": "pm25", "v": 1, "crit_": 1}],
        [{"n": "pm25", "v": 1}, {"bn_": "x", "n": "pm10", "v": 1}],
        [{"bver": "10", "n": "pm25", "v": 1}],
        [{"bver": 10.5, "n": "pm25", "v": 1}],
    ],
)
def test_unsupported_senml(records: list[Any]) -> None:
    fails(NATIVE, records, "unsupported_senml")


def test_unsupported_senml_detail() -> None:
    err = fails(NATIVE, [{"bver": 11, "n": "pm25", "v": 1}], "unsupported_senml")
    assert err.detail == "[0].bver: SenML version 11 is newer than the supported 10"


@pytest.mark.parametrize(
    "record",
    [
        {"bn": 5, "n": "pm25", "v": 1},
        {"bn": "-dev", "n": "pm25", "v": 1},
        {"bt": "yesterday", "n": "pm25", "v": 1},
        {"bv": True, "n": "pm25", "v": 1},
        {"bu": ["ug/m3"], "n": "pm25", "v": 1},
        {"bs": None, "n": "pm25", "s": 1},
    ],
)
def test_senml_bad_base_field_spoils_the_pack(record: dict[str, Any]) -> None:
    fails(NATIVE, [record, {"n": "pm10", "v": 1}], "wrong_shape")


# ---------------------------------------------------------------- ChirpStack


def _chirpstack(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(CHIRPSTACK_UP)
    for key, value in changes.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


def test_chirpstack_flattens_nested_objects_and_maps_booleans() -> None:
    decoded = ok(
        CHIRPSTACK,
        _chirpstack(object={"pm": {"pm25": 1, "pm10": 2}, "relay": True, "door": False}),
    )
    assert [(r.name, r.value) for r in decoded.readings] == [
        ("pm_pm25", 1.0),
        ("pm_pm10", 2.0),
        ("relay", 1.0),
        ("door", 0.0),
    ]


def test_chirpstack_strings_and_others_are_per_field_wrong_type() -> None:
    decoded = ok(
        CHIRPSTACK,
        _chirpstack(object={"pm25": 1, "status": "ok", "gps": None, "list": [1, 2], "e": {}}),
    )
    assert [r.name for r in decoded.readings] == ["pm25"]
    assert reasons(decoded) == ["wrong_type", "wrong_type", "wrong_type"]
    assert [e.detail for e in decoded.errors] == [
        'object.status: expected a number, got "ok"',
        "object.gps: expected a number, got null",
        "object.list: expected a number, got an array",
    ]


def test_chirpstack_flatten_collisions_and_depth_are_bounded() -> None:
    deep: dict[str, Any] = {"v": 1}
    for _ in range(50):
        deep = {"d": deep}
    decoded = ok(CHIRPSTACK, _chirpstack(object={"pm_pm25": 1, "pm": {"pm25": 2}, "deep": deep}))
    assert [(r.name, r.value) for r in decoded.readings] == [("pm_pm25", 1.0)]
    assert reasons(decoded) == ["duplicate_metric", "wrong_shape"]
    assert "nested deeper than 8 levels" in decoded.errors[1].detail


def test_chirpstack_device_id() -> None:
    upper = _chirpstack(deviceInfo={"devEui": "A8404187D187106E"})
    topic = "application/app/device/a8404187d187106e/event/up"
    assert ok(topic, upper).device_id == "a8404187d187106e"
    # No deviceInfo: the topic's devEui, lowercased.
    topic = "application/app/device/A8404187D187106E/event/up"
    assert ok(topic, _chirpstack(deviceInfo=None)).device_id == "a8404187d187106e"
    # Empty topic segment: the payload's devEui.
    assert ok("application/app/device//event/up", upper).device_id == "a8404187d187106e"
    err = fails(CHIRPSTACK, upper, "device_mismatch")
    assert "A8404187D187106E" in err.detail
    assert "0101010101010101" in err.detail
    fails("application/app/device//event/up", _chirpstack(deviceInfo=None), "bad_device_id")
    fails(CHIRPSTACK, _chirpstack(deviceInfo={"devEui": 5}), "wrong_shape")
    fails(CHIRPSTACK, _chirpstack(deviceInfo="x"), "wrong_shape")


def test_chirpstack_without_codec_is_no_readings() -> None:
    err = fails(CHIRPSTACK, _chirpstack(object=None), "no_readings")
    assert "codec" in err.detail
    fails(CHIRPSTACK, _chirpstack(object={}), "no_readings")
    fails(CHIRPSTACK, _chirpstack(object=[1]), "wrong_shape")


def test_chirpstack_defaults_left_out_by_protobuf_json() -> None:
    decoded = ok(CHIRPSTACK, _chirpstack(fCnt=None, time=None))
    assert {(r.seq, r.ts) for r in decoded.readings} == {(0, None)}


def test_chirpstack_time() -> None:
    decoded = ok(CHIRPSTACK, _chirpstack(time="2024-06-01T12:00:00.000000001+07:00"))
    assert decoded.readings[0].ts == _utc("2024-06-01T05:00:00")
    fails(CHIRPSTACK, _chirpstack(time="2024-06-01T12:00:00"), "bad_timestamp")
    fails(CHIRPSTACK, _chirpstack(fCnt="57"), "wrong_shape")
    fails(CHIRPSTACK, [1], "wrong_shape")


# ---------------------------------------------------------------- The Things Stack


def _tts(**uplink_changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(TTS_UP)
    for key, value in uplink_changes.items():
        if value is None:
            doc["uplink_message"].pop(key, None)
        else:
            doc["uplink_message"][key] = value
    return doc


def test_tts_time_falls_back_to_received_at() -> None:
    decoded = ok(TTS, _tts(rx_metadata=None))
    assert decoded.readings[0].ts == datetime(2020, 2, 12, 15, 15, 45, 780000, tzinfo=UTC)
    decoded = ok(TTS, _tts(rx_metadata=[{"gateway_ids": {"gateway_id": "gtw1"}}]))
    assert decoded.readings[0].ts == datetime(2020, 2, 12, 15, 15, 45, 780000, tzinfo=UTC)
    doc = _tts(rx_metadata=None, received_at=None)
    assert ok(TTS, doc).readings[0].ts == datetime(2020, 2, 12, 15, 15, 45, 790000, tzinfo=UTC)
    del doc["received_at"]
    assert ok(TTS, doc).readings[0].ts is None


def test_tts_topic_without_tenant_and_missing_f_cnt() -> None:
    decoded = ok("v3/app1/devices/dev1/up", _tts(f_cnt=None))
    assert decoded.device_id == "dev1"
    assert {r.seq for r in decoded.readings} == {0}


def test_tts_device_must_match_the_topic() -> None:
    err = fails("v3/app1/devices/dev2/up", TTS_UP, "device_mismatch")
    assert err.detail == "end_device_ids.device_id 'dev1' differs from the topic's device 'dev2'"


def test_tts_shapes() -> None:
    err = fails(TTS, _tts(decoded_payload=None), "no_readings")
    assert "formatter" in err.detail
    fails(TTS, {"end_device_ids": {"device_id": "dev1"}}, "wrong_shape")
    fails(TTS, _tts(decoded_payload="x"), "wrong_shape")
    fails(TTS, _tts(rx_metadata={"time": "x"}), "wrong_shape")
    fails(TTS, _tts(rx_metadata=["x"]), "wrong_shape")
    fails(TTS, _tts(rx_metadata=[{"time": "yesterday"}]), "bad_timestamp")
    decoded = ok(TTS, _tts(decoded_payload={"t": 1, "name": "x", "nested": {"a": 2}}))
    assert [(r.name, r.value) for r in decoded.readings] == [("t", 1.0), ("nested_a", 2.0)]
    assert reasons(decoded) == ["wrong_type"]


# ---------------------------------------------------------------- Tasmota


def test_tasmota_fahrenheit_and_other_units() -> None:
    payload = {
        "Time": "2024-01-01T07:00:00",
        "AM2301": {"Temperature": 77.0, "Humidity": 60.0},
        "BMP280": {"Pressure": 760.1, "SeaPressure": 765.0},
        "TempUnit": "F",
        "PressureUnit": "mmHg",
    }
    decoded = ok(TASMOTA, payload)
    ts = _utc("2024-01-01T00:00:00")
    assert rows(decoded) == [
        ("Temperature", 77.0, "°F", ts),
        ("Humidity", 60.0, "%RH", ts),
        ("Pressure", 760.1, "mmHg", ts),
    ]


def test_tasmota_time_with_offset_and_without_time() -> None:
    with_offset = {"Time": "2024-01-01T07:00:00+07:00", "ENERGY": {"Power": 5}}
    assert ok(TASMOTA, with_offset).readings[0].ts == _utc("2024-01-01T00:00:00")
    assert ok(TASMOTA, {"ENERGY": {"Power": 5}}).readings[0].ts is None
    fails(TASMOTA, {"Time": "01.01.2024 07:00", "ENERGY": {"Power": 5}}, "bad_timestamp")


def test_tasmota_unknown_numbers_pass_through_and_strings_are_reported() -> None:
    payload = {
        "Time": "2024-01-01T07:00:00",
        "ANALOG": {"Illuminance": 412, "A0": 3},
        "Uptime": 12,
        "Switch1": "ON",
        "ENERGY": {"Voltage": [230, 231, 229], "Power": 10, "Flag": True},
    }
    decoded = ok(TASMOTA, payload)
    assert [(r.name, r.value, r.unit) for r in decoded.readings] == [
        ("Illuminance", 412.0, None),
        ("A0", 3.0, None),
        ("Uptime", 12.0, None),
        ("Power", 10.0, "W"),
    ]
    assert [e.detail for e in decoded.errors] == [
        'Switch1: expected a number, got "ON"',
        "ENERGY.Voltage: an array (one value per phase or channel) is not supported",
        "ENERGY.Flag: expected a number, got true",
    ]
    assert reasons(decoded) == ["wrong_type"] * 3


def test_tasmota_two_sensors_of_a_kind_are_reported_not_lost_silently() -> None:
    payload = {
        "BME280": {"Temperature": 20.5},
        "DS18B20": {"Id": "01144C7A", "Temperature": 21.0},
        "TempUnit": "C",
    }
    decoded = ok(TASMOTA, payload)
    assert [(r.name, r.value) for r in decoded.readings] == [("Temperature", 20.5)]
    assert reasons(decoded) == ["duplicate_metric"]
    assert "BME280.Temperature" in decoded.errors[0].detail


def test_tasmota_skipped_fields_are_listed() -> None:
    assert {
        "DewPoint",
        "Today",
        "Yesterday",
        "Period",
        "ApparentPower",
        "ReactivePower",
        "TotalStartTime",
        "Id",
    } <= SKIPPED_FIELDS
    fails(TASMOTA, {"Time": "2024-01-01T07:00:00", "ENERGY": {"Today": 1.0}}, "no_readings")


def test_tasmota_shapes() -> None:
    fails(TASMOTA, [1], "wrong_shape")
    fails(TASMOTA, {"ENERGY": {"Power": 1}, "TempUnit": 5}, "wrong_shape")
    fails(TASMOTA, {"Time": "2024-01-01T07:00:00"}, "no_readings")
