"""TLS listeners of the embedded broker: server-authenticated TLS with passwords, and mutual TLS
with client certificates whose CN is the device id (T13 of STYLE.md)."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from core.settings import load_settings
from dothi import devices
from dothi.stack import LocalStack, Mosquitto
from dothi.tls import LocalCA
from store import devices as registry
from tests.helpers import mqtt_client, wait_for

NOT_AUTHORIZED = 135


def connect(
    port: int,
    *,
    ca: Path | None = None,
    cert: tuple[Path, Path] | None = None,
    user: tuple[str, str] | None = None,
) -> str:
    """Try to connect; return 'ok' or the reason it failed."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    if ca is not None:
        c.tls_set(
            ca_certs=str(ca),
            certfile=str(cert[0]) if cert else None,
            keyfile=str(cert[1]) if cert else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    if user is not None:
        c.username_pw_set(*user)
    result: list[str] = []
    done = threading.Event()

    def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        result.append(str(reason))
        done.set()

    c.on_connect = on_connect
    c.connect("127.0.0.1", port, keepalive=10)
    c.loop_start()
    try:
        if not done.wait(5):
            return "refused: no CONNACK"
    finally:
        c.disconnect()
        c.loop_stop()
    return "ok" if result == ["Success"] else f"refused: {result[0]}"


class CertClient:
    """An MQTT 5 session on the mTLS listener that reports PUBACK reason codes."""

    def __init__(self, broker: Mosquitto, cert: tuple[Path, Path]) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.tls_set(
            ca_certs=str(broker.tls_dir / "ca.crt"),
            certfile=str(cert[0]),
            keyfile=str(cert[1]),
            cert_reqs=ssl.CERT_REQUIRED,
        )
        self.codes: dict[int, int] = {}
        self.done = threading.Condition()
        connected = threading.Event()
        self.client.on_connect = lambda *_a: connected.set()
        self.client.on_publish = lambda _c, _u, mid, reason, _p: self._record(mid, reason.value)
        self.client.connect("127.0.0.1", broker.mtls_port, keepalive=30)
        self.client.loop_start()
        assert connected.wait(20), "no CONNACK"

    def _record(self, mid: int, code: int) -> None:
        with self.done:
            self.codes[mid] = code
            self.done.notify_all()

    def publish(self, topic: str, payload: str) -> int:
        """QoS 1; the PUBACK reason code (16 = accepted, nobody subscribed)."""
        mid = self.client.publish(topic, payload, qos=1).mid
        with self.done:
            assert self.done.wait_for(lambda: mid in self.codes, 20), "no PUBACK"
            return self.codes[mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def handshake(port: int, ca: Path, cert: tuple[Path, Path] | None = None) -> str:
    """A bare TLS handshake (plus one read, where TLS 1.3 reports client-certificate errors)."""
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(b"\x10\x00")  # a truncated CONNECT: enough to make the server talk
            tls.recv(1)
    except (ssl.SSLError, OSError) as exc:
        return f"refused: {type(exc).__name__}"
    return "ok"


def test_tls_with_password(tls_broker: Mosquitto) -> None:
    ca = tls_broker.tls_dir / "ca.crt"
    pw = ("dothi-admin", tls_broker.role_password("admin"))
    assert connect(tls_broker.tls_port, ca=ca, user=pw) == "ok"
    assert connect(tls_broker.tls_port, ca=ca, user=("dothi-admin", "wrong")).startswith("refused")
    assert connect(tls_broker.tls_port, ca=ca).startswith("refused")  # anonymous


def test_plain_tcp_to_the_tls_port_is_refused(tls_broker: Mosquitto) -> None:
    pw = ("dothi-admin", tls_broker.role_password("admin"))
    assert connect(tls_broker.tls_port, user=pw) == "refused: no CONNACK"


def test_untrusted_server_certificate_is_refused(tls_broker: Mosquitto, tmp_path: Path) -> None:
    other_ca = LocalCA(tmp_path / "other").ensure()
    assert handshake(tls_broker.tls_port, other_ca.cert) == "refused: SSLCertVerificationError"


def test_mutual_tls_with_a_device_certificate(
    tls_broker: Mosquitto, stack: LocalStack, fresh_db_url: str, uid: str, tmp_path: Path
) -> None:
    settings = load_settings(
        home=tls_broker.root, mqtt_port=tls_broker.port, database_url=fresh_db_url
    )
    issued = devices.add(settings, registry.Device(f"tls-{uid}"), cert_dir=tmp_path)
    assert issued.cert is not None
    assert issued.key is not None
    assert issued.ca is not None
    ca = tls_broker.tls_dir / "ca.crt"
    assert connect(tls_broker.mtls_port, ca=ca, cert=(issued.cert, issued.key)) == "ok"
    # No client certificate, or one from another CA: refused at the TLS handshake.
    assert handshake(tls_broker.mtls_port, ca).startswith("refused")
    stranger = LocalCA(tmp_path / "stranger").ensure().issue("intruder", tmp_path / "s")
    assert handshake(tls_broker.mtls_port, ca, stranger).startswith("refused")
    assert handshake(tls_broker.mtls_port, ca, (issued.cert, issued.key)) == "ok"
    del stack


def test_revoked_certificate_device_is_denied_every_topic(
    tls_broker: Mosquitto, fresh_db_url: str, uid: str, tmp_path: Path
) -> None:
    # No password check covers a client-certificate connection: revocation rests on the ACL's
    # deny, which Mosquitto applies to connected clients at reload and checks before grants.
    settings = load_settings(
        home=tls_broker.root, mqtt_port=tls_broker.port, database_url=fresh_db_url
    )
    issued = devices.add(settings, registry.Device(f"rvc-{uid}"), cert_dir=tmp_path / "1")
    assert issued.cert is not None
    assert issued.key is not None
    topic = f"dothi/v1/devices/{issued.device_id}/up"
    watcher = mqtt_client(tls_broker.url("admin"))
    seen: list[str] = []
    watcher.on_message = lambda _c, _u, m: seen.append(m.payload.decode())
    watcher.subscribe(topic, qos=1)
    device = CertClient(tls_broker, (issued.cert, issued.key))
    try:
        wait_for(lambda: device.publish(topic, "before") == 0, what="the watcher's subscription")
        assert devices.revoke(settings, issued.device_id)
        assert device.publish(topic, "after") == NOT_AUTHORIZED
    finally:
        device.close()
    # It can still complete the TLS handshake and connect (no CRL), but do nothing.
    device = CertClient(tls_broker, (issued.cert, issued.key))
    try:
        assert device.publish(topic, "reconnected") == NOT_AUTHORIZED
    finally:
        device.close()
    # Added again (a new certificate): the deny is lifted.
    again = devices.add(settings, registry.Device(f"rvc-{uid}"), cert_dir=tmp_path / "2")
    assert again.cert is not None
    assert again.key is not None
    device = CertClient(tls_broker, (again.cert, again.key))
    try:
        assert device.publish(topic, "added again") == 0
    finally:
        device.close()
    try:
        wait_for(lambda: "added again" in seen, what="the reading after re-adding")
    finally:
        watcher.disconnect()
        watcher.loop_stop()
    assert seen == ["before", "added again"]
