"""Alert rules as data: what each kind of rule watches and its validated parameters.

Rules come from ``deploy/rules.toml`` (:mod:`analytics.rulefile` parses and checks it); the rule
engine (:mod:`analytics.evaluate`) runs them; :mod:`analytics.conditions` holds each kind's test.
Every rule has an id, a kind, a scope (which devices), a severity and the lifecycle knobs shared
by all kinds: ``for`` (how long the condition must hold before an alert opens), ``hysteresis``
(how far back past the threshold a value must go to clear), ``hold`` (the least time an alert
stays open) and flapping detection.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time, timedelta
from typing import TYPE_CHECKING, Final, Literal, get_args

if TYPE_CHECKING:
    from analytics.alerts import Severity

Kind = Literal[
    "threshold",
    "rate",
    "spike",
    "flatline",
    "stale",
    "counter_reset",
    "consistency",
    "anomaly",
    "lamp_daylight",
    "noise",
    "river_alarm",
    "aqi_category",
]
KINDS: Final[tuple[Kind, ...]] = get_args(Kind)

DEVICE_METRIC: Final = "*"
"""The metric of alerts about a whole device (stale/offline)."""
AQI_METRIC: Final = "aqi"
"""The metric of alerts raised from the hourly AQI (``aqi_category`` rules)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Which devices a rule applies to. Given parts combine with AND; ``all`` matches every device.

    Attributes:
        devices: device ids.
        kinds: device kinds (``air_quality``, ``river_gauge`` …).
        areas: area ids; a device matches when its area is one of them **or below one of them**
            in the areas tree.
        all: every device (the other parts still narrow it when given).
    """

    devices: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    areas: tuple[str, ...] = ()
    all: bool = False


@dataclass(frozen=True, slots=True)
class ThresholdParams:
    """``op`` ``>``: value above ``value``; ``<``: below; ``outside``: outside [low, high].

    ``critical`` is an optional second threshold in the same direction (for ``outside``: a pair)
    past which the alert's severity becomes critical.
    """

    op: Literal[">", "<", "outside"]
    value: float | None = None
    low: float | None = None
    high: float | None = None
    critical: float | None = None
    critical_low: float | None = None
    critical_high: float | None = None


@dataclass(frozen=True, slots=True)
class RateParams:
    """Change over ``window``: fires when the rise exceeds ``rise`` (or the fall ``fall``)."""

    window: timedelta
    rise: float | None = None
    fall: float | None = None
    critical: float | None = None


@dataclass(frozen=True, slots=True)
class SpikeParams:
    """A reading further than ``mad_k`` robust deviations (and ``min_delta``) from the median of
    the ``samples`` readings before it (REFERENCE.md §5.2, real-time variant)."""

    samples: int = 10
    mad_k: float = 5.0
    min_delta: float = 0.0


@dataclass(frozen=True, slots=True)
class FlatlineParams:
    """Readings within ``epsilon`` of each other for at least ``window`` (and ``min_samples``)."""

    window: timedelta
    epsilon: float = 0.01
    min_samples: int = 4


@dataclass(frozen=True, slots=True)
class StaleParams:
    """No data for ``intervals`` × the device's expected interval; ``critical_intervals``: critical.

    The interval is ``devices.metadata.interval_s`` when the device has one, else ``interval_s``.
    """

    intervals: float = 3.0
    interval_s: float = 60.0
    critical_intervals: float | None = None


@dataclass(frozen=True, slots=True)
class CounterResetParams:
    """A cumulative counter went down by more than ``jitter`` (restart, replacement, rollover)."""

    jitter: float = 0.0


@dataclass(frozen=True, slots=True)
class ConsistencyParams:
    """``metric`` exceeds ``other`` by more than ``margin`` at the same time (± ``tolerance``);
    PM2.5 > PM10 is physically impossible (REFERENCE.md §4.4, §5.2)."""

    other: str
    margin: float = 0.0
    tolerance: timedelta = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class AnomalyParams:
    """Robust z-score of the trailing ``window`` mean against the same hour of the week.

    The baseline is the hourly means (1 h rollup tier) of the previous ``baseline_weeks`` weeks at
    the same local hour of the week: z = (x − median) / (1.4826 · MAD), the MAD floored at
    ``min_spread`` so a perfectly regular baseline does not make every wobble infinite.
    """

    z: float = 4.0
    window: timedelta = timedelta(hours=1)
    baseline_weeks: int = 4
    min_baseline: int = 3
    direction: Literal["both", "above", "below"] = "both"
    min_spread: float = 0.0


@dataclass(frozen=True, slots=True)
class LampDaylightParams:
    """A street light on (``metric`` ≥ ``on_at``) in daylight: after sunrise + ``margin`` and before
    sunset − ``margin`` (Nam Định sunrise/sunset, :mod:`analytics.daylight`)."""

    margin: timedelta = timedelta(minutes=30)
    on_at: float = 0.5


@dataclass(frozen=True, slots=True)
class NoiseParams:
    """LAeq over ``window`` above the QCVN 26:2010 limit of the device's area type (+ ``margin``).

    The area type is ``devices.metadata.area_type`` (``special`` or ``normal``), else
    ``area_type``; the limit is the day (06–21) or night one at each reading's local time.
    """

    window: timedelta = timedelta(hours=1)
    margin: float = 0.0
    area_type: Literal["special", "normal"] = "normal"


@dataclass(frozen=True, slots=True)
class RiverAlarmParams:
    """Flood alarm levels (báo động I/II/III) of the gauge at the device.

    The gauge is ``devices.metadata.gauge`` when set, else ``gauge``; levels come from
    :data:`analytics.regulations.GAUGES` and severities from
    :func:`analytics.regulations.alarm_severity`. The alert escalates as the water rises and
    resolves below level I minus the rule's hysteresis.
    """

    gauge: str | None = None
    include_unverified: bool = True


@dataclass(frozen=True, slots=True)
class AqiCategoryParams:
    """The station's hourly AQI reached ``min_category`` (``critical_category``: critical)."""

    method: Literal["VN_AQI", "US_EPA_AQI"] = "VN_AQI"
    min_category: str = "poor"
    critical_category: str | None = None


Params = (
    ThresholdParams
    | RateParams
    | SpikeParams
    | FlatlineParams
    | StaleParams
    | CounterResetParams
    | ConsistencyParams
    | AnomalyParams
    | LampDaylightParams
    | NoiseParams
    | RiverAlarmParams
    | AqiCategoryParams
)


@dataclass(frozen=True, slots=True)
class Rule:
    """One alert rule.

    Attributes:
        id: unique, stable id (alerts and evaluation state are keyed by it).
        kind: what is tested (see :data:`KINDS`).
        metric: the canonical metric watched (``*`` for stale, ``aqi`` for AQI categories).
        scope: which devices.
        severity: severity of the alerts (kinds with levels may raise it).
        params: the kind's parameters.
        title: short text for lists and notifications.
        description: why the rule exists.
        duration: how long the condition must hold before an alert opens (``for``).
        hysteresis: how far past the threshold (towards normal) a value must go to clear.
        hold: the least time an alert stays open before it may clear on its own.
        clear_for: how long the condition must stay clear before the alert resolves.
        hours: local time window (start, end) in which the rule is active, or None for always;
            start > end wraps midnight (22:00–05:00).
        flap_window: the window in which open/resolve transitions are counted.
        flap_transitions: that many transitions in the window make the alert flapping.
        line: line of the rule in its file (for messages).
    """

    id: str
    kind: Kind
    metric: str
    scope: Scope
    severity: Severity
    params: Params
    title: str = ""
    description: str = ""
    duration: timedelta = timedelta(0)
    hysteresis: float = 0.0
    hold: timedelta = timedelta(0)
    clear_for: timedelta = timedelta(0)
    hours: tuple[time, time] | None = None
    flap_window: timedelta = timedelta(hours=1)
    flap_transitions: int = 6
    line: int = 0

    def needed_metrics(self) -> tuple[str, ...]:
        """The metrics whose readings the rule reads (two for consistency rules)."""
        if isinstance(self.params, ConsistencyParams):
            return (self.metric, self.params.other)
        return (self.metric,)


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The rules of one file, as loaded.

    Attributes:
        rules: the enabled rules, in file order.
        source: where they came from (path).
        digest: SHA-256 of the file's bytes (reloads are skipped when it is unchanged).
        disabled: ids of rules present but disabled (their open alerts are left alone).
    """

    rules: tuple[Rule, ...]
    source: str = ""
    digest: str = ""
    disabled: frozenset[str] = frozenset()

    def ids(self) -> frozenset[str]:
        """Ids of every rule in the file, enabled or not."""
        return frozenset(r.id for r in self.rules) | self.disabled
