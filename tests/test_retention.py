"""store.retention: each tier loses exactly the chunks past its policy, nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from store import rollups
from store.loader import Row, load_batch
from store.retention import RetentionPolicy, apply_retention

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
POLICY = RetentionPolicy(
    raw_days=90, minute_days=120, hour_days=150, day_days=None, dead_letter_days=30
)
HYPERTABLES = ("readings", "rollup_1m", "rollup_1h", "rollup_1d", "rollup_1d_local")


def _chunks(conn: psycopg.Connection[Any], table: str) -> dict[str, tuple[datetime, int]]:
    """Chunk name → (range end, rows)."""
    time_col = "ts" if table == "readings" else "bucket"
    out = {}
    for name, end, start in conn.execute(
        "SELECT chunk_schema || '.' || chunk_name, range_end, range_start"
        " FROM timescaledb_information.chunks WHERE hypertable_name = %s",
        (table,),
    ).fetchall():
        row = conn.execute(
            f"SELECT count(*) FROM {table} WHERE {time_col} >= %s AND {time_col} < %s",
            (start, end),
        ).fetchone()
        out[name] = (end, int(row[0]) if row else 0)
    return out


def _tier_snapshot(conn: psycopg.Connection[Any], table: str) -> list[tuple[Any, ...]]:
    return conn.execute(f"SELECT * FROM {table} ORDER BY device_id, metric, bucket").fetchall()


@pytest.fixture
def year_of_data(fresh_db_url: str) -> str:
    """Two sensors, a reading every 6 hours for 200 days up to NOW; rolled up; dead letters."""
    rows: list[Row] = [
        (device, "pm25", NOW - timedelta(hours=6 * i), float(i % 40), 1)
        for i in range(200 * 4)
        for device in ("a", "b")
    ]
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        load_batch(conn, rows)
        rollups.refresh(conn)
        for age in (45, 31, 29, 1):
            conn.execute(
                "INSERT INTO dead_letters (received_at, topic, payload, reason, detail)"
                " VALUES (%s, 't', '\\x00', 'bad_json', 'x')",
                (NOW - timedelta(days=age),),
            )
    return fresh_db_url


def test_retention_drops_exactly_the_expired_chunks(year_of_data: str) -> None:
    days = POLICY.hypertables()
    with psycopg.connect(year_of_data, autocommit=True) as conn:
        before = {t: _chunks(conn, t) for t in HYPERTABLES}
        day_rows = _tier_snapshot(conn, "rollup_1d")
        result = apply_retention(conn, POLICY, NOW)
        after = {t: _chunks(conn, t) for t in HYPERTABLES}
        letters = conn.execute("SELECT received_at FROM dead_letters ORDER BY 1").fetchall()
        horizon: dict[str, datetime] = {
            str(relation): complete_from
            for relation, complete_from in conn.execute(
                "SELECT relation, complete_from FROM rollup_horizon"
                " WHERE complete_from > '-infinity'"
            ).fetchall()
        }
        assert _tier_snapshot(conn, "rollup_1d") == day_rows  # forever, untouched by raw drops
        again = apply_retention(conn, POLICY, NOW)
    for table in HYPERTABLES:
        keep = days[table]
        cutoff = NOW - timedelta(days=keep) if keep is not None else None
        expired = {n for n, (end, _) in before[table].items() if cutoff and end <= cutoff}
        # Whole chunks: the expired ones are gone, every other one keeps every row.
        assert after[table] == {n: v for n, v in before[table].items() if n not in expired}
        if keep is not None:
            assert result[table] == len(expired)
            assert expired, f"the data should have reached past {table}'s retention"
            assert horizon[table] == max(before[table][n][0] for n in expired)
        else:
            assert table not in result
            assert table not in horizon
    assert result["dead_letters"] == 2
    assert [r[0] for r in letters] == [NOW - timedelta(days=29), NOW - timedelta(days=1)]
    assert again == dict.fromkeys(result, 0)


def test_late_reading_past_the_raw_horizon_leaves_rollups_alone(
    year_of_data: str, caplog: pytest.LogCaptureFixture
) -> None:
    with psycopg.connect(year_of_data, autocommit=True) as conn:
        apply_retention(conn, POLICY, NOW)
        day = _tier_snapshot(conn, "rollup_1d")
        minute = _tier_snapshot(conn, "rollup_1m")
        old = NOW - timedelta(days=100, minutes=3)  # raw dropped, 1 min tier still kept
        assert load_batch(conn, [("a", "pm25", old, 500.0, 1)]) == 1  # stored all the same
        stats = rollups.refresh(conn)
        assert (stats.skipped, stats.ranges) == (1, 0)
        assert _tier_snapshot(conn, "rollup_1d") == day
        assert _tier_snapshot(conn, "rollup_1m") == minute
        assert conn.execute("SELECT count(*) FROM rollup_dirty").fetchone() == (0,)
    assert any("older than the raw data kept" in r.getMessage() for r in caplog.records)


def test_pending_marks_are_refreshed_before_raw_is_dropped(fresh_db_url: str) -> None:
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        old = NOW - timedelta(days=95)
        load_batch(conn, [("a", "pm25", old, 7.0, 1), ("a", "pm25", NOW, 1.0, 1)])
        result = apply_retention(conn, POLICY, NOW)  # no refresh in between
        assert result["readings"] == 1
        row = conn.execute(
            "SELECT count, max FROM rollup_1m WHERE bucket = %s", (old.replace(second=0),)
        ).fetchone()
    assert row == (1, 7.0)


def test_forever_means_forever(year_of_data: str) -> None:
    keep_all = RetentionPolicy(
        raw_days=None, minute_days=None, hour_days=None, day_days=None, dead_letter_days=None
    )
    with psycopg.connect(year_of_data, autocommit=True) as conn:
        before = {t: _chunks(conn, t) for t in HYPERTABLES}
        assert apply_retention(conn, keep_all, NOW) == {}
        assert {t: _chunks(conn, t) for t in HYPERTABLES} == before


def test_policy_defaults_and_validation() -> None:
    default = RetentionPolicy()
    assert (default.raw_days, default.minute_days, default.hour_days) == (90, 365, 5 * 365)
    assert (default.day_days, default.dead_letter_days) == (None, 30)
    with pytest.raises(ValueError, match="at least 1 day"):
        RetentionPolicy(raw_days=0)
