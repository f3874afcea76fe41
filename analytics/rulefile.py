"""The rules file (``deploy/rules.toml``): parse, validate, reload without a restart.

A bad file is refused as a whole with the line and the reason (:class:`RuleFileError`); the
:class:`RuleFileWatcher` then keeps the rules it had. docs/analytics.md describes the format.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import tomllib
from dataclasses import dataclass
from datetime import time, timedelta
from typing import TYPE_CHECKING, Any, Final, cast

from analytics import aqi
from analytics.alerts import SEVERITIES
from analytics.regulations import GAUGES
from analytics.rules import (
    AQI_METRIC,
    DEVICE_METRIC,
    KINDS,
    AnomalyParams,
    AqiCategoryParams,
    ConsistencyParams,
    CounterResetParams,
    FlatlineParams,
    LampDaylightParams,
    NoiseParams,
    Params,
    RateParams,
    RiverAlarmParams,
    Rule,
    RuleSet,
    Scope,
    SpikeParams,
    StaleParams,
    ThresholdParams,
)
from analytics.us_aqi import US_CATEGORIES
from core.errors import DothiError
from core.metrics import METRICS
from store.devices import KINDS as DEVICE_KINDS

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from analytics.alerts import Severity
    from analytics.rules import Kind

log = logging.getLogger(__name__)

FORMAT_VERSION: Final = 1
_RULE_ID: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|min|m|s)")
_UNITS: Final = {"w": 604_800, "d": 86_400, "h": 3600, "min": 60, "m": 60, "s": 1}
_TOML_LINE: Final = re.compile(r"at line (\d+)")
# Metrics each kind watches when the rule does not say.
_DEFAULT_METRIC: Final[dict[str, str]] = {
    "counter_reset": "energy",
    "consistency": "pm25",
    "lamp_daylight": "lamp_on",
    "noise": "noise_laeq",
    "river_alarm": "water_level",
}


class RuleFileError(DothiError):
    """The rules file is not acceptable.

    Attributes:
        source: the file.
        line: the line of the problem (0 when it is about the whole file).
        reason: what is wrong.
    """

    def __init__(self, source: str, line: int, reason: str) -> None:
        where = f"{source}, line {line}" if line else source
        super().__init__(f"{where}: {reason}")
        self.source = source
        self.line = line
        self.reason = reason


def parse_duration(value: object) -> timedelta:
    """``"10m"``, ``"1h30m"``, ``"2d"``, ``"45s"``, ``"15 min"`` or a number of seconds.

    Raises:
        ValueError: for anything else or a negative value.
    """
    if isinstance(value, bool):
        raise TypeError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        if value < 0 or not math.isfinite(value):
            raise ValueError(f"duration {value!r} must be a finite number of seconds ≥ 0")
        return timedelta(seconds=value)
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a duration")
    text = value.strip().lower()
    pos, seconds = 0, 0.0
    for m in _DURATION_PART.finditer(text):
        if text[pos : m.start()].strip():
            break
        seconds += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos == 0 or text[pos:].strip():
        raise ValueError(f"{value!r} is not a duration like '10m', '1h30m', '2d' or '45s'")
    return timedelta(seconds=seconds)


def _parse_clock(value: object) -> time:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a time like '22:00'")
    try:
        return time.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a time like '22:00'") from None


_MISSING: Final = object()


@dataclass
class _Table:
    """A TOML table being read: typed getters that report the key's line, then unknown keys."""

    data: dict[str, Any]
    line_of: Callable[[str], int]
    label: str

    def fail(self, key: str, reason: str) -> RuleFileError:
        return RuleFileError("", self.line_of(key), f"{self.label}: {reason}")

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: object = _MISSING) -> object:
        if key in self.data:
            return self.data.pop(key)
        if default is _MISSING:
            raise self.fail(key, f"'{key}' is required")
        return default

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.raw(key, _MISSING if required else default)
        if value is not None and not isinstance(value, str):
            raise self.fail(key, f"'{key}' must be a string, not {value!r}")
        return value

    def number(
        self,
        key: str,
        default: float | None = None,
        *,
        required: bool = False,
        low: float = -math.inf,
    ) -> float | None:
        value = self.raw(key, _MISSING if required else default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"'{key}' must be a number, not {value!r}")
        if not math.isfinite(value) or value < low:
            raise self.fail(key, f"'{key}' must be a finite number ≥ {low}, not {value!r}")
        return float(value)

    def integer(self, key: str, default: int, *, low: int, high: int) -> int:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(key, f"'{key}' must be a whole number in {low}…{high}, not {value!r}")
        return value

    def boolean(self, key: str, *, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"'{key}' must be true or false, not {value!r}")
        return value

    def duration(self, key: str, default: timedelta | None = None) -> timedelta:
        value = self.raw(key, _MISSING if default is None else default)
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(value)
        except (TypeError, ValueError) as exc:
            raise self.fail(key, f"'{key}': {exc}") from None

    def choice(self, key: str, options: tuple[str, ...], default: str | None = None) -> str:
        value = self.raw(key, _MISSING if default is None else default)
        if value not in options:
            raise self.fail(key, f"'{key}' must be one of {', '.join(options)}, not {value!r}")
        return str(value)

    def strings(self, *keys: str) -> tuple[str, ...]:
        """Values of the first present key among ``keys`` (a string or a list of strings)."""
        for key in keys:
            if key not in self.data:
                continue
            value = self.data.pop(key)
            items = [value] if isinstance(value, str) else value
            if (
                not isinstance(items, list)
                or not items
                or not all(isinstance(v, str) and v for v in items)
            ):
                raise self.fail(key, f"'{key}' must be a string or a non-empty list of strings")
            return tuple(items)
        return ()

    def finish(self) -> None:
        if self.data:
            key = min(self.data)
            raise self.fail(key, f"unknown key '{key}'")


class _Lines:
    """Line numbers of ``[[rule]]`` headers and of keys within them, from the raw text."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.rule_starts = [
            i + 1 for i, ln in enumerate(self.lines) if re.match(r"^\s*\[\[\s*rule\s*\]\]", ln)
        ]
        self.defaults = next(
            (i + 1 for i, ln in enumerate(self.lines) if re.match(r"^\s*\[\s*defaults\s*\]", ln)),
            0,
        )

    def _section_end(self, start: int) -> int:
        for i in range(start, len(self.lines)):  # start is 1-based: lines[start] is the next
            if re.match(r"^\s*\[", self.lines[i]):
                return i + 1
        return len(self.lines) + 1

    def key_line(self, start: int, key: str) -> int:
        """The line of ``key = …`` in the section starting at ``start`` (else ``start``)."""
        if start == 0:
            return 0
        pattern = re.compile(rf'^\s*(?:{re.escape(key)}|"{re.escape(key)}")\s*=')
        for n in range(start + 1, self._section_end(start)):
            if pattern.match(self.lines[n - 1]):
                return n
        return start


def parse_rules(text: str, source: str = "rules.toml") -> RuleSet:
    """Parse and validate a rules file.

    Args:
        text: the file's content.
        source: its name, for messages.

    Returns:
        The rules (enabled ones in ``rules``, disabled ids in ``disabled``).

    Raises:
        RuleFileError: with the line and the reason of the first problem found.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_LINE.search(str(exc))
        raise RuleFileError(source, int(m.group(1)) if m else 0, f"not valid TOML: {exc}") from None
    lines = _Lines(text)
    try:
        return _build(doc, lines, source, hashlib.sha256(text.encode()).hexdigest())
    except RuleFileError as exc:
        raise RuleFileError(source, exc.line, exc.reason) from None


def _build(doc: dict[str, Any], lines: _Lines, source: str, digest: str) -> RuleSet:
    top = _Table(dict(doc), lambda _k: 0, "file")
    version = top.raw("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise RuleFileError("", 1, f"version must be {FORMAT_VERSION}, not {version!r}")
    defaults_raw = top.raw("defaults", {})
    rules_raw = top.raw("rule", [])
    top.finish()
    if not isinstance(defaults_raw, dict) or not isinstance(rules_raw, list):
        raise RuleFileError("", 0, "[defaults] must be a table and [[rule]] an array of tables")
    defaults = _Table(dict(defaults_raw), lambda k: lines.key_line(lines.defaults, k), "[defaults]")
    base = {
        "interval_s": defaults.number("interval_s", 60.0, low=1.0),
        "flap_window": defaults.duration("flap_window", timedelta(hours=1)),
        "flap_transitions": defaults.integer("flap_transitions", 6, low=2, high=1000),
    }
    defaults.finish()

    rules: list[Rule] = []
    disabled: set[str] = set()
    seen: dict[str, int] = {}
    for index, raw in enumerate(rules_raw):
        start = lines.rule_starts[index] if index < len(lines.rule_starts) else 0
        label = f"rule #{index + 1}"
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            label = f"rule '{raw['id']}'"
        table = _Table(dict(raw), _key_lines(lines, start), label)
        rule_id = table.text("id", required=True)
        assert rule_id is not None  # noqa: S101 (required)
        if not _RULE_ID.match(rule_id):
            raise table.fail(
                "id", f"id {rule_id!r} must be 1-64 of a-z, 0-9, '_', '.', '-' (lower case)"
            )
        if rule_id in seen:
            raise table.fail("id", f"duplicate id (first used on line {seen[rule_id]})")
        seen[rule_id] = start
        enabled = table.boolean("enabled", default=True)
        rule = _rule(table, rule_id, start, base)
        table.finish()
        if enabled:
            rules.append(rule)
        else:
            disabled.add(rule_id)
    return RuleSet(tuple(rules), source, digest, frozenset(disabled))


def _key_lines(lines: _Lines, start: int) -> Callable[[str], int]:
    def line_of(key: str) -> int:
        return lines.key_line(start, key)

    return line_of


def _rule(table: _Table, rule_id: str, line: int, base: dict[str, Any]) -> Rule:
    kind = cast("Kind", table.choice("kind", KINDS))
    severity = cast("Severity", table.choice("severity", SEVERITIES, "warning"))
    scope = _scope(table)
    metric = _metric(table, kind)
    params = _params(table, kind, base, metric)
    hours: tuple[time, time] | None = None
    if table.has("hours"):
        value = table.raw("hours")
        if not isinstance(value, list) or len(value) != 2:
            raise table.fail("hours", '\'hours\' must be [start, end], e.g. ["22:00", "05:00"]')
        try:
            hours = (_parse_clock(value[0]), _parse_clock(value[1]))
        except (TypeError, ValueError) as exc:
            raise table.fail("hours", f"'hours': {exc}") from None
        if hours[0] == hours[1]:
            raise table.fail("hours", "'hours' start and end are the same")
    hysteresis = table.number("hysteresis", 0.0, low=0.0)
    assert hysteresis is not None  # noqa: S101 (has a default)
    return Rule(
        id=rule_id,
        kind=kind,
        metric=metric,
        scope=scope,
        severity=severity,
        params=params,
        title=table.text("title", "") or "",
        description=table.text("description", "") or "",
        duration=table.duration("for", timedelta(0)),
        hysteresis=hysteresis,
        hold=table.duration("hold", timedelta(0)),
        clear_for=table.duration("clear_for", timedelta(0)),
        hours=hours,
        flap_window=table.duration("flap_window", base["flap_window"]),
        flap_transitions=table.integer(
            "flap_transitions", base["flap_transitions"], low=2, high=1000
        ),
        line=line,
    )


def _scope(table: _Table) -> Scope:
    value = table.raw("scope")
    if not isinstance(value, dict):
        raise table.fail(
            "scope", "'scope' must be a table, e.g. scope = { kind = \"air_quality\" }"
        )
    inner = _Table(dict(value), lambda _k: table.line_of("scope"), table.label + " scope")
    devices = inner.strings("device", "devices")
    kinds = inner.strings("kind", "kinds")
    areas = inner.strings("area", "areas")
    every = inner.boolean("all", default=False)
    inner.finish()
    bad = sorted(set(kinds) - set(DEVICE_KINDS))
    if bad:
        raise table.fail(
            "scope", f"unknown device kind {bad[0]!r}; known: {', '.join(DEVICE_KINDS)}"
        )
    if not (devices or kinds or areas or every):
        raise table.fail("scope", "'scope' needs device, kind, area or all = true")
    return Scope(devices, kinds, areas, every)


def _metric(table: _Table, kind: str) -> str:
    if kind == "stale":
        if table.has("metric"):
            raise table.fail("metric", "stale rules watch the whole device; remove 'metric'")
        return DEVICE_METRIC
    if kind == "aqi_category":
        if table.has("metric"):
            raise table.fail("metric", "aqi_category rules watch the hourly AQI; remove 'metric'")
        return AQI_METRIC
    default = _DEFAULT_METRIC.get(kind)
    metric = table.text("metric", default, required=default is None)
    if metric is None or metric not in METRICS:
        raise table.fail("metric", f"unknown metric {metric!r}; use a canonical name like pm25")
    return metric


def _params(table: _Table, kind: Kind, base: dict[str, Any], metric: str) -> Params:
    builder = _BUILDERS[kind]
    return builder(table, base, metric)


def _threshold(table: _Table, _base: dict[str, Any], _metric: str) -> Params:
    op = table.choice("op", (">", "<", "outside"))
    if op == "outside":
        bounds = _pair(table, "range", required=True)
        assert bounds is not None  # noqa: S101 (required)
        low, high = bounds
        crit = _pair(table, "critical_range", required=False)
        if crit is not None and not (crit[0] < low and crit[1] > high):
            raise table.fail("critical_range", "'critical_range' must enclose 'range'")
        return ThresholdParams(
            "outside",
            low=low,
            high=high,
            critical_low=crit[0] if crit else None,
            critical_high=crit[1] if crit else None,
        )
    value = table.number("value", required=True)
    critical = table.number("critical")
    assert value is not None  # noqa: S101 (required)
    if critical is not None and ((op == ">") != (critical > value) or critical == value):
        raise table.fail("critical", f"'critical' must be beyond 'value' in the '{op}' direction")
    return ThresholdParams(cast("Any", op), value=value, critical=critical)


def _pair(table: _Table, key: str, *, required: bool) -> tuple[float, float] | None:
    value = table.raw(key, _MISSING if required else None)
    if value is None:
        return None
    ok = (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )
    pair = cast("list[float]", value) if ok else []
    if not pair or not pair[0] < pair[1]:
        raise table.fail(key, f"'{key}' must be [low, high] with low < high, not {value!r}")
    return float(pair[0]), float(pair[1])


def _rate(table: _Table, _base: dict[str, Any], _metric: str) -> Params:
    window = table.duration("window")
    rise = table.number("rise", low=0.0)
    fall = table.number("fall", low=0.0)
    if (rise is None) == (fall is None):
        raise table.fail("rise", "give exactly one of 'rise' or 'fall' (a positive amount)")
    critical = table.number("critical", low=0.0)
    limit = rise if rise is not None else fall
    if critical is not None and limit is not None and critical <= limit:
        raise table.fail("critical", "'critical' must be larger than 'rise'/'fall'")
    if window <= timedelta(0):
        raise table.fail("window", "'window' must be positive")
    return RateParams(window, rise, fall, critical)


def _spike(table: _Table, _base: dict[str, Any], _metric: str) -> Params:
    mad_k = table.number("mad_k", 5.0, low=0.1)
    min_delta = table.number("min_delta", 0.0, low=0.0)
    assert mad_k is not None  # noqa: S101 (has a default)
    assert min_delta is not None  # noqa: S101 (has a default)
    return SpikeParams(table.integer("samples", 10, low=3, high=1000), mad_k, min_delta)


def _flatline(table: _Table, _base: dict[str, Any], _metric: str) -> Params:
    window = table.duration("window")
    epsilon = table.number("epsilon", 0.01, low=0.0)
    assert epsilon is not None  # noqa: S101 (has a default)
    if window <= timedelta(0):
        raise table.fail("window", "'window' must be positive")
    return FlatlineParams(window, epsilon, table.integer("min_samples", 4, low=2, high=100_000))


def _stale(table: _Table, base: dict[str, Any], _metric: str) -> Params:
    intervals = table.number("intervals", 3.0, low=1.0)
    interval_s = table.number("interval_s", base["interval_s"], low=1.0)
    critical = table.number("critical_intervals")
    assert intervals is not None  # noqa: S101 (has a default)
    assert interval_s is not None  # noqa: S101 (has a default)
    if critical is not None and critical <= intervals:
        raise table.fail("critical_intervals", "'critical_intervals' must exceed 'intervals'")
    return StaleParams(intervals, interval_s, critical)


def _counter_reset(table: _Table, _base: dict[str, Any], _metric: str) -> Params:
    jitter = table.number("jitter", 0.0, low=0.0)
    assert jitter is not None  # noqa: S101 (has a default)
    return CounterResetParams(jitter)


def _consistency(table: _Table, _base: dict[str, Any], metric: str) -> Params:
    other = table.text("other", "pm10") or "pm10"
    if other not in METRICS:
        raise table.fail("other", f"unknown metric {other!r}")
    if other == metric:
        raise table.fail("other", "'other' must differ from 'metric'")
    margin = table.number("margin", 0.0, low=0.0)
    assert margin is not None  # noqa: S101 (has a default)
    return ConsistencyParams(other, margin, table.duration("tolerance", timedelta(seconds=30)))


def _anomaly(table: _Table, _base: dict[str, Any], _metric: str) -> Params:
    z = table.number("z", 4.0, low=0.5)
    min_spread = table.number("min_spread", 0.0, low=0.0)
    assert z is not None  # noqa: S101 (has a default)
    assert min_spread is not None  # noqa: S101 (has a default)
    window = table.duration("window", timedelta(hours=1))
    if window <= timedelta(0):
        raise table.fail("window", "'window' must be positive")
    weeks = table.integer("baseline_weeks", 4, low=1, high=52)
    min_baseline = table.integer("min_baseline", min(3, weeks), low=1, high=52)
    if min_baseline > weeks:
        raise table.fail("min_baseline", "'min_baseline' cannot exceed 'baseline_weeks'")
    return AnomalyParams(
        z=z,
        window=window,
        baseline_weeks=weeks,
        min_baseline=min_baseline,
        direction=cast("Any", table.choice("direction", ("both", "above", "below"), "both")),
        min_spread=min_spread,
    )


def _lamp_daylight(table: _Table, _base: dict[str, Any], _metric: str) -> Params:
    on_at = table.number("on_at", 0.5)
    assert on_at is not None  # noqa: S101 (has a default)
    return LampDaylightParams(table.duration("margin", timedelta(minutes=30)), on_at)


def _noise(table: _Table, _base: dict[str, Any], _metric: str) -> Params:
    window = table.duration("window", timedelta(hours=1))
    margin = table.number("margin", 0.0, low=0.0)
    assert margin is not None  # noqa: S101 (has a default)
    area_type = table.choice("area_type", ("special", "normal"), "normal")
    if window <= timedelta(0):
        raise table.fail("window", "'window' must be positive")
    return NoiseParams(window, margin, cast("Any", area_type))


def _river_alarm(table: _Table, _base: dict[str, Any], _metric: str) -> Params:
    gauge = table.text("gauge")
    if gauge is not None and gauge not in GAUGES:
        raise table.fail("gauge", f"unknown gauge {gauge!r}; known: {', '.join(sorted(GAUGES))}")
    return RiverAlarmParams(gauge, table.boolean("include_unverified", default=True))


def _aqi_category(table: _Table, _base: dict[str, Any], _metric: str) -> Params:
    method = table.choice("method", ("VN_AQI", "US_EPA_AQI"), "VN_AQI")
    cats = aqi.CATEGORIES if method == "VN_AQI" else US_CATEGORIES
    keys = tuple(c.key for c in cats)
    low = table.choice("min_category", keys, "poor" if method == "VN_AQI" else keys[2])
    high: str | None = None
    if table.has("critical_category"):
        high = table.choice("critical_category", keys)
        if keys.index(high) <= keys.index(low):
            raise table.fail("critical_category", "'critical_category' must be worse than min")
    return AqiCategoryParams(cast("Any", method), low, high)


_BUILDERS: Final[dict[str, Callable[[_Table, dict[str, Any], str], Params]]] = {
    "threshold": _threshold,
    "rate": _rate,
    "spike": _spike,
    "flatline": _flatline,
    "stale": _stale,
    "counter_reset": _counter_reset,
    "consistency": _consistency,
    "anomaly": _anomaly,
    "lamp_daylight": _lamp_daylight,
    "noise": _noise,
    "river_alarm": _river_alarm,
    "aqi_category": _aqi_category,
}


def load_rules(path: Path) -> RuleSet:
    """Read and validate a rules file.

    Raises:
        RuleFileError: unreadable or invalid (with the line and the reason).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFileError(str(path), 0, f"cannot read: {exc}") from None
    return parse_rules(text, str(path))


class RuleFileWatcher:
    """The current rules of a file, reloaded when the file changes or on request (SIGHUP).

    A file that fails validation is refused: the error is logged with its line and kept in
    :attr:`last_error`, and the previous rules stay active.

    Args:
        path: the rules file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.current = load_rules(path)
        self.last_error: str | None = None
        self._stamp = self._stat()
        self._forced = threading.Event()
        log.info("loaded %d rules from %s", len(self.current.rules), path)

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def request_reload(self) -> None:
        """Reload at the next :meth:`poll` even if the file looks unchanged (SIGHUP handler)."""
        self._forced.set()

    def poll(self) -> RuleSet:
        """The rules to use now: reloaded if the file changed since the last look."""
        stamp = self._stat()
        if stamp == self._stamp and not self._forced.is_set():
            return self.current
        self._forced.clear()
        self._stamp = stamp
        try:
            new = load_rules(self.path)
        except RuleFileError as exc:
            if str(exc) != self.last_error:
                log.error("rules file refused, keeping the %d current rules: %s",
                          len(self.current.rules), exc)  # fmt: skip
            self.last_error = str(exc)
            return self.current
        self.last_error = None
        if new.digest != self.current.digest:
            log.info("reloaded %d rules from %s", len(new.rules), self.path)
            self.current = new
        return self.current
