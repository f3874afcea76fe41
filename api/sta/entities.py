"""dothi's data as SensorThings entities: properties, keys, ids and relations.

Every entity set is a view in :mod:`store.sta`; this module says which STA property comes from
which view column, how a row's key becomes its ``@iot.id`` (and back), and how entities relate.
Only the column names declared here ever reach SQL text, so identifiers in compiled queries come
from this whitelist and nothing else.

Ids are strings, stable and derived from dothi's own keys (see docs/sensorthings.md):

=====================  ===========================================  ===========================
entity                 ``@iot.id``                                  key columns
=====================  ===========================================  ===========================
Thing                  device id (``aq-nd-001``)                    id
Location               device id                                    id
HistoricalLocation     device id                                    id
FeatureOfInterest      device id                                    id
Datastream             ``<device id>:<metric>``                     device_id, metric
Sensor                 device kind (``air_quality``)                id
ObservedProperty       canonical metric (``pm25``)                  id
Observation            ``<device id>:<metric>:<µs since 1970>``     device_id, metric, ts
=====================  ===========================================  ===========================
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from types import MappingProxyType
from typing import Any, Final

Row = Mapping[str, Any]
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class PType(Enum):
    """Types of values in compiled expressions."""

    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    DATE = "date"
    TIME = "time"
    DURATION = "duration"
    JSON = "json"
    GEOMETRY = "geometry"
    INTERVAL = "time interval"
    OBJECT = "object"
    NULL = "null"


def iso(value: datetime | None) -> str | None:
    """An ISO 8601 UTC timestamp with ``Z`` (microseconds only when there are some)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)  # the database hands out UTC: this is the rare path
    return value.isoformat()[:-6] + "Z"


def point(lon: float | None, lat: float | None) -> dict[str, Any] | None:
    """A GeoJSON Point, or None without coordinates."""
    if lon is None or lat is None:
        return None
    return {"type": "Point", "coordinates": [lon, lat]}


@dataclass(frozen=True, slots=True)
class Prop:
    """One STA property of an entity.

    Attributes:
        name: the STA name (``phenomenonTime``).
        type: its type in expressions.
        columns: view columns it is rendered from (geometry: lon, lat; interval: start, end).
        render: the JSON value from a row holding those columns.
        sub: for objects (``unitOfMeasurement``): member name -> view column.
        not_null: the column is never NULL (keyset paging may order on it).
        value_text: ``$value`` is JSON text (objects, geometries) rather than plain text.
    """

    name: str
    type: PType
    columns: tuple[str, ...]
    render: Callable[[Row], Any]
    sub: Mapping[str, str] = field(default_factory=dict)
    not_null: bool = True
    value_text: bool = False


@dataclass(frozen=True, slots=True)
class Relation:
    """A navigation property.

    Attributes:
        name: ``Datastreams``, ``Thing`` …
        target: the related entity's singular name.
        many: a collection (``Datastreams``) or one entity (``Thing``).
        pairs: (source view column, target view column) pairs that must be equal. For a to-one
            relation the target columns are the target's key, in key order.
    """

    name: str
    target: str
    many: bool
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Entity:
    """One entity type.

    Attributes:
        name: singular name (``Thing``).
        plural: entity set name (``Things``).
        key: view columns of the key, in id order.
        columns: every view column and its SQL type (the identifier whitelist).
        props: STA properties in output order.
        relations: navigation properties in output order.
        default_order: (view column, descending) used when there is no ``$orderby``.
        encode: key values -> ``@iot.id``.
        decode: ``@iot.id`` -> key values, or None when it cannot be an id of this entity.
        id_sql: SQL of the id from SQL expressions of the key columns (for ``$filter``).
        device_key: index of the key value that is a device id (for the audit log), or None.
    """

    name: str
    plural: str
    key: tuple[str, ...]
    columns: Mapping[str, str]
    props: Mapping[str, Prop]
    relations: Mapping[str, Relation]
    default_order: tuple[tuple[str, bool], ...]
    encode: Callable[[tuple[Any, ...]], str]
    decode: Callable[[str], tuple[Any, ...] | None]
    id_sql: Callable[[list[str]], str]
    device_key: int | None = 0

    def key_of(self, row: Row) -> tuple[Any, ...]:
        """The key values of a row."""
        return tuple(row[c] for c in self.key)

    def id_of(self, row: Row) -> str:
        """The ``@iot.id`` of a row."""
        return self.encode(self.key_of(row))


# -- ids ---------------------------------------------------------------------------------------


def _single(values: tuple[Any, ...]) -> str:
    return str(values[0])


def _decode_single(text: str) -> tuple[Any, ...] | None:
    return (text,) if text else None


def _single_sql(cols: list[str]) -> str:
    return cols[0]


def _ds_encode(values: tuple[Any, ...]) -> str:
    return f"{values[0]}:{values[1]}"


def _ds_decode(text: str) -> tuple[Any, ...] | None:
    # Metric names never contain ':', device ids may: split at the last one.
    device, sep, metric = text.rpartition(":")
    return (device, metric) if sep and device and metric else None


def _ds_sql(cols: list[str]) -> str:
    return f"({cols[0]} || ':' || {cols[1]})"


_MICROSECOND: Final = timedelta(microseconds=1)


def _micros(ts: datetime) -> int:
    return (ts - EPOCH) // _MICROSECOND


def _obs_encode(values: tuple[Any, ...]) -> str:
    return f"{values[0]}:{values[1]}:{_micros(values[2])}"


MIN_MICROS: Final = _micros(datetime(1, 1, 2, tzinfo=UTC))
MAX_MICROS: Final = _micros(datetime(9999, 12, 30, tzinfo=UTC))


def _obs_decode(text: str) -> tuple[Any, ...] | None:
    head, sep, micros = text.rpartition(":")
    ds = _ds_decode(head) if sep else None
    if ds is None or not micros.lstrip("-").isdigit() or len(micros) > 20:
        return None
    value = int(micros)
    if not MIN_MICROS <= value <= MAX_MICROS:
        return None
    return (*ds, EPOCH + timedelta(microseconds=value))


def _obs_sql(cols: list[str]) -> str:
    return (
        f"({cols[0]} || ':' || {cols[1]} || ':' ||"
        f" ((extract(epoch FROM {cols[2]}) * 1000000)::bigint)::text)"
    )


# -- properties --------------------------------------------------------------------------------


def _text(name: str, column: str, *, not_null: bool = True) -> Prop:
    return Prop(name, PType.STRING, (column,), lambda r: r[column], not_null=not_null)


def _json(name: str, column: str) -> Prop:
    return Prop(name, PType.JSON, (column,), lambda r: r[column], value_text=True)


def _geometry(name: str) -> Prop:
    return Prop(
        name,
        PType.GEOMETRY,
        ("lon", "lat"),
        lambda r: point(r["lon"], r["lat"]),
        not_null=False,
        value_text=True,
    )


@functools.cache
def _iso_of(column: str) -> Callable[[Row], str | None]:
    # One function per column: properties rendered from the same column by the same function
    # are computed once per row (serialize.Renderer), e.g. phenomenonTime and resultTime.
    def render(r: Row) -> str | None:
        return iso(r[column])

    return render


def _time(name: str, column: str) -> Prop:
    return Prop(name, PType.DATETIME, (column,), _iso_of(column))


def _interval(r: Row) -> str | None:
    start, end = r["phenomenon_start"], r["phenomenon_end"]
    if start is None or end is None:
        return None
    return f"{iso(start)}/{iso(end)}"


def _unit(r: Row) -> dict[str, str]:
    return {"name": r["unit_name"], "symbol": r["unit_symbol"], "definition": r["unit_definition"]}


def _parameters(r: Row) -> dict[str, Any]:
    return {"received_at": iso(r["received_at"])}


def _props(*props: Prop) -> Mapping[str, Prop]:
    return MappingProxyType({p.name: p for p in props})


def _rels(*rels: Relation) -> Mapping[str, Relation]:
    return MappingProxyType({r.name: r for r in rels})


_TEXT, _TS, _FLOAT, _JSONB = "text", "timestamptz", "float8", "jsonb"

_DEVICE_TEXT = {"id": _TEXT, "name": _TEXT, "description": _TEXT, "properties": _JSONB}
_PLACE = {**_DEVICE_TEXT, "encoding_type": _TEXT, "lon": _FLOAT, "lat": _FLOAT}

THING = Entity(
    name="Thing",
    plural="Things",
    key=("id",),
    columns=MappingProxyType(_DEVICE_TEXT),
    props=_props(
        _text("name", "name"),
        _text("description", "description"),
        _json("properties", "properties"),
    ),
    relations=_rels(
        Relation("Locations", "Location", many=True, pairs=(("id", "id"),)),
        Relation("HistoricalLocations", "HistoricalLocation", many=True, pairs=(("id", "id"),)),
        Relation("Datastreams", "Datastream", many=True, pairs=(("id", "device_id"),)),
    ),
    default_order=(("id", False),),
    encode=_single,
    decode=_decode_single,
    id_sql=_single_sql,
)

LOCATION = Entity(
    name="Location",
    plural="Locations",
    key=("id",),
    columns=MappingProxyType(_PLACE),
    props=_props(
        _text("name", "name"),
        _text("description", "description"),
        _text("encodingType", "encoding_type"),
        _geometry("location"),
        _json("properties", "properties"),
    ),
    relations=_rels(
        Relation("Things", "Thing", many=True, pairs=(("id", "id"),)),
        Relation("HistoricalLocations", "HistoricalLocation", many=True, pairs=(("id", "id"),)),
    ),
    default_order=(("id", False),),
    encode=_single,
    decode=_decode_single,
    id_sql=_single_sql,
)

HISTORICAL_LOCATION = Entity(
    name="HistoricalLocation",
    plural="HistoricalLocations",
    key=("id",),
    columns=MappingProxyType({"id": _TEXT, "time": _TS}),
    props=_props(_time("time", "time")),
    relations=_rels(
        Relation("Thing", "Thing", many=False, pairs=(("id", "id"),)),
        Relation("Locations", "Location", many=True, pairs=(("id", "id"),)),
    ),
    default_order=(("id", False),),
    encode=_single,
    decode=_decode_single,
    id_sql=_single_sql,
)

FEATURE_OF_INTEREST = Entity(
    name="FeatureOfInterest",
    plural="FeaturesOfInterest",
    key=("id",),
    columns=MappingProxyType(_PLACE),
    props=_props(
        _text("name", "name"),
        _text("description", "description"),
        _text("encodingType", "encoding_type"),
        _geometry("feature"),
        _json("properties", "properties"),
    ),
    relations=_rels(
        Relation("Observations", "Observation", many=True, pairs=(("id", "device_id"),)),
    ),
    default_order=(("id", False),),
    encode=_single,
    decode=_decode_single,
    id_sql=_single_sql,
)

DATASTREAM = Entity(
    name="Datastream",
    plural="Datastreams",
    key=("device_id", "metric"),
    columns=MappingProxyType(
        {
            "device_id": _TEXT,
            "metric": _TEXT,
            "kind": _TEXT,
            "name": _TEXT,
            "description": _TEXT,
            "observation_type": _TEXT,
            "unit_name": _TEXT,
            "unit_symbol": _TEXT,
            "unit_definition": _TEXT,
            "lon": _FLOAT,
            "lat": _FLOAT,
            "phenomenon_start": _TS,
            "phenomenon_end": _TS,
            "properties": _JSONB,
        }
    ),
    props=_props(
        _text("name", "name"),
        _text("description", "description"),
        Prop(
            "unitOfMeasurement",
            PType.OBJECT,
            ("unit_name", "unit_symbol", "unit_definition"),
            _unit,
            sub=MappingProxyType(
                {"name": "unit_name", "symbol": "unit_symbol", "definition": "unit_definition"}
            ),
            value_text=True,
        ),
        _text("observationType", "observation_type"),
        Prop(
            "observedArea",
            PType.GEOMETRY,
            ("lon", "lat"),
            lambda r: point(r["lon"], r["lat"]),
            not_null=False,
            value_text=True,
        ),
        Prop(
            "phenomenonTime",
            PType.INTERVAL,
            ("phenomenon_start", "phenomenon_end"),
            _interval,
            not_null=False,
        ),
        _json("properties", "properties"),
    ),
    relations=_rels(
        Relation("Thing", "Thing", many=False, pairs=(("device_id", "id"),)),
        Relation("Sensor", "Sensor", many=False, pairs=(("kind", "id"),)),
        Relation("ObservedProperty", "ObservedProperty", many=False, pairs=(("metric", "id"),)),
        Relation(
            "Observations",
            "Observation",
            many=True,
            pairs=(("device_id", "device_id"), ("metric", "metric")),
        ),
    ),
    default_order=(("device_id", False), ("metric", False)),
    encode=_ds_encode,
    decode=_ds_decode,
    id_sql=_ds_sql,
)

SENSOR = Entity(
    name="Sensor",
    plural="Sensors",
    key=("id",),
    columns=MappingProxyType(
        {**_DEVICE_TEXT, "encoding_type": _TEXT, "metadata": _TEXT, "properties": _JSONB}
    ),
    props=_props(
        _text("name", "name"),
        _text("description", "description"),
        _text("encodingType", "encoding_type"),
        _text("metadata", "metadata"),
        _json("properties", "properties"),
    ),
    relations=_rels(
        Relation("Datastreams", "Datastream", many=True, pairs=(("id", "kind"),)),
    ),
    default_order=(("id", False),),
    encode=_single,
    decode=_decode_single,
    id_sql=_single_sql,
    device_key=None,
)

OBSERVED_PROPERTY = Entity(
    name="ObservedProperty",
    plural="ObservedProperties",
    key=("id",),
    columns=MappingProxyType({**_DEVICE_TEXT, "definition": _TEXT}),
    props=_props(
        _text("name", "name"),
        _text("definition", "definition"),
        _text("description", "description"),
        _json("properties", "properties"),
    ),
    relations=_rels(
        Relation("Datastreams", "Datastream", many=True, pairs=(("id", "metric"),)),
    ),
    default_order=(("id", False),),
    encode=_single,
    decode=_decode_single,
    id_sql=_single_sql,
    device_key=None,
)

OBSERVATION = Entity(
    name="Observation",
    plural="Observations",
    key=("device_id", "metric", "ts"),
    columns=MappingProxyType(
        {
            "device_id": _TEXT,
            "metric": _TEXT,
            "ts": _TS,
            "value": _FLOAT,
            "quality": _TEXT,
            "received_at": _TS,
        }
    ),
    props=_props(
        _time("phenomenonTime", "ts"),
        _time("resultTime", "ts"),
        Prop("result", PType.NUMBER, ("value",), lambda r: r["value"]),
        _text("resultQuality", "quality"),
        Prop(
            "parameters",
            PType.OBJECT,
            ("received_at",),
            _parameters,
            sub=MappingProxyType({"received_at": "received_at"}),
            value_text=True,
        ),
    ),
    relations=_rels(
        Relation(
            "Datastream",
            "Datastream",
            many=False,
            pairs=(("device_id", "device_id"), ("metric", "metric")),
        ),
        Relation(
            "FeatureOfInterest", "FeatureOfInterest", many=False, pairs=(("device_id", "id"),)
        ),
    ),
    # Time order is what clients of a series want, and the index serves it.
    default_order=(("ts", False),),
    encode=_obs_encode,
    decode=_obs_decode,
    id_sql=_obs_sql,
)

ENTITIES: Final[Mapping[str, Entity]] = MappingProxyType(
    {
        e.name: e
        for e in (
            THING,
            LOCATION,
            HISTORICAL_LOCATION,
            DATASTREAM,
            SENSOR,
            OBSERVED_PROPERTY,
            OBSERVATION,
            FEATURE_OF_INTEREST,
        )
    }
)
"""Entity types by singular name, in the order the service root lists them."""

BY_PLURAL: Final[Mapping[str, Entity]] = MappingProxyType({e.plural: e for e in ENTITIES.values()})
"""Entity types by entity set name (``Things``)."""

ID_NAMES: Final = frozenset({"@iot.id", "id"})
SELF_LINK_NAMES: Final = frozenset({"@iot.selfLink", "selfLink"})
