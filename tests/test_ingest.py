"""Ingest end to end: real Mosquitto → IngestWorker → real TimescaleDB."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import partial

import psycopg
import pytest

from dothi.stack import LocalStack
from ingest import consumer
from tests.helpers import (
    count,
    discard_session,
    ingest_settings,
    publisher,
    running_worker,
    wait_for,
)

NOW = datetime.now(UTC).replace(microsecond=0)


def native(ts: datetime, **readings: object) -> str:
    return json.dumps({"ts": ts.isoformat(), "readings": readings})


def readings_of(url: str, device: str) -> dict[str, float]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT metric, value FROM readings WHERE device_id = %s", (device,)
        ).fetchall()
    return {r[0]: r[1] for r in rows}


def test_each_format_is_stored(stack: LocalStack, fresh_db_url: str, uid: str) -> None:
    settings = ingest_settings(stack, fresh_db_url, uid)
    dev = f"aq-{uid}"
    senml_dev = f"sm-{uid}"
    eui = f"a8404187{uid}"
    ts_epoch = NOW.timestamp()
    senml = [
        {"bn": f"urn:dev:mac:{uid}:", "bt": ts_epoch, "n": "pm25", "u": "ug/m3", "v": 38.2},
        {"n": "temp", "u": "Cel", "v": 24.6},
        {"n": "hum", "u": "%RH", "v": 82.1},
        {"n": "laeq", "u": "dB", "v": 67.4},
    ]
    chirpstack = {
        "time": NOW.isoformat().replace("+00:00", ".775023242+00:00"),
        "deviceInfo": {"devEui": eui, "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97"},
        "fCnt": 57,
        "object": {"pm25": 12.5, "pm10": 20, "temperature": 24.6, "humidity": 82.1},
    }
    local = (NOW + timedelta(hours=7)).replace(tzinfo=None).isoformat()
    tasmota = {
        "Time": local,
        "ENERGY": {"Total": 14.834, "Power": 120, "Voltage": 230, "Current": 0.52, "Factor": 0.9},
    }
    with running_worker(settings), publisher(stack.mosquitto.url("admin")) as pub:
        pub(f"dothi/v1/devices/{dev}/up", native(NOW, pm25=38.2, no2=40.1))
        pub(f"dothi/v1/devices/{senml_dev}/up", json.dumps(senml))
        pub(
            f"application/17c82e96-be03-4f38-aef3-f83d48582d97/device/{eui}/event/up",
            json.dumps(chirpstack),
        )
        pub(f"tele/plug-{uid}/SENSOR", json.dumps(tasmota))
        wait_for(lambda: count(fresh_db_url, "SELECT count(*) FROM readings") == 15, what="rows")
    discard_session(stack, settings.ingest_client_id + "-0")
    assert readings_of(fresh_db_url, dev) == {"pm25": 38.2, "no2": 40.1}
    assert readings_of(fresh_db_url, senml_dev) == {
        "pm25": 38.2,
        "temperature": 24.6,
        "humidity": 82.1,
        "noise_laeq": 67.4,
    }
    assert readings_of(fresh_db_url, eui) == {
        "pm25": 12.5,
        "pm10": 20.0,
        "temperature": 24.6,
        "humidity": 82.1,
    }
    assert readings_of(fresh_db_url, f"plug-{uid}") == {
        "energy": 14.834,
        "power": 120.0,
        "voltage": 230.0,
        "current": 0.52,
        "power_factor": 0.9,
    }
    with psycopg.connect(fresh_db_url) as conn:
        ts = conn.execute(
            "SELECT DISTINCT ts FROM readings WHERE device_id = %s", (f"plug-{uid}",)
        ).fetchall()
        devices = conn.execute(
            "SELECT count(*) FROM devices WHERE last_seen IS NOT NULL"
        ).fetchone()
    assert ts == [(NOW,)]  # Tasmota local time (UTC+7, no offset) stored as the right instant
    assert devices == (4,)  # auto-registered, last_seen set
    assert count(fresh_db_url, "SELECT count(*) FROM dead_letters") == 0


BAD_INPUTS = [
    ("malformed_json", b'{"readings": {"pm25": 1'),
    ("invalid_utf8", b'{"readings": {"pm25": 1}, "x": "\xff\xfe"}'),
    ("malformed_json", b'{"readings": {"pm25": NaN}}'),
    ("unknown_metric", b'{"readings": {"radon": 5}}'),
    ("unknown_unit", b'{"readings": {"pm25": {"value": 5, "unit": "furlong"}}}'),
    ("out_of_range", b'{"readings": {"humidity": 180}}'),
    ("wrong_shape", b'{"readings": {"pm25": "high"}}'),
    ("no_readings", b'{"readings": {}}'),
]


def test_bad_input_lands_in_dead_letters_and_the_stream_goes_on(
    stack: LocalStack, fresh_db_url: str, uid: str
) -> None:
    settings = ingest_settings(stack, fresh_db_url, uid, ingest_max_payload_bytes=4096)
    topic = f"dothi/v1/devices/bad-{uid}/up"
    future = NOW + timedelta(hours=2)
    with running_worker(settings), publisher(stack.mosquitto.url("admin")) as pub:
        for _, payload in BAD_INPUTS:
            pub(topic, payload)
        pub(topic, native(future, pm25=10))
        pub(topic, b"x" * 5000)
        pub(f"dothi/v1/devices/good-{uid}/up", native(NOW, pm25=11))
        wait_for(
            lambda: (
                count(fresh_db_url, "SELECT count(*) FROM dead_letters") == len(BAD_INPUTS) + 2
                and count(fresh_db_url, "SELECT count(*) FROM readings") == 1
            ),
            what="dead letters and the good reading",
        )
    discard_session(stack, settings.ingest_client_id + "-0")
    with psycopg.connect(fresh_db_url) as conn:
        rows = conn.execute(
            "SELECT reason, detail, payload, topic FROM dead_letters ORDER BY id"
        ).fetchall()
    reasons = [r[0] for r in rows]
    assert reasons == [r for r, _ in BAD_INPUTS] + ["future_timestamp", "oversize"]
    assert [bytes(r[2]) for r in rows[: len(BAD_INPUTS)]] == [p for _, p in BAD_INPUTS]
    assert all(r[3] == topic for r in rows)
    details = {r[0]: r[1] for r in rows}
    assert "radon" in details["unknown_metric"]
    assert "furlong" in details["unknown_unit"]
    assert "humidity" in details["out_of_range"]
    assert "5000 bytes" in details["oversize"]
    assert readings_of(fresh_db_url, f"good-{uid}") == {"pm25": 11.0}


def test_partly_bad_message_stores_the_good_part_and_keeps_the_rest(
    stack: LocalStack, fresh_db_url: str, uid: str
) -> None:
    settings = ingest_settings(stack, fresh_db_url, uid)
    dev = f"mix-{uid}"
    with running_worker(settings), publisher(stack.mosquitto.url("admin")) as pub:
        pub(f"dothi/v1/devices/{dev}/up", native(NOW, pm25=20, pm10=2500, radon=1))
        wait_for(lambda: count(fresh_db_url, "SELECT count(*) FROM dead_letters") == 1)
    discard_session(stack, settings.ingest_client_id + "-0")
    assert readings_of(fresh_db_url, dev) == {"pm25": 20.0}
    with psycopg.connect(fresh_db_url) as conn:
        detail = conn.execute("SELECT detail FROM dead_letters").fetchone()
    assert detail is not None
    assert "pm10" in detail[0]
    assert "radon" in detail[0]
    assert "1 other readings of this message were stored" in detail[0]


def test_suspect_values_are_stored_with_a_quality_flag(
    stack: LocalStack, fresh_db_url: str, uid: str
) -> None:
    settings = ingest_settings(stack, fresh_db_url, uid)
    dev = f"q-{uid}"
    with running_worker(settings), publisher(stack.mosquitto.url("admin")) as pub:
        pub(f"dothi/v1/devices/{dev}/up", native(NOW, pm25=700, temperature=25))
        wait_for(lambda: count(fresh_db_url, "SELECT count(*) FROM readings") == 2)
    discard_session(stack, settings.ingest_client_id + "-0")
    with psycopg.connect(fresh_db_url) as conn:
        rows: dict[str, int] = dict(conn.execute("SELECT metric, quality FROM readings").fetchall())
    assert rows == {"pm25": 3, "temperature": 1}  # QARTOD 3 = suspect


def test_redelivered_and_repeated_messages_are_stored_once(
    stack: LocalStack, fresh_db_url: str, uid: str
) -> None:
    settings = ingest_settings(stack, fresh_db_url, uid)
    dev = f"dup-{uid}"
    payloads = [native(NOW - timedelta(minutes=i), pm25=i) for i in range(50)]
    with running_worker(settings) as worker, publisher(stack.mosquitto.url("admin")) as pub:
        for p in payloads + payloads[::-1] + payloads:
            pub(f"dothi/v1/devices/{dev}/up", p)
        wait_for(
            lambda: count(fresh_db_url, "SELECT count(*) FROM readings") == 50,
            what="50 unique readings",
        )
        # Let the duplicates arrive too before looking for extra rows.
        wait_for(lambda: worker.stats.acked == 150, what="all 150 messages processed")
    discard_session(stack, settings.ingest_client_id + "-0")
    assert count(fresh_db_url, "SELECT count(*) FROM readings") == 50


@pytest.mark.parametrize("mode", ["register", "reject"])
def test_unknown_devices_registered_or_rejected(
    stack: LocalStack, fresh_db_url: str, uid: str, mode: str
) -> None:
    settings = ingest_settings(stack, fresh_db_url, uid, ingest_unknown_devices=mode)
    known = f"known-{uid}"
    stranger = f"stranger-{uid}"
    with psycopg.connect(fresh_db_url) as conn:
        conn.execute("INSERT INTO devices (id, kind) VALUES (%s, 'air_quality')", (known,))
    with running_worker(settings), publisher(stack.mosquitto.url("admin")) as pub:
        pub(f"dothi/v1/devices/{known}/up", native(NOW, pm25=1))
        pub(f"dothi/v1/devices/{stranger}/up", native(NOW, pm25=2))
        wait_for(
            lambda: (
                count(fresh_db_url, "SELECT count(*) FROM readings")
                + count(fresh_db_url, "SELECT count(*) FROM dead_letters")
                == 2
            )
        )
    discard_session(stack, settings.ingest_client_id + "-0")
    stored = count(fresh_db_url, "SELECT count(*) FROM readings WHERE device_id = %s", stranger)
    registered = count(fresh_db_url, "SELECT count(*) FROM devices WHERE id = %s", stranger)
    if mode == "register":
        assert (stored, registered) == (1, 1)
    else:
        assert (stored, registered) == (0, 0)
        assert (
            count(fresh_db_url, "SELECT count(*) FROM dead_letters WHERE reason = 'unknown_device'")
            == 1
        )
    assert readings_of(fresh_db_url, known) == {"pm25": 1.0}


def test_latest_values_follow_ingest(stack: LocalStack, fresh_db_url: str, uid: str) -> None:
    settings = ingest_settings(stack, fresh_db_url, uid)
    dev = f"lt-{uid}"
    with running_worker(settings), publisher(stack.mosquitto.url("admin")) as pub:
        pub(f"dothi/v1/devices/{dev}/up", native(NOW, pm25=30))
        pub(f"dothi/v1/devices/{dev}/up", native(NOW - timedelta(minutes=5), pm25=99))  # late
        wait_for(lambda: count(fresh_db_url, "SELECT count(*) FROM readings") == 2)
    discard_session(stack, settings.ingest_client_id + "-0")
    with psycopg.connect(fresh_db_url) as conn:
        row = conn.execute(
            "SELECT ts, value FROM latest WHERE device_id = %s AND metric = 'pm25'", (dev,)
        ).fetchone()
    assert row == (NOW, 30.0)  # the late reading did not overwrite the newer one


def test_an_idle_worker_wakes_for_a_single_message(
    stack: LocalStack, fresh_db_url: str, uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker's idle wait is only there to notice a stop; a message must wake it at once,
    # not when the wait runs out. With the wait made far longer than wait_for's patience, a
    # worker that waited it out would fail here (it did: messages sat for up to 250 ms).
    monkeypatch.setattr(consumer, "IDLE_POLL_S", 30.0)
    settings = ingest_settings(stack, fresh_db_url, uid, ingest_batch_size=1000)
    dev = f"iw-{uid}"
    topic = f"dothi/v1/devices/{dev}/up"
    with running_worker(settings) as worker, publisher(stack.mosquitto.url("admin")) as pub:
        for i in range(3):  # one at a time, each after the worker has gone idle again
            pub(topic, native(NOW - timedelta(seconds=i), pm25=i))
            wait_for(partial(acked, worker, i + 1), 10, f"message {i} acked")
        # The usual poll again, and a message to end the long wait: the stop is noticed soon.
        monkeypatch.setattr(consumer, "IDLE_POLL_S", 0.25)
        pub(topic, native(NOW - timedelta(seconds=3), pm25=3))
        wait_for(partial(acked, worker, 4), what="the last message acked")
    assert count(fresh_db_url, "SELECT count(*) FROM readings") == 4
    discard_session(stack, settings.ingest_client_id + "-0")


def acked(worker: consumer.IngestWorker, n: int) -> bool:
    return worker.stats.acked == n


def test_timer_flush_when_the_batch_is_larger_than_the_inflight_window(
    stack: LocalStack, fresh_db_url: str, uid: str
) -> None:
    # The broker sends at most 20 unacked messages; a batch of 1000 would never fill.
    settings = ingest_settings(
        stack, fresh_db_url, uid, ingest_batch_size=1000, ingest_receive_maximum=20
    )
    dev = f"tf-{uid}"
    with running_worker(settings) as worker, publisher(stack.mosquitto.url("admin")) as pub:
        for i in range(200):
            pub(f"dothi/v1/devices/{dev}/up", native(NOW - timedelta(seconds=i), pm25=i))
        wait_for(lambda: count(fresh_db_url, "SELECT count(*) FROM readings") == 200)
        wait_for(lambda: worker.stats.acked == 200, what="every message acked")
    discard_session(stack, settings.ingest_client_id + "-0")
