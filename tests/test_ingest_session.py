"""ingest/session.py, the ingest worker's own MQTT session, against the real broker.

The ingest tests exercise it through IngestWorker; these pin the session's own promises:
persistent sessions in both MQTT versions, redelivery of what was not acknowledged, acks of an
older connection never sent, large packets split across reads, refusals, and a parser that
only ever raises ProtocolError on bytes the broker should never send.
"""

from __future__ import annotations

import struct
import threading
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.mqtturl import MqttTarget, parse_mqtt_url
from dothi.stack import Mosquitto
from ingest.session import Message, ProtocolError, SubscriberSession
from tests.helpers import discard_session, publisher, wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator

    from dothi.stack import LocalStack


class Recorder:
    """A SessionHandler that keeps everything, and acks when told to."""

    def __init__(self) -> None:
        self.messages: list[tuple[int, Message]] = []
        self.connects: list[tuple[int, bool]] = []
        self.subscribed = threading.Event()
        self.refusals: list[tuple[str, bool]] = []
        self.disconnects: list[str] = []
        self.unreachable: list[str] = []
        self.lock = threading.Lock()
        self.refused: list[str] = []
        self.failures: list[str] = []

    def on_connected(self, generation: int, session_present: bool) -> None:
        self.connects.append((generation, session_present))

    def on_subscribed(self, refused: list[str]) -> None:
        self.refused = refused
        self.subscribed.set()

    def on_messages(self, generation: int, messages: list[Message]) -> None:
        with self.lock:
            self.messages.extend((generation, m) for m in messages)

    def on_disconnected(self, reason: str) -> None:
        self.disconnects.append(reason)
        self.subscribed.clear()

    def on_unreachable(self, reason: str) -> None:
        self.unreachable.append(reason)

    def on_refused(self, reason: str, fatal: bool) -> None:
        self.refusals.append((reason, fatal))

    def on_failed(self, reason: str) -> None:
        self.failures.append(reason)

    def payloads(self) -> list[bytes]:
        with self.lock:
            return [m.payload for _, m in self.messages]


@pytest.fixture(params=[True, False], ids=["mqtt5", "mqtt311"])
def mqtt5(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def make_session(
    stack: LocalStack, cid: str, topic: str, handler: Recorder, *, mqtt5: bool = True
) -> SubscriberSession:
    return SubscriberSession(
        parse_mqtt_url(stack.mosquitto.url("ingest")),
        cid,
        [(f"$share/g-{cid}/{topic}", 1)],
        handler,
        mqtt5=mqtt5,
        session_expiry_s=600,
        receive_maximum=100,
    )


@pytest.fixture
def cid(uid: str, stack: LocalStack) -> Iterator[str]:
    client_id = f"sess-{uid}"
    yield client_id
    discard_session(stack, client_id)


def test_receives_acks_and_resumes_its_session(
    stack: LocalStack, cid: str, uid: str, mqtt5: bool
) -> None:
    topic = f"dothi/v1/devices/s{uid}/up"
    first = Recorder()
    session = make_session(stack, cid, topic, first, mqtt5=mqtt5)
    session.start()
    assert first.subscribed.wait(20)
    with publisher(stack.mosquitto.url("admin")) as publish:
        for i in range(5):
            publish(topic, f"a{i}")
    wait_for(lambda: len(first.payloads()) == 5, what="five messages")
    assert first.payloads() == [b"a0", b"a1", b"a2", b"a3", b"a4"]
    generation = first.connects[-1][0]
    # Ack the first three only; the other two must come back on the next connection.
    ids = [m.packet_id for _, m in first.messages]
    assert all(m.qos == 1 for _, m in first.messages)
    assert session.ack(ids[:3], generation) == 3
    session.stop()

    # Published while no session is connected: the broker queues them for this client id.
    with publisher(stack.mosquitto.url("admin")) as publish:
        publish(topic, "b0")
        publish(topic, "b1")
    second = Recorder()
    again = make_session(stack, cid, topic, second, mqtt5=mqtt5)
    again.start()
    try:
        wait_for(lambda: len(second.payloads()) >= 4, what="redelivery and queued messages")
        assert second.connects[0][1] is True  # session present
        assert sorted(second.payloads()) == [b"a3", b"a4", b"b0", b"b1"]
        # Acks naming an older connection are dropped, not sent.
        assert again.ack([1, 2], generation + 100) == 0
    finally:
        again.stop()


def test_unacked_messages_stay_bounded_on_a_resumed_session(
    stack: LocalStack, cid: str, uid: str
) -> None:
    # Mosquitto 2.0.11 ignores Receive Maximum for a resumed session's backlog once acks
    # arrive late and in batches (as ingest sends them after each commit): it sent 43,000 of
    # 50,000 queued messages against a Receive Maximum of 4,000. The session must hold the
    # line itself by not reading, so the backlog stays in the broker.
    topic = f"dothi/v1/devices/q{uid}/up"
    first = Recorder()
    session = make_session(stack, cid, topic, first)
    session.start()
    assert first.subscribed.wait(20)
    session.stop()
    total = 20_000
    with publisher(stack.mosquitto.url("admin")) as publish:
        for i in range(total):
            publish(topic, f"{i:08d}")

    class Batcher(Recorder):
        """Acks in batches of 50, from another thread, a little later: like the writer."""

        def __init__(self) -> None:
            super().__init__()
            self.acked = 0
            self.peak = 0
            self.pending: list[int] = []
            self.gen = 0

        def on_messages(self, generation: int, messages: list[Message]) -> None:
            super().on_messages(generation, messages)
            with self.lock:
                self.gen = generation
                self.pending += [m.packet_id for m in messages]
                self.peak = max(self.peak, len(self.messages) - self.acked)

    rec = Batcher()
    resumed = make_session(stack, cid, topic, rec)  # receive_maximum=100
    done = threading.Event()

    def acker() -> None:
        while not done.wait(0.01):
            with rec.lock:
                chunk, rec.pending = rec.pending[:50], rec.pending[50:]
                gen = rec.gen
            if chunk:
                rec.acked += resumed.ack(chunk, gen)

    thread = threading.Thread(target=acker)
    thread.start()
    resumed.start()
    try:
        wait_for(lambda: rec.acked >= total, 120, "the backlog drained")
    finally:
        done.set()
        thread.join()
        resumed.stop()
    # 100 unacked at most, plus what one read (≤ 256 KiB) can hold of these small packets
    # (2 fixed header + 2 + topic + 2 packet id + 1 properties + 8 payload bytes) and the
    # partial packet left from the read before; without the session's own bound the broker
    # sent most of the backlog at once. The acker counts a chunk only after the session has
    # taken it, so this test's view can lag the session's by one chunk (50).
    packet = 2 + 2 + len(topic) + 2 + 1 + 8
    assert rec.peak <= 100 + 256 * 1024 // packet + 1 + 50, rec.peak
    assert len(rec.messages) == total  # nothing lost or repeated on the way


def test_a_payload_larger_than_many_reads_arrives_whole(
    stack: LocalStack, cid: str, uid: str
) -> None:
    topic = f"dothi/v1/devices/big{uid}/up"
    rec = Recorder()
    session = make_session(stack, cid, topic, rec)
    session.start()
    big = bytes(range(256)) * 8192  # 2 MiB: several 256 KiB reads
    try:
        assert rec.subscribed.wait(20)
        with publisher(stack.mosquitto.url("admin")) as publish:
            publish(topic, "small-before")
            publish(topic, big)
            publish(topic, "small-after")
        wait_for(lambda: len(rec.payloads()) == 3, what="three messages")
        assert rec.payloads() == [b"small-before", big, b"small-after"]
    finally:
        session.stop()


def test_a_broker_restart_reconnects_and_resumes(stack: LocalStack, cid: str, uid: str) -> None:
    topic = f"dothi/v1/devices/r{uid}/up"
    rec = Recorder()
    session = make_session(stack, cid, topic, rec)
    session.start()
    try:
        assert rec.subscribed.wait(20)
        stack.mosquitto.stop()
        stack.mosquitto.start()
        wait_for(lambda: len(rec.connects) >= 2 and rec.subscribed.is_set(), 60, "reconnect")
        assert rec.disconnects  # the loss was reported
        assert rec.connects[-1][0] == rec.connects[0][0] + 1  # a new generation
        with publisher(stack.mosquitto.url("admin")) as publish:
            publish(topic, "after-restart")
        wait_for(lambda: rec.payloads() == [b"after-restart"], what="delivery after restart")
    finally:
        session.stop()


def test_wrong_credentials_are_refused_once_and_fatally(stack: LocalStack, cid: str) -> None:
    rec = Recorder()
    target = parse_mqtt_url(stack.mosquitto.url("ingest"))
    bad = type(target)(target.host, target.port, target.username, "wrong", tls=False)
    session = SubscriberSession(bad, cid, [("dothi/#", 1)], rec, mqtt5=True)
    session.start()
    wait_for(lambda: bool(rec.refusals), what="refusal")
    session.stop()
    # Mosquitto answers a wrong password with "Not authorized"; either way it is final.
    assert len(rec.refusals) == 1
    reason, fatal = rec.refusals[0]
    assert reason in {"Not authorized", "Bad user name or password"}
    assert fatal
    assert rec.connects == []


def test_an_unreachable_broker_is_reported_and_retried(cid: str) -> None:
    rec = Recorder()
    target = parse_mqtt_url("mqtt://u:p@127.0.0.1:1")  # nothing listens on port 1
    session = SubscriberSession(target, cid, [("dothi/#", 1)], rec)
    session.start()
    wait_for(lambda: bool(rec.unreachable), what="unreachable report")
    session.stop()
    assert rec.connects == []


def test_qos_above_one_is_refused_at_construction() -> None:
    target = parse_mqtt_url("mqtt://127.0.0.1:1883")
    with pytest.raises(ValueError, match="QoS 0 and 1"):
        SubscriberSession(target, "x", [("a", 2)], Recorder())


# --- the parser, without a broker -----------------------------------------------------------
def _publish_packet(topic: bytes, payload: bytes, pid: int, *, v5: bool) -> bytes:
    body = struct.pack("!H", len(topic)) + topic + struct.pack("!H", pid)
    if v5:
        body += b"\x00"  # no properties
    body += payload
    n, length = len(body), b""
    while True:
        digit, n = n % 128, n // 128
        length += bytes([digit | (0x80 if n else 0)])
        if not n:
            break
    return bytes([0x32]) + length + body


def _parse(chunks: list[bytes], *, v5: bool) -> list[Message]:
    rec = Recorder()
    session = SubscriberSession(
        parse_mqtt_url("mqtt://127.0.0.1:1883"), "p", [("a", 1)], rec, mqtt5=v5
    )
    for chunk in chunks:
        session._buf += chunk
        session._dispatch()
    return [m for _, m in rec.messages]


@given(
    st.lists(st.tuples(st.binary(min_size=1, max_size=40), st.binary(max_size=300)), max_size=20),
    st.lists(st.integers(min_value=1, max_value=400), max_size=30),
    st.booleans(),
)
def test_any_split_of_the_stream_yields_the_same_messages(
    msgs: list[tuple[bytes, bytes]], cuts: list[int], v5: bool
) -> None:
    stream = b"".join(_publish_packet(t, p, i + 1, v5=v5) for i, (t, p) in enumerate(msgs))
    chunks, pos = [], 0
    for c in cuts:
        chunks.append(stream[pos : pos + c])
        pos += c
    chunks.append(stream[pos:])
    got = _parse(chunks, v5=v5)
    assert [(m.payload, m.packet_id) for m in got] == [(p, i + 1) for i, (_, p) in enumerate(msgs)]
    assert [m.topic for m in got] == [t.decode("utf-8", "replace") for t, _ in msgs]


@given(st.binary(max_size=200), st.booleans())
def test_garbage_raises_only_protocol_error(data: bytes, v5: bool) -> None:
    # ProtocolError (the connection is dropped and re-made) or, for a DISCONNECT packet, the
    # session's own disconnect signal; never IndexError or anything else.
    try:
        _parse([data], v5=v5)
    except ProtocolError:
        pass
    except Exception as exc:
        assert type(exc).__name__ == "_DisconnectedError", repr(exc)  # noqa: PT017


def tls_target(broker: Mosquitto) -> MqttTarget:
    password = broker.role_password("ingest")
    return parse_mqtt_url(f"mqtts://dothi-ingest:{password}@localhost:{broker.tls_port}")


def test_tls_with_the_platform_trust_store(
    tls_broker: Mosquitto, monkeypatch: pytest.MonkeyPatch, uid: str
) -> None:
    # Trusted through SSL_CERT_FILE, how an operator points dothi's services at a private CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_broker.tls_dir / "ca.crt"))
    topic = f"dothi/v1/devices/tls{uid}/up"
    rec = Recorder()
    session = SubscriberSession(
        tls_target(tls_broker), f"tls-{uid}", [(f"$share/g/{topic}", 1)], rec, session_expiry_s=60
    )
    session.start()
    try:
        assert rec.subscribed.wait(20), (rec.unreachable, rec.refusals)
        with publisher(tls_broker.url("admin")) as publish:
            publish(topic, "over-tls")
        wait_for(lambda: rec.payloads() == [b"over-tls"], what="delivery over TLS")
        generation = rec.connects[-1][0]
        assert session.ack([m.packet_id for _, m in rec.messages], generation) == 1
    finally:
        session.stop()


def test_tls_to_an_untrusted_broker_is_reported_not_connected(
    tls_broker: Mosquitto, monkeypatch: pytest.MonkeyPatch, uid: str
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)  # system CAs only
    rec = Recorder()
    session = SubscriberSession(tls_target(tls_broker), f"tls-{uid}", [("dothi/#", 1)], rec)
    session.start()
    wait_for(lambda: bool(rec.unreachable), what="certificate failure report")
    session.stop()
    assert rec.connects == []
    assert "CERTIFICATE_VERIFY_FAILED" in rec.unreachable[0]


def test_a_failing_handler_is_reported_not_a_silent_hang(
    stack: LocalStack, cid: str, uid: str
) -> None:
    topic = f"dothi/v1/devices/f{uid}/up"

    class Broken(Recorder):
        def on_messages(self, generation: int, messages: list[Message]) -> None:
            del generation, messages
            raise RuntimeError("handler bug")

    rec = Broken()
    session = make_session(stack, cid, topic, rec)
    session.start()
    try:
        assert rec.subscribed.wait(20)
        with publisher(stack.mosquitto.url("admin")) as publish:
            publish(topic, "x")
        wait_for(lambda: bool(rec.failures), what="failure report")
        assert rec.failures == ["RuntimeError: handler bug"]
    finally:
        session.stop()
