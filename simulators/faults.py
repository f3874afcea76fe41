"""Faults: the ways real sensors and networks misbehave, each with a recognisable signature.

Rates come from ``--faults`` (one rate for all, or ``name=rate`` each) and from per-device
``faults`` tables in the city file; a device uses the larger of the two. Whether a fault strikes
is hashed from (seed, device, fault, time), so it is as reproducible as the signals.

Value faults change readings: ``spike`` (one value jumps, then returns), ``flatline`` (a metric
sticks for hours, PM often at exactly 0 — a dead fan), ``drift`` (a growing offset over days),
``counter-reset`` (the energy counter restarts from 0), ``pm-inversion`` (PM2.5 > PM10),
``wrong-unit`` (a value sent in another unit than the format declares: °F as °C, cm as m …;
see :func:`wrong_unit_masks`).
Availability faults remove readings: ``dropout`` (single readings; sequence gaps) and ``offline``
(hours of silence). Transport faults act on messages: ``duplicate`` (sent twice, same bytes),
``out-of-order`` (sent after the next message), ``late`` (held back 10 min – 2 h) and
``malformed`` (truncated, not parseable).

Rates: value and transport faults and dropout are per reading or message; flatline, drift and
offline are per episode slot (6 h, 3 days and 12 h); counter-reset is per device-day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import numpy as np

from core.errors import DothiError
from core.metrics import METRICS
from simulators import prng, profiles, schedule
from simulators.profiles import DAY_S, HOUR_S

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from simulators.city import DeviceSpec
    from simulators.prng import BoolArray, FloatArray

FAULTS: Final = (
    "spike",
    "flatline",
    "drift",
    "dropout",
    "offline",
    "counter-reset",
    "pm-inversion",
    "duplicate",
    "out-of-order",
    "late",
    "malformed",
    "wrong-unit",
)
TRANSPORT_FAULTS: Final = ("duplicate", "out-of-order", "late", "malformed")
DEFAULT_RATE: Final = 0.01

_FLATLINE_SLOT_S: Final = 6 * HOUR_S
_DRIFT_SLOT_S: Final = 3 * DAY_S
_OFFLINE_SLOT_S: Final = 12 * HOUR_S
_RESET_LOOKBACK_DAYS: Final = 400

# spike: value·mul + add, kept inside the registry's reject range.
SPIKES: Final[dict[str, tuple[float, float]]] = {
    "pm25": (5.0, 20.0),
    "pm10": (4.0, 30.0),
    "no2": (5.0, 30.0),
    "o3": (3.0, 40.0),
    "co": (6.0, 1000.0),
    "so2": (8.0, 20.0),
    "temperature": (1.0, 14.0),
    "humidity": (1.0, -45.0),
    "pressure": (1.0, -45.0),
    "noise_laeq": (1.0, 28.0),
    "water_level": (1.0, 1.5),
    "rainfall": (1.0, 90.0),
    "voltage": (1.0, 38.0),
    "current": (5.0, 5.0),
    "power": (5.0, 800.0),
    "power_factor": (1.0, -0.5),
    "frequency": (1.0, 1.8),
}
# drift over a 3-day episode: ("rel", share) multiplies, ("abs", amount) adds, at the end.
DRIFTS: Final[dict[str, tuple[str, float]]] = {
    "pm25": ("rel", 0.6),
    "pm10": ("rel", 0.6),
    "no2": ("rel", 0.8),
    "o3": ("rel", 0.6),
    "co": ("rel", 0.6),
    "so2": ("rel", 1.0),
    "temperature": ("abs", 4.0),
    "humidity": ("abs", 15.0),
    "pressure": ("abs", 8.0),
    "noise_laeq": ("abs", 6.0),
    "water_level": ("abs", 0.6),
    "rainfall": ("rel", 0.5),
    "voltage": ("abs", 12.0),
    "current": ("rel", 0.3),
    "power": ("rel", 0.3),
}
# wrong-unit: the unit really used, and the conversion from the declared (canonical) unit.
WRONG_UNITS: Final[dict[str, tuple[str, float, float]]] = {
    "temperature": ("°F", 1.8, 32.0),
    "water_level": ("cm", 100.0, 0.0),
    "energy": ("Wh", 1000.0, 0.0),
    "power": ("kW", 0.001, 0.0),
    "pressure": ("kPa", 0.1, 0.0),
    "pm25": ("mg/m3", 0.001, 0.0),
    "pm10": ("mg/m3", 0.001, 0.0),
    "no2": ("mg/m3", 0.001, 0.0),
    "o3": ("mg/m3", 0.001, 0.0),
    "so2": ("mg/m3", 0.001, 0.0),
    "co": ("mg/m3", 0.001, 0.0),
    "humidity": ("fraction", 0.01, 0.0),
    "voltage": ("kV", 0.001, 0.0),
    "current": ("mA", 1000.0, 0.0),
    "rainfall": ("mm/min", 1 / 60, 0.0),
    "noise_laeq": ("B", 0.1, 0.0),
    "dimming": ("fraction", 0.01, 0.0),
    "power_factor": ("%", 100.0, 0.0),
}


class FaultError(DothiError):
    """A fault specification is invalid."""


@dataclass(frozen=True)
class FaultPlan:
    """Which faults strike how often.

    Attributes:
        rates: global rate per fault (``--faults``).
        per_device: device id → fault → rate (the city file's ``faults`` tables).
        seed: the simulation seed.
    """

    rates: Mapping[str, float] = field(default_factory=dict)
    per_device: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    seed: int = 0

    def rate(self, device_id: str, fault: str) -> float:
        """The rate of ``fault`` for a device."""
        own = self.per_device.get(device_id)
        return max(self.rates.get(fault, 0.0), own.get(fault, 0.0) if own else 0.0)

    def active(self, device_id: str) -> bool:
        """True when any fault can strike the device."""
        return bool(self.rates) or bool(self.per_device.get(device_id))

    def key(self, fault: str, device_id: str) -> int:
        """The noise key of one fault on one device."""
        return prng.key(self.seed, "fault", fault, device_id)


def parse_faults(spec: str | None, default_rate: float = DEFAULT_RATE) -> dict[str, float]:
    """Read ``spike,flatline=0.2`` (or ``all``) into fault → rate.

    Raises:
        FaultError: an unknown fault or a rate outside [0, 1].
    """
    rates: dict[str, float] = {}
    if not spec:
        return rates
    if not 0.0 <= default_rate <= 1.0:
        raise FaultError(f"fault rate must be within [0, 1], got {default_rate}")
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        name, _, value = item.partition("=")
        name = name.strip()
        try:
            rate = float(value) if value else default_rate
        except ValueError:
            raise FaultError(f"fault rate of {name!r} is not a number: {value!r}") from None
        if not 0.0 <= rate <= 1.0:
            raise FaultError(f"fault rate of {name!r} must be within [0, 1], got {rate}")
        names = FAULTS if name == "all" else (name,)
        for n in names:
            if n not in FAULTS:
                raise FaultError(f"unknown fault {n!r} (known: {', '.join(FAULTS)}, or all)")
            rates[n] = rate
    return rates


def _hit(plan: FaultPlan, fault: str, device: DeviceSpec, index: FloatArray) -> BoolArray:
    rate = plan.rate(device.id, fault)
    if rate <= 0.0:
        return np.zeros(np.shape(index), dtype=bool)
    return np.asarray(prng.uniform(plan.key(fault, device.id), index.astype(np.int64)) < rate)


def _episode(
    plan: FaultPlan,
    fault: str,
    device: DeviceSpec,
    t: FloatArray,
    *,
    slot: float,
    short: float,
) -> tuple[BoolArray, FloatArray, FloatArray]:
    """Episodes inside fixed slots: (inside-an-episode mask, episode start, slot index)."""
    idx = np.floor(t / slot)
    hit = _hit(plan, fault, device, idx)
    k = plan.key(fault, device.id)
    start = idx * slot + prng.uniform(k ^ 1, idx.astype(np.int64)) * (slot - short) * 0.5
    length = short + prng.uniform(k ^ 2, idx.astype(np.int64)) * (slot - short) * 0.5
    inside = hit & (t >= start) & (t < start + length)
    return inside, start, idx


def absent(device: DeviceSpec, t: FloatArray, plan: FaultPlan) -> BoolArray:
    """Readings lost to ``dropout`` (single) and ``offline`` (hours)."""
    gone = _hit(plan, "dropout", device, t)
    if plan.rate(device.id, "offline") > 0:
        off, _, _ = _episode(plan, "offline", device, t, slot=_OFFLINE_SLOT_S, short=2 * HOUR_S)
        gone = gone | off
    return gone


def _pick(
    plan: FaultPlan, fault: str, device: DeviceSpec, index: FloatArray, options: list[str]
) -> list[str]:
    u = prng.uniform(plan.key(fault, device.id) ^ 7, index.astype(np.int64))
    return [options[int(x * len(options)) % len(options)] for x in u]


def _clip(metric: str, v: FloatArray) -> FloatArray:
    lo, hi = METRICS[metric].reject
    return np.clip(v, lo, hi)


def apply_value_faults(
    device: DeviceSpec,
    t: FloatArray,
    values: dict[str, FloatArray],
    plan: FaultPlan,
    *,
    clean: Callable[[FloatArray], dict[str, FloatArray]],
    counter: Callable[[FloatArray], FloatArray] | None = None,
) -> dict[str, FloatArray]:
    """Apply the value faults to a device's readings at times ``t``.

    Args:
        device: the device.
        t: reading times.
        values: clean values per metric, aligned with ``t``.
        plan: the fault rates.
        clean: the device's clean values at other times (the value a metric sticks at).
        counter: the device's energy counter at other times (where a reset happened); taken
            from ``clean`` when None.

    Returns:
        The values as the faulty device reports them.
    """
    out = {m: v.copy() for m, v in values.items()}
    if not plan.active(device.id) or t.size == 0:
        return out
    if "energy" in out and plan.rate(device.id, "counter-reset") > 0:
        at_times = counter or (lambda at: clean(at)["energy"])
        out["energy"] = _counter_reset(device, t, out["energy"], plan, at_times)
    _drift(device, t, out, plan)
    _flatline(device, t, out, plan, clean)
    _spike(device, t, out, plan)
    if "pm25" in out and "pm10" in out:
        swap = _hit(plan, "pm-inversion", device, t)
        if swap.any():
            pm25, pm10 = out["pm25"].copy(), out["pm10"].copy()
            out["pm25"] = np.where(swap, pm10, pm25)
            out["pm10"] = np.where(swap, pm25, pm10)
    return out


def _counter_reset(
    device: DeviceSpec,
    t: FloatArray,
    energy: FloatArray,
    plan: FaultPlan,
    counter: Callable[[FloatArray], FloatArray],
) -> FloatArray:
    days = profiles.local_day(t)
    cand = np.arange(int(days.min()) - _RESET_LOOKBACK_DAYS, int(days.max()) + 1, dtype=np.int64)
    k = plan.key("counter-reset", device.id)
    hit = prng.uniform(k, cand) < plan.rate(device.id, "counter-reset")
    if not hit.any():
        return energy
    instants = profiles.day_start(cand[hit]) + np.floor(prng.uniform(k ^ 1, cand[hit]) * DAY_S)
    last = np.searchsorted(instants, t, side="right") - 1
    at_reset = counter(instants)
    # The counter restarts at 0 at the reset instant and counts on from there.
    return np.asarray(np.where(last >= 0, energy - at_reset[np.maximum(last, 0)], energy))


def _drift(device: DeviceSpec, t: FloatArray, out: dict[str, FloatArray], plan: FaultPlan) -> None:
    options = [m for m in device.metrics if m in DRIFTS]
    if not options or plan.rate(device.id, "drift") <= 0:
        return
    slot = np.floor(t / _DRIFT_SLOT_S)
    hit = _hit(plan, "drift", device, slot)
    if not hit.any():
        return
    k = plan.key("drift", device.id)
    sign = np.where(prng.uniform(k ^ 3, slot.astype(np.int64)) < 0.5, -1.0, 1.0)
    progress = (t - slot * _DRIFT_SLOT_S) / _DRIFT_SLOT_S
    chosen = _pick(plan, "drift", device, slot, options)
    for metric in set(chosen):
        mask = hit & np.array([c == metric for c in chosen])
        how, size = DRIFTS[metric]
        v = out[metric]
        shifted = v * (1 + sign * size * progress) if how == "rel" else v + sign * size * progress
        out[metric] = np.where(mask, _clip(metric, shifted), v)


def _flatline(
    device: DeviceSpec,
    t: FloatArray,
    out: dict[str, FloatArray],
    plan: FaultPlan,
    clean: Callable[[FloatArray], dict[str, FloatArray]],
) -> None:
    if plan.rate(device.id, "flatline") <= 0:
        return
    inside, start, slot = _episode(
        plan, "flatline", device, t, slot=_FLATLINE_SLOT_S, short=2 * HOUR_S
    )
    if not inside.any():
        return
    options = list(device.metrics)
    chosen = _pick(plan, "flatline", device, slot, options)
    k = plan.key("flatline", device.id)
    dead_fan = prng.uniform(k ^ 4, slot.astype(np.int64)) < 0.5
    for s in np.unique(start[inside]):
        mask = inside & (start == s)
        i = int(np.argmax(mask))
        metric = chosen[i]
        first = float(schedule.first_at_or_after(device, float(s)))
        stuck = float(clean(np.array([first]))[metric][0])
        if metric in ("pm25", "pm10") and dead_fan[i]:
            stuck = 0.0
        out[metric] = np.where(mask, stuck, out[metric])


def _spike(device: DeviceSpec, t: FloatArray, out: dict[str, FloatArray], plan: FaultPlan) -> None:
    options = [m for m in device.metrics if m in SPIKES]
    if not options:
        return
    hit = _hit(plan, "spike", device, t)
    if not hit.any():
        return
    chosen = _pick(plan, "spike", device, t, options)
    for metric in set(chosen):
        mask = hit & np.array([c == metric for c in chosen])
        mul, add = SPIKES[metric]
        out[metric] = np.where(mask, _clip(metric, out[metric] * mul + add), out[metric])


def wrong_unit_masks(device: DeviceSpec, t: FloatArray, plan: FaultPlan) -> dict[str, BoolArray]:
    """Where a ``wrong-unit`` fault strikes: metric → readings sent in :data:`WRONG_UNITS`.

    Applied after rounding by the caller, so a value in a much smaller unit keeps its digits.
    """
    options = [m for m in device.metrics if m in WRONG_UNITS]
    if not options or plan.rate(device.id, "wrong-unit") <= 0:
        return {}
    hit = _hit(plan, "wrong-unit", device, t)
    if not hit.any():
        return {}
    chosen = _pick(plan, "wrong-unit", device, t, options)
    return {m: hit & np.array([c == m for c in chosen]) for m in set(chosen)}


def transport_faults(plan: FaultPlan, device: DeviceSpec, ts: int) -> tuple[str, ...]:
    """The transport faults striking the message whose first reading is at ``ts``."""
    if not plan.active(device.id):
        return ()
    index = np.array([ts], dtype=np.float64)
    return tuple(f for f in TRANSPORT_FAULTS if _hit(plan, f, device, index)[0])


def late_delay_s(plan: FaultPlan, device: DeviceSpec, ts: int) -> float:
    """How long a late message is held back: 10 minutes to 2 hours."""
    u = float(prng.uniform(plan.key("late", device.id) ^ 5, [ts])[0])
    return 600.0 + u * 6600.0


def corrupt(plan: FaultPlan, device: DeviceSpec, ts: int, payload: bytes) -> bytes:
    """A malformed copy of a payload: cut short, so no JSON parser accepts it."""
    u = float(prng.uniform(plan.key("malformed", device.id) ^ 6, [ts])[0])
    cut = max(1, min(len(payload) - 1, int(len(payload) * (0.3 + 0.5 * u))))
    return payload[:cut]
