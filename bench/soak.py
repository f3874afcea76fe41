"""Soak: the platform under steady load with periodic faults; memory and latency must stay flat.

    make soak MINUTES=10        # or: python bench/soak.py --minutes 10

A private stack (PostgreSQL + Mosquitto) runs ingest (2 worker slots), rollup maintenance,
analytics and the API as separate processes. The load generator (`dothi simulate load`) publishes
at a fixed rate for the whole run while a fault injector SIGKILLs an ingest worker every
`--kill-every` seconds (restarting it under the same slot at once, as the supervisor does),
restarts PostgreSQL once in the middle, and restarts the API. Every 5 s the resident memory of
each service is sampled. At the end:

- reconciliation: unique readings stored = unique readings the generator had acknowledged;
- per service: RSS at start/end of the measured half and its slope (MB/min, least squares over
  the second half, after warm-up);
- publish → stored latency (database received_at − device timestamp) p50/p99 per minute, and
  the slope of the p99.
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
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import bench_home, remove, write_section
from dothi.stack import LocalStack, free_port
from store import areas, migrate


@dataclass
class Proc:
    name: str
    args: list[str]
    env: dict[str, str]
    popen: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    rss: list[tuple[float, float]] = field(default_factory=list)

    def start(self, log_dir: Path) -> None:
        out = (log_dir / f"{self.name}.log").open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "dothi", *self.args], env=self.env, stdout=out, stderr=out
        )
        out.close()

    def kill_and_restart(self, log_dir: Path) -> None:
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()
        self.restarts += 1
        self.start(log_dir)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def sample(self, t: float) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        try:
            for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    self.rss.append((t, int(line.split()[1]) / 1024))
        except FileNotFoundError:
            pass


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per minute."""
    if len(points) < 3:
        return float("nan")
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    var = sum((p[0] - mx) ** 2 for p in points)
    if var == 0:
        return float("nan")
    return sum((p[0] - mx) * (p[1] - my) for p in points) / var * 60


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--rate", type=float, default=1000, help="messages per second")
    ap.add_argument("--devices", type=int, default=2000)
    ap.add_argument("--kill-every", type=float, default=60, help="seconds between ingest kills")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    home = bench_home("soak")
    log_dir = home / "log"
    log_dir.mkdir()
    stack = LocalStack.at(home, free_port(), free_port())
    stack.start()
    db_url = stack.postgres.url()
    migrate.migrate(db_url)
    areas.load(db_url)
    base = {k: v for k, v in os.environ.items() if not k.startswith("DOTHI_")}
    base.update(DOTHI_DATABASE_URL=db_url, DOTHI_HOME=str(home), DOTHI_LOG_LEVEL="WARNING")
    ingest_env = {
        **base,
        "DOTHI_MQTT_URL": stack.mosquitto.url("ingest"),
        "DOTHI_INGEST_METRICS_PORT": "0",
    }
    procs = [
        Proc("ingest-0", ["ingest", "--slot", "0"], ingest_env),
        Proc("ingest-1", ["ingest", "--slot", "1"], ingest_env),
        Proc("maintenance", ["maintenance"], base),
        Proc(
            "analytics",
            ["analytics"],
            {**base, "DOTHI_MQTT_URL": stack.mosquitto.url("analytics")},
        ),
        Proc(
            "api",
            ["api"],
            {
                **base,
                "DOTHI_MQTT_URL": stack.mosquitto.url("analytics"),
                "DOTHI_API_PORT": str(free_port()),
            },
        ),
    ]
    for p in procs:
        p.start(log_dir)
    time.sleep(3)  # workers subscribed before the load starts
    duration = args.minutes * 60
    messages = int(args.rate * duration)
    load = subprocess.Popen(
        [sys.executable, "-m", "dothi", "simulate", "load", "--devices", str(args.devices),
         "--rate", str(args.rate), "--messages", str(messages), "--prefix", "soak-"],
        env={**base, "DOTHI_MQTT_URL": stack.mosquitto.url("simulator")},
        stdout=subprocess.PIPE, stderr=(log_dir / "load.log").open("ab"),
    )  # fmt: skip
    t0 = time.monotonic()
    events: list[str] = []
    stop = threading.Event()

    def sampler() -> None:
        while not stop.wait(5):
            t = time.monotonic() - t0
            for p in procs:
                p.sample(t)

    threading.Thread(target=sampler, daemon=True).start()
    next_kill = args.kill_every
    db_restarted = api_restarted = False
    slot = 0
    try:
        while load.poll() is None:
            time.sleep(0.5)
            t = time.monotonic() - t0
            if t >= next_kill:
                victim = procs[slot % 2]
                victim.kill_and_restart(log_dir)
                events.append(f"{t:.0f} s: SIGKILL {victim.name}, restarted")
                slot += 1
                next_kill += args.kill_every
            if not db_restarted and t >= duration / 2:
                stack.postgres.stop()
                time.sleep(5)
                stack.postgres.start()
                events.append(f"{t:.0f} s: PostgreSQL stopped for 5 s and restarted")
                db_restarted = True
            if not api_restarted and t >= duration * 0.75:
                api = procs[4]
                api.stop()
                api.start(log_dir)
                api.restarts += 1
                events.append(f"{t:.0f} s: API restarted")
                api_restarted = True
        out = load.stdout.read().decode() if load.stdout else ""
        summary = json.loads(out.strip().splitlines()[-1])
        # Let ingest finish what is queued.
        expected = int(summary.get("unique_keys", summary.get("readings", 0)))
        deadline = time.monotonic() + 300
        stored = 0
        while time.monotonic() < deadline:
            with psycopg.connect(db_url) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM readings WHERE device_id LIKE 'soak-%'"
                ).fetchone()
            stored = int(row[0]) if row else 0
            if stored >= expected:
                break
            time.sleep(1)
        with psycopg.connect(db_url) as conn:
            lat_rows = conn.execute(
                "SELECT floor(extract(epoch FROM ts - min(ts) OVER ()) / 60)::int AS minute,"
                " extract(epoch FROM received_at - ts) * 1000 FROM readings"
                " WHERE device_id LIKE 'soak-%'"
            ).fetchall()
            dupes = conn.execute(
                "SELECT count(*) - count(DISTINCT (device_id, metric, ts)) FROM readings"
            ).fetchone()
    finally:
        stop.set()
        for p in procs:
            p.stop()
        stack.stop()
        remove(home)

    per_minute: dict[int, list[float]] = defaultdict(list)
    for minute, ms in lat_rows:
        per_minute[int(minute)].append(float(ms))
    lat_table = []
    p99_points = []
    for minute in sorted(per_minute):
        vals = sorted(per_minute[minute])
        p50 = vals[len(vals) // 2]
        p99 = vals[min(len(vals) - 1, int(len(vals) * 0.99))]
        lat_table.append(f"| {minute} | {len(vals):,} | {p50:.0f} | {p99:.0f} |")
        p99_points.append((minute * 60.0, p99))
    rss_table = []
    for p in procs:
        half = [pt for pt in p.rss if pt[0] >= duration / 2]
        first = half[0][1] if half else float("nan")
        last = half[-1][1] if half else float("nan")
        rss_table.append(
            f"| {p.name} | {first:.0f} | {last:.0f} | {slope(half):+.2f} | {p.restarts} |"
        )
    ok = stored == expected and dupes is not None and dupes[0] == 0
    report = f"""
`python bench/soak.py --minutes {args.minutes:g} --rate {args.rate:g} --devices {args.devices}`:
{messages:,} messages at {args.rate:,.0f} msg/s from {args.devices:,} devices, QoS 1, while:
{"; ".join(events) or "no faults"}.

**Reconciliation:** {stored:,} unique readings stored of {expected:,} acknowledged to the
generator; {dupes[0] if dupes else "?"} duplicate rows — {"**clean**" if ok else "**MISMATCH**"}.

**Memory** (RSS over the second half of the run; a killed ingest worker restarts with a fresh
process, so its series starts again after each kill):

| service | RSS MB (start) | RSS MB (end) | slope MB/min | restarts |
|---|---|---|---|---|
{chr(10).join(rss_table)}

**Publish → stored latency** per minute of the run (includes the recovery after each fault):

| minute | readings | p50 ms | p99 ms |
|---|---|---|---|
{chr(10).join(lat_table)}

p99 slope over the run: {slope(p99_points):+.1f} ms/min.
"""
    print(report)
    if not args.no_write:
        write_section("Soak", report)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
