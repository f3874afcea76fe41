"""``dothi dashboards list|export|publish``: the operations centre's Grafana dashboards."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from core.settings import Settings
    from dashboards.provision import DbTarget


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _dothi_url(settings: Settings, args: argparse.Namespace) -> str:
    return str(args.dothi_url or f"http://{settings.api_host}:{settings.api_port}")


def _target(settings: Settings, args: argparse.Namespace) -> DbTarget:
    from dashboards.provision import DbTarget  # noqa: PLC0415

    return DbTarget.from_url(settings.db_url(), host=args.db_host, sslmode=args.sslmode)


def _password(settings: Settings, args: argparse.Namespace) -> str:
    """The reader's password, made to work in the database unless --no-db."""
    from dashboards import provision  # noqa: PLC0415

    password = provision.reader_password(settings)
    if not args.no_db:
        provision.set_reader_password(settings.db_url(), password)
    return password


def cmd_list(_: Settings, __: argparse.Namespace) -> int:
    """Print each dashboard's uid, title and panel count."""
    from dashboards import build_all  # noqa: PLC0415

    for uid, model in build_all().items():
        panels = [p for p in model.get("panels", []) if p.get("type") != "row"]
        _out(f"{uid:<20} {model['title']}  ({len(panels)} panels)")
    return 0


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    """Write Grafana provisioning files into DIR."""
    from dashboards import provision  # noqa: PLC0415

    password = None if args.password_env and args.no_db else _password(settings, args)
    written = provision.export(
        Path(args.dir),
        _target(settings, args),
        password,
        dothi_url=_dothi_url(settings, args),
        password_env=args.password_env,
        grafana_path=args.grafana_path,
    )
    for path in written:
        _out(f"wrote {path}")
    _out(f"point GF_PATHS_PROVISIONING at {Path(args.dir).resolve() / 'provisioning'}")
    return 0


def cmd_publish(settings: Settings, args: argparse.Namespace) -> int:
    """Create or update the data source, folder and dashboards in a running Grafana."""
    from dashboards import build_all, provision  # noqa: PLC0415
    from dashboards.publish import PublishError, publish  # noqa: PLC0415

    if not args.token:
        raise PublishError("no token: pass --token or set GRAFANA_TOKEN")
    datasource = provision.datasource(_target(settings, args), _password(settings, args))
    report = publish(
        args.url,
        args.token,
        datasource,
        build_all(_dothi_url(settings, args)),
        timeout=args.timeout,
    )
    for line in report.lines():
        _out(line)
    return 0


def _database_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db-host",
        metavar="HOST[:PORT]",
        help="the database as Grafana reaches it (default: the host of DOTHI_DATABASE_URL)",
    )
    p.add_argument("--sslmode", default="disable", help="libpq sslmode for Grafana (disable)")
    p.add_argument(
        "--dothi-url",
        metavar="URL",
        help="base URL of the dothi API for links to /ops (default DOTHI_API_HOST:PORT)",
    )
    p.add_argument(
        "--no-db",
        action="store_true",
        help="do not set the dothi_grafana password in the database (it is set already)",
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``dothi dashboards …``."""
    p = sub.add_parser("dashboards", help="Grafana dashboards: list, export, publish")
    dsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    lst = dsub.add_parser("list", help="the dashboards dothi ships")
    lst.set_defaults(func=cmd_list)

    exp = dsub.add_parser(
        "export", help="write Grafana provisioning files (data source, dashboards, provider)"
    )
    exp.add_argument("dir", help="output folder (DIR/provisioning, DIR/dashboards)")
    _database_options(exp)
    exp.add_argument(
        "--password-env",
        metavar="NAME",
        help="write ${NAME} instead of the password; Grafana reads it from its environment",
    )
    exp.add_argument(
        "--grafana-path",
        metavar="PATH",
        help="DIR as Grafana sees it, if mounted elsewhere (default: DIR's absolute path)",
    )
    exp.set_defaults(func=cmd_export)

    pub = dsub.add_parser("publish", help="create or update them in a running Grafana")
    pub.add_argument("--url", required=True, help="Grafana's base URL, e.g. http://grafana:3000")
    pub.add_argument(
        "--token",
        default=os.environ.get("GRAFANA_TOKEN"),
        help="service account token with the Admin role (default: $GRAFANA_TOKEN)",
    )
    pub.add_argument("--timeout", type=float, default=10.0, help="seconds per request (10)")
    _database_options(pub)
    pub.set_defaults(func=cmd_publish)
