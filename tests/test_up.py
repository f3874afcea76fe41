"""`dothi up` as an operator runs it: embedded stack, services, data flowing, clean Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from dothi.stack import free_port
from tests.helpers import wait_for


def test_up_runs_the_city_and_ctrl_c_leaves_nothing_behind() -> None:
    home = Path(tempfile.mkdtemp(prefix="dothi-up-", dir="/tmp"))
    home.chmod(0o755)
    pg, mq, api = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTHI_")}
    env.update(
        DOTHI_HOME=str(home / "var"),
        DOTHI_PG_PORT=str(pg),
        DOTHI_MQTT_PORT=str(mq),
        DOTHI_API_PORT=str(api),
        DOTHI_INGEST_METRICS_PORT="0",
    )
    up = subprocess.Popen(
        [sys.executable, "-m", "dothi", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"postgresql://postgres@127.0.0.1:{pg}/dothi"

    def readings() -> int:
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                row = conn.execute("SELECT count(DISTINCT device_id) FROM readings").fetchone()
        except psycopg.Error:
            return 0
        return int(row[0]) if row else 0

    try:
        wait_for(lambda: readings() > 100, timeout=120, what="simulated devices in readings")
        status = subprocess.run(
            [sys.executable, "-m", "dothi", "status"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert status.returncode == 0, status.stdout + status.stderr
        for name in (
            "database",
            "broker",
            "ingest",
            "maintenance",
            "analytics",
            "api",
            "simulator",
        ):
            line = next(ln for ln in status.stdout.splitlines() if ln.startswith(name))
            assert " up " in line, status.stdout
    finally:
        up.send_signal(signal.SIGINT)
        out, _ = up.communicate(timeout=120)
    assert up.returncode == 0, out
    assert "Traceback" not in out
    time.sleep(0.5)
    leftovers = subprocess.run(
        ["pgrep", "-f", str(home)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert leftovers == [], f"processes left running: {leftovers}"
