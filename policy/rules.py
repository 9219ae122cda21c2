"""The rules of SPEC §4, one function each, in the order they are checked.

Each rule takes (attempt, history, settings) and returns the reason code it fires, or None.
`now` is always attempt.time: nothing here reads a clock, a file or a database.
"""

from __future__ import annotations

from policy.addresses import matches, network_key
from policy.sources import block_key, is_familiar
from policy.types import (
    CONCURRENT_LOGIN,
    DIR_DISABLED,
    DIR_LOCKED,
    DIRECTORY_DISABLED,
    DIRECTORY_LOCKED,
    IP_RESTRICTED,
    LOCKED,
    LOCKED_UNFAMILIAR,
    NOT_ENOUGH_DATA,
    OK,
    PASSWORD_SHARING,
    SESSION_LIMIT,
    SHARING,
    SOURCE_BLOCKED,
    TrackstatFigure,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # for mypy only: the login path imports no typing
    from collections.abc import Callable, Sequence

    from policy.settings_types import Settings
    from policy.types import AddressBlock, Attempt, History, Login

    Rule = Callable[[Attempt, History, Settings], str | None]

MINUTE = 60.0
DAY = 86400.0


def is_admin(user: str, settings: Settings) -> bool:
    return user in settings.lockout.admin_users


def failure_threshold(user: str, settings: Settings) -> int:
    """Consecutive failures that lock this user: admins get admin_multiplier times more."""
    limit = settings.lockout.max_attempts
    return limit * settings.lockout.admin_multiplier if is_admin(user, settings) else limit


def lock_active(history: History, now: float) -> bool:
    """A pam-guard lock is in force (set, and not yet expired)."""
    if history.locked_at is None:
        return False
    return history.lock_expires is None or history.lock_expires > now


def unfamiliar_lock_active(history: History, now: float) -> bool:
    """Smart lockout's lock of unfamiliar sources is in force."""
    if history.unfamiliar_locked_at is None:
        return False
    expires = history.unfamiliar_lock_expires
    return expires is None or expires > now


def block_active(block: AddressBlock | None, now: float) -> bool:
    """An address block (AddressBlock or None) is in force."""
    if block is None or block.blocked_at is None:
        return False
    return block.expires is None or block.expires > now


def blockable(attempt: Attempt, settings: Settings) -> str | None:
    """The key an address block of `attempt`'s source takes (policy.sources.block_key),
    or None when address blocks are off, the source is no address, or it is in `ignore`."""
    if not settings.address_block.enabled:
        return None
    key = block_key(attempt.source)
    if key is None or matches(attempt.source, settings.address_block.ignore):
        return None
    return key


def rule_locked(attempt: Attempt, history: History, settings: Settings) -> str | None:
    # A lock set by hand also holds with custom authentication; pam-guard just never sets one
    # by itself there (see policy.decide.after_failure).
    return LOCKED if lock_active(history, attempt.time) else None


def rule_directory(attempt: Attempt, history: History, settings: Settings) -> str | None:
    if not settings.custom_authentication.enabled:
        return None
    if history.directory == DIR_DISABLED:
        return DIRECTORY_DISABLED
    if history.directory == DIR_LOCKED:
        return DIRECTORY_LOCKED
    return None


def rule_ip_restricted(attempt: Attempt, history: History, settings: Settings) -> str | None:
    if not settings.ip_lock.enabled:
        return None
    # `matches` treats a login with no address as the entry `local`, so `ip deny USER local`
    # refuses console logins just as `ip allow USER local` admits them.
    if history.deny_list and matches(attempt.address, history.deny_list):
        return IP_RESTRICTED
    if history.allow_list and not matches(attempt.address, history.allow_list):
        return IP_RESTRICTED
    return None


def trackstat_figure(addresses: Sequence[str | None], settings: Settings) -> TrackstatFigure:
    """Unique share among the last `logins` successful logins' addresses (newest first)."""
    logins = settings.trackstat.logins
    used = tuple(addresses[:logins])
    group = settings.trackstat.group_networks
    keys = {"local" if a is None else network_key(a, group) for a in used}
    unique = len(keys)
    percent = 100.0 * unique / len(used) if used else 0.0
    if len(used) < logins:
        determination = NOT_ENOUGH_DATA
    elif percent > settings.trackstat.rating:
        determination = SHARING
    else:
        determination = OK
    return TrackstatFigure(len(used), unique, percent, determination, tuple(sorted(keys)))


def attempt_trackstat(attempt: Attempt, history: History, settings: Settings) -> TrackstatFigure:
    """The figure this login would make: its address plus the previous logins'."""
    return trackstat_figure((attempt.address,) + tuple(history.recent_addresses), settings)


def rule_password_sharing(attempt: Attempt, history: History, settings: Settings) -> str | None:
    if not settings.trackstat.enabled or history.exempt:
        return None
    figure = attempt_trackstat(attempt, history, settings)
    return PASSWORD_SHARING if figure.determination == SHARING else None


def concurrent_logins(attempt: Attempt, history: History, settings: Settings) -> list[Login]:
    """Successful logins from another address within the window whose session has not ended.

    Logins without an address (console, su) neither make nor meet a concurrent login: a
    user's `sudo` inside an ssh session must not count as a second place.
    """
    if attempt.address is None:
        return []
    since = attempt.time - settings.concurrent.window_minutes * MINUTE
    ended = dict(history.session_ends)
    live: list[Login] = []
    for login in history.recent_logins:
        if login.address is None or login.address == attempt.address or login.time <= since:
            continue
        if ended.get(login.address, -1.0) >= login.time:
            continue
        live.append(login)
    return live


def rule_concurrent(attempt: Attempt, history: History, settings: Settings) -> str | None:
    if not settings.concurrent.enabled or history.exempt:
        return None
    return CONCURRENT_LOGIN if concurrent_logins(attempt, history, settings) else None


def limits_exceeded(
    history: History, settings: Settings, service: str | None = None, address: str | None = None
) -> list[str]:
    """Which session limits are over (or would be, with one more session of `service`)."""
    found: list[str] = []
    limits = dict(settings.status.session_limits)
    adding = 1 if service is not None else 0
    for name, limit in limits.items():
        open_count = sum(1 for s in history.open_sessions if s.service == name)
        if open_count + (adding if name == service else 0) > limit:
            found.append(f"{name} sessions over {limit}")
    ap_limit = settings.status.access_point_limit
    if ap_limit:
        places = {s.address for s in history.open_sessions if s.address is not None}
        if address is not None:
            places.add(address)
        if len(places) > ap_limit:
            found.append(f"{len(places)} access points over {ap_limit}")
    return found


def rule_session_limit(attempt: Attempt, history: History, settings: Settings) -> str | None:
    if limits_exceeded(history, settings, attempt.service, attempt.address):
        return SESSION_LIMIT
    return None


def rule_locked_unfamiliar(attempt: Attempt, history: History, settings: Settings) -> str | None:
    if not settings.lockout.unfamiliar_attempts or not unfamiliar_lock_active(
        history, attempt.time
    ):
        return None
    if is_familiar(attempt.source, history.familiar_sources):
        return None
    return LOCKED_UNFAMILIAR


def rule_source_blocked(attempt: Attempt, history: History, settings: Settings) -> str | None:
    key = blockable(attempt, settings)
    block = history.address_block
    if key is None or block is None or block.address != key:
        return None
    return SOURCE_BLOCKED if block_active(block, attempt.time) else None


# Rule order of SPEC §4. `denies` says whether a fired reason refuses the login.
RULES = (
    rule_locked,
    rule_directory,
    rule_ip_restricted,
    rule_password_sharing,
    rule_concurrent,
    rule_session_limit,
    rule_locked_unfamiliar,
    rule_source_blocked,
)
PREAUTH_RULES = (rule_locked, rule_directory, rule_locked_unfamiliar, rule_source_blocked)


def denies(reason: str, settings: Settings) -> bool:
    if reason == PASSWORD_SHARING:
        return settings.trackstat.action == "deny"
    if reason == CONCURRENT_LOGIN:
        return settings.concurrent.action == "deny"
    if reason == SESSION_LIMIT:
        return settings.status.deny_over_limits
    return True
