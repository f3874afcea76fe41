"""Analytics: air quality indices, regulatory thresholds, tariffs; later rules and alerts.

The computational core is pure (no database, no MQTT): :mod:`analytics.aqi` (VN_AQI),
:mod:`analytics.us_aqi` (US EPA AQI), :mod:`analytics.regulations` (QCVN limits, flood alarm
levels, supply quality) and :mod:`analytics.tou` (time-of-use bands, counter consumption).
"""

from analytics.aqi import AqiResult, Category, category, daily_aqi, hourly_aqi, nowcast
from analytics.regulations import alarm_level, find_exceedances, noise_limit, qcvn05_limit
from analytics.tou import band, consumption_from_counter, split_energy
from analytics.us_aqi import us_aqi

__all__ = [
    "AqiResult",
    "Category",
    "alarm_level",
    "band",
    "category",
    "consumption_from_counter",
    "daily_aqi",
    "find_exceedances",
    "hourly_aqi",
    "noise_limit",
    "nowcast",
    "qcvn05_limit",
    "split_energy",
    "us_aqi",
]
