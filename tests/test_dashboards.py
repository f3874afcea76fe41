"""Grafana dashboards as code, checked by contract because no Grafana can run here.

- Every dashboard round-trips through grafana-foundation-sdk's models (``Dashboard.from_json``).
- Every panel's SQL and every variable's query is expanded the way Grafana's PostgreSQL data
  source would (dashboards.macros) and run against a seeded TimescaleDB **as the read-only role
  dothi_grafana**, at the dashboard's own range and at ranges that pick each rollup tier; the
  columns are what the panel type needs and the default range returns rows. Plans are checked
  never to touch the raw readings hypertable.
- ``dothi dashboards export`` writes the provisioning files Grafana reads.
- ``dothi dashboards publish`` runs against tests/grafana_standin.py, a small local stand-in
  for the handful of Grafana HTTP API endpoints it calls. The stand-in exists only because no
  Grafana server can be installed where dothi is built and tested (ENVIRONMENT.md).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from grafana_foundation_sdk.models.dashboard import Dashboard

import dashboards
from analytics.regulations import alarm_level
from dashboards import city, provision
from dashboards.macros import TimeRange, Variable, auto_interval, expand, parse_interval
from dashboards.query import DATASOURCE_UID, SqlQuery
from dashboards.sql import TIERS
from tests.city_support import SeededCity, seed_city
from tests.grafana_standin import ADMIN_TOKEN, VIEWER_TOKEN, grafana_standin

# PyYAML (comes with schemathesis, a test dependency) parses the files as Grafana and Docker
# would; imported by name so mypy needs no stubs, and a missing module fails loudly.
yaml = importlib.import_module("yaml")

TIMESTAMPTZ_OID = 1184
NUMERIC_OIDS = {20, 21, 23, 700, 701, 1700}  # int8, int2, int4, float4, float8, numeric
DASHBOARDS = dashboards.build_all("https://ioc.example.vn")
# Ranges whose length selects each tier (dashboards.sql.TIERS): 3 h minutes, 7 d hours,
# 120 d days.
TIER_RANGES = (timedelta(hours=3), timedelta(days=7), timedelta(days=120))


@pytest.fixture(scope="module")
def city_db(db_url: str) -> SeededCity:
    return seed_city(db_url)


@pytest.fixture(scope="module")
def reader_url(db_url: str) -> str:
    """The test database as Grafana connects to it (trust auth here: no password needed)."""
    parts = urlsplit(db_url)
    return urlunsplit(
        parts._replace(netloc=f"{provision.READER_ROLE}@{parts.netloc.split('@')[-1]}")
    )


def _panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in model["panels"] if p["type"] != "row"]


def _relative(text: str) -> timedelta:
    """``now-6h`` or ``30d`` as a timedelta."""
    return parse_interval(text.removeprefix("now-"))


def _variables(
    conn: psycopg.Connection[Any], model: dict[str, Any], now: datetime
) -> dict[str, Variable]:
    """Resolve the dashboard's variables like Grafana on load: "All" of every query variable."""
    found: dict[str, Variable] = {}
    rng = TimeRange(now - timedelta(hours=24), now, timedelta(minutes=1), found)
    for var in model.get("templating", {}).get("list", []):
        if var["type"] == "constant":
            found[var["name"]] = Variable(var["name"], (var["query"],), multi=False)
            continue
        rows = conn.execute(expand(var["query"], rng)).fetchall()
        cols = len(rows[0]) if rows else 0
        assert rows, f"variable ${var['name']} has no options"
        assert cols == 2, f"variable ${var['name']} must return __text, __value"
        found[var["name"]] = Variable(var["name"], tuple(str(r[1]) for r in rows), multi=True)
    return found


def _runs(
    model: dict[str, Any], panel: dict[str, Any], variables: dict[str, Variable]
) -> list[dict[str, Variable]]:
    """One variable set per panel Grafana would draw: repeated panels once per value."""
    repeat = panel.get("repeat")
    if not repeat:
        return [variables]
    return [
        {**variables, repeat: Variable(repeat, (value,), multi=True)}
        for value in variables[repeat].values
    ]


def _range(
    model: dict[str, Any], panel: dict[str, Any], now: datetime
) -> tuple[datetime, datetime]:
    span = _relative(panel.get("timeFrom") or model["time"]["from"])
    return now - span, now


def _check_shape(panel: dict[str, Any], target: dict[str, Any], cur: psycopg.Cursor[Any]) -> None:
    where = f"{panel['title']!r} {target['refId']}"
    assert cur.description is not None
    names = [c.name for c in cur.description]
    types = [c.type_code for c in cur.description]
    rows = cur.fetchall()
    if target["format"] == "time_series":
        assert names[0] == "time", f"{where}: time column first"
        assert types[0] == TIMESTAMPTZ_OID, f"{where}: time is a timestamptz"
        for name, oid in zip(names[1:], types[1:], strict=True):
            assert oid in NUMERIC_OIDS or name == "metric", f"{where}: {name} is not a value"
        times = [r[0] for r in rows]
        assert times == sorted(times), f"{where}: rows must be sorted by time"
    elif panel["type"] == "stat" or panel["type"] == "piechart":
        assert len(rows) == 1, f"{where}: one row"
        assert all(oid in NUMERIC_OIDS for oid in types), f"{where}: numbers only"
    elif panel["type"] == "geomap":
        assert {"latitude", "longitude"} <= set(names), f"{where}: coordinates"
    elif panel["type"] == "barchart":
        assert panel["options"]["xField"] in names, f"{where}: x field"
    assert len(set(names)) == len(names), f"{where}: duplicate column names"


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_dashboard_round_trips_through_the_sdk_models(uid: str) -> None:
    model = DASHBOARDS[uid]
    back = Dashboard.from_json(json.loads(json.dumps(model)))
    assert dashboards.to_json(back) == model
    targets = [t for p in back.panels or [] for t in (getattr(p, "targets", None) or [])]
    assert targets
    assert all(isinstance(t, SqlQuery) and t.sql for t in targets)


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_dashboard_conventions(uid: str) -> None:
    model = DASHBOARDS[uid]
    assert model["uid"] == uid
    assert re.search(r"[à-ỹĐđ]", model["title"]), "Vietnamese title"
    assert model["description"].isascii() or "VN_AQI" in model["description"]
    assert "dothi" in model["tags"]
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in _panels(model):
        assert panel["title"], panel
        assert panel["description"], f"{panel['title']}: English description"
        assert panel["datasource"]["uid"] == DATASOURCE_UID
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE_UID
            assert target["rawQuery"]
            assert target["editorMode"] == "code"
    for var in model.get("templating", {}).get("list", []):
        if var["type"] == "query":
            assert var["datasource"]["uid"] == DATASOURCE_UID
            assert var["label"]
            assert var["description"]


def test_area_and_station_variables_exist() -> None:
    names = {
        uid: {v["name"] for v in m.get("templating", {}).get("list", [])}
        for uid, m in DASHBOARDS.items()
    }
    assert "area" in names["dothi-city"]
    assert {"area", "station"} <= names["dothi-environment"]
    assert {"area", "gauge"} <= names["dothi-flood"]
    assert "area" in names["dothi-energy"]


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_every_panel_query_runs_as_the_reader(
    uid: str, city_db: SeededCity, reader_url: str
) -> None:
    model = DASHBOARDS[uid]
    now = datetime.now(UTC)
    with psycopg.connect(reader_url, autocommit=True) as conn:
        variables = _variables(conn, model, now)
        for panel in _panels(model):
            min_interval = parse_interval(panel.get("interval") or "1m")
            for run in _runs(model, panel, variables):
                for target in panel["targets"]:
                    start, end = _range(model, panel, now)
                    rng = TimeRange(
                        start, end, auto_interval(start, end, min_interval=min_interval), run
                    )
                    cur = conn.execute(expand(target["rawSql"], rng))
                    assert cur.rowcount > 0, f"{uid}: {panel['title']!r} {target['refId']} is empty"
                    _check_shape(panel, target, cur)
                    if target["format"] != "time_series" or panel.get("timeFrom"):
                        continue
                    for span in TIER_RANGES:  # the other tiers' branches run too
                        rng = TimeRange(
                            now - span,
                            now,
                            auto_interval(now - span, now, min_interval=min_interval),
                            run,
                        )
                        _check_shape(panel, target, conn.execute(expand(target["rawSql"], rng)))


def _relations(plan: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(plan, dict):
        if "Relation Name" in plan:
            found.add(plan["Relation Name"])
        for value in plan.values():
            found |= _relations(value)
    elif isinstance(plan, list):
        for item in plan:
            found |= _relations(item)
    return found


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_panels_never_scan_raw_readings(
    uid: str, city_db: SeededCity, db_url: str, reader_url: str
) -> None:
    with psycopg.connect(db_url) as admin:
        raw = {
            str(r[0])
            for r in admin.execute(
                "SELECT chunk_name FROM timescaledb_information.chunks"
                " WHERE hypertable_name = 'readings'"
            ).fetchall()
        } | {"readings"}
    model = DASHBOARDS[uid]
    now = datetime.now(UTC)
    with psycopg.connect(reader_url, autocommit=True) as conn:
        variables = _variables(conn, model, now)
        for panel in _panels(model):
            for target in panel["targets"]:
                for span in (None, *TIER_RANGES):
                    start, end = _range(model, panel, now) if span is None else (now - span, now)
                    rng = TimeRange(
                        start, end, auto_interval(start, end), _runs(model, panel, variables)[0]
                    )
                    plan = conn.execute(
                        "EXPLAIN (FORMAT JSON) " + expand(target["rawSql"], rng)
                    ).fetchone()
                    assert plan is not None
                    assert not _relations(plan[0]) & raw, f"{panel['title']!r} reads raw readings"


def _executed(plan: Any) -> set[str]:
    """Relations an EXPLAIN ANALYZE plan actually scanned (never-executed branches excluded)."""
    found: set[str] = set()
    if isinstance(plan, dict):
        if "Relation Name" in plan and plan.get("Actual Loops", 0) > 0:
            found.add(plan["Relation Name"])
        for value in plan.values():
            found |= _executed(value)
    elif isinstance(plan, list):
        for item in plan:
            found |= _executed(item)
    return found


def test_tier_choice_by_range(city_db: SeededCity, db_url: str, reader_url: str) -> None:
    """Only the tier the range calls for is scanned: the other branches never execute."""
    from dashboards.environment import station_series_sql

    with psycopg.connect(db_url) as admin:
        hypertable_of: dict[str, str] = {
            str(chunk): str(table)
            for chunk, table in admin.execute(
                "SELECT chunk_name, hypertable_name FROM timescaledb_information.chunks"
            ).fetchall()
        }
    now = datetime.now(UTC)
    stations = {"station": Variable("station", ("aq-dt-a", "aq-dt-b"))}
    with psycopg.connect(reader_url) as conn:
        for span, tier in zip(TIER_RANGES, TIERS, strict=True):
            rng = TimeRange(now - span, now, auto_interval(now - span, now), stations)
            sql = "EXPLAIN (ANALYZE, FORMAT JSON) " + expand(station_series_sql("pm25"), rng)
            plan = conn.execute(sql).fetchone()
            assert plan is not None
            scanned = {hypertable_of.get(name, name) for name in _executed(plan[0])}
            assert scanned & {t.table for t in TIERS} == {tier.table}, (span, scanned)


def test_reader_cannot_write_or_see_secrets(city_db: SeededCity, reader_url: str) -> None:
    with psycopg.connect(reader_url, autocommit=True) as conn:
        for statement in (
            "DELETE FROM alerts",
            "SELECT metadata FROM devices",
            "SELECT payload FROM dead_letters",
            "SELECT secret_hash FROM api_keys",
            "SELECT * FROM readings LIMIT 1",
            "SELECT * FROM audit_log LIMIT 1",
        ):
            with pytest.raises(psycopg.Error) as info:
                conn.execute(statement)
            assert isinstance(
                info.value,
                psycopg.errors.InsufficientPrivilege | psycopg.errors.ReadOnlySqlTransaction,
            ), statement


def test_gauge_alarm_levels_from_the_device_or_the_regulations(
    city_db: SeededCity, reader_url: str
) -> None:
    now = datetime.now(UTC)
    rng = TimeRange(
        now - timedelta(hours=6),
        now,
        timedelta(minutes=1),
        {"area": Variable("area", ("nam-dinh",))},
    )
    with psycopg.connect(reader_url) as conn:
        rows = conn.execute(expand(city.gauges_now_sql(), rng)).fetchall()
    by_name = {r[0]: r for r in rows}
    dao = by_name["Trạm thủy văn Nam Định (sông Đào)"]
    assert dao[2:5] == (3.2, 3.8, 4.3)  # the device's own levels
    ninh_co = by_name["Trạm thủy văn Trực Phương"]
    assert ninh_co[2:5] == (2.0, None, 2.6)  # analytics.regulations.GAUGES["truc_phuong"]
    assert ninh_co[5] == alarm_level("truc_phuong", ninh_co[1])
    assert dao[5] == sum(dao[1] >= lv for lv in dao[2:5])


def test_city_alert_rows_link_to_the_ops_console(city_db: SeededCity, reader_url: str) -> None:
    model = DASHBOARDS["dothi-city"]
    consts = {v["name"]: v["query"] for v in model["templating"]["list"] if v["type"] == "constant"}
    assert consts["dothi_url"] == "https://ioc.example.vn"
    panel = next(p for p in _panels(model) if p["title"] == "Cảnh báo đang mở")
    links = panel["fieldConfig"]["defaults"]["links"]
    assert [link["url"] for link in links] == ["${dothi_url}/ops#alert=${__data.fields.id}"]
    now = datetime.now(UTC)
    rng = TimeRange(
        now - timedelta(hours=6),
        now,
        timedelta(minutes=1),
        {"area": Variable("area", ("nam-dinh",))},
    )
    with psycopg.connect(reader_url) as conn:
        cur = conn.execute(expand(panel["targets"][0]["rawSql"], rng))
        assert cur.description is not None
        assert cur.description[0].name == "id"
        ids = [r[0] for r in cur.fetchall()]
    assert set(ids) == set(city_db.alert_ids.values())
    url = (
        links[0]["url"]
        .replace("${dothi_url}", consts["dothi_url"])
        .replace("${__data.fields.id}", str(ids[0]))
    )
    assert url == f"https://ioc.example.vn/ops#alert={ids[0]}"
    # Most severe first: the critical air-quality alert leads.
    assert ids[0] == city_db.alert_ids["air"]


def run_dothi(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DOTHI_", "GRAFANA_"))}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "dothi", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
        check=False,
    )


def _role_password_hash(db_url: str) -> str | None:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (provision.READER_ROLE,)
        ).fetchone()
    return None if row is None else row[0]


def test_export_writes_grafana_provisioning(tmp_path: Path, db_url: str) -> None:
    home, out = tmp_path / "home", tmp_path / "grafana"
    env = {"DOTHI_DATABASE_URL": db_url, "DOTHI_HOME": str(home)}
    proc = run_dothi(
        "dashboards",
        "export",
        str(out),
        "--db-host",
        "db.internal:5433",
        "--dothi-url",
        "https://ioc.example.vn",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    secret = home / "secrets" / provision.SECRET_FILE
    password = secret.read_text(encoding="utf-8").strip()
    assert len(password) >= 24
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600

    ds_file = out / "provisioning" / "datasources" / "dothi.yaml"
    assert stat.S_IMODE(ds_file.stat().st_mode) == 0o600  # it holds the password
    ds_doc = yaml.safe_load(ds_file.read_text(encoding="utf-8"))
    assert ds_doc["apiVersion"] == 1
    (ds,) = ds_doc["datasources"]
    assert ds["type"] == dashboards.DATASOURCE_TYPE
    assert ds["uid"] == DATASOURCE_UID
    assert ds["url"] == "db.internal:5433"
    assert ds["user"] == "dothi_grafana"
    assert ds["jsonData"]["database"] == urlsplit(db_url).path.lstrip("/")
    assert ds["jsonData"]["timescaledb"] is True
    assert ds["secureJsonData"]["password"] == password

    provider = yaml.safe_load(
        (out / "provisioning" / "dashboards" / "dothi.yaml").read_text(encoding="utf-8")
    )
    (prov,) = provider["providers"]
    assert prov["type"] == "file"
    assert prov["folderUid"] == dashboards.FOLDER_UID
    assert prov["options"]["path"] == str((out / "dashboards").resolve())
    files = sorted(p.name for p in (out / "dashboards").iterdir())
    assert files == sorted(f"{uid}.json" for uid in DASHBOARDS)
    for uid, model in DASHBOARDS.items():
        assert json.loads((out / "dashboards" / f"{uid}.json").read_text(encoding="utf-8")) == model

    first_hash = _role_password_hash(db_url)
    assert first_hash is not None
    assert first_hash.startswith("SCRAM-SHA-256$")
    # Again: the same generated password, nothing else changes.
    assert run_dothi("dashboards", "export", str(out), env=env).returncode == 0
    assert secret.read_text(encoding="utf-8").strip() == password


def test_export_with_password_from_grafanas_environment(tmp_path: Path, db_url: str) -> None:
    env = {
        "DOTHI_DATABASE_URL": db_url,
        "DOTHI_HOME": str(tmp_path / "home"),
        "DOTHI_GRAFANA_DB_PASSWORD": "from-the-environment-1234",
    }
    out = tmp_path / "grafana"
    before = _role_password_hash(db_url)
    proc = run_dothi(
        "dashboards",
        "export",
        str(out),
        "--password-env",
        "DOTHI_GRAFANA_DB_PASSWORD",
        "--grafana-path",
        "/etc/dothi-grafana",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    ds_file = out / "provisioning" / "datasources" / "dothi.yaml"
    text = ds_file.read_text(encoding="utf-8")
    assert "from-the-environment-1234" not in text
    assert (
        yaml.safe_load(text)["datasources"][0]["secureJsonData"]["password"]
        == "${DOTHI_GRAFANA_DB_PASSWORD}"
    )
    assert stat.S_IMODE(ds_file.stat().st_mode) == 0o644
    provider = yaml.safe_load(
        (out / "provisioning" / "dashboards" / "dothi.yaml").read_text(encoding="utf-8")
    )
    assert provider["providers"][0]["options"]["path"] == "/etc/dothi-grafana/dashboards"
    assert not (tmp_path / "home" / "secrets").exists()  # the configured password is used
    assert _role_password_hash(db_url) != before


@pytest.mark.parametrize(
    "value",
    [
        {"a": "yes", "b": "no: really", "c": "# not a comment", "d": "Tỉnh Nam Định – “ok”"},
        {"list": [{"x": 1, "y": [True, None, 2.5]}, "plain", []], "empty": {}},
        {"multi": "line one\nline two", "quote": 'say "hi"', "dollar": "${VAR}"},
    ],
)
def test_to_yaml_round_trips(value: dict[str, Any]) -> None:
    assert yaml.safe_load(provision.to_yaml(value)) == value


def test_publish_is_idempotent(db_url: str, tmp_path: Path) -> None:
    env = {"DOTHI_DATABASE_URL": db_url, "DOTHI_HOME": str(tmp_path / "home")}
    with grafana_standin() as (url, state):
        first = run_dothi(
            "dashboards",
            "publish",
            "--url",
            url,
            "--token",
            ADMIN_TOKEN,
            "--dothi-url",
            "https://ioc.example.vn",
            env=env,
        )
        assert first.returncode == 0, first.stderr
        assert "data source: created" in first.stdout
        assert "folder dothi: created" in first.stdout
        for uid in DASHBOARDS:
            assert f"dashboard {uid}: created (version 1)" in first.stdout
        ds = state.datasources[DATASOURCE_UID]
        assert ds["user"] == "dothi_grafana"
        assert ds["type"] == dashboards.DATASOURCE_TYPE
        password = (
            (tmp_path / "home" / "secrets" / provision.SECRET_FILE)
            .read_text(encoding="utf-8")
            .strip()
        )
        assert ds["secureJsonData"]["password"] == password
        assert state.folders[dashboards.FOLDER_UID]["title"] == dashboards.FOLDER_TITLE
        for uid, model in DASHBOARDS.items():
            saved = state.dashboards[uid]
            assert saved["meta"]["folderUid"] == dashboards.FOLDER_UID
            assert {
                k: v for k, v in saved["dashboard"].items() if k not in ("id", "version")
            } == model

        again = run_dothi(
            "dashboards",
            "publish",
            "--url",
            url,
            "--token",
            ADMIN_TOKEN,
            "--dothi-url",
            "https://ioc.example.vn",
            env=env,
        )
        assert again.returncode == 0, again.stderr
        assert "folder dothi: unchanged" in again.stdout
        for uid in DASHBOARDS:
            assert f"dashboard {uid}: unchanged" in again.stdout
            assert state.dashboards[uid]["dashboard"]["version"] == 1
        assert len(state.datasources) == 1
        assert len(state.folders) == 1

        # Someone edited a dashboard in Grafana and renamed the folder: publishing restores both.
        state.dashboards["dothi-flood"]["dashboard"]["title"] = "sửa tay"
        state.folders[dashboards.FOLDER_UID]["title"] = "other"
        third = run_dothi(
            "dashboards",
            "publish",
            "--url",
            url,
            "--token",
            ADMIN_TOKEN,
            "--dothi-url",
            "https://ioc.example.vn",
            env=env,
        )
        assert third.returncode == 0, third.stderr
        assert "dashboard dothi-flood: updated (version 2)" in third.stdout
        assert "folder dothi: updated" in third.stdout
        assert (
            state.dashboards["dothi-flood"]["dashboard"]["title"]
            == DASHBOARDS["dothi-flood"]["title"]
        )


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("dothi: error: ")
    return lines[0]


def test_publish_errors_are_one_line(db_url: str, tmp_path: Path) -> None:
    from dothi.stack import free_port

    env = {"DOTHI_DATABASE_URL": db_url, "DOTHI_HOME": str(tmp_path / "home")}
    with grafana_standin() as (url, state):
        line = _one_line_error(
            run_dothi("dashboards", "publish", "--url", url, "--token", "wrong", env=env)
        )
        assert "refused the token (401 Unauthorized): check --token" in line
        line = _one_line_error(
            run_dothi("dashboards", "publish", "--url", url, "--token", VIEWER_TOKEN, env=env)
        )
        assert "may not create data sources (403 Forbidden)" in line
        line = _one_line_error(
            run_dothi(
                "dashboards",
                "publish",
                "--url",
                url + "/not-grafana",
                "--token",
                ADMIN_TOKEN,
                env=env,
            )
        )
        assert "does not look like Grafana" in line
        assert "check --url" in line
        assert state.datasources == {}
        assert state.dashboards == {}
    nowhere = f"http://127.0.0.1:{free_port()}"
    line = _one_line_error(
        run_dothi("dashboards", "publish", "--url", nowhere, "--token", ADMIN_TOKEN, env=env)
    )
    assert f"cannot reach Grafana at {nowhere}" in line
    line = _one_line_error(run_dothi("dashboards", "publish", "--url", nowhere, env=env))
    assert "no token" in line
