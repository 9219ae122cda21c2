"""`pam-guard notify USER --on failure,success,lock --to ADDR[,ADDR]` and `notify USER --off`:
the user's own email notices of their failed and/or successful logins and of a lock of their
account. `notify USER` alone shows the current setting.
"""

from __future__ import annotations

import re
import time

from pam_guard.commands import EXIT_CONFIG, EXIT_REFUSED, CommandError
from pam_guard.commands.common import admin_action, check_user, print_json, store_transaction

# What a user can be told of (the gate queues kinds user_failure, user_success, user_lock).
OUTCOMES = ("failure", "success", "lock")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# A plain addr-spec (no display names, no quoted local parts): what a mail header and an SMTP
# RCPT TO take as is, and what cannot smuggle a second header or recipient.
_ADDRESS = re.compile(rf"^[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]{{1,64}}@{_LABEL}(?:\.{_LABEL})*$")
MAX_TO = 1024  # the store's notify_to column


def register(sub) -> None:
    parser = sub.add_parser(
        "notify",
        help="email a user about their own failed or successful logins and locks",
        description="With --on and --to, mails the user's failed and/or successful logins, "
        "and with lock each lock of their account (pam-guard's, or smart lockout's lock "
        "of unfamiliar sources: when it ends and where the failures came from), to "
        "those addresses; --off stops it; alone, shows the setting.",
    )
    parser.add_argument("user")
    parser.add_argument(
        "--on",
        metavar="failure,success,lock",
        help="what to mail: any of failure, success, lock, comma-separated",
    )
    parser.add_argument("--to", metavar="ADDR[,ADDR]", help="where to mail them")
    parser.add_argument("--off", action="store_true", help="stop the user's notices")
    parser.set_defaults(func=run)


def parse_outcomes(text: str) -> str:
    """'failure,success,lock' normalised (in that order); refuses unknown or empty lists."""
    items = [i.strip() for i in text.split(",") if i.strip()]
    bad = [i for i in items if i not in OUTCOMES]
    if bad or not items:
        raise CommandError(
            f"--on {text!r}: use failure, success or lock, or several comma-separated "
            "(failure,success,lock)",
            EXIT_CONFIG,
        )
    return ",".join(o for o in OUTCOMES if o in items)


def described(on: str) -> str:
    """'failure and success logins and locks of the account', for what `on` mails."""
    items = on.split(",")
    logins = [o for o in ("failure", "success") if o in items]
    parts = [" and ".join(logins) + " logins"] if logins else []
    if "lock" in items:
        parts.append("locks of the account")
    return " and ".join(parts)


def parse_addresses(text: str) -> str:
    """'a@x,b@y' after checking each is a plain email address."""
    items = [i.strip() for i in text.split(",") if i.strip()]
    if not items:
        raise CommandError("--to needs at least one email address", EXIT_CONFIG)
    for item in items:
        if len(item) > 254 or not _ADDRESS.match(item):
            raise CommandError(
                f"--to: {item!r} is not an email address (like alice@example.org)", EXIT_CONFIG
            )
    joined = ",".join(dict.fromkeys(items))
    if len(joined) > MAX_TO:
        raise CommandError(f"--to: at most {MAX_TO} characters of addresses", EXIT_CONFIG)
    return joined


def run(args) -> int:
    user = check_user(args.user)
    if args.off and (args.on or args.to):
        raise CommandError("--off cannot be combined with --on or --to", EXIT_CONFIG)
    if args.off:
        return _change(args, user, "", "")
    if args.on is None and args.to is None:
        return _show(args, user)
    if args.on is None:
        raise CommandError("--to needs --on failure, success, lock (comma-separated)", EXIT_CONFIG)
    if args.to is None:
        raise CommandError("--on needs --to ADDR[,ADDR]", EXIT_CONFIG)
    return _change(args, user, parse_outcomes(args.on), parse_addresses(args.to))


def _change(args, user: str, on: str, to: str) -> int:
    from store import admin

    with store_transaction(args) as (_settings, conn):
        admin.set_notify(conn, user, time.time(), on, to)
        admin_action(
            conn, args, "notify" if on else "notify-off", user, f"on={on} to={to}" if on else ""
        )
    _print(args, user, on, to)
    return 0


def _show(args, user: str) -> int:
    from store import admin

    with store_transaction(args) as (_settings, conn):
        row = admin.account(conn, user)
    if row is None:
        raise CommandError(f"unknown user {user!r}: pam-guard has no record of it", EXIT_REFUSED)
    _print(args, user, row.notify_on, row.notify_to)
    return 0


def _print(args, user: str, on: str, to: str) -> None:
    if args.json:
        print_json(
            {"user": user, "on": on.split(",") if on else [], "to": to.split(",") if to else []}
        )
    elif on:
        print(f"{user}: {described(on)} are mailed to {to.replace(',', ', ')}")
    else:
        print(f"{user}: no login notices")
