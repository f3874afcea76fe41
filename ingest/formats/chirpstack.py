"""ChirpStack v4 uplink events on ``application/{applicationId}/device/{devEui}/event/up``.

The JSON is protobuf-JSON: default values are left out, so a missing ``fCnt`` means 0 and a
missing ``object`` means the device profile has no codec. Readings are the numbers in the
codec's ``object``.
"""

from __future__ import annotations

from typing import Any, Final

from core.errors import PayloadError
from ingest.formats._common import (
    check_device_id,
    check_seq,
    describe,
    finish,
    flatten,
    parse_time,
    short,
)
from ingest.model import Decoded

FORMAT: Final = "chirpstack"


def decode_uplink(topic_dev_eui: str, doc: Any) -> Decoded:
    """Decode a parsed ChirpStack ``up`` event.

    Args:
        topic_dev_eui: the devEui segment of the topic (may be empty).
        doc: the parsed JSON.

    Returns:
        The readings of ``object`` for device ``deviceInfo.devEui`` (lowercased).

    Raises:
        PayloadError: ``wrong_shape``, ``device_mismatch``, ``bad_device_id``,
            ``bad_timestamp``, or ``no_readings`` (no codec, or no numbers in ``object``).
    """
    if not isinstance(doc, dict):
        raise PayloadError("wrong_shape", f"payload: expected a JSON object, got {describe(doc)}")
    topic_eui = topic_dev_eui.lower()
    device_id = topic_eui
    info = doc.get("deviceInfo")
    if info is not None:
        if not isinstance(info, dict):
            raise PayloadError(
                "wrong_shape", f"deviceInfo: expected an object, got {describe(info)}"
            )
        eui = info.get("devEui")
        if eui is not None:
            if not isinstance(eui, str):
                raise PayloadError(
                    "wrong_shape", f"deviceInfo.devEui: expected a string, got {describe(eui)}"
                )
            device_id = eui.lower()
            if topic_eui and device_id != topic_eui:
                raise PayloadError(
                    "device_mismatch",
                    f"deviceInfo.devEui {short(eui)} differs from the topic's devEui "
                    f"{short(topic_dev_eui)}",
                )
    check_device_id(device_id, "devEui")

    raw_time = doc.get("time")
    ts = None if raw_time is None else parse_time(raw_time, "time")
    # protobuf-JSON leaves out fCnt 0.
    seq = check_seq(doc.get("fCnt", 0), "fCnt")

    obj = doc.get("object")
    if obj is None:
        raise PayloadError(
            "no_readings",
            "the uplink has no decoded 'object': the device profile has no codec, so ChirpStack "
            "sent only the raw 'data'; add a payload codec to the device profile",
        )
    if not isinstance(obj, dict):
        raise PayloadError("wrong_shape", f"object: expected an object, got {describe(obj)}")
    decoded = Decoded(device_id, FORMAT)
    flatten(obj, "object", decoded, ts, seq)
    return finish(decoded, "the codec's 'object' has no fields")
