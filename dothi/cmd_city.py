"""``dothi devices import`` and ``dothi maintenance``: wiring between packages.

The simulator's city file describes devices (kind, area, place, visibility, reporting interval);
importing registers them, so the simulated city appears in the registry, the API, the portal and
the analytics rules exactly as real provisioned devices would.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

if TYPE_CHECKING:
    import argparse

    from core.settings import Settings

log = logging.getLogger(__name__)


def import_city(
    settings: Settings, city_file: Path | None = None, devices: int | None = None
) -> int:
    """Register (upsert) every device of a city file; return how many."""
    from simulators.city import load_city  # noqa: PLC0415
    from store import devices as registry  # noqa: PLC0415

    city = load_city(city_file, devices=devices)
    specs = [
        registry.Device(
            id=d.id,
            kind=d.kind,
            name=d.name,
            area_id=d.area_id,
            lat=d.lat,
            lon=d.lon,
            public=d.public,
            metadata={
                **d.metadata,
                "format": d.format,
                "metrics": list(d.metrics),
                "interval_s": d.interval_s,
            },
        )
        for d in city.devices
    ]
    with psycopg.connect(settings.db_url()) as conn:
        return registry.upsert(conn, specs)


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    n = import_city(settings, Path(args.city) if args.city else None, args.devices)
    print(f"registered {n} devices from the city file")
    return 0


def cmd_maintenance(settings: Settings, args: argparse.Namespace) -> int:
    from store.maintenance import run_maintenance  # noqa: PLC0415
    from store.retention import RetentionPolicy  # noqa: PLC0415

    def days(value: int) -> int | None:
        return value or None  # 0 = keep forever

    policy = RetentionPolicy(
        raw_days=days(settings.retention_raw_days),
        minute_days=days(settings.retention_minute_days),
        hour_days=days(settings.retention_hour_days),
        day_days=days(settings.retention_day_days),
        dead_letter_days=days(settings.retention_dead_letter_days),
    )
    if policy.raw_days is not None and settings.ingest_max_age_days > policy.raw_days:
        log.warning(
            "DOTHI_INGEST_MAX_AGE_DAYS (%d) exceeds DOTHI_RETENTION_RAW_DAYS (%d): readings that"
            " late are stored but fall outside the rollups' horizon",
            settings.ingest_max_age_days,
            policy.raw_days,
        )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    interval = args.interval if args.interval is not None else settings.rollup_interval_s
    run_maintenance(settings.db_url(), stop, interval_s=interval, policy=policy)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "maintenance", help="keep the rollups fresh and apply retention (continuously)"
    )
    p.add_argument(
        "--interval", type=float, help="seconds between refreshes (default DOTHI_ROLLUP_INTERVAL_S)"
    )
    p.set_defaults(func=cmd_maintenance)


def register_import(devices_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = devices_sub.add_parser("import", help="register the devices of a simulator city file")
    p.add_argument("--city", help="city file (default: the shipped Nam Định)")
    p.add_argument("--devices", type=int, help="scale the city to N devices")
    p.set_defaults(func=cmd_import)
