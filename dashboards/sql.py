"""SQL fragments the panels share: area filters, rollup tier choice, regulatory constants.

Panels never scan raw readings: time series come from the rollup tiers (docs/storage.md), and
:func:`tier_rows` picks the tier from the dashboard's range the way the API's query helper
picks it from the interval. Each tier is one branch of a ``UNION ALL`` gated by a condition on
``$__timeFrom()``/``$__timeTo()``; after macro expansion these are constants, so PostgreSQL
drops the other branches before running anything.

Regulatory numbers (QCVN 05:2023 limits, flood alarm levels, VN_AQI colours) come from
:mod:`analytics`, the one place they are kept; the SQL is generated from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from analytics.aqi import CATEGORIES
from analytics.regulations import GAUGES, QCVN05_2023

LOCAL_TZ: Final = "Asia/Ho_Chi_Minh"
FROM: Final = "$__timeFrom()::timestamptz"
TO: Final = "$__timeTo()::timestamptz"
SPAN: Final = f"({TO} - {FROM})"


def in_area(column: str = "d.area_id", variable: str = "area") -> str:
    """``column`` is the selected area(s) or any area below them."""
    return f"{column} IN (SELECT area_id FROM area_ancestors WHERE ancestor_id IN (${variable}))"


def district_join(area_column: str, alias: str = "dist") -> str:
    """Joins ``alias`` = the city or district containing the area in ``area_column``."""
    return (
        f" JOIN area_ancestors AS {alias}_up ON {alias}_up.area_id = {area_column}"
        f" JOIN areas AS {alias} ON {alias}.id = {alias}_up.ancestor_id"
        f" AND {alias}.level IN ('city', 'district')"
    )


@dataclass(frozen=True, slots=True)
class Tier:
    """A rollup table and the dashboard ranges it answers (``lo`` < span ≤ ``hi``)."""

    table: str
    width_s: int
    lo: str | None
    hi: str | None

    def gate(self) -> str:
        conds = []
        if self.lo is not None:
            conds.append(f"{SPAN} > interval '{self.lo}'")
        if self.hi is not None:
            conds.append(f"{SPAN} <= interval '{self.hi}'")
        return " AND ".join(conds)


# Up to 36 h: minutes (≤ 2,160 points a series); up to 62 days: hours (≤ 1,488); beyond: days.
TIERS: Final = (
    Tier("rollup_1m", 60, None, "36 hours"),
    Tier("rollup_1h", 3600, "36 hours", "62 days"),
    Tier("rollup_1d", 86400, "62 days", None),
)
# Counters summed per bucket (energy): hours, or local days past two months so daily bars
# fall on Vietnamese midnights.
COUNTER_TIERS: Final = (
    Tier("rollup_1h", 3600, None, "62 days"),
    Tier("rollup_1d_local", 86400, "62 days", None),
)


def tier_rows(branch: str, tiers: tuple[Tier, ...] = TIERS) -> str:
    """``branch`` (a SELECT using ``{tier}``, ``{width}`` and ``{gate}``) once per tier, as one
    ``UNION ALL``; wrap it in an outer query that groups by ``$__timeGroupAlias``."""
    parts = [
        branch.replace("{tier}", t.table)
        .replace("{width}", str(t.width_s))
        .replace("{gate}", t.gate())
        for t in tiers
    ]
    return "\n  UNION ALL\n".join(parts)


def counter_steps(kinds: tuple[str, ...], metric: str = "energy") -> str:
    """Rows (bucket, device_id, area_id, kwh) of a counter metric per tier bucket.

    A bucket's consumption is its ``counter_inc`` (the increase inside it, resets handled)
    plus the step from the previous bucket's last reading to its first (``E_t - E_{t-1}``, or
    ``E_t`` after a reset), as store.energy computes it. The previous bucket may lie before the
    range, so each branch reads two days more and the outer query filters on the range.
    """
    kind_list = ", ".join(f"'{k}'" for k in kinds)
    step = (
        "CASE WHEN lag(r.last) OVER w IS NULL THEN 0"
        " WHEN r.first >= lag(r.last) OVER w THEN r.first - lag(r.last) OVER w"
        " ELSE r.first END"
    )
    branch = (
        f"SELECT r.bucket, r.device_id, d.area_id, coalesce(r.counter_inc, 0) + {step} AS kwh"
        " FROM {tier} AS r JOIN devices AS d ON d.id = r.device_id"
        f" WHERE {{gate}} AND r.metric = '{metric}' AND d.kind IN ({kind_list})"
        f" AND r.bucket >= {FROM} - interval '2 days' AND r.bucket <= {TO}"
        f" AND {in_area()}"
        " WINDOW w AS (PARTITION BY r.device_id ORDER BY r.bucket)"
    )
    return tier_rows(branch, COUNTER_TIERS)


POLLUTANT_LABELS: Final = {
    "pm25": "PM2.5",
    "pm10": "PM10",
    "no2": "NO₂",
    "o3": "O₃",
    "so2": "SO₂",
    "co": "CO",
}


def pollutant_label(expr: str) -> str:
    """SQL CASE showing a pollutant's metric name (``pm25``) as it is printed (``PM2.5``)."""
    whens = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in POLLUTANT_LABELS.items())
    return f"CASE {expr} {whens} ELSE {expr} END"


def aqi_category_name() -> str:
    """SQL CASE turning ``category`` keys of aqi_hourly into their official Vietnamese names."""
    whens = " ".join(f"WHEN '{c.key}' THEN '{c.name_vi}'" for c in CATEGORIES)
    return f"CASE h.category {whens} ELSE h.category END"


def qcvn05_limit(pollutant: str, averaging: str, day_expr: str) -> str | None:
    """SQL for the QCVN 05:2023 limit in force on the local date ``day_expr`` (None: no limit).

    Staged values (PM2.5 24 h: 50, then 45 from 2026-01-01) become a CASE on the date.
    """
    limits = [x for x in QCVN05_2023 if (x.pollutant, x.averaging) == (pollutant, averaging)]
    if not limits:
        return None
    whens = []
    for x in limits:
        conds = []
        if x.valid_from is not None:
            conds.append(f"{day_expr} >= DATE '{x.valid_from.isoformat()}'")
        if x.valid_until is not None:
            conds.append(f"{day_expr} <= DATE '{x.valid_until.isoformat()}'")
        whens.append(f"WHEN {' AND '.join(conds) or 'true'} THEN {x.value:g}")
    return f"CASE {' '.join(whens)} END"


def gauge_levels() -> str:
    """Rows (device_id, l1, l2, l3) of every river gauge's alarm levels in metres.

    A device's own ``alarm_levels_m`` win; otherwise those of its ``gauge`` in
    analytics.regulations.GAUGES. An unknown level is NULL (no line drawn, never reached).
    """
    rows = []
    for g in GAUGES.values():
        levels = [g.thresholds[i].stage_m if i in g.thresholds else None for i in (1, 2, 3)]
        shown = ", ".join("NULL::float8" if v is None else f"{v:g}::float8" for v in levels)
        rows.append(f"('{g.id}', {shown})")
    return (
        "SELECT v.device_id, coalesce(v.level_1, k.l1) AS l1, coalesce(v.level_2, k.l2) AS l2,"
        " coalesce(v.level_3, k.l3) AS l3 FROM river_gauge_levels AS v"
        f" LEFT JOIN (VALUES {', '.join(rows)}) AS k (gauge, l1, l2, l3) ON k.gauge = v.gauge"
    )


def local_day(expr: str) -> str:
    """The local (Asia/Ho_Chi_Minh) date of a timestamptz expression."""
    return f"({expr} AT TIME ZONE '{LOCAL_TZ}')::date"


def local_midnight(expr: str) -> str:
    """Local midnight (as timestamptz) of the day of a timestamptz expression."""
    return f"(date_trunc('day', {expr} AT TIME ZONE '{LOCAL_TZ}') AT TIME ZONE '{LOCAL_TZ}')"


def day_start(day_column: str) -> str:
    """A local ``date`` column as the timestamptz of its midnight."""
    return f"({day_column}::timestamp AT TIME ZONE '{LOCAL_TZ}')"


def hours_series(step: str = "1 hour") -> str:
    """``generate_series`` over the range, one row per ``step`` (for reference lines)."""
    return (
        f"generate_series(time_bucket(interval '{step}', {FROM}), {TO}, interval '{step}')"
        " AS t (ts)"
    )


SEVERITY_RANK: Final = "CASE a.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END"
