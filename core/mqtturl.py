"""MQTT connection targets from ``mqtt://`` / ``mqtts://`` URLs."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class MqttTarget:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool

    def redacted(self) -> str:
        """The URL without the password, for logs and messages."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_mqtt_url(url: str) -> MqttTarget:
    """Parse ``mqtt[s]://[user[:password]@]host[:port]``.

    Raises:
        ConfigError: for another scheme, no host, or a bad port.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ConfigError(f"MQTT URL must start with mqtt:// or mqtts:// (got {parts.scheme!r})")
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"MQTT URL has a bad port: {exc}") from None
    if not parts.hostname:
        raise ConfigError("MQTT URL has no host")
    tls = parts.scheme == "mqtts"
    return MqttTarget(
        host=parts.hostname,
        port=port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )
