"""Decisions: from (attempt, history, settings) to a Verdict.

- `check` runs the rules of SPEC §4 in order before a login is let in, and says who is told.
- `after_failure` decides what a recorded failure leads to: a lock (never with custom
  authentication), a lock notice, a password-spraying alert for the address.
- `compute_status` gives the user's risk status of SPEC §5.
The caller passes history that already holds what the store knows; `now` is attempt.time.
"""

from __future__ import annotations

from policy.addresses import in_any
from policy.rules import (
    DAY,
    MINUTE,
    PREAUTH_RULES,
    RULES,
    attempt_trackstat,
    concurrent_logins,
    denies,
    failure_threshold,
    limits_exceeded,
    lock_active,
)
from policy.types import (
    CONCURRENT_LOGIN,
    DIR_DISABLED,
    DIR_LOCKED,
    HIGH_RISK,
    INACTIVE,
    NEW,
    PASSWORD_SHARING,
    PROTECTED,
    RISK,
    UNPROTECTED,
    Notice,
    Verdict,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # for mypy only: the login path imports no typing
    from collections.abc import Sequence

    from policy.rules import Rule
    from policy.settings_types import Settings
    from policy.types import Attempt, History


def check(
    attempt: Attempt, history: History, settings: Settings, rules: Sequence[Rule] = RULES
) -> Verdict:
    """Apply `rules` (all of SPEC §4 by default) to a login that is about to be let in."""
    reasons = tuple(r for r in (rule(attempt, history, settings) for rule in rules) if r)
    allowed = not any(denies(r, settings) for r in reasons)
    notices = []
    figure = None
    if PASSWORD_SHARING in reasons:
        figure = attempt_trackstat(attempt, history, settings)
        notices.append(
            Notice(
                "trackstat",
                attempt.user,
                (
                    ("user", attempt.user),
                    ("logins_used", figure.logins_used),
                    ("unique_addresses", figure.unique_addresses),
                    ("percent", round(figure.percent, 1)),
                    ("rating", settings.trackstat.rating),
                    ("addresses", ", ".join(figure.addresses)),
                    ("action", "refused" if not allowed else "let in"),
                ),
            )
        )
    if CONCURRENT_LOGIN in reasons and settings.concurrent.notify:
        others = concurrent_logins(attempt, history, settings)
        notices.append(
            Notice(
                "concurrent",
                attempt.user,
                (
                    ("user", attempt.user),
                    ("address", attempt.address),
                    ("time", attempt.time),
                    ("other_address", others[0].address),
                    ("other_time", others[0].time),
                    ("action", "refused" if settings.concurrent.action == "deny" else "let in"),
                ),
            )
        )
    status, why = compute_status(history, settings, attempt, denied=not allowed)
    notices.extend(status_notices(attempt.user, history.status, status, why))
    return Verdict(allowed, reasons, None, tuple(notices), status, why, figure)


def check_preauth(attempt: Attempt, history: History, settings: Settings) -> Verdict:
    """Only what refuses a login before the password is asked: the locks.

    A refusal is a denial and decides the status like any other (the caller must pass the
    full history then). Letting in decides no status: nothing has happened yet, and the
    account phase or the failure that follows decides it on the full history; a status
    worked out here from a locks-only history would tell the admin of changes that are not.
    """
    verdict = check(attempt, history, settings, PREAUTH_RULES)
    if not verdict.allowed:
        return verdict
    notices = tuple(n for n in verdict.notices if n.kind != "status")
    return verdict._replace(status=None, status_why="", notices=notices)


def after_failure(
    attempt: Attempt,
    history: History,
    settings: Settings,
    address_failure_users: Sequence[str] = (),
) -> Verdict:
    """What a failed authentication leads to.

    history.failures must already count this failure; address_failure_users lists the user
    of every failure from this attempt's address within ip_alert_period_minutes (this one
    included), for the password-spraying alert.
    """
    lockout = settings.lockout
    lock = None
    notices = []
    threshold = failure_threshold(attempt.user, settings)
    if (
        lockout.enabled
        and not settings.custom_authentication.enabled
        and not lock_active(history, attempt.time)
        and history.failures >= threshold
    ):
        minutes = lockout.unlock_after_minutes
        expires = attempt.time + minutes * MINUTE if minutes else None
        lock = (f"{history.failures} failed logins within {lockout.period_minutes} min", expires)
        notices.append(
            Notice(
                "lock",
                attempt.user,
                (
                    ("user", attempt.user),
                    ("time", attempt.time),
                    ("failures", history.failures),
                    ("address", attempt.address or attempt.address_raw or "local"),
                    ("service", attempt.service),
                    ("expires", expires),
                ),
            )
        )
    if attempt.address is not None and len(address_failure_users) >= lockout.ip_alert_attempts:
        notices.append(
            Notice(
                "ip_alert",
                attempt.address,
                (
                    ("address", attempt.address),
                    ("failures", len(address_failure_users)),
                    ("minutes", lockout.ip_alert_period_minutes),
                    ("users", ", ".join(sorted(set(address_failure_users)))),
                ),
            )
        )
    # A failed password opens no session: it must not count toward session limits or places.
    status, why = compute_status(history, settings, attempt, opens_session=False)
    notices.extend(status_notices(attempt.user, history.status, status, why))
    return Verdict(True, (), lock, tuple(notices), status, why, None)


def rules_apply(history: History, settings: Settings, user: str) -> bool:
    """Whether any enabled rule covers this user (protected vs unprotected)."""
    if settings.lockout.enabled or settings.custom_authentication.enabled:
        return True
    if settings.ip_lock.enabled and (history.allow_list or history.deny_list):
        return True
    if not history.exempt and (settings.trackstat.enabled or settings.concurrent.enabled):
        return True
    return bool(settings.status.session_limits or settings.status.access_point_limit)


def compute_status(
    history: History,
    settings: Settings,
    attempt: Attempt | None = None,
    now: float | None = None,
    denied: bool = False,
    opens_session: bool = True,
) -> tuple[str, str]:
    """(status, why) for the user: after `attempt`, or at `now` when nobody is logging in.

    `denied` says this attempt is refused: it counts toward high risk at once.
    `opens_session` False (a failed password) keeps the attempt out of the session counts.
    """
    st = settings.status
    now = attempt.time if attempt is not None else now
    opening = attempt if opens_session else None
    denials = history.denied_recent + (1 if denied else 0)
    if denials > st.denied_limit:
        return HIGH_RISK, f"{denials} denied logons within {st.denied_period_minutes} min"
    if st.inside_outside:
        places = [s.address for s in history.open_sessions if s.address is not None]
        if opening is not None and opening.address is not None and not denied:
            places.append(opening.address)
        inside = [a for a in places if in_any(a, st.inside_networks)]
        if inside and len(inside) < len(places):
            return HIGH_RISK, "sessions from inside and outside at once"
    over = limits_exceeded(
        history,
        settings,
        opening.service if opening is not None else None,
        opening.address if opening is not None else None,
    )
    if over:
        return RISK, "; ".join(over)
    if attempt is not None and history.directory in (DIR_LOCKED, DIR_DISABLED):
        return RISK, f"attempt while the directory has the account {history.directory}"
    if attempt is not None:
        if history.last_activity is None:
            return NEW, "first logon"
        # new_user_days = 0 turns the "returning after a long gap" part off: otherwise any
        # gap at all would keep every user new forever.
        if st.new_user_days and now - history.last_activity > st.new_user_days * DAY:
            return NEW, f"first logon after {st.new_user_days} days without activity"
    elif history.last_activity is None:
        return NEW, "no history"
    elif now - history.last_activity > st.inactive_days * DAY and not history.open_sessions:
        return INACTIVE, f"no session and no login for {st.inactive_days} days"
    elif history.status in (HIGH_RISK, RISK, NEW):
        # SPEC §5: a status falls back only when a new connection occurs.
        return history.status, "unchanged until the next connection"
    if rules_apply(history, settings, attempt.user if attempt is not None else ""):
        return PROTECTED, "covered by enabled rules"
    return UNPROTECTED, "no rule applies"


_WORTH_TELLING = (HIGH_RISK, RISK)


def status_notices(user: str, old: str | None, new: str, why: str) -> list[Notice]:
    """A status-change notice when the user moves into or out of a risk status."""
    if old == new or old is None and new not in _WORTH_TELLING:
        return []
    if new not in _WORTH_TELLING and old not in _WORTH_TELLING:
        return []
    return [
        Notice("status", user, (("user", user), ("old", old or "none"), ("new", new), ("why", why)))
    ]
