"""The rule engine: judge new readings once, drive each series' alert through its lifecycle.

For every rule and every (device, metric) in its scope the engine keeps a small state machine in
``rule_series_state``:

- **pending**: the condition holds; the alert opens once it has held for the rule's ``for``.
- **active**: the alert is open; its severity follows the condition (escalation); it resolves
  once the condition has cleared past the hysteresis for ``clear_for``, and not before ``hold``
  after it opened.
- **flapping**: more than ``flap_transitions`` open/resolve transitions within ``flap_window``:
  instead of resolving again the alert stays open, marked flapping, its notifications muted,
  until the condition has not changed for a whole ``flap_window``; then it resolves (or stays
  open, no longer flapping, if the condition holds).
- **suppressed**: an operator resolved the alert while the condition still held; nothing reopens
  until the condition has cleared once.

Readings are judged in data-time order, each exactly once: the newest judged timestamp is the
series' watermark, saved with the state machine and the alert changes in one transaction. A
restart therefore neither repeats an alert nor skips a reading.

Readings that arrive after their series' watermark passed them (late data, within
``late_horizon``) are found by a periodic scan of ``readings.received_at``; the series is rewound
to its newest checkpoint (``rule_series_checkpoints``) before them and judged again over the
merged readings, recording only the transitions not already recorded, at the data's times.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
from psycopg.types.json import Jsonb

from analytics import alerts
from analytics.alerts import NewAlert
from analytics.conditions import (
    Outcome,
    Samples,
    check,
    check_aqi,
    check_stale,
    context,
    hour_of,
)
from analytics.rules import AnomalyParams, AqiCategoryParams, ConsistencyParams, StaleParams
from analytics.series import (
    DeviceInfo,
    RawSeries,
    fetch_range,
    fetch_readings,
    hourly_means,
    last_signs,
    scope_devices,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    import psycopg

    from analytics.alerts import Severity
    from analytics.rules import Rule, RuleSet

log = logging.getLogger(__name__)

WEEK: Final = timedelta(days=7)
_STATE_TIMES: Final = (
    "pending_since",
    "opened_ts",
    "clear_since",
    "last_transition",
    "checkpoint_ts",
)


@dataclass(slots=True)
class SeriesState:
    """The state machine of one (rule, device, metric); saved as JSON between cycles."""

    pending_since: datetime | None = None
    active: bool = False
    alert_id: int | None = None
    opened_ts: datetime | None = None
    clear_since: datetime | None = None
    severity: str | None = None
    message: str = ""
    value: float | None = None
    threshold: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    suppressed: bool = False
    cond: bool = False
    flapping: bool = False
    last_transition: datetime | None = None
    transitions: list[datetime] = field(default_factory=list)
    # Data time of the series' newest checkpoint (rule_series_checkpoints).
    checkpoint_ts: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO 8601)."""
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat()
            out[name] = value
        out["transitions"] = [t.isoformat() for t in self.transitions]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SeriesState:
        """The state saved by :meth:`to_json` (unknown keys ignored: older versions)."""
        st = cls()
        for name in cls.__slots__:
            if name not in data:
                continue
            value = data[name]
            if name in _STATE_TIMES and value is not None:
                value = datetime.fromisoformat(value)
            setattr(st, name, value)
        st.transitions = [datetime.fromisoformat(t) for t in data.get("transitions", [])]
        st.details = dict(data.get("details") or {})
        return st

    def current(self) -> Outcome | None:
        """The last ``fire`` verdict while active (for hysteresis and escalation)."""
        if not self.active:
            return None
        severity: Severity = self.severity or "warning"  # type: ignore[assignment]
        return Outcome("fire", severity, self.value, self.threshold, self.message, self.details)


@dataclass(slots=True)
class EvalStats:
    """What one evaluation did (for logs and tests)."""

    readings: int = 0
    opened: int = 0
    resolved: int = 0
    escalated: int = 0
    flapping: int = 0

    def add(self, other: EvalStats) -> None:
        """Add another evaluation's counts to these."""
        self.readings += other.readings
        self.opened += other.opened
        self.resolved += other.resolved
        self.escalated += other.escalated
        self.flapping += other.flapping


@dataclass(slots=True)
class _RuleRun:
    """One rule's evaluation in one cycle."""

    conn: psycopg.Connection[Any]
    rule: Rule
    devices: list[DeviceInfo]
    states: dict[tuple[str, str], SeriesState]
    open_now: Mapping[tuple[str, str], alerts.Alert]
    now: datetime
    stats: EvalStats


@dataclass(slots=True)
class _Series:
    """The context of one series during a cycle."""

    conn: psycopg.Connection[Any]
    rule: Rule
    device: DeviceInfo
    metric: str
    now: datetime
    stats: EvalStats
    # Judging again after late readings: events are timed at the data's times, and transitions
    # already recorded for the same data times are reused instead of repeated.
    replay: bool = False

    def when(self, at: datetime) -> datetime:
        """The time of an event caused by the reading at ``at``."""
        return at if self.replay else self.now


class RuleEngine:
    """Evaluates rules against the database, incrementally by watermark.

    Args:
        lookback: how far before ``now`` a series without a watermark starts (plus the rule's
            ``for``): a new rule or device is judged on its recent past, not on all history.
        max_new: the most readings one cycle judges per series; a backlog (the engine was
            down) is worked off over several cycles.
        late_horizon: how far before ``now`` late readings (arriving after their series'
            watermark passed them) are still judged; older ones are ignored.
        late_scan_every: how often (in ``now`` time) each rule looks for late readings.
        checkpoint_every: data time between two saved states of a series (what a series is
            rewound to when late readings arrive).
    """

    def __init__(
        self,
        *,
        lookback: timedelta = timedelta(hours=1),
        max_new: int = 5000,
        late_horizon: timedelta = timedelta(hours=48),
        late_scan_every: timedelta = timedelta(seconds=60),
        checkpoint_every: timedelta = timedelta(hours=1),
    ) -> None:
        self.lookback = lookback
        self.max_new = max_new
        self.late_horizon = late_horizon
        self.late_scan_every = late_scan_every
        self.checkpoint_every = checkpoint_every
        # rule id -> the ``now`` of its last late-readings scan (this process)
        self._late_scanned: dict[str, datetime] = {}
        # rule id -> (hour the baseline was fetched for, {(device, metric): {hour: mean}})
        self._baselines: dict[str, tuple[int, dict[tuple[str, str], dict[int, float]]]] = {}

    # --- entry points ------------------------------------------------------------------------
    def evaluate(self, conn: psycopg.Connection[Any], rules: RuleSet, now: datetime) -> EvalStats:
        """Evaluate every rule once at ``now``; each rule commits on its own.

        A rule that fails (bad data, a bug) is logged and skipped; the others still run.
        Database connection errors propagate (the service reconnects).
        """
        total = EvalStats()
        for rule in rules.rules:
            try:
                total.add(self.evaluate_rule(conn, rule, now))
            except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
                log.exception(
                    "rule %s failed at %s: %s", rule.id, now.isoformat(), type(exc).__name__
                )
        self.retire_removed(conn, rules, now)
        return total

    def evaluate_rule(self, conn: psycopg.Connection[Any], rule: Rule, now: datetime) -> EvalStats:
        """Evaluate one rule at ``now`` in one transaction."""
        stats = EvalStats()
        with conn.transaction():
            devices = scope_devices(conn, rule.scope)
            if not devices:
                return stats
            run = _RuleRun(
                conn,
                rule,
                devices,
                self._load_states(conn, rule.id),
                alerts.open_alerts_for_rule(conn, rule.id),
                now,
                stats,
            )
            if isinstance(rule.params, StaleParams):
                self._stale(run, rule.params)
            elif isinstance(rule.params, AqiCategoryParams):
                self._aqi(run, rule.params)
            else:
                self._readings(run)
        if stats.opened or stats.resolved or stats.escalated or stats.flapping:
            log.info(
                "rule %s: %d readings, %d opened, %d resolved, %d severity changes, %d flapping",
                rule.id,
                stats.readings,
                stats.opened,
                stats.resolved,
                stats.escalated,
                stats.flapping,
            )
        return stats

    def retire_removed(self, conn: psycopg.Connection[Any], rules: RuleSet, now: datetime) -> int:
        """Resolve the alerts of rules no longer in the file (disabled rules keep theirs).

        Returns:
            How many alerts were resolved.
        """
        known = sorted(rules.ids())
        with conn.transaction():
            rows = conn.execute(
                "SELECT id, rule_id FROM alerts WHERE state <> 'resolved'"
                " AND rule_id <> ALL(%s::text[])",
                (known,),
            ).fetchall()
            for alert_id, rule_id in rows:
                alerts.auto_resolve(
                    conn,
                    alert_id,
                    comment=f"rule {rule_id} was removed from the rules file",
                    resolution="rule_removed",
                    at=now,
                )
            conn.execute("DELETE FROM rule_series_state WHERE rule_id <> ALL(%s::text[])", (known,))
        return len(rows)

    # --- rule kinds --------------------------------------------------------------------------
    def _readings(self, run: _RuleRun) -> None:
        conn, rule, devices, states, open_now, now, stats = (
            run.conn,
            run.rule,
            run.devices,
            run.states,
            run.open_now,
            run.now,
            run.stats,
        )
        raw = fetch_readings(
            conn,
            rule_id=rule.id,
            state_metric=rule.metric,
            devices=[d.id for d in devices],
            metrics=rule.needed_metrics(),
            start=now - rule.duration - self.lookback,
            now=now,
            context=context(rule),
            max_new=self.max_new,
        )
        baselines = (
            self._baseline(conn, rule, rule.params, devices, now)
            if isinstance(rule.params, AnomalyParams)
            else {}
        )
        late = self._late_readings(run)
        for device in devices:
            key = (device.id, rule.metric)
            series = raw.get(key)
            st = self._reconcile(states.get(key), open_now.get(key))
            if device.id in late:
                st = self._rejudge(run, device, st, late[device.id], baselines.get(key))
            if series is None or not any(series.new):
                if key in states or key in open_now or device.id in late:
                    self._save(conn, rule.id, key, None, st)
                continue
            samples = self._samples(rule, device, series, raw, baselines.get(key))
            ctx = _Series(conn, rule, device, rule.metric, now, stats)
            self._judge(ctx, st, samples)
            if st.active and st.alert_id is not None and st.value is not None:
                alerts.update_value(conn, st.alert_id, st.value)
            self._save(conn, rule.id, key, samples.ts[-1], st)

    def _judge(self, ctx: _Series, st: SeriesState, samples: Samples) -> None:
        """Step the state machine over the new readings of ``samples``, checkpointing."""
        for i in range(samples.first_new, len(samples.ts)):
            ctx.stats.readings += 1
            verdict = check(ctx.rule, samples, i, st.current())
            self._step(ctx, st, samples.ts[i], verdict)
            self._checkpoint(ctx, st, samples.ts[i])

    def _checkpoint(self, ctx: _Series, st: SeriesState, ts: datetime) -> None:
        """Save the state after the reading at ``ts`` if the last checkpoint is old enough."""
        if st.checkpoint_ts is not None and ts - st.checkpoint_ts < self.checkpoint_every:
            return
        st.checkpoint_ts = ts
        key = (ctx.rule.id, ctx.device.id, ctx.metric)
        ctx.conn.execute(
            "INSERT INTO rule_series_checkpoints (rule_id, device_id, metric, ts, state)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (rule_id, device_id, metric, ts)"
            " DO UPDATE SET state = EXCLUDED.state",
            (*key, ts, Jsonb(st.to_json())),
        )
        ctx.conn.execute(
            "DELETE FROM rule_series_checkpoints WHERE rule_id = %s AND device_id = %s"
            " AND metric = %s AND ts < %s",
            (*key, ts - self.late_horizon - self.checkpoint_every),
        )

    def _late_readings(self, run: _RuleRun) -> dict[str, tuple[datetime, datetime]]:
        """Series of the rule that received readings at or before their watermark.

        Scans (at most every ``late_scan_every``) the readings received since the rule's
        previous scan (``analytics_watermarks``, job ``rule-late:<rule id>``, the database's
        clock like ``readings.received_at``) within the late-data horizon, for the devices
        and metrics of the rule only: an index range per series, never the whole hypertable.

        Returns:
            By device: (the earliest late reading's time, the series' watermark).
        """
        conn, rule, now = run.conn, run.rule, run.now
        last = self._late_scanned.get(rule.id)
        if last is not None and timedelta(0) <= now - last < self.late_scan_every:
            return {}
        self._late_scanned[rule.id] = now
        job = f"rule-late:{rule.id}"
        row = conn.execute(
            "SELECT value FROM analytics_watermarks WHERE job = %s", (job,)
        ).fetchone()
        scan = conn.execute("SELECT statement_timestamp()").fetchone()
        assert scan is not None  # noqa: S101 (SELECT returns a row)
        found: dict[str, tuple[datetime, datetime]] = {}
        if row is not None:
            rows = conn.execute(
                """
SELECT s.device_id, min(r.ts), min(s.last_ts)
FROM rule_series_state AS s
CROSS JOIN unnest(%(metrics)s::text[]) AS m(metric)
JOIN readings AS r ON r.device_id = s.device_id AND r.metric = m.metric
 AND r.ts > %(horizon)s AND r.ts <= s.last_ts AND r.received_at > %(since)s
WHERE s.rule_id = %(rule)s AND s.metric = %(state_metric)s
  AND s.device_id = ANY(%(devices)s::text[])
GROUP BY 1
""",
                {
                    "metrics": list(rule.needed_metrics()),
                    "horizon": now - self.late_horizon,
                    "since": row[0],
                    "rule": rule.id,
                    "state_metric": rule.metric,
                    "devices": [d.id for d in run.devices],
                },
            ).fetchall()
            found = {str(d): (earliest, until) for d, earliest, until in rows}
        conn.execute(
            "INSERT INTO analytics_watermarks (job, value) VALUES (%s, %s)"
            " ON CONFLICT (job) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
            (job, scan[0]),
        )
        return found

    def _rejudge(
        self,
        run: _RuleRun,
        device: DeviceInfo,
        st: SeriesState,
        late: tuple[datetime, datetime],
        baseline: dict[int, float] | None,
    ) -> SeriesState:
        """Judge a series again from its newest checkpoint before its earliest late reading.

        The state machine restarts from the checkpoint (a clean state when there is none: the
        series is younger than the late readings) and runs over the merged readings up to its
        watermark. Transitions already recorded for the same data times are reused, new ones are
        recorded at the data's times: repeating this changes nothing.
        """
        conn, rule = run.conn, run.rule
        earliest, until = late
        key = (device.id, rule.metric)
        row = conn.execute(
            "SELECT ts, state FROM rule_series_checkpoints WHERE rule_id = %s AND device_id = %s"
            " AND metric = %s AND ts < %s ORDER BY ts DESC LIMIT 1",
            (rule.id, device.id, rule.metric, earliest),
        ).fetchone()
        if row is not None:
            since: datetime = row[0]
            rewound = SeriesState.from_json(row[1])
        else:
            since, rewound = run.now - self.late_horizon, SeriesState()
        # Later checkpoints were taken without the late readings.
        conn.execute(
            "DELETE FROM rule_series_checkpoints WHERE rule_id = %s AND device_id = %s"
            " AND metric = %s AND ts > %s",
            (rule.id, device.id, rule.metric, since),
        )
        fetched = fetch_range(
            conn,
            device=device.id,
            metrics=rule.needed_metrics(),
            since=since,
            until=until,
            context=context(rule),
        )
        series = fetched.get(rule.metric)
        if series is None or not any(series.new):
            return st
        raw = {(device.id, m): s for m, s in fetched.items()}
        samples = self._samples(rule, device, series, raw, baseline)
        before = EvalStats()
        before.add(run.stats)
        ctx = _Series(conn, rule, device, rule.metric, run.now, run.stats, replay=True)
        self._judge(ctx, rewound, samples)
        if rewound.active and rewound.alert_id is not None and rewound.value is not None:
            alerts.update_value(conn, rewound.alert_id, rewound.value)
        log.info(
            "rule %s: late readings of %s from %s: judged again from %s to %s"
            " (%d opened, %d resolved, %d severity changes)",
            rule.id,
            device.id,
            earliest.isoformat(),
            since.isoformat(),
            until.isoformat(),
            run.stats.opened - before.opened,
            run.stats.resolved - before.resolved,
            run.stats.escalated - before.escalated,
        )
        # Operators may have acted on these alerts meanwhile.
        return self._reconcile(rewound, alerts.open_alerts_for_rule(conn, rule.id).get(key))

    @staticmethod
    def _samples(
        rule: Rule,
        device: DeviceInfo,
        series: RawSeries,
        raw: Mapping[tuple[str, str], RawSeries],
        baseline: dict[int, float] | None,
    ) -> Samples:
        other_ts = other_values = None
        if isinstance(rule.params, ConsistencyParams):
            other = raw.get((device.id, rule.params.other), None)
            if other is not None:
                other_ts = np.array([t.timestamp() for t in other.ts], dtype=np.float64)
                other_values = np.array(other.values, dtype=np.float64)
        return Samples(
            device_id=device.id,
            metric=rule.metric,
            ts=series.ts,
            values=np.array(series.values, dtype=np.float64),
            first_new=series.new.index(True),
            meta=device.metadata,
            other_ts=other_ts,
            other_values=other_values,
            baseline=baseline,
        )

    def _baseline(
        self,
        conn: psycopg.Connection[Any],
        rule: Rule,
        p: AnomalyParams,
        devices: list[DeviceInfo],
        now: datetime,
    ) -> dict[tuple[str, str], dict[int, float]]:
        """Hourly means of the past weeks (rollup tier), fetched once per hour per rule."""
        hour = hour_of(now)
        cached = self._baselines.get(rule.id)
        if cached is not None and cached[0] == hour:
            return cached[1]
        end_hour = now.replace(minute=0, second=0, microsecond=0)
        end = end_hour - WEEK + timedelta(hours=1)
        # Reaches back far enough for readings judged up to a day late (a backlog).
        start = end_hour - p.baseline_weeks * WEEK - timedelta(days=1)
        means = hourly_means(conn, [d.id for d in devices], [rule.metric], start, end)
        table = {key: {hour_of(h): v for h, v in by_hour.items()} for key, by_hour in means.items()}
        self._baselines[rule.id] = (hour, table)
        return table

    def _stale(self, run: _RuleRun, p: StaleParams) -> None:
        conn, rule, devices, states, open_now, now, stats = (
            run.conn,
            run.rule,
            run.devices,
            run.states,
            run.open_now,
            run.now,
            run.stats,
        )
        signs = last_signs(conn, [d.id for d in devices])
        for device in devices:
            key = (device.id, rule.metric)
            st = self._reconcile(states.get(key), open_now.get(key))
            since = device.created_at or now
            verdict = check_stale(rule, p, signs.get(device.id), since, device.metadata, now)
            stats.readings += 1
            self._step(_Series(conn, rule, device, rule.metric, now, stats), st, now, verdict)
            self._save(conn, rule.id, key, now, st)

    def _aqi(self, run: _RuleRun, p: AqiCategoryParams) -> None:
        conn, rule, devices, states, open_now, now, stats = (
            run.conn,
            run.rule,
            run.devices,
            run.states,
            run.open_now,
            run.now,
            run.stats,
        )
        rows = conn.execute(
            """
SELECT h.station_id, h.hour, h.value, h.dominant
FROM aqi_hourly AS h
JOIN unnest(%(devices)s::text[]) AS d(id) ON h.station_id = d.id
LEFT JOIN rule_series_state AS s
  ON s.rule_id = %(rule)s AND s.device_id = h.station_id AND s.metric = %(metric)s
WHERE h.method = %(method)s AND h.hour > coalesce(s.last_ts, %(start)s) AND h.hour <= %(now)s
ORDER BY 1, 2
""",
            {
                "devices": [d.id for d in devices],
                "rule": rule.id,
                "metric": rule.metric,
                "method": p.method,
                "start": now - rule.duration - self.lookback - timedelta(hours=1),
                "now": now,
            },
        ).fetchall()
        by_station: dict[str, list[tuple[datetime, int, str]]] = {}
        for station, hour, value, dominant in rows:
            by_station.setdefault(station, []).append((hour, int(value), str(dominant)))
        for device in devices:
            key = (device.id, rule.metric)
            st = self._reconcile(states.get(key), open_now.get(key))
            hours = by_station.get(device.id, [])
            ctx = _Series(conn, rule, device, rule.metric, now, stats)
            for hour, value, dominant in hours:
                stats.readings += 1
                self._step(ctx, st, hour, check_aqi(rule, p, value, dominant, hour, st.current()))
            if hours or key in states:
                self._save(conn, rule.id, key, hours[-1][0] if hours else None, st)

    # --- state ----------------------------------------------------------------------------------
    @staticmethod
    def _load_states(
        conn: psycopg.Connection[Any], rule_id: str
    ) -> dict[tuple[str, str], SeriesState]:
        rows = conn.execute(
            "SELECT device_id, metric, state FROM rule_series_state WHERE rule_id = %s FOR UPDATE",
            (rule_id,),
        ).fetchall()
        return {(d, m): SeriesState.from_json(s) for d, m, s in rows}

    @staticmethod
    def _save(
        conn: psycopg.Connection[Any],
        rule_id: str,
        key: tuple[str, str],
        last_ts: datetime | None,
        st: SeriesState,
    ) -> None:
        # last_ts None: keep the watermark (only the state machine changed).
        conn.execute(
            "INSERT INTO rule_series_state AS s (rule_id, device_id, metric, last_ts, state,"
            " updated_at) VALUES (%s, %s, %s, coalesce(%s, now()), %s, now())"
            " ON CONFLICT (rule_id, device_id, metric) DO UPDATE"
            " SET last_ts = coalesce(%s, s.last_ts), state = EXCLUDED.state, updated_at = now()",
            (rule_id, key[0], key[1], last_ts, Jsonb(st.to_json()), last_ts),
        )

    @staticmethod
    def _reconcile(st: SeriesState | None, alert: alerts.Alert | None) -> SeriesState:
        """Line the saved state up with the alerts table (operators act between cycles)."""
        st = st or SeriesState()
        if st.active and (alert is None or alert.id != st.alert_id):
            if alert is None:
                # Resolved by an operator: do not reopen until the condition clears once.
                st.active, st.flapping, st.alert_id = False, False, None
                st.pending_since, st.clear_since = None, None
                st.suppressed = st.cond
            else:
                st.alert_id = alert.id
        elif not st.active and alert is not None:
            # An unresolved alert without state (state lost, or another engine opened it).
            st.active, st.alert_id, st.opened_ts = True, alert.id, alert.opened_at
            st.severity, st.flapping, st.cond = alert.severity, alert.flapping, True
            st.message, st.value, st.threshold = alert.message, alert.value, alert.threshold
            st.details = dict(alert.details)
        return st

    # --- the state machine ---------------------------------------------------------------------
    def _step(self, ctx: _Series, st: SeriesState, at: datetime, out: Outcome) -> None:
        """Advance one series' state machine by one verdict at data time ``at``."""
        if st.flapping:
            self._step_flapping(ctx, st, at, out)
            return
        if out.state == "keep":
            if st.active:
                st.clear_since = None
                st.value = out.value if out.value is not None else st.value
            return
        if out.state == "fire":
            st.cond = True
            st.clear_since = None
            if st.suppressed:
                return
            if not st.active:
                st.pending_since = st.pending_since or at
                if at - st.pending_since >= ctx.rule.duration:
                    self._open(ctx, st, at, out)
            else:
                self._follow(ctx, st, at, out, notify=True)
            return
        st.cond = False
        st.pending_since = None
        st.suppressed = False
        if not st.active:
            return
        st.clear_since = st.clear_since or at
        opened = st.opened_ts or at
        if at - st.clear_since >= ctx.rule.clear_for and at - opened >= ctx.rule.hold:
            self._close(ctx, st, at)

    def _step_flapping(self, ctx: _Series, st: SeriesState, at: datetime, out: Outcome) -> None:
        holds = out.state == "fire" or (out.state == "keep" and st.cond)
        if holds != st.cond:
            st.cond = holds
            st.last_transition = at
            self._transition(ctx, st, at)
        if out.state == "fire":
            self._follow(ctx, st, at, out, notify=False)
        if st.last_transition is None or at - st.last_transition < ctx.rule.flap_window:
            return
        assert st.alert_id is not None  # noqa: S101 (flapping implies an open alert)
        if st.cond:
            alerts.set_flapping(
                ctx.conn,
                st.alert_id,
                flapping=False,
                at=ctx.when(at),
                details={"stable_since": st.last_transition.isoformat()},
            )
            st.flapping = False
            return
        resolved = alerts.auto_resolve(
            ctx.conn,
            st.alert_id,
            comment="condition stable and clear after flapping",
            at=ctx.when(at),
        )
        if resolved is not None:
            ctx.stats.resolved += 1
        self._reset(st)

    def _transition(self, ctx: _Series, st: SeriesState, at: datetime) -> int:
        """Record an open/resolve (or, while flapping, a condition change); count the window's."""
        window_start = at - ctx.rule.flap_window
        st.transitions = [t for t in st.transitions if t > window_start] + [at]
        return len(st.transitions)

    def _open(self, ctx: _Series, st: SeriesState, at: datetime, out: Outcome) -> None:
        severity: Severity = out.severity or ctx.rule.severity
        title = ctx.rule.title or ctx.rule.id
        name = ctx.device.name or ctx.device.id
        new = NewAlert(
            rule_id=ctx.rule.id,
            kind=ctx.rule.kind,
            device_id=ctx.device.id,
            metric=ctx.metric,
            severity=severity,
            title=f"{title}: {name}",
            message=out.message,
            started_at=st.pending_since or at,
            opened_at=at,
            value=out.value,
            threshold=out.threshold,
            details={**out.details, "rule": ctx.rule.id, "device_name": ctx.device.name},
        )
        recorded = self._recorded_open(ctx, at) if ctx.replay else None
        if recorded is not None:
            # Judging again: this alert was already raised for the same data time.
            st.active, st.alert_id, st.opened_ts = True, recorded, at
            st.pending_since, st.clear_since = None, None
            self._transition(ctx, st, at)
            self._remember(st, out)
            return
        alert = alerts.open_alert(ctx.conn, new, at=ctx.when(at))
        if alert is None:
            # Another engine opened it first (the unique index said so): adopt it.
            existing = alerts.open_alerts_for_rule(ctx.conn, ctx.rule.id).get(
                (ctx.device.id, ctx.metric)
            )
            if existing is None:
                return
            if ctx.replay and existing.opened_at > at:
                # Late readings show that the episode behind this alert began earlier.
                ctx.conn.execute(
                    "UPDATE alerts SET started_at = least(started_at, %s), opened_at = %s,"
                    " updated_at = now() WHERE id = %s",
                    (new.started_at, at, existing.id),
                )
            alert = existing
        else:
            ctx.stats.opened += 1
            self._transition(ctx, st, at)
        st.active, st.alert_id, st.opened_ts = True, alert.id, at
        st.pending_since, st.clear_since = None, None
        self._remember(st, out)

    @staticmethod
    def _recorded_open(ctx: _Series, at: datetime) -> int | None:
        """The alert of this series already opened at data time ``at``, if any."""
        row = ctx.conn.execute(
            "SELECT id FROM alerts WHERE rule_id = %s AND device_id = %s AND metric = %s"
            " AND opened_at = %s ORDER BY id LIMIT 1",
            (ctx.rule.id, ctx.device.id, ctx.metric, at),
        ).fetchone()
        return None if row is None else int(row[0])

    @staticmethod
    def _recorded_change(ctx: _Series, alert_id: int, at: datetime) -> bool:
        """Whether a severity or level change of the reading at ``at`` is already recorded."""
        row = ctx.conn.execute(
            "SELECT 1 FROM alerts AS a WHERE a.id = %(id)s AND (a.state = 'resolved' OR EXISTS ("
            " SELECT 1 FROM alert_events AS e WHERE e.alert_id = a.id"
            " AND e.event IN ('escalated', 'deescalated')"
            " AND (e.at = %(at)s OR (e.details ->> 'data_ts')::timestamptz = %(at)s)))",
            {"id": alert_id, "at": at},
        ).fetchone()
        return row is not None

    def _follow(
        self, ctx: _Series, st: SeriesState, at: datetime, out: Outcome, *, notify: bool
    ) -> None:
        """An active alert's condition still holds: follow its severity and level."""
        assert st.alert_id is not None  # noqa: S101 (active implies an alert)
        old_level, new_level = st.details.get("alarm_level"), out.details.get("alarm_level")
        direction: Literal["up", "down"] | None = None
        if isinstance(old_level, int) and isinstance(new_level, int) and old_level != new_level:
            direction = "up" if new_level > old_level else "down"
        changed = out.severity is not None and (
            out.severity != st.severity or direction is not None
        )
        if changed and not (ctx.replay and self._recorded_change(ctx, st.alert_id, at)):
            assert out.severity is not None  # noqa: S101 (changed implies a severity)
            alerts.escalate(
                ctx.conn,
                st.alert_id,
                out.severity,
                message=out.message,
                value=out.value,
                threshold=out.threshold,
                details=out.details,
                at=ctx.when(at),
                notify=notify,
                direction=direction,
                data_ts=at,
            )
            ctx.stats.escalated += 1
        self._remember(st, out)

    @staticmethod
    def _remember(st: SeriesState, out: Outcome) -> None:
        st.severity = out.severity
        st.message = out.message
        st.value = out.value
        st.threshold = out.threshold
        st.details = dict(out.details)

    def _close(self, ctx: _Series, st: SeriesState, at: datetime) -> None:
        assert st.alert_id is not None  # noqa: S101 (active implies an alert)
        count = self._transition(ctx, st, at)
        if count >= ctx.rule.flap_transitions:
            alerts.set_flapping(
                ctx.conn,
                st.alert_id,
                flapping=True,
                at=ctx.when(at),
                details={"transitions": count, "window_s": ctx.rule.flap_window.total_seconds()},
            )
            ctx.stats.flapping += 1
            st.flapping = True
            st.last_transition = at
            return
        resolved = alerts.auto_resolve(
            ctx.conn, st.alert_id, at=ctx.when(at), details={"cleared_at": at.isoformat()}
        )
        if resolved is not None:
            ctx.stats.resolved += 1
        self._reset(st)

    @staticmethod
    def _reset(st: SeriesState) -> None:
        st.active, st.alert_id, st.opened_ts, st.flapping = False, None, None, False
        st.clear_since, st.pending_since, st.last_transition = None, None, None
        st.severity, st.message, st.value, st.threshold, st.details = None, "", None, None, {}
