"""Rollup tiers: on_batch marks, refresh exactness under late and duplicate data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from store.loader import load_batch

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
