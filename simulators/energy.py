"""Energy devices: household smart meters, street-light controllers and rooftop solar.

Each reports an instantaneous power and a monotonic energy counter (kWh). The counter is the
exact integral of the device's *expected* power since a fixed origin (1 January 2020, local),
computed in closed form from per-day tables, so it is a pure function of time like every other
signal; reported power adds short-term wobble of mean one around that expectation, so power and
energy agree over an hour or so — except where a scenario or fault says otherwise.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Final

import numpy as np

from simulators import prng, profiles
from simulators.environment import daily_clearness
from simulators.profiles import HOUR_S

if TYPE_CHECKING:
    from simulators.city import DeviceSpec
    from simulators.environment import Environment
    from simulators.prng import FloatArray, IntArray
    from simulators.scenarios import Scenario

Values = dict[str, "FloatArray"]

ORIGIN_DAY: Final = 18262  # 2020-01-01, local day number
_TABLE_DAYS: Final = 366 * 25  # counters run until about 2045
_ORIGIN_T: Final = float(profiles.day_start(ORIGIN_DAY))
_STANDBY_W: Final = 1.5  # a lamp controller's own draw
_SOLAR_EXP: Final = 1.3  # bell-curve sharpness of a clear day


def _day_index(t: FloatArray) -> tuple[IntArray, FloatArray]:
    day = profiles.local_day(t)
    idx = np.clip(day - ORIGIN_DAY, 0, _TABLE_DAYS - 1)
    return idx, profiles.local_hour(t)


def _cum_before(daily: FloatArray) -> FloatArray:
    """Running totals: element d = sum of days before d."""
    return np.concatenate(([0.0], np.cumsum(daily)[:-1]))


def _start_value(device: DeviceSpec, low: float, high: float) -> float:
    """Where a device's counter stood at the origin (seed-independent, like its id)."""
    u = prng.uniform_int(prng.key("counter", device.id), 0)
    return low + (high - low) * u


# -- smart meters ------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _ac_table() -> tuple[FloatArray, FloatArray]:
    days = np.arange(ORIGIN_DAY, ORIGIN_DAY + _TABLE_DAYS, dtype=np.float64)
    noon = profiles.day_start(days) + 12 * HOUR_S
    mean_t = profiles.monthly(profiles.TEMP_MONTHLY, noon)
    weight = np.clip(
        (mean_t - profiles.AC_TEMP_LOW) / (profiles.AC_TEMP_HIGH - profiles.AC_TEMP_LOW), 0.0, 1.0
    )
    return weight, _cum_before(weight)


_BASE_DAY_KWH: Final = float(sum(profiles.HOUSEHOLD_KW) / 2)
_AC_DAY_KWH: Final = float(sum(profiles.HOUSEHOLD_AC_KW) / 2)


def meter_energy(device: DeviceSpec, t: FloatArray) -> FloatArray:
    """A household meter's counter (kWh) if nothing tampered with it."""
    weight, weight_cum = _ac_table()
    idx, hour = _day_index(t)
    factor = device.number("household_factor", 0.85)
    kwh = (
        _BASE_DAY_KWH * idx
        + _AC_DAY_KWH * weight_cum[idx]
        + profiles.half_hour_cumulative(profiles.HOUSEHOLD_KW, hour)
        + weight[idx] * profiles.half_hour_cumulative(profiles.HOUSEHOLD_AC_KW, hour)
    )
    return np.asarray(_start_value(device, 300.0, 12300.0) + factor * kwh)


def smart_meter(device: DeviceSpec, t: FloatArray, env: Environment) -> Values:
    """A 1-phase 220 V household meter (REFERENCE.md §6.6 load shape, TT 39/2015 grid)."""
    weight, _ = _ac_table()
    idx, hour = _day_index(t)
    factor = device.number("household_factor", 0.85)
    rated = device.number("rated_power_w", 8800.0)
    kw = factor * (
        profiles.half_hour_profile(profiles.HOUSEHOLD_KW, hour)
        + weight[idx] * profiles.half_hour_profile(profiles.HOUSEHOLD_AC_KW, hour)
    )
    wobble = np.exp(0.3 * prng.smooth(env.key("device", device.id, "load"), t, 600) - 0.045)
    street = 1.0 + 0.08 * env.common_noise(t, HOUR_S, "area", device.area_id, "load")
    power = np.clip(kw * 1000.0 * wobble * street, 5.0, rated)
    # Position on the low-voltage feeder sets the voltage; load and the evening peak sag it.
    feeder = -5.0 + 13.0 * prng.uniform_int(env.key("feeder", device.id), 0)
    evening = ((hour >= 18) & (hour < 21)).astype(np.float64)
    voltage = (
        220.0
        + feeder
        + 3.0 * env.common_noise(t, 1200, "area", device.area_id, "volt")
        - 1.2 * power / 1000.0
        - 4.0 * evening
        + 0.5 * prng.normal(env.key("white", device.id, "volt"), np.round(t).astype(np.int64))
    )
    voltage = np.clip(voltage, 200.0, 238.0)
    frequency = 50.0 + 0.035 * env.common_noise(t, 300, "province", "grid-frequency")
    pf = 0.95 - 0.06 * weight[idx] - 0.06 * (power < 250.0)
    pf = np.clip(pf + 0.01 * prng.smooth(env.key("device", device.id, "pf"), t, 1800), 0.7, 0.99)
    current = power / (voltage * pf)
    return {
        "voltage": voltage,
        "current": current,
        "power": power,
        "power_factor": pf,
        "frequency": np.clip(frequency, 49.85, 50.15),
        "energy": _meter_counter(device, t, env.scenario),
    }


def _meter_counter(device: DeviceSpec, t: FloatArray, scenario: Scenario | None) -> FloatArray:
    energy = meter_energy(device, t)
    share = scenario.tamper_share(device) if scenario else None
    if share is not None and scenario is not None:
        energy = _tampered(
            device, t=t, energy=energy, start=scenario.start, end=scenario.end, share=share
        )
    return energy


def _tampered(
    device: DeviceSpec, *, t: FloatArray, energy: FloatArray, start: float, end: float, share: float
) -> FloatArray:
    """A bypassed meter registers only ``share`` of the energy while the bypass is in place."""
    e_start, e_end = meter_energy(device, np.array([start, end]))
    during = e_start + share * (energy - e_start)
    lost = (1.0 - share) * (e_end - e_start)
    return np.asarray(np.where(t < start, energy, np.where(t < end, during, energy - lost)))


# -- street lights -----------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _light_table() -> tuple[FloatArray, FloatArray, FloatArray]:
    days = np.arange(ORIGIN_DAY, ORIGIN_DAY + _TABLE_DAYS, dtype=np.float64)
    rise, sets = profiles.sun_times(days)
    on = sets + profiles.LIGHT_ON_AFTER_SUNSET_MIN / 60.0
    off = rise - profiles.LIGHT_OFF_BEFORE_SUNRISE_MIN / 60.0
    dim = profiles.LIGHT_DIM_LEVEL / 100.0
    # Full-power-equivalent hours of a day: dimmed until off, full from on to 22:00, dimmed after.
    hours = (
        dim * off
        + (profiles.LIGHT_DIM_FROM_HOUR - on)
        + dim * (24.0 - profiles.LIGHT_DIM_FROM_HOUR)
    )
    return on, off, _cum_before(hours)


def _lamp_hours(t: FloatArray) -> FloatArray:
    """Full-power-equivalent lamp hours since the origin under the normal schedule."""
    on, off, cum = _light_table()
    idx, hour = _day_index(t)
    dim = profiles.LIGHT_DIM_LEVEL / 100.0
    dim_from = profiles.LIGHT_DIM_FROM_HOUR
    today = (
        dim * np.minimum(hour, off[idx])
        + np.clip(np.minimum(hour, dim_from) - on[idx], 0.0, None)
        + dim * np.clip(hour - dim_from, 0.0, None)
    )
    return np.asarray(cum[idx] + today)


def street_light(device: DeviceSpec, t: FloatArray, env: Environment) -> Values:
    """A lamp controller: on at sunset + 10 min, 50 % after 22:00, off at sunrise − 10 min."""
    on, off, _ = _light_table()
    idx, hour = _day_index(t)
    rated = device.number("lamp_power_w", 100.0)
    lit = (hour >= on[idx]) | (hour < off[idx])
    dimmed = (hour >= profiles.LIGHT_DIM_FROM_HOUR) | (hour < off[idx])
    dimming = np.where(lit, np.where(dimmed, profiles.LIGHT_DIM_LEVEL, 100.0), 0.0)
    window = env.scenario.stuck_window(device) if env.scenario else None
    if window is not None:
        stuck = (t >= window[0]) & (t < window[1])
        lit = lit | stuck
        dimming = np.where(stuck, 100.0, dimming)
    jitter = 1.0 + 0.01 * prng.normal(
        env.key("white", device.id, "lamp"), np.round(t).astype(np.int64)
    )
    power = np.where(lit, rated * dimming / 100.0 * jitter, 0.0) + _STANDBY_W
    return {
        "lamp_on": lit.astype(np.float64),
        "dimming": dimming,
        "power": power,
        "energy": _light_counter(device, t, env.scenario),
    }


def _light_counter(device: DeviceSpec, t: FloatArray, scenario: Scenario | None) -> FloatArray:
    rated = device.number("lamp_power_w", 100.0)
    energy = (
        _start_value(device, 50.0, 2500.0)
        + (rated * _lamp_hours(t) + _STANDBY_W * (t - _ORIGIN_T) / HOUR_S) / 1000.0
    )
    window = scenario.stuck_window(device) if scenario else None
    if window is not None:
        start, end = window
        # Energy drawn beyond the schedule while stuck at full power.
        upto = np.clip(t, start, end)
        scheduled = _lamp_hours(upto) - _lamp_hours(np.array([start]))
        energy = energy + rated / 1000.0 * ((upto - start) / HOUR_S - scheduled)
    return np.asarray(energy)


# -- rooftop solar -----------------------------------------------------------------------------
_U_GRID: Final = np.linspace(0.0, 1.0, 2001)
_BELL_CUM: Final = np.concatenate(
    ([0.0], np.cumsum(np.sin(np.pi * _U_GRID[1:]) ** _SOLAR_EXP) * (_U_GRID[1] - _U_GRID[0]))
)


def _bell_cum(u: FloatArray) -> FloatArray:
    """∫₀ᵘ sin(πv)^1.3 dv."""
    return np.interp(np.clip(u, 0.0, 1.0), _U_GRID, _BELL_CUM)


@lru_cache(maxsize=512)
def _solar_table(seed: int, area_id: str) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    days = np.arange(ORIGIN_DAY, ORIGIN_DAY + _TABLE_DAYS, dtype=np.float64)
    rise, sets = profiles.sun_times(days)
    noon = profiles.day_start(days) + 12 * HOUR_S
    peak = profiles.monthly(profiles.SOLAR_PEAK_MONTHLY, noon) * daily_clearness(
        seed, area_id, days
    )
    daily = peak * (sets - rise) * float(_BELL_CUM[-1])  # kWh per kWp
    return rise, sets, peak, _cum_before(daily)


def solar(device: DeviceSpec, t: FloatArray, env: Environment) -> Values:
    """A rooftop PV system: a bell between sunrise and sunset, cloudier on rainy days."""
    rise, sets, peak, _ = _solar_table(env.seed, device.area_id)
    idx, hour = _day_index(t)
    capacity = device.number("capacity_kwp", 5.0)
    u = (hour - rise[idx]) / (sets[idx] - rise[idx])
    bell = np.where((u > 0) & (u < 1), np.sin(np.pi * np.clip(u, 0.0, 1.0)) ** _SOLAR_EXP, 0.0)
    # Passing clouds (shared by the panels of an area) scatter output around the day's mean.
    passing = 1.0 + (0.05 + 0.3 * (1.0 - peak[idx])) * env.common_noise(
        t, 900, "area", device.area_id, "cloud"
    )
    power = capacity * 1000.0 * peak[idx] * bell * np.clip(passing, 0.15, 1.2)
    return {"power": power, "energy": _solar_counter(device, t, env.seed)}


def _solar_counter(device: DeviceSpec, t: FloatArray, seed: int) -> FloatArray:
    rise, sets, peak, cum = _solar_table(seed, device.area_id)
    idx, hour = _day_index(t)
    day_len = sets[idx] - rise[idx]
    u = (hour - rise[idx]) / day_len
    capacity = device.number("capacity_kwp", 5.0)
    return np.asarray(
        _start_value(device, 10.0, 6000.0)
        + capacity * (cum[idx] + peak[idx] * day_len * _bell_cum(u))
    )


def counter(device: DeviceSpec, t: FloatArray, env: Environment) -> FloatArray:
    """Only the energy counter of an energy device (cheap: no weather, no noise).

    Raises:
        ValueError: the device has no energy counter.
    """
    if device.kind == "smart_meter":
        return _meter_counter(device, t, env.scenario)
    if device.kind == "street_light":
        return _light_counter(device, t, env.scenario)
    if device.kind == "solar":
        return _solar_counter(device, t, env.seed)
    raise ValueError(f"device {device.id} ({device.kind}) has no energy counter")
