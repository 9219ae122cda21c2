"""What radius_hook.hot relies on when it lets a user in from a kept copy without asking the
rules again: under the settings copies are kept for (`logins.account_only`, no custom
authentication), a copy that `decide.check` lets in with no reason and no notice ("quiet")
stays quiet as the clock moves on (for longer than hot.MAX_AGE), from any address and for
any service, and after any number of successful logins (which the RADIUS module records
without updating its copies). A change to policy/ that breaks this must change the module
too; these tests say so."""

from __future__ import annotations

import itertools
import random

from policy import account as transition
from policy import decide
from policy.settings import build_settings
from policy.types import STATUSES, SUCCESS, Attempt, History
from radius_hook.hot import MAX_AGE
from store import logins

T0 = 1_800_000_000.0
DAY = 86400.0

SETTINGS = [
    build_settings({}, "<defaults>"),
    build_settings({"lockout": {"unlock_after_minutes": 1, "max_attempts": 1}}, "<short lock>"),
    build_settings(
        {"status": {"new_user_days": 1, "denied_limit": 0, "inactive_days": 1}}, "<tight status>"
    ),
    build_settings({"lockout": {"enabled": False}}, "<no lockout>"),
]


def _quiet(verdict) -> bool:
    return verdict.allowed and not verdict.reasons and not verdict.notices


def _histories(rng):
    lock_times = [None, T0 - 3600, T0 - 30]
    expiries = [None, T0 - 10, T0 + 20, T0 + 3600]
    activities = [None, T0 - 5, T0 - DAY + 30, T0 - 2 * DAY, T0 - 400 * DAY]
    for locked_at, expires, last, status, exempt in itertools.product(
        lock_times, expiries, activities, (None, *STATUSES), (False, True)
    ):
        if locked_at is None and expires is not None:
            continue
        yield History(
            known=last is not None,
            locked_at=locked_at,
            lock_expires=expires,
            lock_reason="3 failed logins" if locked_at else "",
            exempt=exempt,
            last_activity=last,
            status=status,
            denied_recent=0,
        )


def _attempt(rng, at, user="alice"):
    address = rng.choice([None, "192.0.2.7", "2001:db8::9", "10.0.0.1"])
    return Attempt(
        user,
        "radius",
        rng.choice(["vpn", "wifi", "lan", ""]),
        address,
        address,
        "nas=192.0.2.1",
        None,
        at,
    )


def test_settings_here_are_the_kept_copy_settings():
    assert all(logins.account_only(s) and not s.custom_authentication.enabled for s in SETTINGS)


def test_quiet_stays_quiet_with_time_and_successes():
    rng = random.Random(4)
    checked = 0
    for settings, history in itertools.product(SETTINGS, _histories(rng)):
        if not _quiet(decide.check(_attempt(rng, T0), history, settings)):
            continue
        later = [T0 + d for d in (0.001, 1, 59, MAX_AGE, 2 * MAX_AGE, 30 * DAY)]
        for at in later:  # only the clock moves
            assert _quiet(decide.check(_attempt(rng, at), history, settings)), (history, at)
        state = history
        account = dict(
            transition.new_account(T0 - 500 * DAY),
            last_activity=history.last_activity,
            locked_at=history.locked_at,
            lock_expires=history.lock_expires,
            lock_reason=history.lock_reason,
            exempt=history.exempt,
            status=history.status,
        )
        for at in later[:4]:  # successes recorded meanwhile: the one transition the store makes
            account, state, _verdict = transition.step(
                account, state, SUCCESS, _attempt(rng, at), settings
            )
            assert _quiet(decide.check(_attempt(rng, at + 0.5), state, settings)), (state, at)
        checked += 1
    assert checked > 100  # the product holds many quiet copies


def test_a_lock_or_a_risk_status_is_never_quiet():
    """The other side: what must not be let in from a copy is seen by the check itself."""
    rng = random.Random(5)
    settings = SETTINGS[0]
    locked = History(
        known=True,
        locked_at=T0 - 1,
        lock_expires=None,
        lock_reason="x",
        last_activity=T0 - 60,
        status="protected",
        denied_recent=0,
    )
    assert not _quiet(decide.check(_attempt(rng, T0), locked, settings))
    risky = locked._replace(locked_at=None, lock_reason="", status="high_risk")
    assert not _quiet(decide.check(_attempt(rng, T0), risky, settings))
