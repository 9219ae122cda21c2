"""Change counters beside a SQLite store (store.changes) and the RADIUS module's kept copies
that rely on them (radius_hook.hot): a copy is current until any other process bumps its
user's counter or the global one, stays current across this process's own commits, and a
bump that lands between the stamp and the read is never hidden."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from policy.types import History
from radius_hook import hot as hot_module
from radius_hook.hot import HotAccounts
from store import changes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "pam-guard.db"
    path.write_bytes(b"")
    os.chmod(path, 0o640)
    return str(path)


@pytest.fixture
def hot(store_path):
    """Kept copies watching the counter file beside `store_path`."""
    made = HotAccounts(store_path + changes.SUFFIX)
    yield made
    made.close()


def test_path_for_only_sqlite_files():
    assert (
        changes.path_for("sqlite:////var/lib/pam-guard/pam-guard.db")
        == "/var/lib/pam-guard/pam-guard.db-changes"
    )
    assert changes.path_for("sqlite:///relative.db") == "relative.db-changes"
    assert changes.path_for("sqlite://") is None
    assert changes.path_for("sqlite:///:memory:") is None
    assert changes.path_for("postgresql://u@localhost/pg") is None


def test_slot_is_stable_across_processes_and_never_global():
    here = [changes.slot_of(u) for u in ("alice", "bob", "é-user", "x" * 300)]
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from store.changes import slot_of; "
        "print([slot_of(u) for u in ('alice', 'bob', 'é-user', 'x' * 300)])"
    )
    other = subprocess.run(
        [sys.executable, "-c", code, ROOT],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, PYTHONHASHSEED="123"),
    )
    assert other.stdout.strip() == str(here)
    assert all(1 <= s < changes.SLOTS for s in here) and len(set(here)) == 4


def test_without_a_reader_writers_bump_nothing_and_make_no_file(store_path):
    """A host where no process keeps copies (PAM only) pays for no counter file."""
    path = store_path + changes.SUFFIX
    assert changes.bump_users(path, ["alice"]) == {}
    assert changes.note_change("sqlite:///" + store_path, None) == {}
    assert not os.path.exists(path)


def test_bump_counts_each_slot_once_in_the_file_a_reader_made_like_the_store(store_path):
    path = store_path + changes.SUFFIX
    changes.Counters(path).close()  # a reader (radiusd) makes it
    assert changes.bump_users(path, ["alice", "alice", "bob"]) == {
        changes.slot_of("alice"): 0,
        changes.slot_of("bob"): 0,
    }
    assert changes.bump_users(path, ["alice"]) == {changes.slot_of("alice"): 1}
    assert changes.bump_users(path, None) == {changes.GLOBAL: 0}
    info = os.stat(path)
    assert info.st_size == changes.SIZE and (info.st_mode & 0o777) == 0o640
    counters = changes.Counters(path)
    try:
        assert counters.value(changes.slot_of("alice")) == 2
        assert counters.value(changes.GLOBAL) == 1
        assert counters.value(changes.slot_of("carol")) == 0 or changes.slot_of("carol") in (
            changes.slot_of("alice"),
            changes.slot_of("bob"),
        )
    finally:
        counters.close()


def test_note_change_is_silent_without_a_usable_file(tmp_path):
    changes.note_change("postgresql://u@localhost/x", ["alice"])  # nothing to tell
    changes.note_change(f"sqlite:///{tmp_path}/missing-dir/pam-guard.db", ["alice"])  # no dir


def test_a_commit_that_names_nobody_bumps_nothing(store_path):
    """A batch of RADIUS successes commits with no user to tell (RadiusGate.record_outcomes):
    no slot moves, not even the global one."""
    url = "sqlite:///" + store_path
    changes.Counters(store_path + changes.SUFFIX).close()  # a reader keeps copies
    before = open(store_path + changes.SUFFIX, "rb").read()
    assert changes.note_change(url, []) == {}
    assert open(store_path + changes.SUFFIX, "rb").read() == before
    slot = changes.slot_of("alice")
    assert changes.note_change(url, ["alice"]) == {slot: 0}  # the values before the bump
    before = open(store_path + changes.SUFFIX, "rb").read()
    assert changes.note_change(url, []) == {}
    assert open(store_path + changes.SUFFIX, "rb").read() == before
    assert changes.note_change(url, ["alice"]) == {slot: 1}


def _history(status="protected"):
    return History(known=True, status=status, last_activity=1.0)


def test_copy_current_until_another_process_writes_the_user(hot):
    account = {"notify_on": ""}
    hot.keep("alice", hot.stamp("alice"), account, _history(), now=100.0)
    hot.keep("bob", hot.stamp("bob"), account, _history(), now=100.0)
    assert hot.get("alice", 101.0) == (account, _history())
    # Another process (its own file descriptor) records something for alice.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); "
            "from store.changes import bump_users; bump_users(sys.argv[2], ['alice'])",
            ROOT,
            hot.path,
        ],
        check=True,
    )
    assert hot.get("alice", 101.0) is None
    assert hot.get("bob", 101.0) is not None  # another user's copy stays
    changes.bump_users(hot.path, None)  # an admin command: every copy goes
    assert hot.get("bob", 101.0) is None and len(hot) == 0


def test_bump_between_stamp_and_keep_is_seen(hot):
    stamp = hot.stamp("alice")
    changes.bump_users(hot.path, ["alice"])  # written after the stamp, maybe before our read
    hot.keep("alice", stamp, {}, _history(), now=0.0)
    assert hot.get("alice", 0.0) is None


def test_copy_expires_and_quiet_is_kept_only_with_the_copy(hot):
    hot.keep("alice", hot.stamp("alice"), {"a": 1}, _history(), now=0.0)
    assert not hot.quiet("alice", 1.0)
    hot.set_quiet("alice")
    assert hot.quiet("alice", 1.0)
    assert hot.get("alice", hot_module.MAX_AGE - 1) == ({"a": 1}, _history())
    assert not hot.quiet("alice", hot_module.MAX_AGE + 1)  # expired: gone
    assert hot.get("alice", 0.0) is None
    hot.set_quiet("alice")  # no copy: nothing to mark
    assert not hot.quiet("alice", 0.0)
    hot.keep("bob", hot.stamp("bob"), {}, _history(), now=0.0)
    hot.set_quiet("bob")
    changes.bump_users(hot.path, ["bob"])
    assert not hot.quiet("bob", 1.0)


def test_a_replaced_store_is_noticed(hot, store_path):
    assert hot.same_files()
    os.replace(store_path, store_path + ".old")  # a restored backup in its place
    with open(store_path, "wb"):
        pass
    assert not hot.same_files()


def test_a_removed_counter_file_is_noticed(hot):
    os.unlink(hot.path)  # counters removed: writers make a new file no copy would watch
    assert not hot.same_files()
