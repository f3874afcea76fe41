"""Notifications: signed webhooks with retries, MQTT events and retained state, the SMS text."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest

from analytics import alerts
from analytics.alerts import NewAlert
from analytics.notify import MqttPublisher, Notifier
from analytics.notifyconfig import (
    NotifyConfig,
    NotifyConfigError,
    load_notifications,
    parse_notifications,
)
from analytics.webhooks import sms_text, verify
from dothi.stack import LocalStack, free_port
from tests.analytics_support import add_device
from tests.helpers import mqtt_client, wait_for

ROOT = Path(__file__).resolve().parents[1]
SECRET = "s3cret-for-tests-0123456789"
NOW = datetime(2026, 9, 11, 7, 20, tzinfo=UTC)  # 14:20 in Nam Định


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    received: list[tuple[dict[str, str], bytes]]
    fail_first: int
    fail_status: int


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((dict(self.headers.items()), body))
        if self.server.fail_first > 0:
            self.server.fail_first -= 1
            self.send_response(self.server.fail_status)
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        pass


@contextlib.contextmanager
def webhook_server(fail_first: int = 0, fail_status: int = 503) -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.received, server.fail_first, server.fail_status = [], fail_first, fail_status
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def config(url: str, extra: str = "", *, mqtt_enabled: bool = False) -> NotifyConfig:
    return parse_notifications(
        f"""
        [mqtt]
        enabled = {str(mqtt_enabled).lower()}

        [[webhook]]
        name = "ops"
        url = "{url}"
        secret = "{SECRET}"
        backoff_s = 2
        max_attempts = 5
        timeout_s = 5
        {extra}
        """.replace("\n        ", "\n")
    )


def flood_alert(conn: psycopg.Connection[Any], uid: str, **overrides: Any) -> alerts.Alert:
    device = f"rv-{uid}"
    add_device(conn, device, "river_gauge", area="tp-nam-dinh-cua-bac", name="Trạm Nam Định")
    values: dict[str, Any] = {
        "rule_id": "river-alarm",
        "kind": "river_alarm",
        "device_id": device,
        "metric": "water_level",
        "severity": "critical",
        "title": "Cảnh báo lũ: Trạm Nam Định",
        "message": "sông Đào at Nam Định: 4.35 m, flood alarm level III",
        "started_at": NOW,
        "opened_at": NOW,
        "value": 4.35,
        "threshold": 4.30,
        "details": {"alarm_level": 3, "river": "sông Đào", "device_name": "Trạm Nam Định"},
    }
    values.update(overrides)
    alert = alerts.open_alert(conn, NewAlert(**values), at=NOW)
    assert alert is not None
    return alert


def deliveries(conn: psycopg.Connection[Any]) -> list[tuple[str, str, int]]:
    rows = conn.execute(
        "SELECT channel, status, attempts FROM notification_deliveries ORDER BY id"
    ).fetchall()
    return [(str(c), str(s), int(a)) for c, s, a in rows]


def test_signed_webhook_is_received_and_verifies(fresh_db_url: str, uid: str) -> None:
    with webhook_server() as server, psycopg.connect(fresh_db_url, autocommit=True) as conn:
        cfg = config(f"http://127.0.0.1:{server.server_port}/hook")
        notifier = Notifier(lambda: cfg, None)
        alert = flood_alert(conn, uid)
        assert notifier.dispatch(conn, NOW) == 1
        assert notifier.deliver(conn, NOW) == 1
        assert deliveries(conn) == [("webhook:ops", "delivered", 1)]
    [(headers, body)] = server.received
    ts, signature = headers["X-Dothi-Timestamp"], headers["X-Dothi-Signature"]
    assert ts == str(int(NOW.timestamp()))
    assert signature.startswith("sha256=")
    assert verify(SECRET, ts, body, signature, now=NOW.timestamp() + 30)
    assert not verify("another-secret-0123456789", ts, body, signature, now=NOW.timestamp())
    assert not verify(SECRET, ts, body + b" ", signature, now=NOW.timestamp())
    assert not verify(SECRET, ts, body, signature, now=NOW.timestamp() + 3600)  # a replay
    doc = json.loads(body)
    assert doc["event"]["event"] == "opened"
    assert doc["alert"]["id"] == alert.id
    assert doc["alert"]["severity"] == "critical"
    assert headers["X-Dothi-Event"] == "opened"
    assert headers["Content-Type"].startswith("application/json")


def test_a_webhook_failing_twice_gets_the_alert_on_retry(fresh_db_url: str, uid: str) -> None:
    with (
        webhook_server(fail_first=2) as server,
        psycopg.connect(fresh_db_url, autocommit=True) as conn,
    ):
        cfg = config(f"http://127.0.0.1:{server.server_port}/hook")
        notifier = Notifier(lambda: cfg, None)
        flood_alert(conn, uid)
        notifier.dispatch(conn, NOW)
        assert notifier.deliver(conn, NOW) == 0  # 503
        assert deliveries(conn) == [("webhook:ops", "pending", 1)]
        assert notifier.deliver(conn, NOW + timedelta(seconds=1)) == 0  # not due: back-off 2 s
        assert len(server.received) == 1
        assert notifier.deliver(conn, NOW + timedelta(seconds=2)) == 0  # 503 again; next in 4 s
        assert notifier.deliver(conn, NOW + timedelta(seconds=5)) == 0
        assert notifier.deliver(conn, NOW + timedelta(seconds=6)) == 1
        assert deliveries(conn) == [("webhook:ops", "delivered", 3)]
        row = conn.execute(
            "SELECT last_status, last_error, delivered_at FROM notification_deliveries"
        ).fetchone()
    assert row == (200, None, NOW + timedelta(seconds=6))
    assert len(server.received) == 3
    # Every attempt sent the same body and delivery id, each signed with its own timestamp.
    assert len({body for _, body in server.received}) == 1
    assert len({h["X-Dothi-Delivery"] for h, _ in server.received}) == 1
    for headers, body in server.received:
        stamp = int(headers["X-Dothi-Timestamp"])
        assert verify(SECRET, str(stamp), body, headers["X-Dothi-Signature"], now=stamp)


def test_client_errors_are_not_retried_and_dead_endpoints_are(fresh_db_url: str, uid: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook"
    with (
        webhook_server(fail_first=1, fail_status=400) as server,
        psycopg.connect(fresh_db_url, autocommit=True) as conn,
    ):
        cfg = parse_notifications(
            f"""
            [mqtt]
            enabled = false
            [[webhook]]
            name = "bad-request"
            url = "http://127.0.0.1:{server.server_port}/hook"
            secret = "{SECRET}"
            [[webhook]]
            name = "down"
            url = "{dead}"
            secret = "{SECRET}"
            """
        )
        notifier = Notifier(lambda: cfg, None)
        flood_alert(conn, uid)
        notifier.dispatch(conn, NOW)
        notifier.deliver(conn, NOW)
        assert deliveries(conn) == [
            ("webhook:bad-request", "failed", 1),
            ("webhook:down", "pending", 1),
        ]
        error = conn.execute(
            "SELECT last_error FROM notification_deliveries WHERE channel = 'webhook:down'"
        ).fetchone()
    assert error is not None
    assert "Connection refused" in str(error[0]) or "URLError" in str(error[0])


def test_filters_by_severity_event_and_area(fresh_db_url: str, uid: str) -> None:
    with webhook_server() as server, psycopg.connect(fresh_db_url, autocommit=True) as conn:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        cfg = parse_notifications(
            f"""
            [mqtt]
            enabled = false
            [[webhook]]
            name = "city-critical"
            url = "{url}"
            secret = "{SECRET}"
            min_severity = "critical"
            areas = ["tp-nam-dinh"]
            events = ["opened"]
            [[webhook]]
            name = "coast"
            url = "{url}"
            secret = "{SECRET}"
            areas = ["hai-hau"]
            """
        )
        notifier = Notifier(lambda: cfg, None)
        alert = flood_alert(conn, uid)  # critical, in a ward of the city
        alerts.acknowledge(conn, alert.id, "lan", at=NOW)  # not an 'opened' event
        notifier.dispatch(conn, NOW)
        assert [c for c, _, _ in deliveries(conn)] == ["webhook:city-critical"]


def test_muted_events_never_reach_the_outbox(fresh_db_url: str, uid: str) -> None:
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        alert = flood_alert(conn, uid)
        alerts.escalate(conn, alert.id, "warning", message="m", value=3.9, notify=False, at=NOW)
        alerts.comment(conn, alert.id, "lan", "theo dõi")
        events = conn.execute(
            "SELECT e.event FROM notification_outbox AS o JOIN alert_events AS e"
            " ON e.id = o.event_id ORDER BY e.id"
        ).fetchall()
    assert [e[0] for e in events] == ["opened", "commented"]


def test_mqtt_event_and_retained_state_cleared_on_resolve(
    stack: LocalStack, fresh_db_url: str, uid: str
) -> None:
    received: list[tuple[str, bytes, bool]] = []
    got = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        # Retained messages other tests left on the shared broker arrive at once: skip them.
        if not msg.retain:
            received.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
            got.set()

    watcher = mqtt_client(stack.mosquitto.url("admin"))
    watcher.on_message = on_message
    watcher.subscribe("dothi/v1/alerts/#", qos=1)
    publisher = MqttPublisher(stack.mosquitto.url("analytics"), f"t-notify-{uid}")
    publisher.start()
    try:
        assert publisher.wait_connected(20)
        time.sleep(0.2)  # let the broker record the watcher's subscription
        with psycopg.connect(fresh_db_url, autocommit=True) as conn:
            notifier = Notifier(NotifyConfig, publisher)
            alert = flood_alert(conn, uid)
            notifier.dispatch(conn, NOW)
            assert notifier.deliver(conn, NOW) == 1
            wait_for(lambda: len(received) >= 2, what="event and state messages")
            event_topic, event_body, _ = received[0]
            assert event_topic == "dothi/v1/alerts/critical/tp-nam-dinh-cua-bac"
            assert json.loads(event_body)["alert"]["id"] == alert.id
            state_topic = f"dothi/v1/alerts/state/{alert.id}"
            assert received[1][0] == state_topic
            assert json.loads(received[1][1])["state"] == "open"

            # A late subscriber finds the unresolved alert's state retained.
            late = retained(stack, state_topic)
            assert late is not None
            assert json.loads(late)["id"] == alert.id

            alerts.resolve(conn, alert.id, "lan", "nước đã rút", at=NOW)
            notifier.dispatch(conn, NOW)
            assert notifier.deliver(conn, NOW) == 1
            wait_for(lambda: len(received) >= 4, what="resolve messages")
            assert received[2][0] == "dothi/v1/alerts/critical/tp-nam-dinh-cua-bac"
            assert json.loads(received[2][1])["event"]["event"] == "resolved"
            assert received[3] == (state_topic, b"", False)
        assert retained(stack, state_topic) is None  # cleared: nothing retained any more
    finally:
        publisher.close()
        watcher.disconnect()
        watcher.loop_stop()


def retained(stack: LocalStack, topic: str) -> bytes | None:
    """The retained message of a topic, or None (waits briefly for it)."""
    got: list[bytes] = []
    client = mqtt_client(stack.mosquitto.url("admin"))
    client.on_message = lambda _c, _u, msg: got.append(bytes(msg.payload))
    try:
        client.subscribe(topic, qos=1)
        deadline = time.monotonic() + 1.5
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.disconnect()
        client.loop_stop()
    return got[0] if got else None


def test_sms_text_is_short_vietnamese() -> None:
    alert = {
        "id": 7,
        "kind": "river_alarm",
        "value": 4.35,
        "severity": "critical",
        "title": "Cảnh báo lũ: Trạm Nam Định",
        "device_id": "rv-1",
        "details": {"alarm_level": 3, "river": "sông Đào", "device_name": "Trạm Nam Định"},
    }
    event = {"event": "opened", "at": NOW.isoformat()}
    assert sms_text(event, alert) == "[Nam Định] CẢNH BÁO LŨ cấp III: sông Đào 4.35 m lúc 14:20"
    done = sms_text({"event": "resolved", "at": NOW.isoformat()}, alert)
    assert done == "[Nam Định] HẾT CẢNH BÁO: Cảnh báo lũ (Trạm Nam Định) lúc 14:20"
    air = {**alert, "kind": "aqi_category", "value": 215, "details": {"category_vi": "Rất xấu"}}
    assert sms_text(event, air) == "[Nam Định] KHÔNG KHÍ RẤT XẤU: rv-1 AQI 215 lúc 14:20"
    assert all(len(sms_text(event, a)) <= 160 for a in (alert, air))


def test_notifications_file_checks() -> None:
    shipped = load_notifications(ROOT / "deploy" / "notifications.toml")
    assert shipped.mqtt.enabled
    assert shipped.webhooks == ()  # the examples ship disabled
    with pytest.raises(NotifyConfigError, match="at least 16 characters"):
        parse_notifications('[[webhook]]\nname = "a"\nurl = "http://x.vn/h"\nsecret = "short"\n')
    with pytest.raises(NotifyConfigError, match="'url' must be an http"):
        parse_notifications(f'[[webhook]]\nname = "a"\nurl = "ftp://x"\nsecret = "{SECRET}"\n')
    with pytest.raises(NotifyConfigError, match=r"'DOTHI_NOPE' .* is not set"):
        parse_notifications(
            '[[webhook]]\nname = "a"\nurl = "http://x.vn/h"\nsecret_env = "DOTHI_NOPE"\n', env={}
        )
    with pytest.raises(NotifyConfigError, match="unknown key 'retries'"):
        parse_notifications(
            f'[[webhook]]\nname = "a"\nurl = "http://x.vn/h"\nsecret = "{SECRET}"\nretries = 3\n'
        )
    with pytest.raises(NotifyConfigError, match="line 2: not valid TOML"):
        parse_notifications("[mqtt]\nenabled = \n")
    env_secret = parse_notifications(
        '[[webhook]]\nname = "a"\nurl = "http://x.vn/h"\nsecret_env = "K"\n', env={"K": SECRET}
    )
    assert env_secret.webhooks[0].secret == SECRET


@pytest.mark.slow
def test_mqtt_notifications_wait_out_a_broker_restart(
    stack: LocalStack, fresh_db_url: str, uid: str
) -> None:
    publisher = MqttPublisher(stack.mosquitto.url("analytics"), f"t-restart-{uid}")
    publisher.start()
    try:
        assert publisher.wait_connected(20)
        with psycopg.connect(fresh_db_url, autocommit=True) as conn:
            notifier = Notifier(NotifyConfig, publisher)
            stack.mosquitto.stop()
            try:
                alert = flood_alert(conn, uid)
                notifier.dispatch(conn, NOW)
                assert notifier.deliver(conn, NOW) == 0  # broker down: kept for later
                assert deliveries(conn) == [("mqtt", "pending", 1)]
            finally:
                stack.mosquitto.start()
            assert publisher.wait_connected(60)
            assert notifier.deliver(conn, NOW + timedelta(seconds=1)) == 1
            assert deliveries(conn) == [("mqtt", "delivered", 2)]
        state = retained(stack, f"dothi/v1/alerts/state/{alert.id}")
        assert state is not None
        assert json.loads(state)["state"] == "open"
    finally:
        publisher.close()
