"""Administration: dead letters and the audit log (``admin`` scope)."""

import base64
from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.const import PREFIX
from api.deps import Admin, Conn
from api.models import AuditRecord, DeadLetter, DeadLetterPage
from api.problems import not_found
from api.routes.common import ERRORS, FORBIDDEN, NOT_FOUND
from store import audit, deadletters

router = APIRouter(prefix=PREFIX + "/admin", tags=["admin"], responses={**ERRORS, **FORBIDDEN})

_MAX_ID = 2**63 - 1


def _model(d: deadletters.DeadLetterRow) -> DeadLetter:
    return DeadLetter(
        id=d.id,
        received_at=d.received_at,
        topic=d.topic,
        reason=d.reason,
        detail=d.detail,
        device_id=d.device_id,
        replayed_at=d.replayed_at,
        payload_base64=base64.b64encode(d.payload).decode(),
        payload_bytes=len(d.payload),
    )


@router.get("/deadletters", summary="Refused input, newest first")
async def list_dead_letters(  # noqa: PLR0917 (one parameter per query filter)
    _: Admin,
    conn: Conn,
    reason: Annotated[str | None, Query(max_length=64, examples=["unknown_metric"])] = None,
    device_id: Annotated[str | None, Query(max_length=64)] = None,
    pending: Annotated[bool, Query(description="only those not replayed yet")] = False,
    before_id: Annotated[int | None, Query(ge=1, le=_MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DeadLetterPage:
    """Dead letters with their raw payload (base64) and the reason they were refused."""
    rows = await deadletters.listing(
        conn,
        reason=reason,
        device_id=device_id,
        pending_only=pending,
        before_id=before_id,
        limit=limit + 1,
    )
    items = [_model(d) for d in rows[:limit]]
    nxt = items[-1].id if len(rows) > limit else None
    return DeadLetterPage(items=items, next_before_id=nxt)


@router.get("/deadletters/{dl_id}", summary="One dead letter", responses=NOT_FOUND)
async def get_dead_letter(
    dl_id: Annotated[int, Path(ge=1, le=_MAX_ID)], _: Admin, conn: Conn
) -> DeadLetter:
    """One dead letter by id."""
    row = await deadletters.get(conn, dl_id)
    if row is None:
        raise not_found("dead letter", str(dl_id))
    return _model(row)


@router.get("/audit", summary="The audit log, newest first")
async def audit_log(
    _: Admin,
    conn: Conn,
    event: Annotated[str | None, Query(max_length=64, examples=["authz_fail"])] = None,
    key_id: Annotated[str | None, Query(max_length=64)] = None,
    before_id: Annotated[int | None, Query(ge=1, le=_MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditRecord]:
    """Writes and authentication/authorisation failures (key ids only, never keys)."""
    rows = await audit.recent(conn, event=event, key_id=key_id, before_id=before_id, limit=limit)
    return [
        AuditRecord(
            id=i,
            at=e.at,  # type: ignore[arg-type]
            event=e.event,
            key_id=e.key_id,
            client=e.client,
            method=e.method,
            path=e.path,
            status=e.status,
            target=e.target,
            detail=e.detail,
        )
        for i, e in rows
    ]
