"""``dothi alerts list|show|ack|resolve|comment``: the operator's side of the alert lifecycle."""

from __future__ import annotations

import getpass
import json
import sys
from typing import TYPE_CHECKING

from analytics.alerts import SEVERITIES, STATES

if TYPE_CHECKING:
    import argparse

    from analytics.alerts import Alert, State
    from core.settings import Settings


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _who() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "operator"


def _row(a: Alert) -> str:
    flags = " FLAPPING" if a.flapping else ""
    opened = a.opened_at.isoformat(timespec="minutes")
    return (
        f"#{a.id:<6} {a.state:<12} {a.severity:<8} {opened}  {a.area_id or '-':<24}"
        f" {a.title}{flags}"
    )


def cmd_alerts(settings: Settings, args: argparse.Namespace) -> int:
    """List alerts, show one with its history, acknowledge, resolve or comment."""
    import psycopg  # noqa: PLC0415

    from analytics import alerts  # noqa: PLC0415

    with psycopg.connect(settings.db_url(), autocommit=True) as conn:
        if args.action == "list":
            state: tuple[State, ...] | None = None
            if args.state == "active":
                state = ("open", "acknowledged")
            elif args.state is not None:
                state = (args.state,)
            found = alerts.list_alerts(
                conn,
                state=state,
                severity=args.severity,
                area_id=args.area,
                device_id=args.device,
                limit=args.limit,
                before_id=args.before,
            )
            if args.json:
                _out(json.dumps([a.as_json() for a in found], ensure_ascii=False, indent=1))
                return 0
            for a in found:
                _out(_row(a))
            more = f"; next page: --before {found[-1].id}" if len(found) == args.limit else ""
            _out(f"({len(found)} alerts{more})")
            return 0
        if args.action == "show":
            a = alerts.get_alert(conn, args.id)
            if args.json:
                doc = a.as_json()
                doc["history"] = [e.as_json() for e in alerts.history(conn, a.id)]
                _out(json.dumps(doc, ensure_ascii=False, indent=1))
                return 0
            _out(_row(a))
            _out(f"  rule {a.rule_id} ({a.kind}), device {a.device_id}, metric {a.metric}")
            _out(f"  {a.message}")
            for e in alerts.history(conn, a.id):
                note = f": {e.comment}" if e.comment else ""
                _out(f"  {e.at.isoformat(timespec='seconds')}  {e.event:<12} {e.actor}{note}")
            return 0
        actor = args.by or _who()
        if args.action == "ack":
            a = alerts.acknowledge(conn, args.id, actor, args.comment)
            _out(f"alert {a.id} acknowledged by {actor}")
        elif args.action == "resolve":
            a = alerts.resolve(conn, args.id, actor, args.comment)
            _out(f"alert {a.id} resolved by {actor}")
        else:
            alerts.comment(conn, args.id, actor, args.text)
            _out(f"comment added to alert {args.id}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``dothi alerts …``."""
    p = sub.add_parser("alerts", help="list, acknowledge, resolve and comment alerts")
    asub = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    lst = asub.add_parser("list", help="alerts, newest first")
    lst.add_argument("--state", choices=(*STATES, "active"), help="active = open or acknowledged")
    lst.add_argument("--severity", choices=SEVERITIES)
    lst.add_argument("--area", help="area id (its sub-areas included)")
    lst.add_argument("--device", help="device id")
    lst.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    lst.add_argument("--before", type=int, metavar="ID", help="only alerts older than this id")
    lst.add_argument("--json", action="store_true", help="JSON instead of a table")

    show = asub.add_parser("show", help="one alert and its history")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true", help="JSON instead of text")

    for name, help_line in (("ack", "acknowledge an open alert"), ("resolve", "resolve an alert")):
        a = asub.add_parser(name, help=help_line)
        a.add_argument("id", type=int)
        a.add_argument("--by", help="who (default: your login name)")
        a.add_argument("--comment", "-m", help="a note kept in the history")

    c = asub.add_parser("comment", help="add a comment to an alert's history")
    c.add_argument("id", type=int)
    c.add_argument("text")
    c.add_argument("--by", help="who (default: your login name)")
    p.set_defaults(func=cmd_alerts)
