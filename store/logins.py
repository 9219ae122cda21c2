"""What one login reads from and writes to the store, through a DB-API Connection.

Reads only what the enabled rules need, with indexed statements; the caller (pam_guard.gate)
holds the transaction. Nothing here decides: policy/ does.
"""

from __future__ import annotations

from policy import account as transition
from policy.decide import REPEATS_REMEMBERED, address_window
from policy.rules import DAY, MINUTE, blockable
from policy.sources import block_key, familiar_key
from policy.types import UNFAMILIAR, AddressBlock, History, Login, Session
from store import statements as sql

TYPE_CHECKING = False
if TYPE_CHECKING:  # for mypy only: the login path imports no typing
    from collections.abc import Sequence
    from typing import Any

    from policy.account import Account
    from policy.settings_types import Settings
    from policy.types import Attempt
    from store.db import Connection

_ACCOUNT_FIELDS = (
    "first_seen",
    "last_activity",
    "reset_at",
    "locked_at",
    "lock_expires",
    "lock_reason",
    "exempt",
    "status",
    "notify_on",
    "notify_to",
    "lock_count",
    "last_lock_at",
    "unfamiliar_locked_at",
    "unfamiliar_lock_expires",
)


def account_row(conn: Connection, user: str, now: float, lock: bool) -> Account | None:
    """The user's account fields as a dict; with `lock`, creates the row and takes its lock."""
    if lock:
        row = conn.one(sql.LOCK_ACCOUNT, {"user": user, "now": now, "false": False})
    else:
        row = conn.one(sql.READ_ACCOUNT, {"user": user})
    return None if row is None else _account_from(row)


def _account_from(row: Sequence[Any]) -> Account:
    """An account dict from a row of _ACCOUNT_FIELDS (a longer row's extra values ignored)."""
    account = dict(zip(_ACCOUNT_FIELDS, row, strict=False))
    account["exempt"] = bool(account["exempt"])
    return account


def load_history(
    conn: Connection | None,
    attempt: Attempt,
    settings: Settings,
    account: Account | None,
    *,
    full: bool,
    directory: str | None = None,
) -> History:
    """History for one decision. `full` loads what every rule needs; otherwise what the
    locks need (preauth: the account, and with smart lockout or address blocks the user's
    familiar sources and the source's block).

    A user with no account row yet is read all the same: sessions, address lists and
    denials can be stored before their first outcome is (a RADIUS recorder a moment behind
    accounting)."""
    user = attempt.user
    now = attempt.time
    if account is None:
        if not full and not locks_read_more(settings):
            return History(directory=directory)
        account = transition.new_account(now)
    base = transition.facts(account, directory)
    if locks_read_more(settings):
        assert conn is not None
        base.update(lock_facts(conn, attempt, settings))
    if not full:
        return History(**base)
    assert conn is not None  # only a locks-only History is made without the store
    base["failures"] = count_failures(conn, user, now, settings, account)
    if settings.lockout.unfamiliar_attempts:
        since = transition.failures_since(account, now, settings, UNFAMILIAR)
        base["unfamiliar_failures"] = conn.one(
            sql.COUNT_UNFAMILIAR_SINCE, {"user": user, "since": since}
        )[0]
    if settings.lockout.ignore_repeated_password:
        since = now - settings.lockout.period_minutes * MINUTE
        base["recent_digests"] = tuple(
            (t, d)
            for t, d in conn.all(
                sql.RECENT_DIGESTS, {"user": user, "since": since, "limit": REPEATS_REMEMBERED}
            )
        )
    st = settings.status
    base["denied_recent"] = conn.one(
        sql.COUNT_OUTCOME_SINCE,
        {"user": user, "outcome": "denied", "since": now - st.denied_period_minutes * MINUTE},
    )[0]
    if settings.ip_lock.enabled:
        rules = conn.all(sql.ADDRESS_RULES, {"user": user})
        base["allow_list"] = tuple(e for k, e in rules if k == "allow")
        base["deny_list"] = tuple(e for k, e in rules if k == "deny")
    if not account["exempt"]:
        if settings.trackstat.enabled:
            rows = conn.all(
                sql.LAST_SUCCESS_ADDRESSES, {"user": user, "limit": settings.trackstat.logins}
            )
            base["recent_addresses"] = tuple(r[0] for r in rows)
        if settings.concurrent.enabled:
            since = now - settings.concurrent.window_minutes * MINUTE
            base["recent_logins"] = tuple(
                Login(t, a)
                for t, a in conn.all(sql.SUCCESSES_SINCE, {"user": user, "since": since})
            )
            base["session_ends"] = tuple(
                (a, e) for a, e in conn.all(sql.SESSION_ENDS_SINCE, {"user": user, "since": since})
            )
    if st.session_limits or st.access_point_limit or st.inside_outside:
        base["open_sessions"] = open_sessions(conn, user, now, settings)
    return History(**base)


def locks_read_more(settings: Settings) -> bool:
    """Whether the locks decided before the password read more than the account row: smart
    lockout (the user's familiar sources) and address blocks (the source's block)."""
    return bool(settings.lockout.unfamiliar_attempts) or settings.address_block.enabled


def lock_facts(conn: Connection, attempt: Attempt, settings: Settings) -> dict[str, Any]:
    """The History fields smart lockout and address blocks read for `attempt`."""
    found: dict[str, Any] = {}
    if settings.lockout.unfamiliar_attempts and familiar_key(attempt.source) is not None:
        since = attempt.time - settings.lockout.familiar_days * DAY
        rows = conn.all(sql.FAMILIAR_SOURCES, {"user": attempt.user, "since": since})
        found["familiar_sources"] = tuple(r[0] for r in rows)
    key = blockable(attempt, settings)
    if key is not None:
        row = conn.one(sql.READ_BLOCK, {"net": key})
        found["address_block"] = None if row is None else AddressBlock(*row)
    return found


def account_only(settings: Settings) -> bool:
    """Whether the enabled rules and the status need nothing of a user's history but the
    account row and the recent denials (true of the default settings: lockout only).

    Then `check` and `compute_status` read no failure count (only after_failure does), no
    address list, no past logins and no sessions, and one statement
    (`account_and_denials`) gives everything a decision or a recorded success needs.
    """
    st = settings.status
    lockout = settings.lockout
    return not (
        lockout.unfamiliar_attempts
        or lockout.ignore_repeated_password
        or settings.address_block.enabled
        or settings.ip_lock.enabled
        or settings.trackstat.enabled
        or settings.concurrent.enabled
        or st.session_limits
        or st.access_point_limit
        or st.inside_outside
    )


def account_and_denials(
    conn: Connection, user: str, now: float, settings: Settings, directory: str | None = None
) -> tuple[Account | None, History]:
    """(account dict or None, History) in one read, for settings where `account_only` holds.

    The History equals `load_history(..., full=True)`'s under such settings, except that
    `failures` is left at 0: no decision before a login, nor a status, reads it.
    """
    since = now - settings.status.denied_period_minutes * MINUTE
    row = conn.one(sql.ACCOUNT_AND_DENIALS, {"user": user, "since": since})
    if row is None:
        return None, History(directory=directory)
    return _state_from(row, row[-1], directory)


def recent_accounts(
    conn: Connection, now: float, settings: Settings, active_seconds: float, limit: int
) -> list[tuple[str, Account, History]]:
    """[(user, account, History)] as `account_and_denials` reads each, in one read, of the
    `limit` accounts most recently active within `active_seconds` that have no recent
    denial (what a RADIUS module keeps copies of: radius_hook.hot)."""
    since = now - settings.status.denied_period_minutes * MINUTE
    rows = conn.all(
        sql.RECENT_ACCOUNTS, {"active_since": now - active_seconds, "since": since, "limit": limit}
    )
    return [(row[0], *_state_from(row[1:], 0)) for row in rows]


def _state_from(
    row: Sequence[Any], denied_recent: int, directory: str | None = None
) -> tuple[Account, History]:
    """(account, History) as `account_and_denials` gives them, from a row of
    _ACCOUNT_FIELDS and the user's recent denials."""
    account = _account_from(row)
    return account, History(denied_recent=denied_recent, **transition.facts(account, directory))


def open_sessions(
    conn: Connection, user: str, now: float, settings: Settings
) -> tuple[Session, ...]:
    """Sessions not ended and updated within status.session_stale_minutes."""
    fresh_since = now - settings.status.session_stale_minutes * MINUTE
    rows = conn.all(sql.OPEN_SESSIONS, {"user": user, "fresh_since": fresh_since})
    return tuple(Session(*r) for r in rows)


def count_failures(
    conn: Connection, user: str, now: float, settings: Settings, account: Account
) -> int:
    """Failures that count toward the lock now (policy.account.failures_since)."""
    since = transition.failures_since(account, now, settings)
    count: int = conn.one(sql.COUNT_FAILURES_SINCE, {"user": user, "since": since})[0]
    return count


def address_failures(
    conn: Connection, attempt: Attempt, settings: Settings
) -> tuple[tuple[str, float], ...]:
    """(user, time) of each earlier failure that counts from `attempt`'s address key
    (policy.sources.block_key) within policy.decide.address_window."""
    net = block_key(attempt.source)
    if net is None:
        return ()
    if conn.dialect == "postgresql":
        # Without it, N users failing at once from one address each count fewer than N and
        # the spraying alert comes late or never (SQLite serialises writes already).
        conn.execute(sql.LOCK_ADDRESS, {"net": net})
    since = attempt.time - address_window(settings)
    return tuple((u, t) for u, t in conn.all(sql.ADDRESS_FAILURES, {"net": net, "since": since}))


def event_row(
    attempt: Attempt, outcome: str, reasons: Sequence[str] = (), bucket: str | None = None
) -> dict[str, Any]:
    """INSERT_EVENT's parameters for one attempt (also for Connection.execute_many); a
    failure's `bucket` and digest."""
    failed = outcome == "failure"
    return {
        "ts": attempt.time,
        "user": attempt.user,
        "channel": attempt.channel,
        "service": attempt.service or "",
        "address": attempt.address,
        "address_raw": attempt.address_raw,
        "client": attempt.client,
        "secure": attempt.secure,
        "outcome": outcome,
        "reasons": ",".join(reasons),
        "ruser": attempt.ruser,
        "bucket": bucket if failed else None,
        "net": block_key(attempt.source) if failed else None,
        "digest": attempt.digest if failed else None,
    }


def insert_event(
    conn: Connection,
    attempt: Attempt,
    outcome: str,
    reasons: Sequence[str] = (),
    bucket: str | None = None,
) -> None:
    conn.execute(sql.INSERT_EVENT, event_row(attempt, outcome, reasons, bucket))


def note_familiar(conn: Connection, attempt: Attempt, settings: Settings) -> None:
    """A success makes its source familiar to the user (smart lockout only)."""
    key = familiar_key(attempt.source)
    if settings.lockout.unfamiliar_attempts and key is not None:
        conn.execute(sql.NOTE_FAMILIAR, {"user": attempt.user, "source": key, "now": attempt.time})


def write_locks(conn: Connection, user: str, account: Account) -> None:
    """Every lock field of `account` (policy.account.failure_locks changed some)."""
    conn.execute(sql.WRITE_LOCKS, {"user": user, **{f: account[f] for f in transition.LOCK_FIELDS}})


def write_block(conn: Connection, block: AddressBlock) -> None:
    """The block a failure set on its address."""
    conn.execute(
        sql.WRITE_BLOCK,
        {
            "address": block.address,
            "blocked_at": block.blocked_at,
            "expires": block.expires,
            "block_count": block.count,
            "failures": block.failures,
            "users": ", ".join(block.users)[:1024],
        },
    )


def failures_since_last_login(conn: Connection, user: str) -> tuple[int, float, str] | None:
    """(how many, when the last, where from) of the user's failures between their last
    login and the one before (the session-open line), or None when there were none."""
    times = [r[0] for r in conn.all(sql.LAST_SUCCESSES, {"user": user})]
    if not times:
        return None
    since = times[1] if len(times) > 1 else 0.0
    row = conn.one(sql.FAILURES_BETWEEN, {"user": user, "since": since, "until": times[0]})
    if row is None:
        return None
    ts, address, raw, count = row
    return count, ts, address or raw or "local"


def success_update(user: str, now: float, status: str, why: str) -> dict[str, Any]:
    """RECORD_SUCCESS's parameters: failures reset, activity and status saved."""
    status, status_why = transition.stored_status(status, why)
    return {"user": user, "now": now, "status": status, "status_why": status_why}


def last_active(conn: Connection, user: str, recorded: float | None) -> float | None:
    """When `user` was last active: the account's last_activity (`recorded`), or its newest
    success when that is later (policy.account.ACTIVITY_RESOLUTION_SECONDS); None when
    neither is known."""
    newest = conn.one(sql.LAST_SUCCESS_TIME, {"user": user})[0]
    return max((t for t in (recorded, newest) if t is not None), default=None)


def save_status(conn: Connection, user: str, now: float, status: str, why: str) -> None:
    conn.execute(
        sql.UPDATE_ACCOUNT_AFTER,
        {"user": user, "now": now, "status": status, "status_why": why[:256]},
    )


def set_status(conn: Connection, user: str, now: float, status: str, why: str) -> None:
    conn.execute(
        sql.SET_STATUS, {"user": user, "now": now, "status": status, "status_why": why[:256]}
    )


def set_lock(conn: Connection, user: str, now: float, reason: str, expires: float | None) -> None:
    """Lock `user` (policy.account.locked): a failure's lock, or an admin's (no expiry)."""
    conn.execute(sql.SET_LOCK, {"user": user, **transition.locked(now, reason, expires)})


def clear_lock(conn: Connection, user: str, now: float) -> None:
    """An admin's unlock (policy.account.unlocked), as the tests' cases write it."""
    conn.execute(sql.CLEAR_LOCK, {"user": user, **transition.unlocked(now)})


def reset_failures(conn: Connection, user: str, now: float) -> None:
    conn.execute(sql.RESET_FAILURES, {"user": user, "now": now})


def queue_notice(
    conn: Connection,
    now: float,
    kind: str,
    subject: str,
    recipients: str,
    title: str,
    body: str,
    repeat_minutes: int,
) -> bool:
    """Queue a notice unless one of this kind and subject was queued within the repeat period."""
    if not recipients:
        return False
    if repeat_minutes:
        last = conn.one(sql.LAST_NOTICE, {"kind": kind, "subject": subject})[0]
        if last is not None and last > now - repeat_minutes * MINUTE:
            return False
    conn.execute(
        sql.INSERT_NOTICE,
        {
            "now": now,
            "kind": kind,
            "subject": subject,
            "recipients": recipients,
            "title": title[:256],
            "body": body,
        },
    )
    return True
