"""`pam-guard unlock USER`: clear the lock and the failure count (and the directory's lock)."""

from __future__ import annotations

import time

from pam_guard.commands import EXIT_REFUSED, EXIT_STORE, CommandError
from pam_guard.commands.common import admin_action, check_user, print_json, store_transaction


def register(sub) -> None:
    parser = sub.add_parser(
        "unlock", help="clear a user's lock and failure count",
        description="Clears pam-guard's lock and failure count. With custom authentication it "
                    "also clears the directory's lock. Exit 1 when the user is unknown.")
    parser.add_argument("user")
    parser.set_defaults(func=run)


def unlock_in_directory(settings, user: str) -> bool:
    """Clear the directory's own lock; True when the directory knows the user."""
    from pam_guard.directory import Directory
    from pam_guard.gate import DirectoryError, DirectoryPermissionError

    try:
        return Directory(settings.custom_authentication).unlock(user)
    except DirectoryPermissionError as exc:
        raise CommandError(f"the directory refused the unlock of {user}: the bind "
                           f"{settings.custom_authentication.bind_dn!r} lacks the rights ({exc})",
                           EXIT_REFUSED) from None
    except DirectoryError as exc:
        raise CommandError(f"directory unreachable: {exc}", EXIT_STORE) from None


def run(args) -> int:
    from store import admin

    user = check_user(args.user)
    now = time.time()
    with store_transaction(args) as (settings, conn):
        in_store = admin.unlock(conn, user, now)
        in_directory = False
        if settings.custom_authentication.enabled:
            in_directory = unlock_in_directory(settings, user)
        if not (in_store or in_directory):
            raise CommandError(f"unknown user {user!r}: nothing to unlock", EXIT_REFUSED)
        admin_action(conn, args, "unlock", user,
                     "store and directory" if in_directory else "store")
    if args.json:
        print_json({"user": user, "unlocked": True, "directory": in_directory})
    else:
        where = " (and in the directory)" if in_directory else ""
        print(f"{user}: unlocked{where}; failure count reset")
    return 0
