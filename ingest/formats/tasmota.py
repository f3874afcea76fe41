"""Tasmota telemetry on ``tele/{topic}/SENSOR``; the device id is the topic segment.

A message holds ``Time`` (the device's local clock, no offset), unit labels and one object per
sensor::

    {"Time": "2023-05-21T01:06:38", "BME280": {"Temperature": 20.5, "Humidity": 53.1,
     "DewPoint": 10.6, "Pressure": 977.0}, "SDS0X1": {"PM2.5": 11.8, "PM10": 5.8},
     "PressureUnit": "hPa", "TempUnit": "C"}

Field names are kept as Tasmota spells them (``Temperature``, ``PM2.5``, ``Total``): the metric
registry resolves them. This module only attaches the units Tasmota implies.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import PayloadError
from ingest.formats._common import (
    as_float,
    check_name,
    describe,
    finish,
    number_error,
    parse_time,
    short,
)
from ingest.model import Decoded, RawReading

if TYPE_CHECKING:
    from datetime import datetime, tzinfo

FORMAT: Final = "tasmota"

LOCAL_TZ: tzinfo
try:
    LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
except ZoneInfoNotFoundError:  # no tz database on the host; Vietnam has kept UTC+7 since 1975
    LOCAL_TZ = timezone(timedelta(hours=7), "ICT")

# Top-level keys that describe the message rather than measure anything.
_META: Final = frozenset(("Time", "TempUnit", "PressureUnit", "SpeedUnit"))

# Fields skipped on purpose. Each is derived from fields that are stored, or is not a
# measurement, so storing it would only duplicate or mislabel data. Anything else numeric is
# passed on, and an unknown name ends in the dead letters as unknown_metric, never dropped here.
SKIPPED_FIELDS: Final = frozenset(
    (
        "DewPoint",  # computed by Tasmota from Temperature and Humidity
        "SeaPressure",  # Pressure reduced to sea level with the configured altitude
        "Today",  # kWh since local midnight: a difference of the Total counter
        "Yesterday",  # kWh of the previous local day: a difference of the Total counter
        "Period",  # Wh since the previous telemetry: a difference of the Total counter
        "ApparentPower",  # V·I, derivable from Voltage and Current; no canonical metric
        "ReactivePower",  # from ApparentPower and Power; no canonical metric
        "TotalStartTime",  # when Total was last reset: a date, not a reading
        "Id",  # hardware address of a sensor (DS18B20), not a reading
    )
)

# Units Tasmota uses for these fields; temperature and pressure follow TempUnit/PressureUnit.
_UNITS: Final = {
    "Humidity": "%RH",
    "PM2.5": "µg/m³",
    "PM10": "µg/m³",
    "Voltage": "V",
    "Current": "A",
    "Power": "W",
    "Frequency": "Hz",
    "Total": "kWh",
}
_TEMP_UNITS: Final = {"C": "°C", "F": "°F"}


def decode_sensor(device_id: str, doc: Any) -> Decoded:
    """Decode a parsed Tasmota ``SENSOR`` message.

    Args:
        device_id: the topic segment (already validated).
        doc: the parsed JSON.

    Returns:
        The readings; ``Time`` is read as Asia/Ho_Chi_Minh local time and given in UTC.

    Raises:
        PayloadError: ``wrong_shape``, ``bad_timestamp``, or ``no_readings`` / the per-field
            reason when no field gives a reading.
    """
    if not isinstance(doc, dict):
        raise PayloadError("wrong_shape", f"payload: expected a JSON object, got {describe(doc)}")
    raw_time = doc.get("Time")
    # Tasmota's clock is local; with SetOption52 it appends the offset, which then wins.
    ts = None if raw_time is None else parse_time(raw_time, "Time", local=LOCAL_TZ)
    temp_unit = _unit_label(doc, "TempUnit", "C")
    units = {**_UNITS, "Temperature": _TEMP_UNITS.get(temp_unit, temp_unit)}
    units["Pressure"] = _unit_label(doc, "PressureUnit", "hPa")

    decoded = Decoded(device_id, FORMAT)
    # Metric name → where it was read: two sensors of one kind (BME280 and AM2301 both measure
    # Temperature) would collide on (device, metric, time), and only one row could be stored.
    seen: dict[str, str] = {}
    for key, value in doc.items():
        if key in _META or key in SKIPPED_FIELDS:
            continue
        if isinstance(value, dict):
            for field, inner in value.items():
                if field not in SKIPPED_FIELDS:
                    _reading(decoded, f"{key}.{field}", field, inner, seen=seen, units=units, ts=ts)
        else:
            _reading(decoded, key, key, value, seen=seen, units=units, ts=ts)
    return finish(decoded, "the message has no sensor readings")


def _unit_label(doc: dict[str, Any], key: str, default: str) -> str:
    label = doc.get(key, default)
    if not isinstance(label, str) or not label or len(label) > 16:
        raise PayloadError("wrong_shape", f"{key}: expected a unit name, got {describe(label)}")
    return label


def _reading(
    decoded: Decoded,
    path: str,
    name: str,
    value: object,
    *,
    seen: dict[str, str],
    units: dict[str, str],
    ts: datetime | None,
) -> None:
    num = as_float(value)
    if num is None:
        if isinstance(value, list):
            decoded.errors.append(
                PayloadError(
                    "wrong_type",
                    f"{path}: an array (one value per phase or channel) is not supported",
                )
            )
        else:
            decoded.errors.append(number_error(value, path, "wrong_type"))
        return
    problem = check_name(name, path)
    if problem is None and name in seen:
        problem = PayloadError(
            "duplicate_metric",
            f"{path}: {short(name)} was already read from {seen[name]}; dothi keeps one value per "
            "metric and time, the first",
        )
    if problem is not None:
        decoded.errors.append(problem)
        return
    seen[name] = path
    decoded.readings.append(RawReading(decoded.device_id, name, num, units.get(name), ts))
