"""Gate.projected_state: the account state a RADIUS module decides on while outcomes it handed
to its recorder are not yet stored equals what the store holds once they are.

For each starting history and each sequence of outcomes (successes, failed passwords,
refusals), on one store the outcomes are projected (none stored, or the first few stored
already: those must not count twice) and then stored one by one through Gate.record, as the
recorder does; the projection must equal `account_state` plus the failure count read after.
"""

from __future__ import annotations

import itertools

import pytest

from pam_guard.gate import Gate
from policy.rules import lock_active
from policy.settings import build_settings
from policy.types import DENIED, FAILURE, SUCCESS
from store import logins
from store import statements as sql
from store.db import connect
from store.migrate import create_or_upgrade

T0 = 1_800_000_000.0
MIN = 60.0
DAY = 86400.0

# Sequences that reach a lock, cross it, are reset by a success, and are refused after it.
SEQUENCES = [
    (FAILURE, FAILURE, FAILURE, DENIED, DENIED),
    (FAILURE, SUCCESS, FAILURE, FAILURE, SUCCESS),
    (SUCCESS, FAILURE, FAILURE, FAILURE, DENIED),
    (FAILURE, FAILURE, SUCCESS, FAILURE, FAILURE, FAILURE, FAILURE),
    (DENIED, SUCCESS, SUCCESS),
]

# name -> (extra settings, what the store holds of the user before the sequence)
STARTS = {
    "never seen": ({}, None),
    "two old failures": ({}, [(-10 * MIN, FAILURE), (-9 * MIN, FAILURE)]),
    "two recent failures": ({}, [(-2 * MIN, FAILURE), (-1 * MIN, FAILURE)]),
    "locked, lifts after 1 min": ({"unlock_after_minutes": 1},
                                  [(-3 * MIN, FAILURE), (-2.5 * MIN, FAILURE),
                                   (-2 * MIN, FAILURE)]),
    "away for 90 days": ({}, [(-90 * DAY, SUCCESS)]),
}


def _gate(url, lockout) -> Gate:
    settings = build_settings({"store": {"url": url, "timeout_seconds": 1},
                               "lockout": lockout}, "<projection test>")
    assert logins.account_only(settings)  # the settings radiusd keeps copies under
    return Gate(settings, clock=lambda: T0)


def _attempt(gate, user, at, n):
    return gate.attempt(user, "radius", "vpn", f"10.1.0.{n}", f"10.1.0.{n}",
                        "nas=n1")._replace(time=at)


def _stored_state(gate, user, now):
    """(account, History with the failure count) as read from the store."""
    account, history = gate.account_state(user, now)
    conn = connect(gate.settings.store.url)
    try:
        failures = (logins.count_failures(conn, user, now, gate.settings, account)
                    if account is not None else 0)
    finally:
        conn.close()
    return account, history._replace(failures=failures)


def _comparable(state, now):
    """The state, with the failure count only where it counts: while a lock is in force no
    failure can lock again (decide.after_failure), and the store's count then also takes
    failures from before an earlier lock lifted."""
    account, history = state
    failures = None if lock_active(history, now) else history.failures
    return (None if account is None else {k: v for k, v in account.items() if k != "first_seen"},
            history._replace(failures=failures))


@pytest.mark.parametrize("start", sorted(STARTS))
@pytest.mark.parametrize("sequence", SEQUENCES, ids=lambda s: "-".join(k[0] for k in s))
@pytest.mark.parametrize("stored_first", [0, 2])
def test_projection_equals_the_store_after_recording(tmp_path, start, sequence, stored_first):
    lockout, past = STARTS[start]
    url = f"sqlite:///{tmp_path / 'pam-guard.db'}"
    create_or_upgrade(url)
    gate = _gate(url, lockout)
    user = "mallory"
    for n, (offset, kind) in enumerate(past or ()):
        gate.record(kind, _attempt(gate, user, T0 + offset, n))
    pending = [(kind, _attempt(gate, user, T0 + i, 100 + i)) for i, kind in enumerate(sequence)]
    for kind, attempt in pending[:stored_first]:  # committed, not yet confirmed to radiusd
        gate.record(kind, attempt)
    projected = gate.projected_state(user, pending)
    for kind, attempt in pending[stored_first:]:
        gate.record(kind, attempt)
    now = pending[-1][1].time
    stored = _stored_state(gate, user, now)
    assert _comparable(projected, now) == _comparable(stored, now)
    gate.close()


def test_projection_locks_at_the_third_failure_and_refuses_after(tmp_path):
    """The case the module relies on, spelled out: three failures not yet stored lock."""
    url = f"sqlite:///{tmp_path / 'pam-guard.db'}"
    create_or_upgrade(url)
    gate = _gate(url, {})
    pending = [(FAILURE, _attempt(gate, "mallory", T0 + i, i)) for i in range(3)]
    from policy import decide

    for upto in range(1, 4):
        _account, history = gate.projected_state("mallory", pending[:upto])
        verdict = decide.check(_attempt(gate, "mallory", T0 + 10, 9), history, gate.settings)
        assert verdict.allowed == (upto < 3), upto
    conn = connect(url)
    try:
        assert conn.all(sql.OUTCOMES_SINCE, {"user": "mallory", "since": 0}) == []  # nothing stored
    finally:
        conn.close()
    gate.close()


def test_sequences_cover_lock_reset_and_refusal():
    kinds = set(itertools.chain.from_iterable(SEQUENCES))
    assert kinds == {SUCCESS, FAILURE, DENIED}
