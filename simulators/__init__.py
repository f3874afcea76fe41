"""A simulated Nam Định: devices, realistic signals, faults and scenarios, published over MQTT.

Speaks MQTT only and imports nothing of the platform but :mod:`core`. The public surface:
:func:`load_city` (with :class:`City` and :class:`DeviceSpec`) for whoever registers the
simulated devices, and :func:`simulators.cli.main` behind ``dothi simulate``.
"""

from simulators.city import KINDS, City, CityError, DeviceSpec, load_city

__all__ = ["KINDS", "City", "CityError", "DeviceSpec", "load_city"]
