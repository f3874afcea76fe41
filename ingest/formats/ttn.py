"""The Things Stack v3 uplinks on ``v3/{application_id}[@tenant_id]/devices/{device_id}/up``.

Readings are the numbers of ``uplink_message.decoded_payload``, the output of the application's
or device's payload formatter. The Things Stack leaves out empty fields, so a missing ``f_cnt``
means 0 and a missing ``decoded_payload`` means there is no formatter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from core.errors import PayloadError
from ingest.formats._common import (
    check_seq,
    describe,
    finish,
    flatten,
    parse_time,
    short,
)
from ingest.model import Decoded

if TYPE_CHECKING:
    from datetime import datetime

FORMAT: Final = "ttn"


def decode_uplink(topic_device_id: str, doc: Any) -> Decoded:
    """Decode a parsed Things Stack ``up`` message.

    Args:
        topic_device_id: the device id from the topic (already validated).
        doc: the parsed JSON.

    Returns:
        The readings of ``uplink_message.decoded_payload``.

    Raises:
        PayloadError: ``wrong_shape``, ``device_mismatch``, ``bad_timestamp``, or
            ``no_readings`` (no formatter output, or no numbers in it).
    """
    if not isinstance(doc, dict):
        raise PayloadError("wrong_shape", f"payload: expected a JSON object, got {describe(doc)}")
    ids = doc.get("end_device_ids")
    if ids is not None:
        if not isinstance(ids, dict):
            raise PayloadError(
                "wrong_shape", f"end_device_ids: expected an object, got {describe(ids)}"
            )
        claimed = ids.get("device_id", topic_device_id)
        if claimed != topic_device_id:
            shown = short(claimed) if isinstance(claimed, str) else describe(claimed)
            raise PayloadError(
                "device_mismatch",
                f"end_device_ids.device_id {shown} differs from the topic's device "
                f"{short(topic_device_id)}",
            )

    uplink = doc.get("uplink_message")
    if not isinstance(uplink, dict):
        got = "it is missing" if uplink is None else f"got {describe(uplink)}"
        raise PayloadError("wrong_shape", f"uplink_message: expected an object, {got}")
    ts = _time(doc, uplink)
    # Empty fields are left out, f_cnt 0 included.
    seq = check_seq(uplink.get("f_cnt", 0), "uplink_message.f_cnt")

    payload = uplink.get("decoded_payload")
    if payload is None:
        raise PayloadError(
            "no_readings",
            "uplink_message has no decoded_payload: the application or device has no payload "
            "formatter (or it failed), so only the raw frm_payload arrived",
        )
    if not isinstance(payload, dict):
        raise PayloadError(
            "wrong_shape",
            f"uplink_message.decoded_payload: expected an object, got {describe(payload)}",
        )
    decoded = Decoded(topic_device_id, FORMAT)
    flatten(payload, "uplink_message.decoded_payload", decoded, ts, seq)
    return finish(decoded, "uplink_message.decoded_payload has no fields")


def _time(doc: dict[str, Any], uplink: dict[str, Any]) -> datetime | None:
    """The gateway's receive time if the first gateway reports one, else the network's."""
    metadata = uplink.get("rx_metadata")
    if metadata is not None:
        if not isinstance(metadata, list):
            raise PayloadError(
                "wrong_shape",
                f"uplink_message.rx_metadata: expected an array, got {describe(metadata)}",
            )
        if metadata:
            first = metadata[0]
            if not isinstance(first, dict):
                raise PayloadError(
                    "wrong_shape",
                    f"uplink_message.rx_metadata[0]: expected an object, got {describe(first)}",
                )
            # Gateways without a GPS or a synced clock leave time out.
            if first.get("time") is not None:
                return parse_time(first["time"], "uplink_message.rx_metadata[0].time")
    if uplink.get("received_at") is not None:
        return parse_time(uplink["received_at"], "uplink_message.received_at")
    if doc.get("received_at") is not None:
        return parse_time(doc["received_at"], "received_at")
    return None
