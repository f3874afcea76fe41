"""Rollup tiers: on_batch marks, refresh exactness under late and duplicate data, concurrency."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import migrate, rollups
from store.loader import Row, load_batch
from store.maintenance import edition, run_maintenance
from store.retention import RetentionPolicy
from tests.storage_support import RESET, all_mismatches

T0 = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)


def test_on_batch_marks_dirty_ranges_per_day_and_updates_latest(fresh_db_url: str) -> None:
    with psycopg.connect(fresh_db_url) as conn:
        rows = [
            ("d1", "pm25", T0 + timedelta(seconds=10), 1.0, 1),
            ("d1", "pm25", T0 + timedelta(minutes=5, seconds=1), 2.0, 1),
            ("d1", "pm25", T0 - timedelta(days=3), 9.0, 1),  # late: another UTC day
            ("d2", "temperature", T0, 25.0, 3),
        ]
        assert load_batch(conn, rows) == 4
        assert load_batch(conn, rows) == 0  # redelivery: nothing new, marks are harmless
        dirty = conn.execute(
            "SELECT DISTINCT device_id, metric, lo, hi FROM rollup_dirty ORDER BY 1, 2, 3"
        ).fetchall()
        latest = conn.execute(
            "SELECT device_id, metric, ts, value, quality FROM latest ORDER BY 1, 2"
        ).fetchall()
    assert dirty == [
        ("d1", "pm25", T0 - timedelta(days=3), T0 - timedelta(days=3)),
        ("d1", "pm25", T0, T0 + timedelta(minutes=5)),
        ("d2", "temperature", T0, T0),
    ]
    assert latest == [
        ("d1", "pm25", T0 + timedelta(minutes=5, seconds=1), 2.0, 1),
        ("d2", "temperature", T0, 25.0, 3),
    ]


def test_latest_ignores_older_readings(fresh_db_url: str) -> None:
    with psycopg.connect(fresh_db_url) as conn:
        load_batch(conn, [("d1", "pm25", T0, 5.0, 1)])
        load_batch(conn, [("d1", "pm25", T0 - timedelta(hours=1), 7.0, 1)])
        row = conn.execute("SELECT ts, value FROM latest WHERE device_id = 'd1'").fetchone()
    assert row == (T0, 5.0)


def _batch_then_fail(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE stg (device_id text, metric text, ts timestamptz,"
            " value float8, quality smallint)"
        )
        cur.execute("INSERT INTO stg VALUES ('d1', 'pm25', %s, 1, 1)", (T0,))
        rollups.on_batch(cur, "stg")
        cur.execute("SELECT 1 / 0")


def test_on_batch_rolls_back_with_the_batch(fresh_db_url: str) -> None:
    with psycopg.connect(fresh_db_url) as conn:
        with pytest.raises(psycopg.errors.DivisionByZero):
            _batch_then_fail(conn)
        assert conn.execute("SELECT count(*) FROM rollup_dirty").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM latest").fetchone() == (0,)


def test_refresh_builds_every_tier_and_clears_the_marks(fresh_db_url: str) -> None:
    start = datetime(2026, 11, 3, 16, 50, tzinfo=UTC)  # crosses local midnight (17:00 UTC)
    rows: list[Row] = [
        ("d1", "pm25", start + timedelta(seconds=37 * i), float(i % 13), 1) for i in range(400)
    ]
    rows += [
        ("m1", "energy", start + timedelta(seconds=29 * i), float(i % 70), 1) for i in range(400)
    ]
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        load_batch(conn, rows)
        stats = rollups.refresh(conn)
        assert all_mismatches(conn) == []
        assert conn.execute("SELECT count(*) FROM rollup_dirty").fetchone() == (0,)
        local_days = conn.execute(
            "SELECT DISTINCT bucket FROM rollup_1d_local ORDER BY 1"
        ).fetchall()
        assert rollups.refresh(conn).rounds == 0
    assert stats.ranges == 2
    assert stats.marks == 2
    assert stats.rows["1m"] > 0
    assert [r[0] for r in local_days] == [
        datetime(2026, 11, 2, 17, tzinfo=UTC),
        datetime(2026, 11, 3, 17, tzinfo=UTC),
    ]


def test_late_reading_reaggregates_every_tier(fresh_db_url: str) -> None:
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        load_batch(conn, [("d1", "pm25", T0 + timedelta(minutes=i), 10.0, 1) for i in range(120)])
        rollups.refresh(conn)
        load_batch(conn, [("d1", "pm25", T0 + timedelta(minutes=3, seconds=30), 1000.0, 1)])
        rollups.refresh(conn)
        assert all_mismatches(conn) == []
        day = conn.execute("SELECT count, max FROM rollup_1d WHERE device_id = 'd1'").fetchone()
    assert day == (121, 1000.0)


def test_raw_deleted_by_hand_and_marked_removes_the_buckets(fresh_db_url: str) -> None:
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        load_batch(conn, [("d1", "pm25", T0 + timedelta(minutes=i), 1.0, 1) for i in range(90)])
        rollups.refresh(conn)
        conn.execute("DELETE FROM readings WHERE ts >= %s", (T0 + timedelta(minutes=60),))
        conn.execute(
            "INSERT INTO rollup_dirty (device_id, metric, lo, hi) VALUES ('d1', 'pm25', %s, %s)",
            (T0 + timedelta(minutes=60), T0 + timedelta(minutes=89)),
        )
        rollups.refresh(conn)
        assert all_mismatches(conn) == []
        assert conn.execute("SELECT count(*) FROM rollup_1h").fetchone() == (1,)


def test_refresh_refuses_a_connection_inside_a_transaction(fresh_db_url: str) -> None:
    with psycopg.connect(fresh_db_url) as conn:
        conn.execute("SELECT 1")
        with pytest.raises(ValueError, match="outside any transaction"):
            rollups.refresh(conn)


def test_marks_committed_during_a_refresh_are_not_lost(fresh_db_url: str) -> None:
    """The race a unique dirty key with ON CONFLICT DO NOTHING would lose.

    Batch B2 (same minute as B1) is in flight while a refresh consumes B1's mark; B2 commits
    only after the refresh. B2's own mark must survive and the next refresh pick it up.
    """
    with (
        psycopg.connect(fresh_db_url, autocommit=True) as ingest,
        psycopg.connect(fresh_db_url, autocommit=True) as other,
        psycopg.connect(fresh_db_url, autocommit=True) as refresher,
    ):
        load_batch(ingest, [("d1", "pm25", T0 + timedelta(seconds=1), 1.0, 1)])
        with other.transaction(), other.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE stg (device_id text, metric text, ts timestamptz,"
                " value float8, quality smallint)"
            )
            cur.execute(
                "INSERT INTO stg VALUES ('d1', 'pm25', %s, 50, 1)", (T0 + timedelta(seconds=2),)
            )
            cur.execute(
                "INSERT INTO readings (device_id, metric, ts, value, quality) SELECT * FROM stg"
            )
            rollups.on_batch(cur, "stg")
            # The refresh runs while B2 is uncommitted, and must not wait for it.
            refresher.execute("SET statement_timeout = '5s'")
            first = rollups.refresh(refresher)
            assert first.marks == 1
        rollups.refresh(refresher)
        assert all_mismatches(refresher) == []
        assert refresher.execute("SELECT count FROM rollup_1m").fetchone() == (2,)


def test_ingest_never_waits_for_a_refresh_holding_the_marks(fresh_db_url: str) -> None:
    with (
        psycopg.connect(fresh_db_url, autocommit=True) as ingest,
        psycopg.connect(fresh_db_url, autocommit=True) as refresher,
    ):
        load_batch(ingest, [("d1", "pm25", T0, 1.0, 1)])
        with refresher.transaction():
            # What a refresh round does first: take the lock, delete (row-lock) the marks.
            refresher.execute("SELECT pg_advisory_xact_lock(%s)", (rollups.LOCK_KEY,))
            refresher.execute("DELETE FROM rollup_dirty")
            ingest.execute("SET lock_timeout = '2s'")
            assert load_batch(ingest, [("d1", "pm25", T0 + timedelta(seconds=5), 2.0, 1)]) == 1


def test_concurrent_ingest_and_refreshers_end_exact(fresh_db_url: str) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def refresher() -> None:
        try:
            with psycopg.connect(fresh_db_url, autocommit=True) as conn:
                while not stop.is_set():
                    rollups.refresh(conn, keys_per_round=3)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=refresher) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        with psycopg.connect(fresh_db_url, autocommit=True) as conn:
            for i in range(60):
                # Every batch revisits the same minutes: late data racing the refreshers.
                batch: list[Row] = [
                    (f"d{j}", "pm25", T0 + timedelta(seconds=(i * 7 + j * 13) % 600), float(i), 1)
                    for j in range(5)
                ]
                batch.append(
                    ("m1", "energy", T0 + timedelta(seconds=i * 11 % 500), float(i % 9), 1)
                )
                load_batch(conn, batch)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        rollups.refresh(conn)
        assert all_mismatches(conn) == []


def test_keys_per_round_splits_the_work(fresh_db_url: str) -> None:
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        rows: list[Row] = [("d1", "pm25", T0 - timedelta(days=d), float(d), 1) for d in range(10)]
        load_batch(conn, rows)
        partial = rollups.refresh(conn, keys_per_round=3, max_rounds=2)
        assert (partial.rounds, partial.ranges) == (2, 6)
        assert conn.execute("SELECT count(*) FROM rollup_dirty").fetchone() == (4,)
        rest = rollups.refresh(conn, keys_per_round=3)
        assert (rest.rounds, rest.ranges) == (2, 4)
        assert all_mismatches(conn) == []


# --- property: any order, any batches, any refresh timing ---------------------------------------

_offsets = st.one_of(
    st.integers(0, 3 * 86400),  # three days, crossing UTC and local midnights
    st.integers(61200 - 300, 61200 + 300),  # around local midnight (17:00 UTC), dense
    st.integers(3600 * 30 - 90, 3600 * 30 + 90),  # around an hour boundary, dense
)
_reading = st.tuples(
    st.sampled_from(["a", "b"]),
    st.sampled_from(["pm25", "energy"]),
    _offsets,
    st.integers(0, 999),  # milliseconds
    st.integers(0, 5000).map(lambda v: v / 10),
)


@st.composite
def _schedules(draw: st.DrawFn) -> list[list[Row] | None]:
    """Batches of readings (with duplicates and late ones) and refreshes (None) in some order."""
    base = datetime(2026, 11, 2, tzinfo=UTC)
    drawn = draw(st.lists(_reading, min_size=1, max_size=60))
    rows: list[Row] = [
        (d, m, base + timedelta(seconds=s, milliseconds=ms), v, 1) for d, m, s, ms, v in drawn
    ]
    # Duplicates, some with another value: the first stored wins and the tiers follow raw.
    dups = draw(st.lists(st.sampled_from(rows), max_size=10))
    rows += [(d, m, ts, draw(st.sampled_from([v, v + 1])), q) for d, m, ts, v, q in dups]
    rows = draw(st.permutations(rows))
    schedule: list[list[Row] | None] = []
    while rows:
        size = draw(st.integers(1, max(1, len(rows))))
        schedule.append(rows[:size])
        rows = rows[size:]
        if draw(st.booleans()):
            schedule.append(None)
    return schedule


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(schedule=_schedules())
def test_property_every_tier_equals_raw_group_by(
    db_url: str, schedule: list[list[Row] | None]
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(RESET)
        for step in schedule:
            if step is None:
                rollups.refresh(conn, keys_per_round=2)
                assert all_mismatches(conn) == []
            else:
                load_batch(conn, step)
        rollups.refresh(conn)
        assert all_mismatches(conn) == []
        assert conn.execute("SELECT count(*) FROM rollup_dirty").fetchone() == (0,)


# --- the maintenance loop ---------------------------------------------------------------------


def test_edition_is_detected(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        assert edition(conn) in ("apache", "timescale")


KEEP_ALL = RetentionPolicy(
    raw_days=None, minute_days=None, hour_days=None, day_days=None, dead_letter_days=None
)


def _wait_until(predicate: object, timeout: float = 30.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail("condition not reached in time")


def test_maintenance_loop_refreshes_and_survives_a_lost_connection(
    fresh_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="store")
    stop = threading.Event()
    loop = threading.Thread(
        target=run_maintenance,
        args=(fresh_db_url, stop),
        # Keep everything: the data's dates must not age out against the real clock.
        kwargs={"interval_s": 0.1, "policy": KEEP_ALL},
    )
    loop.start()
    try:
        with psycopg.connect(fresh_db_url, autocommit=True) as conn:

            def rolled(n: int) -> bool:
                row = conn.execute("SELECT coalesce(sum(count), 0) FROM rollup_1d").fetchone()
                return row == (n,)

            load_batch(conn, [("d1", "pm25", T0 + timedelta(seconds=i), 1.0, 1) for i in range(5)])
            _wait_until(lambda: rolled(5))
            # A database restart, as the loop sees it: its backend is killed.
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'dothi-maintenance'"
            )
            load_batch(conn, [("d1", "pm25", T0 + timedelta(minutes=9), 1.0, 1)])
            _wait_until(lambda: rolled(6))
            assert all_mismatches(conn) == []
    finally:
        stop.set()
        loop.join(timeout=30)
    assert not loop.is_alive()
    messages = [r.getMessage() for r in caplog.records]
    assert any("reconnecting" in m for m in messages)
    assert sum("storage maintenance connected" in m for m in messages) >= 2
    assert any("licence" in m for m in messages)


def test_migration_marks_and_seeds_readings_stored_before_it(empty_db_url: str) -> None:
    first = migrate.available()[0]
    assert first.version == 1
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        migrate.applied(conn)  # creates schema_migrations
        with conn.transaction():
            conn.execute(first.sql.encode())
            conn.execute("INSERT INTO schema_migrations VALUES (1, %s)", (first.name,))
        conn.execute(
            "INSERT INTO readings (device_id, metric, ts, value)"
            " SELECT 'old', 'pm25', %s + n * interval '17 minutes', n"
            " FROM generate_series(0, 200) AS n",
            (T0,),
        )
    migrate.migrate(empty_db_url)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        assert conn.execute("SELECT value FROM latest WHERE device_id = 'old'").fetchone() == (
            200.0,
        )
        assert rollups.refresh(conn).ranges == 3  # 200 × 17 min spans three UTC days
        assert all_mismatches(conn) == []
