"""Paging: ``@iot.nextLink`` URLs, and keyset cursors (``$skiptoken``) for them.

When every ordering key of a statement is a plain non-null column, a nextLink carries the last
row's values of those keys (base64 JSON, with a fingerprint of the order so a token cannot be
replayed against another ``$orderby``), and the next page starts right after them: every page
costs the same. Otherwise the link carries ``$skip``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlencode

from api.sta.errors import StaQueryError

if TYPE_CHECKING:
    from api.sta.ast import QueryOptions
    from api.sta.compile import OrderKey
    from api.sta.plan import Context, Plan

LINK_SAFE: Final = "$',()/:@;=*!"
"""Characters left as they are in nextLinks, so they stay readable."""


def _fingerprint(plan: Plan) -> str:
    text = "|".join(f"{k.column}:{int(k.descending)}" for k in plan.order)
    return hashlib.sha256(f"{plan.entity.name}|{text}".encode()).hexdigest()[:12]


def _encode_value(value: Any) -> Any:
    return {"t": value.isoformat()} if isinstance(value, datetime) else value


def skiptoken(plan: Plan, row: dict[str, Any]) -> str:
    """The cursor after ``row`` in the plan's order."""
    payload = [_fingerprint(plan), [_encode_value(row[k.column]) for k in plan.order if k.column]]
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_skiptoken(plan: Plan, token: str) -> list[Any]:
    """The ordering values a ``$skiptoken`` carries, checked against the plan.

    Raises:
        StaQueryError: for a token this service did not issue for this order.
    """

    def bad(why: str) -> StaQueryError:
        return StaQueryError(why, option="$skiptoken", token=token[:40])

    if not plan.keyset_ready():
        raise bad("this $orderby pages with $skip; $skiptoken does not apply")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        fingerprint, values = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise bad("not a token this service issued") from None
    if fingerprint != _fingerprint(plan) or not isinstance(values, list):
        raise bad("belongs to another $orderby or collection; follow the nextLink as given")
    if len(values) != len(plan.order):
        raise bad("malformed")
    out = []
    for key, value in zip(plan.order, values, strict=True):
        out.append(_decode_value(key, value, bad))
    return out


def _decode_value(key: OrderKey, value: Any, bad: Any) -> Any:
    sql_type = key.sql_type
    if sql_type == "timestamptz":
        if not isinstance(value, dict) or not isinstance(value.get("t"), str):
            raise bad("malformed")
        try:
            return datetime.fromisoformat(value["t"])
        except ValueError:
            raise bad("malformed") from None
    if sql_type == "float8":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("malformed")
        return float(value)
    if not isinstance(value, str):
        raise bad("malformed")
    return value


def keyset_condition(plan: Plan, values: list[Any]) -> str:
    """Rows after the cursor in the plan's order."""
    bind = plan.params.bind
    keys = plan.order
    placeholders = [bind(v, k.sql_type or "text") for k, v in zip(keys, values, strict=True)]
    first = keys[0]
    # Implied by the rest, but lets PostgreSQL skip whole chunks when the first key is time.
    bound = f"{first.sql} {'<=' if first.descending else '>='} {placeholders[0]}"
    if all(k.descending == first.descending for k in keys):
        op = "<" if first.descending else ">"
        row = f"({', '.join(k.sql for k in keys)}) {op} ({', '.join(placeholders)})"
        return f"({bound} AND {row})"
    alternatives = []
    for i, key in enumerate(keys):
        equal = [f"{k.sql} = {p}" for k, p in zip(keys[:i], placeholders[:i], strict=True)]
        op = "<" if key.descending else ">"
        alternatives.append("(" + " AND ".join([*equal, f"{key.sql} {op} {placeholders[i]}"]) + ")")
    return f"({bound} AND ({' OR '.join(alternatives)}))"


def next_link(
    ctx: Context, plan: Plan, options: QueryOptions, last: dict[str, Any], page: int
) -> str:
    """The ``@iot.nextLink`` after ``last``: the request's own options, the same page size,
    and a ``$skiptoken`` (keyset) or the next ``$skip``.
    """
    kept = [(k, v) for k, v in ctx.query if k not in ("$skip", "$skiptoken", "$top")]
    kept.append(("$top", str(page)))
    if plan.keyset_ready():
        kept.append(("$skiptoken", skiptoken(plan, last)))
    else:
        kept.append(("$skip", str(options.skip + page)))
    return f"{ctx.url}?{urlencode(kept, quote_via=quote, safe=LINK_SAFE)}"
