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
    PASSWORD_SHARING,
    SESSION_LIMIT,
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
}


def user_message(reason: str) -> str:
    """The line a user refused for `reason` sees."""
    return USER_MESSAGES.get(reason, REFUSED)
