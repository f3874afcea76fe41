"""Response models: every field the API returns is listed here, nothing else leaks (OWASP API3).

Routes build these explicitly from store rows; no ORM object or dataclass is serialised as is.
"""

from __future__ import annotations

from datetime import datetime  # noqa: TC003 (pydantic resolves annotations at runtime)
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldError(_Model):
    """One offending input."""

    location: str = Field(description="query, path, header or body", examples=["query"])
    field: str = Field(description="parameter name", examples=["start"])
    detail: str = Field(examples=["Input should be a valid datetime"])


class Problem(_Model):
    """RFC 9457 problem details (media type application/problem+json)."""

    type: str = Field(examples=["urn:dothi:problem:validation"])
    title: str = Field(examples=["Invalid request"])
    status: int = Field(examples=[422])
    detail: str = Field(examples=["start: Input should be a valid datetime"])
    instance: str | None = Field(default=None, examples=["/api/v1/aggregates"])
    errors: list[FieldError] | None = None


class Health(_Model):
    """Liveness or readiness."""

    status: str = Field(examples=["ok"])
    checks: dict[str, str] = Field(default_factory=dict, examples=[{"database": "ok"}])


class Area(_Model):
    """An administrative area; ``children`` nest the tree."""

    id: str = Field(examples=["nam_dinh_city"])
    parent_id: str | None = Field(examples=["nam_dinh"])
    level: str = Field(examples=["city"])
    name: str = Field(examples=["Thành phố Nam Định"])
    name_en: str | None = Field(examples=["Nam Dinh City"])
    lat: float | None = Field(examples=[20.42])
    lon: float | None = Field(examples=[106.17])
    children: list[Area] = Field(default_factory=list)


class Device(_Model):
    """A device (its registry metadata is not exposed)."""

    id: str = Field(examples=["aq-nd-001"])
    kind: str = Field(examples=["air_quality"])
    name: str | None = Field(examples=["Trạm Quảng trường 3/2"])
    area_id: str | None = Field(examples=["nam_dinh_city"])
    lat: float | None = Field(examples=[20.4337])
    lon: float | None = Field(examples=[106.1772])
    public: bool
    created_at: datetime
    last_seen: datetime | None


class DevicePage(_Model):
    """A page of devices; pass ``next_cursor`` as ``cursor`` for the next one."""

    items: list[Device]
    next_cursor: str | None = None


class MetricInfo(_Model):
    """A canonical metric."""

    name: str = Field(examples=["pm25"])
    unit: str = Field(examples=["µg/m³"])
    description: str = Field(examples=["Fine particulate matter PM2.5"])
    counter: bool = Field(description="monotonic counter (consumption is its increase)")


class Latest(_Model):
    """The newest reading of one (device, metric)."""

    device_id: str = Field(examples=["aq-nd-001"])
    metric: str = Field(examples=["pm25"])
    ts: datetime
    value: float = Field(examples=[42.5])
    unit: str = Field(examples=["µg/m³"])
    quality: int = Field(description="IOOS QARTOD flag: 1 pass, 3 suspect", examples=[1])


class Reading(_Model):
    """One stored reading."""

    metric: str = Field(examples=["pm25"])
    ts: datetime
    value: float = Field(examples=[42.5])
    quality: int = Field(examples=[1])
    received_at: datetime


class ReadingPage(_Model):
    """A page of a device's readings, ordered by (ts, metric)."""

    device_id: str
    items: list[Reading]
    next_cursor: str | None = Field(
        default=None, description="pass as `cursor` for the next page; absent on the last"
    )


class Point(_Model):
    """One bucket; only the requested functions are present."""

    bucket: datetime
    count: int = Field(description="readings in the bucket", examples=[60])
    avg: float | None = None
    min: float | None = None
    max: float | None = None
    sum: float | None = None
    first: float | None = None
    last: float | None = None


class Series(_Model):
    """The buckets of one (device, metric); ``device_id`` is null when devices were combined."""

    device_id: str | None = Field(examples=["aq-nd-001"])
    metric: str = Field(examples=["pm25"])
    unit: str = Field(examples=["µg/m³"])
    source: list[str] = Field(
        description="where the buckets came from: rollup tiers (1m, 1h, 1d, 1d_local) or raw",
        examples=[["1h", "raw"]],
    )
    points: list[Point]


class Aggregates(_Model):
    """Aggregated readings."""

    start: datetime
    end: datetime
    interval_s: int = Field(examples=[3600])
    align: str = Field(examples=["utc"])
    funcs: list[str] = Field(examples=[["avg", "max"]])
    series: list[Series]


class AqiCategory(_Model):
    """A VN_AQI band (QĐ 1459/QĐ-TCMT Bảng 1, 4 and 5)."""

    level: int = Field(examples=[2])
    key: str = Field(examples=["moderate"])
    name_vi: str = Field(examples=["Trung bình"])
    name_en: str = Field(examples=["Moderate"])
    colour_hex: str = Field(examples=["#FFFF00"])
    effect_vi: str | None = None
    effect_en: str | None = None
    advice_vi: str | None = Field(default=None, description="for the general public")
    advice_en: str | None = None
    advice_sensitive_vi: str | None = None
    advice_sensitive_en: str | None = None


class Aqi(_Model):
    """A VN_AQI value."""

    value: int = Field(examples=[72])
    dominant: str = Field(examples=["pm25"])
    category: AqiCategory
    sub_indices: dict[str, int] = Field(examples=[{"pm25": 72, "no2": 31}])
    inputs: dict[str, float] = Field(
        description="concentrations in µg/m³ (NowCast for hourly PM)", examples=[{"pm25": 30.1}]
    )


class StationAqi(_Model):
    """The current hourly VN_AQI of one station (null when it has too little PM data)."""

    device_id: str
    name: str | None
    area_id: str | None
    lat: float | None
    lon: float | None
    hour: datetime = Field(description="start of the hour the AQI is for (UTC)")
    aqi: Aqi | None


class AreaAqi(_Model):
    """An area's current AQI: the worst of its stations' (max), and each station's."""

    area_id: str
    hour: datetime
    aqi: Aqi | None
    worst_station: str | None
    stations: list[StationAqi]


class AqiPoint(_Model):
    """One hour's or day's AQI."""

    period_start: datetime = Field(description="hour start (UTC), or local midnight of the day")
    value: int
    dominant: str = Field(examples=["pm25"])
    category: str = Field(description="category key", examples=["moderate"])
    colour_hex: str = Field(examples=["#FFFF00"])
    station_id: str = Field(description="the station the value is from (areas: the worst)")


class AqiHistory(_Model):
    """AQI history of a station or an area."""

    id: str = Field(description="station (device) id or area id")
    resolution: str = Field(examples=["hour"])
    points: list[AqiPoint]


class EnergyPoint(_Model):
    """Consumption in one bucket."""

    bucket: datetime
    kwh: float
    devices: int | None = Field(default=None, description="meters counted (area totals)")


class Energy(_Model):
    """Energy consumption of a meter or an area."""

    id: str
    interval_s: int
    align: str
    source: str | None = Field(default=None, description="rollup tier or raw (meters)")
    points: list[EnergyPoint]


class DeadLetter(_Model):
    """Input that could not be stored as it was."""

    id: int
    received_at: datetime
    topic: str
    reason: str
    detail: str
    device_id: str | None
    replayed_at: datetime | None
    payload_base64: str
    payload_bytes: int


class DeadLetterPage(_Model):
    """Newest first; pass ``next_before_id`` as ``before_id`` for older ones."""

    items: list[DeadLetter]
    next_before_id: int | None = None


class AuditRecord(_Model):
    """One audit log entry."""

    id: int
    at: datetime
    event: str
    key_id: str | None
    client: str | None
    method: str | None
    path: str | None
    status: int | None
    target: str | None
    detail: dict[str, Any]


class AlertOut(_Model):
    """An alert and its current state."""

    id: int
    rule_id: str = Field(examples=["pm25_hourly_high"])
    kind: str = Field(examples=["threshold"])
    device_id: str
    metric: str = Field(description="the metric watched; * for device-level rules")
    area_id: str | None
    severity: str = Field(examples=["warning"])
    state: str = Field(examples=["open"])
    flapping: bool
    title: str
    message: str
    value: float | None
    threshold: float | None
    details: dict[str, Any]
    started_at: datetime
    opened_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None


class AlertPage(_Model):
    """Newest first; pass ``next_before_id`` as ``before_id`` for older ones."""

    items: list[AlertOut]
    next_before_id: int | None = None


class AlertEventOut(_Model):
    """One entry of an alert's history."""

    id: int
    alert_id: int
    at: datetime
    event: str = Field(examples=["acknowledged"])
    actor: str = Field(examples=["key:3f2a9c01b7de"])
    from_state: str | None
    to_state: str | None
    severity: str
    comment: str | None
    details: dict[str, Any]


class AlertAction(_Model):
    """Body of acknowledge and resolve."""

    comment: str | None = Field(default=None, max_length=4000, examples=["crew dispatched"])


class AlertComment(_Model):
    """Body of a comment."""

    text: str = Field(min_length=1, max_length=4000, examples=["sensor cleaned, watching"])
