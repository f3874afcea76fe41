"""deploy/docker-compose.yml and deploy/Dockerfile, checked by structure: no Docker engine runs
where dothi is built and tested (ENVIRONMENT.md), so the file is parsed and every part that
refers to dothi is checked against the code: sub-commands parse, the services' dependencies and
volumes exist, Grafana reads what the export job writes, every package reaches the image, and
the export command runs as the compose file runs it."""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from dothi.cli import DELEGATED, build_parser

# PyYAML (comes with schemathesis, a test dependency) parses the files as Grafana and Docker
# would; imported by name so mypy needs no stubs, and a missing module fails loudly.
yaml = importlib.import_module("yaml")

ROOT = Path(__file__).resolve().parents[1]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
_DEFAULTED = re.compile(r"\$\{([A-Z0-9_]+):-([^}]*)\}")


def _dothi_commands(service: dict[str, Any]) -> list[list[str]]:
    """The dothi argument lists a service runs (through the image's entrypoint or sh -c)."""
    command = [_DEFAULTED.sub(lambda m: m.group(2), str(c)) for c in service["command"]]
    if service.get("entrypoint") != ["sh", "-c"]:
        return [command]
    runs = []
    for part in " ".join(command).split("&&"):
        words = shlex.split(part.strip().removeprefix("exec "))
        assert words[0] == "dothi", part
        runs.append(words[1:])
    return runs


def _parses(argv: list[str]) -> None:
    if argv[0] in DELEGATED:
        from simulators.cli import build_parser as sim_parser

        sim_parser().parse_args(argv[1:])
        return
    args = build_parser().parse_args(argv)
    assert isinstance(args, argparse.Namespace)
    assert callable(args.func)


def test_the_stack_has_every_part() -> None:
    assert SERVICES["timescaledb"]["image"].startswith("timescale/timescaledb-ha:")
    assert SERVICES["mosquitto"]["image"].startswith("eclipse-mosquitto:")
    assert SERVICES["grafana"]["image"].startswith("grafana/grafana-oss:")
    dothi = {name for name, s in SERVICES.items() if s.get("build")}
    assert {"migrate", "ingest", "maintenance", "analytics", "api", "grafana-provision"} <= dothi
    for name in dothi:
        assert SERVICES[name]["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert SERVICES[name]["image"] == "dothi:latest"  # one image for every service


@pytest.mark.parametrize("name", sorted(n for n, s in SERVICES.items() if s.get("build")))
def test_services_run_real_dothi_subcommands(name: str) -> None:
    for argv in _dothi_commands(SERVICES[name]):
        _parses(argv)


def test_dependencies_volumes_and_configs_exist() -> None:
    volumes = set(COMPOSE["volumes"])
    for name, service in SERVICES.items():
        for dep in service.get("depends_on", {}):
            assert dep in SERVICES, f"{name} depends on unknown {dep}"
            assert dep != name
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            assert source in volumes, f"{name}: volume {source} is not declared"
        for config in service.get("configs", []):
            assert config["source"] in COMPOSE["configs"]
    # One-shot jobs must not be restarted forever.
    for job in ("migrate", "grafana-provision", "mosquitto-passwd"):
        assert SERVICES[job]["restart"] == "no"
    conf = COMPOSE["configs"]["mosquitto_conf"]["content"]
    assert "allow_anonymous false" in conf
    assert "password_file /mosquitto/secrets/passwd" in conf


def test_grafana_reads_what_the_export_job_writes() -> None:
    export = SERVICES["grafana-provision"]
    (argv,) = _dothi_commands(export)
    args = build_parser().parse_args(argv)
    assert args.func.__name__ == "cmd_export"
    export_dir = args.dir
    mounts = {m.split(":")[0]: m.split(":")[1] for m in export["volumes"]}
    grafana = SERVICES["grafana"]
    grafana_mounts = {m.split(":")[0]: m.split(":")[1] for m in grafana["volumes"]}
    (volume,) = [v for v, path in mounts.items() if path == export_dir]
    # The same path on both sides, so the provider's absolute dashboards path is valid there.
    assert grafana_mounts[volume] == export_dir
    assert grafana["environment"]["GF_PATHS_PROVISIONING"] == f"{export_dir}/provisioning"
    # The data source names a variable Grafana has; the database is reached by service name.
    assert args.password_env in grafana["environment"]
    assert args.password_env in export["environment"]
    host, port = args.db_host.split(":")
    assert host in SERVICES
    assert port == "5432"
    assert grafana["depends_on"]["grafana-provision"]["condition"] == (
        "service_completed_successfully"
    )


def test_every_variable_is_documented() -> None:
    text = (ROOT / "deploy" / "docker-compose.yml").read_text(encoding="utf-8")
    variables = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    assert {"POSTGRES_PASSWORD", "DOTHI_MQTT_PASSWORD", "DOTHI_GRAFANA_DB_PASSWORD"} <= variables
    guide = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert [v for v in sorted(variables) if f"`{v}`" not in guide] == []


def test_dockerfile_builds_every_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    copied = re.findall(r"^COPY (\S+)/ \1/$", DOCKERFILE, flags=re.MULTILINE)
    assert sorted(copied) == sorted(packages)
    for line in re.findall(r"^COPY (.+)$", DOCKERFILE, flags=re.MULTILINE):
        for source in line.split()[:-1]:
            assert (ROOT / source.rstrip("/")).exists(), source
    base = re.search(r"^FROM python:(\d+)\.(\d+)", DOCKERFILE, flags=re.MULTILINE)
    assert base is not None
    wanted = re.search(r">=(\d+)\.(\d+)", project["project"]["requires-python"])
    assert wanted is not None
    assert (int(base[1]), int(base[2])) >= (int(wanted[1]), int(wanted[2]))
    assert 'ENTRYPOINT ["dothi"]' in DOCKERFILE
    assert re.search(r"^USER dothi$", DOCKERFILE, flags=re.MULTILINE), "runs unprivileged"


def test_export_runs_as_the_compose_file_runs_it(tmp_path: Path, db_url: str) -> None:
    export = SERVICES["grafana-provision"]
    (argv,) = _dothi_commands(export)
    out = tmp_path / "export"
    argv = [str(out) if a == "/export" else a for a in argv]
    argv = ["127.0.0.1:5432" if a == "timescaledb:5432" else a for a in argv]
    env = {
        "DOTHI_DATABASE_URL": db_url,
        "DOTHI_HOME": str(tmp_path / "home"),
        "DOTHI_GRAFANA_DB_PASSWORD": "compose-test-password-1",
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "dothi", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    ds = yaml.safe_load((out / "provisioning" / "datasources" / "dothi.yaml").read_text())
    assert ds["datasources"][0]["secureJsonData"]["password"] == "${DOTHI_GRAFANA_DB_PASSWORD}"
    assert len(list((out / "dashboards").glob("*.json"))) == 5
