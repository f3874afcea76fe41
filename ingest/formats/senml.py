"""SenML (RFC 8428) JSON on ``dothi/v1/devices/{device_id}/up``.

Resolution follows RFC 8428 §4.6: base fields (bn, bt, bu, bv, bs) apply to their record and
every later one until redefined; time = bt + t, where a result below 2^28 is seconds relative to
the receive time; value = bv + v; unit = u or bu. The metric name is ``n``: ``bn`` only prefixes
the device, and dothi takes the device from the topic, which the broker's ACL protects.
"""

from __future__ import annotations

import re
from datetime import UTC
from typing import TYPE_CHECKING, Any, Final

from core.errors import PayloadError
from ingest.formats._common import (
    as_float,
    check_name,
    check_unit,
    describe,
    finish,
    from_unix,
    number_error,
    relative,
    short,
)
from ingest.model import Decoded, RawReading

if TYPE_CHECKING:
    from datetime import datetime

FORMAT: Final = "senml"

# Every label RFC 8428 defines for JSON; an array whose first record uses one is SenML.
LABELS: Final = frozenset(
    ("bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "v", "vs", "vb", "vd", "s", "t", "ut")
)

# Times below 2^28 s (about 8.5 years) are relative to "now" (RFC 8428 §4.5.3).
_BASE_LABELS: Final = frozenset(("bn", "bt", "bu", "bv", "bs"))

_RELATIVE_LIMIT: Final = 2**28
_SUPPORTED_VERSION: Final = 10

# RFC 8428 §4.5.1: names use A-Z a-z 0-9 - : . / _ and the resolved name starts alphanumerically.
_NAME_CHARS: Final = re.compile(r"[A-Za-z0-9:./_-]*")
_NAME_START: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def looks_like_senml(doc: Any) -> bool:
    """Tell SenML from a native batch: an array whose first object uses SenML labels.

    Native records always carry ``readings``, which is not a SenML label.
    """
    if not isinstance(doc, list) or not doc:
        return False
    first = doc[0]
    return isinstance(first, dict) and "readings" not in first and not LABELS.isdisjoint(first)


def decode_records(device_id: str, records: list[Any], received_at: datetime) -> Decoded:
    """Resolve a SenML pack into readings.

    Args:
        device_id: the id from the topic (already validated).
        records: the parsed JSON array.
        received_at: the receive time; relative SenML times count from it. A naive value is
            taken as UTC.

    Returns:
        The readings; a record that cannot be used (a string value, a bad time …) is reported
        in ``errors`` and the others are kept.

    Raises:
        PayloadError: ``unsupported_senml`` for bver > 10 or a must-understand label,
            ``wrong_shape`` for an unusable base field, or the reason of the per-record
            problems (``no_readings`` if there were none) when no record gives a reading.
    """
    if received_at.tzinfo is None:
        received_at = received_at.replace(tzinfo=UTC)
    decoded = Decoded(device_id, FORMAT)
    errors = decoded.errors
    append = decoded.readings.append

    base_name = ""
    base_time = 0.0
    base_unit: str | None = None
    base_value = 0.0
    base_sum = 0.0
    # The time of the previous record, which most packs share (bt without t).
    last_time: float | None = None
    last_ts: datetime | None = None

    # Names already checked in this pack; packs repeat a few names many times.
    good_names: set[str] = set()

    for index, record in enumerate(records):
        if not isinstance(record, dict):
            errors.append(
                PayloadError(
                    "wrong_shape", f"[{index}]: expected an object, got {describe(record)}"
                )
            )
            continue
        # One C-level test in the usual case: only known labels and no version to check.
        if "bver" in record or not LABELS.issuperset(record):
            _check_understood(record, index)

        if not _BASE_LABELS.isdisjoint(record):
            # A bad base field would silently shift every later record, so it is fatal.
            if "bn" in record:
                base_name = _base_name(record["bn"], index)
            if "bt" in record:
                base_time = _base_number(record, "bt", index)
            if "bu" in record:
                base_unit = check_unit(record["bu"], f"[{index}].bu")
            if "bv" in record:
                base_value = _base_number(record, "bv", index)
            if "bs" in record:
                base_sum = _base_number(record, "bs", index)

        try:
            value = _value(record, index, base_value, base_sum)
            if value is None:
                continue
            name = record.get("n", "")
            if not isinstance(name, str) or name not in good_names:
                name = _name(name, base_name, index)
                if name[0] in _NAME_START:  # valid whatever bn is, so safe to remember
                    good_names.add(name)
            unit = check_unit(record["u"], f"[{index}].u") if "u" in record else base_unit
            time = base_time
            if "t" in record:
                offset = as_float(record["t"])
                if offset is None:
                    raise number_error(record["t"], f"[{index}].t", "wrong_shape")
                time += offset
            if time != last_time:
                if time < _RELATIVE_LIMIT:
                    last_ts = relative(received_at, time, f"[{index}].t").astimezone(UTC)
                else:
                    last_ts = from_unix(time, f"[{index}].t")
                last_time = time
        except PayloadError as exc:
            errors.append(exc)
            continue
        append(RawReading(device_id, name, value, unit, last_ts))
    return finish(decoded, "the SenML pack has no records with a value")


def _check_understood(record: dict[str, Any], index: int) -> None:
    """Refuse what RFC 8428 says a receiver that does not understand it must refuse."""
    where = f"[{index}]"
    if "bver" in record:
        version = record["bver"]
        if isinstance(version, bool) or not isinstance(version, int):
            raise PayloadError(
                "unsupported_senml", f"{where}.bver: expected an integer, got {describe(version)}"
            )
        if version > _SUPPORTED_VERSION:
            raise PayloadError(
                "unsupported_senml",
                f"{where}.bver: SenML version {version} is newer than the supported "
                f"{_SUPPORTED_VERSION}",
            )
    for label in record:
        if label.endswith("_"):
            raise PayloadError(
                "unsupported_senml",
                f"{where}: must-understand label {short(label)} is not supported",
            )


def _base_name(value: object, index: int) -> str:
    where = f"[{index}]"
    if not isinstance(value, str):
        raise PayloadError("wrong_shape", f"{where}.bn: expected a string, got {describe(value)}")
    if value and (value[0] not in _NAME_START or _NAME_CHARS.fullmatch(value) is None):
        raise PayloadError(
            "wrong_shape",
            f"{where}.bn: {short(value)} is not a SenML name (A-Z a-z 0-9 - : . / _, "
            "starting with a letter or digit)",
        )
    return value


def _base_number(record: dict[str, Any], label: str, index: int) -> float:
    value = record[label]
    num = as_float(value)
    if num is None:
        raise number_error(value, f"[{index}].{label}", "wrong_shape")
    return num


def _name(name: object, base_name: str, index: int) -> str:
    where = f"[{index}]"
    if not isinstance(name, str):
        raise PayloadError("wrong_shape", f"{where}.n: expected a string, got {describe(name)}")
    if not name:
        raise PayloadError(
            "wrong_shape",
            f"{where}: record has a value but no name (n); dothi reads the metric from n, "
            "bn only names the device",
        )
    problem = check_name(name, f"{where}.n")
    if problem is not None:
        raise problem
    if _NAME_CHARS.fullmatch(name) is None or (not base_name and name[0] not in _NAME_START):
        raise PayloadError(
            "wrong_shape",
            f"{where}.n: {short(name)} is not a SenML name (A-Z a-z 0-9 - : . / _, "
            "starting with a letter or digit)",
        )
    return name


def _value(record: dict[str, Any], index: int, base_value: float, base_sum: float) -> float | None:
    """The record's resolved numeric value, or None for a record that only sets base fields.

    Raises:
        PayloadError: ``wrong_type`` for a string or data value, ``wrong_shape`` for a value
            field of the wrong JSON type or several value fields, ``not_finite`` on overflow.
    """
    count = ("v" in record) + ("vb" in record) + ("vs" in record) + ("vd" in record)
    if count > 1:
        raise PayloadError(
            "wrong_shape", f"[{index}]: a record may carry only one of v, vb, vs, vd"
        )
    if "v" in record:
        raw = record["v"]
        num = as_float(raw)
        if num is None:
            raise number_error(raw, f"[{index}].v", "wrong_shape")
        return _finite(base_value + num, index, "bv + v")
    if "vb" in record:
        flag = record["vb"]
        if not isinstance(flag, bool):
            raise PayloadError(
                "wrong_shape", f"[{index}].vb: expected true or false, got {describe(flag)}"
            )
        return 1.0 if flag else 0.0
    if "vs" in record or "vd" in record:
        label = "vs" if "vs" in record else "vd"
        kind = "string" if label == "vs" else "data"
        raise PayloadError(
            "wrong_type", f"[{index}].{label}: a {kind} value is not a number dothi can store"
        )
    if "s" in record:
        # A sum counts only when it is the record's only value (RFC 8428 §4.2).
        raw = record["s"]
        num = as_float(raw)
        if num is None:
            raise number_error(raw, f"[{index}].s", "wrong_shape")
        return _finite(base_sum + num, index, "bs + s")
    if "n" not in record:
        # Only base fields (or labels dothi does not use): nothing to store, nothing wrong.
        return None
    raise PayloadError(
        "wrong_shape", f"[{index}]: record has a name but no value (v, vb, vs, vd or s)"
    )


def _finite(value: float, index: int, what: str) -> float:
    if value - value == 0.0:  # false for inf and NaN
        return value
    raise PayloadError("not_finite", f"[{index}]: {what} is beyond the float range")
