"""The ingest worker's MQTT session: a subscriber-only client built for throughput.

Why not paho here: draining a queued session on these machines, a paho subscriber that only
counts reached ~20k msg/s (MQTT 5) / ~30k (3.1.1) while the broker sat mostly idle; this loop
reaches the broker's own limit (~140k msg/s, docs/benchmarks.md). paho reads each packet with
several small ``recv`` calls and a ``select`` and dispatches one callback per message; here one
``recv`` of up to 256 KiB is split into every complete PUBLISH it holds and handed over as one
list, and PUBACKs leave as one write per committed batch. Everything else (simulators,
notifications, tests) keeps using paho.

Scope, deliberately small: CONNECT (MQTT 3.1.1 or 5, persistent session: clean start off, session
expiry, Receive Maximum), SUBSCRIBE, inbound PUBLISH at QoS 0/1, PUBACK, PINGREQ, DISCONNECT,
reconnect with back-off, TLS. It never publishes and subscribes with maximum QoS 1, so the broker
never sends it QoS 2.

All socket I/O happens on the session's own thread (an ``ssl.SSLSocket`` must not be read and
written from two threads at once); ``ack`` only queues the bytes and wakes that thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import ssl
import struct
import threading
import time
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    from core.mqtturl import MqttTarget

log = logging.getLogger(__name__)

RECV_BYTES = 256 * 1024
CONNECT_TIMEOUT_S = 10.0
RETRY_MIN_S = 1.0
RETRY_MAX_S = 30.0

_CONNACK_311 = {
    1: "Unacceptable protocol version",
    2: "Identifier rejected",
    3: "Server unavailable",
    4: "Bad user name or password",
    5: "Not authorized",
}
_REASONS_5 = {
    0x80: "Unspecified error",
    0x81: "Malformed packet",
    0x82: "Protocol error",
    0x83: "Implementation specific error",
    0x84: "Unsupported protocol version",
    0x85: "Client identifier not valid",
    0x86: "Bad user name or password",
    0x87: "Not authorized",
    0x88: "Server unavailable",
    0x89: "Server busy",
    0x8A: "Banned",
    0x8B: "Server shutting down",
    0x8C: "Bad authentication method",
    0x8D: "Keep alive timeout",
    0x8E: "Session taken over",
    0x8F: "Topic filter invalid",
    0x90: "Topic name invalid",
    0x93: "Receive maximum exceeded",
    0x94: "Topic alias invalid",
    0x95: "Packet too large",
    0x97: "Quota exceeded",
    0x98: "Administrative action",
    0x99: "Payload format invalid",
    0x9C: "Use another server",
    0x9D: "Server moved",
    0x9E: "Shared subscriptions not supported",
    0x9F: "Connection rate exceeded",
    0xA0: "Maximum connect time",
    0xA2: "Wildcard subscriptions not supported",
}
# Refusals after which retrying the same credentials is pointless.
FATAL_REFUSALS = frozenset({"Bad user name or password", "Not authorized", "Banned"})

_PUBACK = struct.Struct("!BBH")
_DISCONNECT = b"\xe0\x00"
_PINGREQ = b"\xc0\x00"


class ProtocolError(Exception):
    """The broker sent something this client cannot accept; the connection is dropped."""


class Message(NamedTuple):
    """One inbound PUBLISH. ``packet_id`` is 0 for QoS 0."""

    topic: str
    payload: bytes
    packet_id: int
    qos: int


class SessionHandler(Protocol):
    """What the session reports, always from its own thread."""

    def on_connected(self, generation: int, session_present: bool) -> None:
        """CONNACK accepted; ``generation`` counts connections (acks name the one they are for)."""

    def on_subscribed(self, refused: list[str]) -> None:
        """SUBACK received; ``refused`` lists the filters the broker did not grant."""

    def on_messages(self, generation: int, messages: list[Message]) -> None:
        """Every PUBLISH taken from one read, in arrival order."""

    def on_disconnected(self, reason: str) -> None:
        """The connection ended (not called for our own orderly stop)."""

    def on_unreachable(self, reason: str) -> None:
        """A connection attempt failed before CONNACK; the session retries with back-off."""

    def on_refused(self, reason: str, fatal: bool) -> None:
        """The broker refused CONNECT; when ``fatal`` the session stops retrying."""

    def on_failed(self, reason: str) -> None:
        """The session stopped on an error of its own (a bug): nothing more will arrive."""


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        digit, n = n % 128, n // 128
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(s: str) -> bytes:
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _varint(len(body)) + body


class SubscriberSession:
    """A persistent MQTT session that subscribes and receives, on its own thread.

    Args:
        target: broker host, port, credentials and whether to use TLS.
        client_id: stable id; the broker keeps the session (and its queue) under it.
        subscriptions: topic filters, each with its maximum QoS (0 or 1).
        handler: receives connection events and messages.
        mqtt5: MQTT 5 (with Session Expiry and Receive Maximum) or 3.1.1.
        session_expiry_s: MQTT 5 session expiry; 3.1.1 sessions last as the broker decides.
        receive_maximum: QoS 1 messages handed over and not yet acked, at most (plus one
            read's worth): announced to an MQTT 5 broker and enforced here for both versions by
            not reading the socket, since Mosquitto 2.0.11 over-sends to a resumed session.
        keepalive_s: keep-alive announced in CONNECT (a broker may impose its own in CONNACK).
    """

    def __init__(
        self,
        target: MqttTarget,
        client_id: str,
        subscriptions: Sequence[tuple[str, int]],
        handler: SessionHandler,
        *,
        mqtt5: bool = True,
        session_expiry_s: int = 0,
        receive_maximum: int = 65535,
        keepalive_s: int = 30,
    ) -> None:
        if any(q not in (0, 1) for _, q in subscriptions):
            raise ValueError("this session receives QoS 0 and 1 only")
        self.target = target
        self.client_id = client_id
        self.subscriptions = list(subscriptions)
        self.handler = handler
        self.mqtt5 = mqtt5
        self.session_expiry_s = session_expiry_s
        self.receive_maximum = max(1, min(receive_maximum, 65535))
        self.keepalive_s = keepalive_s
        self.generation = 0
        self._lock = threading.Lock()
        self._acks: list[bytes] = []
        self._unacked = 0  # QoS 1 messages handed over and not yet acked, this connection
        self._woken = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        self._need = 0  # bytes the buffer must hold before parsing again

    # --- caller's side ----------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"mqtt-{self.client_id}")
        self._thread.daemon = True
        self._thread.start()

    def ack(self, packet_ids: Sequence[int], generation: int) -> int:
        """Queue PUBACKs for messages of connection ``generation``; returns how many.

        Packet ids belong to one connection: after a reconnect the same id may name another
        message, so acks for an older connection are dropped (the broker redelivers those).
        """
        if not packet_ids:
            return 0
        data = [_PUBACK.pack(0x40, 2, pid) for pid in packet_ids]
        with self._lock:
            if generation != self.generation or self._sock is None:
                return 0
            self._acks.extend(data)
            self._unacked -= len(data)
            wake = not self._woken
            self._woken = True
        if wake:
            self._wake()
        return len(data)

    def stop(self, timeout: float = 10.0) -> None:
        """Send the queued acks and DISCONNECT (the session stays on the broker), then close."""
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("%s: the MQTT session thread did not stop in time", self.client_id)
                return
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _wake(self) -> None:
        # BlockingIOError: already signalled (pipe full); OSError: closing.
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    # --- the session's thread ---------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._connect_loop()
        except Exception as exc:  # a bug here or in a handler: say so, never hang silently
            log.exception("%s: the MQTT session stopped", self.client_id)
            self.handler.on_failed(f"{type(exc).__name__}: {exc}")

    def _connect_loop(self) -> None:
        delay = RETRY_MIN_S
        while not self._stop.is_set():
            try:
                sock = self._open()
            except OSError as exc:
                self.handler.on_unreachable(str(exc) or type(exc).__name__)
            except _RefusedError as exc:
                fatal = exc.reason in FATAL_REFUSALS
                self.handler.on_refused(exc.reason, fatal)
                if fatal:
                    return
            except ProtocolError as exc:
                self.handler.on_unreachable(f"protocol error during connect: {exc}")
            else:
                delay = RETRY_MIN_S
                reason = self._serve(sock)
                if reason is not None:
                    self.handler.on_disconnected(reason)
                    continue  # reconnect at once: the broker was there a moment ago
                return
            self._stop.wait(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    def _open(self) -> socket.socket:
        t = self.target
        raw = socket.create_connection((t.host, t.port), timeout=CONNECT_TIMEOUT_S)
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock: socket.socket = raw
            if t.tls:
                # The platform's trust store (SSL_CERT_FILE / system CAs); hostname checked.
                sock = ssl.create_default_context().wrap_socket(raw, server_hostname=t.host)
            sock.sendall(self._connect_packet())
            self._buf = bytearray()
            self._need = 0
            first, body = self._read_packet(sock)
        except BaseException:
            raw.close()
            raise
        if first >> 4 != 2 or len(body) < 2:  # CONNACK
            raw.close()
            raise ProtocolError(f"expected CONNACK, got packet type {first >> 4}")
        session_present, code = bool(body[0] & 1), body[1]
        if code:
            raw.close()
            table = _REASONS_5 if self.mqtt5 else _CONNACK_311
            raise _RefusedError(table.get(code, f"reason code {code:#x}"))
        if self.mqtt5:
            keepalive = _server_keepalive(body, 2)
            if keepalive is not None:
                self.keepalive_s = keepalive
        with self._lock:
            self.generation += 1
            self._acks = []
            self._unacked = 0  # the broker resends what the last connection left unacked
            self._sock = sock
            generation = self.generation
        self.handler.on_connected(generation, session_present)
        sock.sendall(self._subscribe_packet())
        return sock

    def _connect_packet(self) -> bytes:
        t = self.target
        flags = 0  # clean start / clean session off: resume the broker's session
        payload = _utf8(self.client_id)
        if t.username is not None:
            flags |= 0x80
            payload += _utf8(t.username)
            if t.password is not None:
                flags |= 0x40
                payload += _utf8(t.password)
        head = _utf8("MQTT") + bytes([5 if self.mqtt5 else 4, flags])
        head += struct.pack("!H", self.keepalive_s)
        if self.mqtt5:
            props = b"\x11" + struct.pack("!I", self.session_expiry_s)
            props += b"\x21" + struct.pack("!H", self.receive_maximum)
            head += _varint(len(props)) + props
        return _packet(0x10, head + payload)

    def _subscribe_packet(self) -> bytes:
        body = struct.pack("!H", 1) + (b"\x00" if self.mqtt5 else b"")
        for topic, qos in self.subscriptions:
            body += _utf8(topic) + bytes([qos])
        return _packet(0x82, body)

    def _read_packet(self, sock: socket.socket) -> tuple[int, bytes]:
        """Blocking read of one whole packet (only used before the receive loop)."""
        while True:
            parsed = _split_one(self._buf)
            if parsed is not None:
                first, body, used = parsed
                del self._buf[:used]
                return first, body
            data = sock.recv(RECV_BYTES)
            if not data:
                raise ConnectionError("the broker closed the connection")
            self._buf += data

    def _serve(self, sock: socket.socket) -> str | None:
        """Receive until the connection ends; None after our own orderly stop."""
        sock.settimeout(0.0)  # non-blocking: select() decides when to read
        tls = isinstance(sock, ssl.SSLSocket)
        keepalive = float(self.keepalive_s) if self.keepalive_s else None
        last_sent = last_heard = time.monotonic()
        reason: str | None
        try:
            self._dispatch()  # whatever arrived right behind the CONNACK
            while True:
                if self._stop.is_set():
                    self._flush(sock)
                    sock.sendall(_DISCONNECT)
                    reason = None
                    break
                # Not reading while Receive Maximum messages await their acks: Mosquitto
                # 2.0.11 over-sends to a resumed session (docs/benchmarks.md), and TCP
                # back-pressure is what keeps the backlog in the broker, not in our memory.
                with self._lock:
                    paused = self._unacked >= self.receive_maximum
                readable = not paused
                if paused or not (tls and sock.pending()):  # type: ignore[attr-defined]
                    timeout = keepalive / 4 if keepalive else None
                    fd = sock.fileno()
                    watch = [self._wake_r] if paused else [fd, self._wake_r]
                    ready, _, _ = select.select(watch, [], [], timeout)
                    readable = fd in ready
                    if self._wake_r in ready:
                        _drain(self._wake_r)
                if self._flush(sock):
                    last_sent = time.monotonic()
                if readable:
                    try:
                        data = sock.recv(RECV_BYTES)
                    except (BlockingIOError, ssl.SSLWantReadError):
                        data = None
                    if data == b"":
                        reason = "the broker closed the connection"
                        break
                    if data:
                        last_heard = time.monotonic()
                        self._buf += data
                        self._dispatch()
                if paused:
                    last_heard = time.monotonic()  # unread PINGRESPs wait in the socket
                if keepalive:
                    now = time.monotonic()
                    if now - last_heard > 1.5 * keepalive:
                        reason = "no packet from the broker within 1.5 × keep-alive"
                        break
                    if now - last_sent >= keepalive / 2:
                        self._send(sock, _PINGREQ)
                        last_sent = now
        except _DisconnectedError as exc:
            reason = str(exc)
        except (OSError, ProtocolError) as exc:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        finally:
            with self._lock:
                self._sock = None
                self._acks = []
            sock.close()
        return reason

    def _send(self, sock: socket.socket, data: bytes) -> None:
        """Write all of ``data`` on a non-blocking socket."""
        view = memoryview(data)
        while view:
            try:
                sent = sock.send(view)
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                select.select([], [sock], [], 1.0)
                continue
            view = view[sent:]

    def _flush(self, sock: socket.socket) -> bool:
        with self._lock:
            acks, self._acks = self._acks, []
            self._woken = False
        if acks:
            self._send(sock, b"".join(acks))
        return bool(acks)

    def _dispatch(self) -> None:
        """Hand every complete PUBLISH in the buffer to the handler; keep the partial tail."""
        if len(self._buf) < self._need:
            return  # a large packet still arriving: do not re-parse it for every chunk
        buf = bytes(self._buf)  # one copy; slices of bytes are then single copies
        messages: list[Message] = []
        append = messages.append
        pos, end, v5 = 0, len(buf), self.mqtt5
        need = 0
        while end - pos >= 2:  # smallest packet
            first = buf[pos]
            # Remaining length: 1–4 bytes of 7 bits.
            byte = buf[pos + 1]
            length, i = byte & 0x7F, pos + 2
            shift = 7
            while byte & 0x80:
                if i >= end:
                    length = -1
                    break
                if shift > 21:
                    raise ProtocolError("remaining length longer than 4 bytes")
                byte = buf[i]
                length |= (byte & 0x7F) << shift
                shift += 7
                i += 1
            if length < 0:
                break
            stop = i + length
            if stop > end:
                need = stop - pos
                break
            if first >> 4 == 3:  # PUBLISH
                qos = (first >> 1) & 3
                j = i + 2 + ((buf[i] << 8) | buf[i + 1]) if length >= 2 else stop + 1
                if j + (2 if qos else 0) > stop:
                    raise ProtocolError("PUBLISH shorter than its headers")
                raw_topic = buf[i + 2 : j]
                try:
                    topic = raw_topic.decode()
                except UnicodeDecodeError:
                    topic = raw_topic.decode("utf-8", "replace")
                packet_id = 0
                if qos:
                    if qos > 1:
                        raise ProtocolError("QoS 2 delivery on a subscription granted QoS ≤ 1")
                    packet_id = (buf[j] << 8) | buf[j + 1]
                    j += 2
                if v5:
                    plen, j = _varint_at(buf, j)
                    j += plen
                if j > stop:
                    raise ProtocolError("PUBLISH shorter than its headers")
                append(Message(topic, buf[j:stop], packet_id, qos))
            else:
                self._control(first >> 4, buf[i:stop])
            pos = stop
        del self._buf[:pos]
        self._need = need
        if messages:
            owed = sum(1 for m in messages if m.qos)
            with self._lock:
                self._unacked += owed
            self.handler.on_messages(self.generation, messages)

    def _control(self, kind: int, body: bytes) -> None:
        if kind == 9:  # SUBACK
            granted = body[2 + (_props_len(body, 2) if self.mqtt5 else 0) :]
            refused = [
                f"{topic} ({_REASONS_5.get(code, hex(code)) if self.mqtt5 else hex(code)})"
                for (topic, _), code in zip(self.subscriptions, granted, strict=False)
                if code >= 0x80
            ]
            self.handler.on_subscribed(refused)
        elif kind == 14:  # DISCONNECT from the broker, MQTT 5
            code = body[0] if body else 0
            why = _REASONS_5.get(code, hex(code))
            raise _DisconnectedError(f"the broker disconnected us: {why}")
        elif kind != 13:  # PINGRESP needs nothing
            raise ProtocolError(f"unexpected packet type {kind}")


class _RefusedError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _DisconnectedError(Exception):
    pass


def _varint_at(buf: bytes | bytearray, i: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if i >= len(buf):
            raise ProtocolError("truncated variable byte integer")
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            return value, i
        shift += 7
        if shift > 21:
            raise ProtocolError("variable byte integer longer than 4 bytes")


def _props_len(body: bytes, i: int) -> int:
    """Bytes taken by the MQTT 5 property block starting at ``i`` (length prefix included)."""
    plen, j = _varint_at(body, i)
    return j - i + plen


def _server_keepalive(body: bytes, i: int) -> int | None:
    """The Server Keep Alive property (0x13) of a CONNACK, if the broker set one."""
    if len(body) <= i:
        return None
    plen, j = _varint_at(body, i)
    end = j + plen
    sizes = {0x11: 4, 0x21: 2, 0x22: 2, 0x24: 1, 0x25: 1, 0x27: 4, 0x28: 1, 0x29: 1, 0x2A: 1}
    while j < end:
        pid = body[j]
        j += 1
        if pid == 0x13:
            return int.from_bytes(body[j : j + 2], "big")
        if pid in sizes:
            j += sizes[pid]
        elif pid == 0x26:  # user property: two strings
            for _ in range(2):
                j += 2 + int.from_bytes(body[j : j + 2], "big")
        else:  # strings and binary data: 2-byte length prefix
            j += 2 + int.from_bytes(body[j : j + 2], "big")
    return None


def _split_one(buf: bytearray) -> tuple[int, bytes, int] | None:
    if len(buf) < 2:
        return None
    try:
        length, i = _varint_at(buf, 1)
    except ProtocolError as exc:
        if "truncated" in str(exc):
            return None
        raise
    if i + length > len(buf):
        return None
    return buf[0], bytes(buf[i : i + length]), i + length


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass
