"""Growing locks (SPEC §2 lockout.increment ...): how long the next lock or block lasts.

Each lock within `increment_window_days` of the previous one lasts `increment` times as
long, from the first one's length up to `max_unlock_after_minutes` (fail2ban's
bantime.increment); the `permanent_after`-th lock (never a block) stays until an admin
lifts it. A first length
of 0 (unlock_after_minutes = 0, the default) means every lock stays until an admin
unlocks, as before. The account lock and smart lockout's lock of unfamiliar sources share
one count a user; each blocked address has its own.
"""

from __future__ import annotations

from policy.rules import DAY, MINUTE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from policy.settings_types import Settings


def next_lock_count(count: int, last_lock_at: float | None, now: float, settings: Settings) -> int:
    """Which lock within the window one set at `now` is (1: the first), after `count`
    locks of which the last was set at `last_lock_at`."""
    window = settings.lockout.increment_window_days * DAY
    if last_lock_at is not None and now - last_lock_at <= window:
        return count + 1
    return 1


def lock_minutes(
    count: int, first_minutes: float, settings: Settings, permanent: bool = True
) -> float | None:
    """How long the `count`-th lock within the window lasts, in minutes; None: until an
    admin lifts it. `permanent`: whether permanent_after applies (not to address blocks)."""
    lockout = settings.lockout
    if not first_minutes:
        return None
    if permanent and lockout.permanent_after and count >= lockout.permanent_after:
        return None
    cap = max(lockout.max_unlock_after_minutes, first_minutes)
    try:
        minutes = first_minutes * lockout.increment ** (count - 1)
    except OverflowError:
        return float(cap)
    return float(min(minutes, cap))


def lock_expiry(
    count: int,
    last_lock_at: float | None,
    now: float,
    first_minutes: float,
    settings: Settings,
    permanent: bool = True,
) -> float | None:
    """When a lock set at `now` lifts by itself (None: an admin lifts it), after `count`
    locks within the window, the last at `last_lock_at`."""
    minutes = lock_minutes(
        next_lock_count(count, last_lock_at, now, settings), first_minutes, settings, permanent
    )
    return None if minutes is None else now + minutes * MINUTE
