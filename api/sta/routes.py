"""The ``/sta/v1.1`` router: SensorThings API 1.1 (read) over dothi's data.

Callers authenticate exactly as on ``/api/v1`` (the same dependency: keys, scopes, rate limits):
anonymous callers and keys without ``read:all`` see public devices only; what they may not see
answers 404 like what does not exist, and the attempt is audited as ``authz_fail``.

The service is read-only: POST, PUT, PATCH and DELETE answer 405. Errors are problem documents
like the rest of the API; an invalid query is a 400 naming the option, position and token.
The routes stay out of the OpenAPI document: a SensorThings service describes itself at its
root, and docs/sensorthings.md documents it.
"""

import logging
from typing import Any, Final

import psycopg
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from api.auth import Principal
from api.deps import Caller, Conn, State
from api.problems import ApiProblem, not_found
from api.sta import engine
from api.sta.errors import StaNotFound, StaQueryError
from api.sta.options import parse_options
from api.state import ApiState
from store import catalog, sta
from store.audit import AuditEvent

log = logging.getLogger(__name__)

PREFIX: Final = "/sta/v1.1"
QUERY_TIMEOUT_MS: Final = 15_000
"""Longest a statement of one request may run before it is cancelled (a 422 ``limit``)."""

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _refuse_nul(path: str, query: list[tuple[str, str]]) -> None:
    """PostgreSQL text cannot hold NUL: refuse it here, naming where it is, rather than let
    the database's error be attributed to the wrong option."""
    if "\x00" in path:
        raise StaQueryError("contains a NUL character", option="path", position=path.index("\x00"))
    for name, value in query:
        if "\x00" in name or "\x00" in value:
            raise StaQueryError("contains a NUL character", option=name.replace("\x00", ""))


def _bad_request(err: StaQueryError) -> ApiProblem:
    location = "path" if err.option == "path" else "query"
    entry = {"location": location, "field": err.option or "request", "detail": err.message}
    if err.position is not None:
        entry["position"] = str(err.position)
    if err.token is not None:
        entry["token"] = err.token
    return ApiProblem(
        400, "sta-query", "Invalid SensorThings request", err.describe(), errors=[entry]
    )


async def _audit_hidden(
    conn: psycopg.AsyncConnection[Any],
    state: ApiState,
    caller: Principal,
    request: Request,
    device: str,
) -> None:
    """Record an attempt on a device that exists but is hidden from the caller."""
    row, exists = await catalog.device(conn, caller.visibility, device)
    if row is None and exists:
        state.audit.emit(
            AuditEvent(
                "authz_fail",
                key_id=caller.key_id,
                client=caller.client,
                method=request.method,
                path=request.url.path,
                status=404,
                target=device,
                detail={"reason": "device not visible to caller"},
            )
        )


async def _serve(path: str, request: Request, caller: Caller, conn: Conn, state: State) -> Response:
    base = str(request.base_url).rstrip("/") + PREFIX
    limits = engine.Limits(max_top=state.config.page_max, timeout_ms=QUERY_TIMEOUT_MS)
    ctx = engine.Context(
        conn=conn,
        vis=caller.visibility,
        base=base,
        url=str(request.url).split("?", 1)[0],
        query=request.query_params.multi_items(),
        limits=limits,
    )
    try:
        _refuse_nul(path, ctx.query)
        options = parse_options(ctx.query)
        async with sta.read_snapshot(conn, limits.timeout_ms):
            reply = await engine.answer(ctx, path, options)
    except StaQueryError as err:
        raise _bad_request(err) from None
    except StaNotFound as err:
        if err.device is not None:
            await _audit_hidden(conn, state, caller, request, err.device)
        raise not_found(err.what, err.ident) from None
    except psycopg.errors.QueryCanceled:
        # Worth an operator's look: a query shape that may need an index or a tighter limit.
        log.warning(
            "sta: a statement ran over %d ms: %s?%s",
            limits.timeout_ms,
            request.url.path,
            request.url.query[:500],
        )
        raise ApiProblem(
            422,
            "limit",
            "Request exceeds a limit",
            f"the query ran longer than {limits.timeout_ms // 1000} s; narrow it with $filter"
            " (a time range on phenomenonTime) or lower $top",
        ) from None
    except psycopg.DataError as err:
        # Values in the query the database could not compute with: arithmetic overflow, a
        # negative substring length, a date out of range.
        message = str(err).strip().splitlines()[0] if str(err).strip() else "invalid value"
        raise _bad_request(StaQueryError(message, option="$filter")) from None
    if reply.status == 204:
        return Response(status_code=204)
    if reply.media_type == "text/plain":
        return PlainTextResponse(reply.body)
    return JSONResponse(reply.body)


@router.get("", summary="SensorThings service root")
async def service_root(request: Request, caller: Caller, conn: Conn, state: State) -> Response:
    """Entity sets and ``serverSettings`` (conformance classes)."""
    return await _serve("", request, caller, conn, state)


@router.get("/{path:path}", summary="SensorThings resource")
async def resource(
    path: str, request: Request, caller: Caller, conn: Conn, state: State
) -> Response:
    """Collections, entities, properties, ``$value``, ``$ref`` with query options."""
    return await _serve(path, request, caller, conn, state)


def _read_only(request: Request) -> ApiProblem:
    return ApiProblem(
        405,
        "method-not-allowed",
        "Method Not Allowed",
        f"the SensorThings service is read-only: {request.method} is not supported, use GET"
        " (data enters dothi over MQTT)",
        headers={"Allow": "GET"},
    )


@router.api_route("", methods=["POST", "PUT", "PATCH", "DELETE"])
async def write_root(request: Request) -> Response:
    """Refuse writes to the service root."""
    raise _read_only(request)


@router.api_route("/{path:path}", methods=["POST", "PUT", "PATCH", "DELETE"])
async def write_resource(path: str, request: Request) -> Response:  # noqa: ARG001 (route param)
    """Refuse writes: the service is read-only."""
    raise _read_only(request)
