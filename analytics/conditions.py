"""Each rule kind's test of one reading, pure (no database): fire, clear, or keep.

:func:`check` looks at reading ``i`` of a series (with the readings before it as context) and
says whether the condition holds (``fire``, with a severity), clearly does not (``clear``), or is
in between (``keep``: inside the hysteresis band of an active alert, or not decidable yet).
How long a condition must hold, how long an alert stays, flapping: all of that is the rule
engine's state machine (:mod:`analytics.evaluate`), the same for every kind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np

from analytics import aqi
from analytics._shared import as_local
from analytics.daylight import is_daylight
from analytics.regulations import GAUGES, alarm_level, alarm_severity, noise_limit
from analytics.rules import (
    AnomalyParams,
    AqiCategoryParams,
    ConsistencyParams,
    CounterResetParams,
    FlatlineParams,
    LampDaylightParams,
    NoiseParams,
    RateParams,
    RiverAlarmParams,
    Rule,
    SpikeParams,
    StaleParams,
    ThresholdParams,
)
from analytics.us_aqi import US_CATEGORIES
from core.metrics import METRICS

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import numpy.typing as npt

    from analytics.alerts import Severity

# Robust standard deviation from the median absolute deviation (normal consistency constant).
MAD_SCALE: Final = 1.4826
_NO_CONTEXT: Final = (timedelta(0), 0)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The verdict on one reading.

    Attributes:
        state: ``fire`` (condition holds), ``clear`` (it does not) or ``keep`` (no change).
        severity: the severity when firing.
        value: the value compared (reading, rise, LAeq, AQI …).
        threshold: what it was compared with.
        message: one sentence for the alert.
        details: facts for the alert (alarm level, category, baseline …).
    """

    state: Literal["fire", "clear", "keep"]
    severity: Severity | None = None
    value: float | None = None
    threshold: float | None = None
    message: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


CLEAR: Final = Outcome("clear")
KEEP: Final = Outcome("keep")


@dataclass(frozen=True, slots=True)
class Samples:
    """One series: context readings (already evaluated) followed by new ones, in time order.

    Attributes:
        device_id: the device.
        metric: the metric.
        ts: reading times (aware).
        values: reading values.
        first_new: index of the first reading not evaluated before.
        meta: the device's ``metadata`` (``interval_s``, ``area_type``, ``gauge`` …).
        other_ts: for consistency rules, the other metric's times (epoch seconds).
        other_values: and its values.
        baseline: for anomaly rules, hourly means by hour number (epoch seconds // 3600).
    """

    device_id: str
    metric: str
    ts: Sequence[datetime]
    values: npt.NDArray[np.float64]
    first_new: int = 0
    meta: Mapping[str, Any] = field(default_factory=dict)
    other_ts: npt.NDArray[np.float64] | None = None
    other_values: npt.NDArray[np.float64] | None = None
    baseline: Mapping[int, float] | None = None
    secs: npt.NDArray[np.float64] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "secs", np.array([t.timestamp() for t in self.ts], dtype=np.float64)
        )

    def window(self, i: int, span: timedelta) -> npt.NDArray[np.float64]:
        """Values of readings in ``[ts[i] − span, ts[i]]``."""
        lo = int(np.searchsorted(self.secs, self.secs[i] - span.total_seconds(), side="left"))
        return self.values[lo : i + 1]


def context(rule: Rule) -> tuple[timedelta, int]:
    """How much history before the new readings a rule's test needs: (time span, readings)."""
    p = rule.params
    many = 100_000
    if isinstance(p, RateParams):
        return p.window * 2, many
    if isinstance(p, SpikeParams):
        return timedelta(days=7), p.samples
    if isinstance(p, FlatlineParams):
        return p.window, many
    if isinstance(p, CounterResetParams):
        return timedelta(days=30), 1
    if isinstance(p, ConsistencyParams):
        return p.tolerance, many
    if isinstance(p, AnomalyParams | NoiseParams):
        return p.window, many
    return _NO_CONTEXT


def in_hours(rule: Rule, at: datetime) -> bool:
    """Whether ``at`` (local time) is inside the rule's active hours (always when unset)."""
    if rule.hours is None:
        return True
    start, end = rule.hours
    t = as_local(at).time()
    if start < end:
        return start <= t < end
    return t >= start or t < end  # wraps midnight


def _fmt(metric: str, value: float) -> str:
    unit = METRICS[metric].unit if metric in METRICS else ""
    return f"{metric} {value:.4g}{' ' + unit if unit else ''}"


def _local(at: datetime) -> str:
    return as_local(at).strftime("%Y-%m-%d %H:%M")


def check(rule: Rule, s: Samples, i: int, current: Outcome | None) -> Outcome:
    """The verdict on reading ``i`` of ``s`` under ``rule``.

    Args:
        rule: the rule (reading-based kinds; stale and AQI rules have their own entry points).
        s: the series.
        i: index of the reading to judge.
        current: the last ``fire`` outcome while the alert is active, else ``None``.
    """
    at = s.ts[i]
    if not in_hours(rule, at):
        return CLEAR
    p = rule.params
    if isinstance(p, ThresholdParams):
        return _threshold(rule, p, s.metric, float(s.values[i]), at=at, current=current)
    if isinstance(p, RateParams):
        return _rate(rule, p, s, i, current)
    if isinstance(p, SpikeParams):
        return _spike(rule, p, s, i)
    if isinstance(p, FlatlineParams):
        return _flatline(rule, p, s, i)
    if isinstance(p, CounterResetParams):
        return _counter_reset(rule, p, s, i)
    if isinstance(p, ConsistencyParams):
        return _consistency(rule, p, s, i, current)
    if isinstance(p, AnomalyParams):
        return _anomaly(rule, p, s, i, current)
    if isinstance(p, LampDaylightParams):
        return _lamp(rule, p, s, i)
    if isinstance(p, NoiseParams):
        return _noise(rule, p, s, i, current)
    if isinstance(p, RiverAlarmParams):
        return _river(rule, p, s, i, current)
    raise ValueError(f"rule {rule.id}: kind {rule.kind} is not judged reading by reading")


def _threshold(
    rule: Rule,
    p: ThresholdParams,
    metric: str,
    v: float,
    *,
    at: datetime,
    current: Outcome | None,
) -> Outcome:
    h = rule.hysteresis
    # An alert already critical stays critical until the value is hysteresis back past the
    # critical threshold, like clearing.
    slack = h if current is not None and current.severity == "critical" else 0.0
    if p.op == "outside":
        lo, hi = float(p.low or 0.0), float(p.high or 0.0)
        beyond = v > hi or v < lo
        back_inside = lo + h <= v <= hi - h
        crit = p.critical_low is not None and p.critical_high is not None
        crit = crit and (
            v < (p.critical_low or 0.0) + slack or v > (p.critical_high or 0.0) - slack
        )
        limit = hi if v > (lo + hi) / 2 else lo
        text = f"{_fmt(metric, v)} outside [{lo:g}, {hi:g}] at {_local(at)}"
    else:
        t = float(p.value or 0.0)
        sign = 1.0 if p.op == ">" else -1.0
        beyond = sign * (v - t) > 0
        back_inside = sign * (v - t) <= -h
        crit = p.critical is not None and sign * (v - p.critical) > -slack
        limit = t
        text = f"{_fmt(metric, v)} {p.op} {t:g} at {_local(at)}"
    if beyond:
        return Outcome("fire", "critical" if crit else rule.severity, v, limit, text)
    if current is not None and not back_inside:
        return Outcome("keep", current.severity, v, limit, current.message)
    return Outcome("clear", value=v, threshold=limit)


def _rate(rule: Rule, p: RateParams, s: Samples, i: int, current: Outcome | None) -> Outcome:
    target = s.secs[i] - p.window.total_seconds()
    j = int(np.searchsorted(s.secs, target, side="right")) - 1
    # Needs a reading at most half a window older than the window's start to compare with.
    if j < 0 or s.secs[j] < target - p.window.total_seconds() / 2:
        return KEEP
    change = float(s.values[i] - s.values[j])
    amount = change if p.rise is not None else -change
    limit = float(p.rise if p.rise is not None else p.fall or 0.0)
    word = "rose" if p.rise is not None else "fell"
    minutes = p.window.total_seconds() / 60
    text = (
        f"{s.metric} {word} {abs(change):.3g} in {minutes:g} min (limit {limit:g}),"
        f" now {float(s.values[i]):.4g} at {_local(s.ts[i])}"
    )
    crit = p.critical is not None and amount > p.critical
    severity: Severity = "critical" if crit else rule.severity
    if amount > limit:
        return Outcome("fire", severity, amount, limit, text, {"change": change})
    if current is not None and amount > limit - rule.hysteresis:
        return Outcome("keep", current.severity, amount, limit, current.message)
    return Outcome("clear", value=amount, threshold=limit)


def _spike(rule: Rule, p: SpikeParams, s: Samples, i: int) -> Outcome:
    prev = s.values[max(0, i - p.samples) : i]
    if prev.size < 3:
        return KEEP
    med = float(np.median(prev))
    spread = MAD_SCALE * float(np.median(np.abs(prev - med)))
    v = float(s.values[i])
    dev = abs(v - med)
    limit = max(p.mad_k * spread, p.min_delta)
    if dev > limit and dev > 0:
        text = (
            f"{_fmt(s.metric, v)} jumped {dev:.3g} from the recent median {med:.4g}"
            f" at {_local(s.ts[i])}"
        )
        return Outcome("fire", rule.severity, v, limit, text, {"median": med, "mad": spread})
    return Outcome("clear", value=v)


def _flatline(rule: Rule, p: FlatlineParams, s: Samples, i: int) -> Outcome:
    window = s.window(i, p.window)
    lo_ts = s.secs[i] - p.window.total_seconds()
    first = int(np.searchsorted(s.secs, lo_ts, side="left"))
    # The readings must cover the window: one at (or just after) its start.
    covered = first < s.secs.size and s.secs[first] - lo_ts <= p.window.total_seconds() * 0.1
    if window.size < p.min_samples or not covered:
        return KEEP
    span = float(window.max() - window.min())
    if span <= p.epsilon:
        hours = p.window.total_seconds() / 3600
        text = (
            f"{s.metric} stuck at {float(s.values[i]):.4g} (±{p.epsilon:g}) for {hours:g} h"
            f" up to {_local(s.ts[i])}"
        )
        return Outcome("fire", rule.severity, float(s.values[i]), p.epsilon, text)
    return Outcome("clear", value=span)


def _counter_reset(rule: Rule, p: CounterResetParams, s: Samples, i: int) -> Outcome:
    if i == 0:
        return KEEP
    prev, v = float(s.values[i - 1]), float(s.values[i])
    if v < prev - p.jitter:
        text = f"{s.metric} counter went from {prev:.6g} down to {v:.6g} at {_local(s.ts[i])}"
        return Outcome("fire", rule.severity, v, prev, text, {"previous": prev})
    return Outcome("clear", value=v)


def _consistency(
    rule: Rule, p: ConsistencyParams, s: Samples, i: int, current: Outcome | None
) -> Outcome:
    if s.other_ts is None or s.other_values is None or s.other_ts.size == 0:
        return KEEP
    j = int(np.argmin(np.abs(s.other_ts - s.secs[i])))
    if abs(s.other_ts[j] - s.secs[i]) > p.tolerance.total_seconds():
        return KEEP
    v, other = float(s.values[i]), float(s.other_values[j])
    excess = v - other
    if excess > p.margin:
        text = (
            f"{_fmt(s.metric, v)} > {_fmt(p.other, other)} at {_local(s.ts[i])}:"
            " physically impossible, check the sensor"
        )
        return Outcome("fire", rule.severity, v, other, text, {p.other: other})
    if current is not None and excess > p.margin - rule.hysteresis:
        return Outcome("keep", current.severity, v, other, current.message)
    return Outcome("clear", value=v, threshold=other)


def hour_of(at: datetime) -> int:
    """Hour number since the epoch (UTC) of a time."""
    return int(at.timestamp() // 3600)


def robust_z(
    x: float, baseline: Sequence[float] | npt.NDArray[np.float64], min_spread: float
) -> tuple[float, float, float]:
    """(z, median, spread) of ``x`` against baseline values: (x − median) / (1.4826 · MAD)."""
    arr = np.asarray(baseline, dtype=np.float64)
    med = float(np.median(arr))
    spread = max(MAD_SCALE * float(np.median(np.abs(arr - med))), min_spread)
    if spread == 0:
        return (0.0 if x == med else math.copysign(math.inf, x - med)), med, spread
    return (x - med) / spread, med, spread


def _anomaly(rule: Rule, p: AnomalyParams, s: Samples, i: int, current: Outcome | None) -> Outcome:
    if s.baseline is None:
        return KEEP
    hour = hour_of(s.ts[i])
    week = 7 * 24
    base = [
        s.baseline[hour - k * week]
        for k in range(1, p.baseline_weeks + 1)
        if hour - k * week in s.baseline
    ]
    if len(base) < p.min_baseline:
        return KEEP
    x = float(np.mean(s.window(i, p.window)))
    z, med, spread = robust_z(x, base, p.min_spread)
    score = {"both": abs(z), "above": z, "below": -z}[p.direction]
    details = {
        "z": round(z, 2) if math.isfinite(z) else str(z),
        "baseline_median": med,
        "baseline_spread": spread,
        "baseline_weeks": len(base),
    }
    if score > p.z:
        text = (
            f"{_fmt(s.metric, x)} (mean over {p.window.total_seconds() / 60:g} min) is"
            f" {z:+.1f} robust SD from the usual {med:.4g} for this hour of the week,"
            f" at {_local(s.ts[i])}"
        )
        return Outcome("fire", rule.severity, x, med, text, details)
    if current is not None and score > p.z - rule.hysteresis:
        return Outcome("keep", current.severity, x, med, current.message, details)
    return Outcome("clear", value=x, threshold=med)


def _lamp(rule: Rule, p: LampDaylightParams, s: Samples, i: int) -> Outcome:
    v = float(s.values[i])
    if v >= p.on_at and is_daylight(s.ts[i], p.margin):
        text = f"street light on in daylight ({s.metric} {v:g}) at {_local(s.ts[i])}"
        return Outcome("fire", rule.severity, v, p.on_at, text)
    return Outcome("clear", value=v)


def laeq(levels: npt.NDArray[np.float64]) -> float:
    """Energy-average of sound levels in dB: 10·log10(mean(10^(L/10)))."""
    return float(10 * np.log10(np.mean(np.power(10.0, levels / 10.0))))


def _noise(rule: Rule, p: NoiseParams, s: Samples, i: int, current: Outcome | None) -> Outcome:
    area_type = s.meta.get("area_type", p.area_type)
    if area_type not in ("special", "normal"):
        area_type = p.area_type
    level = laeq(s.window(i, p.window))
    limit = noise_limit(area_type, s.ts[i]) + p.margin
    local = as_local(s.ts[i]).time()
    period = "day" if time(6) <= local < time(21) else "night"
    details = {"area_type": area_type, "period": period, "limit_db": limit}
    if level > limit:
        text = (
            f"noise LAeq,{p.window.total_seconds() / 60:g}min {level:.1f} dBA over the"
            f" QCVN 26:2010 {period} limit {limit:g} dBA ({area_type} area) at {_local(s.ts[i])}"
        )
        return Outcome("fire", rule.severity, level, limit, text, details)
    if current is not None and level > limit - rule.hysteresis:
        return Outcome("keep", current.severity, level, limit, current.message, details)
    return Outcome("clear", value=level, threshold=limit)


def _river(rule: Rule, p: RiverAlarmParams, s: Samples, i: int, current: Outcome | None) -> Outcome:
    gauge = s.meta.get("gauge", p.gauge)
    if gauge not in GAUGES:
        return KEEP
    v = float(s.values[i])
    up = alarm_level(gauge, v, include_unverified=p.include_unverified)
    level = up
    held = int(current.details.get("alarm_level", 0)) if current is not None else 0
    if up < held:
        # Falling: a level is left only hysteresis below its threshold.
        level = max(
            up, alarm_level(gauge, v + rule.hysteresis, include_unverified=p.include_unverified)
        )
    if level == 0:
        return Outcome("clear", value=v)
    severity = alarm_severity(level) or rule.severity
    g = GAUGES[gauge]
    threshold = g.thresholds[level].stage_m if level in g.thresholds else None
    roman = {1: "I", 2: "II", 3: "III"}[level]
    text = f"{g.river} at {g.name}: {v:.2f} m, flood alarm level {roman} at {_local(s.ts[i])}"
    details = {"alarm_level": level, "gauge": gauge, "river": g.river, "station": g.name}
    return Outcome("fire", severity, v, threshold, text, details)


def check_stale(  # noqa: PLR0917 (one call site, all positional facts)
    rule: Rule,
    p: StaleParams,
    last_seen: datetime | None,
    since: datetime,
    meta: Mapping[str, Any],
    now: datetime,
) -> Outcome:
    """Verdict of a stale/offline rule for one device at ``now``.

    Args:
        rule: the rule.
        p: its parameters.
        last_seen: the newest reading time or receive time of the device, if any.
        since: when the device was registered (counts as its last sign of life before any data).
        meta: the device's metadata (``interval_s`` overrides the rule's interval).
        now: the evaluation time.
    """
    interval = p.interval_s
    raw = meta.get("interval_s")
    if isinstance(raw, int | float) and not isinstance(raw, bool) and raw > 0:
        interval = float(raw)
    last = last_seen or since
    age = (now - last).total_seconds()
    limit = p.intervals * interval
    if age <= limit:
        return Outcome("clear", value=age, threshold=limit)
    crit = p.critical_intervals is not None and age > p.critical_intervals * interval
    word = "offline" if crit else "stale"
    seen = _local(last_seen) if last_seen else "never"
    text = (
        f"device {word}: no data for {age / 60:.0f} min (expected every {interval:g} s),"
        f" last seen {seen}"
    )
    details = {"last_seen": last_seen.isoformat() if last_seen else None, "interval_s": interval}
    return Outcome("fire", "critical" if crit else rule.severity, age, limit, text, details)


def check_aqi(  # noqa: PLR0917 (one call site, all positional facts)
    rule: Rule,
    p: AqiCategoryParams,
    value: int,
    dominant: str,
    hour: datetime,
    current: Outcome | None,
) -> Outcome:
    """Verdict of an AQI category rule on one hourly AQI value (hour start ``hour``)."""
    cats = aqi.CATEGORIES if p.method == "VN_AQI" else US_CATEGORIES
    by_key = {c.key: c for c in cats}
    low = by_key[p.min_category].low
    crit_low = by_key[p.critical_category].low if p.critical_category else None
    cat = aqi.category_for(value, cats)
    h = rule.hysteresis
    was_crit = current is not None and current.severity == "critical"
    crit = crit_low is not None and value >= crit_low - (h if was_crit else 0)
    details = {
        "category": cat.key,
        "category_vi": cat.name_vi,
        "dominant": dominant,
        "method": p.method,
        "hour": hour.astimezone(UTC).isoformat(),
    }
    severity: Severity = "critical" if crit else rule.severity
    text = (
        f"{p.method} {value} ({cat.name_vi} / {cat.name_en}), dominant {dominant},"
        f" hour from {_local(hour)}"
    )
    if value >= low:
        return Outcome("fire", severity, float(value), float(low), text, details)
    if current is not None and value >= low - h:
        return Outcome("keep", severity, float(value), float(low), current.message, details)
    return Outcome("clear", value=float(value), threshold=float(low))
