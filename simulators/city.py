"""The simulated city: devices placed in Nam Định's areas, read from an editable TOML file.

The shipped file is ``simulators/data/nam_dinh_city.toml`` (format in docs/simulators.md). It lists
stations one by one and *fleets* of alike devices per area; :func:`load_city` expands the fleets
and, when asked for more devices than the file holds, replicates fleet templates across the leaf
areas. Everything is deterministic: the same file, device count and seed give the same city.
Device ids never depend on the seed; the seed only scatters generated devices around their area
and draws their per-device parameters (household size, lamp wattage, panel capacity).
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from core.errors import DothiError
from core.metrics import METRICS
from simulators import prng
from simulators.faults import FAULTS
from simulators.payloads import TASMOTA_METRICS

if TYPE_CHECKING:
    from collections.abc import Mapping

KINDS: Final = (
    "air_quality",
    "noise",
    "weather",
    "river_gauge",
    "smart_meter",
    "street_light",
    "solar",
)
FORMATS: Final = ("native", "senml", "chirpstack", "tts", "tasmota")
# What each kind of device can measure (simulators.signals models exactly these).
KIND_METRICS: Final[dict[str, tuple[str, ...]]] = {
    "air_quality": (
        "pm25",
        "pm10",
        "no2",
        "o3",
        "co",
        "so2",
        "temperature",
        "humidity",
        "pressure",
    ),
    "noise": ("noise_laeq",),
    "weather": ("rainfall", "temperature", "humidity", "pressure"),
    "river_gauge": ("water_level",),
    "smart_meter": ("voltage", "current", "power", "power_factor", "frequency", "energy"),
    "street_light": ("lamp_on", "dimming", "power", "energy"),
    "solar": ("power", "energy"),
}
DEVICE_ID_RE: Final = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")
DEV_EUI_RE: Final = re.compile(r"^[0-9a-f]{16}$")
DEFAULT_CITY: Final = Path(__file__).parent / "data" / "nam_dinh_city.toml"

# devEui kind codes: the two hex digits after the prefix.
_KIND_CODE: Final = {kind: i + 1 for i, kind in enumerate(KINDS)}
# QCVN 26:2010 Bảng 1 limits, dBA (day 06–21, night 21–06).
_NOISE_LIMITS: Final = {"special": (55, 45), "normal": (70, 55)}


class CityError(DothiError):
    """The city file is invalid; the message names the file, the entry and the problem."""


@dataclass(frozen=True)
class DeviceSpec:
    """One simulated device, as the platform's device registry sees it.

    Attributes:
        id: device id; ``^[a-z0-9][a-z0-9-]{0,40}$``, or a 16-hex-digit devEui for ChirpStack.
        kind: one of :data:`KINDS`.
        name: Vietnamese display name.
        area_id: an id of ``store/data/areas_nam_dinh.csv``.
        lat: latitude, degrees.
        lon: longitude, degrees.
        public: whether its data may be shown on the public portal.
        format: payload format, one of :data:`FORMATS`.
        metrics: canonical metric names it reports.
        interval_s: reporting interval in seconds.
        metadata: kind-specific facts (noise area type and limits, gauge alarm levels, meter
            rated power …).
    """

    id: str
    kind: str
    name: str
    area_id: str
    lat: float
    lon: float
    public: bool
    format: str
    metrics: tuple[str, ...]
    interval_s: int
    metadata: dict[str, object] = field(default_factory=dict)

    def __hash__(self) -> int:  # metadata is a dict; the id identifies a device
        return hash(self.id)

    def number(self, name: str, default: float) -> float:
        """A numeric metadata value, or ``default``."""
        value = self.metadata.get(name, default)
        return float(value) if isinstance(value, int | float) else default


@dataclass(frozen=True, slots=True)
class Area:
    """An area of the city file: where it is and what the model needs to know about it."""

    id: str
    parent: str | None
    lat: float
    lon: float
    urban: float = 0.5
    coastal: bool = False
    industrial: bool = False
    spread: float = 0.006


@dataclass(frozen=True, slots=True)
class Gateway:
    """A LoRaWAN gateway that simulated uplinks are heard by."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class LoRaWAN:
    """Network-server identities used in ChirpStack and The Things Stack payloads."""

    region: str
    chirpstack_tenant_id: str
    chirpstack_tenant_name: str
    chirpstack_application_id: str
    chirpstack_application_name: str
    tts_application_id: str
    tts_tenant_id: str
    dev_eui_prefix: str
    gateways: tuple[Gateway, ...]


@dataclass
class City:
    """The loaded city.

    Attributes:
        name: the city file's name.
        devices: every device, stations first, in a stable order.
        areas: the areas of the file by id.
        lorawan: network-server identities.
        scenarios: per-scenario settings from the file.
        device_faults: per-device fault rates from the file (device id → fault → rate).
        source: the file it was read from.
    """

    name: str
    devices: list[DeviceSpec]
    areas: dict[str, Area]
    lorawan: LoRaWAN
    scenarios: dict[str, dict[str, Any]]
    device_faults: dict[str, dict[str, float]]
    source: Path
    _index: dict[str, DeviceSpec] = field(default_factory=dict, repr=False, compare=False)

    def device(self, device_id: str) -> DeviceSpec:
        """The device with this id.

        Raises:
            KeyError: no such device.
        """
        if len(self._index) != len(self.devices):
            self._index = {d.id: d for d in self.devices}
        return self._index[device_id]

    def area_chain(self, area_id: str) -> list[str]:
        """The area and its ancestors, nearest first."""
        chain: list[str] = []
        current: str | None = area_id
        while current is not None and current not in chain:
            chain.append(current)
            area = self.areas.get(current)
            current = area.parent if area else None
        return chain

    def district_of(self, area_id: str) -> str:
        """The area's ancestor just below the province (itself if it is one)."""
        chain = self.area_chain(area_id)
        return chain[-2] if len(chain) >= 2 else chain[0]


def load_city(path: Path | None = None, *, devices: int | None = None, seed: int = 0) -> City:
    """Read a city file and expand it into devices.

    Args:
        path: the TOML city file; the shipped Nam Định city when None.
        devices: exact number of devices wanted. Fewer than the file holds keeps the first ones
            (stations first); more adds fleet members across the leaf areas, in the file's
            ``[scaling]`` proportions.
        seed: scatters generated devices and draws their per-device parameters.

    Returns:
        The city, with ``City.devices`` in a stable order.

    Raises:
        CityError: the file is unreadable or invalid (the message says where).
    """
    source = path or DEFAULT_CITY
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CityError(f"cannot read city file {source}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CityError(f"{source}: not valid TOML: {exc}") from None
    if devices is not None and devices < 0:
        raise CityError("the number of devices cannot be negative")
    return _Builder(raw, source, seed).build(devices)


# --------------------------------------------------------------------------------------------
# Parsing


def _get(table: Mapping[str, Any], name: str, kind: type, where: str, default: Any = None) -> Any:
    value = table.get(name, default)
    if value is None:
        raise CityError(f"{where}: '{name}' is required")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CityError(f"{where}: '{name}' must be a {kind.__name__}, got {value!r}")
    return value


@dataclass
class _Fleet:
    index: int
    kind: str
    prefix: str
    name: str
    formats: list[tuple[str, float]]
    areas: list[tuple[str, int]]
    template: dict[str, Any]
    vary: dict[str, tuple[float, float]]
    choose: dict[str, list[Any]]
    rotor: _Rotor


class _Builder:
    def __init__(self, raw: dict[str, Any], source: Path, seed: int) -> None:
        self.raw = raw
        self.source = source
        self.seed = seed
        self.where = str(source)
        self.devices: list[DeviceSpec] = []
        self.faults: dict[str, dict[str, float]] = {}
        self.ids: set[str] = set()
        self.per_area: dict[tuple[str, str], int] = {}
        self.eui_serial: dict[str, int] = {}

    # -- top level ---------------------------------------------------------------------------
    def build(self, wanted: int | None) -> City:
        version = self.raw.get("version", 1)
        if version != 1:
            raise CityError(f"{self.where}: unsupported city file version {version!r}")
        self.lorawan = self._lorawan(self.raw.get("lorawan", {}))
        self.areas = self._areas(self.raw.get("areas", []))
        self.kinds = self._kinds(self.raw.get("kinds", {}))
        for i, entry in enumerate(self.raw.get("devices", [])):
            self._station(entry, f"{self.where}: devices[{i}]")
        fleets = [self._fleet(i, f) for i, f in enumerate(self.raw.get("fleets", []))]
        for fleet in fleets:
            for area_id, count in fleet.areas:
                for _ in range(count):
                    self._member(fleet, area_id)
        if wanted is not None:
            if wanted <= len(self.devices):
                keep = {d.id for d in self.devices[:wanted]}
                self.devices = self.devices[:wanted]
                self.faults = {k: v for k, v in self.faults.items() if k in keep}
            else:
                self._scale(fleets, wanted - len(self.devices))
        scenarios = self.raw.get("scenarios", {})
        if not isinstance(scenarios, dict):
            raise CityError(f"{self.where}: [scenarios] must be a table")
        return City(
            name=str(self.raw.get("name", self.source.stem)),
            devices=self.devices,
            areas=self.areas,
            lorawan=self.lorawan,
            scenarios={str(k): dict(v) for k, v in scenarios.items()},
            device_faults=self.faults,
            source=self.source,
        )

    def _lorawan(self, t: dict[str, Any]) -> LoRaWAN:
        w = f"{self.where}: [lorawan]"
        prefix = str(t.get("dev_eui_prefix", "a84041")).lower()
        if not re.fullmatch(r"[0-9a-f]{6}", prefix):
            raise CityError(f"{w}: dev_eui_prefix must be 6 hex digits, got {prefix!r}")
        gateways = tuple(
            Gateway(str(g["id"]).lower(), str(g.get("name", g["id"])))
            for g in t.get("gateways", [{"id": "0016c001f1530001", "name": "gateway"}])
        )
        if not gateways:
            raise CityError(f"{w}: at least one gateway is needed")
        return LoRaWAN(
            region=str(t.get("region", "AS923")),
            chirpstack_tenant_id=str(t.get("chirpstack_tenant_id", "00000000-0000-0000-0000-0")),
            chirpstack_tenant_name=str(t.get("chirpstack_tenant_name", "ChirpStack")),
            chirpstack_application_id=str(
                t.get("chirpstack_application_id", "00000000-0000-0000-0000-000000000001")
            ),
            chirpstack_application_name=str(t.get("chirpstack_application_name", "dothi")),
            tts_application_id=str(t.get("tts_application_id", "dothi")),
            tts_tenant_id=str(t.get("tts_tenant_id", "dothi")),
            dev_eui_prefix=prefix,
            gateways=gateways,
        )

    def _areas(self, rows: list[dict[str, Any]]) -> dict[str, Area]:
        areas: dict[str, Area] = {}
        for i, row in enumerate(rows):
            w = f"{self.where}: areas[{i}]"
            aid = _get(row, "id", str, w)
            if aid in areas:
                raise CityError(f"{w}: duplicate area id {aid!r}")
            parent = row.get("parent")
            if parent is not None and parent not in areas:
                raise CityError(f"{w}: parent {parent!r} of {aid!r} must be listed before it")
            areas[aid] = Area(
                id=aid,
                parent=parent,
                lat=_get(row, "lat", float, w),
                lon=_get(row, "lon", float, w),
                urban=_get(row, "urban", float, w, 0.5),
                coastal=_get(row, "coastal", bool, w, default=False),
                industrial=_get(row, "industrial", bool, w, default=False),
                spread=_get(row, "spread", float, w, 0.006),
            )
        if not areas:
            raise CityError(f"{self.where}: no [[areas]]")
        return areas

    def _kinds(self, t: dict[str, Any]) -> dict[str, dict[str, Any]]:
        for kind in t:
            if kind not in KINDS:
                raise CityError(
                    f"{self.where}: [kinds.{kind}]: unknown kind (known: {', '.join(KINDS)})"
                )
        return {kind: dict(t.get(kind, {})) for kind in KINDS}

    # -- devices -----------------------------------------------------------------------------
    def _spec(
        self,
        entry: dict[str, Any],
        w: str,
        *,
        kind: str,
        device_id: str,
        name: str,
        area_id: str,
        lat: float,
        lon: float,
        metadata: dict[str, Any],
    ) -> DeviceSpec:
        defaults = self.kinds[kind]
        fmt = str(entry.get("format", defaults.get("format", "native")))
        if fmt not in FORMATS:
            raise CityError(f"{w}: unknown format {fmt!r} (known: {', '.join(FORMATS)})")
        if fmt == "chirpstack":
            if not DEV_EUI_RE.fullmatch(device_id):
                raise CityError(
                    f"{w}: a ChirpStack device's id is its devEui (16 lowercase hex digits), "
                    f"got {device_id!r}"
                )
        elif not DEVICE_ID_RE.fullmatch(device_id):
            raise CityError(
                f"{w}: device id {device_id!r} must match {DEVICE_ID_RE.pattern} "
                "(lowercase letters, digits, dashes; at most 41 characters)"
            )
        if device_id in self.ids:
            raise CityError(f"{w}: duplicate device id {device_id!r}")
        if area_id not in self.areas:
            raise CityError(f"{w}: area {area_id!r} is not in the file's [[areas]]")
        metrics = tuple(entry.get("metrics", defaults.get("metrics", ())))
        unknown = [m for m in metrics if m not in METRICS]
        if unknown or not metrics:
            raise CityError(f"{w}: unknown or missing metrics {unknown or '(none)'}")
        unmodelled = [m for m in metrics if m not in KIND_METRICS[kind]]
        if unmodelled:
            raise CityError(
                f"{w}: a {kind} device does not measure {unmodelled} "
                f"(it can report {', '.join(KIND_METRICS[kind])})"
            )
        if fmt == "tasmota" and not set(metrics) <= TASMOTA_METRICS:
            raise CityError(
                f"{w}: Tasmota payloads carry only {', '.join(sorted(TASMOTA_METRICS))}"
            )
        interval = _get(entry, "interval_s", int, w, defaults.get("interval_s", 300))
        if interval < 1:
            raise CityError(f"{w}: interval_s must be at least 1 second")
        public = _get(entry, "public", bool, w, defaults.get("public", False))
        meta: dict[str, object] = {**defaults.get("metadata", {}), **metadata}
        if kind == "noise":
            area_type = meta.setdefault("area_type", "normal")
            if area_type not in _NOISE_LIMITS:
                raise CityError(f"{w}: noise area_type must be 'special' or 'normal'")
            day, night = _NOISE_LIMITS[str(area_type)]
            meta.setdefault("limit_day_dba", day)
            meta.setdefault("limit_night_dba", night)
        if kind == "river_gauge" and not isinstance(meta.get("alarm_levels_m"), dict):
            raise CityError(f"{w}: a river gauge needs metadata.alarm_levels_m = {{I, II, III}}")
        self.ids.add(device_id)
        return DeviceSpec(
            id=device_id,
            kind=kind,
            name=name,
            area_id=area_id,
            lat=round(float(lat), 6),
            lon=round(float(lon), 6),
            public=public,
            format=fmt,
            metrics=metrics,
            interval_s=interval,
            metadata=meta,
        )

    def _faults(self, device_id: str, entry: dict[str, Any], w: str) -> None:
        faults = entry.get("faults")
        if faults is None:
            return
        if not isinstance(faults, dict):
            raise CityError(f"{w}: faults must be a table of fault = rate")
        rates: dict[str, float] = {}
        for name, rate in faults.items():
            if name not in FAULTS:
                raise CityError(f"{w}: unknown fault {name!r} (known: {', '.join(FAULTS)})")
            if not isinstance(rate, int | float) or not 0 <= rate <= 1:
                raise CityError(f"{w}: fault rate of {name} must be within [0, 1]")
            rates[name] = float(rate)
        self.faults[device_id] = rates

    def _station(self, entry: dict[str, Any], w: str) -> None:
        kind = _get(entry, "kind", str, w)
        if kind not in KINDS:
            raise CityError(f"{w}: unknown kind {kind!r} (known: {', '.join(KINDS)})")
        device_id = _get(entry, "id", str, w)
        spec = self._spec(
            entry,
            f"{w} ({device_id})",
            kind=kind,
            device_id=device_id,
            name=_get(entry, "name", str, w),
            area_id=_get(entry, "area_id", str, w),
            lat=_get(entry, "lat", float, w),
            lon=_get(entry, "lon", float, w),
            metadata=dict(entry.get("metadata", {})),
        )
        self._faults(device_id, entry, w)
        self.devices.append(spec)
        key = (kind, spec.area_id)
        self.per_area[key] = self.per_area.get(key, 0) + 1

    def _fleet(self, i: int, t: dict[str, Any]) -> _Fleet:
        w = f"{self.where}: fleets[{i}]"
        kind = _get(t, "kind", str, w)
        if kind not in KINDS:
            raise CityError(f"{w}: unknown kind {kind!r}")
        prefix = _get(t, "id_prefix", str, w)
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,11}", prefix):
            raise CityError(f"{w}: id_prefix must be 1–12 lowercase letters, digits or dashes")
        formats_t = t.get("formats", {self.kinds[kind].get("format", "native"): 1})
        formats = [(str(f), float(wt)) for f, wt in formats_t.items() if wt > 0]
        for f, _ in formats:
            if f not in FORMATS:
                raise CityError(f"{w}: unknown format {f!r}")
        if not formats:
            raise CityError(f"{w}: formats needs at least one positive weight")
        areas = [(str(a), int(n)) for a, n in t.get("areas", {}).items()]
        for a, n in areas:
            if a not in self.areas:
                raise CityError(f"{w}: area {a!r} is not in the file's [[areas]]")
            if n < 0:
                raise CityError(f"{w}: negative device count for {a!r}")
        vary: dict[str, tuple[float, float]] = {}
        for name, bounds in t.get("vary", {}).items():
            if not (isinstance(bounds, list) and len(bounds) == 2):
                raise CityError(f"{w}: vary.{name} must be [low, high]")
            vary[name] = (float(bounds[0]), float(bounds[1]))
        choose = {str(k): list(v) for k, v in t.get("choose", {}).items()}
        template: dict[str, Any] = {k: t[k] for k in ("metrics", "interval_s", "public") if k in t}
        template["metadata"] = dict(t.get("metadata", {}))
        template["faults"] = t.get("faults")
        return _Fleet(
            index=i,
            kind=kind,
            prefix=prefix,
            name=_get(t, "name", str, w),
            formats=formats,
            areas=areas,
            template=template,
            vary=vary,
            choose=choose,
            rotor=_Rotor(formats),
        )

    def _member(self, fleet: _Fleet, area_id: str) -> DeviceSpec:
        fmt = fleet.rotor.next()
        key = (fleet.prefix, area_id)
        n = self.per_area.get(key, 0) + 1
        self.per_area[key] = n
        native_id = f"{fleet.prefix}-{area_id}-{n:03d}"
        if fmt == "chirpstack":
            code = _KIND_CODE[fleet.kind]
            serial = self.eui_serial.get(fleet.kind, 0) + 1
            self.eui_serial[fleet.kind] = serial
            device_id = f"{self.lorawan.dev_eui_prefix}{code:02x}{serial:08x}"
        else:
            device_id = native_id
        area = self.areas[area_id]
        k = prng.key("city", self.seed, native_id)
        u = prng.uniform(k, [0, 1, 2, 3, 4, 5, 6, 7])
        # Scatter inside the area; keep within ±spread of the centre.
        lat = area.lat + (u[0] - 0.5) * 2 * area.spread
        lon = area.lon + (u[1] - 0.5) * 2 * area.spread / math.cos(math.radians(area.lat))
        meta: dict[str, Any] = dict(fleet.template["metadata"])
        for j, (name, (lo, hi)) in enumerate(sorted(fleet.vary.items())):
            uj = float(prng.uniform(k, [10 + j])[0])
            meta[name] = round(lo + (hi - lo) * uj, 3)
        for j, (name, options) in enumerate(sorted(fleet.choose.items())):
            meta[name] = options[prng.choice_index(k, 100 + j, len(options))]
        entry = {**fleet.template, "format": fmt}
        w = f"{self.where}: fleets[{fleet.index}] member {native_id}"
        if len(native_id) > 41:
            raise CityError(f"{w}: generated id is longer than 41 characters; shorten id_prefix")
        spec = self._spec(
            entry,
            w,
            kind=fleet.kind,
            device_id=device_id,
            name=f"{fleet.name} {n:03d}",
            area_id=area_id,
            lat=lat,
            lon=lon,
            metadata=meta,
        )
        if fleet.template.get("faults") is not None:
            self._faults(device_id, fleet.template, w)
        self.devices.append(spec)
        return spec

    def _scale(self, fleets: list[_Fleet], extra: int) -> None:
        weights = self.raw.get("scaling", {}).get("weights", {"smart_meter": 1})
        by_kind: dict[str, list[_Fleet]] = {}
        for fl in fleets:
            by_kind.setdefault(fl.kind, []).append(fl)
        mix = [(k, float(wt)) for k, wt in weights.items() if wt > 0 and k in by_kind]
        if not mix:
            raise CityError(
                f"{self.where}: cannot add devices: [scaling] weights name no kind with a fleet"
            )
        parents = {a.parent for a in self.areas.values()}
        leaves = [a.id for a in self.areas.values() if a.id not in parents]
        turn: dict[str, int] = {}
        area_turn: dict[int, int] = {}
        rotor = _Rotor(mix)
        for _ in range(extra):
            kind = rotor.next()
            t = turn.get(kind, 0)
            turn[kind] = t + 1
            kind_fleets = by_kind[kind]
            fleet = kind_fleets[t % len(kind_fleets)]
            j = area_turn.get(fleet.index, 0)
            area_turn[fleet.index] = j + 1
            self._member(fleet, leaves[j % len(leaves)])


class _Rotor:
    """Smooth weighted round robin: picks interleave evenly in proportion to the weights."""

    def __init__(self, options: list[tuple[str, float]]) -> None:
        self.options = options
        self.total = sum(w for _, w in options)
        self.current = [0.0] * len(options)

    def next(self) -> str:
        for i, (_, w) in enumerate(self.options):
            self.current[i] += w
        best = max(range(len(self.options)), key=lambda i: (self.current[i], -i))
        self.current[best] -= self.total
        return self.options[best][0]
