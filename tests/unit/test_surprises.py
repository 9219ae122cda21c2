"""No fallback in radius_hook hides a bug (issue 17): an exception a place does not expect
is counted there and logged at most once a minute (radius_hook.surprises), and the place
goes on as before; the store trouble it is written for stays as quiet as it was."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from policy.types import FAILURE, History
from radius_hook import handoff as handoff_module
from radius_hook import hot as hot_module
from radius_hook.handoff import Handoff
from radius_hook.hot import HotAccounts
from radius_hook.surprises import LOG_EVERY, Surprises
from store import changes
from store.db import StoreError
from tests.support.fixtures import raising

KEY = ("10.0.0.1", None, None, "192.0.2.1", None, None, "Virtual")


def test_each_place_is_counted_always_and_logged_once_a_minute():
    logged: list = []
    now = [1000.0]
    surprises = Surprises(logged.append, clock=lambda: now[0])
    for _ in range(3):
        try:
            {}["missing"]
        except KeyError as exc:
            surprises.note("here", exc)
    surprises.note("there", TypeError("bad"))
    assert surprises.counts == {"here": 3, "there": 1}
    assert len(logged) == 2
    assert logged[0].startswith("here: unexpected KeyError: 'missing' at test_surprises.py:")
    assert logged[0].endswith("; 1 so far (a bug)") and logged[1].startswith(
        "there: unexpected TypeError: bad"
    )
    now[0] += LOG_EVERY
    surprises.note("here", ValueError("again"))
    assert surprises.counts["here"] == 4 and "; 4 so far" in logged[-1]


# --- HotAccounts: copies loaded in bulk ------------------------------------------------------


class _Gate:
    """What hot.preload asks of a gate, its read replaced by `read`."""

    def __init__(self, read) -> None:
        self.recent_account_states = read

    @staticmethod
    def clock() -> float:
        return 1.8e9


@pytest.fixture
def copies(tmp_path):
    path = tmp_path / "pam-guard.db"
    path.write_bytes(b"")
    os.chmod(path, 0o640)
    logged: list = []
    made = HotAccounts(str(path) + changes.SUFFIX, Surprises(logged.append))
    made.logged = logged
    yield made
    made.close()


def test_a_bug_in_the_bulk_load_is_counted_and_logged(copies):
    warned: list = []
    assert hot_module.preload(copies, _Gate(raising(TypeError("oops"))), log=warned.append) == 0
    assert copies.surprises.counts == {"copies loaded in bulk": 1}
    assert copies.logged[0].startswith("copies loaded in bulk: unexpected TypeError: oops")
    assert warned == [] and len(copies) == 0


def test_store_trouble_in_the_bulk_load_stays_a_warning(copies):
    warned: list = []
    assert hot_module.preload(copies, _Gate(raising(StoreError("down"))), log=warned.append) == 0
    assert warned == ["copies of accounts not loaded in bulk: StoreError: down"]
    assert copies.surprises.counts == {} and copies.logged == []


def test_a_bug_in_the_bulk_check_is_counted_and_the_copies_kept(copies, monkeypatch):
    from policy import decide

    account = {"status": "active"}
    gate = _Gate(lambda *_a: [("alice", account, History())])
    gate.attempt = lambda user, channel, service: None
    gate.settings = None
    monkeypatch.setattr(decide, "check", raising(TypeError("check")))
    assert hot_module.preload(copies, gate, check=True) == 1
    assert copies.surprises.counts == {"copies checked in bulk": 1}
    assert copies.get("alice", 0.0) is not None and not copies.quiet("alice", 0.0)


# --- Handoff: the recorder's start ----------------------------------------------------------


@pytest.fixture
def handoff():
    logged: list = []
    recorded: list = []
    owner = SimpleNamespace(
        log=logged.append,
        note=logged.append,
        record_here=lambda *record: recorded.append(record),
        store_trouble=None,
    )
    made = Handoff("/nonexistent/pam-guard.toml", owner)
    made.logged, made.recorded = logged, recorded
    yield made
    made.stop()


def test_a_bug_starting_the_recorder_is_counted_and_the_outcome_recorded_here(handoff, monkeypatch):
    monkeypatch.setattr(handoff_module, "_recorder_command", raising(TypeError("argv")))
    handoff.hand(FAILURE, "alice", 1.8e9, KEY)
    assert handoff.recorded == [(FAILURE, "alice", 1.8e9, KEY, ())]
    assert handoff.surprises.counts == {"recorder: start": 1}
    assert handoff.logged[0].startswith("recorder: start: unexpected TypeError: argv")


def test_a_recorder_that_cannot_start_is_logged_as_before_not_counted(handoff, monkeypatch):
    monkeypatch.setattr(handoff_module, "_recorder_command", raising(OSError("no exec")))
    handoff.hand(FAILURE, "alice", 1.8e9, KEY)
    assert handoff.recorded == [(FAILURE, "alice", 1.8e9, KEY, ())]
    assert handoff.surprises.counts == {}
    assert handoff.logged == ["recorder: cannot start: no exec; recording in radiusd"]
