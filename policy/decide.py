"""Decisions: from (attempt, history, settings) to a Verdict.

- `check` runs the rules of SPEC §4 in order before a login is let in, and says who is told.
- `count_failure` puts a failure in its bucket (`failure_bucket`: the account lock's, smart
  lockout's unfamiliar sources', or none for a repeated wrong password);
- `after_failure` decides what a recorded failure leads to: a lock (never with custom
  authentication), a lock of unfamiliar sources, a block of its address, their notices, a
  password-spraying alert for the address.
- `compute_status` gives the user's risk status of SPEC §5.
The caller passes history that already holds what the store knows; `now` is attempt.time.
"""

from __future__ import annotations

from policy.addresses import in_any
from policy.locks import lock_expiry, next_lock_count
from policy.rules import (
    DAY,
    MINUTE,
    PREAUTH_RULES,
    RULES,
    attempt_trackstat,
    block_active,
    blockable,
    concurrent_logins,
    denies,
    failure_threshold,
    limits_exceeded,
    lock_active,
    unfamiliar_lock_active,
)
from policy.sources import block_key, is_familiar
from policy.types import (
    CONCURRENT_LOGIN,
    DIR_DISABLED,
    DIR_LOCKED,
    HIGH_RISK,
    INACTIVE,
    LOCKED,
    LOCKED_UNFAMILIAR,
    NEW,
    PASSWORD_SHARING,
    PROTECTED,
    REPEATED,
    RISK,
    SOURCE_BLOCKED,
    UNFAMILIAR,
    UNPROTECTED,
    AddressBlock,
    Notice,
    Verdict,
)

# A wrong password equal to one of the user's last this many is not counted again.
REPEATS_REMEMBERED = 3

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
    until = lifts_at(reasons, history)
    return Verdict(allowed, reasons, None, tuple(notices), status, why, figure, until=until)


def lifts_at(reasons: Sequence[str], history: History) -> float | None:
    """When the lock or block behind the first of `reasons` lifts by itself (None: never,
    or not a lock), for the user's message ("12 minutes left")."""
    until: float | None = None
    for reason in reasons:
        if reason == LOCKED:
            until = history.lock_expires
        elif reason == LOCKED_UNFAMILIAR:
            until = history.unfamiliar_lock_expires
        elif reason == SOURCE_BLOCKED:
            until = history.address_block.expires
        else:
            continue
        break
    return until


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


def failure_bucket(attempt: Attempt, history: History, settings: Settings) -> str | None:
    """Which count a failure goes to: REPEATED (ignore_repeated_password, and its digest is
    one of the last wrong passwords in the window: counted nowhere), UNFAMILIAR (smart
    lockout, from a source unfamiliar to the user), or None (the account lock's)."""
    lockout = settings.lockout
    if lockout.ignore_repeated_password and attempt.digest is not None:
        since = attempt.time - lockout.period_minutes * MINUTE
        recent = [d for t, d in history.recent_digests if t > since][:REPEATS_REMEMBERED]
        if attempt.digest in recent:
            return REPEATED
    if lockout.unfamiliar_attempts and not is_familiar(attempt.source, history.familiar_sources):
        return UNFAMILIAR
    return None


def count_failure(
    attempt: Attempt, history: History, settings: Settings
) -> tuple[str | None, History]:
    """(its bucket, `history` as read before the failure with this failure counted in its
    bucket and its wrong password's digest first among the recent ones)."""
    bucket = failure_bucket(attempt, history, settings)
    if bucket is None:
        history = history._replace(failures=history.failures + 1)
    elif bucket == UNFAMILIAR:
        history = history._replace(unfamiliar_failures=history.unfamiliar_failures + 1)
    if attempt.digest is not None and settings.lockout.ignore_repeated_password:
        # The last distinct wrong passwords (Entra's smart lockout keeps three): a phone's
        # stale one stays known however often the owner mistypes another in between.
        others = tuple(d for d in history.recent_digests if d[1] != attempt.digest)
        digests = ((attempt.time, attempt.digest), *others)
        history = history._replace(recent_digests=digests[:REPEATS_REMEMBERED])
    return bucket, history


def address_window(settings: Settings) -> float:
    """How far back (seconds) a failure reads its address's earlier failures: the spraying
    alert's period, or the address block's when longer."""
    minutes = settings.lockout.ip_alert_period_minutes
    if settings.address_block.enabled:
        minutes = max(minutes, settings.address_block.period_minutes)
    return minutes * MINUTE


def after_failure(
    attempt: Attempt,
    history: History,
    settings: Settings,
    address_failures: Sequence[tuple[str, float]] = (),
    bucket: str | None = None,
) -> Verdict:
    """What a failed authentication leads to.

    `history` must already count this failure in `bucket` (`count_failure` gives both);
    `address_failures` holds
    (user, time) of every earlier failure that counts from this attempt's address
    (policy.sources.block_key) within `address_window`, for the spraying alert and the
    address block.
    """
    lockout = settings.lockout
    now = attempt.time
    lock = unfamiliar_lock = None
    notices = []
    where = attempt.address or attempt.source or attempt.address_raw or "local"
    if lockout.enabled and bucket is None:
        if (
            not settings.custom_authentication.enabled
            and not lock_active(history, now)
            and history.failures >= failure_threshold(attempt.user, settings)
        ):
            expires = _lock_expiry(history, now, settings)
            lock = (
                f"{history.failures} failed logins within {lockout.period_minutes} min",
                expires,
            )
            notices.append(_lock_notice(attempt, history.failures, expires, where, "account"))
    elif lockout.enabled and bucket == UNFAMILIAR:
        if (
            not unfamiliar_lock_active(history, now)
            and history.unfamiliar_failures >= lockout.unfamiliar_attempts
        ):
            expires = _lock_expiry(history, now, settings)
            unfamiliar_lock = (
                f"{history.unfamiliar_failures} failed logins from unfamiliar sources "
                f"within {lockout.period_minutes} min",
                expires,
            )
            notices.append(
                _lock_notice(
                    attempt, history.unfamiliar_failures, expires, where, "unfamiliar sources"
                )
            )
    block = None
    key = block_key(attempt.source)
    if key is not None and bucket != REPEATED:
        users = [
            u for u, t in address_failures if t > now - lockout.ip_alert_period_minutes * MINUTE
        ]
        users.append(attempt.user)
        block = _block(attempt, history.address_block, address_failures, settings)
        if len(users) >= lockout.ip_alert_attempts or block is not None:
            facts = [
                ("address", key),
                ("failures", len(users)),
                ("minutes", lockout.ip_alert_period_minutes),
                ("users", ", ".join(sorted(set(users)))),
            ]
            subject = key
            if block is not None:
                # its own rate-limit key: a block is told even right after the alert
                facts.append(("blocked_until", block.expires))
                subject = f"{key} blocked"
            notices.append(Notice("ip_alert", subject, tuple(facts)))
    # A failed password opens no session: it must not count toward session limits or places.
    status, why = compute_status(history, settings, attempt, opens_session=False)
    notices.extend(status_notices(attempt.user, history.status, status, why))
    return Verdict(
        True, (), lock, tuple(notices), status, why, None, bucket, unfamiliar_lock, block
    )


def _lock_expiry(history: History, now: float, settings: Settings) -> float | None:
    return lock_expiry(
        history.lock_count,
        history.last_lock_at,
        now,
        settings.lockout.unlock_after_minutes,
        settings,
    )


def _lock_notice(
    attempt: Attempt, failures: int, expires: float | None, where: str, scope: str
) -> Notice:
    # Unfamiliar sources' lock has a rate-limit key of its own: it must not keep the admin
    # from hearing that the account itself (the owner too) is locked soon after.
    subject = attempt.user if scope == "account" else f"{attempt.user} ({scope})"
    return Notice(
        "lock",
        subject,
        (
            ("user", attempt.user),
            ("time", attempt.time),
            ("failures", failures),
            ("address", where),
            ("service", attempt.service),
            ("expires", expires),
            ("scope", scope),
        ),
    )


def _block(
    attempt: Attempt,
    block: AddressBlock | None,
    address_failures: Sequence[tuple[str, float]],
    settings: Settings,
) -> AddressBlock | None:
    """The block this failure sets on its address (address_block), or None: `attempts`
    failures within `period_minutes`, counted from the end of the address's last block or
    an admin's unblock."""
    key = blockable(attempt, settings)
    now = attempt.time
    if key is None:
        return None
    block = block if block is not None and block.address == key else AddressBlock(key)
    if block_active(block, now):
        return None
    ab = settings.address_block
    since = max(now - ab.period_minutes * MINUTE, block.cleared_at or 0.0)
    if block.blocked_at is not None and block.expires is not None:
        since = max(since, block.expires)
    users = [user for user, t in address_failures if t > since] + [attempt.user]
    if len(users) < ab.attempts:
        return None
    # Blocks grow like locks but never become permanent: one address may be a whole NAT.
    expires = lock_expiry(
        block.count, block.blocked_at, now, ab.block_minutes, settings, permanent=False
    )
    count = next_lock_count(block.count, block.blocked_at, now, settings)
    return AddressBlock(
        key, now, expires, count, block.cleared_at, len(users), tuple(sorted(set(users)))
    )


def rules_apply(history: History, settings: Settings, user: str) -> bool:
    """Whether any enabled rule covers this user (protected vs unprotected)."""
    if (
        settings.lockout.enabled
        or settings.custom_authentication.enabled
        or settings.address_block.enabled
    ):
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
