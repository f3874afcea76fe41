"""``dothi bench PART [options]``: run one benchmark, or ``all`` of them as ``make bench`` does.

The benchmarks are programs in the source tree's ``bench/`` (not part of the installed package):
each starts its own private stack, prints its table and updates docs/benchmarks.md. Options
after PART go to the benchmark (``dothi bench ingest --help``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Sequence

BENCH_DIR: Final = Path(__file__).resolve().parents[1] / "bench"
PARTS: Final[dict[str, tuple[str, str]]] = {
    "ingest": ("ingest_bench.py", "MQTT → TimescaleDB: drain, live, alerts, outage, peers"),
    "storage": ("storage_bench.py", "rollup tiers against raw time_bucket"),
    "api": ("api_bench.py", "REST API latency and throughput"),
    "sta": ("sta_bench.py", "SensorThings pages and $filter"),
    "formats": ("formats_bench.py", "payload decoders, per message"),
    "soak": ("soak.py", "long run with faults (make soak)"),
}
# What `make bench` runs: the whole picture in under 15 minutes.
ALL: Final = ("ingest", "storage", "api", "sta")


def _usage() -> str:
    lines = ["usage: dothi bench PART [options]   (PART options: dothi bench PART --help)", ""]
    lines += [f"  {name:<8} {help_}" for name, (_, help_) in PARTS.items()]
    lines.append(f"  {'all':<8} {', '.join(ALL)} in turn (what `make bench` runs)")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        (sys.stdout if argv else sys.stderr).write(_usage() + "\n")
        return 0 if argv else 2
    part, rest = argv[0], list(argv[1:])
    if part != "all" and part not in PARTS:
        sys.stderr.write(f"dothi bench: unknown part {part!r}\n{_usage()}\n")
        return 2
    if not BENCH_DIR.is_dir():
        sys.stderr.write(
            f"dothi bench: no benchmarks at {BENCH_DIR}: they live in the source tree; run "
            "this from a clone of the repository\n"
        )
        return 2
    for name in ALL if part == "all" else (part,):
        sys.stdout.write(f"== dothi bench {name}\n")
        sys.stdout.flush()
        code = subprocess.call([sys.executable, str(BENCH_DIR / PARTS[name][0]), *rest])
        if code:
            sys.stderr.write(f"dothi bench: {name} failed (exit {code})\n")
            return code
    return 0
