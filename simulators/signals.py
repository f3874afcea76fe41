"""What each kind of device measures: clean (fault-free) values as pure functions of time.

:func:`sample` is the one entry point: a device, an array of UTC epoch seconds and the shared
:class:`~simulators.environment.Environment` give every metric's values. Area fields carry the
weather and the pollution background; a device adds its site's character and its own small
noise. Energy devices live in :mod:`simulators.energy`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import numpy as np

from simulators import energy, prng, profiles
from simulators.environment import winterness
from simulators.profiles import DAY_S, HOUR_S

if TYPE_CHECKING:
    from collections.abc import Callable

    from simulators.city import DeviceSpec
    from simulators.environment import Environment
    from simulators.prng import FloatArray

Values = dict[str, "FloatArray"]

# Site character of an air-quality station relative to its area's background [U]:
# (PM, NO2, CO, O3). Roadside stations see traffic; ozone is titrated where NO is fresh.
_SITE: Final = {
    "roadside": (1.12, 1.5, 1.3, 0.8),
    "industrial": (1.08, 1.1, 1.1, 0.95),
    "urban background": (1.0, 1.0, 1.0, 1.0),
    "residential": (0.97, 0.9, 0.95, 1.02),
    "town": (1.0, 0.95, 1.0, 1.0),
    "coastal": (0.95, 0.8, 0.9, 1.0),
    "rural": (0.9, 0.6, 0.8, 1.15),
}
# QCVN 26:2010 area types: typical LAeq by day and by night, dBA [U] (limits 55/45, 70/55).
_NOISE_LEVELS: Final = {"special": (52.0, 42.0), "normal": (65.0, 53.0)}
_TIDE_PERIOD_S: Final = 24.84 * HOUR_S  # Gulf of Tonkin tides are mostly diurnal
_SPRING_NEAP_S: Final = 13.66 * DAY_S


def device_noise(
    env: Environment,
    device: DeviceSpec,
    channel: str,
    t: FloatArray,
    *,
    period: float,
    sd: float,
) -> FloatArray:
    """A device's own slow multiplicative wobble, mean 1."""
    z = prng.smooth(env.key("device", device.id, channel), t, period)
    return np.asarray(np.exp(sd * z - sd * sd / 2))


def white(env: Environment, device: DeviceSpec, channel: str, t: FloatArray) -> FloatArray:
    """Reading-to-reading measurement noise (unit normal, one draw per timestamp)."""
    return prng.normal(env.key("white", device.id, channel), np.round(t).astype(np.int64))


def _air_quality(device: DeviceSpec, t: FloatArray, env: Environment) -> Values:
    a = device.area_id
    site = str(device.metadata.get("site", "urban background"))
    f_pm, f_no2, f_co, f_o3 = _SITE.get(site, _SITE["urban background"])
    rh = env.humidity(a, t)
    pm25 = env.pm25(a, t) * f_pm * device_noise(env, device, "pm", t, period=1800, sd=0.12)
    pm25 = pm25 * (1.0 + 0.02 * white(env, device, "pm25", t))
    if device.metadata.get("sensor") == "low-cost":
        # Optical counters over-read in humid air (particles swell).
        pm25 = pm25 * 1.1 * (1.0 + 0.5 * np.clip((rh - 75.0) / 25.0, 0.0, 1.0))
    pm10 = pm25 / env.pm_ratio(a, t) * device_noise(env, device, "pm10", t, period=1800, sd=0.05)
    pm10 = np.maximum(pm10, pm25 * 1.08)
    no2 = env.no2(a, t) * f_no2 * device_noise(env, device, "no2", t, period=1200, sd=0.12)
    o3 = env.o3(a, t) * f_o3 * device_noise(env, device, "o3", t, period=1800, sd=0.08)
    co = env.co(a, t) * f_co * device_noise(env, device, "co", t, period=1200, sd=0.1)
    so2 = env.so2(a, t) * device_noise(env, device, "so2", t, period=1800, sd=0.15)
    return {
        "pm25": np.clip(pm25, 0.5, 900.0),
        "pm10": np.clip(pm10, 1.0, 1500.0),
        "no2": no2,
        "o3": o3,
        "co": co,
        "so2": so2,
        # Sensors in a housing run a little warm.
        "temperature": env.temperature(a, t) + 0.3 + 0.1 * white(env, device, "temp", t),
        "humidity": np.clip(rh - 1.0 + 0.5 * white(env, device, "rh", t), 20.0, 100.0),
        "pressure": env.pressure(a, t) + 0.15 * white(env, device, "press", t),
    }


def weekday(t: FloatArray) -> FloatArray:
    """Local day of the week, 0 = Monday … 6 = Sunday (1970-01-01 was a Thursday)."""
    return np.asarray(np.mod(profiles.local_day(t) + 3, 7), dtype=np.float64)


def _noise(device: DeviceSpec, t: FloatArray, env: Environment) -> Values:
    a = device.area_id
    area_type = str(device.metadata.get("area_type", "normal"))
    day, night = _NOISE_LEVELS.get(area_type, _NOISE_LEVELS["normal"])
    site = str(device.metadata.get("site", ""))
    hour = profiles.local_hour(t)
    dow = weekday(t)
    daytime = (hour >= 6) & (hour < 21)
    level = night + (day - night) * env.traffic(a, t) ** 0.8
    if site == "road":
        level = level + np.where(daytime, 2.0, 1.0)
    elif site == "market":
        level = level + np.where((hour >= 4) & (hour < 7), 5.0, np.where(daytime, 1.0, -2.0))
    elif site == "school":
        lessons = ((hour >= 7) & (hour < 11.5)) | ((hour >= 13.5) & (hour < 17))
        level = (
            level
            + np.where(lessons & (dow < 6), 3.0, 0.0)
            - np.where((dow == 6) & daytime, 4.0, 0.0)
        )
    elif site == "temple":
        level = level + np.where((dow >= 5) & daytime, 2.5, 0.0)
    rain = np.minimum(3.0, np.sqrt(env.rain(a, t)))
    level = (
        level
        + 1.0 * rain
        + 1.2 * env.common_noise(t, HOUR_S, "area", a, "noise")
        + 1.5 * prng.smooth(env.key("device", device.id, "noise"), t, 600)
        + 0.6 * white(env, device, "laeq", t)
    )
    return {"noise_laeq": np.clip(level, 30.0, 105.0)}


def _weather(device: DeviceSpec, t: FloatArray, env: Environment) -> Values:
    a = device.area_id
    catch = 0.95 + 0.1 * prng.uniform_int(env.key("catch", device.id), 0)
    return {
        "rainfall": env.rain(a, t) * catch,
        "temperature": env.temperature(a, t) + 0.1 * white(env, device, "temp", t),
        "humidity": np.clip(env.humidity(a, t) + 0.4 * white(env, device, "rh", t), 20.0, 100.0),
        "pressure": env.pressure(a, t) + 0.1 * white(env, device, "press", t),
    }


def _river_gauge(device: DeviceSpec, t: FloatArray, env: Environment) -> Values:
    table = device.metadata.get("monthly_mean_m")
    means = (
        tuple(float(x) for x in table)
        if isinstance(table, list) and len(table) == 12
        else ((1.0,) * 12)
    )
    mean = profiles.monthly(means, t)
    amp = device.number("tide_amplitude_m", 0.3)
    lag = device.number("tide_lag_h", 2.0) * HOUR_S
    springs = 0.55 + 0.45 * np.cos(2 * np.pi * t / _SPRING_NEAP_S)
    tide = amp * springs * np.cos(2 * np.pi * (t - lag) / _TIDE_PERIOD_S)
    basin = device.number("rain_response_m", 0.3) * env.basin_rain(t)
    # Releases upstream (Hòa Bình, Sơn La) move every gauge together, more in the wet season.
    upstream = (0.06 + 0.1 * (1.0 - winterness(t))) * prng.smooth(
        env.key("province", "upstream"), t, 4 * DAY_S
    )
    level = mean + tide + basin + upstream + 0.005 * white(env, device, "stage", t)
    if env.scenario is not None:
        level = env.scenario.river_level(device, t, level)
    return {"water_level": np.clip(level, -1.0, 7.0)}


_SAMPLERS: Final[dict[str, Callable[[DeviceSpec, FloatArray, Environment], Values]]] = {
    "air_quality": _air_quality,
    "noise": _noise,
    "weather": _weather,
    "river_gauge": _river_gauge,
    "smart_meter": energy.smart_meter,
    "street_light": energy.street_light,
    "solar": energy.solar,
}


def sample(device: DeviceSpec, t: FloatArray, env: Environment) -> Values:
    """Clean values of every metric of ``device`` at UTC epoch seconds ``t``.

    Raises:
        ValueError: the device asks for a metric its kind does not model.
    """
    values = _SAMPLERS[device.kind](device, np.asarray(t, dtype=np.float64), env)
    missing = [m for m in device.metrics if m not in values]
    if missing:
        raise ValueError(f"device {device.id}: kind {device.kind} does not model {missing}")
    return {m: np.asarray(values[m], dtype=np.float64) for m in device.metrics}
