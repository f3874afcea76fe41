"""The AQI job: hourly and daily VN_AQI (and US AQI alongside) per station, QCVN 05 exceedances.

Every run, for each air-quality station (devices of kind ``air_quality``):

- **Hourly** (``aqi_hourly``): the AQI of every completed hour of the last ``window_hours``
  hours, plus the hours after the job's watermark (a restart catches up), plus the hours a dirty
  mark (``aqi_dirty``) names and the 11 after each (their NowCast reads it). Recomputing the
  recent window every run absorbs late readings without any bookkeeping; a periodic scan of
  ``readings.received_at`` marks older hours that received late data. Inputs are the hourly
  means of the 1 h rollup tier (raw readings where the tier is behind): :mod:`analytics.series`.
- **Daily** (``aqi_daily``): for each completed local day (Asia/Ho_Chi_Minh) touched by those
  hours, QĐ 1459's daily AQI from the day's 24 hourly means (and 7 hours before it for O3 8 h).
- **US EPA AQI** alongside, as rows with ``method = 'US_EPA_AQI'``: hourly from the PM NowCast
  and the gases' 1 h / 8 h means, daily from 24 h PM means and the day's maxima.
- **QCVN 05:2023 exceedances** (``qcvn05_exceedances``): 1 h, rolling 8 h and local-day 24 h
  means above the limits, for the recomputed periods (rewritten, so late data can also remove
  one). Exceedances are recorded in this table, not raised as alerts: they are a compliance
  record, and the air-quality alerts (PM2.5 threshold, AQI category) already cover the live
  situation.

All of a run's writes commit together, with the watermark.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from psycopg.types.json import Jsonb

from analytics._shared import VN_TZ, rolling_mean
from analytics.aqi import (
    NOWCAST_HOURS,
    POLLUTANTS,
    AqiResult,
    daily_aqi,
    daily_concentrations,
    hourly_aqi,
    nowcast,
)
from analytics.regulations import find_exceedances
from analytics.series import HOUR, hourly_means
from analytics.us_aqi import us_aqi

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import psycopg

log = logging.getLogger(__name__)

STATION_KIND: Final = "air_quality"
WATERMARK: Final = "aqi_hourly"
LATE_SCAN: Final = "aqi_late_scan"
_MIN_8H: Final = 6  # hours of 8 an 8 h mean needs (75 %), as in analytics.aqi

Means = dict[tuple[str, str], dict[datetime, float]]


@dataclass(slots=True)
class AqiStats:
    """What one run did."""

    stations: int = 0
    hours: int = 0
    hourly_rows: int = 0
    days: int = 0
    daily_rows: int = 0
    exceedances: int = 0


def floor_hour(t: datetime) -> datetime:
    """The start of the hour ``t`` falls in."""
    return t.replace(minute=0, second=0, microsecond=0)


def local_day(hour: datetime) -> date:
    """The local (Asia/Ho_Chi_Minh) date of an hour start."""
    return hour.astimezone(VN_TZ).date()


def day_start(day: date) -> datetime:
    """Local midnight of ``day`` as an aware datetime."""
    return datetime.combine(day, datetime.min.time(), VN_TZ)


def mark_dirty(
    conn: psycopg.Connection[Any], station_id: str, start: datetime, end: datetime
) -> int:
    """Mark the hours of ``[start, end)`` of a station for recomputation (replays, backfills).

    Returns:
        How many hours were marked.
    """
    cur = conn.execute(
        "INSERT INTO aqi_dirty (station_id, hour)"
        " SELECT %s, g FROM generate_series(time_bucket('1 hour', %s::timestamptz),"
        " %s::timestamptz - interval '1 microsecond', interval '1 hour') AS g"
        " ON CONFLICT DO NOTHING",
        (station_id, start, end),
    )
    return cur.rowcount


class AqiJob:
    """Computes and stores the AQI history incrementally.

    Args:
        window_hours: completed hours recomputed on every run (late data within it is absorbed).
        initial_hours: how far back the very first run starts.
        max_hours: the most hours one run computes per station (a long backlog takes several).
        late_scan_every: how often to look for readings that arrived late for older hours.
        late_days: how far back that scan looks.
    """

    def __init__(
        self,
        *,
        window_hours: int = 12,
        initial_hours: int = 48,
        max_hours: int = 72,
        late_scan_every: timedelta = timedelta(minutes=10),
        late_days: int = 7,
    ) -> None:
        self.window_hours = window_hours
        self.initial_hours = initial_hours
        self.max_hours = max_hours
        self.late_scan_every = late_scan_every
        self.late_days = late_days
        self._last_scan: datetime | None = None

    def run(self, conn: psycopg.Connection[Any], now: datetime) -> AqiStats:
        """One run at ``now``, in one transaction."""
        stats = AqiStats()
        with conn.transaction():
            stations = [
                str(r[0])
                for r in conn.execute(
                    "SELECT id FROM devices WHERE kind = %s ORDER BY id", (STATION_KIND,)
                ).fetchall()
            ]
            stats.stations = len(stations)
            if not stations:
                return stats
            latest = floor_hour(now) - HOUR  # the newest completed hour
            if self._last_scan is None or now - self._last_scan >= self.late_scan_every:
                self._scan_late(conn, stations, latest)
                self._last_scan = now
            hours = self._hours_to_compute(conn, stations, latest)
            if not hours:
                return stats
            stats.hours = sum(len(h) for h in hours.values())
            first = min(min(h) for h in hours.values())
            last = max(max(h) for h in hours.values())
            days = {local_day(h) for hs in hours.values() for h in hs}
            complete_days = sorted(d for d in days if day_start(d) + timedelta(days=1) <= now)
            lo = min(
                [
                    first - (NOWCAST_HOURS - 1) * HOUR,
                    *(day_start(d) - 7 * HOUR for d in complete_days),
                ]
            )
            hi = max([last + HOUR, *(day_start(d) + timedelta(days=1) for d in complete_days)])
            means = hourly_means(conn, stations, POLLUTANTS, lo, hi)
            for station, station_hours in hours.items():
                stats.hourly_rows += self._store_hourly(conn, station, sorted(station_hours), means)
                station_days = sorted({local_day(h) for h in station_hours} & set(complete_days))
                stats.days += len(station_days)
                for day in station_days:
                    stats.daily_rows += self._store_daily(conn, station, day, means)
                stats.exceedances += self._store_exceedances(
                    conn, station, (min(station_hours), max(station_hours)), now, means
                )
            conn.execute(
                "DELETE FROM aqi_dirty WHERE station_id = ANY(%s::text[]) AND hour <= %s",
                (stations, latest),
            )
            self._set_watermark(conn, WATERMARK, latest)
        if stats.hourly_rows or stats.daily_rows:
            log.info(
                "AQI: %d stations, %d hours (%d rows changed), %d days (%d rows), %d exceedances",
                stats.stations,
                stats.hours,
                stats.hourly_rows,
                stats.days,
                stats.daily_rows,
                stats.exceedances,
            )
        return stats

    # --- which hours ---------------------------------------------------------------------------
    def _hours_to_compute(
        self, conn: psycopg.Connection[Any], stations: Sequence[str], latest: datetime
    ) -> dict[str, set[datetime]]:
        row = conn.execute(
            "SELECT value FROM analytics_watermarks WHERE job = %s", (WATERMARK,)
        ).fetchone()
        window_start = latest - (self.window_hours - 1) * HOUR
        if row is None:
            start = latest - (self.initial_hours - 1) * HOUR
        else:
            start = min(row[0] + HOUR, window_start)
        start = max(start, latest - (self.max_hours - 1) * HOUR)
        base = set()
        h = start
        while h <= latest:
            base.add(h)
            h += HOUR
        out = {s: set(base) for s in stations}
        dirty = conn.execute(
            "SELECT station_id, hour FROM aqi_dirty WHERE station_id = ANY(%s::text[])"
            " AND hour <= %s ORDER BY hour",
            (list(stations), latest),
        ).fetchall()
        for station, hour in dirty:
            # A changed hour feeds the NowCast of the 11 hours after it.
            for k in range(NOWCAST_HOURS):
                if hour + k * HOUR <= latest:
                    out[station].add(hour + k * HOUR)
        return {s: hs for s, hs in out.items() if hs}

    def _scan_late(
        self, conn: psycopg.Connection[Any], stations: Sequence[str], latest: datetime
    ) -> None:
        """Mark hours before the recompute window that received readings since the last scan."""
        row = conn.execute(
            "SELECT value FROM analytics_watermarks WHERE job = %s", (LATE_SCAN,)
        ).fetchone()
        # received_at is the database's clock, so the scan's watermark is too.
        scan_start = conn.execute("SELECT statement_timestamp()").fetchone()
        assert scan_start is not None  # noqa: S101 (SELECT returns a row)
        if row is not None:
            window_start = latest - (self.window_hours - 1) * HOUR
            cur = conn.execute(
                "INSERT INTO aqi_dirty (station_id, hour)"
                " SELECT DISTINCT device_id, time_bucket('1 hour', ts) FROM readings"
                " WHERE device_id = ANY(%(stations)s::text[])"
                " AND metric = ANY(%(metrics)s::text[])"
                " AND ts >= %(since)s AND ts < %(window)s AND received_at > %(last)s"
                " ON CONFLICT DO NOTHING",
                {
                    "stations": list(stations),
                    "metrics": list(POLLUTANTS),
                    "since": window_start - timedelta(days=self.late_days),
                    "window": window_start,
                    "last": row[0],
                },
            )
            if cur.rowcount:
                log.info("AQI: %d older hours received late readings; recomputing", cur.rowcount)
        self._set_watermark(conn, LATE_SCAN, scan_start[0])

    @staticmethod
    def _set_watermark(conn: psycopg.Connection[Any], job: str, value: datetime) -> None:
        conn.execute(
            "INSERT INTO analytics_watermarks (job, value) VALUES (%s, %s)"
            " ON CONFLICT (job) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
            (job, value),
        )

    # --- hourly --------------------------------------------------------------------------------
    def _store_hourly(
        self,
        conn: psycopg.Connection[Any],
        station: str,
        hours: Sequence[datetime],
        means: Means,
    ) -> int:
        changed = 0
        for hour in hours:
            vn, us = hourly_results(station, hour, means)
            for method, result in (("VN_AQI", vn), ("US_EPA_AQI", us)):
                if result is None:
                    cur = conn.execute(
                        "DELETE FROM aqi_hourly WHERE station_id = %s AND method = %s"
                        " AND hour = %s",
                        (station, method, hour),
                    )
                else:
                    cur = conn.execute(
                        _UPSERT.format(table="aqi_hourly", key="hour"),
                        _row(station, method, hour, result),
                    )
                changed += cur.rowcount
        return changed

    # --- daily ---------------------------------------------------------------------------------
    def _store_daily(
        self, conn: psycopg.Connection[Any], station: str, day: date, means: Means
    ) -> int:
        vn, us = daily_results(station, day, means)
        changed = 0
        for method, result in (("VN_AQI", vn), ("US_EPA_AQI", us)):
            if result is None:
                cur = conn.execute(
                    "DELETE FROM aqi_daily WHERE station_id = %s AND method = %s AND day = %s",
                    (station, method, day),
                )
            else:
                cur = conn.execute(
                    _UPSERT.format(table="aqi_daily", key="day"), _row(station, method, day, result)
                )
            changed += cur.rowcount
        return changed

    # --- QCVN 05 -------------------------------------------------------------------------------
    def _store_exceedances(
        self,
        conn: psycopg.Connection[Any],
        station: str,
        span: tuple[datetime, datetime],
        now: datetime,
        means: Means,
    ) -> int:
        """Rewrite the exceedances of periods ending within [first, last + 1 h) of ``span``."""
        first, last = span
        conn.execute(
            "DELETE FROM qcvn05_exceedances WHERE station_id = %s"
            " AND period_end > %s AND period_end <= %s",
            (station, first, last + HOUR),
        )
        found = 0
        for pollutant in POLLUTANTS:
            series = [(h, v) for h, v in means.get((station, pollutant), {}).items()]
            if not series:
                continue
            for e in find_exceedances(pollutant, series):
                # Only whole periods that end in the recomputed hours (a day still running is
                # not recorded until it is complete).
                if not first < e.end <= last + HOUR or e.end > floor_hour(now):
                    continue
                conn.execute(
                    "INSERT INTO qcvn05_exceedances (station_id, pollutant, averaging,"
                    " period_start, period_end, value, limit_value, hours)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (station_id, pollutant, averaging, period_start) DO UPDATE"
                    " SET period_end = EXCLUDED.period_end, value = EXCLUDED.value,"
                    " limit_value = EXCLUDED.limit_value, hours = EXCLUDED.hours,"
                    " recorded_at = now()",
                    (station, e.pollutant, e.averaging, e.start, e.end, e.value, e.limit, e.hours),
                )
                found += 1
        return found


_UPSERT: Final = """
INSERT INTO {table} AS t (station_id, method, {key}, value, category, dominant, sub_indices, inputs)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (station_id, method, {key}) DO UPDATE
SET value = EXCLUDED.value, category = EXCLUDED.category, dominant = EXCLUDED.dominant,
    sub_indices = EXCLUDED.sub_indices, inputs = EXCLUDED.inputs, computed_at = now()
WHERE (t.value, t.category, t.dominant, t.sub_indices, t.inputs)
      IS DISTINCT FROM (EXCLUDED.value, EXCLUDED.category, EXCLUDED.dominant,
                        EXCLUDED.sub_indices, EXCLUDED.inputs)
"""


def _row(station: str, method: str, key: datetime | date, r: AqiResult) -> tuple[Any, ...]:
    inputs = {k: round(v, 4) for k, v in r.inputs.items()}
    return (
        station,
        method,
        key,
        r.value,
        r.category.key,
        r.dominant,
        Jsonb(dict(r.sub_indices)),
        Jsonb(inputs),
    )


def _hours_back(series: Mapping[datetime, float], hour: datetime, n: int) -> list[float | None]:
    """``n`` hourly means ending at ``hour``, newest first (None where missing)."""
    return [series.get(hour - k * HOUR) for k in range(n)]


def _mean_8h(series: Mapping[datetime, float], hour: datetime) -> float | None:
    values = [v for v in _hours_back(series, hour, 8) if v is not None]
    return sum(values) / len(values) if len(values) >= _MIN_8H else None


def hourly_results(
    station: str, hour: datetime, means: Means
) -> tuple[AqiResult | None, AqiResult | None]:
    """(VN_AQI, US AQI) of the hour starting at ``hour`` from hourly means.

    VN_AQI: :func:`analytics.aqi.hourly_aqi` with 12 hours of history (NowCast for PM, the hour
    itself for gases). US AQI: the same PM NowCasts, O3 and CO 8 h means, O3/SO2/NO2 1 h.
    """
    history = {
        p: _hours_back(means[(station, p)], hour, NOWCAST_HOURS)
        for p in POLLUTANTS
        if (station, p) in means
    }
    vn = hourly_aqi(history)
    series = {p: means.get((station, p), {}) for p in POLLUTANTS}
    us = us_aqi(
        pm25=nowcast(history["pm25"]) if "pm25" in history else None,
        pm10=nowcast(history["pm10"]) if "pm10" in history else None,
        o3_8h=_mean_8h(series["o3"], hour),
        o3_1h=series["o3"].get(hour),
        co_8h=_mean_8h(series["co"], hour),
        so2_1h=series["so2"].get(hour),
        no2_1h=series["no2"].get(hour),
    )
    return vn, us


def daily_results(
    station: str, day: date, means: Means
) -> tuple[AqiResult | None, AqiResult | None]:
    """(VN_AQI, US AQI) of a local day from its 24 hourly means (QĐ 1459 §2.2.2)."""
    start = day_start(day)
    hours = [start + k * HOUR for k in range(24)]
    day_values = {
        p: [means[(station, p)].get(h) for h in hours] for p in POLLUTANTS if (station, p) in means
    }
    o3 = means.get((station, "o3"), {})
    o3_prior = [o3.get(start - k * HOUR) for k in range(7, 0, -1)]
    conc = daily_concentrations(day_values, o3_prior=o3_prior)
    vn = daily_aqi(conc)
    co_8h_max = None
    if "co" in day_values:
        co = np.array([math.nan if v is None else v for v in day_values["co"]], dtype=np.float64)
        rolled = rolling_mean(co, 8, _MIN_8H)
        if np.count_nonzero(~np.isnan(rolled)):
            co_8h_max = float(np.nanmax(rolled))
    us = us_aqi(
        pm25=conc.pm25_24h,
        pm10=conc.pm10_24h,
        o3_8h=conc.o3_8h_max,
        o3_1h=conc.o3_1h_max,
        co_8h=co_8h_max,
        so2_1h=conc.so2_1h_max,
        no2_1h=conc.no2_1h_max,
    )
    return vn, us
