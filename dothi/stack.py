"""The embedded local stack: a private PostgreSQL+TimescaleDB cluster and a private Mosquitto.

``dothi up`` and the test suite both use these classes, so what the tests exercise is what an
operator runs. Both servers live in one folder (``DOTHI_HOME``, default ``./var``); a second start
reuses the data. As root, PostgreSQL runs as ``postgres`` and Mosquitto drops to ``mosquitto``;
their folders are handed to those users (ENVIRONMENT.md: otherwise persistence silently fails).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import DothiError
from dothi.tls import LocalCA

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

log = logging.getLogger(__name__)

PG_SUPERUSER = "postgres"
DB_NAME = "dothi"
# MQTT roles with their own credential on the embedded broker (see Mosquitto.acl_text).
MQTT_ROLES = ("ingest", "analytics", "simulator", "admin")


class StackError(DothiError):
    """A local server could not be set up or started; the message says which and why."""


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def _is_root() -> bool:
    return os.geteuid() == 0


def _chown_tree(path: Path, user: str) -> None:
    pw = pwd.getpwnam(user)
    for p in (path, *path.rglob("*")):
        os.lchown(p, pw.pw_uid, pw.pw_gid)


def _check_reachable(path: Path, user: str) -> None:
    """Fail clearly when ``user`` cannot reach ``path`` (e.g. a clone under /root)."""
    pw = pwd.getpwnam(user)
    for parent in reversed(path.resolve().parents):
        st = parent.stat()
        others_x = st.st_mode & 0o001
        owner_x = st.st_uid == pw.pw_uid and st.st_mode & 0o100
        group_x = st.st_gid == pw.pw_gid and st.st_mode & 0o010
        if not (others_x or owner_x or group_x):
            raise StackError(
                f"the '{user}' user cannot enter {parent} (mode {oct(st.st_mode & 0o777)}), so it "
                f"cannot run a server under {path}; set DOTHI_HOME to a folder it can reach "
                "(e.g. /var/lib/dothi) or run dothi as an ordinary user"
            )


def find_pg_bin() -> Path:
    """The bin folder of the newest installed PostgreSQL that has TimescaleDB."""
    root = Path("/usr/lib/postgresql")
    majors = (
        sorted((int(p.name) for p in root.glob("*") if p.name.isdigit()), reverse=True)
        if root.is_dir()
        else []
    )
    for major in majors:
        bindir = root / str(major) / "bin"
        share = Path(f"/usr/share/postgresql/{major}/extension/timescaledb.control")
        if (bindir / "pg_ctl").exists() and share.exists():
            return bindir
    raise StackError(
        "no PostgreSQL with TimescaleDB found under /usr/lib/postgresql; run ./scripts/setup"
    )


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise StackError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class Postgres:
    """A private PostgreSQL cluster with TimescaleDB preloaded, on 127.0.0.1:port."""

    root: Path
    port: int
    fast: bool = False  # tests: fsync off (a process crash still loses nothing committed)

    @property
    def data_dir(self) -> Path:
        return self.root / "pg" / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "pg" / "run"

    @property
    def log_file(self) -> Path:
        return self.root / "pg" / "postgres.log"

    def url(self, dbname: str = DB_NAME) -> str:
        return f"postgresql://{PG_SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def _run(self, argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        if _is_root():
            kwargs = {"user": PG_SUPERUSER, "group": PG_SUPERUSER, "extra_groups": []}
        proc: subprocess.CompletedProcess[str] = subprocess.run(  # noqa: PLW1510 (checked below)
            list(argv),
            capture_output=True,
            text=True,
            cwd=self.root,
            start_new_session=True,  # Ctrl-C in a terminal must not reach the server directly
            **kwargs,  # type: ignore[call-overload]
        )
        if check and proc.returncode != 0:
            out = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise StackError(f"{Path(argv[0]).name} failed: " + " | ".join(out))
        return proc

    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> bool:
        """Create the cluster if it does not exist yet; True when it was created."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.initialized():
            return False
        bindir = find_pg_bin()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if _is_root():
            _check_reachable(self.root, PG_SUPERUSER)
            _chown_tree(self.data_dir.parent, PG_SUPERUSER)
        self._run(
            [
                str(bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                PG_SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ]
        )
        conf = [
            "# dothi: embedded cluster settings",
            "shared_preload_libraries = 'timescaledb'",
            "timescaledb.telemetry_level = off",
            "listen_addresses = '127.0.0.1'",
            "max_connections = 200",
            "shared_buffers = 512MB",
            "work_mem = 16MB",
            "maintenance_work_mem = 256MB",
            "timezone = 'UTC'",
            "log_timezone = 'UTC'",
            "log_min_messages = warning",
        ]
        if self.fast:
            conf += ["fsync = off", "full_page_writes = off", "shared_buffers = 128MB"]
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as f:
            f.write("\n" + "\n".join(conf) + "\n")
        log.info("created PostgreSQL cluster in %s", self.data_dir)
        return True

    def running(self) -> bool:
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return False
        try:
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            return False
        except PermissionError:
            return True
        return True

    def start(self) -> None:
        """Start the cluster (creating it first if needed) and wait until it accepts queries."""
        self.init()
        if self.running():
            log.info("PostgreSQL already running on port %d", self.port)
            return
        if port_open(self.port):
            raise StackError(
                f"port {self.port} is already in use by another program; set DOTHI_PG_PORT"
            )
        bindir = find_pg_bin()
        sock = str(self.socket_dir) if len(str(self.socket_dir)) < 90 else ""
        opts = f"-p {self.port} -c unix_socket_directories='{sock}'"
        self._run(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-o",
                opts,
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        self._ensure_database()
        log.info("PostgreSQL listening on 127.0.0.1:%d", self.port)

    def _ensure_database(self) -> None:
        import psycopg  # noqa: PLC0415 (keep `dothi --help` fast)

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DB_NAME}"')

    def stop(self, mode: str = "fast") -> None:
        if not self.running():
            return
        self._run(
            [str(find_pg_bin() / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"],
            check=False,
        )
        log.info("PostgreSQL stopped")

    def kill(self) -> None:
        """SIGKILL the postmaster (fault tests)."""
        pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signal.SIGKILL)


@dataclass
class Mosquitto:
    """A private Mosquitto broker on 127.0.0.1:port with persistence, auth and ACLs."""

    root: Path
    port: int
    allow_anonymous: bool = False
    autosave_interval: int = 60
    max_queued_messages: int = 1_000_000
    sys_interval: int = 10
    # Unacked QoS 1 messages in flight to one client. MQTT 5 clients lower it with their Receive
    # Maximum; for MQTT 3.1.1 clients this is what bounds ingest's memory during an outage.
    max_inflight: int = 1000
    tls_port: int = 0  # TLS listener, password auth (0 = none)
    mtls_port: int = 0  # TLS listener, client-certificate auth: CN = username (0 = none)

    _proc: subprocess.Popen[bytes] | None = None

    @property
    def dir(self) -> Path:
        return self.root / "mosquitto"

    @property
    def conf_file(self) -> Path:
        return self.dir / "mosquitto.conf"

    @property
    def passwd_file(self) -> Path:
        return self.dir / "passwd"

    @property
    def acl_file(self) -> Path:
        return self.dir / "acl"

    @property
    def revoked_file(self) -> Path:
        return self.dir / "revoked"

    @property
    def tls_dir(self) -> Path:
        return self.dir / "tls"

    @property
    def pid_file(self) -> Path:
        return self.dir / "mosquitto.pid"

    @property
    def log_file(self) -> Path:
        return self.dir / "mosquitto.log"

    @property
    def secrets_dir(self) -> Path:
        return self.root / "secrets"

    def url(self, role: str | None = None) -> str:
        if role is None:
            return f"mqtt://127.0.0.1:{self.port}"
        return f"mqtt://dothi-{role}:{self.role_password(role)}@127.0.0.1:{self.port}"

    def role_password(self, role: str) -> str:
        return (self.secrets_dir / f"mqtt-{role}.pw").read_text(encoding="utf-8").strip()

    @staticmethod
    def acl_base() -> str:
        """ACL rules for the platform's own roles and the device topic patterns."""
        return """\
# dothi: generated by dothi.stack; edits are overwritten at start.
# Devices publish only under their own id (the MQTT username).
pattern write dothi/v1/devices/%u/up
pattern read dothi/v1/devices/%u/down
pattern write tele/%u/#

user dothi-ingest
topic read dothi/v1/devices/+/up
topic read application/+/device/+/event/up
topic read v3/+/devices/+/up
topic read tele/+/SENSOR
topic read $SYS/#

user dothi-analytics
topic readwrite dothi/v1/alerts/#
topic read dothi/v1/devices/+/up

user dothi-simulator
topic write dothi/v1/devices/#
topic write application/#
topic write v3/#
topic write tele/#

user dothi-admin
topic readwrite #
topic read $SYS/#
"""

    def _conf_text(self) -> str:
        persist = str(self.dir / "data") + "/"
        lines = [
            "# dothi: generated by dothi.stack; edits are overwritten at start",
            "per_listener_settings false",
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            f"password_file {self.passwd_file}",
            f"acl_file {self.acl_file}",
            "persistence true",
            f"persistence_location {persist}",
            f"autosave_interval {self.autosave_interval}",
            # Ingest holds up to this many unacked messages while a batch commits.
            f"max_inflight_messages {self.max_inflight}",
            # The outage budget: a stopped ingest's session queues this much, then drops
            # (visible in $SYS/broker/store/messages/count and the ingest lag metric).
            f"max_queued_messages {self.max_queued_messages}",
            "max_queued_bytes 0",
            "persistent_client_expiration 14d",
            "max_packet_size 16777216",
            "set_tcp_nodelay true",
            f"sys_interval {self.sys_interval}",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        ]
        ca, crt, key = (
            self.tls_dir / "ca.crt",
            self.tls_dir / "server.crt",
            self.tls_dir / "server.key",
        )
        # The device-facing listeners force client id = username (for mTLS: the certificate's
        # CN), so a device cannot claim another's client id and disconnect it (MQTT lets the
        # newer connection win). The option is per listener and needs no per_listener_settings
        # (Mosquitto 2.0.11, tested): the password file and ACL stay shared. The local plain
        # listener keeps client ids as sent: ingest slots share one username.
        if self.tls_port:
            lines += [
                f"listener {self.tls_port} 127.0.0.1",
                f"cafile {ca}",
                f"certfile {crt}",
                f"keyfile {key}",
                "tls_version tlsv1.2",
                "use_username_as_clientid true",
            ]
        if self.mtls_port:
            lines += [
                f"listener {self.mtls_port} 127.0.0.1",
                f"cafile {ca}",
                f"certfile {crt}",
                f"keyfile {key}",
                "tls_version tlsv1.2",
                "require_certificate true",
                # The certificate's CN is the MQTT username: ACL patterns (%u) apply unchanged.
                "use_identity_as_username true",
                "use_username_as_clientid true",
            ]
        return "\n".join(lines) + "\n"

    def ensure_tls(self) -> LocalCA:
        """The local CA and the broker's server certificate (created once)."""
        ca = LocalCA(self.secrets_dir / "ca").ensure()
        self.tls_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ca.cert, self.tls_dir / "ca.crt")
        if not (self.tls_dir / "server.crt").exists():
            crt, key = ca.issue("server", self.tls_dir, server=True)
            crt.rename(self.tls_dir / "server.crt")
            key.rename(self.tls_dir / "server.key")
        return ca

    def _ensure_credentials(self, roles: Iterable[str] = MQTT_ROLES) -> None:
        self.secrets_dir.mkdir(parents=True, exist_ok=True)
        self.secrets_dir.chmod(0o700)
        for role in roles:
            secret = self.secrets_dir / f"mqtt-{role}.pw"
            if not secret.exists():
                secret.write_text(secrets.token_urlsafe(24) + "\n", encoding="utf-8")
                secret.chmod(0o600)
            set_password(self.passwd_file, f"dothi-{role}", self.role_password(role))

    def revoked_users(self) -> list[str]:
        """Usernames denied everything by the ACL (``dothi devices revoke``), sorted."""
        try:
            text = self.revoked_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return sorted({line.strip() for line in text.splitlines() if line.strip()})

    def set_revoked(self, user: str, *, revoked: bool) -> None:
        """Add ``user`` to (or remove it from) the revoked list; ``write_acl`` applies it."""
        if not user or any(c.isspace() for c in user) or user.startswith("#"):
            raise StackError(f"{user!r} cannot be written to the broker's ACL")
        users = set(self.revoked_users())
        if revoked:
            users.add(user)
        else:
            users.discard(user)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.revoked_file.write_text("".join(f"{u}\n" for u in sorted(users)), encoding="utf-8")

    def acl_text(self) -> str:
        """The ACL file: :meth:`acl_base`, then a deny-all block per revoked user.

        Mosquitto checks a user's ``deny`` topics before any grant, ``pattern`` grants included
        (2.0.11, tested), and re-reads the ACL on reload for clients already connected: a
        revoked device's publishes are refused (MQTT 5: reason code 135) even when it stays
        connected, as a client-certificate device does once its password is gone.
        """
        blocks = [f"\nuser {u}\ntopic deny #\n" for u in self.revoked_users()]
        if blocks:
            blocks.insert(0, "\n# Revoked (dothi devices revoke): denied every topic.")
        return self.acl_base() + "".join(blocks)

    def write_acl(self) -> None:
        """Write the broker's ACL file (devices are covered by its %u patterns)."""
        self.acl_file.write_text(self.acl_text(), encoding="utf-8")
        if _is_root():
            _chown_tree(self.dir, "mosquitto")

    def prepare(self) -> None:
        """Write config, credentials and ACL (idempotent)."""
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        self.passwd_file.touch(exist_ok=True)
        if self.tls_port or self.mtls_port:
            self.ensure_tls()
        self.conf_file.write_text(self._conf_text(), encoding="utf-8")
        self._ensure_credentials()
        self.write_acl()
        if _is_root():
            _check_reachable(self.dir, "mosquitto")

    def running_pid(self) -> int | None:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        except PermissionError:
            return None
        return pid if b"mosquitto" in cmdline else None

    def start(self) -> None:
        """Start the broker (stopping a stale one of ours first) and wait until it listens."""
        stale = self.running_pid()
        if stale is not None:
            log.info("stopping a Mosquitto left running from an earlier start (pid %d)", stale)
            self._signal_and_wait(stale, signal.SIGTERM)
        if port_open(self.port):
            raise StackError(
                f"port {self.port} is already in use by another program; set DOTHI_MQTT_PORT"
            )
        self.prepare()
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise StackError("mosquitto is not installed; run ./scripts/setup")
        stderr_file = self.dir / "mosquitto.stderr"
        with stderr_file.open("wb") as err_out:
            self._proc = subprocess.Popen(
                [binary, "-c", str(self.conf_file)],
                stdout=subprocess.DEVNULL,
                stderr=err_out,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{self._proc.pid}\n")

        def up() -> bool:
            if self._proc is not None and self._proc.poll() is not None:
                lines = stderr_file.read_text(errors="replace").splitlines()
                if self.log_file.exists():
                    lines += self.log_file.read_text(errors="replace").splitlines()[-5:]
                raise StackError("mosquitto exited at start: " + " | ".join(lines[-8:]))
            return port_open(self.port)

        _wait_for(up, 20, f"Mosquitto on port {self.port}")
        log.info("Mosquitto listening on 127.0.0.1:%d", self.port)

    def _signal_and_wait(self, pid: int, sig: signal.Signals, timeout: float = 20) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.pid == pid:
                if self._proc.poll() is not None:
                    return
            else:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM: the broker saves its persistent state and exits."""
        pid = self.running_pid()
        if pid is not None:
            self._signal_and_wait(pid, signal.SIGTERM)
            log.info("Mosquitto stopped")
        self._proc = None
        self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL (fault tests): state since the last autosave is lost."""
        pid = self.running_pid()
        if pid is not None:
            self._signal_and_wait(pid, signal.SIGKILL)
        self._proc = None

    def reload(self, timeout: float = 20) -> bool:
        """SIGHUP: re-read the password and ACL files; return once the broker has applied them.

        Mosquitto reloads inside its single-threaded main loop and logs "Reloading config." as
        it starts to, so once that line is in the log every packet it reads afterwards meets the
        new files. Mosquitto 2.0.11 also disconnects, during the reload, connected clients whose
        password is no longer in the file (tested; its manual says they are not affected).

        Returns:
            False when no broker of ours is running (the files apply at its next start).
        """
        pid = self.running_pid()
        if pid is None:
            return False
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        os.kill(pid, signal.SIGHUP)

        def reloaded() -> bool:
            try:
                with self.log_file.open("rb") as f:
                    size = f.seek(0, os.SEEK_END)
                    f.seek(offset if size >= offset else 0)  # from the start if it was rotated
                    return b"Reloading config." in f.read()
            except FileNotFoundError:
                return False

        _wait_for(reloaded, timeout, f"Mosquitto (pid {pid}) to reload its password and ACL files")
        return True


def set_password(passwd_file: Path, user: str, password: str) -> None:
    """Add or update one user in a Mosquitto password file (via ``mosquitto_passwd``)."""
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    passwd_file.touch(exist_ok=True)
    proc = subprocess.run(
        [tool, "-b", str(passwd_file), user, password],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise StackError(f"mosquitto_passwd failed for {user}: {proc.stderr.strip()}")


def delete_password(passwd_file: Path, user: str) -> None:
    """Remove one user from a Mosquitto password file."""
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    subprocess.run([tool, "-D", str(passwd_file), user], capture_output=True, check=False)


@dataclass
class LocalStack:
    """Both servers of the embedded stack, under one home folder."""

    postgres: Postgres
    mosquitto: Mosquitto

    @classmethod
    def at(
        cls,
        home: Path,
        pg_port: int,
        mqtt_port: int,
        *,
        allow_anonymous: bool = False,
        fast: bool = False,
        tls_port: int = 0,
        mtls_port: int = 0,
        max_inflight: int = 1000,
    ) -> LocalStack:
        home = home.resolve()
        return cls(
            Postgres(home, pg_port, fast=fast),
            Mosquitto(
                home,
                mqtt_port,
                allow_anonymous=allow_anonymous,
                tls_port=tls_port,
                mtls_port=mtls_port,
                max_inflight=max_inflight,
            ),
        )

    def start(self) -> None:
        self.postgres.start()
        self.mosquitto.start()

    def stop(self) -> None:
        self.mosquitto.stop()
        self.postgres.stop()
