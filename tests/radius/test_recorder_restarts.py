"""The recorder process dies at random points while radiusd hands it outcomes (issue 17): on a
real SQLite store, with real recorder processes killed with SIGKILL, every outcome handed
over is stored, each user's in the order they came; the one thing a death may do is store
again what it had committed and not yet confirmed (radiusd replays it: radius_hook.handoff),
after the rest, in order."""

from __future__ import annotations

import itertools
import os
import signal
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pam_guard.config import load_settings
from policy.types import DENIED, FAILURE, SUCCESS
from radius_hook import handoff as handoff_module
from radius_hook.accounts import Accounts
from radius_hook.handoff import Handoff
from radius_hook.radius_gate import RadiusGate

KEY = ("10.0.0.1", None, None, "192.0.2.1", None, "nas1", "Virtual")
HAND = st.tuples(st.sampled_from([SUCCESS, FAILURE, FAILURE, DENIED]), st.sampled_from("ab"))
STEPS = st.lists(
    st.one_of(HAND, HAND, st.just(("kill", "")), st.just(("unstored", "a"))),
    min_size=1,
    max_size=30,
)
_runs = itertools.count()


@pytest.fixture
def gate(guard, monkeypatch):
    monkeypatch.setenv("PAM_GUARD_CACHE_DIR", guard.cache_dir)
    # a recorder that died is started again at the next hand-over, not 5 s later
    monkeypatch.setattr(handoff_module, "RESTART_PAUSE", 0.0)
    made = RadiusGate(load_settings(guard.path))
    yield made
    made.close()


def _kill(handoff) -> int:
    """SIGKILL the recorder if one runs; 1 if one was killed."""
    proc = handoff._proc
    if proc is None or proc.poll() is not None:
        return 0
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return 1


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=STEPS)
def test_every_outcome_is_stored_in_each_users_order_whatever_dies(guard, gate, steps):
    run = next(_runs)
    logged: list = []
    owner = Accounts(gate, None, log=logged.append, note=logged.append, lock=threading.Lock())
    handoff = owner.recorder = Handoff(guard.path, owner)
    handed: dict = {}
    kills = 0
    at = 1_800_000_000.0 + run * 1000
    try:
        for kind, who in steps:
            if kind == "kill":
                kills += _kill(handoff)
                continue
            user = f"r{run}{who}"
            if kind == "unstored":
                unstored = handoff.unstored(user)
                assert [(k, t) for k, t, _key, _r in unstored] == handed.get(user, [])[
                    len(handed.get(user, [])) - len(unstored) :
                ]
                continue
            at += 1
            reasons = ("locked",) if kind == DENIED else ()
            handoff.hand(kind, user, at, KEY, reasons)
            handed.setdefault(user, []).append((kind, at))
        handoff.flush()
    finally:
        handoff.stop()
    for user, expected in handed.items():
        stored = gate.read(
            lambda conn, user=user: conn.all(
                "SELECT outcome, ts FROM events WHERE username = :user ORDER BY id", {"user": user}
            )
        )
        stored = [tuple(row) for row in stored]
        last = {row: i for i, row in enumerate(stored)}  # a replayed record: its last copy
        assert sorted(last, key=last.__getitem__) == expected, (user, stored, expected, logged)
        assert kills or len(stored) == len(expected)
