"""Configuration errors and the CLI's behaviour as an operator sees it (real processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import load_settings
from dothi.stack import LocalStack


def run_dothi(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DOTHI_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "dothi", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("DOTHI_PG_PORT", "seventy", "DOTHI_PG_PORT"),
        ("DOTHI_PG_PORT", "70000", "DOTHI_PG_PORT"),
        ("DOTHI_DATABASE_URL", "mysql://x/y", "DOTHI_DATABASE_URL: Value error, must start with"),
        ("DOTHI_MQTT_URL", "http://broker", "DOTHI_MQTT_URL"),
        ("DOTHI_LOG_LEVEL", "LOUD", "DOTHI_LOG_LEVEL"),
        ("DOTHI_INGEST_UNKNOWN_DEVICES", "ignore", "DOTHI_INGEST_UNKNOWN_DEVICES"),
    ],
)
def test_invalid_config_is_one_line_exit_2(var: str, value: str, expected: str) -> None:
    proc = run_dothi("status", env={var: value})
    assert proc.returncode == 2
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_settings_from_toml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "dothi.toml"
    cfg.write_text('pg_port = 6543\nlog_level = "DEBUG"\n')
    monkeypatch.setenv("DOTHI_CONFIG", str(cfg))
    monkeypatch.setenv("DOTHI_LOG_LEVEL", "WARNING")  # environment wins over the file
    s = load_settings()
    assert s.pg_port == 6543
    assert s.log_level == "WARNING"
    assert s.db_url() == "postgresql://postgres@127.0.0.1:6543/dothi"


def test_malformed_toml_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "dothi.toml"
    cfg.write_text("pg_port = = 1\n")
    monkeypatch.setenv("DOTHI_CONFIG", str(cfg))
    with pytest.raises(ConfigError, match="invalid configuration file"):
        load_settings()


def test_broker_url_without_embedded_credentials_is_clear(tmp_path: Path) -> None:
    s = load_settings(home=tmp_path)
    with pytest.raises(ConfigError, match="no credential for MQTT role 'ingest'"):
        s.broker_url("ingest")


def test_status_reports_external_services(stack: LocalStack, db_url: str) -> None:
    proc = run_dothi(
        "status",
        env={"DOTHI_DATABASE_URL": db_url, "DOTHI_MQTT_URL": stack.mosquitto.url()},
    )
    assert proc.returncode == 0, proc.stderr
    assert "database    up" in proc.stdout
    assert "apache" in proc.stdout or "timescale" in proc.stdout
    assert "broker      up" in proc.stdout


def test_status_says_down_without_traceback(tmp_path: Path) -> None:
    from dothi.stack import free_port

    port = free_port()
    proc = run_dothi(
        "status",
        env={
            "DOTHI_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/x",
            "DOTHI_MQTT_URL": f"mqtt://127.0.0.1:{port}",
        },
    )
    assert proc.returncode == 1
    assert "database    DOWN" in proc.stdout
    assert "broker      DOWN" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_db_migrate_on_unreachable_database_is_one_line() -> None:
    from dothi.stack import free_port

    proc = run_dothi(
        "db", "migrate", env={"DOTHI_DATABASE_URL": f"postgresql://u@127.0.0.1:{free_port()}/x"}
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("dothi: error: database:")
    assert "Traceback" not in proc.stderr


def test_help_lists_commands() -> None:
    proc = run_dothi("--help")
    assert proc.returncode == 0
    for cmd in ("up", "status", "db", "areas", "stack"):
        assert cmd in proc.stdout


def test_json_log_lines(capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import logging

    from core.logs import setup_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    setup_logging("INFO", "json")
    try:
        logging.getLogger("dothi.test").info("stored %d readings", 5, extra={"batch": 3})
        line = capsys.readouterr().err.strip().splitlines()[-1]
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
    record = json.loads(line)
    assert record["message"] == "stored 5 readings"
    assert record["level"] == "INFO"
    assert record["logger"] == "dothi.test"
    assert record["batch"] == 3


def test_bench_lists_its_parts_and_refuses_an_unknown_one() -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "dothi", "bench", "--help"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert ok.returncode == 0
    for part in ("ingest", "storage", "api", "sta", "all"):
        assert f"  {part} " in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "dothi", "bench", "nope"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "unknown part 'nope'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_bench_runs_a_part_with_its_own_options() -> None:
    # --help reaches the benchmark's own parser: the part is found and run from bench/.
    proc = subprocess.run(
        [sys.executable, "-m", "dothi", "bench", "ingest", "--help"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "--live-max" in proc.stdout
