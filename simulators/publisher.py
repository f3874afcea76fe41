"""MQTT publishing with bounded queues, reconnects and one-line errors.

paho-mqtt 2.x, QoS 1 by default. :meth:`Publisher.publish` blocks while too many messages are
unacknowledged: a paho publisher that queues more than 65,535 QoS 1 messages silently loses the
overflow (packet ids wrap and collide in its queue, ENVIRONMENT.md), so the cap stays well below
that. paho reconnects by itself after a broker loss and resends what was not acknowledged.
"""

from __future__ import annotations

import logging
import os
import secrets
import ssl
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Self
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from core.errors import DothiError

if TYPE_CHECKING:
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger(__name__)

# Packet ids are 16-bit; stay far below 65,535 outstanding (ENVIRONMENT.md).
MAX_OUTSTANDING_LIMIT: Final = 60_000
# CONNACK codes meaning "who are you?": v3.1.1 4/5, v5 0x86/0x87.
_NOT_AUTHORISED: Final = frozenset({4, 5, 0x86, 0x87})


# paho's in-flight window until the broker's CONNACK says otherwise (Mosquitto advertises its
# max_inflight_messages; dothi's embedded broker uses 1,000).
DEFAULT_WINDOW = 1000


class PublishError(DothiError):
    """The broker cannot be used; the message is one line for the user (no password in it)."""


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker is and how to log in."""

    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool

    @property
    def shown(self) -> str:
        """The URL without the password."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_url(url: str) -> BrokerAddress:
    """Read ``mqtt[s]://[user[:password]@]host[:port]``.

    Raises:
        PublishError: not an MQTT URL.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise PublishError(f"not an MQTT URL (mqtt://[user:password@]host:port): {url!r}")
    try:
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    except ValueError:
        raise PublishError(f"bad port in MQTT URL for host {parts.hostname}") from None
    return BrokerAddress(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=parts.scheme == "mqtts",
    )


class Publisher:
    """A connected MQTT publisher.

    Args:
        url: ``mqtt[s]://user:password@host:port``.
        qos: 0 or 1.
        max_outstanding: most messages sent but not yet acknowledged (QoS 1) or written (QoS 0).
        protocol: ``"5"`` or ``"3.1.1"``.
        client_id: MQTT client id (default: ``dothi-sim-<pid>-<random>``).
        stop: when set, blocked calls return early.
        connect_timeout: seconds to wait for the broker's CONNACK.
    """

    def __init__(
        self,
        url: str,
        *,
        qos: int = 1,
        max_outstanding: int = 10_000,
        protocol: str = "5",
        client_id: str | None = None,
        stop: threading.Event | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        if qos not in (0, 1):
            raise PublishError(f"QoS must be 0 or 1, got {qos}")
        if not 1 <= max_outstanding <= MAX_OUTSTANDING_LIMIT:
            raise PublishError(
                f"max outstanding messages must be within 1…{MAX_OUTSTANDING_LIMIT} "
                "(paho loses messages past 65,535 queued)"
            )
        self.address = parse_url(url)
        self.qos = qos
        self.max_outstanding = max_outstanding
        self.stop = stop or threading.Event()
        self.connect_timeout = connect_timeout
        self.sent = 0
        self.completed = 0  # acknowledged (QoS 1) or written (QoS 0)
        self.rejected = 0  # PUBACKs with a failure reason (MQTT 5)
        self.dropped = 0  # QoS 0 messages that met a closed connection
        self.reconnects = 0
        self._cond = threading.Condition()
        self._connected = threading.Event()
        self._answered = threading.Event()
        self._refusal: str | None = None
        self._closing = False
        self._ever_connected = False
        v5 = protocol == "5"
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"dothi-sim-{os.getpid()}-{secrets.token_hex(3)}",
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        )
        if self.address.username:
            self._client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls:
            self._client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        # Our own cap bounds the queue. paho's in-flight window (default 20) would only slow us
        # down, but it must stay within the broker's Receive Maximum, which paho does not apply
        # by itself: start at a common broker window and narrow it at CONNACK if needed.
        self._client.max_inflight_messages_set(DEFAULT_WINDOW)
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(1, 30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish

    # -- callbacks (paho's network thread) ---------------------------------------------------
    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            code = int(reason.value)
            self._refusal = (
                "not authorised"
                if code in _NOT_AUTHORISED
                else str(reason.getName() if hasattr(reason, "getName") else reason).lower()
            )
            if self._ever_connected:
                log.error("broker refused the reconnection: %s", self._refusal)
            self._answered.set()
            return
        receive_max = getattr(properties, "ReceiveMaximum", None) if properties else None
        if isinstance(receive_max, int) and 0 < receive_max < client.max_inflight_messages:
            # paho's setter refuses on an open connection; the attribute is read at each send,
            # so narrowing it here only holds further messages back in paho's queue.
            client._max_inflight_messages = receive_max  # noqa: SLF001
        if self._ever_connected:
            self.reconnects += 1
            log.info("reconnected to %s", self.address.shown)
        self._ever_connected = True
        self._refusal = None
        self._connected.set()
        self._answered.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self._connected.clear()
        if not self._closing and self._ever_connected:
            log.warning("lost the connection to %s (%s); reconnecting", self.address.shown, reason)

    def _on_publish(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _mid: int,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        with self._cond:
            self.completed += 1
            if reason.is_failure:
                self.rejected += 1
                if self.rejected <= 3:
                    log.warning("broker rejected a message: %s", reason)
            self._cond.notify_all()

    # -- API ---------------------------------------------------------------------------------
    @property
    def outstanding(self) -> int:
        """Messages handed to paho and not yet acknowledged."""
        return self.sent - self.completed

    def connect(self) -> Self:
        """Connect and wait for the broker to accept us.

        Raises:
            PublishError: unreachable broker, refused credentials, or no answer in time.
        """
        shown = self.address.shown
        try:
            self._client.connect(self.address.host, self.address.port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            self._shutdown()
            raise PublishError(f"cannot reach the MQTT broker at {shown}: {reason}") from None
        self._client.loop_start()
        if not self._answered.wait(self.connect_timeout):
            self._shutdown()
            raise PublishError(
                f"no answer from the MQTT broker at {shown} within {self.connect_timeout:g} s"
            )
        if self._refusal is not None:
            refusal = self._refusal
            self._shutdown()
            raise PublishError(f"broker refused the connection: {refusal}")
        log.info("connected to %s", shown)
        return self

    def publish(self, topic: str, payload: bytes) -> bool:
        """Queue one message, waiting while too many are unacknowledged.

        Returns:
            False when stopped before the message could be queued.
        """
        with self._cond:
            while self.sent - self.completed >= self.max_outstanding:
                if self.stop.is_set():
                    return False
                self._cond.wait(0.2)
            self.sent += 1
        # Not under our lock: paho calls on_publish from its own locks.
        info = self._client.publish(topic, payload, qos=self.qos)
        if self.qos == 0 and info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
            with self._cond:
                self.dropped += 1
                self.completed += 1
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every message is acknowledged; False on timeout or stop."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self.completed < self.sent:
                left = None if deadline is None else deadline - time.monotonic()
                if (left is not None and left <= 0) or (self.stop.is_set() and deadline is None):
                    return False
                self._cond.wait(0.2 if left is None else min(left, 0.2))
        return True

    def _shutdown(self) -> None:
        self._closing = True
        self._client.disconnect()
        self._client.loop_stop()
        # paho keeps an internal socket pair until garbage collection; close it now (the
        # client is not used again), or a ResourceWarning may surface at some later GC.
        self._client.reinitialise()

    def close(self, timeout: float = 10.0) -> None:
        """Wait (up to ``timeout``) for outstanding acknowledgements, then disconnect."""
        if not self.flush(timeout):
            log.warning(
                "closing with %d message(s) not acknowledged by the broker", self.outstanding
            )
        self._shutdown()

    def __enter__(self) -> Self:
        return self.connect()

    def __exit__(self, *_: object) -> None:
        self.close()
