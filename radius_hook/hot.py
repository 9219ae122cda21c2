"""Users' account state kept in radiusd's memory, trusted only while nobody else wrote it.

Why: calls into rlm_python3 are serialised and run on the embedded libpython, slower than
/usr/bin/python3 on the same code, so a store read in authorize (with its GIL hand-offs)
costs more than a whole request of a do-nothing module (docs/PERF.md, radius_hook). Under the default rules (lockout only: `logins.account_only`)
all that authorize and a success need of a user is one account row and its recent
denials, so this keeps that per user:

- a copy is loaded after reading the user's change counter (store.changes) and is used
  only while that counter and the global one still hold those values, and for at most
  MAX_AGE seconds (a safety net should a writer die between its commit and its counter, or
  someone change the store by hand);
- successes are not applied to the copies, and the recorder's commits of them bump no
  counter: no success can turn a copy that lets its user in into one that should not
  (tests/unit/test_quiet_copies.py), and a copy that does not let its user in is never
  trusted (the gate decides from the store);
- anything else (a denial, a failure, a lock, an admin command, a PAM login) bumps the
  counter, and the next request of that user reads the store again.

Copies are kept only of existing accounts with no recent denials (a denial count slides
with the clock), only for a SQLite store (store.changes), and never with custom
authentication (the directory's lock is not in the store).
"""

from __future__ import annotations

import os

from radius_hook.surprises import Surprises
from store.changes import GLOBAL, SUFFIX, Counters, slot_of
from store.db import StoreError

MAX_ENTRIES = 200_000  # copies kept at most (~1 KB each); all are dropped beyond it
# Seconds a copy is trusted at most: the safety net for a writer that died between its
# commit and its counter, or a store changed by hand (sqlite3) rather than by pam-guard.
MAX_AGE = 60.0

# Copies loaded in bulk when the module (or its recorder) starts, of the accounts most
# recently active within PRELOAD_ACTIVE_SECONDS: otherwise each user's first request after
# a start or a config reload reads the store, one at a time behind rlm_python3's lock
# (docs/PERF.md, radius_hook).
PRELOAD_ENTRIES = MAX_ENTRIES // 4
PRELOAD_ACTIVE_SECONDS = 30 * 86400.0  # monthly active users

# An entry: [slot, slot value, global value, loaded at (monotonic), account, history,
# quiet, written], the first three as they were before the account was read; written: the
# (status, why) this process last stored with a success of the user since (`update`).
_SLOT, _STAMP, _GLOBAL, _LOADED, _ACCOUNT, _HISTORY, _QUIET, _WRITTEN = range(8)


def lets_in_quietly(verdict) -> bool:
    """A verdict of decide.check that lets the user in with no reason and no notice: nothing
    to record before authentication, and (for a copy) `set_quiet`."""
    return verdict.allowed and not verdict.reasons and not verdict.notices


class HotAccounts:
    """The copies, for one store (its change-counter file)."""

    def __init__(self, path: str, surprises: Surprises | None = None) -> None:
        """`surprises`: where `preload` counts (and logs) what it did not expect."""
        self.path = path
        self.surprises = surprises or Surprises()
        self._counters = Counters(path)
        self._view = self._counters.view
        self._entries: dict = {}
        self._files = self._identities()

    def _identities(self):
        """(device, inode) of the counter file and of the store beside it, or None."""
        found = []
        for name in (self.path, self.path[: -len(SUFFIX)]):
            try:
                info = os.stat(name)
            except OSError:
                return None
            found.append((info.st_dev, info.st_ino))
        return tuple(found)

    def same_files(self) -> bool:
        """Whether the counter file and the store are still the ones the copies came from.
        A store replaced (init-store on a new file, a restored backup) or a counter file
        removed would otherwise leave copies trusted that no bump can reach: the caller
        then starts afresh (radius_hook.module does every second)."""
        return self._files is not None and self._identities() == self._files

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, user: str, now: float):
        """(account, history) of a copy still current, or None. `now`: time.monotonic()."""
        entry = self._current(user, now)
        return None if entry is None else (entry[_ACCOUNT], entry[_HISTORY])

    def quiet(self, user: str, now: float) -> bool:
        """Whether the user has a current copy already known to let them in with nothing to
        say (`set_quiet`): authorize needs nothing more."""
        entry = self._current(user, now)
        return entry is not None and entry[_QUIET]

    def set_quiet(self, user: str) -> None:
        """The rules let this copy in with no reason and no notice (decide.check). That
        holds for as long as the copy is current: under the rules copies are kept for
        (lockout only), neither the clock nor a success changes it
        (tests/unit/test_quiet_copies.py checks this of policy.decide)."""
        entry = self._entries.get(user)
        if entry is not None:
            entry[_QUIET] = True

    def _current(self, user: str, now: float):
        entry = self._entries.get(user)
        if entry is None:
            return None
        view = self._view
        if (
            view[entry[_SLOT]] != entry[_STAMP]
            or view[GLOBAL] != entry[_GLOBAL]
            or now - entry[_LOADED] > MAX_AGE
        ):
            self._entries.pop(user, None)
            return None
        return entry

    def stamp(self, user: str) -> tuple:
        """What to read before loading a user from the store, for `keep`."""
        slot = slot_of(user)
        return slot, self._view[slot], self._view[GLOBAL]

    def keep(self, user: str, stamp: tuple, account: dict, history, now: float) -> None:
        """Keep a copy loaded after `stamp` was read (not yet quiet: `set_quiet`)."""
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[user] = [*stamp, now, account, history, False, None]

    def keep_written(self, user: str, stamp: tuple, account, history, bumped, now: float) -> None:
        """Keep a copy that this process read inside its own write transaction, once that
        committed and bumped the user's counter: `stamp` was taken (`stamp`) before the
        read, `bumped` is what the bump found ({slot: value before}: note_change). If the
        slot still held the stamp's value then, no other writer bumped it in between; and
        as the read ran under the store's write lock, no write came between the read and
        this commit. So the copy is the user's state as of the bump: it is kept under the
        value after it, and any later write by anyone shows as a newer one. Nothing is
        kept after a bump in between, for no account, or with recent denials."""
        slot, value, global_value = stamp
        if not bumped or bumped.get(slot) != value or account is None or history.denied_recent:
            return
        self.keep(user, (slot, value + 1, global_value), account, history, now)

    def preload(self, read, now: float) -> int:
        """Keep a copy of each of `read()`'s [(user, account, History)], read after the
        counters were noted (as `stamp` before a single load: a write after that shows as a
        new value). `now`: time.monotonic(). How many were kept."""
        noted = self._view.tolist()
        loaded = read()[: max(0, MAX_ENTRIES - len(self._entries))]
        for user, account, history in loaded:
            slot = slot_of(user)
            self.keep(user, (slot, noted[slot], noted[GLOBAL]), account, history, now)
        return len(loaded)

    def update(self, user: str, account: dict, history, written=None) -> None:
        """This process wrote the user (the recorder stored a success): the copy's new
        contents, and `written`, the (status, why) that success stored. The quiet mark
        stays (a success keeps a quiet copy quiet)."""
        entry = self._entries.get(user)
        if entry is not None:
            entry[_ACCOUNT] = account
            entry[_HISTORY] = history
            entry[_WRITTEN] = written

    def written(self, user: str):
        """The (status, why) this process stored with a success of the user (`update`)
        while the copy has been current, or None. While it is, nothing but this process's
        successes wrote the account since: no failure counts from before that success."""
        entry = self._entries.get(user)
        return None if entry is None else entry[_WRITTEN]

    def drop(self, user: str) -> None:
        self._entries.pop(user, None)

    def clear(self) -> None:
        self._entries.clear()

    def close(self) -> None:
        self._entries.clear()
        self._counters.close()


def preload(copies, gate, log=lambda text: None, check: bool = False) -> int:
    """Load copies of the accounts most recently active (PRELOAD_ENTRIES at most) from
    `gate`'s store into `copies`: how many. On trouble, log it and go on without them.

    `check`: also mark quiet (`set_quiet`) each copy that decide.check lets in with nothing
    to say, as authorize would on the user's first request. Quiet or not is the same from
    any address and at any later time while the copy is current
    (tests/unit/test_quiet_copies.py), so one check with no address does. In radiusd a
    first request otherwise runs the check and its attempt, far dearer there than a copy's
    check here: after a restart, on every user's first request (docs/PERF.md)."""
    import time

    loaded: list = []

    def read():
        loaded.extend(
            gate.recent_account_states(gate.clock(), PRELOAD_ACTIVE_SECONDS, PRELOAD_ENTRIES)
        )
        return loaded

    try:
        count = copies.preload(read, time.monotonic())
    except StoreError as exc:  # copies are an optimisation: loaded one by one on first use
        log(f"copies of accounts not loaded in bulk: {type(exc).__name__}: {exc}")
        return 0
    except Exception as exc:  # noqa: BLE001 - a bug: counted and said, then as above
        copies.surprises.note("copies loaded in bulk", exc)
        return 0
    if check:
        from policy import decide
        from policy.types import RADIUS

        try:
            for user, _account, history in loaded[:count]:
                if lets_in_quietly(
                    decide.check(gate.attempt(user, RADIUS, ""), history, gate.settings)
                ):
                    copies.set_quiet(user)
        except Exception as exc:  # noqa: BLE001 - a bug (policy/ is pure): counted and said;
            # unchecked copies are checked on first use
            copies.surprises.note("copies checked in bulk", exc)
    return count


def for_settings(settings, log=lambda text: None, surprises: Surprises | None = None):
    """A HotAccounts for these settings (counting its `surprises` there), or None when
    copies cannot be trusted: rules that need more than the account row, custom
    authentication, a store without change counters (PostgreSQL), or a counter file that
    cannot be opened (logged)."""
    from store import changes, logins

    if not logins.account_only(settings) or settings.custom_authentication.enabled:
        return None
    path = changes.path_for(settings.store.url)
    if path is None:
        return None
    try:
        return HotAccounts(path, surprises)
    except OSError as exc:
        log(f"change counters {path}: {exc}; reading the store every time")
        return None


__all__ = ["HotAccounts", "MAX_AGE", "MAX_ENTRIES", "for_settings", "preload"]
