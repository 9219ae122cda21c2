"""`pam-guard lock USER [--reason TEXT]`: lock an account by hand."""

from __future__ import annotations

import time

from pam_guard.commands.common import admin_action, check_user, print_json, store_transaction


def register(sub) -> None:
    parser = sub.add_parser("lock", help="lock a user by hand (until unlocked)")
    parser.add_argument("user")
    parser.add_argument("--reason", default="locked by admin", help="why (shown in status)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from store import admin

    user = check_user(args.user)
    with store_transaction(args) as (_settings, conn):
        admin.lock(conn, user, time.time(), args.reason)
        admin_action(conn, args, "lock", user, args.reason)
    if args.json:
        print_json({"user": user, "locked": True, "reason": args.reason})
    else:
        print(f"{user}: locked ({args.reason})")
    return 0
