"""Helpers shared by tests that talk to the real broker and database."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from core.mqtturl import parse_mqtt_url
from core.settings import Settings, load_settings
from dothi.stack import LocalStack
from ingest.consumer import IngestWorker


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll until ``predicate`` holds; fail the test with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    msg = f"timed out after {timeout} s waiting for {what}"
    raise AssertionError(msg)


def count(url: str, sql: str, *params: object) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return int(row[0])


def ingest_settings(stack: LocalStack, db_url: str, uid: str, **overrides: Any) -> Settings:
    """Settings for an ingest worker of this test: own client id and share group."""
    values: dict[str, Any] = {
        "database_url": db_url,
        "mqtt_url": stack.mosquitto.url("ingest"),
        "ingest_client_id": f"t-{uid}",
        "ingest_share_group": f"g{uid}",
        "ingest_metrics_port": 0,
        "ingest_flush_ms": 50,
    }
    values.update(overrides)
    return load_settings(**values)


@contextlib.contextmanager
def running_worker(settings: Settings, slot: int = 0) -> Iterator[IngestWorker]:
    """An ingest worker consuming in a thread for the duration of the block."""
    worker = IngestWorker(
        settings, slot, db_url=settings.db_url(), mqtt_url=settings.broker_url("ingest")
    )
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            worker.run(stop)
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)

    thread = threading.Thread(target=target, name=f"ingest-{slot}", daemon=True)
    thread.start()
    try:
        assert worker.wait_connected(20), "ingest worker did not connect and subscribe"
        yield worker
    finally:
        stop.set()
        thread.join(30)
    if errors:
        raise errors[0]


def discard_session(stack: LocalStack, client_id: str) -> None:
    """Remove a persistent session (and its subscriptions) a test left on the shared broker."""
    client = mqtt_client(stack.mosquitto.url("ingest"), client_id=client_id, clean=True)
    client.disconnect()
    client.loop_stop()


def mqtt_client(
    url: str, client_id: str = "", *, clean: bool = True, inflight: int = 20
) -> mqtt.Client:
    """A connected paho client (v5) with its network loop running."""
    target = parse_mqtt_url(url)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    if target.username:
        client.username_pw_set(target.username, target.password)
    client.max_inflight_messages_set(inflight)
    connected = threading.Event()
    refused: list[str] = []

    def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
        if reason.is_failure:
            refused.append(str(reason))
        connected.set()

    client.on_connect = on_connect
    client.connect(target.host, target.port, clean_start=clean)
    client.loop_start()
    if not connected.wait(10) or refused:
        client.loop_stop()
        client.reinitialise()  # closes paho's internal socket pair now, not at garbage collection
        msg = f"MQTT connect to {target.redacted()} failed: {refused or 'timeout'}"
        raise ConnectionError(msg)
    return client


@contextlib.contextmanager
def publisher(url: str) -> Iterator[Callable[[str, bytes | str], None]]:
    """Yield ``publish(topic, payload)`` that waits for the broker's PUBACK (QoS 1)."""
    client = mqtt_client(url, inflight=1000)
    infos: list[mqtt.MQTTMessageInfo] = []

    def publish(topic: str, payload: bytes | str) -> None:
        infos.append(client.publish(topic, payload, qos=1))

    try:
        yield publish
        for info in infos:
            info.wait_for_publish(30)
    finally:
        client.disconnect()
        client.loop_stop()
