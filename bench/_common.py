"""Shared pieces of the benchmarks: a private stack, the machine's description, the report file.

Benchmarks are programs, not tests: they print figures and ratios and record them in
docs/benchmarks.md, one section per benchmark, with the machine they ran on.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import statistics
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "benchmarks.md"


def bench_home(prefix: str) -> Path:
    """A folder under /tmp that the postgres and mosquitto users can reach (when run as root)."""
    home = Path(tempfile.mkdtemp(prefix=f"dothi-bench-{prefix}-", dir="/tmp"))
    home.chmod(0o755)
    return home


def remove(home: Path) -> None:
    shutil.rmtree(home, ignore_errors=True)


def machine() -> str:
    """One line naming the machine: CPU, cores, memory, OS, PostgreSQL/TimescaleDB, Mosquitto."""
    cpu = "unknown CPU"
    with Path("/proc/cpuinfo").open() as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with Path("/proc/meminfo").open() as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
                break
    debian = (
        Path("/etc/debian_version").read_text().strip()
        if Path("/etc/debian_version").exists()
        else "?"
    )
    mosq = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True, check=False).stdout
    mosq_v = re.search(r"version (\S+)", mosq)
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_kb / 1024 / 1024:.0f} GiB RAM, Debian {debian}, "
        f"Python {platform.python_version()}, Mosquitto {mosq_v.group(1) if mosq_v else '?'}"
    )


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def run_stamp() -> str:
    """The line saying when and on what a benchmark ran: ``_Run <UTC time> on <machine>._``."""
    return f"_Run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} on {machine()}._"


def _section_pattern(title: str) -> re.Pattern[str]:
    return re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)


def read_section(title: str) -> str | None:
    """The text under the ``## title`` heading of docs/benchmarks.md, or None when absent.

    For a benchmark that keeps several runs in its section (e.g. a full-size run and the
    quick default one) and replaces only its own part.
    """
    if not REPORT.exists():
        return None
    found = _section_pattern(title).search(REPORT.read_text(encoding="utf-8"))
    return found.group(0).split("\n", 1)[1].strip() if found else None


def write_section(title: str, body: str, *, stamp: bool = True) -> None:
    """Replace (or append) the ``## title`` section of docs/benchmarks.md.

    With ``stamp`` (the default) the section starts with :func:`run_stamp`; without it the
    body carries its own stamps (one per run it holds).
    """
    text = REPORT.read_text(encoding="utf-8") if REPORT.exists() else "# Benchmarks\n"
    head = f"{run_stamp()}\n\n" if stamp else ""
    section = f"## {title}\n\n{head}{body.strip()}\n"
    pattern = _section_pattern(title)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text)  # the body is text, not a template
    else:
        text = text.rstrip() + "\n\n" + section
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(text.rstrip() + "\n", encoding="utf-8")


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its reaped children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return (utime + stime + cutime + cstime) / ticks


def proc_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
