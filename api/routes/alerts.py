"""Alerts: list, read, history, acknowledge, resolve, comment (analytics.alerts lifecycle).

Reading needs a key (anonymous callers get 401); writing needs ``alerts:write``. An alert on a
device the caller may not see is a 404, like one that does not exist. Every write is audited in
the same transaction as the change itself.
"""

from collections.abc import Callable
from typing import Annotated, Any, Final, Literal

import psycopg
from fastapi import APIRouter, Path, Query, Request

from analytics import alerts
from api.auth import Principal
from api.const import PREFIX
from api.deps import AlertWriter, Conn, KeyHolder, State
from api.models import AlertAction, AlertComment, AlertEventOut, AlertOut, AlertPage, Problem
from api.params import ID_PATTERN, AreaId
from api.problems import ApiProblem, invalid, not_found
from api.routes.common import ERRORS, FORBIDDEN, NOT_FOUND
from api.state import ApiState
from store import alertviews
from store import audit as audit_store
from store.audit import AuditEvent

router = APIRouter(prefix=PREFIX, tags=["alerts"], responses={**ERRORS, **FORBIDDEN})

_MAX_ID: Final = 2**63 - 1
AlertId = Annotated[int, Path(ge=1, le=_MAX_ID, examples=[42])]
_CONFLICT: Final[dict[int | str, dict[str, Any]]] = {
    409: {"model": Problem, "description": "Not allowed in the alert's state"}
}


def _out(a: alerts.Alert | alertviews.AlertRow) -> AlertOut:
    return AlertOut(
        id=a.id,
        rule_id=a.rule_id,
        kind=a.kind,
        device_id=a.device_id,
        metric=a.metric,
        area_id=a.area_id,
        severity=a.severity,
        state=a.state,
        flapping=a.flapping,
        title=a.title,
        message=a.message,
        value=a.value,
        threshold=a.threshold,
        details=dict(a.details),
        started_at=a.started_at,
        opened_at=a.opened_at,
        updated_at=a.updated_at,
        acknowledged_at=a.acknowledged_at,
        acknowledged_by=a.acknowledged_by,
        resolved_at=a.resolved_at,
        resolved_by=a.resolved_by,
        resolution=a.resolution,
    )


def _event_out(e: alerts.AlertEvent) -> AlertEventOut:
    return AlertEventOut(
        id=e.id,
        alert_id=e.alert_id,
        at=e.at,
        event=e.event,
        actor=e.actor,
        from_state=e.from_state,
        to_state=e.to_state,
        severity=e.severity,
        comment=e.comment,
        details=dict(e.details),
    )


async def _check_visible(
    conn: psycopg.AsyncConnection[Any],
    state: ApiState,
    caller: Principal,
    alert_id: int,
    request: Request,
) -> None:
    exists, visible = await alertviews.visible(conn, caller.visibility, alert_id)
    if visible:
        return
    if exists:
        state.audit.emit(
            AuditEvent(
                "authz_fail",
                key_id=caller.key_id,
                client=caller.client,
                method=request.method,
                path=request.url.path,
                status=404,
                target=f"alert:{alert_id}",
                detail={"reason": "alert of a device not visible to caller"},
            )
        )
    raise not_found("alert", str(alert_id))


@router.get("/alerts", summary="Alerts, newest first")
async def list_alerts(  # noqa: PLR0917 (one parameter per filter)
    caller: KeyHolder,
    conn: Conn,
    states: Annotated[
        list[Literal["open", "acknowledged", "resolved"]] | None,
        Query(alias="state", description="repeatable; open and acknowledged = active"),
    ] = None,
    severities: Annotated[
        list[Literal["info", "warning", "critical"]] | None, Query(alias="severity")
    ] = None,
    area_id: AreaId = None,
    device_id: Annotated[str | None, Query(max_length=64, pattern=ID_PATTERN)] = None,
    before_id: Annotated[int | None, Query(ge=1, le=_MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=alerts.MAX_LIMIT)] = 100,
) -> AlertPage:
    """Alerts on devices the caller may see; ``area_id`` includes the areas below it."""
    rows = await alertviews.listing(
        conn,
        caller.visibility,
        states=states,
        severities=severities,
        area_id=area_id,
        device_id=device_id,
        before_id=before_id,
        limit=limit + 1,
    )
    items = [_out(a) for a in rows[:limit]]
    return AlertPage(items=items, next_before_id=items[-1].id if len(rows) > limit else None)


@router.get("/alerts/{alert_id}", summary="One alert", responses=NOT_FOUND)
async def get_alert(
    alert_id: AlertId, caller: KeyHolder, conn: Conn, state: State, request: Request
) -> AlertOut:
    """The alert's current state."""
    await _check_visible(conn, state, caller, alert_id, request)
    return _out(await state.db.run_sync(alerts.get_alert, alert_id))


@router.get("/alerts/{alert_id}/history", summary="An alert's history", responses=NOT_FOUND)
async def alert_history(
    alert_id: AlertId, caller: KeyHolder, conn: Conn, state: State, request: Request
) -> list[AlertEventOut]:
    """Every change and comment, oldest first."""
    await _check_visible(conn, state, caller, alert_id, request)
    return [_event_out(e) for e in await state.db.run_sync(alerts.history, alert_id)]


def _audited(change: Callable[..., Any], event: AuditEvent) -> Callable[..., Any]:
    """``change(conn, …)`` and its audit record in one transaction."""

    def run(conn: psycopg.Connection[Any], *args: Any) -> Any:
        with conn.transaction():
            result = change(conn, *args)
            audit_store.record(conn, event)
        return result

    return run


async def _write(  # noqa: PLR0917 (the change's own arguments follow)
    state: ApiState,
    caller: Principal,
    request: Request,
    alert_id: int,
    name: str,
    change: Callable[..., Any],
    *args: Any,
) -> Any:
    event = AuditEvent(
        name,
        key_id=caller.key_id,
        client=caller.client,
        method=request.method,
        path=request.url.path,
        status=200,
        target=f"alert:{alert_id}",
    )
    try:
        return await state.db.run_sync(_audited(change, event), alert_id, caller.actor, *args)
    except alerts.AlertNotFound:
        raise not_found("alert", str(alert_id)) from None
    except alerts.AlertStateError as exc:
        raise ApiProblem(409, "conflict", "Conflict", str(exc)) from None
    except alerts.AlertInputError as exc:
        raise invalid("body", "comment", str(exc)) from None


@router.post(
    "/alerts/{alert_id}/acknowledge",
    summary="Acknowledge an open alert",
    responses={**NOT_FOUND, **_CONFLICT},
)
async def acknowledge(  # noqa: PLR0917
    alert_id: AlertId,
    caller: AlertWriter,
    conn: Conn,
    state: State,
    request: Request,
    body: AlertAction | None = None,
) -> AlertOut:
    """Someone is on it. 409 when it is acknowledged or resolved already."""
    await _check_visible(conn, state, caller, alert_id, request)
    note = body.comment if body else None
    a = await _write(
        state, caller, request, alert_id, "alert_acknowledge", alerts.acknowledge, note
    )
    return _out(a)


@router.post(
    "/alerts/{alert_id}/resolve",
    summary="Resolve an alert by hand",
    responses={**NOT_FOUND, **_CONFLICT},
)
async def resolve(  # noqa: PLR0917
    alert_id: AlertId,
    caller: AlertWriter,
    conn: Conn,
    state: State,
    request: Request,
    body: AlertAction | None = None,
) -> AlertOut:
    """Close it. 409 when it is resolved already."""
    await _check_visible(conn, state, caller, alert_id, request)
    note = body.comment if body else None
    a = await _write(state, caller, request, alert_id, "alert_resolve", alerts.resolve, note)
    return _out(a)


@router.post(
    "/alerts/{alert_id}/comments",
    summary="Comment on an alert",
    status_code=201,
    responses=NOT_FOUND,
)
async def add_comment(  # noqa: PLR0917
    alert_id: AlertId,
    caller: AlertWriter,
    conn: Conn,
    state: State,
    request: Request,
    body: AlertComment,
) -> AlertEventOut:
    """Add a note to the alert's history, in any state."""
    await _check_visible(conn, state, caller, alert_id, request)
    e = await _write(state, caller, request, alert_id, "alert_comment", alerts.comment, body.text)
    return _event_out(e)
