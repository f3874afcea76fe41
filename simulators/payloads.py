"""Payload encoders: readings as each kind of real device puts them on the wire.

- ``native``: ``dothi/v1/devices/{id}/up``, ``{"ts", "seq", "readings"}`` or an array of them.
- ``senml``: RFC 8428 JSON on the same topic; ``bn``/``bt`` base fields, ``t`` offsets in a batch.
- ``chirpstack``: ChirpStack v4 uplink event on ``application/{appId}/device/{devEui}/event/up``.
- ``tts``: The Things Stack v3 uplink on ``v3/{app_id}/devices/{device_id}/up``.
- ``tasmota``: ``tele/{id}/SENSOR`` with device-local time and ``ENERGY``/``BME280``/``SDS0X1``.

Shapes copy the real examples in REFERENCE.md §4. Everything that varies between uplinks (radio
metadata, ids, sub-second times) is hashed from the device and the reading, so a payload's bytes
are reproducible. JSON is written compactly with keys in a fixed order.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from simulators import prng
from simulators.profiles import TZ_OFFSET_S

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from simulators.city import City, DeviceSpec

# Digits each metric is reported with.
DECIMALS: Final[dict[str, int]] = {
    "pm25": 1,
    "pm10": 1,
    "no2": 1,
    "o3": 1,
    "co": 0,
    "so2": 1,
    "temperature": 1,
    "humidity": 1,
    "pressure": 1,
    "noise_laeq": 1,
    "water_level": 2,
    "rainfall": 1,
    "voltage": 1,
    "current": 3,
    "power": 1,
    "energy": 3,
    "power_factor": 2,
    "frequency": 2,
    "lamp_on": 0,
    "dimming": 0,
    "battery": 0,
}
_INTEGRAL: Final = frozenset({"lamp_on", "dimming", "battery"})

# SenML names and units (RFC 8428 / RFC 8798); every name resolves in core.metrics.
SENML_NAMES: Final[dict[str, str]] = {
    "pm25": "pm25",
    "pm10": "pm10",
    "no2": "no2",
    "o3": "o3",
    "co": "co",
    "so2": "so2",
    "temperature": "temp",
    "humidity": "hum",
    "pressure": "pressure",
    "noise_laeq": "laeq",
    "water_level": "level",
    "rainfall": "rain",
    "voltage": "voltage",
    "current": "current",
    "power": "power",
    "energy": "energy",
    "power_factor": "pf",
    "frequency": "freq",
    "lamp_on": "lamp",
    "dimming": "dim",
    "battery": "batt",
}
SENML_UNITS: Final[dict[str, str]] = {
    "pm25": "ug/m3",
    "pm10": "ug/m3",
    "no2": "ug/m3",
    "o3": "ug/m3",
    "co": "ug/m3",
    "so2": "ug/m3",
    "temperature": "Cel",
    "humidity": "%RH",
    "pressure": "hPa",
    "noise_laeq": "dB",  # SenML has no A-weighted unit: the name says "laeq"
    "water_level": "m",
    "rainfall": "mm/h",
    "voltage": "V",
    "current": "A",
    "power": "W",
    "energy": "kWh",
    "power_factor": "/",
    "frequency": "Hz",
    "dimming": "/100",
    "battery": "%EL",
}
_SENML_BOOLEAN: Final = frozenset({"lamp_on"})

_PROFILE_NAMES: Final = {
    "air_quality": "Air quality sensor",
    "noise": "Noise monitor",
    "weather": "Weather station",
    "river_gauge": "River gauge",
    "smart_meter": "Smart meter 1-phase",
    "street_light": "Street light controller",
    "solar": "PV inverter",
}
_AS923_CHANNELS: Final = (923200000, 923400000, 922200000, 922400000, 922600000, 922800000)


@dataclass(frozen=True, slots=True)
class Reading:
    """One observation of a device: its time, sequence number and values (rounded)."""

    ts: int
    seq: int
    values: Mapping[str, float]


def round_value(metric: str, value: float, extra_digits: int = 0) -> float:
    """A value with the digits the device reports (whole numbers for states and levels)."""
    digits = DECIMALS.get(metric, 3) + extra_digits
    if metric in _INTEGRAL and extra_digits == 0:
        return float(round(value))
    return round(value, digits)


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _number(metric: str, value: float) -> float | int:
    return int(value) if metric in _INTEGRAL and value == int(value) else value


def rfc3339(ts: float, *, digits: int = 0) -> str:
    """UTC RFC 3339 time with ``digits`` fractional digits (0, 3 or 6) and a ``Z``."""
    dt = datetime.fromtimestamp(ts, UTC)
    if digits == 0:
        return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    frac = f"{dt.microsecond:06d}"[:digits]
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + frac + "Z"


def local_time(ts: float) -> str:
    """Device-local wall-clock time as Tasmota prints it (Asia/Ho_Chi_Minh, no offset)."""
    return (datetime.fromtimestamp(ts, UTC) + timedelta(seconds=TZ_OFFSET_S)).strftime(
        "%Y-%m-%dT%H:%M:%S"
    )


def _ns_time(ts: float, u: float) -> str:
    """RFC 3339 with nanoseconds (the last three digits hashed, as real servers print them)."""
    return rfc3339(ts, digits=6)[:-1] + f"{int(u * 1000):03d}Z"


def _hex(k: int, index: int, digits: int) -> str:
    return f"{prng.hash_int(k, index):016x}"[:digits]


def _uuid(k: int, index: int) -> str:
    h = _hex(k, index, 16) + _hex(k ^ 0x55, index, 16)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:32]}"


def _uniform(k: int, index: int) -> float:
    return prng.uniform_int(k, index)


def device_eui(device: DeviceSpec) -> str:
    """A stable EUI-64 for devices whose id is not one (SenML base names, TTS dev_eui)."""
    if device.format == "chirpstack":
        return device.id
    return _hex(prng.key("eui", device.id), 0, 16)


# -- native ------------------------------------------------------------------------------------
def native_topic(device_id: str) -> str:
    """The platform's own uplink topic."""
    return f"dothi/v1/devices/{device_id}/up"


def native(device: DeviceSpec, readings: Sequence[Reading]) -> tuple[str, bytes]:
    """Native JSON: one object, or an array of objects for several readings."""
    objs = [
        {
            "ts": rfc3339(r.ts),
            "seq": r.seq,
            "readings": {m: _number(m, v) for m, v in r.values.items()},
        }
        for r in readings
    ]
    return native_topic(device.id), _json(objs[0] if len(objs) == 1 else objs)


# -- SenML -------------------------------------------------------------------------------------
def senml(device: DeviceSpec, readings: Sequence[Reading]) -> tuple[str, bytes]:
    """SenML JSON pack: base name and time once; later readings carry ``t`` offsets."""
    records: list[dict[str, Any]] = []
    t0 = readings[0].ts
    for r in readings:
        for metric, value in r.values.items():
            rec: dict[str, Any] = {}
            if not records:
                rec["bn"] = f"urn:dev:mac:{device_eui(device)}:"
                rec["bt"] = t0
            if r.ts != t0:
                rec["t"] = r.ts - t0
            rec["n"] = SENML_NAMES[metric]
            if metric in _SENML_BOOLEAN:
                rec["vb"] = bool(value)
            else:
                rec["u"] = SENML_UNITS[metric]
                rec["v"] = _number(metric, value)
            if not records:
                rec["ut"] = device.interval_s
            records.append(rec)
    return native_topic(device.id), _json(records)


# -- LoRaWAN network servers -------------------------------------------------------------------
def _frame(reading: Reading) -> bytes:
    """The uplink's application bytes: each value as a signed 32-bit hundredth."""
    return b"".join(
        struct.pack(">i", max(-(2**31), min(2**31 - 1, round(v * 100))))
        for v in reading.values.values()
    )


def _decoded(reading: Reading) -> dict[str, Any]:
    return {
        m: (bool(v) if m in _SENML_BOOLEAN else _number(m, v)) for m, v in reading.values.items()
    }


def chirpstack_topic(city: City, device_id: str) -> str:
    """ChirpStack v4's uplink event topic."""
    return f"application/{city.lorawan.chirpstack_application_id}/device/{device_id}/event/up"


def chirpstack(city: City, device: DeviceSpec, reading: Reading) -> tuple[str, bytes]:
    """A ChirpStack v4 uplink event (protobuf JSON: camelCase, zero values omitted)."""
    lw = city.lorawan
    k = prng.key("chirpstack", device.id)
    i = reading.ts
    nanos = int(_uniform(k, i) * 1e9)
    time = rfc3339(reading.ts)[:-1] + f".{nanos:09d}+00:00"
    gateway = lw.gateways[prng.choice_index(prng.key("gw", device.id), 0, len(lw.gateways))]
    sf = 7 + prng.choice_index(k ^ 9, 0, 4)
    event: dict[str, Any] = {
        "deduplicationId": _uuid(k, i),
        "time": time,
        "deviceInfo": {
            "tenantId": lw.chirpstack_tenant_id,
            "tenantName": lw.chirpstack_tenant_name,
            "applicationId": lw.chirpstack_application_id,
            "applicationName": lw.chirpstack_application_name,
            "deviceProfileId": _uuid(prng.key("profile", device.kind), 0),
            "deviceProfileName": f"{_PROFILE_NAMES[device.kind]} {lw.region}",
            "deviceName": device.name,
            "devEui": device.id,
            "tags": {"area": device.area_id},
        },
        "devAddr": _hex(k ^ 3, 0, 8),
        "adr": True,
        "dr": 12 - sf,
        "fCnt": reading.seq & 0xFFFFFFFF,
        "fPort": 2,
        "data": base64.b64encode(_frame(reading)).decode(),
        "object": _decoded(reading),
        "rxInfo": [
            {
                "gatewayId": gateway.id,
                "uplinkId": prng.hash_int(k ^ 4, i) & 0xFFFFFFFF,
                "rssi": -int(60 + 55 * _uniform(k ^ 5, i)),
                "snr": round(-7.5 + 17.5 * _uniform(k ^ 6, i), 1),
                "context": base64.b64encode(bytes.fromhex(_hex(k ^ 7, i, 8))).decode(),
                "metadata": {
                    "region_config_id": lw.region.lower(),
                    "region_common_name": lw.region,
                },
            }
        ],
        "txInfo": {
            "frequency": _AS923_CHANNELS[prng.choice_index(k ^ 8, i, len(_AS923_CHANNELS))],
            "modulation": {
                "lora": {"bandwidth": 125000, "spreadingFactor": sf, "codeRate": "CR_4_5"}
            },
        },
    }
    if event["fCnt"] == 0:
        del event["fCnt"]  # protobuf JSON leaves out zero values
    return chirpstack_topic(city, device.id), _json(event)


def tts_topic(city: City, device_id: str) -> str:
    """The Things Stack v3 uplink topic (open-source deployments: no @tenant)."""
    return f"v3/{city.lorawan.tts_application_id}/devices/{device_id}/up"


def tts(city: City, device: DeviceSpec, reading: Reading) -> tuple[str, bytes]:
    """A The Things Stack v3 uplink message; ``received_at`` is the reading time."""
    lw = city.lorawan
    k = prng.key("tts", device.id)
    i = reading.ts
    received = reading.ts + 0.2 + 0.6 * _uniform(k, i)
    at_ns = received - 0.003 - 0.02 * _uniform(k ^ 1, i)
    at_gw = at_ns - 0.04 - 0.02 * _uniform(k ^ 2, i)
    gateway = lw.gateways[prng.choice_index(prng.key("gw", device.id), 0, len(lw.gateways))]
    sf = 7 + prng.choice_index(k ^ 9, 0, 4)
    eui = device_eui(device).upper()
    rssi = -int(60 + 55 * _uniform(k ^ 5, i))
    msg: dict[str, Any] = {
        "end_device_ids": {
            "device_id": device.id,
            "application_ids": {"application_id": lw.tts_application_id},
            "dev_eui": eui,
            "join_eui": "70B3D57ED0000000",
            "dev_addr": _hex(k ^ 3, 0, 8).upper(),
        },
        "correlation_ids": [f"as:up:01{_hex(k ^ 4, i, 16).upper()}{_hex(k ^ 10, i, 8).upper()}"],
        "received_at": _ns_time(received, _uniform(k ^ 11, i)),
        "uplink_message": {
            "session_key_id": base64.b64encode(bytes.fromhex(_hex(k ^ 12, 0, 16))).decode(),
            "f_port": 2,
            "f_cnt": reading.seq & 0xFFFFFFFF,
            "frm_payload": base64.b64encode(_frame(reading)).decode(),
            "decoded_payload": _decoded(reading),
            "rx_metadata": [
                {
                    "gateway_ids": {
                        "gateway_id": f"nam-dinh-gw-{gateway.id[-4:]}",
                        "eui": gateway.id.upper(),
                    },
                    "time": rfc3339(at_gw, digits=6),
                    "timestamp": prng.hash_int(k ^ 13, i) & 0xFFFFFFFF,
                    "rssi": rssi,
                    "channel_rssi": rssi,
                    "snr": round(-7.5 + 17.5 * _uniform(k ^ 6, i), 1),
                    "channel_index": prng.choice_index(k ^ 8, i, 8),
                }
            ],
            "settings": {
                "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": sf}},
                "coding_rate": "4/5",
                "frequency": str(
                    _AS923_CHANNELS[prng.choice_index(k ^ 8, i, len(_AS923_CHANNELS))]
                ),
            },
            "received_at": rfc3339(at_ns, digits=6),
            "consumed_airtime": f"{0.05 * 2 ** (sf - 7):.6f}s",
            "network_ids": {"net_id": "000013", "tenant_id": lw.tts_tenant_id, "cluster_id": "as1"},
        },
    }
    if msg["uplink_message"]["f_cnt"] == 0:
        del msg["uplink_message"]["f_cnt"]  # empty fields are omitted
    return tts_topic(city, device.id), _json(msg)


# -- Tasmota -----------------------------------------------------------------------------------
def tasmota_topic(device_id: str) -> str:
    """Tasmota's telemetry topic."""
    return f"tele/{device_id}/SENSOR"


def dew_point(temp_c: float, rh: float) -> float:
    """Magnus-formula dew point, °C (what Tasmota prints as DewPoint)."""
    a, b = 17.62, 243.12
    gamma = math.log(max(rh, 1.0) / 100.0) + a * temp_c / (b + temp_c)
    return round(b * gamma / (a - gamma), 1)


def tasmota(
    device: DeviceSpec, reading: Reading, energy_extra: Mapping[str, float] | None = None
) -> tuple[str, bytes]:
    """A Tasmota ``tele/…/SENSOR`` message.

    Args:
        device: the device.
        reading: the values (canonical metrics).
        energy_extra: for ENERGY devices: ``today``, ``yesterday`` (kWh), ``period`` (Wh since
            the last telemetry) and ``start`` (epoch seconds the counter started).
    """
    v = reading.values
    msg: dict[str, Any] = {"Time": local_time(reading.ts)}
    if "energy" in v or "power" in v:
        extra = energy_extra or {}
        power = v.get("power", 0.0)
        factor = v.get("power_factor", 1.0)
        apparent = power / factor if factor else power
        reactive = max(apparent**2 - power**2, 0.0) ** 0.5
        energy: dict[str, Any] = {}
        if "start" in extra:
            energy["TotalStartTime"] = local_time(extra["start"])
        if "energy" in v:
            energy["Total"] = v["energy"]
            energy["Yesterday"] = round(extra.get("yesterday", 0.0), 3)
            energy["Today"] = round(extra.get("today", 0.0), 3)
            energy["Period"] = round(extra.get("period", 0.0))
        if "power" in v:
            energy["Power"] = round(power)
            energy["ApparentPower"] = round(apparent)
            energy["ReactivePower"] = round(reactive)
        if "power_factor" in v:
            energy["Factor"] = round(factor, 2)
        if "frequency" in v:
            energy["Frequency"] = round(v["frequency"], 1)
        if "voltage" in v:
            energy["Voltage"] = round(v["voltage"])
        if "current" in v:
            energy["Current"] = round(v["current"], 3)
        msg["ENERGY"] = energy
    bme = {}
    if "temperature" in v:
        bme["Temperature"] = v["temperature"]
    if "humidity" in v:
        bme["Humidity"] = v["humidity"]
    if "temperature" in v and "humidity" in v:
        bme["DewPoint"] = dew_point(v["temperature"], v["humidity"])
    if "pressure" in v:
        bme["Pressure"] = v["pressure"]
    if bme:
        msg["BME280"] = bme
    if "pm25" in v or "pm10" in v:
        msg["SDS0X1"] = {
            **({"PM2.5": v["pm25"]} if "pm25" in v else {}),
            **({"PM10": v["pm10"]} if "pm10" in v else {}),
        }
    if "pressure" in v:
        msg["PressureUnit"] = "hPa"
    if bme:
        msg["TempUnit"] = "C"
    return tasmota_topic(device.id), _json(msg)


TASMOTA_METRICS: Final = frozenset(
    {
        "pm25",
        "pm10",
        "temperature",
        "humidity",
        "pressure",
        "voltage",
        "current",
        "power",
        "power_factor",
        "frequency",
        "energy",
    }
)
BATCHING_FORMATS: Final = frozenset({"native", "senml"})
