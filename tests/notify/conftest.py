"""Fixtures of the notification tests: a temp config and SQLite store, a Gate on a fake clock,
the installed `pam-guard` command, and the real SMTP server of tests/support/smtp.py."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time

import pytest

from pam_guard.gate import Gate
from tests.support.fixtures import write_site
from tests.support.smtp import SmtpServer

PAM_GUARD = "/opt/pam-guard/bin/pam-guard"
ADMIN = "admin@example.org"
SENDER = "pam-guard@host.example.org"


class Clock:
    """A fake clock for the Gate. It starts two hours in the past, so that what the gate
    queues is already due for `pam-guard deliver`, which reads the real clock."""

    def __init__(self) -> None:
        self.now = time.time() - 2 * 3600

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Site:
    """One test's pam-guard: config file, store, audit key, and ways to drive them."""

    def __init__(self, root, smtp_port: int, overrides: dict, url: str | None = None) -> None:
        self.root = root
        self.url = url or f"sqlite:///{root}/store/pam-guard.db"
        raw = {
            "store": {"url": self.url},
            "notify": {
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp_port,
                "from": SENDER,
                "admin": ADMIN,
            },
        }
        self.config, self.settings = write_site(root, raw, overrides)
        self.clock = Clock()
        self.gate = Gate(self.settings, clock=self.clock)
        self.env = dict(os.environ, PAM_GUARD_CACHE_DIR=str(root / "cache"))

    def cli(self, *args, timeout: float = 120, env=None) -> subprocess.CompletedProcess:
        """Run the installed admin command on this site's config."""
        return subprocess.run(
            [PAM_GUARD, "--config", self.config, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(self.env, **(env or {})),
            check=False,
        )

    def deliver(self, *args, **kw) -> subprocess.CompletedProcess:
        return self.cli("deliver", *args, **kw)

    def outbox(self) -> list[sqlite3.Row]:
        """Every outbox row (SQLite sites)."""
        path = self.url.split(":///", 1)[1]
        with sqlite3.connect(path) as conn:
            conn.row_factory = sqlite3.Row
            return conn.execute("SELECT * FROM outbox ORDER BY id").fetchall()

    def sql(self, statement: str, params=()) -> None:
        path = self.url.split(":///", 1)[1]
        with sqlite3.connect(path) as conn:
            conn.execute(statement, params)

    # --- driving the gate ------------------------------------------------------------------

    def fail(self, user: str, address: str | None, service: str = "sshd"):
        self.clock.advance(5)
        return self.gate.record_failure(self.gate.attempt(user, "pam", service, address, address))

    def login(self, user: str, address: str | None, service: str = "sshd"):
        self.clock.advance(5)
        return self.gate.login(self.gate.attempt(user, "pam", service, address, address))

    def preauth(self, user: str, address: str | None, service: str = "sshd"):
        self.clock.advance(5)
        return self.gate.preauth(self.gate.attempt(user, "pam", service, address, address))

    def close(self) -> None:
        self.gate.close()


@pytest.fixture
def smtp():
    """A running SMTP server on 127.0.0.1 (stopped at the end of the test)."""
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def make_site(tmp_path, smtp):
    """make_site(**{section: {key: value}}) -> Site, wired to the `smtp` server."""
    sites = []

    def make(url: str | None = None, port: int | None = None, **overrides) -> Site:
        root = tmp_path / f"site{len(sites)}"
        root.mkdir(mode=0o700)
        site = Site(root, port or smtp.port, overrides, url)
        sites.append(site)
        return site

    yield make
    for site in sites:
        site.close()


def by_kind(messages, kind: str) -> list:
    """The received messages of one notice kind (pam-guard marks each with its kind)."""
    return [m for m in messages if m.message["X-Pam-Guard-Kind"] == kind]


def body(received) -> str:
    return received.message.get_body(preferencelist=("plain",)).get_content()
