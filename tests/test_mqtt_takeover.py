"""Client-id takeover (T14 of STYLE.md): on the device-facing TLS listeners a client's id is its
username (for mTLS the certificate's CN), so a device with valid credentials that claims another
device's client id gets its own id instead of disconnecting the other device. The local plain
listener keeps client ids as sent: the platform's services share usernames across client ids."""

from __future__ import annotations

import json
import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from core.settings import Settings, load_settings
from dothi import devices
from dothi.stack import LocalStack, Mosquitto
from store import devices as registry
from tests.helpers import count, ingest_settings, mqtt_client, running_worker, wait_for

NOT_AUTHORIZED = 135


@pytest.fixture(scope="module")
def broker(tls_broker: Mosquitto) -> Mosquitto:
    return tls_broker


@dataclass
class Conn:
    """A connected MQTT 5 client and what happened to it (disconnects, PUBACK reason codes)."""

    client: mqtt.Client
    disconnects: list[str] = field(default_factory=list)
    acks: dict[int, int] = field(default_factory=dict)
    acked: threading.Condition = field(default_factory=threading.Condition)

    def publish(self, topic: str, payload: str) -> int:
        """Publish at QoS 1; the PUBACK reason code."""
        info = self.client.publish(topic, payload, qos=1)
        with self.acked:
            assert self.acked.wait_for(lambda: info.mid in self.acks, 20), "no PUBACK"
            return self.acks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connect(
    broker: Mosquitto,
    port: int,
    client_id: str,
    *,
    user: tuple[str, str | None] | None = None,
    cert: tuple[Path, Path] | None = None,
) -> Conn:
    """Connect over TLS (or plain TCP on the broker's local port) and start the network loop."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    if port != broker.port:
        client.tls_set(
            ca_certs=str(broker.tls_dir / "ca.crt"),
            certfile=str(cert[0]) if cert else None,
            keyfile=str(cert[1]) if cert else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    if user is not None:
        client.username_pw_set(*user)
    conn = Conn(client)
    connected = threading.Event()
    result: list[str] = []

    def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        result.append(str(reason))
        connected.set()

    def on_disconnect(
        _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object
    ) -> None:
        conn.disconnects.append(str(reason))

    def on_publish(_c: mqtt.Client, _u: object, mid: int, reason: ReasonCode, _p: object) -> None:
        with conn.acked:
            conn.acks[mid] = reason.value
            conn.acked.notify_all()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_publish = on_publish
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    assert connected.wait(20), "no CONNACK"
    assert result[0] == "Success", result
    return conn


def reading(i: int) -> str:
    ts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1) + timedelta(seconds=i)
    return json.dumps({"ts": ts.isoformat(), "readings": {"pm25": 10 + i}})


def settings_for(broker: Mosquitto, db_url: str) -> Settings:
    return load_settings(home=broker.root, mqtt_port=broker.port, database_url=db_url)


def rows_of(db_url: str, device_id: str) -> int:
    return count(db_url, "SELECT count(*) FROM readings WHERE device_id = %s", device_id)


def test_a_device_cannot_take_over_another_devices_client_id(
    broker: Mosquitto, stack: LocalStack, fresh_db_url: str, uid: str, tmp_path: Path
) -> None:
    settings = settings_for(broker, fresh_db_url)
    a = devices.add(settings, registry.Device(f"ta-{uid}"))
    b = devices.add(settings, registry.Device(f"tb-{uid}"))
    c = devices.add(settings, registry.Device(f"tc-{uid}"), cert_dir=tmp_path)
    assert c.cert is not None
    assert c.key is not None
    ingest = ingest_settings(stack, fresh_db_url, uid, mqtt_url=broker.url("ingest"))
    up_a, up_b, up_c = (f"dothi/v1/devices/{d.device_id}/up" for d in (a, b, c))
    with running_worker(ingest):
        dev_a = connect(broker, broker.tls_port, a.device_id, user=(a.device_id, a.password))
        try:
            assert dev_a.publish(up_a, reading(0)) == 0
            # B (password, TLS) and C (certificate, mTLS) both claim A's client id.
            dev_b = connect(broker, broker.tls_port, a.device_id, user=(b.device_id, b.password))
            dev_c = connect(broker, broker.mtls_port, a.device_id, cert=(c.cert, c.key))
            try:
                # A was not disconnected: it goes on publishing on its first connection.
                assert [dev_a.publish(up_a, reading(i)) for i in (1, 2)] == [0, 0]
                assert dev_a.disconnects == []
                # B and C act only as themselves: their own topic is theirs, A's is not.
                assert dev_b.publish(up_b, reading(0)) == 0
                assert dev_b.publish(up_a, reading(3)) == NOT_AUTHORIZED
                assert dev_c.publish(up_c, reading(0)) == 0
                assert dev_c.publish(up_a, reading(4)) == NOT_AUTHORIZED
                assert dev_a.publish(up_a, reading(5)) == 0
                assert (dev_a.disconnects, dev_b.disconnects, dev_c.disconnects) == ([], [], [])
            finally:
                dev_b.close()
                dev_c.close()
        finally:
            dev_a.close()
        wait_for(
            lambda: (
                (rows_of(fresh_db_url, b.device_id), rows_of(fresh_db_url, c.device_id)) == (1, 1)
            ),
            what="B's and C's readings",
        )
        wait_for(lambda: rows_of(fresh_db_url, a.device_id) == 4, what="A's four readings")
    # Drop the worker's persistent session on this module's broker.
    session = mqtt_client(broker.url("ingest"), client_id=ingest.ingest_client_id + "-0")
    session.disconnect()
    session.loop_stop()
    assert count(fresh_db_url, "SELECT count(*) FROM readings") == 6  # nothing else got in


def test_local_listener_keeps_client_ids_of_services_sharing_a_username(
    broker: Mosquitto, uid: str
) -> None:
    # Ingest slots share the username dothi-ingest with an id each; forcing client id =
    # username here would have each slot disconnect the other.
    admin = ("dothi-admin", broker.role_password("admin"))
    one = connect(broker, broker.port, f"svc-{uid}-0", user=admin)
    two = connect(broker, broker.port, f"svc-{uid}-1", user=admin)
    try:
        assert one.publish(f"dothi/v1/alerts/{uid}", "x") in {0, 16}  # 16: no subscribers
        assert two.publish(f"dothi/v1/alerts/{uid}", "y") in {0, 16}
        assert (one.disconnects, two.disconnects) == ([], [])
    finally:
        one.close()
        two.close()
    # The local listener is for the platform's own services and is not device-facing: there a
    # client id is taken as sent, so a reused id still replaces the older connection.
    first = connect(broker, broker.port, f"svc-{uid}-2", user=admin)
    second = connect(broker, broker.port, f"svc-{uid}-2", user=admin)
    try:
        wait_for(lambda: first.disconnects != [], what="the older connection to be replaced")
    finally:
        first.close()
        second.close()
