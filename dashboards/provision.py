"""Grafana provisioning for dothi: the read-only data source, the dashboards and their provider.

``export(directory, …)`` writes::

    DIR/provisioning/datasources/dothi.yaml   the PostgreSQL data source (role dothi_grafana)
    DIR/provisioning/dashboards/dothi.yaml    a file provider reading DIR/dashboards
    DIR/dashboards/<uid>.json                 one file per dashboard

Point Grafana's provisioning path (``GF_PATHS_PROVISIONING``) at ``DIR/provisioning``. The
password of ``dothi_grafana`` comes from the settings (``DOTHI_GRAFANA_DB_PASSWORD``) or is
generated once into
``DOTHI_HOME/secrets/grafana-db.pw``; :func:`set_reader_password` makes the database agree.
It is never part of the repository: with ``password_env`` the data source file names an
environment variable for Grafana to read instead of holding the password itself.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import sql

from core.errors import ConfigError, DothiError
from dashboards import (
    DATASOURCE_NAME,
    DATASOURCE_TYPE,
    DATASOURCE_UID,
    FOLDER_TITLE,
    FOLDER_UID,
    build_all,
)

if TYPE_CHECKING:
    from pathlib import Path

    from core.settings import Settings

READER_ROLE: Final = "dothi_grafana"
SECRET_FILE: Final = "grafana-db.pw"  # noqa: S105 (a file name, not a password)


class ProvisionError(DothiError):
    """The read-only role or the export directory is not usable; the message says why."""


@dataclass(frozen=True, slots=True)
class DbTarget:
    """The database as Grafana reaches it (not necessarily as dothi does: another host name
    inside a container network, say).

    Attributes:
        host: host name or address.
        port: TCP port.
        database: database name.
        sslmode: libpq sslmode Grafana uses (``disable``, ``require``, ``verify-full`` …).
    """

    host: str
    port: int
    database: str
    sslmode: str = "disable"

    @classmethod
    def from_url(cls, url: str, *, host: str | None = None, sslmode: str | None = None) -> DbTarget:
        """From a PostgreSQL URL; ``host`` (``name`` or ``name:port``) overrides its host."""
        parts = urlsplit(url)
        target = cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            database=unquote(parts.path.lstrip("/")) or "postgres",
            sslmode=sslmode or "disable",
        )
        if host:
            name, _, port = host.rpartition(":") if ":" in host else (host, "", "")
            try:
                target = cls(
                    name, int(port) if port else target.port, target.database, target.sslmode
                )
            except ValueError:
                raise ConfigError(f"--db-host must be HOST or HOST:PORT, got {host!r}") from None
        return target


def reader_password(settings: Settings) -> str:
    """The password of ``dothi_grafana``: ``DOTHI_GRAFANA_DB_PASSWORD``, else DOTHI_HOME/secrets
    (generated once)."""
    configured = settings.grafana_db_password
    if configured:
        return str(configured)
    path = settings.home / "secrets" / SECRET_FILE
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    password = secrets.token_urlsafe(24)
    # Created with 0600 from the start: never readable by others, even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(password + "\n")
    return password


def set_reader_password(db_url: str, password: str) -> None:
    """Let ``dothi_grafana`` log in with ``password`` (the role comes from migration 0040)."""
    try:
        with psycopg.connect(db_url, autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (READER_ROLE,)
            ).fetchone()
            if exists is None:
                raise ProvisionError(
                    f"role {READER_ROLE} does not exist: run 'dothi db migrate' as a user with"
                    " CREATEROLE (migration 0040 creates it)"
                )
            # Utility statements take no bound parameters; Literal quotes the value safely.
            conn.execute(
                sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
                    sql.Identifier(READER_ROLE), sql.Literal(password)
                )
            )
    except psycopg.errors.InsufficientPrivilege:
        raise ProvisionError(
            f"cannot set the password of {READER_ROLE}: the database user lacks CREATEROLE"
            " (set it as an administrator, or use --no-db and set it yourself)"
        ) from None
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ProvisionError(
            f"cannot reach the database to set the reader password: {first}"
        ) from None


def datasource(target: DbTarget, password: str) -> dict[str, Any]:
    """The PostgreSQL data source (the Grafana HTTP API's and provisioning's shape)."""
    return {
        "name": DATASOURCE_NAME,
        "uid": DATASOURCE_UID,
        "type": DATASOURCE_TYPE,
        "access": "proxy",
        "url": f"{target.host}:{target.port}",
        "user": READER_ROLE,
        "isDefault": False,
        "editable": False,
        "jsonData": {
            "database": target.database,
            "sslmode": target.sslmode,
            "postgresVersion": 1500,
            "timescaledb": True,
            # The finest rollup tier is 1 minute: $__interval never goes below it.
            "timeInterval": "1m",
            "maxOpenConns": 10,
            "maxIdleConns": 2,
            "connMaxLifetime": 14400,
        },
        "secureJsonData": {"password": password},
    }


def _yaml_scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    # A JSON string is a valid YAML double-quoted scalar: no ambiguity (yes/no, :, #) possible.
    return json.dumps(str(value), ensure_ascii=False)


def to_yaml(value: object, indent: int = 0) -> str:
    """Block-style YAML of dicts, lists and scalars (what Grafana's provisioning files hold)."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{key}:")
                lines.append(to_yaml(item, indent + 2))
            else:
                empty = "{}" if isinstance(item, dict) else "[]"
                shown = empty if isinstance(item, dict | list) else _yaml_scalar(item)
                lines.append(f"{pad}{key}: {shown}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list) and item:
                inner = to_yaml(item, indent + 2).splitlines()
                lines.append(f"{pad}- {inner[0].lstrip()}")
                lines.extend(inner[1:])
            elif isinstance(item, dict | list):
                lines.append(f"{pad}- {'{}' if isinstance(item, dict) else '[]'}")
            else:
                lines.append(f"{pad}- {_yaml_scalar(item)}")
    else:
        lines.append(pad + _yaml_scalar(value))
    return "\n".join(lines)


def _write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    tmp.chmod(mode)
    tmp.replace(path)  # atomic: Grafana polling the folder never reads half a file
    return path


def export(
    directory: Path,
    target: DbTarget,
    password: str | None,
    *,
    dothi_url: str,
    password_env: str | None = None,
    grafana_path: str | None = None,
) -> list[Path]:
    """Write the provisioning files; return their paths.

    Args:
        directory: where to write (created if needed).
        target: the database as Grafana reaches it.
        password: the reader password written into the data source file (mode 0600).
        dothi_url: base URL of the dothi API, for the alert tables' links to /ops.
        password_env: write ``${NAME}`` instead of the password: Grafana reads it from its
            environment when it loads the file.
        grafana_path: ``directory`` as Grafana sees it (another mount point in a container);
            default: its absolute path here.
    """
    if password is None and password_env is None:
        raise ProvisionError("a password or the name of an environment variable is needed")
    directory = directory.resolve()
    seen_as = (grafana_path or str(directory)).rstrip("/")
    secret = f"${{{password_env}}}" if password_env else str(password)
    ds = datasource(target, secret)
    ds["orgId"] = 1
    written = [
        _write(
            directory / "provisioning" / "datasources" / "dothi.yaml",
            "# dothi: read-only TimescaleDB data source (role dothi_grafana). Generated by\n"
            "# 'dothi dashboards export'; holds a password unless exported with --password-env.\n"
            + to_yaml({"apiVersion": 1, "datasources": [ds]})
            + "\n",
            0o644 if password_env else 0o600,
        )
    ]
    provider = {
        "apiVersion": 1,
        "providers": [
            {
                "name": "dothi",
                "orgId": 1,
                "folder": FOLDER_TITLE,
                "folderUid": FOLDER_UID,
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 60,
                "options": {"path": f"{seen_as}/dashboards", "foldersFromFilesStructure": False},
            }
        ],
    }
    written.append(
        _write(
            directory / "provisioning" / "dashboards" / "dothi.yaml",
            "# dothi dashboards provider. Generated by 'dothi dashboards export'.\n"
            + to_yaml(provider)
            + "\n",
        )
    )
    for uid, model in build_all(dothi_url).items():
        text = json.dumps(model, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        written.append(_write(directory / "dashboards" / f"{uid}.json", text))
    return written
