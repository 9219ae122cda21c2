"""Small helpers shared by the RADIUS tests."""

from __future__ import annotations

import time

LOCK_MESSAGE = "Account locked: too many failed logins"


def wait_for(predicate, timeout: float = 5.0, step: float = 0.05):
    """Poll `predicate` until it returns something true (successes and failed passwords are
    committed by the module's recorder process a few milliseconds after the reply)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def outcomes(guard, user):
    """[(outcome, reasons)] recorded for `user`, oldest first."""
    return [(o, r) for _u, o, r, _a, _raw in guard.events(user)]
