"""Device provisioning: registry row plus MQTT credentials on the embedded broker.

Each device's MQTT username is its id; the broker's ACL patterns (see ``Mosquitto.acl_base``) let
a device publish only under ``dothi/v1/devices/<its id>/up`` and ``tele/<its id>/…``, so device A
can never publish as device B. On the TLS listeners its client id is its username too, so it
cannot take over another device's connection either.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg

from dothi.stack import Mosquitto, delete_password, set_password
from store import devices as registry

if TYPE_CHECKING:
    from pathlib import Path

    from core.settings import Settings

RESERVED_PREFIX = "dothi-"


@dataclass(frozen=True, slots=True)
class Issued:
    device_id: str
    username: str | None
    password: str | None  # shown once; None when the broker is external
    cert: Path | None = None  # client certificate for the mTLS listener
    key: Path | None = None
    ca: Path | None = None


def _broker(settings: Settings) -> Mosquitto:
    return Mosquitto(settings.home.resolve(), settings.mqtt_port)


def add(
    settings: Settings,
    device: registry.Device,
    *,
    credentials: bool = True,
    cert_dir: Path | None = None,
) -> Issued:
    """Register (or update) a device and, on the embedded broker, issue its credentials.

    Args:
        settings: platform settings.
        device: the registry entry.
        credentials: issue an MQTT password (embedded broker only).
        cert_dir: also issue a client certificate whose CN is the device id into this folder.
    """
    if device.id.startswith(RESERVED_PREFIX):
        raise registry.DeviceError(f"device ids starting with {RESERVED_PREFIX!r} are reserved")
    with psycopg.connect(settings.db_url()) as conn:
        registry.upsert(conn, [device])
    if not credentials or not settings.embedded_broker:
        return Issued(device.id, None, None)
    broker = _broker(settings)
    password = secrets.token_urlsafe(18)
    broker.passwd_file.parent.mkdir(parents=True, exist_ok=True)
    set_password(broker.passwd_file, device.id, password)
    broker.set_revoked(device.id, revoked=False)  # re-adding a revoked device lifts its deny
    broker.write_acl()  # also hands the files back to the broker's user when run as root
    broker.reload()
    if cert_dir is None:
        return Issued(device.id, device.id, password)
    ca = broker.ensure_tls()
    cert, key = ca.issue(device.id, cert_dir)
    return Issued(device.id, device.id, password, cert, key, ca.cert)


def revoke(settings: Settings, device_id: str) -> bool:
    """Cut a device off the embedded broker (its registry row and data stay).

    Its password is removed and the ACL denies its username every topic; the broker reloads
    both before this returns. A device connected with its password is disconnected by the
    reload and refused when it reconnects; one connected with a client certificate (which no
    password check covers) stays connected, but what it publishes is refused and nothing is
    delivered to it. The deny lasts until ``add`` issues the device a new credential.

    Returns:
        False when the broker is external (revoke the credential there).

    Raises:
        registry.DeviceError: the id is not a device id.
    """
    if device_id.startswith(RESERVED_PREFIX) or not registry.DEVICE_ID.match(device_id):
        raise registry.DeviceError(f"{device_id!r} is not a device id")
    if not settings.embedded_broker:
        return False
    broker = _broker(settings)
    delete_password(broker.passwd_file, device_id)
    broker.set_revoked(device_id, revoked=True)
    broker.write_acl()
    broker.reload()
    return True
