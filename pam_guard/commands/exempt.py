"""`pam-guard exempt USER [--off]`: flag exemption (skips trackstat and concurrent, never the lock)."""

from __future__ import annotations

import time

from pam_guard.commands.common import admin_action, check_user, print_json, store_transaction


def register(sub) -> None:
    parser = sub.add_parser(
        "exempt",
        help="exempt a user from trackstat and concurrent checks",
        description="Exempts USER from the password-sharing (trackstat) and concurrent-login "
        "checks; the lock and address lists still apply. A user pam-guard has "
        "not seen yet gets an account with the flag.",
    )
    parser.add_argument("user")
    parser.add_argument("--off", action="store_true", help="end the exemption")
    parser.set_defaults(func=run)


def run(args) -> int:
    from store import admin

    user = check_user(args.user)
    exempt = not args.off
    with store_transaction(args) as (_settings, conn):
        admin.set_exempt(conn, user, time.time(), exempt)
        admin_action(conn, args, "exempt" if exempt else "exempt-off", user)
    if args.json:
        print_json({"user": user, "exempt": exempt})
    else:
        print(
            f"{user}: {'exempt from' if exempt else 'subject to'} trackstat and concurrent checks"
        )
    return 0
