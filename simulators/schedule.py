"""When devices report: each device on its own fixed grid of reading times.

A device reports at ``ORIGIN + phase + k·interval``: the phase (from its id) spreads devices over
the interval so the broker sees a steady stream, and the grid is absolute, so backfill and real
time produce the same timestamps. ``k`` is the device's sequence number.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

import numpy as np

from simulators import prng

if TYPE_CHECKING:
    from simulators.city import DeviceSpec
    from simulators.prng import IntArray

ORIGIN: Final = 1577811600  # 2020-01-01T00:00:00+07:00


def phase(device: DeviceSpec) -> int:
    """Seconds after each grid step at which this device reports."""
    return int(prng.uniform_int(prng.key("phase", device.id), 0) * device.interval_s)


def reading_times(device: DeviceSpec, t0: float, t1: float) -> IntArray:
    """The device's reading times in [t0, t1), UTC epoch seconds."""
    step = device.interval_s
    base = ORIGIN + phase(device)
    k0 = math.ceil((t0 - base) / step)
    k1 = math.ceil((t1 - base) / step)
    return np.arange(k0, k1, dtype=np.int64) * step + base


def sequence(device: DeviceSpec, ts: IntArray) -> IntArray:
    """Sequence numbers of reading times (readings since 2020, so they never go negative)."""
    return np.asarray((ts - ORIGIN - phase(device)) // device.interval_s, dtype=np.int64)


def first_at_or_after(device: DeviceSpec, t: float) -> int:
    """The first reading time at or after ``t``."""
    step = device.interval_s
    base = ORIGIN + phase(device)
    return int(math.ceil((t - base) / step) * step + base)
