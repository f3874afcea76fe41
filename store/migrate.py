"""Versioned SQL migrations: ``store/migrations/NNNN_name.sql``, each applied in one transaction.

Applied versions are recorded in ``schema_migrations``; a session advisory lock keeps two
processes (say, two ``dothi up`` on one database) from applying the same migration twice.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import psycopg

from core.errors import DothiError

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x646F746869  # "dothi"


class MigrationError(DothiError):
    """A migration file is malformed or failed to apply."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """The migrations shipped with this version of dothi, in order."""
    found = []
    for entry in resources.files("store.migrations").iterdir():
        m = _NAME.match(entry.name)
        if m is None:
            continue
        found.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {versions}")
    return found


def applied(conn: psycopg.Connection[tuple[object, ...]]) -> set[int]:
    """Versions already applied to this database."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    return {int(str(r[0])) for r in conn.execute("SELECT version FROM schema_migrations")}


def migrate(url: str) -> list[Migration]:
    """Apply every pending migration; return those applied (empty when up to date)."""
    done: list[Migration] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            have = applied(conn)
            for mig in available():
                if mig.version in have:
                    continue
                log.info("applying migration %04d_%s", mig.version, mig.name)
                try:
                    with conn.transaction():
                        conn.execute(mig.sql.encode())
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                            (mig.version, mig.name),
                        )
                except psycopg.Error as exc:
                    raise MigrationError(
                        f"migration {mig.version:04d}_{mig.name} failed: {exc}"
                    ) from exc
                done.append(mig)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return done


def timescaledb_info(url: str) -> tuple[str, str]:
    """(extension version, licence) of the database's TimescaleDB."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT extversion, current_setting('timescaledb.license', true)"
            " FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
    if row is None:
        raise MigrationError("the timescaledb extension is not installed in this database")
    return str(row[0]), str(row[1] or "unknown")
