"""Scenarios end to end, as an operator tries them: simulator → broker → ingest → database →
analytics alerts (real processes, real services)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from analytics.evaluate import RuleEngine
from analytics.rulefile import load_rules
from dothi.cmd_city import import_city
from dothi.stack import LocalStack
from simulators.city import load_city
from simulators.scenarios import Scenario
from tests.helpers import discard_session, ingest_settings, running_worker, wait_for

ROOT = Path(__file__).resolve().parents[1]


def dothi(
    *args: str, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dothi", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_flood_scenario_crosses_alarm_levels_and_raises_then_resolves_alerts(
    stack: LocalStack, fresh_db_url: str, uid: str
) -> None:
    settings = ingest_settings(stack, fresh_db_url, uid)
    import_city(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTHI_")}
    env.update(DOTHI_DATABASE_URL=fresh_db_url, DOTHI_LOG_LEVEL="WARNING")
    # Stop when the replay reaches now (the run starts one flood-length in the past).
    flood_hours = int(Scenario.bind("flood", load_city(), 0, 0).duration_s // 3600)
    rules = load_rules(ROOT / "deploy" / "rules.toml")
    # `dothi analytics` is already running: the gauge reported a normal level a moment ago and
    # the engine judged it, so the series has a watermark at "now".
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO readings (device_id, metric, ts, value)"
            " VALUES ('rg-song-dao-nam-dinh', 'water_level', now() - interval '2 minutes', 1.0)"
        )
        RuleEngine().evaluate(conn, rules, datetime.now(UTC))
        assert conn.execute("SELECT count(*) FROM alerts").fetchone() == (0,)
    with running_worker(settings) as worker:
        # Accelerated without --start: the whole 30 h flood is replayed up to now.
        sim = dothi(
            "simulate", "--scenario", "flood", "--speed", "3000", "--kinds", "river_gauge",
            "--duration", f"{flood_hours}h",
            env={**env, "DOTHI_MQTT_URL": stack.mosquitto.url("simulator")},
        )  # fmt: skip
        assert sim.returncode == 0, sim.stderr
        sent = int(json.loads(sim.stdout.strip().splitlines()[-1])["readings"])
        wait_for(lambda: worker.stats.stored + worker.stats.duplicates >= sent, timeout=120)
    discard_session(stack, settings.ingest_client_id + "-0")
    with psycopg.connect(fresh_db_url) as conn:
        peak = conn.execute(
            "SELECT max(value) FROM readings"
            " WHERE device_id = 'rg-song-dao-nam-dinh' AND metric = 'water_level'"
        ).fetchone()
    assert peak is not None
    assert peak[0] >= 4.30  # above alarm level III at Nam Định (sông Đào)

    # The replayed flood lies mostly before the watermark: the running engine's next cycle
    # judges these late readings as if they had arrived on time.
    with psycopg.connect(fresh_db_url) as conn:
        RuleEngine().evaluate(conn, rules, datetime.now(UTC))
    with psycopg.connect(fresh_db_url) as conn:
        events = conn.execute(
            "SELECT e.event, e.severity FROM alert_events e JOIN alerts a ON a.id = e.alert_id"
            " WHERE a.device_id = 'rg-song-dao-nam-dinh' ORDER BY e.id"
        ).fetchall()
    assert events, "no alert for the river gauge"
    assert events[0] == ("opened", "warning")  # alarm level I
    assert ("escalated", "critical") in events  # alarm level III
    assert events[-1][0] == "resolved", events  # the water fell back below level I
