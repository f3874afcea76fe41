"""Analytics: air quality indices, regulatory thresholds, tariffs, alert rules and alerts.

The computational core is pure (no database, no MQTT): :mod:`analytics.aqi` (VN_AQI),
:mod:`analytics.us_aqi` (US EPA AQI), :mod:`analytics.regulations` (QCVN limits, flood alarm
levels, supply quality), :mod:`analytics.tou` (time-of-use bands, counter consumption),
:mod:`analytics.daylight` (sunrise/sunset) and :mod:`analytics.conditions` (each rule kind's test).

The service side (docs/analytics.md): :mod:`analytics.alerts` (the alert lifecycle, shared with
the CLI and the API), :mod:`analytics.rulefile` and :mod:`analytics.rules` (the rules file),
:mod:`analytics.evaluate` (the rule engine), :mod:`analytics.aqi_job`,
:mod:`analytics.energy_job`, :mod:`analytics.notify` and :mod:`analytics.webhooks`
(notifications) and :mod:`analytics.service` (``dothi analytics``).
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
