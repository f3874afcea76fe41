"""Storage: rollup queries against the raw hypertable, rollup upkeep, backfill, in one run.

Starts a private PostgreSQL+TimescaleDB, generates ``--days`` of 1-minute pm25 readings for
``--sensors`` sensors inside the database (generate_series), stores them day by day through the
writer's path (TEMP staging → INSERT … ON CONFLICT DO NOTHING → rollups.on_batch) and times how
long the rollups take to catch up (the backfill). Then, over repeated runs, p50/p95 of the
questions dashboards ask, each answered by store.queries and, in the same run, from the raw
hypertable with time_bucket; the on_batch overhead per 1,000-row batch; and the rollup upkeep
per minute of city data.

    python bench/storage_bench.py                           # quick: 100 sensors × 3 days
    python bench/storage_bench.py --sensors 1000 --days 30  # the full size (43 M rows)

The quick default (what ``make bench`` runs) takes well under a minute; the full size takes
30–40 minutes on a 2-core machine, most of it storing the readings and rolling them up. The
targets (issue #5) are p95 figures at the full size, so only a full-size run says "met" or "not
met". The Storage section of docs/benchmarks.md keeps the latest full-size run and the latest
smaller run apart: a run replaces only its own part.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    bench_home,
    median,
    percentile,
    read_section,
    remove,
    run_stamp,
    write_section,
)
from dothi.stack import Postgres, free_port
from store import migrate, queries, rollups
from store.loader import STAGING

if TYPE_CHECKING:
    from collections.abc import Callable

Conn = psycopg.Connection[Any]

# The size issue #5's targets are set for; smaller runs are reported apart and judge nothing.
FULL_SENSORS, FULL_DAYS = 1000, 30
FULL_HEADING = "### Full size"
SMALLER_HEADING = "### Smaller run"

# Ends on a UTC midnight (and 07:00 local) so the day tiers answer whole days.
END = datetime(2026, 11, 1, tzinfo=UTC)

# A plausible, deterministic pm25 signal: a daily cycle plus a per-sensor offset and jitter.
_VALUE = (
    "round((25 + (s %% 17) + 10 * sin(extract(epoch FROM t) / 13751.0)"
    " + ((s * 7919 + extract(epoch FROM t)::bigint / 60) %% 97) / 10.0)::numeric, 1)::float8"
)


@dataclass
class Figure:
    """One line of the result table."""

    name: str
    p50_ms: float
    p95_ms: float
    raw_p50_ms: float | None = None
    target_ms: float | None = None
    ratio_target: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return None if self.raw_p50_ms is None else self.raw_p50_ms / self.p50_ms

    def verdict(self) -> str:
        """Targets are p95 times (and the raw / rollup ratio of the medians)."""
        ok = []
        if self.target_ms is not None:
            ok.append(self.p95_ms <= self.target_ms)
        if self.ratio_target is not None and self.ratio is not None:
            ok.append(self.ratio >= self.ratio_target)
        if not ok:
            return ""
        return "met" if all(ok) else "**not met**"


# Runs before the timed ones: a connection's first queries fill its catalog caches and the
# buffer cache. The rollup helpers plan every call for its own parameters (never prepared: see
# store.queries.aggregate); the raw comparisons are prepared by psycopg from their 6th run.
# A dashboard's pooled connection is past all that, so the timings start after it.
WARMUP = 12


def _timed(fn: Callable[[], object], repeat: int, warmup: int = WARMUP) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def _sensor(i: int) -> str:
    return f"s{i:05d}"


def load(conn: Conn, sensors: int, days: int) -> tuple[int, float]:
    """Store the data day by day through the writer's path; returns (rows, seconds)."""
    start = END - timedelta(days=days)
    total = 0
    began = time.perf_counter()
    for d in range(days):
        day = start + timedelta(days=d)
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {STAGING} (device_id text, metric text,"
                " ts timestamptz, value double precision, quality smallint)"
                " ON COMMIT DELETE ROWS"
            )
            cur.execute(
                f"INSERT INTO {STAGING} SELECT 's' || lpad(s::text, 5, '0'), 'pm25', t, {_VALUE}, 1"
                " FROM generate_series(%(a)s::timestamptz, %(b)s, interval '1 minute') AS t,"
                " generate_series(0, %(n)s - 1) AS s",
                {"a": day, "b": day + timedelta(days=1) - timedelta(minutes=1), "n": sensors},
            )
            cur.execute(
                f"INSERT INTO readings (device_id, metric, ts, value, quality)"
                f" SELECT * FROM {STAGING} ON CONFLICT DO NOTHING"
            )
            total += cur.rowcount
            rollups.on_batch(cur, STAGING)
        print(f"  loaded day {d + 1}/{days}: {total:,} rows", flush=True)
    return total, time.perf_counter() - began


def live_minutes(conn: Conn, sensors: int, minutes: int) -> tuple[list[float], list[float]]:
    """Feed whole minutes of city data in 1,000-row batches, refreshing after each minute.

    Returns:
        (on_batch ms per 1,000-row batch, refresh ms per minute of data).
    """
    per_batch: list[float] = []
    per_minute: list[float] = []
    for m in range(minutes):
        ts = END + timedelta(minutes=m)
        for first in range(0, sensors, 1000):
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(
                    f"INSERT INTO {STAGING} SELECT 's' || lpad(s::text, 5, '0'), 'pm25',"
                    f" %(t)s::timestamptz AS t, 20.0, 1"
                    " FROM generate_series(%(a)s::integer, %(b)s::integer) AS s",
                    {"t": ts, "a": first, "b": min(first + 1000, sensors) - 1},
                )
                cur.execute(
                    f"INSERT INTO readings (device_id, metric, ts, value, quality)"
                    f" SELECT * FROM {STAGING} ON CONFLICT DO NOTHING"
                )
                t = time.perf_counter()
                rollups.on_batch(cur, STAGING)
                if min(first + 1000, sensors) - first == 1000:
                    per_batch.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        rollups.refresh(conn)
        per_minute.append((time.perf_counter() - t) * 1000)
    return per_batch, per_minute


def _raw_hourly(conn: Conn, ids: list[str], start: datetime) -> object:
    return conn.execute(
        "SELECT device_id, time_bucket('1 hour', ts) AS b, avg(value) FROM readings"
        " WHERE device_id = ANY(%s::text[]) AND metric = 'pm25' AND ts >= %s AND ts < %s"
        " GROUP BY 1, 2 ORDER BY 1, 2",
        (ids, start, END),
    ).fetchall()


def questions(conn: Conn, sensors: int, days: int, repeat: int, loads: list[float]) -> list[Figure]:
    """The dashboard questions; appends the 1-min load average after each one to ``loads``."""
    start = END - timedelta(days=days)
    one, ten = [_sensor(0)], [_sensor(i) for i in range(min(sensors, 10))]
    hour, day = timedelta(hours=1), timedelta(days=1)
    figures = []

    def check_source(rows: list[queries.AggRow], want: str) -> None:
        got = {r.source for r in rows}
        if got != {want}:
            raise SystemExit(f"expected answers from tier {want}, got {got}")

    check_source(queries.aggregate(conn, one, ["pm25"], start, END, hour), "1h")
    # Each series question twice: as columns (queries.series, what the API's /aggregates and
    # charts read) and as one AggRow object per bucket (queries.aggregate: analytics).
    for label, ids, target in ((f"1 sensor, {days}-day hourly avg", one, 3),
                               (f"10 sensors, {days}-day hourly avg", ten, 10)):  # fmt: skip
        ask = partial(queries.series, conn, ids, ["pm25"], start, END, hour)
        cols = _timed(ask, repeat)
        rows = _timed(partial(queries.aggregate, conn, ids, ["pm25"], start, END, hour), repeat)
        raw = _timed(partial(_raw_hourly, conn, ids, start), max(5, repeat // 10), warmup=3)
        for shape, times in (("as series", cols), ("as row objects", rows)):
            p50, p95 = median(times), percentile(times, 95)
            figures.append(Figure(f"{label}, {shape}", p50, p95, median(raw), target))
        loads.append(os.getloadavg()[0])

    def fleet() -> list[queries.AggRow]:
        return queries.aggregate(conn, None, ["pm25"], start, END, day, combine_devices=True)

    check_source(fleet(), "1d")
    q3 = _timed(fleet, repeat)
    r3 = _timed(
        lambda: conn.execute(
            "SELECT time_bucket('1 day', ts) AS b, avg(value) FROM readings"
            " WHERE metric = 'pm25' AND ts >= %s AND ts < %s GROUP BY 1 ORDER BY 1",
            (start, END),
        ).fetchall(),
        3,
        warmup=1,
    )
    figures.append(
        Figure(
            f"fleet-wide daily means, {days} days",
            median(q3),
            percentile(q3, 95),
            median(r3),
            50,
            ratio_target=50,
        )
    )
    loads.append(os.getloadavg()[0])
    q3b = _timed(lambda: queries.aggregate(conn, None, ["pm25"], start, END, day), repeat)
    figures.append(
        Figure(
            f"daily means per sensor, all {sensors} sensors, {days} days",
            median(q3b),
            percentile(q3b, 95),
            note=f"{sensors * days:,} rows returned",
        )
    )
    loads.append(os.getloadavg()[0])
    q4 = _timed(lambda: queries.latest(conn), repeat)
    r4 = _timed(
        lambda: conn.execute(
            "SELECT DISTINCT ON (device_id, metric) device_id, metric, ts, value, quality"
            " FROM readings ORDER BY device_id, metric, ts DESC"
        ).fetchall(),
        3,
        warmup=1,
    )
    figures.append(
        Figure(f"latest, all {sensors} sensors", median(q4), percentile(q4, 95), median(r4), 10)
    )
    loads.append(os.getloadavg()[0])
    return figures


def plain_vs_hypertable(conn: Conn, days: int, repeat: int) -> tuple[float, float]:
    """One sensor's hourly series from rollup_1h and from a plain-table copy of it (same SQL)."""
    conn.execute("CREATE TABLE bench_1h_plain (LIKE rollup_1h INCLUDING ALL)")
    conn.execute("INSERT INTO bench_1h_plain SELECT * FROM rollup_1h")
    conn.execute("VACUUM ANALYZE bench_1h_plain")
    start = END - timedelta(days=days)
    sql = (
        "SELECT bucket, sum / count FROM {} WHERE device_id = %s AND metric = 'pm25'"
        " AND bucket >= %s AND bucket < %s ORDER BY bucket"
    )
    args = (_sensor(0), start, END)
    hyper = _timed(lambda: conn.execute(sql.format("rollup_1h"), args).fetchall(), repeat)
    plain = _timed(lambda: conn.execute(sql.format("bench_1h_plain"), args).fetchall(), repeat)
    conn.execute("DROP TABLE bench_1h_plain")
    return median(hyper), median(plain)


def sizes(conn: Conn) -> dict[str, str]:
    out = {}
    for table in ("readings", "rollup_1m", "rollup_1h", "rollup_1d", "rollup_1d_local"):
        row = conn.execute(
            "SELECT pg_size_pretty(hypertable_size(%s::regclass))", (table,)
        ).fetchone()
        out[table] = str(row[0]) if row else "?"
    return out


def is_full(args: argparse.Namespace) -> bool:
    return bool(args.sensors >= FULL_SENSORS and args.days >= FULL_DAYS)


def report(
    figures: list[Figure],
    facts: list[tuple[str, str]],
    versions: str,
    args: argparse.Namespace,
) -> str:
    """One run's part of the Storage section: heading, stamp, command, tables."""
    full = is_full(args)
    rows = args.sensors * args.days * 1440
    if full:
        heading = f"{FULL_HEADING}: {args.sensors:,} sensors × {args.days} days ({rows:,} readings)"
        judged = "The targets are p95 times (and the raw / rollup ratio of the medians)."
    else:
        heading = (
            f"{SMALLER_HEADING}: {args.sensors:,} sensors × {args.days} days ({rows:,} readings)"
        )
        judged = (
            f"Targets apply at the full size ({FULL_SENSORS:,} sensors × {FULL_DAYS} days), so"
            " this run judges none: it shows the helpers still work and nothing grossly"
            " regressed."
        )
    lines = [
        heading,
        "",
        run_stamp(),
        "",
        (
            f"`python bench/storage_bench.py --sensors {args.sensors} --days {args.days}"
            f" --repeat {args.repeat}` — {args.sensors:,} sensors × {args.days} days of 1-minute"
            f" pm25 readings, {versions}. Query times are end to end from Python"
            " (psycopg, rows fetched and turned into the helper's result: `AggSeries` columns"
            " from `queries.series`, which the API's `/aggregates` uses, or one `AggRow` per bucket"
            " from `queries.aggregate`), p50/p95 over"
            f" {args.repeat} runs after {WARMUP} warm-ups (caches filled; see `WARMUP`);"
            " raw answers are the same question over"
            " `readings` with `time_bucket` (fewer runs when they take seconds). " + judged
        ),
        "",
        "| question | p50 ms | p95 ms | raw p50 ms | raw / rollup | target | |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for f in figures:
        raw = f"{f.raw_p50_ms:,.1f}" if f.raw_p50_ms is not None else "—"
        ratio = f"{f.ratio:,.0f}×" if f.ratio is not None else "—"
        target = []
        if f.target_ms is not None:
            target.append(f"p95 ≤ {f.target_ms:g} ms")
        if f.ratio_target is not None:
            target.append(f"≥ {f.ratio_target:g}×")
        note = f" ({f.note})" if f.note else ""
        lines.append(
            f"| {f.name}{note} | {f.p50_ms:.2f} | {f.p95_ms:.2f} | {raw} | {ratio}"
            f" | {', '.join(target) or '—'} | {f.verdict() if full else ''} |"
        )
    lines += ["", "| upkeep and storage | figure |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in facts]
    return "\n".join(lines)


def _parts(previous: str | None) -> dict[str, str]:
    """The full-size and smaller-run parts of the current Storage section, by heading.

    A section from before the parts existed (one run, no ``###`` headings) becomes the part
    its command line says it was.
    """
    if not previous:
        return {}
    found = {}
    for chunk in re.split(r"(?m)^(?=### )", previous):
        for heading in (FULL_HEADING, SMALLER_HEADING):
            if chunk.startswith(heading):
                found[heading] = chunk.strip()
    if not found and "### " not in previous:
        full = f"--sensors {FULL_SENSORS} --days {FULL_DAYS} " in previous
        heading = (
            f"{FULL_HEADING}: {FULL_SENSORS:,} sensors × {FULL_DAYS} days"
            if full
            else SMALLER_HEADING
        )
        found[FULL_HEADING if full else SMALLER_HEADING] = f"{heading}\n\n{previous.strip()}"
    return found


def section(previous: str | None, part: str, *, full: bool) -> str:
    """The Storage section with this run's part replaced and the other part kept."""
    parts = _parts(previous)
    parts[FULL_HEADING if full else SMALLER_HEADING] = part.strip()
    intro = (
        f"Issue #5's targets are judged on the full-size run ({FULL_SENSORS:,} sensors ×"
        f" {FULL_DAYS} days, `--sensors {FULL_SENSORS} --days {FULL_DAYS}`, 30–40 minutes)."
        " `make bench` runs the quick default size; its figures are reported apart and judge"
        " nothing. Each part says when and on what machine it ran; the machine is shared, so"
        " each part also gives the load average during its query timings."
    )
    body = [intro]
    body += [parts[h] for h in (FULL_HEADING, SMALLER_HEADING) if h in parts]
    return "\n\n".join(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sensors", type=int, default=100)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=50, help="timed runs per rollup question")
    parser.add_argument("--live-minutes", type=int, default=5, help="minutes of live upkeep")
    parser.add_argument("--no-write", action="store_true", help="do not update the docs")
    parser.add_argument("--keep", action="store_true", help="leave the cluster in /tmp")
    args = parser.parse_args()
    began = time.perf_counter()

    home = bench_home("storage")
    pg = Postgres(home, free_port(), fast=True)
    try:
        pg.start()
        url = pg.url()
        migrate.migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT current_setting('server_version'), extversion,"
                " current_setting('timescaledb.license')"
                " FROM pg_extension WHERE extname = 'timescaledb'"
            ).fetchone()
            versions = f"PostgreSQL {row[0]}, TimescaleDB {row[1]} ({row[2]})" if row else "?"
            print(f"{versions}; loading {args.sensors} sensors × {args.days} days", flush=True)
            rows, load_s = load(conn, args.sensors, args.days)
            t = time.perf_counter()
            stats = rollups.refresh(conn)
            backfill_s = time.perf_counter() - t
            print(f"  backfill rolled up in {backfill_s:.1f} s ({stats.rounds} rounds)", flush=True)
            conn.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load
            loads = [os.getloadavg()[0]]
            figures = questions(conn, args.sensors, args.days, args.repeat, loads)
            hyper_ms, plain_ms = plain_vs_hypertable(conn, args.days, args.repeat)
            batch_ms, minute_ms = live_minutes(conn, args.sensors, args.live_minutes)
            size = sizes(conn)
    finally:
        pg.stop()
        if not args.keep:
            remove(home)

    whole_s = time.perf_counter() - began
    facts = [
        ("whole run (load, roll-up, questions, upkeep)", f"{whole_s / 60:.1f} min"),
        ("rows loaded", f"{rows:,} in {load_s:.0f} s ({rows / load_s:,.0f} rows/s, writer path)"),
        (
            f"{args.days}-day backfill fully rolled up (all tiers)",
            f"{backfill_s:.1f} s ({rows / backfill_s:,.0f} raw rows/s, {stats.rounds} rounds)",
        ),
        (
            "on_batch overhead per 1,000-row batch (1,000 sensors, live)",
            f"p50 {median(batch_ms):.2f} ms, p95 {percentile(batch_ms, 95):.2f} ms"
            if batch_ms
            else "— (fewer than 1,000 sensors)",
        ),
        (
            f"refresh per minute of city data ({args.sensors:,} sensors)",
            f"p50 {median(minute_ms):.1f} ms, p95 {percentile(minute_ms, 95):.1f} ms",
        ),
        (
            "1 sensor hourly series, rollup_1h hypertable vs plain-table copy (same SQL)",
            f"{hyper_ms:.2f} ms vs {plain_ms:.2f} ms",
        ),
        *((f"size of {k}", v) for k, v in size.items()),
        (
            "1-min load average before the query timings, then after each question (shared machine)",
            f"{' → '.join(f'{x:.1f}' for x in loads)} on {os.cpu_count()} cores",
        ),
    ]
    body = report(figures, facts, versions, args)
    print()
    print(body)
    if not args.no_write:
        full = is_full(args)
        write_section("Storage", section(read_section("Storage"), body, full=full), stamp=False)
        print(f"\nrecorded in docs/benchmarks.md ({'full-size' if full else 'smaller-run'} part)")


if __name__ == "__main__":
    main()
