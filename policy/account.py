"""An account's state, and the one transition each outcome makes of it.

The state is the account row (a dict of store.logins' account fields) with the History a
decision reads. `step` is what storing one outcome does to it: store/ writes the same in
SQL (whose CASEs keep only what concurrency needs: times that never move back), radiusd
folds `step` over the outcomes it handed over and has not seen stored, and the tests hold
the two together (tests/store/test_projection.py).

- success: the failure count starts again, last activity and the status move on;
- failure: counted; it may lock (policy.decide.after_failure);
- refusal: counted among the recent denials; last activity and the status move on;
- a lock (`locked`: a failure's, with its expiry, or an admin's, with none) and an admin's
  unlock (`unlocked`: the failure count starts again);
- a lock that lapses by itself (unlock_after_minutes) gives the whole failure budget back
  (`failures_since`);
- smart lockout: a failure from a source unfamiliar to the user counts in a bucket of its
  own and may lock unfamiliar sources only; a success makes its source familiar; a wrong
  password repeated counts toward nothing (policy.decide.failure_bucket).
store/ writes the fields `locked` and `unlocked` give; an admin's write drops every kept
copy (the global change counter).
"""

from __future__ import annotations

from policy.decide import after_failure, check, compute_status, count_failure, status_notices
from policy.locks import next_lock_count
from policy.rules import MINUTE
from policy.sources import familiar_key
from policy.types import FAILURE, SUCCESS, Login, Verdict

TYPE_CHECKING = False
if TYPE_CHECKING:  # for mypy only: the login path imports no typing
    from collections.abc import Sequence
    from typing import Any

    from policy.settings_types import Settings
    from policy.types import Attempt, History

    Account = dict[str, Any]

# Longest status reason and lock reason the store keeps.
TEXT_LIMIT = 256

# A success whose account update would move nothing but its times (the failure count is
# already reset, the status and its reason are the same) may leave the account row alone
# while the stored activity time is younger than this: each success would write one page of
# the accounts table otherwise, and a busy RADIUS server re-authenticates the same users
# every few seconds. Active Directory keeps lastLogonTimestamp the same way. The event rows
# keep every login's exact time; what reads the activity time counts in days (status:
# new_user_days, inactive_days), and `pam-guard status` also reads the newest success.
ACTIVITY_RESOLUTION_SECONDS = 300.0


def new_account(now: float) -> Account:
    """The account a user's first recorded outcome makes."""
    return dict(
        first_seen=now,
        last_activity=None,
        reset_at=0,
        locked_at=None,
        lock_expires=None,
        lock_reason="",
        exempt=False,
        status=None,
        notify_on="",
        notify_to="",
        lock_count=0,
        last_lock_at=None,
        unfamiliar_locked_at=None,
        unfamiliar_lock_expires=None,
    )


def facts(account: Account, directory: str | None = None) -> dict[str, Any]:
    """The History fields that come from the account itself."""
    return dict(
        known=account["last_activity"] is not None,
        locked_at=account["locked_at"],
        lock_expires=account["lock_expires"],
        lock_reason=account["lock_reason"] or "",
        exempt=account["exempt"],
        last_activity=account["last_activity"],
        status=account["status"],
        directory=directory,
        lock_count=account["lock_count"] or 0,
        last_lock_at=account["last_lock_at"],
        unfamiliar_locked_at=account["unfamiliar_locked_at"],
        unfamiliar_lock_expires=account["unfamiliar_lock_expires"],
    )


def failures_since(
    account: Account, now: float, settings: Settings, bucket: str | None = None
) -> float:
    """From when failures of `bucket` (None: the account lock's; UNFAMILIAR: smart
    lockout's) count: the lockout window, the last success or unlock, and the end of that
    bucket's lock if it lifted by itself (which gives the whole budget back, as pam_faillock
    does once unlock_time has passed)."""
    since = max(now - settings.lockout.period_minutes * MINUTE, account["reset_at"] or 0.0)
    prefix = "" if bucket is None else "unfamiliar_"
    expires = account[prefix + "lock_expires"]
    if account[prefix + "locked_at"] is not None and expires is not None and expires <= now:
        since = max(since, expires)
    return float(since)


def failures_at(
    failure_times: Sequence[float],
    account: Account,
    now: float,
    settings: Settings,
    bucket: str | None = None,
) -> int:
    """The failure count of `bucket` at `now` (what the store counts then) from the times
    of the user's failures in it: the window slides, a success or unlock starts it again, a
    lapsed lock too."""
    since = failures_since(account, now, settings, bucket)
    return sum(1 for t in failure_times if since < t <= now)


def locked(now: float, reason: str, expires: float | None = None) -> Account:
    """The account fields an admin's lock sets (store.statements.SET_LOCK): until an admin
    unlocks, unless `expires`."""
    return dict(locked_at=now, lock_expires=expires, lock_reason=reason[:TEXT_LIMIT])


# The fields a failure's locks write (store.statements.WRITE_LOCKS).
LOCK_FIELDS = (
    "locked_at",
    "lock_expires",
    "lock_reason",
    "unfamiliar_locked_at",
    "unfamiliar_lock_expires",
    "lock_count",
    "last_lock_at",
)


def failure_locks(verdict: Verdict, history: History, now: float, settings: Settings) -> Account:
    """The account fields the locks of a failure's verdict set (none: {}): the account
    lock, smart lockout's lock of unfamiliar sources, and the count that makes the next
    lock longer (policy.locks)."""
    changes: dict[str, Any] = {}
    if verdict.lock is not None:
        changes.update(locked(now, *verdict.lock))
    if verdict.unfamiliar_lock is not None:
        changes.update(unfamiliar_locked_at=now, unfamiliar_lock_expires=verdict.unfamiliar_lock[1])
    if changes:
        changes.update(
            lock_count=next_lock_count(history.lock_count, history.last_lock_at, now, settings),
            last_lock_at=now,
        )
    return changes


def unlocked(now: float) -> Account:
    """The account fields an admin's unlock sets: no lock of either kind, failures before
    `now` no longer count, and the next lock is a first one again."""
    return dict(
        locked_at=None,
        lock_expires=None,
        lock_reason="",
        reset_at=now,
        unfamiliar_locked_at=None,
        unfamiliar_lock_expires=None,
        lock_count=0,
        last_lock_at=None,
    )


def later(stored: float | None, now: float) -> float:
    """A time that only moves forward (the store's CASEs do the same)."""
    return now if stored is None or stored < now else stored


def stored_status(status: str, why: str) -> tuple[str, str]:
    """(status, reason) as the store keeps them."""
    return status, why[:TEXT_LIMIT]


def success_verdict(history: History, attempt: Attempt, settings: Settings) -> Verdict:
    """What a success leads to, from the state before it: the status, and a status notice
    when it moves into or out of risk."""
    status, why = compute_status(history, settings, attempt)
    notices = status_notices(attempt.user, history.status, status, why)
    return Verdict(True, (), None, tuple(notices), status, why, None)


def refusal_verdict(
    attempt: Attempt, history: History, settings: Settings, refused: tuple[str, ...] = ()
) -> Verdict:
    """The verdict a refusal is stored with. `refused`: the reasons it was refused for
    elsewhere (radiusd, before the store had it). The rules' own verdict while they still
    refuse (with their notices); if they would let the user in now (an accounting Stop, an
    admin's unlock came between), the refusal happened all the same: its reasons, the status
    a refusal brings, and no notices (what they would tell no longer holds)."""
    verdict = check(attempt, history, settings)
    if not verdict.allowed or not refused:
        return verdict
    status, why = compute_status(history, settings, attempt, denied=True)
    return Verdict(False, refused, None, (), status, why, None)


def success_changes_account(
    written: tuple[str, str] | None, account: Account, now: float, verdict: Verdict
) -> bool:
    """Whether storing a success at `now` must write the account row, given the row as
    stored and `written`: the `stored_status` a success stored in it with nothing else
    writing it since, or None when unknown (then failures may count from before: the reset
    must be stored)."""
    last = account["last_activity"]
    return (
        written != stored_status(verdict.status, verdict.status_why)
        or last is None
        or now >= last + ACTIVITY_RESOLUTION_SECONDS
    )


def notices_to_queue(verdict: Verdict, status_saved: bool) -> tuple[Any, ...]:
    """The verdict's notices that are sent. A status not saved (RADIUS authorize letting
    in: post-auth saves it) is not told either, or the admin hears of it twice, or of a
    change that never happened."""
    if status_saved:
        return tuple(verdict.notices)
    return tuple(n for n in verdict.notices if n.kind != "status")


def step(
    account: Account | None,
    history: History,
    kind: str,
    attempt: Attempt,
    settings: Settings,
    refused: tuple[str, ...] = (),
) -> tuple[Account, History, Verdict]:
    """(account, History, verdict) once one outcome of `attempt`'s user is stored: SUCCESS,
    FAILURE, or a refusal (DENIED, with the reasons it was refused for: `refusal_verdict`).
    `history` is the state before it, as the store gives it (failures counted)."""
    if account is None:
        account = new_account(attempt.time)
    now = attempt.time
    if kind == SUCCESS:
        verdict = success_verdict(history, attempt, settings)
        return (*succeeded(account, history, attempt, settings, verdict), verdict)
    if kind == FAILURE:
        bucket, history = count_failure(attempt, history, settings)
        verdict = after_failure(attempt, history, settings, bucket=bucket)
        changes: dict[str, Any] = dict(
            last_activity=later(account["last_activity"], now), status=verdict.status
        )
        changes.update(failure_locks(verdict, history, now, settings))
        account = dict(account, **changes)
        return account, _with(history, account), verdict
    verdict = refusal_verdict(attempt, history, settings, refused)
    if verdict.allowed:  # no reasons given and the rules let them in: nothing is stored
        return account, history, verdict
    account = dict(
        account, last_activity=later(account["last_activity"], now), status=verdict.status
    )
    history = _with(history, account)
    return account, history._replace(denied_recent=history.denied_recent + 1), verdict


def succeeded(
    account: Account, history: History, attempt: Attempt, settings: Settings, verdict: Verdict
) -> tuple[Account, History]:
    """`step`'s (account, History) for a success whose `success_verdict` is known."""
    now = attempt.time
    account = dict(
        account,
        last_activity=later(account["last_activity"], now),
        reset_at=later(account["reset_at"], now),
        status=verdict.status,
    )
    return account, with_success(_with(history, account), attempt, settings)


def with_success(history: History, attempt: Attempt, settings: Settings) -> History:
    """The History a full read gives once `attempt`'s success is stored: no failures since
    (of either bucket), its source familiar (smart lockout), and (for the rules that read
    them) the address first among the recent successes' and the login among those in the
    concurrent window."""
    history = history._replace(failures=0, unfamiliar_failures=0)
    key = familiar_key(attempt.source)
    if settings.lockout.unfamiliar_attempts and key is not None:
        if key not in history.familiar_sources:
            history = history._replace(familiar_sources=(*history.familiar_sources, key))
    if history.exempt:
        return history
    if settings.trackstat.enabled:
        history = history._replace(
            recent_addresses=((attempt.address,) + tuple(history.recent_addresses))[
                : settings.trackstat.logins
            ]
        )
    if settings.concurrent.enabled:
        logins = tuple(history.recent_logins) + (Login(attempt.time, attempt.address),)
        history = as_of(history._replace(recent_logins=logins), attempt.time, settings)
    return history


def as_of(history: History, now: float, settings: Settings) -> History:
    """`history` as a read at a later `now` gives it: the successes that have left the
    concurrent window dropped (the store reads those after now - window), and the wrong
    passwords that have left the lockout window. (Familiar sources are not dropped: the
    projections this serves span minutes, familiar_days is days.)"""
    if history.recent_digests:
        since = now - settings.lockout.period_minutes * MINUTE
        history = history._replace(
            recent_digests=tuple(d for d in history.recent_digests if d[0] > since)
        )
    if not settings.concurrent.enabled:
        return history
    since = now - settings.concurrent.window_minutes * MINUTE
    return history._replace(
        recent_logins=tuple(login for login in history.recent_logins if login.time > since)
    )


def _with(history: History, account: Account) -> History:
    return history._replace(**facts(account, history.directory))
