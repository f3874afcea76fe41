"""The OpenAPI document, adjusted to what the API really does.

- Every error response is ``application/problem+json`` with the :class:`~api.models.Problem`
  schema (FastAPI would document 422s with its own validation error shape otherwise).
- Routes that accept anonymous callers list the empty security requirement ``{}`` besides the
  two key schemes, and every route states the scope it needs (``x-required-scope``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi.openapi.utils import get_openapi

from api.const import PROBLEM_JSON, SCOPES

if TYPE_CHECKING:
    from fastapi import FastAPI

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def _required_scope(op: dict[str, Any]) -> str | None:
    """The scope FastAPI recorded in the operation's security requirements ("" = none)."""
    security = op.get("security")
    if not security:
        return None
    return next((scopes[0] for req in security for scopes in req.values() if scopes), "")


def build(app: FastAPI) -> dict[str, Any]:
    """Generate (once) and return the app's OpenAPI document."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    for ops in doc.get("paths", {}).values():
        for op in ops.values():
            for status, resp in op.get("responses", {}).items():
                if status[0] in "45":
                    resp["content"] = {PROBLEM_JSON: {"schema": _PROBLEM_REF}}
            scope = _required_scope(op)
            if scope is None:
                continue
            if scope:
                op["x-required-scope"] = scope
                op["description"] = (
                    op.get("description", "") + f"\n\nRequires a key with `{scope}`."
                )
            else:
                op["security"].insert(0, {})
                op["description"] = op.get("description", "") + "\n\nNo key needed."
    schemas = doc.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    doc.setdefault("info", {})["x-scopes"] = SCOPES
    app.openapi_schema = doc
    return doc
