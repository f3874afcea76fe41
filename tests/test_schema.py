"""Schema and migrations against the real TimescaleDB."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from store import areas, migrate


def test_migrate_is_idempotent_and_recorded(empty_db_url: str) -> None:
    first = migrate.migrate(empty_db_url)
    assert [m.version for m in first] == [m.version for m in migrate.available()]
    assert migrate.migrate(empty_db_url) == []
    with psycopg.connect(empty_db_url) as conn:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    assert [r[0] for r in rows] == [m.version for m in migrate.available()]


def test_timescaledb_licence_detected(db_url: str) -> None:
    version, licence = migrate.timescaledb_info(db_url)
    assert version.startswith("2.")
    assert licence in ("apache", "timescale")


def test_readings_is_a_hypertable_with_a_dedupe_key(db_url: str) -> None:
    ts = datetime(2026, 11, 1, 12, tzinfo=UTC)
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM timescaledb_information.hypertables"
            " WHERE hypertable_name = 'readings'"
        ).fetchone()
        assert row == (1,)
        conn.execute(
            "INSERT INTO readings (device_id, metric, ts, value) VALUES ('d1', 'pm25', %s, 1)",
            (ts,),
        )
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO readings (device_id, metric, ts, value) VALUES ('d1', 'pm25', %s, 2)",
                (ts,),
            )


def test_per_device_range_query_uses_the_covering_index(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO readings (device_id, metric, ts, value)"
            " VALUES ('d2', 'pm25', '2026-11-01T06:00Z', 1)"
        )
        conn.execute("SET enable_seqscan = off")
        plan = conn.execute(
            "EXPLAIN SELECT ts, value FROM readings"
            " WHERE device_id = 'd1' AND metric = 'pm25'"
            " AND ts >= '2026-11-01' AND ts < '2026-11-02'"
        ).fetchall()
    text = "\n".join(r[0] for r in plan)
    assert "readings_key" in text or "Index Only Scan" in text, text


def test_areas_tree_loaded_and_reload_is_idempotent(db_url: str) -> None:
    n = areas.load(db_url)
    assert n == areas.load(db_url)
    with psycopg.connect(db_url) as conn:
        total = conn.execute("SELECT count(*) FROM areas").fetchone()
        districts = conn.execute(
            "SELECT count(*) FROM areas WHERE parent_id = 'nam-dinh'"
        ).fetchone()
        city = conn.execute("SELECT name FROM areas WHERE id = 'tp-nam-dinh'").fetchone()
    assert total == (n,)
    assert districts == (10,)  # Nam Định city + 9 districts
    assert city == ("Thành phố Nam Định",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,name\nx,y\n", "header must be"),
        ("id,parent_id,level,name,name_en,lat,lon\nx,,moon,X,,1,1\n", "level 'moon'"),
        ("id,parent_id,level,name,name_en,lat,lon\nx,,district,X,,1,1\n", "only a province"),
        (
            "id,parent_id,level,name,name_en,lat,lon\np,,province,P,,1,1\nd,q,district,D,,1,1\n",
            "parent 'q' is not defined",
        ),
        ("id,parent_id,level,name,name_en,lat,lon\np,,province,P,,91,1\n", "lat 91.0 is out"),
        ("id,parent_id,level,name,name_en,lat,lon\np,,province,P,,abc,1\n", "'abc' is not"),
    ],
)
def test_bad_areas_file_is_refused_with_the_line(text: str, message: str) -> None:
    with pytest.raises(areas.AreaFileError, match=message):
        areas.parse(text, "f.csv")
