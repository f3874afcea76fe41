"""The ``dothi`` command line: one entry point for operators, wiring every package together."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import ConfigError, DothiError
from core.logs import setup_logging
from core.settings import Settings, load_settings
from dothi import cmd_city

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from dothi.stack import LocalStack

log = logging.getLogger("dothi")

EXIT_CONFIG = 2


def _stack(settings: Settings) -> LocalStack:
    from dothi.stack import LocalStack  # noqa: PLC0415

    return LocalStack.at(
        settings.home,
        settings.pg_port,
        settings.mqtt_port,
        allow_anonymous=settings.mqtt_allow_anonymous,
        tls_port=settings.mqtt_tls_port,
        mtls_port=settings.mqtt_mtls_port,
        max_inflight=settings.ingest_receive_maximum,
    )


def _prepare_database(settings: Settings) -> None:
    from store import areas, migrate  # noqa: PLC0415

    url = settings.db_url()
    migrate.migrate(url)  # logs each migration it applies
    version, licence = migrate.timescaledb_info(url)
    log.info("TimescaleDB %s, licence %s", version, licence)
    n = areas.load(url)
    log.info("areas: %d loaded", n)


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    """Start the embedded stack (unless external services are configured) and every service."""
    from dothi.supervisor import Service, Supervisor  # noqa: PLC0415

    stack = _stack(settings)
    try:
        if settings.embedded_db:
            stack.postgres.start()
        if settings.embedded_broker:
            stack.mosquitto.start()
        _prepare_database(settings)
        if not args.no_simulator:
            n = cmd_city.import_city(settings)
            log.info("simulated city: %d devices registered", n)
        db = {"DOTHI_DATABASE_URL": settings.db_url()}

        def env(role: str) -> dict[str, str]:
            return {**db, "DOTHI_MQTT_URL": settings.broker_url(role)}

        services = [
            Service("ingest", ["ingest"], env("ingest")),
            Service("maintenance", ["maintenance"], db),
            Service("analytics", ["analytics"], env("analytics")),
            Service("api", ["api"], env("analytics")),
        ]
        if not args.no_simulator:
            services.append(
                Service("simulator", ["simulate", "--backfill-hours", "24"], env("simulator"))
            )
        _print_endpoints(settings)
        print("dothi is up; Ctrl-C stops everything.", flush=True)
        Supervisor(services, settings.home / "run", settings.home / "log").run()
    finally:
        if settings.embedded_broker:
            stack.mosquitto.stop()
        if settings.embedded_db:
            stack.postgres.stop()
    return 0


def _print_endpoints(settings: Settings) -> None:
    print(f"  database : {settings.db_url()}")
    broker = settings.mqtt_url or f"mqtt://127.0.0.1:{settings.mqtt_port}"
    print(f"  broker   : {broker}")
    if settings.embedded_broker:
        secrets = (settings.home / "secrets").resolve()
        print(f"             (credentials: user dothi-admin, password in {secrets}/mqtt-admin.pw)")
        if settings.mqtt_tls_port:
            print(
                f"  TLS      : mqtts://127.0.0.1:{settings.mqtt_tls_port} (CA {secrets}/ca/ca.crt)"
            )
        if settings.mqtt_mtls_port:
            print(f"  mTLS     : mqtts://127.0.0.1:{settings.mqtt_mtls_port} (client certificates)")
    api = f"http://{settings.api_host}:{settings.api_port}"
    print(f"  API      : {api}/api/v1   (OpenAPI docs: {api}/docs)")
    print(f"  STA      : {api}/sta/v1.1   (OGC SensorThings API)")
    print(f"  portal   : {api}/portal   (operations console: {api}/ops)")
    print(f"  logs     : {(settings.home / 'log').resolve()}")
    print("  API key  : .venv/bin/dothi keys create --name me --scopes read:all,alerts:write")


def cmd_status(settings: Settings, _: argparse.Namespace) -> int:
    """Say what runs and where; exit 1 when the database or the broker is down."""
    import psycopg  # noqa: PLC0415

    from dothi.stack import port_open  # noqa: PLC0415

    ok = True
    url = settings.db_url()
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            row = conn.execute(
                "SELECT extversion, current_setting('timescaledb.license', true),"
                " (SELECT count(*) FROM schema_migrations)"
                " FROM pg_extension WHERE extname = 'timescaledb'"
            ).fetchone()
        detail = (
            f"TimescaleDB {row[0]} ({row[1]}), {row[2]} migrations" if row else "no timescaledb"
        )
        print(f"database    up    {url}  {detail}")
    except psycopg.Error as exc:
        ok = False
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"database    DOWN  {url}  ({reason})")
    if settings.embedded_broker:
        host, port = "127.0.0.1", settings.mqtt_port
        shown = f"mqtt://{host}:{port}"
    else:
        from urllib.parse import urlsplit  # noqa: PLC0415

        parts = urlsplit(settings.mqtt_url or "")
        host, port = parts.hostname or "", parts.port or 1883
        shown = f"{parts.scheme}://{host}:{port}"
    if port_open(port, host):
        print(f"broker      up    {shown}")
    else:
        ok = False
        print(f"broker      DOWN  {shown}")
    state_file = settings.home / "run" / "services.json"
    if state_file.exists():
        state = json.loads(state_file.read_text())
        for name, svc in state["services"].items():
            pid = svc["pid"]
            alive = pid is not None and Path(f"/proc/{pid}").exists()
            mark = "up  " if alive else "DOWN"
            print(f"{name:<11} {mark}  pid {pid}  restarts {svc['restarts']}  log {svc['log']}")
    else:
        print("services    not running under 'dothi up'")
    return 0 if ok else 1


def cmd_stack(settings: Settings, args: argparse.Namespace) -> int:
    """Start or stop only the embedded database and broker."""
    stack = _stack(settings)
    if args.action == "start":
        stack.start()
        _prepare_database(settings)
        _print_endpoints(settings)
    else:
        stack.stop()
    return 0


def cmd_db(settings: Settings, args: argparse.Namespace) -> int:
    from store import migrate  # noqa: PLC0415

    url = settings.db_url()
    if args.action == "migrate":
        done = migrate.migrate(url)
        for mig in done:
            print(f"applied {mig.version:04d}_{mig.name}")
        if not done:
            print("schema is up to date")
    version, licence = migrate.timescaledb_info(url)
    print(f"TimescaleDB {version}, licence {licence}")
    return 0


def cmd_areas(settings: Settings, args: argparse.Namespace) -> int:
    from store import areas  # noqa: PLC0415

    n = areas.load(settings.db_url(), Path(args.file) if args.file else None)
    print(f"loaded {n} areas")
    return 0


def cmd_ingest(settings: Settings, args: argparse.Namespace) -> int:
    """Run ingest: one worker here, or N supervised worker processes."""
    from ingest.service import run_worker  # noqa: PLC0415

    if args.slot is not None:
        return run_worker(settings, args.slot)
    workers = args.workers or settings.ingest_workers
    if workers == 1:
        return run_worker(settings, 0)
    from dothi.supervisor import Service, Supervisor  # noqa: PLC0415

    services = [Service(f"ingest-{i}", ["ingest", "--slot", str(i)]) for i in range(workers)]
    Supervisor(services, settings.home / "run" / "ingest", settings.home / "log").run()
    return 0


def cmd_devices(settings: Settings, args: argparse.Namespace) -> int:
    import psycopg  # noqa: PLC0415

    from dothi import devices  # noqa: PLC0415
    from store import devices as registry  # noqa: PLC0415

    if args.action == "add":
        dev = registry.Device(
            id=args.id,
            kind=args.kind,
            name=args.name,
            area_id=args.area,
            lat=args.lat,
            lon=args.lon,
            public=args.public,
        )
        issued = devices.add(
            settings,
            dev,
            credentials=not args.no_credentials,
            cert_dir=Path(args.cert) if args.cert else None,
        )
        print(f"device {issued.device_id} registered")
        if issued.cert:
            print(f"  client certificate: {issued.cert} (key {issued.key}, CA {issued.ca})")
            print(f"  connect with TLS to: mqtts://127.0.0.1:{settings.mqtt_mtls_port}")
        if issued.password:
            print(f"  MQTT username: {issued.username}")
            print(f"  MQTT password: {issued.password}   (shown once; store it on the device)")
            print(f"  publish to   : dothi/v1/devices/{issued.device_id}/up")
            print(
                f"  broker       : mqtts://<this host>:{settings.mqtt_tls_port} (TLS, CA "
                f"{settings.home.resolve() / 'mosquitto' / 'tls' / 'ca.crt'}; the client id is the "
                f"username there); local tests: mqtt://127.0.0.1:{settings.mqtt_port}"
            )
        elif not settings.embedded_broker:
            print("  external broker: provision its MQTT credential there (DOTHI_MQTT_URL is set)")
        return 0
    if args.action == "revoke":
        if devices.revoke(settings, args.id):
            print(
                f"MQTT credential of {args.id} removed; the broker reloaded, cut off its"
                " connection and refuses its publishes"
            )
            return 0
        print("external broker: revoke the credential there", file=sys.stderr)
        return 1
    with psycopg.connect(settings.db_url()) as conn:
        rows = registry.list_devices(conn, kind=args.kind, area_id=args.area)
    print(f"{'id':<24} {'kind':<13} {'area':<24} {'public':<6} last_seen")
    for d in rows:
        seen = d.last_seen.isoformat(timespec="seconds") if d.last_seen else "-"
        print(f"{d.id:<24} {d.kind:<13} {d.area_id or '-':<24} {_yes(d.public):<6} {seen}")
    print(f"({len(rows)} devices)")
    return 0


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def cmd_deadletters(settings: Settings, args: argparse.Namespace) -> int:
    import psycopg  # noqa: PLC0415

    url = settings.db_url()
    if args.action == "replay":
        from ingest.replay import replay  # noqa: PLC0415

        outcomes = replay(settings, ids=args.id or None, reason=args.reason, limit=args.limit)
        ok = sum(1 for o in outcomes if o.ok)
        for o in outcomes:
            if not o.ok:
                print(f"#{o.id}: still refused: {o.reason}: {o.detail}")
        print(
            f"replayed {len(outcomes)} dead letters: {ok} ingested, "
            f"{len(outcomes) - ok} still refused"
        )
        return 0
    with psycopg.connect(url) as conn:
        if args.action == "show":
            if not args.id:
                print("dothi: error: show needs --id", file=sys.stderr)
                return EXIT_CONFIG
            for dl_id in args.id:
                row = conn.execute(
                    "SELECT id, received_at, topic, reason, detail, device_id, replayed_at, payload"
                    " FROM dead_letters WHERE id = %s",
                    (dl_id,),
                ).fetchone()
                if row is None:
                    print(f"dead letter #{dl_id} does not exist", file=sys.stderr)
                    return 1
                payload = bytes(row[7])
                print(f"#{row[0]}  received {row[1].isoformat()}  topic {row[2]}")
                print(f"  reason : {row[3]}")
                print(f"  detail : {row[4]}")
                print(f"  device : {row[5] or '-'}   replayed: {row[6] or 'no'}")
                print(f"  payload ({len(payload)} bytes): {payload[:2000]!r}")
            return 0
        rows = conn.execute(
            "SELECT id, received_at, reason, topic, left(detail, 80) FROM dead_letters"
            " WHERE (%(reason)s::text IS NULL OR reason = %(reason)s)"
            " AND replayed_at IS NULL ORDER BY id DESC LIMIT %(limit)s",
            {"reason": args.reason, "limit": args.limit},
        ).fetchall()
        summary = conn.execute(
            "SELECT reason, count(*) FROM dead_letters WHERE replayed_at IS NULL"
            " GROUP BY reason ORDER BY count(*) DESC"
        ).fetchall()
    for r in rows:
        print(f"#{r[0]:<7} {r[1].isoformat(timespec='seconds')}  {r[2]:<18} {r[3]}  {r[4]}")
    print("by reason: " + (", ".join(f"{r}={n}" for r, n in summary) or "none"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dothi",
        description="dothi: smart-city IoT data platform (MQTT -> TimescaleDB -> analytics, API).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("up", help="start the whole platform (embedded stack by default)")
    p.add_argument("--no-simulator", action="store_true", help="do not run the simulated city")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("status", help="show what runs and where")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("stack", help="start or stop only the embedded PostgreSQL and Mosquitto")
    p.add_argument("action", choices=("start", "stop"))
    p.set_defaults(func=cmd_stack)

    p = sub.add_parser("db", help="database schema")
    p.add_argument("action", choices=("migrate", "info"))
    p.set_defaults(func=cmd_db)

    p = sub.add_parser("areas", help="administrative areas")
    p.add_argument("action", choices=("load",))
    p.add_argument("--file", help="areas CSV (default: the shipped Nam Định file)")
    p.set_defaults(func=cmd_areas)

    p = sub.add_parser("ingest", help="consume MQTT and store readings (ack after commit)")
    p.add_argument(
        "--workers",
        type=int,
        choices=range(1, 65),
        metavar="N",
        help="worker processes in the shared subscription group (default DOTHI_INGEST_WORKERS)",
    )
    p.add_argument("--slot", type=int, help=argparse.SUPPRESS)  # one worker process of N
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("devices", help="register devices and issue their MQTT credentials")
    dsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = dsub.add_parser("add", help="register a device; on the embedded broker, issue a password")
    a.add_argument("id", help="device id = its MQTT username and topic segment")
    a.add_argument("--kind", default="unknown", help="air_quality, noise, weather, river_gauge, …")
    a.add_argument("--name")
    a.add_argument("--area", help="area id (see store/data/areas_nam_dinh.csv)")
    a.add_argument("--lat", type=float)
    a.add_argument("--lon", type=float)
    a.add_argument("--public", action="store_true", help="visible on the public portal and API")
    a.add_argument("--no-credentials", action="store_true", help="register only")
    a.add_argument(
        "--cert", metavar="DIR", help="also issue a client certificate (CN = id) into DIR"
    )
    r = dsub.add_parser("revoke", help="remove a device's MQTT credential")
    r.add_argument("id")
    lst = dsub.add_parser("list", help="list registered devices")
    lst.add_argument("--kind")
    lst.add_argument("--area")
    p.set_defaults(func=cmd_devices)
    cmd_city.register_import(dsub)

    p = sub.add_parser("deadletters", help="inspect and replay refused input")
    p.add_argument("action", choices=("list", "show", "replay"))
    p.add_argument("--id", type=int, action="append", help="dead letter id (repeatable)")
    p.add_argument("--reason", help="only this reason code (e.g. unknown_metric)")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    p.set_defaults(func=cmd_deadletters)

    for name, (_, help_line) in DELEGATED.items():
        sub.add_parser(name, help=help_line, add_help=False)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


# Modules adding sub-commands: each has ``register(sub)``, which adds its parsers and sets
# ``func(settings, args) -> int`` on them (see dothi/cmd_*.py).
COMMAND_MODULES: tuple[str, ...] = (
    "dothi.cmd_api",
    "dothi.cmd_alerts",
    "dothi.cmd_analytics",
    "dothi.cmd_city",
    "dothi.cmd_dashboards",
)


# Sub-commands implemented by other packages' own ``main(argv) -> int`` (they parse their own
# arguments): name -> (module, help line).
DELEGATED: dict[str, tuple[str, str]] = {
    "simulate": ("simulators.cli", "run the simulated Nam Định (see 'dothi simulate --help')"),
    "bench": ("dothi.benchrun", "run a benchmark or all of them (see 'dothi bench --help')"),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"dothi: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(settings.log_level, settings.log_format)
    try:
        if argv and argv[0] in DELEGATED:
            module = importlib.import_module(DELEGATED[argv[0]][0])
            code: int = module.main(argv[1:])
            return code
        args = build_parser().parse_args(argv)
        func: Callable[[Settings, argparse.Namespace], int] = args.func
        return func(settings, args)
    except ConfigError as exc:
        print(f"dothi: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except DothiError as exc:
        print(f"dothi: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"dothi: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        # psycopg is imported lazily; its errors reach here as plain Exceptions.
        if type(exc).__module__.startswith("psycopg"):
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"dothi: error: database: {first}", file=sys.stderr)
            return 1
        raise
