"""``dothi analytics``: run the rule engine, AQI and energy jobs and notifications."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from core.settings import Settings


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


# The shipped files live in the source tree's deploy/ (the wheel has no deploy/): a relative
# default that is missing in the working directory (dothi up started elsewhere) falls back there.
_SOURCE_DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def _default(value: str) -> Path:
    path = Path(value)
    if not path.is_absolute() and not path.exists() and path.parts[0] == "deploy":
        shipped = _SOURCE_DEPLOY.joinpath(*path.parts[1:])
        if shipped.exists():
            return shipped
    return path


def cmd_analytics(settings: Settings, args: argparse.Namespace) -> int:
    """Run analytics until SIGINT/SIGTERM (SIGHUP reloads the rules); or check the files."""
    from analytics.notifyconfig import load_notifications  # noqa: PLC0415
    from analytics.rulefile import load_rules  # noqa: PLC0415
    from analytics.service import ServiceOptions, run  # noqa: PLC0415

    notifications = None if args.notifications == "none" else _default(args.notifications)
    rules_path = _default(args.rules)
    if args.check:
        rules = load_rules(rules_path)
        _out(f"{rules_path}: {len(rules.rules)} rules OK ({len(rules.disabled)} disabled)")
        if notifications is not None:
            cfg = load_notifications(notifications)
            mqtt = "on" if cfg.mqtt.enabled else "off"
            _out(f"{notifications}: MQTT {mqtt}, {len(cfg.webhooks)} webhooks enabled")
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    options = ServiceOptions(
        rules=rules_path,
        notifications=notifications,
        interval_s=args.interval,
        once=args.once,
    )
    run(settings, stop, options)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``dothi analytics``."""
    p = sub.add_parser(
        "analytics", help="run alert rules, AQI and energy jobs, notifications (continuously)"
    )
    p.add_argument(
        "--rules", default="deploy/rules.toml", help="rules file (default deploy/rules.toml)"
    )
    p.add_argument(
        "--notifications",
        default="deploy/notifications.toml",
        help="notification channels file, or 'none' for MQTT only (default"
        " deploy/notifications.toml)",
    )
    p.add_argument(
        "--interval",
        type=float,
        default=1.0,
        help="seconds between evaluations (default 1: publish → alert p99 ≈ 1.2 s)",
    )
    p.add_argument("--once", action="store_true", help="evaluate once and exit")
    p.add_argument("--check", action="store_true", help="validate the files and exit")
    p.set_defaults(func=cmd_analytics)
