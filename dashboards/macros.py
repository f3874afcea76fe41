"""Expand Grafana's SQL macros and template variables the way its PostgreSQL data source does.

No Grafana runs where dothi is built and tested, so the panels' SQL is checked by expanding it
here and running it against the real database. The rules follow Grafana's documented
behaviour for the PostgreSQL data source with the TimescaleDB option on:

- template variables first (``$var``, ``${var}``, ``${var:raw}``, ``${var:sqlstring}``,
  ``[[var]]``): a multi-value or "include All" variable becomes a list of quoted literals
  (``'a','b'``); a single-value variable is inserted as it is, with quotes doubled;
- ``$__interval`` (``1m``, ``2h`` …) and ``$__interval_ms``;
- then macros, ``$__name(args)`` where ``args`` contains no ``)``:
  ``$__timeFilter(col)`` → ``col BETWEEN '<from>' AND '<to>'`` (RFC 3339, UTC),
  ``$__timeFrom()`` / ``$__timeTo()`` → ``'<from>'`` / ``'<to>'``,
  ``$__timeGroup(col, 5m)`` → ``time_bucket('300.000s',col)`` (TimescaleDB form),
  ``$__timeGroupAlias(col, 5m)`` → the same ``AS "time"`` (so is ``$__timeGroup(…)`` directly
  followed by a comma), ``$__time(col)`` → ``col AS "time"``,
  ``$__timeEpoch(col)``; an unknown macro is an error, as in Grafana.

Anything this module refuses would fail in Grafana too, so a panel that expands here and runs
against the database is one Grafana can run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Mapping


class MacroError(ValueError):
    """A macro or variable Grafana could not expand either; the message says which."""


@dataclass(frozen=True, slots=True)
class Variable:
    """A template variable's current value(s).

    Attributes:
        name: the variable's name (``area`` for ``$area``).
        values: selected values (all options when "All" is selected).
        multi: multi-value or "include All": Grafana quotes each value for SQL.
    """

    name: str
    values: tuple[str, ...]
    multi: bool = True


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A dashboard's time range and the interval Grafana would pick for a panel.

    Attributes:
        start: the range's start (aware).
        end: the range's end (aware).
        interval: ``$__interval``; :func:`auto_interval` picks it like Grafana.
        variables: template variables by name.
    """

    start: datetime
    end: datetime
    interval: timedelta
    variables: Mapping[str, Variable] = field(default_factory=dict)


# Units of Grafana's interval strings (gtime.ParseInterval): a month and a year are taken as
# 30 and 365 days there too.
_UNITS: Final = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
    "M": timedelta(days=30),
    "y": timedelta(days=365),
}
_INTERVAL: Final = re.compile(r"^(\d+)(ms|s|m|h|d|w|M|y)$")
# Nice intervals Grafana rounds to; the raw interval (range / data points) goes up to the next.
_NICE: Final = tuple(
    timedelta(seconds=s)
    for s in (1, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800,
              21600, 43200, 86400, 7 * 86400, 30 * 86400)
)  # fmt: skip

_MACRO: Final = re.compile(r"\$(__[_a-zA-Z0-9]+)\(([^)]*)\)")
_VAR_BRACED: Final = re.compile(r"\$\{([_a-zA-Z][_a-zA-Z0-9]*)(?::([a-z]+))?\}")
_VAR_BRACKETS: Final = re.compile(r"\[\[([_a-zA-Z][_a-zA-Z0-9]*)\]\]")
_VAR_PLAIN: Final = re.compile(r"\$([_a-zA-Z][_a-zA-Z0-9]*)\b(?!\()")


def parse_interval(text: str) -> timedelta:
    """A Grafana interval string (``5m``, ``1h``, ``'30s'``) as a timedelta."""
    m = _INTERVAL.match(text.strip().strip("'\""))
    if m is None:
        raise MacroError(f"error parsing interval {text!r}")
    return int(m.group(1)) * _UNITS[m.group(2)]


def format_interval(interval: timedelta) -> str:
    """An interval the way Grafana writes ``$__interval``: its largest whole unit (``1m``)."""
    ms = round(interval / timedelta(milliseconds=1))
    if ms <= 0:
        raise MacroError("an interval must be positive")
    for unit in ("y", "w", "d", "h", "m", "s"):
        size = round(_UNITS[unit] / timedelta(milliseconds=1))
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def auto_interval(
    start: datetime,
    end: datetime,
    max_points: int = 1000,
    min_interval: timedelta = timedelta(minutes=1),
) -> timedelta:
    """The ``$__interval`` of a panel ``max_points`` wide over [start, end), at least
    ``min_interval`` (the data source's "minimum interval"), rounded up to a nice value."""
    raw = max((end - start) / max_points, min_interval)
    return next((nice for nice in _NICE if nice >= raw), _NICE[-1])


def _rfc3339(t: datetime) -> str:
    if t.tzinfo is None:
        raise MacroError("time range bounds must be timezone-aware")
    text = t.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _variable_text(var: Variable, fmt: str | None) -> str:
    if fmt not in (None, "raw", "sqlstring"):
        raise MacroError(f"variable format {fmt!r} is not supported here")
    if fmt == "raw":
        return ",".join(var.values)
    if fmt == "sqlstring" or var.multi:
        return ",".join(_literal(v) for v in var.values)
    if len(var.values) != 1:
        raise MacroError(f"single-value variable ${var.name} has {len(var.values)} values")
    return var.values[0].replace("'", "''")


def expand_variables(sql: str, rng: TimeRange) -> str:
    """Replace template variables and ``$__interval`` / ``$__interval_ms``."""
    builtins = {
        "__interval": Variable("__interval", (format_interval(rng.interval),), multi=False),
        "__interval_ms": Variable(
            "__interval_ms", (str(round(rng.interval / timedelta(milliseconds=1))),), multi=False
        ),
    }
    known = {**rng.variables, **builtins}

    def lookup(name: str) -> Variable:
        if name not in known:
            raise MacroError(f"unknown template variable ${name}")
        return known[name]

    def braced(m: re.Match[str]) -> str:
        return _variable_text(lookup(m.group(1)), m.group(2))

    def plain(m: re.Match[str]) -> str:
        if m.group(1).startswith("__") and m.group(1) not in builtins:
            return m.group(0)  # a macro without parentheses: left for the macro pass to refuse
        return _variable_text(lookup(m.group(1)), None)

    sql = _VAR_BRACED.sub(braced, sql)
    sql = _VAR_BRACKETS.sub(lambda m: _variable_text(lookup(m.group(1)), None), sql)
    return _VAR_PLAIN.sub(plain, sql)


def _args(name: str, text: str, needed: int) -> list[str]:
    args = [a.strip() for a in text.split(",")] if text.strip() else []
    if len(args) < needed or not all(args[:needed]):
        raise MacroError(f"macro ${name} needs {needed} argument(s), got {args}")
    return args


def _macro(name: str, text: str, rng: TimeRange) -> str:
    frm, to = _literal(_rfc3339(rng.start)), _literal(_rfc3339(rng.end))
    if name == "__timeFrom":
        return frm
    if name == "__timeTo":
        return to
    if name == "__timeFilter":
        col = _args(name, text, 1)[0]
        return f"{col} BETWEEN {frm} AND {to}"
    if name == "__time":
        return f'{_args(name, text, 1)[0]} AS "time"'
    if name == "__timeEpoch":
        return f'extract(epoch from {_args(name, text, 1)[0]}) as "time"'
    if name in ("__timeGroup", "__timeGroupAlias"):
        col, interval = _args(name, text, 2)[:2]
        group = f"time_bucket('{parse_interval(interval).total_seconds():.3f}s',{col})"
        return group + (' AS "time"' if name == "__timeGroupAlias" else "")
    raise MacroError(f"unknown macro ${name}")


def expand_macros(sql: str, rng: TimeRange) -> str:
    """Replace ``$__macro(args)`` calls (after :func:`expand_variables`)."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        # Grafana's pre-5.3 compatibility: "$__timeGroup(…)," in a select list gets the alias.
        if name == "__timeGroup" and m.string[m.end() : m.end() + 1] == ",":
            name = "__timeGroupAlias"
        return _macro(name, m.group(2), rng)

    out = _MACRO.sub(one, sql)
    leftover = re.search(r"\$__[_a-zA-Z0-9]+", out)
    if leftover:
        raise MacroError(f"{leftover.group(0)} is not a macro call Grafana expands")
    return out


def expand(sql: str, rng: TimeRange) -> str:
    """Template variables, then macros: the SQL Grafana would send to PostgreSQL."""
    return expand_macros(expand_variables(sql, rng), rng)
