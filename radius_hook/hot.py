"""Users' account state kept in radiusd's memory, trusted only while nobody else wrote it.

Why: calls into rlm_python3 are serialised and run on the embedded libpython (measured here
~1.7x slower than /usr/bin/python3 on the same code, before radiusd's own load), so a store
read in authorize (~90 us with its GIL hand-offs) costs more than a whole request of a
do-nothing module (~55 us). Under the default rules (lockout only: `logins.account_only`)
all that authorize and a success need of a user is one account row and its recent
denials, so this keeps that per user:

- a copy is loaded after reading the user's change counter (store.changes) and is used
  only while that counter and the global one still hold those values, and for at most
  MAX_AGE seconds (a safety net should a writer die between its commit and its counter);
- this server's own successes update the copy in place (`logins.after_success`, the same
  change the writer's RECORD_SUCCESS makes), and the writer's commits bump the counters
  like any writer's; the copies count those bumps of their own (`_mine`), so a copy is
  current while every bump of its slot since it was loaded was this process's own;
- anything else (a denial, a failure, a lock, an admin command, another process's login)
  bumps the counter, and the next request of that user reads the store again.

Copies are kept only of existing accounts with no recent denials (a denial count slides
with the clock), only for a SQLite store (store.changes), and never with custom
authentication (the directory's lock is not in the store).
"""

from __future__ import annotations

import threading

from store.changes import GLOBAL, SLOTS, Counters, bump_users, slot_of

MAX_ENTRIES = 200_000  # copies kept at most (~1 KB each); all are dropped beyond it
MAX_AGE = 60.0  # seconds a copy is trusted at most

# An entry: [slot, slot value, own bumps of the slot, global value, loaded at (monotonic),
# account, history], the three numbers as they were before the account was read.
_SLOT, _STAMP, _MINE, _GLOBAL, _LOADED, _ACCOUNT, _HISTORY = range(7)


class HotAccounts:
    """The copies, for one store (its change-counter file)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._counters = Counters(path)
        self._view = self._counters._view
        self._entries: dict = {}
        self._mine = [0] * SLOTS  # bumps of each slot made by this process's writer
        # A stamp and the writer's bump-then-count must not interleave: a stamp read between
        # the two would later hide someone else's bump behind this process's own count.
        self._bumping = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, user: str, now: float):
        """(account, history) of a copy still current, or None. `now`: time.monotonic()."""
        entry = self._entries.get(user)
        if entry is None:
            return None
        view = self._view
        slot = entry[_SLOT]
        if (view[slot] - entry[_STAMP] != self._mine[slot] - entry[_MINE]
                or view[GLOBAL] != entry[_GLOBAL] or now - entry[_LOADED] > MAX_AGE):
            self._entries.pop(user, None)
            return None
        return entry[_ACCOUNT], entry[_HISTORY]

    def stamp(self, user: str) -> tuple:
        """What to read before loading a user from the store, for `keep`."""
        slot = slot_of(user)
        with self._bumping:
            return slot, self._view[slot], self._mine[slot], self._view[GLOBAL]

    def keep(self, user: str, stamp: tuple, account: dict, history, now: float) -> None:
        """Keep a copy loaded after `stamp` was read."""
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[user] = [*stamp, now, account, history]

    def update(self, user: str, account: dict, history) -> None:
        """This server changed the user (a success queued for the writer): new contents."""
        entry = self._entries.get(user)
        if entry is not None:
            entry[_ACCOUNT] = account
            entry[_HISTORY] = history

    def drop(self, user: str) -> None:
        self._entries.pop(user, None)

    def committed(self, users) -> None:
        """The writer committed changes of `users` that it had already applied to the
        copies (Gate's on_commit): bump their counters, and count the bumps as our own."""
        if users is None:
            bump_users(self.path, None)
            return
        with self._bumping:
            before = bump_users(self.path, users)
            mine = self._mine
            for slot in before:
                mine[slot] += 1

    def close(self) -> None:
        self._entries.clear()
        self._counters.close()


__all__ = ["HotAccounts", "MAX_AGE", "MAX_ENTRIES"]
