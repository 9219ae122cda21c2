"""After the recorder stores a failed password (RadiusGate.record_outcomes with kept copies), the
user's state read in that transaction is kept as the recorder's copy only when no other writer
came between the read and the counter bump (HotAccounts.keep_written): then the user's next
success needs no store read, and the copy still holds the failure, the lock it caused, and
goes stale with anyone else's later write.
"""

from __future__ import annotations

import pytest

from policy import decide
from policy.types import FAILURE, SUCCESS
from radius_hook.hot import HotAccounts
from store import changes

T0 = 1_800_000_000.0


@pytest.fixture()
def store(gate_and_copies):
    return gate_and_copies


def _at(gate, user, when, address="10.0.0.1"):
    return gate.attempt(user, "radius", "vpn", address, address, "nas=n1")._replace(time=when)


def _record(gate, copies, kind, user, when):
    (verdicts,) = gate.record_outcomes([(kind, [_at(gate, user, when)])], copies)
    return verdicts[0] if verdicts else None


def test_the_state_after_a_failure_is_kept(store):
    gate, copies = store
    _record(gate, copies, SUCCESS, "alice", T0)
    _record(gate, copies, FAILURE, "alice", T0 + 1)
    assert copies.get("alice", 0.0) == gate.account_state("alice", T0 + 1)
    # The next success reads nothing and stores the reset: the count starts again.
    _record(gate, copies, SUCCESS, "alice", T0 + 2)
    assert _record(gate, copies, FAILURE, "alice", T0 + 3).lock is None
    assert _record(gate, copies, FAILURE, "alice", T0 + 4).lock is None
    assert _record(gate, copies, FAILURE, "alice", T0 + 5).lock is not None


def test_a_kept_state_shows_the_lock_its_failure_caused(store):
    gate, copies = store
    for i in range(3):  # the default lockout locks at the third failure
        verdict = _record(gate, copies, FAILURE, "bob", T0 + i)
    assert verdict.lock is not None
    account, history = copies.get("bob", 0.0)
    assert account["locked_at"] == T0 + 2
    assert not decide.check(_at(gate, "bob", T0 + 3), history, gate.settings).allowed


def test_another_writer_between_the_read_and_the_bump_keeps_nothing(store, monkeypatch):
    """A writer that bumps the user's counter after this transaction read the user (here
    just before this commit's own bump) may have written what that read missed."""
    gate, copies = store
    _record(gate, copies, SUCCESS, "carol", T0)
    real = gate._on_commit

    def another_writer_first(users):
        changes.bump_users(copies.path, ["carol"])
        return real(users)

    monkeypatch.setattr(gate, "_on_commit", another_writer_first)
    _record(gate, copies, FAILURE, "carol", T0 + 1)
    assert copies.get("carol", 0.0) is None


def test_a_global_change_after_the_read_makes_the_kept_state_stale(store):
    gate, copies = store
    _record(gate, copies, FAILURE, "dave", T0)
    assert copies.get("dave", 0.0) is not None
    changes.bump_users(copies.path, None)  # an admin command: every copy is stale
    assert copies.get("dave", 0.0) is None


def test_a_user_with_recent_denials_is_not_kept(store):
    gate, copies = store
    for i in range(3):
        _record(gate, copies, FAILURE, "erin", T0 + i)
    assert not gate.authorize(_at(gate, "erin", T0 + 3)).allowed  # locked: a denial
    _record(gate, copies, FAILURE, "erin", T0 + 4)
    assert copies.get("erin", 0.0) is None


def test_without_copies_nothing_is_kept(store):
    gate, copies = store
    _record(gate, None, FAILURE, "fay", T0)
    assert copies.get("fay", 0.0) is None


def test_copies_loaded_at_start_are_checked_once(store):
    """radiusd loads copies in bulk at start (hot.preload with check): each that the rules
    let in with nothing to say is quiet at once, so a user's first request after a restart
    needs no check; a locked one is not."""
    from radius_hook import hot

    gate, copies = store
    for user in ("gil", "hank"):
        _record(gate, None, SUCCESS, user, T0)
    for i in range(3):
        _record(gate, None, FAILURE, "hank", T0 + 1 + i)  # locked
    assert hot.preload(copies, gate, check=True) == 2
    assert copies.quiet("gil", 0.0)
    assert copies.get("hank", 0.0) is not None and not copies.quiet("hank", 0.0)
    plain = HotAccounts(copies.path)
    try:
        assert hot.preload(plain, gate) == 2
        assert not plain.quiet("gil", 0.0)  # without check (the recorder): as before
    finally:
        plain.close()
