"""RadiusGate.projected_state: the account state a RADIUS module decides on while outcomes it handed
to its recorder are not yet stored equals what the store holds once they are.

For each starting history and each sequence of outcomes (successes, failed passwords,
refusals), on one store the outcomes are projected (none stored, or the first few stored
already: those must not count twice) and then stored one by one through RadiusGate.record, as the
recorder does; the projection must equal `account_state` plus the failure count read after.
"""

from __future__ import annotations

import itertools

import pytest

from policy.rules import lock_active, unfamiliar_lock_active
from policy.settings import build_settings
from policy.types import DENIED, FAILURE, SUCCESS
from radius_hook.radius_gate import RadiusGate
from store import logins
from store import statements as sql
from store.db import connect
from store.migrate import create_or_upgrade

T0 = 1_800_000_000.0
REFUSED = ("locked",)
MIN = 60.0
DAY = 86400.0

# Sequences that reach a lock, cross it, are reset by a success, and are refused after it.
SEQUENCES = [
    (FAILURE, FAILURE, FAILURE, DENIED, DENIED),
    (FAILURE, SUCCESS, FAILURE, FAILURE, SUCCESS),
    (SUCCESS, FAILURE, FAILURE, FAILURE, DENIED),
    (FAILURE, FAILURE, SUCCESS, FAILURE, FAILURE, FAILURE, FAILURE),
    (DENIED, SUCCESS, SUCCESS),
    (SUCCESS, SUCCESS, SUCCESS, DENIED, SUCCESS),  # every rule: sharing and concurrent fire
]

# name -> (extra settings, what the store holds of the user before the sequence)
STARTS = {
    "never seen": ({}, None),
    "two old failures": ({}, [(-10 * MIN, FAILURE), (-9 * MIN, FAILURE)]),
    "two recent failures": ({}, [(-2 * MIN, FAILURE), (-1 * MIN, FAILURE)]),
    "locked, lifts after 1 min": (
        {"unlock_after_minutes": 1},
        [(-3 * MIN, FAILURE), (-2.5 * MIN, FAILURE), (-2 * MIN, FAILURE)],
    ),
    "away for 90 days": ({}, [(-90 * DAY, SUCCESS)]),
}


# The default rules (radiusd keeps copies) and every rule that reads more of the history.
RULES = {
    "defaults": {},
    "every rule": {
        "trackstat": {"enabled": True, "logins": 3, "rating": 50, "action": "deny"},
        "concurrent": {"enabled": True, "window_minutes": 15, "action": "deny"},
        "ip_lock": {"enabled": True},
    },
    # issue 18: failures from unfamiliar sources count apart, repeated wrong passwords not
    "smart lockout": {"lockout": {"unfamiliar_attempts": 2, "ignore_repeated_password": True}},
}


def _gate(url, lockout, rules="defaults") -> RadiusGate:
    extra = dict(RULES[rules])
    lockout = {**lockout, **extra.pop("lockout", {})}
    settings = build_settings(
        {"store": {"url": url, "timeout_seconds": 1}, "lockout": lockout, **extra},
        "<projection test>",
    )
    assert logins.account_only(settings) == (rules == "defaults")
    return RadiusGate(settings, clock=lambda: T0)


def _attempt(gate, user, at, n):
    """Attempt n: from one of three networks (sources for smart lockout), with one of two
    wrong passwords (digests) should it fail."""
    address = f"10.{n % 3}.0.{n % 250}"
    attempt = gate.attempt(
        user, "radius", "vpn", address, address, "nas=n1", source=address, digest=f"{n % 2:032x}"
    )
    return attempt._replace(time=at)


def _stored_state(gate, attempt):
    """(account, History with the failure count) as the store has them for `attempt`."""
    conn = connect(gate.settings.store.url)
    try:
        account = logins.account_row(conn, attempt.user, attempt.time, lock=False)
        if logins.account_only(gate.settings):
            _account, history = gate.account_state(attempt.user, attempt.time)
            failures = (
                logins.count_failures(conn, attempt.user, attempt.time, gate.settings, account)
                if account is not None
                else 0
            )
            history = history._replace(failures=failures)
        else:
            history = logins.load_history(conn, attempt, gate.settings, account, full=True)
    finally:
        conn.close()
    return account, history


def _comparable(state, now):
    """The state, with the failure count only where it counts: while a lock is in force no
    failure can lock again (decide.after_failure), and the store's count then also takes
    failures from before an earlier lock lifted."""
    account, history = state
    failures = None if lock_active(history, now) else history.failures
    unfamiliar = None if unfamiliar_lock_active(history, now) else history.unfamiliar_failures
    return (
        None if account is None else {k: v for k, v in account.items() if k != "first_seen"},
        history._replace(
            failures=failures,
            unfamiliar_failures=unfamiliar,
            recent_logins=sorted(history.recent_logins),
            familiar_sources=sorted(history.familiar_sources),
        ),
    )


@pytest.mark.parametrize("start", sorted(STARTS))
@pytest.mark.parametrize("sequence", SEQUENCES, ids=lambda s: "-".join(k[0] for k in s))
@pytest.mark.parametrize("stored_first", [0, 2])
@pytest.mark.parametrize("rules", sorted(RULES))
def test_projection_equals_the_store_after_recording(
    tmp_path, start, sequence, stored_first, rules
):
    lockout, past = STARTS[start]
    url = f"sqlite:///{tmp_path / 'pam-guard.db'}"
    create_or_upgrade(url)
    gate = _gate(url, lockout, rules)
    user = "mallory"
    for n, (offset, kind) in enumerate(past or ()):
        gate.record(kind, _attempt(gate, user, T0 + offset, n))
    # A refusal comes with radiusd's reasons; it is stored even if the store would let the
    # user in by the time the recorder gets to it (policy.account.refusal_verdict).
    pending = [
        (kind, _attempt(gate, user, T0 + i, 100 + i), REFUSED if kind == DENIED else ())
        for i, kind in enumerate(sequence)
    ]
    for kind, attempt, reasons in pending[:stored_first]:  # committed, not yet confirmed
        gate.record(kind, attempt, reasons)
    projected = gate.projected_state(pending[-1][1], pending)
    for kind, attempt, reasons in pending[stored_first:]:
        gate.record(kind, attempt, reasons)
    now = pending[-1][1].time
    stored = _stored_state(gate, pending[-1][1])
    assert _comparable(projected, now) == _comparable(stored, now)
    gate.close()


def test_projection_of_a_user_with_sessions_and_no_account_yet(tmp_path):
    """Accounting is stored at once, outcomes by the recorder later: a user's first success
    may still be on its way while their session has started and ended. The session's end
    counts (the concurrent rule lets them in from elsewhere)."""
    url = f"sqlite:///{tmp_path / 'pam-guard.db'}"
    create_or_upgrade(url)
    gate = _gate(url, {}, "every rule")
    first = _attempt(gate, "mallory", T0, 1)
    gate.session_start("mallory", "radius", "vpn", "s-1", "n1", first.address)
    gate.session_stop("mallory", "radius", "s-1", "n1")
    elsewhere = _attempt(gate, "mallory", T0 + 5, 2)
    account, history = gate.projected_state(elsewhere, [(SUCCESS, first, ())])
    from policy import decide

    assert decide.check(elsewhere, history, gate.settings).allowed
    gate.record(SUCCESS, first)
    assert _comparable((account, history), T0 + 5) == _comparable(
        _stored_state(gate, elsewhere), T0 + 5
    )
    gate.close()


def test_projection_locks_at_the_third_failure_and_refuses_after(tmp_path):
    """The case the module relies on, spelled out: three failures not yet stored lock."""
    url = f"sqlite:///{tmp_path / 'pam-guard.db'}"
    create_or_upgrade(url)
    gate = _gate(url, {})
    pending = [(FAILURE, _attempt(gate, "mallory", T0 + i, i), ()) for i in range(3)]
    from policy import decide

    for upto in range(1, 4):
        _account, history = gate.projected_state(pending[upto - 1][1], pending[:upto])
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
