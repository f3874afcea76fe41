"""The alert lifecycle: SQL and state transitions shared by the rule engine, the CLI and the API.

An alert is one occurrence of a rule's condition on one (device, metric). Its states:

``open`` → ``acknowledged`` → ``resolved``, or ``open`` → ``resolved`` directly.

- Operators acknowledge and resolve (:func:`acknowledge`, :func:`resolve`) and comment at any
  time (:func:`comment`). An invalid transition raises :class:`AlertStateError`; an unknown id
  raises :class:`AlertNotFound`.
- The rule engine opens alerts (:func:`open_alert`), changes their severity (:func:`escalate`:
  a rising severity sends an acknowledged alert back to ``open``, it needs a new
  acknowledgement), marks them flapping (:func:`set_flapping`) and resolves them when the
  condition clears (:func:`auto_resolve`).
- A resolved alert is never reopened: the next occurrence is a new alert. At most one unresolved
  alert exists per (rule, device, metric); a partial unique index enforces it, so neither a
  restart nor a second evaluator can open a duplicate.
- Every change appends a row to ``alert_events`` (who, when, from/to state, comment): the full
  history, read with :func:`history`. Events with ``notify`` set are queued for the notification
  channels in the same transaction (``analytics.notify``).

Every function takes an open psycopg connection and runs inside ``conn.transaction()``: in an
autocommit connection that is its own transaction; inside a transaction the caller already
opened it is a savepoint and the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

from psycopg.types.json import Jsonb

from core.errors import DothiError

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    import psycopg

State = Literal["open", "acknowledged", "resolved"]
Severity = Literal["info", "warning", "critical"]
EventKind = Literal[
    "opened",
    "acknowledged",
    "resolved",
    "commented",
    "escalated",
    "deescalated",
    "flapping",
    "stable",
]
Resolution = Literal["auto", "manual", "rule_removed"]

STATES: Final[tuple[State, ...]] = get_args(State)
SEVERITIES: Final[tuple[Severity, ...]] = get_args(Severity)
SEVERITY_RANK: Final[Mapping[str, int]] = {"info": 0, "warning": 1, "critical": 2}
SYSTEM_ACTOR: Final = "system"
"""The actor recorded for the rule engine's own changes."""

MAX_LIMIT: Final = 1000
MAX_ACTOR_LEN: Final = 200
MAX_COMMENT_LEN: Final = 4000


class AlertError(DothiError):
    """Base class of the alert lifecycle's errors."""


class AlertNotFound(AlertError):  # noqa: N818 (the name the API and CLI agreed on)
    """No alert has this id.

    Attributes:
        alert_id: the id asked for.
    """

    def __init__(self, alert_id: int) -> None:
        super().__init__(f"alert {alert_id} does not exist")
        self.alert_id = alert_id


class AlertStateError(AlertError):
    """The transition is not allowed from the alert's current state.

    Attributes:
        alert_id: the alert.
        state: its current state.
        action: what was attempted (``acknowledge``, ``resolve``).
    """

    def __init__(self, alert_id: int, state: str, action: str, detail: str) -> None:
        super().__init__(f"alert {alert_id} cannot be {action}d: it is {state}{detail}")
        self.alert_id = alert_id
        self.state = state
        self.action = action


class AlertInputError(AlertError, ValueError):
    """An argument is not acceptable (empty actor, empty or over-long comment, bad filter)."""


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert and its current state.

    Attributes:
        id: the alert id.
        rule_id: the rule that raised it (``deploy/rules.toml``).
        kind: the rule's kind (``threshold``, ``stale`` …).
        device_id: the device.
        metric: the metric watched, ``*`` for device-level rules.
        area_id: the device's area when the alert opened.
        severity: ``info``, ``warning`` or ``critical`` (current; it may have changed).
        state: ``open``, ``acknowledged`` or ``resolved``.
        flapping: the condition toggles too often; notifications are muted until it is stable.
        title: one line for lists and notifications.
        message: a sentence with the value, the threshold and the time.
        value: the latest value behind the alert, in the metric's unit.
        threshold: the threshold it was compared with, where there is one.
        details: rule-specific facts (alarm level, AQI category, baseline …).
        started_at: data time of the first violating reading.
        opened_at: data time the condition was confirmed (after the rule's duration).
        created_at: wall-clock time the row was created.
        updated_at: wall-clock time of the latest change.
        acknowledged_at: when it was acknowledged (cleared again by an escalation).
        acknowledged_by: who acknowledged it.
        resolved_at: when it was resolved.
        resolved_by: who resolved it (``system`` for automatic resolution).
        resolution: ``auto``, ``manual`` or ``rule_removed``.
    """

    id: int
    rule_id: str
    kind: str
    device_id: str
    metric: str
    area_id: str | None
    severity: Severity
    state: State
    flapping: bool
    title: str
    message: str
    value: float | None
    threshold: float | None
    details: Mapping[str, Any] = field(hash=False)
    started_at: datetime
    opened_at: datetime
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: Resolution | None

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict (ISO 8601 times), as sent in notifications."""
        return _json_ready(self)


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One entry of an alert's history.

    Attributes:
        id: the event id (increasing).
        alert_id: the alert.
        at: when it happened.
        event: ``opened``, ``acknowledged``, ``resolved``, ``commented``, ``escalated``,
            ``deescalated``, ``flapping`` or ``stable``.
        actor: ``system`` or the operator.
        from_state: the state before (``None`` for ``opened``).
        to_state: the state after.
        severity: the alert's severity after the event.
        comment: the operator's comment, if any.
        details: what changed (old/new severity, values, reasons).
        notify: whether the event went to the notification channels.
    """

    id: int
    alert_id: int
    at: datetime
    event: EventKind
    actor: str
    from_state: State | None
    to_state: State | None
    severity: Severity
    comment: str | None
    details: Mapping[str, Any] = field(hash=False)
    notify: bool

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict (ISO 8601 times)."""
        return _json_ready(self)


@dataclass(frozen=True, slots=True)
class NewAlert:
    """What the rule engine knows when it opens an alert (see :func:`open_alert`)."""

    rule_id: str
    kind: str
    device_id: str
    metric: str
    severity: Severity
    title: str
    message: str
    started_at: datetime
    opened_at: datetime
    value: float | None = None
    threshold: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict, hash=False)


def _json_ready(obj: Alert | AlertEvent) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        out[f.name] = value.isoformat() if isinstance(value, datetime) else value
    out["details"] = dict(obj.details)
    return out


_ALERT_COLUMNS: Final = (
    "id, rule_id, kind, device_id, metric, area_id, severity, state, flapping, title, message,"
    " value, threshold, details, started_at, opened_at, created_at, updated_at,"
    " acknowledged_at, acknowledged_by, resolved_at, resolved_by, resolution"
)
_EVENT_COLUMNS: Final = (
    "id, alert_id, at, event, actor, from_state, to_state, severity, comment, details, notify"
)


def _alert(row: tuple[Any, ...]) -> Alert:
    return Alert(*row)


def _event(row: tuple[Any, ...]) -> AlertEvent:
    return AlertEvent(*row)


# --- reading ----------------------------------------------------------------------------------


def _as_set(name: str, value: str | Collection[str] | None, allowed: tuple[str, ...]) -> list[str]:
    if value is None:
        return []
    values = [value] if isinstance(value, str) else list(value)
    bad = sorted(set(values) - set(allowed))
    if bad:
        raise AlertInputError(f"unknown {name} {bad}; expected some of {list(allowed)}")
    return values


def list_alerts(
    conn: psycopg.Connection[Any],
    *,
    state: State | Collection[State] | None = None,
    severity: Severity | Collection[Severity] | None = None,
    area_id: str | None = None,
    device_id: str | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[Alert]:
    """Alerts, newest first, filtered; page with ``before_id`` (keyset pagination).

    Args:
        conn: any connection.
        state: one state or several (``("open", "acknowledged")`` for the active ones).
        severity: one severity or several.
        area_id: only alerts in this area **or any area below it** in the areas tree.
        device_id: only this device's alerts.
        limit: at most this many rows, 1…1000.
        before_id: only alerts with a smaller id (pass the last id of the previous page).

    Raises:
        AlertInputError: an unknown state or severity, or a limit outside 1…1000.
    """
    states = _as_set("state", state, STATES)
    severities = _as_set("severity", severity, SEVERITIES)
    if not 1 <= limit <= MAX_LIMIT:
        raise AlertInputError(f"limit must be 1…{MAX_LIMIT}, got {limit}")
    conds = ["true"]
    if states:
        conds.append("state = ANY(%(states)s::text[])")
    if severities:
        conds.append("severity = ANY(%(severities)s::text[])")
    if device_id is not None:
        conds.append("device_id = %(device)s")
    if before_id is not None:
        conds.append("id < %(before)s")
    if area_id is not None:
        conds.append(
            "area_id IN (WITH RECURSIVE sub AS (SELECT id FROM areas WHERE id = %(area)s"
            " UNION ALL SELECT a.id FROM areas AS a JOIN sub ON a.parent_id = sub.id)"
            " SELECT id FROM sub)"
        )
    rows = conn.execute(
        f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE {' AND '.join(conds)}"
        " ORDER BY id DESC LIMIT %(limit)s",
        {
            "states": states,
            "severities": severities,
            "device": device_id,
            "before": before_id,
            "area": area_id,
            "limit": limit,
        },
    ).fetchall()
    return [_alert(r) for r in rows]


def get_alert(conn: psycopg.Connection[Any], alert_id: int) -> Alert:
    """One alert by id.

    Raises:
        AlertNotFound: no such alert.
    """
    row = conn.execute(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    if row is None:
        raise AlertNotFound(alert_id)
    return _alert(row)


def history(conn: psycopg.Connection[Any], alert_id: int) -> list[AlertEvent]:
    """Every event of an alert, oldest first.

    Raises:
        AlertNotFound: no such alert.
    """
    if conn.execute("SELECT 1 FROM alerts WHERE id = %s", (alert_id,)).fetchone() is None:
        raise AlertNotFound(alert_id)
    rows = conn.execute(
        f"SELECT {_EVENT_COLUMNS} FROM alert_events WHERE alert_id = %s ORDER BY id", (alert_id,)
    ).fetchall()
    return [_event(r) for r in rows]


def events_with_alerts(
    conn: psycopg.Connection[Any], event_ids: Collection[int]
) -> list[tuple[AlertEvent, Alert]]:
    """Events by id with their alerts (as they are now), in event order."""
    cols = ", ".join(f"a.{c.strip()}" for c in _ALERT_COLUMNS.split(","))
    ecols = ", ".join(f"e.{c.strip()}" for c in _EVENT_COLUMNS.split(","))
    rows = conn.execute(
        f"SELECT {ecols}, {cols} FROM alert_events AS e JOIN alerts AS a ON a.id = e.alert_id"
        " WHERE e.id = ANY(%s::bigint[]) ORDER BY e.id",
        (list(event_ids),),
    ).fetchall()
    n = len(_EVENT_COLUMNS.split(","))
    return [(_event(r[:n]), _alert(r[n:])) for r in rows]


def open_alerts_for_rule(
    conn: psycopg.Connection[Any], rule_id: str
) -> dict[tuple[str, str], Alert]:
    """The unresolved alerts of a rule, by (device, metric)."""
    rows = conn.execute(
        f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE rule_id = %s AND state <> 'resolved'",
        (rule_id,),
    ).fetchall()
    alerts = [_alert(r) for r in rows]
    return {(a.device_id, a.metric): a for a in alerts}


# --- operator transitions -----------------------------------------------------------------------


def _check_actor(actor: str) -> str:
    actor = actor.strip()
    if not actor:
        raise AlertInputError("an actor (who does this) is required")
    if len(actor) > MAX_ACTOR_LEN:
        raise AlertInputError(f"actor is longer than {MAX_ACTOR_LEN} characters")
    return actor


def _check_comment(text: str | None, *, required: bool = False) -> str | None:
    if text is None:
        if required:
            raise AlertInputError("a comment needs text")
        return None
    text = text.strip()
    if not text:
        if required:
            raise AlertInputError("a comment needs text")
        return None
    if len(text) > MAX_COMMENT_LEN:
        raise AlertInputError(f"comment is longer than {MAX_COMMENT_LEN} characters")
    return text


def _locked(conn: psycopg.Connection[Any], alert_id: int) -> Alert:
    row = conn.execute(
        f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id = %s FOR UPDATE", (alert_id,)
    ).fetchone()
    if row is None:
        raise AlertNotFound(alert_id)
    return _alert(row)


def _add_event(
    conn: psycopg.Connection[Any],
    alert: Alert,
    event: EventKind,
    *,
    actor: str,
    to_state: State,
    at: datetime | None,
    comment: str | None = None,
    details: Mapping[str, Any] | None = None,
    notify: bool = True,
    severity: Severity | None = None,
) -> AlertEvent:
    row = conn.execute(
        "INSERT INTO alert_events (alert_id, at, event, actor, from_state, to_state, severity,"
        " comment, details, notify)"
        " VALUES (%s, coalesce(%s, now()), %s, %s, %s, %s, %s, %s, %s, %s)"
        f" RETURNING {_EVENT_COLUMNS}",
        (
            alert.id,
            at,
            event,
            actor,
            None if event == "opened" else alert.state,
            to_state,
            severity or alert.severity,
            comment,
            Jsonb(dict(details or {})),
            notify,
        ),
    ).fetchone()
    assert row is not None  # noqa: S101 (INSERT … RETURNING always returns the row)
    return _event(row)


def acknowledge(
    conn: psycopg.Connection[Any],
    alert_id: int,
    actor: str,
    comment: str | None = None,
    *,
    at: datetime | None = None,
) -> Alert:
    """Acknowledge an open alert: someone is on it.

    Args:
        conn: a connection.
        alert_id: the alert.
        actor: who acknowledges (user name or API key id).
        comment: optional note, kept in the history.
        at: when (default: the database's now()).

    Returns:
        The alert after the change.

    Raises:
        AlertNotFound: no such alert.
        AlertStateError: it is already acknowledged, or resolved.
        AlertInputError: an empty actor or an over-long comment.
    """
    actor = _check_actor(actor)
    note = _check_comment(comment)
    with conn.transaction():
        alert = _locked(conn, alert_id)
        if alert.state != "open":
            by = alert.acknowledged_by if alert.state == "acknowledged" else alert.resolved_by
            when = alert.acknowledged_at if alert.state == "acknowledged" else alert.resolved_at
            detail = f" (by {by} at {when.isoformat() if when else '?'})"
            raise AlertStateError(alert_id, alert.state, "acknowledge", detail)
        _add_event(
            conn, alert, "acknowledged", actor=actor, to_state="acknowledged", at=at, comment=note
        )
        row = conn.execute(
            "UPDATE alerts SET state = 'acknowledged', acknowledged_at = coalesce(%s, now()),"
            f" acknowledged_by = %s, updated_at = now() WHERE id = %s RETURNING {_ALERT_COLUMNS}",
            (at, actor, alert_id),
        ).fetchone()
    assert row is not None  # noqa: S101 (the row is locked above)
    return _alert(row)


def resolve(
    conn: psycopg.Connection[Any],
    alert_id: int,
    actor: str,
    comment: str | None = None,
    *,
    at: datetime | None = None,
) -> Alert:
    """Resolve an open or acknowledged alert by hand.

    If the rule's condition still holds, the rule engine does not reopen it until the condition
    has cleared once (an operator's resolution is not overridden by the next reading).

    Args:
        conn: a connection.
        alert_id: the alert.
        actor: who resolves it.
        comment: optional note (what was done), kept in the history.
        at: when (default: the database's now()).

    Returns:
        The alert after the change.

    Raises:
        AlertNotFound: no such alert.
        AlertStateError: it is already resolved.
        AlertInputError: an empty actor or an over-long comment.
    """
    actor = _check_actor(actor)
    note = _check_comment(comment)
    with conn.transaction():
        alert = _locked(conn, alert_id)
        if alert.state == "resolved":
            when = alert.resolved_at.isoformat() if alert.resolved_at else "?"
            detail = f" (by {alert.resolved_by} at {when})"
            raise AlertStateError(alert_id, alert.state, "resolve", detail)
        return _resolve(conn, alert, actor=actor, at=at, comment=note, resolution="manual")


def comment(
    conn: psycopg.Connection[Any],
    alert_id: int,
    actor: str,
    text: str,
    *,
    at: datetime | None = None,
) -> AlertEvent:
    """Add a comment to an alert's history, in any state (resolved ones included).

    Returns:
        The ``commented`` event.

    Raises:
        AlertNotFound: no such alert.
        AlertInputError: an empty actor, or an empty or over-long text.
    """
    actor = _check_actor(actor)
    note = _check_comment(text, required=True)
    with conn.transaction():
        alert = _locked(conn, alert_id)
        event = _add_event(
            conn, alert, "commented", actor=actor, to_state=alert.state, at=at, comment=note
        )
        conn.execute("UPDATE alerts SET updated_at = now() WHERE id = %s", (alert_id,))
    return event


# --- rule engine transitions --------------------------------------------------------------------


def open_alert(
    conn: psycopg.Connection[Any], new: NewAlert, *, at: datetime | None = None, notify: bool = True
) -> Alert | None:
    """Open an alert unless one is already unresolved for (rule, device, metric).

    Args:
        conn: a connection.
        new: the alert's content.
        at: wall-clock time of the ``opened`` event (default now()).
        notify: queue the ``opened`` event for the notification channels.

    Returns:
        The new alert, or ``None`` when an unresolved one already exists (another evaluator or
        an earlier run opened it).
    """
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO alerts (rule_id, kind, device_id, metric, area_id, severity, state,"
            " title, message, value, threshold, details, started_at, opened_at, created_at,"
            " updated_at)"
            " VALUES (%(rule)s, %(kind)s, %(device)s, %(metric)s,"
            " (SELECT area_id FROM devices WHERE id = %(device)s), %(severity)s, 'open',"
            " %(title)s, %(message)s, %(value)s, %(threshold)s, %(details)s, %(started)s,"
            " %(opened)s, coalesce(%(at)s, now()), coalesce(%(at)s, now()))"
            " ON CONFLICT (rule_id, device_id, metric) WHERE state <> 'resolved' DO NOTHING"
            f" RETURNING {_ALERT_COLUMNS}",
            {
                "rule": new.rule_id,
                "kind": new.kind,
                "device": new.device_id,
                "metric": new.metric,
                "severity": new.severity,
                "title": new.title,
                "message": new.message,
                "value": new.value,
                "threshold": new.threshold,
                "details": Jsonb(dict(new.details)),
                "started": new.started_at,
                "opened": new.opened_at,
                "at": at,
            },
        ).fetchone()
        if row is None:
            return None
        alert = _alert(row)
        _add_event(
            conn,
            alert,
            "opened",
            actor=SYSTEM_ACTOR,
            to_state="open",
            at=at,
            details={"value": new.value, "threshold": new.threshold},
            notify=notify,
        )
    return alert


def escalate(
    conn: psycopg.Connection[Any],
    alert_id: int,
    severity: Severity,
    *,
    message: str,
    value: float | None,
    threshold: float | None = None,
    details: Mapping[str, Any] | None = None,
    at: datetime | None = None,
    notify: bool = True,
    direction: Literal["up", "down"] | None = None,
    data_ts: datetime | None = None,
) -> Alert:
    """Change an unresolved alert's severity (``escalated`` up, ``deescalated`` down).

    A rising severity sends an acknowledged alert back to ``open``: the acknowledgement was
    given for a lesser situation.

    Args:
        conn: a connection.
        alert_id: the alert.
        severity: the new severity.
        message: the alert's new message.
        value: the value behind the change.
        threshold: the threshold now crossed, if it changed.
        details: facts merged into the alert's details (e.g. the new alarm level).
        at: when (default now()).
        notify: queue the event for the notification channels.
        direction: for a change of level within the same severity (flood alarm level I → II,
            both warnings): ``up`` or ``down``. Without it, an unchanged severity is a no-op.
        data_ts: data time of the reading behind the change, kept in the event's details (the
            rule engine matches it when it judges a series again after late readings).

    Raises:
        AlertNotFound: no such alert.
        AlertStateError: the alert is resolved.
    """
    with conn.transaction():
        alert = _locked(conn, alert_id)
        if alert.state == "resolved":
            raise AlertStateError(alert_id, alert.state, "escalate", "")
        if severity == alert.severity and direction is None:
            return alert
        if severity != alert.severity:
            up = SEVERITY_RANK[severity] > SEVERITY_RANK[alert.severity]
        else:
            up = direction == "up"
        to_state: State = "open" if up else alert.state
        merged = {**alert.details, **(details or {})}
        _add_event(
            conn,
            alert,
            "escalated" if up else "deescalated",
            actor=SYSTEM_ACTOR,
            to_state=to_state,
            at=at,
            details={
                "from": alert.severity,
                "to": severity,
                "value": value,
                **({"data_ts": data_ts.isoformat()} if data_ts is not None else {}),
            },
            notify=notify,
            severity=severity,
        )
        row = conn.execute(
            "UPDATE alerts SET severity = %s, state = %s, message = %s, value = %s,"
            " threshold = coalesce(%s, threshold), details = %s,"
            " acknowledged_at = CASE WHEN %s THEN NULL ELSE acknowledged_at END,"
            " acknowledged_by = CASE WHEN %s THEN NULL ELSE acknowledged_by END,"
            f" updated_at = coalesce(%s, now()) WHERE id = %s RETURNING {_ALERT_COLUMNS}",
            (
                severity,
                to_state,
                message,
                value,
                threshold,
                Jsonb(merged),
                up,
                up,
                at,
                alert_id,
            ),
        ).fetchone()
    assert row is not None  # noqa: S101 (the row is locked above)
    return _alert(row)


def update_value(
    conn: psycopg.Connection[Any],
    alert_id: int,
    value: float | None,
    *,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Record the latest value behind an unresolved alert (no event: not a state change)."""
    conn.execute(
        "UPDATE alerts SET value = %s, details = details || %s"
        " WHERE id = %s AND state <> 'resolved' AND value IS DISTINCT FROM %s",
        (value, Jsonb(dict(details or {})), alert_id, value),
    )


def set_flapping(
    conn: psycopg.Connection[Any],
    alert_id: int,
    *,
    flapping: bool,
    details: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> Alert:
    """Mark an unresolved alert as flapping (event ``flapping``) or stable again (``stable``).

    Both events are notified: subscribers learn once that notifications are muted, and once that
    they resume.

    Raises:
        AlertNotFound: no such alert.
        AlertStateError: the alert is resolved.
    """
    with conn.transaction():
        alert = _locked(conn, alert_id)
        if alert.state == "resolved":
            raise AlertStateError(alert_id, alert.state, "mark flapping", "")
        if alert.flapping == flapping:
            return alert
        _add_event(
            conn,
            alert,
            "flapping" if flapping else "stable",
            actor=SYSTEM_ACTOR,
            to_state=alert.state,
            at=at,
            details=details,
        )
        row = conn.execute(
            f"UPDATE alerts SET flapping = %s, updated_at = coalesce(%s, now()) WHERE id = %s"
            f" RETURNING {_ALERT_COLUMNS}",
            (flapping, at, alert_id),
        ).fetchone()
    assert row is not None  # noqa: S101 (the row is locked above)
    return _alert(row)


def auto_resolve(
    conn: psycopg.Connection[Any],
    alert_id: int,
    *,
    comment: str | None = None,
    resolution: Resolution = "auto",
    details: Mapping[str, Any] | None = None,
    at: datetime | None = None,
    notify: bool = True,
) -> Alert | None:
    """Resolve an alert because its condition cleared (or its rule was removed).

    Returns:
        The resolved alert, or ``None`` if it was already resolved (an operator was faster).
    """
    with conn.transaction():
        alert = _locked(conn, alert_id)
        if alert.state == "resolved":
            return None
        return _resolve(
            conn,
            alert,
            actor=SYSTEM_ACTOR,
            at=at,
            comment=comment,
            resolution=resolution,
            details=details,
            notify=notify,
        )


def _resolve(
    conn: psycopg.Connection[Any],
    alert: Alert,
    *,
    actor: str,
    at: datetime | None,
    comment: str | None,
    resolution: Resolution,
    details: Mapping[str, Any] | None = None,
    notify: bool = True,
) -> Alert:
    _add_event(
        conn,
        alert,
        "resolved",
        actor=actor,
        to_state="resolved",
        at=at,
        comment=comment,
        details={"resolution": resolution, **(details or {})},
        notify=notify,
    )
    row = conn.execute(
        "UPDATE alerts SET state = 'resolved', flapping = false,"
        " resolved_at = coalesce(%s, now()), resolved_by = %s, resolution = %s,"
        f" updated_at = coalesce(%s, now()) WHERE id = %s RETURNING {_ALERT_COLUMNS}",
        (at, actor, resolution, at, alert.id),
    ).fetchone()
    assert row is not None  # noqa: S101 (the row is locked by the caller)
    return _alert(row)


__all__ = [
    "SEVERITIES",
    "SEVERITY_RANK",
    "STATES",
    "SYSTEM_ACTOR",
    "Alert",
    "AlertError",
    "AlertEvent",
    "AlertInputError",
    "AlertNotFound",
    "AlertStateError",
    "NewAlert",
    "acknowledge",
    "auto_resolve",
    "comment",
    "escalate",
    "events_with_alerts",
    "get_alert",
    "history",
    "list_alerts",
    "open_alert",
    "open_alerts_for_rule",
    "resolve",
    "set_flapping",
    "update_value",
]
