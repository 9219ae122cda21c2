"""A RADIUS success that would change nothing of its account but the times leaves the
account row alone for policy.account.ACTIVITY_RESOLUTION_SECONDS (the recorder's group commit with
kept copies, RadiusGate.record_outcomes): its event is stored all the same, and every case where
the row must change still changes it (a failure since, another writer, a new status, the
resolution passed), so failure counts and locks come out as before.
"""

from __future__ import annotations

import pytest

from policy import account as transition
from policy.types import FAILURE, SUCCESS, Verdict
from radius_hook.radius_gate import RadiusGate
from store.db import connect

T0 = 1_800_000_000.0
RESOLUTION = transition.ACTIVITY_RESOLUTION_SECONDS


@pytest.fixture()
def store(gate_and_copies):
    return gate_and_copies


def _at(gate, user, when):
    return gate.attempt(user, "radius", "vpn", "10.0.0.1", "10.0.0.1", "nas=n1")._replace(time=when)


def _row(gate, user):
    conn = connect(gate.settings.store.url)
    try:
        return conn.one(
            "SELECT last_activity, reset_at, status FROM accounts WHERE username = :user",
            {"user": user},
        )
    finally:
        conn.close()


def _events(gate, user):
    conn = connect(gate.settings.store.url)
    try:
        return [
            r[0]
            for r in conn.all(
                "SELECT ts FROM events WHERE username = :user AND outcome = 'success' ORDER BY ts",
                {"user": user},
            )
        ]
    finally:
        conn.close()


def _success(gate, copies, user, when):
    gate.record_outcomes([(SUCCESS, [_at(gate, user, when)])], copies)


def _failure(gate, copies, user, when):
    (verdicts,) = gate.record_outcomes([(FAILURE, [_at(gate, user, when)])], copies)
    return verdicts[0]


def test_a_success_changing_only_times_leaves_the_row_but_stores_its_event(store):
    gate, copies = store
    _success(gate, copies, "alice", T0)  # first sight: status "new"
    _success(gate, copies, "alice", T0)  # a known user now: a new status, written
    assert _row(gate, "alice") == (T0, T0, "protected")
    _success(gate, copies, "alice", T0 + 10)
    _success(gate, copies, "alice", T0 + RESOLUTION - 1)
    assert _row(gate, "alice")[:2] == (T0, T0)
    assert _events(gate, "alice") == [T0, T0, T0 + 10, T0 + RESOLUTION - 1]
    assert copies.get("alice", 0.0) == gate.account_state("alice", T0 + 20)


def test_the_row_moves_once_the_resolution_has_passed(store):
    gate, copies = store
    _success(gate, copies, "alice", T0)
    _success(gate, copies, "alice", T0)
    _success(gate, copies, "alice", T0 + RESOLUTION)
    assert _row(gate, "alice")[:2] == (T0 + RESOLUTION, T0 + RESOLUTION)


def test_a_success_after_a_failure_stores_the_reset(store):
    """Two failures, a success, one more failure: the success's reset is stored, so the
    count is 1, not 3 (the default lockout locks at 3)."""
    gate, copies = store
    _success(gate, copies, "alice", T0)
    _success(gate, copies, "alice", T0 + 1)
    assert _failure(gate, copies, "alice", T0 + 2).lock is None
    assert _failure(gate, copies, "alice", T0 + 3).lock is None
    _success(gate, copies, "alice", T0 + 4)
    assert _row(gate, "alice")[:2] == (T0 + 4, T0 + 4)
    assert _failure(gate, copies, "alice", T0 + 5).lock is None
    assert _failure(gate, copies, "alice", T0 + 6).lock is None
    assert _failure(gate, copies, "alice", T0 + 7).lock is not None  # three since T0 + 4


def test_another_writer_makes_the_next_success_write(store):
    """A write by anyone else (here a PAM-style success through the gate's own path, which
    bumps the user's change counter) leaves the copy stale: the next success writes."""
    gate, copies = store
    _success(gate, copies, "alice", T0)
    _success(gate, copies, "alice", T0 + 1)
    other = RadiusGate(gate.settings, clock=lambda: T0)
    try:
        other.record(FAILURE, _at(other, "alice", T0 + 2))
    finally:
        other.close()
    assert copies.get("alice", 0.0) is None
    _success(gate, copies, "alice", T0 + 3)
    assert _row(gate, "alice")[:2] == (T0 + 3, T0 + 3)


def test_a_new_status_is_stored_at_once(store):
    gate, copies = store
    _success(gate, copies, "alice", T0)
    _success(gate, copies, "alice", T0 + 1)
    # alice's status after her first success is stored; a status that differs from the one
    # this process wrote (as when rules change what a success leads to) is stored again.
    state = copies.get("alice", 0.0)
    assert state is not None
    copies.update("alice", *state, written=("new", "first logon"))
    _success(gate, copies, "alice", T0 + 2)
    assert _row(gate, "alice")[:2] == (T0 + 2, T0 + 2)


def test_without_copies_every_success_writes(store):
    gate, _copies = store
    _success(gate, None, "alice", T0)
    _success(gate, None, "alice", T0 + 1)
    assert _row(gate, "alice")[:2] == (T0 + 1, T0 + 1)


@pytest.mark.parametrize(
    "written, last, now, expected",
    [
        (("protected", "why"), T0, T0 + 1, False),
        (("protected", "why"), T0, T0 + RESOLUTION, True),
        (None, T0, T0 + 1, True),
        (("protected", "other"), T0, T0 + 1, True),
        (("high_risk", "why"), T0, T0 + 1, True),
        (("protected", "why"), None, T0 + 1, True),
        (("protected", "why"), T0 + 5, T0, False),  # an older success: nothing moves back
    ],
)
def test_success_changes_account(written, last, now, expected):
    account = {"last_activity": last}
    verdict = Verdict(True, (), None, (), "protected", "why", None)
    assert transition.success_changes_account(written, account, now, verdict) is expected
