"""store.queries: the tier chosen, and answers equal to a fresh GROUP BY over raw readings."""

from __future__ import annotations

import gc
import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import queries, rollups
from store.loader import Row, load_batch
from store.queries import choose_tier
from store.tiers import TIER_1H
from tests.storage_support import RESET, bucket_of, close

T0 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday, UTC midnight
H, D, M = timedelta(hours=1), timedelta(days=1), timedelta(minutes=1)
LOCAL_MIDNIGHT = T0 - timedelta(hours=7)  # 2026-11-01 17:00 UTC


@pytest.mark.parametrize(
    ("interval", "start", "end", "local", "tier"),
    [
        (D, T0, T0 + 7 * D, False, "1d"),
        (7 * D, T0, T0 + 14 * D, False, "1d"),
        (D, T0, T0 + 7 * D, True, "1h"),  # UTC midnight is 07:00 local: days do not tile
        (D, LOCAL_MIDNIGHT, LOCAL_MIDNIGHT + 7 * D, True, "1d_local"),
        (D, LOCAL_MIDNIGHT, LOCAL_MIDNIGHT + 7 * D, False, "1h"),
        (6 * H, T0, T0 + D, False, "1h"),
        (H, T0 + 30 * M, T0 + D, False, "1m"),  # a start inside an hour
        (15 * M, T0, T0 + D, False, "1m"),
        (7 * M, T0, T0 + D, False, "1m"),  # 7 min is whole minutes: exact from 1 min
        (D, T0 + timedelta(seconds=30), T0 + D, False, None),  # not even minute-aligned
        (timedelta(seconds=90), T0, T0 + D, False, None),
        (timedelta(seconds=30), T0, T0 + D, False, None),
    ],
)
def test_choose_tier_takes_the_coarsest_exact_tier(
    interval: timedelta, start: datetime, end: datetime, local: bool, tier: str | None
) -> None:
    chosen = choose_tier(interval, start, end, local_days=local)
    assert (chosen.name if chosen else None) == tier


def test_bad_arguments_are_refused(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        with pytest.raises(ValueError, match="unknown aggregate"):
            queries.aggregate(conn, None, None, T0, T0 + D, H, ("median",))  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="timezone-aware"):
            queries.aggregate(conn, None, None, T0.replace(tzinfo=None), T0 + D, H)
        with pytest.raises(ValueError, match="empty range"):
            queries.aggregate(conn, None, None, T0, T0, H)
        with pytest.raises(ValueError, match="whole number of seconds"):
            queries.aggregate(conn, None, None, T0, T0 + D, timedelta(milliseconds=1500))


# --- the reference: the same question over raw readings, in Python ------------------------------

Ref = dict[tuple[str | None, str, datetime], dict[str, float | None]]


def raw_answer(
    conn: psycopg.Connection[Any],
    start: datetime,
    end: datetime,
    interval: timedelta,
    *,
    local: bool,
    combine: bool,
    devices: list[str] | None = None,
    metrics: list[str] | None = None,
) -> Ref:
    rows = conn.execute(
        "SELECT device_id, metric, ts, value FROM readings WHERE ts >= %s AND ts < %s ORDER BY ts",
        (start, end),
    ).fetchall()
    groups: dict[tuple[str | None, str, datetime], list[float]] = defaultdict(list)
    for device, metric, ts, value in rows:
        if (devices is not None and device not in devices) or (
            metrics is not None and metric not in metrics
        ):
            continue
        key = (None if combine else device, metric, bucket_of(ts, interval, local=local))
        groups[key].append(value)
    return {
        k: {
            "count": float(len(v)),
            "sum": sum(v),
            "min": min(v),
            "max": max(v),
            "avg": sum(v) / len(v),
            "first": v[0],
            "last": v[-1],
        }
        for k, v in groups.items()
    }


def helper_answer(rows: list[queries.AggRow]) -> Ref:
    return {(r.device_id, r.metric, r.bucket): dict(r.values) for r in rows}


def assert_same(have: Ref, want: Ref) -> None:
    assert have.keys() == want.keys()
    for key, values in want.items():
        for name, value in values.items():
            got = have[key][name]
            assert close(got, value), (key, name, got, value)


ALL: tuple[queries.Func, ...] = ("count", "sum", "min", "max", "avg", "first", "last")


def _load(conn: psycopg.Connection[Any]) -> None:
    conn.execute(RESET)
    rows: list[Row] = []
    for i in range(2 * 24 * 60 // 7):  # two days, a reading every 7 minutes
        ts = LOCAL_MIDNIGHT + timedelta(minutes=7 * i, seconds=i % 50)
        rows.append(("a", "pm25", ts, float(i % 31), 1))
        rows.append(("b", "pm25", ts + timedelta(seconds=3), float(i % 17) / 3, 1))
        rows.append(("a", "temperature", ts, 20 + (i % 11) / 10, 1))
    load_batch(conn, rows)


CASES = [
    (M, LOCAL_MIDNIGHT, LOCAL_MIDNIGHT + D, False, "1m"),
    (7 * M, LOCAL_MIDNIGHT, LOCAL_MIDNIGHT + D, False, "1m"),
    (15 * M, T0, T0 + D, False, "1m"),
    (H, LOCAL_MIDNIGHT, LOCAL_MIDNIGHT + 2 * D, False, "1h"),
    (6 * H, T0, T0 + D, True, "1h"),
    (D, T0 - D, T0 + D, False, "1d"),
    (D, LOCAL_MIDNIGHT, LOCAL_MIDNIGHT + 2 * D, True, "1d_local"),
    (7 * D, T0 - 7 * D, T0 + 7 * D, False, "1d"),
    (timedelta(seconds=90), T0, T0 + 6 * H, False, "raw"),
]


@pytest.mark.parametrize("combine", [False, True])
@pytest.mark.parametrize(("interval", "start", "end", "local", "source"), CASES)
def test_answers_equal_raw_and_name_their_tier(  # noqa: PLR0917 (parametrized)
    db_url: str,
    interval: timedelta,
    start: datetime,
    end: datetime,
    local: bool,
    source: str,
    combine: bool,
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        _load(conn)
        rollups.refresh(conn)
        rows = queries.aggregate(
            conn, None, None, start, end, interval, ALL, local, combine_devices=combine
        )
        assert rows
        assert {r.source for r in rows} == {source}
        assert_same(
            helper_answer(rows),
            raw_answer(conn, start, end, interval, local=local, combine=combine),
        )
        keys = [(r.device_id or "", r.metric, r.bucket) for r in rows]
        assert keys == sorted(keys)


def test_stale_buckets_come_from_raw_until_refreshed(db_url: str) -> None:
    start, end = LOCAL_MIDNIGHT, LOCAL_MIDNIGHT + 2 * D
    with psycopg.connect(db_url, autocommit=True) as conn:
        _load(conn)
        rollups.refresh(conn)
        late = LOCAL_MIDNIGHT + timedelta(hours=5, minutes=2, seconds=1)
        load_batch(conn, [("a", "pm25", late, 999.0, 1)])
        rows = queries.aggregate(conn, ["a", "b"], ["pm25"], start, end, H, ALL)
        by_key = {(r.device_id, r.bucket): r for r in rows}
        assert by_key["a", late.replace(minute=0, second=0)].source == "raw"
        assert by_key["a", late.replace(minute=0, second=0)].values["max"] == 999.0
        assert by_key["b", late.replace(minute=0, second=0)].source == "1h"  # other device
        assert {r.source for r in rows if r.bucket != late.replace(minute=0, second=0)} == {"1h"}
        want = raw_answer(conn, start, end, H, local=False, combine=False)
        assert_same(helper_answer(rows), {k: v for k, v in want.items() if k[1] == "pm25"})
        rollups.refresh(conn)
        after = queries.aggregate(conn, ["a", "b"], ["pm25"], start, end, H, ALL)
        assert {r.source for r in after} == {"1h"}
        assert_same(helper_answer(after), helper_answer(rows))


def test_a_bucket_whose_readings_were_deleted_disappears(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        _load(conn)
        rollups.refresh(conn)
        lo, hi = T0 + 3 * H, T0 + 4 * H
        conn.execute(
            "DELETE FROM readings WHERE device_id = 'a' AND ts >= %s AND ts < %s", (lo, hi)
        )
        conn.execute(
            "INSERT INTO rollup_dirty (device_id, metric, lo, hi)"
            " SELECT 'a', m, %s, %s FROM unnest(ARRAY['pm25', 'temperature']) AS m",
            (lo, hi - M),
        )
        rows = queries.aggregate(conn, ["a"], None, T0, T0 + D, H, ("count",))
        assert lo not in {r.bucket for r in rows}
        assert_same(
            helper_answer(rows),
            {
                k: {"count": v["count"]}
                for k, v in raw_answer(conn, T0, T0 + D, H, local=False, combine=False).items()
                if k[0] == "a"
            },
        )


def test_funcs_select_the_values_returned(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        _load(conn)
        rollups.refresh(conn)
        rows = queries.aggregate(conn, ["a"], ["pm25"], T0, T0 + D, D, ("max", "count"))
        none = queries.aggregate(conn, ["a"], ["pm25"], T0, T0 + D, D, ())
    assert [set(r.values) for r in rows] == [{"max", "count"}]
    assert [r.values for r in none] == [{}]
    assert none[0].count == rows[0].count > 0


@pytest.mark.parametrize(("interval", "start", "end"), [(H, T0, T0 + D), (6 * H, T0, T0 + D)])
def test_lists_in_any_order_with_repeats_answer_each_series_once(
    db_url: str, interval: timedelta, start: datetime, end: datetime
) -> None:
    """Listed devices and metrics are read one series at a time: order and repeats in the
    lists change nothing, and rows still come ordered by device, metric and bucket."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        _load(conn)
        rollups.refresh(conn)
        want = helper_answer(queries.aggregate(conn, None, None, start, end, interval, ALL))
        for devices, metrics in [
            (["b", "a", "b", "nobody"], None),
            (["b", "a", "a"], ["temperature", "pm25", "temperature", "co2"]),
        ]:
            rows = queries.aggregate(conn, devices, metrics, start, end, interval, ALL)
            keys = [(r.device_id or "", r.metric, r.bucket) for r in rows]
            assert keys == sorted(set(keys))
            assert {r.source for r in rows} == {"1h"}
            assert_same(helper_answer(rows), want)


def test_the_garbage_collector_is_left_as_it_was(db_url: str) -> None:
    """aggregate pauses the cyclic collector while it builds rows, and only then."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        _load(conn)
        rollups.refresh(conn)
        assert gc.isenabled()
        assert queries.aggregate(conn, ["a"], ["pm25"], T0, T0 + D, H)
        assert gc.isenabled()
        gc.disable()
        try:
            assert queries.aggregate(conn, ["a"], ["pm25"], T0, T0 + D, H)
            assert not gc.isenabled()
        finally:
            gc.enable()


def test_unknown_device_gives_nothing(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert queries.aggregate(conn, ["nobody"], ["pm25"], T0, T0 + D, H) == []


def test_latest_filters_by_device_and_metric(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(RESET)
        load_batch(
            conn,
            [
                ("a", "pm25", T0, 1.0, 1),
                ("a", "pm25", T0 + H, 2.0, 3),
                ("a", "temperature", T0, 30.0, 1),
                ("b", "pm25", T0 - H, 5.0, 1),
            ],
        )
        every = queries.latest(conn)
        only_a = queries.latest(conn, ["a"], ["pm25"])
    assert [(r.device_id, r.metric, r.value) for r in every] == [
        ("a", "pm25", 2.0),
        ("a", "temperature", 30.0),
        ("b", "pm25", 5.0),
    ]
    assert only_a == [queries.LatestRow("a", "pm25", T0 + H, 2.0, 3)]


def test_device_list_binds_with_a_cast_and_uses_the_index(db_url: str) -> None:
    """ENVIRONMENT.md: an uncast list parameter can skip an index; the helper casts."""
    sql = queries._query(
        TIER_1H, H, ["sum"], local=False, devices=True, metrics=True, combine=False
    )
    assert "%(devices)s::text[]" in sql
    params = {"start": T0, "end": T0 + D, "devices": ["a"], "metrics": ["pm25"]}
    with psycopg.connect(db_url, autocommit=True) as conn:
        _load(conn)
        rollups.refresh(conn)
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.execute(f"EXPLAIN {sql}", params).fetchall())
    assert "rollup_1h_pkey" in plan, plan


def test_a_series_is_read_from_the_covering_key_alone(fresh_db_url: str) -> None:
    """The hour tier's key includes every column (migration 0050): a series query is an
    index-only scan, whatever the heap order, once vacuum has marked the pages visible."""
    sql = queries._query(
        TIER_1H,
        H,
        ["sum / nullif(count, 0)"],
        local=False,
        devices=True,
        metrics=True,
        combine=False,
    )
    params = {"start": T0, "end": T0 + 30 * D, "devices": ["s0", "s1"], "metrics": ["pm25"]}
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        _hours(conn, sensors=50, days=30)
        plan = "\n".join(r[0] for r in conn.execute(f"EXPLAIN ANALYZE {sql}", params).fetchall())
    assert "Index Only Scan using" in plan, plan
    assert "rollup_1h_pkey" in plan, plan
    assert "Heap Fetches: 0" in plan, plan


def test_repeated_questions_keep_a_plan_for_their_own_parameters(fresh_db_url: str) -> None:
    """psycopg prepares a statement run five times; PostgreSQL may then switch it to a generic
    plan, costed without the parameters. For a device list and time range that plan scanned
    every sensor's buckets in the range (~200 ms instead of ~10 ms at 1,000 sensors): the
    helpers plan each call for its own parameters."""
    start, end = T0, T0 + 30 * D
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        _hours(conn, sensors=200, days=30)
        for _ in range(12):
            rows = queries.aggregate(conn, ["s0", "s1"], ["pm25"], start, end, H)
            assert len(rows) == 2 * 30 * 24
        generic = conn.execute(
            "SELECT statement, generic_plans FROM pg_prepared_statements WHERE generic_plans > 0"
        ).fetchall()
    assert generic == []


def _hours(conn: psycopg.Connection[Any], *, sensors: int, days: int) -> None:
    """Hour-tier rows written hour by hour, all sensors interleaved (as refresh writes them live),
    then vacuumed and analysed as autovacuum would."""
    conn.execute(
        "INSERT INTO rollup_1h SELECT 's' || s, 'pm25', b, 60, 1800.0, 10, 50, 30, b, 31,"
        " b + interval '59 minutes', NULL"
        " FROM generate_series(%s::timestamptz, %s::timestamptz - interval '1 hour',"
        "                      interval '1 hour') AS b, generate_series(0, %s - 1) AS s"
        " ORDER BY b, s",
        (T0, T0 + days * D, sensors),
    )
    conn.execute("VACUUM ANALYZE rollup_1h")


# --- property: any data, any pending marks, any interval --------------------------------------

_INTERVALS = [M, 5 * M, 7 * M, H, 3 * H, D, timedelta(seconds=45)]

# Device and metric lists take other SQL shapes than None (a LATERAL per listed series); a
# repeated id and an unknown one must change nothing.
_DEVICE_LISTS = [None, ["d1"], ["d2", "d0", "d0", "nobody"]]
_METRIC_LISTS = [None, ["pm25"], ["temperature", "pm25"]]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    offsets=st.lists(st.integers(0, 3 * 86400), min_size=1, max_size=40),
    late=st.lists(st.integers(0, 3 * 86400), max_size=10),
    interval=st.sampled_from(_INTERVALS),
    local=st.booleans(),
    combine=st.booleans(),
    start_day=st.integers(0, 1),
    devices=st.sampled_from(_DEVICE_LISTS),
    metrics=st.sampled_from(_METRIC_LISTS),
    funcs=st.sampled_from([ALL, ("avg",), ("max", "count"), ()]),
)
def test_property_answers_equal_raw_with_pending_marks(  # noqa: PLR0917 (hypothesis)
    db_url: str,
    offsets: list[int],
    late: list[int],
    interval: timedelta,
    local: bool,
    combine: bool,
    start_day: int,
    devices: list[str] | None,
    metrics: list[str] | None,
    funcs: tuple[queries.Func, ...],
) -> None:
    base = LOCAL_MIDNIGHT if local else T0

    def reading(o: int, value: float) -> Row:
        # One reading in seven is a temperature one: two metrics per device.
        return (f"d{o % 3}", "temperature" if o % 7 == 0 else "pm25", T0 + timedelta(seconds=o),
                value, 1)  # fmt: skip

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(RESET)
        load_batch(conn, [reading(o, float(o % 97)) for o in offsets])
        rollups.refresh(conn)
        # Late readings stay marked, not refreshed: the helper must answer them from raw.
        load_batch(conn, [reading(o, -float(o % 89)) for o in late])
        start, end = base + start_day * D, base + 3 * D
        rows = queries.aggregate(
            conn, devices, metrics, start, end, interval, funcs, local, combine_devices=combine
        )
        columns = queries.series(
            conn, devices, metrics, start, end, interval, funcs, local, combine_devices=combine
        )
        want = raw_answer(
            conn, start, end, interval, local=local, combine=combine, devices=devices,
            metrics=metrics,
        )  # fmt: skip
    assert_same(helper_answer(rows), {k: {f: v[f] for f in funcs} for k, v in want.items()})
    assert all(r.count == want[r.device_id, r.metric, r.bucket]["count"] for r in rows)
    assert all(set(r.values) == set(funcs) for r in rows)
    assert all(not math.isnan(r.values.get("avg") or 0.0) for r in rows)
    keys = [(r.device_id or "", r.metric, r.bucket) for r in rows]
    assert keys == sorted(set(keys))  # ordered, and each bucket once
    # The columnar answer holds the same buckets, values and sources, one series per key.
    assert flatten(columns, funcs) == rows
    assert len({(c.device_id, c.metric) for c in columns}) == len(columns)


def flatten(columns: list[queries.AggSeries], funcs: tuple[str, ...]) -> list[queries.AggRow]:
    return [
        queries.AggRow(b, c.device_id, c.metric, n, {f: c.values[f][i] for f in funcs}, src)
        for c in columns
        for i, (b, n, src) in enumerate(zip(c.buckets, c.counts, c.sources, strict=True))
    ]


def test_series_answer_stale_buckets_from_raw_within_their_series(db_url: str) -> None:
    start, end = LOCAL_MIDNIGHT, LOCAL_MIDNIGHT + 2 * D
    with psycopg.connect(db_url, autocommit=True) as conn:
        _load(conn)
        rollups.refresh(conn)
        # A late reading in one hour of "a" pm25, and a first reading of a new device.
        late = LOCAL_MIDNIGHT + 5 * H + 30 * M
        load_batch(conn, [("a", "pm25", late, 1000.0, 1), ("z", "pm25", late, 7.0, 1)])
        cols = queries.series(conn, ["a", "z"], ["pm25"], start, end, H, ("max", "count"))
    assert [(c.device_id, c.metric) for c in cols] == [("a", "pm25"), ("z", "pm25")]
    a, z = cols
    assert a.buckets == sorted(a.buckets)
    assert len(a.buckets) == 48
    hour = a.buckets.index(LOCAL_MIDNIGHT + 5 * H)
    assert a.sources[hour] == "raw"
    assert a.values["max"][hour] == 1000.0
    assert {s for i, s in enumerate(a.sources) if i != hour} == {"1h"}
    assert z.buckets == [LOCAL_MIDNIGHT + 5 * H]
    assert z.sources == ["raw"]
    assert z.counts == [1]
    assert z.values == {"max": [7.0], "count": [1.0]}


def test_repeated_functions_are_refused(db_url: str) -> None:
    with (
        psycopg.connect(db_url) as conn,
        pytest.raises(ValueError, match="repeated"),
    ):
        queries.series(conn, None, None, T0, T0 + D, H, ("avg", "avg"))
