"""Dependencies of the routes, as ``Annotated`` aliases (STYLE.md convention 12).

- :data:`Conn`: an autocommit connection from the async pool for the request.
- :data:`Caller`: whoever calls, anonymous included (sees public devices only).
- :data:`KeyHolder`: any valid key; :data:`AlertWriter`: ``alerts:write``; :data:`Admin`: admin.

Routes declare the caller before the connection, so authentication and the rate limit run
before a pool connection is taken.
"""

from collections.abc import AsyncIterator
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import psycopg
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPBearer, SecurityScopes

from api.auth import Principal, RequestInfo
from api.const import SCOPE_ADMIN, SCOPE_ALERTS_WRITE, SCOPE_READ_PUBLIC
from api.problems import invalid, unauthorized
from api.state import ApiState

# Declared for the OpenAPI document (Swagger's Authorize button); the dependency below reads
# the headers itself so that a malformed Authorization header is refused, not ignored.
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="Authorization: Bearer dk_<id>_<secret>",
)
_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="apiKey", description="X-API-Key: dk_…"
)


async def get_state(request: Request) -> ApiState:
    """The process's :class:`ApiState`.

    Async on purpose, as every dependency here: FastAPI runs a plain ``def`` dependency in a
    worker thread, a thread hop per request for nothing (seen in the profile).
    """
    state: ApiState = request.app.state.dothi
    return state


State = Annotated[ApiState, Depends(get_state)]


async def get_conn(state: State) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A pooled connection for the duration of the request."""
    async with state.db.pool.connection() as conn:
        yield conn


Conn = Annotated[psycopg.AsyncConnection[Any], Depends(get_conn)]


def _token(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth is not None:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise unauthorized("use 'Authorization: Bearer <key>' or the X-API-Key header")
        return value.strip()
    return request.headers.get("x-api-key")


async def get_principal(
    security_scopes: SecurityScopes,
    request: Request,
    state: State,
    _b: Annotated[object, Depends(_bearer)],
    _h: Annotated[object, Depends(_header)],
) -> Principal:
    """Authenticate the request and check the route's scopes."""
    client = request.client.host if request.client else "unknown"
    info = RequestInfo(client, request.method, request.url.path)
    return await state.auth.principal(_token(request), info, security_scopes.scopes)


def _is_sequence(annotation: object) -> bool:
    origin = get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        return True
    if origin in (Union, UnionType, Annotated):
        return any(_is_sequence(a) for a in get_args(annotation))
    return False


_SCALARS: dict[int, tuple[str, ...]] = {}


async def single_query_values(request: Request) -> None:
    """Refuse a single-valued query parameter given more than once (422 naming it).

    Starlette would silently keep the last value, so ``?device_id=a&device_id=b`` on a route
    taking one device would answer for ``b`` alone; an ambiguous request is refused instead.
    """
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    scalars = _SCALARS.get(id(route))
    if scalars is None:
        scalars = tuple(
            f.alias for f in dependant.query_params if not _is_sequence(f.field_info.annotation)
        )
        _SCALARS[id(route)] = scalars
    params = request.query_params
    for name in scalars:
        if len(params.getlist(name)) > 1:
            raise invalid("query", name, "give this parameter once")


Caller = Annotated[Principal, Security(get_principal)]
KeyHolder = Annotated[Principal, Security(get_principal, scopes=[SCOPE_READ_PUBLIC])]
AlertWriter = Annotated[Principal, Security(get_principal, scopes=[SCOPE_ALERTS_WRITE])]
Admin = Annotated[Principal, Security(get_principal, scopes=[SCOPE_ADMIN])]
