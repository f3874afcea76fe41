"""Webhook bodies, signatures and the HTTP POST (stdlib only).

Every request carries:

- ``X-Dothi-Timestamp``: Unix seconds when this attempt was sent;
- ``X-Dothi-Signature``: ``sha256=<hex>``, the HMAC-SHA256 with the webhook's secret of
  ``"<timestamp>." + body`` (the timestamp is signed so a captured request cannot be replayed
  later: receivers reject timestamps too far from their clock, see :func:`verify`);
- ``X-Dothi-Delivery``: the delivery id, the same on every retry (receivers deduplicate on it);
- ``X-Dothi-Event``: the event kind (``opened``, ``resolved`` …).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from analytics._shared import as_local

if TYPE_CHECKING:
    from collections.abc import Mapping

SIGNATURE_HEADER: Final = "X-Dothi-Signature"
TIMESTAMP_HEADER: Final = "X-Dothi-Timestamp"
DELIVERY_HEADER: Final = "X-Dothi-Delivery"
EVENT_HEADER: Final = "X-Dothi-Event"
USER_AGENT: Final = "dothi-notify/1"
# Statuses worth retrying among the 4xx: timeout, conflict, too early, rate limited.
_RETRYABLE_4XX: Final = frozenset({408, 409, 425, 429})
_ERROR_TEXT_MAX: Final = 500


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Dothi-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of ``"<ts>." + body``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float,
    tolerance_s: float = 300,
) -> bool:
    """Check a received webhook (what a receiver does; also used by dothi's tests).

    Args:
        secret: the shared secret.
        timestamp: the ``X-Dothi-Timestamp`` header.
        body: the raw request body, exactly as received.
        signature: the ``X-Dothi-Signature`` header.
        now: the receiver's clock (Unix seconds).
        tolerance_s: how far the timestamp may be from ``now`` (replay window).
    """
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


@dataclass(frozen=True, slots=True, kw_only=True)
class PostResult:
    """The outcome of one POST.

    Attributes:
        ok: a 2xx answer.
        status: the HTTP status, or None when no answer came (connection refused, timeout).
        error: what went wrong, for the delivery log.
        retryable: whether trying again may help (network errors, 5xx, 408/409/425/429).
    """

    ok: bool
    status: int | None
    error: str | None
    retryable: bool


def post(
    url: str, body: bytes, *, secret: str, delivery_id: int, event: str, timeout_s: float, now: int
) -> PostResult:
    """POST ``body`` (JSON) to ``url`` signed with ``secret``; never raises for HTTP trouble."""
    request = urllib.request.Request(  # noqa: S310 (the URL is validated as http(s) on load)
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            TIMESTAMP_HEADER: str(now),
            SIGNATURE_HEADER: sign(secret, now, body),
            DELIVERY_HEADER: str(delivery_id),
            EVENT_HEADER: event,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:  # noqa: S310
            resp.read()
            return PostResult(ok=True, status=resp.status, error=None, retryable=False)
    except urllib.error.HTTPError as exc:
        with exc:
            text = exc.read(_ERROR_TEXT_MAX).decode("utf-8", "replace")
        retryable = exc.code >= 500 or exc.code in _RETRYABLE_4XX
        return PostResult(
            ok=False, status=exc.code, error=f"HTTP {exc.code}: {text}".strip(), retryable=retryable
        )
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return PostResult(
            ok=False, status=None, error=f"{type(exc).__name__}: {reason}", retryable=True
        )


# --- bodies ----------------------------------------------------------------------------------

_SEVERITY_VI: Final = {"critical": "KHẨN CẤP", "warning": "CẢNH BÁO", "info": "THÔNG BÁO"}
_ROMAN: Final = {1: "I", 2: "II", 3: "III"}
SMS_MAX: Final = 160


def json_body(event: Mapping[str, Any], alert: Mapping[str, Any]) -> bytes:
    """The ``json`` template: the event and the alert as the API shows them."""
    doc = {"version": 1, "source": "dothi", "event": dict(event), "alert": dict(alert)}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def sms_text(event: Mapping[str, Any], alert: Mapping[str, Any]) -> str:
    """A short Vietnamese text for an SMS gateway, e.g.
    ``[Nam Định] CẢNH BÁO LŨ cấp III: sông Đào 4.35 m lúc 14:20``."""
    at = as_local(datetime.fromisoformat(str(event["at"]))).strftime("%H:%M")
    details = alert.get("details") or {}
    kind = alert.get("kind")
    value = alert.get("value")
    where = details.get("device_name") or alert.get("device_id")
    if event.get("event") == "resolved":
        title = str(alert.get("title", "")).split(":")[0]
        text = f"[Nam Định] HẾT CẢNH BÁO: {title} ({where}) lúc {at}"
    elif (
        kind == "river_alarm"
        and isinstance(details.get("alarm_level"), int)
        and isinstance(value, int | float)
    ):
        level = _ROMAN.get(details["alarm_level"], str(details["alarm_level"]))
        text = f"[Nam Định] CẢNH BÁO LŨ cấp {level}: {details.get('river')} {value:.2f} m lúc {at}"
    elif kind == "aqi_category" and isinstance(value, int | float):
        category = str(details.get("category_vi", "")).upper()
        text = f"[Nam Định] KHÔNG KHÍ {category}: {where} AQI {value:.0f} lúc {at}"
    else:
        severity = _SEVERITY_VI.get(str(alert.get("severity")), "CẢNH BÁO")
        title = str(alert.get("title", "")).split(":")[0]
        shown = f" {value:.4g}" if isinstance(value, int | float) else ""
        text = f"[Nam Định] {severity}: {title} ({where}){shown} lúc {at}"
    return text if len(text) <= SMS_MAX else text[: SMS_MAX - 1] + "…"


def sms_body(
    event: Mapping[str, Any], alert: Mapping[str, Any], recipients: tuple[str, ...]
) -> bytes:
    """The ``sms_vi`` template: ``{"to": [...], "text": "...", "alert_id": n, "event": "..."}``."""
    doc = {
        "to": list(recipients),
        "text": sms_text(event, alert),
        "alert_id": alert.get("id"),
        "event": event.get("event"),
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
