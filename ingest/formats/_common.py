"""Pieces every payload decoder needs: strict JSON, numbers, timestamps, device ids, errors.

Everything here is on the ingest hot path, so the happy path uses type checks rather than
exceptions, and regular expressions are compiled once at import.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from core.errors import PayloadError
from ingest.model import RawReading

if TYPE_CHECKING:
    from datetime import tzinfo

    from ingest.model import Decoded

# Codec output (ChirpStack ``object``, TTS ``decoded_payload``) is flattened at most this deep;
# real codecs nest two or three levels, and the bound keeps hostile input from recursing.
MAX_DEPTH: Final = 8
# Names and units longer than this are refused: they would only bloat keys and error details.
MAX_NAME_LENGTH: Final = 100

# SQL bigint, where a sequence number ends up.
_MAX_SEQ: Final = 2**63 - 1

_DEVICE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_DEVICE_ID_RULE: Final = "1-64 characters from A-Z a-z 0-9 . _ : -, starting with a letter or digit"

# RFC 3339 date-time; the offset is optional here so Tasmota's local times can share the parser.
# [0-9] rather than \d: \d would also match non-ASCII digits.
_RFC3339: Final = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]([0-9]{2}:[0-9]{2}:[0-9]{2})"  # date, time
    r"(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})?"  # fraction, offset
)

# Unix seconds above this are almost certainly milliseconds (year 5138 and later).
_MILLIS_HINT: Final = 1e11


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN/Infinity by default; they are not JSON and must never come out
    # of a decoder as a number.
    raise PayloadError(
        "malformed_json", f"{name} is not valid JSON (non-finite numbers are not accepted)"
    )


_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)


def parse_json(payload: bytes) -> Any:
    """Decode a payload as UTF-8 JSON.

    Raises:
        PayloadError: ``invalid_utf8`` or ``malformed_json`` (also for NaN/Infinity literals,
            integers of more than 4300 digits and nesting deeper than the interpreter allows).
    """
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(
            "invalid_utf8", f"payload is not valid UTF-8: {exc.reason} at byte {exc.start}"
        ) from None
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        if not text.strip():
            raise PayloadError("malformed_json", "payload is empty") from None
        raise PayloadError(
            "malformed_json", f"{exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise PayloadError("malformed_json", "JSON is nested too deeply") from None
    except ValueError:  # int() refuses more than sys.get_int_max_str_digits() (4300) digits
        raise PayloadError("malformed_json", "a number has too many digits to read") from None


def describe(value: object) -> str:
    """A short JSON-ish rendering of a value for error details (never the whole of a big one)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        text = json.dumps(value if len(value) <= 40 else value[:40] + "…", ensure_ascii=False)
        return f"a string {text}" if len(value) > 40 else text
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {len(str(abs(value)))} digits"
    return repr(value)


def short(text: str, limit: int = 60) -> str:
    """Quote a device-supplied string for a detail, cut to ``limit`` characters."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def as_float(value: object, *, bools: bool = False) -> float | None:
    """Return a JSON value as a finite float, or None when it is not one.

    ``bools`` maps true/false to 1.0/0.0 where a format says so; elsewhere a boolean is not a
    number. Use :func:`number_error` to explain a None.
    """
    if isinstance(value, float):
        # json yields inf for literals beyond the float range, e.g. 1e400.
        return value if math.isfinite(value) else None
    if isinstance(value, bool):
        if bools:
            return 1.0 if value else 0.0
        return None
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            return None
    return None


def number_error(value: object, path: str, reason: str) -> PayloadError:
    """Explain why :func:`as_float` refused ``value``.

    ``reason`` is the code for a value of the wrong JSON type: ``wrong_shape`` where the format
    defines the field as a number, ``wrong_type`` where the format allows any value (codec
    output) but dothi can only store numbers.
    """
    if isinstance(value, float):  # only ±inf gets here: json turns 1e400 into inf
        return PayloadError("not_finite", f"{path}: the number is beyond the float range")
    if isinstance(value, int) and not isinstance(value, bool):
        return PayloadError("not_finite", f"{path}: {describe(value)} is beyond the float range")
    return PayloadError(reason, f"{path}: expected a number, got {describe(value)}")


def check_device_id(device_id: str, where: str) -> str:
    """Return ``device_id`` if it is a valid dothi device id.

    Raises:
        PayloadError: ``bad_device_id``, naming where the id came from.
    """
    if _DEVICE_ID.fullmatch(device_id) is None:
        shown = short(device_id) if device_id else "empty"
        raise PayloadError(
            "bad_device_id", f"{where} {shown} is not a valid device id ({_DEVICE_ID_RULE})"
        )
    return device_id


def check_name(name: str, path: str) -> PayloadError | None:
    """Return an error if a reading name is empty or too long, else None."""
    if not name:
        return PayloadError("wrong_shape", f"{path}: reading name is empty")
    if len(name) > MAX_NAME_LENGTH:
        return PayloadError(
            "wrong_shape",
            f"{path}: reading name of {len(name)} characters is too long (max {MAX_NAME_LENGTH})",
        )
    return None


def check_unit(unit: object, path: str) -> str | None:
    """Return a unit given as a JSON string (or None when absent).

    Raises:
        PayloadError: ``wrong_shape`` for a non-string or overlong unit.
    """
    if unit is None or (isinstance(unit, str) and len(unit) <= MAX_NAME_LENGTH):
        return unit
    if isinstance(unit, str):
        raise PayloadError("wrong_shape", f"{path}: unit of {len(unit)} characters is too long")
    raise PayloadError("wrong_shape", f"{path}: expected a unit string, got {describe(unit)}")


def check_seq(value: object, path: str) -> int | None:
    """Return a sequence number (absent → None).

    Raises:
        PayloadError: ``wrong_shape`` unless it is an integer in [0, 2^63).
    """
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_SEQ:
        return value
    raise PayloadError(
        "wrong_shape", f"{path}: expected an integer from 0 to 2^63-1, got {describe(value)}"
    )


def from_unix(seconds: float, path: str) -> datetime:
    """UTC datetime of Unix seconds.

    Raises:
        PayloadError: ``bad_timestamp`` when the value is no representable time.
    """
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        hint = " (milliseconds? dothi expects seconds)" if abs(seconds) >= _MILLIS_HINT else ""
        raise PayloadError(
            "bad_timestamp", f"{path}: {seconds!r} is not a usable Unix time in seconds{hint}"
        ) from None


def relative(base: datetime, seconds: float, path: str) -> datetime:
    """``base`` shifted by ``seconds``.

    Raises:
        PayloadError: ``bad_timestamp`` when the result is outside datetime's range.
    """
    try:
        return base + timedelta(seconds=seconds)
    except (OverflowError, ValueError):
        raise PayloadError(
            "bad_timestamp", f"{path}: {seconds!r} s relative to the receive time is out of range"
        ) from None


def parse_time(value: object, path: str, *, local: tzinfo | None = None) -> datetime:
    """Parse an RFC 3339 string or Unix seconds into an aware UTC datetime.

    Fractions beyond microseconds (ChirpStack sends nanoseconds) are truncated. A string without
    a UTC offset is refused unless ``local`` names the zone the device's clock runs in.

    Raises:
        PayloadError: ``bad_timestamp``.
    """
    if isinstance(value, str):
        match = _RFC3339.fullmatch(value)
        if match is None:
            raise PayloadError(
                "bad_timestamp",
                f"{path}: {short(value)} is not an RFC 3339 time (YYYY-MM-DDThh:mm:ss[.f]±hh:mm)",
            )
        date, clock, fraction, offset = match.groups()
        if offset is None and local is None:
            raise PayloadError(
                "bad_timestamp",
                f"{path}: {short(value)} has no UTC offset; add Z or ±hh:mm",
            )
        # Rebuilt rather than handed over as is: datetime.fromisoformat would otherwise also
        # accept ISO forms RFC 3339 does not have, and older 3.11 releases refuse 9 digits.
        text = date + "T" + clock + (fraction[:7] if fraction else "")
        if offset is not None:
            text += "+00:00" if offset in "Zz" else offset
        try:
            parsed = datetime.fromisoformat(text)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=local)
            return parsed.astimezone(UTC)
        except (ValueError, OverflowError):
            raise PayloadError(
                "bad_timestamp", f"{path}: {short(value)} is not a valid date and time"
            ) from None
    seconds = as_float(value)
    if seconds is None:
        raise PayloadError(
            "bad_timestamp",
            f"{path}: expected an RFC 3339 string or Unix seconds, got {describe(value)}",
        )
    return from_unix(seconds, path)


def flatten(
    obj: dict[str, Any],
    path: str,
    decoded: Decoded,
    ts: datetime | None,
    seq: int | None,
) -> None:
    """Append the numbers of a codec's output object to ``decoded`` as readings.

    Nested objects are joined with ``_`` (``{"pm": {"pm25": 1}}`` → ``pm_pm25``) and booleans
    become 1.0/0.0. Strings, nulls and arrays are per-field ``wrong_type`` errors; names that
    collide after joining are ``duplicate_metric`` errors (the first one wins).
    """
    device_id = decoded.device_id
    readings = decoded.readings
    errors = decoded.errors
    seen: set[str] = set()

    def walk(obj: dict[str, Any], prefix: str, path: str, depth: int) -> None:
        for key, value in obj.items():
            if not key:
                errors.append(PayloadError("wrong_shape", f"{path}: a field has an empty name"))
                continue
            name = prefix + key
            num = as_float(value, bools=True)
            if num is not None:
                problem = check_name(name, f"{path}.{key}") if len(name) > MAX_NAME_LENGTH else None
                if problem is None and name in seen:
                    problem = PayloadError(
                        "duplicate_metric",
                        f"{path}.{key}: {short(name)} was already read from another field",
                    )
                if problem is not None:
                    errors.append(problem)
                    continue
                seen.add(name)
                readings.append(RawReading(device_id, name, num, None, ts, seq))
            elif isinstance(value, dict):
                if depth < MAX_DEPTH:
                    walk(value, name + "_", f"{path}.{key}", depth + 1)
                else:
                    errors.append(
                        PayloadError(
                            "wrong_shape",
                            f"{path}.{key}: objects nested deeper than {MAX_DEPTH} levels",
                        )
                    )
            else:
                errors.append(number_error(value, f"{path}.{key}", "wrong_type"))

    walk(obj, "", path, 1)


def finish(decoded: Decoded, empty: str) -> Decoded:
    """Return ``decoded`` if it holds readings; otherwise raise why it does not.

    A message without a single usable reading cannot be used at all, so its per-field errors
    become the exception (the first one's reason, every detail up to a few).

    Raises:
        PayloadError: the first per-field error's reason, or ``no_readings`` with ``empty`` as
            the detail when there were no errors either.
    """
    if decoded.readings:
        return decoded
    errors = decoded.errors
    if not errors:
        raise PayloadError("no_readings", empty)
    first = errors[0]
    if len(errors) == 1:
        raise PayloadError(first.reason, first.detail)
    more = "; ".join(e.detail for e in errors[1:4])
    rest = f" and {len(errors) - 4} more" if len(errors) > 4 else ""
    raise PayloadError(first.reason, f"{first.detail} (no usable reading; also: {more}{rest})")
