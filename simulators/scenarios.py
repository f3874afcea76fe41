"""Scenarios: scripted events laid over the normal city, for demos and for testing analytics.

A scenario starts at a given simulated time and its effects are pure functions of time, so a
scenario replays identically in backfill and in real time. Settings come from the city file's
``[scenarios.NAME]`` tables.

- ``flood``: typhoon rain, a pressure dip, and the river gauges climbing through alarm levels
  I → II → III to a crest, then receding.
- ``pollution-episode``: a winter inversion traps particulates; PM2.5 plateaus where VN_AQI is
  Xấu (151–200) at the city's stations.
- ``streetlight-fault``: lamps in some areas stay on (and at full power) through the day.
- ``meter-tamper``: some meters' energy counters register only part of the power they report.
- ``sensor-outage``: every device in some areas goes silent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from core.errors import DothiError
from simulators import prng
from simulators.profiles import HOUR_S

if TYPE_CHECKING:
    from collections.abc import Mapping

    from simulators.city import City, DeviceSpec
    from simulators.environment import Environment
    from simulators.prng import BoolArray, FloatArray

SCENARIOS: Final = (
    "flood",
    "pollution-episode",
    "streetlight-fault",
    "meter-tamper",
    "sensor-outage",
)


class ScenarioError(DothiError):
    """A scenario name or its settings in the city file are invalid."""


def _smoothstep(x: FloatArray) -> FloatArray:
    x = np.clip(x, 0.0, 1.0)
    return np.asarray(x * x * (3.0 - 2.0 * x))


def _plateau(hours: FloatArray, up: float, hold: float, down: float) -> FloatArray:
    """0 → 1 over ``up`` hours, 1 for ``hold``, back to 0 over ``down``; 0 outside."""
    rising = _smoothstep(hours / max(up, 1e-9))
    falling = 1.0 - _smoothstep((hours - up - hold) / max(down, 1e-9))
    w = np.where(hours < up + hold, rising, falling)
    return np.asarray(np.where((hours < 0) | (hours >= up + hold + down), 0.0, w))


def _bump(hours: FloatArray, length: float) -> FloatArray:
    x = hours / max(length, 1e-9)
    return np.asarray(np.where((x > 0) & (x < 1), np.sin(np.pi * x) ** 2, 0.0))


def _number(params: Mapping[str, Any], name: str, default: float) -> float:
    value = params.get(name, default)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ScenarioError(f"scenario setting {name} must be a number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Scenario:
    """A scenario bound to a city, a seed and a start time.

    Attributes:
        name: one of :data:`SCENARIOS`.
        start: UTC epoch seconds when it begins.
        duration_s: how long its effects last.
        params: the city file's settings for it.
        affected: ids of the devices it singles out (lamps, meters, silenced devices).
        seed: the simulation seed.
        pm25_targets: plateau PM2.5 per area (pollution-episode).
    """

    name: str
    start: float
    duration_s: float
    params: Mapping[str, Any]
    affected: frozenset[str] = field(default_factory=frozenset)
    seed: int = 0
    pm25_targets: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def bind(cls, name: str, city: City, seed: int, start: float) -> Scenario:
        """Prepare scenario ``name`` for ``city`` starting at ``start``.

        Raises:
            ScenarioError: unknown scenario or invalid settings.
        """
        if name not in SCENARIOS:
            raise ScenarioError(f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)})")
        params = city.scenarios.get(name, {})
        affected: set[str] = set()
        targets: dict[str, float] = {}
        if name == "flood":
            lags = params.get("lag_hours", {})
            crests = params.get("crest_m", {})
            longest = max([float(v) for v in lags.values()] or [0.0])
            duration = max(
                _number(params, "rain_hours", 12),
                longest
                + _number(params, "rise_hours", 14)
                + _number(params, "hold_hours", 4)
                + _number(params, "recede_hours", 30),
            )
            affected = {d for d in crests if isinstance(crests[d], int | float)}
        elif name == "pollution-episode":
            duration = 2 * _number(params, "ramp_hours", 6) + _number(params, "plateau_hours", 18)
            for area_id in city.areas:
                targets[area_id] = _episode_target(params, city.area_chain(area_id))
        elif name == "streetlight-fault":
            duration = _number(params, "duration_hours", 30)
            areas = set(params.get("areas", []))
            frac = _number(params, "fraction", 1.0)
            k = prng.key(seed, "scenario", name)
            for d in city.devices:
                in_area = d.kind == "street_light" and areas & set(city.area_chain(d.area_id))
                if in_area and prng.uniform_int(prng.key(k, d.id), 0) < frac:
                    affected.add(d.id)
        elif name == "meter-tamper":
            duration = _number(params, "duration_hours", 48)
            frac = _number(params, "fraction", 0.05)
            least = int(_number(params, "min_devices", 2))
            k = prng.key(seed, "scenario", name)
            meters = sorted(
                (prng.uniform_int(prng.key(k, d.id), 0), d.id)
                for d in city.devices
                if d.kind == "smart_meter"
            )
            affected = {m for i, (u, m) in enumerate(meters) if u < frac or i < least}
        else:  # sensor-outage
            duration = _number(params, "duration_hours", 6)
            areas = set(params.get("areas", []))
            kinds = set(params.get("kinds", []))
            for d in city.devices:
                if areas & set(city.area_chain(d.area_id)) and (not kinds or d.kind in kinds):
                    affected.add(d.id)
        return cls(name, start, duration * HOUR_S, params, frozenset(affected), seed, targets)

    @property
    def end(self) -> float:
        """UTC epoch seconds when its effects are over."""
        return self.start + self.duration_s

    def _hours(self, t: FloatArray) -> FloatArray:
        return np.asarray((np.asarray(t, dtype=np.float64) - self.start) / HOUR_S)

    def active(self, t: FloatArray) -> BoolArray:
        """True where ``t`` lies inside the scenario."""
        return np.asarray((t >= self.start) & (t < self.end))

    # -- flood -------------------------------------------------------------------------------
    def extra_rain(self, area_id: str, t: FloatArray) -> FloatArray:
        """Typhoon rain added to an area, mm/h."""
        if self.name != "flood":
            return np.zeros_like(t)
        peak = _number(self.params, "rain_peak_mm_h", 45)
        local = 0.75 + 0.5 * prng.uniform_int(prng.key(self.seed, "flood", area_id), 0)
        return np.asarray(
            peak * local * _bump(self._hours(t), _number(self.params, "rain_hours", 12))
        )

    def pressure_dip(self, t: FloatArray) -> FloatArray:
        """How far the typhoon lowers the pressure, hPa."""
        if self.name != "flood":
            return np.zeros_like(t)
        length = 1.5 * _number(self.params, "rain_hours", 12)
        return np.asarray(
            _number(self.params, "pressure_dip_hpa", 14)
            * _bump(self._hours(t) + 0.25 * length, length)
        )

    def river_level(self, device: DeviceSpec, t: FloatArray, normal: FloatArray) -> FloatArray:
        """A gauge's stage during the flood: blends from normal to the crest and back."""
        if self.name != "flood" or device.id not in self.affected:
            return normal
        crest = float(self.params["crest_m"][device.id])
        lag = float(self.params.get("lag_hours", {}).get(device.id, 0.0))
        s = _plateau(
            self._hours(t) - lag,
            _number(self.params, "rise_hours", 14),
            _number(self.params, "hold_hours", 4),
            _number(self.params, "recede_hours", 30),
        )
        return np.asarray((1.0 - s) * normal + s * crest)

    # -- pollution episode -------------------------------------------------------------------
    def pollution_weight(self, t: FloatArray) -> FloatArray:
        """0 … 1: how far the inversion episode has taken hold."""
        if self.name != "pollution-episode":
            return np.zeros_like(t)
        ramp = _number(self.params, "ramp_hours", 6)
        return _plateau(self._hours(t), ramp, _number(self.params, "plateau_hours", 18), ramp)

    def pollution_pm25(
        self, env: Environment, area_id: str, t: FloatArray, pm: FloatArray
    ) -> FloatArray:
        """PM2.5 pushed towards the episode's plateau for the area."""
        w = self.pollution_weight(t)
        if not w.any():
            return pm
        target = self.pm25_targets.get(area_id, 80.0)
        wobble = np.exp(0.06 * prng.smooth(env.key("area", area_id, "episode"), t, 2 * HOUR_S))
        return np.asarray((1.0 - w) * pm + w * target * wobble)

    # -- devices singled out -----------------------------------------------------------------
    def stuck_window(self, device: DeviceSpec) -> tuple[float, float] | None:
        """When a lamp is stuck on at full power (streetlight-fault), or None."""
        if self.name != "streetlight-fault" or device.id not in self.affected:
            return None
        return self.start, self.end

    def tamper_share(self, device: DeviceSpec) -> float | None:
        """Share of the energy a tampered meter still registers, or None if untouched."""
        if self.name != "meter-tamper" or device.id not in self.affected:
            return None
        return _number(self.params, "registered_share", 0.2)

    def silent(self, device: DeviceSpec, t: FloatArray) -> BoolArray:
        """Where a device sends nothing (sensor-outage)."""
        if self.name != "sensor-outage" or device.id not in self.affected:
            return np.zeros(t.shape, dtype=bool)
        return self.active(t)


def _episode_target(params: Mapping[str, Any], chain: list[str]) -> float:
    table = params.get("pm25", {})
    for area_id in chain:
        if area_id in table:
            return float(table[area_id])
    return float(table.get("default", 80.0))
