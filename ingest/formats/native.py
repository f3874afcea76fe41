"""dothi's own JSON format on ``dothi/v1/devices/{device_id}/up``.

One message is an object, or an array of objects (a batch, e.g. readings a device buffered while
offline)::

    {"ts": "2025-01-09T10:00:00+07:00", "seq": 42,
     "readings": {"pm25": 38.2, "noise": {"value": 67.4, "unit": "dB"}, "lamp_on": true}}

``ts`` is RFC 3339 with an offset or Unix seconds; without it the receive time applies. Reading
values are numbers, booleans (1/0, for states such as ``lamp_on``) or ``{"value", "unit"}``.
"""

from __future__ import annotations

from typing import Any, Final

from core.errors import PayloadError
from ingest.formats._common import (
    MAX_NAME_LENGTH,
    as_float,
    check_name,
    check_seq,
    check_unit,
    describe,
    finish,
    number_error,
    parse_time,
    short,
)
from ingest.model import Decoded, RawReading

FORMAT: Final = "native"


def decode_document(device_id: str, doc: Any) -> Decoded:
    """Decode a parsed native message.

    Args:
        device_id: the id from the topic (already validated).
        doc: the parsed JSON.

    Returns:
        The readings; unusable fields (and, in a batch, unusable records) are in ``errors``.

    Raises:
        PayloadError: ``wrong_shape``, ``bad_timestamp``, ``device_mismatch`` or ``no_readings``
            when nothing in the message can be used.
    """
    decoded = Decoded(device_id, FORMAT)
    if isinstance(doc, dict):
        _decode_record(doc, "", decoded)
    elif isinstance(doc, list):
        for index, record in enumerate(doc):
            prefix = f"[{index}]."
            if not isinstance(record, dict):
                decoded.errors.append(
                    PayloadError(
                        "wrong_shape", f"[{index}]: expected an object, got {describe(record)}"
                    )
                )
                continue
            try:
                _decode_record(record, prefix, decoded)
            except PayloadError as exc:
                # A record naming another device discredits the whole batch.
                if exc.reason == "device_mismatch":
                    raise
                decoded.errors.append(exc)
    else:
        raise PayloadError(
            "wrong_shape", f"payload: expected a JSON object or array, got {describe(doc)}"
        )
    return finish(decoded, "the message has no readings")


def _decode_record(record: dict[str, Any], prefix: str, decoded: Decoded) -> None:
    """Append one record's readings; raise for a problem that spoils the whole record."""
    device_id = decoded.device_id
    claimed = record.get("device_id", device_id)
    if claimed != device_id:
        shown = short(claimed) if isinstance(claimed, str) else describe(claimed)
        raise PayloadError(
            "device_mismatch",
            f"{prefix}device_id {shown} differs from the topic's device {short(device_id)}",
        )
    readings = record.get("readings")
    if not isinstance(readings, dict):
        got = "it is missing" if readings is None else f"got {describe(readings)}"
        raise PayloadError("wrong_shape", f"{prefix}readings: expected an object, {got}")
    raw_ts = record.get("ts")
    ts = None if raw_ts is None else parse_time(raw_ts, prefix + "ts")
    seq = check_seq(record.get("seq"), prefix + "seq")

    append = decoded.readings.append
    for name, value in readings.items():
        if isinstance(value, dict):
            path = f"{prefix}readings.{name}"
            try:
                unit = check_unit(value.get("unit"), path + ".unit")
            except PayloadError as exc:
                decoded.errors.append(exc)
                continue
            if "value" not in value:
                decoded.errors.append(PayloadError("wrong_shape", f"{path}.value: missing"))
                continue
            raw = value["value"]
            num = as_float(raw, bools=True)
            if num is None:
                decoded.errors.append(number_error(raw, path + ".value", "wrong_shape"))
                continue
        else:
            unit = None
            num = as_float(value, bools=True)
            if num is None:
                decoded.errors.append(
                    number_error(value, f"{prefix}readings.{name}", "wrong_shape")
                )
                continue
        if not name or len(name) > MAX_NAME_LENGTH:
            problem = check_name(name, f"{prefix}readings")
            if problem is not None:
                decoded.errors.append(problem)
                continue
        append(RawReading(device_id, name, num, unit, ts, seq))
