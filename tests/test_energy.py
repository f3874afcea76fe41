"""store.energy: consumption from counters with resets, per device and per area."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import energy, rollups
from store.loader import Row, load_batch
from tests.storage_support import RESET, bucket_of, close, step

T0 = datetime(2026, 11, 2, tzinfo=UTC)
M, H, D = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)

# (seconds after T0, counter value): resets inside minute 0 (101 → 3), inside minute 1
# nowhere, and exactly across the minute-1/minute-2 boundary (6 → 2).
SERIES = [(0, 100.0), (30, 101.0), (50, 3.0), (70, 5.0), (110, 6.0), (120, 2.0), (150, 4.0)]
PER_MINUTE = {T0: 4.0, T0 + M: 3.0, T0 + 2 * M: 4.0}  # 1 + 3 | 2 + 1 | 2 + 2


def _load_series(conn: psycopg.Connection[Any], device: str = "m1") -> None:
    load_batch(conn, [(device, "energy", T0 + timedelta(seconds=s), v, 1) for s, v in SERIES])


def _kwh(rows: list[energy.Consumption]) -> dict[datetime, float]:
    return {r.bucket: r.kwh for r in rows}


@pytest.mark.parametrize("refreshed", [False, True], ids=["marked", "rolled-up"])
def test_resets_inside_a_bucket_and_across_a_boundary(fresh_db_url: str, refreshed: bool) -> None:
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        _load_series(conn)
        if refreshed:
            rollups.refresh(conn)
        per_minute = energy.device_consumption(conn, ["m1"], T0, T0 + H, M)
        hourly = energy.device_consumption(conn, ["m1"], T0, T0 + H, H)
        odd = energy.device_consumption(conn, ["m1"], T0, T0 + H, timedelta(seconds=90))
        later = energy.device_consumption(conn, ["m1"], T0 + M, T0 + H, M)
    assert _kwh(per_minute) == PER_MINUTE
    assert _kwh(hourly) == {T0: 11.0}
    # 90 s buckets: [0, 90) holds steps into 30, 50, 70 → 1 + 3 + 2; [90, 180) → 1 + 2 + 2.
    assert _kwh(odd) == {T0: 6.0, T0 + timedelta(seconds=90): 5.0}
    # A range starting later steps from the last reading before it (50 s, 3.0) into 70 s.
    assert _kwh(later) == {T0 + M: 3.0, T0 + 2 * M: 4.0}
    assert {r.source for r in per_minute} == {"1m"}
    assert {r.source for r in hourly} == {"1h"}
    assert {r.source for r in odd} == {"raw"}


def test_local_days_and_a_late_reading(fresh_db_url: str) -> None:
    local_midnight = T0 - timedelta(hours=7)
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        load_batch(
            conn,
            [
                ("m1", "energy", local_midnight - H, 10.0, 1),
                ("m1", "energy", local_midnight + H, 12.0, 1),
                ("m1", "energy", local_midnight + D + H, 20.0, 1),
            ],
        )
        rollups.refresh(conn)
        before = energy.device_consumption(
            conn, ["m1"], local_midnight, local_midnight + 2 * D, D, local_days=True
        )
        # A late reading that is a reset: 12 → 1 → 20 instead of 12 → 20.
        load_batch(conn, [("m1", "energy", local_midnight + 5 * H, 1.0, 1)])
        marked = energy.device_consumption(
            conn, ["m1"], local_midnight, local_midnight + 2 * D, D, local_days=True
        )
        rollups.refresh(conn)
        after = energy.device_consumption(
            conn, ["m1"], local_midnight, local_midnight + 2 * D, D, local_days=True
        )
    assert _kwh(before) == {local_midnight: 2.0, local_midnight + D: 8.0}
    assert _kwh(marked) == {local_midnight: 3.0, local_midnight + D: 19.0}
    assert _kwh(after) == _kwh(marked)
    assert {r.source for r in after} == {"1d_local"}


def _place(conn: psycopg.Connection[Any], device: str, area: str) -> None:
    conn.execute(
        "INSERT INTO devices (id, kind, area_id) VALUES (%s, 'meter', %s)"
        " ON CONFLICT (id) DO UPDATE SET area_id = EXCLUDED.area_id",
        (device, area),
    )


def test_area_totals_include_the_areas_below(fresh_db_url: str) -> None:
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        placements = {
            "hh-district": "hai-hau",  # on the district itself
            "hh-commune": "hai-hau-hai-dong",  # a commune of the district
            "hh-town": "hai-hau-yen-dinh",  # a town of the district
            "vb-town": "vu-ban-goi",  # another district
        }
        for device, area in placements.items():
            _place(conn, device, area)
        rows: list[Row] = []
        for n, device in enumerate(placements, start=1):
            rows += [
                (device, "energy", T0 + timedelta(minutes=i), float(n * i), 1) for i in range(61)
            ]
        load_batch(conn, rows)
        rollups.refresh(conn)
        district = energy.area_consumption(conn, "hai-hau", T0, T0 + D, H)
        commune = energy.area_consumption(conn, "hai-hau-hai-dong", T0, T0 + D, H)
        province = energy.area_consumption(conn, "nam-dinh", T0, T0 + D, H)
        nowhere = energy.area_consumption(conn, "my-loc", T0, T0 + D, H)
    # Device n rises by n per minute: 59 steps in the first hour, 1 step into the second.
    assert [(r.bucket, r.kwh, r.devices) for r in district] == [
        (T0, (1 + 2 + 3) * 59.0, 3),
        (T0 + H, (1 + 2 + 3) * 1.0, 3),
    ]
    assert [(r.kwh, r.devices) for r in commune] == [(2 * 59.0, 1), (2.0, 1)]
    assert [(r.kwh, r.devices) for r in province] == [(10 * 59.0, 4), (10.0, 4)]
    assert nowhere == []


def test_only_counter_metrics_are_accepted(db_url: str) -> None:
    with psycopg.connect(db_url) as conn, pytest.raises(ValueError, match="not a counter"):
        energy.device_consumption(conn, ["m1"], T0, T0 + D, H, metric="pm25")


# --- property: against a Python reference over the raw readings --------------------------------


def reference(
    readings: list[tuple[datetime, float]],
    start: datetime,
    end: datetime,
    interval: timedelta,
    *,
    local: bool,
) -> dict[datetime, float]:
    out: dict[datetime, float] = defaultdict(float)
    prev: float | None = None
    for ts, value in sorted(readings):
        if start <= ts < end:
            out[bucket_of(ts, interval, local=local)] += step(prev, value)
        if ts < end:
            prev = value
    return dict(out)


_readings = st.dictionaries(
    st.integers(0, 2 * 86400),
    st.one_of(st.integers(0, 50), st.integers(0, 5000)).map(float),  # small values: resets
    min_size=1,
    max_size=50,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    readings=_readings,
    late=_readings,
    interval=st.sampled_from([M, 10 * M, H, 6 * H, D, timedelta(seconds=100)]),
    local=st.booleans(),
    start_offset_h=st.integers(0, 20),
)
def test_property_consumption_equals_reference(  # noqa: PLR0917 (hypothesis)
    db_url: str,
    readings: dict[int, float],
    late: dict[int, float],
    interval: timedelta,
    local: bool,
    start_offset_h: int,
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(RESET)
        load_batch(
            conn, [("m", "energy", T0 + timedelta(seconds=s), v, 1) for s, v in readings.items()]
        )
        rollups.refresh(conn)
        load_batch(
            conn, [("m", "energy", T0 + timedelta(seconds=s), v, 1) for s, v in late.items()]
        )
        stored = conn.execute("SELECT ts, value FROM readings WHERE device_id = 'm'").fetchall()
        base = T0 - timedelta(hours=7) if local else T0
        start, end = base + timedelta(hours=start_offset_h), base + 2 * D
        have = _kwh(energy.device_consumption(conn, ["m"], start, end, interval, local_days=local))
    want = reference(stored, start, end, interval, local=local)
    assert have.keys() == want.keys()
    assert all(close(have[k], want[k]) for k in want), (have, want)
