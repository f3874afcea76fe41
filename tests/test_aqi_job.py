"""The AQI job on synthetic hourly data: reproduces analytics.aqi, stores categories, follows
late data, records QCVN 05 exceedances, and feeds the AQI category alert rule."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from analytics import aqi
from analytics.aqi_job import AqiJob, mark_dirty
from analytics.evaluate import RuleEngine
from analytics.us_aqi import us_aqi
from tests.analytics_support import add_device, alerts_of, insert, rules

# Local midnight of Monday 2 March 2026 (17:00 UTC the day before).
START = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
HOURS = 36


def pm25(h: int) -> float:
    return 20.0 + 3 * h if h < 30 else 140.0  # climbs, then a bad spell


def pm10(h: int) -> float:
    return 50.0 + 2 * h


def o3(h: int) -> float:
    return 40.0 + 4 * (h % 24)


def no2(h: int) -> float:
    return 250.0 if h == 20 else 60.0  # one hour over the QCVN 05 1 h limit (200)


SERIES = {"pm25": pm25, "pm10": pm10, "o3": o3, "no2": no2}


def store_hours(conn: psycopg.Connection[Any], station: str, hours: range) -> None:
    """Six readings per hour, all equal, so each hourly mean is exactly the function's value."""
    for metric, f in SERIES.items():
        points = [
            (START + h * HOUR + timedelta(minutes=10 * k), f(h)) for h in hours for k in range(6)
        ]
        insert(conn, station, metric, points)


def stored(conn: psycopg.Connection[Any], station: str, method: str, hour: datetime) -> Any:
    return conn.execute(
        "SELECT value, category, dominant, sub_indices FROM aqi_hourly"
        " WHERE station_id = %s AND method = %s AND hour = %s",
        (station, method, hour),
    ).fetchone()


def test_hourly_and_daily_aqi_reproduce_analytics_aqi(db_url: str, uid: str) -> None:
    station = f"aq-{uid}"
    now = START + HOURS * HOUR + timedelta(minutes=5)
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_device(conn, station, "air_quality")
        store_hours(conn, station, range(HOURS))
        stats = AqiJob(initial_hours=HOURS).run(conn, now)
        assert stats.stations >= 1
        for h in (5, 20, 35):
            hour = START + h * HOUR
            history = {
                p: [f(h - k) if h - k >= 0 else None for k in range(12)] for p, f in SERIES.items()
            }
            expected = aqi.hourly_aqi(history)
            assert expected is not None
            value, category, dominant, subs = stored(conn, station, "VN_AQI", hour)
            assert (value, category, dominant) == (
                expected.value,
                expected.category.key,
                expected.dominant,
            )
            assert subs == dict(expected.sub_indices)
            us = stored(conn, station, "US_EPA_AQI", hour)
            expected_us = us_aqi(
                pm25=aqi.nowcast(history["pm25"]),
                pm10=aqi.nowcast(history["pm10"]),
                o3_1h=o3(h),
                o3_8h=sum(o3(h - k) for k in range(8)) / 8 if h >= 7 else None,
                no2_1h=no2(h),
            )
            assert expected_us is not None
            assert us[0] == expected_us.value
        # The whole first local day (2 March) is complete: its daily AQI is stored.
        day = {p: [f(h) for h in range(24)] for p, f in SERIES.items()}
        expected_day = aqi.daily_aqi(aqi.daily_concentrations(day))
        assert expected_day is not None
        row = conn.execute(
            "SELECT value, category, dominant FROM aqi_daily WHERE station_id = %s"
            " AND method = 'VN_AQI' AND day = %s",
            (station, date(2026, 3, 2)),
        ).fetchone()
        assert row == (expected_day.value, expected_day.category.key, expected_day.dominant)
        assert conn.execute(
            "SELECT count(*) FROM aqi_daily WHERE station_id = %s AND day = %s",
            (station, date(2026, 3, 3)),
        ).fetchone() == (0,)  # 3 March is not over yet
        # A second run over the same data changes nothing.
        again = AqiJob(initial_hours=HOURS).run(conn, now)
        assert (again.hourly_rows, again.daily_rows) == (0, 0)


def test_late_data_recomputes_the_hours_it_feeds(db_url: str, uid: str) -> None:
    station = f"aq-{uid}"
    now = START + HOURS * HOUR + timedelta(minutes=5)
    job = AqiJob(initial_hours=HOURS, late_scan_every=timedelta(0))
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_device(conn, station, "air_quality")
        store_hours(conn, station, range(HOURS))
        job.run(conn, now)
        recent = START + 33 * HOUR  # inside the 12 h window
        old = START + 10 * HOUR  # before it
        before_recent = stored(conn, station, "VN_AQI", recent)[0]
        before_old = stored(conn, station, "VN_AQI", old + HOUR)[0]
        # Late readings: much higher PM2.5 in both hours.
        insert(conn, station, "pm25", [(recent + timedelta(minutes=5), 400.0)])
        insert(conn, station, "pm25", [(old + timedelta(minutes=5), 400.0)])
        job.run(conn, now)
        assert stored(conn, station, "VN_AQI", recent)[0] > before_recent
        # The old hour was found by the late-data scan; the hour after it (NowCast) moved too.
        assert stored(conn, station, "VN_AQI", old + HOUR)[0] > before_old
        assert conn.execute(
            "SELECT count(*) FROM aqi_dirty WHERE station_id = %s", (station,)
        ).fetchone() == (0,)
        # Marking by hand (a replay tool) works the same way.
        assert mark_dirty(conn, station, START, START + 2 * HOUR) == 2


def test_restart_catches_up_from_the_watermark(fresh_db_url: str, uid: str) -> None:
    station = f"aq-{uid}"
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        add_device(conn, station, "air_quality")
        store_hours(conn, station, range(HOURS))
        AqiJob(initial_hours=12, window_hours=2).run(conn, START + 12 * HOUR)
        # Down for 20 hours; a new process with a short window still fills every hour.
        AqiJob(initial_hours=12, window_hours=2).run(conn, START + 32 * HOUR)
        hours = conn.execute(
            "SELECT count(DISTINCT hour) FROM aqi_hourly"
            " WHERE station_id = %s AND method = 'VN_AQI'",
            (station,),
        ).fetchone()
    assert hours == (31,)  # hours 1…31: hour 0 alone cannot make a NowCast (2 of 3 hours)


def test_qcvn05_exceedances_are_recorded(db_url: str, uid: str) -> None:
    station = f"aq-{uid}"
    now = START + HOURS * HOUR + timedelta(minutes=5)
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_device(conn, station, "air_quality")
        store_hours(conn, station, range(HOURS))
        AqiJob(initial_hours=HOURS).run(conn, now)
        rows = conn.execute(
            "SELECT pollutant, averaging, period_start, period_end, value, limit_value"
            " FROM qcvn05_exceedances WHERE station_id = %s ORDER BY period_start, averaging",
            (station,),
        ).fetchall()
    by_kind = {(p, a) for p, a, *_ in rows}
    # NO2 250 in hour 20 is over the 1 h limit; the 8 h means around it are not over 200.
    assert ("no2", "1h", START + 20 * HOUR, START + 21 * HOUR, 250.0, 200.0) in rows
    # PM2.5 on 2 March averages 20 + 3·11.5 = 54.5 µg/m³: over the 45 in force from 2026.
    day = [r for r in rows if r[:2] == ("pm25", "24h")]
    assert len(day) == 1
    assert day[0][2] == START
    assert day[0][4] == pytest.approx(54.5)
    assert day[0][5] == 45.0
    assert ("o3", "1h") not in by_kind


def test_aqi_category_rule_alerts_from_the_stored_history(db_url: str, uid: str) -> None:
    station = f"aq-{uid}"
    now = START + HOURS * HOUR + timedelta(minutes=5)
    rs = rules(
        f"""
        [[rule]]
        id = "aqi-{uid}"
        kind = "aqi_category"
        scope = {{ device = "{station}" }}
        min_category = "bad"
        critical_category = "very_bad"
        """
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_device(conn, station, "air_quality")
        store_hours(conn, station, range(HOURS))
        AqiJob(initial_hours=HOURS).run(conn, now)
        RuleEngine(lookback=timedelta(hours=HOURS)).evaluate(conn, rs, now)
        [alert] = alerts_of(conn, station)
        first_bad = conn.execute(
            "SELECT min(hour) FROM aqi_hourly WHERE station_id = %s AND method = 'VN_AQI'"
            " AND value >= 151",
            (station,),
        ).fetchone()
    assert first_bad is not None
    assert alert.metric == "aqi"
    assert alert.opened_at == first_bad[0]
    assert alert.details["category"] in ("bad", "very_bad")
    assert alert.details["category_vi"] in ("Xấu", "Rất xấu")
