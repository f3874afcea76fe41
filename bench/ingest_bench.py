"""Ingest throughput and latency: dothi against the limits and a peer, measured in one run.

Modes (QoS 1; every run reconciled: what was sent = what is stored, no duplicates):
- drain: messages are queued in the consumers' persistent sessions first, then each consumer
  starts alone and the time to take them all is measured (no generator competing for the cores);
- live: a generator publishes at a fixed rate while ingest runs; latency publish → stored.

Limit probes in the same run: a bare paho subscriber that only counts (drain), and a bare binary
COPY of the same rows into the hypertable. Peer: ``mosquitto_sub`` (the C client) piped into
``psql`` COPY, then one INSERT … SELECT to parse the JSON — the fastest thing an operator would
script, with no delivery guarantee and no validation.

    python bench/ingest_bench.py                # default sizes (a few minutes)
    python bench/ingest_bench.py --messages 50000 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    bench_home,
    median,
    percentile,
    proc_cpu_seconds,
    proc_rss_mb,
    remove,
    write_section,
)
from core.mqtturl import parse_mqtt_url
from core.settings import load_settings
from dothi.stack import LocalStack, free_port
from ingest.consumer import IngestWorker
from ingest.session import Message, SubscriberSession
from store import areas, migrate

TOPIC = "dothi/v1/devices/{}/up"
MAX_OUTSTANDING = 20_000  # ENVIRONMENT.md: paho loses messages past 65,535 queued QoS 1
T0 = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass
class Result:
    name: str
    messages: int
    readings: int
    seconds: float
    cpu_s: float = float("nan")
    rss_mb: float = float("nan")
    note: str = ""

    @property
    def msg_rate(self) -> float:
        return self.messages / self.seconds

    @property
    def reading_rate(self) -> float:
        return self.readings / self.seconds


def client(url: str, client_id: str = "", *, persistent: bool = False) -> mqtt.Client:
    t = parse_mqtt_url(url)
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
        manual_ack=False,
    )
    c.username_pw_set(t.username, t.password)
    c.max_inflight_messages_set(1000)
    props = None
    if persistent:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        props.ReceiveMaximum = 5000
    c.connect(t.host, t.port, clean_start=not persistent, properties=props)
    return c


# --- payloads ------------------------------------------------------------------------------
def single(i: int, devices: int) -> tuple[str, bytes]:
    ts = (T0 + timedelta(milliseconds=i)).isoformat()
    body = json.dumps({"ts": ts, "readings": {"pm25": round(10 + (i % 400) / 10, 1)}})
    return TOPIC.format(f"b{i % devices:05d}"), body.encode()


def packed(i: int, devices: int, per_message: int = 50) -> tuple[str, bytes]:
    base = (T0 + timedelta(seconds=i)).timestamp()
    records: list[dict[str, object]] = [
        {"bn": f"urn:dev:bench:{i % devices}:", "bt": base, "n": "pm25", "u": "ug/m3", "v": 1.0}
    ]
    records += [
        {"n": "pm25", "t": k * 0.001, "v": round(1 + k / 10, 1)} for k in range(1, per_message)
    ]
    return TOPIC.format(f"p{i % devices:05d}"), json.dumps(records).encode()


def publish(
    url: str, n: int, make: object, *, rate: float | None = None
) -> tuple[float, list[float]]:
    """Publish n messages at QoS 1 with bounded outstanding acks; return (seconds, send times)."""
    assert callable(make)
    c = client(url)
    outstanding = threading.Semaphore(MAX_OUTSTANDING)
    done = threading.Event()
    acked = [0]

    def on_publish(*_: object) -> None:
        outstanding.release()
        acked[0] += 1
        if acked[0] == n:
            done.set()

    c.on_publish = on_publish
    c.loop_start()
    sent_at: list[float] = []
    t0 = time.perf_counter()
    for i in range(n):
        if rate is not None:
            target = t0 + i / rate
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        outstanding.acquire()
        topic, body = make(i)
        c.publish(topic, body, qos=1)
        if rate is not None:
            sent_at.append(time.time())
    if not done.wait(300):
        raise RuntimeError(f"only {acked[0]} of {n} publishes acknowledged")
    seconds = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return seconds, sent_at


# --- consumers -------------------------------------------------------------------------------
def create_probe_session(url: str, cid: str) -> None:
    c = client(url, cid, persistent=True)
    c.loop_start()
    c.subscribe(f"$share/{cid}/dothi/v1/devices/+/up", qos=1)
    time.sleep(0.5)
    c.disconnect()
    c.loop_stop()


def drain_probe(url: str, n: int, cid: str) -> Result:
    """A bare paho subscriber that only counts (auto-ack)."""
    got = [0]
    done = threading.Event()
    c = client(url, cid, persistent=True)

    def on_message(*_: object) -> None:
        got[0] += 1
        if got[0] >= n:
            done.set()

    c.on_message = on_message
    t0 = time.perf_counter()
    c.loop_start()
    done.wait(600)
    seconds = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return Result("bare paho subscriber (count only)", got[0], 0, seconds)


class _CountingHandler:
    """Counts and acks at once: the receive path's own limit, with nothing behind it."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.got = 0
        self.done = threading.Event()
        self.session: SubscriberSession | None = None

    def on_connected(self, generation: int, session_present: bool) -> None:
        pass

    def on_subscribed(self, refused: list[str]) -> None:
        pass

    def on_messages(self, generation: int, messages: list[Message]) -> None:
        assert self.session is not None
        self.session.ack([m.packet_id for m in messages], generation)
        self.got += len(messages)
        if self.got >= self.n:
            self.done.set()

    def on_disconnected(self, reason: str) -> None:
        pass

    def on_unreachable(self, reason: str) -> None:
        pass

    def on_refused(self, reason: str, fatal: bool) -> None:
        raise RuntimeError(f"{reason} (fatal: {fatal})")

    def on_failed(self, reason: str) -> None:
        raise RuntimeError(reason)


def session_probe(url: str, n: int, cid: str) -> Result:
    """dothi's ingest MQTT session (ingest/session.py) that only counts and acks."""
    handler = _CountingHandler(n)
    subs = [(f"$share/{cid}/dothi/v1/devices/+/up", 1)]
    session = SubscriberSession(
        parse_mqtt_url(url), cid, subs, handler, session_expiry_s=3600, receive_maximum=4000
    )
    handler.session = session
    t0 = time.perf_counter()
    session.start()
    handler.done.wait(600)
    seconds = time.perf_counter() - t0
    session.stop()
    return Result("bare dothi MQTT session (count + ack only)", handler.got, 0, seconds)


def create_session_probe(url: str, cid: str) -> None:
    """Create the session (and its subscription) that session_probe drains later."""
    handler = _CountingHandler(1)
    subs = [(f"$share/{cid}/dothi/v1/devices/+/up", 1)]
    session = SubscriberSession(
        parse_mqtt_url(url), cid, subs, handler, session_expiry_s=3600, receive_maximum=4000
    )
    ready = threading.Event()
    handler.on_subscribed = lambda _refused: ready.set()  # type: ignore[method-assign]
    handler.session = session
    session.start()
    if not ready.wait(30):
        raise RuntimeError("the session probe did not subscribe")
    session.stop()


def create_peer_session(stack: LocalStack, cid: str) -> None:
    pw = stack.mosquitto.role_password("admin")
    subprocess.run(
        ["mosquitto_sub", "-p", str(stack.mosquitto.port), "-u", "dothi-admin", "-P", pw,
         "-q", "1", "-c", "-i", cid, "-t", "dothi/v1/devices/+/up", "-E"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip


def drain_peer(stack: LocalStack, n: int, readings_per_msg: int, cid: str) -> Result:
    """mosquitto_sub | psql COPY into a staging table, then one INSERT … SELECT."""
    url = stack.postgres.url("peer")
    with psycopg.connect(stack.postgres.url("postgres"), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS peer")
        conn.execute("CREATE DATABASE peer")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        conn.execute("CREATE TABLE raw (topic text, doc text)")
        conn.execute(
            "CREATE TABLE readings (device_id text, metric text, ts timestamptz, value float8,"
            " UNIQUE (device_id, metric, ts))"
        )
        conn.execute("SELECT create_hypertable('readings', 'ts')")
    pw = stack.mosquitto.role_password("admin")
    t0 = time.perf_counter()
    sub = subprocess.Popen(
        ["mosquitto_sub", "-p", str(stack.mosquitto.port), "-u", "dothi-admin", "-P", pw,
         "-q", "1", "-c", "-i", cid, "-t", "dothi/v1/devices/+/up",
         "-C", str(n), "-F", "%t\t%p"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    psql = subprocess.run(
        ["psql", url, "-q", "-c", "\\copy raw (topic, doc) FROM STDIN"],
        stdin=sub.stdout, capture_output=True, text=True, check=False,
    )  # fmt: skip
    sub.wait()
    if psql.returncode != 0:
        raise RuntimeError(f"peer psql failed: {psql.stderr}")
    with psycopg.connect(url, autocommit=True) as conn:
        if readings_per_msg == 1:
            conn.execute(
                "INSERT INTO readings SELECT split_part(topic, '/', 4), 'pm25',"
                " (doc::json->>'ts')::timestamptz, (doc::json->'readings'->>'pm25')::float8"
                " FROM raw ON CONFLICT DO NOTHING"
            )
        else:
            conn.execute(
                "INSERT INTO readings SELECT split_part(topic, '/', 4), 'pm25',"
                " to_timestamp((r.doc::json->0->>'bt')::float8 + coalesce((e->>'t')::float8, 0)),"
                " (e->>'v')::float8 FROM raw r, json_array_elements(r.doc::json) e"
                " ON CONFLICT DO NOTHING"
            )
        stored = conn.execute("SELECT count(*) FROM readings").fetchone()
    seconds = time.perf_counter() - t0
    return Result(
        "peer: mosquitto_sub → psql COPY (no guarantees)",
        n,
        int(stored[0]) if stored else 0,
        seconds,
    )


def ingest_env(
    stack: LocalStack, db: str, batch: int, version: str = "5", metrics_port: int = 0
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTHI_")}
    env.update(
        DOTHI_DATABASE_URL=stack.postgres.url(db),
        DOTHI_MQTT_URL=stack.mosquitto.url("ingest"),
        # One client id prefix and share group per database (round): a slot left from an
        # earlier round would keep its share of the group's messages (ENVIRONMENT.md).
        DOTHI_INGEST_CLIENT_ID=f"bench-{db}",
        DOTHI_INGEST_SHARE_GROUP=f"g-{db}",
        DOTHI_INGEST_METRICS_PORT=str(metrics_port),
        DOTHI_INGEST_BATCH_SIZE=str(batch),
        DOTHI_INGEST_RECEIVE_MAXIMUM=str(batch * 4),
        DOTHI_INGEST_MQTT_VERSION=version,
        DOTHI_LOG_LEVEL="WARNING",
    )
    return env


def start_workers(env: dict[str, str], workers: int) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen([sys.executable, "-m", "dothi", "ingest", "--slot", str(i)], env=env)
        for i in range(workers)
    ]


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(60)


def fresh_db(stack: LocalStack, name: str) -> str:
    with psycopg.connect(stack.postgres.url("postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    url = stack.postgres.url(name)
    migrate.migrate(url)
    areas.load(url)
    return url


def stored(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (device_id, metric, ts)) FROM readings"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def scrape_stored(port: int) -> int | None:
    """Readings stored + duplicates absorbed, from one worker's metrics; None if not up yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    total = 0.0
    for line in text.splitlines():
        if line.startswith(
            ("dothi_ingest_readings_stored_total ", "dothi_ingest_readings_duplicate_total ")
        ):
            total += float(line.split()[1])
    return int(total)


def drain_dothi(
    stack: LocalStack, db: str, n: int, readings: int, workers: int, batch: int, version: str
) -> Result:
    """Time from the worker processes being up (metrics answering) to all readings committed.

    Python start-up and imports (~0.6 s here) are excluded; connecting, subscribing and the
    broker resuming the session are included. Progress is read from the workers' own metrics
    (polling count(*) on the hypertable would compete for the cores being measured).
    """
    url = stack.postgres.url(db)
    base = free_port()
    while any(_port_busy(base + i) for i in range(workers)):
        base = free_port()
    procs = start_workers(ingest_env(stack, db, batch, version, base), workers)
    cpu = rss = 0.0
    deadline = time.monotonic() + 600
    try:
        while any(scrape_stored(base + i) is None for i in range(workers)):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError("an ingest worker did not start")
            time.sleep(0.01)
        t0 = time.perf_counter()
        cpu0 = sum(proc_cpu_seconds(p.pid) for p in procs)
        while sum(scrape_stored(base + i) or 0 for i in range(workers)) < readings:
            time.sleep(0.05)
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {stored(url)[0]} of {readings} readings stored")
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("an ingest worker exited during the benchmark")
        seconds = time.perf_counter() - t0
        cpu = sum(proc_cpu_seconds(p.pid) for p in procs) - cpu0
        rss = max(proc_rss_mb(p.pid) for p in procs)
    finally:
        stop_workers(procs)
    total, unique = stored(url)
    note = "reconciled" if total == unique == readings else f"MISMATCH {total}/{unique}"
    name = f"dothi ingest, {workers} worker(s), MQTT {version}"
    return Result(name, n, total, seconds, cpu, rss, note)


def _port_busy(port: int) -> bool:
    import socket  # noqa: PLC0415 (only here)

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def bare_copy(stack: LocalStack, n: int, readings_per_msg: int) -> Result:
    """The database's limit for these rows: binary COPY straight into the hypertable."""
    url = fresh_db(stack, "copyprobe")
    rows = [
        (f"b{i % 1000:05d}", "pm25", T0 + timedelta(milliseconds=i), 1.0, 1)
        for i in range(n * readings_per_msg)
    ]
    t0 = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        for start in range(0, len(rows), 10_000):
            with cur.copy(
                "COPY readings (device_id, metric, ts, value, quality) FROM STDIN (FORMAT BINARY)"
            ) as cp:
                cp.set_types(["text", "text", "timestamptz", "float8", "int2"])
                for r in rows[start : start + 10_000]:
                    cp.write_row(r)
            conn.commit()
    seconds = time.perf_counter() - t0
    return Result("bare binary COPY into readings", n, len(rows), seconds)


def create_ingest_sessions(
    stack: LocalStack, db: str, workers: int, batch: int, version: str = "5"
) -> None:
    """Connect each worker slot once (until SUBACK) so its persistent session exists."""
    settings = load_settings(
        database_url=stack.postgres.url(db),
        mqtt_url=stack.mosquitto.url("ingest"),
        ingest_client_id=f"bench-{db}",
        ingest_share_group=f"g-{db}",
        ingest_batch_size=batch,
        ingest_mqtt_version=version,
    )
    for slot in range(workers):
        worker = IngestWorker(
            settings, slot, db_url=settings.db_url(), mqtt_url=settings.broker_url("ingest")
        )
        stop = threading.Event()
        thread = threading.Thread(target=worker.run, args=(stop,))
        thread.start()
        if not worker.wait_connected(30):
            raise RuntimeError("ingest worker did not subscribe")
        stop.set()
        thread.join()


def drain_round(
    stack: LocalStack, n: int, *, packed_mode: bool, configs: list[tuple[int, str]]
) -> list[Result]:
    """Queue n messages once for every consumer's session, then drain each in turn."""
    per_msg = 50 if packed_mode else 1
    make = (lambda i: packed(i, 1000)) if packed_mode else (lambda i: single(i, 1000))
    tag = "p" if packed_mode else "s"
    admin = stack.mosquitto.url("admin")
    dbs = [f"drain_{tag}_{w}_{version.replace('.', '')}" for w, version in configs]
    for (w, version), db in zip(configs, dbs, strict=True):
        fresh_db(stack, db)
        create_ingest_sessions(stack, db, w, 1000, version)
    # Every consumer has its own session (and share group), so one publish fills them all.
    create_probe_session(admin, f"probe-{tag}")
    create_session_probe(admin, f"sprobe-{tag}")
    create_peer_session(stack, f"peer-{tag}")
    pub_s, _ = publish(admin, n, make)
    print(f"  published {n} messages in {pub_s:.1f} s ({n / pub_s:,.0f} msg/s)", flush=True)
    results: list[Result] = []
    for (w, version), db in zip(configs, dbs, strict=True):
        dothi = drain_dothi(stack, db, n, n * per_msg, w, 1000, version)
        results.append(dothi)
        print(f"  {dothi.name}: {dothi.msg_rate:,.0f} msg/s ({dothi.note})", flush=True)
    for probe in (
        drain_probe(admin, n, f"probe-{tag}"),
        session_probe(admin, n, f"sprobe-{tag}"),
        drain_peer(stack, n, per_msg, f"peer-{tag}"),
    ):
        results.append(probe)
        print(f"  {probe.name}: {probe.msg_rate:,.0f} msg/s", flush=True)
    results.append(bare_copy(stack, n, per_msg))
    return results


def live_round(
    stack: LocalStack, n: int, rate: float | None, tag: str
) -> tuple[Result, list[float], float]:
    """Publish n messages (at ``rate``, or as fast as the generator can) while one worker ingests.

    Returns the result (its rate is the generator's), the publish → stored latencies in ms
    (``received_at``, the writing transaction's start, minus the timestamp set at send), and
    the seconds from the first publish until the last reading was stored.
    """
    db = f"live_{tag}"
    url = fresh_db(stack, db)
    create_ingest_sessions(stack, db, 1, 1000)
    port = free_port()
    procs = start_workers(ingest_env(stack, db, 1000, metrics_port=port), 1)
    try:
        while scrape_stored(port) is None:
            time.sleep(0.01)
        cpu0 = proc_cpu_seconds(procs[0].pid)
        t0 = time.perf_counter()

        def make(i: int) -> tuple[str, bytes]:
            now = datetime.now(UTC)
            body = json.dumps({"ts": now.isoformat(), "readings": {"pm25": 10.0 + i % 7}})
            return TOPIC.format(f"l{i % 1000:05d}"), body.encode()

        pub_s, _ = publish(stack.mosquitto.url("admin"), n, make, rate=rate)
        while (scrape_stored(port) or 0) < n and time.perf_counter() - t0 < pub_s + 60:
            time.sleep(0.02)
        total_s = time.perf_counter() - t0
        cpu = proc_cpu_seconds(procs[0].pid) - cpu0
        rss = proc_rss_mb(procs[0].pid)
    finally:
        stop_workers(procs)
    lat = column_ms(url, "received_at - ts", "readings")
    total, unique = stored(url)
    note = "reconciled" if total == unique == n else f"MISMATCH {total}/{unique} of {n}"
    name = f"live at {rate:,.0f} msg/s" if rate else "live, generator flat out"
    return Result(name, n, total, pub_s, cpu, rss, note), lat, total_s


ALERT_RULES = """version = 1

[[rule]]
id = "bench-pm25"
kind = "threshold"
title = "bench"
scope = { all = true }
metric = "pm25"
op = ">"
value = 400.0
severity = "warning"
"""


def column_ms(url: str, expr: str, table: str) -> list[float]:
    """``expr`` (an interval) of every row of ``table``, in milliseconds."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"SELECT extract(epoch FROM {expr}) * 1000 FROM {table}").fetchall()
    return [float(r[0]) for r in rows]


def alert_round(
    stack: LocalStack, home: Path, rate: float, seconds: float, interval: float
) -> tuple[list[float], int, float]:
    """Publish → alert: normal traffic at ``rate`` with one breaching reading in 50, each from
    its own device, while ingest and ``dothi analytics --interval`` run. Latency per alert =
    ``alerts.created_at`` (the evaluator's commit) − ``started_at`` (the reading's timestamp,
    set at send). Returns the latencies in ms, how many alerts were expected and the share of a
    core the analytics process used meanwhile."""
    db = "alerts"
    url = fresh_db(stack, db)
    create_ingest_sessions(stack, db, 1, 1000)
    rules = home / "bench-rules.toml"
    rules.write_text(ALERT_RULES, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTHI_")}
    env.update(
        DOTHI_DATABASE_URL=url,
        DOTHI_MQTT_URL=stack.mosquitto.url("analytics"),
        DOTHI_LOG_LEVEL="WARNING",
    )
    analytics = subprocess.Popen(
        [sys.executable, "-m", "dothi", "analytics", "--rules", str(rules),
         "--notifications", "none", "--interval", str(interval)],
        env=env,
    )  # fmt: skip
    port = free_port()
    procs = start_workers(ingest_env(stack, db, 1000, metrics_port=port), 1)
    n = int(rate * seconds)
    expected = len(range(0, n, 50))
    try:
        while scrape_stored(port) is None:
            time.sleep(0.01)
        time.sleep(2 * interval)  # analytics up and past its first cycle

        def make(i: int) -> tuple[str, bytes]:
            now = datetime.now(UTC).isoformat()
            if i % 50 == 0:
                return TOPIC.format(f"alert{i // 50:05d}"), json.dumps(
                    {"ts": now, "readings": {"pm25": 450.0}}
                ).encode()
            body = json.dumps({"ts": now, "readings": {"pm25": 10.0 + i % 7}})
            return TOPIC.format(f"l{i % 1000:05d}"), body.encode()

        cpu0, t0 = proc_cpu_seconds(analytics.pid), time.perf_counter()
        publish(stack.mosquitto.url("admin"), n, make, rate=rate)
        deadline = time.monotonic() + 60
        got = 0
        while time.monotonic() < deadline:
            with psycopg.connect(url) as conn:
                row = conn.execute("SELECT count(*) FROM alerts").fetchone()
            got = int(row[0]) if row else 0
            if got >= expected:
                break
            time.sleep(0.5)
        share = (proc_cpu_seconds(analytics.pid) - cpu0) / (time.perf_counter() - t0)
        lat = column_ms(url, "created_at - started_at", "alerts")
    finally:
        stop_workers(procs)
        analytics.send_signal(signal.SIGTERM)
        analytics.wait(60)
    return lat, expected, share


def outage_round(stack: LocalStack, rate: float, seconds: float, down_s: float) -> Result:
    """Live traffic while the database is stopped for ``down_s``: ingest's RSS must stay
    bounded (Receive Maximum caps what it holds) and every reading must arrive afterwards."""
    db = "outage"
    url = fresh_db(stack, db)
    create_ingest_sessions(stack, db, 1, 1000)
    port = free_port()
    procs = start_workers(ingest_env(stack, db, 1000, metrics_port=port), 1)
    n = int(rate * seconds)
    try:
        while scrape_stored(port) is None:
            time.sleep(0.01)

        def make(i: int) -> tuple[str, bytes]:
            body = json.dumps({"ts": (T0 + timedelta(seconds=i)).isoformat(),
                               "readings": {"pm25": 10.0 + i % 7}})  # fmt: skip
            return TOPIC.format(f"o{i % 1000:05d}"), body.encode()

        def outage() -> None:
            time.sleep(min(10.0, seconds / 4))
            stack.postgres.stop()
            time.sleep(down_s)
            stack.postgres.start()

        cut = threading.Thread(target=outage)
        cut.start()
        t0 = time.perf_counter()
        pub_s, _ = publish(stack.mosquitto.url("admin"), n, make, rate=rate)
        cut.join()
        while (scrape_stored(port) or 0) < n and time.perf_counter() - t0 < pub_s + 300:
            time.sleep(0.1)
        rss = proc_rss_mb(procs[0].pid)
        cpu = proc_cpu_seconds(procs[0].pid)
    finally:
        stop_workers(procs)
    total, unique = stored(url)
    note = "reconciled" if total == unique == n else f"MISMATCH {total}/{unique} of {n}"
    name = f"live at {rate:,.0f} msg/s, database down {down_s:.0f} s"
    return Result(name, n, total, pub_s, cpu, rss, note)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--messages", type=int, default=200_000, help="single-reading drain size")
    ap.add_argument("--packed", type=int, default=20_000, help="packed (50 readings) drain size")
    ap.add_argument("--live-max", type=int, default=100_000, help="messages sent flat out")
    ap.add_argument(
        "--live-rate", type=float, default=0, help="latency run rate (default: half the max)"
    )
    ap.add_argument("--live-seconds", type=float, default=20)
    ap.add_argument("--alert-rate", type=float, default=2_000, help="publish → alert run rate")
    ap.add_argument("--alert-seconds", type=float, default=10)
    ap.add_argument("--analytics-interval", type=float, default=1.0)
    ap.add_argument("--outage-s", type=float, default=60, help="database outage length")
    ap.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = ap.parse_args()

    home = bench_home("ingest")
    stack = LocalStack.at(home, free_port(), free_port())
    stack.mosquitto.max_queued_messages = 10_000_000
    stack.mosquitto.max_inflight = (
        4000  # = the workers' Receive Maximum (batch × 4), for MQTT 3.1.1 too
    )
    stack.start()
    try:
        print("drain, single reading per message", flush=True)
        single_res = drain_round(
            stack,
            args.messages,
            packed_mode=False,
            configs=[(1, "5"), (2, "5"), (1, "3.1.1"), (2, "3.1.1")],
        )
        print("drain, packed (SenML, 50 readings per message)", flush=True)
        packed_res = drain_round(
            stack, args.packed, packed_mode=True, configs=[(1, "5"), (1, "3.1.1")]
        )
        print("live, generator flat out", flush=True)
        max_res, _, max_total_s = live_round(stack, args.live_max, None, "max")
        half = args.live_rate or max_res.msg_rate / 2
        print(f"  generator max {max_res.msg_rate:,.0f} msg/s; live at {half:,.0f}", flush=True)
        live_res, lat, _ = live_round(stack, int(half * args.live_seconds), half, "half")
        print("publish → alert", flush=True)
        alert_lat, alerts_expected, analytics_cpu = alert_round(
            stack, home, args.alert_rate, args.alert_seconds, args.analytics_interval
        )
        print(f"database outage of {args.outage_s:g} s under live traffic", flush=True)
        outage_res = outage_round(stack, args.alert_rate, args.outage_s + 30, args.outage_s)
    finally:
        stack.stop()
        remove(home)

    report = render(
        single_res,
        packed_res,
        (max_res, max_total_s),
        live_res,
        lat,
        (alert_lat, alerts_expected, analytics_cpu),
        outage_res,
        args,
    )
    print(report)
    if not args.no_write:
        write_section("Ingest", report)
    return 0


def render(
    single_res: list[Result],
    packed_res: list[Result],
    live_max: tuple[Result, float],
    live_res: Result,
    lat: list[float],
    alerts: tuple[list[float], int, float],
    outage: Result,
    args: argparse.Namespace,
) -> str:
    def table(results: list[Result]) -> str:
        lines = [
            "| consumer | messages | readings | seconds | msg/s | readings/s | CPU ms/1k msg | peak RSS MB | check |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in results:
            cpu = f"{r.cpu_s / r.messages * 1e6:.0f}" if r.cpu_s == r.cpu_s else "–"
            rss = f"{r.rss_mb:.0f}" if r.rss_mb == r.rss_mb else "–"
            lines.append(
                f"| {r.name} | {r.messages:,} | {r.readings:,} | {r.seconds:.2f} | "
                f"{r.msg_rate:,.0f} | {r.reading_rate:,.0f} | {cpu} | {rss} | {r.note or '–'} |"
            )
        return "\n".join(lines)

    def by(results: list[Result], prefix: str) -> Result:
        return next(r for r in results if r.name.startswith(prefix))

    d1 = by(single_res, "dothi ingest, 1 worker(s), MQTT 5")
    d2 = by(single_res, "dothi ingest, 2 worker(s), MQTT 5")
    d1b = by(single_res, "dothi ingest, 1 worker(s), MQTT 3.1.1")
    d2b = by(single_res, "dothi ingest, 2 worker(s), MQTT 3.1.1")
    best = max(d1.msg_rate, d2.msg_rate, d1b.msg_rate, d2b.msg_rate)
    probe = by(single_res, "bare paho")
    own = by(single_res, "bare dothi")
    peer = by(single_res, "peer")
    copy = by(single_res, "bare binary COPY")
    pk = max((r for r in packed_res if r.name.startswith("dothi")), key=lambda r: r.reading_rate)
    pk_peer = by(packed_res, "peer")
    pk_copy = by(packed_res, "bare binary COPY")
    max_res, max_total_s = live_max
    kept = max_res.messages / max_total_s
    p50, p99 = median(lat), percentile(lat, 99)
    rss_peak = max(
        r.rss_mb for r in [*single_res, *packed_res, max_res, live_res] if r.rss_mb == r.rss_mb
    )
    alert_lat, alerts_expected, analytics_cpu = alerts
    best_res = max((d1, d2, d1b, d2b), key=lambda r: r.msg_rate)
    best_cpu = best_res.cpu_s / best_res.messages * 1e6
    a50, a99 = median(alert_lat), percentile(alert_lat, 99)
    target = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    return f"""
`python bench/ingest_bench.py --messages {args.messages} --packed {args.packed} \
--live-max {args.live_max}`; durable PostgreSQL (fsync on), QoS 1, batches of 1,000, Receive
Maximum 4,000; broker, database, consumers and generator share the 2 cores. Every consumer has
its own persistent session, filled by one publish; each then drains alone. dothi's drain time
starts when the worker processes are up (Python start-up, ~0.6 s, excluded; connecting,
subscribing and the broker resuming the session included) and ends when their metrics count
every reading committed; the count is then reconciled against the hypertable.

**Drain, one reading per message**

{table(single_res)}

**Drain, packed (SenML, 50 readings per message)**

{table(packed_res)}

**Live, one worker**

{table([max_res, live_res, outage])}

Flat out, the generator sent {max_res.messages:,} messages at {max_res.msg_rate:,.0f} msg/s and
the last was stored {max_total_s:.2f} s after the first was sent: ingest kept pace at
{kept:,.0f} msg/s ({kept / max_res.msg_rate:.0%} of the generator). At half that rate, publish →
stored latency (`received_at`, the start of the writing transaction, minus the timestamp set at
send; the commit itself adds a few ms): p50 {p50:.1f} ms, p99 {p99:.1f} ms over {len(lat):,}
readings.

Publish → alert: {len(alert_lat)} of {alerts_expected} threshold alerts opened (one breaching
reading in 50, each from its own device, among traffic at {args.alert_rate:,.0f} msg/s, ingest
and `dothi analytics --interval {args.analytics_interval:g}` running); latency = the alert row's
commit (`created_at`) − the reading's timestamp set at send: p50 {a50:,.0f} ms, p99 {a99:,.0f} ms.
The evaluation interval bounds it from below; evaluating every {args.analytics_interval:g} s cost
the analytics process {analytics_cpu:.0%} of a core meanwhile.

Database outage: the generator kept publishing at {args.alert_rate:,.0f} msg/s while PostgreSQL
was stopped for {args.outage_s:g} s; ingest acknowledged nothing while it was down (the broker
queued), held at most its Receive Maximum, and stored everything after the restart
({outage.note}); its peak RSS was {outage.rss_mb:.0f} MB.

What limits it: dothi's MQTT session alone drains {own.msg_rate:,.0f} msg/s (the broker's
pace), so receiving costs little; the best configuration used {best_cpu:.0f} µs of ingest CPU per
message (decode, validation, COPY, commit, ack) and shares the two cores with PostgreSQL and
Mosquitto, which is why a second worker adds {d2b.msg_rate / d1b.msg_rate - 1:.0%} rather than
doubling. Ingest reads MQTT with its own subscriber session (ingest/session.py) because paho's
receive path was the ceiling (the bare paho subscriber row), and bounds unacked messages itself
because Mosquitto 2.0.11 over-sends a resumed session's backlog (docs/scaling.md).

Load average when the run ended: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.
ENVIRONMENT.md measured a bare paho subscriber at ~64k msg/s on a quiet machine; compare ratios
and CPU per message, not absolute rates, across runs.

| target | measured | |
|---|---|---|
| drain ≥ 50,000 single-reading msg/s | MQTT 5: {d1.msg_rate:,.0f} (1 worker), {d2.msg_rate:,.0f} (2); MQTT 3.1.1: {d1b.msg_rate:,.0f} (1), {d2b.msg_rate:,.0f} (2) | {target(best >= 50_000)} |
| drain ≥ 80 % of the bare paho subscriber | {best / probe.msg_rate:.0%} (best configuration) | {target(best >= 0.8 * probe.msg_rate)} |
| dothi / its own MQTT session counting only | {best / own.msg_rate:.0%} | – |
| dothi / bare COPY of the same rows | {best / copy.msg_rate:.0%} | – |
| dothi / peer (single) | {best / peer.msg_rate:.2f}× | – |
| packed ≥ 200,000 readings/s, duplicates removed | {pk.reading_rate:,.0f} ({pk.reading_rate / pk_copy.reading_rate:.0%} of bare COPY) | {target(pk.reading_rate >= 200_000)} |
| dothi / peer (packed) | {pk.reading_rate / pk_peer.reading_rate:.2f}× | – |
| live: keeps pace with the generator flat out (≥ 95 %) | {kept / max_res.msg_rate:.0%} | {target(kept >= 0.95 * max_res.msg_rate)} |
| live at half rate: p50 ≤ 20 ms, p99 ≤ 100 ms | p50 {p50:.1f} ms, p99 {p99:.1f} ms | {target(p50 <= 20 and p99 <= 100)} |
| publish → alert p99 ≤ 2 s | p99 {a99:,.0f} ms ({len(alert_lat)}/{alerts_expected} alerts) | {target(a99 <= 2000 and len(alert_lat) == alerts_expected)} |
| ingest RSS ≤ 150 MB steady | {rss_peak:.0f} MB peak | {target(rss_peak <= 150)} |
| ingest RSS ≤ 150 MB through a {args.outage_s:g} s database outage, nothing lost | {outage.rss_mb:.0f} MB peak, {outage.note} | {target(outage.rss_mb <= 150 and outage.note == "reconciled")} |
"""


if __name__ == "__main__":
    sys.exit(main())
