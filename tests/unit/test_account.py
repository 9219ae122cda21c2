"""policy.account: the one transition an outcome makes of an account (the store's SQL is
held to it in tests/store/test_projection.py and test_success_batch.py)."""

from __future__ import annotations

from policy import account as transition
from policy.settings import build_settings
from policy.sources import pam_source
from policy.types import DENIED, FAILURE, LOCKED, SUCCESS, Attempt, History, Notice, Verdict

T0 = 1_800_000_000.0
MIN = 60.0
DEFAULTS = build_settings({})


def attempt(at: float, user: str = "alice", address: str | None = "192.0.2.7") -> Attempt:
    return Attempt(
        user, "pam", "sshd", address, address, "pts/1", True, at, None, pam_source(address)
    )


def fresh():
    account = transition.new_account(T0)
    return account, History(**transition.facts(account))


def test_failures_lock_at_the_threshold_and_refusals_count_as_denials():
    account, history = fresh()
    for i in range(3):
        account, history, verdict = transition.step(
            account, history, FAILURE, attempt(T0 + i), DEFAULTS
        )
        assert history.failures == i + 1
        assert (verdict.lock is not None) == (i == 2)
    assert account["locked_at"] == T0 + 2 and account["lock_expires"] is None
    assert history.locked_at == T0 + 2 and history.lock_reason.startswith("3 failed logins")
    account, history, verdict = transition.step(account, history, DENIED, attempt(T0 + 3), DEFAULTS)
    assert not verdict.allowed and verdict.reasons == (LOCKED,)
    assert history.denied_recent == 1 and account["last_activity"] == T0 + 3


def test_a_success_resets_the_failures_and_moves_activity_forward_only():
    account, history = fresh()
    account, history, _ = transition.step(account, history, FAILURE, attempt(T0), DEFAULTS)
    account, history, verdict = transition.step(
        account, history, SUCCESS, attempt(T0 + 10), DEFAULTS
    )
    assert verdict.allowed and verdict.status == "protected"  # the failure was activity
    assert history.failures == 0 and account["reset_at"] == T0 + 10
    # an older success stored after a newer one moves no time back
    account, history, _ = transition.step(account, history, SUCCESS, attempt(T0 + 5), DEFAULTS)
    assert account["reset_at"] == T0 + 10 and account["last_activity"] == T0 + 10


def test_a_refusal_the_rules_no_longer_make_is_stored_with_its_own_reasons():
    account, history = fresh()  # not locked: the rules let alice in now
    account, history, verdict = transition.step(
        account, history, DENIED, attempt(T0), DEFAULTS, refused=(LOCKED,)
    )
    assert not verdict.allowed and verdict.reasons == (LOCKED,) and verdict.notices == ()
    assert history.denied_recent == 1
    # with no reasons given and the rules letting in, nothing is stored
    same, same_history, verdict = transition.step(
        account, history, DENIED, attempt(T0 + 1), DEFAULTS
    )
    assert verdict.allowed and same == account and same_history == history


def test_a_lapsed_lock_gives_the_whole_failure_budget_back():
    settings = build_settings({"lockout": {"unlock_after_minutes": 10, "period_minutes": 60}})
    account = dict(transition.new_account(T0), locked_at=T0, lock_expires=T0 + 10 * MIN)
    assert transition.failures_since(account, T0 + 5 * MIN, settings) == T0 - 55 * MIN
    assert transition.failures_since(account, T0 + 11 * MIN, settings) == T0 + 10 * MIN
    held = dict(account, lock_expires=None)  # until an admin unlocks: the window alone
    assert transition.failures_since(held, T0 + 11 * MIN, settings) == T0 - 49 * MIN
    reset = dict(held, reset_at=T0 + 30 * MIN)  # a success or an unlock: counted from then
    assert transition.failures_since(reset, T0 + 40 * MIN, settings) == T0 + 30 * MIN


def test_a_status_not_saved_is_not_told():
    status = Notice("status", "alice", ())
    lock = Notice("lock", "alice", ())
    verdict = Verdict(True, (), None, (status, lock), "risk", "why", None)
    assert transition.notices_to_queue(verdict, status_saved=True) == (status, lock)
    assert transition.notices_to_queue(verdict, status_saved=False) == (lock,)


def test_a_success_writes_the_account_only_when_something_but_its_times_moves():
    verdict = Verdict(True, (), None, (), "protected", "covered", None)
    account = {"last_activity": T0}
    written = transition.stored_status("protected", "covered")
    assert not transition.success_changes_account(written, account, T0 + 1, verdict)
    assert transition.success_changes_account(
        written, account, T0 + transition.ACTIVITY_RESOLUTION_SECONDS, verdict
    )
    assert transition.success_changes_account(None, account, T0 + 1, verdict)
    long_why = verdict._replace(status_why="x" * 300)
    assert transition.stored_status("protected", "x" * 300)[1] == "x" * 256
    assert not transition.success_changes_account(
        transition.stored_status("protected", "x" * 300), account, T0 + 1, long_why
    )


def test_the_failure_count_slides_with_the_window_and_starts_again_after_a_reset():
    settings = build_settings({"lockout": {"period_minutes": 5}})
    account = transition.new_account(T0)
    times = [T0, T0 + 1 * MIN, T0 + 6 * MIN]
    assert transition.failures_at(times, account, T0 + 2 * MIN, settings) == 2
    assert transition.failures_at(times, account, T0 + 5.5 * MIN, settings) == 1  # T0 left
    assert transition.failures_at(times, account, T0 + 6 * MIN, settings) == 1  # strictly after
    assert transition.failures_at(times, account, T0 + 30 * MIN, settings) == 0
    reset = dict(account, reset_at=T0 + 0.5 * MIN)  # a success at T0 + 30 s
    assert transition.failures_at(times, reset, T0 + 2 * MIN, settings) == 1


def test_an_admins_lock_holds_until_unlocked_and_the_unlock_starts_the_count_again():
    account, history = fresh()
    for i in range(2):
        account, history, _verdict = transition.step(
            account, history, FAILURE, attempt(T0 + i), DEFAULTS
        )
    account = dict(account, **transition.locked(T0 + 5, "locked by admin"))
    assert account["lock_expires"] is None  # an admin's lock has no end
    a_year_on = attempt(T0 + 365 * 86400)
    history = History(**transition.facts(account))
    _account, _history, verdict = transition.step(account, history, DENIED, a_year_on, DEFAULTS)
    assert verdict.reasons == (LOCKED,)  # still refused a year on
    account = dict(account, **transition.unlocked(T0 + 10))
    assert account["locked_at"] is None and account["lock_reason"] == ""
    # failures before the unlock no longer count, later ones do
    assert transition.failures_at([T0, T0 + 1, T0 + 11], account, T0 + 12, DEFAULTS) == 1


def test_a_lock_from_a_failure_keeps_its_expiry_and_a_long_reason_is_cut():
    fields = transition.locked(T0, "x" * 1000, T0 + 600)
    assert fields["lock_expires"] == T0 + 600 and len(fields["lock_reason"]) == 256
