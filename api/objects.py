"""Object-level authorisation (OWASP API1, BOLA): resolve ids the caller names, or 404.

A device the caller may not see answers exactly like one that does not exist; the difference is
written only to the audit log (``authz_fail``), where operators can see probing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from api.problems import not_found, too_large
from store import catalog
from store.audit import AuditEvent

if TYPE_CHECKING:
    from collections.abc import Sequence

    import psycopg

    from api.auth import Principal
    from api.state import ApiState
    from store.catalog import DeviceRow


def _denied(state: ApiState, principal: Principal, method: str, path: str, target: str) -> None:
    state.audit.emit(
        AuditEvent(
            "authz_fail",
            key_id=principal.key_id,
            client=principal.client,
            method=method,
            path=path,
            status=404,
            target=target,
            detail={"reason": "device not visible to caller"},
        )
    )


async def device(
    conn: psycopg.AsyncConnection[Any],
    state: ApiState,
    principal: Principal,
    device_id: str,
    where: tuple[str, str],
) -> DeviceRow:
    """The device if the caller may see it.

    Args:
        conn: a connection.
        state: the process state (for the audit log).
        principal: the caller.
        device_id: the id asked for.
        where: (method, path) of the request, for the audit log.

    Raises:
        ApiProblem: 404 when it does not exist or is hidden from the caller.
    """
    row, exists = await catalog.device(conn, principal.visibility, device_id)
    if row is None:
        if exists:
            _denied(state, principal, *where, device_id)
        raise not_found("device", device_id)
    return row


async def devices(
    conn: psycopg.AsyncConnection[Any],
    state: ApiState,
    principal: Principal,
    device_ids: Sequence[str],
    where: tuple[str, str],
) -> list[str]:
    """All of the named devices, in order, if the caller may see every one of them.

    Raises:
        ApiProblem: 404 naming the first id that does not exist or is hidden.
    """
    unique = list(dict.fromkeys(device_ids))
    visible, missing = await catalog.split_visible(conn, principal.visibility, unique)
    if missing:
        for hidden in await catalog.existing_ids(conn, missing):
            _denied(state, principal, *where, hidden)
        raise not_found("device", missing[0])
    return visible


async def area(conn: psycopg.AsyncConnection[Any], area_id: str) -> None:
    """Check an area exists (areas are public reference data).

    Raises:
        ApiProblem: 404.
    """
    if not await catalog.area_exists(conn, area_id):
        raise not_found("area", area_id)


async def area_devices(
    conn: psycopg.AsyncConnection[Any],
    principal: Principal,
    flt: catalog.DeviceFilter,
    limit: int,
) -> list[str]:
    """Visible devices matching a filter (an area, a kind), at most ``limit``.

    Raises:
        ApiProblem: 422 when more than ``limit`` match.
    """
    ids = await catalog.device_ids(conn, principal.visibility, flt, limit)
    if len(ids) > limit:
        raise too_large(
            "area_id", f"more than {limit} devices match; narrow it with kind or device_id"
        )
    return ids
