"""Device credentials and ACLs on the real embedded broker."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode

from core.settings import Settings, load_settings
from dothi import devices
from dothi.stack import LocalStack
from store import devices as registry
from tests.helpers import (
    count,
    discard_session,
    ingest_settings,
    mqtt_client,
    running_worker,
    wait_for,
)


def device_settings(stack: LocalStack, db_url: str) -> Settings:
    return load_settings(
        home=stack.mosquitto.root, mqtt_port=stack.mosquitto.port, database_url=db_url
    )


def device_url(stack: LocalStack, user: str, password: str) -> str:
    return f"mqtt://{user}:{password}@127.0.0.1:{stack.mosquitto.port}"


def publish_v5(client: mqtt.Client, topic: str, payload: str) -> int:
    """Publish at QoS 1 and return the PUBACK reason code value."""
    codes: list[int] = []
    done = threading.Event()

    def on_publish(_c: mqtt.Client, _u: object, _mid: int, reason: ReasonCode, _p: object) -> None:
        codes.append(reason.value)
        done.set()

    client.on_publish = on_publish
    client.publish(topic, payload, qos=1)
    assert done.wait(10)
    return codes[0]


def test_device_publishes_only_as_itself(stack: LocalStack, fresh_db_url: str, uid: str) -> None:
    settings = device_settings(stack, fresh_db_url)
    a = devices.add(settings, registry.Device(f"dev-a-{uid}", kind="air_quality", area_id="vu-ban"))
    b = devices.add(settings, registry.Device(f"dev-b-{uid}", kind="air_quality"))
    assert a.password
    assert b.password
    ingest = ingest_settings(stack, fresh_db_url, uid)
    payload = json.dumps({"ts": datetime.now(UTC).isoformat(), "readings": {"pm25": 7}})
    with running_worker(ingest):
        client = mqtt_client(device_url(stack, a.device_id, a.password))
        try:
            own = publish_v5(client, f"dothi/v1/devices/{a.device_id}/up", payload)
            spoof = publish_v5(client, f"dothi/v1/devices/{b.device_id}/up", payload)
        finally:
            client.disconnect()
            client.loop_stop()
        wait_for(lambda: count(fresh_db_url, "SELECT count(*) FROM readings") >= 1)
    discard_session(stack, ingest.ingest_client_id + "-0")
    assert own == 0
    assert spoof == 135  # MQTT v5 "Not authorized"
    assert (
        count(fresh_db_url, "SELECT count(*) FROM readings WHERE device_id = %s", b.device_id) == 0
    )
    assert (
        count(fresh_db_url, "SELECT count(*) FROM readings WHERE device_id = %s", a.device_id) == 1
    )


def test_wrong_password_and_anonymous_are_refused(
    stack: LocalStack, fresh_db_url: str, uid: str
) -> None:
    settings = device_settings(stack, fresh_db_url)
    dev = devices.add(settings, registry.Device(f"pw-{uid}"))
    with pytest.raises(ConnectionError, match=r"Not authorized|Bad user name"):
        mqtt_client(device_url(stack, dev.device_id, "wrong-password"))
    with pytest.raises(ConnectionError, match=r"Not authorized|Bad user name"):
        mqtt_client(f"mqtt://127.0.0.1:{stack.mosquitto.port}")


def test_revoked_device_cannot_reconnect(stack: LocalStack, fresh_db_url: str, uid: str) -> None:
    settings = device_settings(stack, fresh_db_url)
    dev = devices.add(settings, registry.Device(f"rv-{uid}"))
    assert dev.password
    client = mqtt_client(device_url(stack, dev.device_id, dev.password))
    client.disconnect()
    client.loop_stop()
    assert devices.revoke(settings, dev.device_id)

    def refused() -> bool:
        try:
            c = mqtt_client(device_url(stack, dev.device_id, dev.password or ""))
        except ConnectionError:
            return True
        c.disconnect()
        c.loop_stop()
        return False

    wait_for(refused, what="the broker to reload and refuse the revoked device")


def test_device_ids_are_checked(stack: LocalStack, fresh_db_url: str) -> None:
    settings = device_settings(stack, fresh_db_url)
    with pytest.raises(registry.DeviceError, match="reserved"):
        devices.add(settings, registry.Device("dothi-admin"))
    with pytest.raises(registry.DeviceError, match="must be 1-64 characters"):
        devices.add(settings, registry.Device("a/b"))
    with pytest.raises(registry.DeviceError, match="unknown area"):
        devices.add(settings, registry.Device("ok-id", area_id="atlantis"))
    with pytest.raises(registry.DeviceError, match="kind"):
        devices.add(settings, registry.Device("ok-id", kind="toaster"))
