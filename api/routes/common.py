"""OpenAPI documentation of the error responses the routes share."""

from typing import Any, Final

from api.models import Problem

_P: Final = {"model": Problem}

ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    401: {**_P, "description": "A key is needed, or the key is not valid"},
    422: {**_P, "description": "A parameter is invalid or over a limit (the field is named)"},
    429: {**_P, "description": "Rate limit exceeded; see Retry-After"},
    503: {**_P, "description": "Database unavailable; see Retry-After"},
}
"""Every /api/v1 route can answer these."""

NOT_FOUND: Final[dict[int | str, dict[str, Any]]] = {
    404: {**_P, "description": "Unknown id, or one this caller may not see"}
}
FORBIDDEN: Final[dict[int | str, dict[str, Any]]] = {
    403: {**_P, "description": "The key lacks the scope this route needs"}
}
