"""A real, throwaway PostgreSQL 15 cluster for tests and benchmarks.

`start_postgres()` runs `initdb` into a fresh temporary directory owned by the `postgres`
system user (tests run as root, and PostgreSQL refuses to run as root), then starts the
server listening only on 127.0.0.1 on a free port, with its Unix socket inside that
directory, fsync off (the data is thrown away) and trust authentication for local and
127.0.0.1 connections only. The server stops and its directory is removed by `.stop()`,
and at process exit (atexit) as a safety net.

Pytest fixtures (import them into an area's conftest.py):

    from tests.support.postgres import postgres_server, postgres_url  # noqa: F401

- `postgres_server` (session): one running cluster, a `PostgresServer`.
- `postgres_url`: a fresh database for each test, holding the pam-guard schema made by
  `store.migrate.create_or_upgrade`; the fixture's value is its SQLAlchemy URL.

Benchmarks use `start_postgres()` directly.
"""

from __future__ import annotations

import atexit
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

PG_BIN = os.environ.get("PAM_GUARD_PG_BIN", "/usr/lib/postgresql/15/bin")
PG_USER = "postgres"
START_TIMEOUT = 30  # seconds pg_ctl waits for the server to accept connections

TEMPLATE_DB = "pam_guard_template"

_names = itertools.count(1)


class PostgresError(RuntimeError):
    """The test cluster could not be created, started or asked."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a server command as the postgres system user (PostgreSQL refuses root)."""
    return subprocess.run(
        ["runuser", "-u", PG_USER, "--", *argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class PostgresServer:
    """One throwaway cluster: `url(db)`, `create_database(name)`, `pause/resume`, `stop`."""

    def __init__(self, root: str, port: int) -> None:
        self.root = root
        self.data = os.path.join(root, "data")
        self.socket_dir = os.path.join(root, "socket")
        self.log = os.path.join(root, "server.log")
        self.port = port
        self.running = False
        self._stopped = False
        self._template = ""

    # --- addresses -------------------------------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        """The SQLAlchemy URL of database `dbname` on this server (user postgres, no password)."""
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres", autocommit: bool = True):
        """A psycopg2 connection to `dbname` (autocommit by default, for admin statements)."""
        import psycopg2

        conn = psycopg2.connect(
            host="127.0.0.1", port=self.port, user=PG_USER, dbname=dbname, connect_timeout=5
        )
        conn.autocommit = autocommit
        return conn

    def create_database(self, name: str | None = None, template: str | None = None) -> str:
        """Create an empty database (or a copy of `template`); returns its URL."""
        name = name or f"db_{os.getpid()}_{next(_names)}"
        clause = f" TEMPLATE {template}" if template else ""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"{clause}')
        finally:
            conn.close()
        return self.url(name)

    def drop_database(self, name: str) -> None:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()

    def migrated_template(self) -> str:
        """A database migrated to the newest schema, made once; tests get copies of it.

        Copying a template is faster than running the migrations for every test, and it is
        the same schema: `store.migrate.create_or_upgrade` made it.
        """
        if not self._template:
            from store.migrate import create_or_upgrade

            create_or_upgrade(self.create_database(TEMPLATE_DB))
            self._template = TEMPLATE_DB
        return self._template

    # --- life cycle ------------------------------------------------------------------------

    def _init_cluster(self) -> None:
        pw = pwd.getpwnam(PG_USER)
        for path in (self.root, self.socket_dir):
            os.makedirs(path, mode=0o700, exist_ok=True)
            os.chown(path, pw.pw_uid, pw.pw_gid)
        done = _as_postgres(
            f"{PG_BIN}/initdb",
            "-D",
            self.data,
            "-U",
            PG_USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        if done.returncode != 0:
            raise PostgresError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
        with open(os.path.join(self.data, "postgresql.conf"), "a", encoding="utf-8") as conf:
            conf.write(
                "\n# pam-guard test cluster: local only, data thrown away\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 60\nshared_buffers = 64MB\n"
                "log_min_messages = warning\n"
            )
        # Trust only over the socket in our own directory and from 127.0.0.1; nothing else.
        with open(os.path.join(self.data, "pg_hba.conf"), "w", encoding="utf-8") as hba:
            hba.write("local all all trust\nhost all all 127.0.0.1/32 trust\n")

    def resume(self) -> None:
        """Start (or restart after `pause`) the server on its port; waits until it answers."""
        if self.running:
            return
        done = _as_postgres(
            f"{PG_BIN}/pg_ctl",
            "-D",
            self.data,
            "-l",
            self.log,
            "-w",
            "-t",
            str(START_TIMEOUT),
            "-o",
            f"-p {self.port}",
            "start",
            timeout=START_TIMEOUT + 10,
        )
        if done.returncode != 0:
            raise PostgresError(f"pg_ctl start failed: {done.stderr.strip()}\n{self._log_tail()}")
        self.running = True

    def pause(self) -> None:
        """Stop the server but keep its data: tests of a store that is down."""
        if not self.running:
            return
        _as_postgres(f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
        self.running = False

    def stop(self) -> None:
        """Stop the server and remove its directory (safe to call twice)."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.running:
                _as_postgres(f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
                self.running = False
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _log_tail(self) -> str:
        try:
            with open(self.log, encoding="utf-8", errors="replace") as fh:
                return "".join(fh.readlines()[-20:])
        except OSError:
            return ""


def start_postgres(attempts: int = 3) -> PostgresServer:
    """Create and start a throwaway cluster on 127.0.0.1; it stops itself at process exit."""
    if not os.path.exists(os.path.join(PG_BIN, "initdb")):
        raise PostgresError(
            f"PostgreSQL 15 is not installed ({PG_BIN}/initdb missing): "
            "apt-get install postgresql-15"
        )
    root = tempfile.mkdtemp(prefix="pam-guard-store-pg-")
    server = PostgresServer(root, _free_port())
    atexit.register(server.stop)
    try:
        server._init_cluster()
        for attempt in range(attempts):
            try:
                server.resume()
                return server
            except PostgresError:
                # Another process may have taken the port between our probe and the start.
                if attempt == attempts - 1:
                    raise
                server.port = _free_port()
                time.sleep(0.2)
    except BaseException:
        server.stop()
        raise
    return server  # pragma: no cover - the loop returns or raises


# --- pytest fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server():
    """A running throwaway PostgreSQL cluster, shared by the whole test session."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server):
    """URL of a fresh database for this test, with the schema of store.migrate.create_or_upgrade."""
    name = f"t_{os.getpid()}_{next(_names)}"
    url = postgres_server.create_database(name, template=postgres_server.migrated_template())
    yield url
    if postgres_server.running:
        postgres_server.drop_database(name)
