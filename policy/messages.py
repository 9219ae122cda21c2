"""What a refused user sees: one short line for each reason code (SPEC §4), the same over
PAM and RADIUS (Reply-Message). Details go to the logs, never to the user."""

from __future__ import annotations

from policy.types import (
    CONCURRENT_LOGIN,
    DIRECTORY_DISABLED,
    DIRECTORY_LOCKED,
    INVALID_USER,
    IP_RESTRICTED,
    LOCKED,
    LOCKED_UNFAMILIAR,
    PASSWORD_SHARING,
    SESSION_LIMIT,
    SOURCE_BLOCKED,
    STORE_ERROR,
)

REFUSED = "Login refused."

USER_MESSAGES = {
    LOCKED: "Account locked: too many failed logins. Contact your administrator.",
    DIRECTORY_LOCKED: "Account locked by the directory. Contact your administrator.",
    DIRECTORY_DISABLED: "Account disabled. Contact your administrator.",
    IP_RESTRICTED: "Login refused: not allowed from this address.",
    PASSWORD_SHARING: "Login refused: unusual login pattern. Contact your administrator.",
    CONCURRENT_LOGIN: "Login refused: already logged in from another address.",
    SESSION_LIMIT: "Login refused: too many open sessions.",
    INVALID_USER: REFUSED,
    STORE_ERROR: "Login refused: login service unavailable. Try again later.",
    LOCKED_UNFAMILIAR: "Login refused: too many failed logins from unfamiliar places. "
    "Try from a usual place or contact your administrator.",
    SOURCE_BLOCKED: "Login refused: too many failed logins from this address.",
}

# The lines that say how long is left when the lock lifts by itself (SPEC §4).
_TIMED = {
    LOCKED: "Account locked: too many failed logins ({left} left).",
    LOCKED_UNFAMILIAR: "Login refused: too many failed logins from unfamiliar places "
    "({left} left). Try from a usual place.",
    SOURCE_BLOCKED: "Login refused: too many failed logins from this address ({left} left).",
}


def user_message(reason: str, until: float | None = None, now: float = 0.0) -> str:
    """The line a user refused for `reason` sees; for a lock or block that lifts by itself
    at `until`, how long is left."""
    if until is not None and reason in _TIMED:
        return _TIMED[reason].format(left=time_left(until - now))
    return USER_MESSAGES.get(reason, REFUSED)


def time_left(seconds: float) -> str:
    """'12 minutes', '1 minute', '3 hours': rounded up, never '0'."""
    minutes = max(1, int(-(-seconds // 60)))
    if minutes < 120:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = -(-minutes // 60)
    return f"{hours} hours"
