"""`pam-guard unlock USER`: clear the lock and the failure count (and the directory's lock)."""

from __future__ import annotations

import time

from pam_guard.commands import EXIT_REFUSED, CommandError
from pam_guard.commands.common import (
    admin_action,
    check_audit_key,
    check_user,
    directory_errors,
    print_json,
    settings_for,
    store_transaction,
)


def register(sub) -> None:
    parser = sub.add_parser(
        "unlock",
        help="clear a user's lock and failure count",
        description="Clears pam-guard's lock and failure count (failures before now no "
        "longer count). With custom authentication it first clears the "
        "directory's lock too. Exit 1 when neither pam-guard nor the directory "
        "knows the user, or the directory bind lacks the rights; exit 3 when the "
        "store or the directory cannot be reached (then nothing is changed).",
    )
    parser.add_argument("user")
    parser.set_defaults(func=run)


def unlock_in_directory(settings, user: str) -> bool:
    """Clear the directory's own lock; True when the directory knows the user."""
    from pam_guard.directory import Directory  # ldap3: imported only with custom auth on

    ca = settings.custom_authentication
    with directory_errors(f"unlock {user} (nothing was changed)", ca.bind_dn):
        return Directory(ca).unlock(user)


def run(args) -> int:
    from store import admin

    user = check_user(args.user)
    settings = settings_for(args)
    check_audit_key(args)  # refuse before the directory is changed, not after
    in_directory = False
    if settings.custom_authentication.enabled:
        # Before the store transaction: never hold the store's write lock across LDAP I/O.
        in_directory = unlock_in_directory(settings, user)
    with store_transaction(args) as (_settings, conn):
        in_store = admin.unlock(conn, user, time.time())
        if not (in_store or in_directory):
            raise CommandError(
                f"unknown user {user!r}: pam-guard has no record of it"
                + (
                    " and the directory has no such user"
                    if settings.custom_authentication.enabled
                    else ""
                ),
                EXIT_REFUSED,
            )
        where = [name for name, done in (("store", in_store), ("directory", in_directory)) if done]
        admin_action(conn, args, "unlock", user, " and ".join(where))
    if args.json:
        print_json({"user": user, "unlocked": True, "store": in_store, "directory": in_directory})
    else:
        done = {
            ("store",): "unlocked; failure count reset",
            ("directory",): "unlocked in the directory (pam-guard has no record of it)",
            ("store", "directory"): "unlocked, also in the directory; failure count reset",
        }
        print(f"{user}: {done[tuple(where)]}")
    return 0
