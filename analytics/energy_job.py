"""Daily energy per meter split into time-of-use bands (TT 16/2014/TT-BCT), from the kWh counter.

For each device reporting the ``energy`` counter and each completed local day, the consumption
between consecutive readings (counter resets handled: :func:`analytics.tou.counter_intervals`)
is clipped to the day (an interval crossing midnight is shared in proportion to time) and split
across peak / normal / off-peak with :func:`analytics.tou.split_energy`. Results go to
``energy_tou_daily``; the last ``recompute_days`` days are recomputed on every run so late
readings are absorbed, and a watermark makes a restart catch up.

Street lights burning in daylight and abnormal night base load are alert rules
(``lamp_daylight`` and ``anomaly`` with night ``hours``), not this job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from analytics._shared import VN_TZ
from analytics.aqi_job import day_start
from analytics.tou import consumption_from_counter, counter_intervals, split_energy

if TYPE_CHECKING:
    from collections.abc import Sequence

    import psycopg

log = logging.getLogger(__name__)

WATERMARK: Final = "energy_tou_daily"
METRIC: Final = "energy"
DAY: Final = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class DayEnergy:
    """One meter's consumption on one local day, by TOU band (kWh)."""

    peak: float
    normal: float
    offpeak: float
    resets: int
    readings: int

    @property
    def total(self) -> float:
        """All bands together."""
        return self.peak + self.normal + self.offpeak


def clip(
    intervals: Sequence[tuple[datetime, datetime, float]], start: datetime, end: datetime
) -> list[tuple[datetime, datetime, float]]:
    """The parts of ``(start, end, kWh)`` intervals inside ``[start, end)``, energy pro rata."""
    out = []
    for a, b, kwh in intervals:
        lo, hi = max(a, start), min(b, end)
        if hi <= lo:
            continue
        out.append((lo, hi, kwh * ((hi - lo) / (b - a))))
    return out


def day_energy(ts: Sequence[datetime], values: Sequence[float], day: date) -> DayEnergy | None:
    """TOU split of one local day from counter readings around it (None without two readings).

    Args:
        ts: reading times, increasing; include the last reading before the day and the first
            after it, so the steps across midnight are shared correctly.
        values: the counter readings (kWh).
        day: the local day.
    """
    if len(ts) < 2:
        return None
    start = day_start(day)
    end = start + DAY
    parts = clip(counter_intervals(ts, values), start, end)
    if not parts:
        return None
    bands = split_energy(parts)
    inside = [i for i, t in enumerate(ts) if start <= t < end]
    lo = max(0, (inside[0] if inside else 0) - 1)
    hi = (inside[-1] if inside else len(ts) - 1) + 2
    resets = consumption_from_counter(ts[lo:hi], values[lo:hi]).resets
    return DayEnergy(bands["peak"], bands["normal"], bands["offpeak"], resets, len(inside))


class EnergyJob:
    """Keeps ``energy_tou_daily`` current.

    Args:
        recompute_days: completed days recomputed on every run.
        initial_days: how many completed days the first run fills.
    """

    def __init__(self, *, recompute_days: int = 2, initial_days: int = 7) -> None:
        self.recompute_days = recompute_days
        self.initial_days = initial_days

    def run(self, conn: psycopg.Connection[Any], now: datetime) -> int:
        """One run at ``now`` in one transaction; returns the rows written."""
        today = now.astimezone(VN_TZ).date()
        last_day = today - DAY
        written = 0
        with conn.transaction():
            row = conn.execute(
                "SELECT value FROM analytics_watermarks WHERE job = %s", (WATERMARK,)
            ).fetchone()
            first_day = last_day - timedelta(days=self.recompute_days - 1)
            if row is None:
                first_day = last_day - timedelta(days=self.initial_days - 1)
            else:
                done = row[0].astimezone(VN_TZ).date()
                first_day = min(first_day, done + DAY)
            meters = [
                str(r[0])
                for r in conn.execute(
                    "SELECT DISTINCT device_id FROM latest WHERE metric = %s ORDER BY 1", (METRIC,)
                ).fetchall()
            ]
            day = first_day
            while day <= last_day:
                for meter in meters:
                    written += self._store(conn, meter, day)
                day += DAY
            conn.execute(
                "INSERT INTO analytics_watermarks (job, value) VALUES (%s, %s)"
                " ON CONFLICT (job) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
                (WATERMARK, day_start(last_day)),
            )
        if written:
            log.info("energy: %d meter-days written (%s … %s)", written, first_day, last_day)
        return written

    @staticmethod
    def _store(conn: psycopg.Connection[Any], meter: str, day: date) -> int:
        start = day_start(day)
        rows = conn.execute(
            """
(SELECT ts, value FROM readings WHERE device_id = %(d)s AND metric = %(m)s AND ts < %(s)s
 ORDER BY ts DESC LIMIT 1)
UNION ALL
(SELECT ts, value FROM readings WHERE device_id = %(d)s AND metric = %(m)s
 AND ts >= %(s)s AND ts < %(e)s)
UNION ALL
(SELECT ts, value FROM readings WHERE device_id = %(d)s AND metric = %(m)s AND ts >= %(e)s
 ORDER BY ts LIMIT 1)
ORDER BY 1
""",
            {"d": meter, "m": METRIC, "s": start, "e": start + DAY},
        ).fetchall()
        result = day_energy([r[0] for r in rows], [float(r[1]) for r in rows], day)
        if result is None:
            return 0
        cur = conn.execute(
            "INSERT INTO energy_tou_daily AS t (device_id, day, peak_kwh, normal_kwh,"
            " offpeak_kwh, total_kwh, resets, readings) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (device_id, day) DO UPDATE SET peak_kwh = EXCLUDED.peak_kwh,"
            " normal_kwh = EXCLUDED.normal_kwh, offpeak_kwh = EXCLUDED.offpeak_kwh,"
            " total_kwh = EXCLUDED.total_kwh, resets = EXCLUDED.resets,"
            " readings = EXCLUDED.readings, computed_at = now()"
            " WHERE (t.peak_kwh, t.normal_kwh, t.offpeak_kwh, t.resets, t.readings)"
            " IS DISTINCT FROM (EXCLUDED.peak_kwh, EXCLUDED.normal_kwh, EXCLUDED.offpeak_kwh,"
            " EXCLUDED.resets, EXCLUDED.readings)",
            (
                meter,
                day,
                result.peak,
                result.normal,
                result.offpeak,
                result.total,
                result.resets,
                result.readings,
            ),
        )
        return cur.rowcount
