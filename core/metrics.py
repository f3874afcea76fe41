"""The metric registry: canonical metric names, units, aliases and plausibility limits.

Every reading that enters dothi is normalised here and nowhere else: a device's name for a quantity
(``PM2.5``, ``temp``, ``Total``) maps to one canonical metric, its unit converts to the canonical
unit, and the converted value is checked against the limits of REFERENCE.md §5.1. Values outside
the *reject* range are refused; values outside the *suspect* range are kept with the QARTOD
SUSPECT flag.

Limits marked as engineering choices there are defaults, not official values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from core.errors import PayloadError

if TYPE_CHECKING:
    from collections.abc import Mapping

# IOOS QARTOD quality flags, stored in readings.quality.
QUALITY_PASS: Final = 1
QUALITY_NOT_EVALUATED: Final = 2
QUALITY_SUSPECT: Final = 3
QUALITY_FAIL: Final = 4


@dataclass(frozen=True, slots=True)
class Conversion:
    """canonical = value * scale + offset."""

    scale: float = 1.0
    offset: float = 0.0

    def apply(self, value: float) -> float:
        """Convert a value in the source unit to the canonical unit."""
        return value * self.scale + self.offset


IDENTITY: Final = Conversion()


@dataclass(frozen=True, slots=True)
class Metric:
    """One canonical metric.

    Attributes:
        name: canonical snake_case name, e.g. ``pm25``.
        unit: canonical unit as shown to people (``µg/m³``).
        description: one line for catalogues and dashboards.
        reject: (low, high) outside which a value is physically impossible for the sensor.
        suspect: (low, high) outside which a value is kept but flagged SUSPECT.
        units: accepted unit spellings and their conversion to ``unit``. A reading without a
            unit is taken to be in the canonical unit.
        counter: a monotonic counter (consumption is derived from differences).
        integral: the value must be a whole number (e.g. on/off states).
    """

    name: str
    unit: str
    description: str
    reject: tuple[float, float]
    suspect: tuple[float, float] | None = None
    units: Mapping[str, Conversion] = field(default_factory=dict)
    counter: bool = False
    integral: bool = False

    def convert(self, value: float, unit: str | None) -> float:
        """Convert ``value`` given in ``unit`` to this metric's canonical unit.

        Raises:
            PayloadError: ``unknown_unit`` if the unit is not accepted for this metric.
        """
        if unit is None or unit == "":
            return value
        conv = self.units.get(unit)
        if conv is None:
            conv = self.units.get(_fold_unit(unit))
        if conv is None:
            accepted = ", ".join(sorted(self.units)) or "(none: unitless)"
            raise PayloadError(
                "unknown_unit",
                f"unit {unit!r} is not accepted for {self.name} (canonical {self.unit}; "
                f"accepted: {accepted})",
            )
        return conv.apply(value)

    def check(self, value: float) -> int:
        """Return the quality flag of a canonical value, or raise if it is impossible.

        Raises:
            PayloadError: ``not_finite`` for NaN/inf, ``out_of_range`` outside the reject range,
                ``not_integral`` for a fractional value of an integral metric.
        """
        if not math.isfinite(value):
            raise PayloadError("not_finite", f"{self.name} value is {value!r}")
        lo, hi = self.reject
        if value < lo or value > hi:
            raise PayloadError(
                "out_of_range",
                f"{self.name} = {value:g} {self.unit} is outside the plausible range "
                f"[{lo:g}, {hi:g}]",
            )
        if self.integral and value != int(value):
            raise PayloadError("not_integral", f"{self.name} must be a whole number, got {value:g}")
        if self.suspect is not None:
            s_lo, s_hi = self.suspect
            if value < s_lo or value > s_hi:
                return QUALITY_SUSPECT
        return QUALITY_PASS


def _fold_unit(unit: str) -> str:
    """Spelling-insensitive form of a unit: µ/μ → u, superscripts → digits, no spaces."""
    return (
        unit.strip()
        .replace("µ", "u")
        .replace("μ", "u")
        .replace("³", "3")
        .replace("²", "2")
        .replace(" ", "")
    )


def _units(*pairs: tuple[str, Conversion], canonical: tuple[str, ...]) -> Mapping[str, Conversion]:
    table = dict.fromkeys(canonical, IDENTITY)
    table.update(dict(pairs))
    # Also accept the folded spelling of every entry (µg/m³ → ug/m3).
    for name, conv in list(table.items()):
        table.setdefault(_fold_unit(name), conv)
    return MappingProxyType(table)


# Gas conversions at 25 °C, 1 atm (QCVN 05:2023 Nm³): µg/m³ = ppb × MW / 24.45.
def _gas(ppb_factor: float) -> Mapping[str, Conversion]:
    return _units(
        ("ppb", Conversion(ppb_factor)),
        ("ppm", Conversion(ppb_factor * 1000)),
        ("mg/m3", Conversion(1000.0)),
        ("mg/m³", Conversion(1000.0)),
        canonical=("ug/m3", "µg/m³", "μg/m³", "ug/m³"),
    )


_PM_UNITS = _units(canonical=("ug/m3", "µg/m³", "μg/m³", "ug/m³"))
_PERCENT = ("%", "/100", "pct", "percent")
_F_TO_C = Conversion(5 / 9, -32 * 5 / 9)

_METRICS: tuple[Metric, ...] = (
    Metric("pm25", "µg/m³", "Fine particulate matter PM2.5", (0, 1000), (0, 500), _PM_UNITS),
    Metric("pm10", "µg/m³", "Particulate matter PM10", (0, 2000), (0, 600), _PM_UNITS),
    Metric("no2", "µg/m³", "Nitrogen dioxide", (-5, 3850), (-5, 1000), _gas(1.88)),
    Metric("o3", "µg/m³", "Ozone", (-5, 1200), (-5, 400), _gas(1.96)),
    Metric("so2", "µg/m³", "Sulphur dioxide", (-5, 2630), (-5, 350), _gas(2.62)),
    # CO: 1 ppm = 1145 µg/m³, so 1 ppb = 1.145 µg/m³.
    Metric("co", "µg/m³", "Carbon monoxide", (0, 150_000), (0, 30_000), _gas(1.145)),
    Metric(
        "temperature",
        "°C",
        "Air temperature",
        (-5, 50),
        (5, 42),
        _units(
            ("K", Conversion(1.0, -273.15)),
            ("°F", _F_TO_C),
            ("F", _F_TO_C),
            ("degF", _F_TO_C),
            canonical=("Cel", "°C", "C", "degC", "celsius"),
        ),
    ),
    Metric(
        "humidity",
        "%RH",
        "Relative humidity",
        (0, 100.5),
        None,
        _units(("/", Conversion(100.0)), canonical=("%RH", *_PERCENT)),
    ),
    Metric(
        "pressure",
        "hPa",
        "Atmospheric pressure",
        (800, 1100),
        (950, 1050),
        _units(
            ("Pa", Conversion(0.01)),
            ("kPa", Conversion(10.0)),
            ("mmHg", Conversion(1.333224)),
            canonical=("hPa", "mbar"),
        ),
    ),
    Metric(
        "noise_laeq",
        "dBA",
        "Equivalent continuous A-weighted sound level",
        (20, 140),
        (30, 110),
        # SenML has no A-weighted unit: devices send dB with an A-weighted name.
        _units(canonical=("dBA", "dB(A)", "dBa", "dB")),
    ),
    Metric(
        "water_level",
        "m",
        "River or water stage above gauge datum",
        (-5, 15),
        None,
        _units(("cm", Conversion(0.01)), ("mm", Conversion(0.001)), canonical=("m",)),
    ),
    Metric(
        "rainfall",
        "mm/h",
        "Rainfall intensity",
        (0, 300),
        (0, 100),
        _units(canonical=("mm/h", "mm/hr")),
    ),
    Metric(
        "voltage",
        "V",
        "RMS voltage (single phase)",
        (0, 280),
        (198, 242),
        _units(("mV", Conversion(0.001)), ("kV", Conversion(1000.0)), canonical=("V",)),
    ),
    Metric(
        "current",
        "A",
        "RMS current",
        (0, 1000),
        None,
        _units(("mA", Conversion(0.001)), canonical=("A",)),
    ),
    Metric(
        "power",
        "W",
        "Active power (negative = export)",
        (-1_000_000, 1_000_000),
        None,
        _units(("kW", Conversion(1000.0)), canonical=("W",)),
    ),
    Metric(
        "energy",
        "kWh",
        "Active energy, monotonic counter",
        (0, 1e10),
        None,
        _units(
            ("Wh", Conversion(0.001)),
            ("MWh", Conversion(1000.0)),
            ("J", Conversion(1 / 3.6e6)),
            canonical=("kWh",),
        ),
        counter=True,
    ),
    Metric(
        "power_factor",
        "",
        "Power factor",
        (-1, 1),
        None,
        _units(canonical=("/", "PF", "ratio")),
    ),
    Metric(
        "frequency",
        "Hz",
        "Grid frequency",
        (45, 55),
        (49.5, 50.5),
        _units(canonical=("Hz",)),
    ),
    Metric(
        "lamp_on",
        "",
        "Street lamp state (1 = on)",
        (0, 1),
        None,
        _units(canonical=("bool", "/")),
        integral=True,
    ),
    Metric(
        "dimming",
        "%",
        "Lamp dimming level (100 = full power)",
        (0, 100),
        None,
        _units(("/", Conversion(100.0)), canonical=_PERCENT),
    ),
    Metric(
        "battery",
        "%",
        "Device battery level",
        (0, 100.5),
        None,
        _units(("/", Conversion(100.0)), canonical=("%EL", *_PERCENT)),
    ),
)

METRICS: Final[Mapping[str, Metric]] = MappingProxyType({m.name: m for m in _METRICS})

# Names devices use for the canonical metrics. Keys are folded with fold_name().
_ALIASES: dict[str, str] = {
    "pm2.5": "pm25",
    "pm2_5": "pm25",
    "pm_25": "pm25",
    "pm_2_5": "pm25",
    "pm_10": "pm10",
    "nitrogen_dioxide": "no2",
    "ozone": "o3",
    "carbon_monoxide": "co",
    "sulphur_dioxide": "so2",
    "sulfur_dioxide": "so2",
    "temp": "temperature",
    "air_temperature": "temperature",
    "hum": "humidity",
    "rh": "humidity",
    "relative_humidity": "humidity",
    "press": "pressure",
    "baro": "pressure",
    "laeq": "noise_laeq",
    "laeq_1min": "noise_laeq",
    "laeq_5min": "noise_laeq",
    "laeq_15min": "noise_laeq",
    "noise": "noise_laeq",
    "sound_level": "noise_laeq",
    "level": "water_level",
    "stage": "water_level",
    "river_level": "water_level",
    "rain": "rainfall",
    "rain_rate": "rainfall",
    "precipitation": "rainfall",
    "volt": "voltage",
    "amps": "current",
    "active_power": "power",
    "apower": "power",
    "total": "energy",
    "energy_total": "energy",
    "kwh": "energy",
    "factor": "power_factor",
    "pf": "power_factor",
    "freq": "frequency",
    "lamp": "lamp_on",
    "relay": "lamp_on",
    "light_on": "lamp_on",
    "dim": "dimming",
    "dim_level": "dimming",
    "batt": "battery",
    "battery_level": "battery",
}


def fold_name(name: str) -> str:
    """Case- and separator-insensitive form of a metric name (``PM-2.5`` → ``pm_2.5``)."""
    return name.strip().lower().replace("-", "_").replace(" ", "_")


ALIASES: Final[Mapping[str, str]] = MappingProxyType({**{m: m for m in METRICS}, **_ALIASES})


_RESOLVED: dict[str, Metric] = dict(METRICS)
_RESOLVED_MAX: Final = 10_000


def resolve(name: str) -> Metric:
    """Return the canonical metric a device's name refers to.

    Raises:
        PayloadError: ``unknown_metric`` when no canonical metric or alias matches.
    """
    metric = _RESOLVED.get(name)  # every reading passes here: one dict lookup when seen before
    if metric is not None:
        return metric
    canonical = ALIASES.get(name) or ALIASES.get(fold_name(name))
    if canonical is None:
        raise PayloadError(
            "unknown_metric", f"metric {name!r} is not a canonical metric or a known alias"
        )
    metric = METRICS[canonical]
    if len(_RESOLVED) < _RESOLVED_MAX:  # names come from devices: bound what is remembered
        _RESOLVED[name] = metric
    return metric


def normalise(name: str, value: float, unit: str | None = None) -> tuple[Metric, float, int]:
    """Resolve, convert and check one reading.

    Returns:
        (metric, canonical value, quality flag).

    Raises:
        PayloadError: for an unknown metric or unit, a non-finite or impossible value.
    """
    metric = resolve(name)
    if not math.isfinite(value):
        raise PayloadError("not_finite", f"{metric.name} value is {value!r}")
    canonical = metric.convert(value, unit)
    return metric, canonical, metric.check(canonical)
