"""``dothi simulate``: a simulated Nam Định publishing over MQTT, and a load generator.

``dothi`` dispatches ``dothi simulate …`` to :func:`main`; ``python -m simulators`` runs it too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import signal
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from core.errors import ConfigError, DothiError
from simulators import faults as fault_mod
from simulators.city import KINDS, load_city
from simulators.faults import FAULTS, FaultPlan
from simulators.load import LoadOptions, run_load
from simulators.publisher import Publisher
from simulators.runner import MqttSink, PrintSink, Summary, backfill, real_time
from simulators.scenarios import SCENARIOS, Scenario
from simulators.stream import Generator

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from types import FrameType

    from simulators.city import DeviceSpec
    from simulators.runner import Sink

log = logging.getLogger(__name__)

PROG = "dothi simulate"
LOCAL_TZ = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")
EXIT_ERROR = 1
EXIT_USAGE = 2

_DESCRIPTION = """\
Simulate the Nam Định smart city over MQTT: air quality, noise, weather, river gauges, smart
meters, street lights and rooftop solar, placed in the province's areas by a city file, with
realistic daily and seasonal shapes, weather coupling, faults and scenarios. Devices publish in
their own formats (native JSON, SenML, ChirpStack v4, The Things Stack v3, Tasmota).

Time modes:
  (default)               real time from now (or --start), until stopped or --duration
  --speed 60              the simulated clock runs 60x faster; timestamps follow it
  --from T --to T         backfill [T, T) as fast as possible, then exit
  --backfill-hours H      backfill the last H hours, then continue in real time
                          (what `dothi up` runs: --backfill-hours 24)

`dothi simulate load --help` describes the load generator for benchmarks.
Times are ISO 8601 (2026-10-01, 2026-10-01T06:00, …Z); without an offset they are local
(Asia/Ho_Chi_Minh). At the end a JSON summary is printed on stdout (for --print, on stderr)."""

_EPILOG = f"""\
faults:    {", ".join(FAULTS)} (or all)
scenarios: {", ".join(SCENARIOS)}
kinds:     {", ".join(KINDS)}
examples:
  dothi simulate --backfill-hours 24
  dothi simulate --from 2026-10-01 --to 2026-11-01 --devices 10000
  dothi simulate --speed 60 --scenario flood
  dothi simulate --faults spike,flatline=0.2 --fault-rate 0.05 --duration 6h
  dothi simulate --from 2026-01-10 --to 2026-01-10T03:00 --kinds river_gauge --print
See docs/simulators.md."""

_LOAD_DESCRIPTION = """\
Publish a fixed number of messages at a fixed rate (or as fast as possible) for benchmarks.
Every reading is a distinct (device, metric, time) key with the send time as its timestamp; at
most --max-outstanding QoS 1 messages are unacknowledged at once. At the end one JSON line on
stdout reports messages sent/acknowledged, readings, unique keys, duration, rate and the
device-id prefix, so the run can be reconciled with what the database holds."""


def _out(line: str, *, err: bool = False) -> None:
    """The command's own output: summaries on stdout, errors on stderr."""
    stream = sys.stderr if err else sys.stdout
    stream.write(line + "\n")
    stream.flush()


class UsageError(DothiError):
    """A command-line value is invalid."""


def parse_time(text: str) -> float:
    """``now`` or an ISO 8601 date/time (local Asia/Ho_Chi_Minh without an offset) → epoch s."""
    if text.strip().lower() == "now":
        return time.time()
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"not a date or time: {text!r} (e.g. 2026-10-01 or 2026-10-01T06:00)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=LOCAL_TZ)
    return dt.timestamp()


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``6h`` or ``2d`` → seconds."""
    m = _DURATION.match(text)
    if not m:
        raise UsageError(f"not a duration: {text!r} (e.g. 90s, 30m, 6h, 2d)")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def _add_mqtt(p: argparse.ArgumentParser, max_outstanding: int) -> None:
    g = p.add_argument_group("MQTT")
    g.add_argument(
        "--mqtt-url",
        metavar="URL",
        help="mqtt[s]://user:password@host:port (default: DOTHI_MQTT_URL, else the embedded "
        "broker with the simulator's own credential)",
    )
    g.add_argument("--qos", type=int, choices=(0, 1), default=1, help="QoS (default 1)")
    g.add_argument(
        "--mqtt-version", choices=("5", "3.1.1"), default="5", help="protocol (default 5)"
    )
    g.add_argument("--client-id", help="MQTT client id (default: dothi-sim-<pid>-<random>)")
    g.add_argument(
        "--max-outstanding",
        type=int,
        default=max_outstanding,
        metavar="N",
        help=f"most unacknowledged messages at once (default {max_outstanding})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``dothi simulate`` argument parser (with the ``load`` sub-command)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    city = parser.add_argument_group("city")
    city.add_argument("--city", metavar="FILE", help="city file (default: the shipped Nam Định)")
    city.add_argument(
        "--devices",
        type=int,
        metavar="N",
        help="exactly N devices: fewer keeps the file's first ones, more replicates its fleets "
        "across the areas (e.g. 10000)",
    )
    city.add_argument("--kinds", metavar="LIST", help="only these device kinds (comma-separated)")
    city.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    city.add_argument(
        "--list-devices", action="store_true", help="print the devices as JSON lines and exit"
    )
    when = parser.add_argument_group("time")
    when.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    when.add_argument("--start", metavar="TIME", help="simulated clock start (default now)")
    when.add_argument(
        "--duration", metavar="D", help="stop after D of simulated time (90s, 30m, 6h, 2d)"
    )
    when.add_argument("--from", dest="from_", metavar="TIME", help="backfill from TIME …")
    when.add_argument("--to", metavar="TIME", help="… to TIME, as fast as possible, then exit")
    when.add_argument(
        "--backfill-hours",
        type=float,
        metavar="H",
        help="backfill the last H hours first, then continue in real time",
    )
    when.add_argument(
        "--batch",
        type=int,
        default=60,
        metavar="K",
        help="in backfill, up to K readings per message where the format allows (native "
        "batch arrays, SenML records with times; default 60; 1 = one per message)",
    )
    trouble = parser.add_argument_group("faults and scenarios")
    trouble.add_argument(
        "--faults", metavar="LIST", help="faults to inject: name[=rate],… or all (see below)"
    )
    trouble.add_argument(
        "--fault-rate",
        type=float,
        default=fault_mod.DEFAULT_RATE,
        metavar="R",
        help=f"rate of faults listed without one (default {fault_mod.DEFAULT_RATE})",
    )
    trouble.add_argument(
        "--no-device-faults",
        action="store_true",
        help="ignore the per-device faults of the city file",
    )
    trouble.add_argument("--scenario", choices=SCENARIOS, help="play a scenario")
    trouble.add_argument(
        "--scenario-start",
        metavar="TIME",
        help="when the scenario begins (default: the start of real time, else --from)",
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "--print",
        dest="print_",
        action="store_true",
        help="write 'topic<TAB>payload' lines to stdout instead of publishing",
    )
    _add_mqtt(parser, 10_000)

    sub = parser.add_subparsers(dest="command", metavar="{load}")
    lp = sub.add_parser(
        "load",
        prog=f"{PROG} load",
        help="load generator for benchmarks",
        description=_LOAD_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lp.add_argument("--devices", type=int, default=1000, metavar="N", help="devices (1000)")
    lp.add_argument(
        "--rate", default="max", metavar="R|max", help="messages per second, or max (default)"
    )
    lp.add_argument(
        "--messages", type=int, default=100_000, metavar="M", help="messages to send (100000)"
    )
    lp.add_argument(
        "--readings-per-message",
        type=int,
        default=1,
        metavar="K",
        help="readings per message (default 1)",
    )
    lp.add_argument("--format", choices=("native", "senml"), default="native")
    lp.add_argument("--prefix", help="device id prefix (default: load-<random hex>)")
    _add_mqtt(lp, 20_000)
    return parser


def _broker_url(args: argparse.Namespace) -> str:
    if args.mqtt_url:
        return str(args.mqtt_url)
    from core.settings import load_settings  # noqa: PLC0415 (pydantic only when needed)

    return load_settings().broker_url("simulator")


def _publisher(args: argparse.Namespace, stop: threading.Event) -> Publisher:
    return Publisher(
        _broker_url(args),
        qos=args.qos,
        max_outstanding=args.max_outstanding,
        protocol=args.mqtt_version,
        client_id=args.client_id,
        stop=stop,
    )


def _cmd_load(args: argparse.Namespace, stop: threading.Event) -> int:
    if args.devices < 1 or args.messages < 0 or args.readings_per_message < 1:
        raise UsageError("--devices and --readings-per-message must be ≥ 1, --messages ≥ 0")
    if args.prefix is not None and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,34}", args.prefix):
        raise UsageError("--prefix: lowercase letters, digits and dashes, at most 35 characters")
    rate: float | None = None
    if str(args.rate).lower() != "max":
        try:
            rate = float(args.rate)
        except ValueError:
            raise UsageError(f"--rate must be a number or max, got {args.rate!r}") from None
        if rate <= 0:
            raise UsageError("--rate must be positive")
    options = LoadOptions(
        devices=args.devices,
        messages=args.messages,
        rate=rate,
        readings_per_message=args.readings_per_message,
        format=args.format,
        prefix=args.prefix,
    )
    publisher = _publisher(args, stop).connect()
    try:
        summary = run_load(publisher, options, stop)
    finally:
        publisher.close()
    _out(json.dumps(summary))
    return 0


def _plan(args: argparse.Namespace, per_device: dict[str, dict[str, float]]) -> FaultPlan:
    rates = fault_mod.parse_faults(args.faults, args.fault_rate)
    return FaultPlan(rates, {} if args.no_device_faults else per_device, args.seed)


def _cmd_run(args: argparse.Namespace, stop: threading.Event) -> int:
    if args.speed <= 0:
        raise UsageError("--speed must be positive")
    if args.batch < 1:
        raise UsageError("--batch must be at least 1")
    if (args.from_ is None) != (args.to is None):
        raise UsageError("--from and --to go together")
    if args.from_ is not None and args.backfill_hours is not None:
        raise UsageError("use either --from/--to or --backfill-hours")
    city = load_city(Path(args.city) if args.city else None, devices=args.devices, seed=args.seed)
    devices = city.devices
    if args.kinds:
        wanted = {k.strip() for k in args.kinds.split(",") if k.strip()}
        unknown = wanted - set(KINDS)
        if unknown:
            raise UsageError(f"unknown kinds {sorted(unknown)} (known: {', '.join(KINDS)})")
        devices = [d for d in devices if d.kind in wanted]
    if args.list_devices:
        for d in devices:
            _out(json.dumps(_device_json(d), ensure_ascii=False))
        return 0

    now = time.time()
    if args.from_ is not None:
        t0, t1 = parse_time(args.from_), parse_time(args.to)
        if t1 <= t0:
            raise UsageError("--to must be after --from")
        mode, rt_start = "backfill", None
    else:
        rt_start = parse_time(args.start) if args.start else now
        t1 = rt_start
        t0 = rt_start - args.backfill_hours * 3600 if args.backfill_hours else rt_start
        mode = "backfill+real-time" if args.backfill_hours else "real-time"
    duration = parse_duration(args.duration) if args.duration else None
    # Accelerated without --start: replay the recent past fast, ending at now (the scenario's
    # length, else 6 h), then carry on in real time; a clock ahead of now would only produce
    # readings that ingest refuses as future-dated.
    catch_up = args.speed > 1 and args.start is None and args.from_ is None
    if catch_up:
        lead = 6 * 3600.0
        if args.scenario:
            lead = Scenario.bind(args.scenario, city, args.seed, now).duration_s
        rt_start = t1 = now - lead
        t0 = rt_start - (args.backfill_hours or 0) * 3600
        mode = f"catch-up ×{args.speed:g} then real-time"
    scenario = None
    if args.scenario:
        start = parse_time(args.scenario_start) if args.scenario_start else (rt_start or t0)
        scenario = Scenario.bind(args.scenario, city, args.seed, start)
        log.info(
            "scenario %s from %s for %.0f h (%d devices singled out)",
            scenario.name,
            datetime.fromtimestamp(start, LOCAL_TZ).isoformat(timespec="minutes"),
            scenario.duration_s / 3600,
            len(scenario.affected),
        )
    plan = _plan(args, city.device_faults)
    summary = Summary(mode, args.seed, len(devices), args.scenario)
    log.info("%d devices, mode %s, seed %d", len(devices), mode, args.seed)

    publisher: Publisher | None = None
    sink: Sink
    if args.print_:
        sink = PrintSink(sys.stdout)
    else:
        publisher = _publisher(args, stop).connect()
        sink = MqttSink(publisher)
    finished = False
    try:
        if t1 > t0:
            gen = Generator(city, devices, args.seed, scenario, plan, batch=args.batch)
            finished = backfill(gen, t0, t1, sink=sink, summary=summary, stop=stop)
        if rt_start is not None and not stop.is_set():
            gen = Generator(city, devices, args.seed, scenario, plan, batch=1)
            finished = real_time(
                gen,
                rt_start,
                sink=sink,
                summary=summary,
                stop=stop,
                speed=args.speed,
                duration_s=duration,
                catch_up=catch_up,
            )
    finally:
        if publisher is not None:
            publisher.close()
    _out(summary.to_json(publisher), err=args.print_)
    if not finished:
        log.info("stopped")
    return 0


def _device_json(d: DeviceSpec) -> dict[str, object]:
    return {
        "id": d.id,
        "kind": d.kind,
        "name": d.name,
        "area_id": d.area_id,
        "lat": d.lat,
        "lon": d.lon,
        "public": d.public,
        "format": d.format,
        "metrics": list(d.metrics),
        "interval_s": d.interval_s,
        "metadata": d.metadata,
    }


class _Signals:
    """SIGINT/SIGTERM set the stop event (main thread only); the old handlers come back after."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.saved: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.saved[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: finishing", signal.Signals(signum).name)
        self.stop.set()

    def __exit__(self, *_: object) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _logging() -> Iterator[None]:
    """Log to stderr unless the caller (``dothi``) has set logging up already."""
    root = logging.getLogger()
    if root.handlers:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    root.addHandler(handler)
    old = root.level
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def main(argv: Sequence[str]) -> int:
    """Run ``dothi simulate`` with ``argv`` (the arguments after ``simulate``).

    Returns:
        The exit status: 0 done (or stopped by a signal), 1 error, 2 bad usage.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:  # --help, or argparse's own usage error (already printed)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    stop = threading.Event()
    try:
        with _logging(), _Signals(stop):
            if args.command == "load":
                return _cmd_load(args, stop)
            return _cmd_run(args, stop)
    except (UsageError, ConfigError) as exc:
        _out(f"{PROG}: error: {exc}", err=True)
        return EXIT_USAGE
    except DothiError as exc:
        _out(f"{PROG}: error: {exc}", err=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
