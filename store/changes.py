"""Change counters beside a SQLite store: which users' stored state changed, in one memory read.

A long-lived reader (the FreeRADIUS module) keeps users' account state in memory, because a
store read per request costs more than the whole request budget. It must still see at once
what any other process writes: a lock after failures over PAM, `pam-guard unlock`, another
radiusd's logins. So every process that writes a user's state to the store, once its
transaction has committed, adds one to that user's counter in `<store>-changes`; the reader
keeps the counter value it read *before* loading a user, and trusts its copy only while the
counter still has that value.

Only readers make the file (`Counters`): where no process keeps copies (a host with PAM
only) writers find no file and bump nothing. A writer looks for the file after its commit,
and a reader makes it before it reads anything it keeps, so whichever comes first, no copy
misses a change.

The file is SLOTS native-endian 64-bit counters: slot 0 changes on store-wide changes (admin
commands, migrations: every copy is stale), slot 1 + hash(user) % (SLOTS - 1) on a user's.
Users that share a slot only cost each other a reload. Writers take an exclusive lockf on the
file around read-add-write, so no increment is lost; readers read without a lock (a counter
is only ever compared for equality, and an 8-byte aligned store is not torn on Linux).

Only for SQLite stores (one host). A PostgreSQL store is shared across hosts: there is no
file every writer can reach, so readers do not keep copies (`path_for` is None).

Imports: os only (the PAM hook imports this on every login).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # for mypy only: the login path imports no typing
    from collections.abc import Iterable

SLOTS = 1 << 16  # 512 KB: a bump makes another user's copy stale only 1 time in 65,535
WIDTH = 8  # bytes a counter
GLOBAL = 0  # the slot of store-wide changes
SIZE = SLOTS * WIDTH
SUFFIX = "-changes"


def path_for(url: str) -> str | None:
    """The counter file of a store URL, or None (not a SQLite file: no counters)."""
    scheme, _, rest = url.partition("://")
    if scheme.split("+")[0] != "sqlite":
        return None
    path = rest[1:] if rest.startswith("/") else rest
    if not path or path == ":memory:":
        return None
    return path + SUFFIX


def slot_of(user: str) -> int:
    """The slot of a user's counter: FNV-1a of the UTF-8 name (Python's hash() differs
    between processes), never the global slot."""
    value = 0x811C9DC5
    for byte in user.encode("utf-8", "surrogateescape"):
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return 1 + value % (SLOTS - 1)


def open_file(path: str, create: bool = True) -> int:
    """A read-write descriptor of the counter file; with `create`, made (zeroed, with the
    store file's owner and mode, so every process that may write the store may write it)
    when missing. Raises FileNotFoundError when missing and not `create`."""
    flags = os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW | (os.O_CREAT if create else 0)
    fd = os.open(path, flags, 0o600)
    try:
        info = os.fstat(fd)
        if info.st_size < SIZE:
            store = path[: -len(SUFFIX)]
            try:
                ref = os.stat(store)
                if os.geteuid() == 0 and (info.st_uid, info.st_gid) != (ref.st_uid, ref.st_gid):
                    os.fchown(fd, ref.st_uid, ref.st_gid)
                os.fchmod(fd, ref.st_mode & 0o660)
            except OSError:
                pass  # no store yet / not ours to change: the 0600 file still works for us
            os.ftruncate(fd, SIZE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def bump(path: str, slots: Iterable[int]) -> dict[int, int]:
    """Add one to each of `slots` (under the file's lock): {slot: value before}; {} when
    no reader has made the file."""
    try:
        fd = open_file(path, create=False)
    except FileNotFoundError:
        return {}
    try:
        os.lockf(fd, os.F_LOCK, 0)
        before = {}
        for slot in sorted(set(slots)):
            offset = slot * WIDTH
            value = int.from_bytes(os.pread(fd, WIDTH, offset).ljust(WIDTH, b"\0"), sys.byteorder)
            before[slot] = value
            os.pwrite(fd, ((value + 1) & 0xFFFFFFFFFFFFFFFF).to_bytes(WIDTH, sys.byteorder), offset)
        return before
    finally:
        os.close(fd)  # closing drops the lock


def bump_users(path: str, users: Iterable[str] | None) -> dict[int, int]:
    """`bump` for each user's slot (None: the global slot, every copy is stale)."""
    if users is None:
        return bump(path, (GLOBAL,))
    return bump(path, [slot_of(u) for u in users])


def note_change(url: str, users: Iterable[str] | None = None) -> dict[int, int]:
    """After a committed write: tell readers of a SQLite store that `users` (None: everyone)
    changed. Best effort: a store no reader caches (PostgreSQL) has nothing to tell, and a
    counter that cannot be written must not undo a committed login (readers then also
    re-read every copy after a short time, see radius_hook.hot). Returns `bump`'s
    {slot: value before} ({} when nothing was bumped)."""
    path = path_for(url)
    if path is None or (users is not None and not users):
        return {}
    try:
        return bump_users(path, users)
    except OSError:
        return {}


class Counters:
    """A read-only view of the counters for one process (mmap: reading one costs no
    system call and never releases the GIL)."""

    def __init__(self, path: str) -> None:
        import mmap

        fd = open_file(path)
        try:
            self._map = mmap.mmap(fd, SIZE, mmap.MAP_SHARED, mmap.PROT_READ)
        finally:
            os.close(fd)
        self.view = memoryview(self._map).cast("Q")  # view[slot]: the fastest read
        self.path = path

    def value(self, slot: int) -> int:
        return self.view[slot]

    def close(self) -> None:
        self.view.release()
        self._map.close()


__all__ = [
    "path_for",
    "slot_of",
    "bump",
    "bump_users",
    "note_change",
    "Counters",
    "GLOBAL",
    "SLOTS",
]
