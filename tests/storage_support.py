"""Reference computations for the storage tests: what a fresh GROUP BY over raw readings says."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from store.tiers import COUNTER_METRICS, TIERS, Tier

RESET = "TRUNCATE readings, rollup_1m, rollup_1h, rollup_1d, rollup_1d_local, rollup_dirty, latest"

LOCAL = timedelta(hours=7)
ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)


def bucket_of(ts: datetime, width: timedelta, *, local: bool = False) -> datetime:
    """time_bucket in Python (origin Monday 2000-01-03, local: its local midnight)."""
    origin = ORIGIN - LOCAL if local else ORIGIN
    return ts - (ts - origin) % width


def step(prev: float | None, cur: float) -> float:
    """Counter increment with the reset rule of REFERENCE.md §5.2."""
    if prev is None:
        return 0.0
    return cur - prev if cur >= prev else cur


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


Key = tuple[str, str, datetime]


def raw_reference(conn: psycopg.Connection[Any], tier: Tier) -> dict[Key, tuple[Any, ...]]:
    """Per (device, metric, bucket) of ``tier``: count, sum, min, max, first, first_ts, last,
    last_ts, counter_inc — computed in Python from the raw rows."""
    rows = conn.execute(
        "SELECT device_id, metric, ts, value FROM readings ORDER BY device_id, metric, ts"
    ).fetchall()
    groups: dict[Key, list[tuple[datetime, float]]] = defaultdict(list)
    for device, metric, ts, value in rows:
        groups[device, metric, bucket_of(ts, tier.width, local=tier.local)].append((ts, value))
    out: dict[Key, tuple[Any, ...]] = {}
    for key, readings in groups.items():
        values = [v for _, v in readings]
        inc: float | None = None
        if key[1] in COUNTER_METRICS:
            inc = sum(step(p, c) for p, c in zip([None, *values[:-1]], values, strict=True))
        out[key] = (
            len(values),
            sum(values),
            min(values),
            max(values),
            values[0],
            readings[0][0],
            values[-1],
            readings[-1][0],
            inc,
        )
    return out


def tier_rows(conn: psycopg.Connection[Any], tier: Tier) -> dict[Key, tuple[Any, ...]]:
    rows = conn.execute(
        "SELECT device_id, metric, bucket, count, sum, min, max, first, first_ts, last, last_ts,"
        f" counter_inc FROM {tier.table}"
    ).fetchall()
    return {(r[0], r[1], r[2]): tuple(r[3:]) for r in rows}


def mismatches(conn: psycopg.Connection[Any], tier: Tier) -> list[str]:
    """Differences between a tier and the raw reference, as readable lines (empty: equal)."""
    want = raw_reference(conn, tier)
    have = tier_rows(conn, tier)
    problems = [f"{tier.name} missing {k}" for k in want.keys() - have.keys()]
    problems += [f"{tier.name} extra {k}: {have[k]}" for k in have.keys() - want.keys()]
    for key in want.keys() & have.keys():
        w, h = want[key], have[key]
        exact = (0, 2, 3, 4, 5, 6, 7)  # count, min, max, first, first_ts, last, last_ts
        if any(w[i] != h[i] for i in exact) or not close(w[1], h[1]) or not close(w[8], h[8]):
            problems.append(f"{tier.name} {key}: want {w}, have {h}")
    return problems


def all_mismatches(conn: psycopg.Connection[Any]) -> list[str]:
    return [line for tier in TIERS for line in mismatches(conn, tier)]
