"""``unitOfMeasurement`` of each canonical unit: a name and a QUDT definition URI.

The metric registry (:mod:`core.metrics`) owns the units' symbols; SensorThings clients also want
a human name and a resolvable definition, which only this service needs, so they live here.
A test checks that every canonical metric's unit has an entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from core.metrics import METRICS

_QUDT: Final = "https://qudt.org/vocab/unit/"


@dataclass(frozen=True, slots=True)
class Unit:
    """A SensorThings ``unitOfMeasurement``."""

    name: str
    symbol: str
    definition: str


UNITS: Final[dict[str, Unit]] = {
    "µg/m³": Unit("microgram per cubic metre", "µg/m³", _QUDT + "MicroGM-PER-M3"),
    "°C": Unit("degree Celsius", "°C", _QUDT + "DEG_C"),
    "%RH": Unit("percent relative humidity", "%RH", _QUDT + "PERCENT_RH"),
    "hPa": Unit("hectopascal", "hPa", _QUDT + "HectoPA"),
    "dBA": Unit("A-weighted decibel", "dBA", _QUDT + "DeciB_A"),
    "m": Unit("metre", "m", _QUDT + "M"),
    "mm/h": Unit("millimetre per hour", "mm/h", _QUDT + "MilliM-PER-HR"),
    "V": Unit("volt", "V", _QUDT + "V"),
    "A": Unit("ampere", "A", _QUDT + "A"),
    "W": Unit("watt", "W", _QUDT + "W"),
    "kWh": Unit("kilowatt hour", "kWh", _QUDT + "KiloW-HR"),
    "Hz": Unit("hertz", "Hz", _QUDT + "HZ"),
    "%": Unit("percent", "%", _QUDT + "PERCENT"),
    "": Unit("dimensionless", "", _QUDT + "UNITLESS"),
}


def unit_of(metric: str) -> Unit:
    """The unit of a canonical metric (dimensionless for an unknown one)."""
    m = METRICS.get(metric)
    symbol = m.unit if m is not None else ""
    return UNITS.get(symbol) or Unit(symbol, symbol, "")


def catalogue_params() -> dict[str, list[str] | list[bool]]:
    """The metric catalogue as the array parameters :mod:`store.sta` views expect."""
    names = sorted(METRICS)
    units = [unit_of(n) for n in names]
    return {
        "sta_m_name": names,
        "sta_m_desc": [METRICS[n].description for n in names],
        "sta_m_uname": [u.name for u in units],
        "sta_m_usym": [u.symbol for u in units],
        "sta_m_udef": [u.definition for u in units],
        "sta_m_counter": [METRICS[n].counter for n in names],
    }
