"""``dothi analytics`` as a service and ``dothi alerts`` as an operator uses them (real processes).

Several instances: one evaluates (advisory lock), a standby takes over when it is killed, and
the alert is opened once. The service survives a database restart. The CLI drives the lifecycle.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from analytics.service import APP_NAME, LOCK_KEY, ServiceOptions, run
from core.settings import Settings, load_settings
from dothi.stack import LocalStack
from tests.analytics_support import add_device, alerts_of, events_of, every, insert
from tests.helpers import wait_for

MIN = timedelta(minutes=1)
SEC = timedelta(seconds=1)

RULES = """
version = 1

[[rule]]
id = "pm25-{dev}"
kind = "threshold"
title = "PM2.5 cao"
scope = {{ device = "{dev}" }}
metric = "pm25"
op = ">"
value = 50
for = "5m"
hysteresis = 5
"""

SERVICE = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from analytics.service import ServiceOptions, run
    from core.settings import load_settings

    run(load_settings(), threading.Event(), ServiceOptions(
        rules=Path(sys.argv[1]), notifications=None, interval_s=0.3, standby_poll_s=0.2,
        instance=sys.argv[2]))
    """
)


def lock_holder(url: str) -> str | None:
    """application_name of the session holding the analytics lock."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT a.application_name FROM pg_locks AS l JOIN pg_stat_activity AS a"
            " ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.objid = %s AND l.granted",
            (LOCK_KEY,),
        ).fetchone()
    return None if row is None else str(row[0])


def settings_for(stack: LocalStack, url: str) -> Settings:
    return load_settings(database_url=url, mqtt_url=stack.mosquitto.url("analytics"))


def env_for(stack: LocalStack, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTHI_")}
    env.update(DOTHI_DATABASE_URL=url, DOTHI_MQTT_URL=stack.mosquitto.url("analytics"))
    return env


@contextlib.contextmanager
def service_thread(settings: Settings, options: ServiceOptions) -> Iterator[threading.Event]:
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run(settings, stop, options)
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)

    thread = threading.Thread(target=target, name=f"analytics-{options.instance}", daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(60)
    if errors:
        raise errors[0]


def test_one_active_instance_and_takeover_when_it_is_killed(
    stack: LocalStack, fresh_db_url: str, uid: str, tmp_path: Path
) -> None:
    dev = f"aq-{uid}"
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.format(dev=dev), encoding="utf-8")
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        add_device(conn, dev, "air_quality")
        insert(conn, dev, "pm25", every(now - 20 * MIN, MIN, [80] * 20))
    first = subprocess.Popen(
        [sys.executable, "-c", SERVICE, str(rules), "first"],
        env=env_for(stack, fresh_db_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: lock_holder(fresh_db_url) == f"{APP_NAME} first", what="first leads")
        with psycopg.connect(fresh_db_url) as conn:
            wait_for(lambda: len(alerts_of(conn, dev)) == 1, what="the alert")
        options = ServiceOptions(
            rules=rules,
            notifications=None,
            interval_s=0.3,
            standby_poll_s=0.2,
            instance="second",
        )
        with service_thread(settings_for(stack, fresh_db_url), options):
            # The second instance stands by while the first lives.
            wait_for(lambda: _sessions(fresh_db_url, f"{APP_NAME} second") == 1, what="second up")
            assert lock_holder(fresh_db_url) == f"{APP_NAME} first"
            first.send_signal(signal.SIGKILL)
            first.wait(30)
            wait_for(lambda: lock_holder(fresh_db_url) == f"{APP_NAME} second", what="the takeover")
            # The new evaluator carries on from the saved state: clear, then nothing else.
            with psycopg.connect(fresh_db_url, autocommit=True) as conn:
                insert(conn, dev, "pm25", every(now - 50 * SEC, 10 * SEC, [20] * 3))
            with psycopg.connect(fresh_db_url) as conn:
                wait_for(lambda: alerts_of(conn, dev)[0].state == "resolved", timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(30)
    with psycopg.connect(fresh_db_url) as conn:
        assert [e for _, e in events_of(conn, dev)] == ["opened", "resolved"]
        assert len(alerts_of(conn, dev)) == 1


def _sessions(url: str, name: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.slow
def test_service_survives_a_database_restart(
    stack: LocalStack, fresh_db_url: str, uid: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dev = f"aq-{uid}"
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.format(dev=dev), encoding="utf-8")
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        add_device(conn, dev, "air_quality")
        insert(conn, dev, "pm25", every(now - 20 * MIN, MIN, [80] * 20))
    caplog.set_level(logging.INFO, logger="analytics")
    options = ServiceOptions(rules=rules, notifications=None, interval_s=0.3, instance="solo")
    with service_thread(settings_for(stack, fresh_db_url), options):
        with psycopg.connect(fresh_db_url) as conn:
            wait_for(lambda: len(alerts_of(conn, dev)) == 1, what="the alert")
        stack.postgres.stop()
        try:
            wait_for(lambda: "database unavailable" in caplog.text, what="the outage log line")
        finally:
            stack.postgres.start()
        with psycopg.connect(fresh_db_url, autocommit=True) as conn:
            insert(conn, dev, "pm25", every(now - 50 * SEC, 10 * SEC, [20] * 3))
        with psycopg.connect(fresh_db_url) as conn:
            wait_for(lambda: alerts_of(conn, dev)[0].state == "resolved", timeout=120)
    assert "analytics solo is the active evaluator" in caplog.text


def test_a_hanging_webhook_does_not_hold_up_evaluation(
    stack: LocalStack, fresh_db_url: str, uid: str, tmp_path: Path
) -> None:
    dev = f"aq-{uid}"
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.format(dev=dev), encoding="utf-8")
    # A listener that never answers: connections complete, requests time out.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        channels = tmp_path / "notifications.toml"
        channels.write_text(
            '[mqtt]\nenabled = false\n[[webhook]]\nname = "slow"\n'
            f'url = "http://127.0.0.1:{port}/hook"\nsecret = "0123456789abcdef0123"\n'
            "timeout_s = 30\n",
            encoding="utf-8",
        )
        now = datetime.now(UTC).replace(microsecond=0)
        with psycopg.connect(fresh_db_url, autocommit=True) as conn:
            add_device(conn, dev, "air_quality")
            insert(conn, dev, "pm25", every(now - 20 * MIN, MIN, [80] * 20))
        options = ServiceOptions(
            rules=rules, notifications=channels, interval_s=0.3, instance="hooks"
        )
        with service_thread(load_settings(database_url=fresh_db_url), options):
            with psycopg.connect(fresh_db_url) as conn:
                wait_for(lambda: len(alerts_of(conn, dev)) == 1, what="the alert")
            with psycopg.connect(fresh_db_url, autocommit=True) as conn:
                insert(conn, dev, "pm25", every(now - 50 * SEC, 10 * SEC, [20] * 3))
            with psycopg.connect(fresh_db_url) as conn:
                # Resolved while the notifier is still stuck on the first request.
                wait_for(lambda: alerts_of(conn, dev)[0].state == "resolved", timeout=20)
                delivered = conn.execute(
                    "SELECT count(*) FROM notification_deliveries WHERE status = 'delivered'"
                ).fetchone()
            assert delivered == (0,)


def run_dothi(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dothi", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_cli_runs_analytics_once_and_drives_the_lifecycle(
    stack: LocalStack, fresh_db_url: str, uid: str, tmp_path: Path
) -> None:
    dev = f"aq-{uid}"
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.format(dev=dev), encoding="utf-8")
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        add_device(conn, dev, "air_quality")
        insert(conn, dev, "pm25", every(now - 20 * MIN, MIN, [80] * 20))
    env = env_for(stack, fresh_db_url)
    check = run_dothi(env, "analytics", "--rules", str(rules), "--check")
    assert check.returncode == 0, check.stderr
    assert "1 rules OK" in check.stdout
    once = run_dothi(env, "analytics", "--rules", str(rules), "--notifications", "none", "--once")
    assert once.returncode == 0, once.stderr
    listed = run_dothi(env, "alerts", "list", "--state", "active", "--json")
    assert listed.returncode == 0, listed.stderr
    [alert] = json.loads(listed.stdout)
    alert_id = str(alert["id"])
    assert (
        run_dothi(env, "alerts", "ack", alert_id, "--by", "lan", "-m", "đang xử lý").returncode == 0
    )
    again = run_dothi(env, "alerts", "ack", alert_id, "--by", "minh")
    assert again.returncode == 1
    assert "cannot be acknowledged: it is acknowledged (by lan" in again.stderr
    assert (
        run_dothi(env, "alerts", "comment", alert_id, "kiểm tra cảm biến", "--by", "lan").returncode
        == 0
    )
    done = run_dothi(env, "alerts", "resolve", alert_id, "--by", "minh")
    assert done.returncode == 0
    assert f"alert {alert_id} resolved by minh" in done.stdout
    missing = run_dothi(env, "alerts", "resolve", "987654321", "--by", "minh")
    assert missing.returncode == 1
    assert "alert 987654321 does not exist" in missing.stderr
    show = run_dothi(env, "alerts", "show", alert_id)
    assert [line.split()[1] for line in show.stdout.splitlines()[3:]] == [
        "opened",
        "acknowledged",
        "commented",
        "resolved",
    ]
    bad = tmp_path / "bad.toml"
    bad.write_text(RULES.format(dev=dev).replace('op = ">"', 'op = "above"'), encoding="utf-8")
    refused = run_dothi(env, "analytics", "--rules", str(bad), "--check")
    assert refused.returncode == 1
    assert f"{bad}, line 10: rule 'pm25-{dev}': 'op' must be one of" in refused.stderr
