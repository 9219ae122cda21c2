"""Helpers the subcommands share: settings, store transactions, time parsing, output."""

from __future__ import annotations

import contextlib
import json
import re
import sys
import time
from datetime import datetime

from pam_guard.commands import EXIT_CONFIG, EXIT_REFUSED, CommandError
from pam_guard.config import config_path, load_settings
from policy.usernames import escape, invalid_reason


def settings_for(args):
    return load_settings(args.config)


def engine_for(settings):
    from store.migrate import engine_for as make

    return make(settings.store.url, settings.store.timeout_seconds)


@contextlib.contextmanager
def store_transaction(args):
    """(settings, connection) in one transaction that commits on success."""
    settings = settings_for(args)
    engine = engine_for(settings)
    try:
        with engine.begin() as conn:
            yield settings, conn
    finally:
        engine.dispose()


def admin_action(conn, args, action: str, target: str, detail: str = "") -> None:
    """Record an admin action in the audit log, in the action's own transaction."""
    from pam_guard import audit

    audit.append(conn, config_path(args.config), action, target, detail)


def check_user(name: str) -> str:
    why = invalid_reason(name)
    if why is not None:
        raise CommandError(f"invalid user name {escape(name)!r}: {why}", EXIT_CONFIG)
    return name


def require_known(conn, user: str) -> None:
    from store import admin

    if not admin.user_known(conn, user):
        raise CommandError(f"unknown user {user!r}: pam-guard has no record of it", EXIT_REFUSED)


_RELATIVE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, now: float | None = None) -> float:
    """Seconds since the epoch from an ISO date/datetime or a relative age like 2h, 7d."""
    now = time.time() if now is None else now
    match = _RELATIVE.match(text.strip())
    if match:
        return now - int(match.group(1)) * _UNITS[match.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CommandError(f"bad time {text!r}: use 2026-11-23, 2026-11-23T14:00 or 2h, 7d",
                           EXIT_CONFIG) from None
    return moment.timestamp()


def when(ts) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(ts)))


def print_json(value) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def print_table(headers, rows) -> None:
    """A plain aligned table; columns as wide as their widest cell."""
    cells = [[str(h) for h in headers]] + [["-" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
