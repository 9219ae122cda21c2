"""Bad input and broken surroundings: clear messages and the exit codes of SPEC §7
(1 not found or refused, 2 usage or config error, 3 store or directory unreachable)."""

from __future__ import annotations

import os
import socket
import subprocess

from tests.cli.conftest import PAM_GUARD


def test_config_with_an_unknown_key_is_exit_2(site):
    site.write({"lockout": {"max_attempts": 3, "max_attempt": 4}})
    done = site.cli("status")
    assert done.returncode == 2
    assert site.config in done.stderr and "lockout.max_attempt" in done.stderr


def test_config_with_a_wrong_type_is_exit_2(site):
    site.write({"trackstat": {"rating": "twenty"}})
    done = site.cli("history")
    assert done.returncode == 2 and "trackstat.rating" in done.stderr


def test_group_writable_config_is_refused(site):
    os.chmod(site.config, 0o620)
    done = site.cli("status")
    assert done.returncode == 2
    assert site.config in done.stderr and "writable by group or others" in done.stderr


def test_config_in_a_world_writable_directory_is_refused(site):
    os.chmod(site.dir, 0o777)
    try:
        done = site.cli("status")
    finally:
        os.chmod(site.dir, 0o700)
    assert done.returncode == 2 and "<directory>" in done.stderr


def test_missing_and_unreadable_config_is_exit_2(site):
    done = site.cli("status", config=os.path.join(site.dir, "nope.toml"))
    assert done.returncode == 2 and "nope.toml" in done.stderr and "no such file" in done.stderr
    os.mkdir(os.path.join(site.dir, "adir.toml"), 0o700)
    done = site.cli("status", config=os.path.join(site.dir, "adir.toml"))
    assert done.returncode == 2 and "cannot read" in done.stderr


def test_config_unreadable_for_the_caller_is_exit_2(site):
    # An unprivileged admin cannot read root's 0600 config in a 0700 directory.
    done = subprocess.run(
        [
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            PAM_GUARD,
            "--config",
            site.config,
            "status",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=dict(site.env, PAM_GUARD_CACHE_DIR="/nonexistent/cache"),
    )
    assert done.returncode == 2, done.stderr
    assert site.config in done.stderr and "Permission denied" in done.stderr


def test_bad_toml_syntax_is_exit_2(site):
    with open(site.config, "a") as handle:
        handle.write("[lockout\n")
    done = site.cli("status")
    assert done.returncode == 2 and "<syntax>" in done.stderr


def _remove_store(site) -> None:
    for path in (site.store_path, site.store_path + "-wal", site.store_path + "-shm"):
        if os.path.exists(path):
            os.remove(path)


def test_missing_store_is_made_by_any_command(site):
    """SPEC §10: made at first use, at the newest schema, in its existing directory."""
    for args in (
        ("history",),
        ("status", "alice"),
        ("lock", "alice"),
        ("explain", "alice", "--ip", "192.0.2.1"),
        ("trackstat",),
    ):
        _remove_store(site)
        done = site.cli(*args)
        assert done.returncode in (0, 1), (args, done.stderr)  # 1: alice is unknown
        assert "Traceback" not in done.stderr
        assert site.query("SELECT count(*) FROM alembic_version") == [(1,)], args
    assert site.json("history") == []


def test_missing_store_directory_is_exit_3_and_nothing_is_made(site):
    _remove_store(site)
    os.rmdir(os.path.dirname(site.store_path))
    for args in (
        ("status", "alice"),
        ("history",),
        ("lock", "alice"),
        ("explain", "alice", "--ip", "192.0.2.1"),
    ):
        done = site.cli(*args)
        assert done.returncode == 3, (args, done.stderr)
        assert "store unreachable" in done.stderr and "no directory" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not os.path.exists(os.path.dirname(site.store_path))


def test_file_that_is_not_a_store_is_exit_3(site):
    with open(site.store_path, "wb") as handle:
        handle.write(b"this is not a database" * 100)
    for args in (("history",), ("status", "alice"), ("trackstat",)):
        done = site.cli(*args)
        assert done.returncode == 3, (args, done.stderr)


def test_unreachable_postgresql_is_exit_3(site):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    site.write(
        {"store": {"url": f"postgresql://postgres@127.0.0.1:{port}/none", "timeout_seconds": 1}}
    )
    for args in (("history",), ("status",), ("lock", "alice")):
        done = site.cli(*args)
        assert done.returncode == 3, (args, done.stderr)
        assert "store unreachable" in done.stderr


USAGE_ERRORS = [
    ("history", "--since", "yesterday"),
    ("history", "--until", "2026-13-01"),
    ("history", "--since", "1d", "--until", "2d"),
    ("history", "--ip", "300.1.1.0/24"),
    ("history", "--limit", "0"),
    ("history", "--format", "xml"),
    ("ip", "frobnicate", "alice"),
    ("explain", "alice"),
    ("frobnicate",),
]


def test_usage_errors_are_exit_2(site):
    for args in USAGE_ERRORS:
        done = site.cli(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.strip()


def test_audit_key_missing_or_loose_refuses_the_action(site):
    os.chmod(site.key, 0o640)
    done = site.cli("lock", "alice")
    assert done.returncode == 2 and "must be 0600" in done.stderr
    os.remove(site.key)
    done = site.cli("lock", "alice")
    assert done.returncode == 2 and "audit.key" in done.stderr
    # The action was not applied without its audit entry.
    assert site.query("SELECT count(*) FROM accounts WHERE locked_at IS NOT NULL") == [(0,)]
    with open(site.key, "w") as handle:
        handle.write("not hex at all")
    os.chmod(site.key, 0o600)
    done = site.cli("exempt", "alice")
    assert done.returncode == 2 and "not hex" in done.stderr
    assert site.query("SELECT count(*) FROM accounts") == [(0,)]
