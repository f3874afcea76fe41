"""Payload decoders: from an MQTT topic and payload to the readings a device stated.

The topic picks the format; on dothi's own topic the content picks between native JSON and
SenML. Decoders only extract: alias resolution, unit conversion and range and time checks are
the validator's (:func:`core.metrics.normalise`). They are pure functions and never raise
anything but :class:`~core.errors.PayloadError`.

Reason codes of the errors raised or reported in :attr:`Decoded.errors`:

=====================  ==================================================================
``unknown_topic``      the topic matches none of :data:`SUBSCRIPTIONS`
``bad_device_id``      the device id is not ``[A-Za-z0-9][A-Za-z0-9._:-]{0,63}``
``invalid_utf8``       the payload is not UTF-8
``malformed_json``     not JSON (NaN and Infinity literals included)
``wrong_shape``        JSON that does not follow the format, with the path of the part
``wrong_type``         a field the format allows but dothi cannot store (a string, an array)
``not_finite``         a number beyond the float range
``bad_timestamp``      a time that is not RFC 3339 with an offset or Unix seconds
``device_mismatch``    the payload names another device than the topic
``duplicate_metric``   two fields of one message give the same name
``unsupported_senml``  SenML bver > 10 or a must-understand label
``no_readings``        nothing to store (e.g. a LoRaWAN device without a codec)
=====================  ==================================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from core.errors import PayloadError
from ingest.formats import chirpstack, native, senml, tasmota, ttn
from ingest.formats._common import check_device_id, parse_json, short

if TYPE_CHECKING:
    from datetime import datetime

    from ingest.model import Decoded

__all__ = ["SUBSCRIPTIONS", "decode"]

SUBSCRIPTIONS: Final[tuple[str, ...]] = (
    "dothi/v1/devices/+/up",
    "application/+/device/+/event/up",
    "v3/+/devices/+/up",
    "tele/+/SENSOR",
)


def decode(topic: str, payload: bytes, received_at: datetime) -> Decoded:
    """Decode one MQTT message.

    Args:
        topic: the topic it was published on.
        payload: the raw payload.
        received_at: when it was received, timezone-aware (a naive value is taken as UTC);
            SenML relative times count from it.

    Returns:
        The readings as the device stated them, with per-field problems in ``errors``.

    Raises:
        PayloadError: when the message cannot be used at all; ``reason`` is one of the codes
            listed in this module's docstring.
    """
    parts = topic.split("/")
    count = len(parts)
    head = parts[0]
    if head == "dothi":
        if count == 5 and parts[1] == "v1" and parts[2] == "devices" and parts[4] == "up":
            device_id = check_device_id(parts[3], "topic device id")
            doc = parse_json(payload)
            if senml.looks_like_senml(doc):
                return senml.decode_records(device_id, doc, received_at)
            return native.decode_document(device_id, doc)
    elif head == "application":
        if count == 6 and parts[2] == "device" and parts[4] == "event" and parts[5] == "up":
            return chirpstack.decode_uplink(parts[3], parse_json(payload))
    elif head == "v3":
        if count == 5 and parts[2] == "devices" and parts[4] == "up":
            device_id = check_device_id(parts[3], "topic device id")
            return ttn.decode_uplink(device_id, parse_json(payload))
    elif head == "tele" and count == 3 and parts[2] == "SENSOR":
        device_id = check_device_id(parts[1], "topic")
        return tasmota.decode_sensor(device_id, parse_json(payload))
    raise PayloadError(
        "unknown_topic",
        f"topic {short(topic, 120)} matches none of the subscribed formats "
        f"({', '.join(SUBSCRIPTIONS)})",
    )
