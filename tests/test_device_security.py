"""Device credentials and ACLs on the real embedded broker."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

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


def test_revoking_a_connected_device_cuts_it_off_until_it_is_added_again(
    stack: LocalStack, fresh_db_url: str, uid: str
) -> None:
    settings = device_settings(stack, fresh_db_url)
    dev = devices.add(settings, registry.Device(f"cut-{uid}"))
    other = devices.add(settings, registry.Device(f"keep-{uid}"))
    assert dev.password
    assert other.password
    topic = f"dothi/v1/devices/{dev.device_id}/up"
    ingest = ingest_settings(stack, fresh_db_url, uid)

    def reading(i: int) -> str:
        ts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1) + timedelta(seconds=i)
        return json.dumps({"ts": ts.isoformat(), "readings": {"pm25": i}})

    def stored(device_id: str) -> int:
        return count(fresh_db_url, "SELECT count(*) FROM readings WHERE device_id = %s", device_id)

    with running_worker(ingest):
        client = mqtt_client(device_url(stack, dev.device_id, dev.password))
        events: list[str] = []
        client.on_disconnect = lambda *_a: events.append("disconnected")
        client.on_connect = lambda _c, _u, _f, reason, _p: events.append(f"connect: {reason}")
        acks: dict[int, int] = {}
        try:
            assert [publish_v5(client, topic, reading(i)) for i in (1, 2)] == [0, 0]
            wait_for(lambda: stored(dev.device_id) == 2, what="the readings sent before")
            client.on_publish = lambda _c, _u, mid, reason, _p: acks.update({mid: reason.value})

            assert devices.revoke(settings, dev.device_id)  # what `dothi devices revoke` runs
            # The broker has reloaded when revoke returns: the device was disconnected, and
            # what it publishes now is never accepted (no PUBACK), nor is its reconnection.
            late = [client.publish(topic, reading(i), qos=1).mid for i in (3, 4)]
            wait_for(lambda: "disconnected" in events, what="the broker to disconnect it")
            wait_for(
                lambda: "connect: Not authorized" in events,
                what="its own client's reconnection to be refused",
            )
            assert [acks[m] for m in late if m in acks] == []
        finally:
            client.disconnect()
            client.loop_stop()
        with pytest.raises(ConnectionError, match="Not authorized"):
            mqtt_client(device_url(stack, dev.device_id, dev.password))
        # Another device is unaffected; once its reading is stored, ingest has seen everything
        # the broker accepted before it, and nothing of the revoked device's came after.
        keep = mqtt_client(device_url(stack, other.device_id, other.password))
        try:
            assert publish_v5(keep, f"dothi/v1/devices/{other.device_id}/up", reading(5)) == 0
        finally:
            keep.disconnect()
            keep.loop_stop()
        wait_for(lambda: stored(other.device_id) == 1, what="the other device's reading")
        assert stored(dev.device_id) == 2

        # Adding the device again issues a new password and lifts the deny.
        again = devices.add(settings, registry.Device(f"cut-{uid}"))
        assert again.password
        assert again.password != dev.password
        back = mqtt_client(device_url(stack, dev.device_id, again.password))
        try:
            assert publish_v5(back, topic, reading(6)) == 0
        finally:
            back.disconnect()
            back.loop_stop()
        wait_for(lambda: stored(dev.device_id) == 3, what="its reading after being added again")
    discard_session(stack, ingest.ingest_client_id + "-0")
    assert dev.device_id not in stack.mosquitto.acl_file.read_text(encoding="utf-8")


def test_revoke_refuses_what_is_not_a_device_id(stack: LocalStack, fresh_db_url: str) -> None:
    settings = device_settings(stack, fresh_db_url)
    for bad in ("dothi-ingest", "a b", "x\ntopic readwrite #"):
        with pytest.raises(registry.DeviceError, match="not a device id"):
            devices.revoke(settings, bad)
    assert "dothi-ingest\ntopic deny" not in stack.mosquitto.acl_file.read_text(encoding="utf-8")


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
