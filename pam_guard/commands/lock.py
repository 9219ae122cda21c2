"""`pam-guard lock USER [--reason TEXT]`: lock an account by hand."""

from __future__ import annotations

import time

from pam_guard.commands import EXIT_CONFIG, CommandError
from pam_guard.commands.common import admin_action, check_user, print_json, store_transaction
from policy.usernames import invalid_reason


def register(sub) -> None:
    parser = sub.add_parser(
        "lock",
        help="lock a user by hand (until unlocked)",
        description="Locks USER until 'pam-guard unlock USER'. A user pam-guard has not seen "
        "yet is locked too (an account made in advance). The lock holds even "
        "with custom authentication, where pam-guard never locks by itself.",
    )
    parser.add_argument("user")
    parser.add_argument("--reason", default="locked by admin", help="why (shown in status)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from store import admin

    user = check_user(args.user)
    reason = args.reason.strip() or "locked by admin"
    if invalid_reason(reason) is not None:  # same rules as a name: no control characters
        raise CommandError("--reason must be printable text of at most 256 bytes", EXIT_CONFIG)
    with store_transaction(args) as (_settings, conn):
        admin.lock(conn, user, time.time(), reason)
        admin_action(conn, args, "lock", user, reason)
    if args.json:
        print_json({"user": user, "locked": True, "reason": reason})
    else:
        print(f"{user}: locked ({reason}); 'pam-guard unlock {user}' lets them in again")
    return 0
