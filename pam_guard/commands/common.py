"""Helpers the subcommands share: settings, store transactions, time parsing, output."""

from __future__ import annotations

import contextlib
import json
import re
import sys
import time
from datetime import datetime

from pam_guard.commands import EXIT_CONFIG, EXIT_REFUSED, EXIT_STORE, CommandError
from pam_guard.config import config_path, load_settings
from policy.usernames import escape, invalid_reason


def settings_for(args):
    """The validated settings of the config that `--config`/$PAM_GUARD_CONFIG names."""
    return load_settings(args.config)


def ensure_store(url: str) -> None:
    """A SQLite store that does not exist is made now, as a login would make it (SPEC §10);
    no directory, or a store that cannot be made, is exit 3. (SQLAlchemy would otherwise
    make an empty file without tables.)"""
    from store.db import StoreError, create_missing
    from store.url import missing, split_url

    dialect, path = split_url(url)
    if dialect != "sqlite" or not missing(path):
        return
    try:
        made = create_missing(path)
    except StoreError as exc:
        raise CommandError(f"store unreachable: {exc}", EXIT_STORE) from None
    if made:
        print(f"pam-guard: made the store {path}: it did not exist", file=sys.stderr)


def engine_for(settings):
    """A SQLAlchemy engine for the configured store; a missing SQLite store is made first."""
    from store.migrate import engine_for as make

    ensure_store(settings.store.url)
    return make(settings.store.url, settings.store.timeout_seconds)


@contextlib.contextmanager
def store_transaction(args, write: bool = True):
    """(settings, connection) in one transaction that commits on success.

    A write transaction takes the store's write lock at once (SQLite BEGIN IMMEDIATE), so
    what it reads before writing (the audit log's last entry, say) cannot change under it.
    Callbacks registered with `after_commit(conn, fn)` run once the commit has succeeded.
    """
    settings = settings_for(args)
    engine = engine_for(settings)
    callbacks: list = []
    with engine.begin() as conn:
        conn.info["after_commit"] = callbacks
        if write and conn.dialect.name == "sqlite":
            # pysqlite would BEGIN (deferred) only at the first write; take the lock now.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield settings, conn
        del conn.info["after_commit"]
    # Only once the body is done: a body that raised may still hold a result it was
    # streaming (history's rows, when the reader of a pipe went away). Closed later, that
    # result needs its connection (rolled back and back in the pool by now) still open, or
    # SQLAlchemy logs "Cannot operate on a closed database"; the pool goes with the process.
    engine.dispose()
    if write:
        # Processes that keep copies of account state (the RADIUS module) drop them all:
        # an admin's change acts on the very next login.
        from store.changes import note_change

        note_change(settings.store.url, None)
    for callback in callbacks:
        callback()


def after_commit(conn, callback) -> None:
    """Run `callback()` after the transaction of `conn` (from store_transaction) commits."""
    conn.info["after_commit"].append(callback)


def admin_action(conn, args, action: str, target: str, detail: str = "") -> None:
    """Record an admin action in the audit log, in the action's own transaction."""
    from pam_guard import audit

    path = config_path(args.config)
    seq, mac = audit.append(conn, path, action, target, detail)
    after_commit(conn, lambda: audit.remember(path, seq, mac))
    if action in LOGGED_ACTIONS:
        after_commit(conn, lambda: _log_action(LOGGED_ACTIONS[action], target, detail))


# Admin actions that change whether a user gets in go to syslog too, in the shape of the
# login path's lines (pam_guard.logline), with the event names pam_guard.logline lists.
LOGGED_ACTIONS = {"unlock": "unlock", "lock": "admin_lock"}


def _log_action(event: str, user: str, detail: str) -> None:
    import syslog

    from pam_guard.audit import actor
    from pam_guard.logline import line, send

    send(
        syslog.LOG_NOTICE,
        line(event, None, "admin", user=user, channel="admin", by=actor(), detail=detail),
    )


def check_audit_key(args) -> None:
    """Fail early (exit 2) when the audit key is unusable, before changing anything."""
    from pam_guard import audit

    audit.load_key(config_path(args.config))


@contextlib.contextmanager
def directory_errors(doing: str, bind_dn: str = ""):
    """Directory trouble as exit codes: 1 when the bind lacks the rights, 3 when unreachable."""
    from pam_guard.errors import DirectoryError, DirectoryPermissionError

    try:
        yield
    except DirectoryPermissionError as exc:
        who = f"the bind {bind_dn!r}" if bind_dn else "the bind"
        raise CommandError(
            f"the directory refused to {doing}: {who} lacks the rights ({exc})", EXIT_REFUSED
        ) from None
    except DirectoryError as exc:
        raise CommandError(f"directory unreachable: {exc}", EXIT_STORE) from None


def check_user(name: str) -> str:
    """`name` unchanged, or exit 2 when it could never be a login name."""
    why = invalid_reason(name)
    if why is not None:
        raise CommandError(f"invalid user name {escape(name)!r}: {why}", EXIT_CONFIG)
    return name


def require_known(conn, user: str) -> None:
    """Exit 1 when pam-guard has neither an account row nor an event for `user`."""
    from store import admin

    if not admin.user_known(conn, user):
        raise CommandError(f"unknown user {user!r}: pam-guard has no record of it", EXIT_REFUSED)


_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
TIME_HELP = "ISO date or date-time (local time), 'now', or an age like 30m, 2h, 7d, 4w"


def parse_time(text: str, now: float | None = None) -> float:
    """Seconds since the epoch from an ISO date/datetime, 'now', or an age like 2h, 7d."""
    now = time.time() if now is None else now
    text = text.strip()
    if text.lower() == "now":
        return now
    match = _RELATIVE.match(text)
    if match:
        return now - int(match.group(1)) * _UNITS[match.group(2)]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"bad time {text!r}: use 2026-11-23, 2026-11-23T14:00, now, or an age like 2h, 7d",
            EXIT_CONFIG,
        ) from None
    return moment.timestamp()


def when(ts) -> str:
    """A stored time as local 'YYYY-MM-DD HH:MM:SS', or '-' for none."""
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(ts)))


def time_left(expires: float | None, now: float) -> str | None:
    """How long until `expires` ('12 minutes', '3 hours'), or None for no end."""
    from policy.messages import time_left as left

    return None if expires is None else left(expires - now)


def lasts(expires: float | None, now: float, endless: str) -> str:
    """'until 2026-12-03 12:47:00 (12 minutes left)', or `endless` when it has no end."""
    if expires is None:
        return endless
    return f"until {when(expires)} ({time_left(expires, now)} left)"


def locks_in_force(history, now: float, settings) -> list[str]:
    """The reason codes of the user's locks in force at `now`: `locked` (the account lock)
    and `locked_unfamiliar` (smart lockout's, which holds only while smart lockout is on)."""
    from policy.rules import lock_active, unfamiliar_lock_active
    from policy.types import LOCKED, LOCKED_UNFAMILIAR

    found = [LOCKED] if lock_active(history, now) else []
    if settings.lockout.unfamiliar_attempts and unfamiliar_lock_active(history, now):
        found.append(LOCKED_UNFAMILIAR)
    return found


# What each lock is called in the admin's words.
LOCK_NAMES = {"locked": "account lock", "locked_unfamiliar": "lock of unfamiliar sources"}


def print_json(value) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def print_table(headers, rows) -> None:
    """A plain aligned table; columns as wide as their widest cell."""
    cells = [[str(h) for h in headers]] + [["-" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
