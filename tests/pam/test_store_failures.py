"""A store that is gone, corrupt, unopenable or locked, and a config that cannot be used:
the login gets `failure.on_store_error`, within a bounded time, with a syslog line, and the
calling program never crashes (SPEC §8, §12)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time

import pytest

from tests.support.pam import packaged_stack, pamtester

RHOST = "192.0.2.20"
UNAVAILABLE = "login service unavailable"


def remove_store(guard):
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(guard.store_path + suffix)


@contextlib.contextmanager
def directory_gone(guard):
    # A store is made at first use only in a directory that exists (SPEC §10): a path with
    # a typo must not quietly start an empty history somewhere else.
    directory = os.path.dirname(guard.store_path)
    shutil.rmtree(directory)
    yield
    assert not os.path.exists(directory), "the hook must never make the store's directory"
    os.mkdir(directory, 0o700)


@contextlib.contextmanager
def corrupt(guard):
    remove_store(guard)
    with open(guard.store_path, "wb") as handle:
        handle.write(b"this is not an SQLite database\n" * 200)
    yield
    with open(guard.store_path, "rb") as handle:
        assert handle.read(30) == b"this is not an SQLite database", "never repair a store"


@contextlib.contextmanager
def not_a_file(guard):
    # Root reads any file whatever its mode, so "unreadable" is made with a directory.
    remove_store(guard)
    os.mkdir(guard.store_path, 0o700)
    yield
    shutil.rmtree(guard.store_path)


@contextlib.contextmanager
def locked(guard):
    other = sqlite3.connect(guard.store_path, timeout=1, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another writer holding the lock past the timeout
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


TROUBLE = {
    "directory_gone": directory_gone,
    "corrupt": corrupt,
    "not_a_file": not_a_file,
    "locked": locked,
}


@pytest.mark.parametrize("trouble", sorted(TROUBLE))
def test_store_trouble_with_deny_refuses(guarded, user, syslog, trouble):
    guard, service = guarded({"failure": {"on_store_error": "deny"}})
    assert pamtester(service, user.name, user.password, rhost=RHOST, env=guard.env).ok
    with TROUBLE[trouble](guard):
        started = time.monotonic()
        result = pamtester(service, user.name, user.password, rhost=RHOST, env=guard.env)
        elapsed = time.monotonic() - started
    assert result.returncode == 1, result  # refused; a crash would be a signal (< 0)
    assert UNAVAILABLE in result.output
    if trouble == "locked":
        # WAL readers are not blocked by another writer: preauth reads the (unlocked) account
        # and asks for the password; the account phase cannot record and refuses.
        assert "successfully authenticated" in result.output
    else:
        assert "Password:" not in result.output  # refused at preauth
    assert elapsed < 10, f"a store in trouble held the login {elapsed:.1f} s"
    assert any(
        f"event=refused rhost={RHOST} reason=store_error user={user.name} " in line
        for line in syslog.lines()
    )


@pytest.mark.parametrize("trouble", sorted(TROUBLE))
def test_store_trouble_with_allow_lets_the_right_password_in(guarded, user, syslog, trouble):
    guard, service = guarded({"failure": {"on_store_error": "allow"}})
    assert pamtester(service, user.name, user.password, rhost=RHOST, env=guard.env).ok
    with TROUBLE[trouble](guard):
        started = time.monotonic()
        good = pamtester(service, user.name, user.password, rhost=RHOST, env=guard.env)
        elapsed = time.monotonic() - started
        wrong = pamtester(service, user.name, "wrong", rhost=RHOST, env=guard.env)
    assert good.ok, good
    assert elapsed < 10, f"a store in trouble held the login {elapsed:.1f} s"
    # allow never turns a wrong password into a login: authfail still fails the stack.
    assert wrong.returncode == 1 and "Authentication failure" in wrong.output
    assert any("let in" in line and "store" in line for line in syslog.lines())


def test_store_back_after_trouble_works_again(guarded, user):
    guard, service = guarded()
    with locked(guard):
        assert not pamtester(service, user.name, user.password, rhost=RHOST, env=guard.env).ok
    assert pamtester(service, user.name, user.password, rhost=RHOST, env=guard.env).ok


@pytest.mark.parametrize("problem", ["missing", "world_writable", "bad_toml", "unknown_key"])
def test_unusable_config_refuses_with_a_log_line(make_guard, make_service, user, syslog, problem):
    guard = make_guard({"failure": {"on_store_error": "allow"}})  # not readable: deny anyway
    config = guard.path
    if problem == "missing":
        config = os.path.join(guard.dir, "no-such.toml")
    elif problem == "world_writable":
        os.chmod(guard.path, 0o666)
    elif problem == "bad_toml":
        with open(guard.path, "a") as handle:
            handle.write("[lockout\n")
    else:
        with open(guard.path, "a") as handle:
            handle.write("[lockout]\nmax_atempts = 3\n")
    service = make_service(packaged_stack(config))
    result = pamtester(service, user.name, user.password, rhost=RHOST, env=guard.env)
    assert result.returncode == 1 and UNAVAILABLE in result.output
    assert any(config in line and "preauth" in line for line in syslog.lines())


def test_a_deleted_store_is_made_at_the_next_login(guarded, user, syslog):
    """SPEC §10: a SQLite store that does not exist is made at first use, with one log line;
    the login goes on as on a fresh store."""
    guard, service = guarded({"failure": {"on_store_error": "deny"}})
    assert not pamtester(service, user.name, "wrong", rhost=RHOST, env=guard.env).ok
    seen = len(syslog.lines())
    remove_store(guard)
    result = pamtester(service, user.name, user.password, rhost=RHOST, env=guard.env)
    assert result.ok, result
    assert guard.query("SELECT outcome FROM events") == [("success",)]  # a fresh history
    made = [
        line for line in syslog.lines()[seen:] if f"created the store {guard.store_path} " in line
    ]
    assert len(made) == 1, made
