"""Energy analytics: daily TOU split of a meter's counter, resets and midnight handled."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from analytics.energy_job import EnergyJob, day_energy
from tests.analytics_support import add_device, insert

# Tuesday 3 March 2026, local midnight; readings from 23:30 the evening before.
DAY = date(2026, 3, 3)
MIDNIGHT = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
HALF = timedelta(minutes=30)


def counter_readings() -> list[tuple[datetime, float]]:
    """A steady 1 kW load for 25 h, the counter replaced (back to 0) at 11:30 local."""
    points = []
    value = 1000.0
    t = MIDNIGHT - HALF
    while t <= MIDNIGHT + timedelta(hours=24, minutes=30):
        points.append((t, value))
        t += HALF
        value = 0.5 if t == MIDNIGHT + timedelta(hours=12) else value + 0.5
    return points


def test_day_energy_splits_weekday_bands_with_a_reset() -> None:
    points = counter_readings()
    result = day_energy([t for t, _ in points], [v for _, v in points], DAY)
    assert result is not None
    # Mon-Sat: peak 09:30-11:30 and 17:00-20:00 (5 h), off-peak 22:00-04:00 (6 h), rest normal.
    assert result.peak == pytest.approx(5.0)
    assert result.offpeak == pytest.approx(6.0)
    assert result.normal == pytest.approx(13.0)
    assert result.resets == 1
    assert result.readings == 48


def test_job_stores_completed_days_and_is_idempotent(fresh_db_url: str, uid: str) -> None:
    meter = f"mt-{uid}"
    now = MIDNIGHT + timedelta(hours=25)  # 01:00 local on 4 March
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        add_device(conn, meter, "smart_meter")
        insert(conn, meter, "energy", counter_readings())
        job = EnergyJob(initial_days=2)
        assert job.run(conn, now) == 2  # 2 March (from its last half hour) and 3 March
        row = conn.execute(
            "SELECT peak_kwh, normal_kwh, offpeak_kwh, total_kwh, resets FROM energy_tou_daily"
            " WHERE device_id = %s AND day = %s",
            (meter, DAY),
        ).fetchone()
        assert row == pytest.approx((5.0, 13.0, 6.0, 24.0, 1))
        assert job.run(conn, now) == 0  # same data: nothing rewritten
