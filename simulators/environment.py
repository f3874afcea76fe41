"""Shared fields of the simulated province: weather and the pollution background per area.

Every field is a pure function of (seed, area, time). To make thousands of devices cheap, a field
is evaluated once per stretch of time on an absolute grid (multiples of :data:`FIELD_STEP_S`) and
devices interpolate between grid points; the grid never depends on where a stretch starts, so
backfill and real time see identical values.

Correlation: each field mixes a province-wide (synoptic) component, a district component and an
area component, so stations in one area move together and neighbouring areas are alike.
Coupling: rain cools and moistens the air, washes particulates out, and (lagged) raises rivers.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Final

import numpy as np

from simulators import prng, profiles
from simulators.profiles import DAY_S, HOUR_S

if TYPE_CHECKING:
    from collections.abc import Callable

    from simulators.city import Area, City
    from simulators.prng import FloatArray
    from simulators.scenarios import Scenario

FIELD_STEP_S: Final = 60
PROVINCE: Final = "nam-dinh"
# Rain memory for wash-out (hours, weights decay by this factor per hour).
_WASHOUT_HOURS: Final = 6
_WASHOUT_DECAY: Final = 0.75
# River response to basin rain: a gamma-shaped kernel peaking after about a day.
_BASIN_HOURS: Final = 120
_RAIN_EXPONENT: Final = 1.6


@lru_cache(maxsize=1)
def _rain_calibration() -> tuple[FloatArray, FloatArray]:
    """Per-month threshold θ and scale c so that rain = c·max(0, z − θ)^1.6, z ~ N(0, 1),
    rains the month's share of hours and its monthly total on average."""
    z = np.linspace(-8.0, 8.0, 32001)
    dz = z[1] - z[0]
    pdf = np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
    cdf = np.cumsum(pdf) * dz
    thetas, logscales = [], []
    for month_mm, wet in zip(profiles.RAIN_MONTHLY_MM, profiles.RAIN_WET_FRACTION, strict=True):
        theta = float(np.interp(1.0 - wet, cdf, z))
        expect = float(np.sum(np.clip(z - theta, 0.0, None) ** _RAIN_EXPONENT * pdf) * dz)
        mean_rate = month_mm / (profiles.YEAR_DAYS / 12 * 24)
        thetas.append(theta)
        logscales.append(np.log(mean_rate / expect))
    return np.array(thetas), np.array(logscales)


def _basin_kernel() -> FloatArray:
    j = np.arange(_BASIN_HOURS, dtype=np.float64)
    k = (j / 24.0) ** 2 * np.exp(-j / 12.0)
    return np.asarray(k / k.sum(), dtype=np.float64)


_KERNEL: Final = _basin_kernel()


def winterness(t: FloatArray) -> FloatArray:
    """1 in mid-winter (January), 0 in mid-summer (July), smooth in between."""
    doy = profiles.day_of_year(t)
    return np.asarray(0.5 + 0.5 * np.cos(2 * np.pi * (doy - 15.0) / profiles.YEAR_DAYS))


class Environment:
    """The province's fields over one stretch of simulated time.

    Args:
        city: the city (areas and their traits).
        seed: the simulation seed.
        scenario: the active scenario, or None.
        t_lo: start of the stretch (UTC epoch seconds).
        t_hi: end of the stretch.
    """

    def __init__(
        self, city: City, seed: int, scenario: Scenario | None, t_lo: float, t_hi: float
    ) -> None:
        self.city = city
        self.seed = seed
        self.scenario = scenario
        g0 = np.floor(t_lo / FIELD_STEP_S) - 1
        g1 = np.ceil(t_hi / FIELD_STEP_S) + 1
        self.grid = np.arange(g0, g1 + 1, dtype=np.float64) * FIELD_STEP_S
        self._memo: dict[tuple[str, str], FloatArray] = {}

    # -- plumbing ----------------------------------------------------------------------------
    def key(self, *parts: object) -> int:
        """A noise key under this simulation's seed."""
        return prng.key(self.seed, *parts)

    def _field(
        self, name: str, area: str, t: FloatArray, fn: Callable[[str, FloatArray], FloatArray]
    ) -> FloatArray:
        if t.size == 0:
            return np.zeros(0)
        lo, hi = float(t.min()), float(t.max())
        if lo >= self.grid[0] and hi <= self.grid[-1]:
            memo = self._memo.get((name, area))
            if memo is None:
                memo = fn(area, self.grid)
                self._memo[(name, area)] = memo
            return np.interp(t, self.grid, memo)
        # Outside the stretch (an older fault episode, a counter reset months ago): the same
        # absolute grid, evaluated only around each cluster of times.
        out = np.empty_like(t)
        order = np.argsort(t)
        ts = t[order]
        for part in np.split(np.arange(ts.size), np.nonzero(np.diff(ts) > DAY_S)[0] + 1):
            chunk = ts[part]
            grid = np.arange(
                np.floor(chunk[0] / FIELD_STEP_S), np.ceil(chunk[-1] / FIELD_STEP_S) + 1
            )
            grid = grid * FIELD_STEP_S
            out[order[part]] = np.interp(chunk, grid, fn(area, grid))
        return out

    def common_noise(self, t: FloatArray, period: float, *parts: object) -> FloatArray:
        """Smooth unit noise shared by many devices (province or area level), computed once."""
        name = "noise/" + "/".join(str(p) for p in parts) + f"/{period:g}"
        return self._field(name, "", t, lambda _, g: prng.smooth(self.key(*parts), g, period))

    def area(self, area_id: str) -> Area:
        """The city file's entry for an area."""
        return self.city.areas[area_id]

    def _noise3(
        self, channel: str, area_id: str, t: FloatArray, periods: tuple[float, ...]
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Province, district and area components of one channel (unit variance each)."""
        district = self.city.district_of(area_id)
        return (
            prng.smooth(self.key("province", channel), t, periods[0]),
            prng.smooth(self.key("district", district, channel), t, periods[1]),
            prng.smooth(self.key("area", area_id, channel), t, periods[2]),
        )

    # -- rain --------------------------------------------------------------------------------
    def _rain_from_latent(self, z: FloatArray, t: FloatArray) -> FloatArray:
        thetas, logscales = _rain_calibration()
        doy = profiles.day_of_year(t)
        theta = profiles.monthly_at_doy(tuple(thetas), doy)
        scale = np.exp(profiles.monthly_at_doy(tuple(logscales), doy))
        # Wet-season afternoons: convective showers, so the threshold dips around 16:00.
        wet = np.clip((profiles.monthly(profiles.RAIN_MONTHLY_MM, t) - 60.0) / 200.0, 0.0, 1.0)
        theta = theta - 0.35 * wet * np.cos(2 * np.pi * (profiles.local_hour(t) - 16.0) / 24.0)
        return np.asarray(scale * np.clip(z - theta, 0.0, None) ** _RAIN_EXPONENT)

    def _rain_grid(self, area_id: str, t: FloatArray) -> FloatArray:
        z = 0.8 * prng.smooth(self.key("province", "rain"), t, 3 * HOUR_S) + 0.6 * prng.smooth(
            self.key("area", area_id, "rain"), t, HOUR_S
        )
        rain = self._rain_from_latent(z, t)
        if self.scenario is not None:
            rain = rain + self.scenario.extra_rain(area_id, t)
        return np.clip(rain, 0.0, 150.0)

    def rain(self, area_id: str, t: FloatArray) -> FloatArray:
        """Rainfall intensity, mm/h."""
        return self._field("rain", area_id, t, self._rain_grid)

    def _hourly(self, t: FloatArray, back_hours: int) -> FloatArray:
        h0 = np.floor(float(t.min()) / HOUR_S) - back_hours
        h1 = np.ceil(float(t.max()) / HOUR_S) + 1
        return np.arange(h0, h1 + 1, dtype=np.float64) * HOUR_S

    def _recent_rain_grid(self, area_id: str, t: FloatArray) -> FloatArray:
        hours = self._hourly(t, _WASHOUT_HOURS)
        r = self._rain_grid(area_id, hours)
        acc = np.zeros_like(r)
        for lag in range(_WASHOUT_HOURS):
            shifted = np.concatenate((np.zeros(lag), r[: r.size - lag])) if lag else r
            acc += shifted * _WASHOUT_DECAY**lag
        return np.interp(t, hours, acc)

    def recent_rain(self, area_id: str, t: FloatArray) -> FloatArray:
        """Rain of the last hours with fading weight, mm (drives wash-out and humidity)."""
        return self._field("recent_rain", area_id, t, self._recent_rain_grid)

    def _basin_grid(self, _: str, t: FloatArray) -> FloatArray:
        hours = self._hourly(t, _BASIN_HOURS)
        z = prng.smooth(self.key("province", "rain"), hours, 3 * HOUR_S)
        # Natural rain only: a scenario's flood brings its own river curve.
        r = self._rain_from_latent(z, hours)
        forcing = np.convolve(r, _KERNEL)[: r.size]
        return np.interp(t, hours, forcing)

    def basin_rain(self, t: FloatArray) -> FloatArray:
        """Province rain smoothed and delayed as a river basin feels it, mm/h."""
        return self._field("basin", PROVINCE, t, self._basin_grid)

    # -- air temperature, humidity, pressure -------------------------------------------------
    def _synoptic(self, t: FloatArray) -> FloatArray:
        # Cold surges make winter weather swing more than summer weather.
        spread = 1.4 + 1.0 * winterness(t)
        return np.asarray(prng.smooth(self.key("province", "synoptic"), t, 36 * HOUR_S) * spread)

    def _temperature_grid(self, area_id: str, t: FloatArray) -> FloatArray:
        area = self.area(area_id)
        mean = profiles.monthly(profiles.TEMP_MONTHLY, t)
        amp = profiles.monthly(profiles.TEMP_RANGE_MONTHLY, t) * (0.8 if area.coastal else 1.0)
        shape = profiles.temperature_day_shape(profiles.local_hour(t))
        # Urban heat island: warmer nights in built-up areas.
        heat_island = 0.8 * max(area.urban - 0.5, 0.0) * (shape < 0)
        local = 0.35 * prng.smooth(self.key("area", area_id, "temp"), t, 3 * HOUR_S)
        cooling = np.minimum(3.5, 0.9 * np.sqrt(self.recent_rain(area_id, t)))
        temp = mean + amp / 2 * shape + self._synoptic(t) + heat_island + local - cooling
        return np.clip(temp, 2.0, 41.0)

    def temperature(self, area_id: str, t: FloatArray) -> FloatArray:
        """Air temperature, °C."""
        return self._field("temperature", area_id, t, self._temperature_grid)

    def _humidity_grid(self, area_id: str, t: FloatArray) -> FloatArray:
        mean = profiles.monthly(profiles.RH_MONTHLY, t)
        amp = profiles.monthly(profiles.TEMP_RANGE_MONTHLY, t)
        shape = profiles.temperature_day_shape(profiles.local_hour(t))
        local = 3.5 * prng.smooth(self.key("area", area_id, "rh"), t, 6 * HOUR_S)
        wet = np.minimum(14.0, 5.0 * np.sqrt(self.rain(area_id, t)))
        # Afternoons are drier; warm anomalies are drier too.
        rh = mean - 1.6 * amp * shape - 1.5 * self._synoptic(t) + local + wet
        return np.clip(rh, 35.0, 99.5)

    def humidity(self, area_id: str, t: FloatArray) -> FloatArray:
        """Relative humidity, %RH."""
        return self._field("humidity", area_id, t, self._humidity_grid)

    def _pressure_grid(self, area_id: str, t: FloatArray) -> FloatArray:
        mean = profiles.monthly(profiles.PRESSURE_MONTHLY, t)
        hour = profiles.local_hour(t)
        tide = 1.2 * np.cos(2 * np.pi * (hour - 10.0) / 12.0)  # peaks 10:00 and 22:00
        slow = 2.0 * prng.smooth(self.key("province", "pressure"), t, 72 * HOUR_S)
        local = 0.25 * prng.smooth(self.key("area", area_id, "pressure"), t, 6 * HOUR_S)
        p = mean + tide - 1.3 * self._synoptic(t) + slow + local
        if self.scenario is not None:
            p = p - self.scenario.pressure_dip(t)
        return np.clip(p, 960.0, 1040.0)

    def pressure(self, area_id: str, t: FloatArray) -> FloatArray:
        """Sea-level pressure, hPa."""
        return self._field("pressure", area_id, t, self._pressure_grid)

    # -- air pollution background ------------------------------------------------------------
    def _pm25_grid(self, area_id: str, t: FloatArray) -> FloatArray:
        area = self.area(area_id)
        base = profiles.monthly(profiles.PM25_MONTHLY, t) * (0.35 + 0.65 * area.urban)
        if area.coastal:
            base = base * 0.8
        # Night-time radiation inversions (Oct–Feb) deepen the daily cycle in winter.
        diurnal = 1.0 + (profiles.hourly(profiles.PM25_HOURLY, profiles.local_hour(t)) - 1.0) * (
            1.0 + 0.5 * winterness(t)
        )
        p, d, a = self._noise3("pm", area_id, t, (30 * HOUR_S, 8 * HOUR_S, 2 * HOUR_S))
        sd2 = 0.38**2 + 0.18**2 + 0.12**2
        spread = np.exp(0.38 * p + 0.18 * d + 0.12 * a - sd2 / 2)
        washout = 1.0 / (1.0 + 0.12 * self.recent_rain(area_id, t))
        pm = base * diurnal * spread * washout
        if self.scenario is not None:
            pm = self.scenario.pollution_pm25(self, area_id, t, pm)
        return np.clip(pm, 2.0, 480.0)

    def pm25(self, area_id: str, t: FloatArray) -> FloatArray:
        """Background PM2.5 of an area, µg/m³."""
        return self._field("pm25", area_id, t, self._pm25_grid)

    def _pm_ratio_grid(self, area_id: str, t: FloatArray) -> FloatArray:
        area = self.area(area_id)
        ratio = 0.6 + 0.05 * winterness(t) - (0.08 if area.coastal else 0.0)
        ratio = ratio + 0.05 * prng.smooth(self.key("area", area_id, "pmratio"), t, 6 * HOUR_S)
        if self.scenario is not None:
            ratio = ratio + 0.1 * self.scenario.pollution_weight(t)
        return np.clip(ratio, 0.42, 0.82)

    def pm_ratio(self, area_id: str, t: FloatArray) -> FloatArray:
        """PM2.5 / PM10 of an area (fine share; sea salt lowers it, inversions raise it)."""
        return self._field("pm_ratio", area_id, t, self._pm_ratio_grid)

    def _gas_spread(self, channel: str, area_id: str, t: FloatArray) -> FloatArray:
        p, d, a = self._noise3(channel, area_id, t, (24 * HOUR_S, 6 * HOUR_S, 2 * HOUR_S))
        sd2 = 0.25**2 + 0.1**2 + 0.12**2
        return np.asarray(np.exp(0.25 * p + 0.1 * d + 0.12 * a - sd2 / 2))

    def _episode(self, t: FloatArray) -> FloatArray:
        return self.scenario.pollution_weight(t) if self.scenario else np.zeros_like(t)

    def _no2_grid(self, area_id: str, t: FloatArray) -> FloatArray:
        area = self.area(area_id)
        hour = profiles.local_hour(t)
        base = 30.0 * (0.2 + 0.8 * area.urban**1.3) * profiles.monthly(profiles.NO2_MONTHLY, t)
        no2 = (
            base * profiles.hourly(profiles.NO2_HOURLY, hour) * self._gas_spread("no2", area_id, t)
        )
        if area.industrial:
            no2 = no2 + 12.0 * (0.6 + 0.4 * np.cos(2 * np.pi * (hour - 13.0) / 24.0))
        no2 = no2 / (1.0 + 0.03 * self.recent_rain(area_id, t))
        return np.asarray(np.clip(no2 * (1.0 + 0.5 * self._episode(t)), 1.0, 900.0))

    def no2(self, area_id: str, t: FloatArray) -> FloatArray:
        """Background NO2, µg/m³ (traffic rush hours)."""
        return self._field("no2", area_id, t, self._no2_grid)

    def _o3_grid(self, area_id: str, t: FloatArray) -> FloatArray:
        area = self.area(area_id)
        hour = profiles.local_hour(t)
        o3 = profiles.o3_profile(hour) * profiles.monthly(profiles.O3_MONTHLY, t)
        # NO titration keeps ozone lower in the city centre than in the countryside.
        o3 = o3 * (1.25 - 0.3 * area.urban) * self._gas_spread("o3", area_id, t)
        daylight = np.clip(np.sin(np.pi * (hour - 6.0) / 12.0), 0.0, 1.0)
        cloud = 0.5 * np.minimum(1.0, self.recent_rain(area_id, t) / 6.0) * daylight
        return np.asarray(np.clip(o3 * (1.0 - cloud) * (1.0 - 0.35 * self._episode(t)), 2.0, 380.0))

    def o3(self, area_id: str, t: FloatArray) -> FloatArray:
        """Background O3, µg/m³ (QĐ 1459 day profile, afternoon peak)."""
        return self._field("o3", area_id, t, self._o3_grid)

    def _co_grid(self, area_id: str, t: FloatArray) -> FloatArray:
        area = self.area(area_id)
        hour = profiles.local_hour(t)
        season = 0.6 + 0.4 * profiles.monthly(profiles.PM25_MONTHLY, t) / 35.0
        shape = 0.5 * profiles.hourly(profiles.PM25_HOURLY, hour) + 0.5 * profiles.hourly(
            profiles.NO2_HOURLY, hour
        )
        co = 620.0 * (0.45 + 0.55 * area.urban) * season * shape
        co = co * self._gas_spread("co", area_id, t) * (1.0 + 0.7 * self._episode(t))
        return np.clip(co, 150.0, 12000.0)

    def co(self, area_id: str, t: FloatArray) -> FloatArray:
        """Background CO, µg/m³."""
        return self._field("co", area_id, t, self._co_grid)

    def _so2_grid(self, area_id: str, t: FloatArray) -> FloatArray:
        area = self.area(area_id)
        hour = profiles.local_hour(t)
        so2 = np.full(t.shape, 5.0 + 9.0 * area.urban)
        if area.industrial:
            so2 = so2 + 22.0 * (0.7 + 0.3 * np.cos(2 * np.pi * (hour - 13.0) / 24.0))
        spread = np.exp(
            0.35 * prng.smooth(self.key("area", area_id, "so2"), t, 4 * HOUR_S)
            + 0.2 * prng.smooth(self.key("province", "so2"), t, 24 * HOUR_S)
            - (0.35**2 + 0.2**2) / 2
        )
        return np.asarray(np.clip(so2 * spread, 0.5, 300.0))

    def so2(self, area_id: str, t: FloatArray) -> FloatArray:
        """Background SO2, µg/m³ (higher downwind of the Hòa Xá industrial park)."""
        return self._field("so2", area_id, t, self._so2_grid)

    # -- activity ----------------------------------------------------------------------------
    def _traffic_grid(self, area_id: str, t: FloatArray) -> FloatArray:
        shape = profiles.hourly(profiles.NO2_HOURLY, profiles.local_hour(t))
        lo, hi = min(profiles.NO2_HOURLY), max(profiles.NO2_HOURLY)
        busy = (shape - lo) / (hi - lo)
        jitter = 0.06 * prng.smooth(self.key("area", area_id, "traffic"), t, HOUR_S)
        return np.clip(busy + jitter, 0.0, 1.0)

    def traffic(self, area_id: str, t: FloatArray) -> FloatArray:
        """Road activity 0 (small hours) … 1 (rush hour) in an area."""
        return self._field("traffic", area_id, t, self._traffic_grid)


def daily_clearness(seed: int, area_id: str, days: FloatArray) -> FloatArray:
    """Share of clear-sky sunshine per local day: cloudy on the days the province rains."""
    noon = profiles.day_start(days) + 12 * HOUR_S
    z = prng.smooth(prng.key(seed, "province", "rain"), noon, 3 * HOUR_S)
    local = 0.08 * prng.normal(prng.key(seed, "area", area_id, "clear"), days.astype(np.int64))
    return np.asarray(np.clip(0.88 - 0.22 * z + local, 0.12, 1.0))


__all__ = [
    "DAY_S",
    "FIELD_STEP_S",
    "PROVINCE",
    "Environment",
    "daily_clearness",
    "winterness",
]
