"""`pam-guard unlock USER`: clear the locks (the account's, smart lockout's lock of unfamiliar
sources) and the failure and lock counts (and the directory's lock)."""

from __future__ import annotations

import time

from pam_guard.commands import EXIT_REFUSED, CommandError
from pam_guard.commands.common import (
    LOCK_NAMES,
    admin_action,
    check_audit_key,
    check_user,
    directory_errors,
    locks_in_force,
    print_json,
    settings_for,
    store_transaction,
)


def register(sub) -> None:
    parser = sub.add_parser(
        "unlock",
        help="clear a user's locks and failure count",
        description="Clears pam-guard's lock of the account and smart lockout's lock of "
        "unfamiliar sources, and the failure and lock counts (failures before now no "
        "longer count; the next lock is a first one again), and says which locks it "
        "lifted. With custom authentication it first clears the "
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


def lifted_by_unlock(conn, user: str, now: float, settings) -> list[str]:
    """The reason codes of the locks in force that unlocking `user` now lifts."""
    from policy import account as transition
    from policy.types import History
    from store import admin

    row = admin.account(conn, user)
    if row is None:
        return []
    return locks_in_force(History(**transition.facts(dict(row._mapping))), now, settings)


def describe(lifted: list[str], in_directory: bool) -> str:
    """What an unlock did, for the admin: 'unlocked (account lock and lock of unfamiliar
    sources lifted); failure count reset', and the like."""
    if not lifted:
        locks = "no pam-guard lock was in force"
    else:
        locks = " and ".join(LOCK_NAMES[code] for code in lifted) + " lifted"
    where = ", also in the directory" if in_directory else ""
    return f"unlocked{where} ({locks}); failure count reset"


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
        now = time.time()
        lifted = lifted_by_unlock(conn, user, now, settings)
        in_store = admin.unlock(conn, user, now)
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
        print_json(
            {
                "user": user,
                "unlocked": True,
                "store": in_store,
                "directory": in_directory,
                "lifted": lifted,
            }
        )
    elif not in_store:
        print(f"{user}: unlocked in the directory (pam-guard has no record of it)")
    else:
        print(f"{user}: {describe(lifted, in_directory)}")
    return 0
