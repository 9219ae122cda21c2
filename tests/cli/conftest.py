"""Fixtures of the admin-command tests: a private config, audit key and store made by the
installed `pam-guard init-store`, a Gate on a fake clock to record logins as the adapters do,
and the installed `pam-guard` run as a subprocess, as an admin would run it."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import time

import pytest

from pam_guard.config import parse_file, toml_value
from policy.addresses import parse_address
from radius_hook.radius_gate import RadiusGate
from tests.support.fixtures import made_then_removed
from tests.support.postgres import postgres_server, postgres_url  # noqa: F401

PAM_GUARD = "/opt/pam-guard/bin/pam-guard"
HOUR = 3600.0
DAY = 86400.0


class Clock:
    """The Gate's clock: set by the test, so each event lands at a chosen time."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now


class Site:
    """One test's pam-guard: config (0600 in a 0700 dir), audit key, store, CLI and Gate."""

    def __init__(
        self, sections: dict | None = None, url: str | None = None, template: str | None = None
    ) -> None:
        self.dir = tempfile.mkdtemp(prefix="pam-guard-cli-")
        try:
            self._setup(sections, url, template)
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def _setup(self, sections, url, template) -> None:
        os.chmod(self.dir, 0o700)
        self.config = os.path.join(self.dir, "pam-guard.toml")
        self.store_path = os.path.join(self.dir, "store", "pam-guard.db")
        self.url = url or f"sqlite:///{self.store_path}"
        self.env = dict(os.environ, PAM_GUARD_CACHE_DIR=os.path.join(self.dir, "cache"))
        self.env.pop("PAM_GUARD_CONFIG", None)
        self.env.pop("SUDO_USER", None)
        self.key = os.path.join(self.dir, "audit.key")
        fd = os.open(self.key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
        self.clock = Clock()
        self._gate: RadiusGate | None = None
        self.write(sections or {})
        if template is not None and url is None:
            # A copy of a store that `pam-guard init-store` made: the same file, made once.
            os.makedirs(os.path.dirname(self.store_path), mode=0o700)
            shutil.copy2(template, self.store_path)
        elif url is None:
            done = self.cli("init-store")
            assert done.returncode == 0, done.stderr

    # --- config ------------------------------------------------------------------------------

    def write(self, sections: dict) -> None:
        """(Re)write the config; [store] url and a short timeout are filled in."""
        store = {"url": self.url, "timeout_seconds": 2, **sections.get("store", {})}
        lines = ["[store]"] + [f"{k} = {toml_value(v)}" for k, v in store.items()]
        for section, values in sections.items():
            if section != "store":
                lines += [f"[{section}]"] + [f"{k} = {toml_value(v)}" for k, v in values.items()]
        fd = os.open(self.config + ".new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        os.replace(self.config + ".new", self.config)
        if self._gate is not None:
            self._gate.close()
            self._gate = None

    @property
    def settings(self):
        return parse_file(self.config)

    # --- the admin command -------------------------------------------------------------------

    def cli(
        self, *args: str, env: dict | None = None, config: str | None = None, stdout=subprocess.PIPE
    ) -> subprocess.CompletedProcess:
        """Run the installed `pam-guard --config CONFIG ARGS...`."""
        return subprocess.run(
            [PAM_GUARD, "--config", config or self.config, *args],
            env=env or self.env,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )

    def ok(self, *args: str) -> str:
        """stdout of a command that must succeed."""
        done = self.cli(*args)
        assert done.returncode == 0, f"pam-guard {' '.join(args)}: {done.returncode} {done.stderr}"
        return done.stdout

    def json(self, *args: str):
        """The parsed --json output of a command that must succeed."""
        return json.loads(self.ok("--json", *args))

    def peak_rss_mb(self, *args: str, stdout_path: str = os.devnull) -> float:
        """Run a command, its output to `stdout_path`; its peak resident memory in MB."""
        with open(stdout_path, "w") as sink:
            proc = subprocess.Popen(
                [PAM_GUARD, "--config", self.config, *args],
                env=self.env,
                stdout=sink,
                stderr=subprocess.PIPE,
            )
            _pid, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            proc.stderr.close()
        assert proc.returncode == 0, f"pam-guard {' '.join(args)} exited {proc.returncode}"
        return usage.ru_maxrss / 1024.0

    # --- logins through the Gate, as the PAM hook and the RADIUS module record them ---------

    @property
    def gate(self) -> RadiusGate:
        if self._gate is None:
            self._gate = RadiusGate(self.settings, clock=self.clock)
        return self._gate

    def attempt(self, user, address=None, service="sshd", at=None, channel="pam"):
        if at is not None:
            self.clock.now = at
        return self.gate.attempt(user, channel, service, parse_address(address), address)

    def success(self, user, address=None, service="sshd", at=None):
        verdict = self.gate.login(self.attempt(user, address, service, at))
        assert verdict.reasons != ("store_error",), self.gate.last_error
        return verdict

    def failure(self, user, address=None, service="sshd", at=None):
        verdict = self.gate.record_failure(self.attempt(user, address, service, at))
        assert verdict.reasons != ("store_error",), self.gate.last_error
        return verdict

    # --- looking into the store directly (what the tests check) -----------------------------

    def query(self, statement: str, params=()) -> list:
        if self.url.startswith("sqlite"):
            conn = sqlite3.connect(f"file:{self.store_path}?mode=rw", uri=True)
            try:
                return conn.execute(statement, params).fetchall()
            finally:
                conn.close()
        import psycopg2

        conn = psycopg2.connect(self.url)
        try:
            with conn.cursor() as cur:
                cur.execute(statement.replace("?", "%s"), params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.commit()
            conn.close()

    def execute(self, statement: str, params=()) -> None:
        """Change the store behind pam-guard's back (tampering tests)."""
        if self.url.startswith("sqlite"):
            conn = sqlite3.connect(self.store_path)
            with conn:
                conn.execute(statement, params)
            conn.close()
        else:
            self.query(statement, params)

    def close(self) -> None:
        if self._gate is not None:
            self._gate.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def store_template():
    """An SQLite store made by the installed `pam-guard init-store`; tests get copies."""
    site = Site()
    try:
        assert site.cli("init-store").returncode == 0  # a second run upgrades in place
        yield site.store_path
    finally:
        site.close()


@pytest.fixture
def make_site(store_template):
    """Factory of Sites (several per test allowed), removed at teardown."""
    yield from made_then_removed(
        lambda sections=None, url=None: Site(sections, url, template=store_template), Site.close
    )


@pytest.fixture
def site(make_site) -> Site:
    return make_site()
