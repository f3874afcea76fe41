"""Notifications: the outbox fan-out and the delivery loop (MQTT and webhooks).

Alert events reach the outbox in the transaction that changes the alert (a trigger on
``alert_events``, so the CLI's and the API's acknowledgements are announced too). This module
then works in two steps, both safe to run from several processes:

1. :meth:`Notifier.dispatch`: each new outbox event becomes one row per matching channel in
   ``notification_deliveries`` with the exact body to send.
2. :meth:`Notifier.deliver`: due deliveries are claimed with a lease (``claimed_until``), sent
   outside any transaction, and recorded: delivered, or retried later with exponential back-off,
   or failed after the channel's ``max_attempts`` (or a 4xx that retrying cannot fix).

Delivery is at least once: a crash between sending and recording sends again (receivers
deduplicate on ``X-Dothi-Delivery`` / the event id).

MQTT: each event goes to ``dothi/v1/alerts/{severity}/{area_id}`` (QoS 1, area ``none`` when the
device has none), then the alert's **current** state is published retained on
``dothi/v1/alerts/state/{alert_id}``; a resolved alert's state topic is **cleared** (empty
retained message), so subscribing to ``dothi/v1/alerts/state/+`` yields exactly the unresolved
alerts. Publishing the current state, not the event's, keeps a retried old event from
overwriting a newer state.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from analytics import alerts
from analytics.notifyconfig import MqttChannel, NotifyConfig, Webhook
from analytics.webhooks import json_body, post, sms_body
from core.mqtturl import parse_mqtt_url

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import psycopg
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger(__name__)

TOPIC_PREFIX: Final = "dothi/v1/alerts"
STATE_TOPIC: Final = TOPIC_PREFIX + "/state/{alert_id}"
EVENT_TOPIC: Final = TOPIC_PREFIX + "/{severity}/{area}"


class Publisher(Protocol):
    """What the delivery loop needs from an MQTT client."""

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        """Publish with QoS 1; True once the broker acknowledged it."""
        ...


class MqttPublisher:
    """A paho client that reconnects by itself; :meth:`publish` waits for the PUBACK.

    Args:
        url: ``mqtt[s]://user:password@host:port`` (the analytics role may write
            ``dothi/v1/alerts/#``).
        client_id: a stable id.
        timeout_s: how long a publish waits for the broker's acknowledgement.
    """

    def __init__(self, url: str, client_id: str, *, timeout_s: float = 10.0) -> None:
        self.target = parse_mqtt_url(url)
        self.timeout_s = timeout_s
        self._connected = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        if self.target.username:
            self._client.username_pw_set(self.target.username, self.target.password)
        if self.target.tls:
            self._client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_connect_fail = self._on_connect_fail
        self._stopping = False

    def _on_connect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("broker %s refused the notifier: %s", self.target.redacted(), reason)
            return
        self._connected.set()
        log.info("notifier connected to %s", self.target.redacted())

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        self._connected.clear()
        if not self._stopping:
            log.warning("notifier lost the broker (%s); reconnecting", reason)

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: object) -> None:
        log.warning("notifier cannot reach the broker at %s; retrying", self.target.redacted())

    def start(self) -> None:
        """Connect in the background (and keep reconnecting)."""
        self._client.connect_async(self.target.host, self.target.port, keepalive=30)
        self._client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        """Whether the client connected within ``timeout`` seconds."""
        return self._connected.wait(timeout)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        """Publish with QoS 1 and wait for the PUBACK; False if not connected or no ack."""
        if not self._connected.is_set():
            return False
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return False
        try:
            info.wait_for_publish(self.timeout_s)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()


def _event_json(
    event: alerts.AlertEvent, alert: alerts.Alert
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The event and the alert as of the event (state and severity taken from the event)."""
    alert_doc = alert.as_json()
    alert_doc["state"] = event.to_state or alert.state
    alert_doc["severity"] = event.severity
    return event.as_json(), alert_doc


class Notifier:
    """Fans out and delivers alert notifications.

    Args:
        config: returns the channels to use (a watcher's ``poll``).
        publisher: the MQTT client, or None (MQTT deliveries then wait as "not connected").
        lease: how long a claimed delivery is reserved for this sender.
        batch: deliveries claimed per call.
    """

    def __init__(
        self,
        config: Callable[[], NotifyConfig],
        publisher: Publisher | None,
        *,
        lease: timedelta = timedelta(seconds=120),
        batch: int = 50,
    ) -> None:
        self.config = config
        self.publisher = publisher
        self.lease = lease
        self.batch = batch

    # --- fan-out -----------------------------------------------------------------------------
    def dispatch(self, conn: psycopg.Connection[Any], now: datetime) -> int:
        """Turn pending outbox events into deliveries; returns how many deliveries were made."""
        cfg = self.config()
        made = 0
        with conn.transaction():
            ids = [
                int(r[0])
                for r in conn.execute(
                    "SELECT event_id FROM notification_outbox WHERE dispatched_at IS NULL"
                    " ORDER BY event_id LIMIT 500 FOR UPDATE SKIP LOCKED"
                ).fetchall()
            ]
            if not ids:
                return 0
            paths: dict[str | None, tuple[str, ...]] = {}
            for event, alert in alerts.events_with_alerts(conn, ids):
                if alert.area_id not in paths:
                    paths[alert.area_id] = _area_path(conn, alert.area_id)
                ev, al = _event_json(event, alert)
                for channel, body in _bodies(cfg, event, alert, paths[alert.area_id], ev, al):
                    cur = conn.execute(
                        "INSERT INTO notification_deliveries (event_id, channel, body,"
                        " next_attempt_at) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        (event.id, channel, body.decode(), now),
                    )
                    made += cur.rowcount
            conn.execute(
                "UPDATE notification_outbox SET dispatched_at = %s WHERE event_id = ANY(%s)",
                (now, ids),
            )
        return made

    # --- delivery ----------------------------------------------------------------------------
    def deliver(self, conn: psycopg.Connection[Any], now: datetime) -> int:
        """Send the deliveries due at ``now``; returns how many were delivered.

        ``conn`` must be in autocommit mode: the claim commits before anything is sent, and
        each result commits on its own.
        """
        cfg = self.config()
        claimed = conn.execute(
            """
UPDATE notification_deliveries AS d SET claimed_until = %(until)s
WHERE d.id IN (
    SELECT id FROM notification_deliveries
    WHERE status = 'pending' AND next_attempt_at <= %(now)s
      AND (claimed_until IS NULL OR claimed_until <= %(now)s)
    ORDER BY event_id, id LIMIT %(n)s FOR UPDATE SKIP LOCKED)
RETURNING d.id, d.event_id, d.channel, d.attempts, d.body
""",
            {"until": now + self.lease, "now": now, "n": self.batch},
        ).fetchall()
        delivered = 0
        for delivery_id, event_id, channel, attempts, body in sorted(
            claimed, key=lambda r: (r[1], r[0])
        ):
            target = cfg.channel(channel)
            if target is None:
                self._record(
                    conn,
                    delivery_id,
                    now,
                    attempts,
                    ok=False,
                    status=None,
                    error=f"channel {channel} is no longer configured",
                    retry_in=None,
                )
                continue
            if isinstance(target, MqttChannel):
                ok, status, error, retryable = self._send_mqtt(conn, body)
            else:
                ok, status, error, retryable = self._send_webhook(target, delivery_id, body, now)
            retry_in = None
            if not ok and retryable and attempts + 1 < target.retry.max_attempts:
                retry_in = target.retry.delay(attempts + 1)
            self._record(
                conn,
                delivery_id,
                now,
                attempts,
                ok=ok,
                status=status,
                error=error,
                retry_in=retry_in,
            )
            if ok:
                delivered += 1
            elif retry_in is None:
                log.error(
                    "notification %d (event %d) to %s failed for good after %d attempts: %s",
                    delivery_id,
                    event_id,
                    channel,
                    attempts + 1,
                    error,
                )
            else:
                log.warning(
                    "notification %d to %s failed (%s); retry in %.0f s",
                    delivery_id,
                    channel,
                    error,
                    retry_in,
                )
        return delivered

    def _send_mqtt(
        self, conn: psycopg.Connection[Any], body: str
    ) -> tuple[bool, int | None, str | None, bool]:
        if self.publisher is None:
            return False, None, "no MQTT publisher", True
        doc = json.loads(body)
        alert = doc["alert"]
        topic = EVENT_TOPIC.format(severity=alert["severity"], area=alert.get("area_id") or "none")
        if not self.publisher.publish(topic, body.encode()):
            return False, None, "broker not connected or no PUBACK", True
        current = alerts.get_alert(conn, int(alert["id"]))
        state = b""
        if current.state != "resolved":
            state = json.dumps(current.as_json(), ensure_ascii=False).encode()
        if not self.publisher.publish(STATE_TOPIC.format(alert_id=current.id), state, retain=True):
            return False, None, "broker not connected or no PUBACK (state topic)", True
        return True, None, None, False

    @staticmethod
    def _send_webhook(
        hook: Webhook, delivery_id: int, body: str, now: datetime
    ) -> tuple[bool, int | None, str | None, bool]:
        doc = json.loads(body)
        # json bodies nest the event; sms_vi bodies carry its kind only.
        event = doc["event"]["event"] if hook.template == "json" else doc.get("event", "")
        result = post(
            hook.url,
            body.encode(),
            secret=hook.secret,
            delivery_id=delivery_id,
            event=str(event),
            timeout_s=hook.timeout_s,
            now=int(now.timestamp()),
        )
        return result.ok, result.status, result.error, result.retryable

    @staticmethod
    def _record(
        conn: psycopg.Connection[Any],
        delivery_id: int,
        now: datetime,
        attempts: int,
        *,
        ok: bool,
        status: int | None,
        error: str | None,
        retry_in: float | None,
    ) -> None:
        if ok:
            new_status = "delivered"
        elif retry_in is not None:
            new_status = "pending"
        else:
            new_status = "failed"
        conn.execute(
            "UPDATE notification_deliveries SET status = %s, attempts = %s, last_status = %s,"
            " last_error = %s, claimed_until = NULL,"
            " delivered_at = CASE WHEN %s THEN %s ELSE delivered_at END,"
            " next_attempt_at = CASE WHEN %s::float8 IS NULL THEN next_attempt_at"
            "   ELSE %s + make_interval(secs => %s::float8) END"
            " WHERE id = %s",
            (
                new_status,
                attempts + 1,
                status,
                error,
                ok,
                now,
                retry_in,
                now,
                retry_in,
                delivery_id,
            ),
        )


def _area_path(conn: psycopg.Connection[Any], area_id: str | None) -> tuple[str, ...]:
    """An area and its ancestors (for area filters that include sub-areas)."""
    if area_id is None:
        return ()
    rows = conn.execute(
        "WITH RECURSIVE up AS (SELECT id, parent_id FROM areas WHERE id = %s"
        " UNION ALL SELECT a.id, a.parent_id FROM areas AS a JOIN up ON a.id = up.parent_id)"
        " SELECT id FROM up",
        (area_id,),
    ).fetchall()
    return tuple(str(r[0]) for r in rows)


def _bodies(  # noqa: PLR0917 (private helper, one call site)
    cfg: NotifyConfig,
    event: alerts.AlertEvent,
    alert: alerts.Alert,
    area_path: tuple[str, ...],
    ev: Mapping[str, Any],
    al: Mapping[str, Any],
) -> list[tuple[str, bytes]]:
    """(channel, body) for every channel whose filters let the event through."""
    out: list[tuple[str, bytes]] = []
    facts = (event.event, event.severity, area_path, alert.rule_id, alert.kind)
    if cfg.mqtt.enabled and cfg.mqtt.filters.matches(*facts):
        out.append(("mqtt", json_body(ev, al)))
    for hook in cfg.webhooks:
        if not hook.filters.matches(*facts):
            continue
        body = sms_body(ev, al, hook.recipients) if hook.template == "sms_vi" else json_body(ev, al)
        out.append((hook.channel, body))
    return out
