"""A reader that goes away (`pam-guard history | head`) ends every command quietly: exit 0,
nothing more on stderr than when its output is read, as with any Unix tool."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time

import pytest

from tests.cli.conftest import PAM_GUARD

COMMANDS = [
    ("history",),
    ("history", "--format", "csv"),
    ("history", "--format", "json"),
    ("history", "--limit", "5"),
    ("--json", "history"),
    ("status",),
    ("status", "u1"),
    ("trackstat",),
    ("sessions",),
    ("ip", "list"),
    ("audit",),
    ("audit", "verify"),
    ("deliver", "--list"),
    ("check-config",),
    ("explain", "u1", "--ip", "192.0.2.1"),
    ("init-store",),
    ("--help",),
]


@pytest.fixture(scope="module")
def busy(store_template):
    """A site whose history is far larger than a pipe's buffer (64 KiB)."""
    from tests.cli.conftest import Site

    site = Site(template=store_template)
    now = time.time()
    conn = sqlite3.connect(site.store_path)
    with conn:
        conn.executemany(
            "INSERT INTO events (ts, username, channel, service, address, outcome, reasons) "
            "VALUES (?, ?, 'pam', 'sshd', '192.0.2.1', ?, '')",
            [(now - i, f"u{i % 40}", "failure" if i % 3 else "success") for i in range(3000)],
        )
        conn.executemany(
            "INSERT INTO accounts (username, first_seen, last_activity) VALUES (?, ?, ?)",
            [(f"u{i}", now, now) for i in range(40)],
        )
    conn.close()
    yield site
    site.close()


def _with_reader_gone(site, args):
    """Run `pam-guard ARGS` with stdout a pipe whose reader has already left."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [PAM_GUARD, "--config", site.config, *args],
            env=site.env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_reader_gone_ends_the_command_quietly(busy, args):
    """Exit 0, and on stderr only what the command says when its output is read (a note)."""
    done = _with_reader_gone(busy, args)
    read = busy.cli(*args, stdout=subprocess.DEVNULL)
    assert (done.returncode, done.stderr) == (0, read.stderr)


def test_head_of_a_long_history(busy):
    """The reader takes one line and leaves while rows still stream from the store."""
    for fmt in ("table", "csv", "json"):
        proc = subprocess.Popen(
            [PAM_GUARD, "--config", busy.config, "history", "--format", fmt],
            env=busy.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read().decode()
        proc.stderr.close()
        assert (proc.wait(timeout=120), err) == (0, ""), fmt
