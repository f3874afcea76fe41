"""Test harness: a private PostgreSQL+TimescaleDB and a private Mosquitto for the whole session.

Both are started by :mod:`dothi.stack` (the same code as ``dothi up``) on free ports in a folder
under /tmp that the ``postgres`` and ``mosquitto`` users can reach when the suite runs as root.
Each test module gets its own database, cloned from a migrated template, so modules never see each
other's rows.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings as hypothesis_settings

from dothi.stack import LocalStack, Mosquitto, free_port
from store import areas, migrate

TEMPLATE_DB = "dothi_template"

# The machines are shared and noisy: a property test must never fail on a slow example.
hypothesis_settings.register_profile("dothi", deadline=None)
hypothesis_settings.load_profile("dothi")


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    home = Path(tempfile.mkdtemp(prefix="dothi-test-", dir="/tmp"))
    home.chmod(0o755)
    st = LocalStack.at(home, free_port(), free_port(), fast=True)
    st.start()
    try:
        yield st
    finally:
        st.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def template_db(stack: LocalStack) -> str:
    admin = stack.postgres.url("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}")
        conn.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    url = stack.postgres.url(TEMPLATE_DB)
    migrate.migrate(url)
    areas.load(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        # TimescaleDB's scheduler connects to every database with the extension, which would
        # block CREATE DATABASE … TEMPLATE; a template that refuses connections is left alone.
        conn.execute(f"ALTER DATABASE {TEMPLATE_DB} WITH ALLOW_CONNECTIONS false")
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (TEMPLATE_DB,),
        )
    return TEMPLATE_DB


def _new_database(stack: LocalStack, template: str, hint: str) -> str:
    name = re.sub(r"[^a-z0-9_]", "_", hint.lower())[-40:] + "_" + uuid.uuid4().hex[:6]
    with psycopg.connect(stack.postgres.url("postgres"), autocommit=True) as conn:
        for attempt in range(50):
            try:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE {template}')
                break
            except psycopg.errors.ObjectInUse:
                # A background worker may still be leaving the template: wait it out.
                if attempt == 49:
                    raise
                time.sleep(0.1)
    return stack.postgres.url(name)


@pytest.fixture(scope="module")
def db_url(stack: LocalStack, template_db: str, request: pytest.FixtureRequest) -> str:
    """A migrated database (areas loaded) of this test module's own."""
    return _new_database(stack, template_db, request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture
def fresh_db_url(stack: LocalStack, template_db: str, request: pytest.FixtureRequest) -> str:
    """A migrated database of this test's own (for tests that count rows)."""
    return _new_database(stack, template_db, request.node.name)


@pytest.fixture
def empty_db_url(stack: LocalStack, request: pytest.FixtureRequest) -> str:
    """An empty database, not migrated."""
    name = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[-40:] + "_" + uuid.uuid4().hex[:6]
    with psycopg.connect(stack.postgres.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return stack.postgres.url(name)


@pytest.fixture
def uid() -> str:
    """A short unique token for per-test device ids and topics."""
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def tls_broker() -> Iterator[Mosquitto]:
    """A broker of its own (per test module) with the TLS and mTLS listeners of a local CA, in
    a folder the mosquitto user can reach."""
    home = Path(tempfile.mkdtemp(prefix="dothi-tls-", dir="/tmp"))
    home.chmod(0o755)
    broker = Mosquitto(home, free_port(), tls_port=free_port(), mtls_port=free_port())
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(home, ignore_errors=True)
