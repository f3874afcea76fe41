"""RFC 9457 problem details: the one shape of every error the API returns.

Every error, FastAPI's own validation errors and Starlette's 404/405 included, becomes
``application/problem+json`` with ``type``, ``title``, ``status``, ``detail``, ``instance`` and,
for bad input, ``errors`` naming each offending field. A database that cannot be reached is a 503
with ``Retry-After``; anything unexpected is a 500 without a traceback (the log has it).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final

import psycopg
from fastapi.exceptions import RequestValidationError
from psycopg_pool import PoolTimeout, TooManyRequests
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from api.const import PROBLEM_JSON

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from fastapi import FastAPI, Request

log = logging.getLogger(__name__)

TYPE_BASE: Final = "urn:dothi:problem:"
"""Problem types are URNs (RFC 9457 allows non-resolvable ones); docs/api.md lists each."""

DB_RETRY_AFTER_S: Final = 5


class ApiProblem(Exception):  # noqa: N818 (it is a response, not an error of the API's own)
    """An error response; raise it anywhere under a route.

    Attributes:
        status: HTTP status.
        slug: short name; the problem ``type`` is :data:`TYPE_BASE` + slug.
        title: the same for every occurrence of this slug.
        detail: this occurrence, in a sentence.
        errors: offending fields, each ``{"location", "field", "detail"}``.
        headers: extra response headers (``Retry-After``, ``WWW-Authenticate``).
    """

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        errors: Sequence[Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {slug}: {detail}")
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.errors = list(errors) if errors else None
        self.headers = dict(headers or {})


def not_found(what: str, ident: str) -> ApiProblem:
    """404 for an unknown id, or one the caller may not see (never say which: BOLA)."""
    return ApiProblem(404, "not-found", "Not found", f"{what} {ident!r} does not exist")


def invalid(location: str, field: str, detail: str) -> ApiProblem:
    """422 naming one offending parameter."""
    return ApiProblem(
        422,
        "validation",
        "Invalid request",
        f"{field}: {detail}",
        errors=[{"location": location, "field": field, "detail": detail}],
    )


def too_large(field: str, detail: str) -> ApiProblem:
    """422 for a request over a documented limit (range, page, rows)."""
    return ApiProblem(
        422,
        "limit",
        "Request exceeds a limit",
        detail,
        errors=[{"location": "query", "field": field, "detail": detail}],
    )


def forbidden(scope: str) -> ApiProblem:
    """403: the key is valid but lacks a scope."""
    return ApiProblem(403, "forbidden", "Forbidden", f"this key lacks the {scope!r} scope")


def unauthorized(detail: str) -> ApiProblem:
    """401: no usable credential."""
    return ApiProblem(
        401,
        "unauthorized",
        "Authentication required",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="dothi"'},
    )


def rate_limited(retry_after: int, detail: str) -> ApiProblem:
    """429 with Retry-After in whole seconds."""
    return ApiProblem(
        429, "rate-limit", "Too many requests", detail, headers={"Retry-After": str(retry_after)}
    )


def unavailable(detail: str) -> ApiProblem:
    """503 with Retry-After: a dependency is down or saturated."""
    return ApiProblem(
        503,
        "unavailable",
        "Service unavailable",
        detail,
        headers={"Retry-After": str(DB_RETRY_AFTER_S)},
    )


def body(request: Request | None, problem: ApiProblem) -> dict[str, Any]:
    """The problem document."""
    doc: dict[str, Any] = {
        "type": TYPE_BASE + problem.slug,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.url.path if request is not None else None,
    }
    if problem.errors is not None:
        doc["errors"] = problem.errors
    return doc


def response(request: Request | None, problem: ApiProblem) -> JSONResponse:
    """The problem as a response."""
    return JSONResponse(
        body(request, problem),
        status_code=problem.status,
        headers=problem.headers,
        media_type=PROBLEM_JSON,
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        location = loc[0] if loc else "request"
        field = loc[1] if len(loc) > 1 else location
        # Deeper parts (a list index, a body member) go into the detail, so ``field`` is always
        # a parameter name a client can match.
        where = "".join(f"[{p}]" for p in loc[2:])
        msg = str(err.get("msg", ""))
        out.append({"location": location, "field": field, "detail": f"{where} {msg}".strip()})
    return out


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)  # noqa: S101 (registered for this type only)
    return response(request, exc)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    errors = _validation_errors(exc)
    detail = "; ".join(f"{e['field']}: {e['detail']}" for e in errors)
    return response(
        request, ApiProblem(422, "validation", "Invalid request", detail, errors=errors)
    )


_HTTP_SLUGS: Final = {404: "not-found", 405: "method-not-allowed", 401: "unauthorized"}


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    if exc.status_code == 400:
        # Starlette's "error parsing the body" (undecodable bytes): bad input is a 422 here,
        # like every other validation error.
        detail = str(exc.detail)
        return response(
            request,
            ApiProblem(
                422,
                "validation",
                "Invalid request",
                f"body: {detail}",
                errors=[{"location": "body", "field": "body", "detail": detail}],
            ),
        )
    phrase = HTTPStatus(exc.status_code).phrase
    slug = _HTTP_SLUGS.get(exc.status_code, phrase.lower().replace(" ", "-"))
    detail = str(exc.detail) if exc.detail != phrase else f"{phrase}: {request.url.path}"
    return response(
        request,
        ApiProblem(exc.status_code, slug, phrase, detail, headers=dict(exc.headers or {})),
    )


async def _on_database(request: Request, exc: Exception) -> JSONResponse:
    # No traceback and no server text in the response: the operator's log has the cause.
    log.warning("database unavailable on %s: %s", request.url.path, str(exc).strip()[:200])
    return response(request, unavailable("the database is unavailable; retry later"))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return response(
        request, ApiProblem(500, "internal", "Internal error", "an unexpected error occurred")
    )


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem document."""
    app.add_exception_handler(ApiProblem, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    for exc_type in (PoolTimeout, TooManyRequests, psycopg.OperationalError):
        app.add_exception_handler(exc_type, _on_database)
    app.add_exception_handler(Exception, _on_unexpected)
